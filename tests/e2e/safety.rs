//! Data safety: looptop touches only what it created, loses no finished run however busy the
//! history file is, and leaves no job behind (each test is a reproduction from a report).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{
    gone_within, is_alive, json_rows, read_pid, run_finished, signal, trigger, Project, Session, PATIENCE,
};

/// How many files in `dir` are named like looptop's logs (`<UUIDv7>.log`).
fn own_logs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read logs")
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                .is_some_and(|id| id.get_version_num() == 7)
        })
        .count()
}

fn query(project: &Project, sql: &str) -> Vec<serde_json::Value> {
    let done = project.run(&["query", sql, "--json"]);
    assert!(done.status.success(), "query failed: {}", done.stderr);
    json_rows(&done.stdout)
}

#[test]
fn a_looptop_symlink_is_refused_and_nothing_behind_it_is_deleted() {
    let project = Project::new();
    let victim = project.scratch.path().join("v");
    std::fs::create_dir_all(victim.join("logs")).expect("mkdir");
    for i in 0..600 {
        std::fs::write(victim.join(format!("logs/mine-{i:03}.log")), "precious\n").expect("write");
    }
    std::os::unix::fs::symlink(&victim, project.path().join(".looptop")).expect("link");
    let done = project.run(&["run", "--once", "--", "true"]);
    assert_eq!(done.status.code(), Some(2), "refused: {}", done.stderr);
    assert!(
        done.stderr.contains(".looptop is a symbolic link") && done.stderr.contains("rm "),
        "the error names the link and the fix: {}",
        done.stderr
    );
    assert_eq!(std::fs::read_dir(victim.join("logs")).expect("read").count(), 600);
    assert!(
        !victim.join("history.duckdb").exists(),
        "no history written through the link"
    );
}

#[test]
fn log_pruning_deletes_only_its_own_logs_and_keeps_the_limit_during_a_session() {
    let project = Project::new();
    let logs = project.path().join(".looptop/logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    for i in 0..600 {
        std::fs::write(logs.join(format!("mine-{i:03}.log")), "precious\n").expect("write");
    }
    // 499 logs of past runs (their ids sort before any new one): five runs go past the limit.
    for i in 0..499 {
        std::fs::write(logs.join(format!("00000000-0000-7000-8000-{i:012}.log")), "old\n").expect("write");
    }
    let done = project.run(&["bench", "--runs", "5", "--warmup", "0", "--", "true"]);
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(
        own_logs(&logs),
        500,
        "looptop's logs stay at the limit within a session"
    );
    assert!(!logs.join("00000000-0000-7000-8000-000000000000.log").exists());
    let mine = std::fs::read_dir(&logs)
        .expect("read")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("mine-"))
        .count();
    assert_eq!(mine, 600, "files looptop did not write are never deleted");
}

/// A history with one run in it, then `looptop run --once` of a short job whose finish comes
/// while the history is held: the session (its run reported passed) and the holding connection.
fn finish_a_run_while_the_history_is_held(project: &Project) -> (Session, duckdb::Connection) {
    assert!(project.run(&["run", "--once", "--", "echo seed"]).status.success());
    let history = project.path().join(".looptop/history.duckdb");
    let mut session = project.spawn(&["--once", "--", "sleep 0.5"]);
    session.next("run_started");
    let held = hold(&history);
    assert_eq!(session.next("run_finished")["outcome"], "pass");
    (session, held)
}

/// Holds the history file the way a long `looptop query` or another looptop does.
fn hold(path: &Path) -> duckdb::Connection {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match duckdb::Connection::open(path) {
            Ok(conn) => return conn,
            // looptop itself may be writing for a moment.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("cannot hold {}: {e}", path.display()),
        }
    }
}

#[test]
fn a_run_finished_while_the_history_is_busy_is_written_when_it_frees_up_before_exit() {
    let project = Project::new();
    let (mut session, held) = finish_a_run_while_the_history_is_held(&project);
    let history = project.path().join(".looptop/history.duckdb");
    // looptop says that it waits for the file; then the file frees up.
    let deadline = Instant::now() + PATIENCE;
    while !session.stderr().contains("waiting up to") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        session.stderr().contains("waiting up to"),
        "stderr: {}",
        session.stderr()
    );
    drop(held);
    assert!(session.wait_exit().success());
    // Read with DuckDB itself: the row was written by that looptop, not by a later one.
    let conn = duckdb::Connection::open(&history).expect("open");
    let outcome: String = conn
        .query_row("SELECT outcome FROM runs WHERE job = 'sleep'", [], |row| row.get(0))
        .expect("the run is there");
    assert_eq!(outcome, "pass");
}

#[test]
fn a_run_finished_while_the_history_stays_busy_is_kept_and_seen_by_the_next_looptop() {
    let project = Project::new();
    let (mut session, held) = finish_a_run_while_the_history_is_held(&project);
    assert!(session.wait_exit().success());
    assert!(
        session.stderr().contains("history.journal"),
        "says where the run is kept: {}",
        session.stderr()
    );
    drop(held);
    let rows = query(&project, "SELECT outcome FROM runs ORDER BY started_at DESC LIMIT 1");
    assert_eq!(
        rows[0]["outcome"], "pass",
        "the finished run is in the history, not `running`"
    );
    let rows = query(&project, "SELECT count(*) AS n FROM runs");
    assert_eq!(rows[0]["n"], 2, "written once");
}

#[test]
fn a_looptop_that_starts_while_the_history_is_busy_keeps_history_on() {
    let project = Project::new();
    assert!(project.run(&["run", "--once", "--", "echo seed"]).status.success());
    let history = project.path().join(".looptop/history.duckdb");
    let held = hold(&history);
    let mut session = project.spawn(&["--", "echo again"]);
    session.next("run_started");
    // looptop started after waiting for the file (5 s) in vain; it frees up later.
    std::thread::sleep(Duration::from_secs(1));
    drop(held);
    session.next("run_finished");
    session.wait_watching();
    project.write("a.py", "1\n");
    session.next("run_finished");
    let off = session
        .seen
        .iter()
        .any(|e| e["message"].as_str().is_some_and(|m| m.contains("history is off")));
    assert!(!off, "history stayed on: {:#?}", session.seen);
    assert!(session.interrupt().success());
    let rows = query(
        &project,
        "SELECT count(*) AS n FROM runs WHERE job = 'echo' AND outcome = 'pass'",
    );
    assert_eq!(rows[0]["n"], 3, "both runs of the second looptop are recorded");
}

#[test]
fn an_overflowing_timeout_or_grace_is_a_clear_error_not_a_panic() {
    let project = Project::new();
    for flag in ["--timeout", "--grace"] {
        let done = project.run(&["run", "--once", flag, "10000000000000000000s", "--", "true"]);
        assert_eq!(done.status.code(), Some(2), "{flag}: {}", done.stderr);
        assert!(done.stderr.contains("too long"), "{flag}: {}", done.stderr);
        assert!(!done.stderr.contains("panicked"), "{flag}: {}", done.stderr);
    }
}

#[test]
fn a_watched_directory_removed_and_made_again_is_watched_again() {
    let project = Project::new();
    project.write("src/a.py", "0\n");
    project.write(
        "looptop.toml",
        "[watch]\npaths = [\"src\"]\n\n[[job]]\nname = \"t\"\ncommand = \"true\"\n",
    );
    assert!(project.run(&["trust"]).status.success());
    let mut session = project.spawn(&[]);
    session.next("run_finished");
    session.wait_watching();
    std::fs::remove_dir_all(project.path().join("src")).expect("rm -rf src");
    std::fs::create_dir(project.path().join("src")).expect("mkdir src");
    project.write("src/b.py", "1\n");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let started = session
            .next_within("run_started", deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("src/b.py never triggered a run; seen {:#?}", session.seen));
        if trigger(&started).iter().any(|t| t == "src/b.py") {
            break;
        }
    }
    let said = session.seen.iter().any(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("is back: watching it again"))
    });
    assert!(said, "the log says it watches src again: {:#?}", session.seen);
    assert!(session.interrupt().success());
}

#[test]
fn a_file_name_with_a_newline_is_one_trigger_path() {
    let project = Project::new();
    let mut session = project.spawn(&["--", "true"]);
    session.next("run_finished");
    session.wait_watching();
    project.write("a\nb.py", "1\n");
    let started = session.next("run_started");
    assert_eq!(trigger(&started), ["a\nb.py"]);
    session.next("run_finished");
    assert!(session.interrupt().success());
    let rows = query(
        &project,
        "SELECT len(trigger_files) AS n, trigger_files[1] AS path FROM runs WHERE len(trigger_files) > 0",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["n"], 1);
    assert_eq!(rows[0]["path"], "a\nb.py");
}

#[test]
fn run_once_warns_of_a_process_that_left_the_run() {
    let project = Project::new();
    let pid_file = project.scratch.path().join("escaped");
    let job = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 60' >/dev/null 2>&1 < /dev/null &",
        pid_file.display()
    );
    let done = project.run(&["run", "--once", "--json", "--", &job]);
    let escaped = read_pid(&pid_file);
    signal(u32::try_from(escaped).expect("pid"), nix::sys::signal::Signal::SIGKILL);
    assert!(done.status.success(), "{}", done.stderr);
    let events = json_rows(&done.stdout);
    run_finished(&events);
    let warned = events.iter().any(|e| {
        e["event"] == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("process {escaped} ")) && m.contains("outlived the run"))
    });
    assert!(warned, "no warning about {escaped}: {events:#?}");
}

#[test]
fn kill_9_of_looptop_stops_its_running_job() {
    let project = Project::new();
    let scratch = project.scratch.path().display();
    let job = format!("sleep 300 & echo $! > {scratch}/bg; echo $$ > {scratch}/main; wait");
    let mut session = project.spawn(&["--", &job]);
    session.next("run_started");
    let background = read_pid(&project.scratch.path().join("bg"));
    let main = read_pid(&project.scratch.path().join("main"));
    assert!(is_alive(background) && is_alive(main));
    signal(session.pid(), nix::sys::signal::Signal::SIGKILL);
    let stopped = gone_within(background, PATIENCE) && gone_within(main, PATIENCE);
    // Clean up whatever survived before asserting.
    for pid in [background, main] {
        signal(u32::try_from(pid).expect("pid"), nix::sys::signal::Signal::SIGKILL);
    }
    assert!(stopped, "the job outlived a kill -9 of looptop");
}

#[test]
fn two_looptops_and_queries_on_one_history_lose_no_finished_run() {
    let project = Project::new();
    // Each job writes into the watched tree, so both looptops rerun as fast as they can.
    let mut first = project.spawn(&["--", "date > one.txt"]);
    let mut second = project.spawn(&["--", "date > two.txt"]);
    first.wait_watching();
    second.wait_watching();
    project.write("go.txt", "go\n");
    let mut finished = Vec::new();
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let done = project.run(&["query", "SELECT count(*) AS n FROM runs", "--json"]);
        assert!(
            done.status.success(),
            "a query during recording failed: {}",
            done.stderr
        );
        for session in [&mut first, &mut second] {
            while let Some(event) = session.next_within("run_finished", Duration::from_millis(1)) {
                finished.push(event["run_id"].as_str().expect("run id").to_string());
            }
        }
    }
    for session in [&first, &second] {
        let off = session
            .seen
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains("history is off")));
        assert!(!off, "history stayed on: {:#?}", session.seen);
    }
    assert!(first.interrupt().success());
    assert!(second.interrupt().success());
    assert!(finished.len() >= 4, "both looptops ran: {finished:?}");
    let rows = query(
        &project,
        "SELECT run_id::VARCHAR AS id FROM runs WHERE outcome <> 'running'",
    );
    let recorded: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    for run_id in &finished {
        assert!(
            recorded.contains(&run_id.as_str()),
            "run {run_id} was reported finished but is not recorded"
        );
    }
    assert_eq!(
        query(&project, "SELECT count(*) AS n FROM runs WHERE outcome = 'running'")[0]["n"],
        0
    );
}
