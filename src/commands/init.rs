//! `looptop init`: writes a starter looptop.toml for the project in the current directory
//! (never over an existing one) and approves it, since looptop wrote its commands itself.
//! `looptop completions SHELL` prints shell completions.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory;

use super::Failure;
use crate::cli::{Cli, CompletionsArgs, InitArgs};
use crate::config::trust::TrustStore;
use crate::config::{Config, CONFIG_FILE_NAME};
use crate::scaffold;
use crate::text::{escape, escape_path};

/// Writes `looptop.toml` in `dir` (or prints it with `--print`); returns the exit code.
pub fn init(dir: &Path, args: &InitArgs) -> Result<u8, Failure> {
    let findings = scaffold::detect(dir);
    let text = scaffold::render(&findings);
    let file = dir.join(CONFIG_FILE_NAME);
    // What looptop writes must be what looptop reads.
    let config = Config::parse(&file, &text, dir.to_path_buf())
        .map_err(|e| Failure::runtime(format!("looptop init wrote a config it cannot read (a bug): {e}")))?;
    if args.print {
        print!("{text}");
        return Ok(0);
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Failure::runtime(format!(
                "{} already exists; looptop init never overwrites it: edit it, or see what init would \
                 write with `looptop init --print`",
                escape_path(&file)
            )),
            _ => Failure::runtime(format!("cannot create {}: {e}", escape_path(&file))),
        })?;
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", escape_path(&file))))?;
    let names: Vec<String> = config.jobs.iter().map(|j| escape(&j.name).into_owned()).collect();
    if names.is_empty() {
        println!(
            "wrote {} without jobs: nothing to run was found; add one (the file shows how)",
            escape_path(&file)
        );
        return Ok(0);
    }
    println!(
        "wrote {} with {} job(s): {}",
        escape_path(&file),
        names.len(),
        names.join(", ")
    );
    match TrustStore::for_user().and_then(|store| Ok(store.approve(&file)?)) {
        Ok(()) => println!("approved on this machine (any edit asks again); start with `looptop`"),
        Err(e) => println!("could not record the approval ({e}): run `looptop trust` before `looptop`"),
    }
    Ok(0)
}

/// Prints completions for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<u8, Failure> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "looptop", &mut script);
    match std::io::stdout().write_all(&script) {
        Ok(()) => Ok(0),
        // `looptop completions bash | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Failure::runtime(format!("cannot write the completions: {e}"))),
    }
}
