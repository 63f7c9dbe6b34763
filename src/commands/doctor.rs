//! `looptop doctor`: what looptop can see on this machine, and why not where it cannot: the
//! config, the history file, sampling, inotify limits, NVML and each GPU (with one reading, so
//! a feature the card refuses shows here rather than during a run).

use serde_json::{json, Value};

use super::Failure;
use crate::cli::DoctorArgs;
use crate::config::Config;
use crate::sample::GpuInfo;
use crate::sources::sampler::gpu::GpuProbe;
use crate::store::reader::History;
use crate::store::StoreError;
use crate::text::escape;

/// Yama's ptrace policy: whether looptop may read the Python stacks of the jobs it starts.
const YAMA_PTRACE_SCOPE: &str = "/proc/sys/kernel/yama/ptrace_scope";

const INOTIFY_LIMITS: [(&str, &str); 2] = [
    ("max_user_watches", "/proc/sys/fs/inotify/max_user_watches"),
    ("max_user_instances", "/proc/sys/fs/inotify/max_user_instances"),
];

/// `looptop doctor`; exits 0 whatever it finds (it is a report, not a check).
pub fn doctor(config: &Config, args: &DoctorArgs) -> Result<u8, Failure> {
    let report = gather(config);
    if args.json {
        println!("{report}");
    } else {
        print!("{}", render(&report));
    }
    Ok(0)
}

fn gather(config: &Config) -> Value {
    let config_part = match &config.file {
        Some(file) => json!({
            "file": file.display().to_string(),
            "jobs": config.jobs.iter().map(|j| j.name.clone()).collect::<Vec<_>>(),
            "approved": config.may_run_jobs(),
            "ignored": config.ignored_settings().iter().map(|i| json!({
                "key": i.key, "value": i.value, "why": i.why,
            })).collect::<Vec<_>>(),
        }),
        None => json!({ "file": null, "root": config.root.display().to_string() }),
    };
    let history = match History::open(&config.history_path).and_then(|h| h.counts()) {
        Ok(counts) => json!({ "path": config.history_path.display().to_string(), "state": "ok", "runs": counts.runs,
                              "samples": counts.samples, "schema": counts.schema }),
        Err(StoreError::Missing { .. }) => {
            json!({ "path": config.history_path.display().to_string(), "state": "missing" })
        }
        Err(e) => {
            json!({ "path": config.history_path.display().to_string(), "state": "error", "error": e.to_string() })
        }
    };
    let inotify: serde_json::Map<String, Value> = INOTIFY_LIMITS
        .iter()
        .map(|(name, file)| {
            let value = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            ((*name).to_string(), json!(value))
        })
        .collect();
    let system = sysinfo::System::new().ok().map(|mut s| {
        s.refresh_memory();
        json!({ "cores": std::thread::available_parallelism().map_or(0, usize::from), "mem_total_bytes": s.total_memory() })
    });
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": config_part,
        "history": history,
        "sample_interval_ms": config.sampler.interval.as_millis(),
        "profile": {
            "python": config.profiler.python,
            "rate_hz": config.profiler.rate_hz,
            "ptrace_scope": std::fs::read_to_string(YAMA_PTRACE_SCOPE).ok().and_then(|s| s.trim().parse::<u8>().ok()),
        },
        "system": system,
        "inotify": inotify,
        "nvml": nvml(config),
    })
}

fn nvml(config: &Config) -> Value {
    let asked = config.sampler.gpu.nvml_lib.as_ref().map(|p| p.display().to_string());
    match GpuProbe::open(&config.sampler.gpu) {
        Err(why) => json!({ "available": false, "asked": asked, "reason": why.reason }),
        Ok((mut probe, notices)) => {
            let problems: Vec<String> = notices.into_iter().map(|n| n.message).collect();
            let readings = probe.read(&mut Vec::new());
            let devices: Vec<Value> = probe
                .devices()
                .into_iter()
                .map(|info: GpuInfo| {
                    let now = readings
                        .iter()
                        .find(|r| r.device.index == info.index)
                        .map(|r| &r.device);
                    json!({
                        "index": info.index,
                        "name": info.name,
                        "mem_total_bytes": info.mem_total_bytes,
                        "util_pct": now.and_then(|d| d.util_pct),
                        "mem_used_bytes": now.and_then(|d| d.mem_used_bytes),
                        "power_mw": now.and_then(|d| d.power_mw),
                        "temp_c": now.and_then(|d| d.temp_c),
                        "unavailable": info.missing,
                    })
                })
                .collect();
            json!({
                "available": true,
                "library": probe.library(),
                "driver": probe.driver_version(),
                "gpus": devices,
                "warnings": problems,
            })
        }
    }
}

/// "Python stacks 50 times a second; kernel.yama.ptrace_scope 1: ...".
fn profile_line(profile: &Value) -> String {
    if profile["python"] == Value::Bool(false) {
        return "off ([profile] python = false)".to_string();
    }
    let scope = match profile["ptrace_scope"].as_u64() {
        Some(scope @ (0 | 1)) => {
            format!("kernel.yama.ptrace_scope {scope}: looptop may read the jobs it starts")
        }
        Some(scope) => format!(
            "kernel.yama.ptrace_scope {scope}: tracing is denied, so jobs are not profiled \
             (`sudo sysctl kernel.yama.ptrace_scope=1`)"
        ),
        None => "no Yama ptrace policy here (in a container, profiling may need --cap-add SYS_PTRACE)".to_string(),
    };
    format!("Python stacks {} times a second; {scope}", profile["rate_hz"])
}

fn render(report: &Value) -> String {
    let mut out = format!("looptop {}\n", text(&report["version"]));
    let config = &report["config"];
    let config_line = if config["file"].is_null() {
        format!(
            "none found in {} or its parents (defaults; `looptop run -- CMD` needs none)",
            text(&config["root"])
        )
    } else {
        let jobs: Vec<String> = config["jobs"].as_array().into_iter().flatten().map(text).collect();
        format!("{} (jobs: {})", text(&config["file"]), jobs.join(", "))
    };
    line(&mut out, "config", &config_line);
    if config["approved"] == Value::Bool(false) {
        let mut trust = "not approved on this machine: its jobs do not run".to_string();
        for ignored in config["ignored"].as_array().into_iter().flatten() {
            // The values were escaped when they were recorded.
            let plain = |v: &Value| v.as_str().unwrap_or_default().to_string();
            trust.push_str(&format!(
                "\n{:11}ignored: {} = {} ({})",
                "",
                plain(&ignored["key"]),
                plain(&ignored["value"]),
                plain(&ignored["why"])
            ));
        }
        trust.push_str(&format!("\n{:11}approve it with `looptop trust` to use all of it", ""));
        line(&mut out, "trust", &trust);
    }
    let history = &report["history"];
    let history_line = match history["state"].as_str() {
        Some("ok") => format!(
            "{}: {} runs, {} samples, schema {}",
            text(&history["path"]),
            history["runs"],
            history["samples"],
            history["schema"]
        ),
        Some("missing") => format!("{}: not created yet (the first run creates it)", text(&history["path"])),
        _ => format!("{}: {}", text(&history["path"]), text(&history["error"])),
    };
    line(&mut out, "history", &history_line);
    let system = &report["system"];
    let memory_gib = system["mem_total_bytes"].as_f64().unwrap_or(0.0) / f64::from(1u32 << 30);
    line(
        &mut out,
        "sampling",
        &format!(
            "every {} ms; {} cores, {memory_gib:.1} GiB",
            report["sample_interval_ms"], system["cores"]
        ),
    );
    line(&mut out, "profile", &profile_line(&report["profile"]));
    let inotify = &report["inotify"];
    line(
        &mut out,
        "inotify",
        &format!(
            "max_user_watches {}, max_user_instances {} (one watch per watched directory)",
            inotify["max_user_watches"], inotify["max_user_instances"]
        ),
    );
    let nvml = &report["nvml"];
    if nvml["available"] == Value::Bool(false) {
        line(&mut out, "GPUs", &format!("none: {}", text(&nvml["reason"])));
        return out;
    }
    line(
        &mut out,
        "NVML",
        &format!("{}, driver {}", text(&nvml["library"]), text(&nvml["driver"])),
    );
    for gpu in nvml["gpus"].as_array().into_iter().flatten() {
        let gib = |v: &Value| {
            v.as_f64()
                .map_or("?".to_string(), |b| format!("{:.1}", b / f64::from(1u32 << 30)))
        };
        let mut description = format!(
            "{}, {} GiB; util {} %, {} GiB used, {} W, {} °C",
            text(&gpu["name"]),
            gib(&gpu["mem_total_bytes"]),
            or_na(&gpu["util_pct"]),
            gib(&gpu["mem_used_bytes"]),
            gpu["power_mw"]
                .as_f64()
                .map_or("N/A".to_string(), |mw| format!("{:.0}", mw / 1000.0)),
            or_na(&gpu["temp_c"]),
        );
        for missing in gpu["unavailable"].as_array().into_iter().flatten() {
            description.push_str(&format!("\n{:11}unavailable: {}", "", text(missing)));
        }
        line(&mut out, &format!("GPU {}", gpu["index"]), &description);
    }
    for warning in nvml["warnings"].as_array().into_iter().flatten() {
        line(&mut out, "warning", &text(warning));
    }
    out
}

fn line(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<10} {value}\n"));
}

/// A value of the report for a person: strings come from files, libraries and GPUs, so any
/// control character in them is shown, not sent to the terminal.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => escape(s).into_owned(),
        Value::Null => "unknown".to_string(),
        other => other.to_string(),
    }
}

fn or_na(value: &Value) -> String {
    if value.is_null() {
        "N/A".to_string()
    } else {
        value.to_string()
    }
}
