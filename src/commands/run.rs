//! `looptop run`, `looptop bench` and `looptop trust`: resolve the job, check trust, then run
//! the loop with its sinks (the headless printer and the history).

use std::io::IsTerminal;
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::Failure;
use crate::app::{forward_signals, run_loop, Frontend, Observers, Sinks, EVENT_CHANNEL_CAPACITY};
use crate::cli::{BenchArgs, RunArgs};
use crate::config::trust::{approved_text, refusal, TrustStore};
use crate::config::{Config, JobCommand, JobSpec};
use crate::diagnose::thresholds::BASELINE_RUNS;
use crate::effect::Report;
use crate::event::Notice;
use crate::headless::{format_duration_ms, Printer};
use crate::report::{Outcome, RunFinished};
use crate::sources::profiler::Profiler;
use crate::sources::sampler::Sampler;
use crate::sources::{runner, watcher};
use crate::state::update::start_all;
use crate::state::view::{View, TREND_RUNS};
use crate::state::{Coalescing, Mode, State};
use crate::store::reader::History;
use crate::store::recorder::Recorder;
use crate::text::escape_path;

/// `looptop run`.
pub fn run(config: &Config, args: RunArgs) -> Result<u8, Failure> {
    let mut jobs = if args.all {
        choose_jobs(config, &[], args.trust)?
    } else if args.job.len() > 1 {
        let jobs = args
            .job
            .iter()
            .map(|name| config.job(name).cloned().map_err(Failure::usage))
            .collect::<Result<Vec<_>, _>>()?;
        ensure_trusted(config, args.trust)?;
        jobs
    } else {
        vec![choose_job(
            config,
            &args.command,
            args.job.first().map(String::as_str),
            args.trust,
        )?]
    };
    for job in &mut jobs {
        if let Some(timeout) = args.timeout {
            job.timeout = Some(timeout);
        }
        if let Some(grace) = args.grace {
            job.stop_grace = grace;
        }
        if let Some(on_change) = args.on_change {
            job.on_change = on_change.into();
        }
    }
    let mode = if args.once { Mode::Once } else { Mode::Watch };
    let mut presentation = headless(args.json, mode);
    for notice in needs_left_out(&jobs) {
        presentation.printer.report(&Report::Notice(Notice::info(notice)));
    }
    let (code, _) = run_engine(config, jobs, mode, presentation, args.postpone, None)?;
    Ok(code)
}

/// What to say about `needs` naming jobs that this loop does not run: they are not waited for.
fn needs_left_out(jobs: &[JobSpec]) -> Vec<String> {
    jobs.iter()
        .flat_map(|job| {
            job.needs
                .iter()
                .filter(|need| !jobs.iter().any(|j| &j.name == *need))
                .map(move |need| {
                    format!(
                        "`{}` needs `{need}`, which is not run here: not waiting for it (run both with --all, or --job {need} --job {})",
                        job.name, job.name
                    )
                })
        })
        .collect()
}

/// `looptop bench`: `--warmup` runs, then `--runs` measured ones, back to back.
pub fn bench(config: &Config, args: BenchArgs) -> Result<u8, Failure> {
    let job = choose_job(config, &args.command, args.job.as_deref(), args.trust)?;
    let total = args.runs + args.warmup;
    let mode = Mode::Repeat { left: total - 1 };
    let (_, sinks) = run_engine(config, vec![job.clone()], mode, headless(args.json, mode), false, None)?;
    let finished = sinks.finished.unwrap_or_default();
    if finished.len() < usize::try_from(total).unwrap_or(usize::MAX) {
        return Err(Failure::runtime(format!(
            "the benchmark stopped after {} of {total} runs",
            finished.len()
        )));
    }
    let measured = &finished[usize::try_from(args.warmup).unwrap_or(0)..];
    let summary = BenchSummary::of(measured);
    if args.json {
        let mut line = serde_json::json!({
            "event": "bench",
            "job": job.name,
            "command": job.command.to_string(),
            "runs": measured.len(),
            "warmup": args.warmup,
            "failed": summary.failed,
        });
        if let (Some(object), Ok(serde_json::Value::Object(stats))) =
            (line.as_object_mut(), serde_json::to_value(&summary))
        {
            object.extend(stats);
        }
        println!("{line}");
    } else {
        println!("{}", summary.render(&job));
    }
    Ok(if summary.failed == 0 { 0 } else { 1 })
}

/// The headless frontend: JSON lines or human status lines.
fn headless(json: bool, mode: Mode) -> Headless {
    let status_color = !no_color() && std::io::stderr().is_terminal();
    let base = std::env::current_dir().unwrap_or_default();
    let mut printer = Printer::new(json, status_color, base);
    // A benchmark shows its statistics, not the job's output (which is still logged).
    printer.show_output = !matches!(mode, Mode::Repeat { .. });
    Headless {
        printer,
        job_color: !no_color() && !json && std::io::stdout().is_terminal(),
    }
}

/// Whether `NO_COLOR` asks for no colors.
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// A frontend and whether jobs should be asked for colors.
pub struct Headless {
    /// The printer.
    pub printer: Printer,
    /// Ask jobs for colored output.
    pub job_color: bool,
}

/// How to show the loop: a frontend, whether jobs are asked for colors, and the TUI's view.
pub struct Presentation {
    /// The frontend.
    pub frontend: Box<dyn Frontend>,
    /// Ask jobs for colored output.
    pub job_color: bool,
    /// The TUI's state, if the TUI is on.
    pub view: Option<View>,
}

impl From<Headless> for Presentation {
    fn from(headless: Headless) -> Self {
        Self {
            frontend: Box::new(headless.printer),
            job_color: headless.job_color,
            view: None,
        }
    }
}

/// Runs the loop over `jobs`; returns its exit code and the sinks (with the finished runs when
/// the mode repeats).
pub fn run_engine(
    config: &Config,
    jobs: Vec<JobSpec>,
    mode: Mode,
    presentation: impl Into<Presentation>,
    postpone: bool,
    input: Option<fn(mpsc::Sender<crate::event::Event>)>,
) -> Result<(u8, Sinks), Failure> {
    let Presentation {
        frontend,
        job_color,
        view,
    } = presentation.into();
    let root = config.root.clone();
    let coalescing = Coalescing {
        debounce: config.watch.debounce,
        debounce_max: config.watch.debounce_max,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let mut sinks = Sinks {
            frontend,
            recorder: None,
            finished: matches!(mode, Mode::Repeat { .. }).then(Vec::new),
            history_delayed: false,
            answers: view.is_some().then(|| tx.clone()),
        };
        // Before anything is written: a `.looptop` that is a link (or a file) stops looptop here.
        let log_dir = match runner::LogDir::prepare(&root) {
            Ok(dir) => Some(dir),
            Err(e) if e.is_refusal() => return Err(Failure::usage(e.to_string())),
            Err(e) => {
                log::warn!("{e}; output is shown but not kept");
                None
            }
        };
        match Recorder::start(&config.history_path, &root) {
            Ok((recorder, interrupted)) => {
                if interrupted > 0 {
                    let message = format!(
                        "{interrupted} run(s) left unfinished by a looptop that stopped are marked interrupted"
                    );
                    sinks.frontend.report(&Report::Notice(Notice::info(message)));
                }
                sinks.recorder = Some(recorder);
            }
            Err(e) => sinks
                .frontend
                .report(&Report::Notice(Notice::warn(format!("history is off: {e}")))),
        }
        if let Err(e) = runner::become_subreaper() {
            log::warn!("cannot become a child subreaper ({e}): CPU time of orphaned grandchildren is not counted");
        }
        forward_signals(tx.clone()).map_err(|e| Failure::runtime(format!("cannot handle signals: {e}")))?;
        if mode == Mode::Watch {
            watcher::spawn(root.clone(), &config.watch, tx.clone())
                .map_err(|e| Failure::runtime(format!("cannot start the file watcher: {e}")))?;
        }
        let sampler = match Sampler::start(config.sampler.clone(), tx.clone()) {
            Ok(sampler) => Some(sampler),
            Err(e) => {
                log::warn!("cannot start the sampler ({e}): runs are timed but not sampled");
                None
            }
        };
        let profiler = match Profiler::start(&config.profiler, root.clone(), tx.clone()) {
            Ok(profiler) => profiler,
            Err(e) => {
                log::warn!("cannot start the Python profiler ({e}): runs are not profiled");
                None
            }
        };
        if let Some(input) = input {
            input(tx.clone());
        }
        let runner = runner::Runner::new(tx, log_dir, job_color).guarded().with_tests(&root);
        let history = History::open(&config.history_path).ok();
        let mut state = State::new(jobs, coalescing, mode);
        // As the kernel names the files a run opens (`files_read` is relative to it).
        state.root = root.canonicalize().unwrap_or_else(|_| root.clone());
        state.view = view;
        for (index, job) in state.jobs.iter_mut().enumerate() {
            let Some(history) = &history else { break };
            let command = job.spec.command.to_string();
            job.baseline = history
                .recent_passing_durations(&job.spec.name, &command, BASELINE_RUNS)
                .unwrap_or_default();
            if job.spec.collects_pytest() || job.spec.junit.is_some() {
                job.tests = history
                    .test_memory(&job.spec.name, &command, BASELINE_RUNS)
                    .unwrap_or_default();
            }
            if let Some(view) = state.view.as_mut().and_then(|v| v.jobs.get_mut(index)) {
                view.trend = history
                    .recent_trend(&job.spec.name, TREND_RUNS)
                    .unwrap_or_default()
                    .into();
            }
        }
        drop(history);
        let first = if postpone { Vec::new() } else { start_all(&mut state) };
        if postpone {
            sinks.frontend.report(&Report::Notice(Notice::info(
                "waiting for the first change (--postpone)",
            )));
        }
        let observers = Observers { sampler, profiler };
        Ok(run_loop(state, runner, observers, sinks, rx, first).await)
    })
}

/// The TUI's jobs: the command given after `--`, else every job of the config (trusted).
pub fn choose_jobs(config: &Config, command: &[String], trust: bool) -> Result<Vec<JobSpec>, Failure> {
    if !command.is_empty() {
        return Ok(vec![choose_job(config, command, None, trust)?]);
    }
    if config.jobs.is_empty() {
        return Err(Failure::usage(
            "nothing to run: give a command after `--` (looptop -- pytest -x), add a [[job]] to looptop.toml, or let `looptop init` write one",
        ));
    }
    ensure_trusted(config, trust)?;
    Ok(config.jobs.clone())
}

fn choose_job(config: &Config, command: &[String], name: Option<&str>, trust: bool) -> Result<JobSpec, Failure> {
    if !command.is_empty() {
        let command = match command {
            [line] => JobCommand::Shell(line.clone()),
            argv => JobCommand::Argv(argv.to_vec()),
        };
        let cwd = std::env::current_dir().unwrap_or_else(|_| config.root.clone());
        return Ok(JobSpec::ad_hoc(command, cwd));
    }
    let job = match name {
        Some(name) => config.job(name).map_err(Failure::usage)?.clone(),
        None => config.jobs.first().cloned().ok_or_else(|| {
            Failure::usage(
                "nothing to run: give a command after `--` (looptop run -- pytest -x) or add a [[job]] to looptop.toml",
            )
        })?,
    };
    ensure_trusted(config, trust)?;
    Ok(job)
}

fn ensure_trusted(config: &Config, accept: bool) -> Result<(), Failure> {
    match refusal(config).filter(|_| !accept) {
        Some(message) => Err(Failure::usage(message)),
        None => Ok(()),
    }
}

/// `looptop trust`.
pub fn trust(config: &Config) -> Result<u8, Failure> {
    let file: PathBuf = config.file.clone().ok_or_else(|| {
        Failure::usage(format!(
            "no looptop.toml in {} or its parents: nothing to trust",
            escape_path(&config.root)
        ))
    })?;
    let store = TrustStore::for_user().map_err(|e| Failure::runtime(e.to_string()))?;
    store
        .approve(&file)
        .map_err(|e| Failure::runtime(format!("cannot record the approval of {}: {e}", escape_path(&file))))?;
    print!("{}", approved_text(config));
    Ok(0)
}

/// Timing statistics of measured runs, in the manner of hyperfine.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchSummary {
    /// Mean wall time.
    pub mean_ms: f64,
    /// Sample standard deviation of wall time.
    pub stddev_ms: f64,
    /// Median wall time.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Mean user CPU time of the process tree.
    pub user_ms: f64,
    /// Mean system CPU time of the process tree.
    pub sys_ms: f64,
    /// Runs that did not pass.
    pub failed: usize,
}

impl BenchSummary {
    /// Statistics over `runs` (at least one).
    pub fn of(runs: &[RunFinished]) -> Self {
        let n = runs.len().max(1) as f64;
        let mean = |f: fn(&RunFinished) -> f64| runs.iter().map(f).sum::<f64>() / n;
        let mean_ms = mean(|r| r.duration_ms);
        let variance = runs.iter().map(|r| (r.duration_ms - mean_ms).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let mut sorted: Vec<f64> = runs.iter().map(|r| r.duration_ms).collect();
        sorted.sort_by(f64::total_cmp);
        let median_ms = match sorted.len() {
            0 => 0.0,
            len if len % 2 == 1 => sorted[len / 2],
            len => (sorted[len / 2 - 1] + sorted[len / 2]) / 2.0,
        };
        Self {
            mean_ms,
            stddev_ms: variance.sqrt(),
            median_ms,
            min_ms: sorted.first().copied().unwrap_or(0.0),
            max_ms: sorted.last().copied().unwrap_or(0.0),
            user_ms: mean(|r| r.cpu_user_ms),
            sys_ms: mean(|r| r.cpu_sys_ms),
            failed: runs.iter().filter(|r| r.outcome != Outcome::Pass).count(),
        }
    }

    /// The hyperfine-style summary for a terminal.
    pub fn render(&self, job: &JobSpec) -> String {
        let d = format_duration_ms;
        let mut text = format!(
            "Benchmark: {} ({})\n  Time (mean ± σ):   {} ± {}    [User: {}, System: {}]\n  \
             Range (min … max): {} … {}    median {}\n",
            job.name,
            job.command,
            d(self.mean_ms),
            d(self.stddev_ms),
            d(self.user_ms),
            d(self.sys_ms),
            d(self.min_ms),
            d(self.max_ms),
            d(self.median_ms),
        );
        if self.failed > 0 {
            text.push_str(&format!("  Warning: {} run(s) did not pass\n", self.failed));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(duration_ms: f64, outcome: Outcome) -> RunFinished {
        let run = crate::report::RunIdentity {
            run_id: "r".into(),
            job: "j".into(),
            command: "c".into(),
            kind: crate::config::JobKind::Other,
            trigger: vec![],
            ts: std::time::SystemTime::UNIX_EPOCH,
            log: None,
        };
        RunFinished {
            outcome,
            ..RunFinished::passed_for_test(run, duration_ms)
        }
    }

    #[test]
    fn summary_matches_hand_computed_statistics() {
        let runs = [
            run(100.0, Outcome::Pass),
            run(200.0, Outcome::Pass),
            run(300.0, Outcome::Fail),
            run(400.0, Outcome::Pass),
        ];
        let summary = BenchSummary::of(&runs);
        assert_eq!(summary.mean_ms, 250.0);
        assert_eq!(summary.median_ms, 250.0);
        assert!((summary.stddev_ms - 129.0994).abs() < 1e-3, "{}", summary.stddev_ms);
        assert_eq!((summary.min_ms, summary.max_ms, summary.failed), (100.0, 400.0, 1));
    }
}
