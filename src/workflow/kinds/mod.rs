//! Step types as a registry. A step type is one file here implementing
//! `StepType`: how its templates render into the `Work` an attempt does,
//! what identifies that work (its fingerprint, compared on resume), whether
//! it may run again after a crash without asking, whether it takes one of
//! the run's slots and whether it keeps its own timeout policy. `of` is the
//! one place that maps a parsed `spec::StepKind` to its type; the durable
//! life of a step (`workflow/step.rs`) knows no kind by name.

mod agent;
mod approval;
mod child;
mod pty;
mod question;
mod shell;

use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::attempt::{AttemptCtx, StepError};
use crate::spec::expr::{EvalContext, Template};
use crate::spec::{Step, StepKind};

/// What one attempt of a step does, its templates evaluated.
pub trait Work: Send + Sync {
    /// What identifies the attempt, hashed into the step's fingerprint and
    /// compared on resume. A kind's value must never change: recorded runs
    /// would diverge.
    fn identity(&self, step: &Step) -> Value;
    /// The mode an agent works in (recorded in `step_started`).
    fn mode(&self) -> Option<&str> {
        None
    }
    /// Does the work; the raw result the step's outputs are taken from.
    fn run<'a>(
        &'a self,
        actx: &'a AttemptCtx,
    ) -> BoxFuture<'a, Result<Map<String, Value>, StepError>>;
}

/// One kind of step.
pub trait StepType: Sync {
    /// Evaluates the step's templates. `root` is where the step works (its
    /// worktree, else the run's workspace).
    fn render(&self, step: &Step, root: &Path, eval: &EvalContext)
    -> Result<Box<dyn Work>, String>;
    /// Its side effects cannot be seen from the journal (a shell command, a
    /// terminal program): an attempt a crash interrupted is re-run only when
    /// the step says `idempotent: true`, otherwise the run asks.
    fn side_effects(&self) -> bool {
        false
    }
    /// Its start (`step_started`) must be durable before its attempt
    /// begins: true for a kind with side effects, unless each of its effects
    /// waits for a durable commit of its own (a shell step's command starts
    /// only once its process group is journaled, `ShellCommand::started`).
    /// Otherwise the start is appended unsynced and made durable by the
    /// attempt's next durable fact; a crash before that loses only the start.
    fn start_needs_commit(&self) -> bool {
        self.side_effects()
    }
    /// Takes one of the run's slots (`limits.max_parallel`) while it works.
    fn takes_slot(&self) -> bool {
        false
    }
    /// Keeps its own timeout policy (`on_timeout` of a human gate, a child
    /// workflow's own steps) instead of the step's `timeout:`.
    fn own_timeout(&self) -> bool {
        false
    }
    /// An attempt a crash interrupted goes on by itself, without asking,
    /// though the step has side effects: a `pty` agent CLI whose session
    /// lev knows and can resume by id.
    fn resumes_itself(
        &self,
        _step: &Step,
        _ctx: &super::context::RunCtx,
        _key: &crate::protocol::StepKey,
    ) -> bool {
        false
    }
    /// The outputs of an attempt a user marked done after a crash
    /// (`--in-flight done`), beside `marked_done: true`.
    fn marked_done_outputs(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// The type of a parsed step kind.
pub fn of(kind: &StepKind) -> &'static dyn StepType {
    match kind {
        StepKind::Agent { .. } => &agent::Agent,
        StepKind::Shell { .. } => &shell::Shell,
        StepKind::Approval { .. } => &approval::Approval,
        StepKind::Question { .. } => &question::Question,
        StepKind::Workflow { .. } => &child::Child,
        StepKind::Pty { .. } => &pty::Pty,
    }
}

/// Renders one template field, naming it when it fails.
fn field(t: &Template, name: &str, eval: &EvalContext) -> Result<String, String> {
    t.render(eval)
        .map_err(|e| format!("cannot render `{name}`: {e}"))
}

/// A command's `env:` rendered, and its `cwd:` (relative to `root`, the
/// step's worktree or the run's workspace; `root` itself by default).
fn env_and_cwd(
    env: &std::collections::BTreeMap<String, Template>,
    cwd: Option<&Template>,
    root: &Path,
    eval: &EvalContext,
) -> Result<
    (
        std::collections::BTreeMap<String, String>,
        std::path::PathBuf,
    ),
    String,
> {
    let mut vars = std::collections::BTreeMap::new();
    for (k, t) in env {
        vars.insert(k.clone(), field(t, &format!("env.{k}"), eval)?);
    }
    let cwd = match cwd {
        Some(t) => {
            let c = std::path::PathBuf::from(field(t, "cwd", eval)?);
            if c.is_absolute() { c } else { root.join(c) }
        }
        None => root.to_path_buf(),
    };
    Ok((vars, cwd))
}

/// The error for a step handed to a type that is not its own (a bug).
fn not_mine(kind: &str) -> String {
    format!("internal error: not a {kind} step")
}
