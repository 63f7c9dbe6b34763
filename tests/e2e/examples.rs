//! The shipped example runs as the README says it does.

use std::path::Path;

use crate::harness::{copy_tree, Project};

#[test]
fn the_quickstart_jobs_pass() {
    let project = Project::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    copy_tree(&example, &project.path());
    for job in ["test", "train"] {
        let done = project.run(&["run", "--once", "--trust", "--job", job]);
        assert!(done.status.success(), "job {job}: {}\n{}", done.stdout, done.stderr);
        assert!(done.stderr.contains(&format!("✔ {job} passed")), "{}", done.stderr);
    }
    assert!(
        project.path().join("checkpoints/last.txt").is_file(),
        "training wrote its checkpoint"
    );
}

/// The ML example: tests, training with metrics, pairs of queries over the data its `prepare`
/// job makes (each data hint fires on the first of a pair and is gone from its fixed twin), and a
/// feature loop whose Python profile names it (`python-loop`) beside its vectorized twin, and
/// sums over the data read as CSV (`columnar`), from a NumPy copy (its twin) and on a local Dask
/// cluster (`local-cluster`). Needs numpy, pytest and dask[distributed] (`.ci/run` installs them).
#[test]
fn the_ml_project_jobs_pass_and_say_what_they_see() {
    let project = Project::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ml-project");
    copy_tree(&example, &project.path());
    let finished = |job: &str| {
        let done = project.run(&["run", "--once", "--json", "--trust", "--job", job]);
        assert!(done.status.success(), "job {job}: {}", done.stderr);
        crate::harness::run_finished(&crate::harness::json_rows(&done.stdout)).clone()
    };
    let metric = |run: &serde_json::Value, name: &str| {
        run["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == name))
            .map(|m| m["last"].as_f64().unwrap_or(f64::NAN))
    };
    let test = finished("test");
    assert_eq!(metric(&test, "passed"), Some(2.0), "{test}");
    let train = finished("train");
    assert!(metric(&train, "loss").is_some_and(|l| l < 0.5), "{train}");
    assert!(metric(&train, "it_per_s").is_some(), "{train}");
    let prepare = finished("prepare");
    assert_eq!(prepare["query"]["rows"], 1, "{prepare}");
    assert!(project.path().join("data/events.parquet").is_file());
    let ids = |run: &serde_json::Value| -> Vec<String> {
        run["query"]["hints"]
            .as_array()
            .map(|h| h.iter().filter_map(|h| h["id"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    for (job, twin, hint) in [
        ("top-users-csv", "top-users-parquet", "columnar"),
        ("user-range", "user-range-sorted", "no-pruning"),
        ("toys-by-day", "toys-by-category", "no-pruning"),
        ("spend-by-country", "spend-by-country-dedup", "join-fan-out"),
        ("features-wide", "features-narrow", "narrow-types"),
        ("coupon-rate", "coupon-rate-apart", "sparse"),
        ("views-per-weekday", "views-per-weekday-sampled", "sample"),
    ] {
        let (shown, fixed) = (finished(job), finished(twin));
        assert!(
            ids(&shown).iter().any(|id| id == hint),
            "{job} gets {hint}: {:#}",
            shown["query"]
        );
        if hint == "columnar" {
            assert!(
                !ids(&shown).iter().any(|id| id == "narrow-types"),
                "the Parquet copy is the fix for {job}'s types too: {:#}",
                shown["query"]
            );
        }
        assert!(
            ids(&fixed).is_empty(),
            "{twin} is the fixed twin of {job}: no hint at all: {:#}",
            fixed["query"]
        );
    }
    // The feature loop is named by its profile; its vectorized twin is not.
    let python_loop = |run: &serde_json::Value| {
        run["verdict"]["hints"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["id"] == "python-loop"))
            .cloned()
    };
    let looped = finished("features-loop");
    let hint = python_loop(&looped).unwrap_or_else(|| panic!("no python-loop: {looped:#}"));
    assert_eq!(
        (hint["file"].as_str(), hint["function"].as_str()),
        (Some("features.py"), Some("features_loop")),
        "{hint:#}"
    );
    let vectorized = finished("features-numpy");
    assert!(python_loop(&vectorized).is_none(), "{vectorized:#}");
    // Any job's data files: the CSV parsed row by row gets `columnar`, the NumPy copy that
    // `prepare-arrays` writes does not; the same copy summed on a local Dask cluster gets
    // `local-cluster`, and in this process it does not.
    let verdict_ids = |run: &serde_json::Value| -> Vec<String> {
        run["verdict"]["hints"]
            .as_array()
            .map(|h| h.iter().filter_map(|h| h["id"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let from_csv = finished("spend-csv");
    assert!(verdict_ids(&from_csv).iter().any(|id| id == "columnar"), "{from_csv:#}");
    assert_eq!(from_csv["files_read"][0]["path"], "data/events.csv", "{from_csv:#}");
    finished("prepare-arrays");
    assert!(project.path().join("data/spend.npz").is_file());
    let from_npz = finished("spend-npz");
    let ids = verdict_ids(&from_npz);
    assert!(
        !ids.iter().any(|id| id == "columnar" || id == "local-cluster"),
        "{from_npz:#}"
    );
    let on_dask = finished("spend-dask");
    assert_eq!(on_dask["cluster"]["engine"], "dask", "{on_dask:#}");
    assert!(
        verdict_ids(&on_dask).iter().any(|id| id == "local-cluster"),
        "{on_dask:#}"
    );
}

/// The ML example's starved loader, on a machine without a GPU: its loader thread, and its
/// loader worker process, are pinned while the training loop waits, which looptop calls
/// input-bound (cause cpu) and names.
#[test]
fn the_starved_loader_example_is_input_bound_without_a_gpu() {
    let project = Project::new().with_env("LOOPTOP_NVML_LIB", "/nonexistent/libnvidia-ml.so.1");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ml-project");
    copy_tree(&example, &project.path());
    for (prefetch, kind, named) in [
        ("thread", "thread", "thread `loader`"),
        ("process", "process", "worker process `loader`"),
    ] {
        // Too few steps to learn (the job fails its accuracy check): its verdict is what counts.
        let cmd = format!("python3 train.py --steps 16 --loader starved --prefetch {prefetch}");
        let done = project.run(&["run", "--once", "--json", "--", &cmd]);
        let events = crate::harness::json_rows(&done.stdout);
        let verdict = &crate::harness::run_finished(&events)["verdict"];
        assert_eq!(
            (verdict["kind"].as_str(), verdict["cause"].as_str()),
            (Some("input-bound"), Some("cpu")),
            "{prefetch}: {verdict:#}"
        );
        assert_eq!(verdict["producer"]["kind"], kind, "{verdict:#}");
        assert!(
            verdict["summary"].as_str().is_some_and(|s| s.contains(named)),
            "{prefetch}: {verdict:#}"
        );
        // ... and points at the decoding function, from the run's Python profile.
        assert!(
            verdict["hints"].as_array().is_some_and(|hints| hints
                .iter()
                .any(|h| h["function"] == "decode_slow" && h["file"] == "loader.py")),
            "{prefetch}: {verdict:#}"
        );
    }
}

/// The binary of a Cargo example, built next to this test by `cargo test`.
fn cargo_example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is not built: `cargo test` builds the examples (or `cargo build --examples`)",
        path.display()
    );
    path
}

#[test]
fn the_training_step_example_shows_its_bottleneck_to_looptop() {
    let example = cargo_example("training_step");
    let project = Project::new().with_env("LOOPTOP_NVML_LIB", "/nonexistent/libnvidia-ml.so.1");
    for (job, load, compute, bound) in [("input", 40, 2, "input-bound"), ("compute", 2, 40, "compute-bound")] {
        project.write(
            "looptop.toml",
            &format!(
                "[[job]]\nname = \"{job}\"\ncommand = [{:?}, \"--steps\", \"40\", \"--load-ms\", \"{load}\", \"--compute-ms\", \"{compute}\"]\nmetrics = [\"tqdm\"]\n",
                example.display().to_string()
            ),
        );
        let done = project.run(&["run", "--once", "--json", "--trust"]);
        assert!(done.status.success(), "{job}: {}", done.stderr);
        let events = crate::harness::json_rows(&done.stdout);
        let finished = crate::harness::run_finished(&events);
        assert_eq!(finished["outcome"], "pass", "{finished}");
        let speed = finished["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == "it_per_s"))
            .unwrap_or_else(|| panic!("no it_per_s metric: {finished}"));
        assert!(speed["count"].as_u64().unwrap_or(0) >= 20, "{speed}");
        // Sampled: the busiest process is the example itself.
        let verdict = &finished["verdict"];
        assert!(verdict["busiest_cpu_pct"].as_f64().unwrap_or(0.0) > 0.0, "{verdict}");
        // Without a GPU too, looptop sees the step waiting on its `loader` thread, or not.
        if job == "input" {
            assert_eq!(
                (
                    verdict["kind"].as_str(),
                    verdict["cause"].as_str(),
                    verdict["producer"]["name"].as_str()
                ),
                (Some("input-bound"), Some("cpu"), Some("loader")),
                "{verdict:#}"
            );
        } else {
            assert_ne!(verdict["kind"], "input-bound", "{verdict:#}");
        }
        let log = std::fs::read_to_string(finished["log"].as_str().expect("log path")).expect("run log");
        assert!(log.contains(bound), "{job}: {log}");
    }
}

#[test]
fn the_training_step_example_on_cuda_without_a_driver_says_so() {
    let example = cargo_example("training_step");
    // A library that is not there stands for a machine without the NVIDIA driver.
    let out = std::process::Command::new(&example)
        .args(["--device", "cuda", "--steps", "2"])
        .env("TRAINING_STEP_CUDA_LIB", "/nonexistent/libcuda.so.1")
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--device cuda: cannot load the NVIDIA driver's /nonexistent/libcuda.so.1")
            && stderr.contains("--device cpu"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no step ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bad = std::process::Command::new(&example)
        .args(["--device", "tpu"])
        .output()
        .expect("run the example");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--device takes cpu or cuda, not `tpu`"));
}
