//! What an MCP tool call costs through lev, against calling the same
//! server directly, in the same run: the official reference server
//! (`@modelcontextprotocol/server-everything` over stdio, installed by
//! scripts/test) and its `echo` tool.
//!
//! - direct: rmcp's own client calling `echo` (the yardstick);
//! - lev's pool: `mcp::Pool::call`, what every agent's call goes through;
//! - an agent turn: a live run whose agent (scripted provider) calls `echo`
//!   once a turn, each result journaled, against the same run calling the
//!   built-in `list_dir` instead; the difference is what an MCP call adds
//!   to a turn.
//!
//! `cargo bench --bench mcp`. The server is found through
//! `LEV_TEST_MCP_EVERYTHING` or scripts/test's cache.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lev::config::mcp_servers::{McpServer, McpTransport};
use lev::journal::Journal;
use lev::protocol::RunStatus;
use lev::spec::{self, ModeRegistry};
use lev::workflow::{self, EngineDeps, RunOptions, Start};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::json;
use tokio::sync::mpsc;

const CALLS: usize = 400;
const TURNS: usize = 200;

fn everything() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LEV_TEST_MCP_EVERYTHING") {
        return Some(PathBuf::from(path));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let path = cache.join(
        "lev-tests/mcp-everything-2026.8.31/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    path.is_file().then_some(path)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn server(index: &Path) -> McpServer {
    McpServer {
        name: "everything".into(),
        transport: McpTransport::Stdio {
            command: "node".into(),
            args: vec![index.display().to_string(), "stdio".into()],
            env: BTreeMap::new(),
            cwd: None,
        },
        call_timeout: Duration::from_secs(60),
    }
}

fn echo_args() -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(map) = json!({"message": "hello"}) else {
        unreachable!()
    };
    map
}

/// rmcp's client on its own, calling `echo` `CALLS` times.
async fn direct(index: &Path) -> Duration {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(index)
        .arg("stdio")
        .stderr(std::process::Stdio::null());
    let transport = rmcp::transport::TokioChildProcess::new(cmd).unwrap();
    let client = ().serve(transport).await.unwrap();
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let params = CallToolRequestParams::new("echo").with_arguments(echo_args());
        let t = Instant::now();
        let out = client.call_tool(params).await.unwrap();
        times.push(t.elapsed());
        assert_ne!(out.is_error, Some(true));
    }
    let _ = client.cancel().await;
    median(times)
}

/// The same calls through lev's pool.
async fn pool(index: &Path, dir: &Path) -> Duration {
    let (tx, _rx) = mpsc::unbounded_channel();
    let pool = lev::mcp::Pool::new(vec![server(index)], dir.to_path_buf(), tx);
    pool.tools("everything").await.unwrap();
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        let out = pool
            .call("everything", "echo", echo_args(), None)
            .await
            .unwrap();
        times.push(t.elapsed());
        assert!(!out.is_error, "{}", out.content);
    }
    pool.shutdown().await;
    median(times)
}

/// A live run of one agent that calls `tool` once a turn for `TURNS`
/// turns, then answers: time per turn.
async fn agent_turns(
    index: &Path,
    dir: &Path,
    modes: &ModeRegistry,
    tool: &str,
    args: &str,
) -> Duration {
    let name = tool.replace("__", "-");
    let journal = Journal::open(&dir.join(format!("{name}.redb"))).unwrap();
    let cassette = dir.join(format!("{name}.cassette.yaml"));
    std::fs::write(
        &cassette,
        format!(
            "replies:\n  - turn: {}\n    text: done\n  - tool_calls:\n      - {{ name: {tool}, arguments: {args} }}\n    repeat: true\n",
            TURNS + 1
        ),
    )
    .unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "version: 1\nkind: workflow\nid: turns\nsteps:\n  work:\n    mode: mcp\n    prompt: call it\n    max_turns: {}\n",
            TURNS + 1
        ),
    )
    .unwrap();
    let wf = spec::load_workflow(&path, modes).unwrap();
    let config = lev::config::Config {
        provider: lev::config::ProviderSettings {
            cassette: Some(cassette),
            ..lev::config::ProviderSettings::of_kind(lev::config::ProviderKind::Scripted)
        },
        ..lev::config::Config::default()
    };
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: lev::llm::build_provider(&config).map_err(|e| e.to_string()),
        default_model: None,
        profiles: Default::default(),
        modes: modes.clone(),
        workspace: dir.to_path_buf(),
        options: RunOptions {
            mcp_servers: BTreeMap::from([("everything".to_string(), server(index))]),
            ..RunOptions::default()
        },
    });
    let run = workflow::start_run(&journal, &wf, BTreeMap::new(), None)
        .await
        .unwrap();
    let (_ops, ops_rx) = mpsc::unbounded_channel();
    let t = Instant::now();
    let outcome = workflow::drive(deps, run, Start::Fresh, ops_rx, Vec::new())
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    took / TURNS as u32
}

#[tokio::main]
async fn main() {
    let Some(index) = everything() else {
        println!(
            "skipped: the MCP reference server is not installed (run scripts/test once, or set LEV_TEST_MCP_EVERYTHING)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
    // Each measured twice, interleaved, the better kept: the machine is shared.
    let mut d = Vec::new();
    let mut p = Vec::new();
    let mut m = Vec::new();
    let mut b = Vec::new();
    for round in 0..2 {
        let sub = dir.path().join(format!("round{round}"));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("a.txt"), "a").unwrap();
        d.push(direct(&index).await);
        p.push(pool(&index, &sub).await);
        m.push(
            agent_turns(
                &index,
                &sub,
                &modes,
                "everything__echo",
                "{ message: hello }",
            )
            .await,
        );
        b.push(agent_turns(&index, &sub, &modes, "list_dir", "{ path: . }").await);
    }
    let (direct, pool, mcp_turn, builtin_turn) = (
        *d.iter().min().unwrap(),
        *p.iter().min().unwrap(),
        *m.iter().min().unwrap(),
        *b.iter().min().unwrap(),
    );
    let added = mcp_turn.saturating_sub(builtin_turn);
    println!("| what | time | ratio to a direct call |");
    println!("| --- | --- | --- |");
    println!(
        "| `echo` called directly (rmcp client, stdio), p50 of {CALLS} | {:.3} ms | 1.0× |",
        ms(direct)
    );
    println!(
        "| `echo` through lev's pool (`mcp::Pool::call`), p50 of {CALLS} | {:.3} ms | {:.2}× |",
        ms(pool),
        ms(pool) / ms(direct)
    );
    println!(
        "| an agent turn calling `everything__echo` (scripted provider, journaled), mean of {TURNS} | {:.3} ms | {:.2}× |",
        ms(mcp_turn),
        ms(mcp_turn) / ms(direct)
    );
    println!(
        "| an agent turn calling the built-in `list_dir` instead | {:.3} ms | {:.2}× |",
        ms(builtin_turn),
        ms(builtin_turn) / ms(direct)
    );
    println!(
        "| what the MCP call adds to a turn (the difference) | {:.3} ms | {:.2}× |",
        ms(added),
        ms(added) / ms(direct)
    );
}
