//! Short forms for one-line displays: a duration, a text flattened and
//! shortened. Shared by every view (the headless printer, the workbench,
//! the transcript, the CLI).

/// `1.2s`, `340ms`, `2m05s`.
pub fn ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// The text on one line (whitespace runs become one space), terminal-safe
/// (see [`crate::text::sanitize`]), shortened to `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = super::sanitize(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut out: String = flat.chars().take(max).collect();
        out.push('…');
        out
    }
}
