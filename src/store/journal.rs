//! The journal: every run's start and end, appended as JSON lines to `history.journal` next to
//! the history file and flushed to the disk before looptop reports them. It is how a run reaches
//! the history: the recorder moves the journal into the history file only while no run is going
//! (see `recorder`), so nothing of DuckDB runs beside a job, and a run looptop has reported is on
//! disk even if looptop is killed before that (or another process holds the history: a long
//! `looptop query`, a second looptop). Whoever next opens the history for writing (the recorder,
//! a looptop starting, `looptop history` and `query`) moves the journal's runs into it; a run
//! written twice is the same row.
//!
//! Appends and the move both hold an exclusive `flock` on the journal, so two looptops never
//! lose each other's runs; the file is opened without following links (see `data_dir`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

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

/// Writes the journal's runs into the history through `conn` (a write connection, which DuckDB
/// lets one process hold at a time) and removes them from the journal; returns how many runs it
/// held. A line that is not a run (cut short by a crash) is skipped. The journal is locked only
/// to read it and to cut what was read, never while the history is written, so an append (a run
/// starting or ending) never waits for the history; what is appended meanwhile stays for the
/// next time. A crash midway writes the same rows again next time: a run written twice is the
/// same row.
pub fn ingest(history: &Path, conn: &Connection) -> Result<usize, StoreError> {
    if !has_runs(history) {
        return Ok(0);
    }
    // One ingestion at a time in this process too (DuckDB's lock only keeps other processes out).
    let _alone = INGESTING.lock().unwrap_or_else(PoisonError::into_inner);
    let journal = path_for(history);
    let io = |e: std::io::Error| StoreError::Unwritable {
        path: journal.clone(),
        detail: e.to_string(),
    };
    let mut read = Vec::new();
    {
        let mut file = open_locked(&journal)?;
        file.rewind().map_err(io)?;
        file.read_to_end(&mut read).map_err(io)?;
    }
    let rows: Vec<RunRow> = String::from_utf8_lossy(&read)
        .lines()
        .filter_map(|line| match serde_json::from_str(line) {
            Ok(row) => Some(row),
            Err(e) => {
                log::warn!("{}: skipping a line that is not a run ({e})", journal.display());
                None
            }
        })
        .collect();
    // A run's start is in its end's row too: a start followed by its end is written once.
    let ended: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|r| r.end.is_some())
        .map(|r| r.run_id.as_str())
        .collect();
    let rows: Vec<&RunRow> = rows
        .iter()
        .filter(|r| r.end.is_some() || !ended.contains(r.run_id.as_str()))
        .collect();
    // One transaction for them all: a commit each would cost a flush of the file each.
    let write_all = || -> duckdb::Result<()> {
        conn.execute_batch("BEGIN TRANSACTION")?;
        for row in &rows {
            if let Err(e) = row.write(conn) {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        conn.execute_batch("COMMIT")
    };
    write_all().map_err(|e| super::classify(history, &e))?;
    // Only what was read goes, once every run of it is in the history.
    let mut file = open_locked(&journal)?;
    let mut appended = Vec::new();
    file.seek(SeekFrom::Start(read.len() as u64)).map_err(io)?;
    file.read_to_end(&mut appended).map_err(io)?;
    file.set_len(0).map_err(io)?;
    file.write_all(&appended).and_then(|()| file.sync_data()).map_err(io)?;
    Ok(rows.len())
}

/// Held while this process moves the journal into the history.
static INGESTING: Mutex<()> = Mutex::new(());
