//! The loop: receive an event, let `update` decide, carry out its effects, repeat. Everything
//! it does is plumbing; the decisions live in `state::update`. `Engine::start` wires it: the
//! sources that send events, the history and the other sinks that take its reports.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use tokio::sync::mpsc;

use std::path::Path;

use crate::config::{Config, JobSpec};
use crate::effect::{Effect, Report};
use crate::event::{Event, Notice};
use crate::headless::Printer;
use crate::report::RunFinished;
use crate::sources::profiler::Profiler;
use crate::sources::runner::{self, Runner};
use crate::sources::sampler::Sampler;
use crate::sources::watcher;
use crate::state::update::start_all;
use crate::state::view::{View, TREND_RUNS};
use crate::state::{next_wakeup, update, State};
use crate::state::{Coalescing, Mode};
use crate::store::recorder::Recorder;
use crate::store::samples::MetricRow;
use crate::store::worker::{JobRef, Order, Worker};
use crate::store::StoreError;

/// Capacity of the event channel. Sources block when it is full (output chunks included), which
/// bounds looptop's memory whatever a job prints.
pub const EVENT_CHANNEL_CAPACITY: usize = 64;

/// The sources that follow the runs' lives: the sampler and the Python profiler, when they run.
#[derive(Debug, Default)]
pub struct Observers {
    /// Samples each run's processes.
    pub sampler: Option<Sampler>,
    /// Reads each run's Python stacks.
    pub profiler: Option<Profiler>,
}

/// Runs the loop until an `Effect::Exit`; returns its exit code and the sinks. The observers
/// follow the runs' lives.
pub async fn run_loop(
    mut state: State,
    mut runner: Runner,
    mut observers: Observers,
    mut sinks: Sinks,
    mut events: mpsc::Receiver<Event>,
    first: Vec<Effect>,
) -> (u8, Sinks) {
    // Events the loop produces itself (a spawn's outcome) are applied before anything else.
    let mut own: VecDeque<Event> = VecDeque::new();
    if let Some(code) = carry_out(first, &state, &mut runner, &mut sinks, &mut own) {
        return (code, sinks);
    }
    loop {
        // Let the other tasks run (the signal forwarder): while events keep coming, `recv` is
        // always ready and a Ctrl-C would wait behind dozens of runs.
        tokio::task::yield_now().await;
        let mut event = match own.pop_front() {
            Some(event) => event,
            None => {
                let wake = [next_wakeup(&state), sinks.frontend.wake_at()]
                    .into_iter()
                    .flatten()
                    .min();
                tokio::select! {
                    received = events.recv() => match received {
                        Some(event) => event,
                        None => return (1, sinks),
                    },
                    () = sleep_until(wake) => Event::Tick,
                }
            }
        };
        // A run's profile is applied just before its end, so that the run's report carries it.
        let reaped = match &event {
            Event::RunReaped { key, .. } => Some(*key),
            _ => None,
        };
        if let (Some(key), Some(profiler)) = (reaped, observers.profiler.as_mut()) {
            if let Some(profile) = profiler.finish(key) {
                own.push_front(std::mem::replace(&mut event, profile));
            }
        }
        if let Event::RunReaped { key, .. } = &event {
            own.extend(runner.forget(*key).into_iter().map(Event::Notice));
        }
        if let Some(sampler) = &observers.sampler {
            sampler.observe(&event);
        }
        if let Some(profiler) = observers.profiler.as_mut() {
            profiler.observe(&event);
        }
        let effects = update(&mut state, event, Instant::now());
        if let Some(code) = carry_out(effects, &state, &mut runner, &mut sinks, &mut own) {
            // Notices found on the way out (a process that outlived the last run) are still said.
            for event in own {
                if let Event::Notice(notice) = event {
                    sinks.report(&Report::Notice(notice));
                }
            }
            return (code, sinks);
        }
        sinks.frontend.show(&state, Instant::now());
    }
}

/// How the loop is shown: a frontend, whether jobs are asked for colors, and the TUI's view.
pub struct Presentation {
    /// The frontend.
    pub frontend: Box<dyn Frontend>,
    /// Ask jobs for colored output.
    pub job_color: bool,
    /// The TUI's state, if the TUI is on.
    pub view: Option<View>,
}

/// Why the loop could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// What the user set up refuses it (a `.looptop` that is a link).
    Refused(String),
    /// The machine would not (the async runtime, signals, the file watcher).
    Runtime(String),
}

/// The loop, wired: its jobs and mode, how it is shown, and the sinks besides the history
/// (which `start` adds first).
pub struct Engine {
    /// The jobs.
    pub jobs: Vec<JobSpec>,
    /// Watch, once, or a number of repeats.
    pub mode: Mode,
    /// The frontend and its view.
    pub presentation: Presentation,
    /// Wait for the first change instead of running at once.
    pub postpone: bool,
    /// Starts a source of terminal input (the TUI's keys).
    pub input: Option<fn(mpsc::Sender<Event>)>,
    /// Sinks besides the history and the frontend (a benchmark's collector).
    pub sinks: Vec<Box<dyn Sink>>,
}

impl Engine {
    /// The loop over `jobs` in `mode`, shown by `presentation`, starting at once, with no
    /// input source and no other sinks.
    pub fn new(jobs: Vec<JobSpec>, mode: Mode, presentation: impl Into<Presentation>) -> Self {
        Self {
            jobs,
            mode,
            presentation: presentation.into(),
            postpone: false,
            input: None,
            sinks: Vec::new(),
        }
    }

    /// Starts the sources (watcher, sampler, profiler, input) and the history, then runs the
    /// loop until it exits; returns its exit code. Everything is dropped before this returns,
    /// the frontend first (the terminal is given back before the history says anything).
    pub fn start(self, config: &Config) -> Result<u8, StartError> {
        let Self {
            jobs,
            mode,
            presentation,
            postpone,
            input,
            sinks: extra,
        } = self;
        let Presentation {
            frontend,
            job_color,
            view,
        } = presentation;
        let root = config.root.clone();
        let coalescing = Coalescing {
            debounce: config.watch.debounce,
            debounce_max: config.watch.debounce_max,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StartError::Runtime(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(async move {
            let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
            let mut sinks = Sinks { frontend, sinks: extra };
            // Before anything is written: a `.looptop` that is a link (or a file) stops looptop here.
            let log_dir = match runner::LogDir::prepare(&root) {
                Ok(dir) => Some(dir),
                Err(e) if e.is_refusal() => return Err(StartError::Refused(e.to_string())),
                Err(e) => {
                    log::warn!("{e}; output is shown but not kept");
                    None
                }
            };
            let say_tx = tx.clone();
            let say = Box::new(move |notice| {
                // The loop may be gone (looptop stopping): then there is no one to tell.
                let _ = say_tx.blocking_send(Event::Notice(notice));
            });
            let worker = Worker::this_binary();
            match Recorder::start(&config.history_path, &root, worker.clone(), say) {
                Ok((recorder, interrupted)) => {
                    if interrupted > 0 {
                        let message = format!(
                            "{interrupted} run(s) left unfinished by a looptop that stopped are marked interrupted"
                        );
                        sinks.frontend.report(&Report::Notice(Notice::info(message)));
                    }
                    sinks.sinks.insert(0, Box::new(HistorySink::new(recorder, tx.clone())));
                }
                Err(e) => sinks
                    .frontend
                    .report(&Report::Notice(Notice::warn(format!("history is off: {e}")))),
            }
            if let Err(e) = runner::become_subreaper() {
                log::warn!("cannot become a child subreaper ({e}): CPU time of orphaned grandchildren is not counted");
            }
            forward_signals(tx.clone()).map_err(|e| StartError::Runtime(format!("cannot handle signals: {e}")))?;
            if mode == Mode::Watch {
                watcher::spawn(root.clone(), &config.watch, tx.clone())
                    .map_err(|e| StartError::Runtime(format!("cannot start the file watcher: {e}")))?;
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
            let runner = Runner::new(tx, log_dir, job_color).guarded().with_tests(&root);
            let mut state = State::new(jobs, coalescing, mode);
            // As the kernel names the files a run opens (`files_read` is relative to it).
            state.root = root.canonicalize().unwrap_or_else(|_| root.clone());
            state.view = view;
            remember(&mut state, &config.history_path, &worker);
            let first = if postpone { Vec::new() } else { start_all(&mut state) };
            if postpone {
                sinks.frontend.report(&Report::Notice(Notice::info(
                    "waiting for the first change (--postpone)",
                )));
            }
            let observers = Observers { sampler, profiler };
            let (code, sinks) = run_loop(state, runner, observers, sinks, rx, first).await;
            drop(sinks);
            Ok(code)
        })
    }
}

/// What the history remembers of each job from earlier sessions: its baseline durations, its
/// tests, and the TUI's trend (read by `worker`, as everything of the history is).
fn remember(state: &mut State, history_path: &Path, worker: &Worker) {
    let trend = if state.view.is_some() { TREND_RUNS } else { 0 };
    let jobs = state
        .jobs
        .iter()
        .map(|job| JobRef {
            name: job.spec.name.clone(),
            command: job.spec.command.to_string(),
            tests: job.spec.collects_pytest() || job.spec.junit.is_some(),
            trend,
        })
        .collect();
    let order = Order {
        remember: jobs,
        ..Order::default()
    };
    let Ok(done) = worker.perform(history_path, &order) else {
        return;
    };
    for (index, (job, memory)) in state.jobs.iter_mut().zip(done.remembered).enumerate() {
        job.baseline = memory.baseline;
        job.tests = memory.tests;
        if let Some(view) = state.view.as_mut().and_then(|v| v.jobs.get_mut(index)) {
            view.trend = memory.trend.into();
        }
    }
}

/// What the user sees: the headless printer, or the TUI.
pub trait Frontend {
    /// Shows a report (a run's start or end, output, a notice).
    fn report(&mut self, report: &Report);
    /// The state after an event; a frontend that draws redraws (at its own pace).
    fn show(&mut self, _state: &State, _now: Instant) {}
    /// When `show` should be called again even if no event comes (a capped frame rate, a clock).
    fn wake_at(&self) -> Option<Instant> {
        None
    }
}

impl Frontend for Printer {
    fn report(&mut self, report: &Report) {
        Printer::report(self, report);
    }
}

fn carry_out(
    effects: Vec<Effect>,
    state: &State,
    runner: &mut Runner,
    sinks: &mut Sinks,
    own: &mut VecDeque<Event>,
) -> Option<u8> {
    // Processes first: a restart must not wait for the history write of the run it replaces.
    // Reports keep their order, and the new run's own report comes after them.
    let (actions, rest): (Vec<Effect>, Vec<Effect>) = effects
        .into_iter()
        .partition(|e| matches!(e, Effect::StartRun { .. } | Effect::Signal { .. }));
    for effect in actions.into_iter().chain(rest) {
        match effect {
            Effect::StartRun { key, job, trigger } => {
                let job = &state.jobs[job];
                own.push_back(runner.start(key, &job.spec, &trigger, &job.tests.failing()));
            }
            Effect::Signal { key, signal } => runner.signal(key, signal),
            Effect::Report(report) => sinks.report(&report),
            Effect::LoadSamples { job, run_id } => sinks.load_samples(job, &run_id),
            Effect::Exit(code) => return Some(code),
        }
    }
    None
}

/// Something besides the frontend that takes the loop's reports: the history, a benchmark's
/// collector.
pub trait Sink {
    /// Takes a report; returns what the user should be told about it (history turned off).
    fn report(&mut self, report: &Report) -> Option<Notice>;
    /// Asks for a past run's samples, which come back as `Event::PastRun` (the history alone
    /// answers).
    fn load_samples(&mut self, _job: usize, _run_id: &str) {}
}

/// Where reports go: every sink in order (the history first, so that a run looptop has
/// reported is on disk), then the frontend with what the sinks had to say.
pub struct Sinks {
    /// The headless printer or the TUI; dropped first, so the terminal is given back before
    /// a sink says anything on its way out.
    pub frontend: Box<dyn Frontend>,
    /// The other sinks.
    pub sinks: Vec<Box<dyn Sink>>,
}

impl Sinks {
    /// Asks the sinks for a past run's samples.
    pub fn load_samples(&mut self, job: usize, run_id: &str) {
        for sink in &mut self.sinks {
            sink.load_samples(job, run_id);
        }
    }

    /// Hands a report to every sink, then to the frontend (samples and metrics stop at the
    /// sinks: the frontend reads them from the state).
    pub fn report(&mut self, report: &Report) {
        let notices: Vec<Notice> = self.sinks.iter_mut().filter_map(|sink| sink.report(report)).collect();
        if !matches!(report, Report::Sample { .. } | Report::Metric { .. }) {
            self.frontend.report(report);
        }
        for notice in notices {
            self.frontend.report(&Report::Notice(notice));
        }
    }
}

/// The history as a sink: runs go to the recorder (the journal at once, the file when the runs
/// pause); a journal that cannot be written turns it off, said once.
pub struct HistorySink {
    recorder: Option<Recorder>,
    /// Where past runs' samples go: the loop's own channel.
    answers: mpsc::Sender<Event>,
}

impl HistorySink {
    /// The sink of `recorder`, answering into `answers`.
    pub fn new(recorder: Recorder, answers: mpsc::Sender<Event>) -> Self {
        Self {
            recorder: Some(recorder),
            answers,
        }
    }
}

impl Sink for HistorySink {
    fn report(&mut self, report: &Report) -> Option<Notice> {
        let recorder = self.recorder.as_ref()?;
        let written = match report {
            Report::RunStarted(started) => recorder.run_started(started),
            Report::RunFinished(finished) => recorder.run_finished(finished),
            Report::Sample { run_id, sample } => {
                recorder.sample(run_id, sample);
                Ok(())
            }
            Report::Metric {
                run_id,
                name,
                t_ms,
                value,
            } => {
                recorder.metric(MetricRow {
                    run_id: run_id.clone(),
                    name: name.clone(),
                    t_ms: *t_ms,
                    value: *value,
                });
                Ok(())
            }
            Report::Output { .. } | Report::Notice(_) | Report::Stall(_) => Ok(()),
        };
        written.err().map(|e: StoreError| {
            self.recorder = None;
            Notice::warn(format!("history is off: {e}"))
        })
    }

    fn load_samples(&mut self, job: usize, run_id: &str) {
        let Some(recorder) = &self.recorder else { return };
        let answers = self.answers.clone();
        let asked = run_id.to_string();
        recorder.load_samples(
            run_id,
            Box::new(move |samples| {
                // Never blocks the recording thread: if the loop is flooded, the answer is
                // dropped and selecting the run again asks again.
                let _ = answers.try_send(Event::PastRun {
                    job,
                    run_id: asked,
                    samples,
                });
            }),
        );
    }
}

/// Keeps the finished runs, for a caller that needs them afterwards (`looptop bench`).
#[derive(Debug, Default, Clone)]
pub struct Collector {
    runs: Rc<RefCell<Vec<RunFinished>>>,
}

impl Collector {
    /// The runs finished so far, in order.
    pub fn runs(&self) -> Vec<RunFinished> {
        self.runs.borrow().clone()
    }
}

impl Sink for Collector {
    fn report(&mut self, report: &Report) -> Option<Notice> {
        if let Report::RunFinished(finished) = report {
            self.runs.borrow_mut().push(finished.clone());
        }
        None
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends `Event::Interrupt` on SIGINT, SIGTERM and SIGHUP.
pub fn forward_signals(tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut streams = [
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
        signal(SignalKind::hangup())?,
    ];
    tokio::spawn(async move {
        loop {
            let [int, term, hup] = &mut streams;
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
                _ = hup.recv() => {},
            }
            if tx.send(Event::Interrupt).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}
