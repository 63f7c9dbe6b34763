//! Which processes belong to a run: its leader (whose pid is also the run's process group and
//! session) and every descendant, found through `/proc/<pid>/task/<tid>/children`. Loader
//! workers come and go, so the set is updated on every tick, cheaply: each tick reads the
//! children of each member's main thread; a full pass (every thread of every member, plus the
//! orphans looptop adopted as subreaper) runs at most once per `FULL_SCAN_EVERY`.
//!
//! Kernels without `children` files get a full scan of `/proc` for the run's session instead,
//! at the same slower rate.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The slowest way of finding new processes runs at most this often.
pub const FULL_SCAN_EVERY: Duration = Duration::from_secs(1);

/// Wrappers (shells, launchers) looked through to find the job's main process, at most.
const MAX_WRAPPERS: usize = 8;

/// Kernel functions a process waiting for its child sleeps in (`/proc/<pid>/wchan`), matched
/// whole: a futex wait is `futex_do_wait` on recent kernels.
const WAIT_FOR_CHILD: [&str; 4] = ["do_wait", "kernel_wait4", "kernel_waitid", "do_wait4"];

/// A run's set of processes.
#[derive(Debug, Clone)]
pub struct ProcessTree {
    proc_root: PathBuf,
    leader: u32,
    members: BTreeSet<u32>,
    threads: u32,
    last_full: Option<Instant>,
    children_files: bool,
}

impl ProcessTree {
    /// A tree rooted at `leader` (pid, process group and session of the run), read from `/proc`.
    pub fn new(leader: u32) -> Self {
        Self::with_proc_root(leader, Path::new("/proc"))
    }

    /// Same, reading another procfs mount (tests).
    pub fn with_proc_root(leader: u32, proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            leader,
            members: BTreeSet::from([leader]),
            threads: 0,
            last_full: None,
            children_files: true,
        }
    }

    /// Brings the set up to date at `now` and returns the live members.
    pub fn refresh(&mut self, now: Instant) -> &BTreeSet<u32> {
        let full = self
            .last_full
            .is_none_or(|last| now.duration_since(last) >= FULL_SCAN_EVERY);
        if full {
            self.last_full = Some(now);
        }
        let mut seen = BTreeSet::new();
        let mut threads = 0;
        let mut queue: Vec<u32> = self.members.iter().copied().collect();
        if full {
            queue.extend(self.adopted_orphans());
        }
        while let Some(pid) = queue.pop() {
            if seen.contains(&pid) {
                continue;
            }
            let Some(tids) = self.threads_of(pid) else { continue };
            seen.insert(pid);
            threads += u32::try_from(tids.len()).unwrap_or(u32::MAX);
            if !self.children_files {
                continue;
            }
            let walked: &[u32] = if full { &tids } else { &[pid] };
            for &tid in walked {
                match self.children_of(pid, tid) {
                    Some(children) => queue.extend(children.into_iter().filter(|c| !seen.contains(c))),
                    None if tid == pid => self.children_files = false,
                    None => {}
                }
            }
        }
        if full && !self.children_files {
            let extra = self.session_members();
            for pid in extra {
                if seen.insert(pid) {
                    threads += self
                        .threads_of(pid)
                        .map_or(0, |t| u32::try_from(t.len()).unwrap_or(u32::MAX));
                }
            }
        }
        self.members = seen;
        self.threads = threads;
        &self.members
    }

    /// The members found by the last refresh.
    pub fn members(&self) -> &BTreeSet<u32> {
        &self.members
    }

    /// Threads of the members, counted by the last refresh.
    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// The job's main process, from each live member's `(pid, ppid)`: the leader, or, while a
    /// process only waits for its one child to exit (a shell, a launcher: its main thread sleeps
    /// in `wait4`, as `/proc/<pid>/wchan` tells), that child. `None` when the leader is gone or a
    /// waiting process has several children (which one is the job's cannot be told).
    pub fn main_process(&self, parents: &[(u32, u32)]) -> Option<u32> {
        let mut pid = self.leader;
        if !parents.iter().any(|&(p, _)| p == pid) {
            return None;
        }
        for _ in 0..MAX_WRAPPERS {
            if !self.waits_for_child(pid) {
                return Some(pid);
            }
            let mut children = parents.iter().filter(|&&(_, parent)| parent == pid);
            match (children.next(), children.next()) {
                (Some(&(child, _)), None) => pid = child,
                _ => return None,
            }
        }
        Some(pid)
    }

    /// Whether `pid`'s main thread sleeps waiting for a child to exit (`wait4`, `waitpid`).
    fn waits_for_child(&self, pid: u32) -> bool {
        fs::read_to_string(self.proc_root.join(pid.to_string()).join("wchan"))
            .is_ok_and(|wchan| WAIT_FOR_CHILD.contains(&wchan.trim()))
    }

    fn threads_of(&self, pid: u32) -> Option<Vec<u32>> {
        let entries = fs::read_dir(self.proc_root.join(pid.to_string()).join("task")).ok()?;
        Some(
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
        )
    }

    /// `None` when the file is missing (a kernel without it, or the thread just exited).
    fn children_of(&self, pid: u32, tid: u32) -> Option<Vec<u32>> {
        let path = self
            .proc_root
            .join(pid.to_string())
            .join("task")
            .join(tid.to_string())
            .join("children");
        let text = fs::read_to_string(path).ok()?;
        Some(text.split_ascii_whitespace().filter_map(|p| p.parse().ok()).collect())
    }

    /// Processes whose parent died were handed to looptop (a child subreaper): the ones in this
    /// run's session are still the run's.
    fn adopted_orphans(&self) -> Vec<u32> {
        let me = std::process::id();
        let Some(tids) = self.threads_of(me) else {
            return Vec::new();
        };
        tids.into_iter()
            .filter_map(|tid| self.children_of(me, tid))
            .flatten()
            .filter(|&pid| pid != self.leader && self.session_of(pid) == Some(self.leader))
            .collect()
    }

    /// Every process in the run's session: the fallback when `children` files are missing.
    fn session_members(&self) -> Vec<u32> {
        let Ok(entries) = fs::read_dir(&self.proc_root) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| self.session_of(pid) == Some(self.leader))
            .collect()
    }

    fn session_of(&self, pid: u32) -> Option<u32> {
        let stat = fs::read_to_string(self.proc_root.join(pid.to_string()).join("stat")).ok()?;
        session_from_stat(&stat)
    }
}

/// The session id (field 6) of a `/proc/<pid>/stat` line; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn session_from_stat(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state, ppid, pgrp, session.
    rest.split_ascii_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn the_session_is_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (python (worker) 3) S 4000 4100 4200 34816 4100 4194560 0";
        assert_eq!(session_from_stat(stat), Some(4200));
        assert_eq!(session_from_stat("garbage"), None);
    }

    #[test]
    fn descendants_are_found_and_dead_ones_dropped() {
        // sh -> (sleep, sh -> sleep): grandchildren included.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sh -c 'sleep 30 & wait' & wait"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let mut tree = ProcessTree::new(pid);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut now = Instant::now();
        while tree.refresh(now).len() < 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            now += FULL_SCAN_EVERY;
        }
        assert_eq!(tree.members().len(), 4, "{:?}", tree.members());
        assert!(tree.threads() >= 4);
        child.kill().expect("kill");
        child.wait().expect("wait");
        let members = tree.refresh(now + FULL_SCAN_EVERY).clone();
        assert!(!members.contains(&pid), "the dead leader is dropped: {members:?}");
        // The orphaned sleeps were reparented (to init or a subreaper) but stay in the set:
        // they are still the run's processes.
        assert_eq!(members.len(), 3, "{members:?}");
        for orphan in members {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(orphan).unwrap_or(0)),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    #[test]
    fn the_main_process_is_the_one_a_shell_waits_for() {
        // sh waits for its one child (sh -c with two commands does not exec the last).
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30; true"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let mut tree = ProcessTree::new(pid);
        let parents = |tree: &mut ProcessTree| -> Vec<(u32, u32)> {
            let members = tree.refresh(Instant::now() + FULL_SCAN_EVERY * 2).clone();
            members
                .iter()
                .filter_map(|&p| {
                    let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                    let ppid = stat[stat.rfind(')')? + 1..]
                        .split_ascii_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()?;
                    Some((p, ppid))
                })
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = None;
        while Instant::now() < deadline {
            let family = parents(&mut tree);
            found = tree.main_process(&family).filter(|&m| m != pid);
            if found.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let sleeper = found.expect("the shell's child is the main process");
        let name = fs::read_to_string(format!("/proc/{sleeper}/comm")).unwrap_or_default();
        assert_eq!(name.trim(), "sleep");
        // A process that is not waiting for a child is its own main process.
        let mut alone = ProcessTree::new(sleeper);
        let family = parents(&mut alone);
        assert_eq!(alone.main_process(&family), Some(sleeper));
        child.kill().expect("kill");
        child.wait().expect("wait");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(sleeper).unwrap_or(0)),
            nix::sys::signal::Signal::SIGKILL,
        );
        assert_eq!(tree.main_process(&[]), None, "a gone leader has no main process");
    }

    #[test]
    fn a_leader_that_does_not_exist_gives_an_empty_tree() {
        let mut tree = ProcessTree::new(u32::MAX - 1);
        assert!(tree.refresh(Instant::now()).is_empty());
        assert_eq!(tree.threads(), 0);
    }
}
