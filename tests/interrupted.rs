//! What happens to work that was running when lev was SIGKILLed:
//! - a tool result is found again by its place in the run, never by the
//!   provider's call id (servers that reuse `call_1` every turn);
//! - the commands lev started die with it, grandchildren included;
//! - a resume never starts a command while the earlier copy still runs,
//!   and says whether it waited or killed it;
//! - a re-run keeps the interrupted attempt's `LEV_IDEMPOTENCY_KEY`.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::kill::{alive, kill9, only_run, wait_for};
use support::lev::Lev;
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest, Reply};

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn text_of(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The content of the newest tool message of a request.
fn last_tool_result(req: &RecordedRequest) -> String {
    let messages = req.json.as_ref().unwrap()["messages"].as_array().unwrap();
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn turn_of(req: &RecordedRequest) -> usize {
    let messages = req.json.as_ref().unwrap()["messages"].as_array().unwrap();
    1 + messages.iter().filter(|m| m["role"] == "assistant").count()
}

/// A server that calls every tool call `call_1`, in every turn.
fn reusing_ids(req: &RecordedRequest) -> Reply {
    let m = "test-model";
    match turn_of(req) {
        1 => OpenAiSse::new(m)
            .tool_call(
                0,
                "call_1",
                "run_shell",
                r#"{"command":"echo result-of-turn-one"}"#,
                2,
            )
            .finish("tool_calls")
            .reply(),
        2 => OpenAiSse::new(m)
            .tool_call(
                0,
                "call_1",
                "run_shell",
                r#"{"command":"echo $$ > turn2.pid; sleep 3; echo result-of-turn-two"}"#,
                2,
            )
            .finish("tool_calls")
            .reply(),
        _ => {
            let seen = last_tool_result(req);
            OpenAiSse::new(m)
                .text(&format!("final: {}", seen.trim()), 2)
                .finish("stop")
                .reply()
        }
    }
}

#[test]
fn a_resumed_agent_gets_its_own_tool_result_when_the_provider_reuses_call_ids() {
    let server = LlmServer::with(reusing_ids);
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: reuse\nsteps:\n  work:\n    mode: coder\n    prompt: do it\n",
    );
    let ws = lev.workspace().display().to_string();
    let mut child = lev.spawn_headless(&wf, &["--allow-shell"]);
    let pid_file = lev.workspace().join("turn2.pid");
    wait_for("turn 2's command", Duration::from_secs(60), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    kill9(&mut child);
    let run = only_run(&lev).unwrap();
    let out = lev.run(&[
        "resume",
        &run,
        "--headless",
        "--allow-shell",
        "--in-flight",
        "rerun",
        "--workspace",
        &ws,
    ]);
    assert!(out.status.success(), "{}", text_of(&out));
    let show = lev.show(&run);
    assert_eq!(show["status"], "succeeded", "{show}");
    let events = lev.events(&run);
    let text = events
        .iter()
        .find(|e| e["type"] == "step_succeeded")
        .map(|e| e["outputs"]["text"].to_string())
        .unwrap_or_default();
    assert!(
        text.contains("result-of-turn-two") && !text.contains("result-of-turn-one"),
        "turn 2's call must get turn 2's result, not turn 1's: {text}"
    );
    // Turn 1's journaled result was reused, not run again, and turn 3's
    // request carries the re-run's result.
    let last = server.requests().last().cloned().unwrap();
    assert_eq!(turn_of(&last), 3);
    assert!(last_tool_result(&last).contains("result-of-turn-two"));
}

#[test]
fn commands_die_with_a_killed_lev_grandchildren_too() {
    let lev = Lev::new();
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: orphan\nsteps:\n  slow:\n    type: shell\n    run: |\n      (sleep 3; echo late >> effect.txt) &\n      echo $! > child.pid\n      echo $$ > shell.pid\n      sleep 3\n      echo late >> effect.txt\n",
    );
    let mut child = lev.spawn_headless(&wf, &[]);
    let shell_pid = lev.workspace().join("shell.pid");
    wait_for("the shell step", Duration::from_secs(60), || {
        std::fs::read_to_string(&shell_pid).is_ok_and(|s| s.ends_with('\n'))
    });
    let pids = [
        read_pid(&shell_pid),
        read_pid(&lev.workspace().join("child.pid")),
    ];
    kill9(&mut child);
    for pid in pids {
        wait_for(
            &format!("process {pid} to die with lev"),
            Duration::from_secs(5),
            || !alive(pid),
        );
    }
    // Past the moment the commands would have written their effect.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !lev.workspace().join("effect.txt").exists(),
        "a command outlived lev and had its effect"
    );
}

/// The lifeline watcher lev started (a child of `lev_pid` running `sh`).
fn watcher_of(lev_pid: u32) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ppid: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == lev_pid && String::from_utf8_lossy(&cmdline).contains("lev-lifeline") {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_resume_stops_a_surviving_copy_first_and_keeps_the_idempotency_key() {
    let lev = Lev::new();
    let wf = lev.write_workflow(
        "version: 1\nkind: workflow\nid: copy\nsteps:\n  once:\n    type: shell\n    run: |\n      echo \"$LEV_IDEMPOTENCY_KEY\" >> keys.txt\n      echo $$ > shell.pid\n      trap '' TERM\n      sleep 30\n",
    );
    let ws = lev.workspace().display().to_string();
    let mut child = lev.spawn_headless(&wf, &[]);
    let shell_pid = lev.workspace().join("shell.pid");
    wait_for("the shell step", Duration::from_secs(60), || {
        std::fs::read_to_string(&shell_pid).is_ok_and(|s| s.ends_with('\n'))
    });
    let first = read_pid(&shell_pid);
    // Without its watcher, the command survives lev: the case a resume must handle.
    let watcher = watcher_of(child.id()).expect("lev started its lifeline watcher");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watcher),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    kill9(&mut child);
    assert!(alive(first), "the copy must still run for this test");
    let run = only_run(&lev).unwrap();
    std::fs::remove_file(&shell_pid).unwrap();
    let mut resumed = lev.spawn(&[
        "resume",
        &run,
        "--headless",
        "--in-flight",
        "rerun",
        "--workspace",
        &ws,
    ]);
    wait_for("the re-run", Duration::from_secs(60), || {
        std::fs::read_to_string(&shell_pid).is_ok_and(|s| s.ends_with('\n'))
    });
    assert!(
        !alive(first),
        "the earlier copy still runs beside the re-run"
    );
    let keys = std::fs::read_to_string(lev.workspace().join("keys.txt")).unwrap();
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], keys[1], "a re-run must keep the attempt's key");
    let second = read_pid(&shell_pid);
    // The group is journaled beside the running command (not before it), so
    // wait for its record before killing lev.
    wait_for(
        "the re-run's group on record",
        Duration::from_secs(30),
        || {
            lev.events(&run)
                .iter()
                .filter(|e| e["type"] == "process_started")
                .count()
                == 2
        },
    );
    kill9(&mut resumed);
    wait_for("the re-run to die with lev", Duration::from_secs(5), || {
        !alive(second)
    });
    let events = lev.events(&run);
    let stopped: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "earlier_copy_stopped")
        .collect();
    assert_eq!(stopped.len(), 1, "{events:#?}");
    assert_eq!(stopped[0]["killed"], true);
    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "process_started")
        .collect();
    assert_eq!(started.len(), 2, "each copy's group is journaled");
    assert_eq!(started[0]["group"]["pgid"], first);
}
