//! The guard: a small process that stops looptop's running jobs when looptop dies without
//! stopping them (`kill -9`, the OOM killer, a crash).
//!
//! Why not `PR_SET_PDEATHSIG` on each job: jobs are started with posix_spawn, where no code runs
//! in the child before exec; the signal would reach only the session leader (`sh -c`), not the
//! rest of its group; and it fires when the *thread* that spawned the job ends, not the process.
//! Instead looptop starts one guard: a second copy of its own binary (`/proc/self/exe`), in a
//! process group of its own (so a Ctrl-C meant for looptop does not stop it), whose stdin is a
//! pipe that only looptop holds (close-on-exec, so jobs never inherit it). looptop writes
//! `+<pgid>` when a run starts and `-<pgid>` once its group is gone. However looptop ends, the
//! kernel closes the pipe; the guard reads end-of-file and stops every group still listed:
//! SIGTERM, `GUARD_GRACE`, then SIGKILL. Nothing is added to a run's start but one write.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, signal, SigHandler, Signal};
use nix::unistd::Pid;

/// The first argument that makes the looptop binary act as the guard.
pub const GUARD_ARG: &str = "__looptop-guard";
/// How long the guard lets jobs stop after SIGTERM before it kills them.
pub const GUARD_GRACE: Duration = Duration::from_secs(2);

/// looptop's end of the guard.
#[derive(Debug)]
pub struct Guard {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Guard {
    /// Starts the guard.
    pub fn start() -> std::io::Result<Self> {
        let mut child = Command::new("/proc/self/exe")
            .arg(GUARD_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()?;
        let pipe = child.stdin.take();
        Ok(Self { child, pipe })
    }

    /// The guard's process id (a child of looptop that is no job's).
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(0)
    }

    /// Asks the guard to stop process group `pgid` if looptop dies.
    pub fn watch(&mut self, pgid: i32) {
        self.say(&format!("+{pgid}\n"));
    }

    /// Tells the guard that group `pgid` is gone.
    pub fn release(&mut self, pgid: i32) {
        self.say(&format!("-{pgid}\n"));
    }

    fn say(&mut self, line: &str) {
        let Some(pipe) = self.pipe.as_mut() else { return };
        if let Err(e) = pipe.write_all(line.as_bytes()) {
            log::warn!("the guard stopped ({e}): if looptop is killed, its running job is left running");
            self.pipe = None;
        }
    }
}

/// The guard's main: follows looptop's list of groups on stdin until it closes, then stops the
/// groups still listed. Returns the exit code.
pub fn run() -> u8 {
    // The guard outlives looptop's own signals: only the closed pipe ends it.
    for sig in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGTERM, Signal::SIGQUIT] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    let mut groups = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let group = |sign: char| line.strip_prefix(sign).and_then(|n| n.parse::<i32>().ok());
        if let Some(pgid) = group('+').filter(|&pgid| pgid > 1) {
            groups.insert(pgid);
        } else if let Some(pgid) = group('-') {
            groups.remove(&pgid);
        }
    }
    stop_groups(&groups);
    0
}

/// SIGTERM to each group, a grace while any is left, then SIGKILL.
fn stop_groups(groups: &BTreeSet<i32>) {
    let send = |pgid: i32, sig: Signal| !matches!(killpg(Pid::from_raw(pgid), sig), Err(Errno::ESRCH));
    let mut left: Vec<i32> = groups.iter().copied().filter(|&g| send(g, Signal::SIGTERM)).collect();
    if left.is_empty() {
        return;
    }
    eprintln!(
        "looptop guard: looptop ended with {} job group(s) running; stopping them",
        left.len()
    );
    let deadline = Instant::now() + GUARD_GRACE;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left.retain(|&g| !matches!(killpg(Pid::from_raw(g), None), Err(Errno::ESRCH)));
    }
    for pgid in left {
        send(pgid, Signal::SIGKILL);
    }
}
