//! The header: project, job tabs, what the shown job is doing, its last outcome, and one line on
//! the GPUs (or why there are none) and the history.

use std::time::Instant;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::Theme;
use crate::event::GpuStatus;
use crate::format::short_duration_ms;
use crate::report::Outcome;
use crate::state::State;
use crate::text::one_line;

/// Draws the two header lines.
pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State, theme: &Theme, now: Instant) {
    let Some(view) = &state.view else { return };
    let project = state.root.file_name().map_or_else(
        || state.root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let project = one_line(&project);
    let mut first = vec![
        Span::styled(format!(" looptop · {project} "), theme.accent),
        Span::raw(" "),
    ];
    for (i, job) in state.jobs.iter().enumerate() {
        let style = if i == view.job {
            theme.selected.patch(theme.accent)
        } else {
            theme.dim
        };
        first.push(Span::styled(format!(" {} {} ", i + 1, one_line(&job.spec.name)), style));
    }
    if let Some(job) = state.jobs.get(view.job) {
        first.push(Span::raw("  "));
        let (what, style) = match &job.active {
            _ if state.quitting => ("quitting".to_string(), theme.warn),
            Some(run)
                if run
                    .stop
                    .is_some_and(|s| s.reason != crate::state::StopReason::Leftovers) =>
            {
                ("stopping".to_string(), theme.warn)
            }
            Some(run) => {
                let since = run
                    .spawned
                    .as_ref()
                    .map_or(0.0, |s| now.saturating_duration_since(s.at).as_secs_f64());
                (format!("running {since:.1} s"), theme.running)
            }
            None if view.paused => ("paused".to_string(), theme.warn),
            None if job.waiting => {
                let needs: Vec<&str> = job.needs.iter().map(|&n| state.jobs[n].spec.name.as_str()).collect();
                (format!("waiting for {}", needs.join(", ")), theme.warn)
            }
            None => ("watching".to_string(), theme.dim),
        };
        first.push(Span::styled(what, style));
        let plan = job.active.as_ref().and_then(|run| run.test_plan.as_ref());
        if let Some(words) = plan.and_then(crate::diagnose::per_test::plan_headline) {
            first.push(Span::styled(format!(" · {words}"), theme.running));
        }
        if let Some(last) = &job.last {
            let mark = match last.outcome {
                Outcome::Pass => "✔",
                Outcome::Fail => "✘",
                Outcome::Killed | Outcome::Interrupted => "■",
                Outcome::Timeout => "⏱",
                Outcome::Running => "▶",
            };
            first.push(Span::styled(
                format!("  last {mark} {}", short_duration_ms(last.duration_ms)),
                theme.outcome(last.outcome),
            ));
            if let Some(tests) = &last.tests {
                let words = crate::diagnose::per_test::headline(tests);
                first.push(Span::styled(format!(" · {}", one_line(&words)), theme.dim));
            }
        }
        if view.paused && job.active.is_some() {
            first.push(Span::styled("  (watching paused)", theme.warn));
        }
    }
    let gpus = match &state.gpus {
        None => Span::styled(" GPU: not looked at yet", theme.dim),
        Some(GpuStatus::Available { devices, driver, .. }) => {
            let names: Vec<String> = devices
                .iter()
                .map(|d| format!("{} {}", d.index, one_line(&d.name)))
                .collect();
            Span::styled(
                format!(
                    " GPU: {} (driver {})",
                    names.join(", "),
                    one_line(driver.as_deref().unwrap_or("?"))
                ),
                theme.gpu,
            )
        }
        Some(GpuStatus::Unavailable(why)) => {
            let short = why.reason.split(':').next().unwrap_or(&why.reason).to_string();
            Span::styled(
                format!(" GPU: none ({}; `looptop doctor` says more)", one_line(&short)),
                theme.dim,
            )
        }
    };
    let lines = vec![Line::from(first), Line::from(gpus)];
    frame.render_widget(Paragraph::new(lines), area);
}
