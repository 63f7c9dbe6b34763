//! A run's resource use, folded sample by sample into what its summary needs (pure).

use std::collections::BTreeMap;

use crate::report::RunUsage;
use crate::sample::Sample;

/// What a run's samples add up to so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageTally {
    samples: u32,
    tree_cpu_pct: Vec<f32>,
    peak_rss_bytes: u64,
    /// Per GPU index: sum and count of device utilization, and whether the run was seen on it.
    gpus: BTreeMap<u32, GpuTally>,
    /// Samples in which the run's presence on the GPUs was known, and those in which it was on one.
    attributed: u32,
    on_gpu: u32,
    peak_gpu_mem_bytes: Option<u64>,
    /// Sum and count of the samples' run-queue delay.
    run_queue: (f64, u32),
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct GpuTally {
    util_sum: f64,
    util_count: u32,
    job_seen: bool,
}

impl UsageTally {
    /// Adds one sample.
    pub fn add(&mut self, sample: &Sample) {
        self.samples += 1;
        self.tree_cpu_pct.push(sample.tree.cpu_pct);
        self.peak_rss_bytes = self.peak_rss_bytes.max(sample.tree.rss_bytes);
        if let Some(queued) = sample.tree.run_queue_delay_pct {
            self.run_queue.0 += f64::from(queued);
            self.run_queue.1 += 1;
        }
        let mut known = false;
        let mut present = false;
        let mut job_mem: Option<u64> = None;
        for gpu in &sample.gpus {
            let tally = self.gpus.entry(gpu.index).or_default();
            if let Some(util) = gpu.util_pct {
                tally.util_sum += f64::from(util);
                tally.util_count += 1;
            }
            if let Some(here) = gpu.job_present {
                known = true;
                present |= here;
                tally.job_seen |= here;
            }
            if let Some(bytes) = gpu.job_mem_bytes {
                job_mem = Some(job_mem.unwrap_or(0) + bytes);
            }
        }
        if known {
            self.attributed += 1;
            self.on_gpu += u32::from(present);
        }
        if let Some(bytes) = job_mem {
            self.peak_gpu_mem_bytes = Some(self.peak_gpu_mem_bytes.unwrap_or(0).max(bytes));
        }
    }

    /// Number of samples so far.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// The run's summary. GPU utilization is the mean over the GPUs the run used, or over every
    /// watched GPU when NVML cannot tell which processes use which GPU; `None` without GPUs.
    pub fn summary(&self) -> RunUsage {
        let cpu_mean_pct = (!self.tree_cpu_pct.is_empty())
            .then(|| self.tree_cpu_pct.iter().map(|&c| f64::from(c)).sum::<f64>() / self.tree_cpu_pct.len() as f64);
        let any_seen = self.gpus.values().any(|g| g.job_seen);
        let means: Vec<f64> = self
            .gpus
            .values()
            .filter(|g| g.util_count > 0 && (g.job_seen || !any_seen && self.attributed == 0))
            .map(|g| g.util_sum / f64::from(g.util_count))
            .collect();
        RunUsage {
            samples: self.samples,
            cpu_mean_pct,
            cpu_p95_pct: percentile(&self.tree_cpu_pct, 0.95),
            peak_rss_bytes: (self.samples > 0).then_some(self.peak_rss_bytes),
            gpu_util_mean_pct: (!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64),
            gpu_mem_peak_bytes: self.peak_gpu_mem_bytes,
            gpu_on_fraction: (self.attributed > 0).then(|| f64::from(self.on_gpu) / f64::from(self.attributed)),
            run_queue_delay_pct: (self.run_queue.1 > 0).then(|| self.run_queue.0 / f64::from(self.run_queue.1)),
        }
    }
}

/// The nearest-rank percentile `p` (0-1) of `values`; `None` when empty.
pub fn percentile(values: &[f32], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(f64::from(sorted[rank.clamp(1, sorted.len()) - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RunKey;
    use crate::sample::{GpuSample, TreeSample};

    fn sample(cpu: f32, rss: u64, gpus: Vec<GpuSample>) -> Sample {
        Sample {
            key: RunKey(1),
            t_ms: 0.0,
            host: Default::default(),
            tree: TreeSample {
                cpu_pct: cpu,
                rss_bytes: rss,
                ..TreeSample::default()
            },
            gpus,
        }
    }

    fn gpu(index: u32, util: u32, present: Option<bool>, mem: Option<u64>) -> GpuSample {
        GpuSample {
            index,
            util_pct: Some(util),
            job_present: present,
            job_mem_bytes: mem,
            ..GpuSample::default()
        }
    }

    #[test]
    fn no_samples_means_no_figures() {
        let summary = UsageTally::default().summary();
        assert_eq!(summary.samples, 0);
        assert_eq!(summary.cpu_mean_pct, None);
        assert_eq!(summary.peak_rss_bytes, None);
        assert_eq!(summary.gpu_util_mean_pct, None);
        assert_eq!(summary.gpu_on_fraction, None);
    }

    #[test]
    fn cpu_mean_p95_and_peak_rss() {
        let mut tally = UsageTally::default();
        for i in 1..=20 {
            tally.add(&sample(i as f32 * 10.0, i * 100, Vec::new()));
        }
        let summary = tally.summary();
        assert_eq!(summary.samples, 20);
        assert_eq!(summary.cpu_mean_pct, Some(105.0));
        assert_eq!(summary.cpu_p95_pct, Some(190.0));
        assert_eq!(summary.peak_rss_bytes, Some(2000));
        assert_eq!(summary.gpu_util_mean_pct, None, "no GPU");
    }

    #[test]
    fn gpu_figures_follow_the_gpus_the_run_used() {
        let mut tally = UsageTally::default();
        // GPU 1 is someone else's, busy; the run uses GPU 0 for half of its samples.
        tally.add(&sample(
            100.0,
            1,
            vec![gpu(0, 0, Some(false), Some(0)), gpu(1, 90, Some(false), Some(0))],
        ));
        tally.add(&sample(
            100.0,
            1,
            vec![gpu(0, 20, Some(true), Some(1 << 30)), gpu(1, 90, Some(false), Some(0))],
        ));
        tally.add(&sample(
            100.0,
            1,
            vec![gpu(0, 40, Some(true), Some(2 << 30)), gpu(1, 90, Some(false), Some(0))],
        ));
        tally.add(&sample(
            100.0,
            1,
            vec![gpu(0, 0, Some(false), Some(0)), gpu(1, 90, Some(false), Some(0))],
        ));
        let summary = tally.summary();
        assert_eq!(summary.gpu_util_mean_pct, Some(15.0), "GPU 0 only, over the whole run");
        assert_eq!(summary.gpu_mem_peak_bytes, Some(2 << 30));
        assert_eq!(summary.gpu_on_fraction, Some(0.5));
    }

    #[test]
    fn without_attribution_every_gpu_counts_and_the_fraction_is_unknown() {
        let mut tally = UsageTally::default();
        tally.add(&sample(1.0, 1, vec![gpu(0, 30, None, None), gpu(1, 50, None, None)]));
        let summary = tally.summary();
        assert_eq!(summary.gpu_util_mean_pct, Some(40.0));
        assert_eq!(summary.gpu_on_fraction, None);
        assert_eq!(summary.gpu_mem_peak_bytes, None);
    }

    #[test]
    fn a_run_that_never_touched_the_gpu_has_no_gpu_mean_but_a_zero_fraction() {
        let mut tally = UsageTally::default();
        tally.add(&sample(1.0, 1, vec![gpu(0, 70, Some(false), Some(0))]));
        let summary = tally.summary();
        assert_eq!(summary.gpu_util_mean_pct, None);
        assert_eq!(summary.gpu_on_fraction, Some(0.0));
        assert_eq!(summary.gpu_mem_peak_bytes, Some(0));
    }

    #[test]
    fn percentile_uses_the_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[5.0], 0.95), Some(5.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0, 4.0], 0.5), Some(2.0));
    }
}
