//! `type: approval`: a human approves or denies before the run goes on.

use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{StepType, Work, field, not_mine};
use crate::spec::expr::EvalContext;
use crate::spec::{Step, StepKind};
use crate::workflow::attempt::{AttemptCtx, StepError};
use crate::workflow::human;

pub struct Approval;

struct ApprovalWork {
    message: String,
}

impl StepType for Approval {
    fn render(
        &self,
        step: &Step,
        _root: &Path,
        eval: &EvalContext,
    ) -> Result<Box<dyn Work>, String> {
        let StepKind::Approval { message, .. } = &step.kind else {
            return Err(not_mine("approval"));
        };
        Ok(Box::new(ApprovalWork {
            message: field(message, "message", eval)?,
        }))
    }

    fn own_timeout(&self) -> bool {
        true
    }
}

impl Work for ApprovalWork {
    fn identity(&self, _step: &Step) -> Value {
        serde_json::json!(["approval", self.message])
    }

    fn run<'a>(
        &'a self,
        actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>> {
        Box::pin(human::approval(actx, &self.message))
    }
}
