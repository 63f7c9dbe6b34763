//! A consumer waiting for its producer: the job's main thread (the main thread of its main
//! process, which takes the batches) idle, neither running nor ready to run, while another thread
//! of the job (a `loader` thread, a DataLoader worker process) is busy. Per-thread CPU and
//! run-queue time tell it without looking at any stack; the Python profile, where there is one,
//! adds where the consumer waits (`waits_in`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::thresholds::PRODUCER_BUSY_PCT;
use super::verdict::{mean, median};
use super::Point;

/// Whether the producer is a thread of the consumer's process or a process of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProducerKind {
    /// A thread of the job's main process.
    Thread,
    /// Another process of the job (a worker).
    Process,
}

impl ProducerKind {
    /// The name used in JSON and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            ProducerKind::Thread => "thread",
            ProducerKind::Process => "process",
        }
    }
}

/// The thread the consumer waited for, as the verdict shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducerEvidence {
    /// A thread of the main process, or a worker process.
    pub kind: ProducerKind,
    /// The thread's name (a worker process's main thread carries the process's name).
    pub name: String,
    /// Its process.
    pub pid: u32,
    /// The thread.
    pub tid: u32,
    /// Its CPU while the consumer waited (median), in % of one core.
    pub cpu_pct: f64,
    /// CPU plus time waiting for a CPU while the consumer waited (median), in % of one core.
    #[serde(skip)]
    pub demand_pct: f64,
}

impl ProducerEvidence {
    /// "thread `loader`", "worker process `python3` (pid 4242)".
    pub fn label(&self) -> String {
        match self.kind {
            ProducerKind::Thread => format!("thread `{}`", self.name),
            ProducerKind::Process => format!("worker process `{}` (pid {})", self.name, self.pid),
        }
    }
}

/// What a run's samples say of its consumer waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// Share of the run in which the consumer waited while another thread was busy, 0-100:
    /// each sample counts its consumer's idle share when its producer wanted at least
    /// `PRODUCER_BUSY_PCT` of a core, and 0 otherwise.
    pub wait_pct: f64,
    /// The consumer's mean CPU over those samples, % of one core (a consumer takes what arrives
    /// and uses it; a launcher or a test harness that only waits does not).
    pub consumer_cpu_pct: f64,
    /// The thread that was busy most often while the consumer waited.
    pub producer: Option<ProducerEvidence>,
    /// Mean disk read rate of the job over those samples, bytes per second.
    pub read_bytes_per_s: f64,
}

/// The consumer's waiting over `points`; `None` when its threads were never read.
pub fn waits(points: &[Point]) -> Option<Wait> {
    if points.is_empty() || points.iter().all(|p| p.consumer.is_none()) {
        return None;
    }
    let waiting: Vec<&Point> = points
        .iter()
        .filter(|p| p.consumer.is_some() && p.producer.as_ref().is_some_and(|t| t.demand_pct >= PRODUCER_BUSY_PCT))
        .collect();
    let idle = waiting
        .iter()
        .filter_map(|p| p.consumer)
        .fold(0.0, |sum, c| sum + f64::from(c.idle_pct));
    // The thread busy in the most of those samples.
    let mut seen: BTreeMap<(u32, u32), Vec<&Point>> = BTreeMap::new();
    for point in &waiting {
        if let Some(producer) = &point.producer {
            seen.entry((producer.pid, producer.tid)).or_default().push(point);
        }
    }
    let producer = seen.into_values().max_by_key(Vec::len).and_then(|samples| {
        let thread = |p: &&Point| p.producer.clone();
        let last = samples.last().and_then(thread)?;
        Some(ProducerEvidence {
            kind: if last.worker {
                ProducerKind::Process
            } else {
                ProducerKind::Thread
            },
            cpu_pct: median(samples.iter().filter_map(thread).map(|t| f64::from(t.cpu_pct)))?,
            demand_pct: median(samples.iter().filter_map(thread).map(|t| f64::from(t.demand_pct)))?,
            name: last.name,
            pid: last.pid,
            tid: last.tid,
        })
    });
    Some(Wait {
        wait_pct: idle / points.len() as f64,
        consumer_cpu_pct: mean(waiting.iter().filter_map(|p| p.consumer).map(|c| f64::from(c.cpu_pct))).unwrap_or(0.0),
        producer,
        read_bytes_per_s: mean(waiting.iter().map(|p| p.read_bytes_per_s)).unwrap_or(0.0),
    })
}

/// Test series: `n` samples every 250 ms without a GPU on `cores` cores, the consumer at
/// `consumer_cpu` % of a core (idle the rest) and a producer thread named `name` at `producer_cpu`.
#[cfg(test)]
pub(crate) fn feeding(
    n: usize,
    cores: u32,
    consumer_cpu: f32,
    name: &str,
    producer_cpu: f32,
    worker: bool,
) -> Vec<Point> {
    (1..=n)
        .map(|i| Point {
            t_ms: 250.0 * i as f64,
            cores,
            tree_cpu_pct: consumer_cpu + producer_cpu,
            busiest_cpu_pct: if worker {
                producer_cpu.max(consumer_cpu)
            } else {
                consumer_cpu + producer_cpu
            },
            run_queue_delay_pct: Some(0.0),
            host_cpu_pct: (consumer_cpu + producer_cpu) / cores as f32,
            consumer: Some(super::Consumer {
                cpu_pct: consumer_cpu,
                idle_pct: 100.0 - consumer_cpu,
            }),
            producer: Some(super::Producer {
                pid: if worker { 43 } else { 42 },
                tid: 43,
                name: name.to_string(),
                cpu_pct: producer_cpu,
                demand_pct: producer_cpu,
                worker,
            }),
            ..Point::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_main_thread_waiting_on_a_busy_loader_waits_its_idle_share() {
        let mut points = feeding(8, 2, 5.0, "loader", 99.0, false);
        // Start-up: the main thread busy, the loader not started.
        points[0].consumer = Some(crate::diagnose::Consumer {
            cpu_pct: 100.0,
            idle_pct: 0.0,
        });
        points[0].producer = None;
        let wait = waits(&points).expect("threads were read");
        assert!((wait.wait_pct - 95.0 * 7.0 / 8.0).abs() < 1e-9, "{wait:?}");
        assert_eq!(wait.consumer_cpu_pct, 5.0);
        let producer = wait.producer.expect("a producer");
        assert_eq!(
            (producer.kind, producer.name.as_str(), producer.cpu_pct),
            (ProducerKind::Thread, "loader", 99.0)
        );
        assert_eq!(producer.label(), "thread `loader`");
    }

    #[test]
    fn an_idle_other_thread_makes_no_wait_and_no_threads_no_answer() {
        // The main thread sleeps, and so does everything else: waiting, but not for a producer.
        let points = feeding(8, 2, 0.0, "python3", 2.0, false);
        let wait = waits(&points).expect("threads were read");
        assert_eq!((wait.wait_pct, wait.producer), (0.0, None));
        let unread: Vec<Point> = points
            .into_iter()
            .map(|p| Point {
                consumer: None,
                producer: None,
                ..p
            })
            .collect();
        assert_eq!(waits(&unread), None);
    }

    #[test]
    fn a_worker_process_is_named_as_one() {
        let wait = waits(&feeding(8, 4, 12.0, "python3", 100.0, true)).expect("read");
        let producer = wait.producer.expect("a producer");
        assert_eq!(producer.kind, ProducerKind::Process);
        assert_eq!(producer.label(), "worker process `python3` (pid 43)");
    }
}
