//! The pool against real servers: the official reference server
//! (`@modelcontextprotocol/server-everything`, over stdio and streamable
//! HTTP) and small shell commands. `scripts/test` installs the reference
//! server and points `LEV_TEST_MCP_EVERYTHING` at its `dist/index.js`;
//! without it these tests are skipped, except in CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;

/// Generous: the machine may be loaded; nothing here should take long.
const LIMIT: Duration = Duration::from_secs(60);

#[allow(clippy::print_stderr)]
fn everything() -> Option<PathBuf> {
    let path = std::env::var("LEV_TEST_MCP_EVERYTHING")
        .ok()
        .map(PathBuf::from)
        .filter(|p| p.exists());
    if path.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the MCP reference server is required in CI (scripts/test installs it and sets LEV_TEST_MCP_EVERYTHING)"
        );
        eprintln!(
            "note: MCP pool test skipped; set LEV_TEST_MCP_EVERYTHING to server-everything's dist/index.js to run it"
        );
    }
    path
}

fn command(name: &str, program: &str, args: &[&str]) -> McpServer {
    McpServer {
        name: name.to_string(),
        transport: McpTransport::Stdio {
            command: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: BTreeMap::new(),
            cwd: None,
        },
        call_timeout: LIMIT,
    }
}

fn stdio(name: &str, index: &Path) -> McpServer {
    command(name, "node", &[index.to_str().unwrap(), "stdio"])
}

fn pool(servers: Vec<McpServer>) -> (Pool, UnboundedReceiver<PoolNotice>) {
    let (tx, rx) = unbounded_channel();
    (Pool::new(servers, std::env::temp_dir(), tx), rx)
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// The first notice that `wanted` accepts (others are passed over).
async fn wait_for(
    notices: &mut UnboundedReceiver<PoolNotice>,
    wanted: impl Fn(&PoolNotice) -> bool,
) -> PoolNotice {
    let found = tokio::time::timeout(LIMIT, async {
        while let Some(n) = notices.recv().await {
            if wanted(&n) {
                return n;
            }
        }
        panic!("the pool's notice channel closed");
    })
    .await;
    found.expect("no such notice in time")
}

fn drain(notices: &mut UnboundedReceiver<PoolNotice>) -> Vec<PoolNotice> {
    std::iter::from_fn(|| notices.try_recv().ok()).collect()
}

fn alive(pid: u32) -> bool {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), None).is_ok()
}

async fn gone(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn call(pool: &Pool, server: &str, tool: &str, arguments: Value) -> CallOutput {
    pool.call(server, tool, args(arguments), None)
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// What every transport must do: list, call, refuse in words, read.
async fn exercise(pool: &Pool, server: &str) {
    let tools = pool.tools(server).await.unwrap();
    let sum = tools.iter().find(|t| t.name == "get-sum").unwrap();
    assert!(tools.iter().any(|t| t.name == "echo"));
    assert_eq!(sum.server, server);
    assert!(sum.read_only && sum.idempotent);
    assert!(!sum.description.is_empty());
    assert!(sum.input_schema["properties"]["a"].is_object(), "{sum:?}");

    let echo = call(pool, server, "echo", json!({"message": "hello from lev"})).await;
    assert!(!echo.is_error);
    assert!(echo.content.contains("hello from lev"), "{echo:?}");
    let added = call(pool, server, "get-sum", json!({"a": 2, "b": 3})).await;
    assert!(!added.is_error);
    assert!(added.content.contains('5'), "{added:?}");

    let bad = call(pool, server, "get-sum", json!({"a": "two"})).await;
    assert!(bad.is_error, "{bad:?}");
    assert!(!bad.content.is_empty());
    let unknown = call(pool, server, "no-such-tool", json!({})).await;
    assert!(unknown.is_error, "{unknown:?}");
    assert!(unknown.content.contains("no-such-tool"), "{unknown:?}");

    let text = pool
        .read_resource(server, "demo://resource/dynamic/text/1")
        .await
        .unwrap();
    assert!(text.starts_with("Resource 1: "), "{text}");
    let blob = pool
        .read_resource(server, "demo://resource/dynamic/blob/1")
        .await
        .unwrap();
    assert!(blob.starts_with("[binary text/plain, "), "{blob}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_lists_calls_and_refuses_in_words() {
    let Some(index) = everything() else {
        return;
    };
    let (pool, mut notices) = pool(vec![stdio("everything", &index)]);
    assert_eq!(pool.servers(), ["everything"]);
    exercise(&pool, "everything").await;
    let started = wait_for(&mut notices, |n| matches!(n, PoolNotice::Started { .. })).await;
    let PoolNotice::Started { restart, tools, .. } = started else {
        unreachable!()
    };
    assert_eq!(restart, 0);
    assert!(tools > 2);

    let unknown = pool.tools("nothing").await.unwrap_err();
    assert!(
        unknown.contains("no MCP server named `nothing`"),
        "{unknown}"
    );

    let pid = pool.pid("everything").unwrap();
    pool.shutdown().await;
    assert!(gone(pid).await, "the server outlived shutdown");
    assert!(pool.tools("everything").await.is_err());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The reference server over streamable HTTP on `port`, once it listens.
async fn http_server(index: &Path, port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new("node")
        .arg(index)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let listening = tokio::time::timeout(LIMIT, async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(listening.is_ok(), "the HTTP server did not listen");
    child
}

fn http(name: &str, port: u16) -> McpServer {
    McpServer {
        name: name.to_string(),
        transport: McpTransport::Http {
            url: format!("http://127.0.0.1:{port}/mcp"),
            headers: BTreeMap::from([("X-Team".to_string(), "core".to_string())]),
            headers_env: BTreeMap::from([("X-Path".to_string(), "PATH".to_string())]),
        },
        call_timeout: LIMIT,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_lists_calls_and_refuses_in_words() {
    let Some(index) = everything() else {
        return;
    };
    let port = free_port();
    let _server = http_server(&index, port).await;
    let (pool, mut notices) = pool(vec![http("remote", port)]);
    exercise(&pool, "remote").await;
    wait_for(&mut notices, |n| {
        matches!(n, PoolNotice::Started { restart: 0, .. })
    })
    .await;
    assert_eq!(pool.pid("remote"), None);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_an_http_server_that_restarted_gets_a_new_session() {
    let Some(index) = everything() else {
        return;
    };
    let port = free_port();
    let mut server = http_server(&index, port).await;
    let (pool, mut notices) = pool(vec![http("remote", port)]);
    call(&pool, "remote", "echo", json!({"message": "one"})).await;
    server.kill().await.unwrap();
    let _server = http_server(&index, port).await;
    // The new process answers the old session with an error naming no
    // request: the call was not taken and goes to a new session.
    let two = call(&pool, "remote", "echo", json!({"message": "two"})).await;
    assert!(two.content.contains("two"), "{two:?}");
    let down = wait_for(&mut notices, |n| matches!(n, PoolNotice::Down { .. })).await;
    assert!(format!("{down:?}").contains("session"), "{down:?}");
    wait_for(&mut notices, |n| {
        matches!(n, PoolNotice::Started { restart: 1, .. })
    })
    .await;
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_progress_reaches_its_channel_in_order_before_its_result() {
    let Some(index) = everything() else {
        return;
    };
    let (pool, _notices) = pool(vec![stdio("everything", &index)]);
    let (to, mut progress) = unbounded_channel();
    let out = pool
        .call(
            "everything",
            "trigger-long-running-operation",
            args(json!({"duration": 2, "steps": 4})),
            Some(to),
        )
        .await
        .unwrap();
    assert!(!out.is_error);
    assert!(out.content.contains("completed"), "{out:?}");
    let got: Vec<Progress> = std::iter::from_fn(|| progress.try_recv().ok()).collect();
    let steps: Vec<f64> = got.iter().map(|p| p.progress).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0, 4.0]);
    assert!(got.iter().all(|p| p.total == Some(4.0)));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)]
async fn lev_secrets_are_withheld_from_a_stdio_server_and_its_env_is_added() {
    let Some(index) = everything() else {
        return;
    };
    // A variable cargo sets for the test process, installed as a secret;
    // its value is too short to be redacted anywhere else.
    let secret = "CARGO_PKG_NAME";
    if std::env::var_os(secret).is_none() {
        eprintln!("note: {secret} is not set (not run by cargo): the withholding test is skipped");
        return;
    }
    let before = crate::secrets::current();
    let names = before.names().map(String::from).chain([secret.to_string()]);
    crate::secrets::install(crate::secrets::Secrets::from_names(names, &|k| {
        std::env::var(k).ok()
    }));
    let mut server = stdio("everything", &index);
    if let McpTransport::Stdio { env, .. } = &mut server.transport {
        env.insert("LEV_MCP_TEST_PROBE".into(), "from the config".into());
    }
    let (pool, _notices) = pool(vec![server]);
    let out = pool
        .call("everything", "get-env", args(json!({})), None)
        .await;
    crate::secrets::install((*before).clone());
    let out = out.unwrap();
    let env: BTreeMap<String, String> = serde_json::from_str(&out.content).unwrap();
    assert!(!env.contains_key(secret), "the secret reached the server");
    assert_eq!(env["LEV_MCP_TEST_PROBE"], "from the config");
    assert!(
        env.contains_key("PATH"),
        "the rest of lev's environment is inherited"
    );
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_a_call_fails_it_and_the_next_use_restarts_it() {
    let Some(index) = everything() else {
        return;
    };
    let (pool, mut notices) = pool(vec![stdio("everything", &index)]);
    let pool = Arc::new(pool);
    pool.tools("everything").await.unwrap();
    let pid = pool.pid("everything").unwrap();
    let (to, mut progress) = unbounded_channel();
    let long = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.call(
                "everything",
                "trigger-long-running-operation",
                args(json!({"duration": 60, "steps": 60})),
                Some(to),
            )
            .await
        }
    });
    // Its first progress: the call is running.
    tokio::time::timeout(LIMIT, progress.recv())
        .await
        .unwrap()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let error = tokio::time::timeout(LIMIT, long)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(error.contains("stopped during the call"), "{error}");
    assert!(error.contains("not sent again"), "{error}");
    wait_for(&mut notices, |n| matches!(n, PoolNotice::Down { .. })).await;

    let back = call(&pool, "everything", "echo", json!({"message": "back"})).await;
    assert!(back.content.contains("back"), "{back:?}");
    wait_for(&mut notices, |n| {
        matches!(n, PoolNotice::Started { restart: 1, .. })
    })
    .await;
    let new_pid = pool.pid("everything").unwrap();
    assert_ne!(new_pid, pid);
    pool.shutdown().await;
    assert!(gone(new_pid).await);
}

/// The engine shares one pool between agents' tasks.
#[test]
fn the_pool_and_its_futures_can_move_between_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let (pool, _notices) = pool(Vec::new());
    send_sync(&pool);
    send(pool.tools("x"));
    send(pool.call("x", "t", serde_json::Map::new(), None));
    send(pool.read_resource("x", "u"));
    send(pool.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_named_in_the_error() {
    let (pool, mut notices) = pool(vec![command("ghost", "lev-no-such-mcp-server", &["--x"])]);
    let error = pool.tools("ghost").await.unwrap_err();
    assert!(error.contains("`ghost`"), "{error}");
    assert!(error.contains("lev-no-such-mcp-server --x"), "{error}");
    assert!(error.contains("not found"), "{error}");
    let down = wait_for(&mut notices, |n| matches!(n, PoolNotice::Down { .. })).await;
    assert_eq!(
        down,
        PoolNotice::Down {
            server: "ghost".into(),
            error
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_exits_at_start_shows_its_last_stderr_lines() {
    let script = "echo starting >&2; echo 'config missing: /nowhere.toml' >&2; exit 3";
    let (pool, _notices) = pool(vec![command("broken", "sh", &["-c", script])]);
    let error = pool
        .call("broken", "anything", args(json!({})), None)
        .await
        .unwrap_err();
    assert!(
        error.contains("`broken`") && error.contains("did not start"),
        "{error}"
    );
    assert!(error.contains("config missing: /nowhere.toml"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_start_the_server_once() {
    let Some(index) = everything() else {
        return;
    };
    let (pool, mut notices) = pool(vec![stdio("everything", &index)]);
    let (a, b, c) = tokio::join!(
        pool.tools("everything"),
        pool.tools("everything"),
        call(&pool, "everything", "echo", json!({"message": "m"})),
    );
    assert!(a.is_ok() && b.is_ok() && !c.is_error);
    let started = drain(&mut notices)
        .into_iter()
        .filter(|n| matches!(n, PoolNotice::Started { .. }))
        .count();
    assert_eq!(started, 1);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_pool_stops_its_servers() {
    let Some(index) = everything() else {
        return;
    };
    let (pool, _notices) = pool(vec![stdio("everything", &index)]);
    pool.tools("everything").await.unwrap();
    let pid = pool.pid("everything").unwrap();
    assert!(alive(pid));
    drop(pool);
    assert!(gone(pid).await, "the server outlived the pool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_tool_list_is_refreshed_and_an_elicitation_declined() {
    let Some(index) = everything() else {
        return;
    };
    let (pool, mut notices) = pool(vec![stdio("everything", &index)]);
    // The server adds the tools that need client capabilities (elicitation)
    // once connected, and says so.
    pool.tools("everything").await.unwrap();
    wait_for(&mut notices, |n| {
        matches!(n, PoolNotice::ToolsChanged { .. })
    })
    .await;
    let asks = "trigger-elicitation-request";
    let listed = tokio::time::timeout(LIMIT, async {
        loop {
            let tools = pool.tools("everything").await.unwrap();
            if tools.iter().any(|t| t.name == asks) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(listed.is_ok(), "{asks} never listed");
    let out = call(&pool, "everything", asks, json!({})).await;
    assert!(out.content.to_lowercase().contains("decline"), "{out:?}");
    let asked = wait_for(&mut notices, |n| {
        matches!(n, PoolNotice::Elicitation { .. })
    })
    .await;
    let PoolNotice::Elicitation { server, message } = asked else {
        unreachable!()
    };
    assert_eq!(server, "everything");
    assert!(!message.is_empty());
    pool.shutdown().await;
}
