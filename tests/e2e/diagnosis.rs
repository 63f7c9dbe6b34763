//! The diagnosis on real runs: real processes (a busy loader, a sleeper) against the fake NVML
//! scripted to match, the verdict in `run_finished`, the live `stall` event, and a duration
//! regression found against the history of earlier looptop processes.

use serde_json::Value;

use crate::fake_nvml::{fake_nvml_lib, Script};
use crate::harness::{json_rows, run_finished, Hog, Project};

/// A project whose looptop loads the fake NVML, with one GPU at `util` %.
fn gpu_at(util: u32) -> (Project, Script) {
    let project = Project::new();
    let script = Script::new(project.scratch.path().join("nvml.script"));
    script
        .set("gpu.0.util", util)
        .set("gpu.0.mem_total", 80_000_000_000_u64);
    let project = project
        .with_env("LOOPTOP_NVML_LIB", fake_nvml_lib(false).display().to_string())
        .with_env("FAKE_NVML_SCRIPT", script.path().display().to_string());
    (project, script)
}

/// A shell command that puts its own process on the fake GPU (with `bytes` of memory), then runs `rest`.
fn on_gpu(script: &Script, bytes: u64, rest: &str) -> String {
    format!(
        "echo \"gpu.0.procs = $$:{bytes}\" >> {}; {rest}",
        script.path().display()
    )
}

fn verdict(events: &[Value]) -> Value {
    run_finished(events)["verdict"].clone()
}

#[test]
fn a_busy_loader_on_a_starved_gpu_is_input_bound_and_stalls_are_reported_live() {
    let (project, script) = gpu_at(3);
    let busy = "python3 -c \"exec('import time\\nt=time.time()\\nwhile time.time()-t<2.2: pass')\"";
    let events = project.run_once_json(&on_gpu(&script, 8_000_000_000, busy));
    let stall = events
        .iter()
        .find(|e| e["event"] == "stall")
        .unwrap_or_else(|| panic!("no live stall event: {events:#?}"));
    let finished_at = events.iter().position(|e| e["event"] == "run_finished");
    assert!(
        events.iter().position(|e| e["event"] == "stall") < finished_at,
        "live, before the end"
    );
    assert!(stall["since_ms"].as_f64().is_some_and(|s| s < 1000.0), "{stall}");
    let v = verdict(&events);
    assert_eq!(v["kind"], "input-bound", "{v:#}");
    assert!(v["stalls"].as_u64().is_some_and(|n| n >= 1), "{v:#}");
    assert!(v["gpu_busy_pct"].as_f64().is_some_and(|b| b < 10.0), "{v:#}");
    assert_eq!(v["gpu_mem_peak_pct"], 10.0, "{v:#}");
    // The cause follows the evidence: a loader that got a whole core is "cpu" with the hint.
    let busiest = v["busiest_cpu_pct"].as_f64().unwrap_or(0.0);
    if busiest >= 90.0 {
        assert_eq!(v["cause"], "cpu", "{v:#}");
        assert!(
            v["hints"][0]["id"] == "more-workers"
                && v["hints"][0]["text"]
                    .as_str()
                    .is_some_and(|h| h.contains("num_workers")),
            "{v:#}"
        );
    }
    let human = project.run(&["run", "--once", "--", &on_gpu(&script, 1, "sleep 1.6")]);
    assert!(
        human.stderr.contains("⚠ echo: the GPU has been starved"),
        "{}",
        human.stderr
    );
    assert!(human.stderr.contains("input-bound: GPU busy 3 %"), "{}", human.stderr);
}

#[test]
fn a_sleeper_on_a_starved_gpu_is_input_bound_idle() {
    let (project, script) = gpu_at(0);
    let events = project.run_once_json(&on_gpu(&script, 1_000_000, "sleep 1.5"));
    let v = verdict(&events);
    assert_eq!(
        (v["kind"].as_str(), v["cause"].as_str()),
        (Some("input-bound"), Some("idle")),
        "{v:#}"
    );
    let rows = json_rows(
        &project
            .run(&["query", "SELECT verdict, verdict_cause, stalls FROM runs", "--json"])
            .stdout,
    );
    assert_eq!(rows[0]["verdict"], "input-bound", "{rows:?}");
    assert_eq!(rows[0]["verdict_cause"], "idle");
    assert_eq!(rows[0]["stalls"], v["stalls"]);
}

#[test]
fn a_disk_reader_on_a_starved_gpu_is_input_bound_on_io() {
    let (project, script) = gpu_at(2);
    let data = project.scratch.path().join("shard.bin");
    std::fs::write(&data, vec![7u8; 64 << 20]).expect("write a data shard");
    // Direct reads bypass the page cache, so every pass really reads the disk.
    let reader = format!(
        "end=$(( $(date +%s%N) + 1600000000 )); while [ $(date +%s%N) -lt $end ]; do \
         dd if={} of=/dev/null bs=1M iflag=direct status=none; done",
        data.display()
    );
    let events = project.run_once_json(&on_gpu(&script, 1_000_000, &reader));
    let v = verdict(&events);
    assert_eq!(
        (v["kind"].as_str(), v["cause"].as_str()),
        (Some("input-bound"), Some("io")),
        "{v:#}"
    );
    assert!(v["read_mb_per_s"].as_f64().is_some_and(|r| r >= 20.0), "{v:#}");
}

#[test]
fn a_busy_gpu_is_gpu_bound_and_free_memory_suggests_a_bigger_batch() {
    let (project, script) = gpu_at(96);
    let events = project.run_once_json(&on_gpu(&script, 4_000_000_000, "sleep 1.2"));
    let v = verdict(&events);
    assert_eq!(v["kind"], "gpu-bound", "{v:#}");
    assert_eq!(v["stalls"], 0);
    assert!(v["hints"].as_array().is_some_and(|h| h
        .iter()
        .any(|h| h["id"] == "batch-could-grow" && h["text"].as_str().is_some_and(|h| h.contains("batch could grow")))));
}

#[test]
fn a_long_job_that_never_touches_the_gpu_is_told_so() {
    let (project, script) = gpu_at(50);
    script.set("gpu.0.procs", "1:1000");
    let events = project.run_once_json("sleep 3.3");
    let v = verdict(&events);
    if !crate::harness::in_host_pid_namespace() {
        assert_ne!(v["kind"], "gpu-unused", "in a container absence proves nothing: {v:#}");
        return;
    }
    assert_eq!(v["kind"], "gpu-unused", "{v:#}");
    assert!(
        v["hints"][0]["id"] == "model-not-on-gpu"
            && v["hints"][0]["text"]
                .as_str()
                .is_some_and(|h| h.contains("never touched the GPU")),
        "{v:#}"
    );
}

#[test]
fn without_a_gpu_a_sleeper_is_waiting_and_a_short_run_is_too_short() {
    let project = Project::new();
    let v = verdict(&project.run_once_json("sleep 1.3"));
    assert_eq!(v["kind"], "waiting", "{v:#}");
    assert_eq!(v["gpu_busy_pct"], Value::Null);
    let v = verdict(&project.run_once_json("true"));
    assert_eq!(v["kind"], "too-short", "{v:#}");
}

#[test]
fn a_job_sharing_its_core_with_other_work_is_contended_not_waiting() {
    let project = Project::new();
    // Another process busy on core 0, and the job pinned there too: it is ready to run half
    // of the time and waits for the core the other half.
    // The hog runs in a session of its own, as looptop's job does: with autogroup scheduling a
    // CPU is shared between sessions first, and the test runner's busy session must not dilute it.
    let _hog = Hog::under(&["setsid", "taskset", "-c", "0"]);
    let busy = "taskset -c 0 python3 -c \"exec('import time\\nt=time.time()\\nwhile time.time()-t<2: pass')\"";
    let events = project.run_once_json(busy);
    let v = verdict(&events);
    assert_eq!(v["kind"], "contended", "{v:#}");
    assert!(v["run_queue_delay_pct"].as_f64().is_some_and(|q| q >= 25.0), "{v:#}");
    assert!(v["host_cpu_pct"].as_f64().is_some_and(|h| h > 0.0), "{v:#}");
    assert!(
        v["summary"]
            .as_str()
            .is_some_and(|s| s.contains("waiting for a CPU") && s.contains("host CPU")),
        "{v:#}"
    );
    let run = run_finished(&events);
    assert!(
        run["run_queue_delay_pct"].as_f64().is_some_and(|q| q >= 25.0),
        "{run:#}"
    );
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT (SELECT verdict FROM runs) AS verdict, (SELECT run_queue_delay_pct FROM runs) AS run_pct, \
                 (SELECT max(run_queue_delay_pct) FROM samples) AS sample_pct",
                "--json",
            ])
            .stdout,
    );
    assert_eq!(rows[0]["verdict"], "contended", "{rows:?}");
    assert!(rows[0]["run_pct"].as_f64().is_some_and(|q| q >= 25.0), "{rows:?}");
    assert!(rows[0]["sample_pct"].as_f64().is_some_and(|q| q >= 25.0), "{rows:?}");
}

#[test]
fn a_slower_run_is_flagged_against_the_history_of_earlier_looptops() {
    let project = Project::new();
    let seconds = project.scratch.path().join("seconds");
    let cmd = format!("sleep $(cat {})", seconds.display());
    std::fs::write(&seconds, "0.2").expect("write");
    for _ in 0..5 {
        let events = project.run_once_json(&cmd);
        assert_eq!(run_finished(&events)["regression"], Value::Null, "{events:#?}");
    }
    std::fs::write(&seconds, "0.9").expect("write");
    let events = project.run_once_json(&cmd);
    let regression = &run_finished(&events)["regression"];
    assert_eq!(regression["flag"], "slower", "{regression:#}");
    assert_eq!(regression["baseline_runs"], 5);
    assert!(regression["ratio"].as_f64().is_some_and(|r| r > 2.5), "{regression:#}");
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT count(*) FILTER (regression = 'slower') AS slower FROM runs",
                "--json",
            ])
            .stdout,
    );
    assert_eq!(rows[0]["slower"], 1);
}
