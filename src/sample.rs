//! `Sample`: one reading of the machine and of a run's process tree, taken by the sampler
//! (`sources::sampler`) while the run goes on. Plain data: the state folds samples into a run's
//! usage summary, the history stores them, the TUI draws them.
//!
//! A reading looptop could not take is `None`, never 0: "unavailable" and "idle" are different
//! answers. The GPUs looptop found (or why it found none) are described here too, beside the
//! readings of them.

use serde::{Deserialize, Serialize};

/// Identifies one run within this looptop process (the durable id is `RunSpawned::run_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunKey(pub u64);

/// One reading for one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Which run.
    pub key: RunKey,
    /// Milliseconds since the run was spawned.
    pub t_ms: f64,
    /// The whole machine.
    pub host: HostSample,
    /// The run's process tree.
    pub tree: TreeSample,
    /// Every GPU looptop watches, with the run's share of each.
    pub gpus: Vec<GpuSample>,
}

/// The machine as a whole.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HostSample {
    /// Busy share of all cores together, 0-100.
    pub cpu_pct: f32,
    /// Busy share of each core, 0-100.
    pub core_pct: Vec<f32>,
    /// Memory in use.
    pub mem_used_bytes: u64,
    /// Physical memory.
    pub mem_total_bytes: u64,
    /// Swap in use.
    pub swap_used_bytes: u64,
    /// One-minute load average.
    pub load_1m: f64,
}

/// A run's process tree: its process group and every descendant, loader workers included.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TreeSample {
    /// Processes in the tree.
    pub processes: u32,
    /// Threads of those processes.
    pub threads: u32,
    /// CPU of the whole tree in % of one core (400 = four cores busy).
    pub cpu_pct: f32,
    /// Resident memory of the whole tree.
    pub rss_bytes: u64,
    /// Bytes read from disk per second, over the last interval (what was fetched from storage:
    /// reads served by the page cache do not count).
    pub read_bytes_per_s: f64,
    /// Bytes written to disk per second, over the last interval.
    pub write_bytes_per_s: f64,
    /// Time the tree's threads spent runnable but waiting for a CPU, in % of the interval for
    /// one thread (100 = one thread waited the whole time); `None` without schedstats or on a
    /// first reading.
    pub run_queue_delay_pct: Option<f32>,
    /// The busiest processes first (at most `TOP_PROCESSES`), then the job's main process if it
    /// is not among them.
    pub top: Vec<ProcessSample>,
    /// The job's main process (whose main thread consumes what loader threads and worker
    /// processes produce): the leader, or the one child a leader that only waits for it (a shell,
    /// a launcher) runs; `None` when it cannot be told.
    pub main_pid: Option<u32>,
}

/// How many processes of a tree each sample keeps by name.
pub const TOP_PROCESSES: usize = 8;

impl TreeSample {
    /// The busiest process: a loader pinned at 100 % of one core shows here, not averaged away.
    pub fn busiest(&self) -> Option<&ProcessSample> {
        self.top.first()
    }

    /// The job's main process, when it was read.
    pub fn main_process(&self) -> Option<&ProcessSample> {
        self.top.iter().find(|p| Some(p.pid) == self.main_pid)
    }
}

/// One process of a run's tree.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Its pid.
    pub pid: u32,
    /// Its command name.
    pub name: String,
    /// CPU in % of one core.
    pub cpu_pct: f32,
    /// Resident memory.
    pub rss_bytes: u64,
    /// Its busiest threads first (at most `TOP_THREADS`, its main thread always among them), for
    /// the busiest processes and the main process only; empty when not read.
    pub threads: Vec<ThreadSample>,
}

/// How many threads of a process each sample keeps (its main thread besides, when it is idle).
pub const TOP_THREADS: usize = 4;

/// One thread of a process.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ThreadSample {
    /// Its thread id (the process's pid for its main thread).
    pub tid: u32,
    /// Its name as the kernel has it (`comm`: `loader`, `pt_main_thread`, at most 15 bytes).
    pub name: String,
    /// CPU in % of one core.
    pub cpu_pct: f32,
    /// Time it spent runnable but waiting for a CPU, in % of the interval; `None` without
    /// schedstats or on a first reading.
    pub run_queue_pct: Option<f32>,
}

impl ThreadSample {
    /// The share of the interval it neither ran nor waited for a CPU (sleeping, blocked on a
    /// lock, a queue or I/O), 0-100.
    pub fn idle_pct(&self) -> f32 {
        (100.0 - self.cpu_pct - self.run_queue_pct.unwrap_or(0.0)).clamp(0.0, 100.0)
    }

    /// How much of a core it wanted: ran plus waited for a CPU, in % of one core.
    pub fn demand_pct(&self) -> f32 {
        self.cpu_pct + self.run_queue_pct.unwrap_or(0.0)
    }
}

/// One GPU, and the run's share of it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML's index of the device.
    pub index: u32,
    /// Share of the last period in which a kernel ran, 0-100.
    pub util_pct: Option<u32>,
    /// Share of the last period in which memory was read or written, 0-100.
    pub mem_util_pct: Option<u32>,
    /// Device memory in use, by anyone.
    pub mem_used_bytes: Option<u64>,
    /// Device memory.
    pub mem_total_bytes: Option<u64>,
    /// Power draw in milliwatts.
    pub power_mw: Option<u32>,
    /// Core temperature.
    pub temp_c: Option<u32>,
    /// SM clock.
    pub sm_clock_mhz: Option<u32>,
    /// Whether a process of the run holds a context on this GPU; `None` when NVML cannot list
    /// the device's processes.
    pub job_present: Option<bool>,
    /// Device memory used by the run's processes; `None` when unknown.
    pub job_mem_bytes: Option<u64>,
    /// SM utilization of the run's processes (NVML's per-process samples); `None` when unknown.
    pub job_sm_pct: Option<u32>,
    /// SM utilization of every other process on this GPU (NVML's per-process samples); `None`
    /// when unknown.
    pub others_sm_pct: Option<u32>,
    /// Enforced power limit in milliwatts.
    pub power_limit_mw: Option<u32>,
    /// Share of the SMs' time they were busy, 0-100, over the last interval (GPM, Hopper and
    /// newer); `None` where the GPU has no GPM.
    pub sm_active_pct: Option<f32>,
    /// SM occupancy, 0-100 (GPM).
    pub sm_occupancy_pct: Option<f32>,
    /// Share of the time any tensor core was busy, 0-100 (GPM).
    pub tensor_active_pct: Option<f32>,
    /// Share of the driver's finer utilization samples since the last reading that were under
    /// the stall threshold, 0-100; `None` without such samples.
    pub idle_sample_pct: Option<f32>,
    /// The GPU runs in MIG mode: device and process utilization are not available there.
    pub mig: bool,
}

/// Why looptop has no GPU readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuUnavailable {
    /// What is missing and what to do, for the user.
    pub reason: String,
    /// Nothing suggests this machine should have a GPU (no library found where none was
    /// asked for): worth a line in `looptop doctor`, not a warning on every start.
    pub expected: bool,
}

/// What looptop knows of one GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// NVML's index.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// Device memory, if NVML tells.
    pub mem_total_bytes: Option<u64>,
    /// The readings this GPU does not give, with why.
    pub missing: Vec<String>,
}
