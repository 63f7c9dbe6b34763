//! Trust: a project's looptop.toml can run any command, load a library and point looptop at
//! files anywhere, and projects are cloned from strangers. So a config this machine has not
//! approved runs none of its jobs, and every setting of it that would load code or read or
//! write outside the project is ignored (and named) until the user approves it.
//!
//! Approval is kept under the user's data directory, keyed on where the config is (its
//! directory, resolved, and its name) and on its content (SHA-256): an edit asks again, and an
//! approved file copied into another project is not approved there.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Config, DEFAULT_HISTORY_PATH};
use crate::text::{escape, escape_path};

/// Where approvals are kept, and how a config is looked up in them.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    /// The store under the user's data directory (`$XDG_DATA_HOME/looptop/trusted`).
    pub fn for_user() -> anyhow::Result<Self> {
        let dirs = directories::ProjectDirs::from("", "", "looptop")
            .ok_or_else(|| anyhow::anyhow!("cannot find a home directory to keep trusted configs in; set HOME"))?;
        Ok(Self::at(dirs.data_dir().join("trusted")))
    }

    /// A store in `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Whether this exact config content was approved at this place.
    pub fn is_trusted(&self, config_file: &Path) -> std::io::Result<bool> {
        Ok(self.entry(config_file)?.is_file())
    }

    /// Records approval of the config's current content at its place.
    pub fn approve(&self, config_file: &Path) -> std::io::Result<()> {
        let entry = self.entry(config_file)?;
        std::fs::create_dir_all(&self.dir)?;
        let approved_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        std::fs::write(
            entry,
            format!("{}\napproved {approved_at}\n", location(config_file)?.display()),
        )
    }

    fn entry(&self, config_file: &Path) -> std::io::Result<PathBuf> {
        let content = std::fs::read(config_file)?;
        let mut hasher = Sha256::new();
        hasher.update(b"looptop trust v2\0");
        hasher.update(location(config_file)?.as_os_str().as_bytes());
        hasher.update(b"\0");
        hasher.update(&content);
        let hex = hasher.finalize().iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Ok(self.dir.join(hex))
    }
}

/// Where a config file is, as approval knows it: its directory with links resolved, and its
/// own name unresolved (a link called looptop.toml in another project is that project's
/// config, run there, so it is not the file it points to).
fn location(config_file: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(config_file)?;
    let dir = absolute.parent().unwrap_or(Path::new("/")).canonicalize()?;
    Ok(match absolute.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    })
}

/// Whether a config may use everything it says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Approval {
    /// No config file: looptop's own defaults, nothing to approve.
    #[default]
    NoFile,
    /// Approved on this machine (`looptop trust`, `looptop init`), or `--trust` was given.
    Approved,
    /// Not approved: its jobs do not run, and these settings of it were ignored.
    Unapproved(Vec<Ignored>),
}

/// A setting of an unapproved config that looptop did not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The key, as written in looptop.toml (`[gpu] nvml_lib`).
    pub key: &'static str,
    /// Its value, resolved.
    pub value: String,
    /// What it would have done.
    pub why: &'static str,
}

/// Decides whether `config` is approved (`accept` is `--trust`) and, when it is not, takes away
/// every setting that would load code or reach outside the project, recording each in
/// `config.approval`. Jobs stay, for the refusal to show them; they run only once approved.
pub fn settle(config: &mut Config, store: &TrustStore, accept: bool) -> std::io::Result<()> {
    let Some(file) = &config.file else {
        config.approval = Approval::NoFile;
        return Ok(());
    };
    if accept || store.is_trusted(file)? {
        config.approval = Approval::Approved;
        return Ok(());
    }
    config.approval = Approval::Unapproved(restrict(config));
    Ok(())
}

/// Sets back to looptop's defaults what an unapproved config may not do; returns what changed.
fn restrict(config: &mut Config) -> Vec<Ignored> {
    let mut ignored = Vec::new();
    if let Some(lib) = config.sampler.gpu.nvml_lib.take() {
        ignored.push(Ignored {
            key: "[gpu] nvml_lib",
            value: escape_path(&lib),
            why: "it would load a library into looptop",
        });
    }
    if !within(&config.root, &config.history_path) {
        ignored.push(Ignored {
            key: "[history] path",
            value: escape_path(&config.history_path),
            why: "it is outside the project",
        });
        config.history_path = config.root.join(DEFAULT_HISTORY_PATH);
    }
    let root = config.root.clone();
    config.watch.paths.retain(|path| {
        let inside = within(&root, path);
        if !inside {
            ignored.push(Ignored {
                key: "[watch] paths",
                value: escape_path(path),
                why: "it is outside the project",
            });
        }
        inside
    });
    if config.watch.paths.is_empty() {
        config.watch.paths.push(root);
    }
    if let Some(theme) = config.ui_theme.take_if(|t| !is_plain_name(t)) {
        ignored.push(Ignored {
            key: "[ui] theme",
            value: escape(&theme).into_owned(),
            why: "a theme is named, not a path",
        });
    }
    ignored
}

/// Whether `path` (absolute) stays inside `root` once links are resolved, as far as it exists.
fn within(root: &Path, path: &Path) -> bool {
    let Ok(root) = root.canonicalize() else { return false };
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            let full: PathBuf = resolved.components().chain(rest.into_iter().rev()).collect();
            return full.starts_with(&root);
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last @ Component::Normal(_))) => {
                rest.push(last);
                existing = parent;
            }
            // `..` or `.` after a missing directory: not worth resolving, so not inside.
            _ => return false,
        }
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

impl Config {
    /// Whether this config's jobs may run (it is approved, or there is no file).
    pub fn may_run_jobs(&self) -> bool {
        !matches!(self.approval, Approval::Unapproved(_))
    }

    /// The settings an unapproved config had ignored (empty when approved).
    pub fn ignored_settings(&self) -> &[Ignored] {
        match &self.approval {
            Approval::Unapproved(ignored) => ignored,
            _ => &[],
        }
    }
}

/// The one place that says which settings were ignored and how to approve, or None.
pub fn ignored_notice(config: &Config) -> Option<String> {
    let ignored = config.ignored_settings();
    let file = config.file.as_ref()?;
    if ignored.is_empty() {
        return None;
    }
    let mut text = format!(
        "{} is not approved on this machine, so looptop ignores these settings of it:\n",
        escape_path(file)
    );
    for setting in ignored {
        let _ = writeln!(text, "  {} = {} ({})", setting.key, setting.value, setting.why);
    }
    let _ = write!(
        text,
        "To use them, approve the file with `looptop trust` (run in {}), or pass --trust to `looptop run` or \
         `looptop` for one run.",
        escape_path(&config.root)
    );
    Some(text)
}

/// Why an unapproved config's jobs are not run, with exactly what they would run; None when
/// they may run.
pub fn refusal(config: &Config) -> Option<String> {
    if config.may_run_jobs() {
        return None;
    }
    let file = config.file.as_ref()?;
    Some(format!(
        "{} has not been approved on this machine, and it runs commands:\n{}\
         If this is what you expect, approve the file with `looptop trust` (run in {}), or pass --trust to \
         `looptop run` or `looptop` to use it once.",
        escape_path(file),
        describe_commands(config),
        escape_path(&config.root)
    ))
}

/// What `looptop trust` says it approved: the commands, and the settings now used.
pub fn approved_text(config: &Config) -> String {
    let file = config.file.as_deref().map(escape_path).unwrap_or_default();
    let mut text = format!(
        "approved {file} on this machine; looptop may now run:\n{}",
        describe_commands(config)
    );
    let ignored = config.ignored_settings();
    if !ignored.is_empty() {
        text.push_str("and use these settings of it:\n");
        for setting in ignored {
            let _ = writeln!(text, "  {} = {}", setting.key, setting.value);
        }
    }
    text.push_str("Any edit to the file, or the same file in another place, asks again.\n");
    text
}

/// The commands a config would run, one job per line, exactly (every control character shown
/// as an escape), for the user to read before approving.
pub fn describe_commands(config: &Config) -> String {
    let mut text = String::new();
    for job in &config.jobs {
        let _ = writeln!(
            text,
            "  [{}]  {}   (in {})",
            escape(&job.name),
            escape(&job.command.to_string()),
            escape_path(&job.cwd)
        );
        for (key, value) in &job.env {
            let _ = writeln!(text, "         env {}={}", escape(key), escape(value));
        }
    }
    if text.is_empty() {
        text.push_str("  (no jobs)\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[[job]]\nname = \"a\"\ncommand = \"true\"\n";

    #[test]
    fn approval_follows_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("looptop.toml");
        std::fs::write(&file, CONFIG).expect("write");
        let store = TrustStore::at(dir.path().join("store"));
        assert!(!store.is_trusted(&file).expect("read"));
        store.approve(&file).expect("approve");
        assert!(store.is_trusted(&file).expect("read"));
        std::fs::write(&file, "[[job]]\nname = \"a\"\ncommand = \"rm -rf ~\"\n").expect("write");
        assert!(
            !store.is_trusted(&file).expect("read"),
            "an edited config must be approved again"
        );
    }

    #[test]
    fn approval_stays_where_it_was_given() {
        let home = tempfile::tempdir().expect("tempdir");
        let store = TrustStore::at(home.path().join("store"));
        let (mine, theirs) = (home.path().join("mine"), home.path().join("theirs"));
        for dir in [&mine, &theirs] {
            std::fs::create_dir(dir).expect("mkdir");
            std::fs::write(dir.join("looptop.toml"), CONFIG).expect("write");
        }
        store.approve(&mine.join("looptop.toml")).expect("approve");
        assert!(store.is_trusted(&mine.join("looptop.toml")).expect("read"));
        assert!(
            !store.is_trusted(&theirs.join("looptop.toml")).expect("read"),
            "the same content elsewhere is another project"
        );
        // A link named looptop.toml in another project points at the approved file: still not.
        std::fs::remove_file(theirs.join("looptop.toml")).expect("rm");
        std::os::unix::fs::symlink(mine.join("looptop.toml"), theirs.join("looptop.toml")).expect("link");
        assert!(!store.is_trusted(&theirs.join("looptop.toml")).expect("read"));
        // A linked directory is the same place.
        std::os::unix::fs::symlink(&mine, home.path().join("alias")).expect("link");
        assert!(store.is_trusted(&home.path().join("alias/looptop.toml")).expect("read"));
    }

    #[test]
    fn an_unapproved_config_keeps_nothing_that_reaches_outside() {
        let home = tempfile::tempdir().expect("tempdir");
        let root = home.path().join("project");
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::os::unix::fs::symlink(home.path(), root.join("escape")).expect("link");
        let source = "[gpu]\nnvml_lib = \"./libevil.so\"\n[history]\npath = \"../h.duckdb\"\n\
                      [watch]\npaths = [\"src\", \"..\", \"escape\"]\n[ui]\ntheme = \"../../x\"\n";
        let file = root.join("looptop.toml");
        std::fs::write(&file, source).expect("write");
        let store = TrustStore::at(home.path().join("store"));
        let mut config = Config::load(&file).expect("valid");
        settle(&mut config, &store, false).expect("settle");
        assert!(!config.may_run_jobs());
        let keys: Vec<&str> = config.ignored_settings().iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "[gpu] nvml_lib",
                "[history] path",
                "[watch] paths",
                "[watch] paths",
                "[ui] theme"
            ]
        );
        assert_eq!(config.sampler.gpu.nvml_lib, None);
        assert_eq!(config.history_path, root.join(DEFAULT_HISTORY_PATH));
        assert_eq!(config.watch.paths, [root.join("src")]);
        assert_eq!(config.ui_theme, None);
        let notice = ignored_notice(&config).expect("a notice");
        assert!(
            notice.contains("[gpu] nvml_lib = ") && notice.contains("looptop trust"),
            "{notice}"
        );

        let mut approved = Config::load(&file).expect("valid");
        settle(&mut approved, &store, true).expect("settle");
        assert!(approved.may_run_jobs() && approved.ignored_settings().is_empty());
        assert!(approved.sampler.gpu.nvml_lib.is_some());
        assert_eq!(approved.watch.paths.len(), 3);
    }

    #[test]
    fn settings_inside_the_project_are_kept_without_approval() {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(home.path().join("data")).expect("mkdir");
        let file = home.path().join("looptop.toml");
        std::fs::write(
            &file,
            "[history]\npath = \"data/new/h.duckdb\"\n[watch]\npaths = [\"data\"]\n[ui]\ntheme = \"light\"\n",
        )
        .expect("write");
        let mut config = Config::load(&file).expect("valid");
        settle(&mut config, &TrustStore::at(home.path().join("store")), false).expect("settle");
        assert!(config.ignored_settings().is_empty(), "{:?}", config.approval);
        assert!(ignored_notice(&config).is_none());
        assert_eq!(config.ui_theme.as_deref(), Some("light"));
    }

    #[test]
    fn the_refusal_shows_commands_exactly_and_nothing_raw() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("looptop.toml");
        let source = "[[job]]\nname = \"t\\u001b]0;x\"\ncommand = \"touch PWNED # \\r\\u001b[2K  [train]  ok\"\n\
                      env = { \"K\\n\" = \"v\\u0007\" }\n";
        std::fs::write(&file, source).expect("write");
        let mut config = Config::load(&file).expect("valid");
        settle(&mut config, &TrustStore::at(dir.path().join("store")), false).expect("settle");
        let text = refusal(&config).expect("refused");
        assert!(
            text.contains(r"[t\e]0;x]  touch PWNED # \r\e[2K  [train]  ok"),
            "{text}"
        );
        assert!(text.contains(r"env K\n=v\x07"), "{text}");
        assert!(!text.contains(['\u{1b}', '\r', '\u{7}']), "{text:?}");
    }
}
