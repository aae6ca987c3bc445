use std::fs;

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).unwrap();
}

fn mode(id: &str, extra: &str) -> String {
    format!("version: 1\nkind: mode\nid: {id}\nname: {id} mode\n{extra}")
}

/// The seventeen roles the issue names.
const ROLES: [&str; 17] = [
    "orchestrator",
    "architect",
    "spec-pseudocode",
    "coder",
    "tdd",
    "debug",
    "security-review",
    "docs-writer",
    "integration",
    "post-deployment-monitoring",
    "refinement-optimization",
    "devops",
    "ask",
    "tutorial",
    "mcp",
    "database-admin",
    "reviewer",
];

#[test]
fn all_seventeen_builtins_load_validate_and_are_complete() {
    let reg = ModeRegistry::builtin().unwrap();
    assert!(reg.warnings.0.is_empty(), "{}", reg.warnings);
    let ids: Vec<&str> = reg.modes.keys().map(String::as_str).collect();
    let mut want = ROLES.to_vec();
    want.sort_unstable();
    assert_eq!(ids, want);
    let mut icons = Vec::new();
    for id in ROLES {
        let m = reg.get(id).unwrap();
        assert_eq!(m.source, ModeSource::Builtin, "{id}");
        assert!(m.role.len() > 600, "{id} has a thin role prompt");
        assert!(m.name.len() > 2 && m.name != id, "{id} lacks a name");
        assert!(m.description.is_some(), "{id} lacks a description");
        assert!(
            m.when_to_use.as_deref().is_some_and(|w| w.len() > 40),
            "{id} lacks when_to_use"
        );
        assert!(!m.tools_allow.is_empty(), "{id} allows every tool");
        assert!(
            m.network.is_some(),
            "{id} does not say whether it uses the network"
        );
        assert!(m.max_turns.is_some(), "{id} has no max_turns");
        assert_eq!(m.ui_style.as_deref(), Some(format!("agent.{id}").as_str()));
        let icon = m.ui_icon.clone().unwrap();
        assert_eq!(icon.chars().count(), 1, "{id}: icon `{icon}`");
        assert!(!icons.contains(&icon), "{id}: icon `{icon}` is taken");
        icons.push(icon);
        for t in m.tools_allow.iter().chain(&m.tools_deny) {
            assert!(
                tool_names().contains(&t.as_str())
                    || t.starts_with("shell:")
                    || t.starts_with("mcp:"),
                "{id}: tool `{t}`"
            );
        }
    }
}

#[test]
fn roles_that_only_read_or_plan_cannot_write_or_run_commands() {
    let reg = ModeRegistry::builtin().unwrap();
    for id in [
        "orchestrator",
        "architect",
        "spec-pseudocode",
        "ask",
        "tutorial",
    ] {
        let m = reg.get(id).unwrap();
        for tool in ["write_file", "edit_file", "run_shell"] {
            assert!(
                !crate::tools::specs(&m.tools_allow, &m.tools_deny)
                    .iter()
                    .any(|s| s.name == tool),
                "{id} is offered {tool}"
            );
        }
    }
    for id in ["reviewer", "security-review", "post-deployment-monitoring"] {
        let m = reg.get(id).unwrap();
        assert!(m.tools_deny.contains(&"write_file".to_string()), "{id}");
        assert!(m.tools_deny.contains(&"edit_file".to_string()), "{id}");
    }
    // devops runs commands, but destructive ones need approval.
    let devops = reg.get("devops").unwrap();
    assert!(devops.tools_allow.contains(&"run_shell".to_string()));
    for cmd in [
        "shell:rm",
        "shell:kubectl delete",
        "shell:terraform destroy",
        "shell:git push",
    ] {
        assert!(devops.ask_before.contains(&cmd.to_string()), "{cmd}");
    }
}

#[test]
fn orchestrator_plans_a_task_graph_with_known_modes() {
    let reg = ModeRegistry::builtin().unwrap();
    let o = reg.get("orchestrator").unwrap();
    for field in [
        "\"id\"",
        "\"title\"",
        "\"mode\"",
        "\"needs\"",
        "\"acceptance\"",
        "\"files\"",
    ] {
        assert!(o.role.contains(field), "role does not describe {field}");
    }
    for id in ROLES {
        assert!(o.role.contains(id), "orchestrator does not list `{id}`");
    }
    let schema = o.output_schema.clone().unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({"summary": "s", "tasks": [
        {"id": "design", "title": "Design it", "mode": "architect", "needs": [],
         "acceptance": ["a plan names the files"], "files": []},
        {"id": "build", "title": "Build it", "mode": "coder", "needs": ["design"],
         "acceptance": ["cargo test passes"], "files": ["src/a.rs"]}
    ]});
    assert!(v.is_valid(&good));
    let no_acceptance = serde_json::json!({"tasks": [
        {"id": "x", "title": "t", "mode": "coder", "needs": [], "files": []}
    ]});
    assert!(!v.is_valid(&no_acceptance));
    assert!(!v.is_valid(&serde_json::json!({"tasks": []})));
}

#[test]
fn the_embedded_table_matches_the_folder() {
    let embedded = ModeRegistry::builtin().unwrap();
    let folder = ModeRegistry::load(&[builtin_dir()]).unwrap();
    let a: Vec<&String> = embedded.modes.keys().collect();
    let b: Vec<&String> = folder.modes.keys().collect();
    assert_eq!(
        a, b,
        "a file in workflows/modes/ is missing from builtin::FILES"
    );
    for (id, m) in &folder.modes {
        assert_eq!(embedded.modes[id].role, m.role, "{id}");
    }
    for (file, _) in builtin::FILES {
        assert!(builtin_dir().join(file).is_file(), "{file}");
    }
}

#[test]
fn user_then_project_folders_override_builtins_by_id() {
    let config = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    fs::create_dir_all(config.path().join("modes")).unwrap();
    fs::create_dir_all(cwd.path().join(".lev/modes")).unwrap();
    write(
        &config.path().join("modes"),
        "coder.yaml",
        &mode("coder", "role: user coder\n"),
    );
    write(
        &config.path().join("modes"),
        "ask.yaml",
        &mode("ask", "role: user ask\n"),
    );
    write(
        &cwd.path().join(".lev/modes"),
        "c.yaml",
        &mode("coder", "role: project coder\n"),
    );
    let reg = ModeRegistry::for_cwd(Some(config.path()), cwd.path()).unwrap();
    let coder = reg.get("coder").unwrap();
    assert_eq!(coder.role, "project coder");
    assert_eq!(
        coder.source,
        ModeSource::Project(cwd.path().join(".lev/modes/c.yaml"))
    );
    let ask = reg.get("ask").unwrap();
    assert_eq!(ask.role, "user ask");
    assert_eq!(ask.source.kind(), "user");
    assert_eq!(reg.get("tdd").unwrap().source, ModeSource::Builtin);
    assert_eq!(reg.modes.len(), 17);
    // A built-in that extends an overridden mode inherits the override.
    write(
        &cwd.path().join(".lev/modes"),
        "r.yaml",
        &mode(
            "reviewer",
            "role: project reviewer\nlimits: { max_turns: 3 }\n",
        ),
    );
    let reg = ModeRegistry::for_cwd(None, cwd.path()).unwrap();
    assert_eq!(reg.get("security-review").unwrap().max_turns, Some(25));
    assert_eq!(reg.get("reviewer").unwrap().max_turns, Some(3));
}

#[test]
fn a_broken_project_mode_is_reported_at_its_file_line_and_col() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join(".lev/modes");
    fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "coder.yaml",
        &mode("coder", "limits: { max_turns: lots }\n"),
    );
    let err = ModeRegistry::for_cwd(None, cwd.path()).unwrap_err();
    let e = &err.0[0];
    assert_eq!(e.file, dir.join("coder.yaml").display().to_string());
    assert_eq!(
        (e.line, e.col, e.path.as_str()),
        (5, 22, "limits.max_turns")
    );
}

#[test]
fn unknown_tools_in_a_user_mode_are_warnings_kept_on_the_registry() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "m.yaml",
        &mode("m", "tools: { allow: [read_fiel] }\n"),
    );
    let reg = ModeRegistry::load(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(reg.warnings.0.len(), 1, "{}", reg.warnings);
    assert_eq!(
        reg.warnings.0[0].hint.as_deref(),
        Some("did you mean `read_file`?")
    );
    assert_eq!(reg.closest("codr"), None);
    let reg = ModeRegistry::builtin().unwrap();
    assert_eq!(reg.closest("codr"), Some("coder"));
    assert_eq!(reg.closest("revewer"), Some("reviewer"));
}

#[test]
fn built_in_layer_refuses_instruction_files() {
    let text = mode("m", "role: R.\ninstructions:\n  - file: x.md\n");
    let mut diags = Vec::new();
    let cx = Cx::new("workflows/modes/m.yaml".to_string(), &text);
    assert!(parse_into(cx, None, ModeSource::Builtin, &mut diags).is_none());
    assert!(
        diags[0]
            .message
            .contains("built-in mode cannot read instruction files")
    );
    assert_eq!((diags[0].line, diags[0].col), (7, 11));
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
    assert_eq!(
        reg.get("coder").unwrap().source,
        ModeSource::Folder(b.path().join("mine.yaml"))
    );
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
