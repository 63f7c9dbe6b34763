//! Sources: each turns part of the world into `Event`s on the loop's channel.

pub mod guard;
pub mod ignore_rules;
pub mod imports;
pub mod junit;
pub mod profiler;
pub mod runner;
pub mod sampler;
pub mod spawn;
pub mod test_results;
pub mod watcher;

use std::sync::mpsc;
use std::time::Instant;

/// For a thread that works on ticks and takes commands: waits for the next command, or until
/// `next_tick` when there is one. `Some(None)` is a tick due, `None` a closed channel (the
/// thread's handle was dropped: time to stop).
pub fn command_or_tick<T>(rx: &mpsc::Receiver<T>, next_tick: Option<Instant>) -> Option<Option<T>> {
    match next_tick {
        None => rx.recv().ok().map(Some),
        Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
            Ok(command) => Some(Some(command)),
            Err(mpsc::RecvTimeoutError::Timeout) => Some(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
        },
    }
}
