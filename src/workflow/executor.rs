//! Drives a run: loads the pinned definition and the journal's history,
//! dispatches participants' ops, asks up-front questions, walks the step
//! DAG (parallel where needs allow) and records how the run ended.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::chains::Chains;
use super::context::{Answer, Decision, Halt, RunCtx, Waiters};
use super::followups;
use super::frontier::Frontier;
use super::graph::{GraphEnd, view_of_step};
use super::history::Settled;
use super::human;
use super::kinds;
use super::recorder::{Recorder, fold_past};
use super::retry;
use super::steer;
use super::step::{self, StepEnd};
use super::{EngineDeps, EngineError, NoticeSender, RunOutcome, pinning};
use crate::protocol::{Event, Notice, Op, PauseReason, RunId, RunStatus, StepKey, describe};
use crate::spec::Workflow;
use crate::spec::expr::{EvalContext, StepView};

pub async fn drive(
    deps: Arc<EngineDeps>,
    run: RunId,
    ops: mpsc::UnboundedReceiver<Op>,
    subscribers: Vec<NoticeSender>,
    fresh: bool,
    other_runs: Option<Arc<dyn super::spread::OtherRuns>>,
) -> Result<RunOutcome, EngineError> {
    let journal = deps.journal.clone();
    let meta = journal
        .run(&run)
        .await?
        .ok_or_else(|| EngineError::RunNotFound(run.clone()))?;
    // A run paused by a full disk goes on once there is room again (the
    // check also recreates the space reserve for the next time).
    if journal.disk_full().is_some() {
        journal.check_space().await;
    }
    // The pinned definition loads while the events are read and decoded:
    // for a long run both take tens of milliseconds.
    let definition = tokio::spawn(load_definition(
        deps.clone(),
        run.clone(),
        meta.definition_blob.clone(),
    ));
    let past = match fold_past(&journal, &run).await {
        Ok(past) => past,
        Err(e) => {
            definition.abort();
            return Err(e.into());
        }
    };
    let history = past.history;
    let Some(first) = past.first else {
        definition.abort();
        return Err(EngineError::Definition {
            run,
            message: "the run has no entries".into(),
        });
    };
    if !matches!(first.event, Event::RunStarted { .. }) {
        definition.abort();
        return Err(EngineError::Definition {
            run,
            message: "the run's first entry is not `run_started`".into(),
        });
    }
    if let Some(Event::RunFinished {
        status,
        outputs,
        error,
        ..
    }) = past.finished
    {
        definition.abort();
        return Ok(RunOutcome {
            status,
            outputs,
            error,
        });
    }
    let Event::RunStarted {
        inputs,
        seed,
        at,
        name,
        workspace,
        spread,
        step_of,
        push_to,
        ..
    } = &first.event
    else {
        definition.abort();
        return Err(EngineError::Definition {
            run,
            message: "the run's first entry is not `run_started`".into(),
        });
    };
    let pinning::Pinned { workflow, swarm } =
        definition.await.map_err(|e| EngineError::Definition {
            run: run.clone(),
            message: format!("loading the pinned definition failed: {e}"),
        })??;

    let rec = Recorder::new(
        journal.clone(),
        run.clone(),
        history.last_seq,
        subscribers.clone(),
    );
    if fresh {
        // `start_run` recorded RunStarted before anyone listened.
        for s in &subscribers {
            let _ = s.send(Notice::Event(first.clone()));
        }
    } else {
        rec.record_with_status(
            Event::RunResumed {
                at: crate::protocol::Millis::now(),
            },
            Some(RunStatus::Running),
        )
        .await?;
    }

    let run_vars = BTreeMap::from([
        ("id".to_string(), Value::String(run.0.clone())),
        ("name".to_string(), Value::String(name.clone())),
        ("started_at_ms".to_string(), Value::from(at.0)),
        ("seed".to_string(), Value::from(*seed)),
    ]);
    let limits = workflow.limits.clone();
    let whisper: BTreeMap<String, Value> = history
        .answers
        .iter()
        .map(|(k, (a, _))| (k.clone(), Value::String(a.clone())))
        .collect();
    // The run keeps the workspace it started in, wherever it is resumed
    // from, unless this process was told where it is on this machine.
    let workspace = match workspace {
        Some(w) if !deps.options.workspace_here => std::path::PathBuf::from(w),
        _ => deps.workspace.clone(),
    };
    let mcp = super::mcp::RunMcp::new(
        &deps.options.mcp_servers,
        &workflow,
        workspace.clone(),
        &rec,
    )
    .map(Arc::new);
    let ctx = Arc::new(RunCtx {
        usage: Mutex::new(history.usage),
        questions_asked: Mutex::new(history.questions_asked),
        unpriced_said: Mutex::new(history.unpriced_models.clone()),
        slots: Semaphore::new(limits.max_parallel.max(1) as usize),
        limits,
        inputs: inputs.clone(),
        run_vars,
        cancel: CancellationToken::new(),
        waiters: Mutex::new(Waiters::default()),
        whisper: Mutex::new(whisper),
        halt: Mutex::new(None),
        step_cancels: Mutex::new(BTreeMap::new()),
        terminals: Mutex::new(BTreeMap::new()),
        adhoc: Mutex::default(),
        workspace,
        answer_timeout: workflow.whisper.answer_timeout,
        steer: Default::default(),
        retry: Default::default(),
        replans: Default::default(),
        flowmind_followups: Default::default(),
        rec: rec.clone(),
        spread: *spread,
        other_runs,
        step_runs: Default::default(),
        spread_parent: step_of.as_ref().map(|of| of.parent.clone()),
        push_to: push_to.clone(),
        spent_elsewhere: step_of.as_ref().map(|of| of.spent).unwrap_or_default(),
        followups: Mutex::new(history.followups.clone()),
        followup_policy: workflow.followups.with(&deps.options.followups),
        mcp,
        clock: super::context::RunClock::start(),
        history,
        deps,
    });
    if ctx.history.cancel_requested {
        ctx.cancel.cancel();
    }
    if let Some(mcp) = &ctx.mcp {
        mcp.attach(&ctx);
    }

    let workflow = Arc::new(workflow);
    let dispatcher = tokio::spawn(dispatch_ops(ctx.clone(), workflow.clone(), ops));
    let outcome = match (step_of, swarm) {
        (Some(of), _) => super::spread::execute_step_run(ctx.clone(), of).await,
        (None, Some(spec)) => Ok(super::swarm::execute(ctx.clone(), workflow, spec)
            .await
            .into_outcome()),
        (None, None) => execute(ctx.clone(), workflow).await,
    };
    // Ad-hoc programs end with the run, their ends journaled before its own.
    super::pty::stop_adhoc(&ctx).await;
    // MCP servers too, before the run's end: nothing they report follows it.
    if let Some(mcp) = &ctx.mcp {
        mcp.stop().await;
    }
    dispatcher.abort();
    let outcome = outcome?;
    let usage = ctx.usage_snapshot();
    let event = match &outcome.status {
        RunStatus::Paused => match ctx.halted() {
            Some(Halt::Paused(reason)) => Some(Event::RunPaused {
                reason,
                at: ctx.now(),
            }),
            _ => Some(Event::RunPaused {
                reason: PauseReason::Requested,
                at: ctx.now(),
            }),
        },
        status => Some(Event::RunFinished {
            status: *status,
            outputs: outcome.outputs.clone(),
            error: outcome.error.clone(),
            usage,
            at: ctx.now(),
        }),
    };
    if let Some(event) = event {
        rec.record_with_status(event, Some(outcome.status)).await?;
    }
    Ok(outcome)
}

/// The workflow the run is pinned to, from its definition blob.
async fn load_definition(
    deps: Arc<EngineDeps>,
    run: RunId,
    blob: String,
) -> Result<pinning::Pinned, EngineError> {
    // The blob is verified against its hash as it is read: an altered
    // definition is refused, never run.
    let bundle = deps
        .journal
        .blob(&blob)
        .await
        .map_err(|e| EngineError::Definition {
            run: run.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(|| EngineError::Definition {
            run: run.clone(),
            message: "definition blob is missing".into(),
        })?;
    let loaded =
        tokio::task::spawn_blocking(move || pinning::load_pinned(&bundle, &deps.modes)).await;
    match loaded {
        Ok(Ok(pinned)) => Ok(pinned),
        Ok(Err(message)) => Err(EngineError::Definition { run, message }),
        Err(e) => Err(EngineError::Definition {
            run,
            message: format!("loading the pinned definition failed: {e}"),
        }),
    }
}

/// Journals each answer, then hands it to the waiting step.
async fn dispatch_ops(
    ctx: Arc<RunCtx>,
    workflow: Arc<Workflow>,
    mut ops: mpsc::UnboundedReceiver<Op>,
) {
    while let Some(op) = ops.recv().await {
        match op {
            Op::Answer {
                question,
                answer,
                source,
                ..
            } => {
                if answer.trim().is_empty() {
                    tracing::warn!(%question, "empty answer ignored: an empty answer is never consent");
                    continue;
                }
                let waiter = ctx
                    .waiters
                    .lock()
                    .ok()
                    .and_then(|mut w| w.questions.remove(&question));
                let Some(tx) = waiter else {
                    tracing::warn!(%question, "answer for a question nobody waits for");
                    continue;
                };
                let event = Event::QuestionAnswered {
                    id: question.clone(),
                    answer: answer.clone(),
                    source,
                    at: ctx.now(),
                };
                match ctx.rec.record(event).await {
                    Ok(_) => {
                        let _ = tx.send(Some(Answer { text: answer }));
                    }
                    Err(e) => tracing::error!(%question, error = %e, "could not journal an answer"),
                }
            }
            Op::Decide {
                step,
                approved,
                comment,
                source,
                ..
            } => {
                let waiter = ctx
                    .waiters
                    .lock()
                    .ok()
                    .and_then(|mut w| w.approvals.remove(&step));
                let Some(tx) = waiter else {
                    tracing::warn!(%step, "decision for an approval nobody waits for");
                    continue;
                };
                let event = Event::ApprovalDecided {
                    step: step.clone(),
                    approved,
                    comment: comment.clone(),
                    source,
                    at: ctx.now(),
                };
                match ctx.rec.record(event).await {
                    Ok(_) => {
                        let _ = tx.send(Some(Decision { approved, comment }));
                    }
                    Err(e) => tracing::error!(%step, error = %e, "could not journal a decision"),
                }
            }
            Op::CancelStep { step, .. } => {
                if !ctx.cancel_step(&step) {
                    tracing::warn!(%step, "cancel for a step that is not running");
                }
            }
            Op::Unattended { prompt, .. } => {
                let (question, approval) = match ctx.waiters.lock() {
                    Ok(mut w) => (
                        w.questions.remove(&prompt),
                        w.approvals.remove(&StepKey::new(prompt.clone())),
                    ),
                    Err(_) => (None, None),
                };
                if let Some(tx) = question {
                    let _ = tx.send(None);
                }
                if let Some(tx) = approval {
                    let _ = tx.send(None);
                }
            }
            op @ (Op::Message { .. }
            | Op::Pause { .. }
            | Op::Unpause { .. }
            | Op::EmergencyStop { .. }) => steer::apply(&ctx, op).await,
            Op::RetryStep { step, .. } => retry::retry_live(&ctx, &workflow, step).await,
            Op::PtyInput { step, bytes, .. } => {
                super::pty::deliver(&ctx, &step, super::pty::TerminalInput::Keys(bytes))
            }
            Op::PtyResize {
                step, rows, cols, ..
            } => super::pty::deliver(&ctx, &step, super::pty::TerminalInput::Resize(rows, cols)),
            Op::Spawn { command, args, .. } => super::pty::spawn_adhoc(&ctx, command, args),
            Op::PtyHook { step, report, .. } => {
                super::pty::deliver(&ctx, &step, super::pty::TerminalInput::Hook(report))
            }
            Op::StopCallbacks { .. } => {
                stop_callbacks(&ctx, "user", followups::STOPPED_BY_USER.to_string()).await;
            }
            Op::Flowmind {
                step,
                rule,
                observed,
                level,
                text,
                ..
            } => steer::flowmind(&ctx, step, rule, observed, level, text).await,
            Op::FlowmindLedger {
                step,
                attempt,
                turn,
                ledger,
                model,
                usage,
                ..
            } => {
                let event = Event::FlowmindLedger {
                    step,
                    attempt,
                    turn,
                    ledger,
                    model,
                    usage,
                    at: ctx.now(),
                };
                steer::record_flowmind(&ctx, event).await;
            }
            Op::ProposeAnswer {
                question,
                answer,
                confidence,
                category,
                reason,
                auto,
                grace_ms,
                model,
                usage,
                ..
            } => {
                let event = Event::AnswerProposed {
                    id: question.clone(),
                    answer: answer.clone(),
                    confidence,
                    category,
                    reason,
                    auto,
                    grace_ms,
                    model,
                    usage,
                    at: ctx.now(),
                };
                steer::conduct(&ctx, event, auto.then_some(answer).flatten(), grace_ms).await;
            }
            Op::FlowmindPropose {
                step,
                title,
                mode,
                why,
                ..
            } => steer::propose(&ctx, step, title, mode, why).await,
            Op::DismissEscalation { step, .. } => {
                let event = Event::FlowmindDismissed {
                    step,
                    at: ctx.now(),
                };
                steer::record_flowmind(&ctx, event).await;
            }
            Op::FlowmindFellBack { why, .. } => {
                let event = Event::FlowmindFellBack { why, at: ctx.now() };
                steer::record_flowmind(&ctx, event).await;
            }
            // The engine handle carries these out; a live run never gets them.
            Op::Resume { .. }
            | Op::Fork { .. }
            | Op::SettleWorktree { .. }
            | Op::DeleteRun { .. }
            | Op::ForgetMemory { .. }
            | Op::WhisperFeedback { .. }
            | Op::ResetWhispers { .. }
            | Op::StartWorkflow { .. }
            | Op::StartObjective { .. } => ctx
                .rec
                .refuse("the run is executing: this op is for a run no engine drives".into()),
            Op::Cancel { .. } => {
                if !ctx.cancel.is_cancelled() {
                    let _ = ctx
                        .rec
                        .record(Event::RunCancelRequested { at: ctx.now() })
                        .await;
                    ctx.cancel.cancel();
                }
            }
        }
    }
}

/// Records that callbacks are stopped (once), then stops them: no new
/// follow-up and no new system question from here on.
pub(super) async fn stop_callbacks(ctx: &RunCtx, by: &str, reason: String) {
    if ctx.callbacks_stopped().is_some() {
        return;
    }
    let event = Event::CallbacksStopped {
        by: by.to_string(),
        reason: reason.clone(),
        at: ctx.now(),
    };
    match ctx.rec.record(event).await {
        Ok(_) => ctx.followups_book(|b| b.stopped = Some(reason)),
        Err(e) => {
            tracing::error!(error = %e, "could not journal that callbacks stopped");
            // Stopped in this process all the same: stopping is the safe side.
            ctx.followups_book(|b| b.stopped = Some(reason));
        }
    }
}

async fn execute(ctx: Arc<RunCtx>, workflow: Arc<Workflow>) -> Result<RunOutcome, EngineError> {
    if let Err(message) = human::ask_up_front(&ctx, &workflow).await {
        if ctx.cancel.is_cancelled() {
            return Ok(RunOutcome {
                status: RunStatus::Cancelled,
                outputs: BTreeMap::new(),
                error: None,
            });
        }
        return Ok(RunOutcome {
            status: RunStatus::Failed,
            outputs: BTreeMap::new(),
            error: Some(message),
        });
    }
    let graph = run_graph(
        ctx.clone(),
        workflow,
        String::new(),
        ctx.inputs.clone(),
        None,
    )
    .await;
    Ok(graph.into_outcome())
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Pending,
    Running,
    Done(Settled),
    /// Ended because the run paused.
    Paused,
}

/// Runs one workflow's steps under key prefix `prefix` (`""` for the root,
/// `parent/` for a child workflow).
pub fn run_graph(
    ctx: Arc<RunCtx>,
    wf: Arc<Workflow>,
    prefix: String,
    inputs: BTreeMap<String, Value>,
    item: Option<Value>,
) -> Pin<Box<dyn Future<Output = GraphEnd> + Send>> {
    Box::pin(async move {
        let mut states: BTreeMap<String, State> = wf
            .steps
            .iter()
            .map(|s| (s.id.clone(), State::Pending))
            .collect();
        let mut views: BTreeMap<String, StepView> = BTreeMap::new();
        let mut frontier = Frontier::new(&wf.steps);
        let mut chains = Chains::default();
        let mut tasks: JoinSet<Joined> = JoinSet::new();
        // Steps that take a slot are spawned at most `cap` at a time, the
        // rest wait here as indices: a 10,000-step fan-out over 64 slots
        // holds 128 tasks, not 10,000 futures waiting for a permit. Twice
        // the slots, so a step backing off before a retry (which holds no
        // slot) does not leave one idle.
        let cap = 2 * ctx.limits.max_parallel.max(1) as usize;
        let mut slot_tasks = 0usize;
        let mut deferred: std::collections::VecDeque<usize> = Default::default();
        // Live retries re-open steps of the root graph (a child step is
        // reached through the root-level workflow step that holds it).
        let mut inbox = if prefix.is_empty() {
            ctx.retry.inbox.lock().ok().and_then(|mut i| i.take())
        } else {
            None
        };
        loop {
            // A paused run starts nothing new (running steps go on).
            steer::graph_hold(&ctx).await;
            // A full disk pauses the run the same way: what runs finishes
            // into the journal's space reserve, nothing new starts.
            if let Some(error) = ctx.deps.journal.disk_full()
                && ctx.halted().is_none()
            {
                tracing::error!(run = %ctx.rec.run(), %error, "disk full: pausing the run");
                ctx.set_halt(Halt::Paused(PauseReason::DiskFull { error }));
            }
            let stopping = ctx.cancel.is_cancelled() || ctx.halted().is_some();
            loop {
                let waiting = (slot_tasks < cap || stopping)
                    .then(|| deferred.pop_front())
                    .flatten();
                let Some(i) = waiting.or_else(|| frontier.take_ready()) else {
                    break;
                };
                let step = chains.step(&wf, i);
                if states.get(&step.id) != Some(&State::Pending) {
                    continue;
                }
                let key = StepKey::new(format!("{prefix}{}", step.id));
                if let Some(settled) = ctx.recorded_outcome(&key) {
                    // Finished in an earlier process: its recorded result stands
                    // (and the follow-ups it spawned are made again from the journal).
                    views.insert(step.id.clone(), view_of_step(&settled, step));
                    states.insert(step.id.clone(), done(&settled));
                    match parent_of(
                        &ctx, &chains, i, step, &key, &settled, &inputs, &views, &states, &item,
                    ) {
                        Some(parent) => spawn_decider(&mut tasks, &ctx, i, parent),
                        None => chains.release(i, &mut frontier),
                    }
                    continue;
                }
                if stopping {
                    if ctx.cancel.is_cancelled() {
                        let _ = ctx
                            .rec
                            .record(Event::StepCancelled {
                                step: key,
                                at: ctx.now(),
                            })
                            .await;
                        states.insert(step.id.clone(), State::Done(Settled::Cancelled));
                        chains.release(i, &mut frontier);
                    } else {
                        match ctx.halted() {
                            Some(Halt::Limit(why)) => {
                                step::record_skip(&ctx, key, why).await;
                                states.insert(step.id.clone(), State::Done(Settled::Skipped));
                                chains.release(i, &mut frontier);
                            }
                            _ => {
                                states.insert(step.id.clone(), State::Paused);
                            }
                        }
                    }
                    continue;
                }
                let eval = eval_context(&ctx, &inputs, &views, step, &states, item.clone());
                match condition_holds(step, &eval) {
                    Ok(true) => {}
                    Ok(false) => {
                        let reason = match &step.condition {
                            Some(c) => format!("condition `{}` is false", c.raw()),
                            None => "a needed step did not succeed".to_string(),
                        };
                        step::record_skip(&ctx, key, reason).await;
                        views.insert(step.id.clone(), StepView::default());
                        states.insert(step.id.clone(), State::Done(Settled::Skipped));
                        chains.release(i, &mut frontier);
                        continue;
                    }
                    Err(error) => {
                        let end =
                            step::fail_without_attempt(&ctx, &key, format!("`if:` {error}")).await;
                        views.insert(step.id.clone(), view_of_step(&end, step));
                        states.insert(step.id.clone(), done(&end));
                        chains.release(i, &mut frontier);
                        continue;
                    }
                }
                let takes_slot = kinds::of(&step.kind).takes_slot();
                if takes_slot && slot_tasks >= cap {
                    deferred.push_back(i);
                    continue;
                }
                slot_tasks += usize::from(takes_slot);
                states.insert(step.id.clone(), State::Running);
                let (ctx2, step2) = (ctx.clone(), step.clone());
                let deadline = chains.child(i).map(|c| c.deadline);
                tasks.spawn(async move {
                    let run = {
                        let (ctx, key) = (ctx2.clone(), key.clone());
                        async move {
                            match deadline {
                                Some(deadline) => {
                                    followups::run_in_box(ctx, key, step2, eval, deadline).await
                                }
                                None => step::run_step(ctx, key, step2, eval).await,
                            }
                        }
                    };
                    Joined::Step(i, step::guarded(ctx2, key, run).await)
                });
            }
            let joined = match inbox.as_mut() {
                None => tasks.join_next().await,
                Some(rx) if tasks.is_empty() => {
                    // Nothing runs: the graph ends unless a retry came in;
                    // the gate closes under the lock a retry records under.
                    let mut gate = ctx.retry.gate.lock().await;
                    match rx.try_recv() {
                        Ok(keys) => {
                            drop(gate);
                            reopen(&keys, &mut states, &mut views);
                            recount(&ctx, &mut frontier, &wf, &mut chains, &states);
                            continue;
                        }
                        Err(_) => {
                            gate.open = false;
                            None
                        }
                    }
                }
                Some(rx) => tokio::select! {
                    joined = tasks.join_next() => joined,
                    Some(keys) = rx.recv() => {
                        reopen(&keys, &mut states, &mut views);
                        recount(&ctx, &mut frontier, &wf, &mut chains, &states);
                        continue;
                    }
                },
            };
            let Some(joined) = joined else {
                break;
            };
            let (i, end) = match joined {
                Ok(Joined::Step(i, end)) => (i, end),
                Ok(Joined::Followups(parent, children)) => {
                    let children = children
                        .into_iter()
                        .filter(|c| !states.contains_key(&c.step.id))
                        .collect::<Vec<_>>();
                    for c in &children {
                        states.insert(c.step.id.clone(), State::Pending);
                    }
                    chains.add(parent, children, &mut frontier);
                    continue;
                }
                Err(_) => {
                    tracing::error!("a step task panicked");
                    continue;
                }
            };
            let step = chains.step(&wf, i);
            if kinds::of(&step.kind).takes_slot() {
                slot_tasks = slot_tasks.saturating_sub(1);
            }
            match end {
                StepEnd::Settled(settled) => {
                    views.insert(step.id.clone(), view_of_step(&settled, step));
                    states.insert(step.id.clone(), done(&settled));
                    let key = StepKey::new(format!("{prefix}{}", step.id));
                    if chains.child(i).is_some() {
                        followups::settled(&ctx, &key, &settled).await;
                    }
                    match parent_of(
                        &ctx, &chains, i, step, &key, &settled, &inputs, &views, &states, &item,
                    ) {
                        Some(parent) => spawn_decider(&mut tasks, &ctx, i, parent),
                        None => chains.release(i, &mut frontier),
                    }
                }
                StepEnd::Paused(reason) => {
                    ctx.set_halt(Halt::Paused(reason));
                    states.insert(step.id.clone(), State::Paused);
                }
            }
        }
        finish_graph(&ctx, &wf, inputs, views, &states, item).await
    })
}

/// What a graph task gives back: a step's end, or the follow-ups a
/// succeeded step spawned.
enum Joined {
    Step(usize, StepEnd),
    Followups(usize, Vec<followups::Child>),
}

/// The step at `i` as a parent of follow-ups, when it succeeded and has
/// any to decide (its `followups:`, or proposals of its agent).
#[allow(clippy::too_many_arguments)]
fn parent_of(
    ctx: &RunCtx,
    chains: &Chains,
    i: usize,
    step: &crate::spec::Step,
    key: &StepKey,
    settled: &Settled,
    inputs: &BTreeMap<String, Value>,
    views: &BTreeMap<String, StepView>,
    states: &BTreeMap<String, State>,
    item: &Option<Value>,
) -> Option<followups::Parent> {
    let Settled::Succeeded { outputs } = settled else {
        return None;
    };
    if step.followups.is_none() && !outputs.contains_key(followups::PROPOSALS) {
        return None;
    }
    let (depth, root) = chains.depth_and_root(i, key);
    let mut eval = eval_context(ctx, inputs, views, step, states, item.clone());
    // `followups:` reads the step's own outputs.
    if let Some(own) = views.get(&step.id) {
        eval.steps.insert(step.id.clone(), own.clone());
    }
    Some(followups::Parent {
        key: key.clone(),
        step: step.clone(),
        depth,
        root,
        eval,
        outputs: outputs.clone(),
    })
}

/// Decides `parent`'s follow-ups in a task of the graph (a judge or the
/// user may take a while); the steps that need it wait until then.
fn spawn_decider(
    tasks: &mut JoinSet<Joined>,
    ctx: &Arc<RunCtx>,
    i: usize,
    parent: followups::Parent,
) {
    let ctx = ctx.clone();
    tasks
        .spawn(async move { Joined::Followups(i, followups::decide_guarded(&ctx, &parent).await) });
}

/// Counts the frontier again after `reopen`; a re-opened follow-up is
/// ready at once (it waits for nothing), with a time box of its own from
/// now.
fn recount(
    ctx: &RunCtx,
    frontier: &mut Frontier,
    wf: &Workflow,
    chains: &mut Chains,
    states: &BTreeMap<String, State>,
) {
    frontier.recount(
        &wf.steps,
        states,
        |s| matches!(s, State::Done(_)),
        |s| *s == State::Pending,
    );
    let deadline = tokio::time::Instant::now() + ctx.limits.chain_timebox;
    for (i, child) in chains.children_mut() {
        if states.get(&child.step.id) == Some(&State::Pending) {
            child.deadline = deadline;
            frontier.make_ready(i);
        }
    }
}

/// Retried steps of the root graph become pending again: the graph runs
/// them once their needs are done, instead of keeping their outcome.
fn reopen(
    keys: &[StepKey],
    states: &mut BTreeMap<String, State>,
    views: &mut BTreeMap<String, StepView>,
) {
    for key in keys {
        if let Some(state) = states.get_mut(key.as_str())
            && matches!(state, State::Done(_))
        {
            *state = State::Pending;
            views.remove(key.as_str());
        }
    }
}

async fn finish_graph(
    ctx: &Arc<RunCtx>,
    wf: &Workflow,
    inputs: BTreeMap<String, Value>,
    views: BTreeMap<String, StepView>,
    states: &BTreeMap<String, State>,
    item: Option<Value>,
) -> GraphEnd {
    if let Some(Halt::Paused(reason)) = ctx.halted() {
        return GraphEnd {
            status: RunStatus::Paused,
            outputs: BTreeMap::new(),
            error: Some(describe::pause(&reason)),
        };
    }
    if states.values().any(|s| *s == State::Paused) {
        return GraphEnd {
            status: RunStatus::Paused,
            outputs: BTreeMap::new(),
            error: None,
        };
    }
    if ctx.cancel.is_cancelled() {
        return GraphEnd {
            status: RunStatus::Cancelled,
            outputs: BTreeMap::new(),
            error: Some("cancelled".into()),
        };
    }
    let failed: Vec<&str> = wf
        .steps
        .iter()
        .filter(|s| {
            !s.continue_on_error
                && matches!(
                    states.get(&s.id),
                    // A step cancelled on its own (the run was not) did not do its job.
                    Some(State::Done(Settled::Failed { .. } | Settled::Cancelled))
                )
        })
        .map(|s| s.id.as_str())
        .collect();
    if let Some(Halt::Limit(why)) = ctx.halted() {
        return GraphEnd {
            status: RunStatus::Failed,
            outputs: BTreeMap::new(),
            error: Some(why),
        };
    }
    if !failed.is_empty() {
        let first = failed[0];
        let why = match states.get(first) {
            Some(State::Done(Settled::Failed { error })) => format!("failed: {error}"),
            _ => "was cancelled".to_string(),
        };
        return GraphEnd {
            status: RunStatus::Failed,
            outputs: BTreeMap::new(),
            error: Some(format!("step `{first}` {why}")),
        };
    }
    let eval = EvalContext {
        inputs,
        steps: views,
        whisper: ctx.whisper_snapshot(),
        item,
        run: ctx.run_vars.clone(),
        needs_failed: false,
        needs_cancelled: false,
    };
    let mut outputs = BTreeMap::new();
    for (name, template) in &wf.outputs {
        match template.eval(&eval) {
            Ok(v) => {
                outputs.insert(name.clone(), v);
            }
            Err(e) => {
                return GraphEnd {
                    status: RunStatus::Failed,
                    outputs,
                    error: Some(format!("workflow output `{name}`: {e}")),
                };
            }
        }
    }
    GraphEnd {
        status: RunStatus::Succeeded,
        outputs,
        error: None,
    }
}

/// A finished step's state; its outputs live in `views` only (copying them
/// twice would double what adopting a long recorded run costs).
fn done(settled: &Settled) -> State {
    State::Done(match settled {
        Settled::Succeeded { .. } => Settled::Succeeded {
            outputs: Default::default(),
        },
        other => other.clone(),
    })
}

fn eval_context(
    ctx: &RunCtx,
    inputs: &BTreeMap<String, Value>,
    views: &BTreeMap<String, StepView>,
    step: &crate::spec::Step,
    states: &BTreeMap<String, State>,
    item: Option<Value>,
) -> EvalContext {
    let needs_failed = step
        .needs
        .iter()
        .any(|n| views.get(n).map(|v| !v.succeeded).unwrap_or(true));
    let needs_cancelled = step
        .needs
        .iter()
        .any(|n| matches!(states.get(n), Some(State::Done(Settled::Cancelled))));
    // Only the results the step's templates read: copying every finished
    // step's outputs for each new step would make a long run quadratic.
    let steps = match step.steps_read() {
        Some(ids) => ids
            .into_iter()
            .filter_map(|id| Some((id.clone(), views.get(&id)?.clone())))
            .collect(),
        None => views.clone(),
    };
    EvalContext {
        inputs: inputs.clone(),
        steps,
        whisper: ctx.whisper_snapshot(),
        item,
        run: ctx.run_vars.clone(),
        needs_failed,
        needs_cancelled,
    }
}

fn condition_holds(step: &crate::spec::Step, eval: &EvalContext) -> Result<bool, String> {
    match &step.condition {
        None => Ok(!eval.needs_failed && !eval.needs_cancelled),
        Some(t) => match t.eval(eval) {
            Ok(v) => Ok(truthy(&v)),
            Err(e) => Err(e.to_string()),
        },
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().map(|f| f != 0.0).unwrap_or(true),
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

/// Runs a `workflow` step's child graph.
pub async fn run_child(
    ctx: Arc<RunCtx>,
    key: &StepKey,
    child: &Workflow,
    inputs: BTreeMap<String, Value>,
) -> GraphEnd {
    run_graph(
        ctx,
        Arc::new(child.clone()),
        format!("{key}/"),
        inputs,
        None,
    )
    .await
}
