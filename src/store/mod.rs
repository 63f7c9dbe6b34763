//! The run history: an embedded DuckDB file (`.looptop/history.duckdb` unless `[history] path`
//! says otherwise). Nothing else in looptop knows SQL.
//!
//! DuckDB lets one process at a time hold a file open for writing, and while it does no other
//! process can open it at all. So every connection here is short-lived: the recorder opens the
//! file, writes a run's row and closes it again (a few milliseconds), and readers (`looptop
//! history`, `query`, `export`, another looptop starting) wait and retry while it is busy. Two
//! looptops in one project, or a query during a run, just take turns.

pub mod data_dir;
pub mod journal;
pub mod reader;
pub mod recorder;
pub mod run_row;
pub mod samples;
pub mod schema;
pub mod table;
pub mod test_cases;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use duckdb::{AccessMode, Config, Connection};

/// How long to wait for another process to let go of the history file.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Why the history could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum StoreError {
    /// The file is something else.
    #[error("{} is not a looptop history file ({detail}); move it away, or set [history] path in looptop.toml to another file", path.display())]
    NotHistory {
        /// The file.
        path: PathBuf,
        /// What DuckDB or looptop found.
        detail: String,
    },
    /// A newer looptop wrote it.
    #[error("{} was written by a newer looptop (history schema {found}; this looptop knows up to {supported}); upgrade looptop, or set [history] path in looptop.toml to another file", path.display())]
    Newer {
        /// The file.
        path: PathBuf,
        /// The file's schema version.
        found: i64,
        /// The newest version this looptop knows.
        supported: i64,
    },
    /// The file or its directory cannot be written.
    #[error("cannot write {} ({detail}); check the permissions of its directory, or set [history] path in looptop.toml to a writable place", path.display())]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        detail: String,
    },
    /// Another process held the file for longer than `BUSY_WAIT`.
    #[error("{} stayed busy for {} s: another process holds it ({detail})", path.display(), BUSY_WAIT.as_secs())]
    Busy {
        /// The file.
        path: PathBuf,
        /// DuckDB's words, which name the process.
        detail: String,
    },
    /// There is no history yet.
    #[error("no history at {}: runs are recorded there by `looptop run`", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// DuckDB refused a statement.
    #[error("{0}")]
    Sql(String),
    /// The file or its directory is a symbolic link (see `data_dir`).
    #[error("{0}")]
    Unsafe(String),
}

/// How a connection is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write; creates the file (and its directory) when missing.
    Write,
    /// Read only; the file must exist.
    Read,
}

/// Opens the history file, waiting up to `BUSY_WAIT` while another process holds it.
pub fn open(path: &Path, access: Access) -> Result<Connection, StoreError> {
    match access {
        Access::Read if !path.exists() => {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            })
        }
        Access::Write => {
            let refuse = |e: data_dir::UnsafePath| StoreError::Unsafe(e.to_string());
            data_dir::refuse_link(path).map_err(refuse)?;
            if let Some(dir) = path.parent() {
                data_dir::refuse_link(dir).map_err(refuse)?;
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unwritable {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
            }
        }
        Access::Read => {}
    }
    let deadline = Instant::now() + BUSY_WAIT;
    let mut pause = Duration::from_millis(2);
    loop {
        let mode = match access {
            Access::Write => AccessMode::ReadWrite,
            Access::Read => AccessMode::ReadOnly,
        };
        // Never reach for the network to fetch an extension a query asks for. The recorder's
        // writes are a few rows each: one thread, rather than a pool of one per core started
        // and stopped at every write on a many-core GPU machine.
        let opened = Config::default()
            .access_mode(mode)
            .and_then(|config| config.with("autoinstall_known_extensions", "false"))
            .and_then(|config| match access {
                Access::Write => config.threads(1),
                Access::Read => Ok(config),
            })
            .and_then(|config| Connection::open_with_flags(path, config));
        let classified = opened.map_err(|e| match classify(path, &e) {
            // Another looptop is creating the file: it is busy, not foreign.
            StoreError::NotHistory { path, detail } if being_created(&path) => StoreError::Busy {
                detail: format!("another process is creating it ({detail})"),
                path,
            },
            other => other,
        });
        match classified {
            Err(StoreError::Busy { .. }) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Size of DuckDB's file headers: a file shorter than this is not a database yet.
const DUCKDB_HEADERS_BYTES: u64 = 3 * 4096;

/// Whether `path` looks like a DuckDB file that another process has only begun to write: empty,
/// or shorter than the headers and holding nothing but zeros or DuckDB's magic bytes so far.
fn being_created(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let len = file.metadata().map_or(u64::MAX, |m| m.len());
    if len >= DUCKDB_HEADERS_BYTES {
        return false;
    }
    let mut head = Vec::with_capacity(16);
    if file.by_ref().take(16).read_to_end(&mut head).is_err() {
        return false;
    }
    head.is_empty() || head.iter().all(|&b| b == 0) || head.get(8..12) == Some(b"DUCK".as_slice())
}

/// Sorts a DuckDB error about `path` into what the user can do about it.
pub fn classify(path: &Path, error: &duckdb::Error) -> StoreError {
    let detail = error.to_string();
    let path = path.to_path_buf();
    // "Could not read enough bytes": the file was read while another process was writing it.
    if detail.contains("Could not set lock")
        || detail.contains("Conflicting lock")
        || detail.contains("Could not read enough bytes")
    {
        StoreError::Busy { path, detail }
    } else if detail.contains("not a valid DuckDB database")
        || detail.contains("database file with version")
        || detail.contains("is not a DuckDB")
    {
        StoreError::NotHistory { path, detail }
    } else if detail.contains("Permission denied")
        || detail.contains("Read-only file system")
        || detail.contains("Cannot open file")
    {
        StoreError::Unwritable { path, detail }
    } else {
        StoreError::Sql(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_only_begun_is_being_created_and_other_text_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.duckdb");
        for (content, creating) in [
            (&b""[..], true),
            (&[0u8; 100][..], true),
            (&b"\0\0\0\0\0\0\0\0DUCK\0\0"[..], true),
            (&b"not a database\n"[..], false),
        ] {
            std::fs::write(&path, content).expect("write");
            assert_eq!(being_created(&path), creating, "{content:?}");
        }
        std::fs::write(&path, vec![0u8; 3 * 4096]).expect("write");
        assert!(!being_created(&path), "as long as the headers: something else");
    }
}
