//! The data files a run read, whatever the job (Python with pandas, polars or NumPy, any
//! tool): folded sample by sample from the descriptors the sampler saw open
//! (`TreeSample::open_files`) into `run_finished.files_read`, and the `columnar` hint for a job
//! that spends a real share of its run reading CSV or JSON. Query jobs get `columnar` from
//! their plan instead (`data::columnar`).
//!
//! A file's `bytes` is how far its descriptors' read positions went, added up over its
//! descriptors: a descriptor seen for the first time had read up to its position; one whose
//! position went back (a rewind, to read the file again) read from the start again. Readers
//! that use `pread` or `mmap` (Parquet and Arrow libraries often do) leave the position where it
//! was, so their `bytes` says little; the file's size and the time it was open still count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hints::Hint;
use super::thresholds::{COLUMNAR_FILE_OPEN_SHARE, COLUMNAR_MIN_BYTES, MIN_SAMPLES, REREAD_FACTOR};
use crate::report::format_bytes;
use crate::sample::{DataFormat, Sample};

/// `run_finished.files_read` names this many files at most (those open longest first).
pub const MAX_FILES_READ: usize = 20;

/// One data file a run read: an entry of `run_finished.files_read` and a row of the history's
/// `files_read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRead {
    /// Relative to the project root when inside it, else absolute.
    pub path: String,
    /// Its format, from its name.
    pub format: DataFormat,
    /// Bytes read through its descriptors, as far as the samples saw (see the module's note).
    pub bytes: u64,
    /// Its size.
    pub size_bytes: u64,
    /// Share of the run's samples in which a process of the run had it open, in %.
    pub open_pct: f64,
    /// When it was first seen open, in ms after the run's start.
    pub first_open_ms: f64,
}

/// What a run's samples say of its data files so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilesTally {
    samples: u32,
    files: BTreeMap<PathBuf, Seen>,
    /// Each open descriptor (pid, fd) of the last sample: its file and read position.
    handles: HashMap<(u32, u32), (PathBuf, u64)>,
    /// Bytes the tree read through read calls, integrated over the samples.
    read_chars: f64,
    last_t_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    format: DataFormat,
    size_bytes: u64,
    bytes: u64,
    samples_open: u32,
    first_open_ms: f64,
}

impl FilesTally {
    /// Adds one sample.
    pub fn add(&mut self, sample: &Sample) {
        self.samples += 1;
        let since_ms = sample.t_ms - self.last_t_ms.unwrap_or(0.0);
        self.last_t_ms = Some(sample.t_ms);
        self.read_chars += sample.tree.read_chars_per_s * since_ms.max(0.0) / 1000.0;
        let mut open_now = BTreeSet::new();
        let mut handles = HashMap::with_capacity(sample.tree.open_files.len());
        for file in &sample.tree.open_files {
            let seen = self.files.entry(file.path.clone()).or_insert(Seen {
                format: file.format,
                size_bytes: file.size_bytes,
                bytes: 0,
                samples_open: 0,
                first_open_ms: sample.t_ms,
            });
            seen.size_bytes = seen.size_bytes.max(file.size_bytes);
            let before = self
                .handles
                .get(&(file.pid, file.fd))
                .filter(|(path, _)| *path == file.path)
                .map(|&(_, pos)| pos);
            seen.bytes += match before {
                Some(pos) if file.pos_bytes >= pos => file.pos_bytes - pos,
                _ => file.pos_bytes,
            };
            if open_now.insert(file.path.clone()) {
                seen.samples_open += 1;
            }
            handles.insert((file.pid, file.fd), (file.path.clone(), file.pos_bytes));
        }
        self.handles = handles;
    }

    /// The files, those open longest first (at most `MAX_FILES_READ`), with paths relative to
    /// `root` where they are inside it.
    pub fn summary(&self, root: &Path) -> Vec<FileRead> {
        let samples = f64::from(self.samples.max(1));
        let mut files: Vec<FileRead> = self
            .files
            .iter()
            .map(|(path, seen)| FileRead {
                path: relative(path, root),
                format: seen.format,
                bytes: seen.bytes,
                size_bytes: seen.size_bytes,
                open_pct: (f64::from(seen.samples_open) / samples * 1000.0).round() / 10.0,
                first_open_ms: (seen.first_open_ms * 10.0).round() / 10.0,
            })
            .collect();
        files.sort_by(|a, b| {
            b.open_pct
                .total_cmp(&a.open_pct)
                .then(b.bytes.cmp(&a.bytes))
                .then(a.path.cmp(&b.path))
        });
        files.truncate(MAX_FILES_READ);
        files
    }

    /// The size of every data file the run read, together: its input.
    pub fn input_bytes(&self) -> u64 {
        self.files.values().map(|s| s.size_bytes).sum()
    }

    /// Bytes the run's processes read through read calls (cached data, pipes and sockets too).
    pub fn read_chars(&self) -> u64 {
        self.read_chars as u64
    }

    /// Samples added.
    pub fn samples(&self) -> u32 {
        self.samples
    }
}

/// `path` relative to `root` when inside it.
fn relative(path: &Path, root: &Path) -> String {
    let shown = if root.as_os_str().is_empty() {
        path
    } else {
        path.strip_prefix(root).unwrap_or(path)
    };
    shown.display().to_string()
}

/// The id of the hint for data kept as text.
pub const COLUMNAR: &str = "columnar";

/// `columnar` for a job (not a query job) whose processes had CSV or JSON files open for a
/// real share of the run (`files`, from a tally of `samples` samples); `read_chars` is what the
/// whole tree read.
pub fn hints(files: &[FileRead], samples: u32, read_chars: u64) -> Vec<Hint> {
    if (samples as usize) < MIN_SAMPLES {
        return Vec::new();
    }
    let text: Vec<&FileRead> = files
        .iter()
        .filter(|f| {
            f.format.is_text()
                && f.open_pct >= COLUMNAR_FILE_OPEN_SHARE * 100.0
                && f.size_bytes.max(f.bytes) >= COLUMNAR_MIN_BYTES
        })
        .collect();
    let Some(first) = text.first() else {
        return Vec::new();
    };
    let size: u64 = text.iter().map(|f| f.size_bytes).sum();
    let bytes: u64 = text.iter().map(|f| f.bytes).sum();
    let format = first.format.as_str().to_uppercase();
    let what = match text.len() {
        1 => format!(
            "{} ({} of {format}) was open",
            first.path,
            format_bytes(first.size_bytes)
        ),
        n => format!(
            "{} ({} of {format}) and {} more text file{} ({} in all) were open",
            first.path,
            format_bytes(first.size_bytes),
            n - 1,
            if n == 2 { "" } else { "s" },
            format_bytes(size)
        ),
    };
    let times = if size > 0 { bytes as f64 / size as f64 } else { 0.0 };
    let again = if times >= REREAD_FACTOR {
        format!(
            ", and read {times:.1} times over ({} parsed for {} of files)",
            format_bytes(bytes),
            format_bytes(size)
        )
    } else {
        String::new()
    };
    let stem = first
        .path
        .rsplit_once('.')
        .map_or(first.path.as_str(), |(stem, _)| stem);
    let text_line = format!(
        "{what} for {:.0} % of the run{again}: text is parsed whole, every column of every row, on every run; \
         convert it once (a prepare job writing {stem}.parquet, or .npy for arrays) and read that: only the \
         columns needed, already typed",
        first.open_pct
    );
    let mut hint = Hint::new(COLUMNAR, text_line)
        .with("file", first.path.clone())
        .with("format", first.format.as_str())
        .with("bytes", bytes)
        .with("size_bytes", size)
        .with("open_pct", first.open_pct)
        .with(
            "files",
            text.iter()
                .map(|f| {
                    serde_json::json!({
                        "path": f.path,
                        "format": f.format.as_str(),
                        "bytes": f.bytes,
                        "size_bytes": f.size_bytes,
                        "open_pct": f.open_pct,
                    })
                })
                .collect::<Vec<_>>(),
        );
    if read_chars > 0 {
        hint = hint.with("tree_read_bytes", read_chars);
    }
    vec![hint]
}

/// "files read: data/events.csv 24.0 MB csv, open 64 % · …": the description's line.
pub fn describe(files: &[FileRead]) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let shown: Vec<String> = files
        .iter()
        .take(3)
        .map(|f| {
            let read = if f.bytes > 0 && f.bytes != f.size_bytes {
                format!(" ({} read)", format_bytes(f.bytes))
            } else {
                String::new()
            };
            format!(
                "{} {} {}{read}, open {:.0} %",
                f.path,
                format_bytes(f.size_bytes),
                f.format.as_str(),
                f.open_pct
            )
        })
        .collect();
    let more = match files.len() {
        n if n > 3 => format!(" · {} more", n - 3),
        _ => String::new(),
    };
    Some(format!("files read: {}{more}", shown.join(" · ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RunKey;
    use crate::sample::{OpenFile, TreeSample};

    fn sample(t_ms: f64, open: Vec<OpenFile>) -> Sample {
        Sample {
            key: RunKey(1),
            t_ms,
            host: Default::default(),
            tree: TreeSample {
                open_files: open,
                read_chars_per_s: 4e6,
                ..TreeSample::default()
            },
            gpus: Vec::new(),
        }
    }

    fn open(fd: u32, path: &str, pos: u64, size: u64) -> OpenFile {
        let path = PathBuf::from(path);
        OpenFile {
            pid: 10,
            fd,
            format: DataFormat::of_path(&path).expect("a data file"),
            path,
            pos_bytes: pos,
            size_bytes: size,
        }
    }

    /// A run of 10 samples: `events.csv` (8 MB) read through for the first 6 of them, then
    /// read again from the start for 2 more on a new descriptor.
    fn tally(csv: &str) -> FilesTally {
        let mut tally = FilesTally::default();
        for i in 0..10u64 {
            let t = 250.0 * (i + 1) as f64;
            let open = match i {
                0..=5 => vec![open(3, csv, (i + 1) * 1_300_000, 8_000_000)],
                6..=7 => vec![open(4, csv, (i - 5) * 4_000_000, 8_000_000)],
                _ => Vec::new(),
            };
            tally.add(&sample(t, open));
        }
        tally
    }

    #[test]
    fn a_file_is_summed_over_its_descriptors_and_named_from_the_root() {
        let tally = tally("/p/data/events.csv");
        let files = tally.summary(Path::new("/p"));
        assert_eq!(files.len(), 1);
        let file = &files[0];
        assert_eq!(file.path, "data/events.csv");
        assert_eq!((file.format, file.size_bytes), (DataFormat::Csv, 8_000_000));
        // 7.8 MB through the first descriptor, then 8 MB again through the second.
        assert_eq!(file.bytes, 7_800_000 + 8_000_000);
        assert_eq!(file.open_pct, 80.0);
        assert_eq!(file.first_open_ms, 250.0);
        assert_eq!(tally.input_bytes(), 8_000_000);
        // 4 MB/s over 2.5 s.
        assert_eq!(tally.read_chars(), 10_000_000);
        let outside = FilesTally::summary(&tally, Path::new("/elsewhere"));
        assert_eq!(outside[0].path, "/p/data/events.csv");
    }

    #[test]
    fn a_csv_open_for_most_of_the_run_gets_columnar_and_its_npy_twin_does_not() {
        let csv = tally("/p/data/events.csv");
        let found = hints(&csv.summary(Path::new("/p")), csv.samples(), csv.read_chars());
        assert_eq!(found.len(), 1, "{found:?}");
        let hint = &found[0];
        assert_eq!(hint.id, "columnar");
        assert_eq!(hint.evidence["file"], "data/events.csv");
        assert_eq!(hint.evidence["format"], "csv");
        assert_eq!(hint.evidence["size_bytes"], 8_000_000);
        assert_eq!(hint.evidence["bytes"], 15_800_000);
        assert_eq!(hint.evidence["open_pct"], 80.0);
        assert_eq!(hint.evidence["files"][0]["path"], "data/events.csv");
        assert!(
            hint.text
                .starts_with("data/events.csv (8.0 MB of CSV) was open for 80 % of the run: text is parsed whole"),
            "{}",
            hint.text
        );
        assert!(hint.text.contains("data/events.parquet"), "{}", hint.text);
        let npy = tally("/p/data/events.npy");
        assert!(hints(&npy.summary(Path::new("/p")), npy.samples(), 0).is_empty());
    }

    #[test]
    fn a_brief_or_small_text_read_is_no_cause_and_rereads_are_said() {
        let file = |open_pct: f64, size_bytes: u64, bytes: u64| FileRead {
            path: "a.json".into(),
            format: DataFormat::Json,
            bytes,
            size_bytes,
            open_pct,
            first_open_ms: 0.0,
        };
        assert!(hints(&[file(10.0, 50_000_000, 50_000_000)], 20, 0).is_empty(), "brief");
        assert!(hints(&[file(90.0, 200_000, 200_000)], 20, 0).is_empty(), "small");
        assert!(
            hints(&[file(90.0, 50_000_000, 50_000_000)], 2, 0).is_empty(),
            "too few samples"
        );
        let again = hints(&[file(90.0, 5_000_000, 20_000_000)], 20, 0);
        assert!(again[0].text.contains("read 4.0 times over"), "{}", again[0].text);
        let two = hints(&[file(90.0, 5_000_000, 5_000_000), file(40.0, 3_000_000, 0)], 20, 0);
        assert!(
            two[0]
                .text
                .starts_with("a.json (5.0 MB of JSON) and 1 more text file (8.0 MB in all) were open"),
            "{}",
            two[0].text
        );
        assert_eq!(
            describe(&[file(90.0, 5_000_000, 2_000_000)]).as_deref(),
            Some("files read: a.json 5.0 MB json (2.0 MB read), open 90 %")
        );
        assert_eq!(describe(&[]), None);
    }
}
