//! looptop's entry point: parse the command line, run the subcommand, turn failures into a
//! clear message and an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = looptop::cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("LOOPTOP_LOG", "warn"))
        .format(|buf, record| {
            use std::io::Write;
            writeln!(
                buf,
                "[looptop] {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            )
        })
        .init();
    match looptop::commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("looptop: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
