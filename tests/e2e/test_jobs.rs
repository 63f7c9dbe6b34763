//! Tests as a loop: real pytest projects, the real looptop, the real history. Per-test results
//! through looptop's pytest plugin (with the user's own --junitxml and PYTEST_ADDOPTS left
//! working), per-test regressions, affected tests first (or only), JUnit XML from any runner,
//! and `looptop tests`.

use serde_json::Value;

use crate::harness::{json_rows, run_finished, trigger, Project};

/// pytest as the tests run it: no cache, no bytecode, quiet.
const PYTEST: &str = "python3 -m pytest -q -p no:cacheprovider";

fn query(project: &Project, sql: &str) -> Vec<Value> {
    let done = project.run(&["query", sql, "--json"]);
    assert!(done.status.success(), "query failed: {}", done.stderr);
    json_rows(&done.stdout)
}

#[test]
fn per_test_rows_land_in_duckdb_and_the_users_own_junitxml_and_addopts_still_work() {
    let project = Project::new()
        .with_env("PYTHONDONTWRITEBYTECODE", "1")
        .with_env("PYTEST_ADDOPTS", "-k 'not left_out'");
    project.write(
        "tests/test_a.py",
        "import time\n\ndef test_quick():\n    pass\n\ndef test_sleepy():\n    time.sleep(0.05)\n\n\
         def test_left_out():\n    pass\n\ndef test_broken():\n    assert 1 == 2\n",
    );
    let command = format!("{PYTEST} --junitxml=reports/mine.xml");
    let done = project.run(&["run", "--once", "--json", "--", &command]);
    assert_eq!(done.status.code(), Some(1), "one test fails: {}", done.stderr);
    let events = json_rows(&done.stdout);
    let tests = &run_finished(&events)["tests"];
    assert_eq!(
        (
            tests["count"].as_u64(),
            tests["passed"].as_u64(),
            tests["failed"].as_u64(),
            tests["skipped"].as_u64()
        ),
        (Some(3), Some(2), Some(1), Some(0)),
        "{tests:#}"
    );
    assert_eq!(tests["slowest"][0]["nodeid"], "tests/test_a.py::test_sleepy");
    assert!(
        tests["slowest"][0]["duration_ms"].as_f64().is_some_and(|ms| ms >= 50.0),
        "{tests:#}"
    );
    assert_eq!(tests["slower"], Value::Array(Vec::new()));
    assert!(tests["new_failures"].is_array());
    let described = run_finished(&events)["description"]["tests"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(described.starts_with("3 tests: 2 passed, 1 failed"), "{described}");
    // The user's own report is written, with the same tests (their -k honoured too).
    let mine = std::fs::read_to_string(project.path().join("reports/mine.xml")).expect("the user's junit xml");
    assert!(
        mine.contains("test_sleepy") && !mine.contains("test_left_out"),
        "{mine}"
    );
    let rows = query(
        &project,
        "SELECT nodeid, file, outcome, duration_ms, message FROM test_cases ORDER BY position",
    );
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["nodeid"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "tests/test_a.py::test_quick",
            "tests/test_a.py::test_sleepy",
            "tests/test_a.py::test_broken"
        ]
    );
    assert_eq!(rows[2]["outcome"], "failed");
    assert_eq!(rows[2]["file"], "tests/test_a.py");
    assert!(
        rows[2]["message"].as_str().is_some_and(|m| m.contains("assert 1 == 2")),
        "{rows:#?}"
    );
    assert!(rows[1]["duration_ms"].as_f64().is_some_and(|ms| ms >= 50.0));
    let runs = query(&project, "SELECT test_selection, tests FROM runs");
    assert_eq!(runs[0]["test_selection"], "full");
    // Nothing of looptop's is left behind in the project's tree besides .looptop.
    assert!(std::fs::read_dir(project.path().join(".looptop/tests"))
        .expect("dir")
        .next()
        .is_none());
}

#[test]
fn a_test_made_five_times_slower_is_named_and_a_noisy_steady_suite_is_not() {
    let project = Project::new().with_env("PYTHONDONTWRITEBYTECODE", "1");
    project.write(
        "tests/test_s.py",
        "import random, time, pathlib\n\n\
         def test_noisy():\n    time.sleep(random.uniform(0.01, 0.03))\n\n\
         def test_steady():\n    time.sleep(0.02)\n\n\
         def test_fixture_grew():\n    time.sleep(float(pathlib.Path('delay.txt').read_text()))\n",
    );
    project.write("delay.txt", "0.05");
    // One looptop watching: each write of delay.txt is a run.
    let mut session = project.spawn(&["--", PYTEST]);
    for run in 0..6 {
        if run > 0 {
            project.write("delay.txt", "0.05");
        }
        let finished = session.next("run_finished");
        let tests = &finished["tests"];
        assert_eq!(tests["count"], 3, "{tests:#}");
        assert_eq!(tests["slower"], Value::Array(Vec::new()), "run {run}: {tests:#}");
        session.wait_watching();
    }
    project.write("delay.txt", "0.25");
    let finished = session.next("run_finished");
    assert!(session.interrupt().success());
    let slower = &finished["tests"]["slower"];
    assert_eq!(slower.as_array().map(Vec::len), Some(1), "{slower:#}");
    assert_eq!(slower[0]["nodeid"], "tests/test_s.py::test_fixture_grew");
    let ratio = slower[0]["ratio"].as_f64().unwrap_or_default();
    assert!((3.5..6.5).contains(&ratio), "about 5x: {slower:#}");
    assert!(slower[0]["baseline_ms"]
        .as_f64()
        .is_some_and(|ms| (45.0..90.0).contains(&ms)));
    let flagged = query(
        &project,
        "SELECT nodeid, regression_ratio FROM test_cases WHERE regression_ratio IS NOT NULL",
    );
    assert_eq!(flagged.len(), 1, "{flagged:#?}");

    // `looptop tests`: slowest first, with median, trend and the change that slowed it.
    let done = project.run(&["tests", "--json", "--slowest", "2"]);
    assert!(done.status.success(), "{}", done.stderr);
    let rows = json_rows(&done.stdout);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[0]["nodeid"], "tests/test_s.py::test_fixture_grew");
    assert_eq!(rows[0]["runs"], 7);
    assert_eq!(rows[0]["last_outcome"], "passed");
    assert_eq!(rows[0]["flaky"], false);
    assert!(
        rows[0]["last_change"]
            .as_str()
            .is_some_and(|c| c.contains("x slower after delay.txt")),
        "{rows:#?}"
    );
    assert_eq!(rows[0]["trend"].as_array().map(Vec::len), Some(7));
    let text = project.run(&["tests"]).stdout;
    assert!(text.lines().next().is_some_and(|h| h.starts_with("job")), "{text}");
    assert!(text.contains('█') && text.contains("test_fixture_grew"), "{text}");
    let csv = project.run(&["tests", "--csv", "--job", "python3"]).stdout;
    assert!(csv.starts_with("job,nodeid,runs,median_ms"), "{csv}");
}

#[test]
fn a_change_to_a_module_runs_the_tests_that_import_it_first_or_only_them() {
    let project = Project::new();
    project.write(
        "looptop.toml",
        &format!(
            "[[job]]\nname = \"first\"\ncommand = \"{PYTEST}\"\nkind = \"test\"\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n\n\
             [[job]]\nname = \"only\"\ncommand = \"{PYTEST}\"\naffected = \"only\"\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n"
        ),
    );
    // The root conftest puts the root on sys.path: tests import the modules beside it.
    project.write("conftest.py", "");
    project.write("lib_a.py", "def f():\n    return 1\n");
    project.write("lib_b.py", "from helpers import g\n");
    project.write("helpers.py", "def g():\n    return 2\n");
    project.write(
        "tests/test_a.py",
        "import lib_a\n\ndef test_a1():\n    assert lib_a.f() == 1\n\ndef test_a2():\n    pass\n",
    );
    project.write(
        "tests/test_b.py",
        "from lib_b import g\n\ndef test_b():\n    assert g() == 2\n",
    );
    let mut session = project.spawn(&["--all", "--trust"]);
    for _ in 0..2 {
        let first = session.next("run_finished");
        assert_eq!(first["tests"]["count"], 3, "{first:#}");
        assert_eq!(first["tests"]["selection"], "full");
    }
    session.wait_watching();
    // helpers.py is imported by lib_b, which only tests/test_b.py imports.
    project.write("helpers.py", "def g():\n    return 2  # changed\n");
    let mut started = Vec::new();
    while started.len() < 2 {
        let event = session.next("run_started");
        if trigger(&event).contains(&"helpers.py".to_string()) {
            started.push(event);
        }
    }
    for event in &started {
        assert_eq!(
            event["targets"],
            serde_json::json!([{"target": "tests/test_b.py", "why": "imports helpers.py"}]),
            "{event:#}"
        );
        let expected = if event["job"] == "only" { "only" } else { "first" };
        assert_eq!(event["selection"], expected, "{event:#}");
    }
    let mut finished = Vec::new();
    while finished.len() < 2 {
        let event = session.next("run_finished");
        if trigger(&event).contains(&"helpers.py".to_string()) {
            finished.push(event);
        }
    }
    assert!(session.interrupt().success());
    for event in &finished {
        let run_id = event["run_id"].as_str().expect("run id");
        let ids: Vec<String> = query(
            &project,
            &format!("SELECT nodeid FROM test_cases WHERE run_id = '{run_id}' ORDER BY position"),
        )
        .iter()
        .filter_map(|r| r["nodeid"].as_str().map(str::to_string))
        .collect();
        let tests = &event["tests"];
        if event["job"] == "only" {
            assert_eq!(ids, ["tests/test_b.py::test_b"], "{event:#}");
            assert_eq!(
                (tests["affected"].as_u64(), tests["total"].as_u64()),
                (Some(1), Some(3))
            );
            assert!(event["regression"].is_null(), "never compared with whole-suite runs");
        } else {
            assert_eq!(
                ids.first().map(String::as_str),
                Some("tests/test_b.py::test_b"),
                "{ids:?}"
            );
            assert_eq!(ids.len(), 3, "the rest of the suite follows: {ids:?}");
        }
        let description = event["description"]["tests"].as_str().unwrap_or_default();
        assert!(description.contains("of 3 affected"), "{description}");
    }
    let selections = query(&project, "SELECT job, test_selection FROM runs ORDER BY started_at");
    assert!(selections
        .iter()
        .any(|r| r["job"] == "only" && r["test_selection"] == "only"));
    let affected = query(
        &project,
        "SELECT nodeid, affected FROM test_cases t JOIN runs r USING (run_id) \
         WHERE r.job = 'first' AND len(r.trigger_files) > 0 ORDER BY nodeid",
    );
    let flags: Vec<(String, Value)> = affected
        .iter()
        .map(|r| {
            (
                r["nodeid"].as_str().unwrap_or_default().to_string(),
                r["affected"].clone(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("tests/test_a.py::test_a1".to_string(), Value::Bool(false)),
            ("tests/test_a.py::test_a2".to_string(), Value::Bool(false)),
            ("tests/test_b.py::test_b".to_string(), Value::Bool(true)),
        ]
    );
}

#[test]
fn a_suite_that_fails_to_collect_says_so() {
    let project = Project::new().with_env("PYTHONDONTWRITEBYTECODE", "1");
    project.write("tests/test_ok.py", "def test_ok():\n    pass\n");
    project.write("tests/test_typo.py", "def test_typo(:\n    pass\n");
    let done = project.run(&["run", "--once", "--json", "--", PYTEST]);
    assert_eq!(done.status.code(), Some(2), "pytest's own exit code: {}", done.stderr);
    let events = json_rows(&done.stdout);
    let tests = &run_finished(&events)["tests"];
    let problem = tests["problem"].as_str().unwrap_or_default();
    assert!(
        problem.starts_with("collection failed: tests/test_typo.py"),
        "{tests:#}"
    );
    assert!(
        problem.contains("SyntaxError") || problem.contains("invalid syntax"),
        "{problem}"
    );
    assert_eq!((tests["errors"].as_u64(), tests["count"].as_u64()), (Some(1), Some(1)));
    let described = run_finished(&events)["description"]["tests"]
        .as_str()
        .unwrap_or_default();
    assert!(described.contains("collection failed"), "{described}");
    let rows = query(&project, "SELECT nodeid, outcome FROM test_cases");
    assert_eq!(rows[0]["outcome"], "error");
}

#[test]
fn any_runner_can_hand_over_junit_xml_and_a_missing_or_stale_file_is_said() {
    let project = Project::new();
    project.write(
        "fixture.xml",
        "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"go\">\
         <testcase classname=\"pkg\" name=\"TestFast\" time=\"0.002\"/>\
         <testcase classname=\"pkg\" name=\"TestSlow\" time=\"1.500\"/>\
         <testcase classname=\"pkg\" name=\"TestBad\" time=\"0.010\"><failure message=\"want 1, got 2\"/></testcase>\
         </testsuite></testsuites>\n",
    );
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"go\"\ncommand = \"mkdir -p reports && cp fixture.xml reports/junit.xml\"\n\
         junit = \"reports/junit.xml\"\n\n\
         [[job]]\nname = \"stale\"\ncommand = \"true\"\njunit = \"reports/junit.xml\"\n\n\
         [[job]]\nname = \"none\"\ncommand = \"true\"\njunit = \"reports/none.xml\"\n",
    );
    let run = |job: &str| {
        let done = project.run(&["run", "--once", "--json", "--trust", "--job", job]);
        assert!(done.status.success(), "{}", done.stderr);
        run_finished(&json_rows(&done.stdout))["tests"].clone()
    };
    let tests = run("go");
    assert_eq!(
        (tests["count"].as_u64(), tests["failed"].as_u64()),
        (Some(3), Some(1)),
        "{tests:#}"
    );
    assert_eq!(tests["slowest"][0]["nodeid"], "pkg::TestSlow");
    assert_eq!(tests["slowest"][0]["duration_ms"], 1500.0);
    assert!(tests["problem"].is_null());
    // File times are whole seconds on some file systems: the stale check allows one.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let stale = run("stale");
    assert!(
        stale["problem"]
            .as_str()
            .is_some_and(|p| p.contains("not rewritten by this run")),
        "{stale:#}"
    );
    assert_eq!(stale["count"], 0);
    let none = run("none");
    assert!(
        none["problem"]
            .as_str()
            .is_some_and(|p| p.starts_with("no JUnit XML at")),
        "{none:#}"
    );
    let rows = query(&project, "SELECT count(*) AS n FROM test_cases");
    assert_eq!(rows[0]["n"], 3);
}

#[test]
fn changed_in_a_command_expands_to_the_changed_paths_each_one_word() {
    let project = Project::new();
    let out = project.scratch.path().join("changed.txt");
    let command = format!("printf '[%s]\\n' {{changed}} > {}", out.display());
    let mut session = project.spawn(&["--", &command]);
    session.next("run_finished");
    assert_eq!(
        std::fs::read_to_string(&out).expect("first run"),
        "[]\n",
        "no changes yet"
    );
    session.wait_watching();
    project.write("src/a b.py", "x = 1\n");
    let finished = session.next("run_finished");
    assert_eq!(trigger(&finished), ["src/a b.py"]);
    assert!(session.interrupt().success());
    assert_eq!(std::fs::read_to_string(&out).expect("second run"), "[src/a b.py]\n");
}
