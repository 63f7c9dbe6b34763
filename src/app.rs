//! The loop: receive an event, let `update` decide, carry out its effects, repeat. Everything
//! it does is plumbing; the decisions live in `state::update`.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::effect::{Effect, Report};
use crate::event::{Event, Notice};
use crate::headless::Printer;
use crate::report::RunFinished;
use crate::sources::profiler::Profiler;
use crate::sources::runner::Runner;
use crate::sources::sampler::Sampler;
use crate::state::{next_wakeup, update, State};
use crate::store::recorder::{Recorded, Recorder, ACK_WAIT, DELAYED_ACK_WAIT};
use crate::store::samples::MetricRow;
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
            Effect::LoadSamples { job, run_id } => sinks.load_samples(job, run_id),
            Effect::Exit(code) => return Some(code),
        }
    }
    None
}

/// Where reports go: the history first (so that a run looptop has reported is on disk), then
/// the frontend.
pub struct Sinks {
    /// The headless printer or the TUI.
    pub frontend: Box<dyn Frontend>,
    /// The history, while it works.
    pub recorder: Option<Recorder>,
    /// Finished runs, kept when a caller needs them (`looptop bench`).
    pub finished: Option<Vec<RunFinished>>,
    /// History writes are waiting for a busy file (said once per episode).
    pub history_delayed: bool,
    /// Where answers from the history (a past run's samples) go: the loop's own channel.
    pub answers: Option<mpsc::Sender<Event>>,
}

impl Sinks {
    /// Asks the history for a past run's samples; they come back as `Event::PastRun`.
    pub fn load_samples(&self, job: usize, run_id: String) {
        let (Some(recorder), Some(answers)) = (&self.recorder, &self.answers) else {
            return;
        };
        let answers = answers.clone();
        let asked = run_id.clone();
        recorder.load_samples(
            &asked,
            Box::new(move |samples| {
                // Never blocks the recording thread: if the loop is flooded, the answer is
                // dropped and selecting the run again asks again.
                let _ = answers.try_send(Event::PastRun { job, run_id, samples });
            }),
        );
    }

    /// Hands a report to every sink.
    pub fn report(&mut self, report: &Report) {
        match report {
            Report::RunStarted(started) => self.record(|r, patience| r.run_started(started, patience)),
            Report::RunFinished(finished) => {
                self.record(|r, patience| r.run_finished(finished, patience));
                if let Some(list) = self.finished.as_mut() {
                    list.push(finished.clone());
                }
            }
            Report::Sample { run_id, sample } => {
                if let Some(recorder) = &self.recorder {
                    recorder.sample(run_id, sample);
                }
                return;
            }
            Report::Metric {
                run_id,
                name,
                t_ms,
                value,
            } => {
                if let Some(recorder) = &self.recorder {
                    recorder.metric(MetricRow {
                        run_id: run_id.clone(),
                        name: name.clone(),
                        t_ms: *t_ms,
                        value: *value,
                    });
                }
                return;
            }
            Report::Output { .. } | Report::Notice(_) | Report::Stall(_) => {}
        }
        self.frontend.report(report);
    }

    fn record(&mut self, write: impl FnOnce(&Recorder, std::time::Duration) -> Result<Recorded, StoreError>) {
        let Some(recorder) = self.recorder.as_ref() else { return };
        // While the file is busy the loop does not wait for each write: they are queued anyway.
        let patience = if self.history_delayed {
            DELAYED_ACK_WAIT
        } else {
            ACK_WAIT
        };
        let notice = match write(recorder, patience) {
            Ok(Recorded::Done) => {
                self.history_delayed = false;
                None
            }
            Ok(Recorded::Delayed) if self.history_delayed => None,
            Ok(Recorded::Delayed) => {
                self.history_delayed = true;
                Some(Notice::warn(format!(
                    "{} is busy (another process has it open): runs are kept and written when it is free",
                    recorder.path().display()
                )))
            }
            Err(e) => {
                self.recorder = None;
                Some(Notice::warn(format!("history is off: {e}")))
            }
        };
        if let Some(notice) = notice {
            self.frontend.report(&Report::Notice(notice));
        }
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
