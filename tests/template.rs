//! `lev template save`: a swarm run's accepted plan (or the workflow a
//! succeeded run was pinned to) becomes a workflow file
//! that `lev validate` accepts and `lev run` runs. The swarm run is built as
//! a real export (lev's own event types, written as JSONL) and brought in
//! with `lev import`; the saved workflow then runs headless against the
//! loopback LLM server.

mod support;

use std::collections::BTreeMap;
use std::process::Output;

use lev::journal::RunMeta;
use lev::protocol::{Event, Millis, RunId, RunStatus, Usage};
use serde_json::{Value, json};
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const OBJECTIVE: &str = "Implement an auth system";

fn the_plan() -> Value {
    json!({"summary": "Design the login API, build it, test it.", "tasks": [
        {"id": "design", "title": "Design the login API", "mode": "architect", "needs": [],
         "acceptance": ["docs/login.md names every endpoint"], "files": ["docs/login.md"]},
        {"id": "build", "title": "Implement the login handler", "mode": "coder", "needs": ["design"],
         "acceptance": ["cargo test passes"], "files": ["src/login.rs"]},
        {"id": "tests", "title": "Write failing tests for login", "mode": "tdd", "needs": ["design"],
         "acceptance": ["the tests fail before build"], "files": ["tests/login.rs"]}
    ]})
}

/// Writes an export of a finished run made of `events` and imports it;
/// returns the run id.
fn import_run(lev: &Lev, events: Vec<Event>) -> String {
    let run = RunId::new();
    let last = events.last().map(|e| e.at().0).unwrap_or(0);
    let meta = RunMeta {
        id: run.clone(),
        workflow_id: "swarm".into(),
        name: OBJECTIVE.into(),
        source: "swarm".into(),
        definition_blob: String::new(),
        status: RunStatus::Succeeded,
        created_ms: 1_000,
        updated_ms: last,
        last_seq: events.len() as u64,
        parent: None,
        step_run: false,
    };
    let mut lines = vec![
        json!({"lev_export": 1, "run": run, "entries": events.len(), "blobs": 0}).to_string(),
        json!({"type": "run", "meta": meta}).to_string(),
    ];
    for (i, e) in events.iter().enumerate() {
        lines.push(
            json!({"type": "entry", "seq": i + 1, "kind": e.kind(), "step": null,
                   "fingerprint": null, "attempt": 0, "at_ms": e.at().0,
                   "payload": serde_json::to_value(e).unwrap()})
            .to_string(),
        );
    }
    let file = lev.dir.path().join(format!("{run}.jsonl"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = lev.run(&["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "import: {:?}", text(&out));
    run.to_string()
}

fn started() -> Event {
    Event::RunStarted {
        workflow_id: "swarm".into(),
        name: OBJECTIVE.into(),
        source: "swarm".into(),
        definition_hash: String::new(),
        inputs: BTreeMap::new(),
        seed: 7,
        workspace: None,
        steps: Vec::new(),
        flowmind: None,
        spread: false,
        step_of: None,
        push_to: None,
        at: Millis(1_000),
    }
}

fn finished(at: u64) -> Event {
    Event::RunFinished {
        status: RunStatus::Succeeded,
        outputs: BTreeMap::new(),
        error: None,
        usage: Usage::default(),
        at: Millis(at),
    }
}

/// A swarm run: a rejected first plan, a valid second one, accepted.
fn swarm_run(lev: &Lev) -> String {
    let mut bad = the_plan();
    bad["tasks"][1]["mode"] = json!("codr");
    import_run(
        lev,
        vec![
            started(),
            Event::PlanProposed {
                attempt: 1,
                plan: bad,
                problems: vec!["tasks[1].mode: unknown mode `codr` (did you mean `coder`?)".into()],
                at: Millis(2_000),
            },
            Event::PlanProposed {
                attempt: 2,
                plan: the_plan(),
                problems: vec![],
                at: Millis(3_000),
            },
            Event::PlanAccepted {
                objective: OBJECTIVE.into(),
                plan: the_plan(),
                edited: false,
                at: Millis(4_000),
            },
            finished(5_000),
        ],
    )
}

/// Replies to every agent; the design agent's report is recognisable, so
/// the test can see it reach the tasks that build on it.
fn agents() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let reply = if req.body.contains("Your task (`design`)") {
            "DESIGN-REPORT: POST /login, POST /refresh"
        } else {
            "done; every acceptance criterion is met"
        };
        OpenAiSse::new("test-model")
            .text(reply, 2)
            .usage(20, 10)
            .finish("stop")
            .reply()
    })
}

#[test]
fn a_saved_template_validates_and_runs() {
    let server = agents();
    let lev = Lev::new().with_openai(&server.base_url());
    let run = swarm_run(&lev);

    let out = lev.run(&["template", "save", &run, "Auth flow"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "saved workflows/auth-flow.yaml (3 steps); run it with `lev run workflows/auth-flow.yaml`\n"
    );
    let file = lev.workspace().join("workflows/auth-flow.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(yaml.contains("id: auth-flow\n"), "{yaml}");
    assert!(yaml.contains("${{ steps.design.outputs.text }}"), "{yaml}");

    let out = lev.run(&["validate", "workflows/auth-flow.yaml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "workflows/auth-flow.yaml: ok (3 steps)\n");

    let out = lev.run(&["run", "workflows/auth-flow.yaml", "--headless"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let new_run = run_id_from(&stdout).unwrap();
    let show = lev.show(&new_run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(show["steps"].as_array().unwrap().len(), 3, "{show}");
    // Both tasks that build on the design were briefed with its report and
    // with the objective (the workflow input's default).
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for task in ["build", "tests"] {
        let req = requests
            .iter()
            .find(|r| r.body.contains(&format!("Your task (`{task}`)")))
            .unwrap_or_else(|| panic!("no request for {task}"));
        assert!(
            req.body.contains("DESIGN-REPORT: POST /login"),
            "{}",
            req.body
        );
        assert!(req.body.contains(OBJECTIVE), "{}", req.body);
    }
}

#[test]
fn a_saved_template_is_never_overwritten_without_force() {
    let lev = Lev::new();
    let run = swarm_run(&lev);
    let dir = lev.dir.path().join("saved");
    let dir = dir.to_str().unwrap();
    let out = lev.run(&["template", "save", &run, "auth", "--dir", dir]);
    assert!(out.status.success(), "{:?}", text(&out));
    let file = lev.dir.path().join("saved/auth.yaml");
    std::fs::write(&file, "# mine\n").unwrap();

    let out = lev.run(&["template", "save", &run, "auth", "--dir", dir]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: {} already exists; pass --force to overwrite it, or choose another name\n",
            file.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");

    let out = lev.run(&["template", "save", &run, "auth", "--dir", dir, "--force"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("kind: workflow")
    );
}

#[test]
fn a_run_without_an_accepted_plan_has_no_template() {
    let lev = Lev::new();
    let run = import_run(&lev, vec![started(), finished(2_000)]);
    let out = lev.run(&["template", "save", &run, "auth"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: run {run} is a swarm whose plan was never accepted: it has no plan to save\n"
        )
    );
    assert!(!lev.workspace().join("workflows").exists());

    let out = lev.run(&["template", "save", "01NOSUCHRUN", "auth"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out).1, "error: no run 01NOSUCHRUN\n");

    let out = lev.run(&["template", "save", &run, "!!!"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("has no letters or digits"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn transcripts_show_the_plans() {
    let lev = Lev::new();
    let run = swarm_run(&lev);
    let replay = lev.replay(&run);
    assert!(
        replay.contains(
            "plan proposed (attempt 1): 3 tasks, 1 problem: tasks[1].mode: unknown mode `codr` (did you mean `coder`?)\n"
        ),
        "{replay}"
    );
    assert!(
        replay.contains("plan proposed (attempt 2): 3 tasks, valid\n"),
        "{replay}"
    );
    assert!(
        replay.contains("plan accepted: 3 tasks: Design the login API, build it, test it.\n"),
        "{replay}"
    );
    let out = lev.run(&["export", &run, "--format", "md"]);
    let md = text(&out).0;
    assert!(md.contains("\n## Plan\n"), "{md}");
    assert!(
        md.contains("- attempt 1: rejected\n  - tasks[1].mode: unknown mode"),
        "{md}"
    );
    assert!(
        md.contains("- [ ] **build** (coder, after design): Implement the login handler\n"),
        "{md}"
    );
}

/// Any succeeded run makes a template: the workflow it was pinned to (as
/// it was then, not as the file is now), renamed; a failed run does not.
#[test]
fn a_succeeded_plain_run_is_saved_as_the_workflow_it_ran() {
    let lev = Lev::new();
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: greet\nname: Greet\nsteps:\n  hello:\n    type: shell\n    run: echo pinned-text\n",
    );
    let out = lev.run_headless(&wf, &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap();
    // The file changes after the run; the template is what ran.
    std::fs::write(&wf, "version: 1\nkind: workflow\nid: greet\nname: Greet\nsteps:\n  hello:\n    type: shell\n    run: exit 3\n").unwrap();

    let out = lev.run(&["template", "save", &run, "Morning greeting"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "saved workflows/morning-greeting.yaml (1 step); run it with `lev run workflows/morning-greeting.yaml`\n"
    );
    let yaml =
        std::fs::read_to_string(lev.workspace().join("workflows/morning-greeting.yaml")).unwrap();
    assert!(yaml.contains("id: morning-greeting\n"), "{yaml}");
    assert!(yaml.contains("name: \"Morning greeting\"\n"), "{yaml}");
    assert!(yaml.contains("run: echo pinned-text"), "{yaml}");
    let out = lev.run(&["run", "workflows/morning-greeting.yaml", "--headless"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("pinned-text"), "{stdout}");

    // The changed file fails; its run makes no template.
    let out = lev.run_headless(&wf, &[]);
    assert!(!out.status.success());
    let failed = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let out = lev.run(&["template", "save", &failed, "broken"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert_eq!(
        text(&out).1,
        format!(
            "error: run {failed} is failed: only a succeeded run (or a swarm whose plan was accepted) makes a template\n"
        )
    );
}
