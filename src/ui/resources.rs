//! Live resources of the shown job's current (or last) run: the process tree's CPU and memory,
//! the host's CPU (and each core where room allows), and each GPU's utilization and memory,
//! with the samples where the job starved its GPU marked under the GPU line.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::Theme;
use crate::diagnose::gpus::GpuPoint;
use crate::format::{count, format_bytes};
use crate::sample::Sample;
use crate::state::State;
use crate::text::one_line;

const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Width of the labels column.
const LABEL: usize = 14;

/// Draws the resources pane; `roomy` adds the per-core line.
pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme, roomy: bool) {
    let Some(view) = &state.view else { return };
    let Some(job) = view.current() else { return };
    // A selected past run shows its samples from the history; otherwise the current (or last) run.
    let selected = view.cursor.and_then(|c| job.trend.get(c).map(|p| (c, p)));
    let (all, starved, which) = match selected {
        Some((index, point)) => {
            let which = format!("run {}/{}", index + 1, job.trend.len());
            match job.past.as_ref().filter(|p| p.run_id == point.run_id) {
                Some(past) => (&past.samples, &past.starved, Some(which)),
                None => return draw_empty(frame, area, theme, &which, "reading its samples from the history…"),
            }
        }
        None => (&job.live, &job.starved, None),
    };
    let width = usize::from(area.width.saturating_sub(2)).saturating_sub(LABEL + 1);
    let samples: Vec<&Sample> = all.iter().skip(all.len().saturating_sub(width)).collect();
    let mut lines = Vec::new();
    let Some(last) = samples.last() else {
        let (title, text) = match &which {
            Some(which) => (which.as_str(), "no samples of this run (shorter than one interval?)"),
            None => ("", "sampled while a run is active"),
        };
        return draw_empty(frame, area, theme, title, text);
    };
    // GPUs first: at 80x24 only the first lines fit, and a starved GPU must not be missed.
    for gpu in &last.gpus {
        // On a shared GPU the job is judged by its own SM share: show it before the device's.
        let util = match (gpu.util_pct, gpu.job_sm_pct) {
            (None, _) if gpu.mig => "MIG".to_string(),
            (None, _) => "N/A".to_string(),
            (Some(u), Some(own)) if GpuPoint::of(gpu).shared() => format!("{own}/{u}%"),
            (Some(u), _) => format!("{u}%"),
        };
        let mine = if gpu.job_present == Some(true) { "*" } else { " " };
        lines.push(spark(
            label(&format!("gpu{}{mine}", gpu.index), &util),
            samples.iter().map(|s| {
                s.gpus
                    .iter()
                    .find(|g| g.index == gpu.index)
                    .and_then(|g| g.util_pct)
                    .map_or(0.0, |u| f64::from(u) / 100.0)
            }),
            theme.gpu,
            theme,
        ));
        let marks: String = samples
            .iter()
            .map(|s| if starved.contains(&s.t_ms) { '▀' } else { ' ' })
            .collect();
        if marks.contains('▀') {
            lines.push(Line::from(vec![
                Span::styled(format!("{:<width$} ", "  stalls", width = LABEL), theme.stall),
                Span::styled(marks, theme.stall),
            ]));
        }
    }
    let cores = last.host.core_pct.len().max(1) as f64;
    lines.push(spark(
        label("tree cpu", &format!("{:.0}%", last.tree.cpu_pct)),
        samples.iter().map(|s| f64::from(s.tree.cpu_pct) / (cores * 100.0)),
        theme.cpu,
        theme,
    ));
    if let Some(busiest) = last.tree.busiest() {
        let name: String = one_line(&busiest.name).chars().take(8).collect();
        lines.push(spark(
            label(&name, &format!("{:.0}%", busiest.cpu_pct)),
            samples
                .iter()
                .map(|s| s.tree.busiest().map_or(0.0, |p| f64::from(p.cpu_pct) / 100.0)),
            theme.cpu,
            theme,
        ));
    }
    lines.push(spark(
        label("host cpu", &format!("{:.0}%", last.host.cpu_pct)),
        samples.iter().map(|s| f64::from(s.host.cpu_pct) / 100.0),
        theme.cpu,
        theme,
    ));
    if roomy && !last.host.core_pct.is_empty() {
        let bars: String = last
            .host
            .core_pct
            .iter()
            .map(|&c| LEVELS[((f64::from(c) / 100.0) * 8.0).round().clamp(0.0, 8.0) as usize])
            .collect();
        lines.push(Line::from(vec![
            Span::styled(format!("{:<width$} ", "cores", width = LABEL), theme.dim),
            Span::styled(bars, theme.cpu),
        ]));
    }
    let top_rss = samples.iter().map(|s| s.tree.rss_bytes).max().unwrap_or(1).max(1) as f64;
    // A run's last sample can come after its processes are gone: show the memory they last had,
    // not 0 B.
    let rss = samples
        .iter()
        .rev()
        .find(|s| s.tree.processes > 0)
        .map_or(last.tree.rss_bytes, |s| s.tree.rss_bytes);
    lines.push(spark(
        label("rss", &format_bytes(rss)),
        samples.iter().map(|s| s.tree.rss_bytes as f64 / top_rss),
        theme.memory,
        theme,
    ));
    // GPU memory last: the least urgent line when the pane is short.
    for gpu in &last.gpus {
        if let (Some(used), Some(total)) = (gpu.mem_used_bytes, gpu.mem_total_bytes) {
            let job_mem = gpu
                .job_mem_bytes
                .map(|b| format!(", job {}", format_bytes(b)))
                .unwrap_or_default();
            lines.push(Line::from(Span::styled(
                format!(
                    "{:<width$} {} of {}{job_mem}",
                    format!("gpu{} memory", gpu.index),
                    format_bytes(used),
                    format_bytes(total),
                    width = LABEL
                ),
                theme.dim,
            )));
        }
    }
    let title = format!(
        " resources · {}{} · {} · {:.1} s ",
        which.map(|w| format!("{w} · ")).unwrap_or_default(),
        count(last.tree.processes, "process", "processes"),
        count(last.tree.threads, "thread", "threads"),
        last.t_ms / 1000.0
    );
    frame.render_widget(Paragraph::new(lines).block(block(theme, title)), area);
}

/// The pane with a line of text instead of charts.
fn draw_empty(frame: &mut Frame<'_>, area: Rect, theme: &Theme, which: &str, text: &str) {
    let title = if which.is_empty() {
        " resources ".to_string()
    } else {
        format!(" resources · {which} ")
    };
    let body = Paragraph::new(Span::styled(text.to_string(), theme.dim)).block(block(theme, title));
    frame.render_widget(body, area);
}

fn block(theme: &Theme, title: String) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.accent))
}

/// A line's label: the name on the left, the value right-aligned, `LABEL` columns in all.
fn label(name: &str, value: &str) -> String {
    let value_width = LABEL
        .saturating_sub(name.chars().count() + 1)
        .max(value.chars().count());
    format!("{name} {value:>value_width$}")
}

/// A labelled sparkline of values in 0..1.
fn spark<'a>(label: String, values: impl Iterator<Item = f64>, style: Style, theme: &Theme) -> Line<'a> {
    let bars: String = values
        .map(|v| LEVELS[(v.clamp(0.0, 1.0) * 8.0).round() as usize])
        .collect();
    Line::from(vec![
        Span::styled(format!("{label:<width$} ", width = LABEL), theme.dim),
        Span::styled(bars, style),
    ])
}
