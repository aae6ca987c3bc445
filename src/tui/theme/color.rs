//! Colour syntax for theme files: `#rrggbb` (or `#rgb`) and the sixteen ANSI
//! names, plus the nearest-ANSI approximation used for 16-colour terminals.

use ratatui::style::Color;

/// The ANSI names a theme may use, with the colour each means. Spellings are
/// normalised first (`light_blue`, `light-blue`, `Light Blue` → `lightblue`).
const NAMED: [(&str, Color); 16] = [
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("gray", Color::Gray),
    ("darkgray", Color::DarkGray),
    ("lightred", Color::LightRed),
    ("lightgreen", Color::LightGreen),
    ("lightyellow", Color::LightYellow),
    ("lightblue", Color::LightBlue),
    ("lightmagenta", Color::LightMagenta),
    ("lightcyan", Color::LightCyan),
    ("white", Color::White),
];

/// The names accepted for ANSI colours, for hints.
pub fn ansi_names() -> Vec<&'static str> {
    NAMED.iter().map(|(n, _)| *n).collect()
}

/// An ANSI colour by name (`reset`/`default` mean the terminal's own).
pub fn parse_named(text: &str) -> Option<Color> {
    let norm: String = text
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let norm = norm.replace("grey", "gray");
    if norm == "reset" || norm == "default" {
        return Some(Color::Reset);
    }
    NAMED.iter().find(|(n, _)| *n == norm).map(|(_, c)| *c)
}

/// `#rrggbb`, `#rgb` or an ANSI name.
pub fn parse(text: &str) -> Result<Color, String> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix('#') {
        return parse_hex(hex).ok_or_else(|| {
            format!("`{t}` is not a hex colour (write `#rrggbb` or `#rgb` with digits 0-9, a-f)")
        });
    }
    parse_named(t).ok_or_else(|| format!("`{t}` is not a colour"))
}

fn parse_hex(hex: &str) -> Option<Color> {
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize| u8::from_str_radix(hex.get(i..=i)?, 16).ok();
    let pair = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    match hex.len() {
        6 => Some(Color::Rgb(pair(0)?, pair(2)?, pair(4)?)),
        3 => Some(Color::Rgb(digit(0)? * 17, digit(1)? * 17, digit(2)? * 17)),
        _ => None,
    }
}

/// The typical xterm RGB of each ANSI colour, to find the nearest one.
const ANSI_RGB: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

/// The ANSI colour closest to `c` (ANSI colours map to themselves).
pub fn nearest_ansi(c: Color) -> Color {
    let Color::Rgb(r, g, b) = c else {
        return c;
    };
    let dist = |(ar, ag, ab): (u8, u8, u8)| {
        // Weighted for the eye's greater sensitivity to green.
        let dr = i32::from(r) - i32::from(ar);
        let dg = i32::from(g) - i32::from(ag);
        let db = i32::from(b) - i32::from(ab);
        3 * dr * dr + 4 * dg * dg + 2 * db * db
    };
    ANSI_RGB
        .iter()
        .min_by_key(|(_, rgb)| dist(*rgb))
        .map(|(c, _)| *c)
        .unwrap_or(Color::Reset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_names_parse() {
        assert_eq!(parse("#0b0f14"), Ok(Color::Rgb(0x0b, 0x0f, 0x14)));
        assert_eq!(parse("#fff"), Ok(Color::Rgb(255, 255, 255)));
        assert_eq!(parse("light_blue"), Ok(Color::LightBlue));
        assert_eq!(parse("Dark Grey"), Ok(Color::DarkGray));
        assert!(parse("#12345").is_err());
        assert!(parse("#gg0000").is_err());
        assert!(parse("#ééé").is_err());
        assert!(parse("purple").is_err());
    }

    #[test]
    fn nearest_ansi_is_sensible() {
        assert_eq!(nearest_ansi(Color::Rgb(0xf8, 0x51, 0x49)), Color::LightRed);
        assert_eq!(nearest_ansi(Color::Rgb(0x0b, 0x0f, 0x14)), Color::Black);
        assert_eq!(nearest_ansi(Color::Rgb(250, 250, 250)), Color::White);
        assert_eq!(nearest_ansi(Color::Cyan), Color::Cyan);
    }
}
