//! FlowMind re-plans a stalled swarm task, with the real binary against the
//! loopback LLM server: a task that keeps calling the same tool is told so,
//! then stopped; the orchestrator is asked for a revised plan of the
//! unfinished work (told what finished and what stalled), the revision is
//! reviewed (`--yes`) and its tasks run in place of the stalled one and
//! the one that needed it. A swarm killed while the orchestrator revises
//! resumes into the same revision, deciding nothing twice.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::kill::{kill9, only_run, wait_for};
use support::lev::{Lev, of_type, run_id_from};
use support::llm_server::{Action, LlmServer, OpenAiSse, RecordedRequest, Reply};

/// The first user message of a request: the agent's brief.
fn brief(req: &RecordedRequest) -> String {
    req.brief()
}

/// What a request is: `plan`, `replan` (the orchestrator), or the task id.
fn who(req: &RecordedRequest) -> String {
    let b = brief(req);
    if b.contains("Plan this objective") {
        return "plan".into();
    }
    if b.contains("Plan the unfinished work again") {
        return "replan".into();
    }
    match b.find("Your task (`") {
        Some(i) => {
            let rest = &b[i + 12..];
            rest[..rest.find('`').unwrap_or(0)].to_string()
        }
        None => "unknown".into(),
    }
}

fn say(text: &str) -> Reply {
    OpenAiSse::new("test-model")
        .text(text, 3)
        .usage(30, 10)
        .finish("stop")
        .reply()
}

fn task(id: &str, mode: &str, needs: &[&str]) -> Value {
    json!({"id": id, "title": format!("do {id}"), "mode": mode, "needs": needs,
           "acceptance": [format!("{id} is done")], "files": []})
}

/// `first`, then `stuck` (which reads the same file forever, whatever it
/// is told), then `after`; the revision plans `fix` and `check` instead.
/// The revised plan's answer waits while `hang` is set.
fn server(hang: Arc<AtomicBool>) -> LlmServer {
    server_with(hang, None)
}

/// `server`, whose first revised plan is `first_revision` when given (the
/// orchestrator is asked again with what was wrong with it).
fn server_with(hang: Arc<AtomicBool>, first_revision: Option<String>) -> LlmServer {
    let revisions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let plan = json!({"summary": "the team's plan", "tasks": [
        task("first", "architect", &[]),
        task("stuck", "coder", &["first"]),
        task("after", "reviewer", &["stuck"]),
    ]})
    .to_string();
    let revised = json!({"summary": "around the stall", "tasks": [
        task("fix", "coder", &["first"]),
        task("check", "reviewer", &["fix"]),
    ]})
    .to_string();
    LlmServer::with(move |req: &RecordedRequest| match who(req).as_str() {
        "plan" => say(&plan),
        "replan" if hang.load(Ordering::SeqCst) => say(&revised).insert(0, Action::Delay(60_000)),
        "replan" => match (&first_revision, revisions.fetch_add(1, Ordering::SeqCst)) {
            (Some(bad), 0) => say(bad),
            _ => say(&revised),
        },
        "stuck" => {
            let n = req.json.as_ref().unwrap()["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "assistant")
                .count();
            OpenAiSse::new("test-model")
                .tool_call(
                    0,
                    &format!("call_{n}"),
                    "read_file",
                    r#"{"path":"notes.txt"}"#,
                    1,
                )
                .usage(10, 5)
                .finish("tool_calls")
                .reply()
        }
        id => say(&format!("{id} done")),
    })
}

fn lev_for(server: &LlmServer) -> Lev {
    let lev = Lev::new().with_openai(&server.base_url());
    std::fs::write(lev.workspace().join("notes.txt"), "nothing here\n").unwrap();
    lev
}

fn asked(server: &LlmServer, id: &str) -> usize {
    server.requests().iter().filter(|r| who(r) == id).count()
}

#[test]
fn a_stalled_swarm_task_is_re_planned_and_the_revised_plan_runs() {
    let server = server(Arc::new(AtomicBool::new(false)));
    let lev = lev_for(&server);
    let out = lev.run(&["workflow", "ship it", "--headless", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_id_from(&stdout).unwrap();
    let events = lev.events(&run);

    let decided = of_type(&events, "flowmind_decided");
    let levels: Vec<&str> = decided
        .iter()
        .map(|e| e["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["instruct", "replan"], "{stdout}");
    assert!(decided.iter().all(|e| e["step"] == "stuck"));
    // Journaled, then the task stopped, then the revision.
    let seq = |e: &Value| e["_seq"].as_u64().unwrap();
    let cancelled = of_type(&events, "step_cancelled");
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert_eq!(cancelled[0]["step"], "stuck");
    assert!(seq(&cancelled[0]) > seq(&decided[1]));
    let revised = of_type(&events, "plan_revised");
    assert_eq!(revised.len(), 1, "{stdout}");
    assert_eq!(revised[0]["stalled"], "stuck");
    assert_eq!(revised[0]["replaces"], json!(["stuck", "after"]));
    assert!(seq(&revised[0]) > seq(&cancelled[0]));

    // The orchestrator was told what finished and what stalled.
    let replan = server
        .requests()
        .into_iter()
        .find(|r| who(r) == "replan")
        .expect("a re-plan request");
    let told = brief(&replan);
    assert!(told.contains("`first` (succeeded)"), "{told}");
    assert!(told.contains("first done"), "{told}");
    assert!(told.contains("Task `stuck` (do stuck) stalled"), "{told}");
    assert!(told.contains("called with the same arguments"), "{told}");
    assert!(told.contains("- `after`: do after"), "{told}");

    // The revision ran; what it replaced never did.
    assert_eq!(asked(&server, "fix"), 1);
    assert_eq!(asked(&server, "check"), 1);
    assert_eq!(asked(&server, "after"), 0);
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    let tasks = &show["outputs"]["tasks"];
    assert_eq!(tasks["fix"]["result"], "fix done", "{show}");
    assert_eq!(tasks["check"]["status"], "succeeded", "{show}");
    assert!(tasks.get("stuck").is_none(), "{show}");
    assert_eq!(show["outputs"]["replaced"], json!(["after", "stuck"]));
    assert!(
        stdout.contains("FlowMind re-plans: stuck stalled"),
        "{stdout}"
    );
    assert!(stdout.contains("plan revised (re-plan 1"), "{stdout}");

    // Replayed from the journal alone, the re-plan reads the same.
    let replayed = lev.replay(&run);
    assert!(
        replayed.contains("FlowMind re-plans: stuck stalled"),
        "{replayed}"
    );
    assert!(
        replayed
            .contains("plan revised (re-plan 1, `stuck` stalled): 2 tasks replace stuck, after"),
        "{replayed}"
    );

    // Saved as a template, the swarm is the plan that ran.
    let out = lev.run(&["template", "save", &run, "shipped"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = std::fs::read_to_string(lev.workspace().join("workflows/shipped.yaml")).unwrap();
    for id in ["first", "fix", "check"] {
        assert!(yaml.contains(&format!("\n  {id}:\n")), "{id}: {yaml}");
    }
    assert!(!yaml.contains("stuck") && !yaml.contains("after"), "{yaml}");
}

#[test]
fn a_swarm_killed_while_it_revises_resumes_into_the_same_revision() {
    let hang = Arc::new(AtomicBool::new(true));
    let server = server(hang.clone());
    let lev = lev_for(&server);
    let mut child = lev.spawn(&["workflow", "ship it", "--headless", "--yes"]);
    wait_for("the re-plan request", Duration::from_secs(60), || {
        asked(&server, "replan") > 0
    });
    kill9(&mut child);
    hang.store(false, Ordering::SeqCst);
    let run = only_run(&lev).unwrap();
    let stuck_before = asked(&server, "stuck");

    let out = lev.run(&["resume", &run, "--headless", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let events = lev.events(&run);
    let levels: Vec<String> = of_type(&events, "flowmind_decided")
        .iter()
        .map(|e| e["level"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(levels, ["instruct", "replan"], "decided again: {stdout}");
    assert_eq!(of_type(&events, "plan_revised").len(), 1);
    // The stalled task never ran again; the revision ran once.
    assert_eq!(asked(&server, "stuck"), stuck_before);
    assert_eq!(asked(&server, "replan"), 2);
    assert_eq!(asked(&server, "fix"), 1);
    assert_eq!(asked(&server, "after"), 0);
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    assert_eq!(show["outputs"]["replaced"], json!(["after", "stuck"]));
}

#[test]
fn a_revision_that_reuses_an_id_or_builds_on_the_stalled_task_is_asked_again() {
    let bad = json!({"summary": "again", "tasks": [
        task("after", "coder", &["stuck"]),
    ]})
    .to_string();
    let server = server_with(Arc::new(AtomicBool::new(false)), Some(bad));
    let lev = lev_for(&server);
    let out = lev.run(&["workflow", "ship it", "--headless", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    // Asked again, told what was wrong.
    let asked: Vec<RecordedRequest> = server
        .requests()
        .into_iter()
        .filter(|r| who(r) == "replan")
        .collect();
    assert_eq!(asked.len(), 2, "{stdout}");
    let again = serde_json::to_string(&asked[1].json).unwrap();
    assert!(
        again.contains("`after` is already a task of this run"),
        "{again}"
    );
    assert!(again.contains("did not succeed or is replaced"), "{again}");
    let run = run_id_from(&stdout).unwrap();
    let revised = of_type(&lev.events(&run), "plan_revised");
    assert_eq!(revised.len(), 1);
    assert_eq!(revised[0]["plan"]["tasks"][0]["id"], "fix");
}
