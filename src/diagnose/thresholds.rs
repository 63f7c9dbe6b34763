//! Every number the diagnosis decides by, named after what it means. README's "How looptop
//! decides" section states the same rules in words; change both together.

/// Fewer samples than this (one second at the default interval) are too few to judge.
pub const MIN_SAMPLES: usize = 4;

/// A GPU busy at least this share of the time the run holds it is the bottleneck: GPU-bound.
/// (NVML's utilization is a duty cycle: high is necessary, not sufficient, for real use.)
pub const GPU_BOUND_BUSY_PCT: f64 = 80.0;

/// Below this device utilization a GPU the run holds counts as starved in that sample.
pub const STALL_UTIL_PCT: u32 = 10;

/// A stall is an episode of starved samples lasting at least this long.
pub const STALL_MIN_MS: f64 = 1000.0;

/// In one sample, this share of the driver's finer utilization samples (`nvmlDeviceGetSamples`,
/// since the last sample) under `STALL_UTIL_PCT` makes the GPU starved even when NVML's coarser
/// reading is higher: gaps shorter than one tick.
pub const FINE_IDLE_SAMPLES_PCT: f64 = 50.0;

/// Other processes at this SM share of a GPU the run holds (NVML's per-process samples) make it
/// shared: the run is judged by its own SM share there, and hint `shared-gpu` says so.
pub const SHARED_GPU_OTHERS_PCT: f64 = 10.0;

/// `idle-gpus`: a held GPU at this mean utilization or more is busy...
pub const IDLE_GPUS_BUSY_PCT: f64 = 50.0;
/// ... and one starved this share of the samples in which the run held it, or more, is idle.
pub const IDLE_GPUS_IDLE_PCT: f64 = 75.0;

/// `small-kernels`: a GPU-bound run's GPU whose SMs were active (GPM) less than this share of
/// the time is busy in name only (DCGM's guidance: under 0.5 is likely ineffective use).
pub const SMALL_KERNELS_SM_ACTIVE_PCT: f64 = 50.0;
/// Without GPM: power under this share of the enforced limit while "busy" says the same.
pub const SMALL_KERNELS_POWER_PCT: f64 = 30.0;

/// A run at least this long that never touched a present GPU "did not use the GPU".
pub const GPU_UNUSED_MIN_MS: f64 = 3000.0;

/// A process at this share of one core or more is pinned: it cannot go faster.
pub const PINNED_CORE_PCT: f32 = 90.0;

/// A tree using this share of all cores or more is limited by the CPU as a whole.
pub const ALL_CORES_SHARE: f32 = 0.9;

/// Without a GPU, a tree above this share of one core (mean) is CPU-bound.
pub const CPU_BOUND_PCT: f64 = 70.0;

/// Without a GPU, threads that spent this much of the run runnable but waiting for a CPU (in %
/// of one thread, from the kernel's run-queue delay) were held back by other work: contended.
pub const CONTENDED_RUN_QUEUE_PCT: f64 = 25.0;

/// ... and only when other work held the CPUs: the host's CPU use beyond the job's own, in % of
/// all cores, at least this much (a job whose threads outnumber the cores queues behind itself).
pub const CONTENDED_OTHER_WORK_PCT: f64 = 25.0;

/// A contended run names this looptop's other jobs that ran in at least this share of its samples.
pub const ALONGSIDE_SHARE: f64 = 0.25;

/// Reading from disk at this rate or more, with the CPU below `CPU_BOUND_PCT`, is I/O-bound.
pub const IO_BOUND_READ_BYTES_PER_S: f64 = 20e6;

/// The GPU memory the run used, under this share of the GPU's, leaves room for larger batches.
pub const GPU_MEMORY_ROOM_PCT: f64 = 50.0;

/// When the first GPU use comes after this share of the run, start-up dominates the loop.
pub const STARTUP_SHARE: f64 = 0.5;

/// "One core does everything": the machine has at least this many cores...
pub const MANY_CORES: u32 = 4;
/// ... and the tree never used more than this share of one core beyond its busiest process.
pub const SINGLE_CORE_SLACK_PCT: f32 = 20.0;

/// Regressions: a run is compared with at most this many recent passing runs of the same command...
pub const BASELINE_RUNS: usize = 10;
/// ... and only when there are at least this many.
pub const MIN_BASELINE_RUNS: usize = 5;
/// A change must exceed this many (scaled) median absolute deviations of the baseline...
pub const NOISE_MADS: f64 = 3.0;
/// ... and this share of the baseline's median, to be flagged.
pub const MIN_CHANGE_SHARE: f64 = 0.10;

/// Per-test regressions use the same rule as runs, and a test is named slower only when it also
/// takes at least this much longer than its baseline's median (a 10 ms test that takes 40 ms on
/// a busy machine is noise, not news).
pub const TEST_MIN_SLOWER_MS: f64 = 50.0;
/// `run_finished.tests.slowest` names this many tests.
pub const SLOWEST_TESTS: usize = 5;
