//! The runner: starts each run in a session and process group of its own, streams its output
//! (to the loop, bounded, and in full to `.looptop/logs/<run id>.log`), signals the whole group
//! to stop it, and reaps every process of the group with wait4 so that the run's CPU time covers
//! its whole tree. A run is over when its group is empty, not when the shell exits.
//!
//! looptop makes itself a child subreaper at start, so a job's orphaned grandchildren are
//! reparented to looptop instead of init: they are reaped here and their CPU time counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::config::{JobCommand, JobSpec};
use crate::diagnose::per_test::{plan, Selection, TestPlan};
use crate::effect::StopSignal;
use crate::event::{CpuTime, Event, ExitStatus, Notice, RunKey, Stream};
use crate::sources::guard::Guard;
use crate::sources::imports::ImportGraph;
use crate::sources::spawn::spawn_session_leader;
use crate::sources::test_results::{TestCollect, TestDirs};
use crate::state::Trigger;
use crate::store::data_dir::{self, UnsafePath};

/// Bytes read from a pipe at a time; with the loop's bounded channel this bounds the memory a
/// flood of output can take.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// How long a finished run waits for its output to drain (a process that escaped the group may
/// hold the pipe open forever).
const DRAIN_WAIT: Duration = Duration::from_millis(500);
/// Logs kept in `.looptop/logs`; the oldest go as new ones are written.
pub const LOGS_KEPT: usize = 500;

/// Makes looptop the reaper of its descendants' orphans (Linux `PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

/// Starts and stops runs.
#[derive(Debug)]
pub struct Runner {
    tx: mpsc::Sender<Event>,
    log_dir: Option<LogDir>,
    force_color: bool,
    groups: HashMap<RunKey, Pid>,
    /// Processes that left their run's group, already reported.
    escapees: HashSet<i32>,
    /// Stops the running jobs if looptop dies without stopping them.
    guard: Option<Guard>,
    /// Where test jobs' results go, and the project's import graph (`with_tests`).
    tests: Option<(TestDirs, ImportGraph)>,
}

impl Runner {
    /// A runner that reports to `tx` and writes logs into `log_dir` (if given).
    /// `force_color` asks jobs for colored output even though they write to a pipe.
    pub fn new(tx: mpsc::Sender<Event>, log_dir: Option<LogDir>, force_color: bool) -> Self {
        Self {
            tx,
            log_dir,
            force_color,
            groups: HashMap::new(),
            escapees: HashSet::new(),
            guard: None,
            tests: None,
        }
    }

    /// Collects per-test results of the test jobs in the project at `root` (see
    /// `test_results`), and picks the tests a change can affect from its import graph; says
    /// so if `.looptop` cannot hold them.
    #[must_use]
    pub fn with_tests(mut self, root: &Path) -> Self {
        match TestDirs::prepare(root) {
            Ok(dirs) => self.tests = Some((dirs, ImportGraph::default())),
            Err(e) => log::warn!("{e}; per-test results are not collected"),
        }
        self
    }

    /// Starts the guard (see `guard`), so that a `kill -9` of looptop does not leave its jobs
    /// running; says so if it cannot.
    #[must_use]
    pub fn guarded(mut self) -> Self {
        match Guard::start() {
            Ok(guard) => self.guard = Some(guard),
            Err(e) => log::warn!("cannot start the guard ({e}): if looptop is killed, its running job is left running"),
        }
        self
    }

    /// Starts a run; returns `RunSpawned` or `SpawnFailed` for the loop to apply. `failing`
    /// are the tests of the job that failed when they last ran (a test job runs them first).
    pub fn start(&mut self, key: RunKey, job: &JobSpec, trigger: &Trigger, failing: &[String]) -> Event {
        let run_id = uuid::Uuid::now_v7().to_string();
        let (log_path, log_file) = match self.open_log(&run_id) {
            Some((path, file)) => (Some(path), Some(Arc::new(file))),
            None => (None, None),
        };
        let mut command = self.command(job, &run_id, trigger);
        let (collect, tests) = self.plan_tests(&run_id, job, trigger, failing, &mut command);
        let wall = SystemTime::now();
        let at = Instant::now();
        let spawned = match spawn_session_leader(command) {
            Ok(spawned) => spawned,
            Err(e) => {
                if let Some(path) = &log_path {
                    let _ = std::fs::remove_file(path);
                }
                if let Some(collect) = &collect {
                    let _ = collect.read();
                }
                return Event::SpawnFailed {
                    key,
                    error: e.to_string(),
                };
            }
        };
        let pid = spawned.pid;
        let pgid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
        self.groups.insert(key, pgid);
        if let Some(guard) = self.guard.as_mut() {
            guard.watch(pgid.as_raw());
        }
        let (done_tx, done_rx) = std_mpsc::channel::<()>();
        self.pump(key, Stream::Stdout, spawned.stdout, log_file.clone(), done_tx.clone());
        self.pump(key, Stream::Stderr, spawned.stderr, log_file, done_tx);
        let tx = self.tx.clone();
        // The reaper below waits for the whole group.
        let reaper = std::thread::Builder::new()
            .name(format!("looptop-reap-{pid}"))
            .spawn(move || reap_group(key, pgid, tx, &done_rx, collect));
        if let Err(e) = reaper {
            let _ = killpg(pgid, Signal::SIGKILL);
            return Event::SpawnFailed {
                key,
                error: format!("cannot start a thread to wait for it: {e}"),
            };
        }
        Event::RunSpawned {
            key,
            run_id,
            pid,
            at,
            wall,
            log: log_path,
            tests: tests.map(Box::new),
        }
    }

    /// How run `run_id` of `job` reports its tests, and which go first: a `junit` file, or
    /// looptop's pytest plugin (loaded through `command`'s environment) with the tests the
    /// trigger can affect and those in `failing`.
    fn plan_tests(
        &mut self,
        run_id: &str,
        job: &JobSpec,
        trigger: &Trigger,
        failing: &[String],
        command: &mut Command,
    ) -> (Option<TestCollect>, Option<TestPlan>) {
        if let Some(path) = &job.junit {
            let collect = TestCollect::Junit {
                path: path.clone(),
                since: SystemTime::now(),
            };
            return (Some(collect), Some(TestPlan::default()));
        }
        let Some((dirs, graph)) = self.tests.as_mut().filter(|_| job.collects_pytest()) else {
            return (None, None);
        };
        let changed = trigger.path_strings();
        let reach = (!changed.is_empty()).then(|| {
            graph.refresh(&dirs.root);
            let reach = graph.reach(&changed);
            (reach.targets, reach.complete && trigger.more == 0 && !trigger.rescan)
        });
        let plan = plan(job.affected, reach, failing);
        let first: Vec<String> = plan.targets.iter().map(|t| t.target.clone()).collect();
        let only = plan.selection == Selection::Only;
        let collect = dirs.pytest(run_id, command, &job.env, &first, only, job.runs_pytest());
        (Some(collect), Some(plan))
    }

    /// Sends `signal` to every process of the run's group.
    pub fn signal(&self, key: RunKey, signal: StopSignal) {
        let Some(&pgid) = self.groups.get(&key) else { return };
        let signal = match signal {
            StopSignal::Term => Signal::SIGTERM,
            StopSignal::Kill => Signal::SIGKILL,
        };
        match killpg(pgid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => log::warn!("cannot send {signal} to process group {pgid}: {e}"),
        }
    }

    /// Forgets a run whose group is gone. Then looks after job processes that left their run's
    /// process group (setsid): as their subreaper looptop reaps them once they exit, and says
    /// once of each one still running that it outlived its run.
    pub fn forget(&mut self, key: RunKey) -> Vec<Notice> {
        if let (Some(pgid), Some(guard)) = (self.groups.remove(&key), self.guard.as_mut()) {
            guard.release(pgid.as_raw());
        }
        let own_group = nix::unistd::getpgrp().as_raw();
        let guard = self.guard.as_ref().map(Guard::pid);
        let mut notices = Vec::new();
        for child in children_of_this_process() {
            if Some(child) == guard {
                continue;
            }
            let Some(stat) = ProcStat::read(child) else { continue };
            let in_a_run = self.groups.values().any(|group| group.as_raw() == stat.group);
            if stat.group == own_group || in_a_run {
                continue;
            }
            if stat.state == 'Z' {
                let _ = nix::sys::wait::waitpid(Pid::from_raw(child), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
                self.escapees.remove(&child);
            } else if self.escapees.insert(child) {
                notices.push(Notice::warn(format!(
                    "process {child} ({}) left its run's process group (setsid) and outlived the run; \
                     looptop cannot stop it with the run: stop it yourself if it should not be running",
                    stat.name
                )));
            }
        }
        notices
    }

    /// What the run executes, with its environment and working directory (see
    /// `spawn_session_leader`); `{changed}` in the command stands for the trigger's paths.
    fn command(&self, job: &JobSpec, run_id: &str, trigger: &Trigger) -> Command {
        let changed = trigger.path_strings();
        let mut command = match &job.command {
            JobCommand::Shell(line) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(expand_changed_line(line, &changed));
                c
            }
            JobCommand::Argv(argv) => {
                let argv = expand_changed_argv(argv, &changed);
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        // Output goes to a pipe: ask common tools to stream and keep colors anyway.
        command.env("PYTHONUNBUFFERED", "1");
        if self.force_color {
            for (key, value) in [
                ("FORCE_COLOR", "1"),
                ("CLICOLOR_FORCE", "1"),
                ("PY_COLORS", "1"),
                ("CARGO_TERM_COLOR", "always"),
            ] {
                command.env(key, value);
            }
        }
        let trigger_list = trigger.path_strings().join("\n");
        command
            .envs(&job.env)
            .env("LOOPTOP_RUN_ID", run_id)
            .env("LOOPTOP_JOB", &job.name)
            .env("LOOPTOP_TRIGGER", trigger_list)
            .current_dir(&job.cwd);
        command
    }

    fn open_log(&mut self, run_id: &str) -> Option<(PathBuf, File)> {
        let dir = self.log_dir.as_mut()?;
        match dir.create(run_id) {
            Ok(opened) => Some(opened),
            Err(e) => {
                log::warn!("cannot write a log in {}: {e}", dir.path.display());
                None
            }
        }
    }

    fn pump(
        &self,
        key: RunKey,
        stream: Stream,
        mut pipe: impl Read + Send + 'static,
        log: Option<Arc<File>>,
        done: std_mpsc::Sender<()>,
    ) {
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("looptop-output".into())
            .spawn(move || {
                let _done = done;
                let mut log = log;
                // exec-query's summary line is for the loop, not for the run's log.
                let mut protocol = crate::diagnose::query::ProtocolFilter::default();
                let mut buffer = vec![0u8; CHUNK_BYTES];
                loop {
                    let n = match pipe.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let chunk = &buffer[..n];
                    if let Some(file) = log.as_deref() {
                        let mut file: &File = file;
                        if let Err(e) = file.write_all(&protocol.pass(chunk)) {
                            log::warn!("run log: {e}; the rest of this run's output is not logged");
                            log = None;
                        }
                    }
                    // When the loop is gone nobody reads; keep draining so the job never blocks.
                    let _ = tx.blocking_send(Event::RunOutput {
                        key,
                        stream,
                        bytes: chunk.to_vec(),
                    });
                }
                if let Some(file) = log.as_deref() {
                    let mut file: &File = file;
                    let _ = file.write_all(&protocol.finish());
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot read the job's {stream:?}: {e}");
        }
    }
}

/// `.looptop/logs`: one `<run id>.log` per run, at most `LOGS_KEPT` of them. Only files named
/// like looptop's own logs are ever deleted, and only inside a real directory (see
/// `store::data_dir`); anything else put there is left alone.
#[derive(Debug)]
pub struct LogDir {
    path: PathBuf,
    /// looptop's logs in the directory, oldest first.
    logs: VecDeque<PathBuf>,
}

impl LogDir {
    /// Prepares `.looptop/logs` under `root` and trims it to `LOGS_KEPT` logs. A `.looptop` or
    /// `logs` that is a link, a file or another user's is refused.
    pub fn prepare(root: &Path) -> Result<Self, UnsafePath> {
        let path = data_dir::prepare(root)?.join("logs");
        data_dir::ensure_real_dir(&path)?;
        let entries = std::fs::read_dir(&path).map_err(|e| UnsafePath::Io {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let mut logs: Vec<PathBuf> = entries.flatten().filter(is_own_log).map(|e| e.path()).collect();
        // Run ids are UUIDv7: their names sort by start time.
        logs.sort();
        let mut dir = Self {
            path,
            logs: logs.into(),
        };
        dir.trim();
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates run `run_id`'s log (never through a link: the file must be new) and removes the
    /// oldest log beyond `LOGS_KEPT`.
    fn create(&mut self, run_id: &str) -> std::io::Result<(PathBuf, File)> {
        let path = self.path.join(format!("{run_id}.log"));
        let file = File::options().append(true).create_new(true).open(&path)?;
        self.logs.push_back(path.clone());
        self.trim();
        Ok((path, file))
    }

    fn trim(&mut self) {
        while self.logs.len() > LOGS_KEPT {
            if let Some(old) = self.logs.pop_front() {
                let _ = std::fs::remove_file(old);
            }
        }
    }
}

/// Whether a directory entry is a log looptop wrote: a plain file (not a link) named
/// `<UUIDv7>.log`, the way run ids are written.
fn is_own_log(entry: &std::fs::DirEntry) -> bool {
    let plain = entry.file_type().is_ok_and(|t| t.is_file());
    let name = entry.file_name();
    let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
        return false;
    };
    plain
        && uuid::Uuid::parse_str(stem).is_ok_and(|id| id.get_version_num() == 7 && id.hyphenated().to_string() == stem)
}

/// The placeholder a command may hold for the run's changed paths.
pub const CHANGED: &str = "{changed}";

/// A shell command line with `{changed}` replaced by the changed paths, each shell-quoted.
pub fn expand_changed_line(line: &str, changed: &[String]) -> String {
    if !line.contains(CHANGED) {
        return line.to_string();
    }
    let quoted: Vec<String> = changed.iter().map(|p| crate::config::shell_quote(p)).collect();
    line.replace(CHANGED, &quoted.join(" "))
}

/// Arguments with a `{changed}` argument replaced by one argument per changed path (and
/// `{changed}` inside a longer argument by the paths joined with spaces).
pub fn expand_changed_argv(argv: &[String], changed: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len() + changed.len());
    for (i, arg) in argv.iter().enumerate() {
        if arg == CHANGED && i > 0 {
            out.extend(changed.iter().cloned());
        } else {
            out.push(arg.replace(CHANGED, &changed.join(" ")));
        }
    }
    out
}

/// Waits for every process of the group (children of looptop: the main process and reparented
/// orphans), adding up their CPU time, until the group is empty.
///
/// Only the main process is waited for blocking: a blocking `wait4(-pgid)` is never woken if
/// the child it waits for moves to another group (setsid) before exiting, so the rest of the
/// group is polled. The main process's exit time, which the run's duration ends on, stays exact.
fn reap_group(
    key: RunKey,
    pgid: Pid,
    tx: mpsc::Sender<Event>,
    output_done: &std_mpsc::Receiver<()>,
    tests: Option<TestCollect>,
) {
    let leader = pgid.as_raw();
    let mut cpu = CpuTime::default();
    loop {
        match wait_for(leader, 0) {
            Waited::Reaped(pid, status, usage) => {
                cpu += usage;
                if pid == leader {
                    let at = Instant::now();
                    let _ = tx.blocking_send(Event::RunExited { key, status, at });
                    break;
                }
            }
            Waited::Interrupted => continue,
            Waited::Running | Waited::NoChild => break,
        }
    }
    loop {
        match wait_for(-leader, libc::WNOHANG) {
            Waited::Reaped(_, _, usage) => cpu += usage,
            Waited::Interrupted => continue,
            // Members still running, or alive but not our children (their parent left the group).
            Waited::Running => std::thread::sleep(LEFTOVER_POLL),
            Waited::NoChild if group_alive(pgid) => std::thread::sleep(LEFTOVER_POLL),
            Waited::NoChild => break,
        }
    }
    // Let the output threads pass on the last bytes before the run is reported finished.
    let _ = output_done.recv_timeout(DRAIN_WAIT);
    // The runner wrote its results before its processes were gone.
    if let Some(results) = tests.as_ref().and_then(TestCollect::read) {
        let _ = tx.blocking_send(Event::TestsCollected {
            key,
            results: Box::new(results),
        });
    }
    let _ = tx.blocking_send(Event::RunReaped { key, cpu });
}

/// How often the rest of a group is checked on once its main process has exited.
const LEFTOVER_POLL: Duration = Duration::from_millis(5);

/// What one `wait4` call found.
enum Waited {
    /// A child was reaped: its pid, how it ended and its CPU time (with its waited-for children).
    Reaped(i32, ExitStatus, CpuTime),
    /// With WNOHANG: matching children exist, none has exited.
    Running,
    /// No matching child.
    NoChild,
    /// A signal interrupted the call.
    Interrupted,
}

fn wait_for(pid: i32, flags: libc::c_int) -> Waited {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
    match reaped {
        0 => Waited::Running,
        pid if pid > 0 => Waited::Reaped(pid, decode_status(status), cpu_time(&usage)),
        _ if Errno::last() == Errno::EINTR => Waited::Interrupted,
        _ => Waited::NoChild,
    }
}

/// The children of looptop (of all its threads), from /proc.
fn children_of_this_process() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// The fields of /proc/<pid>/stat that matter here.
struct ProcStat {
    name: String,
    state: char,
    group: i32,
}

impl ProcStat {
    fn read(pid: i32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (name) S ppid pgrp ...": the name may hold spaces and parentheses.
        let (head, rest) = stat.rsplit_once(')')?;
        let name = head.split_once('(')?.1.to_string();
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let group = fields.nth(1)?.parse().ok()?;
        Some(Self { name, state, group })
    }
}

fn group_alive(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

fn cpu_time(usage: &libc::rusage) -> CpuTime {
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    CpuTime {
        user: time(usage.ru_utime),
        sys: time(usage.ru_stime),
    }
}

fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFEXITED(status) {
        ExitStatus {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
        }
    } else if libc::WIFSIGNALED(status) {
        ExitStatus {
            code: None,
            signal: Some(libc::WTERMSIG(status)),
        }
    } else {
        ExitStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_stat_of_an_odd_name() {
        let me = ProcStat::read(std::process::id().try_into().expect("pid")).expect("own stat");
        assert_eq!(me.group, nix::unistd::getpgrp().as_raw());
        assert!(me.state == 'R' || me.state == 'S', "state {}", me.state);
    }

    #[test]
    fn changed_paths_are_quoted_in_a_shell_line_and_split_in_argv() {
        let changed = vec!["src/a b.py".to_string(), "t.py".to_string()];
        assert_eq!(
            expand_changed_line("ruff {changed}", &changed),
            "ruff 'src/a b.py' t.py"
        );
        assert_eq!(expand_changed_line("make", &changed), "make");
        let argv: Vec<String> = ["ruff", "{changed}", "--x={changed}"].map(String::from).to_vec();
        assert_eq!(
            expand_changed_argv(&argv, &changed),
            ["ruff", "src/a b.py", "t.py", "--x=src/a b.py t.py"]
        );
        assert_eq!(expand_changed_argv(&argv, &[]), ["ruff", "--x="]);
    }

    #[test]
    fn decodes_exit_codes_and_signals() {
        assert_eq!(
            decode_status(3 << 8),
            ExitStatus {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(
            decode_status(9),
            ExitStatus {
                code: None,
                signal: Some(9)
            }
        );
    }

    /// A name like a run id, from the distant past (so it sorts first).
    fn old_log_name(i: usize) -> String {
        format!("00000000-0000-7000-8000-{i:012}.log")
    }

    #[test]
    fn log_dir_is_created_ignored_and_trimmed_to_its_own_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = LogDir::prepare(dir.path()).expect("prepare");
        assert!(dir.path().join(".looptop/.gitignore").is_file());
        for i in 0..LOGS_KEPT + 3 {
            std::fs::write(logs.path().join(old_log_name(i)), "x").expect("write");
        }
        // Not looptop's: kept whatever their number.
        for name in ["notes.log", "00000000-0000-4000-8000-000000000000.log", "ABC.log"] {
            std::fs::write(logs.path().join(name), "mine").expect("write");
        }
        let mut logs = LogDir::prepare(dir.path()).expect("prepare again");
        let count = || {
            std::fs::read_dir(dir.path().join(".looptop/logs"))
                .expect("read")
                .count()
        };
        assert_eq!(count(), LOGS_KEPT + 3);
        assert!(!logs.path().join(old_log_name(0)).exists(), "the oldest logs go first");
        assert!(logs.path().join("notes.log").exists());
        // Each new log makes room for itself.
        for _ in 0..5 {
            logs.create(&uuid::Uuid::now_v7().to_string()).expect("create");
        }
        assert_eq!(count(), LOGS_KEPT + 3);
        assert!(!logs.path().join(old_log_name(7)).exists());
    }
}
