//! Which pids NVML knows the run's processes by. The driver reports pids of the host's pid
//! namespace; looptop finds the run's processes in its `/proc`, which shows the pids of the
//! namespace that mounted it. On the host they are the same. Where `/proc` belongs to an outer
//! namespace than looptop's own, the first entry of each process's `NSpid` line (in
//! `/proc/<pid>/status`) is the outer pid. Inside a container with its own `/proc`, no file names
//! the host pid: the run's share of a GPU is unknown until NVML lists one of a run's pids anyway
//! (a driver or stand-in that reports this namespace's pids; the sampler keeps that lesson).

use std::collections::BTreeSet;
use std::path::Path;

/// The inode of the host's (initial) pid namespace, a constant of the kernel (`PROC_PID_INIT_INO`).
const HOST_PID_NAMESPACE: &str = "pid:[4026531836]";

/// How looptop's `/proc` relates to the pids NVML reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidView {
    /// looptop runs in the host's pid namespace: its pids are NVML's.
    Host,
    /// `/proc` is an outer namespace's: each process's `NSpid` line starts with that pid.
    Outer,
    /// A namespace of its own (a container): the host pids cannot be found.
    Isolated,
}

impl PidView {
    /// Finds out from `proc_root` (normally `/proc`) and its `self` entry.
    pub fn detect(proc_root: &Path) -> Self {
        let own = std::fs::read_link(proc_root.join("self/ns/pid")).ok();
        if own.as_deref().is_some_and(|ns| ns.as_os_str() == HOST_PID_NAMESPACE) {
            return PidView::Host;
        }
        match ns_pids(proc_root, "self") {
            Some(ids) if ids.len() > 1 => PidView::Outer,
            // No namespace link and no NSpid line: an old kernel, where containers are rare;
            // take the pids as they are.
            None if own.is_none() => PidView::Host,
            _ => PidView::Isolated,
        }
    }

    /// The ids NVML would give `members`; `None` when they cannot be known (an isolated
    /// namespace), in which case the caller checks NVML's pids against `members` directly.
    pub fn host_ids(self, proc_root: &Path, members: &BTreeSet<u32>) -> Option<BTreeSet<u32>> {
        match self {
            PidView::Host => Some(members.clone()),
            PidView::Outer => Some(
                members
                    .iter()
                    .map(|&pid| {
                        ns_pids(proc_root, &pid.to_string())
                            .and_then(|ids| ids.first().copied())
                            .unwrap_or(pid)
                    })
                    .collect(),
            ),
            PidView::Isolated => None,
        }
    }
}

/// The `NSpid` line of `/proc/<entry>/status`: the pid in each namespace, outermost visible first.
fn ns_pids(proc_root: &Path, entry: &str) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(proc_root.join(entry).join("status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let ids: Vec<u32> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    (!ids.is_empty()).then_some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_with(entries: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (entry, nspid) in entries {
            let path = dir.path().join(entry);
            std::fs::create_dir_all(&path).expect("mkdir");
            std::fs::write(
                path.join("status"),
                format!("Name:\tpython\nNSpid:\t{nspid}\nThreads:\t1\n"),
            )
            .expect("status");
        }
        dir
    }

    #[test]
    fn an_outer_proc_gives_the_first_nspid_entry() {
        let proc_root = proc_with(&[("self", "4242 7"), ("4300", "4300 1"), ("4301", "4301 2")]);
        assert_eq!(PidView::detect(proc_root.path()), PidView::Outer);
        let ids = PidView::Outer.host_ids(proc_root.path(), &BTreeSet::from([4300, 4301, 4399]));
        assert_eq!(
            ids,
            Some(BTreeSet::from([4300, 4301, 4399])),
            "a vanished pid stays itself"
        );
    }

    #[test]
    fn a_container_with_its_own_proc_cannot_name_host_pids() {
        let proc_root = proc_with(&[("self", "7"), ("1", "1")]);
        std::fs::create_dir_all(proc_root.path().join("self/ns")).expect("mkdir");
        std::os::unix::fs::symlink("pid:[4026532179]", proc_root.path().join("self/ns/pid")).expect("link");
        assert_eq!(PidView::detect(proc_root.path()), PidView::Isolated);
        assert_eq!(PidView::Isolated.host_ids(proc_root.path(), &BTreeSet::from([1])), None);
    }

    #[test]
    fn the_host_namespace_is_recognised_by_its_inode() {
        let proc_root = proc_with(&[("self", "4242")]);
        std::fs::create_dir_all(proc_root.path().join("self/ns")).expect("mkdir");
        std::os::unix::fs::symlink(HOST_PID_NAMESPACE, proc_root.path().join("self/ns/pid")).expect("link");
        assert_eq!(PidView::detect(proc_root.path()), PidView::Host);
        let members = BTreeSet::from([10, 11]);
        assert_eq!(PidView::Host.host_ids(proc_root.path(), &members), Some(members));
    }
}
