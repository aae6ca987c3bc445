//! The run as the workbench holds it (`RunView`) and the values it is made
//! of. The fold that builds it is in `fold.rs`; `outline.rs`,
//! `steering.rs` and `swarm.rs` extend it for their events. Everything
//! they share is defined here, so none of them imports another.

use std::collections::{BTreeMap, HashMap};

use crate::isolation::StepWorktree;
use crate::protocol::{
    AnswerSource, Attempt, ChoiceRecord, Millis, Recorded, RunId, RunStatus, StepKey, StepStatus,
    Usage,
};
use crate::swarm::plan::Plan;

use super::pane::Pane;

/// One attempt of a step on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub attempt: Attempt,
    pub start: Millis,
    pub end: Option<Millis>,
    pub status: StepStatus,
}

/// A step of the workflow as the overview lists it: the declared steps in
/// order (from `RunStarted`), then steps first seen in events (child
/// workflow steps, follow-ups, runs recorded before the outline existed).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub key: StepKey,
    pub status: StepStatus,
    pub segments: Vec<Segment>,
    /// Position of the event that first named this step (replay jumps there).
    pub first_index: usize,
    /// Declared `needs` (empty when unknown).
    pub needs: Vec<String>,
}

/// What a prompt asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptKind {
    Question {
        id: String,
        header: Option<String>,
        /// Options with the recommended one first.
        options: Vec<ChoiceRecord>,
        default: Option<String>,
    },
    Approval,
    /// FlowMind handed a stuck agent to the user: message, pause or cancel
    /// it, or dismiss the whisper.
    Escalation,
}

/// How a prompt was answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    pub text: String,
    pub source: AnswerSource,
    pub at: Millis,
}

/// A question or approval for the user (sidebar).
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub step: Option<StepKey>,
    pub text: String,
    pub asked_at: Millis,
    /// When the prompt's timeout policy applies, if it has one.
    pub deadline: Option<Millis>,
    pub answered: Option<Answered>,
    /// Set when the question reviews a swarm's plan.
    pub review: Option<Box<PlanReview>>,
    /// FlowMind's conductor's answer to an agent's question: what it
    /// proposes, and when it answers unless you do (none: only offered).
    pub proposal: Option<(String, Option<Millis>)>,
}

impl Prompt {
    /// What the user reads as the prompt's name: a question's header, else
    /// which step asks (never an internal id like `api#1.call_1`); an
    /// approval names its step (`approve coder`, or just `approve-deploy`
    /// when the step's name says it already).
    pub fn title(&self) -> String {
        let step = self.step.as_ref().map(|s| s.as_str());
        match (&self.kind, step) {
            (
                PromptKind::Question {
                    header: Some(h), ..
                },
                _,
            ) => h.clone(),
            (PromptKind::Question { .. }, Some(step)) => format!("{step} asks"),
            (PromptKind::Question { id, .. }, None) => id.clone(),
            (PromptKind::Approval, Some(step)) if step.contains("approv") => step.to_string(),
            (PromptKind::Approval, Some(step)) => format!("approve {step}"),
            (PromptKind::Approval, None) => "approval".into(),
            (PromptKind::Escalation, Some(step)) => format!("FlowMind: {step} looks stuck"),
            (PromptKind::Escalation, None) => "FlowMind".into(),
        }
    }

    /// The prompt's key in ops: the question id, or the approval's step.
    pub fn key(&self) -> String {
        match &self.kind {
            PromptKind::Question { id, .. } => id.clone(),
            PromptKind::Approval | PromptKind::Escalation => {
                self.step.as_ref().map(|s| s.0.clone()).unwrap_or_default()
            }
        }
    }
    pub fn is_pending(&self) -> bool {
        self.answered.is_none()
    }
}

/// What folding one notice asks the UI to do.
#[derive(Debug, Default, PartialEq)]
pub struct Folded {
    /// A new prompt waits for the user: announce it once.
    pub attention: Option<String>,
}

/// The fold of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub run: Option<RunId>,
    pub name: String,
    pub source: String,
    /// The workflow's id (`swarm` for a swarm): the suggestions about it
    /// show in the sidebar.
    pub workflow_id: String,
    pub status: Option<RunStatus>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// Time of the newest event folded (the clock of replay).
    pub last_at: Millis,
    /// Usage reported by `RunFinished` (otherwise the panes' sum is shown).
    pub final_usage: Option<Usage>,
    /// What `when_semantic` judges cost (not any pane's replies).
    pub judge_usage: Usage,
    /// FlowMind's own tokens (its progress ledgers).
    pub flowmind_usage: Usage,
    /// Each agent step's latest progress ledger, in a few words (the
    /// overview's FlowMind column; the pane keeps them all).
    pub ledgers: BTreeMap<StepKey, String>,
    /// Why FlowMind's model stopped for this run (its rules go on).
    pub flowmind_fallback: Option<String>,
    /// The FlowMind mode the run's workflow sets, if it sets one.
    pub flowmind_mode: Option<String>,
    pub panes: Vec<Pane>,
    /// Rows are only ever added (through `RunView::add_step_row`).
    pub steps: Vec<StepRow>,
    /// Where each step's row is in `steps`: a step is found without a walk
    /// over every step (a 10,000-step run folds in linear time).
    pub(super) step_rows: HashMap<StepKey, usize>,
    pub prompts: Vec<Prompt>,
    /// Run-wide messages (pauses, limits, errors), newest last.
    pub notes: Vec<String>,
    /// The user paused the whole run (live; it still runs its shell steps).
    pub paused: bool,
    /// Messages delivered to agents, oldest first.
    pub messages: Vec<SentMessage>,
    /// The run and step this run was forked from (`RunForked`).
    pub forked_from: Option<(RunId, StepKey)>,
    /// Hints lev gave agents at their start, oldest first.
    pub hints: Vec<GivenHint>,
    /// What lev did on its own initiative, oldest first: questions it put
    /// to agents (with their replies), `when_semantic` verdicts, follow-ups
    /// spawned and refused, limits reached, callbacks stopped.
    pub initiative: Vec<Initiative>,
    /// Events folded so far.
    pub events: usize,
    /// Provider endpoints whose circuit breaker is not closed, and their
    /// state (`open`, `half_open`), for the status bar.
    pub provider_breakers: BTreeMap<String, String>,
    /// MCP servers that went down and have not started again, with why.
    pub mcp_down: BTreeMap<String, String>,
    /// Steps whose LLM request failed and is being sent again, with when
    /// the next try goes out and why, for the status bar.
    pub llm_retries: BTreeMap<StepKey, LlmRetry>,
    /// A swarm run (`lev workflow`): tasks show in their agent slots' panes.
    pub swarm: bool,
    /// Each swarm task's slot (the latest assignment).
    pub assignments: BTreeMap<StepKey, TaskSlot>,
    /// Slot circuit breakers that are not closed, by slot.
    pub breakers: BTreeMap<u32, BreakerView>,
    /// The steps' git worktrees, folded from the `worktree` events.
    pub worktrees: Vec<StepWorktree>,
    /// The `worktree` events so far (few; `worktrees` is their fold).
    pub worktree_events: Vec<Recorded>,
    /// Lines of scrollback each new pane keeps (`tui.scrollback_lines`).
    pub scrollback: usize,
    /// Steps of a spread run executed as step runs, with the step run
    /// (its latest): their detail, and their worktrees, are in that run;
    /// their outputs are shown when they succeed.
    pub delegated: std::collections::BTreeMap<StepKey, crate::protocol::RunId>,
}

/// A step waiting to send its LLM request again (`Event::LlmRetrying`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRetry {
    /// The next try goes out then.
    pub at: Millis,
    pub error: String,
}

impl Default for RunView {
    fn default() -> Self {
        RunView {
            run: None,
            name: String::new(),
            source: String::new(),
            workflow_id: String::new(),
            status: None,
            started_at: None,
            finished_at: None,
            last_at: Millis(0),
            final_usage: None,
            judge_usage: Usage::default(),
            flowmind_usage: Usage::default(),
            ledgers: BTreeMap::new(),
            flowmind_fallback: None,
            flowmind_mode: None,
            panes: Vec::new(),
            steps: Vec::new(),
            step_rows: HashMap::new(),
            prompts: Vec::new(),
            notes: Vec::new(),
            delegated: Default::default(),
            paused: false,
            messages: Vec::new(),
            forked_from: None,
            hints: Vec::new(),
            initiative: Vec::new(),
            events: 0,
            swarm: false,
            assignments: BTreeMap::new(),
            breakers: BTreeMap::new(),
            provider_breakers: BTreeMap::new(),
            mcp_down: BTreeMap::new(),
            llm_retries: BTreeMap::new(),
            worktrees: Vec::new(),
            worktree_events: Vec::new(),
            scrollback: super::MAX_LINES,
        }
    }
}

/// A hint lev gave an agent when its step started (the step's
/// `whisper.to_llm` hints and its mode's `whisper.hints`).
#[derive(Debug, Clone, PartialEq)]
pub struct GivenHint {
    pub step: StepKey,
    pub text: String,
    pub at: Millis,
}

/// One thing lev did on its own initiative (see `RunView::initiative`).
#[derive(Debug, Clone, PartialEq)]
pub struct Initiative {
    pub at: Millis,
    pub text: String,
    /// For a question lev put to an agent: that agent, until its reply.
    pub awaiting: Option<StepKey>,
    /// The agent's reply to that question, on one line.
    pub reply: Option<String>,
    /// For a `when_semantic` verdict: the step or follow-up it was about
    /// (a follow-up's verdict gives way to the spawn or refusal it led to,
    /// which says as much).
    pub about: Option<StepKey>,
}

/// A message the user sent to an agent, as delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub step: StepKey,
    pub turn: u32,
    pub text: String,
    pub at: Millis,
}

/// Where a task ran (for the overview and the timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSlot {
    pub slot: u32,
    pub stolen_from: Option<u32>,
}

/// A slot's circuit breaker while it is not closed.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerView {
    pub state: BreakerShown,
    pub reason: String,
}

/// The states worth showing (a closed breaker is not listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerShown {
    /// No work goes to the slot before `until` (when known).
    Open { until: Option<Millis> },
    /// The cooldown is over; the next task is a probe.
    HalfOpen,
}

/// The plan under review, as the question shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanReview {
    /// The plan as editable YAML (the review textarea starts with it).
    pub edit_text: String,
    /// The plan read back from that text; `None` when it cannot be read
    /// (the sidebar then shows the text as it is).
    pub plan: Option<Plan>,
}
