//! The verdict on one run: what held the loop back, with the evidence, from the run's samples
//! alone (no code changes in the job). The rules, in order:
//!
//! 1. Fewer than `MIN_SAMPLES` samples: `too-short`.
//! 2. GPUs were read and NVML can tell which processes use them:
//!    the run never held one and lasted `GPU_UNUSED_MIN_MS` or more: `gpu-unused`.
//! 3. The run held a GPU (or NVML cannot tell, and GPUs were read): `gpu_busy_pct` is the mean
//!    utilization over those samples. At `GPU_BOUND_BUSY_PCT` or more: `gpu-bound`. Below it the
//!    GPU waited for more than a fifth of the time (TensorBoard's profiler calls a step
//!    input-bound past 20 % of waiting): `input-bound`, with the cause read from the samples in
//!    which the GPU was least busy: `cpu` (a process pinned at `PINNED_CORE_PCT` of a core, or the
//!    tree at `ALL_CORES_SHARE` of all cores), `contended` (its threads waited for a CPU
//!    `CONTENDED_RUN_QUEUE_PCT` of the time or more), `io` (reading `IO_BOUND_READ_BYTES_PER_S` or more),
//!    else `idle` (sleeps, locks, network, launch overhead).
//!    A GPU in MIG mode gives no utilization: a run that held one (or may have) and got no
//!    utilization from any GPU it held is `unknown`, never idle.
//! 4. No GPU involved: `input-bound` when the job's consuming thread (the main thread of its main
//!    process) waited, neither running nor ready to run, `CONSUMER_WAIT_PCT` of the run or more
//!    while another thread or a worker process of the job was busy (`consumer::waits`), the
//!    consumer used `CONSUMER_ACTIVE_PCT` of a core meanwhile and the job less than
//!    `ALL_CORES_SHARE` of the cores: cause `cpu` when that producer wanted `PRODUCER_PINNED_PCT` of
//!    a core (running or ready to run), `io` when the job read `IO_BOUND_READ_BYTES_PER_S` or more
//!    meanwhile. Otherwise `contended` (the threads waited on a run queue for a CPU
//!    `CONTENDED_RUN_QUEUE_PCT` of the run or more, while the tree itself used less than
//!    `ALL_CORES_SHARE` of the cores: other work held them), `cpu-bound` (tree at `CPU_BOUND_PCT`
//!    of one core or more on average), `io-bound` (reading `IO_BOUND_READ_BYTES_PER_S` or more),
//!    else `waiting`.

use serde::Serialize;

use super::consumer::{waits, ProducerEvidence, Wait};
use super::gpus::{per_gpu, unreadable, GpuVerdict};
use super::hints::{hints, Hint};
use super::stall::episodes;
use super::thresholds::{
    ALL_CORES_SHARE, CONSUMER_ACTIVE_PCT, CONSUMER_WAIT_PCT, CONTENDED_OTHER_WORK_PCT, CONTENDED_RUN_QUEUE_PCT,
    CPU_BOUND_PCT, GPU_BOUND_BUSY_PCT, GPU_UNUSED_MIN_MS, IO_BOUND_READ_BYTES_PER_S, MIN_SAMPLES, PINNED_CORE_PCT,
    PRODUCER_PINNED_PCT, STALL_UTIL_PCT,
};
use super::Point;
use crate::format::count;

/// What limited the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The run kept a GPU busy: the GPU is the limit.
    GpuBound,
    /// The job's consumer waited for its input: a GPU the run held, or without one the job's
    /// main thread, waiting on a busy loader thread or worker process.
    InputBound,
    /// GPUs are here, the run was long enough, and it never used one.
    GpuUnused,
    /// No GPU involved; the job was ready to run but other work held the CPUs.
    Contended,
    /// No GPU involved; the CPU was the limit.
    CpuBound,
    /// No GPU involved; reading from disk was the limit.
    IoBound,
    /// No GPU involved and neither CPU nor disk busy: sleeps, locks, network.
    Waiting,
    /// Too few samples to judge.
    TooShort,
    /// On a GPU whose utilization NVML does not give (MIG): the GPU side is unknown.
    Unknown,
}

impl Kind {
    /// The name used in JSON and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GpuBound => "gpu-bound",
            Kind::InputBound => "input-bound",
            Kind::GpuUnused => "gpu-unused",
            Kind::Contended => "contended",
            Kind::CpuBound => "cpu-bound",
            Kind::IoBound => "io-bound",
            Kind::Waiting => "waiting",
            Kind::TooShort => "too-short",
            Kind::Unknown => "unknown",
        }
    }
}

/// Why an input-bound run's GPU waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// The CPU side could not keep up (a pinned loader, or every core busy).
    Cpu,
    /// Ready to run but waiting for CPUs that other work held.
    Contended,
    /// Reading from disk, with the CPU not busy.
    Io,
    /// Neither: sleeps, locks, network, launch overhead.
    Idle,
}

impl Cause {
    /// The name used in JSON and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Cpu => "cpu",
            Cause::Contended => "contended",
            Cause::Io => "io",
            Cause::Idle => "idle",
        }
    }
}

/// The verdict and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// What limited the run.
    pub kind: Kind,
    /// For `input-bound`: why the GPU waited.
    pub cause: Option<Cause>,
    /// Mean utilization of the GPU while the run held it.
    pub gpu_busy_pct: Option<f64>,
    /// How long after the start the run first held a GPU (imports, data loading).
    pub time_to_gpu_ms: Option<f64>,
    /// Stalls: episodes of a second or more on a GPU below `STALL_UTIL_PCT`.
    pub stalls: usize,
    /// Their total length.
    pub stall_ms: f64,
    /// The busiest process's CPU (median over the samples that explain the verdict), % of one core.
    pub busiest_cpu_pct: Option<f64>,
    /// Mean disk read rate of the tree, MB/s.
    pub read_mb_per_s: Option<f64>,
    /// Mean time the tree's threads spent runnable but waiting for a CPU, in % of one thread.
    pub run_queue_delay_pct: Option<f64>,
    /// Mean busy share of all the host's cores, 0-100 (what else kept the machine busy).
    pub host_cpu_pct: Option<f64>,
    /// The most GPU memory the run held, in % of its GPUs' memory.
    pub gpu_mem_peak_pct: Option<f64>,
    /// This looptop's other jobs that ran beside a contended run (named as part of the other
    /// work); empty otherwise.
    pub alongside: Vec<String>,
    /// Every GPU the run held, one by one.
    pub gpus: Vec<GpuVerdict>,
    /// Share of the run in which the job's consuming thread (the main thread of its main
    /// process) waited, neither running nor ready to run, while another thread or a worker
    /// process was busy, 0-100; `None` when the job's threads were not read.
    pub consumer_wait_pct: Option<f64>,
    /// The thread or worker process that was busy while the consumer waited.
    pub producer: Option<ProducerEvidence>,
    /// Where the consumer waited (`queue.get`, a DataLoader's `__next__`), from a Python stack
    /// profile of the run; `None` without one (per-thread CPU alone cannot tell).
    pub waits_in: Option<String>,
    /// What to try, at most three, each backed by the evidence.
    pub hints: Vec<Hint>,
    /// The verdict in one line.
    pub summary: String,
}

/// Judges a run from its samples; `duration_ms` is the run's length.
pub fn judge(points: &[Point], duration_ms: f64) -> Verdict {
    let stalls = episodes(points);
    let wait = waits(points);
    let mut verdict = Verdict {
        kind: Kind::TooShort,
        cause: None,
        gpu_busy_pct: None,
        time_to_gpu_ms: points.iter().find(|p| p.on_gpu == Some(true)).map(|p| p.t_ms),
        stalls: stalls.len(),
        stall_ms: stalls.iter().map(|s| s.duration_ms()).fold(0.0, |a, b| a + b),
        busiest_cpu_pct: median(points.iter().map(|p| f64::from(p.busiest_cpu_pct))),
        read_mb_per_s: mean(points.iter().map(|p| p.read_bytes_per_s / 1e6)),
        run_queue_delay_pct: mean(points.iter().filter_map(|p| p.run_queue_delay_pct).map(f64::from)),
        host_cpu_pct: mean(points.iter().map(|p| f64::from(p.host_cpu_pct))),
        gpu_mem_peak_pct: points
            .iter()
            .filter_map(|p| p.gpu_mem_pct)
            .map(f64::from)
            .reduce(f64::max),
        alongside: Vec::new(),
        gpus: per_gpu(points),
        consumer_wait_pct: wait.as_ref().map(|w| w.wait_pct),
        producer: wait.as_ref().and_then(|w| w.producer.clone()),
        waits_in: None,
        hints: Vec::new(),
        summary: String::new(),
    };
    if points.len() < MIN_SAMPLES {
        verdict.summary = format!("too short to judge: {}", count(points.len(), "sample", "samples"));
        return verdict;
    }
    let held: Vec<&Point> = points.iter().filter(|p| p.holds_gpu()).collect();
    let attributed = points.iter().any(|p| p.on_gpu.is_some());
    if !held.is_empty() {
        let busy = mean(held.iter().filter_map(|p| p.gpu_util_pct).map(f64::from)).unwrap_or(0.0);
        verdict.gpu_busy_pct = Some(busy);
        if busy >= GPU_BOUND_BUSY_PCT {
            verdict.kind = Kind::GpuBound;
        } else {
            // The cause is in the samples where the GPU waited most.
            let waiting: Vec<&Point> = held
                .iter()
                .copied()
                .filter(|p| p.gpu_util_pct.is_some_and(|u| u < STALL_UTIL_PCT))
                .collect();
            let evidence = if waiting.is_empty() { held } else { waiting };
            verdict.kind = Kind::InputBound;
            verdict.cause = Some(cause(&evidence));
            verdict.busiest_cpu_pct = median(evidence.iter().map(|p| f64::from(p.busiest_cpu_pct)));
        }
    } else if unreadable(&verdict.gpus).is_some() {
        verdict.kind = Kind::Unknown;
    } else if attributed && points.iter().any(|p| p.gpus_read) && duration_ms >= GPU_UNUSED_MIN_MS {
        verdict.kind = Kind::GpuUnused;
    } else {
        let all: Vec<&Point> = points.iter().collect();
        let tree = mean(points.iter().map(|p| f64::from(p.tree_cpu_pct))).unwrap_or(0.0);
        let cores = f64::from(points.iter().map(|p| p.cores).max().unwrap_or(1));
        let queued = verdict.run_queue_delay_pct.unwrap_or(0.0);
        // Waiting for a CPU the job itself keeps busy is its own CPU use, not contention: other
        // work must have held the CPUs.
        let others = verdict.host_cpu_pct.unwrap_or(0.0) - tree / cores;
        let all_cores = tree / (cores * 100.0) >= f64::from(ALL_CORES_SHARE);
        let starved = wait.as_ref().and_then(|w| starved_by(w, all_cores));
        verdict.cause = starved;
        verdict.kind = if starved.is_some() {
            Kind::InputBound
        } else if queued >= CONTENDED_RUN_QUEUE_PCT && others >= CONTENDED_OTHER_WORK_PCT && !all_cores {
            Kind::Contended
        } else if tree >= CPU_BOUND_PCT || cause(&all) == Cause::Cpu {
            Kind::CpuBound
        } else if cause(&all) == Cause::Io {
            Kind::IoBound
        } else {
            Kind::Waiting
        };
    }
    verdict.summary = summary(&verdict, points, duration_ms);
    verdict.hints = hints(&verdict, points, duration_ms);
    verdict
}

/// Without a GPU: why the job's consumer waited for its input (`cpu`: its producer wanted most
/// of a core; `io`: the job read from disk meanwhile), or `None` when it did not wait on one.
fn starved_by(wait: &Wait, all_cores: bool) -> Option<Cause> {
    if wait.wait_pct < CONSUMER_WAIT_PCT || wait.consumer_cpu_pct < CONSUMER_ACTIVE_PCT || all_cores {
        return None;
    }
    if wait.producer.as_ref()?.demand_pct >= PRODUCER_PINNED_PCT {
        Some(Cause::Cpu)
    } else if wait.read_bytes_per_s >= IO_BOUND_READ_BYTES_PER_S {
        Some(Cause::Io)
    } else {
        None
    }
}

/// CPU, I/O or neither, from what the median sample of `points` shows.
impl Verdict {
    /// Whether other work holding the CPUs is (part of) the verdict.
    pub fn contended(&self) -> bool {
        self.kind == Kind::Contended || self.cause == Some(Cause::Contended)
    }

    /// Where the job's consumer waited, from the run's Python profile: kept as `waits_in`, and
    /// named in an input-bound verdict's summary.
    pub fn waited_in(&mut self, at: Option<String>) {
        if let (Kind::InputBound, Some(at)) = (self.kind, &at) {
            self.summary = format!("{}; it waited in {at}", self.summary);
        }
        self.waits_in = at;
    }

    /// `jobs` of this looptop ran beside the run: when the run was contended, they are part of
    /// the other work, and the summary and the hint name them (the fix is then in looptop's own
    /// hands: one job at a time). Otherwise nothing changes.
    pub fn ran_alongside(&mut self, jobs: Vec<String>) {
        if !self.contended() || jobs.is_empty() {
            return;
        }
        self.summary = format!("{}; alongside this looptop's {}", self.summary, job_list(&jobs));
        for hint in &mut self.hints {
            if hint.id == super::hints::BUSY_MACHINE {
                *hint = super::hints::busy_machine(self.host_cpu_pct.unwrap_or(0.0), &jobs);
            }
        }
        self.alongside = jobs;
    }
}

/// "job `a`", "jobs `a` and `b`", "jobs `a`, `b` and `c`", "jobs `a`, `b`, `c` and 9 more".
pub fn job_list(jobs: &[String]) -> String {
    const NAMED: usize = 3;
    let mut quoted: Vec<String> = jobs.iter().take(NAMED).map(|j| format!("`{j}`")).collect();
    if jobs.len() > NAMED {
        quoted.push(format!("{} more", jobs.len() - NAMED));
    }
    match quoted.as_slice() {
        [one] => format!("job {one}"),
        [init @ .., last] => format!("jobs {} and {last}", init.join(", ")),
        [] => "no job".to_string(),
    }
}

fn cause(points: &[&Point]) -> Cause {
    let busiest = median(points.iter().map(|p| f64::from(p.busiest_cpu_pct))).unwrap_or(0.0);
    let tree_share = median(
        points
            .iter()
            .map(|p| f64::from(p.tree_cpu_pct / (p.cores as f32 * 100.0))),
    )
    .unwrap_or(0.0);
    let read = mean(points.iter().map(|p| p.read_bytes_per_s)).unwrap_or(0.0);
    let queued = mean(points.iter().filter_map(|p| p.run_queue_delay_pct).map(f64::from)).unwrap_or(0.0);
    if busiest >= f64::from(PINNED_CORE_PCT) || tree_share >= f64::from(ALL_CORES_SHARE) {
        Cause::Cpu
    } else if queued >= CONTENDED_RUN_QUEUE_PCT {
        Cause::Contended
    } else if read >= IO_BOUND_READ_BYTES_PER_S {
        Cause::Io
    } else {
        Cause::Idle
    }
}

fn summary(verdict: &Verdict, points: &[Point], duration_ms: f64) -> String {
    let kind = verdict.kind.as_str();
    let busiest = verdict.busiest_cpu_pct.unwrap_or(0.0);
    let read = verdict.read_mb_per_s.unwrap_or(0.0);
    let stalls = match verdict.stalls {
        0 => String::new(),
        1 => format!("; 1 stall, {:.1} s", verdict.stall_ms / 1000.0),
        n => format!("; {n} stalls, {:.1} s", verdict.stall_ms / 1000.0),
    };
    match verdict.kind {
        Kind::InputBound if verdict.gpu_busy_pct.is_none() => {
            let producer = verdict
                .producer
                .as_ref()
                .map_or_else(|| "another thread".to_string(), ProducerEvidence::label);
            let cpu = verdict.producer.as_ref().map_or(0.0, |p| p.cpu_pct);
            let queued = verdict.producer.as_ref().map_or(0.0, |p| p.demand_pct - p.cpu_pct);
            let busy = match verdict.cause {
                Some(Cause::Io) => format!("was busy and the job read {read:.0} MB/s from disk"),
                _ if queued >= CONTENDED_RUN_QUEUE_PCT => {
                    format!("was at {cpu:.0} % of a core and waited for a CPU another {queued:.0} %")
                }
                _ => format!("was at {cpu:.0} % of a core"),
            };
            format!(
                "{kind}: the main thread waited {:.0} % of the run while {producer} {busy}",
                verdict.consumer_wait_pct.unwrap_or(0.0)
            )
        }
        Kind::GpuBound => format!("{kind}: GPU busy {:.0} %{stalls}", verdict.gpu_busy_pct.unwrap_or(0.0)),
        Kind::InputBound => {
            let why = match verdict.cause {
                Some(Cause::Cpu) if busiest >= f64::from(PINNED_CORE_PCT) => {
                    format!("busiest process at {busiest:.0} % of one core")
                }
                Some(Cause::Cpu) => "every core busy".to_string(),
                Some(Cause::Contended) => format!(
                    "waiting for a CPU {:.0} % of the run, host CPU {:.0} % busy",
                    verdict.run_queue_delay_pct.unwrap_or(0.0),
                    verdict.host_cpu_pct.unwrap_or(0.0)
                ),
                Some(Cause::Io) => format!("reading {read:.0} MB/s from disk"),
                _ => "CPU and disk idle (sleeps, locks, network?)".to_string(),
            };
            format!(
                "{kind}: GPU busy {:.0} %, {why}{stalls}",
                verdict.gpu_busy_pct.unwrap_or(0.0)
            )
        }
        Kind::GpuUnused => format!(
            "{kind}: a GPU is here but the job never used it in {:.1} s",
            duration_ms / 1000.0
        ),
        Kind::CpuBound => {
            let tree = mean(points.iter().map(|p| f64::from(p.tree_cpu_pct))).unwrap_or(0.0);
            format!("{kind}: {tree:.0} % of one core on average, busiest process at {busiest:.0} %")
        }
        Kind::Contended => {
            let tree = mean(points.iter().map(|p| f64::from(p.tree_cpu_pct))).unwrap_or(0.0);
            format!(
                "{kind}: ready to run but waiting for a CPU {:.0} % of the run (its threads summed), \
                 running {tree:.0} % of one core; host CPU {:.0} % busy",
                verdict.run_queue_delay_pct.unwrap_or(0.0),
                verdict.host_cpu_pct.unwrap_or(0.0)
            )
        }
        Kind::IoBound => format!("{kind}: reading {read:.0} MB/s from disk"),
        Kind::Waiting => {
            let tree = mean(points.iter().map(|p| f64::from(p.tree_cpu_pct))).unwrap_or(0.0);
            format!("{kind}: CPU {tree:.0} % of one core, disk {read:.1} MB/s: sleeps, locks or network")
        }
        Kind::TooShort => format!("too short to judge: {}", count(points.len(), "sample", "samples")),
        Kind::Unknown => format!(
            "{kind}: the job is on GPU {}, in MIG mode, where NVML gives no utilization",
            unreadable(&verdict.gpus).unwrap_or(0)
        ),
    }
}

/// The mean, `None` for no values.
pub fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The median, `None` for no values.
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::consumer::{feeding, ProducerKind};
    use crate::diagnose::on_gpu;

    fn with(points: &mut [Point], f: impl Fn(&mut Point)) {
        points.iter_mut().for_each(f);
    }

    #[test]
    fn few_samples_are_too_short() {
        let verdict = judge(&on_gpu(&[90, 90]), 600.0);
        assert_eq!(verdict.kind, Kind::TooShort);
        assert!(verdict.summary.contains("2 sample"));
        assert!(verdict.hints.is_empty());
    }

    #[test]
    fn a_busy_gpu_is_gpu_bound() {
        let verdict = judge(&on_gpu(&[95, 97, 92, 99, 94, 96, 98, 93]), 2000.0);
        assert_eq!(verdict.kind, Kind::GpuBound);
        assert_eq!(verdict.stalls, 0);
        assert!(
            verdict.summary.starts_with("gpu-bound: GPU busy 96 %"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn a_starved_gpu_with_a_pinned_loader_is_input_bound_on_cpu() {
        let mut points = on_gpu(&[90, 2, 3, 1, 0, 2, 85, 1, 0, 2, 3, 1, 88, 2]);
        with(&mut points, |p| {
            p.busiest_cpu_pct = if p.gpu_util_pct < Some(10) { 99.5 } else { 40.0 };
            p.tree_cpu_pct = p.busiest_cpu_pct + 10.0;
        });
        let verdict = judge(&points, 3500.0);
        assert_eq!(verdict.kind, Kind::InputBound);
        assert_eq!(verdict.cause, Some(Cause::Cpu));
        assert_eq!(verdict.stalls, 2);
        assert_eq!(verdict.busiest_cpu_pct, Some(99.5));
        assert!(
            verdict
                .summary
                .starts_with("input-bound: GPU busy 20 %, busiest process at 100 % of one core; 2 stalls"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn a_starved_gpu_while_reading_disk_is_input_bound_on_io() {
        let mut points = on_gpu(&[5, 5, 5, 5, 5, 90]);
        with(&mut points, |p| {
            p.read_bytes_per_s = 150e6;
            p.busiest_cpu_pct = 30.0;
        });
        let verdict = judge(&points, 1500.0);
        assert_eq!((verdict.kind, verdict.cause), (Kind::InputBound, Some(Cause::Io)));
    }

    #[test]
    fn a_starved_gpu_whose_loader_waits_for_a_cpu_is_input_bound_contended() {
        let mut points = on_gpu(&[3, 3, 3, 3, 3, 60]);
        with(&mut points, |p| {
            p.busiest_cpu_pct = 40.0;
            p.run_queue_delay_pct = Some(45.0);
            p.host_cpu_pct = 100.0;
        });
        let verdict = judge(&points, 1500.0);
        assert_eq!(
            (verdict.kind, verdict.cause),
            (Kind::InputBound, Some(Cause::Contended))
        );
        assert!(verdict.summary.contains("waiting for a CPU"), "{}", verdict.summary);
        // Its twin, asleep rather than queued, is idle.
        with(&mut points, |p| p.run_queue_delay_pct = Some(0.5));
        assert_eq!(judge(&points, 1500.0).cause, Some(Cause::Idle));
    }

    #[test]
    fn a_starved_gpu_with_nothing_busy_is_input_bound_idle() {
        let verdict = judge(&on_gpu(&[5, 0, 0, 0, 0, 0, 40]), 1750.0);
        assert_eq!((verdict.kind, verdict.cause), (Kind::InputBound, Some(Cause::Idle)));
    }

    #[test]
    fn a_long_run_that_never_holds_the_present_gpu_left_it_unused() {
        let mut points = on_gpu(&[70; 16]);
        with(&mut points, |p| p.on_gpu = Some(false));
        assert_eq!(judge(&points, 4000.0).kind, Kind::GpuUnused);
        // A short one is judged on its CPU instead.
        assert_eq!(judge(&points, 2000.0).kind, Kind::Waiting);
    }

    #[test]
    fn without_gpus_cpu_io_or_waiting() {
        let mut points = on_gpu(&[0; 8]);
        with(&mut points, |p| {
            *p = Point {
                t_ms: p.t_ms,
                cores: 4,
                busiest_cpu_pct: 99.0,
                tree_cpu_pct: 99.0,
                ..Point::default()
            }
        });
        assert_eq!(judge(&points, 2000.0).kind, Kind::CpuBound);
        with(&mut points, |p| {
            p.busiest_cpu_pct = 15.0;
            p.tree_cpu_pct = 15.0;
            p.read_bytes_per_s = 80e6;
        });
        assert_eq!(judge(&points, 2000.0).kind, Kind::IoBound);
        with(&mut points, |p| p.read_bytes_per_s = 0.0);
        let verdict = judge(&points, 2000.0);
        assert_eq!(verdict.kind, Kind::Waiting);
        assert_eq!(verdict.gpu_busy_pct, None);
    }

    /// Eight samples of a job without a GPU at `cpu` % of one core on a 2-core host at 100 %,
    /// its threads waiting for a CPU `queued` % of the time.
    fn off_gpu(cpu: f32, queued: Option<f32>) -> Vec<Point> {
        (1..=8)
            .map(|i| Point {
                t_ms: 250.0 * f64::from(i),
                cores: 2,
                busiest_cpu_pct: cpu,
                tree_cpu_pct: cpu,
                run_queue_delay_pct: queued,
                host_cpu_pct: 100.0,
                ..Point::default()
            })
            .collect()
    }

    #[test]
    fn a_job_waiting_on_a_run_queue_is_contended_and_its_sleeping_twin_is_waiting() {
        let verdict = judge(&off_gpu(45.0, Some(52.0)), 2000.0);
        assert_eq!(verdict.kind, Kind::Contended);
        assert_eq!(verdict.run_queue_delay_pct, Some(52.0));
        assert_eq!(verdict.host_cpu_pct, Some(100.0));
        assert_eq!(
            verdict.summary,
            "contended: ready to run but waiting for a CPU 52 % of the run (its threads summed), \
             running 45 % of one core; host CPU 100 % busy"
        );
        assert!(
            verdict
                .hints
                .iter()
                .any(|h| h.id == "busy-machine" && h.text.contains("other work")),
            "{:?}",
            verdict.hints
        );
        // Jobs of this looptop beside it are named only where other work is the verdict.
        let mut named = verdict.clone();
        named.ran_alongside(vec!["train".into(), "lint".into(), "queries".into()]);
        assert!(named
            .summary
            .ends_with("alongside this looptop's jobs `train`, `lint` and `queries`"));
        let mut many = verdict.clone();
        many.ran_alongside((1..=12).map(|i| format!("q{i}")).collect());
        assert!(many
            .summary
            .ends_with("alongside this looptop's jobs `q1`, `q2`, `q3` and 9 more"));
        assert_eq!(many.alongside.len(), 12, "the evidence keeps them all");
        let mut busy = judge(&off_gpu(195.0, Some(180.0)), 2000.0);
        let before = busy.clone();
        busy.ran_alongside(vec!["train".into()]);
        assert_eq!(busy, before, "a CPU-bound run is not about the other jobs");
        // The same low CPU without run-queue delay: it really slept.
        for twin in [off_gpu(45.0, Some(1.0)), off_gpu(45.0, None)] {
            let verdict = judge(&twin, 2000.0);
            assert_eq!(verdict.kind, Kind::Waiting, "{verdict:?}");
            assert!(verdict.hints.iter().all(|h| !h.text.contains("other work")));
        }
        // A job that keeps every core busy itself and queues behind its own threads is CPU-bound.
        assert_eq!(judge(&off_gpu(195.0, Some(180.0)), 2000.0).kind, Kind::CpuBound);
        // So is one whose threads outnumber the cores on an otherwise quiet host (DuckDB at
        // 131 % of one core on two cores, the host at 62 %): no other work held it back.
        let mut alone = off_gpu(131.0, Some(54.0));
        with(&mut alone, |p| p.host_cpu_pct = 62.0);
        let verdict = judge(&alone, 2000.0);
        assert_eq!(verdict.kind, Kind::CpuBound, "{verdict:?}");
        assert!(
            verdict.hints.iter().all(|h| !h.text.contains("other work")),
            "{:?}",
            verdict.hints
        );
    }

    #[test]
    fn without_a_gpu_a_main_thread_waiting_on_a_pinned_loader_thread_is_input_bound() {
        let points = feeding(8, 2, 5.0, "loader", 99.0, false);
        let verdict = judge(&points, 2000.0);
        assert_eq!((verdict.kind, verdict.cause), (Kind::InputBound, Some(Cause::Cpu)));
        assert_eq!(
            verdict.summary,
            "input-bound: the main thread waited 95 % of the run while thread `loader` was at 99 % of a core"
        );
        assert_eq!(verdict.consumer_wait_pct, Some(95.0));
        let producer = verdict.producer.as_ref().expect("the producer is named");
        assert_eq!(
            (producer.kind, producer.name.as_str(), producer.tid),
            (ProducerKind::Thread, "loader", 43)
        );
        assert_eq!(verdict.waits_in, None, "only a Python profile can tell where it waits");
        let mut profiled = verdict.clone();
        profiled.waited_in(Some("get (queue.py:180)".into()));
        assert_eq!(profiled.waits_in.as_deref(), Some("get (queue.py:180)"));
        assert!(
            profiled
                .summary
                .ends_with("loader` was at 99 % of a core; it waited in get (queue.py:180)"),
            "{}",
            profiled.summary
        );
        assert_eq!(verdict.hints[0].id, "more-workers", "{:?}", verdict.hints);
        assert!(
            verdict.hints[0]
                .text
                .starts_with("thread `loader` is at 99 % of a core"),
            "{:?}",
            verdict.hints
        );
        let json = serde_json::to_value(&verdict).expect("serializes");
        assert_eq!(json["consumer_wait_pct"], 95.0);
        assert_eq!(
            json["producer"],
            serde_json::json!({"kind": "thread", "name": "loader", "pid": 42, "tid": 43, "cpu_pct": 99.0})
        );
        assert_eq!(json["waits_in"], serde_json::Value::Null);
    }

    #[test]
    fn a_loader_thread_sharing_the_gil_is_busy_enough_at_three_quarters_of_a_core() {
        // On a busy machine a Python loader thread waits for the GIL back from the consumer now
        // and then: 80 % of a core is still the consumer's bottleneck.
        let verdict = judge(&feeding(8, 2, 5.0, "loader", 80.0, false), 2000.0);
        assert_eq!(
            (verdict.kind, verdict.cause),
            (Kind::InputBound, Some(Cause::Cpu)),
            "{verdict:?}"
        );
        assert!(
            verdict.hints.iter().any(|h| h.id == "more-workers"),
            "{:?}",
            verdict.hints
        );
        // The twin: a producer at 60 % of a core is not what holds the consumer back.
        let twin = judge(&feeding(8, 2, 5.0, "loader", 60.0, false), 2000.0);
        assert_ne!(twin.cause, Some(Cause::Cpu), "{twin:?}");
        assert!(twin.hints.iter().all(|h| h.id != "more-workers"), "{:?}", twin.hints);
    }

    #[test]
    fn without_a_gpu_a_main_process_waiting_on_a_pinned_worker_process_is_input_bound() {
        let verdict = judge(&feeding(8, 4, 12.0, "python3", 100.0, true), 2000.0);
        assert_eq!((verdict.kind, verdict.cause), (Kind::InputBound, Some(Cause::Cpu)));
        assert_eq!(
            verdict.summary,
            "input-bound: the main thread waited 88 % of the run while worker process `python3` (pid 43) was at \
             100 % of a core"
        );
        // A loader that wants the core but waits for it on a busy machine is still the limit.
        let mut queued = feeding(8, 2, 5.0, "loader", 45.0, false);
        with(&mut queued, |p| {
            if let Some(producer) = p.producer.as_mut() {
                producer.demand_pct = 97.0;
            }
        });
        let verdict = judge(&queued, 2000.0);
        assert_eq!((verdict.kind, verdict.cause), (Kind::InputBound, Some(Cause::Cpu)));
        assert!(
            verdict
                .summary
                .ends_with("thread `loader` was at 45 % of a core and waited for a CPU another 52 %"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn without_a_gpu_a_consumer_waiting_while_its_job_reads_disk_is_input_bound_on_io() {
        let mut points = feeding(8, 2, 5.0, "reader", 60.0, false);
        with(&mut points, |p| p.read_bytes_per_s = 90e6);
        let verdict = judge(&points, 2000.0);
        assert_eq!((verdict.kind, verdict.cause), (Kind::InputBound, Some(Cause::Io)));
        assert!(
            verdict.summary.contains("read 90 MB/s from disk"),
            "{}",
            verdict.summary
        );
        // Its twin reads nothing and its thread is not pinned: no input to wait for.
        with(&mut points, |p| p.read_bytes_per_s = 0.0);
        assert_ne!(judge(&points, 2000.0).kind, Kind::InputBound);
    }

    #[test]
    fn busy_single_threaded_jobs_waiters_and_parallel_pools_are_not_input_bound() {
        // The main thread does the work itself: CPU-bound, as before.
        let verdict = judge(&feeding(8, 2, 99.0, "python3", 0.0, false), 2000.0);
        assert_eq!(verdict.kind, Kind::CpuBound, "{verdict:?}");
        assert_eq!(verdict.consumer_wait_pct, Some(0.0));
        assert_eq!(verdict.producer, None);
        // A launcher or test harness that only waits for its one busy thread consumes nothing.
        let verdict = judge(&feeding(8, 2, 0.0, "test_slow", 99.0, false), 2000.0);
        assert_eq!(verdict.kind, Kind::CpuBound, "{verdict:?}");
        // A pool that keeps every core busy is limited by the CPU, not by a loader.
        let mut pool = feeding(8, 2, 5.0, "worker", 99.0, true);
        with(&mut pool, |p| p.tree_cpu_pct = 198.0);
        assert_eq!(judge(&pool, 2000.0).kind, Kind::CpuBound);
        // A wait that is brief (a fifth of the samples) is not input-bound.
        let mut brief = feeding(10, 2, 5.0, "loader", 99.0, false);
        with(&mut brief, |p| {
            if p.t_ms > 500.0 {
                p.consumer = Some(crate::diagnose::Consumer {
                    cpu_pct: 99.0,
                    idle_pct: 1.0,
                });
            }
        });
        assert_eq!(judge(&brief, 2500.0).kind, Kind::CpuBound);
    }

    #[test]
    fn with_a_gpu_the_rules_stay_and_the_consumer_is_evidence() {
        let mut points = on_gpu(&[95, 97, 92, 99, 94, 96, 98, 93]);
        let fed = feeding(8, 4, 5.0, "loader", 99.0, false);
        for (p, f) in points.iter_mut().zip(fed) {
            p.consumer = f.consumer;
            p.producer = f.producer;
        }
        let verdict = judge(&points, 2000.0);
        assert_eq!(verdict.kind, Kind::GpuBound);
        assert_eq!(verdict.consumer_wait_pct, Some(95.0));
        assert_eq!(verdict.producer.map(|p| p.name), Some("loader".to_string()));
    }

    #[test]
    fn time_to_gpu_is_the_first_sample_holding_it() {
        let mut points = on_gpu(&[0, 0, 0, 0, 80, 90, 95, 90]);
        with(&mut points, |p| p.on_gpu = Some(p.t_ms > 1000.0));
        let verdict = judge(&points, 2000.0);
        assert_eq!(verdict.time_to_gpu_ms, Some(1250.0));
        assert_eq!(verdict.kind, Kind::GpuBound);
    }
}
