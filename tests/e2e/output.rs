//! Output: streamed, logged in full, bounded in memory; exit codes passed on.

use std::time::Duration;

use crate::harness::Project;

fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON: {l:?}: {e}")))
        .collect()
}

#[test]
fn once_exits_with_the_job_code_and_keeps_its_output() {
    let project = Project::new();
    let done = project.run(&[
        "run",
        "--once",
        "--json",
        "--",
        "sh -c 'echo to-out; echo to-err >&2; exit 3'",
    ]);
    assert_eq!(done.status.code(), Some(3));
    let events = events(&done.stdout);
    let finished = events
        .iter()
        .find(|e| e["event"] == "run_finished")
        .expect("run_finished");
    assert_eq!(finished["exit_code"], 3);
    assert_eq!(finished["outcome"], "fail");
    assert!(finished["cpu_user_ms"].as_f64().is_some() && finished["cpu_sys_ms"].as_f64().is_some());
    assert!(
        done.stderr.contains("to-out") && done.stderr.contains("to-err"),
        "job output goes to stderr in --json mode"
    );
    let log = finished["log"].as_str().expect("log path");
    let logged = std::fs::read_to_string(log).expect("log file");
    assert!(
        logged.contains("to-out\n") && logged.contains("to-err\n"),
        "log: {logged:?}"
    );
    assert!(log.starts_with(&project.path().join(".looptop/logs").display().to_string()));
}

#[test]
fn human_mode_streams_output_and_summarises_runs() {
    let project = Project::new();
    let done = project.run(&["run", "--once", "--", "echo", "hello from the job"]);
    assert!(done.status.success());
    assert_eq!(done.stdout, "hello from the job\n");
    assert!(done.stderr.contains("▶ echo"), "{}", done.stderr);
    assert!(done.stderr.contains("✔ echo passed in"), "{}", done.stderr);
}

#[test]
fn cpu_time_covers_the_whole_tree() {
    let project = Project::new();
    // Two grandchildren burn CPU; the main shell does almost nothing itself.
    let burn = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";
    let job = format!("sh -c '{burn}' & sh -c '{burn}' & wait");
    let done = project.run(&["run", "--once", "--json", "--", &job]);
    assert!(done.status.success(), "{}", done.stderr);
    let finished = events(&done.stdout)
        .into_iter()
        .find(|e| e["event"] == "run_finished")
        .expect("finished");
    let cpu = finished["cpu_user_ms"].as_f64().expect("user") + finished["cpu_sys_ms"].as_f64().expect("sys");
    assert!(cpu >= 100.0, "cpu of the tree was {cpu} ms: grandchildren not counted");
}

#[test]
fn a_command_that_cannot_start_says_why_and_exits_127() {
    let project = Project::new();
    let done = project.run(&["run", "--once", "--", "/nonexistent/train", "--steps", "2"]);
    assert_eq!(done.status.code(), Some(127));
    assert!(done.stderr.contains("cannot start job `train`"), "{}", done.stderr);
    assert!(done.stderr.contains("No such file"), "{}", done.stderr);
}

#[test]
fn a_binary_flood_is_logged_in_full_not_shown_and_memory_stays_bounded() {
    let project = Project::new();
    let mut session = project.spawn(&["--", "sleep 1; head -c 50000000 /dev/urandom"]);
    session.next("run_started");
    // looptop's own peak so far (the binary, opening DuckDB), before the flood starts.
    std::thread::sleep(Duration::from_millis(500));
    let before_kb = memory_kb(session.pid(), "VmHWM:");
    let finished = session.next("run_finished");
    assert_eq!(finished["outcome"], "pass");
    let log = finished["log"].as_str().expect("log");
    assert_eq!(
        std::fs::metadata(log).expect("log").len(),
        50_000_000,
        "the log holds every byte"
    );
    let peak_kb = memory_kb(session.pid(), "VmHWM:");
    assert!(
        peak_kb < before_kb + 16 * 1024,
        "looptop grew from {before_kb} kB to a peak of {peak_kb} kB while the job printed 50 MB"
    );
    let stderr = session.stderr();
    assert!(
        stderr.contains("binary output"),
        "the user is told: {}",
        &stderr[..stderr.len().min(500)]
    );
    assert!(
        stderr.len() < 100_000,
        "binary was sprayed onto the terminal ({} bytes)",
        stderr.len()
    );
    assert!(session.interrupt().success());
}

fn memory_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}
