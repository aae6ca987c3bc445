//! A swarm's side of the loopback LLM server: what a request is (the
//! orchestrator's plan, or which task), a scripted reply, and plans.

#![allow(dead_code)]

use serde_json::{Value, json};

use super::llm_server::{Action, OpenAiSse, RecordedRequest, Reply};

/// The first user message of a request: the agent's brief.
pub fn brief(req: &RecordedRequest) -> String {
    req.brief()
}

/// What a request is: `plan` (the orchestrator), or the task id.
pub fn who(req: &RecordedRequest) -> String {
    let b = brief(req);
    if b.contains("Plan this objective") {
        return "plan".into();
    }
    match b.find("Your task (`") {
        Some(i) => {
            let rest = &b[i + 12..];
            rest[..rest.find('`').unwrap_or(0)].to_string()
        }
        None => "unknown".into(),
    }
}

pub fn say(text: &str, delay_ms: u64) -> Reply {
    let reply = OpenAiSse::new("test-model")
        .text(text, 3)
        .usage(30, 10)
        .finish("stop")
        .reply();
    if delay_ms > 0 {
        reply.insert(0, Action::Delay(delay_ms))
    } else {
        reply
    }
}

pub fn task(id: &str, mode: &str, needs: &[&str]) -> Value {
    json!({"id": id, "title": format!("do {id}"), "mode": mode, "needs": needs,
           "acceptance": [format!("{id} is done")], "files": []})
}

pub fn plan_of(tasks: Vec<Value>) -> String {
    json!({"summary": "the team's plan", "tasks": tasks}).to_string()
}
