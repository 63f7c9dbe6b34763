//! Keys: what each key of the TUI does to the state (pure, like the rest of `update`). The map
//! is shown by `?` (`ui::help`), which reads `KEYS` so that the two never disagree.

use std::time::Instant;

use super::update::{interrupt, on_change, request_stop};
use super::view::{Focus, View, THEME_NAMES};
use super::{State, StopReason, Trigger};
use crate::effect::{Effect, Report};
use ratatui::layout::Rect;

use super::layout::{Pane, Panes};
use crate::event::{Key, Notice, Wheel};

/// Every key and what it does, for the help overlay.
pub const KEYS: &[(&str, &str)] = &[
    ("r", "rerun the job now"),
    ("s", "stop the run"),
    ("p", "pause / resume watching"),
    ("Tab 1-9", "switch job"),
    ("← →", "select a past run (→ past the newest follows)"),
    ("wheel", "over the trend: runs; over the output: scroll"),
    ("o", "focus the output (↑ ↓ PgUp PgDn Home End scroll)"),
    ("/ n", "search the output / next (older) match"),
    ("l", "show / hide looptop's log"),
    ("t", "next theme"),
    ("?", "this help"),
    ("q", "quit (stops the running job)"),
];

/// Lines PgUp and PgDn scroll.
const PAGE: usize = 10;

/// Applies a key at `now`.
pub fn key(state: &mut State, key: Key, now: Instant, effects: &mut Vec<Effect>) {
    let Some(view) = state.view.as_mut() else { return };
    if let Some(typed) = view.typing.as_mut() {
        match key {
            Key::Char(c) => typed.push(c),
            Key::Backspace => {
                typed.pop();
            }
            Key::Enter => {
                view.search = view.typing.take().filter(|t| !t.is_empty());
                view.scroll = 0;
                view.find();
            }
            Key::Esc => view.typing = None,
            Key::CtrlC => interrupt(state, now, effects),
            _ => {}
        }
        return;
    }
    if view.help && !matches!(key, Key::Char('q') | Key::CtrlC) {
        view.help = false;
        return;
    }
    let jobs = state.jobs.len();
    let index = view.job.min(jobs.saturating_sub(1));
    match key {
        Key::Char('q') | Key::CtrlC => interrupt(state, now, effects),
        Key::Char('r') if !state.quitting && jobs > 0 => {
            let name = state.jobs[index].spec.name.clone();
            effects.push(Effect::Report(Report::Notice(Notice::info(format!(
                "`{name}`: rerun by hand"
            )))));
            on_change(state, index, Trigger::default(), now, now, effects);
        }
        Key::Char('s') => {
            if let Some(job) = state.jobs.get_mut(index) {
                if let Some(run) = job.active.as_mut().filter(|r| r.exit.is_none()) {
                    request_stop(run, StopReason::Quit, job.spec.stop_grace, now);
                    job.pending = None;
                    let message = format!("`{}`: stopped by hand", job.spec.name);
                    effects.push(Effect::Report(Report::Notice(Notice::info(message))));
                }
            }
        }
        Key::Char('p') => {
            view.paused = !view.paused;
            if view.paused {
                state.burst = None;
            }
        }
        Key::Tab => switch(state, (index + 1) % jobs.max(1)),
        Key::BackTab => switch(state, (index + jobs.max(1) - 1) % jobs.max(1)),
        Key::Char(c @ '1'..='9') => {
            let wanted = c as usize - '1' as usize;
            if wanted < jobs {
                switch(state, wanted);
            }
        }
        Key::Left => {
            view.select_older();
            load_selected(view, effects);
        }
        Key::Right => {
            view.select_newer();
            load_selected(view, effects);
        }
        Key::Char('o') => {
            view.focus = match view.focus {
                Focus::Trend => Focus::Output,
                Focus::Output => Focus::Trend,
            }
        }
        Key::Up => scroll(state, 1),
        Key::Down => scroll(state, -1),
        Key::PageUp => scroll(state, PAGE as i64),
        Key::PageDown => scroll(state, -(PAGE as i64)),
        Key::Home => scroll(state, i64::MAX / 2),
        Key::End => scroll(state, i64::MIN / 2),
        Key::Char('/') => view.typing = Some(String::new()),
        Key::Char('n') => view.find(),
        Key::Char('l') => view.log = !view.log,
        Key::Char('t') => view.theme = (view.theme + 1) % THEME_NAMES.len(),
        Key::Char('?') => view.help = true,
        Key::Esc => {
            view.search = None;
            view.scroll = 0;
        }
        _ => {}
    }
}

/// Turns the wheel over the pane under the pointer: over the trend it selects an older (up)
/// or newer (down) run, over the output it scrolls.
pub fn wheel(state: &mut State, wheel: Wheel, effects: &mut Vec<Effect>) {
    let Some(view) = state.view.as_mut() else { return };
    let panes = Panes::new(Rect::new(0, 0, wheel.width, wheel.height), view.log);
    match panes.at(wheel.column, wheel.row) {
        Pane::Trend => {
            if wheel.lines > 0 {
                view.select_older();
            } else {
                view.select_newer();
            }
            load_selected(view, effects);
        }
        Pane::Output => scroll(state, wheel.lines),
        Pane::Other => {}
    }
}

/// Asks the history for the selected past run's samples, unless they are there already.
fn load_selected(view: &View, effects: &mut Vec<Effect>) {
    if let Some((job, run_id)) = view.samples_wanted() {
        effects.push(Effect::LoadSamples { job, run_id });
    }
}

/// Scrolls the shown job's output by `lines` (positive: back in time).
fn scroll(state: &mut State, lines: i64) {
    let Some(view) = state.view.as_mut() else { return };
    let len = view.current().map_or(0, |j| j.output.len());
    let max = i64::try_from(len.saturating_sub(1)).unwrap_or(i64::MAX);
    let now = i64::try_from(view.scroll).unwrap_or(i64::MAX);
    view.scroll = usize::try_from(now.saturating_add(lines).clamp(0, max)).unwrap_or(0);
}

fn switch(state: &mut State, job: usize) {
    if let Some(view) = state.view.as_mut() {
        view.job = job;
        view.cursor = None;
        view.scroll = 0;
    }
}
