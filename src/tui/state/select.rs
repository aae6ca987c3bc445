//! Selecting lines of the focused pane to copy, as in tmux's copy mode:
//! `v` puts a cursor on the last line on screen, moving it extends the
//! selection from where it began, `v` (or Space) begins it again at the
//! cursor, `y` or Enter copies it, Esc leaves. Lines are the pane's lines
//! as shown (an opened tool call with its details), whatever their wrap.

use crossterm::event::{KeyCode, KeyEvent};

use super::layout::pane_viewport;
use super::{Effect, Focus, Screen, State};
use crate::tui::keymap::Action;

/// A selection in the focused pane, by absolute line numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Where the selection began.
    pub anchor: u64,
    /// Where the cursor is; the selection runs from the anchor to here.
    pub cursor: u64,
}

impl Selection {
    /// First and last selected lines.
    pub fn bounds(&self) -> (u64, u64) {
        (self.anchor.min(self.cursor), self.anchor.max(self.cursor))
    }

    pub fn contains(&self, abs: u64) -> bool {
        let (first, last) = self.bounds();
        (first..=last).contains(&abs)
    }
}

impl State {
    /// Starts selecting in the focused pane, at its last line on screen.
    pub(super) fn start_selection(&mut self) {
        if self.screen != Screen::Panes || self.focus != Focus::Panes {
            self.say("focus a pane to select its lines (Tab, or its number)");
            return;
        }
        let (w, h) = pane_viewport(self, self.focus_pane);
        let Some(p) = self.run.panes.get(self.focus_pane) else {
            self.say("no pane to select from");
            return;
        };
        let shown = p.visible_lines(w, h);
        // Not the empty line a stream leaves open after its last newline.
        let with_text = shown
            .iter()
            .rev()
            .find(|a| p.line(**a).is_some_and(|l| !l.text.is_empty()));
        let Some(last) = with_text.or(shown.last()).copied() else {
            self.say(format!("{} has no lines yet", p.step));
            return;
        };
        self.selection = Some(Selection {
            anchor: last,
            cursor: last,
        });
    }

    /// A key while selecting: moves, copies or leaves; nothing else acts.
    pub(super) fn selection_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let (w, h) = pane_viewport(self, self.focus_pane);
        let page = h.saturating_sub(1).max(1) as i64;
        let action = self.keymap.action(&key);
        if key.code == KeyCode::Esc || action == Some(Action::Back) {
            self.selection = None;
            return Vec::new();
        }
        if key.code == KeyCode::Enter
            || matches!(action, Some(Action::CopyPane | Action::CopyVisible))
        {
            return self.copy_selection();
        }
        if key.code == KeyCode::Char(' ') || action == Some(Action::Select) {
            if let Some(s) = &mut self.selection {
                s.anchor = s.cursor;
            }
            return Vec::new();
        }
        if action == Some(Action::Quit) {
            self.selection = None;
            return self.handle_action(Action::Quit);
        }
        let by = match (key.code, action) {
            (KeyCode::Down, _) | (_, Some(Action::ScrollDown)) => 1,
            (KeyCode::Up, _) | (_, Some(Action::ScrollUp)) => -1,
            (KeyCode::PageDown, _) | (_, Some(Action::PageDown)) => page,
            (KeyCode::PageUp, _) | (_, Some(Action::PageUp)) => -page,
            (KeyCode::Home, _) | (_, Some(Action::Top)) => i64::MIN,
            (KeyCode::End, _) | (_, Some(Action::Bottom)) => i64::MAX,
            _ => {
                self.say(SELECT_KEYS);
                return Vec::new();
            }
        };
        self.move_cursor(by, w, h);
        Vec::new()
    }

    /// Moves the cursor by `lines` (clamped to the kept lines) and scrolls
    /// it into view.
    fn move_cursor(&mut self, lines: i64, w: usize, h: usize) {
        let (Some(sel), Some(p)) = (
            self.selection.as_mut(),
            self.run.panes.get_mut(self.focus_pane),
        ) else {
            return;
        };
        let Some(last) = p.end().checked_sub(1) else {
            return;
        };
        let to = if lines < 0 {
            sel.cursor.saturating_sub(lines.unsigned_abs())
        } else {
            sel.cursor.saturating_add(lines.unsigned_abs())
        };
        sel.cursor = to.clamp(p.dropped, last);
        let cursor = sel.cursor;
        let shown = p.visible_lines(w, h);
        match (shown.first(), shown.last()) {
            (Some(first), _) if cursor <= *first => p.scroll_to_line(cursor, 0, w, h),
            (_, Some(end)) if cursor >= *end => {
                // The cursor's line ends on the view's last row.
                let above = h.saturating_sub(p.rows_of(cursor, w));
                p.scroll_to_line(cursor, above, w, h);
            }
            _ => {}
        }
    }

    fn copy_selection(&mut self) -> Vec<Effect> {
        let Some(sel) = self.selection.take() else {
            return Vec::new();
        };
        let Some(p) = self.run.panes.get(self.focus_pane) else {
            return Vec::new();
        };
        let (first, last) = sel.bounds();
        let lines: Vec<u64> =
            (first.max(p.dropped)..=last.min(p.end().saturating_sub(1))).collect();
        self.copy_lines(Some(lines), ("selected ", ""))
    }

    /// The selection's state in words, for a pane's bottom line `room`
    /// columns wide (the longest that fits).
    pub fn selection_hint(&self, room: usize) -> Option<String> {
        let (first, last) = self.selection?.bounds();
        let n = last - first + 1;
        let plural = if n == 1 { "" } else { "s" };
        let variants = [
            format!(" {n} line{plural} selected · ↑↓ extend · v restart · y copy · Esc "),
            format!(" {n} line{plural} selected · y copy · Esc "),
            format!(" {n} selected · y · Esc "),
        ];
        let fits = |v: &&String| crate::text::columns(v) <= room;
        variants.iter().find(fits).or(variants.last()).cloned()
    }
}

/// What the keys do while selecting, said when another key is pressed.
const SELECT_KEYS: &str =
    "selecting lines: j/k ↑↓ PgUp PgDn g G move · v restart here · y or Enter copy · Esc leave";
