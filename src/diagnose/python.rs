//! Hints from a run's Python profile: `python-loop` (the run's time sits in the project's own
//! pure-Python code: a loop that could be vectorized) and `hot-function` (one function took a
//! large share of the run). Both read only the profile the profiler gathered.

use super::hints::{Hint, MAX_HINTS};
use super::thresholds::{HOT_FUNCTION_SHARE_PCT, PROFILE_MIN_ACTIVE_STACKS, PYTHON_LOOP_SHARE_PCT};
use crate::profile::Profile;

/// At most this many hints come from the profile; the verdict's hints make room for them.
pub const MAX_PROFILE_HINTS: usize = 2;

/// The profile's hints, `python-loop` first.
pub fn hints(profile: &Profile) -> Vec<Hint> {
    let mut found = Vec::new();
    if profile.active_stacks < PROFILE_MIN_ACTIVE_STACKS {
        return found;
    }
    let looped = profile
        .top_own_python()
        .filter(|_| profile.own_python_pct >= PYTHON_LOOP_SHARE_PCT);
    if let Some(frame) = looped {
        found.push(
            Hint::new(
                "python-loop",
                format!(
                    "{:.0} % of the running time was pure Python in your own code, most at {}:{} in {}(): \
                     a loop over rows or elements; vectorize it (NumPy/pandas/polars operations on whole \
                     arrays or columns) or move it into compiled code",
                    profile.own_python_pct, frame.file, frame.line, frame.function
                ),
            )
            .with("file", frame.file.clone())
            .with("line", frame.line)
            .with("function", frame.function.clone())
            .with("share_pct", round1(profile.own_python_pct)),
        );
    }
    if let Some(hot) = profile
        .hottest
        .as_ref()
        .filter(|h| h.share_pct >= HOT_FUNCTION_SHARE_PCT)
    {
        let named = looped.is_some_and(|f| f.function == hot.function && f.file == hot.file);
        if !named {
            found.push(
                Hint::new(
                    "hot-function",
                    format!(
                        "{}() ({}:{}) was running in {:.0} % of the samples: the run's hot spot, where \
                         a speed-up pays most",
                        hot.function, hot.file, hot.line, hot.share_pct
                    ),
                )
                .with("function", hot.function.clone())
                .with("file", hot.file.clone())
                .with("line", hot.line)
                .with("share_pct", round1(hot.share_pct)),
            );
        }
    }
    found.truncate(MAX_PROFILE_HINTS);
    found
}

/// Where the job's consumer (the main process's `MainThread`) waited most, when the profile
/// saw it wait: the verdict's `waits_in`.
pub fn consumer_waits_in(profile: &Profile) -> Option<String> {
    profile
        .thread("MainThread")
        .filter(|t| t.idle_pct > 0.0)
        .and_then(|t| t.waits_in.clone())
}

/// The verdict's hints and the profile's together, at most `MAX_HINTS`: the verdict's come
/// first, but give up their last places so that a profile hint is never crowded out; other work
/// holding the CPUs (`busy-machine`) goes last, after the hints that name the job's own code.
pub fn merge(mut verdict: Vec<Hint>, profile: Vec<Hint>) -> Vec<Hint> {
    verdict.truncate(MAX_HINTS.saturating_sub(profile.len()));
    verdict.extend(profile);
    verdict.truncate(MAX_HINTS);
    verdict.sort_by_key(|h| h.id == super::hints::BUSY_MACHINE);
    verdict
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{stack, Tally};

    /// A run that spent `own` of 20 samples in `row_features` (pure Python unless `native`), and
    /// the rest in a library.
    fn run(own: usize, native: bool) -> Profile {
        let mut tally = Tally::default();
        for i in 0..20 {
            let frames: &[(&str, &str, u32, bool)] = if i < own {
                &[("row_features", "features.py", 12, true), ("main", "train.py", 3, true)]
            } else {
                &[
                    ("_sum", "numpy/core/_methods.py", 49, false),
                    ("main", "train.py", 5, true),
                ]
            };
            tally.add(&[stack("MainThread", true, !native, frames)]);
        }
        tally.profile().expect("sampled")
    }

    #[test]
    fn a_pure_python_loop_is_named_with_file_line_and_function() {
        let found = hints(&run(16, false));
        assert_eq!(found.len(), 1, "{found:?}");
        let hint = &found[0];
        assert_eq!(hint.id, "python-loop");
        assert!(hint.text.contains("features.py:12 in row_features()"), "{}", hint.text);
        assert!(hint.text.contains("vectorize"), "{}", hint.text);
        assert_eq!(hint.evidence["line"], 12);
        assert_eq!(hint.evidence["share_pct"], 80.0);
    }

    #[test]
    fn the_vectorized_twin_gets_no_loop_hint() {
        // The same line, but the time is spent in native code with the lock released.
        let found = hints(&run(16, true));
        assert!(found.iter().all(|h| h.id != "python-loop"), "{found:?}");
        // Or in a library: the project's own Python is a small part.
        let found = hints(&run(4, false));
        assert!(found.iter().all(|h| h.id != "python-loop"), "{found:?}");
    }

    #[test]
    fn a_hot_function_is_named_with_its_share() {
        let found = hints(&run(16, true));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, "hot-function");
        assert!(
            found[0].text.contains("row_features() (features.py:12)"),
            "{}",
            found[0].text
        );
        assert!(found[0].text.contains("80 %"), "{}", found[0].text);
    }

    #[test]
    fn no_hot_function_when_the_time_is_spread() {
        let mut tally = Tally::default();
        for i in 0..20u32 {
            let name = format!("f{}", i % 5);
            tally.add(&[stack(
                "MainThread",
                true,
                false,
                &[(name.as_str(), "lib.py", i % 5, false)],
            )]);
        }
        let profile = tally.profile().expect("sampled");
        assert!(hints(&profile).is_empty(), "{:?}", hints(&profile));
    }

    #[test]
    fn too_few_samples_say_nothing() {
        let mut tally = Tally::default();
        for _ in 0..5 {
            tally.add(&[stack("MainThread", true, true, &[("f", "a.py", 1, true)])]);
        }
        assert!(hints(&tally.profile().expect("sampled")).is_empty());
    }

    #[test]
    fn the_consumer_is_the_main_thread_and_named_only_when_it_waited() {
        let mut tally = Tally::default();
        for i in 0..20 {
            let waiting = [("get", "queue.py", 180, false), ("train", "train.py", 40, true)];
            let main = stack("MainThread", i % 4 == 0, true, &waiting);
            tally.add(&[main, stack("loader", true, true, &[("decode", "loader.py", 9, true)])]);
        }
        let profile = tally.profile().expect("sampled");
        assert_eq!(consumer_waits_in(&profile).as_deref(), Some("get (queue.py:180)"));
        // The fixed twin: a main thread that never waited names no place.
        assert_eq!(consumer_waits_in(&run(16, false)), None);
    }

    #[test]
    fn profile_hints_are_never_crowded_out() {
        let verdict: Vec<Hint> = (0..MAX_HINTS).map(|i| Hint::new(&format!("v{i}"), "")).collect();
        let merged = merge(verdict.clone(), vec![Hint::new("python-loop", "")]);
        assert_eq!(merged.len(), MAX_HINTS);
        assert_eq!(merged.last().map(|h| h.id.as_str()), Some("python-loop"));
        assert_eq!(merge(verdict.clone(), Vec::new()), verdict);
        // Other work holding the CPUs comes after the hint that names the job's own code.
        let busy = vec![Hint::new(crate::diagnose::hints::BUSY_MACHINE, "")];
        let ids: Vec<String> = merge(busy, vec![Hint::new("python-loop", "")])
            .into_iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(ids, ["python-loop", "busy-machine"]);
    }
}
