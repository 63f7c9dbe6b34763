//! Query loops: what `looptop exec-query` learns from DuckDB's profile of a query job (rows,
//! time, bytes read, the slowest operators and the whole plan tree with the facts about the
//! files it scanned), and the hints it backs: the data hints of [`super::data`], read off the
//! plan, and a result whose row count jumps far between runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hints::Hint;
use super::plan::PlanNode;

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
    /// Bytes the query read from storage (DuckDB's `io.total_bytes_read`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
    /// The plan: every operator with its inputs, `extra_info` and scan counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanNode>,
}

impl QueryProfile {
    /// Reads DuckDB's JSON profile (`PRAGMA enable_profiling = 'json'`); an unreadable profile
    /// gives just the rows and time.
    pub fn from_duckdb_json(text: &str, rows: u64, elapsed_ms: f64) -> Self {
        let root = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let plan = PlanNode::from_duckdb_json(&root);
        let mut operators: Vec<Operator> = plan
            .iter()
            .flat_map(PlanNode::walk)
            .map(|(node, _)| Operator {
                name: node.name.clone(),
                ms: node.ms,
                rows: node.rows,
            })
            .collect();
        operators.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        operators.truncate(TOP_OPERATORS);
        Self {
            rows,
            elapsed_ms,
            operators,
            bytes_read: root.pointer("/io/total_bytes_read").and_then(Value::as_u64),
            plan,
        }
    }

    /// The summary line's JSON, at most `max_bytes` long: a plan too large keeps only the
    /// `extra_info` the hints read, and one still too large is left out.
    pub fn summary_json(&self, max_bytes: usize) -> Option<String> {
        let mut profile = self.clone();
        let mut json = serde_json::to_string(&profile).ok()?;
        if json.len() > max_bytes {
            profile.plan.iter_mut().for_each(PlanNode::compact);
            json = serde_json::to_string(&profile).ok()?;
        }
        if json.len() > max_bytes {
            profile.plan = None;
            json = serde_json::to_string(&profile).ok()?;
        }
        Some(json)
    }

    /// The summary `exec-query` printed on `line`, if it is that line.
    pub fn from_summary_line(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim_end().strip_prefix(SUMMARY_PREFIX)?).ok()
    }

    /// Hints backed by this profile; `previous_rows` is the job's last result size.
    pub fn hints(&self, previous_rows: Option<u64>) -> Vec<Hint> {
        let mut hints = self
            .plan
            .as_ref()
            .map(|plan| super::data::hints(plan, self.rows))
            .unwrap_or_default();
        if let Some(before) = previous_rows {
            let (low, high) = (before.min(self.rows) as f64, before.max(self.rows) as f64);
            if high >= ROW_JUMP_FACTOR * low.max(1.0) && high >= ROW_JUMP_FACTOR {
                hints.push(
                    Hint::new(
                        "row-jump",
                        format!(
                            "the result went from {before} to {} rows: a join that fans out (duplicate keys?) or a lost filter",
                            self.rows
                        ),
                    )
                    .with("rows", self.rows)
                    .with("previous_rows", before),
                );
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
    fn operators_the_plan_and_bytes_read_come_out_of_the_profile() {
        let profile = QueryProfile::from_duckdb_json(PROFILE, 5000, 55.0);
        assert_eq!(
            profile.operators[0].name, "READ_CSV_AUTO",
            "an old TABLE_SCAN is named by its function"
        );
        assert_eq!(profile.operators.len(), 3, "without the result collector");
        assert_eq!(profile.operators[0].rows, 100_000);
        assert!((profile.operators[0].ms - 30.0).abs() < 1e-9);
        assert_eq!(profile.bytes_read, Some(4_631_791));
        let plan = profile.plan.as_ref().expect("a plan");
        assert_eq!(plan.name, "HASH_JOIN", "the result collector is not the query's");
        assert_eq!(plan.children.len(), 2);
        assert_eq!(plan.children[0].source().as_deref(), Some("events.csv"));
        assert!(
            profile.hints(None).is_empty(),
            "no file facts, no size: {:?}",
            profile.hints(None)
        );
    }

    #[test]
    fn the_summary_line_round_trips_and_garbage_is_not_one() {
        let profile = QueryProfile::from_duckdb_json(PROFILE, 5000, 55.0);
        let line = format!("{SUMMARY_PREFIX}{}", serde_json::to_string(&profile).expect("json"));
        assert_eq!(QueryProfile::from_summary_line(&line), Some(profile));
        assert_eq!(QueryProfile::from_summary_line("looptop-query: {oops"), None);
        assert_eq!(QueryProfile::from_summary_line("5000 rows in 55 ms"), None);
        let garbage = QueryProfile::from_duckdb_json("not json", 3, 1.0);
        assert_eq!((garbage.operators, garbage.plan), (Vec::new(), None));
    }

    #[test]
    fn a_summary_too_long_for_a_line_loses_detail_then_its_plan() {
        let profile = QueryProfile::from_duckdb_json(PROFILE, 5000, 55.0);
        let full = profile.summary_json(usize::MAX).expect("json");
        assert_eq!(
            QueryProfile::from_summary_line(&format!("{SUMMARY_PREFIX}{full}")),
            Some(profile.clone())
        );
        let mut wide = profile.clone();
        if let Some(plan) = wide.plan.as_mut() {
            plan.info.insert("Estimated Cardinality".into(), "x".repeat(500).into());
        }
        let compact = wide.summary_json(full.len() + 10).expect("json");
        assert!(
            compact.len() <= full.len() + 10 && compact.contains("HASH_JOIN"),
            "{compact}"
        );
        let bare = wide.summary_json(200).expect("json");
        assert!(!bare.contains("\"plan\"") && bare.contains("\"rows\":5000"), "{bare}");
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
