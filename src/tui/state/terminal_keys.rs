//! Typing into a `pty` step's program from its pane: Enter on the focused
//! pane of a running program enters it (every key then goes to the
//! program, as zellij's locked mode), `LEAVE` leaves; a paste goes in
//! bracketed when the program asked for that. Each pane's terminal follows
//! the pane's size (`Op::PtyResize`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::layout::{pane_body, regions};
use super::{Effect, Focus, Screen, State};
use crate::protocol::Op;

/// The key that leaves a program's terminal (Ctrl-g), as the status bar
/// names it.
pub const LEAVE_NAME: &str = "Ctrl-g";

fn is_leave(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('g') && key.modifiers.contains(KeyModifiers::CONTROL)
}

impl State {
    /// The pane whose program takes the keys, while one does.
    pub fn typing_into(&self) -> Option<usize> {
        let i = self.terminal_input?;
        self.run
            .panes
            .get(i)
            .filter(|p| p.terminal.is_some())
            .map(|_| i)
    }

    /// A key while a program takes the keys, or Enter that enters one:
    /// `None` when it is not for a terminal.
    pub(super) fn terminal_key(&mut self, key: &KeyEvent) -> Option<Vec<Effect>> {
        if let Some(i) = self.typing_into() {
            if is_leave(key) {
                self.terminal_input = None;
                self.say("left the program: lev's keys again");
                return Some(Vec::new());
            }
            return Some(
                self.send_to_program(i, |screen| encode(key, screen.application_cursor())),
            );
        }
        self.terminal_input = None;
        let enters = key.code == KeyCode::Enter
            && key.modifiers.is_empty()
            && self.screen == Screen::Panes
            && self.focus == Focus::Panes
            && self
                .run
                .panes
                .get(self.focus_pane)
                .is_some_and(|p| p.terminal.is_some());
        if !enters || self.replay.is_some() || self.run.run.is_none() {
            return None;
        }
        self.terminal_input = Some(self.focus_pane);
        self.say(format!(
            "typing into the program: every key goes to it, {LEAVE_NAME} leaves"
        ));
        Some(Vec::new())
    }

    /// A paste while a program takes the keys.
    pub(super) fn terminal_paste(&mut self, text: &str) -> Option<Vec<Effect>> {
        let i = self.typing_into()?;
        Some(self.send_to_program(i, |screen| {
            let clean = text.replace('\x1b', "");
            Some(if screen.bracketed_paste() {
                format!("\x1b[200~{clean}\x1b[201~").into_bytes()
            } else {
                clean.into_bytes()
            })
        }))
    }

    fn send_to_program(
        &mut self,
        i: usize,
        bytes: impl FnOnce(&vt100::Screen) -> Option<Vec<u8>>,
    ) -> Vec<Effect> {
        let (Some(run), Some(p)) = (self.run.run.clone(), self.run.panes.get(i)) else {
            return Vec::new();
        };
        let Some(bytes) = p.terminal.as_ref().and_then(|t| bytes(t.screen())) else {
            return Vec::new();
        };
        vec![Effect::Op(Op::PtyInput {
            run,
            step: p.step.clone(),
            bytes,
        })]
    }

    /// Makes each shown program's terminal the size of its pane: the
    /// emulators here at once, the programs through the engine.
    pub fn fit_terminals(&mut self) -> Vec<Effect> {
        let Some(run) = self.run.run.clone() else {
            return Vec::new();
        };
        if self.replay.is_some() || self.screen != Screen::Panes {
            return Vec::new();
        }
        let area = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let shown: Vec<(usize, (u16, u16))> = regions(self, area)
            .panes
            .iter()
            .map(|(i, r)| {
                let body = pane_body(*r);
                (*i, (body.height, body.width))
            })
            .collect();
        let mut out = Vec::new();
        for (i, (rows, cols)) in shown {
            let Some(p) = self.run.panes.get_mut(i) else {
                continue;
            };
            let Some(view) = p.terminal.as_mut() else {
                continue;
            };
            if rows < 2 || cols < 10 || view.size() == (rows, cols) {
                continue;
            }
            view.set_size(rows, cols);
            out.push(Effect::Op(Op::PtyResize {
                run: run.clone(),
                step: p.step.clone(),
                rows,
                cols,
            }));
        }
        out
    }
}

/// The bytes a terminal sends for `key` (xterm's encoding); `None` for a
/// key a program cannot be sent.
pub fn encode(key: &KeyEvent, application_cursor: bool) -> Option<Vec<u8>> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let cursor = |c: u8| -> Vec<u8> {
        if application_cursor {
            vec![0x1b, b'O', c]
        } else {
            vec![0x1b, b'[', c]
        }
    };
    let mut bytes = match key.code {
        KeyCode::Char(c) if ctrl => match c.to_ascii_lowercase() {
            c @ 'a'..='z' => vec![c as u8 - b'a' + 1],
            ' ' | '@' | '2' => vec![0],
            '[' | '3' => vec![0x1b],
            '\\' | '4' => vec![0x1c],
            ']' | '5' => vec![0x1d],
            '^' | '6' => vec![0x1e],
            '_' | '/' | '7' => vec![0x1f],
            _ => return None,
        },
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => vec![b'\r'],
        KeyCode::Tab => vec![b'\t'],
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => cursor(b'A'),
        KeyCode::Down => cursor(b'B'),
        KeyCode::Right => cursor(b'C'),
        KeyCode::Left => cursor(b'D'),
        KeyCode::Home => cursor(b'H'),
        KeyCode::End => cursor(b'F'),
        KeyCode::PageUp => b"\x1b[5~".to_vec(),
        KeyCode::PageDown => b"\x1b[6~".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        KeyCode::Insert => b"\x1b[2~".to_vec(),
        KeyCode::F(n @ 1..=4) => vec![0x1b, b'O', b'P' + (n - 1)],
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)];
            format!("\x1b[{code}~").into_bytes()
        }
        _ => return None,
    };
    if alt {
        bytes.insert(0, 0x1b);
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn keys_are_sent_as_xterm_sends_them() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            encode(&key(KeyCode::Char('é'), none), false),
            Some("é".as_bytes().to_vec())
        );
        assert_eq!(
            encode(&key(KeyCode::Char('c'), KeyModifiers::CONTROL), false),
            Some(vec![3])
        );
        assert_eq!(encode(&key(KeyCode::Enter, none), false), Some(vec![b'\r']));
        assert_eq!(
            encode(&key(KeyCode::Up, none), false),
            Some(b"\x1b[A".to_vec())
        );
        assert_eq!(
            encode(&key(KeyCode::Up, none), true),
            Some(b"\x1bOA".to_vec())
        );
        assert_eq!(
            encode(&key(KeyCode::Char('x'), KeyModifiers::ALT), false),
            Some(b"\x1bx".to_vec())
        );
        assert_eq!(
            encode(&key(KeyCode::F(5), none), false),
            Some(b"\x1b[15~".to_vec())
        );
        assert_eq!(
            encode(&key(KeyCode::F(1), none), false),
            Some(b"\x1bOP".to_vec())
        );
    }
}
