//! lev's agents using the tools of MCP servers, end to end: the real `lev`
//! binary, the official reference server
//! (`@modelcontextprotocol/server-everything`, installed from npm by
//! scripts/test) over stdio and over streamable HTTP, and a loopback
//! OpenAI-compatible server whose replies call the tools. Killed servers,
//! a killed lev and resume are checked against what the server was sent.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::kill::{kill9, only_run, wait_for};
use support::lev::{Lev, of_type};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest, Reply};

/// The reference server's entry point, from `LEV_TEST_MCP_EVERYTHING`
/// (scripts/test sets it). Without it the test is skipped, except in CI.
fn everything() -> Option<PathBuf> {
    match std::env::var("LEV_TEST_MCP_EVERYTHING") {
        Ok(path) if Path::new(&path).is_file() => Some(PathBuf::from(path)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the MCP reference server is required in CI (scripts/test installs it and sets LEV_TEST_MCP_EVERYTHING)"
            );
            None
        }
    }
}

/// A stdio server entry for the workflow: the reference server behind a
/// `tee` that logs every message lev sent it (`calls.log`). Every process
/// of it (the script, `tee`, `node`) has the test's marker in its command
/// line, so the test can find and kill them all.
fn stdio_entry(lev: &Lev, everything: &Path) -> String {
    let dir = server_dir(lev);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("server.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntee -a '{}' | exec node '{}' stdio '{}'\n",
            dir.join("calls.log").display(),
            everything.display(),
            marker(lev)
        ),
    )
    .unwrap();
    format!(
        "mcp_servers:\n  everything:\n    command: sh\n    args: ['{}']\n",
        script.display()
    )
}

/// Where the stdio server's script and log are: a folder named by the marker.
fn server_dir(lev: &Lev) -> PathBuf {
    lev.dir.path().join(marker(lev))
}

/// Fails with what lev printed unless it exited 0.
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What marks this test's server processes.
fn marker(lev: &Lev) -> String {
    format!(
        "lev-mcp-test-{}",
        lev.dir.path().file_name().unwrap().to_string_lossy()
    )
}

/// The `tools/call` requests lev sent the stdio server, by tool name.
fn calls_sent(lev: &Lev, tool: &str) -> usize {
    let log = std::fs::read_to_string(server_dir(lev).join("calls.log")).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
        .count()
}

fn server_running(lev: &Lev) -> bool {
    Command::new("pgrep")
        .args(["-f", &marker(lev)])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn kill_server(lev: &Lev) {
    let status = Command::new("pkill")
        .args(["-9", "-f", &marker(lev)])
        .status()
        .unwrap();
    assert!(status.success(), "no server process to kill");
}

fn workflow(servers: &str) -> String {
    format!(
        "version: 1\nkind: workflow\nid: mcp-use\n{servers}steps:\n  work:\n    mode: mcp\n    prompt: use the tools\n"
    )
}

/// The turn a request is for: 1 + the assistant messages it carries.
fn turn_of(req: &RecordedRequest) -> usize {
    let messages = req.json.as_ref().unwrap()["messages"].as_array().unwrap();
    1 + messages.iter().filter(|m| m["role"] == "assistant").count()
}

/// The tool messages of a request, by the call id they answer.
fn tool_results(req: &RecordedRequest) -> Vec<(String, String)> {
    let messages = req.json.as_ref().unwrap()["messages"].as_array().unwrap();
    messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn offered_tools(req: &RecordedRequest) -> Vec<String> {
    req.json.as_ref().unwrap()["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| {
                    t["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A reply calling `calls` (name, JSON arguments) as `call_<turn>_<n>`.
fn calling(turn: usize, calls: &[(&str, Value)]) -> Reply {
    let mut sse = OpenAiSse::new("test-model");
    for (i, (name, args)) in calls.iter().enumerate() {
        sse = sse.tool_call(
            i as u32,
            &format!("call_{turn}_{}", i + 1),
            name,
            &args.to_string(),
            2,
        );
    }
    sse.finish("tool_calls").reply()
}

fn answering(text: &str) -> Reply {
    OpenAiSse::new("test-model")
        .text(text, 2)
        .finish("stop")
        .reply()
}

/// Echo and a sum, then a long operation (with progress) and a call with
/// bad arguments, then an answer.
fn script(req: &RecordedRequest) -> Reply {
    match turn_of(req) {
        1 => calling(
            1,
            &[
                ("everything__echo", json!({"message": "hello from lev"})),
                ("everything__get-sum", json!({"a": 2, "b": 40})),
            ],
        ),
        2 => calling(
            2,
            &[
                (
                    "everything__trigger-long-running-operation",
                    json!({"duration": 1, "steps": 2}),
                ),
                ("everything__get-sum", json!({"a": "two"})),
            ],
        ),
        _ => answering("done with the tools"),
    }
}

/// What every transport must give: the tools offered by their MCP names
/// next to the built-in ones, results fed back, an error the model can
/// read, and all of it journaled.
fn check_a_run_that_used_the_tools(lev: &Lev, llm: &LlmServer) -> String {
    let requests = llm.requests();
    assert_eq!(
        requests.len(),
        3,
        "{:?}",
        requests.iter().map(|r| r.brief()).collect::<Vec<_>>()
    );
    let offered = offered_tools(&requests[0]);
    for name in [
        "read_file",
        "everything__echo",
        "everything__get-sum",
        "everything__trigger-long-running-operation",
    ] {
        assert!(
            offered.iter().any(|o| o == name),
            "{name} not offered: {offered:?}"
        );
    }
    // The mode denies run_shell; MCP tools do not bring it back.
    assert!(!offered.iter().any(|o| o == "run_shell"), "{offered:?}");
    let first = tool_results(&requests[1]);
    assert_eq!(first[0].0, "call_1_1");
    assert!(first[0].1.contains("Echo: hello from lev"), "{first:?}");
    assert!(first[1].1.contains("is 42"), "{first:?}");
    let second = tool_results(&requests[2]);
    assert!(
        second[2].1.contains("Long running operation completed"),
        "{second:?}"
    );
    assert!(!second[3].1.is_empty(), "{second:?}");

    let run = only_run(lev).unwrap();
    let events = lev.events(&run);
    let started = of_type(&events, "mcp_server_started");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["restart"], 0);
    let listed = of_type(&events, "mcp_tools_listed");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["step"], "work");
    let finished = of_type(&events, "tool_finished");
    let bad_sum = finished
        .iter()
        .find(|e| {
            e["name"] == "everything__get-sum" && e["arguments"].as_str().unwrap().contains("two")
        })
        .unwrap();
    assert_eq!(bad_sum["is_error"], true, "{bad_sum}");
    let good_sum = finished
        .iter()
        .find(|e| {
            e["name"] == "everything__get-sum" && !e["arguments"].as_str().unwrap().contains("two")
        })
        .unwrap();
    assert_eq!(good_sum["is_error"], false, "{good_sum}");
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    run
}

#[test]
fn an_agent_uses_a_stdio_servers_tools_declared_by_its_workflow() {
    let Some(everything) = everything() else {
        return;
    };
    let llm = LlmServer::with(script);
    let lev = Lev::new().with_openai(&llm.base_url());
    let wf = lev.write_workflow(&workflow(&stdio_entry(&lev, &everything)));
    let out = lev.run_headless(&wf, &[]);
    succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run = check_a_run_that_used_the_tools(&lev, &llm);
    assert!(stdout.contains("MCP server everything started"), "{stdout}");
    // Each call was sent once.
    assert_eq!(calls_sent(&lev, "echo"), 1);
    assert_eq!(calls_sent(&lev, "get-sum"), 2);
    // The server went with the run.
    wait_for("the server to stop", Duration::from_secs(20), || {
        !server_running(&lev)
    });
    let transcript = lev.replay(&run);
    assert!(transcript.contains("everything__echo"), "{transcript}");
}

/// The reference server over streamable HTTP on a free loopback port.
struct HttpServer {
    child: Child,
    url: String,
}

impl HttpServer {
    fn start(everything: &Path) -> HttpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("node")
            .arg(everything)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the HTTP MCP server", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_agent_uses_a_streamable_http_servers_tools_from_the_config() {
    let Some(everything) = everything() else {
        return;
    };
    let server = HttpServer::start(&everything);
    let llm = LlmServer::with(script);
    let lev = Lev::new()
        .with_openai(&llm.base_url())
        .with_env("LEV_TEST_MCP_TOKEN", "Bearer not-a-secret-token");
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!(
            "mcp_servers:\n  everything:\n    url: {}\n    headers_env: {{ Authorization: LEV_TEST_MCP_TOKEN }}\n",
            server.url
        ),
    )
    .unwrap();
    let wf = lev.write_workflow(&workflow(""));
    let out = lev.run_headless(&wf, &[]);
    succeeded(&out);
    let run = check_a_run_that_used_the_tools(&lev, &llm);
    // The header's value never reaches the journal.
    let export = lev.run(&["export", &run]);
    assert!(!String::from_utf8_lossy(&export.stdout).contains("not-a-secret-token"));
}

#[test]
fn a_server_killed_during_a_call_is_an_error_for_the_model_and_starts_again() {
    let Some(everything) = everything() else {
        return;
    };
    let llm = LlmServer::with(|req| match turn_of(req) {
        1 => calling(
            1,
            &[(
                "everything__trigger-long-running-operation",
                json!({"duration": 30, "steps": 30}),
            )],
        ),
        2 => calling(2, &[("everything__echo", json!({"message": "again"}))]),
        _ => answering("recovered"),
    });
    let lev = Lev::new().with_openai(&llm.base_url());
    let wf = lev.write_workflow(&workflow(&stdio_entry(&lev, &everything)));
    let child = lev.spawn_headless(&wf, &[]);
    wait_for(
        "the long call to reach the server",
        Duration::from_secs(60),
        || calls_sent(&lev, "trigger-long-running-operation") == 1,
    );
    kill_server(&lev);
    let out = child.wait_with_output().unwrap();
    succeeded(&out);
    let requests = llm.requests();
    let failed = tool_results(&requests[1]);
    assert!(failed[0].1.contains("everything"), "{failed:?}");
    let again = tool_results(&requests[2]);
    assert!(again[1].1.contains("Echo: again"), "{again:?}");
    let run = only_run(&lev).unwrap();
    let events = lev.events(&run);
    assert_eq!(of_type(&events, "mcp_server_down").len(), 1, "{events:?}");
    let started = of_type(&events, "mcp_server_started");
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(started[1]["restart"], 1);
    let finished = of_type(&events, "tool_finished");
    assert_eq!(finished[0]["is_error"], true, "{:?}", finished[0]);
    // The killed call was not sent again behind the model's back.
    assert_eq!(calls_sent(&lev, "trigger-long-running-operation"), 1);
}

#[test]
fn a_resumed_agent_reuses_recorded_results_and_is_offered_the_recorded_tools() {
    let Some(everything) = everything() else {
        return;
    };
    let llm = LlmServer::with(|req| match turn_of(req) {
        1 => calling(1, &[("everything__echo", json!({"message": "once"}))]),
        2 => calling(
            2,
            &[(
                "everything__trigger-long-running-operation",
                json!({"duration": 2, "steps": 2}),
            )],
        ),
        _ => answering("resumed and done"),
    });
    let lev = Lev::new().with_openai(&llm.base_url());
    let wf = lev.write_workflow(&workflow(&stdio_entry(&lev, &everything)));
    let mut child = lev.spawn_headless(&wf, &[]);
    wait_for(
        "the long call to reach the server",
        Duration::from_secs(60),
        || calls_sent(&lev, "trigger-long-running-operation") == 1,
    );
    kill9(&mut child);
    // The server went with the lev that started it.
    wait_for(
        "the server to stop with lev",
        Duration::from_secs(20),
        || !server_running(&lev),
    );
    let run = only_run(&lev).unwrap();
    let out = lev.run(&["resume", &run, "--headless"]);
    succeeded(&out);
    // The journaled turn is not sent again; the call that was running is
    // (the server says it is idempotent).
    assert_eq!(calls_sent(&lev, "echo"), 1);
    assert_eq!(calls_sent(&lev, "trigger-long-running-operation"), 2);
    let events = lev.events(&run);
    assert_eq!(
        of_type(&events, "mcp_tools_listed").len(),
        1,
        "listed again on resume"
    );
    assert!(of_type(&events, "divergence").is_empty());
    assert_eq!(lev.show(&run)["status"], "succeeded");
    let last = llm.requests().last().cloned().unwrap();
    assert!(tool_results(&last)[0].1.contains("Echo: once"));
}

#[test]
fn a_server_that_cannot_start_fails_the_step_saying_why() {
    let llm = LlmServer::with(|_| answering("never asked"));
    let lev = Lev::new().with_openai(&llm.base_url());
    let wf = lev.write_workflow(&workflow(
        "mcp_servers:\n  ghost:\n    command: /nonexistent/mcp-server\n",
    ));
    let out = lev.run_headless(&wf, &[]);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("MCP server `ghost`"), "{text}");
    assert!(text.contains("/nonexistent/mcp-server"), "{text}");
    assert_eq!(llm.request_count(), 0);
}

#[test]
fn a_mode_includes_a_servers_resource_and_prompt_in_its_agents_context() {
    let Some(everything) = everything() else {
        return;
    };
    let llm = LlmServer::with(|_| answering("read them"));
    let lev = Lev::new().with_openai(&llm.base_url());
    let modes = lev.workspace().join(".lev/modes");
    std::fs::create_dir_all(&modes).unwrap();
    std::fs::write(
        modes.join("reader.yaml"),
        "version: 1\nkind: mode\nid: reader\nname: Reader\nrole: Read what you are given.\ntools:\n  allow: [\"mcp:everything/echo\"]\ncontext:\n  include:\n    - mcp://everything/demo://resource/static/document/features.md\n    - mcp://everything/prompt/simple-prompt\n",
    )
    .unwrap();
    let wf = lev.write_workflow(&format!(
        "version: 1\nkind: workflow\nid: reading\n{}steps:\n  read:\n    mode: reader\n    prompt: summarise\n",
        stdio_entry(&lev, &everything)
    ));
    let out = lev.run_headless(&wf, &[]);
    succeeded(&out);
    let requests = llm.requests();
    let first = requests[0].json.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "user")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first.starts_with("summarise"), "{first}");
    assert!(
        first.contains("From mcp://everything/demo://resource/static/document/features.md:"),
        "{first}"
    );
    assert!(first.contains("Everything Server - Features"), "{first}");
    assert!(
        first.contains("[user] This is a simple prompt without arguments."),
        "{first}"
    );
    // The mode allows one tool of the server: only it is offered.
    let offered = offered_tools(&requests[0]);
    assert!(
        offered.contains(&"everything__echo".to_string()),
        "{offered:?}"
    );
    assert!(
        !offered.iter().any(|t| t == "everything__get-sum"),
        "{offered:?}"
    );
}

/// One call of the tool whose server asks the user for a form, then an
/// answer quoting what the tool said.
fn eliciting(req: &RecordedRequest) -> Reply {
    match turn_of(req) {
        1 => calling(1, &[("everything__trigger-elicitation-request", json!({}))]),
        _ => answering(&format!("the tool said: {}", tool_results(req)[0].1)),
    }
}

#[test]
fn a_servers_question_is_the_users_to_answer_and_unanswered_it_declines() {
    let Some(everything) = everything() else {
        return;
    };
    // Answered: the fields given, the others at their defaults.
    let llm = LlmServer::with(eliciting);
    let lev = Lev::new().with_openai(&llm.base_url());
    let wf = lev.write_workflow(&workflow(&stdio_entry(&lev, &everything)));
    let out = lev.run_headless(
        &wf,
        &[
            "--answer",
            "work#1.t1.1.elicit1=name=Ada Lovelace; check=yes; integer=7",
        ],
    );
    succeeded(&out);
    let said = &tool_results(&llm.requests()[1])[0].1;
    assert!(said.contains("- Name: Ada Lovelace"), "{said}");
    assert!(said.contains("- Agreed to terms: true"), "{said}");
    assert!(said.contains("- Favorite Integer: 7"), "{said}");
    let run = only_run(&lev).unwrap();
    let events = lev.events(&run);
    let asked = of_type(&events, "question_asked");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["step"], "work");
    let ask = asked[0]["ask"].as_str().unwrap();
    assert!(ask.contains("MCP server `everything` asks"), "{ask}");
    assert!(ask.contains("- name* (text)"), "{ask}");

    // Not answered (a headless run with no answer for it): declined.
    let llm = LlmServer::with(eliciting);
    let lev = Lev::new().with_openai(&llm.base_url());
    let wf = lev.write_workflow(&workflow(&stdio_entry(&lev, &everything)));
    let out = lev.run_headless(&wf, &[]);
    succeeded(&out);
    let said = &tool_results(&llm.requests()[1])[0].1;
    assert!(said.contains("User declined"), "{said}");
}

/// The official MCP Python SDK's interpreter (scripts/test installs it and
/// sets `LEV_TEST_MCP_PYTHON`); skipped without it, except in CI.
fn python_with_mcp() -> Option<String> {
    let path = std::env::var("LEV_TEST_MCP_PYTHON")
        .ok()
        .filter(|p| Path::new(p).exists());
    assert!(
        path.is_some() || std::env::var_os("CI").is_none(),
        "the MCP Python SDK is required in CI (scripts/test installs it and sets LEV_TEST_MCP_PYTHON)"
    );
    path
}

#[test]
fn a_call_that_may_have_had_its_effect_is_not_sent_again_without_a_decision() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let llm = LlmServer::with(|req| match turn_of(req) {
        1 => calling(1, &[("slow__append", json!({"text": "one line"}))]),
        _ => answering(&format!("the tool said: {}", tool_results(req)[0].1)),
    });
    let lev = Lev::new().with_openai(&llm.base_url());
    let dir = lev.dir.path();
    let (started, log) = (dir.join("started.log"), dir.join("appended.log"));
    let wf = lev.write_workflow(&workflow(&format!(
        "mcp_servers:\n  slow:\n    command: '{python}'\n    args: ['{}']\n    env: {{ SLOW_STARTED: '{}', SLOW_LOG: '{}' }}\n",
        support::lev::repo_file("tests/fixtures/mcp_slow_server.py").display(),
        started.display(),
        log.display()
    )));
    let mut child = lev.spawn_headless(&wf, &[]);
    wait_for(
        "the call to reach the server",
        Duration::from_secs(60),
        || started.exists(),
    );
    kill9(&mut child);
    let run = only_run(&lev).unwrap();
    // The server does not say the tool is idempotent: the run pauses.
    let out = lev.run(&["resume", &run, "--headless"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(lev.show(&run)["status"], "paused");
    let out = lev.run(&["resume", &run, "--headless", "--in-flight", "skip"]);
    succeeded(&out);
    // Sent once, never again; the model was told it was not run again.
    let sent = std::fs::read_to_string(&started).unwrap();
    assert_eq!(sent.lines().count(), 1, "{sent}");
    assert!(!log.exists(), "the killed call finished anyway");
    let last = llm.requests().last().cloned().unwrap();
    assert!(
        tool_results(&last)[0].1.contains(
            "This call was interrupted by a crash and the user chose not to run it again"
        ),
        "{:?}",
        tool_results(&last)
    );
}

/// An agent loop on the scripted provider, in process with a subscriber:
/// the calls it makes are answered by the server, the long one's progress
/// reaches the subscriber as it comes (the agent's pane shows these
/// deltas), and a call the mode asks before is refused in a run that
/// cannot ask.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_on_the_scripted_provider_calls_tools_and_its_pane_gets_their_progress() {
    use lev::protocol::{Delta, Notice, RunStatus};
    use lev::workflow::{self, EngineDeps, RunOptions, Start};
    let Some(everything) = everything() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    std::fs::write(
        ws.join("wf.cassette.yaml"),
        "replies:\n  - turn: 1\n    tool_calls:\n      - { name: everything__trigger-long-running-operation, arguments: { duration: 1, steps: 3 } }\n      - { name: everything__get-sum, arguments: { a: 1, b: 2 } }\n      - { name: everything__echo, arguments: { message: asked } }\n  - turn: 2\n    text: finished\n",
    )
    .unwrap();
    let modes_dir = ws.join("modes");
    std::fs::create_dir_all(&modes_dir).unwrap();
    std::fs::write(
        modes_dir.join("careful.yaml"),
        "version: 1\nkind: mode\nid: careful\nname: Careful\nrole: Use the tools.\ntools:\n  allow: [\"mcp:everything\"]\npermissions:\n  ask_before: [\"mcp:everything/echo\"]\n",
    )
    .unwrap();
    let modes =
        lev::spec::ModeRegistry::load(&[lev::spec::mode::builtin_dir(), modes_dir]).unwrap();
    let wf_path = ws.join("wf.yaml");
    std::fs::write(
        &wf_path,
        format!(
            "version: 1\nkind: workflow\nid: scripted\nmcp_servers:\n  everything:\n    command: node\n    args: ['{}', stdio]\nsteps:\n  work:\n    mode: careful\n    prompt: go\n",
            everything.display()
        ),
    )
    .unwrap();
    let wf = lev::spec::load_workflow(&wf_path, &modes).unwrap();
    let journal = support::journal::open(&ws).await;
    let config = lev::config::Config {
        provider: lev::config::ProviderSettings {
            cassette: Some(ws.join("wf.cassette.yaml")),
            ..lev::config::ProviderSettings::of_kind(lev::config::ProviderKind::Scripted)
        },
        ..lev::config::Config::default()
    };
    let deps = std::sync::Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: lev::llm::build_provider(&config).map_err(|e| e.to_string()),
        default_model: None,
        profiles: Default::default(),
        modes,
        workspace: ws.clone(),
        options: RunOptions::default(),
    });
    let run = workflow::start_run(&journal, &wf, Default::default(), None)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (_ops, ops_rx) = tokio::sync::mpsc::unbounded_channel();
    let outcome = workflow::drive(deps, run, Start::Fresh, ops_rx, vec![tx])
        .await
        .unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let (mut progress, mut finished) = (Vec::new(), Vec::new());
    while let Ok(n) = rx.try_recv() {
        match n {
            Notice::Delta(_, Delta::ShellOutput { step, text, .. })
                if text.contains("progress") =>
            {
                assert_eq!(step.as_str(), "work");
                progress.push(text);
            }
            Notice::Event(r) => {
                if let lev::protocol::Event::ToolFinished {
                    name,
                    output,
                    is_error,
                    ..
                } = r.event
                {
                    finished.push((name, output, is_error));
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        progress,
        [
            "everything/trigger-long-running-operation progress 1/3\n",
            "everything/trigger-long-running-operation progress 2/3\n",
            "everything/trigger-long-running-operation progress 3/3\n"
        ]
    );
    assert!(
        finished[0].1.contains("Long running operation completed"),
        "{finished:?}"
    );
    assert!(
        finished[1].1.contains("The sum of 1 and 2 is 3"),
        "{finished:?}"
    );
    // `ask_before` holds for MCP tools: no one can approve here.
    assert!(finished[2].2, "{finished:?}");
    assert!(
        finished[2].1.contains("asks before `mcp:everything/echo`"),
        "{finished:?}"
    );
}
