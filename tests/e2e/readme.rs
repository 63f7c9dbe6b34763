//! README.md's commands, run as written. Every `looptop …` and `cargo run --release -- …` line
//! of its `sh` code blocks is taken from the file itself and run with the built binary in place
//! of `cargo run --release --` (and of `looptop`), so the README and the command line cannot
//! drift apart. Lines that would watch forever get `--once` (a `run`) or are opened in a real
//! terminal and quit with `q` (the TUI). `cargo test`, `cargo build` and `cd` lines are the only
//! ones left out.

use std::path::{Path, PathBuf};

use crate::harness::{copy_tree, json_rows, run_finished, Project, Tmux};

/// A command line of one of README's `sh` blocks, with the heading of its section.
#[derive(Debug, Clone)]
struct ReadmeLine {
    section: String,
    number: usize,
    words: Vec<String>,
}

/// Every command line of README.md's `sh` blocks, comments stripped.
fn readme_lines() -> Vec<ReadmeLine> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let mut lines = Vec::new();
    let mut section = String::new();
    let mut in_sh = false;
    let mut in_other = false;
    for (index, line) in readme.lines().enumerate() {
        if !in_sh && !in_other {
            if let Some(heading) = line.strip_prefix("## ") {
                section = heading.trim().to_string();
            }
        }
        if let Some(fence) = line.strip_prefix("```") {
            match (in_sh, in_other) {
                (false, false) if fence.trim() == "sh" => in_sh = true,
                (false, false) => in_other = true,
                _ => (in_sh, in_other) = (false, false),
            }
            continue;
        }
        if in_sh {
            let words = shell_words(line);
            if !words.is_empty() {
                lines.push(ReadmeLine {
                    section: section.clone(),
                    number: index + 1,
                    words,
                });
            }
        }
    }
    lines
}

/// Splits a line as sh would for the simple lines README holds: blanks separate words, quotes
/// group them, and a `#` that starts a word starts a comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.get_or_insert_with(String::new).push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            None if c.is_whitespace() => words.extend(word.take()),
            None if c == '#' && word.is_none() => break,
            None => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The arguments of a line that runs looptop, without the program (`looptop` or
/// `cargo run --release --`); None for any other line.
fn looptop_args(line: &ReadmeLine) -> Option<Vec<String>> {
    let words = &line.words;
    if words.first().map(String::as_str) == Some("looptop") {
        return Some(words[1..].to_vec());
    }
    let cargo_run = ["cargo", "run", "--release", "--"];
    (words.len() >= cargo_run.len() && words.iter().zip(cargo_run).all(|(w, c)| w == c))
        .then(|| words[cargo_run.len()..].to_vec())
}

/// How looptop is started for a line: to the end (`run` with `--once`), or as the TUI in a
/// terminal. A redirection (`> FILE`) is dropped: the output is checked instead.
enum Launch {
    ToTheEnd(Vec<String>),
    Tui(Vec<String>),
}

const SUBCOMMANDS: &[&str] = &[
    "run",
    "bench",
    "trust",
    "history",
    "stats",
    "tests",
    "query",
    "export",
    "doctor",
    "init",
    "completions",
];

fn launch(mut args: Vec<String>) -> Launch {
    if let Some(redirect) = args.iter().position(|a| a == ">") {
        args.truncate(redirect);
    }
    // Global options may come first (`-c FILE run …`): the subcommand is the first word that
    // names one before any `--`.
    let subcommand = args
        .iter()
        .take_while(|a| *a != "--")
        .position(|a| SUBCOMMANDS.contains(&a.as_str()));
    match subcommand {
        None => Launch::Tui(args),
        Some(at) => {
            if args[at] == "run" && !args.iter().any(|a| a == "--once") {
                args.insert(at + 1, "--once".into());
            }
            Launch::ToTheEnd(args)
        }
    }
}

/// A directory with `python` and `pytest` as README's lines use them, for machines where only
/// `python3` (with pytest installed as a module) is on PATH.
fn python_shims(project: &Project) -> String {
    let bin = project.scratch.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for (name, script) in [
        ("python", "#!/bin/sh\nexec python3 \"$@\"\n"),
        ("pytest", "#!/bin/sh\nexec python3 -m pytest \"$@\"\n"),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, script).expect("write shim");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Runs one README line in `project` and checks that it did what it says; returns its stdout.
fn run_line(project: &Project, line: &ReadmeLine, args: Vec<String>) -> String {
    let context = format!("README.md:{} `{}`", line.number, line.words.join(" "));
    match launch(args) {
        Launch::ToTheEnd(args) => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let done = project.run(&args);
            assert!(
                done.status.success(),
                "{context}: {:?}\n{}\n{}",
                done.status,
                done.stdout,
                done.stderr
            );
            if args.contains(&"run") && !args.contains(&"--json") {
                assert!(done.stderr.contains("passed in"), "{context}: {}", done.stderr);
            }
            done.stdout
        }
        Launch::Tui(args) => {
            let binary = assert_cmd::cargo::cargo_bin("looptop");
            let quoted: Vec<String> = args.iter().map(|a| crate::harness::sh_quote(a)).collect();
            let command = format!(
                "{} {} {}; echo looptop-exited-$?; sleep 60",
                project.env_assignments(),
                binary.display(),
                quoted.join(" ")
            );
            let tmux = Tmux::start(&project.path(), &command);
            let screen = tmux.wait_for("loop trend");
            assert!(!screen.contains("looptop-exited"), "{context}:\n{screen}");
            tmux.keys("q");
            tmux.wait_for("looptop-exited-0");
            String::new()
        }
    }
}

/// A project with `examples/` as in this repository, for the lines that name them.
fn project_with_examples() -> Project {
    let project = Project::new();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &project.path().join("examples"),
    );
    project
}

/// The binary of a Cargo example, built next to this test by `cargo test`.
fn cargo_example_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("examples")
}

#[test]
fn readme_is_split_as_sh_would() {
    assert_eq!(
        shell_words(r#"looptop query "SELECT a, b FROM runs"   # a comment"#),
        ["looptop", "query", "SELECT a, b FROM runs"]
    );
    assert_eq!(
        shell_words("looptop run -- 'pytest -x | tail'"),
        ["looptop", "run", "--", "pytest -x | tail"]
    );
    assert!(
        matches!(launch(vec!["-c".into(), "x".into(), "run".into()]), Launch::ToTheEnd(a) if a == ["-c", "x", "run", "--once"])
    );
    assert!(matches!(launch(vec!["--".into(), "run".into()]), Launch::Tui(_)));
}

/// The lines outside "Usage": the set-up command and the examples, from the repository root.
#[test]
fn readme_example_lines_run_as_written() {
    let lines: Vec<ReadmeLine> = readme_lines().into_iter().filter(|l| l.section != "Usage").collect();
    let mut ran = 0;
    for line in &lines {
        let Some(args) = looptop_args(line) else {
            let known = ["cargo test", "cargo build --release --example training_step"];
            assert!(
                known.contains(&line.words.join(" ").as_str()),
                "README.md:{}: a new kind of line: teach this test to run it: {:?}",
                line.number,
                line.words
            );
            continue;
        };
        let project = project_with_examples();
        let examples = cargo_example_dir();
        let args = args
            .into_iter()
            .map(|a| match a.strip_prefix("target/release/examples/") {
                Some(name) => examples.join(name).display().to_string(),
                None => a,
            })
            .collect();
        run_line(&project, line, args);
        ran += 1;
    }
    // The set-up command, two training_step lines, the ML project's TUI.
    assert!(ran >= 4, "only {ran} README lines ran: {lines:?}");
}

/// The "Usage" block from top to bottom on a small ML project, as a user would type it:
/// `looptop init` writes the config the later lines use.
#[test]
fn readme_usage_lines_run_in_order_on_a_project_that_init_set_up() {
    let project = Project::new();
    project.write(
        "train.py",
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--steps', type=int, default=5)\n\
         for step in range(p.parse_args().steps):\n    print(f'step {step} loss {1 / (step + 1):.3f}')\n",
    );
    project.write("model.py", "def predict(x):\n    return 2 * x\n");
    project.write(
        "tests/test_model.py",
        "import sys, os\nsys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))\nfrom model import predict\n\n\
         def test_fast():\n    assert predict(2) == 4\n\ndef test_zero():\n    assert predict(0) == 0\n",
    );
    let path = python_shims(&project);
    let project = project.with_env("PATH", path);
    let lines: Vec<ReadmeLine> = readme_lines().into_iter().filter(|l| l.section == "Usage").collect();
    let mut ran = Vec::new();
    for line in &lines {
        if line.words[0] == "cd" {
            continue;
        }
        let args = looptop_args(line).unwrap_or_else(|| panic!("README.md:{}: not a looptop line", line.number));
        let stdout = run_line(&project, line, args.clone());
        match args.first().map(String::as_str) {
            Some("init") => assert!(project.path().join("looptop.toml").is_file()),
            Some("run") if args.contains(&"--json".to_string()) => {
                assert_eq!(run_finished(&json_rows(&stdout))["outcome"], "pass", "{stdout}");
            }
            Some("history") => assert!(stdout.contains("train"), "{stdout}"),
            Some("tests") => assert!(stdout.contains("tests/test_model.py::test_fast"), "{stdout}"),
            Some("export") => assert!(project
                .path()
                .join("runs-export")
                .read_dir()
                .is_ok_and(|mut d| d.next().is_some())),
            Some("completions") => assert!(stdout.contains("looptop"), "{stdout}"),
            _ => {}
        }
        ran.push(args.first().cloned().unwrap_or_default());
    }
    for expected in [
        "init",
        "",
        "run",
        "trust",
        "history",
        "stats",
        "tests",
        "query",
        "export",
        "bench",
        "doctor",
        "completions",
    ] {
        assert!(
            ran.iter()
                .any(|r| r == expected || (expected.is_empty() && r.starts_with('-'))),
            "{expected:?} never ran: {ran:?}"
        );
    }
}
