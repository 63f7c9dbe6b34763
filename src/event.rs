//! `Event`: what happened. Every source (watcher, runner, signals) turns the world into these and
//! sends them on the one channel; `state::update` is the only thing that acts on them.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

pub use crate::sample::RunKey;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The job's standard output.
    Stdout,
    /// The job's standard error.
    Stderr,
}

/// How the run's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal number, when a signal ended it.
    pub signal: Option<i32>,
}

/// User and system CPU time of a run's whole process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTime {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel on the tree's behalf.
    pub sys: Duration,
}

impl std::ops::AddAssign for CpuTime {
    fn add_assign(&mut self, other: Self) {
        self.user += other.user;
        self.sys += other.sys;
    }
}

/// How loud a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing.
    Info,
    /// Something is degraded; looptop carries on.
    Warn,
    /// Something failed.
    Error,
}

/// A message for the user from a source or from the loop itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notice {
    /// How loud.
    pub level: Level,
    /// What to tell the user, including what to do.
    pub message: String,
}

impl Notice {
    /// An informational notice.
    pub fn info(message: impl Into<String>) -> Self {
        Self {
            level: Level::Info,
            message: message.into(),
        }
    }
    /// A warning.
    pub fn warn(message: impl Into<String>) -> Self {
        Self {
            level: Level::Warn,
            message: message.into(),
        }
    }
    /// An error.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            level: Level::Error,
            message: message.into(),
        }
    }
}

/// What a file-system event did to a path, as far as deciding what counts as a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// It appeared: created, or renamed or moved to this name.
    Appeared,
    /// A directory was created. Not a change itself (its files are), but it is remembered so
    /// that what appears in it and goes with it within the same burst counts as nothing.
    DirectoryCreated,
    /// Its content is being written and the writer has not closed it yet.
    Writing,
    /// Written and closed, or changed in another way (metadata, a rename of unknown side).
    Changed,
    /// It went away: deleted, or renamed or moved from this name. A directory that goes takes
    /// the paths under it along.
    Gone,
}

/// One path and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Relative to the project root.
    pub path: PathBuf,
    /// What happened to it.
    pub kind: ChangeKind,
}

impl Change {
    /// A change of `kind` to `path`.
    pub fn new(path: impl Into<PathBuf>, kind: ChangeKind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Watched files changed; paths are relative to the project root.
    FilesChanged {
        /// What happened to which paths, in order (already filtered by the ignore rules).
        changes: Vec<Change>,
        /// The watcher lost events (queue overflow): unknown files changed.
        rescan: bool,
        /// When the watcher saw them.
        at: Instant,
    },
    /// A run's process was started.
    RunSpawned {
        /// Which run.
        key: RunKey,
        /// Its durable, time-ordered id.
        run_id: String,
        /// Its main process (also its process group and session id).
        pid: u32,
        /// When it was spawned (monotonic).
        at: Instant,
        /// When it was spawned (wall clock).
        wall: SystemTime,
        /// Where its full output is written, if anywhere.
        log: Option<PathBuf>,
        /// For a test job: which tests go first, and why.
        tests: Option<Box<crate::diagnose::per_test::TestPlan>>,
    },
    /// A run could not be started.
    SpawnFailed {
        /// Which run.
        key: RunKey,
        /// Why, for the user.
        error: String,
    },
    /// A chunk of a run's output.
    RunOutput {
        /// Which run.
        key: RunKey,
        /// Which stream.
        stream: Stream,
        /// The bytes, as the job wrote them.
        bytes: Vec<u8>,
    },
    /// A run's main process exited (others in its group may remain).
    RunExited {
        /// Which run.
        key: RunKey,
        /// How it ended.
        status: ExitStatus,
        /// When it was reaped.
        at: Instant,
    },
    /// A test job's runner reported its tests (sent just before `RunReaped`).
    TestsCollected {
        /// Which run.
        key: RunKey,
        /// What it reported.
        results: Box<crate::diagnose::per_test::TestResults>,
    },
    /// A run's whole process group is gone: the run is over.
    RunReaped {
        /// Which run.
        key: RunKey,
        /// CPU time of every process of the run that was reaped.
        cpu: CpuTime,
    },
    /// A resource reading of an active run.
    Sample(Box<crate::sample::Sample>),
    /// Where a run's Python time went, from the profiler: given just before the run's end.
    Profile {
        /// Which run.
        key: RunKey,
        /// Its profile.
        profile: Box<crate::profile::Profile>,
    },
    /// What the sampler found out about GPUs (once, when it first looks).
    Gpus(GpuStatus),
    /// A past run's samples, read from the history for the TUI.
    PastRun {
        /// The job whose trend shows the run.
        job: usize,
        /// The run.
        run_id: String,
        /// Its samples, oldest first (none if the history kept none).
        samples: Vec<crate::sample::Sample>,
    },
    /// A key pressed in the TUI.
    Key(Key),
    /// The mouse wheel turned over the TUI.
    Wheel(Wheel),
    /// The terminal changed size.
    Resize,
    /// The user asked looptop to quit (Ctrl-C, SIGTERM, SIGHUP).
    Interrupt,
    /// Time passed; deadlines may be due.
    Tick,
    /// A source has something to tell the user.
    Notice(Notice),
}

/// A turn of the mouse wheel, with where the pointer was and the screen's size then, so that
/// the pane under the pointer can be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel {
    /// Lines to scroll; positive is up (back in time).
    pub lines: i64,
    /// The pointer's column.
    pub column: u16,
    /// The pointer's row.
    pub row: u16,
    /// The screen's width.
    pub width: u16,
    /// The screen's height.
    pub height: u16,
}

/// A key, in looptop's own terms (the TUI's input source translates the terminal's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Tab.
    Tab,
    /// Shift-Tab.
    BackTab,
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Ctrl-C (raw mode delivers it as a key).
    CtrlC,
}

/// Whether looptop can read GPUs, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuStatus {
    /// NVML works.
    Available {
        /// The library loaded.
        library: String,
        /// The driver's version.
        driver: Option<String>,
        /// The GPUs watched.
        devices: Vec<crate::sample::GpuInfo>,
    },
    /// No GPU readings, and why.
    Unavailable(crate::sample::GpuUnavailable),
}
