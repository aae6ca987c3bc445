//! Helpers for tests that SIGKILL a real `lev` and resume it: waiting for
//! (or killing) a child, reading what it printed, and what the journal says.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lev::Lev;
use super::llm_server::RecordedRequest;

/// What a finished or killed `lev` process left.
pub struct Process {
    pub stdout: String,
    /// `None` when it was killed.
    pub code: Option<i32>,
}

/// Waits for `child`, or SIGKILLs it after `kill_after` if given. Panics
/// when lev exits with an error (any code but 0 and 3, paused).
pub fn finish(mut child: Child, kill_after: Option<Duration>) -> Process {
    let deadline = Instant::now() + Duration::from_secs(120);
    let kill_at = kill_after.map(|d| Instant::now() + d);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if kill_at.is_some_and(|k| Instant::now() >= k) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        assert!(Instant::now() < deadline, "lev did not finish within 120 s");
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    if code.is_some_and(|c| c != 0 && c != 3) {
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        panic!("lev exited with {code:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    }
    Process { stdout, code }
}

/// Complete lines only: a killed process may have been cut mid-line.
pub fn whole_lines(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    if !s.ends_with('\n') {
        lines.pop();
    }
    lines
}

/// (step, turn) of every LLM reply in the journal.
pub fn journaled_replies(events: &[Value]) -> BTreeSet<(String, u32)> {
    events
        .iter()
        .filter(|e| e["type"] == "llm_replied")
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_string(),
                e["turn"].as_u64().unwrap() as u32,
            )
        })
        .collect()
}

/// Whether the lines a killed-and-resumed run printed live are an in-order
/// part of its replay. A step's start printed by a process that was killed
/// before it printed anything else about that step may be missing: an
/// agent step's start is appended without an fsync of its own (the step
/// runs again when a crash loses it).
pub fn is_durable_part(live: &[String], replay: &[String]) -> bool {
    let lost_start = |i: usize| {
        let Some(step) = live[i]
            .strip_prefix("step ")
            .and_then(|rest| rest.split_once(": started ("))
            .map(|(step, _)| format!("step {step}:"))
        else {
            return false;
        };
        !live[i + 1..]
            .iter()
            .take_while(|l| !(l.starts_with("run ") && l.ends_with(" resumed")))
            .any(|l| l.starts_with(&step))
    };
    let kept: Vec<String> = (0..live.len())
        .filter(|&i| !lost_start(i))
        .map(|i| live[i].clone())
        .collect();
    is_subsequence(&kept, replay)
}

pub fn is_subsequence(needle: &[String], hay: &[String]) -> bool {
    let mut it = hay.iter();
    needle.iter().all(|n| it.any(|h| h == n))
}

/// The id of the only run in this sandbox, if one was created.
pub fn only_run(lev: &Lev) -> Option<String> {
    let out = lev.run(&["runs", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() <= 1, "one run expected, found {ids:?}");
    ids.into_iter().next()
}

/// Live processes whose `LEV_IDEMPOTENCY_KEY` belongs to `run`: commands
/// of that run still running.
pub fn commands_of(run: &str) -> Vec<i32> {
    commands_where(&format!("LEV_IDEMPOTENCY_KEY={run}:"), |_| true)
}

/// Live commands lev started (they carry `LEV_IDEMPOTENCY_KEY`) working in
/// `dir`: a sandbox's commands, before its run id is known.
pub fn commands_in(dir: &Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    commands_where("LEV_IDEMPOTENCY_KEY=", |pid| {
        std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
    })
}

fn commands_where(prefix: &str, also: impl Fn(i32) -> bool) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie
            && env
                .split(|b| *b == 0)
                .any(|v| v.starts_with(prefix.as_bytes()))
            && also(pid)
        {
            found.push(pid);
        }
    }
    found
}

/// Waits until no command of `run` runs; returns how long that took
/// (`None` when none was running), or the pids still running after
/// `timeout`.
pub fn wait_no_commands(run: &str, timeout: Duration) -> Result<Option<Duration>, Vec<i32>> {
    let start = Instant::now();
    let mut seen = false;
    loop {
        let left = commands_of(run);
        if left.is_empty() {
            return Ok(seen.then(|| start.elapsed()));
        }
        seen = true;
        if start.elapsed() > timeout {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (step marker, turn) of an agent request: the loopback servers of the
/// kill tests pick their reply by the `[[step:NAME]]` marker in the prompt
/// and the number of assistant turns so far.
pub fn request_key(req: &RecordedRequest) -> Option<(String, u32)> {
    let json = req.json.as_ref()?;
    let messages = json.get("messages")?.as_array()?;
    let first_user = messages.iter().find(|m| m["role"] == "user")?;
    let text = first_user["content"].as_str()?;
    let start = text.find("[[step:")? + 7;
    let end = start + text[start..].find("]]")?;
    let turn = 1 + messages.iter().filter(|m| m["role"] == "assistant").count() as u32;
    Some((text[start..end].to_string(), turn))
}

/// True while `pid` runs (a zombie has ended).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

/// Polls `done` until it holds; fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs a child and reaps it.
pub fn kill9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}
