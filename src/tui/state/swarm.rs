//! Swarm runs in the workbench (the fold side): one pane per agent slot
//! instead of one per step, which task each slot runs and which it stole,
//! spend per slot, open circuit breakers, and the plan review's readable
//! plan. Part of the `RunView` fold, driven by `task_assigned`,
//! `slot_breaker` and the `plan-review` question; the tasks stay ordinary
//! steps, so the overview and the timeline keep listing them by step id.

use crate::protocol::{Attempt, Event, Millis, StepKey, StepStatus, Usage};
use crate::swarm::plan::{self};

use super::pane::{LineKind, Pane};
use super::run_view::RunView;
pub use super::run_view::{BreakerShown, BreakerView, PlanReview, TaskSlot};

/// A task as one slot ran it (a slot pane keeps all of them, oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct SlotTask {
    pub task: StepKey,
    pub mode: String,
    /// The slot whose queue the task was stolen from.
    pub stolen_from: Option<u32>,
    /// This task's usage (the pane's usage sums the slot's tasks).
    pub usage: Usage,
}

/// What makes a pane a swarm slot's pane.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotPane {
    pub slot: u32,
    /// Tasks the slot ran, the current one last (never empty).
    pub tasks: Vec<SlotTask>,
    /// The current task was assigned and its step has not started yet: its
    /// `step_started` continues the task's section instead of opening an
    /// attempt separator.
    pub(super) awaiting_start: bool,
}

impl SlotPane {
    pub fn current(&self) -> Option<&SlotTask> {
        self.tasks.last()
    }
}

/// Questions whose id starts with this review a swarm's plan
/// (`plan-review`, then `plan-review-<review>.<edit>` for re-asks).
const REVIEW_ID: &str = "plan-review";
/// The review question ends with this instruction after the plan text.
const REVIEW_TAIL: &str = "\n\nAccept it, regenerate it";

/// The plan under review when question `id` is a plan review.
pub(super) fn plan_review(id: &str, ask: &str) -> Option<Box<PlanReview>> {
    if id != REVIEW_ID && !id.starts_with("plan-review-") {
        return None;
    }
    let edit_text = match ask.rfind(REVIEW_TAIL) {
        Some(i) => &ask[..i],
        None => ask,
    };
    Some(Box::new(PlanReview {
        edit_text: edit_text.to_string(),
        plan: plan::from_edit_text(edit_text).ok(),
    }))
}

impl Pane {
    /// A new pane for `slot`, starting with `task`.
    fn for_slot(slot: u32, task: SlotTask, at: Millis) -> Pane {
        let mut p = Pane::new(
            task.task.clone(),
            "agent".into(),
            Some(task.mode.clone()),
            Attempt(1),
            at,
        );
        p.slot = Some(SlotPane {
            slot,
            tasks: Vec::new(),
            awaiting_start: true,
        });
        p.next_task(task, at);
        p
    }

    /// The slot moves on to `task`: the pane shows it from a separator on,
    /// earlier tasks stay above in the scrollback.
    fn next_task(&mut self, task: SlotTask, at: Millis) {
        let n = self.slot.as_ref().map_or(0, |s| s.tasks.len()) + 1;
        let stolen = task
            .stolen_from
            .map(|s| format!(" · stolen from slot {s}"))
            .unwrap_or_default();
        let separator = format!(
            "── task {} · {} (#{n} on this slot){stolen} ──",
            task.task, task.mode
        );
        self.start_section(task.task.clone(), at);
        self.mode = Some(task.mode.clone());
        self.kind = "agent".into();
        self.note(separator, LineKind::Note);
        if let Some(s) = &mut self.slot {
            s.tasks.push(task);
            s.awaiting_start = true;
        }
    }

    /// The slot's number, for a slot pane.
    pub fn slot_no(&self) -> Option<u32> {
        self.slot.as_ref().map(|s| s.slot)
    }

    /// The current task when this is a slot pane.
    pub fn slot_task(&self) -> Option<&SlotTask> {
        self.slot.as_ref().and_then(SlotPane::current)
    }

    /// The name in tab bars: the step, or the slot and its current task.
    pub fn label(&self) -> String {
        match self.slot_no() {
            Some(n) => format!("s{n} {}", self.step),
            None => self.step.to_string(),
        }
    }

    /// Usage of one reply of `step`: the pane's sum, and the task's.
    pub(super) fn add_usage(&mut self, step: &StepKey, usage: &Usage) {
        self.usage.add(usage);
        if let Some(t) = self.task_mut(step) {
            t.usage.add(usage);
        }
    }

    /// A step's reported usage wins over the sum of its replies when larger
    /// (the engine may count tokens the replies did not report).
    pub(super) fn settle_usage(&mut self, step: &StepKey, usage: &Usage) {
        let Some(t) = self.task_mut(step) else {
            if usage.total_tokens() > self.usage.total_tokens() {
                self.usage = *usage;
            }
            return;
        };
        if usage.total_tokens() <= t.usage.total_tokens() {
            return;
        }
        let more = Usage {
            input_tokens: usage.input_tokens.saturating_sub(t.usage.input_tokens),
            output_tokens: usage.output_tokens.saturating_sub(t.usage.output_tokens),
            cost_usd: (usage.cost_usd - t.usage.cost_usd).max(0.0),
            estimated: usage.estimated.saturating_sub(t.usage.estimated),
        };
        t.usage = *usage;
        self.usage.add(&more);
    }

    fn task_mut(&mut self, step: &StepKey) -> Option<&mut SlotTask> {
        self.slot
            .as_mut()?
            .tasks
            .iter_mut()
            .rev()
            .find(|t| &t.task == step)
    }

    /// True when `step_started` of `step` begins the task just assigned to
    /// this slot (no attempt separator; the task's section is open).
    pub(super) fn take_task_start(&mut self, step: &StepKey) -> bool {
        let current = self.slot_task().is_some_and(|t| &t.task == step);
        match &mut self.slot {
            Some(s) if current && s.awaiting_start => {
                s.awaiting_start = false;
                true
            }
            _ => false,
        }
    }
}

impl RunView {
    /// Folds a swarm event (plan proposed or accepted, task assigned,
    /// breaker changed).
    pub(super) fn apply_swarm(&mut self, event: &Event, at: Millis) {
        match event {
            Event::PlanProposed {
                attempt, problems, ..
            } => {
                self.swarm = true;
                if !problems.is_empty() {
                    self.notes
                        .push(format!("plan #{attempt} rejected: {}", problems.join("; ")));
                }
            }
            Event::PlanAccepted { plan, edited, .. } => {
                self.swarm = true;
                let n = plan
                    .get("tasks")
                    .and_then(serde_json::Value::as_array)
                    .map_or(0, Vec::len);
                let how = if *edited { " (edited)" } else { "" };
                self.notes.push(format!("plan accepted{how}: {n} tasks"));
            }
            Event::PlanRevised {
                revision,
                stalled,
                replaces,
                plan,
                edited,
                ..
            } => {
                let line = crate::protocol::describe::plan_revised(
                    *revision, stalled, replaces, plan, *edited,
                );
                self.notes.push(line);
            }
            Event::TaskAssigned {
                task,
                mode,
                slot,
                stolen_from,
                ..
            } => self.assign(task, mode, *slot, *stolen_from, at),
            Event::SlotBreaker {
                slot,
                state,
                until,
                reason,
                ..
            } => {
                let shown = match state.as_str() {
                    "open" => Some(BreakerShown::Open { until: *until }),
                    "half_open" => Some(BreakerShown::HalfOpen),
                    _ => None,
                };
                match shown {
                    Some(state) => {
                        self.breakers.insert(
                            *slot,
                            BreakerView {
                                state,
                                reason: reason.clone(),
                            },
                        );
                    }
                    None => {
                        self.breakers.remove(slot);
                    }
                }
                let word = state.replace('_', "-");
                if let Some(i) = self.slot_pane(*slot) {
                    let kind = if shown.is_some() {
                        LineKind::Error
                    } else {
                        LineKind::Note
                    };
                    self.panes[i].note(format!("⊘ breaker {word}: {reason}"), kind);
                }
                // An open breaker shows in the status bar until it closes.
                if !matches!(shown, Some(BreakerShown::Open { .. })) {
                    self.notes
                        .push(format!("slot {slot} breaker {word}: {reason}"));
                }
            }
            _ => {}
        }
    }

    /// The pane of swarm slot `slot`, if it has run a task.
    pub fn slot_pane(&self, slot: u32) -> Option<usize> {
        self.panes.iter().position(|p| p.slot_no() == Some(slot))
    }

    /// Usage of one step: a task's alone (over every slot it ran on), not
    /// its slot's.
    pub fn step_usage(&self, step: &StepKey) -> Option<Usage> {
        if !self.assignments.contains_key(step) {
            return self.pane_index(step).map(|i| self.panes[i].usage);
        }
        let mut total = Usage::default();
        for p in self.panes.iter().filter_map(|p| p.slot.as_ref()) {
            for t in p.tasks.iter().filter(|t| &t.task == step) {
                total.add(&t.usage);
            }
        }
        Some(total)
    }

    fn assign(
        &mut self,
        task: &StepKey,
        mode: &str,
        slot: u32,
        stolen_from: Option<u32>,
        at: Millis,
    ) {
        self.swarm = true;
        let before = self
            .assignments
            .insert(task.clone(), TaskSlot { slot, stolen_from });
        if let Some(old) = before.filter(|b| b.slot != slot)
            && let Some(i) = self.slot_pane(old.slot)
            && &self.panes[i].step == task
        {
            // The task goes on elsewhere: its attempt here is over.
            let p = &mut self.panes[i];
            if p.status == StepStatus::Retrying {
                p.status = StepStatus::Failed;
            }
            p.note(format!("↪ {task} moved to slot {slot}"), LineKind::Note);
        }
        // The task is listed (a pending row) before its step starts.
        let _ = self.step_row(task);
        let entry = SlotTask {
            task: task.clone(),
            mode: mode.to_string(),
            stolen_from,
            usage: Usage::default(),
        };
        match self.slot_pane(slot) {
            // Recorded again for the task the slot shows (a resumed run).
            Some(i) if self.panes[i].slot_task().is_some_and(|t| &t.task == task) => {}
            Some(i) => self.panes[i].next_task(entry, at),
            None => {
                // Slot panes follow the other panes (the orchestrator's),
                // in slot order, whichever slot starts first.
                let pos = self
                    .panes
                    .iter()
                    .position(|p| p.slot_no().is_some_and(|n| n > slot))
                    .unwrap_or(self.panes.len());
                let pane = Pane::for_slot(slot, entry, at).with_max_lines(self.scrollback);
                self.panes.insert(pos, pane);
            }
        }
    }
}
