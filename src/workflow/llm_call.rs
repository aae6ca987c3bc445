//! One LLM call of an agent turn: tokens shown live, the breaker changes
//! the call caused journaled, and an endpoint whose breaker is open waited
//! out instead of failing the step's attempt.
//!
//! A call refused by an open breaker before it sent anything did not try
//! the endpoint, so it must not use up one of the step's attempts (the
//! step would otherwise burn all its retries against the breaker in a few
//! milliseconds). The agent waits until the breaker lets its half-open
//! probe through and asks again; the wait is journaled as a
//! `provider_breaker` event for the step, so it shows live and in replay.
//! The step's cancellation ends the wait, and its timeout (which drops this
//! future) bounds it. A call that sent requests and then found the breaker
//! open did fail for real, and fails the attempt as before: every attempt
//! that is used up sent at least one request, so retries against a dead
//! endpoint still end.

use std::time::Duration;

use tokio::sync::mpsc;

use super::attempt::{AttemptCtx, StepError, humantime};
use crate::llm::{BreakerChange, ChatRequest, ChatResponse, LlmError, Provider, StreamDelta};
use crate::protocol::{Delta, Event, Millis};

/// How long to wait before asking again while another call's half-open
/// probe is out (the breaker gives no time for that: it ends when the
/// probe does).
const PROBE_POLL: Duration = Duration::from_millis(100);

/// Asks `provider` for a reply to `req`, waiting out an open breaker. The
/// outer error is the step's (journal, cancelled); the inner one is the
/// provider's, which fails the attempt.
pub(crate) async fn chat(
    actx: &AttemptCtx,
    provider: &dyn Provider,
    req: &ChatRequest,
) -> Result<Result<ChatResponse, LlmError>, StepError> {
    // The wait last journaled, so polling for a probe does not repeat it.
    let mut announced: Option<(String, bool)> = None;
    loop {
        let reply = call_once(actx, provider, req).await?;
        let refused = match &reply {
            Err(err) => err.refused_before_sending().map(|d| (err, d)),
            Ok(_) => None,
        };
        let Some((err, retry_in)) = refused else {
            return Ok(reply);
        };
        let probe_out = retry_in.is_zero();
        // The breaker rounds down to whole milliseconds; one more makes the
        // next try land after the cooldown, not just before it.
        let wait = if probe_out {
            PROBE_POLL
        } else {
            retry_in + Duration::from_millis(1)
        };
        let endpoint = match err {
            LlmError::CircuitOpen { provider, .. } => provider.clone(),
            _ => provider.name(),
        };
        let announce = Some((endpoint.clone(), probe_out));
        if announced != announce {
            record_wait(actx, endpoint, err, probe_out, wait).await?;
            announced = announce;
        }
        tracing::info!(step = %actx.key, ?wait, error = %err, "waiting for the provider's breaker");
        tokio::select! {
            _ = actx.cancel.cancelled() => return Err(StepError::Cancelled),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One request through `provider`, its breaker changes journaled.
async fn call_once(
    actx: &AttemptCtx,
    provider: &dyn Provider,
    req: &ChatRequest,
) -> Result<Result<ChatResponse, LlmError>, StepError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<StreamDelta>();
    let rec = actx.ctx.rec.clone();
    let key = actx.key.clone();
    let (attempt, turn) = (actx.attempt, req.meta.turn);
    // Tokens are shown live, retries journaled as they happen (a user
    // waiting on a throttled provider sees why), breaker changes kept to be
    // journaled after the call. The channel closes when the call's future
    // is gone, which ends the forwarding. Both run in this task: a task of
    // its own would cost a spawn and a wake-up of another thread per call.
    let mut redact = crate::secrets::current().stream();
    let forward = async move {
        let mut changes = Vec::new();
        while let Some(d) = rx.recv().await {
            match d {
                StreamDelta::Retry(notice) => {
                    let error =
                        without_endpoint(&notice.error.to_string(), &notice.provider).to_string();
                    let event = Event::LlmRetrying {
                        step: key.clone(),
                        attempt,
                        turn,
                        endpoint: notice.provider,
                        failed: notice.attempt,
                        tries: notice.tries,
                        error: crate::secrets::current().redact(&error).into_owned(),
                        delay_ms: millis(notice.delay),
                        at: Millis::now(),
                    };
                    // Only news: a journal that refuses it fails the
                    // reply's own record right after, with the cause.
                    if let Err(e) = rec.record(event).await {
                        tracing::warn!(step = %key, error = %e, "could not journal an LLM retry");
                    }
                }
                // A model may echo a key it saw (held back while it may be
                // one cut between two deltas).
                StreamDelta::Text(text) => {
                    let text = redact.push(&text);
                    if !text.is_empty() {
                        rec.delta(Delta::Token {
                            step: key.clone(),
                            text,
                        });
                    }
                }
                StreamDelta::Breaker(change) => changes.push(change),
                StreamDelta::ToolCall { .. } => {}
            }
        }
        let rest = redact.finish();
        if !rest.is_empty() {
            rec.delta(Delta::Token {
                step: key,
                text: rest,
            });
        }
        changes
    };
    let (reply, changes) = tokio::join!(provider.chat(req, Some(tx)), forward);
    record_breaker_changes(actx, changes).await?;
    Ok(reply)
}

/// An error's text without the endpoint it starts with (the event names
/// the endpoint on its own).
fn without_endpoint<'a>(text: &'a str, endpoint: &str) -> &'a str {
    text.strip_prefix(endpoint)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(text)
}

/// Journals that the step waits for `endpoint`'s breaker, and how long.
async fn record_wait(
    actx: &AttemptCtx,
    endpoint: String,
    err: &LlmError,
    probe_out: bool,
    wait: Duration,
) -> Result<(), StepError> {
    let now = actx.ctx.now();
    let failures = match err {
        LlmError::CircuitOpen { failures, .. } => *failures,
        _ => 0,
    };
    let (state, until, why) = if probe_out {
        (
            "half_open",
            None,
            "another request's half-open probe is out; waiting for its answer".to_string(),
        )
    } else {
        (
            "open",
            Some(Millis(now.0.saturating_add(millis(wait)))),
            format!("waiting {} for the half-open probe", humantime(wait)),
        )
    };
    let event = Event::ProviderBreaker {
        endpoint,
        state: state.to_string(),
        failures,
        until,
        reason: format!(
            "attempt {} {why} (the attempt is not used up: nothing was sent)",
            actx.attempt
        ),
        step: Some(actx.key.clone()),
        at: now,
    };
    actx.record(event).await.map(|_| ())
}

/// Journals the breaker changes a call caused, in order.
async fn record_breaker_changes(
    actx: &AttemptCtx,
    changes: Vec<BreakerChange>,
) -> Result<(), StepError> {
    for change in changes {
        let now = actx.ctx.now();
        let until = change
            .retry_in
            .map(|d| Millis(now.0.saturating_add(millis(d))));
        let event = Event::ProviderBreaker {
            endpoint: change.endpoint,
            state: change.phase.as_str().to_string(),
            failures: change.failures,
            until,
            reason: change.reason,
            step: Some(actx.key.clone()),
            at: now,
        };
        actx.record(event).await?;
    }
    Ok(())
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}
