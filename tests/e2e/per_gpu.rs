//! GPUs one by one, through the fake NVML: several GPUs with an idle rank (`idle-gpus`), a GPU
//! shared with another process (`shared-gpu`, judged by the job's own share), SMs idle on a busy
//! GPU (`small-kernels`), MIG ("unknown"), and a job in a container whose pids NVML does not
//! know (never a false `gpu-unused`). Each with its fixed twin.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::fake_nvml::{fake_nvml_lib, Script};
use crate::harness::{json_rows, run_finished, Project};

/// A project whose looptop loads the fake NVML with `count` GPUs.
fn gpus(count: u32) -> (Project, Script) {
    let project = Project::new();
    let script = Script::new(project.scratch.path().join("nvml.script"));
    script.set("count", count);
    let project = project
        .with_env("LOOPTOP_NVML_LIB", fake_nvml_lib(false).display().to_string())
        .with_env("FAKE_NVML_SCRIPT", script.path().display().to_string());
    (project, script)
}

/// A shell command that puts its own process on GPUs `on` (with `extra` lines of script), then
/// sleeps `seconds`.
fn job_on(script: &Script, on: &[u32], extra: &[&str], seconds: f64) -> String {
    let path = script.path().display();
    let mut lines: Vec<String> = on.iter().map(|i| format!("gpu.{i}.procs = $$:1000000000")).collect();
    lines.extend(extra.iter().map(|l| l.to_string()));
    let echoes: Vec<String> = lines.iter().map(|l| format!("echo \"{l}\" >> {path}")).collect();
    format!("{}; sleep {seconds}", echoes.join("; "))
}

fn verdict(events: &[Value]) -> Value {
    run_finished(events)["verdict"].clone()
}

fn hint_ids(verdict: &Value) -> Vec<String> {
    verdict["hints"]
        .as_array()
        .map(|h| h.iter().filter_map(|h| h["id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn hint<'a>(verdict: &'a Value, id: &str) -> &'a Value {
    verdict["hints"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["id"] == id))
        .unwrap_or_else(|| panic!("no hint {id}: {verdict:#}"))
}

#[test]
fn four_gpus_with_only_gpu_0_busy_are_idle_gpus_and_the_history_keeps_each() {
    let (project, script) = gpus(4);
    script
        .set("gpu.0.util", 95)
        .set("gpu.1.util", 0)
        .set("gpu.2.util", 0)
        .set("gpu.3.util", 0);
    let events = project.run_once_json(&job_on(&script, &[0, 1, 2, 3], &[], 2.0));
    let v = verdict(&events);
    assert_eq!(v["kind"], "gpu-bound", "the busy GPU sets the pace: {v:#}");
    let per_gpu = v["gpus"].as_array().expect("verdict.gpus");
    assert_eq!(per_gpu.len(), 4, "{v:#}");
    for (i, gpu) in per_gpu.iter().enumerate() {
        assert_eq!(gpu["index"], i as u64, "{gpu}");
        assert_eq!(gpu["job_present"], true, "{gpu}");
        for key in ["busy_pct", "job_sm_pct", "stall_ms"] {
            assert!(gpu.get(key).is_some(), "{key} missing: {gpu}");
        }
    }
    assert_eq!(per_gpu[0]["busy_pct"], 95.0);
    assert_eq!(per_gpu[2]["busy_pct"], 0.0);
    assert!(per_gpu[3]["stall_ms"].as_f64().is_some_and(|s| s >= 1000.0), "{v:#}");
    let idle = hint(&v, "idle-gpus");
    assert!(
        idle["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("GPUs 1-3 idle 100 % of the run while GPU 0 is busy: rank imbalance")),
        "{idle}"
    );
    assert_eq!(idle["idle_gpus"], serde_json::json!([1, 2, 3]));
    // The history keeps the GPUs one by one.
    let done = project.run(&["query", "SELECT gpu_verdicts FROM runs", "--json"]);
    let rows = json_rows(&done.stdout);
    let kept: Value = serde_json::from_str(rows[0]["gpu_verdicts"].as_str().expect("gpu_verdicts")).expect("json");
    assert_eq!(kept.as_array().map(Vec::len), Some(4), "{kept}");

    // The fixed twin: every rank busy.
    for i in 1..4 {
        script.set(&format!("gpu.{i}.util"), 93);
    }
    let v = verdict(&project.run_once_json(&job_on(&script, &[0, 1, 2, 3], &[], 1.5)));
    assert_eq!(v["kind"], "gpu-bound", "{v:#}");
    assert!(!hint_ids(&v).contains(&"idle-gpus".to_string()), "{v:#}");
}

#[test]
fn a_gpu_shared_with_a_busy_process_is_judged_by_the_jobs_own_share() {
    let (project, script) = gpus(1);
    script.set("gpu.0.util", 90).set("gpu.0.procs", "1:5000000000");
    // pid 1 is someone else's training, using most of the SMs; the job's own share is small.
    let shared = job_on(
        &script,
        &[],
        &[
            "gpu.0.procs = $$:1000000000 1:5000000000",
            "gpu.0.proc_util = $$:4:1 1:85:30",
        ],
        2.0,
    );
    let v = verdict(&project.run_once_json(&shared));
    assert_ne!(v["kind"], "gpu-bound", "the device's 90 % is not the job's: {v:#}");
    assert_eq!(v["kind"], "input-bound", "{v:#}");
    assert_eq!(v["gpus"][0]["busy_pct"], 90.0, "the device figure as read: {v:#}");
    assert_eq!(v["gpus"][0]["job_sm_pct"], 4.0, "{v:#}");
    assert_eq!(v["gpus"][0]["shared"], true, "{v:#}");
    let text = hint(&v, "shared-gpu")["text"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("other processes kept its SMs 85 % busy"), "{text}");

    // The fixed twin: the job alone on the GPU, the same device figure.
    let alone = job_on(
        &script,
        &[],
        &["gpu.0.procs = $$:1000000000", "gpu.0.proc_util = $$:88:30"],
        2.0,
    );
    let v = verdict(&project.run_once_json(&alone));
    assert_eq!(v["kind"], "gpu-bound", "{v:#}");
    assert!(!hint_ids(&v).contains(&"shared-gpu".to_string()), "{v:#}");
}

#[test]
fn a_busy_gpu_whose_sms_mostly_idle_has_small_kernels() {
    let (project, script) = gpus(1);
    script.set("gpu.0.util", 98).set("gpu.0.gpm_sm_active", 6);
    let v = verdict(&project.run_once_json(&job_on(&script, &[0], &[], 1.5)));
    assert_eq!(v["kind"], "gpu-bound", "{v:#}");
    let small = hint(&v, "small-kernels");
    assert!(
        small["text"]
            .as_str()
            .is_some_and(|t| t.contains("SMs were active only 6 %")),
        "{small}"
    );
    assert_eq!(v["gpus"][0]["sm_active_pct"], 6.0, "{v:#}");
    let rows = json_rows(
        &project
            .run(&["query", "SELECT max(sm_active_pct) AS sm FROM gpu_samples", "--json"])
            .stdout,
    );
    assert_eq!(rows[0]["sm"], 6.0, "{rows:?}");

    // The fixed twin: the SMs are really working.
    script.set("gpu.0.gpm_sm_active", 91);
    let v = verdict(&project.run_once_json(&job_on(&script, &[0], &[], 1.5)));
    assert_eq!(v["kind"], "gpu-bound", "{v:#}");
    assert!(!hint_ids(&v).contains(&"small-kernels".to_string()), "{v:#}");
}

#[test]
fn finer_samples_show_a_stall_the_coarse_reading_hides() {
    let (project, script) = gpus(1);
    // NVML's coarse reading says 40 %, but between ticks the driver saw mostly idle periods.
    script.set("gpu.0.util", 40).set("gpu.0.util_samples", "0 0 0 90");
    let v = verdict(&project.run_once_json(&job_on(&script, &[0], &[], 2.0)));
    assert!(v["stalls"].as_u64().is_some_and(|n| n >= 1), "{v:#}");
    // The twin: the driver's samples agree with a steady 40 %.
    script.set("gpu.0.util_samples", "40 45 40 38");
    let v = verdict(&project.run_once_json(&job_on(&script, &[0], &[], 2.0)));
    assert_eq!(v["stalls"], 0, "{v:#}");
}

#[test]
fn a_job_on_a_mig_gpu_is_unknown_not_idle() {
    let (project, script) = gpus(1);
    script.set("gpu.0.mig", 1).set("gpu.0.util", 0);
    let events = project.run_once_json(&job_on(&script, &[0], &[], 3.2));
    let v = verdict(&events);
    assert_eq!(v["kind"], "unknown", "{v:#}");
    assert!(v["summary"].as_str().is_some_and(|s| s.contains("MIG")), "{v:#}");
    assert_eq!(v["gpus"][0]["busy_pct"], Value::Null, "unknown, not 0: {v:#}");
    assert_eq!(v["gpus"][0]["mig"], true);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "notice" && e["message"].as_str().is_some_and(|m| m.contains("MIG mode"))),
        "{events:#?}"
    );
    // Its twin, the same GPU out of MIG mode and idle, is input-bound.
    script.set("gpu.0.mig", 0);
    let v = verdict(&project.run_once_json(&job_on(&script, &[0], &[], 1.5)));
    assert_eq!(v["kind"], "input-bound", "{v:#}");
}

/// `looptop ARGS` of `project` run inside a new pid namespace with its own /proc (a container);
/// `None` (with the reason printed) where this machine does not allow it.
fn in_container(project: &Project, args: &[&str]) -> Option<Vec<Value>> {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "skipped: `unshare --pid --fork --mount-proc` is not allowed here (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Err(e) => {
            println!("skipped: no `unshare` to make a pid namespace: {e}");
            return None;
        }
    }
    let plain = project.looptop(args);
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(plain.get_program())
        .args(plain.get_args())
        .stdin(Stdio::null());
    if let Some(dir) = plain.get_current_dir() {
        command.current_dir(dir);
    }
    for (key, value) in plain.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let out = command.output().expect("run looptop in a pid namespace");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(json_rows(&String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_job_in_a_container_is_never_called_gpu_unused() {
    let (project, script) = gpus(1);
    // The driver reports host pids, which the container's /proc does not show.
    script.set("gpu.0.util", 60).set("host_pid_offset", 100_000);
    let cmd = job_on(&script, &[0], &[], 3.3);
    let Some(events) = in_container(&project, &["run", "--once", "--json", "--", &cmd]) else {
        return;
    };
    let v = verdict(&events);
    assert_ne!(v["kind"], "gpu-unused", "{v:#}");
    assert_eq!(v["gpus"][0]["job_present"], Value::Null, "unknown, not absent: {v:#}");
    assert!(!hint_ids(&v).contains(&"model-not-on-gpu".to_string()), "{v:#}");
    // A driver that does report this namespace's pids is believed.
    script.set("host_pid_offset", 0);
    let events = in_container(&project, &["run", "--once", "--json", "--", &cmd]).expect("allowed once");
    let v = verdict(&events);
    assert_eq!(v["gpus"][0]["job_present"], true, "{v:#}");
    // The twin on the host, where looptop can tell: the listed pid is not the job's.
    if !crate::harness::in_host_pid_namespace() {
        println!("the host twin skipped: these tests run in a container");
        return;
    }
    script.set("host_pid_offset", 100_000);
    let v = verdict(&project.run_once_json(&cmd));
    assert_eq!(v["kind"], "gpu-unused", "{v:#}");
}
