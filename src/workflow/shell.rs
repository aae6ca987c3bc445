//! Shell steps: run the command, keep the whole streams as blobs and their
//! tails in the event, fail on a non-zero exit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::attempt::{AttemptCtx, StepError, humantime};
use crate::commands::{self, ShellCommand, Started, StartedSender};
use crate::protocol::{Delta, Event};

/// A sender for the process groups an attempt's commands start, and the
/// task that journals each (`ProcessStarted`) as it arrives, durably, before
/// it lets the command run: that commit also makes the step's unsynced
/// start durable, so a command never runs before its step's start (whose
/// seq is in its `LEV_IDEMPOTENCY_KEY`) is on disk. Await the task once the
/// command ended (all senders dropped): it fails the step if the journal
/// refused the record.
pub(super) fn journal_process_starts(
    actx: &AttemptCtx,
    turn: u32,
    position: u32,
) -> (
    StartedSender,
    impl Future<Output = Result<(), StepError>> + use<>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Started>();
    let rec = actx.ctx.rec.clone();
    let clock = actx.ctx.clone();
    let (step, attempt) = (actx.key.clone(), actx.attempt);
    let task = tokio::spawn(async move {
        while let Some(Started { group, go }) = rx.recv().await {
            let recorded = match group {
                Some(group) => {
                    let event = Event::ProcessStarted {
                        step: step.clone(),
                        attempt,
                        turn,
                        position,
                        group,
                        at: clock.now(),
                    };
                    rec.record(event).await.map(|_| ())
                }
                // Unidentified (no /proc entry to read): nothing to journal,
                // but what came before must still be durable first.
                None => rec.sync().await,
            };
            let _ = go.send(recorded.is_ok());
            recorded?;
        }
        Ok::<(), crate::journal::JournalError>(())
    });
    let done = async move {
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StepError::Fatal(format!("journal: {e}"))),
            Err(e) => Err(StepError::Fatal(format!("journal: {e}"))),
        }
    };
    (tx, done)
}

/// Output kept inline in events and step outputs; the rest is in the blob.
pub const TAIL_BYTES: usize = 16 * 1024;

pub async fn run(
    actx: &AttemptCtx,
    script: &str,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Result<Map<String, Value>, StepError> {
    let ctx = &actx.ctx;
    let cmd = ShellCommand {
        script: script.to_string(),
        cwd: cwd.to_path_buf(),
        env: env.clone(),
        timeout: actx.step.timeout,
        idempotency_key: actx.idempotency_key.clone(),
        started: None,
        offline: false,
    };
    let (started, journaling) = journal_process_starts(actx, 0, 0);
    let cmd = ShellCommand {
        started: Some(started),
        offline: false,
        ..cmd
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(bool, String)>();
    let rec = ctx.rec.clone();
    let key = actx.key.clone();
    let secrets = crate::secrets::current();
    let forward = tokio::spawn(async move {
        // One redactor per stream: a key may be cut between two chunks.
        let mut redact = [secrets.stream(), secrets.stream()];
        while let Some((stderr, text)) = rx.recv().await {
            let text = redact[usize::from(stderr)].push(&text);
            if !text.is_empty() {
                rec.delta(Delta::ShellOutput {
                    step: key.clone(),
                    stderr,
                    text,
                });
            }
        }
        for (stderr, r) in [(false, 0), (true, 1)] {
            let text = redact[r].finish();
            if !text.is_empty() {
                rec.delta(Delta::ShellOutput {
                    step: key.clone(),
                    stderr,
                    text,
                });
            }
        }
    });
    let result = commands::run_shell(&cmd, actx.cancel.child_token(), Some(tx)).await;
    // The sender is gone with `run_shell`: the forwarder flushes what its
    // redactors hold and ends.
    let _ = forward.await;
    drop(cmd);
    journaling.await?;
    let mut result = result.map_err(|e| StepError::Fatal(e.to_string()))?;
    // Nothing of lev's keys is journaled, in the blobs or the tails.
    let secrets = crate::secrets::current();
    for stream in [&mut result.stdout, &mut result.stderr] {
        let clean = match secrets.redact_bytes(stream) {
            std::borrow::Cow::Owned(clean) => Some(clean),
            std::borrow::Cow::Borrowed(_) => None,
        };
        if let Some(clean) = clean {
            *stream = clean;
        }
    }
    if result.cancelled {
        return Err(StepError::Cancelled);
    }
    let journal = ctx.rec.journal();
    let stdout_blob = store(journal, &result.stdout).await?;
    let stderr_blob = store(journal, &result.stderr).await?;
    let stdout_tail = tail(&result.stdout);
    let stderr_tail = tail(&result.stderr);
    let event = Event::ShellFinished {
        step: actx.key.clone(),
        attempt: actx.attempt,
        exit_code: result.exit_code,
        timed_out: result.timed_out,
        stdout_tail: stdout_tail.clone(),
        stderr_tail: stderr_tail.clone(),
        stdout_blob,
        stderr_blob,
        duration_ms: result.duration.as_millis() as u64,
        at: ctx.now(),
    };
    // The command has ended; nothing acts on how until the step's end, so
    // both share one commit (a crash in between leaves the step in flight,
    // as a crash just before this record always did).
    actx.defer(event);
    if result.timed_out {
        let t = actx.step.timeout.unwrap_or(Duration::ZERO);
        return Err(StepError::Timeout(format!(
            "`{}` timed out after {}",
            one_line(script),
            humantime(t)
        )));
    }
    match result.exit_code {
        Some(0) => {
            let mut raw = Map::new();
            raw.insert(
                "stdout".into(),
                Value::String(stdout_tail.trim().to_string()),
            );
            raw.insert(
                "stderr".into(),
                Value::String(stderr_tail.trim().to_string()),
            );
            raw.insert("exit_code".into(), Value::from(0));
            Ok(raw)
        }
        code => {
            let last = stderr_tail.trim().lines().last().unwrap_or("").to_string();
            let code = code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "none (killed by a signal)".into());
            let mut msg = format!("`{}` exited with code {code}", one_line(script));
            if !last.is_empty() {
                msg.push_str(&format!(": {last}"));
            }
            Err(StepError::Failed(msg))
        }
    }
}

async fn store(
    journal: &crate::journal::Journal,
    bytes: &[u8],
) -> Result<Option<String>, StepError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if !fits_on_disk(journal.path(), bytes.len()) {
        // Written now, the stream would fill the disk and take the space
        // the journal keeps for recording this very outcome.
        tracing::warn!(
            journal = journal.path(),
            bytes = bytes.len(),
            "the disk is nearly full: a shell step's whole output is not kept, only its tail"
        );
        return Ok(None);
    }
    match journal.put_blob_if_room(bytes.to_vec()).await {
        Ok(hash) => Ok(Some(hash)),
        // The whole stream does not fit on a full disk (it filled between
        // the check above and the write), but the command ran: its outcome,
        // with the tails, is still recorded (into the journal's space
        // reserve, which this write left alone), so a resume needs no
        // decision about it.
        Err(e) if e.is_disk_full() => {
            tracing::warn!(error = %e, bytes = bytes.len(), "disk full: a shell step's whole output is not kept, only its tail");
            Ok(None)
        }
        Err(e) => Err(StepError::Fatal(format!("journal: {e}"))),
    }
}

/// Room left on the journal's disk after `len` more bytes, kept for the
/// step's outcome, the run's pause and redb's copy-on-write pages.
const DISK_MARGIN: u64 = 16 * 1024 * 1024;

/// True unless the journal's file system says `len` bytes would leave less
/// than [`DISK_MARGIN`] free (unknown: true, the journal's own checks hold).
fn fits_on_disk(journal: &str, len: usize) -> bool {
    let dir = Path::new(journal).parent().unwrap_or(Path::new("."));
    match nix::sys::statvfs::statvfs(dir) {
        Ok(fs) => {
            let free = fs.blocks_available().saturating_mul(fs.fragment_size());
            free >= (len as u64).saturating_add(DISK_MARGIN)
        }
        Err(_) => true,
    }
}

/// The last `TAIL_BYTES` of a stream as text, cut at a line start when possible.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= TAIL_BYTES {
        return text.into_owned();
    }
    let mut start = text.len() - TAIL_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    let cut = cut.find('\n').map(|i| &cut[i + 1..]).unwrap_or(cut);
    format!(
        "[… {} earlier bytes in the blob]\n{cut}",
        text.len() - cut.len()
    )
}

fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut out: String = first.chars().take(80).collect();
    if s.lines().count() > 1 || first.chars().count() > 80 {
        out.push('…');
    }
    out
}
