//! The run history: recorded by `looptop run`, read by `history`, `stats`, `query`, `export`,
//! while another looptop records, and after looptop is killed.

use std::time::Duration;

use crate::harness::{json_rows, signal, Project};

fn count_runs(project: &Project, filter: &str) -> i64 {
    let done = project.run(&["query", &format!("SELECT count(*) AS n FROM runs {filter}"), "--json"]);
    assert!(done.status.success(), "query failed: {}", done.stderr);
    json_rows(&done.stdout)[0]["n"].as_i64().expect("count")
}

#[test]
fn runs_are_recorded_and_shown_newest_first() {
    let project = Project::new();
    assert!(project.run(&["run", "--once", "--", "true"]).status.success());
    assert_eq!(
        project.run(&["run", "--once", "--", "sh -c 'exit 4'"]).status.code(),
        Some(4)
    );
    let done = project.run(&["history", "--json"]);
    assert!(done.status.success(), "{}", done.stderr);
    let rows = json_rows(&done.stdout);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["outcome"].as_str(), rows[0]["exit_code"].as_i64()),
        (Some("fail"), Some(4))
    );
    assert_eq!(rows[1]["outcome"], "pass");
    assert!(rows[1]["duration_ms"].as_f64().is_some_and(|d| d > 0.0));

    let text = project.run(&["history"]).stdout;
    assert!(
        text.lines().next().is_some_and(|h| h.starts_with("started_at")),
        "{text}"
    );

    let stats = json_rows(&project.run(&["stats", "--json"]).stdout);
    assert_eq!(stats.len(), 2, "one row per job (true, sh): {stats:?}");
    let true_job = stats.iter().find(|r| r["job"] == "true").expect("job true");
    assert_eq!(
        (true_job["runs"].as_i64(), true_job["passed"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(true_job["median_ms"].as_f64().is_some());
}

#[test]
fn history_is_readable_while_another_looptop_records() {
    let project = Project::new();
    // A job that rewrites a file it watches: it reruns as fast as it can, recording each run.
    let mut session = project.spawn(&["--", "date > results.txt"]);
    session.wait_watching();
    project.write("results.txt", "go\n");
    let mut last = 0;
    for _ in 0..10 {
        let now = count_runs(&project, "WHERE outcome = 'pass'");
        assert!(now >= last, "runs went from {last} to {now}");
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(last >= 2, "the recorder kept writing while we read: {last} runs");
    let export = tempfile::tempdir().expect("tempdir");
    let out = export.path().join("x");
    let done = project.run(&["export", "--format", "csv", "--out", out.to_str().expect("utf-8")]);
    assert!(done.status.success(), "export during recording: {}", done.stderr);
    assert!(session.interrupt().success());
}

#[test]
fn bad_sql_prints_duckdb_error_exits_1_and_changes_nothing() {
    let project = Project::new();
    assert!(project.run(&["run", "--once", "--", "true"]).status.success());
    let typo = project.run(&["query", "SELEC * FROM runs"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(typo.stderr.contains("Parser Error"), "{}", typo.stderr);
    let delete = project.run(&["query", "DELETE FROM runs"]);
    assert_eq!(delete.status.code(), Some(1), "{}", delete.stdout);
    assert!(delete.stderr.to_lowercase().contains("read-only"), "{}", delete.stderr);
    assert_eq!(count_runs(&project, ""), 1);
}

#[test]
fn a_broken_history_file_turns_history_off_but_not_the_loop() {
    let project = Project::new();
    project.write(".looptop/history.duckdb", "not a database\n");
    let done = project.run(&["run", "--once", "--json", "--", "true"]);
    assert!(done.status.success(), "the loop still runs: {}", done.stderr);
    let notice = json_rows(&done.stdout)
        .into_iter()
        .find(|e| e["event"] == "notice" && e["message"].as_str().is_some_and(|m| m.starts_with("history is off")))
        .expect("history is off notice");
    let message = notice["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(".looptop/history.duckdb") && message.contains("not a looptop history"),
        "{message}"
    );
    let history = project.run(&["history"]);
    assert_eq!(history.status.code(), Some(1));
    assert!(history.stderr.contains("history.duckdb"), "{}", history.stderr);
    let kept = std::fs::read_to_string(project.path().join(".looptop/history.duckdb")).expect("file");
    assert_eq!(kept, "not a database\n", "nothing is lost");
}

#[test]
fn an_unwritable_history_path_turns_history_off() {
    let project = Project::new();
    project.write(
        "looptop.toml",
        "[history]\npath = \"/proc/looptop-test/history.duckdb\"\n",
    );
    // A history outside the project is used only with the config's approval.
    let done = project.run(&["run", "--once", "--trust", "--", "true"]);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("history is off: cannot write /proc/looptop-test/history.duckdb"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_history_from_a_newer_looptop_is_refused_untouched() {
    let project = Project::new();
    assert!(project.run(&["run", "--once", "--", "true"]).status.success());
    let path = project.path().join(".looptop/history.duckdb");
    {
        let conn = duckdb::Connection::open(&path).expect("open");
        conn.execute_batch("INSERT INTO looptop_schema VALUES (99)")
            .expect("bump");
    }
    let done = project.run(&["run", "--once", "--", "true"]);
    assert!(done.status.success());
    assert!(
        done.stderr.contains("newer looptop (history schema 99"),
        "{}",
        done.stderr
    );
    let history = project.run(&["history"]);
    assert_eq!(history.status.code(), Some(1));
    assert!(history.stderr.contains("upgrade looptop"), "{}", history.stderr);
}

#[test]
fn kill_9_twenty_times_loses_no_finished_run() {
    let project = Project::new();
    for round in 0..20 {
        let mut session = project.spawn(&["--", "sleep 0.2"]);
        let first = session.next("run_finished");
        assert_eq!(first["outcome"], "pass", "round {round}");
        session.wait_watching();
        project.write("a.py", &format!("{round}\n"));
        session.next("run_started");
        std::thread::sleep(Duration::from_millis(u64::try_from(round).unwrap_or(0) * 3 % 50));
        signal(session.pid(), nix::sys::signal::Signal::SIGKILL);
        drop(session);
    }
    // The next start marks what the killed looptops left running.
    assert!(project.run(&["run", "--once", "--", "true"]).status.success());
    assert_eq!(
        count_runs(&project, "WHERE outcome = 'pass' AND job = 'sleep'"),
        20,
        "every finished run is there"
    );
    let left = count_runs(&project, "WHERE job = 'sleep' AND outcome <> 'pass'");
    assert_eq!(count_runs(&project, "WHERE outcome = 'interrupted'"), left);
    assert_eq!(left, 20, "the in-flight runs are interrupted");
    assert_eq!(count_runs(&project, "WHERE outcome = 'running'"), 0);
}

#[test]
fn a_looptop_killed_between_a_run_and_its_history_write_loses_nothing() {
    let project = Project::new();
    let mut session = project.spawn(&["--", "sleep 0.3"]);
    let finished = session.next("run_finished");
    // Killed at once: the history is written only once the runs pause (300 ms after the last),
    // so this run is in the journal alone.
    signal(session.pid(), nix::sys::signal::Signal::SIGKILL);
    drop(session);
    let run_id = finished["run_id"].as_str().expect("run id").to_string();
    let journal = std::fs::read_to_string(project.path().join(".looptop/history.journal")).expect("journal");
    assert!(journal.contains(&run_id), "the run waits in the journal: {journal}");
    let in_file = {
        let config = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .expect("config");
        let conn =
            duckdb::Connection::open_with_flags(project.path().join(".looptop/history.duckdb"), config).expect("open");
        conn.query_row("SELECT count(*) FROM runs", [], |row| row.get::<_, i64>(0))
            .expect("count")
    };
    assert_eq!(in_file, 0, "nothing was written into the history beside the run");
    // Whoever opens the history next finds it.
    assert_eq!(
        count_runs(&project, &format!("WHERE outcome = 'pass' AND run_id = '{run_id}'")),
        1
    );
}

#[test]
fn export_writes_one_file_per_table() {
    let project = Project::new();
    assert!(project.run(&["run", "--once", "--", "true"]).status.success());
    let out = project.scratch.path().join("export");
    let out_str = out.to_str().expect("utf-8");
    for format in ["parquet", "csv"] {
        let done = project.run(&["export", "--format", format, "--out", out_str]);
        assert!(done.status.success(), "{format}: {}", done.stderr);
        for table in ["runs", "samples", "gpu_samples", "thread_samples", "metrics"] {
            assert!(out.join(format!("{table}.{format}")).is_file(), "{table}.{format}");
        }
    }
    let csv = std::fs::read_to_string(out.join("runs.csv")).expect("csv");
    assert!(csv.starts_with("run_id,job,command"), "{csv}");
    let parquet = out.join("runs.parquet").display().to_string();
    let done = project.run(&["query", &format!("SELECT count(*) AS n FROM '{parquet}'"), "--json"]);
    assert_eq!(json_rows(&done.stdout)[0]["n"], 1, "{}", done.stderr);
}

#[test]
fn bench_runs_back_to_back_prints_statistics_and_records_every_run() {
    let project = Project::new();
    let done = project.run(&["bench", "-n", "3", "--warmup", "1", "--", "sleep", "0.05"]);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stdout.contains("Time (mean ± σ)"), "{}", done.stdout);
    assert!(done.stdout.contains("Range (min … max)"), "{}", done.stdout);
    assert_eq!(count_runs(&project, "WHERE job = 'sleep'"), 4);
    let json = project.run(&["bench", "-n", "2", "--warmup", "0", "--json", "--", "sleep", "0.05"]);
    let summary = json_rows(&json.stdout).pop().expect("summary");
    assert_eq!(summary["event"], "bench");
    assert_eq!(summary["runs"], 2);
    assert!(summary["mean_ms"].as_f64().is_some_and(|m| m >= 50.0), "{summary}");
}

#[test]
fn each_run_records_the_commit_and_whether_the_tree_was_dirty() {
    let project = Project::new();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(project.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    };
    project.write("model.py", "x = 1\n");
    git(&["init", "-q"]);
    git(&["add", "model.py"]);
    git(&["commit", "-q", "-m", "first"]);
    assert!(project.run(&["run", "--once", "--", "true"]).status.success());
    project.write("model.py", "x = 2\n");
    assert!(project.run(&["run", "--once", "--", "true"]).status.success());
    let done = project.run(&[
        "query",
        "SELECT length(git_commit) AS len, git_dirty FROM runs ORDER BY started_at",
        "--json",
    ]);
    let rows = json_rows(&done.stdout);
    assert_eq!(rows.len(), 2, "{}", done.stderr);
    assert_eq!(
        (rows[0]["len"].as_i64(), rows[0]["git_dirty"].as_bool()),
        (Some(40), Some(false))
    );
    assert_eq!(rows[1]["git_dirty"], true);
}
