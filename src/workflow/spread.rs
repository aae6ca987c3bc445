//! Spread runs (`lev run --spread`): one run's steps shared by the `lev
//! worker`s of a PostgreSQL journal.
//!
//! The spread run's process stays its scheduler: it judges `if:`, follows
//! `needs:`, makes follow-ups and asks its questions. A ready agent or
//! shell step becomes a *step run*: a run of its own whose one step is
//! this one (`RunStarted.step_of`, with the results its templates read),
//! which any worker whose `--modes` take it claims like any run — under a
//! lease renewed by heartbeat, taken over when its worker dies, its step
//! following the in-flight rules there. The spread run records
//! `StepDelegated` (the step run's id) before it makes the step run, so a
//! spread run resumed elsewhere finds it again and never makes a second;
//! when the step run ends, its step's outcome (outputs, error, usage) is
//! recorded in the spread run as the step's own.
//!
//! A step run's own facts (model replies, tool calls, output) are in its
//! own journal (`lev show STEP-RUN`); its questions are its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::context::{Halt, RunCtx, Tripped};
use super::history::Settled;
use super::kinds;
use super::recorder;
use super::step::{self, StepEnd};
use super::{EngineError, RunOutcome};
use crate::journal::{JournalError, RunMeta};
use crate::protocol::{
    Attempt, Event, Millis, Op, RunId, RunStatus, StepKey, StepOf, StepOutline, Usage,
};
use crate::spec::expr::{EvalContext, StepView};
use crate::spec::{Step, StepKind};

/// How often a step run is looked at without an announcement of its
/// appends (one lost with a listening connection that dropped).
const LOOK_AGAIN: Duration = Duration::from_secs(2);
/// How long a cancelled step waits for its step run to end before the
/// spread run records the cancel anyway.
const CANCEL_PATIENCE: Duration = Duration::from_secs(30);

/// How the engine reaches runs other than the one it drives, through the
/// engine handle (ops in): a spread run cancels or stops its step runs.
pub trait OtherRuns: Send + Sync {
    fn submit(&self, op: Op) -> futures::future::BoxFuture<'static, Result<(), String>>;
}

/// A run's announcements of its step runs' appends: one listening
/// connection for all its step runs, made on first use, closed with the
/// run.
#[derive(Default)]
pub struct StepRuns {
    appended: tokio::sync::OnceCell<Option<broadcast::Sender<RunId>>>,
    stop: CancellationToken,
    /// The step runs being waited for, by step: where a step's ops go.
    live: std::sync::Mutex<BTreeMap<StepKey, RunId>>,
    /// What the step runs in flight have spent so far, as last read from
    /// their journals (the run's budget counts it before they end).
    spending: std::sync::Mutex<BTreeMap<RunId, Usage>>,
}

impl Drop for StepRuns {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl StepRuns {
    async fn subscribe(
        &self,
        journal: &crate::journal::Journal,
    ) -> Option<broadcast::Receiver<RunId>> {
        let stop = self.stop.clone();
        let sender = self
            .appended
            .get_or_init(|| async move {
                let mut appends = match journal.follow_appends().await {
                    Ok(Some(rx)) => rx,
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot follow step runs; looking at them every {}s", LOOK_AGAIN.as_secs());
                        return None;
                    }
                };
                let (tx, _) = broadcast::channel(256);
                let forward = tx.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => break,
                            got = appends.recv() => match got {
                                Some((run, _)) => { let _ = forward.send(run); }
                                None => break,
                            },
                        }
                    }
                });
                Some(tx)
            })
            .await;
        sender.as_ref().map(broadcast::Sender::subscribe)
    }
}

/// Sends an op for one step of this run (`lev message`, pausing an agent)
/// to the step run that executes it: `None` when the step is not one
/// (the op is this run's own), else what the step run said.
pub async fn forward(ctx: &RunCtx, op: &Op) -> Option<Result<(), String>> {
    let step = match op {
        Op::Message { step, .. } => step,
        Op::Pause {
            step: Some(step), ..
        }
        | Op::Unpause {
            step: Some(step), ..
        } => step,
        _ => return None,
    };
    let child = ctx.step_runs.live.lock().ok()?.get(step).cloned()?;
    let op = match op.clone() {
        Op::Message { step, text, .. } => Op::Message {
            run: child.clone(),
            step,
            text,
        },
        Op::Pause { step, .. } => Op::Pause {
            run: child.clone(),
            step,
        },
        Op::Unpause { step, .. } => Op::Unpause {
            run: child.clone(),
            step,
        },
        _ => return None,
    };
    let Some(runs) = &ctx.other_runs else {
        return Some(Err(
            "this process has no engine handle to reach it with".into()
        ));
    };
    Some(
        runs.submit(op)
            .await
            .map_err(|e| format!("step run {child}: {e}")),
    )
}

/// Whether `step` of this run is executed as a step run.
pub fn delegates(ctx: &RunCtx, step: &Step) -> bool {
    ctx.spread && matches!(step.kind, StepKind::Agent { .. } | StepKind::Shell { .. })
}

/// What a worker's `--modes` match for `step`: its agent mode, or `shell`.
fn mode_of(step: &Step) -> &str {
    match &step.kind {
        StepKind::Agent { mode, .. } => mode,
        _ => "shell",
    }
}

/// Executes `step` of a spread run as a step run and records its outcome
/// here (see the module's note).
pub async fn delegate(
    ctx: Arc<RunCtx>,
    key: StepKey,
    step: Step,
    eval: EvalContext,
    cancel: CancellationToken,
) -> StepEnd {
    let kind = kinds::of(&step.kind);
    let work = match kind.render(&step, &ctx.workspace, &eval) {
        Ok(w) => w,
        Err(e) => return StepEnd::Settled(step::fail_without_attempt(&ctx, &key, e).await),
    };
    let mode = mode_of(&step).to_owned();
    let recorded = ctx.history.steps.get(&key);
    let retried = ctx.retried(&key);
    // The step run of an attempt a crash interrupted here is found again.
    let found = match (recorded, ctx.history.delegated.get(&key)) {
        (Some(rec), Some((attempt, run)))
            if retried.is_none()
                && !rec.retry_requested
                && rec.settled.is_none()
                && rec.attempt == *attempt =>
        {
            Some((*attempt, run.clone()))
        }
        _ => None,
    };
    // A step run counts against the run's parallelism as a local step does.
    let _permit = ctx.slots.acquire().await.ok();
    let attached = found.is_some();
    let (attempt, child) = match found {
        Some(found) => found,
        None => {
            let attempt = retried
                .or_else(|| recorded.map(|r| Attempt(r.attempt.0 + 1)))
                .unwrap_or(Attempt(1));
            let child = RunId::new();
            let started = Event::StepStarted {
                step: key.clone(),
                attempt,
                fingerprint: step::fingerprint(&step, work.as_ref()),
                kind: step.kind.name().to_string(),
                mode: work.mode().map(str::to_string),
                idempotent: step.idempotent || !kind.side_effects(),
                hints: Vec::new(),
                at: ctx.now(),
            };
            let delegated = Event::StepDelegated {
                step: key.clone(),
                attempt,
                run: child.clone(),
                work: mode.clone(),
                at: ctx.now(),
            };
            // Both durable before the step run exists: a crash in between
            // leaves an intent that a resume carries out (below), never a
            // step run nothing knows of.
            let intent = async {
                ctx.rec.record_unsynced(started).await?;
                ctx.rec.record(delegated).await
            };
            if let Err(e) = intent.await {
                return StepEnd::Settled(Settled::Failed {
                    error: format!("journal: {e}"),
                });
            }
            (attempt, child)
        }
    };
    let of = StepOf {
        parent: ctx.rec.run().clone(),
        step: key.clone(),
        attempt,
        spec: match serde_json::to_value(&step) {
            Ok(v) => v,
            Err(e) => {
                let error = format!("lev could not write down step `{key}` for a worker: {e}");
                return fail(&ctx, key, attempt, &child, error).await;
            }
        },
        steps: eval
            .steps
            .iter()
            .map(|(id, view)| (id.clone(), (view.succeeded, view.outputs.to_map())))
            .collect(),
        item: eval.item.clone(),
        run_vars: eval.run.clone(),
        whisper: eval.whisper.clone(),
        spent: spent(&ctx),
    };
    if let Err(e) = make_step_run(&ctx, &child, of, &mode).await {
        let error = format!("making step run {child} failed: {e}");
        return fail(&ctx, key, attempt, &child, error).await;
    }
    tracing::info!(step = %key, run = %child, "step executed as a step run");
    if let Ok(mut live) = ctx.step_runs.live.lock() {
        live.insert(key.clone(), child.clone());
    }
    let ended = wait_for_end(&ctx, &child, &cancel, attached).await;
    if let Ok(mut live) = ctx.step_runs.live.lock() {
        live.remove(&key);
    }
    if let Ok(mut spending) = ctx.step_runs.spending.lock() {
        // Counted in the run's own usage from here (`settle`).
        spending.remove(&child);
    }
    let ended = match ended {
        Ok(ended) => ended,
        Err(e) => {
            let error = format!("following step run {child} failed: {e}");
            return fail(&ctx, key, attempt, &child, error).await;
        }
    };
    settle(&ctx, key, attempt, &child, ended).await
}

/// The step failed here, not in its step run (which is cancelled, if it
/// exists: nothing waits for it any more): recorded as the step's failure.
async fn fail(
    ctx: &RunCtx,
    key: StepKey,
    attempt: Attempt,
    child: &RunId,
    error: String,
) -> StepEnd {
    if let Some(runs) = &ctx.other_runs
        && let Err(e) = runs.submit(Op::Cancel { run: child.clone() }).await
    {
        tracing::debug!(run = %child, error = %e, "step run not cancelled");
    }
    let event = Event::StepFailed {
        step: key,
        attempt,
        error: error.clone(),
        retry_in_ms: None,
        usage: Usage::default(),
        at: ctx.now(),
    };
    // A journal that fails here fails the run's recording too: the run
    // stops as at a crash, and a resume waits for the step run again.
    let _ = ctx.rec.record(event).await;
    StepEnd::Settled(Settled::Failed { error })
}

/// Makes the step run `child` (unless a crash came after it was made) and
/// lets go of it for the workers.
async fn make_step_run(ctx: &RunCtx, child: &RunId, of: StepOf, mode: &str) -> Result<(), String> {
    let journal = &ctx.deps.journal;
    if journal
        .run(child)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    let parent = journal
        .run(ctx.rec.run())
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run {} is gone", ctx.rec.run()))?;
    let spec: Step = serde_json::from_value(of.spec.clone()).map_err(|e| e.to_string())?;
    let now = Millis::now();
    let name = format!("{} · {}", parent.name, of.step);
    let event = Event::RunStarted {
        workflow_id: parent.workflow_id.clone(),
        name: name.clone(),
        source: parent.source.clone(),
        // The spread run's pinned definition: its limits, servers and
        // settings hold here too.
        definition_hash: parent.definition_blob.clone(),
        inputs: ctx.inputs.clone(),
        seed: rand::random(),
        workspace: Some(ctx.workspace.display().to_string()),
        steps: vec![StepOutline {
            id: of.step.as_str().to_owned(),
            kind: spec.kind.name().to_string(),
            needs: Vec::new(),
            mode: match &spec.kind {
                StepKind::Agent { mode, .. } => Some(mode.clone()),
                _ => None,
            },
        }],
        flowmind: None,
        spread: false,
        step_of: Some(Box::new(of)),
        // Its worktree's branch goes where the spread run's would.
        push_to: ctx.push_to.clone(),
        at: now,
    };
    let meta = RunMeta {
        id: child.clone(),
        workflow_id: parent.workflow_id,
        name,
        source: parent.source,
        definition_blob: parent.definition_blob,
        status: RunStatus::Running,
        created_ms: now.0,
        updated_ms: now.0,
        last_seq: 0,
        parent: Some(ctx.rec.run().clone()),
        step_run: true,
    };
    let entry = recorder::to_entry(&event).map_err(|e| e.to_string())?;
    match journal
        .create_run_as(meta, vec![entry], &crate::journal::work::step(mode))
        .await
    {
        Ok(_) => {}
        // Made by an earlier process of this run after all.
        Err(JournalError::RunExists(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    // Made leased to this process, so nothing claims it half-made; let go
    // now. A failed release lapses by itself, and a worker takes it then.
    if let Err(e) = journal.let_go(child).await {
        tracing::warn!(run = %child, error = %e, "a step run's lease lapses by itself");
    }
    Ok(())
}

/// How a step run's step ended, read from its journal.
struct Ended {
    step: Option<Settled>,
    run: RunStatus,
    error: Option<String>,
    usage: Usage,
}

/// Waits until step run `child` ends. A cancel of the step here cancels
/// the step run (an emergency stop stops it), then waits a while for it.
/// A step run found paused by a spread run that is being resumed
/// (`resume_paused`: stopped with it, or paused for a decision that the
/// resume may bring) is resumed by this process, once.
async fn wait_for_end(
    ctx: &RunCtx,
    child: &RunId,
    cancel: &CancellationToken,
    mut resume_paused: bool,
) -> Result<Ended, String> {
    let journal = &ctx.deps.journal;
    let mut appended = ctx.step_runs.subscribe(journal).await;
    let mut told = false;
    let mut patience = None;
    let budgeted = ctx.limits.max_tokens.is_some() || ctx.limits.max_cost_usd.is_some();
    let mut looked: Option<tokio::time::Instant> = None;
    loop {
        if budgeted && looked.is_none_or(|at| at.elapsed() >= SPENDING_EVERY) {
            looked = Some(tokio::time::Instant::now());
            watch_spending(ctx, child).await;
        }
        let meta = journal
            .run(child)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("step run {child} is gone (removed?)"))?;
        if meta.status.is_terminal() {
            return read_end(ctx, child).await;
        }
        if meta.status == RunStatus::Paused && told {
            // Stopped as asked (an emergency stop ends a run paused).
            return Ok(Ended {
                step: Some(Settled::Cancelled),
                run: RunStatus::Paused,
                error: None,
                usage: Usage::default(),
            });
        }
        if meta.status == RunStatus::Paused && std::mem::take(&mut resume_paused) {
            let resumed = match &ctx.other_runs {
                Some(runs) => runs.submit(Op::Resume { run: child.clone() }).await,
                None => Err("no engine handle".into()),
            };
            if let Err(e) = resumed {
                tracing::warn!(run = %child, error = %e, "a paused step run was not resumed; `lev resume` it");
            }
        }
        if patience.is_some_and(|until: tokio::time::Instant| until <= tokio::time::Instant::now())
        {
            return Ok(Ended {
                step: Some(Settled::Cancelled),
                run: RunStatus::Cancelled,
                error: None,
                usage: Usage::default(),
            });
        }
        if cancel.is_cancelled() && !told {
            told = true;
            patience = Some(tokio::time::Instant::now() + CANCEL_PATIENCE);
            let op = if super::steer::stopped(ctx) {
                Op::EmergencyStop { run: child.clone() }
            } else {
                Op::Cancel { run: child.clone() }
            };
            match &ctx.other_runs {
                Some(runs) => {
                    if let Err(e) = runs.submit(op).await {
                        tracing::warn!(run = %child, error = %e, "could not stop a step run");
                    }
                }
                None => tracing::warn!(run = %child, "no engine handle to stop a step run with"),
            }
        }
        let heard = async {
            match appended.as_mut() {
                Some(rx) => loop {
                    match rx.recv().await {
                        Ok(run) if run == *child => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                },
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = heard => {}
            () = tokio::time::sleep(LOOK_AGAIN) => {}
            () = cancel.cancelled(), if !told => {}
        }
    }
}

/// How often at most a step run's spending is read while it works.
const SPENDING_EVERY: Duration = Duration::from_millis(300);

/// What the run has spent: its settled steps, and its step runs in flight
/// as last read.
fn spent(ctx: &RunCtx) -> Usage {
    let mut total = ctx.usage_snapshot();
    if let Ok(spending) = ctx.step_runs.spending.lock() {
        for u in spending.values() {
            total.add(u);
        }
    }
    total
}

/// Reads what step run `child` has spent so far; when the run's spending
/// with it is over the budget, the run stops there as a local step's
/// reply would stop it: the guard is recorded, nothing new starts, and
/// the step runs in flight are cancelled (each step run also holds to the
/// budget from what was spent when it was made).
async fn watch_spending(ctx: &RunCtx, child: &RunId) {
    let Ok(events) = recorder::read_run(&ctx.deps.journal, child).await else {
        return;
    };
    let so_far = super::history::History::from_events(&events).usage;
    if let Ok(mut spending) = ctx.step_runs.spending.lock() {
        spending.insert(child.clone(), so_far);
    }
    let Some(tripped) = ctx.over_budget(&spent(ctx)) else {
        return;
    };
    if !halt_over_budget(ctx, &tripped, None).await {
        return;
    }
    let live: Vec<RunId> = ctx
        .step_runs
        .live
        .lock()
        .map(|l| l.values().cloned().collect())
        .unwrap_or_default();
    if let Some(runs) = &ctx.other_runs {
        for run in live {
            if let Err(e) = runs.submit(Op::Cancel { run: run.clone() }).await {
                tracing::warn!(run = %run, error = %e, "a step run over the budget was not cancelled");
            }
        }
    }
}

/// The step's last outcome in step run `child`, and how the run ended.
async fn read_end(ctx: &RunCtx, child: &RunId) -> Result<Ended, String> {
    let events = recorder::read_run(&ctx.deps.journal, child)
        .await
        .map_err(|e| e.to_string())?;
    let mut ended = Ended {
        step: None,
        run: RunStatus::Failed,
        error: None,
        usage: Usage::default(),
    };
    for r in events {
        match r.event {
            Event::StepSucceeded { outputs, .. } => {
                ended.step = Some(Settled::Succeeded {
                    outputs: outputs.into(),
                })
            }
            Event::StepFailed {
                error,
                retry_in_ms: None,
                ..
            } => ended.step = Some(Settled::Failed { error }),
            Event::StepSkipped { reason, .. } => {
                ended.step = Some(Settled::Skipped);
                ended.error = Some(reason);
            }
            Event::StepCancelled { .. } => ended.step = Some(Settled::Cancelled),
            Event::RunFinished {
                status,
                error,
                usage,
                ..
            } => {
                ended.run = status;
                ended.usage = usage;
                if ended.error.is_none() {
                    ended.error = error;
                }
            }
            _ => {}
        }
    }
    Ok(ended)
}

/// Records the step run's outcome as the step's own.
async fn settle(
    ctx: &RunCtx,
    key: StepKey,
    attempt: Attempt,
    child: &RunId,
    ended: Ended,
) -> StepEnd {
    // The run's budget counts its step runs' usage as each ends (while
    // they work, `watch_spending`; each step run also holds to the budget
    // from what the run had spent when it was made).
    let tripped = ctx.add_usage(&ended.usage);
    let usage = ended.usage;
    let step_key = key.clone();
    let settled = match ended.step {
        Some(settled) => settled,
        None if ended.run == RunStatus::Cancelled => Settled::Cancelled,
        None => Settled::Failed {
            error: format!(
                "step run {child} ended {} before its step did: {}",
                ended.run.as_str(),
                ended
                    .error
                    .clone()
                    .unwrap_or_else(|| "no reason given".into())
            ),
        },
    };
    let event = match &settled {
        Settled::Succeeded { outputs } => Event::StepSucceeded {
            step: key,
            attempt,
            outputs: outputs.to_map(),
            usage,
            at: ctx.now(),
        },
        Settled::Failed { error } => Event::StepFailed {
            step: key,
            attempt,
            error: format!("{error} (step run {child})"),
            retry_in_ms: None,
            usage,
            at: ctx.now(),
        },
        Settled::Skipped => Event::StepSkipped {
            step: key,
            reason: ended
                .error
                .unwrap_or_else(|| format!("skipped in step run {child}")),
            at: ctx.now(),
        },
        Settled::Cancelled => {
            if super::steer::stopped(ctx) {
                // Stopped, not cancelled: `lev resume` takes it up again.
                return StepEnd::Paused(crate::protocol::PauseReason::EmergencyStop);
            }
            Event::StepCancelled {
                step: key,
                at: ctx.now(),
            }
        }
    };
    if let Err(e) = ctx.rec.record(event).await {
        return StepEnd::Settled(Settled::Failed {
            error: format!("journal: {e}"),
        });
    }
    if let Some(tripped) = tripped {
        halt_over_budget(ctx, &tripped, Some(step_key)).await;
    }
    StepEnd::Settled(settled)
}

/// Records that the run went over its budget (`step`: the step whose end
/// showed it) and halts it, unless a limit halted it already. True when
/// this did.
async fn halt_over_budget(ctx: &RunCtx, tripped: &Tripped, step: Option<StepKey>) -> bool {
    if matches!(ctx.halted(), Some(Halt::Limit(_))) {
        return false;
    }
    let _ = ctx.rec.record(tripped.event(step, ctx.now())).await;
    ctx.set_halt(Halt::Limit(tripped.why()));
    true
}

/// Executes a step run's one step (`RunStarted.step_of`) and ends with its
/// outcome: the run's outputs are the step's.
pub async fn execute_step_run(ctx: Arc<RunCtx>, of: &StepOf) -> Result<RunOutcome, EngineError> {
    let failed = |error: String| RunOutcome {
        status: RunStatus::Failed,
        outputs: BTreeMap::new(),
        error: Some(error),
    };
    let step: Step = match serde_json::from_value(of.spec.clone()) {
        Ok(s) => s,
        Err(e) => {
            return Ok(failed(format!(
                "this lev cannot read step `{}` of run {}: {e}",
                of.step, of.parent
            )));
        }
    };
    let mut whisper = of.whisper.clone();
    whisper.extend(ctx.whisper_snapshot());
    let eval = EvalContext {
        inputs: ctx.inputs.clone(),
        steps: of
            .steps
            .iter()
            .map(|(id, (succeeded, outputs))| {
                let view = StepView {
                    succeeded: *succeeded,
                    outputs: outputs.clone().into(),
                };
                (id.clone(), view)
            })
            .collect(),
        whisper,
        item: of.item.clone(),
        run: of.run_vars.clone(),
        needs_failed: false,
        needs_cancelled: false,
    };
    let key = of.step.clone();
    let end = match ctx.recorded_outcome(&key) {
        Some(settled) => StepEnd::Settled(settled.into_owned()),
        None => {
            let task = step::run_step(ctx.clone(), key.clone(), step, eval);
            step::guarded(ctx.clone(), key, task).await
        }
    };
    Ok(match end {
        StepEnd::Settled(Settled::Succeeded { outputs }) => RunOutcome {
            status: RunStatus::Succeeded,
            outputs: outputs.to_map(),
            error: None,
        },
        StepEnd::Settled(Settled::Skipped) => RunOutcome {
            status: RunStatus::Succeeded,
            outputs: BTreeMap::new(),
            error: None,
        },
        StepEnd::Settled(Settled::Failed { error }) => failed(error),
        StepEnd::Settled(Settled::Cancelled) => RunOutcome {
            status: RunStatus::Cancelled,
            outputs: BTreeMap::new(),
            error: None,
        },
        StepEnd::Paused(reason) => {
            ctx.set_halt(Halt::Paused(reason));
            RunOutcome {
                status: RunStatus::Paused,
                outputs: BTreeMap::new(),
                error: None,
            }
        }
    })
}
