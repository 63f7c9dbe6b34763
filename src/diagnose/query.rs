//! Query loops: what `looptop exec-query` learns from DuckDB's profile of a query job (rows,
//! time, the slowest operators, scans of row-oriented text formats), and the hints it backs: a
//! CSV or JSON scan that a columnar format would cut, and a result whose row count jumps far
//! between runs (a join that fans out on duplicate keys).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hints::Hint;

/// The line prefix `exec-query` prints its summary after.
pub const SUMMARY_PREFIX: &str = "looptop-query: ";
/// Operators kept in the summary, slowest first.
pub const TOP_OPERATORS: usize = 5;
/// A result this many times larger (or smaller) than the previous run's is a jump worth a hint.
pub const ROW_JUMP_FACTOR: f64 = 10.0;

/// One operator of the query plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    /// DuckDB's operator name (`HASH_JOIN`, `READ_CSV_AUTO`, ...).
    pub name: String,
    /// Time spent in it.
    pub ms: f64,
    /// Rows it produced.
    pub rows: u64,
}

/// A scan of a row-oriented text file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextScan {
    /// `csv` or `json`.
    pub format: String,
    /// The file(s) read, as DuckDB names them.
    pub source: Option<String>,
    /// Rows read.
    pub rows: u64,
    /// Time spent scanning.
    pub ms: f64,
}

/// A query run in `run_finished`: its profile and the hints it backs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryReport {
    /// What the profile says.
    #[serde(flatten)]
    pub profile: QueryProfile,
    /// What to try.
    pub hints: Vec<Hint>,
}

/// A query job's run, as its profile tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryProfile {
    /// Rows in the result.
    pub rows: u64,
    /// Wall time of the query (not counting start-up).
    pub elapsed_ms: f64,
    /// The slowest operators, at most `TOP_OPERATORS`.
    pub operators: Vec<Operator>,
    /// Scans of CSV or JSON files.
    pub text_scans: Vec<TextScan>,
}

impl QueryProfile {
    /// Reads DuckDB's JSON profile (`PRAGMA enable_profiling = 'json'`); an unreadable profile
    /// gives just the rows and time.
    pub fn from_duckdb_json(text: &str, rows: u64, elapsed_ms: f64) -> Self {
        let mut all = Vec::new();
        if let Ok(root) = serde_json::from_str::<Value>(text) {
            collect(&root, &mut all);
        }
        let text_scans = all
            .iter()
            .filter_map(|(op, detail, source)| {
                let haystack = format!("{} {detail}", op.name).to_ascii_lowercase();
                // `FROM 'x.csv'` and read_csv(...) both run DuckDB's READ_CSV table function.
                let format = if haystack.contains("read_csv") {
                    "csv"
                } else if haystack.contains("read_json") {
                    "json"
                } else {
                    return None;
                };
                Some(TextScan {
                    format: format.to_string(),
                    source: source.clone(),
                    rows: op.rows,
                    ms: op.ms,
                })
            })
            .collect();
        // The plan's plumbing (and exec-query's own wrapper) is not the query's work.
        let mut operators: Vec<Operator> = all
            .into_iter()
            .map(|(op, _, _)| op)
            .filter(|op| op.name != "RESULT_COLLECTOR" && !op.name.ends_with("CREATE_TABLE_AS"))
            .collect();
        operators.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        operators.truncate(TOP_OPERATORS);
        Self {
            rows,
            elapsed_ms,
            operators,
            text_scans,
        }
    }

    /// The summary `exec-query` printed on `line`, if it is that line.
    pub fn from_summary_line(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim_end().strip_prefix(SUMMARY_PREFIX)?).ok()
    }

    /// Hints backed by this profile; `previous_rows` is the job's last result size.
    pub fn hints(&self, previous_rows: Option<u64>) -> Vec<Hint> {
        let mut hints = Vec::new();
        // Operator times add up the time of every thread, so they are compared with each other,
        // not with the wall time.
        let operators_ms: f64 = self.operators.iter().map(|o| o.ms).sum();
        for scan in &self.text_scans {
            let share = scan.ms / operators_ms.max(scan.ms).max(f64::MIN_POSITIVE) * 100.0;
            hints.push(Hint::new(
                "columnar",
                format!(
                    "the query scans {} rows of {}{} ({share:.0} % of the operators' time): a columnar copy \
                     (COPY ... TO 'x.parquet') would read only the columns it needs",
                    scan.rows,
                    scan.format.to_uppercase(),
                    scan.source.as_deref().map(|s| format!(" {s}")).unwrap_or_default()
                ),
            ));
        }
        if let Some(before) = previous_rows {
            let (low, high) = (before.min(self.rows) as f64, before.max(self.rows) as f64);
            if high >= ROW_JUMP_FACTOR * low.max(1.0) && high >= ROW_JUMP_FACTOR {
                hints.push(Hint::new(
                    "row-jump",
                    format!(
                        "the result went from {before} to {} rows: a join that fans out (duplicate keys?) or a lost filter",
                        self.rows
                    ),
                ));
            }
        }
        hints
    }
}

/// Takes `exec-query`'s summary lines out of one output stream, chunk by chunk: the loop reads
/// them from the job's output, the user never sees them (output pane, terminal, run log). A line
/// start that could still become one is held back until it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolFilter {
    held: Vec<u8>,
    line_start: bool,
    dropping: bool,
}

impl Default for ProtocolFilter {
    fn default() -> Self {
        Self {
            held: Vec::new(),
            line_start: true,
            dropping: false,
        }
    }
}

impl ProtocolFilter {
    /// The part of `chunk` to show.
    pub fn pass(&mut self, chunk: &[u8]) -> Vec<u8> {
        let prefix = SUMMARY_PREFIX.as_bytes();
        let mut shown = Vec::with_capacity(chunk.len());
        for &byte in chunk {
            if self.dropping {
                if byte == b'\n' {
                    self.dropping = false;
                    self.line_start = true;
                }
                continue;
            }
            if !self.held.is_empty() || (self.line_start && prefix.first() == Some(&byte)) {
                self.held.push(byte);
                if self.held == prefix {
                    self.held.clear();
                    self.dropping = true;
                } else if !prefix.starts_with(&self.held) {
                    shown.append(&mut self.held);
                    self.line_start = byte == b'\n';
                }
                continue;
            }
            shown.push(byte);
            self.line_start = byte == b'\n';
        }
        shown
    }

    /// The stream ended: what was held back is ordinary output after all.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(self).held
    }
}

/// Every operator under `node`, with its extra information as text and the files it read.
fn collect(node: &Value, out: &mut Vec<(Operator, String, Option<String>)>) {
    let name = ["operator_name", "operator_type", "type", "name"]
        .iter()
        .find_map(|k| node.get(*k)?.as_str())
        .map(|s| s.trim().to_string());
    if let Some(mut name) = name.filter(|n| !n.is_empty()) {
        let number = |keys: &[&str]| keys.iter().find_map(|k| node.get(*k)?.as_f64());
        let extra = node.get("extra_info");
        let detail = extra.map(Value::to_string).unwrap_or_default();
        let text = |key: &str| extra.and_then(|e| e.get(key)?.as_str()).map(str::to_string);
        if let Some(function) = text("Function") {
            name = format!("{name} {function}");
        }
        let source = text("Filename(s)");
        out.push((
            Operator {
                name,
                ms: number(&["operator_timing", "timing"]).unwrap_or(0.0) * 1000.0,
                rows: number(&["operator_cardinality", "intermediate_rows", "cardinality"]).unwrap_or(0.0) as u64,
            },
            detail,
            source,
        ));
    }
    // DuckDB 2 puts the plan under "operator", older versions under "children".
    for key in ["operator", "children"] {
        for child in node.get(key).and_then(Value::as_array).into_iter().flatten() {
            collect(child, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of DuckDB 2's JSON profile (trimmed).
    const PROFILE: &str = r#"{"io":{"total_bytes_read":4631791},"operator":[
        {"type":"RESULT_COLLECTOR","timing":0.00001,"intermediate_rows":0,"extra_info":{},"children":[
        {"type":"HASH_JOIN","timing":0.02,"intermediate_rows":5000,"extra_info":{},"children":[
            {"type":"TABLE_SCAN","timing":0.03,"intermediate_rows":100000,
             "extra_info":{"Function":"READ_CSV_AUTO","Filename(s)":"events.csv"},"children":[]},
            {"type":"TABLE_SCAN","timing":0.001,"intermediate_rows":10,
             "extra_info":{"Table":"users"},"children":[]}]}]}],"query":{"total_time":0.05}}"#;

    #[test]
    fn operators_and_text_scans_come_out_of_the_profile() {
        let profile = QueryProfile::from_duckdb_json(PROFILE, 5000, 55.0);
        assert_eq!(profile.operators[0].name, "TABLE_SCAN READ_CSV_AUTO");
        assert_eq!(profile.operators.len(), 3, "without the result collector");
        assert_eq!(profile.operators[0].rows, 100_000);
        assert!((profile.operators[0].ms - 30.0).abs() < 1e-9);
        assert_eq!(profile.text_scans.len(), 1);
        assert_eq!(profile.text_scans[0].format, "csv");
        let hints = profile.hints(None);
        assert!(
            hints[0].id == "columnar"
                && hints[0]
                    .text
                    .contains("100000 rows of CSV events.csv (59 % of the operators' time)"),
            "{hints:?}"
        );
    }

    #[test]
    fn the_summary_line_round_trips_and_garbage_is_not_one() {
        let profile = QueryProfile::from_duckdb_json(PROFILE, 5000, 55.0);
        let line = format!("{SUMMARY_PREFIX}{}", serde_json::to_string(&profile).expect("json"));
        assert_eq!(QueryProfile::from_summary_line(&line), Some(profile));
        assert_eq!(QueryProfile::from_summary_line("looptop-query: {oops"), None);
        assert_eq!(QueryProfile::from_summary_line("5000 rows in 55 ms"), None);
        assert_eq!(QueryProfile::from_duckdb_json("not json", 3, 1.0).operators, Vec::new());
    }

    #[test]
    fn summary_lines_are_filtered_out_however_the_output_is_cut() {
        let output = format!(
            "user_id | total\n3 rows in 1.0 ms\nlooptop-q is not it\n{SUMMARY_PREFIX}{{\"rows\":3}}\nafter: {SUMMARY_PREFIX}kept\nlooptop"
        );
        let expected =
            format!("user_id | total\n3 rows in 1.0 ms\nlooptop-q is not it\nafter: {SUMMARY_PREFIX}kept\nlooptop");
        for cut in 1..=output.len() {
            let mut filter = ProtocolFilter::default();
            let mut shown = Vec::new();
            for chunk in output.as_bytes().chunks(cut) {
                shown.extend(filter.pass(chunk));
            }
            shown.extend(filter.finish());
            assert_eq!(String::from_utf8_lossy(&shown), expected, "chunks of {cut}");
        }
    }

    #[test]
    fn a_row_count_jump_is_a_hint_a_small_change_is_not() {
        let profile = QueryProfile::from_duckdb_json("{}", 120_000, 10.0);
        let jump = &profile.hints(Some(1_000))[0];
        assert!(
            jump.id == "row-jump" && jump.text.contains("from 1000 to 120000 rows"),
            "{jump:?}"
        );
        assert!(profile.hints(Some(100_000)).is_empty());
        assert!(
            QueryProfile::from_duckdb_json("{}", 3, 1.0).hints(Some(0)).is_empty(),
            "tiny results"
        );
    }
}
