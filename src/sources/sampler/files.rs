//! Which data files a run's processes read, and whether they form a local cluster: on each tick,
//! each process's open descriptors (`/proc/<pid>/fd`, at most `MAX_FDS_PER_PROCESS` of them)
//! are resolved; a regular file with a data file's name (`DataFormat::of_path`) gets its read
//! position from `/proc/<pid>/fdinfo/<fd>` and its size from the descriptor itself. No file's
//! contents are ever read, and a descriptor that is not a data file costs one `readlink`.
//!
//! A process is part of a local cluster when its command line says so (Spark's JVM, `dask
//! worker`, Ray's `raylet` and `ray::` workers) or when it holds a Dask work directory's lock
//! (`worker-*.dirlock`: a `LocalCluster`'s workers are spawned by `multiprocessing`, whose
//! command lines do not name Dask). A command line is read once per process (and again after an
//! `exec`, which changes its name).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::sample::{ClusterEngine, ClusterSample, DataFormat, OpenFile, MAX_OPEN_FILES};

use super::counters::{Meter, Reading};

/// Descriptors looked at per process and tick, at most: a server holding thousands of sockets
/// costs no more than this.
pub const MAX_FDS_PER_PROCESS: usize = 256;

/// The part of a command line looked at, at most.
const MAX_CMDLINE_BYTES: usize = 4096;

/// O_ACCMODE and O_WRONLY, as `fdinfo`'s `flags` (octal) carries them.
const ACCESS_MODE: u32 = 0o3;
const WRITE_ONLY: u32 = 0o1;

/// What a process is to a local cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the engine's tasks.
    Worker(ClusterEngine),
    /// Coordinates them (a scheduler, a driver, a service).
    Service(ClusterEngine),
}

impl Role {
    fn engine(self) -> ClusterEngine {
        match self {
            Self::Worker(engine) | Self::Service(engine) => engine,
        }
    }
}

/// A run's scan: what it knows of each process across ticks.
#[derive(Debug, Clone, Default)]
pub struct FileScan {
    /// Per pid: its start time and name when its command line was read, and the role it gave.
    roles: HashMap<u32, (u64, String, Option<Role>)>,
    /// The workers of the previous tick: only their later readings count as work.
    workers: BTreeSet<u32>,
}

impl FileScan {
    /// The open data files of the processes read in `readings`, and their cluster (with the
    /// workers' CPU from `meter`, which has just read them).
    pub fn scan(
        &mut self,
        proc_root: &Path,
        readings: &[Reading],
        meter: &Meter,
    ) -> (Vec<OpenFile>, Option<ClusterSample>) {
        let mut files = Vec::new();
        let mut roles = HashMap::new();
        for reading in readings {
            let pid = reading.id.pid;
            let known = self
                .roles
                .get(&pid)
                .filter(|(start, name, _)| *start == reading.id.start_ticks && *name == reading.name)
                .map(|&(_, _, role)| role);
            let role = known.unwrap_or_else(|| cmdline_role(&reading.name, &read_cmdline(proc_root, pid)));
            let lock = open_files(proc_root, pid, &mut files);
            roles.insert(pid, (reading.id.start_ticks, reading.name.clone(), role.or(lock)));
        }
        self.roles = roles;
        files.truncate(MAX_OPEN_FILES);
        let members: Vec<(u32, Role)> = self
            .roles
            .iter()
            .filter_map(|(&pid, &(_, _, role))| Some((pid, role?)))
            .collect();
        let workers: BTreeSet<u32> = members
            .iter()
            .filter(|(_, role)| matches!(role, Role::Worker(_)))
            .map(|&(pid, _)| pid)
            .collect();
        let cluster = engine_of(&members).map(|engine| ClusterSample {
            engine,
            processes: u32::try_from(members.len()).unwrap_or(u32::MAX),
            workers: u32::try_from(workers.len()).unwrap_or(u32::MAX),
            worker_cpu_pct: workers
                .intersection(&self.workers)
                .filter_map(|&pid| meter.cpu_pct(pid))
                .sum(),
        });
        self.workers = workers;
        (files, cluster)
    }
}

/// The engine of a cluster's members: the one most of its workers (else its processes) run.
fn engine_of(members: &[(u32, Role)]) -> Option<ClusterEngine> {
    let mut counts: HashMap<ClusterEngine, (usize, usize)> = HashMap::new();
    for &(_, role) in members {
        let count = counts.entry(role.engine()).or_default();
        count.0 += usize::from(matches!(role, Role::Worker(_)));
        count.1 += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(engine, count)| (count, std::cmp::Reverse(engine)))
        .map(|(engine, _)| engine)
}

/// Appends process `pid`'s open data files to `files`; returns the cluster role a Dask work
/// directory lock it holds gives it.
fn open_files(proc_root: &Path, pid: u32, files: &mut Vec<OpenFile>) -> Option<Role> {
    let dir = proc_root.join(pid.to_string());
    let Ok(entries) = std::fs::read_dir(dir.join("fd")) else {
        return None;
    };
    let mut role = None;
    for entry in entries.flatten().take(MAX_FDS_PER_PROCESS) {
        let Some(fd) = entry.file_name().to_str().and_then(|f| f.parse::<u32>().ok()) else {
            continue;
        };
        // Sockets, pipes and anonymous inodes read as `socket:[123]`: not absolute paths.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.is_absolute() {
            continue;
        }
        if let Some(lock) = dask_lock(&target) {
            role = role.or(Some(lock));
            continue;
        }
        let Some(format) = DataFormat::of_path(&target) else {
            continue;
        };
        let Ok(info) = std::fs::read_to_string(dir.join("fdinfo").join(fd.to_string())) else {
            continue;
        };
        let Some((pos_bytes, flags)) = parse_fdinfo(&info) else {
            continue;
        };
        if flags & ACCESS_MODE == WRITE_ONLY {
            continue;
        }
        // The descriptor's own file, even when it was renamed or deleted since.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        files.push(OpenFile {
            pid,
            fd,
            path: target,
            format,
            pos_bytes,
            size_bytes: meta.len(),
        });
    }
    role
}

/// `pos` and `flags` (octal) of an `fdinfo` file.
pub fn parse_fdinfo(info: &str) -> Option<(u64, u32)> {
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
    };
    let pos = field("pos")?.parse().ok()?;
    let flags = u32::from_str_radix(field("flags")?, 8).ok()?;
    Some((pos, flags))
}

/// The role a Dask work directory lock (`worker-x1y2.dirlock`, `scheduler-x1y2.dirlock`,
/// `distributed`'s `WorkSpace`) gives the process holding it.
pub fn dask_lock(path: &Path) -> Option<Role> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".dirlock")?;
    if stem.starts_with("worker-") {
        Some(Role::Worker(ClusterEngine::Dask))
    } else if stem.starts_with("scheduler-") || stem.starts_with("nanny-") {
        Some(Role::Service(ClusterEngine::Dask))
    } else {
        None
    }
}

fn read_cmdline(proc_root: &Path, pid: u32) -> Vec<String> {
    let Ok(bytes) = std::fs::read(proc_root.join(pid.to_string()).join("cmdline")) else {
        return Vec::new();
    };
    let bytes = &bytes[..bytes.len().min(MAX_CMDLINE_BYTES)];
    bytes
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The cluster role of a process named `name` (its `comm`) running `args`.
pub fn cmdline_role(name: &str, args: &[String]) -> Option<Role> {
    let program = |a: &String| -> String {
        Path::new(a)
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let has = |needle: &str| args.iter().any(|a| a.contains(needle));
    if name == "raylet" || name == "gcs_server" || args.first().is_some_and(|a| a.ends_with("/raylet")) {
        return Some(Role::Service(ClusterEngine::Ray));
    }
    if name.starts_with("ray::") || args.first().is_some_and(|a| a.starts_with("ray::")) {
        return Some(Role::Worker(ClusterEngine::Ray));
    }
    if has("org.apache.spark") {
        return Some(if has("org.apache.spark.executor") {
            Role::Worker(ClusterEngine::Spark)
        } else {
            Role::Service(ClusterEngine::Spark)
        });
    }
    // `dask worker …`, `dask-worker …`, `python -m distributed.cli.dask_worker …`.
    let programs: Vec<String> = args.iter().take(3).map(program).collect();
    let dask_cli = programs.iter().position(|p| p == "dask");
    let sub = dask_cli.and_then(|at| args.get(at + 1)).map(String::as_str);
    if programs.iter().any(|p| p == "dask-worker") || sub == Some("worker") || has("distributed.cli.dask_worker") {
        return Some(Role::Worker(ClusterEngine::Dask));
    }
    if programs.iter().any(|p| p == "dask-scheduler")
        || sub == Some("scheduler")
        || has("distributed.cli.dask_scheduler")
    {
        return Some(Role::Service(ClusterEngine::Dask));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Instant;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn cluster_processes_are_told_from_their_names_and_command_lines() {
        let worker = Some(Role::Worker(ClusterEngine::Dask));
        let scheduler = Some(Role::Service(ClusterEngine::Dask));
        assert_eq!(
            cmdline_role("dask", &args("/usr/bin/python3 /usr/local/bin/dask worker tcp://a:1")),
            worker
        );
        assert_eq!(
            cmdline_role("dask-worker", &args("/venv/bin/dask-worker tcp://a:1")),
            worker
        );
        assert_eq!(
            cmdline_role("python3", &args("python3 -m distributed.cli.dask_scheduler")),
            scheduler
        );
        assert_eq!(cmdline_role("dask", &args("/venv/bin/dask scheduler")), scheduler);
        assert_eq!(
            cmdline_role(
                "java",
                &args("java -cp /spark/jars/* org.apache.spark.deploy.SparkSubmit job.py")
            ),
            Some(Role::Service(ClusterEngine::Spark))
        );
        assert_eq!(
            cmdline_role(
                "java",
                &args("java org.apache.spark.executor.CoarseGrainedExecutorBackend")
            ),
            Some(Role::Worker(ClusterEngine::Spark))
        );
        assert_eq!(cmdline_role("raylet", &[]), Some(Role::Service(ClusterEngine::Ray)));
        assert_eq!(cmdline_role("gcs_server", &[]), Some(Role::Service(ClusterEngine::Ray)));
        assert_eq!(cmdline_role("ray::IDLE", &[]), Some(Role::Worker(ClusterEngine::Ray)));
        // A multiprocessing child, a script that mentions dask in a path, a shell: none.
        let spawned = "python3 -B -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5) --multiprocessing-fork";
        assert_eq!(cmdline_role("python3", &args(spawned)), None);
        assert_eq!(cmdline_role("python3", &args("python3 jobs/dask_report.py")), None);
        assert_eq!(cmdline_role("sh", &args("sh -c make")), None);
        // A LocalCluster's workers and scheduler are known by the locks of their work directories.
        assert_eq!(
            dask_lock(Path::new("/tmp/dask-scratch-space/worker-cqu7p1q9.dirlock")),
            worker
        );
        assert_eq!(
            dask_lock(Path::new("/tmp/dask-scratch-space/scheduler-1lcy9fhw.dirlock")),
            scheduler
        );
        assert_eq!(dask_lock(Path::new("/tmp/data/worker-1.csv")), None);
        assert_eq!(
            engine_of(&[
                (1, Role::Service(ClusterEngine::Spark)),
                (2, Role::Worker(ClusterEngine::Dask)),
                (3, Role::Worker(ClusterEngine::Dask)),
            ]),
            Some(ClusterEngine::Dask)
        );
        assert_eq!(engine_of(&[]), None);
    }

    #[test]
    fn fdinfo_gives_the_position_and_the_access_mode() {
        let info = "pos:\t4096\nflags:\t0100002\nmnt_id:\t25\nino:\t1234\n";
        assert_eq!(parse_fdinfo(info), Some((4096, 0o100002)));
        assert_eq!(parse_fdinfo("flags:\t01\n"), None);
    }

    #[test]
    fn a_reader_shows_its_data_file_and_how_far_it_got_and_a_writer_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let csv = dir.path().join("events.csv");
        std::fs::write(&csv, vec![b'x'; 100_000]).expect("write data");
        let mut reader = std::fs::File::open(&csv).expect("open");
        let mut half = vec![0u8; 30_000];
        reader.read_exact(&mut half).expect("read");
        let out = std::fs::File::create(dir.path().join("out.parquet")).expect("create");
        let me = std::process::id();
        let proc_root = Path::new("/proc");
        let reading = super::super::counters::read(proc_root, me, 4096).expect("read myself");
        let mut meter = Meter::default();
        meter.sample(vec![reading.clone()], 1, Instant::now(), None, None);
        let (files, cluster) = FileScan::default().scan(proc_root, &[reading], &meter);
        let ours: Vec<&OpenFile> = files.iter().filter(|f| f.path.starts_with(dir.path())).collect();
        assert_eq!(ours.len(), 1, "{files:?}");
        let file = ours[0];
        assert_eq!(
            (file.format, file.pos_bytes, file.size_bytes),
            (DataFormat::Csv, 30_000, 100_000)
        );
        assert_eq!(file.path.file_name().and_then(|n| n.to_str()), Some("events.csv"));
        assert!(
            !files.iter().any(|f| f.path.ends_with("out.parquet")),
            "written, not read"
        );
        assert_eq!(cluster, None);
        drop((reader, out));
    }
}
