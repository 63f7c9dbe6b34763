//! GPUs through the fake NVML library (built from tests/fake-nvml and loaded by the same
//! nvml-wrapper path a real driver uses): readings arrive, the job's share is attributed to its
//! own process tree, and every failure mode degrades to "what can be shown, said once".

use serde_json::Value;

use crate::fake_nvml::{fake_nvml_lib, Script};
use crate::harness::{json_rows, run_finished, Project};

/// A project whose looptop loads the fake library, scripted by the returned script.
fn gpu_project(legacy: bool) -> (Project, Script) {
    let project = Project::new();
    let script = Script::new(project.scratch.path().join("nvml.script"));
    let lib = fake_nvml_lib(legacy).display().to_string();
    let script_path = script.path().display().to_string();
    let project = project
        .with_env("LOOPTOP_NVML_LIB", lib)
        .with_env("FAKE_NVML_SCRIPT", script_path);
    (project, script)
}

/// Asserts that exactly one notice among `events` contains `text`.
fn said_once(events: &[Value], text: &str) {
    let count = events
        .iter()
        .filter(|e| e["event"] == "notice" && e["message"].as_str().is_some_and(|m| m.contains(text)))
        .count();
    assert_eq!(count, 1, "notices containing {text:?}: {events:#?}");
}

fn query(project: &Project, sql: &str) -> Vec<Value> {
    let done = project.run(&["query", sql, "--json"]);
    assert!(done.status.success(), "query failed: {}", done.stderr);
    json_rows(&done.stdout)
}

#[test]
fn a_job_on_the_gpu_gets_its_own_processes_share() {
    let (project, script) = gpu_project(false);
    script
        .set("gpu.0.name", "Fake H100")
        .set("gpu.0.util", 65)
        .set("driver", "550.54.15");
    let path = script.path().display();
    // The job puts its own pid on the GPU; pid 1 is someone else's process there.
    let cmd = format!(
        "echo \"gpu.0.procs = $$:2147483648 1:1073741824\" >> {path}; \
         echo \"gpu.0.proc_util = $$:70:10 1:20:5\" >> {path}; sleep 1.5"
    );
    let events = project.run_once_json(&cmd);
    said_once(&events, "watching 1 GPU (driver 550.54.15): 0 Fake H100");
    let run = run_finished(&events);
    assert!(run["samples"].as_u64().is_some_and(|n| n >= 3), "{run:#}");
    assert_eq!(run["gpu_util_mean_pct"], 65.0, "{run:#}");
    assert_eq!(
        run["gpu_mem_peak_bytes"], 2_147_483_648_u64,
        "only the job's memory: {run:#}"
    );
    let on = run["gpu_on_fraction"].as_f64().expect("fraction");
    assert!(on > 0.5 && on <= 1.0, "{run:#}");
    let rows = query(
        &project,
        "SELECT max(job_sm_pct) AS sm, max(job_mem_bytes) AS mem, max(util_pct) AS util, count(*) AS n \
         FROM gpu_samples",
    );
    assert_eq!(rows[0]["sm"], 70, "{rows:?}");
    assert_eq!(rows[0]["mem"], 2_147_483_648_u64);
    assert_eq!(rows[0]["util"], 65);
    assert_eq!(rows[0]["n"], run["samples"], "one GPU row per sample");
}

#[test]
fn a_job_that_never_touches_the_gpu_is_seen_as_such() {
    let (project, script) = gpu_project(false);
    script.set("gpu.0.util", 90).set("gpu.0.procs", "1:1073741824");
    let events = project.run_once_json("sleep 1");
    let run = run_finished(&events);
    if !crate::harness::in_host_pid_namespace() {
        assert_eq!(run["gpu_on_fraction"], Value::Null, "in a container, unknown: {run:#}");
        return;
    }
    assert_eq!(run["gpu_on_fraction"], 0.0, "{run:#}");
    assert_eq!(
        run["gpu_util_mean_pct"],
        Value::Null,
        "someone else's load is not the job's"
    );
    assert_eq!(run["gpu_mem_peak_bytes"], 0);
}

#[test]
fn an_unsupported_reading_is_said_once_and_no_longer_asked_for() {
    let (project, script) = gpu_project(false);
    let log = project.scratch.path().join("nvml.log");
    let project = project.with_env("FAKE_NVML_LOG", log.display().to_string());
    script.set("gpu.0.unsupported", "proc_util,power").set("gpu.0.util", 40);
    let cmd = format!(
        "echo \"gpu.0.procs = $$:1000\" >> {}; sleep 1.5",
        script.path().display()
    );
    let events = project.run_once_json(&cmd);
    said_once(&events, "per-process utilization is unavailable");
    said_once(&events, "power draw is unavailable");
    let run = run_finished(&events);
    assert_eq!(run["gpu_util_mean_pct"], 40.0, "the rest is still read: {run:#}");
    let calls = std::fs::read_to_string(&log).expect("call log");
    let count = |symbol: &str| calls.lines().filter(|l| l.starts_with(&format!("{symbol} "))).count();
    assert_eq!(count("nvmlDeviceGetProcessUtilization"), 1, "{calls}");
    assert_eq!(count("nvmlDeviceGetPowerUsage"), 1, "{calls}");
    assert!(count("nvmlDeviceGetUtilizationRates") >= 3, "{calls}");
}

#[test]
fn a_gpu_lost_mid_run_is_reported_once_and_the_run_goes_on() {
    let (project, script) = gpu_project(false);
    script.set("gpu.0.util", 50);
    let path = script.path().display();
    let cmd = format!("echo \"gpu.0.procs = $$:1000\" >> {path}; sleep 0.7; echo 'gpu.0.lost = 1' >> {path}; sleep 1");
    let events = project.run_once_json(&cmd);
    said_once(&events, "stopped answering");
    let run = run_finished(&events);
    assert_eq!(run["outcome"], "pass");
    assert_eq!(run["gpu_util_mean_pct"], 50.0, "readings from before the loss: {run:#}");
    let rows = query(
        &project,
        "SELECT count(*) AS n, count(util_pct) AS read FROM gpu_samples",
    );
    let (all, read) = (rows[0]["n"].as_i64(), rows[0]["read"].as_i64());
    assert!(read > Some(0) && read < all, "{rows:?}");
}

#[test]
fn an_old_driver_without_per_process_calls_still_gives_device_readings() {
    let (project, script) = gpu_project(true);
    script.set("gpu.0.util", 33);
    let events = project.run_once_json("sleep 1");
    said_once(&events, "lacks nvmlDeviceGetComputeRunningProcesses_v3");
    let run = run_finished(&events);
    assert_eq!(run["gpu_util_mean_pct"], 33.0, "{run:#}");
    assert_eq!(run["gpu_on_fraction"], Value::Null, "unknown, not 0: {run:#}");
}

#[test]
fn a_driver_that_is_not_loaded_is_named_and_the_run_goes_on() {
    let (project, script) = gpu_project(false);
    script.set("init", "driver_not_loaded");
    let events = project.run_once_json("sleep 0.5");
    said_once(&events, "the NVIDIA driver is not loaded");
    let run = run_finished(&events);
    assert_eq!(run["gpu_util_mean_pct"], Value::Null);
    assert!(
        run["samples"].as_u64().is_some_and(|n| n >= 1),
        "CPU is still sampled: {run:#}"
    );
}

#[test]
fn gpu_devices_selects_gpus_and_names_the_missing_ones() {
    let (project, script) = gpu_project(false);
    script.set("count", 3);
    project.write(
        "looptop.toml",
        "[gpu]\ndevices = [0, 2, 5]\n\n[[job]]\nname = \"wait\"\ncommand = \"sleep 0.8\"\n",
    );
    let done = project.run(&["run", "--once", "--json", "--trust"]);
    assert!(done.status.success(), "{}", done.stderr);
    let events = json_rows(&done.stdout);
    said_once(&events, "names GPU [5]");
    let rows = query(
        &project,
        "SELECT list(DISTINCT gpu ORDER BY gpu) AS gpus FROM gpu_samples",
    );
    assert_eq!(rows[0]["gpus"], serde_json::json!([0, 2]));
}

#[test]
fn doctor_lists_gpus_and_what_each_cannot_tell() {
    let (project, script) = gpu_project(false);
    script
        .set("count", 2)
        .set("driver", "550.54.15")
        .set("gpu.1.unsupported", "proc_util")
        .set("gpu.1.name", "Fake A100");
    let done = project.run(&["doctor", "--json"]);
    assert!(done.status.success(), "{}", done.stderr);
    let report: Value = serde_json::from_str(&done.stdout).expect("json");
    let nvml = &report["nvml"];
    assert_eq!(nvml["available"], true, "{report:#}");
    assert_eq!(nvml["driver"], "550.54.15");
    assert_eq!(nvml["gpus"].as_array().map(Vec::len), Some(2));
    assert_eq!(nvml["gpus"][1]["name"], "Fake A100");
    assert_eq!(nvml["gpus"][0]["unavailable"], serde_json::json!([]));
    let missing = nvml["gpus"][1]["unavailable"][0].as_str().unwrap_or_default();
    assert!(
        missing.starts_with("per-process utilization: not supported"),
        "{missing}"
    );
    let text = project.run(&["doctor"]);
    assert!(text.stdout.contains("GPU 1      Fake A100"), "{}", text.stdout);
    assert!(text.stdout.contains("history    "), "{}", text.stdout);
}

#[test]
fn nvml_lib_in_the_config_is_used_and_a_gpu_less_driver_is_said() {
    let (project, script) = gpu_project(false);
    let lib = fake_nvml_lib(false).display().to_string();
    // The config names the library; the environment does not.
    let project = project.with_env("LOOPTOP_NVML_LIB", "");
    project.write("looptop.toml", &format!("[gpu]\nnvml_lib = \"{lib}\"\n"));
    script.set("count", 0).set("driver", "550.54.15");
    // A config's library is loaded only once the config is approved.
    assert!(project.run(&["trust"]).status.success());
    let done = project.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_str(&done.stdout).expect("json");
    let reason = report["nvml"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&lib) && reason.contains("sees no GPU"), "{report:#}");
}

#[test]
fn doctor_says_why_there_is_no_gpu_and_the_flag_beats_the_environment() {
    let (project, _script) = gpu_project(false);
    let done = project.run(&["doctor", "--json", "--nvml-lib", "/nonexistent/libnvidia-ml.so.1"]);
    assert!(done.status.success(), "a report, not a failure: {}", done.stderr);
    let report: Value = serde_json::from_str(&done.stdout).expect("json");
    assert_eq!(report["nvml"]["available"], false, "{report:#}");
    let reason = report["nvml"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("/nonexistent/libnvidia-ml.so.1") && reason.contains("--nvml-lib"),
        "{reason}"
    );
    let text = project.run(&["doctor", "--nvml-lib", "/nonexistent/libnvidia-ml.so.1"]);
    assert!(
        text.stdout.contains("GPUs       none: no NVIDIA driver library"),
        "{}",
        text.stdout
    );
}
