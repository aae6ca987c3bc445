//! Replay mode: the recorded events of a run, a position among them and a
//! playback clock. Moving back rebuilds the fold from a prefix (folding is
//! cheap and this keeps one code path); moving forward folds the next events.

use crate::protocol::{Millis, Notice, Recorded, StepKey};

use super::{RunView, State};

/// Playback speeds (multiples of real time).
const SPEEDS: [u32; 6] = [1, 2, 4, 8, 16, 64];
/// Longest real wait between two events during playback.
const MAX_GAP_MS: u64 = 1_500;

/// A recorded run being played back.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub events: Vec<Recorded>,
    /// Events folded so far (`events[..pos]`).
    pub pos: usize,
    pub playing: bool,
    speed_index: usize,
    /// Playback time (event time scale).
    pub at: Millis,
    last_tick: Option<Millis>,
}

impl Replay {
    pub fn new(events: Vec<Recorded>) -> Replay {
        let at = events.first().map(|r| r.event.at()).unwrap_or(Millis(0));
        Replay {
            events,
            pos: 0,
            playing: true,
            speed_index: 0,
            at,
            last_tick: None,
        }
    }

    pub fn speed(&self) -> u32 {
        SPEEDS.get(self.speed_index).copied().unwrap_or(1)
    }

    /// Position of the first recorded event about `step`.
    pub fn first_naming(&self, step: &StepKey) -> Option<usize> {
        self.events
            .iter()
            .position(|r| r.event.step() == Some(step))
    }

    /// After a jump the playback clock continues from the folded position.
    pub(super) fn sync_clock(&mut self, run: &RunView) {
        if self.pos > 0 {
            self.at = run.last_at;
        } else if let Some(first) = self.events.first() {
            self.at = first.event.at();
        }
    }
}

impl State {
    /// Advances playback by the tick time passed (times the speed).
    pub(super) fn replay_tick(&mut self, t: Millis) {
        let Some(r) = self.replay.as_mut() else {
            return;
        };
        let dt = r.last_tick.map(|l| t.0.saturating_sub(l.0)).unwrap_or(0);
        r.last_tick = Some(t);
        if !r.playing {
            return;
        }
        // Recorded times can be anything in a damaged journal: saturate.
        r.at = Millis(
            r.at.0
                .saturating_add(dt.saturating_mul(u64::from(r.speed()))),
        );
        let mut n = 0;
        while let Some(next) = r.events.get(r.pos + n) {
            let due = next.event.at();
            // Long idle stretches are skipped so playback never stalls.
            if due.0 > r.at.0.saturating_add(MAX_GAP_MS * u64::from(r.speed())) {
                r.at = Millis(due.0.saturating_sub(MAX_GAP_MS));
            }
            if due > r.at {
                break;
            }
            n += 1;
        }
        if n > 0 {
            self.replay_forward(n);
        }
        if let Some(r) = self.replay.as_mut()
            && r.pos >= r.events.len()
        {
            r.playing = false;
        }
    }

    /// Folds the next `n` events.
    fn replay_forward(&mut self, n: usize) {
        let Some(r) = self.replay.as_mut() else {
            return;
        };
        let end = (r.pos + n).min(r.events.len());
        let batch: Vec<Recorded> = r.events[r.pos..end].to_vec();
        r.pos = end;
        for rec in batch {
            let folded = self.run.apply(&Notice::Event(rec));
            self.after_fold(folded);
        }
        self.mark_prompts_seen();
    }

    fn mark_prompts_seen(&mut self) {
        for s in self.prompt_seen.iter_mut() {
            s.get_or_insert(Millis(0));
        }
    }

    /// Moves playback to position `pos` (events `..pos` folded).
    pub fn replay_jump(&mut self, pos: usize) {
        let Some(r) = self.replay.as_ref() else {
            return;
        };
        let cur = r.pos;
        if pos >= cur {
            self.replay_forward(pos - cur);
            if let Some(r) = self.replay.as_mut() {
                let run_at = self.run.last_at;
                if r.pos > 0 {
                    r.at = run_at;
                }
            }
        } else {
            self.rebuild_replay(pos);
        }
    }

    pub(super) fn replay_action(&mut self, a: crate::tui::keymap::Action) {
        use crate::tui::keymap::Action;
        let Some(r) = self.replay.as_mut() else {
            self.say("not in replay mode");
            return;
        };
        match a {
            Action::ReplayPlayPause => {
                if r.pos >= r.events.len() {
                    // Play again from the start.
                    self.rebuild_replay(0);
                    if let Some(r) = self.replay.as_mut() {
                        r.playing = true;
                    }
                } else {
                    r.playing = !r.playing;
                }
            }
            Action::ReplayFaster => r.speed_index = (r.speed_index + 1).min(SPEEDS.len() - 1),
            Action::ReplaySlower => r.speed_index = r.speed_index.saturating_sub(1),
            Action::ReplayStepForward => {
                r.playing = false;
                let p = r.pos + 1;
                self.replay_jump(p);
            }
            Action::ReplayStepBack => {
                r.playing = false;
                let p = r.pos.saturating_sub(1);
                self.replay_jump(p);
            }
            _ => {}
        }
    }
}
