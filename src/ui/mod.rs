//! `draw`: the TUI as a pure function of the state (and the time, for "running 12.4 s"). It
//! changes nothing; `tui` calls it when something changed. The layout adapts to the terminal:
//! at 80x24 the essentials stacked (header, trend, resources, verdict, output); from 120
//! columns the trend and resources on the left and the output on the right; the log pane, the
//! per-core CPU line and run details appear where room allows.

pub mod header;
pub mod help;
pub mod output;
pub mod resources;
pub mod theme;
pub mod trend;

use std::time::Instant;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub use crate::state::layout::{self, Panes};
use crate::state::State;
use crate::text::one_line;
pub use theme::Theme;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, state: &State, theme: &Theme, now: Instant) {
    let area = frame.area();
    let log = state.view.as_ref().is_some_and(|v| v.log);
    let panes = Panes::with_profile(area, log, trend::profile_shown(state));
    header::draw(frame, panes.header, state, theme, now);
    trend::draw(frame, panes.trend, state, theme);
    resources::draw(frame, panes.resources, state, theme, panes.wide);
    trend::draw_verdict(frame, panes.verdict, state, theme);
    output::draw(frame, panes.output, state, theme);
    if let Some(area) = panes.log {
        output::draw_log(frame, area, theme);
    }
    draw_status(frame, panes.status, state, theme);
    if state.view.as_ref().is_some_and(|v| v.help) {
        help::draw(frame, area, theme);
    }
}

/// The bottom line: the search prompt, or the last notice, or the keys to start with.
fn draw_status(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(view) = &state.view else { return };
    let line = if let Some(typed) = &view.typing {
        Line::from(vec![
            Span::styled("/", theme.accent),
            Span::styled(format!("{typed}▏"), theme.text),
        ])
    } else if let Some(warning) = &view.warning {
        Line::from(Span::styled(one_line(warning).into_owned(), theme.warn))
    } else if let Some(notice) = &view.notice {
        let style = match notice.level {
            crate::event::Level::Info => theme.dim,
            crate::event::Level::Warn => theme.warn,
            crate::event::Level::Error => theme.error,
        };
        Line::from(Span::styled(one_line(&notice.message).into_owned(), style))
    } else {
        Line::from(Span::styled(
            "r rerun · s stop · p pause · Tab job · ←→ runs · o output · / search · ? help · q quit",
            theme.dim,
        ))
    };
    frame.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests;
