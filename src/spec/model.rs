//! The typed workflow model the engine consumes. Built by `spec::load` from a
//! spanned YAML tree after validation; holds no YAML types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::expr::Template;

/// A validated workflow definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub inputs: BTreeMap<String, InputSpec>,
    pub limits: Limits,
    pub whisper: WhisperSpec,
    /// Steps in declaration order (decoded to their exact length: a
    /// 10,000-step run holds them for its whole life).
    #[serde(deserialize_with = "exact_vec")]
    pub steps: Vec<Step>,
    /// Workflow outputs, rendered when the run finishes.
    pub outputs: BTreeMap<String, Template>,
    /// What agents may do about follow-ups (`followups:` at the top).
    #[serde(default)]
    pub followups: FollowupPolicy,
    /// FlowMind's settings for this workflow's runs (`flowmind:`).
    #[serde(default)]
    pub flowmind: Option<Box<crate::protocol::FlowmindOverride>>,
    /// MCP servers of this workflow's runs (`mcp_servers:`), over the
    /// config's by name.
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, crate::config::mcp_servers::McpServer>,
    /// Where the definition came from (display and relative `uses:` paths).
    pub source_path: PathBuf,
    /// The exact text the run is pinned to. Not part of the serialized
    /// model: a pinned bundle keeps the texts beside it and puts them back.
    #[serde(skip)]
    pub source_text: String,
}

/// A sequence decoded without the spare capacity growth leaves (for what
/// a long run holds for its whole life).
pub(crate) fn exact_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut v = Vec::<T>::deserialize(d)?;
    v.shrink_to_fit();
    Ok(v)
}

impl Workflow {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// True when any step, here or in a child workflow, satisfies `f`.
    pub fn any_step(&self, f: &dyn Fn(&Step) -> bool) -> bool {
        self.steps.iter().any(|s| {
            f(s) || matches!(&s.kind, StepKind::Workflow { child, .. } if child.any_step(f))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputType {
    String,
    Number,
    Boolean,
    Array,
    Object,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSpec {
    pub ty: InputType,
    pub default: Option<Value>,
    pub description: Option<String>,
    /// True when no default is given: the run needs `--input name=...`.
    pub required: bool,
}

/// Run-wide budgets and guards (docs/workflows.md `limits:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub max_callback_depth: u32,
    pub chain_timebox: Duration,
    pub max_followups: u32,
    pub max_questions: u32,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub circuit_breaker: BreakerLimits,
    /// Steps running at once.
    pub max_parallel: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_callback_depth: 10,
            chain_timebox: Duration::from_secs(300),
            max_followups: 8,
            max_questions: 6,
            max_tokens: None,
            max_cost_usd: None,
            circuit_breaker: BreakerLimits::default(),
            max_parallel: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerLimits {
    pub consecutive_failures: u32,
    pub cooldown: Duration,
}

impl Default for BreakerLimits {
    fn default() -> Self {
        BreakerLimits {
            consecutive_failures: 3,
            cooldown: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToUser {
    Ask,
    Defaults,
    Never,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhisperSpec {
    pub to_user: ToUser,
    pub answer_timeout: Duration,
    /// Asked up front, before any step runs.
    pub questions: Vec<QuestionSpec>,
}

impl Default for WhisperSpec {
    fn default() -> Self {
        WhisperSpec {
            to_user: ToUser::Ask,
            answer_timeout: Duration::from_secs(600),
            questions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuestionSpec {
    pub id: String,
    pub header: Option<String>,
    pub ask: String,
    pub options: Vec<Choice>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backoff {
    Fixed,
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetryOn {
    Error,
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 = no retry).
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub on: Vec<RetryOn>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::Exponential,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            on: vec![RetryOn::Error, RetryOn::Timeout],
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `next` (2 = first retry).
    pub fn delay_before(&self, next: u32) -> Duration {
        let n = next.saturating_sub(2);
        let d = match self.backoff {
            Backoff::Fixed => self.initial_delay,
            Backoff::Exponential => self
                .initial_delay
                .saturating_mul(2u32.saturating_pow(n.min(20))),
        };
        d.min(self.max_delay)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnTimeout {
    Fail,
    Approve,
    Skip,
}

/// Where a step output comes from: a dotted path into the step's raw result
/// (`json.plan`, `text`, `stdout`), with a default when absent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputSpec {
    pub from: String,
    pub default: Option<Value>,
}

/// The workflow's (or the config's) `followups:`: whether agents are
/// offered `propose_followup`, and which proposals are spawned without the
/// user's approval: all (`auto: true`) or those of the modes listed
/// (`auto: [tdd, docs-writer]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowupPolicy {
    pub propose: bool,
    pub auto: bool,
    /// Added after runs were pinned with the two fields above.
    #[serde(default)]
    pub auto_modes: Vec<String>,
}

impl FollowupPolicy {
    /// A proposed follow-up in `mode` needs no approval.
    pub fn pre_authorises(&self, mode: &str) -> bool {
        self.auto || self.auto_modes.iter().any(|m| m == mode)
    }

    /// What the workflow and the user's config allow together: either may
    /// offer the tool or pre-authorise a mode.
    pub fn with(&self, config: &FollowupPolicy) -> FollowupPolicy {
        let mut auto_modes = self.auto_modes.clone();
        for m in &config.auto_modes {
            if !auto_modes.contains(m) {
                auto_modes.push(m.clone());
            }
        }
        FollowupPolicy {
            propose: self.propose || config.propose,
            auto: self.auto || config.auto,
            auto_modes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Followups {
    pub for_each: Template,
    pub when_semantic: Option<String>,
    pub spawn_mode: String,
    pub spawn_prompt: Template,
    pub max: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workspace {
    /// The step works in its own git worktree and branch (`isolation`).
    pub worktree: bool,
    /// Branch (or commit) the worktree starts from; default: the one
    /// checked out in the run's workspace.
    #[serde(default)]
    pub base: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub needs: Vec<String>,
    pub kind: StepKind,
    /// `if:`; `None` means `success()`.
    pub condition: Option<Template>,
    pub retry: RetryPolicy,
    /// Per attempt.
    pub timeout: Option<Duration>,
    pub continue_on_error: bool,
    /// Resume may re-run it without asking when it was in flight.
    pub idempotent: bool,
    pub outputs: BTreeMap<String, OutputSpec>,
    /// Boxed: most steps have none, and a 10,000-step definition is held
    /// in memory for the whole run.
    pub followups: Option<Box<Followups>>,
    /// `when_semantic:` a statement a model judges before the step runs
    /// (the step is skipped when it does not hold).
    #[serde(default)]
    pub when_semantic: Option<String>,
    /// `whisper.to_llm` hints sent to the agent.
    pub hints: Vec<String>,
    pub workspace: Option<Workspace>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StepKind {
    Agent {
        mode: String,
        prompt: Template,
        output_schema: Option<Value>,
        max_turns: Option<u32>,
        /// Extra `run_shell` command prefixes allowed for this step.
        allow_shell: Vec<String>,
        model: Option<String>,
        /// `ask_agent:` questions the system puts to the agent after its
        /// answer, in its own conversation (outputs `ask_agent`).
        #[serde(default)]
        ask_agent: Vec<Template>,
    },
    Shell {
        run: Template,
        env: BTreeMap<String, Template>,
        cwd: Option<Template>,
    },
    Approval {
        message: Template,
        show: Vec<String>,
        on_timeout: OnTimeout,
    },
    Question {
        ask: Template,
        header: Option<String>,
        options: Vec<Choice>,
        default: Option<String>,
    },
    Pty {
        command: String,
        args: Vec<String>,
        /// Typed into the program once it is ready (it drew, then went quiet).
        prompt: Option<Template>,
        #[serde(default)]
        cwd: Option<Template>,
        #[serde(default)]
        env: BTreeMap<String, Template>,
        /// The terminal's size (`size: 120x40`, columns by rows).
        #[serde(default)]
        size: TerminalSize,
        /// Which agent CLI it is (its session ids, resume, hooks): by
        /// default the command's file name, when the CLI table knows it.
        #[serde(default)]
        cli: Option<String>,
        #[serde(default)]
        done_when: DoneWhen,
        /// The screen asks for input: lev asks the user, types the answer.
        #[serde(default)]
        input_when: Option<ScreenRule>,
        /// The mode whose agent this CLI is (an agent step, or a swarm
        /// task, whose mode's `agent:` names a CLI).
        #[serde(default)]
        mode: Option<String>,
    },
    /// A child workflow, loaded from `uses` relative to the parent file.
    Workflow {
        uses: String,
        with: BTreeMap<String, Template>,
        child: Box<Workflow>,
    },
}

/// A `pty` step's terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

impl Default for TerminalSize {
    fn default() -> TerminalSize {
        TerminalSize {
            rows: 40,
            cols: 120,
        }
    }
}

/// When a `pty` step is done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoneWhen {
    /// When the program exits (its exit code decides).
    #[default]
    Exit,
    /// When its agent CLI's hook says its turn ended (`lev hook stop`).
    Stop,
    /// When the screen matches, and has stayed unchanged for a while.
    Screen(ScreenRule),
}

/// A screen state: a pattern the screen's text matches (anywhere; none:
/// any screen) after it has not changed for `idle`. The quiet time is the
/// hysteresis: a program still drawing is not yet in that state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenRule {
    pub pattern: Option<String>,
    pub idle_ms: u64,
}

impl Step {
    /// A step made by lev rather than written (a swarm task, a follow-up,
    /// an ad-hoc program): no condition, retries, timeout, outputs or
    /// follow-ups of its own; set what differs on the result.
    pub fn made(id: String, needs: Vec<String>, kind: StepKind) -> Step {
        Step {
            id,
            needs,
            kind,
            condition: None,
            retry: RetryPolicy::default(),
            timeout: None,
            continue_on_error: false,
            idempotent: false,
            outputs: BTreeMap::new(),
            followups: None,
            when_semantic: None,
            hints: Vec::new(),
            workspace: None,
        }
    }

    /// Every template of the step evaluated against the run's context.
    pub fn templates(&self) -> Vec<&Template> {
        let mut out: Vec<&Template> = self.condition.iter().collect();
        match &self.kind {
            StepKind::Agent {
                prompt, ask_agent, ..
            } => {
                out.push(prompt);
                out.extend(ask_agent);
            }
            StepKind::Shell { run, env, cwd } => {
                out.push(run);
                out.extend(env.values());
                out.extend(cwd);
            }
            StepKind::Approval { message, .. } => out.push(message),
            StepKind::Question { ask, .. } => out.push(ask),
            StepKind::Pty {
                prompt, cwd, env, ..
            } => {
                out.extend(prompt);
                out.extend(cwd);
                out.extend(env.values());
            }
            StepKind::Workflow { with, .. } => out.extend(with.values()),
        }
        if let Some(f) = &self.followups {
            out.push(&f.for_each);
            out.push(&f.spawn_prompt);
        }
        out
    }

    /// The ids of the steps whose results the step's templates read, or
    /// `None` when any step may be read (a step chosen at run time).
    pub fn steps_read(&self) -> Option<Vec<String>> {
        let mut ids = Vec::new();
        for t in self.templates() {
            ids.extend(t.steps_read()?);
        }
        // The judge of `when_semantic` reads what the needed steps gave.
        if self.when_semantic.is_some() {
            ids.extend(self.needs.iter().cloned());
        }
        Some(ids)
    }
}

impl StepKind {
    /// An agent step whose mode's agent is a CLI, as the `pty` step that
    /// runs that CLI with the step's prompt; any other kind as it is. What
    /// only lev's own agent loop does (a model, an output schema, turns,
    /// shell prefixes, questions after the answer) is refused: the key, and why.
    pub fn in_terminal(
        self,
        modes: &super::ModeRegistry,
    ) -> Result<StepKind, (&'static str, String)> {
        let cli = match &self {
            StepKind::Agent { mode, .. } => modes.get(mode).and_then(|m| m.cli.clone()),
            _ => None,
        };
        let Some(cli) = cli else {
            return Ok(self);
        };
        let StepKind::Agent {
            mode,
            prompt,
            output_schema,
            max_turns,
            allow_shell,
            model,
            ask_agent,
        } = self
        else {
            return Ok(self);
        };
        let unused = [
            ("model", model.is_some()),
            ("output_schema", output_schema.is_some()),
            ("max_turns", max_turns.is_some()),
            ("allow_shell", !allow_shell.is_empty()),
            ("ask_agent", !ask_agent.is_empty()),
        ];
        if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
            let why = format!(
                "`{key}` does not apply here: mode `{mode}` runs the agent CLI `{}` in a terminal",
                cli.cli
            );
            return Err((key, why));
        }
        Ok(StepKind::Pty {
            command: cli.command,
            args: cli.args,
            prompt: Some(prompt),
            cwd: None,
            env: BTreeMap::new(),
            size: cli.size,
            cli: Some(cli.cli),
            done_when: cli.done_when,
            input_when: None,
            mode: Some(mode),
        })
    }

    /// The mode of an agent step, or of an agent CLI's `pty` step.
    pub fn mode(&self) -> Option<&str> {
        match self {
            StepKind::Agent { mode, .. } => Some(mode),
            StepKind::Pty { mode, .. } => mode.as_deref(),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Agent { .. } => "agent",
            StepKind::Shell { .. } => "shell",
            StepKind::Approval { .. } => "approval",
            StepKind::Question { .. } => "question",
            StepKind::Pty { .. } => "pty",
            StepKind::Workflow { .. } => "workflow",
        }
    }
}
