//! `lev modes` end to end: the real binary in a sandbox (its own data dir,
//! workspace and `XDG_CONFIG_HOME`), listing the built-in modes, showing
//! one, refusing an unknown id, and picking up the user's and the
//! project's mode folders.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::lev::Lev;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, yaml: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), yaml).unwrap();
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

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

const PROJECT_CODER: &str = "version: 1
kind: mode
id: coder
name: Project coder
when_to_use: \"For this project's code, with its own rules.\"
role: You write code the way this project wants it.
tools: { allow: [read_file, edit_file] }
limits: { max_turns: 7 }
";

#[test]
fn lists_the_seventeen_built_in_modes_as_a_table_within_80_columns() {
    let lev = Lev::new();
    let out = lev.run(&["modes"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 18, "{stdout}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("WHEN TO USE"));
    for id in ROLES {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} missing from\n{stdout}"));
        assert!(line.contains(" built-in "), "{line}");
    }
    for l in &lines {
        assert!(l.chars().count() <= 80, "too wide: `{l}`");
    }
}

#[test]
fn json_lists_every_mode_with_its_source_and_when_to_use() {
    let lev = Lev::new();
    let out = lev.run(&["modes", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let modes = json_lines(&stdout);
    assert_eq!(modes.len(), 17);
    for m in &modes {
        assert_eq!(m["source"], "built-in", "{m}");
        assert!(m["path"].is_null(), "{m}");
        assert!(m["when_to_use"].as_str().unwrap().len() > 40, "{m}");
    }
}

#[test]
fn show_prints_the_resolved_coder_mode() {
    let lev = Lev::new();
    let out = lev.run(&["modes", "show", "coder"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("coder — Coder\n"), "{stdout}");
    for want in [
        "source:      built-in\n",
        "tools:       allow read_file, list_dir, grep, write_file, edit_file, run_shell, ask_user, memory_store, memory_search; deny -\n",
        if lev::commands::offline::available() {
            "permissions: network no (shell commands run without a network); ask before shell:git push, shell:rm -rf\n"
        } else {
            "permissions: network no (advisory: this system does not allow lev to cut commands off); ask before shell:git push, shell:rm -rf\n"
        },
        "limits:      max turns 60,",
        "temperature 0.2, max output tokens 16000",
        "role:\n  You are a careful senior engineer",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in\n{stdout}");
    }

    let out = lev.run(&["modes", "show", "orchestrator", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let m: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(m["id"], "orchestrator");
    assert_eq!(m["source"], "built-in");
    assert!(m["role"].as_str().unwrap().contains("\"acceptance\""));
    assert_eq!(m["tools"]["deny"][0], "write_file");
    assert_eq!(m["limits"]["max_turns"], 20);
    assert!(m["output_schema"]["properties"]["tasks"].is_object());
}

#[test]
fn unknown_id_exits_2_naming_the_known_ids_and_the_closest() {
    let lev = Lev::new();
    let out = lev.run(&["modes", "show", "revewer"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("error: no mode `revewer`; known: architect, ask, coder,"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: did you mean `reviewer`?"),
        "{stderr}"
    );
}

#[test]
fn a_project_mode_overrides_the_built_in_and_says_so() {
    let lev = Lev::new();
    write(
        &lev.workspace().join(".lev/modes"),
        "coder.yaml",
        PROJECT_CODER,
    );
    let out = lev.run(&["modes"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let coder = stdout.lines().find(|l| l.starts_with("coder ")).unwrap();
    assert!(
        coder.contains("Project coder") && coder.contains("project .lev/modes/coder.yaml"),
        "{coder}"
    );
    assert_eq!(stdout.lines().count(), 18, "{stdout}");

    let out = lev.run(&["modes", "show", "coder", "--json"]);
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["source"], "project");
    assert_eq!(m["path"], ".lev/modes/coder.yaml");
    assert_eq!(m["role"], "You write code the way this project wants it.");
    assert_eq!(m["limits"]["max_turns"], 7);
    let out = lev.run(&["modes", "show", "coder"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("source:      project .lev/modes/coder.yaml\n"),
        "{stdout}"
    );
}

#[test]
fn a_user_mode_overrides_the_built_in_and_the_project_overrides_the_user() {
    let lev = Lev::new();
    let user_dir = lev.dir.path().join("config/lev/modes");
    write(
        &user_dir,
        "ask.yaml",
        "version: 1\nkind: mode\nid: ask\nname: My ask\nrole: Answer briefly.\n",
    );
    write(
        &user_dir,
        "coder.yaml",
        "version: 1\nkind: mode\nid: coder\nname: User coder\nrole: user\n",
    );
    write(
        &lev.workspace().join(".lev/modes"),
        "coder.yaml",
        PROJECT_CODER,
    );
    let out = lev.run(&["modes", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let modes = json_lines(&stdout);
    let by_id = |id: &str| modes.iter().find(|m| m["id"] == id).unwrap().clone();
    assert_eq!(by_id("ask")["source"], "user");
    assert_eq!(
        by_id("ask")["path"],
        user_dir.join("ask.yaml").display().to_string()
    );
    assert_eq!(by_id("coder")["source"], "project");
    assert_eq!(by_id("coder")["name"], "Project coder");
    assert_eq!(by_id("tdd")["source"], "built-in");
}

#[test]
fn a_broken_project_mode_is_reported_with_file_line_and_col() {
    let lev = Lev::new();
    write(
        &lev.workspace().join(".lev/modes"),
        "coder.yaml",
        "version: 1\nkind: mode\nid: coder\nname: Broken\nlimits: { max_turns: lots }\nrol: typo\n",
    );
    let out = lev.run(&["modes"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--> .lev/modes/coder.yaml:5:22   (limits.max_turns)"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("error: unknown key `rol` at the top level\n  --> .lev/modes/coder.yaml:6:1"),
        "{stderr}"
    );
    assert!(stderr.contains("help: did you mean `role`?"), "{stderr}");
    // Every command that needs modes refuses the same way.
    let out = lev.run(&["modes", "show", "tdd"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_unknown_tool_in_a_project_mode_is_a_warning_and_the_mode_still_loads() {
    let lev = Lev::new();
    write(
        &lev.workspace().join(".lev/modes"),
        "mine.yaml",
        "version: 1\nkind: mode\nid: mine\nname: Mine\nrole: r\ntools: { allow: [read_fiel] }\n",
    );
    let out = lev.run(&["modes"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("mine ")), "{stdout}");
    assert!(
        stderr.contains("warning: unknown tool `read_fiel`")
            && stderr.contains(".lev/modes/mine.yaml:6:"),
        "{stderr}"
    );
    assert_eq!(stdout.lines().count(), 19);
    // Workflows see the same registry: a step may use the project's mode.
    let wf = lev.workspace().join("wf.yaml");
    std::fs::write(
        &wf,
        "version: 1\nkind: workflow\nid: w\nname: W\nsteps:\n  a: { mode: mine, prompt: hi }\n  b: { mode: minee, prompt: hi }\n",
    )
    .unwrap();
    let out = lev.run(&["validate", "wf.yaml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown mode `minee`"), "{stderr}");
    assert!(stderr.contains("help: did you mean `mine`?"), "{stderr}");
    assert!(!stderr.contains("unknown mode `mine`"), "{stderr}");
}
