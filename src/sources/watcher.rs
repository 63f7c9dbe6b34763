//! The file watcher: walks the project once (never entering ignored directories), watches each
//! kept directory non-recursively with inotify, adds directories as they appear, filters events
//! through the ignore rules and sends `Event::FilesChanged` batches. When the inotify watch limit
//! is hit it says so, with the sysctl line to raise it, and polls the directories left over.
//!
//! A watched directory of `[watch] paths` that is removed (`rm -rf src; mkdir src`) takes its
//! watch with it; looptop says so, looks for it every `REWATCH_POLL`, and watches it again (with
//! the files already in it) when it is back.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind, RenameMode};
use notify::{EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::ignore_rules::IgnoreRules;
use crate::config::WatchSettings;
use crate::event::{Change, ChangeKind, Event, Notice};
use crate::format::count;

/// How often directories are scanned when polling.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often a removed watch root is looked for.
pub const REWATCH_POLL: Duration = Duration::from_millis(100);
const WATCHES_LIMIT_FILE: &str = "/proc/sys/fs/inotify/max_user_watches";

type RawEvent = notify::Result<notify::Event>;

/// Starts watching in a thread of its own; events go to `tx` until it closes.
pub fn spawn(root: PathBuf, settings: &WatchSettings, tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    let settings = settings.clone();
    std::thread::Builder::new()
        .name("looptop-watcher".into())
        .spawn(move || {
            let (raw_tx, raw_rx) = std_mpsc::channel();
            let mut watch = WatchSet::new(root, &settings, raw_tx, tx);
            for path in &settings.paths {
                watch.add_tree(path, None);
            }
            watch.lost = settings.paths.iter().filter(|p| !p.is_dir()).cloned().collect();
            watch.roots = settings.paths.clone();
            watch.notice(Notice::info(watch.summary()));
            watch.forward(&raw_rx);
        })
        .map(|_| ())
}

/// The watches and the rules that pick them.
struct WatchSet {
    root: PathBuf,
    rules: IgnoreRules,
    inotify: Option<RecommendedWatcher>,
    poller: Option<PollWatcher>,
    raw_tx: std_mpsc::Sender<RawEvent>,
    tx: mpsc::Sender<Event>,
    watched: usize,
    polled: usize,
    /// The directories of `[watch] paths`.
    roots: Vec<PathBuf>,
    /// Those removed since they were watched, looked for until they are back.
    lost: Vec<PathBuf>,
}

impl WatchSet {
    fn new(
        root: PathBuf,
        settings: &WatchSettings,
        raw_tx: std_mpsc::Sender<RawEvent>,
        tx: mpsc::Sender<Event>,
    ) -> Self {
        let rules = IgnoreRules::new(&root, &settings.ignore);
        let mut set = Self {
            root,
            rules,
            inotify: None,
            poller: None,
            raw_tx,
            tx,
            watched: 0,
            polled: 0,
            roots: Vec::new(),
            lost: Vec::new(),
        };
        for warning in std::mem::take(&mut set.rules.warnings) {
            set.notice(Notice::warn(format!("ignore rules: {warning}")));
        }
        if settings.poll {
            set.notice(Notice::info(format!(
                "polling for changes every {} ms ([watch] poll = true)",
                POLL_INTERVAL.as_millis()
            )));
        } else {
            match notify::recommended_watcher(set.raw_tx.clone()) {
                Ok(watcher) => set.inotify = Some(watcher),
                Err(e) => set.notice(Notice::warn(format!(
                    "cannot use inotify ({e}); polling every {} ms instead. If it says too many instances, raise \
                     fs.inotify.max_user_instances (now {}): sudo sysctl fs.inotify.max_user_instances=1024",
                    POLL_INTERVAL.as_millis(),
                    read_limit("/proc/sys/fs/inotify/max_user_instances")
                ))),
            }
        }
        set
    }

    /// "watching 12 directories under /p" (with the polled ones, if any).
    fn summary(&self) -> String {
        let polled = match self.polled {
            0 => String::new(),
            n => format!(" ({n} of them polled)"),
        };
        format!(
            "watching {} under {}{polled}",
            count(self.watched + self.polled, "directory", "directories"),
            self.root.display()
        )
    }

    fn notice(&self, notice: Notice) {
        let _ = self.tx.blocking_send(Event::Notice(notice));
    }

    /// Watches `dir` and every directory under it that is not ignored; files found on the way
    /// are added to `found` (for directories that appeared after start, whose files may have
    /// been written before the watch existed).
    fn add_tree(&mut self, dir: &Path, mut found: Option<&mut Vec<PathBuf>>) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            self.rules.load_dir(&dir);
            self.add_watch(&dir);
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else { continue };
                if self.rules.is_ignored(&path, kind.is_dir()) {
                    continue;
                }
                if kind.is_dir() {
                    stack.push(path);
                } else if let Some(found) = found.as_deref_mut() {
                    found.push(path);
                }
            }
        }
    }

    fn add_watch(&mut self, dir: &Path) {
        if let Some(inotify) = self.inotify.as_mut() {
            match inotify.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched += 1;
                    return;
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    self.notice(Notice::warn(watch_limit_message(self.watched)));
                    // Every later watch would fail the same way: poll from here on.
                    self.inotify = None;
                }
                Err(e) => {
                    self.notice(Notice::warn(format!("cannot watch {}: {e}", dir.display())));
                    return;
                }
            }
        }
        if self.poller.is_none() {
            let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
            let raw_tx = self.raw_tx.clone();
            // Polling sees content only between two scans: it cannot tell a write still in
            // progress, so what it reports as written counts as written and closed.
            let handler = move |raw: RawEvent| {
                let _ = raw_tx.send(raw.map(|mut event| {
                    if matches!(event.kind, EventKind::Modify(ModifyKind::Data(_))) {
                        event.kind = EventKind::Access(AccessKind::Close(AccessMode::Write));
                    }
                    event
                }));
            };
            match PollWatcher::new(handler, config) {
                Ok(poller) => self.poller = Some(poller),
                Err(e) => {
                    self.notice(Notice::error(format!(
                        "cannot poll for changes either ({e}): {} is not watched",
                        dir.display()
                    )));
                    return;
                }
            }
        }
        if let Some(poller) = self.poller.as_mut() {
            match poller.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => self.polled += 1,
                Err(e) => self.notice(Notice::warn(format!("cannot poll {}: {e}", dir.display()))),
            }
        }
    }

    /// Turns raw notify events into batches of changed paths until the loop goes away.
    fn forward(&mut self, raw_rx: &std_mpsc::Receiver<RawEvent>) {
        loop {
            let first = if self.lost.is_empty() {
                raw_rx.recv().ok()
            } else {
                match raw_rx.recv_timeout(REWATCH_POLL) {
                    Ok(event) => Some(event),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
            };
            let closed = first.is_none() && self.lost.is_empty();
            if closed {
                return;
            }
            let at = Instant::now();
            let mut changes = Vec::new();
            let mut rescan = false;
            for raw in first.into_iter().chain(raw_rx.try_iter()) {
                match raw {
                    Ok(event) => {
                        log::debug!("watch event {:?} {:?}", event.kind, event.paths);
                        rescan |= event.need_rescan();
                        self.collect(event, &mut changes);
                    }
                    Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                        self.notice(Notice::warn(watch_limit_message(self.watched)));
                    }
                    Err(e) => self.notice(Notice::warn(format!("file watcher: {e}"))),
                }
            }
            self.rewatch_returned(&mut changes);
            if changes.is_empty() && !rescan {
                continue;
            }
            for change in &mut changes {
                if let Ok(relative) = change.path.strip_prefix(&self.root) {
                    change.path = relative.to_path_buf();
                }
            }
            if self
                .tx
                .blocking_send(Event::FilesChanged { changes, rescan, at })
                .is_err()
            {
                return;
            }
        }
    }

    /// Watches again the roots that were removed and are back; their files count as changed.
    fn rewatch_returned(&mut self, changes: &mut Vec<Change>) {
        let (back, still_lost): (Vec<PathBuf>, Vec<PathBuf>) =
            std::mem::take(&mut self.lost).into_iter().partition(|p| p.is_dir());
        self.lost = still_lost;
        for root in back {
            let mut found = Vec::new();
            self.add_tree(&root, Some(&mut found));
            changes.extend(found.into_iter().map(|file| Change::new(file, ChangeKind::Appeared)));
            self.notice(Notice::info(format!("{} is back: watching it again", root.display())));
        }
    }

    /// Notes a watch root that was removed or moved away (its watch went with it).
    fn root_gone(&mut self, event: &notify::Event) {
        // Even if a new directory already stands there: the watch was on the old one.
        let removed = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
        );
        for path in &event.paths {
            if removed && self.roots.contains(path) && !self.lost.contains(path) {
                self.lost.push(path.clone());
                self.notice(Notice::warn(format!(
                    "{} was removed: it is watched again as soon as it is back",
                    path.display()
                )));
            }
        }
    }

    fn collect(&mut self, event: notify::Event, changes: &mut Vec<Change>) {
        let Some(kind) = change_kind(&event.kind) else {
            return;
        };
        self.root_gone(&event);
        let renamed_both = matches!(event.kind, EventKind::Modify(ModifyKind::Name(RenameMode::Both)));
        for (nth, path) in event.paths.into_iter().enumerate() {
            // A rename seen from both sides names the old path first, the new one second.
            let kind = match (renamed_both, nth) {
                (true, 0) => ChangeKind::Gone,
                (true, _) => ChangeKind::Appeared,
                _ => kind,
            };
            let on_disk = path.symlink_metadata().ok();
            let is_dir = path.is_dir();
            // What is gone by now cannot say whether it was a directory: a directory-only rule
            // (`pytest-cache-files-*/`) must still match it.
            let ignored =
                self.rules.is_ignored(&path, is_dir) || (on_disk.is_none() && self.rules.is_ignored(&path, true));
            if ignored {
                continue;
            }
            if IgnoreRules::is_ignore_file(&path) {
                if let Some(dir) = path.parent() {
                    self.rules.load_dir(dir);
                }
            }
            if is_dir && kind == ChangeKind::Appeared {
                // A new directory (or one moved in) is not itself a change; the files found in
                // it are.
                let mut found = Vec::new();
                self.add_tree(&path, Some(&mut found));
                changes.extend(found.into_iter().map(|file| Change::new(file, ChangeKind::Appeared)));
                if matches!(event.kind, EventKind::Create(_)) {
                    changes.push(Change::new(path, ChangeKind::DirectoryCreated));
                    continue;
                }
            }
            // A regular file is created by opening it for writing: it is written until the
            // writer closes it (which comes as its own event).
            let opened_for_writing =
                matches!(event.kind, EventKind::Create(_)) && on_disk.as_ref().is_some_and(std::fs::Metadata::is_file);
            // Events are read after the fact: a path that is no longer there by now went away
            // (a directory renamed away also reports itself moved, under its old name).
            let gone_by_now = on_disk.is_none() && kind != ChangeKind::Gone;
            changes.push(Change::new(path.clone(), kind));
            if opened_for_writing {
                changes.push(Change::new(path, ChangeKind::Writing));
            } else if gone_by_now {
                changes.push(Change::new(path, ChangeKind::Gone));
            }
        }
    }
}

/// What an event kind did to its paths; None for reads, which change nothing.
fn change_kind(kind: &EventKind) -> Option<ChangeKind> {
    if !counts_as_change(kind) {
        return None;
    }
    Some(match kind {
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => ChangeKind::Appeared,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => ChangeKind::Gone,
        EventKind::Modify(ModifyKind::Data(_)) => ChangeKind::Writing,
        _ => ChangeKind::Changed,
    })
}

/// Whether an event kind means content, names or metadata changed (reads do not).
fn counts_as_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}

fn read_limit(file: &str) -> String {
    std::fs::read_to_string(file).map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string())
}

/// What to tell the user when inotify runs out of watches.
fn watch_limit_message(watched: usize) -> String {
    format!(
        "inotify watch limit reached after {watched} directories (fs.inotify.max_user_watches = {}): the rest \
         are polled every {} ms, so their changes show up later. Raise the limit: \
         sudo sysctl fs.inotify.max_user_watches=524288 (and add that line to /etc/sysctl.d/90-inotify.conf to keep it)",
        read_limit(WATCHES_LIMIT_FILE),
        POLL_INTERVAL.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_do_not_count_writes_do() {
        assert!(!counts_as_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(!counts_as_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(counts_as_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(counts_as_change(&EventKind::Modify(ModifyKind::Name(
            notify::event::RenameMode::To
        ))));
        assert!(counts_as_change(&EventKind::Remove(notify::event::RemoveKind::File)));
        assert!(!counts_as_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime
        ))));
    }

    #[test]
    fn the_limit_message_says_how_to_raise_it() {
        let message = watch_limit_message(8192);
        assert!(message.contains("after 8192 directories"));
        assert!(message.contains("sudo sysctl fs.inotify.max_user_watches="));
        assert!(message.contains(&read_limit(WATCHES_LIMIT_FILE)));
    }

    #[test]
    fn new_directories_and_their_files_are_picked_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let (tx, mut rx) = mpsc::channel(64);
        let settings = crate::config::Config::defaults(root.clone()).watch;
        spawn(root.clone(), &settings, tx).expect("spawn");
        std::thread::sleep(Duration::from_millis(100));
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("a/b/c.py"), "x").expect("write");
        let mut seen = Vec::new();
        wait_for_path(&mut rx, &mut seen, "a/b/c.py");
        // A file written after the new directory is watched arrives too.
        std::fs::write(root.join("a/b/d.py"), "y").expect("write");
        wait_for_path(&mut rx, &mut seen, "a/b/d.py");
    }

    fn wait_for_path(rx: &mut mpsc::Receiver<Event>, seen: &mut Vec<PathBuf>, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !seen.contains(&PathBuf::from(path)) && Instant::now() < deadline {
            match rx.try_recv() {
                Ok(Event::FilesChanged { changes, .. }) => seen.extend(changes.into_iter().map(|c| c.path)),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        assert!(seen.contains(&PathBuf::from(path)), "waited for {path}, saw {seen:?}");
    }
}
