//! Per-thread CPU of a run's busiest processes and of its main process: each thread's name and
//! user plus system time from `/proc/<pid>/task/<tid>/stat`, its run-queue wait from the
//! `schedstat` readings the process reading already took, and the changes between two readings
//! of the same thread (known by its tid *and* start time).
//!
//! Cheap by construction: only the `THREAD_PROCESSES` busiest processes that use any CPU and the
//! main process are read, at most `MAX_THREADS_READ` threads each, and each keeps its
//! `TOP_THREADS` busiest. A thread that exits between the listing and the reading is skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use super::counters::{cpu_pct, parse_stat};
use crate::sample::{ThreadSample, TreeSample, TOP_THREADS};

/// The threads of this many of the busiest processes are read (the main process besides).
pub const THREAD_PROCESSES: usize = 3;

/// At most this many threads of one process are read per sample (its main thread first).
pub const MAX_THREADS_READ: usize = 64;

/// A process below this share of one core has no thread worth reading (unless it is the main one).
const IDLE_PROCESS_PCT: f32 = 1.0;

/// What the meter remembers of a thread.
#[derive(Debug, Clone)]
struct Seen {
    start_ticks: u64,
    cpu_ticks: u64,
    run_queue_ns: Option<u64>,
    at: Instant,
}

/// One run's previous thread readings.
#[derive(Debug, Clone, Default)]
pub struct ThreadMeter {
    seen: HashMap<u32, Seen>,
}

impl ThreadMeter {
    /// Reads the threads of `tree`'s busiest and main processes under `proc_root` at `at` and
    /// puts them in their `ProcessSample::threads`; `run_queue_ns` holds each process's
    /// per-thread run-queue waits, `uptime_s` gives a first-seen thread its average since it started.
    pub fn fill(
        &mut self,
        proc_root: &Path,
        tree: &mut TreeSample,
        run_queue_ns: &HashMap<u32, BTreeMap<u32, u64>>,
        at: Instant,
        uptime_s: Option<f64>,
    ) {
        let main = tree.main_pid;
        let mut next = HashMap::new();
        for (rank, process) in tree.top.iter_mut().enumerate() {
            let is_main = Some(process.pid) == main;
            if !is_main && (rank >= THREAD_PROCESSES || process.cpu_pct < IDLE_PROCESS_PCT) {
                continue;
            }
            let queues = run_queue_ns.get(&process.pid);
            let mut threads = Vec::new();
            for tid in thread_ids(proc_root, process.pid) {
                let path = proc_root
                    .join(process.pid.to_string())
                    .join("task")
                    .join(tid.to_string())
                    .join("stat");
                // Gone since the listing: skipped.
                let Some(reading) = std::fs::read_to_string(path).ok().and_then(|s| parse_stat(&s, 1)) else {
                    continue;
                };
                let queued = queues.and_then(|q| q.get(&tid)).copied();
                let before = self.seen.get(&tid).filter(|s| s.start_ticks == reading.id.start_ticks);
                let run_queue_pct = match (before, queued) {
                    (Some(before), Some(now)) => {
                        let wall = at.saturating_duration_since(before.at).as_secs_f64();
                        before
                            .run_queue_ns
                            .filter(|_| wall > 0.0)
                            .map(|then| (now.saturating_sub(then) as f64 / wall / 1e7) as f32)
                    }
                    _ => None,
                };
                threads.push(ThreadSample {
                    tid,
                    name: reading.name,
                    cpu_pct: cpu_pct(
                        reading.cpu_ticks,
                        before.map(|b| (b.cpu_ticks, b.at)),
                        reading.id.start_ticks,
                        at,
                        uptime_s,
                    ),
                    run_queue_pct,
                });
                next.insert(
                    tid,
                    Seen {
                        start_ticks: reading.id.start_ticks,
                        cpu_ticks: reading.cpu_ticks,
                        run_queue_ns: queued,
                        at,
                    },
                );
            }
            process.threads = busiest(threads, process.pid);
        }
        self.seen = next;
    }
}

/// The `TOP_THREADS` busiest of `threads`, and the main thread (`tid == pid`) however idle.
fn busiest(mut threads: Vec<ThreadSample>, pid: u32) -> Vec<ThreadSample> {
    threads.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.tid.cmp(&b.tid)));
    let main_cut = threads
        .iter()
        .position(|t| t.tid == pid)
        .filter(|&at| at >= TOP_THREADS);
    if let Some(at) = main_cut {
        threads.swap(TOP_THREADS, at);
    }
    threads.truncate(TOP_THREADS + usize::from(main_cut.is_some()));
    threads
}

/// The ids of `pid`'s threads, its main thread first, at most `MAX_THREADS_READ`.
fn thread_ids(proc_root: &Path, pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(proc_root.join(pid.to_string()).join("task")) else {
        return Vec::new();
    };
    let mut tids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|&tid| (tid != pid, tid));
    tids.truncate(MAX_THREADS_READ);
    tids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::ProcessSample;
    use std::time::Duration;

    /// A tree of one busy process, `pid`, the job's main process, before its threads are read.
    fn busy_tree(pid: u32) -> TreeSample {
        TreeSample {
            top: vec![ProcessSample {
                pid,
                cpu_pct: 100.0,
                ..ProcessSample::default()
            }],
            main_pid: Some(pid),
            ..TreeSample::default()
        }
    }

    fn thread(tid: u32, cpu_pct: f32) -> ThreadSample {
        ThreadSample {
            tid,
            name: format!("t{tid}"),
            cpu_pct,
            run_queue_pct: None,
        }
    }

    #[test]
    fn the_busiest_threads_are_kept_and_the_main_one_however_idle() {
        let threads = (1..=10).map(|i| thread(100 + i, i as f32 * 10.0)).collect();
        let kept: Vec<u32> = busiest(threads, 101).iter().map(|t| t.tid).collect();
        assert_eq!(kept, vec![110, 109, 108, 107, 101]);
        let few = busiest(vec![thread(7, 0.0), thread(8, 50.0)], 7);
        assert_eq!(few.iter().map(|t| t.tid).collect::<Vec<_>>(), vec![8, 7]);
    }

    #[test]
    fn a_pinned_thread_is_told_from_its_waiting_main_thread_and_named() {
        use crate::sources::sampler::counters::read;
        // The main thread waits on a pipe while a thread named `spinner` spins.
        let script = "import ctypes, threading, sys\n\
                      def spin():\n    ctypes.CDLL(None).prctl(15, b'spinner', 0, 0, 0)\n    while True: pass\n\
                      threading.Thread(target=spin, daemon=True).start()\n\
                      sys.stdin.read()\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let pid = child.id();
        let proc_root = Path::new("/proc");
        let mut meter = ThreadMeter::default();
        let mut tree = TreeSample::default();
        // Python may take a while to start on a loaded machine: read until the spinner has been
        // seen twice (a rate needs two readings).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        while seen < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(300));
            tree = busy_tree(pid);
            let queues: HashMap<u32, BTreeMap<u32, u64>> = read(proc_root, pid, 4096)
                .and_then(|r| r.run_queue_ns)
                .map(|q| HashMap::from([(pid, q)]))
                .unwrap_or_default();
            meter.fill(proc_root, &mut tree, &queues, Instant::now(), None);
            if tree.top[0].threads.iter().any(|t| t.name == "spinner") {
                seen += 1;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let threads = &tree.top[0].threads;
        let spinner = threads.iter().find(|t| t.name == "spinner");
        let main = threads.iter().find(|t| t.tid == pid);
        // The spinner runs or waits for a core all the time (however loaded the machine, where
        // the kernel keeps schedstats); the main thread sleeps.
        let spinner = spinner.unwrap_or_else(|| panic!("no spinner: {threads:?}"));
        assert!(spinner.cpu_pct > 1.0, "{threads:?}");
        if spinner.run_queue_pct.is_some() {
            assert!(spinner.demand_pct() > 80.0 && spinner.idle_pct() < 20.0, "{threads:?}");
        }
        let main = main.unwrap_or_else(|| panic!("no main thread: {threads:?}"));
        assert!(main.cpu_pct < spinner.cpu_pct && main.idle_pct() > 50.0, "{threads:?}");
        // A process that is gone is skipped, not an error.
        let mut gone = busy_tree(pid);
        meter.fill(proc_root, &mut gone, &HashMap::new(), Instant::now(), None);
        assert!(gone.top[0].threads.is_empty());
    }
}
