//! Themes: named colors for each role of the UI, read from TOML. The shipped themes (themes/*.toml)
//! are inside the binary; a user's own go in `~/.config/looptop/themes/NAME.toml` and may set
//! only some roles (the rest come from the default). A color is a name ("green", "lightblue",
//! "reset"), "#rrggbb" or a 256-color index; on terminals without true color, "#rrggbb" is drawn
//! with the nearest of the 256 colors. `NO_COLOR` gives a theme without colors.

use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use toml::Spanned;

/// The shipped themes: (name, TOML).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
    ("gruvbox", include_str!("../../themes/gruvbox.toml")),
    ("nord", include_str!("../../themes/nord.toml")),
];

/// The styles of each role of the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    /// The theme's name.
    pub name: String,
    /// Ordinary text.
    pub text: Style,
    /// Labels and secondary text.
    pub dim: Style,
    /// Pane borders.
    pub border: Style,
    /// Titles and the selected job.
    pub accent: Style,
    /// The selected run, search matches, the median.
    pub highlight: Style,
    /// Background of the selected item.
    pub selected: Style,
    /// Passing runs.
    pub pass: Style,
    /// Failing runs.
    pub fail: Style,
    /// Stopped runs.
    pub killed: Style,
    /// Timed-out runs.
    pub timeout: Style,
    /// A run going on.
    pub running: Style,
    /// Warnings.
    pub warn: Style,
    /// Errors.
    pub error: Style,
    /// CPU charts.
    pub cpu: Style,
    /// Memory charts.
    pub memory: Style,
    /// GPU charts.
    pub gpu: Style,
    /// Stall markers.
    pub stall: Style,
}

/// A theme file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeError {
    /// What went wrong, naming the file, line and key.
    pub message: String,
}

macro_rules! roles {
    ($($role:ident),* $(,)?) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawColors {
            $($role: Option<Spanned<String>>,)*
        }

        impl Theme {
            fn from_raw(name: String, raw: RawColors, base: &Theme, file: &str, source: &str, truecolor: bool)
                -> Result<Self, ThemeError> {
                Ok(Self {
                    name,
                    $($role: match raw.$role {
                        None => base.$role,
                        Some(value) => Style::new().fg(color(file, source, stringify!($role), &value, truecolor)?),
                    },)*
                })
            }

            /// The role names, as theme files write them.
            pub const ROLES: &'static [&'static str] = &[$(stringify!($role)),*];
        }
    };
}

roles!(
    text, dim, border, accent, highlight, selected, pass, fail, killed, timeout, running, warn, error, cpu, memory,
    gpu, stall,
);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    name: Option<String>,
    #[serde(default)]
    colors: RawColors,
}

impl Theme {
    /// A theme without colors (`NO_COLOR`): emphasis by bold, reverse and dim only.
    pub fn monochrome() -> Self {
        let plain = Style::new();
        Self {
            name: "no-color".into(),
            text: plain,
            dim: plain.add_modifier(Modifier::DIM),
            border: plain,
            accent: plain.add_modifier(Modifier::BOLD),
            highlight: plain.add_modifier(Modifier::BOLD),
            selected: plain.add_modifier(Modifier::REVERSED),
            pass: plain,
            fail: plain.add_modifier(Modifier::BOLD),
            killed: plain.add_modifier(Modifier::DIM),
            timeout: plain.add_modifier(Modifier::BOLD),
            running: plain,
            warn: plain.add_modifier(Modifier::BOLD),
            error: plain.add_modifier(Modifier::BOLD),
            cpu: plain,
            memory: plain,
            gpu: plain,
            stall: plain.add_modifier(Modifier::BOLD),
        }
    }

    /// The default theme (the shipped `dark`).
    pub fn default_theme(truecolor: bool) -> Self {
        let (_, source) = BUILT_IN[0];
        // The shipped themes are checked by a test; this cannot fail in a released binary.
        Self::parse("themes/dark.toml", source, &Self::monochrome(), truecolor).unwrap_or_else(|_| Self::monochrome())
    }

    /// Parses a theme file; roles it leaves out come from `base`.
    pub fn parse(file: &str, source: &str, base: &Theme, truecolor: bool) -> Result<Self, ThemeError> {
        let raw: RawTheme = toml::from_str(source).map_err(|e| {
            // An unknown key is reported on its table; point at the key's own line.
            let key_line = e
                .message()
                .split('`')
                .nth(1)
                .filter(|_| e.message().starts_with("unknown field"))
                .and_then(|key| {
                    source.lines().position(|l| {
                        l.trim_start()
                            .strip_prefix(key)
                            .is_some_and(|rest| rest.trim_start().starts_with('='))
                    })
                })
                .map(|index| index + 1);
            let line = key_line
                .or_else(|| {
                    e.span()
                        .map(|s| source[..s.start.min(source.len())].lines().count().max(1))
                })
                .unwrap_or(1);
            let message = e.message().split(", expected").next().unwrap_or_default();
            let mut message = format!("{file}:{line}: {message}");
            if key_line.is_some() {
                message.push_str(&format!(" (roles: {})", Self::ROLES.join(", ")));
            }
            ThemeError { message }
        })?;
        let name = raw.name.unwrap_or_else(|| {
            Path::new(file)
                .file_stem()
                .map_or_else(|| file.to_string(), |s| s.to_string_lossy().into_owned())
        });
        Self::from_raw(name, raw.colors, base, file, source, truecolor)
    }

    /// The theme called `name`: the user's file in `user_dir` if there is one, else a shipped
    /// one. A broken or unknown theme gives the default and a warning to show.
    pub fn load(name: &str, user_dir: Option<&Path>, truecolor: bool) -> (Self, Option<String>) {
        let default = Self::default_theme(truecolor);
        let user_file: Option<PathBuf> = user_dir.map(|d| d.join(format!("{name}.toml"))).filter(|p| p.is_file());
        let result = match (&user_file, BUILT_IN.iter().find(|(n, _)| *n == name)) {
            (Some(path), _) => match std::fs::read_to_string(path) {
                Ok(source) => Self::parse(&path.display().to_string(), &source, &default, truecolor),
                Err(e) => Err(ThemeError {
                    message: format!("cannot read {}: {e}", path.display()),
                }),
            },
            (None, Some((n, source))) => Self::parse(&format!("themes/{n}.toml"), source, &default, truecolor),
            (None, None) => {
                let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                Err(ThemeError {
                    message: format!("no theme called `{name}` (shipped: {})", names.join(", ")),
                })
            }
        };
        match result {
            Ok(theme) => (theme, None),
            Err(e) => (default, Some(format!("{}; using the default theme", e.message))),
        }
    }

    /// The style of a run's outcome.
    pub fn outcome(&self, outcome: crate::report::Outcome) -> Style {
        use crate::report::Outcome;
        match outcome {
            Outcome::Pass => self.pass,
            Outcome::Fail => self.fail,
            Outcome::Killed => self.killed,
            Outcome::Timeout => self.timeout,
            Outcome::Interrupted => self.killed,
            Outcome::Running => self.running,
        }
    }
}

/// Where users keep their themes: `$XDG_CONFIG_HOME/looptop/themes`.
pub fn user_theme_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.config_dir().join("looptop").join("themes"))
}

/// Whether the terminal says it draws 24-bit color.
pub fn terminal_has_truecolor() -> bool {
    std::env::var("COLORTERM").is_ok_and(|v| v == "truecolor" || v == "24bit")
}

fn color(file: &str, source: &str, role: &str, value: &Spanned<String>, truecolor: bool) -> Result<Color, ThemeError> {
    let text = value.get_ref().trim();
    let parsed = if let Some(hex) = text.strip_prefix('#') {
        (hex.len() == 6)
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten()
            .map(|rgb| {
                let (r, g, b) = ((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8);
                if truecolor {
                    Color::Rgb(r, g, b)
                } else {
                    Color::Indexed(nearest_256(r, g, b))
                }
            })
    } else if let Ok(index) = text.parse::<u8>() {
        Some(Color::Indexed(index))
    } else {
        text.parse::<Color>().ok()
    };
    parsed.ok_or_else(|| {
        let line = source[..value.span().start.min(source.len())].lines().count().max(1);
        ThemeError {
            message: format!(
                "{file}:{line}: `{role}` = \"{text}\" is not a color: write a name such as \"green\" or \
                 \"lightblue\", \"#a3be8c\", or a 256-color index such as \"208\""
            ),
        }
    })
}

/// The nearest color of the xterm 256-color cube or gray ramp.
fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    let level = |v: u8| -> u8 {
        match v {
            0..=47 => 0,
            48..=114 => 1,
            _ => (v - 35) / 40,
        }
    };
    let steps = [0u8, 95, 135, 175, 215, 255];
    let (lr, lg, lb) = (level(r), level(g), level(b));
    let cube = 16 + 36 * lr + 6 * lg + lb;
    let cube_rgb = (steps[lr as usize], steps[lg as usize], steps[lb as usize]);
    let average = ((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as u8;
    let gray_index = if average > 238 {
        23
    } else {
        average.saturating_sub(3) / 10
    };
    let gray = 8 + gray_index * 10;
    let distance = |(x, y, z): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(x, r) + d(y, g) + d(z, b)
    };
    if distance((gray, gray, gray)) < distance(cube_rgb) {
        232 + gray_index
    } else {
        cube
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_theme_parses_and_sets_every_role() {
        for (name, source) in BUILT_IN {
            let theme = Theme::parse(&format!("themes/{name}.toml"), source, &Theme::monochrome(), true)
                .unwrap_or_else(|e| panic!("{name}: {}", e.message));
            assert_eq!(theme.name, *name);
            let raw: RawTheme = toml::from_str(source).expect("toml");
            let toml::Value::Table(colors) = toml::from_str::<toml::Value>(source).expect("toml")["colors"].clone()
            else {
                panic!("{name}: no [colors]");
            };
            assert_eq!(colors.len(), Theme::ROLES.len(), "{name} sets every role");
            drop(raw);
        }
    }

    #[test]
    fn a_bad_color_names_the_file_line_and_key() {
        let source = "name = \"mine\"\n[colors]\npass = \"#12345\"\n";
        let error = Theme::parse("mine.toml", source, &Theme::monochrome(), true).expect_err("bad color");
        assert!(
            error
                .message
                .starts_with("mine.toml:3: `pass` = \"#12345\" is not a color"),
            "{}",
            error.message
        );
        let source = "[colors]\npas = \"green\"\n";
        let error = Theme::parse("mine.toml", source, &Theme::monochrome(), true).expect_err("unknown key");
        assert!(
            error.message.starts_with("mine.toml:2: unknown field `pas`"),
            "{}",
            error.message
        );
        assert!(error.message.contains("roles: text, dim"), "{}", error.message);
    }

    #[test]
    fn a_partial_user_theme_takes_the_rest_from_the_default_and_a_broken_one_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("mine.toml"), "[colors]\npass = \"208\"\n").expect("write");
        let (theme, warning) = Theme::load("mine", Some(dir.path()), true);
        assert_eq!(warning, None);
        assert_eq!(theme.pass.fg, Some(Color::Indexed(208)));
        assert_eq!(theme.fail, Theme::default_theme(true).fail);
        std::fs::write(dir.path().join("broken.toml"), "[colors]\nfail = \"reddish\"\n").expect("write");
        let (theme, warning) = Theme::load("broken", Some(dir.path()), true);
        assert_eq!(theme, Theme::default_theme(true));
        assert!(warning.is_some_and(|w| w.contains("broken.toml:2: `fail`") && w.ends_with("using the default theme")));
        let (_, warning) = Theme::load("nope", None, true);
        assert!(warning.is_some_and(|w| w.contains("no theme called `nope`")));
    }

    #[test]
    fn without_truecolor_rgb_becomes_the_nearest_256_color() {
        assert_eq!(nearest_256(0, 0, 0), 16);
        assert_eq!(nearest_256(255, 0, 0), 196);
        assert_eq!(nearest_256(128, 128, 128), 244);
        let theme = Theme::default_theme(false);
        assert!(matches!(theme.pass.fg, Some(Color::Indexed(_))));
    }
}
