//! `narrow-types`: columns the query reads whose type is wider than their values need: a DOUBLE
//! or BIGINT holding small whole numbers, a DOUBLE whose values all fit a FLOAT, a VARCHAR
//! holding numbers, dates or a few categories. Judged from the files' statistics and a sample
//! of their first rows; the saving is counted in memory (uncompressed) over the rows read.

use serde_json::json;

use super::super::hints::Hint;
use super::super::plan::{ColumnFacts, FileFormat, PlanNode};
use super::super::thresholds::{NARROW_CATEGORIES_MAX, NARROW_TYPES_MIN_BYTES};
use super::bytes;

/// DuckDB keeps a string in 16 bytes, and its characters beyond 12 on the heap.
const STRING_BYTES: f64 = 16.0;

/// One hint per scan whose columns could be narrower.
pub fn hints(plan: &PlanNode) -> Vec<Hint> {
    plan.walk()
        .into_iter()
        .filter_map(|(scan, _)| {
            scan.format()?;
            let file = scan.file.as_ref()?;
            let rows = file.rows.unwrap_or_else(|| scan.rows_read());
            let narrower: Vec<(&ColumnFacts, &str, u64)> = file
                .read
                .iter()
                .filter(|c| !file.partition_keys.contains(&c.name))
                .filter_map(|c| {
                    let (to, saved_per_value) = narrower(c, rows, scan.format().is_some_and(FileFormat::is_text))?;
                    Some((c, to, (saved_per_value * rows as f64) as u64))
                })
                .collect();
            let saved: u64 = narrower.iter().map(|(_, _, b)| b).sum();
            if saved < NARROW_TYPES_MIN_BYTES {
                return None;
            }
            let source = scan.source().unwrap_or_default();
            let list: Vec<String> = narrower
                .iter()
                .map(|(c, to, b)| format!("{} {} -> {to} ({})", c.name, c.data_type, bytes(*b)))
                .collect();
            let casts: Vec<String> = narrower.iter().map(|(c, to, _)| format!("{}::{to} AS {}", c.name, c.name)).collect();
            Some(
                Hint::new(
                    "narrow-types",
                    format!(
                        "{source}: narrower types fit the values of {} (from the file's statistics and its first rows), \
                         saving {} over the {rows} rows read: write them narrow (COPY (SELECT * REPLACE ({})) TO ...)",
                        list.join(", "),
                        bytes(saved),
                        casts.join(", ")
                    ),
                )
                .with("file", source.clone())
                .with(
                    "columns",
                    narrower
                        .iter()
                        .map(|(c, to, b)| json!({"column": c.name, "type": c.data_type, "suggested": to, "saved_bytes": b}))
                        .collect::<Vec<_>>(),
                )
                .with("saved_bytes", saved)
                .with("rows", rows),
            )
        })
        .collect()
}

/// The narrower type a column's values fit (of `rows`), and the bytes it saves per value. A
/// range seen only in the first rows is stretched by the share of rows not seen, as a growing id
/// would be; Parquet statistics give the whole range. A category is named only in text files:
/// Parquet already keeps a few distinct strings as a dictionary.
fn narrower(c: &ColumnFacts, rows: u64, text_file: bool) -> Option<(&'static str, f64)> {
    let data_type = c.data_type.to_ascii_uppercase();
    let stretch = if c.stats == Some(true) && data_type != "VARCHAR" {
        1.0
    } else {
        (rows as f64 / c.sampled.max(1) as f64).max(1.0)
    };
    let whole_type = || match (c.min, c.max, c.whole) {
        (Some(min), Some(max), Some(true)) => Some(integer_for(min * stretch, max * stretch)),
        _ => None,
    };
    let (to, new) = match data_type.as_str() {
        "DOUBLE" | "FLOAT" | "REAL" => whole_type().or((c.fits_float == Some(true)).then_some(("FLOAT", 4.0)))?,
        "VARCHAR" => {
            let old = STRING_BYTES + (c.avg_len.unwrap_or(0.0) - 12.0).max(0.0);
            let to = match c.text_as.as_deref() {
                Some("number") => whole_type().unwrap_or(("DOUBLE", 8.0)),
                Some("date") => ("DATE", 4.0),
                _ => match c.distinct {
                    Some(d) if text_file && d <= NARROW_CATEGORIES_MAX && c.sampled >= 10 * d.max(1) => ("ENUM", 1.0),
                    _ => return None,
                },
            };
            return Some((to.0, old - to.1)).filter(|(_, s)| *s > 0.0);
        }
        other => {
            width(other)?;
            whole_type()?
        }
    };
    let old = width(&data_type)?;
    Some((to, old - new)).filter(|(_, s)| *s > 0.0)
}

/// Bytes a value of a fixed-width type takes.
fn width(data_type: &str) -> Option<f64> {
    Some(match data_type {
        "TINYINT" | "UTINYINT" => 1.0,
        "SMALLINT" | "USMALLINT" => 2.0,
        "INTEGER" | "UINTEGER" | "FLOAT" | "REAL" => 4.0,
        "BIGINT" | "UBIGINT" | "DOUBLE" => 8.0,
        "HUGEINT" | "UHUGEINT" => 16.0,
        _ => return None,
    })
}

/// The smallest signed integer type holding `min..=max`, and its width.
fn integer_for(min: f64, max: f64) -> (&'static str, f64) {
    let fits = |bits: i32| min >= -(2f64.powi(bits - 1)) && max < 2f64.powi(bits - 1);
    if fits(8) {
        ("TINYINT", 1.0)
    } else if fits(16) {
        ("SMALLINT", 2.0)
    } else if fits(32) {
        ("INTEGER", 4.0)
    } else {
        ("BIGINT", 8.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Data;
    use super::*;

    #[test]
    fn wide_columns_are_named_with_the_type_that_fits_and_the_bytes_saved() {
        let data = Data::new(
            "COPY (SELECT i AS id, (i % 1000)::DOUBLE AS amount, ((i % 100) / 4)::DOUBLE AS score, \
             ['books', 'games', 'music'][i % 3 + 1] AS category FROM range(400000) t(i)) TO '{dir}/wide.parquet';
             COPY (SELECT id::INTEGER AS id, amount::SMALLINT AS amount, score::FLOAT AS score, \
             category::ENUM('books', 'games', 'music') AS category FROM '{dir}/wide.parquet') TO '{dir}/narrow.parquet';",
        );
        let (plan, _) =
            data.plan("SELECT category, sum(amount), max(id), avg(score) FROM '{dir}/wide.parquet' GROUP BY 1");
        let found = hints(&plan);
        assert_eq!(found.len(), 1, "{plan:#?}");
        let suggested: Vec<(String, String)> = found[0].evidence["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                (
                    c["column"].as_str().unwrap_or("").to_string(),
                    c["suggested"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert!(
            !suggested.iter().any(|(c, _)| c == "category"),
            "Parquet keeps categories as a dictionary"
        );
        for expected in [("id", "INTEGER"), ("amount", "SMALLINT"), ("score", "FLOAT")] {
            assert!(
                suggested.contains(&(expected.0.to_string(), expected.1.to_string())),
                "{expected:?} in {suggested:?}"
            );
        }
        assert!(
            found[0].evidence["saved_bytes"].as_u64().is_some_and(|b| b > 4_000_000),
            "{found:?}"
        );
        let (plan, _) =
            data.plan("SELECT category, sum(amount), max(id), avg(score) FROM '{dir}/narrow.parquet' GROUP BY 1");
        assert!(hints(&plan).is_empty(), "{:?}", hints(&plan));
    }

    #[test]
    fn a_csv_of_numbers_dates_and_categories_as_text_is_named() {
        let data = Data::new(
            "COPY (SELECT i AS id, 'n' || (i % 1000) AS code, ['books', 'games', 'music'][i % 3 + 1] AS category \
             FROM range(200000) t(i)) TO '{dir}/events.csv';",
        );
        let (plan, _) = data.plan("SELECT category, count(DISTINCT code), max(id) FROM '{dir}/events.csv' GROUP BY 1");
        let found = hints(&plan);
        assert_eq!(found.len(), 1, "{plan:#?}");
        let text = &found[0].text;
        assert!(
            text.contains("category VARCHAR -> ENUM") && text.contains("id BIGINT -> INTEGER"),
            "{text}"
        );
        assert!(
            !text.contains("code VARCHAR"),
            "1000 distinct codes are not a category: {text}"
        );
    }

    #[test]
    fn the_smallest_integer_type_is_chosen() {
        assert_eq!(integer_for(0.0, 127.0).0, "TINYINT");
        assert_eq!(integer_for(-129.0, 0.0).0, "SMALLINT");
        assert_eq!(integer_for(0.0, 400_000.0).0, "INTEGER");
        assert_eq!(integer_for(0.0, 1e12).0, "BIGINT");
    }
}
