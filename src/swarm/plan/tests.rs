use serde_json::{Value, json};

use super::*;
use crate::spec::ModeRegistry;
use crate::spec::expr::{EvalContext, StepView};
use crate::spec::model::StepKind;

fn modes() -> ModeRegistry {
    ModeRegistry::builtin().unwrap()
}

fn task(id: &str, mode: &str, needs: &[&str]) -> Task {
    Task {
        id: id.to_string(),
        title: format!("Do {id}"),
        mode: mode.to_string(),
        needs: needs.iter().map(|s| s.to_string()).collect(),
        acceptance: vec![format!("{id} is checked")],
        files: Vec::new(),
        model: None,
    }
}

fn plan(tasks: Vec<Task>) -> Plan {
    Plan {
        summary: "A plan".to_string(),
        tasks,
    }
}

fn good_json() -> Value {
    json!({"summary": "Add login", "tasks": [
        {"id": "design", "title": "Design the login API", "mode": "architect", "needs": [],
         "acceptance": ["docs/login.md names every endpoint"], "files": ["docs/login.md"]},
        {"id": "build", "title": "Implement it", "mode": "coder", "needs": ["design"],
         "acceptance": ["cargo test passes"], "files": ["src/login.rs"], "model": "gpt-4o-mini"}
    ]})
}

/// The problems of a JSON plan, from shape to semantics, as the driver sees them.
fn problems(v: Value, max: usize) -> Vec<String> {
    match parse(&v) {
        Ok(p) => check(&p, &modes(), max),
        Err(e) => e,
    }
}

// ---- parse -------------------------------------------------------------

#[test]
fn a_good_plan_parses_and_passes() {
    let p = parse(&good_json()).unwrap();
    assert_eq!(p.summary, "Add login");
    assert_eq!(p.tasks.len(), 2);
    assert_eq!(p.tasks[1].needs, vec!["design"]);
    assert_eq!(p.tasks[1].model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(check(&p, &modes(), 12), Vec::<String>::new());
    // The serde form is the JSON form.
    assert_eq!(serde_json::from_value::<Plan>(good_json()).unwrap(), p);
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let p = parse(&json!({"tasks": [
        {"id": "a", "title": "t", "mode": "coder", "needs": null, "acceptance": ["x"], "model": null,
         "x-note": "ignored"}
    ]}))
    .unwrap();
    assert_eq!(p.summary, "");
    assert!(p.tasks[0].needs.is_empty() && p.tasks[0].files.is_empty());
    assert_eq!(p.tasks[0].model, None);
}

#[test]
fn shape_problems_name_their_json_path() {
    assert_eq!(
        parse(&json!([1])).unwrap_err(),
        vec!["plan: expected an object with `summary` and `tasks`, found a list"]
    );
    assert_eq!(
        parse(&json!({"summary": "s"})).unwrap_err(),
        vec!["tasks: missing; expected a list of tasks"]
    );
    assert_eq!(
        parse(&json!({"tasks": {"a": 1}})).unwrap_err(),
        vec!["tasks: expected a list of tasks, found an object"]
    );
    let v = json!({"summary": 7, "plan": 1, "tasks": [
        {"id": "a", "title": "t", "mode": "coder", "acceptance": ["x"]},
        "oops",
        {"id": "c", "title": "t", "mode": 3, "need": ["a"], "needs": "a", "acceptance": ["x", 2]},
        {"title": null, "mode": "coder", "files": [true], "model": 4}
    ]});
    assert_eq!(
        parse(&v).unwrap_err(),
        vec![
            "plan: unknown field (known: summary, tasks)",
            "summary: expected a string, found 7",
            "tasks[1]: expected an object (a task), found \"oops\"",
            "tasks[2].need: unknown field (did you mean `needs`?)",
            "tasks[2].mode: expected a string, found 3",
            "tasks[2].needs: expected a list of strings, found \"a\"",
            "tasks[2].acceptance[1]: expected a string, found 2",
            "tasks[3].id: missing",
            "tasks[3].title: expected a string, found null",
            "tasks[3].files[0]: expected a string, found true",
            "tasks[3].model: expected a string, found 4",
        ]
    );
}

// ---- check -------------------------------------------------------------

#[test]
fn an_empty_or_oversized_plan_is_rejected() {
    assert_eq!(
        check(&plan(vec![]), &modes(), 5),
        vec!["tasks: the plan has no tasks; give at least one"]
    );
    let three = plan(vec![
        task("a", "coder", &[]),
        task("b", "coder", &[]),
        task("c", "coder", &[]),
    ]);
    assert_eq!(
        check(&three, &modes(), 2),
        vec!["tasks: the plan has 3 tasks; at most 2 are allowed (merge small tasks)"]
    );
}

#[test]
fn each_task_problem_has_its_own_message() {
    let mut bad_id = task("Design API", "architect", &[]);
    bad_id.title = "   ".into();
    let mut no_checks = task("build", "coder", &[]);
    no_checks.acceptance.clear();
    let mut blank = task("docs", "docs-writer", &[]);
    blank.acceptance.push(" ".into());
    blank.model = Some(String::new());
    let p = plan(vec![
        bad_id,
        no_checks,
        task("build", "codr", &[]),
        task("plan", "orchestrator", &[]),
        task("ops", "zzzzzzzzzz", &[]),
        blank,
    ]);
    let got = check(&p, &modes(), 12);
    let known_modes = modes()
        .modes
        .keys()
        .filter(|k| *k != "orchestrator")
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        got,
        vec![
            "tasks[0].id: `Design API` is not a valid id (lowercase letters, digits, `-` and `_`, starting with a letter; at most 64 characters)".to_string(),
            "tasks[0].title: empty; say what the agent must do".to_string(),
            "tasks[1].acceptance: no acceptance criteria; give at least one check that decides the task is done".to_string(),
            "tasks[2].id: `build` is also the id of tasks[1]".to_string(),
            "tasks[2].mode: unknown mode `codr` (did you mean `coder`?)".to_string(),
            "tasks[3].mode: `orchestrator` only plans; give the task to a mode that does the work".to_string(),
            format!("tasks[4].mode: unknown mode `zzzzzzzzzz` (known: {known_modes})"),
            "tasks[5].acceptance[1]: empty".to_string(),
            "tasks[5].model: empty; leave it out to use the mode's model".to_string(),
        ]
    );
}

#[test]
fn needs_must_name_other_tasks_of_the_plan() {
    let p = plan(vec![
        task("design", "architect", &[]),
        task("build", "coder", &["desgin", "build", "nothing-like-it"]),
    ]);
    assert_eq!(
        check(&p, &modes(), 12),
        vec![
            "tasks[1].needs: unknown task `desgin` (did you mean `design`?)",
            "tasks[1].needs: `build` needs itself",
            "tasks[1].needs: unknown task `nothing-like-it`",
        ]
    );
}

#[test]
fn cycles_are_named_task_by_task() {
    // a → b → c → a, and d ⇄ e; f only depends on the cycle (not part of it).
    let p = plan(vec![
        task("f", "coder", &["a"]),
        task("a", "coder", &["b"]),
        task("b", "coder", &["c"]),
        task("c", "coder", &["a"]),
        task("d", "coder", &["e"]),
        task("e", "coder", &["d"]),
    ]);
    assert_eq!(
        check(&p, &modes(), 12),
        vec![
            "needs form a cycle (each task needs the next): a → b → c → a",
            "needs form a cycle (each task needs the next): d → e → d",
        ]
    );
    let err = to_steps("o", &p).unwrap_err();
    assert!(err.contains("a → b → c → a"), "{err}");
}

#[test]
fn a_rejected_plan_is_reasked_with_its_problems_and_the_shape() {
    let p = plan(vec![task("build", "codr", &["design"])]);
    let problems = check(&p, &modes(), 12);
    let text = feedback(&problems);
    assert!(text.starts_with("Your plan was rejected. Problems found:\n"));
    for problem in &problems {
        assert!(text.contains(&format!("- {problem}\n")), "{text}");
    }
    assert!(text.contains("\"acceptance\""), "{text}");
    assert!(
        text.contains("one JSON document and nothing else"),
        "{text}"
    );
}

// ---- hostile input -----------------------------------------------------

fn chain(n: usize) -> Plan {
    let tasks = (0..n)
        .map(|i| {
            let prev = if i == 0 {
                vec![]
            } else {
                vec![format!("t{}", i - 1)]
            };
            Task {
                needs: prev,
                ..task(&format!("t{i}"), "coder", &[])
            }
        })
        .collect();
    plan(tasks)
}

#[test]
fn ten_thousand_tasks_in_a_chain_are_checked_and_ordered_without_recursion() {
    let mut p = chain(10_000);
    // Listed last-first, so the order must really be computed.
    p.tasks.reverse();
    assert_eq!(
        check(&p, &modes(), 12),
        vec!["tasks: the plan has 10000 tasks; at most 12 are allowed (merge small tasks)"]
    );
    assert!(check(&p, &modes(), 10_000).is_empty());
    let steps = to_steps("o", &p).unwrap();
    assert_eq!(steps.len(), 10_000);
    assert_eq!(steps[0].id, "t0");
    assert_eq!(steps[9_999].id, "t9999");
    assert_eq!(steps[1].needs, vec!["t0"]);

    // Closing the chain makes one cycle of ten thousand, named briefly.
    p.tasks.last_mut().unwrap().needs = vec!["t9999".into()];
    let got = check(&p, &modes(), 10_000);
    assert_eq!(
        got,
        vec![
            "needs form a cycle (each task needs the next): t9999 → t9998 → t9997 → t9996 → t9995 → t9994 → t9993 → t9992 → … → t0 → t9999 (10000 tasks)"
        ]
    );
}

#[test]
fn problems_are_capped_and_counted() {
    let tasks = (0..10_000)
        .map(|i| task(&format!("t{i}"), "no-such-mode", &["missing"]))
        .collect();
    let got = check(&plan(tasks), &modes(), 20_000);
    assert_eq!(got.len(), MAX_PROBLEMS + 1);
    assert_eq!(got[MAX_PROBLEMS], "... and 19980 more problems");

    // Through the JSON shape too: ten thousand broken tasks.
    let v = json!({"tasks": (0..10_000).map(|_| json!(1)).collect::<Vec<_>>()});
    let got = parse(&v).unwrap_err();
    assert_eq!(got.len(), MAX_PROBLEMS + 1);
    assert_eq!(got[MAX_PROBLEMS], "... and 9980 more problems");
}

#[test]
fn huge_strings_make_short_messages() {
    let huge = "x".repeat(2_000_000);
    let mut t = task("a", "coder", &[]);
    t.title = huge.clone();
    t.acceptance = vec![huge.clone(); 30];
    t.needs = vec![huge.clone()];
    let mut u = task("b", "coder", &[]);
    u.id = format!("B{huge}");
    u.mode = huge.clone();
    let got = problems(serde_json::to_value(plan(vec![t, u])).unwrap(), 12);
    assert!(got.len() > 3, "{got:?}");
    for p in &got {
        assert!(p.chars().count() < 400, "{}", &p[..400.min(p.len())]);
    }
    assert!(
        got.contains(&"tasks[0].title: too long (2000000 characters; at most 2000)".to_string())
    );
    assert!(got.contains(&"tasks[0].acceptance: 30 entries; at most 20".to_string()));
}

#[test]
fn a_task_with_a_hundred_thousand_needs_is_cheap() {
    let mut p = chain(3);
    p.tasks[2].needs = (0..100_000).map(|i| format!("t{}", i % 2)).collect();
    assert!(check(&p, &modes(), 12).is_empty());
    let steps = to_steps("o", &p).unwrap();
    assert_eq!(steps[2].needs, vec!["t0", "t1"]);
}

// ---- prompts and steps -------------------------------------------------

#[test]
fn the_planning_prompt_lists_usable_modes_and_limits() {
    let reg = modes();
    let text = planning_prompt("Implement auth", &reg, 7);
    assert!(text.starts_with("Objective:\nImplement auth\n"), "{text}");
    assert!(text.contains("at most 7 tasks"), "{text}");
    let coder = reg.get("coder").unwrap();
    let when = coder
        .when_to_use
        .as_deref()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains(&format!("- coder: {when}\n")), "{text}");
    assert!(!text.contains("- orchestrator:"), "{text}");
    // Usable as an agent step's prompt even when the objective has `${{`.
    let t = template_of(&planning_prompt("use ${{ inputs.x }} literally", &reg, 7)).unwrap();
    let rendered = t.render(&EvalContext::default()).unwrap();
    assert!(
        rendered.contains("use ${{ inputs.x }} literally"),
        "{rendered}"
    );
}

#[test]
fn a_task_brief_reads_its_upstream_reports_and_keeps_plan_text_literal() {
    let mut p = parse(&good_json()).unwrap();
    p.tasks[1].title = "Implement ${{ steps.design.outputs.secret }} as text".into();
    let brief = task_prompt("Add login ${{ run.id }}", &p, &p.tasks[1]);
    assert!(
        brief.contains("${{ steps.design.outputs.text }}"),
        "{brief}"
    );
    let t = crate::spec::expr::Template::parse(&brief).unwrap();
    assert_eq!(t.steps_read(), Some(vec!["design".to_string()]));

    let mut ctx = EvalContext::default();
    ctx.steps.insert(
        "design".into(),
        StepView {
            succeeded: true,
            outputs: [("text".to_string(), json!("DESIGN REPORT"))].into(),
        },
    );
    let text = t.render(&ctx).unwrap();
    assert!(text.contains("Add login ${{ run.id }}"), "{text}");
    assert!(
        text.contains("Your task (`build`): Implement ${{ steps.design.outputs.secret }} as text"),
        "{text}"
    );
    assert!(text.contains("- cargo test passes\n"), "{text}");
    assert!(text.contains("- src/login.rs\n"), "{text}");
    assert!(
        text.contains("## design (Design the login API)\nDESIGN REPORT"),
        "{text}"
    );

    // A task without needs reads nothing.
    let first = task_prompt("x", &p, &p.tasks[0]);
    assert!(!first.contains("steps."), "{first}");
}

#[test]
fn steps_come_needs_first_in_plan_order_otherwise() {
    let p = plan(vec![
        task("review", "reviewer", &["build", "tests"]),
        task("tests", "tdd", &["design"]),
        task("build", "coder", &["design", "design"]),
        Task {
            model: Some("small".into()),
            ..task("design", "architect", &[])
        },
    ]);
    assert!(check(&p, &modes(), 12).is_empty());
    let steps = to_steps("o", &p).unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["design", "tests", "build", "review"]);
    assert_eq!(steps[2].needs, vec!["design"]);
    assert_eq!(steps[3].needs, vec!["build", "tests"]);
    match &steps[0].kind {
        StepKind::Agent {
            mode,
            model,
            prompt,
            ..
        } => {
            assert_eq!(mode, "architect");
            assert_eq!(model.as_deref(), Some("small"));
            assert!(prompt.raw().contains("Your task (`design`)"));
        }
        other => panic!("not an agent step: {other:?}"),
    }
    match &steps[3].kind {
        StepKind::Agent { prompt, .. } => {
            assert_eq!(
                prompt.steps_read(),
                Some(vec!["build".to_string(), "tests".to_string()])
            );
        }
        other => panic!("not an agent step: {other:?}"),
    }
}

#[test]
fn markdown_lists_the_tasks() {
    let md = markdown(&parse(&good_json()).unwrap());
    assert_eq!(
        md,
        "Add login\n\n\
         - [ ] **design** (architect): Design the login API\n  - check: docs/login.md names every endpoint\n  - files: docs/login.md\n\
         - [ ] **build** (coder, after design): Implement it\n  - check: cargo test passes\n  - files: src/login.rs\n"
    );
}

// ---- edit text ---------------------------------------------------------

#[test]
fn edit_text_round_trips_and_explains_itself() {
    let mut p = parse(&good_json()).unwrap();
    p.summary = "Two lines:\nfirst, then \"second\"".into();
    p.tasks[0].title = "Design: the API # not a comment\n  - with a list\n".into();
    p.tasks[0].acceptance.push("yes".into());
    p.tasks[0].acceptance.push("${{ steps.x }} ✓\ttab".into());
    p.tasks[1].files.push("- leading dash".into());
    let text = to_edit_text(&p);
    assert!(text.starts_with("# The plan the swarm will run."), "{text}");
    assert!(
        text.contains("#   needs       ids of tasks that must finish first"),
        "{text}"
    );
    assert_eq!(from_edit_text(&text).unwrap(), p, "{text}");
    let empty = plan(vec![]);
    assert_eq!(from_edit_text(&to_edit_text(&empty)).unwrap(), empty);
}

#[test]
fn edit_text_errors_carry_line_and_column() {
    let text = "summary: s\ntasks:\n  - id: a\n    title: [x]\n    mode: coder\n    nedds: []\n";
    assert_eq!(
        from_edit_text(text).unwrap_err(),
        vec![
            "4:12: tasks[0].title: expected a string, found a list",
            "6:5: tasks[0].nedds: unknown field (did you mean `needs`?)",
        ]
    );
    let missing = "tasks:\n  - id: a\n    mode: coder\n";
    assert_eq!(
        from_edit_text(missing).unwrap_err(),
        vec!["2:5: tasks[0].title: missing"]
    );
    let broken = from_edit_text("tasks: [\n  - id: a\n").unwrap_err();
    assert_eq!(broken.len(), 1);
    let (line, rest) = broken[0].split_once(':').unwrap();
    assert!(line.parse::<u32>().is_ok(), "{broken:?}");
    assert!(
        rest.split_once(':').unwrap().0.parse::<u32>().is_ok(),
        "{broken:?}"
    );
    assert_eq!(
        from_edit_text("").unwrap_err(),
        vec!["1:1: plan: expected a mapping with `summary` and `tasks`, found null"]
    );
}

#[test]
fn a_revision_builds_on_succeeded_tasks_and_takes_no_used_id() {
    let outside = Outside {
        succeeded: ["design".to_string()].into(),
        taken: ["design", "broken", "stuck"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let good = plan(vec![
        task("fix", "coder", &["design"]),
        task("check", "reviewer", &["fix"]),
    ]);
    assert_eq!(
        check_revision(&good, &modes(), 10, &outside),
        Vec::<String>::new()
    );
    // Without the outside tasks, `design` is unknown: the plain check
    // stays strict.
    assert_eq!(check(&good, &modes(), 10).len(), 1);

    let bad = plan(vec![
        task("stuck", "coder", &["design"]),
        task("again", "coder", &["broken"]),
    ]);
    let problems = check_revision(&bad, &modes(), 10, &outside);
    assert_eq!(
        problems,
        [
            "tasks[0].id: `stuck` is already a task of this run; give the new task a new id",
            "tasks[1].needs: `broken` did not succeed or is replaced; only tasks that succeeded can be built on",
        ]
    );
}

#[test]
fn a_revision_replaces_tasks_and_keeps_the_rest_in_order() {
    let ran = plan(vec![
        task("a", "architect", &[]),
        task("b", "coder", &["a"]),
        task("c", "reviewer", &["b"]),
    ]);
    let revised = plan(vec![task("d", "coder", &["a"])]);
    let merged = with_revision(&ran, &["b".into(), "c".into()], &revised);
    let ids: Vec<&str> = merged.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "d"]);
    assert_eq!(merged.summary, ran.summary);
    assert!(check(&merged, &modes(), 10).is_empty());
}
