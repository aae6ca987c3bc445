//! `lev export RUN --format md`: a run as a readable Markdown transcript,
//! rebuilt from its recorded events alone. Steps appear in the order they
//! started; each keeps its whole conversation, tool calls and shell output.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::protocol::{Event, Recorded, StepKey, describe};

use super::printer::value_text;
use crate::text::ms;

/// The transcript of a run.
pub fn transcript(events: &[Recorded]) -> String {
    let mut head = String::new();
    let mut order: Vec<StepKey> = Vec::new();
    let mut steps: BTreeMap<StepKey, String> = BTreeMap::new();
    let mut prompts = String::new();
    let mut tail = String::new();
    let mut plan_text = String::new();
    let mut started_at = 0;
    for r in events {
        let ev = &r.event;
        if let Some(step) = ev.step()
            && !steps.contains_key(step)
        {
            order.push(step.clone());
            steps.insert(step.clone(), String::new());
        }
        let body = ev.step().and_then(|s| steps.get_mut(s));
        match ev {
            Event::RunStarted {
                name,
                source,
                inputs,
                at,
                ..
            } => {
                started_at = at.0;
                let _ = writeln!(head, "# {name}\n");
                let _ = writeln!(head, "- run: `{}`\n- workflow: `{source}`", r.run);
                for (k, v) in inputs {
                    let _ = writeln!(head, "- input `{k}`: {}", value_text(v));
                }
            }
            Event::RunResumed { at } => {
                let _ = writeln!(
                    prompts,
                    "- resumed at +{}",
                    ms(at.0.saturating_sub(started_at))
                );
            }
            Event::QuestionAsked {
                id,
                ask,
                step: None,
                ..
            } => {
                let _ = writeln!(prompts, "- **{id}**: {ask}");
            }
            Event::QuestionAnswered {
                id, answer, source, ..
            } => {
                let _ = writeln!(prompts, "  - answer to `{id}` ({source:?}): {answer}");
            }
            Event::StepStarted {
                kind,
                mode,
                attempt,
                at,
                ..
            } => {
                if let Some(b) = body {
                    let mode = mode
                        .as_ref()
                        .map(|m| format!(", mode `{m}`"))
                        .unwrap_or_default();
                    let when = ms(at.0.saturating_sub(started_at));
                    let _ = writeln!(b, "_attempt {attempt} started at +{when} ({kind}{mode})_\n");
                }
            }
            Event::LlmReplied {
                turn,
                text,
                tool_calls,
                usage,
                stop_reason,
                refusal,
                ..
            } => {
                if let Some(b) = body {
                    let stop = stop_reason
                        .as_ref()
                        .map(|r| format!(", stop: {r}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        b,
                        "**turn {turn}** ({}{} tokens{stop})\n",
                        usage.estimate_mark(),
                        usage.total_tokens()
                    );
                    if let Some(note) =
                        crate::protocol::reply_end_note(stop_reason.as_deref(), refusal.as_deref())
                    {
                        let _ = writeln!(b, "> {note}\n");
                    }
                    if !text.trim().is_empty() {
                        let _ = writeln!(b, "{}\n", text.trim());
                    }
                    for c in tool_calls {
                        let _ = writeln!(b, "- calls `{}` `{}`", c.name, c.arguments);
                    }
                    if !tool_calls.is_empty() {
                        b.push('\n');
                    }
                }
            }
            Event::ToolFinished {
                name,
                output,
                is_error,
                ..
            } => {
                if let Some(b) = body {
                    let status = if *is_error { "error" } else { "ok" };
                    let _ = writeln!(b, "`{name}` → {status}:\n\n{}\n", fenced(output));
                }
            }
            Event::ShellFinished {
                exit_code,
                timed_out,
                stdout_tail,
                stderr_tail,
                duration_ms,
                ..
            } => {
                if let Some(b) = body {
                    let code = describe::shell_end(*exit_code, *timed_out);
                    let _ = writeln!(b, "shell {code} in {}\n", ms(*duration_ms));
                    if !stdout_tail.trim().is_empty() {
                        let _ = writeln!(b, "stdout:\n\n{}\n", fenced(stdout_tail));
                    }
                    if !stderr_tail.trim().is_empty() {
                        let _ = writeln!(b, "stderr:\n\n{}\n", fenced(stderr_tail));
                    }
                }
            }
            Event::QuestionAsked { ask, .. } => {
                if let Some(b) = body {
                    let _ = writeln!(b, "asked the user: {ask}\n");
                }
            }
            Event::ApprovalRequested { message, .. } => {
                if let Some(b) = body {
                    let _ = writeln!(b, "asked for approval: {message}\n");
                }
            }
            Event::ApprovalDecided {
                approved, comment, ..
            } => {
                if let Some(b) = body {
                    let verdict = if *approved { "approved" } else { "denied" };
                    let _ = writeln!(b, "**{verdict}** {comment}\n");
                }
            }
            Event::StepSucceeded { outputs, .. } => {
                if let Some(b) = body {
                    let _ = writeln!(b, "**succeeded**\n");
                    for (k, v) in outputs.iter().filter(|(k, _)| *k != "text" && *k != "json") {
                        let _ = writeln!(b, "- output `{k}`: {}", one_line(&value_text(v)));
                    }
                    b.push('\n');
                }
            }
            Event::StepFailed {
                attempt,
                error,
                retry_in_ms,
                ..
            } => {
                if let Some(b) = body {
                    let retry = retry_in_ms
                        .map(|d| format!(" (retrying in {})", ms(d)))
                        .unwrap_or_default();
                    let _ = writeln!(b, "**attempt {attempt} failed**{retry}: {error}\n");
                }
            }
            Event::StepSkipped { reason, .. } => {
                if let Some(b) = body {
                    let _ = writeln!(b, "**skipped**: {reason}\n");
                }
            }
            Event::StepCancelled { .. } => {
                if let Some(b) = body {
                    let _ = writeln!(b, "**cancelled**\n");
                }
            }
            Event::GuardTripped {
                guard,
                limit,
                observed,
                step,
                ..
            } => {
                let text = describe::guard_tripped(guard, limit, observed, step.as_ref());
                let _ = writeln!(tail, "- {text}");
            }
            Event::FollowupSpawned {
                parent,
                root,
                depth,
                mode,
                prompt,
                title,
                why,
                by,
                ..
            } => {
                if let Some(b) = body {
                    let source = if by == "agent" {
                        "proposed by its agent"
                    } else {
                        "from its `followups:`"
                    };
                    let _ = writeln!(
                        b,
                        "**follow-up of `{parent}`** ({source}; mode `{mode}`, depth {depth}, chain `{root}`): {title}\n"
                    );
                    if let Some(why) = why {
                        let _ = writeln!(b, "why: {why}\n");
                    }
                    let _ = writeln!(b, "{}\n", quoted(prompt));
                }
            }
            Event::FollowupRefused {
                parent,
                title,
                guard,
                limit,
                observed,
                ..
            } => {
                if let Some(b) = body {
                    let _ = writeln!(
                        b,
                        "**follow-up of `{parent}` not spawned** ({title}): {guard} ({limit}): {observed}\n"
                    );
                }
            }
            Event::CallbacksStopped { by, reason, .. } => {
                let _ = writeln!(tail, "- {}", describe::callbacks_stopped(by, reason));
            }
            Event::LlmRetrying {
                failed,
                tries,
                error,
                delay_ms,
                ..
            } => {
                if let Some(b) = body {
                    let text = describe::llm_retry(*failed, *tries, None, error, *delay_ms);
                    let _ = writeln!(b, "_{text}_\n");
                }
            }
            Event::AgentMessaged { turn, text, .. } => {
                if let Some(b) = body {
                    let _ = writeln!(b, "**message from the user** (before turn {turn}):\n");
                    let _ = writeln!(b, "{}\n", quoted(text));
                }
            }
            Event::PauseRequested { step, at } | Event::PauseLifted { step, at } => {
                let verb = if matches!(ev, Event::PauseRequested { .. }) {
                    "paused"
                } else {
                    "unpaused"
                };
                let when = ms(at.0.saturating_sub(started_at));
                match (step, body) {
                    (Some(_), Some(b)) => {
                        let _ = writeln!(b, "*{verb} by the user at +{when}*\n");
                    }
                    _ => {
                        let _ = writeln!(prompts, "- run {verb} by the user at +{when}");
                    }
                }
            }
            Event::StepRetryRequested { also, at, .. } => {
                if let Some(b) = body {
                    let then = if also.is_empty() {
                        String::new()
                    } else {
                        let keys: Vec<String> = also.iter().map(|k| format!("`{k}`")).collect();
                        format!("; then again: {}", keys.join(", "))
                    };
                    let when = ms(at.0.saturating_sub(started_at));
                    let _ = writeln!(b, "*retry requested at +{when}*{then}\n");
                }
            }
            Event::RunForked {
                from_run,
                from_step,
                ..
            } => {
                let _ = writeln!(head, "- {}", describe::forked(from_run, from_step));
            }
            Event::EmergencyStopped { at } => {
                let _ = writeln!(
                    tail,
                    "- emergency stop at +{}: every running step was stopped",
                    ms(at.0.saturating_sub(started_at))
                );
            }
            Event::RunPaused { reason, .. } => {
                let _ = writeln!(tail, "- paused: {}", describe::pause(reason));
            }
            Event::PlanProposed {
                attempt, problems, ..
            } => {
                if problems.is_empty() {
                    let _ = writeln!(plan_text, "- attempt {attempt}: a valid plan\n");
                } else {
                    let _ = writeln!(plan_text, "- attempt {attempt}: rejected");
                    for p in problems {
                        let _ = writeln!(plan_text, "  - {p}");
                    }
                    plan_text.push('\n');
                }
            }
            Event::PlanAccepted { plan, edited, .. } => {
                let edited = if *edited { " (edited by the user)" } else { "" };
                let _ = writeln!(plan_text, "**accepted**{edited}:\n");
                match crate::swarm::plan::parse(plan) {
                    Ok(p) => plan_text.push_str(&crate::swarm::plan::markdown(&p)),
                    Err(_) => {
                        let _ = writeln!(plan_text, "{}", fenced(&plan.to_string()));
                    }
                }
            }
            Event::PlanRevised {
                revision,
                stalled,
                replaces,
                plan,
                edited,
                ..
            } => {
                let line = describe::plan_revised(*revision, stalled, replaces, plan, *edited);
                let _ = writeln!(plan_text, "**{line}**\n");
                if let Ok(p) = crate::swarm::plan::parse(plan) {
                    plan_text.push_str(&crate::swarm::plan::markdown(&p));
                }
            }
            Event::RunFinished {
                status,
                outputs,
                error,
                usage,
                at,
            } => {
                let took = ms(at.0.saturating_sub(started_at));
                let _ = writeln!(
                    tail,
                    "\n**{}** in {took}, {} tokens",
                    status.as_str(),
                    usage.total_tokens()
                );
                if let Some(e) = error {
                    let _ = writeln!(tail, "\n{e}");
                }
                for (k, v) in outputs {
                    let _ = writeln!(tail, "\n### output `{k}`\n\n{}", value_text(v));
                }
            }
            _ => {}
        }
    }
    let mut out = head;
    if !prompts.is_empty() {
        let _ = write!(out, "\n## Questions\n\n{prompts}");
    }
    if !plan_text.is_empty() {
        let _ = write!(out, "\n## Plan\n\n{plan_text}");
    }
    for key in order {
        let _ = write!(
            out,
            "\n## {key}\n\n{}",
            steps.get(&key).map(String::as_str).unwrap_or("")
        );
    }
    if !tail.is_empty() {
        let _ = write!(out, "\n## Result\n{tail}");
    }
    // Replies, tool results and shell output are data: no escape sequence
    // in them may reach a terminal that shows the file.
    match crate::text::sanitize(&out) {
        std::borrow::Cow::Borrowed(_) => out,
        std::borrow::Cow::Owned(safe) => safe,
    }
}

/// Text in a code fence long enough not to be closed by the text itself.
fn fenced(text: &str) -> String {
    let mut fence = "```".to_string();
    while text.contains(&fence) {
        fence.push('`');
    }
    format!("{fence}\n{}\n{fence}", text.trim_end())
}

/// Text as a Markdown block quote.
fn quoted(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn one_line(s: &str) -> String {
    crate::text::one_line(s, 200)
}
