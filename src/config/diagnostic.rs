//! Errors in looptop.toml, rendered the way a compiler would: file, line, column, the offending
//! line with a caret under the span, and a suggestion where one can be made.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem at a place in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub path: PathBuf,
    /// 1-based line of the start of the span.
    pub line: usize,
    /// 1-based column (in characters) of the start of the span.
    pub column: usize,
    /// What is wrong, in the user's words.
    pub message: String,
    /// The text of the line the span starts on.
    source_line: String,
    /// How many characters of `source_line` to underline (at least one).
    underline: usize,
    /// What to do about it, when we can tell.
    pub help: Option<String>,
}

impl ConfigError {
    /// Builds an error for the byte range `span` of `source` (the whole file's text).
    pub fn at(path: &Path, source: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let span = span.unwrap_or(0..0);
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
        let source_line = source[line_start..line_end].trim_end_matches('\r').to_string();
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(source, span.end.clamp(start, line_end));
        let underline = source[start..end].chars().count().max(1);
        Self {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line,
            underline,
            help: None,
        }
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Turns a toml/serde error into a config error, rewording serde's phrasing for users and
    /// suggesting the nearest valid key or value for a misspelt one.
    pub fn from_toml(path: &Path, source: &str, error: &toml::de::Error) -> Self {
        let raw = error.message().trim();
        let (message, help) = match parse_unknown_name(raw) {
            Some(unknown) => {
                let what = if unknown.is_field { "key" } else { "value" };
                let message = format!("unknown {what} `{}`", unknown.name);
                let help = match nearest(&unknown.name, &unknown.expected) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None if unknown.expected.is_empty() => format!("remove `{}`", unknown.name),
                    None => format!("expected one of: {}", unknown.expected.join(", ")),
                };
                (message, Some(help))
            }
            None => (raw.replace("missing field", "missing key"), None),
        };
        let error = Self::at(path, source, error.span(), message);
        match help {
            Some(help) => error.with_help(help),
            None => error,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )?;
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{number} | {}", self.source_line)?;
        write!(
            f,
            "{gutter} | {}{}",
            " ".repeat(self.column - 1),
            "^".repeat(self.underline)
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n{gutter} = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The pieces of serde's "unknown field `x`, expected one of `a`, `b`" message.
#[derive(Debug, PartialEq, Eq)]
struct UnknownName {
    name: String,
    is_field: bool,
    expected: Vec<String>,
}

fn parse_unknown_name(message: &str) -> Option<UnknownName> {
    let (is_field, rest) = if let Some(rest) = message.strip_prefix("unknown field ") {
        (true, rest)
    } else {
        (false, message.strip_prefix("unknown variant ")?)
    };
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_string);
    let name = quoted.next()?;
    Some(UnknownName {
        name,
        is_field,
        expected: quoted.collect(),
    })
}

/// The candidate closest to `name`, if one is close enough to be a plausible typo.
pub fn nearest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let name = name.to_lowercase();
    let score = |candidate: &str| {
        let candidate = candidate.to_lowercase();
        let similarity = strsim::jaro_winkler(&name, &candidate);
        // A key missing its prefix or suffix ("grace" for "stop_grace") is a likely slip too.
        let contained = name.len() >= 3 && (candidate.contains(&name) || name.contains(&candidate));
        if contained {
            similarity.max(0.85)
        } else {
            similarity
        }
    };
    candidates
        .iter()
        .map(|c| (score(c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column_of_a_span() {
        let source = "[watch]\ndebounce = 30\n";
        let start = source.find("debounce").expect("present");
        let error = ConfigError::at(Path::new("looptop.toml"), source, Some(start..start + 8), "bad");
        assert_eq!((error.line, error.column), (2, 1));
        let text = error.to_string();
        assert!(text.starts_with("looptop.toml:2:1: bad"), "{text}");
        assert!(text.contains("2 | debounce = 30\n  | ^^^^^^^^"), "{text}");
    }

    #[test]
    fn parses_serde_unknown_field_messages() {
        let parsed = parse_unknown_name("unknown field `debounce`, expected one of `paths`, `debounce_ms`");
        assert_eq!(
            parsed,
            Some(UnknownName {
                name: "debounce".into(),
                is_field: true,
                expected: vec!["paths".into(), "debounce_ms".into()],
            })
        );
        let variant = parse_unknown_name("unknown variant `restat`, expected `restart` or `queue`");
        assert_eq!(variant.map(|v| (v.is_field, v.expected.len())), Some((false, 2)));
        assert_eq!(parse_unknown_name("invalid type: integer"), None);
    }

    #[test]
    fn suggests_only_plausible_neighbours() {
        let keys = vec!["debounce_ms".to_string(), "paths".to_string(), "poll".to_string()];
        assert_eq!(nearest("debounce", &keys), Some("debounce_ms"));
        assert_eq!(nearest("pols", &keys), Some("poll"));
        assert_eq!(
            nearest("grace", &["timeout".to_string(), "stop_grace".to_string()]),
            Some("stop_grace")
        );
        assert_eq!(nearest("zzzzzz", &keys), None);
    }
}
