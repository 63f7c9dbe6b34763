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
//! - a burst that created a directory waits at least `NEW_DIRECTORY_QUIET`: a directory is often
//!   built under a scratch name and renamed once complete;
//! - the window never exceeds `debounce_max`, and a stream of changes that never pauses still
//!   starts a run after `MAX_BURST`.
//!
//! Not every path touched is a change to the project:
//! - a path that appeared and went again within the burst (a temporary written and renamed
//!   away, a cache directory built under a scratch name, a file made and deleted) changed
//!   nothing, and neither did the paths under a directory that did so;
//! - a file still being written (modified, not yet closed) is not a change yet: it is held back
//!   until its writer closes it, however long that takes, so no run reads half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::event::{Change, ChangeKind};

/// Distinct paths from which a burst is not a single save.
pub const MULTI_FILE_PATHS: usize = 3;
/// The least quiet such a burst needs before a run starts.
pub const MULTI_FILE_QUIET: Duration = Duration::from_millis(50);
/// Distinct paths from which a burst counts as a storm.
pub const STORM_PATHS: usize = 8;
/// The least quiet a storm needs before a run starts.
pub const STORM_QUIET: Duration = Duration::from_millis(100);
/// The least quiet a burst that created a directory needs: a directory is often built under a
/// scratch name and renamed when complete (pytest's cache), and until then it is not settled.
pub const NEW_DIRECTORY_QUIET: Duration = Duration::from_millis(250);
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

/// What happened to one path within a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fate {
    /// It did not exist when the burst began: its first event was `Appeared`.
    born: bool,
    /// Its last event took it away.
    gone: bool,
    /// Written, and not closed since.
    writing: bool,
    /// A directory created in this burst: never a change by itself.
    new_directory: bool,
}

impl Fate {
    /// Whether the path counts as a change of the project now.
    fn counts(self) -> bool {
        !(self.writing || self.new_directory || self.born && self.gone)
    }
}

/// Changes seen since the last run was triggered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst {
    first_at: Instant,
    last_at: Instant,
    /// Distinct touched paths, relative to the project root (at most `MAX_TRIGGER_PATHS`).
    touched: BTreeMap<PathBuf, Fate>,
    /// How many of `touched` are directories created in this burst.
    new_directories: usize,
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
            touched: BTreeMap::new(),
            new_directories: 0,
            more: 0,
            rescan: false,
        }
    }

    /// Adds changes seen at `at`.
    pub fn add(&mut self, changes: Vec<Change>, rescan: bool, at: Instant) {
        if self.only_waits_for_writers() {
            // Until now it only waited for writers to close their files: it begins now.
            self.first_at = at;
        }
        self.last_at = self.last_at.max(at);
        self.rescan |= rescan;
        for Change { path, kind } in changes {
            if kind == ChangeKind::Gone {
                for (_, fate) in self
                    .touched
                    .range_mut(path.clone()..)
                    .take_while(|(p, _)| p.starts_with(&path))
                {
                    fate.gone = true;
                    fate.writing = false;
                }
            }
            if !self.touched.contains_key(&path) {
                // New directories are kept apart from the cap: they are never trigger paths.
                let directory = kind == ChangeKind::DirectoryCreated;
                let kept = if directory {
                    self.new_directories
                } else {
                    self.touched.len() - self.new_directories
                };
                if kept >= MAX_TRIGGER_PATHS {
                    self.more += 1;
                    continue;
                }
                // What appears inside a directory that appeared in this burst is new too.
                let born = matches!(kind, ChangeKind::Appeared | ChangeKind::DirectoryCreated)
                    || path
                        .ancestors()
                        .skip(1)
                        .any(|dir| self.touched.get(dir).is_some_and(|fate| fate.born));
                self.new_directories += usize::from(directory);
                self.touched.insert(
                    path.clone(),
                    Fate {
                        born,
                        gone: false,
                        writing: false,
                        new_directory: false,
                    },
                );
            }
            let Some(fate) = self.touched.get_mut(&path) else {
                continue;
            };
            fate.gone = kind == ChangeKind::Gone;
            fate.writing = kind == ChangeKind::Writing;
            fate.new_directory |= kind == ChangeKind::DirectoryCreated;
        }
    }

    /// The paths that count as changes of the project: neither gone again after appearing in
    /// this burst, nor still being written.
    pub fn changed_paths(&self) -> impl Iterator<Item = &Path> {
        self.touched
            .iter()
            .filter(|(_, fate)| fate.counts())
            .map(|(path, _)| path.as_path())
    }

    /// When the first change of the burst was seen.
    pub fn started_at(&self) -> Instant {
        self.first_at
    }

    /// How much quiet this burst needs before it is over.
    pub fn quiet_window(&self, settings: Coalescing) -> Duration {
        let mut window = settings.debounce;
        if self.touched.len() >= STORM_PATHS || self.rescan {
            window = window.max(STORM_QUIET);
        } else if self.touched.len() >= MULTI_FILE_PATHS {
            window = window.max(MULTI_FILE_QUIET);
        }
        if self.new_directories > 0 {
            window = window.max(NEW_DIRECTORY_QUIET);
        }
        window = window.max((self.last_at - self.first_at) / 4);
        window.min(settings.debounce_max).max(settings.debounce)
    }

    /// When the burst is over and a run should start, if nothing more arrives; None while
    /// every path it touched is still being written (its close will come as a change).
    pub fn due_at(&self, settings: Coalescing) -> Option<Instant> {
        (!self.only_waits_for_writers()).then(|| {
            (self.last_at + self.quiet_window(settings)).min(self.first_at + MAX_BURST.max(settings.debounce_max))
        })
    }

    /// Whether every path it touched is still being written (and nothing else is known).
    fn only_waits_for_writers(&self) -> bool {
        self.more == 0 && !self.rescan && !self.touched.is_empty() && self.touched.values().all(|fate| fate.writing)
    }

    /// What is left of this burst once it has fired: the files still being written, as a new
    /// burst that began at `now`. None when nothing is being written.
    pub fn still_writing(&self, now: Instant) -> Option<Self> {
        let writing: BTreeMap<PathBuf, Fate> = self
            .touched
            .iter()
            .filter(|(_, fate)| fate.writing)
            .map(|(path, fate)| (path.clone(), *fate))
            .collect();
        (!writing.is_empty()).then(|| Self {
            touched: writing,
            new_directories: 0,
            ..Self::new(now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: Coalescing = Coalescing {
        debounce: Duration::from_millis(5),
        debounce_max: Duration::from_millis(500),
    };

    fn paths(n: usize) -> Vec<Change> {
        (0..n).map(|i| changed(&format!("f{i}.py"))).collect()
    }

    fn changed(path: &str) -> Change {
        Change::new(path, ChangeKind::Changed)
    }

    fn counted(burst: &Burst) -> Vec<&str> {
        burst.changed_paths().map(|p| p.to_str().expect("utf-8")).collect()
    }

    #[test]
    fn a_save_waits_only_the_short_window() {
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        burst.add(vec![changed("a.py"), changed("a.py~")], false, t0);
        burst.add(vec![changed("a.py")], false, t0 + Duration::from_micros(300));
        assert_eq!(
            burst.due_at(SETTINGS),
            Some(t0 + Duration::from_micros(300) + Duration::from_millis(5))
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
            burst.add(vec![changed("log.txt")], false, t0 + Duration::from_millis(ms));
        }
        assert_eq!(burst.due_at(SETTINGS), Some(t0 + MAX_BURST));
    }

    #[test]
    fn paths_beyond_the_cap_are_counted() {
        let mut burst = Burst::new(Instant::now());
        burst.add(paths(MAX_TRIGGER_PATHS + 10), false, Instant::now());
        burst.add(
            vec![Change::new("gen", ChangeKind::DirectoryCreated)],
            false,
            Instant::now(),
        );
        assert_eq!((burst.changed_paths().count(), burst.more), (MAX_TRIGGER_PATHS, 10));
    }

    #[test]
    fn a_path_that_appears_and_goes_within_the_burst_is_no_change() {
        use ChangeKind::{Appeared, Gone, Writing};
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        // An atomic save: a temporary written, closed and renamed over the real file.
        burst.add(
            vec![
                Change::new("model.py.tmp1", Appeared),
                Change::new("model.py.tmp1", Writing),
                changed("model.py.tmp1"),
                Change::new("model.py.tmp1", Gone),
                Change::new("model.py", Appeared),
            ],
            false,
            t0,
        );
        assert_eq!(counted(&burst), ["model.py"]);
        // pytest's cache: files written under a scratch directory that is renamed away.
        burst.add(
            vec![
                Change::new("pytest-cache-files-x1", ChangeKind::DirectoryCreated),
                Change::new("pytest-cache-files-x1/README.md", Appeared),
                changed("pytest-cache-files-x1/README.md"),
                Change::new("pytest-cache-files-x1/v/cache/nodeids", Appeared),
                Change::new("pytest-cache-files-x1", Gone),
            ],
            false,
            t0,
        );
        assert_eq!(counted(&burst), ["model.py"]);
        // A new empty directory is no change either, and one being built is given time to
        // settle.
        burst.add(vec![Change::new("empty", ChangeKind::DirectoryCreated)], false, t0);
        assert_eq!(counted(&burst), ["model.py"]);
        assert_eq!(burst.quiet_window(SETTINGS), NEW_DIRECTORY_QUIET);
    }

    #[test]
    fn a_deleted_file_that_was_there_before_is_a_change_and_so_is_one_that_comes_back() {
        use ChangeKind::{Appeared, Gone};
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        burst.add(
            vec![Change::new("old.py", Gone), Change::new("data/a.csv", Gone)],
            false,
            t0,
        );
        burst.add(
            vec![Change::new("new.py", Appeared), Change::new("new.py", Gone)],
            false,
            t0,
        );
        burst.add(vec![Change::new("new.py", Appeared)], false, t0);
        burst.add(vec![Change::new("data", Gone)], false, t0);
        assert_eq!(counted(&burst), ["data", "data/a.csv", "new.py", "old.py"]);
    }

    #[test]
    fn a_file_still_being_written_waits_for_its_close() {
        use ChangeKind::{Appeared, Writing};
        let t0 = Instant::now();
        let mut burst = Burst::new(t0);
        burst.add(
            vec![
                Change::new("events.parquet", Appeared),
                Change::new("events.parquet", Writing),
            ],
            false,
            t0,
        );
        assert_eq!(
            burst.due_at(SETTINGS),
            None,
            "nothing to run while only a write is in progress"
        );
        let t1 = t0 + Duration::from_millis(30);
        burst.add(vec![changed("train.py")], false, t1);
        assert_eq!(burst.due_at(SETTINGS), Some(t1 + Duration::from_millis(5)));
        assert_eq!(counted(&burst), ["train.py"]);
        let left = burst.still_writing(t1).expect("the parquet file is still open");
        assert_eq!((left.due_at(SETTINGS), left.started_at()), (None, t1));
        let mut left = left;
        let t2 = t1 + Duration::from_secs(30);
        left.add(vec![changed("events.parquet")], false, t2);
        assert_eq!(counted(&left), ["events.parquet"]);
        assert_eq!(left.due_at(SETTINGS), Some(t2 + Duration::from_millis(5)));
        assert!(left.still_writing(t2).is_none());
    }
}
