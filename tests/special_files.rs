//! FIFOs and sockets in the workspace: the file tools refuse or skip them
//! at once instead of blocking forever, directly and through a real agent
//! step of the `lev` binary (which must then finish and exit).

mod support;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use lev::tools::{ShellPolicy, ToolEnv, ToolOutput, call};
use nix::sys::stat::Mode;
use serde_json::{Value, json};
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).unwrap();
}

/// Opens and closes the FIFO's write end without waiting: a reader stuck
/// in `open` (the bug) is released with EOF, so a regression fails the
/// test instead of hanging it.
fn release(fifo: &Path) {
    let _ = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo);
}

/// Runs a tool; if it has not answered within a generous bound, releases
/// the FIFO and fails.
async fn call_guarded(env: &ToolEnv, fifo: &Path, name: &str, args: Value) -> ToolOutput {
    let text = args.to_string();
    match tokio::time::timeout(Duration::from_secs(30), call(env, name, &text)).await {
        Ok(out) => out,
        Err(_) => {
            release(fifo);
            panic!("{name} {args} blocked on the FIFO");
        }
    }
}

fn env_for(root: &Path) -> ToolEnv {
    ToolEnv {
        root: root.canonicalize().unwrap(),
        shell: ShellPolicy::default(),
        shell_timeout: Duration::from_secs(30),
        idempotency_key: "run1:1:1".into(),
        process_started: None,
        ask_before: Vec::new(),
        offline: false,
    }
}

#[tokio::test]
async fn file_tools_refuse_fifos_and_sockets_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(dir.path());
    let fifo = env.root.join("pipe");
    mkfifo(&fifo);
    let _sock = UnixListener::bind(env.root.join("sock")).unwrap();

    for (name, args) in [
        ("read_file", json!({"path": "pipe"})),
        ("grep", json!({"pattern": "x", "path": "pipe"})),
        ("edit_file", json!({"path": "pipe", "old": "a", "new": "b"})),
    ] {
        let out = call_guarded(&env, &fifo, name, args).await;
        assert!(out.is_error, "{name}: {}", out.content);
        assert!(
            out.content.contains("`pipe` is a FIFO") && out.content.contains("regular files"),
            "{name}: {}",
            out.content
        );
    }
    let out = call_guarded(&env, &fifo, "list_dir", json!({"path": "pipe"})).await;
    assert!(out.is_error, "{}", out.content);
    let out = call_guarded(&env, &fifo, "read_file", json!({"path": "sock"})).await;
    assert!(
        out.is_error && out.content.contains("socket"),
        "{}",
        out.content
    );
    // The FIFO is still a FIFO: nothing was written over it.
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[tokio::test]
async fn grep_over_a_tree_skips_fifos_and_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(dir.path());
    std::fs::create_dir(env.root.join("src")).unwrap();
    std::fs::write(env.root.join("src/a.txt"), "needle here\n").unwrap();
    std::fs::write(env.root.join("z.txt"), "another needle\n").unwrap();
    let fifo = env.root.join("src/pipe");
    mkfifo(&fifo);
    let _sock = UnixListener::bind(env.root.join("sock")).unwrap();
    for glob in [Value::Null, json!("**")] {
        let mut args = json!({"pattern": "needle"});
        if !glob.is_null() {
            args["glob"] = glob;
        }
        let out = call_guarded(&env, &fifo, "grep", args).await;
        assert!(!out.is_error, "{}", out.content);
        assert!(
            out.content.contains("src/a.txt:1: needle here"),
            "{}",
            out.content
        );
        assert!(
            out.content.contains("z.txt:1: another needle"),
            "{}",
            out.content
        );
    }
    let out = call_guarded(&env, &fifo, "list_dir", json!({"path": "src"})).await;
    assert!(out.content.contains("pipe"), "{}", out.content);
}

/// The step marker in the first user message, and the turn.
fn turn_of(req: &RecordedRequest) -> Option<u32> {
    let messages = req.json.as_ref()?.get("messages")?.as_array()?;
    Some(1 + messages.iter().filter(|m| m["role"] == "assistant").count() as u32)
}

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

#[test]
fn an_agent_reading_a_fifo_gets_a_tool_error_and_lev_exits() {
    let server = LlmServer::with(|req: &RecordedRequest| match turn_of(req) {
        Some(1) => OpenAiSse::new("test-model")
            .tool_call(0, "call_1", "read_file", r#"{"path":"pipe"}"#, 2)
            .usage(20, 5)
            .finish("tool_calls")
            .reply(),
        _ => OpenAiSse::new("test-model")
            .text(&format!("TOOL SAID: {}", last_tool_result(req)), 2)
            .usage(20, 5)
            .finish("stop")
            .reply(),
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let fifo = lev.workspace().join("pipe");
    mkfifo(&fifo);
    let wf = lev.dir.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "version: 1\nkind: workflow\nid: fifo\nname: Fifo\nsteps:\n  look:\n    mode: architect\n    prompt: Read the pipe.\n",
    )
    .unwrap();
    let ws = lev.workspace().display().to_string();
    let mut child = lev.spawn(&[
        "run",
        wf.to_str().unwrap(),
        "--headless",
        "--workspace",
        &ws,
    ]);

    // Poll for exit with a generous deadline; on a hang, release the FIFO
    // (and kill lev) so the failure is reported instead of the test hanging.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            release(&fifo);
            let _ = child.kill();
            let _ = child.wait();
            panic!("lev did not exit: read_file blocked on the FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_id_from(&stdout).unwrap();
    let finished = lev
        .events(&run)
        .into_iter()
        .find(|e| e["type"] == "tool_finished" && e["name"] == "read_file")
        .expect("a read_file result");
    assert!(finished.to_string().contains("is a FIFO"), "{finished}");
    assert_eq!(server.request_count(), 2);
    assert!(last_tool_result(&server.requests()[1]).contains("regular files"));
}
