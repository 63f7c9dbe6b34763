//! `sparse`: a column the query reads that is mostly NULL or zero: reading it costs as much as a
//! full one for little information.

use super::super::hints::Hint;
use super::super::plan::PlanNode;
use super::super::thresholds::{SPARSE_MIN_ROWS, SPARSE_SHARE};

/// One hint per sparse column read.
pub fn hints(plan: &PlanNode) -> Vec<Hint> {
    let mut found = Vec::new();
    for (scan, _) in plan.walk() {
        let (Some(file), Some(source)) = (scan.file.as_ref(), scan.source()) else {
            continue;
        };
        for column in &file.read {
            if column.sampled < SPARSE_MIN_ROWS || file.partition_keys.contains(&column.name) {
                continue;
            }
            let empty = column.nulls + column.zeros;
            let share = empty as f64 / column.sampled as f64;
            if share < SPARSE_SHARE {
                continue;
            }
            found.push(
                Hint::new(
                    "sparse",
                    format!(
                        "{} in {source} is {:.0} % NULL or zero ({} NULL, {} zero of {} rows checked): keep only its \
                         non-empty rows in a table of their own keyed by id and join it where needed, or filter \
                         ({} IS NOT NULL AND {} <> 0) before the heavy work",
                        column.name,
                        share * 100.0,
                        column.nulls,
                        column.zeros,
                        column.sampled,
                        column.name,
                        column.name
                    ),
                )
                .with("file", source.clone())
                .with("column", column.name.clone())
                .with("null_rows", column.nulls)
                .with("zero_rows", column.zeros)
                .with("rows_checked", column.sampled),
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::testing::Data;
    use super::*;

    #[test]
    fn a_mostly_empty_column_is_named_a_dense_one_is_not() {
        let data = Data::new(
            "COPY (SELECT i AS id, CASE WHEN i % 50 = 0 THEN i END AS coupon, CASE WHEN i % 40 = 0 THEN 1.5 ELSE 0 END AS bonus, \
             i % 7 + 1 AS amount FROM range(20000) t(i)) TO '{dir}/events.csv';
             COPY (FROM '{dir}/events.csv') TO '{dir}/events.parquet';",
        );
        let (plan, _) = data.plan("SELECT sum(coupon), sum(bonus) FROM '{dir}/events.csv'");
        let found = hints(&plan);
        let columns: Vec<&str> = found.iter().filter_map(|h| h.evidence["column"].as_str()).collect();
        assert_eq!(columns.len(), 2, "{found:?}");
        assert!(columns.contains(&"coupon") && columns.contains(&"bonus"), "{columns:?}");
        assert!(found.iter().all(|h| h.id == "sparse"));
        let (plan, _) = data.plan("SELECT sum(coupon) FROM '{dir}/events.parquet'");
        let found = hints(&plan);
        assert_eq!(found.len(), 1, "{plan:#?}");
        assert_eq!(found[0].evidence["rows_checked"], 20_000, "every row, from the footers");
        assert_eq!(found[0].evidence["null_rows"], 19_600);
        let (plan, _) = data.plan("SELECT sum(amount), max(id) FROM '{dir}/events.parquet'");
        assert!(hints(&plan).is_empty(), "{:?}", hints(&plan));
    }
}
