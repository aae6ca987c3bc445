//! Workflow validation end to end: broken files with exact positions,
//! hostile inputs, the shipped example, and a valid workflow's model.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lev::spec::mode::builtin_dir;
use lev::spec::{
    Backoff, Diagnostic, Diagnostics, ModeRegistry, OnTimeout, RetryOn, Severity, StepKind, ToUser,
    Workflow, load_workflow, load_workflow_str, load_workflow_with,
};

fn modes() -> ModeRegistry {
    ModeRegistry::load(&[builtin_dir()]).unwrap()
}

fn load(text: &str) -> Result<Workflow, Diagnostics> {
    load_workflow_str(Path::new("wf.yaml"), text, &modes())
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match load(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(d) => {
            d.0.into_iter()
                .filter(|d| d.severity == Severity::Error)
                .collect()
        }
    }
}

const HEAD: &str = "version: 1\nkind: workflow\nid: t\n";

/// (name, body after HEAD, line, col, path, message substring)
/// Lines count from the top of the file (HEAD is lines 1-3).
const CASES: &[(&str, &str, u32, u32, &str, &str)] = &[
    (
        "unknown top-level key",
        "stepz: {}\nsteps:\n  a: { type: shell, run: echo }\n",
        4,
        1,
        "stepz",
        "unknown key `stepz` at the top level",
    ),
    (
        "unknown step key",
        "steps:\n  a: { type: shell, run: echo }\n  b:\n    need: [a]\n    mode: coder\n    prompt: hi\n",
        7,
        5,
        "steps.b.need",
        "unknown key `need` in `steps.b`",
    ),
    (
        "needs names a missing step",
        "steps:\n  a: { type: shell, run: echo }\n  b: { type: shell, run: echo, needs: [a, nope] }\n",
        6,
        43,
        "steps.b.needs",
        "step `b` needs `nope`, which is not a step",
    ),
    (
        "needs itself",
        "steps:\n  a: { type: shell, run: echo, needs: [a] }\n",
        5,
        40,
        "steps.a.needs",
        "step `a` needs itself",
    ),
    (
        "cycle is named",
        "steps:\n  a: { type: shell, run: echo, needs: [c] }\n  b: { type: shell, run: echo, needs: [a] }\n  c: { type: shell, run: echo, needs: [b] }\n",
        6,
        40,
        "steps.b.needs",
        "steps form a cycle: a -> b -> c -> a",
    ),
    (
        "unknown mode",
        "steps:\n  a:\n    mode: codr\n    prompt: hi\n",
        6,
        11,
        "steps.a.mode",
        "unknown mode `codr`",
    ),
    (
        "reference to a step that is not upstream",
        "steps:\n  coder: { mode: coder, prompt: hi }\n  tester:\n    mode: tdd\n    prompt: \"Write tests for: ${{ steps.coder.outputs.text }}\"\n",
        8,
        35,
        "steps.tester.prompt",
        "step `tester` references `steps.coder.outputs.text`, but `coder` is not upstream of `tester`",
    ),
    (
        "reference to an output the step does not have",
        "steps:\n  a: { type: shell, run: echo }\n  b:\n    needs: [a]\n    type: shell\n    run: echo ${{ steps.a.outputs.stdot }}\n",
        9,
        19,
        "steps.b.run",
        "step `a` has no output `stdot`",
    ),
    (
        "reference to an unknown step",
        "steps:\n  a: { type: shell, run: \"x ${{ steps.zz.outputs.stdout }}\" }\n",
        5,
        33,
        "steps.a.run",
        "`steps.zz.outputs.stdout` names an unknown step `zz`",
    ),
    (
        "undeclared input",
        "inputs:\n  feature: { type: string }\nsteps:\n  a: { type: shell, run: \"echo ${{ inputs.featur }}\" }\n",
        7,
        36,
        "steps.a.run",
        "`inputs.featur` is not a declared input",
    ),
    (
        "undeclared whisper question",
        "steps:\n  a: { type: shell, run: \"echo ${{ whisper.store }}\" }\n",
        5,
        36,
        "steps.a.run",
        "`whisper.store` is not a declared question",
    ),
    (
        "item outside followups",
        "steps:\n  a: { type: shell, run: \"echo ${{ item.title }}\" }\n",
        5,
        36,
        "steps.a.run",
        "`item` is only defined inside `followups.spawn`",
    ),
    (
        "bad duration",
        "steps:\n  a: { type: shell, run: echo, timeout: 10 minutes }\n",
        5,
        41,
        "steps.a.timeout",
        "`timeout` is not a duration: unknown unit",
    ),
    (
        "zero duration",
        "steps:\n  a: { type: shell, run: echo, timeout: 0s }\n",
        5,
        41,
        "steps.a.timeout",
        "`timeout` must be longer than zero",
    ),
    (
        "limits out of range",
        "limits:\n  max_callback_depth: 0\nsteps:\n  a: { type: shell, run: echo }\n",
        5,
        23,
        "limits.max_callback_depth",
        "`max_callback_depth` is out of range",
    ),
    (
        "limits of the wrong type",
        "limits:\n  max_followups: many\nsteps:\n  a: { type: shell, run: echo }\n",
        5,
        18,
        "limits.max_followups",
        "`max_followups` must be an integer",
    ),
    (
        "circuit breaker cooldown not a duration",
        "limits:\n  circuit_breaker: { consecutive_failures: 3, cooldown: soon }\nsteps:\n  a: { type: shell, run: echo }\n",
        5,
        57,
        "limits.circuit_breaker.cooldown",
        "`cooldown` is not a duration",
    ),
    (
        "retry max_attempts zero",
        "defaults:\n  retry: { max_attempts: 0 }\nsteps:\n  a: { type: shell, run: echo }\n",
        5,
        26,
        "defaults.retry.max_attempts",
        "`max_attempts` is out of range",
    ),
    (
        "retry backoff unknown",
        "steps:\n  a:\n    type: shell\n    run: echo\n    retry: { backoff: linear }\n",
        8,
        23,
        "steps.a.retry.backoff",
        "`backoff` has an unknown value `linear`",
    ),
    (
        "retry delays inverted",
        "steps:\n  a:\n    type: shell\n    run: echo\n    retry: { initial_delay: 2m, max_delay: 1m }\n",
        8,
        29,
        "steps.a.retry",
        "`initial_delay` is longer than `max_delay`",
    ),
    (
        "on_timeout unknown",
        "steps:\n  a:\n    type: approval\n    message: ok?\n    on_timeout: maybe\n",
        8,
        17,
        "steps.a.on_timeout",
        "`on_timeout` has an unknown value `maybe`",
    ),
    (
        "step without type",
        "steps:\n  a:\n    run: echo\n",
        5,
        3,
        "steps.a",
        "step `a` has no `type`",
    ),
    (
        "agent step without prompt",
        "steps:\n  a:\n    mode: coder\n",
        6,
        5,
        "steps.a",
        "an agent step is missing `prompt`",
    ),
    (
        "shell step without run",
        "steps:\n  a:\n    type: shell\n    cwd: /tmp\n",
        6,
        5,
        "steps.a",
        "a shell step is missing `run`",
    ),
    (
        "key of another step type",
        "steps:\n  a:\n    mode: coder\n    prompt: hi\n    run: echo\n",
        8,
        5,
        "steps.a.run",
        "`run` does not apply to a `agent` step",
    ),
    (
        "unsupported version",
        "steps:\n  a: { type: shell, run: echo }\n",
        1,
        10,
        "version",
        "unsupported `version`",
    ),
    (
        "wrong kind",
        "steps:\n  a: { type: shell, run: echo }\n",
        2,
        7,
        "kind",
        "`kind` has an unknown value `mode`",
    ),
    (
        "template with an unknown root",
        "steps:\n  a: { type: shell, run: \"echo ${{ foo.bar }}\" }\n",
        5,
        36,
        "steps.a.run",
        "bad template: unknown name `foo`",
    ),
    (
        "unclosed template",
        "steps:\n  a:\n    type: shell\n    run: echo ${{ inputs.x\n",
        7,
        15,
        "steps.a.run",
        "bad template: `${{` is not closed by `}}`",
    ),
    (
        "agent output without from",
        "steps:\n  a:\n    mode: coder\n    prompt: hi\n    outputs:\n      plan: { default: 1 }\n",
        9,
        13,
        "steps.a.outputs.plan",
        "output `plan` needs `from:`",
    ),
    (
        "output from a path the step does not produce",
        "steps:\n  a:\n    mode: coder\n    prompt: hi\n    outputs:\n      plan: { from: stdout.plan }\n",
        9,
        21,
        "steps.a.outputs.plan.from",
        "`from: stdout.plan` does not start with an output of a agent step",
    ),
    (
        "followups max above the run limit",
        "limits: { max_followups: 2 }\nsteps:\n  a:\n    mode: coder\n    prompt: hi\n    followups:\n      for_each: ${{ steps.a.outputs.json }}\n      spawn: { mode: coder, prompt: \"fix ${{ item }}\" }\n      max: 5\n",
        12,
        12,
        "steps.a.followups.max",
        "`max` (5) exceeds `limits.max_followups` (2)",
    ),
    (
        "followups without spawn",
        "steps:\n  a:\n    mode: coder\n    prompt: hi\n    followups:\n      for_each: ${{ steps.a.outputs.json }}\n",
        9,
        7,
        "steps.a.followups",
        "`followups` is missing `spawn`",
    ),
    (
        "spawn with unknown mode",
        "steps:\n  a:\n    mode: coder\n    prompt: hi\n    followups:\n      for_each: ${{ steps.a.outputs.json }}\n      spawn: { mode: fixer, prompt: go }\n",
        10,
        22,
        "steps.a.followups.spawn.mode",
        "unknown mode `fixer`",
    ),
    (
        "step reads its own output outside followups",
        "steps:\n  a:\n    mode: coder\n    prompt: \"again: ${{ steps.a.outputs.text }}\"\n",
        7,
        25,
        "steps.a.prompt",
        "step `a` references its own output",
    ),
    (
        "question default not among options",
        "whisper:\n  questions:\n    - id: store\n      ask: Where?\n      options: [cookie, db]\n      default: file\nsteps:\n  a: { type: shell, run: echo }\n",
        9,
        16,
        "whisper.questions[0].default",
        "default `file` is not one of the options",
    ),
    (
        "whisper to_user unknown",
        "whisper: { to_user: sometimes }\nsteps:\n  a: { type: shell, run: echo }\n",
        4,
        21,
        "whisper.to_user",
        "`to_user` has an unknown value `sometimes`",
    ),
    (
        "duplicate question id",
        "whisper:\n  questions:\n    - { id: q, ask: one }\n    - { id: q, ask: two }\nsteps:\n  a: { type: shell, run: echo }\n",
        7,
        7,
        "whisper.questions[1]",
        "duplicate question id `q`",
    ),
    (
        "workflow output naming an unknown step",
        "steps:\n  a: { type: shell, run: echo }\noutputs:\n  verdict: ${{ steps.b.outputs.text }}\n",
        7,
        16,
        "outputs.verdict",
        "`steps.b.outputs.text` names an unknown step `b`",
    ),
    (
        "empty steps",
        "steps: {}\n",
        4,
        8,
        "steps",
        "`steps` is empty",
    ),
    (
        "invalid step id",
        "steps:\n  \"my step\": { type: shell, run: echo }\n",
        5,
        3,
        "steps.my step",
        "invalid step id `my step`",
    ),
    (
        "input default of the wrong type",
        "inputs:\n  n: { type: number, default: three }\nsteps:\n  a: { type: shell, run: echo }\n",
        5,
        31,
        "inputs.n.default",
        "default of input `n` does not match its type",
    ),
    (
        "bad if expression",
        "steps:\n  a: { type: shell, run: echo }\n  b:\n    needs: [a]\n    type: shell\n    run: echo\n    if: success( && true\n",
        10,
        18,
        "steps.b.if",
        "bad condition",
    ),
    (
        "reference inside a block scalar",
        "steps:\n  a: { type: shell, run: echo }\n  b:\n    type: shell\n    run: |\n      echo one\n      echo ${{ steps.a.outputs.stdout }}\n",
        10,
        16,
        "steps.b.run",
        "`a` is not upstream of `b`",
    ),
    (
        "env with a bad variable name",
        "steps:\n  a:\n    type: shell\n    run: echo\n    env: { \"BAD-NAME\": x }\n",
        8,
        12,
        "steps.a.env.BAD-NAME",
        "invalid environment variable name `BAD-NAME`",
    ),
    (
        "max_turns wrong type",
        "steps:\n  a: { mode: coder, prompt: hi, max_turns: [1] }\n",
        5,
        44,
        "steps.a.max_turns",
        "`max_turns` must be an integer",
    ),
];

/// Bodies whose HEAD differs from the default one.
fn head_for(name: &str) -> &'static str {
    match name {
        "unsupported version" => "version: 2\nkind: workflow\nid: t\n",
        "wrong kind" => "version: 1\nkind: mode\nid: t\n",
        _ => HEAD,
    }
}

#[test]
fn broken_workflows_report_exact_positions() {
    assert!(CASES.len() >= 30);
    let mut failures = Vec::new();
    for (name, body, line, col, path, msg) in CASES {
        let text = format!("{}{body}", head_for(name));
        let errs = errors(&text);
        let hit = errs.iter().find(|d| d.message.contains(msg));
        match hit {
            Some(d)
                if d.line == *line && d.col == *col && d.path == *path && d.file == "wf.yaml" => {}
            _ => failures.push(format!(
                "case `{name}`: want {line}:{col} ({path}) `{msg}`, got:\n{}",
                Diagnostics(errs.clone())
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn unknown_keys_suggest_the_closest_known_key() {
    let errs = errors(&format!(
        "{HEAD}steps:\n  a: {{ type: shell, run: echo }}\n  b:\n    need: [a]\n    mode: coder\n    prompt: hi\n"
    ));
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean `needs`?"));
}

#[test]
fn the_not_upstream_error_reads_like_the_spec() {
    let errs = errors(&format!(
        "{HEAD}steps:\n  coder: {{ mode: coder, prompt: hi }}\n  tester:\n    mode: tdd\n    prompt: \"Write tests for: ${{{{ steps.coder.outputs.text }}}}\"\n"
    ));
    let shown = errs[0].to_string();
    assert_eq!(
        shown,
        "error: step `tester` references `steps.coder.outputs.text`, but `coder` is not upstream of `tester`\n  \
         --> wf.yaml:8:35   (steps.tester.prompt)\nhelp: add `coder` to `tester.needs`"
    );
}

#[test]
fn all_errors_are_reported_sorted_by_position() {
    let text = format!(
        "{HEAD}limits: {{ max_parallel: 0 }}\nsteps:\n  b:\n    type: shel\n    run: echo\n  a:\n    mode: coder\n    prompt: hi\n    retry: {{ max_attempts: lots }}\n    nedds: [b]\n"
    );
    let errs = errors(&text);
    let positions: Vec<(u32, u32)> = errs.iter().map(|d| (d.line, d.col)).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
    assert_eq!(errs.len(), 4, "{}", Diagnostics(errs.clone()));
    assert!(errs[0].message.contains("max_parallel"));
    assert!(errs[1].message.contains("unknown value `shel`"));
    assert_eq!(errs[1].hint.as_deref(), Some("did you mean `shell`?"));
    assert!(errs[2].message.contains("max_attempts"));
    assert_eq!(errs[2].expected.as_deref(), Some("an integer"));
    assert_eq!(errs[2].found.as_deref(), Some("a string `lots`"));
    assert!(errs[3].message.contains("unknown key `nedds`"));
}

#[test]
fn extension_keys_are_allowed() {
    let wf = load(&format!(
        "{HEAD}x-owner: me\nsteps:\n  a: {{ type: shell, run: echo, x-note: hi }}\n"
    ))
    .unwrap();
    assert_eq!(wf.steps.len(), 1);
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let errs = errors(&format!(
        "{HEAD}steps:\n  a: {{ type: shell, run: [echo }}\n"
    ));
    assert!(errs[0].message.starts_with("invalid YAML"), "{}", errs[0]);
    assert_eq!(errs[0].line, 5);
    let errs = errors("- just\n- a list\n");
    assert_eq!(
        errs[0].message,
        "the file must be a mapping of top-level keys"
    );
    assert_eq!(errs[0].found.as_deref(), Some("a list"));
    let errs = errors("");
    assert_eq!(errs[0].found.as_deref(), Some("null"));
    let errs = errors(&format!("{HEAD}id: again\nsteps: {{}}\n"));
    assert_eq!(errs[0].message, "duplicate key `id`");
    assert_eq!((errs[0].line, errs[0].col), (4, 1));
}

// ---- hostile input -------------------------------------------------------

#[test]
fn huge_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    // Sparse: 50 MB on paper, nothing on disk; lev must not read it.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(50 * 1024 * 1024)
        .unwrap();
    let err = load_workflow(&path, &modes()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(
        err.0[0]
            .message
            .starts_with("file is too large: 52428800 bytes"),
        "{err}"
    );

    let big = format!("{HEAD}x-pad: \"{}\"\n", "a".repeat(5 * 1024 * 1024));
    let err = load(&big).unwrap_err();
    assert!(err.0[0].message.starts_with("file is too large"), "{err}");
}

#[test]
fn deep_nesting_is_refused() {
    let flow = format!(
        "{HEAD}steps: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let err = load(&flow).unwrap_err();
    assert!(err.0[0].message.contains("nesting is too deep"), "{err}");

    let maps = format!(
        "{HEAD}steps: {}1{}\n",
        "{a: ".repeat(10_000),
        "}".repeat(10_000)
    );
    let err = load(&maps).unwrap_err();
    assert!(err.0[0].message.contains("nesting is too deep"), "{err}");

    let block = format!("{HEAD}steps:\n  {}x\n", "- ".repeat(10_000));
    let err = load(&block).unwrap_err();
    assert!(err.0[0].message.contains("nesting is too deep"), "{err}");
}

#[test]
fn alias_bomb_is_refused() {
    let mut text = String::from(HEAD);
    text.push_str(
        "x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        text.push_str(&format!("x-{}: &{} [{refs}]\n", w[1], w[1]));
    }
    text.push_str("steps:\n  a: { type: shell, run: echo }\n");
    let err = load(&text).unwrap_err();
    assert!(err.0[0].message.contains("alias"), "{err}");
    assert!(err.0[0].line > 0);
}

#[test]
fn invalid_utf8_reports_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"version: 1\nkind: workflow\nid: t\nname: caf\xe9 bar\n")
        .unwrap();
    drop(f);
    let err = load_workflow(&path, &modes()).unwrap_err();
    let d = &err.0[0];
    assert_eq!(
        d.message,
        "file is not valid UTF-8: invalid byte at offset 41"
    );
    assert_eq!((d.line, d.col), (4, 10));
}

#[test]
fn absurd_numbers_and_durations_do_not_panic() {
    let text = format!(
        "{HEAD}limits: {{ max_tokens: 99999999999999999999999, chain_timebox: 1e308 }}\nsteps:\n  a: {{ type: shell, run: echo, timeout: 99999999999999999999h }}\n"
    );
    let errs = errors(&text);
    assert!(errs.len() >= 2, "{}", Diagnostics(errs.clone()));
}

// ---- child workflows -------------------------------------------------------

fn reader(files: BTreeMap<PathBuf, String>) -> impl Fn(&Path) -> std::io::Result<String> {
    move |p: &Path| {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

fn child(id: &str, extra: &str) -> String {
    format!(
        "version: 1\nkind: workflow\nid: {id}\ninputs:\n  target: {{ type: string }}\nsteps:\n  run: {{ type: shell, run: \"echo ${{{{ inputs.target }}}}\" }}\n{extra}"
    )
}

#[test]
fn child_workflows_load_from_stored_texts_relative_to_the_parent() {
    let parent = format!(
        "{HEAD}steps:\n  sub:\n    type: workflow\n    uses: sub/child.yaml\n    with: {{ target: x, n: 3 }}\n  after:\n    needs: [sub]\n    type: shell\n    run: \"echo ${{{{ steps.sub.outputs.out }}}}\"\n"
    );
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from("flows/sub/child.yaml"),
        child(
            "child",
            "outputs:\n  out: ${{ steps.run.outputs.stdout }}\n",
        ),
    );
    let read = reader(files);
    // `n` is not an input of the child.
    let err = load_workflow_with(Path::new("flows/p.yaml"), &parent, &modes(), &read).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].message, "child workflow `child` has no input `n`");
    assert_eq!((err.0[0].line, err.0[0].col), (8, 24));

    let parent = parent.replace(", n: 3", "");
    let wf = load_workflow_with(Path::new("flows/p.yaml"), &parent, &modes(), &read).unwrap();
    let StepKind::Workflow { uses, child, with } = &wf.steps[0].kind else {
        panic!("not a workflow step");
    };
    assert_eq!(uses, "sub/child.yaml");
    assert_eq!(child.id, "child");
    assert_eq!(child.source_path, PathBuf::from("flows/sub/child.yaml"));
    assert!(child.source_text.contains("id: child"));
    assert_eq!(wf.source_text, parent);
    assert_eq!(with["target"].raw(), "x");
}

#[test]
fn child_diagnostics_keep_the_child_file_name() {
    let parent =
        format!("{HEAD}steps:\n  sub: {{ type: workflow, uses: c.yaml, with: {{ target: x }} }}\n");
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from("c.yaml"),
        child("c", "  bad: { type: shel, run: echo }\n"),
    );
    let err =
        load_workflow_with(Path::new("p.yaml"), &parent, &modes(), &reader(files)).unwrap_err();
    let text = err.to_string();
    let parent_err = err.0.iter().find(|d| d.file == "p.yaml").unwrap();
    assert_eq!(parent_err.message, "child workflow `c.yaml` has errors");
    let child_err = err.0.iter().find(|d| d.file == "c.yaml").unwrap();
    assert!(child_err.message.contains("unknown value `shel`"), "{text}");
    assert_eq!((child_err.line, child_err.col), (8, 16));
}

#[test]
fn child_cycles_and_missing_children_are_errors() {
    let a = format!("{HEAD}steps:\n  s: {{ type: workflow, uses: b.yaml }}\n");
    let b = "version: 1\nkind: workflow\nid: b\nsteps:\n  s: { type: workflow, uses: ./a.yaml }\n";
    let mut files = BTreeMap::new();
    files.insert(PathBuf::from("dir/b.yaml"), b.to_string());
    files.insert(PathBuf::from("dir/a.yaml"), a.clone());
    let err =
        load_workflow_with(Path::new("dir/a.yaml"), &a, &modes(), &reader(files)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("child workflows form a cycle: dir/a.yaml -> dir/b.yaml -> dir/a.yaml"),
        "{text}"
    );

    let err = load_workflow_with(Path::new("a.yaml"), &a, &modes(), &reader(BTreeMap::new()))
        .unwrap_err();
    assert!(
        err.0[0]
            .message
            .starts_with("cannot read child workflow `b.yaml`"),
        "{err}"
    );
    assert_eq!((err.0[0].line, err.0[0].col), (5, 30));
}

#[test]
fn child_depth_is_bounded() {
    let mut files = BTreeMap::new();
    for i in 0..20 {
        files.insert(
            PathBuf::from(format!("w{i}.yaml")),
            format!(
                "version: 1\nkind: workflow\nid: w{i}\nsteps:\n  s: {{ type: workflow, uses: w{}.yaml }}\n",
                i + 1
            ),
        );
    }
    let top = files[&PathBuf::from("w0.yaml")].clone();
    let err = load_workflow_with(Path::new("w0.yaml"), &top, &modes(), &reader(files)).unwrap_err();
    assert!(
        err.to_string()
            .contains("child workflows nest more than 8 deep"),
        "{err}"
    );
}

#[test]
fn child_files_load_from_disk_relative_to_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/c.yaml"), child("c", "")).unwrap();
    let parent = format!(
        "{HEAD}steps:\n  s: {{ type: workflow, uses: sub/c.yaml, with: {{ target: t }} }}\n"
    );
    std::fs::write(dir.path().join("p.yaml"), &parent).unwrap();
    let wf = load_workflow(&dir.path().join("p.yaml"), &modes()).unwrap();
    let StepKind::Workflow { child, .. } = &wf.steps[0].kind else {
        panic!("not a workflow step");
    };
    assert_eq!(child.source_path, dir.path().join("sub/c.yaml"));
}

// ---- valid workflows -------------------------------------------------------

#[test]
fn shipped_example_validates_clean() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/implement-auth.yaml");
    let wf = match load_workflow(&path, &modes()) {
        Ok(wf) => wf,
        Err(d) => panic!("{d}"),
    };
    let ids: Vec<&str> = wf.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "architect",
            "coder",
            "tester",
            "security",
            "approve",
            "checks",
            "reviewer"
        ]
    );
    assert_eq!(wf.limits.max_cost_usd, Some(5.0));
    assert_eq!(wf.whisper.questions[0].default.as_deref(), Some("cookie"));
    let sec = wf.step("security").unwrap();
    let f = sec.followups.as_ref().unwrap();
    assert_eq!(f.max, 3);
    assert_eq!(f.spawn_mode, "coder");
    assert_eq!(wf.step("checks").unwrap().retry.max_attempts, 1);
    assert_eq!(
        wf.step("coder").unwrap().timeout,
        Some(Duration::from_secs(45 * 60))
    );
    assert!(
        wf.step("coder")
            .unwrap()
            .workspace
            .as_ref()
            .unwrap()
            .worktree
    );
    assert_eq!(wf.step("reviewer").unwrap().hints.len(), 1);
}

#[test]
fn small_workflow_builds_the_expected_model() {
    let text = r#"version: 1
kind: workflow
id: small
name: Small
description: a test
inputs:
  target: { type: string, default: "." }
  count: { type: number }
defaults:
  timeout: 2m
  retry: { max_attempts: 3, backoff: fixed, initial_delay: 500ms, max_delay: 10s, on: [error] }
limits:
  max_callback_depth: 4
  chain_timebox: 90s
  max_followups: 5
  max_questions: 2
  max_tokens: 1000
  max_cost_usd: 1.5
  circuit_breaker: { consecutive_failures: 2, cooldown: 30s }
  max_parallel: 2
whisper:
  to_user: defaults
  answer_timeout: 1m
  questions:
    - id: style
      header: Style
      ask: Which style?
      options: [terse, { value: verbose, label: "Verbose (Recommended)" }]
      default: verbose
steps:
  build:
    type: shell
    run: make -C ${{ inputs.target }}
    env: { LEVEL: "${{ inputs.count }}" }
    idempotent: true
  plan:
    needs: build
    mode: architect
    prompt: "Plan in ${{ whisper.style }} style: ${{ steps.build.outputs.stdout }}"
    outputs:
      plan: json.plan
      items: { from: json.items, default: [] }
    followups:
      for_each: ${{ steps.plan.outputs.items }}
      spawn: { mode: coder, prompt: "Do ${{ item.name }}" }
  gate:
    needs: [plan]
    type: approval
    message: "Ship ${{ length(steps.plan.outputs.items) }} items?"
    timeout: 1h
    on_timeout: skip
    retry: { max_attempts: 1 }
  ask:
    needs: [gate]
    if: always()
    type: question
    ask: Anything else?
    continue_on_error: true
outputs:
  plan: ${{ steps.plan.outputs.plan }}
"#;
    let wf = match load(text) {
        Ok(wf) => wf,
        Err(d) => panic!("{d}"),
    };
    assert_eq!(wf.id, "small");
    assert_eq!(wf.name, "Small");
    assert_eq!(wf.description.as_deref(), Some("a test"));
    let ids: Vec<&str> = wf.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["build", "plan", "gate", "ask"]);
    assert!(wf.inputs["count"].required);
    assert!(!wf.inputs["target"].required);

    let l = &wf.limits;
    assert_eq!(l.max_callback_depth, 4);
    assert_eq!(l.chain_timebox, Duration::from_secs(90));
    assert_eq!(l.max_followups, 5);
    assert_eq!(l.max_questions, 2);
    assert_eq!(l.max_tokens, Some(1000));
    assert_eq!(l.max_cost_usd, Some(1.5));
    assert_eq!(l.circuit_breaker.consecutive_failures, 2);
    assert_eq!(l.circuit_breaker.cooldown, Duration::from_secs(30));
    assert_eq!(l.max_parallel, 2);

    assert_eq!(wf.whisper.to_user, ToUser::Defaults);
    assert_eq!(wf.whisper.answer_timeout, Duration::from_secs(60));
    let q = &wf.whisper.questions[0];
    assert_eq!(q.options[0].label, "terse");
    assert_eq!(q.options[1].label, "Verbose (Recommended)");

    let build = wf.step("build").unwrap();
    assert!(build.needs.is_empty());
    assert!(build.idempotent);
    assert_eq!(build.timeout, Some(Duration::from_secs(120)));
    // Inherited from defaults.
    assert_eq!(build.retry.max_attempts, 3);
    assert_eq!(build.retry.backoff, Backoff::Fixed);
    assert_eq!(build.retry.initial_delay, Duration::from_millis(500));
    assert_eq!(build.retry.on, vec![RetryOn::Error]);
    assert!(matches!(&build.kind, StepKind::Shell { env, .. } if env.contains_key("LEVEL")));

    let plan = wf.step("plan").unwrap();
    assert_eq!(plan.needs, vec!["build".to_string()]);
    assert_eq!(plan.outputs["plan"].from, "json.plan");
    assert_eq!(plan.outputs["items"].default, Some(serde_json::json!([])));
    assert!(matches!(&plan.kind, StepKind::Agent { mode, .. } if mode == "architect"));
    assert_eq!(plan.followups.as_ref().unwrap().max, 5);

    let gate = wf.step("gate").unwrap();
    // Merged field by field over the defaults.
    assert_eq!(gate.retry.max_attempts, 1);
    assert_eq!(gate.retry.backoff, Backoff::Fixed);
    assert_eq!(gate.timeout, Some(Duration::from_secs(3600)));
    assert!(matches!(
        &gate.kind,
        StepKind::Approval {
            on_timeout: OnTimeout::Skip,
            ..
        }
    ));

    let ask = wf.step("ask").unwrap();
    assert!(ask.continue_on_error);
    assert_eq!(ask.condition.as_ref().unwrap().raw(), "${{ always() }}");
    assert_eq!(wf.outputs["plan"].raw(), "${{ steps.plan.outputs.plan }}");
}

#[test]
fn a_flood_of_errors_is_capped() {
    let mut text = format!("{HEAD}steps:\n");
    for i in 0..5_000 {
        text.push_str(&format!(
            "  s{i}: {{ type: shell, run: \"${{{{ steps.x{i}.outputs.y }}}}\", bad: 1 }}\n"
        ));
    }
    let err = load(&text).unwrap_err();
    assert_eq!(err.0.len(), 501);
    assert!(
        err.0[500].message.starts_with("too many problems"),
        "{}",
        err.0[500]
    );
}

#[test]
fn warnings_do_not_block_loading_but_validate_reports_them() {
    let text = format!(
        "{HEAD}whisper:\n  questions:\n    - {{ id: q, header: A very long header, ask: Why? }}\nsteps:\n  a: {{ type: shell, run: echo }}\n"
    );
    assert!(load(&text).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.yaml");
    std::fs::write(&path, &text).unwrap();
    let diags = lev::spec::validate_workflow(&path, &modes());
    assert_eq!(diags.0.len(), 1, "{diags}");
    assert_eq!(diags.0[0].severity, Severity::Warning);
    assert_eq!((diags.0[0].line, diags.0[0].col), (6, 24));
    assert!(
        diags
            .to_string()
            .starts_with("warning: header is longer than 12 characters")
    );
    assert!(!diags.has_errors());

    std::fs::write(&path, format!("{HEAD}steps: {{}}\n")).unwrap();
    assert!(lev::spec::validate_workflow(&path, &modes()).has_errors());
}

#[test]
fn nested_child_diagnostics_come_parent_first() {
    let p = format!("{HEAD}steps:\n  s: {{ type: workflow, uses: b.yaml }}\n");
    let b = "version: 1\nkind: workflow\nid: b\nsteps:\n  s: { type: workflow, uses: c.yaml }\n  bad: { type: shell }\n";
    let c = "version: 1\nkind: workflow\nid: c\nsteps:\n  s: { type: shel, run: echo }\n";
    let mut files = BTreeMap::new();
    files.insert(PathBuf::from("b.yaml"), b.to_string());
    files.insert(PathBuf::from("c.yaml"), c.to_string());
    let err = load_workflow_with(Path::new("p.yaml"), &p, &modes(), &reader(files)).unwrap_err();
    let order: Vec<&str> = err.0.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(order, ["p.yaml", "b.yaml", "b.yaml", "c.yaml"], "{err}");
    assert_eq!(err.0[1].message, "child workflow `c.yaml` has errors");
    assert_eq!(err.0[2].message, "a shell step is missing `run`");
}
