//! `columnar`: a CSV or JSON scan that is a real share of the query's time. Text formats are
//! parsed whole, every column of every row; a Parquet copy reads only the columns the query
//! uses, already typed.

use super::super::hints::Hint;
use super::super::plan::PlanNode;
use super::super::thresholds::{COLUMNAR_MIN_BYTES, COLUMNAR_MIN_SHARE};
use super::bytes;

/// One hint per text scan worth converting.
pub fn hints(plan: &PlanNode) -> Vec<Hint> {
    let total_ms = plan.total_ms();
    plan.walk()
        .into_iter()
        .filter_map(|(scan, _)| {
            let format = scan.format().filter(|f| f.is_text())?;
            let file = scan.file.as_ref();
            let size = file.map_or(scan.bytes_scanned.unwrap_or(0), |f| f.bytes);
            let share = scan.ms / total_ms.max(f64::MIN_POSITIVE);
            if share < COLUMNAR_MIN_SHARE || size < COLUMNAR_MIN_BYTES {
                return None;
            }
            let source = scan.source().unwrap_or_default();
            let columns = file.map_or(0, |f| f.columns);
            // Without a projection DuckDB reads every column.
            let used = match scan.list("Projections").len() {
                0 => columns,
                n => n as u64,
            };
            let of = if columns > 0 {
                format!("{used} of {columns} columns")
            } else {
                format!("{used} columns")
            };
            let stem = source.rsplit_once('.').map_or(source.as_str(), |(stem, _)| stem);
            Some(
                Hint::new(
                    "columnar",
                    format!(
                        "{source} ({} of {}) takes {:.0} % of the query's time and the query uses {of}: \
                         a Parquet copy (COPY (FROM '{source}') TO '{stem}.parquet') reads only those {used}, already typed",
                        bytes(size),
                        format.as_str().to_uppercase(),
                        share * 100.0
                    ),
                )
                .with("file", source.clone())
                .with("format", format.as_str())
                .with("bytes", size)
                .with("columns_used", used)
                .with("columns", columns)
                .with("share_pct", (share * 1000.0).round() / 10.0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::Data;
    use super::*;

    const SETUP: &str =
        "COPY (SELECT i AS id, i % 100 AS user_id, (i * 7) % 1000 AS amount, 'c' || (i % 5) AS category, \
        i * 0.5 AS score, i % 3 AS a, i % 11 AS b FROM range(200000) t(i)) TO '{dir}/events.csv';
        COPY (FROM '{dir}/events.csv') TO '{dir}/events.parquet';";

    #[test]
    fn a_csv_scan_that_dominates_names_the_file_its_size_and_the_columns_used() {
        let data = Data::new(SETUP);
        let (plan, _) = data.plan("SELECT user_id, sum(amount) FROM '{dir}/events.csv' GROUP BY user_id");
        let hints = hints(&plan);
        assert_eq!(hints.len(), 1, "{plan:#?}");
        let hint = &hints[0];
        assert_eq!(hint.id, "columnar");
        assert_eq!(hint.evidence["columns_used"], 2);
        assert_eq!(hint.evidence["columns"], 7);
        assert_eq!(hint.evidence["format"], "csv");
        assert!(
            hint.evidence["bytes"].as_u64().is_some_and(|b| b > 4_000_000),
            "{hint:?}"
        );
        assert!(hint.text.contains("2 of 7 columns"), "{}", hint.text);
    }

    #[test]
    fn the_parquet_copy_is_silent() {
        let data = Data::new(SETUP);
        let (plan, _) = data.plan("SELECT user_id, sum(amount) FROM '{dir}/events.parquet' GROUP BY user_id");
        assert!(hints(&plan).is_empty());
    }
}
