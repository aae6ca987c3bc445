//! Screen state as a fold of engine notices (`apply`) plus UI state, and
//! input handling that turns keys into effects (`handle`): plain data,
//! testable without a terminal. Interface fixed; body to be written.

use crossterm::event::{KeyEvent, MouseEvent};

use crate::journal::RunMeta;
use crate::protocol::{Millis, Notice, Op, Recorded, RunId};

/// Input from the terminal (already filtered to key presses).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Bracketed paste: one event.
    Paste(String),
    Resize(u16, u16),
    /// Time passed (spinners, countdowns, replay playback, grace periods).
    Tick(Millis),
}

/// What the app loop must do after an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send to the engine of the run on screen.
    Op(Op),
    /// Leave the workbench (runs stay durable).
    Quit,
    /// Open a run from the runs browser (resume it when unfinished).
    OpenRun(RunId),
    /// Ring the terminal bell and/or send a desktop notification (OSC 9/777).
    Attention(String),
    /// Copy text to the clipboard (OSC 52).
    Copy(String),
}

/// Everything the screen shows.
#[derive(Debug, Default)]
pub struct State {}

impl State {
    pub fn new() -> State {
        State {}
    }
    /// Folds one notice from the engine (durable event, pending prompt, delta).
    pub fn apply(&mut self, _notice: &Notice) {}
    /// Handles one input; returns what the app loop must do.
    pub fn handle(&mut self, _input: Input) -> Vec<Effect> {
        Vec::new()
    }
    /// The runs browser's list (newest first).
    pub fn set_runs(&mut self, _runs: Vec<RunMeta>) {}
    /// Enters playback mode over a recorded run.
    pub fn load_replay(&mut self, _events: Vec<Recorded>) {}
    /// True while something animates (spinners, countdown, playback): the app ticks only then.
    pub fn animating(&self) -> bool {
        false
    }
}
