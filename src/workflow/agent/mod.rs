//! Agent steps: a tool-calling loop under a mode's role prompt. Every LLM
//! reply and tool result is journaled before it is used, so a resumed step
//! replays its recorded turns instead of asking the model again, and a
//! changed request at a recorded turn is a divergence, never a silent reuse.

use serde_json::{Map, Value};

use super::attempt::{AttemptCtx, StepError};
use super::context::RunCtx;
use super::followups::PROPOSALS;
use super::history::ToolPlace;
use super::steer;
use crate::llm::{ChatRequest, ChatResponse, Message, RequestMeta, Role, ToolCall};
use crate::protocol::{Event, cut_short};
use crate::spec::{Mode, StepKind};
use crate::tools::{ShellPolicy, ToolEnv};

mod assembly;

pub(crate) use assembly::namespace_of;
mod reply;
mod tool_call;

use reply::{reply_for, toolset};
use tool_call::{Placed, tool_result};

/// Turns allowed when neither the step nor the mode says.
const DEFAULT_MAX_TURNS: u32 = 30;

/// What an agent is told to do when a non-interactive run cannot ask.
const NO_ANSWER: &str = "No answer is available (non-interactive run). Make a reasonable assumption, state it in your answer, and continue.";

pub async fn run(
    actx: &AttemptCtx,
    mode_id: &str,
    prompt: &[(Option<String>, String)],
    model: Option<&str>,
    ask_agent: &[String],
) -> Result<Map<String, Value>, StepError> {
    let ctx = &actx.ctx;
    let mode = ctx
        .deps
        .modes
        .get(mode_id)
        .cloned()
        .ok_or_else(|| StepError::Fatal(format!("unknown mode `{mode_id}`")))?;
    let (step_schema, step_turns, allow_shell) = match &actx.step.kind {
        StepKind::Agent {
            output_schema,
            max_turns,
            allow_shell,
            ..
        } => (output_schema.clone(), *max_turns, allow_shell.clone()),
        _ => (None, None, Vec::new()),
    };
    let schema = step_schema.or_else(|| mode.output_schema.clone());
    let max_turns = step_turns
        .or(mode.max_turns)
        .unwrap_or(DEFAULT_MAX_TURNS)
        .max(1);
    let (profile, model) = provider_and_model(ctx, &mode, model);
    let (mut assembly, first_message) =
        assembly::Assembly::new(actx, &mode, schema.as_ref(), &model, prompt).await?;
    let env = tool_env(actx, &mode, allow_shell);
    let toolset = toolset(
        &mode.tools_allow,
        &mode.tools_deny,
        ctx.followup_policy.propose,
    );
    // The MCP servers' tools follow the built-in ones.
    let mcp = super::mcp::agent_tools(actx, &mode).await?;
    let toolset = if mcp.specs.is_empty() {
        toolset
    } else {
        std::sync::Arc::new(toolset.with(&mcp.specs))
    };
    let request_base = ChatRequest {
        model,
        system: Some(assembly.system_text()),
        messages: vec![Message::user(first_message)],
        tools: toolset.specs.clone(),
        temperature: mode.model.temperature,
        max_tokens: mode.model.max_output_tokens,
        meta: RequestMeta {
            run: ctx.rec.run().to_string(),
            step: actx.key.to_string(),
            mode: mode.id.clone(),
            turn: 0,
        },
    };
    let mut messages = request_base.messages.clone();
    // The previous reply was cut off in the middle of its tool calls.
    let mut cut_off_before = false;
    // The agent's answer, then its replies to the system's questions.
    let mut answer: Option<Map<String, Value>> = None;
    let mut replies: Vec<Value> = Vec::new();
    // Follow-ups it proposed (`propose_followup`), recorded turns included.
    let mut proposals: Vec<Value> = Vec::new();
    // While it runs, the agent takes messages and pauses (steer).
    let _seat = steer::Seat::take(&actx.ctx, &actx.key);
    for turn in 1..=max_turns {
        // A reply the agent goes on from is on disk before the next turn.
        actx.flush().await?;
        steer::agent_hold(actx).await?;
        for text in steer::messages_for(actx, turn).await? {
            messages.push(Message::user(text));
        }
        let mut req = request_base.clone();
        let sent = assembly.request(&messages);
        assembly.record(actx, turn, &sent);
        req.system = sent.system;
        req.messages = sent.messages;
        req.meta.turn = turn;
        let reply = reply_for(actx, &req, &toolset.json, turn, profile.as_deref()).await?;
        if let Some(refusal) = &reply.refusal {
            return Err(StepError::Failed(refused(refusal, &reply.text)));
        }
        if !reply.tool_calls.is_empty() && cut_short(reply.stop_reason.as_deref()) {
            // The last call's arguments may be half written: none of the
            // calls runs. The model is told once; cut off again, the step
            // fails with the reason.
            let why = cut_off(&reply);
            if cut_off_before || turn == max_turns {
                return Err(StepError::Failed(format!(
                    "{why}; raise `model.max_output_tokens` in the mode, or ask for smaller steps"
                )));
            }
            cut_off_before = true;
            messages.push(assistant(&reply.text, Vec::new()));
            messages.push(Message::user(format!(
                "{why}, so no tool was run. Call the tools again, keeping each call's arguments short (split a large file into several writes)."
            )));
            continue;
        }
        cut_off_before = false;
        if reply.tool_calls.is_empty() {
            if turn < max_turns && steer::messages_waiting(actx, turn + 1) {
                // A message arrived while the agent was answering: it reads it first.
                messages.push(assistant(&reply.text, Vec::new()));
                continue;
            }
            if answer.is_some() {
                replies.push(Value::String(reply.text.clone()));
            } else {
                match finish(&reply.text, schema.as_ref()) {
                    Ok(raw) => answer = Some(raw),
                    Err(problem) if turn < max_turns => {
                        messages.push(assistant(&reply.text, Vec::new()));
                        messages.push(Message::user(format!(
                            "Your final answer is not valid: {problem}. Reply again with only the corrected JSON."
                        )));
                        continue;
                    }
                    Err(problem) => {
                        return Err(StepError::Failed(format!(
                            "final answer is not valid: {problem}"
                        )));
                    }
                }
            }
            // The system's next question, in the agent's own conversation.
            if let Some(question) = ask_agent.get(replies.len())
                && turn < max_turns
                && may_ask_agent(actx, turn + 1, question).await?
            {
                messages.push(assistant(&reply.text, Vec::new()));
                messages.push(Message::user(question.clone()));
                continue;
            }
            let mut raw = answer.take().unwrap_or_default();
            if !ask_agent.is_empty() {
                raw.insert("ask_agent".into(), Value::Array(replies));
            }
            // What FlowMind proposed while it worked goes with the agent's own.
            proposals.extend(actx.ctx.flowmind_followups(&actx.key));
            if !proposals.is_empty() {
                raw.insert(PROPOSALS.into(), Value::Array(proposals));
            }
            return Ok(raw);
        }
        messages.push(assistant(&reply.text, reply.tool_calls.clone()));
        for (position, call) in (1u32..).zip(&reply.tool_calls) {
            let place = ToolPlace {
                step: actx.key.clone(),
                attempt: actx.attempt,
                turn,
                position,
            };
            let call = &Placed { place, call };
            let out = tool_result(actx, &env, &request_base.tools, &mcp, &mode.id, call).await?;
            if call.name == "propose_followup"
                && !out.is_error
                && let Some(p) = tool_call::proposal(&call.arguments)
            {
                proposals.push(p);
            }
            messages.push(Message {
                role: Role::Tool,
                content: out.content,
                tool_calls: Vec::new(),
                tool_call_id: Some(call.call.id.clone()),
                is_error: out.is_error,
            });
        }
    }
    Err(StepError::Failed(format!(
        "the agent gave no final answer within max_turns ({max_turns})"
    )))
}

/// Whether the system may put its question to the agent as turn `turn`:
/// journaled first (`agent_asked`, with the answer it follows), and
/// counted against the run's `max_questions` (over it, the guard says so
/// and the agent is not asked). Asked before a restart: yes, again.
async fn may_ask_agent(actx: &AttemptCtx, turn: u32, question: &str) -> Result<bool, StepError> {
    let ctx = &actx.ctx;
    if ctx
        .history
        .agent_asked
        .contains(&(actx.key.clone(), actx.attempt, turn))
    {
        return Ok(true);
    }
    if ctx.callbacks_stopped().is_some() {
        // `lev stop-callbacks`: the system asks no new question.
        return Ok(false);
    }
    if !ctx.count_question() {
        actx.record(ctx.max_questions_tripped(Some(actx.key.clone())))
            .await?;
        return Ok(false);
    }
    let event = Event::AgentAsked {
        step: actx.key.clone(),
        attempt: actx.attempt,
        turn,
        question: question.to_string(),
        at: ctx.now(),
    };
    actx.record(event).await?;
    Ok(true)
}

/// Why a refused step failed: the model's stated reason, else its text.
fn refused(refusal: &str, text: &str) -> String {
    let said = [refusal.trim(), text.trim()]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("the model refused to answer{said}")
}

/// What was cut off in a reply that ended early with tool calls.
fn cut_off(reply: &ChatResponse) -> String {
    let names: Vec<&str> = reply.tool_calls.iter().map(|c| c.name.as_str()).collect();
    let reason = reply.stop_reason.as_deref().unwrap_or_default();
    let limit = if reason == "content_filter" {
        "by the provider's content filter".to_string()
    } else {
        format!("at the output token limit (stop reason `{reason}`)")
    };
    format!(
        "the reply was cut off {limit} while calling {}",
        names.join(", ")
    )
}

fn assistant(text: &str, tool_calls: Vec<ToolCall>) -> Message {
    Message {
        role: Role::Assistant,
        content: text.to_string(),
        tool_calls,
        tool_call_id: None,
        is_error: false,
    }
}

fn tool_env(actx: &AttemptCtx, mode: &Mode, step_allow: Vec<String>) -> ToolEnv {
    let options = &actx.ctx.deps.options;
    let mut allowed = options.shell_allow.clone();
    allowed.extend(step_allow);
    for pattern in &mode.tools_allow {
        if let Some(prefix) = pattern.strip_prefix("shell:")
            && prefix != "*"
        {
            allowed.push(prefix.to_string());
        }
    }
    let denied = mode
        .tools_deny
        .iter()
        .any(|d| d == "run_shell" || d == "shell" || d == "shell:*");
    ToolEnv {
        root: actx.root.clone(),
        shell: ShellPolicy {
            allowed,
            allow_all: options.allow_shell,
            denied,
        },
        shell_timeout: actx
            .step
            .timeout
            .unwrap_or(std::time::Duration::from_secs(600)),
        idempotency_key: actx.idempotency_key.clone(),
        process_started: None,
        ask_before: mode.ask_before.clone(),
        offline: mode.network == Some(false),
    }
}

/// The provider profile (none: the default provider) and model an agent
/// of `mode` talks to, given the step's own `model:`. A mode naming its
/// provider (a profile) names the model for it too; the config's default
/// model belongs to the default provider.
pub(super) fn provider_and_model(
    ctx: &RunCtx,
    mode: &Mode,
    step_model: Option<&str>,
) -> (Option<String>, String) {
    let profile = mode.model.provider.clone();
    let model = match &profile {
        Some(name) => step_model
            .map(str::to_string)
            .or_else(|| mode.model.name.clone())
            .or_else(|| ctx.deps.profiles.model_of(name)),
        None => step_model
            .map(str::to_string)
            .or_else(|| ctx.deps.default_model.clone())
            .or_else(|| mode.model.name.clone()),
    }
    .unwrap_or_default();
    (profile, model)
}

/// The step's raw result from a final answer: `text`, and `json` when the
/// answer is JSON (required, and validated, when a schema is set).
fn finish(text: &str, schema: Option<&Value>) -> Result<Map<String, Value>, String> {
    let mut raw = Map::new();
    raw.insert("text".into(), Value::String(text.to_string()));
    let json = extract_json(text);
    if let Some(schema) = schema {
        let Some(json) = &json else {
            return Err("expected a JSON document matching the output schema, found none".into());
        };
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| format!("the output schema is invalid: {e}"))?;
        let problems: Vec<String> = validator
            .iter_errors(json)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
    }
    if let Some(json) = json {
        raw.insert("json".into(), json);
    }
    Ok(raw)
}

/// A JSON document in a reply: the whole text, a fenced block, or the
/// outermost `{…}` / `[…]`.
pub(crate) fn extract_json(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t)
        && (v.is_object() || v.is_array())
    {
        return Some(v);
    }
    if let Some(start) = t.find("```") {
        let after = &t[start + 3..];
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = &after[body_start..];
        if let Some(end) = body.find("```")
            && let Ok(v) = serde_json::from_str::<Value>(body[..end].trim())
        {
            return Some(v);
        }
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if let (Some(s), Some(e)) = (t.find(open), t.rfind(close))
            && s < e
            && let Ok(v) = serde_json::from_str::<Value>(&t[s..=e])
        {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::reply::{request_fingerprint, tools_json};
    use super::*;
    use crate::tools;

    #[test]
    fn fingerprints_equal_those_of_the_whole_request_as_one_value() {
        let req = ChatRequest {
            model: "m".into(),
            system: Some("be brief".into()),
            messages: vec![Message::user("hi \"there\"".to_string())],
            tools: tools::specs(&[], &[]).into(),
            temperature: Some(0.2),
            max_tokens: Some(100),
            meta: RequestMeta {
                run: "r".into(),
                step: "s".into(),
                mode: "coder".into(),
                turn: 1,
            },
        };
        // How every fingerprint was computed before: keep them equal
        // (temperatures were f32 then, widened when written).
        let whole = serde_json::json!([
            req.model,
            req.system,
            req.messages,
            req.tools,
            req.temperature.map(|t| t as f32),
            req.max_tokens
        ]);
        assert!(whole.to_string().contains(",0.20000000298023224,100]"));
        let expected = blake3::hash(whole.to_string().as_bytes())
            .to_hex()
            .to_string();
        assert_eq!(request_fingerprint(&req, &tools_json(&req.tools)), expected);
    }

    #[test]
    fn json_is_found_in_fences_and_prose() {
        assert_eq!(extract_json("{\"a\":1}").unwrap()["a"], 1);
        assert_eq!(
            extract_json("Here:\n```json\n{\"a\":2}\n```\nthanks").unwrap()["a"],
            2
        );
        assert_eq!(
            extract_json("The plan is {\"a\":3} as asked").unwrap()["a"],
            3
        );
        assert!(extract_json("no json here").is_none());
    }

    #[test]
    fn schema_violations_are_named() {
        let schema = serde_json::json!({"type":"object","required":["plan"]});
        let err = finish("{\"x\":1}", Some(&schema)).unwrap_err();
        assert!(err.contains("plan"), "{err}");
        assert!(finish("{\"plan\":\"p\"}", Some(&schema)).is_ok());
        assert!(finish("prose", Some(&schema)).is_err());
    }
}
