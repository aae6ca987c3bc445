//! `lev mcp` driven by an MCP client (rmcp's, over a real child process's
//! stdio): it lists its tools, starts a workflow as a run of its own,
//! answers the question the run waits for, and reads the finished run —
//! the run executed by another lev process, reached through its control
//! socket.

mod support;

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::{Value, json};
use support::lev::Lev;

const ASKS: &str = r#"version: 1
kind: workflow
id: asks
name: Asks
inputs:
  greeting: { type: string }
steps:
  name:
    type: question
    ask: Who should be greeted?
  hi:
    needs: [name]
    type: shell
    run: echo "${{ inputs.greeting }} ${{ steps.name.outputs.answer }}"
  gate:
    needs: [hi]
    type: approval
    message: Ship the greeting?
outputs:
  said: ${{ steps.hi.outputs.stdout }}
"#;

async fn client(lev: &Lev) -> RunningService<RoleClient, ()> {
    let data = lev.data_dir();
    let ws = lev.workspace();
    let transport = TokioChildProcess::new(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_lev")).configure(|cmd| {
            cmd.arg("--data-dir")
                .arg(&data)
                .arg("mcp")
                .current_dir(&ws)
                .env("XDG_CONFIG_HOME", ws.join("config"))
                .env_remove("LEV_DATA_DIR")
                .env_remove("OPENAI_API_KEY")
                .env_remove("ANTHROPIC_API_KEY");
        }),
    )
    .unwrap();
    ().serve(transport).await.unwrap()
}

/// Calls `tool` and returns its text as JSON (or as a JSON string when it
/// is not JSON), or the error's message.
async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &'static str,
    args: Value,
) -> Result<Value, String> {
    let args = args.as_object().cloned().unwrap_or_default();
    let result = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .map_err(|e| e.to_string())?;
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    if result.is_error == Some(true) {
        return Err(text);
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Answers `question` of `run` over MCP.
async fn answer(
    client: &RunningService<RoleClient, ()>,
    run: &str,
    question: &str,
    answer: &str,
) -> Result<Value, String> {
    let args = json!({"run": run, "question": question, "answer": answer});
    call(client, "answer", args).await
}

/// Polls `tool` until `done` holds (20 s at most).
async fn until(
    client: &RunningService<RoleClient, ()>,
    tool: &'static str,
    args: Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = call(client, tool, args.clone()).await;
        if let Ok(v) = &got
            && done(v)
        {
            return v.clone();
        }
        assert!(Instant::now() < deadline, "waited for {what}: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_starts_a_workflow_answers_its_question_and_reads_the_result() {
    let lev = Lev::new();
    let wf = lev.workspace().join("asks.yaml");
    std::fs::write(&wf, ASKS).unwrap();
    let client = client(&lev).await;

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for tool in [
        "list_runs",
        "show_run",
        "waiting",
        "answer",
        "start_workflow",
        "cancel_run",
        "transcript",
        "message",
        "pause",
        "stop_callbacks",
        "search_memory",
    ] {
        assert!(names.contains(&tool), "{tool} missing from {names:?}");
    }

    let started = call(
        &client,
        "start_workflow",
        json!({"path": "asks.yaml", "inputs": {"greeting": "hello"}}),
    )
    .await
    .unwrap();
    let run = started["run"].as_str().unwrap().to_string();

    // The run, executed by its own lev process, waits for the answer.
    let waiting = until(
        &client,
        "waiting",
        json!({"run": run}),
        "the question",
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    assert_eq!(waiting[0]["id"], "name", "{waiting}");
    assert_eq!(waiting[0]["question"], "Who should be greeted?");
    let listed = call(&client, "list_runs", json!({})).await.unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run.as_str() && r["status"] == "running"),
        "{listed}"
    );

    // Empty answers are refused; a real one is journaled and acted on.
    let empty = answer(&client, &run, "name", " ").await;
    assert!(empty.is_err(), "{empty:?}");
    let unknown = answer(&client, &run, "nobody", "x").await;
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.contains("nothing waits for an answer to `nobody`")),
        "{unknown:?}"
    );
    answer(&client, &run, "name", "world 世界").await.unwrap();

    // Then the approval, by its step's id.
    let waiting = until(
        &client,
        "waiting",
        json!({"run": run}),
        "the approval",
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|q| q["kind"] == "approval"))
        },
    )
    .await;
    assert_eq!(waiting[0]["id"], "gate", "{waiting}");
    assert_eq!(waiting[0]["message"], "Ship the greeting?");
    let vague = answer(&client, &run, "gate", "maybe").await;
    assert!(
        vague
            .as_ref()
            .is_err_and(|e| e.contains("answer `approve` or `deny`")),
        "{vague:?}"
    );
    answer(&client, &run, "gate", "approve").await.unwrap();

    let shown = until(
        &client,
        "show_run",
        json!({"run": run}),
        "the run's end",
        |v| v["status"] == "succeeded",
    )
    .await;
    assert_eq!(shown["outputs"]["said"], "hello world 世界", "{shown}");
    let waiting = call(&client, "waiting", json!({"run": run})).await.unwrap();
    assert_eq!(waiting, json!([]));

    // The transcript is the replay of the journal.
    let transcript = call(&client, "transcript", json!({"run": run}))
        .await
        .unwrap();
    let transcript = transcript.as_str().unwrap_or_default();
    for needle in ["Who should be greeted?", "world 世界", "Ship the greeting?"] {
        assert!(transcript.contains(needle), "{needle} not in {transcript}");
    }
    let hits = call(&client, "search_memory", json!({"text": "greeting"}))
        .await
        .unwrap();
    assert!(hits.is_array(), "{hits}");

    // What does not exist is said, not guessed.
    let missing = call(
        &client,
        "show_run",
        json!({"run": "01NOTARUN0000000000000000"}),
    )
    .await;
    assert!(missing.is_err_and(|e| e.contains("no run")));
    let bad = call(&client, "start_workflow", json!({"path": "nowhere.yaml"})).await;
    assert!(bad.is_err_and(|e| e.contains("no workflow file")));
    client.cancel().await.unwrap();
}

/// The official MCP Python SDK as the client; `scripts/test` installs it
/// once from PyPI into a cache outside the clone and points
/// `LEV_TEST_MCP_PYTHON` at its interpreter. Without it the test is
/// skipped, except in CI, where it is required.
fn python_with_mcp() -> Option<String> {
    let path = std::env::var("LEV_TEST_MCP_PYTHON")
        .ok()
        .filter(|p| std::path::Path::new(p).exists());
    assert!(
        path.is_some() || std::env::var_os("CI").is_none(),
        "the MCP Python SDK is required in CI (scripts/test installs it and sets LEV_TEST_MCP_PYTHON)"
    );
    path
}

#[test]
fn the_official_python_mcp_client_runs_a_workflow_through_lev_mcp() {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let lev = Lev::new();
    std::fs::write(lev.workspace().join("asks.yaml"), ASKS).unwrap();
    let out = std::process::Command::new(python)
        .arg(support::lev::repo_file("tests/fixtures/mcp_client.py"))
        .arg(env!("CARGO_BIN_EXE_lev"))
        .arg(lev.data_dir())
        .arg(lev.workspace())
        .arg("asks.yaml")
        .args(lev.pg.as_ref().map(|db| &db.url))
        .env("XDG_CONFIG_HOME", lev.workspace().join("config"))
        .env_remove("LEV_DATA_DIR")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(read["status"], "succeeded", "{read}");
    assert_eq!(read["said"], "bonjour le monde");
    let transcript = read["transcript"].as_str().unwrap();
    assert!(transcript.contains("le monde"), "{transcript}");
    assert!(
        read["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "start_workflow"),
        "{read}"
    );
    // The run is lev's like any other: `lev show` reads it.
    let run = read["run"].as_str().unwrap();
    assert_eq!(lev.show(run)["outputs"]["said"], "bonjour le monde");
}

const SWARM_CASSETTE: &str = r#"replies:
  - step: plan
    text: '{"summary": "a greeter", "tasks": [
      {"id": "code", "title": "Write greet.sh", "mode": "coder", "needs": [], "acceptance": ["greet.sh prints hello"], "files": []}]}'
  - step: code
    text: "greet.sh prints hello"
"#;

/// An objective becomes a swarm whose plan review waits for the client's
/// word; a workflow that does not load is refused saying where and what.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_starts_a_swarm_accepts_its_plan_and_validates_files() {
    let lev = Lev::new();
    let cassette = lev.workspace().join("swarm.cassette.yaml");
    std::fs::write(&cassette, SWARM_CASSETTE).unwrap();
    std::fs::write(
        lev.workspace().join("lev.yaml"),
        format!("provider: scripted\ncassette: {}\n", cassette.display()),
    )
    .unwrap();
    std::fs::write(
        lev.workspace().join("broken.yaml"),
        "version: 1\nkind: workflow\nid: b\nname: B\nsteps:\n  a:\n    type: shel\n    run: true\n",
    )
    .unwrap();
    let client = client(&lev).await;

    let checked = call(&client, "validate_workflow", json!({"path": "broken.yaml"}))
        .await
        .unwrap();
    assert_eq!(checked["valid"], false, "{checked}");
    let problems = checked["problems"].to_string();
    assert!(problems.contains("broken.yaml:7:"), "{problems}");
    let refused = call(&client, "start_workflow", json!({"path": "broken.yaml"})).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("broken.yaml:7:")),
        "{refused:?}"
    );

    let started = call(
        &client,
        "start_objective",
        json!({"objective": "--build a greeter", "agents": 1}),
    )
    .await
    .unwrap();
    let run = started["run"].as_str().unwrap().to_string();
    let waiting = until(
        &client,
        "waiting",
        json!({"run": run}),
        "the plan review",
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    assert_eq!(waiting[0]["id"], "plan-review", "{waiting}");
    answer(&client, &run, "plan-review", "accept")
        .await
        .unwrap();
    let shown = until(
        &client,
        "show_run",
        json!({"run": run}),
        "the swarm's end",
        |v| v["status"] == "succeeded",
    )
    .await;
    assert!(
        shown.to_string().contains("greet.sh prints hello"),
        "{shown}"
    );
    client.cancel().await.unwrap();
}

#[test]
fn lev_mcp_install_says_how_to_add_lev_to_claude_code_and_codex() {
    let lev = Lev::new();
    let out = lev.run(&["mcp", "install", "claude"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("claude mcp add lev -- "), "{text}");
    assert!(text.contains(" mcp\n"), "{text}");
    let out = lev.run(&["mcp", "install", "codex"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[mcp_servers.lev]"), "{text}");
    assert!(
        text.contains(&format!("\"{}\"", lev.data_dir().display())),
        "{text}"
    );
    // A PostgreSQL journal is named, never written into the command line.
    let journal = "postgres://lev:not-in-argv-0123@db.example/lev";
    let out = lev.run(&["--journal", journal, "mcp", "install", "claude"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("LEV_JOURNAL"), "{text}");
    assert!(!text.contains("not-in-argv"), "{text}");
}

/// `lev mcp --http 127.0.0.1:0` with a fixed token, and the URL it says it
/// serves (from the first line it prints).
struct HttpLev {
    child: std::process::Child,
    url: String,
}

impl Drop for HttpLev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "test-token-0123456789abcdef";

fn http_lev(lev: &Lev) -> HttpLev {
    use std::io::BufRead;
    let mut child = lev
        .cmd(&["mcp", "--http", "127.0.0.1:0"])
        .env("LEV_MCP_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read, then closed: lev must go on serving.
    let mut first = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    HttpLev { child, url }
}

#[tokio::test(flavor = "multi_thread")]
async fn lev_mcp_over_http_takes_only_requests_with_its_token() {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let lev = Lev::new();
    let server = http_lev(&lev);
    // Without the token, or with another: refused before MCP sees it.
    let http = reqwest::Client::new();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    for auth in [None, Some("Bearer wrong-token-0123456789abcd")] {
        let mut req = http
            .post(&server.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
    }
    // With it: the tools, and a call that reaches the journal.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url.clone()).auth_header(TOKEN),
    );
    let client = ().serve(transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(
        tools.iter().any(|t| t.name == "start_workflow"),
        "{tools:?}"
    );
    let wf = lev.write_workflow(ASKS);
    let checked = call(
        &client,
        "validate_workflow",
        json!({"path": wf.display().to_string()}),
    )
    .await
    .unwrap();
    assert_eq!(checked["valid"], true, "{checked}");
    let runs = call(&client, "list_runs", json!({})).await.unwrap();
    assert_eq!(runs, json!([]), "{runs}");
    let _ = client.cancel().await;
}

#[test]
fn lev_mcp_http_refuses_an_address_others_can_reach() {
    let lev = Lev::new();
    let out = lev.run(&["mcp", "--http", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only on a loopback address"), "{err}");
}
