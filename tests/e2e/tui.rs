//! The TUI end to end: the real binary in a real terminal (tmux). It opens, runs the job,
//! reruns on a file change, `?` shows the help, `q` quits leaving the shell usable, and no
//! process of the job survives.

use std::time::{Duration, Instant};

use crate::harness::{gone_within, json_rows, read_pid, run_finished, Project, Tmux, PATIENCE};
use crate::metrics_and_queries::query_project;

#[test]
fn the_tui_runs_reruns_helps_and_quits_cleanly() {
    let project = Project::new();
    let pid_file = project.scratch.path().join("job.pid");
    project.write(
        "looptop.toml",
        &format!(
            "[[job]]\nname = \"serve\"\ncommand = \"echo started-$LOOPTOP_RUN_ID; echo $$ > {}; trap '' TERM; sleep 300\"\nstop_grace = \"300ms\"\n",
            pid_file.display()
        ),
    );
    project.write("src/app.py", "x = 1\n");
    let tmux = Tmux::looptop(&project);
    let screen = tmux.wait_for("started-");
    assert!(screen.contains("1 serve"), "{screen}");
    assert!(screen.contains("loop trend"), "{screen}");
    // The resource rows say what they measure.
    let screen = tmux.wait_for("host cpu");
    assert!(screen.contains("tree cpu"), "{screen}");
    let first = read_pid(&pid_file);
    // A change restarts the job (it ignores SIGTERM: SIGKILL after the grace).
    project.write("src/app.py", "x = 2\n");
    let deadline = Instant::now() + PATIENCE;
    while read_pid(&pid_file) == first {
        assert!(
            Instant::now() < deadline,
            "no rerun after the change:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gone_within(first, PATIENCE),
        "the first run's process survived the restart"
    );
    let second = read_pid(&pid_file);
    tmux.wait_for("loop trend · 1 run ·");
    // ← selects the past run: its resources come from the history.
    tmux.keys("Left");
    tmux.wait_for("resources · run 1/1");
    let deadline = Instant::now() + PATIENCE;
    while tmux.screen().contains("reading its samples") {
        assert!(Instant::now() < deadline, "the samples never came:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.keys("Right");
    tmux.keys("?");
    tmux.wait_for("any key closes this");
    tmux.keys("Escape");
    tmux.keys("q");
    let screen = tmux.wait_for("looptop-exited-0");
    // The shell got its screen back: the TUI's frame is gone, the shell's line is there.
    assert!(!screen.contains("loop trend"), "{screen}");
    assert!(gone_within(second, PATIENCE), "the job survived q");
}

#[test]
fn a_query_job_is_described_alike_in_every_front_end_without_its_protocol_line() {
    let project = query_project(5000);
    // Per-user totals over a join that fans out: 100 rows, and a hint.
    project.write(
        "queries/totals.sql",
        "SELECT e.user_id, sum(f.amount) AS total FROM 'data/events.csv' e JOIN 'data/events.csv' f USING (user_id) GROUP BY 1;\n",
    );
    // Headless, human: the description under the run's line, the protocol line nowhere.
    let human = project.run(&["run", "--once", "--trust"]);
    assert!(human.status.success(), "{}", human.stderr);
    let shown = format!("{}{}", human.stdout, human.stderr);
    assert!(!shown.contains("looptop-query:"), "{shown}");
    assert!(
        human.stdout.contains("100 rows in"),
        "the query's own output is shown: {shown}"
    );
    let query_line = human
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("[looptop]   query: "))
        .unwrap_or_else(|| panic!("no query line: {}", human.stderr));
    assert!(query_line.starts_with("100 rows in"), "{query_line}");
    assert!(
        human
            .stderr
            .contains("[looptop]   → the join on user_id emits 250000 rows"),
        "{}",
        human.stderr
    );
    // JSON: the same description, and the log without the protocol line either.
    let done = project.run(&["run", "--once", "--json", "--trust"]);
    assert!(!done.stderr.contains("looptop-query:"), "{}", done.stderr);
    let run = run_finished(&json_rows(&done.stdout)).clone();
    let description = &run["description"];
    assert!(
        description["query"]
            .as_str()
            .is_some_and(|q| q.starts_with("query: 100 rows in")),
        "{run:#}"
    );
    let query_hint = &run["query"]["hints"][0]["text"];
    assert!(query_hint.is_string(), "{run:#}");
    assert!(
        description["hints"].as_array().is_some_and(|h| h.contains(query_hint)),
        "{run:#}"
    );
    let log = std::fs::read_to_string(run["log"].as_str().expect("a log")).expect("read the log");
    assert!(log.contains("100 rows in") && !log.contains("looptop-query:"), "{log}");
    // The TUI: the hint in the verdict pane right under the verdict (what to try comes before
    // the details, which a pane this short cuts off), no protocol line in the output.
    let tmux = Tmux::looptop(&project);
    let screen = tmux.wait_for("→ the join on user_id");
    let hint_row = screen.lines().position(|l| l.contains("→ the join on user_id"));
    let query_row = screen.lines().position(|l| l.contains("query: 100 rows in"));
    assert!(query_row.is_none() || query_row > hint_row, "{screen}");
    let screen = tmux.wait_for("100 rows in");
    assert!(!screen.contains("looptop-query"), "{screen}");
    tmux.keys("q");
}
