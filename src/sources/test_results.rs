//! Per-test results as evidence: where a test job's runner leaves them and how they are read back
//! once the run is over. For pytest, looptop's own plugin (`looptop_pytest.py`, installed into
//! `.looptop/pytest/`) writes one JSON line per test into `.looptop/tests/<run id>.jsonl`; for
//! any other runner, the JUnit XML file the job names (`junit`). These only produce data: what
//! the results mean is `diagnose::per_test`' business.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde::Deserialize;

use crate::diagnose::per_test::{TestCase, TestOutcome, TestResults};
use crate::store::data_dir::{self, UnsafePath};

/// The plugin, as looptop ships it.
const PLUGIN_SOURCE: &str = include_str!("looptop_pytest.py");
/// The module name pytest loads it by (`-p`).
pub const PLUGIN_MODULE: &str = "looptop_pytest";

/// Where test results go in a project: `.looptop/tests` (results, selections) and
/// `.looptop/pytest` (the plugin).
#[derive(Debug, Clone)]
pub struct TestDirs {
    /// The project root.
    pub root: PathBuf,
    results: PathBuf,
    plugin: PathBuf,
}

impl TestDirs {
    /// Prepares both directories under `root` and writes the plugin (again if it changed); the
    /// directories must be real ones of this user (see `data_dir`).
    pub fn prepare(root: &Path) -> Result<Self, UnsafePath> {
        let base = data_dir::prepare(root)?;
        let results = base.join("tests");
        let plugin = base.join("pytest");
        data_dir::ensure_real_dir(&results)?;
        data_dir::ensure_real_dir(&plugin)?;
        let file = plugin.join(format!("{PLUGIN_MODULE}.py"));
        let io = |e: std::io::Error| UnsafePath::Io {
            path: file.clone(),
            detail: e.to_string(),
        };
        if std::fs::read_to_string(&file).ok().as_deref() != Some(PLUGIN_SOURCE) {
            data_dir::refuse_link(&file)?;
            let _ = std::fs::remove_file(&file);
            std::fs::write(&file, PLUGIN_SOURCE).map_err(io)?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            results,
            plugin,
        })
    }

    /// How run `run_id` of a pytest job collects its results: the environment that loads the
    /// plugin is added to `command` (after the job's own, which it extends); `first` is what
    /// goes first (or alone, with `only`).
    pub fn pytest(
        &self,
        run_id: &str,
        command: &mut Command,
        job_env: &BTreeMap<String, String>,
        first: &[String],
        only: bool,
        shown: bool,
    ) -> TestCollect {
        let out = self.results.join(format!("{run_id}.jsonl"));
        let select = (!first.is_empty()).then(|| self.results.join(format!("{run_id}.select.json")));
        if let Some(path) = &select {
            let body = serde_json::json!({ "first": first, "only": only }).to_string();
            if let Err(e) = std::fs::write(path, body) {
                log::warn!("cannot write {}: {e}; the tests run in pytest's order", path.display());
            }
        }
        let inherited = |key: &str| {
            job_env
                .get(key)
                .cloned()
                .or_else(|| std::env::var(key).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let addopts = match inherited("PYTEST_ADDOPTS") {
            Some(theirs) => format!("{theirs} -p {PLUGIN_MODULE}"),
            None => format!("-p {PLUGIN_MODULE}"),
        };
        let plugin_dir = self.plugin.display().to_string();
        let pythonpath = match inherited("PYTHONPATH") {
            Some(theirs) => format!("{plugin_dir}:{theirs}"),
            None => plugin_dir,
        };
        command
            .env("PYTEST_ADDOPTS", addopts)
            .env("PYTHONPATH", pythonpath)
            .env("LOOPTOP_TESTS_OUT", &out)
            .env("LOOPTOP_ROOT", &self.root);
        match &select {
            Some(path) => command.env("LOOPTOP_TESTS_SELECT", path),
            None => command.env_remove("LOOPTOP_TESTS_SELECT"),
        };
        TestCollect::Pytest {
            out,
            select,
            shown,
            since: SystemTime::now(),
        }
    }
}

/// Where a run's per-test results will be, and how to read them.
#[derive(Debug, Clone, PartialEq)]
pub enum TestCollect {
    /// looptop's pytest plugin writes them.
    Pytest {
        /// The JSON lines file.
        out: PathBuf,
        /// The selection handed to the plugin, removed with the results.
        select: Option<PathBuf>,
        /// The command visibly runs pytest, so no results is worth saying.
        shown: bool,
        /// When the run started (the plugin's times are wall-clock times).
        since: SystemTime,
    },
    /// The job's runner writes JUnit XML.
    Junit {
        /// The file.
        path: PathBuf,
        /// When the run started: an older file is a previous run's.
        since: SystemTime,
    },
}

impl TestCollect {
    /// Reads the results once the run is over (and removes looptop's own files); `None` when
    /// there are none and none were to be expected.
    pub fn read(&self) -> Option<TestResults> {
        match self {
            Self::Pytest {
                out,
                select,
                shown,
                since,
            } => {
                let text = std::fs::read_to_string(out);
                let _ = std::fs::remove_file(out);
                if let Some(select) = select {
                    let _ = std::fs::remove_file(select);
                }
                match text {
                    Ok(text) => Some(read_plugin_lines(&text, *since)),
                    Err(_) if *shown => Some(TestResults {
                        problem: Some(
                            "pytest reported no tests to looptop (it did not start, or its environment \
                             dropped PYTEST_ADDOPTS or PYTHONPATH)"
                                .into(),
                        ),
                        ..TestResults::default()
                    }),
                    Err(_) => None,
                }
            }
            Self::Junit { path, since } => Some(read_junit(path, *since)),
        }
    }
}

/// One line of the plugin's file.
#[derive(Deserialize)]
struct Line {
    event: Option<String>,
    nodeid: Option<String>,
    file: Option<String>,
    outcome: Option<String>,
    duration_ms: Option<f64>,
    message: Option<String>,
    when: Option<String>,
    total: Option<u64>,
    first: Option<u64>,
    exitstatus: Option<i64>,
    /// When the line was written (seconds since the epoch).
    t: Option<f64>,
}

/// The results in the plugin's lines. Several pytest sessions in one run (`pytest a && pytest
/// b`) add up; a line cut short is skipped; a session that did not finish, a collection error
/// or no tests at all is said in `problem`. `since` is the run's start, which the tests' times
/// of completion are counted from.
pub fn read_plugin_lines(text: &str, since: SystemTime) -> TestResults {
    let since_s = since
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut results = TestResults::default();
    let (mut started, mut finished) = (0, 0);
    let mut collect_errors: Vec<String> = Vec::new();
    let mut exit_no_tests = false;
    for line in text.lines() {
        let Ok(line) = serde_json::from_str::<Line>(line) else {
            continue;
        };
        match line.event.as_deref() {
            Some("start") => started += 1,
            Some("collected") => {
                results.collected = Some(results.collected.unwrap_or(0) + line.total.unwrap_or(0));
                if let Some(first) = line.first {
                    results.affected = Some(results.affected.unwrap_or(0) + first);
                }
            }
            Some("finish") => {
                finished += 1;
                exit_no_tests |= line.exitstatus == Some(5);
            }
            Some(_) => {}
            None => {
                let (Some(nodeid), Some(outcome)) = (line.nodeid, line.outcome.as_deref().and_then(TestOutcome::parse))
                else {
                    continue;
                };
                if line.when.as_deref() == Some("collect") {
                    let message = line.message.as_deref().unwrap_or("");
                    collect_errors.push(format!("{nodeid}: {message}").trim_end_matches([':', ' ']).to_string());
                }
                results.cases.push(TestCase {
                    nodeid,
                    file: line.file,
                    outcome,
                    duration_ms: line.duration_ms.filter(|d| d.is_finite() && *d >= 0.0).unwrap_or(0.0),
                    message: line.message.filter(|m| !m.is_empty()),
                    finished_ms: line.t.map(|t| ((t - since_s) * 1000.0).max(0.0)),
                });
            }
        }
    }
    results.problem = if !collect_errors.is_empty() {
        let more = match collect_errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        Some(format!("collection failed: {}{more}", collect_errors[0]))
    } else if started > finished {
        Some(format!(
            "pytest stopped before the end of its session: {} reported",
            crate::format::count(results.cases.len(), "test", "tests")
        ))
    } else if exit_no_tests && results.cases.is_empty() {
        Some("pytest collected no tests".into())
    } else {
        None
    };
    results
}

/// The results in the JUnit XML file at `path`, written after `since`.
fn read_junit(path: &Path, since: SystemTime) -> TestResults {
    let shown = path.display();
    let problem = |text: String| TestResults {
        problem: Some(text),
        ..TestResults::default()
    };
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    match modified {
        Err(_) => {
            return problem(format!(
                "no JUnit XML at {shown} (`junit` in looptop.toml): the runner wrote none"
            ))
        }
        // File times can be coarser than the clock: a second's slack.
        Ok(at) if at + std::time::Duration::from_secs(1) < since => {
            return problem(format!(
                "{shown} was not rewritten by this run: its results are an earlier run's"
            ))
        }
        Ok(_) => {}
    }
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return problem(format!("cannot read {shown}: {e}")),
    };
    let report = super::junit::parse(&text);
    let collected = u64::try_from(report.cases.len()).ok();
    TestResults {
        problem: (!report.complete).then(|| {
            format!(
                "{shown} is cut short or not JUnit XML: {} read",
                crate::format::count(report.cases.len(), "test", "tests")
            )
        }),
        cases: report.cases,
        collected,
        affected: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_lines_add_up_and_say_what_went_wrong() {
        let text = r#"{"event": "start"}
{"event": "collected", "total": 3, "first": 1}
{"nodeid": "tests/test_b.py::t", "file": "tests/test_b.py", "outcome": "passed", "duration_ms": 12.5, "t": 2.5}
{"nodeid": "tests/test_a.py::t", "file": "tests/test_a.py", "outcome": "failed", "duration_ms": 3.0, "message": "assert 0"}
{"event": "finish", "exitstatus": 1}
{"nodeid": "tests/test_a.py::u", "outc"#;
        let results = read_plugin_lines(text, SystemTime::UNIX_EPOCH);
        assert_eq!(results.cases.len(), 2);
        assert_eq!(
            (results.collected, results.affected, results.problem.as_deref()),
            (Some(3), Some(1), None)
        );
        assert_eq!(results.cases[1].message.as_deref(), Some("assert 0"));
        assert_eq!(results.cases[0].finished_ms, Some(2500.0));
        assert_eq!(results.cases[1].finished_ms, None);
        // Killed midway: no finish.
        let cut = text.split("{\"event\": \"finish\"").next().unwrap_or("");
        let results = read_plugin_lines(cut, SystemTime::UNIX_EPOCH);
        assert_eq!(
            results.problem.as_deref(),
            Some("pytest stopped before the end of its session: 2 tests reported")
        );
        let broken = r#"{"event": "start"}
{"nodeid": "tests/test_x.py", "file": "tests/test_x.py", "outcome": "error", "duration_ms": 0, "message": "SyntaxError: invalid syntax", "when": "collect"}
{"event": "finish", "exitstatus": 2}"#;
        let results = read_plugin_lines(broken, SystemTime::UNIX_EPOCH);
        assert_eq!(
            results.problem.as_deref(),
            Some("collection failed: tests/test_x.py: SyntaxError: invalid syntax")
        );
        assert_eq!(results.cases[0].outcome, TestOutcome::Error);
        assert_eq!(read_plugin_lines("", SystemTime::UNIX_EPOCH).problem, None);
        assert_eq!(
            read_plugin_lines(
                "{\"event\":\"start\"}\n{\"event\":\"finish\",\"exitstatus\":5}",
                SystemTime::UNIX_EPOCH
            )
            .problem
            .as_deref(),
            Some("pytest collected no tests")
        );
    }

    #[test]
    fn junit_files_missing_stale_or_cut_short_are_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junit.xml");
        let missing = read_junit(&path, SystemTime::now());
        assert!(
            missing
                .problem
                .as_deref()
                .is_some_and(|p| p.starts_with("no JUnit XML")),
            "{missing:?}"
        );
        std::fs::write(&path, "<testsuite><testcase name=\"a\" time=\"0.5\"/></testsuite>").expect("write");
        let fresh = read_junit(&path, SystemTime::now() - std::time::Duration::from_secs(5));
        assert_eq!((fresh.cases.len(), fresh.problem), (1, None));
        let stale = read_junit(&path, SystemTime::now() + std::time::Duration::from_secs(60));
        assert!(stale.problem.is_some_and(|p| p.contains("not rewritten")));
        std::fs::write(&path, "<testsuite><testcase name=\"a\" time=\"0.5\"/><testca").expect("write");
        let cut = read_junit(&path, SystemTime::now() - std::time::Duration::from_secs(5));
        assert_eq!(cut.cases.len(), 1);
        assert!(cut.problem.is_some_and(|p| p.contains("cut short")));
    }
}
