//! The journal: finished runs that could not be written into the history yet (another process
//! held the file: a long `looptop query`, a second looptop), appended as JSON lines to
//! `history.journal` next to the history file. A run looptop has reported finished is thus on
//! disk even if looptop exits or is killed before the history is free. Whoever next opens the
//! history for writing (a looptop starting, the recorder once the file is free, `looptop history`
//! and `query`) moves the journal's runs into it and empties the journal; a run written twice
//! is the same row.
//!
//! Appends and the move both hold an exclusive `flock` on the journal, so two looptops never
//! lose each other's runs; the file is opened without following links (see `data_dir`).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use duckdb::Connection;
use nix::fcntl::{Flock, FlockArg};

use super::run_row::RunRow;
use super::StoreError;

/// The journal of the history at `history`.
pub fn path_for(history: &Path) -> PathBuf {
    history.with_extension("journal")
}

/// Whether the journal holds runs not yet moved into the history.
pub fn has_runs(history: &Path) -> bool {
    std::fs::symlink_metadata(path_for(history)).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// Opens the journal (creating it), never through a link, and locks it.
fn open_locked(journal: &Path) -> Result<Flock<File>, StoreError> {
    let failed = |detail: String| StoreError::Unwritable {
        path: journal.to_path_buf(),
        detail,
    };
    if let Some(dir) = journal.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    }
    let file = File::options()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(journal)
        .map_err(|e| failed(e.to_string()))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| failed(format!("cannot lock it: {e}")))
}

/// Appends a run to the journal of the history at `history` and flushes it to the disk.
pub fn append(history: &Path, row: &RunRow) -> Result<(), StoreError> {
    let journal = path_for(history);
    let mut line = serde_json::to_string(row).map_err(|e| StoreError::Sql(e.to_string()))?;
    line.push('\n');
    let mut file = open_locked(&journal)?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| StoreError::Unwritable {
            path: journal,
            detail: e.to_string(),
        })
}

/// Writes the journal's runs into the history through `conn` and empties the journal; returns
/// how many runs it held. A line that is not a run (cut short by a crash) is skipped.
pub fn ingest(history: &Path, conn: &Connection) -> Result<usize, StoreError> {
    if !has_runs(history) {
        return Ok(0);
    }
    let journal = path_for(history);
    let mut file = open_locked(&journal)?;
    let mut text = String::new();
    let io = |e: std::io::Error| StoreError::Unwritable {
        path: journal.clone(),
        detail: e.to_string(),
    };
    file.rewind().map_err(io)?;
    file.read_to_string(&mut text).map_err(io)?;
    let rows: Vec<RunRow> = text
        .lines()
        .filter_map(|line| match serde_json::from_str(line) {
            Ok(row) => Some(row),
            Err(e) => {
                log::warn!("{}: skipping a line that is not a run ({e})", journal.display());
                None
            }
        })
        .collect();
    for row in &rows {
        row.write(conn).map_err(|e| super::classify(history, &e))?;
    }
    // Emptied only once every run is in the history, under the same lock as the appends.
    file.set_len(0).map_err(io)?;
    Ok(rows.len())
}
