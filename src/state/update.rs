//! `update`: the loop as a pure function of (state, event, now). It decides when runs start and
//! stop (coalescing, `on_change`, timeouts, the SIGTERM-then-SIGKILL grace, quitting) and returns
//! what should happen as `Effect`s. No I/O, so it is tested with constructed events and times.

use std::path::Path;
use std::time::{Duration, Instant};

use super::echo::ECHO_WINDOW;
use super::{ActiveRun, Burst, Exit, Mode, Spawned, State, Stop, StopReason, Trigger};
use crate::config::OnChange;
use crate::diagnose::query::{QueryProfile, QueryReport};
use crate::diagnose::regression::compare;
use crate::diagnose::thresholds::{ALONGSIDE_SHARE, BASELINE_RUNS};
use crate::diagnose::verdict::judge;
use crate::diagnose::Point;
use crate::effect::{Effect, Report, StopSignal};
use crate::event::{Event, GpuStatus, Notice};
use crate::report::{Outcome, RunFinished, RunIdentity, RunStarted, StallStarted};

/// After the main process exits, the rest of its group gets this long to exit by itself before
/// it is stopped like any run (SIGTERM, grace, SIGKILL): no process of a job outlives its run.
pub const LEFTOVER_WAIT: Duration = Duration::from_millis(250);
/// A group still there this long after SIGKILL is given up on, so that looptop never hangs on a
/// process stuck in the kernel (uninterruptible sleep).
pub const ABANDON_AFTER: Duration = Duration::from_secs(5);
/// Exit code of `--once` when the command could not be started (as a shell reports it).
pub const EXIT_SPAWN_FAILED: u8 = 127;

/// Starts a run of every job (looptop's start, unless postponed).
pub fn start_all(state: &mut State) -> Vec<Effect> {
    let mut effects = Vec::new();
    for index in state.order.clone() {
        match state.unmet_need(index) {
            Some(need) => wait_for(state, index, need, &mut effects),
            None => start_run(state, index, Trigger::default(), false, &mut effects),
        }
    }
    effects
}

/// Job `index` cannot run before job `need` has passed: it waits, and says so once.
fn wait_for(state: &mut State, index: usize, need: usize, effects: &mut Vec<Effect>) {
    let need_name = state.jobs[need].spec.name.clone();
    let job = &mut state.jobs[index];
    if !job.waiting {
        job.waiting = true;
        let message = format!("`{}` waits for `{need_name}` to pass (needs)", job.spec.name);
        effects.push(Effect::Report(Report::Notice(Notice::info(message))));
    }
}

/// Job `index` is over: the jobs that need it run if it passed and nothing else holds them
/// (again after every pass, in watch mode; once, with `--once`).
fn run_dependents(state: &mut State, index: usize, passed: bool, now: Instant, effects: &mut Vec<Effect>) {
    let name = state.jobs[index].spec.name.clone();
    for dependent in state.dependents(index) {
        let job = &state.jobs[dependent];
        if state.mode == Mode::Once && (job.last.is_some() || job.active.is_some()) {
            continue;
        }
        if !passed {
            if job.waiting {
                let message = match state.mode {
                    Mode::Watch => format!("`{}` waits for `{name}` to pass", job.spec.name),
                    _ => format!("`{}` does not run: `{name}` did not pass", job.spec.name),
                };
                effects.push(Effect::Report(Report::Notice(Notice::warn(message))));
            }
            continue;
        }
        if let Some(other) = state.unmet_need(dependent) {
            wait_for(state, dependent, other, effects);
            continue;
        }
        let job = &mut state.jobs[dependent];
        job.waiting = false;
        let trigger = job.pending.take().unwrap_or_default();
        let message = format!("`{name}` passed: running `{}`", job.spec.name);
        effects.push(Effect::Report(Report::Notice(Notice::info(message))));
        if job.active.is_some() {
            on_change(state, dependent, trigger, now, now, effects);
        } else {
            start_run(state, dependent, trigger, false, effects);
        }
    }
}

/// Applies one event at time `now` and returns what should happen next.
pub fn update(state: &mut State, event: Event, now: Instant) -> Vec<Effect> {
    let mut effects = Vec::new();
    match event {
        Event::FilesChanged { changes, rescan, at } => {
            let paused = state.view.as_ref().is_some_and(|v| v.paused);
            if state.mode == Mode::Watch && !state.quitting && !paused {
                state
                    .burst
                    .get_or_insert_with(|| Burst::new(at))
                    .add(changes, rescan, at);
            }
        }
        Event::RunSpawned {
            key,
            run_id,
            pid,
            at,
            wall,
            log,
            tests,
        } => {
            if let Some((index, run)) = state.run_mut(key) {
                run.spawned = Some(Spawned {
                    run_id,
                    pid,
                    at,
                    wall,
                    log,
                });
                run.test_plan = tests.map(|plan| *plan);
                let report = run_started(&state.jobs[index], key);
                effects.extend(report.map(|r| Effect::Report(Report::RunStarted(r))));
            }
        }
        Event::SpawnFailed { key, error } => {
            if let Some((index, _)) = state.run_mut(key) {
                let job = &mut state.jobs[index];
                job.active = None;
                job.last_ended_at = Some(now);
                let message = format!("cannot start job `{}` ({}): {error}", job.spec.name, job.spec.command);
                effects.push(Effect::Report(Report::Notice(Notice::error(message))));
                after_run(state, index, EXIT_SPAWN_FAILED, now, &mut effects);
            }
        }
        Event::RunOutput { key, stream, bytes } => output(state, key, stream, bytes, now, &mut effects),
        Event::RunExited { key, status, at } => {
            if let Some((index, _)) = state.run_mut(key) {
                let job = &mut state.jobs[index];
                let grace = job.spec.stop_grace;
                let Some(run) = job.active.as_mut() else { return effects };
                run.exit = Some(Exit { status, at });
                if run.stop.is_none() {
                    let term_at = at + LEFTOVER_WAIT;
                    run.stop = Some(Stop {
                        reason: StopReason::Leftovers,
                        requested_at: at,
                        term_at,
                        term_sent: false,
                        kill_at: term_at + grace,
                        kill_sent: false,
                    });
                }
            }
        }
        Event::TestsCollected { key, results } => {
            if let Some((_, run)) = state.run_mut(key) {
                run.test_results = Some(*results);
            }
        }
        Event::RunReaped { key, cpu } => {
            if let Some((index, _)) = state.run_mut(key) {
                finish_run(state, index, cpu, now, &mut effects);
            }
        }
        Event::Sample(sample) => sampled(state, sample, &mut effects),
        Event::Profile { key, profile } => {
            if let Some((_, run)) = state.run_mut(key) {
                run.profile = Some(*profile);
            }
        }
        Event::Gpus(status) => {
            effects.extend(gpu_notice(&status).map(|n| Effect::Report(Report::Notice(n))));
            state.gpus = Some(status);
        }
        Event::Interrupt => interrupt(state, now, &mut effects),
        Event::Key(key) => super::keys::key(state, key, now, &mut effects),
        Event::Wheel(wheel) => super::keys::wheel(state, wheel, &mut effects),
        Event::PastRun { job, run_id, samples } => {
            if let Some(job) = state.view.as_mut().and_then(|v| v.jobs.get_mut(job)) {
                job.past = Some(super::view::PastRun::new(run_id, samples));
            }
        }
        Event::Resize => {}
        Event::Tick => {}
        Event::Notice(notice) => effects.push(Effect::Report(Report::Notice(notice))),
    }
    advance(state, now, &mut effects);
    if let Some(view) = state.view.as_mut() {
        let jobs = &state.jobs;
        view.apply(&effects, |name| jobs.iter().position(|j| j.spec.name == name));
    }
    effects
}

/// A chunk of a run's output: pass it on, and pull the job's metrics out of it.
fn output(
    state: &mut State,
    key: crate::event::RunKey,
    stream: crate::event::Stream,
    bytes: Vec<u8>,
    now: Instant,
    effects: &mut Vec<Effect>,
) {
    let Some((index, _)) = state.run_mut(key) else { return };
    let job = &mut state.jobs[index];
    let Some(run) = job.active.as_mut() else { return };
    let Some(spawned) = &run.spawned else { return };
    let run_id = spawned.run_id.clone();
    let query_job = job.spec.query.is_some();
    if !job.spec.metrics.is_empty() || query_job {
        let t_ms = ms(now.saturating_duration_since(spawned.at));
        let (values, lines) = run.output.feed(&job.spec.metrics, &bytes, t_ms);
        report_metrics(&run_id, values, effects);
        if query_job && stream == crate::event::Stream::Stdout {
            if let Some(profile) = lines.iter().rev().find_map(|l| QueryProfile::from_summary_line(l)) {
                run.query = Some(profile);
            }
        }
    }
    effects.push(Effect::Report(Report::Output { run_id, stream, bytes }));
}

fn report_metrics(run_id: &str, values: Vec<crate::diagnose::metrics::MetricValue>, effects: &mut Vec<Effect>) {
    effects.extend(values.into_iter().filter(|v| v.store).map(|v| {
        Effect::Report(Report::Metric {
            run_id: run_id.to_string(),
            name: v.name,
            t_ms: v.t_ms,
            value: v.value,
        })
    }));
}

/// A sample of an active run: fold it into the run, report a starved GPU once per stall, and
/// pass the sample on to the history.
fn sampled(state: &mut State, sample: Box<crate::sample::Sample>, effects: &mut Vec<Effect>) {
    let Some((index, _)) = state.run_mut(sample.key) else {
        return;
    };
    let others: Vec<usize> = state
        .jobs
        .iter()
        .enumerate()
        .filter(|(other, job)| {
            *other != index
                && job
                    .active
                    .as_ref()
                    .is_some_and(|r| r.spawned.is_some() && r.exit.is_none())
        })
        .map(|(other, _)| other)
        .collect();
    let job = &mut state.jobs[index];
    let Some(run) = job.active.as_mut() else { return };
    let Some(spawned) = &run.spawned else { return };
    let run_id = spawned.run_id.clone();
    for other in others {
        *run.alongside.entry(other).or_default() += 1;
    }
    let point = Point::of(&sample);
    run.usage.add(&sample);
    run.files.add(&sample);
    run.cluster.add(&sample);
    if let Some(since_ms) = run.stall.observe(&point) {
        effects.push(Effect::Report(Report::Stall(StallStarted {
            run_id: run_id.clone(),
            job: job.spec.name.clone(),
            since_ms,
            at_ms: point.t_ms,
        })));
    }
    run.points.push(point);
    effects.push(Effect::Report(Report::Sample { run_id, sample }));
}

/// The next time `update` must be called with `Event::Tick` even if nothing else happens.
pub fn next_wakeup(state: &State) -> Option<Instant> {
    let burst = state.burst.as_ref().and_then(|b| b.due_at(state.coalescing));
    let runs = state.jobs.iter().filter_map(|job| {
        let run = job.active.as_ref()?;
        let timeout = timeout_deadline(job.spec.timeout, run);
        let stop = run.stop.map(|s| match (s.term_sent, s.kill_sent) {
            (false, _) => s.term_at,
            (true, false) => s.kill_at,
            (true, true) => s.kill_at + ABANDON_AFTER,
        });
        [timeout, stop].into_iter().flatten().min()
    });
    burst.into_iter().chain(runs).min()
}

/// Carries out whatever is due at `now`: a finished burst, timeouts, signals.
fn advance(state: &mut State, now: Instant, effects: &mut Vec<Effect>) {
    if state
        .burst
        .as_ref()
        .and_then(|b| b.due_at(state.coalescing))
        .is_some_and(|due| now >= due)
    {
        if let Some(burst) = state.burst.take() {
            state.burst = burst.still_writing(now);
            fire(state, burst, now, effects);
        }
    }
    let mut abandoned = Vec::new();
    for (index, job) in state.jobs.iter_mut().enumerate() {
        let Some(run) = job.active.as_mut() else { continue };
        if timeout_deadline(job.spec.timeout, run).is_some_and(|deadline| now >= deadline) {
            let timeout = job.spec.timeout.unwrap_or_default();
            let message = format!(
                "job `{}` ran past its timeout of {}: stopping it",
                job.spec.name,
                humantime::format_duration(timeout)
            );
            effects.push(Effect::Report(Report::Notice(Notice::warn(message))));
            request_stop(run, StopReason::Timeout, job.spec.stop_grace, now);
        }
        let key = run.key;
        if let (Some(stop), Some(_)) = (run.stop.as_mut(), &run.spawned) {
            if !stop.term_sent && now >= stop.term_at {
                stop.term_sent = true;
                effects.push(Effect::Signal {
                    key,
                    signal: StopSignal::Term,
                });
            }
            if !stop.kill_sent && now >= stop.kill_at {
                stop.kill_sent = true;
                effects.push(Effect::Signal {
                    key,
                    signal: StopSignal::Kill,
                });
            } else if stop.kill_sent && now >= stop.kill_at + ABANDON_AFTER {
                let message = format!(
                    "a process of `{}` is still there {} s after SIGKILL (stuck in the kernel, on a hung \
                     network mount for example): looptop stops waiting for it",
                    job.spec.name,
                    ABANDON_AFTER.as_secs()
                );
                effects.push(Effect::Report(Report::Notice(Notice::error(message))));
                abandoned.push(index);
            }
        }
    }
    for index in abandoned {
        finish_run(state, index, crate::event::CpuTime::default(), now, effects);
    }
}

/// The run of job `index` is over (its group is gone, or given up on): report it and go on.
fn finish_run(state: &mut State, index: usize, cpu: crate::event::CpuTime, now: Instant, effects: &mut Vec<Effect>) {
    let job = &mut state.jobs[index];
    job.last_ended_at = Some(now);
    let Some(mut run) = job.active.take() else { return };
    let samples = run.points.len() as f64;
    let alongside: Vec<String> = run
        .alongside
        .iter()
        .filter(|(_, &seen)| seen as f64 >= ALONGSIDE_SHARE * samples)
        .filter_map(|(&other, _)| state.jobs.get(other))
        .map(|other| other.spec.name.clone())
        .collect();
    let job = &mut state.jobs[index];
    let (plan, results) = (run.test_plan.take(), run.test_results.take());
    if let Some(mut finished) = run_finished(&job.spec, run, cpu, now, &state.root) {
        if let Some(verdict) = finished.verdict.as_mut() {
            verdict.ran_alongside(alongside);
        }
        if let Some(query) = finished.query.as_mut() {
            let previous = job.last.as_ref().and_then(|l| l.query.as_ref()).map(|q| q.profile.rows);
            query.hints = query.profile.hints(previous);
        }
        let plan = plan.unwrap_or_default();
        finished.tests = results.map(|results| job.tests.judge(results, &plan));
        // A run of only some tests is not the job's loop: never compared with whole-suite runs.
        let partial = finished
            .tests
            .as_ref()
            .is_some_and(|t| t.selection == crate::diagnose::per_test::Selection::Only);
        if finished.outcome == Outcome::Pass && !partial {
            finished.regression = compare(finished.duration_ms, &job.baseline);
            job.baseline.push(finished.duration_ms);
            let excess = job.baseline.len().saturating_sub(BASELINE_RUNS);
            job.baseline.drain(..excess);
        }
        let job = &mut state.jobs[index];
        let code = finished.process_exit_code();
        job.last = Some(finished.clone());
        effects.push(Effect::Report(Report::RunFinished(finished)));
        after_run(state, index, code, now, effects);
    }
}

fn timeout_deadline(timeout: Option<Duration>, run: &ActiveRun) -> Option<Instant> {
    let still_running = run.exit.is_none() && run.stop.is_none_or(|s| s.reason == StopReason::Leftovers);
    match (timeout, &run.spawned) {
        (Some(timeout), Some(spawned)) if still_running => Some(spawned.at + timeout),
        _ => None,
    }
}

/// A burst is over: every job it concerns gets the changes.
fn fire(state: &mut State, burst: Burst, now: Instant, effects: &mut Vec<Effect>) {
    // Needed jobs first: a job whose need starts now waits for it instead of racing it.
    for index in state.order.clone() {
        let spec = &state.jobs[index].spec;
        let paths: Vec<_> = burst
            .changed_paths()
            .filter(|p| spec.is_triggered_by(p))
            .map(Path::to_path_buf)
            .collect();
        // Changes past the kept paths, or lost by the watcher, may concern any job: run rather than miss one.
        if paths.is_empty() && burst.more == 0 && !burst.rescan {
            continue;
        }
        let trigger = Trigger {
            paths,
            more: burst.more,
            rescan: burst.rescan,
        };
        on_change(state, index, trigger, burst.started_at(), now, effects);
    }
}

/// Changes (the first seen at `changed_at`) concern job `index`: start it, or follow its
/// `on_change` if it is running.
pub(super) fn on_change(
    state: &mut State,
    index: usize,
    trigger: Trigger,
    changed_at: Instant,
    now: Instant,
    effects: &mut Vec<Effect>,
) {
    if state.jobs[index].active.is_none() {
        if let Some(need) = state.unmet_need(index) {
            // It runs when `need` passes, with these changes: files the needed job writes
            // while it runs start nothing of their own.
            state.jobs[index]
                .pending
                .get_or_insert_with(Trigger::default)
                .merge(trigger);
            wait_for(state, index, need, effects);
            return;
        }
    }
    let job = &mut state.jobs[index];
    let Some(run) = job.active.as_mut() else {
        let just_after_a_run = job.last_ended_at.is_some_and(|ended| changed_at <= ended + ECHO_WINDOW);
        start_run(state, index, trigger, just_after_a_run, effects);
        return;
    };
    let what = describe_trigger(&trigger);
    let name = job.spec.name.clone();
    if run.exit.is_some() {
        // The run is already over but for its leftovers: run again as soon as they are gone.
        job.pending.get_or_insert_with(Trigger::default).merge(trigger);
        return;
    }
    let message = match job.spec.on_change {
        OnChange::Restart => {
            job.pending.get_or_insert_with(Trigger::default).merge(trigger);
            request_stop(run, StopReason::Restart, job.spec.stop_grace, now);
            format!("{what}: restarting `{name}`")
        }
        OnChange::Queue => {
            job.pending.get_or_insert_with(Trigger::default).merge(trigger);
            format!("{what}: `{name}` runs again when this run ends")
        }
        OnChange::Ignore => format!("{what}: ignored while `{name}` runs (on_change = \"ignore\")"),
    };
    effects.push(Effect::Report(Report::Notice(Notice::info(message))));
}

/// "src/a.py changed", "src/a.py and 2 more changed".
pub fn describe_trigger(trigger: &Trigger) -> String {
    let others = trigger.paths.len().saturating_sub(1) + trigger.more;
    match (trigger.paths.first(), others) {
        (None, _) if trigger.rescan => "files changed (the watcher lost count)".to_string(),
        (None, 0) => "started".to_string(),
        (None, n) => format!("{n} files changed"),
        (Some(first), 0) => format!("{} changed", first.display()),
        (Some(first), n) => format!("{} and {n} more changed", first.display()),
    }
}

/// Starts a run of job `index`; `during_previous` says its changes were made while the previous
/// run went on or just after (which feeds the echo detector).
fn start_run(state: &mut State, index: usize, trigger: Trigger, during_previous: bool, effects: &mut Vec<Effect>) {
    let key = state.next_key();
    let job = &mut state.jobs[index];
    if let Some(paths) = job.echo.observe(&trigger, during_previous) {
        let list: Vec<String> = paths.iter().take(5).map(|p| p.display().to_string()).collect();
        let message = format!(
            "`{}` may be retriggering itself: its last {} runs were each started by {} changing during \
             or just after the run before. If the job writes these files, ignore them: add them to \
             [watch] ignore in looptop.toml, or to .gitignore",
            job.spec.name,
            super::echo::ECHO_RUNS,
            list.join(", ")
        );
        effects.push(Effect::Report(Report::Notice(Notice::warn(message))));
    }
    job.active = Some(ActiveRun {
        key,
        trigger: trigger.clone(),
        spawned: None,
        exit: None,
        stop: None,
        usage: super::usage::UsageTally::default(),
        points: Vec::new(),
        files: crate::diagnose::files_read::FilesTally::default(),
        cluster: crate::diagnose::cluster::ClusterTally::default(),
        stall: crate::diagnose::stall::StallWatch::default(),
        output: crate::diagnose::metrics::OutputScanner::default(),
        query: None,
        alongside: std::collections::BTreeMap::new(),
        test_plan: None,
        test_results: None,
        profile: None,
    });
    effects.push(Effect::StartRun {
        key,
        job: index,
        trigger,
    });
}

pub(super) fn request_stop(run: &mut ActiveRun, reason: StopReason, grace: Duration, now: Instant) {
    match run.stop.as_mut() {
        Some(stop) => {
            if stop.reason == StopReason::Leftovers {
                stop.reason = reason;
                stop.requested_at = now;
            }
            stop.term_at = stop.term_at.min(now);
            stop.kill_at = stop.kill_at.min(now + grace);
        }
        None => {
            run.stop = Some(Stop {
                reason,
                requested_at: now,
                term_at: now,
                term_sent: false,
                kill_at: now + grace,
                kill_sent: false,
            });
        }
    }
}

/// A run's group is gone: what happens next for its job and for looptop.
fn after_run(state: &mut State, index: usize, exit_code: u8, now: Instant, effects: &mut Vec<Effect>) {
    if state.exit_code == 0 {
        state.exit_code = exit_code;
    }
    if let Mode::Repeat { left } = &mut state.mode {
        if *left > 0 && !state.quitting {
            *left -= 1;
            start_run(state, index, Trigger::default(), false, effects);
            return;
        }
    }
    if state.quitting {
        if !state.any_active() {
            let code = if state.mode == Mode::Watch { 0 } else { state.exit_code };
            effects.push(Effect::Exit(code));
        }
        return;
    }
    let passed = exit_code == 0
        && state.jobs[index]
            .last
            .as_ref()
            .is_some_and(|last| last.outcome == Outcome::Pass);
    if state.mode == Mode::Watch {
        if let Some(pending) = state.jobs[index].pending.take() {
            start_run(state, index, pending, true, effects);
        }
    }
    run_dependents(state, index, passed, now, effects);
    if matches!(state.mode, Mode::Once | Mode::Repeat { .. }) && !state.any_active() {
        effects.push(Effect::Exit(state.exit_code));
    }
}

pub(super) fn interrupt(state: &mut State, now: Instant, effects: &mut Vec<Effect>) {
    let forced = state.quitting;
    state.quitting = true;
    state.burst = None;
    for job in &mut state.jobs {
        job.pending = None;
        if let Some(run) = job.active.as_mut() {
            // A second interrupt does not wait for the grace period.
            let grace = if forced { Duration::ZERO } else { job.spec.stop_grace };
            request_stop(run, StopReason::Quit, grace, now);
        }
    }
    if !state.any_active() {
        effects.push(Effect::Exit(0));
    }
}

fn run_identity(spec: &crate::config::JobSpec, run: &ActiveRun) -> Option<RunIdentity> {
    let spawned = run.spawned.as_ref()?;
    Some(RunIdentity {
        run_id: spawned.run_id.clone(),
        job: spec.name.clone(),
        command: spec.command.to_string(),
        kind: spec.kind,
        trigger: run.trigger.paths.clone(),
        ts: spawned.wall,
        log: spawned.log.clone(),
    })
}

fn run_started(job: &super::JobState, key: crate::event::RunKey) -> Option<RunStarted> {
    let run = job.active.as_ref().filter(|r| r.key == key)?;
    Some(RunStarted {
        run: run_identity(&job.spec, run)?,
        pid: run.spawned.as_ref()?.pid,
        targets: run.test_plan.as_ref().map(|p| p.targets.clone()),
        selection: run.test_plan.as_ref().map(|p| p.selection),
    })
}

fn run_finished(
    spec: &crate::config::JobSpec,
    mut run: ActiveRun,
    cpu: crate::event::CpuTime,
    now: Instant,
    root: &Path,
) -> Option<RunFinished> {
    let spawned = run.spawned.as_ref()?;
    // A last line without a newline still counts in the summary.
    let _ = run
        .output
        .finish(&spec.metrics, ms(now.saturating_duration_since(spawned.at)));
    let spawned = run.spawned.as_ref()?;
    let ended_at = run.exit.map_or(now, |e| e.at);
    let status = run.exit.map(|e| e.status).unwrap_or_default();
    let duration_ms = ms(ended_at.saturating_duration_since(spawned.at));
    let mut verdict = judge(&run.points, duration_ms);
    if let Some(profile) = &run.profile {
        verdict.waited_in(crate::diagnose::python::consumer_waits_in(profile));
        let found = crate::diagnose::python::hints(profile);
        verdict.hints = crate::diagnose::python::merge(std::mem::take(&mut verdict.hints), found);
    }
    let files_read = run.files.summary(root);
    let cluster = run.cluster.report(duration_ms, run.files.input_bytes());
    // A query job's files are judged from its plan (`query.hints`), not from its descriptors.
    let mut found = crate::diagnose::cluster::hints(cluster.as_ref(), run.cluster.samples());
    if spec.query.is_none() {
        found.extend(crate::diagnose::files_read::hints(
            &files_read,
            run.files.samples(),
            run.files.read_chars(),
        ));
    }
    verdict.hints = crate::diagnose::python::merge(std::mem::take(&mut verdict.hints), found);
    Some(RunFinished {
        run: run_identity(spec, &run)?,
        exit_code: status.code,
        signal: status.signal,
        duration_ms,
        cpu_user_ms: ms(cpu.user),
        cpu_sys_ms: ms(cpu.sys),
        outcome: outcome(&run),
        usage: run.usage.summary(),
        verdict: Some(verdict),
        regression: None,
        metrics: run.output.summary(&spec.metrics),
        query: run.query.take().map(|profile| QueryReport {
            profile,
            hints: Vec::new(),
        }),
        tests: None,
        profile: run.profile.take(),
        files_read,
        cluster,
    })
}

/// What to tell the user about GPUs: which are watched, or why there are none when the
/// machine looks like it should have them. A machine without any NVIDIA library gets no line.
fn gpu_notice(status: &GpuStatus) -> Option<Notice> {
    match status {
        GpuStatus::Available { driver, devices, .. } => {
            let names: Vec<String> = devices.iter().map(|d| format!("{} {}", d.index, d.name)).collect();
            Some(Notice::info(format!(
                "watching {} GPU{} (driver {}): {}",
                devices.len(),
                if devices.len() == 1 { "" } else { "s" },
                driver.as_deref().unwrap_or("unknown"),
                names.join(", ")
            )))
        }
        GpuStatus::Unavailable(why) if why.expected => None,
        GpuStatus::Unavailable(why) => Some(Notice::warn(format!("no GPU readings: {}", why.reason))),
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn outcome(run: &ActiveRun) -> Outcome {
    // A stop counts only if it was asked for before the main process exited by itself.
    let stopped = run
        .stop
        .filter(|s| s.reason != StopReason::Leftovers && run.exit.is_none_or(|e| e.at >= s.requested_at));
    match (stopped.map(|s| s.reason), run.exit.map(|e| e.status)) {
        (Some(StopReason::Timeout), _) => Outcome::Timeout,
        (Some(_), _) => Outcome::Killed,
        (None, Some(status)) if status.signal.is_some() => Outcome::Killed,
        (None, Some(status)) if status.code == Some(0) => Outcome::Pass,
        (None, Some(status)) if status.code.is_some() => Outcome::Fail,
        (None, _) => Outcome::Killed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{JobCommand, JobSpec};
    use crate::event::{Change, ChangeKind, CpuTime, ExitStatus, RunKey};
    use std::path::PathBuf;
    use std::time::SystemTime;

    const COALESCING: super::super::Coalescing = super::super::Coalescing {
        debounce: Duration::from_millis(5),
        debounce_max: Duration::from_millis(500),
    };

    fn job(on_change: OnChange) -> JobSpec {
        let mut spec = JobSpec::ad_hoc(JobCommand::Shell("pytest".into()), PathBuf::from("/p"));
        spec.on_change = on_change;
        spec.stop_grace = Duration::from_secs(2);
        spec
    }

    fn ms_after(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn started_key(effects: &[Effect]) -> Option<RunKey> {
        effects.iter().find_map(|e| match e {
            Effect::StartRun { key, .. } => Some(*key),
            _ => None,
        })
    }

    fn signals(effects: &[Effect]) -> Vec<StopSignal> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Signal { signal, .. } => Some(*signal),
                _ => None,
            })
            .collect()
    }

    fn finished(effects: &[Effect]) -> Option<&RunFinished> {
        effects.iter().find_map(|e| match e {
            Effect::Report(Report::RunFinished(f)) => Some(f),
            _ => None,
        })
    }

    fn spawn(state: &mut State, key: RunKey, at: Instant) -> Vec<Effect> {
        let event = Event::RunSpawned {
            key,
            run_id: format!("run-{}", key.0),
            pid: 100 + u32::try_from(key.0).unwrap_or(0),
            at,
            wall: SystemTime::UNIX_EPOCH,
            log: None,
            tests: None,
        };
        update(state, event, at)
    }

    fn exit(state: &mut State, key: RunKey, code: Option<i32>, signal: Option<i32>, at: Instant) -> Vec<Effect> {
        let mut effects = update(
            state,
            Event::RunExited {
                key,
                status: ExitStatus { code, signal },
                at,
            },
            at,
        );
        effects.extend(update(
            state,
            Event::RunReaped {
                key,
                cpu: CpuTime::default(),
            },
            at,
        ));
        effects
    }

    fn change(state: &mut State, path: &str, at: Instant) -> Vec<Effect> {
        let event = Event::FilesChanged {
            changes: vec![Change::new(path, ChangeKind::Changed)],
            rescan: false,
            at,
        };
        update(state, event, at)
    }

    /// A state with one running run of `job`, started at `t0`.
    fn running(on_change: OnChange, t0: Instant) -> (State, RunKey) {
        let mut state = State::new(vec![job(on_change)], COALESCING, Mode::Watch);
        let key = started_key(&start_all(&mut state)).expect("starts");
        spawn(&mut state, key, t0);
        (state, key)
    }

    /// A sample of a run held back by other work: 45 % of one core, its threads waiting for a CPU
    /// half the time, a 2-core host fully busy.
    fn contended_sample(key: RunKey, t_ms: f64) -> Event {
        use crate::sample::{HostSample, ProcessSample, Sample, TreeSample};
        Event::Sample(Box::new(Sample {
            key,
            t_ms,
            host: HostSample {
                cpu_pct: 100.0,
                core_pct: vec![100.0, 100.0],
                ..HostSample::default()
            },
            tree: TreeSample {
                processes: 1,
                cpu_pct: 45.0,
                run_queue_delay_pct: Some(52.0),
                top: vec![ProcessSample {
                    pid: 1,
                    name: "duckdb".into(),
                    cpu_pct: 45.0,
                    rss_bytes: 1,
                    threads: Vec::new(),
                }],
                ..TreeSample::default()
            },
            gpus: Vec::new(),
        }))
    }

    #[test]
    fn a_contended_run_names_the_jobs_of_this_looptop_that_ran_beside_it() {
        let t0 = Instant::now();
        let named = |name: &str| {
            let mut spec = job(OnChange::Restart);
            spec.name = name.to_string();
            spec
        };
        for train_runs in [true, false] {
            let mut state = State::new(vec![named("queries"), named("train")], COALESCING, Mode::Watch);
            let starts = start_all(&mut state);
            let keys: Vec<RunKey> = starts
                .iter()
                .filter_map(|e| match e {
                    Effect::StartRun { key, .. } => Some(*key),
                    _ => None,
                })
                .collect();
            let [queries, train] = keys[..] else {
                panic!("two starts: {starts:?}")
            };
            spawn(&mut state, queries, t0);
            if train_runs {
                spawn(&mut state, train, t0);
            }
            for i in 1..=8u32 {
                update(
                    &mut state,
                    contended_sample(queries, f64::from(i) * 250.0),
                    ms_after(t0, u64::from(i) * 250),
                );
            }
            let effects = exit(&mut state, queries, Some(0), None, ms_after(t0, 2000));
            let verdict = finished(&effects).and_then(|f| f.verdict.clone()).expect("a verdict");
            assert_eq!(verdict.kind, crate::diagnose::verdict::Kind::Contended, "{verdict:?}");
            let hint = verdict.hints.iter().find(|h| h.id == "busy-machine").expect("the hint");
            if train_runs {
                assert_eq!(verdict.alongside, vec!["train".to_string()]);
                assert!(
                    verdict.summary.ends_with("; alongside this looptop's job `train`"),
                    "{}",
                    verdict.summary
                );
                assert!(hint.text.contains("this looptop's own job `train`"), "{}", hint.text);
                assert_eq!(hint.evidence["alongside"], serde_json::json!(["train"]));
            } else {
                assert!(
                    verdict.alongside.is_empty() && !verdict.summary.contains("alongside"),
                    "{verdict:?}"
                );
                assert!(
                    hint.text
                        .starts_with("other work kept the CPUs busy (host at 100 %): rerun"),
                    "{}",
                    hint.text
                );
            }
        }
    }

    #[test]
    fn a_run_of_only_the_affected_tests_is_never_compared_with_whole_suite_runs() {
        use crate::diagnose::per_test::{Selection, TestCase, TestOutcome, TestPlan, TestResults};
        let t0 = Instant::now();
        let mut state = State::new(vec![job(OnChange::Restart)], COALESCING, Mode::Watch);
        // A baseline of whole-suite runs around 1 s.
        state.jobs[0].baseline = vec![1000.0, 1010.0, 990.0, 1005.0, 995.0];
        let mut key = started_key(&start_all(&mut state)).expect("starts");
        for (i, selection) in [Selection::Only, Selection::Full].into_iter().enumerate() {
            let at = ms_after(t0, u64::try_from(i).unwrap_or(0) * 1000);
            let plan = TestPlan {
                selection,
                ..TestPlan::default()
            };
            update(
                &mut state,
                Event::RunSpawned {
                    key,
                    run_id: format!("run-{i}"),
                    pid: 1,
                    at,
                    wall: SystemTime::UNIX_EPOCH,
                    log: None,
                    tests: Some(Box::new(plan)),
                },
                at,
            );
            let results = TestResults {
                cases: vec![TestCase {
                    nodeid: "t.py::a".into(),
                    file: Some("t.py".into()),
                    outcome: TestOutcome::Passed,
                    duration_ms: 5.0,
                    message: None,
                    finished_ms: None,
                }],
                ..TestResults::default()
            };
            update(
                &mut state,
                Event::TestsCollected {
                    key,
                    results: Box::new(results),
                },
                at,
            );
            // Both runs take 100 ms: far faster than the whole suite's baseline.
            let effects = exit(&mut state, key, Some(0), None, at + Duration::from_millis(100));
            let report = finished(&effects).expect("finished");
            assert_eq!(
                report.tests.as_ref().map(|t| (t.count, t.selection)),
                Some((1, selection))
            );
            if selection == Selection::Only {
                assert_eq!(report.regression, None, "not compared");
                assert_eq!(state.jobs[0].baseline.len(), 5, "not part of the baseline");
            } else {
                assert!(report.regression.is_some(), "a whole-suite run is compared");
            }
            change(&mut state, "t.py", at + Duration::from_millis(200));
            key = started_key(&update(&mut state, Event::Tick, at + Duration::from_millis(210))).expect("again");
        }
    }

    #[test]
    fn a_save_starts_a_run_after_the_quiet_window() {
        let t0 = Instant::now();
        let mut state = State::new(vec![job(OnChange::Restart)], COALESCING, Mode::Watch);
        assert!(change(&mut state, "a.py", t0).is_empty());
        assert_eq!(next_wakeup(&state), Some(ms_after(t0, 5)));
        assert!(update(&mut state, Event::Tick, ms_after(t0, 4)).is_empty());
        let effects = update(&mut state, Event::Tick, ms_after(t0, 5));
        match &effects[..] {
            [Effect::StartRun { trigger, .. }] => assert_eq!(trigger.paths, vec![PathBuf::from("a.py")]),
            other => panic!("expected one start, got {other:?}"),
        }
    }

    #[test]
    fn a_storm_gives_one_run() {
        let t0 = Instant::now();
        let mut state = State::new(vec![job(OnChange::Restart)], COALESCING, Mode::Watch);
        let mut starts = 0;
        // 3,000 files over 2 s, with a 20 ms hiccup in the middle.
        for i in 0..3000u64 {
            let at = t0
                + Duration::from_micros(i * 666)
                + if i > 1500 {
                    Duration::from_millis(20)
                } else {
                    Duration::ZERO
                };
            let mut effects = update(&mut state, Event::Tick, at);
            effects.extend(change(&mut state, &format!("gen/{i}.py"), at));
            starts += effects.iter().filter(|e| matches!(e, Effect::StartRun { .. })).count();
        }
        assert_eq!(starts, 0, "no run while the storm goes on");
        let due = next_wakeup(&state).expect("burst pending");
        let effects = update(&mut state, Event::Tick, due);
        match &effects[..] {
            [Effect::StartRun { trigger, .. }] => assert_eq!(trigger.paths.len(), 1000),
            other => panic!("expected one start, got {other:?}"),
        }
    }

    #[test]
    fn restart_stops_with_term_then_kill_after_grace_then_starts_again() {
        let t0 = Instant::now();
        let (mut state, key) = running(OnChange::Restart, t0);
        change(&mut state, "a.py", ms_after(t0, 100));
        let effects = update(&mut state, Event::Tick, ms_after(t0, 105));
        assert_eq!(signals(&effects), vec![StopSignal::Term]);
        assert_eq!(next_wakeup(&state), Some(ms_after(t0, 2105)));
        assert!(signals(&update(&mut state, Event::Tick, ms_after(t0, 2000))).is_empty());
        assert_eq!(
            signals(&update(&mut state, Event::Tick, ms_after(t0, 2105))),
            vec![StopSignal::Kill]
        );
        let effects = exit(&mut state, key, None, Some(9), ms_after(t0, 2106));
        assert_eq!(finished(&effects).map(|f| f.outcome), Some(Outcome::Killed));
        let next = started_key(&effects).expect("restarted");
        assert_ne!(next, key);
    }

    #[test]
    fn queue_lets_the_run_finish_then_runs_exactly_once_more() {
        let t0 = Instant::now();
        let (mut state, key) = running(OnChange::Queue, t0);
        for (i, ms) in [100, 300, 700].into_iter().enumerate() {
            change(&mut state, &format!("f{i}.py"), ms_after(t0, ms));
            let effects = update(&mut state, Event::Tick, ms_after(t0, ms + 10));
            assert!(signals(&effects).is_empty(), "queue never stops the run");
        }
        let effects = exit(&mut state, key, Some(0), None, ms_after(t0, 1000));
        assert_eq!(finished(&effects).map(|f| f.outcome), Some(Outcome::Pass));
        let starts: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::StartRun { trigger, .. } => Some(trigger.paths.len()),
                _ => None,
            })
            .collect();
        assert_eq!(starts, vec![3], "one more run, carrying all three changes");
    }

    #[test]
    fn ignore_drops_changes_during_a_run() {
        let t0 = Instant::now();
        let (mut state, key) = running(OnChange::Ignore, t0);
        change(&mut state, "a.py", ms_after(t0, 100));
        update(&mut state, Event::Tick, ms_after(t0, 200));
        let effects = exit(&mut state, key, Some(1), None, ms_after(t0, 300));
        assert_eq!(finished(&effects).map(|f| f.outcome), Some(Outcome::Fail));
        assert_eq!(started_key(&effects), None);
    }

    #[test]
    fn timeout_stops_the_run_and_says_so() {
        let t0 = Instant::now();
        let mut spec = job(OnChange::Restart);
        spec.timeout = Some(Duration::from_millis(300));
        let mut state = State::new(vec![spec], COALESCING, Mode::Once);
        let key = started_key(&start_all(&mut state)).expect("starts");
        spawn(&mut state, key, t0);
        assert_eq!(next_wakeup(&state), Some(ms_after(t0, 300)));
        assert_eq!(
            signals(&update(&mut state, Event::Tick, ms_after(t0, 300))),
            vec![StopSignal::Term]
        );
        let effects = exit(&mut state, key, None, Some(15), ms_after(t0, 310));
        let report = finished(&effects).expect("finished");
        assert_eq!(report.outcome, Outcome::Timeout);
        assert_eq!(report.duration_ms, 310.0);
        assert!(effects.contains(&Effect::Exit(124)));
    }

    #[test]
    fn leftovers_are_stopped_after_the_main_process_exits() {
        let t0 = Instant::now();
        let (mut state, key) = running(OnChange::Restart, t0);
        let at = ms_after(t0, 1000);
        let effects = update(
            &mut state,
            Event::RunExited {
                key,
                status: ExitStatus {
                    code: Some(0),
                    signal: None,
                },
                at,
            },
            at,
        );
        assert!(signals(&effects).is_empty());
        assert_eq!(next_wakeup(&state), Some(at + LEFTOVER_WAIT));
        assert_eq!(
            signals(&update(&mut state, Event::Tick, at + LEFTOVER_WAIT)),
            vec![StopSignal::Term]
        );
        let effects = update(
            &mut state,
            Event::RunReaped {
                key,
                cpu: CpuTime::default(),
            },
            at + LEFTOVER_WAIT,
        );
        assert_eq!(
            finished(&effects).map(|f| (f.outcome, f.duration_ms)),
            Some((Outcome::Pass, 1000.0))
        );
    }

    #[test]
    fn quitting_stops_runs_and_a_second_interrupt_kills_at_once() {
        let t0 = Instant::now();
        let (mut state, key) = running(OnChange::Restart, t0);
        assert_eq!(
            signals(&update(&mut state, Event::Interrupt, ms_after(t0, 10))),
            vec![StopSignal::Term]
        );
        assert!(
            change(&mut state, "a.py", ms_after(t0, 20)).is_empty(),
            "no new runs while quitting"
        );
        assert_eq!(
            signals(&update(&mut state, Event::Interrupt, ms_after(t0, 30))),
            vec![StopSignal::Kill]
        );
        let effects = exit(&mut state, key, None, Some(9), ms_after(t0, 31));
        assert!(effects.contains(&Effect::Exit(0)));
        assert_eq!(started_key(&effects), None);
    }

    #[test]
    fn jobs_only_see_changes_matching_their_globs() {
        let t0 = Instant::now();
        let mut sql = job(OnChange::Restart);
        sql.watch = Some(
            globset::GlobSet::builder()
                .add(globset::Glob::new("*.sql").expect("glob"))
                .build()
                .expect("set"),
        );
        let mut state = State::new(vec![sql], COALESCING, Mode::Watch);
        change(&mut state, "README.md", t0);
        assert!(update(&mut state, Event::Tick, ms_after(t0, 50)).is_empty());
        change(&mut state, "q/daily.sql", ms_after(t0, 60));
        assert!(started_key(&update(&mut state, Event::Tick, ms_after(t0, 70))).is_some());
    }

    #[test]
    fn a_job_that_rewrites_its_own_inputs_is_called_out() {
        let t0 = Instant::now();
        let (mut state, mut key) = running(OnChange::Restart, t0);
        let mut warnings = Vec::new();
        let mut at = t0;
        for _ in 0..crate::state::echo::ECHO_RUNS + 1 {
            at += Duration::from_millis(100);
            let mut effects = exit(&mut state, key, Some(0), None, at);
            // The job wrote its output just before it exited.
            effects.extend(change(&mut state, "results.json", at - Duration::from_millis(1)));
            effects.extend(update(&mut state, Event::Tick, at + Duration::from_millis(10)));
            warnings.extend(effects.iter().filter_map(|e| match e {
                Effect::Report(Report::Notice(n)) if n.message.contains("retriggering itself") => Some(n.clone()),
                _ => None,
            }));
            key = started_key(&effects).expect("runs again");
            spawn(&mut state, key, at + Duration::from_millis(10));
        }
        assert_eq!(warnings.len(), 1, "warned once: {warnings:?}");
        assert!(warnings[0].message.contains("results.json"));
    }

    #[test]
    fn a_group_that_survives_sigkill_is_given_up_on_rather_than_hanging() {
        let t0 = Instant::now();
        let (mut state, _key) = running(OnChange::Restart, t0);
        update(&mut state, Event::Interrupt, t0);
        let kill_at = ms_after(t0, 2000);
        assert_eq!(
            signals(&update(&mut state, Event::Tick, kill_at)),
            vec![StopSignal::Kill]
        );
        assert_eq!(next_wakeup(&state), Some(kill_at + ABANDON_AFTER));
        let effects = update(&mut state, Event::Tick, kill_at + ABANDON_AFTER);
        assert_eq!(finished(&effects).map(|f| f.outcome), Some(Outcome::Killed));
        assert!(effects.contains(&Effect::Exit(0)), "looptop can quit: {effects:?}");
    }

    #[test]
    fn repeat_runs_back_to_back_then_exits() {
        let t0 = Instant::now();
        let mut state = State::new(vec![job(OnChange::Restart)], COALESCING, Mode::Repeat { left: 2 });
        let mut key = started_key(&start_all(&mut state)).expect("first");
        let mut starts = 1;
        for i in 1..=3 {
            spawn(&mut state, key, ms_after(t0, i * 100));
            let effects = exit(&mut state, key, Some(0), None, ms_after(t0, i * 100 + 50));
            match started_key(&effects) {
                Some(next) => {
                    key = next;
                    starts += 1;
                }
                None => assert!(effects.contains(&Effect::Exit(0)), "{effects:?}"),
            }
        }
        assert_eq!(starts, 3);
    }

    #[test]
    fn spawn_failure_in_once_mode_exits_127() {
        let mut state = State::new(vec![job(OnChange::Restart)], COALESCING, Mode::Once);
        let key = started_key(&start_all(&mut state)).expect("starts");
        let effects = update(
            &mut state,
            Event::SpawnFailed {
                key,
                error: "No such file".into(),
            },
            Instant::now(),
        );
        assert!(effects.contains(&Effect::Exit(EXIT_SPAWN_FAILED)));
    }

    #[test]
    fn a_job_waits_for_the_job_it_needs_and_runs_after_each_pass() {
        let t0 = Instant::now();
        let mut consume = job(OnChange::Restart);
        consume.name = "consume".into();
        consume.needs = vec!["prepare".into()];
        let mut prepare = job(OnChange::Restart);
        prepare.name = "prepare".into();
        let mut globs = globset::GlobSetBuilder::new();
        globs.add(globset::Glob::new("prepare.sql").expect("glob"));
        prepare.watch = Some(globs.build().expect("globs"));
        let mut state = State::new(vec![consume, prepare], COALESCING, Mode::Watch);
        let effects = start_all(&mut state);
        let first = started_key(&effects).expect("prepare starts");
        assert_eq!(
            effects
                .iter()
                .filter(|e| matches!(e, Effect::StartRun { job: 1, .. }))
                .count(),
            1
        );
        assert!(state.jobs[0].waiting && state.jobs[0].active.is_none());
        spawn(&mut state, first, t0);
        // What prepare writes while it runs starts nothing.
        change(&mut state, "data.parquet", ms_after(t0, 1));
        assert!(update(&mut state, Event::Tick, ms_after(t0, 10))
            .iter()
            .all(|e| !matches!(e, Effect::StartRun { .. })));
        // A failed prepare holds consume back; a passing one runs it with the changes made meanwhile.
        let effects = exit(&mut state, first, Some(1), None, ms_after(t0, 20));
        assert!(started_key(&effects).is_none() && state.jobs[0].waiting);
        change(&mut state, "prepare.sql", ms_after(t0, 30));
        let effects = update(&mut state, Event::Tick, ms_after(t0, 40));
        let starts: Vec<usize> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::StartRun { job, .. } => Some(*job),
                _ => None,
            })
            .collect();
        assert_eq!(starts, [1], "only prepare runs on the change");
        let second = started_key(&effects).expect("prepare again");
        spawn(&mut state, second, ms_after(t0, 40));
        let effects = exit(&mut state, second, Some(0), None, ms_after(t0, 50));
        match effects.iter().find(|e| matches!(e, Effect::StartRun { .. })) {
            Some(Effect::StartRun { job: 0, trigger, .. }) => assert_eq!(
                trigger.paths,
                [PathBuf::from("data.parquet"), PathBuf::from("prepare.sql")]
            ),
            other => panic!("consume should start after prepare passed: {other:?}"),
        }
        assert!(!state.jobs[0].waiting);
    }
}
