//! `when_semantic:` a statement about the run so far ("the review found at
//! least one must-fix issue") that a model judges before the step runs.
//! The verdict {holds, confidence, reason} is journaled before the step
//! acts on it, so a resumed or replayed run never asks again. With no
//! provider, or a judge that cannot give a verdict, the user decides.

use std::sync::Arc;

use serde_json::Value;

use super::context::RunCtx;
use super::human::{self, Ask};
use crate::llm::{ChatRequest, Message, RequestMeta, Role};
use crate::protocol::{Event, StepKey, Usage};
use crate::spec::expr::EvalContext;
use crate::spec::{Step, StepKind};

/// The mode name a judge's request carries (cassettes match on it).
pub const JUDGE_MODE: &str = "judge";

/// Bytes of the needed steps' outputs the judge is shown.
const CONTEXT_BYTES: usize = 32 * 1024;

const SYSTEM: &str = "You judge whether a statement holds, given what earlier steps of a workflow produced. \
Reply with one JSON object and nothing else: {\"holds\": true or false, \"confidence\": a number from 0 to 1, \
\"reason\": one sentence}.";

/// What was decided, and by whom.
struct Verdict {
    holds: bool,
    confidence: Option<f64>,
    reason: String,
    judge: String,
}

/// Whether `step`'s `when_semantic` holds: the recorded verdict, else a new
/// one (journaled first). `Err` when neither a model nor the user could say.
pub(super) async fn holds(
    ctx: &Arc<RunCtx>,
    key: &StepKey,
    step: &Step,
    condition: &str,
    eval: &EvalContext,
) -> Result<(bool, String), String> {
    let what = format!("`{key}` runs");
    judge(ctx, key, step, condition, || context_of(step, eval), &what).await
}

/// Whether `condition` holds given the text `context` makes, for `key`
/// (a step, or a follow-up about to be spawned: `what` says what follows
/// from a yes, for the user when no model can judge). `step` is the step
/// the statement is written on, whose provider judges unless the config
/// names a judge. The verdict is recorded under `key` before it is
/// returned; a recorded one is reused.
pub(super) async fn judge(
    ctx: &Arc<RunCtx>,
    key: &StepKey,
    step: &Step,
    condition: &str,
    context: impl FnOnce() -> String,
    what: &str,
) -> Result<(bool, String), String> {
    if let Some(holds) = ctx
        .history
        .verdicts
        .get(key)
        .filter(|_| ctx.retried(key).is_none())
    {
        return Ok((*holds, String::new()));
    }
    let context = context();
    let mut usage = Usage::default();
    let verdict = match by_model(ctx, key, step, condition, &context, &mut usage).await {
        Ok(v) => v,
        Err(why) => {
            tracing::warn!(step = %key, "when_semantic goes to the user: {why}");
            by_user(ctx, key, condition, &why, what).await?
        }
    };
    let event = Event::SemanticVerdict {
        step: key.clone(),
        condition: condition.to_string(),
        holds: verdict.holds,
        confidence: verdict.confidence,
        reason: verdict.reason.clone(),
        judge: verdict.judge,
        usage,
        at: ctx.now(),
    };
    ctx.rec
        .record(event)
        .await
        .map_err(|e| format!("journal: {e}"))?;
    Ok((verdict.holds, verdict.reason))
}

/// Text cut to the bytes a judge is shown.
pub(super) fn cut_for_judge(mut text: String) -> String {
    if text.len() > CONTEXT_BYTES {
        let mut cut = CONTEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[… cut]\n");
    }
    text
}

/// The outputs of the steps `step` needs, as JSON, cut to `CONTEXT_BYTES`.
fn context_of(step: &Step, eval: &EvalContext) -> String {
    let mut text = String::new();
    for id in &step.needs {
        let Some(view) = eval.steps.get(id) else {
            continue;
        };
        let outputs = serde_json::to_string_pretty(&view.outputs).unwrap_or_default();
        let state = if view.succeeded {
            "succeeded"
        } else {
            "did not succeed"
        };
        text.push_str(&format!("Step `{id}` ({state}) produced:\n{outputs}\n\n"));
    }
    let mut text = cut_for_judge(text);
    if text.is_empty() {
        text.push_str("(No earlier step's output is available.)\n");
    }
    text
}

/// Who judges, as a provider profile (none: the default provider) and a
/// model: the config's `judge:`, else the step's own (an agent step's, as
/// its mode and `model:` choose), else the run's default.
fn judge_of(ctx: &RunCtx, step: &Step) -> (Option<String>, String) {
    let profiles = &ctx.deps.profiles;
    if let Some(judge) = profiles.judge() {
        let model = judge
            .model
            .clone()
            .or_else(|| judge.provider.as_deref().and_then(|p| profiles.model_of(p)))
            .or_else(|| ctx.deps.default_model.clone())
            .unwrap_or_default();
        return (judge.provider.clone(), model);
    }
    if let StepKind::Agent { mode, model, .. } = &step.kind
        && let Some(mode) = ctx.deps.modes.get(mode)
    {
        return super::agent::provider_and_model(ctx, mode, model.as_deref());
    }
    (None, ctx.deps.default_model.clone().unwrap_or_default())
}

/// Asks the judge, and once more when the reply is not a verdict.
async fn by_model(
    ctx: &Arc<RunCtx>,
    key: &StepKey,
    step: &Step,
    condition: &str,
    context: &str,
    spent: &mut Usage,
) -> Result<Verdict, String> {
    let (profile, model) = judge_of(ctx, step);
    let provider = ctx
        .deps
        .profiles
        .resolve(profile.as_deref(), &ctx.deps.provider)?
        .provider;
    let mut messages = vec![Message::user(format!(
        "{context}\nStatement: {condition}\n\nDoes the statement hold?"
    ))];
    for turn in 1..=2u32 {
        let req = ChatRequest {
            model: model.clone(),
            system: Some(SYSTEM.to_string()),
            messages: messages.clone(),
            tools: Default::default(),
            temperature: Some(0.0),
            max_tokens: Some(400),
            meta: RequestMeta {
                run: ctx.rec.run().to_string(),
                step: key.to_string(),
                mode: JUDGE_MODE.to_string(),
                turn,
            },
        };
        let reply = provider.chat(&req, None).await.map_err(|e| e.to_string())?;
        ctx.add_usage(&reply.usage);
        spent.add(&reply.usage);
        if let Some(verdict) = parse(&reply.text, &reply.model) {
            return Ok(verdict);
        }
        messages.push(Message {
            role: Role::Assistant,
            content: reply.text.clone(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        });
        messages.push(Message::user(
            "That is not a verdict. Reply with only {\"holds\": true|false, \"confidence\": 0..1, \"reason\": \"…\"}.",
        ));
    }
    Err("the judge gave no verdict twice".into())
}

fn parse(text: &str, model: &str) -> Option<Verdict> {
    let json = super::agent::extract_json(text)?;
    let holds = json.get("holds")?.as_bool()?;
    let confidence = json
        .get("confidence")
        .and_then(Value::as_f64)
        .filter(|c| (0.0..=1.0).contains(c));
    let reason = json
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some(Verdict {
        holds,
        confidence,
        reason,
        judge: if model.is_empty() {
            "the model".into()
        } else {
            model.to_string()
        },
    })
}

/// The user decides (a question, answered like any other; headless with
/// `--answer STEP.when_semantic=yes|no`).
async fn by_user(
    ctx: &Arc<RunCtx>,
    key: &StepKey,
    condition: &str,
    why: &str,
    what: &str,
) -> Result<Verdict, String> {
    let q = Ask::yes_no(
        ctx,
        format!("{key}.when_semantic"),
        key,
        "Condition",
        format!("Does this hold, so that {what}?\n{condition}\n(No model could judge it: {why}.)"),
        ["It holds", "It does not"],
    );
    let holds = human::confirm(ctx, &q).await?;
    Ok(Verdict {
        holds,
        confidence: None,
        reason: String::new(),
        judge: "user".into(),
    })
}
