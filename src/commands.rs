//! The subcommands: resolve the config and the job, check trust, then hand over to the loop.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::app::{forward_signals, run_loop, EVENT_CHANNEL_CAPACITY};
use crate::cli::{Cli, Command, RunArgs};
use crate::config::trust::{describe_commands, TrustStore};
use crate::config::{Config, JobCommand, JobSpec};
use crate::headless::Printer;
use crate::sources::{runner, watcher};
use crate::state::update::start_all;
use crate::state::{Coalescing, Mode, State};

/// Exit code for usage and config errors.
pub const EXIT_USAGE: u8 = 2;

/// A reason to stop before the loop starts, with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong and what to do, for the user.
    pub message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
    fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

/// Runs the subcommand `cli` asks for; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Run(args) => run(config, args),
        Command::Trust => trust(&config),
    }
}

fn load_config(explicit: Option<&Path>) -> Result<Config, Failure> {
    let cwd =
        std::env::current_dir().map_err(|e| Failure::runtime(format!("cannot read the current directory: {e}")))?;
    let loaded = match explicit {
        Some(file) => Config::load(file),
        None => Config::discover(&cwd),
    };
    loaded.map_err(|e| Failure::usage(e.to_string()))
}

/// `looptop run`.
fn run(config: Config, args: RunArgs) -> Result<u8, Failure> {
    let mut job = choose_job(&config, &args)?;
    if let Some(timeout) = args.timeout {
        job.timeout = Some(timeout);
    }
    if let Some(grace) = args.grace {
        job.stop_grace = grace;
    }
    if let Some(on_change) = args.on_change {
        job.on_change = on_change.into();
    }
    let mode = if args.once { Mode::Once } else { Mode::Watch };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let job_color = !no_color && !args.json && std::io::stdout().is_terminal();
    let status_color = !no_color && std::io::stderr().is_terminal();
    let root = config.root.clone();
    let coalescing = Coalescing {
        debounce: config.watch.debounce,
        debounce_max: config.watch.debounce_max,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let base = std::env::current_dir().unwrap_or_else(|_| root.clone());
        let mut printer = Printer::new(args.json, status_color, base);
        if let Err(e) = runner::become_subreaper() {
            log::warn!("cannot become a child subreaper ({e}): CPU time of orphaned grandchildren is not counted");
        }
        forward_signals(tx.clone()).map_err(|e| Failure::runtime(format!("cannot handle signals: {e}")))?;
        let log_dir = match runner::prepare_log_dir(&root) {
            Ok(dir) => Some(dir),
            Err(e) => {
                log::warn!(
                    "cannot write run logs under {}: {e}; output is shown but not kept",
                    root.join(".looptop").display()
                );
                None
            }
        };
        if mode == Mode::Watch {
            watcher::spawn(root.clone(), &config.watch, tx.clone())
                .map_err(|e| Failure::runtime(format!("cannot start the file watcher: {e}")))?;
        }
        let runner = runner::Runner::new(tx, log_dir, job_color);
        let mut state = State::new(vec![job], coalescing, mode);
        let first = if args.postpone {
            Vec::new()
        } else {
            start_all(&mut state)
        };
        if args.postpone && !args.json {
            printer.report(&crate::effect::Report::Notice(crate::event::Notice::info(
                "waiting for the first change (--postpone)",
            )));
        }
        Ok(run_loop(state, runner, printer, rx, first).await)
    })
}

fn choose_job(config: &Config, args: &RunArgs) -> Result<JobSpec, Failure> {
    if !args.command.is_empty() {
        let command = match args.command.as_slice() {
            [line] => JobCommand::Shell(line.clone()),
            argv => JobCommand::Argv(argv.to_vec()),
        };
        let cwd = std::env::current_dir().unwrap_or_else(|_| config.root.clone());
        return Ok(JobSpec::ad_hoc(command, cwd));
    }
    let job = match &args.job {
        Some(name) => config.job(name).map_err(Failure::usage)?.clone(),
        None => config.jobs.first().cloned().ok_or_else(|| {
            Failure::usage(
                "nothing to run: give a command after `--` (looptop run -- pytest -x) or add a [[job]] to looptop.toml",
            )
        })?,
    };
    ensure_trusted(config, args.trust)?;
    Ok(job)
}

fn ensure_trusted(config: &Config, accept: bool) -> Result<(), Failure> {
    let Some(file) = &config.file else { return Ok(()) };
    if accept {
        return Ok(());
    }
    let store = TrustStore::for_user().map_err(|e| Failure::runtime(e.to_string()))?;
    let trusted = store
        .is_trusted(file)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", file.display())))?;
    if trusted {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "{} has not been approved on this machine, and it runs commands:\n{}\
         If these are what you expect, approve them with `looptop trust` (run in {}), or pass --trust to run once.",
        file.display(),
        describe_commands(config),
        config.root.display()
    )))
}

/// `looptop trust`.
fn trust(config: &Config) -> Result<u8, Failure> {
    let file: PathBuf = config.file.clone().ok_or_else(|| {
        Failure::usage(format!(
            "no looptop.toml in {} or its parents: nothing to trust",
            config.root.display()
        ))
    })?;
    let store = TrustStore::for_user().map_err(|e| Failure::runtime(e.to_string()))?;
    store
        .approve(&file)
        .map_err(|e| Failure::runtime(format!("cannot record the approval of {}: {e}", file.display())))?;
    println!(
        "approved {} on this machine; looptop may now run:\n{}",
        file.display(),
        describe_commands(config)
    );
    println!("Any edit to the file asks again.");
    Ok(0)
}
