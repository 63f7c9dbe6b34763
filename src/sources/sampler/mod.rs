//! The sampler: a thread that, while at least one run is active, reads the host, each run's
//! process tree and the GPUs every `interval`, and sends one `Event::Sample` per run. When
//! nothing runs it blocks and costs nothing. NVML is opened on the first run, off the loop's
//! path, and what it found is sent once as `Event::Gpus`.

pub mod gpu;
pub mod system;
pub mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::Sender;

use crate::event::{Event, GpuStatus, RunKey};
use crate::sample::Sample;
use gpu::{GpuProbe, GpuSettings};
use system::SystemProbe;
use tree::ProcessTree;

/// How often a run is sampled unless `[sample] interval_ms` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
/// The shortest interval accepted: CPU shares need about this long between readings.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// How the sampler works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplerSettings {
    /// Time between samples.
    pub interval: Duration,
    /// NVML library and GPU selection.
    pub gpu: GpuSettings,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            gpu: GpuSettings::default(),
        }
    }
}

/// Handle to the sampling thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Sampler {
    tx: mpsc::Sender<Command>,
}

enum Command {
    Track { key: RunKey, pid: u32, at: Instant },
    Untrack(RunKey),
}

impl Sampler {
    /// Starts the thread; samples go to `events`.
    pub fn start(settings: SamplerSettings, events: Sender<Event>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("looptop-sampler".into())
            .spawn(move || sample_forever(&settings, &rx, &events))?;
        Ok(Self { tx })
    }

    /// Follows the loop's events: a spawned run is sampled until its process group is gone.
    pub fn observe(&self, event: &Event) {
        let command = match event {
            Event::RunSpawned { key, pid, at, .. } => Command::Track {
                key: *key,
                pid: *pid,
                at: *at,
            },
            Event::RunReaped { key, .. } | Event::SpawnFailed { key, .. } => Command::Untrack(*key),
            _ => return,
        };
        // The thread only stops when this handle is dropped.
        let _ = self.tx.send(command);
    }
}

struct Tracked {
    tree: ProcessTree,
    spawned_at: Instant,
}

/// Everything the thread holds.
struct Probes {
    system: Option<SystemProbe>,
    gpu: Option<GpuProbe>,
    gpu_opened: bool,
    last_refresh: Option<Instant>,
}

fn sample_forever(settings: &SamplerSettings, rx: &mpsc::Receiver<Command>, events: &Sender<Event>) {
    let mut probes = Probes {
        system: SystemProbe::new(),
        gpu: None,
        gpu_opened: false,
        last_refresh: None,
    };
    if probes.system.is_none() {
        log::warn!("cannot read this system's processes: CPU and memory are not sampled");
    }
    let mut runs: BTreeMap<RunKey, Tracked> = BTreeMap::new();
    let mut next_tick: Option<Instant> = None;
    loop {
        let command = match next_tick {
            None => match rx.recv() {
                Ok(command) => Some(command),
                Err(_) => return,
            },
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(command) => Some(command),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
        };
        match command {
            Some(Command::Track { key, pid, at }) => {
                if !probes.gpu_opened {
                    probes.gpu_opened = true;
                    if !open_gpus(&settings.gpu, &mut probes, events) {
                        return;
                    }
                }
                let mut tree = ProcessTree::new(pid);
                let now = Instant::now();
                // A first reading of the tree, so that the first sample has CPU shares.
                let members = tree.refresh(now).clone();
                if let Some(system) = probes.system.as_mut() {
                    system.refresh(&members, now);
                    probes.last_refresh = Some(now);
                }
                runs.insert(key, Tracked { tree, spawned_at: at });
                next_tick.get_or_insert(now + settings.interval);
            }
            Some(Command::Untrack(key)) => {
                runs.remove(&key);
                if runs.is_empty() {
                    next_tick = None;
                }
            }
            None => {
                let now = Instant::now();
                if !tick(&mut probes, &mut runs, now, events) {
                    return;
                }
                // A late tick is not made up for with a burst of them.
                let planned = next_tick.unwrap_or(now) + settings.interval;
                next_tick = Some(planned.max(now + settings.interval / 2));
            }
        }
    }
}

/// Opens NVML and tells the loop; false when the loop is gone.
fn open_gpus(settings: &GpuSettings, probes: &mut Probes, events: &Sender<Event>) -> bool {
    let status = match GpuProbe::open(settings) {
        Ok((probe, notices)) => {
            for notice in notices {
                if events.blocking_send(Event::Notice(notice)).is_err() {
                    return false;
                }
            }
            let status = GpuStatus::Available {
                library: probe.library().to_string(),
                driver: probe.driver_version().map(str::to_string),
                devices: probe.devices(),
            };
            probes.gpu = Some(probe);
            status
        }
        Err(unavailable) => {
            log::info!("no GPU readings: {}", unavailable.reason);
            GpuStatus::Unavailable(unavailable)
        }
    };
    events.blocking_send(Event::Gpus(status)).is_ok()
}

/// Takes one sample of every tracked run; false when the loop is gone.
fn tick(probes: &mut Probes, runs: &mut BTreeMap<RunKey, Tracked>, now: Instant, events: &Sender<Event>) -> bool {
    let mut all = BTreeSet::new();
    for run in runs.values_mut() {
        all.extend(run.tree.refresh(now).iter().copied());
    }
    let interval_s = probes
        .last_refresh
        .map_or(0.0, |last| now.saturating_duration_since(last).as_secs_f64());
    let host = probes.system.as_mut().map(|system| {
        system.refresh(&all, now);
        system.host()
    });
    probes.last_refresh = Some(now);
    let mut notices = Vec::new();
    let gpus = probes.gpu.as_mut().map(|g| g.read(&mut notices)).unwrap_or_default();
    for notice in notices {
        if events.blocking_send(Event::Notice(notice)).is_err() {
            return false;
        }
    }
    for (&key, run) in runs.iter() {
        let members = run.tree.members();
        let sample = Sample {
            key,
            t_ms: now.saturating_duration_since(run.spawned_at).as_secs_f64() * 1000.0,
            host: host.clone().unwrap_or_default(),
            tree: probes
                .system
                .as_mut()
                .map(|s| s.tree(members, run.tree.threads(), interval_s, now))
                .unwrap_or_default(),
            gpus: gpus.iter().map(|g| g.for_tree(members)).collect(),
        };
        if events.blocking_send(Event::Sample(Box::new(sample))).is_err() {
            return false;
        }
    }
    true
}
