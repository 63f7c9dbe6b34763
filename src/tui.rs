//! The terminal side of the TUI: the terminal guard (raw mode and the alternate screen, restored
//! on every exit path and by the panic hook that `ratatui::init` installs), the input thread that
//! turns terminal events into `Event`s, and the frontend that redraws at most `FRAME` apart and
//! only when something changed (plus once a second while a run's clock ticks).

use std::time::{Duration, Instant};

use crossterm::event::{self, KeyCode, KeyEventKind, KeyModifiers, MouseEventKind};
use crossterm::execute;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::Sender;

use crate::app::Frontend;
use crate::effect::Report;
use crate::event::{Event, Key, Level, Wheel};
use crate::state::view::THEME_NAMES;
use crate::state::State;
use crate::ui::{self, Theme};

/// The shortest time between two frames (10 frames a second at most).
pub const FRAME: Duration = Duration::from_millis(100);
/// Lines one turn of the mouse wheel scrolls.
const WHEEL_LINES: i64 = 3;

/// The TUI frontend; dropping it gives the terminal back as it was.
pub struct Tui {
    terminal: DefaultTerminal,
    themes: Vec<Theme>,
    monochrome: bool,
    last_draw: Option<Instant>,
    dirty: bool,
    ticking: bool,
}

impl Tui {
    /// Takes over the terminal. `themes` are in `THEME_NAMES` order; `monochrome` (NO_COLOR)
    /// ignores them.
    pub fn start(themes: Vec<Theme>, monochrome: bool) -> std::io::Result<Self> {
        let terminal = ratatui::try_init()?;
        // The wheel scrolls the output; without capture the terminal would scroll its own buffer.
        let _ = execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
        Ok(Self {
            terminal,
            themes,
            monochrome,
            last_draw: None,
            dirty: true,
            ticking: false,
        })
    }

    fn theme(&self, index: usize) -> Theme {
        if self.monochrome {
            return Theme::monochrome();
        }
        self.themes
            .get(index)
            .cloned()
            .unwrap_or_else(|| Theme::default_theme(false))
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        ratatui::restore();
    }
}

impl Frontend for Tui {
    fn report(&mut self, report: &Report) {
        // Notices go to the log pane; the status line shows the last one (from the state).
        if let Report::Notice(notice) = report {
            let level = match notice.level {
                Level::Info => log::Level::Info,
                Level::Warn => log::Level::Warn,
                Level::Error => log::Level::Error,
            };
            log::log!(level, "{}", notice.message);
        }
    }

    fn show(&mut self, state: &State, now: Instant) {
        self.dirty = true;
        self.ticking = state.any_active();
        if self.last_draw.is_some_and(|last| now < last + FRAME) {
            return;
        }
        let theme = self.theme(state.view.as_ref().map_or(0, |v| v.theme));
        // Records logged since the last frame, into the log pane's buffer (cheap when none).
        tui_logger::move_events();
        if let Err(e) = self.terminal.draw(|frame| ui::draw(frame, state, &theme, now)) {
            log::error!("cannot draw: {e}");
        }
        self.last_draw = Some(now);
        self.dirty = false;
    }

    fn wake_at(&self) -> Option<Instant> {
        let last = self.last_draw?;
        if self.dirty {
            Some(last + FRAME)
        } else if self.ticking {
            Some(last + Duration::from_secs(1))
        } else {
            None
        }
    }
}

/// Loads every theme of `THEME_NAMES` (a user's file of the same name wins), and `extra` if
/// it is another name; returns them, the index to start with, and warnings about broken ones.
pub fn load_themes(wanted: &str, truecolor: bool) -> (Vec<Theme>, usize, Vec<String>) {
    let user_dir = ui::theme::user_theme_dir();
    let mut warnings = Vec::new();
    let mut themes = Vec::new();
    for name in THEME_NAMES {
        let (theme, warning) = Theme::load(name, user_dir.as_deref(), truecolor);
        warnings.extend(warning);
        themes.push(theme);
    }
    let start = match THEME_NAMES.iter().position(|n| *n == wanted) {
        Some(index) => index,
        None => {
            let (theme, warning) = Theme::load(wanted, user_dir.as_deref(), truecolor);
            warnings.extend(warning);
            themes.push(theme);
            themes.len() - 1
        }
    };
    (themes, start, warnings)
}

/// looptop's own log for the TUI's log pane (`l`): records at `level` and above go into
/// tui-logger's buffer, which the frontend moves into the pane's before each frame. Unlike
/// `tui_logger::init_logger`, this starts no thread (its mover wakes every 10 ms, idle or not).
pub fn init_log(level: log::LevelFilter) -> Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(PaneLog { level }))?;
    log::set_max_level(level);
    tui_logger::set_default_level(level);
    Ok(())
}

/// Hands log records to tui-logger's buffer.
struct PaneLog {
    level: log::LevelFilter,
}

impl log::Log for PaneLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            tui_logger::Drain::new().log(record);
        }
    }

    fn flush(&self) {}
}

/// Starts the thread that reads the terminal and sends keys, wheel turns and resizes.
pub fn spawn_input(events: Sender<Event>) {
    let spawned = std::thread::Builder::new()
        .name("looptop-input".into())
        .spawn(move || loop {
            let Ok(read) = event::read() else { return };
            let event = match read {
                event::Event::Key(key) if key.kind != KeyEventKind::Release => match translate(key.code, key.modifiers)
                {
                    Some(key) => Event::Key(key),
                    None => continue,
                },
                event::Event::Mouse(mouse) => {
                    let lines = match mouse.kind {
                        MouseEventKind::ScrollUp => WHEEL_LINES,
                        MouseEventKind::ScrollDown => -WHEEL_LINES,
                        _ => continue,
                    };
                    let Ok((width, height)) = crossterm::terminal::size() else {
                        continue;
                    };
                    Event::Wheel(Wheel {
                        lines,
                        column: mouse.column,
                        row: mouse.row,
                        width,
                        height,
                    })
                }
                event::Event::Resize(..) => Event::Resize,
                _ => continue,
            };
            if events.blocking_send(event).is_err() {
                return;
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot read the keyboard: {e}");
    }
}

/// The terminal's key in looptop's terms.
fn translate(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        _ => return None,
    })
}
