//! Any job's data files, seen through its processes' open descriptors: a Python job that parses
//! a CSV with the csv module gets `columnar` with the file and its bytes, and its twin that
//! reads a NumPy copy for as long does not; a job on a local Dask cluster that spends most of
//! its run starting the cluster gets `local-cluster`, and its in-process twin does not. Each
//! one in `run --json`, in the human report and in the history. Needs numpy and
//! dask[distributed] (`.ci/run` installs them).

use serde_json::Value;

use crate::harness::{json_rows, run_finished, Project, Tmux};

/// Rows of the CSV the test writes: about 17 MB.
const ROWS: usize = 400_000;

/// A project with `data/events.csv` (written here) and `data/amount.npy`, the same amounts as
/// NumPy wrote them.
fn project_with_data() -> Project {
    let project = Project::new();
    let mut csv = String::with_capacity(ROWS * 44);
    csv.push_str("event_id,user_id,amount,category,note\n");
    for i in 0..ROWS {
        let category = ["books", "games", "music", "tools", "toys"][i % 5];
        csv.push_str(&format!(
            "{i},{},{}.{:02},{category},plain\n",
            (i * 7919) % 50_000,
            (i * 31) % 1000,
            i % 100
        ));
    }
    project.write("data/events.csv", &csv);
    let made = std::process::Command::new("python3")
        .args([
            "-c",
            "import numpy as np; np.save('data/amount.npy', (np.arange(400000) * 31 % 1000).astype(np.float64))",
        ])
        .current_dir(project.path())
        .output()
        .expect("run python3");
    assert!(
        made.status.success(),
        "numpy: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    project
}

fn hint<'a>(run: &'a Value, id: &str) -> Option<&'a Value> {
    run["verdict"]["hints"].as_array()?.iter().find(|h| h["id"] == id)
}

fn json_run(project: &Project, command: &str) -> Value {
    let done = project.run(&["run", "--once", "--json", "--", command]);
    assert!(done.status.success(), "`{command}`: {}", done.stderr);
    run_finished(&json_rows(&done.stdout)).clone()
}

#[test]
fn a_job_parsing_a_csv_gets_columnar_and_its_numpy_twin_does_not() {
    let project = project_with_data();
    // Two passes over the CSV with the csv module, every column parsed.
    project.write(
        "from_csv.py",
        "import csv\nfor _ in range(2):\n    total = 0.0\n    with open('data/events.csv', newline='') as f:\n        \
         for row in csv.DictReader(f):\n            total += float(row['amount'])\nprint(total)\n",
    );
    // The twin keeps its copy open as long, working on the array.
    project.write(
        "from_npy.py",
        "import time\nimport numpy as np\nwith open('data/amount.npy', 'rb') as f:\n    a = np.load(f)\n    \
         end = time.time() + 2.0\n    while time.time() < end:\n        total = float(np.sqrt(a * a).sum())\nprint(total)\n",
    );
    let csv_size = std::fs::metadata(project.path().join("data/events.csv"))
        .expect("csv")
        .len();
    let run = json_run(&project, "python3 from_csv.py");
    let files = run["files_read"]
        .as_array()
        .unwrap_or_else(|| panic!("no files_read: {run:#}"));
    let csv = files
        .iter()
        .find(|f| f["path"] == "data/events.csv")
        .unwrap_or_else(|| panic!("the CSV is not among the files read: {run:#}"));
    assert_eq!(
        (csv["format"].as_str(), csv["size_bytes"].as_u64()),
        (Some("csv"), Some(csv_size))
    );
    assert!(csv["open_pct"].as_f64().is_some_and(|p| p >= 50.0), "{csv}");
    assert!(csv["bytes"].as_u64().is_some_and(|b| b > 0), "{csv}");
    let columnar = hint(&run, "columnar").unwrap_or_else(|| panic!("no columnar: {:#}", run["verdict"]));
    assert_eq!(columnar["file"], "data/events.csv", "{columnar}");
    assert_eq!(columnar["format"], "csv");
    assert_eq!(columnar["size_bytes"].as_u64(), Some(csv_size));
    assert!(
        columnar["text"]
            .as_str()
            .is_some_and(|t| t.contains("data/events.parquet")),
        "{columnar}"
    );
    assert!(
        run["description"]["files_read"]
            .as_str()
            .is_some_and(|l| l.starts_with("files read: data/events.csv")),
        "{:#}",
        run["description"]
    );
    let twin = json_run(&project, "python3 from_npy.py");
    let npy = twin["files_read"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["path"] == "data/amount.npy"))
        .unwrap_or_else(|| panic!("the copy is read too: {twin:#}"));
    assert_eq!(npy["format"], "npy");
    // np.load read the whole file through the descriptor, once (its header may be read twice:
    // a page more).
    let (read, size) = (
        npy["bytes"].as_u64().unwrap_or(0),
        npy["size_bytes"].as_u64().unwrap_or(0),
    );
    assert!(read >= size && read <= size + 64 * 1024, "{npy}");
    assert!(hint(&twin, "columnar").is_none(), "{:#}", twin["verdict"]);
    // The human report says the same, and the history keeps each file.
    let human = project.run(&["run", "--once", "--", "python3 from_csv.py"]);
    assert!(human.stderr.contains("files read: data/events.csv"), "{}", human.stderr);
    assert!(human.stderr.contains("was open for"), "{}", human.stderr);
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT r.command, f.path, f.format, f.size_bytes, list_contains(r.hint_ids, 'columnar') AS hinted \
                 FROM files_read f JOIN runs r USING (run_id) WHERE f.path LIKE 'data/%' ORDER BY r.started_at",
                "--json",
            ])
            .stdout,
    );
    let of = |command: &str| rows.iter().find(|r| r["command"] == command).cloned();
    let kept = of("python3 from_csv.py").unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(
        (kept["format"].as_str(), kept["hinted"].as_bool()),
        (Some("csv"), Some(true)),
        "{kept}"
    );
    assert_eq!(kept["size_bytes"].as_u64(), Some(csv_size));
    // The TUI shows the hint under the verdict.
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"from-csv\"\ncommand = [\"python3\", \"from_csv.py\"]\n",
    );
    let tmux = Tmux::looptop(&project);
    tmux.wait_for("→ data/events.csv");
    tmux.keys("q");
    tmux.wait_for("looptop-exited-");
    let twin_kept = of("python3 from_npy.py").unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(
        (twin_kept["format"].as_str(), twin_kept["hinted"].as_bool()),
        (Some("npy"), Some(false))
    );
}

/// Sums of the array in 8 chunks of about a quarter second of work each (the file open
/// meanwhile, as a reader that streams it), on a local Dask cluster of two worker processes or
/// in this process.
const CHUNKS: &str = "import sys, time\nimport numpy as np\n\ndef work(i):\n    with open('data/amount.npy', 'rb') as f:\n        \
a = np.load(f)\n        end = time.time() + 0.25\n        total = 0.0\n        while time.time() < end:\n            \
total += float(np.sqrt(a * a).sum())\n    return total\n\nif __name__ == '__main__':\n    if sys.argv[1] == 'dask':\n        from dask.distributed import Client, LocalCluster\n        \
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:\n            \
print(sum(client.gather(client.map(work, range(8), pure=False))))\n    else:\n        print(sum(work(i) for i in range(8)))\n";

#[test]
fn a_local_dask_cluster_that_mostly_starts_gets_local_cluster_and_its_in_process_twin_does_not() {
    let project = project_with_data();
    project.write("chunks.py", CHUNKS);
    let run = json_run(&project, "python3 chunks.py dask");
    let cluster = &run["cluster"];
    assert_eq!(
        (cluster["engine"].as_str(), cluster["workers"].as_u64()),
        (Some("dask"), Some(2)),
        "{run:#}"
    );
    let found = hint(&run, "local-cluster").unwrap_or_else(|| panic!("no local-cluster: {run:#}"));
    assert_eq!(found["engine"], "dask");
    assert!(found["startup_pct"].as_f64().is_some_and(|p| p >= 20.0), "{found}");
    let npy_size = std::fs::metadata(project.path().join("data/amount.npy"))
        .expect("npy")
        .len();
    assert!(found["input_bytes"].as_u64().is_some_and(|b| b >= npy_size), "{found}");
    assert!(
        found["text"]
            .as_str()
            .is_some_and(|t| t.contains("an in-process engine such as DuckDB or polars")),
        "{found}"
    );
    assert!(
        run["description"]["cluster"]
            .as_str()
            .is_some_and(|l| l.starts_with("local Dask cluster: 2 workers")),
        "{:#}",
        run["description"]
    );
    let twin = json_run(&project, "python3 chunks.py local");
    assert!(twin.get("cluster").is_none(), "{twin:#}");
    assert!(hint(&twin, "local-cluster").is_none(), "{:#}", twin["verdict"]);
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT command, cluster_engine, cluster_workers, cluster_startup_ms > 0 AS measured, \
                 list_contains(hint_ids, 'local-cluster') AS hinted FROM runs ORDER BY started_at",
                "--json",
            ])
            .stdout,
    );
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(
        (
            rows[0]["cluster_engine"].as_str(),
            rows[0]["cluster_workers"].as_u64(),
            rows[0]["hinted"].as_bool()
        ),
        (Some("dask"), Some(2), Some(true)),
        "{rows:#?}"
    );
    assert_eq!(rows[0]["measured"], true);
    assert_eq!(
        (rows[1]["cluster_engine"].as_str(), rows[1]["hinted"].as_bool()),
        (None, Some(false)),
        "{rows:#?}"
    );
    // The TUI shows the hint under the verdict.
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"chunks\"\ncommand = [\"python3\", \"chunks.py\", \"dask\"]\n",
    );
    let tmux = Tmux::looptop(&project);
    tmux.wait_for("of the run was cluster start-up");
    tmux.keys("q");
    tmux.wait_for("looptop-exited-");
}
