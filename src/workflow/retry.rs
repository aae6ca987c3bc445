//! Retrying a failed step: which steps the retry re-opens (the step, the
//! dependents that did not succeed because of it, the workflow steps
//! around a child step), and recording the request — for a run no process
//! executes (`lev retry`, the workbench on an ended run: the run then
//! resumes) or for the live run this process drives (`Op::RetryStep`,
//! handed to the root graph).

use std::collections::BTreeSet;

use super::context::RunCtx;
use super::history::{History, Settled};
use super::recorder::{read_run, to_entry};
use super::{EngineError, pinning};
use crate::journal::{Journal, RunMeta};
use crate::protocol::{Event, Millis, Recorded, RunId, RunStatus, StepKey};
use crate::spec::{ModeRegistry, StepKind, Workflow};

/// One level of a step's path: the graph it sits in, the graph's key
/// prefix, and the step's id there.
struct Level<'a> {
    graph: &'a Workflow,
    prefix: String,
    id: String,
}

/// The graphs from the root down to `step` (`parent/child` walks into the
/// child workflow of `parent`); an error names what does not exist.
fn levels<'a>(workflow: &'a Workflow, step: &StepKey) -> Result<Vec<Level<'a>>, String> {
    let mut out = Vec::new();
    let mut graph = workflow;
    let mut prefix = String::new();
    let parts: Vec<&str> = step.as_str().split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(s) = graph.step(part) else {
            let known: Vec<&str> = graph.steps.iter().map(|s| s.id.as_str()).collect();
            let place = if prefix.is_empty() {
                "the workflow".to_string()
            } else {
                format!("child workflow `{}`", prefix.trim_end_matches('/'))
            };
            return Err(format!(
                "{place} has no step `{part}` (its steps: {})",
                known.join(", ")
            ));
        };
        out.push(Level {
            graph,
            prefix: prefix.clone(),
            id: part.to_string(),
        });
        if i + 1 < parts.len() {
            let StepKind::Workflow { child, .. } = &s.kind else {
                return Err(format!(
                    "step `{prefix}{part}` is not a workflow step, so it has no step `{}`",
                    parts[i + 1]
                ));
            };
            graph = child;
            prefix = format!("{prefix}{part}/");
        }
    }
    Ok(out)
}

/// Checks that `step` names a step of the pinned workflow.
pub fn check_step(workflow: &Workflow, step: &StepKey) -> Result<(), String> {
    levels(workflow, step).map(|_| ())
}

/// Steps of `graph` that need `id`, directly or through others.
fn dependents(graph: &Workflow, id: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    loop {
        let before = out.len();
        for s in &graph.steps {
            if !out.contains(&s.id) && s.needs.iter().any(|n| n == id || out.contains(n)) {
                out.insert(s.id.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Why `step` cannot be retried, from what the journal says of it.
fn refusal(history: &History, step: &StepKey) -> Option<String> {
    match history.final_outcome(step) {
        Some(Settled::Failed { .. } | Settled::Cancelled) => None,
        Some(Settled::Succeeded { .. }) => Some(format!(
            "step `{step}` succeeded; only a failed (or cancelled) step is retried — fork the run from it to run it again"
        )),
        Some(Settled::Skipped) => Some(format!(
            "step `{step}` was skipped, not failed; retry the failed step it waited for"
        )),
        None => Some(match history.steps.get(step) {
            None => format!("step `{step}` has not run; only a failed step is retried"),
            Some(r) if r.retry_requested => format!(
                "a retry of step `{step}` is already under way (`lev resume` continues a stopped one)"
            ),
            Some(r) if r.retry_in_ms.is_some() => {
                format!("step `{step}` is already retrying by its retry policy")
            }
            Some(_) => format!("step `{step}` is still running"),
        }),
    }
}

/// The steps a retry of `step` re-opens besides the step itself: its
/// dependents (in its own graph and, for a child step, in every graph
/// around it) that did not succeed, the workflow steps that contain it,
/// and the recorded child steps of any of these that did not succeed.
/// Refuses a step that does not exist or did not fail.
pub fn plan_retry(
    workflow: &Workflow,
    history: &History,
    step: &StepKey,
) -> Result<Vec<StepKey>, String> {
    if let Some(spawn) = history.followups.spawned.get(step) {
        // A follow-up of a workflow step runs again as it was spawned; no
        // step needs it, so nothing else re-opens. (A swarm task's are
        // not retried, like the tasks themselves.)
        levels(workflow, &spawn.root)
            .map_err(|e| format!("`{step}` is a follow-up of `{}`: {e}", spawn.root))?;
        return match refusal(history, step) {
            Some(why) => Err(why),
            None => Ok(Vec::new()),
        };
    }
    let levels = levels(workflow, step)?;
    if let Some(why) = refusal(history, step) {
        return Err(why);
    }
    let not_succeeded = |key: &StepKey| {
        history
            .final_outcome(key)
            .is_some_and(|s| !matches!(s, Settled::Succeeded { .. }))
    };
    let mut also: BTreeSet<StepKey> = BTreeSet::new();
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        if i < last {
            // The workflow step around the child must run again to reach it.
            also.insert(StepKey::new(format!("{}{}", level.prefix, level.id)));
        }
        for d in dependents(level.graph, &level.id) {
            let key = StepKey::new(format!("{}{d}", level.prefix));
            if not_succeeded(&key) {
                also.insert(key);
            }
        }
    }
    let roots: Vec<String> = also
        .iter()
        .chain(std::iter::once(step))
        .map(|k| format!("{k}/"))
        .collect();
    for key in history.steps.keys() {
        if roots.iter().any(|r| key.as_str().starts_with(r)) && not_succeeded(key) {
            also.insert(key.clone());
        }
    }
    also.remove(step);
    Ok(also.into_iter().collect())
}

/// A run's pinned workflow definition.
pub(crate) async fn pinned(
    journal: &Journal,
    meta: &RunMeta,
    modes: &ModeRegistry,
) -> Result<Workflow, EngineError> {
    let bundle = journal
        .blob(&meta.definition_blob)
        .await
        .map_err(|e| EngineError::Definition {
            run: meta.id.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(|| EngineError::Definition {
            run: meta.id.clone(),
            message: "definition blob is missing".into(),
        })?;
    pinning::load(&bundle, modes).map_err(|message| EngineError::Definition {
        run: meta.id.clone(),
        message,
    })
}

/// Records a retry of `step` in a run no process is executing (ended,
/// paused or interrupted); the run is `running` again, and driving it
/// like a resume carries the retry out. Returns the recorded request.
pub async fn request_retry(
    journal: &Journal,
    modes: &ModeRegistry,
    run: &RunId,
    step: &StepKey,
) -> Result<Recorded, EngineError> {
    let meta = journal
        .run(run)
        .await?
        .ok_or_else(|| EngineError::RunNotFound(run.clone()))?;
    let events = read_run(journal, run).await?;
    let history = History::from_events(&events);
    let workflow = pinned(journal, &meta, modes).await?;
    let also = plan_retry(&workflow, &history, step)
        .map_err(|e| EngineError::Refused(format!("run {run}: {e}")))?;
    let event = Event::StepRetryRequested {
        step: step.clone(),
        also,
        at: Millis::now(),
    };
    // The request and the status change land in one commit.
    let seqs = journal
        .append(run, vec![to_entry(&event)?], Some(RunStatus::Running))
        .await?;
    let seq = seqs
        .first()
        .copied()
        .ok_or_else(|| EngineError::Refused("the journal returned no seq".into()))?;
    Ok(Recorded {
        run: run.clone(),
        seq,
        event,
    })
}

/// `Op::RetryStep` on the run this process drives: checked against the
/// journal as it is now, recorded, then handed to the root graph, which
/// runs the step again and then its re-opened dependents.
pub async fn retry_live(ctx: &RunCtx, workflow: &Workflow, step: StepKey) {
    if ctx.cancel.is_cancelled() || ctx.halted().is_some() {
        ctx.rec.refuse(format!(
            "retry of `{step}` refused: the run is stopping (retry it once it has ended)"
        ));
        return;
    }
    let gate = ctx.retry.gate.lock().await;
    if !gate.open {
        ctx.rec.refuse(format!(
            "retry of `{step}` refused: the run is ending; `lev retry` it once it has ended"
        ));
        return;
    }
    let events = match read_run(ctx.rec.journal(), ctx.rec.run()).await {
        Ok(e) => e,
        Err(e) => {
            ctx.rec
                .refuse(format!("retry of `{step}` refused: journal: {e}"));
            return;
        }
    };
    let history = History::from_events(&events);
    // A child step is reached by running its workflow step again, which
    // cannot happen while that step still runs its child graph.
    let parts: Vec<&str> = step.as_str().split('/').collect();
    for n in 1..parts.len() {
        let outer = StepKey::new(parts[..n].join("/"));
        if history.steps.contains_key(&outer) && history.final_outcome(&outer).is_none() {
            ctx.rec.refuse(format!(
                "retry of `{step}` refused: it belongs to `{outer}`, which is still running; retry it once `{outer}` has ended"
            ));
            return;
        }
    }
    let also = match plan_retry(workflow, &history, &step) {
        Ok(a) => a,
        Err(e) => {
            ctx.rec.refuse(format!("retry refused: {e}"));
            return;
        }
    };
    let event = Event::StepRetryRequested {
        step: step.clone(),
        also: also.clone(),
        at: ctx.now(),
    };
    if let Err(e) = ctx.rec.record(event.clone()).await {
        ctx.rec
            .refuse(format!("retry of `{step}` not recorded, so not done: {e}"));
        return;
    }
    ctx.followups_book(|b| b.apply(&event));
    let keys: Vec<StepKey> = std::iter::once(step).chain(also).collect();
    // Inside a re-opened workflow step, what settled and is not re-opened
    // is adopted, including what settled in this process.
    let prefixes: Vec<String> = keys.iter().map(|k| format!("{k}/")).collect();
    let adopt: Vec<(StepKey, Settled)> = history
        .steps
        .keys()
        .filter(|k| !keys.contains(k) && prefixes.iter().any(|p| k.as_str().starts_with(p)))
        .filter_map(|k| Some((k.clone(), history.final_outcome(k)?.clone())))
        .collect();
    if let (Ok(mut attempts), Ok(mut adopted)) =
        (ctx.retry.attempts.lock(), ctx.retry.adopted.lock())
    {
        for k in &keys {
            attempts.insert(k.clone(), history.next_attempt(k));
            adopted.remove(k);
        }
        for (k, settled) in adopt {
            attempts.remove(&k);
            adopted.insert(k, settled);
        }
    }
    let _ = gate.tx.send(keys);
}

/// Whether the journal shows `step` as a step a retry may re-open (for
/// participants that only see the journal, like the control socket).
pub fn retryable(events: &[Recorded], step: &StepKey) -> Result<(), String> {
    match refusal(&History::from_events(events), step) {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Attempt, Seq, Usage};
    use std::path::Path;

    const PARENT: &str = r#"
version: 1
kind: workflow
id: parent
name: Parent
steps:
  prep:
    type: shell
    run: echo prep
  sub:
    type: workflow
    needs: [prep]
    uses: child.yaml
  report:
    type: shell
    needs: [sub]
    run: echo report
  aside:
    type: shell
    needs: [prep]
    run: echo aside
"#;

    const CHILD: &str = r#"
version: 1
kind: workflow
id: child
name: Child
steps:
  build:
    type: shell
    run: echo build
  test:
    type: shell
    needs: [build]
    run: echo test
  lint:
    type: shell
    run: echo lint
"#;

    fn workflow() -> Workflow {
        let modes = ModeRegistry::builtin().unwrap();
        crate::spec::load_workflow_with(Path::new("parent.yaml"), PARENT, &modes, &|_| {
            Ok(CHILD.to_string())
        })
        .unwrap()
    }

    fn history(events: Vec<Event>) -> History {
        let recorded: Vec<Recorded> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Recorded {
                run: RunId("r".into()),
                seq: Seq(i as u64 + 1),
                event,
            })
            .collect();
        History::from_events(&recorded)
    }

    fn started(step: &str) -> Event {
        Event::StepStarted {
            step: StepKey::new(step),
            attempt: Attempt(1),
            fingerprint: "f".into(),
            kind: "shell".into(),
            mode: None,
            idempotent: false,
            hints: Vec::new(),
            at: Millis(1),
        }
    }

    fn ok(step: &str) -> Event {
        Event::StepSucceeded {
            step: StepKey::new(step),
            attempt: Attempt(1),
            outputs: Default::default(),
            usage: Usage::default(),
            at: Millis(2),
        }
    }

    fn failed(step: &str) -> Event {
        Event::StepFailed {
            step: StepKey::new(step),
            attempt: Attempt(1),
            error: "exit 1".into(),
            retry_in_ms: None,
            usage: Usage::default(),
            at: Millis(2),
        }
    }

    fn skipped(step: &str) -> Event {
        Event::StepSkipped {
            step: StepKey::new(step),
            reason: "a needed step did not succeed".into(),
            at: Millis(2),
        }
    }

    /// prep ok; sub/build failed, sub/test skipped, sub/lint ok; sub
    /// failed; report skipped; aside ok.
    fn failed_child_run() -> History {
        history(vec![
            started("prep"),
            ok("prep"),
            started("sub"),
            started("aside"),
            started("sub/build"),
            started("sub/lint"),
            failed("sub/build"),
            skipped("sub/test"),
            ok("sub/lint"),
            ok("aside"),
            failed("sub"),
            skipped("report"),
        ])
    }

    fn keys(v: &[StepKey]) -> Vec<&str> {
        v.iter().map(StepKey::as_str).collect()
    }

    #[test]
    fn a_child_step_reopens_its_dependents_its_workflow_step_and_theirs() {
        let wf = workflow();
        let h = failed_child_run();
        let also = plan_retry(&wf, &h, &StepKey::new("sub/build")).unwrap();
        // Not `prep`, `aside` or `sub/lint`: they succeeded and stay adopted.
        assert_eq!(keys(&also), ["report", "sub", "sub/test"]);
        // Retrying the workflow step re-opens its failed children too.
        let also = plan_retry(&wf, &h, &StepKey::new("sub")).unwrap();
        assert_eq!(keys(&also), ["report", "sub/build", "sub/test"]);
    }

    #[test]
    fn only_a_failed_step_of_the_workflow_is_retried() {
        let wf = workflow();
        let h = failed_child_run();
        let e = plan_retry(&wf, &h, &StepKey::new("prep")).unwrap_err();
        assert!(e.contains("succeeded"), "{e}");
        let e = plan_retry(&wf, &h, &StepKey::new("report")).unwrap_err();
        assert!(e.contains("was skipped, not failed"), "{e}");
        let e = plan_retry(&wf, &h, &StepKey::new("nope")).unwrap_err();
        assert!(
            e.contains("no step `nope`") && e.contains("prep, sub"),
            "{e}"
        );
        let e = plan_retry(&wf, &h, &StepKey::new("sub/nope")).unwrap_err();
        assert!(e.contains("child workflow `sub` has no step `nope`"), "{e}");
        let e = plan_retry(&wf, &h, &StepKey::new("prep/x")).unwrap_err();
        assert!(e.contains("not a workflow step"), "{e}");
    }

    #[test]
    fn the_history_fold_reopens_what_a_retry_names_and_counts_attempts_on() {
        let mut events = vec![
            started("prep"),
            ok("prep"),
            started("sub"),
            failed("sub"),
            skipped("report"),
            Event::RunFinished {
                status: RunStatus::Failed,
                outputs: Default::default(),
                error: None,
                usage: Usage::default(),
                at: Millis(3),
            },
        ];
        let before = history(events.clone());
        assert!(before.finished);
        assert_eq!(before.next_attempt(&StepKey::new("sub")), Attempt(2));
        assert_eq!(before.next_attempt(&StepKey::new("report")), Attempt(1));
        events.push(Event::StepRetryRequested {
            step: StepKey::new("sub"),
            also: vec![StepKey::new("report")],
            at: Millis(4),
        });
        let h = history(events);
        assert!(!h.finished);
        assert!(h.final_outcome(&StepKey::new("sub")).is_none());
        assert!(h.final_outcome(&StepKey::new("report")).is_none());
        assert!(h.final_outcome(&StepKey::new("prep")).is_some());
        let e = plan_retry(&workflow(), &h, &StepKey::new("sub")).unwrap_err();
        assert!(e.contains("already under way"), "{e}");
    }
}
