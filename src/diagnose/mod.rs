//! Diagnosis: pure functions that say why a loop is slow. `verdict` classifies one run from its
//! samples (GPU-bound, input-bound, GPU unused, contended, CPU- or I/O-bound, waiting) with the evidence,
//! `hints` turns the evidence into at most three actionable lines, `stall` spots a starved GPU
//! live, `regression` compares a run's duration with the job's recent runs, and `per_test`
//! judges a test job's tests one by one the same way. Every threshold lives in `thresholds`.

pub mod gpus;
pub mod hints;
pub mod metrics;
pub mod per_test;
pub mod query;
pub mod regression;
pub mod stall;
pub mod thresholds;
pub mod verdict;

use crate::sample::Sample;
use gpus::GpuPoint;

/// What the diagnosis keeps of one sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    /// Milliseconds since the run started.
    pub t_ms: f64,
    /// CPU of the whole tree, in % of one core.
    pub tree_cpu_pct: f32,
    /// CPU of the tree's busiest process, in % of one core.
    pub busiest_cpu_pct: f32,
    /// Disk bytes read per second by the tree.
    pub read_bytes_per_s: f64,
    /// Time the tree's threads spent runnable but waiting for a CPU, in % of one thread.
    pub run_queue_delay_pct: Option<f32>,
    /// Busy share of all the host's cores, 0-100.
    pub host_cpu_pct: f32,
    /// Logical cores of the host.
    pub cores: u32,
    /// Whether any GPU was read in this sample.
    pub gpus_read: bool,
    /// Whether a process of the run held a GPU context (`None`: NVML cannot tell).
    pub on_gpu: Option<bool>,
    /// Utilization of the GPUs the run is on (the busiest of them; on a GPU other processes
    /// share, the run's own SM share); of every watched GPU when NVML cannot tell which the run
    /// uses; `None` without a reading.
    pub gpu_util_pct: Option<u32>,
    /// Of the GPUs the run is on, the least share of the driver's finer samples under
    /// `STALL_UTIL_PCT` since the last sample (gaps shorter than a tick).
    pub gpu_idle_sample_pct: Option<f32>,
    /// GPU memory held by the run, in % of the memory of the GPUs it is on.
    pub gpu_mem_pct: Option<f32>,
    /// Every watched GPU, one by one.
    pub gpus: Vec<GpuPoint>,
}

impl Point {
    /// The diagnosis' view of `sample`.
    pub fn of(sample: &Sample) -> Self {
        let known = sample.gpus.iter().any(|g| g.job_present.is_some());
        let gpus: Vec<GpuPoint> = sample.gpus.iter().map(GpuPoint::of).collect();
        let held = |g: &&GpuPoint| if known { g.job_present == Some(true) } else { true };
        let mine: Vec<_> = sample
            .gpus
            .iter()
            .zip(&gpus)
            .filter(|(_, g)| held(g))
            .map(|(s, _)| s)
            .collect();
        let on_gpu = known.then_some(!mine.is_empty());
        let job_mem: Option<u64> = mine.iter().map(|g| g.job_mem_bytes).sum();
        let total: Option<u64> = mine.iter().map(|g| g.mem_total_bytes).sum();
        let gpu_mem_pct = match (job_mem, total) {
            (Some(used), Some(total)) if total > 0 && !mine.is_empty() => {
                Some((used as f64 / total as f64 * 100.0) as f32)
            }
            _ => None,
        };
        Self {
            t_ms: sample.t_ms,
            tree_cpu_pct: sample.tree.cpu_pct,
            busiest_cpu_pct: sample.tree.busiest().map_or(0.0, |p| p.cpu_pct),
            read_bytes_per_s: sample.tree.read_bytes_per_s,
            run_queue_delay_pct: sample.tree.run_queue_delay_pct,
            host_cpu_pct: sample.host.cpu_pct,
            cores: u32::try_from(sample.host.core_pct.len()).unwrap_or(u32::MAX).max(1),
            gpus_read: sample.gpus.iter().any(|g| g.util_pct.is_some()),
            on_gpu,
            gpu_util_pct: gpus.iter().filter(held).filter_map(GpuPoint::busy_pct).max(),
            gpu_idle_sample_pct: gpus
                .iter()
                .filter(held)
                .filter_map(|g| g.idle_sample_pct)
                .reduce(f32::min),
            gpu_mem_pct,
            gpus,
        }
    }

    /// The run holds a GPU in this sample (or NVML cannot tell and a GPU was read).
    pub fn holds_gpu(&self) -> bool {
        self.on_gpu.unwrap_or(self.gpus_read) && self.gpu_util_pct.is_some()
    }

    /// The run holds a GPU and leaves it nearly idle.
    pub fn starved(&self) -> bool {
        self.holds_gpu()
            && (self.gpu_util_pct.is_some_and(|u| u < thresholds::STALL_UTIL_PCT)
                || self
                    .gpu_idle_sample_pct
                    .is_some_and(|i| f64::from(i) >= thresholds::FINE_IDLE_SAMPLES_PCT))
    }
}

/// Test series: samples every 250 ms of a run on a GPU at the given utilizations, 4 cores.
#[cfg(test)]
pub(crate) fn on_gpu(utils: &[u32]) -> Vec<Point> {
    utils
        .iter()
        .enumerate()
        .map(|(i, &u)| Point {
            t_ms: 250.0 * (i as f64 + 1.0),
            gpus_read: true,
            on_gpu: Some(true),
            gpu_util_pct: Some(u),
            cores: 4,
            ..Point::default()
        })
        .collect()
}
