//! `no-pruning`: a filtered scan that read everything. Either every file of a dataset split over
//! many files (hive-style `key=value/` folders, or a glob) although the filter is not on the
//! partition key or not in a form DuckDB can push down, or every Parquet row group although the
//! filter column has min/max statistics: the data is not sorted on it, so every row group spans
//! the whole range.

use super::super::hints::Hint;
use super::super::plan::{FileFormat, PlanNode};
use super::super::thresholds::{NO_PRUNING_KEPT_SHARE, NO_PRUNING_MIN_FILES, NO_PRUNING_MIN_ROW_GROUPS};

/// At most one hint per scan.
pub fn hints(plan: &PlanNode) -> Vec<Hint> {
    plan.walk()
        .into_iter()
        .filter_map(|(scan, parent)| {
            scan.format()?;
            let file = scan.file.as_ref()?;
            // A filter DuckDB could not push into the scan runs right above it.
            let above = parent.filter(|p| p.name == "FILTER");
            let mut filters = scan.pushed_filters();
            filters.extend(above.and_then(|f| f.text("Expression")));
            if filters.is_empty() {
                return None;
            }
            let filter = filters.join(" AND ");
            let total_rows = file.rows.unwrap_or_else(|| scan.rows_read());
            let kept = above.map_or(scan.rows, |f| f.rows);
            if total_rows == 0 || kept as f64 > NO_PRUNING_KEPT_SHARE * total_rows as f64 {
                return None;
            }
            let source = scan.source().unwrap_or_default();
            if let Some((read, total)) = scan.files_scanned().filter(|&(r, t)| t >= NO_PRUNING_MIN_FILES && r >= t) {
                let mut fix = if file.partition_keys.is_empty() {
                    "split the files by the column you filter on (COPY ... (PARTITION_BY (col)))".to_string()
                } else {
                    format!(
                        "the data is partitioned by {}: filter on that key, or partition by the column you filter on \
                         (COPY ... (PARTITION_BY (col)))",
                        file.partition_keys.join(", ")
                    )
                };
                if above.is_some() {
                    fix.push_str("; DuckDB could not push this filter into the scan: compare a column itself with a constant");
                }
                return Some(
                    Hint::new(
                        "no-pruning",
                        format!("the scan of {source} read all {read} files for the filter {filter}, which kept {kept} of {total_rows} rows: {fix}"),
                    )
                    .with("file", source.clone())
                    .with("files_read", read)
                    .with("files_total", total)
                    .with("partition_keys", file.partition_keys.clone())
                    .with("filter", filter)
                    .with("rows_kept", kept)
                    .with("rows_total", total_rows),
                );
            }
            let (read, total) = (scan.row_groups_scanned?, scan.row_groups_total?);
            if scan.format() != Some(FileFormat::Parquet) || total < NO_PRUNING_MIN_ROW_GROUPS || read < total {
                return None;
            }
            let pushed = scan.pushed_filters().join(" ");
            let columns: Vec<String> = file
                .read
                .iter()
                .filter(|c| c.stats == Some(true) && mentions(&pushed, &c.name))
                .map(|c| c.name.clone())
                .collect();
            if columns.is_empty() {
                return None;
            }
            let on = columns.join(", ");
            Some(
                Hint::new(
                    "no-pruning",
                    format!(
                        "the scan of {source} read all {read} row groups for the filter {filter}, which kept {kept} of {total_rows} rows: \
                         {on} has min/max statistics but the data is not sorted on it, so every row group spans its range; \
                         sort it when writing (COPY (FROM '{source}' ORDER BY {on}) TO ...) and most row groups are skipped"
                    ),
                )
                .with("file", source.clone())
                .with("row_groups_read", read)
                .with("row_groups_total", total)
                .with("columns", columns)
                .with("filter", filter)
                .with("rows_kept", kept)
                .with("rows_total", total_rows),
            )
        })
        .collect()
}

/// Whether `expression` names `column` as a whole word.
fn mentions(expression: &str, column: &str) -> bool {
    expression
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == column)
}

#[cfg(test)]
mod tests {
    use super::super::testing::Data;
    use super::*;

    #[test]
    fn a_partitioned_dataset_filtered_off_its_key_reads_every_file_the_right_key_prunes() {
        let data = Data::new(
            "COPY (SELECT i AS id, i % 10 AS day, (i * 7) % 1000 AS amount FROM range(100000) t(i)) \
             TO '{dir}/events' (FORMAT parquet, PARTITION_BY (day));",
        );
        let (plan, _) = data.plan("SELECT sum(amount) FROM '{dir}/events/**/*.parquet' WHERE id < 500");
        let found = hints(&plan);
        assert_eq!(found.len(), 1, "{plan:#?}");
        assert_eq!(found[0].id, "no-pruning");
        assert_eq!(
            (
                found[0].evidence["files_read"].as_u64(),
                found[0].evidence["files_total"].as_u64()
            ),
            (Some(10), Some(10))
        );
        assert_eq!(found[0].evidence["partition_keys"], serde_json::json!(["day"]));
        assert!(found[0].text.contains("partitioned by day"), "{}", found[0].text);
        let (plan, _) = data.plan("SELECT sum(amount) FROM '{dir}/events/**/*.parquet' WHERE day = 3");
        assert!(hints(&plan).is_empty(), "{plan:#?}");
    }

    #[test]
    fn an_unsorted_parquet_file_reads_every_row_group_a_sorted_copy_skips_them() {
        let data = Data::new(
            "COPY (SELECT i AS id, (i * 7919) % 100000 AS user_id, i % 1000 AS amount FROM range(200000) t(i)) \
             TO '{dir}/events.parquet' (ROW_GROUP_SIZE 20000);
             COPY (FROM '{dir}/events.parquet' ORDER BY user_id) TO '{dir}/sorted.parquet' (ROW_GROUP_SIZE 20000);",
        );
        let (plan, _) = data.plan("SELECT sum(amount) FROM '{dir}/events.parquet' WHERE user_id BETWEEN 100 AND 200");
        let found = hints(&plan);
        assert_eq!(found.len(), 1, "{plan:#?}");
        assert_eq!(found[0].evidence["row_groups_read"], 10);
        assert_eq!(found[0].evidence["row_groups_total"], 10);
        assert_eq!(found[0].evidence["columns"], serde_json::json!(["user_id"]));
        assert!(found[0].text.contains("ORDER BY user_id"), "{}", found[0].text);
        let (plan, _) = data.plan("SELECT sum(amount) FROM '{dir}/sorted.parquet' WHERE user_id BETWEEN 100 AND 200");
        assert!(hints(&plan).is_empty(), "{plan:#?}");
    }
}
