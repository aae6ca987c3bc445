//! `type: question`: the run asks its user and waits for the answer.

use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{StepType, Work, field, not_mine};
use crate::spec::expr::EvalContext;
use crate::spec::{Choice, Step, StepKind};
use crate::workflow::attempt::{AttemptCtx, StepError};
use crate::workflow::human;

pub struct Question;

struct QuestionWork {
    ask: String,
    header: Option<String>,
    options: Vec<Choice>,
    default: Option<String>,
}

impl StepType for Question {
    fn render(
        &self,
        step: &Step,
        _root: &Path,
        eval: &EvalContext,
    ) -> Result<Box<dyn Work>, String> {
        let StepKind::Question {
            ask,
            header,
            options,
            default,
        } = &step.kind
        else {
            return Err(not_mine("question"));
        };
        Ok(Box::new(QuestionWork {
            ask: field(ask, "ask", eval)?,
            header: header.clone(),
            options: options.clone(),
            default: default.clone(),
        }))
    }

    fn own_timeout(&self) -> bool {
        true
    }
}

impl Work for QuestionWork {
    fn identity(&self, _step: &Step) -> Value {
        let opts: Vec<&str> = self.options.iter().map(|o| o.value.as_str()).collect();
        serde_json::json!(["question", self.ask, opts, self.default])
    }

    fn run<'a>(
        &'a self,
        actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>> {
        Box::pin(human::question(
            actx,
            &self.ask,
            self.header.clone(),
            &self.options,
            self.default.clone(),
        ))
    }
}
