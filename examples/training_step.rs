//! A synthetic training loop with tunable phases, to see what looptop says about an
//! input-bound and a compute-bound job without Python or a GPU.
//!
//! A loader thread prepares each batch (`--load-ms` of CPU work: "decoding"), hands it over a
//! bounded queue of `--prefetch` batches, and the main thread runs the step on it
//! (`--compute-ms` of CPU work). Whichever phase needs more CPU sets the pace:
//!
//! ```sh
//! # input-bound: the loader thread is pinned at 100 % of one core, the step waits for it
//! looptop run --once -- cargo run -q --example training_step -- --load-ms 40 --compute-ms 5
//! # compute-bound: the step is the bottleneck, the loader idles
//! looptop run --once -- cargo run -q --example training_step -- --load-ms 2 --compute-ms 40
//! ```
//!
//! It prints a tqdm-like progress line per step (`step 3/20 · 21.4it/s · loss 0.8123`), so the
//! `tqdm` metric preset picks up the speed, and a summary of where the time went.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

/// The knobs, from the command line.
struct Phases {
    steps: u32,
    load: Duration,
    compute: Duration,
    prefetch: usize,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Phases, String> {
    let mut phases = Phases {
        steps: 20,
        load: Duration::from_millis(20),
        compute: Duration::from_millis(20),
        prefetch: 2,
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag} takes a whole number, not `{value}`"))?;
        match flag.as_str() {
            "--steps" => phases.steps = u32::try_from(number).map_err(|_| "--steps is too large".to_string())?,
            "--load-ms" => phases.load = Duration::from_millis(number),
            "--compute-ms" => phases.compute = Duration::from_millis(number),
            "--prefetch" => phases.prefetch = usize::try_from(number.max(1)).unwrap_or(1),
            _ => {
                return Err(format!(
                    "unknown option {flag} (--steps, --load-ms, --compute-ms, --prefetch)"
                ))
            }
        }
    }
    Ok(phases)
}

/// CPU time this thread has used. Phases are measured in CPU time, not wall time, so a phase
/// does the same work on a busy machine (it only takes longer).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write into; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// Keeps one core busy for `length` of CPU time, the way decoding or a CPU step does.
fn busy(length: Duration, seed: u64) -> u64 {
    let start = thread_cpu();
    let mut x = seed | 1;
    while thread_cpu() - start < length {
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    black_box(x)
}

fn main() -> ExitCode {
    let phases = match parse(std::env::args().skip(1)) {
        Ok(phases) => phases,
        Err(message) => {
            eprintln!("training_step: {message}");
            return ExitCode::from(2);
        }
    };
    let (batches, queue) = sync_channel::<u64>(phases.prefetch);
    let (steps, load) = (phases.steps, phases.load);
    let loader = std::thread::Builder::new()
        .name("loader".into())
        .spawn(move || {
            for step in 0..steps {
                if batches.send(busy(load, u64::from(step))).is_err() {
                    return;
                }
            }
        })
        .expect("the loader thread starts");

    let start = Instant::now();
    let mut waited = Duration::ZERO;
    for step in 1..=phases.steps {
        let asked = Instant::now();
        let Ok(batch) = queue.recv() else { break };
        waited += asked.elapsed();
        let out = busy(phases.compute, batch);
        let loss = 2.0 / f64::from(step + 1) + (out % 100) as f64 / 10_000.0;
        let rate = f64::from(step) / start.elapsed().as_secs_f64();
        println!("step {step}/{} · {rate:.1}it/s · loss {loss:.4}", phases.steps);
    }
    let _ = loader.join();
    let total = start.elapsed();
    let share = waited.as_secs_f64() / total.as_secs_f64().max(f64::EPSILON) * 100.0;
    println!(
        "done: {} steps in {:.2} s; the step waited for data {share:.0} % of the time ({})",
        phases.steps,
        total.as_secs_f64(),
        if share > 50.0 { "input-bound" } else { "compute-bound" }
    );
    ExitCode::SUCCESS
}
