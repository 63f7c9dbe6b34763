//! A query's plan as DuckDB profiled it: the operator tree with each operator's rows, time and
//! `extra_info` (projections, filters, join conditions, files scanned), the scan counters
//! (bytes, rows and row groups read), and, on scans of files, what `exec-query` learned about
//! those files afterwards ([`FileFacts`]). The data hints read this tree; it decides nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One operator of the plan, with its inputs as children.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlanNode {
    /// DuckDB's operator name (`HASH_JOIN`, `READ_CSV_AUTO`, `PARQUET_SCAN` ...).
    pub name: String,
    /// Rows it emitted.
    #[serde(default)]
    pub rows: u64,
    /// Time spent in it (summed over threads).
    #[serde(default)]
    pub ms: f64,
    /// DuckDB's `extra_info`, as it gave it (`Projections`, `Filters`, `Conditions` ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub info: BTreeMap<String, Value>,
    /// Bytes a scan read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_scanned: Option<u64>,
    /// Rows a scan read (after the filters pushed into it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_scanned: Option<u64>,
    /// Parquet row groups a scan read ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_groups_scanned: Option<u64>,
    /// ... of this many it had to consider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_groups_total: Option<u64>,
    /// What the files a scan read hold (filled in by `exec-query` after the query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileFacts>,
    /// Its inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<PlanNode>,
}

/// The file format a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated text.
    Csv,
    /// JSON or newline-delimited JSON.
    Json,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// `csv`, `json` or `parquet`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Parquet => "parquet",
        }
    }

    /// Row-oriented text, parsed whole whatever the query needs.
    pub fn is_text(self) -> bool {
        matches!(self, Self::Csv | Self::Json)
    }
}

/// What the files behind one scan hold: counted and sampled by `exec-query` after the query,
/// with cheap metadata reads (`glob`, `DESCRIBE`, Parquet footers, the first rows).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FileFacts {
    /// `csv`, `json` or `parquet`.
    pub format: String,
    /// The file or glob, as the query names it.
    pub source: String,
    /// Files it matches.
    pub files: u64,
    /// Their size on disk.
    pub bytes: u64,
    /// Hive-style partition keys (`day` of `day=3/`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_keys: Vec<String>,
    /// Columns the files have.
    pub columns: u64,
    /// Rows in all the files (Parquet footers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Row groups in all the files (Parquet footers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_groups: Option<u64>,
    /// The columns the query reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<ColumnFacts>,
}

/// One column a query reads, from the files' statistics and a sample of their first rows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ColumnFacts {
    /// Column name.
    pub name: String,
    /// Its type as DuckDB reads it (`DOUBLE`, `BIGINT`, `VARCHAR` ...).
    #[serde(rename = "type")]
    pub data_type: String,
    /// Rows `nulls` and `zeros` count over: the sample, or every row when Parquet statistics
    /// gave them (NULL counts, and row groups whose min and max are 0).
    pub sampled: u64,
    /// NULLs among them.
    #[serde(default)]
    pub nulls: u64,
    /// Zeros among them.
    #[serde(default)]
    pub zeros: u64,
    /// Smallest value (as a number; a VARCHAR's when all its values are numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Every value is a whole number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole: Option<bool>,
    /// Every value survives a round trip through FLOAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fits_float: Option<bool>,
    /// A VARCHAR whose every value reads as `number` or `date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_as: Option<String>,
    /// Distinct values (approximate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<u64>,
    /// Mean length of a VARCHAR's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_len: Option<f64>,
    /// Every Parquet row group has min/max statistics for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<bool>,
}

impl PlanNode {
    /// The plan in DuckDB's JSON profile (`PRAGMA enable_profiling = 'json'`), without the
    /// plumbing around the query (result collector, `CREATE TABLE AS`); `None` when unreadable.
    pub fn from_duckdb_json(root: &Value) -> Option<Self> {
        // DuckDB 2 puts the plan under "operator", older versions under "children".
        let top = ["operator", "children"]
            .iter()
            .find_map(|k| root.get(*k)?.as_array()?.first())?;
        let mut node = Self::parse(top)?;
        while (node.name == "RESULT_COLLECTOR" || node.name.ends_with("CREATE_TABLE_AS")) && node.children.len() == 1 {
            node = node.children.remove(0);
        }
        Some(node)
    }

    fn parse(node: &Value) -> Option<Self> {
        let number = |keys: &[&str]| keys.iter().find_map(|k| node.get(*k)?.as_f64());
        let count = |key: &str| node.get(key).and_then(Value::as_u64);
        let info: BTreeMap<String, Value> = node
            .get("extra_info")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let name = ["name", "operator_name", "operator_type", "type"]
            .iter()
            .find_map(|k| node.get(*k)?.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())?;
        // Older versions call every scan TABLE_SCAN and name the function only in extra_info.
        let name = match info.get("Function").and_then(Value::as_str) {
            Some(function) if name == "TABLE_SCAN" => function.to_string(),
            _ => name,
        };
        let row_groups_total = count("total_row_groups_to_scan").filter(|&n| n > 0);
        let children = ["children", "operator"]
            .iter()
            .filter_map(|k| node.get(*k)?.as_array())
            .flatten()
            .filter_map(Self::parse)
            .collect();
        Some(Self {
            name,
            rows: number(&["intermediate_rows", "operator_cardinality", "cardinality"]).unwrap_or(0.0) as u64,
            ms: number(&["timing", "operator_timing"]).unwrap_or(0.0) * 1000.0,
            info,
            bytes_scanned: count("bytes_scanned"),
            rows_scanned: count("rows_scanned"),
            row_groups_scanned: row_groups_total.and(count("row_groups_scanned")),
            row_groups_total,
            file: None,
            children,
        })
    }

    /// This node and every node under it, depth first, each with its parent.
    pub fn walk(&self) -> Vec<(&PlanNode, Option<&PlanNode>)> {
        let mut out = vec![(self, None)];
        let mut i = 0;
        while i < out.len() {
            let node = out[i].0;
            out.extend(node.children.iter().map(|c| (c, Some(node))));
            i += 1;
        }
        out
    }

    /// Calls `f` on every scan of files in the tree (for `exec-query` to fill in).
    pub fn for_each_scan_mut(&mut self, f: &mut impl FnMut(&mut PlanNode)) {
        if self.format().is_some() && self.source().is_some() {
            f(self);
        }
        for child in &mut self.children {
            child.for_each_scan_mut(f);
        }
    }

    /// The same tree with only the `extra_info` the hints read (for a summary that must stay short).
    pub fn compact(&mut self) {
        const KEPT: [&str; 9] = [
            "Function",
            "Filters",
            "File Filters",
            "Expression",
            "Conditions",
            "Join Type",
            "Scanning Files",
            "Total Files Read",
            "Filename(s)",
        ];
        let scan = self.format().is_some();
        self.info
            .retain(|k, _| KEPT.contains(&k.as_str()) || (scan && k == "Projections"));
        self.children.iter_mut().for_each(PlanNode::compact);
    }

    /// Total time of all operators: operator times add up every thread's, so a share of the
    /// query is taken of this, not of the wall time.
    pub fn total_ms(&self) -> f64 {
        self.walk().iter().map(|(n, _)| n.ms).sum()
    }

    /// An `extra_info` entry as text (a list joined with ", ").
    pub fn text(&self, key: &str) -> Option<String> {
        match self.info.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
            other => Some(other.to_string()),
        }
    }

    /// An `extra_info` entry as a list (DuckDB gives one item as a string, more as an array).
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.info.get(key) {
            Some(Value::String(s)) => s.lines().map(str::to_string).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }

    /// The file format of a scan of files.
    pub fn format(&self) -> Option<FileFormat> {
        let name = self.name.to_ascii_uppercase();
        if name.contains("READ_CSV") {
            Some(FileFormat::Csv)
        } else if name.contains("READ_JSON") {
            Some(FileFormat::Json)
        } else if name.contains("PARQUET") {
            Some(FileFormat::Parquet)
        } else {
            None
        }
    }

    /// The file or glob a scan reads (DuckDB adds ", ..." when there are more).
    pub fn source(&self) -> Option<String> {
        let names = self.text("Filename(s)")?;
        let first = names.strip_suffix(", ...").unwrap_or(&names);
        let first = first.split(", ").next().unwrap_or(first).trim();
        (!first.is_empty()).then(|| first.to_string())
    }

    /// The filters pushed into a scan, without DuckDB's optional (dynamic join) filters.
    pub fn pushed_filters(&self) -> Vec<String> {
        ["Filters", "File Filters"]
            .iter()
            .flat_map(|k| self.list(k))
            .filter(|f| !f.trim_start().starts_with("optional:"))
            .collect()
    }

    /// Files a scan read, and of how many it considered, when DuckDB says.
    pub fn files_scanned(&self) -> Option<(u64, u64)> {
        if let Some(pair) = self.text("Scanning Files") {
            let (read, total) = pair.split_once('/')?;
            return Some((read.trim().parse().ok()?, total.trim().parse().ok()?));
        }
        let read = self.text("Total Files Read")?.trim().parse().ok()?;
        let total = self.file.as_ref().map_or(read, |f| f.files.max(read));
        Some((read, total))
    }

    /// Rows a scan went through: the rows of the row groups it read when the files' row count is
    /// known (pushed-down filters make `rows_scanned` count only the rows that passed), else
    /// what DuckDB counted.
    pub fn rows_read(&self) -> u64 {
        let counted = self.rows_scanned.unwrap_or(self.rows).max(self.rows);
        match (
            self.file.as_ref().and_then(|f| f.rows),
            self.row_groups_scanned,
            self.row_groups_total,
        ) {
            (Some(rows), Some(read), Some(total)) if total > 0 => {
                counted.max((rows as f64 * read as f64 / total as f64).round() as u64)
            }
            _ => counted,
        }
    }

    /// Whether this operator joins its two inputs on keys (not a semi/anti join, not a cross product).
    pub fn is_join(&self) -> bool {
        let kind = self.text("Join Type").unwrap_or_default().to_ascii_uppercase();
        self.name.contains("JOIN")
            && self.children.len() == 2
            && !["SEMI", "ANTI", "MARK"].iter().any(|k| kind.contains(k))
    }

    /// The key columns of a join's conditions (`user_id = user_id` gives `user_id`).
    pub fn join_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for condition in self.list("Conditions") {
            for part in condition.split(" AND ") {
                for side in part.split(['=', '<', '>', '!']) {
                    let side = side.trim().trim_matches(['(', ')']).trim();
                    if !side.is_empty() && !keys.iter().any(|k| k == side) {
                        keys.push(side.to_string());
                    }
                }
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::testing::Data;

    #[test]
    fn the_tree_of_a_real_profile_keeps_rows_inputs_info_and_scan_counters() {
        let data = Data::new(
            "COPY (SELECT i AS id, i % 100 AS user_id, i % 1000 AS amount FROM range(50000) t(i)) \
             TO '{dir}/events.parquet' (ROW_GROUP_SIZE 10000);
             COPY (SELECT i AS user_id, 'u' || i AS name FROM range(100) t(i)) TO '{dir}/users.csv';",
        );
        let (plan, rows) = data.plan(
            "SELECT u.name, sum(e.amount) FROM '{dir}/events.parquet' e JOIN '{dir}/users.csv' u \
             ON e.user_id = u.user_id WHERE e.id < 20000 GROUP BY 1",
        );
        assert_eq!(rows, 100);
        assert_eq!(plan.name, "HASH_GROUP_BY", "the wrapper operators are gone: {plan:#?}");
        let nodes = plan.walk();
        let join = nodes.iter().find(|(n, _)| n.is_join()).expect("a join").0;
        assert_eq!(join.join_keys(), vec!["user_id"]);
        assert_eq!(join.rows, 20_000);
        let scan = nodes
            .iter()
            .find(|(n, _)| n.name.contains("PARQUET"))
            .expect("a parquet scan")
            .0;
        assert_eq!(scan.rows, 20_000);
        assert!(scan.list("Projections").contains(&"amount".to_string()), "{scan:#?}");
        assert!(
            scan.pushed_filters().iter().any(|f| f.contains("id < 20000")),
            "{scan:#?}"
        );
        assert!(scan.row_groups_total.is_some_and(|t| t >= 4), "{scan:#?}");
        assert!(
            scan.row_groups_scanned < scan.row_groups_total,
            "sorted on id: row groups skipped"
        );
        let file = scan.file.as_ref().expect("facts about the file");
        assert_eq!((file.files, file.columns, file.rows), (1, 3, Some(50_000)));
        let csv = nodes
            .iter()
            .find(|(n, _)| n.name.contains("READ_CSV"))
            .expect("a csv scan")
            .0;
        assert!(csv.source().is_some_and(|s| s.ends_with("users.csv")));
        assert_eq!(csv.rows_read(), 100);
        assert_eq!(csv.files_scanned(), Some((1, 1)));
        let json = serde_json::to_string(&plan).expect("serializes");
        let back: super::PlanNode = serde_json::from_str(&json).expect("reads back");
        let shape = |p: &super::PlanNode| -> Vec<(String, u64, Option<super::FileFacts>)> {
            p.walk()
                .iter()
                .map(|(n, _)| (n.name.clone(), n.rows, n.file.clone()))
                .collect()
        };
        assert_eq!(
            shape(&back),
            shape(&plan),
            "times may lose their last digit, nothing else"
        );
    }
}
