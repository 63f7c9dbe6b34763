//! Writes samples into `samples` and `gpu_samples`, and metric values into `metrics`, with
//! DuckDB's Appender (a batch at a time: row-by-row INSERTs would cost more than the sampling
//! itself).

use duckdb::{params, Connection};

use crate::sample::Sample;

/// One sample of one run, as the recorder keeps it until the next batch.
#[derive(Debug, Clone, PartialEq)]
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
            ])?;
        }
    }
    gpus.flush()
}

/// One value of a metric, as the recorder keeps it until the next batch.
#[derive(Debug, Clone, PartialEq)]
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
