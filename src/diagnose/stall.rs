//! Stalls: episodes of at least `STALL_MIN_MS` in which the run held a GPU and left it below
//! `STALL_UTIL_PCT`. Found after the run (`episodes`) and live, sample by sample (`StallWatch`),
//! by the same rule.

use super::thresholds::{STALL_MIN_MS, STALL_UTIL_PCT};
use super::Point;

/// One stall: from its first to its last starved sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    /// First starved sample, ms after the run's start.
    pub start_ms: f64,
    /// Last starved sample.
    pub end_ms: f64,
}

impl Stall {
    /// How long it lasted.
    pub fn duration_ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }
}

/// Every stall of a run, in order.
pub fn episodes(points: &[Point]) -> Vec<Stall> {
    episodes_of(points.iter().map(|p| (p.t_ms, p.starved())))
}

/// The stalls of a series of (ms since the start, starved) readings, such as one GPU's.
pub fn episodes_of(series: impl IntoIterator<Item = (f64, bool)>) -> Vec<Stall> {
    let mut found = Vec::new();
    let mut current: Option<Stall> = None;
    for (t_ms, starved) in series {
        if starved {
            let stall = current.get_or_insert(Stall {
                start_ms: t_ms,
                end_ms: t_ms,
            });
            stall.end_ms = t_ms;
        } else if let Some(done) = current.take() {
            found.push(done);
        }
    }
    found.extend(current);
    found.retain(|s| s.duration_ms() >= STALL_MIN_MS);
    found
}

/// A stall going on since `since_ms`, seen at `at_ms`, in words: the same in every front end.
pub fn describe(since_ms: f64, at_ms: f64) -> String {
    format!(
        "the GPU has been starved (< {STALL_UTIL_PCT} % busy) for {:.1} s, since {:.1} s into the run",
        (at_ms - since_ms) / 1000.0,
        since_ms / 1000.0
    )
}

/// Follows a run's samples and says when a stall has lasted long enough to report (once per
/// stall).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StallWatch {
    since_ms: Option<f64>,
    reported: bool,
}

impl StallWatch {
    /// Takes the next sample; returns the stall's start when it has just become reportable.
    pub fn observe(&mut self, point: &Point) -> Option<f64> {
        if !point.starved() {
            *self = Self::default();
            return None;
        }
        let since = *self.since_ms.get_or_insert(point.t_ms);
        if !self.reported && point.t_ms - since >= STALL_MIN_MS {
            self.reported = true;
            return Some(since);
        }
        None
    }

    /// The start of the stall going on, once it is long enough to be one.
    pub fn ongoing(&self) -> Option<f64> {
        self.since_ms.filter(|_| self.reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::on_gpu;

    #[test]
    fn a_second_of_starvation_is_a_stall_a_blip_is_not() {
        let points = on_gpu(&[90, 5, 5, 90, 0, 0, 0, 0, 0, 95, 3, 3, 3, 3, 3]);
        let stalls = episodes(&points);
        assert_eq!(stalls.len(), 2, "{stalls:?}");
        assert_eq!((stalls[0].start_ms, stalls[0].end_ms), (1250.0, 2250.0));
        assert_eq!(stalls[1].duration_ms(), 1000.0, "a stall still going at the end counts");
    }

    #[test]
    fn a_run_off_the_gpu_never_stalls() {
        let mut points = on_gpu(&[0; 12]);
        for p in &mut points {
            p.on_gpu = Some(false);
        }
        assert!(episodes(&points).is_empty());
    }

    #[test]
    fn the_live_watch_reports_each_stall_once_after_a_second() {
        let points = on_gpu(&[90, 5, 5, 5, 5, 5, 5, 5, 90, 5, 5, 5, 5, 5]);
        let mut watch = StallWatch::default();
        let reports: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| watch.observe(p).map(|since| (p.t_ms, since)))
            .collect();
        assert_eq!(reports, vec![(1500.0, 500.0), (3500.0, 2500.0)]);
        assert_eq!(watch.ongoing(), Some(2500.0), "the second is still going");
        watch.observe(&on_gpu(&[90])[0]);
        assert_eq!(watch.ongoing(), None);
    }
}
