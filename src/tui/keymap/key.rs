//! One key chord as data: parsing the config syntax (`ctrl-c`, `alt-left`,
//! `shift-tab`, `f5`, `space`, `G`), showing it back, and normalising
//! crossterm's events so `G` matches however the terminal reports it.

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A normalised chord: printable characters carry their shift in the
/// character itself (`G`, `?`), never in `mods`; Shift-Tab is `BackTab`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

/// Modifiers that take part in matching (Super, Hyper, Meta are ignored).
const MATCHED: KeyModifiers = KeyModifiers::CONTROL
    .union(KeyModifiers::ALT)
    .union(KeyModifiers::SHIFT);

const NAMED: [(&str, KeyCode); 17] = [
    ("esc", KeyCode::Esc),
    ("escape", KeyCode::Esc),
    ("enter", KeyCode::Enter),
    ("return", KeyCode::Enter),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("space", KeyCode::Char(' ')),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("del", KeyCode::Delete),
    ("insert", KeyCode::Insert),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pgup", KeyCode::PageUp),
    ("pageup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
    ("pagedown", KeyCode::PageDown),
];

const ARROWS: [(&str, KeyCode); 4] = [
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
];

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        normalise(code, mods)
    }

    /// A plain character key.
    pub fn char(c: char) -> Key {
        Key::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    pub fn from_event(ev: &KeyEvent) -> Key {
        normalise(ev.code, ev.modifiers)
    }

    /// Parses the config syntax. Modifier prefixes (`ctrl-`, `alt-`,
    /// `shift-`, any order, any case) then a key: one character (case
    /// matters: `g` and `G` differ) or a name (`esc`, `enter`, `tab`,
    /// `space`, `backspace`, `delete`, `insert`, `home`, `end`, `pgup`,
    /// `pgdn`, `up`, `down`, `left`, `right`, `f1`–`f24`).
    pub fn parse(text: &str) -> Result<Key, String> {
        if text.chars().count() == 1 {
            let c = text.chars().next().ok_or("an empty key")?;
            if c.is_control() {
                return Err("control characters cannot be written as keys".to_string());
            }
            return Ok(Key::char(c));
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            // `ctrl--` is Ctrl and the `-` key; `alt-` alone is not a key.
            if rest.len() == len {
                break;
            }
            mods |= m;
            rest = &rest[len..];
        }
        if rest.is_empty() {
            return Err("an empty key".to_string());
        }
        if rest.chars().count() == 1 {
            let c = rest.chars().next().ok_or("an empty key")?;
            if c.is_control() {
                return Err("control characters cannot be written as keys".to_string());
            }
            return Ok(Key::new(KeyCode::Char(c), mods));
        }
        let lower = rest.to_ascii_lowercase();
        if let Some((_, code)) = NAMED.iter().chain(ARROWS.iter()).find(|(n, _)| *n == lower) {
            return Ok(Key::new(*code, mods));
        }
        if let Some(n) = lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok())
            && (1..=24).contains(&n)
        {
            return Ok(Key::new(KeyCode::F(n), mods));
        }
        Err(format!("`{rest}` is not a key name"))
    }
}

fn normalise(code: KeyCode, mods: KeyModifiers) -> Key {
    let mut mods = mods & MATCHED;
    let code = match code {
        KeyCode::BackTab => {
            mods.remove(KeyModifiers::SHIFT);
            KeyCode::BackTab
        }
        KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => {
            mods.remove(KeyModifiers::SHIFT);
            KeyCode::BackTab
        }
        KeyCode::Char(c) => {
            let shifted = mods.contains(KeyModifiers::SHIFT);
            mods.remove(KeyModifiers::SHIFT);
            if mods.contains(KeyModifiers::CONTROL) {
                // Terminals disagree on Ctrl-Shift letters; treat them as Ctrl.
                KeyCode::Char(c.to_ascii_lowercase())
            } else if shifted {
                // Some terminals (and the kitty protocol) report `g`+Shift.
                KeyCode::Char(c.to_ascii_uppercase())
            } else {
                KeyCode::Char(c)
            }
        }
        other => other,
    };
    Key { code, mods }
}

impl fmt::Display for Key {
    /// The config syntax (what `parse` reads back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::F(n) => write!(f, "f{n}"),
            code => {
                let name = NAMED
                    .iter()
                    .chain(ARROWS.iter())
                    .find(|(_, c)| *c == code)
                    .map(|(n, _)| *n)
                    .unwrap_or("?");
                f.write_str(name)
            }
        }
    }
}
