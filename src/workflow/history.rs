//! What a run's journal already says, indexed for resume: finished steps,
//! in-flight intents, recorded LLM replies and tool results, answers.
//! Built by folding the run's events in seq order; pure data.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::protocol::{
    AnswerSource, Attempt, Event, InFlightDecision, Recorded, StepKey, ToolCallRecord, Usage,
};

/// The outcome a step reached in an earlier process.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Outputs are shared (the history, the graph runner's views and the
    /// step's end hold one copy): a 10,000-step run's outputs are not held twice.
    Succeeded {
        outputs: crate::spec::expr::Outputs,
    },
    Failed {
        error: String,
    },
    Skipped,
    Cancelled,
}

/// A recorded LLM reply, reused instead of asking the model again.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedReply {
    pub fingerprint: String,
    pub text: String,
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: Usage,
    pub model: String,
    pub stop_reason: Option<String>,
    pub refusal: Option<String>,
}

/// A recorded tool result.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedTool {
    pub output: String,
    pub is_error: bool,
}

/// The latest attempt of a step as the journal knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub attempt: Attempt,
    pub fingerprint: String,
    /// Seq of the `StepStarted` intent, part of the idempotency key.
    pub started_seq: u64,
    /// The (seq, attempt) the attempt's `LEV_IDEMPOTENCY_KEY` is made of:
    /// its own, or for a re-run of an attempt interrupted by a crash, the
    /// interrupted attempt's, so a command can recognise its earlier run.
    pub key_origin: (u64, Attempt),
    /// Set when the attempt ended.
    pub settled: Option<Settled>,
    /// Next attempt wanted after this delay (a failed attempt with retries left).
    pub retry_in_ms: Option<u64>,
    pub failed_at_ms: u64,
    /// Decision recorded for an in-flight attempt after a crash.
    pub decision: Option<InFlightDecision>,
    /// A retry was asked for after the step settled (`StepRetryRequested`):
    /// its outcome no longer stands; the next attempt follows `attempt`.
    pub retry_requested: bool,
}

/// Where a tool call stands in a run: step, attempt, the turn whose reply
/// asked for it, and its position (from 1) among that reply's calls. The
/// provider's call id is not part of it: servers reuse ids across turns
/// and even within one reply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ToolPlace {
    pub step: StepKey,
    pub attempt: Attempt,
    pub turn: u32,
    pub position: u32,
}

/// A `pty` step's agent CLI as its latest launch left it: which CLI it
/// is and its session id, when known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PtySession {
    pub cli: Option<String>,
    pub session: Option<String>,
}

/// A swarm run's recorded plans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwarmHistory {
    /// Orchestrator answer number → (plan, problems found).
    pub proposals: BTreeMap<u32, (Value, Vec<String>)>,
    /// The accepted plan and whether the user edited it.
    pub accepted: Option<(Value, bool)>,
    /// FlowMind's re-plans decided, in order: the stalled task and what
    /// FlowMind saw.
    pub replans: Vec<(StepKey, String)>,
    /// The revised plans accepted, in order.
    pub revisions: Vec<Revision>,
}

/// A revised plan as recorded (`plan_revised`).
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub stalled: StepKey,
    pub replaces: Vec<String>,
    pub plan: Value,
}

/// Index of a run's recorded facts. Comparable, so tests can check that a
/// fold of the journal equals the fold of what the live run published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub steps: BTreeMap<StepKey, StepRecord>,
    /// Swarm tasks: the slot each was last assigned to.
    pub task_slots: BTreeMap<StepKey, u32>,
    /// Swarm plans proposed and accepted.
    pub swarm: SwarmHistory,
    /// Swarm slots: the breaker state last recorded (`open` with its end).
    pub slot_breakers: BTreeMap<u32, (String, Option<crate::protocol::Millis>)>,
    pub replies: BTreeMap<(StepKey, Attempt, u32), RecordedReply>,
    /// Tool results by their place in the run, never by the provider's id.
    pub tools: BTreeMap<ToolPlace, RecordedTool>,
    /// Messages delivered to agents, in delivery order, by the turn whose
    /// request they joined.
    pub messages: BTreeMap<(StepKey, Attempt, u32), Vec<String>>,
    /// Tool calls whose intent was recorded (side-effecting tools).
    pub tools_started: BTreeSet<ToolPlace>,
    /// Process groups the commands of attempts not yet ended started
    /// (checked on resume; an attempt's entry goes when it ends).
    pub processes: BTreeMap<(StepKey, Attempt), Vec<crate::protocol::ProcessGroup>>,
    /// `pty` steps' agent CLI sessions, the latest known of each step: the
    /// CLI and its session id (what a resume relaunches).
    pub pty_sessions: BTreeMap<StepKey, PtySession>,
    pub answers: BTreeMap<String, (String, AnswerSource)>,
    /// Questions asked, with the recorded event (re-announced while unanswered).
    pub asked: BTreeMap<String, Recorded>,
    pub approvals: BTreeMap<StepKey, (bool, String)>,
    pub approvals_requested: BTreeMap<StepKey, Recorded>,
    pub usage: Usage,
    /// Spread runs: each step's latest step run, with its attempt.
    pub delegated: BTreeMap<StepKey, (Attempt, crate::protocol::RunId)>,
    /// Each step's worktree as last made ready (`workspace: { worktree: true }`).
    pub worktrees: BTreeMap<StepKey, crate::isolation::Worktree>,
    pub cancel_requested: bool,
    pub questions_asked: u32,
    /// Models a `price_unknown` was recorded for (said once per run).
    pub unpriced_models: BTreeSet<String>,
    /// Each step's recorded `when_semantic` verdict: whether it held.
    pub verdicts: BTreeMap<StepKey, bool>,
    /// Follow-ups spawned and refused, chains, stopped callbacks.
    pub followups: super::followups::Book,
    /// FlowMind instructions journaled but not yet delivered to their
    /// agent (a crash came between), as the messages they become.
    pub flowmind_undelivered: BTreeMap<StepKey, Vec<String>>,
    /// Follow-ups FlowMind proposed, by step (as agents' proposals are
    /// kept: title, mode, prompt, why, and `by: flowmind`).
    pub flowmind_followups: BTreeMap<StepKey, Vec<Value>>,
    /// FlowMind's own tokens (its ledgers), apart from the agents'.
    pub flowmind_usage: Usage,
    /// Agents' questions FlowMind's conductor answers unless the user does
    /// first: its answer, the grace period (ms) and when it was journaled.
    pub conducted: BTreeMap<String, (String, u64, crate::protocol::Millis)>,
    /// Each attempt's first request as journaled (its parts and blob): a
    /// resumed agent sends the memory notes it sent then.
    pub first_contexts:
        BTreeMap<(StepKey, Attempt), (Vec<crate::protocol::ContextPart>, Option<String>)>,
    /// The turns at which the system asked an agent (`ask_agent`).
    pub agent_asked: BTreeSet<(StepKey, Attempt, u32)>,
    /// The tools each MCP server offered each attempt (`mcp_tools_listed`).
    pub mcp_tools: BTreeMap<(StepKey, Attempt, String), Vec<crate::protocol::McpToolRecord>>,
    pub last_seq: u64,
    pub finished: bool,
}

impl History {
    /// Folds recorded events (in seq order) into an index.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Recorded>) -> History {
        let mut h = History::default();
        for r in events {
            h.apply(r);
        }
        h
    }

    /// The place of a recorded tool event. Events written before places
    /// were recorded (turn 0) are placed by the fold: the latest reply of
    /// that attempt, at the first call with that id whose event of this
    /// kind is not recorded yet (tool events follow their reply in order).
    fn place_of(
        &self,
        step: &StepKey,
        attempt: Attempt,
        turn: u32,
        position: u32,
        call_id: &str,
        finished: bool,
    ) -> Option<ToolPlace> {
        if turn > 0 && position > 0 {
            return Some(ToolPlace {
                step: step.clone(),
                attempt,
                turn,
                position,
            });
        }
        let ((_, _, turn), reply) = self
            .replies
            .range((step.clone(), attempt, 0)..=(step.clone(), attempt, u32::MAX))
            .next_back()?;
        (1u32..)
            .zip(&reply.tool_calls)
            .map(|(position, call)| {
                let place = ToolPlace {
                    step: step.clone(),
                    attempt,
                    turn: *turn,
                    position,
                };
                (place, call)
            })
            .find(|(place, call)| {
                // A start precedes its result, so a call with a result
                // has had its start too.
                let seen = self.tools.contains_key(place)
                    || (!finished && self.tools_started.contains(place));
                call.id == call_id && !seen
            })
            .map(|(place, _)| place)
    }

    /// A step run's usage counts in its spread run: the model calls it
    /// made are recorded there, not here.
    fn add_delegated_usage(&mut self, step: &StepKey, attempt: Attempt, usage: &Usage) {
        if self.delegated.get(step).map(|(a, _)| *a) == Some(attempt) {
            self.usage.add(usage);
        }
    }

    /// Adds one recorded event.
    pub fn apply(&mut self, r: &Recorded) {
        self.last_seq = self.last_seq.max(r.seq.0);
        self.followups.apply(&r.event);
        match &r.event {
            Event::StepStarted {
                step,
                attempt,
                fingerprint,
                ..
            } => {
                let decision = None;
                let key_origin = match self.steps.get(step) {
                    Some(prev)
                        if prev.settled.is_none()
                            && prev.decision == Some(InFlightDecision::Rerun) =>
                    {
                        prev.key_origin
                    }
                    _ => (r.seq.0, *attempt),
                };
                self.steps.insert(
                    step.clone(),
                    StepRecord {
                        attempt: *attempt,
                        fingerprint: fingerprint.clone(),
                        started_seq: r.seq.0,
                        key_origin,
                        settled: None,
                        retry_in_ms: None,
                        failed_at_ms: 0,
                        decision,
                        retry_requested: false,
                    },
                );
            }
            Event::LlmReplied {
                step,
                attempt,
                turn,
                fingerprint,
                text,
                tool_calls,
                usage,
                model,
                stop_reason,
                refusal,
                ..
            } => {
                self.usage.add(usage);
                self.replies.insert(
                    (step.clone(), *attempt, *turn),
                    RecordedReply {
                        fingerprint: fingerprint.clone(),
                        text: text.clone(),
                        tool_calls: tool_calls.clone(),
                        usage: *usage,
                        model: model.clone(),
                        stop_reason: stop_reason.clone(),
                        refusal: refusal.clone(),
                    },
                );
            }
            Event::PtyLaunched {
                step, cli, session, ..
            } => {
                let known = PtySession {
                    cli: cli.clone(),
                    session: session.clone(),
                };
                self.pty_sessions.insert(step.clone(), known);
            }
            Event::PtySession { step, session, .. } => {
                self.pty_sessions.entry(step.clone()).or_default().session = Some(session.clone());
            }
            Event::ProcessStarted {
                step,
                attempt,
                group,
                ..
            } => {
                self.processes
                    .entry((step.clone(), *attempt))
                    .or_default()
                    .push(group.clone());
            }
            Event::ToolStarted {
                step,
                attempt,
                turn,
                position,
                call_id,
                ..
            } => {
                let place = self.place_of(step, *attempt, *turn, *position, call_id, false);
                if let Some(place) = place {
                    self.tools_started.insert(place);
                }
            }
            Event::ToolFinished {
                step,
                attempt,
                turn,
                position,
                call_id,
                output,
                is_error,
                ..
            } => {
                let place = self.place_of(step, *attempt, *turn, *position, call_id, true);
                if let Some(place) = place {
                    self.tools.insert(
                        place,
                        RecordedTool {
                            output: output.clone(),
                            is_error: *is_error,
                        },
                    );
                }
            }
            Event::StepDelegated {
                step, attempt, run, ..
            } => {
                self.delegated
                    .insert(step.clone(), (*attempt, run.clone()));
            }
            Event::StepSucceeded {
                step,
                attempt,
                outputs,
                usage,
                ..
            } => {
                self.add_delegated_usage(step, *attempt, usage);
                self.settle(
                    step,
                    Settled::Succeeded {
                        outputs: outputs.clone().into(),
                    },
                );
            }
            Event::StepFailed {
                step,
                attempt,
                error,
                retry_in_ms,
                usage,
                at,
                ..
            } => {
                self.add_delegated_usage(step, *attempt, usage);
                if let Some(rec) = self.steps.get_mut(step) {
                    rec.retry_in_ms = *retry_in_ms;
                    rec.failed_at_ms = at.0;
                }
                if retry_in_ms.is_none() {
                    self.settle(
                        step,
                        Settled::Failed {
                            error: error.clone(),
                        },
                    );
                } else if let Some(rec) = self.steps.get_mut(step) {
                    // The attempt ended; the next one has not begun.
                    rec.settled = Some(Settled::Failed {
                        error: error.clone(),
                    });
                }
            }
            Event::StepSkipped { step, .. } => self.settle(step, Settled::Skipped),
            Event::StepCancelled { step, .. } => self.settle(step, Settled::Cancelled),
            Event::QuestionAsked { id, .. } => {
                if self.asked.insert(id.clone(), r.clone()).is_none() {
                    self.questions_asked += 1;
                }
            }
            Event::QuestionAnswered {
                id, answer, source, ..
            } => {
                self.answers.insert(id.clone(), (answer.clone(), *source));
            }
            Event::ApprovalRequested { step, .. } => {
                self.approvals_requested.insert(step.clone(), r.clone());
            }
            Event::AnswerProposed {
                id,
                answer: Some(answer),
                auto: true,
                grace_ms,
                usage,
                at,
                ..
            } => {
                self.flowmind_usage.add(usage);
                self.conducted.insert(id.clone(), (answer.clone(), *grace_ms, *at));
            }
            Event::AnswerProposed { usage, .. } => self.flowmind_usage.add(usage),
            Event::ApprovalDecided {
                step,
                approved,
                comment,
                ..
            } => {
                self.approvals
                    .insert(step.clone(), (*approved, comment.clone()));
            }
            Event::InFlightResolved { step, decision, .. } => {
                if let Some(rec) = self.steps.get_mut(step) {
                    rec.decision = Some(*decision);
                }
            }
            Event::AgentMessaged {
                step,
                attempt,
                turn,
                text,
                ..
            } => {
                if let Some(undelivered) = self.flowmind_undelivered.get_mut(step)
                    && let Some(i) = undelivered.iter().position(|t| t == text)
                {
                    undelivered.remove(i);
                }
                self.messages
                    .entry((step.clone(), *attempt, *turn))
                    .or_default()
                    .push(text.clone());
            }
            Event::Worktree { step, fact, .. } => match fact {
                crate::protocol::WorktreeFact::Discarded { .. } => {
                    self.worktrees.remove(step);
                }
                fact => {
                    if let Some(w) = crate::isolation::from_ready(fact) {
                        self.worktrees.insert(step.clone(), w);
                    }
                }
            },
            Event::RunCancelRequested { .. } => self.cancel_requested = true,
            Event::RunFinished { .. } => self.finished = true,
            Event::StepRetryRequested { step, also, .. } => {
                for key in std::iter::once(step).chain(also) {
                    self.unsettle(key);
                }
                // The run goes on: an earlier end or cancel no longer holds.
                self.finished = false;
                self.cancel_requested = false;
            }
            Event::PriceUnknown { model, .. } => {
                self.unpriced_models.insert(model.clone());
            }
            Event::ContextAssembled {
                step,
                attempt,
                turn: 1,
                parts,
                blob,
                ..
            } => {
                self.first_contexts
                    .insert((step.clone(), *attempt), (parts.clone(), blob.clone()));
            }
            Event::ContextAssembled { .. } => {}
            Event::FlowmindLedger { usage, .. } => self.flowmind_usage.add(usage),
            Event::FlowmindFellBack { .. } | Event::FlowmindDismissed { .. } => {}
            Event::FlowmindProposed {
                step,
                title,
                mode,
                why,
                ..
            } => self
                .flowmind_followups
                .entry(step.clone())
                .or_default()
                .push(super::steer::flowmind_proposal(title, mode, why)),
            Event::FlowmindDecided {
                step,
                level,
                text,
                observed,
                ..
            } => match level {
                crate::protocol::FlowmindLevel::Instruct | crate::protocol::FlowmindLevel::Ask => {
                    if *level == crate::protocol::FlowmindLevel::Ask {
                        self.questions_asked += 1;
                    }
                    self.flowmind_undelivered
                        .entry(step.clone())
                        .or_default()
                        .push(super::steer::flowmind_message(*level, text));
                }
                crate::protocol::FlowmindLevel::Replan => {
                    self.swarm.replans.push((step.clone(), observed.clone()));
                }
                crate::protocol::FlowmindLevel::Escalate => {}
            },
            Event::SemanticVerdict {
                step, holds, usage, ..
            } => {
                self.usage.add(usage);
                self.verdicts.insert(step.clone(), *holds);
            }
            Event::McpToolsListed {
                step,
                attempt,
                server,
                tools,
                ..
            } => {
                self.mcp_tools
                    .insert((step.clone(), *attempt, server.clone()), tools.clone());
            }
            Event::AgentAsked {
                step,
                attempt,
                turn,
                ..
            } => {
                self.agent_asked.insert((step.clone(), *attempt, *turn));
                self.questions_asked += 1;
            }
            Event::RunStarted { .. }
            | Event::RunForked { .. }
            | Event::RunResumed { .. }
            | Event::ShellFinished { .. }
            | Event::PtyFinished { .. }
            | Event::EarlierCopyStopped { .. }
            | Event::GuardTripped { .. }
            // A run's MCP servers are started afresh by the process that runs it.
            | Event::McpServerStarted { .. }
            | Event::McpServerDown { .. }
            // Folded into `followups` above.
            | Event::FollowupSpawned { .. }
            | Event::FollowupRefused { .. }
            | Event::CallbacksStopped { .. }
            | Event::RunPaused { .. }
            // Live pauses and stops are not restored: a resumed run runs.
            | Event::PauseRequested { .. }
            | Event::PauseLifted { .. }
            | Event::EmergencyStopped { .. }
            // Endpoint breakers live in the process (one per endpoint, shared
            // by runs); a resumed run starts with the endpoint's current state.
            | Event::ProviderBreaker { .. }
            | Event::LlmRetrying { .. } => {}
            Event::SlotBreaker {
                slot, state, until, ..
            } => {
                self.slot_breakers.insert(*slot, (state.clone(), *until));
            }
            Event::PlanProposed {
                attempt,
                plan,
                problems,
                ..
            } => {
                self.swarm
                    .proposals
                    .insert(*attempt, (plan.clone(), problems.clone()));
            }
            Event::PlanAccepted { plan, edited, .. } => {
                self.swarm.accepted = Some((plan.clone(), *edited));
            }
            Event::PlanRevised {
                stalled,
                replaces,
                plan,
                ..
            } => self.swarm.revisions.push(Revision {
                stalled: stalled.clone(),
                replaces: replaces.clone(),
                plan: plan.clone(),
            }),
            Event::TaskAssigned { task, slot, .. } => {
                self.task_slots.insert(task.clone(), *slot);
            }
        }
    }

    fn settle(&mut self, step: &StepKey, settled: Settled) {
        match self.steps.get_mut(step) {
            Some(rec) => {
                rec.settled = Some(settled);
                rec.retry_in_ms = None;
                // Only an interrupted attempt's process groups are looked
                // for on resume; one that ended waited for its own.
                self.processes.remove(&(step.clone(), rec.attempt));
            }
            None => {
                // Skips and cancels of steps that never started.
                self.steps.insert(
                    step.clone(),
                    StepRecord {
                        attempt: Attempt(0),
                        fingerprint: String::new(),
                        started_seq: 0,
                        key_origin: (0, Attempt(0)),
                        settled: Some(settled),
                        retry_in_ms: None,
                        failed_at_ms: 0,
                        decision: None,
                        retry_requested: false,
                    },
                );
            }
        }
    }

    /// A retried step's recorded outcome stops counting, and so do the
    /// human answers it got (a retried approval or question asks again).
    fn unsettle(&mut self, step: &StepKey) {
        if let Some(rec) = self.steps.get_mut(step) {
            rec.retry_requested = true;
            rec.retry_in_ms = None;
        }
        self.approvals.remove(step);
        self.approvals_requested.remove(step);
        self.answers.remove(step.as_str());
        self.asked.remove(step.as_str());
    }

    /// A step's final outcome, if it reached one (a failure with a retry
    /// pending, or one the user asked to retry, is not final).
    pub fn final_outcome(&self, step: &StepKey) -> Option<&Settled> {
        let rec = self.steps.get(step)?;
        if rec.retry_in_ms.is_some() || rec.retry_requested {
            return None;
        }
        rec.settled.as_ref()
    }

    /// The attempt number a retried step runs next: after every recorded one.
    pub fn next_attempt(&self, step: &StepKey) -> Attempt {
        Attempt(self.steps.get(step).map(|r| r.attempt.0).unwrap_or(0) + 1)
    }
}
