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
    model: Option<String>,
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
            ..
        } = &step.kind
        else {
            return Err(not_mine("agent"));
        };
        let mut prompt = field(prompt, "prompt", eval)?;
        if !step.hints.is_empty() {
            prompt.push_str("\n\nBefore you finish, also consider:\n");
            for h in &step.hints {
                prompt.push_str(&format!("- {h}\n"));
            }
        }
        Ok(Box::new(AgentWork {
            mode: mode.clone(),
            prompt,
            model: model.clone(),
        }))
    }

    fn takes_slot(&self) -> bool {
        true
    }
}

impl Work for AgentWork {
    fn identity(&self, _step: &Step) -> Value {
        serde_json::json!(["agent", self.mode, self.prompt, self.model])
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
            &self.prompt,
            self.model.as_deref(),
        ))
    }
}
