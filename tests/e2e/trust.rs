//! Trust: an unapproved looptop.toml loads no code, runs nothing and reaches nothing outside
//! the project; `looptop init` writes only the jobs it meant; the prompt shows exactly what
//! will run. Each test is one of the reproductions of a hostile repository.

use std::process::Command;

use crate::harness::Project;

const ESC: char = '\u{1b}';

/// A library whose constructor creates `PWNED` in the current directory when it is loaded.
fn build_evil_library(project: &Project) {
    project.write(
        "e.c",
        "#include <stdio.h>\n__attribute__((constructor)) static void p(void){FILE*f=fopen(\"PWNED\",\"w\");if(f)fclose(f);}\n",
    );
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o", "libevil.so", "e.c"])
        .current_dir(project.path())
        .output()
        .expect("gcc runs");
    assert!(
        built.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&built.stderr)
    );
}

fn pwned(project: &Project) -> bool {
    project.path().join("PWNED").exists()
}

/// Reproduction 1: `[gpu] nvml_lib` of an unapproved config is not loaded, by doctor or an
/// ad-hoc run, and both say it was ignored and how to approve.
#[test]
fn an_unapproved_nvml_lib_is_never_loaded() {
    let project = Project::new();
    build_evil_library(&project);
    project.write(
        "looptop.toml",
        "[gpu]\nnvml_lib = \"./libevil.so\"\n[[job]]\nname = \"a\"\ncommand = \"true\"\n",
    );

    let doctor = project.run(&["doctor"]);
    assert!(doctor.status.success(), "{}", doctor.stderr);
    assert!(!pwned(&project), "doctor loaded the repo's library");
    assert!(
        doctor.stdout.contains("ignored: [gpu] nvml_lib") && doctor.stdout.contains("looptop trust"),
        "doctor says what it ignored and how to approve:\n{}",
        doctor.stdout
    );

    let ad_hoc = project.run(&["run", "--once", "--", "true"]);
    assert!(ad_hoc.status.success(), "{}", ad_hoc.stderr);
    assert!(!pwned(&project), "an ad-hoc run loaded the repo's library");
    assert_eq!(
        ad_hoc.stderr.matches("[gpu] nvml_lib").count(),
        1,
        "said once: {}",
        ad_hoc.stderr
    );
    assert!(ad_hoc.stderr.contains("looptop trust"), "{}", ad_hoc.stderr);

    // The library does what the test says it does: once approved, looptop loads it.
    assert!(project.run(&["trust"]).status.success());
    let approved = project.run(&["doctor"]);
    assert!(approved.status.success(), "{}", approved.stderr);
    assert!(pwned(&project), "approved, the setting is used");
    assert!(!approved.stdout.contains("ignored:"), "{}", approved.stdout);
}

/// Reproduction 1, continued: `[history] path` and `[watch] paths` outside the project are not
/// used by an ad-hoc run of an unapproved config.
#[test]
fn an_unapproved_config_reaches_nothing_outside_the_project() {
    let project = Project::new();
    let outside = project.scratch.path().canonicalize().expect("scratch");
    for i in 0..20 {
        std::fs::create_dir_all(outside.join(format!("d{i}"))).expect("mkdir");
    }
    let history = outside.join("h.duckdb");
    project.write(
        "looptop.toml",
        &format!(
            "[history]\npath = \"{}\"\n[watch]\npaths = [\".\", \"{}\"]\n",
            history.display(),
            outside.display()
        ),
    );

    let ran = project.run(&["run", "--once", "--", "true"]);
    assert!(ran.status.success(), "{}", ran.stderr);
    assert!(!history.exists(), "history written outside the project");
    assert!(
        project.path().join(".looptop/history.duckdb").is_file(),
        "{}",
        ran.stderr
    );
    for key in ["[history] path", "[watch] paths"] {
        assert!(ran.stderr.contains(key), "{key} not named as ignored: {}", ran.stderr);
    }

    let mut session = project.spawn(&["--", "true"]);
    session.wait_watching();
    let watching = session
        .seen
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.starts_with("watching "))
        .expect("a watching notice")
        .to_string();
    let directories: usize = watching
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {watching:?}"));
    assert!(directories < 20, "outside directories watched: {watching}");
    session.interrupt();
}

/// An approval is for one file at one place: the same file copied into another project asks
/// again.
#[test]
fn an_approved_config_copied_elsewhere_is_not_approved() {
    let project = Project::new();
    let config = "[[job]]\nname = \"hello\"\ncommand = \"echo hi\"\n";
    project.write("looptop.toml", config);
    project.write("copy/looptop.toml", config);
    assert!(project.run(&["trust"]).status.success());
    assert!(project.run(&["run", "--once"]).status.success());
    let copied = project.run(&["run", "--once", "--config", "copy/looptop.toml"]);
    assert_eq!(copied.status.code(), Some(2), "{}", copied.stderr);
    assert!(copied.stderr.contains("has not been approved"), "{}", copied.stderr);
}

fn init_then_run_lint(project: &Project) {
    let init = project.run(&["init"]);
    assert!(init.status.success(), "{}", init.stderr);
    let text = std::fs::read_to_string(project.path().join("looptop.toml")).expect("looptop.toml");
    let lint = project.run(&["run", "--job", "lint", "--once"]);
    assert_ne!(lint.status.code(), Some(0), "a job init never meant ran:\n{text}");
    assert!(lint.stderr.contains("no job named `lint`"), "{}", lint.stderr);
    assert!(!pwned(project), "the repository chose a job:\n{text}");
}

/// Reproduction 2: text from package.json cannot add a job to what init writes (and approves).
#[test]
fn init_does_not_write_a_job_from_package_json_text() {
    let project = Project::new();
    project.write(
        "package.json",
        r#"{"scripts":{"test":"jest\n[[job]]\nname = \"lint\"\ncommand = \"touch PWNED\"\n#"}}"#,
    );
    init_then_run_lint(&project);
}

/// Reproduction 2, with a file name: a newline in it cannot start a line of TOML either.
#[test]
fn init_does_not_write_a_job_from_a_file_name() {
    let project = Project::new();
    project.write("a.sql", "SELECT 1;\n");
    let database = "w\n[[job]]\nname = \"lint\"\ncommand = \"touch PWNED\"\n#.duckdb";
    project.write(database, "");
    init_then_run_lint(&project);
    let file = project.path().join("looptop.toml");
    let text = std::fs::read_to_string(&file).expect("looptop.toml");
    let config = looptop::config::Config::parse(&file, &text, project.path()).expect("init's config parses");
    let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["a"], "{text}");
    let query = config.jobs[0].query.as_ref().expect("a query job");
    assert_eq!(query.database, Some(project.path().join(database)), "{text}");
}

/// Reproduction 3: escapes in a command or a job name are shown, not obeyed, wherever looptop
/// shows them: the refusal, `looptop trust`, and the run's status lines.
#[test]
fn the_trust_prompt_shows_escapes_instead_of_obeying_them() {
    let project = Project::new();
    project.write(
        "looptop.toml",
        "[[job]]\nname = \"train\\u001b]0;x\\u0007\"\ncommand = \"touch PWNED # \\r\\u001b[2K  [train]  python3 train.py --steps 20\"\n",
    );
    let shown = r"touch PWNED # \r\e[2K  [train]  python3 train.py --steps 20";
    let raw = |text: &str| text.contains([ESC, '\r', '\u{7}']);

    let refused = project.run(&["run", "--once"]);
    assert_eq!(refused.status.code(), Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains(shown), "{}", refused.stderr);
    assert!(refused.stderr.contains(r"[train\e]0;x\x07]"), "{}", refused.stderr);
    assert!(
        !raw(&refused.stderr),
        "raw escapes reach the terminal: {:?}",
        refused.stderr
    );

    let trusted = project.run(&["trust"]);
    assert!(trusted.status.success(), "{}", trusted.stderr);
    assert!(trusted.stdout.contains(shown), "{}", trusted.stdout);
    assert!(
        !raw(&trusted.stdout),
        "raw escapes reach the terminal: {:?}",
        trusted.stdout
    );

    let ran = project.run(&["run", "--once"]);
    assert!(ran.status.success(), "{}", ran.stderr);
    assert!(ran.stderr.contains(shown), "{}", ran.stderr);
    assert!(!raw(&ran.stderr), "raw escapes in the status lines: {:?}", ran.stderr);
}
