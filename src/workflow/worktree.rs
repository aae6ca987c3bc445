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
    // A step run's branch is its spread run's, as if the step ran there: a
    // retry (a new step run) goes on from the attempts before it.
    let run = ctx
        .spread_parent
        .as_ref()
        .unwrap_or(ctx.rec.run())
        .to_string();
    let step_name = key.to_string();
    let needs = needed_keys(key, step);
    let remote = ctx.push_to.clone();
    let mut made = tokio::task::spawn_blocking(move || {
        if let Some(remote) = &remote {
            // Earlier attempts, and the steps it needs, may have run on
            // another machine.
            let steps: Vec<String> = needs.iter().chain([&step_name]).cloned().collect();
            isolation::fetch_earlier(&workspace, &run, &steps, remote)?;
        }
        let on: Vec<String> = needs
            .iter()
            .map(|need| isolation::branch_name(&run, need))
            .collect();
        isolation::ensure_on(&workspace, &run, &step_name, base.as_deref(), &on)
    })
    .await
    .map_err(|e| format!("making the worktree of step `{key}` failed: {e}"))?
    .map_err(|e| format!("step `{key}` needs its own git worktree: {e}"))?;
    if made.started_from.is_empty()
        && let Some(before) = recorded.filter(|w| w.branch == made.branch)
    {
        // Found again: it holds what it was made with.
        made.started_from = before.started_from.clone();
    }
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

/// The keys of the steps `step` (at `key`) needs, beside it in the same
/// workflow (a child workflow's steps share its prefix). Those that made a
/// worktree give the step's new branch their work.
fn needed_keys(key: &StepKey, step: &Step) -> Vec<String> {
    match key.as_str().strip_suffix(step.id.as_str()) {
        Some(prefix) => step.needs.iter().map(|n| format!("{prefix}{n}")).collect(),
        None => Vec::new(),
    }
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
    record(actx, event).await?;
    match &actx.ctx.push_to {
        Some(remote) => push(actx, wt, remote).await,
        None => Ok(()),
    }
}

/// Pushes the step's branch to `remote` (`--push-to`) and journals it, so
/// another machine can fetch it to diff or merge. A remote that does not
/// answer is tried three times; then the attempt fails saying why (its
/// work stays committed on the branch here).
async fn push(actx: &AttemptCtx, wt: &Worktree, remote: &str) -> Result<(), String> {
    let mut waits = PUSH_RETRY_WAITS.iter();
    let commit = loop {
        let (repo, branch, to) = (wt.repo.clone(), wt.branch.clone(), remote.to_string());
        let pushed = tokio::task::spawn_blocking(move || isolation::push(&repo, &branch, &to))
            .await
            .map_err(|e| format!("pushing the branch of step `{}` failed: {e}", actx.key))?;
        match (pushed, waits.next()) {
            (Ok(commit), _) => break commit,
            (Err(e), Some(wait)) => {
                tracing::warn!(step = %actx.key, "push to {remote} failed, trying again: {e}");
                tokio::time::sleep(*wait).await;
            }
            (Err(e), None) => {
                return Err(format!(
                    "the changes of step `{}` are committed on {} but could not be pushed to `{remote}` (--push-to): {e}",
                    actx.key, wt.branch
                ));
            }
        }
    };
    let event = Event::Worktree {
        step: actx.key.clone(),
        fact: WorktreeFact::Pushed {
            branch: wt.branch.clone(),
            remote: remote.to_string(),
            commit,
        },
        at: actx.ctx.now(),
    };
    record(actx, event).await
}

/// Waits between tries of a push that failed.
const PUSH_RETRY_WAITS: [std::time::Duration; 2] = [
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(3),
];

async fn record(actx: &AttemptCtx, event: Event) -> Result<(), String> {
    actx.record(event).await.map(|_| ()).map_err(|e| match e {
        StepError::Fatal(text) => text,
        other => format!("journal: {other:?}"),
    })
}
