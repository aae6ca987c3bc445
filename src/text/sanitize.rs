//! Terminal-safe text. A terminal interprets escape sequences: OSC 52 writes
//! the clipboard, OSC 0 sets the window title, CSI 2J clears the screen, DCS
//! talks to the terminal itself. Output of a command or a model is data, so
//! before it reaches a terminal (or a file a user will `cat`):
//!
//! - escape sequences (ESC or 8-bit C1 introducers: CSI, OSC, DCS, SOS, PM,
//!   APC, two-byte ESC sequences) are removed whole, so colour codes do not
//!   leave `[31m` residue;
//! - other C0 controls and DEL are shown as Unicode control pictures (`␇`);
//!   remaining C1 controls are dropped;
//! - `\r\n` becomes `\n`, and a lone `\r` a line break too: overwriting a
//!   line could hide text, a break keeps every part readable;
//! - bidirectional overrides, embeddings, isolates and marks are dropped
//!   (they reorder what a reader sees);
//! - `\n` and `\t` stay.
//!
//! The state survives between chunks ([`Sanitizer::push`]), so a sequence
//! split across two streamed deltas is still removed whole.

use std::borrow::Cow;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';
const CAN: char = '\u{18}';
const SUB: char = '\u{1a}';
/// 8-bit CSI, ST and the string introducers (DCS, SOS, OSC, PM, APC).
const C1_CSI: char = '\u{9b}';
const C1_ST: char = '\u{9c}';

/// Where the scanner is inside an escape sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Ground,
    /// After ESC.
    Esc,
    /// After ESC and intermediate bytes (`ESC ( B`).
    EscIntermediate,
    /// Inside a control sequence (`ESC [ … final`).
    Csi,
    /// Inside a string sequence (OSC, DCS, SOS, PM, APC) until ST or BEL.
    Str,
    /// ESC seen inside a string sequence (maybe the start of ST).
    StrEsc,
}

/// A streaming sanitizer: feed chunks with [`Sanitizer::push`]; an escape
/// sequence cut between chunks is still removed whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sanitizer {
    mode: Mode,
    /// The last character emitted was a `\r` turned into `\n`, so a `\n`
    /// right after it belongs to the same line break.
    after_cr: bool,
}

impl Sanitizer {
    /// Appends the safe form of `chunk` to `out`.
    pub fn push(&mut self, chunk: &str, out: &mut String) {
        for c in chunk.chars() {
            self.step(c, out);
        }
    }

    /// Forgets an unfinished escape sequence (the stream ended inside one).
    pub fn reset(&mut self) {
        *self = Sanitizer::default();
    }

    fn step(&mut self, c: char, out: &mut String) {
        match self.mode {
            Mode::Ground => self.ground(c, out),
            Mode::Esc => self.after_esc(c, out),
            Mode::EscIntermediate => match c {
                '\u{20}'..='\u{2f}' => {}
                '\u{30}'..='\u{7e}' => self.mode = Mode::Ground,
                _ => self.abort(c, out),
            },
            Mode::Csi => match c {
                // Parameter and intermediate bytes.
                '\u{20}'..='\u{3f}' => {}
                '\u{40}'..='\u{7e}' => self.mode = Mode::Ground,
                _ => self.abort(c, out),
            },
            Mode::Str => match c {
                BEL | C1_ST => self.mode = Mode::Ground,
                ESC => self.mode = Mode::StrEsc,
                CAN | SUB => self.mode = Mode::Ground,
                // A line break ends the sequence: text after it stays readable.
                '\n' | '\r' => self.abort(c, out),
                _ => {}
            },
            Mode::StrEsc => {
                if c == '\\' {
                    self.mode = Mode::Ground;
                } else {
                    // ESC that is not ST starts a new sequence.
                    self.after_esc(c, out);
                }
            }
        }
    }

    /// The sequence is malformed: drop what was seen, treat `c` as text.
    fn abort(&mut self, c: char, out: &mut String) {
        self.mode = Mode::Ground;
        self.ground(c, out);
    }

    fn after_esc(&mut self, c: char, out: &mut String) {
        self.mode = match c {
            '[' => Mode::Csi,
            ']' | 'P' | 'X' | '^' | '_' => Mode::Str,
            '\u{20}'..='\u{2f}' => Mode::EscIntermediate,
            '\u{30}'..='\u{7e}' => Mode::Ground,
            _ => return self.abort(c, out),
        };
    }

    fn ground(&mut self, c: char, out: &mut String) {
        let after_cr = std::mem::take(&mut self.after_cr);
        match c {
            '\n' if after_cr => {}
            '\n' | '\t' => out.push(c),
            '\r' => {
                out.push('\n');
                self.after_cr = true;
            }
            ESC => self.mode = Mode::Esc,
            C1_CSI => self.mode = Mode::Csi,
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => self.mode = Mode::Str,
            '\u{0}'..='\u{1f}' => out.push(control_picture(c)),
            '\u{7f}' => out.push('\u{2421}'),
            c if is_unsafe_char(c) => {}
            c => out.push(c),
        }
    }
}

/// `␀`…`␟` for a C0 control.
fn control_picture(c: char) -> char {
    char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')
}

/// Characters a terminal acts on or that reorder text: controls (other than
/// `\n` and `\t`) and bidirectional formatting characters.
pub fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{61c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// The terminal-safe form of `s` (borrowed when it is already safe).
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    Sanitizer::default().push(s, &mut out);
    Cow::Owned(out)
}

/// Serialized JSON with every unsafe character (see [`is_unsafe_char`]) as
/// a `\uXXXX` escape: the same document once parsed, safe on a terminal.
/// (Such characters can only occur inside JSON strings.)
pub fn escape_json_unsafe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe_char(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", u));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_sequences_are_removed_whole() {
        let cases = [
            ("a\x1b]52;c;ZXZpbA==\x07b", "ab"),
            ("a\x1b]0;title\x1b\\b", "ab"),
            ("\x1b[2J\x1b[31mred\x1b[0m", "red"),
            ("x\x1bPq#0;2;0;0;0\x1b\\y", "xy"),
            ("\x1b(Bz\x1bc", "z"),
            ("\u{9b}31mc1\u{9d}0;t\u{9c}!", "c1!"),
            ("osc\x1b]0;no end\nnext", "osc\nnext"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "{input:?}");
        }
    }

    #[test]
    fn controls_become_visible_and_line_breaks_stay_readable() {
        assert_eq!(sanitize("bell\x07 nul\0 del\x7f"), "bell␇ nul␀ del␡");
        assert_eq!(sanitize("a\r\nb\rc\td"), "a\nb\nc\td");
        assert_eq!(sanitize("evil\u{202e}txt.exe"), "eviltxt.exe");
        assert!(matches!(sanitize("plain\ttext\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_meaning_without_raw_controls() {
        let value = serde_json::json!({"out": "a\u{9b}2J\u{202e}b\u{7f}\x1b]0;t\x07"});
        let doc = serde_json::to_string(&value).unwrap_or_default();
        let safe = escape_json_unsafe(&doc);
        assert!(!safe.chars().any(is_unsafe_char), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back, value);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn no_control_survives(s in any::<String>(), esc in "[\x1b\x07\r\n\u{9b}\u{9d}\\[\\];P0-9a-z]{0,40}") {
            let input = format!("{s}{esc}{s}");
            let out = sanitize(&input);
            prop_assert!(!out.chars().any(is_unsafe_char), "{out:?}");
        }

        #[test]
        fn chunking_does_not_change_the_result(
            s in "[\x1b\x07\r\nab\\[\\]\\\\;P0-9\u{9c}]{0,60}",
            cut in 0usize..60,
        ) {
            let at = (0..=cut.min(s.len())).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            let mut san = Sanitizer::default();
            let mut chunked = String::new();
            san.push(&s[..at], &mut chunked);
            san.push(&s[at..], &mut chunked);
            prop_assert_eq!(chunked, sanitize(&s).into_owned());
        }
    }
}
