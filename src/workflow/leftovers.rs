//! Before a step interrupted by a crash continues, is re-run, skipped or
//! marked done, nothing its interrupted attempt started may still run. The
//! lev that started the commands stops them through its lifeline; this is
//! the check on resume for the copies that survived anyway.

use std::sync::Arc;
use std::time::Duration;

use super::context::RunCtx;
use super::history::StepRecord;
use crate::commands::process::{self, Stopped};
use crate::protocol::{Event, StepKey};

/// Makes sure no command of the step's interrupted attempt still runs
/// before anything else happens to the step, and journals it when one did
/// (so the user reads that lev waited for it or killed it).
pub(super) async fn stop_earlier_copies(
    ctx: &Arc<RunCtx>,
    key: &StepKey,
    rec: &StepRecord,
) -> Result<(), String> {
    let groups = ctx
        .history
        .processes
        .get(&(key.clone(), rec.attempt))
        .cloned()
        .unwrap_or_default();
    let (seq, attempt) = rec.key_origin;
    let idem_key = format!("{}:{seq}:{}", ctx.rec.run(), attempt.0);
    let stopped = tokio::task::spawn_blocking(move || {
        process::stop_earlier_copies(&groups, &idem_key, EARLIER_COPY_WAIT)
    })
    .await
    .map_err(|e| format!("checking for an earlier copy of the command: {e}"))?;
    let Some(stopped) = stopped else {
        return Ok(());
    };
    let killed = stopped == Stopped::Killed;
    tracing::warn!(step = %key, killed, "a command of the interrupted attempt was still running");
    let event = Event::EarlierCopyStopped {
        step: key.clone(),
        attempt: rec.attempt,
        killed,
        at: ctx.now(),
    };
    ctx.rec
        .record(event)
        .await
        .map(|_| ())
        .map_err(|e| format!("journal: {e}"))
}

/// How long a resume waits for a command left from before the crash to be
/// stopped by its own lev's lifeline before killing it.
const EARLIER_COPY_WAIT: Duration = Duration::from_millis(1500);
