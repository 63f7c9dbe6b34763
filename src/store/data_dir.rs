//! looptop's own directory in a project, `.looptop`: run logs, the history and its journal live
//! there, and looptop deletes and rewrites files in it. A cloned repository is hostile input and
//! can ship `.looptop` as a symbolic link to somewhere else (`../`, `~/notes`), so looptop never
//! reaches what it writes or deletes through a link: its directories must be real directories
//! owned by the user running looptop, and the files it writes must not be links.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The name of looptop's directory in a project.
pub const DATA_DIR: &str = ".looptop";

/// Why looptop will not write at a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafePath {
    /// The path is a symbolic link.
    #[error(
        "{} is a symbolic link (to {target}); looptop writes and deletes files there, so it never follows a link: \
         remove the link (rm {}) and looptop makes a real directory",
        path.display(),
        path.display()
    )]
    Link {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: String,
    },
    /// The path is something other than a directory.
    #[error("{} is not a directory; looptop keeps its logs and history there: move it away", path.display())]
    NotDir {
        /// The path.
        path: PathBuf,
    },
    /// Another user owns the directory.
    #[error(
        "{} belongs to another user (uid {owner}); looptop writes only in a directory of its own user: remove it or run looptop as its owner",
        path.display()
    )]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
    },
    /// It could not be created or read (permissions, a read-only file system).
    #[error("cannot use {}: {detail}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        detail: String,
    },
}

impl UnsafePath {
    /// Whether looptop must refuse to start (a link, a file, another user's directory), rather
    /// than carry on without logs (the directory cannot be created).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Io { .. })
    }
}

/// Makes `<root>/.looptop` (ignored by git) if missing and checks that it is a real directory of
/// this user; returns its path.
pub fn prepare(root: &Path) -> Result<PathBuf, UnsafePath> {
    let dir = root.join(DATA_DIR);
    ensure_real_dir(&dir)?;
    // create_new never follows a link: a `.gitignore` that is one is left alone.
    let gitignore = dir.join(".gitignore");
    if let Ok(mut file) = std::fs::File::options().write(true).create_new(true).open(&gitignore) {
        use std::io::Write;
        if let Err(e) = file.write_all(b"# looptop's run logs and history\n*\n") {
            log::warn!("cannot write {}: {e}", gitignore.display());
        }
    }
    Ok(dir)
}

/// Creates the directory `path` (its parent must exist) unless it is there, then checks that
/// it is a real directory owned by this user.
pub fn ensure_real_dir(path: &Path) -> Result<(), UnsafePath> {
    let io = |e: std::io::Error| UnsafePath::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    match std::fs::create_dir(path) {
        Ok(()) => {}
        // Checked below: exists as a directory, a link or a file.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    refuse_link_meta(path, &meta)?;
    if !meta.is_dir() {
        return Err(UnsafePath::NotDir {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(UnsafePath::Foreign {
            path: path.to_path_buf(),
            owner: meta.uid(),
        });
    }
    Ok(())
}

/// Refuses a path that is a symbolic link; a missing path is fine.
pub fn refuse_link(path: &Path) -> Result<(), UnsafePath> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => refuse_link_meta(path, &meta),
        Err(_) => Ok(()),
    }
}

fn refuse_link_meta(path: &Path, meta: &std::fs::Metadata) -> Result<(), UnsafePath> {
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let target = std::fs::read_link(path).map_or_else(|e| format!("unreadable: {e}"), |t| t.display().to_string());
    Err(UnsafePath::Link {
        path: path.to_path_buf(),
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        let project = dir.path().join("p");
        std::fs::create_dir(&project).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, project.join(DATA_DIR)).expect("link");
        let error = prepare(&project).expect_err("refused");
        assert!(error.is_refusal());
        assert!(matches!(error, UnsafePath::Link { .. }), "{error:?}");
        assert!(error.to_string().contains(".looptop is a symbolic link"), "{error}");
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("read").count(),
            0,
            "nothing written there"
        );
    }

    #[test]
    fn a_file_is_refused_and_a_real_directory_is_made_and_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(DATA_DIR), "mine").expect("write");
        assert!(matches!(prepare(dir.path()), Err(UnsafePath::NotDir { .. })));
        let fresh = tempfile::tempdir().expect("tempdir");
        let made = prepare(fresh.path()).expect("made");
        assert!(std::fs::symlink_metadata(&made).expect("meta").is_dir());
        assert!(made.join(".gitignore").is_file());
        assert_eq!(prepare(fresh.path()).expect("again"), made);
    }
}
