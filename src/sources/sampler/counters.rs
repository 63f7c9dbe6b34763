//! A run's per-process counters, read straight from procfs (`/proc/<pid>/stat`, `/proc/<pid>/io`
//! and each thread's `schedstat`), and the rates between two readings of the same process.
//!
//! A process is known by its pid *and* its start time, so a pid reused by a new process starts
//! afresh. Each rate is a change over the real monotonic time between two readings of that very
//! process (each run has its own meter: reading another run never shortens this one's interval).
//! A first reading gives no I/O or run-queue rate; a process that vanished contributes nothing,
//! and the part of its I/O already counted is taken out of the parent that reaped it (the kernel
//! adds a reaped child's counters to its parent's), so nothing is counted twice.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use crate::sample::{ProcessSample, TreeSample, TOP_PROCESSES};

/// The kernel's unit for process times in /proc (USER_HZ), fixed at 100 on Linux.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProcessId {
    /// Its pid.
    pub pid: u32,
    /// When it started, in clock ticks after boot (field 22 of `stat`).
    pub start_ticks: u64,
}

/// One reading of one process.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// Which process.
    pub id: ProcessId,
    /// Its parent's pid (the one that reaps it).
    pub ppid: u32,
    /// Its command name.
    pub name: String,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident memory.
    pub rss_bytes: u64,
    /// Bytes it (and the children it reaped) fetched from storage; `None` when unreadable.
    pub read_bytes: Option<u64>,
    /// Bytes it (and the children it reaped) sent to storage; `None` when unreadable.
    pub write_bytes: Option<u64>,
    /// Bytes it (and the children it reaped) read through read calls (`rchar`); `None` when
    /// unreadable.
    pub read_chars: Option<u64>,
    /// Per thread id: nanoseconds spent runnable but waiting for a CPU; `None` without schedstats.
    pub run_queue_ns: Option<BTreeMap<u32, u64>>,
}

/// Reads process `pid` under `proc_root`; `None` when it is gone (or not a process).
pub fn read(proc_root: &Path, pid: u32, page_bytes: u64) -> Option<Reading> {
    let dir = proc_root.join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let mut reading = parse_stat(&stat, page_bytes)?;
    if let Ok(io) = std::fs::read_to_string(dir.join("io")) {
        (reading.read_bytes, reading.write_bytes) = parse_io(&io);
        reading.read_chars = io_value(&io, "rchar");
    }
    reading.run_queue_ns = run_queue_of(&dir);
    Some(reading)
}

/// Each thread's run-queue wait (second field of `task/<tid>/schedstat`).
fn run_queue_of(dir: &Path) -> Option<BTreeMap<u32, u64>> {
    let mut waits = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("task")).ok()?.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        // A thread that just exited has no file any more: it is simply not counted.
        if let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) {
            if let Some(wait) = text.split_ascii_whitespace().nth(1).and_then(|w| w.parse().ok()) {
                waits.insert(tid, wait);
            }
        }
    }
    (!waits.is_empty()).then_some(waits)
}

/// The fields of a `stat` line looptop uses. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
pub fn parse_stat(stat: &str, page_bytes: u64) -> Option<Reading> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let pid = stat[..open].trim().parse().ok()?;
    let name = stat.get(open + 1..close)?.to_string();
    // After the name: field 3 (state) is index 0.
    let rest: Vec<&str> = stat[close + 1..].split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    Some(Reading {
        id: ProcessId {
            pid,
            start_ticks: field(22)?,
        },
        ppid: u32::try_from(field(4)?).ok()?,
        name,
        cpu_ticks: field(14)? + field(15)?,
        rss_bytes: field(24)?.saturating_mul(page_bytes),
        read_bytes: None,
        write_bytes: None,
        read_chars: None,
        run_queue_ns: None,
    })
}

/// `read_bytes` and `write_bytes` of an `io` file.
pub fn parse_io(io: &str) -> (Option<u64>, Option<u64>) {
    (io_value(io, "read_bytes"), io_value(io, "write_bytes"))
}

/// The counter `key` of an `io` file.
fn io_value(io: &str, key: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// What the meter remembers of a process.
#[derive(Debug, Clone)]
struct Seen {
    reading: Reading,
    at: Instant,
    /// I/O counters at the first reading: what was counted since is `last - first`.
    first_read: u64,
    first_write: u64,
    first_chars: u64,
    /// Its CPU in this reading, in % of one core.
    cpu_pct: f32,
}

/// One run's previous readings, and the rates since.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    seen: HashMap<u32, Seen>,
}

impl Meter {
    /// The CPU of process `pid` in the last sample, in % of one core; `None` when it was not in it.
    pub fn cpu_pct(&self, pid: u32) -> Option<f32> {
        self.seen.get(&pid).map(|s| s.cpu_pct)
    }

    /// The tree's sample from the readings of its live processes taken at `at`; `uptime_s` (the
    /// system's uptime then) gives a first-seen process its CPU average since it started.
    /// `main_pid` (the job's main process) is kept in `top` even when busier ones fill it.
    pub fn sample(
        &mut self,
        readings: Vec<Reading>,
        threads: u32,
        at: Instant,
        uptime_s: Option<f64>,
        main_pid: Option<u32>,
    ) -> TreeSample {
        // A vanished process's counted I/O now sits in its parent's counters: take it out there.
        let mut reaped: HashMap<u32, (u64, u64, u64)> = HashMap::new();
        let live: HashMap<u32, ProcessId> = readings.iter().map(|r| (r.id.pid, r.id)).collect();
        for gone in self
            .seen
            .values()
            .filter(|s| live.get(&s.reading.id.pid) != Some(&s.reading.id))
        {
            let counted = reaped.entry(gone.reading.ppid).or_default();
            counted.0 += gone.reading.read_bytes.unwrap_or(0).saturating_sub(gone.first_read);
            counted.1 += gone.reading.write_bytes.unwrap_or(0).saturating_sub(gone.first_write);
            counted.2 += gone.reading.read_chars.unwrap_or(0).saturating_sub(gone.first_chars);
        }
        let mut tree = TreeSample {
            threads,
            main_pid,
            ..TreeSample::default()
        };
        let (mut read_per_s, mut write_per_s, mut chars_per_s) = (0.0, 0.0, 0.0);
        let mut queue_ns_per_s: Option<f64> = None;
        let mut all = Vec::with_capacity(readings.len());
        let mut next = HashMap::with_capacity(readings.len());
        for reading in readings {
            let before = self.seen.get(&reading.id.pid).filter(|s| s.reading.id == reading.id);
            let wall_s = before.map(|s| at.saturating_duration_since(s.at).as_secs_f64());
            let cpu_pct = cpu_pct(
                reading.cpu_ticks,
                before.map(|b| (b.reading.cpu_ticks, b.at)),
                reading.id.start_ticks,
                at,
                uptime_s,
            );
            if let (Some(before), Some(wall)) = (before, wall_s.filter(|&w| w > 0.0)) {
                let (reaped_read, reaped_write, reaped_chars) =
                    reaped.get(&reading.id.pid).copied().unwrap_or_default();
                let change = |now: Option<u64>, then: Option<u64>, counted_elsewhere: u64| match (now, then) {
                    (Some(now), Some(then)) => now.saturating_sub(then).saturating_sub(counted_elsewhere) as f64 / wall,
                    _ => 0.0,
                };
                read_per_s += change(reading.read_bytes, before.reading.read_bytes, reaped_read);
                write_per_s += change(reading.write_bytes, before.reading.write_bytes, reaped_write);
                chars_per_s += change(reading.read_chars, before.reading.read_chars, reaped_chars);
                if let (Some(now), Some(then)) = (&reading.run_queue_ns, &before.reading.run_queue_ns) {
                    // A thread born since the last reading waited only since then.
                    let waited: u64 = now
                        .iter()
                        .map(|(tid, &ns)| ns.saturating_sub(then.get(tid).copied().unwrap_or(0)))
                        .sum();
                    *queue_ns_per_s.get_or_insert(0.0) += waited as f64 / wall;
                }
            }
            tree.processes += 1;
            tree.cpu_pct += cpu_pct;
            tree.rss_bytes += reading.rss_bytes;
            all.push(ProcessSample {
                pid: reading.id.pid,
                name: reading.name.clone(),
                cpu_pct,
                rss_bytes: reading.rss_bytes,
                threads: Vec::new(),
            });
            let (first_read, first_write, first_chars) = match before {
                Some(b) => (b.first_read, b.first_write, b.first_chars),
                None => (
                    reading.read_bytes.unwrap_or(0),
                    reading.write_bytes.unwrap_or(0),
                    reading.read_chars.unwrap_or(0),
                ),
            };
            next.insert(
                reading.id.pid,
                Seen {
                    reading,
                    at,
                    first_read,
                    first_write,
                    first_chars,
                    cpu_pct,
                },
            );
        }
        self.seen = next;
        all.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(b.rss_bytes.cmp(&a.rss_bytes)));
        // The main process stays, after the busiest, however idle: its threads are evidence.
        let main_cut = main_pid
            .and_then(|m| all.iter().position(|p| p.pid == m))
            .filter(|&at| at >= TOP_PROCESSES);
        if let Some(at) = main_cut {
            all.swap(TOP_PROCESSES, at);
        }
        all.truncate(TOP_PROCESSES + usize::from(main_cut.is_some()));
        tree.top = all;
        tree.read_bytes_per_s = read_per_s;
        tree.write_bytes_per_s = write_per_s;
        tree.read_chars_per_s = chars_per_s;
        // ns per s of wall time, in % of one thread waiting the whole time.
        tree.run_queue_delay_pct = queue_ns_per_s.map(|ns| (ns / 1e7) as f32);
        tree
    }
}

/// CPU in % of one core of a process or thread at `cpu_ticks` now, from its previous reading
/// (`before`: its ticks then, and when); seen for the first time, its average since it started
/// (at `start_ticks` after boot, the system being up `uptime_s`).
pub fn cpu_pct(
    cpu_ticks: u64,
    before: Option<(u64, Instant)>,
    start_ticks: u64,
    at: Instant,
    uptime_s: Option<f64>,
) -> f32 {
    let pct = match before {
        Some((then, when)) => {
            let wall = at.saturating_duration_since(when).as_secs_f64();
            if wall > 0.0 {
                cpu_ticks.saturating_sub(then) as f64 / wall
            } else {
                0.0
            }
        }
        None => uptime_s
            .map(|up| up - start_ticks as f64 / TICKS_PER_SECOND)
            .filter(|&age| age > 0.0)
            .map_or(0.0, |age| cpu_ticks as f64 / age),
    };
    pct as f32
}

/// The system's uptime in seconds (`/proc/uptime`).
pub fn uptime_s(proc_root: &Path) -> Option<f64> {
    std::fs::read_to_string(proc_root.join("uptime"))
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The fastest storage a machine could have, with a wide margin: NVMe arrays top out near
    /// 100 GB/s. A rate above it is a counting bug, not a fast disk.
    const NO_DISK_IS_FASTER: f64 = 200e9;

    fn process(pid: u32, start: u64, ppid: u32, read: u64, waits: &[(u32, u64)]) -> Reading {
        Reading {
            id: ProcessId {
                pid,
                start_ticks: start,
            },
            ppid,
            name: format!("p{pid}"),
            cpu_ticks: 0,
            rss_bytes: 1,
            read_bytes: Some(read),
            write_bytes: Some(0),
            read_chars: Some(read),
            run_queue_ns: Some(waits.iter().copied().collect()),
        }
    }

    #[test]
    fn a_busy_process_reads_busy_from_its_first_sample_on() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let proc_root = Path::new("/proc");
        let mut meter = Meter::default();
        std::thread::sleep(Duration::from_millis(300));
        let mut samples = Vec::new();
        for _ in 0..2 {
            let readings: Vec<Reading> = read(proc_root, pid, 4096).into_iter().collect();
            samples.push(meter.sample(readings, 1, Instant::now(), uptime_s(proc_root), None));
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = child.kill();
        let _ = child.wait();
        // A busy loop on a possibly shared machine: busy from the first sample, at most one core.
        for sample in &samples {
            assert!(sample.cpu_pct > 1.0 && sample.cpu_pct < 105.0, "{sample:?}");
            assert_eq!(sample.processes, 1);
            assert_eq!(sample.busiest().map(|p| p.pid), Some(pid));
            assert!(sample.rss_bytes > 0, "{sample:?}");
        }
        // It never sleeps: what it did not run it spent waiting for a CPU, however loaded the
        // machine (where the kernel keeps schedstats).
        if let Some(queued) = samples[1].run_queue_delay_pct {
            let wanted = samples[1].cpu_pct + queued;
            assert!(wanted > 80.0 && wanted < 110.0, "{:?}", samples[1]);
        } else {
            assert!(samples[1].cpu_pct > 25.0, "{:?}", samples[1]);
        }
    }

    #[test]
    fn a_stat_line_is_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (python (worker) 3) R 4000 4100 4200 34816 4100 4194560 120 0 3 0 250 50 0 0 20 0 \
                    7 0 987654 1000000 300 18446744073709551615";
        let reading = parse_stat(stat, 4096).expect("parses");
        assert_eq!(
            reading.id,
            ProcessId {
                pid: 4242,
                start_ticks: 987_654
            }
        );
        assert_eq!((reading.ppid, reading.name.as_str()), (4000, "python (worker) 3"));
        assert_eq!(reading.cpu_ticks, 300);
        assert_eq!(reading.rss_bytes, 300 * 4096);
        assert_eq!(parse_stat("garbage", 4096), None);
        let io = "rchar: 9000000\nwchar: 5\nsyscr: 3\nsyscw: 1\nread_bytes: 4096\nwrite_bytes: 8192\n";
        assert_eq!(parse_io(io), (Some(4096), Some(8192)));
    }

    #[test]
    fn a_first_reading_gives_no_rate_and_the_next_uses_the_real_interval() {
        let mut meter = Meter::default();
        let t0 = Instant::now();
        // 900 kB read over its whole life before looptop first saw it: no rate from that.
        let first = meter.sample(vec![process(10, 5, 1, 900_000, &[(10, 0)])], 1, t0, None, None);
        assert_eq!(first.read_bytes_per_s, 0.0);
        assert_eq!(first.run_queue_delay_pct, None);
        let second = meter.sample(
            vec![process(10, 5, 1, 1_900_000, &[(10, 125_000_000)])],
            1,
            t0 + Duration::from_millis(250),
            None,
            None,
        );
        assert!((second.read_bytes_per_s - 4e6).abs() < 1.0, "{second:?}");
        assert_eq!(second.run_queue_delay_pct, Some(50.0), "waited 125 ms of 250");
        // A reading taken 69 µs later (sampling fell behind, another run was read) measures the
        // bytes of those 69 µs, not the last interval's over 69 µs.
        let third = meter.sample(
            vec![process(10, 5, 1, 1_900_000, &[(10, 125_000_000)])],
            1,
            t0 + Duration::from_micros(250_069),
            None,
            None,
        );
        assert_eq!(third.read_bytes_per_s, 0.0);
    }

    #[test]
    fn a_reused_pid_is_a_new_process_and_a_vanished_one_contributes_nothing() {
        let mut meter = Meter::default();
        let t0 = Instant::now();
        meter.sample(vec![process(10, 5, 1, 5_000_000_000, &[])], 1, t0, None, None);
        // Same pid, another process (started later) with fewer bytes: no rate at all, neither
        // the old one's total nor a wrapped-around difference.
        let reused = meter.sample(
            vec![process(10, 900, 1, 1_000, &[])],
            1,
            t0 + Duration::from_millis(250),
            None,
            None,
        );
        assert_eq!(reused.read_bytes_per_s, 0.0);
        let gone = meter.sample(Vec::new(), 0, t0 + Duration::from_millis(500), None, None);
        assert_eq!((gone.processes, gone.read_bytes_per_s), (0, 0.0));
    }

    #[test]
    fn a_reaped_childs_bytes_are_counted_once() {
        let mut meter = Meter::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut counted = 0.0;
        // The shell (pid 10) runs a reader (pid 11) that reads 8 MB per 250 ms.
        meter.sample(
            vec![process(10, 5, 1, 0, &[]), process(11, 6, 10, 0, &[])],
            2,
            at(0),
            None,
            None,
        );
        counted += meter
            .sample(
                vec![process(10, 5, 1, 0, &[]), process(11, 6, 10, 8_000_000, &[])],
                2,
                at(250),
                None,
                None,
            )
            .read_bytes_per_s
            * 0.25;
        // The reader read 4 MB more, exited and was reaped: its 12 MB are now the shell's.
        counted += meter
            .sample(vec![process(10, 5, 1, 12_000_000, &[])], 1, at(500), None, None)
            .read_bytes_per_s
            * 0.25;
        assert!((counted - 12e6).abs() < 1.0, "counted {counted} bytes of 12 MB");
    }

    #[test]
    fn no_sequence_of_readings_gives_an_impossible_rate() {
        // Readings at uneven, sometimes tiny, intervals; processes come, go and reuse pids.
        let mut meter = Meter::default();
        let t0 = Instant::now();
        let mut bytes = [0u64; 4];
        let mut at_us = 0u64;
        let mut total_counted = 0.0;
        for step in 0..400u64 {
            let gap_us = [250_000, 69, 1, 250_000, 3_000, 500_000][(step % 6) as usize];
            at_us += gap_us;
            // Each process reads at most 1 GB/s of real time.
            let mut readings = Vec::new();
            for (i, b) in bytes.iter_mut().enumerate() {
                *b += gap_us * 1000;
                let generation = step / (7 + i as u64);
                if (step + i as u64) % 5 != 0 {
                    let pid = 100 + i as u32;
                    readings.push(process(pid, generation, 1, *b, &[]));
                }
            }
            let sample = meter.sample(readings, 4, t0 + Duration::from_micros(at_us), None, None);
            assert!(sample.read_bytes_per_s < NO_DISK_IS_FASTER, "step {step}: {sample:?}");
            assert!(sample.read_bytes_per_s <= 4e9 + 1.0, "step {step}: {sample:?}");
            total_counted += sample.read_bytes_per_s * gap_us as f64 / 1e6;
        }
        assert!(total_counted <= 4.0 * at_us as f64 * 1000.0 + 1.0, "{total_counted}");
    }
}
