//! The run's GPUs one by one: what each was doing while the run held it (`verdict.gpus`), and
//! the hints only a per-GPU view can give: `idle-gpus` (some held GPUs busy, others idle),
//! `shared-gpu` (other processes used a GPU the run held: it is judged by its own share) and
//! `small-kernels` (a GPU that reads busy while its SMs mostly idle, from GPM's SM activity or,
//! on any generation, power far under the enforced limit).

use serde::{Deserialize, Serialize};

use super::hints::Hint;
use super::stall::episodes_of;
use super::thresholds::{
    FINE_IDLE_SAMPLES_PCT, IDLE_GPUS_BUSY_PCT, IDLE_GPUS_IDLE_PCT, SHARED_GPU_OTHERS_PCT, SMALL_KERNELS_POWER_PCT,
    SMALL_KERNELS_SM_ACTIVE_PCT, STALL_UTIL_PCT,
};
use super::verdict::{mean, Kind, Verdict};
use super::Point;
use crate::sample::GpuSample;

/// What the diagnosis keeps of one GPU in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GpuPoint {
    /// NVML's index.
    pub index: u32,
    /// Device utilization (a duty cycle), 0-100.
    pub util_pct: Option<u32>,
    /// Whether the run held a context here (`None`: cannot tell).
    pub job_present: Option<bool>,
    /// The run's own SM share.
    pub job_sm_pct: Option<u32>,
    /// Every other process's SM share.
    pub others_sm_pct: Option<u32>,
    /// GPM's SM activity.
    pub sm_active_pct: Option<f32>,
    /// Power draw in % of the enforced limit.
    pub power_pct: Option<f32>,
    /// Share of the driver's finer samples under `STALL_UTIL_PCT`.
    pub idle_sample_pct: Option<f32>,
    /// In MIG mode: no utilization there.
    pub mig: bool,
}

impl GpuPoint {
    /// The diagnosis' view of one GPU reading.
    pub fn of(gpu: &GpuSample) -> Self {
        let power_pct = match (gpu.power_mw, gpu.power_limit_mw) {
            (Some(power), Some(limit)) if limit > 0 => Some((f64::from(power) / f64::from(limit) * 100.0) as f32),
            _ => None,
        };
        Self {
            index: gpu.index,
            util_pct: gpu.util_pct,
            job_present: gpu.job_present,
            job_sm_pct: gpu.job_sm_pct,
            others_sm_pct: gpu.others_sm_pct,
            sm_active_pct: gpu.sm_active_pct,
            power_pct,
            idle_sample_pct: gpu.idle_sample_pct,
            mig: gpu.mig,
        }
    }

    /// Other processes kept this GPU's SMs busy in this sample.
    pub fn shared(&self) -> bool {
        self.others_sm_pct
            .is_some_and(|o| f64::from(o) >= SHARED_GPU_OTHERS_PCT)
    }

    /// The figure the run is judged by: its own SM share on a shared GPU (the device's figure
    /// is mostly someone else's work there), the device's utilization otherwise.
    pub fn busy_pct(&self) -> Option<u32> {
        match self.job_sm_pct {
            Some(own) if self.shared() => Some(own),
            _ => self.util_pct,
        }
    }

    /// The run may be on this GPU: it holds it, or NVML cannot tell.
    pub fn maybe_held(&self) -> bool {
        self.job_present != Some(false)
    }

    /// Held (or maybe held), read, and nearly idle: by the reading, or by most of the driver's
    /// finer samples since the last one (a gap shorter than a tick).
    pub fn starved(&self) -> bool {
        self.maybe_held()
            && self.busy_pct().is_some_and(|busy| {
                busy < STALL_UTIL_PCT
                    || self
                        .idle_sample_pct
                        .is_some_and(|i| f64::from(i) >= FINE_IDLE_SAMPLES_PCT)
            })
    }
}

/// One GPU the run held, over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuVerdict {
    /// NVML's index.
    pub index: u32,
    /// Mean device utilization while the run held it; `None` where NVML gives none (MIG).
    pub busy_pct: Option<f64>,
    /// The run's own mean SM share there (NVML's per-process samples); `None` when unknown.
    pub job_sm_pct: Option<f64>,
    /// Whether the run held it (`None`: NVML's pids could not be matched to the run's).
    pub job_present: Option<bool>,
    /// Time in stalls on this GPU.
    pub stall_ms: f64,
    /// Share of the held samples in which it was starved.
    pub idle_pct: Option<f64>,
    /// Mean SM share of every other process there.
    pub others_sm_pct: Option<f64>,
    /// Other processes used it: the run is judged by its own share.
    pub shared: bool,
    /// Mean SM activity (GPM, Hopper and newer).
    pub sm_active_pct: Option<f64>,
    /// Mean power draw in % of the enforced limit.
    pub power_pct: Option<f64>,
    /// In MIG mode: utilization unknown.
    pub mig: bool,
}

/// Every GPU the run held (or may have held, when NVML cannot tell), by index.
pub fn per_gpu(points: &[Point]) -> Vec<GpuVerdict> {
    let mut indices: Vec<u32> = points.iter().flat_map(|p| p.gpus.iter().map(|g| g.index)).collect();
    indices.sort_unstable();
    indices.dedup();
    indices
        .into_iter()
        .filter_map(|index| {
            let series: Vec<(f64, GpuPoint)> = points
                .iter()
                .filter_map(|p| p.gpus.iter().find(|g| g.index == index).map(|g| (p.t_ms, *g)))
                .collect();
            one_gpu(index, &series)
        })
        .collect()
}

fn one_gpu(index: u32, series: &[(f64, GpuPoint)]) -> Option<GpuVerdict> {
    let job_present = if series.iter().any(|(_, g)| g.job_present == Some(true)) {
        Some(true)
    } else if series.iter().any(|(_, g)| g.job_present == Some(false)) {
        return None;
    } else {
        None
    };
    let held: Vec<&GpuPoint> = series.iter().map(|(_, g)| g).filter(|g| g.maybe_held()).collect();
    let read: Vec<&&GpuPoint> = held.iter().filter(|g| g.busy_pct().is_some()).collect();
    let avg = |f: &dyn Fn(&GpuPoint) -> Option<f64>| mean(held.iter().filter_map(|g| f(g)));
    let stalls = episodes_of(series.iter().map(|(t, g)| (*t, g.starved())));
    let others_sm_pct = avg(&|g| g.others_sm_pct.map(f64::from));
    Some(GpuVerdict {
        index,
        busy_pct: avg(&|g| g.util_pct.map(f64::from)),
        job_sm_pct: avg(&|g| g.job_sm_pct.map(f64::from)),
        job_present,
        stall_ms: stalls.iter().map(|s| s.duration_ms()).sum(),
        idle_pct: (!read.is_empty())
            .then(|| read.iter().filter(|g| g.starved()).count() as f64 / read.len() as f64 * 100.0),
        others_sm_pct,
        shared: others_sm_pct.is_some_and(|o| o >= SHARED_GPU_OTHERS_PCT),
        sm_active_pct: avg(&|g| g.sm_active_pct.map(f64::from)),
        power_pct: avg(&|g| g.power_pct.map(f64::from)),
        mig: series.iter().any(|(_, g)| g.mig),
    })
}

/// A MIG GPU the run held (or may have held) and no utilization from any GPU it held: the
/// verdict is "unknown", never "idle".
pub fn unreadable(gpus: &[GpuVerdict]) -> Option<u32> {
    let readable = gpus.iter().any(|g| g.busy_pct.is_some());
    gpus.iter().find(|g| g.mig && !readable).map(|g| g.index)
}

/// The per-GPU hints for `verdict`.
pub fn hints(verdict: &Verdict) -> Vec<Hint> {
    let mut found = Vec::new();
    let held: Vec<&GpuVerdict> = verdict.gpus.iter().filter(|g| g.job_present == Some(true)).collect();
    let busy: Vec<u32> = held
        .iter()
        .filter(|g| !g.shared && g.busy_pct.is_some_and(|b| b >= IDLE_GPUS_BUSY_PCT))
        .map(|g| g.index)
        .collect();
    let idle: Vec<&&GpuVerdict> = held
        .iter()
        .filter(|g| g.idle_pct.is_some_and(|i| i >= IDLE_GPUS_IDLE_PCT))
        .collect();
    if !busy.is_empty() && !idle.is_empty() {
        let idle_ids: Vec<u32> = idle.iter().map(|g| g.index).collect();
        let share = mean(idle.iter().filter_map(|g| g.idle_pct)).unwrap_or(0.0);
        found.push(
            Hint::new(
                "idle-gpus",
                format!(
                    "{} idle {share:.0} % of the run while {} {} busy: rank imbalance or a model on one device \
                     (check that every rank gets work, or spread the model with DDP/FSDP)",
                    gpu_list(&idle_ids),
                    gpu_list(&busy),
                    if busy.len() == 1 { "is" } else { "are" }
                ),
            )
            .with("idle_gpus", idle_ids)
            .with("busy_gpus", busy)
            .with("idle_pct", share.round()),
        );
    }
    for gpu in held.iter().filter(|g| g.shared) {
        let others = gpu.others_sm_pct.unwrap_or(0.0);
        let own = gpu.job_sm_pct.unwrap_or(0.0);
        found.push(
            Hint::new(
                "shared-gpu",
                format!(
                    "GPU {} is shared: other processes kept its SMs {others:.0} % busy while this job's own share \
                     was {own:.0} %; the job is judged by its own share. Run where the GPU is free, or see who \
                     else uses it (nvidia-smi)",
                    gpu.index
                ),
            )
            .with("gpu", gpu.index)
            .with("others_sm_pct", others.round())
            .with("job_sm_pct", own.round()),
        );
    }
    if verdict.kind == Kind::GpuBound {
        let starved_sms = held.iter().find_map(|g| {
            let busy = g.busy_pct.unwrap_or(0.0);
            match (g.sm_active_pct, g.power_pct) {
                (Some(sm), _) if sm < SMALL_KERNELS_SM_ACTIVE_PCT => Some((
                    g.index,
                    format!("its SMs were active only {sm:.0} % of the time (GPM)"),
                    "sm_active_pct",
                    sm,
                    busy,
                )),
                (None, Some(power)) if power < SMALL_KERNELS_POWER_PCT => Some((
                    g.index,
                    format!("it drew only {power:.0} % of its power limit"),
                    "power_pct",
                    power,
                    busy,
                )),
                _ => None,
            }
        });
        if let Some((index, evidence, key, value, busy)) = starved_sms {
            found.push(
                Hint::new(
                    "small-kernels",
                    format!(
                        "GPU {index} reads {busy:.0} % busy but {evidence}: many small kernels or too few blocks \
                         keep it nominally busy; a larger batch, fewer launches, CUDA graphs or torch.compile"
                    ),
                )
                .with("gpu", index)
                .with(key, value.round()),
            );
        }
    }
    found
}

/// The GPUs in one line, when there is more to say than the verdict does: several GPUs, a
/// shared one, MIG. "GPUs: 0 busy 95 %, SMs active 90 %; 1 busy 0 %, stalled 3.8 s".
pub fn describe(gpus: &[GpuVerdict]) -> Option<String> {
    if gpus.len() < 2 && !gpus.iter().any(|g| g.shared || g.mig) {
        return None;
    }
    let parts: Vec<String> = gpus
        .iter()
        .map(|g| {
            if g.mig && g.busy_pct.is_none() {
                return format!("{} MIG: utilization unknown", g.index);
            }
            let mut part = match g.busy_pct {
                Some(busy) => format!("{} busy {busy:.0} %", g.index),
                None => format!("{} busy unknown", g.index),
            };
            if let (true, Some(others)) = (g.shared, g.others_sm_pct) {
                part += &format!(
                    ", shared (others' SMs {others:.0} %, the job's {:.0} %)",
                    g.job_sm_pct.unwrap_or(0.0)
                );
            }
            if let Some(sm) = g.sm_active_pct {
                part += &format!(", SMs active {sm:.0} %");
            }
            if g.stall_ms > 0.0 {
                part += &format!(", stalled {:.1} s", g.stall_ms / 1000.0);
            }
            part
        })
        .collect();
    Some(format!("GPUs: {}", parts.join("; ")))
}

/// "GPU 0", "GPUs 1-3", "GPUs 0, 2, 5-7".
fn gpu_list(indices: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &i in indices {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    let parts: Vec<String> = runs
        .iter()
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
        .collect();
    format!("GPU{} {}", if indices.len() == 1 { "" } else { "s" }, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::verdict::judge;

    /// Samples every 250 ms of a run holding GPUs whose readings `gpus(i)` gives for sample `i`.
    fn run(n: usize, gpus: impl Fn(usize) -> Vec<GpuPoint>) -> Vec<Point> {
        (0..n)
            .map(|i| {
                let sample = crate::sample::Sample {
                    key: crate::event::RunKey(1),
                    t_ms: 250.0 * (i as f64 + 1.0),
                    host: crate::sample::HostSample {
                        core_pct: vec![0.0; 4],
                        ..Default::default()
                    },
                    tree: Default::default(),
                    gpus: gpus(i).into_iter().map(sample_of).collect(),
                };
                Point::of(&sample)
            })
            .collect()
    }

    fn sample_of(g: GpuPoint) -> GpuSample {
        GpuSample {
            index: g.index,
            util_pct: g.util_pct,
            job_present: g.job_present,
            job_sm_pct: g.job_sm_pct,
            others_sm_pct: g.others_sm_pct,
            sm_active_pct: g.sm_active_pct,
            power_mw: g.power_pct.map(|p| (p * 7000.0) as u32),
            power_limit_mw: g.power_pct.map(|_| 700_000),
            idle_sample_pct: g.idle_sample_pct,
            mig: g.mig,
            ..GpuSample::default()
        }
    }

    fn gpu(index: u32, util: u32) -> GpuPoint {
        GpuPoint {
            index,
            util_pct: Some(util),
            job_present: Some(true),
            power_pct: Some(80.0),
            ..GpuPoint::default()
        }
    }

    fn ids(verdict: &Verdict) -> Vec<&str> {
        verdict.hints.iter().map(|h| h.id.as_str()).collect()
    }

    #[test]
    fn four_gpus_with_only_gpu_0_busy_are_idle_gpus_and_all_busy_is_silent() {
        let points = run(16, |_| vec![gpu(0, 95), gpu(1, 0), gpu(2, 1), gpu(3, 0)]);
        let verdict = judge(&points, 4000.0);
        assert_eq!(verdict.kind, Kind::GpuBound, "the busy GPU sets the pace");
        assert_eq!(verdict.gpus.len(), 4);
        assert_eq!(verdict.gpus[1].busy_pct, Some(0.0));
        assert_eq!(verdict.gpus[1].idle_pct, Some(100.0));
        assert!(verdict.gpus[1].stall_ms >= 3000.0, "{:?}", verdict.gpus[1]);
        assert_eq!(verdict.gpus[0].stall_ms, 0.0);
        let hint = verdict.hints.iter().find(|h| h.id == "idle-gpus").expect("idle-gpus");
        assert!(
            hint.text
                .starts_with("GPUs 1-3 idle 100 % of the run while GPU 0 is busy: rank imbalance"),
            "{}",
            hint.text
        );
        assert_eq!(hint.evidence["idle_gpus"], serde_json::json!([1, 2, 3]));
        // The fixed twin: every rank busy.
        let twin = judge(&run(16, |_| (0..4).map(|i| gpu(i, 93)).collect()), 4000.0);
        assert!(!ids(&twin).contains(&"idle-gpus"), "{:?}", twin.hints);
        // A GPU the run never held is not its concern.
        let others = run(16, |_| {
            vec![
                gpu(0, 95),
                GpuPoint {
                    job_present: Some(false),
                    ..gpu(1, 0)
                },
            ]
        });
        let verdict = judge(&others, 4000.0);
        assert_eq!(verdict.gpus.len(), 1);
        assert!(!ids(&verdict).contains(&"idle-gpus"));
    }

    #[test]
    fn a_shared_gpu_is_judged_by_the_jobs_own_share() {
        let shared = |_| {
            vec![GpuPoint {
                job_sm_pct: Some(4),
                others_sm_pct: Some(85),
                ..gpu(0, 90)
            }]
        };
        let verdict = judge(&run(12, shared), 3000.0);
        assert_ne!(verdict.kind, Kind::GpuBound, "{verdict:?}");
        assert_eq!(verdict.kind, Kind::InputBound);
        assert_eq!(verdict.gpu_busy_pct, Some(4.0));
        assert_eq!(verdict.gpus[0].busy_pct, Some(90.0), "the device figure stays as read");
        assert!(verdict.gpus[0].shared);
        let hint = verdict.hints.iter().find(|h| h.id == "shared-gpu").expect("shared-gpu");
        assert!(
            hint.text.contains("other processes kept its SMs 85 % busy"),
            "{}",
            hint.text
        );
        // The twin: the job alone on the GPU, the same device figure.
        let alone = |_| {
            vec![GpuPoint {
                job_sm_pct: Some(88),
                others_sm_pct: Some(0),
                ..gpu(0, 90)
            }]
        };
        let verdict = judge(&run(12, alone), 3000.0);
        assert_eq!(verdict.kind, Kind::GpuBound);
        assert!(!ids(&verdict).contains(&"shared-gpu"), "{:?}", verdict.hints);
    }

    #[test]
    fn a_busy_gpu_with_idle_sms_has_small_kernels() {
        let idle_sms = |_| {
            vec![GpuPoint {
                sm_active_pct: Some(6.0),
                ..gpu(0, 98)
            }]
        };
        let verdict = judge(&run(12, idle_sms), 3000.0);
        assert_eq!(verdict.kind, Kind::GpuBound);
        let hint = verdict
            .hints
            .iter()
            .find(|h| h.id == "small-kernels")
            .expect("small-kernels");
        assert!(hint.text.contains("SMs were active only 6 %"), "{}", hint.text);
        assert!(hint.text.contains("CUDA graphs"), "{}", hint.text);
        // Working SMs: silent.
        let working = |_| {
            vec![GpuPoint {
                sm_active_pct: Some(85.0),
                ..gpu(0, 98)
            }]
        };
        assert!(!ids(&judge(&run(12, working), 3000.0)).contains(&"small-kernels"));
        // Without GPM, power far under the limit says the same; near it, nothing.
        let low_power = |_| {
            vec![GpuPoint {
                power_pct: Some(12.0),
                ..gpu(0, 98)
            }]
        };
        let verdict = judge(&run(12, low_power), 3000.0);
        assert!(
            verdict
                .hints
                .iter()
                .any(|h| h.id == "small-kernels" && h.text.contains("power limit")),
            "{:?}",
            verdict.hints
        );
        assert!(!ids(&judge(&run(12, |_| vec![gpu(0, 98)]), 3000.0)).contains(&"small-kernels"));
    }

    #[test]
    fn finer_samples_catch_a_stall_the_coarse_reading_misses() {
        let gaps = |_| {
            vec![GpuPoint {
                idle_sample_pct: Some(80.0),
                ..gpu(0, 45)
            }]
        };
        let verdict = judge(&run(12, gaps), 3000.0);
        assert!(verdict.stalls >= 1 && verdict.gpus[0].stall_ms > 0.0, "{verdict:?}");
        let steady = |_| {
            vec![GpuPoint {
                idle_sample_pct: Some(0.0),
                ..gpu(0, 45)
            }]
        };
        assert_eq!(judge(&run(12, steady), 3000.0).stalls, 0);
    }

    #[test]
    fn mig_is_unknown_not_idle() {
        let mig = |_| {
            vec![GpuPoint {
                util_pct: None,
                mig: true,
                power_pct: None,
                ..gpu(0, 0)
            }]
        };
        let verdict = judge(&run(16, mig), 4000.0);
        assert_eq!(verdict.kind, Kind::Unknown, "{verdict:?}");
        assert_eq!(verdict.gpus[0].busy_pct, None);
        assert!(verdict.gpus[0].mig);
        assert!(verdict.summary.contains("MIG"), "{}", verdict.summary);
        assert!(!ids(&verdict).contains(&"model-not-on-gpu"));
    }

    #[test]
    fn unmatched_pids_never_make_a_gpu_unused_verdict() {
        let unknown = |_| {
            vec![GpuPoint {
                job_present: None,
                ..gpu(0, 60)
            }]
        };
        let verdict = judge(&run(16, unknown), 4000.0);
        assert_ne!(verdict.kind, Kind::GpuUnused);
        assert_eq!(verdict.gpus[0].job_present, None);
    }

    #[test]
    fn several_gpus_are_described_one_by_one_and_kept_as_json() {
        let verdict = judge(
            &run(16, |_| {
                vec![
                    GpuPoint {
                        sm_active_pct: Some(88.0),
                        ..gpu(0, 95)
                    },
                    gpu(1, 0),
                ]
            }),
            4000.0,
        );
        let line = describe(&verdict.gpus).expect("two GPUs");
        assert_eq!(line, "GPUs: 0 busy 95 %, SMs active 88 %; 1 busy 0 %, stalled 3.8 s");
        let json = serde_json::to_string(&verdict.gpus).expect("json");
        let back: Vec<GpuVerdict> = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, verdict.gpus);
        // One GPU, neither shared nor MIG: the verdict says it all.
        assert_eq!(describe(&verdict.gpus[..1]), None);
    }

    #[test]
    fn gpu_lists_read_as_ranges() {
        assert_eq!(gpu_list(&[0]), "GPU 0");
        assert_eq!(gpu_list(&[1, 2, 3]), "GPUs 1-3");
        assert_eq!(gpu_list(&[0, 2, 5, 6, 7]), "GPUs 0, 2, 5-7");
    }
}
