//! One LLM turn of an agent: the recorded reply when the journal has this
//! turn (a different request there is a divergence), else a new one from
//! the provider, journaled before it is used; and the request's
//! fingerprint, which is how a resumed turn is recognised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::super::attempt::{AttemptCtx, StepError};
use super::super::llm_call;
use crate::llm::{ChatRequest, ChatResponse, ToolCall};
use crate::protocol::{Event, PauseReason, ToolCallRecord};
use crate::tools;

/// Hash of everything the provider sees (not the routing metadata). The
/// text hashed is the compact JSON array `[model, system, messages, tools,
/// temperature, max_tokens]` with object keys sorted (as `serde_json::Value`
/// writes them): fingerprints recorded by earlier runs must stay equal.
/// `tools_json` is the tools' part, the same for every turn of a step, so it
/// is written once per step rather than per request.
pub(super) fn request_fingerprint(req: &ChatRequest, tools_json: &str) -> String {
    fn part<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_value(v)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| "null".into())
    }
    let text = format!(
        "[{},{},{},{tools_json},{},{}]",
        part(&req.model),
        part(&req.system),
        part(&req.messages),
        // Written as the f32 it was before lev kept temperatures exact,
        // so runs recorded then still match.
        part(&req.temperature.map(|t| t as f32)),
        part(&req.max_tokens)
    );
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// The tools a mode offers, with their part of `request_fingerprint`.
pub(super) struct Toolset {
    pub(super) specs: Arc<Vec<crate::llm::ToolSpec>>,
    pub(super) json: String,
}

impl Toolset {
    /// These tools, then `more` (an attempt's MCP tools).
    pub(super) fn with(&self, more: &[crate::llm::ToolSpec]) -> Toolset {
        let mut specs = self.specs.as_ref().clone();
        specs.extend_from_slice(more);
        Toolset {
            json: tools_json(&specs),
            specs: Arc::new(specs),
        }
    }
}

/// Tool lists depend only on a mode's allow and deny lists: built once per
/// process and shared by every request (a swarm sends thousands).
pub(super) fn toolset(allow: &[String], deny: &[String], propose: bool) -> Arc<Toolset> {
    type Cache = Mutex<HashMap<(Vec<String>, Vec<String>, bool), Arc<Toolset>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (allow.to_vec(), deny.to_vec(), propose);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return t;
    }
    let specs = tools::specs_with(allow, deny, propose);
    let set = Arc::new(Toolset {
        json: tools_json(&specs),
        specs: Arc::new(specs),
    });
    if let Ok(mut c) = cache.lock() {
        c.insert(key, set.clone());
    }
    set
}

/// The tools' part of `request_fingerprint`.
pub(super) fn tools_json(tools: &[crate::llm::ToolSpec]) -> String {
    serde_json::to_value(tools)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "null".into())
}

/// The recorded reply for this turn, or a new one from the provider (journaled first).
pub(super) async fn reply_for(
    actx: &AttemptCtx,
    req: &ChatRequest,
    tools_json: &str,
    turn: u32,
    profile: Option<&str>,
) -> Result<ChatResponse, StepError> {
    let ctx = &actx.ctx;
    let fingerprint = request_fingerprint(req, tools_json);
    if let Some(rec) = ctx
        .history
        .replies
        .get(&(actx.key.clone(), actx.attempt, turn))
    {
        if rec.fingerprint != fingerprint {
            return Err(StepError::Paused(PauseReason::Divergence {
                step: actx.key.clone(),
                key: format!("{} attempt {} turn {turn}", actx.key, actx.attempt),
                recorded: format!(
                    "LLM request {}",
                    &rec.fingerprint[..12.min(rec.fingerprint.len())]
                ),
                computed: format!("LLM request {}", &fingerprint[..12]),
            }));
        }
        actx.add_usage(&rec.usage);
        return Ok(ChatResponse {
            text: rec.text.clone(),
            tool_calls: rec
                .tool_calls
                .iter()
                .map(|c| ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                })
                .collect(),
            usage: rec.usage,
            stop_reason: rec.stop_reason.clone(),
            refusal: rec.refusal.clone(),
            model: rec.model.clone(),
        });
    }
    let provider = match ctx.deps.profiles.resolve(profile, &ctx.deps.provider) {
        Ok(r) => r.provider,
        Err(why) => {
            let need = match profile {
                Some(name) => format!(
                    "mode `{}` names the provider `{name}`, which cannot be used",
                    req.meta.mode
                ),
                None => "agent steps need an LLM provider".to_string(),
            };
            return Err(StepError::Fatal(format!("{need}: {why}")));
        }
    };
    // A breaker that refuses before sending is waited out, not a failure.
    let mut reply = llm_call::chat(actx, provider.as_ref(), req)
        .await?
        .map_err(|e| StepError::Failed(e.to_string()))?;
    // The journaled reply (and so the conversation's next request, live or
    // resumed) carries no key the model echoed.
    let secrets = crate::secrets::current();
    if let std::borrow::Cow::Owned(text) = secrets.redact(&reply.text) {
        reply.text = text;
    }
    if let Some(refusal) = &mut reply.refusal
        && let std::borrow::Cow::Owned(text) = secrets.redact(refusal)
    {
        *refusal = text;
    }
    let event = Event::LlmReplied {
        step: actx.key.clone(),
        attempt: actx.attempt,
        turn,
        fingerprint,
        text: reply.text.clone(),
        tool_calls: reply
            .tool_calls
            .iter()
            .map(|c| ToolCallRecord {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            })
            .collect(),
        usage: reply.usage,
        model: reply.model.clone(),
        stop_reason: reply.stop_reason.clone(),
        refusal: reply.refusal.clone(),
        at: ctx.now(),
    };
    if reply.tool_calls.is_empty() {
        // A reply that runs nothing needs no durability point of its own:
        // it is journaled with what follows it (the step's end, usually).
        actx.defer(event);
    } else {
        // Tools act on it: on disk first.
        actx.record(event).await?;
    }
    actx.add_usage(&reply.usage);
    if reply.usage.total_tokens() > 0
        && !provider.knows_price(&reply.model)
        && ctx.first_unpriced(&reply.model)
    {
        // Said with the reply's commit (or the next): nothing acts on it.
        actx.defer(Event::PriceUnknown {
            model: reply.model.clone(),
            step: actx.key.clone(),
            at: ctx.now(),
        });
    }
    if let Some(tripped) = ctx.add_usage(&reply.usage) {
        let _ = actx
            .record(tripped.event(Some(actx.key.clone()), ctx.now()))
            .await;
        return Err(StepError::Limit(tripped.why()));
    }
    Ok(reply)
}
