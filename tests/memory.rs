//! The memory bank end to end: agents of the real `lev` binary store and
//! search through the `memory_store` / `memory_search` tools against the
//! loopback LLM server; what one agent stores is found by a later agent and
//! a later run; `lev memory ls | search | rm` work with the journal free and
//! while a run holds it; a resumed run reuses recorded memory tool results.

mod support;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest, Reply};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// (step marker, turn) of an agent request: the prompt carries `[[step:NAME]]`.
fn request_key(req: &RecordedRequest) -> Option<(String, u32)> {
    let json = req.json.as_ref()?;
    let messages = json.get("messages")?.as_array()?;
    let first_user = messages.iter().find(|m| m["role"] == "user")?;
    let text = first_user["content"].as_str()?;
    let start = text.find("[[step:")? + 7;
    let end = start + text[start..].find("]]")?;
    let turn = 1 + messages.iter().filter(|m| m["role"] == "assistant").count() as u32;
    Some((text[start..end].to_string(), turn))
}

/// The content of the newest tool message in a request.
fn last_tool_result(req: &RecordedRequest) -> String {
    req.json.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

fn call(name: &str, args: Value) -> Reply {
    OpenAiSse::new("test-model")
        .tool_call(0, "call_1", name, &args.to_string(), 3)
        .usage(20, 5)
        .finish("tool_calls")
        .reply()
}

fn say(text: &str) -> Reply {
    OpenAiSse::new("test-model")
        .text(text, 3)
        .usage(20, 5)
        .finish("stop")
        .reply()
}

/// Agents by step name: `learn*` store a fact, `recall*` search for it and
/// answer with what they found (so the test sees what the model saw).
fn server() -> LlmServer {
    LlmServer::with(|req: &RecordedRequest| {
        let Some((step, turn)) = request_key(req) else {
            return Reply::json(400, &json!({"error": {"message": "no step marker"}}));
        };
        match (step.as_str(), turn) {
            ("learn", 1) => call(
                "memory_store",
                json!({"key": "token-store", "text": "Auth tokens are stored in SQLite, table `tokens`.", "tags": ["auth", "db"]}),
            ),
            ("learn_global", 1) => call(
                "memory_store",
                json!({"text": "Releases are cut on Fridays.", "tags": ["process"], "namespace": "global"}),
            ),
            ("learn" | "learn_global", _) => say("Remembered."),
            (s, 1) if s.starts_with("recall") => call(
                "memory_search",
                json!({"query": "where are auth tokens stored?"}),
            ),
            (s, _) if s.starts_with("recall") => say(&format!("FOUND: {}", last_tool_result(req))),
            _ => Reply::json(400, &json!({"error": {"message": "unknown step"}})),
        }
    })
}

fn run_yaml(lev: &Lev, name: &str, yaml: &str) -> (Output, String) {
    let path = lev.dir.path().join(name);
    std::fs::write(&path, yaml).unwrap();
    let ws = lev.workspace().display().to_string();
    let out = lev.run(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    let run = run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap_or_default();
    (out, run)
}

const LEARN_THEN_RECALL: &str = r#"
version: 1
kind: workflow
id: learn-recall
name: Learn then recall
steps:
  learn:
    mode: architect
    prompt: "[[step:learn]] Decide where auth tokens live and remember it."
  recall:
    needs: [learn]
    mode: coder
    prompt: "[[step:recall]] Find out where auth tokens live."
"#;

const RECALL_LATER: &str = r#"
version: 1
kind: workflow
id: recall-later
name: Recall later
steps:
  recall_later:
    mode: reviewer
    prompt: "[[step:recall_later]] Where do auth tokens live?"
"#;

/// The `memory_search` result a step got, from its `tool_finished` event.
fn search_result(lev: &Lev, run: &str, step: &str) -> String {
    lev.events(run)
        .iter()
        .find(|e| e["type"] == "tool_finished" && e["step"] == step && e["name"] == "memory_search")
        .unwrap_or_else(|| panic!("no memory_search in step {step} of run {run}"))["output"]
        .as_str()
        .unwrap()
        .to_string()
}

fn memory_ls_json(lev: &Lev, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["memory", "ls", "--json"];
    args.extend_from_slice(extra);
    let out = lev.run(&args);
    assert!(out.status.success(), "{:?}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn memory_stored_by_one_agent_is_found_by_another_and_by_a_later_run() {
    let server = server();
    let lev = Lev::new().with_openai(&server.base_url());

    let (out, run1) = run_yaml(&lev, "first.yaml", LEARN_THEN_RECALL);
    assert!(out.status.success(), "{:?}", text(&out));
    // The architect was offered the memory tools (its mode lists them).
    let first = &server.requests()[0];
    let tools: Vec<&str> = first.json.as_ref().unwrap()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"memory_store") && tools.contains(&"memory_search"),
        "{tools:?}"
    );

    // A later agent of the same run found it, labelled with its namespace and author.
    let found = search_result(&lev, &run1, "recall");
    assert!(
        found.contains("[project] key `token-store`")
            && found.contains("Auth tokens are stored in SQLite")
            && found.contains("mode architect")
            && found.contains("step learn"),
        "{found}"
    );
    // And the model saw it in its next request.
    let recall_2 = server
        .requests()
        .into_iter()
        .find(|r| request_key(r) == Some(("recall".into(), 2)))
        .unwrap();
    assert!(last_tool_result(&recall_2).contains("SQLite"));
    let show = lev.show(&run1);
    assert_eq!(show["status"], "succeeded", "{show}");

    // A later run in the same workspace, another mode: still found.
    let (out, run2) = run_yaml(&lev, "second.yaml", RECALL_LATER);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_ne!(run1, run2);
    let later = search_result(&lev, &run2, "recall_later");
    assert!(
        later.contains("token-store") && later.contains("SQLite"),
        "{later}"
    );
    let last = server.requests().last().unwrap().clone();
    assert!(
        last_tool_result(&last).contains("SQLite"),
        "the model of the later run must see the memory"
    );

    // The entry as stored: project namespace of the workspace, author, tags.
    let entries = memory_ls_json(&lev, &[]);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    let ws = lev.workspace().canonicalize().unwrap();
    assert_eq!(e["namespace"], format!("project:{}", ws.display()));
    assert_eq!(e["key"], "token-store");
    assert_eq!(e["tags"], json!(["auth", "db"]));
    assert_eq!(e["author"]["run"], run1.as_str());
    assert_eq!(e["author"]["step"], "learn");
    assert_eq!(e["author"]["mode"], "architect");
}

const LEARN_BOTH: &str = r#"
version: 1
kind: workflow
id: learn-both
name: Learn both
steps:
  learn:
    mode: architect
    prompt: "[[step:learn]] Remember the token store."
  learn_global:
    mode: architect
    prompt: "[[step:learn_global]] Remember the release day."
"#;

#[test]
fn memory_cli_lists_searches_and_removes() {
    let server = server();
    let lev = Lev::new().with_openai(&server.base_url());
    let (out, _) = run_yaml(&lev, "both.yaml", LEARN_BOTH);
    assert!(out.status.success(), "{:?}", text(&out));

    let out = lev.run(&["memory", "ls"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("global (1)")
            && stdout.contains("project:")
            && stdout.contains("token-store")
            && stdout.contains("[auth, db]")
            && stdout.contains("Releases are cut on Fridays."),
        "{stdout}"
    );
    // One namespace only.
    let global = memory_ls_json(&lev, &["--namespace", "global"]);
    assert_eq!(global.len(), 1);
    assert_eq!(global[0]["scope"], "global");
    // `project` means the current directory's project (the workspace here).
    let project = memory_ls_json(&lev, &["--namespace", "project"]);
    assert_eq!(project.len(), 1);
    assert_eq!(project[0]["key"], "token-store");

    // Ranked search, with a tag filter, text and JSON.
    let out = lev.run(&["memory", "search", "where", "are", "tokens"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.starts_with("1. project:") && stdout.contains("token-store  score "),
        "{stdout}"
    );
    let out = lev.run(&["memory", "search", "fridays", "--json"]);
    let hits: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["namespace"], "global");
    assert!(hits[0]["score"].as_f64().unwrap() > 0.0);
    let out = lev.run(&["memory", "search", "tokens", "--tag", "process"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no memories match"),
        "{:?}",
        text(&out)
    );
    let out = lev.run(&["memory", "search", "--tag", "process"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Releases are cut"),
        "{:?}",
        text(&out)
    );

    // rm by key (found in its one namespace), then it is gone.
    let out = lev.run(&["memory", "rm", "token-store"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed memory `token-store`"));
    let out = lev.run(&["memory", "search", "tokens"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no memories match"));
    let out = lev.run(&["memory", "rm", "token-store"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("no memory `token-store`"),
        "{:?}",
        text(&out)
    );
    let out = lev.run(&["memory", "ls", "--namespace", "team"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("unknown namespace"),
        "{:?}",
        text(&out)
    );
    assert_eq!(memory_ls_json(&lev, &[]).len(), 1);
}

#[test]
fn memory_cli_works_while_a_run_holds_the_journal() {
    let server = server();
    let lev = Lev::new().with_openai(&server.base_url());
    let yaml = r#"
version: 1
kind: workflow
id: hold
name: Hold
steps:
  learn:
    mode: architect
    prompt: "[[step:learn]] Remember the token store."
  wait:
    needs: [learn]
    type: shell
    timeout: 60s
    run: while [ ! -f go ]; do sleep 0.05; done; echo released
"#;
    let path = lev.dir.path().join("hold.yaml");
    std::fs::write(&path, yaml).unwrap();
    let ws = lev.workspace().display().to_string();
    let mut child = lev.spawn(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);
    // Wait (through the host socket) until the entry is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let entries = loop {
        let entries = memory_ls_json(&lev, &[]);
        if !entries.is_empty() {
            break entries;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent never stored its memory");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(entries[0]["key"], "token-store");
    // The run is still going, so these all go through its control socket.
    assert!(child.try_wait().unwrap().is_none());
    let out = lev.run(&["memory", "search", "sqlite"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("token-store"),
        "{:?}",
        text(&out)
    );
    let out = lev.run(&["memory", "rm", "token-store", "--namespace", "project"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(memory_ls_json(&lev, &[]).is_empty());
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run was still holding the journal"
    );

    std::fs::write(lev.workspace().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(memory_ls_json(&lev, &[]).is_empty());
}

/// In-process: a run whose journal already holds the memory tools' results
/// (as after a crash) is resumed; the recorded results are reused, so the
/// deleted entry is not stored again and no tool runs a second time.
#[tokio::test]
async fn a_resumed_run_reuses_recorded_memory_results() {
    use lev::protocol::{Event, Notice, RunStatus};
    use lev::spec::{self, ModeRegistry};
    use lev::workflow::{self, EngineDeps, Recorder, RunOptions};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    let dir = tempfile::tempdir().unwrap();
    let journal = support::journal::open(dir.path()).await;
    let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let ws = ws.canonicalize().unwrap();
    let cassette = ws.join("c.yaml");
    std::fs::write(
        &cassette,
        r#"replies:
  - { step: learn, turn: 1, tool_calls: [{ name: memory_store, arguments: { key: k, text: "the cache is redis" } }], repeat: true }
  - { step: learn, turn: 2, tool_calls: [{ name: memory_search, arguments: { query: cache } }], repeat: true }
  - { step: learn, turn: 3, text: "done", repeat: true }
"#,
    )
    .unwrap();
    let wf_path = ws.join("wf.yaml");
    std::fs::write(
        &wf_path,
        "version: 1\nkind: workflow\nid: r\nname: R\nsteps:\n  learn:\n    mode: architect\n    prompt: Learn.\n",
    )
    .unwrap();
    let wf = spec::load_workflow(&wf_path, &modes).unwrap();
    let deps = || {
        let mut config = lev::config::Config::default();
        config.provider =
            lev::config::ProviderSettings::of_kind(lev::config::ProviderKind::Scripted);
        config.provider.cassette = Some(cassette.clone());
        Arc::new(EngineDeps {
            journal: journal.clone(),
            provider: lev::llm::build_provider(&config).map_err(|e| e.to_string()),
            default_model: None,
            profiles: Default::default(),
            modes: modes.clone(),
            workspace: ws.clone(),
            options: RunOptions::default(),
        })
    };
    let drive = |run: lev::protocol::RunId, start| {
        let deps = deps();
        async move {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let (_ops_tx, ops_rx) = mpsc::unbounded_channel();
            let outcome = workflow::drive(deps, run, start, ops_rx, vec![tx])
                .await
                .unwrap();
            let mut events = Vec::new();
            while let Ok(n) = rx.try_recv() {
                if let Notice::Event(r) = n {
                    events.push(r.event);
                }
            }
            (outcome, events)
        }
    };

    // A whole run: it stores, then searches, then answers.
    let run1 = workflow::start_run(&journal, &wf, BTreeMap::new(), Some(&ws))
        .await
        .unwrap();
    let (done, _) = drive(run1.clone(), workflow::Start::Fresh).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    let recorded = workflow::read_run(&journal, &run1).await.unwrap();
    let project = lev::memory::Namespace::project(&ws).key();
    assert!(journal.memory_get(&project, "k").await.unwrap().is_some());

    // A second run holding the first one's events up to the search's result,
    // as if lev had been killed right after it.
    let run2 = workflow::start_run(&journal, &wf, BTreeMap::new(), Some(&ws))
        .await
        .unwrap();
    let meta = journal.run(&run2).await.unwrap().unwrap();
    let rec = Recorder::new(journal.clone(), run2.clone(), meta.last_seq, Vec::new());
    for r in recorded.iter().skip(1) {
        rec.record(r.event.clone()).await.unwrap();
        if matches!(&r.event, Event::ToolFinished { name, .. } if name == "memory_search") {
            break;
        }
    }
    journal.memory_delete(&project, "k").await.unwrap();

    let (resumed, events) = drive(run2.clone(), workflow::Start::Resume).await;
    assert_eq!(resumed.status, RunStatus::Succeeded, "{resumed:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ToolStarted { .. } | Event::ToolFinished { .. })),
        "recorded tool results must be reused: {events:?}"
    );
    assert!(
        journal.memory_get(&project, "k").await.unwrap().is_none(),
        "the store must not run again on resume"
    );
}
