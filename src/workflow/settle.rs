//! Merging or discarding a step's worktree after its run ended, and
//! journaling it (`worktree` / `merged`, `discarded`): one code path for
//! `lev worktrees --merge/--discard` and the workbench's overview keys.
//! Both are safe to repeat after a crash in between: git finds nothing
//! left to do and the fact is recorded then.

use super::Recorder;
use crate::isolation::{self, Fate, IsolationError, StepWorktree};
use crate::journal::Journal;
pub use crate::protocol::Settle;
use crate::protocol::{Event, Millis, Recorded, RunId, WorktreeFact};

/// What settling did: a line for the user, and the events it recorded
/// (in order), for a screen that folds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub text: String,
    pub recorded: Vec<Recorded>,
}

/// Merges or discards `found` (a step's worktree as the run's journal
/// folds it) and journals the outcome in `run`. Git runs on the blocking
/// pool. The caller makes sure no engine drives the run meanwhile.
pub async fn settle_worktree(
    journal: &Journal,
    run: &RunId,
    found: &StepWorktree,
    how: Settle,
) -> Result<Settled, String> {
    let meta = journal
        .run(run)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no run {run}"))?;
    let rec = Recorder::new(journal.clone(), run.clone(), meta.last_seq, Vec::new());
    let mut recorded = Vec::new();
    let w = found.worktree.clone();
    let step = found.step.clone();
    if how == Settle::Discard {
        let (repo, path, branch) = (w.repo.clone(), w.path.clone(), w.branch.clone());
        let remote = found.pushed.as_ref().map(|p| p.remote.clone());
        let removed = blocking(move || {
            // The remote's copy first: if it cannot go, nothing here went
            // either, and the discard can simply be tried again.
            let unpushed = match &remote {
                Some(remote) => isolation::unpush(&repo, &branch, remote)?,
                None => false,
            };
            Ok(isolation::discard(&repo, &path, &branch)? || unpushed)
        })
        .await?;
        if removed || found.fate != Fate::Discarded {
            let fact = WorktreeFact::Discarded {
                branch: w.branch.clone(),
            };
            recorded.push(record(&rec, found, fact).await?);
        }
        let text = format!(
            "step {step}: worktree {} removed and branch {} deleted{}",
            w.path.display(),
            w.branch,
            found
                .pushed
                .as_ref()
                .map(|p| format!(" (here and on {})", p.remote))
                .unwrap_or_default()
        );
        return Ok(Settled { text, recorded });
    }
    if found.fate == Fate::Discarded {
        return Err(format!(
            "step `{step}`'s worktree was discarded; there is nothing to merge"
        ));
    }
    if let Some(p) = found.pushed.clone() {
        // Made on another machine: its branch comes from the remote.
        let (repo, branch) = (w.repo.clone(), w.branch.clone());
        blocking(move || isolation::fetch(&repo, &branch, &p.remote, &p.commit)).await?;
    }
    if w.path.exists() {
        // Work the step left uncommitted (it was stopped) goes in too.
        let message = format!("lev: run {run} step {step} (uncommitted at merge)");
        let t = w.clone();
        let committed = blocking(move || {
            let commit = isolation::commit_all(&t.path, &message)?;
            let stat = isolation::stat(&t.repo, &t.path, &t.base, &t.branch)?;
            Ok((commit, stat))
        })
        .await?;
        if let (Some(commit), s) = committed {
            let fact = WorktreeFact::Changed {
                branch: w.branch.clone(),
                commit: Some(commit),
                files_changed: s.files_changed,
                insertions: s.insertions,
                deletions: s.deletions,
            };
            recorded.push(record(&rec, found, fact).await?);
        }
    }
    let message = format!("lev: merge step {step} of run {run} ({})", w.branch);
    let t = w.clone();
    let (stat, merged) = blocking(move || {
        let stat = isolation::stat(&t.repo, &t.path, &t.base, &t.branch)?;
        let merged = isolation::merge(&t.repo, &t.base, &t.branch, &message)?;
        Ok((stat, merged))
    })
    .await?;
    let already = matches!(found.fate, Fate::Merged { .. }) && !merged.changed;
    if !already {
        let fact = WorktreeFact::Merged {
            branch: w.branch.clone(),
            into: w.base.clone(),
            commit: merged.commit.clone(),
        };
        recorded.push(record(&rec, found, fact).await?);
    }
    let short = merged.commit.get(..10).unwrap_or(&merged.commit);
    let text = format!(
        "step {step}: {} merged into {} at {short} ({}){}",
        w.branch,
        w.base,
        isolation::stat_text(&stat),
        if merged.changed {
            ""
        } else {
            ", already merged before"
        },
    );
    Ok(Settled { text, recorded })
}

async fn record(
    rec: &Recorder,
    found: &StepWorktree,
    fact: WorktreeFact,
) -> Result<Recorded, String> {
    let event = Event::Worktree {
        step: found.step.clone(),
        fact,
        at: Millis::now(),
    };
    let seq = rec
        .record(event.clone())
        .await
        .map_err(|e| format!("journal: {e}"))?;
    Ok(Recorded {
        run: rec.run().clone(),
        seq,
        event,
    })
}

/// Runs git off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IsolationError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("git stopped: {e}"))?
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "settle_tests.rs"]
mod tests;
