//! What the TUI shows, kept as plain data in the state (only when the TUI is on): the selected
//! job and run, the recent runs' trend, each job's output and live readings, and the panes'
//! toggles. Keys change it through `update` like any other event; `ui::draw` only reads it.

use std::collections::VecDeque;

use crate::diagnose::query::ProtocolFilter;
use crate::diagnose::stall::{episodes, StallWatch};
use crate::diagnose::Point;
use crate::effect::{Effect, Report};
use crate::report::RunFinished;
pub use crate::report::TrendPoint;
use crate::sample::Sample;

/// Runs kept for the trend, per job.
pub const TREND_RUNS: usize = 120;
/// Output lines kept per job (the full output is in the run's log file).
pub const OUTPUT_LINES: usize = 2000;
/// Characters kept of one output line.
pub const LINE_CHARS: usize = 2000;
/// Samples kept for the live charts (two minutes at the default interval).
pub const LIVE_SAMPLES: usize = 480;
/// Themes cycled with `t`, by name.
pub const THEME_NAMES: &[&str] = &["dark", "light", "high-contrast", "gruvbox", "nord"];

/// A job's output, as lines (ANSI colors kept), the newest `OUTPUT_LINES`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputLog {
    /// Complete lines.
    pub lines: VecDeque<String>,
    /// The line being written.
    pub partial: String,
    /// Lines dropped from the front since the run started.
    pub dropped: usize,
    /// Keeps looptop's own protocol lines out.
    filter: ProtocolFilter,
}

impl OutputLog {
    /// Appends a chunk of output.
    pub fn push(&mut self, bytes: &[u8]) {
        let shown = self.filter.pass(bytes);
        for piece in String::from_utf8_lossy(&shown).split_inclusive('\n') {
            let (text, ends) = match piece.strip_suffix('\n') {
                Some(text) => (text, true),
                None => (piece, false),
            };
            // A progress bar redraws its line with \r: keep what it shows last.
            let text = text.rsplit('\r').next().unwrap_or(text);
            if text.len() < piece.len().saturating_sub(usize::from(ends)) {
                self.partial.clear();
            }
            if self.partial.chars().count() < LINE_CHARS {
                self.partial.push_str(text);
            }
            if ends {
                self.lines.push_back(std::mem::take(&mut self.partial));
                if self.lines.len() > OUTPUT_LINES {
                    self.lines.pop_front();
                    self.dropped += 1;
                }
            }
        }
    }

    /// Empties it for a new run.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Every line, the partial one included.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .map(String::as_str)
            .chain((!self.partial.is_empty()).then_some(self.partial.as_str()))
    }

    /// Number of lines, the partial one included.
    pub fn len(&self) -> usize {
        self.lines.len() + usize::from(!self.partial.is_empty())
    }

    /// Whether there is no output.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the TUI keeps per job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobView {
    /// Recent runs, oldest first.
    pub trend: VecDeque<TrendPoint>,
    /// The current (or last) run's output.
    pub output: OutputLog,
    /// The current (or last) run's samples, oldest first.
    pub live: VecDeque<Sample>,
    /// Samples of the current run inside a stall (their `t_ms`): starved for at least
    /// `STALL_MIN_MS`, the rule of the `stall` event.
    pub starved: VecDeque<f64>,
    /// The current run's stall watch: the same one the `stall` event comes from.
    pub stall: StallWatch,
    /// Starved samples not (yet) part of a stall.
    pending: Vec<f64>,
    /// The selected past run's samples, read from the history.
    pub past: Option<PastRun>,
    /// The id of the current (or last) run, whose output and samples these are.
    pub run_id: Option<String>,
}

/// A past run's samples, as the history kept them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PastRun {
    /// The run.
    pub run_id: String,
    /// Its samples, oldest first.
    pub samples: VecDeque<Sample>,
    /// Those inside a stall (their `t_ms`).
    pub starved: VecDeque<f64>,
}

impl PastRun {
    /// The run's samples, with those inside its stalls marked as they were live.
    pub fn new(run_id: String, samples: Vec<Sample>) -> Self {
        let points: Vec<Point> = samples.iter().map(Point::of).collect();
        let stalls = episodes(&points);
        let starved = points
            .iter()
            .filter(|p| p.starved() && stalls.iter().any(|s| (s.start_ms..=s.end_ms).contains(&p.t_ms)))
            .map(|p| p.t_ms)
            .collect();
        Self {
            run_id,
            samples: samples.into(),
            starved,
        }
    }
}

impl JobView {
    /// Adds a finished run to the trend.
    pub fn finished(&mut self, finished: &RunFinished) {
        self.trend.push_back(TrendPoint::of(finished));
        if self.trend.len() > TREND_RUNS {
            self.trend.pop_front();
        }
    }

    /// Adds a sample of the current run.
    pub fn sampled(&mut self, sample: &Sample) {
        let point = Point::of(sample);
        self.stall.observe(&point);
        if point.starved() {
            self.pending.push(point.t_ms);
        } else {
            self.pending.clear();
        }
        if self.stall.ongoing().is_some() {
            self.starved.extend(self.pending.drain(..));
        }
        self.live.push_back(sample.clone());
        if self.live.len() > LIVE_SAMPLES {
            self.live.pop_front();
        }
        while self
            .starved
            .front()
            .is_some_and(|&t| self.live.front().is_some_and(|s| t < s.t_ms))
        {
            self.starved.pop_front();
        }
    }

    /// A new run starts: its output and samples replace the last run's.
    pub fn started(&mut self, run_id: &str) {
        self.run_id = Some(run_id.to_string());
        self.output.clear();
        self.live.clear();
        self.starved.clear();
        self.stall = StallWatch::default();
        self.pending.clear();
    }
}

/// Which pane has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    /// The trend (←/→ select runs).
    #[default]
    Trend,
    /// The output (↑/↓, PgUp/PgDn scroll; `/` searches).
    Output,
}

/// The TUI's own state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The job shown.
    pub job: usize,
    /// Per job, in config order.
    pub jobs: Vec<JobView>,
    /// The run selected in the trend (an index into its `trend`); `None` follows the newest.
    pub cursor: Option<usize>,
    /// Lines scrolled up from the end of the output; 0 follows new output.
    pub scroll: usize,
    /// Which pane has the keys.
    pub focus: Focus,
    /// The help overlay is open.
    pub help: bool,
    /// looptop's own log pane is shown.
    pub log: bool,
    /// Watching is paused: changes start no runs.
    pub paused: bool,
    /// A search being typed (`Some` while the prompt is open).
    pub typing: Option<String>,
    /// The last search: the output scrolls to its newest match.
    pub search: Option<String>,
    /// Index into `THEME_NAMES`.
    pub theme: usize,
    /// A warning for the status line (a broken theme file).
    pub warning: Option<String>,
    /// The last notice, for the status line.
    pub notice: Option<crate::event::Notice>,
}

impl View {
    /// A view of `jobs` jobs.
    pub fn new(jobs: usize, theme: usize) -> Self {
        Self {
            jobs: vec![JobView::default(); jobs],
            theme,
            ..Self::default()
        }
    }

    /// Follows what `update` decided, in order: a run started, its output and samples, a run
    /// finished, and the last notice for the status line. `job_index` finds a job by its name.
    /// The one place where the view learns about runs.
    pub fn apply(&mut self, effects: &[Effect], job_index: impl Fn(&str) -> Option<usize>) {
        for effect in effects {
            let Effect::Report(report) = effect else { continue };
            match report {
                Report::RunStarted(started) => {
                    let job = job_index(&started.run.job).and_then(|i| self.jobs.get_mut(i));
                    if let Some(job) = job {
                        job.started(&started.run.run_id);
                    }
                }
                Report::Output { run_id, bytes, .. } => {
                    if let Some(job) = self.running(run_id) {
                        job.output.push(bytes);
                    }
                }
                Report::Sample { run_id, sample } => {
                    if let Some(job) = self.running(run_id) {
                        job.sampled(sample);
                    }
                }
                Report::RunFinished(finished) => {
                    let job = job_index(&finished.run.job).and_then(|i| self.jobs.get_mut(i));
                    if let Some(job) = job {
                        job.finished(finished);
                    }
                }
                Report::Notice(notice) => self.notice = Some(notice.clone()),
                Report::Metric { .. } | Report::Stall(_) => {}
            }
        }
    }

    /// The view of the job whose current run is `run_id`.
    fn running(&mut self, run_id: &str) -> Option<&mut JobView> {
        self.jobs.iter_mut().find(|j| j.run_id.as_deref() == Some(run_id))
    }

    /// The shown job's view.
    pub fn current(&self) -> Option<&JobView> {
        self.jobs.get(self.job)
    }

    /// The selected past run, when its samples are not loaded yet: what to ask the history for.
    pub fn samples_wanted(&self) -> Option<(usize, String)> {
        let job = self.current()?;
        let point = job.trend.get(self.cursor?)?;
        let loaded = job.past.as_ref().is_some_and(|p| p.run_id == point.run_id);
        (!loaded).then(|| (self.job, point.run_id.clone()))
    }

    /// Moves the trend's cursor one run back (from "following", to the newest run).
    pub fn select_older(&mut self) {
        let len = self.current().map_or(0, |j| j.trend.len());
        if len > 0 {
            self.cursor = Some(self.cursor.unwrap_or(len).saturating_sub(1));
        }
    }

    /// Moves the trend's cursor one run forward; past the newest it follows again.
    pub fn select_newer(&mut self) {
        let len = self.current().map_or(0, |j| j.trend.len());
        self.cursor = self.cursor.map(|c| c + 1).filter(|&c| c < len);
    }

    /// Scrolls the output up to the next older line matching the search (the newest first),
    /// and puts it at the bottom of the pane.
    pub fn find(&mut self) {
        let (Some(needle), Some(job)) = (self.search.as_deref(), self.jobs.get(self.job)) else {
            return;
        };
        let needle = needle.to_lowercase();
        let lines: Vec<&str> = job.output.all().collect();
        let Some(bottom) = lines.len().checked_sub(1 + self.scroll) else {
            return;
        };
        let matches = |i: usize| lines[i].to_lowercase().contains(&needle);
        // A match already at the bottom was found before: look above it.
        let start = if matches(bottom) {
            bottom.checked_sub(1)
        } else {
            Some(bottom)
        };
        if let Some(hit) = start.and_then(|start| (0..=start).rev().find(|&i| matches(i))) {
            self.scroll = lines.len() - 1 - hit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_splits_lines_and_keeps_the_last_redraw_of_a_progress_bar() {
        let mut log = OutputLog::default();
        log.push(b"epoch 1\n 10%|#\r 20%|##");
        log.push(b"\r 30%|###\nloss 0.5");
        let lines: Vec<&str> = log.all().collect();
        assert_eq!(lines, vec!["epoch 1", " 30%|###", "loss 0.5"]);
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn the_query_protocol_line_never_reaches_the_output_pane() {
        let mut log = OutputLog::default();
        log.push(b"3 rows in 1.2 ms\nlooptop-qu");
        assert_eq!(
            log.all().collect::<Vec<_>>(),
            vec!["3 rows in 1.2 ms"],
            "held while undecided"
        );
        log.push(b"ery: {\"rows\":3}\nnext\n");
        assert_eq!(log.all().collect::<Vec<_>>(), vec!["3 rows in 1.2 ms", "next"]);
    }

    /// A sample of a run holding a GPU at `util` %, `t_ms` into it.
    fn on_gpu_at(t_ms: f64, util: u32) -> Sample {
        Sample {
            key: crate::event::RunKey(1),
            t_ms,
            host: crate::sample::HostSample::default(),
            tree: crate::sample::TreeSample::default(),
            gpus: vec![crate::sample::GpuSample {
                util_pct: Some(util),
                job_present: Some(true),
                ..crate::sample::GpuSample::default()
            }],
        }
    }

    #[test]
    fn live_starvation_follows_the_stall_rule() {
        let mut job = JobView::default();
        // Half a second starved: a blip, not a stall (no `stall` event either).
        for (i, util) in [90, 2, 2, 2, 90].into_iter().enumerate() {
            job.sampled(&on_gpu_at(250.0 * (i as f64 + 1.0), util));
        }
        assert_eq!(job.stall.ongoing(), None);
        assert!(job.starved.is_empty(), "{:?}", job.starved);
        // A second starved: a stall, its samples marked from its first on.
        for i in 5..10 {
            job.sampled(&on_gpu_at(250.0 * (f64::from(i) + 1.0), 1));
        }
        assert_eq!(job.stall.ongoing(), Some(1500.0));
        assert_eq!(job.starved, [1500.0, 1750.0, 2000.0, 2250.0, 2500.0]);
        let past = PastRun::new("r".into(), job.live.iter().cloned().collect());
        assert_eq!(past.starved, job.starved, "a past run is marked as it was live");
    }

    #[test]
    fn output_is_bounded() {
        let mut log = OutputLog::default();
        for i in 0..OUTPUT_LINES + 10 {
            log.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(log.lines.len(), OUTPUT_LINES);
        assert_eq!(log.dropped, 10);
        log.push(&vec![b'x'; 10 * LINE_CHARS]);
        assert!(log.partial.len() <= 10 * LINE_CHARS);
    }

    #[test]
    fn search_finds_the_newest_match_then_older_ones() {
        let mut view = View::new(1, 0);
        for line in ["a error 1", "b", "c error 2", "d", "e"] {
            view.jobs[0].output.push(format!("{line}\n").as_bytes());
        }
        view.search = Some("ERROR".into());
        view.find();
        assert_eq!(view.scroll, 2, "newest match at the bottom");
        view.find();
        assert_eq!(view.scroll, 4, "then the one before");
        view.find();
        assert_eq!(view.scroll, 4, "no older match: stays");
    }
}
