//! Coalescing file changes into one run per burst. A fixed trailing debounce cannot both start
//! within milliseconds of a save and give one run for a 3,000-file storm, so the quiet window
//! that must pass before a run starts stretches with the burst:
//! - a burst touching one or two paths (an editor save; its temporaries are ignored) waits only
//!   `debounce` (5 ms by default) after its last event;
//! - a burst touching `MULTI_FILE_PATHS` or more distinct paths is no single save and waits at
//!   least `MULTI_FILE_QUIET`, so that a storm whose writer stalls after its first few files is
//!   not split;
//! - a burst touching `STORM_PATHS` or more distinct paths is a storm (checkout, formatter,
//!   generator) and waits at least `STORM_QUIET`;
//! - the longer a burst has lasted, the longer the quiet it needs (a quarter of its length),
//!   so one that paused for a moment mid-way is not mistaken for finished;
//! - the window never exceeds `debounce_max`, and a stream of changes that never pauses still
//!   starts a run after `MAX_BURST`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Distinct paths from which a burst is not a single save.
pub const MULTI_FILE_PATHS: usize = 3;
/// The least quiet such a burst needs before a run starts.
pub const MULTI_FILE_QUIET: Duration = Duration::from_millis(50);
/// Distinct paths from which a burst counts as a storm.
pub const STORM_PATHS: usize = 8;
/// The least quiet a storm needs before a run starts.
pub const STORM_QUIET: Duration = Duration::from_millis(100);
/// A burst that never goes quiet still starts a run after this long.
pub const MAX_BURST: Duration = Duration::from_secs(10);
/// Trigger paths kept per run; beyond this they are counted, not kept.
pub const MAX_TRIGGER_PATHS: usize = 1000;

/// The quiet-window settings (`[watch] debounce_ms`, `debounce_max_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalescing {
    /// Quiet needed after a small burst.
    pub debounce: Duration,
    /// The longest the window may stretch to.
    pub debounce_max: Duration,
}

/// Changes seen since the last run was triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst {
    first_at: Instant,
    last_at: Instant,
    /// Distinct changed paths, relative to the project root (at most `MAX_TRIGGER_PATHS`).
    pub paths: BTreeSet<PathBuf>,
    /// Further change notifications beyond the kept paths.
    pub more: usize,
    /// The watcher lost events: unknown files changed.
    pub rescan: bool,
}

impl Burst {
    /// A burst that begins with these changes.
    pub fn new(at: Instant) -> Self {
        Self {
            first_at: at,
            last_at: at,
            paths: BTreeSet::new(),
            more: 0,
            rescan: false,
        }
    }

    /// Adds changes seen at `at`.
    pub fn add(&mut self, paths: Vec<PathBuf>, rescan: bool, at: Instant) {
        self.last_at = self.last_at.max(at);
        self.rescan |= rescan;
        for path in paths {
            if self.paths.len() < MAX_TRIGGER_PATHS {
                self.paths.insert(path);
            } else if !self.paths.contains(&path) {
                self.more += 1;
            }
        }
    }

    /// When the first change of the burst was seen.
    pub fn started_at(&self) -> Instant {
        self.first_at
    }

    /// How much quiet this burst needs before it is over.
    pub fn quiet_window(&self, settings: Coalescing) -> Duration {
        let mut window = settings.debounce;
        if self.paths.len() >= STORM_PATHS || self.rescan {
            window = window.max(STORM_QUIET);
        } else if self.paths.len() >= MULTI_FILE_PATHS {
            window = window.max(MULTI_FILE_QUIET);
        }
        window = window.max((self.last_at - self.first_at) / 4);
        window.min(settings.debounce_max).max(settings.debounce)
    }

    /// When the burst is over and a run should start, if nothing more arrives.
    pub fn due_at(&self, settings: Coalescing) -> Instant {
        (self.last_at + self.quiet_window(settings)).min(self.first_at + MAX_BURST.max(settings.debounce_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: Coalescing = Coalescing {
        debounce: Duration::from_millis(5),
        debounce_max: Duration::from_millis(500),
    };

    fn paths(n: usize) -> Vec<PathBuf> {
        (0..n).map(|i| PathBuf::from(format!("f{i}.py"))).collect()
    }

    #[test]
    fn a_save_waits_only_the_short_window() {
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        burst.add(vec!["a.py".into(), "a.py~".into()], false, t0);
        burst.add(vec!["a.py".into()], false, t0 + Duration::from_micros(300));
        assert_eq!(
            burst.due_at(SETTINGS),
            t0 + Duration::from_micros(300) + Duration::from_millis(5)
        );
    }

    #[test]
    fn a_few_files_at_once_wait_longer_than_a_save() {
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        burst.add(paths(3), false, t0);
        assert_eq!(burst.quiet_window(SETTINGS), MULTI_FILE_QUIET);
    }

    #[test]
    fn a_storm_needs_longer_quiet_that_grows_with_its_length() {
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        burst.add(paths(20), false, t0 + Duration::from_millis(2));
        assert_eq!(burst.quiet_window(SETTINGS), STORM_QUIET);
        burst.add(paths(30), false, t0 + Duration::from_millis(1600));
        assert_eq!(burst.quiet_window(SETTINGS), Duration::from_millis(400));
        burst.add(paths(30), false, t0 + Duration::from_millis(4000));
        assert_eq!(burst.quiet_window(SETTINGS), SETTINGS.debounce_max, "capped");
    }

    #[test]
    fn an_endless_stream_still_runs() {
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        for ms in (0..20_000).step_by(10) {
            burst.add(vec!["log.txt".into()], false, t0 + Duration::from_millis(ms));
        }
        assert_eq!(burst.due_at(SETTINGS), t0 + MAX_BURST);
    }

    #[test]
    fn paths_beyond_the_cap_are_counted() {
        let mut burst = Burst::new(Instant::now());
        burst.add(paths(MAX_TRIGGER_PATHS + 10), false, Instant::now());
        assert_eq!((burst.paths.len(), burst.more), (MAX_TRIGGER_PATHS, 10));
    }
}
