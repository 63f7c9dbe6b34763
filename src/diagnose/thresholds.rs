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

/// Without a GPU, a job whose consuming thread (the main thread of its main process) waited
/// this share of the run or more while a loader thread or worker process was busy is
/// input-bound (TensorBoard's 20 %, as for a waiting GPU)...
pub const CONSUMER_WAIT_PCT: f64 = 20.0;
/// ... where a thread wanting this share of one core or more (running or ready to run) in a
/// sample was busy in it...
pub const PRODUCER_BUSY_PCT: f32 = 50.0;
/// ... and only a consumer that used this share of one core or more meanwhile (it took what
/// arrived: a launcher, a shell or a test harness that only waits for its threads is none).
pub const CONSUMER_ACTIVE_PCT: f64 = 1.0;
/// ... with cause `cpu` when the producer wanted this share of one core or more while the
/// consumer waited. Lower than `PINNED_CORE_PCT`: a Python loader thread hands the GIL to the
/// consumer now and then and waits for it back, idle, the longer the busier the machine.
pub const PRODUCER_PINNED_PCT: f64 = 75.0;

/// "One core does everything": the machine has at least this many cores...
pub const PARALLEL_CORES: u32 = 2;
/// ... the job kept one core busy (`PINNED_CORE_PCT`, counting its time waiting for a CPU) and
/// used no more than this share of one core beyond it...
pub const SINGLE_CORE_SLACK_PCT: f32 = 20.0;
/// ... in at least this share of the run's samples.
pub const SINGLE_CORE_RUN_SHARE: f64 = 0.6;

/// Regressions: a run is compared with at most this many recent passing runs of the same command...
pub const BASELINE_RUNS: usize = 10;
/// ... and only when there are at least this many.
pub const MIN_BASELINE_RUNS: usize = 5;
/// A change must exceed this many (scaled) median absolute deviations of the baseline...
pub const NOISE_MADS: f64 = 3.0;
/// ... and this share of the baseline's median, to be flagged.
pub const MIN_CHANGE_SHARE: f64 = 0.10;

/// Query jobs: a join whose output has at least this many times the rows of its larger input
/// fans out on duplicate keys (`join-fan-out`) ...
pub const JOIN_FAN_OUT_FACTOR: f64 = 1.5;
/// ... when it emits at least this many rows.
pub const JOIN_FAN_OUT_MIN_ROWS: u64 = 1000;

/// A CSV or JSON scan taking at least this share of the query's operator time (`columnar`) ...
pub const COLUMNAR_MIN_SHARE: f64 = 0.2;
/// ... over files of at least this many bytes.
pub const COLUMNAR_MIN_BYTES: u64 = 1_000_000;

/// A filtered scan that read every one of at least this many files (`no-pruning`) ...
pub const NO_PRUNING_MIN_FILES: u64 = 4;
/// ... or every one of at least this many Parquet row groups ...
pub const NO_PRUNING_MIN_ROW_GROUPS: u64 = 4;
/// ... while its filter kept at most this share of the rows, could have skipped most of them.
pub const NO_PRUNING_KEPT_SHARE: f64 = 0.25;

/// Columns whose narrower type would save at least this many bytes (in memory, uncompressed,
/// over all the rows read) get `narrow-types`.
pub const NARROW_TYPES_MIN_BYTES: u64 = 1_000_000;
/// A VARCHAR with at most this many distinct values is a category (an ENUM of one byte).
pub const NARROW_CATEGORIES_MAX: u64 = 256;
/// `exec-query` samples this many of a file's first rows to learn its columns' values.
pub const COLUMN_SAMPLE_ROWS: u64 = 20_000;

/// A column read whose sampled values are at least this share NULL or zero is `sparse` ...
pub const SPARSE_SHARE: f64 = 0.9;
/// ... when at least this many rows were sampled.
pub const SPARSE_MIN_ROWS: u64 = 1000;

/// A query that scans at least this many rows each run (`sample`) ...
pub const SAMPLE_MIN_ROWS: u64 = 1_000_000;
/// ... to return at most this many.
pub const SAMPLE_SMALL_RESULT: u64 = 1000;

/// Per-test regressions use the same rule as runs, and a test is named slower only when it also
/// takes at least this much longer than its baseline's median (a 10 ms test that takes 40 ms on
/// a busy machine is noise, not news).
pub const TEST_MIN_SLOWER_MS: f64 = 50.0;
/// `run_finished.tests.slowest` names this many tests.
pub const SLOWEST_TESTS: usize = 5;
/// Python profiles: fewer running stacks than this are too few to name a hot spot (a fifth of a
/// second at the default rate).
pub const PROFILE_MIN_ACTIVE_STACKS: u32 = 10;
/// `python-loop`: at least this share of the running stacks sat in the project's own
/// pure-Python code (not in a library's native code), in %.
pub const PYTHON_LOOP_SHARE_PCT: f64 = 50.0;
/// `hot-function`: one function ran in at least this share of the samples, in %.
pub const HOT_FUNCTION_SHARE_PCT: f64 = 30.0;

/// Any job: a CSV or JSON file its processes had open for reading in at least this share of the
/// run's samples (`columnar`, from `/proc/<pid>/fd`), of at least `COLUMNAR_MIN_BYTES` (its
/// size, or the bytes read when more), is parsed as text where a columnar copy would serve.
pub const COLUMNAR_FILE_OPEN_SHARE: f64 = 0.2;
/// A file read at least this many times its size (its read position went through it again)
/// is read again and again: said in the hint.
pub const REREAD_FACTOR: f64 = 2.0;

/// `local-cluster`: a local Spark, Dask or Ray cluster whose start-up (from the run's start to
/// its workers' first real work) took at least this share of the run ...
pub const LOCAL_CLUSTER_STARTUP_SHARE: f64 = 0.5;
/// ... or at least this share, when the run's input (the data files its processes read) was
/// under `LOCAL_CLUSTER_SMALL_INPUT_BYTES`: a size an in-process engine handles.
pub const LOCAL_CLUSTER_MIN_STARTUP_SHARE: f64 = 0.2;
/// See `LOCAL_CLUSTER_MIN_STARTUP_SHARE`.
pub const LOCAL_CLUSTER_SMALL_INPUT_BYTES: u64 = 1_000_000_000;
/// The workers' CPU (together, in % of one core) from which a sample counts as real work.
pub const CLUSTER_WORK_CPU_PCT: f32 = 50.0;
