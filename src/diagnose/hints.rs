//! Hints: short, actionable lines tied to a verdict's evidence (the classic reasons an ML loop
//! slows down). Each is given only when its evidence holds, and never more than three. Every hint
//! has a stable id (`more-workers`, `columnar`, ...) that scripts match on; the text is for people.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::thresholds::{
    GPU_MEMORY_ROOM_PCT, PARALLEL_CORES, PINNED_CORE_PCT, PRODUCER_PINNED_PCT, SINGLE_CORE_RUN_SHARE,
    SINGLE_CORE_SLACK_PCT, STARTUP_SHARE,
};
use super::verdict::{Cause, Kind, Verdict};
use super::Point;

/// At most this many hints per run.
pub const MAX_HINTS: usize = 3;

/// One thing to try, backed by evidence: `{"id": "more-workers", "text": "...", ...evidence}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hint {
    /// Stable id, kebab-case: what scripts and the history's `hint_ids` match on.
    pub id: String,
    /// The hint in words, with its evidence and the fix.
    pub text: String,
    /// The evidence as values (file, rows, share ...), beside `id` and `text` in JSON.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub evidence: Map<String, Value>,
}

impl Hint {
    /// Hint `id` saying `text`, without separate evidence.
    pub fn new(id: &str, text: impl Into<String>) -> Self {
        Self {
            id: id.to_string(),
            text: text.into(),
            evidence: Map::new(),
        }
    }

    /// The same hint with one more piece of evidence.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.evidence.insert(key.to_string(), value.into());
        self
    }
}

/// The id of the hint for a run held back by other work.
pub const BUSY_MACHINE: &str = "busy-machine";

/// Other work kept the CPUs busy (the host at `host_cpu_pct`); `alongside` names this looptop's
/// own jobs among it, whose fix is in looptop's config.
pub fn busy_machine(host_cpu_pct: f64, alongside: &[String]) -> Hint {
    let text = if alongside.is_empty() {
        format!(
            "other work kept the CPUs busy (host at {host_cpu_pct:.0} %): rerun when the machine is quieter, stop or \
             renice the other work, or give the job cores of its own (taskset, cgroup cpusets)"
        )
    } else {
        format!(
            "other work kept the CPUs busy (host at {host_cpu_pct:.0} %), among it this looptop's own {}: let one \
             wait for the other (`needs` in looptop.toml), or give each cores of its own (taskset, cgroup cpusets)",
            super::verdict::job_list(alongside)
        )
    };
    let hint = Hint::new(BUSY_MACHINE, text);
    if alongside.is_empty() {
        hint
    } else {
        hint.with("alongside", alongside.to_vec())
    }
}

/// The hints for `verdict` (computed from `points`, a run of `duration_ms`).
pub fn hints(verdict: &Verdict, points: &[Point], duration_ms: f64) -> Vec<Hint> {
    let mut found = Vec::new();
    let busiest = verdict.busiest_cpu_pct.unwrap_or(0.0);
    let cores = points.iter().map(|p| p.cores).max().unwrap_or(1);
    let pinned_producer = verdict
        .producer
        .as_ref()
        .filter(|p| p.demand_pct >= PRODUCER_PINNED_PCT);
    let input_cpu = verdict.kind == Kind::InputBound && verdict.cause == Some(Cause::Cpu);
    if input_cpu && verdict.gpu_busy_pct.is_none() {
        if let Some(producer) = pinned_producer {
            found.push(
                Hint::new(
                    "more-workers",
                    format!(
                        "{} is at {:.0} % of a core while the main thread waits for it: a single-threaded input \
                         pipeline; give the loader more workers (DataLoader num_workers, a process pool) or make \
                         decoding cheaper",
                        producer.label(),
                        producer.cpu_pct
                    ),
                )
                .with("producer", producer.name.as_str()),
            );
        }
    } else if input_cpu && busiest >= f64::from(PINNED_CORE_PCT) {
        found.push(Hint::new(
            "more-workers",
            format!(
                "one process is at {busiest:.0} % of a core while the GPU waits: a single-threaded input pipeline; \
                 give the data loader more workers (DataLoader num_workers) or move decoding off the training loop"
            ),
        ));
    }
    if verdict.kind == Kind::InputBound && verdict.cause == Some(Cause::Io) {
        found.push(Hint::new(
            "cache-or-prefetch",
            "the GPU waits on disk reads: cache the dataset in memory or a faster format, or prefetch",
        ));
    }
    if verdict.kind == Kind::GpuBound {
        if let Some(memory) = verdict.gpu_mem_peak_pct.filter(|&m| m < GPU_MEMORY_ROOM_PCT) {
            found.push(Hint::new(
                "batch-could-grow",
                format!("the GPU is busy but its memory only {memory:.0} % used: the batch could grow"),
            ));
        }
    }
    if verdict.contended() {
        found.push(busy_machine(verdict.host_cpu_pct.unwrap_or(0.0), &[]));
    }
    found.extend(super::gpus::hints(verdict));
    if verdict.kind == Kind::GpuUnused {
        found.push(Hint::new(
            "model-not-on-gpu",
            "the job never touched the GPU: is the model on the device (.to(\"cuda\")), and does \
             CUDA_VISIBLE_DEVICES let it see one?",
        ));
    }
    // One core busy (counting the time the job waited for it) and no more than a sliver beyond.
    let one_core = |p: &Point| {
        p.tree_cpu_pct + p.run_queue_delay_pct.unwrap_or(0.0) >= PINNED_CORE_PCT
            && p.tree_cpu_pct <= 100.0 + SINGLE_CORE_SLACK_PCT
    };
    let single_share = points.iter().filter(|p| one_core(p)).count() as f64 / points.len().max(1) as f64;
    if cores >= PARALLEL_CORES && single_share >= SINGLE_CORE_RUN_SHARE && verdict.kind == Kind::CpuBound {
        found.push(
            Hint::new(
                "no-parallelism",
                format!(
                    "one core did all of the job's work for {:.0} % of the run, leaving {} of this {cores}-core \
                     machine idle: no parallelism (more workers, vectorized code, or a parallel test runner \
                     such as pytest -n)",
                    single_share * 100.0,
                    if cores == 2 {
                        "the other core".to_string()
                    } else {
                        format!("the other {} cores", cores - 1)
                    }
                ),
            )
            .with("single_core_pct", (single_share * 1000.0).round() / 10.0)
            .with("cores", cores),
        );
    }
    if let Some(first) = verdict.time_to_gpu_ms {
        if duration_ms > 0.0 && first / duration_ms >= STARTUP_SHARE {
            found.push(Hint::new(
                "startup-dominates",
                format!(
                    "{:.0} % of the loop passed before the GPU was touched ({:.1} s of imports and data loading): \
                     start-up dominates; cache the prepared data or keep a warm process",
                    first / duration_ms * 100.0,
                    first / 1000.0
                ),
            ));
        }
    }
    found.truncate(MAX_HINTS);
    found
}

#[cfg(test)]
mod tests {
    use super::Hint;
    use crate::diagnose::on_gpu;
    use crate::diagnose::verdict::{judge, Kind};
    use crate::diagnose::Point;

    #[test]
    fn a_pinned_loader_gets_the_workers_hint() {
        let mut points = on_gpu(&[2, 2, 2, 2, 2, 60]);
        points.iter_mut().for_each(|p| p.busiest_cpu_pct = 100.0);
        let verdict = judge(&points, 1500.0);
        assert_eq!(verdict.hints.len(), 1, "{:?}", verdict.hints);
        assert_eq!(verdict.hints[0].id, "more-workers");
        assert!(verdict.hints[0].text.contains("num_workers"));
    }

    #[test]
    fn room_in_gpu_memory_while_gpu_bound() {
        let mut points = on_gpu(&[95; 8]);
        points.iter_mut().for_each(|p| p.gpu_mem_pct = Some(12.0));
        let verdict = judge(&points, 2000.0);
        assert!(
            verdict
                .hints
                .iter()
                .any(|h| h.id == "batch-could-grow" && h.text.contains("batch could grow")),
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
        assert_eq!(verdict.hints[0].id, "model-not-on-gpu");
        assert!(verdict.hints[0].text.contains("never touched the GPU"));
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
        assert_eq!(verdict.hints[0].id, "no-parallelism");
        assert!(verdict.hints[0].text.contains("16-core machine"), "{:?}", verdict.hints);
        cpu.iter_mut().for_each(|p| p.tree_cpu_pct = 400.0);
        assert!(judge(&cpu, 2000.0).hints.is_empty(), "parallel work gets no such hint");
        let mut late = on_gpu(&[95; 8]);
        late.iter_mut().for_each(|p| p.on_gpu = Some(p.t_ms >= 1500.0));
        let verdict = judge(&late, 2000.0);
        assert!(
            verdict
                .hints
                .iter()
                .any(|h| h.id == "startup-dominates" && h.text.contains("start-up dominates")),
            "{:?}",
            verdict.hints
        );
    }

    /// `n` samples of a job without a GPU on `cores` cores using `tree(i)` % of one core.
    fn cpu_job(n: usize, cores: u32, tree: impl Fn(usize) -> f32) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                t_ms: 250.0 * (i as f64 + 1.0),
                cores,
                tree_cpu_pct: tree(i),
                busiest_cpu_pct: tree(i).min(100.0),
                run_queue_delay_pct: Some(0.0),
                ..Point::default()
            })
            .collect()
    }

    #[test]
    fn a_single_threaded_loop_on_two_cores_gets_no_parallelism_and_its_twins_do_not() {
        // Start-up at 30 %, then one core pinned: most of the run.
        let verdict = judge(&cpu_job(10, 2, |i| if i < 2 { 30.0 } else { 99.0 }), 2500.0);
        assert_eq!(verdict.kind, Kind::CpuBound);
        let hint = verdict.hints.iter().find(|h| h.id == "no-parallelism").expect("hinted");
        assert!(
            hint.text
                .starts_with("one core did all of the job's work for 80 % of the run, leaving the other core of this 2-core machine idle"),
            "{}",
            hint.text
        );
        assert_eq!(hint.evidence["single_core_pct"], 80.0);
        // A core held through the run queue counts as held.
        let queued = cpu_job(8, 2, |_| 70.0)
            .into_iter()
            .map(|p| Point {
                run_queue_delay_pct: Some(28.0),
                ..p
            })
            .collect::<Vec<_>>();
        assert!(judge(&queued, 2000.0).hints.iter().any(|h| h.id == "no-parallelism"));
        // Its parallel twin uses both cores.
        let parallel = judge(&cpu_job(10, 2, |_| 190.0), 2500.0);
        assert_eq!(parallel.kind, Kind::CpuBound);
        assert!(
            parallel.hints.iter().all(|h| h.id != "no-parallelism"),
            "{:?}",
            parallel.hints
        );
        // Only briefly single-threaded: a third of the run.
        let brief = judge(&cpu_job(9, 2, |i| if i < 3 { 99.0 } else { 195.0 }), 2250.0);
        assert!(
            brief.hints.iter().all(|h| h.id != "no-parallelism"),
            "{:?}",
            brief.hints
        );
        // One core has nothing to parallelize over.
        let single = judge(&cpu_job(8, 1, |_| 99.0), 2000.0);
        assert!(
            single.hints.iter().all(|h| h.id != "no-parallelism"),
            "{:?}",
            single.hints
        );
    }

    #[test]
    fn a_hint_is_an_object_with_its_evidence_beside_id_and_text() {
        let hint = Hint::new("columnar", "read Parquet")
            .with("file", "events.csv")
            .with("bytes", 1200);
        let json = serde_json::to_value(&hint).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"id": "columnar", "text": "read Parquet", "file": "events.csv", "bytes": 1200})
        );
        assert_eq!(serde_json::from_value::<Hint>(json).expect("reads back"), hint);
        let bare = serde_json::to_string(&Hint::new("sample", "use a sample")).expect("serializes");
        assert_eq!(bare, r#"{"id":"sample","text":"use a sample"}"#);
    }
}
