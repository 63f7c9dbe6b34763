//! Per-test results of a test job: what the runner reported (`TestResults`, from
//! `sources::test_results`), judged against what the job's earlier runs left (`TestMemory`): the
//! counts, the slowest tests, the tests that got slower by the same rule as runs (see
//! `regression`), and the failures that are new. Pure: no files, no clock.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::regression::{compare, Flag, Regression};
use super::thresholds::{BASELINE_RUNS, SLOWEST_TESTS, TEST_MIN_SLOWER_MS};

/// Which tests a test job runs after a change (`affected` in looptop.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Affected {
    /// The tests the change can affect first, then the rest of the suite.
    #[default]
    First,
    /// Only the tests the change can affect.
    Only,
    /// The whole suite in the runner's own order.
    Off,
}

/// How one test ended, in pytest's words (JUnit's map onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    /// It passed.
    Passed,
    /// An assertion (or the test itself) failed.
    Failed,
    /// Setup, teardown or collection failed: the test could not run properly.
    Error,
    /// Skipped.
    Skipped,
    /// Expected to fail, and failed.
    XFailed,
    /// Expected to fail, and passed.
    XPassed,
}

impl TestOutcome {
    /// The word used in JSON and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Skipped => "skipped",
            Self::XFailed => "xfailed",
            Self::XPassed => "xpassed",
        }
    }

    /// The outcome a word stands for (`as_str`'s inverse).
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "passed" => Self::Passed,
            "failed" => Self::Failed,
            "error" => Self::Error,
            "skipped" => Self::Skipped,
            "xfailed" => Self::XFailed,
            "xpassed" => Self::XPassed,
            _ => return None,
        })
    }

    /// Failed or errored.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Error)
    }
}

/// One test's result in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The runner's id for it (pytest's node id, or JUnit's `classname::name`).
    pub nodeid: String,
    /// Its file, relative to the project root, when known.
    pub file: Option<String>,
    /// How it ended.
    pub outcome: TestOutcome,
    /// Its time (pytest: setup, call and teardown together; JUnit: `time`).
    pub duration_ms: f64,
    /// The first line of what went wrong, for a failure.
    pub message: Option<String>,
    /// When its result was known, in ms after the run's start (when the runner says).
    pub finished_ms: Option<f64>,
}

/// What a run's test runner reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestResults {
    /// Every test reported, in the order they ran (collection errors included, as `error`).
    pub cases: Vec<TestCase>,
    /// Tests the runner collected, before looptop's selection left any out.
    pub collected: Option<u64>,
    /// Tests run first because the change could affect them (or the only ones run).
    pub affected: Option<u64>,
    /// What kept the results from being whole ("collection failed: ...", "no file ..."), if anything.
    pub problem: Option<String>,
}

/// Which tests a run ran, and in what order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// The whole suite in the runner's own order.
    #[default]
    Full,
    /// The whole suite, the tests the change can affect first.
    First,
    /// Only the tests the change can affect.
    Only,
}

impl Selection {
    /// The word used in JSON and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::First => "first",
            Self::Only => "only",
        }
    }
}

/// A test file or test looptop selected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// A test file (relative to the project root) or a test's node id.
    pub target: String,
    /// "changed", "imports src/model.py", "conftest tests/conftest.py", "failed last time".
    pub why: String,
}

/// What looptop decided about a test run before it started.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestPlan {
    /// Full, affected first, or affected only.
    pub selection: Selection,
    /// What goes first (or alone), and why.
    pub targets: Vec<Target>,
    /// The test files the run's changes reach; `None` when looptop cannot tell (no changes, or
    /// changes it cannot follow, such as a data file).
    pub affected_files: Option<BTreeSet<String>>,
}

/// A test named among the slowest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowTest {
    /// Its node id.
    pub nodeid: String,
    /// Its time in this run.
    pub duration_ms: f64,
}

/// A test that got slower beyond its own noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowerTest {
    /// Its node id.
    pub nodeid: String,
    /// This run's time over its baseline's median.
    pub ratio: f64,
    /// The median of its recent passing times.
    pub baseline_ms: f64,
}

/// A test's result with what looptop made of it, as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedCase {
    /// The result.
    pub case: TestCase,
    /// Flagged slower against its own recent passing times.
    pub slower: Option<Regression>,
    /// Whether the run's changes reached its file (`None`: cannot tell).
    pub affected: Option<bool>,
}

/// `run_finished.tests` (also kept as JSON in the history's `runs.tests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TestsReport {
    /// Tests reported.
    pub count: usize,
    /// Passed (xpassed included).
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped (xfailed included).
    pub skipped: usize,
    /// The slowest tests of the run, slowest first.
    pub slowest: Vec<SlowTest>,
    /// Tests clearly slower than their recent passing runs, most slowed first.
    pub slower: Vec<SlowerTest>,
    /// Node ids failing now that did not fail when they last ran.
    pub new_failures: Vec<String>,
    /// Errors (setup, teardown, collection).
    pub errors: usize,
    /// Tests collected, before any selection (`null` when the runner does not say).
    pub total: Option<u64>,
    /// Tests run first (or alone) because the change could affect them.
    pub affected: Option<u64>,
    /// Which tests ran: full, first or only.
    pub selection: Selection,
    /// What kept the results from being whole, if anything.
    pub problem: Option<String>,
    /// Every test with its judgement (kept for the history, not in JSON).
    #[serde(skip)]
    pub cases: Vec<JudgedCase>,
}

/// What the job's earlier runs left for judging the next: each test's recent passing times
/// (its baseline, oldest first) and its last outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct TestMemory {
    /// Recent passing times per node id, oldest first, at most `BASELINE_RUNS`.
    pub baselines: HashMap<String, Vec<f64>>,
    /// The last outcome per node id.
    pub last: HashMap<String, TestOutcome>,
}

impl TestMemory {
    /// Node ids that failed when they last ran, sorted.
    pub fn failing(&self) -> Vec<String> {
        let mut failing: Vec<String> = self
            .last
            .iter()
            .filter(|(_, o)| o.is_failure())
            .map(|(id, _)| id.clone())
            .collect();
        failing.sort();
        failing
    }

    /// Judges `results` of a run planned as `plan`, and remembers them for the next run.
    pub fn judge(&mut self, results: TestResults, plan: &TestPlan) -> TestsReport {
        let count = |f: fn(TestOutcome) -> bool| results.cases.iter().filter(|c| f(c.outcome)).count();
        let mut report = TestsReport {
            count: results.cases.len(),
            passed: count(|o| matches!(o, TestOutcome::Passed | TestOutcome::XPassed)),
            failed: count(|o| o == TestOutcome::Failed),
            skipped: count(|o| matches!(o, TestOutcome::Skipped | TestOutcome::XFailed)),
            errors: count(|o| o == TestOutcome::Error),
            total: results.collected,
            affected: results.affected.filter(|_| plan.selection != Selection::Full),
            selection: plan.selection,
            problem: results.problem,
            ..TestsReport::default()
        };
        let mut slowest: Vec<SlowTest> = results
            .cases
            .iter()
            .map(|c| SlowTest {
                nodeid: c.nodeid.clone(),
                duration_ms: c.duration_ms,
            })
            .collect();
        slowest.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms));
        slowest.truncate(SLOWEST_TESTS);
        report.slowest = slowest;
        let seen_before = !self.last.is_empty();
        for case in results.cases {
            let slower = (case.outcome == TestOutcome::Passed)
                .then(|| self.baselines.get(&case.nodeid))
                .flatten()
                .and_then(|baseline| slower(case.duration_ms, baseline));
            if case.outcome.is_failure() && seen_before && self.last.get(&case.nodeid).is_none_or(|o| !o.is_failure()) {
                report.new_failures.push(case.nodeid.clone());
            }
            if let Some(r) = &slower {
                report.slower.push(SlowerTest {
                    nodeid: case.nodeid.clone(),
                    ratio: r.ratio,
                    baseline_ms: r.baseline_ms,
                });
            }
            if case.outcome == TestOutcome::Passed {
                let baseline = self.baselines.entry(case.nodeid.clone()).or_default();
                baseline.push(case.duration_ms);
                let excess = baseline.len().saturating_sub(BASELINE_RUNS);
                baseline.drain(..excess);
            }
            self.last.insert(case.nodeid.clone(), case.outcome);
            let affected = plan
                .affected_files
                .as_ref()
                .map(|files| case.file.as_ref().is_some_and(|f| files.contains(f)));
            report.cases.push(JudgedCase { case, slower, affected });
        }
        report.slower.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
        report
    }
}

/// Which tests a run of a pytest job runs first (or alone), from `affected` (looptop.toml),
/// what the run's changes reach (the test files and why, and whether every change could be
/// followed; `None` for a run without changes) and the tests that failed when they last ran.
/// Nothing selected is the whole suite in pytest's order, and `only` becomes `first` when
/// looptop cannot follow every change: it never leaves out a test it cannot rule out.
pub fn plan(affected: Affected, reach: Option<(Vec<Target>, bool)>, failing: &[String]) -> TestPlan {
    let complete = reach.as_ref().is_some_and(|(_, complete)| *complete);
    let mut targets = reach.map(|(targets, _)| targets).unwrap_or_default();
    let affected_files = complete.then(|| targets.iter().map(|t| t.target.clone()).collect());
    for nodeid in failing {
        let file = nodeid.split("::").next().unwrap_or(nodeid);
        if !targets.iter().any(|t| t.target == file || t.target == *nodeid) {
            targets.push(Target {
                target: nodeid.clone(),
                why: "failed last time".into(),
            });
        }
    }
    let selection = match affected {
        Affected::Off => Selection::Full,
        _ if targets.is_empty() => Selection::Full,
        Affected::Only if complete => Selection::Only,
        _ => Selection::First,
    };
    if selection == Selection::Full {
        targets.clear();
    }
    TestPlan {
        selection,
        targets,
        affected_files,
    }
}

/// The run rule for one test's time against its baseline, slower only, and only beyond
/// `TEST_MIN_SLOWER_MS`.
fn slower(duration_ms: f64, baseline: &[f64]) -> Option<Regression> {
    compare(duration_ms, baseline)
        .filter(|r| r.flag == Flag::Slower && duration_ms - r.baseline_ms >= TEST_MIN_SLOWER_MS)
}

/// The tests of a run in one line: "212 tests: 209 passed, 2 failed, 1 skipped; new failures:
/// …; slower: tests/test_b.py::test_x 5.0x (52.0 ms before)"; with the problem, if any.
pub fn describe(tests: &TestsReport) -> String {
    let mut counts = vec![format!("{} passed", tests.passed)];
    for (n, word) in [
        (tests.failed, "failed"),
        (tests.errors, "errors"),
        (tests.skipped, "skipped"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {word}"));
        }
    }
    let mut line = format!(
        "{}: {}",
        crate::format::count(tests.count, "test", "tests"),
        counts.join(", ")
    );
    if let (Some(affected), Some(total)) = (tests.affected, tests.total) {
        let how = if tests.selection == Selection::Only {
            "affected only"
        } else {
            "affected first"
        };
        line.push_str(&format!(" ({affected} of {total} {how})"));
    }
    if !tests.new_failures.is_empty() {
        line.push_str(&format!("; new failures: {}", shortlist(&tests.new_failures)));
    }
    if !tests.slower.is_empty() {
        let named: Vec<String> = tests
            .slower
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1}x ({} before)",
                    s.nodeid,
                    s.ratio,
                    crate::format::format_duration_ms(s.baseline_ms)
                )
            })
            .collect();
        line.push_str(&format!("; slower: {}", shortlist(&named)));
    }
    if let Some(problem) = &tests.problem {
        line.push_str(&format!("; {problem}"));
    }
    line
}

/// "slowest: tests/test_b.py::test_x 1.234 s, …" for the slowest tests of a run; `None` without tests.
pub fn describe_slowest(tests: &TestsReport) -> Option<String> {
    let named: Vec<String> = tests
        .slowest
        .iter()
        .map(|s| format!("{} {}", s.nodeid, crate::format::format_duration_ms(s.duration_ms)))
        .collect();
    (!named.is_empty()).then(|| format!("slowest: {}", named.join(", ")))
}

/// The TUI header's few words on a run's tests: "3 of 212 tests (affected)" when selection ran,
/// else "212 tests", with the failures.
pub fn headline(tests: &TestsReport) -> String {
    let mut text = match (tests.selection, tests.affected, tests.total) {
        (Selection::First | Selection::Only, Some(affected), Some(total)) => {
            format!("{affected} of {total} tests (affected)")
        }
        _ => crate::format::count(tests.count, "test", "tests"),
    };
    let failing = tests.failed + tests.errors;
    if failing > 0 {
        text.push_str(&format!(", {failing} failing"));
    }
    text
}

/// The TUI header's words on a run going on with a selection: "2 affected first", "1 affected
/// only" (test files and tests looptop selected); `None` for the whole suite.
pub fn plan_headline(plan: &TestPlan) -> Option<String> {
    let how = match plan.selection {
        Selection::Full => return None,
        Selection::First => "first",
        Selection::Only => "only",
    };
    Some(format!("{} affected {how}", plan.targets.len()))
}

/// The first three items, then "and N more".
fn shortlist(items: &[String]) -> String {
    let mut text = items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 3 {
        text.push_str(&format!(" and {} more", items.len() - 3));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(nodeid: &str, outcome: TestOutcome, duration_ms: f64) -> TestCase {
        TestCase {
            nodeid: nodeid.into(),
            file: nodeid.split("::").next().map(str::to_string),
            outcome,
            duration_ms,
            message: None,
            finished_ms: None,
        }
    }

    fn results(cases: Vec<TestCase>) -> TestResults {
        TestResults {
            cases,
            ..TestResults::default()
        }
    }

    /// A deterministic noisy time around `center` (±`spread` share).
    fn noisy(i: u64, center: f64, spread: f64) -> f64 {
        let unit = (i.wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
        center * (1.0 + spread * (2.0 * unit - 1.0))
    }

    #[test]
    fn a_test_made_five_times_slower_is_named_and_steady_noisy_tests_never_are() {
        let mut memory = TestMemory::default();
        let plan = TestPlan::default();
        for run in 0..30 {
            let report = memory.judge(
                results(vec![
                    case("t.py::steady", TestOutcome::Passed, noisy(run, 60.0, 0.3)),
                    case("t.py::tiny", TestOutcome::Passed, noisy(run + 7, 2.0, 0.9)),
                    case("t.py::slowed", TestOutcome::Passed, noisy(run + 3, 50.0, 0.1)),
                ]),
                &plan,
            );
            assert!(report.slower.is_empty(), "run {run}: {:?}", report.slower);
        }
        let report = memory.judge(
            results(vec![
                case("t.py::steady", TestOutcome::Passed, 61.0),
                case("t.py::tiny", TestOutcome::Passed, 3.9),
                case("t.py::slowed", TestOutcome::Passed, 250.0),
            ]),
            &plan,
        );
        assert_eq!(report.slower.len(), 1, "{:?}", report.slower);
        assert_eq!(report.slower[0].nodeid, "t.py::slowed");
        assert!((report.slower[0].ratio - 5.0).abs() < 0.6, "{:?}", report.slower);
        assert_eq!(report.slowest[0].nodeid, "t.py::slowed");
        assert!(
            describe(&report).contains("slower: t.py::slowed 5."),
            "{}",
            describe(&report)
        );
    }

    #[test]
    fn new_failures_are_those_that_did_not_fail_before() {
        let mut memory = TestMemory::default();
        let plan = TestPlan::default();
        let first = memory.judge(
            results(vec![
                case("a::x", TestOutcome::Passed, 1.0),
                case("a::y", TestOutcome::Failed, 1.0),
            ]),
            &plan,
        );
        assert!(first.new_failures.is_empty(), "nothing known before the first run");
        let second = memory.judge(
            results(vec![
                case("a::x", TestOutcome::Failed, 1.0),
                case("a::y", TestOutcome::Failed, 1.0),
                case("a::z", TestOutcome::Error, 1.0),
            ]),
            &plan,
        );
        assert_eq!(second.new_failures, ["a::x", "a::z"]);
        assert_eq!(
            (second.count, second.passed, second.failed, second.errors),
            (3, 0, 2, 1)
        );
        assert_eq!(memory.failing(), ["a::x", "a::y", "a::z"]);
        // The fixed twin: they pass again, nothing is new.
        let third = memory.judge(results(vec![case("a::x", TestOutcome::Passed, 1.0)]), &plan);
        assert!(third.new_failures.is_empty());
    }

    fn target(target: &str, why: &str) -> Target {
        Target {
            target: target.into(),
            why: why.into(),
        }
    }

    #[test]
    fn the_plan_never_leaves_out_a_test_it_cannot_rule_out() {
        let reached = vec![target("tests/test_b.py", "imports src/m.py")];
        let failing = vec!["tests/test_b.py::x".to_string(), "tests/test_c.py::y".to_string()];
        let only = plan(Affected::Only, Some((reached.clone(), true)), &failing);
        assert_eq!(only.selection, Selection::Only);
        assert_eq!(
            only.targets,
            [
                target("tests/test_b.py", "imports src/m.py"),
                target("tests/test_c.py::y", "failed last time")
            ]
        );
        assert_eq!(only.affected_files, Some(["tests/test_b.py".to_string()].into()));
        // A change looptop cannot follow (a data file): all tests run, the known ones first.
        let unsure = plan(Affected::Only, Some((reached.clone(), false)), &[]);
        assert_eq!((unsure.selection, unsure.affected_files), (Selection::First, None));
        assert_eq!(
            plan(Affected::First, Some((Vec::new(), true)), &[]).selection,
            Selection::Full
        );
        let off = plan(Affected::Off, Some((reached, true)), &failing);
        assert_eq!((off.selection, off.targets.len()), (Selection::Full, 0));
        assert!(off.affected_files.is_some(), "still known, for telling flaky tests");
        assert_eq!(plan(Affected::First, None, &failing).selection, Selection::First);
    }

    #[test]
    fn affected_is_known_only_when_the_plan_could_tell() {
        let mut memory = TestMemory::default();
        let plan = TestPlan {
            selection: Selection::First,
            targets: Vec::new(),
            affected_files: Some(["tests/test_b.py".to_string()].into()),
        };
        let report = memory.judge(
            TestResults {
                collected: Some(2),
                affected: Some(1),
                ..results(vec![
                    case("tests/test_b.py::t", TestOutcome::Passed, 1.0),
                    case("tests/test_a.py::t", TestOutcome::Passed, 1.0),
                ])
            },
            &plan,
        );
        let affected: Vec<Option<bool>> = report.cases.iter().map(|c| c.affected).collect();
        assert_eq!(affected, [Some(true), Some(false)]);
        assert!(
            describe(&report).contains("(1 of 2 affected first)"),
            "{}",
            describe(&report)
        );
        assert_eq!(headline(&report), "1 of 2 tests (affected)");
        assert_eq!(plan_headline(&plan).as_deref(), Some("0 affected first"));
        assert_eq!(plan_headline(&TestPlan::default()), None);
        assert_eq!(
            describe_slowest(&report).as_deref(),
            Some("slowest: tests/test_b.py::t 1.0 ms, tests/test_a.py::t 1.0 ms")
        );
        let unknown = memory.judge(
            results(vec![case("tests/test_a.py::t", TestOutcome::Passed, 1.0)]),
            &TestPlan::default(),
        );
        assert_eq!(unknown.cases[0].affected, None);
        assert_eq!(unknown.affected, None);
    }
}
