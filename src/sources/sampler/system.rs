//! Host readings through `sysinfo`: CPU (all cores and each), memory, swap and load. The
//! runs' processes are read straight from procfs instead (`counters`): one sysinfo process
//! refresh costs more than the whole tree's files, and its disk counters are kept per pid across
//! every caller, which is how a rate came to be computed over the wrong interval.

use sysinfo::{MemoryRefreshKind, System};

use crate::sample::HostSample;

/// The sysinfo handle.
pub struct SystemProbe {
    system: System,
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
        })
    }

    /// Reads the host.
    pub fn refresh(&mut self) {
        self.system.refresh_cpu_usage();
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
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
}
