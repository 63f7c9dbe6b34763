//! Where each pane sits, as a pure function of the terminal's size: `draw` places the panes
//! with it and the mouse wheel finds the pane under the pointer with it, so the two agree.
//! It sits in `state` because the wheel (a key) needs it; `ui` reads it like the rest of the state.

use ratatui::layout::{Constraint, Layout, Position, Rect};

/// Columns from which the panes sit side by side.
pub const WIDE: u16 = 120;
/// Rows of the body from which the trend, resources and verdict get more room.
const TALL: u16 = 30;
/// Rows the verdict pane gains, on a wide and tall screen, when the run shown has a Python
/// profile ("where the time goes" and its threads); the resources pane gives them up.
pub const PROFILE_ROWS: u16 = 5;

/// The screen's panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panes {
    /// Project, job tabs, state and the GPU line.
    pub header: Rect,
    /// The loop-duration trend of the shown job.
    pub trend: Rect,
    /// Live resources of the current (or last) run.
    pub resources: Rect,
    /// The diagnosis in words.
    pub verdict: Rect,
    /// The run's output.
    pub output: Rect,
    /// looptop's own log, when shown.
    pub log: Option<Rect>,
    /// The bottom line: search prompt, notice or key hints.
    pub status: Rect,
    /// Whether the panes sit side by side (wide terminals) or stacked.
    pub wide: bool,
}

/// Which pane a point is over, for the mouse wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The trend: the wheel selects older and newer runs.
    Trend,
    /// The output: the wheel scrolls it.
    Output,
    /// Anywhere else: the wheel does nothing.
    Other,
}

impl Panes {
    /// Lays out a screen of `area`; `log` is whether looptop's log is shown.
    pub fn new(area: Rect, log: bool) -> Self {
        Self::with_profile(area, log, false)
    }

    /// The same, with room in the verdict pane for a Python profile when `profile` (on wide
    /// and tall screens; the trend and the output, which the mouse wheel acts on, stay put).
    pub fn with_profile(area: Rect, log: bool, profile: bool) -> Self {
        let [header, body, status] =
            Layout::vertical([Constraint::Length(2), Constraint::Min(6), Constraint::Length(1)]).areas(area);
        let tall = body.height >= TALL;
        let wide = body.width >= WIDE;
        let (trend, resources, verdict, right) = if wide {
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
            let [trend, resources, verdict] = Layout::vertical([
                Constraint::Percentage(45),
                Constraint::Min(6),
                Constraint::Length(match (tall, profile) {
                    (true, true) => 5 + PROFILE_ROWS,
                    (true, false) => 5,
                    (false, _) => 3,
                }),
            ])
            .areas(left);
            (trend, resources, verdict, right)
        } else {
            let [trend, resources, verdict, right] = Layout::vertical([
                Constraint::Length(if tall { 10 } else { 5 }),
                Constraint::Length(if tall { 10 } else { 6 }),
                Constraint::Length(2),
                Constraint::Min(3),
            ])
            .areas(body);
            (trend, resources, verdict, right)
        };
        let (output, log) = if log {
            let [output, log] = Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(right);
            (output, Some(log))
        } else {
            (right, None)
        };
        Self {
            header,
            trend,
            resources,
            verdict,
            output,
            log,
            status,
            wide,
        }
    }

    /// The pane under column `column`, row `row`.
    pub fn at(&self, column: u16, row: u16) -> Pane {
        let point = Position::new(column, row);
        if self.trend.contains(point) {
            Pane::Trend
        } else if self.output.contains(point) {
            Pane::Output
        } else {
            Pane::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_screens_stack_the_panes_and_wide_ones_put_the_output_on_the_right() {
        let narrow = Panes::new(Rect::new(0, 0, 80, 24), false);
        assert!(!narrow.wide);
        assert_eq!(narrow.trend.width, 80);
        assert!(narrow.output.y > narrow.verdict.y);
        assert_eq!(narrow.status.y, 23);

        let wide = Panes::new(Rect::new(0, 0, 160, 48), true);
        assert!(wide.wide);
        assert_eq!(wide.output.x, 80);
        let log = wide.log.expect("the log is shown");
        assert_eq!(log.x, 80);
        assert!(log.y > wide.output.y);
    }

    #[test]
    fn the_wheel_finds_the_pane_under_the_pointer() {
        let panes = Panes::new(Rect::new(0, 0, 80, 24), false);
        assert_eq!(panes.at(10, panes.trend.y + 1), Pane::Trend);
        assert_eq!(panes.at(10, panes.output.y + 1), Pane::Output);
        assert_eq!(panes.at(10, panes.resources.y + 1), Pane::Other);
        assert_eq!(panes.at(10, 0), Pane::Other);
        let wide = Panes::new(Rect::new(0, 0, 160, 48), false);
        assert_eq!(wide.at(100, 10), Pane::Output);
        assert_eq!(wide.at(10, 4), Pane::Trend);
    }

    #[test]
    fn a_profile_takes_rows_from_resources_and_leaves_what_the_wheel_uses() {
        for area in [Rect::new(0, 0, 160, 48), Rect::new(0, 0, 80, 24)] {
            let plain = Panes::new(area, false);
            let profiled = Panes::with_profile(area, false, true);
            assert_eq!((profiled.trend, profiled.output), (plain.trend, plain.output));
            let grown = if plain.wide { PROFILE_ROWS } else { 0 };
            assert_eq!(profiled.verdict.height, plain.verdict.height + grown);
            assert_eq!(profiled.resources.height + grown, plain.resources.height);
        }
    }
}
