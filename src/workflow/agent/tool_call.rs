//! One tool call of an agent: the recorded result when the journal has this
//! place (step, attempt, turn, position), else the tool run now, with its
//! start journaled first when it has side effects, shell permission asked,
//! and `ask_user` turned into a question.

use serde_json::Value;

use super::super::attempt::{AttemptCtx, StepError};
use super::super::history::ToolPlace;
use super::super::human::{self, Ask};
use super::super::mcp::AgentTools;
use super::NO_ANSWER;
use crate::llm::{ToolCall, ToolSpec};
use crate::memory;
use crate::protocol::{Event, InFlightDecision, PauseReason};
use crate::spec::Choice;
use crate::tools::{self, ShellDecision, ToolEnv, ToolOutput};

/// A tool call and its place in the run (how its result is recorded and
/// found again on resume).
pub(super) struct Placed<'a> {
    pub(super) place: ToolPlace,
    pub(super) call: &'a ToolCall,
}

impl std::ops::Deref for Placed<'_> {
    type Target = ToolCall;
    fn deref(&self) -> &ToolCall {
        self.call
    }
}

/// The recorded result of a tool call, or the result of running it now.
pub(super) async fn tool_result(
    actx: &AttemptCtx,
    env: &ToolEnv,
    offered: &[ToolSpec],
    mcp: &AgentTools,
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
    let mcp_route = mcp.route(&call.name);
    // An MCP tool changes something unless its server says it only reads.
    let side_effects =
        tools::has_side_effects(&call.name) || mcp_route.is_some_and(|r| !r.tool.read_only);
    // What was running when lev stopped and may have had its effect: a
    // shell command, an MCP tool its server does not call idempotent.
    let not_repeatable = call.name == "run_shell" || mcp_route.is_some_and(|r| !r.tool.idempotent);
    let mut rerun_note = None;
    if side_effects && ctx.history.tools_started.contains(id) && not_repeatable {
        let what = if mcp_route.is_some() {
            "call"
        } else {
            "command"
        };
        match ctx.deps.options.in_flight {
            None => {
                return Err(StepError::Paused(PauseReason::InFlight {
                    step: actx.key.clone(),
                    attempt: actx.attempt,
                }));
            }
            Some(InFlightDecision::Skip) => {
                return finish_tool(actx, call, ToolOutput {
                    content: format!("This {what} was interrupted by a crash and the user chose not to run it again."),
                    is_error: true,
                })
                .await;
            }
            Some(InFlightDecision::MarkDone) => {
                return finish_tool(
                    actx,
                    call,
                    ToolOutput {
                        content: format!(
                            "This {what} was interrupted by a crash; the user marked it as done."
                        ),
                        is_error: false,
                    },
                )
                .await;
            }
            Some(InFlightDecision::Rerun) => rerun_note = Some("(re-run after a crash) "),
        }
    }
    let command = (call.name == "run_shell")
        .then(|| shell_command(&call.arguments))
        .flatten();
    let asked_before = match mcp_route {
        Some(r) => tools::mcp::asks_before(&env.ask_before, &r.server, &r.tool.name),
        None => tools::asks_before(&env.ask_before, &call.name, command.as_deref())
            .filter(|pattern| !explicitly_allowed(env, pattern, command.as_deref())),
    };
    if let Some(pattern) = asked_before
        && let Err(refusal) = ask_before(actx, call, mode, pattern, command.as_deref()).await?
    {
        let out = ToolOutput {
            content: refusal,
            is_error: true,
        };
        return finish_tool(actx, call, out).await;
    }
    if let Some(route) = mcp_route {
        if side_effects {
            record_tool_start(actx, call).await?;
        }
        let mut out = tokio::select! {
            out = super::super::mcp::call(actx, route, question_id(call), &call.arguments) => out,
            () = actx.cancel.cancelled() => return Err(StepError::Cancelled),
        };
        if let Some(note) = rerun_note {
            out.content = format!("{note}{}", out.content);
        }
        return finish_tool(actx, call, out).await;
    }
    let out = match call.name.as_str() {
        "ask_user" => ask_user(actx, call, mode).await?,
        "propose_followup" => propose_followup(actx, call),
        "run_shell" => match command {
            None => ToolOutput {
                content: "run_shell needs a `command` string argument".into(),
                is_error: true,
            },
            Some(command) => {
                match shell_permission(actx, env, call, &command, asked_before.is_some()).await? {
                    Ok(()) => {
                        record_tool_start(actx, call).await?;
                        let (started, journaling) = super::super::shell::journal_process_starts(
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
                }
            }
        },
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
        run: actx.ctx.memory_run().to_string(),
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
    actx.record(event).await.map(|_| ())
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
    actx.record(event).await?;
    Ok(out)
}

/// `shell:*` asks before every command but those the mode, the step or
/// the config allow by name (`shell:cargo audit`): the mode means "ask
/// before anything else", which `--allow-shell` does not lift.
fn explicitly_allowed(env: &ToolEnv, pattern: &str, command: Option<&str>) -> bool {
    let named = tools::ShellPolicy {
        allow_all: false,
        ..env.shell.clone()
    };
    pattern == "shell:*"
        && command.is_some_and(|c| tools::shell_decision(&named, c) == ShellDecision::Allow)
}

/// The command of a `run_shell` call, when its arguments name one.
fn shell_command(arguments: &str) -> Option<String> {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("command").and_then(Value::as_str).map(str::to_string))
}

/// A call the mode asks before (`permissions.ask_before`, `pattern`): the
/// user decides in a question (found again by the call's place on resume);
/// a headless run approves it only with `--yes`. `Ok(Err(why))` when it
/// may not run.
async fn ask_before(
    actx: &AttemptCtx,
    call: &Placed<'_>,
    mode: &str,
    pattern: &str,
    command: Option<&str>,
) -> Result<Result<(), String>, StepError> {
    let options = &actx.ctx.deps.options;
    if !options.interactive {
        return Ok(if options.yes {
            Ok(())
        } else {
            Err(format!(
                "refused: mode `{mode}` asks before `{pattern}` (permissions.ask_before), and this \
                 headless run was not started with --yes"
            ))
        });
    }
    let what = match command {
        Some(command) => format!("run `{command}`"),
        None => format!(
            "call `{}` with {}",
            call.name,
            crate::text::one_line(&call.arguments, 200)
        ),
    };
    let q = Ask::yes_no(
        &actx.ctx,
        format!("{}.ask_before", question_id(call)),
        &actx.key,
        "Approve",
        format!("Mode `{mode}` asks before `{pattern}`. Allow the agent to {what}?"),
        ["Allow", "Refuse"],
    );
    let allowed = human::confirm(&actx.ctx, &q)
        .await
        .map_err(StepError::Fatal)?;
    Ok(if allowed {
        Ok(())
    } else {
        Err(format!("refused by the user: the agent may not {what}"))
    })
}

/// `Ok(Ok(()))` when the command may run, `Ok(Err(why))` when refused.
/// `approved`: the user already allowed this very call (`ask_before`), so
/// only a mode that denies the shell still refuses it.
async fn shell_permission(
    actx: &AttemptCtx,
    env: &ToolEnv,
    call: &Placed<'_>,
    command: &str,
    approved: bool,
) -> Result<Result<(), String>, StepError> {
    match tools::shell_decision(&env.shell, command) {
        ShellDecision::Allow => Ok(Ok(())),
        ShellDecision::Deny(why) => Ok(Err(format!("refused: {why}"))),
        ShellDecision::Ask if approved => Ok(Ok(())),
        ShellDecision::Ask if !actx.ctx.deps.options.interactive => Ok(Err(format!(
            "refused: `{command}` is not among the commands this mode may run without asking, and this run cannot ask \
             (non-interactive). Rerun with --allow-shell, or add the command to the step's `allow_shell`."
        ))),
        ShellDecision::Ask => {
            let q = Ask::yes_no(
                &actx.ctx,
                format!("{}.allow", question_id(call)),
                &actx.key,
                "Shell",
                format!("Allow the agent to run `{command}`?"),
                ["Run it", "Refuse"],
            );
            if human::confirm(&actx.ctx, &q)
                .await
                .map_err(StepError::Fatal)?
            {
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

/// Whether the attempt's agent may ask the user one more question under its
/// mode's `limits.max_questions` (counted per attempt: those the history
/// holds and those asked since). Over the limit, the guard is journaled and
/// the agent is told to go on without asking.
async fn within_mode_questions(
    actx: &AttemptCtx,
    call: &Placed<'_>,
    mode: &str,
) -> Result<Result<(), String>, StepError> {
    let ctx = &actx.ctx;
    let id = question_id(call);
    if ctx.history.asked.contains_key(&id) {
        // Asked before a restart: counted already, answered or not.
        return Ok(Ok(()));
    }
    let Some(max) = ctx.deps.modes.get(mode).and_then(|m| m.max_questions) else {
        return Ok(Ok(()));
    };
    // This attempt's own questions are `step#attempt.tTURN.POSITION`.
    let prefix = format!("{}#{}.t", actx.key, actx.attempt.0);
    let before = ctx
        .history
        .asked
        .keys()
        .filter(|k| {
            k.strip_prefix(&prefix)
                .is_some_and(|rest| rest.matches('.').count() == 1)
        })
        .count() as u32;
    let asked = {
        let Ok(mut n) = actx.questions_asked.lock() else {
            return Ok(Ok(()));
        };
        *n += 1;
        before + *n
    };
    if asked <= max {
        return Ok(Ok(()));
    }
    let event = Event::GuardTripped {
        guard: format!("max_questions of mode {mode}"),
        limit: max.to_string(),
        observed: asked.to_string(),
        step: Some(actx.key.clone()),
        at: ctx.now(),
    };
    actx.record(event).await?;
    Ok(Err(format!(
        "not asked: mode `{mode}` may ask the user at most {max} question{} per step \
         (limits.max_questions); decide without asking and say what you assumed",
        if max == 1 { "" } else { "s" }
    )))
}

async fn ask_user(
    actx: &AttemptCtx,
    call: &Placed<'_>,
    mode: &str,
) -> Result<ToolOutput, StepError> {
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
    if let Err(refusal) = within_mode_questions(actx, call, mode).await? {
        return Ok(ToolOutput {
            content: refusal,
            is_error: true,
        });
    }
    let q = Ask {
        id: question_id(call),
        step: Some(actx.key.clone()),
        header: None,
        ask: question.to_string(),
        options,
        default: Some(NO_ANSWER.to_string()),
        timeout: actx.ctx.answer_timeout,
        from_agent: true,
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

/// A proposal the agent made with `propose_followup`, as it is kept (the
/// step's `proposals` output) once the tool accepted it.
pub(super) fn proposal(arguments: &str) -> Option<Value> {
    let args: Value = serde_json::from_str(arguments).ok()?;
    let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::trim);
    Some(serde_json::json!({
        "title": text("title")?,
        "mode": text("mode")?,
        "prompt": text("prompt")?,
        "why": text("why").unwrap_or_default(),
    }))
}

/// Checks a proposal; it is spawned (or refused by a guard) once the agent
/// has answered. A bad one comes back as an error the model can fix.
fn propose_followup(actx: &AttemptCtx, call: &Placed<'_>) -> ToolOutput {
    let ctx = &actx.ctx;
    let error = |content: String| ToolOutput {
        content,
        is_error: true,
    };
    if let Some(why) = ctx.callbacks_stopped() {
        return error(format!(
            "not proposed: callbacks are stopped in this run ({why}); finish your own task"
        ));
    }
    let Some(p) = proposal(&call.arguments) else {
        return error(
            "propose_followup needs `title`, `mode` and `prompt` strings (and may give `why`)"
                .into(),
        );
    };
    let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    let (title, mode, prompt) = (field("title"), field("mode"), field("prompt"));
    if title.is_empty() || prompt.is_empty() {
        return error("a follow-up needs a non-empty `title` and `prompt`".into());
    }
    if ctx.deps.modes.get(&mode).is_none() {
        let modes: Vec<&str> = ctx.deps.modes.modes.keys().map(String::as_str).collect();
        return error(format!(
            "unknown mode `{mode}`; the modes are: {}",
            modes.join(", ")
        ));
    }
    let when = if ctx.followup_policy.pre_authorises(&mode) {
        "it is spawned within the run's limits"
    } else {
        "the user decides whether it is spawned"
    };
    ToolOutput {
        content: format!(
            "Proposed \"{title}\" for a `{mode}` agent. After your final answer {when}; do not do this work yourself."
        ),
        is_error: false,
    }
}
