//! Diagnosis: pure functions that say why a loop is slow. `verdict` classifies one run from its
//! samples (GPU-bound, input-bound, GPU unused, contended, CPU- or I/O-bound, waiting) with the evidence,
//! `consumer` finds a main thread waiting on a busy loader thread or worker process,
//! `hints` turns the evidence into at most three actionable lines, `stall` spots a starved GPU
//! live, `regression` compares a run's duration with the job's recent runs, and `per_test`
//! judges a test job's tests one by one the same way. For query jobs, `query` reads DuckDB's
//! profile into `plan`'s operator tree, and `data` reads the data hints (join fan-out, columnar,
//! pruning, types, sparse columns, sampling) off it. `python` reads the hints off a run's Python
//! profile (`python-loop`, `hot-function`). For any job, `files_read` sums up the data files its
//! processes read (`columnar` for text), and `cluster` a local Spark, Dask or Ray cluster in its
//! tree (`local-cluster`). Every threshold lives in `thresholds`.

pub mod cluster;
pub mod consumer;
pub mod data;
pub mod files_read;
pub mod gpus;
pub mod hints;
pub mod metrics;
pub mod per_test;
pub mod plan;
pub mod python;
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
    /// The job's consuming thread (the main thread of its main process); `None` when its
    /// threads were not read.
    pub consumer: Option<Consumer>,
    /// The job's busiest other thread (by the core it wanted), of the main process or of another
    /// process of the tree; `None` without a consumer.
    pub producer: Option<Producer>,
}

/// The job's consuming thread in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Consumer {
    /// CPU in % of one core.
    pub cpu_pct: f32,
    /// Share of the interval it neither ran nor waited for a CPU (waited for its input, a lock,
    /// I/O), 0-100.
    pub idle_pct: f32,
}

/// A thread that may feed the consumer, in one sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Producer {
    /// Its process.
    pub pid: u32,
    /// The thread.
    pub tid: u32,
    /// The thread's name (`loader`; a worker process's main thread has the process's name).
    pub name: String,
    /// CPU in % of one core.
    pub cpu_pct: f32,
    /// CPU plus the time it waited for a CPU, in % of one core: how much of a core it wanted.
    pub demand_pct: f32,
    /// Whether it belongs to another process than the consumer's (a worker process).
    pub worker: bool,
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
        let main = sample.tree.main_process();
        let consumer = main.and_then(|m| m.threads.iter().find(|t| t.tid == m.pid));
        // In a local cluster (Dask, Spark, Ray) the main process waits on its workers by design:
        // they do the job's work, they do not feed it. Only its own threads can be loaders.
        let feeds = |pid: u32| sample.tree.cluster.is_none() || Some(pid) == sample.tree.main_pid;
        let producer = consumer.and_then(|consumer| {
            sample
                .tree
                .top
                .iter()
                .filter(|p| feeds(p.pid))
                .flat_map(|p| p.threads.iter().map(move |t| (p.pid, t)))
                .filter(|(_, t)| t.tid != consumer.tid)
                .max_by(|(_, a), (_, b)| {
                    a.demand_pct()
                        .total_cmp(&b.demand_pct())
                        .then(a.cpu_pct.total_cmp(&b.cpu_pct))
                })
                .map(|(pid, t)| Producer {
                    pid,
                    tid: t.tid,
                    name: t.name.clone(),
                    cpu_pct: t.cpu_pct,
                    demand_pct: t.demand_pct(),
                    worker: Some(pid) != sample.tree.main_pid,
                })
        });
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
            consumer: consumer.map(|t| Consumer {
                cpu_pct: t.cpu_pct,
                idle_pct: t.idle_pct(),
            }),
            producer,
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_cluster_clients_workers_are_not_its_loaders() {
        use crate::sample::{ClusterEngine, ClusterSample, ProcessSample, ThreadSample, TreeSample};
        let process = |pid: u32, cpu_pct: f32| ProcessSample {
            pid,
            name: "python3".into(),
            cpu_pct,
            threads: vec![ThreadSample {
                tid: pid,
                name: "python3".into(),
                cpu_pct,
                run_queue_pct: Some(0.0),
            }],
            ..ProcessSample::default()
        };
        let mut sample = crate::sample::Sample {
            key: crate::sample::RunKey(1),
            t_ms: 250.0,
            host: crate::sample::HostSample::default(),
            tree: TreeSample {
                top: vec![process(43, 95.0), process(42, 3.0)],
                main_pid: Some(42),
                ..TreeSample::default()
            },
            gpus: Vec::new(),
        };
        // A worker process of a plain job feeds its main process ...
        assert_eq!(super::Point::of(&sample).producer.map(|p| p.pid), Some(43));
        // ... a local cluster's worker does the work itself.
        sample.tree.cluster = Some(ClusterSample {
            engine: ClusterEngine::Dask,
            processes: 3,
            workers: 1,
            worker_cpu_pct: 95.0,
        });
        assert_eq!(super::Point::of(&sample).producer, None);
    }

    use super::*;
    use crate::event::RunKey;
    use crate::sample::{ProcessSample, ThreadSample, TreeSample};

    fn thread(tid: u32, name: &str, cpu_pct: f32, run_queue_pct: f32) -> ThreadSample {
        ThreadSample {
            tid,
            name: name.into(),
            cpu_pct,
            run_queue_pct: Some(run_queue_pct),
        }
    }

    fn sample(top: Vec<ProcessSample>, main_pid: Option<u32>) -> Sample {
        Sample {
            key: RunKey(1),
            t_ms: 250.0,
            host: crate::sample::HostSample::default(),
            tree: TreeSample {
                top,
                main_pid,
                ..TreeSample::default()
            },
            gpus: Vec::new(),
        }
    }

    #[test]
    fn the_consumer_is_the_main_processs_main_thread_and_the_producer_the_busiest_other_thread() {
        let trainer = ProcessSample {
            pid: 10,
            name: "python3".into(),
            cpu_pct: 101.0,
            threads: vec![
                thread(11, "loader", 60.0, 35.0),
                thread(12, "python3", 40.0, 0.0),
                thread(10, "python3", 1.0, 2.0),
            ],
            ..ProcessSample::default()
        };
        let point = Point::of(&sample(vec![trainer.clone()], Some(10)));
        assert_eq!(
            point.consumer,
            Some(Consumer {
                cpu_pct: 1.0,
                idle_pct: 97.0
            })
        );
        // By the core it wanted: the loader queued for a CPU counts as busy.
        let producer = point.producer.expect("a producer");
        assert_eq!(
            (producer.name.as_str(), producer.demand_pct, producer.worker),
            ("loader", 95.0, false)
        );
        // A worker process busier than any thread of the main process.
        let worker = ProcessSample {
            pid: 20,
            name: "python3".into(),
            cpu_pct: 100.0,
            threads: vec![thread(20, "python3", 100.0, 0.0)],
            ..ProcessSample::default()
        };
        let point = Point::of(&sample(vec![worker.clone(), trainer.clone()], Some(10)));
        let producer = point.producer.expect("a producer");
        assert_eq!((producer.pid, producer.tid, producer.worker), (20, 20, true));
        // No main process known (a shell waiting for several children): no consumer, no producer.
        let point = Point::of(&sample(vec![worker, trainer], None));
        assert_eq!((point.consumer, point.producer), (None, None));
    }
}
