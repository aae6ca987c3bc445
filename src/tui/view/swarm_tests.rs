//! Snapshots of a swarm run: the grid of agent slots mid-stream (a stolen
//! task, an open breaker), the plan review in the sidebar, its editor, and
//! the timeline's slot marks.

use crossterm::event::{KeyCode, KeyEvent};

use crate::tui::keymap::Action;
use crate::tui::state::sample_swarm::{swarm_review_state, swarm_state};
use crate::tui::state::{Input, PaneLayout, State};
use crate::tui::theme::Theme;

use super::tests::styled_screen;
use super::{buffer_text, render};

fn screen(state: &State, w: u16, h: u16) -> String {
    buffer_text(&render(state, &Theme::fallback(), w, h))
}

#[test]
fn swarm_grid_with_four_slots_mid_stream() {
    let s = swarm_state();
    // A swarm opens on the grid: one pane per slot beside the orchestrator's.
    assert_eq!(s.layout, PaneLayout::Grid);
    let text = screen(&s, 160, 40);
    assert!(text.contains("stolen from slot 3"), "{text}");
    assert!(text.contains("slot 3 breaker open"), "{text}");
    insta::assert_snapshot!("swarm_grid", text);
    for name in ["dark", "light"] {
        let theme = Theme::builtin(name).unwrap();
        insta::assert_snapshot!(
            format!("swarm_grid_theme_{name}"),
            styled_screen(&s, &theme, 160, 40)
        );
    }
}

#[test]
fn plan_review_in_the_sidebar() {
    let s = swarm_review_state();
    let text = screen(&s, 120, 36);
    assert!(text.contains("[a] accept"), "{text}");
    insta::assert_snapshot!("plan_review", text);
    for name in ["dark", "light"] {
        let theme = Theme::builtin(name).unwrap();
        insta::assert_snapshot!(
            format!("plan_review_theme_{name}"),
            styled_screen(&s, &theme, 120, 36)
        );
    }
}

#[test]
fn plan_editor_over_the_main_area() {
    let mut s = swarm_review_state();
    s.handle(Input::Key(KeyEvent::from(KeyCode::Char('e'))));
    insta::assert_snapshot!("plan_editor", screen(&s, 120, 36));
}

#[test]
fn timeline_marks_slots_and_stolen_tasks() {
    let mut s = swarm_state();
    s.handle_action(Action::Timeline);
    let text = screen(&s, 120, 20);
    assert!(text.contains("s1←3"), "{text}");
    insta::assert_snapshot!("swarm_timeline", text);
    s.handle_action(Action::Overview);
    insta::assert_snapshot!("swarm_overview", screen(&s, 120, 20));
}
