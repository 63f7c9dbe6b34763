//! Metrics pulled from a job's output (presets and custom regexes), and query jobs: a SQL file
//! run by `looptop exec-query` under DuckDB's profiler, with its hints.

use std::time::Duration;

use crate::harness::{json_rows, run_finished, trigger, Project};

#[test]
fn metrics_come_out_of_the_output_into_the_summary_and_the_history() {
    let project = Project::new();
    project.write(
        "looptop.toml",
        r#"[[job]]
name = "train"
command = "printf '  5%% 1/20 [00:00, 10.0it/s]\r 10%% 2/20 [00:00, 20.0it/s]\n'; echo 'step 1 loss=0.5'; sleep 0.2; printf 'step 2 loss=0.25'"
metrics = ["tqdm"]

[[job.metric]]
name = "loss"
regex = 'loss=([0-9.]+)'
"#,
    );
    let done = project.run(&["run", "--once", "--json", "--trust"]);
    assert!(done.status.success(), "{}", done.stderr);
    let events = json_rows(&done.stdout);
    let metrics = &run_finished(&events)["metrics"];
    assert_eq!(metrics[0]["name"], "it_per_s", "{metrics:#}");
    assert_eq!(
        (metrics[0]["last"].as_f64(), metrics[0]["mean"].as_f64()),
        (Some(20.0), Some(15.0))
    );
    assert_eq!(metrics[0]["unit"], "it/s");
    assert_eq!(metrics[1]["name"], "loss");
    assert_eq!(
        metrics[1]["last"], 0.25,
        "the last line has no newline and still counts"
    );
    assert_eq!(metrics[1]["count"], 2);
    let rows = json_rows(
        &project
            .run(&[
                "query",
                "SELECT name, count(*) AS n FROM metrics GROUP BY name ORDER BY name",
                "--json",
            ])
            .stdout,
    );
    assert_eq!(rows[0]["name"], "it_per_s", "{rows:?}");
    assert_eq!(rows[1]["name"], "loss");
    assert_eq!(
        rows[1]["n"], 1,
        "the second loss came 200 ms later but had no newline before the end"
    );
    let human = project.run(&["run", "--once", "--trust"]);
    assert!(
        human
            .stderr
            .contains("metrics: it_per_s 20 it/s (mean 15, 2 values) · loss 0.250"),
        "{}",
        human.stderr
    );
}

/// A project with a CSV table of `n` rows and a query over it.
pub fn query_project(n: u32) -> Project {
    let project = Project::new();
    let mut csv = String::from("user_id,amount\n");
    for i in 0..n {
        csv.push_str(&format!("{},{}.5\n", i % 100, i % 7));
    }
    project.write("data/events.csv", &csv);
    project.write(
        "queries/totals.sql",
        "-- per-user totals\nSELECT user_id, sum(amount) AS total FROM 'data/events.csv' GROUP BY user_id;\n",
    );
    project.write(
        "looptop.toml",
        "[watch]\npaths = [\"queries\"]\n\n[[job]]\nname = \"totals\"\nsql = \"queries/totals.sql\"\n",
    );
    project
}

#[test]
fn a_query_job_keeps_its_plan_with_the_files_it_read() {
    let project = query_project(5000);
    let done = project.run(&["run", "--once", "--json", "--trust"]);
    assert!(done.status.success(), "{}", done.stderr);
    let events = json_rows(&done.stdout);
    let run = run_finished(&events);
    assert_eq!(run["kind"], "query", "{run:#}");
    let query = &run["query"];
    assert_eq!(query["rows"], 100, "{query:#}");
    assert!(query["bytes_read"].as_u64().is_some_and(|b| b > 0), "{query:#}");
    assert!(
        query["operators"][0]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{query:#}"
    );
    // The plan: the aggregate over a projection of the scan, which carries what the file holds.
    let plan = &query["plan"];
    assert_eq!(plan["name"], "HASH_GROUP_BY", "{plan:#}");
    let scan = &plan["children"][0]["children"][0];
    assert_eq!(scan["rows"], 5000, "{plan:#}");
    assert_eq!(scan["file"]["format"], "csv", "{scan:#}");
    assert_eq!(scan["file"]["columns"], 2);
    assert_eq!(scan["file"]["source"], "data/events.csv");
    assert_eq!(scan["file"]["read"][0]["sampled"], 5000);
    assert!(
        query["hints"].as_array().is_some_and(Vec::is_empty),
        "a 50 kB CSV is not worth a Parquet copy: {query:#}"
    );
    let rows = json_rows(
        &project
            .run(&["query", "SELECT query_rows, query_profile FROM runs", "--json"])
            .stdout,
    );
    assert_eq!(rows[0]["query_rows"], 100, "{rows:?}");
    let kept: serde_json::Value =
        serde_json::from_str(rows[0]["query_profile"].as_str().unwrap_or("null")).expect("JSON text");
    assert_eq!(&kept["plan"], plan, "the history keeps the whole plan");
}

#[test]
fn a_join_that_fans_out_is_named_on_the_first_run_under_a_group_by() {
    let project = query_project(1000);
    project.write(
        "queries/totals.sql",
        "SELECT e.user_id, count(*) AS n FROM 'data/events.csv' e JOIN 'data/events.csv' f ON e.user_id = f.user_id GROUP BY 1;\n",
    );
    let done = project.run(&["run", "--once", "--json", "--trust"]);
    assert!(done.status.success(), "{}", done.stderr);
    let events = json_rows(&done.stdout);
    let query = &run_finished(&events)["query"];
    assert_eq!(query["rows"], 100, "{query:#}");
    let hint = query["hints"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["id"] == "join-fan-out"))
        .unwrap_or_else(|| panic!("no join-fan-out: {query:#}"));
    assert_eq!(hint["keys"], serde_json::json!(["user_id"]), "{hint:#}");
    assert_eq!(
        (hint["left_rows"].as_u64(), hint["right_rows"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(hint["rows"], 10_000);
    let ids = json_rows(&project.run(&["query", "SELECT hint_ids FROM runs", "--json"]).stdout);
    assert!(ids[0]["hint_ids"].to_string().contains("join-fan-out"), "{ids:?}");
}

#[test]
fn a_result_that_fans_out_between_runs_is_flagged() {
    let project = query_project(1000);
    let mut session = project.spawn(&["--trust"]);
    session.wait_watching();
    let first = session.next("run_finished");
    assert_eq!(first["query"]["rows"], 100, "{first:#}");
    // A join on a key that is not unique: every row meets 50 partners.
    project.write(
        "queries/totals.sql",
        "SELECT e.user_id, e.amount FROM 'data/events.csv' e JOIN 'data/events.csv' f ON e.user_id = f.user_id;\n",
    );
    let second = session.next("run_finished");
    assert_eq!(trigger(&second), vec!["queries/totals.sql"]);
    assert_eq!(second["query"]["rows"], 10_000, "{second:#}");
    let hints: Vec<&str> = second["query"]["hints"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|h| h["id"] == "row-jump")
                .filter_map(|h| h["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(hints.iter().any(|h| h.contains("from 100 to 10000 rows")), "{hints:?}");
    session.expect_quiet("run_started", Duration::from_millis(300));
    assert!(session.interrupt().success());
}
