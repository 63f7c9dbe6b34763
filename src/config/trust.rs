//! Trust: a project's looptop.toml can run any command, so a config this machine has not seen
//! is not run until the user approves it. Approval is kept per config content (its SHA-256),
//! under the user's data directory, so any edit asks again.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Config;

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

    /// Whether this exact config content was approved.
    pub fn is_trusted(&self, config_file: &Path) -> std::io::Result<bool> {
        Ok(self.entry(config_file)?.is_file())
    }

    /// Records approval of the config's current content.
    pub fn approve(&self, config_file: &Path) -> std::io::Result<()> {
        let entry = self.entry(config_file)?;
        std::fs::create_dir_all(&self.dir)?;
        let approved_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        std::fs::write(entry, format!("{}\napproved {approved_at}\n", config_file.display()))
    }

    fn entry(&self, config_file: &Path) -> std::io::Result<PathBuf> {
        let content = std::fs::read(config_file)?;
        let digest = Sha256::digest(&content);
        let hex = digest.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Ok(self.dir.join(hex))
    }
}

/// The commands a config would run, one job per line, for the user to read before approving.
pub fn describe_commands(config: &Config) -> String {
    let mut text = String::new();
    for job in &config.jobs {
        let _ = writeln!(text, "  [{}]  {}   (in {})", job.name, job.command, job.cwd.display());
        for (key, value) in &job.env {
            let _ = writeln!(text, "         env {key}={value}");
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

    #[test]
    fn approval_follows_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("looptop.toml");
        std::fs::write(&file, "[[job]]\nname = \"a\"\ncommand = \"true\"\n").expect("write");
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
}
