//! The loop trend: one bar per recent run (height = duration, color = outcome), the median as a
//! line, ▲/▼ over runs flagged slower/faster, and the selected run (←/→) highlighted with its
//! details in the title. Also the verdict pane: the diagnosis in words, large and plain.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::Theme;
use crate::diagnose::regression::Flag;
use crate::diagnose::stall;
use crate::diagnose::verdict::median;
use crate::format::short_duration_ms;
use crate::state::view::TrendPoint;
use crate::state::State;
use crate::text::one_line;

const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Draws the trend pane.
pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(view) = &state.view else { return };
    let Some(job) = view.current() else { return };
    let width = usize::from(area.width.saturating_sub(2));
    let rows = usize::from(area.height.saturating_sub(2));
    let shown: Vec<(usize, &TrendPoint)> = job
        .trend
        .iter()
        .enumerate()
        .skip(job.trend.len().saturating_sub(width))
        .collect();
    let selected = view.cursor.filter(|&c| c < job.trend.len());
    let durations: Vec<f64> = shown.iter().map(|(_, p)| p.duration_ms).collect();
    let middle = median(durations.iter().copied());
    let top = durations.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let title = match selected.and_then(|i| job.trend.get(i).map(|p| (i, p))) {
        Some((i, point)) => format!(
            " run {}/{} · {} · {} · {} · {} ",
            i + 1,
            job.trend.len(),
            short_duration_ms(point.duration_ms),
            point.outcome.as_str(),
            point.started,
            if point.trigger.is_empty() {
                "first run".to_string()
            } else {
                one_line(&point.trigger.join(", ")).into_owned()
            }
        ),
        None => match middle {
            Some(m) => format!(
                " loop trend · {} run{} · median {} ",
                job.trend.len(),
                if job.trend.len() == 1 { "" } else { "s" },
                short_duration_ms(m)
            ),
            None => " loop trend · no runs yet ".to_string(),
        },
    };
    let mut lines = Vec::with_capacity(rows);
    if rows > 1 {
        // The top row is kept for the ▲/▼ regression marks.
        let bar_rows = rows - 1;
        let eighths = bar_rows * 8;
        let median_row = middle.map(|m| rows - 1 - ((m / top * eighths as f64) as usize / 8).min(bar_rows - 1));
        for row in 0..rows {
            let from_bottom = rows - 1 - row;
            let mut spans = Vec::with_capacity(shown.len());
            for (index, point) in &shown {
                let height = ((point.duration_ms / top) * eighths as f64).round().max(1.0) as usize;
                let full = height / 8;
                let glyph = if row == 0 {
                    match point.regression {
                        Some(Flag::Slower) => '▲',
                        Some(Flag::Faster) => '▼',
                        None => ' ',
                    }
                } else if from_bottom < full {
                    '█'
                } else if from_bottom == full && height % 8 > 0 {
                    LEVELS[height % 8 - 1]
                } else if Some(row) == median_row {
                    '─'
                } else {
                    ' '
                };
                let mut style = match glyph {
                    '▲' | '▼' => theme.warn,
                    '─' => theme.highlight.add_modifier(Modifier::DIM),
                    _ => theme.outcome(point.outcome),
                };
                if Some(*index) == selected {
                    style = style.patch(theme.selected).add_modifier(Modifier::BOLD);
                }
                spans.push(Span::styled(glyph.to_string(), style));
            }
            lines.push(Line::from(spans));
        }
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.accent));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The run whose description the verdict pane shows: the selected one, else (when nothing
/// runs) the last one.
fn described_point(state: &State) -> Option<&TrendPoint> {
    let view = state.view.as_ref()?;
    let job_view = view.current()?;
    let running = state.jobs.get(view.job).is_some_and(|j| j.active.is_some());
    match view.cursor.and_then(|c| job_view.trend.get(c)) {
        Some(point) => Some(point),
        None if running => None,
        None => job_view.trend.back(),
    }
}

/// Whether the verdict pane shows a run with a Python profile (it then needs more rows).
pub fn profile_shown(state: &State) -> bool {
    described_point(state).is_some_and(|p| !p.description.profile.is_empty())
}

/// Draws the verdict pane: the selected run's diagnosis, else the live state of the run going
/// on, else the last run's diagnosis.
pub fn draw_verdict(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(view) = &state.view else { return };
    let Some(job_view) = view.current() else { return };
    let job = state.jobs.get(view.job);
    let selected = view.cursor.and_then(|c| job_view.trend.get(c));
    let running = job.is_some_and(|j| j.active.is_some());
    let mut lines: Vec<Line<'_>> = Vec::new();
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let verdict_lines = |point: &TrendPoint, lines: &mut Vec<Line<'_>>| {
        let described = &point.description;
        let texts = described.lines();
        if texts.is_empty() {
            lines.push(Line::from(Span::styled("no verdict", theme.text.patch(bold))));
        }
        for (i, text) in texts.into_iter().enumerate() {
            let style = if i == 0 && described.verdict.is_some() {
                theme.text.patch(bold)
            } else if text.starts_with('→') {
                theme.dim
            } else {
                theme.text
            };
            lines.push(Line::from(Span::styled(one_line(&text).into_owned(), style)));
        }
    };
    // A test job's tests that got slower in its last run, each with the trend of its times.
    let slower_lines = |point: &TrendPoint, lines: &mut Vec<Line<'_>>| {
        let Some(job) = job.filter(|j| j.last.as_ref().is_some_and(|l| l.run.run_id == point.run_id)) else {
            return;
        };
        let slower = job.last.iter().flat_map(|l| l.tests.iter()).flat_map(|t| &t.slower);
        for test in slower.take(3) {
            let times = job
                .tests
                .baselines
                .get(&test.nodeid)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let text = format!(
                "↗ {} {} {:.1}x",
                one_line(&test.nodeid),
                crate::format::sparkline(times),
                test.ratio
            );
            lines.push(Line::from(Span::styled(text, theme.warn)));
        }
    };
    match (selected, running) {
        (Some(point), _) => {
            verdict_lines(point, &mut lines);
            slower_lines(point, &mut lines);
        }
        (None, true) => match (job_view.stall.ongoing(), job_view.live.back()) {
            (Some(since), Some(last)) => lines.push(Line::from(Span::styled(
                format!("⚠ {}", stall::describe(since, last.t_ms)),
                theme.stall.patch(bold),
            ))),
            _ => lines.push(Line::from(Span::styled("running…", theme.running.patch(bold)))),
        },
        (None, false) => match job_view.trend.back() {
            Some(point) => {
                verdict_lines(point, &mut lines);
                slower_lines(point, &mut lines);
            }
            None => lines.push(Line::from(Span::styled("no run yet", theme.dim))),
        },
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}
