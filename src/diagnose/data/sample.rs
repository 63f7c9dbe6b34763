//! `sample`: a dev-loop query that scans a million rows or more on every run to return a small
//! result. While iterating on it, a sample answers as well, in a fraction of the time.

use super::super::hints::Hint;
use super::super::plan::PlanNode;
use super::super::thresholds::{SAMPLE_MIN_ROWS, SAMPLE_SMALL_RESULT};

/// The hint, when the query scans much for a small result and samples nothing yet.
pub fn hints(plan: &PlanNode, result_rows: u64) -> Vec<Hint> {
    let nodes = plan.walk();
    let scanned: u64 = nodes
        .iter()
        .filter(|(n, _)| n.rows_scanned.is_some())
        .map(|(n, _)| n.rows_read())
        .sum();
    let sampled = nodes.iter().any(|(n, _)| n.name.contains("SAMPLE"));
    if sampled || scanned < SAMPLE_MIN_ROWS || result_rows > SAMPLE_SMALL_RESULT {
        return Vec::new();
    }
    let largest = nodes
        .iter()
        .filter(|(n, _)| n.rows_scanned.is_some())
        .max_by_key(|(n, _)| n.rows_read())
        .and_then(|(n, _)| n.source().or_else(|| n.text("Table")))
        .unwrap_or_else(|| "the table".to_string());
    vec![Hint::new(
        "sample",
        format!(
            "each run scans {scanned} rows to return {result_rows}: while iterating, query a sampled copy \
             (COPY (FROM '{largest}' USING SAMPLE 100000 ROWS) TO ...), or sample in the query (FROM '{largest}' \
             TABLESAMPLE 1%: less work after the scan), and run the full query when it is right"
        ),
    )
    .with("rows_scanned", scanned)
    .with("result_rows", result_rows)
    .with("file", largest)]
}

#[cfg(test)]
mod tests {
    use super::super::testing::Data;
    use super::*;

    const SETUP: &str = "COPY (SELECT i AS id, i % 100 AS user_id, i % 1000 AS amount FROM range(1200000) t(i)) TO '{dir}/events.parquet';
        COPY (FROM '{dir}/events.parquet' USING SAMPLE 50000 ROWS) TO '{dir}/sample.parquet';";

    #[test]
    fn a_million_rows_for_a_small_result_suggests_a_sample_the_sampled_copy_is_silent() {
        let data = Data::new(SETUP);
        let (plan, rows) = data.plan("SELECT user_id, sum(amount) FROM '{dir}/events.parquet' GROUP BY 1");
        let found = hints(&plan, rows);
        assert_eq!(found.len(), 1, "{plan:#?}");
        assert_eq!(found[0].id, "sample");
        assert_eq!(found[0].evidence["rows_scanned"], 1_200_000);
        assert_eq!(found[0].evidence["result_rows"], 100);
        let (plan, rows) = data.plan("SELECT user_id, sum(amount) FROM '{dir}/sample.parquet' GROUP BY 1");
        assert!(hints(&plan, rows).is_empty());
        let (plan, rows) =
            data.plan("SELECT user_id, sum(amount) FROM '{dir}/events.parquet' TABLESAMPLE 5% GROUP BY 1");
        assert!(hints(&plan, rows).is_empty(), "a query that samples already");
    }
}
