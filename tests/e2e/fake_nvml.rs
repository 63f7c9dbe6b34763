//! The fake NVML library (`tests/fake-nvml`): builds it and locates the `.so`, and writes the
//! script that drives its readings. Also included by `tests/fake-nvml/tests/load.rs`, so it uses
//! nothing but std.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds the fake NVML library (once per variant per process) and returns the path of its `.so`.
/// `legacy` is the variant without `nvmlDeviceGetComputeRunningProcesses_v3` and
/// `nvmlDeviceGetProcessUtilization`, built into `<target dir>/fake-nvml-legacy`.
pub fn fake_nvml_lib(legacy: bool) -> PathBuf {
    static NORMAL: OnceLock<PathBuf> = OnceLock::new();
    static LEGACY: OnceLock<PathBuf> = OnceLock::new();
    let cell = if legacy { &LEGACY } else { &NORMAL };
    cell.get_or_init(|| build(legacy)).clone()
}

/// The target directory the running tests were built in.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        // A relative one is relative to where cargo was started, which the tests do not know.
        if dir.is_absolute() {
            return dir;
        }
    }
    // <target>/<profile>/deps/<test executable>
    let exe = std::env::current_exe().expect("current test executable");
    exe.ancestors()
        .nth(3)
        .expect("test executable inside a target directory")
        .to_path_buf()
}

fn build(legacy: bool) -> PathBuf {
    let mut target = target_dir();
    if legacy {
        target.push("fake-nvml-legacy");
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut command = Command::new(env!("CARGO"));
    command.args(["build", "-p", "fake-nvml", "--message-format=json", "--manifest-path"]);
    command.arg(&manifest).arg("--target-dir").arg(&target);
    if legacy {
        command.args(["--features", "legacy"]);
    }
    let output = command.output().expect("run cargo build -p fake-nvml");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo build -p fake-nvml failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#) && line.contains(r#""kind":["cdylib"]"#))
        .flat_map(json_filenames)
        .find(|file| file.extension().is_some_and(|ext| ext == "so"))
        .unwrap_or_else(|| panic!("no cdylib artifact in cargo's output:\n{stdout}"))
}

/// The `filenames` array of a compiler-artifact JSON line (a small reader, to need no JSON crate).
fn json_filenames(line: &str) -> Vec<PathBuf> {
    let Some(start) = line.find(r#""filenames":["#) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    let mut chars = line[start + r#""filenames":["#.len()..].chars();
    loop {
        match chars.next() {
            Some('"') => {
                let mut file = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => file.push('\n'),
                            Some('t') => file.push('\t'),
                            Some(other) => file.push(other),
                            None => break,
                        },
                        c => file.push(c),
                    }
                }
                files.push(PathBuf::from(file));
            }
            Some(',') => continue,
            _ => return files,
        }
    }
}

/// The script file the fake library re-reads on every call (point `FAKE_NVML_SCRIPT` at
/// [`Script::path`]). Lines are appended; the last assignment of a key wins.
pub struct Script {
    path: PathBuf,
}

impl Script {
    /// Creates (or empties) the script file at `path`: all readings at their defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        std::fs::write(&path, "").expect("create fake NVML script");
        Self { path }
    }

    /// Appends `key = value`.
    pub fn set(&self, key: &str, value: impl Display) -> &Self {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .expect("open fake NVML script");
        writeln!(file, "{key} = {value}").expect("append to fake NVML script");
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
