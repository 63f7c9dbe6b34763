//! The recorder: writes runs into the history from a thread of its own, each write in a
//! short-lived connection (see the module above for why). A run's row is written as `running`
//! when it starts and completed when it ends, and the loop waits (briefly) for each write before
//! it reports the run, so a run looptop has said is finished is on disk: `kill -9` loses nothing
//! but the in-flight runs, which the next looptop marks `interrupted`.
//!
//! While another process holds the file (or is midway through writing it), writes wait in order
//! and are retried; they are never dropped for that, and history is never turned off for it. A
//! finished run whose write has to wait goes into the journal at once (see `journal`), so it is
//! on disk whatever happens next; when looptop stops it waits a while for the file, saying so,
//! and leaves what is still unwritten in the journal for the next looptop. Only a file that is
//! not a history, is newer, or cannot be written at all turns history off, said once.
//!
//! Samples are not acknowledged: they are kept and appended in batches of `SAMPLE_BATCH`, and
//! always before a run's end is written, so a finished run has all its samples on disk. A crash
//! loses at most the last batch of a run still going.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use duckdb::{params, Connection};

use super::run_row::RunRow;
use super::samples::{append, append_metrics, load, MetricRow, SampleRow};
use super::{journal, open, schema, Access, StoreError};
use crate::report::{RunFinished, RunStarted};
use crate::sample::Sample;

/// The longest the loop waits for a write before it carries on without the answer.
pub const ACK_WAIT: Duration = Duration::from_millis(1500);
/// How long it waits while writes are already known to be delayed (the file is busy).
pub const DELAYED_ACK_WAIT: Duration = Duration::from_millis(50);
/// How long a stopping looptop waits for a busy history to take its last runs (they are in the
/// journal already, so this is for the user's convenience, not for safety).
pub const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Handle to the recording thread. Dropping it lets the thread finish its writes, waiting up to
/// `EXIT_WAIT` (and saying so on stderr) while finished runs are still unwritten.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Request>>,
    path: PathBuf,
    /// Runs reported to the thread and not yet written (or given up on).
    pending: Arc<AtomicUsize>,
    /// Closed when the thread ends.
    finished: mpsc::Receiver<()>,
}

/// Samples are appended once this many wait (30 s of one run at the default interval).
pub const SAMPLE_BATCH: usize = 120;
/// Samples kept while the file is busy, at most; beyond it the oldest are dropped (and said).
pub const MAX_PENDING_SAMPLES: usize = 50_000;

/// What the thread is asked to do.
enum Request {
    /// A run's row, and where to send the outcome of its write.
    Write {
        row: Box<RunRow>,
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

/// What `Recorder::record` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// On disk.
    Done,
    /// Still waiting for the file (another process holds it); it will be written.
    Delayed,
}

/// The first pause before the history file is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Whether an error may pass by itself (another process has the file), so writes wait for it.
fn is_transient(error: &StoreError) -> bool {
    matches!(error, StoreError::Busy { .. })
}

impl Recorder {
    /// Opens the history at `path` (creating or migrating it), marks the runs left `running` by
    /// looptops that are gone as `interrupted`, moves the journal's runs in, and starts
    /// recording. `root` is the project, whose git commit each run records. Returns how many
    /// runs were marked interrupted. A file held by another process for longer than
    /// `super::BUSY_WAIT` is not an error: the thread sets it up once it is free.
    pub fn start(path: &Path, root: &Path) -> Result<(Self, usize), StoreError> {
        let (ready, interrupted) = match open(path, Access::Write).and_then(|conn| set_up(&conn, path)) {
            Ok(interrupted) => (true, interrupted),
            Err(e) if is_transient(&e) => {
                log::warn!("history: {e}; runs are recorded once it is free");
                (false, 0)
            }
            Err(e) => return Err(e),
        };
        let (tx, rx) = mpsc::channel();
        let (done_tx, finished) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let thread_path = path.to_path_buf();
        let root = root.to_path_buf();
        let thread_pending = Arc::clone(&pending);
        std::thread::Builder::new()
            .name("looptop-history".into())
            .spawn(move || {
                let _done = done_tx;
                record_forever(&thread_path, &root, &rx, &thread_pending, ready);
            })
            .map_err(|e| StoreError::Unwritable {
                path: path.to_path_buf(),
                detail: format!("cannot start the recording thread: {e}"),
            })?;
        Ok((
            Self {
                tx: Some(tx),
                path: path.to_path_buf(),
                pending,
                finished,
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
        let row = RunRow::started(started, recorder_id(), host_name());
        self.send(row, patience)
    }

    /// Records a run's end; `patience` is how long to wait for the write. A write that has to
    /// wait is put in the journal before this returns.
    pub fn run_finished(&self, finished: &RunFinished, patience: Duration) -> Result<Recorded, StoreError> {
        let row = RunRow::finished(finished, recorder_id(), host_name());
        let recorded = self.send(row.clone(), patience)?;
        if recorded == Recorded::Delayed {
            if let Err(e) = journal::append(&self.path, &row) {
                log::warn!(
                    "history: cannot keep run {} in the journal ({e}); it is written if the history frees up before looptop stops",
                    row.run_id
                );
            }
        }
        Ok(recorded)
    }

    /// Queues a sample for the next batch; never waits.
    pub fn sample(&self, run_id: &str, sample: &Sample) {
        let row = SampleRow {
            run_id: run_id.to_string(),
            sample: Box::new(sample.clone()),
        };
        // A stopped thread has already said why; the run's end will say it again.
        self.request(Request::Sample(row));
    }

    /// Queues a metric value for the next batch; never waits.
    pub fn metric(&self, row: MetricRow) {
        self.request(Request::Metric(row));
    }

    /// Reads run `run_id`'s samples on the recording thread (after the pending ones are
    /// written) and hands them to `deliver` there; never waits. Nothing is delivered if the
    /// history cannot be read.
    pub fn load_samples(&self, run_id: &str, deliver: Deliver) {
        self.request(Request::Load {
            run_id: run_id.to_string(),
            deliver,
        });
    }

    fn request(&self, request: Request) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(request).is_ok())
    }

    fn send(&self, row: RunRow, patience: Duration) -> Result<Recorded, StoreError> {
        let (ack, answer) = mpsc::channel();
        let gone = || StoreError::Unwritable {
            path: self.path.clone(),
            detail: "the recording thread stopped".into(),
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        if !self.request(Request::Write {
            row: Box::new(row),
            ack,
        }) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(gone());
        }
        match answer.recv_timeout(patience) {
            Ok(Ok(())) => Ok(Recorded::Done),
            Ok(Err(e)) if is_transient(&e) => Ok(Recorded::Delayed),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(Recorded::Delayed),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // The thread writes what it holds, then ends.
        drop(self.tx.take());
        if self.finished.recv_timeout(Duration::from_millis(500)) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        let unwritten = self.pending.load(Ordering::SeqCst);
        if unwritten == 0 {
            return;
        }
        eprintln!(
            "looptop: waiting up to {} s for {} (another process has it open) to record {unwritten} finished run(s)…",
            EXIT_WAIT.as_secs(),
            self.path.display()
        );
        if self.finished.recv_timeout(EXIT_WAIT) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!(
                "looptop: {} is still busy; the runs are kept in {} and written into the history by the next looptop (or `looptop history`)",
                self.path.display(),
                journal::path_for(&self.path).display()
            );
        }
    }
}

/// Brings a freshly opened history up to date: schema, runs of looptops that are gone, and the
/// journal. Returns how many runs were marked interrupted.
fn set_up(conn: &Connection, path: &Path) -> Result<usize, StoreError> {
    schema::migrate(conn, path)?;
    let interrupted = mark_interrupted(conn)?;
    ingest_journal(conn, path);
    Ok(interrupted)
}

/// Moves the journal's runs into the history; a failure leaves them there for the next try.
pub fn ingest_journal(conn: &Connection, path: &Path) {
    match journal::ingest(path, conn) {
        Ok(0) => {}
        Ok(n) => log::info!("history: {n} run(s) moved from the journal into {}", path.display()),
        Err(e) => log::warn!("history: the journal's runs stay in it for now: {e}"),
    }
}

/// The recording thread: takes requests in order, writes them in as few connections as it can,
/// and keeps what it could not write yet (file busy) for the next try. `ready` says whether the
/// file has been set up (see `set_up`).
fn record_forever(path: &Path, root: &Path, rx: &mpsc::Receiver<Request>, pending: &AtomicUsize, mut ready: bool) {
    type Ack = mpsc::Sender<Result<(), StoreError>>;
    let mut queue: VecDeque<(Box<RunRow>, Ack)> = VecDeque::new();
    let mut samples: Vec<SampleRow> = Vec::new();
    let mut metrics: Vec<MetricRow> = Vec::new();
    let mut loads: Vec<(String, Deliver)> = Vec::new();
    let mut dropped_samples = 0usize;
    let mut listening = true;
    // How long to wait before the next try while the file cannot be opened (doubles each time).
    let mut pause = RETRY_FIRST;
    // Each answered write, whatever its outcome, is no longer pending.
    let answer = |ack: Ack, result: Result<(), StoreError>| {
        pending.fetch_sub(1, Ordering::SeqCst);
        let _ = ack.send(result);
    };
    while listening || !queue.is_empty() || !samples.is_empty() || !metrics.is_empty() {
        let batch_full = samples.len() >= SAMPLE_BATCH || metrics.len() >= SAMPLE_BATCH;
        let waiting = !queue.is_empty() || !loads.is_empty() || batch_full;
        let next = if !listening {
            None
        } else if waiting {
            // Writes are waiting for a busy file: take new requests, but try again soon.
            match rx.recv_timeout(pause) {
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
                Request::Write { row, ack } => queue.push_back((row, ack)),
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
        let opened = open(path, Access::Write).and_then(|conn| {
            if !ready {
                set_up(&conn, path)?;
                ready = true;
            }
            Ok(conn)
        });
        let conn = match opened {
            Ok(conn) => {
                pause = RETRY_FIRST;
                conn
            }
            // Busy, or an error DuckDB has not given before on a file that was fine this
            // session (another process midway through writing it): everything waits, in order,
            // for the next try. Finished runs are in the journal meanwhile.
            Err(e) if is_transient(&e) || (ready && matches!(e, StoreError::Sql(_))) => {
                if pause == RETRY_FIRST {
                    log::info!("history: {e}; retrying");
                }
                for (_, ack) in &queue {
                    let _ = ack.send(Err(StoreError::Busy {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    }));
                }
                if !listening {
                    // Nothing else to wait on while looptop stops.
                    std::thread::sleep(pause);
                }
                pause = (pause * 2).min(RETRY_MAX);
                continue;
            }
            Err(e) => {
                log::warn!("history is off: {e}");
                for (_, ack) in queue.drain(..) {
                    answer(ack, Err(e.clone()));
                }
                samples.clear();
                metrics.clear();
                loads.clear();
                if !listening {
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
        while let Some((row, ack)) = queue.pop_front() {
            match row.write(&conn).map_err(|e| super::classify(path, &e)) {
                // Midway through a read of a file being written elsewhere: try it again later.
                Err(e) if is_transient(&e) => {
                    queue.push_front((row, ack));
                    break;
                }
                result => {
                    if result.is_ok() && row.end.is_none() {
                        started.push(row.run_id.clone());
                    }
                    answers.push((ack, result));
                }
            }
        }
        if queue.is_empty() {
            ingest_journal(&conn, path);
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
            answer(ack, result);
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

pub(super) fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

pub(super) fn micros_since_epoch(time: SystemTime) -> i64 {
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
    use crate::report::RunIdentity;
    use crate::store::reader::History;
    use crate::store::run_row::RunRow;
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
            targets: None,
            selection: None,
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
                        threads: vec![
                            crate::sample::ThreadSample {
                                tid: 43,
                                name: "loader".into(),
                                cpu_pct: 97.0,
                                run_queue_pct: Some(2.0),
                            },
                            crate::sample::ThreadSample {
                                tid: 42,
                                name: "MainThread".into(),
                                cpu_pct: 2.0,
                                run_queue_pct: None,
                            },
                        ],
                    }],
                    main_pid: Some(42),
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
            cpu_user_ms: 1000.0,
            cpu_sys_ms: 20.0,
            usage: crate::report::RunUsage {
                samples: 5,
                cpu_mean_pct: Some(100.0),
                gpu_util_mean_pct: Some(18.0),
                ..Default::default()
            },
            ..RunFinished::passed_for_test(identity(&run_id), 1234.5)
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
        let threads = history
            .query("SELECT count(*), count(DISTINCT name), max(cpu_pct), bool_and(main_process) FROM thread_samples WHERE pid = 42")
            .expect("thread samples");
        assert_eq!(
            threads.rows[0],
            vec![Cell::Int(10), Cell::Int(2), Cell::Float(97.0), Cell::Bool(true)]
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
        // Its threads too, busiest first, with the main process marked.
        assert_eq!(loaded[4].tree.main_pid, Some(42));
        assert_eq!(
            loaded[4].tree.top[0]
                .threads
                .iter()
                .map(|t| (t.name.as_str(), t.cpu_pct, t.run_queue_pct))
                .collect::<Vec<_>>(),
            vec![("loader", 97.0, Some(2.0)), ("MainThread", 2.0, None)]
        );
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

    fn passed(run_id: &str) -> RunFinished {
        let run = RunIdentity {
            trigger: vec!["a\nb.py".into(), "c.py".into()],
            ..identity(run_id)
        };
        RunFinished::passed_for_test(run, 12.5)
    }

    #[test]
    fn journaled_runs_are_moved_into_the_history_once_with_their_paths_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".looptop/history.duckdb");
        let run_id = uuid::Uuid::now_v7().to_string();
        let row = RunRow::finished(&passed(&run_id), recorder_id(), host_name());
        // Twice, as when the recorder wrote it too: still one row.
        journal::append(&path, &row).expect("journal");
        journal::append(&path, &row).expect("journal");
        std::fs::write(
            journal::path_for(&path),
            format!(
                "{}{{\"cut short",
                std::fs::read_to_string(journal::path_for(&path)).expect("read")
            ),
        )
        .expect("a torn last line");
        assert!(journal::has_runs(&path));
        let (recorder, _) = Recorder::start(&path, dir.path()).expect("start");
        drop(recorder);
        assert!(!journal::has_runs(&path), "the journal is emptied");
        let history = History::open(&path).expect("read");
        let rows = history
            .query("SELECT outcome, duration_ms, trigger_files FROM runs")
            .expect("query");
        assert_eq!(
            rows.rows,
            vec![vec![
                Cell::Text("pass".into()),
                Cell::Float(12.5),
                Cell::List(vec![Cell::Text("a\nb.py".into()), Cell::Text("c.py".into())])
            ]]
        );
    }

    #[test]
    fn a_read_midway_through_another_write_is_a_wait_not_the_end_of_history() {
        // Any error whose text is DuckDB's for a torn read.
        let error = duckdb::Error::InvalidParameterName("IO Error: Could not read enough bytes from file".into());
        assert!(is_transient(&super::super::classify(Path::new("h.duckdb"), &error)));
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
