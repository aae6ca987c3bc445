//! `type: pty`: a program in a pseudo-terminal (`workflow::pty` runs it).

use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{StepType, Work, env_and_cwd, field, not_mine};
use crate::config::agent_cli;
use crate::protocol::StepKey;
use crate::spec::expr::EvalContext;
use crate::spec::{Step, StepKind};
use crate::workflow::attempt::{AttemptCtx, StepError};
use crate::workflow::context::RunCtx;
use crate::workflow::pty::{self, PtyPlan};

pub struct Pty;

struct PtyWork {
    plan: PtyPlan,
    /// The CLI the step names (checked against the run's table when it runs).
    cli: Option<String>,
    /// The mode whose agent the CLI is, when it is one.
    mode: Option<String>,
}

impl StepType for Pty {
    fn render(
        &self,
        step: &Step,
        root: &Path,
        eval: &EvalContext,
    ) -> Result<Box<dyn Work>, String> {
        let StepKind::Pty {
            command,
            args,
            prompt,
            cwd,
            env,
            size,
            cli,
            done_when,
            input_when,
            mode,
        } = &step.kind
        else {
            return Err(not_mine("pty"));
        };
        let (vars, cwd) = env_and_cwd(env, cwd.as_ref(), root, eval)?;
        let prompt = match prompt {
            Some(t) => Some(field(t, "prompt", eval)?),
            None => None,
        };
        Ok(Box::new(PtyWork {
            plan: PtyPlan {
                program: command.clone(),
                args: args.clone(),
                cwd,
                env: vars,
                size: *size,
                prompt,
                cli: None,
                done_when: done_when.clone(),
                input_when: input_when.clone(),
            },
            cli: cli.clone(),
            mode: mode.clone(),
        }))
    }

    fn side_effects(&self) -> bool {
        true
    }

    fn start_needs_commit(&self) -> bool {
        // Its launch is journaled durably before the program starts, and
        // carries the start with it (`workflow::pty`).
        false
    }

    fn takes_slot(&self) -> bool {
        true
    }

    fn resumes_itself(&self, step: &Step, ctx: &RunCtx, key: &StepKey) -> bool {
        let StepKind::Pty { command, cli, .. } = &step.kind else {
            return false;
        };
        let table = &ctx.deps.options.terminals.clis;
        agent_cli::which(table, cli.as_deref(), command)
            .ok()
            .flatten()
            .is_some_and(|cli| pty::resumable_session(ctx, key, cli).is_some())
    }

    fn marked_done_outputs(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("text".into(), Value::String(String::new()));
        out.insert("exit_code".into(), Value::from(0));
        out.insert("session".into(), Value::Null);
        out
    }
}

impl Work for PtyWork {
    fn mode(&self) -> Option<&str> {
        self.mode.as_deref()
    }

    fn identity(&self, _step: &Step) -> Value {
        let p = &self.plan;
        serde_json::json!([
            "pty",
            p.program,
            p.args,
            p.cwd,
            p.env,
            [p.size.rows, p.size.cols],
            p.prompt
        ])
    }

    fn run<'a>(
        &'a self,
        actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>> {
        Box::pin(async move {
            let table = &actx.ctx.deps.options.terminals.clis;
            let cli = agent_cli::which(table, self.cli.as_deref(), &self.plan.program)
                .map_err(StepError::Fatal)?
                .cloned();
            let plan = PtyPlan {
                cli,
                ..self.plan.clone()
            };
            pty::run(actx, &plan).await
        })
    }
}
