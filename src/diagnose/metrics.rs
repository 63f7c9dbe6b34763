//! Metrics from output: numbers a job prints (tqdm's `it/s`, `loss=0.231`, pytest's
//! `N passed in 3.2s`), pulled out line by line as the output streams (pure: bytes in, values
//! out). Lines end at `\n` or `\r` (progress bars redraw with `\r`). Every value counts in the
//! run's summary; the history keeps at most one value per metric every `STORE_EVERY_MS`, so a
//! job printing a million lines cannot flood it.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The history keeps at most one value per metric per this many milliseconds.
pub const STORE_EVERY_MS: f64 = 100.0;
/// A line longer than this is cut (a job printing without newlines must not grow memory).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One metric of a job: a name and a regex with one capture group.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    /// The metric's name.
    pub name: String,
    /// Matches a line; its one capture group is the number.
    pub regex: Regex,
    /// The unit, for display.
    pub unit: Option<String>,
}

impl MetricSpec {
    /// A metric from a name and a regex; the error says what is wrong with the regex.
    pub fn new(name: &str, pattern: &str, unit: Option<&str>) -> Result<Self, String> {
        let regex = Regex::new(pattern).map_err(|e| format!("bad regex for metric `{name}`: {e}"))?;
        if regex.captures_len() != 2 {
            return Err(format!(
                "the regex of metric `{name}` must have exactly one capture group (the number), it has {}",
                regex.captures_len() - 1
            ));
        }
        Ok(Self {
            name: name.to_string(),
            regex,
            unit: unit.map(str::to_string),
        })
    }
}

/// The presets `metrics = ["tqdm", "pytest", "lightning"]` names.
pub const PRESETS: &[&str] = &["tqdm", "pytest", "lightning"];

/// The metrics of a preset, or `None` for an unknown name.
pub fn preset(name: &str) -> Option<Vec<MetricSpec>> {
    let specs: &[(&str, &str, Option<&str>)] = match name {
        // "100%|██████| 50/50 [00:02<00:00, 23.45it/s]"
        "tqdm" => &[("it_per_s", r"([0-9]+(?:\.[0-9]+)?)it/s", Some("it/s"))],
        // "===== 12 passed, 1 skipped in 3.21s ====="
        "pytest" => &[
            ("passed", r"\b([0-9]+) passed", None),
            ("failed", r"\b([0-9]+) failed", None),
            (
                "pytest_s",
                r"(?:passed|failed|error|errors|skipped)\b.* in ([0-9]+(?:\.[0-9]+)?)s\b",
                Some("s"),
            ),
        ],
        // "Epoch 0:  40%|████  | 4/10 [00:01<00:02, 2.61it/s, v_num=3, train_loss=0.231]"
        "lightning" => &[
            ("it_per_s", r"([0-9]+(?:\.[0-9]+)?)it/s", Some("it/s")),
            ("loss", r"\b(?:train_)?loss=([-+0-9.eE]+)", None),
            ("val_loss", r"\bval_loss=([-+0-9.eE]+)", None),
        ],
        _ => return None,
    };
    specs.iter().map(|(n, p, u)| MetricSpec::new(n, p, *u).ok()).collect()
}

/// A value found in the output.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// The metric's name.
    pub name: String,
    /// Milliseconds after the run's start.
    pub t_ms: f64,
    /// The number.
    pub value: f64,
    /// Whether the history should keep it (see `STORE_EVERY_MS`).
    pub store: bool,
}

/// A metric over a whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The metric's name.
    pub name: String,
    /// The last value printed.
    pub last: f64,
    /// The mean of every value printed.
    pub mean: f64,
    /// How many values were printed.
    pub count: u64,
    /// The unit, if the metric has one.
    pub unit: Option<String>,
}

/// "metrics: loss 0.231 (mean 0.402, 20 values) · pytest_s 0.430 s", or None without any (a
/// metric printed once is its value alone).
pub fn describe(metrics: &[MetricSummary]) -> Option<String> {
    if metrics.is_empty() {
        return None;
    }
    let shown: Vec<String> = metrics
        .iter()
        .map(|m| {
            let unit = m.unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
            if m.count == 1 {
                return format!("{} {}{unit}", m.name, number(m.last));
            }
            format!(
                "{} {}{unit} (mean {}, {} values)",
                m.name,
                number(m.last),
                number(m.mean),
                m.count
            )
        })
        .collect();
    Some(format!("metrics: {}", shown.join(" · ")))
}

/// A metric's value without noise: 0.231, 23.4, 12.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// Splits a run's output into lines and matches them; keeps the run's tallies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputScanner {
    partial: Vec<u8>,
    tallies: BTreeMap<String, (f64, f64, u64)>,
    last_stored: BTreeMap<String, f64>,
}

impl OutputScanner {
    /// Feeds a chunk of output received `t_ms` after the start; returns the values found in
    /// the lines it completed, and each complete line (for other readers, such as the query
    /// summary).
    pub fn feed(&mut self, specs: &[MetricSpec], bytes: &[u8], t_ms: f64) -> (Vec<MetricValue>, Vec<String>) {
        let mut values = Vec::new();
        let mut lines = Vec::new();
        for &byte in bytes {
            if byte == b'\n' || byte == b'\r' {
                if !self.partial.is_empty() {
                    let line = String::from_utf8_lossy(&self.partial).into_owned();
                    self.partial.clear();
                    self.scan_line(specs, &line, t_ms, &mut values);
                    lines.push(line);
                }
            } else if self.partial.len() < MAX_LINE_BYTES {
                self.partial.push(byte);
            }
        }
        (values, lines)
    }

    /// Takes the last line if the output ended without a newline.
    pub fn finish(&mut self, specs: &[MetricSpec], t_ms: f64) -> Vec<MetricValue> {
        let mut values = Vec::new();
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            self.scan_line(specs, &line, t_ms, &mut values);
        }
        values
    }

    fn scan_line(&mut self, specs: &[MetricSpec], line: &str, t_ms: f64, values: &mut Vec<MetricValue>) {
        let first = values.len();
        for spec in specs {
            // Two presets may define the same metric (tqdm's and Lightning's it/s): one value a line.
            if values[first..].iter().any(|v| v.name == spec.name) {
                continue;
            }
            // The last match on the line: a progress line may repeat a field.
            let Some(value) = spec
                .regex
                .captures_iter(line)
                .filter_map(|c| c.get(1)?.as_str().parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .last()
            else {
                continue;
            };
            let tally = self.tallies.entry(spec.name.clone()).or_insert((0.0, 0.0, 0));
            *tally = (value, tally.1 + value, tally.2 + 1);
            let store = self
                .last_stored
                .get(&spec.name)
                .is_none_or(|&last| t_ms - last >= STORE_EVERY_MS);
            if store {
                self.last_stored.insert(spec.name.clone(), t_ms);
            }
            values.push(MetricValue {
                name: spec.name.clone(),
                t_ms,
                value,
                store,
            });
        }
    }

    /// Each metric's last value, mean and count so far, in the order of `specs`.
    pub fn summary(&self, specs: &[MetricSpec]) -> Vec<MetricSummary> {
        let mut seen = std::collections::BTreeSet::new();
        specs
            .iter()
            .filter(|s| seen.insert(s.name.clone()))
            .filter_map(|spec| {
                let &(last, sum, count) = self.tallies.get(&spec.name)?;
                Some(MetricSummary {
                    name: spec.name.clone(),
                    last,
                    mean: sum / count as f64,
                    count,
                    unit: spec.unit.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(names: &[&str]) -> Vec<MetricSpec> {
        names.iter().flat_map(|n| preset(n).expect("preset")).collect()
    }

    #[test]
    fn tqdm_progress_redrawn_with_carriage_returns() {
        let specs = specs(&["tqdm"]);
        let mut scanner = OutputScanner::default();
        let (values, _) = scanner.feed(&specs, b"  2%| | 1/50 [00:00<00:10, 4.5it/s]\r  4%| | 2/5", 10.0);
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].value, 4.5);
        let (values, _) = scanner.feed(&specs, b"0 [00:00<00:09, 5.5it/s]\r", 20.0);
        assert_eq!(values[0].value, 5.5, "a line split across chunks is joined");
        assert!(!values[0].store, "within 100 ms of the last stored value");
        let summary = scanner.summary(&specs);
        assert_eq!((summary[0].last, summary[0].mean, summary[0].count), (5.5, 5.0, 2));
        assert_eq!(summary[0].unit.as_deref(), Some("it/s"));
    }

    #[test]
    fn two_presets_with_the_same_metric_count_each_line_once() {
        let specs = specs(&["tqdm", "lightning"]);
        let mut scanner = OutputScanner::default();
        let (values, _) = scanner.feed(&specs, b"train: 50%| 1/2 [4.0it/s, loss=0.5]\n", 10.0);
        let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["it_per_s", "loss"]);
        let summary = scanner.summary(&specs);
        assert_eq!(summary[0].count, 1);
        // A value seen once is said once: no mean of one value.
        assert_eq!(
            describe(&summary).as_deref(),
            Some("metrics: it_per_s 4 it/s · loss 0.500")
        );
    }

    #[test]
    fn pytest_summary_line() {
        let specs = specs(&["pytest"]);
        let mut scanner = OutputScanner::default();
        scanner.feed(&specs, b"======= 12 passed, 1 skipped in 3.21s =======\n", 5.0);
        let summary = scanner.summary(&specs);
        let get = |n: &str| summary.iter().find(|s| s.name == n).map(|s| s.last);
        assert_eq!(get("passed"), Some(12.0));
        assert_eq!(get("pytest_s"), Some(3.21));
        assert_eq!(get("failed"), None);
    }

    #[test]
    fn lightning_progress_gives_loss_and_speed() {
        let specs = specs(&["lightning"]);
        let mut scanner = OutputScanner::default();
        scanner.feed(
            &specs,
            b"Epoch 0:  40%|####  | 4/10 [00:01<00:02, 2.61it/s, v_num=3, train_loss=0.231]\n",
            5.0,
        );
        let summary = scanner.summary(&specs);
        assert_eq!(summary.iter().find(|s| s.name == "loss").map(|s| s.last), Some(0.231));
        assert_eq!(
            summary.iter().find(|s| s.name == "it_per_s").map(|s| s.last),
            Some(2.61)
        );
    }

    #[test]
    fn a_custom_metric_needs_one_capture_group() {
        assert!(MetricSpec::new("acc", r"acc=([0-9.]+)", None).is_ok());
        let none = MetricSpec::new("acc", r"acc=[0-9.]+", None).expect_err("no group");
        assert!(none.contains("exactly one capture group"), "{none}");
        let bad = MetricSpec::new("acc", r"acc=([0-9.]+", None).expect_err("unclosed");
        assert!(bad.starts_with("bad regex for metric `acc`"), "{bad}");
        assert!(preset("keras").is_none());
    }

    #[test]
    fn endless_output_without_newlines_stays_bounded() {
        let specs = specs(&["tqdm"]);
        let mut scanner = OutputScanner::default();
        for _ in 0..100 {
            scanner.feed(&specs, &[b'x'; 16 * 1024], 1.0);
        }
        assert!(scanner.partial.len() <= MAX_LINE_BYTES);
        assert!(scanner.finish(&specs, 2.0).is_empty());
    }
}
