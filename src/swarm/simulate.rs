//! A discrete-event simulation of a swarm: a task set (durations, needs,
//! modes, failures) run through the [`Scheduler`] in simulated time.
//!
//! It drives the scheduler the way the swarm driver does — enqueue a task
//! when its needs are done, offer work to every idle slot, report each end,
//! retry a failed task on another slot, wait for [`Scheduler::next_wake`]
//! when only open breakers hold work back — with no agents and no clock, so
//! tests can check makespans against the ideal schedule and benchmarks can
//! measure the scheduler alone.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::scheduler::{Assignment, BreakerChange, Scheduler, SlotId};
use crate::protocol::Millis;

/// One task of a simulated swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTask {
    pub name: String,
    pub mode: String,
    /// How long one attempt runs, in milliseconds.
    pub duration: u64,
    /// Names of tasks that must succeed first.
    pub needs: Vec<String>,
}

impl SimTask {
    /// A task with no needs.
    pub fn new(name: impl Into<String>, mode: impl Into<String>, duration: u64) -> SimTask {
        SimTask {
            name: name.into(),
            mode: mode.into(),
            duration,
            needs: Vec::new(),
        }
    }
}

/// The swarm's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    pub slots: usize,
    pub failures_to_open: u32,
    pub cooldown_ms: u64,
    pub stealing: bool,
    /// Attempts per task before it counts as failed (0 reads as 1).
    pub max_attempts: u32,
}

impl SimConfig {
    /// `slots` slots, breakers after 3 failures for 1 s, stealing on, three
    /// attempts per task.
    pub fn new(slots: usize) -> SimConfig {
        SimConfig {
            slots,
            failures_to_open: 3,
            cooldown_ms: 1000,
            stealing: true,
            max_attempts: 3,
        }
    }
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRun {
    pub assignment: Assignment,
    pub start: Millis,
    pub end: Millis,
    pub ok: bool,
}

/// What a simulation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOutcome {
    /// When the last attempt ended (0 for no tasks).
    pub makespan: u64,
    /// Every attempt in the order it started.
    pub runs: Vec<SimRun>,
    pub breaker_changes: Vec<(Millis, BreakerChange)>,
    /// Tasks that used up their attempts.
    pub failed: Vec<String>,
    /// Tasks that never became ready (a need failed, or a cycle).
    pub blocked: Vec<String>,
}

/// A task set that cannot be simulated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("task `{task}` needs `{need}`, which is not in the task set")]
    UnknownNeed { task: String, need: String },
    #[error("task `{0}` appears twice in the task set")]
    Duplicate(String),
    #[error("the scheduler refused a call: {0}")]
    Scheduler(#[from] super::scheduler::SchedError),
}

/// Runs `tasks` from time 0. `fails(task, slot, start)` says whether the
/// attempt of `task` on `slot` that starts at `start` fails. Tasks become
/// ready in the order given, and so are enqueued in that order.
pub fn simulate(
    tasks: &[SimTask],
    cfg: &SimConfig,
    mut fails: impl FnMut(&str, SlotId, Millis) -> bool,
) -> Result<SimOutcome, SimError> {
    let mut index = HashMap::with_capacity(tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        if index.insert(t.name.as_str(), i).is_some() {
            return Err(SimError::Duplicate(t.name.clone()));
        }
    }
    let mut waiting = vec![0usize; tasks.len()];
    let mut dependents = vec![Vec::new(); tasks.len()];
    for (i, t) in tasks.iter().enumerate() {
        for need in &t.needs {
            let Some(&n) = index.get(need.as_str()) else {
                return Err(SimError::UnknownNeed {
                    task: t.name.clone(),
                    need: need.clone(),
                });
            };
            waiting[i] += 1;
            dependents[n].push(i);
        }
    }

    let mut sched = Scheduler::new(cfg.slots, cfg.failures_to_open, cfg.cooldown_ms)
        .with_stealing(cfg.stealing);
    let mut out = SimOutcome {
        makespan: 0,
        runs: Vec::new(),
        breaker_changes: Vec::new(),
        failed: Vec::new(),
        blocked: Vec::new(),
    };
    let mut attempts = vec![0u32; tasks.len()];
    let mut done = vec![false; tasks.len()];
    // (end, slot, index into out.runs): ties end in slot order.
    let mut ends: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
    for (i, t) in tasks.iter().enumerate() {
        if waiting[i] == 0 {
            sched.enqueue(&t.name, &t.mode);
        }
    }
    let mut now = 0u64;
    loop {
        for slot in sched.idle_slots() {
            if let Some(a) = sched.next(slot, Millis(now)) {
                let i = index.get(a.task.as_str()).copied().unwrap_or_default();
                let end = now.saturating_add(tasks[i].duration);
                let ok = !fails(&a.task, slot, Millis(now));
                ends.push(Reverse((end, slot.0, out.runs.len())));
                out.runs.push(SimRun {
                    assignment: a,
                    start: Millis(now),
                    end: Millis(end),
                    ok,
                });
            }
        }
        let Some(&Reverse((end, _, _))) = ends.peek() else {
            match sched.next_wake(Millis(now)) {
                Some(wake) => {
                    now = wake.0;
                    continue;
                }
                None => break,
            }
        };
        // Work held back by an open breaker may start before the next end.
        if let Some(wake) = sched.next_wake(Millis(now)).filter(|w| w.0 < end) {
            now = wake.0;
            continue;
        }
        now = end;
        out.makespan = now;
        while let Some(&Reverse((end, _, r))) = ends.peek() {
            if end != now {
                break;
            }
            ends.pop();
            let run = &out.runs[r];
            let (slot, ok) = (run.assignment.slot, run.ok);
            let i = index
                .get(run.assignment.task.as_str())
                .copied()
                .unwrap_or_default();
            if let Some(change) = sched.finished(slot, &tasks[i].name, ok, Millis(now))? {
                out.breaker_changes.push((Millis(now), change));
            }
            if ok {
                done[i] = true;
                for &d in &dependents[i] {
                    waiting[d] -= 1;
                    if waiting[d] == 0 {
                        sched.enqueue(&tasks[d].name, &tasks[d].mode);
                    }
                }
            } else {
                attempts[i] += 1;
                if attempts[i] < cfg.max_attempts.max(1) {
                    sched.enqueue_avoiding(&tasks[i].name, &tasks[i].mode, slot);
                } else {
                    out.failed.push(tasks[i].name.clone());
                }
            }
        }
    }
    let failed: std::collections::HashSet<&str> = out.failed.iter().map(String::as_str).collect();
    out.blocked = tasks
        .iter()
        .enumerate()
        .filter(|(i, t)| !done[*i] && !failed.contains(t.name.as_str()))
        .map(|(_, t)| t.name.clone())
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests;
