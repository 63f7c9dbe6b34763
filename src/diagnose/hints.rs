//! Hints: short, actionable lines tied to a verdict's evidence (the classic reasons an ML loop
//! slows down). Each is given only when its evidence holds, and never more than three.

use super::thresholds::{GPU_MEMORY_ROOM_PCT, MANY_CORES, PINNED_CORE_PCT, SINGLE_CORE_SLACK_PCT, STARTUP_SHARE};
use super::verdict::{Cause, Kind, Verdict};
use super::Point;

/// At most this many hints per run.
pub const MAX_HINTS: usize = 3;

/// The hints for `verdict` (computed from `points`, a run of `duration_ms`).
pub fn hints(verdict: &Verdict, points: &[Point], duration_ms: f64) -> Vec<String> {
    let mut found = Vec::new();
    let busiest = verdict.busiest_cpu_pct.unwrap_or(0.0);
    let cores = points.iter().map(|p| p.cores).max().unwrap_or(1);
    if verdict.kind == Kind::InputBound && verdict.cause == Some(Cause::Cpu) && busiest >= f64::from(PINNED_CORE_PCT) {
        found.push(format!(
            "one process is at {busiest:.0} % of a core while the GPU waits: a single-threaded input pipeline; \
             give the data loader more workers (DataLoader num_workers) or move decoding off the training loop"
        ));
    }
    if verdict.kind == Kind::InputBound && verdict.cause == Some(Cause::Io) {
        found.push(
            "the GPU waits on disk reads: cache the dataset in memory or a faster format, or prefetch".to_string(),
        );
    }
    if verdict.kind == Kind::GpuBound {
        if let Some(memory) = verdict.gpu_mem_peak_pct.filter(|&m| m < GPU_MEMORY_ROOM_PCT) {
            found.push(format!(
                "the GPU is busy but its memory only {memory:.0} % used: the batch could grow"
            ));
        }
    }
    if verdict.kind == Kind::Contended || verdict.cause == Some(Cause::Contended) {
        found.push(format!(
            "other work kept the CPUs busy (host at {:.0} %): rerun when the machine is quieter, stop or renice \
             the other work, or give the job cores of its own (taskset, cgroup cpusets)",
            verdict.host_cpu_pct.unwrap_or(0.0)
        ));
    }
    if verdict.kind == Kind::GpuUnused {
        found.push(
            "the job never touched the GPU: is the model on the device (.to(\"cuda\")), and does \
             CUDA_VISIBLE_DEVICES let it see one?"
                .to_string(),
        );
    }
    let single_core = cores >= MANY_CORES
        && points.len() >= 2
        && points.iter().all(|p| {
            p.busiest_cpu_pct >= PINNED_CORE_PCT && p.tree_cpu_pct - p.busiest_cpu_pct <= SINGLE_CORE_SLACK_PCT
        });
    if single_core && verdict.kind == Kind::CpuBound {
        found.push(format!(
            "one core did all the work for the whole run on a {cores}-core machine: no parallelism \
             (more workers, vectorized code, or a parallel test runner such as pytest -n)"
        ));
    }
    if let Some(first) = verdict.time_to_gpu_ms {
        if duration_ms > 0.0 && first / duration_ms >= STARTUP_SHARE {
            found.push(format!(
                "{:.0} % of the loop passed before the GPU was touched ({:.1} s of imports and data loading): \
                 start-up dominates; cache the prepared data or keep a warm process",
                first / duration_ms * 100.0,
                first / 1000.0
            ));
        }
    }
    found.truncate(MAX_HINTS);
    found
}

#[cfg(test)]
mod tests {
    use crate::diagnose::on_gpu;
    use crate::diagnose::verdict::{judge, Kind};
    use crate::diagnose::Point;

    #[test]
    fn a_pinned_loader_gets_the_workers_hint() {
        let mut points = on_gpu(&[2, 2, 2, 2, 2, 60]);
        points.iter_mut().for_each(|p| p.busiest_cpu_pct = 100.0);
        let verdict = judge(&points, 1500.0);
        assert_eq!(verdict.hints.len(), 1, "{:?}", verdict.hints);
        assert!(verdict.hints[0].contains("num_workers"));
    }

    #[test]
    fn room_in_gpu_memory_while_gpu_bound() {
        let mut points = on_gpu(&[95; 8]);
        points.iter_mut().for_each(|p| p.gpu_mem_pct = Some(12.0));
        let verdict = judge(&points, 2000.0);
        assert!(
            verdict.hints.iter().any(|h| h.contains("batch could grow")),
            "{:?}",
            verdict.hints
        );
        points.iter_mut().for_each(|p| p.gpu_mem_pct = Some(85.0));
        assert!(judge(&points, 2000.0).hints.is_empty());
    }

    #[test]
    fn unused_gpu_single_core_and_slow_start_up() {
        let mut points = on_gpu(&[50; 16]);
        points.iter_mut().for_each(|p| p.on_gpu = Some(false));
        let verdict = judge(&points, 4000.0);
        assert!(verdict.hints[0].contains("never touched the GPU"));
        let mut cpu: Vec<Point> = (1..=8)
            .map(|i| Point {
                t_ms: f64::from(i) * 250.0,
                cores: 16,
                busiest_cpu_pct: 100.0,
                tree_cpu_pct: 104.0,
                ..Point::default()
            })
            .collect();
        let verdict = judge(&cpu, 2000.0);
        assert_eq!(verdict.kind, Kind::CpuBound);
        assert!(verdict.hints[0].contains("16-core machine"), "{:?}", verdict.hints);
        cpu.iter_mut().for_each(|p| p.tree_cpu_pct = 400.0);
        assert!(judge(&cpu, 2000.0).hints.is_empty(), "parallel work gets no such hint");
        let mut late = on_gpu(&[95; 8]);
        late.iter_mut().for_each(|p| p.on_gpu = Some(p.t_ms >= 1500.0));
        let verdict = judge(&late, 2000.0);
        assert!(
            verdict.hints.iter().any(|h| h.contains("start-up dominates")),
            "{:?}",
            verdict.hints
        );
    }
}
