//! One row of `runs` as plain values: built from a run's reports, written by the recorder, and
//! kept in the journal (as JSON) while the history file cannot be written. One code path turns a
//! row into SQL, whichever way it arrives, and writing the same row twice leaves the same row.

use duckdb::{params, Connection, ToSql};
use serde::{Deserialize, Serialize};

use crate::report::{RunFinished, RunStarted};

/// A run's row: what is known when it starts, and its end once it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// The run id (a UUID).
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The command.
    pub command: String,
    /// The job's kind.
    pub kind: String,
    /// Start, in microseconds since the Unix epoch.
    pub started_us: i64,
    /// The paths that caused the run, each one whole (a name may hold a newline).
    pub trigger: Vec<String>,
    /// The host.
    pub host: String,
    /// The looptop that ran it.
    pub looptop_version: String,
    /// Its log.
    pub log_path: Option<String>,
    /// The recording looptop ("host:pid:start").
    pub recorder: String,
    /// How it ended, once it has.
    pub end: Option<RunEnd>,
}

/// The columns written when a run ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEnd {
    /// Wall time.
    pub duration_ms: f64,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Signal name.
    pub signal: Option<String>,
    /// pass, fail, killed, timeout.
    pub outcome: String,
    /// User CPU.
    pub cpu_user_ms: f64,
    /// System CPU.
    pub cpu_sys_ms: f64,
    /// Samples taken.
    pub samples: u32,
    /// Mean CPU.
    pub cpu_mean_pct: Option<f64>,
    /// p95 CPU.
    pub cpu_p95_pct: Option<f64>,
    /// Peak RSS.
    pub peak_rss_bytes: Option<i64>,
    /// Mean GPU utilization.
    pub gpu_util_mean_pct: Option<f64>,
    /// Peak GPU memory.
    pub gpu_mem_peak_bytes: Option<i64>,
    /// Share of samples on a GPU.
    pub gpu_on_fraction: Option<f64>,
    /// Verdict kind.
    pub verdict: Option<String>,
    /// Verdict cause.
    pub verdict_cause: Option<String>,
    /// Verdict summary.
    pub verdict_summary: Option<String>,
    /// GPU busy share.
    pub gpu_busy_pct: Option<f64>,
    /// Time to first GPU use.
    pub time_to_gpu_ms: Option<f64>,
    /// Stalls seen.
    pub stalls: Option<u32>,
    /// Time stalled.
    pub stall_ms: Option<f64>,
    /// Every hint's text: the verdict's, then the query's.
    pub hints: Vec<String>,
    /// Their ids, in the same order.
    #[serde(default)]
    pub hint_ids: Vec<String>,
    /// Regression flag.
    pub regression: Option<String>,
    /// Ratio to the baseline.
    pub regression_ratio: Option<f64>,
    /// The baseline.
    pub baseline_ms: Option<f64>,
    /// A query job's rows.
    pub query_rows: Option<i64>,
    /// A query job's time.
    pub query_ms: Option<f64>,
    /// A query job's profile, as JSON.
    pub query_profile: Option<String>,
    /// The metric summary, as JSON.
    pub metric_summary: Option<String>,
    /// Mean share of the run its threads spent runnable but waiting for a CPU.
    #[serde(default)]
    pub run_queue_delay_pct: Option<f64>,
    /// How many passing runs the regression was measured against.
    #[serde(default)]
    pub baseline_runs: Option<u32>,
    /// The verdict's GPUs one by one, as JSON; `None` when the run held none.
    #[serde(default)]
    pub gpu_verdicts: Option<String>,
    /// Share of the run the job's consuming thread waited while another thread was busy.
    #[serde(default)]
    pub consumer_wait_pct: Option<f64>,
    /// `thread` or `process`: what the consumer waited for.
    #[serde(default)]
    pub producer_kind: Option<String>,
    /// Its name.
    #[serde(default)]
    pub producer_name: Option<String>,
    /// A test job's selection: full, first, only.
    #[serde(default)]
    pub test_selection: Option<String>,
    /// A test job's `run_finished.tests`, as JSON.
    #[serde(default)]
    pub tests: Option<String>,
    /// A test job's tests, one row each.
    #[serde(default)]
    pub test_cases: Vec<super::test_cases::TestCaseRow>,
    /// Where the run's Python time went, when it was profiled.
    #[serde(default)]
    pub profile: Option<ProfileRows>,
    /// The data files the run read, one row each.
    #[serde(default)]
    pub files_read: Vec<crate::diagnose::files_read::FileRead>,
    /// The local cluster in its process tree.
    #[serde(default)]
    pub cluster: Option<crate::diagnose::cluster::ClusterReport>,
}

/// A run's profile as the history keeps it: `runs.profile_samples`, and its rows of `frames`
/// and `profile_threads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRows {
    /// How many samples the shares are of.
    pub samples: u32,
    /// The top frames, largest share first.
    pub frames: Vec<FrameRow>,
    /// The threads, most active first.
    pub threads: Vec<crate::profile::ThreadShare>,
}

/// One row of `frames`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRow {
    /// The frame as the report shows it.
    #[serde(flatten)]
    pub frame: crate::profile::FrameShare,
    /// The project's own pure-Python code.
    pub own_python: bool,
}

impl ProfileRows {
    /// The rows of `profile`.
    pub fn of(profile: &crate::profile::Profile) -> Self {
        Self {
            samples: profile.samples,
            frames: profile
                .frames
                .iter()
                .map(|f| FrameRow {
                    frame: f.clone(),
                    own_python: f.own_python,
                })
                .collect(),
            threads: profile.threads.clone(),
        }
    }

    /// Replaces the run's profile rows with these.
    fn write(&self, conn: &Connection, run_id: &str) -> duckdb::Result<()> {
        conn.execute("DELETE FROM frames WHERE run_id = ?::UUID", params![run_id])?;
        conn.execute("DELETE FROM profile_threads WHERE run_id = ?::UUID", params![run_id])?;
        conn.execute(
            "UPDATE runs SET profile_samples = ? WHERE run_id = ?::UUID",
            params![self.samples, run_id],
        )?;
        let mut frames = conn.prepare(
            "INSERT INTO frames (run_id, rank, function, file, line, share_pct, idle, own_python) \
             VALUES (?::UUID, ?, ?, ?, ?, ?, ?, ?)",
        )?;
        for (rank, row) in (1u32..).zip(&self.frames) {
            let f = &row.frame;
            frames.execute(params![
                run_id,
                rank,
                f.function,
                f.file,
                f.line,
                f.share_pct,
                f.idle,
                row.own_python
            ])?;
        }
        let mut threads = conn.prepare(
            "INSERT INTO profile_threads (run_id, rank, name, cpu_pct, idle_pct, waits_in) \
             VALUES (?::UUID, ?, ?, ?, ?, ?)",
        )?;
        for (rank, t) in (1u32..).zip(&self.threads) {
            threads.execute(params![run_id, rank, t.name, t.cpu_pct, t.idle_pct, t.waits_in])?;
        }
        Ok(())
    }
}

fn bytes(value: Option<u64>) -> Option<i64> {
    value.map(|b| i64::try_from(b).unwrap_or(i64::MAX))
}

impl RunRow {
    /// The row of a run that has just started.
    pub fn started(started: &RunStarted, recorder: String, host: String) -> Self {
        let run = &started.run;
        Self {
            run_id: run.run_id.clone(),
            job: run.job.clone(),
            command: run.command.clone(),
            kind: run.kind.as_str().to_string(),
            started_us: super::recorder::micros_since_epoch(run.ts),
            trigger: run.trigger_text(),
            host,
            looptop_version: env!("CARGO_PKG_VERSION").to_string(),
            log_path: run.log.as_ref().map(|p| p.display().to_string()),
            recorder,
            end: None,
        }
    }

    /// The whole row of a finished run.
    pub fn finished(finished: &RunFinished, recorder: String, host: String) -> Self {
        let started = RunStarted {
            run: finished.run.clone(),
            pid: 0,
            targets: None,
            selection: None,
        };
        let usage = &finished.usage;
        let verdict = finished.verdict.as_ref();
        let regression = finished.regression.as_ref();
        let query = finished.query.as_ref();
        Self {
            end: Some(RunEnd {
                duration_ms: finished.duration_ms,
                exit_code: finished.exit_code,
                signal: finished.signal.map(crate::report::signal_name),
                outcome: finished.outcome.as_str().to_string(),
                cpu_user_ms: finished.cpu_user_ms,
                cpu_sys_ms: finished.cpu_sys_ms,
                samples: usage.samples,
                cpu_mean_pct: usage.cpu_mean_pct,
                cpu_p95_pct: usage.cpu_p95_pct,
                peak_rss_bytes: bytes(usage.peak_rss_bytes),
                gpu_util_mean_pct: usage.gpu_util_mean_pct,
                gpu_mem_peak_bytes: bytes(usage.gpu_mem_peak_bytes),
                gpu_on_fraction: usage.gpu_on_fraction,
                verdict: verdict.map(|v| v.kind.as_str().to_string()),
                verdict_cause: verdict.and_then(|v| v.cause).map(|c| c.as_str().to_string()),
                verdict_summary: verdict.map(|v| v.summary.clone()),
                gpu_busy_pct: verdict.and_then(|v| v.gpu_busy_pct),
                time_to_gpu_ms: verdict.and_then(|v| v.time_to_gpu_ms),
                stalls: verdict.map(|v| u32::try_from(v.stalls).unwrap_or(u32::MAX)),
                stall_ms: verdict.map(|v| v.stall_ms),
                hints: finished.hints().map(|h| h.text.clone()).collect(),
                hint_ids: finished.hints().map(|h| h.id.clone()).collect(),
                regression: regression.map(|r| r.flag.as_str().to_string()),
                regression_ratio: regression.map(|r| r.ratio),
                baseline_ms: regression.map(|r| r.baseline_ms),
                query_rows: query.map(|q| i64::try_from(q.profile.rows).unwrap_or(i64::MAX)),
                query_ms: query.map(|q| q.profile.elapsed_ms),
                query_profile: query.and_then(|q| serde_json::to_string(q).ok()),
                metric_summary: (!finished.metrics.is_empty())
                    .then(|| serde_json::to_string(&finished.metrics).ok())
                    .flatten(),
                run_queue_delay_pct: usage.run_queue_delay_pct,
                baseline_runs: regression.map(|r| u32::try_from(r.baseline_runs).unwrap_or(u32::MAX)),
                gpu_verdicts: verdict
                    .filter(|v| !v.gpus.is_empty())
                    .and_then(|v| serde_json::to_string(&v.gpus).ok()),
                consumer_wait_pct: verdict.and_then(|v| v.consumer_wait_pct),
                producer_kind: verdict
                    .and_then(|v| v.producer.as_ref())
                    .map(|p| p.kind.as_str().to_string()),
                producer_name: verdict.and_then(|v| v.producer.as_ref()).map(|p| p.name.clone()),
                test_selection: finished.tests.as_ref().map(|t| t.selection.as_str().to_string()),
                tests: finished.tests.as_ref().and_then(|t| serde_json::to_string(t).ok()),
                test_cases: finished
                    .tests
                    .as_ref()
                    .map(super::test_cases::TestCaseRow::all)
                    .unwrap_or_default(),
                profile: finished.profile.as_ref().map(ProfileRows::of),
                files_read: finished.files_read.clone(),
                cluster: finished.cluster.clone(),
            }),
            ..Self::started(&started, recorder, host)
        }
    }

    /// Writes the row: inserts its start if the history lacks it, then its end if it has one.
    pub fn write(&self, conn: &Connection) -> duckdb::Result<()> {
        let exists: bool = conn
            .prepare_cached("SELECT count(*) > 0 FROM runs WHERE run_id = ?::UUID")?
            .query_row(params![self.run_id], |row| row.get(0))?;
        if !exists {
            self.insert_start(conn)?;
        }
        if let Some(end) = &self.end {
            self.update_end(conn, end)?;
            if end.test_selection.is_some() {
                super::test_cases::write(conn, &self.run_id, &end.test_cases)?;
            }
            if let Some(profile) = &end.profile {
                profile.write(conn, &self.run_id)?;
            }
            write_files_read(conn, &self.run_id, &end.files_read)?;
            write_cluster(conn, &self.run_id, end.cluster.as_ref())?;
        }
        Ok(())
    }

    fn insert_start(&self, conn: &Connection) -> duckdb::Result<usize> {
        let sql = format!(
            "INSERT INTO runs (run_id, job, command, kind, started_at, outcome, trigger_files, host, \
             looptop_version, log_path, recorder) VALUES (?::UUID, ?, ?, ?, make_timestamp(?::BIGINT)::TIMESTAMPTZ, \
             'running', {}, ?, ?, ?, ?)",
            list_placeholders(self.trigger.len())
        );
        let mut values: Vec<&dyn ToSql> = vec![
            &self.run_id as &dyn ToSql,
            &self.job,
            &self.command,
            &self.kind,
            &self.started_us,
        ];
        values.extend(self.trigger.iter().map(|t| t as &dyn ToSql));
        values.extend([
            &self.host as &dyn ToSql,
            &self.looptop_version,
            &self.log_path,
            &self.recorder,
        ]);
        // Cached: the journal's runs are written in a batch, and planning is most of the cost.
        conn.prepare_cached(&sql)?.execute(values.as_slice())
    }

    fn update_end(&self, conn: &Connection, end: &RunEnd) -> duckdb::Result<usize> {
        let sql = format!(
            "UPDATE runs SET duration_ms = ?, exit_code = ?, signal = ?, outcome = ?, cpu_user_ms = ?, \
             cpu_sys_ms = ?, samples = ?, cpu_mean_pct = ?, cpu_p95_pct = ?, peak_rss_bytes = ?, \
             gpu_util_mean_pct = ?, gpu_mem_peak_bytes = ?, gpu_on_fraction = ?, verdict = ?, verdict_cause = ?, \
             verdict_summary = ?, gpu_busy_pct = ?, time_to_gpu_ms = ?, stalls = ?, stall_ms = ?, hints = {}, hint_ids = {}, \
             regression = ?, regression_ratio = ?, baseline_ms = ?, query_rows = ?, query_ms = ?, query_profile = ?, \
             metric_summary = ?, run_queue_delay_pct = ?, baseline_runs = ?, gpu_verdicts = ?, consumer_wait_pct = ?, \
             producer_kind = ?, producer_name = ?, test_selection = ?, tests = ? WHERE run_id = ?::UUID",
            list_placeholders(end.hints.len()),
            list_placeholders(end.hint_ids.len())
        );
        let mut values: Vec<&dyn ToSql> = vec![
            &end.duration_ms as &dyn ToSql,
            &end.exit_code,
            &end.signal,
            &end.outcome,
            &end.cpu_user_ms,
            &end.cpu_sys_ms,
            &end.samples,
            &end.cpu_mean_pct,
            &end.cpu_p95_pct,
            &end.peak_rss_bytes,
            &end.gpu_util_mean_pct,
            &end.gpu_mem_peak_bytes,
            &end.gpu_on_fraction,
            &end.verdict,
            &end.verdict_cause,
            &end.verdict_summary,
            &end.gpu_busy_pct,
            &end.time_to_gpu_ms,
            &end.stalls,
            &end.stall_ms,
        ];
        values.extend(end.hints.iter().map(|h| h as &dyn ToSql));
        values.extend(end.hint_ids.iter().map(|h| h as &dyn ToSql));
        values.extend([
            &end.regression as &dyn ToSql,
            &end.regression_ratio,
            &end.baseline_ms,
            &end.query_rows,
            &end.query_ms,
            &end.query_profile,
            &end.metric_summary,
            &end.run_queue_delay_pct,
            &end.baseline_runs,
            &end.gpu_verdicts,
            &end.consumer_wait_pct,
            &end.producer_kind,
            &end.producer_name,
            &end.test_selection,
            &end.tests,
            &self.run_id,
        ]);
        conn.prepare_cached(&sql)?.execute(values.as_slice())
    }
}

/// Replaces the run's rows of `files_read` with `files`.
fn write_files_read(
    conn: &Connection,
    run_id: &str,
    files: &[crate::diagnose::files_read::FileRead],
) -> duckdb::Result<()> {
    // A row written again has the same files: none now means none before.
    if files.is_empty() {
        return Ok(());
    }
    conn.execute("DELETE FROM files_read WHERE run_id = ?::UUID", params![run_id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO files_read (run_id, rank, path, format, bytes, size_bytes, open_pct, first_open_ms) \
         VALUES (?::UUID, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for (rank, f) in (1u32..).zip(files) {
        insert.execute(params![
            run_id,
            rank,
            f.path,
            f.format.as_str(),
            bytes(Some(f.bytes)),
            bytes(Some(f.size_bytes)),
            f.open_pct,
            f.first_open_ms
        ])?;
    }
    Ok(())
}

/// Sets the run's `cluster_*` columns (NULL without a cluster).
fn write_cluster(
    conn: &Connection,
    run_id: &str,
    cluster: Option<&crate::diagnose::cluster::ClusterReport>,
) -> duckdb::Result<usize> {
    // The columns are NULL until set, and a row written again has the same cluster.
    if cluster.is_none() {
        return Ok(0);
    }
    conn.execute(
        "UPDATE runs SET cluster_engine = ?, cluster_workers = ?, cluster_startup_ms = ?, cluster_worked = ?, \
         input_bytes = ? WHERE run_id = ?::UUID",
        params![
            cluster.map(|c| c.engine.as_str()),
            cluster.map(|c| c.workers),
            cluster.map(|c| c.startup_ms),
            cluster.map(|c| c.worked),
            bytes(cluster.map(|c| c.input_bytes)),
            run_id
        ],
    )
}

/// A `VARCHAR[]` of `n` bound values: each element is bound whole, so no character inside one
/// (a newline in a file name) can split it.
fn list_placeholders(n: usize) -> String {
    if n == 0 {
        "[]::VARCHAR[]".to_string()
    } else {
        format!("[{}]::VARCHAR[]", vec!["?::VARCHAR"; n].join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_count_the_elements() {
        assert_eq!(list_placeholders(0), "[]::VARCHAR[]");
        assert_eq!(list_placeholders(2), "[?::VARCHAR, ?::VARCHAR]::VARCHAR[]");
    }
}
