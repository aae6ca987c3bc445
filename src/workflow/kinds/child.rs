//! `type: workflow`: a child workflow run inside this run, its outputs the
//! step's outputs.

use std::collections::BTreeMap;
use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{StepType, Work, not_mine};
use crate::protocol::{PauseReason, RunStatus};
use crate::spec::expr::EvalContext;
use crate::spec::{Step, StepKind};
use crate::workflow::attempt::{AttemptCtx, StepError};
use crate::workflow::context::Halt;
use crate::workflow::executor;

pub struct Child;

struct ChildWork {
    inputs: BTreeMap<String, Value>,
}

impl StepType for Child {
    fn render(
        &self,
        step: &Step,
        _root: &Path,
        eval: &EvalContext,
    ) -> Result<Box<dyn Work>, String> {
        let StepKind::Workflow { with, .. } = &step.kind else {
            return Err(not_mine("workflow"));
        };
        let mut inputs = BTreeMap::new();
        for (k, t) in with {
            inputs.insert(
                k.clone(),
                t.eval(eval)
                    .map_err(|e| format!("cannot render `with.{k}`: {e}"))?,
            );
        }
        Ok(Box::new(ChildWork { inputs }))
    }

    fn own_timeout(&self) -> bool {
        true
    }
}

impl Work for ChildWork {
    fn identity(&self, step: &Step) -> Value {
        serde_json::json!(["workflow", step.id, self.inputs])
    }

    fn run<'a>(
        &'a self,
        actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>> {
        Box::pin(run(actx, self.inputs.clone()))
    }
}

async fn run(
    actx: &AttemptCtx,
    inputs: BTreeMap<String, Value>,
) -> Result<Map<String, Value>, StepError> {
    let StepKind::Workflow { child, .. } = &actx.step.kind else {
        return Err(StepError::Fatal(not_mine("workflow")));
    };
    let end = executor::run_child(actx.ctx.clone(), &actx.key, child, inputs).await;
    match end.status {
        RunStatus::Succeeded => {
            let mut raw = Map::new();
            raw.insert(
                "outputs".into(),
                Value::Object(end.outputs.clone().into_iter().collect()),
            );
            for (k, v) in end.outputs {
                raw.insert(k, v);
            }
            Ok(raw)
        }
        RunStatus::Cancelled => Err(StepError::Cancelled),
        RunStatus::Paused => match actx.ctx.halted() {
            Some(Halt::Paused(r)) => Err(StepError::Paused(r)),
            _ => Err(StepError::Paused(PauseReason::Requested)),
        },
        _ => Err(StepError::Fatal(
            end.error.unwrap_or_else(|| "child workflow failed".into()),
        )),
    }
}
