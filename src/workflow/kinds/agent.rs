//! `type: agent`: an LLM agent in a mode, with tools, until it answers.

use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{StepType, Work, field, not_mine};
use crate::spec::expr::EvalContext;
use crate::spec::{Step, StepKind};
use crate::workflow::agent;
use crate::workflow::attempt::{AttemptCtx, StepError};

pub struct Agent;

struct AgentWork {
    mode: String,
    prompt: String,
    /// The prompt in pieces: its text and each value it reads (joined:
    /// `prompt`), for the request's parts.
    pieces: Vec<(Option<String>, String)>,
    model: Option<String>,
    /// The system's questions after the agent's answer (`ask_agent:`).
    ask_agent: Vec<String>,
}

impl StepType for Agent {
    fn render(
        &self,
        step: &Step,
        _root: &Path,
        eval: &EvalContext,
    ) -> Result<Box<dyn Work>, String> {
        let StepKind::Agent {
            mode,
            prompt,
            model,
            ask_agent,
            ..
        } = &step.kind
        else {
            return Err(not_mine("agent"));
        };
        let mut pieces = prompt
            .render_pieces(eval)
            .map_err(|e| format!("cannot render `prompt`: {e}"))?;
        if !step.hints.is_empty() {
            let mut hints = String::from("\n\nBefore you finish, also consider:\n");
            for h in &step.hints {
                hints.push_str(&format!("- {h}\n"));
            }
            pieces.push((Some("whisper.to_llm".to_string()), hints));
        }
        let prompt: String = pieces.iter().map(|(_, t)| t.as_str()).collect();
        let ask_agent = ask_agent
            .iter()
            .enumerate()
            .map(|(i, q)| field(q, &format!("ask_agent[{i}]"), eval))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(AgentWork {
            mode: mode.clone(),
            prompt,
            pieces,
            model: model.clone(),
            ask_agent,
        }))
    }

    fn takes_slot(&self) -> bool {
        true
    }
}

impl Work for AgentWork {
    fn identity(&self, _step: &Step) -> Value {
        if self.ask_agent.is_empty() {
            serde_json::json!(["agent", self.mode, self.prompt, self.model])
        } else {
            serde_json::json!(["agent", self.mode, self.prompt, self.model, self.ask_agent])
        }
    }

    fn mode(&self) -> Option<&str> {
        Some(&self.mode)
    }

    fn run<'a>(
        &'a self,
        actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>> {
        Box::pin(agent::run(
            actx,
            &self.mode,
            &self.pieces,
            self.model.as_deref(),
            &self.ask_agent,
        ))
    }
}
