//! Stopping runs: the whole process tree goes, stubborn processes are killed after the grace
//! period, and `on_change`, timeouts and Ctrl-C do what they say.

use std::time::{Duration, Instant};

use crate::harness::{gone_within, is_alive, read_pid, trigger, Project};

/// A job whose main process and a background grandchild both record their pids.
fn tree_job(project: &Project) -> String {
    let scratch = project.scratch.path().display();
    format!("sleep 300 & echo $! > {scratch}/bg.$LOOPTOP_RUN_ID; echo $$ > {scratch}/main.$LOOPTOP_RUN_ID; wait")
}

#[test]
fn restart_kills_the_whole_tree_before_starting_again() {
    let project = Project::new();
    let job = tree_job(&project);
    let mut session = project.spawn(&["--", &job]);
    let first = session.next("run_started");
    session.wait_watching();
    let run_id = first["run_id"].as_str().expect("run id").to_string();
    let grandchild = read_pid(&project.scratch.path().join(format!("bg.{run_id}")));
    let main = read_pid(&project.scratch.path().join(format!("main.{run_id}")));
    assert!(is_alive(grandchild) && is_alive(main));
    project.write("a.py", "change\n");
    let finished = session.next("run_finished");
    assert_eq!(finished["run_id"], first["run_id"]);
    assert_eq!(finished["outcome"], "killed");
    assert_eq!(finished["signal"], "SIGTERM");
    assert!(!is_alive(grandchild), "grandchild {grandchild} survived the restart");
    assert!(!is_alive(main));
    let second = session.next("run_started");
    assert_eq!(trigger(&second), ["a.py"]);
    let second_id = second["run_id"].as_str().expect("run id").to_string();
    let second_grandchild = read_pid(&project.scratch.path().join(format!("bg.{second_id}")));
    assert!(session.interrupt().success());
    assert!(
        gone_within(second_grandchild, Duration::from_secs(1)),
        "Ctrl-C left {second_grandchild} running"
    );
}

#[test]
fn a_grandchild_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let project = Project::new();
    let scratch = project.scratch.path().display();
    let job = format!(
        "sh -c 'trap \"\" TERM; echo $$ > {scratch}/stubborn.$LOOPTOP_RUN_ID; while :; do sleep 0.05; done' & wait"
    );
    let mut session = project.spawn(&["--grace", "700ms", "--", &job]);
    let first = session.next("run_started");
    session.wait_watching();
    let run_id = first["run_id"].as_str().expect("run id");
    let stubborn = read_pid(&project.scratch.path().join(format!("stubborn.{run_id}")));
    project.write("a.py", "change\n");
    let asked = Instant::now();
    let finished = session.next("run_finished");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(650),
        "SIGKILL came after {waited:?}, before the grace period"
    );
    assert_eq!(finished["outcome"], "killed");
    assert!(!is_alive(stubborn), "the SIGTERM-ignoring process {stubborn} survived");
    session.next("run_started");
    assert!(session.interrupt().success());
}

#[test]
fn queue_lets_the_run_finish_then_runs_once_more_with_every_change() {
    let project = Project::new();
    let mut session = project.spawn(&["--on-change", "queue", "--", "sleep 1"]);
    session.next("run_finished");
    session.wait_watching();
    session.seen.clear();
    project.write("a.py", "1\n");
    let second = session.next("run_started");
    std::thread::sleep(Duration::from_millis(200));
    project.write("b.py", "2\n");
    std::thread::sleep(Duration::from_millis(200));
    project.write("c.py", "3\n");
    let finished = session.next("run_finished");
    assert_eq!(finished["run_id"], second["run_id"]);
    assert_eq!(finished["outcome"], "pass", "queue never stops a run");
    assert!(finished["duration_ms"].as_f64().expect("duration") >= 1000.0);
    let third = session.next("run_started");
    assert_eq!(trigger(&third), ["b.py", "c.py"]);
    session.next("run_finished");
    session.expect_quiet("run_started", Duration::from_millis(800));
}

#[test]
fn ignore_drops_changes_made_during_a_run() {
    let project = Project::new();
    let mut session = project.spawn(&["--on-change", "ignore", "--postpone", "--", "sleep 0.6"]);
    session.wait_watching();
    project.write("a.py", "1\n");
    session.next("run_started");
    std::thread::sleep(Duration::from_millis(200));
    project.write("b.py", "2\n");
    assert_eq!(session.next("run_finished")["outcome"], "pass");
    session.expect_quiet("run_started", Duration::from_millis(600));
}

#[test]
fn a_timeout_stops_the_run_and_exits_124() {
    let project = Project::new();
    let started = Instant::now();
    let done = project.run(&["run", "--once", "--json", "--timeout", "300ms", "--", "sleep", "30"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(done.status.code(), Some(124), "stderr: {}", done.stderr);
    let finished: serde_json::Value = done
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "run_finished")
        .expect("run_finished");
    assert_eq!(finished["outcome"], "timeout");
    let took = finished["duration_ms"].as_f64().expect("duration");
    assert!(took >= 300.0, "stopped after {took} ms");
}

#[test]
fn ctrl_c_during_once_stops_the_job_and_exits_with_its_status() {
    let project = Project::new();
    let mut session = project.spawn(&["--once", "--", "sleep", "30"]);
    session.next("run_started");
    let status = session.interrupt();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "killed by SIGTERM, as a shell reports it"
    );
}

#[test]
fn a_process_that_leaves_the_group_is_reported_and_reaped_when_it_exits() {
    let project = Project::new();
    let scratch = project.scratch.path().display();
    // `setsid` in a background child starts a new session: out of reach of the group signals.
    let job = format!("setsid sh -c 'echo $$ > {scratch}/escaped.$LOOPTOP_RUN_ID; sleep 1.5' &");
    let mut session = project.spawn(&["--", &job]);
    let first = session.next("run_finished");
    let run_id = first["run_id"].as_str().expect("run id");
    let escaped = read_pid(&project.scratch.path().join(format!("escaped.{run_id}")));
    let warning = session.next("notice");
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("process {escaped}")) && message.contains("outlived the run"),
        "{warning}"
    );
    assert!(is_alive(escaped));
    session.wait_watching();
    // Once it exits it is looptop's zombie (looptop is its subreaper) until the next run ends.
    assert!(
        gone_within(escaped, Duration::from_secs(5)),
        "it should have exited by itself"
    );
    assert!(
        std::fs::read_to_string(format!("/proc/{escaped}/stat")).is_ok(),
        "a zombie until reaped"
    );
    project.write("a.py", "change\n");
    session.next("run_started");
    session.next("run_finished");
    std::thread::sleep(Duration::from_millis(100));
    let stat = std::fs::read_to_string(format!("/proc/{escaped}/stat"));
    assert!(stat.is_err(), "the escaped process was not reaped: {stat:?}");
    assert!(session.interrupt().success());
}
