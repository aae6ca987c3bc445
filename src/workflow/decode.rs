//! Decoding journaled events fast. `Event` is an internally tagged enum
//! (`{"type": "step_started", ...}`), which serde decodes by buffering the
//! whole object first; for a long run that is most of what `lev resume` and
//! `lev replay` wait on. The kinds a run holds by the thousand are read
//! here straight into a struct of their own (the entries lev writes put
//! `type` first, so the kind is known before decoding); every other kind,
//! and any entry not in that shape, takes serde's general path.
//!
//! Each struct mirrors its variant field for field (serde attributes
//! included); building the variant from it names every field, so a field
//! added to the variant and not here does not compile, and the tests check
//! that both paths decode every kind to the same event.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::protocol::{Attempt, Event, Millis, StepKey, StepOutline, ToolCallRecord, Usage};

/// Decodes one journaled event.
pub fn decode_event(bytes: &[u8]) -> serde_json::Result<Event> {
    let fast = match leading_kind(bytes) {
        Some("run_started") => serde_json::from_slice::<RunStarted>(bytes).map(Event::from),
        Some("step_started") => serde_json::from_slice::<StepStarted>(bytes).map(Event::from),
        Some("step_succeeded") => serde_json::from_slice::<StepSucceeded>(bytes).map(Event::from),
        Some("llm_replied") => serde_json::from_slice::<LlmReplied>(bytes).map(Event::from),
        Some("tool_started") => serde_json::from_slice::<ToolStarted>(bytes).map(Event::from),
        Some("tool_finished") => serde_json::from_slice::<ToolFinished>(bytes).map(Event::from),
        _ => return serde_json::from_slice(bytes),
    };
    // An entry in another shape (edited by hand, another `type` value
    // later in the object): the general path decides.
    fast.or_else(|_| serde_json::from_slice(bytes))
}

/// The kind when the object starts with `{"type":"<kind>"`.
fn leading_kind(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(br#"{"type":""#)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Once per run, but it lists every declared step: buffered, a
/// 10,000-step run's start costs megabytes each time it is read.
#[derive(Deserialize)]
struct RunStarted {
    workflow_id: String,
    name: String,
    source: String,
    definition_hash: String,
    inputs: BTreeMap<String, Value>,
    seed: u64,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default, deserialize_with = "crate::spec::model::exact_vec")]
    steps: Vec<StepOutline>,
    #[serde(default)]
    flowmind: Option<Box<crate::protocol::FlowmindOverride>>,
    #[serde(default)]
    spread: bool,
    #[serde(default)]
    step_of: Option<Box<crate::protocol::StepOf>>,
    #[serde(default)]
    push_to: Option<String>,
    at: Millis,
}

impl From<RunStarted> for Event {
    fn from(e: RunStarted) -> Event {
        Event::RunStarted {
            workflow_id: e.workflow_id,
            name: e.name,
            source: e.source,
            definition_hash: e.definition_hash,
            inputs: e.inputs,
            seed: e.seed,
            workspace: e.workspace,
            steps: e.steps,
            flowmind: e.flowmind,
            spread: e.spread,
            step_of: e.step_of,
            push_to: e.push_to,
            at: e.at,
        }
    }
}

#[derive(Deserialize)]
struct StepStarted {
    step: StepKey,
    attempt: Attempt,
    fingerprint: String,
    kind: String,
    mode: Option<String>,
    idempotent: bool,
    #[serde(default)]
    hints: Vec<String>,
    at: Millis,
}

impl From<StepStarted> for Event {
    fn from(e: StepStarted) -> Event {
        Event::StepStarted {
            step: e.step,
            attempt: e.attempt,
            fingerprint: e.fingerprint,
            kind: e.kind,
            mode: e.mode,
            idempotent: e.idempotent,
            hints: e.hints,
            at: e.at,
        }
    }
}

#[derive(Deserialize)]
struct StepSucceeded {
    step: StepKey,
    attempt: Attempt,
    outputs: BTreeMap<String, Value>,
    usage: Usage,
    at: Millis,
}

impl From<StepSucceeded> for Event {
    fn from(e: StepSucceeded) -> Event {
        Event::StepSucceeded {
            step: e.step,
            attempt: e.attempt,
            outputs: e.outputs,
            usage: e.usage,
            at: e.at,
        }
    }
}

#[derive(Deserialize)]
struct LlmReplied {
    step: StepKey,
    attempt: Attempt,
    turn: u32,
    fingerprint: String,
    text: String,
    tool_calls: Vec<ToolCallRecord>,
    usage: Usage,
    model: String,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    at: Millis,
}

impl From<LlmReplied> for Event {
    fn from(e: LlmReplied) -> Event {
        Event::LlmReplied {
            step: e.step,
            attempt: e.attempt,
            turn: e.turn,
            fingerprint: e.fingerprint,
            text: e.text,
            tool_calls: e.tool_calls,
            usage: e.usage,
            model: e.model,
            stop_reason: e.stop_reason,
            refusal: e.refusal,
            at: e.at,
        }
    }
}

#[derive(Deserialize)]
struct ToolStarted {
    step: StepKey,
    attempt: Attempt,
    #[serde(default)]
    turn: u32,
    #[serde(default)]
    position: u32,
    call_id: String,
    name: String,
    fingerprint: String,
    at: Millis,
}

impl From<ToolStarted> for Event {
    fn from(e: ToolStarted) -> Event {
        Event::ToolStarted {
            step: e.step,
            attempt: e.attempt,
            turn: e.turn,
            position: e.position,
            call_id: e.call_id,
            name: e.name,
            fingerprint: e.fingerprint,
            at: e.at,
        }
    }
}

#[derive(Deserialize)]
struct ToolFinished {
    step: StepKey,
    attempt: Attempt,
    #[serde(default)]
    turn: u32,
    #[serde(default)]
    position: u32,
    call_id: String,
    name: String,
    arguments: String,
    output: String,
    is_error: bool,
    at: Millis,
}

impl From<ToolFinished> for Event {
    fn from(e: ToolFinished) -> Event {
        Event::ToolFinished {
            step: e.step,
            attempt: e.attempt,
            turn: e.turn,
            position: e.position,
            call_id: e.call_id,
            name: e.name,
            arguments: e.arguments,
            output: e.output,
            is_error: e.is_error,
            at: e.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both_paths_agree(event: Event) {
        let bytes = serde_json::to_vec(&event).unwrap();
        assert!(leading_kind(&bytes).is_some(), "`type` is not first");
        assert_eq!(decode_event(&bytes).unwrap(), event);
        let general: Event = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(general, event);
    }

    #[test]
    fn every_fast_kind_decodes_like_the_general_path() {
        let step = || StepKey::new("code");
        both_paths_agree(Event::RunStarted {
            workflow_id: "w".into(),
            name: "W".into(),
            source: "w.yaml".into(),
            definition_hash: "d".into(),
            inputs: BTreeMap::from([("n".to_string(), Value::from(3))]),
            seed: 42,
            workspace: Some("/tmp/w".into()),
            steps: vec![StepOutline {
                id: "code".into(),
                kind: "agent".into(),
                needs: vec!["plan".into()],
                mode: Some("coder".into()),
            }],
            flowmind: Some(Box::new(crate::protocol::FlowmindOverride {
                mode: Some("model".into()),
                cadence: Some(2),
                categories: Some(vec!["naming".into()]),
                ..Default::default()
            })),
            spread: false,
            step_of: None,
            push_to: None,
            at: Millis(4),
        });
        both_paths_agree(Event::RunStarted {
            workflow_id: "w".into(),
            name: "W".into(),
            source: "w.yaml".into(),
            definition_hash: "d".into(),
            inputs: BTreeMap::new(),
            seed: 0,
            workspace: None,
            steps: Vec::new(),
            flowmind: None,
            spread: false,
            step_of: None,
            push_to: None,
            at: Millis(4),
        });
        both_paths_agree(Event::StepStarted {
            step: step(),
            attempt: Attempt(2),
            fingerprint: "f".into(),
            kind: "agent".into(),
            mode: Some("coder".into()),
            idempotent: true,
            hints: vec!["run the tests".into()],
            at: Millis(5),
        });
        both_paths_agree(Event::StepSucceeded {
            step: step(),
            attempt: Attempt(1),
            outputs: BTreeMap::from([("text".to_string(), Value::from("ok \"quoted\""))]),
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                cost_usd: 0.5,
                estimated: 2,
            },
            at: Millis(6),
        });
        both_paths_agree(Event::LlmReplied {
            step: step(),
            attempt: Attempt(1),
            turn: 3,
            fingerprint: "g".into(),
            text: "hello".into(),
            tool_calls: vec![ToolCallRecord {
                id: "c1".into(),
                name: "read_file".into(),
                arguments: "{\"path\":\"a\"}".into(),
            }],
            usage: Usage::default(),
            model: "m".into(),
            stop_reason: Some("length".into()),
            refusal: Some("no".into()),
            at: Millis(7),
        });
        both_paths_agree(Event::ToolStarted {
            step: step(),
            attempt: Attempt(1),
            turn: 3,
            position: 1,
            call_id: "c1".into(),
            name: "run_shell".into(),
            fingerprint: "h".into(),
            at: Millis(8),
        });
        both_paths_agree(Event::ToolFinished {
            step: step(),
            attempt: Attempt(1),
            turn: 3,
            position: 1,
            call_id: "c1".into(),
            name: "run_shell".into(),
            arguments: "{}".into(),
            output: "done\n".into(),
            is_error: false,
            at: Millis(9),
        });
        both_paths_agree(Event::RunResumed { at: Millis(10) });
    }

    #[test]
    fn entries_in_another_shape_take_the_general_path() {
        // `type` not first, and an older entry without `hints`.
        let late = br#"{"step":"a","type":"step_started","attempt":1,"fingerprint":"f","kind":"shell","mode":null,"idempotent":false,"at":1}"#;
        let first = br#"{"type":"step_started","step":"a","attempt":1,"fingerprint":"f","kind":"shell","mode":null,"idempotent":false,"at":1}"#;
        assert_eq!(decode_event(late).unwrap(), decode_event(first).unwrap());
        assert!(decode_event(br#"{"type":"step_started"}"#).is_err());
        assert!(decode_event(b"not json").is_err());
    }
}
