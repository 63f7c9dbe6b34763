//! Per-thread CPU on real Python programs without a GPU: a main thread waiting on a pinned
//! loader thread or worker process is input-bound (cause cpu) with the loader named (and, from
//! the Python profile, the queue `get` the main thread waited in), a plain CPU
//! loop stays CPU-bound, and the threads land in the history's `thread_samples`.

use serde_json::Value;

use crate::harness::{json_rows, run_finished, Project};

/// A project whose looptop sees no GPU, even on a machine with one.
fn without_gpu() -> Project {
    Project::new().with_env("LOOPTOP_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
}

/// A training loop in miniature: a `loader` (thread or process, by its first argument) spends
/// 40 ms of CPU on each item; the main thread takes items from a queue and spends 2 ms on each,
/// for 2.4 s.
const FEED: &str = r#"
import ctypes, multiprocessing, queue, sys, threading, time

def spin(cpu_s):
    end = time.thread_time() + cpu_s
    n = 0
    while time.thread_time() < end:
        n += 1
    return n

def produce(put):
    ctypes.CDLL(None).prctl(15, b"loader", 0, 0, 0)
    while True:
        put(spin(0.04))

if sys.argv[1] == "thread":
    ready = queue.Queue(maxsize=2)
    threading.Thread(target=produce, args=(ready.put,), daemon=True).start()
else:
    ready = multiprocessing.Queue(maxsize=2)
    multiprocessing.Process(target=produce, args=(ready.put,), daemon=True).start()
end = time.time() + 2.4
while time.time() < end:
    ready.get()
    spin(0.002)
"#;

fn verdict(events: &[Value]) -> Value {
    run_finished(events)["verdict"].clone()
}

/// Asserts `v` is input-bound on the CPU, waiting for a producer of `kind` named `loader`.
fn assert_waits_for_loader(v: &Value, kind: &str) {
    assert_eq!(
        (v["kind"].as_str(), v["cause"].as_str()),
        (Some("input-bound"), Some("cpu")),
        "{v:#}"
    );
    assert_eq!(v["producer"]["name"], "loader", "{v:#}");
    assert_eq!(v["producer"]["kind"], kind, "{v:#}");
    assert!(v["consumer_wait_pct"].as_f64().is_some_and(|w| w >= 20.0), "{v:#}");
    let summary = v["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("input-bound: the main thread waited") && summary.contains("`loader`"),
        "{v:#}"
    );
    assert_eq!(v["hints"][0]["id"], "more-workers", "{v:#}");
    // The Python profile names where the main thread waited: the queue's `get`.
    let queue = if kind == "thread" {
        "queue.py"
    } else {
        "multiprocessing/queues.py"
    };
    let at = v["waits_in"].as_str().unwrap_or_default();
    assert!(at.starts_with(&format!("Queue.get ({queue}:")), "{v:#}");
    assert!(summary.ends_with(&format!("; it waited in {at}")), "{v:#}");
}

#[test]
fn a_thread_loader_without_a_gpu_is_input_bound_and_its_threads_are_recorded() {
    let project = without_gpu();
    project.write("feed.py", FEED);
    let events = project.run_once_json("python3 feed.py thread");
    let v = verdict(&events);
    assert_waits_for_loader(&v, "thread");
    // The threads are in the history by name, the main process marked.
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT name, count(*) AS n, max(cpu_pct) AS peak, bool_or(tid = pid) AS main_thread, \
                 bool_and(main_process) AS main FROM thread_samples GROUP BY name ORDER BY peak DESC",
                "--json",
            ])
            .stdout,
    );
    let loader = rows
        .iter()
        .find(|r| r["name"] == "loader")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(loader["n"].as_u64().is_some_and(|n| n >= 4), "{rows:#?}");
    assert_eq!(
        (&loader["main_thread"], &loader["main"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    assert!(
        rows.iter().any(|r| r["name"] == "python3" && r["main_thread"] == true),
        "the main thread is kept however idle: {rows:#?}"
    );
    let runs = json_rows(
        &project
            .run(&[
                "query",
                "SELECT verdict, verdict_cause, consumer_wait_pct, producer_kind, producer_name FROM runs",
                "--json",
            ])
            .stdout,
    );
    assert_eq!(
        (
            &runs[0]["verdict"],
            &runs[0]["verdict_cause"],
            &runs[0]["producer_kind"],
            &runs[0]["producer_name"]
        ),
        (
            &Value::from("input-bound"),
            &Value::from("cpu"),
            &Value::from("thread"),
            &Value::from("loader")
        ),
        "{runs:#?}"
    );
    assert_eq!(runs[0]["consumer_wait_pct"], v["consumer_wait_pct"]);
}

#[test]
fn a_worker_process_loader_without_a_gpu_is_input_bound() {
    let project = without_gpu();
    project.write("feed.py", FEED);
    let v = verdict(&project.run_once_json("python3 feed.py process"));
    assert_waits_for_loader(&v, "process");
    assert!(
        v["summary"]
            .as_str()
            .is_some_and(|s| s.contains("worker process `loader` (pid ")),
        "{v:#}"
    );
}

#[test]
fn a_plain_cpu_loop_stays_cpu_bound_and_one_busy_core_of_two_is_no_parallelism() {
    let project = without_gpu();
    // Behind a shell that waits for it: the loop is still the job's main process.
    let events =
        project.run_once_json("python3 -c \"exec('import time\\nt=time.time()\\nwhile time.time()-t<2: pass')\"; true");
    let v = verdict(&events);
    assert!(v["consumer_wait_pct"].as_f64().is_some_and(|w| w < 20.0), "{v:#}");
    // On a machine shared with other work the loop may queue for its core: contended, never
    // input-bound.
    assert!(v["kind"] == "cpu-bound" || v["kind"] == "contended", "{v:#}");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if v["kind"] == "cpu-bound" && cores >= 2 {
        let hints = v["hints"].as_array().cloned().unwrap_or_default();
        assert!(hints.iter().any(|h| h["id"] == "no-parallelism"), "{v:#}");
    }
}
