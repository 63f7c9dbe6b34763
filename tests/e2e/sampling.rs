//! Sampling of the job's process tree on the real machine: CPU of every process (the busiest
//! one by name), the tree's size, and the run's usage summary in JSON and in the history.

use crate::harness::{json_rows, run_finished, Hog, Project};

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
    // Two processes each want a whole core; on a loaded 2-core machine (a parallel test run
    // with its own hogs) they still get a share, far above an idle tree's ~0.
    assert!(run["cpu_mean_pct"].as_f64().is_some_and(|c| c > 10.0), "{run:#}");
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

#[test]
fn disk_rates_add_up_to_the_bytes_really_read_on_a_busy_machine() {
    let project = Project::new();
    // Other work on every core (at the lowest priority, not to slow the tests running beside).
    let _hogs = [Hog::under(&["nice", "-n", "19"]), Hog::under(&["nice", "-n", "19"])];
    let data = project.scratch.path().join("shard.bin");
    std::fs::write(&data, vec![7u8; 32 << 20]).expect("write a data shard");
    let total = project.scratch.path().join("read_bytes");
    // Readers that live across several samples (small direct reads bypass the page cache), one
    // after another; the shell reaps each, so their bytes end up in its own counters too.
    let cmd = format!(
        "end=$(( $(date +%s%N) + 2500000000 )); while [ $(date +%s%N) -lt $end ]; do \
         dd if={} of=/dev/null bs=4k iflag=direct status=none; done; grep read_bytes /proc/$$/io > {}",
        data.display(),
        total.display()
    );
    project.run_once_json(&cmd);
    let read: f64 = std::fs::read_to_string(&total)
        .expect("the job wrote its total")
        .trim()
        .trim_start_matches("read_bytes:")
        .trim()
        .parse()
        .expect("a byte count");
    assert!(read >= 32e6, "at least one pass really read the disk: {read}");
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT t_ms, read_bytes_per_s FROM samples ORDER BY t_ms",
                "--json",
            ])
            .stdout,
    );
    assert!(rows.len() >= 4, "{rows:?}");
    // Every sample's rate over its interval, added up: what the samples say was read.
    let mut said = 0.0;
    let mut before = 0.0;
    for row in &rows {
        let (t_ms, rate) = (
            row["t_ms"].as_f64().unwrap_or(0.0),
            row["read_bytes_per_s"].as_f64().unwrap_or(0.0),
        );
        let bytes = rate * (t_ms - before) / 1000.0;
        assert!(
            bytes <= read,
            "one sample claims {bytes} bytes of the {read} read: {row}"
        );
        said += bytes;
        before = t_ms;
    }
    assert!(
        said <= read * 1.1 + 4e6,
        "the samples add up to {said} bytes, more than the {read} really read"
    );
    assert!(said >= read * 0.5, "the samples add up to {said} of {read} bytes");
}

#[test]
fn rereading_a_cached_file_is_not_disk_io() {
    let project = Project::new();
    let data = project.scratch.path().join("small.bin");
    std::fs::write(&data, vec![7u8; 1 << 20]).expect("write a small file");
    // The same megabyte read again and again: the page cache serves it.
    let cmd = format!(
        "end=$(( $(date +%s%N) + 1500000000 )); while [ $(date +%s%N) -lt $end ]; do cat {} > /dev/null; done",
        data.display()
    );
    let run = run_finished(&project.run_once_json(&cmd)).clone();
    let v = &run["verdict"];
    assert_ne!(v["kind"], "io-bound", "{v:#}");
    assert!(v["read_mb_per_s"].as_f64().is_some_and(|r| r < 20.0), "{v:#}");
}
