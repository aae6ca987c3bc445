//! One step's durable life: render, fingerprint, record the intent, run the
//! attempt under its timeout, retry by policy, record the outcome. On
//! resume, a recorded outcome is returned as is; an in-flight attempt is
//! re-run when idempotent, otherwise the run pauses for a decision.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use super::attempt::{AttemptCtx, StepError, humantime};
use super::context::{Halt, RunCtx};
use super::history::Settled;
use super::kinds::{self, Work};
use super::{leftovers, semantic, steer, worktree};
use crate::protocol::{Attempt, Event, InFlightDecision, PauseReason, StepKey, Usage};
use crate::spec::expr::EvalContext;
use crate::spec::{RetryOn, Step};

/// How a step task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepEnd {
    Settled(Settled),
    Paused(PauseReason),
}

/// Runs a step's task so that a panic in it (a bug in lev) ends the step
/// as failed, journaled, instead of losing the task: its slot and the
/// steps that need it would otherwise wait forever.
pub async fn guarded(
    ctx: Arc<RunCtx>,
    key: StepKey,
    task: impl std::future::Future<Output = StepEnd>,
) -> StepEnd {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(task).catch_unwind().await {
        Ok(end) => end,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            tracing::error!(step = %key, panic = %what, "a step's task panicked");
            if let Ok(mut m) = ctx.step_cancels.lock() {
                m.remove(&key);
            }
            let error = format!("lev failed inside this step (a bug; the log has more): {what}");
            StepEnd::Settled(fail_without_attempt(&ctx, &key, error).await)
        }
    }
}

/// Records a failure for a step that never got to an attempt (e.g. its `if:`
/// could not be evaluated).
pub async fn fail_without_attempt(ctx: &RunCtx, key: &StepKey, error: String) -> Settled {
    let event = Event::StepFailed {
        step: key.clone(),
        attempt: Attempt(0),
        error: error.clone(),
        retry_in_ms: None,
        usage: Usage::default(),
        at: ctx.now(),
    };
    let _ = ctx.rec.record(event).await;
    Settled::Failed { error }
}

pub async fn run_step(ctx: Arc<RunCtx>, key: StepKey, step: Step, eval: EvalContext) -> StepEnd {
    // The step's own token: `Op::CancelStep` stops it alone, `Op::Cancel` stops all.
    let cancel = ctx.cancel.child_token();
    if let Ok(mut m) = ctx.step_cancels.lock() {
        m.insert(key.clone(), cancel.clone());
    }
    // Lets the tests check what a panicking step does to its run.
    #[cfg(test)]
    if key.as_str().ends_with("panics-in-test") {
        panic!("this step panics in a test");
    }
    // An emergency stop that came between the graph's check and the line
    // above did not see this token: the step must not begin.
    let end = if steer::stopped(&ctx) {
        StepEnd::Paused(PauseReason::EmergencyStop)
    } else if super::spread::delegates(&ctx, &step) {
        super::spread::delegate(ctx.clone(), key.clone(), step, eval, cancel).await
    } else {
        run_step_inner(ctx.clone(), key.clone(), step, eval, cancel).await
    };
    if let Ok(mut m) = ctx.step_cancels.lock() {
        m.remove(&key);
    }
    end
}

async fn run_step_inner(
    ctx: Arc<RunCtx>,
    key: StepKey,
    step: Step,
    eval: EvalContext,
    cancel: tokio_util::sync::CancellationToken,
) -> StepEnd {
    if let Some(condition) = &step.when_semantic {
        match semantic::holds(&ctx, &key, &step, condition, &eval).await {
            Ok((true, _)) => {}
            Ok((false, reason)) => {
                let why = if reason.is_empty() {
                    format!("when_semantic \"{condition}\" does not hold")
                } else {
                    format!("when_semantic \"{condition}\" does not hold: {reason}")
                };
                record_skip(&ctx, key, why).await;
                return StepEnd::Settled(Settled::Skipped);
            }
            Err(e) => return StepEnd::Settled(fail_without_attempt(&ctx, &key, e).await),
        }
    }
    let worktree = match worktree::prepare(&ctx, &key, &step).await {
        Ok(w) => w,
        Err(e) => return StepEnd::Settled(fail_without_attempt(&ctx, &key, e).await),
    };
    let root = worktree
        .as_ref()
        .map_or_else(|| ctx.workspace.clone(), |w| w.root.clone());
    let kind = kinds::of(&step.kind);
    let work = match kind.render(&step, &root, &eval) {
        Ok(w) => w,
        Err(e) => return StepEnd::Settled(fail_without_attempt(&ctx, &key, e).await),
    };
    let fingerprint = fingerprint(&step, work.as_ref());
    let idempotent = step.idempotent || !kind.side_effects();

    // Where the journal left this step.
    let mut attempt = Attempt(1);
    let mut resumed_seq = None;
    // Set when this attempt continues or re-runs one a crash interrupted:
    // its commands keep that attempt's idempotency key.
    let mut key_origin = None;
    if let Some(next) = ctx.retried(&key) {
        // Retried while this process runs: a fresh attempt, nothing adopted.
        attempt = next;
    } else if let Some(rec) = ctx.history.steps.get(&key) {
        if rec.retry_requested {
            // Retried after it settled: the recorded attempts stay history.
            attempt = Attempt(rec.attempt.0 + 1);
        } else if rec.settled.is_none() && rec.attempt.0 > 0 {
            if rec.fingerprint != fingerprint {
                return StepEnd::Paused(PauseReason::Divergence {
                    step: key.clone(),
                    key: format!("{key} attempt {}", rec.attempt),
                    recorded: format!("step fingerprint {}", short(&rec.fingerprint)),
                    computed: format!("step fingerprint {}", short(&fingerprint)),
                });
            }
            // Nothing of the interrupted attempt may still run, whatever is
            // decided next (the lifeline of the lev that started it should
            // have stopped it; a copy left over is waited for, then killed).
            if let Err(e) = leftovers::stop_earlier_copies(&ctx, &key, rec).await {
                return StepEnd::Settled(Settled::Failed { error: e });
            }
            key_origin = Some(rec.key_origin);
            if idempotent {
                attempt = rec.attempt;
                resumed_seq = Some(rec.started_seq);
            } else if kind.resumes_itself(&step, &ctx, &key) {
                // An agent CLI relaunched into its own session: nothing to ask.
                attempt = Attempt(rec.attempt.0 + 1);
            } else {
                let decision = match (rec.decision, ctx.deps.options.in_flight) {
                    (Some(d), _) => d,
                    (None, Some(d)) => {
                        let event = Event::InFlightResolved {
                            step: key.clone(),
                            decision: d,
                            at: ctx.now(),
                        };
                        if ctx.rec.record(event).await.is_err() {
                            return StepEnd::Paused(PauseReason::InFlight {
                                step: key,
                                attempt: rec.attempt,
                            });
                        }
                        d
                    }
                    (None, None) => {
                        return StepEnd::Paused(PauseReason::InFlight {
                            step: key,
                            attempt: rec.attempt,
                        });
                    }
                };
                match decision {
                    InFlightDecision::Skip => {
                        let reason =
                            "was in flight at a crash; skipped by the user's decision".to_string();
                        record_skip(&ctx, key, reason).await;
                        return StepEnd::Settled(Settled::Skipped);
                    }
                    InFlightDecision::MarkDone => {
                        let outputs = marked_done_outputs(&step);
                        let event = Event::StepSucceeded {
                            step: key,
                            attempt: rec.attempt,
                            outputs: outputs.clone(),
                            usage: Usage::default(),
                            at: ctx.now(),
                        };
                        let _ = ctx.rec.record(event).await;
                        return StepEnd::Settled(Settled::Succeeded {
                            outputs: outputs.into(),
                        });
                    }
                    InFlightDecision::Rerun => attempt = Attempt(rec.attempt.0 + 1),
                }
            }
        } else if rec.retry_in_ms.is_some() {
            attempt = Attempt(rec.attempt.0 + 1);
            let due = rec.failed_at_ms + rec.retry_in_ms.unwrap_or(0);
            let wait = due.saturating_sub(ctx.now().0);
            if !sleep_or_cancel(&cancel, Duration::from_millis(wait)).await {
                return cancelled(&ctx, &key).await;
            }
        }
    }

    // Agent and shell steps take a slot; humans and child graphs do not.
    // An ad-hoc program the user opened does not wait for a slot.
    let _permit = match kind.takes_slot() && !super::pty::is_adhoc(&key) {
        true => ctx.slots.acquire().await.ok(),
        false => None,
    };

    loop {
        // A step whose effects cannot be taken back starts only once what
        // it follows is on disk (a step's success is recorded ahead of its
        // commit), so a full disk found by that commit pauses the run
        // before the step does anything.
        if kind.side_effects() {
            ctx.rec.caught_up().await;
            if let Some(error) = ctx.deps.journal.disk_full() {
                return StepEnd::Paused(PauseReason::DiskFull { error });
            }
        }
        let seq = match resumed_seq.take() {
            Some(seq) => seq,
            None => {
                let mode = work.mode().map(str::to_string);
                let hints = mode
                    .as_deref()
                    .map(|m| agent_hints(&ctx, &step, m))
                    .unwrap_or_default();
                let event = Event::StepStarted {
                    step: key.clone(),
                    attempt,
                    fingerprint: fingerprint.clone(),
                    kind: step.kind.name().to_string(),
                    mode,
                    idempotent,
                    hints,
                    at: ctx.now(),
                };
                // A start needs no fsync of its own when nothing acts on
                // it before the attempt's next durable fact (an agent's
                // reply that calls a tool, its end; a shell command's
                // process group, journaled before the command may run): if
                // a crash loses it, nothing ran, and the step just starts
                // again. The seq stays the same in a record made durable
                // later, so an idempotency key built from it holds.
                let recorded = if !kind.start_needs_commit() {
                    ctx.rec.record_unsynced(event).await
                } else {
                    ctx.rec.record(event).await
                };
                match recorded {
                    Ok(seq) => seq.0,
                    Err(e) => {
                        return StepEnd::Settled(Settled::Failed {
                            error: format!("journal: {e}"),
                        });
                    }
                }
            }
        };
        let actx = AttemptCtx {
            ctx: ctx.clone(),
            cancel: cancel.clone(),
            key: key.clone(),
            attempt,
            step: step.clone(),
            idempotency_key: {
                let (seq, attempt) = key_origin.unwrap_or((seq, attempt));
                format!("{}:{seq}:{}", ctx.rec.run(), attempt.0)
            },
            usage: Arc::new(Mutex::new(Usage::default())),
            root: root.clone(),
            deferred: Mutex::default(),
            questions_asked: Mutex::new(0),
        };
        let mut result = run_attempt(&actx, work.as_ref()).await;
        if let Some(wt) = &worktree
            && !matches!(result, Err(StepError::Paused(_) | StepError::Cancelled))
            && let Err(e) = worktree::commit(&actx, wt).await
        {
            // Work the branch does not hold is not a finished step.
            if result.is_ok() {
                result = Err(StepError::Fatal(e));
            } else {
                tracing::warn!(step = %key, "{e}");
            }
        }
        let usage = actx.usage.lock().map(|u| *u).unwrap_or_default();
        let error = match result {
            Ok(raw) => match extract_outputs(&step, raw) {
                Ok(outputs) => {
                    let event = Event::StepSucceeded {
                        step: key.clone(),
                        attempt,
                        outputs: outputs.clone(),
                        usage,
                        at: ctx.now(),
                    };
                    // With the attempt's deferred facts (an agent's final
                    // reply): one commit for both. The steps that need this
                    // one start while it syncs; they and the participants
                    // see it as they would a durable fact (`record_ahead`).
                    if let Err(e) = actx.record_ahead(event).await {
                        return StepEnd::Settled(Settled::Failed {
                            error: journal_error(e),
                        });
                    }
                    return StepEnd::Settled(Settled::Succeeded {
                        outputs: outputs.into(),
                    });
                }
                Err(e) => StepError::Fatal(e),
            },
            Err(e) => e,
        };
        if matches!(
            error,
            StepError::Paused(_) | StepError::Cancelled | StepError::Skipped(_)
        ) {
            // What the attempt did before it stopped stays on record.
            let _ = actx.flush().await;
        }
        let (message, retry_on) = match error {
            StepError::Paused(reason) => return StepEnd::Paused(reason),
            StepError::Cancelled => return cancelled(&ctx, &key).await,
            StepError::Skipped(reason) => {
                record_skip(&ctx, key, reason).await;
                return StepEnd::Settled(Settled::Skipped);
            }
            StepError::Limit(message) => {
                ctx.set_halt(Halt::Limit(message.clone()));
                (message, None)
            }
            StepError::Fatal(message) => (message, None),
            StepError::Failed(message) => (message, Some(RetryOn::Error)),
            StepError::Timeout(message) => (message, Some(RetryOn::Timeout)),
        };
        let retry = retry_on.is_some_and(|on| step.retry.on.contains(&on))
            && attempt.0 < step.retry.max_attempts
            && !cancel.is_cancelled()
            && ctx.halted().is_none();
        let delay = retry.then(|| step.retry.delay_before(attempt.0 + 1));
        let event = Event::StepFailed {
            step: key.clone(),
            attempt,
            error: message.clone(),
            retry_in_ms: delay.map(|d| d.as_millis() as u64),
            usage,
            at: ctx.now(),
        };
        if let Err(e) = actx.record(event).await {
            return StepEnd::Settled(Settled::Failed {
                error: format!("{message}; {}", journal_error(e)),
            });
        }
        match delay {
            Some(d) => {
                if !sleep_or_cancel(&cancel, d).await {
                    return cancelled(&ctx, &key).await;
                }
                attempt = Attempt(attempt.0 + 1);
            }
            None => return StepEnd::Settled(Settled::Failed { error: message }),
        }
    }
}

async fn run_attempt(actx: &AttemptCtx, work: &dyn Work) -> Result<Map<String, Value>, StepError> {
    // Human gates and child workflows carry their own timeout policy.
    let timeout = match kinds::of(&actx.step.kind).own_timeout() {
        true => None,
        false => actx.step.timeout,
    };
    let work = work.run(actx);
    tokio::select! {
        // A step cancelled when its work is also done ends cancelled: the
        // cancel (a user's, or a chain's time box, already journaled) came
        // first.
        biased;
        _ = actx.cancel.cancelled() => Err(StepError::Cancelled),
        r = async {
            match timeout {
                Some(t) => match tokio::time::timeout(t, work).await {
                    Ok(r) => r,
                    Err(_) => Err(StepError::Timeout(format!("timed out after {}", humantime(t)))),
                },
                None => work.await,
            }
        } => r,
    }
}

/// Records that a step was skipped, and why.
pub async fn record_skip(ctx: &RunCtx, key: StepKey, reason: String) {
    let event = Event::StepSkipped {
        step: key,
        reason,
        at: ctx.now(),
    };
    let _ = ctx.rec.record(event).await;
}

async fn cancelled(ctx: &RunCtx, key: &StepKey) -> StepEnd {
    if steer::stopped(ctx) {
        // Stopped, not cancelled: nothing is recorded, so `lev resume`
        // treats the attempt as interrupted and runs it again.
        return StepEnd::Paused(PauseReason::EmergencyStop);
    }
    let _ = ctx
        .rec
        .record(Event::StepCancelled {
            step: key.clone(),
            at: ctx.now(),
        })
        .await;
    StepEnd::Settled(Settled::Cancelled)
}

/// Sleeps unless the run is cancelled first; false when cancelled.
async fn sleep_or_cancel(cancel: &tokio_util::sync::CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// What lev tells an agent besides its prompt, in the order it is told:
/// the step's hints (appended to the prompt by `render`) and the mode's
/// (in the system prompt, see `agent::system_prompt`). Recorded with the
/// step's start so views show them beside the user's messages.
fn agent_hints(ctx: &RunCtx, step: &Step, mode: &str) -> Vec<String> {
    let mut out = step.hints.clone();
    if let Some(m) = ctx.deps.modes.get(mode) {
        out.extend(m.hints.iter().cloned());
    }
    out
}

/// `root` is where the step works: the run's workspace or its worktree.
/// The words of a journal failure the attempt met.
fn journal_error(e: StepError) -> String {
    match e {
        StepError::Fatal(text) => text,
        other => format!("journal: {other:?}"),
    }
}

/// Hash of what an attempt will do; compared on resume.
pub(super) fn fingerprint(step: &Step, work: &dyn Work) -> String {
    blake3::hash(work.identity(step).to_string().as_bytes())
        .to_hex()
        .to_string()
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn marked_done_outputs(step: &Step) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = kinds::of(&step.kind)
        .marked_done_outputs()
        .into_iter()
        .collect();
    out.insert("marked_done".into(), Value::Bool(true));
    out
}

/// The step's outputs: everything the kind produced, plus each declared
/// output taken from its `from:` path (or its default).
fn extract_outputs(
    step: &Step,
    raw: Map<String, Value>,
) -> Result<BTreeMap<String, Value>, String> {
    let root = Value::Object(raw);
    let mut out: BTreeMap<String, Value> = match &root {
        Value::Object(m) => m.clone().into_iter().collect(),
        _ => BTreeMap::new(),
    };
    for (name, spec) in &step.outputs {
        match lookup(&root, &spec.from) {
            Some(v) => {
                out.insert(name.clone(), v.clone());
            }
            None => match &spec.default {
                Some(d) => {
                    out.insert(name.clone(), d.clone());
                }
                None => {
                    return Err(format!(
                        "output `{name}`: `{}` is not in the step's result (it has: {})",
                        spec.from,
                        describe_keys(&root)
                    ));
                }
            },
        }
    }
    Ok(out)
}

fn describe_keys(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut parts = Vec::new();
            for (k, v) in m {
                match v {
                    Value::Object(inner) if k == "json" => {
                        for ik in inner.keys() {
                            parts.push(format!("json.{ik}"));
                        }
                    }
                    _ => parts.push(k.clone()),
                }
            }
            parts.join(", ")
        }
        _ => String::new(),
    }
}

fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}
