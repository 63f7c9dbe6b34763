//! Writes samples into `samples`, `gpu_samples` and `thread_samples`, and metric values into `metrics`, with
//! DuckDB's Appender (a batch at a time: row-by-row INSERTs would cost more than the sampling
//! itself); reads a past run's samples back for the TUI.

use duckdb::{params, Connection};

use crate::event::RunKey;
use crate::sample::{GpuSample, HostSample, ProcessSample, Sample, ThreadSample, TreeSample};

/// One sample of one run, as the recorder keeps it until the next batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleRow {
    /// The run's id.
    pub run_id: String,
    /// The reading.
    pub sample: Box<Sample>,
}

/// Appends `rows` to the history in one go.
pub fn append(conn: &Connection, rows: &[SampleRow]) -> duckdb::Result<()> {
    let mut samples = conn.appender("samples")?;
    for row in rows {
        let s = &row.sample;
        let busiest = s.tree.busiest();
        let core_max = s.host.core_pct.iter().copied().reduce(f32::max);
        samples.append_row(params![
            row.run_id,
            s.t_ms,
            f64::from(s.tree.cpu_pct),
            i64::try_from(s.tree.rss_bytes).unwrap_or(i64::MAX),
            s.tree.processes,
            s.tree.threads,
            busiest.map(|p| p.pid),
            busiest.map(|p| p.name.as_str()),
            busiest.map(|p| f64::from(p.cpu_pct)),
            s.tree.read_bytes_per_s,
            s.tree.write_bytes_per_s,
            f64::from(s.host.cpu_pct),
            core_max.map(f64::from),
            u32::try_from(s.host.core_pct.len()).unwrap_or(u32::MAX),
            big(s.host.mem_used_bytes),
            big(s.host.mem_total_bytes),
            big(s.host.swap_used_bytes),
            s.host.load_1m,
            s.tree.run_queue_delay_pct.map(f64::from),
        ])?;
    }
    samples.flush()?;
    drop(samples);
    let mut gpus = conn.appender("gpu_samples")?;
    for row in rows {
        for g in &row.sample.gpus {
            gpus.append_row(params![
                row.run_id,
                row.sample.t_ms,
                g.index,
                g.util_pct,
                g.mem_util_pct,
                g.mem_used_bytes.map(big),
                g.mem_total_bytes.map(big),
                g.power_mw,
                g.temp_c,
                g.sm_clock_mhz,
                g.job_present,
                g.job_mem_bytes.map(big),
                g.job_sm_pct,
                g.others_sm_pct,
                g.power_limit_mw,
                g.sm_active_pct.map(f64::from),
                g.sm_occupancy_pct.map(f64::from),
                g.tensor_active_pct.map(f64::from),
                g.idle_sample_pct.map(f64::from),
                g.mig,
            ])?;
        }
    }
    gpus.flush()?;
    drop(gpus);
    let mut threads = conn.appender("thread_samples")?;
    for row in rows {
        let tree = &row.sample.tree;
        for process in &tree.top {
            for t in &process.threads {
                threads.append_row(params![
                    row.run_id,
                    row.sample.t_ms,
                    process.pid,
                    t.tid,
                    t.name,
                    f64::from(t.cpu_pct),
                    t.run_queue_pct.map(f64::from),
                    Some(process.pid) == tree.main_pid,
                ])?;
            }
        }
    }
    threads.flush()
}

/// The samples of run `run_id`, oldest first, as far as the history keeps them: the busiest
/// process and those whose threads were kept stand for the tree's top processes (a process known
/// only by its threads is named after its main thread), and the per-core readings are not kept.
pub fn load(conn: &Connection, run_id: &str) -> duckdb::Result<Vec<Sample>> {
    let mut stmt = conn.prepare(
        "SELECT t_ms, cpu_pct, rss_bytes, processes, threads, busiest_pid, busiest_name, busiest_cpu_pct, \
         read_bytes_per_s, write_bytes_per_s, host_cpu_pct, host_mem_used_bytes, host_mem_total_bytes, \
         host_swap_used_bytes, load_1m, run_queue_delay_pct FROM samples WHERE run_id = ?::UUID ORDER BY t_ms",
    )?;
    let mut samples = stmt
        .query_map([run_id], |row| {
            let busiest = match (row.get::<_, Option<u32>>(5)?, row.get::<_, Option<String>>(6)?) {
                (Some(pid), Some(name)) => vec![ProcessSample {
                    pid,
                    name,
                    cpu_pct: row.get::<_, Option<f64>>(7)?.unwrap_or(0.0) as f32,
                    rss_bytes: 0,
                    threads: Vec::new(),
                }],
                _ => Vec::new(),
            };
            Ok(Sample {
                key: RunKey(0),
                t_ms: row.get(0)?,
                tree: TreeSample {
                    cpu_pct: row.get::<_, Option<f64>>(1)?.unwrap_or(0.0) as f32,
                    rss_bytes: unsigned(row.get(2)?),
                    processes: row.get::<_, Option<u32>>(3)?.unwrap_or(0),
                    threads: row.get::<_, Option<u32>>(4)?.unwrap_or(0),
                    read_bytes_per_s: row.get::<_, Option<f64>>(8)?.unwrap_or(0.0),
                    write_bytes_per_s: row.get::<_, Option<f64>>(9)?.unwrap_or(0.0),
                    run_queue_delay_pct: row.get::<_, Option<f64>>(15)?.map(|p| p as f32),
                    top: busiest,
                    main_pid: None,
                    ..TreeSample::default()
                },
                host: HostSample {
                    cpu_pct: row.get::<_, Option<f64>>(10)?.unwrap_or(0.0) as f32,
                    core_pct: Vec::new(),
                    mem_used_bytes: unsigned(row.get(11)?),
                    mem_total_bytes: unsigned(row.get(12)?),
                    swap_used_bytes: unsigned(row.get(13)?),
                    load_1m: row.get::<_, Option<f64>>(14)?.unwrap_or(0.0),
                },
                gpus: Vec::new(),
            })
        })?
        .collect::<duckdb::Result<Vec<Sample>>>()?;
    let mut stmt = conn.prepare(
        "SELECT t_ms, gpu, util_pct, mem_util_pct, mem_used_bytes, mem_total_bytes, power_mw, temp_c, \
         sm_clock_mhz, job_present, job_mem_bytes, job_sm_pct, others_sm_pct, power_limit_mw, sm_active_pct, \
         sm_occupancy_pct, tensor_active_pct, idle_sample_pct, mig FROM gpu_samples WHERE run_id = ?::UUID \
         ORDER BY t_ms, gpu",
    )?;
    let gpus = stmt.query_map([run_id], |row| {
        let t_ms: f64 = row.get(0)?;
        let gpu = GpuSample {
            index: row.get(1)?,
            util_pct: row.get(2)?,
            mem_util_pct: row.get(3)?,
            mem_used_bytes: row.get::<_, Option<i64>>(4)?.map(|b| unsigned(Some(b))),
            mem_total_bytes: row.get::<_, Option<i64>>(5)?.map(|b| unsigned(Some(b))),
            power_mw: row.get(6)?,
            temp_c: row.get(7)?,
            sm_clock_mhz: row.get(8)?,
            job_present: row.get(9)?,
            job_mem_bytes: row.get::<_, Option<i64>>(10)?.map(|b| unsigned(Some(b))),
            job_sm_pct: row.get(11)?,
            others_sm_pct: row.get(12)?,
            power_limit_mw: row.get(13)?,
            sm_active_pct: row.get::<_, Option<f64>>(14)?.map(|v| v as f32),
            sm_occupancy_pct: row.get::<_, Option<f64>>(15)?.map(|v| v as f32),
            tensor_active_pct: row.get::<_, Option<f64>>(16)?.map(|v| v as f32),
            idle_sample_pct: row.get::<_, Option<f64>>(17)?.map(|v| v as f32),
            mig: row.get::<_, Option<bool>>(18)?.unwrap_or(false),
        };
        Ok((t_ms, gpu))
    })?;
    attach(&mut samples, gpus, |sample, gpu| sample.gpus.push(gpu))?;
    let mut stmt = conn.prepare(
        "SELECT t_ms, pid, tid, name, cpu_pct, run_queue_pct, main_process FROM thread_samples \
         WHERE run_id = ?::UUID ORDER BY t_ms, pid, cpu_pct DESC, tid",
    )?;
    let threads = stmt.query_map([run_id], |row| {
        let thread = ThreadSample {
            tid: row.get(2)?,
            name: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
            cpu_pct: row.get::<_, Option<f64>>(4)?.unwrap_or(0.0) as f32,
            run_queue_pct: row.get::<_, Option<f64>>(5)?.map(|p| p as f32),
        };
        let main = row.get::<_, Option<bool>>(6)?.unwrap_or(false);
        Ok((row.get(0)?, (row.get::<_, u32>(1)?, main, thread)))
    })?;
    attach(&mut samples, threads, |sample, (pid, main, thread)| {
        let tree = &mut sample.tree;
        if main {
            tree.main_pid = Some(pid);
        }
        let at = match tree.top.iter().position(|p| p.pid == pid) {
            Some(at) => at,
            None => {
                tree.top.push(ProcessSample {
                    pid,
                    ..ProcessSample::default()
                });
                tree.top.len() - 1
            }
        };
        let process = &mut tree.top[at];
        if thread.tid == pid && process.name.is_empty() {
            process.name = thread.name.clone();
        }
        process.threads.push(thread);
    })?;
    Ok(samples)
}

/// Puts each of `rows` (`t_ms` and a reading, in time order) into the sample of the same time.
fn attach<T>(
    samples: &mut [Sample],
    rows: impl Iterator<Item = duckdb::Result<(f64, T)>>,
    mut put: impl FnMut(&mut Sample, T),
) -> duckdb::Result<()> {
    // Both lists are in time order: walk them together.
    let mut at = 0;
    for row in rows {
        let (t_ms, value) = row?;
        while samples.get(at).is_some_and(|s| s.t_ms < t_ms) {
            at += 1;
        }
        if let Some(sample) = samples.get_mut(at).filter(|s| s.t_ms == t_ms) {
            put(sample, value);
        }
    }
    Ok(())
}

fn unsigned(value: Option<i64>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// One value of a metric, as the recorder keeps it until the next batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricRow {
    /// The run's id.
    pub run_id: String,
    /// The metric's name.
    pub name: String,
    /// Milliseconds after the run's start.
    pub t_ms: f64,
    /// The value.
    pub value: f64,
}

/// Appends metric values in one go.
pub fn append_metrics(conn: &Connection, rows: &[MetricRow]) -> duckdb::Result<()> {
    let mut metrics = conn.appender("metrics")?;
    for row in rows {
        metrics.append_row(params![row.run_id, row.name, row.t_ms, row.value])?;
    }
    metrics.flush()
}

fn big(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
