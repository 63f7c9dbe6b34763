//! The headless sink: prints reports for `looptop run`. Human mode streams the job's output
//! as it came (colors kept) with one status line per run start and end on stderr; `--json` mode
//! prints one JSON object per line on stdout and the job's output on stderr. Binary output is
//! not sprayed onto the terminal: it is noticed, suppressed, and left in the run's log.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::diagnose::query::ProtocolFilter;
use crate::effect::Report;
use crate::event::{Level, Stream};
pub use crate::format::{format_bytes, format_duration_ms};
use crate::report::{json_line, Description, Outcome, RunFinished, RunStarted, RunUsage};
use crate::state::update::describe_trigger;
use crate::state::Trigger;
use crate::text::one_line;

/// Prints reports.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    color: bool,
    /// Paths are shown relative to this directory (the one looptop was started in).
    base: PathBuf,
    /// Log files of runs in progress, by run id.
    logs: HashMap<String, PathBuf>,
    binary_runs: HashSet<String>,
    /// Per run, for stdout and stderr: `exec-query`'s summary lines are the loop's, not the user's.
    protocol: HashMap<String, [ProtocolFilter; 2]>,
    /// Whether the terminal's cursor is at the start of a line (after the job's output).
    at_line_start: bool,
    /// Whether the job's output is shown (it is always logged).
    pub show_output: bool,
}

impl Printer {
    /// A printer; paths it shows are relative to `base` where they can be.
    pub fn new(json: bool, color: bool, base: PathBuf) -> Self {
        Self {
            json,
            color,
            base,
            logs: HashMap::new(),
            binary_runs: HashSet::new(),
            protocol: HashMap::new(),
            at_line_start: true,
            show_output: true,
        }
    }

    /// Prints one report. Output errors (a closed pipe) are ignored: the loop goes on.
    pub fn report(&mut self, report: &Report) {
        if let Report::Output { run_id, stream, bytes } = report {
            self.output(run_id, *stream, bytes);
            return;
        }
        match report {
            Report::RunStarted(started) => {
                if let Some(log) = &started.run.log {
                    self.logs.insert(started.run.run_id.clone(), log.clone());
                }
            }
            Report::RunFinished(finished) => {
                let id = &finished.run.run_id;
                if let Some([mut stdout, mut stderr]) = self.protocol.remove(id) {
                    self.show(id, Stream::Stdout, &stdout.finish());
                    self.show(id, Stream::Stderr, &stderr.finish());
                }
                self.logs.remove(id);
                self.binary_runs.remove(id);
            }
            _ => {}
        }
        if self.json {
            if let Some(line) = json_line(report) {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            return;
        }
        let line = match report {
            Report::RunStarted(started) => self.started_line(started),
            Report::RunFinished(finished) => self.finished_line(finished),
            Report::Stall(stall) => self.paint(
                YELLOW,
                &format!(
                    "[looptop] ⚠ {}: {}",
                    stall.job,
                    crate::diagnose::stall::describe(stall.since_ms, stall.at_ms)
                ),
            ),
            Report::Notice(notice) => {
                let (label, color) = match notice.level {
                    Level::Info => ("", DIM),
                    Level::Warn => ("warning: ", YELLOW),
                    Level::Error => ("error: ", RED),
                };
                self.paint(color, &format!("[looptop] {label}{}", notice.message))
            }
            Report::Output { .. } | Report::Sample { .. } | Report::Metric { .. } => return,
        };
        self.status(&line);
    }

    fn status(&mut self, line: &str) {
        let mut err = io::stderr().lock();
        if !self.at_line_start {
            let _ = writeln!(err);
            self.at_line_start = true;
        }
        let _ = writeln!(err, "{line}");
    }

    fn output(&mut self, run_id: &str, stream: Stream, bytes: &[u8]) {
        let filters = self.protocol.entry(run_id.to_string()).or_default();
        let shown = filters[usize::from(stream == Stream::Stderr)].pass(bytes);
        self.show(run_id, stream, &shown);
    }

    fn show(&mut self, run_id: &str, stream: Stream, bytes: &[u8]) {
        if !self.show_output || bytes.is_empty() || self.binary_runs.contains(run_id) {
            return;
        }
        if looks_binary(bytes) {
            self.binary_runs.insert(run_id.to_string());
            let kept = match self.logs.get(run_id) {
                Some(log) => format!("the whole output is in {}", self.relative(log).display()),
                None => "it is not kept either (no run log)".to_string(),
            };
            let message = format!("[looptop] the job is writing binary output: not shown here; {kept}");
            let line = self.paint(YELLOW, &message);
            self.status(&line);
            return;
        }
        let result = if self.json || stream == Stream::Stderr {
            let mut err = io::stderr().lock();
            err.write_all(bytes).and_then(|()| err.flush())
        } else {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        };
        if result.is_ok() {
            self.at_line_start = bytes.ends_with(b"\n");
        }
    }

    fn started_line(&self, started: &RunStarted) -> String {
        let trigger = Trigger {
            paths: started.run.trigger.clone(),
            ..Trigger::default()
        };
        let why = describe_trigger(&trigger);
        self.paint(
            CYAN,
            &format!("[looptop] ▶ {} · {why} · {}", started.run.job, started.run.command),
        )
    }

    fn finished_line(&self, finished: &RunFinished) -> String {
        let took = format_duration_ms(finished.duration_ms);
        let cpu = format!(
            "cpu {} user + {} sys",
            format_duration_ms(finished.cpu_user_ms),
            format_duration_ms(finished.cpu_sys_ms)
        );
        let signal = finished
            .signal
            .map_or_else(|| "a signal".to_string(), crate::report::signal_name);
        let (color, what) = match finished.outcome {
            Outcome::Pass => (GREEN, format!("✔ {} passed in {took}", finished.run.job)),
            Outcome::Fail => (
                RED,
                format!(
                    "✘ {} failed (exit {}) in {took}",
                    finished.run.job,
                    finished.exit_code.unwrap_or(-1)
                ),
            ),
            Outcome::Killed => (
                YELLOW,
                format!("■ {} stopped ({signal}) after {took}", finished.run.job),
            ),
            Outcome::Timeout => (YELLOW, format!("⏱ {} timed out after {took}", finished.run.job)),
            Outcome::Interrupted => (YELLOW, format!("■ {} interrupted after {took}", finished.run.job)),
            Outcome::Running => (CYAN, format!("▶ {} still running after {took}", finished.run.job)),
        };
        let log = finished
            .run
            .log
            .as_deref()
            .map(|p| format!(" · log {}", self.relative(p).display()))
            .unwrap_or_default();
        let usage = usage_summary(&finished.usage);
        let mut text = self.paint(color, &format!("[looptop] {what} · {cpu}{usage}{log}"));
        for line in Description::of(finished).lines() {
            text.push('\n');
            text.push_str(&self.paint(DIM, &format!("[looptop]   {line}")));
        }
        text
    }

    fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.base).unwrap_or(path)
    }

    fn paint(&self, color: &str, text: &str) -> String {
        // Every status line quotes names, commands and paths from the project: none reaches
        // the terminal raw.
        let text = one_line(text);
        if self.color {
            format!("{color}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";

/// Whether a chunk of output is binary rather than text: any NUL, or many control bytes other
/// than the whitespace and escape sequences that text and colored output use.
pub fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return true;
    }
    let controls = bytes
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x1b | 0x08 | 0x07 | 0x0c)) || b == 0x7f)
        .count();
    controls * 10 > bytes.len()
}

/// " · tree CPU 98 % avg (p95 180 %), peak 1.2 GB · GPU 18 %, 2.1 GB, on it 90 % of the run", with
/// only the parts that were measured.
fn usage_summary(usage: &RunUsage) -> String {
    let mut text = String::new();
    if let (Some(mean), Some(p95)) = (usage.cpu_mean_pct, usage.cpu_p95_pct) {
        text.push_str(&format!(" · tree CPU {mean:.0} % avg (p95 {p95:.0} %)"));
    }
    if let Some(peak) = usage.peak_rss_bytes {
        text.push_str(&format!(", peak {}", format_bytes(peak)));
    }
    let mut gpu = Vec::new();
    if let Some(util) = usage.gpu_util_mean_pct {
        gpu.push(format!("{util:.0} %"));
    }
    if let Some(bytes) = usage.gpu_mem_peak_bytes.filter(|&b| b > 0) {
        gpu.push(format_bytes(bytes));
    }
    if let Some(on) = usage.gpu_on_fraction {
        gpu.push(if on == 0.0 {
            "never on it".to_string()
        } else {
            format!("on it {:.0} % of the run", on * 100.0)
        });
    }
    if !gpu.is_empty() {
        text.push_str(&format!(" · GPU {}", gpu.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_colors_are_not_binary() {
        assert!(!looks_binary(b"\x1b[32mPASSED\x1b[0m tests/test_a.py\r\n\tok\n"));
        assert!(!looks_binary("ünïcödé ✔\n".as_bytes()));
        assert!(looks_binary(b"PK\x03\x04\x00\x00"));
        assert!(looks_binary(&[1, 2, 3, 4, 5, b'a', b'b']));
    }

    #[test]
    fn usage_shows_what_was_measured_and_nothing_else() {
        assert_eq!(usage_summary(&RunUsage::default()), "");
        let usage = RunUsage {
            samples: 8,
            cpu_mean_pct: Some(97.6),
            cpu_p95_pct: Some(180.2),
            peak_rss_bytes: Some(1_234_000_000),
            gpu_util_mean_pct: Some(18.4),
            gpu_mem_peak_bytes: Some(2_100_000_000),
            gpu_on_fraction: Some(0.9),
            run_queue_delay_pct: Some(3.0),
        };
        assert_eq!(
            usage_summary(&usage),
            " · tree CPU 98 % avg (p95 180 %), peak 1.2 GB · GPU 18 %, 2.1 GB, on it 90 % of the run"
        );
        let off_gpu = RunUsage {
            gpu_util_mean_pct: None,
            gpu_mem_peak_bytes: Some(0),
            gpu_on_fraction: Some(0.0),
            ..usage
        };
        assert!(usage_summary(&off_gpu).ends_with(" · GPU never on it"));
        assert_eq!(format_bytes(640), "640 B");
    }
}
