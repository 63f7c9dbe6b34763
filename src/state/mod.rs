//! The loop's state: plain data, no handles. `update` is the only code that changes it.

pub mod burst;
pub mod echo;
pub mod keys;
pub mod layout;
pub mod update;
pub mod usage;
pub mod view;

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::config::JobSpec;
use crate::event::{ExitStatus, RunKey};
use crate::report::RunFinished;
pub use burst::{Burst, Coalescing};
pub use update::{next_wakeup, update};

/// Whether looptop keeps watching or stops after one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rerun on every batch of changes until told to quit.
    Watch,
    /// Run once, then exit with the run's exit code.
    Once,
    /// Run back to back until `left` more runs are done, then exit (`looptop bench`).
    Repeat {
        /// Runs still to start after the current one.
        left: u32,
    },
}

/// Why a run is (or was) being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A change arrived and the job restarts on change.
    Restart,
    /// It ran past the job's timeout.
    Timeout,
    /// looptop is quitting.
    Quit,
    /// The main process exited but others in its group did not.
    Leftovers,
}

/// Why a run starts: the changed files (relative to the project root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    /// Changed paths that matched the job (sorted, at most `burst::MAX_TRIGGER_PATHS`).
    pub paths: Vec<PathBuf>,
    /// Further changes that were counted, not kept.
    pub more: usize,
    /// The watcher lost events, so unknown files changed.
    pub rescan: bool,
}

impl Trigger {
    /// Adds another trigger's changes to this one.
    pub fn merge(&mut self, other: Trigger) {
        for path in other.paths {
            if let Err(at) = self.paths.binary_search(&path) {
                if self.paths.len() < burst::MAX_TRIGGER_PATHS {
                    self.paths.insert(at, path);
                } else {
                    self.more += 1;
                }
            }
        }
        self.more += other.more;
        self.rescan |= other.rescan;
    }

    /// The paths as strings, for reports.
    pub fn path_strings(&self) -> Vec<String> {
        self.paths.iter().map(|p| p.to_string_lossy().into_owned()).collect()
    }
}

/// A run's process, once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawned {
    /// Durable, time-ordered run id.
    pub run_id: String,
    /// Main process id (also process group id).
    pub pid: u32,
    /// Spawn time, monotonic.
    pub at: Instant,
    /// Spawn time, wall clock.
    pub wall: SystemTime,
    /// Where its full output is written.
    pub log: Option<PathBuf>,
}

/// The main process's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// How it ended.
    pub status: ExitStatus,
    /// When.
    pub at: Instant,
}

/// A stop in progress: SIGTERM at `term_at`, SIGKILL at `kill_at` if the group is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// Why.
    pub reason: StopReason,
    /// When the stop was asked for.
    pub requested_at: Instant,
    /// When SIGTERM goes to the group.
    pub term_at: Instant,
    /// Whether SIGTERM was sent.
    pub term_sent: bool,
    /// When SIGKILL goes to the group.
    pub kill_at: Instant,
    /// Whether SIGKILL was sent.
    pub kill_sent: bool,
}

/// A run that was asked for and whose process group is not yet gone.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveRun {
    /// Its key.
    pub key: RunKey,
    /// Why it runs.
    pub trigger: Trigger,
    /// Its process, once spawned.
    pub spawned: Option<Spawned>,
    /// The main process's exit, once it happened.
    pub exit: Option<Exit>,
    /// A stop in progress.
    pub stop: Option<Stop>,
    /// Its samples so far, summed up.
    pub usage: usage::UsageTally,
    /// Its samples as the diagnosis sees them.
    pub points: Vec<crate::diagnose::Point>,
    /// The data files its processes read, so far.
    pub files: crate::diagnose::files_read::FilesTally,
    /// Its local cluster, so far.
    pub cluster: crate::diagnose::cluster::ClusterTally,
    /// Watches for a starved GPU.
    pub stall: crate::diagnose::stall::StallWatch,
    /// Splits its output into lines and pulls out the job's metrics.
    pub output: crate::diagnose::metrics::OutputScanner,
    /// A query job's profile, once `exec-query` printed it.
    pub query: Option<crate::diagnose::query::QueryProfile>,
    /// This looptop's other jobs (by index) that were running when the run was sampled, with how
    /// many of its samples each was running in (to name them when the CPUs were contended).
    pub alongside: std::collections::BTreeMap<usize, usize>,
    /// For a test job: which tests go first, and why.
    pub test_plan: Option<crate::diagnose::per_test::TestPlan>,
    /// For a test job: what its runner reported, once the run is over.
    pub test_results: Option<crate::diagnose::per_test::TestResults>,
    /// Where its Python time went, once the profiler handed it over.
    pub profile: Option<crate::profile::Profile>,
}

/// One job and its loop.
#[derive(Debug, Clone)]
pub struct JobState {
    /// The job's settings.
    pub spec: JobSpec,
    /// The current run, if any.
    pub active: Option<ActiveRun>,
    /// Changes waiting for the next run.
    pub pending: Option<Trigger>,
    /// The last finished run.
    pub last: Option<RunFinished>,
    /// When the last run's group was gone.
    pub last_ended_at: Option<Instant>,
    /// Watches for the job retriggering itself.
    pub echo: echo::EchoDetector,
    /// Durations of the job's recent passing runs (oldest first): the regression baseline.
    pub baseline: Vec<f64>,
    /// Each test's recent passing times and last outcome (a test job's).
    pub tests: crate::diagnose::per_test::TestMemory,
    /// The jobs of this loop that it needs (`needs`), by index; needs that are not part of this
    /// loop are left out.
    pub needs: Vec<usize>,
    /// It wants a run as soon as the jobs it needs have passed.
    pub waiting: bool,
}

/// Everything the loop knows.
#[derive(Debug, Clone)]
pub struct State {
    /// Watch or once.
    pub mode: Mode,
    /// The project's root, for display.
    pub root: std::path::PathBuf,
    /// How changes are coalesced.
    pub coalescing: Coalescing,
    /// The jobs, in config order.
    pub jobs: Vec<JobState>,
    /// Changes not yet turned into runs.
    pub burst: Option<Burst>,
    /// looptop was asked to quit and is stopping runs.
    pub quitting: bool,
    /// What the sampler found out about GPUs, once it looked.
    pub gpus: Option<crate::event::GpuStatus>,
    /// What the TUI shows (`None` headless).
    pub view: Option<view::View>,
    /// The job indices with every job before the jobs that need it.
    pub order: Vec<usize>,
    /// The exit code of `--once`: the first failure's, else 0.
    pub exit_code: u8,
    next_key: u64,
}

impl State {
    /// A loop over `jobs` with nothing running yet.
    pub fn new(jobs: Vec<JobSpec>, coalescing: Coalescing, mode: Mode) -> Self {
        let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
        let jobs: Vec<JobState> = jobs
            .into_iter()
            .map(|spec| JobState {
                needs: spec
                    .needs
                    .iter()
                    .filter_map(|need| names.iter().position(|n| n == need))
                    .collect(),
                spec,
                active: None,
                pending: None,
                last: None,
                last_ended_at: None,
                echo: echo::EchoDetector::default(),
                baseline: Vec::new(),
                tests: crate::diagnose::per_test::TestMemory::default(),
                waiting: false,
            })
            .collect();
        let order = needs_first(&jobs);
        Self {
            mode,
            root: std::path::PathBuf::new(),
            coalescing,
            jobs,
            burst: None,
            quitting: false,
            gpus: None,
            view: None,
            order,
            exit_code: 0,
            next_key: 0,
        }
    }

    /// The first job that job `index` needs and that has not passed since it last ran (running,
    /// about to run, waiting itself, failed, or not run yet in this loop).
    pub fn unmet_need(&self, index: usize) -> Option<usize> {
        self.jobs[index].needs.iter().copied().find(|&need| {
            let job = &self.jobs[need];
            job.active.is_some()
                || job.pending.is_some()
                || job.waiting
                || job
                    .last
                    .as_ref()
                    .is_none_or(|last| last.outcome != crate::report::Outcome::Pass)
        })
    }

    /// The job index and run for `key`, if that run is still active.
    pub fn run_mut(&mut self, key: RunKey) -> Option<(usize, &mut ActiveRun)> {
        self.jobs
            .iter_mut()
            .enumerate()
            .find_map(|(i, job)| job.active.as_mut().filter(|run| run.key == key).map(|run| (i, run)))
    }

    /// Whether any job has a run whose group is not yet gone.
    pub fn any_active(&self) -> bool {
        self.jobs.iter().any(|job| job.active.is_some())
    }

    /// The jobs that need job `index`, needed ones first.
    pub fn dependents(&self, index: usize) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|&j| self.jobs[j].needs.contains(&index))
            .collect()
    }

    fn next_key(&mut self) -> RunKey {
        self.next_key += 1;
        RunKey(self.next_key)
    }
}

/// Job indices ordered so that every job comes after the jobs it needs (config order
/// otherwise). The config refuses circles; were there one, its jobs keep config order.
fn needs_first(jobs: &[JobState]) -> Vec<usize> {
    let mut order = Vec::with_capacity(jobs.len());
    while order.len() < jobs.len() {
        let ready = (0..jobs.len())
            .find(|i| !order.contains(i) && jobs[*i].needs.iter().all(|n| order.contains(n)))
            .or_else(|| (0..jobs.len()).find(|i| !order.contains(i)));
        order.extend(ready);
    }
    order
}
