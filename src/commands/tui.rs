//! Plain `looptop` (or `looptop -- CMD`): the TUI over every job of the config (or the command
//! given), watching the project until `q`.

use super::run::{choose_jobs, no_color};
use super::Failure;
use crate::app::{Engine, Presentation};
use crate::cli::TuiArgs;
use crate::config::Config;
use crate::state::view::View;
use crate::state::Mode;
use crate::tui::{load_themes, spawn_input, Tui};
use crate::ui::theme::terminal_has_truecolor;

/// The theme used when neither `--theme` nor `[ui] theme` names one.
pub const DEFAULT_THEME: &str = "dark";

/// `looptop [--job NAME] [--theme NAME] [-- CMD]`.
pub fn tui(config: &Config, args: &TuiArgs) -> Result<u8, Failure> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "the TUI needs a terminal; use `looptop run` for plain output (--json for machine-readable)",
        ));
    }
    let jobs = choose_jobs(config, &args.command, args.trust)?;
    let wanted = args
        .theme
        .clone()
        .or_else(|| config.ui_theme.clone())
        .unwrap_or_else(|| DEFAULT_THEME.to_string());
    let (themes, start, warnings) = load_themes(&wanted, terminal_has_truecolor());
    let mut view = View::new(jobs.len(), start);
    view.warning = warnings.first().cloned().or_else(|| ignored_warning(config));
    if let Some(name) = &args.job {
        view.job = jobs
            .iter()
            .position(|j| &j.name == name)
            .ok_or_else(|| Failure::usage(config.job(name).err().unwrap_or_default()))?;
    }
    let frontend =
        Tui::start(themes, no_color()).map_err(|e| Failure::runtime(format!("cannot take over the terminal: {e}")))?;
    let presentation = Presentation {
        frontend: Box::new(frontend),
        job_color: !no_color(),
        view: Some(view),
    };
    let engine = Engine {
        postpone: args.postpone,
        input: Some(spawn_input),
        ..Engine::new(jobs, Mode::Watch, presentation)
    };
    Ok(engine.start(config)?)
}

/// The status line's word on what an unapproved config had ignored (stderr is hidden by the TUI).
fn ignored_warning(config: &Config) -> Option<String> {
    let mut keys: Vec<&str> = config.ignored_settings().iter().map(|i| i.key).collect();
    keys.dedup();
    (!keys.is_empty()).then(|| {
        format!(
            "looptop.toml is not approved: ignoring {}; `looptop trust` approves it",
            keys.join(", ")
        )
    })
}
