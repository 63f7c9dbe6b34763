//! The Python profile on real runs: real python3 programs under the real binary, read with
//! py-spy. A planted hot loop is named by function, file and line (in `run_finished`, the
//! `python-loop` hint and the history's `frames`); its vectorized twin gets no `python-loop`; a
//! process that forbids tracing gives one clear notice and a normal verdict.

use serde_json::Value;

use crate::harness::{json_rows, run_finished, Project};

/// The line of `LOOP` that does the work.
const HOT_LINE: u64 = 8;

/// A pure-Python feature loop over rows; line 8 is the hot one.
const LOOP: &str = "import time


def row_features(rows):
    out = []
    for row in rows:
        total = 0.0
        for v in row: total += v * v + 1.0 / (v + 1.0)
        out.append(total)
    return out


rows = [[float(i + j) for j in range(60)] for i in range(1500)]
start = time.time()
while time.time() - start < 1.6:
    row_features(rows)
";

/// The same features with NumPy: the time goes to native code on whole arrays.
const VECTORIZED: &str = "import time

import numpy as np


def row_features(rows):
    return (rows * rows + 1.0 / (rows + 1.0)).sum(axis=1)


rows = np.arange(1500 * 4000, dtype=np.float64).reshape(-1, 4000)
start = time.time()
while time.time() - start < 1.6:
    row_features(rows)
";

fn hint<'a>(finished: &'a Value, id: &str) -> Option<&'a Value> {
    finished["verdict"]["hints"]
        .as_array()
        .and_then(|hints| hints.iter().find(|h| h["id"] == id))
}

#[test]
fn a_planted_hot_loop_is_named_by_function_file_and_line() {
    let project = Project::new();
    project.write("features.py", LOOP);
    let events = project.run_once_json("python3 features.py");
    let finished = run_finished(&events);
    let profile = &finished["profile"];
    assert!(profile["samples"].as_u64().is_some_and(|n| n >= 20), "{profile:#}");
    let top = &profile["frames"][0];
    assert_eq!(
        (&top["function"], &top["file"], &top["line"], &top["idle"]),
        (
            &Value::from("row_features"),
            &Value::from("features.py"),
            &Value::from(HOT_LINE),
            &Value::from(false)
        ),
        "{profile:#}"
    );
    assert!(top["share_pct"].as_f64().is_some_and(|s| s >= 40.0), "{profile:#}");
    let main = &profile["threads"][0];
    assert_eq!(main["name"], "MainThread", "{profile:#}");
    assert!(main["cpu_pct"].as_f64().is_some_and(|c| c >= 80.0), "{profile:#}");
    let keys: Vec<&str> = top
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 5, "exactly function, file, line, share_pct, idle: {keys:?}");
    let looped = hint(finished, "python-loop").unwrap_or_else(|| panic!("no python-loop: {finished:#}"));
    assert_eq!(
        (&looped["file"], &looped["line"]),
        (&Value::from("features.py"), &Value::from(HOT_LINE))
    );
    assert!(
        looped["text"]
            .as_str()
            .is_some_and(|t| t.contains("features.py:8 in row_features()") && t.contains("vectorize")),
        "{looped:#}"
    );
    assert!(
        finished["description"]["profile"][0]
            .as_str()
            .is_some_and(|l| l.starts_with("where the time goes")),
        "{finished:#}"
    );
    // The history keeps the frames and the threads.
    let done = project.run(&[
        "query",
        "SELECT f.function, f.file, f.line, f.idle, t.name FROM frames f JOIN profile_threads t USING (run_id) \
         WHERE f.rank = 1 AND t.rank = 1",
        "--json",
    ]);
    assert!(done.status.success(), "{}", done.stderr);
    let rows = json_rows(&done.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            &rows[0]["function"],
            &rows[0]["file"],
            &rows[0]["line"],
            &rows[0]["name"]
        ),
        (
            &Value::from("row_features"),
            &Value::from("features.py"),
            &Value::from(HOT_LINE),
            &Value::from("MainThread")
        )
    );
}

#[test]
fn the_vectorized_twin_gets_no_python_loop_hint() {
    let project = Project::new();
    project.write("features.py", VECTORIZED);
    let events = project.run_once_json("python3 features.py");
    let finished = run_finished(&events);
    let profile = &finished["profile"];
    assert!(profile["samples"].as_u64().is_some_and(|n| n >= 20), "{profile:#}");
    assert!(
        profile["frames"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f["function"] == "row_features" || f["function"] == "_sum")),
        "the time is still seen where it goes: {profile:#}"
    );
    assert!(hint(finished, "python-loop").is_none(), "{finished:#}");
}

#[test]
fn profiling_can_be_turned_off() {
    let project = Project::new();
    project.write("features.py", LOOP);
    project.write(
        "looptop.toml",
        "[profile]\npython = false\n\n[[job]]\nname = \"features\"\ncommand = \"python3 features.py\"\n",
    );
    let done = project.run(&["run", "--once", "--json", "--trust"]);
    assert!(done.status.success(), "{}", done.stderr);
    let events = json_rows(&done.stdout);
    let finished = run_finished(&events);
    assert!(finished.get("profile").is_none(), "{finished:#}");
    assert!(hint(finished, "python-loop").is_none(), "{finished:#}");
    project.write("looptop.toml", "[profile]\nrate_hz = 0\n");
    let bad = project.run(&["run", "--once", "--", "true"]);
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("rate_hz"), "{}", bad.stderr);
}

#[test]
fn a_process_that_forbids_tracing_gets_one_clear_notice_and_a_normal_verdict() {
    let project = Project::new();
    project.write(
        "locked.py",
        "import ctypes\nimport time\n\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0\n\
         start = time.time()\nwhile time.time() - start < 1.5:\n    sum(i * i for i in range(1000))\n",
    );
    let mut command = project.looptop(&["run", "--once", "--json", "--", "python3 locked.py"]);
    // Root may trace anything with CAP_SYS_PTRACE: run looptop without it, as a user would be.
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        let mut wrapped = std::process::Command::new("setpriv");
        wrapped
            .args(["--bounding-set", "-sys_ptrace"])
            .arg(program)
            .args(args)
            .current_dir(project.path());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        command = wrapped;
    }
    let output = command.output().expect("run looptop (setpriv is part of util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let events = json_rows(&stdout);
    let notices: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "notice" && e["message"].as_str().is_some_and(|m| m.contains("python profile")))
        .collect();
    assert_eq!(notices.len(), 1, "{events:#?}");
    let message = notices[0]["message"].as_str().unwrap_or_default();
    for needed in [
        "ptrace",
        "kernel.yama.ptrace_scope",
        "CAP_SYS_PTRACE",
        "--cap-add SYS_PTRACE",
    ] {
        assert!(message.contains(needed), "{needed} missing: {message}");
    }
    let finished = run_finished(&events);
    assert_eq!(finished["outcome"], "pass");
    assert!(
        finished["verdict"]["kind"].as_str().is_some_and(|k| k != "too-short"),
        "{finished:#}"
    );
}
