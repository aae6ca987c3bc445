//! `lev hook`: what an agent CLI's hook tells the lev that runs it in a
//! `pty` step (its state, its session id), sent over that lev's control
//! socket as `Op::PtyHook`. The hook must never hold its agent up: the
//! payload is read for at most a moment, and a lev that is gone is a
//! warning, not a failure the agent would act on.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use super::context::error;
use super::exit;
use crate::engine::{Query, Reply};
use crate::host::Client;
use crate::protocol::{HookReport, Op, RunId, StepKey, TerminalState};

/// The longest a hook waits for the user's decision on an approval (the
/// agent's own hook timeout usually ends it sooner; configure it longer).
const DECISION_WAIT: Duration = Duration::from_secs(3600);
/// How often the answer is looked for.
const DECISION_POLL: Duration = Duration::from_millis(250);

/// The longest a hook's payload may take to arrive on standard input.
const PAYLOAD_WAIT: Duration = Duration::from_secs(2);
/// The most of a payload read (Claude Code's carry a transcript path, not the transcript).
const PAYLOAD_BYTES: u64 = 1024 * 1024;

pub async fn hook(
    state: Option<String>,
    session: Option<String>,
    message: Option<String>,
    wait: bool,
) -> u8 {
    let (mut report, permission_request) = match report(state.as_deref(), session, message) {
        Ok(r) => r,
        Err(e) => {
            error(&e);
            return exit::USAGE;
        }
    };
    if (wait || permission_request) && report.state == Some(TerminalState::NeedsApproval) {
        report.wait = Some(ulid::Ulid::generate().to_string().to_lowercase());
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(socket), Some(run), Some(step)) =
        (var("LEV_HOOK_SOCKET"), var("LEV_RUN"), var("LEV_STEP"))
    else {
        error(
            "`lev hook` runs inside a `pty` step's program: LEV_HOOK_SOCKET, LEV_RUN and LEV_STEP are not set",
        );
        return exit::USAGE;
    };
    let (run, step) = (RunId(run), StepKey::new(&step));
    let request = report.wait.clone();
    let op = Op::PtyHook {
        run: run.clone(),
        step: step.clone(),
        report,
    };
    let mut client = match tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(std::path::Path::new(&socket)),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            error(&format!("cannot reach lev at {socket}: {e}"));
            return exit::FAILED;
        }
        Err(_) => {
            error(&format!("lev at {socket} did not answer"));
            return exit::FAILED;
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), client.submit(op)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            error(&e.to_string());
            return exit::FAILED;
        }
        Err(_) => {
            error(&format!("lev at {socket} did not answer"));
            return exit::FAILED;
        }
    }
    let Some(request) = request else {
        return exit::OK;
    };
    let question = HookReport::approval_question(&step, &request);
    let approved = match decision(&mut client, &run, question).await {
        Ok(approved) => approved,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    let mut out = std::io::stdout();
    if permission_request {
        // Claude Code's answer to its PermissionRequest hook.
        let behavior = if approved { "allow" } else { "deny" };
        let mut decision = serde_json::json!({ "behavior": behavior });
        if !approved {
            decision["message"] = "denied in lev".into();
        }
        let answer = serde_json::json!({
            "hookSpecificOutput": {
                "hookEventName": "PermissionRequest",
                "decision": decision,
            }
        });
        let _ = writeln!(out, "{answer}");
        return exit::OK;
    }
    let _ = writeln!(out, "{}", if approved { "allow" } else { "deny" });
    // 2: the exit code agents' hooks read as "blocked".
    if approved { exit::OK } else { 2 }
}

/// Waits for the user's answer to `question` (approved: `yes`).
async fn decision(client: &mut Client, run: &RunId, question: String) -> Result<bool, String> {
    let deadline = tokio::time::Instant::now() + DECISION_WAIT;
    loop {
        let asked = Query::Answer {
            run: run.clone(),
            question: question.clone(),
        };
        match client.query(asked).await.map_err(|e| e.to_string())? {
            Reply::Answer(Some(answer)) => return Ok(answer == "yes"),
            Reply::Answer(None) => {}
            other => return Err(format!("lev answered with {}", other.unexpected())),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err("no decision came".into());
        }
        tokio::time::sleep(DECISION_POLL).await;
    }
}

/// The report from the arguments, or from the hook's JSON payload (the
/// argument, else standard input) when no state is named.
fn report(
    state: Option<&str>,
    session: Option<String>,
    message: Option<String>,
) -> Result<(HookReport, bool), String> {
    let named = match state {
        Some(s) if s.trim_start().starts_with('{') => None,
        Some(s) => Some(parse_state(s)?),
        None => None,
    };
    let payload = match state {
        Some(s) if s.trim_start().starts_with('{') => Some(s.to_string()),
        Some(_) => None,
        None => read_stdin(),
    };
    let value = payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok());
    let permission_request = value.as_ref().is_some_and(|v| {
        v.get("hook_event_name").and_then(Value::as_str) == Some("PermissionRequest")
    });
    let from_payload = value.as_ref().map(from_payload).unwrap_or(HookReport {
        state: None,
        session: None,
        message: None,
        wait: None,
    });
    let report = HookReport {
        state: named.flatten().or(from_payload.state),
        session: session.or(from_payload.session),
        message: message.or(from_payload.message),
        wait: None,
    };
    Ok((report, permission_request))
}

/// `None` inside: a report of the session id alone.
fn parse_state(s: &str) -> Result<Option<TerminalState>, String> {
    Ok(Some(match s {
        "needs-input" => TerminalState::NeedsInput,
        "needs-approval" => TerminalState::NeedsApproval,
        "working" | "running" => TerminalState::Running,
        "stop" | "idle" => TerminalState::Idle,
        "session" => return Ok(None),
        other => {
            return Err(format!(
                "`{other}` is not a state lev knows (needs-input, needs-approval, working, stop, session)"
            ));
        }
    }))
}

/// What Claude Code's, gemini-cli's and Codex's hook payloads say.
fn from_payload(v: &Value) -> HookReport {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let message = text("message");
    let state = match (text("hook_event_name").as_deref(), text("type").as_deref()) {
        (Some("Notification"), _) => Some(
            if message
                .as_deref()
                .is_some_and(|m| m.to_lowercase().contains("permission"))
            {
                TerminalState::NeedsApproval
            } else {
                TerminalState::NeedsInput
            },
        ),
        (Some("PermissionRequest"), _) => Some(TerminalState::NeedsApproval),
        (Some("Stop" | "AfterAgent"), _) | (_, Some("agent-turn-complete")) => {
            Some(TerminalState::Idle)
        }
        (Some("UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "BeforeAgent"), _) => {
            Some(TerminalState::Running)
        }
        _ => None,
    };
    // A permission request names the tool it wants to use.
    let message = message.or_else(|| {
        let tool = text("tool_name")?;
        let input = v
            .get("tool_input")
            .map(Value::to_string)
            .unwrap_or_default();
        Some(format!("use {tool} {input}"))
    });
    HookReport {
        state,
        session: text("session_id")
            .or_else(|| text("thread-id"))
            .or_else(|| text("thread_id")),
        message,
        wait: None,
    }
}

/// The payload on standard input, when one comes (not from a terminal,
/// within a moment).
fn read_stdin() -> Option<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return None;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::stdin()
            .take(PAYLOAD_BYTES)
            .read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx.recv_timeout(PAYLOAD_WAIT)
        .ok()
        .filter(|t| !t.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_s_payloads_say_its_state_and_session() {
        let v: Value = serde_json::from_str(
            r#"{"session_id":"abc","hook_event_name":"Notification","message":"Claude needs your permission to use Bash"}"#,
        )
        .unwrap();
        let r = from_payload(&v);
        assert_eq!(r.state, Some(TerminalState::NeedsApproval));
        assert_eq!(r.session.as_deref(), Some("abc"));
        let v: Value =
            serde_json::from_str(r#"{"session_id":"abc","hook_event_name":"Stop"}"#).unwrap();
        assert_eq!(from_payload(&v).state, Some(TerminalState::Idle));
    }

    #[test]
    fn codex_s_notify_argument_is_a_payload() {
        let (r, _) = report(
            Some(r#"{"type":"agent-turn-complete","thread-id":"t-1","last-assistant-message":"done"}"#),
            None,
            None,
        )
        .unwrap();
        assert_eq!(r.state, Some(TerminalState::Idle));
        assert_eq!(r.session.as_deref(), Some("t-1"));
    }

    #[test]
    fn a_named_state_wins_and_an_unknown_one_is_refused() {
        let (r, _) = report(Some("needs-input"), Some("s".into()), Some("Name?".into())).unwrap();
        assert_eq!(r.state, Some(TerminalState::NeedsInput));
        assert_eq!(r.message.as_deref(), Some("Name?"));
        assert!(
            report(Some("sleepy"), None, None)
                .unwrap_err()
                .contains("sleepy")
        );
        assert_eq!(
            report(Some("session"), Some("x".into()), None)
                .unwrap()
                .0
                .state,
            None
        );
    }
}
