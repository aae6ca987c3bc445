//! Keymap as data: actions with descriptions (the help overlay is generated
//! from them), built-in defaults, and YAML patches from config.
//! Interface fixed; body to be written.

use crossterm::event::KeyEvent;

/// Everything a key can ask the workbench to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Help,
    Palette,
    Quit,
    /// Close the overlay / leave search / go back.
    Back,
    FocusNext,
    FocusPrev,
    FocusLeft,
    FocusRight,
    FocusUp,
    FocusDown,
    /// `1`–`9`.
    JumpPane(u8),
    ToggleZoom,
    LayoutTabs,
    LayoutGrid,
    ToggleSidebar,
    Overview,
    Timeline,
    Search,
    SearchNext,
    SearchPrev,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Top,
    /// Bottom, and follow new output again.
    Bottom,
    ToggleToolDetails,
    /// Focus the next prompt that waits for the user (sidebar).
    NextPrompt,
    Approve,
    Deny,
    /// Start typing an answer / message in the input box.
    Answer,
    SendMessage,
    PauseRun,
    CancelStep,
    RetryStep,
    Fork,
    StopCallbacks,
    CopyPane,
    ReplayPlayPause,
    ReplayStepForward,
    ReplayStepBack,
    ReplayFaster,
    ReplaySlower,
}

/// Key bindings, looked up per key press.
#[derive(Debug, Clone, Default)]
pub struct Keymap {}

impl Keymap {
    /// The built-in bindings.
    pub fn defaults() -> Keymap {
        Keymap {}
    }
    /// The action bound to `key`, if any.
    pub fn action(&self, _key: &KeyEvent) -> Option<Action> {
        None
    }
    /// (keys, action, description) rows for the help overlay, in display order.
    pub fn help_rows(&self) -> Vec<(String, Action, String)> {
        Vec::new()
    }
}
