//! What the files behind a query's scans hold, learned by `exec-query` after the timed query
//! with cheap reads only: the files a glob matches and their sizes (hive `key=value/` folders
//! give the partition keys), the columns (`DESCRIBE`), Parquet footers (rows, row groups,
//! min/max statistics), and a sample of the first rows of the columns the query reads (NULLs,
//! zeros, range, whole numbers, FLOAT round trips, what a VARCHAR holds). An evidence source:
//! it only gathers; `diagnose::data` decides.

use duckdb::types::Value;
use duckdb::Connection;

use crate::diagnose::plan::{ColumnFacts, FileFacts, FileFormat, PlanNode};
use crate::diagnose::thresholds::COLUMN_SAMPLE_ROWS;

/// More files than this are not listed one by one.
const MAX_FILES: usize = 100_000;
/// Parquet footers are read for at most this many files (each is a read of its own).
const MAX_FOOTER_FILES: usize = 1000;
/// The temporary table the first rows of a scan's files are read into.
const SAMPLE_TABLE: &str = "looptop_file_sample";
/// Sampled expressions per column (see `sample_exprs`).
const EXPRS: usize = 10;

/// Fills in the facts of every scan of files in `plan`; a scan whose files cannot be read again
/// (gone, remote, odd options) keeps none.
pub fn gather(conn: &Connection, plan: &mut PlanNode) {
    plan.for_each_scan_mut(&mut |scan| {
        let (Some(format), Some(source)) = (scan.format(), scan.source()) else {
            return;
        };
        let mut wanted = scan.list("Projections");
        let filters = scan.pushed_filters().join(" ");
        match facts(conn, format, &source, &mut wanted, &filters) {
            Ok(facts) => scan.file = facts,
            Err(e) => log::debug!("no facts about {source}: {e}"),
        }
    });
}

/// `'text'` as a SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `"name"` as a SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What `source` holds, of which the query reads `wanted` (to which the columns `filters` name
/// are added); `None` when it matches no file.
fn facts(
    conn: &Connection,
    format: FileFormat,
    source: &str,
    wanted: &mut Vec<String>,
    filters: &str,
) -> Result<Option<FileFacts>, duckdb::Error> {
    let lit = literal(source);
    let files: Vec<String> = conn
        .prepare(&format!("SELECT file FROM glob({lit}) LIMIT {MAX_FILES}"))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut partition_keys: Vec<String> = Vec::new();
    for file in &files {
        for part in file.split('/') {
            if let Some((key, _)) = part.split_once('=') {
                if !key.is_empty() && !partition_keys.iter().any(|k| k == key) {
                    partition_keys.push(key.to_string());
                }
            }
        }
    }
    let reader = match format {
        FileFormat::Csv => format!("read_csv({lit})"),
        FileFormat::Json => format!("read_json_auto({lit})"),
        FileFormat::Parquet => format!("read_parquet({lit})"),
    };
    // One read of the first rows (one CSV sniff) serves both the columns and the sample.
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE {SAMPLE_TABLE} AS SELECT * FROM {reader} LIMIT {COLUMN_SAMPLE_ROWS}"
    ))?;
    let described: Vec<(String, String)> = conn
        .prepare(&format!(
            "SELECT column_name, column_type FROM (DESCRIBE {SAMPLE_TABLE})"
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // The columns the query reads: those it projects and those its pushed filters name.
    let words: Vec<&str> = filters.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
    wanted.extend(
        described
            .iter()
            .filter(|(n, _)| words.contains(&n.as_str()))
            .map(|(n, _)| n.clone()),
    );
    let read: Vec<&(String, String)> = described.iter().filter(|(n, _)| wanted.contains(n)).collect();
    let mut facts = FileFacts {
        format: format.as_str().to_string(),
        source: source.to_string(),
        files: files.len() as u64,
        bytes: files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum(),
        partition_keys,
        columns: described.len() as u64,
        read: sample(conn, &read)?,
        ..FileFacts::default()
    };
    conn.execute_batch(&format!("DROP TABLE {SAMPLE_TABLE}"))?;
    if format == FileFormat::Parquet && files.len() <= MAX_FOOTER_FILES {
        parquet_footers(conn, &lit, &mut facts)?;
    }
    Ok(Some(facts))
}

/// Rows, row groups and per-column min/max statistics from the Parquet footers.
fn parquet_footers(conn: &Connection, lit: &str, facts: &mut FileFacts) -> Result<(), duckdb::Error> {
    let (rows, groups): (Option<i64>, Option<i64>) = conn.query_row(
        &format!("SELECT sum(num_rows)::BIGINT, sum(num_row_groups)::BIGINT FROM parquet_file_metadata({lit})"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    facts.rows = rows.map(|n| n.max(0) as u64);
    facts.row_groups = groups.map(|n| n.max(0) as u64);
    // NULLs are counted in every row group; a row group whose min and max are both 0 holds
    // only zeros (a lower bound for the zeros, where the first rows could mislead).
    let mut stmt = conn.prepare(&format!(
        "SELECT path_in_schema, bool_and(stats_min_value IS NOT NULL AND stats_max_value IS NOT NULL), \
         min(TRY_CAST(stats_min_value AS DOUBLE)), max(TRY_CAST(stats_max_value AS DOUBLE)), \
         sum(stats_null_count)::BIGINT, \
         sum(CASE WHEN TRY_CAST(stats_min_value AS DOUBLE) = 0 AND TRY_CAST(stats_max_value AS DOUBLE) = 0 \
                  THEN row_group_num_rows - coalesce(stats_null_count, 0) ELSE 0 END)::BIGINT \
         FROM parquet_metadata({lit}) GROUP BY path_in_schema"
    ))?;
    let stats = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<bool>>(1)?,
            r.get::<_, Option<f64>>(2)?,
            r.get::<_, Option<f64>>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<i64>>(5)?,
        ))
    })?;
    for stat in stats {
        let (name, has, min, max, nulls, zeros) = stat?;
        let Some(column) = facts.read.iter_mut().find(|c| c.name == name) else {
            continue;
        };
        column.stats = has;
        // The footers cover every row; the sample only the first ones.
        if is_numeric(&column.data_type) {
            column.min = min.or(column.min);
            column.max = max.or(column.max);
        }
        if let (Some(rows), Some(nulls), Some(zeros)) = (facts.rows, nulls, zeros) {
            column.sampled = rows;
            column.nulls = nulls.max(0) as u64;
            column.zeros = zeros.max(0) as u64;
        }
    }
    Ok(())
}

fn is_numeric(data_type: &str) -> bool {
    let t = data_type.to_ascii_uppercase();
    [
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "REAL",
        "DOUBLE",
        "DECIMAL",
    ]
    .iter()
    .any(|n| t == *n || t.starts_with("DECIMAL"))
}

/// The `EXPRS` sampled expressions of one column: non-NULL count, zeros, min, max, all whole,
/// all FLOAT-exact, all numbers (VARCHAR), all dates (VARCHAR), distinct, mean length (VARCHAR).
fn sample_exprs(name: &str, data_type: &str) -> [String; EXPRS] {
    let q = ident(name);
    let text = data_type.eq_ignore_ascii_case("VARCHAR");
    let num = if is_numeric(data_type) {
        format!("{q}::DOUBLE")
    } else if text {
        format!("TRY_CAST({q} AS DOUBLE)")
    } else {
        "NULL::DOUBLE".to_string()
    };
    // A typed NULL: the driver reads no value of DuckDB's NULL type.
    let when_text = |e: String, null: &str| if text { e } else { format!("NULL::{null}") };
    [
        format!("count({q})"),
        format!("count_if({num} = 0)"),
        format!("min({num})"),
        format!("max({num})"),
        format!("bool_and({num} = trunc({num}))"),
        format!("bool_and(coalesce(TRY_CAST({num} AS FLOAT)::DOUBLE = {num}, false))"),
        when_text(
            format!("count({q}) > 0 AND count(TRY_CAST({q} AS DOUBLE)) = count({q})"),
            "BOOLEAN",
        ),
        when_text(
            format!("count({q}) > 0 AND count(TRY_CAST({q} AS DATE)) = count({q})"),
            "BOOLEAN",
        ),
        format!("approx_count_distinct({q})"),
        when_text(format!("avg(length({q}))"), "DOUBLE"),
    ]
}

/// What the first `COLUMN_SAMPLE_ROWS` rows (in `SAMPLE_TABLE`) say about the columns `read`.
fn sample(conn: &Connection, read: &[&(String, String)]) -> Result<Vec<ColumnFacts>, duckdb::Error> {
    if read.is_empty() {
        return Ok(Vec::new());
    }
    let exprs: Vec<String> = read.iter().flat_map(|(n, t)| sample_exprs(n, t)).collect();
    let sql = format!("SELECT count(*), {} FROM {SAMPLE_TABLE}", exprs.join(", "));
    conn.query_row(&sql, [], |row| {
        let number = |i: usize| -> Result<Option<f64>, duckdb::Error> {
            Ok(match row.get::<_, Value>(i)? {
                Value::Null => None,
                Value::BigInt(n) => Some(n as f64),
                Value::Int(n) => Some(f64::from(n)),
                Value::HugeInt(n) => Some(n as f64),
                Value::UBigInt(n) => Some(n as f64),
                Value::Double(n) => Some(n),
                Value::Float(n) => Some(f64::from(n)),
                Value::Boolean(b) => Some(if b { 1.0 } else { 0.0 }),
                _ => None,
            })
        };
        let count = |i: usize| number(i).map(|n| n.unwrap_or(0.0).max(0.0) as u64);
        let flag = |i: usize| number(i).map(|n| n.map(|v| v != 0.0));
        let sampled = count(0)?;
        let mut out = Vec::with_capacity(read.len());
        for (k, (name, data_type)) in read.iter().enumerate() {
            let at = 1 + k * EXPRS;
            let text_as = if flag(at + 6)? == Some(true) {
                Some("number".to_string())
            } else if flag(at + 7)? == Some(true) {
                Some("date".to_string())
            } else {
                None
            };
            out.push(ColumnFacts {
                name: name.clone(),
                data_type: data_type.clone(),
                sampled,
                nulls: sampled.saturating_sub(count(at)?),
                zeros: count(at + 1)?,
                min: number(at + 2)?,
                max: number(at + 3)?,
                whole: flag(at + 4)?,
                fits_float: flag(at + 5)?.filter(|_| is_numeric(data_type)),
                text_as,
                distinct: number(at + 8)?.map(|n| n as u64),
                avg_len: number(at + 9)?,
                stats: None,
            });
        }
        Ok(out)
    })
}
