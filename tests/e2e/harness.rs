//! Drives the real looptop binary in a temporary project: files are written for real, inotify
//! delivers real events, and jobs are real processes.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long to wait for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A temporary project with its own data directory (so trust approvals stay inside the test).
pub struct Project {
    dir: tempfile::TempDir,
    data_home: tempfile::TempDir,
    /// A directory outside the project for files the jobs write (pid files), so that they do
    /// not trigger runs.
    pub scratch: tempfile::TempDir,
    /// Environment variables every looptop of this project gets.
    env: Vec<(String, String)>,
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            data_home: tempfile::tempdir().expect("tempdir"),
            scratch: tempfile::tempdir().expect("tempdir"),
            env: Vec::new(),
        }
    }

    /// Gives every looptop started from now on this environment variable.
    pub fn with_env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().expect("canonical path")
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write");
    }

    /// The environment `looptop` gets here, as `KEY=value` words for a shell command line
    /// (for a looptop started in tmux).
    pub fn env_assignments(&self) -> String {
        [
            ("XDG_DATA_HOME".to_string(), self.data_home.path().display().to_string()),
            ("NO_COLOR".to_string(), "1".to_string()),
        ]
        .into_iter()
        .chain(self.env.iter().cloned())
        .map(|(key, value)| format!("{key}={}", sh_quote(&value)))
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// A looptop command in the project directory.
    pub fn looptop(&self, args: &[&str]) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("looptop"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("XDG_DATA_HOME", self.data_home.path())
            .env("NO_COLOR", "1")
            .env_remove("LOOPTOP_LOG")
            .env_remove("LOOPTOP_NVML_LIB")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs looptop to completion.
    pub fn run(&self, args: &[&str]) -> Finished {
        let output = self.looptop(args).output().expect("run looptop");
        Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `looptop run --once --json -- CMD`, asserts it passed, and returns its events.
    pub fn run_once_json(&self, cmd: &str) -> Vec<Value> {
        let done = self.run(&["run", "--once", "--json", "--", cmd]);
        assert!(done.status.success(), "`{cmd}` failed: {}", done.stderr);
        json_rows(&done.stdout)
    }

    /// Starts `looptop run --json ARGS` and follows its events.
    pub fn spawn(&self, args: &[&str]) -> Session {
        let mut full = vec!["run", "--json"];
        full.extend_from_slice(args);
        let mut child = self
            .looptop(&full)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn looptop");
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let mut pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if let Ok(mut sink) = sink.lock() {
                    sink.extend_from_slice(&buffer[..n]);
                }
            }
        });
        Session {
            child,
            events,
            stderr,
            seen: Vec::new(),
        }
    }
}

/// Each line of `stdout` as JSON.
pub fn json_rows(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// The `run_finished` event among `events`.
pub fn run_finished(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "run_finished")
        .unwrap_or_else(|| panic!("no run_finished in {events:#?}"))
}

/// A finished looptop.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running looptop and the JSON events it printed.
pub struct Session {
    child: Child,
    events: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Every event received so far, in order.
    pub seen: Vec<Value>,
}

impl Session {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next event called `name` (others are recorded in `seen` and skipped).
    pub fn next(&mut self, name: &str) -> Value {
        self.next_within(name, PATIENCE).unwrap_or_else(|| {
            panic!(
                "no `{name}` event within {PATIENCE:?}; seen: {:#?}\nstderr: {}",
                self.seen,
                self.stderr()
            )
        })
    }

    /// The next event called `name` within `wait`, if any.
    pub fn next_within(&mut self, name: &str, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.events.recv_timeout(left).ok()?;
            self.seen.push(event.clone());
            if event["event"] == name {
                return Some(event);
            }
        }
    }

    /// Waits until the watcher has set up its watches.
    pub fn wait_watching(&mut self) {
        let is_watching =
            |e: &Value| e["event"] == "notice" && e["message"].as_str().is_some_and(|m| m.starts_with("watching "));
        if self.seen.iter().any(is_watching) {
            return;
        }
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if is_watching(&self.next("notice")) {
                return;
            }
        }
        panic!("looptop never said it was watching; seen {:#?}", self.seen);
    }

    /// Asserts that no `name` event arrives during `wait`.
    pub fn expect_quiet(&mut self, name: &str, wait: Duration) {
        if let Some(event) = self.next_within(name, wait) {
            panic!("unexpected `{name}` event: {event:#}\nall seen: {:#?}", self.seen);
        }
    }

    /// Everything looptop wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }

    /// Waits for looptop to exit by itself (`--once`), for up to twice `PATIENCE`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_child(&mut self.child, PATIENCE * 2).unwrap_or_else(|| panic!("looptop did not exit"))
    }

    /// Sends SIGINT (Ctrl-C) and waits for looptop to exit.
    pub fn interrupt(mut self) -> ExitStatus {
        signal(self.child.id(), nix::sys::signal::Signal::SIGINT);
        wait_child(&mut self.child, PATIENCE).unwrap_or_else(|| panic!("looptop did not exit after SIGINT"))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_child(child: &mut Child, wait: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits"));
    let _ = nix::sys::signal::kill(pid, signal);
}

/// Whether a process exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits up to `wait` for a process to be gone.
pub fn gone_within(pid: i32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !is_alive(pid)
}

/// Reads a pid that a job wrote to `path`, waiting for it to appear.
pub fn read_pid(path: &Path) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no pid in {}", path.display());
}

/// The trigger list of a run event.
pub fn trigger(event: &Value) -> Vec<String> {
    event["trigger"]
        .as_array()
        .map(|list| list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `text` as one word for sh.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A tmux session running a command; killed when dropped.
pub struct Tmux {
    name: String,
}

impl Tmux {
    pub fn start(dir: &Path, command: &str) -> Self {
        static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let number = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("looptop-e2e-{}-{number}", std::process::id());
        // Tests start sessions in parallel: when no tmux server runs yet, two clients can race
        // to start one and one of them fails. Try again, as a user would.
        let mut errors = Vec::new();
        for _attempt in 0..5 {
            let output = Command::new("tmux")
                .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "40", "-c"])
                .arg(dir)
                .arg(command)
                .env("TERM", "xterm-256color")
                .output()
                .expect("tmux is installed");
            if output.status.success() {
                return Self { name };
            }
            errors.push(String::from_utf8_lossy(&output.stderr).into_owned());
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("tmux new-session failed: {errors:?}");
    }

    /// The TUI (`looptop --trust`) in `project`; the shell says when it exited, and stays.
    pub fn looptop(project: &Project) -> Self {
        let command = format!(
            "XDG_DATA_HOME={} {} --trust; echo looptop-exited-$?; sleep 60",
            project.scratch.path().display(),
            assert_cmd::cargo::cargo_bin("looptop").display()
        );
        Self::start(&project.path(), &command)
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, keys])
            .status()
            .expect("send-keys");
        assert!(status.success());
    }

    /// Waits until the screen shows `text`; returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(Instant::now() < deadline, "the screen never showed {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}

/// Copies an example's tree from `from` into `to`, leaving out what running it leaves behind.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("type");
        let name = entry.file_name();
        // Leave out what running the example leaves behind.
        if [
            ".looptop",
            "__pycache__",
            ".pytest_cache",
            "checkpoints",
            "events.csv",
            "events.parquet",
        ]
        .iter()
        .any(|skip| name == *skip)
        {
            continue;
        }
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

/// A process keeping a CPU busy beside the job, started under `prefix` (`taskset -c 0`,
/// `nice -n 19`), killed when dropped: the other work of a busy machine.
pub struct Hog(Child);

impl Hog {
    pub fn under(prefix: &[&str]) -> Self {
        let child = Command::new(prefix.first().copied().unwrap_or("env"))
            .args(prefix.iter().skip(1))
            .args(["sh", "-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start a CPU hog");
        Self(child)
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the tests run in the host's pid namespace. Inside a container looptop cannot match
/// NVML's (host) pids to a job's, so it never claims that a job left a GPU unused there: tests of
/// `gpu-unused` expect "unknown" instead.
pub fn in_host_pid_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/pid").map_or(true, |ns| ns.as_os_str() == "pid:[4026531836]")
}
