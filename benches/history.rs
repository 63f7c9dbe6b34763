//! History benchmark: fills a history with 100,000 runs and 10,000,000 samples (the samples
//! through the recorder's own Appender writer, one GPU each), then times what a looptop does at
//! start: opening the file for recording (migrate, mark interrupted runs), the last 200 runs of
//! a job, and per-job statistics, each in-process and as a whole `looptop history` process.
//!
//! Run: `cargo bench --bench history` (takes about a minute; needs ~1 GB of free disk in $TMPDIR).
//! Target: each query under 50 ms; a looptop process from start to its first data under 300 ms.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use looptop::event::RunKey;
use looptop::sample::{GpuSample, HostSample, ProcessSample, Sample, TreeSample};
use looptop::store::reader::History;
use looptop::store::recorder::Recorder;
use looptop::store::samples::{append, SampleRow};
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
        let (recorder, _) = Recorder::in_process(path, dir).expect("start recorder");
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
    // By name: columns added by later schema versions and not named here stay NULL.
    conn.execute_batch(&format!(
        "INSERT INTO runs BY NAME SELECT uuidv7() AS run_id, 'job' || (i % 5) AS job, \
         'python train.py --steps 20' AS command, 'train' AS kind, \
         make_timestamp((1767225600 + i * 30) * 1000000)::TIMESTAMPTZ AS started_at, \
         500 + 100 * random() AS duration_ms, CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END AS exit_code, \
         CASE WHEN i % 10 = 0 THEN 'fail' ELSE 'pass' END AS outcome, 400 * random() AS cpu_user_ms, \
         40 * random() AS cpu_sys_ms, (1e9 * random())::BIGINT AS peak_rss_bytes, \
         ['model.py'] AS trigger_files, '0123456789abcdef' AS git_commit, false AS git_dirty, \
         'bench' AS host, '0.1.0' AS looptop_version, {SAMPLES_PER_RUN} AS samples, \
         100 * random() AS cpu_mean_pct, 200 * random() AS cpu_p95_pct, 50 * random() AS gpu_util_mean_pct, \
         (1e10 * random())::BIGINT AS gpu_mem_peak_bytes, random() AS gpu_on_fraction, \
         'input-bound' AS verdict, 'cpu' AS verdict_cause, \
         'input-bound: GPU busy 18 %, busiest process at 100 % of one core' AS verdict_summary, \
         100 * random() AS gpu_busy_pct, 2000 * random() AS time_to_gpu_ms, 2 AS stalls, \
         2500.0 AS stall_ms, ['more DataLoader workers'] AS hints \
         FROM range({RUNS}) AS t(i)"
    ))
    .expect("runs");
    let run_ids: Vec<String> = conn
        .prepare("SELECT run_id::VARCHAR FROM runs")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("run ids");
    // The recorder's own writer, a thousand runs per batch.
    for chunk in run_ids.chunks(1_000) {
        let rows: Vec<SampleRow> = chunk
            .iter()
            .flat_map(|run_id| (0..SAMPLES_PER_RUN).map(move |i| (run_id, i)))
            .map(|(run_id, i)| SampleRow {
                run_id: run_id.clone(),
                sample: Box::new(sample(i)),
            })
            .collect();
        append(&conn, &rows).expect("append");
    }
}

/// A sample as a training run on one GPU gives.
fn sample(i: usize) -> Sample {
    Sample {
        key: RunKey(1),
        t_ms: i as f64 * 250.0,
        host: HostSample {
            cpu_pct: 30.0,
            core_pct: vec![100.0, 20.0, 10.0, 10.0],
            mem_used_bytes: 8 << 30,
            mem_total_bytes: 32 << 30,
            swap_used_bytes: 0,
            load_1m: 1.5,
        },
        tree: TreeSample {
            processes: 5,
            threads: 40,
            cpu_pct: (i % 100) as f32 * 4.0,
            rss_bytes: 1_000_000 + i as u64,
            read_bytes_per_s: 1e6,
            write_bytes_per_s: 0.0,
            run_queue_delay_pct: Some(4.0),
            top: vec![ProcessSample {
                pid: 4242,
                name: "python".into(),
                cpu_pct: 99.0,
                rss_bytes: 1 << 30,
                threads: Vec::new(),
            }],
            main_pid: None,
            ..TreeSample::default()
        },
        gpus: vec![GpuSample {
            index: 0,
            util_pct: Some((i % 100) as u32),
            mem_util_pct: Some(10),
            mem_used_bytes: Some(10 << 30),
            mem_total_bytes: Some(80 << 30),
            power_mw: Some(300_000),
            temp_c: Some(60),
            sm_clock_mhz: Some(1980),
            job_present: Some(true),
            job_mem_bytes: Some(9 << 30),
            job_sm_pct: Some(40),
            ..GpuSample::default()
        }],
    }
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
