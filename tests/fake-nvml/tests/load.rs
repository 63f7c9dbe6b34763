//! Loads the fake library through nvml-wrapper, as looptop does, and checks the scripted readings.
//! One test function: the script and log are named by process-wide environment variables.

#[path = "../../e2e/fake_nvml.rs"]
mod fake_nvml;

use fake_nvml::{fake_nvml_lib, Script};
use nvml_wrapper::enum_wrappers::device::{Clock, Sampling, TemperatureSensor};
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;
use nvml_wrapper::Nvml;

#[test]
fn nvml_wrapper_reads_the_script() {
    let lib = fake_nvml_lib(false);
    let legacy_lib = fake_nvml_lib(true);
    assert_ne!(lib, legacy_lib);

    let dir = std::env::temp_dir().join(format!("fake-nvml-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = Script::new(dir.join("script"));
    let log = dir.join("log");
    std::env::set_var("FAKE_NVML_SCRIPT", script.path());
    std::env::set_var("FAKE_NVML_LOG", &log);

    script.set("init", "driver_not_loaded");
    let err = Nvml::builder().lib_path(lib.as_os_str()).init().err();
    assert!(matches!(err, Some(NvmlError::DriverNotLoaded)), "{err:?}");
    script.set("init", "no_permission");
    let err = Nvml::builder().lib_path(lib.as_os_str()).init().err();
    assert!(matches!(err, Some(NvmlError::NoPermission)), "{err:?}");

    script.set("init", "ok");
    let nvml = Nvml::builder().lib_path(lib.as_os_str()).init().expect("init");
    assert_eq!(nvml.sys_driver_version().expect("driver"), "999.99.fake");
    assert_eq!(nvml.sys_nvml_version().expect("nvml"), "12.999.fake");
    script.set("driver", "550.54.15");
    assert_eq!(nvml.sys_driver_version().expect("driver"), "550.54.15");

    assert_eq!(nvml.device_count().expect("count"), 1);
    script.set("count", 2).set("count", "lots"); // a bad value is ignored
    assert_eq!(nvml.device_count().expect("count"), 2);
    assert!(matches!(nvml.device_by_index(2).err(), Some(NvmlError::InvalidArg)));

    let gpu0 = nvml.device_by_index(0).expect("gpu 0");
    let gpu1 = nvml.device_by_index(1).expect("gpu 1");
    assert_eq!(gpu0.name().expect("name"), "Fake GPU 0");
    assert_eq!(gpu1.uuid().expect("uuid"), "GPU-fake-1");
    script.set("gpu.0.name", "NVIDIA H100 80GB HBM3");
    assert_eq!(gpu0.name().expect("name"), "NVIDIA H100 80GB HBM3");

    // Defaults, then scripted values.
    let util = gpu0.utilization_rates().expect("util");
    assert_eq!((util.gpu, util.memory), (0, 0));
    let mem = gpu0.memory_info().expect("memory");
    assert_eq!((mem.total, mem.used, mem.free), (85_899_345_920, 0, 85_899_345_920));
    assert_eq!(gpu0.power_usage().expect("power"), 100_000);
    assert_eq!(gpu0.enforced_power_limit().expect("limit"), 700_000);
    assert_eq!(gpu0.temperature(TemperatureSensor::Gpu).expect("temp"), 40);
    assert_eq!(gpu0.clock_info(Clock::SM).expect("clock"), 1980);
    script
        .set("gpu.0.util", 55)
        .set("gpu.0.mem_util", 20)
        .set("gpu.0.mem_total", 1000)
        .set("gpu.0.mem_used", 300)
        .set("gpu.0.power_mw", 250_000)
        .set("gpu.0.power_limit_mw", 350_000)
        .set("gpu.0.temp_c", 71)
        .set("gpu.0.sm_clock_mhz", 1410);
    let util = gpu0.utilization_rates().expect("util");
    assert_eq!((util.gpu, util.memory), (55, 20));
    let mem = gpu0.memory_info().expect("memory");
    assert_eq!((mem.total, mem.used, mem.free), (1000, 300, 700));
    assert_eq!(gpu0.power_usage().expect("power"), 250_000);
    assert_eq!(gpu0.enforced_power_limit().expect("limit"), 350_000);
    assert_eq!(gpu0.temperature(TemperatureSensor::Gpu).expect("temp"), 71);
    assert_eq!(gpu0.clock_info(Clock::SM).expect("clock"), 1410);

    // Compute processes: none, then two (one without a memory reading).
    assert!(gpu0.running_compute_processes().expect("procs").is_empty());
    script.set("gpu.0.procs", "100:1048576 200:na bad 300:");
    let procs = gpu0.running_compute_processes().expect("procs");
    assert_eq!(procs.len(), 2, "{procs:?}");
    assert_eq!(
        (procs[0].pid, &procs[0].used_gpu_memory),
        (100, &UsedGpuMemory::Used(1_048_576))
    );
    assert_eq!(
        (procs[1].pid, &procs[1].used_gpu_memory),
        (200, &UsedGpuMemory::Unavailable)
    );
    assert_eq!(procs[0].gpu_instance_id, None);

    // Process utilization: no samples is NotFound, as from a real driver; samples are stamped now
    // and only those newer than the last seen time stamp come back.
    assert!(matches!(
        gpu0.process_utilization_stats(None).err(),
        Some(NvmlError::NotFound)
    ));
    script.set("gpu.0.proc_util", "100:30:10 junk 200:5:1");
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    let samples = gpu0.process_utilization_stats(now_us - 1).expect("samples");
    assert_eq!(samples.len(), 2, "{samples:?}");
    assert_eq!((samples[0].pid, samples[0].sm_util, samples[0].mem_util), (100, 30, 10));
    assert_eq!((samples[1].pid, samples[1].sm_util, samples[1].mem_util), (200, 5, 1));
    assert!(samples.iter().all(|s| s.timestamp >= now_us));
    let future = now_us + 3_600_000_000;
    assert!(matches!(
        gpu0.process_utilization_stats(future).err(),
        Some(NvmlError::NotFound)
    ));

    // A container's processes: the driver reports their host pids.
    script.set("host_pid_offset", 100_000);
    let procs = gpu0.running_compute_processes().expect("procs");
    assert_eq!(procs[0].pid, 100_100, "{procs:?}");
    let samples = gpu0.process_utilization_stats(now_us - 1).expect("samples");
    assert_eq!(samples[0].pid, 100_100);
    script.set("host_pid_offset", 0);

    // Finer utilization samples: the one reading by default, a scripted series, only newer ones.
    let values = |samples: Vec<nvml_wrapper::struct_wrappers::device::Sample>| -> Vec<u32> {
        samples
            .iter()
            .map(|s| match s.value {
                SampleValue::U32(v) => v,
                ref other => panic!("not a U32 sample: {other:?}"),
            })
            .collect()
    };
    assert_eq!(
        values(gpu0.samples(Sampling::GpuUtilization, None).expect("samples")),
        vec![55]
    );
    script.set("gpu.0.util_samples", "90 0 0 85");
    let fine = gpu0
        .samples(Sampling::GpuUtilization, now_us - 10_000)
        .expect("samples");
    assert!(fine.windows(2).all(|w| w[0].timestamp < w[1].timestamp), "{fine:?}");
    assert_eq!(values(fine), vec![90, 0, 0, 85]);
    assert!(matches!(
        gpu0.samples(Sampling::GpuUtilization, future).err(),
        Some(NvmlError::NotFound)
    ));

    // GPM: SM activity between two samples, by default the utilization; then scripted.
    assert!(gpu0.gpm_support().expect("gpm support"));
    let first = gpu0.gpm_sample().expect("gpm sample");
    let second = gpu0.gpm_sample().expect("gpm sample");
    let ids = [
        GpmMetricId::SmUtil,
        GpmMetricId::AnyTensorUtil,
        GpmMetricId::NvlinkTotalRxPerSec,
    ];
    let metrics = gpm_metrics_get(&nvml, &first, &second, &ids).expect("metrics");
    assert_eq!(metrics[0].as_ref().expect("sm").value, 55.0);
    assert_eq!(metrics[1].as_ref().expect("tensor").value, 0.0);
    assert!(matches!(metrics[2], Err(NvmlError::NotSupported)));
    script.set("gpu.0.gpm_sm_active", 7.5);
    let metrics = gpm_metrics_get(&nvml, &first, &second, &ids[..1]).expect("metrics");
    assert_eq!(metrics[0].as_ref().expect("sm").value, 7.5);
    drop((first, second));
    script.set("gpu.1.gpm", 0);
    assert!(!gpu1.gpm_support().expect("gpm support"));
    assert!(matches!(gpu1.gpm_sample().err(), Some(NvmlError::NotSupported)));

    // MIG mode: no utilization of any kind.
    assert_eq!(gpu1.mig_mode().expect("mig").current, 0);
    script.set("gpu.1.mig", 1);
    assert_eq!(gpu1.mig_mode().expect("mig").current, 1);
    assert!(matches!(gpu1.utilization_rates().err(), Some(NvmlError::NotSupported)));
    assert!(matches!(
        gpu1.samples(Sampling::GpuUtilization, None).err(),
        Some(NvmlError::NotSupported)
    ));
    assert!(gpu1.memory_info().is_ok(), "memory is still read");
    script.set("gpu.1.mig", 0);

    // Unsupported readings and a lost GPU.
    script.set("gpu.1.unsupported", "util, temp,procs");
    assert!(matches!(gpu1.utilization_rates().err(), Some(NvmlError::NotSupported)));
    assert!(matches!(
        gpu1.temperature(TemperatureSensor::Gpu).err(),
        Some(NvmlError::NotSupported)
    ));
    assert!(matches!(
        gpu1.running_compute_processes().err(),
        Some(NvmlError::NotSupported)
    ));
    assert_eq!(gpu1.power_usage().expect("power"), 100_000);
    script.set("gpu.1.lost", 1);
    assert!(matches!(gpu1.power_usage().err(), Some(NvmlError::GpuLost)));
    assert!(matches!(gpu1.name().err(), Some(NvmlError::GpuLost)));
    assert!(matches!(nvml.device_by_index(1).err(), Some(NvmlError::GpuLost)));
    assert_eq!(gpu0.power_usage().expect("gpu 0 unaffected"), 250_000);

    drop(nvml);
    let calls = std::fs::read_to_string(&log).expect("log");
    let calls: Vec<&str> = calls.lines().collect();
    for expected in [
        "nvmlInit_v2",
        "nvmlDeviceGetUtilizationRates 0",
        "nvmlDeviceGetPowerUsage 1",
        "nvmlGpmSampleFree",
        "nvmlShutdown",
    ] {
        assert!(calls.contains(&expected), "{expected:?} not in log {calls:?}");
    }
    assert_eq!(calls.last(), Some(&"nvmlShutdown"));

    // A driver too old for the process calls: nvml-wrapper cannot load their symbols.
    let nvml = Nvml::builder()
        .lib_path(legacy_lib.as_os_str())
        .init()
        .expect("init legacy");
    let gpu0 = nvml.device_by_index(0).expect("gpu 0");
    let err = gpu0.running_compute_processes().err();
    assert!(matches!(err, Some(NvmlError::FailedToLoadSymbol(_))), "{err:?}");
    let err = gpu0.process_utilization_stats(None).err();
    assert!(matches!(err, Some(NvmlError::FailedToLoadSymbol(_))), "{err:?}");
    let err = gpu0.samples(Sampling::GpuUtilization, None).err();
    assert!(matches!(err, Some(NvmlError::FailedToLoadSymbol(_))), "{err:?}");
    let err = gpu0.gpm_support().err();
    assert!(matches!(err, Some(NvmlError::FailedToLoadSymbol(_))), "{err:?}");
    let err = gpu0.mig_mode().err();
    assert!(matches!(err, Some(NvmlError::FailedToLoadSymbol(_))), "{err:?}");
    assert_eq!(gpu0.utilization_rates().expect("util").gpu, 55);
    drop(nvml);

    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}
