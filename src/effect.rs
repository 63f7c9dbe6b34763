//! `Effect`: what should happen next, as data. `state::update` returns these; the app loop
//! carries them out, so the loop's logic stays free of I/O and testable.

use crate::event::{Notice, RunKey};
use crate::report::{RunFinished, RunStarted};
use crate::state::Trigger;

/// Which signal to send to a run's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ask politely (SIGTERM).
    Term,
    /// Insist (SIGKILL).
    Kill,
}

/// Something for the sinks (headless printer, later the store and the TUI log).
// Reports live for one turn of the loop (two per run are large): boxing would cost more than it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A run started.
    RunStarted(RunStarted),
    /// A run ended and its group is gone.
    RunFinished(RunFinished),
    /// A chunk of a run's output.
    Output {
        /// The run's id.
        run_id: String,
        /// Which stream it came from.
        stream: crate::event::Stream,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A resource reading of a run (for the history).
    Sample {
        /// The run's id.
        run_id: String,
        /// The reading.
        sample: Box<crate::sample::Sample>,
    },
    /// A number pulled out of a run's output (for the history).
    Metric {
        /// The run's id.
        run_id: String,
        /// The metric's name.
        name: String,
        /// Milliseconds after the run's start.
        t_ms: f64,
        /// The value.
        value: f64,
    },
    /// A run's GPU is starved (live).
    Stall(crate::report::StallStarted),
    /// A message for the user.
    Notice(Notice),
}

/// What should happen.
// A handful of effects live for one turn of the loop: boxing the report would cost more than it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start a run of job `job` (an index into `State::jobs`).
    StartRun {
        /// The key the run will be known by.
        key: RunKey,
        /// Which job.
        job: usize,
        /// Why it runs.
        trigger: Trigger,
    },
    /// Send a signal to a run's whole process group.
    Signal {
        /// Which run.
        key: RunKey,
        /// Which signal.
        signal: StopSignal,
    },
    /// Tell the sinks.
    Report(Report),
    /// Read a past run's samples from the history, for the TUI (answered by `Event::PastRun`).
    LoadSamples {
        /// The job whose trend shows the run (an index into `State::jobs`).
        job: usize,
        /// The run.
        run_id: String,
    },
    /// Leave the loop with this exit code.
    Exit(u8),
}
