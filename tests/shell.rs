//! `commands::run_shell` against real `sh` processes: exit codes, capture,
//! environment, timeouts and cancellation of whole process groups.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use lev::commands::{ShellCommand, ShellError, ShellResult, run_shell};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn command(script: &str, cwd: &Path) -> ShellCommand {
    ShellCommand {
        script: script.into(),
        cwd: cwd.to_path_buf(),
        env: BTreeMap::new(),
        timeout: None,
        idempotency_key: "run1:7:1".into(),
        started: None,
        offline: false,
    }
}

async fn run(cmd: &ShellCommand) -> ShellResult {
    run_shell(cmd, CancellationToken::new(), None)
        .await
        .expect("sh starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A process counts as gone when /proc has no entry or only a zombie (in a
/// container without an init that reaps, orphans stay zombies).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
    }
}

/// Polls until `pid` is gone or a generous deadline passes.
async fn gone_eventually(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn pids_in(stdout: &[u8]) -> Vec<u32> {
    text(stdout)
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[tokio::test]
async fn exit_codes_and_streams_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ok = run(&command("echo out; echo err >&2", dir.path())).await;
    assert_eq!(ok.exit_code, Some(0));
    assert_eq!(text(&ok.stdout), "out\n");
    assert_eq!(text(&ok.stderr), "err\n");
    assert!(!ok.timed_out && !ok.cancelled);

    let failed = run(&command("echo partial; exit 3", dir.path())).await;
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(text(&failed.stdout), "partial\n");
}

#[tokio::test]
async fn runs_in_cwd() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker.txt"), "here").unwrap();
    let result = run(&command("cat marker.txt", dir.path())).await;
    assert_eq!(text(&result.stdout), "here");
}

#[tokio::test]
async fn missing_cwd_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = run_shell(&command("true", &missing), CancellationToken::new(), None)
        .await
        .unwrap_err();
    let ShellError::Spawn { cwd, message } = &err else {
        panic!("{err:?}");
    };
    assert!(cwd.ends_with("nope"), "{cwd}");
    assert!(message.contains("working directory"), "{message}");
}

#[tokio::test]
async fn environment_is_inherited_and_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(
        "printf '%s|%s|%s' \"$PATH\" \"$LEV_TEST_EXTRA\" \"$HOME\"",
        dir.path(),
    );
    cmd.env
        .insert("LEV_TEST_EXTRA".into(), "extra value".into());
    cmd.env.insert("HOME".into(), "/overridden/home".into());
    let result = run(&cmd).await;
    let path = std::env::var("PATH").unwrap();
    assert_eq!(
        text(&result.stdout),
        format!("{path}|extra value|/overridden/home")
    );
}

#[tokio::test]
async fn idempotency_key_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let result = run(&command("printf %s \"$LEV_IDEMPOTENCY_KEY\"", dir.path())).await;
    assert_eq!(text(&result.stdout), "run1:7:1");
}

#[tokio::test]
async fn stdin_is_null() {
    let dir = tempfile::tempdir().unwrap();
    let result = run(&command("cat; echo end", dir.path())).await;
    assert_eq!(text(&result.stdout), "end\n");
}

#[tokio::test]
async fn timeout_kills_the_process_and_its_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command("sleep 1000 & echo $!; sleep 1000", dir.path());
    cmd.timeout = Some(Duration::from_millis(300));
    let result = run(&cmd).await;
    assert!(result.timed_out);
    assert!(!result.cancelled);
    assert_eq!(result.exit_code, None, "killed by a signal");
    let pids = pids_in(&result.stdout);
    assert_eq!(
        pids.len(),
        1,
        "grandchild pid printed: {:?}",
        text(&result.stdout)
    );
    assert!(
        gone_eventually(pids[0]).await,
        "grandchild {} survived",
        pids[0]
    );
}

#[tokio::test]
async fn term_ignoring_script_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    // `sh` and its `sleep` both ignore TERM (an ignored signal stays ignored
    // across exec), so only KILL ends them.
    let mut cmd = command(
        "trap '' TERM; echo $$; sleep 1000; echo survived",
        dir.path(),
    );
    cmd.timeout = Some(Duration::from_millis(300));
    let result = run(&cmd).await;
    assert!(result.timed_out);
    assert_eq!(result.exit_code, None);
    assert!(!text(&result.stdout).contains("survived"));
    let pids = pids_in(&result.stdout);
    assert_eq!(pids.len(), 1);
    assert!(gone_eventually(pids[0]).await);
}

#[tokio::test]
async fn cancel_stops_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = command("sleep 1000 & echo $!; echo ready; sleep 1000", dir.path());
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<(bool, String)>();
    let watcher = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut seen = String::new();
            while let Some((_, chunk)) = rx.recv().await {
                seen.push_str(&chunk);
                if seen.contains("ready") {
                    cancel.cancel();
                }
            }
            seen
        })
    };
    let result = run_shell(&cmd, cancel, Some(tx)).await.unwrap();
    assert!(result.cancelled);
    assert!(!result.timed_out);
    assert_eq!(result.exit_code, None);
    let seen = watcher.await.unwrap();
    assert!(seen.contains("ready"));
    let pids = pids_in(&result.stdout);
    assert_eq!(pids.len(), 1);
    assert!(gone_eventually(pids[0]).await);
}

#[tokio::test]
async fn a_background_job_holding_the_pipes_does_not_hang_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let result = run(&command("sleep 1000 & echo $!; echo done", dir.path())).await;
    assert_eq!(result.exit_code, Some(0));
    assert!(!result.timed_out);
    assert!(text(&result.stdout).ends_with("done\n"));
    let pids = pids_in(&result.stdout);
    assert_eq!(pids.len(), 1);
    assert!(gone_eventually(pids[0]).await);
}

#[tokio::test]
async fn large_output_on_both_streams_is_captured_without_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    // stderr first: a runner reading only stdout would block the child.
    let script = "head -c 10485760 /dev/zero >&2; head -c 10485760 /dev/zero | tr '\\0' 'a'";
    let result = run(&command(script, dir.path())).await;
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(result.stderr.len(), 10 * 1024 * 1024);
    assert_eq!(result.stdout.len(), 10 * 1024 * 1024);
    assert!(result.stdout.iter().all(|&b| b == b'a'));
}

#[tokio::test]
async fn live_chunks_match_the_captured_streams() {
    let dir = tempfile::tempdir().unwrap();
    let script =
        "for i in 1 2 3 4 5; do echo line $i; echo warn $i >&2; done; printf 'caf\\303\\251'";
    let (tx, mut rx) = mpsc::unbounded_channel::<(bool, String)>();
    let result = run_shell(
        &command(script, dir.path()),
        CancellationToken::new(),
        Some(tx),
    )
    .await
    .unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    while let Some((is_stderr, chunk)) = rx.recv().await {
        if is_stderr {
            err.push_str(&chunk);
        } else {
            out.push_str(&chunk);
        }
    }
    assert_eq!(out, text(&result.stdout));
    assert_eq!(err, text(&result.stderr));
    assert!(out.ends_with("line 5\ncafé"));
    assert!(err.contains("warn 3\n"));
}

#[tokio::test]
async fn output_past_the_cap_is_cut_with_a_marker() {
    let dir = tempfile::tempdir().unwrap();
    let cap = lev::commands::MAX_CAPTURE_BYTES;
    let script = format!("head -c {} /dev/zero", cap + 1000);
    let result = run(&command(&script, dir.path())).await;
    assert_eq!(result.exit_code, Some(0));
    assert!(result.stdout[..cap].iter().all(|&b| b == 0));
    let marker = text(&result.stdout[cap..]);
    assert!(
        marker.contains("output truncated; 1000 more bytes"),
        "{marker}"
    );
}

#[tokio::test]
async fn dropping_the_call_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = command("sleep 1000 & echo $!; sleep 1000", dir.path());
    let (tx, mut rx) = mpsc::unbounded_channel::<(bool, String)>();
    let task = tokio::spawn(async move {
        let _ = run_shell(&cmd, CancellationToken::new(), Some(tx)).await;
    });
    let mut seen = String::new();
    while !seen.contains('\n') {
        let (_, chunk) = rx.recv().await.expect("pid printed before the run ends");
        seen.push_str(&chunk);
    }
    let pid: u32 = seen.trim().parse().unwrap();
    task.abort();
    let _ = task.await;
    assert!(
        gone_eventually(pid).await,
        "grandchild {pid} survived the drop"
    );
}

#[tokio::test]
async fn a_process_that_left_the_group_cannot_hang_the_call() {
    if std::process::Command::new("setsid")
        .arg("true")
        .status()
        .is_err()
    {
        return; // no util-linux here; nothing to test with
    }
    let dir = tempfile::tempdir().unwrap();
    // `setsid` moves the sleep into a new session (out of our group) while
    // it still holds the output pipes.
    let result = run(&command("setsid sleep 1000 & echo $!", dir.path())).await;
    assert_eq!(result.exit_code, Some(0));
    let pids = pids_in(&result.stdout);
    assert_eq!(pids.len(), 1);
    // Clean up the escapee ourselves.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pids[0]).unwrap());
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    assert!(gone_eventually(pids[0]).await);
}

/// Runs `cmd` gated, answering the gate with `allow` once it has seen the
/// process group; returns the result and the group it was told.
async fn run_gated(
    cmd: ShellCommand,
    allow: bool,
) -> (
    Result<ShellResult, ShellError>,
    Option<lev::protocol::ProcessGroup>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<lev::commands::Started>();
    let cmd = ShellCommand {
        started: Some(tx),
        offline: false,
        ..cmd
    };
    let gate = tokio::spawn(async move {
        let started = rx.recv().await.expect("the gate is asked");
        // What the gate would journal first: nothing of the script has run.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = started.go.send(allow);
        started.group
    });
    let result = run_shell(&cmd, CancellationToken::new(), None).await;
    (result, gate.await.unwrap())
}

#[tokio::test]
async fn a_gated_command_runs_only_once_allowed_and_as_if_ungated() {
    let dir = tempfile::tempdir().unwrap();
    // Its input is still empty, its line numbers its own, its variables
    // untouched by the gate.
    let script = "touch ran; cat; echo \"[$_lev_gate]\"\nnot_a_command_xyz";
    let (result, group) = run_gated(command(script, dir.path()), true).await;
    let result = result.expect("sh starts");
    assert!(dir.path().join("ran").exists());
    assert_eq!(text(&result.stdout), "[]\n");
    assert!(
        text(&result.stderr).contains("2:"),
        "{}",
        text(&result.stderr)
    );
    assert_eq!(result.exit_code, Some(127));
    let group = group.expect("the group is identified");
    assert!(group.pgid > 0);
}

#[tokio::test]
async fn a_gated_command_refused_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (result, group) = run_gated(command("touch ran", dir.path()), false).await;
    assert!(matches!(result, Err(ShellError::NotRecorded)), "{result:?}");
    assert!(!dir.path().join("ran").exists(), "the refused command ran");
    let group = group.expect("the group is identified");
    assert!(gone_eventually(group.pgid as u32).await);
}

#[tokio::test]
async fn a_gated_script_that_does_not_parse_fails_as_ungated() {
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run_gated(command("if then", dir.path()), true).await;
    let result = result.expect("sh starts");
    assert_eq!(result.exit_code, Some(2), "{}", text(&result.stderr));
}

#[tokio::test]
async fn a_gated_command_cancelled_before_its_start_is_journaled_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<lev::commands::Started>();
    let cmd = ShellCommand {
        started: Some(tx),
        offline: false,
        ..command("touch ran", dir.path())
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let gate = tokio::spawn(async move {
        let started = rx.recv().await.expect("the gate is asked");
        // The step is cancelled while its start is being journaled.
        stop.cancel();
        let _ = started.go.send(true);
    });
    let result = run_shell(&cmd, cancel, None).await.expect("sh starts");
    gate.await.unwrap();
    assert!(result.cancelled, "{result:?}");
    assert!(
        !dir.path().join("ran").exists(),
        "the cancelled command ran"
    );
}

/// A step that sets its own `PATH` gets the `sh` that `PATH` finds, as a
/// shell started by name would; without it, the `sh` on lev's `PATH`.
#[tokio::test]
async fn a_step_s_own_path_chooses_its_sh() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("sh");
    // Written by another process: a file this one had open for writing
    // when another test thread forked could not be executed (ETXTBSY).
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg("printf '#!/bin/sh\\necho \"this is the step'\\''s own sh\"\\n' > \"$1\" && chmod 755 \"$1\"")
        .arg("sh")
        .arg(&fake)
        .status()
        .unwrap();
    assert!(made.success());
    let mut cmd = command("echo the usual sh", dir.path());
    let usual = run(&cmd).await;
    assert_eq!(text(&usual.stdout), "the usual sh\n");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    cmd.env.insert("PATH".into(), path);
    let own = run(&cmd).await;
    assert_eq!(text(&own.stdout), "this is the step's own sh\n", "{own:?}");
}
