//! Crossterm's backend writing to a sink at a fixed size, counting the
//! frames it flushes: the real terminal write without a terminal, shared by
//! the benches that run the real app loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};

/// Crossterm's backend writing to a sink, at a fixed size, counting frames.
pub struct Counted {
    pub inner: CrosstermBackend<std::io::Sink>,
    pub frames: Arc<AtomicU64>,
    pub width: u16,
    pub height: u16,
}

impl Backend for Counted {
    type Error = std::io::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        Ok(Position::ORIGIN)
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        Ok(Size::new(self.width, self.height))
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        Ok(WindowSize {
            columns_rows: Size::new(self.width, self.height),
            pixels: Size::new(0, 0),
        })
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.inner.flush()
    }
}

/// A terminal of `width` × `height` drawing into a sink, and its frame count.
pub fn sink_terminal(width: u16, height: u16) -> (ratatui::Terminal<Counted>, Arc<AtomicU64>) {
    let frames = Arc::new(AtomicU64::new(0));
    let backend = Counted {
        inner: CrosstermBackend::new(std::io::sink()),
        frames: frames.clone(),
        width,
        height,
    };
    let terminal = ratatui::Terminal::with_options(
        backend,
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, width, height)),
        },
    )
    .expect("a terminal over a sink");
    (terminal, frames)
}

/// The workbench as `lev` opens it, on `engine`, with the built-in theme and keys.
pub fn bench_app(engine: &lev::engine::Engine) -> lev::tui::app::App {
    lev::tui::app::App {
        notices: engine.subscribe(),
        engine: engine.clone(),
        theme: lev::tui::theme::Theme::fallback(),
        theme_name: "dark".into(),
        themes: lev::tui::theme::Catalog::new(Vec::new(), false),
        attention: Default::default(),
        scrollback: lev::tui::state::MAX_LINES,
        keymap: lev::tui::keymap::Keymap::default(),
        flowmind: "rules".into(),
    }
}
