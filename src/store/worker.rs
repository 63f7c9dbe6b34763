//! The history's work, done in a short-lived process of its own: `looptop` runs itself as
//! `looptop __history-worker PATH`, hands it an `Order` on stdin and reads back what it did. The
//! watching process thus never runs DuckDB's code, whose pages (most of the binary) would
//! otherwise stay resident for the whole session; the worker holds them for the few tens of
//! milliseconds a write takes, once the runs pause. The same work runs in-process where there
//! is no looptop binary to start (the library's own tests) or it cannot be started.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::reader::History;
use super::samples::{append, append_metrics, load, MetricRow, SampleRow};
use super::{open, recorder, Access, StoreError};
use crate::diagnose::per_test::TestMemory;
use crate::report::TrendPoint;
use crate::sample::Sample;

/// The first argument that makes `looptop` a history worker.
pub const WORKER_ARG: &str = "__history-worker";

/// Where the history's work is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Worker {
    /// In this process.
    InProcess,
    /// In a process of its own, started from this looptop binary.
    Child(PathBuf),
}

impl Worker {
    /// A child process of this very binary, or in-process when its path is unknown.
    pub fn this_binary() -> Self {
        std::env::current_exe().map_or(Self::InProcess, Self::Child)
    }
}

/// What to do, in this order: set the file up (schema, journal, interrupted runs), append the
/// samples and metrics, move the journal in, record the commit of the runs started, read the
/// runs' samples asked for, and what the history remembers of the jobs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Order {
    /// Migrate the file, move the journal in and mark the runs of looptops that are gone.
    pub set_up: bool,
    /// Samples to append.
    pub samples: Vec<SampleRow>,
    /// Metric values to append.
    pub metrics: Vec<MetricRow>,
    /// Move the journal into the history.
    pub journal: bool,
    /// Runs whose git commit is to be recorded, and the project they ran in.
    pub commits: Option<(PathBuf, Vec<String>)>,
    /// Runs whose samples to read back.
    pub loads: Vec<String>,
    /// Jobs whose memory to read (what earlier sessions left).
    pub remember: Vec<JobRef>,
}

/// A job as the history knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRef {
    /// Its name.
    pub name: String,
    /// Its command as recorded.
    pub command: String,
    /// Whether its tests are kept (pytest or a JUnit file).
    pub tests: bool,
    /// How many of its last runs the trend shows (0: none).
    pub trend: usize,
}

/// What the history remembers of one job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Its recent passing durations, oldest first.
    pub baseline: Vec<f64>,
    /// Its tests' recent times and last outcomes.
    pub tests: TestMemory,
    /// Its last runs, for the TUI's trend.
    pub trend: Vec<TrendPoint>,
}

/// What an `Order` did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Done {
    /// Runs marked interrupted by the set-up.
    pub interrupted: usize,
    /// The samples of each run asked for, in order (empty when they could not be read).
    pub loaded: Vec<Vec<Sample>>,
    /// The memory of each job asked for, in order.
    pub remembered: Vec<Memory>,
    /// Why the journal could not be moved in (it stays for the next try).
    pub journal_left: Option<StoreError>,
    /// What the work logged (a child's log comes back to the parent's).
    pub log: Vec<(LogLevel, String)>,
}

/// A log record's level, as it travels back from a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    /// Worth the user's attention.
    Warn,
    /// For the curious.
    Info,
}

impl Worker {
    /// Carries out `order` on the history at `path`. A child that cannot be started (or answers
    /// nonsense) is said in the log and the work is done in-process instead.
    pub fn perform(&self, path: &Path, order: &Order) -> Result<Done, StoreError> {
        let answer = match self {
            Self::InProcess => return perform(path, order, &mut |level, message| relog(level, &message)),
            Self::Child(binary) => ask(binary, path, order),
        };
        match answer {
            Ok(answer) => {
                if let Ok(done) = &answer {
                    for (level, message) in &done.log {
                        relog(*level, message);
                    }
                }
                answer
            }
            Err(why) => {
                log::info!("history: the worker process failed ({why}); writing in-process");
                perform(path, order, &mut |level, message| relog(level, &message))
            }
        }
    }
}

fn relog(level: LogLevel, message: &str) {
    match level {
        LogLevel::Warn => log::warn!("{message}"),
        LogLevel::Info => log::info!("{message}"),
    }
}

/// Runs `binary` as a worker for `order`; the outer error says the worker itself failed.
fn ask(binary: &Path, path: &Path, order: &Order) -> Result<Result<Done, StoreError>, String> {
    let mut child = Command::new(binary)
        .arg(WORKER_ARG)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let input = serde_json::to_vec(order).map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    // Written from a thread: a large order and a large answer must not wait on each other.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut output = Vec::new();
    let read = child.stdout.take().ok_or("no stdout")?.read_to_end(&mut output);
    let status = child.wait().map_err(|e| e.to_string())?;
    let written = writer.join().map_err(|_| "the writing thread panicked".to_string())?;
    read.map_err(|e| e.to_string())?;
    written.map_err(|e| format!("cannot hand it the order: {e}"))?;
    if !status.success() {
        return Err(format!("it exited with {status}"));
    }
    serde_json::from_slice(&output).map_err(|e| format!("its answer is not understood: {e}"))
}

/// The worker process's body: reads an order for the history at `path` on stdin, carries it
/// out, writes the outcome as JSON on stdout; returns the exit code.
pub fn serve(path: &Path) -> u8 {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 1;
    }
    let Ok(order) = serde_json::from_slice::<Order>(&input) else {
        return 1;
    };
    let mut kept = Vec::new();
    let mut outcome = perform(path, &order, &mut |level, message| kept.push((level, message)));
    if let Ok(done) = &mut outcome {
        done.log = kept;
    }
    let Ok(answer) = serde_json::to_vec(&outcome) else {
        return 1;
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(&answer).and_then(|()| stdout.flush()).is_err() {
        return 1;
    }
    0
}

/// Carries out `order` in this process; `say` hears what is worth logging.
fn perform(path: &Path, order: &Order, say: &mut dyn FnMut(LogLevel, String)) -> Result<Done, StoreError> {
    let mut done = Done::default();
    let write = order.set_up
        || order.journal
        || order.commits.is_some()
        || !order.samples.is_empty()
        || !order.metrics.is_empty();
    if write {
        let conn = open(path, Access::Write)?;
        if order.set_up {
            done.interrupted = recorder::set_up(&conn, path, say)?;
        }
        // Samples first: a run's end is written after all of its samples.
        if !order.samples.is_empty() {
            if let Err(e) = append(&conn, &order.samples) {
                say(
                    LogLevel::Warn,
                    format!("history: cannot write {} samples: {e}", order.samples.len()),
                );
            }
        }
        if !order.metrics.is_empty() {
            if let Err(e) = append_metrics(&conn, &order.metrics) {
                say(
                    LogLevel::Warn,
                    format!("history: cannot write {} metric values: {e}", order.metrics.len()),
                );
            }
        }
        if order.journal {
            done.journal_left = recorder::move_journal(&conn, path).err();
        }
        if let Some((root, run_ids)) = &order.commits {
            recorder::record_commit(&conn, root, run_ids, say);
        }
        for run_id in &order.loads {
            done.loaded.push(load(&conn, run_id).unwrap_or_else(|e| {
                say(
                    LogLevel::Warn,
                    format!("history: cannot read the samples of run {run_id}: {e}"),
                );
                Vec::new()
            }));
        }
    } else if !order.loads.is_empty() {
        let conn = open(path, Access::Read)?;
        for run_id in &order.loads {
            done.loaded.push(load(&conn, run_id).unwrap_or_default());
        }
    }
    if !order.remember.is_empty() {
        done.remembered = remember(path, &order.remember);
    }
    Ok(done)
}

/// What the history at `path` remembers of `jobs` (nothing where it cannot be read).
fn remember(path: &Path, jobs: &[JobRef]) -> Vec<Memory> {
    let Ok(history) = History::open(path) else {
        return vec![Memory::default(); jobs.len()];
    };
    jobs.iter()
        .map(|job| Memory {
            baseline: history
                .recent_passing_durations(&job.name, &job.command, crate::diagnose::thresholds::BASELINE_RUNS)
                .unwrap_or_default(),
            tests: if job.tests {
                history
                    .test_memory(&job.name, &job.command, crate::diagnose::thresholds::BASELINE_RUNS)
                    .unwrap_or_default()
            } else {
                TestMemory::default()
            },
            trend: if job.trend > 0 {
                history.recent_trend(&job.name, job.trend).unwrap_or_default()
            } else {
                Vec::new()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_cannot_start_leaves_the_work_to_this_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.duckdb");
        let worker = Worker::Child(dir.path().join("no-such-looptop"));
        let order = Order {
            set_up: true,
            remember: vec![JobRef {
                name: "train".into(),
                command: "python train.py".into(),
                tests: true,
                trend: 5,
            }],
            ..Order::default()
        };
        let done = worker.perform(&path, &order).expect("done in-process");
        assert_eq!(done.interrupted, 0);
        assert_eq!(done.remembered, vec![Memory::default()]);
        let conn = open(&path, Access::Read).expect("the history was set up");
        let runs: i64 = conn
            .query_row("SELECT count(*) FROM runs", [], |row| row.get(0))
            .expect("runs table");
        assert_eq!(runs, 0);
    }

    #[test]
    fn an_order_and_its_answer_survive_the_trip_between_processes() {
        let order = Order {
            samples: vec![SampleRow {
                run_id: "r".into(),
                sample: Box::new(Sample {
                    key: crate::event::RunKey(3),
                    t_ms: 250.0,
                    host: crate::sample::HostSample::default(),
                    tree: crate::sample::TreeSample {
                        cpu_pct: 99.5,
                        ..Default::default()
                    },
                    gpus: vec![crate::sample::GpuSample {
                        util_pct: Some(18),
                        ..Default::default()
                    }],
                }),
            }],
            commits: Some((PathBuf::from("/p"), vec!["r".into()])),
            ..Order::default()
        };
        let text = serde_json::to_string(&order).expect("order out");
        let back: Order = serde_json::from_str(&text).expect("order in");
        assert_eq!(back.samples, order.samples);
        assert_eq!(back.commits, order.commits);
        let answer: Result<Done, StoreError> = Err(StoreError::Busy {
            path: PathBuf::from("h.duckdb"),
            detail: "held by pid 7".into(),
        });
        let text = serde_json::to_string(&answer).expect("answer out");
        let back: Result<Done, StoreError> = serde_json::from_str(&text).expect("answer in");
        assert_eq!(back.err(), answer.err());
    }
}
