#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).unwrap();
}

fn mode(id: &str, extra: &str) -> String {
    format!("version: 1\nkind: mode\nid: {id}\nname: {id} mode\n{extra}")
}

#[test]
fn builtin_modes_load_and_resolve() {
    let reg = ModeRegistry::load(&[builtin_dir()]).unwrap();
    for id in ["architect", "coder", "tdd", "reviewer", "security-review"] {
        let m = reg.get(id).unwrap_or_else(|| panic!("missing {id}"));
        assert!(m.role.len() > 200, "{id} has a thin role prompt");
        assert!(m.when_to_use.is_some(), "{id} lacks when_to_use");
    }
    let sec = reg.get("security-review").unwrap();
    assert!(
        sec.role
            .starts_with("You are a senior application-security engineer")
    );
    assert!(sec.role.contains("must_fix (exploitable"));
    // Instructions accumulate parent-first through `extends`.
    assert!(sec.role.contains("verdict: approve"));
    assert!(sec.tools_allow.contains(&"shell:cargo audit".to_string()));
    assert_eq!(sec.ask_before, vec!["shell:*".to_string()]);
    assert_eq!(sec.max_turns, Some(25));
    assert!(sec.output_schema.is_some());
    assert_eq!(sec.hints.len(), 2);
    let arch = reg.get("architect").unwrap();
    assert!(arch.tools_deny.contains(&"write_file".to_string()));
    assert_eq!(arch.model.temperature, Some(0.3));
}

#[test]
fn later_folders_override_by_id_and_missing_folders_are_fine() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(a.path(), "coder.yaml", &mode("coder", "role: first\n"));
    write(a.path(), "other.yaml", &mode("other", "role: kept\n"));
    write(
        b.path(),
        "mine.yaml",
        &mode("coder", "role: second\nlimits: { max_turns: 7 }\n"),
    );
    let reg = ModeRegistry::load(&[
        a.path().to_path_buf(),
        a.path().join("does-not-exist"),
        b.path().to_path_buf(),
    ])
    .unwrap();
    assert_eq!(reg.get("coder").unwrap().role, "second");
    assert_eq!(reg.get("coder").unwrap().max_turns, Some(7));
    assert_eq!(reg.get("other").unwrap().role, "kept");
    assert_eq!(reg.get("coder").unwrap().source, b.path().join("mine.yaml"));
}

#[test]
fn extends_inherits_and_overrides() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.yaml",
        &mode(
            "base",
            "role: Base role.\ninstructions: [\"base rule\"]\nmodel: { provider: openai, name: big, temperature: 0.5 }\ntools: { allow: [read_file], deny: [run_shell] }\nlimits: { max_turns: 9 }\n",
        ),
    );
    write(
        d.path(),
        "child.yaml",
        &mode(
            "child",
            "extends: base\nmodel: { name: small }\ninstructions: [\"child rule\"]\n",
        ),
    );
    let reg = ModeRegistry::load(&[d.path().to_path_buf()]).unwrap();
    let c = reg.get("child").unwrap();
    assert_eq!(c.role, "Base role.\n\nbase rule\n\nchild rule");
    assert_eq!(c.model.provider.as_deref(), Some("openai"));
    assert_eq!(c.model.name.as_deref(), Some("small"));
    assert_eq!(c.tools_allow, vec!["read_file".to_string()]);
    assert_eq!(c.max_turns, Some(9));
    assert_eq!(c.name, "child mode");
}

#[test]
fn instruction_files_resolve_relative_to_the_mode_file() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("prompts")).unwrap();
    fs::write(d.path().join("prompts/sec.md"), "From a file.\n").unwrap();
    write(
        d.path(),
        "m.yaml",
        &mode(
            "m",
            "role: R.\ninstructions:\n  - file: prompts/sec.md\n  - inline\n",
        ),
    );
    let reg = ModeRegistry::load(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(reg.get("m").unwrap().role, "R.\n\nFrom a file.\n\ninline");
}

#[test]
fn missing_instruction_file_is_a_diagnostic() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "m.yaml",
        &mode("m", "role: R.\ninstructions:\n  - file: nope.md\n"),
    );
    let err = ModeRegistry::load(&[d.path().to_path_buf()]).unwrap_err();
    let e = &err.0[0];
    assert!(e.message.contains("cannot read instructions file"), "{err}");
    assert_eq!((e.line, e.col), (7, 11));
    assert_eq!(e.path, "instructions[0].file");
}

#[test]
fn extends_cycle_and_unknown_parent_are_errors() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.yaml", &mode("a", "extends: b\n"));
    write(d.path(), "b.yaml", &mode("b", "extends: a\n"));
    write(d.path(), "c.yaml", &mode("c", "extends: ghost\n"));
    let err = ModeRegistry::load(&[d.path().to_path_buf()]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("modes extend each other in a cycle: a -> b -> a"),
        "{text}"
    );
    assert!(
        text.contains("mode `c` extends unknown mode `ghost`"),
        "{text}"
    );
}

#[test]
fn unknown_keys_and_bad_types_are_reported() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "m.yaml",
        &mode("m", "rol: x\nlimits: { max_turns: zero }\n"),
    );
    let err = ModeRegistry::load(&[d.path().to_path_buf()]).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    assert_eq!(err.0[0].message, "unknown key `rol` at the top level");
    assert_eq!(err.0[0].hint.as_deref(), Some("did you mean `role`?"));
    assert_eq!(err.0[1].path, "limits.max_turns");
}

#[test]
fn duplicate_ids_in_one_folder_are_errors() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.yaml", &mode("same", ""));
    write(d.path(), "b.yaml", &mode("same", ""));
    let err = ModeRegistry::load(&[d.path().to_path_buf()]).unwrap_err();
    assert!(err.0[0].message.contains("mode `same` is also defined in"));
}
