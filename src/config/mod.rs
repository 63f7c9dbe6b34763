//! looptop.toml: the serde types (unknown keys rejected), loading with errors that point at the
//! line, and resolution into the settings the loop uses. Parsing happens in two stages, as
//! ripgrep does: raw (what the file says, with spans) then resolved (checked, absolute, typed).

pub mod diagnostic;
mod needs;
pub mod trust;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

pub use diagnostic::ConfigError;

use crate::diagnose::metrics::{self, MetricSpec};
pub use crate::diagnose::per_test::Affected;
use crate::sources::profiler::{ProfilerSettings, DEFAULT_RATE_HZ, MAX_RATE_HZ};
use crate::sources::sampler::gpu::GpuSettings;
use crate::sources::sampler::{
    SamplerSettings, DEFAULT_INTERVAL as DEFAULT_SAMPLE_INTERVAL, MIN_INTERVAL as MIN_SAMPLE_INTERVAL,
};

/// The config file's name, looked for in the current directory and its parents.
pub const CONFIG_FILE_NAME: &str = "looptop.toml";
/// Default quiet window after a change before a run starts.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(5);
/// Default cap on the quiet window once a burst of changes stretches it.
pub const DEFAULT_DEBOUNCE_MAX: Duration = Duration::from_millis(500);
/// Where the run history is kept, relative to the project root.
pub const DEFAULT_HISTORY_PATH: &str = ".looptop/history.duckdb";
/// Default time between SIGTERM and SIGKILL when a run is stopped.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(2);

/// What to do with a change that arrives while the job is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// Stop the running run and start again.
    #[default]
    Restart,
    /// Let the run finish, then run once more.
    Queue,
    /// Drop the change.
    Ignore,
}

/// What kind of step a job is: used for display and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A SQL or data query.
    Query,
    /// A test or test suite.
    Test,
    /// A few training steps.
    Train,
    /// Anything else.
    #[default]
    Other,
}

impl JobKind {
    /// The name used in looptop.toml and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Query => "query",
            JobKind::Test => "test",
            JobKind::Train => "train",
            JobKind::Other => "other",
        }
    }
}

/// How a job's command is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// A string run through `sh -c`.
    Shell(String),
    /// A program and its arguments, run directly.
    Argv(Vec<String>),
}

impl fmt::Display for JobCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobCommand::Shell(line) => f.write_str(line),
            JobCommand::Argv(argv) => {
                let words: Vec<String> = argv.iter().map(|w| shell_quote(w)).collect();
                f.write_str(&words.join(" "))
            }
        }
    }
}

/// `word` as a POSIX shell reads it back: as is when plain, else in single quotes.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `[watch]`: what is watched and how changes are coalesced.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Absolute directories to watch.
    pub paths: Vec<PathBuf>,
    /// Extra ignore patterns, in gitignore syntax, relative to the project root.
    pub ignore: Vec<String>,
    /// Quiet window after a change before a run starts.
    pub debounce: Duration,
    /// The longest the quiet window may stretch to during a burst of changes.
    pub debounce_max: Duration,
    /// Poll instead of using inotify.
    pub poll: bool,
}

/// One `[[job]]`, resolved.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job's name, unique in the file.
    pub name: String,
    /// What to run.
    pub command: JobCommand,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// The job's trigger globs as written (empty: every watched file triggers it).
    pub watch_globs: Vec<String>,
    /// The compiled trigger globs, matched against paths relative to the project root.
    pub watch: Option<GlobSet>,
    /// What a change during a run does.
    pub on_change: OnChange,
    /// Stop the run after this long.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when a run is stopped.
    pub stop_grace: Duration,
    /// What kind of step this is.
    pub kind: JobKind,
    /// Numbers to pull out of the job's output (presets and `[[job.metric]]`).
    pub metrics: Vec<MetricSpec>,
    /// For a query job: the SQL file and database it runs (through `looptop exec-query`).
    pub query: Option<QuerySpec>,
    /// Jobs that must have passed (in this session) before this one runs.
    pub needs: Vec<String>,
    /// A JUnit XML file the job's test runner writes, absolute (`junit`).
    pub junit: Option<PathBuf>,
    /// Which tests a pytest job runs after a change (`affected`).
    pub affected: Affected,
}

/// What a query job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// The SQL file, absolute.
    pub sql: PathBuf,
    /// The DuckDB database file, absolute; in memory when `None`.
    pub database: Option<PathBuf>,
}

impl QuerySpec {
    /// What a query job runs, `exe` being the looptop binary: `exe exec-query --sql FILE
    /// [--database FILE]` (also what `JobCommand` shows).
    pub fn argv(&self, exe: &Path) -> Vec<String> {
        let mut argv = vec![
            exe.display().to_string(),
            "exec-query".to_string(),
            "--sql".to_string(),
            self.sql.display().to_string(),
        ];
        if let Some(database) = &self.database {
            argv.extend(["--database".to_string(), database.display().to_string()]);
        }
        argv
    }
}

/// The looptop binary to run `exec-query` with.
pub fn looptop_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("looptop"))
}

impl JobSpec {
    /// A job for a command given on the command line, with every default.
    pub fn ad_hoc(command: JobCommand, cwd: PathBuf) -> Self {
        let name = match &command {
            JobCommand::Argv(argv) => argv.first().cloned().unwrap_or_default(),
            JobCommand::Shell(line) => line.split_whitespace().next().unwrap_or_default().to_string(),
        };
        let name = Path::new(&name)
            .file_name()
            .map_or(name.clone(), |n| n.to_string_lossy().into_owned());
        Self {
            name,
            command,
            cwd,
            env: BTreeMap::new(),
            watch_globs: Vec::new(),
            watch: None,
            on_change: OnChange::default(),
            timeout: None,
            stop_grace: DEFAULT_STOP_GRACE,
            kind: JobKind::default(),
            metrics: Vec::new(),
            query: None,
            needs: Vec::new(),
            junit: None,
            affected: Affected::default(),
        }
    }

    /// Whether the job runs pytest, as far as its command shows (`pytest`, `py.test`,
    /// `python -m pytest`, `uv run pytest`...).
    pub fn runs_pytest(&self) -> bool {
        let words: Vec<String> = match &self.command {
            JobCommand::Shell(line) => line
                .split(|c: char| c.is_whitespace() || ";&|()".contains(c))
                .map(str::to_string)
                .collect(),
            JobCommand::Argv(argv) => argv.clone(),
        };
        words.iter().any(|word| {
            let name = Path::new(word.trim_matches(|c| c == '\'' || c == '"'))
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name == "pytest" || name == "py.test" || name.starts_with("pytest-3")
        })
    }

    /// Whether looptop collects per-test results of the job through its pytest plugin: a job
    /// that runs pytest, or a test job without a `junit` file.
    pub fn collects_pytest(&self) -> bool {
        self.junit.is_none() && (self.kind == JobKind::Test || self.runs_pytest())
    }

    /// Whether a change to `relative` (a path relative to the project root) triggers this job.
    pub fn is_triggered_by(&self, relative: &Path) -> bool {
        self.watch.as_ref().is_none_or(|set| set.is_match(relative))
    }
}

/// The whole configuration, resolved against the project root.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    /// The project root: the config file's directory, or the current directory without one.
    pub root: PathBuf,
    /// `[watch]`.
    pub watch: WatchSettings,
    /// `[[job]]`s, in file order.
    pub jobs: Vec<JobSpec>,
    /// `[history] path`, absolute.
    pub history_path: PathBuf,
    /// `[sample]` and `[gpu]`.
    pub sampler: SamplerSettings,
    /// `[profile]`.
    pub profiler: ProfilerSettings,
    /// `[ui] theme`.
    pub ui_theme: Option<String>,
    /// Whether the file is approved; until `trust::settle` says so, its jobs do not run.
    pub approval: trust::Approval,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file says something wrong.
    #[error("{0}")]
    Invalid(Box<ConfigError>),
}

impl Config {
    /// Defaults for a project without a config file.
    pub fn defaults(root: PathBuf) -> Self {
        Self {
            file: None,
            watch: WatchSettings {
                paths: vec![root.clone()],
                ignore: Vec::new(),
                debounce: DEFAULT_DEBOUNCE,
                debounce_max: DEFAULT_DEBOUNCE_MAX,
                poll: false,
            },
            history_path: root.join(DEFAULT_HISTORY_PATH),
            root,
            jobs: Vec::new(),
            sampler: SamplerSettings::default(),
            profiler: ProfilerSettings::default(),
            ui_theme: None,
            approval: trust::Approval::NoFile,
        }
    }

    /// Finds looptop.toml in `start` or its parents and loads it; defaults rooted at `start` if
    /// there is none.
    pub fn discover(start: &Path) -> Result<Self, LoadError> {
        match find_config_file(start) {
            Some(file) => Self::load(&file),
            None => Ok(Self::defaults(start.to_path_buf())),
        }
    }

    /// Loads and resolves one config file.
    pub fn load(file: &Path) -> Result<Self, LoadError> {
        let source = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        let root = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let root = std::path::absolute(&root).unwrap_or(root);
        Self::parse(file, &source, root).map_err(|e| LoadError::Invalid(Box::new(e)))
    }

    /// Parses config text; `file` is used in messages and `root` to resolve relative paths.
    pub fn parse(file: &Path, source: &str, root: PathBuf) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(source).map_err(|e| ConfigError::from_toml(file, source, &e))?;
        let at = |span: std::ops::Range<usize>, message: String| ConfigError::at(file, source, Some(span), message);
        let watch = resolve_watch(raw.watch, &root, &at)?;
        let mut jobs: Vec<JobSpec> = Vec::with_capacity(raw.job.len());
        let mut written_needs = Vec::with_capacity(raw.job.len());
        for job in raw.job {
            written_needs.push(job.needs.clone());
            if jobs.iter().any(|j| j.name == *job.name.get_ref()) {
                return Err(at(
                    job.name.span(),
                    format!("a job named `{}` is already defined", job.name.get_ref()),
                )
                .with_help("give each [[job]] a unique name"));
            }
            jobs.push(resolve_job(job, &root, &at)?);
        }
        let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
        needs::check(&names, &written_needs, &at)?;
        let history_path = root.join(raw.history.path.as_deref().unwrap_or(DEFAULT_HISTORY_PATH));
        let sampler = resolve_sampler(raw.sample, raw.gpu, &root, &at)?;
        let profiler = resolve_profiler(raw.profile, &at)?;
        Ok(Self {
            file: Some(file.to_path_buf()),
            root,
            watch,
            jobs,
            history_path,
            sampler,
            profiler,
            ui_theme: raw.ui.theme,
            approval: trust::Approval::Unapproved(Vec::new()),
        })
    }

    /// The job called `name`, or an error listing the ones there are.
    pub fn job(&self, name: &str) -> Result<&JobSpec, String> {
        if let Some(job) = self.jobs.iter().find(|j| j.name == name) {
            return Ok(job);
        }
        let names: Vec<String> = self.jobs.iter().map(|j| j.name.clone()).collect();
        let place = self
            .file
            .as_ref()
            .map_or("no looptop.toml found".to_string(), |f| f.display().to_string());
        let mut message = format!("no job named `{name}` ({place})");
        match diagnostic::nearest(name, &names) {
            Some(best) => message.push_str(&format!("; did you mean `{best}`?")),
            None if names.is_empty() => message.push_str("; add a [[job]] to looptop.toml"),
            None => message.push_str(&format!("; jobs: {}", names.join(", "))),
        }
        Err(message)
    }
}

/// The nearest looptop.toml in `start` or one of its parents.
pub fn find_config_file(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(CONFIG_FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// The longest duration looptop takes (a timeout or grace beyond it would overflow the clock).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a humantime duration such as "10m", "2s" or "250ms", up to `MAX_DURATION`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like \"2s\", \"500ms\" or \"10m\""))?;
    if duration > MAX_DURATION {
        return Err(format!(
            "`{text}` is too long: looptop takes durations up to 366d; leave the setting out for no limit"
        ));
    }
    Ok(duration)
}

type At<'a> = dyn Fn(std::ops::Range<usize>, String) -> ConfigError + 'a;

fn resolve_watch(raw: RawWatch, root: &Path, at: &At<'_>) -> Result<WatchSettings, ConfigError> {
    let paths = match raw.paths {
        None => vec![root.to_path_buf()],
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(at(list.span(), "`paths` is empty: looptop would watch nothing".into())
                    .with_help("list at least one directory, or remove the key to watch the project root"));
            }
            let mut paths = Vec::new();
            for path in list.into_inner() {
                let absolute = root.join(path.get_ref());
                if !absolute.is_dir() {
                    return Err(at(
                        path.span(),
                        format!("`{}` is not a directory under {}", path.get_ref(), root.display()),
                    )
                    .with_help("watch paths are directories relative to the project root"));
                }
                paths.push(absolute);
            }
            paths
        }
    };
    let mut ignore = Vec::new();
    for pattern in raw.ignore {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
        if let Err(e) = builder.add_line(None, pattern.get_ref()) {
            return Err(
                at(pattern.span(), format!("bad ignore pattern: {e}")).with_help("patterns use .gitignore syntax")
            );
        }
        ignore.push(pattern.into_inner());
    }
    let debounce = raw
        .debounce_ms
        .map_or(DEFAULT_DEBOUNCE, |ms| Duration::from_millis(*ms.get_ref()));
    let debounce_max = match raw.debounce_max_ms {
        None => DEFAULT_DEBOUNCE_MAX.max(debounce),
        Some(ms) if Duration::from_millis(*ms.get_ref()) < debounce => {
            return Err(at(
                ms.span(),
                format!(
                    "`debounce_max_ms` ({}) is below `debounce_ms` ({})",
                    ms.get_ref(),
                    debounce.as_millis()
                ),
            )
            .with_help("the cap must be at least the quiet window"))
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
    };
    Ok(WatchSettings {
        paths,
        ignore,
        debounce,
        debounce_max,
        poll: raw.poll.unwrap_or(false),
    })
}

fn resolve_sampler(sample: RawSample, gpu: RawGpu, root: &Path, at: &At<'_>) -> Result<SamplerSettings, ConfigError> {
    let interval = match sample.interval_ms {
        None => DEFAULT_SAMPLE_INTERVAL,
        Some(ms) if Duration::from_millis(*ms.get_ref()) < MIN_SAMPLE_INTERVAL => {
            return Err(at(
                ms.span(),
                format!("`interval_ms` = {} is too short to measure CPU shares", ms.get_ref()),
            )
            .with_help(format!("use {} or more", MIN_SAMPLE_INTERVAL.as_millis())))
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
    };
    if let Some(devices) = &gpu.devices {
        if devices.get_ref().is_empty() {
            return Err(
                at(devices.span(), "`devices` is empty: looptop would watch no GPU".into())
                    .with_help("list NVML indices such as [0, 2], or remove the key to watch every GPU"),
            );
        }
    }
    // A bare file name is for the dynamic loader to find; a path is relative to the project.
    let nvml_lib = gpu.nvml_lib.map(|lib| {
        let path = PathBuf::from(&lib);
        if path.components().count() > 1 {
            root.join(path)
        } else {
            path
        }
    });
    Ok(SamplerSettings {
        interval,
        gpu: GpuSettings {
            nvml_lib,
            devices: gpu.devices.map(Spanned::into_inner),
        },
    })
}

fn resolve_profiler(raw: RawProfile, at: &At<'_>) -> Result<ProfilerSettings, ConfigError> {
    let rate_hz = match raw.rate_hz {
        None => DEFAULT_RATE_HZ,
        Some(rate) if *rate.get_ref() == 0 || *rate.get_ref() > u64::from(MAX_RATE_HZ) => {
            return Err(at(
                rate.span(),
                format!("`rate_hz` = {} is outside 1..={MAX_RATE_HZ}", rate.get_ref()),
            )
            .with_help(format!(
                "stacks are read this many times a second; the default is {DEFAULT_RATE_HZ} \
                 (set `python = false` to turn profiling off)"
            )))
        }
        Some(rate) => u32::try_from(*rate.get_ref()).unwrap_or(DEFAULT_RATE_HZ),
    };
    Ok(ProfilerSettings {
        python: raw.python.unwrap_or(true),
        rate_hz,
    })
}

fn resolve_job(raw: RawJob, root: &Path, at: &At<'_>) -> Result<JobSpec, ConfigError> {
    let name_span = raw.name.span();
    let name = raw.name.into_inner();
    if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
        return Err(
            at(name_span, format!("job name `{name}` must be one word")).with_help("use letters, digits, `-` or `_`")
        );
    }
    let (command, query, kind, command_span) =
        resolve_command(&name, name_span, raw.command, raw.sql, raw.database, raw.kind, root, at)?;
    let metrics = resolve_metrics(&name, raw.metrics, raw.metric, at)?;
    let cwd = match raw.cwd {
        None => root.to_path_buf(),
        Some(cwd) => {
            let absolute = root.join(cwd.get_ref());
            if !absolute.is_dir() {
                return Err(at(
                    cwd.span(),
                    format!("`{}` is not a directory under {}", cwd.get_ref(), root.display()),
                ));
            }
            absolute
        }
    };
    let mut builder = GlobSetBuilder::new();
    let mut watch_globs = Vec::new();
    for glob in &raw.watch {
        let compiled = Glob::new(glob.get_ref()).map_err(|e| {
            at(glob.span(), format!("bad glob: {}", e.kind())).with_help("globs look like \"src/**/*.py\" or \"*.sql\"")
        })?;
        builder.add(compiled);
        watch_globs.push(glob.get_ref().clone());
    }
    let watch = if watch_globs.is_empty() {
        None
    } else {
        Some(builder.build().map_err(|e| at(command_span.clone(), e.to_string()))?)
    };
    let duration = |value: Option<Spanned<String>>| -> Result<Option<Duration>, ConfigError> {
        value
            .map(|v| parse_duration(v.get_ref()).map_err(|e| at(v.span(), e)))
            .transpose()
    };
    let junit = raw.junit.map(|path| cwd.join(path));
    Ok(JobSpec {
        name,
        command,
        cwd,
        env: raw.env,
        watch_globs,
        watch,
        on_change: raw.on_change,
        timeout: duration(raw.timeout)?,
        stop_grace: duration(raw.stop_grace)?.unwrap_or(DEFAULT_STOP_GRACE),
        kind,
        metrics,
        query,
        needs: raw.needs.into_iter().map(Spanned::into_inner).collect(),
        junit,
        affected: raw.affected,
    })
}

/// The job's command: its own, or `looptop exec-query` for a query job's `sql`.
#[allow(clippy::too_many_arguments)]
fn resolve_command(
    name: &str,
    name_span: std::ops::Range<usize>,
    command: Option<Spanned<RawCommand>>,
    sql: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    kind: Option<Spanned<JobKind>>,
    root: &Path,
    at: &At<'_>,
) -> Result<(JobCommand, Option<QuerySpec>, JobKind, std::ops::Range<usize>), ConfigError> {
    let kind_value = kind.as_ref().map(|k| *k.get_ref());
    match (command, sql) {
        (Some(command), None) => {
            let span = command.span();
            if let Some(database) = database {
                return Err(
                    at(database.span(), format!("job `{name}` has a `database` but no `sql`"))
                        .with_help("a query job names its SQL file: `sql = \"queries/features.sql\"`"),
                );
            }
            let command = match command.into_inner() {
                RawCommand(JobCommand::Shell(line)) if line.trim().is_empty() => None,
                RawCommand(JobCommand::Argv(argv)) if argv.first().is_none_or(|p| p.is_empty()) => None,
                RawCommand(command) => Some(command),
            };
            let command = command.ok_or_else(|| {
                at(span.clone(), format!("job `{name}` has an empty command"))
                    .with_help("write `command = \"pytest -x\"` or `command = [\"pytest\", \"-x\"]`")
            })?;
            Ok((command, None, kind_value.unwrap_or_default(), span))
        }
        (None, Some(sql)) => {
            if let Some(kind) = kind.filter(|k| *k.get_ref() != JobKind::Query) {
                return Err(
                    at(kind.span(), format!("job `{name}` has `sql`, so its kind is `query`"))
                        .with_help("remove `kind`, or write `kind = \"query\"`"),
                );
            }
            let sql_path = root.join(sql.get_ref());
            if !sql_path.is_file() {
                return Err(at(
                    sql.span(),
                    format!("`{}` is not a file under {}", sql.get_ref(), root.display()),
                )
                .with_help("`sql` names a file of SQL, relative to the project root"));
            }
            let database = database.map(|d| root.join(d.get_ref()));
            let query = QuerySpec {
                sql: sql_path,
                database,
            };
            let argv = query.argv(&looptop_exe());
            Ok((JobCommand::Argv(argv), Some(query), JobKind::Query, sql.span()))
        }
        (Some(command), Some(_)) => Err(at(command.span(), format!("job `{name}` has both `command` and `sql`"))
            .with_help("a query job runs its `sql` itself: remove `command`")),
        (None, None) => Err(at(name_span, format!("job `{name}` has no `command`"))
            .with_help("write `command = \"pytest -x\"`, or `sql = \"queries/x.sql\"` for a query job")),
    }
}

/// Preset metrics (`metrics = ["tqdm"]`) and custom ones (`[[job.metric]]`), checked.
fn resolve_metrics(
    name: &str,
    presets: Vec<Spanned<String>>,
    custom: Vec<RawMetric>,
    at: &At<'_>,
) -> Result<Vec<MetricSpec>, ConfigError> {
    let mut specs = Vec::new();
    for preset in presets {
        let found = metrics::preset(preset.get_ref()).ok_or_else(|| {
            at(
                preset.span(),
                format!("job `{name}`: no metric preset called `{}`", preset.get_ref()),
            )
            .with_help(format!("presets: {}", metrics::PRESETS.join(", ")))
        })?;
        specs.extend(found);
    }
    for metric in custom {
        let spec =
            MetricSpec::new(metric.name.get_ref(), metric.regex.get_ref(), metric.unit.as_deref()).map_err(|e| {
                at(metric.regex.span(), format!("job `{name}`: {e}"))
                    .with_help("for example regex = 'loss=([0-9.]+)': the one group in parentheses is the number")
            })?;
        specs.push(spec);
    }
    Ok(specs)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    watch: RawWatch,
    #[serde(default)]
    job: Vec<RawJob>,
    #[serde(default)]
    history: RawHistory,
    #[serde(default)]
    sample: RawSample,
    #[serde(default)]
    gpu: RawGpu,
    #[serde(default)]
    profile: RawProfile,
    #[serde(default)]
    ui: RawUi,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    theme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSample {
    interval_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    python: Option<bool>,
    rate_hz: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpu {
    nvml_lib: Option<String>,
    devices: Option<Spanned<Vec<u32>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    paths: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    ignore: Vec<Spanned<String>>,
    debounce_ms: Option<Spanned<u64>>,
    debounce_max_ms: Option<Spanned<u64>>,
    poll: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: Spanned<String>,
    regex: Spanned<String>,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    command: Option<Spanned<RawCommand>>,
    sql: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    #[serde(default)]
    metrics: Vec<Spanned<String>>,
    #[serde(default)]
    metric: Vec<RawMetric>,
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    watch: Vec<Spanned<String>>,
    #[serde(default)]
    on_change: OnChange,
    timeout: Option<Spanned<String>>,
    stop_grace: Option<Spanned<String>>,
    kind: Option<Spanned<JobKind>>,
    #[serde(default)]
    needs: Vec<Spanned<String>>,
    junit: Option<String>,
    #[serde(default)]
    affected: Affected,
}

/// `command`: a string or an array of strings, with a message that says so otherwise.
#[derive(Debug)]
struct RawCommand(JobCommand);

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = RawCommand;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command string (run through `sh -c`) or an array of strings (run directly)")
            }
            fn visit_str<E: de::Error>(self, line: &str) -> Result<RawCommand, E> {
                Ok(RawCommand(JobCommand::Shell(line.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCommand, A::Error> {
                let mut argv = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    argv.push(word);
                }
                Ok(RawCommand(JobCommand::Argv(argv)))
            }
        }
        deserializer.deserialize_any(CommandVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("looptop.toml"), source, std::env::temp_dir())
    }

    #[test]
    fn full_config_resolves() {
        let config = parse(
            r#"
[watch]
ignore = ["data/"]
debounce_ms = 8

[[job]]
name = "test"
command = ["pytest", "-x", "a b"]
env = { SEED = "1" }
watch = ["**/*.py"]
on_change = "queue"
timeout = "10m"
stop_grace = "300ms"
kind = "test"
"#,
        )
        .expect("valid");
        assert_eq!(config.watch.debounce, Duration::from_millis(8));
        assert_eq!(config.watch.debounce_max, DEFAULT_DEBOUNCE_MAX);
        let job = &config.jobs[0];
        assert_eq!(job.command.to_string(), "pytest -x 'a b'");
        assert_eq!(job.on_change, OnChange::Queue);
        assert_eq!(job.timeout, Some(Duration::from_secs(600)));
        assert_eq!(job.stop_grace, Duration::from_millis(300));
        assert!(job.is_triggered_by(Path::new("src/model.py")));
        assert!(!job.is_triggered_by(Path::new("README.md")));
    }

    #[test]
    fn unknown_key_names_line_and_suggests() {
        let error = parse("[watch]\n\ndebounce = 3\n").expect_err("unknown key");
        assert_eq!((error.line, error.column), (3, 1));
        assert_eq!(error.message, "unknown key `debounce`");
        assert_eq!(error.help.as_deref(), Some("did you mean `debounce_ms`?"));
    }

    #[test]
    fn bad_variant_and_duration_point_at_their_values() {
        let error = parse("[[job]]\nname = \"a\"\ncommand = \"true\"\non_change = \"restat\"\n").expect_err("variant");
        assert_eq!(error.line, 4);
        assert_eq!(error.help.as_deref(), Some("did you mean `restart`?"));
        let error =
            parse("[[job]]\nname = \"a\"\ncommand = \"true\"\ntimeout = \"ten minutes\"\n").expect_err("duration");
        assert_eq!((error.line, error.column), (4, 11));
    }

    #[test]
    fn semantic_errors_have_spans() {
        let error = parse("[[job]]\nname = \"a\"\ncommand = \"\"\n").expect_err("empty");
        assert_eq!(error.line, 3);
        let error =
            parse("[[job]]\nname = \"a\"\ncommand = \"x\"\n[[job]]\nname = \"a\"\ncommand = \"y\"\n").expect_err("dup");
        assert_eq!(error.line, 5);
        let error = parse("[[job]]\nname = \"a\"\ncommand = 3\n").expect_err("type");
        assert_eq!(error.line, 3);
        assert!(error.message.contains("command string"), "{}", error.message);
        let error = parse("[[job]]\nname = \"a\"\ncommand = \"x\"\nwatch = [\"a/{b\"]\n").expect_err("glob");
        assert_eq!(error.line, 4);
        let error = parse("[watch]\ndebounce_ms = 50\ndebounce_max_ms = 10\n").expect_err("cap");
        assert_eq!(error.line, 3);
    }

    #[test]
    fn profile_settings_resolve_and_a_bad_rate_points_at_its_value() {
        let config = parse("").expect("valid");
        assert_eq!(config.profiler, ProfilerSettings::default());
        assert!(config.profiler.python);
        let config = parse("[profile]\npython = false\nrate_hz = 20\n").expect("valid");
        assert_eq!(
            config.profiler,
            ProfilerSettings {
                python: false,
                rate_hz: 20
            }
        );
        let error = parse("[profile]\nrate_hz = 0\n").expect_err("zero");
        assert_eq!((error.line, error.column), (2, 11));
        assert!(error.message.contains("`rate_hz` = 0"), "{}", error.message);
        let error = parse("[profile]\npython = \"yes\"\n").expect_err("type");
        assert_eq!(error.line, 2);
        let error = parse("[profile]\nrate = 5\n").expect_err("unknown");
        assert_eq!(error.help.as_deref(), Some("did you mean `rate_hz`?"));
    }

    #[test]
    fn job_lookup_suggests_a_name() {
        let config = parse("[[job]]\nname = \"train\"\ncommand = \"x\"\n").expect("valid");
        assert!(config.job("train").is_ok());
        let message = config.job("trian").expect_err("missing");
        assert!(message.contains("did you mean `train`"), "{message}");
    }

    #[test]
    fn ad_hoc_job_is_named_after_its_program() {
        let job = JobSpec::ad_hoc(
            JobCommand::Argv(vec!["/usr/bin/pytest".into(), "-k".into()]),
            PathBuf::from("/"),
        );
        assert_eq!(job.name, "pytest");
        let job = JobSpec::ad_hoc(JobCommand::Shell("python train.py | tee x".into()), PathBuf::from("/"));
        assert_eq!(job.name, "python");
    }
}
