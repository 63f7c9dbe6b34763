//! The recorder: keeps the history up to date without running beside a job.
//!
//! A run's start and end are appended to the journal (a small file, flushed to the disk; see
//! `journal`) before looptop reports them, so `kill -9` loses no run looptop has reported, and
//! that append is all a run's start or end costs the loop: nothing waits for the history. The
//! recording thread moves the journal into DuckDB, with the runs' samples and their git commits,
//! once no run is going (`QUIET` after the last one ended), in one short-lived connection: no
//! DuckDB, no `git` beside a job. Runs that never pause (back to back, or one run of hours) are
//! written at the latest `LONGEST_HOLD` after the oldest thing waiting, so memory stays bounded;
//! their git commits still wait for a pause. Readers (`looptop history`, `query`) move the
//! journal in themselves, so they see every finished run at once.
//!
//! While another process holds the file (or is midway through writing it), the writes wait and
//! are retried, in order; the runs are in the journal meanwhile, and the user is told once. When
//! looptop stops it waits a while for the file, saying so, and leaves what is still unwritten in
//! the journal for the next looptop. Only a file that is not a history, is newer, or cannot be
//! written at all turns history off, said once.
//!
//! Samples are kept in memory until the write; a crash loses those not written yet (of the runs
//! going, and of runs that ended less than `QUIET` before), never a run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use duckdb::{params, Connection};

use super::run_row::RunRow;
use super::samples::{MetricRow, SampleRow};
use super::worker::{LogLevel, Order, Worker};
use super::{journal, schema, StoreError};
use crate::event::Notice;
use crate::report::{RunFinished, RunStarted};
use crate::sample::Sample;

/// How long the history waits after the last run ended before it is written, so that a run
/// that follows at once (a job's `needs`, `looptop bench`) does not start beside the write.
pub const QUIET: Duration = Duration::from_millis(300);
/// The longest anything waits for a pause in the runs before it is written anyway.
pub const LONGEST_HOLD: Duration = Duration::from_secs(10);
/// How long a stopping looptop waits for a busy history to take its last runs (they are in the
/// journal already, so this is for the user's convenience, not for safety).
pub const EXIT_WAIT: Duration = Duration::from_secs(10);
/// Samples kept while the file is busy, at most; beyond it the oldest are dropped (and said).
pub const MAX_PENDING_SAMPLES: usize = 50_000;

/// Where the recording thread says what the user should know (the file is busy, history is
/// off): the loop's own event channel.
pub type Say = Box<dyn Fn(Notice) + Send>;

/// Handle to the recording thread. Dropping it lets the thread finish its writes, waiting up to
/// `EXIT_WAIT` (and saying so on stderr) while finished runs are still unwritten.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Request>>,
    path: PathBuf,
    /// Runs ended and not yet written into the history (they are in the journal).
    pending: Arc<AtomicUsize>,
    /// Set by the thread when history is off: nothing more is journaled.
    off: Arc<AtomicBool>,
    /// Closed when the thread ends.
    finished: mpsc::Receiver<()>,
}

/// What the thread is told.
enum Request {
    /// A run started (its row is in the journal).
    Started { run_id: String },
    /// A run ended (its row is in the journal).
    Finished { run_id: String },
    /// A sample for the next write.
    Sample(SampleRow),
    /// A metric value for the next write.
    Metric(MetricRow),
    /// A run's samples, read after every pending one is written, for `deliver`.
    Load { run_id: String, deliver: Deliver },
}

/// Where a past run's samples go once read.
pub type Deliver = Box<dyn FnOnce(Vec<Sample>) + Send>;

/// The first pause before the history file is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Whether an error may pass by itself (another process has the file), so writes wait for it.
fn is_transient(error: &StoreError) -> bool {
    matches!(error, StoreError::Busy { .. })
}

impl Recorder {
    /// Opens the history at `path` (creating or migrating it), moves the journal's runs in,
    /// marks the runs left `running` by looptops that are gone as `interrupted`, and starts
    /// recording. `root` is the project, whose git commit each run records; `worker` does the
    /// writing (see `worker`); `say` hears what the user should know later on. Returns how many runs were marked interrupted. A file held
    /// by another process for longer than `super::BUSY_WAIT` is not an error: the thread sets it
    /// up once it is free.
    pub fn start(path: &Path, root: &Path, worker: Worker, say: Say) -> Result<(Self, usize), StoreError> {
        let set_up = Order {
            set_up: true,
            ..Order::default()
        };
        let (ready, interrupted) = match worker.perform(path, &set_up) {
            Ok(done) => (true, done.interrupted),
            Err(e) if is_transient(&e) => {
                log::warn!("history: {e}; runs are recorded once it is free");
                (false, 0)
            }
            Err(e) => return Err(e),
        };
        let (tx, rx) = mpsc::channel();
        let (done_tx, finished) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let off = Arc::new(AtomicBool::new(false));
        let mut thread = Writer {
            worker,
            path: path.to_path_buf(),
            root: root.to_path_buf(),
            say,
            pending: Arc::clone(&pending),
            off: Arc::clone(&off),
            ready,
            going: HashSet::new(),
            last_end: None,
            waiting_since: (!ready).then(Instant::now),
            ended: 0,
            commits: Vec::new(),
            samples: Vec::new(),
            metrics: Vec::new(),
            loads: Vec::new(),
            dropped_samples: 0,
            retry: None,
        };
        std::thread::Builder::new()
            .name("looptop-history".into())
            .spawn(move || {
                let _done = done_tx;
                thread.record(&rx);
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
                off,
                finished,
            },
            interrupted,
        ))
    }

    /// A recorder that writes in this process and tells no one (for tests and benchmarks).
    pub fn in_process(path: &Path, root: &Path) -> Result<(Self, usize), StoreError> {
        Self::start(path, root, Worker::InProcess, Box::new(|_| {}))
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a run's start: in the journal (on disk when this returns), then in the history
    /// once no run is going. An error means the journal cannot be written.
    pub fn run_started(&self, started: &RunStarted) -> Result<(), StoreError> {
        let row = RunRow::started(started, recorder_id(), host_name());
        self.journal(&row)?;
        self.request(Request::Started { run_id: row.run_id });
        Ok(())
    }

    /// Records a run's end, as `run_started` does its start.
    pub fn run_finished(&self, finished: &RunFinished) -> Result<(), StoreError> {
        let row = RunRow::finished(finished, recorder_id(), host_name());
        self.journal(&row)?;
        self.pending.fetch_add(1, Ordering::SeqCst);
        if !self.request(Request::Finished { run_id: row.run_id }) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn journal(&self, row: &RunRow) -> Result<(), StoreError> {
        if self.off.load(Ordering::SeqCst) {
            return Ok(());
        }
        journal::append(&self.path, row)
    }

    /// Queues a sample for the next write; never waits.
    pub fn sample(&self, run_id: &str, sample: &Sample) {
        let row = SampleRow {
            run_id: run_id.to_string(),
            sample: Box::new(sample.clone()),
        };
        self.request(Request::Sample(row));
    }

    /// Queues a metric value for the next write; never waits.
    pub fn metric(&self, row: MetricRow) {
        self.request(Request::Metric(row));
    }

    /// Reads run `run_id`'s samples on the recording thread (after the pending ones are
    /// written, at once: the user asked) and hands them to `deliver` there; never waits.
    /// Nothing is delivered if the history cannot be read.
    pub fn load_samples(&self, run_id: &str, deliver: Deliver) {
        self.request(Request::Load {
            run_id: run_id.to_string(),
            deliver,
        });
    }

    fn request(&self, request: Request) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(request).is_ok())
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
            "looptop: waiting up to {} s to write {unwritten} finished run(s) into {}…",
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

/// Brings a freshly opened history up to date: schema, the journal, and the runs of looptops
/// that are gone (the journal's included). Returns how many runs were marked interrupted.
pub(super) fn set_up(
    conn: &Connection,
    path: &Path,
    say: &mut dyn FnMut(LogLevel, String),
) -> Result<usize, StoreError> {
    schema::migrate(conn, path)?;
    if let Err(e) = move_journal(conn, path) {
        say(
            LogLevel::Warn,
            format!("history: the journal's runs stay in it for now: {e}"),
        );
    }
    mark_interrupted(conn)
}

/// Moves the journal's runs into the history; a failure leaves them there for the next try.
pub fn ingest_journal(conn: &Connection, path: &Path) {
    if let Err(e) = move_journal(conn, path) {
        log::warn!("history: the journal's runs stay in it for now: {e}");
    }
}

/// Moves the journal's runs into the history.
pub(super) fn move_journal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    journal::ingest(path, conn).map(|_| ())
}

/// Adds the project's git commit (looked up now) to the runs `run_ids`.
pub(super) fn record_commit(conn: &Connection, root: &Path, run_ids: &[String], say: &mut dyn FnMut(LogLevel, String)) {
    let (Some(commit), dirty) = git_state(root) else { return };
    for run_id in run_ids {
        let updated = conn.execute(
            "UPDATE runs SET git_commit = ?, git_dirty = ? WHERE run_id = ?::UUID",
            params![commit, dirty, run_id],
        );
        if let Err(e) = updated {
            say(
                LogLevel::Warn,
                format!("history: cannot record the commit of run {run_id}: {e}"),
            );
        }
    }
}

/// The recording thread's own state.
struct Writer {
    worker: Worker,
    path: PathBuf,
    root: PathBuf,
    say: Say,
    pending: Arc<AtomicUsize>,
    off: Arc<AtomicBool>,
    /// Whether the file has been set up (see `set_up`).
    ready: bool,
    /// Runs started and not yet ended.
    going: HashSet<String>,
    /// When the last run ended.
    last_end: Option<Instant>,
    /// Since when something waits to be written; `None` when all is written.
    waiting_since: Option<Instant>,
    /// Runs ended since the last write.
    ended: usize,
    /// Runs started whose git commit is not written yet.
    commits: Vec<String>,
    samples: Vec<SampleRow>,
    metrics: Vec<MetricRow>,
    loads: Vec<(String, Deliver)>,
    dropped_samples: usize,
    /// While the file is busy: when to try again, and the pause after that.
    retry: Option<(Instant, Duration)>,
}

impl Writer {
    /// Takes requests until the handle is dropped, writing whenever `due` says, then writes
    /// what is left (trying until `EXIT_WAIT` has passed when the file is busy).
    fn record(&mut self, rx: &mpsc::Receiver<Request>) {
        let mut listening = true;
        loop {
            let now = Instant::now();
            let due = self.due(listening, now);
            if !listening && due.is_none() {
                return;
            }
            let next = match (listening, due) {
                (false, _) => None,
                (true, None) => rx.recv().ok(),
                (true, Some(at)) => match rx.recv_timeout(at.saturating_duration_since(now)) {
                    Ok(request) => Some(request),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        listening = false;
                        None
                    }
                },
            };
            if listening && next.is_none() && due.is_none() {
                listening = false;
            }
            for request in next.into_iter().chain(rx.try_iter()) {
                self.take(request);
            }
            let now = Instant::now();
            match self.due(listening, now) {
                Some(at) if at <= now => self.write(listening),
                Some(at) if !listening => std::thread::sleep(at.saturating_duration_since(now)),
                _ => {}
            }
        }
    }

    fn take(&mut self, request: Request) {
        if self.off.load(Ordering::SeqCst) {
            if let Request::Load { deliver, .. } = request {
                deliver(Vec::new());
            }
            return;
        }
        let now = Instant::now();
        self.waiting_since.get_or_insert(now);
        match request {
            Request::Started { run_id } => {
                self.going.insert(run_id.clone());
                self.commits.push(run_id);
            }
            Request::Finished { run_id } => {
                self.going.remove(&run_id);
                self.ended += 1;
                self.last_end = Some(now);
            }
            Request::Sample(row) => self.samples.push(row),
            Request::Metric(row) => self.metrics.push(row),
            Request::Load { run_id, deliver } => self.loads.push((run_id, deliver)),
        }
        let excess = self.samples.len().saturating_sub(MAX_PENDING_SAMPLES)
            + self.metrics.len().saturating_sub(MAX_PENDING_SAMPLES);
        if excess > 0 {
            self.samples
                .drain(..self.samples.len().saturating_sub(MAX_PENDING_SAMPLES));
            self.metrics
                .drain(..self.metrics.len().saturating_sub(MAX_PENDING_SAMPLES));
            if self.dropped_samples == 0 {
                log::warn!(
                    "history: {} is busy for long; the oldest samples are dropped",
                    self.path.display()
                );
            }
            self.dropped_samples += excess;
        }
    }

    /// When the next write should happen; `None` when nothing waits.
    fn due(&self, listening: bool, now: Instant) -> Option<Instant> {
        let since = self.waiting_since?;
        if let Some((at, _)) = self.retry {
            return Some(at);
        }
        if !listening || !self.loads.is_empty() {
            return Some(now);
        }
        let hold = since + LONGEST_HOLD;
        if self.going.is_empty() {
            let quiet = self.last_end.map_or(now, |end| end + QUIET);
            Some(quiet.min(hold))
        } else {
            Some(hold)
        }
    }

    /// Writes everything that waits, in one short-lived connection of the worker; the git
    /// commits only while no run is going (or looptop stops).
    fn write(&mut self, listening: bool) {
        let commits = (!self.commits.is_empty() && (self.going.is_empty() || !listening))
            .then(|| (self.root.clone(), self.commits.clone()));
        let order = Order {
            set_up: !self.ready,
            samples: std::mem::take(&mut self.samples),
            metrics: std::mem::take(&mut self.metrics),
            journal: true,
            commits,
            loads: self.loads.iter().map(|(run_id, _)| run_id.clone()).collect(),
            remember: Vec::new(),
        };
        match self.worker.perform(&self.path, &order) {
            Ok(done) => {
                self.ready = true;
                if order.commits.is_some() {
                    self.commits.clear();
                }
                let mut loaded = done.loaded.into_iter();
                for (_, deliver) in self.loads.drain(..) {
                    deliver(loaded.next().unwrap_or_default());
                }
                match done.journal_left {
                    // Midway through a read of a file being written elsewhere: again soon.
                    Some(e) => self.wait_for_file(&e),
                    None => {
                        if self.retry.take().is_some() {
                            log::info!(
                                "history: {} is free again; the waiting runs are written",
                                self.path.display()
                            );
                        }
                        self.pending.fetch_sub(self.ended, Ordering::SeqCst);
                        self.ended = 0;
                        self.waiting_since = (!self.commits.is_empty()).then(Instant::now);
                    }
                }
            }
            // Busy, or an error DuckDB has not given before on a file that was fine this
            // session (another process midway through writing it): everything waits, in order,
            // for the next try. The runs are in the journal meanwhile.
            Err(e) if is_transient(&e) || (self.ready && matches!(e, StoreError::Sql(_))) => {
                self.samples = order.samples;
                self.metrics = order.metrics;
                self.wait_for_file(&e);
            }
            Err(e) => {
                (self.say)(Notice::warn(format!("history is off: {e}")));
                log::warn!("history is off: {e}");
                self.off.store(true, Ordering::SeqCst);
                self.commits.clear();
                for (_, deliver) in self.loads.drain(..) {
                    deliver(Vec::new());
                }
                self.pending.store(0, Ordering::SeqCst);
                self.waiting_since = None;
                self.retry = None;
            }
        }
    }

    /// Tries again later, said once per episode.
    fn wait_for_file(&mut self, error: &StoreError) {
        let pause = match self.retry {
            None => {
                (self.say)(Notice::warn(format!(
                    "{} is busy (another process has it open): runs are kept and written when it is free",
                    self.path.display()
                )));
                log::info!("history: {error}; retrying");
                RETRY_FIRST
            }
            Some((_, pause)) => pause,
        };
        self.retry = Some((Instant::now() + pause, (pause * 2).min(RETRY_MAX)));
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
    use crate::store::{open, Access};

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
        let (recorder, interrupted) = Recorder::in_process(&path, dir.path()).expect("start");
        assert_eq!(interrupted, 0);
        let run_id = uuid::Uuid::now_v7().to_string();
        let started = RunStarted {
            run: identity(&run_id),
            pid: 1,
            targets: None,
            selection: None,
        };
        assert_eq!(recorder.run_started(&started), Ok(()));
        // Readers see it at once: they move the journal in themselves.
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
        // Samples wait for the run's end, then go in with it.
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
        // While the run goes, nothing of it is written into the history file.
        std::thread::sleep(QUIET * 2);
        assert_eq!(samples_written(&path), 0, "no write beside a running job");
        assert_eq!(recorder.run_finished(&finished), Ok(()));
        wait_until(|| samples_written(&path) == 5);
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

    /// The samples in the history file itself (not the journal: a raw read-only connection).
    fn samples_written(path: &Path) -> i64 {
        let conn = open(path, Access::Read).expect("read");
        conn.query_row("SELECT count(*) FROM samples", [], |row| row.get(0))
            .expect("count")
    }

    fn wait_until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "not written in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
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
        let (recorder, _) = Recorder::in_process(&path, dir.path()).expect("start");
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
        let (_recorder, interrupted) = Recorder::in_process(&path, dir.path()).expect("start");
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
        let error = Recorder::in_process(&path, dir.path()).expect_err("refused");
        assert!(matches!(error, StoreError::NotHistory { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.display().to_string()));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "precious notes, not a database\n"
        );
    }
}
