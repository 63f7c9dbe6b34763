//! The output pane: the shown job's output with its ANSI colors, following new lines unless
//! scrolled, the search's matches highlighted; and looptop's own log, when toggled.

use ansi_to_tui::IntoText;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::Theme;
use crate::state::view::Focus;
use crate::state::State;

/// Draws looptop's own log (shown when `l` turned it on).
pub fn draw_log(frame: &mut Frame<'_>, area: Rect, theme: &Theme) {
    let widget = tui_logger::TuiLoggerWidget::default()
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border)
                .title(Span::styled(" looptop log ", theme.accent)),
        )
        .style(theme.text)
        .style_warn(theme.warn)
        .style_error(theme.error)
        .output_file(false)
        .output_line(false)
        .output_target(false);
    frame.render_widget(widget, area);
}

/// Draws the output pane.
pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme) {
    let Some(view) = &state.view else { return };
    let Some(job) = view.current() else { return };
    let inner_height = usize::from(area.height.saturating_sub(2));
    let total = job.output.len();
    let end = total.saturating_sub(view.scroll);
    let start = end.saturating_sub(inner_height);
    let needle = view.search.as_deref().map(str::to_lowercase);
    let lines: Vec<Line<'_>> = job
        .output
        .all()
        .skip(start)
        .take(end - start)
        .map(|raw| {
            let mut line = raw
                .into_text()
                .ok()
                .and_then(|t| t.lines.into_iter().next())
                .unwrap_or_else(|| Line::from(raw.to_string()));
            if needle.as_deref().is_some_and(|n| raw.to_lowercase().contains(n)) {
                line = line.patch_style(theme.highlight.add_modifier(Modifier::REVERSED));
            }
            line
        })
        .collect();
    let position = if view.scroll == 0 {
        "follow".to_string()
    } else {
        format!("↑{}", view.scroll)
    };
    let search = view.search.as_deref().map(|s| format!(" · /{s}")).unwrap_or_default();
    let title = format!(" output · {} lines · {position}{search} ", total + job.output.dropped);
    let border = if view.focus == Focus::Output {
        theme.accent
    } else {
        theme.border
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(title, theme.accent));
    let body = if lines.is_empty() {
        Paragraph::new(Line::from(Span::styled("no output yet", theme.dim)))
    } else {
        Paragraph::new(lines).style(theme.text)
    };
    frame.render_widget(body.block(block), area);
}
