use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::BorderType;

use super::*;
use crate::spec::diagnostics::Severity;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn errors(d: &Diagnostics) -> Vec<&Diagnostic> {
    d.0.iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

#[test]
fn every_builtin_loads_clean_and_defines_every_slot() {
    for name in Theme::builtin_names() {
        let (t, diags) = Theme::load(name, &[]).unwrap_or_else(|d| panic!("{name}: {d}"));
        assert!(diags.0.is_empty(), "{name} has warnings: {diags}");
        assert_eq!(t.id(), *name);
        let defined: Vec<&str> = t.defined_slots().collect();
        for slot in slots::required() {
            assert!(defined.contains(&slot.as_str()), "{name} lacks slot {slot}");
        }
        // Every slot draws with a real foreground on a real background.
        assert!(t.style("base").fg.is_some() && t.style("base").bg.is_some());
        assert!(t.style("agent.tdd").fg.is_some());
        // And every palette colour has an explicit 16-colour mapping.
        for p in t.palette.keys() {
            assert!(
                t.ansi16_map.contains_key(p),
                "{name}: {p} has no ansi16 entry"
            );
        }
    }
}

#[test]
fn builtin_accepts_prefix_and_rejects_unknown() {
    assert_eq!(Theme::builtin("builtin:light").unwrap().id(), "light");
    assert!(Theme::builtin("nope").is_none());
    assert_eq!(Theme::fallback().id(), "dark");
    assert_eq!(Theme::default().id(), "dark");
}

#[test]
fn shared_abyss_example_loads() {
    let dir = tempfile::tempdir().unwrap();
    let abyss =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("themes/abyss.yaml"))
            .unwrap();
    write(dir.path(), "abyss.yaml", &abyss);
    let (t, diags) = Theme::load("abyss", &[dir.path().to_path_buf()]).unwrap();
    assert!(diags.0.is_empty(), "{diags}");
    assert_eq!(t.name(), "Abyss (dark)");
    assert_eq!(t.style("base").bg, Some(Color::Rgb(0x0b, 0x0f, 0x14)));
    // Inherited from builtin:dark: a slot abyss does not define.
    assert!(t.defined_slots().any(|s| s == "help.key"));
    let own = t.style("agent.security-review");
    assert_eq!(own.fg, Some(Color::Rgb(0xf8, 0x51, 0x49)));
}

#[test]
fn extends_overrides_and_palette_changes_recolour_parent_slots() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "mine.yaml",
        "version: 1\nkind: theme\nid: mine\nextends: builtin:dark\npalette:\n  accent: \"#ff0000\"\nstyles:\n  title: { fg: \"#00ff00\", modifiers: [italic] }\nsymbols:\n  border: double\n  status: { failed: \"X\" }\n",
    );
    let (t, diags) = Theme::load("mine", &[dir.path().to_path_buf()]).unwrap();
    assert!(diags.0.is_empty(), "{diags}");
    assert_eq!(t.name(), "mine");
    // Overridden slot: only its own modifiers (a slot replaces, not merges).
    let title = t.style("title");
    assert_eq!(title.fg, Some(Color::Rgb(0, 255, 0)));
    assert!(title.add_modifier.contains(Modifier::ITALIC));
    assert!(!title.add_modifier.contains(Modifier::BOLD));
    // Parent slot drawn with `$accent` follows the child's palette.
    assert_eq!(t.style("border.focused").fg, Some(Color::Rgb(255, 0, 0)));
    assert_eq!(t.border_type(), BorderType::Double);
    assert_eq!(t.status_symbol(StepStatus::Failed), "X");
    assert_eq!(t.status_symbol(StepStatus::Succeeded), "●");
}

#[test]
fn extends_by_relative_path_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        "version: 1\nkind: theme\nid: a\nextends: ./b.yaml\nstyles:\n  badge: { fg: $x }\n",
    );
    write(
        dir.path(),
        "b.yaml",
        "version: 1\nkind: theme\nid: b\nextends: light\npalette: { x: red }\n",
    );
    let (t, _) = Theme::load(dir.path().join("a.yaml").to_str().unwrap(), &[]).unwrap();
    assert_eq!(t.style("badge").fg, Some(Color::Red));
    // Base comes from light.
    assert_eq!(t.style("base").bg, Some(Color::Rgb(0xfb, 0xfa, 0xf7)));
}

#[test]
fn dotted_fallback() {
    let t = Theme::fallback();
    let base = t.style("base");
    let border = t.style("border");
    // Unknown child falls back to its parent, which is layered over base.
    assert_eq!(t.style("border.weird"), border);
    assert_eq!(border.bg, base.bg);
    assert_ne!(t.style("border.focused"), border);
    // Unknown agent mode → `agent`; unknown slot → base.
    assert_eq!(t.style("agent.my-own-mode"), t.style("agent"));
    assert_eq!(t.style("no.such.slot"), base);
    assert_eq!(t.style(""), base);
    // Statuses without a slot borrow one.
    assert_eq!(
        t.status_style(StepStatus::Retrying),
        t.style("step.running")
    );
    assert_eq!(t.status_symbol(StepStatus::Cancelled), "–");
}

#[test]
fn bad_refs_and_colours_are_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bad.yaml",
        "version: 1\nkind: theme\nid: bad\npalette:\n  accent: \"#12345\"\n  ok: \"#00ff00\"\nstyles:\n  title: { fg: $acent }\n  badge: { bg: purple }\n  code: { modifiers: [blink] }\n",
    );
    let d = Theme::load(p.to_str().unwrap(), &[]).unwrap_err();
    let errs = errors(&d);
    let at = |msg: &str| {
        errs.iter()
            .find(|e| e.message.contains(msg))
            .unwrap_or_else(|| panic!("no `{msg}` in {d}"))
    };
    let e = at("#12345");
    assert_eq!((e.line, e.col), (5, 11));
    assert_eq!(e.path, "palette.accent");
    let e = at("unknown palette colour `$acent`");
    assert_eq!((e.line, e.col), (8, 16));
    assert!(e.file.ends_with("bad.yaml"));
    assert_eq!(e.path, "styles.title.fg");
    let e = at("purple");
    assert_eq!(e.line, 9);
    let e = at("blink");
    assert_eq!(e.line, 10);
    // Rendered like rustc: file:line:col.
    assert!(d.to_string().contains("bad.yaml:8:16"), "{d}");
}

#[test]
fn unknown_slot_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "w.yaml",
        "version: 1\nkind: theme\nid: w\nextends: builtin:dark\nstyles:\n  sparkles: { fg: red }\n  statusbr: { fg: red }\n",
    );
    let (t, d) = Theme::load(p.to_str().unwrap(), &[]).unwrap();
    assert_eq!(d.0.len(), 2, "{d}");
    assert!(d.0.iter().all(|w| w.severity == Severity::Warning));
    assert_eq!((d.0[0].line, d.0[0].col), (6, 3));
    assert_eq!(d.0[1].hint.as_deref(), Some("did you mean `statusbar`?"));
    assert_eq!(t.id(), "w");
}

#[test]
fn unknown_extends_and_cycles_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = [dir.path().to_path_buf()];
    write(
        dir.path(),
        "u.yaml",
        "version: 1\nkind: theme\nid: u\nextends: nowhere\n",
    );
    let d = Theme::load("u", &dirs).unwrap_err();
    let e = errors(&d)[0];
    assert!(e.message.contains("no theme named `nowhere`"), "{d}");
    assert_eq!((e.line, e.col), (4, 10));
    assert!(e.file.ends_with("u.yaml"));

    write(
        dir.path(),
        "b1.yaml",
        "version: 1\nkind: theme\nid: b1\nextends: builtin:nope\n",
    );
    let d = Theme::load("b1", &dirs).unwrap_err();
    assert!(d.to_string().contains("no built-in theme `nope`"), "{d}");

    write(
        dir.path(),
        "c1.yaml",
        "version: 1\nkind: theme\nid: c1\nextends: c2\n",
    );
    write(
        dir.path(),
        "c2.yaml",
        "version: 1\nkind: theme\nid: c2\nextends: c1\n",
    );
    let d = Theme::load("c1", &dirs).unwrap_err();
    let e = errors(&d)[0];
    assert!(e.message.contains("cycle"), "{d}");
    assert!(e.file.ends_with("c2.yaml"));
    assert_eq!((e.line, e.col), (4, 10));

    write(
        dir.path(),
        "self.yaml",
        "version: 1\nkind: theme\nid: self\nextends: self\n",
    );
    assert!(
        Theme::load("self", &dirs)
            .unwrap_err()
            .to_string()
            .contains("cycle")
    );

    // A user `dark` that extends `dark` finds itself; the hint says how to
    // reach the built-in.
    write(
        dir.path(),
        "dark.yaml",
        "version: 1\nkind: theme\nid: dark\nextends: dark\n",
    );
    let d = Theme::load("dark", &dirs).unwrap_err();
    assert_eq!(
        errors(&d)[0].hint.as_deref(),
        Some("to build on the built-in theme, write `extends: builtin:dark`")
    );
}

#[test]
fn id_that_differs_from_the_file_name_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ocean.yaml",
        "version: 1\nkind: theme\nid: sea\nextends: builtin:dark\n",
    );
    let (t, d) = Theme::load("ocean", &[dir.path().to_path_buf()]).unwrap();
    assert_eq!(t.id(), "sea");
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!(d.0[0].severity, Severity::Warning);
    assert_eq!((d.0[0].line, d.0[0].col), (3, 5));
}

#[test]
fn envelope_and_yaml_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "e.yaml",
        "version: 2\nkind: workflow\nstyles: []\ncolours: {}\n",
    );
    let d = Theme::load(p.to_str().unwrap(), &[]).unwrap_err();
    let s = d.to_string();
    for needle in [
        "version",
        "kind",
        "missing `id`",
        "unknown key `colours`",
        "styles",
    ] {
        assert!(s.contains(needle), "no {needle} in {s}");
    }
    let p = write(dir.path(), "y.yaml", "version: 1\nkind: [\n");
    let d = Theme::load(p.to_str().unwrap(), &[]).unwrap_err();
    assert!(errors(&d)[0].line > 0, "{d}");
    let d = Theme::load(dir.path().join("missing.yaml").to_str().unwrap(), &[]).unwrap_err();
    assert!(d.to_string().contains("cannot read theme file"), "{d}");
}

#[test]
fn no_color_drops_colours_keeps_modifiers() {
    let t = Theme::fallback().with_no_color(true);
    assert!(t.is_no_color());
    let s = t.style("step.failed");
    assert_eq!(s.fg, None);
    assert_eq!(s.bg, None);
    assert!(s.add_modifier.contains(Modifier::BOLD));
    assert_eq!(t.style("base"), Style::default());
    // And back.
    let t = t.with_no_color(false);
    assert!(t.style("step.failed").fg.is_some());
}

#[test]
fn no_color_can_be_refused_by_the_theme() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "r.yaml",
        "version: 1\nkind: theme\nid: r\nextends: dark\nfallback: { respect_no_color: false }\n",
    );
    let (t, _) = Theme::load(p.to_str().unwrap(), &[]).unwrap();
    let t = t.with_no_color(true);
    assert!(t.style("step.failed").fg.is_some());
}

#[test]
fn ansi16_uses_the_mapping_then_the_nearest_colour() {
    let t = Theme::fallback().ansi16();
    assert_eq!(t.style("title").fg, Some(Color::LightBlue));
    assert_eq!(t.style("base").bg, Some(Color::Black));
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "n.yaml",
        "version: 1\nkind: theme\nid: n\npalette: { red: \"#ee1010\" }\nstyles:\n  base: { fg: $red, bg: \"#fefefe\" }\nfallback:\n  ansi16: { nothere: red }\n",
    );
    let (t, d) = Theme::load(p.to_str().unwrap(), &[]).unwrap();
    assert_eq!(d.0.len(), 1, "{d}");
    assert!(d.0[0].message.contains("nothere"));
    let t = t.ansi16();
    assert_eq!(t.style("base").fg, Some(Color::LightRed));
    assert_eq!(t.style("base").bg, Some(Color::White));
}

#[test]
fn user_dir_overrides_builtin_by_id() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "dark.yaml",
        "version: 1\nkind: theme\nid: dark\nname: My dark\nextends: builtin:dark\n",
    );
    let (t, _) = Theme::load("dark", &[dir.path().to_path_buf()]).unwrap();
    assert_eq!(t.name(), "My dark");
}

#[test]
fn spinner_and_symbols() {
    let t = Theme::builtin("high-contrast").unwrap();
    assert_eq!(t.border_type(), BorderType::Thick);
    assert_eq!(t.spinner(0), "|");
    assert_eq!(t.spinner(5), "/");
    assert_eq!(t.status_symbol(StepStatus::Succeeded), "✔");
}

fn luminance(c: Color) -> f64 {
    let Color::Rgb(r, g, b) = c else {
        panic!("built-in themes use RGB colours, found {c:?}");
    };
    let ch = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b)
}

fn contrast(a: Color, b: Color) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Text in every slot of every built-in theme is readable on its background
/// (WCAG AA 4.5:1; 3:1 for the deliberately quiet slots; 7:1 in
/// high-contrast). Unfocused borders are decoration: visible (1.5:1) is
/// enough, except in high-contrast.
#[test]
fn builtin_slots_have_readable_contrast() {
    let quiet = [
        "border",
        "dim",
        "whisper",
        "step.skipped",
        "step.pending",
        "tab",
        "agent.ask",
    ];
    let mut report = Vec::new();
    for name in Theme::builtin_names() {
        let t = Theme::builtin(name).unwrap();
        for slot in slots::required() {
            let s = t.style(&slot);
            let (Some(fg), Some(bg)) = (s.fg, s.bg) else {
                panic!("{name}: {slot} lacks a resolved fg or bg");
            };
            let ratio = contrast(fg, bg);
            let need = if slot == "border" && *name != "high-contrast" {
                1.5
            } else if *name == "high-contrast" {
                if quiet.contains(&slot.as_str()) {
                    4.5
                } else {
                    7.0
                }
            } else if quiet.contains(&slot.as_str()) {
                3.0
            } else {
                4.5
            };
            if ratio < need {
                report.push(format!("{name}: {slot} {ratio:.2} < {need}"));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// Every built-in mode's `ui.style` is a slot each built-in theme defines
/// itself (not only through the `agent` fallback).
#[test]
fn every_builtin_mode_has_its_own_style_in_every_builtin_theme() {
    let modes = crate::spec::ModeRegistry::builtin().unwrap();
    for name in Theme::builtin_names() {
        let t = Theme::builtin(name).unwrap();
        let defined: Vec<&str> = t.defined_slots().collect();
        for m in modes.modes.values() {
            let style = m.ui_style.as_deref().unwrap();
            assert!(defined.contains(&style), "{name} lacks {style}");
        }
    }
}
