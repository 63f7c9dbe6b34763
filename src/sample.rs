//! `Sample`: one reading of the machine and of a run's process tree, taken by the sampler
//! (`sources::sampler`) while the run goes on. Plain data: the state folds samples into a run's
//! usage summary, the history stores them, the TUI draws them.
//!
//! A reading looptop could not take is `None`, never 0: "unavailable" and "idle" are different
//! answers. The GPUs looptop found (or why it found none) are described here too, beside the
//! readings of them.

use std::path::{Path, PathBuf};

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
    /// Bytes the tree's processes read per second through read calls (`rchar`: from the page
    /// cache too, pipes and sockets included), over the last interval.
    pub read_chars_per_s: f64,
    /// The data files the tree's processes had open for reading (at most `MAX_OPEN_FILES`).
    pub open_files: Vec<OpenFile>,
    /// The processes of a local Spark, Dask or Ray cluster in the tree; `None` when there are none.
    pub cluster: Option<ClusterSample>,
}

/// How many open data files each sample keeps.
pub const MAX_OPEN_FILES: usize = 64;

/// A data file one process of the tree had open for reading.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OpenFile {
    /// The process.
    pub pid: u32,
    /// Its descriptor.
    pub fd: u32,
    /// The file, as the kernel names it (absolute).
    pub path: PathBuf,
    /// Its format, from its name.
    pub format: DataFormat,
    /// The descriptor's read position (`/proc/<pid>/fdinfo/<fd>`): bytes read through it so far
    /// for a file read from start to end.
    pub pos_bytes: u64,
    /// The file's size.
    pub size_bytes: u64,
}

/// The format of a data file, from its extension (a compression suffix such as `.gz` looked
/// through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Comma- or tab-separated text.
    #[default]
    Csv,
    /// JSON, JSON lines.
    Json,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC / Feather.
    Arrow,
    /// NumPy's `.npy` and `.npz`.
    Npy,
    /// Python pickles.
    Pickle,
    /// HDF5.
    Hdf5,
    /// Apache Avro.
    Avro,
    /// Apache ORC.
    Orc,
}

impl DataFormat {
    /// The format of the file at `path`; `None` when its name is not a data file's.
    pub fn of_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let mut parts = name.rsplit('.');
        let mut extension = parts.next()?;
        if matches!(extension, "gz" | "zst" | "bz2" | "xz" | "lz4" | "zip") {
            extension = parts.next()?;
        }
        // A name without a dot has no extension.
        if extension == name {
            return None;
        }
        Some(match extension {
            "csv" | "tsv" => Self::Csv,
            "json" | "jsonl" | "ndjson" => Self::Json,
            "parquet" | "pq" => Self::Parquet,
            "feather" | "arrow" | "ipc" => Self::Arrow,
            "npy" | "npz" => Self::Npy,
            "pkl" | "pickle" => Self::Pickle,
            "h5" | "hdf5" => Self::Hdf5,
            "avro" => Self::Avro,
            "orc" => Self::Orc,
            _ => return None,
        })
    }

    /// `csv`, `json`, `parquet`...: the word JSON and the history use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Parquet => "parquet",
            Self::Arrow => "arrow",
            Self::Npy => "npy",
            Self::Pickle => "pickle",
            Self::Hdf5 => "hdf5",
            Self::Avro => "avro",
            Self::Orc => "orc",
        }
    }

    /// The format read back from `as_str`.
    pub fn parse(word: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(word.to_string())).ok()
    }

    /// Row-oriented text, parsed whole (every column of every row) whatever the job needs.
    pub fn is_text(self) -> bool {
        matches!(self, Self::Csv | Self::Json)
    }
}

/// A local cluster engine looptop recognises in a run's process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ClusterEngine {
    /// Dask's `distributed` (a `LocalCluster`, `dask scheduler`/`dask worker`).
    Dask,
    /// Apache Spark (a JVM running `org.apache.spark`).
    Spark,
    /// Ray (`raylet`, `gcs_server`, `ray::` workers).
    Ray,
}

impl ClusterEngine {
    /// `dask`, `spark` or `ray`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dask => "dask",
            Self::Spark => "spark",
            Self::Ray => "ray",
        }
    }

    /// The engine read back from `as_str`.
    pub fn parse(word: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(word.to_string())).ok()
    }

    /// Its name in a sentence.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dask => "Dask",
            Self::Spark => "Spark",
            Self::Ray => "Ray",
        }
    }
}

/// The local cluster in a run's tree, in one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSample {
    /// Which engine.
    pub engine: ClusterEngine,
    /// Its processes looptop recognised (schedulers, services and workers).
    pub processes: u32,
    /// Its worker processes.
    pub workers: u32,
    /// CPU of the workers already seen in the previous sample, in % of one core (a worker's
    /// first reading is its own start-up).
    pub worker_cpu_pct: f32,
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
