//! Live steering of a run in progress: messages to agents, pauses (of the
//! whole run or of one agent) and the emergency stop. The op dispatcher
//! journals each change and updates the shared state kept here; agents
//! consult it at their turn boundaries (before an LLM request) and the
//! step graph before it starts a step.
//!
//! A live pause is deliberately not durable: a run that crashed (or whose
//! workbench quit) while paused is resumed unpaused by `lev resume`,
//! because resuming it is the user asking it to run. The recorded
//! `PauseRequested` stays in the journal as history only.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::attempt::{AttemptCtx, StepError};
use super::context::{Halt, RunCtx};
use crate::protocol::{Event, FlowmindLevel, Op, PauseReason, StepKey};

use super::holds::Holds;

/// True once an emergency stop halted the run.
pub fn stopped(ctx: &RunCtx) -> bool {
    matches!(ctx.halted(), Some(Halt::Paused(PauseReason::EmergencyStop)))
}

/// Waits while `held` says so, unless the run halts or `cancel` fires.
/// False when cancelled.
async fn wait_while(
    ctx: &RunCtx,
    cancel: &CancellationToken,
    held: impl Fn(&Holds) -> bool,
) -> bool {
    let mut rx = ctx.steer.holds.subscribe();
    loop {
        if cancel.is_cancelled() {
            return false;
        }
        let holding = {
            let h = rx.borrow_and_update();
            held(&h)
        };
        if !holding || ctx.halted().is_some() {
            return true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            changed = rx.changed() => {
                if changed.is_err() {
                    return true;
                }
            }
        }
    }
}

/// The graph waits here before starting steps while the run is paused.
pub async fn graph_hold(ctx: &RunCtx) {
    let _ = wait_while(ctx, &ctx.cancel, |h| h.run).await;
}

/// An agent's turn boundary: waits while the run or this agent is paused.
pub async fn agent_hold(actx: &AttemptCtx) -> Result<(), StepError> {
    let key = &actx.key;
    if wait_while(&actx.ctx, &actx.cancel, |h| h.run || h.steps.contains(key)).await {
        Ok(())
    } else {
        Err(StepError::Cancelled)
    }
}

/// A running agent's place in the steering state; leaving it (the agent
/// ended) drops its pause and says so about messages it never got.
pub struct Seat {
    ctx: Arc<RunCtx>,
    key: StepKey,
}

impl Seat {
    pub fn take(ctx: &Arc<RunCtx>, key: &StepKey) -> Seat {
        if let Ok(mut m) = ctx.steer.inboxes.lock() {
            let inbox = m.entry(key.clone()).or_default();
            // FlowMind's instructions that a crash kept from the agent.
            if let Some(undelivered) = ctx.history.flowmind_undelivered.get(key) {
                for text in undelivered {
                    if !inbox.contains(text) {
                        inbox.push(text.clone());
                    }
                }
            }
        }
        Seat {
            ctx: ctx.clone(),
            key: key.clone(),
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let left = self
            .ctx
            .steer
            .inboxes
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&self.key))
            .unwrap_or_default();
        let key = &self.key;
        self.ctx
            .steer
            .holds
            .send_if_modified(|h| h.steps.remove(key));
        if !left.is_empty() {
            self.ctx.rec.refuse(format!(
                "{} message(s) for `{key}` were not delivered: the agent ended before its next turn",
                left.len()
            ));
        }
    }
}

/// The messages that join the request at `turn`: those recorded for it, and
/// when the turn is not a recorded one, those waiting now (journaled first).
pub async fn messages_for(actx: &AttemptCtx, turn: u32) -> Result<Vec<String>, StepError> {
    let ctx = &actx.ctx;
    let id = (actx.key.clone(), actx.attempt, turn);
    let mut out = ctx.history.messages.get(&id).cloned().unwrap_or_default();
    if ctx.history.replies.contains_key(&id) {
        // A replayed turn: its request is the recorded one, nothing more.
        return Ok(out);
    }
    let waiting = ctx
        .steer
        .inboxes
        .lock()
        .ok()
        .and_then(|mut m| m.get_mut(&actx.key).map(std::mem::take))
        .unwrap_or_default();
    for text in waiting {
        let event = Event::AgentMessaged {
            step: actx.key.clone(),
            attempt: actx.attempt,
            turn,
            text: text.clone(),
            at: ctx.now(),
        };
        actx.record(event).await?;
        out.push(text);
    }
    Ok(out)
}

/// True when messages wait for `turn` (recorded ones on resume, or queued
/// ones live): an agent that just gave its final answer takes one more turn.
pub fn messages_waiting(actx: &AttemptCtx, turn: u32) -> bool {
    let ctx = &actx.ctx;
    let id = (actx.key.clone(), actx.attempt, turn);
    if ctx.history.messages.contains_key(&id) {
        return true;
    }
    if ctx
        .history
        .replies
        .contains_key(&(actx.key.clone(), actx.attempt, turn - 1))
    {
        // The turn that just ended is a recorded one: what followed it is
        // in the journal, and nothing followed.
        return false;
    }
    ctx.steer
        .inboxes
        .lock()
        .ok()
        .is_some_and(|m| m.get(&actx.key).is_some_and(|q| !q.is_empty()))
}

/// Carries out a steering op: journal the change, then apply it; an op that
/// cannot apply is said back (`Notice::Refused`), never dropped silently.
pub async fn apply(ctx: &RunCtx, op: Op) {
    // A step a worker executes as a step run (a spread run) is steered there.
    if let Some(sent) = super::spread::forward(ctx, &op).await {
        if let Err(e) = sent {
            ctx.rec.refuse(format!("not carried out: {e}"));
        }
        return;
    }
    match op {
        Op::Message { step, text, .. } => message(ctx, step, text),
        Op::Pause { step, .. } => pause(ctx, step).await,
        Op::Unpause { step, .. } => unpause(ctx, step).await,
        Op::EmergencyStop { .. } => emergency_stop(ctx).await,
        _ => {}
    }
}

/// What the FlowMind controller decided about a stuck agent: refused once
/// callbacks are stopped (the system's initiative is off) or when the step
/// is no running agent; otherwise journaled, then carried out — an
/// instruction is queued for the agent like a user's message.
pub(super) async fn flowmind(
    ctx: &RunCtx,
    step: StepKey,
    rule: String,
    observed: String,
    level: FlowmindLevel,
    text: String,
) {
    if let Some(why) = no_initiative(ctx, &step) {
        ctx.rec.refuse(format!(
            "FlowMind's {} for `{step}` not carried out: {why}",
            level.as_str()
        ));
        return;
    }
    // A re-plan goes to the swarm's task loop, which must be there to take
    // it: refused before it is journaled otherwise.
    let replan_to = if level == FlowmindLevel::Replan {
        let gate = ctx.replans.lock().ok();
        let (tx, refusal) = match gate {
            Some(g) => (g.tx.clone(), g.refusal(&step)),
            None => (None, Some("its gate is broken".to_string())),
        };
        if let Some(why) = refusal {
            ctx.rec
                .refuse(format!("FlowMind's re-plan not carried out: {why}"));
            return;
        }
        tx
    } else {
        None
    };
    // A question to the agent counts against the run's `max_questions`,
    // like every question the system asks.
    if level == FlowmindLevel::Ask && !ctx.count_question() {
        let _ = ctx
            .rec
            .record(ctx.max_questions_tripped(Some(step.clone())))
            .await;
        ctx.rec.refuse(format!(
            "FlowMind's question to `{step}` not asked: max_questions"
        ));
        return;
    }
    let event = Event::FlowmindDecided {
        step: step.clone(),
        rule,
        observed: observed.clone(),
        level,
        text: text.clone(),
        at: ctx.now(),
    };
    if let Err(e) = ctx.rec.record(event).await {
        ctx.rec.refuse(format!(
            "FlowMind's decision not journaled, so not carried out: {e}"
        ));
        return;
    }
    match level {
        FlowmindLevel::Instruct | FlowmindLevel::Ask => {
            message(ctx, step, flowmind_message(level, &text))
        }
        FlowmindLevel::Replan => {
            if let Ok(mut g) = ctx.replans.lock() {
                g.decided += 1;
                g.busy = true;
            }
            // A loop that ended meanwhile leaves it journaled: a resumed
            // run carries it out (`swarm::replan`).
            if let Some(tx) = replan_to {
                let _ = tx.send(super::context::Replan { step, observed });
            }
        }
        FlowmindLevel::Escalate => {}
    }
}

/// Why FlowMind may not act on `step` now: callbacks are stopped (the
/// system's initiative is off), or it is no running agent step.
fn no_initiative(ctx: &RunCtx, step: &StepKey) -> Option<String> {
    if ctx.callbacks_stopped().is_some() {
        Some("callbacks are stopped".to_string())
    } else if !ctx.steer.is_agent(step) {
        Some(format!("`{step}` is not a running agent step"))
    } else {
        None
    }
}

/// FlowMind's follow-up of a running agent step: refused once callbacks
/// are stopped, for a step that is no running agent, or in a mode that is
/// not there; otherwise journaled, then kept for the step's end, where it
/// is decided with the agent's own proposals (limits, approvals).
pub(super) async fn propose(ctx: &RunCtx, step: StepKey, title: String, mode: String, why: String) {
    let refusal = no_initiative(ctx, &step).or_else(|| {
        (!ctx.deps.modes.contains(&mode)).then(|| format!("there is no mode `{mode}`"))
    });
    if let Some(why) = refusal {
        ctx.rec.refuse(format!(
            "FlowMind's follow-up of `{step}` not proposed: {why}"
        ));
        return;
    }
    let event = Event::FlowmindProposed {
        step: step.clone(),
        title: title.clone(),
        mode: mode.clone(),
        why: why.clone(),
        at: ctx.now(),
    };
    if let Err(e) = ctx.rec.record(event).await {
        ctx.rec
            .refuse(format!("FlowMind's follow-up not journaled: {e}"));
        return;
    }
    if let Ok(mut m) = ctx.flowmind_followups.lock() {
        m.entry(step)
            .or_default()
            .push(flowmind_proposal(&title, &mode, &why));
    }
}

/// A follow-up FlowMind proposed, in the form an agent's proposal takes.
pub fn flowmind_proposal(title: &str, mode: &str, why: &str) -> serde_json::Value {
    serde_json::json!({
        "title": title,
        "mode": mode,
        "prompt": format!("{title}\n\nWhy this is needed: {why}"),
        "why": why,
        "by": "flowmind",
    })
}

/// Journals what FlowMind observed (a ledger: its tokens were spent
/// whether or not the agent still runs; its model stopping). Acting on it
/// is the rules' part, from the journal.
pub(super) async fn record_flowmind(ctx: &RunCtx, event: Event) {
    if let Err(e) = ctx.rec.record(event).await {
        ctx.rec
            .refuse(format!("FlowMind's observation not journaled: {e}"));
    }
}

/// FlowMind's conductor about an agent's question: journaled, then (an
/// answer it may give) handed to the waiting question, which takes it
/// after the grace period unless the user answers first. A question no
/// longer waiting is answered already: nothing to do.
pub(super) async fn conduct(ctx: &RunCtx, event: Event, answer: Option<String>, grace_ms: u64) {
    let Event::AnswerProposed { id, .. } = &event else {
        return;
    };
    let id = id.clone();
    let waiting = ctx
        .waiters
        .lock()
        .map(|w| w.questions.contains_key(&id))
        .unwrap_or(false);
    if !waiting {
        ctx.rec.refuse(format!(
            "FlowMind's answer to {id} not needed: it is answered"
        ));
        return;
    }
    if let Err(e) = ctx.rec.record(event).await {
        ctx.rec
            .refuse(format!("FlowMind's answer to {id} not journaled: {e}"));
        return;
    }
    let Some(answer) = answer.filter(|a| !a.trim().is_empty()) else {
        return;
    };
    let sender = ctx
        .waiters
        .lock()
        .ok()
        .and_then(|mut w| w.proposals.remove(&id));
    if let Some(tx) = sender {
        let _ = tx.send(super::context::Conducted {
            answer,
            grace: std::time::Duration::from_millis(grace_ms),
        });
    }
}

pub use crate::protocol::FLOWMIND_PREFIX;

/// What the agent reads of FlowMind's instruction or question.
pub fn flowmind_message(level: FlowmindLevel, text: &str) -> String {
    match level {
        FlowmindLevel::Ask => format!(
            "{FLOWMIND_PREFIX}a question for you — answer it in your next reply, then go on: {text}"
        ),
        _ => format!("{FLOWMIND_PREFIX}{text}"),
    }
}

fn message(ctx: &RunCtx, step: StepKey, text: String) {
    if text.trim().is_empty() {
        ctx.rec
            .refuse(format!("empty message for `{step}` not sent"));
        return;
    }
    let queued = match ctx.steer.inboxes.lock() {
        Ok(mut m) => match m.get_mut(&step) {
            Some(q) => {
                q.push(text);
                true
            }
            None => false,
        },
        Err(_) => false,
    };
    if !queued {
        ctx.rec.refuse(format!(
            "message not sent: `{step}` is not a running agent step (messages go to agents, before their next LLM request)"
        ));
    }
}

async fn pause(ctx: &RunCtx, step: Option<StepKey>) {
    let holds = ctx.steer.holds();
    let refusal = match &step {
        None if holds.run => Some("the run is already paused".to_string()),
        Some(s) if !ctx.steer.is_agent(s) => Some(format!(
            "`{s}` is not a running agent step: only agents pause alone (pause the run to hold everything)"
        )),
        Some(s) if holds.steps.contains(s) => Some(format!("`{s}` is already paused")),
        _ if ctx.halted().is_some() || ctx.cancel.is_cancelled() => {
            Some("the run is stopping".to_string())
        }
        _ => None,
    };
    if let Some(r) = refusal {
        ctx.rec.refuse(r);
        return;
    }
    let event = Event::PauseRequested {
        step: step.clone(),
        at: ctx.now(),
    };
    if let Err(e) = ctx.rec.record(event).await {
        ctx.rec
            .refuse(format!("pause not recorded, so not applied: {e}"));
        return;
    }
    ctx.steer.holds.send_modify(|h| match step {
        None => h.run = true,
        Some(s) => {
            h.steps.insert(s);
        }
    });
}

async fn unpause(ctx: &RunCtx, step: Option<StepKey>) {
    let holds = ctx.steer.holds();
    let refusal = match &step {
        None if !holds.run && holds.steps.is_empty() => Some("the run is not paused".to_string()),
        Some(s) if !holds.steps.contains(s) => Some(if holds.run {
            format!("`{s}` is not paused alone: the whole run is; unpause the run")
        } else {
            format!("`{s}` is not paused")
        }),
        _ => None,
    };
    if let Some(r) = refusal {
        ctx.rec.refuse(r);
        return;
    }
    let event = Event::PauseLifted {
        step: step.clone(),
        at: ctx.now(),
    };
    if let Err(e) = ctx.rec.record(event).await {
        // Letting the run go on is the safe side of a failed write.
        tracing::error!(error = %e, "could not journal an unpause");
    }
    ctx.steer.holds.send_modify(|h| match &step {
        None => *h = Holds::default(),
        Some(s) => {
            h.steps.remove(s);
        }
    });
}

async fn emergency_stop(ctx: &RunCtx) {
    if stopped(ctx) {
        ctx.rec.refuse("the run is already stopping".to_string());
        return;
    }
    if ctx.cancel.is_cancelled() {
        ctx.rec
            .refuse("the run is already being cancelled".to_string());
        return;
    }
    if let Err(e) = ctx
        .rec
        .record(Event::EmergencyStopped { at: ctx.now() })
        .await
    {
        // Stopping matters more than the record of it.
        tracing::error!(error = %e, "could not journal an emergency stop; stopping anyway");
    }
    // Halt first: a step that registers after this sees the halt itself
    // (`run_step`), one registered before is in the map cancelled below.
    ctx.set_halt(Halt::Paused(PauseReason::EmergencyStop));
    let tokens: Vec<CancellationToken> = ctx
        .step_cancels
        .lock()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    for t in tokens {
        t.cancel();
    }
}

/// Whether the journaled events show `step` as a running agent step (for
/// participants that only see the journal, like the control socket).
pub fn running_agent(events: &[crate::protocol::Recorded], step: &StepKey) -> Result<(), String> {
    let mut kind = None;
    let mut running = false;
    for r in events {
        if r.event.step() != Some(step) {
            continue;
        }
        match &r.event {
            Event::StepStarted { kind: k, .. } => {
                kind = Some(k.clone());
                running = true;
            }
            Event::StepSucceeded { .. }
            | Event::StepFailed { .. }
            | Event::StepSkipped { .. }
            | Event::StepCancelled { .. } => running = false,
            _ => {}
        }
    }
    match (kind.as_deref(), running) {
        (None, _) => Err(format!("step `{step}` has not started in this run")),
        (Some("agent"), true) => Ok(()),
        (Some("agent"), false) => Err(format!("step `{step}` is not running any more")),
        (Some(k), _) => Err(format!(
            "step `{step}` is a {k} step, not an agent: only agents take messages and pause alone"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Attempt, Millis, Recorded, RunId, Seq, Usage};
    use crate::workflow::history::History;

    fn recorded(events: Vec<Event>) -> Vec<Recorded> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Recorded {
                run: RunId("r".into()),
                seq: Seq(i as u64 + 1),
                event,
            })
            .collect()
    }

    fn started(step: &str, kind: &str) -> Event {
        Event::StepStarted {
            step: StepKey::new(step),
            attempt: Attempt(1),
            fingerprint: "f".into(),
            kind: kind.into(),
            mode: None,
            idempotent: true,
            hints: Vec::new(),
            at: Millis(1),
        }
    }

    #[test]
    fn only_a_running_agent_step_is_a_target() {
        let events = recorded(vec![
            started("plan", "agent"),
            started("build", "shell"),
            started("done", "agent"),
            Event::StepSucceeded {
                step: StepKey::new("done"),
                attempt: Attempt(1),
                outputs: Default::default(),
                usage: Usage::default(),
                at: Millis(2),
            },
        ]);
        assert!(running_agent(&events, &StepKey::new("plan")).is_ok());
        let e = running_agent(&events, &StepKey::new("build")).unwrap_err();
        assert!(e.contains("shell step, not an agent"), "{e}");
        let e = running_agent(&events, &StepKey::new("done")).unwrap_err();
        assert!(e.contains("not running any more"), "{e}");
        let e = running_agent(&events, &StepKey::new("later")).unwrap_err();
        assert!(e.contains("has not started"), "{e}");
    }

    #[test]
    fn history_gives_delivered_messages_back_per_turn_in_order() {
        let msg = |turn, text: &str| Event::AgentMessaged {
            step: StepKey::new("plan"),
            attempt: Attempt(1),
            turn,
            text: text.into(),
            at: Millis(3),
        };
        let events = recorded(vec![
            started("plan", "agent"),
            msg(2, "first"),
            msg(2, "second"),
            msg(4, "later"),
            Event::PauseRequested {
                step: None,
                at: Millis(4),
            },
        ]);
        let h = History::from_events(&events);
        let key = |turn| (StepKey::new("plan"), Attempt(1), turn);
        assert_eq!(h.messages[&key(2)], ["first", "second"]);
        assert_eq!(h.messages[&key(4)], ["later"]);
        assert!(!h.messages.contains_key(&key(3)));
    }
}
