//! Host and process readings through `sysinfo`. Only the processes of the runs' trees are
//! refreshed each tick (a full process refresh costs ~200 ms on a busy machine); host CPU is
//! refreshed first, because sysinfo computes a process's CPU share from the host's.

use std::collections::BTreeSet;
use std::time::Instant;

use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::sample::{HostSample, ProcessSample, TreeSample, TOP_PROCESSES};

/// The sysinfo handle, and when each process set was last read.
pub struct SystemProbe {
    system: System,
    last_refresh: Option<Instant>,
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
        self.last_refresh = Some(now);
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

    /// A tree's readings as of the last refresh; `interval_s` is the time since the refresh
    /// before it (for disk rates) and `threads` comes from the tree walk.
    pub fn tree(&self, members: &BTreeSet<u32>, threads: u32, interval_s: f64) -> TreeSample {
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
            let cpu_pct = process.cpu_usage();
            let rss_bytes = process.memory();
            let disk = process.disk_usage();
            read += disk.read_bytes;
            written += disk.written_bytes;
            sample.processes += 1;
            sample.cpu_pct += cpu_pct;
            sample.rss_bytes += rss_bytes;
            all.push(ProcessSample {
                pid,
                name: process.name().to_string_lossy().into_owned(),
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
