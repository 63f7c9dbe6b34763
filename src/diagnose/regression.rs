//! Loop-duration regressions. A passing run is compared with the job's recent passing runs of
//! the same command (the baseline: at most `BASELINE_RUNS`, at least `MIN_BASELINE_RUNS`). It is
//! flagged `slower` or `faster` only when it differs from the baseline's median by more than
//! both `NOISE_MADS` scaled median absolute deviations (the baseline's own noise; the MAD scaled
//! by 1.4826 estimates a standard deviation and ignores outliers) and `MIN_CHANGE_SHARE` of the
//! median (a steady job's tiny, real changes are not worth a flag). A slow drift moves the
//! baseline with it and is not flagged run by run; a step change is flagged until the baseline
//! has caught up with it.

use serde::Serialize;

use super::thresholds::{MIN_BASELINE_RUNS, MIN_CHANGE_SHARE, NOISE_MADS};
use super::verdict::median;

/// Which way the loop changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// Beyond the noise, slower.
    Slower,
    /// Beyond the noise, faster.
    Faster,
}

impl Flag {
    /// The name used in JSON and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Slower => "slower",
            Flag::Faster => "faster",
        }
    }
}

/// A flagged change of loop duration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    /// Which way.
    pub flag: Flag,
    /// This run's duration over the baseline's median.
    pub ratio: f64,
    /// The baseline's median duration.
    pub baseline_ms: f64,
    /// How many runs the baseline holds.
    pub baseline_runs: usize,
    /// The noise band: changes within the median ± this were not flagged.
    pub noise_ms: f64,
}

/// Compares `duration_ms` with `baseline` (durations of recent passing runs, any order).
pub fn compare(duration_ms: f64, baseline: &[f64]) -> Option<Regression> {
    if baseline.len() < MIN_BASELINE_RUNS {
        return None;
    }
    let middle = median(baseline.iter().copied())?;
    let mad = median(baseline.iter().map(|d| (d - middle).abs()))?;
    let noise_ms = (NOISE_MADS * 1.4826 * mad).max(MIN_CHANGE_SHARE * middle);
    let flag = if duration_ms > middle + noise_ms {
        Flag::Slower
    } else if duration_ms < middle - noise_ms {
        Flag::Faster
    } else {
        return None;
    };
    Some(Regression {
        flag,
        ratio: if middle > 0.0 {
            duration_ms / middle
        } else {
            f64::INFINITY
        },
        baseline_ms: middle,
        baseline_runs: baseline.len(),
        noise_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::thresholds::BASELINE_RUNS;

    /// Runs `series` through the rule as looptop does (each run against the ones before it);
    /// returns the flags raised.
    fn flags(series: &[f64]) -> Vec<(usize, Flag)> {
        let mut window: Vec<f64> = Vec::new();
        let mut raised = Vec::new();
        for (i, &d) in series.iter().enumerate() {
            if let Some(r) = compare(d, &window) {
                raised.push((i, r.flag));
            }
            window.push(d);
            if window.len() > BASELINE_RUNS {
                window.remove(0);
            }
        }
        raised
    }

    /// A deterministic pseudo-random series around `center` with relative spread `spread`.
    fn noisy(n: usize, center: f64, spread: f64, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let unit = (state >> 11) as f64 / (1u64 << 53) as f64; // 0..1
                center * (1.0 + spread * (2.0 * unit - 1.0))
            })
            .collect()
    }

    #[test]
    fn a_steady_job_is_never_flagged() {
        assert!(flags(&noisy(200, 1000.0, 0.03, 1)).is_empty());
    }

    #[test]
    fn a_noisy_job_does_not_flag_every_other_run() {
        // ±40 % noise: a few flags at most, out of 200 runs.
        let raised = flags(&noisy(200, 1000.0, 0.4, 7));
        assert!(raised.len() <= 6, "{} flags: {raised:?}", raised.len());
    }

    #[test]
    fn a_step_change_is_flagged_with_its_ratio() {
        let mut series = noisy(20, 1000.0, 0.03, 3);
        series.extend(noisy(20, 2300.0, 0.03, 4));
        let raised = flags(&series);
        assert_eq!(raised.first(), Some(&(20, Flag::Slower)), "{raised:?}");
        // Flagged until the baseline has moved to the new level, then quiet.
        assert!(raised.iter().all(|&(i, f)| f == Flag::Slower && i < 26), "{raised:?}");
        let mut window = series[10..20].to_vec();
        window.sort_by(f64::total_cmp);
        let r = compare(series[20], &window).expect("flag");
        assert!((r.ratio - 2.3).abs() < 0.15, "{r:?}");
        assert!((r.baseline_ms - 1000.0).abs() < 40.0, "{r:?}");
    }

    #[test]
    fn a_slow_drift_is_not_flagged_run_by_run() {
        // +0.5 % per run: 2.7x over 200 runs, never a jump.
        let series: Vec<f64> = (0..200).map(|i| 1000.0 * 1.005f64.powi(i)).collect();
        assert!(flags(&series).is_empty());
    }

    #[test]
    fn faster_is_flagged_too_and_few_runs_are_no_baseline() {
        let mut series = vec![1000.0, 1010.0, 990.0, 1005.0, 995.0];
        series.push(400.0);
        assert_eq!(flags(&series), vec![(5, Flag::Faster)]);
        assert_eq!(compare(5000.0, &[1000.0; 4]), None);
    }
}
