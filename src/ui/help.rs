//! The `?` overlay: every key, from the same table the key handling uses.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::Theme;
use crate::state::keys::KEYS;

/// Draws the help box over `area`.
pub fn draw(frame: &mut Frame<'_>, area: Rect, theme: &Theme) {
    // " {key:<9}" then the text, inside the borders.
    let width = KEYS.iter().map(|(_, d)| d.chars().count() + 10).max().unwrap_or(40);
    let width = u16::try_from(width + 3).unwrap_or(u16::MAX).min(area.width);
    let height = u16::try_from(KEYS.len() + 3).unwrap_or(u16::MAX).min(area.height);
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    let mut lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<9}"), theme.accent),
                Span::styled(*what, theme.text),
            ])
        })
        .collect();
    lines.push(Line::from(Span::styled(" any key closes this", theme.dim)));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(" keys ", theme.accent));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
