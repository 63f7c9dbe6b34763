//! Host and process readings through `sysinfo`. Only the processes of the runs' trees are
//! refreshed each tick (a full process refresh costs ~200 ms on a busy machine).
//!
//! A process's CPU share is computed here from its accumulated CPU time, not taken from
//! sysinfo's `cpu_usage`, which stays 0 until a process has been read twice with non-zero CPU
//! times: a job's freshly started processes would read as idle for their first half second. A
//! process seen for the first time gets its average since it started.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::sample::{HostSample, ProcessSample, TreeSample, TOP_PROCESSES};

/// The kernel's unit for process times in /proc (USER_HZ), fixed at 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// The sysinfo handle, and each process's CPU time when it was last read.
pub struct SystemProbe {
    system: System,
    last_refresh: Option<Instant>,
    /// Per pid: accumulated CPU milliseconds and when they were read.
    cpu_seen: HashMap<u32, (u64, Instant)>,
}

impl std::fmt::Debug for SystemProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemProbe").finish_non_exhaustive()
    }
}

impl SystemProbe {
    /// A probe with nothing read yet; `None` if sysinfo cannot read this system.
    pub fn new() -> Option<Self> {
        Some(Self {
            system: System::new().ok()?,
            last_refresh: None,
            cpu_seen: HashMap::new(),
        })
    }

    /// Reads the host and the given processes at `now`.
    pub fn refresh(&mut self, pids: &BTreeSet<u32>, now: Instant) {
        self.system.refresh_cpu_usage();
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let pids: Vec<Pid> = pids.iter().map(|&p| Pid::from_u32(p)).collect();
        let kind = ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_disk_usage()
            .without_tasks();
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, kind);
        self.cpu_seen
            .retain(|pid, _| self.system.process(Pid::from_u32(*pid)).is_some());
        self.last_refresh = Some(now);
    }

    /// CPU of `pid` in % of one core since it was last read at `now`, or over its life if it is new.
    fn cpu_pct(&mut self, pid: u32, accumulated_ms: u64, now: Instant) -> f32 {
        let previous = self.cpu_seen.insert(pid, (accumulated_ms, now));
        let (busy_ms, wall_s) = match previous {
            Some((before, at)) => (
                accumulated_ms.saturating_sub(before),
                now.saturating_duration_since(at).as_secs_f64(),
            ),
            None => match age_s(pid) {
                Some(age) => (accumulated_ms, age),
                None => return 0.0,
            },
        };
        if wall_s <= 0.0 {
            return 0.0;
        }
        (busy_ms as f64 / 10.0 / wall_s) as f32
    }

    /// The host as of the last refresh.
    pub fn host(&self) -> HostSample {
        HostSample {
            cpu_pct: self.system.global_cpu_usage(),
            core_pct: self.system.cpus().iter().map(sysinfo::Cpu::usage).collect(),
            mem_used_bytes: self.system.used_memory(),
            mem_total_bytes: self.system.total_memory(),
            swap_used_bytes: self.system.used_swap(),
            load_1m: System::load_average().map_or(0.0, |l| l.one),
        }
    }

    /// A tree's readings as of the refresh at `now`; `interval_s` is the time since the refresh
    /// before it (for disk rates) and `threads` comes from the tree walk.
    pub fn tree(&mut self, members: &BTreeSet<u32>, threads: u32, interval_s: f64, now: Instant) -> TreeSample {
        let mut sample = TreeSample {
            threads,
            ..TreeSample::default()
        };
        let mut read = 0u64;
        let mut written = 0u64;
        let mut all = Vec::with_capacity(members.len());
        for &pid in members {
            let Some(process) = self.system.process(Pid::from_u32(pid)) else {
                continue;
            };
            let accumulated_ms = process.accumulated_cpu_time();
            let rss_bytes = process.memory();
            let disk = process.disk_usage();
            let name = process.name().to_string_lossy().into_owned();
            let cpu_pct = self.cpu_pct(pid, accumulated_ms, now);
            read += disk.read_bytes;
            written += disk.written_bytes;
            sample.processes += 1;
            sample.cpu_pct += cpu_pct;
            sample.rss_bytes += rss_bytes;
            all.push(ProcessSample {
                pid,
                name,
                cpu_pct,
                rss_bytes,
            });
        }
        all.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(b.rss_bytes.cmp(&a.rss_bytes)));
        all.truncate(TOP_PROCESSES);
        // sysinfo keeps the name a process had when first seen; a shim that exec'd the real
        // program (pyenv, conda run) would be named after the shim forever.
        for process in &mut all {
            if let Ok(comm) = std::fs::read_to_string(format!("/proc/{}/comm", process.pid)) {
                process.name = comm.trim_end().to_string();
            }
        }
        sample.top = all;
        if interval_s > 0.0 {
            sample.read_bytes_per_s = read as f64 / interval_s;
            sample.write_bytes_per_s = written as f64 / interval_s;
        }
        sample
    }

    /// Number of logical cores.
    pub fn cores(&self) -> usize {
        self.system.cpus().len()
    }
}

/// Seconds since `pid` started, from its start time in /proc (ticks since boot) and the
/// system's uptime.
fn age_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime), counted after the command name's closing parenthesis (field 2).
    let start_ticks: f64 = stat[stat.rfind(')')? + 1..]
        .split_ascii_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((uptime - start_ticks / TICKS_PER_SECOND).max(0.01))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_busy_process_reads_busy_from_its_first_sample_on() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let mut probe = SystemProbe::new().expect("sysinfo");
        std::thread::sleep(Duration::from_millis(300));
        let members = BTreeSet::from([pid]);
        let now = Instant::now();
        probe.refresh(&members, now);
        let first = probe.tree(&members, 1, 0.0, now);
        std::thread::sleep(Duration::from_millis(300));
        let now = Instant::now();
        probe.refresh(&members, now);
        let second = probe.tree(&members, 1, 0.3, now);
        let _ = child.kill();
        let _ = child.wait();
        // A busy loop on a possibly shared 2-core machine: well above idle, at most one core.
        for sample in [&first, &second] {
            assert!(sample.cpu_pct > 25.0 && sample.cpu_pct < 105.0, "{sample:?}");
            assert_eq!(sample.processes, 1);
            assert_eq!(sample.busiest().map(|p| p.pid), Some(pid));
        }
    }
}
