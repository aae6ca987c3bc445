//! Steps in their own git worktree (`workspace: { worktree: true }`): the
//! worktree is made (or found again) before the step renders, so its
//! shell `cwd`, its agent's file tools and `run_shell` all work there; the
//! fact is journaled (`worktree` / `ready`) so resume and replay know the
//! path and branch. When an attempt ends its changes are committed on the
//! branch and the diff's size against the merge-base is journaled
//! (`worktree` / `changed`). Git itself is `crate::isolation`'s.

use super::attempt::{AttemptCtx, StepError};
use super::context::RunCtx;
use crate::isolation::{self, Worktree};
use crate::protocol::{Event, StepKey, WorktreeFact};
use crate::spec::Step;

/// The step's worktree, made ready and journaled; `None` when the step
/// does not ask for one. Calling it again (resume, retry) reuses it.
pub async fn prepare(ctx: &RunCtx, key: &StepKey, step: &Step) -> Result<Option<Worktree>, String> {
    let Some(ws) = step.workspace.as_ref().filter(|w| w.worktree) else {
        return Ok(None);
    };
    let recorded = ctx.history.worktrees.get(key);
    // On resume the recorded base wins: the branch was made from it.
    let base = recorded.map(|w| w.base.clone()).or_else(|| ws.base.clone());
    let workspace = ctx.workspace.clone();
    let run = ctx.rec.run().to_string();
    let step_name = key.to_string();
    let made = tokio::task::spawn_blocking(move || {
        isolation::ensure(&workspace, &run, &step_name, base.as_deref())
    })
    .await
    .map_err(|e| format!("making the worktree of step `{key}` failed: {e}"))?
    .map_err(|e| format!("step `{key}` needs its own git worktree: {e}"))?;
    if recorded != Some(&made) {
        let event = Event::Worktree {
            step: key.clone(),
            fact: isolation::ready_fact(&made),
            at: ctx.now(),
        };
        ctx.rec
            .record(event)
            .await
            .map_err(|e| format!("journal: {e}"))?;
    }
    Ok(Some(made))
}

/// Commits what the attempt changed on the step's branch (a message
/// naming the run, step and attempt) and journals the diff's size.
pub async fn commit(actx: &AttemptCtx, wt: &Worktree) -> Result<(), String> {
    let message = format!(
        "lev: run {} step {} (attempt {})",
        actx.ctx.rec.run(),
        actx.key,
        actx.attempt
    );
    let w = wt.clone();
    let (commit, stat) = tokio::task::spawn_blocking(move || {
        let commit = isolation::commit_all(&w.path, &message)?;
        let stat = isolation::stat(&w.repo, &w.path, &w.base, &w.branch)?;
        Ok::<_, isolation::IsolationError>((commit, stat))
    })
    .await
    .map_err(|e| format!("committing the worktree of step `{}` failed: {e}", actx.key))?
    .map_err(|e| {
        format!(
            "the changes of step `{}` could not be committed on {}: {e}",
            actx.key, wt.branch
        )
    })?;
    let event = Event::Worktree {
        step: actx.key.clone(),
        fact: WorktreeFact::Changed {
            branch: wt.branch.clone(),
            commit,
            files_changed: stat.files_changed,
            insertions: stat.insertions,
            deletions: stat.deletions,
        },
        at: actx.ctx.now(),
    };
    // Through the attempt: a deferred final reply goes first, same commit.
    actx.record(event).await.map(|_| ()).map_err(|e| match e {
        StepError::Fatal(text) => text,
        other => format!("journal: {other:?}"),
    })
}
