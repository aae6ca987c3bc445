//! FlowMind's conductor (`flowmind: { mode: model, conductor: … }`): an
//! agent's `ask_user` question goes to FlowMind's model first, which gives
//! the answer it expects from the user, how sure it is, and the kind of
//! question. At or above the configured confidence, in a category the user
//! allowed and never a safety-critical one, FlowMind answers — journaled,
//! and only after a grace period in which the user's own answer wins;
//! otherwise the question reaches the user with FlowMind's answer offered.
//! What to ask and how to read it is here; the controller (`super`) asks,
//! and the engine holds the grace period (`workflow::human`).

use serde_json::Value;

use crate::config::ConductorSettings;
use crate::text::one_line;

/// The mode name a conductor request carries.
pub const CONDUCTOR_MODE: &str = "flowmind-conductor";

pub use crate::config::{CATEGORIES, SAFETY_CRITICAL};

pub const SYSTEM: &str = "You are FlowMind, the controller of lev, a tool that runs AI agents. \
An agent asked its user a question. Give the answer you expect the user to give, judging only from \
what you are shown, and reply with one JSON object and nothing else: {\"answer\": the answer (one of \
the options' values when there are options), \"confidence\": from 0 to 1, how sure you are the user \
would answer the same, \"category\": one of naming, style, scope, tooling, testing, data, security, \
credentials, destructive, other, \"reason\": one sentence}.";

pub const CORRECTION: &str = "That is not an answer object. Reply with only {\"answer\": \"…\", \"confidence\": 0..1, \"category\": \"naming|style|scope|tooling|testing|data|security|credentials|destructive|other\", \"reason\": \"…\"}.";

/// What the model proposes.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub answer: String,
    pub confidence: f64,
    pub category: String,
    pub reason: String,
}

/// A proposal from a reply: a non-empty answer and a confidence in 0..=1;
/// an unknown category reads as `other`.
pub fn parse(text: &str) -> Option<Proposal> {
    let json = crate::workflow::extract_json(text)?;
    let answer = json
        .get("answer")
        .and_then(Value::as_str)?
        .trim()
        .to_string();
    let confidence = json
        .get("confidence")
        .and_then(Value::as_f64)
        .filter(|c| (0.0..=1.0).contains(c))?;
    if answer.is_empty() {
        return None;
    }
    let category = json
        .get("category")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|c| CATEGORIES.contains(&c.as_str()))
        .unwrap_or_else(|| "other".to_string());
    let reason = json
        .get("reason")
        .and_then(Value::as_str)
        .map(|s| one_line(s, 400))
        .unwrap_or_default();
    Some(Proposal {
        answer,
        confidence,
        category,
        reason,
    })
}

/// Whether FlowMind answers in the user's place (after the grace period):
/// sure enough, an allowed category, never a safety-critical one, and one
/// of the options when the question has options.
pub fn answers_alone(settings: &ConductorSettings, p: &Proposal, options: &[String]) -> bool {
    p.confidence >= settings.confidence
        && settings.categories.contains(&p.category)
        && !SAFETY_CRITICAL.contains(&p.category.as_str())
        && (options.is_empty() || options.contains(&p.answer))
}

/// The question as the model is shown it: the agent's task, what it did
/// lately, the question and its options.
pub fn question(task: Option<&str>, recent: &str, ask: &str, options: &[String]) -> String {
    let task = task
        .filter(|t| !t.trim().is_empty())
        .map(|t| one_line(t, 2000))
        .unwrap_or_else(|| "(not recorded)".to_string());
    let mut text =
        format!("The agent's task:\n{task}\n\n{recent}\nIts question to the user:\n{ask}\n");
    if !options.is_empty() {
        text.push_str(&format!("Options: {}\n", options.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(categories: &[&str]) -> ConductorSettings {
        ConductorSettings {
            categories: categories.iter().map(|c| c.to_string()).collect(),
            ..ConductorSettings::default()
        }
    }

    #[test]
    fn answers_alone_only_when_sure_allowed_and_safe() {
        let p = parse(r#"{"answer": "snake_case", "confidence": 0.9, "category": "Naming", "reason": "The code uses it."}"#).unwrap();
        assert_eq!(p.category, "naming");
        assert!(answers_alone(&allowed(&["naming"]), &p, &[]));
        assert!(!answers_alone(&allowed(&["style"]), &p, &[]));
        assert!(
            !answers_alone(&allowed(&[]), &p, &[]),
            "none allowed by default"
        );
        let unsure = Proposal {
            confidence: 0.5,
            ..p.clone()
        };
        assert!(!answers_alone(&allowed(&["naming"]), &unsure, &[]));
        // Never in a safety-critical category, even when allowed.
        let risky = Proposal {
            category: "destructive".into(),
            ..p.clone()
        };
        assert!(!answers_alone(&allowed(&["destructive"]), &risky, &[]));
        // With options, only one of them.
        assert!(!answers_alone(
            &allowed(&["naming"]),
            &p,
            &["camelCase".to_string()]
        ));
    }

    #[test]
    fn a_reply_without_an_answer_or_a_confidence_is_not_one() {
        assert!(parse(r#"{"answer": "", "confidence": 0.9}"#).is_none());
        assert!(parse(r#"{"answer": "x", "confidence": 1.5}"#).is_none());
        assert!(parse(r#"{"answer": "x"}"#).is_none());
        assert!(parse("yes").is_none());
        let odd = parse(r#"{"answer": "x", "confidence": 0.3, "category": "vibes"}"#).unwrap();
        assert_eq!(odd.category, "other");
    }
}
