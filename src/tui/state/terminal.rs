//! A `pty` step's terminal as the workbench sees it: its own emulator fed
//! with what the program wrote (`Delta::PtyOutput`), drawn cell by cell
//! into the pane. The engine has its own emulator for the transcript; the
//! workbench only needs the screen.

/// Lines of a program's scrollback a pane keeps at most: a row costs about
/// 32 bytes a column (≈ 13 MB for 2,000 rows of a 200-column pane); fewer
/// when `tui.scrollback_lines` is lower.
pub const MAX_TERMINAL_SCROLLBACK: usize = 2_000;

/// The emulator of one pane's terminal.
pub struct TerminalView {
    parser: Box<vt100::Parser>,
}

impl TerminalView {
    /// A terminal of `rows` × `cols` that keeps `scrollback` lines (at
    /// most `MAX_TERMINAL_SCROLLBACK`).
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> TerminalView {
        let one = std::num::NonZeroU16::MIN;
        let rows = std::num::NonZeroU16::new(rows).unwrap_or(one);
        let cols = std::num::NonZeroU16::new(cols).unwrap_or(one);
        TerminalView {
            parser: Box::new(vt100::Parser::new(
                rows,
                cols,
                scrollback.min(MAX_TERMINAL_SCROLLBACK),
            )),
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// Shows `offset` lines of scrollback above the screen (0: the live
    /// screen); clamped to what is kept. Returns the offset shown.
    pub fn scroll_to(&mut self, offset: usize) -> usize {
        self.parser.screen_mut().set_scrollback(offset);
        self.parser.screen().scrollback()
    }

    /// The pane changed size: the emulator follows (the program is told
    /// through the engine).
    pub fn set_size(&mut self, rows: u16, cols: u16) {
        if let (Some(r), Some(c)) = (
            std::num::NonZeroU16::new(rows),
            std::num::NonZeroU16::new(cols),
        ) {
            self.parser.screen_mut().set_size(r, c);
        }
    }

    /// Rows and columns.
    /// Scrolls `delta` lines (positive: up, into the scrollback).
    pub fn scroll_by(&mut self, delta: isize) -> usize {
        let now = self.parser.screen().scrollback();
        self.scroll_to(now.saturating_add_signed(delta))
    }

    /// Lines of scrollback shown above the live screen (0: the live screen).
    pub fn scrolled(&self) -> usize {
        self.parser.screen().scrollback()
    }

    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.parser.screen().size();
        (rows.get(), cols.get())
    }

    /// Every row kept, the scrollback's oldest first, then the screen.
    pub fn rows(&mut self) -> Vec<String> {
        crate::commands::pty::all_rows(self.parser.screen_mut())
    }

    /// Scrolls so row `index` of `rows()` shows `above` rows below the top.
    pub fn show_row(&mut self, index: usize, above: usize) {
        let screen = self.parser.screen_mut();
        screen.set_scrollback(usize::MAX);
        let kept_above = screen.scrollback();
        // Offset k shows rows `kept_above - k ..` at the top.
        let top = index.saturating_sub(above).min(kept_above);
        screen.set_scrollback(kept_above - top);
    }

    /// The screen's text, a line per row (for tests and search).
    pub fn text(&self) -> String {
        self.parser.screen().contents()
    }
}

impl Clone for TerminalView {
    /// The screen as drawn (its scrollback is not carried over).
    fn clone(&self) -> TerminalView {
        let (rows, cols) = self.size();
        let mut copy = TerminalView::new(rows, cols, 0);
        copy.feed(self.parser.screen().contents_formatted().as_bytes());
        copy
    }
}

impl std::fmt::Debug for TerminalView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, cols) = self.size();
        write!(f, "TerminalView({cols}×{rows})")
    }
}

impl PartialEq for TerminalView {
    fn eq(&self, other: &TerminalView) -> bool {
        self.size() == other.size()
            && self.parser.screen().contents_formatted()
                == other.parser.screen().contents_formatted()
    }
}
