//! `Effect`: what should happen next, as data. `state::update` returns these; the app loop
//! carries them out, so the loop's logic stays free of I/O and testable.

use crate::event::RunKey;
pub use crate::report::Report;
use crate::state::Trigger;

/// Which signal to send to a run's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ask politely (SIGTERM).
    Term,
    /// Insist (SIGKILL).
    Kill,
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
