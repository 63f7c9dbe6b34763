//! `test_cases`: one row per test per run of a test job, written with the run's end (so a run
//! and its tests are on disk together, the journal included), and the questions asked of them:
//! each test's recent passing times and last outcome (what a new looptop judges the next run
//! against), and `looptop tests`.

use duckdb::{params, Connection};
use serde::{Deserialize, Serialize};

use super::table::Cell;
use crate::diagnose::per_test::{TestMemory, TestOutcome, TestsReport};

/// Runs of a job looked at when a looptop starts: enough for every test's baseline, without
/// reading a long history in full.
const MEMORY_RUNS: i64 = 200;

/// One test of one run, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseRow {
    /// The runner's id for the test.
    pub nodeid: String,
    /// Its file, relative to the project root.
    pub file: Option<String>,
    /// passed, failed, error, skipped, xfailed, xpassed.
    pub outcome: String,
    /// Its time.
    pub duration_ms: f64,
    /// What went wrong, in one line.
    pub message: Option<String>,
    /// Its place in the run.
    pub position: u32,
    /// This time over its baseline, when flagged slower.
    pub regression_ratio: Option<f64>,
    /// Its baseline, when flagged slower.
    pub baseline_ms: Option<f64>,
    /// Whether the run's changes reached it.
    pub affected: Option<bool>,
    /// When its result was known, in ms after the run's start.
    #[serde(default)]
    pub finished_ms: Option<f64>,
}

impl TestCaseRow {
    /// The rows of a run's tests.
    pub fn all(tests: &TestsReport) -> Vec<Self> {
        tests
            .cases
            .iter()
            .enumerate()
            .map(|(i, judged)| Self {
                nodeid: judged.case.nodeid.clone(),
                file: judged.case.file.clone(),
                outcome: judged.case.outcome.as_str().to_string(),
                duration_ms: judged.case.duration_ms,
                message: judged.case.message.clone(),
                position: u32::try_from(i).unwrap_or(u32::MAX),
                regression_ratio: judged.slower.as_ref().map(|r| r.ratio),
                baseline_ms: judged.slower.as_ref().map(|r| r.baseline_ms),
                affected: judged.affected,
                finished_ms: judged.case.finished_ms,
            })
            .collect()
    }
}

/// Replaces run `run_id`'s tests with `rows` (writing a run twice leaves the same rows).
pub fn write(conn: &Connection, run_id: &str, rows: &[TestCaseRow]) -> duckdb::Result<()> {
    conn.execute("DELETE FROM test_cases WHERE run_id = ?::UUID", params![run_id])?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut appender = conn.appender("test_cases")?;
    for row in rows {
        appender.append_row(params![
            run_id,
            row.nodeid,
            row.file,
            row.outcome,
            row.duration_ms,
            row.message,
            row.position,
            row.regression_ratio,
            row.baseline_ms,
            row.affected,
            row.finished_ms,
        ])?;
    }
    appender.flush()
}

/// Each test's recent passing times (at most `runs`, oldest first) and last outcome, over the
/// newest runs of `job` with this `command`, across sessions.
pub fn memory(conn: &Connection, job: &str, command: &str, runs: usize) -> duckdb::Result<TestMemory> {
    let mut stmt = conn.prepare(
        "WITH recent AS (SELECT run_id, started_at FROM runs WHERE job = ? AND command = ? \
             AND outcome <> 'running' ORDER BY started_at DESC LIMIT ?), \
         cases AS (SELECT t.nodeid, t.outcome, t.duration_ms, r.started_at, \
             row_number() OVER (PARTITION BY t.nodeid ORDER BY r.started_at DESC, t.position DESC) AS newest, \
             row_number() OVER (PARTITION BY t.nodeid, t.outcome = 'passed' ORDER BY r.started_at DESC) AS newest_of_kind \
             FROM test_cases t JOIN recent r ON r.run_id = t.run_id) \
         SELECT nodeid, \
             list(duration_ms ORDER BY started_at) FILTER (WHERE outcome = 'passed' AND newest_of_kind <= ? \
                 AND duration_ms IS NOT NULL), \
             max(outcome) FILTER (WHERE newest = 1) \
         FROM cases GROUP BY nodeid",
    )?;
    let runs = i64::try_from(runs).unwrap_or(i64::MAX);
    let mut memory = TestMemory::default();
    let rows = stmt.query_map(params![job, command, MEMORY_RUNS, runs], |row| {
        Ok((
            row.get::<_, String>(0)?,
            Cell::from(row.get::<_, duckdb::types::Value>(1)?),
            row.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (nodeid, times, outcome) = row?;
        if let Cell::List(times) = times {
            let times: Vec<f64> = times
                .into_iter()
                .filter_map(|c| match c {
                    Cell::Float(f) => Some(f),
                    _ => None,
                })
                .collect();
            if !times.is_empty() {
                memory.baselines.insert(nodeid.clone(), times);
            }
        }
        if let Some(outcome) = outcome.as_deref().and_then(TestOutcome::parse) {
            memory.last.insert(nodeid, outcome);
        }
    }
    Ok(memory)
}

/// `looptop tests`: per test (of `job`, or all jobs), the slowest `limit` by median passing
/// time: runs, median, last time and outcome, whether it is flaky (its outcome flipped between
/// pass and fail in a run whose changes did not reach it), its last change (the newest run
/// whose changes reached it or that found it slower) and the trend of its last passing times.
pub const TESTS_SQL: &str = "WITH cases AS ( \
        SELECT r.job, t.nodeid, t.outcome, t.duration_ms, t.affected, t.regression_ratio, r.started_at, \
               r.trigger_files, \
               row_number() OVER (PARTITION BY r.job, t.nodeid ORDER BY r.started_at DESC) AS newest, \
               lag(t.outcome) OVER (PARTITION BY r.job, t.nodeid ORDER BY r.started_at) AS before \
        FROM test_cases t JOIN runs r ON r.run_id = t.run_id WHERE (? IS NULL OR r.job = ?)), \
    per AS ( \
        SELECT job, nodeid, count(*) AS runs, \
               median(duration_ms) FILTER (WHERE outcome = 'passed') AS median_ms, \
               max(duration_ms) FILTER (WHERE newest = 1) AS last_ms, \
               max(outcome) FILTER (WHERE newest = 1) AS last_outcome, \
               count(*) FILTER (WHERE affected = false AND before IN ('passed', 'failed', 'error') \
                   AND outcome IN ('passed', 'failed', 'error') AND (before = 'passed') <> (outcome = 'passed')) AS flips, \
               arg_max(CASE WHEN regression_ratio IS NULL THEN array_to_string(trigger_files, ', ') \
                   ELSE printf('%.1fx slower', regression_ratio) || CASE WHEN len(trigger_files) > 0 \
                   THEN ' after ' || array_to_string(trigger_files, ', ') ELSE '' END END, started_at) \
                   FILTER (WHERE affected OR regression_ratio IS NOT NULL) AS last_change, \
               max(started_at) FILTER (WHERE affected OR regression_ratio IS NOT NULL) AS last_change_at, \
               list(duration_ms ORDER BY started_at) FILTER (WHERE newest <= 20 AND outcome = 'passed') AS trend \
        FROM cases GROUP BY job, nodeid) \
    SELECT job, nodeid, runs, median_ms, last_ms, last_outcome, flips > 0 AS flaky, last_change, last_change_at, trend \
    FROM per ORDER BY median_ms DESC NULLS LAST, job, nodeid LIMIT ?";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reader::History;
    use crate::store::{open, schema, Access};

    fn row(nodeid: &str, outcome: &str, duration_ms: f64, affected: Option<bool>) -> TestCaseRow {
        TestCaseRow {
            nodeid: nodeid.into(),
            file: Some("tests/test_a.py".into()),
            outcome: outcome.into(),
            duration_ms,
            message: None,
            position: 0,
            regression_ratio: None,
            baseline_ms: None,
            affected,
            finished_ms: None,
        }
    }

    /// A history with one run per entry of `runs` (trigger, its tests), a second apart.
    fn history(runs: &[(&[&str], Vec<TestCaseRow>)]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.duckdb");
        let conn = open(&path, Access::Write).expect("open");
        schema::migrate(&conn, &path).expect("migrate");
        for (i, (trigger, cases)) in runs.iter().enumerate() {
            let run_id = uuid::Uuid::now_v7().to_string();
            let list: Vec<String> = trigger.iter().map(|t| format!("'{t}'")).collect();
            conn.execute_batch(&format!(
                "INSERT INTO runs (run_id, job, command, kind, started_at, outcome, trigger_files, host, \
                 looptop_version, test_selection) VALUES ('{run_id}', 'test', 'pytest', 'test', \
                 make_timestamp({}::BIGINT)::TIMESTAMPTZ, 'pass', [{}]::VARCHAR[], 'h', 'v', 'full')",
                1_700_000_000_000_000i64 + i64::try_from(i).unwrap_or(0) * 1_000_000,
                list.join(", ")
            ))
            .expect("run");
            write(&conn, &run_id, cases).expect("cases");
            // Written twice: the same rows.
            write(&conn, &run_id, cases).expect("cases again");
        }
        (dir, path)
    }

    #[test]
    fn a_run_kept_in_the_journal_brings_its_tests_into_the_history() {
        use crate::diagnose::per_test::{JudgedCase, Selection, TestCase};
        use crate::report::{RunFinished, RunIdentity};
        use crate::store::run_row::RunRow;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.duckdb");
        let run_id = uuid::Uuid::now_v7().to_string();
        let run = RunIdentity {
            run_id: run_id.clone(),
            job: "test".into(),
            command: "pytest".into(),
            kind: crate::config::JobKind::Test,
            trigger: Vec::new(),
            ts: std::time::SystemTime::now(),
            log: None,
        };
        let mut finished = RunFinished::passed_for_test(run, 100.0);
        finished.tests = Some(TestsReport {
            count: 1,
            passed: 1,
            selection: Selection::Only,
            cases: vec![JudgedCase {
                case: TestCase {
                    nodeid: "t.py::a".into(),
                    file: Some("t.py".into()),
                    outcome: TestOutcome::Passed,
                    duration_ms: 12.5,
                    message: None,
                    finished_ms: Some(90.0),
                },
                slower: None,
                affected: Some(true),
            }],
            ..TestsReport::default()
        });
        let row = RunRow::finished(&finished, "r".into(), "h".into());
        crate::store::journal::append(&path, &row).expect("journal");
        let conn = open(&path, Access::Write).expect("open");
        schema::migrate(&conn, &path).expect("migrate");
        crate::store::journal::ingest(&path, &conn).expect("ingest");
        drop(conn);
        let history = History::open(&path).expect("read");
        let rows = history
            .query(
                "SELECT nodeid, duration_ms, affected, finished_ms, (SELECT test_selection FROM runs) FROM test_cases",
            )
            .expect("query");
        assert_eq!(
            rows.rows,
            [[
                Cell::Text("t.py::a".into()),
                Cell::Float(12.5),
                Cell::Bool(true),
                Cell::Float(90.0),
                Cell::Text("only".into())
            ]]
        );
    }

    #[test]
    fn a_test_whose_outcome_flips_without_a_change_that_reaches_it_is_flaky() {
        let runs: Vec<(&[&str], Vec<TestCaseRow>)> = vec![
            (
                &[],
                vec![
                    row("a::flaky", "passed", 10.0, None),
                    row("a::fixed", "failed", 50.0, None),
                ],
            ),
            (
                &["src/other.py"],
                vec![
                    row("a::flaky", "failed", 11.0, Some(false)),
                    row("a::fixed", "failed", 50.0, Some(false)),
                ],
            ),
            // Its own change fixed it: not flaky.
            (
                &["src/a.py"],
                vec![
                    row("a::flaky", "passed", 12.0, Some(false)),
                    row("a::fixed", "passed", 40.0, Some(true)),
                ],
            ),
        ];
        let (_dir, path) = history(&runs);
        let history = History::open(&path).expect("read");
        let table = history.tests(Some("test"), 10).expect("tests");
        let column = |name: &str| table.columns.iter().position(|c| c == name).expect(name);
        assert_eq!(table.rows.len(), 2);
        // Slowest median first.
        assert_eq!(table.rows[0][column("nodeid")], Cell::Text("a::fixed".into()));
        assert_eq!(table.rows[0][column("flaky")], Cell::Bool(false));
        assert_eq!(table.rows[0][column("last_change")], Cell::Text("src/a.py".into()));
        assert_eq!(table.rows[0][column("runs")], Cell::Int(3));
        assert_eq!(table.rows[1][column("flaky")], Cell::Bool(true));
        assert_eq!(table.rows[1][column("median_ms")], Cell::Float(11.0));
        assert_eq!(table.rows[1][column("last_change")], Cell::Null);
        let memory = history.test_memory("test", "pytest", 10).expect("memory");
        assert_eq!(memory.baselines["a::flaky"], [10.0, 12.0]);
        assert_eq!(memory.last["a::fixed"], TestOutcome::Passed);
        assert!(history
            .test_memory("other", "pytest", 10)
            .expect("memory")
            .last
            .is_empty());
    }
}
