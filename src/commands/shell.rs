//! Running one `sh -c` script: spawn in its own process group, capture both
//! streams concurrently (capped), and stop the whole group with TERM, a grace
//! period, then KILL on timeout, cancellation or when the caller drops us.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::lifeline;
use super::offline;
use super::process;
use super::{
    GRACE_PERIOD, MAX_CAPTURE_BYTES, OutputSender, PIPE_DRAIN, ShellCommand, ShellError,
    ShellResult, Started,
};

/// Put before a gated script, on its first line so the script's line
/// numbers stay its own: wait for lev's word on standard input, exit unrun
/// (125) if lev's end closes without it (lev died before the start was
/// durable), then give the script `/dev/null` as its input, as ungated.
const GATE: &str = "IFS= read -r _lev_gate && [ \"$_lev_gate\" = go ] || exit 125; unset _lev_gate; exec </dev/null; ";

/// What lev writes to a gated script's input to let it start.
const GATE_WORD: &[u8] = b"go\n";

/// `sh`, found once on lev's `PATH` (a spawn that searches `PATH` tries
/// each directory before it, a failed exec each, for every step), unless
/// the step sets its own `PATH`: then the child's `PATH` finds it, as it
/// always did.
fn shell_program(env: &std::collections::BTreeMap<String, String>) -> std::ffi::OsString {
    static FOUND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    if env.contains_key("PATH") {
        return "sh".into();
    }
    let found = FOUND.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("sh"))
            .find(|p| {
                p.is_absolute()
                    && std::fs::metadata(p)
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    });
    match found {
        Some(p) => p.clone().into_os_string(),
        None => "sh".into(),
    }
}

/// How the script's main process ended.
enum Ending {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

pub(super) async fn run(
    cmd: &ShellCommand,
    cancel: CancellationToken,
    live: Option<OutputSender>,
) -> Result<ShellResult, ShellError> {
    let spawn_error = |message: String| ShellError::Spawn {
        cwd: cmd.cwd.display().to_string(),
        message,
    };
    // Checked up front: spawning into a missing cwd fails with ENOENT, which
    // would read as "sh not found".
    match std::fs::metadata(&cmd.cwd) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(spawn_error(
                "the working directory is not a directory".into(),
            ));
        }
        Err(e) => {
            return Err(spawn_error(format!(
                "the working directory is unusable: {e}"
            )));
        }
    }

    let started = Instant::now();
    let gated = cmd.started.is_some();
    let script = if gated {
        format!("{GATE}{}", cmd.script)
    } else {
        cmd.script.clone()
    };
    let mut sh = if cmd.offline && offline::available() {
        let (program, args) = offline::argv(&script);
        let mut sh = Command::new(program);
        sh.args(args);
        sh
    } else {
        let mut sh = Command::new(shell_program(&cmd.env));
        sh.arg("-c").arg(script);
        sh
    };
    // lev's provider keys stay with lev; the step's own `env` (below) may pass one.
    crate::secrets::current().withhold(sh.as_std_mut());
    let mut child = sh
        .current_dir(&cmd.cwd)
        .envs(&cmd.env)
        .env("LEV_IDEMPOTENCY_KEY", &cmd.idempotency_key)
        .env(lifeline::SUPERVISOR_VAR, lifeline::token())
        .stdin(if gated { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own group, so TERM/KILL reach grandchildren too.
        .process_group(0)
        .spawn()
        .map_err(|e| spawn_error(e.to_string()))?;

    // The group id is the leader's pid; the kernel does not reuse it while
    // any member of the group is alive.
    let mut guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    };
    if let Some(tx) = &cmd.started {
        let group = child.id().and_then(process::identify);
        let (go, answer) = oneshot::channel();
        let recorded = tx.send(Started { group, go }).is_ok() && answer.await == Ok(true);
        // Cancelled while its start was being journaled: it never runs.
        let cancelled = cancel.is_cancelled();
        // Dropping the pipe without the word makes the gate exit unrun.
        let mut gate = child.stdin.take();
        if recorded
            && !cancelled
            && let Some(pipe) = gate.as_mut()
        {
            // A script that ended early (a syntax error) closed its end.
            let _ = pipe.write_all(GATE_WORD).await;
        }
        drop(gate);
        if !recorded || cancelled {
            guard.signal(Signal::SIGKILL);
            let _ = child.wait().await;
            guard.disarm();
            if !recorded {
                return Err(ShellError::NotRecorded);
            }
            return Ok(ShellResult {
                exit_code: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
                timed_out: false,
                cancelled: true,
                duration: started.elapsed(),
            });
        }
    }
    // Readers stop early only when told to (a grandchild outside our group
    // keeping a pipe open); they then return what they have.
    let stop = CancellationToken::new();
    let stdout = child
        .stdout
        .take()
        .map(|s| spawn_reader(s, false, live.clone(), stop.clone()));
    let stderr = child
        .stderr
        .take()
        .map(|s| spawn_reader(s, true, live, stop.clone()));

    let ending = wait_or_stop(&mut child, cmd.timeout, &cancel, &guard).await;
    let status = match &ending {
        Ending::Exited(status) => Some(*status),
        Ending::TimedOut | Ending::Cancelled => child.wait().await.ok(),
    };

    // A background grandchild may still hold the pipes open after the main
    // process exited: give the readers a bounded time, then kill the rest of
    // the group so the pipes close, and finally stop reading.
    let collect = async { (join(stdout).await, join(stderr).await) };
    tokio::pin!(collect);
    let (stdout, stderr) = match tokio::time::timeout(PIPE_DRAIN, &mut collect).await {
        Ok(out) => out,
        Err(_) => {
            guard.signal(Signal::SIGKILL);
            match tokio::time::timeout(PIPE_DRAIN, &mut collect).await {
                Ok(out) => out,
                Err(_) => {
                    stop.cancel();
                    collect.await
                }
            }
        }
    };
    // The step owns its group: leftovers (a TERM-ignoring grandchild whose
    // parent exited during the grace period, a background job) end with it.
    guard.signal(Signal::SIGKILL);
    guard.disarm();

    Ok(ShellResult {
        exit_code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        timed_out: matches!(ending, Ending::TimedOut),
        cancelled: matches!(ending, Ending::Cancelled),
        duration: started.elapsed(),
    })
}

/// Waits for the main process; on timeout or cancel, TERMs the group, waits
/// up to [`GRACE_PERIOD`], then KILLs it.
async fn wait_or_stop(
    child: &mut Child,
    timeout: Option<Duration>,
    cancel: &CancellationToken,
    guard: &GroupGuard,
) -> Ending {
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let ending = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => return Ending::Exited(status),
            // Waiting itself failed; treat as a cancel so the group is stopped.
            Err(_) => Ending::Cancelled,
        },
        () = deadline => Ending::TimedOut,
        () = cancel.cancelled() => Ending::Cancelled,
    };
    guard.signal(Signal::SIGTERM);
    if tokio::time::timeout(GRACE_PERIOD, child.wait())
        .await
        .is_err()
    {
        guard.signal(Signal::SIGKILL);
    }
    ending
}

async fn join(reader: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    match reader {
        Some(handle) => handle.await.unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Reads a whole stream, keeping at most [`MAX_CAPTURE_BYTES`] (then a
/// marker) and forwarding every chunk to `live` as lossy UTF-8.
fn spawn_reader<R>(
    mut stream: R,
    is_stderr: bool,
    live: Option<OutputSender>,
    stop: CancellationToken,
) -> JoinHandle<Vec<u8>>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut captured = Vec::new();
        let mut dropped: u64 = 0;
        let mut decoder = Utf8Chunker::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = tokio::select! {
                read = stream.read(&mut buf) => read,
                () = stop.cancelled() => break,
            };
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let room = MAX_CAPTURE_BYTES.saturating_sub(captured.len());
            let kept = room.min(n);
            captured.extend_from_slice(&chunk[..kept]);
            dropped += (n - kept) as u64;
            if let Some(tx) = &live {
                let text = decoder.push(chunk);
                if !text.is_empty() {
                    // The receiver going away only stops live forwarding.
                    let _ = tx.send((is_stderr, text));
                }
            }
        }
        if let Some(tx) = &live {
            let rest = decoder.finish();
            if !rest.is_empty() {
                let _ = tx.send((is_stderr, rest));
            }
        }
        if dropped > 0 {
            captured.extend_from_slice(
                format!("\n[lev: output truncated; {dropped} more bytes not kept]\n").as_bytes(),
            );
        }
        captured
    })
}

/// Turns byte chunks into lossy UTF-8 text without splitting a character
/// that straddles two chunks.
#[derive(Default)]
pub(crate) struct Utf8Chunker {
    pending: Vec<u8>,
}

impl Utf8Chunker {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe split: `valid` is a char boundary per from_utf8.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete sequence at the end: keep it for next time.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Kills the process group if the run is abandoned (the caller's future is
/// dropped); `kill_on_drop` alone would only reach the `sh` process.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (group already gone) is the normal case late in a run.
            let _ = killpg(pgid, signal);
        }
    }
}

impl GroupGuard {
    /// After the final sweep: the group id may be reused from now on.
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Chunker;

    #[test]
    fn chunker_keeps_split_characters_whole() {
        let text = "héllo wörld ✓";
        let bytes = text.as_bytes();
        let mut out = String::new();
        let mut chunker = Utf8Chunker::default();
        for chunk in bytes.chunks(1) {
            out.push_str(&chunker.push(chunk));
        }
        out.push_str(&chunker.finish());
        assert_eq!(out, text);
    }

    #[test]
    fn chunker_replaces_invalid_bytes() {
        let mut chunker = Utf8Chunker::default();
        let out = chunker.push(b"a\xffb");
        assert_eq!(out, "a\u{FFFD}b");
        let mut chunker = Utf8Chunker::default();
        assert_eq!(chunker.push(b"x\xe2\x9c"), "x");
        assert_eq!(chunker.finish(), "\u{FFFD}");
    }
}
