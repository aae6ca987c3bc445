//! Forking a run from a step: a new run, pinned to the same definition
//! (the blob is shared: blobs are content-addressed) with the same inputs
//! and workspace, whose journal copies the parent's entries before the
//! step first appeared and ends with `RunForked`. Driven like a resume,
//! it adopts the steps settled before that point and runs the step and
//! everything after it again. The parent run is only read.

use super::EngineError;
use super::history::History;
use super::recorder::{read_run, to_entry};
use super::retry::{check_step, pinned};
use crate::journal::{Journal, RunMeta};
use crate::protocol::{Event, Millis, Recorded, RunId, RunStatus, Seq, StepKey};
use crate::spec::ModeRegistry;

/// The seqs of `events` (a run's journal) a fork from `step` copies.
/// Left out: everything from the step's first entry on; the entries of
/// steps not settled at that point (they run again in the fork, not as
/// interrupted attempts); and run-level ends (finish, pause, cancel), which
/// are not the fork's.
pub fn fork_prefix(events: &[Recorded], step: &StepKey) -> Result<Vec<Seq>, String> {
    let cut = events
        .iter()
        .position(|r| r.event.step() == Some(step))
        .ok_or_else(|| {
            format!("step `{step}` never started in this run, so there is no point to fork it from")
        })?;
    let prefix = &events[..cut];
    let history = History::from_events(prefix);
    Ok(prefix
        .iter()
        .filter(|r| match &r.event {
            Event::RunFinished { .. }
            | Event::RunPaused { .. }
            | Event::RunCancelRequested { .. } => false,
            // A retry request only re-opens steps; it is kept even when its
            // step is left out, so the steps it re-opened stay re-opened.
            Event::StepRetryRequested { .. } => true,
            e => match e.step() {
                Some(s) => history.final_outcome(s).is_some(),
                None => true,
            },
        })
        .map(|r| r.seq)
        .collect())
}

/// Creates the fork of `run` from `step` in one commit (a kill leaves
/// either the whole fork or none). Returns its id and its `RunForked`.
pub async fn fork_run(
    journal: &Journal,
    modes: &ModeRegistry,
    run: &RunId,
    step: &StepKey,
) -> Result<(RunId, Recorded), EngineError> {
    let meta = journal
        .run(run)
        .await?
        .ok_or_else(|| EngineError::RunNotFound(run.clone()))?;
    let workflow = pinned(journal, &meta, modes).await?;
    check_step(&workflow, step).map_err(|e| EngineError::Refused(format!("run {run}: {e}")))?;
    let events = read_run(journal, run).await?;
    let keep =
        fork_prefix(&events, step).map_err(|e| EngineError::Refused(format!("run {run}: {e}")))?;
    let mut entries: Vec<_> = journal
        .read(run, Seq(1))
        .await?
        .into_iter()
        .filter(|(seq, _)| keep.binary_search(seq).is_ok())
        .map(|(_, e)| e)
        .collect();
    let now = Millis::now();
    let event = Event::RunForked {
        from_run: run.clone(),
        from_step: step.clone(),
        at: now,
    };
    entries.push(to_entry(&event)?);
    let fork = RunId::new();
    let fork_meta = RunMeta {
        id: fork.clone(),
        workflow_id: meta.workflow_id.clone(),
        name: meta.name.clone(),
        source: meta.source.clone(),
        definition_blob: meta.definition_blob.clone(),
        status: RunStatus::Running,
        created_ms: now.0,
        updated_ms: now.0,
        last_seq: 0,
        parent: Some(run.clone()),
        step_run: false,
    };
    let seqs = journal.create_run_with(fork_meta, entries).await?;
    let seq = seqs
        .last()
        .copied()
        .ok_or_else(|| EngineError::Refused("the journal returned no seq".into()))?;
    Ok((
        fork.clone(),
        Recorded {
            run: fork,
            seq,
            event,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Attempt, Usage};

    fn recorded(events: Vec<Event>) -> Vec<Recorded> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Recorded {
                run: RunId("r".into()),
                seq: Seq(i as u64 + 1),
                event,
            })
            .collect()
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

    #[test]
    fn the_prefix_keeps_settled_steps_and_drops_unsettled_ones_and_run_ends() {
        let events = recorded(vec![
            Event::RunStarted {
                workflow_id: "w".into(),
                name: "w".into(),
                source: "w.yaml".into(),
                definition_hash: "h".into(),
                inputs: Default::default(),
                seed: 1,
                workspace: None,
                steps: Vec::new(),
                flowmind: None,
                spread: false,
                step_of: None,
                push_to: None,
                at: Millis(0),
            },
            started("a"),
            started("slow"),
            ok("a"),
            Event::RunCancelRequested { at: Millis(2) },
            started("b"),
            ok("slow"),
            ok("b"),
        ]);
        // Cut before `b`: `slow` was still running there, so it runs again.
        let keep = fork_prefix(&events, &StepKey::new("b")).unwrap();
        assert_eq!(keep, [Seq(1), Seq(2), Seq(4)]);
        let e = fork_prefix(&events, &StepKey::new("never")).unwrap_err();
        assert!(e.contains("never started"), "{e}");
    }
}
