//! How the workbench announces something that waits for the user: the
//! terminal bell and a desktop notification (OSC 9 and/or OSC 777), as
//! `tui.attention` in the config says; and the terminal's title (OSC 2),
//! which names the run and its state. `State` decides *when* (once per
//! question or approval, never in replay); this module decides *what bytes*.

use crate::config::{AttentionSettings, Notify};

/// Longest notification text sent (terminals and notification daemons
/// truncate or drop long ones anyway).
const MAX_CHARS: usize = 200;

/// The escape sequences announcing `text`; empty when both the bell and
/// notifications are off.
pub fn escapes(settings: &AttentionSettings, text: &str) -> String {
    // A control character inside an OSC string would end it early or inject
    // another sequence: the text comes from agents and workflows.
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect();
    let mut out = String::new();
    if settings.bell {
        out.push('\x07');
    }
    if matches!(settings.notify, Notify::Osc9 | Notify::Both) {
        out.push_str(&format!("\x1b]9;{clean}\x07"));
    }
    if matches!(settings.notify, Notify::Osc777 | Notify::Both) {
        out.push_str(&format!("\x1b]777;notify;lev;{clean}\x07"));
    }
    out
}

/// Saves the terminal's title on the xterm title stack (tmux, kitty,
/// iTerm2, GNOME and the others that have one), so leaving gives it back.
pub const SAVE_TITLE: &str = "\x1b[22;0t";
/// Gives back the title saved by [`SAVE_TITLE`].
pub const RESTORE_TITLE: &str = "\x1b[23;0t";

/// The escape setting the terminal's (window and tab) title to `text`,
/// without control characters (names come from workflows).
pub fn title(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect();
    format!("\x1b]2;{clean}\x07")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, Notice};
    use crate::tui::state::sample::sample_events;
    use crate::tui::state::{Effect, Input, State};

    fn with(bell: bool, notify: Notify) -> AttentionSettings {
        AttentionSettings { bell, notify }
    }

    #[test]
    fn a_title_cannot_carry_another_escape() {
        assert_eq!(
            title("lev · evil\x07\x1b]52;c;x\x07 · running"),
            "\x1b]2;lev · evil]52;c;x · running\x07"
        );
    }

    #[test]
    fn the_escapes_follow_the_settings() {
        let t = "approve coder? run tests";
        assert_eq!(
            escapes(&AttentionSettings::default(), t),
            "\x07\x1b]9;approve coder? run tests\x07\x1b]777;notify;lev;approve coder? run tests\x07"
        );
        assert_eq!(escapes(&with(true, Notify::None), t), "\x07");
        assert_eq!(
            escapes(&with(false, Notify::Osc9), t),
            "\x1b]9;approve coder? run tests\x07"
        );
        assert_eq!(
            escapes(&with(false, Notify::Osc777), t),
            "\x1b]777;notify;lev;approve coder? run tests\x07"
        );
        assert_eq!(escapes(&with(false, Notify::None), t), "");
        // Control characters never reach the terminal inside the OSC string.
        let sneaky = escapes(&with(false, Notify::Osc9), "a\x07\x1b]52;c;x\x07b\n");
        assert_eq!(sneaky, "\x1b]9;a]52;c;xb\x07");
    }

    /// Folding the sample run announces each of its three prompts once; the
    /// waiting ones re-announced after a resume (`Notice::Pending`), or
    /// folded twice, ring nothing.
    #[test]
    fn each_prompt_is_announced_once_with_the_configured_escapes() {
        let settings = with(true, Notify::Osc777);
        let mut s = State::new();
        let mut written = String::new();
        let drain = |s: &mut State, written: &mut String| {
            for e in s.handle(Input::Tick(crate::protocol::Millis(1))) {
                if let Effect::Attention(text) = e {
                    written.push_str(&escapes(&settings, &text));
                }
            }
        };
        let events = sample_events();
        for r in &events {
            s.apply(&Notice::Event(r.clone()));
            drain(&mut s, &mut written);
        }
        assert_eq!(written.matches('\x07').count(), 3 * 2, "{written:?}");
        assert_eq!(written.matches("\x1b]777;notify;lev;").count(), 3);
        assert!(!written.contains("\x1b]9;"));
        assert!(written.contains("approve coder? run `cargo test --all`"));

        // What the engine re-announces after a resume: the two prompts
        // still waiting (the answered question is never asked again).
        let before = written.len();
        for r in &events {
            let waiting = match &r.event {
                Event::QuestionAsked { id, .. } => id == "framework",
                Event::ApprovalRequested { .. } => true,
                _ => false,
            };
            if waiting {
                s.apply(&Notice::Pending(r.clone()));
                s.apply(&Notice::Event(r.clone()));
                drain(&mut s, &mut written);
            }
        }
        assert_eq!(written.len(), before, "{:?}", &written[before..]);
    }

    /// The run's end and a pause are announced too, live only: a replay
    /// or a finished run's history folded on opening rings nothing.
    #[test]
    fn a_run_ending_or_pausing_is_announced_live_only() {
        use crate::protocol::{Millis, PauseReason, Recorded, RunStatus, Seq, Usage};
        let mut s = State::new();
        let events = sample_events();
        for r in &events {
            s.apply(&Notice::Event(r.clone()));
        }
        let _ = s.handle(Input::Tick(Millis(1)));
        let run = events[0].run.clone();
        let fold = |s: &mut State, seq: u64, event: Event| {
            s.apply(&Notice::Event(Recorded {
                run: run.clone(),
                seq: Seq(seq),
                event,
            }));
            s.handle(Input::Tick(Millis(2)))
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Attention(t) => Some(t),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let paused = fold(
            &mut s,
            900,
            Event::RunPaused {
                reason: PauseReason::EmergencyStop,
                at: Millis(3),
            },
        );
        assert!(
            paused.len() == 1 && paused[0].contains("paused"),
            "{paused:?}"
        );
        let ended = fold(
            &mut s,
            901,
            Event::RunFinished {
                status: RunStatus::Succeeded,
                outputs: Default::default(),
                error: None,
                usage: Usage::default(),
                at: Millis(4),
            },
        );
        assert!(
            ended.len() == 1 && ended[0].ends_with("succeeded"),
            "{ended:?}"
        );

        let mut replay = State::new();
        let mut all = events.clone();
        all.push(Recorded {
            run: run.clone(),
            seq: Seq(901),
            event: Event::RunFinished {
                status: RunStatus::Succeeded,
                outputs: Default::default(),
                error: None,
                usage: Usage::default(),
                at: Millis(4),
            },
        });
        replay.load_replay(all);
        replay.replay_jump(usize::MAX);
        assert!(
            !replay
                .handle(Input::Tick(Millis(5)))
                .iter()
                .any(|e| matches!(e, Effect::Attention(_)))
        );
    }
}
