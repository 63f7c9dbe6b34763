//! Text from a project (commands, job names, paths, process and GPU names, messages built from
//! them) made safe to show on a terminal: control characters, escape sequences and invisible
//! reordering characters are written out visibly (`\e`, `\r`, `\n`, `\x07`, `\u{202e}`), so a
//! file cannot move the cursor, erase a line or recolour the screen to disguise what it says.
//! A leaf: it imports nothing of looptop's.
//!
//! Two strengths share one character table:
//! - [`escape`] shows one value exactly: backslashes that could be read as an escape are
//!   doubled, so two different values never look the same (the trust prompt relies on it).
//! - [`one_line`] and [`terminal_safe`] clean a whole message where it is printed (a status
//!   line, a label, a log line): they leave backslashes alone, so cleaning an already escaped
//!   text changes nothing; `terminal_safe` keeps newlines.

use std::borrow::Cow;
use std::path::Path;

/// `value` with every character that a terminal would not show as itself written out visibly,
/// and every backslash that could be mistaken for such an escape doubled: the result is one
/// line, and different values always give different results.
pub fn escape(value: &str) -> Cow<'_, str> {
    rewrite(value, true, false)
}

/// A path as [`escape`] shows it (not valid UTF-8 parts are shown as `�`).
pub fn escape_path(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

/// `message` on one line, safe to print: like [`terminal_safe`], with newlines shown as `\n`
/// too (for a status line or a label, where a newline could forge a line of its own).
pub fn one_line(message: &str) -> Cow<'_, str> {
    rewrite(message, false, false)
}

/// `message` safe to print: control characters and invisible reordering characters are written
/// out visibly, except newlines (a message may have several lines); backslashes are kept.
pub fn terminal_safe(message: &str) -> Cow<'_, str> {
    rewrite(message, false, true)
}

fn rewrite(text: &str, exact: bool, keep_newlines: bool) -> Cow<'_, str> {
    let needs = |(i, c): (usize, char)| {
        (c == '\n' && !keep_newlines)
            || (c != '\n' && visible(c).is_none())
            || (exact && c == '\\' && ambiguous_after(&text[i + 1..]))
    };
    if !text.char_indices().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\\' if exact && ambiguous_after(&text[i + 1..]) => out.push_str(r"\\"),
            _ => match visible(c) {
                Some(c) => out.push(c),
                None => push_escape(&mut out, c),
            },
        }
    }
    Cow::Owned(out)
}

/// Whether a terminal would not show `c` as itself: control characters, zero-width
/// characters, line and paragraph separators, and the bidirectional controls that reorder
/// what is shown ("Trojan Source"). All of them are below U+10000.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// `Some(c)` when `c` shows as itself on a terminal.
fn visible(c: char) -> Option<char> {
    (!is_hidden(c)).then_some(c)
}

fn push_escape(out: &mut String, c: char) {
    match c {
        '\u{1b}' => out.push_str(r"\e"),
        '\n' => out.push_str(r"\n"),
        '\r' => out.push_str(r"\r"),
        '\t' => out.push_str(r"\t"),
        c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
        c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
    }
}

/// Whether a backslash followed by `rest` could be read as one of the escapes above (or ends
/// the text, where a following piece could complete it).
fn ambiguous_after(rest: &str) -> bool {
    rest.chars()
        .next()
        .is_none_or(|next| matches!(next, '\\' | 'e' | 'n' | 'r' | 't' | 'x' | 'u'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `escape`'s output back, to show that no two values look the same.
    fn unescape(shown: &str) -> String {
        let mut out = String::new();
        let mut chars = shown.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.peek().copied() {
                Some('\\') => out.push('\\'),
                Some('e') => out.push('\u{1b}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('x') => {
                    chars.next();
                    let hex: String = chars.by_ref().take(2).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).expect("hex")).expect("char"));
                    continue;
                }
                Some('u') => {
                    chars.next();
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).expect("hex")).expect("char"));
                    continue;
                }
                _ => {
                    out.push('\\');
                    continue;
                }
            }
            chars.next();
        }
        out
    }

    #[test]
    fn controls_and_escapes_are_shown_visibly() {
        let disguised = "touch PWNED # \r\u{1b}[2K  [train]  python3 train.py\n\u{7}\u{9b}x\u{202e}";
        let shown = escape(disguised);
        assert_eq!(
            shown,
            r"touch PWNED # \r\e[2K  [train]  python3 train.py\n\x07\u{9b}x\u{202e}"
        );
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(escape("pytest -x tests/ ünï ✔"), "pytest -x tests/ ünï ✔");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn exact_escaping_never_makes_two_values_look_alike() {
        // A real newline and a backslash-n typed in a command must not look the same.
        assert_ne!(escape("echo a\nrm x"), escape(r"echo a\nrm x"));
        assert_eq!(
            escape(r"grep 'a\|b'"),
            r"grep 'a\|b'",
            "backslashes that mean nothing stay single"
        );
        let samples = [
            "",
            "\\",
            "\\\\",
            "\\e",
            "\u{1b}",
            "\\n\n",
            "a\\",
            "\\x07\u{7}",
            "\\u{9b}\u{9b}",
            "\t\\t",
            "\\d",
            "x\\\\\\r\r",
        ];
        for sample in samples {
            assert_eq!(unescape(&escape(sample)), sample, "{sample:?} -> {:?}", escape(sample));
        }
        for (i, a) in samples.iter().enumerate() {
            for b in &samples[i + 1..] {
                assert_ne!(escape(a), escape(b), "{a:?} and {b:?} look alike");
            }
        }
    }

    #[test]
    fn terminal_safe_keeps_lines_and_is_idempotent() {
        let message = "looptop.toml has jobs:\n  [a\u{1b}]  rm \\e -rf\r\n";
        let safe = terminal_safe(message);
        assert_eq!(safe, "looptop.toml has jobs:\n  [a\\e]  rm \\e -rf\\r\n");
        assert_eq!(terminal_safe(&safe), safe, "cleaning twice changes nothing");
        assert_eq!(terminal_safe(&escape("a\u{1b}b\\e")), escape("a\u{1b}b\\e"));
        assert_eq!(
            one_line("[looptop] ✔ a\n[looptop] ✘ \\e"),
            "[looptop] ✔ a\\n[looptop] ✘ \\e"
        );
    }
}
