//! Where a pane's view stands. Following, it shows the newest rows; held
//! (after scrolling back, a search or a jump), its top row is pinned to a
//! row of a line, so output that arrives below — new lines, a streaming
//! line that grows, a reply that wraps to more rows — never moves what is
//! being read. Positions are in display rows at the body's width; every
//! walk counts rows with `Pane::rows_of`, the count the renderer draws.

use super::pane::Pane;

/// A display row: row `row` (0-based) of line `line` (absolute).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowPos {
    pub line: u64,
    pub row: usize,
}

/// A pane's scroll position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scroll {
    /// Shows the newest rows as they arrive.
    #[default]
    Follow,
    /// The view's top row, held while output arrives.
    Held(RowPos),
}

impl Scroll {
    pub fn following(&self) -> bool {
        *self == Scroll::Follow
    }
}

impl Pane {
    /// The top row of a `w`×`h` view at the pane's scroll. A held top with
    /// fewer than `h` rows below it (the window grew, a draft was replaced
    /// by a shorter reply) shows the last `h` rows instead: never blank rows
    /// under the text.
    pub fn view_top(&self, w: usize, h: usize) -> RowPos {
        match self.scroll {
            Scroll::Follow => self.last_rows_top(w, h),
            Scroll::Held(pos) => {
                let pos = self.clamp_pos(pos, w);
                if self.rows_from(pos, w, h) < h {
                    self.last_rows_top(w, h)
                } else {
                    pos
                }
            }
        }
    }

    /// Scrolls by `delta` rows (positive = up), clamped to the content;
    /// reaching the bottom follows again.
    pub fn scroll_by(&mut self, delta: isize, w: usize, h: usize) {
        if let Some(view) = self.drawn_terminal_mut() {
            // A program's pane scrolls its terminal's scrollback.
            view.scroll_by(delta);
            return;
        }
        let top = self.view_top(w, h);
        let to = if delta >= 0 {
            self.rows_up(top, delta.unsigned_abs(), w)
        } else {
            self.rows_down(top, delta.unsigned_abs(), w)
        };
        self.hold(to, w, h);
    }

    /// Shows the first kept row.
    pub fn scroll_to_top(&mut self, w: usize, h: usize) {
        if let Some(view) = self.drawn_terminal_mut() {
            view.scroll_to(usize::MAX);
            return;
        }
        self.hold(
            RowPos {
                line: self.dropped,
                row: 0,
            },
            w,
            h,
        );
    }

    pub fn scroll_to_bottom(&mut self) {
        if let Some(view) = self.drawn_terminal_mut() {
            view.scroll_to(0);
        }
        self.scroll = Scroll::Follow;
    }

    /// Scrolls so line `abs` starts `above` rows below the view's top (a
    /// search puts its match mid-view, with what leads to it above).
    pub fn scroll_to_line(&mut self, abs: u64, above: usize, w: usize, h: usize) {
        if let Some(view) = self.drawn_terminal_mut() {
            view.show_row(usize::try_from(abs).unwrap_or(usize::MAX), above);
            return;
        }
        let at = self.clamp_pos(RowPos { line: abs, row: 0 }, w);
        let to = self.rows_up(at, above, w);
        self.hold(to, w, h);
    }

    /// Holds the view at `top`, or follows when the rows from `top` to the
    /// end fit the view (it would show the newest rows anyway).
    fn hold(&mut self, top: RowPos, w: usize, h: usize) {
        self.scroll = if self.rows_from(top, w, h + 1) <= h {
            Scroll::Follow
        } else {
            Scroll::Held(top)
        };
    }

    /// The top row of the view that ends at the newest row.
    fn last_rows_top(&self, w: usize, h: usize) -> RowPos {
        let mut need = h.max(1);
        let mut abs = self.end();
        while abs > self.dropped {
            abs -= 1;
            let n = self.rows_of(abs, w);
            if n >= need {
                return RowPos {
                    line: abs,
                    row: n - need,
                };
            }
            need -= n;
        }
        RowPos {
            line: self.dropped,
            row: 0,
        }
    }

    /// `pos` moved onto a kept line and one of its rows.
    fn clamp_pos(&self, pos: RowPos, w: usize) -> RowPos {
        if self.end() == self.dropped {
            return RowPos::default();
        }
        let line = pos.line.clamp(self.dropped, self.end() - 1);
        let row = if line == pos.line {
            pos.row.min(self.rows_of(line, w).saturating_sub(1))
        } else if line > pos.line {
            0
        } else {
            self.rows_of(line, w).saturating_sub(1)
        };
        RowPos { line, row }
    }

    /// Rows from `pos` to the end, counted up to `cap`.
    fn rows_from(&self, pos: RowPos, w: usize, cap: usize) -> usize {
        let mut rows = self.rows_of(pos.line, w).saturating_sub(pos.row);
        let mut abs = pos.line + 1;
        while rows < cap && abs < self.end() {
            rows += self.rows_of(abs, w);
            abs += 1;
        }
        rows
    }

    /// `n` rows above `pos`, or the first kept row.
    fn rows_up(&self, pos: RowPos, n: usize, w: usize) -> RowPos {
        if n <= pos.row {
            return RowPos {
                line: pos.line,
                row: pos.row - n,
            };
        }
        let mut need = n - pos.row;
        let mut abs = pos.line;
        while abs > self.dropped {
            abs -= 1;
            let rows = self.rows_of(abs, w);
            if rows >= need {
                return RowPos {
                    line: abs,
                    row: rows - need,
                };
            }
            need -= rows;
        }
        RowPos {
            line: self.dropped,
            row: 0,
        }
    }

    /// `n` rows below `pos`, or the last row.
    fn rows_down(&self, pos: RowPos, n: usize, w: usize) -> RowPos {
        let mut left = n;
        let mut at = pos;
        loop {
            let rows = self.rows_of(at.line, w).max(1);
            let room = rows - 1 - at.row.min(rows - 1);
            if left <= room {
                return RowPos {
                    line: at.line,
                    row: at.row + left,
                };
            }
            if at.line + 1 >= self.end() {
                return RowPos {
                    line: at.line,
                    row: rows - 1,
                };
            }
            left -= room + 1;
            at = RowPos {
                line: at.line + 1,
                row: 0,
            };
        }
    }

    /// Absolute numbers of the lines with a row in a `w`×`h` view.
    pub fn visible_lines(&self, w: usize, h: usize) -> Vec<u64> {
        let top = self.view_top(w, h);
        let mut out = Vec::new();
        let mut rows = 0;
        let mut abs = top.line;
        while rows < h && abs < self.end() {
            let n = self.rows_of(abs, w);
            rows += if abs == top.line {
                n.saturating_sub(top.row)
            } else {
                n
            };
            out.push(abs);
            abs += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Attempt, Millis, StepKey};
    use crate::tui::state::LineKind;

    fn pane(lines: usize) -> Pane {
        let mut p = Pane::new(
            StepKey::new("a"),
            "agent".into(),
            None,
            Attempt(1),
            Millis(0),
        );
        for i in 0..lines {
            p.note(format!("line {i}"), LineKind::Text);
        }
        p
    }

    #[test]
    fn a_held_view_stays_on_its_rows_while_a_long_line_streams_below() {
        let mut p = pane(40);
        p.scroll_by(10, 20, 10);
        let before = p.visible_lines(20, 10);
        assert_eq!(before.first(), Some(&20));
        // A streamed line that wraps to many rows, then more lines.
        p.push_tokens(&"word ".repeat(60));
        p.push_tokens("\nmore\nand more\n");
        assert_eq!(p.visible_lines(20, 10), before);
        p.scroll_by(-1000, 20, 10);
        assert!(p.scroll.following());
    }

    #[test]
    fn moves_are_clamped_and_the_bottom_follows() {
        let mut p = pane(40);
        p.scroll_to_top(20, 10);
        assert_eq!(p.view_top(20, 10), RowPos { line: 0, row: 0 });
        p.scroll_by(5, 20, 10);
        assert_eq!(p.view_top(20, 10), RowPos { line: 0, row: 0 });
        p.scroll_by(-29, 20, 10);
        assert_eq!(p.view_top(20, 10), RowPos { line: 29, row: 0 });
        assert!(!p.scroll.following());
        p.scroll_by(-1, 20, 10);
        assert!(p.scroll.following());
        // Short content never holds.
        let mut short = pane(3);
        short.scroll_to_top(20, 10);
        assert!(short.scroll.following());
    }

    #[test]
    fn rows_of_one_wrapped_line_are_steps_of_their_own() {
        let mut p = pane(0);
        p.note("a ".repeat(50), LineKind::Text); // 100 columns: 10 rows of 10
        p.note("end".into(), LineKind::Text);
        p.scroll_to_top(10, 4);
        p.scroll_by(-3, 10, 4);
        assert_eq!(p.view_top(10, 4), RowPos { line: 0, row: 3 });
        p.scroll_by(1, 10, 4);
        assert_eq!(p.view_top(10, 4), RowPos { line: 0, row: 2 });
    }

    #[test]
    fn dropped_lines_move_a_held_top_to_the_first_kept_line() {
        let mut p = pane(30).with_max_lines(30);
        p.scroll_to_top(20, 10);
        for i in 0..5 {
            p.note(format!("new {i}"), LineKind::Text);
        }
        assert_eq!(p.view_top(20, 10), RowPos { line: 5, row: 0 });
    }
}
