//! The durable engine: executor, DAG scheduling, durable step semantics,
//! resume and divergence detection. Knows nothing above it (no TUI, no
//! headless printer): participants send `Op`s and receive `Notice`s.

mod agent;
pub(crate) use agent::extract_json;
mod attempt;
mod chains;
mod context;
mod decode;
mod executor;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod followup_tests;
mod followups;
mod fork;
mod frontier;
mod graph;
pub mod history;
mod holds;
mod human;
mod kinds;
mod leftovers;
mod llm_call;
mod mcp;
#[cfg(test)]
mod panic_tests;
pub mod pinning;
pub mod pty;
pub mod recorder;
mod retry;
mod semantic;
mod settle;
mod shell;
mod spread;
mod steer;
mod step;
pub mod swarm;
mod worktree;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::journal::{Journal, JournalError, RunMeta};
use crate::llm::{Profiles, SharedProvider};
use crate::protocol::{Event, InFlightDecision, Millis, Op, RunId, RunStatus, StepOutline};
use crate::spec::{ModeRegistry, Workflow};

pub use fork::{fork_prefix, fork_run};
pub use recorder::{NoticeSender, Recorder, from_entry, read_run};
pub use retry::{plan_retry, request_retry, retryable};
pub use settle::{Settle, Settled, settle_worktree};
pub use spread::OtherRuns;
pub use steer::FLOWMIND_PREFIX;
pub use steer::running_agent;
pub use swarm::{SwarmSpec, swarm_workflow};

/// How the run talks to its user.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// A user can answer prompts (TUI). Headless runs refuse shell commands
    /// that would need asking, unless `allow_shell`.
    pub interactive: bool,
    /// `--allow-shell`: agents may run any shell command.
    pub allow_shell: bool,
    /// `--yes` of a headless run: what a mode asks before
    /// (`permissions.ask_before`) is approved without a question.
    pub yes: bool,
    /// `run_shell` prefixes allowed everywhere (config).
    pub shell_allow: Vec<String>,
    /// The config's `followups:`, added to each workflow's own.
    pub followups: crate::spec::FollowupPolicy,
    /// What to do with a non-idempotent step that was in flight at a crash.
    pub in_flight: Option<InFlightDecision>,
    /// `pty` steps: the agent CLIs lev knows, and where their hooks reach it.
    pub terminals: TerminalOptions,
    /// The config's `mcp_servers:`; a workflow's own add to these and win
    /// by name.
    pub mcp_servers: BTreeMap<String, crate::config::mcp_servers::McpServer>,
    /// `lev worker --workspace DIR`: the workspace (`EngineDeps::workspace`)
    /// is this machine's copy of every run's, wherever the run was started;
    /// otherwise a run keeps the workspace path it started with.
    pub workspace_here: bool,
}

/// What `pty` steps need from the outside.
#[derive(Debug, Clone)]
pub struct TerminalOptions {
    /// Agent CLIs by name (built in, then the config's `pty.clis:`).
    pub clis: BTreeMap<String, crate::config::agent_cli::AgentCli>,
    /// The control socket `lev hook` reaches this process on (none: the
    /// programs' hooks cannot report).
    pub hook_socket: Option<std::path::PathBuf>,
}

impl Default for TerminalOptions {
    fn default() -> TerminalOptions {
        TerminalOptions {
            clis: crate::config::agent_cli::builtin(),
            hook_socket: None,
        }
    }
}

/// Everything the engine needs from the outside.
pub struct EngineDeps {
    pub journal: Journal,
    /// `Err` holds why no provider could be built; only agent steps need one.
    pub provider: Result<SharedProvider, String>,
    /// Model for agent steps that name none (config / `LEV_MODEL`).
    pub default_model: Option<String>,
    /// Providers modes name (`model.provider`) and the fallback behind
    /// them all; `Profiles::default()` when the config names none.
    pub profiles: Profiles,
    pub modes: ModeRegistry,
    /// Root for file tools and relative shell `cwd`s.
    pub workspace: PathBuf,
    pub options: RunOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("run {0} not found")]
    RunNotFound(RunId),
    #[error("{0}")]
    Inputs(String),
    #[error("the pinned definition of run {run} cannot be loaded: {message}")]
    Definition { run: RunId, message: String },
    /// A request the run's journal does not allow (retry of a step that did
    /// not fail, fork from a step that never started); the text says why.
    #[error("{0}")]
    Refused(String),
    /// Something below the engine failed (git, the memory bank, a task).
    #[error("{0}")]
    Failed(String),
}

/// What `drive` ended with.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub outputs: BTreeMap<String, Value>,
    pub error: Option<String>,
}

/// Checks `--input` values against the workflow's declared inputs and fills
/// in defaults. Strings are converted to the declared type.
pub fn resolve_inputs(
    workflow: &Workflow,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Value>, EngineError> {
    use crate::spec::InputType;
    let mut out = BTreeMap::new();
    for name in given.keys() {
        if !workflow.inputs.contains_key(name) {
            let known: Vec<&str> = workflow.inputs.keys().map(String::as_str).collect();
            return Err(EngineError::Inputs(format!(
                "unknown input `{name}`; this workflow takes: {}",
                if known.is_empty() {
                    "no inputs".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    for (name, spec) in &workflow.inputs {
        let value = match given.get(name) {
            Some(raw) => match spec.ty {
                InputType::String => Value::String(raw.clone()),
                InputType::Number => raw
                    .parse::<f64>()
                    .ok()
                    .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                    .ok_or_else(|| {
                        EngineError::Inputs(format!("input `{name}` must be a number, got `{raw}`"))
                    })?,
                InputType::Boolean => match raw.as_str() {
                    "true" | "yes" | "1" => Value::Bool(true),
                    "false" | "no" | "0" => Value::Bool(false),
                    _ => {
                        return Err(EngineError::Inputs(format!(
                            "input `{name}` must be true or false, got `{raw}`"
                        )));
                    }
                },
                InputType::Array | InputType::Object => serde_json::from_str(raw).map_err(|e| {
                    EngineError::Inputs(format!("input `{name}` must be JSON ({e}), got `{raw}`"))
                })?,
            },
            None => match &spec.default {
                Some(d) => d.clone(),
                None => {
                    return Err(EngineError::Inputs(format!(
                        "input `{name}` is required: pass --input {name}=..."
                    )));
                }
            },
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Creates a run pinned to `workflow` and records `RunStarted`. The run does
/// not execute until `drive` is called.
pub async fn start_run(
    journal: &Journal,
    workflow: &Workflow,
    inputs: BTreeMap<String, Value>,
    workspace: Option<&std::path::Path>,
) -> Result<RunId, EngineError> {
    start_pinned(
        journal,
        workflow,
        inputs,
        workspace,
        None,
        &Placement::default(),
    )
    .await
}

/// Where a new run's work is done and where its steps' worktree branches
/// go: `lev run`'s and `lev workflow`'s `--spread` and `--push-to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Its agent and shell steps become step runs that the `lev worker`s
    /// of the (PostgreSQL) journal share (`spread`).
    pub spread: bool,
    /// The git remote (a name or URL) each step's worktree branch is
    /// pushed to when an attempt ends.
    pub push_to: Option<String>,
}

/// `start_run`, placed as `placement` says.
pub async fn start_run_placed(
    journal: &Journal,
    workflow: &Workflow,
    inputs: BTreeMap<String, Value>,
    workspace: Option<&std::path::Path>,
    placement: &Placement,
) -> Result<RunId, EngineError> {
    start_pinned(journal, workflow, inputs, workspace, None, placement).await
}

/// Creates a swarm run (`lev workflow "objective"`): pinned to the planning
/// workflow built by `swarm_workflow` and to `spec`.
pub async fn start_swarm(
    journal: &Journal,
    workflow: &Workflow,
    spec: &SwarmSpec,
    workspace: Option<&std::path::Path>,
) -> Result<RunId, EngineError> {
    start_swarm_placed(journal, workflow, spec, workspace, &Placement::default()).await
}

/// `start_swarm`, placed as `placement` says (with `spread`, its tasks are
/// step runs).
pub async fn start_swarm_placed(
    journal: &Journal,
    workflow: &Workflow,
    spec: &SwarmSpec,
    workspace: Option<&std::path::Path>,
    placement: &Placement,
) -> Result<RunId, EngineError> {
    let inputs = BTreeMap::from([(
        "objective".to_string(),
        Value::String(spec.objective.clone()),
    )]);
    start_pinned(journal, workflow, inputs, workspace, Some(spec), placement).await
}

async fn start_pinned(
    journal: &Journal,
    workflow: &Workflow,
    inputs: BTreeMap<String, Value>,
    workspace: Option<&std::path::Path>,
    swarm: Option<&SwarmSpec>,
    placement: &Placement,
) -> Result<RunId, EngineError> {
    let spread = placement.spread;
    if spread && !journal.is_shared() {
        return Err(EngineError::Failed(
            "a spread run's steps are shared by `lev worker`s, which need a PostgreSQL journal (--journal postgres://…)".into(),
        ));
    }
    let run = RunId::new();
    let bundle = pinning::bundle_with(workflow, swarm);
    let definition_blob = journal.put_blob(bundle).await?;
    let now = Millis::now();
    let seed = rand::random::<u64>();
    let event = Event::RunStarted {
        workflow_id: workflow.id.clone(),
        name: workflow.name.clone(),
        source: workflow.source_path.display().to_string(),
        definition_hash: definition_blob.clone(),
        inputs,
        seed,
        workspace: workspace.map(|w| w.display().to_string()),
        steps: outline(workflow),
        flowmind: workflow.flowmind.clone(),
        spread,
        step_of: None,
        push_to: placement.push_to.clone(),
        at: now,
    };
    let meta = RunMeta {
        id: run.clone(),
        workflow_id: workflow.id.clone(),
        name: workflow.name.clone(),
        source: workflow.source_path.display().to_string(),
        definition_blob,
        status: RunStatus::Running,
        created_ms: now.0,
        updated_ms: now.0,
        last_seq: 0,
        parent: None,
        step_run: false,
    };
    // One commit: a crash never leaves a run without its `run_started`.
    let work = if spread {
        crate::journal::work::SPREAD
    } else {
        crate::journal::work::RUN
    };
    journal
        .create_run_as(meta, vec![recorder::to_entry(&event)?], work)
        .await?;
    Ok(run)
}

/// The workflow's steps as declared, for views (`RunStarted.steps`).
pub fn outline(workflow: &Workflow) -> Vec<StepOutline> {
    workflow
        .steps
        .iter()
        .map(|s| StepOutline {
            id: s.id.clone(),
            kind: s.kind.name().to_string(),
            needs: s.needs.clone(),
            mode: match &s.kind {
                crate::spec::StepKind::Agent { mode, .. } => Some(mode.clone()),
                _ => None,
            },
        })
        .collect()
}

/// Whether `drive` begins a run `start_run` just created, or resumes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Announce the recorded `RunStarted` to the subscribers.
    Fresh,
    /// Record `RunResumed`.
    Resume,
}

/// Executes (or resumes) a run until it finishes or pauses. Ops arrive on
/// `ops`; every durable event and live delta goes to `subscribers`.
pub async fn drive(
    deps: Arc<EngineDeps>,
    run: RunId,
    start: Start,
    ops: mpsc::UnboundedReceiver<Op>,
    subscribers: Vec<NoticeSender>,
) -> Result<RunOutcome, EngineError> {
    drive_with(deps, run, start, ops, subscribers, None).await
}

/// `drive`, with the engine handle's way to other runs (a spread run
/// stops its step runs through it).
pub async fn drive_with(
    deps: Arc<EngineDeps>,
    run: RunId,
    start: Start,
    ops: mpsc::UnboundedReceiver<Op>,
    subscribers: Vec<NoticeSender>,
    other_runs: Option<Arc<dyn OtherRuns>>,
) -> Result<RunOutcome, EngineError> {
    executor::drive(
        deps,
        run,
        ops,
        subscribers,
        start == Start::Fresh,
        other_runs,
    )
    .await
}

/// Whether a mode's `context.include` entry is one lev reads (a
/// `memory://` namespace it knows, an `mcp://` resource or prompt).
pub fn memory_include_is_read(include: &str) -> bool {
    agent::namespace_of(include, "run", std::path::Path::new(".")).is_some()
        || mcp::include_of(include).is_some()
}

/// A run no process is executing, opened to record into: a recorder after
/// its last event, or how it already ended.
enum Idle {
    Open(Recorder),
    Ended(RunStatus),
}

async fn open_idle(journal: &Journal, run: &RunId) -> Result<Idle, String> {
    let meta = journal
        .run(run)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no run {run}"))?;
    if meta.status.is_terminal() {
        return Ok(Idle::Ended(meta.status));
    }
    Ok(Idle::Open(Recorder::new(
        journal.clone(),
        run.clone(),
        meta.last_seq,
        Vec::new(),
    )))
}

/// Stops callbacks in a run no process is executing: the marker is
/// journaled, so the run keeps it when it is resumed.
pub async fn stop_callbacks_idle(journal: &Journal, run: &RunId) -> Result<String, String> {
    let rec = match open_idle(journal, run).await? {
        Idle::Open(rec) => rec,
        Idle::Ended(status) => return Err(format!("run {run} already {}", status.as_str())),
    };
    let events = recorder::read_run(journal, run)
        .await
        .map_err(|e| e.to_string())?;
    if events
        .iter()
        .any(|r| matches!(r.event, Event::CallbacksStopped { .. }))
    {
        return Ok(format!("callbacks were already stopped in run {run}"));
    }
    let event = Event::CallbacksStopped {
        by: "user".into(),
        reason: followups::STOPPED_BY_USER.into(),
        at: Millis::now(),
    };
    rec.record(event).await.map_err(|e| e.to_string())?;
    Ok(format!(
        "callbacks stopped in run {run}: `lev resume {run}` continues it without new follow-ups or system questions"
    ))
}

/// Cancels a run no process is executing: records the request and the end.
pub async fn cancel_idle_run(journal: &Journal, run: &RunId) -> Result<String, String> {
    let rec = match open_idle(journal, run).await? {
        Idle::Open(rec) => rec,
        Idle::Ended(status) => return Ok(format!("run {run} already {}", status.as_str())),
    };
    rec.record(Event::RunCancelRequested { at: Millis::now() })
        .await
        .map_err(|e| e.to_string())?;
    let event = Event::RunFinished {
        status: RunStatus::Cancelled,
        outputs: BTreeMap::new(),
        error: Some("cancelled by `lev cancel`".into()),
        usage: crate::protocol::Usage::default(),
        at: Millis::now(),
    };
    rec.record_with_status(event, Some(RunStatus::Cancelled))
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("run {run} cancelled"))
}
