//! NVIDIA GPUs through NVML (`nvml-wrapper`). Opened once; every reading is tried, and one that
//! fails (not supported on this card, missing from an older driver's library) is switched off
//! for the session and reported once, so a missing feature costs nothing per tick and never
//! floods the log. A GPU that falls off the bus is reported once and no longer read. Without a
//! library, a driver or a GPU, `GpuProbe::open` says why and looptop goes on without GPUs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nvml_wrapper::enum_wrappers::device::{Clock, Sampling, TemperatureSensor};
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::{gpm_metrics_get, GpmSample};
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{nvmlGpmSample_t, NVML_DEVICE_MIG_ENABLE};

use crate::event::Notice;
use crate::sample::{GpuInfo, GpuSample, GpuUnavailable};

/// The library's usual name, found through the dynamic loader's search path.
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";
/// Where WSL keeps it (not always on the loader's path).
pub const WSL_LIBRARY: &str = "/usr/lib/wsl/lib/libnvidia-ml.so.1";

/// Which library to load and which GPUs to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuSettings {
    /// A library path the user gave (`--nvml-lib`, `LOOPTOP_NVML_LIB`, `[gpu] nvml_lib`).
    pub nvml_lib: Option<PathBuf>,
    /// NVML indices to watch (`[gpu] devices`); all when `None`.
    pub devices: Option<Vec<u32>>,
}

/// A reading NVML may refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reading {
    Utilization,
    Memory,
    Power,
    Temperature,
    Clock,
    Processes,
    ProcessUtilization,
    PowerLimit,
    UtilizationSamples,
    SmActivity,
}

impl Reading {
    fn describe(self) -> &'static str {
        match self {
            Reading::Utilization => "utilization",
            Reading::Memory => "memory use",
            Reading::Power => "power draw",
            Reading::Temperature => "temperature",
            Reading::Clock => "SM clock",
            Reading::Processes => "per-process memory (which processes use the GPU)",
            Reading::ProcessUtilization => "per-process utilization",
            Reading::PowerLimit => "enforced power limit",
            Reading::UtilizationSamples => "finer utilization samples (nvmlDeviceGetSamples)",
            Reading::SmActivity => "SM activity (GPM)",
        }
    }
}

#[derive(Debug)]
struct DeviceState {
    index: u32,
    name: String,
    lost: bool,
    off: BTreeMap<Reading, String>,
    /// Newest per-process sample seen, in NVML's microseconds: the next query asks for newer
    /// ones only (asking with 0 makes the driver average over a long window).
    last_seen_us: u64,
    /// Newest finer utilization sample seen, in NVML's microseconds.
    samples_seen_us: u64,
    /// The GPU runs in MIG mode.
    mig: bool,
    /// The previous GPM sample (owned: freed on the next reading or when the probe goes).
    gpm_previous: Option<nvmlGpmSample_t>,
}

impl DeviceState {
    fn new(nvml: &Nvml, index: u32, notices: &mut Vec<Notice>) -> Self {
        let device = nvml.device_by_index(index);
        let name = device
            .as_ref()
            .ok()
            .and_then(|d| d.name().ok())
            .unwrap_or_else(|| format!("GPU {index}"));
        let mig = device
            .as_ref()
            .ok()
            .and_then(|d| d.mig_mode().ok())
            .is_some_and(|m| m.current == NVML_DEVICE_MIG_ENABLE);
        let mut off = BTreeMap::new();
        // Pre-Hopper GPUs have no GPM: expected, so no warning; `looptop doctor` lists it.
        if !device.as_ref().ok().and_then(|d| d.gpm_support().ok()).unwrap_or(false) {
            off.insert(
                Reading::SmActivity,
                "needs a Hopper or newer GPU and driver".to_string(),
            );
        }
        if mig {
            let why = "not available in MIG mode".to_string();
            for reading in [
                Reading::Utilization,
                Reading::ProcessUtilization,
                Reading::UtilizationSamples,
                Reading::SmActivity,
            ] {
                off.insert(reading, why.clone());
            }
            notices.push(Notice::warn(format!(
                "GPU {index} ({name}) runs in MIG mode: NVML gives no utilization there, so looptop's verdict \
                 on it is \"unknown\", not idle"
            )));
        }
        Self {
            index,
            name,
            lost: false,
            off,
            last_seen_us: 0,
            samples_seen_us: 0,
            mig,
            gpm_previous: None,
        }
    }
}

/// One GPU's readings of one tick, before they are split among runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceReading {
    /// Device-wide readings (the job fields left empty).
    pub device: GpuSample,
    /// Processes holding a context and their memory (`None`: memory not available); `None`
    /// when the list cannot be read.
    pub processes: Option<Vec<(u32, Option<u64>)>>,
    /// Newest SM utilization per process since the last tick; `None` when not readable.
    pub process_sm_pct: Option<BTreeMap<u32, u32>>,
}

impl DeviceReading {
    /// NVML lists one of `ids` on this GPU (a context, or SM samples).
    pub fn lists_any(&self, ids: &BTreeSet<u32>) -> bool {
        self.processes.iter().flatten().any(|(pid, _)| ids.contains(pid))
            || self.process_sm_pct.iter().flatten().any(|(pid, _)| ids.contains(pid))
    }

    /// This GPU as seen by the run whose processes NVML knows as `ids`. With `absence_proves`
    /// false (looptop cannot name the host's pids), a GPU that lists none of `ids` says nothing
    /// about the run: its share stays unknown rather than 0.
    pub fn for_tree(&self, ids: &BTreeSet<u32>, absence_proves: bool) -> GpuSample {
        let mut sample = self.device.clone();
        if !absence_proves && !self.lists_any(ids) {
            return sample;
        }
        if let Some(processes) = &self.processes {
            let mine: Vec<Option<u64>> = processes
                .iter()
                .filter(|(pid, _)| ids.contains(pid))
                .map(|&(_, mem)| mem)
                .collect();
            sample.job_present = Some(!mine.is_empty());
            sample.job_mem_bytes = mine.iter().copied().sum::<Option<u64>>();
        }
        if let Some(util) = &self.process_sm_pct {
            let share = |mine: bool| -> u32 {
                util.iter()
                    .filter(|(pid, _)| ids.contains(pid) == mine)
                    .map(|(_, &sm)| sm)
                    .sum::<u32>()
                    .min(100)
            };
            let sm = share(true);
            sample.job_sm_pct = Some(sm);
            sample.others_sm_pct = Some(share(false));
            if sm > 0 && sample.job_present != Some(true) {
                sample.job_present = Some(true);
            }
        }
        sample
    }
}

/// An open NVML and the GPUs looptop watches.
pub struct GpuProbe {
    nvml: Nvml,
    library: String,
    driver: Option<String>,
    devices: Vec<DeviceState>,
}

impl Drop for GpuProbe {
    fn drop(&mut self) {
        for state in &mut self.devices {
            if let Some(handle) = state.gpm_previous.take() {
                // SAFETY: the handle came from `GpmSample::into_handle` on this `Nvml` and is
                // owned by this state alone; wrapping it again frees it once.
                drop(unsafe { GpmSample::from_handle(&self.nvml, handle) });
            }
        }
    }
}

impl std::fmt::Debug for GpuProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProbe")
            .field("library", &self.library)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl GpuProbe {
    /// Loads NVML and finds the GPUs; notices say which selected GPUs do not exist.
    pub fn open(settings: &GpuSettings) -> Result<(Self, Vec<Notice>), GpuUnavailable> {
        let (nvml, library) = load(settings.nvml_lib.as_deref())?;
        let driver = nvml.sys_driver_version().ok();
        let count = nvml.device_count().map_err(|e| GpuUnavailable {
            reason: format!("NVML ({library}) cannot count the GPUs: {e}"),
            expected: false,
        })?;
        if count == 0 {
            return Err(GpuUnavailable {
                reason: format!(
                    "NVML is there ({library}, driver {}) but sees no GPU",
                    driver.as_deref().unwrap_or("unknown")
                ),
                expected: false,
            });
        }
        let mut notices = Vec::new();
        let indices: Vec<u32> = match &settings.devices {
            None => (0..count).collect(),
            Some(chosen) => {
                let (present, absent): (Vec<u32>, Vec<u32>) = chosen.iter().partition(|&&i| i < count);
                if !absent.is_empty() {
                    notices.push(Notice::warn(format!(
                        "[gpu] devices names GPU {absent:?}, but this machine has {count} (0 to {}): those are skipped",
                        count - 1
                    )));
                }
                present
            }
        };
        let devices = indices
            .into_iter()
            .map(|index| DeviceState::new(&nvml, index, &mut notices))
            .collect();
        Ok((
            Self {
                nvml,
                library,
                driver,
                devices,
            },
            notices,
        ))
    }

    /// The library that was loaded.
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The driver's version, if NVML tells.
    pub fn driver_version(&self) -> Option<&str> {
        self.driver.as_deref()
    }

    /// The watched GPUs, with what each cannot tell (known after the first `read`).
    pub fn devices(&self) -> Vec<GpuInfo> {
        self.devices
            .iter()
            .map(|d| GpuInfo {
                index: d.index,
                name: d.name.clone(),
                mem_total_bytes: self
                    .nvml
                    .device_by_index(d.index)
                    .and_then(|dev| dev.memory_info())
                    .ok()
                    .map(|m| m.total),
                missing: d
                    .off
                    .iter()
                    .map(|(r, why)| format!("{}: {why}", r.describe()))
                    .collect(),
            })
            .collect()
    }

    /// Reads every watched GPU. A reading that fails for the first time adds a notice to
    /// `notices` and is not tried again.
    pub fn read(&mut self, notices: &mut Vec<Notice>) -> Vec<DeviceReading> {
        let nvml = &self.nvml;
        self.devices
            .iter_mut()
            .filter(|d| !d.lost)
            .map(|state| match nvml.device_by_index(state.index) {
                Ok(device) => read_device(nvml, &device, state, notices),
                Err(e) => {
                    lose(state, &e, notices);
                    DeviceReading {
                        device: GpuSample {
                            index: state.index,
                            ..GpuSample::default()
                        },
                        ..DeviceReading::default()
                    }
                }
            })
            .collect()
    }
}

fn load(explicit: Option<&Path>) -> Result<(Nvml, String), GpuUnavailable> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(path) => vec![path.to_path_buf()],
        None => std::iter::once(PathBuf::from(DEFAULT_LIBRARY))
            .chain(Path::new(WSL_LIBRARY).exists().then(|| PathBuf::from(WSL_LIBRARY)))
            .collect(),
    };
    let mut last = None;
    for path in &candidates {
        match Nvml::builder().lib_path(OsStr::new(path)).init() {
            Ok(nvml) => return Ok((nvml, path.display().to_string())),
            Err(e) => last = Some((path, e)),
        }
    }
    let Some((path, error)) = last else {
        return Err(GpuUnavailable {
            reason: "no NVML library to try".into(),
            expected: true,
        });
    };
    let shown = path.display();
    let (reason, expected) = match error {
        NvmlError::LibloadingError(e) => (
            format!(
                "no NVIDIA driver library: cannot load {shown} ({e}); if the driver is installed elsewhere, \
                 point looptop at libnvidia-ml.so.1 with --nvml-lib, LOOPTOP_NVML_LIB or [gpu] nvml_lib"
            ),
            explicit.is_none(),
        ),
        NvmlError::DriverNotLoaded => (
            format!("{shown} is there but the NVIDIA driver is not loaded (does `nvidia-smi` work?)"),
            false,
        ),
        NvmlError::NoPermission => (
            format!("{shown} may not talk to the NVIDIA driver (no permission: check /dev/nvidia* access)"),
            false,
        ),
        NvmlError::FailedToLoadSymbol(detail) => (
            format!(
                "{shown} lacks {}: not an NVML library, or one too old for looptop",
                missing_symbol(&detail)
            ),
            false,
        ),
        other => (format!("NVML ({shown}) failed to start: {other}"), false),
    };
    Err(GpuUnavailable { reason, expected })
}

fn read_device(nvml: &Nvml, device: &Device<'_>, state: &mut DeviceState, notices: &mut Vec<Notice>) -> DeviceReading {
    let mut reading = DeviceReading {
        device: GpuSample {
            index: state.index,
            mig: state.mig,
            ..GpuSample::default()
        },
        ..DeviceReading::default()
    };
    if let Some(util) = try_read(state, Reading::Utilization, || device.utilization_rates(), notices) {
        reading.device.util_pct = Some(util.gpu);
        reading.device.mem_util_pct = Some(util.memory);
    }
    if let Some(memory) = try_read(state, Reading::Memory, || device.memory_info(), notices) {
        reading.device.mem_used_bytes = Some(memory.used);
        reading.device.mem_total_bytes = Some(memory.total);
    }
    reading.device.power_mw = try_read(state, Reading::Power, || device.power_usage(), notices);
    if reading.device.power_mw.is_some() {
        reading.device.power_limit_mw = try_read(state, Reading::PowerLimit, || device.enforced_power_limit(), notices);
    }
    reading.device.idle_sample_pct = idle_sample_share(device, state, notices);
    if let Some(activity) = sm_activity(nvml, device, state, notices) {
        reading.device.sm_active_pct = activity[0];
        reading.device.sm_occupancy_pct = activity[1];
        reading.device.tensor_active_pct = activity[2];
    }
    reading.device.temp_c = try_read(
        state,
        Reading::Temperature,
        || device.temperature(TemperatureSensor::Gpu),
        notices,
    );
    reading.device.sm_clock_mhz = try_read(state, Reading::Clock, || device.clock_info(Clock::SM), notices);
    reading.processes = try_read(
        state,
        Reading::Processes,
        || device.running_compute_processes(),
        notices,
    )
    .map(|list| {
        list.into_iter()
            .map(|p| {
                let mem = match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes),
                    UsedGpuMemory::Unavailable => None,
                };
                (p.pid, mem)
            })
            .collect()
    });
    let since = state.last_seen_us;
    let samples = || match device.process_utilization_stats(since) {
        // Real drivers answer NotFound when no process has samples: that is an empty list.
        Err(NvmlError::NotFound) => Ok(Vec::new()),
        other => other,
    };
    reading.process_sm_pct = try_read(state, Reading::ProcessUtilization, samples, notices).map(|mut samples| {
        samples.sort_by_key(|s| s.timestamp);
        let mut newest = BTreeMap::new();
        for s in samples {
            state.last_seen_us = state.last_seen_us.max(s.timestamp);
            // Values above 100 are junk some drivers return.
            if s.sm_util <= 100 {
                newest.insert(s.pid, s.sm_util);
            }
        }
        newest
    });
    reading
}

/// The share of the driver's utilization samples since the last call that were under
/// `STALL_UTIL_PCT`: gaps shorter than one tick show here. `None` on the first call (the driver's
/// buffer reaches back before the run) or when the driver has no new samples.
fn idle_sample_share(device: &Device<'_>, state: &mut DeviceState, notices: &mut Vec<Notice>) -> Option<f32> {
    let since = state.samples_seen_us;
    let call = || match device.samples(Sampling::GpuUtilization, since) {
        Err(NvmlError::NotFound) => Ok(Vec::new()),
        other => other,
    };
    let samples = try_read(state, Reading::UtilizationSamples, call, notices)?;
    let values: Vec<f64> = samples
        .iter()
        .filter(|s| s.timestamp > since)
        .map(|s| match s.value {
            SampleValue::F64(v) => v,
            SampleValue::U32(v) => f64::from(v),
            SampleValue::U64(v) => v as f64,
            SampleValue::I64(v) => v as f64,
        })
        .collect();
    let newest = samples.iter().map(|s| s.timestamp).max().unwrap_or(since);
    state.samples_seen_us = state.samples_seen_us.max(newest);
    if since == 0 || values.is_empty() {
        return None;
    }
    let idle = values
        .iter()
        .filter(|&&v| v < f64::from(crate::diagnose::thresholds::STALL_UTIL_PCT))
        .count();
    Some((idle as f64 / values.len() as f64 * 100.0) as f32)
}

/// GPM's SM activity, SM occupancy and tensor activity, 0-100 each.
type SmActivity = [Option<f32>; 3];

/// GPM's SM activity, SM occupancy and tensor activity since the previous reading (Hopper and
/// newer); the first call only takes the starting sample.
fn sm_activity(
    nvml: &Nvml,
    device: &Device<'_>,
    state: &mut DeviceState,
    notices: &mut Vec<Notice>,
) -> Option<SmActivity> {
    let previous = state.gpm_previous.take();
    let call = || -> Result<(nvmlGpmSample_t, Option<SmActivity>), NvmlError> {
        // SAFETY: the handle came from `into_handle` on this `Nvml` and nothing else owns it.
        let previous = previous.map(|h| unsafe { GpmSample::from_handle(nvml, h) });
        let current = device.gpm_sample()?;
        let metrics = match &previous {
            Some(previous) => {
                let ids = [
                    GpmMetricId::SmUtil,
                    GpmMetricId::SmOccupancy,
                    GpmMetricId::AnyTensorUtil,
                ];
                let values = gpm_metrics_get(nvml, previous, &current, &ids)?;
                let value = |i: usize| values.get(i).and_then(|r| r.as_ref().ok()).map(|m| m.value as f32);
                Some([value(0), value(1), value(2)])
            }
            None => None,
        };
        Ok((current.into_handle(), metrics))
    };
    let (handle, metrics) = try_read(state, Reading::SmActivity, call, notices)?;
    state.gpm_previous = Some(handle);
    metrics
}

/// The value, or `None` after switching the reading off (or marking the GPU lost) with a notice.
fn try_read<T>(
    state: &mut DeviceState,
    reading: Reading,
    call: impl FnOnce() -> Result<T, NvmlError>,
    notices: &mut Vec<Notice>,
) -> Option<T> {
    if state.lost || state.off.contains_key(&reading) {
        return None;
    }
    match call() {
        Ok(value) => Some(value),
        Err(e @ (NvmlError::GpuLost | NvmlError::Uninitialized)) => {
            lose(state, &e, notices);
            None
        }
        Err(e) => {
            let why = match &e {
                NvmlError::NotSupported => {
                    "not supported by this GPU or mode (common on consumer cards, MIG and vGPU)".to_string()
                }
                NvmlError::FailedToLoadSymbol(detail) => {
                    format!(
                        "the driver's NVML lacks {} (a driver older than looptop needs)",
                        missing_symbol(detail)
                    )
                }
                NvmlError::NoPermission => "no permission".to_string(),
                other => other.to_string(),
            };
            notices.push(Notice::warn(format!(
                "GPU {} ({}): {} is unavailable: {why}; looptop shows the rest",
                state.index,
                state.name,
                reading.describe()
            )));
            state.off.insert(reading, why);
            None
        }
    }
}

/// The symbol's name out of the loader's message ("/path/lib.so: undefined symbol: NAME").
fn missing_symbol(detail: &str) -> &str {
    detail.rsplit("undefined symbol: ").next().unwrap_or(detail).trim()
}

fn lose(state: &mut DeviceState, error: &NvmlError, notices: &mut Vec<Notice>) {
    if state.lost {
        return;
    }
    state.lost = true;
    notices.push(Notice::error(format!(
        "GPU {} ({}) stopped answering ({error}): it may have fallen off the bus; looptop no longer reads it",
        state.index, state.name
    )));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> DeviceReading {
        DeviceReading {
            device: GpuSample {
                index: 0,
                util_pct: Some(40),
                ..GpuSample::default()
            },
            processes: Some(vec![(10, Some(1 << 30)), (11, Some(1 << 20)), (99, Some(5 << 30))]),
            process_sm_pct: Some(BTreeMap::from([(10, 30), (99, 60)])),
        }
    }

    #[test]
    fn a_run_gets_only_its_own_processes_share() {
        let sample = reading().for_tree(&BTreeSet::from([10, 11, 12]), true);
        assert_eq!(sample.job_present, Some(true));
        assert_eq!(sample.job_mem_bytes, Some((1 << 30) + (1 << 20)));
        assert_eq!(sample.job_sm_pct, Some(30));
        assert_eq!(sample.others_sm_pct, Some(60), "pid 99 is someone else");
        assert_eq!(sample.util_pct, Some(40));
        let other = reading().for_tree(&BTreeSet::from([500]), true);
        assert_eq!(other.job_present, Some(false));
        assert_eq!(other.job_mem_bytes, Some(0));
        assert_eq!(other.job_sm_pct, Some(0));
        assert_eq!(other.others_sm_pct, Some(90));
    }

    #[test]
    fn where_host_pids_are_unknowable_absence_proves_nothing() {
        // In a container NVML's host pids never match: the run's share is unknown, not 0.
        let unknown = reading().for_tree(&BTreeSet::from([1, 2]), false);
        assert_eq!(
            (
                unknown.job_present,
                unknown.job_sm_pct,
                unknown.others_sm_pct,
                unknown.job_mem_bytes
            ),
            (None, None, None, None)
        );
        assert_eq!(unknown.util_pct, Some(40), "the device readings remain");
        // A pid that does match (a driver that reports this namespace's pids) is believed.
        let known = reading().for_tree(&BTreeSet::from([10]), false);
        assert_eq!((known.job_present, known.job_sm_pct), (Some(true), Some(30)));
    }

    #[test]
    fn unknown_stays_unknown() {
        let mut r = reading();
        r.processes = Some(vec![(10, None)]);
        r.process_sm_pct = None;
        let sample = r.for_tree(&BTreeSet::from([10]), true);
        assert_eq!(sample.job_present, Some(true));
        assert_eq!(sample.job_mem_bytes, None, "memory not available is not 0");
        assert_eq!(sample.job_sm_pct, None);
        r.processes = None;
        let sample = r.for_tree(&BTreeSet::from([10]), true);
        assert_eq!(sample.job_present, None);
    }

    #[test]
    fn the_missing_symbol_is_named_without_the_loader_noise() {
        assert_eq!(
            missing_symbol("/usr/lib/libnvidia-ml.so.1: undefined symbol: nvmlDeviceGetProcessUtilization"),
            "nvmlDeviceGetProcessUtilization"
        );
        assert_eq!(missing_symbol("nvmlInit_v2"), "nvmlInit_v2");
    }

    #[test]
    fn a_missing_library_is_expected_unless_asked_for() {
        let absent = Path::new("/nonexistent/libnvidia-ml.so.1");
        let err = GpuProbe::open(&GpuSettings {
            nvml_lib: Some(absent.to_path_buf()),
            devices: None,
        })
        .expect_err("no such library");
        assert!(!err.expected, "an explicit path that fails is worth a warning");
        assert!(err.reason.contains("/nonexistent/libnvidia-ml.so.1"), "{}", err.reason);
        assert!(err.reason.contains("--nvml-lib"), "{}", err.reason);
    }
}
