use std::collections::{HashMap, HashSet};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};

use super::*;
use crate::spec::diagnostics::Severity;

fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

fn ch(c: char) -> KeyEvent {
    press(KeyCode::Char(c), KeyModifiers::NONE)
}

#[test]
fn catalogue_is_consistent() {
    let mut names = HashSet::new();
    let mut acts = HashSet::new();
    for e in actions::CATALOGUE.iter() {
        assert!(names.insert(e.name), "name {} twice", e.name);
        assert!(acts.insert(e.action), "action {:?} twice", e.action);
        assert_eq!(Action::from_name(e.name), Some(e.action));
        assert_eq!(e.action.name(), e.name);
        assert!(!e.description.is_empty());
        assert!(!e.keys.is_empty(), "{} has no default key", e.name);
        for k in e.keys {
            let key = Key::parse(k).unwrap_or_else(|w| panic!("{}: {k}: {w}", e.name));
            // Display round-trips through parse.
            assert_eq!(Key::parse(&key.to_string()).unwrap(), key, "{k}");
        }
    }
    assert_eq!(Action::from_name("nope"), None);
    // Sorted by group, so help groups are contiguous.
    let groups: Vec<Group> = actions::CATALOGUE.iter().map(|e| e.group).collect();
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(groups, sorted);
}

#[test]
fn defaults_have_no_duplicate_keys() {
    let km = Keymap::defaults();
    let mut owner: HashMap<Key, Action> = HashMap::new();
    for a in Action::all() {
        for k in km.keys(a) {
            if let Some(prev) = owner.insert(*k, a) {
                panic!("{k} bound to {prev:?} and {a:?}");
            }
        }
    }
    assert!(owner.len() > 60);
}

#[test]
fn representative_keys() {
    let km = Keymap::defaults();
    assert_eq!(km.action(&ch('?')), Some(Action::Help));
    assert_eq!(km.action(&ch(':')), Some(Action::Palette));
    assert_eq!(km.action(&ch('q')), Some(Action::Quit));
    assert_eq!(
        km.action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    assert_eq!(
        km.action(&press(KeyCode::Esc, KeyModifiers::NONE)),
        Some(Action::Back)
    );
    assert_eq!(
        km.action(&press(KeyCode::Tab, KeyModifiers::NONE)),
        Some(Action::FocusNext)
    );
    // Shift-Tab arrives as BackTab (+SHIFT), or Tab+SHIFT on some terminals.
    assert_eq!(
        km.action(&press(KeyCode::BackTab, KeyModifiers::SHIFT)),
        Some(Action::FocusPrev)
    );
    assert_eq!(
        km.action(&press(KeyCode::Tab, KeyModifiers::SHIFT)),
        Some(Action::FocusPrev)
    );
    assert_eq!(
        km.action(&press(KeyCode::Left, KeyModifiers::ALT)),
        Some(Action::FocusLeft)
    );
    assert_eq!(km.action(&press(KeyCode::Left, KeyModifiers::NONE)), None);
    assert_eq!(km.action(&ch('3')), Some(Action::JumpPane(3)));
    assert_eq!(km.action(&ch('g')), Some(Action::Top));
    // `G` as crossterm reports it (Char('G') + SHIFT), and as kitty may.
    assert_eq!(
        km.action(&press(KeyCode::Char('G'), KeyModifiers::SHIFT)),
        Some(Action::Bottom)
    );
    assert_eq!(
        km.action(&press(KeyCode::Char('g'), KeyModifiers::SHIFT)),
        Some(Action::Bottom)
    );
    assert_eq!(km.action(&ch('G')), Some(Action::Bottom));
    assert_eq!(
        km.action(&press(KeyCode::Char('?'), KeyModifiers::SHIFT)),
        Some(Action::Help)
    );
    assert_eq!(
        km.action(&press(KeyCode::Char('N'), KeyModifiers::SHIFT)),
        Some(Action::SearchPrev)
    );
    assert_eq!(km.action(&ch(' ')), Some(Action::ReplayPlayPause));
    assert_eq!(
        km.action(&press(KeyCode::Char('x'), KeyModifiers::CONTROL)),
        Some(Action::EmergencyStop)
    );
    assert_eq!(
        km.action(&press(KeyCode::Char('C'), KeyModifiers::SHIFT)),
        Some(Action::StopCallbacks)
    );
    assert_eq!(km.action(&ch('x')), Some(Action::CancelStep));
    assert_eq!(
        km.action(&press(KeyCode::PageDown, KeyModifiers::NONE)),
        Some(Action::PageDown)
    );
    assert_eq!(
        km.action(&press(KeyCode::F(1), KeyModifiers::NONE)),
        Some(Action::Help)
    );
    assert_eq!(
        km.action(&press(KeyCode::Enter, KeyModifiers::NONE)),
        Some(Action::ToggleToolDetails)
    );
    assert_eq!(km.action(&ch('Z')), None);
}

#[test]
fn releases_and_repeats_are_ignored() {
    let km = Keymap::defaults();
    let mut ev = KeyEvent::new_with_kind(
        KeyCode::Char('a'),
        KeyModifiers::NONE,
        KeyEventKind::Release,
    );
    assert_eq!(km.action(&ev), None);
    ev.kind = KeyEventKind::Repeat;
    assert_eq!(km.action(&ev), None);
    ev.kind = KeyEventKind::Press;
    ev.state = KeyEventState::NONE;
    assert_eq!(km.action(&ev), Some(Action::Approve));
}

#[test]
fn key_syntax() {
    let k = |s: &str| Key::parse(s).unwrap();
    assert_eq!(
        k("ctrl-c"),
        Key::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
    );
    assert_eq!(k("Ctrl-C"), k("ctrl-c"));
    assert_eq!(k("alt-left"), Key::new(KeyCode::Left, KeyModifiers::ALT));
    assert_eq!(
        k("ctrl-alt-Up"),
        Key::new(KeyCode::Up, KeyModifiers::CONTROL | KeyModifiers::ALT)
    );
    assert_eq!(
        k("shift-tab"),
        Key::new(KeyCode::BackTab, KeyModifiers::NONE)
    );
    assert_eq!(k("shift-a"), k("A"));
    assert_eq!(k("f5"), Key::new(KeyCode::F(5), KeyModifiers::NONE));
    assert_eq!(k("space"), Key::char(' '));
    assert_eq!(k("esc"), Key::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(k("pgup"), Key::new(KeyCode::PageUp, KeyModifiers::NONE));
    assert_eq!(k("-"), Key::char('-'));
    assert_eq!(
        k("ctrl--"),
        Key::new(KeyCode::Char('-'), KeyModifiers::CONTROL)
    );
    assert_ne!(k("g"), k("G"));
    for bad in ["", "ctrl-", "hyper-x", "f25", "f0", "spacebar", "\u{7}"] {
        assert!(Key::parse(bad).is_err(), "{bad:?} parsed");
    }
    assert_eq!(k("ctrl-alt-shift-f5").to_string(), "ctrl-alt-shift-f5");
    assert_eq!(k("shift-tab").to_string(), "shift-tab");
}

#[test]
fn patch_overrides() {
    let (km, d) = Keymap::with_patch(
        "# my keys\napprove: \"A\"\nquit: [\"q\", \"ctrl-q\"]\nhelp: []\nreplay_play_pause: ~\n",
        "keys.yaml",
    )
    .unwrap();
    assert!(d.0.is_empty(), "{d}");
    assert_eq!(
        km.action(&press(KeyCode::Char('A'), KeyModifiers::SHIFT)),
        Some(Action::Approve)
    );
    assert_eq!(km.action(&ch('a')), None);
    assert_eq!(
        km.action(&press(KeyCode::Char('q'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    assert_eq!(
        km.action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        None
    );
    assert_eq!(km.action(&ch('?')), None);
    assert_eq!(km.action(&ch(' ')), None);
    // Untouched actions keep their defaults.
    assert_eq!(km.action(&ch('d')), Some(Action::Deny));
    // Layered patches: the second applies on top of the first.
    // (`D` and `Y` are taken by default: the example moves to `U`.)
    let (km2, _) = km.patched("deny: U\napprove: d\n", "project.yaml").unwrap();
    assert_eq!(km2.action(&ch('d')), Some(Action::Approve));
    assert_eq!(km2.action(&ch('U')), Some(Action::Deny));
    // Empty patch = defaults.
    let (km3, _) = Keymap::with_patch("", "empty.yaml").unwrap();
    assert_eq!(km3.action(&ch('a')), Some(Action::Approve));
}

#[test]
fn patch_errors_have_positions() {
    let d = Keymap::with_patch(
        "aprove: x\nquit: [q, \"ctrl-nope\"]\nfork: {a: 1}\n",
        "k.yaml",
    )
    .unwrap_err();
    let errs: Vec<_> =
        d.0.iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
    assert_eq!(errs.len(), 3, "{d}");
    assert_eq!((errs[0].line, errs[0].col), (1, 1));
    assert!(errs[0].message.contains("unknown action `aprove`"));
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean `approve`?"));
    assert_eq!((errs[1].line, errs[1].col), (2, 11));
    assert!(errs[1].message.contains("ctrl-nope"), "{d}");
    assert_eq!(errs[2].line, 3);
    assert!(d.to_string().contains("k.yaml:2:11"), "{d}");
}

#[test]
fn a_key_bound_twice_names_both_actions() {
    // Against a default the patch did not touch.
    let d = Keymap::with_patch("\napprove: d\n", "k.yaml").unwrap_err();
    let e = &d.0[0];
    assert!(
        e.message.contains("`deny`") && e.message.contains("`approve`"),
        "{d}"
    );
    assert_eq!((e.line, e.col), (2, 10));
    // Within the patch.
    let d = Keymap::with_patch("fork: F\nretry_step: [R, F]\n", "k.yaml").unwrap_err();
    let e = &d.0[0];
    assert!(
        e.message.contains("`fork`") && e.message.contains("`retry_step`"),
        "{d}"
    );
    assert_eq!((e.line, e.col), (2, 17));
    // Not YAML; not a mapping; the same action twice.
    let d = Keymap::with_patch("quit: [q\n", "k.yaml").unwrap_err();
    assert!(d.0[0].line > 0, "{d}");
    assert!(Keymap::with_patch("[1, 2]", "k.yaml").is_err());
    assert!(Keymap::with_patch("quit: q\nquit: x\n", "k.yaml").is_err());
}

#[test]
fn help_rows_cover_every_action_in_group_order() {
    let km = Keymap::defaults();
    let rows = km.help_rows();
    let listed: HashSet<Action> = rows.iter().map(|(_, a, _)| *a).collect();
    for a in Action::all() {
        let covered = listed.contains(&a) || matches!(a, Action::JumpPane(_));
        assert!(covered, "{a:?} missing from help");
    }
    assert!(
        rows.iter()
            .any(|(k, a, _)| k == "1–9" && *a == Action::JumpPane(1))
    );
    let groups: Vec<Group> = rows.iter().map(|(_, a, _)| a.group()).collect();
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(groups, sorted);
    assert_eq!(groups.first(), Some(&Group::Navigation));
    assert_eq!(groups.last(), Some(&Group::Other));
    let quit = rows.iter().find(|(_, a, _)| *a == Action::Quit).unwrap();
    assert_eq!(quit.0, "q ctrl-c");
    assert!(!quit.2.is_empty());
    // With a pane jump rebound, all nine are listed one by one.
    let (km, _) = Keymap::with_patch("jump_pane_3: f3\nhelp: []\n", "k.yaml").unwrap();
    let rows = km.help_rows();
    assert!(
        rows.iter()
            .any(|(k, a, _)| k == "f3" && *a == Action::JumpPane(3))
    );
    assert_eq!(
        rows.iter()
            .filter(|(_, a, _)| matches!(a, Action::JumpPane(_)))
            .count(),
        9
    );
    assert!(
        rows.iter()
            .any(|(k, a, _)| k == "(unbound)" && *a == Action::Help)
    );
}
