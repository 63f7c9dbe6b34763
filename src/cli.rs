//! Command-line interface: clap definitions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{parse_duration, OnChange};

/// Watch a project, rerun the targeted step on change, and time every loop.
#[derive(Debug, Parser)]
#[command(name = "looptop", version, about)]
pub struct Cli {
    /// Use this config file instead of looking for looptop.toml in . and its parents.
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Load NVML from this file (the NVIDIA driver's libnvidia-ml.so.1) instead of the usual
    /// places; also LOOPTOP_NVML_LIB, or [gpu] nvml_lib in looptop.toml.
    #[arg(long, global = true, value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,
    /// What to do; without a subcommand, the TUI.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The TUI's options.
    #[command(flatten)]
    pub tui: TuiArgs,
}

impl Cli {
    /// Parses the command line, exiting with clap's usage message on a mistake, as
    /// `Parser::parse` does, and also when an option of the TUI stands beside a subcommand.
    /// Global options (`-c`, `--nvml-lib`) go before or after the subcommand, as in cargo or git.
    pub fn parse_checked() -> Self {
        let cli = Self::parse();
        if let Err(error) = cli.check() {
            error.exit();
        }
        cli
    }

    /// An error when an option that only the TUI takes is given together with a subcommand
    /// (`looptop --theme light run`): clap would otherwise drop it without a word.
    pub fn check(&self) -> Result<(), clap::Error> {
        let Some(command) = &self.command else {
            return Ok(());
        };
        let tui = &self.tui;
        let misplaced = [
            (tui.job.is_some(), "--job"),
            (tui.theme.is_some(), "--theme"),
            (tui.trust, "--trust"),
            (tui.postpone, "--postpone"),
            (!tui.command.is_empty(), "-- COMMAND"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect::<Vec<_>>();
        if misplaced.is_empty() {
            return Ok(());
        }
        let name = command.name();
        Err(<Self as clap::CommandFactory>::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "{} before `{name}`: that is an option of the TUI (plain `looptop`); options of \
                 `looptop {name}` go after it (see `looptop {name} --help`)",
                misplaced.join(", ")
            ),
        ))
    }
}

/// Plain `looptop`: the TUI.
#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Show this job first (all the config's jobs run; Tab switches).
    #[arg(short, long, value_name = "NAME", conflicts_with = "command")]
    pub job: Option<String>,
    /// Color theme: dark, light, high-contrast, gruvbox, nord, or a file in ~/.config/looptop/themes.
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Run a config's commands even if this looptop.toml was never approved here.
    #[arg(long)]
    pub trust: bool,
    /// Do not run at start; wait for the first change.
    #[arg(long)]
    pub postpone: bool,
    /// A command to run instead of the config's jobs, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job now and again after each batch of file changes, without the TUI.
    Run(RunArgs),
    /// Run a job N times back to back and print its timing statistics (runs are recorded).
    Bench(BenchArgs),
    /// Approve the commands of this project's looptop.toml (as it is now) on this machine.
    Trust,
    /// Show recent runs, newest first.
    History(HistoryArgs),
    /// Show per-job statistics: runs, median, p90, MAD, min, max, and the trend of the last 20.
    Stats(StatsArgs),
    /// Show the slowest tests of test jobs: median, last time and outcome, flaky, last change, trend.
    Tests(TestsArgs),
    /// Run SQL over the history (tables: runs, samples, gpu_samples, thread_samples, metrics, test_cases), read-only.
    Query(QueryArgs),
    /// Write every history table to a directory, one file each.
    Export(ExportArgs),
    /// Show what looptop can see here: config, history, inotify limits, NVML and each GPU.
    Doctor(DoctorArgs),
    /// Write a starter looptop.toml from what this directory holds (never over an existing one).
    Init(InitArgs),
    /// Print shell completions: looptop completions bash > ~/.local/share/bash-completion/completions/looptop
    Completions(CompletionsArgs),
    /// Run a SQL file with DuckDB's profiling on (what a query job runs).
    #[command(hide = true)]
    ExecQuery(ExecQueryArgs),
}

impl Command {
    /// The subcommand's name as typed on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Run(_) => "run",
            Self::Bench(_) => "bench",
            Self::Trust => "trust",
            Self::History(_) => "history",
            Self::Stats(_) => "stats",
            Self::Tests(_) => "tests",
            Self::Query(_) => "query",
            Self::Export(_) => "export",
            Self::Doctor(_) => "doctor",
            Self::Init(_) => "init",
            Self::Completions(_) => "completions",
            Self::ExecQuery(_) => "exec-query",
        }
    }
}

/// `looptop init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Print the config instead of writing looptop.toml.
    #[arg(long)]
    pub print: bool,
}

/// `looptop completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `looptop exec-query`.
#[derive(Debug, Args)]
pub struct ExecQueryArgs {
    /// The SQL file; its last statement's result is shown and profiled.
    #[arg(long, value_name = "FILE")]
    pub sql: PathBuf,
    /// The DuckDB database (in memory without it).
    #[arg(long, value_name = "FILE")]
    pub database: Option<PathBuf>,
}

/// `looptop doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--json` / `--csv` for commands that print tables.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// One JSON object per row.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header row.
    #[arg(long)]
    pub csv: bool,
}

/// `looptop history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this job's runs.
    #[arg(short, long, value_name = "NAME")]
    pub job: Option<String>,
    /// How many runs to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `looptop stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this job.
    #[arg(short, long, value_name = "NAME")]
    pub job: Option<String>,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `looptop tests`.
#[derive(Debug, Args)]
pub struct TestsArgs {
    /// Only this job's tests.
    #[arg(short, long, value_name = "NAME")]
    pub job: Option<String>,
    /// How many tests to show, slowest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub slowest: usize,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `looptop query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL, for example "SELECT job, median(duration_ms) FROM runs GROUP BY job".
    pub sql: String,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `looptop export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// File format.
    #[arg(long, value_name = "FORMAT")]
    pub format: ExportFormatArg,
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `--format` values of `looptop export`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormatArg {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header.
    Csv,
}

impl From<ExportFormatArg> for crate::store::reader::ExportFormat {
    fn from(arg: ExportFormatArg) -> Self {
        match arg {
            ExportFormatArg::Parquet => Self::Parquet,
            ExportFormatArg::Csv => Self::Csv,
        }
    }
}

/// `looptop bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run this job from looptop.toml (default: the first one).
    #[arg(short, long, value_name = "NAME", conflicts_with = "command")]
    pub job: Option<String>,
    /// Measured runs.
    #[arg(short = 'n', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Runs before the measured ones, not counted (caches, compilation).
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,
    /// Print run events and the summary as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Run the config's commands even if this looptop.toml was never approved here.
    #[arg(long)]
    pub trust: bool,
    /// The command to run, after `--` (as for `looptop run`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `looptop run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run this job from looptop.toml (default: the first one); give it more than once for
    /// several jobs.
    #[arg(short, long, value_name = "NAME", conflicts_with = "command")]
    pub job: Vec<String>,
    /// Run every job of looptop.toml, as the TUI does (jobs with `needs` after those they need).
    #[arg(long, conflicts_with_all = ["job", "command"])]
    pub all: bool,
    /// Run once, then exit with the job's exit code.
    #[arg(long)]
    pub once: bool,
    /// Print one JSON object per line on stdout (the job's output goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Do not run at start; wait for the first change.
    #[arg(long, conflicts_with = "once")]
    pub postpone: bool,
    /// Run the config's commands even if this looptop.toml was never approved here.
    #[arg(long)]
    pub trust: bool,
    /// Stop a run that takes longer than this ("30s", "10m").
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when stopping a run [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub grace: Option<Duration>,
    /// What a change during a run does [default: restart].
    #[arg(long, value_name = "WHAT")]
    pub on_change: Option<OnChangeArg>,
    /// The command to run, after `--`. Several words run directly; one quoted string runs
    /// through `sh -c`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `--on-change` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnChangeArg {
    /// Stop the running run and start again.
    Restart,
    /// Let the run finish, then run once more.
    Queue,
    /// Drop the change.
    Ignore,
}

impl From<OnChangeArg> for OnChange {
    fn from(arg: OnChangeArg) -> Self {
        match arg {
            OnChangeArg::Restart => OnChange::Restart,
            OnChangeArg::Queue => OnChange::Queue,
            OnChangeArg::Ignore => OnChange::Ignore,
        }
    }
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_a_run_with_a_command() {
        let cli = Cli::try_parse_from([
            "looptop", "run", "--once", "--json", "--grace", "300ms", "--", "pytest", "-k", "fast",
        ])
        .expect("parses");
        let Some(Command::Run(args)) = cli.command else {
            panic!("run")
        };
        assert!(args.once && args.json);
        assert_eq!(args.grace, Some(Duration::from_millis(300)));
        assert_eq!(args.command, ["pytest", "-k", "fast"]);
    }

    #[test]
    fn parses_history_commands() {
        let cli = Cli::try_parse_from(["looptop", "history", "--job", "train", "-n", "5", "--json"]).expect("parses");
        let Some(Command::History(args)) = cli.command else {
            panic!("history")
        };
        assert_eq!(
            (args.job.as_deref(), args.limit, args.output.json),
            (Some("train"), 5, true)
        );
        assert!(Cli::try_parse_from(["looptop", "stats", "--json", "--csv"]).is_err());
        let cli = Cli::try_parse_from(["looptop", "tests", "--job", "t", "--slowest", "3", "--csv"]).expect("parses");
        let Some(Command::Tests(args)) = cli.command else {
            panic!("tests")
        };
        assert_eq!(
            (args.job.as_deref(), args.slowest, args.output.csv),
            (Some("t"), 3, true)
        );
        assert!(Cli::try_parse_from(["looptop", "bench", "-n", "0", "--", "true"]).is_err());
        assert!(Cli::try_parse_from(["looptop", "export", "--format", "parquet", "--out", "x"]).is_ok());
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for argv in [
            &["looptop", "-c", "x.toml", "run", "--job", "train", "--trust"][..],
            &["looptop", "run", "-c", "x.toml", "--job", "train", "--trust"],
            &["looptop", "run", "--job", "train", "--trust", "--config", "x.toml"],
        ] {
            let cli = Cli::try_parse_from(argv).expect("parses");
            cli.check().expect("no TUI option beside the subcommand");
            assert_eq!(cli.config.as_deref(), Some(std::path::Path::new("x.toml")), "{argv:?}");
            let Some(Command::Run(args)) = cli.command else {
                panic!("run: {argv:?}")
            };
            assert_eq!(
                (args.job.as_slice(), args.trust),
                (&["train".to_string()][..], true),
                "{argv:?}"
            );
        }
        let cli = Cli::try_parse_from(["looptop", "--nvml-lib", "/x.so", "doctor"]).expect("parses");
        assert!(cli.check().is_ok() && cli.nvml_lib.is_some());
        let tui = Cli::try_parse_from(["looptop", "-c", "x.toml", "--trust", "--job", "a"]).expect("parses");
        assert!(tui.check().is_ok() && tui.command.is_none() && tui.tui.trust);
    }

    #[test]
    fn a_tui_option_beside_a_subcommand_is_an_error_that_says_where_it_goes() {
        let cli = Cli::try_parse_from(["looptop", "--theme", "light", "run"]).expect("parses");
        let message = cli.check().expect_err("misplaced").to_string();
        assert!(message.contains("--theme before `run`"), "{message}");
        assert!(message.contains("looptop run --help"), "{message}");
    }

    #[test]
    fn run_takes_several_jobs_or_all() {
        let cli = Cli::try_parse_from(["looptop", "run", "--job", "a", "-j", "b"]).expect("parses");
        let Some(Command::Run(args)) = cli.command else {
            panic!("run")
        };
        assert_eq!(args.job, ["a", "b"]);
        assert!(Cli::try_parse_from(["looptop", "run", "--all", "--once"]).is_ok());
        assert!(Cli::try_parse_from(["looptop", "run", "--all", "--job", "a"]).is_err());
        assert!(Cli::try_parse_from(["looptop", "run", "--all", "--", "x"]).is_err());
    }

    #[test]
    fn rejects_contradictions() {
        assert!(Cli::try_parse_from(["looptop", "run", "--once", "--postpone", "--", "x"]).is_err());
        assert!(Cli::try_parse_from(["looptop", "run", "--job", "a", "--", "x"]).is_err());
    }
}
