//! The history's schema and its versions. A file written by an older looptop is migrated in
//! place, one version at a time, each in a transaction; rows are never dropped. A file from a
//! newer looptop is refused, not touched.

use std::path::Path;

use duckdb::Connection;

use super::StoreError;

/// Each migration, in order; version N is the state after the first N.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
    include_str!("schema_v11.sql"),
];

/// The schema version this looptop writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The file's schema version (0 for a new, empty database), or an error if it is some other
/// database.
pub fn version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let sql = |e: duckdb::Error| StoreError::Sql(e.to_string());
    let tables: Vec<String> = conn
        .prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(sql)?;
    if !tables.iter().any(|t| t == "looptop_schema") {
        return match tables.first() {
            None => Ok(0),
            Some(other) => Err(StoreError::NotHistory {
                path: path.to_path_buf(),
                detail: format!("it is a DuckDB database with other tables, such as `{other}`"),
            }),
        };
    }
    conn.query_row("SELECT coalesce(max(version), 0) FROM looptop_schema", [], |row| {
        row.get(0)
    })
    .map_err(sql)
}

/// Brings the file up to `SCHEMA_VERSION`.
pub fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    migrate_with(conn, path, MIGRATIONS)
}

fn migrate_with(conn: &Connection, path: &Path, migrations: &[&str]) -> Result<(), StoreError> {
    let found = version(conn, path)?;
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if found > supported {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    for (done, sql) in migrations.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let next = done + 1;
        let batch = format!(
            "BEGIN TRANSACTION;\nCREATE TABLE IF NOT EXISTS looptop_schema (version INTEGER NOT NULL);\n{sql}\n\
             INSERT INTO looptop_schema VALUES ({next});\nCOMMIT;"
        );
        if let Err(e) = conn.execute_batch(&batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Sql(format!(
                "migrating {} to schema {next}: {e}",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_gets_the_current_schema_and_migrating_twice_is_harmless() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.duckdb");
        let conn = Connection::open(&path).expect("open");
        assert_eq!(version(&conn, &path), Ok(0));
        migrate(&conn, &path).expect("migrate");
        migrate(&conn, &path).expect("again");
        assert_eq!(version(&conn, &path), Ok(SCHEMA_VERSION));
    }

    #[test]
    fn an_older_file_is_migrated_in_place_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.duckdb");
        let conn = Connection::open(&path).expect("open");
        migrate_with(&conn, &path, &MIGRATIONS[..1]).expect("v1");
        conn.execute_batch(
            "INSERT INTO runs (run_id, job, command, kind, started_at, outcome, trigger_files, host, looptop_version) \
             VALUES (uuid(), 'train', 'python t.py', 'train', now(), 'pass', [], 'h', '0.1.0');
             INSERT INTO samples VALUES ((SELECT run_id FROM runs), 250, 99.5, 1000)",
        )
        .expect("rows");
        // This looptop takes the file from v1 to the current schema.
        migrate(&conn, &path).expect("current");
        assert_eq!(version(&conn, &path), Ok(SCHEMA_VERSION));
        let (runs, samples, column): (i64, i64, Option<f64>) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM samples WHERE cpu_pct = 99.5), \
                 (SELECT any_value(gpu_util_mean_pct) FROM runs)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("query");
        assert_eq!((runs, samples, column), (1, 1, None));
        // Later tables start empty and later columns read NULL for the old run.
        let (threads, waited): (i64, Option<f64>) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM thread_samples), (SELECT any_value(consumer_wait_pct) FROM runs)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("query");
        assert_eq!((threads, waited), (0, None));
        // A later looptop's file is refused, untouched.
        let later: Vec<&str> = MIGRATIONS
            .iter()
            .copied()
            .chain(["ALTER TABLE runs ADD COLUMN x DOUBLE;"])
            .collect();
        migrate_with(&conn, &path, &later).expect("later");
        assert!(matches!(
            migrate(&conn, &path),
            Err(StoreError::Newer { found, .. }) if found == SCHEMA_VERSION + 1
        ));
    }

    #[test]
    fn hints_written_before_ids_existed_get_their_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.duckdb");
        let conn = Connection::open(&path).expect("open");
        migrate_with(&conn, &path, &MIGRATIONS[..5]).expect("v5");
        conn.execute_batch(
            "INSERT INTO runs (run_id, job, command, kind, started_at, outcome, trigger_files, host, looptop_version, hints) \
             VALUES (uuid(), 'train', 'python t.py', 'train', now(), 'pass', [], 'h', '0.1.0', \
             ['one process is at 100 % of a core while the GPU waits: give the data loader more workers (DataLoader num_workers)', \
              'the GPU is busy but its memory only 12 % used: the batch could grow', 'words of a later looptop']), \
             (uuid(), 'q', 'q', 'query', now(), 'pass', [], 'h', '0.1.0', NULL)",
        )
        .expect("rows");
        migrate(&conn, &path).expect("current");
        let ids: Vec<Option<String>> = conn
            .prepare("SELECT array_to_string(hint_ids, ',') FROM runs ORDER BY job DESC")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .expect("ids");
        assert_eq!(
            ids,
            vec![Some("more-workers,batch-could-grow,unknown".to_string()), None]
        );
    }

    #[test]
    fn another_duckdb_database_is_not_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("other.duckdb");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE customers (id INTEGER)")
            .expect("table");
        assert!(matches!(migrate(&conn, &path), Err(StoreError::NotHistory { .. })));
    }
}
