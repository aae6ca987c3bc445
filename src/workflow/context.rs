//! State shared by every step task of one run: dependencies, the recorder,
//! the history found at resume, waiters for human answers, the budget.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use super::EngineDeps;
use super::history::{History, Settled};
use super::holds::Steer;
use super::recorder::Recorder;
use crate::protocol::{Attempt, Event, Millis, PauseReason, StepKey, Usage};
use crate::spec::Limits;

/// An answer handed to a waiting step (already journaled).
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
}

/// An approval decision handed to a waiting step (already journaled).
#[derive(Debug, Clone)]
pub struct Decision {
    pub approved: bool,
    pub comment: String,
}

/// Steps waiting for a human, by question id / step key.
/// `None` means no one will answer: the prompt's timeout policy applies now.
#[derive(Default)]
pub struct Waiters {
    pub questions: BTreeMap<String, oneshot::Sender<Option<Answer>>>,
    pub approvals: BTreeMap<StepKey, oneshot::Sender<Option<Decision>>>,
    /// Agents' questions FlowMind's conductor may answer (journaled
    /// first): the answer stands after the grace period unless the user
    /// answers first.
    pub proposals: BTreeMap<String, oneshot::Sender<Conducted>>,
}

/// FlowMind's answer to an agent's question, and how long the user has
/// to answer instead.
#[derive(Debug, Clone)]
pub struct Conducted {
    pub answer: String,
    pub grace: std::time::Duration,
}

/// Why a run stopped early, shared so no new step starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Halt {
    Paused(PauseReason),
    /// A limit (guard) stopped the run.
    Limit(String),
}

/// A budget limit (`limits.max_tokens`, `max_cost_usd`) the run's spending
/// went over.
#[derive(Debug, Clone, PartialEq)]
pub struct Tripped {
    pub guard: String,
    pub limit: String,
    pub observed: String,
}

impl Tripped {
    /// The `guard_tripped` fact, at `step` when one step's spending did it.
    pub fn event(&self, step: Option<StepKey>, at: crate::protocol::Millis) -> Event {
        Event::GuardTripped {
            guard: self.guard.clone(),
            limit: self.limit.clone(),
            observed: self.observed.clone(),
            step,
            at,
        }
    }

    /// Why the run stopped, as its error says it.
    pub fn why(&self) -> String {
        format!(
            "limit {} ({}) stopped the run: {} used",
            self.guard, self.limit, self.observed
        )
    }
}

pub struct RunCtx {
    pub deps: Arc<EngineDeps>,
    pub rec: Recorder,
    /// `--spread`: agent and shell steps are step runs (`spread`).
    pub spread: bool,
    /// The engine handle's way to other runs (none in bare tests).
    pub other_runs: Option<Arc<dyn super::spread::OtherRuns>>,
    /// Announcements of this run's step runs' appends.
    pub step_runs: super::spread::StepRuns,
    /// A step run's spread run: its memory (`memory://run`) is that run's.
    pub spread_parent: Option<crate::protocol::RunId>,
    /// `--push-to`: the git remote its steps' worktree branches go to.
    pub push_to: Option<String>,
    /// A step run's: what its spread run had spent when it was made,
    /// counted against the budget with this run's own usage.
    pub spent_elsewhere: Usage,
    pub history: History,
    pub limits: Limits,
    pub inputs: BTreeMap<String, Value>,
    /// `run.*` in templates.
    pub run_vars: BTreeMap<String, Value>,
    pub cancel: CancellationToken,
    pub waiters: Mutex<Waiters>,
    /// Answers to up-front questions, `whisper.*` in templates.
    pub whisper: Mutex<BTreeMap<String, Value>>,
    pub usage: Mutex<Usage>,
    pub questions_asked: Mutex<u32>,
    /// Models whose missing price this run has reported (`price_unknown`).
    pub unpriced_said: Mutex<BTreeSet<String>>,
    pub halt: Mutex<Option<Halt>>,
    /// Bounds the agent and shell steps running at once.
    pub slots: Semaphore,
    /// Each running step's own cancellation (a child of `cancel`).
    pub step_cancels: Mutex<BTreeMap<StepKey, CancellationToken>>,
    /// The running `pty` steps' terminals: where keys, sizes and hook
    /// reports for each go.
    pub terminals: Mutex<BTreeMap<StepKey, super::pty::TerminalSender>>,
    /// Ad-hoc programs spawned into the live run, stopped at its end.
    pub adhoc: Mutex<super::pty::Adhoc>,
    /// Root for file tools and relative shell `cwd`s.
    pub workspace: std::path::PathBuf,
    /// `whisper.answer_timeout` of the root workflow.
    pub answer_timeout: std::time::Duration,
    /// Live pauses and agents' message queues.
    pub steer: Steer,
    /// Live retries (`Op::RetryStep`) handed to the root graph.
    pub retry: Retries,
    /// FlowMind's re-plans handed to a swarm's task loop.
    pub replans: Mutex<ReplanGate>,
    /// Follow-ups FlowMind proposed in this process, by step (the
    /// history's are in `history.flowmind_followups`).
    pub flowmind_followups: Mutex<BTreeMap<StepKey, Vec<Value>>>,
    /// Follow-ups spawned and refused so far (the history's, then this
    /// process's), and whether callbacks are stopped.
    pub followups: Mutex<super::followups::Book>,
    /// What the workflow lets agents do with follow-ups.
    pub followup_policy: crate::spec::FollowupPolicy,
    /// The run's MCP servers, shared by its agents (none configured: `None`).
    pub mcp: super::mcp::Shared,
    /// The run's clock: the wall clock read once, then tokio's monotonic
    /// clock (time boxes hold under a paused test clock, and a clock set
    /// back does not stretch them).
    pub clock: RunClock,
}

/// Wall-clock time read once, advanced by tokio's clock.
pub struct RunClock {
    wall: Millis,
    start: tokio::time::Instant,
}

impl RunClock {
    pub fn start() -> RunClock {
        RunClock {
            wall: Millis::now(),
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Millis {
        let since = self.start.elapsed().as_millis() as u64;
        Millis(self.wall.0.saturating_add(since))
    }
}

/// Where FlowMind's re-plans of stalled swarm tasks go: open while a
/// swarm's task loop runs (it knows which tasks run), closed otherwise, so
/// a re-plan is refused before it is journaled when nothing would carry it
/// out.
#[derive(Default)]
pub struct ReplanGate {
    /// The task loop's inbox, while it runs.
    pub tx: Option<tokio::sync::mpsc::UnboundedSender<Replan>>,
    /// The swarm tasks running now.
    pub running: BTreeSet<StepKey>,
    /// Re-plans decided in the run so far (bounded by `MAX_REPLANS`).
    pub decided: u32,
    /// A re-plan is under way: another waits for its end.
    pub busy: bool,
}

/// A stalled swarm task to plan around, with what FlowMind saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Replan {
    pub step: StepKey,
    pub observed: String,
}

impl ReplanGate {
    /// Why a re-plan of `step` cannot be carried out, if it cannot.
    pub fn refusal(&self, step: &StepKey) -> Option<String> {
        if self.tx.is_none() || !self.running.contains(step) {
            Some(format!("`{step}` is not a running swarm task"))
        } else if self.busy {
            Some("a re-plan is under way".to_string())
        } else if self.decided >= crate::protocol::MAX_REPLANS {
            Some(format!(
                "the run has had its {} re-plans",
                crate::protocol::MAX_REPLANS
            ))
        } else {
            None
        }
    }
}

/// Steps retried while this process drives the run, and the way the
/// retries reach the root graph. The gate is closed by the root graph
/// when it ends, under the same lock a retry is recorded with, so a retry
/// is either picked up by the graph or refused, never lost in between.
pub struct Retries {
    /// Each retried step's next attempt; its recorded outcome no longer stands.
    pub attempts: Mutex<BTreeMap<StepKey, Attempt>>,
    /// Outcomes settled in this process inside a retried workflow step
    /// (the history read at start does not have them): its child graph
    /// adopts these instead of running them again.
    pub adopted: Mutex<BTreeMap<StepKey, Settled>>,
    pub gate: tokio::sync::Mutex<RetryGate>,
    /// Taken by the root graph.
    pub inbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<StepKey>>>>,
}

/// Open while the root graph can still take a retry.
pub struct RetryGate {
    pub open: bool,
    pub tx: tokio::sync::mpsc::UnboundedSender<Vec<StepKey>>,
}

impl Default for Retries {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Retries {
            attempts: Mutex::new(BTreeMap::new()),
            adopted: Mutex::new(BTreeMap::new()),
            gate: tokio::sync::Mutex::new(RetryGate { open: true, tx }),
            inbox: Mutex::new(Some(rx)),
        }
    }
}

impl RunCtx {
    /// Cancels running step `step` alone; false when it is not running.
    pub fn cancel_step(&self, step: &StepKey) -> bool {
        let token = self
            .step_cancels
            .lock()
            .ok()
            .and_then(|m| m.get(step).cloned());
        match token {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// The follow-ups FlowMind proposed of `step`, recorded before this
    /// process and since.
    pub fn flowmind_followups(&self, step: &StepKey) -> Vec<Value> {
        let mut all = self
            .history
            .flowmind_followups
            .get(step)
            .cloned()
            .unwrap_or_default();
        if let Ok(m) = self.flowmind_followups.lock()
            && let Some(live) = m.get(step)
        {
            all.extend(live.iter().cloned());
        }
        all
    }

    pub fn halted(&self) -> Option<Halt> {
        self.halt.lock().ok().and_then(|h| h.clone())
    }

    /// Records why the run must stop; the first reason wins.
    pub fn set_halt(&self, halt: Halt) {
        if let Ok(mut h) = self.halt.lock()
            && h.is_none()
        {
            *h = Some(halt);
        }
        // Whatever waits on a pause must see the halt and stop waiting.
        self.steer.nudge();
    }

    pub fn whisper_snapshot(&self) -> BTreeMap<String, Value> {
        self.whisper.lock().map(|w| w.clone()).unwrap_or_default()
    }

    pub fn usage_snapshot(&self) -> Usage {
        self.usage.lock().map(|u| *u).unwrap_or_default()
    }

    /// Adds usage from a new LLM reply; returns the guard that fired, if any.
    pub fn add_usage(&self, u: &Usage) -> Option<Tripped> {
        let mut total = {
            let Ok(mut usage) = self.usage.lock() else {
                return None;
            };
            usage.add(u);
            *usage
        };
        total.add(&self.spent_elsewhere);
        self.over_budget(&total)
    }

    /// The budget limit `total` is over, if any.
    pub fn over_budget(&self, total: &Usage) -> Option<Tripped> {
        if let Some(max) = self.limits.max_tokens
            && total.total_tokens() > max
        {
            return Some(Tripped {
                guard: "max_tokens".into(),
                limit: max.to_string(),
                observed: total.total_tokens().to_string(),
            });
        }
        if let Some(max) = self.limits.max_cost_usd
            && total.cost_usd > max
        {
            return Some(Tripped {
                guard: "max_cost_usd".into(),
                limit: format!("{max:.2}"),
                observed: format!("{:.4}", total.cost_usd),
            });
        }
        None
    }

    /// Whether a reply from `model` should report its missing price: a cost
    /// budget counts, and the run has not said so for this model yet.
    pub fn first_unpriced(&self, model: &str) -> bool {
        if self.limits.max_cost_usd.is_none() {
            return false;
        }
        let Ok(mut said) = self.unpriced_said.lock() else {
            return false;
        };
        said.insert(model.to_string())
    }

    /// The guard event for a question over the run's `max_questions`.
    pub fn max_questions_tripped(&self, step: Option<StepKey>) -> Event {
        Event::GuardTripped {
            guard: "max_questions".into(),
            limit: self.limits.max_questions.to_string(),
            observed: (self.limits.max_questions + 1).to_string(),
            step,
            at: self.now(),
        }
    }

    /// Counts a new question against `max_questions`; false when over.
    pub fn count_question(&self) -> bool {
        let Ok(mut n) = self.questions_asked.lock() else {
            return false;
        };
        *n += 1;
        *n <= self.limits.max_questions
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Reads or changes the run's follow-up book under its lock.
    pub fn followups_book<T>(&self, f: impl FnOnce(&mut super::followups::Book) -> T) -> T {
        let mut book = self
            .followups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut book)
    }

    /// Why callbacks are stopped in this run, once they are.
    pub fn callbacks_stopped(&self) -> Option<String> {
        self.followups_book(|b| b.stopped.clone())
    }

    /// The run whose memory `memory://run` names: a step run shares its
    /// spread run's, as the steps of one run share it.
    pub fn memory_run(&self) -> &crate::protocol::RunId {
        self.spread_parent.as_ref().unwrap_or(self.rec.run())
    }

    /// The attempt a step retried in this process runs next, if it was.
    pub fn retried(&self, step: &StepKey) -> Option<Attempt> {
        self.retry
            .attempts
            .lock()
            .ok()
            .and_then(|m| m.get(step).copied())
    }

    /// The recorded outcome that still stands: none for a step retried in
    /// this process, else one adopted for a retried child graph, else the
    /// one recorded before this process.
    pub fn recorded_outcome(&self, step: &StepKey) -> Option<Cow<'_, Settled>> {
        if self.retried(step).is_some() {
            return None;
        }
        let adopted = self
            .retry
            .adopted
            .lock()
            .ok()
            .and_then(|m| m.get(step).cloned());
        match adopted {
            Some(s) => Some(Cow::Owned(s)),
            None => self.history.final_outcome(step).map(Cow::Borrowed),
        }
    }
}
