//! One line per durable event. The live run and `lev replay` format the same
//! recorded events with this code, so their transcripts are identical.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::protocol::{AnswerSource, Event, Recorded, RunStatus, StepKey, Usage, reply_end_note};
use crate::text::{ms, one_line};

/// What the printer remembers between events (for durations).
#[derive(Debug, Default)]
pub struct Printer {
    run_started_ms: Option<u64>,
    step_started_ms: BTreeMap<StepKey, u64>,
}

impl Printer {
    /// Learns from an event without printing it (events before a resume).
    pub fn observe(&mut self, r: &Recorded) {
        let _ = self.line(r);
    }

    /// The transcript line for an event, terminal-safe: names, replies and
    /// outputs in it come from workflow files, models and commands.
    pub fn line(&mut self, r: &Recorded) -> String {
        let line = self.raw_line(r);
        match crate::text::sanitize(&line) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(safe) => safe,
        }
    }

    fn raw_line(&mut self, r: &Recorded) -> String {
        let at = r.event.at().0;
        match &r.event {
            Event::RunStarted {
                name,
                source,
                inputs,
                ..
            } => {
                self.run_started_ms = Some(at);
                let inputs = if inputs.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", kv(inputs))
                };
                format!("run {} started: {name} ({source}){inputs}", r.run)
            }
            Event::RunResumed { .. } => format!("run {} resumed", r.run),
            Event::QuestionAsked {
                id,
                ask,
                options,
                default,
                ..
            } => {
                let opts: Vec<String> = options
                    .iter()
                    .map(|o| {
                        if Some(&o.value) == default.as_ref() {
                            format!("{}*", o.value)
                        } else {
                            o.value.clone()
                        }
                    })
                    .collect();
                let opts = if opts.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", opts.join(", "))
                };
                format!("? {id}: {}{opts}", one_line(ask, 160))
            }
            Event::QuestionAnswered {
                id, answer, source, ..
            } => {
                format!("= {id}: {}{}", one_line(answer, 160), source_note(*source))
            }
            Event::ApprovalRequested { step, message, .. } => {
                format!("? {step}: approve? {}", one_line(message, 160))
            }
            Event::ApprovalDecided {
                step,
                approved,
                comment,
                ..
            } => {
                let verdict = if *approved { "approved" } else { "denied" };
                let comment = if comment.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", one_line(comment, 120))
                };
                format!("= {step}: {verdict}{comment}")
            }
            Event::StepStarted {
                step,
                attempt,
                kind,
                mode,
                ..
            } => {
                self.step_started_ms.insert(step.clone(), at);
                let mode = mode
                    .as_ref()
                    .map(|m| format!(", mode {m}"))
                    .unwrap_or_default();
                format!("step {step}: started ({kind}{mode}, attempt {attempt})")
            }
            Event::LlmReplied {
                step,
                turn,
                text,
                tool_calls,
                usage,
                stop_reason,
                refusal,
                ..
            } => {
                let what = if refusal.is_some() {
                    "refused".to_string()
                } else if tool_calls.is_empty() {
                    format!("answered: {}", one_line(text, 100))
                } else {
                    let names: Vec<&str> = tool_calls.iter().map(|c| c.name.as_str()).collect();
                    format!("calls {}", names.join(", "))
                };
                let stop = stop_reason
                    .as_ref()
                    .map(|r| format!(", stop: {}", one_line(r, 40)))
                    .unwrap_or_default();
                let note = reply_end_note(stop_reason.as_deref(), refusal.as_deref())
                    .map(|n| format!(" — {}", one_line(&n, 200)))
                    .unwrap_or_default();
                format!(
                    "step {step}: turn {turn} {what} ({}{stop}){note}",
                    tokens(usage)
                )
            }
            Event::LlmRetrying {
                step,
                endpoint,
                failed,
                tries,
                error,
                delay_ms,
                ..
            } => format!(
                "! step {step}: request {failed} of {tries} to {endpoint} failed: {}; trying again in {}",
                one_line(error, 200),
                ms(*delay_ms)
            ),
            Event::ToolStarted { step, name, .. } => format!("step {step}: running {name}"),
            Event::ToolFinished {
                step,
                name,
                arguments,
                output,
                is_error,
                ..
            } => {
                let status = if *is_error { "error" } else { "ok" };
                format!(
                    "step {step}: {name}({}) → {status}: {}",
                    one_line(arguments, 80),
                    one_line(output, 100)
                )
            }
            Event::ProcessStarted { step, group, .. } => {
                format!("step {step}: process group {} started", group.pgid)
            }
            Event::EarlierCopyStopped { step, killed, .. } => format!(
                "step {step}: {} before running again",
                crate::protocol::earlier_copy_stopped_text(*killed)
            ),
            Event::ShellFinished {
                step,
                exit_code,
                timed_out,
                duration_ms,
                stdout_tail,
                ..
            } => {
                let code = match (exit_code, timed_out) {
                    (_, true) => "timed out".to_string(),
                    (Some(c), _) => format!("exit {c}"),
                    (None, _) => "killed".to_string(),
                };
                let last = stdout_tail.trim().lines().last().unwrap_or("");
                let last = if last.is_empty() {
                    String::new()
                } else {
                    format!(": {}", one_line(last, 100))
                };
                format!("step {step}: shell {code} in {}{last}", ms(*duration_ms))
            }
            Event::StepSucceeded {
                step,
                outputs,
                usage,
                ..
            } => {
                let took = self.took(step, at);
                let cost = if usage.total_tokens() > 0 {
                    format!(", {}", tokens(usage))
                } else {
                    String::new()
                };
                let outs: Vec<&str> = outputs.keys().map(String::as_str).collect();
                format!("step {step}: succeeded{took}{cost} → {}", outs.join(", "))
            }
            Event::StepFailed {
                step,
                attempt,
                error,
                retry_in_ms,
                ..
            } => {
                let took = self.took(step, at);
                let retry = match retry_in_ms {
                    Some(d) => format!("; retrying in {}", ms(*d)),
                    None => String::new(),
                };
                format!(
                    "step {step}: failed (attempt {attempt}){took}: {}{retry}",
                    one_line(error, 200)
                )
            }
            Event::StepSkipped { step, reason, .. } => format!("step {step}: skipped: {reason}"),
            Event::StepCancelled { step, .. } => format!("step {step}: cancelled"),
            Event::GuardTripped {
                guard,
                limit,
                observed,
                step,
                ..
            } => {
                let at_step = step
                    .as_ref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default();
                format!("! limit {guard} ({limit}) reached{at_step}: observed {observed}")
            }
            Event::InFlightResolved { step, decision, .. } => {
                format!("step {step}: in-flight attempt resolved: {decision:?}")
            }
            Event::RunPaused { reason, .. } => {
                format!("run paused: {}", crate::workflow::describe_pause(reason))
            }
            Event::RunCancelRequested { .. } => "run cancel requested".to_string(),
            Event::AgentMessaged {
                step, turn, text, ..
            } => format!("step {step}: message before turn {turn}: {}", one_line(text, 160)),
            Event::PauseRequested { step: None, .. } => {
                "run paused by the user (no new step starts; agents hold before their next request; running shell steps go on)".to_string()
            }
            Event::PauseRequested { step: Some(s), .. } => {
                format!("step {s}: paused by the user (holds before its next request)")
            }
            Event::PauseLifted { step: None, .. } => "run unpaused".to_string(),
            Event::PauseLifted { step: Some(s), .. } => format!("step {s}: unpaused"),
            Event::EmergencyStopped { .. } => {
                "! emergency stop: stopping every running step".to_string()
            }
            Event::PlanProposed {
                attempt,
                plan,
                problems,
                ..
            } => {
                let verdict = match problems.as_slice() {
                    [] => "valid".to_string(),
                    [one] => format!("1 problem: {}", one_line(one, 160)),
                    [first, ..] => format!(
                        "{} problems, first: {}",
                        problems.len(),
                        one_line(first, 160)
                    ),
                };
                format!(
                    "plan proposed (attempt {attempt}): {}, {verdict}",
                    task_count(plan)
                )
            }
            Event::PlanAccepted { plan, edited, .. } => {
                let edited = if *edited { " (edited by the user)" } else { "" };
                let summary = plan
                    .get("summary")
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| format!(": {}", one_line(s, 160)))
                    .unwrap_or_default();
                format!("plan accepted{edited}: {}{summary}", task_count(plan))
            }
            Event::TaskAssigned {
                task,
                mode,
                slot,
                stolen_from,
                ..
            } => match stolen_from {
                Some(from) => format!(
                    "→ task {task} ({mode}) to agent slot {slot}, stolen from slot {from}'s queue"
                ),
                None => format!("→ task {task} ({mode}) to agent slot {slot}"),
            },
            Event::SlotBreaker {
                slot,
                state,
                reason,
                ..
            } => format!("! agent slot {slot} breaker {}: {reason}", state.replace('_', "-")),
            Event::ProviderBreaker {
                endpoint,
                state,
                reason,
                step,
                ..
            } => {
                let during = step
                    .as_ref()
                    .map(|s| format!(" (during step {s})"))
                    .unwrap_or_default();
                format!(
                    "! provider {endpoint} breaker {}{during}: {}",
                    state.replace('_', "-"),
                    one_line(reason, 200)
                )
            }
            Event::StepRetryRequested { step, also, .. } => {
                let then = if also.is_empty() {
                    String::new()
                } else {
                    let keys: Vec<&str> = also.iter().map(StepKey::as_str).collect();
                    format!("; then again: {}", keys.join(", "))
                };
                format!("step {step}: retry requested{then}")
            }
            Event::RunForked {
                from_run,
                from_step,
                ..
            } => format!("run {} forked from run {from_run} at step {from_step}", r.run),
            Event::Worktree { step, fact, .. } => {
                format!("step {step}: {}", crate::isolation::describe(fact))
            }
            Event::RunFinished {
                status,
                outputs,
                error,
                usage,
                ..
            } => {
                let took = self
                    .run_started_ms
                    .map(|s| format!(" in {}", ms(at.saturating_sub(s))))
                    .unwrap_or_default();
                let mut line = format!("run {}{took} ({})", status_word(*status), tokens(usage));
                if let Some(e) = error {
                    line.push_str(&format!(": {}", one_line(e, 200)));
                }
                for (k, v) in outputs {
                    line.push_str(&format!(
                        "\n  output {k} = {}",
                        one_line(&value_text(v), 200)
                    ));
                }
                line
            }
        }
    }

    fn took(&self, step: &StepKey, at: u64) -> String {
        self.step_started_ms
            .get(step)
            .map(|s| format!(" in {}", ms(at.saturating_sub(*s))))
            .unwrap_or_default()
    }
}

/// `3 tasks`, from a plan as journaled (any JSON).
fn task_count(plan: &Value) -> String {
    match plan.get("tasks").and_then(Value::as_array).map(Vec::len) {
        Some(1) => "1 task".to_string(),
        Some(n) => format!("{n} tasks"),
        None => "no task list".to_string(),
    }
}

fn status_word(s: RunStatus) -> &'static str {
    s.as_str()
}

fn source_note(s: AnswerSource) -> &'static str {
    match s {
        AnswerSource::User => "",
        AnswerSource::Default => " (default)",
        AnswerSource::Timeout => " (default after timeout)",
    }
}

fn tokens(u: &Usage) -> String {
    let mut s = format!("{}{} tokens", u.estimate_mark(), u.total_tokens());
    if u.cost_usd > 0.0 {
        s.push_str(&format!(", ${:.4}", u.cost_usd));
    }
    s
}

fn kv(map: &BTreeMap<String, Value>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", one_line(&value_text(v), 60)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Strings as they are, other values as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}
