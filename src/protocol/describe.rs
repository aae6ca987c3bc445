//! What each event means, in words: the one description the headless
//! printer, the markdown transcript and the workbench share. The printer's
//! line for an event is `line`; the pieces (a pause's reason, a worktree
//! fact, a guard, a breaker, a shell's end, a retry or fork request) are
//! functions the other views compose their own layouts from, so a fact
//! reads the same everywhere.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    AnswerSource, Event, InFlightDecision, PauseReason, Recorded, RunId, RunStatus, StepKey, Usage,
    WorktreeFact, earlier_copy_stopped_text, reply_end_note,
};
use crate::text::{ms, one_line};

/// `1 tool`, `3 tools`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The transcript line for a recorded event (`lev run --headless`, `lev
/// replay`). `took` is how long the step (for a step's end) or the run (for
/// the run's end) had been running, when the caller knows it.
pub fn line(r: &Recorded, took: Option<u64>) -> String {
    match &r.event {
        Event::RunStarted {
            name,
            source,
            inputs,
            ..
        } => {
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
        Event::AnswerProposed {
            id,
            answer,
            confidence,
            category,
            reason,
            auto,
            grace_ms,
            ..
        } => answer_proposed(id, answer.as_deref(), *confidence, category, reason, *auto, *grace_ms),
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
            "! step {step}: {}",
            llm_retry(*failed, *tries, Some(endpoint), error, *delay_ms)
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
            earlier_copy_stopped_text(*killed)
        ),
        Event::ShellFinished {
            step,
            exit_code,
            timed_out,
            duration_ms,
            stdout_tail,
            ..
        } => {
            let code = shell_end(*exit_code, *timed_out);
            let last = stdout_tail.trim().lines().last().unwrap_or("");
            let last = if last.is_empty() {
                String::new()
            } else {
                format!(": {}", one_line(last, 100))
            };
            format!("step {step}: shell {code} in {}{last}", ms(*duration_ms))
        }
        Event::PtyLaunched {
            step,
            program,
            args,
            rows,
            cols,
            cli,
            session,
            resumed,
            ..
        } => {
            let command = std::iter::once(program.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            let session = match (cli, session) {
                (Some(cli), Some(id)) if *resumed => format!(", resuming {cli} session {id}"),
                (Some(cli), Some(id)) => format!(", {cli} session {id}"),
                _ => String::new(),
            };
            format!(
                "step {step}: `{}` in a {cols}×{rows} terminal{session}",
                one_line(&command, 100)
            )
        }
        Event::PtySession {
            step,
            session,
            source,
            ..
        } => format!("step {step}: session {session} (from {source})"),
        Event::PtyFinished {
            step,
            exit_code,
            ended_by,
            transcript_tail,
            duration_ms,
            ..
        } => {
            let mut text = format!(
                "step {step}: {}",
                pty_summary(*exit_code, ended_by, *duration_ms)
            );
            // The screen as it was, line by line (a replay prints the same).
            for line in transcript_tail.lines() {
                text.push_str("\n  │ ");
                text.push_str(line);
            }
            text
        }
        Event::StepSucceeded {
            step,
            outputs,
            usage,
            ..
        } => {
            let took = took_text(took);
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
            let took = took_text(took);
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
        Event::StepDelegated {
            step, run, work, ..
        } => format!(
            "step {step}: executed as step run {run} by a lev worker that takes `{work}` (`lev show {run}`)"
        ),
        Event::StepCancelled { step, .. } => format!("step {step}: cancelled"),
        Event::GuardTripped {
            guard,
            limit,
            observed,
            step,
            ..
        } => format!("! {}", guard_tripped(guard, limit, observed, step.as_ref())),
        Event::PriceUnknown { model, step, .. } => format!("! {}", price_unknown(model, step)),
        Event::McpServerStarted {
            server,
            restart: 0,
            tools,
            ..
        } => format!("MCP server {server} started ({})", plural(*tools, "tool")),
        Event::McpServerStarted {
            server, restart, ..
        } => format!("MCP server {server} restarted (restart {restart})"),
        Event::McpServerDown { server, error, .. } => {
            format!("! MCP server {server} is down: {}", one_line(error, 200))
        }
        Event::McpToolsListed {
            step,
            server,
            tools,
            ..
        } => format!(
            "step {step}: offered {} of MCP server {server}",
            plural(tools.len(), "tool")
        ),
        Event::ContextAssembled {
            step,
            turn,
            total,
            budget,
            parts,
            left_out,
            ..
        } => format!(
            "step {step}: turn {turn} {}",
            context_assembled(*total, *budget, parts, left_out)
        ),
        Event::FollowupSpawned {
            step,
            parent,
            depth,
            mode,
            title,
            by,
            ..
        } => format!(
            "step {parent}: {}",
            followup_spawned(step, *depth, mode, title, by)
        ),
        Event::FollowupRefused {
            step,
            parent,
            title,
            guard,
            limit,
            observed,
            ..
        } => format!(
            "! step {parent}: {}",
            followup_refused(step, title, guard, limit, observed)
        ),
        Event::CallbacksStopped { by, reason, .. } => {
            format!("! {}", callbacks_stopped(by, reason))
        }
        Event::AgentAsked { step, question, .. } => {
            format!("step {step}: {}", agent_asked(question))
        }
        Event::FlowmindDecided {
            step,
            rule,
            observed,
            level,
            text,
            ..
        } => flowmind_decided(step, rule, observed, *level, text),
        Event::FlowmindLedger {
            step, turn, ledger, ..
        } => flowmind_ledger(step, *turn, ledger),
        Event::FlowmindFellBack { why, .. } => flowmind_fell_back(why),
        Event::FlowmindProposed {
            step,
            title,
            mode,
            why,
            ..
        } => flowmind_proposed(step, title, mode, why),
        Event::FlowmindDismissed { step, .. } => {
            format!("FlowMind's escalation about {step} dismissed")
        }
        Event::SemanticVerdict {
            step,
            condition,
            holds,
            confidence,
            reason,
            judge,
            ..
        } => format!(
            "step {step}: {}",
            semantic_verdict(condition, *holds, *confidence, reason, judge)
        ),
        Event::InFlightResolved { step, decision, .. } => {
            format!("step {}", in_flight(step, decision))
        }
        Event::RunPaused { reason, .. } => {
            format!("run paused: {}", pause(reason))
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
        Event::EmergencyStopped { .. } => format!("! {EMERGENCY_STOP}"),
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
        Event::PlanRevised {
            revision,
            stalled,
            replaces,
            plan,
            edited,
            ..
        } => plan_revised(*revision, stalled, replaces, plan, *edited),
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
        } => format!(
            "! {}",
            provider_breaker(endpoint, state, reason, step.as_ref())
        ),
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
        } => format!("run {} {}", r.run, forked(from_run, from_step)),
        Event::Worktree { step, fact, .. } => {
            format!("step {step}: {}", worktree(fact))
        }
        Event::RunFinished {
            status,
            outputs,
            error,
            usage,
            ..
        } => {
            let took = took_text(took);
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

/// `request 2 of 4 [to endpoint] failed: why; trying again in 1.5s`.
pub fn llm_retry(
    failed: u32,
    tries: u32,
    endpoint: Option<&str>,
    error: &str,
    delay_ms: u64,
) -> String {
    let to = endpoint.map(|e| format!(" to {e}")).unwrap_or_default();
    format!(
        "request {failed} of {tries}{to} failed: {}; trying again in {}",
        one_line(error, 200),
        ms(delay_ms)
    )
}

/// A safety limit that stopped something.
pub fn guard_tripped(guard: &str, limit: &str, observed: &str, step: Option<&StepKey>) -> String {
    let at_step = step.map(|s| format!(" at {s}")).unwrap_or_default();
    format!("limit {guard} ({limit}) reached{at_step}: observed {observed}")
}

/// What an agent's request was made of, in one line.
pub fn context_assembled(
    total: u64,
    budget: Option<u64>,
    parts: &[super::ContextPart],
    left_out: &[super::LeftOut],
) -> String {
    let budget = budget
        .map(|b| format!(" of a {b}-token budget"))
        .unwrap_or_default();
    let cut = parts.iter().filter(|p| p.note.is_some()).count();
    let mut trimmed = Vec::new();
    if cut > 0 {
        trimmed.push(format!("{cut} cut"));
    }
    if !left_out.is_empty() {
        trimmed.push(format!("{} left out", left_out.len()));
    }
    let trimmed = if trimmed.is_empty() {
        String::new()
    } else {
        format!(" ({})", trimmed.join(", "))
    };
    format!(
        "context: {total} tokens{budget} in {} parts{trimmed}",
        parts.len()
    )
}

/// A follow-up a step spawned.
pub fn followup_spawned(step: &StepKey, depth: u32, mode: &str, title: &str, by: &str) -> String {
    let proposed = if by == "agent" {
        ", proposed by its agent"
    } else {
        ""
    };
    format!(
        "↳ follow-up {step} ({mode}, depth {depth}{proposed}): {}",
        one_line(title, 120)
    )
}

/// A follow-up a guard refused.
pub fn followup_refused(
    step: &StepKey,
    title: &str,
    guard: &str,
    limit: &str,
    observed: &str,
) -> String {
    format!(
        "follow-up {step} not spawned: {guard} ({}): {} — {}",
        one_line(limit, 120),
        one_line(observed, 160),
        one_line(title, 80)
    )
}

/// Callbacks stopped for the rest of the run.
pub fn callbacks_stopped(by: &str, reason: &str) -> String {
    let who = match by {
        "user" => "by the user".to_string(),
        other => format!("by {other}"),
    };
    format!(
        "callbacks stopped {who}: {}; no new follow-up or system question from here on",
        one_line(reason, 200)
    )
}

/// A FlowMind decision about a stuck agent.
pub fn flowmind_decided(
    step: &StepKey,
    rule: &str,
    observed: &str,
    level: super::FlowmindLevel,
    text: &str,
) -> String {
    let seen = format!("{rule}: {}", one_line(observed, 160));
    match level {
        super::FlowmindLevel::Instruct => {
            format!("FlowMind → {step} ({seen}): {}", one_line(text, 300))
        }
        super::FlowmindLevel::Escalate => format!(
            "! FlowMind: {step} looks stuck ({seen}): {}",
            one_line(text, 300)
        ),
        super::FlowmindLevel::Ask => format!("FlowMind asks {step}: {}", one_line(text, 300)),
        super::FlowmindLevel::Replan => format!(
            "FlowMind re-plans: {step} stalled ({seen}): {}",
            one_line(text, 300)
        ),
    }
}

/// A swarm's unfinished work planned again around a stalled task.
pub fn plan_revised(
    revision: u32,
    stalled: &StepKey,
    replaces: &[String],
    plan: &Value,
    edited: bool,
) -> String {
    if replaces.is_empty() {
        return format!(
            "re-plan {revision} not needed: `{stalled}` finished before it was stopped"
        );
    }
    let edited = if edited { " (edited by the user)" } else { "" };
    format!(
        "plan revised{edited} (re-plan {revision}, `{stalled}` stalled): {} replace {}",
        task_count(plan),
        one_line(&replaces.join(", "), 200)
    )
}

/// A follow-up FlowMind proposed.
pub fn flowmind_proposed(step: &StepKey, title: &str, mode: &str, why: &str) -> String {
    let why = if why.trim().is_empty() {
        String::new()
    } else {
        format!(" — {}", one_line(why, 200))
    };
    format!(
        "FlowMind proposes a follow-up of {step}: {} ({mode}){why}; decided when {step} succeeds",
        one_line(title, 120)
    )
}

/// FlowMind's conductor about an agent's question.
pub fn answer_proposed(
    id: &str,
    answer: Option<&str>,
    confidence: f64,
    category: &str,
    reason: &str,
    auto: bool,
    grace_ms: u64,
) -> String {
    let sure = format!(
        "{:.0}% sure, {}",
        confidence * 100.0,
        one_line(category, 40)
    );
    match answer {
        None => format!("FlowMind has no answer to {id}: {}", one_line(reason, 200)),
        Some(a) if auto => format!(
            "FlowMind answers {id} in {}s unless you do: {} ({sure}: {})",
            grace_ms / 1000,
            one_line(a, 160),
            one_line(reason, 160)
        ),
        Some(a) => format!(
            "FlowMind proposes for {id}: {} ({sure}: {})",
            one_line(a, 160),
            one_line(reason, 160)
        ),
    }
}

/// FlowMind's progress ledger about an agent's working turn.
pub fn flowmind_ledger(step: &StepKey, turn: u32, ledger: &super::Ledger) -> String {
    format!(
        "FlowMind ledger, {step} turn {turn}: {} — {}",
        ledger_verdict(ledger),
        one_line(&ledger.reason, 200)
    )
}

/// A ledger in a few words (`progressing`, `looping`, `done`, …).
pub fn ledger_verdict(ledger: &super::Ledger) -> String {
    let mut words = Vec::new();
    if ledger.satisfied {
        words.push("done");
    }
    if ledger.looping {
        words.push("looping");
    }
    if !ledger.satisfied {
        words.push(if ledger.progressing {
            "progressing"
        } else {
            "no progress"
        });
    }
    if ledger.next == "user" {
        words.push("needs you");
    }
    words.join(", ")
}

/// FlowMind's model stopped for the rest of the run.
pub fn flowmind_fell_back(why: &str) -> String {
    format!(
        "FlowMind's model stopped ({}); its rules go on alone",
        one_line(why, 200)
    )
}

/// The system's question to an agent (`ask_agent:`).
pub fn agent_asked(question: &str) -> String {
    format!("lev asks the agent: {}", one_line(question, 300))
}

/// How a step's `when_semantic` was judged.
pub fn semantic_verdict(
    condition: &str,
    holds: bool,
    confidence: Option<f64>,
    reason: &str,
    judge: &str,
) -> String {
    let verdict = if holds { "holds" } else { "does not hold" };
    let confidence = confidence
        .map(|c| format!(", confidence {c:.2}"))
        .unwrap_or_default();
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(": {}", one_line(reason, 200))
    };
    format!(
        "when_semantic \"{}\" {verdict} (judged by {judge}{confidence}){reason}",
        one_line(condition, 120)
    )
}

/// A reply's model has no price while a cost budget counts.
pub fn price_unknown(model: &str, step: &StepKey) -> String {
    format!(
        "no price known for model {model} (at {step}): max_cost_usd counts its tokens as $0; \
         add it under `prices:` in the config"
    )
}

/// What became of a step that was in flight when lev stopped.
pub fn in_flight(step: &StepKey, decision: &InFlightDecision) -> String {
    format!("{step}: in-flight attempt resolved: {decision:?}")
}

/// A provider's circuit breaker changed state.
pub fn provider_breaker(
    endpoint: &str,
    state: &str,
    reason: &str,
    step: Option<&StepKey>,
) -> String {
    let during = step
        .map(|s| format!(" (during step {s})"))
        .unwrap_or_default();
    format!(
        "provider {endpoint} breaker {}{during}: {}",
        state.replace('_', "-"),
        one_line(reason, 200)
    )
}

/// A run made from another one's journal.
pub fn forked(from_run: &RunId, from_step: &StepKey) -> String {
    format!("forked from run {from_run} at step {from_step}")
}

pub const EMERGENCY_STOP: &str = "emergency stop: stopping every running step";

fn took_text(took: Option<u64>) -> String {
    took.map(|t| format!(" in {}", ms(t))).unwrap_or_default()
}

/// How a shell command ended: `exit 3`, `timed out` or `killed`.
/// `terminal exited with code 3 in 1.2s`: how and after how long a `pty`
/// step's program ended.
pub fn pty_summary(exit_code: Option<i32>, ended_by: &str, duration_ms: u64) -> String {
    format!(
        "terminal {} in {}",
        pty_end(exit_code, ended_by),
        ms(duration_ms)
    )
}

/// How a `pty` step's program ended, in words.
fn pty_end(exit_code: Option<i32>, ended_by: &str) -> String {
    match (ended_by, exit_code) {
        ("exit", Some(code)) => format!("exited with code {code}"),
        ("exit", None) => "ended by a signal".into(),
        ("done_when", _) => "done (its `done_when` rule held)".into(),
        ("stop", _) => "done (its agent said its turn ended)".into(),
        ("timeout", _) => "stopped: it timed out".into(),
        (other, _) => format!("stopped ({other})"),
    }
}

pub fn shell_end(exit_code: Option<i32>, timed_out: bool) -> String {
    match (exit_code, timed_out) {
        (_, true) => "timed out".to_string(),
        (Some(c), _) => format!("exit {c}"),
        (None, _) => "killed".to_string(),
    }
}

/// Why a run paused, for users.
pub fn pause(reason: &PauseReason) -> String {
    match reason {
        PauseReason::Divergence {
            step,
            key,
            recorded,
            computed,
        } => format!(
            "divergence at step `{step}` ({key}): the journal recorded {recorded} but this run computed {computed}; \
             the run is paused rather than reuse a result that does not belong to it"
        ),
        PauseReason::InFlight { step, attempt } => format!(
            "step `{step}` (attempt {attempt}) was running when lev stopped and is not idempotent; \
             resume with --in-flight rerun|skip|done"
        ),
        PauseReason::Requested => "paused on request".to_string(),
        PauseReason::EmergencyStop => STOP_MESSAGE.to_string(),
        PauseReason::DiskFull { error } => format!(
            "the journal's disk is full ({error}); the running steps' outcomes are recorded and \
             nothing new was started: free some space, then `lev resume` continues the run"
        ),
    }
}

/// Why a resumable stop paused the run, for users.
pub const STOP_MESSAGE: &str = "emergency stop: every running step was stopped where it stood and no new step started; \
     `lev resume <run>` continues (a stopped shell command counts as interrupted, so a non-idempotent one asks before it runs again)";

/// `+12 -3 in 2 files`.
pub fn diff_stat(files_changed: u32, insertions: u32, deletions: u32) -> String {
    format!(
        "+{insertions} -{deletions} in {files_changed} file{}",
        if files_changed == 1 { "" } else { "s" }
    )
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// What happened to a step's worktree.
pub fn worktree(fact: &WorktreeFact) -> String {
    match fact {
        WorktreeFact::Ready {
            path,
            branch,
            base,
            started_from,
            ..
        } if !started_from.is_empty() => format!(
            "worktree {path} on branch {branch} (from {base}, with the work of {})",
            started_from.join(", ")
        ),
        WorktreeFact::Ready {
            path, branch, base, ..
        } => format!("worktree {path} on branch {branch} (from {base})"),
        WorktreeFact::Changed {
            branch,
            commit,
            files_changed,
            insertions,
            deletions,
        } => {
            let stat = diff_stat(*files_changed, *insertions, *deletions);
            match commit {
                Some(c) => format!("changes committed on {branch} as {}: {stat}", short(c)),
                None => format!("nothing new to commit on {branch}: {stat}"),
            }
        }
        WorktreeFact::Merged {
            branch,
            into,
            commit,
        } => format!("branch {branch} merged into {into} ({})", short(commit)),
        WorktreeFact::Pushed {
            branch,
            remote,
            commit,
        } => format!("branch {branch} pushed to {remote} ({})", short(commit)),
        WorktreeFact::Discarded { branch } => {
            format!("worktree removed and branch {branch} deleted")
        }
    }
}

/// `3 tasks`, from a plan as journaled (any JSON).
pub fn task_count(plan: &Value) -> String {
    match plan.get("tasks").and_then(Value::as_array).map(Vec::len) {
        Some(1) => "1 task".to_string(),
        Some(n) => format!("{n} tasks"),
        None => "no task list".to_string(),
    }
}

fn status_word(s: RunStatus) -> &'static str {
    s.as_str()
}

pub fn source_note(s: AnswerSource) -> &'static str {
    match s {
        AnswerSource::User => "",
        AnswerSource::Default => " (default)",
        AnswerSource::Timeout => " (default after timeout)",
        AnswerSource::Flowmind => " (by FlowMind)",
    }
}

pub fn tokens(u: &Usage) -> String {
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
