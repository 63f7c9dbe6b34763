//! A fake `libnvidia-ml.so` for tests on machines without an NVIDIA GPU.
//!
//! It exports the NVML C symbols that `nvml-wrapper` 0.13 uses for the readings looptop takes,
//! with the exact struct layouts of `nvml-wrapper-sys` 0.10, so a test can load it with
//! `Nvml::builder().lib_path(path).init()` and get scripted readings back.
//!
//! # Script
//!
//! The environment variable `FAKE_NVML_SCRIPT` names a text file that is re-read on every call,
//! so a test can append lines while the process using the library runs. A missing variable or
//! file means all defaults. One `key = value` per line; whitespace around both is trimmed, blank
//! lines and lines starting with `#` are ignored, the last assignment of a key wins, and a line
//! or value that does not parse is ignored (the default or an earlier valid line applies).
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `init` | `ok`, `driver_not_loaded`, `no_permission` or `unknown`: what `nvmlInit_v2` and `nvmlInitWithFlags` return | `ok` |
//! | `driver` | driver version string | `999.99.fake` |
//! | `nvml` | NVML version string | `12.999.fake` |
//! | `count` | number of GPUs | `1` |
//! | `gpu.N.name` | name of GPU N (0-based) | `Fake GPU N` |
//! | `gpu.N.uuid` | UUID | `GPU-fake-N` |
//! | `gpu.N.util` | GPU utilization, percent | `0` |
//! | `gpu.N.mem_util` | memory utilization, percent | `0` |
//! | `gpu.N.mem_total` | memory size, bytes | `85899345920` |
//! | `gpu.N.mem_used` | memory used, bytes (free = total - used) | `0` |
//! | `gpu.N.power_mw` | power draw, milliwatts | `100000` |
//! | `gpu.N.power_limit_mw` | enforced power limit, milliwatts | `700000` |
//! | `gpu.N.temp_c` | GPU temperature, °C | `40` |
//! | `gpu.N.sm_clock_mhz` | SM (and graphics) clock, MHz | `1980` |
//! | `gpu.N.procs` | compute processes, space-separated `PID:BYTES` (`PID:na`: memory not available) | none |
//! | `gpu.N.proc_util` | process utilization samples, space-separated `PID:SM:MEM` | none |
//! | `gpu.N.util_samples` | the driver's finer utilization samples (`nvmlDeviceGetSamples`), space-separated percents, stamped 1 ms apart ending now | `gpu.N.util` |
//! | `gpu.N.gpm` | `1`: GPM is supported (Hopper and newer); `0`: not | `1` |
//! | `gpu.N.gpm_sm_active` | GPM's SM activity, percent | `gpu.N.util` |
//! | `gpu.N.gpm_sm_occupancy` | GPM's SM occupancy, percent | half of `gpu.N.util` |
//! | `gpu.N.gpm_tensor` | GPM's tensor activity, percent | `0` |
//! | `gpu.N.mig` | `1`: MIG mode; device, process and GPM utilization are then not supported | `0` |
//! | `host_pid_offset` | added to every pid in `procs` and `proc_util`: the host pids a driver reports for processes of a container (its own pid namespace) | `0` |
//! | `gpu.N.lost` | `1`: every device call for GPU N returns `NVML_ERROR_GPU_IS_LOST`; `0`: back | `0` |
//! | `gpu.N.unsupported` | comma list among `util, memory, power, temp, clock, procs, proc_util, name`: those calls return `NVML_ERROR_NOT_SUPPORTED` (`power` covers usage and limit) | none |
//!
//! Process utilization samples are stamped with the current wall time in microseconds; only
//! samples newer than the caller's `lastSeenTimeStamp` are returned, and `NVML_ERROR_NOT_FOUND`
//! when there are none, as real drivers do. Memory and video clocks are not supported.
//!
//! # Log
//!
//! If `FAKE_NVML_LOG` names a file, every exported call appends one line to it: the symbol name,
//! followed by the GPU index for device calls (`nvmlDeviceGetUtilizationRates 0`).
//!
//! # Features
//!
//! `legacy` leaves out `nvmlDeviceGetComputeRunningProcesses_v3`,
//! `nvmlDeviceGetProcessUtilization`, `nvmlDeviceGetSamples`, `nvmlDeviceGetMigMode` and the GPM
//! calls, like a driver too old for them.
//!
//! Calls before `nvmlInit_v2` (or after the matching `nvmlShutdown`) return
//! `NVML_ERROR_UNINITIALIZED`. Nothing here panics: a panic cannot cross the C boundary.

#![allow(clippy::missing_safety_doc)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::ffi::{c_char, c_uint, CStr};
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use nvml_wrapper_sys::bindings::{
    nvmlClockType_enum_NVML_CLOCK_GRAPHICS, nvmlClockType_enum_NVML_CLOCK_SM, nvmlClockType_t, nvmlDevice_st,
    nvmlDevice_t, nvmlMemory_v2_t, nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED,
    nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST, nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE,
    nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT, nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED,
    nvmlReturn_enum_NVML_ERROR_NO_PERMISSION, nvmlReturn_enum_NVML_ERROR_UNINITIALIZED,
    nvmlReturn_enum_NVML_ERROR_UNKNOWN, nvmlReturn_enum_NVML_SUCCESS, nvmlReturn_t,
    nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU, nvmlTemperatureSensors_t, nvmlUtilization_t,
};
#[cfg(not(feature = "legacy"))]
use std::ffi::c_ulonglong;
#[cfg(not(feature = "legacy"))]
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(not(feature = "legacy"))]
use nvml_wrapper_sys::bindings::{
    nvmlGpmMetricId_t_NVML_GPM_METRIC_ANY_TENSOR_UTIL, nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_OCCUPANCY,
    nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_UTIL, nvmlGpmMetricsGet_t, nvmlGpmSample_st, nvmlGpmSample_t,
    nvmlGpmSupport_t, nvmlProcessInfo_t, nvmlProcessUtilizationSample_t, nvmlReturn_enum_NVML_ERROR_NOT_FOUND,
    nvmlSample_t, nvmlSamplingType_enum_NVML_GPU_UTILIZATION_SAMPLES, nvmlSamplingType_t,
    nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT, nvmlValueType_t, nvmlValue_t, NVML_GPM_METRICS_GET_VERSION,
};

const SUCCESS: nvmlReturn_t = nvmlReturn_enum_NVML_SUCCESS;
const UNINITIALIZED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
const INVALID_ARGUMENT: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
const NOT_SUPPORTED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
const INSUFFICIENT_SIZE: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
const GPU_IS_LOST: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;

/// `NVML_VALUE_NOT_AVAILABLE` as an unsigned long long.
#[cfg(not(feature = "legacy"))]
const VALUE_NOT_AVAILABLE: u64 = u64::MAX;
/// GPM metric ids answered.
#[cfg(not(feature = "legacy"))]
const GPM_SM_UTIL: c_uint = nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_UTIL;
#[cfg(not(feature = "legacy"))]
const GPM_SM_OCCUPANCY: c_uint = nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_OCCUPANCY;
#[cfg(not(feature = "legacy"))]
const GPM_ANY_TENSOR_UTIL: c_uint = nvmlGpmMetricId_t_NVML_GPM_METRIC_ANY_TENSOR_UTIL;
/// "No MIG instance" for the instance ids of a process.
#[cfg(not(feature = "legacy"))]
const NO_INSTANCE: c_uint = 0xFFFF_FFFF;

/// How many `nvmlInit` calls have not been matched by an `nvmlShutdown` (NVML counts them).
static INIT_COUNT: AtomicU32 = AtomicU32::new(0);

/// The parsed script: every value assigned to each key, in order.
struct Script(HashMap<String, Vec<String>>);

impl Script {
    /// Reads the file named by `FAKE_NVML_SCRIPT`; empty if there is none.
    fn load() -> Self {
        let text = std::env::var_os("FAKE_NVML_SCRIPT")
            .and_then(|path| std::fs::read(path).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        Self::parse(&text)
    }

    fn parse(text: &str) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                let key = key.trim();
                if !key.is_empty() {
                    map.entry(key.to_owned()).or_default().push(value.trim().to_owned());
                }
            }
        }
        Self(map)
    }

    /// The last value of `key` that `parse` accepts: a bad value is ignored.
    fn last<'a, T>(&'a self, key: &str, parse: impl Fn(&'a str) -> Option<T>) -> Option<T> {
        self.0.get(key)?.iter().rev().find_map(|value| parse(value))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.last(key, Some)
    }

    /// A number, or `default` when the key has no value that parses.
    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        self.last(key, |v| v.parse().ok()).unwrap_or(default)
    }

    fn gpu(&self, index: u32, field: &str) -> Option<&str> {
        self.get(&format!("gpu.{index}.{field}"))
    }

    fn gpu_num<T: std::str::FromStr>(&self, index: u32, field: &str, default: T) -> T {
        self.num(&format!("gpu.{index}.{field}"), default)
    }

    fn count(&self) -> u32 {
        self.num("count", 1)
    }

    fn init_result(&self) -> nvmlReturn_t {
        self.last("init", |value| match value {
            "ok" => Some(SUCCESS),
            "driver_not_loaded" => Some(nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED),
            "no_permission" => Some(nvmlReturn_enum_NVML_ERROR_NO_PERMISSION),
            "unknown" => Some(nvmlReturn_enum_NVML_ERROR_UNKNOWN),
            _ => None,
        })
        .unwrap_or(SUCCESS)
    }

    fn lost(&self, index: u32) -> bool {
        self.flag(index, "lost", false)
    }

    fn unsupported(&self, index: u32, call: &str) -> bool {
        let utilization = matches!(call, "util" | "proc_util" | "util_samples" | "gpm");
        (utilization && self.flag(index, "mig", false))
            || self
                .gpu(index, "unsupported")
                .is_some_and(|list| list.split(',').any(|item| item.trim() == call))
    }

    /// A `1`/`0` key of GPU `index`.
    fn flag(&self, index: u32, field: &str, default: bool) -> bool {
        self.last(&format!("gpu.{index}.{field}"), |value| match value {
            "1" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        })
        .unwrap_or(default)
    }

    /// `host_pid_offset` added to `pid`.
    #[cfg(not(feature = "legacy"))]
    fn host_pid(&self, pid: u32) -> u32 {
        pid.saturating_add(self.num("host_pid_offset", 0))
    }

    /// `gpu.N.util_samples`, or the one `gpu.N.util` reading.
    #[cfg(not(feature = "legacy"))]
    fn util_samples(&self, index: u32) -> Vec<c_uint> {
        match self.gpu(index, "util_samples") {
            Some(list) => list.split_whitespace().filter_map(|v| v.parse().ok()).collect(),
            None => vec![self.gpu_num(index, "util", 0)],
        }
    }

    /// `gpu.N.procs`: (pid, used bytes); `PID:na` gives `NVML_VALUE_NOT_AVAILABLE`.
    #[cfg(not(feature = "legacy"))]
    fn procs(&self, index: u32) -> Vec<(u32, u64)> {
        let list = self.gpu(index, "procs").unwrap_or("");
        list.split_whitespace()
            .filter_map(|entry| {
                let (pid, bytes) = entry.split_once(':')?;
                let bytes = if bytes == "na" {
                    VALUE_NOT_AVAILABLE
                } else {
                    bytes.parse().ok()?
                };
                Some((self.host_pid(pid.parse().ok()?), bytes))
            })
            .collect()
    }

    /// `gpu.N.proc_util`: (pid, sm percent, memory percent).
    #[cfg(not(feature = "legacy"))]
    fn proc_util(&self, index: u32) -> Vec<(u32, u32, u32)> {
        let list = self.gpu(index, "proc_util").unwrap_or("");
        list.split_whitespace()
            .filter_map(|entry| {
                let mut parts = entry.split(':');
                let pid = parts.next()?.parse().ok()?;
                let sm = parts.next()?.parse().ok()?;
                let mem = parts.next()?.parse().ok()?;
                parts.next().is_none().then_some((self.host_pid(pid), sm, mem))
            })
            .collect()
    }
}

/// Appends `line` to the file named by `FAKE_NVML_LOG`, ignoring errors.
fn log(line: &str) {
    if let Some(path) = std::env::var_os("FAKE_NVML_LOG") {
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = file.write_all(format!("{line}\n").as_bytes());
        }
    }
}

fn initialized() -> bool {
    INIT_COUNT.load(Ordering::SeqCst) > 0
}

/// Logs a system call and loads the script, or says the library is not initialized.
fn system_call(symbol: &str) -> Result<Script, nvmlReturn_t> {
    log(symbol);
    if !initialized() {
        return Err(UNINITIALIZED);
    }
    Ok(Script::load())
}

/// The handle for GPU `index`: a non-null pointer that is never dereferenced.
fn handle(index: u32) -> nvmlDevice_t {
    std::ptr::without_provenance_mut::<nvmlDevice_st>(index as usize + 1)
}

/// The GPU index a handle encodes, if it is one of ours.
fn index_of(device: nvmlDevice_t) -> Option<u32> {
    device.addr().checked_sub(1).and_then(|i| u32::try_from(i).ok())
}

/// Logs a device call and checks everything common to device calls: initialized, a valid handle,
/// the GPU not lost, and `call` (a `gpu.N.unsupported` item) supported. Gives the script and index.
fn device_call(symbol: &str, device: nvmlDevice_t, call: &str) -> Result<(Script, u32), nvmlReturn_t> {
    let index = index_of(device);
    match index {
        Some(i) => log(&format!("{symbol} {i}")),
        None => log(&format!("{symbol} ?")),
    }
    if !initialized() {
        return Err(UNINITIALIZED);
    }
    let script = Script::load();
    let index = match index {
        Some(i) if i < script.count() => i,
        _ => return Err(INVALID_ARGUMENT),
    };
    if script.lost(index) {
        return Err(GPU_IS_LOST);
    }
    if script.unsupported(index, call) {
        return Err(NOT_SUPPORTED);
    }
    Ok((script, index))
}

/// Copies `text` (up to any NUL) with a terminating NUL into a C buffer of `length` bytes.
unsafe fn write_str(text: &str, buffer: *mut c_char, length: c_uint) -> nvmlReturn_t {
    if buffer.is_null() {
        return INVALID_ARGUMENT;
    }
    let bytes = text.split('\0').next().unwrap_or("").as_bytes();
    if bytes.len() >= length as usize {
        return INSUFFICIENT_SIZE;
    }
    // SAFETY: the caller gives a buffer of `length` bytes, and bytes.len() + 1 <= length.
    std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buffer, bytes.len());
    *buffer.add(bytes.len()) = 0;
    SUCCESS
}

/// Writes `value` through `out`, or returns `NVML_ERROR_INVALID_ARGUMENT` for a null pointer.
unsafe fn write_out<T>(out: *mut T, value: T) -> nvmlReturn_t {
    if out.is_null() {
        return INVALID_ARGUMENT;
    }
    *out = value;
    SUCCESS
}

fn init(symbol: &str) -> nvmlReturn_t {
    log(symbol);
    let result = Script::load().init_result();
    if result == SUCCESS {
        INIT_COUNT.fetch_add(1, Ordering::SeqCst);
    }
    result
}

/// Initializes NVML, or fails as the script's `init` key says.
#[no_mangle]
pub unsafe extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    init("nvmlInit_v2")
}

/// Initializes NVML ignoring the flags, or fails as the script's `init` key says.
#[no_mangle]
pub unsafe extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    init("nvmlInitWithFlags")
}

/// Undoes one successful init; `NVML_ERROR_UNINITIALIZED` if there is none left to undo.
#[no_mangle]
pub unsafe extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    log("nvmlShutdown");
    match INIT_COUNT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
        Ok(_) => SUCCESS,
        Err(_) => UNINITIALIZED,
    }
}

/// A static description of an NVML return code.
#[no_mangle]
pub unsafe extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    log("nvmlErrorString");
    let text: &'static CStr = match result {
        0 => c"Success",
        1 => c"Uninitialized",
        2 => c"Invalid Argument",
        3 => c"Not Supported",
        4 => c"Insufficient Permissions",
        5 => c"Already Initialized",
        6 => c"Not Found",
        7 => c"Insufficient Size",
        8 => c"Insufficient External Power",
        9 => c"Driver Not Loaded",
        10 => c"Timeout",
        11 => c"Interrupt request issue",
        12 => c"NVML Shared Library Not Found",
        13 => c"Function Not Found",
        14 => c"Corrupted infoROM",
        15 => c"GPU is lost",
        _ => c"Unknown Error",
    };
    text.as_ptr()
}

/// The script's `driver` version string.
#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) -> nvmlReturn_t {
    match system_call("nvmlSystemGetDriverVersion") {
        Ok(script) => write_str(script.get("driver").unwrap_or("999.99.fake"), version, length),
        Err(e) => e,
    }
}

/// The script's `nvml` version string.
#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(version: *mut c_char, length: c_uint) -> nvmlReturn_t {
    match system_call("nvmlSystemGetNVMLVersion") {
        Ok(script) => write_str(script.get("nvml").unwrap_or("12.999.fake"), version, length),
        Err(e) => e,
    }
}

/// The script's GPU `count`.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(device_count: *mut c_uint) -> nvmlReturn_t {
    match system_call("nvmlDeviceGetCount_v2") {
        Ok(script) => write_out(device_count, script.count()),
        Err(e) => e,
    }
}

/// A handle encoding `index`; `NVML_ERROR_INVALID_ARGUMENT` when `index >= count`.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(index: c_uint, device: *mut nvmlDevice_t) -> nvmlReturn_t {
    log(&format!("nvmlDeviceGetHandleByIndex_v2 {index}"));
    if !initialized() {
        return UNINITIALIZED;
    }
    let script = Script::load();
    if index >= script.count() {
        return INVALID_ARGUMENT;
    }
    if script.lost(index) {
        return GPU_IS_LOST;
    }
    write_out(device, handle(index))
}

/// `gpu.N.name`.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetName(device: nvmlDevice_t, name: *mut c_char, length: c_uint) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetName", device, "name") {
        Ok((script, i)) => match script.gpu(i, "name") {
            Some(text) => write_str(text, name, length),
            None => write_str(&format!("Fake GPU {i}"), name, length),
        },
        Err(e) => e,
    }
}

/// `gpu.N.uuid`.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUUID(device: nvmlDevice_t, uuid: *mut c_char, length: c_uint) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetUUID", device, "uuid") {
        Ok((script, i)) => match script.gpu(i, "uuid") {
            Some(text) => write_str(text, uuid, length),
            None => write_str(&format!("GPU-fake-{i}"), uuid, length),
        },
        Err(e) => e,
    }
}

/// `gpu.N.util` and `gpu.N.mem_util`.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    utilization: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetUtilizationRates", device, "util") {
        Ok((script, i)) => {
            let value = nvmlUtilization_t {
                gpu: script.gpu_num(i, "util", 0),
                memory: script.gpu_num(i, "mem_util", 0),
            };
            write_out(utilization, value)
        }
        Err(e) => e,
    }
}

/// `gpu.N.mem_total` and `gpu.N.mem_used` (free = total - used).
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetMemoryInfo_v2", device, "memory") {
        Ok((script, i)) => {
            if memory.is_null() {
                return INVALID_ARGUMENT;
            }
            let total: u64 = script.gpu_num(i, "mem_total", 85_899_345_920);
            let used: u64 = script.gpu_num(i, "mem_used", 0);
            let version = (*memory).version;
            *memory = nvmlMemory_v2_t {
                version,
                total,
                reserved: 0,
                free: total.saturating_sub(used),
                used,
            };
            SUCCESS
        }
        Err(e) => e,
    }
}

/// `gpu.N.power_mw`.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(device: nvmlDevice_t, power: *mut c_uint) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetPowerUsage", device, "power") {
        Ok((script, i)) => write_out(power, script.gpu_num(i, "power_mw", 100_000)),
        Err(e) => e,
    }
}

/// `gpu.N.power_limit_mw`.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetEnforcedPowerLimit(device: nvmlDevice_t, limit: *mut c_uint) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetEnforcedPowerLimit", device, "power") {
        Ok((script, i)) => write_out(limit, script.gpu_num(i, "power_limit_mw", 700_000)),
        Err(e) => e,
    }
}

/// `gpu.N.temp_c` for the GPU sensor; other sensors are an invalid argument.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor_type: nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetTemperature", device, "temp") {
        Ok(_) if sensor_type != nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU => INVALID_ARGUMENT,
        Ok((script, i)) => write_out(temp, script.gpu_num(i, "temp_c", 40)),
        Err(e) => e,
    }
}

/// `gpu.N.sm_clock_mhz` for the SM and graphics clocks; the others are not supported.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    device: nvmlDevice_t,
    clock_type: nvmlClockType_t,
    clock: *mut c_uint,
) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetClockInfo", device, "clock") {
        Ok(_)
            if clock_type != nvmlClockType_enum_NVML_CLOCK_SM
                && clock_type != nvmlClockType_enum_NVML_CLOCK_GRAPHICS =>
        {
            NOT_SUPPORTED
        }
        Ok((script, i)) => write_out(clock, script.gpu_num(i, "sm_clock_mhz", 1980)),
        Err(e) => e,
    }
}

/// `gpu.N.procs`, with NVML's two-call protocol (count query, then fill).
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    info_count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    let (script, i) = match device_call("nvmlDeviceGetComputeRunningProcesses_v3", device, "procs") {
        Ok(found) => found,
        Err(e) => return e,
    };
    if info_count.is_null() {
        return INVALID_ARGUMENT;
    }
    let procs = script.procs(i);
    let n = c_uint::try_from(procs.len()).unwrap_or(c_uint::MAX);
    let capacity = if infos.is_null() { 0 } else { *info_count };
    *info_count = n;
    if procs.is_empty() {
        return SUCCESS;
    }
    if capacity < n {
        return INSUFFICIENT_SIZE;
    }
    // SAFETY: the caller gives a buffer of `capacity` >= procs.len() entries.
    let out = std::slice::from_raw_parts_mut(infos, procs.len());
    for (slot, &(pid, used)) in out.iter_mut().zip(&procs) {
        *slot = nvmlProcessInfo_t {
            pid,
            usedGpuMemory: used,
            gpuInstanceId: NO_INSTANCE,
            computeInstanceId: NO_INSTANCE,
        };
    }
    SUCCESS
}

/// `gpu.N.proc_util` samples newer than `last_seen_time_stamp`, stamped now; `NVML_ERROR_NOT_FOUND` if none.
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetProcessUtilization(
    device: nvmlDevice_t,
    utilization: *mut nvmlProcessUtilizationSample_t,
    process_samples_count: *mut c_uint,
    last_seen_time_stamp: c_ulonglong,
) -> nvmlReturn_t {
    let (script, i) = match device_call("nvmlDeviceGetProcessUtilization", device, "proc_util") {
        Ok(found) => found,
        Err(e) => return e,
    };
    if process_samples_count.is_null() {
        return INVALID_ARGUMENT;
    }
    let now_us = now_us();
    let samples: Vec<nvmlProcessUtilizationSample_t> = script
        .proc_util(i)
        .into_iter()
        .map(|(pid, sm, mem)| nvmlProcessUtilizationSample_t {
            pid,
            timeStamp: now_us,
            smUtil: sm,
            memUtil: mem,
            encUtil: 0,
            decUtil: 0,
        })
        .filter(|sample| sample.timeStamp > last_seen_time_stamp)
        .collect();
    if samples.is_empty() {
        *process_samples_count = 0;
        return nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
    }
    let n = c_uint::try_from(samples.len()).unwrap_or(c_uint::MAX);
    let capacity = if utilization.is_null() {
        0
    } else {
        *process_samples_count
    };
    *process_samples_count = n;
    if capacity < n {
        return INSUFFICIENT_SIZE;
    }
    // SAFETY: the caller gives a buffer of `capacity` >= samples.len() entries.
    let out = std::slice::from_raw_parts_mut(utilization, samples.len());
    out.copy_from_slice(&samples);
    SUCCESS
}

/// The current wall time in microseconds, as NVML stamps samples.
#[cfg(not(feature = "legacy"))]
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `gpu.N.mig`: the current and pending MIG mode.
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> nvmlReturn_t {
    match device_call("nvmlDeviceGetMigMode", device, "mig") {
        Ok((script, i)) => {
            let mode = c_uint::from(script.flag(i, "mig", false));
            match write_out(current, mode) {
                SUCCESS => write_out(pending, mode),
                e => e,
            }
        }
        Err(e) => e,
    }
}

/// `gpu.N.util_samples` newer than `last_seen_time_stamp` (GPU utilization only), with NVML's
/// two-call protocol; `NVML_ERROR_NOT_FOUND` when there are none.
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetSamples(
    device: nvmlDevice_t,
    sample_type: nvmlSamplingType_t,
    last_seen_time_stamp: c_ulonglong,
    value_type: *mut nvmlValueType_t,
    sample_count: *mut c_uint,
    samples: *mut nvmlSample_t,
) -> nvmlReturn_t {
    let (script, i) = match device_call("nvmlDeviceGetSamples", device, "util_samples") {
        Ok(found) => found,
        Err(e) => return e,
    };
    if sample_type != nvmlSamplingType_enum_NVML_GPU_UTILIZATION_SAMPLES {
        return NOT_SUPPORTED;
    }
    if sample_count.is_null() || value_type.is_null() {
        return INVALID_ARGUMENT;
    }
    *value_type = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT;
    let values = script.util_samples(i);
    // Stamped 1 ms apart, the last one now: a whole millisecond, so that the count call and
    // the fill call that follows it see the same samples.
    let newest = now_us() / 1000 * 1000;
    let n = values.len() as u64;
    let fresh: Vec<nvmlSample_t> = values
        .iter()
        .enumerate()
        .map(|(k, &v)| nvmlSample_t {
            timeStamp: newest.saturating_sub((n - 1 - k as u64) * 1000),
            sampleValue: nvmlValue_t { uiVal: v },
        })
        .filter(|s| s.timeStamp > last_seen_time_stamp)
        .collect();
    if fresh.is_empty() {
        *sample_count = 0;
        return nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
    }
    let count = c_uint::try_from(fresh.len()).unwrap_or(c_uint::MAX);
    if samples.is_null() {
        *sample_count = count;
        return SUCCESS;
    }
    let capacity = (*sample_count as usize).min(fresh.len());
    // SAFETY: the caller gives a buffer of `*sample_count` entries; at most that many are written.
    let out = std::slice::from_raw_parts_mut(samples, capacity);
    out.copy_from_slice(fresh.get(..capacity).unwrap_or(&[]));
    *sample_count = c_uint::try_from(capacity).unwrap_or(c_uint::MAX);
    if capacity < fresh.len() {
        return INSUFFICIENT_SIZE;
    }
    SUCCESS
}

/// A GPM sample: which GPU it was taken on.
#[cfg(not(feature = "legacy"))]
struct GpmSample {
    index: Option<u32>,
}

/// `gpu.N.gpm`: whether GPM is supported.
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmQueryDeviceSupport(
    device: nvmlDevice_t,
    support: *mut nvmlGpmSupport_t,
) -> nvmlReturn_t {
    match device_call("nvmlGpmQueryDeviceSupport", device, "gpm_support") {
        Ok((script, i)) => {
            if support.is_null() {
                return INVALID_ARGUMENT;
            }
            (*support).isSupportedDevice = c_uint::from(script.flag(i, "gpm", true));
            SUCCESS
        }
        Err(e) => e,
    }
}

/// Allocates a GPM sample (freed by `nvmlGpmSampleFree`).
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmSampleAlloc(sample: *mut nvmlGpmSample_t) -> nvmlReturn_t {
    log("nvmlGpmSampleAlloc");
    if !initialized() {
        return UNINITIALIZED;
    }
    let raw = Box::into_raw(Box::new(GpmSample { index: None })).cast::<nvmlGpmSample_st>();
    let result = write_out(sample, raw);
    if result != SUCCESS {
        // SAFETY: `raw` came from Box::into_raw just above and was not handed out.
        drop(Box::from_raw(raw.cast::<GpmSample>()));
    }
    result
}

/// Frees a sample from `nvmlGpmSampleAlloc`.
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmSampleFree(sample: nvmlGpmSample_t) -> nvmlReturn_t {
    log("nvmlGpmSampleFree");
    if sample.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: every sample handed out came from Box::into_raw in nvmlGpmSampleAlloc.
    drop(Box::from_raw(sample.cast::<GpmSample>()));
    SUCCESS
}

/// Takes a GPM sample of GPU N; not supported where `gpu.N.gpm` is `0` or in MIG mode.
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmSampleGet(device: nvmlDevice_t, sample: nvmlGpmSample_t) -> nvmlReturn_t {
    match device_call("nvmlGpmSampleGet", device, "gpm") {
        Ok(_) if sample.is_null() => INVALID_ARGUMENT,
        Ok((script, i)) if !script.flag(i, "gpm", true) => NOT_SUPPORTED,
        Ok((_, i)) => {
            // SAFETY: a non-null sample came from nvmlGpmSampleAlloc.
            (*sample.cast::<GpmSample>()).index = Some(i);
            SUCCESS
        }
        Err(e) => e,
    }
}

/// SM activity (`gpu.N.gpm_sm_active`), SM occupancy and tensor activity of the GPU the second
/// sample was taken on; any other metric is not supported.
#[cfg(not(feature = "legacy"))]
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmMetricsGet(request: *mut nvmlGpmMetricsGet_t) -> nvmlReturn_t {
    log("nvmlGpmMetricsGet");
    if !initialized() {
        return UNINITIALIZED;
    }
    if request.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: checked non-null; the caller owns the request.
    let request = &mut *request;
    if request.version != NVML_GPM_METRICS_GET_VERSION || request.sample1.is_null() || request.sample2.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: non-null samples came from nvmlGpmSampleAlloc.
    let Some(index) = (*request.sample2.cast::<GpmSample>()).index else {
        return INVALID_ARGUMENT;
    };
    let script = Script::load();
    let util: f64 = script.gpu_num(index, "util", 0.0);
    let count = request.numMetrics as usize;
    for metric in request.metrics.iter_mut().take(count) {
        let value = match metric.metricId {
            GPM_SM_UTIL => Some(script.gpu_num(index, "gpm_sm_active", util)),
            GPM_SM_OCCUPANCY => Some(script.gpu_num(index, "gpm_sm_occupancy", util / 2.0)),
            GPM_ANY_TENSOR_UTIL => Some(script.gpu_num(index, "gpm_tensor", 0.0)),
            _ => None,
        };
        match value {
            Some(v) => {
                metric.value = v;
                metric.nvmlReturn = SUCCESS;
            }
            None => metric.nvmlReturn = NOT_SUPPORTED,
        }
    }
    SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_last_assignment_and_ignores_junk() {
        let script = Script::parse("# comment\n\ncount = 2\nnonsense\n gpu.1.util=7 \ncount=3\ninit = no_permission\n");
        assert_eq!(script.count(), 3);
        assert_eq!(script.gpu_num(1, "util", 0u32), 7);
        assert_eq!(script.init_result(), nvmlReturn_enum_NVML_ERROR_NO_PERMISSION);
        let bad = Script::parse("count = 2\ncount = many\ninit = maybe\ngpu.0.lost = 1\ngpu.0.lost = perhaps\n");
        assert_eq!(bad.count(), 2);
        assert_eq!(bad.init_result(), SUCCESS);
        assert!(bad.lost(0));
    }

    #[test]
    fn handles_round_trip() {
        assert_eq!(index_of(handle(0)), Some(0));
        assert_eq!(index_of(handle(5)), Some(5));
        assert_eq!(index_of(std::ptr::null_mut()), None);
    }
}
