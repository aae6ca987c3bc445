//! `type: shell`: a command in its own process group, output streamed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{StepType, Work, env_and_cwd, field, not_mine};
use crate::spec::expr::EvalContext;
use crate::spec::{Step, StepKind};
use crate::workflow::attempt::{AttemptCtx, StepError};
use crate::workflow::shell;

pub struct Shell;

struct ShellWork {
    script: String,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
}

impl StepType for Shell {
    fn render(
        &self,
        step: &Step,
        root: &Path,
        eval: &EvalContext,
    ) -> Result<Box<dyn Work>, String> {
        let StepKind::Shell { run, env, cwd } = &step.kind else {
            return Err(not_mine("shell"));
        };
        let script = field(run, "run", eval)?;
        let (vars, cwd) = env_and_cwd(env, cwd.as_ref(), root, eval)?;
        Ok(Box::new(ShellWork {
            script,
            env: vars,
            cwd,
        }))
    }

    fn side_effects(&self) -> bool {
        true
    }

    fn start_needs_commit(&self) -> bool {
        // Its command waits for its process group's durable commit, which
        // carries the start with it (`workflow::shell`).
        false
    }

    fn takes_slot(&self) -> bool {
        true
    }

    fn marked_done_outputs(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("stdout".into(), Value::String(String::new()));
        out.insert("stderr".into(), Value::String(String::new()));
        out.insert("exit_code".into(), Value::from(0));
        out
    }
}

impl Work for ShellWork {
    fn identity(&self, _step: &Step) -> Value {
        serde_json::json!(["shell", self.script, self.env, self.cwd])
    }

    fn run<'a>(
        &'a self,
        actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>> {
        Box::pin(shell::run(actx, &self.script, &self.env, &self.cwd))
    }
}
