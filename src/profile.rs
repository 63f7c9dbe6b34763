//! A run's Python profile: where its threads were, tick by tick, summed up. The profiler source
//! (`sources::profiler`) reads the stacks and feeds them to a `Tally`; what comes out, a
//! `Profile`, is plain data that the report, the diagnosis, the history and the TUI read.
//!
//! Units: a *sample* is one tick of the profiler, in which every thread of the run's profiled
//! processes is read once. A frame's `share_pct` is the share of samples in which some thread
//! was at that line; a thread's `cpu_pct` and `idle_pct` are shares of the samples it was seen in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Frames kept per run: the running ones first, each group by share.
pub const MAX_FRAMES: usize = 10;
/// Threads kept per run, the most active first.
pub const MAX_THREADS: usize = 8;

/// One line of code and how much of the run a thread spent there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameShare {
    /// The function (`<module>` for top-level code).
    pub function: String,
    /// The file: relative to the project root inside it, else the library's own path
    /// (`numpy/core/fromnumeric.py`, `queue.py`).
    pub file: String,
    /// The line being run.
    pub line: u32,
    /// Share of the samples in which a thread was at this line, in %.
    pub share_pct: f64,
    /// The thread was idle there (waiting on a lock, a queue, I/O, sleep), not running.
    pub idle: bool,
    /// The line is the project's own Python, run with the interpreter lock held (pure Python,
    /// not a library's native code); evidence for `python-loop`, kept out of the JSON.
    #[serde(skip)]
    pub own_python: bool,
}

/// One thread of the job and how it spent the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadShare {
    /// Its Python name (`MainThread`, `loader`), with the process for a thread outside the main
    /// process (`MainThread (pid 4242)`).
    pub name: String,
    /// Share of its samples in which it was running, in %.
    pub cpu_pct: f64,
    /// Share of its samples in which it was idle (waiting), in %.
    pub idle_pct: f64,
    /// Where it waited most, `function (file:line)`: the call the project's code made into a
    /// library (`Queue.get (queue.py:171)`), else the innermost frame; `None` if it never waited.
    pub waits_in: Option<String>,
}

/// A function's share of the run, all its lines together (running samples only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FunctionShare {
    /// The function.
    pub function: String,
    /// Its file, as in `FrameShare::file`.
    pub file: String,
    /// Share of the samples in which a thread was running in it, in %.
    pub share_pct: f64,
    /// The line of it that was seen most.
    pub line: u32,
}

/// Where a run's Python time went.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Profile {
    /// Samples taken (ticks in which at least one thread was read).
    pub samples: u32,
    /// The lines threads were found at most (innermost frame of each stack): the lines where
    /// they ran first, then where they waited, each by share.
    pub frames: Vec<FrameShare>,
    /// The threads, the most active first.
    pub threads: Vec<ThreadShare>,
    /// Stacks of running threads seen over the run (evidence, kept out of the JSON).
    #[serde(skip)]
    pub active_stacks: u32,
    /// Share of those running stacks that sat in the project's own pure-Python code, in %.
    #[serde(skip)]
    pub own_python_pct: f64,
    /// The function that ran in the most samples (evidence, kept out of the JSON).
    #[serde(skip)]
    pub hottest: Option<FunctionShare>,
}

impl Profile {
    /// The frame of the project's own pure-Python code seen most while running.
    pub fn top_own_python(&self) -> Option<&FrameShare> {
        self.frames.iter().find(|f| f.own_python && !f.idle)
    }

    /// The thread named `name`.
    pub fn thread(&self, name: &str) -> Option<&ThreadShare> {
        self.threads.iter().find(|t| t.name == name)
    }
}

/// One frame of a stack, with its file as the profile shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The function.
    pub function: String,
    /// The file, as `FrameShare::file`.
    pub file: String,
    /// The line.
    pub line: u32,
    /// The file is inside the project (and not in an environment's packages there).
    pub own: bool,
}

impl Frame {
    fn label(&self) -> String {
        format!("{} ({}:{})", self.function, self.file, self.line)
    }
}

/// Where each file is shown from, and whether it is the project's own code, remembered per
/// file name: the profiler places every frame of every sample.
#[derive(Debug, Clone)]
pub struct Places {
    root: PathBuf,
    known: HashMap<String, (String, bool)>,
}

impl Places {
    /// Files placed against the project `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            known: HashMap::new(),
        }
    }

    /// The file `filename` as the profile shows it, and whether it is the project's own;
    /// `short` is the interpreter's package-relative name for files outside the project.
    pub fn place(&mut self, filename: &str, short: Option<&str>) -> (&str, bool) {
        if !self.known.contains_key(filename) {
            let placed = place(filename, &self.root, short);
            self.known.insert(filename.to_string(), placed);
        }
        self.known
            .get(filename)
            .map_or(("", false), |(file, own)| (file.as_str(), *own))
    }
}

/// Where a file is shown from, and whether it is the project's own code.
fn place(filename: &str, root: &Path, short: Option<&str>) -> (String, bool) {
    let path = Path::new(filename);
    if let Ok(inside) = path.strip_prefix(root) {
        let vendored = inside.components().any(|c| {
            let c = c.as_os_str().to_string_lossy();
            c == "site-packages" || c == "dist-packages" || c == ".venv" || c == "venv"
        });
        if !vendored {
            return (inside.display().to_string(), true);
        }
    }
    let shown = short
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            // Standard library modules: the part after `pythonX.Y/`.
            let text = filename.to_string();
            let at = text.find("/python3.").or_else(|| text.find("/python2."))?;
            let rest = &text[at + 1..];
            rest.find('/').map(|slash| rest[slash + 1..].to_string())
        })
        .unwrap_or_else(|| filename.to_string());
    (shown, false)
}

/// One thread's stack in one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadStack {
    /// Its process.
    pub pid: u32,
    /// Whether that process is the run's main Python process.
    pub leader: bool,
    /// The thread's id (the OS thread id where known).
    pub thread: u64,
    /// Its Python name.
    pub name: Option<String>,
    /// Running (not idle).
    pub active: bool,
    /// It held the interpreter lock.
    pub owns_gil: bool,
    /// Its frames, innermost first, down to the project's innermost frame (what the tally
    /// needs; the profiler leaves out the callers above it).
    pub frames: Vec<Frame>,
}

impl ThreadStack {
    /// The thread as the profile names it.
    fn display_name(&self) -> String {
        let name = self.name.clone().unwrap_or_else(|| format!("thread {}", self.thread));
        if self.leader {
            name
        } else {
            format!("{name} (pid {})", self.pid)
        }
    }

    /// Where it waits: the library call the project's innermost frame made, else the innermost
    /// frame.
    fn wait_point(&self) -> Option<&Frame> {
        match self.frames.iter().position(|f| f.own) {
            Some(0) | None => self.frames.first(),
            Some(i) => self.frames.get(i - 1),
        }
    }
}

/// A key for counting by `parts` without allocating: counts are looked up at every sample,
/// their names are copied only the first time.
fn key_of(parts: impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(parts)
}

#[derive(Debug, Default)]
struct FrameCount {
    function: String,
    file: String,
    line: u32,
    idle: bool,
    samples: u32,
    last: u32,
    own_python: u32,
}

#[derive(Debug, Default)]
struct ThreadCount {
    name: String,
    named: bool,
    seen: u32,
    active: u32,
    idle: u32,
    waits: HashMap<u64, (String, u32)>,
    last: u32,
}

#[derive(Debug, Default)]
struct FunctionCount {
    function: String,
    file: String,
    samples: u32,
    last: u32,
    lines: HashMap<u32, u32>,
}

/// Sums up a run's samples as they come.
#[derive(Debug, Default)]
pub struct Tally {
    samples: u32,
    frames: HashMap<u64, FrameCount>,
    threads: HashMap<(u32, u64), ThreadCount>,
    functions: HashMap<u64, FunctionCount>,
    active_stacks: u32,
    own_python_stacks: u32,
}

impl Tally {
    /// Adds one sample: the stacks of every thread read in one tick. An empty tick (nothing
    /// could be read) is not a sample.
    pub fn add(&mut self, stacks: &[ThreadStack]) {
        if stacks.is_empty() {
            return;
        }
        self.samples += 1;
        let tick = self.samples;
        for stack in stacks {
            let thread = self.threads.entry((stack.pid, stack.thread)).or_default();
            if thread.last == tick {
                continue;
            }
            thread.last = tick;
            thread.seen += 1;
            // Python names a thread a little after it starts: the first real name is kept.
            if !thread.named && (stack.name.is_some() || thread.name.is_empty()) {
                thread.name = stack.display_name();
                thread.named = stack.name.is_some();
            }
            let own_python = stack.active && stack.owns_gil && stack.frames.first().is_some_and(|f| f.own);
            if stack.active {
                thread.active += 1;
                self.active_stacks += 1;
                self.own_python_stacks += u32::from(own_python);
            } else {
                thread.idle += 1;
                if let Some(point) = stack.wait_point() {
                    let key = key_of((&point.function, &point.file, point.line));
                    thread.waits.entry(key).or_insert_with(|| (point.label(), 0)).1 += 1;
                }
            }
            let Some(top) = stack.frames.first() else { continue };
            let key = key_of((&top.function, &top.file, top.line, !stack.active));
            let frame = self.frames.entry(key).or_insert_with(|| FrameCount {
                function: top.function.clone(),
                file: top.file.clone(),
                line: top.line,
                idle: !stack.active,
                ..FrameCount::default()
            });
            frame.own_python += u32::from(own_python);
            if frame.last != tick {
                frame.last = tick;
                frame.samples += 1;
            }
            if stack.active {
                let function = self
                    .functions
                    .entry(key_of((&top.function, &top.file)))
                    .or_insert_with(|| FunctionCount {
                        function: top.function.clone(),
                        file: top.file.clone(),
                        ..FunctionCount::default()
                    });
                *function.lines.entry(top.line).or_default() += 1;
                if function.last != tick {
                    function.last = tick;
                    function.samples += 1;
                }
            }
        }
    }

    /// The run's profile so far; `None` before the first sample.
    pub fn profile(&self) -> Option<Profile> {
        if self.samples == 0 {
            return None;
        }
        let share = |n: u32| f64::from(n) / f64::from(self.samples) * 100.0;
        let mut frames: Vec<FrameShare> = self
            .frames
            .values()
            .map(|count| FrameShare {
                function: count.function.clone(),
                file: count.file.clone(),
                line: count.line,
                share_pct: share(count.samples),
                idle: count.idle,
                // Pure Python when most of the line's samples held the interpreter lock.
                own_python: !count.idle && count.own_python * 2 > count.samples,
            })
            .collect();
        // Running lines first (where the time goes), then where threads waited.
        frames.sort_by(|a, b| {
            a.idle
                .cmp(&b.idle)
                .then_with(|| b.share_pct.total_cmp(&a.share_pct))
                .then_with(|| (&a.file, a.line, &a.function).cmp(&(&b.file, b.line, &b.function)))
        });
        frames.truncate(MAX_FRAMES);
        let mut threads: Vec<ThreadShare> = self
            .threads
            .values()
            .map(|t| {
                let seen = f64::from(t.seen.max(1));
                let waits_in = t
                    .waits
                    .values()
                    .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                    .map(|(point, _)| point.clone());
                ThreadShare {
                    name: t.name.clone(),
                    cpu_pct: f64::from(t.active) / seen * 100.0,
                    idle_pct: f64::from(t.idle) / seen * 100.0,
                    waits_in,
                }
            })
            .collect();
        threads.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then_with(|| a.name.cmp(&b.name)));
        threads.truncate(MAX_THREADS);
        let hottest = self
            .functions
            .values()
            .max_by(|a, b| {
                a.samples
                    .cmp(&b.samples)
                    .then_with(|| (&b.function, &b.file).cmp(&(&a.function, &a.file)))
            })
            .map(|count| FunctionShare {
                function: count.function.clone(),
                file: count.file.clone(),
                share_pct: share(count.samples),
                line: count
                    .lines
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map_or(0, |(line, _)| *line),
            });
        Some(Profile {
            samples: self.samples,
            frames,
            threads,
            active_stacks: self.active_stacks,
            own_python_pct: if self.active_stacks == 0 {
                0.0
            } else {
                f64::from(self.own_python_stacks) / f64::from(self.active_stacks) * 100.0
            },
            hottest,
        })
    }
}

/// Test stacks: one thread of the main process.
#[cfg(test)]
pub(crate) fn stack(name: &str, active: bool, owns_gil: bool, frames: &[(&str, &str, u32, bool)]) -> ThreadStack {
    ThreadStack {
        pid: 10,
        leader: true,
        thread: name.bytes().map(u64::from).sum(),
        name: Some(name.to_string()),
        active,
        owns_gil,
        frames: frames
            .iter()
            .map(|&(function, file, line, own)| Frame {
                function: function.to_string(),
                file: file.to_string(),
                line,
                own,
            })
            .collect(),
    }
}

/// A test profile: 20 samples of a main thread looping in `row_features` (features.py:12) and a
/// loader thread waiting in `queue.get`.
#[cfg(test)]
pub(crate) fn test_profile() -> Profile {
    let mut tally = Tally::default();
    for _ in 0..20 {
        let main = stack("MainThread", true, true, &[("row_features", "features.py", 12, true)]);
        let waiting = [
            ("wait", "threading.py", 320, false),
            ("get", "queue.py", 171, false),
            ("load", "train.py", 9, true),
        ];
        tally.add(&[main, stack("loader", false, false, &waiting)]);
    }
    tally.profile().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_placed_against_the_project() {
        let root = Path::new("/home/me/proj");
        assert_eq!(
            place("/home/me/proj/src/features.py", root, Some("features.py")),
            ("src/features.py".to_string(), true)
        );
        assert_eq!(
            place(
                "/home/me/proj/.venv/lib/python3.11/site-packages/numpy/core/fromnumeric.py",
                root,
                Some("numpy/core/fromnumeric.py")
            ),
            ("numpy/core/fromnumeric.py".to_string(), false)
        );
        assert_eq!(
            place("/usr/lib/python3.11/queue.py", root, None),
            ("queue.py".to_string(), false)
        );
        assert!(!place("<frozen importlib._bootstrap>", root, None).1);
    }

    #[test]
    fn shares_are_of_samples_and_threads_say_where_they_wait() {
        let mut tally = Tally::default();
        assert_eq!(tally.profile(), None);
        for i in 0..10 {
            let main = stack(
                "MainThread",
                i < 8,
                true,
                &[("row_features", "features.py", 7, true), ("main", "train.py", 3, true)],
            );
            let waiting = [
                ("wait", "threading.py", 320, false),
                ("get", "queue.py", 171, false),
                ("train", "train.py", 40, true),
            ];
            let loader = stack("loader", false, false, &waiting);
            tally.add(&[main, loader]);
        }
        tally.add(&[]);
        let profile = tally.profile().expect("sampled");
        assert_eq!(profile.samples, 10);
        let top = &profile.frames[0];
        assert_eq!((top.function.as_str(), top.line, top.idle), ("row_features", 7, false));
        assert!((top.share_pct - 80.0).abs() < 1e-9, "{top:?}");
        assert!(top.own_python);
        let wait = profile
            .frames
            .iter()
            .find(|f| f.function == "wait")
            .expect("idle frame");
        assert!(wait.idle && (wait.share_pct - 100.0).abs() < 1e-9);
        let loader = profile.thread("loader").expect("loader");
        assert_eq!(loader.waits_in.as_deref(), Some("get (queue.py:171)"));
        assert!((loader.idle_pct - 100.0).abs() < 1e-9 && loader.cpu_pct == 0.0);
        let main = profile.thread("MainThread").expect("main");
        assert!((main.cpu_pct - 80.0).abs() < 1e-9);
        assert_eq!(main.waits_in.as_deref(), Some("row_features (features.py:7)"));
        assert!((profile.own_python_pct - 100.0).abs() < 1e-9);
        let hottest = profile.hottest.expect("hottest");
        assert_eq!((hottest.function.as_str(), hottest.line), ("row_features", 7));
    }

    #[test]
    fn native_code_under_the_project_is_not_pure_python() {
        let mut tally = Tally::default();
        for _ in 0..5 {
            tally.add(&[stack(
                "MainThread",
                true,
                false,
                &[("row_features", "features.py", 4, true)],
            )]);
        }
        let profile = tally.profile().expect("sampled");
        assert!(!profile.frames[0].own_python);
        assert_eq!(profile.own_python_pct, 0.0);
        assert!(profile.top_own_python().is_none());
    }

    #[test]
    fn other_processes_threads_carry_their_pid_and_lists_are_capped() {
        let mut tally = Tally::default();
        let stacks: Vec<ThreadStack> = (0..20u32)
            .map(|i| ThreadStack {
                pid: 100 + i,
                leader: false,
                thread: 1,
                name: Some("MainThread".into()),
                active: true,
                owns_gil: true,
                frames: vec![Frame {
                    function: format!("f{i}"),
                    file: "w.py".into(),
                    line: i,
                    own: true,
                }],
            })
            .collect();
        tally.add(&stacks);
        let profile = tally.profile().expect("sampled");
        assert_eq!(profile.frames.len(), MAX_FRAMES);
        assert_eq!(profile.threads.len(), MAX_THREADS);
        assert_eq!(profile.threads[0].name, "MainThread (pid 100)");
    }

    #[test]
    fn json_has_exactly_the_documented_fields() {
        let mut tally = Tally::default();
        tally.add(&[stack("MainThread", true, true, &[("f", "a.py", 1, true)])]);
        let json = serde_json::to_value(tally.profile().expect("sampled")).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "samples": 1,
                "frames": [{"function": "f", "file": "a.py", "line": 1, "share_pct": 100.0, "idle": false}],
                "threads": [{"name": "MainThread", "cpu_pct": 100.0, "idle_pct": 0.0, "waits_in": null}]
            })
        );
    }
}
