//! The spine: `Op` (what a participant asks for) and `Event` (what happened,
//! after it is durable). Pure data, no I/O. Everything the engine learns from
//! the outside world enters as an `Event` written to the journal first.
//!
//! Must not depend on any other lev module.

pub mod describe;
mod escalation;

pub use escalation::{EscalationEnd, FLOWMIND_PREFIX};

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A run's identity: a ULID string, sortable by creation time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// A fresh id, ordered after every id made before it.
    pub fn new() -> Self {
        RunId(ulid::Ulid::generate().to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Position of an entry in its run's journal, starting at 1, gap-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A step's path in the run: the step id, or `parent/child` for steps of a
/// child workflow and spawned follow-ups. Keys the journal, not positions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepKey(pub String);

impl StepKey {
    pub fn new(s: impl Into<String>) -> Self {
        StepKey(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Attempt number of a step, starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attempt(pub u32);

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Milliseconds since the Unix epoch, as read once and journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// Reads the wall clock. Only the engine calls this, and journals what it read.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Millis(ms)
    }
}

impl Millis {
    /// `YYYY-MM-DD HH:MM:SS` in UTC, for display (no clock read).
    pub fn utc(self) -> String {
        let secs = self.0 / 1000;
        let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let mo = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(mo <= 2);
        let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}")
    }
}

/// Lifecycle of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Stopped by a divergence or an in-flight non-idempotent step; needs a decision.
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Lifecycle of one step (docs/workflows.md "Step status").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Blocked,
    Running,
    Waiting,
    Retrying,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl StepStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::Skipped
                | StepStatus::Cancelled
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Blocked => "blocked",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Retrying => "retrying",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

/// Token usage of one LLM reply or a sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cost in US dollars from the configured price table (0 when unknown).
    pub cost_usd: f64,
    /// How many of the replies counted here came without token counts from
    /// their provider. Their tokens are estimated from the text (about four
    /// characters a token), so budgets and cost never take them as free,
    /// and views mark the totals as estimates.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub estimated: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Usage {
    /// One reply whose provider reported no token counts (yet to be
    /// estimated).
    pub fn unreported() -> Usage {
        Usage {
            estimated: 1,
            ..Usage::default()
        }
    }
    pub fn total_tokens(&self) -> u64 {
        // Saturating: a journal (damaged, or from a hostile server) may hold any count.
        self.input_tokens.saturating_add(self.output_tokens)
    }
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_usd += other.cost_usd;
        self.estimated = self.estimated.saturating_add(other.estimated);
    }
    /// `~` when some of the counts are estimates, for views.
    pub fn estimate_mark(&self) -> &'static str {
        if self.estimated > 0 { "~" } else { "" }
    }
}

/// One tool of an MCP server, as journaled with the attempt it was
/// offered to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpToolRecord {
    /// The server's own name for it.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Its arguments' JSON Schema.
    pub input_schema: serde_json::Value,
    /// The server says it changes nothing (`readOnlyHint`).
    #[serde(default)]
    pub read_only: bool,
    /// The server says calling it twice does what calling it once does
    /// (`idempotentHint`): after a crash during a call it is called again.
    #[serde(default)]
    pub idempotent: bool,
}

/// A tool call an LLM asked for, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub id: String,
    pub name: String,
    /// The arguments as the model sent them (a JSON document, possibly invalid).
    pub arguments: String,
}

/// One choice offered by a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceRecord {
    pub value: String,
    pub label: String,
}

/// Who supplied an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    User,
    Default,
    Timeout,
    /// FlowMind's conductor, its grace period over with no answer from you.
    Flowmind,
}

/// What to do with a step that was in flight at a crash and may not be re-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlightDecision {
    Rerun,
    Skip,
    MarkDone,
}

/// Why a run paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PauseReason {
    /// A recomputed effect does not match the one recorded at its key.
    Divergence {
        step: StepKey,
        key: String,
        recorded: String,
        computed: String,
    },
    /// A non-idempotent step was running when the process died.
    InFlight { step: StepKey, attempt: Attempt },
    /// Paused on request (`lev` op).
    Requested,
    /// `Op::EmergencyStop`: every running step was stopped where it stood.
    EmergencyStop,
    /// The journal's disk is full: the steps that were running recorded
    /// their outcomes (into the space reserve), no new step started.
    /// `lev resume` continues once there is space again.
    DiskFull {
        /// The journal's error: its file and the cause.
        error: String,
    },
}

/// What a step run (`RunStarted.step_of`) executes: one step of a spread
/// run, with everything its templates read, as the spread run saw it
/// when the step became ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOf {
    /// The spread run.
    pub parent: RunId,
    /// The step's key there; it keeps it here.
    pub step: StepKey,
    pub attempt: Attempt,
    /// The step as declared (its `if:` already judged), as the pinned
    /// model holds it (`spec::Step`).
    pub spec: Value,
    /// The finished steps its templates read: succeeded, and outputs.
    #[serde(default)]
    pub steps: BTreeMap<String, (bool, BTreeMap<String, Value>)>,
    #[serde(default)]
    pub item: Option<Value>,
    /// The spread run's `run.*` (its id, name, start, seed).
    #[serde(default)]
    pub run_vars: BTreeMap<String, Value>,
    #[serde(default)]
    pub whisper: BTreeMap<String, Value>,
    /// What the spread run had spent when the step run was made (its
    /// settled steps and those in flight): counted against the budget with
    /// the step run's own usage, never reported as its own.
    #[serde(default)]
    pub spent: Usage,
}

/// One step of a workflow as declared (child workflows are one step), as
/// `RunStarted` lists them for views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutline {
    pub id: String,
    /// The step type (`agent`, `shell`, ...).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Mode for agent steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// What happened to a step's git worktree (`workspace: { worktree: true }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorktreeFact {
    /// The step's worktree exists (made, or found again on resume).
    Ready {
        /// Top level of the main worktree, where merges go.
        repo: String,
        /// Top level of the step's worktree.
        path: String,
        /// The step's file tools and shell work here (inside `path`).
        root: String,
        branch: String,
        /// Branch (or commit) it was made from.
        base: String,
        /// Where the branch left `base`; its diff is read against this.
        base_commit: String,
        /// The branches of the steps it needs, merged in when it was made.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        started_from: Vec<String>,
    },
    /// The step ended: its changes are committed on its branch
    /// (`commit: None` when there was nothing new), with the diff's size
    /// against the merge-base.
    Changed {
        branch: String,
        commit: Option<String>,
        files_changed: u32,
        insertions: u32,
        deletions: u32,
    },
    /// The branch was merged (`--no-ff`) into `into` in the main worktree.
    Merged {
        branch: String,
        into: String,
        commit: String,
    },
    /// The branch (at `commit`) was pushed to `remote` (`--push-to`), so
    /// any machine with that remote can diff, merge or discard it.
    Pushed {
        branch: String,
        remote: String,
        commit: String,
    },
    /// The worktree was removed and its branch deleted.
    Discarded { branch: String },
}

/// A fact. Written to the journal, then broadcast. Never edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        workflow_id: String,
        name: String,
        /// Path the definition was loaded from, for display only.
        source: String,
        /// blake3 of the pinned definition text.
        definition_hash: String,
        inputs: BTreeMap<String, Value>,
        /// Seed for anything random in the run, so replay repeats it.
        seed: u64,
        /// Root for file tools and shell steps; a resumed run keeps it.
        #[serde(default)]
        workspace: Option<String>,
        /// The workflow's steps as declared, so views list every step from
        /// the start (journals written before this field decode to none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<StepOutline>,
        /// The workflow's own `flowmind:` settings, over the config's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flowmind: Option<Box<FlowmindOverride>>,
        /// `--spread`: its agent and shell steps are runs of their own
        /// (`StepDelegated`) that any `lev worker` of the journal takes.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        spread: bool,
        /// A step run: the one step of a spread run it executes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step_of: Option<Box<StepOf>>,
        /// `--push-to REMOTE`: the git remote its steps' worktree branches
        /// are pushed to when each attempt ends (a step run has its spread
        /// run's), so they can be merged from any machine.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        push_to: Option<String>,
        at: Millis,
    },
    RunResumed {
        at: Millis,
    },
    /// Up-front or mid-run question for the user.
    QuestionAsked {
        id: String,
        step: Option<StepKey>,
        header: Option<String>,
        ask: String,
        options: Vec<ChoiceRecord>,
        default: Option<String>,
        /// After this long the default (or failure) applies.
        #[serde(default)]
        timeout_ms: Option<u64>,
        /// An agent asked it (`ask_user`): FlowMind's conductor may answer.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        from_agent: bool,
        at: Millis,
    },
    /// FlowMind's conductor about an agent's question: its answer (none
    /// when it has none), how sure it is, the kind of question and why.
    /// With `auto`, the answer stands after `grace_ms` unless you answer
    /// first; otherwise it is only offered to you.
    AnswerProposed {
        id: String,
        answer: Option<String>,
        confidence: f64,
        category: String,
        reason: String,
        auto: bool,
        grace_ms: u64,
        model: String,
        usage: Usage,
        at: Millis,
    },
    QuestionAnswered {
        id: String,
        answer: String,
        source: AnswerSource,
        at: Millis,
    },
    ApprovalRequested {
        step: StepKey,
        message: String,
        /// After this long the gate's `on_timeout` applies.
        #[serde(default)]
        timeout_ms: Option<u64>,
        at: Millis,
    },
    ApprovalDecided {
        step: StepKey,
        approved: bool,
        comment: String,
        source: AnswerSource,
        at: Millis,
    },
    /// Intent: an attempt begins. `fingerprint` hashes what the step will do.
    StepStarted {
        step: StepKey,
        attempt: Attempt,
        fingerprint: String,
        /// The step type (`agent`, `shell`, ...), for views.
        kind: String,
        /// Mode for agent steps.
        mode: Option<String>,
        idempotent: bool,
        /// What lev tells an agent besides its prompt: the step's
        /// `whisper.to_llm` hints and its mode's `whisper.hints`, for views.
        /// Not part of `fingerprint` (the prompt and role already are).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        hints: Vec<String>,
        at: Millis,
    },
    /// An LLM reply, recorded before any tool it asks for runs.
    LlmReplied {
        step: StepKey,
        attempt: Attempt,
        turn: u32,
        /// Hash of the request, compared on resume.
        fingerprint: String,
        text: String,
        tool_calls: Vec<ToolCallRecord>,
        usage: Usage,
        model: String,
        /// Why the reply ended, in the provider's words (`stop`, `length`,
        /// `tool_calls`, `end_turn`, `max_tokens`, …); see
        /// `llm::cut_short`. None in journals written before lev kept it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_reason: Option<String>,
        /// The model declined to answer, saying this (may be empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refusal: Option<String>,
        at: Millis,
    },
    /// A request of `step`'s turn failed and is sent again after
    /// `delay_ms` (a rate limit, an overload, a dropped stream, …).
    LlmRetrying {
        step: StepKey,
        attempt: Attempt,
        turn: u32,
        /// The provider and its base URL, never with credentials.
        endpoint: String,
        /// The request that failed (1 for the first) and how many may be sent.
        failed: u32,
        tries: u32,
        /// What went wrong, in the provider's words where it gave any.
        error: String,
        delay_ms: u64,
        at: Millis,
    },
    /// Intent to run a side-effecting tool (e.g. `run_shell`).
    ToolStarted {
        step: StepKey,
        attempt: Attempt,
        /// Where the call stands in the run: the turn whose reply asked
        /// for it, and its position (from 1) among that reply's calls.
        /// Recorded results are found by this place, never by `call_id`,
        /// which providers reuse across turns. 0 in journals written before
        /// places were recorded (the fold derives them).
        #[serde(default)]
        turn: u32,
        #[serde(default)]
        position: u32,
        /// The provider's id, only echoed back to the provider.
        call_id: String,
        name: String,
        fingerprint: String,
        at: Millis,
    },
    /// A tool's result, at the same place as its `ToolStarted`.
    ToolFinished {
        step: StepKey,
        attempt: Attempt,
        #[serde(default)]
        turn: u32,
        #[serde(default)]
        position: u32,
        call_id: String,
        name: String,
        arguments: String,
        output: String,
        is_error: bool,
        at: Millis,
    },
    /// A command's process group started. What identifies it across PID
    /// reuse is journaled so a resume can make sure this copy is gone
    /// before the attempt runs again. `turn`/`position` place an agent's
    /// `run_shell` call (0 for a shell step).
    ProcessStarted {
        step: StepKey,
        attempt: Attempt,
        #[serde(default)]
        turn: u32,
        #[serde(default)]
        position: u32,
        group: ProcessGroup,
        at: Millis,
    },
    /// On resume, a command of the interrupted attempt was still running;
    /// lev waited for it to end (`killed: false`) or killed it before
    /// running the attempt again.
    EarlierCopyStopped {
        step: StepKey,
        attempt: Attempt,
        killed: bool,
        at: Millis,
    },
    ShellFinished {
        step: StepKey,
        attempt: Attempt,
        exit_code: Option<i32>,
        timed_out: bool,
        stdout_tail: String,
        stderr_tail: String,
        /// Blob hashes of the whole streams.
        stdout_blob: Option<String>,
        stderr_blob: Option<String>,
        duration_ms: u64,
        at: Millis,
    },
    /// A `pty` step's program, journaled before it starts: what runs,
    /// where, in a terminal of what size, the names (never the values) of
    /// the variables set for it, and the agent CLI it is (`cli`) with the
    /// session id lev chose for it up front (`--session-id`), or the one it
    /// resumes (`resumed`).
    PtyLaunched {
        step: StepKey,
        attempt: Attempt,
        program: String,
        args: Vec<String>,
        cwd: String,
        env: Vec<String>,
        rows: u16,
        cols: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cli: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
        at: Millis,
    },
    /// The agent CLI's own session id, learned while it ran (`source`: its
    /// hook's payload, or its output): what a resume relaunches it with.
    PtySession {
        step: StepKey,
        attempt: Attempt,
        session: String,
        source: String,
        at: Millis,
    },
    /// A `pty` step's program ended, or was ended (`ended_by`: `exit`, the
    /// step's `done_when` rule, `timeout`), with what its terminal showed
    /// (the transcript's last part; the whole in a blob), secrets redacted.
    PtyFinished {
        step: StepKey,
        attempt: Attempt,
        exit_code: Option<i32>,
        ended_by: String,
        transcript_tail: String,
        transcript_blob: Option<String>,
        duration_ms: u64,
        at: Millis,
    },
    /// A step of a spread run is executed as run `run` (a step run) by
    /// whichever `lev worker` takes it; the step's outcome follows once
    /// that run ends. Recorded before the run is made, so a resumed run
    /// finds the step run again instead of making a second one.
    StepDelegated {
        step: StepKey,
        attempt: Attempt,
        run: RunId,
        /// What a worker's `--modes` match: the agent's mode, or `shell`.
        work: String,
        at: Millis,
    },
    StepSucceeded {
        step: StepKey,
        attempt: Attempt,
        outputs: BTreeMap<String, Value>,
        usage: Usage,
        at: Millis,
    },
    StepFailed {
        step: StepKey,
        attempt: Attempt,
        error: String,
        /// Delay before the next attempt, when one follows.
        retry_in_ms: Option<u64>,
        usage: Usage,
        at: Millis,
    },
    StepSkipped {
        step: StepKey,
        reason: String,
        at: Millis,
    },
    StepCancelled {
        step: StepKey,
        at: Millis,
    },
    /// The system put a question to an agent (`ask_agent:`) after its
    /// answer, as the user message of `turn`; its reply is that turn's.
    AgentAsked {
        step: StepKey,
        attempt: Attempt,
        turn: u32,
        question: String,
        at: Millis,
    },
    /// A step's `when_semantic` was judged before it ran: by a model (its
    /// name in `judge`) or by the user (`judge: "user"`). Reused on resume.
    SemanticVerdict {
        step: StepKey,
        condition: String,
        holds: bool,
        /// The model's own confidence, 0 to 1 (none for the user).
        confidence: Option<f64>,
        reason: String,
        judge: String,
        /// What asking the judge cost (also when it gave no verdict and
        /// the user decided); counted in the run's budgets and totals.
        #[serde(default)]
        usage: Usage,
        at: Millis,
    },
    /// A reply's model has no price, so a cost budget (`max_cost_usd`)
    /// counts its tokens as $0; said once per model and run.
    PriceUnknown {
        model: String,
        step: StepKey,
        at: Millis,
    },
    /// What an agent's request at `turn` was made of, journaled before it
    /// is sent: each part (system prompt pieces, the prompt and the values
    /// it reads, memory notes, replies, tool outputs, messages) with its
    /// tokens by `counter`, what was cut or left out to fit `budget`, and
    /// where each part's text is kept: the blob of the turn that first sent
    /// it (`text_turn`), at `text_index` of that blob's JSON array; turn 0
    /// is the `shared` blob (the system prompt's texts, the same for every
    /// step of a mode, stored once).
    ContextAssembled {
        step: StepKey,
        attempt: Attempt,
        turn: u32,
        counter: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget: Option<u64>,
        total: u64,
        parts: Vec<ContextPart>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        left_out: Vec<LeftOut>,
        /// The texts first sent at this turn (none when every text was
        /// sent before).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blob: Option<String>,
        /// The texts that do not change from step to step (`text_turn` 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shared: Option<String>,
        at: Millis,
    },
    /// A step spawned a follow-up step at run time (`followups:` of the
    /// workflow, or an agent's `propose_followup`). The new step is defined
    /// by this entry alone: its key, mode and rendered prompt; `root` is the
    /// declared step its chain started from, `depth` 1 for that step's own
    /// follow-ups, and `chain_started` when the chain's first follow-up was
    /// spawned (its time box counts from there, across restarts).
    FollowupSpawned {
        step: StepKey,
        parent: StepKey,
        root: StepKey,
        depth: u32,
        mode: String,
        prompt: String,
        title: String,
        /// Why an agent proposed it (none for the workflow's own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
        /// `workflow` (`followups:`), `agent` (`propose_followup`) or
        /// `flowmind` (its ledger).
        by: String,
        /// Mode and normalised prompt, hashed: a later follow-up of the
        /// chain with the same one is a duplicate.
        dedup: String,
        chain_started: Millis,
        at: Millis,
    },
    /// A follow-up was not spawned: the guard that refused it, its limit
    /// and what was seen. `step` is the key it would have had.
    FollowupRefused {
        step: StepKey,
        parent: StepKey,
        title: String,
        guard: String,
        limit: String,
        observed: String,
        at: Millis,
    },
    /// No new follow-up is spawned and no new system question is asked in
    /// this run from here on (`by`: `user` through `lev stop-callbacks`, or
    /// `chain_breaker`); running steps finish. Survives resume.
    CallbacksStopped {
        by: String,
        reason: String,
        at: Millis,
    },
    /// The FlowMind controller decided about an agent that looks stuck:
    /// which rule saw what (`rule`, `observed`), and what it does — tell
    /// the agent (`instruct`: `text` goes to it as a message before its
    /// next request) or hand it to the user (`escalate`: `text` is the
    /// diagnosis). Journaled before it acts; a resumed run never decides
    /// the same again.
    FlowmindDecided {
        step: StepKey,
        rule: String,
        observed: String,
        level: FlowmindLevel,
        text: String,
        at: Millis,
    },
    /// FlowMind proposed follow-up work of `step`: decided with its agent's
    /// own proposals when it succeeds.
    FlowmindProposed {
        step: StepKey,
        title: String,
        mode: String,
        why: String,
        at: Millis,
    },
    /// The user let FlowMind's escalation about `step` go: the stuck agent
    /// is left as it is, and the whisper counts as dismissed.
    FlowmindDismissed {
        step: StepKey,
        at: Millis,
    },
    /// FlowMind's model answered its progress ledger about `step`'s
    /// working `turn` (its tokens are the controller's own, counted apart
    /// from the agents').
    FlowmindLedger {
        step: StepKey,
        attempt: Attempt,
        turn: u32,
        ledger: Ledger,
        model: String,
        usage: Usage,
        at: Millis,
    },
    /// FlowMind's model is done for this run; the rules go on alone.
    FlowmindFellBack {
        why: String,
        at: Millis,
    },
    /// An MCP server of the run connected: first (`restart` 0) or again
    /// after it went down.
    McpServerStarted {
        server: String,
        restart: u32,
        /// Tools it offers.
        tools: usize,
        at: Millis,
    },
    /// An MCP server stopped unexpectedly or could not start; its next use
    /// starts it again.
    McpServerDown {
        server: String,
        error: String,
        at: Millis,
    },
    /// The tools an MCP server offered an agent's attempt, as it offered
    /// them: a resumed attempt is offered the same (its recorded requests
    /// hold them) without starting the server.
    McpToolsListed {
        step: StepKey,
        attempt: Attempt,
        server: String,
        tools: Vec<McpToolRecord>,
        at: Millis,
    },
    /// A limit stopped something.
    GuardTripped {
        guard: String,
        limit: String,
        observed: String,
        step: Option<StepKey>,
        at: Millis,
    },
    InFlightResolved {
        step: StepKey,
        decision: InFlightDecision,
        at: Millis,
    },
    RunPaused {
        reason: PauseReason,
        at: Millis,
    },
    RunCancelRequested {
        at: Millis,
    },
    /// A participant's message handed to a running agent as a user message
    /// just before its LLM request at `turn`. Recorded at delivery, so a
    /// resumed agent rebuilds exactly the request it sent.
    AgentMessaged {
        step: StepKey,
        attempt: Attempt,
        turn: u32,
        text: String,
        at: Millis,
    },
    /// A live pause began: of the whole run (`step: None`: no new step starts,
    /// agents hold before their next LLM request, running shell steps go on),
    /// or of one agent. Not restored by `lev resume`.
    PauseRequested {
        step: Option<StepKey>,
        at: Millis,
    },
    /// A live pause ended (`step: None`: every pause of the run).
    PauseLifted {
        step: Option<StepKey>,
        at: Millis,
    },
    /// Emergency stop: every running step is stopped now and the run ends
    /// paused (resumable), not cancelled.
    EmergencyStopped {
        at: Millis,
    },
    /// One plan from the orchestrator and the problems found in it (none: valid).
    PlanProposed {
        attempt: u32,
        plan: Value,
        problems: Vec<String>,
        at: Millis,
    },
    /// The plan the swarm executes (after review; `edited` when the user changed it).
    PlanAccepted {
        objective: String,
        plan: Value,
        edited: bool,
        at: Millis,
    },
    /// The swarm's unfinished work planned again after FlowMind found
    /// `stalled` stuck (its `revision`-th re-plan): the tasks `replaces`
    /// names (the stalled one and those not started) give way to `plan`'s,
    /// which may need the tasks that finished.
    PlanRevised {
        revision: u32,
        stalled: StepKey,
        replaces: Vec<String>,
        plan: Value,
        edited: bool,
        at: Millis,
    },
    /// A swarm task goes to an agent slot (`stolen_from`: the slot whose
    /// queue it was taken from by work stealing).
    TaskAssigned {
        task: StepKey,
        mode: String,
        slot: u32,
        stolen_from: Option<u32>,
        at: Millis,
    },
    /// A swarm slot's circuit breaker changed state (`closed`, `open`,
    /// `half_open`).
    SlotBreaker {
        slot: u32,
        state: String,
        /// While open: no work goes to the slot before this.
        #[serde(default)]
        until: Option<Millis>,
        reason: String,
        at: Millis,
    },
    /// An LLM endpoint's circuit breaker changed state (`closed`, `open`,
    /// `half_open`) during a call of `step`. `endpoint` is the provider and
    /// its base URL, never with credentials.
    ProviderBreaker {
        endpoint: String,
        state: String,
        /// Failures in a row when it changed.
        #[serde(default)]
        failures: u32,
        /// While open: calls fail fast (or go to the fallback) until then.
        #[serde(default)]
        until: Option<Millis>,
        reason: String,
        #[serde(default)]
        step: Option<StepKey>,
        at: Millis,
    },
    /// A participant asked to run a failed step again. `also` are the
    /// steps that did not succeed because of it (its dependents that were
    /// skipped or failed, the workflow steps around a child step): from
    /// here on none of them counts as settled, so the engine runs the step
    /// and then them, with attempt numbers after the recorded ones.
    StepRetryRequested {
        step: StepKey,
        #[serde(default)]
        also: Vec<StepKey>,
        at: Millis,
    },
    /// This run is a fork: its entries before this one are a copy of
    /// `from_run`'s entries before `from_step` first appeared (steps still
    /// unsettled there, and run-level ends, left out).
    RunForked {
        from_run: RunId,
        from_step: StepKey,
        at: Millis,
    },
    RunFinished {
        status: RunStatus,
        outputs: BTreeMap<String, Value>,
        error: Option<String>,
        usage: Usage,
        at: Millis,
    },
    /// A step's git worktree changed (made, committed, merged, discarded).
    /// Merges and discards may come after `RunFinished`.
    Worktree {
        step: StepKey,
        fact: WorktreeFact,
        at: Millis,
    },
}

impl Event {
    /// Stable name of the event kind, as stored in the journal entry.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::RunResumed { .. } => "run_resumed",
            Event::QuestionAsked { .. } => "question_asked",
            Event::QuestionAnswered { .. } => "question_answered",
            Event::AnswerProposed { .. } => "answer_proposed",
            Event::ApprovalRequested { .. } => "approval_requested",
            Event::ApprovalDecided { .. } => "approval_decided",
            Event::StepStarted { .. } => "step_started",
            Event::LlmReplied { .. } => "llm_replied",
            Event::LlmRetrying { .. } => "llm_retrying",
            Event::ToolStarted { .. } => "tool_started",
            Event::ToolFinished { .. } => "tool_finished",
            Event::ProcessStarted { .. } => "process_started",
            Event::EarlierCopyStopped { .. } => "earlier_copy_stopped",
            Event::ShellFinished { .. } => "shell_finished",
            Event::PtyLaunched { .. } => "pty_launched",
            Event::PtySession { .. } => "pty_session",
            Event::PtyFinished { .. } => "pty_finished",
            Event::StepSucceeded { .. } => "step_succeeded",
            Event::StepFailed { .. } => "step_failed",
            Event::StepSkipped { .. } => "step_skipped",
            Event::StepDelegated { .. } => "step_delegated",
            Event::StepCancelled { .. } => "step_cancelled",
            Event::GuardTripped { .. } => "guard_tripped",
            Event::McpServerStarted { .. } => "mcp_server_started",
            Event::McpServerDown { .. } => "mcp_server_down",
            Event::McpToolsListed { .. } => "mcp_tools_listed",
            Event::FollowupSpawned { .. } => "followup_spawned",
            Event::ContextAssembled { .. } => "context_assembled",
            Event::FollowupRefused { .. } => "followup_refused",
            Event::CallbacksStopped { .. } => "callbacks_stopped",
            Event::FlowmindDecided { .. } => "flowmind_decided",
            Event::FlowmindLedger { .. } => "flowmind_ledger",
            Event::FlowmindFellBack { .. } => "flowmind_fell_back",
            Event::PriceUnknown { .. } => "price_unknown",
            Event::SemanticVerdict { .. } => "semantic_verdict",
            Event::AgentAsked { .. } => "agent_asked",
            Event::InFlightResolved { .. } => "in_flight_resolved",
            Event::RunPaused { .. } => "run_paused",
            Event::RunCancelRequested { .. } => "run_cancel_requested",
            Event::AgentMessaged { .. } => "agent_messaged",
            Event::PauseRequested { .. } => "pause_requested",
            Event::PauseLifted { .. } => "pause_lifted",
            Event::EmergencyStopped { .. } => "emergency_stopped",
            Event::PlanProposed { .. } => "plan_proposed",
            Event::PlanAccepted { .. } => "plan_accepted",
            Event::PlanRevised { .. } => "plan_revised",
            Event::FlowmindDismissed { .. } => "flowmind_dismissed",
            Event::FlowmindProposed { .. } => "flowmind_proposed",
            Event::TaskAssigned { .. } => "task_assigned",
            Event::SlotBreaker { .. } => "slot_breaker",
            Event::ProviderBreaker { .. } => "provider_breaker",
            Event::StepRetryRequested { .. } => "step_retry_requested",
            Event::RunForked { .. } => "run_forked",
            Event::RunFinished { .. } => "run_finished",
            Event::Worktree { .. } => "worktree",
        }
    }

    /// When it happened (the clock reading journaled with it).
    pub fn at(&self) -> Millis {
        match self {
            Event::RunStarted { at, .. }
            | Event::RunResumed { at }
            | Event::QuestionAsked { at, .. }
            | Event::QuestionAnswered { at, .. }
            | Event::AnswerProposed { at, .. }
            | Event::ApprovalRequested { at, .. }
            | Event::ApprovalDecided { at, .. }
            | Event::StepStarted { at, .. }
            | Event::LlmReplied { at, .. }
            | Event::LlmRetrying { at, .. }
            | Event::ToolStarted { at, .. }
            | Event::ToolFinished { at, .. }
            | Event::ProcessStarted { at, .. }
            | Event::EarlierCopyStopped { at, .. }
            | Event::ShellFinished { at, .. }
            | Event::PtyLaunched { at, .. }
            | Event::PtySession { at, .. }
            | Event::PtyFinished { at, .. }
            | Event::StepSucceeded { at, .. }
            | Event::StepFailed { at, .. }
            | Event::StepSkipped { at, .. }
            | Event::StepDelegated { at, .. }
            | Event::StepCancelled { at, .. }
            | Event::GuardTripped { at, .. }
            | Event::McpServerStarted { at, .. }
            | Event::McpServerDown { at, .. }
            | Event::McpToolsListed { at, .. }
            | Event::FollowupSpawned { at, .. }
            | Event::ContextAssembled { at, .. }
            | Event::FollowupRefused { at, .. }
            | Event::CallbacksStopped { at, .. }
            | Event::FlowmindDecided { at, .. }
            | Event::FlowmindLedger { at, .. }
            | Event::FlowmindFellBack { at, .. }
            | Event::PriceUnknown { at, .. }
            | Event::SemanticVerdict { at, .. }
            | Event::AgentAsked { at, .. }
            | Event::InFlightResolved { at, .. }
            | Event::RunPaused { at, .. }
            | Event::RunCancelRequested { at }
            | Event::AgentMessaged { at, .. }
            | Event::PauseRequested { at, .. }
            | Event::PauseLifted { at, .. }
            | Event::EmergencyStopped { at }
            | Event::PlanProposed { at, .. }
            | Event::PlanAccepted { at, .. }
            | Event::PlanRevised { at, .. }
            | Event::FlowmindDismissed { at, .. }
            | Event::FlowmindProposed { at, .. }
            | Event::TaskAssigned { at, .. }
            | Event::SlotBreaker { at, .. }
            | Event::ProviderBreaker { at, .. }
            | Event::StepRetryRequested { at, .. }
            | Event::RunForked { at, .. }
            | Event::RunFinished { at, .. }
            | Event::Worktree { at, .. } => *at,
        }
    }

    /// The step this event is about, if any.
    pub fn step(&self) -> Option<&StepKey> {
        match self {
            Event::ApprovalRequested { step, .. }
            | Event::ApprovalDecided { step, .. }
            | Event::StepStarted { step, .. }
            | Event::LlmReplied { step, .. }
            | Event::LlmRetrying { step, .. }
            | Event::ToolStarted { step, .. }
            | Event::ToolFinished { step, .. }
            | Event::ProcessStarted { step, .. }
            | Event::EarlierCopyStopped { step, .. }
            | Event::ShellFinished { step, .. }
            | Event::PtyLaunched { step, .. }
            | Event::PtySession { step, .. }
            | Event::PtyFinished { step, .. }
            | Event::StepSucceeded { step, .. }
            | Event::StepFailed { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::StepDelegated { step, .. }
            | Event::StepCancelled { step, .. }
            | Event::InFlightResolved { step, .. }
            | Event::AgentMessaged { step, .. }
            | Event::StepRetryRequested { step, .. }
            | Event::Worktree { step, .. }
            | Event::PriceUnknown { step, .. }
            | Event::SemanticVerdict { step, .. }
            | Event::FollowupSpawned { step, .. }
            | Event::FollowupRefused { step, .. }
            | Event::ContextAssembled { step, .. }
            | Event::AgentAsked { step, .. }
            | Event::FlowmindDecided { step, .. }
            | Event::FlowmindDismissed { step, .. }
            | Event::FlowmindProposed { step, .. }
            | Event::FlowmindLedger { step, .. }
            | Event::McpToolsListed { step, .. } => Some(step),
            Event::TaskAssigned { task, .. } => Some(task),
            Event::QuestionAsked { step, .. }
            | Event::GuardTripped { step, .. }
            | Event::PauseRequested { step, .. }
            | Event::PauseLifted { step, .. } => step.as_ref(),
            _ => None,
        }
    }
}

/// What identifies a process group lev started, across lev restarts and
/// PID reuse: the group id (its leader's pid), the leader's start time in
/// clock ticks after boot, and the boot it started in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    pub pgid: i32,
    pub start_ticks: u64,
    pub boot_id: String,
}

/// What a resume did about a command of an interrupted attempt that was
/// still running (`Event::EarlierCopyStopped`), in words for people.
pub fn earlier_copy_stopped_text(killed: bool) -> String {
    let how = if killed {
        "killed it"
    } else {
        "waited until it ended"
    };
    format!("a command of the interrupted attempt was still running; lev {how}")
}

/// Whether a reply with this stop reason was cut off before the model had
/// finished it: by the output token limit (`length`, `max_tokens`) or a
/// content filter. A tool call in such a reply may be half written.
/// (`model_length` is vLLM's, `model_context_window_exceeded` Anthropic's
/// for a context that filled up mid-reply.)
pub fn cut_short(stop_reason: Option<&str>) -> bool {
    matches!(
        stop_reason,
        Some(
            "length"
                | "max_tokens"
                | "max_output_tokens"
                | "model_length"
                | "model_context_window_exceeded"
                | "content_filter"
        )
    )
}

/// How an LLM reply ended, in words for people, when that matters to
/// them: a refusal, or a reply cut off. `None` for a normal end.
pub fn reply_end_note(stop_reason: Option<&str>, refusal: Option<&str>) -> Option<String> {
    if let Some(r) = refusal {
        let r = r.trim();
        return Some(if r.is_empty() {
            "the model refused to answer".to_string()
        } else {
            format!("the model refused: {r}")
        });
    }
    match stop_reason {
        Some("content_filter") => Some("cut off by the provider's content filter".into()),
        reason if cut_short(reason) => Some(format!(
            "cut off at the output token limit (stop reason `{}`)",
            reason.unwrap_or_default()
        )),
        _ => None,
    }
}

/// A durable event with its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub run: RunId,
    pub seq: Seq,
    pub event: Event,
}

/// Ephemeral output shown live and never journaled (the completed message is).
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Token {
        step: StepKey,
        text: String,
    },
    ShellOutput {
        step: StepKey,
        stderr: bool,
        text: String,
    },
    /// What a `pty` step's program wrote to its terminal, as it came
    /// (escape sequences and all): each participant feeds its own
    /// terminal emulator. Secrets are not redacted here (a sequence may be
    /// cut anywhere); the journaled transcript is.
    PtyOutput {
        step: StepKey,
        bytes: Vec<u8>,
    },
    /// What a `pty` step's program is doing, as its agent CLI's hooks (or,
    /// failing those, its screen) tell.
    PtyState {
        step: StepKey,
        state: TerminalState,
    },
}

/// A `pty` step's program's state, for people: hooks say it first, the
/// screen only where no hook does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminalState {
    Running,
    NeedsInput,
    NeedsApproval,
    /// Its turn ended (an agent CLI's `Stop` hook); it waits for more.
    Idle,
    /// Running, but it has drawn nothing for a long while and no hook
    /// said it waits (`workflow::pty`'s `STALLED_AFTER`).
    Stalled,
    Exited,
    /// It exited with a failing code.
    Error,
}

impl TerminalState {
    pub fn as_str(self) -> &'static str {
        match self {
            TerminalState::Running => "running",
            TerminalState::NeedsInput => "needs input",
            TerminalState::NeedsApproval => "needs approval",
            TerminalState::Idle => "idle",
            TerminalState::Stalled => "stalled",
            TerminalState::Exited => "exited",
            TerminalState::Error => "error",
        }
    }
}

/// What an agent CLI's hook told lev (`lev hook`): a state, its session
/// id, a message (what it asks, what it wants approved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookReport {
    pub state: Option<TerminalState>,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// The hook waits for the user's decision on this approval (its
    /// request id): lev asks `STEP.approval-ID` and the hook reads the
    /// answer (`Query::Answer`) to give it back to its agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
}

impl HookReport {
    /// The question an approval a hook waits on is asked as.
    pub fn approval_question(step: &StepKey, request: &str) -> String {
        format!("{step}.approval-{request}")
    }
}

/// What the engine broadcasts to participants.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Event(Recorded),
    /// A recorded question or approval that still waits for an answer,
    /// re-announced after a resume (not a new fact; printers skip it).
    Pending(Recorded),
    Delta(RunId, Delta),
    /// An op the engine could not carry out (a message to a step that is not
    /// a running agent, unpausing a run that is not paused): said back to
    /// the participants instead of silence. Not a fact; not journaled.
    Refused(RunId, String),
    /// The engine stopped executing the run (it finished, paused or
    /// failed): sent after every notice of the run.
    Ended(RunId),
}

/// What the FlowMind controller does about a stuck agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowmindLevel {
    /// A message to the agent.
    Instruct,
    /// A diagnosis for the user.
    Escalate,
    /// A stalled swarm task is stopped and the orchestrator asked for a
    /// revised plan of the unfinished work (reviewed like the first).
    Replan,
    /// A question put into the agent's conversation (its next reply
    /// answers it); counted against the run's `max_questions`.
    Ask,
}

/// Most revised plans one swarm run may ask for: past them, a stalled
/// task goes to the user.
pub const MAX_REPLANS: u32 = 2;

impl FlowmindLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowmindLevel::Instruct => "instruct",
            FlowmindLevel::Escalate => "escalate",
            FlowmindLevel::Replan => "replan",
            FlowmindLevel::Ask => "ask",
        }
    }
}

/// What the user did with one whisper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhisperOutcome {
    /// Took it as it was.
    Accepted,
    /// Took it, changed.
    Edited,
    /// Let it go.
    Dismissed,
}

/// One category's score.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhisperScore {
    pub category: String,
    pub accepted: u64,
    pub edited: u64,
    pub dismissed: u64,
}

impl WhisperScore {
    pub fn total(&self) -> u64 {
        self.accepted + self.edited + self.dismissed
    }

    /// The share dismissed (0 with no outcome yet).
    pub fn dismissed_share(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            n => self.dismissed as f64 / n as f64,
        }
    }
}

/// A workflow's `flowmind:` block: what it sets of FlowMind's settings for
/// its runs (the config's apply to the rest; its model is the config's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowmindOverride {
    /// `off`, `fallback` or `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalls: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ms: Option<u64>,
}

/// FlowMind's progress ledger about one working turn of an agent: the
/// five questions of a progress ledger, answered by its model as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Is the agent's task done?
    pub satisfied: bool,
    /// Is it repeating itself?
    pub looping: bool,
    /// Is it getting closer to done?
    pub progressing: bool,
    /// Who should act next: `agent` or `user`.
    pub next: String,
    /// What to tell the agent now (empty: nothing).
    pub instruction: String,
    /// Why, in a sentence.
    pub reason: String,
    /// A question to put to the agent, to learn what its actions do not
    /// show (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub question: String,
    /// Work outside the agent's task that its work shows is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup: Option<Box<LedgerFollowup>>,
}

/// A follow-up FlowMind's ledger proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerFollowup {
    pub title: String,
    pub mode: String,
    pub why: String,
}

impl Ledger {
    /// Looping, or not getting closer to a task not done.
    pub fn stalled(&self) -> bool {
        self.looping || (!self.progressing && !self.satisfied)
    }
}

/// One part of an agent's request (`context_assembled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextPart {
    pub name: String,
    /// `system`, `prompt`, `upstream`, `memory`, `reply`, `tool output`,
    /// `message`.
    pub kind: String,
    pub tokens: u64,
    /// What was done to fit the budget (`cut from N tokens`, `added: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub text_turn: u32,
    pub text_index: u32,
}

/// A part left out of an agent's request, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    pub name: String,
    pub why: String,
}

/// An intent from a participant (user keys, CLI, headless policy, controller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Answer {
        run: RunId,
        question: String,
        answer: String,
        source: AnswerSource,
    },
    Decide {
        run: RunId,
        step: StepKey,
        approved: bool,
        comment: String,
        source: AnswerSource,
    },
    Cancel {
        run: RunId,
    },
    /// Stop one running step; the rest of the run goes on.
    CancelStep {
        run: RunId,
        step: StepKey,
    },
    /// A message for a running agent, delivered as a user message before
    /// its next LLM request.
    Message {
        run: RunId,
        step: StepKey,
        text: String,
    },
    /// Pause the run (`step: None`) or one running agent: no new step
    /// starts, agents hold at their next turn boundary.
    Pause {
        run: RunId,
        step: Option<StepKey>,
    },
    /// Lift a pause (`step: None`: every pause of the run).
    Unpause {
        run: RunId,
        step: Option<StepKey>,
    },
    /// Stop every running step now; the run ends paused, resumable.
    EmergencyStop {
        run: RunId,
    },
    /// No new follow-up is spawned and no new system question is asked in
    /// the run from now on; running steps finish (`lev stop-callbacks`).
    StopCallbacks {
        run: RunId,
    },
    /// The FlowMind controller's decision about an agent that looks stuck
    /// (recorded as `FlowmindDecided`, then carried out).
    Flowmind {
        run: RunId,
        step: StepKey,
        rule: String,
        observed: String,
        level: FlowmindLevel,
        text: String,
    },
    /// FlowMind proposes follow-up work of `step` (recorded as
    /// `FlowmindProposed`; decided with the agent's own proposals when the
    /// step succeeds, under the same limits and approvals).
    FlowmindPropose {
        run: RunId,
        step: StepKey,
        title: String,
        mode: String,
        why: String,
    },
    /// The user lets FlowMind's escalation about `step` go (recorded as
    /// `FlowmindDismissed`; counted as a dismissed whisper).
    DismissEscalation {
        run: RunId,
        step: StepKey,
    },
    /// FlowMind's progress ledger about an agent's working turn
    /// (recorded as `FlowmindLedger`; the rules act on it from the journal).
    FlowmindLedger {
        run: RunId,
        step: StepKey,
        attempt: Attempt,
        turn: u32,
        ledger: Ledger,
        model: String,
        usage: Usage,
    },
    /// FlowMind's model is not used for the rest of the run (its budget is
    /// spent, or it kept failing): the rules go on alone.
    FlowmindFellBack {
        run: RunId,
        why: String,
    },
    /// FlowMind's conductor proposes an answer to an agent's question
    /// (recorded as `AnswerProposed`; with `auto`, it answers after the
    /// grace period unless the user does first).
    ProposeAnswer {
        run: RunId,
        question: String,
        answer: Option<String>,
        confidence: f64,
        category: String,
        reason: String,
        auto: bool,
        grace_ms: u64,
        model: String,
        usage: Usage,
    },
    /// No one can answer this question or approval (a headless run): its
    /// timeout policy applies now instead of after the timeout.
    Unattended {
        run: RunId,
        /// Question id, or the approval's step key.
        prompt: String,
    },
    /// Keys (or pasted text, already bracketed) for a `pty` step's program.
    PtyInput {
        run: RunId,
        step: StepKey,
        bytes: Vec<u8>,
    },
    /// The pane showing a `pty` step's program changed size.
    PtyResize {
        run: RunId,
        step: StepKey,
        rows: u16,
        cols: u16,
    },
    /// An ad-hoc program in a pane of the live run (`lev spawn`, `:spawn`
    /// in the palette): beside its steps, stopped when the run ends.
    Spawn {
        run: RunId,
        command: String,
        args: Vec<String>,
    },
    /// What a `pty` step's agent CLI reported through its hook (`lev hook`).
    PtyHook {
        run: RunId,
        step: StepKey,
        report: HookReport,
    },
    /// Run a failed step again, then the steps that were skipped or failed
    /// because of it: in the live run, or (an ended run) recorded and the
    /// run resumed.
    RetryStep {
        run: RunId,
        step: StepKey,
    },
    /// Execute a paused or interrupted run again from its journal.
    Resume {
        run: RunId,
    },
    /// A new run that reuses `run`'s journal up to `from` and runs on from
    /// there.
    Fork {
        run: RunId,
        from: StepKey,
    },
    /// Merge or discard a step's git worktree (of a run no engine drives).
    SettleWorktree {
        run: RunId,
        step: StepKey,
        how: Settle,
    },
    /// Delete a run no engine executes, with what only it refers to (as
    /// `lev rm`); an unfinished one can then no longer be resumed.
    DeleteRun {
        run: RunId,
    },
    /// What the user did with one of FlowMind's whispers, counted in its
    /// category's score across runs.
    WhisperFeedback {
        category: String,
        outcome: WhisperOutcome,
    },
    /// Forget the whisper scores of `category` (every one when `None`).
    ResetWhispers {
        category: Option<String>,
    },
    /// Delete one entry of the memory bank.
    ForgetMemory {
        namespace: String,
        key: String,
    },
    /// Start a new run of the workflow file `file` (a path as the user gave
    /// it, from the engine's working directory) with `inputs`, as
    /// `lev run FILE --input name=value` does.
    StartWorkflow {
        file: String,
        #[serde(default)]
        inputs: BTreeMap<String, String>,
    },
    /// Start a swarm run that plans `objective` with `agents` slots, as
    /// `lev workflow "objective"` does.
    StartObjective {
        objective: String,
        agents: u32,
    },
}

/// Merge the step's branch into its base, or discard worktree and branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settle {
    Merge,
    Discard,
}

impl Op {
    /// The run the op is for (`None`: the memory bank).
    pub fn run(&self) -> Option<&RunId> {
        Some(match self {
            Op::Answer { run, .. }
            | Op::Decide { run, .. }
            | Op::Cancel { run }
            | Op::CancelStep { run, .. }
            | Op::Message { run, .. }
            | Op::Pause { run, .. }
            | Op::Unpause { run, .. }
            | Op::EmergencyStop { run }
            | Op::StopCallbacks { run }
            | Op::Flowmind { run, .. }
            | Op::DismissEscalation { run, .. }
            | Op::FlowmindPropose { run, .. }
            | Op::FlowmindLedger { run, .. }
            | Op::FlowmindFellBack { run, .. }
            | Op::ProposeAnswer { run, .. }
            | Op::Unattended { run, .. }
            | Op::PtyInput { run, .. }
            | Op::PtyResize { run, .. }
            | Op::PtyHook { run, .. }
            | Op::Spawn { run, .. }
            | Op::RetryStep { run, .. }
            | Op::Resume { run }
            | Op::Fork { run, .. }
            | Op::SettleWorktree { run, .. }
            | Op::DeleteRun { run } => run,
            Op::ForgetMemory { .. }
            | Op::WhisperFeedback { .. }
            | Op::ResetWhispers { .. }
            | Op::StartWorkflow { .. }
            | Op::StartObjective { .. } => {
                return None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_dates() {
        assert_eq!(Millis(0).utc(), "1970-01-01 00:00:00");
        assert_eq!(Millis(951_782_400_000).utc(), "2000-02-29 00:00:00");
        assert_eq!(Millis(1_795_579_215_778).utc(), "2026-11-25 04:00:15");
    }
}
