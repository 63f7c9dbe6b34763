//! How looptop writes numbers for people: counts with their noun, bytes, durations (in full,
//! and short for the TUI), and a sparkline of a series. A leaf: it imports nothing of
//! looptop's, so every layer (diagnosis, history, front ends) can use it without reaching up.

/// "1 process", "5 processes": a count with its noun in the right number.
pub fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}

/// Bytes in the largest unit that keeps the number at least 1 ("1.2 GB", "640 B").
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// "▁▃▂▇█": each value's height between the values' min and max (all alike: the lowest bar).
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (min, max) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    values
        .iter()
        .map(|v| {
            let share = if max > min { (v - min) / (max - min) } else { 0.0 };
            BARS[((share * 7.0).round() as usize).min(7)]
        })
        .collect()
}

/// "850.2 ms", "1.234 s", "2 min 3.4 s".
pub fn format_duration_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else if ms < 60_000.0 {
        format!("{:.3} s", ms / 1000.0)
    } else {
        let minutes = (ms / 60_000.0).floor();
        format!("{minutes:.0} min {:.1} s", (ms - minutes * 60_000.0) / 1000.0)
    }
}

/// "850 ms", "1.23 s", "2m03s": a duration shorter, for the TUI's tight panes.
pub fn short_duration_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        let seconds = (ms / 1000.0).round() as u64;
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration_ms(850.25), "850.2 ms");
        assert_eq!(format_duration_ms(1234.5), "1.234 s");
        assert_eq!(format_duration_ms(123_400.0), "2 min 3.4 s");
    }

    #[test]
    fn counts_and_bytes_read_naturally() {
        assert_eq!(count(1_u32, "process", "processes"), "1 process");
        assert_eq!(count(5_usize, "process", "processes"), "5 processes");
        assert_eq!(format_bytes(640), "640 B");
        assert_eq!(format_bytes(1_234_000_000), "1.2 GB");
        assert_eq!(sparkline(&[1.0, 2.0, 8.0]), "▁▂█");
        assert_eq!(sparkline(&[5.0, 5.0]), "▁▁");
    }
}
