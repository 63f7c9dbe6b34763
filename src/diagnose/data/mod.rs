//! Data hints for query jobs, each read off the profiled plan ([`super::plan::PlanNode`]) and
//! the facts `exec-query` gathered about the files it scanned: one file per cause.

pub mod columnar;
pub mod fan_out;
pub mod narrow_types;
pub mod pruning;
pub mod sample;
pub mod sparse;

use super::hints::Hint;
use super::plan::PlanNode;

/// Every data hint `plan` backs, for a query that returned `result_rows` rows.
pub fn hints(plan: &PlanNode, result_rows: u64) -> Vec<Hint> {
    let mut found = fan_out::hints(plan);
    let columnar = columnar::hints(plan);
    // A text file that `columnar` already names gets its types with the Parquet copy: its
    // narrower types are not a second fix.
    let copied: Vec<serde_json::Value> = columnar
        .iter()
        .filter_map(|h| h.evidence.get("file").cloned())
        .collect();
    found.extend(columnar);
    found.extend(pruning::hints(plan));
    found.extend(
        narrow_types::hints(plan)
            .into_iter()
            .filter(|h| h.evidence.get("file").is_none_or(|file| !copied.contains(file))),
    );
    found.extend(sparse::hints(plan));
    found.extend(sample::hints(plan, result_rows));
    found
}

/// "5.6 MB": bytes for a hint's text.
fn bytes(n: u64) -> String {
    crate::format::format_bytes(n)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Real profiles for the unit tests: DuckDB runs a query over files the test made.

    use duckdb::Connection;

    use crate::diagnose::plan::PlanNode;

    /// A folder with data files made by `setup` (SQL run with the folder as working directory
    /// names; `{dir}` stands for the folder).
    pub struct Data {
        /// The folder.
        pub dir: tempfile::TempDir,
        conn: Connection,
    }

    impl Data {
        /// Runs `setup` (with `{dir}` replaced) on a fresh in-memory database.
        pub fn new(setup: &str) -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let conn = Connection::open_in_memory().expect("duckdb");
            let data = Self { dir, conn };
            data.conn.execute_batch(&data.sql(setup)).expect("setup runs");
            data
        }

        /// `sql` with `{dir}` replaced by the folder.
        pub fn sql(&self, sql: &str) -> String {
            sql.replace("{dir}", &self.dir.path().display().to_string())
        }

        /// The profiled plan of `query`, with the facts `exec-query` adds to its scans.
        pub fn plan(&self, query: &str) -> (PlanNode, u64) {
            let (profile, _) = crate::commands::exec_query::profiled(&self.conn, &self.sql(query), self.dir.path())
                .expect("query runs");
            let rows = profile.rows;
            (profile.plan.expect("a plan"), rows)
        }
    }
}
