//! Themes: a palette plus named style slots with dotted fallback
//! (`pane.border.focused` → `pane.border` → `pane`), symbols, a 16-colour
//! fallback and `NO_COLOR`. Only this module builds `Style`s from theme data.
//! Interface fixed; body to be written.

use ratatui::style::Style;
use ratatui::widgets::BorderType;

use crate::protocol::StepStatus;

/// A resolved theme.
#[derive(Debug, Clone, Default)]
pub struct Theme {}

impl Theme {
    /// The built-in dark theme (never fails).
    pub fn fallback() -> Theme {
        Theme {}
    }
    /// The style for a slot such as `step.running` or `agent.coder`, with
    /// dotted fallback; unknown slots get the base style.
    pub fn style(&self, _slot: &str) -> Style {
        Style::default()
    }
    pub fn border_type(&self) -> BorderType {
        BorderType::Rounded
    }
    /// The glyph for a step status.
    pub fn status_symbol(&self, status: StepStatus) -> &str {
        match status {
            StepStatus::Succeeded => "●",
            StepStatus::Failed => "✗",
            StepStatus::Running | StepStatus::Retrying => "◐",
            StepStatus::Waiting => "⏸",
            StepStatus::Skipped | StepStatus::Cancelled => "–",
            StepStatus::Pending | StepStatus::Blocked => "○",
        }
    }
    /// Spinner frame `tick`.
    pub fn spinner(&self, tick: u64) -> &str {
        const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
        FRAMES[(tick % 10) as usize]
    }
}
