//! Agent steps: a tool-calling loop under a mode's role prompt. Every LLM
//! reply and tool result is journaled before it is used, so a resumed step
//! replays its recorded turns instead of asking the model again, and a
//! changed request at a recorded turn is a divergence, never a silent reuse.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

use super::history::ToolPlace;
use super::human::{self, Ask};
use super::llm_call;
use super::steer;
use super::step::{AttemptCtx, StepError};
use crate::llm::{ChatRequest, ChatResponse, Message, RequestMeta, Role, ToolCall, ToolSpec};
use crate::memory;
use crate::protocol::{Event, InFlightDecision, PauseReason, ToolCallRecord, cut_short};
use crate::spec::{Choice, Mode, StepKind};
use crate::tools::{self, ShellDecision, ShellPolicy, ToolEnv, ToolOutput};

/// Turns allowed when neither the step nor the mode says.
const DEFAULT_MAX_TURNS: u32 = 30;

/// What an agent is told to do when a non-interactive run cannot ask.
const NO_ANSWER: &str = "No answer is available (non-interactive run). Make a reasonable assumption, state it in your answer, and continue.";

pub async fn run(
    actx: &AttemptCtx,
    mode_id: &str,
    prompt: &str,
    model: Option<&str>,
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
    // A mode naming its provider (a profile) names the model for it too;
    // the config's default model belongs to the default provider.
    let profile = mode.model.provider.clone();
    let model = match &profile {
        Some(name) => model
            .map(str::to_string)
            .or_else(|| mode.model.name.clone())
            .or_else(|| ctx.deps.profiles.model_of(name)),
        None => model
            .map(str::to_string)
            .or_else(|| ctx.deps.default_model.clone())
            .or_else(|| mode.model.name.clone()),
    }
    .unwrap_or_default();
    let env = tool_env(actx, &mode, allow_shell);
    let toolset = toolset(&mode.tools_allow, &mode.tools_deny);
    let request_base = ChatRequest {
        model,
        system: Some(system_prompt(&mode, schema.as_ref())),
        messages: vec![Message::user(prompt)],
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
    // While it runs, the agent takes messages and pauses (steer).
    let _seat = steer::Seat::take(&actx.ctx, &actx.key);
    for turn in 1..=max_turns {
        steer::agent_hold(actx).await?;
        for text in steer::messages_for(actx, turn).await? {
            messages.push(Message::user(text));
        }
        let mut req = request_base.clone();
        req.messages = messages.clone();
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
            match finish(&reply.text, schema.as_ref()) {
                Ok(raw) => return Ok(raw),
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
        messages.push(assistant(&reply.text, reply.tool_calls.clone()));
        for (position, call) in (1u32..).zip(&reply.tool_calls) {
            let place = ToolPlace {
                step: actx.key.clone(),
                attempt: actx.attempt,
                turn,
                position,
            };
            let call = &Placed { place, call };
            let out = tool_result(actx, &env, &request_base.tools, &mode.id, call).await?;
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

fn system_prompt(mode: &Mode, schema: Option<&Value>) -> String {
    let mut s = mode.role.trim().to_string();
    if !mode.hints.is_empty() {
        s.push_str("\n\nKeep in mind:\n");
        for h in &mode.hints {
            s.push_str(&format!("- {h}\n"));
        }
    }
    if let Some(schema) = schema {
        s.push_str(&format!(
            "\n\nWhen you are done, reply with a single JSON document (no prose around it) matching this JSON Schema:\n{schema}"
        ));
    }
    s
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
    }
}

/// Hash of everything the provider sees (not the routing metadata). The
/// text hashed is the compact JSON array `[model, system, messages, tools,
/// temperature, max_tokens]` with object keys sorted (as `serde_json::Value`
/// writes them): fingerprints recorded by earlier runs must stay equal.
/// `tools_json` is the tools' part, the same for every turn of a step, so it
/// is written once per step rather than per request.
fn request_fingerprint(req: &ChatRequest, tools_json: &str) -> String {
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
struct Toolset {
    specs: Arc<Vec<crate::llm::ToolSpec>>,
    json: String,
}

/// Tool lists depend only on a mode's allow and deny lists: built once per
/// process and shared by every request (a swarm sends thousands).
fn toolset(allow: &[String], deny: &[String]) -> Arc<Toolset> {
    type Cache = Mutex<HashMap<(Vec<String>, Vec<String>), Arc<Toolset>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (allow.to_vec(), deny.to_vec());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return t;
    }
    let specs = tools::specs(allow, deny);
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
fn tools_json(tools: &[crate::llm::ToolSpec]) -> String {
    serde_json::to_value(tools)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "null".into())
}

/// The recorded reply for this turn, or a new one from the provider (journaled first).
async fn reply_for(
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
    ctx.rec
        .record(event)
        .await
        .map_err(|e| StepError::Fatal(format!("journal: {e}")))?;
    actx.add_usage(&reply.usage);
    if let Some((guard, limit, observed)) = ctx.add_usage(&reply.usage) {
        let event = Event::GuardTripped {
            guard: guard.clone(),
            limit: limit.clone(),
            observed: observed.clone(),
            step: Some(actx.key.clone()),
            at: ctx.now(),
        };
        let _ = ctx.rec.record(event).await;
        return Err(StepError::Limit(format!(
            "limit {guard} ({limit}) stopped the run: {observed} used"
        )));
    }
    Ok(reply)
}

/// A tool call and its place in the run (how its result is recorded and
/// found again on resume).
struct Placed<'a> {
    place: ToolPlace,
    call: &'a ToolCall,
}

impl std::ops::Deref for Placed<'_> {
    type Target = ToolCall;
    fn deref(&self) -> &ToolCall {
        self.call
    }
}

/// The recorded result of a tool call, or the result of running it now.
async fn tool_result(
    actx: &AttemptCtx,
    env: &ToolEnv,
    offered: &[ToolSpec],
    mode: &str,
    call: &Placed<'_>,
) -> Result<ToolOutput, StepError> {
    let ctx = &actx.ctx;
    let id = &call.place;
    if let Some(t) = ctx.history.tools.get(id) {
        return Ok(ToolOutput {
            content: t.output.clone(),
            is_error: t.is_error,
        });
    }
    if !offered.iter().any(|t| t.name == call.name) {
        let names: Vec<&str> = offered.iter().map(|t| t.name.as_str()).collect();
        let content = format!(
            "tool `{}` is not available to mode `{mode}`; available: {}",
            call.name,
            names.join(", ")
        );
        return finish_tool(
            actx,
            call,
            ToolOutput {
                content,
                is_error: true,
            },
        )
        .await;
    }
    let side_effects = tools::has_side_effects(&call.name);
    let mut rerun_note = None;
    if side_effects && ctx.history.tools_started.contains(id) && call.name == "run_shell" {
        // A shell command was running when lev stopped: it may have had its effect.
        match ctx.deps.options.in_flight {
            None => {
                return Err(StepError::Paused(PauseReason::InFlight {
                    step: actx.key.clone(),
                    attempt: actx.attempt,
                }));
            }
            Some(InFlightDecision::Skip) => {
                return finish_tool(actx, call, ToolOutput {
                    content: "This command was interrupted by a crash and the user chose not to run it again.".into(),
                    is_error: true,
                })
                .await;
            }
            Some(InFlightDecision::MarkDone) => {
                return finish_tool(
                    actx,
                    call,
                    ToolOutput {
                        content:
                            "This command was interrupted by a crash; the user marked it as done."
                                .into(),
                        is_error: false,
                    },
                )
                .await;
            }
            Some(InFlightDecision::Rerun) => rerun_note = Some("(re-run after a crash) "),
        }
    }
    let out = match call.name.as_str() {
        "ask_user" => ask_user(actx, call).await?,
        "run_shell" => {
            let command = serde_json::from_str::<Value>(&call.arguments)
                .ok()
                .and_then(|v| v.get("command").and_then(Value::as_str).map(str::to_string));
            match command {
                None => ToolOutput {
                    content: "run_shell needs a `command` string argument".into(),
                    is_error: true,
                },
                Some(command) => match shell_permission(actx, env, call, &command).await? {
                    Ok(()) => {
                        record_tool_start(actx, call).await?;
                        let (started, journaling) = super::shell::journal_process_starts(
                            actx,
                            call.place.turn,
                            call.place.position,
                        );
                        let env = ToolEnv {
                            process_started: Some(started),
                            ..env.clone()
                        };
                        let mut out = tools::call(&env, &call.name, &call.arguments).await;
                        drop(env);
                        journaling.await?;
                        if let Some(note) = rerun_note {
                            out.content = format!("{note}{}", out.content);
                        }
                        out
                    }
                    Err(refusal) => ToolOutput {
                        content: refusal,
                        is_error: true,
                    },
                },
            }
        }
        // Memory tools reach the journal the run writes to; the store is
        // an upsert (a crash before `ToolFinished` re-stores the same key).
        "memory_store" => {
            record_tool_start(actx, call).await?;
            memory::tool::store(
                ctx.rec.journal(),
                &memory_caller(actx, mode),
                &call.arguments,
            )
            .await
        }
        "memory_search" => {
            memory::tool::search(
                ctx.rec.journal(),
                &memory_caller(actx, mode),
                &call.arguments,
            )
            .await
        }
        _ => {
            if side_effects {
                record_tool_start(actx, call).await?;
            }
            tools::call(env, &call.name, &call.arguments).await
        }
    };
    finish_tool(actx, call, out).await
}

/// Who calls a memory tool: this run, step, mode and workspace.
fn memory_caller(actx: &AttemptCtx, mode: &str) -> memory::tool::Caller {
    memory::tool::Caller {
        run: actx.ctx.rec.run().to_string(),
        step: actx.key.to_string(),
        mode: mode.to_string(),
        workspace: actx.ctx.workspace.clone(),
        now: actx.ctx.now(),
    }
}

async fn record_tool_start(actx: &AttemptCtx, call: &Placed<'_>) -> Result<(), StepError> {
    let event = Event::ToolStarted {
        step: actx.key.clone(),
        attempt: actx.attempt,
        turn: call.place.turn,
        position: call.place.position,
        call_id: call.id.clone(),
        name: call.name.clone(),
        fingerprint: blake3::hash(call.arguments.as_bytes()).to_hex().to_string(),
        at: actx.ctx.now(),
    };
    actx.ctx
        .rec
        .record(event)
        .await
        .map(|_| ())
        .map_err(|e| StepError::Fatal(format!("journal: {e}")))
}

async fn finish_tool(
    actx: &AttemptCtx,
    call: &Placed<'_>,
    mut out: ToolOutput,
) -> Result<ToolOutput, StepError> {
    // A tool's output (`printenv`, a `.env` file) is journaled, shown and
    // sent to the model: never with one of lev's keys in it.
    if let std::borrow::Cow::Owned(content) = crate::secrets::current().redact(&out.content) {
        out.content = content;
    }
    let event = Event::ToolFinished {
        step: actx.key.clone(),
        attempt: actx.attempt,
        turn: call.place.turn,
        position: call.place.position,
        call_id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
        output: out.content.clone(),
        is_error: out.is_error,
        at: actx.ctx.now(),
    };
    actx.ctx
        .rec
        .record(event)
        .await
        .map_err(|e| StepError::Fatal(format!("journal: {e}")))?;
    Ok(out)
}

/// `Ok(Ok(()))` when the command may run, `Ok(Err(why))` when refused.
async fn shell_permission(
    actx: &AttemptCtx,
    env: &ToolEnv,
    call: &Placed<'_>,
    command: &str,
) -> Result<Result<(), String>, StepError> {
    match tools::shell_decision(&env.shell, command) {
        ShellDecision::Allow => Ok(Ok(())),
        ShellDecision::Deny(why) => Ok(Err(format!("refused: {why}"))),
        ShellDecision::Ask if !actx.ctx.deps.options.interactive => Ok(Err(format!(
            "refused: `{command}` is not among the commands this mode may run without asking, and this run cannot ask \
             (non-interactive). Rerun with --allow-shell, or add the command to the step's `allow_shell`."
        ))),
        ShellDecision::Ask => {
            let q = Ask {
                id: format!("{}.allow", question_id(call)),
                step: Some(actx.key.clone()),
                header: Some("Shell".into()),
                ask: format!("Allow the agent to run `{command}`?"),
                options: vec![
                    Choice {
                        value: "yes".into(),
                        label: "Run it".into(),
                    },
                    Choice {
                        value: "no".into(),
                        label: "Refuse".into(),
                    },
                ],
                default: None,
                timeout: actx.ctx.answer_timeout,
            };
            let answer = human::ask(&actx.ctx, &q).await.map_err(StepError::Fatal)?;
            if answer.text == "yes" {
                Ok(Ok(()))
            } else {
                Ok(Err(format!("refused by the user: `{command}`")))
            }
        }
    }
}

/// A question's id from its call's place (answers are found by it on
/// resume; the provider's call id may repeat).
fn question_id(call: &Placed<'_>) -> String {
    let p = &call.place;
    format!("{}#{}.t{}.{}", p.step, p.attempt, p.turn, p.position)
}

async fn ask_user(actx: &AttemptCtx, call: &Placed<'_>) -> Result<ToolOutput, StepError> {
    let args: Value = match serde_json::from_str(&call.arguments) {
        Ok(v) => v,
        Err(e) => {
            return Ok(ToolOutput {
                content: format!("invalid arguments: {e}"),
                is_error: true,
            });
        }
    };
    let Some(question) = args.get("question").and_then(Value::as_str) else {
        return Ok(ToolOutput {
            content: "ask_user needs a `question` string".into(),
            is_error: true,
        });
    };
    let options = args
        .get("options")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| Choice {
                    value: s.to_string(),
                    label: s.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let q = Ask {
        id: question_id(call),
        step: Some(actx.key.clone()),
        header: None,
        ask: question.to_string(),
        options,
        default: Some(NO_ANSWER.to_string()),
        timeout: actx.ctx.answer_timeout,
    };
    let answer = human::ask(&actx.ctx, &q).await.map_err(|e| {
        if actx.ctx.cancel.is_cancelled() {
            StepError::Cancelled
        } else {
            StepError::Fatal(e)
        }
    })?;
    Ok(ToolOutput {
        content: answer.text,
        is_error: false,
    })
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
fn extract_json(text: &str) -> Option<Value> {
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
    use super::*;

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
