//! The subcommands. Each resolves what it needs (config, job, history) and hands over to the
//! loop or the store; failures carry the exit code they deserve.

pub mod doctor;
pub mod exec_query;
pub mod file_facts;
pub mod history;
pub mod init;
pub mod run;
pub mod tui;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config::trust::{self, TrustStore};
use crate::config::Config;

impl From<crate::app::StartError> for Failure {
    fn from(error: crate::app::StartError) -> Self {
        match error {
            crate::app::StartError::Refused(message) => Self::usage(message),
            crate::app::StartError::Runtime(message) => Self::runtime(message),
        }
    }
}

/// The environment variable naming the NVML library.
pub const NVML_LIB_ENV: &str = "LOOPTOP_NVML_LIB";

/// Exit code for usage and config errors.
pub const EXIT_USAGE: u8 = 2;

/// A reason to stop, with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong and what to do, for the user.
    pub message: String,
}

impl Failure {
    /// A usage or config error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A failure while doing the work (exit 1).
    pub fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

/// Runs the subcommand `cli` asks for; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<u8, Failure> {
    // These need no config (init runs where there is none yet; exec-query is a job's command).
    match &cli.command {
        Some(Command::Init(args)) => return init::init(&current_dir()?, args),
        Some(Command::Completions(args)) => return init::completions(args),
        Some(Command::ExecQuery(args)) => return exec_query::exec_query(args),
        _ => {}
    }
    let mut config = load_config(cli.config.as_deref())?;
    settle_trust(&mut config, &cli)?;
    // The flag wins over the environment, which wins over looptop.toml.
    let from_env = std::env::var_os(NVML_LIB_ENV).filter(|v| !v.is_empty()).map(Into::into);
    if let Some(lib) = cli.nvml_lib.or(from_env) {
        config.sampler.gpu.nvml_lib = Some(lib);
    }
    let Some(command) = cli.command else {
        return tui::tui(&config, &cli.tui);
    };
    match command {
        Command::Doctor(args) => doctor::doctor(&config, &args),
        Command::Run(args) => run::run(&config, args),
        Command::Bench(args) => run::bench(&config, args),
        Command::Trust => run::trust(&config),
        Command::History(args) => history::history(&config, &args),
        Command::Stats(args) => history::stats(&config, &args),
        Command::Tests(args) => history::tests(&config, &args),
        Command::Query(args) => history::query(&config, &args),
        Command::Export(args) => history::export(&config, &args),
        Command::Init(_) | Command::Completions(_) | Command::ExecQuery(_) => {
            unreachable!("handled before the config is loaded")
        }
    }
}

fn current_dir() -> Result<std::path::PathBuf, Failure> {
    std::env::current_dir().map_err(|e| Failure::runtime(format!("cannot read the current directory: {e}")))
}

fn load_config(explicit: Option<&Path>) -> Result<Config, Failure> {
    let cwd = current_dir()?;
    let loaded = match explicit {
        Some(file) => Config::load(file),
        None => Config::discover(&cwd),
    };
    loaded.map_err(|e| Failure::usage(e.to_string()))
}

/// Decides whether the config is approved (`--trust` approves it for this run) and strips what
/// an unapproved one may not do; says once, on stderr, what was ignored (doctor shows it in its
/// report instead).
fn settle_trust(config: &mut Config, cli: &Cli) -> Result<(), Failure> {
    let Some(file) = config.file.clone() else { return Ok(()) };
    let accept = match &cli.command {
        None => cli.tui.trust,
        Some(Command::Run(args)) => args.trust,
        Some(Command::Bench(args)) => args.trust,
        Some(_) => false,
    };
    let store = TrustStore::for_user().map_err(|e| Failure::runtime(e.to_string()))?;
    trust::settle(config, &store, accept)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", crate::text::escape_path(&file))))?;
    let reported_elsewhere = matches!(cli.command, Some(Command::Doctor(_) | Command::Trust));
    if let Some(notice) = trust::ignored_notice(config).filter(|_| !reported_elsewhere) {
        eprintln!("looptop: {notice}");
    }
    Ok(())
}
