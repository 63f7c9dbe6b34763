//! A starter looptop.toml from what a project holds: pytest tests, a Cargo crate, training
//! scripts, SQL files (with the DuckDB file they query), an npm test script, Makefile targets,
//! and the directories a training run writes into. `detect` looks; `render` writes commented
//! TOML that `config` parses. Neither touches the project.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::text::{escape, is_hidden};

/// How deep `detect` looks for training scripts and SQL files.
const MAX_DEPTH: usize = 4;
/// How many files `detect` looks at before it stops (a huge data directory stays cheap).
const MAX_FILES: usize = 20_000;
/// At most this many SQL files become query jobs.
const MAX_QUERIES: usize = 4;
/// Directories that training runs and notebooks write into: suggested as ignores.
const OUTPUT_DIRS: &[&str] = &[
    "checkpoints",
    "data",
    "lightning_logs",
    "mlruns",
    "outputs",
    "runs",
    "wandb",
];

/// A job `render` writes, with why it was suggested.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// The job's name (one word, unique among the suggestions).
    pub name: String,
    /// What was found, for the comment above the job.
    pub because: String,
    /// How the job runs.
    pub run: SuggestedRun,
    /// `kind`: test, train or query.
    pub kind: &'static str,
    /// Globs that trigger it (empty: every watched file).
    pub watch: Vec<String>,
    /// Metric presets.
    pub metrics: Vec<&'static str>,
    /// A line of advice written above the job, if any.
    pub advice: Option<&'static str>,
}

/// How a suggested job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum SuggestedRun {
    /// A command run directly.
    Command(Vec<String>),
    /// A SQL file run by looptop, against a DuckDB file or in memory.
    Sql {
        /// The SQL file, relative to the root.
        sql: String,
        /// The DuckDB file, relative to the root.
        database: Option<String>,
    },
}

/// What `detect` found in a project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// The jobs to suggest, in the order they should appear.
    pub jobs: Vec<Suggestion>,
    /// Directories to ignore (outputs of training runs), relative to the root.
    pub ignore: Vec<String>,
}

/// Looks at the project under `root`.
pub fn detect(root: &Path) -> Findings {
    let files = list_files(root);
    let mut jobs = Vec::new();
    if let Some(because) = pytest_evidence(root, &files) {
        jobs.push(Suggestion {
            name: "test".into(),
            because,
            run: SuggestedRun::Command(words(&["python3", "-m", "pytest", "-x", "-q"])),
            kind: "test",
            watch: vec!["*.py".into(), "pytest.ini".into(), "pyproject.toml".into()],
            metrics: vec!["pytest"],
            advice: Some("narrow it to the tests you are working on: add a path or `-k NAME`"),
        });
    }
    if root.join("Cargo.toml").is_file() {
        jobs.push(Suggestion {
            name: "cargo-test".into(),
            because: "Cargo.toml".into(),
            run: SuggestedRun::Command(words(&["cargo", "test"])),
            kind: "test",
            watch: vec!["*.rs".into(), "Cargo.toml".into()],
            metrics: Vec::new(),
            advice: None,
        });
    }
    if let Some(script) = npm_test_script(root) {
        jobs.push(Suggestion {
            name: "npm-test".into(),
            because: format!("package.json has a test script (`{script}`)"),
            run: SuggestedRun::Command(words(&["npm", "test", "--silent"])),
            kind: "test",
            watch: ["*.js", "*.ts", "*.jsx", "*.tsx", "package.json"]
                .map(String::from)
                .to_vec(),
            metrics: Vec::new(),
            advice: None,
        });
    }
    jobs.extend(training_jobs(&files));
    jobs.extend(query_jobs(&files));
    jobs.extend(make_jobs(root, &jobs));
    unique_names(&mut jobs);
    let ignore = OUTPUT_DIRS
        .iter()
        .filter(|d| root.join(d).is_dir())
        .map(|d| format!("{d}/"))
        .collect();
    Findings { jobs, ignore }
}

/// Writes `findings` as a commented looptop.toml.
pub fn render(findings: &Findings) -> String {
    let mut out = String::new();
    out.push_str("# looptop.toml: written by `looptop init` from what it found in this project.\n");
    out.push_str("# Every key is explained in looptop's README (Configuration). Edit freely:\n");
    out.push_str("# `looptop` runs every job below and reruns each when the files it watches change.\n\n");
    out.push_str("[watch]\n");
    if findings.ignore.is_empty() {
        out.push_str("# ignore = [\"data/\", \"*.parquet\"]  # .gitignore syntax; .gitignore is honoured already\n");
    } else {
        out.push_str("# Written to by runs (a job that writes where it watches would rerun itself):\n");
        let _ = writeln!(out, "ignore = {}", toml_array(&findings.ignore));
    }
    if findings.jobs.is_empty() {
        out.push_str(concat!(
            "\n# Nothing to run was found (no tests, Cargo.toml, train*.py, *.sql, package.json\n",
            "# test script or Makefile target). A job looks like this:\n",
            "#\n",
            "# [[job]]\n",
            "# name = \"train\"\n",
            "# command = [\"python3\", \"train.py\", \"--steps\", \"20\"]\n",
            "# kind = \"train\"\n",
            "# watch = [\"*.py\"]\n",
        ));
    }
    for job in &findings.jobs {
        out.push('\n');
        comment(&mut out, &format!("{}: {}", job.name, job.because));
        if let Some(advice) = job.advice {
            comment(&mut out, &format!("Tip: {advice}."));
        }
        out.push_str("[[job]]\n");
        let _ = writeln!(out, "name = {}", toml_string(&job.name));
        match &job.run {
            SuggestedRun::Command(argv) => {
                let _ = writeln!(out, "command = {}", toml_array(argv));
            }
            SuggestedRun::Sql { sql, database } => {
                let _ = writeln!(out, "sql = {}", toml_string(sql));
                if let Some(database) = database {
                    let _ = writeln!(out, "database = {}", toml_string(database));
                }
            }
        }
        let _ = writeln!(out, "kind = {}", toml_string(job.kind));
        if !job.watch.is_empty() {
            let _ = writeln!(out, "watch = {}", toml_array(&job.watch));
        }
        if !job.metrics.is_empty() {
            let metrics: Vec<String> = job.metrics.iter().map(|m| (*m).to_string()).collect();
            let _ = writeln!(out, "metrics = {}", toml_array(&metrics));
        }
    }
    out
}

/// Files under `root` (relative, `/`-separated), gitignore-aware, at most `MAX_DEPTH` deep.
fn list_files(root: &Path) -> Vec<String> {
    let walk = ignore::WalkBuilder::new(root)
        .max_depth(Some(MAX_DEPTH))
        .hidden(true)
        .require_git(false)
        .filter_entry(|e| {
            !matches!(
                e.file_name().to_str(),
                Some("node_modules" | "target" | ".venv" | "venv")
            )
        })
        .build();
    walk.filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .filter_map(|e| {
            // A name that is not UTF-8 could not be written back as the same path: skip it.
            let relative = e.path().strip_prefix(root).ok()?.to_str()?;
            Some(relative.to_string())
        })
        .take(MAX_FILES)
        .collect()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn words(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|w| (*w).to_string()).collect()
}

/// Why this looks like a pytest project, or None.
fn pytest_evidence(root: &Path, files: &[String]) -> Option<String> {
    let contains =
        |file: &str, needle: &str| std::fs::read_to_string(root.join(file)).is_ok_and(|text| text.contains(needle));
    if root.join("pytest.ini").is_file() {
        return Some("pytest.ini".into());
    }
    if contains("pyproject.toml", "[tool.pytest") {
        return Some("pyproject.toml configures pytest".into());
    }
    if contains("setup.cfg", "[tool:pytest]") || contains("tox.ini", "[pytest]") {
        return Some("pytest is configured in setup.cfg or tox.ini".into());
    }
    let tests: Vec<&String> = files
        .iter()
        .filter(|f| {
            let name = file_name(f);
            name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
        })
        .collect();
    match tests.as_slice() {
        [] if files.iter().any(|f| file_name(f) == "conftest.py") => Some("conftest.py".into()),
        [] => None,
        [one] => Some(format!("a pytest file ({one})")),
        many => Some(format!("{} pytest files ({}, ...)", many.len(), many[0])),
    }
}

/// The `test` script of package.json, if it has a real one (not npm's placeholder).
fn npm_test_script(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let script = json.get("scripts")?.get("test")?.as_str()?;
    (!script.contains("no test specified")).then(|| script.to_string())
}

/// A job per `train*.py` (the shallowest first, three at most).
fn training_jobs(files: &[String]) -> Vec<Suggestion> {
    let mut scripts: Vec<&String> = files
        .iter()
        .filter(|f| {
            let name = file_name(f);
            name.starts_with("train") && name.ends_with(".py") && !f.split('/').any(|part| part.starts_with("test"))
        })
        .collect();
    scripts.sort_by_key(|f| (f.matches('/').count(), f.as_str()));
    scripts
        .into_iter()
        .take(3)
        .enumerate()
        .map(|(i, script)| Suggestion {
            name: if i == 0 { "train".into() } else { job_name(script) },
            because: format!("a training script ({script})"),
            run: SuggestedRun::Command(vec!["python3".into(), script.clone()]),
            kind: "train",
            watch: ["*.py", "*.yaml", "*.yml"].map(String::from).to_vec(),
            metrics: vec!["tqdm", "lightning"],
            advice: Some("make a run take seconds: pass a few steps or a small subset (e.g. `--max-steps 20`)"),
        })
        .collect()
}

/// A query job per SQL file (four at most), against the project's DuckDB file if it has one.
fn query_jobs(files: &[String]) -> Vec<Suggestion> {
    let database = files
        .iter()
        .filter(|f| f.ends_with(".duckdb") || f.ends_with(".ddb"))
        .min_by_key(|f| (f.matches('/').count(), f.as_str()))
        .cloned();
    let mut sql: Vec<&String> = files.iter().filter(|f| f.ends_with(".sql")).collect();
    sql.sort_by_key(|f| f.to_lowercase());
    sql.into_iter()
        .take(MAX_QUERIES)
        .map(|file| Suggestion {
            name: job_name(file),
            because: match &database {
                Some(db) => format!("a SQL file, run against {db}"),
                None => "a SQL file, run in an in-memory DuckDB (it may read CSV or Parquet files)".into(),
            },
            run: SuggestedRun::Sql {
                sql: file.clone(),
                database: database.clone(),
            },
            kind: "query",
            watch: vec![literal_glob(file)],
            metrics: Vec::new(),
            advice: None,
        })
        .collect()
}

/// `make test`, `make check` and `make train` when nothing else covers them.
fn make_jobs(root: &Path, found: &[Suggestion]) -> Vec<Suggestion> {
    let Ok(text) = std::fs::read_to_string(root.join("Makefile")) else {
        return Vec::new();
    };
    let targets: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.split_once(':').map(|(target, _)| target))
        .filter(|t| !t.is_empty() && !t.starts_with(['.', '\t', ' ']) && !t.contains(['=', '%', '$', ' ']))
        .collect();
    let has = |kind: &str| found.iter().any(|j| j.kind == kind);
    let mut jobs = Vec::new();
    for (target, kind) in [("test", "test"), ("check", "test"), ("train", "train")] {
        if targets.contains(target) && !has(kind) && !jobs.iter().any(|j: &Suggestion| j.kind == kind) {
            jobs.push(Suggestion {
                name: format!("make-{target}"),
                because: format!("the Makefile has a `{target}` target"),
                run: SuggestedRun::Command(vec!["make".into(), target.into()]),
                kind,
                watch: Vec::new(),
                metrics: Vec::new(),
                advice: None,
            });
        }
    }
    jobs
}

/// A job name from a file: its stem, as one word.
fn job_name(path: &str) -> String {
    let stem = Path::new(file_name(path))
        .file_stem()
        .map_or_else(|| PathBuf::from(path), PathBuf::from)
        .to_string_lossy()
        .to_lowercase();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "job".into()
    } else {
        name
    }
}

/// A `# ...` line. Text from the project (a script, a file name) is escaped so that it stays
/// on this one line: a newline in it must not start a line of real TOML.
fn comment(out: &mut String, text: &str) {
    let _ = writeln!(out, "# {}", escape(text));
}

/// A glob that matches exactly the file `path` (relative), whatever characters its name has.
fn literal_glob(path: &str) -> String {
    globset::escape(path).replace('\\', r"\\")
}

/// Makes job names unique in file order (`name`, `name-2`, ...): two files can reduce to the
/// same name, and looptop.toml rejects a name used twice.
fn unique_names(jobs: &mut [Suggestion]) {
    let mut taken = BTreeSet::new();
    for job in jobs {
        let base = job.name.clone();
        let mut n = 1;
        while !taken.insert(job.name.clone()) {
            n += 1;
            job.name = format!("{base}-{n}");
        }
    }
}

/// A TOML basic string holding exactly `text`; every character a terminal would not show as
/// itself is written as a `\uXXXX` escape, so the file reads on screen as it parses.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| toml_string(i)).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn parsed(dir: &Path, text: &str) -> Config {
        Config::parse(&dir.join("looptop.toml"), text, dir.to_path_buf())
            .unwrap_or_else(|e| panic!("init's config does not parse: {e}\n{text}"))
    }

    #[test]
    fn an_ml_project_gets_test_train_and_query_jobs_and_its_output_dirs_ignored() {
        let dir = project(&[
            ("tests/test_model.py", "def test_x(): pass\n"),
            ("train.py", "print('step 1')\n"),
            ("scripts/train_big.py", ""),
            ("queries/daily.sql", "SELECT 1;\n"),
            ("queries/Weekly Report.sql", "SELECT 2;\n"),
            ("warehouse.duckdb", ""),
            ("checkpoints/last.pt", ""),
            ("wandb/run.log", ""),
        ]);
        let findings = detect(dir.path());
        let names: Vec<&str> = findings.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["test", "train", "train_big", "daily", "weekly-report"]);
        assert_eq!(findings.ignore, ["checkpoints/", "wandb/"]);

        let text = render(&findings);
        let config = parsed(dir.path(), &text);
        assert_eq!(config.jobs.len(), 5);
        let daily = &config.jobs[3];
        assert_eq!(daily.kind.as_str(), "query");
        assert!(text.contains("database = \"warehouse.duckdb\""), "{text}");
        assert!(text.contains("# test: a pytest file (tests/test_model.py)"), "{text}");
        assert!(text.contains("metrics = [\"pytest\"]"), "{text}");
    }

    #[test]
    fn rust_npm_and_make_projects_get_their_test_commands() {
        let dir = project(&[
            ("Cargo.toml", "[package]\nname = \"x\"\n"),
            ("package.json", r#"{"scripts": {"test": "vitest run"}}"#),
            (
                "Makefile",
                ".PHONY: test\ntest:\n\tcargo test\ntrain: data\n\tpython3 fit.py\n%.o: %.c\n",
            ),
        ]);
        let findings = detect(dir.path());
        let commands: Vec<String> = findings
            .jobs
            .iter()
            .map(|j| match &j.run {
                SuggestedRun::Command(argv) => argv.join(" "),
                SuggestedRun::Sql { sql, .. } => sql.clone(),
            })
            .collect();
        // `make test` is covered by cargo test; `make train` is the only training job.
        assert_eq!(commands, ["cargo test", "npm test --silent", "make train"]);
        let config = parsed(dir.path(), &render(&findings));
        assert_eq!(config.jobs.len(), 3);
    }

    #[test]
    fn npm_placeholder_and_an_empty_project_give_no_jobs_but_a_valid_commented_file() {
        let dir = project(&[(
            "package.json",
            r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#,
        )]);
        let findings = detect(dir.path());
        assert!(findings.jobs.is_empty());
        let text = render(&findings);
        assert!(text.contains("Nothing to run was found"), "{text}");
        assert!(parsed(dir.path(), &text).jobs.is_empty());
    }

    #[test]
    fn ignored_files_are_not_suggested() {
        let dir = project(&[
            (".gitignore", "vendor/\n"),
            ("vendor/train.py", ""),
            ("vendor/q.sql", ""),
        ]);
        assert!(detect(dir.path()).jobs.is_empty());
    }

    /// Pieces of hostile text: TOML syntax, quotes, comments, controls, escapes, glob
    /// characters and unicode that reorders or hides text.
    const HOSTILE: &[&str] = &[
        "\n",
        "\r\n",
        "\"",
        "'",
        "'''",
        "\"\"\"",
        "[[job]]",
        "\nname = \"lint\"\ncommand = \"touch PWNED\"\n#",
        "#",
        "\\",
        "\\u0041",
        "\\n",
        "\t",
        "\u{1b}[2K",
        "\u{7}",
        "\u{7f}",
        "ünï",
        "✔",
        "\u{202e}",
        "\u{2028}",
        "\u{feff}",
        "*",
        "?",
        "[a-z]",
        "{x,y}",
        " ",
        "=",
        "]",
        "test",
        "-",
    ];

    /// xorshift64*: deterministic, so a failing case is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn text(&mut self) -> String {
            let pieces = 1 + self.below(4);
            (0..pieces).map(|_| HOSTILE[self.below(HOSTILE.len())]).collect()
        }
    }

    #[test]
    fn hostile_names_and_contents_give_exactly_the_jobs_init_meant() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        for case in 0..150 {
            let files = [
                (format!("{}.sql", rng.text()), "SELECT 1;\n".to_string()),
                (format!("q/{}.sql", rng.text()), "SELECT 2;\n".to_string()),
                (format!("{}.duckdb", rng.text()), String::new()),
                (format!("train{}.py", rng.text()), String::new()),
                (format!("tests/test_{}.py", rng.text()), String::new()),
                (
                    "package.json".to_string(),
                    serde_json::json!({ "scripts": { "test": rng.text() } }).to_string(),
                ),
                (
                    "Makefile".to_string(),
                    format!("{}\ncheck:\n\t{}\n", rng.text(), rng.text()),
                ),
                ("pyproject.toml".to_string(), format!("[tool.pytest{}\n", rng.text())),
            ];
            let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
            let dir = project(&borrowed);
            let findings = detect(dir.path());
            let text = render(&findings);
            let config = Config::parse(&dir.path().join("looptop.toml"), &text, dir.path().to_path_buf())
                .unwrap_or_else(|e| panic!("case {case}: init's config does not parse: {e}\n{text}"));
            assert_eq!(config.jobs.len(), findings.jobs.len(), "case {case}:\n{text}");
            assert!(
                findings.jobs.len() >= 5,
                "case {case}: tests, npm, training and SQL were meant"
            );
            for (job, meant) in config.jobs.iter().zip(&findings.jobs) {
                let place = format!("case {case}, job {}:\n{text}", meant.name);
                assert_eq!(job.name, meant.name, "{place}");
                assert_eq!(job.kind.as_str(), meant.kind, "{place}");
                assert_eq!(job.watch_globs, meant.watch, "{place}");
                match &meant.run {
                    SuggestedRun::Command(argv) => {
                        assert_eq!(job.command, crate::config::JobCommand::Argv(argv.clone()), "{place}");
                    }
                    SuggestedRun::Sql { sql, database } => {
                        let query = job.query.as_ref().expect("a query job");
                        assert_eq!(query.sql, dir.path().join(sql), "{place}");
                        assert_eq!(query.database, database.as_ref().map(|d| dir.path().join(d)), "{place}");
                        assert!(job.is_triggered_by(Path::new(sql)), "{place}: its glob misses its file");
                    }
                }
            }
            assert!(
                !text.contains(|c: char| is_hidden(c) && c != '\n'),
                "case {case}: a character that does not show as itself:\n{text:?}"
            );
        }
    }
}
