//! Reading the history: the views `looptop history` and `looptop stats` print, raw SQL for
//! `looptop query`, and export. Connections are read-only, so nothing here can change the
//! history, and they are short-lived, so a recording looptop is never kept waiting for long.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use duckdb::types::Value;
use duckdb::{params_from_iter, Connection};

use super::table::{Cell, Table};
use super::test_cases;
use super::{journal, open, schema, Access, StoreError};
use crate::diagnose::cluster::ClusterReport;
use crate::diagnose::files_read::FileRead;
use crate::diagnose::metrics::MetricSummary;
use crate::diagnose::per_test::{TestMemory, TestsReport};
use crate::diagnose::regression::Flag;
use crate::profile::{FrameShare, Profile, ThreadShare};
use crate::report::{Outcome, TrendPoint};
use crate::sample::{ClusterEngine, DataFormat};

/// Durations of the last runs shown as the trend in `stats`.
pub const TREND_RUNS: usize = 20;

/// An open, read-only history.
pub struct History {
    conn: Connection,
}

/// What `History::counts` finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HistoryCounts {
    /// Rows in `runs`.
    pub runs: i64,
    /// Rows in `samples`.
    pub samples: i64,
    /// Schema version of the file.
    pub schema: i64,
}

/// `looptop export` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header.
    Csv,
}

impl History {
    /// Opens the history at `path` for reading, waiting while a recorder holds it. Runs left
    /// in the journal by a looptop that could not write them are moved in first, when the file
    /// can be written.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if journal::has_runs(path) && path.exists() {
            if let Ok(conn) = open(path, Access::Write) {
                if schema::version(&conn, path) == Ok(schema::SCHEMA_VERSION) {
                    super::recorder::ingest_journal(&conn, path);
                }
            }
        }
        let conn = open(path, Access::Read)?;
        let found = schema::version(&conn, path)?;
        if found > schema::SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: path.to_path_buf(),
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        Ok(Self { conn })
    }

    /// How many runs and samples the history holds, and its schema version.
    pub fn counts(&self) -> Result<HistoryCounts, StoreError> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM samples), \
                 (SELECT max(version) FROM looptop_schema)",
                [],
                |row| {
                    Ok(HistoryCounts {
                        runs: row.get(0)?,
                        samples: row.get(1)?,
                        schema: row.get(2)?,
                    })
                },
            )
            .map_err(|e| StoreError::Sql(e.to_string()))
    }

    /// Durations of the newest `limit` passing runs of `job` with this `command`, oldest first:
    /// the regression baseline a new looptop starts from.
    pub fn recent_passing_durations(&self, job: &str, command: &str, limit: usize) -> Result<Vec<f64>, StoreError> {
        let failed = |e: duckdb::Error| StoreError::Sql(e.to_string());
        let mut stmt = self
            .conn
            .prepare(
                "SELECT duration_ms FROM (SELECT duration_ms, started_at FROM runs WHERE job = ? AND command = ? \
                 AND outcome = 'pass' AND duration_ms IS NOT NULL AND coalesce(test_selection, '') <> 'only' \
                 ORDER BY started_at DESC LIMIT ?) ORDER BY started_at",
            )
            .map_err(failed)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(duckdb::params![job, command, limit], |row| row.get(0))
            .map_err(failed)?;
        rows.collect::<Result<Vec<f64>, _>>().map_err(failed)
    }

    /// Each test's recent passing times (at most `limit`) and last outcome, over the recent runs
    /// of `job` with this `command`: what a new looptop judges the job's next tests against.
    pub fn test_memory(&self, job: &str, command: &str, limit: usize) -> Result<TestMemory, StoreError> {
        test_cases::memory(&self.conn, job, command, limit).map_err(|e| StoreError::Sql(e.to_string()))
    }

    /// `looptop tests`: the slowest `limit` tests (of `job`, if given) with their median, last
    /// time and outcome, flakiness, last change and trend.
    pub fn tests(&self, job: Option<&str>, limit: usize) -> Result<Table, StoreError> {
        let job = Value::from(job.map(str::to_string));
        let limit = Value::BigInt(i64::try_from(limit).unwrap_or(i64::MAX));
        self.select(test_cases::TESTS_SQL, vec![job.clone(), job, limit])
    }

    /// The newest `limit` finished runs of `job`, oldest first, as the TUI's trend shows them.
    pub fn recent_trend(&self, job: &str, limit: usize) -> Result<Vec<TrendPoint>, StoreError> {
        let failed = |e: duckdb::Error| StoreError::Sql(e.to_string());
        let mut stmt = self
            .conn
            .prepare(
                "SELECT * FROM (SELECT run_id::VARCHAR, duration_ms, outcome, regression, \
                 strftime(started_at::TIMESTAMP, '%Y-%m-%dT%H:%M:%SZ'), array_to_string(trigger_files, chr(10)), \
                 verdict_summary, array_to_string(coalesce(hints, []), chr(10)), metric_summary, started_at, verdict, \
                 query_profile, regression_ratio, baseline_runs, baseline_ms, gpu_verdicts, tests, cluster_engine, \
                 cluster_workers, cluster_startup_ms, cluster_worked, input_bytes FROM runs \
                 WHERE job = ? AND duration_ms IS NOT NULL AND outcome <> ? \
                 ORDER BY started_at DESC LIMIT ?) ORDER BY started_at",
            )
            .map_err(failed)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let split = |text: Option<String>| -> Vec<String> {
            text.map(|t| t.lines().map(str::to_string).filter(|l| !l.is_empty()).collect())
                .unwrap_or_default()
        };
        let rows = stmt
            .query_map(duckdb::params![job, Outcome::Running.as_str(), limit], |row| {
                let outcome: String = row.get(2)?;
                // A word from a newer looptop is not shown as something it is not: the run is left out.
                let Some(outcome) = Outcome::parse(&outcome) else {
                    return Ok(None);
                };
                let regression: Option<String> = row.get(3)?;
                let flag = match regression.as_deref() {
                    Some("slower") => Some(Flag::Slower),
                    Some("faster") => Some(Flag::Faster),
                    _ => None,
                };
                let measured: (Option<f64>, Option<u32>, Option<f64>) = (row.get(12)?, row.get(13)?, row.get(14)?);
                let regression_line = match (flag, measured) {
                    (Some(flag), (Some(ratio), Some(runs), Some(baseline_ms))) => Some(crate::report::regression_line(
                        flag,
                        ratio,
                        usize::try_from(runs).unwrap_or(0),
                        baseline_ms,
                    )),
                    _ => None,
                };
                let duration_ms: f64 = row.get(1)?;
                let engine: Option<String> = row.get(17)?;
                let cluster = engine.as_deref().and_then(ClusterEngine::parse).map(|engine| {
                    let startup_ms: f64 = row.get::<_, Option<f64>>(19).ok().flatten().unwrap_or(0.0);
                    ClusterReport {
                        engine,
                        workers: row.get::<_, Option<u32>>(18).ok().flatten().unwrap_or(0),
                        startup_ms,
                        startup_pct: if duration_ms > 0.0 {
                            (startup_ms / duration_ms * 1000.0).round() / 10.0
                        } else {
                            0.0
                        },
                        worked: row.get::<_, Option<bool>>(20).ok().flatten().unwrap_or(false),
                        input_bytes: row
                            .get::<_, Option<i64>>(21)
                            .ok()
                            .flatten()
                            .and_then(|b| u64::try_from(b).ok())
                            .unwrap_or(0),
                    }
                });
                let mut description = described(
                    row.get::<_, Option<String>>(10)?.as_deref(),
                    row.get(6)?,
                    regression_line,
                    split(row.get(7)?),
                    Kept {
                        metrics: row.get(8)?,
                        query: row.get(11)?,
                        gpus: row.get(15)?,
                        tests: row.get(16)?,
                    },
                );
                description.cluster = cluster.as_ref().map(crate::diagnose::cluster::describe);
                Ok(Some(TrendPoint {
                    run_id: row.get(0)?,
                    duration_ms: row.get(1)?,
                    outcome,
                    regression: flag,
                    started: row.get(4)?,
                    trigger: split(row.get(5)?),
                    description,
                }))
            })
            .map_err(failed)?;
        let mut points: Vec<TrendPoint> = rows
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        // A file from before profiles (or a failed read of them) shows the runs without.
        let mut profiles = self.profiles(job).unwrap_or_default();
        for point in &mut points {
            if let Some(profile) = profiles.remove(&point.run_id) {
                point.description.profile = crate::report::profile_lines(&profile);
            }
        }
        // A file from before `files_read` shows the runs without.
        let mut files = self.files_read(job).unwrap_or_default();
        for point in &mut points {
            if let Some(files) = files.remove(&point.run_id) {
                point.description.files_read = crate::diagnose::files_read::describe(&files);
            }
        }
        Ok(points)
    }

    /// The data files each of `job`'s runs read, by run id, open longest first.
    fn files_read(&self, job: &str) -> duckdb::Result<HashMap<String, Vec<FileRead>>> {
        let mut files: HashMap<String, Vec<FileRead>> = HashMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT run_id::VARCHAR, path, format, bytes, size_bytes, open_pct, first_open_ms FROM files_read \
             WHERE run_id IN (SELECT run_id FROM runs WHERE job = ?) ORDER BY run_id, rank",
        )?;
        let rows = stmt.query_map(duckdb::params![job], |row| {
            let format: String = row.get(2)?;
            let count = |i: usize| -> duckdb::Result<u64> { Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0)) };
            Ok((
                row.get::<_, String>(0)?,
                DataFormat::parse(&format).map(|format| -> duckdb::Result<FileRead> {
                    Ok(FileRead {
                        path: row.get(1)?,
                        format,
                        bytes: count(3)?,
                        size_bytes: count(4)?,
                        open_pct: row.get(5)?,
                        first_open_ms: row.get(6)?,
                    })
                }),
            ))
        })?;
        for row in rows {
            let (run_id, file) = row?;
            if let Some(file) = file {
                files.entry(run_id).or_default().push(file?);
            }
        }
        Ok(files)
    }

    /// The profiles of `job`'s runs, by run id, as far as the "where the time goes" lines need
    /// them (their first frames and threads).
    fn profiles(&self, job: &str) -> duckdb::Result<HashMap<String, Profile>> {
        let items = i64::try_from(crate::report::PROFILE_LINE_ITEMS).unwrap_or(i64::MAX);
        let mut profiles: HashMap<String, Profile> = HashMap::new();
        let mut runs = self.conn.prepare(
            "SELECT run_id::VARCHAR, profile_samples FROM runs WHERE job = ? AND profile_samples IS NOT NULL",
        )?;
        for row in runs.query_map(duckdb::params![job], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))? {
            let (run_id, samples) = row?;
            profiles.insert(
                run_id,
                Profile {
                    samples,
                    ..Profile::default()
                },
            );
        }
        let mut frames = self.conn.prepare(
            "SELECT run_id::VARCHAR, function, file, line, share_pct, idle, own_python FROM frames \
             WHERE rank <= ? AND run_id IN (SELECT run_id FROM runs WHERE job = ?) ORDER BY run_id, rank",
        )?;
        let rows = frames.query_map(duckdb::params![items, job], |row| {
            Ok((
                row.get::<_, String>(0)?,
                FrameShare {
                    function: row.get(1)?,
                    file: row.get(2)?,
                    line: row.get(3)?,
                    share_pct: row.get(4)?,
                    idle: row.get(5)?,
                    own_python: row.get(6)?,
                },
            ))
        })?;
        for row in rows {
            let (run_id, frame) = row?;
            profiles.entry(run_id).or_default().frames.push(frame);
        }
        let mut threads = self.conn.prepare(
            "SELECT run_id::VARCHAR, name, cpu_pct, idle_pct, waits_in FROM profile_threads \
             WHERE rank <= ? AND run_id IN (SELECT run_id FROM runs WHERE job = ?) ORDER BY run_id, rank",
        )?;
        let rows = threads.query_map(duckdb::params![items, job], |row| {
            Ok((
                row.get::<_, String>(0)?,
                ThreadShare {
                    name: row.get(1)?,
                    cpu_pct: row.get(2)?,
                    idle_pct: row.get(3)?,
                    waits_in: row.get(4)?,
                },
            ))
        })?;
        for row in rows {
            let (run_id, thread) = row?;
            profiles.entry(run_id).or_default().threads.push(thread);
        }
        Ok(profiles)
    }

    /// Runs any SQL statement and returns its result.
    pub fn query(&self, sql: &str) -> Result<Table, StoreError> {
        self.select(sql, Vec::new())
    }

    /// The newest `limit` runs (of one job, if given), newest first.
    pub fn recent_runs(&self, job: Option<&str>, limit: usize) -> Result<Table, StoreError> {
        let sql = "SELECT started_at, job, duration_ms, outcome, exit_code, \
                   CASE WHEN git_commit IS NULL THEN NULL ELSE left(git_commit, 10) || CASE WHEN git_dirty THEN '+' ELSE '' END END AS git_commit, \
                   trigger_files AS trigger, run_id::VARCHAR AS run_id \
                   FROM runs WHERE (? IS NULL OR job = ?) ORDER BY started_at DESC LIMIT ?";
        let job = job.map(str::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.select(
            sql,
            vec![Value::from(job.clone()), Value::from(job), Value::BigInt(limit)],
        )
    }

    /// Per job: how many runs, and over the passing ones the median, p90, MAD, min and max
    /// duration, and the trend of the last `TREND_RUNS`.
    pub fn stats(&self, job: Option<&str>) -> Result<Table, StoreError> {
        let sql = format!(
            "WITH passing AS ( \
                 SELECT job, started_at, duration_ms, \
                        row_number() OVER (PARTITION BY job ORDER BY started_at DESC) AS newest \
                 FROM runs WHERE outcome = 'pass' AND duration_ms IS NOT NULL AND (? IS NULL OR job = ?)), \
             timing AS ( \
                 SELECT job, count(*) AS passed, median(duration_ms) AS median_ms, \
                        quantile_cont(duration_ms, 0.9) AS p90_ms, mad(duration_ms) AS mad_ms, \
                        min(duration_ms) AS min_ms, max(duration_ms) AS max_ms, \
                        list(duration_ms ORDER BY started_at) FILTER (WHERE newest <= {TREND_RUNS}) AS recent \
                 FROM passing GROUP BY job), \
             counts AS (SELECT job, count(*) AS runs FROM runs WHERE (? IS NULL OR job = ?) GROUP BY job) \
             SELECT counts.job, runs, coalesce(passed, 0) AS passed, median_ms, p90_ms, mad_ms, min_ms, max_ms, recent \
             FROM counts LEFT JOIN timing USING (job) ORDER BY counts.job"
        );
        let job = Value::from(job.map(str::to_string));
        let mut table = self.select(&sql, vec![job.clone(), job.clone(), job.clone(), job])?;
        // The last column becomes a sparkline for the terminal; JSON keeps the numbers.
        if let Some(last) = table.columns.last_mut() {
            *last = "trend".into();
        }
        Ok(table)
    }

    /// Writes every table into `dir` (one file each, via DuckDB's COPY); returns the files.
    pub fn export(&self, format: ExportFormat, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Unwritable {
            path: dir.to_path_buf(),
            detail: e.to_string(),
        })?;
        let (extension, options) = match format {
            ExportFormat::Parquet => ("parquet", "FORMAT PARQUET"),
            ExportFormat::Csv => ("csv", "FORMAT CSV, HEADER"),
        };
        let mut files = Vec::new();
        for table in [
            "runs",
            "samples",
            "gpu_samples",
            "thread_samples",
            "metrics",
            "test_cases",
            "frames",
            "profile_threads",
            "files_read",
        ] {
            let file = dir.join(format!("{table}.{extension}"));
            let quoted = file.display().to_string().replace('\'', "''");
            self.conn
                .execute_batch(&format!("COPY {table} TO '{quoted}' ({options})"))
                .map_err(|e| StoreError::Sql(e.to_string()))?;
            files.push(file);
        }
        Ok(files)
    }

    fn select(&self, sql: &str, params: Vec<Value>) -> Result<Table, StoreError> {
        let failed = |e: duckdb::Error| StoreError::Sql(e.to_string());
        let mut stmt = self.conn.prepare(sql).map_err(failed)?;
        let mut rows = stmt.query(params_from_iter(params)).map_err(failed)?;
        let mut cells = Vec::new();
        let mut width = 0;
        while let Some(row) = rows.next().map_err(failed)? {
            width = row.as_ref().column_count();
            let values: Result<Vec<Cell>, _> = (0..width).map(|i| row.get::<_, Value>(i).map(Cell::from)).collect();
            cells.push(values.map_err(failed)?);
        }
        drop(rows);
        let columns = stmt.column_names();
        debug_assert!(cells.is_empty() || width == columns.len());
        Ok(Table { columns, rows: cells })
    }
}

/// What the history keeps of a run's description as JSON text, column by column.
struct Kept {
    /// `metric_summary`.
    metrics: Option<String>,
    /// `query_profile`.
    query: Option<String>,
    /// `gpu_verdicts`.
    gpus: Option<String>,
    /// `tests`.
    tests: Option<String>,
}

/// A recorded run's description, from what the history kept of it: its verdict (`kind` and
/// `summary`), its regression line, the verdict's hints, and the JSON columns (`kept`).
fn described(
    kind: Option<&str>,
    summary: Option<String>,
    regression: Option<String>,
    hints: Vec<String>,
    kept: Kept,
) -> crate::report::Description {
    let Kept {
        metrics,
        query,
        gpus,
        tests,
    } = kept;
    let query: Option<serde_json::Value> = query.and_then(|json| serde_json::from_str(&json).ok());
    let tests: Option<TestsReport> = tests.and_then(|json| serde_json::from_str(&json).ok());
    // Before hints had ids, a query's hints were kept only as words in its profile; since, every
    // hint is in the `hints` column and the profile keeps them as objects.
    let query_hints = query
        .as_ref()
        .and_then(|q| q.get("hints")?.as_array().cloned())
        .unwrap_or_default();
    crate::report::Description {
        verdict: summary.filter(|_| kind != Some(crate::diagnose::verdict::Kind::TooShort.as_str())),
        gpus: gpus
            .and_then(|json| serde_json::from_str::<Vec<crate::diagnose::gpus::GpuVerdict>>(&json).ok())
            .and_then(|g| crate::diagnose::gpus::describe(&g)),
        regression,
        metrics: metrics
            .and_then(|json| serde_json::from_str::<Vec<MetricSummary>>(&json).ok())
            .and_then(|m| crate::diagnose::metrics::describe(&m)),
        query: query
            .and_then(|q| serde_json::from_value::<crate::diagnose::query::QueryProfile>(q).ok())
            .map(|p| crate::report::query_line(&p)),
        tests: tests.as_ref().map(crate::diagnose::per_test::describe),
        slowest_tests: tests.as_ref().and_then(crate::diagnose::per_test::describe_slowest),
        profile: Vec::new(),
        files_read: None,
        cluster: None,
        hints: hints
            .into_iter()
            .chain(query_hints.iter().filter_map(|h| h.as_str().map(str::to_string)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::diagnose::query::{QueryProfile, QueryReport};
    use crate::diagnose::regression::Regression;
    use crate::report::{Description, RunFinished, RunIdentity, RunStarted};
    use crate::store::recorder::Recorder;

    #[test]
    fn a_recorded_run_is_described_as_it_was_when_it_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.duckdb");
        let (recorder, _) = Recorder::in_process(&path, dir.path()).expect("start");
        let run = RunIdentity {
            run_id: uuid::Uuid::now_v7().to_string(),
            job: "totals".into(),
            command: "looptop exec-query --sql q.sql".into(),
            kind: crate::config::JobKind::Query,
            trigger: Vec::new(),
            ts: SystemTime::now(),
            log: None,
        };
        let started = RunStarted {
            run: run.clone(),
            pid: 1,
            targets: None,
            selection: None,
        };
        assert_eq!(recorder.run_started(&started), Ok(()));
        let finished = RunFinished {
            verdict: Some(crate::diagnose::verdict::judge(
                &crate::diagnose::on_gpu(&[95; 8]),
                2000.0,
            )),
            regression: Some(Regression {
                flag: Flag::Slower,
                ratio: 2.3,
                baseline_ms: 1210.0,
                baseline_runs: 7,
                noise_ms: 12.0,
            }),
            query: Some(QueryReport {
                profile: QueryProfile::from_duckdb_json("{}", 100, 12.0),
                hints: vec![crate::diagnose::hints::Hint::new("columnar", "a columnar copy")],
            }),
            profile: Some(crate::profile::test_profile()),
            files_read: vec![FileRead {
                path: "data/events.csv".into(),
                format: DataFormat::Csv,
                bytes: 48_000_000,
                size_bytes: 24_000_000,
                open_pct: 91.5,
                first_open_ms: 250.0,
            }],
            cluster: Some(ClusterReport {
                engine: ClusterEngine::Dask,
                workers: 2,
                startup_ms: 1500.0,
                startup_pct: 75.0,
                worked: true,
                input_bytes: 24_000_000,
            }),
            ..RunFinished::passed_for_test(run, 2000.0)
        };
        assert_eq!(recorder.run_finished(&finished), Ok(()));
        drop(recorder);
        let trend = History::open(&path)
            .expect("read")
            .recent_trend("totals", 10)
            .expect("trend");
        let live = Description::of(&finished);
        assert!(live.regression.is_some() && live.query.is_some() && !live.hints.is_empty());
        assert!(live.profile[0].starts_with("where the time goes (20 samples): 100 % row_features features.py:12"));
        assert_eq!(
            live.files_read.as_deref(),
            Some("files read: data/events.csv 24.0 MB csv (48.0 MB read), open 92 %")
        );
        assert_eq!(
            live.cluster.as_deref(),
            Some("local Dask cluster: 2 workers, start-up 1.500 s (75 % of the run), 24.0 MB of input")
        );
        assert_eq!(trend[0].description, live);
    }

    #[test]
    fn running_and_interrupted_runs_are_read_back_as_such_never_as_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.duckdb");
        let (recorder, _) = Recorder::in_process(&path, dir.path()).expect("start");
        let identity = |offset_s: u64| RunIdentity {
            run_id: uuid::Uuid::now_v7().to_string(),
            job: "train".into(),
            command: "python train.py".into(),
            kind: crate::config::JobKind::Train,
            trigger: Vec::new(),
            ts: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + offset_s),
            log: None,
        };
        let started = |run: &RunIdentity| RunStarted {
            run: run.clone(),
            pid: 1,
            targets: None,
            selection: None,
        };
        let (done, cut_short) = (identity(0), identity(10));
        assert_eq!(recorder.run_started(&started(&done)), Ok(()));
        let finished = RunFinished::passed_for_test(done, 2000.0);
        assert_eq!(recorder.run_finished(&finished), Ok(()));
        assert_eq!(recorder.run_started(&started(&cut_short)), Ok(()));
        drop(recorder);
        let change = |sql: &str| {
            let conn = open(&path, Access::Write).expect("open");
            conn.execute(sql, [&cut_short.run_id]).expect("update");
        };
        let outcomes = || -> Vec<Outcome> {
            let trend = History::open(&path).expect("read").recent_trend("train", 10);
            trend.expect("trend").iter().map(|p| p.outcome).collect()
        };
        // Its duration known (as a later looptop might fill in), a run still going is not on the trend.
        change("UPDATE runs SET duration_ms = 900 WHERE run_id = ?::UUID");
        assert_eq!(outcomes(), vec![Outcome::Pass]);
        // Its looptop gone: the run is shown as interrupted, not as killed.
        change("UPDATE runs SET outcome = 'interrupted' WHERE run_id = ?::UUID");
        assert_eq!(outcomes(), vec![Outcome::Pass, Outcome::Interrupted]);
        // A word looptop does not know leaves the run out rather than mislabel it.
        change("UPDATE runs SET outcome = 'vanished' WHERE run_id = ?::UUID");
        assert_eq!(outcomes(), vec![Outcome::Pass]);
    }
}
