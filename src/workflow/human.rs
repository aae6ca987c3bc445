//! Human gates: questions (up front, `question` steps, an agent's
//! `ask_user`) and approvals. The question is journaled before anyone sees
//! it; the answer is journaled (by the op dispatcher) before the waiting
//! step gets it, so it is never lost and never asked twice.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::attempt::{AttemptCtx, StepError, humantime};
use super::context::{Answer, Decision, RunCtx};
use crate::protocol::{AnswerSource, ChoiceRecord, Event, StepKey};
use crate::spec::{Choice, OnTimeout, StepKind, ToUser, Workflow};

/// A question to put to the user.
pub struct Ask {
    pub id: String,
    pub step: Option<StepKey>,
    pub header: Option<String>,
    pub ask: String,
    pub options: Vec<Choice>,
    pub default: Option<String>,
    pub timeout: Duration,
    /// An agent's `ask_user`: FlowMind's conductor may answer it.
    pub from_agent: bool,
}

impl Ask {
    /// A yes/no question about `step` with no default (headless: `--yes`
    /// picks the first option, `yes`), labelled `[yes, no]`.
    pub fn yes_no(
        ctx: &RunCtx,
        id: String,
        step: &StepKey,
        header: &str,
        ask: String,
        [yes, no]: [&str; 2],
    ) -> Ask {
        let choice = |value: &str, label: &str| Choice {
            value: value.into(),
            label: label.into(),
        };
        Ask {
            id,
            step: Some(step.clone()),
            header: Some(header.into()),
            ask,
            options: vec![choice("yes", yes), choice("no", no)],
            default: None,
            timeout: ctx.answer_timeout,
            from_agent: false,
        }
    }
}

/// Asks a question made by `Ask::yes_no`: true for `yes`.
pub async fn confirm(ctx: &RunCtx, q: &Ask) -> Result<bool, String> {
    ask(ctx, q).await.map(|a| a.text == "yes")
}

/// Answers the workflow's up-front questions before any step runs.
pub async fn ask_up_front(ctx: &RunCtx, wf: &Workflow) -> Result<(), String> {
    let mut waiting = Vec::new();
    for q in &wf.whisper.questions {
        if ctx.history.answers.contains_key(&q.id) {
            continue;
        }
        let ask = Ask {
            id: q.id.clone(),
            step: None,
            header: q.header.clone(),
            ask: q.ask.clone(),
            options: q.options.clone(),
            default: q.default.clone(),
            timeout: wf.whisper.answer_timeout,
            from_agent: false,
        };
        match wf.whisper.to_user {
            ToUser::Ask => waiting.push(ask),
            ToUser::Defaults | ToUser::Never => {
                let Some(default) = &q.default else {
                    return Err(format!(
                        "question `{}` has no default, and whisper.to_user is not `ask`",
                        q.id
                    ));
                };
                record_answer(ctx, &q.id, default, AnswerSource::Default).await?;
                set_whisper(ctx, &q.id, default);
            }
        }
    }
    // Ask them all at once; the user answers in any order.
    let answers = futures::future::join_all(waiting.iter().map(|a| ask(ctx, a))).await;
    for (a, answer) in waiting.iter().zip(answers) {
        let answer = answer?;
        set_whisper(ctx, &a.id, &answer.text);
    }
    Ok(())
}

fn set_whisper(ctx: &RunCtx, id: &str, answer: &str) {
    if let Ok(mut w) = ctx.whisper.lock() {
        w.insert(id.to_string(), Value::String(answer.to_string()));
    }
}

pub(super) async fn record_answer(
    ctx: &RunCtx,
    id: &str,
    answer: &str,
    source: AnswerSource,
) -> Result<(), String> {
    let event = Event::QuestionAnswered {
        id: id.to_string(),
        answer: answer.to_string(),
        source,
        at: ctx.now(),
    };
    ctx.rec
        .record(event)
        .await
        .map(|_| ())
        .map_err(|e| format!("journal: {e}"))
}

/// Puts one question to the user and waits for the journaled answer.
pub async fn ask(ctx: &RunCtx, q: &Ask) -> Result<Answer, String> {
    // A question step retried in this process asks again.
    let retried = q.step.as_ref().is_some_and(|s| ctx.retried(s).is_some());
    if let Some((text, _)) = ctx.history.answers.get(&q.id).filter(|_| !retried) {
        return Ok(Answer { text: text.clone() });
    }
    let (tx, rx) = oneshot::channel();
    let (conduct_tx, mut conducted) = oneshot::channel();
    if let Ok(mut w) = ctx.waiters.lock() {
        w.questions.insert(q.id.clone(), tx);
        if q.from_agent {
            w.proposals.insert(q.id.clone(), conduct_tx);
        }
    }
    // FlowMind's answer journaled before a crash: its grace goes on from
    // when it was journaled.
    let mut grace: Option<(String, tokio::time::Instant)> = ctx
        .history
        .conducted
        .get(&q.id)
        .filter(|_| !retried)
        .map(|(answer, grace_ms, at)| {
            let left = (at.0 + grace_ms).saturating_sub(ctx.now().0);
            (
                answer.clone(),
                tokio::time::Instant::now() + Duration::from_millis(left),
            )
        });
    if let Some(recorded) = ctx.history.asked.get(&q.id).filter(|_| !retried) {
        ctx.rec.announce_pending(recorded.clone());
    } else {
        if !ctx.count_question() {
            take_question_waiter(ctx, &q.id);
            let guard = ctx.max_questions_tripped(q.step.clone());
            let _ = ctx.rec.record(guard).await;
            return match &q.default {
                Some(d) => {
                    record_answer(ctx, &q.id, d, AnswerSource::Default).await?;
                    Ok(Answer { text: d.clone() })
                }
                None => Err(format!(
                    "limit max_questions ({}) reached and question `{}` has no default",
                    ctx.limits.max_questions, q.id
                )),
            };
        }
        let event = Event::QuestionAsked {
            id: q.id.clone(),
            step: q.step.clone(),
            header: q.header.clone(),
            ask: q.ask.clone(),
            options: q
                .options
                .iter()
                .map(|c| ChoiceRecord {
                    value: c.value.clone(),
                    label: c.label.clone(),
                })
                .collect(),
            default: q.default.clone(),
            timeout_ms: Some(q.timeout.as_millis() as u64),
            from_agent: q.from_agent,
            at: ctx.now(),
        };
        if let Err(e) = ctx.rec.record(event).await {
            take_question_waiter(ctx, &q.id);
            return Err(format!("journal: {e}"));
        }
    }
    let mut rx = rx;
    let stopped = || "the run stopped before the question was answered".to_string();
    let timeout = tokio::time::sleep(q.timeout);
    tokio::pin!(timeout);
    let answered = loop {
        let grace_end = grace.as_ref().map(|(_, end)| *end);
        tokio::select! {
            answer = &mut rx => break match answer.map_err(|_| stopped())? {
                Some(a) => Ok(a),
                None => question_fallback(ctx, q, "no one can answer in this headless run (pass --answer ID=VALUE)".into()).await,
            },
            _ = ctx.cancel.cancelled() => {
                take_question_waiter(ctx, &q.id);
                break Err("cancelled".into());
            }
            Ok(c) = &mut conducted, if grace.is_none() => {
                grace = Some((c.answer, tokio::time::Instant::now() + c.grace));
            }
            _ = tokio::time::sleep_until(grace_end.unwrap_or_else(tokio::time::Instant::now)), if grace_end.is_some() => {
                let answer = grace.take().map(|(a, _)| a).unwrap_or_default();
                if !take_question_waiter(ctx, &q.id) {
                    // The user's answer came first and is being journaled.
                    break match rx.await.map_err(|_| stopped())? {
                        Some(a) => Ok(a),
                        None => question_fallback(ctx, q, "no one can answer in this run".into()).await,
                    };
                }
                record_answer(ctx, &q.id, &answer, AnswerSource::Flowmind).await?;
                break Ok(Answer { text: answer });
            }
            _ = &mut timeout => {
                if !take_question_waiter(ctx, &q.id) {
                    // The dispatcher took the waiter: an answer is being journaled.
                    break match rx.await.map_err(|_| stopped())? {
                        Some(a) => Ok(a),
                        None => question_fallback(ctx, q, "no one can answer in this run".into()).await,
                    };
                }
                break question_fallback(ctx, q, format!("it was not answered within {}", humantime(q.timeout))).await;
            }
        }
    };
    if let Ok(mut w) = ctx.waiters.lock() {
        w.proposals.remove(&q.id);
    }
    answered
}

/// No answer will come (`why`): the default, journaled as such, or an error.
async fn question_fallback(ctx: &RunCtx, q: &Ask, why: String) -> Result<Answer, String> {
    match &q.default {
        Some(d) => {
            record_answer(ctx, &q.id, d, AnswerSource::Timeout).await?;
            Ok(Answer { text: d.clone() })
        }
        None => Err(format!("question `{}` has no default and {why}", q.id)),
    }
}

/// Removes a waiter; false when the dispatcher already took it.
fn take_question_waiter(ctx: &RunCtx, id: &str) -> bool {
    ctx.waiters
        .lock()
        .map(|mut w| w.questions.remove(id).is_some())
        .unwrap_or(false)
}

/// A `question` step.
pub async fn question(
    actx: &AttemptCtx,
    ask_text: &str,
    header: Option<String>,
    options: &[Choice],
    default: Option<String>,
) -> Result<Map<String, Value>, StepError> {
    let q = Ask {
        id: actx.key.to_string(),
        step: Some(actx.key.clone()),
        header,
        ask: ask_text.to_string(),
        options: options.to_vec(),
        default,
        timeout: actx.step.timeout.unwrap_or(actx.ctx.answer_timeout),
        from_agent: false,
    };
    let answer = ask(&actx.ctx, &q).await.map_err(|e| {
        if actx.ctx.cancel.is_cancelled() {
            StepError::Cancelled
        } else {
            StepError::Fatal(e)
        }
    })?;
    let mut raw = Map::new();
    raw.insert("answer".into(), Value::String(answer.text));
    Ok(raw)
}

/// An `approval` step.
pub async fn approval(actx: &AttemptCtx, message: &str) -> Result<Map<String, Value>, StepError> {
    let ctx = &actx.ctx;
    let key = &actx.key;
    let recorded = match ctx.retried(key) {
        Some(_) => None,
        None => ctx.history.approvals.get(key),
    };
    let decision = match recorded {
        Some((approved, comment)) => Decision {
            approved: *approved,
            comment: comment.clone(),
        },
        None => wait_decision(actx, message).await?,
    };
    if !decision.approved {
        let why = if decision.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", decision.comment)
        };
        return Err(StepError::Fatal(format!("not approved{why}")));
    }
    let mut raw = Map::new();
    raw.insert("approved".into(), Value::Bool(true));
    raw.insert("comment".into(), Value::String(decision.comment));
    Ok(raw)
}

async fn wait_decision(actx: &AttemptCtx, message: &str) -> Result<Decision, StepError> {
    let ctx = &actx.ctx;
    let key = &actx.key;
    let (tx, rx) = oneshot::channel();
    if let Ok(mut w) = ctx.waiters.lock() {
        w.approvals.insert(key.clone(), tx);
    }
    let requested = match ctx.retried(key) {
        Some(_) => None,
        None => ctx.history.approvals_requested.get(key),
    };
    if let Some(recorded) = requested {
        ctx.rec.announce_pending(recorded.clone());
    } else {
        let event = Event::ApprovalRequested {
            step: key.clone(),
            message: message.to_string(),
            timeout_ms: actx.step.timeout.map(|t| t.as_millis() as u64),
            at: ctx.now(),
        };
        actx.record(event).await?;
    }
    let on_timeout = match &actx.step.kind {
        StepKind::Approval { on_timeout, .. } => *on_timeout,
        _ => OnTimeout::Fail,
    };
    let timeout = actx
        .step
        .timeout
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let mut rx = rx;
    let stopped = || StepError::Fatal("the run stopped before the approval was decided".into());
    tokio::select! {
        d = &mut rx => match d.map_err(|_| stopped())? {
            Some(d) => Ok(d),
            None => approval_fallback(actx, on_timeout, "no one can approve in this headless run (--yes approves)".into()).await,
        },
        _ = ctx.cancel.cancelled() => {
            take_approval_waiter(ctx, key);
            Err(StepError::Cancelled)
        }
        _ = tokio::time::sleep(timeout) => {
            if !take_approval_waiter(ctx, key) {
                return match rx.await.map_err(|_| stopped())? {
                    Some(d) => Ok(d),
                    None => approval_fallback(actx, on_timeout, "no one can approve in this run".into()).await,
                };
            }
            approval_fallback(actx, on_timeout, format!("it was not given within {}", humantime(timeout))).await
        }
    }
}

/// No decision will come (`why`): apply the gate's `on_timeout` policy.
async fn approval_fallback(
    actx: &AttemptCtx,
    on_timeout: OnTimeout,
    why: String,
) -> Result<Decision, StepError> {
    let ctx = &actx.ctx;
    match on_timeout {
        OnTimeout::Fail => Err(StepError::Fatal(format!("not approved: {why}"))),
        OnTimeout::Skip => Err(StepError::Skipped(format!(
            "not approved: {why} (on_timeout: skip)"
        ))),
        OnTimeout::Approve => {
            let comment = format!("on_timeout: approve; {why}");
            let event = Event::ApprovalDecided {
                step: actx.key.clone(),
                approved: true,
                comment: comment.clone(),
                source: AnswerSource::Timeout,
                at: ctx.now(),
            };
            actx.record(event).await?;
            Ok(Decision {
                approved: true,
                comment,
            })
        }
    }
}

fn take_approval_waiter(ctx: &RunCtx, key: &StepKey) -> bool {
    ctx.waiters
        .lock()
        .map(|mut w| w.approvals.remove(key).is_some())
        .unwrap_or(false)
}
