//! The sampler: a thread that, while at least one run is active, reads the host, each run's
//! process tree and the GPUs every `interval`, and sends one `Event::Sample` per run. When
//! nothing runs it blocks and costs nothing. NVML is opened on the first run, off the loop's
//! path, and what it found is sent once as `Event::Gpus`.

pub mod counters;
pub mod files;
pub mod gpu;
pub mod pidns;
pub mod system;
pub mod threads;
pub mod tree;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
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
    /// The run's own previous readings: its rates never depend on when other runs were read.
    meter: counters::Meter,
    /// The same for the threads of its busiest processes.
    threads: threads::ThreadMeter,
    /// The data files its processes read, and its local cluster.
    files: files::FileScan,
    spawned_at: Instant,
}

impl Tracked {
    /// Reads the tree's members at `now`: the sample of the run's processes.
    fn read(&mut self, members: &BTreeSet<u32>, page_bytes: u64, now: Instant) -> crate::sample::TreeSample {
        let proc_root = Path::new(PROC);
        let readings: Vec<counters::Reading> = members
            .iter()
            .filter_map(|&pid| counters::read(proc_root, pid, page_bytes))
            .collect();
        let parents: Vec<(u32, u32)> = readings.iter().map(|r| (r.id.pid, r.ppid)).collect();
        let main = self.tree.main_process(&parents);
        let run_queue_ns: HashMap<u32, BTreeMap<u32, u64>> = readings
            .iter()
            .filter_map(|r| Some((r.id.pid, r.run_queue_ns.clone()?)))
            .collect();
        let uptime_s = counters::uptime_s(proc_root);
        let identities: Vec<counters::Reading> = readings
            .iter()
            .map(|r| counters::Reading {
                id: r.id,
                name: r.name.clone(),
                ..counters::Reading::default()
            })
            .collect();
        let mut tree = self.meter.sample(readings, self.tree.threads(), now, uptime_s, main);
        self.threads.fill(proc_root, &mut tree, &run_queue_ns, now, uptime_s);
        (tree.open_files, tree.cluster) = self.files.scan(proc_root, &identities, &self.meter);
        tree
    }
}

/// Where procfs is mounted.
const PROC: &str = "/proc";

/// Everything the thread holds.
struct Probes {
    system: Option<SystemProbe>,
    gpu: Option<GpuProbe>,
    gpu_opened: bool,
    /// Bytes per memory page (for resident sizes).
    page_bytes: u64,
    /// How NVML's pids relate to the ones in `/proc`.
    pids: pidns::PidView,
    /// In an isolated pid namespace: NVML has listed a pid of a run, so it reports this
    /// namespace's pids (a driver or stand-in that translates them) and absence proves absence.
    nvml_names_ours: bool,
}

fn sample_forever(settings: &SamplerSettings, rx: &mpsc::Receiver<Command>, events: &Sender<Event>) {
    let mut probes = Probes {
        system: SystemProbe::new(),
        gpu: None,
        gpu_opened: false,
        page_bytes: page_bytes(),
        pids: pidns::PidView::detect(Path::new(PROC)),
        nvml_names_ours: false,
    };
    if probes.system.is_none() {
        log::warn!("cannot read this system's CPU and memory: the host is not sampled");
    }
    let mut runs: BTreeMap<RunKey, Tracked> = BTreeMap::new();
    let mut next_tick: Option<Instant> = None;
    loop {
        let Some(command) = super::command_or_tick(rx, next_tick) else {
            return;
        };
        match command {
            Some(Command::Track { key, pid, at }) => {
                if !probes.gpu_opened {
                    probes.gpu_opened = true;
                    if !open_gpus(&settings.gpu, &mut probes, events) {
                        return;
                    }
                }
                let mut run = Tracked {
                    tree: ProcessTree::new(pid),
                    meter: counters::Meter::default(),
                    threads: threads::ThreadMeter::default(),
                    files: files::FileScan::default(),
                    spawned_at: at,
                };
                let now = Instant::now();
                // A first reading of the tree, so that the first sample has rates.
                let members = run.tree.refresh(now).clone();
                run.read(&members, probes.page_bytes, now);
                runs.insert(key, run);
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
    let host = probes.system.as_mut().map(|system| {
        system.refresh();
        system.host()
    });
    let mut notices = Vec::new();
    let gpus = probes.gpu.as_mut().map(|g| g.read(&mut notices)).unwrap_or_default();
    for notice in notices {
        if events.blocking_send(Event::Notice(notice)).is_err() {
            return false;
        }
    }
    for (&key, run) in runs.iter_mut() {
        let members = run.tree.refresh(now).clone();
        let sample = Sample {
            key,
            t_ms: now.saturating_duration_since(run.spawned_at).as_secs_f64() * 1000.0,
            host: host.clone().unwrap_or_default(),
            tree: run.read(&members, probes.page_bytes, now),
            gpus: attribute(&gpus, probes.pids, &mut probes.nvml_names_ours, &members),
        };
        if events.blocking_send(Event::Sample(Box::new(sample))).is_err() {
            return false;
        }
    }
    true
}

/// Each GPU as seen by the run whose processes (in `/proc`) are `members`.
/// Where looptop cannot name the host's pids, a GPU that lists none of the run's says nothing
/// about it, until NVML has once listed a run's pid (`names_ours`): then it speaks this
/// namespace's pids.
fn attribute(
    gpus: &[gpu::DeviceReading],
    pids: pidns::PidView,
    names_ours: &mut bool,
    members: &BTreeSet<u32>,
) -> Vec<crate::sample::GpuSample> {
    if gpus.is_empty() {
        return Vec::new();
    }
    match pids.host_ids(Path::new(PROC), members) {
        Some(ids) => gpus.iter().map(|g| g.for_tree(&ids, true)).collect(),
        None => {
            *names_ours |= gpus.iter().any(|g| g.lists_any(members));
            gpus.iter().map(|g| g.for_tree(members, *names_ours)).collect()
        }
    }
}

/// The size of a memory page; 4 kB where the system will not say.
fn page_bytes() -> u64 {
    // SAFETY: sysconf reads a system constant; it takes no pointers.
    let bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(bytes).ok().filter(|&b| b > 0).unwrap_or(4096)
}
