//! The recorder: writes runs into the history from a thread of its own, each write in a
//! short-lived connection (see the module above for why). A run's row is written as `running`
//! when it starts and completed when it ends, and the loop waits (briefly) for each write before
//! it reports the run, so a run looptop has said is finished is on disk: `kill -9` loses nothing
//! but the in-flight runs, which the next looptop marks `interrupted`.
//!
//! While another process holds the file, writes wait in order and are retried; they are never
//! dropped for that. Any other failure turns history off for the session, said once.
//!
//! Samples are not acknowledged: they are kept and appended in batches of `SAMPLE_BATCH`, and
//! always before a run's end is written, so a finished run has all its samples on disk. A crash
//! loses at most the last batch of a run still going.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use duckdb::{params, Connection};

use super::samples::{append, append_metrics, load, MetricRow, SampleRow};
use super::{open, schema, Access, StoreError};
use crate::report::{RunFinished, RunStarted};
use crate::sample::Sample;

/// The longest the loop waits for a write before it carries on without the answer.
pub const ACK_WAIT: Duration = Duration::from_millis(1500);
/// How long it waits while writes are already known to be delayed (the file is busy).
pub const DELAYED_ACK_WAIT: Duration = Duration::from_millis(50);

/// Handle to the recording thread.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
    path: PathBuf,
}

/// Samples are appended once this many wait (30 s of one run at the default interval).
pub const SAMPLE_BATCH: usize = 120;
/// Samples kept while the file is busy, at most; beyond it the oldest are dropped (and said).
pub const MAX_PENDING_SAMPLES: usize = 50_000;

/// What the thread is asked to do.
// Run writes are rare (two per run); samples, the frequent ones, are already boxed.
#[allow(clippy::large_enum_variant)]
enum Request {
    /// A write, and where to send its outcome.
    Write {
        write: Write,
        ack: mpsc::Sender<Result<(), StoreError>>,
    },
    /// A sample for the next batch.
    Sample(SampleRow),
    /// A metric value for the next batch.
    Metric(MetricRow),
    /// A run's samples, read after every pending one is written, for `deliver`.
    Load { run_id: String, deliver: Deliver },
}

/// Where a past run's samples go once read.
pub type Deliver = Box<dyn FnOnce(Vec<Sample>) + Send>;

// Two writes per run: not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Write {
    Started(RunStarted),
    Finished(RunFinished),
}

/// What `Recorder::record` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// On disk.
    Done,
    /// Still waiting for the file (another process holds it); it will be written.
    Delayed,
}

impl Recorder {
    /// Opens the history at `path` (creating or migrating it), marks the runs left `running` by
    /// looptops that are gone as `interrupted`, and starts recording. `root` is the project,
    /// whose git commit each run records. Returns how many runs were marked interrupted.
    pub fn start(path: &Path, root: &Path) -> Result<(Self, usize), StoreError> {
        let conn = open(path, Access::Write)?;
        schema::migrate(&conn, path)?;
        let interrupted = mark_interrupted(&conn)?;
        drop(conn);
        let (tx, rx) = mpsc::channel();
        let thread_path = path.to_path_buf();
        let root = root.to_path_buf();
        std::thread::Builder::new()
            .name("looptop-history".into())
            .spawn(move || record_forever(&thread_path, &root, &rx))
            .map_err(|e| StoreError::Unwritable {
                path: path.to_path_buf(),
                detail: format!("cannot start the recording thread: {e}"),
            })?;
        Ok((
            Self {
                tx,
                path: path.to_path_buf(),
            },
            interrupted,
        ))
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a run's start; `patience` is how long to wait for the write (see `ACK_WAIT`).
    pub fn run_started(&self, started: &RunStarted, patience: Duration) -> Result<Recorded, StoreError> {
        self.send(Write::Started(started.clone()), patience)
    }

    /// Records a run's end; `patience` is how long to wait for the write.
    pub fn run_finished(&self, finished: &RunFinished, patience: Duration) -> Result<Recorded, StoreError> {
        self.send(Write::Finished(finished.clone()), patience)
    }

    /// Queues a sample for the next batch; never waits.
    pub fn sample(&self, run_id: &str, sample: &Sample) {
        let row = SampleRow {
            run_id: run_id.to_string(),
            sample: Box::new(sample.clone()),
        };
        // A stopped thread has already said why; the run's end will say it again.
        let _ = self.tx.send(Request::Sample(row));
    }

    /// Queues a metric value for the next batch; never waits.
    pub fn metric(&self, row: MetricRow) {
        let _ = self.tx.send(Request::Metric(row));
    }

    /// Reads run `run_id`'s samples on the recording thread (after the pending ones are
    /// written) and hands them to `deliver` there; never waits. Nothing is delivered if the
    /// history cannot be read.
    pub fn load_samples(&self, run_id: &str, deliver: Deliver) {
        let _ = self.tx.send(Request::Load {
            run_id: run_id.to_string(),
            deliver,
        });
    }

    fn send(&self, write: Write, patience: Duration) -> Result<Recorded, StoreError> {
        let (ack, answer) = mpsc::channel();
        let gone = || StoreError::Unwritable {
            path: self.path.clone(),
            detail: "the recording thread stopped".into(),
        };
        self.tx.send(Request::Write { write, ack }).map_err(|_| gone())?;
        match answer.recv_timeout(patience) {
            Ok(Ok(())) => Ok(Recorded::Done),
            Ok(Err(StoreError::Busy { .. })) | Err(mpsc::RecvTimeoutError::Timeout) => Ok(Recorded::Delayed),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}

/// The recording thread: takes requests in order, writes them in as few connections as it can,
/// and keeps what it could not write yet (file busy) for the next try.
fn record_forever(path: &Path, root: &Path, rx: &mpsc::Receiver<Request>) {
    let mut queue: VecDeque<(Write, mpsc::Sender<Result<(), StoreError>>)> = VecDeque::new();
    let mut samples: Vec<SampleRow> = Vec::new();
    let mut metrics: Vec<MetricRow> = Vec::new();
    let mut loads: Vec<(String, Deliver)> = Vec::new();
    let mut dropped_samples = 0usize;
    let mut listening = true;
    while listening || !samples.is_empty() || !metrics.is_empty() {
        let batch_full = samples.len() >= SAMPLE_BATCH || metrics.len() >= SAMPLE_BATCH;
        let waiting = !queue.is_empty() || !loads.is_empty() || batch_full;
        let next = if !listening {
            None
        } else if waiting {
            // Writes are waiting for a busy file: take new requests, but try again soon.
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(request) => Some(request),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    listening = false;
                    None
                }
            }
        } else {
            let request = rx.recv().ok();
            listening = request.is_some();
            request
        };
        for request in next.into_iter().chain(rx.try_iter()) {
            match request {
                Request::Write { write, ack } => queue.push_back((write, ack)),
                Request::Sample(row) => samples.push(row),
                Request::Metric(row) => metrics.push(row),
                Request::Load { run_id, deliver } => loads.push((run_id, deliver)),
            }
        }
        let excess =
            samples.len().saturating_sub(MAX_PENDING_SAMPLES) + metrics.len().saturating_sub(MAX_PENDING_SAMPLES);
        if excess > 0 {
            samples.drain(..samples.len().saturating_sub(MAX_PENDING_SAMPLES));
            metrics.drain(..metrics.len().saturating_sub(MAX_PENDING_SAMPLES));
            if dropped_samples == 0 {
                log::warn!(
                    "history: {} is busy for long; the oldest samples are dropped",
                    path.display()
                );
            }
            dropped_samples += excess;
        }
        // Samples and metrics alone wait for a full batch, unless looptop is stopping.
        let batch_full = samples.len() >= SAMPLE_BATCH || metrics.len() >= SAMPLE_BATCH;
        if queue.is_empty() && loads.is_empty() && !batch_full && listening {
            continue;
        }
        let conn = match open(path, Access::Write) {
            Ok(conn) => conn,
            Err(e) => {
                let keep = matches!(e, StoreError::Busy { .. });
                for (_, ack) in &queue {
                    let _ = ack.send(Err(e.clone()));
                }
                if !keep {
                    queue.clear();
                    samples.clear();
                    metrics.clear();
                    loads.clear();
                }
                if !listening && !keep {
                    return;
                }
                continue;
            }
        };
        // Samples first: a run's end is written after all of its samples.
        if !samples.is_empty() {
            if let Err(e) = append(&conn, &samples) {
                log::warn!("history: cannot write {} samples: {e}", samples.len());
            }
            samples.clear();
        }
        if !metrics.is_empty() {
            if let Err(e) = append_metrics(&conn, &metrics) {
                log::warn!("history: cannot write {} metric values: {e}", metrics.len());
            }
            metrics.clear();
        }
        let mut started = Vec::new();
        let mut answers = Vec::with_capacity(queue.len());
        while let Some((write, ack)) = queue.pop_front() {
            let result = apply(&conn, &write);
            if result.is_ok() {
                if let Write::Started(run) = &write {
                    started.push(run.run.run_id.clone());
                }
            }
            answers.push((ack, result));
        }
        let loaded: Vec<(Vec<Sample>, Deliver)> = loads
            .drain(..)
            .map(|(run_id, deliver)| {
                let samples = load(&conn, &run_id).unwrap_or_else(|e| {
                    log::warn!("history: cannot read the samples of run {run_id}: {e}");
                    Vec::new()
                });
                (samples, deliver)
            })
            .collect();
        // Answered once the connection is closed: a reader opened after the answer (in this
        // process too, where the file lock does not keep it out) sees the rows.
        drop(conn);
        for (ack, result) in answers {
            let _ = ack.send(result);
        }
        for (samples, deliver) in loaded {
            deliver(samples);
        }
        // The commit is looked up after the rows are written, so the loop never waits for git.
        if !started.is_empty() {
            record_commit(path, root, &started);
        }
    }
}

/// Adds the project's git commit to the runs just started. It is optional: if the file is
/// busy for longer than `super::BUSY_WAIT` the runs keep no commit.
fn record_commit(path: &Path, root: &Path, run_ids: &[String]) {
    let (Some(commit), dirty) = git_state(root) else { return };
    let Ok(conn) = open(path, Access::Write) else { return };
    for run_id in run_ids {
        let updated = conn.execute(
            "UPDATE runs SET git_commit = ?, git_dirty = ? WHERE run_id = ?::UUID",
            params![commit, dirty, run_id],
        );
        if let Err(e) = updated {
            log::warn!("history: cannot record the commit of run {run_id}: {e}");
        }
    }
}

fn apply(conn: &Connection, write: &Write) -> Result<(), StoreError> {
    let sql = |e: duckdb::Error| StoreError::Sql(e.to_string());
    match write {
        Write::Started(started) => insert_started(conn, started).map(|_| ()).map_err(sql),
        Write::Finished(finished) => {
            let usage = &finished.usage;
            let updated = conn
                .execute(
                    "UPDATE runs SET duration_ms = ?, exit_code = ?, signal = ?, outcome = ?, cpu_user_ms = ?, \
                     cpu_sys_ms = ?, samples = ?, cpu_mean_pct = ?, cpu_p95_pct = ?, peak_rss_bytes = ?, \
                     gpu_util_mean_pct = ?, gpu_mem_peak_bytes = ?, gpu_on_fraction = ? WHERE run_id = ?::UUID",
                    params![
                        finished.duration_ms,
                        finished.exit_code,
                        finished.signal,
                        finished.outcome.as_str(),
                        finished.cpu_user_ms,
                        finished.cpu_sys_ms,
                        usage.samples,
                        usage.cpu_mean_pct,
                        usage.cpu_p95_pct,
                        usage.peak_rss_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                        usage.gpu_util_mean_pct,
                        usage.gpu_mem_peak_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                        usage.gpu_on_fraction,
                        finished.run.run_id
                    ],
                )
                .map_err(sql)?;
            if updated > 0 {
                record_diagnosis(conn, finished).map_err(sql)?;
            }
            if updated == 0 {
                // Its start was never written (history was busy, then looptop restarted it):
                // write the whole run now.
                let started = RunStarted {
                    run: finished.run.clone(),
                    pid: 0,
                };
                insert_started(conn, &started).map_err(sql)?;
                return apply(conn, write);
            }
            Ok(())
        }
    }
}

/// The run's verdict, regression, query profile and metric summary, in the same connection as
/// its end.
fn record_diagnosis(conn: &Connection, finished: &RunFinished) -> duckdb::Result<usize> {
    let verdict = finished.verdict.as_ref();
    let regression = finished.regression.as_ref();
    let query = finished.query.as_ref();
    let hints = verdict.map(|v| v.hints.join("\n")).unwrap_or_default();
    conn.execute(
        "UPDATE runs SET verdict = ?, verdict_cause = ?, verdict_summary = ?, gpu_busy_pct = ?, time_to_gpu_ms = ?, \
         stalls = ?, stall_ms = ?, hints = CASE WHEN ? = '' THEN []::VARCHAR[] ELSE string_split(?, chr(10)) END, \
         regression = ?, regression_ratio = ?, baseline_ms = ?, query_rows = ?, query_ms = ?, query_profile = ?, \
         metric_summary = ?, run_queue_delay_pct = ?, baseline_runs = ? WHERE run_id = ?::UUID",
        params![
            verdict.map(|v| v.kind.as_str()),
            verdict.and_then(|v| v.cause).map(|c| c.as_str()),
            verdict.map(|v| v.summary.as_str()),
            verdict.and_then(|v| v.gpu_busy_pct),
            verdict.and_then(|v| v.time_to_gpu_ms),
            verdict.map(|v| u32::try_from(v.stalls).unwrap_or(u32::MAX)),
            verdict.map(|v| v.stall_ms),
            hints,
            hints,
            regression.map(|r| r.flag.as_str()),
            regression.map(|r| r.ratio),
            regression.map(|r| r.baseline_ms),
            query.map(|q| i64::try_from(q.profile.rows).unwrap_or(i64::MAX)),
            query.map(|q| q.profile.elapsed_ms),
            query.and_then(|q| serde_json::to_string(q).ok()),
            (!finished.metrics.is_empty())
                .then(|| serde_json::to_string(&finished.metrics).ok())
                .flatten(),
            finished.usage.run_queue_delay_pct,
            regression.map(|r| u32::try_from(r.baseline_runs).unwrap_or(u32::MAX)),
            finished.run.run_id
        ],
    )
}

fn insert_started(conn: &Connection, started: &RunStarted) -> duckdb::Result<usize> {
    let run = &started.run;
    let triggers = run.trigger.join("\n");
    conn.execute(
        "INSERT INTO runs (run_id, job, command, kind, started_at, outcome, trigger_files, host, \
         looptop_version, log_path, recorder) VALUES (?::UUID, ?, ?, ?, make_timestamp(?::BIGINT)::TIMESTAMPTZ, \
         'running', CASE WHEN ? = '' THEN []::VARCHAR[] ELSE string_split(?, chr(10)) END, ?, ?, ?, ?)",
        params![
            run.run_id,
            run.job,
            run.command,
            run.kind.as_str(),
            micros_since_epoch(run.ts),
            triggers,
            triggers,
            host_name(),
            env!("CARGO_PKG_VERSION"),
            run.log.as_ref().map(|p| p.display().to_string()),
            recorder_id()
        ],
    )
}

/// Marks `running` rows whose looptop is gone (crashed, killed) as `interrupted`.
fn mark_interrupted(conn: &Connection) -> Result<usize, StoreError> {
    let sql = |e: duckdb::Error| StoreError::Sql(e.to_string());
    let recorders: Vec<String> = conn
        .prepare("SELECT DISTINCT coalesce(recorder, '') FROM runs WHERE outcome = 'running'")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(sql)?;
    let mut marked = 0;
    for recorder in recorders.iter().filter(|r| !recorder_alive(r)) {
        marked += conn
            .execute(
                "UPDATE runs SET outcome = 'interrupted' WHERE outcome = 'running' AND coalesce(recorder, '') = ?",
                params![recorder],
            )
            .map_err(sql)?;
    }
    Ok(marked)
}

/// This looptop, as "host:pid:start" (start in clock ticks after boot, so a reused pid differs).
pub fn recorder_id() -> String {
    let pid = std::process::id();
    format!("{}:{pid}:{}", host_name(), process_start(pid).unwrap_or(0))
}

/// Whether the looptop that wrote `recorder` still runs. One on another host cannot be checked
/// from here and counts as alive.
fn recorder_alive(recorder: &str) -> bool {
    let mut parts = recorder.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() {
        return true;
    }
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    process_start(pid) == Some(start)
}

/// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks after boot.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn micros_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The project's current commit and whether tracked files differ from it; `None`s outside git.
fn git_state(root: &Path) -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return (None, None);
    };
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    (Some(commit), dirty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_a_live_recorder_and_a_dead_pid_is_not() {
        assert!(recorder_alive(&recorder_id()));
        let dead = format!("{}:{}:1", host_name(), u32::MAX - 1);
        assert!(!recorder_alive(&dead));
        assert!(!recorder_alive("garbage"));
        assert!(recorder_alive("some-other-host:1:1"), "other hosts cannot be checked");
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;
    use crate::config::JobKind;
    use crate::report::{Outcome, RunIdentity};
    use crate::store::reader::History;
    use crate::store::table::Cell;

    fn identity(run_id: &str) -> RunIdentity {
        RunIdentity {
            run_id: run_id.into(),
            job: "train".into(),
            command: "python train.py".into(),
            kind: JobKind::Train,
            trigger: vec!["model.py".into(), "data/a.csv".into()],
            ts: SystemTime::now(),
            log: None,
        }
    }

    #[test]
    fn a_run_is_written_running_then_completed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".looptop/history.duckdb");
        let (recorder, interrupted) = Recorder::start(&path, dir.path()).expect("start");
        assert_eq!(interrupted, 0);
        let run_id = uuid::Uuid::now_v7().to_string();
        let started = RunStarted {
            run: identity(&run_id),
            pid: 1,
        };
        assert_eq!(recorder.run_started(&started, ACK_WAIT), Ok(Recorded::Done));
        let history = History::open(&path).expect("read");
        let outcome = history
            .query("SELECT outcome, trigger_files, kind FROM runs")
            .expect("query");
        assert_eq!(outcome.rows[0][0], Cell::Text("running".into()));
        assert_eq!(
            outcome.rows[0][1],
            Cell::List(vec![Cell::Text("model.py".into()), Cell::Text("data/a.csv".into())])
        );
        drop(history);
        // Samples wait for a batch, then go in before the run's end.
        for i in 0..5u32 {
            let sample = Sample {
                key: crate::event::RunKey(1),
                t_ms: f64::from(i) * 250.0,
                host: crate::sample::HostSample {
                    core_pct: vec![10.0, 100.0],
                    ..Default::default()
                },
                tree: crate::sample::TreeSample {
                    cpu_pct: 100.0,
                    rss_bytes: 1 << 20,
                    top: vec![crate::sample::ProcessSample {
                        pid: 42,
                        name: "loader".into(),
                        cpu_pct: 99.0,
                        rss_bytes: 1 << 20,
                    }],
                    ..Default::default()
                },
                gpus: vec![crate::sample::GpuSample {
                    index: 0,
                    util_pct: Some(18),
                    job_present: Some(true),
                    job_mem_bytes: None,
                    ..Default::default()
                }],
            };
            recorder.sample(&run_id, &sample);
        }
        let finished = RunFinished {
            run: identity(&run_id),
            exit_code: Some(0),
            signal: None,
            duration_ms: 1234.5,
            cpu_user_ms: 1000.0,
            cpu_sys_ms: 20.0,
            outcome: Outcome::Pass,
            usage: crate::report::RunUsage {
                samples: 5,
                cpu_mean_pct: Some(100.0),
                gpu_util_mean_pct: Some(18.0),
                ..Default::default()
            },
            verdict: None,
            regression: None,
            metrics: Vec::new(),
            query: None,
        };
        assert_eq!(recorder.run_finished(&finished, ACK_WAIT), Ok(Recorded::Done));
        let history = History::open(&path).expect("read");
        let row = history
            .query("SELECT outcome, duration_ms, exit_code, samples, gpu_util_mean_pct, gpu_mem_peak_bytes FROM runs")
            .expect("query");
        assert_eq!(
            row.rows[0],
            vec![
                Cell::Text("pass".into()),
                Cell::Float(1234.5),
                Cell::Int(0),
                Cell::Int(5),
                Cell::Float(18.0),
                Cell::Null
            ]
        );
        let samples = history
            .query(
                "SELECT count(*), max(busiest_name), max(busiest_cpu_pct), max(host_core_max_pct), \
                 (SELECT count(*) FROM gpu_samples WHERE util_pct = 18 AND job_present AND job_mem_bytes IS NULL) \
                 FROM samples WHERE run_id = (SELECT run_id FROM runs)",
            )
            .expect("samples");
        assert_eq!(
            samples.rows[0],
            vec![
                Cell::Int(5),
                Cell::Text("loader".into()),
                Cell::Float(99.0),
                Cell::Float(100.0),
                Cell::Int(5)
            ]
        );
        drop(history);
        // The TUI reads a past run's samples back through the recorder.
        let (tx, rx) = mpsc::channel();
        recorder.load_samples(&run_id, Box::new(move |samples| tx.send(samples).expect("answer")));
        let loaded = rx.recv_timeout(Duration::from_secs(10)).expect("samples delivered");
        assert_eq!(loaded.len(), 5);
        assert_eq!(loaded[4].t_ms, 1000.0);
        assert_eq!(
            loaded[4].tree.busiest().map(|p| (p.name.as_str(), p.cpu_pct)),
            Some(("loader", 99.0))
        );
        assert_eq!(loaded[4].tree.rss_bytes, 1 << 20);
        assert_eq!(loaded[4].gpus.len(), 1);
        assert_eq!(
            (loaded[4].gpus[0].util_pct, loaded[4].gpus[0].job_present),
            (Some(18), Some(true))
        );
        let (tx, rx) = mpsc::channel();
        let other = uuid::Uuid::now_v7().to_string();
        recorder.load_samples(&other, Box::new(move |samples| tx.send(samples).expect("answer")));
        assert!(rx.recv_timeout(Duration::from_secs(10)).expect("answered").is_empty());
    }

    #[test]
    fn runs_left_running_by_a_dead_looptop_become_interrupted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.duckdb");
        let conn = open(&path, Access::Write).expect("open");
        schema::migrate(&conn, &path).expect("migrate");
        let dead = format!("{}:{}:1", host_name(), u32::MAX - 1);
        for recorder in [dead.as_str(), recorder_id().as_str()] {
            conn.execute(
                "INSERT INTO runs (run_id, job, command, kind, started_at, outcome, trigger_files, host, \
                 looptop_version, recorder) VALUES (uuid(), 'j', 'c', 'other', now(), 'running', [], 'h', 'v', ?)",
                params![recorder],
            )
            .expect("insert");
        }
        drop(conn);
        let (_recorder, interrupted) = Recorder::start(&path, dir.path()).expect("start");
        assert_eq!(interrupted, 1, "only the dead looptop's run");
        let history = History::open(&path).expect("read");
        let outcomes = history
            .query("SELECT outcome FROM runs ORDER BY outcome")
            .expect("query");
        assert_eq!(
            outcomes.rows,
            vec![
                vec![Cell::Text("interrupted".into())],
                vec![Cell::Text("running".into())]
            ]
        );
    }

    #[test]
    fn a_file_that_is_not_duckdb_is_named_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.duckdb");
        std::fs::write(&path, "precious notes, not a database\n").expect("write");
        let error = Recorder::start(&path, dir.path()).expect_err("refused");
        assert!(matches!(error, StoreError::NotHistory { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "precious notes, not a database\n"
        );
    }
}
