//! What a new user meets first: a pytest suite's first run, files that exist only for a moment,
//! files still being written, and jobs that need another job's output.

use std::time::Duration;

use crate::harness::{trigger, Project};

/// pytest builds its cache under a scratch name (`pytest-cache-files-XXXX`) and renames it to
/// `.pytest_cache`: the first run of a suite must not restart itself.
#[test]
fn the_first_pytest_run_of_a_project_is_not_restarted_by_its_own_cache() {
    let project = Project::new();
    project.write("tests/test_a.py", "def test_a():\n    assert 1 + 1 == 2\n");
    let mut session = project.spawn(&["--", "python3", "-m", "pytest", "-q", "tests"]);
    let finished = session.next("run_finished");
    assert_eq!(finished["outcome"], "pass", "{finished}\n{}", session.stderr());
    assert!(project.path().join(".pytest_cache").is_dir(), "pytest wrote its cache");
    session.expect_quiet("run_started", Duration::from_millis(1500));
    assert!(session.interrupt().success());
}

/// The general case, with no default to lean on: a directory built under a scratch name and
/// renamed to an ignored one, and a file created and deleted again, change nothing.
#[test]
fn paths_that_come_and_go_within_a_burst_do_not_retrigger_the_job() {
    let project = Project::new();
    project.write(
        "looptop.toml",
        "[watch]\nignore = [\"built/\"]\n[[job]]\nname = \"build\"\ncommand = [\"python3\", \"build.py\"]\n",
    );
    // As pytest builds its cache: a directory under a scratch name, renamed when complete.
    project.write(
        "build.py",
        "import os, shutil\nshutil.rmtree('built', ignore_errors=True)\nscratch = f'scratch-{os.getpid()}'\n\
         os.mkdir(scratch)\nfor name in 'ab':\n    open(os.path.join(scratch, name), 'w').write(name)\n\
         os.rename(scratch, 'built')\nopen('tmp.txt', 'w').write('t')\nos.remove('tmp.txt')\n",
    );
    project.write("src/model.py", "x = 1\n");
    let mut session = project.spawn(&["--trust"]);
    assert_eq!(session.next("run_finished")["outcome"], "pass");
    assert!(project.path().join("built/a").is_file());
    session.expect_quiet("run_started", Duration::from_millis(1500));
    // A real change still runs it, and names only the real change.
    session.wait_watching();
    project.write("src/model.py", "x = 2\n");
    let rerun = session.next("run_started");
    assert_eq!(trigger(&rerun), ["src/model.py"]);
    assert_eq!(session.next("run_finished")["outcome"], "pass");
    session.expect_quiet("run_started", Duration::from_millis(1000));
    assert!(session.interrupt().success());
}

/// A file held open for writing is not a change until it is closed.
#[test]
fn a_file_still_being_written_starts_no_run_until_it_is_closed() {
    let project = Project::new();
    let mut session = project.spawn(&["--postpone", "--", "true"]);
    session.wait_watching();
    let mut file = std::fs::File::create(project.path().join("data.csv")).expect("create");
    std::io::Write::write_all(&mut file, b"a,b\n1,2\n").expect("write");
    std::io::Write::flush(&mut file).expect("flush");
    // Creating the file is an event too: only the close makes it a change.
    session.expect_quiet("run_started", Duration::from_millis(1000));
    std::io::Write::write_all(&mut file, b"3,4\n").expect("write");
    drop(file);
    let started = session.next("run_started");
    assert_eq!(trigger(&started), ["data.csv"]);
    assert!(session.interrupt().success());
}

/// A config whose `consume` job needs `prepare`, which writes `data.txt` in two halves with a
/// pause between (a write still in progress, as a query writing Parquet is).
fn needs_project() -> Project {
    let project = Project::new();
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"consume\"\nneeds = [\"prepare\"]\nwatch = [\"data.txt\", \"consume.txt\"]\n\
         command = \"grep -q end data.txt\"\n\
         [[job]]\nname = \"prepare\"\nwatch = [\"prepare.txt\"]\n\
         command = \"exec 3>data.txt; echo begin >&3; sleep 0.4; echo end >&3; exec 3>&-; sleep 0.3\"\n",
    );
    project.write("prepare.txt", "1\n");
    project
}

#[test]
fn a_job_runs_after_the_job_it_needs_has_passed_and_again_when_it_passes_again() {
    let project = needs_project();
    let mut session = project.spawn(&["--all", "--trust"]);
    let first = session.next("run_started");
    assert_eq!(
        first["job"], "prepare",
        "the needed job runs first, whatever the file's order"
    );
    let prepared = session.next("run_finished");
    assert_eq!(
        (prepared["job"].as_str(), prepared["outcome"].as_str()),
        (Some("prepare"), Some("pass"))
    );
    let consumer = session.next("run_finished");
    assert_eq!(consumer["job"], "consume");
    assert_eq!(consumer["outcome"], "pass", "it read the whole file: {consumer}");
    session.expect_quiet("run_started", Duration::from_millis(1500));
    let said = |text: &str| {
        session
            .seen
            .iter()
            .any(|e| e["event"] == "notice" && e["message"].as_str().is_some_and(|m| m.contains(text)))
    };
    assert!(said("`consume` waits for `prepare`"), "{:#?}", session.seen);
    assert!(said("`prepare` passed: running `consume`"), "{:#?}", session.seen);
    // A change to what `prepare` reads runs it, then `consume` again: once, after it.
    session.wait_watching();
    project.write("prepare.txt", "2\n");
    assert_eq!(session.next("run_started")["job"], "prepare");
    assert_eq!(session.next("run_finished")["job"], "prepare");
    let again = session.next("run_finished");
    assert_eq!(
        (again["job"].as_str(), again["outcome"].as_str()),
        (Some("consume"), Some("pass"))
    );
    session.expect_quiet("run_started", Duration::from_millis(1500));
    let consumer_runs = session
        .seen
        .iter()
        .filter(|e| e["event"] == "run_started" && e["job"] == "consume")
        .count();
    assert_eq!(consumer_runs, 2, "{:#?}", session.seen);
    assert!(session.interrupt().success());
}

#[test]
fn once_with_all_runs_each_job_once_in_order_and_skips_what_a_failed_need_holds() {
    let project = needs_project();
    let done = project.run(&["run", "--all", "--once", "--json", "--trust"]);
    assert!(done.status.success(), "{}", done.stderr);
    let finished: Vec<String> = crate::harness::json_rows(&done.stdout)
        .iter()
        .filter(|e| e["event"] == "run_finished" && e["outcome"] == "pass")
        .map(|e| e["job"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(finished, ["prepare", "consume"]);
    // `--job` twice is the same as --all here; a failing need holds its dependent back.
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"prepare\"\ncommand = \"exit 3\"\n[[job]]\nname = \"consume\"\nneeds = [\"prepare\"]\ncommand = \"true\"\n",
    );
    let done = project.run(&["run", "--job", "prepare", "--job", "consume", "--once", "--trust"]);
    assert_eq!(done.status.code(), Some(3), "{}", done.stderr);
    assert!(
        done.stderr.contains("`consume` does not run: `prepare` did not pass"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains("▶ consume"), "{}", done.stderr);
}

#[test]
fn needs_that_cannot_be_met_are_config_errors_naming_the_jobs() {
    let project = Project::new();
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"a\"\ncommand = \"true\"\nneeds = [\"b\"]\n\
         [[job]]\nname = \"b\"\ncommand = \"true\"\nneeds = [\"a\"]\n",
    );
    let done = project.run(&["run", "--once", "--trust"]);
    assert_eq!(done.status.code(), Some(2));
    assert!(
        done.stderr
            .contains("jobs need each other in a circle: `a` needs `b` needs `a`"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("looptop.toml:4:"),
        "names the line: {}",
        done.stderr
    );
    project.write("looptop.toml", "[[job]]\nname = \"a\"\ncommand = \"true\"\nneeds = [\"prepar\"]\n[[job]]\nname = \"prepare\"\ncommand = \"true\"\n");
    let done = project.run(&["run", "--once", "--trust"]);
    assert_eq!(done.status.code(), Some(2));
    assert!(
        done.stderr.contains("job `a` needs `prepar`, which is not a job here"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("did you mean `prepare`?"), "{}", done.stderr);
}
