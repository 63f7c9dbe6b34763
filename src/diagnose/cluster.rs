//! A local cluster in a run's process tree (Spark, Dask or Ray, as the sampler recognised its
//! processes): how long it took before real work started, for how much input, and the
//! `local-cluster` hint when its start-up is a large share of the loop or the input is small
//! enough for an in-process engine.
//!
//! Real work starts at the first sample, after the cluster was first seen, in which its workers
//! (those already seen the sample before: a worker's first reading is its own start-up) used
//! `CLUSTER_WORK_CPU_PCT` of a core together, or in which a process of the run had a data file
//! open (an engine whose work runs in its driver, as Spark's local mode, shows only this).

use serde::{Deserialize, Serialize};

use super::hints::Hint;
use super::thresholds::{
    CLUSTER_WORK_CPU_PCT, LOCAL_CLUSTER_MIN_STARTUP_SHARE, LOCAL_CLUSTER_SMALL_INPUT_BYTES,
    LOCAL_CLUSTER_STARTUP_SHARE, MIN_SAMPLES,
};
use crate::report::{format_bytes, format_duration_ms};
use crate::sample::{ClusterEngine, Sample};

/// The local cluster of a run: `run_finished.cluster`, and the history's `cluster_*` columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// `dask`, `spark` or `ray`.
    pub engine: ClusterEngine,
    /// The most worker processes seen at once.
    pub workers: u32,
    /// From the run's start to the workers' first real work (the whole run when they never
    /// worked), in ms.
    pub startup_ms: f64,
    /// The same in % of the run.
    pub startup_pct: f64,
    /// Whether the workers ever did real work.
    pub worked: bool,
    /// The size of the data files the run read, together.
    pub input_bytes: u64,
}

/// What a run's samples say of its cluster so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterTally {
    samples: u32,
    engine: Option<ClusterEngine>,
    workers: u32,
    work_started_ms: Option<f64>,
}

impl ClusterTally {
    /// Adds one sample.
    pub fn add(&mut self, sample: &Sample) {
        self.samples += 1;
        let seen_before = self.engine.is_some();
        let Some(cluster) = &sample.tree.cluster else {
            return;
        };
        self.engine.get_or_insert(cluster.engine);
        self.workers = self.workers.max(cluster.workers);
        let working = cluster.worker_cpu_pct >= CLUSTER_WORK_CPU_PCT || !sample.tree.open_files.is_empty();
        if seen_before && working && self.work_started_ms.is_none() {
            self.work_started_ms = Some(sample.t_ms);
        }
    }

    /// The run's cluster, for a run of `duration_ms` that read `input_bytes`; `None` without one.
    pub fn report(&self, duration_ms: f64, input_bytes: u64) -> Option<ClusterReport> {
        let engine = self.engine?;
        let startup_ms = (self.work_started_ms.unwrap_or(duration_ms).min(duration_ms) * 10.0).round() / 10.0;
        Some(ClusterReport {
            engine,
            workers: self.workers,
            startup_ms,
            startup_pct: if duration_ms > 0.0 {
                (startup_ms / duration_ms * 1000.0).round() / 10.0
            } else {
                0.0
            },
            worked: self.work_started_ms.is_some(),
            input_bytes,
        })
    }

    /// Samples added.
    pub fn samples(&self) -> u32 {
        self.samples
    }
}

/// The id of the hint for a cluster the loop does not need.
pub const LOCAL_CLUSTER: &str = "local-cluster";

/// `local-cluster` for `report` (from `samples` samples).
pub fn hints(report: Option<&ClusterReport>, samples: u32) -> Vec<Hint> {
    let Some(report) = report.filter(|_| samples as usize >= MIN_SAMPLES) else {
        return Vec::new();
    };
    let share = report.startup_pct / 100.0;
    // Input never seen (read between two samples, or from a network or database) is not small.
    let small = report.input_bytes > 0 && report.input_bytes < LOCAL_CLUSTER_SMALL_INPUT_BYTES;
    if share < LOCAL_CLUSTER_STARTUP_SHARE && !(small && share >= LOCAL_CLUSTER_MIN_STARTUP_SHARE) {
        return Vec::new();
    }
    let cluster = format!(
        "a local {} cluster of {}",
        report.engine.name(),
        crate::report::count(report.workers, "worker", "workers")
    );
    let input = match report.input_bytes {
        0 => String::new(),
        bytes => format!(" for {} of input", format_bytes(bytes)),
    };
    let opening = if report.worked {
        format!(
            "{:.0} % of the run was cluster start-up ({}: {cluster}){input}",
            report.startup_pct,
            format_duration_ms(report.startup_ms)
        )
    } else {
        format!("{cluster} started and never did real work in this run{input}")
    };
    let size = if small { "this size" } else { "data larger than memory" };
    let text = format!(
        "{opening}: an in-process engine such as DuckDB or polars starts at once and handles {size} without a cluster"
    );
    vec![Hint::new(LOCAL_CLUSTER, text)
        .with("engine", report.engine.as_str())
        .with("workers", report.workers)
        .with("startup_ms", report.startup_ms.round())
        .with("startup_pct", report.startup_pct)
        .with("input_bytes", report.input_bytes)]
}

/// "local Dask cluster: 2 workers, start-up 3.200 s (42 % of the run), 80.0 MB of input".
pub fn describe(report: &ClusterReport) -> String {
    let startup = if report.worked {
        format!(
            "start-up {} ({:.0} % of the run)",
            format_duration_ms(report.startup_ms),
            report.startup_pct
        )
    } else {
        "no real work seen".to_string()
    };
    let input = match report.input_bytes {
        0 => "no data file seen".to_string(),
        bytes => format!("{} of input", format_bytes(bytes)),
    };
    format!(
        "local {} cluster: {}, {startup}, {input}",
        report.engine.name(),
        crate::report::count(report.workers, "worker", "workers")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RunKey;
    use crate::sample::{ClusterSample, TreeSample};

    /// Samples every 250 ms; the cluster comes up at `up` and its workers are busy from `busy`.
    fn run(n: usize, up: Option<usize>, busy: usize) -> ClusterTally {
        let mut tally = ClusterTally::default();
        for i in 0..n {
            let cluster = up.filter(|&u| i >= u).map(|_| ClusterSample {
                engine: ClusterEngine::Dask,
                processes: 3,
                workers: 2,
                worker_cpu_pct: if i >= busy { 180.0 } else { 3.0 },
            });
            tally.add(&Sample {
                key: RunKey(1),
                t_ms: 250.0 * (i + 1) as f64,
                host: Default::default(),
                tree: TreeSample {
                    cluster,
                    ..TreeSample::default()
                },
                gpus: Vec::new(),
            });
        }
        tally
    }

    #[test]
    fn a_cluster_that_starts_for_most_of_the_run_gets_local_cluster() {
        // Up at 1 s, busy from 2.5 s of a 4 s run.
        let tally = run(16, Some(3), 9);
        let report = tally.report(4000.0, 80_000_000).expect("a cluster");
        assert_eq!(
            (report.engine, report.workers, report.worked),
            (ClusterEngine::Dask, 2, true)
        );
        assert_eq!((report.startup_ms, report.startup_pct), (2500.0, 62.5));
        let found = hints(Some(&report), tally.samples());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "local-cluster");
        assert!(
            found[0].text.starts_with(
                "62 % of the run was cluster start-up (2.500 s: a local Dask cluster of 2 workers) for 80.0 MB of input: \
                 an in-process engine such as DuckDB or polars"
            ),
            "{}",
            found[0].text
        );
        assert_eq!(found[0].evidence["startup_pct"], 62.5);
        assert_eq!(found[0].evidence["input_bytes"], 80_000_000);
        assert_eq!(
            describe(&report),
            "local Dask cluster: 2 workers, start-up 2.500 s (62 % of the run), 80.0 MB of input"
        );
        // Large input: start-up alone must be most of the run.
        let big = tally.report(4000.0, 50_000_000_000).expect("a cluster");
        assert_eq!(hints(Some(&big), 16).len(), 1);
    }

    #[test]
    fn small_input_lowers_the_bar_and_its_twins_stay_silent() {
        // Start-up a third of the run: a hint for 80 MB, none for 50 GB.
        let tally = run(24, Some(2), 7);
        let small = tally.report(6000.0, 80_000_000).expect("a cluster");
        assert_eq!(small.startup_pct, 33.3);
        assert_eq!(hints(Some(&small), 24).len(), 1);
        let big = tally.report(6000.0, 50_000_000_000).expect("a cluster");
        assert!(hints(Some(&big), 24).is_empty());
        // Input never seen is not small: start-up must then be most of the run.
        let unseen = tally.report(6000.0, 0).expect("a cluster");
        assert!(hints(Some(&unseen), 24).is_empty());
        let most = run(16, Some(3), 9).report(4000.0, 0).expect("a cluster");
        let found = hints(Some(&most), 16);
        assert!(
            found[0]
                .text
                .starts_with("62 % of the run was cluster start-up (2.500 s: a local Dask cluster of 2 workers): an"),
            "{}",
            found[0].text
        );
        // No cluster at all (the in-process twin): no report, no hint.
        let none = run(24, None, 0);
        assert_eq!(none.report(6000.0, 80_000_000), None);
        assert!(hints(None, 24).is_empty());
        // Workers that never worked: the whole run was start-up.
        let idle = run(16, Some(2), usize::MAX).report(4000.0, 1_000);
        let idle = idle.expect("a cluster");
        assert!(!idle.worked);
        assert!(hints(Some(&idle), 16)[0].text.contains("never did real work"));
        // A busy first sample of the cluster is its own start-up, not work.
        let first = run(16, Some(4), 4).report(4000.0, 1_000).expect("a cluster");
        assert_eq!(first.startup_ms, 1500.0);
    }
}
