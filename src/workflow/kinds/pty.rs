//! `type: pty`: a program in a pseudo-terminal. Parsed and validated; this
//! build does not run it yet (issue 15), and says so when it is reached.

use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{StepType, Work};
use crate::spec::Step;
use crate::spec::expr::EvalContext;
use crate::workflow::attempt::{AttemptCtx, StepError};

pub struct Pty;

struct PtyWork;

impl StepType for Pty {
    fn render(
        &self,
        _step: &Step,
        _root: &Path,
        _eval: &EvalContext,
    ) -> Result<Box<dyn Work>, String> {
        Ok(Box::new(PtyWork))
    }

    fn side_effects(&self) -> bool {
        true
    }
}

impl Work for PtyWork {
    fn identity(&self, step: &Step) -> Value {
        serde_json::json!(["pty", step.id])
    }

    fn run<'a>(
        &'a self,
        _actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>> {
        Box::pin(async {
            Err(StepError::Fatal(
                "`pty` steps run external CLIs in a terminal pane, which needs the TUI; this build runs them nowhere yet"
                    .into(),
            ))
        })
    }
}
