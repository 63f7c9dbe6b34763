//! `looptop history`, `stats`, `query` and `export`: reading the run history.

use crate::cli::{ExportArgs, HistoryArgs, OutputArgs, QueryArgs, StatsArgs, TestsArgs};
use crate::config::Config;
use crate::store::reader::History;
use crate::store::table::{Cell, Format, Table};
use crate::store::StoreError;

use super::Failure;

/// `looptop history`.
pub fn history(config: &Config, args: &HistoryArgs) -> Result<u8, Failure> {
    let table = open(config)?
        .recent_runs(args.job.as_deref(), args.limit)
        .map_err(failure)?;
    print(&table, args.output.format(Format::Text));
    Ok(0)
}

/// `looptop stats`.
pub fn stats(config: &Config, args: &StatsArgs) -> Result<u8, Failure> {
    let table = open(config)?.stats(args.job.as_deref()).map_err(failure)?;
    print_with_trend(table, args.output.format(Format::Text));
    Ok(0)
}

/// `looptop tests`.
pub fn tests(config: &Config, args: &TestsArgs) -> Result<u8, Failure> {
    let table = open(config)?
        .tests(args.job.as_deref(), args.slowest)
        .map_err(failure)?;
    if table.rows.is_empty() {
        eprintln!(
            "looptop: no per-test results in the history yet: they are recorded for pytest jobs \
             (kind = \"test\", or a command that runs pytest) and jobs with `junit` in looptop.toml"
        );
    }
    print_with_trend(table, args.output.format(Format::Text));
    Ok(0)
}

/// Prints `table`, whose last column is a list of durations: a sparkline on a terminal, the
/// numbers in JSON and CSV.
fn print_with_trend(mut table: Table, format: Format) {
    if format == Format::Text {
        for row in &mut table.rows {
            if let Some(trend) = row.last_mut() {
                *trend = Cell::Text(sparkline(trend));
            }
        }
    }
    print(&table, format);
}

/// `looptop query`.
pub fn query(config: &Config, args: &QueryArgs) -> Result<u8, Failure> {
    let table = open(config)?.query(&args.sql).map_err(failure)?;
    print(&table, args.output.format(Format::RawText));
    Ok(0)
}

/// `looptop export`.
pub fn export(config: &Config, args: &ExportArgs) -> Result<u8, Failure> {
    let files = open(config)?.export(args.format.into(), &args.out).map_err(failure)?;
    for file in files {
        println!("{}", file.display());
    }
    Ok(0)
}

fn open(config: &Config) -> Result<History, Failure> {
    History::open(&config.history_path).map_err(failure)
}

fn failure(error: StoreError) -> Failure {
    Failure::runtime(error.to_string())
}

fn print(table: &Table, format: Format) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(table.render(format).as_bytes());
}

/// "▁▃▂▇█" for a list of numbers (see `format::sparkline`); other cells give "".
pub fn sparkline(cell: &Cell) -> String {
    let Cell::List(items) = cell else { return String::new() };
    let values: Vec<f64> = items
        .iter()
        .filter_map(|c| match c {
            Cell::Float(f) => Some(*f),
            _ => None,
        })
        .collect();
    crate::format::sparkline(&values)
}

impl OutputArgs {
    /// The format asked for, or `default`.
    pub fn format(&self, default: Format) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_min_to_max() {
        let cell = Cell::List([100.0, 200.0, 150.0, 800.0].into_iter().map(Cell::Float).collect());
        assert_eq!(sparkline(&cell), "▁▂▂█");
        assert_eq!(sparkline(&Cell::List(vec![Cell::Float(5.0)])), "▁");
        assert_eq!(sparkline(&Cell::Null), "");
    }
}
