//! The facts looptop reports about runs, and their one JSON shape. `run_finished` gains fields
//! in later parts (samples, verdicts): add them to `RunFinished`, nowhere else.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::event::Notice;
/// The formatting helpers under their older path: they live in the leaf module `format`.
pub use crate::format::{count, format_bytes, format_duration_ms, sparkline};

/// How a run ended, in one word. The history also holds runs not ended (yet): `Running` while
/// their looptop goes on, `Interrupted` when it went away first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Pass,
    /// A non-zero exit code.
    Fail,
    /// Ended by a signal: stopped for a restart or quit, or killed from outside.
    Killed,
    /// Stopped because it ran past its timeout.
    Timeout,
    /// Its looptop stopped (crashed, was killed) before the run ended: how it ended is unknown.
    Interrupted,
    /// Still going, as far as the history knows.
    Running,
}

impl Outcome {
    /// Every outcome, in the order above.
    pub const ALL: [Outcome; 6] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Killed,
        Outcome::Timeout,
        Outcome::Interrupted,
        Outcome::Running,
    ];

    /// The word used in JSON and in the history (the one place it is written).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Killed => "killed",
            Outcome::Timeout => "timeout",
            Outcome::Interrupted => "interrupted",
            Outcome::Running => "running",
        }
    }

    /// The outcome `word` names (as `as_str` writes it); `None` for a word looptop does not know.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == word)
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        Self::parse(&word).ok_or_else(|| serde::de::Error::custom(format!("not an outcome: {word}")))
    }
}

/// What identifies a run in every report about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunIdentity {
    /// Durable, time-ordered run id.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The command, as a shell would show it.
    pub command: String,
    /// What kind of step the job is.
    pub kind: crate::config::JobKind,
    /// Changed paths (relative to the project root) that caused this run; empty for the first.
    #[serde(serialize_with = "paths_as_text")]
    pub trigger: Vec<PathBuf>,
    /// When it started.
    #[serde(serialize_with = "rfc3339")]
    pub ts: SystemTime,
    /// Where its full output goes.
    pub log: Option<PathBuf>,
}

impl RunIdentity {
    /// The trigger's paths as text (a part that is not UTF-8 shown as `�`), as JSON and the
    /// history keep them.
    pub fn trigger_text(&self) -> Vec<String> {
        self.trigger.iter().map(|p| p.to_string_lossy().into_owned()).collect()
    }
}

fn paths_as_text<S: Serializer>(paths: &[PathBuf], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

/// A run started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunStarted {
    /// Which run.
    #[serde(flatten)]
    pub run: RunIdentity,
    /// The main process id (also the process group id).
    pub pid: u32,
    /// For a test job: the test files and tests run first (or alone), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<crate::diagnose::per_test::Target>>,
    /// For a test job: which tests run (full, first, only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::diagnose::per_test::Selection>,
}

/// A run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFinished {
    /// Which run.
    #[serde(flatten)]
    pub run: RunIdentity,
    /// The main process's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The number of the signal that ended the main process, if one did (named in JSON:
    /// "SIGTERM").
    #[serde(serialize_with = "signal_by_name")]
    pub signal: Option<i32>,
    /// Wall time from spawn to the main process's exit, monotonic, in milliseconds.
    pub duration_ms: f64,
    /// User CPU time of the whole process tree, in milliseconds.
    pub cpu_user_ms: f64,
    /// System CPU time of the whole process tree, in milliseconds.
    pub cpu_sys_ms: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// What its samples add up to.
    #[serde(flatten)]
    pub usage: RunUsage,
    /// What held the run back, with the evidence (`None` for a run never sampled at all).
    pub verdict: Option<crate::diagnose::verdict::Verdict>,
    /// A change of duration beyond the noise of the job's recent passing runs.
    pub regression: Option<crate::diagnose::regression::Regression>,
    /// The job's metrics, as its output printed them.
    pub metrics: Vec<crate::diagnose::metrics::MetricSummary>,
    /// For a query job: its profile and hints.
    pub query: Option<crate::diagnose::query::QueryReport>,
    /// For a test job: its tests, as the runner reported them and as looptop judged them.
    pub tests: Option<crate::diagnose::per_test::TestsReport>,
    /// Where the job's Python time went (`None` when it was not profiled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::profile::Profile>,
    /// The data files its processes read (from their open descriptors), open longest first.
    pub files_read: Vec<crate::diagnose::files_read::FileRead>,
    /// The local Spark, Dask or Ray cluster in its process tree (`None` without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::diagnose::cluster::ClusterReport>,
}

/// Something for the sinks (headless printer, later the store and the TUI log).
// Reports live for one turn of the loop (two per run are large): boxing would cost more than it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A run started.
    RunStarted(RunStarted),
    /// A run ended and its group is gone.
    RunFinished(RunFinished),
    /// A chunk of a run's output.
    Output {
        /// The run's id.
        run_id: String,
        /// Which stream it came from.
        stream: crate::event::Stream,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A resource reading of a run (for the history).
    Sample {
        /// The run's id.
        run_id: String,
        /// The reading.
        sample: Box<crate::sample::Sample>,
    },
    /// A number pulled out of a run's output (for the history).
    Metric {
        /// The run's id.
        run_id: String,
        /// The metric's name.
        name: String,
        /// Milliseconds after the run's start.
        t_ms: f64,
        /// The value.
        value: f64,
    },
    /// A run's GPU is starved (live).
    Stall(StallStarted),
    /// A message for the user.
    Notice(Notice),
}

/// A run's GPU has been starved for a while (reported live, once per stall).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StallStarted {
    /// Which run.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// When the stall began, in ms after the run's start.
    pub since_ms: f64,
    /// When it was noticed, in ms after the run's start.
    pub at_ms: f64,
}

/// A run's resource use, from its samples. A figure looptop could not measure is `None`
/// (`null` in JSON), never 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunUsage {
    /// How many samples were taken.
    pub samples: u32,
    /// Mean CPU of the process tree, in % of one core.
    pub cpu_mean_pct: Option<f64>,
    /// 95th percentile of the tree's CPU, in % of one core.
    pub cpu_p95_pct: Option<f64>,
    /// Peak resident memory of the tree.
    pub peak_rss_bytes: Option<u64>,
    /// Mean utilization of the GPUs the run used (all watched GPUs when NVML cannot tell).
    pub gpu_util_mean_pct: Option<f64>,
    /// Peak GPU memory held by the run's processes, all GPUs together.
    pub gpu_mem_peak_bytes: Option<u64>,
    /// Share of samples in which a process of the run held a GPU context.
    pub gpu_on_fraction: Option<f64>,
    /// Mean time the tree's threads spent runnable but waiting for a CPU, in % of one thread.
    pub run_queue_delay_pct: Option<f64>,
}

impl RunFinished {
    /// Every hint of the run, in the order every front end shows them: the verdict's, then the
    /// query's.
    pub fn hints(&self) -> impl Iterator<Item = &crate::diagnose::hints::Hint> {
        let verdict = self.verdict.iter().flat_map(|v| &v.hints);
        verdict.chain(self.query.iter().flat_map(|q| &q.hints))
    }

    /// The exit code `looptop run --once` passes on: the job's own, 128+N for signal N (as a
    /// shell reports it), 124 for a timeout (as timeout(1) does).
    pub fn process_exit_code(&self) -> u8 {
        match (self.outcome, self.exit_code) {
            (Outcome::Timeout, _) => 124,
            (_, Some(code)) => u8::try_from(code.clamp(0, 255)).unwrap_or(1),
            _ => {
                let number = self.signal.unwrap_or(0);
                u8::try_from(128 + number).unwrap_or(255)
            }
        }
    }
}

/// The conventional name of signal `number` ("SIGTERM"), or "SIG<number>".
pub fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number).map_or_else(|_| format!("SIG{number}"), |s| s.as_str().to_string())
}

fn signal_by_name<S: Serializer>(signal: &Option<i32>, serializer: S) -> Result<S::Ok, S::Error> {
    match signal {
        Some(number) => serializer.serialize_str(&signal_name(*number)),
        None => serializer.serialize_none(),
    }
}

fn rfc3339<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}

/// How every front end (the terminal, JSON, the TUI) words a finished run: made once, here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Description {
    /// The verdict with its evidence, in one line; `None` when the run was too short to judge.
    pub verdict: Option<String>,
    /// The run's GPUs one by one, when there is more to say than the verdict does (several
    /// GPUs, a shared one, MIG).
    pub gpus: Option<String>,
    /// A change of duration beyond the noise of the job's recent passing runs.
    pub regression: Option<String>,
    /// The metrics the run printed.
    pub metrics: Option<String>,
    /// A query job's result size, time and slowest operators.
    pub query: Option<String>,
    /// A test job's tests: counts, new failures, tests that got slower, what went wrong.
    pub tests: Option<String>,
    /// A test job's slowest tests.
    pub slowest_tests: Option<String>,
    /// The data files the run read, open longest first.
    pub files_read: Option<String>,
    /// The local cluster in the run's process tree.
    pub cluster: Option<String>,
    /// Where the time goes: the Python profile's top lines and its threads (none when the run
    /// was not profiled).
    pub profile: Vec<String>,
    /// What to try: the verdict's hints, then the query's.
    pub hints: Vec<String>,
}

impl Description {
    /// The description of `finished`.
    pub fn of(finished: &RunFinished) -> Self {
        use crate::diagnose::verdict::Kind;
        let verdict = finished.verdict.as_ref();
        Self {
            verdict: verdict.filter(|v| v.kind != Kind::TooShort).map(|v| v.summary.clone()),
            gpus: verdict.and_then(|v| crate::diagnose::gpus::describe(&v.gpus)),
            regression: finished
                .regression
                .as_ref()
                .map(|r| regression_line(r.flag, r.ratio, r.baseline_runs, r.baseline_ms)),
            metrics: crate::diagnose::metrics::describe(&finished.metrics),
            query: finished.query.as_ref().map(|q| query_line(&q.profile)),
            tests: finished.tests.as_ref().map(crate::diagnose::per_test::describe),
            slowest_tests: finished
                .tests
                .as_ref()
                .and_then(crate::diagnose::per_test::describe_slowest),
            profile: finished.profile.as_ref().map(profile_lines).unwrap_or_default(),
            files_read: crate::diagnose::files_read::describe(&finished.files_read),
            cluster: finished.cluster.as_ref().map(crate::diagnose::cluster::describe),
            hints: finished.hints().map(|h| h.text.clone()).collect(),
        }
    }

    /// One line per part, in the order every front end shows them: the verdict, its GPUs and the
    /// regression, then the hints (starting with "→ "), then the details; hints start with "→ ".
    pub fn lines(&self) -> Vec<String> {
        // The judgement and what to try first: a pane too short for everything still shows them.
        let judged = [&self.verdict, &self.gpus, &self.regression];
        let details = [
            &self.tests,
            &self.slowest_tests,
            &self.metrics,
            &self.query,
            &self.cluster,
            &self.files_read,
        ];
        let mut lines: Vec<String> = judged.into_iter().flatten().cloned().collect();
        lines.extend(self.hints.iter().map(|h| format!("→ {h}")));
        lines.extend(details.into_iter().flatten().cloned());
        lines.extend(self.profile.iter().cloned());
        lines
    }
}

/// One past run, as the trend shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TrendPoint {
    /// Its id.
    pub run_id: String,
    /// Wall time from spawn to exit.
    pub duration_ms: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// Flagged slower or faster.
    pub regression: Option<crate::diagnose::regression::Flag>,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// The changed files that caused it.
    pub trigger: Vec<String>,
    /// The run in words, as every front end describes it.
    pub description: Description,
}

impl TrendPoint {
    /// The trend's view of a finished run.
    pub fn of(finished: &RunFinished) -> Self {
        Self {
            run_id: finished.run.run_id.clone(),
            duration_ms: finished.duration_ms,
            outcome: finished.outcome,
            regression: finished.regression.as_ref().map(|r| r.flag),
            started: humantime::format_rfc3339_seconds(finished.run.ts).to_string(),
            trigger: finished.run.trigger_text(),
            description: Description::of(finished),
        }
    }
}

/// Frames and threads named in the "where the time goes" lines.
pub const PROFILE_LINE_ITEMS: usize = 3;

/// "where the time goes (240 samples): 81 % row_features features.py:12 · 9 % idle wait
/// threading.py:320 · …" and "threads: MainThread 98 % running · loader 3 % running, waits in
/// Queue.get (queue.py:171)".
pub fn profile_lines(profile: &crate::profile::Profile) -> Vec<String> {
    let frames: Vec<String> = profile
        .frames
        .iter()
        .take(PROFILE_LINE_ITEMS)
        .map(|f| {
            let idle = if f.idle { "idle " } else { "" };
            format!("{:.0} % {idle}{} {}:{}", f.share_pct, f.function, f.file, f.line)
        })
        .collect();
    let mut lines = vec![format!(
        "where the time goes ({}): {}",
        count(profile.samples, "sample", "samples"),
        if frames.is_empty() {
            "no Python frames".to_string()
        } else {
            frames.join(" · ")
        }
    )];
    let threads: Vec<String> = profile
        .threads
        .iter()
        .take(PROFILE_LINE_ITEMS)
        .map(|t| match &t.waits_in {
            Some(point) if t.idle_pct > 0.0 => {
                format!("{} {:.0} % running, waits in {point}", t.name, t.cpu_pct)
            }
            _ => format!("{} {:.0} % running", t.name, t.cpu_pct),
        })
        .collect();
    if !threads.is_empty() {
        lines.push(format!("threads: {}", threads.join(" · ")));
    }
    lines
}

/// "2.3x slower than the median of the last 10 passing runs (1.210 s)".
pub fn regression_line(flag: crate::diagnose::regression::Flag, ratio: f64, runs: usize, baseline_ms: f64) -> String {
    format!(
        "{ratio:.1}x {} than the median of the last {runs} passing runs ({})",
        flag.as_str(),
        format_duration_ms(baseline_ms)
    )
}

/// "query: 100 rows in 12.0 ms; slowest: HASH_GROUP_BY 8.0 ms (100 rows), ...".
pub fn query_line(profile: &crate::diagnose::query::QueryProfile) -> String {
    let top: Vec<String> = profile
        .operators
        .iter()
        .take(3)
        .map(|o| format!("{} {} ({} rows)", o.name, format_duration_ms(o.ms), o.rows))
        .collect();
    let slowest = if top.is_empty() {
        String::new()
    } else {
        format!("; slowest: {}", top.join(", "))
    };
    format!(
        "query: {} rows in {}{slowest}",
        profile.rows,
        format_duration_ms(profile.elapsed_ms)
    )
}

/// `run_finished` in JSON: the run and its description.
#[derive(Serialize)]
struct FinishedJson<'a> {
    #[serde(flatten)]
    run: &'a RunFinished,
    description: Description,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum JsonLine<'a> {
    RunStarted(&'a RunStarted),
    RunFinished(Box<FinishedJson<'a>>),
    Stall(&'a StallStarted),
    Notice(&'a Notice),
}

/// The report as one line of JSON (without the newline); `None` for raw output and samples,
/// which are not part of the JSON stream.
pub fn json_line(report: &Report) -> Option<String> {
    let line = match report {
        Report::RunStarted(started) => JsonLine::RunStarted(started),
        Report::RunFinished(finished) => JsonLine::RunFinished(Box::new(FinishedJson {
            run: finished,
            description: Description::of(finished),
        })),
        Report::Notice(notice) => JsonLine::Notice(notice),
        Report::Stall(stall) => JsonLine::Stall(stall),
        Report::Output { .. } | Report::Sample { .. } | Report::Metric { .. } => return None,
    };
    serde_json::to_string(&line).ok()
}

#[cfg(test)]
impl RunFinished {
    /// A run of `run` that exited 0 after `duration_ms`, with nothing sampled or judged: the
    /// starting point of tests, which change what they look at.
    pub fn passed_for_test(run: RunIdentity, duration_ms: f64) -> Self {
        Self {
            run,
            exit_code: Some(0),
            signal: None,
            duration_ms,
            cpu_user_ms: 10.0,
            cpu_sys_ms: 2.0,
            outcome: Outcome::Pass,
            usage: RunUsage::default(),
            verdict: None,
            regression: None,
            metrics: Vec::new(),
            query: None,
            tests: None,
            profile: None,
            files_read: Vec::new(),
            cluster: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn finished(outcome: Outcome, exit_code: Option<i32>, signal: Option<i32>) -> RunFinished {
        let run = RunIdentity {
            run_id: "r1".into(),
            job: "test".into(),
            command: "pytest".into(),
            kind: crate::config::JobKind::Test,
            trigger: vec!["src/a.py".into()],
            ts: SystemTime::UNIX_EPOCH + Duration::from_millis(1_500),
            log: None,
        };
        RunFinished {
            exit_code,
            signal,
            outcome,
            ..RunFinished::passed_for_test(run, 1234.5)
        }
    }

    #[test]
    fn run_finished_json_has_the_documented_shape() {
        let line = json_line(&Report::RunFinished(finished(Outcome::Pass, Some(0), None))).expect("json");
        let value: serde_json::Value = serde_json::from_str(&line).expect("parses");
        assert_eq!(value["event"], "run_finished");
        assert_eq!(value["outcome"], "pass");
        assert_eq!(value["duration_ms"], 1234.5);
        assert_eq!(value["signal"], serde_json::Value::Null);
        assert_eq!(value["ts"], "1970-01-01T00:00:01.500Z");
        assert_eq!(value["trigger"][0], "src/a.py");
        assert_eq!(value["samples"], 0);
        assert_eq!(value["gpu_util_mean_pct"], serde_json::Value::Null);
    }

    #[test]
    fn one_description_serves_every_front_end() {
        use crate::diagnose::query::{QueryProfile, QueryReport};
        use crate::diagnose::regression::{Flag, Regression};
        let mut run = finished(Outcome::Pass, Some(0), None);
        run.verdict = Some(crate::diagnose::verdict::judge(
            &crate::diagnose::on_gpu(&[95; 8]),
            2000.0,
        ));
        run.regression = Some(Regression {
            flag: Flag::Slower,
            ratio: 2.3,
            baseline_ms: 1210.0,
            baseline_runs: 10,
            noise_ms: 12.0,
        });
        run.query = Some(QueryReport {
            profile: QueryProfile::from_duckdb_json("{}", 100, 12.0),
            hints: vec![crate::diagnose::hints::Hint::new("columnar", "a columnar copy")],
        });
        let description = Description::of(&run);
        let lines = description.lines();
        assert_eq!(lines[0], "gpu-bound: GPU busy 95 %");
        assert_eq!(
            lines[1],
            "2.3x slower than the median of the last 10 passing runs (1.210 s)"
        );
        // What to try comes before the details, so a short pane still shows it.
        assert_eq!(lines[2], "→ a columnar copy");
        assert_eq!(lines.last().map(String::as_str), Some("query: 100 rows in 12.0 ms"));
        let line = json_line(&Report::RunFinished(run)).expect("json");
        let value: serde_json::Value = serde_json::from_str(&line).expect("parses");
        assert_eq!(value["description"]["query"], "query: 100 rows in 12.0 ms");
        assert_eq!(
            value["description"]["hints"].as_array().map(Vec::len),
            Some(description.hints.len())
        );
        // Too short to judge: no verdict line anywhere.
        let mut short = finished(Outcome::Pass, Some(0), None);
        short.verdict = Some(crate::diagnose::verdict::judge(&[], 100.0));
        assert_eq!(Description::of(&short), Description::default());
    }

    #[test]
    fn every_outcome_is_read_back_as_itself() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            let json = serde_json::to_value(outcome).expect("json");
            assert_eq!(json, outcome.as_str());
        }
        assert_eq!(Outcome::parse("interrupted"), Some(Outcome::Interrupted));
        assert_eq!(Outcome::parse("exploded"), None);
    }

    #[test]
    fn exit_codes_follow_shell_conventions() {
        assert_eq!(finished(Outcome::Fail, Some(3), None).process_exit_code(), 3);
        assert_eq!(finished(Outcome::Killed, None, Some(9)).process_exit_code(), 137);
        assert_eq!(finished(Outcome::Timeout, None, Some(15)).process_exit_code(), 124);
        assert_eq!(signal_name(15), "SIGTERM");
        let line = json_line(&Report::RunFinished(finished(Outcome::Killed, None, Some(15)))).expect("json");
        let value: serde_json::Value = serde_json::from_str(&line).expect("parses");
        assert_eq!(value["signal"], "SIGTERM", "the number is named where it is printed");
    }
}
