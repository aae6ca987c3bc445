//! Drawing: pure functions from `&State` (and the theme) to a ratatui
//! `Buffer`. Snapshot-tested with `TestBackend`. Interface fixed; body to be written.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::state::State;
use super::theme::Theme;

/// Draws the whole screen.
pub fn draw(_state: &State, _theme: &Theme, _area: Rect, _buf: &mut Buffer) {}
