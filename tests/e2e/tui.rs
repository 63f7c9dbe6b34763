//! The TUI end to end: the real binary in a real terminal (tmux). It opens, runs the job,
//! reruns on a file change, `?` shows the help, `q` quits leaving the shell usable, and no
//! process of the job survives.

use std::time::{Duration, Instant};

use crate::harness::{gone_within, read_pid, Project, Tmux, PATIENCE};

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
    let binary = assert_cmd::cargo::cargo_bin("looptop");
    let command = format!(
        "XDG_DATA_HOME={} {} --trust; echo looptop-exited-$?; sleep 60",
        project.scratch.path().display(),
        binary.display()
    );
    let tmux = Tmux::start(&project.path(), &command);
    let screen = tmux.wait_for("started-");
    assert!(screen.contains("1 serve"), "{screen}");
    assert!(screen.contains("loop trend"), "{screen}");
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
