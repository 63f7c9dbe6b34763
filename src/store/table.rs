//! Query results as a plain table, and their three renderings: aligned text for a terminal, one
//! JSON object per row, and CSV.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use duckdb::types::Value;

/// One value of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer type.
    Int(i128),
    /// Any floating-point or decimal type.
    Float(f64),
    /// Text, and types shown as text (dates, intervals, UUIDs...).
    Text(String),
    /// A timestamp, in microseconds since the epoch (UTC).
    Time(i64),
    /// A list or array.
    List(Vec<Cell>),
}

impl From<Value> for Cell {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Cell::Null,
            Value::Boolean(b) => Cell::Bool(b),
            Value::TinyInt(n) => Cell::Int(n.into()),
            Value::SmallInt(n) => Cell::Int(n.into()),
            Value::Int(n) => Cell::Int(n.into()),
            Value::BigInt(n) => Cell::Int(n.into()),
            Value::HugeInt(n) => Cell::Int(n),
            Value::UTinyInt(n) => Cell::Int(n.into()),
            Value::USmallInt(n) => Cell::Int(n.into()),
            Value::UInt(n) => Cell::Int(n.into()),
            Value::UBigInt(n) => Cell::Int(n.into()),
            Value::UHugeInt(n) => i128::try_from(n).map_or_else(|_| Cell::Text(n.to_string()), Cell::Int),
            Value::Float(f) => Cell::Float(f.into()),
            Value::Double(f) => Cell::Float(f),
            Value::Decimal(d) => d
                .to_string()
                .parse()
                .map_or_else(|_| Cell::Text(d.to_string()), Cell::Float),
            Value::Timestamp(unit, t) => Cell::Time(unit.to_micros(t)),
            Value::Text(s) | Value::Enum(s) => Cell::Text(s),
            Value::Blob(bytes) => Cell::Text(format!("<{} bytes>", bytes.len())),
            Value::Date32(days) => {
                let midnight = UNIX_EPOCH + Duration::from_secs(u64::try_from(days).unwrap_or(0) * 86_400);
                Cell::Text(humantime::format_rfc3339_seconds(midnight).to_string()[..10].to_string())
            }
            Value::List(items) | Value::Array(items) => Cell::List(items.into_iter().map(Cell::from).collect()),
            other => Cell::Text(format!("{other:?}")),
        }
    }
}

impl Cell {
    fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Float(_))
    }

    /// The cell for a terminal; `duration` shows milliseconds as "1.234 s".
    fn text(&self, duration: bool) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(n) => n.to_string(),
            Cell::Float(f) if duration => crate::format::format_duration_ms(*f),
            Cell::Float(f) => trim_float(*f),
            // Text comes from projects (commands, paths): shown, never obeyed, by the terminal.
            Cell::Text(s) => crate::text::one_line(s).into_owned(),
            Cell::Time(micros) => {
                let text = humantime::format_rfc3339_seconds(time_of(*micros)).to_string();
                text.replacen('T', " ", 1)
            }
            Cell::List(items) => {
                let shown: Vec<String> = items.iter().take(3).map(|c| c.text(duration)).collect();
                match items.len().saturating_sub(3) {
                    0 => shown.join(", "),
                    more => format!("{} (+{more})", shown.join(", ")),
                }
            }
        }
    }

    /// The cell as JSON.
    pub fn json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Cell::Null => J::Null,
            Cell::Bool(b) => J::Bool(*b),
            Cell::Int(n) => i64::try_from(*n).map_or_else(|_| J::String(n.to_string()), J::from),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Cell::Text(s) => J::String(s.clone()),
            Cell::Time(micros) => J::String(humantime::format_rfc3339_micros(time_of(*micros)).to_string()),
            Cell::List(items) => J::Array(items.iter().map(Cell::json).collect()),
        }
    }

    fn csv(&self) -> String {
        let text = match self {
            Cell::Null => return String::new(),
            Cell::Float(f) => f.to_string(),
            Cell::Time(_) | Cell::List(_) => match self.json() {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            },
            other => other.text(false),
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
}

fn time_of(micros: i64) -> SystemTime {
    let offset = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

fn trim_float(f: f64) -> String {
    let text = format!("{f:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// A result: column names and rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

/// How a table is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal; columns named `*_ms` shown as durations.
    Text,
    /// Aligned columns, values as they are.
    RawText,
    /// One JSON object per row.
    Json,
    /// CSV with a header.
    Csv,
}

impl Table {
    /// The table rendered in `format`, ending with a newline.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.aligned(true),
            Format::RawText => self.aligned(false),
            Format::Json => self.json_lines(),
            Format::Csv => self.csv(),
        }
    }

    fn aligned(&self, humanize: bool) -> String {
        let duration_column: Vec<bool> = self.columns.iter().map(|c| humanize && c.ends_with("_ms")).collect();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&duration_column)
                    .map(|(cell, d)| cell.text(*d))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                cells
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain(std::iter::once(name.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| {
                self.rows.iter().any(|r| r[i].is_number())
                    && self.rows.iter().all(|r| r[i].is_number() || r[i] == Cell::Null)
            })
            .collect();
        let mut out = String::new();
        let line = |out: &mut String, values: &[String]| {
            let padded: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let pad = " ".repeat(widths[i].saturating_sub(v.chars().count()));
                    if numeric[i] {
                        format!("{pad}{v}")
                    } else {
                        format!("{v}{pad}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        };
        line(&mut out, &self.columns);
        line(&mut out, &widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>());
        for row in &cells {
            line(&mut out, row);
        }
        out
    }

    fn json_lines(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let object: serde_json::Map<String, serde_json::Value> =
                self.columns.iter().cloned().zip(row.iter().map(Cell::json)).collect();
            let _ = writeln!(out, "{}", serde_json::Value::Object(object));
        }
        out
    }

    fn csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| Cell::Text(c.clone()).csv()).collect();
        let _ = writeln!(out, "{}", header.join(","));
        for row in &self.rows {
            let _ = writeln!(out, "{}", row.iter().map(Cell::csv).collect::<Vec<_>>().join(","));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            columns: vec!["job".into(), "duration_ms".into(), "trigger".into()],
            rows: vec![
                vec![
                    Cell::Text("train".into()),
                    Cell::Float(1234.5),
                    Cell::List(vec![Cell::Text("a.py".into())]),
                ],
                vec![Cell::Text("test, fast".into()), Cell::Null, Cell::List(vec![])],
            ],
        }
    }

    #[test]
    fn text_aligns_and_humanizes_durations() {
        let text = table().render(Format::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "job         duration_ms  trigger");
        assert_eq!(lines[2], "train           1.234 s  a.py");
        let raw = table().render(Format::RawText);
        assert!(raw.contains("1234.5"), "{raw}");
    }

    #[test]
    fn json_and_csv_keep_types_and_quote() {
        let json = table().render(Format::Json);
        let first: serde_json::Value = serde_json::from_str(json.lines().next().expect("row")).expect("json");
        assert_eq!(first["duration_ms"], 1234.5);
        assert_eq!(first["trigger"][0], "a.py");
        let csv = table().render(Format::Csv);
        assert_eq!(csv.lines().nth(2), Some("\"test, fast\",,[]"));
    }

    #[test]
    fn timestamps_read_as_utc() {
        let cell = Cell::Time(1_700_000_000_123_456);
        assert_eq!(cell.text(false), "2023-11-14 22:13:20Z");
        assert_eq!(cell.json(), "2023-11-14T22:13:20.123456Z");
    }
}
