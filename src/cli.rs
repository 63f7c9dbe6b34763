//! Command-line interface: clap definitions.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{parse_duration, OnChange};

/// Watch a project, rerun the targeted step on change, and time every loop.
#[derive(Debug, Parser)]
#[command(name = "looptop", version, about, arg_required_else_help = true)]
pub struct Cli {
    /// Use this config file instead of looking for looptop.toml in . and its parents.
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job now and again after each batch of file changes, without the TUI.
    Run(RunArgs),
    /// Approve the commands of this project's looptop.toml (as it is now) on this machine.
    Trust,
}

/// `looptop run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run this job from looptop.toml (default: the first one).
    #[arg(short, long, value_name = "NAME", conflicts_with = "command")]
    pub job: Option<String>,
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
        let Command::Run(args) = cli.command else { panic!("run") };
        assert!(args.once && args.json);
        assert_eq!(args.grace, Some(Duration::from_millis(300)));
        assert_eq!(args.command, ["pytest", "-k", "fast"]);
    }

    #[test]
    fn rejects_contradictions() {
        assert!(Cli::try_parse_from(["looptop", "run", "--once", "--postpone", "--", "x"]).is_err());
        assert!(Cli::try_parse_from(["looptop", "run", "--job", "a", "--", "x"]).is_err());
    }
}
