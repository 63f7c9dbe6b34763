//! The loop: receive an event, let `update` decide, carry out its effects, repeat. Everything
//! it does is plumbing; the decisions live in `state::update`.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::effect::Effect;
use crate::event::Event;
use crate::headless::Printer;
use crate::sources::runner::Runner;
use crate::state::{next_wakeup, update, State};

/// Capacity of the event channel. Sources block when it is full (output chunks included), which
/// bounds looptop's memory whatever a job prints.
pub const EVENT_CHANNEL_CAPACITY: usize = 64;

/// Runs the loop until an `Effect::Exit`; returns its exit code.
pub async fn run_loop(
    mut state: State,
    mut runner: Runner,
    mut printer: Printer,
    mut events: mpsc::Receiver<Event>,
    first: Vec<Effect>,
) -> u8 {
    // Events the loop produces itself (a spawn's outcome) are applied before anything else.
    let mut own: VecDeque<Event> = VecDeque::new();
    if let Some(code) = carry_out(first, &state, &mut runner, &mut printer, &mut own) {
        return code;
    }
    loop {
        let event = match own.pop_front() {
            Some(event) => event,
            None => {
                let wake = next_wakeup(&state);
                tokio::select! {
                    received = events.recv() => match received {
                        Some(event) => event,
                        None => return 1,
                    },
                    () = sleep_until(wake) => Event::Tick,
                }
            }
        };
        if let Event::RunReaped { key, .. } = &event {
            own.extend(runner.forget(*key).into_iter().map(Event::Notice));
        }
        let effects = update(&mut state, event, Instant::now());
        if let Some(code) = carry_out(effects, &state, &mut runner, &mut printer, &mut own) {
            return code;
        }
    }
}

fn carry_out(
    effects: Vec<Effect>,
    state: &State,
    runner: &mut Runner,
    printer: &mut Printer,
    own: &mut VecDeque<Event>,
) -> Option<u8> {
    for effect in effects {
        match effect {
            Effect::StartRun { key, job, trigger } => own.push_back(runner.start(key, &state.jobs[job].spec, &trigger)),
            Effect::Signal { key, signal } => runner.signal(key, signal),
            Effect::Report(report) => printer.report(&report),
            Effect::Exit(code) => return Some(code),
        }
    }
    None
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
