//! Sampling of the job's process tree on the real machine: CPU of every process (the busiest
//! one by name), the tree's size, and the run's usage summary in JSON and in the history.

use crate::harness::{json_rows, run_finished, Project};

/// A Python process that keeps one core busy for `seconds`.
fn busy(seconds: f64) -> String {
    format!("python3 -c \"exec('import time\\nt=time.time()\\nwhile time.time()-t<{seconds}: pass')\"")
}

#[test]
fn a_busy_tree_is_sampled_process_by_process() {
    let project = Project::new();
    // Two busy workers under a shell, as a data loader's workers are.
    let cmd = format!("{} & {} & wait", busy(1.5), busy(1.5));
    let events = project.run_once_json(&cmd);
    let run = run_finished(&events);
    assert!(run["samples"].as_u64().is_some_and(|n| n >= 3), "{run:#}");
    // Two processes each want a whole core; on a loaded 2-core machine they still get a share.
    assert!(run["cpu_mean_pct"].as_f64().is_some_and(|c| c > 40.0), "{run:#}");
    assert!(run["cpu_p95_pct"].as_f64() >= run["cpu_mean_pct"].as_f64(), "{run:#}");
    assert!(run["peak_rss_bytes"].as_u64().is_some_and(|b| b > 1_000_000), "{run:#}");
    assert_eq!(run["gpu_util_mean_pct"], serde_json::Value::Null, "no GPU here");
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT max(processes) AS procs, max(threads) AS threads, max(busiest_cpu_pct) AS busiest, \
                 arg_max(busiest_name, busiest_cpu_pct) AS name, max(host_cores) AS cores, count(*) AS n FROM samples",
                "--json",
            ])
            .stdout,
    );
    let row = &rows[0];
    assert!(
        row["procs"].as_i64().is_some_and(|p| p >= 3),
        "shell and two workers: {row}"
    );
    assert!(row["threads"].as_i64() >= row["procs"].as_i64(), "{row}");
    assert!(row["busiest"].as_f64().is_some_and(|c| c > 20.0), "{row}");
    assert!(row["name"].as_str().is_some_and(|n| n.starts_with("python")), "{row}");
    assert!(row["cores"].as_i64().is_some_and(|c| c >= 1), "{row}");
    assert_eq!(row["n"], run["samples"], "every sample is in the history");
}

#[test]
fn a_sleeping_job_is_sampled_as_idle() {
    let project = Project::new();
    let events = project.run_once_json("sleep 1");
    let run = run_finished(&events);
    assert!(run["cpu_mean_pct"].as_f64().is_some_and(|c| c < 10.0), "{run:#}");
}

#[test]
fn a_run_shorter_than_one_interval_has_no_samples_and_says_null() {
    let project = Project::new();
    let events = project.run_once_json("true");
    let run = run_finished(&events);
    assert_eq!(run["samples"], 0, "{run:#}");
    assert_eq!(run["cpu_mean_pct"], serde_json::Value::Null);
}
