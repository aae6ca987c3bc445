//! Which agent slot runs which task, and when a slot is trusted with work.
//!
//! The swarm has `--agents N` slots; each slot is one pane running one task
//! at a time and owning a local FIFO queue of tasks that are ready (their
//! needs are done) but not started. This module owns those queues and the
//! per-slot circuit breakers. It is pure: no I/O, no clock reads, no
//! randomness, no iteration over hash maps. Time comes in as the
//! [`Millis`] the driver read and journaled, so the same calls in the same
//! order give the same decisions — the driver replays them on resume and
//! journals what they returned ([`Assignment`], [`BreakerChange`], [`Move`]).
//!
//! Choices, each deliberate:
//! - **Placement** ([`Scheduler::enqueue`]): breaker class first (closed,
//!   then half-open with its probe running, then open), then least load
//!   (queued + running), then, between open slots, the earliest end of the
//!   cooldown, then mode affinity, then the lowest id. Load ranks before
//!   affinity: an idle slot never waits while a task queues behind a busy
//!   same-mode slot (that would make stealing, and its noise in the
//!   timeline, the normal path); affinity decides between equally loaded
//!   slots, which is where it is free.
//! - **Affinity**: a slot has affinity with the mode it runs or ran last
//!   and with the modes of the tasks in its queue. The last mode, not every
//!   mode ever run, because what it buys is a warm pane (same system
//!   prompt, same prompt cache), which only the latest conversation has.
//! - **Stealing** ([`Scheduler::next`]): an idle slot with an empty queue
//!   takes the back (newest, never started) of the longest other queue;
//!   ties go to a victim whose back task is of a mode the thief has
//!   affinity with, then to the lowest id. Any slot may run any mode. A
//!   victim that is idle and could start its only queued task itself is
//!   left alone: taking it would be a steal that saves nothing.
//! - **Breakers**: `failures_to_open` failures in a row (0 reads as 1, as
//!   for the endpoint breakers in `llm::resilient`) open a slot for
//!   `cooldown_ms`; its queued tasks move to other slots that are not open
//!   (none move when every other slot is open too). Past the cooldown the
//!   slot reads half-open and its next task is a probe; the probe's success
//!   closes the breaker, its failure opens it again for another cooldown.
//!   A slot runs one task at a time, so half-open lets exactly one through.
//! - **Waiting**: when every slot with queued work is open, `next` returns
//!   `None` everywhere and [`Scheduler::next_wake`] says when to ask again.
//!
//! Task names are the caller's unique keys (step keys); the scheduler does
//! not check for duplicates, the driver's DAG already guarantees them.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::Millis;

/// One agent slot (one pane), numbered from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlotId(pub usize);

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {}", self.0)
    }
}

/// A decision of [`Scheduler::next`]: `slot` starts `task` now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub task: String,
    pub slot: SlotId,
    /// The slot whose queue the task was taken from, when it was stolen
    /// (pane titles and the timeline show it).
    pub stolen_from: Option<SlotId>,
    /// The task is the half-open probe of `slot`'s breaker: its outcome
    /// closes or reopens the breaker.
    pub probe: bool,
}

/// A slot's circuit breaker as a status bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    /// No work is given to the slot before `until`.
    Open {
        until: Millis,
    },
    /// The cooldown is over: the next task is (or is running as) a probe.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerState::Closed => f.write_str("closed"),
            BreakerState::Open { until } => write!(f, "open until {}", until.utc()),
            BreakerState::HalfOpen => f.write_str("half-open"),
        }
    }
}

/// A queued task moved from one slot's queue to another's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub task: String,
    pub from: SlotId,
    pub to: SlotId,
}

/// A breaker transition, for the journal and the status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerChange {
    pub slot: SlotId,
    pub from: BreakerState,
    pub to: BreakerState,
    /// Why, in words a user reads in the timeline.
    pub reason: String,
    /// Queued tasks moved off the slot because it opened, in queue order.
    pub moved: Vec<Move>,
}

/// A call that does not fit the scheduler's state: a driver bug or a
/// journal that does not match the run (the driver reports it as such).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    #[error("there is no agent {slot}: the swarm has {slots} slot(s)")]
    NoSuchSlot { slot: SlotId, slots: usize },
    #[error("{slot} is not running task `{task}` (it runs {})", running.as_deref().unwrap_or("nothing"))]
    NotRunning {
        slot: SlotId,
        task: String,
        running: Option<String>,
    },
    #[error("{slot} already runs `{running}`, so it cannot adopt `{task}`")]
    Busy {
        slot: SlotId,
        task: String,
        running: String,
    },
}

/// Modes are interned: a slot compares and counts small ids, not strings.
type ModeId = u32;

#[derive(Debug, Clone)]
struct Task {
    name: String,
    mode: ModeId,
}

/// The stored breaker; [`BreakerState`] is what it reads as at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Closed {
        failures: u32,
    },
    Open {
        until: Millis,
    },
    /// Half-open with its probe running.
    Probing,
}

#[derive(Debug, Clone)]
struct Slot {
    queue: VecDeque<Task>,
    running: Option<Task>,
    /// The mode of the task it runs or ran last.
    last_mode: Option<ModeId>,
    /// How many queued tasks of each mode (entries at 0 are removed).
    queued_modes: HashMap<ModeId, u32>,
    health: Health,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            queue: VecDeque::new(),
            running: None,
            last_mode: None,
            queued_modes: HashMap::new(),
            health: Health::Closed { failures: 0 },
        }
    }

    fn load(&self) -> usize {
        self.queue.len() + usize::from(self.running.is_some())
    }

    fn has_affinity(&self, mode: ModeId) -> bool {
        self.last_mode == Some(mode) || self.queued_modes.contains_key(&mode)
    }

    fn push(&mut self, task: Task) {
        *self.queued_modes.entry(task.mode).or_insert(0) += 1;
        self.queue.push_back(task);
    }

    fn forget_queued(&mut self, mode: ModeId) {
        if let Some(n) = self.queued_modes.get_mut(&mode) {
            *n -= 1;
            if *n == 0 {
                self.queued_modes.remove(&mode);
            }
        }
    }

    fn pop_front(&mut self) -> Option<Task> {
        let task = self.queue.pop_front()?;
        self.forget_queued(task.mode);
        Some(task)
    }

    fn pop_back(&mut self) -> Option<Task> {
        let task = self.queue.pop_back()?;
        self.forget_queued(task.mode);
        Some(task)
    }

    /// Placement rank by breaker: closed, half-open, then open.
    fn class(&self) -> u8 {
        match self.health {
            Health::Closed { .. } => 0,
            Health::Probing => 1,
            Health::Open { .. } => 2,
        }
    }

    /// Among open slots of equal load, the one that recovers first. Needs
    /// no clock: an open slot past its cooldown has the earliest `until`.
    fn recovers_at(&self) -> u64 {
        match self.health {
            Health::Open { until } => until.0,
            _ => 0,
        }
    }

    fn open_at(&self, now: Millis) -> bool {
        matches!(self.health, Health::Open { until } if now < until)
    }

    fn state(&self, now: Millis) -> BreakerState {
        match self.health {
            Health::Closed { .. } => BreakerState::Closed,
            Health::Open { until } if now < until => BreakerState::Open { until },
            Health::Open { .. } | Health::Probing => BreakerState::HalfOpen,
        }
    }
}

/// The scheduling core of one swarm run; see the module docs.
#[derive(Debug, Clone)]
pub struct Scheduler {
    slots: Vec<Slot>,
    modes: HashMap<String, ModeId>,
    failures_to_open: u32,
    cooldown_ms: u64,
    stealing: bool,
    queued: usize,
}

impl Scheduler {
    /// `slots` agent slots (at least one: 0 reads as 1), each opening its
    /// breaker after `failures_to_open` failures in a row (0 reads as 1)
    /// for `cooldown_ms`.
    pub fn new(slots: usize, failures_to_open: u32, cooldown_ms: u64) -> Scheduler {
        Scheduler {
            slots: vec![Slot::new(); slots.max(1)],
            modes: HashMap::new(),
            failures_to_open: failures_to_open.max(1),
            cooldown_ms,
            stealing: true,
            queued: 0,
        }
    }

    /// With `false`, idle slots only run their own queue (for comparison in
    /// tests and benchmarks; a swarm always steals).
    #[must_use]
    pub fn with_stealing(mut self, on: bool) -> Scheduler {
        self.stealing = on;
        self
    }

    /// How many slots the swarm has.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// How many tasks wait in all queues together.
    pub fn queued_len(&self) -> usize {
        self.queued
    }

    /// A task whose needs are done goes onto the local queue of the best
    /// slot (see the module docs for the order); returns that slot.
    pub fn enqueue(&mut self, task: &str, mode: &str) -> SlotId {
        let mode = self.intern(mode);
        let to = self.best_slot(mode, None);
        self.push(to, task.to_string(), mode);
        to
    }

    /// Like [`Scheduler::enqueue`], but not onto `avoid` unless every other
    /// slot is in a worse breaker class: a retry after a failure moves to
    /// another slot.
    pub fn enqueue_avoiding(&mut self, task: &str, mode: &str, avoid: SlotId) -> SlotId {
        let mode = self.intern(mode);
        let to = match (self.best_slot(mode, Some(avoid)), self.slots.get(avoid.0)) {
            (other, Some(own)) if own.class() < self.slots[other.0].class() => avoid,
            (other, _) => other,
        };
        self.push(to, task.to_string(), mode);
        to
    }

    /// Takes `task` off whichever queue holds it (a task a revised plan
    /// replaced); false when it is queued nowhere.
    pub fn withdraw(&mut self, task: &str) -> bool {
        for slot in &mut self.slots {
            if let Some(at) = slot.queue.iter().position(|t| t.name == task)
                && let Some(t) = slot.queue.remove(at)
            {
                slot.forget_queued(t.mode);
                self.queued -= 1;
                return true;
            }
        }
        false
    }

    /// An idle slot asks for work at `now`: its own queue's front, else a
    /// stolen task (see the module docs). `None` when the slot is busy or
    /// unknown, its breaker is open, or nothing is queued that it may take.
    /// Past the cooldown the task handed out is the breaker's probe.
    pub fn next(&mut self, slot: SlotId, now: Millis) -> Option<Assignment> {
        let own = self.slots.get(slot.0)?;
        if own.running.is_some() || own.open_at(now) {
            return None;
        }
        let probe = !matches!(own.health, Health::Closed { .. });
        let (task, stolen_from) = match self.slots[slot.0].pop_front() {
            Some(task) => (task, None),
            None if self.stealing => {
                let victim = self.victim(slot, now)?;
                let task = self.slots[victim.0].pop_back()?;
                (task, Some(victim))
            }
            None => return None,
        };
        self.queued -= 1;
        let own = &mut self.slots[slot.0];
        if probe {
            own.health = Health::Probing;
        }
        own.last_mode = Some(task.mode);
        let name = task.name.clone();
        own.running = Some(task);
        Some(Assignment {
            task: name,
            slot,
            stolen_from,
            probe,
        })
    }

    /// The driver tells how the task `slot` runs ended at `now`. Returns the
    /// breaker transition it caused, if any (with the queued tasks moved
    /// off the slot when it opened).
    pub fn finished(
        &mut self,
        slot: SlotId,
        task: &str,
        ok: bool,
        now: Millis,
    ) -> Result<Option<BreakerChange>, SchedError> {
        let slots = self.slots.len();
        let s = self
            .slots
            .get_mut(slot.0)
            .ok_or(SchedError::NoSuchSlot { slot, slots })?;
        if s.running.as_ref().is_none_or(|t| t.name != task) {
            return Err(SchedError::NotRunning {
                slot,
                task: task.to_string(),
                running: s.running.as_ref().map(|t| t.name.clone()),
            });
        }
        s.running = None;
        let change = match (s.health, ok) {
            (Health::Closed { .. }, true) => {
                s.health = Health::Closed { failures: 0 };
                None
            }
            (Health::Closed { failures }, false) => {
                let failures = failures.saturating_add(1);
                if failures >= self.failures_to_open {
                    let reason = format!("{failures} failure(s) in a row, the last `{task}`");
                    Some(self.open(slot, BreakerState::Closed, now, reason))
                } else {
                    s.health = Health::Closed { failures };
                    None
                }
            }
            (Health::Probing, true) => {
                s.health = Health::Closed { failures: 0 };
                Some(BreakerChange {
                    slot,
                    from: BreakerState::HalfOpen,
                    to: BreakerState::Closed,
                    reason: format!("probe `{task}` succeeded"),
                    moved: Vec::new(),
                })
            }
            (Health::Probing, false) => {
                let reason = format!("probe `{task}` failed");
                Some(self.open(slot, BreakerState::HalfOpen, now, reason))
            }
            // Only an adopted task can end on an open slot; the breaker's
            // recorded state stands.
            (Health::Open { .. }, _) => None,
        };
        Ok(change)
    }

    /// On resume: a task the journal says is running on `slot`.
    pub fn adopt_running(
        &mut self,
        task: &str,
        mode: &str,
        slot: SlotId,
    ) -> Result<(), SchedError> {
        let mode = self.intern(mode);
        let slots = self.slots.len();
        let s = self
            .slots
            .get_mut(slot.0)
            .ok_or(SchedError::NoSuchSlot { slot, slots })?;
        if let Some(running) = &s.running {
            return Err(SchedError::Busy {
                slot,
                task: task.to_string(),
                running: running.name.clone(),
            });
        }
        s.running = Some(Task {
            name: task.to_string(),
            mode,
        });
        s.last_mode = Some(mode);
        Ok(())
    }

    /// On resume: the breaker state the journal last recorded for `slot`.
    /// Half-open with a task running (adopt it first) makes that task the
    /// probe; half-open and idle lets the next task probe. The count of
    /// failures in a row of a closed breaker starts again at 0.
    pub fn adopt_breaker(&mut self, slot: SlotId, state: BreakerState) -> Result<(), SchedError> {
        let slots = self.slots.len();
        let s = self
            .slots
            .get_mut(slot.0)
            .ok_or(SchedError::NoSuchSlot { slot, slots })?;
        s.health = match state {
            BreakerState::Closed => Health::Closed { failures: 0 },
            BreakerState::Open { until } => Health::Open { until },
            BreakerState::HalfOpen if s.running.is_some() => Health::Probing,
            BreakerState::HalfOpen => Health::Open { until: Millis(0) },
        };
        Ok(())
    }

    /// The breaker of `slot` as it reads at `now` (an open breaker past its
    /// cooldown reads half-open). An unknown slot reads closed.
    pub fn breaker(&self, slot: SlotId, now: Millis) -> BreakerState {
        self.slots
            .get(slot.0)
            .map_or(BreakerState::Closed, |s| s.state(now))
    }

    /// When to call [`Scheduler::next`] again although no task ends before:
    /// the earliest end of a cooldown after `now` of an idle open slot, while
    /// tasks are queued. `None` when nothing is queued or no cooldown is
    /// pending (then work only waits for running tasks, or for nothing).
    pub fn next_wake(&self, now: Millis) -> Option<Millis> {
        if self.queued == 0 {
            return None;
        }
        self.slots
            .iter()
            .filter(|s| s.running.is_none())
            .filter_map(|s| match s.health {
                Health::Open { until } if until > now => Some(until),
                _ => None,
            })
            .min()
    }

    /// Slots running nothing, lowest id first (their breakers may be open).
    pub fn idle_slots(&self) -> Vec<SlotId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.running.is_none())
            .map(|(i, _)| SlotId(i))
            .collect()
    }

    /// The tasks queued on `slot`, front (next to run) first.
    pub fn queue(&self, slot: SlotId) -> Vec<&str> {
        self.slots.get(slot.0).map_or_else(Vec::new, |s| {
            s.queue.iter().map(|t| t.name.as_str()).collect()
        })
    }

    /// The task `slot` runs, if any.
    pub fn running(&self, slot: SlotId) -> Option<&str> {
        self.slots
            .get(slot.0)?
            .running
            .as_ref()
            .map(|t| t.name.as_str())
    }

    fn intern(&mut self, mode: &str) -> ModeId {
        if let Some(&id) = self.modes.get(mode) {
            return id;
        }
        let id = ModeId::try_from(self.modes.len()).unwrap_or(ModeId::MAX);
        self.modes.insert(mode.to_string(), id);
        id
    }

    fn push(&mut self, to: SlotId, name: String, mode: ModeId) {
        self.slots[to.0].push(Task { name, mode });
        self.queued += 1;
    }

    /// The placement order of the module docs, over every slot but `skip`.
    /// With a single slot and `skip` set to it, that slot.
    fn best_slot(&self, mode: ModeId, skip: Option<SlotId>) -> SlotId {
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(SlotId(*i)) != skip)
            .min_by_key(|(i, s)| {
                let affinity = s.has_affinity(mode);
                (s.class(), s.load(), s.recovers_at(), !affinity, *i)
            })
            .map_or(skip.unwrap_or(SlotId(0)), |(i, _)| SlotId(i))
    }

    /// The slot `thief` steals from at `now`, if any (see the module docs).
    fn victim(&self, thief: SlotId, now: Millis) -> Option<SlotId> {
        let me = &self.slots[thief.0];
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != thief.0 && !s.queue.is_empty())
            .filter(|(_, s)| s.running.is_some() || s.open_at(now) || s.queue.len() >= 2)
            .min_by_key(|(i, s)| {
                let back = s.queue.back().map(|t| t.mode);
                let affinity = back.is_some_and(|m| me.has_affinity(m));
                (std::cmp::Reverse(s.queue.len()), !affinity, *i)
            })
            .map(|(i, _)| SlotId(i))
    }

    /// Opens `slot`'s breaker at `now` and moves its queued tasks to slots
    /// that are not open, each by the placement order.
    fn open(
        &mut self,
        slot: SlotId,
        from: BreakerState,
        now: Millis,
        reason: String,
    ) -> BreakerChange {
        let until = Millis(now.0.saturating_add(self.cooldown_ms));
        self.slots[slot.0].health = Health::Open { until };
        let mut moved = Vec::new();
        while let Some(front) = self.slots[slot.0].queue.front() {
            let to = self.best_slot(front.mode, Some(slot));
            if to == slot || matches!(self.slots[to.0].health, Health::Open { .. }) {
                break;
            }
            let Some(task) = self.slots[slot.0].pop_front() else {
                break;
            };
            moved.push(Move {
                task: task.name.clone(),
                from: slot,
                to,
            });
            self.slots[to.0].push(task);
        }
        BreakerChange {
            slot,
            from,
            to: BreakerState::Open { until },
            reason,
            moved,
        }
    }
}

#[cfg(test)]
mod tests;
