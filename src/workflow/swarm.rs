//! Swarm runs (`lev workflow "objective"`): the orchestrator agent plans,
//! the plan is checked (and re-asked, within a bound), the user reviews it,
//! then its tasks run as agent steps on N agent slots with local queues and
//! work stealing (`crate::swarm::scheduler`).
//!
//! Every decision is a journaled event, so a killed swarm resumes like any
//! run: plans proposed (`plan_proposed`) and accepted (`plan_accepted`), the
//! review answer (`question_answered`), each task's slot (`task_assigned`)
//! and each slot breaker change (`slot_breaker`). Tasks are ordinary agent
//! steps keyed by their task id: their LLM replies and tool results are
//! reused on resume and a finished task never runs again.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;

use super::chains::Chains;
use super::context::{Halt, RunCtx};
use super::followups;
use super::frontier::Frontier;
use super::graph::{GraphEnd, view_of};
use super::history::Settled;
use super::human::{self, Ask};
use super::step::{self, StepEnd};
use crate::protocol::describe;
use crate::protocol::{Event, Millis, RunStatus, StepKey};
use crate::spec::expr::{EvalContext, StepView, Template};
use crate::spec::{self, Choice, ModeRegistry, Step, StepKind, Workflow};
use crate::swarm::plan::{self, Plan};
use crate::swarm::scheduler::{BreakerState, Scheduler, SlotId};

mod planning;
mod replan;

use planning::accepted_plan;

/// The workflow id every swarm run is pinned to.
pub const WORKFLOW_ID: &str = "swarm";
/// The step that plans (its first attempt; re-asks are `plan-2`, ...).
pub const PLAN_STEP: &str = "plan";
/// Answers to "review the plan" beyond accept/regenerate are edited plans.
const ACCEPT: &str = "accept";
const REGENERATE: &str = "regenerate";
/// How many times the user may ask for a new plan.
const MAX_REGENERATIONS: u32 = 3;

/// What a swarm run was started with; pinned with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmSpec {
    pub objective: String,
    /// Agent slots (`--agents`).
    pub agents: u32,
    /// Most tasks a plan may have.
    pub max_tasks: u32,
    /// Orchestrator answers checked before the run gives up.
    pub plan_attempts: u32,
    /// `--worktrees`: each task whose mode can write files works in its
    /// own git worktree and branch.
    #[serde(default)]
    pub worktrees: bool,
    /// `--base`: the branch those worktrees start from (default: the one
    /// checked out in the workspace).
    #[serde(default)]
    pub base: Option<String>,
}

impl SwarmSpec {
    pub fn new(objective: &str, agents: u32) -> SwarmSpec {
        SwarmSpec {
            objective: objective.trim().to_string(),
            agents: agents.clamp(1, 64),
            max_tasks: 24,
            plan_attempts: 3,
            worktrees: false,
            base: None,
        }
    }
}

/// The workflow a swarm run is pinned to: one orchestrator step whose
/// prompt names the objective and the modes the plan may use, and limits
/// (the agent slots are the run's `max_parallel`).
pub fn swarm_workflow(
    spec: &SwarmSpec,
    modes: &ModeRegistry,
    max_tokens: Option<u64>,
    max_cost_usd: Option<f64>,
) -> Result<Workflow, String> {
    if spec.objective.is_empty() {
        return Err("the objective is empty: say what the swarm should do".into());
    }
    if !modes.contains("orchestrator") {
        return Err("no `orchestrator` mode is defined (lev modes lists the modes)".into());
    }
    let prompt = plan::escape_template(&plan::planning_prompt(
        &spec.objective,
        modes,
        spec.max_tasks as usize,
    ));
    let mut limits = format!("limits:\n  max_parallel: {}\n", spec.agents.max(1));
    if let Some(t) = max_tokens {
        limits.push_str(&format!("  max_tokens: {t}\n"));
    }
    if let Some(c) = max_cost_usd {
        limits.push_str(&format!("  max_cost_usd: {c}\n"));
    }
    let name: String = spec.objective.chars().take(60).collect();
    let text = format!(
        "version: 1\nkind: workflow\nid: {WORKFLOW_ID}\nname: {name}\ndescription: {desc}\n{limits}steps:\n  {PLAN_STEP}:\n    type: agent\n    mode: orchestrator\n    prompt: {prompt}\n",
        name = json_str(&plan::escape_template(&name)),
        desc = json_str(&format!("lev workflow: {}", spec.objective)),
        prompt = json_str(&prompt),
    );
    spec::load::load_workflow_str(Path::new("lev-workflow.yaml"), &text, modes)
        .map_err(|d| format!("the swarm's planning workflow is invalid (a bug): {d}"))
}

/// A JSON string literal, which YAML reads as the same double-quoted scalar.
fn json_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Plans, reviews and executes the swarm; returns how it ended.
pub async fn execute(ctx: Arc<RunCtx>, wf: Arc<Workflow>, spec: SwarmSpec) -> GraphEnd {
    let Some(plan_step) = wf.step(PLAN_STEP).cloned() else {
        return failed("the swarm run's definition has no plan step".into());
    };
    let accepted = match accepted_plan(&ctx, &plan_step, &spec).await {
        Ok(plan) => plan,
        Err(end) => return end,
    };
    let plan = match replan::with_revisions(&ctx, accepted) {
        Ok(plan) => plan,
        Err(e) => return failed(e),
    };
    let end = run_tasks(ctx.clone(), &spec, &plan_step, plan).await;
    if let Ok(mut gate) = ctx.replans.lock() {
        gate.tx = None;
        gate.running.clear();
    }
    end
}

fn failed(error: String) -> GraphEnd {
    GraphEnd {
        status: RunStatus::Failed,
        outputs: BTreeMap::new(),
        error: Some(error),
    }
}

fn stopped(ctx: &RunCtx) -> Option<GraphEnd> {
    if ctx.cancel.is_cancelled() {
        return Some(GraphEnd {
            status: RunStatus::Cancelled,
            outputs: BTreeMap::new(),
            error: Some("cancelled".into()),
        });
    }
    match ctx.halted() {
        Some(Halt::Paused(reason)) => Some(GraphEnd {
            status: RunStatus::Paused,
            outputs: BTreeMap::new(),
            error: Some(describe::pause(&reason)),
        }),
        Some(Halt::Limit(why)) => Some(failed(why)),
        None => None,
    }
}

fn eval_context(ctx: &RunCtx, steps: BTreeMap<String, StepView>) -> EvalContext {
    EvalContext {
        inputs: ctx.inputs.clone(),
        steps,
        whisper: ctx.whisper_snapshot(),
        item: None,
        run: ctx.run_vars.clone(),
        needs_failed: false,
        needs_cancelled: false,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TaskState {
    Waiting,
    Queued,
    Running,
    Done(Settled),
    /// Not started because the run stopped.
    Stopped,
    /// Given way to a revised plan's tasks (FlowMind's re-plan).
    Replaced,
}

/// What a swarm task gives back: a task's end on its slot, or the
/// follow-ups a succeeded task spawned (by its index on the board).
enum Joined {
    Task(SlotId, String, StepEnd),
    Followups(usize, Vec<followups::Child>),
}

/// Runs the accepted plan's tasks on the agent slots, and the follow-ups
/// they spawn as tasks of their own.
async fn run_tasks(
    ctx: Arc<RunCtx>,
    spec: &SwarmSpec,
    plan_step: &Step,
    mut plan: Plan,
) -> GraphEnd {
    let steps = plan::to_steps(&spec.objective, &plan)
        .and_then(|steps| in_terminals(&ctx.deps.modes, steps));
    let mut steps = match steps {
        Ok(steps) => steps,
        Err(e) => return failed(format!("the accepted plan cannot run: {e}")),
    };
    if spec.worktrees {
        isolate_writers(&ctx.deps.modes, &mut steps, spec.base.as_deref());
    }
    let slots = spec.agents.max(1) as usize;
    let breaker = &ctx.limits.circuit_breaker;
    let mut sched = Scheduler::new(
        slots,
        breaker.consecutive_failures.max(1),
        breaker.cooldown.as_millis() as u64,
    );
    let mut board = Board::new(&steps);
    // Tasks recorded revisions replaced: shown as such, their ids taken.
    for r in &ctx.history.swarm.revisions {
        for id in &r.replaces {
            board.states.insert(id.clone(), TaskState::Replaced);
        }
    }
    let mut tasks: JoinSet<Joined> = JoinSet::new();
    // FlowMind's re-plans: one decided before a crash and not yet revised,
    // then those decided from now on (the gate is closed by `execute`).
    let mut pending = replan::pending(&ctx);
    let mut revision = replan::next_revision(&ctx);
    let (replan_tx, mut replans) = tokio::sync::mpsc::unbounded_channel();
    if let Ok(mut gate) = ctx.replans.lock() {
        gate.tx = Some(replan_tx);
        gate.decided = ctx.history.swarm.replans.len() as u32;
        gate.busy = pending.is_some();
    }

    // Breakers as last recorded; tasks finished in an earlier process are
    // adopted, and one started but not finished goes back on its slot first.
    for (slot, (state, until)) in &ctx.history.slot_breakers {
        let state = match (state.as_str(), until) {
            ("open", Some(until)) => BreakerState::Open { until: *until },
            ("half_open", _) => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        };
        let _ = sched.adopt_breaker(SlotId(*slot as usize), state);
    }
    // Tasks an adopted outcome made ready: a task whose needs finished but
    // that had not started (or whose unsynced start a crash lost) runs now.
    let mut ready: Vec<String> = Vec::new();
    for s in &steps {
        let key = StepKey::new(s.id.clone());
        if let Some(settled) = ctx.history.final_outcome(&key) {
            ready.extend(board.task_settled(&ctx, &mut tasks, &s.id, settled.clone()));
        } else if pending.as_ref().is_some_and(|p| p.step == key) {
            // Stopped for the re-plan under way: it does not run again.
        } else if ctx.history.steps.contains_key(&key)
            && let Some(slot) = ctx.history.task_slots.get(&key)
            && (*slot as usize) < slots
        {
            let slot = SlotId(*slot as usize);
            if sched.adopt_running(&s.id, mode_of(s), slot).is_ok() {
                board.states.insert(s.id.clone(), TaskState::Running);
                let eval = board.eval_for(&ctx, s);
                spawn_task(&ctx, &mut tasks, slot, s.clone(), eval, None, None);
                running(&ctx, &s.id, true);
            }
        }
    }
    ready.extend(board.take_ready());
    ready.retain(|id| board.is_waiting(id));

    loop {
        let halted = ctx.cancel.is_cancelled() || ctx.halted().is_some();
        // While a re-plan waits for the running tasks, nothing new starts.
        if !halted && pending.is_none() {
            board.adopt_followups(&ctx, &mut tasks, &mut ready);
            board.release(&ctx, &mut ready, &mut sched).await;
            let now = ctx.now();
            for slot in sched.idle_slots() {
                let Some(a) = sched.next(slot, now) else {
                    continue;
                };
                let Some(step) = board.steps.get(&a.task) else {
                    continue;
                };
                // Recorded by the task itself, before its first entry: the
                // slots' assignments share commits instead of queueing here.
                let assigned = Event::TaskAssigned {
                    task: StepKey::new(a.task.clone()),
                    mode: mode_of(step).to_string(),
                    slot: a.slot.0 as u32,
                    stolen_from: a.stolen_from.map(|s| s.0 as u32),
                    at: now,
                };
                let eval = board.eval_for(&ctx, step);
                let deadline = board.deadline(&a.task);
                let step = step.clone();
                board.states.insert(a.task.clone(), TaskState::Running);
                let id = step.id.clone();
                spawn_task(
                    &ctx,
                    &mut tasks,
                    a.slot,
                    step,
                    eval,
                    Some(assigned),
                    deadline,
                );
                running(&ctx, &id, true);
            }
        }
        if tasks.is_empty() {
            if !halted && let Some(stalled) = pending.take() {
                let revised = revise(
                    &ctx, spec, plan_step, &plan, &mut board, &mut sched, &stalled, revision,
                )
                .await;
                match revised {
                    Ok(Some(merged)) => plan = merged,
                    Ok(None) => {}
                    Err(end) => return end,
                }
                revision += 1;
                ready.extend(board.take_ready());
                if let Ok(mut gate) = ctx.replans.lock() {
                    gate.busy = false;
                }
                continue;
            }
            if halted || !board.any_queued() {
                break;
            }
            // Every slot's breaker is open: wait for the first probe.
            let now = ctx.now();
            let wake = sched.next_wake(now).unwrap_or(Millis(now.0 + 1000));
            let delay = Duration::from_millis(wake.0.saturating_sub(now.0).max(10));
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = ctx.cancel.cancelled() => {}
            }
            continue;
        }
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            Some(stalled) = replans.recv() => {
                // Stopped now; planned around once the others finished.
                ctx.cancel_step(&stalled.step);
                pending = Some(stalled);
                continue;
            }
        };
        let Some(joined) = joined else {
            break;
        };
        let (slot, id, end) = match joined {
            Ok(Joined::Task(slot, id, end)) => (slot, id, end),
            Ok(Joined::Followups(parent, children)) => {
                ready.extend(board.add_followups(parent, children));
                continue;
            }
            Err(_) => {
                tracing::error!("a swarm task panicked");
                continue;
            }
        };
        running(&ctx, &id, false);
        match end {
            StepEnd::Settled(settled) => {
                // Stopped for a re-plan: not the slot's failure.
                let replanned = pending.as_ref().is_some_and(|p| p.step.as_str() == id);
                let ok = replanned || matches!(settled, Settled::Succeeded { .. });
                if let Ok(Some(change)) = sched.finished(slot, &id, ok, ctx.now()) {
                    record_breaker(&ctx, change).await;
                }
                if board.is_followup(&id) {
                    followups::settled(&ctx, &StepKey::new(id.clone()), &settled).await;
                }
                ready.extend(board.task_settled(&ctx, &mut tasks, &id, settled));
            }
            StepEnd::Paused(reason) => {
                ctx.set_halt(Halt::Paused(reason));
                board.states.insert(id, TaskState::Stopped);
            }
        }
    }
    finish(&ctx, &plan, &board)
}

/// Marks a swarm task running (or not) for FlowMind's re-plans: only a
/// running task can be re-planned.
fn running(ctx: &RunCtx, id: &str, on: bool) {
    if let Ok(mut gate) = ctx.replans.lock() {
        let key = StepKey::new(id.to_string());
        if on {
            gate.running.insert(key);
        } else {
            gate.running.remove(&key);
        }
    }
}

/// Plans the unfinished work again around `stalled` (every task has
/// ended): journals the revision and puts its tasks on the board in place
/// of the stalled one and those not started. `Ok(None)` when the stalled
/// task succeeded before it was stopped: nothing is re-planned.
#[allow(clippy::too_many_arguments)]
async fn revise(
    ctx: &Arc<RunCtx>,
    spec: &SwarmSpec,
    plan_step: &Step,
    plan: &Plan,
    board: &mut Board,
    sched: &mut Scheduler,
    stalled: &super::context::Replan,
    revision: u32,
) -> Result<Option<Plan>, GraphEnd> {
    let id = stalled.step.as_str();
    let succeeded = matches!(
        board.states.get(id),
        Some(TaskState::Done(Settled::Succeeded { .. }))
    );
    let record = |replaces: Vec<String>, plan: Value, edited: bool| Event::PlanRevised {
        revision,
        stalled: stalled.step.clone(),
        replaces,
        plan,
        edited,
        at: ctx.now(),
    };
    if succeeded {
        if let Err(e) = ctx.rec.record(record(Vec::new(), Value::Null, false)).await {
            return Err(failed(format!("journal: {e}")));
        }
        return Ok(None);
    }
    if !matches!(board.states.get(id), Some(TaskState::Done(_))) {
        // Stopped before a crash could record it (or not started at all).
        let _ = ctx
            .rec
            .record(Event::StepCancelled {
                step: stalled.step.clone(),
                at: ctx.now(),
            })
            .await;
    }
    let mut replaced = vec![id.to_string()];
    let mut finished = Vec::new();
    let mut outside = plan::Outside::default();
    for task in &plan.tasks {
        outside.taken.insert(task.id.clone());
        match board.states.get(&task.id) {
            Some(TaskState::Done(settled)) if task.id != id => {
                let (how, _) = status_of(board.states.get(&task.id));
                if matches!(settled, Settled::Succeeded { .. }) {
                    outside.succeeded.insert(task.id.clone());
                }
                let report = result_of(&board.views, &task.id);
                finished.push((
                    task.id.clone(),
                    how,
                    report.as_str().unwrap_or("").to_string(),
                ));
            }
            Some(TaskState::Waiting | TaskState::Queued) if task.id != id => {
                replaced.push(task.id.clone());
            }
            _ => {}
        }
    }
    // Every id the run used (follow-ups and tasks replaced before) stays taken.
    outside.taken.extend(board.states.keys().cloned());
    let stall = plan::Stall {
        objective: &spec.objective,
        plan,
        stalled: id,
        observed: &stalled.observed,
        finished: &finished,
        replaced: &replaced,
    };
    let (revised, edited) =
        replan::revise(ctx, plan_step, spec, &stall, &outside, revision).await?;
    let value = serde_json::to_value(&revised).unwrap_or(Value::Null);
    if let Err(e) = ctx
        .rec
        .record(record(replaced.clone(), value, edited))
        .await
    {
        return Err(failed(format!("journal: {e}")));
    }
    let merged = plan::with_revision(plan, &replaced, &revised);
    let steps = plan::to_steps(&spec.objective, &merged)
        .and_then(|steps| in_terminals(&ctx.deps.modes, steps));
    let steps = match steps {
        Ok(steps) => steps,
        Err(e) => return Err(failed(format!("the revised plan cannot run: {e}"))),
    };
    let new: HashSet<&str> = revised.tasks.iter().map(|t| t.id.as_str()).collect();
    let mut added: Vec<Step> = steps
        .into_iter()
        .filter(|s| new.contains(s.id.as_str()))
        .collect();
    if spec.worktrees {
        isolate_writers(&ctx.deps.modes, &mut added, spec.base.as_deref());
    }
    board.replace(&replaced, added, sched);
    Ok(Some(merged))
}

async fn record_breaker(ctx: &RunCtx, change: crate::swarm::scheduler::BreakerChange) {
    let moved = match change.moved.len() {
        0 => String::new(),
        n => format!("; {n} queued task(s) moved to other slots"),
    };
    let event = Event::SlotBreaker {
        slot: change.slot.0 as u32,
        state: breaker_name(&change.to).into(),
        until: match change.to {
            BreakerState::Open { until } => Some(until),
            _ => None,
        },
        reason: format!("{}{moved}", change.reason),
        at: ctx.now(),
    };
    let _ = ctx.rec.record(event).await;
}

/// Where every task stands, and which tasks wait on which: readiness costs
/// O(edges) over the whole run, not a scan of every task per completion.
struct Board {
    /// Every task: the plan's, then follow-ups as they are spawned.
    steps: BTreeMap<String, Step>,
    states: BTreeMap<String, TaskState>,
    views: BTreeMap<String, StepView>,
    /// Which tasks may be queued: the readiness plain workflows use too.
    frontier: Frontier,
    /// Follow-ups (after the plan's tasks in the frontier), their parents,
    /// and the tasks still waiting for theirs.
    chains: Chains,
    /// Task ids by their position in the frontier, and back.
    ids: Vec<String>,
    index: BTreeMap<String, usize>,
    needs: BTreeMap<String, Vec<String>>,
}

impl Board {
    fn new(steps: &[Step]) -> Board {
        Board {
            steps: steps.iter().map(|s| (s.id.clone(), s.clone())).collect(),
            states: steps
                .iter()
                .map(|s| (s.id.clone(), TaskState::Waiting))
                .collect(),
            views: BTreeMap::new(),
            frontier: Frontier::new(steps),
            chains: Chains::default(),
            ids: steps.iter().map(|s| s.id.clone()).collect(),
            index: steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.clone(), i))
                .collect(),
            needs: steps
                .iter()
                .map(|s| (s.id.clone(), s.needs.clone()))
                .collect(),
        }
    }

    fn is_waiting(&self, id: &str) -> bool {
        self.states.get(id) == Some(&TaskState::Waiting)
    }

    fn any_queued(&self) -> bool {
        self.states.values().any(|s| *s == TaskState::Queued)
    }

    fn is_followup(&self, id: &str) -> bool {
        self.index
            .get(id)
            .is_some_and(|&i| self.chains.child(i).is_some())
    }

    /// When a follow-up's chain's time box ends.
    fn deadline(&self, id: &str) -> Option<tokio::time::Instant> {
        let i = *self.index.get(id)?;
        self.chains.child(i).map(|c| c.deadline)
    }

    /// Records how a task ended (now, or in an earlier process). A task
    /// that succeeded with follow-ups to decide has them decided in a task
    /// of their own, and the tasks that need it wait until they settle;
    /// otherwise returns the tasks it was the last need of.
    fn task_settled(
        &mut self,
        ctx: &Arc<RunCtx>,
        tasks: &mut JoinSet<Joined>,
        id: &str,
        settled: Settled,
    ) -> Vec<String> {
        // `parent_of` reads the task's own view.
        self.views.insert(id.to_string(), view_of(&settled, false));
        let Some(parent) = self.parent_of(ctx, id, &settled) else {
            return self.settle(id, settled);
        };
        self.states.insert(id.to_string(), TaskState::Done(settled));
        if let Some(&i) = self.index.get(id) {
            let ctx = ctx.clone();
            tasks.spawn(async move {
                Joined::Followups(i, followups::decide_guarded(&ctx, &parent).await)
            });
        }
        self.take_ready()
    }

    /// Records how a task ended with nothing to wait for; returns the tasks
    /// it (and the parents it was the last follow-up of) released.
    fn settle(&mut self, id: &str, settled: Settled) -> Vec<String> {
        self.views.insert(id.to_string(), view_of(&settled, false));
        self.states.insert(id.to_string(), TaskState::Done(settled));
        if let Some(&i) = self.index.get(id) {
            self.chains.release(i, &mut self.frontier);
        }
        self.take_ready()
    }

    /// The task `id` as a parent of follow-ups, when it succeeded and its
    /// agent proposed any.
    fn parent_of(&self, ctx: &RunCtx, id: &str, settled: &Settled) -> Option<followups::Parent> {
        let Settled::Succeeded { outputs } = settled else {
            return None;
        };
        let step = self.steps.get(id)?;
        if step.followups.is_none() && !outputs.contains_key(followups::PROPOSALS) {
            return None;
        }
        let key = StepKey::new(id.to_string());
        let (depth, root) = self.chains.depth_and_root(*self.index.get(id)?, &key);
        let mut eval = self.eval_for(ctx, step);
        if let Some(own) = self.views.get(id) {
            eval.steps.insert(id.to_string(), own.clone());
        }
        Some(followups::Parent {
            key,
            step: step.clone(),
            depth,
            root,
            eval,
            outputs: outputs.clone(),
        })
    }

    /// The follow-ups the task at `parent` spawned become tasks, ready at
    /// once; returns what is ready now (the parent's dependents too, when
    /// it spawned none).
    fn add_followups(&mut self, parent: usize, children: Vec<followups::Child>) -> Vec<String> {
        let children: Vec<followups::Child> = children
            .into_iter()
            .filter(|c| !self.states.contains_key(&c.step.id))
            .collect();
        let ids: Vec<String> = children.iter().map(|c| c.step.id.clone()).collect();
        for c in &children {
            self.steps.insert(c.step.id.clone(), c.step.clone());
            self.states.insert(c.step.id.clone(), TaskState::Waiting);
            self.needs.insert(c.step.id.clone(), Vec::new());
        }
        let added = self.chains.add(parent, children, &mut self.frontier);
        for (i, id) in added.into_iter().zip(ids) {
            debug_assert_eq!(i, self.ids.len());
            self.index.insert(id.clone(), i);
            self.ids.push(id);
        }
        self.take_ready()
    }

    /// A revised plan: the `replaced` tasks give way (taken off the
    /// queues), and the `added` tasks (needs first) wait for their needs
    /// that have not ended.
    fn replace(&mut self, replaced: &[String], added: Vec<Step>, sched: &mut Scheduler) {
        for id in replaced {
            if self.states.get(id) == Some(&TaskState::Queued) {
                sched.withdraw(id);
            }
            self.states.insert(id.clone(), TaskState::Replaced);
        }
        for step in added {
            let unsettled: Vec<usize> = step
                .needs
                .iter()
                .filter(|n| !matches!(self.states.get(n.as_str()), Some(TaskState::Done(_))))
                .filter_map(|n| self.index.get(n).copied())
                .collect();
            let i = self.frontier.add_waiting(&unsettled);
            debug_assert_eq!(i, self.ids.len());
            let id = step.id.clone();
            self.index.insert(id.clone(), i);
            self.ids.push(id.clone());
            self.needs.insert(id.clone(), step.needs.clone());
            self.states.insert(id.clone(), TaskState::Waiting);
            self.steps.insert(id, step);
        }
    }

    /// Ready follow-ups that finished in an earlier process keep their
    /// outcome (and make their own follow-ups again from the journal).
    fn adopt_followups(
        &mut self,
        ctx: &Arc<RunCtx>,
        tasks: &mut JoinSet<Joined>,
        ready: &mut Vec<String>,
    ) {
        let mut work: std::collections::VecDeque<String> = std::mem::take(ready).into();
        while let Some(id) = work.pop_front() {
            let recorded = (self.is_followup(&id) && self.is_waiting(&id))
                .then(|| ctx.recorded_outcome(&StepKey::new(id.clone())))
                .flatten()
                .map(|s| s.into_owned());
            match recorded {
                Some(settled) => work.extend(self.task_settled(ctx, tasks, &id, settled)),
                None => ready.push(id),
            }
        }
    }

    /// The tasks whose needs have all settled since the last call.
    fn take_ready(&mut self) -> Vec<String> {
        let mut ready = Vec::new();
        while let Some(i) = self.frontier.take_ready() {
            ready.push(self.ids[i].clone());
        }
        ready
    }

    /// Queues each ready task whose needs all succeeded; skips (recorded,
    /// like a graph's skipped step) one with a need that did not, which may
    /// make its own dependents ready in turn.
    async fn release(&mut self, ctx: &RunCtx, ready: &mut Vec<String>, sched: &mut Scheduler) {
        let mut work: std::collections::VecDeque<String> = ready.drain(..).collect();
        while let Some(id) = work.pop_front() {
            if !self.is_waiting(&id) {
                continue;
            }
            let failed_need = self.needs.get(&id).into_iter().flatten().find(|n| {
                !matches!(
                    self.states.get(*n),
                    Some(TaskState::Done(Settled::Succeeded { .. }))
                )
            });
            if let Some(need) = failed_need {
                let reason = format!("needed task `{need}` did not succeed");
                step::record_skip(ctx, StepKey::new(id.clone()), reason).await;
                work.extend(self.settle(&id, Settled::Skipped));
            } else if let Some(step) = self.steps.get(&id) {
                sched.enqueue(&id, mode_of(step));
                self.states.insert(id, TaskState::Queued);
            }
        }
    }

    /// What a task's brief may read: its upstream tasks' results.
    fn eval_for(&self, ctx: &RunCtx, step: &Step) -> EvalContext {
        let upstream = step
            .needs
            .iter()
            .filter_map(|n| Some((n.clone(), self.views.get(n)?.clone())))
            .collect();
        eval_context(ctx, upstream)
    }
}

/// Tasks whose mode's agent is a CLI run it in a terminal (`pty` steps).
fn in_terminals(modes: &ModeRegistry, steps: Vec<Step>) -> Result<Vec<Step>, String> {
    steps
        .into_iter()
        .map(|mut s| {
            s.kind = s
                .kind
                .in_terminal(modes)
                .map_err(|(_, why)| format!("task `{}`: {why}", s.id))?;
            Ok(s)
        })
        .collect()
}

/// `--worktrees`: every task whose mode may write files (an agent CLI
/// may) gets its own worktree.
fn isolate_writers(modes: &ModeRegistry, steps: &mut [Step], base: Option<&str>) {
    for s in steps {
        let writes = matches!(s.kind, StepKind::Pty { .. })
            || modes.get(mode_of(s)).is_some_and(|m| {
                crate::tools::specs(&m.tools_allow, &m.tools_deny)
                    .iter()
                    .any(|t| t.name == "write_file" || t.name == "edit_file")
            });
        if writes {
            s.workspace = Some(spec::Workspace {
                worktree: true,
                base: base.map(str::to_string),
            });
        }
    }
}

fn mode_of(step: &Step) -> &str {
    step.kind.mode().unwrap_or("")
}

fn breaker_name(state: &BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open { .. } => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

/// Runs one task on `slot`: records its assignment first (when new), then
/// the step itself (a follow-up within its chain's time box).
fn spawn_task(
    ctx: &Arc<RunCtx>,
    tasks: &mut JoinSet<Joined>,
    slot: SlotId,
    step: Step,
    eval: EvalContext,
    assigned: Option<Event>,
    deadline: Option<tokio::time::Instant>,
) {
    let (ctx, id) = (ctx.clone(), step.id.clone());
    tasks.spawn(async move {
        if let Some(event) = assigned
            && let Err(e) = ctx.rec.record(event).await
        {
            let error = format!("journal: {e}");
            return Joined::Task(slot, id, StepEnd::Settled(Settled::Failed { error }));
        }
        let key = StepKey::new(id.clone());
        let run = {
            let (ctx, key) = (ctx.clone(), key.clone());
            async move {
                match deadline {
                    Some(deadline) => followups::run_in_box(ctx, key, step, eval, deadline).await,
                    None => step::run_step(ctx, key, step, eval).await,
                }
            }
        };
        Joined::Task(slot, id, step::guarded(ctx, key, run).await)
    });
}

/// The run's end: failed when a task failed, paused/cancelled when stopped,
/// else succeeded with each task's result.
fn finish(ctx: &RunCtx, plan: &Plan, board: &Board) -> GraphEnd {
    let (states, views) = (&board.states, &board.views);
    if let Some(end) = stopped(ctx) {
        return end;
    }
    let mut results = serde_json::Map::new();
    let mut failures = Vec::new();
    for task in &plan.tasks {
        let (status, failure) = status_of(states.get(&task.id));
        if let Some(failure) = failure {
            failures.push(format!("task `{}` {failure}", task.id));
        }
        results.insert(
            task.id.clone(),
            serde_json::json!({ "status": status, "mode": task.mode, "result": result_of(views, &task.id) }),
        );
    }
    // Follow-ups are shown, and their failures counted by the chain
    // breaker, but they do not fail the run.
    let mut spawned = serde_json::Map::new();
    for id in board.ids.iter().filter(|id| board.is_followup(id)) {
        let mode = board.steps.get(id).map(mode_of).unwrap_or_default();
        spawned.insert(
            id.clone(),
            serde_json::json!({ "status": status_of(states.get(id)).0, "mode": mode, "result": result_of(views, id) }),
        );
    }
    let mut outputs = BTreeMap::from([
        ("summary".to_string(), Value::String(plan.summary.clone())),
        ("tasks".to_string(), Value::Object(results)),
    ]);
    if !spawned.is_empty() {
        outputs.insert("followups".to_string(), Value::Object(spawned));
    }
    // Tasks a revised plan replaced: shown, never run again.
    let replaced: Vec<Value> = board
        .states
        .iter()
        .filter(|(_, s)| **s == TaskState::Replaced)
        .map(|(id, _)| Value::String(id.clone()))
        .collect();
    if !replaced.is_empty() {
        outputs.insert("replaced".to_string(), Value::Array(replaced));
    }
    match failures.first() {
        Some(first) => GraphEnd {
            status: RunStatus::Failed,
            outputs,
            error: Some(first.clone()),
        },
        None => GraphEnd {
            status: RunStatus::Succeeded,
            outputs,
            error: None,
        },
    }
}

/// A task's status word, and what to say when it makes the run fail.
fn status_of(state: Option<&TaskState>) -> (&'static str, Option<String>) {
    match state {
        Some(TaskState::Done(Settled::Succeeded { .. })) => ("succeeded", None),
        Some(TaskState::Done(Settled::Failed { error })) => {
            ("failed", Some(format!("failed: {error}")))
        }
        Some(TaskState::Done(Settled::Skipped)) => ("skipped", None),
        Some(TaskState::Done(Settled::Cancelled)) => ("cancelled", Some("was cancelled".into())),
        Some(TaskState::Replaced) => ("replaced", None),
        _ => ("not run", None),
    }
}

/// A task's final text, or null.
fn result_of(views: &BTreeMap<String, StepView>, id: &str) -> Value {
    views
        .get(id)
        .and_then(|v| v.outputs.get("text"))
        .cloned()
        .unwrap_or(Value::Null)
}
