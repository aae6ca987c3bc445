//! Steps' worktrees in the workbench: the fold of `worktree` events, the
//! overview rows, and the keys (`D` diff, `alt-m` merge, `X` discard) that
//! become effects only after a confirmation and only for a run no engine
//! here is driving.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lev::engine::Query;
use lev::isolation::Fate;
use lev::protocol::{
    Attempt, Event, Millis, Op, Recorded, RunId, RunStatus, Seq, StepKey, WorktreeFact,
};
use lev::tui::keymap::Action;
use lev::tui::state::{Confirm, Effect, Input, Overlay, Screen, State};
use lev::tui::theme::Theme;
use lev::workflow::{Settle, Settled};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

fn run_id() -> RunId {
    RunId("RWT".into())
}

fn key(c: char) -> Input {
    Input::Key(KeyEvent::from(KeyCode::Char(c)))
}

fn merge_key() -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::ALT))
}

fn worktree(fact: WorktreeFact) -> Event {
    Event::Worktree {
        step: StepKey::new("coder"),
        fact,
        at: Millis(5),
    }
}

fn ready() -> WorktreeFact {
    WorktreeFact::Ready {
        repo: "/r".into(),
        path: "/r/.lev/worktrees/RWT/coder".into(),
        root: "/r/.lev/worktrees/RWT/coder".into(),
        branch: "lev/RWT/coder".into(),
        base: "main".into(),
        base_commit: "abc".into(),
        started_from: Vec::new(),
    }
}

fn recorded(events: Vec<Event>, first_seq: u64) -> Vec<Recorded> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Recorded {
            run: run_id(),
            seq: Seq(first_seq + i as u64),
            event,
        })
        .collect()
}

/// A run whose `coder` step worked in its own worktree and `tests` did
/// not; `finished` adds the run's end.
fn run_events(finished: bool) -> Vec<Recorded> {
    let started = |step: &str, at| Event::StepStarted {
        step: StepKey::new(step),
        attempt: Attempt(1),
        fingerprint: "f".into(),
        kind: "agent".into(),
        mode: None,
        idempotent: false,
        hints: Vec::new(),
        at: Millis(at),
    };
    let succeeded = |step: &str, at| Event::StepSucceeded {
        step: StepKey::new(step),
        attempt: Attempt(1),
        outputs: Default::default(),
        usage: Default::default(),
        at: Millis(at),
    };
    let mut events = vec![
        Event::RunStarted {
            workflow_id: "w".into(),
            name: "W".into(),
            source: "w.yaml".into(),
            definition_hash: "h".into(),
            inputs: Default::default(),
            seed: 1,
            workspace: None,
            steps: Vec::new(),
            flowmind: None,
            spread: false,
            step_of: None,
            push_to: None,
            at: Millis(1),
        },
        started("coder", 2),
        worktree(ready()),
        worktree(WorktreeFact::Changed {
            branch: "lev/RWT/coder".into(),
            commit: Some("c1".into()),
            files_changed: 2,
            insertions: 3,
            deletions: 1,
        }),
        succeeded("coder", 6),
        started("tests", 7),
        succeeded("tests", 8),
    ];
    if finished {
        events.push(Event::RunFinished {
            status: RunStatus::Succeeded,
            outputs: Default::default(),
            error: None,
            usage: Default::default(),
            at: Millis(9),
        });
    }
    recorded(events, 1)
}

/// The ended run in replay (as the runs browser opens it), on the
/// overview with `step` selected.
fn ended_on_overview(step: &str) -> State {
    on_overview(run_events(true), step)
}

/// `events` in replay, jumped to their end, on the overview with `step`
/// selected.
fn on_overview(events: Vec<Recorded>, step: &str) -> State {
    let mut s = State::new();
    s.load_replay(events.clone());
    s.replay_jump(events.len());
    s.handle_action(Action::Overview);
    assert_eq!(s.screen, Screen::Overview);
    s.overview_cursor = s
        .run
        .steps
        .iter()
        .position(|r| r.key.as_str() == step)
        .unwrap();
    s
}

fn screen_text(s: &State) -> String {
    screen_text_at(s, 120, 30)
}

fn screen_text_at(s: &State, width: u16, height: u16) -> String {
    let area = Rect::new(0, 0, width, height);
    let mut buf = Buffer::empty(area);
    lev::tui::view::draw(s, &Theme::fallback(), area, &mut buf);
    let mut out = String::new();
    for y in 0..area.height {
        for x in 0..area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn worktree_events_fold_into_the_steps_worktrees_and_the_overview_lists_them() {
    let s = ended_on_overview("coder");
    assert_eq!(s.run.worktrees.len(), 1);
    let w = &s.run.worktrees[0];
    assert_eq!(w.step, StepKey::new("coder"));
    assert_eq!(w.worktree.branch, "lev/RWT/coder");
    assert_eq!(w.fate, Fate::Open);
    let text = screen_text(&s);
    assert!(
        text.contains("lev/RWT/coder  open · +3 -1 in 2 files"),
        "{text}"
    );
}

#[test]
fn a_pushed_branch_says_where_it_went_in_the_overview() {
    let mut events = run_events(true);
    let last = events.len() as u64;
    events.extend(recorded(
        vec![worktree(WorktreeFact::Pushed {
            branch: "lev/RWT/coder".into(),
            remote: "origin".into(),
            commit: "c1".into(),
        })],
        last + 1,
    ));
    let mut s = State::new();
    s.load_replay(events.clone());
    s.replay_jump(events.len());
    s.handle_action(Action::Overview);
    let text = screen_text_at(&s, 200, 50);
    assert!(
        text.contains("lev/RWT/coder  open · +3 -1 in 2 files · pushed to origin"),
        "{text}"
    );
}

#[test]
fn d_asks_for_the_diff_and_the_overlay_scrolls_and_closes() {
    let mut s = ended_on_overview("coder");
    let out = s.handle(key('D'));
    assert_eq!(
        out,
        vec![Effect::Query(Query::WorktreeDiff {
            run: run_id(),
            step: StepKey::new("coder")
        })]
    );
    let diff: String = (0..50).map(|i| format!("+line {i}\n")).collect();
    s.show_diff(StepKey::new("coder"), Ok(diff));
    assert_eq!(s.overlay, Some(Overlay::Diff));
    let d = s.diff.as_ref().unwrap();
    assert_eq!((d.lines.len(), d.scroll), (50, 0));
    s.handle(key('j'));
    s.handle(key('j'));
    assert_eq!(s.diff.as_ref().unwrap().scroll, 2);
    s.handle(key('G'));
    assert_eq!(s.diff.as_ref().unwrap().scroll, 49);
    assert!(screen_text(&s).contains("+line 49"));
    // Keys go to the overlay: `alt-m` does not merge from under it.
    assert!(s.handle(merge_key()).is_empty());
    s.handle(Input::Key(KeyEvent::from(KeyCode::Esc)));
    assert_eq!(s.overlay, None);
    // A failed read says why, in the status bar.
    s.show_diff(StepKey::new("coder"), Err("git said no".into()));
    assert_eq!(s.overlay, None);
    assert!(s.message.as_deref().unwrap().contains("git said no"));
}

#[test]
fn merge_and_discard_ask_first_then_become_effects() {
    let mut s = ended_on_overview("coder");
    assert!(s.handle(merge_key()).is_empty());
    assert_eq!(
        s.overlay,
        Some(Overlay::Confirm(Confirm::Worktree(Settle::Merge, 0)))
    );
    assert!(screen_text(&s).contains("Merge step coder's branch lev/RWT/coder into main?"));
    assert_eq!(
        s.handle(key('y')),
        vec![Effect::Op(Op::SettleWorktree {
            run: run_id(),
            step: StepKey::new("coder"),
            how: Settle::Merge
        })]
    );
    assert_eq!(s.overlay, None);

    assert!(s.handle(key('X')).is_empty());
    assert_eq!(
        s.overlay,
        Some(Overlay::Confirm(Confirm::Worktree(Settle::Discard, 0)))
    );
    // `n` keeps everything.
    assert!(s.handle(key('n')).is_empty());
    assert_eq!(s.overlay, None);
    s.handle(key('X'));
    assert_eq!(
        s.handle(Input::Key(KeyEvent::from(KeyCode::Enter))),
        vec![Effect::Op(Op::SettleWorktree {
            run: run_id(),
            step: StepKey::new("coder"),
            how: Settle::Discard
        })]
    );
}

#[test]
fn a_step_without_a_worktree_or_a_run_driven_here_is_refused_with_a_reason() {
    let mut s = ended_on_overview("tests");
    assert!(s.handle(merge_key()).is_empty());
    assert_eq!(s.overlay, None);
    assert!(s.message.as_deref().unwrap().contains("has no worktree"));

    // The run still executing here: nothing is merged under its feet.
    let mut live = State::new();
    for r in run_events(false) {
        live.apply(&lev::protocol::Notice::Event(r));
    }
    live.handle_action(Action::Overview);
    live.overview_cursor = 0;
    assert!(live.run.active());
    assert!(live.handle(merge_key()).is_empty());
    assert_eq!(live.overlay, None);
    assert!(
        live.message
            .as_deref()
            .unwrap()
            .contains("executing in this workbench"),
        "{:?}",
        live.message
    );
    // The diff can still be read.
    assert_eq!(live.handle(key('D')).len(), 1);
}

#[test]
fn a_step_that_ran_as_a_step_run_points_to_it_for_its_worktree() {
    let mut events = run_events(true);
    let n = events.len() as u64;
    // `tests` was executed by a step run of its own (a spread run).
    events.insert(
        5,
        recorded(
            vec![Event::StepDelegated {
                step: StepKey::new("tests"),
                attempt: Attempt(1),
                run: RunId("STEPRUN1".into()),
                work: "shell".into(),
                at: Millis(7),
            }],
            n + 1,
        )
        .remove(0),
    );
    let mut s = on_overview(events, "tests");
    assert!(s.handle(key('D')).is_empty());
    let said = s.message.as_deref().unwrap();
    assert!(said.contains("ran as step run STEPRUN1"), "{said}");
}

#[test]
fn a_settled_merge_then_discard_fold_into_the_row() {
    let mut s = ended_on_overview("coder");
    let n = run_events(true).len() as u64;
    let merged = recorded(
        vec![worktree(WorktreeFact::Merged {
            branch: "lev/RWT/coder".into(),
            into: "main".into(),
            commit: "m1".into(),
        })],
        n + 1,
    );
    s.worktree_settled(
        &StepKey::new("coder"),
        Ok(Settled {
            text: "step coder: lev/RWT/coder merged into main".into(),
            recorded: merged,
        }),
    );
    assert_eq!(
        s.run.worktrees[0].fate,
        Fate::Merged {
            into: "main".into(),
            commit: "m1".into()
        }
    );
    assert!(screen_text(&s).contains("lev/RWT/coder  merged into main"));
    // Merging again is refused; discarding a merged branch is not.
    assert!(s.handle(merge_key()).is_empty());
    assert!(s.message.as_deref().unwrap().contains("already merged"));
    s.handle(key('X'));
    assert!(matches!(s.overlay, Some(Overlay::Confirm(_))));
    s.handle(key('n'));

    let discarded = recorded(
        vec![worktree(WorktreeFact::Discarded {
            branch: "lev/RWT/coder".into(),
        })],
        n + 2,
    );
    s.worktree_settled(
        &StepKey::new("coder"),
        Ok(Settled {
            text: "removed".into(),
            recorded: discarded,
        }),
    );
    assert_eq!(s.run.worktrees[0].fate, Fate::Discarded);
    assert!(screen_text(&s).contains("lev/RWT/coder  discarded"));
    // A failure is reported, the fold unchanged.
    s.worktree_settled(&StepKey::new("coder"), Err("conflict in a.rs\nmore".into()));
    assert_eq!(s.message.as_deref(), Some("coder: conflict in a.rs"));
    assert_eq!(s.run.worktrees[0].fate, Fate::Discarded);
}
