//! Echo: a job that retriggers itself. A job that writes files inside the watched tree (outputs,
//! caches, logs) starts its own next run, and the one after, forever. Each run whose changes were
//! made while the previous run went on (or within `ECHO_WINDOW` after it ended) extends a streak
//! if it was caused by the same paths as the run before; after `ECHO_RUNS` such runs in a row
//! the user is told, once, which files to ignore.

use std::path::PathBuf;
use std::time::Duration;

use super::Trigger;

/// Changes this soon after a run ended count as made "during" it.
pub const ECHO_WINDOW: Duration = Duration::from_secs(1);
/// Runs in a row caused by the same paths, each changed during the run before, that make an echo.
pub const ECHO_RUNS: u32 = 5;

/// Tracks one job's streak of self-triggered-looking runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoDetector {
    paths: Vec<PathBuf>,
    streak: u32,
    warned: bool,
}

impl EchoDetector {
    /// Records why a run starts. `during_previous`: its changes were made while the previous run
    /// went on or just after. Returns the paths to warn about, the first time a streak is long
    /// enough.
    pub fn observe(&mut self, trigger: &Trigger, during_previous: bool) -> Option<&[PathBuf]> {
        if !during_previous || trigger.paths.is_empty() {
            self.streak = 0;
            return None;
        }
        if self.streak > 0 && trigger.paths == self.paths {
            self.streak += 1;
        } else {
            self.paths = trigger.paths.clone();
            self.streak = 1;
        }
        if self.streak >= ECHO_RUNS && !self.warned {
            self.warned = true;
            return Some(&self.paths);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(paths: &[&str]) -> Trigger {
        Trigger {
            paths: paths.iter().map(PathBuf::from).collect(),
            ..Trigger::default()
        }
    }

    #[test]
    fn warns_once_after_a_streak_of_the_same_paths() {
        let mut echo = EchoDetector::default();
        let out = trigger(&["results/metrics.json"]);
        for _ in 1..ECHO_RUNS {
            assert!(echo.observe(&out, true).is_none());
        }
        assert_eq!(echo.observe(&out, true), Some(out.paths.as_slice()));
        assert!(echo.observe(&out, true).is_none(), "only once");
    }

    #[test]
    fn edits_between_runs_or_other_paths_break_the_streak() {
        let mut echo = EchoDetector::default();
        let out = trigger(&["out.json"]);
        for i in 0..3 * ECHO_RUNS {
            // Every third run is caused by an edit made while the job was idle.
            assert!(echo.observe(&out, i % 3 != 0).is_none());
        }
        for i in 0..2 * ECHO_RUNS {
            let other = trigger(&[if i % 2 == 0 { "a.py" } else { "b.py" }]);
            assert!(echo.observe(&other, true).is_none());
        }
    }
}
