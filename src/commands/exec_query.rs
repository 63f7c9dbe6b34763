//! `looptop exec-query`: what a query job runs. It executes a SQL file against a DuckDB
//! database with profiling on, in a process of its own (so that stopping, timeouts and sampling
//! work as for any job), prints the first rows and the row count, and ends with one
//! `looptop-query: {...}` line: the summary the loop reads back from the output (rows, time,
//! bytes read, the slowest operators, and the plan tree with what the scanned files hold).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use duckdb::types::Value;
use duckdb::Connection;

use super::Failure;
use crate::cli::ExecQueryArgs;
use crate::diagnose::metrics::MAX_LINE_BYTES;
use crate::diagnose::query::{QueryProfile, SUMMARY_PREFIX};
use crate::store::table::{Cell, Format, Table};

/// Rows printed before "... N more".
const SHOWN_ROWS: usize = 20;
/// The temporary table the result is kept in.
const RESULT_TABLE: &str = "looptop_query_result";

/// `looptop exec-query --sql FILE [--database FILE]`.
pub fn exec_query(args: &ExecQueryArgs) -> Result<u8, Failure> {
    let sql = std::fs::read_to_string(&args.sql)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", args.sql.display())))?;
    let statements = split_statements(&sql);
    let Some((last, before)) = statements.split_last() else {
        return Err(Failure::usage(format!("{} holds no SQL statement", args.sql.display())));
    };
    let conn = match &args.database {
        Some(path) => Connection::open(path),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| Failure::runtime(format!("cannot open {}: {e}", describe(args.database.as_deref()))))?;
    let failed = |e: duckdb::Error| Failure::runtime(format!("{}: {e}", args.sql.display()));
    for statement in before {
        conn.execute_batch(statement).map_err(failed)?;
    }
    let (profile, materialized) = profiled(&conn, last, &std::env::temp_dir()).map_err(failed)?;
    let select = if materialized {
        format!("SELECT * FROM {RESULT_TABLE} LIMIT {SHOWN_ROWS}")
    } else {
        "SELECT 0 WHERE false".to_string()
    };
    let mut stmt = conn.prepare(&select).map_err(failed)?;
    let mut rows = stmt.query([]).map_err(failed)?;
    let mut shown = Vec::new();
    let mut width = 0;
    while let Some(row) = rows.next().map_err(failed)? {
        width = row.as_ref().column_count();
        let cells: Result<Vec<Cell>, _> = (0..width).map(|i| row.get::<_, Value>(i).map(Cell::from)).collect();
        shown.push(cells.map_err(failed)?);
    }
    drop(rows);
    let columns = stmt.column_names();
    drop(stmt);
    drop(conn);
    let count = profile.rows;
    let mut out = std::io::stdout().lock();
    // A closed pipe (the job stopped) is not worth a panic.
    if materialized && (width > 0 || !columns.is_empty()) {
        let table = Table { columns, rows: shown };
        let _ = writeln!(out, "{}", table.render(Format::Text));
    }
    if count > SHOWN_ROWS as u64 {
        let _ = writeln!(out, "... {} more rows", count - SHOWN_ROWS as u64);
    }
    let _ = writeln!(out, "{count} rows in {:.1} ms", profile.elapsed_ms);
    // The loop reads lines of at most MAX_LINE_BYTES.
    if let Some(json) = profile.summary_json(MAX_LINE_BYTES - SUMMARY_PREFIX.len()) {
        let _ = writeln!(out, "{SUMMARY_PREFIX}{json}");
    }
    Ok(0)
}

/// Runs `query` (the job's last statement) on `conn` under DuckDB's profiler, keeping a query's
/// result in `RESULT_TABLE`; then, outside the timed part, learns what the files it scanned
/// hold. Returns the profile and whether the statement was a query (not COPY, CREATE ...).
/// `scratch` is a folder for the profiler's file.
pub fn profiled(conn: &Connection, query: &str, scratch: &Path) -> Result<(QueryProfile, bool), duckdb::Error> {
    let profile_path = scratch.join(format!("looptop-profile-{}.json", std::process::id()));
    let quoted = profile_path.display().to_string().replace('\'', "''");
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.{RESULT_TABLE}; PRAGMA enable_profiling = 'json'; PRAGMA profiling_output = '{quoted}';"
    ))?;
    // DuckDB writes the profile of statements run to completion, not of one streamed through a
    // prepared statement: the result is made into a temporary table, then read back.
    let started = Instant::now();
    let materialized = conn
        .execute_batch(&format!("CREATE TEMP TABLE {RESULT_TABLE} AS {query}"))
        .is_ok();
    if !materialized {
        // Not a query (COPY, CREATE ...): run it as it is.
        let ran = conn.execute_batch(query);
        if ran.is_err() {
            let _ = conn.execute_batch("PRAGMA disable_profiling");
        }
        ran?;
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    conn.execute_batch("PRAGMA disable_profiling")?;
    let count: i64 = if materialized {
        conn.query_row(&format!("SELECT count(*) FROM {RESULT_TABLE}"), [], |r| r.get(0))?
    } else {
        0
    };
    let profile_text = std::fs::read_to_string(&profile_path).unwrap_or_default();
    let _ = std::fs::remove_file(&profile_path);
    let mut profile = QueryProfile::from_duckdb_json(&profile_text, count.max(0) as u64, elapsed_ms);
    if let Some(plan) = profile.plan.as_mut() {
        let gathering = Instant::now();
        super::file_facts::gather(conn, plan);
        log::debug!(
            "facts about the scanned files in {:.1} ms",
            gathering.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok((profile, materialized))
}

fn describe(database: Option<&Path>) -> String {
    database.map_or_else(|| "an in-memory database".to_string(), |p| p.display().to_string())
}

/// The statements of a SQL script, split at `;` outside strings, quoted names and comments.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                current.push(c);
                for d in chars.by_ref() {
                    current.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for d in chars.by_ref() {
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
                current.push(' ');
            }
            ';' => statements.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    statements.push(current);
    statements
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_strings_and_comments() {
        let sql = "CREATE TABLE t AS SELECT 'a;b' AS s; -- a comment; with a semicolon\n\
                   /* block; comment */ SELECT \"odd;name\" FROM t;\n  ";
        assert_eq!(
            split_statements(sql),
            vec!["CREATE TABLE t AS SELECT 'a;b' AS s", "SELECT \"odd;name\" FROM t"]
        );
        assert!(split_statements(" ; -- nothing\n").is_empty());
    }
}
