//! The Python profiler: a thread that, while a run is active, reads the Python stacks of the
//! run's Python processes (the main process and the busiest others, such as data-loader
//! workers) `rate_hz` times a second with py-spy, out of process and without ever pausing them
//! (non-blocking reads; a torn read is dropped). It sums them up per run (`profile::Tally`) and
//! hands the result to the loop when the run ends, as `Event::Profile`, before the run's end is
//! applied.
//!
//! Reading another process's memory needs ptrace rights: looptop is the job's ancestor, which
//! Yama's `ptrace_scope` 1 (the usual default) allows; 2 and 3 do not, nor does a process that
//! made itself non-dumpable, unless looptop holds `CAP_SYS_PTRACE`. Whatever stops the profiler
//! for a process (no rights, an interpreter py-spy cannot read, a process gone mid-read) is said
//! once, as a notice; the run goes on and gets its verdict. Processes that are not Python are
//! skipped silently.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::Sender;

use crate::event::{Event, Notice, RunKey};
use crate::profile::{Frame, Places, Tally, ThreadStack};
use crate::sources::sampler::tree::ProcessTree;

/// Stack reads per second unless `[profile] rate_hz` says otherwise (see BENCHMARKS.md for
/// what it costs).
pub const DEFAULT_RATE_HZ: u32 = 50;
/// The highest rate accepted.
pub const MAX_RATE_HZ: u32 = 1000;
/// At most this many processes of a run are read: the main process and the busiest others.
pub const MAX_PROCESSES: usize = 4;
/// How often the run's processes are looked up again (new workers, which are busiest).
const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// A Python process whose interpreter cannot be read yet (it is starting) is tried again after
/// this long...
const ATTACH_RETRY: Duration = Duration::from_millis(100);
/// ... until it has been tried for this long; then why is said.
const ATTACH_GIVE_UP: Duration = Duration::from_secs(3);
/// After this many failed reads in a row of a live process, it is given up on.
const MAX_FAILED_READS: u32 = 200;
/// How long the loop waits for a finished run's profile.
pub const FINISH_WAIT: Duration = Duration::from_secs(1);

/// How the profiler works: `[profile]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilerSettings {
    /// Read the job's Python stacks at all.
    pub python: bool,
    /// Stack reads per second.
    pub rate_hz: u32,
}

impl Default for ProfilerSettings {
    fn default() -> Self {
        Self {
            python: true,
            rate_hz: DEFAULT_RATE_HZ,
        }
    }
}

/// Handle to the profiling thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Profiler {
    tx: mpsc::Sender<Command>,
    tracked: HashSet<RunKey>,
}

enum Command {
    Track {
        key: RunKey,
        pid: u32,
    },
    Finish {
        key: RunKey,
        reply: mpsc::Sender<Option<crate::profile::Profile>>,
    },
}

impl Profiler {
    /// Starts the thread, unless `settings` turn profiling off; `root` is the project's root
    /// (files inside it are the project's own code). Notices go to `events`.
    pub fn start(settings: &ProfilerSettings, root: PathBuf, events: Sender<Event>) -> std::io::Result<Option<Self>> {
        if !settings.python {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel();
        let period = Duration::from_secs_f64(1.0 / f64::from(settings.rate_hz.clamp(1, MAX_RATE_HZ)));
        std::thread::Builder::new()
            .name("looptop-profiler".into())
            .spawn(move || Thread::new(root, period, events).run(&rx))?;
        Ok(Some(Self {
            tx,
            tracked: HashSet::new(),
        }))
    }

    /// Follows the loop's events: a spawned run is profiled until `finish`.
    pub fn observe(&mut self, event: &Event) {
        if let Event::RunSpawned { key, pid, .. } = event {
            if self.tx.send(Command::Track { key: *key, pid: *pid }).is_ok() {
                self.tracked.insert(*key);
            }
        }
    }

    /// Stops profiling run `key` and returns its profile as the event the loop applies before
    /// the run's end; `None` for a run not profiled (or nothing read).
    pub fn finish(&mut self, key: RunKey) -> Option<Event> {
        if !self.tracked.remove(&key) {
            return None;
        }
        let (reply, answer) = mpsc::channel();
        self.tx.send(Command::Finish { key, reply }).ok()?;
        let profile = answer.recv_timeout(FINISH_WAIT).ok().flatten()?;
        Some(Event::Profile {
            key,
            profile: Box::new(profile),
        })
    }
}

/// What the profiler knows of one process of a run.
enum Target {
    /// Being read.
    Read { spy: Box<py_spy::PythonSpy>, failed: u32 },
    /// Python, but its interpreter could not be read yet (it may be starting).
    Pending { since: Instant, retry_at: Instant },
    /// Not profiled: not Python (its executable then, in case it execs), or given up on.
    Skipped { exe: Option<PathBuf> },
}

struct Run {
    leader: u32,
    /// The run's main Python process: the leader, or, when the leader is not Python
    /// (`sh -c "python3 …"`), the first of its children read. Its threads go by their names alone.
    main: Option<u32>,
    tree: ProcessTree,
    refreshed: Option<Instant>,
    cpu_ticks: HashMap<u32, u64>,
    chosen: Vec<u32>,
    targets: HashMap<u32, Target>,
    tally: Tally,
}

struct Thread {
    places: Places,
    period: Duration,
    events: Sender<Event>,
    config: py_spy::Config,
    runs: HashMap<RunKey, Run>,
    /// What has been said already (one notice per kind of trouble).
    said: HashSet<&'static str>,
}

impl Thread {
    fn new(root: PathBuf, period: Duration, events: Sender<Event>) -> Self {
        let mut config = py_spy::Config::default();
        config.blocking = py_spy::config::LockingStrategy::NonBlocking;
        config.native = false;
        config.subprocesses = false;
        config.collect_thread_names = true;
        Self {
            places: Places::new(root),
            period,
            events,
            config,
            runs: HashMap::new(),
            said: HashSet::new(),
        }
    }

    fn run(mut self, rx: &mpsc::Receiver<Command>) {
        let mut next_tick: Option<Instant> = None;
        loop {
            let Some(command) = super::command_or_tick(rx, next_tick) else {
                return;
            };
            match command {
                Some(Command::Track { key, pid }) => {
                    self.runs.insert(
                        key,
                        Run {
                            leader: pid,
                            main: None,
                            tree: ProcessTree::new(pid),
                            refreshed: None,
                            cpu_ticks: HashMap::new(),
                            chosen: Vec::new(),
                            targets: HashMap::new(),
                            tally: Tally::default(),
                        },
                    );
                    next_tick.get_or_insert_with(Instant::now);
                }
                Some(Command::Finish { key, reply }) => {
                    let profile = self.runs.remove(&key).and_then(|run| run.tally.profile());
                    let _ = reply.send(profile);
                    if self.runs.is_empty() {
                        next_tick = None;
                    }
                }
                None => {
                    let now = Instant::now();
                    if !self.tick(now) {
                        return;
                    }
                    // A late tick is not made up for with a burst of them.
                    let planned = next_tick.unwrap_or(now) + self.period;
                    next_tick = Some(planned.max(now + self.period / 2));
                }
            }
        }
    }

    /// Reads every run once; false when the loop is gone.
    fn tick(&mut self, now: Instant) -> bool {
        let mut notices = Vec::new();
        for run in self.runs.values_mut() {
            if run.refreshed.is_none_or(|at| now.duration_since(at) >= REFRESH_EVERY) {
                run.refreshed = Some(now);
                run.choose(now);
            }
            let mut stacks = Vec::new();
            for pid in run.chosen.clone() {
                // A process other than the leader is the main one only under a leader that is not
                // Python (`sh -c "python3 ..."`), as its child: a loader worker forked by a
                // Python leader that is still starting up must not take its place.
                let may_be_main = pid == run.leader
                    || (matches!(run.targets.get(&run.leader), Some(Target::Skipped { .. }))
                        && parent_of(pid) == Some(run.leader));
                let target = run.targets.entry(pid).or_insert(Target::Pending {
                    since: now,
                    retry_at: now,
                });
                let due = match target {
                    Target::Pending { since, retry_at } if now >= *retry_at => Some(*since),
                    _ => None,
                };
                if let Some(since) = due {
                    *target = attach(pid, &self.config, since, now, &mut notices);
                    if may_be_main && matches!(target, Target::Read { .. }) {
                        run.main.get_or_insert(pid);
                    }
                }
                let main = run.main == Some(pid);
                if let Target::Read { spy, failed } = target {
                    match spy.get_stack_traces() {
                        Ok(traces) => {
                            *failed = 0;
                            stacks.extend(traces.iter().map(|t| stack_of(t, pid, main, &mut self.places)));
                        }
                        Err(error) if is_denied(&error) || mem_denied(pid) => {
                            notices.push(("denied", ptrace_denied(pid)));
                            *target = Target::Skipped { exe: None };
                        }
                        Err(error) if !alive(pid) => {
                            // The main process's exit is the run's end: nothing to say.
                            if !main {
                                log::debug!("profiler: process {pid} exited mid-read: {error:#}");
                                notices.push((
                                    "exited",
                                    Notice::info(format!(
                                        "python profile: process {pid} exited while it was being sampled; \
                                         its samples so far are kept"
                                    )),
                                ));
                            }
                            *target = Target::Skipped { exe: None };
                        }
                        Err(error) => {
                            // Non-blocking reads can be torn while the interpreter changes its
                            // stacks: one failed read is normal; a long run of them is not.
                            *failed += 1;
                            if *failed >= MAX_FAILED_READS {
                                notices.push(("unreadable", cannot_profile(pid, &format!("{error:#}"))));
                                *target = Target::Skipped { exe: None };
                            }
                        }
                    }
                }
            }
            run.tally.add(&stacks);
        }
        for (kind, notice) in notices {
            if self.said.insert(kind) && self.events.blocking_send(Event::Notice(notice)).is_err() {
                return false;
            }
        }
        true
    }
}

impl Run {
    /// Brings the run's processes up to date and picks those to read: the main process, then
    /// the busiest others since the last look.
    fn choose(&mut self, now: Instant) {
        let members: BTreeSet<u32> = self.tree.refresh(now).clone();
        self.targets.retain(|pid, _| members.contains(pid));
        // A process that was not Python may have become Python (`sh -c` execs its command).
        self.targets.retain(|&pid, target| match target {
            Target::Skipped { exe: Some(exe) } => executable(pid).as_ref() == Some(exe),
            _ => true,
        });
        let mut busy: Vec<(u64, u32)> = Vec::new();
        let mut ticks = HashMap::new();
        for &pid in &members {
            let Some(now_ticks) = cpu_ticks(pid) else { continue };
            ticks.insert(pid, now_ticks);
            let skipped = matches!(self.targets.get(&pid), Some(Target::Skipped { .. }));
            if pid != self.leader && !skipped {
                let before = self.cpu_ticks.get(&pid).copied().unwrap_or(0);
                busy.push((now_ticks.saturating_sub(before), pid));
            }
        }
        self.cpu_ticks = ticks;
        busy.sort_by(|a, b| b.cmp(a));
        self.chosen = members
            .contains(&self.leader)
            .then_some(self.leader)
            .into_iter()
            .collect();
        self.chosen.extend(
            busy.into_iter()
                .map(|(_, pid)| pid)
                .take(MAX_PROCESSES - self.chosen.len()),
        );
    }
}

/// Tries to read process `pid`'s interpreter (tried since `since`).
fn attach(
    pid: u32,
    config: &py_spy::Config,
    since: Instant,
    now: Instant,
    notices: &mut Vec<(&'static str, Notice)>,
) -> Target {
    let exe = executable(pid);
    if !is_python(pid, exe.as_deref()) {
        return Target::Skipped { exe };
    }
    let Ok(raw) = py_spy::Pid::try_from(pid) else {
        return Target::Skipped { exe: None };
    };
    if mem_denied(pid) {
        notices.push(("denied", ptrace_denied(pid)));
        return Target::Skipped { exe: None };
    }
    match py_spy::PythonSpy::new(raw, config) {
        Ok(spy) => Target::Read {
            spy: Box::new(spy),
            failed: 0,
        },
        Err(error) if is_denied(&error) => {
            notices.push(("denied", ptrace_denied(pid)));
            Target::Skipped { exe: None }
        }
        Err(_) if !alive(pid) => Target::Skipped { exe: None },
        // A Python that has just started has no interpreter to read yet: wait a little.
        Err(error) if now.duration_since(since) < ATTACH_GIVE_UP => {
            log::debug!("profiler: process {pid} not readable yet: {error:#}");
            Target::Pending {
                since,
                retry_at: now + ATTACH_RETRY,
            }
        }
        Err(error) => {
            notices.push(("unreadable", cannot_profile(pid, &format!("{error:#}"))));
            Target::Skipped { exe: None }
        }
    }
}

/// One py-spy trace as the tally takes it: its frames down to the project's innermost one (the
/// line the thread is at, and where it waits, are all the tally needs), else the innermost.
fn stack_of(trace: &py_spy::StackTrace, pid: u32, main: bool, places: &mut Places) -> ThreadStack {
    let own = trace
        .frames
        .iter()
        .position(|f| places.place(&f.filename, f.short_filename.as_deref()).1);
    let frames = trace
        .frames
        .iter()
        .take(own.map_or(1, |i| i + 1))
        .map(|f| {
            let (file, own) = places.place(&f.filename, f.short_filename.as_deref());
            Frame {
                function: f.name.clone(),
                file: file.to_string(),
                line: u32::try_from(f.line).unwrap_or(0),
                own,
            }
        })
        .collect();
    ThreadStack {
        pid,
        leader: main,
        thread: trace.os_thread_id.unwrap_or(trace.thread_id),
        name: trace.thread_name.clone(),
        active: trace.active,
        owns_gil: trace.owns_gil,
        frames,
    }
}

/// The notice for a process whose memory looptop may not read.
fn ptrace_denied(pid: u32) -> Notice {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .map(|s| s.trim().to_string());
    let yama = match scope.as_deref() {
        Some(value) => format!(
            "kernel.yama.ptrace_scope is {value} here; 0 or 1 lets looptop read the jobs it starts \
             (`sudo sysctl kernel.yama.ptrace_scope=1`)"
        ),
        None => "this kernel has no kernel.yama.ptrace_scope (Yama is off): the right comes from the \
                 user and the capabilities alone"
            .to_string(),
    };
    Notice::warn(format!(
        "python profile: no profile for process {pid}: reading its memory (ptrace) was denied. {yama}; in a \
         container, grant CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE); a process that made itself \
         non-dumpable (prctl PR_SET_DUMPABLE 0) needs CAP_SYS_PTRACE too. The run goes on without a \
         profile; `[profile] python = false` in looptop.toml turns profiling off"
    ))
}

/// The notice for a Python process py-spy cannot read (an interpreter version it does not know).
fn cannot_profile(pid: u32, reason: &str) -> Notice {
    Notice::warn(format!(
        "python profile: no profile for process {pid}: {reason}. The run goes on without a profile; \
         `[profile] python = false` in looptop.toml turns profiling off"
    ))
}

/// Whether py-spy failed for want of permission.
fn is_denied(error: &anyhow::Error) -> bool {
    let io_denied = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)))
    });
    let text = format!("{error:#}");
    io_denied
        || text.contains("Permission denied")
        || text.contains("Operation not permitted")
        || text.contains("EPERM")
}

/// Whether the kernel refuses looptop the process's memory: opening `/proc/<pid>/mem` takes the
/// same ptrace check as py-spy's reads, and tells it apart from a Python that is only starting.
fn mem_denied(pid: u32) -> bool {
    std::fs::File::open(format!("/proc/{pid}/mem"))
        .is_err_and(|e| matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)))
}

/// Whether the process is still there.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The process's executable, when it can be read.
fn executable(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Whether the process runs a Python interpreter: its executable, or a library it mapped, is
/// Python's. When the maps cannot be read (no rights), py-spy is left to say why.
fn is_python(pid: u32, exe: Option<&Path>) -> bool {
    let named = |path: &str| {
        Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("python") || n.starts_with("libpython"))
    };
    if exe.and_then(Path::to_str).is_some_and(named) {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        Ok(maps) => maps
            .lines()
            .filter_map(|l| l.split_ascii_whitespace().nth(5))
            .any(named),
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
    }
}

/// The parent of process `pid`, from `/proc/<pid>/stat` (after the name: state, ppid).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU time of the process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    crate::sources::sampler::counters::parse_stat(&stat, 4096).map(|r| r.cpu_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_python_and_a_gone_one_is_not_alive() {
        let me = std::process::id();
        assert!(!is_python(me, executable(me).as_deref()));
        assert!(alive(me));
        assert!(!alive(u32::MAX - 1));
        assert!(cpu_ticks(me).is_some());
        assert_eq!(parent_of(me), Some(std::os::unix::process::parent_id()));
    }

    #[test]
    fn permission_errors_are_told_from_others() {
        let denied = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EPERM)).context("Failed to copy");
        assert!(is_denied(&denied));
        assert!(!is_denied(&anyhow::anyhow!("Unsupported version of Python: 3.99")));
        let notice = ptrace_denied(42);
        assert!(
            notice.message.contains("kernel.yama.ptrace_scope"),
            "{}",
            notice.message
        );
        assert!(notice.message.contains("CAP_SYS_PTRACE"), "{}", notice.message);
        assert!(notice.message.contains("--cap-add SYS_PTRACE"), "{}", notice.message);
    }
}
