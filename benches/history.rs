//! History benchmark: fills a history with 100,000 runs and 10,000,000 samples (the samples
//! through DuckDB's Appender, as the sampler writes them), then times what a looptop does at
//! start: opening the file for recording (migrate, mark interrupted runs), the last 200 runs of
//! a job, and per-job statistics, each in-process and as a whole `looptop history` process.
//!
//! Run: `cargo bench --bench history` (takes about a minute; needs ~1 GB of free disk in $TMPDIR).
//! Target: each query under 50 ms; a looptop process from start to its first data under 300 ms.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use duckdb::params;
use looptop::store::reader::History;
use looptop::store::recorder::Recorder;
use looptop::store::{open, schema, Access};

const RUNS: usize = 100_000;
const SAMPLES_PER_RUN: usize = 100;
const REPEATS: usize = 15;

fn main() {
    let dir = std::env::temp_dir().join(format!("looptop-history-bench-{}", std::process::id()));
    let path = dir.join(".looptop").join("history.duckdb");
    let result = std::panic::catch_unwind(|| bench(&dir, &path));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn bench(dir: &Path, path: &Path) {
    let started = Instant::now();
    fill(path);
    let size_mb = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "filled {RUNS} runs and {} samples in {:.1} s ({size_mb:.0} MB)\n",
        RUNS * SAMPLES_PER_RUN,
        started.elapsed().as_secs_f64()
    );
    println!("{:<46} {:>9} {:>9} {:>9}", "operation", "min", "median", "max");
    report("open for recording (migrate, mark interrupted)", || {
        let (recorder, _) = Recorder::start(path, dir).expect("start recorder");
        drop(recorder);
    });
    report("open read-only", || drop(History::open(path).expect("open")));
    let history = History::open(path).expect("open");
    report("last 200 runs of a job", || {
        let table = history.recent_runs(Some("job3"), 200).expect("recent runs");
        assert_eq!(table.rows.len(), 200);
    });
    report("per-job stats (5 jobs)", || {
        let table = history.stats(None).expect("stats");
        assert_eq!(table.rows.len(), 5);
    });
    report("samples of one run", || {
        let table = history
            .query("SELECT t_ms, cpu_pct FROM samples WHERE run_id = (SELECT max(run_id) FROM runs)")
            .expect("samples");
        assert_eq!(table.rows.len(), SAMPLES_PER_RUN);
    });
    drop(history);
    let binary = env!("CARGO_BIN_EXE_looptop");
    report("`looptop history --job job3 -n 200` process", || {
        let out = Command::new(binary)
            .args(["history", "--job", "job3", "-n", "200"])
            .current_dir(dir)
            .output()
            .expect("run looptop");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    });
}

fn fill(path: &Path) {
    let conn = open(path, Access::Write).expect("open");
    schema::migrate(&conn, path).expect("migrate");
    conn.execute_batch(&format!(
        "INSERT INTO runs SELECT uuidv7(), 'job' || (i % 5), 'python train.py --steps 20', 'train', \
         make_timestamp((1767225600 + i * 30) * 1000000)::TIMESTAMPTZ, 500 + 100 * random(), \
         CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END, NULL, CASE WHEN i % 10 = 0 THEN 'fail' ELSE 'pass' END, \
         400 * random(), 40 * random(), (1e9 * random())::BIGINT, ['model.py'], '0123456789abcdef', false, \
         'bench', '0.1.0', NULL, NULL FROM range({RUNS}) AS t(i)"
    ))
    .expect("runs");
    let run_ids: Vec<String> = conn
        .prepare("SELECT run_id::VARCHAR FROM runs")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("run ids");
    let mut appender = conn.appender("samples").expect("appender");
    for run_id in &run_ids {
        for i in 0..SAMPLES_PER_RUN {
            let t_ms = i as f64 * 250.0;
            appender
                .append_row(params![run_id, t_ms, (i % 100) as f64, 1_000_000_i64 + i as i64])
                .expect("append");
        }
    }
    appender.flush().expect("flush");
}

fn report(what: &str, mut operation: impl FnMut()) {
    let mut times: Vec<Duration> = (0..REPEATS)
        .map(|_| {
            let started = Instant::now();
            operation();
            started.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "{what:<46} {:>9} {:>9} {:>9}",
        ms(times[0]),
        ms(times[REPEATS / 2]),
        ms(times[REPEATS - 1])
    );
}
