//! looptop's entry point: parse the command line, run the subcommand, turn failures into a
//! clear message and an exit code.

use std::process::ExitCode;

use looptop::text::terminal_safe;

fn main() -> ExitCode {
    // The guard that stops the jobs of a looptop that died (see sources::guard).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == looptop::sources::guard::GUARD_ARG)
    {
        return ExitCode::from(looptop::sources::guard::run());
    }
    // A history worker (see store::worker): the history file is the next argument.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|arg| arg == looptop::store::worker::WORKER_ARG) {
        let path = std::path::PathBuf::from(args.next().unwrap_or_default());
        return ExitCode::from(looptop::store::worker::serve(&path));
    }
    let cli = looptop::cli::Cli::parse_checked();
    if cli.command.is_none() {
        // The TUI shows looptop's own log in a pane (`l`).
        let _ = looptop::tui::init_log(log::LevelFilter::Info);
    } else {
        init_stderr_log();
    }
    match looptop::commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            // Messages quote config files and paths: nothing in them reaches the terminal raw.
            eprintln!("looptop: {}", terminal_safe(&failure.message));
            ExitCode::from(failure.code)
        }
    }
}

/// looptop's log on stderr, filtered by `LOOPTOP_LOG` (warnings by default).
fn init_stderr_log() {
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("LOOPTOP_LOG", "warn"))
        .format(|buf, record| {
            use std::io::Write;
            writeln!(
                buf,
                "[looptop] {}: {}",
                record.level().as_str().to_lowercase(),
                terminal_safe(&record.args().to_string())
            )
        })
        .init();
}
