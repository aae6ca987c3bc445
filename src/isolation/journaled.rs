//! What a run's journal says about its worktrees: the facts folded per
//! step (for `lev worktrees`, the TUI and resume), and how a fact reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{DiffStat, Worktree};
use crate::protocol::{Event, Recorded, RunId, StepKey, WorktreeFact};

/// Where a step's branch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Neither merged nor discarded yet.
    Open,
    Merged {
        into: String,
        commit: String,
    },
    Discarded,
}

/// Why `step` of `run` has no worktree to act on, naming the steps that do.
pub fn no_worktree(run: &RunId, step: &str, all: &[StepWorktree]) -> String {
    let steps: Vec<&str> = all.iter().map(|w| w.step.as_str()).collect();
    format!(
        "step `{step}` of run {run} has no worktree; {}",
        if steps.is_empty() {
            "the run has none".to_string()
        } else {
            format!("steps with one: {}", steps.join(", "))
        }
    )
}

/// One step's worktree as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepWorktree {
    pub step: StepKey,
    pub worktree: Worktree,
    /// The diff recorded when the step ended, with its commit (if any).
    pub changed: Option<(DiffStat, Option<String>)>,
    /// Where the branch was last pushed (`--push-to`), and its commit then.
    pub pushed: Option<Pushed>,
    pub fate: Fate,
}

/// A step's branch as last pushed to a remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub remote: String,
    pub commit: String,
}

/// The worktree a `Ready` fact describes.
pub fn from_ready(fact: &WorktreeFact) -> Option<Worktree> {
    match fact {
        WorktreeFact::Ready {
            repo,
            path,
            root,
            branch,
            base,
            base_commit,
            started_from,
        } => Some(Worktree {
            repo: PathBuf::from(repo),
            path: PathBuf::from(path),
            root: PathBuf::from(root),
            branch: branch.clone(),
            base: base.clone(),
            base_commit: base_commit.clone(),
            started_from: started_from.clone(),
        }),
        _ => None,
    }
}

/// Refuses a worktree whose journaled branch or folder lev would not have
/// made (a damaged or hostile journal): merging and discarding delete
/// branches and folders, so only `lev/…` branches and folders under the
/// repository's `.lev/worktrees/` are acted on.
pub fn check_owned(w: &Worktree) -> Result<(), super::IsolationError> {
    use std::path::Component;
    let inside = w.path.starts_with(w.repo.join(super::WORKTREES_DIR))
        && w.path
            .components()
            .all(|c| !matches!(c, Component::ParentDir))
        && w.path != w.repo.join(super::WORKTREES_DIR);
    let branch = w.branch.starts_with("lev/")
        && !w.branch.contains("..")
        && !w
            .branch
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        && !w.base.starts_with('-')
        && !w.base_commit.starts_with('-');
    if inside && branch {
        return Ok(());
    }
    Err(super::IsolationError::Refused(format!(
        "the journal names branch `{}` at {} for this step, which lev does not make (its worktrees are lev/… branches under {}/{}); nothing was done",
        w.branch,
        w.path.display(),
        w.repo.display(),
        super::WORKTREES_DIR
    )))
}

/// The `Ready` fact for a worktree.
pub fn ready_fact(w: &Worktree) -> WorktreeFact {
    WorktreeFact::Ready {
        repo: w.repo.display().to_string(),
        path: w.path.display().to_string(),
        root: w.root.display().to_string(),
        branch: w.branch.clone(),
        base: w.base.clone(),
        base_commit: w.base_commit.clone(),
        started_from: w.started_from.clone(),
    }
}

/// Folds a run's events into its steps' worktrees, in step order. A step
/// made ready again (a retry, after a discard) starts over as open.
pub fn fold(events: &[Recorded]) -> Vec<StepWorktree> {
    let mut out: BTreeMap<StepKey, StepWorktree> = BTreeMap::new();
    for r in events {
        let Event::Worktree { step, fact, .. } = &r.event else {
            continue;
        };
        if let Some(worktree) = from_ready(fact) {
            // The same branch found again keeps what it holds; a branch
            // made anew (after a discard) starts with nothing.
            let kept = out
                .get(step)
                .filter(|s| s.fate == Fate::Open && s.worktree.branch == worktree.branch);
            let changed = kept.and_then(|s| s.changed.clone());
            let pushed = kept.and_then(|s| s.pushed.clone());
            out.insert(
                step.clone(),
                StepWorktree {
                    step: step.clone(),
                    worktree,
                    changed,
                    pushed,
                    fate: Fate::Open,
                },
            );
            continue;
        }
        let Some(s) = out.get_mut(step) else {
            continue;
        };
        match fact {
            WorktreeFact::Changed {
                commit,
                files_changed,
                insertions,
                deletions,
                ..
            } => {
                let stat = DiffStat {
                    files_changed: *files_changed,
                    insertions: *insertions,
                    deletions: *deletions,
                };
                // An attempt that committed nothing keeps the earlier commit.
                let commit = commit
                    .clone()
                    .or_else(|| s.changed.as_ref().and_then(|(_, c)| c.clone()));
                s.changed = Some((stat, commit));
            }
            WorktreeFact::Merged { into, commit, .. } => {
                s.fate = Fate::Merged {
                    into: into.clone(),
                    commit: commit.clone(),
                };
            }
            WorktreeFact::Pushed { remote, commit, .. } => {
                s.pushed = Some(Pushed {
                    remote: remote.clone(),
                    commit: commit.clone(),
                });
            }
            WorktreeFact::Discarded { .. } => s.fate = Fate::Discarded,
            WorktreeFact::Ready { .. } => {}
        }
    }
    out.into_values().collect()
}

/// `+3 -1 in 2 files`.
pub fn stat_text(s: &DiffStat) -> String {
    crate::protocol::describe::diff_stat(s.files_changed, s.insertions, s.deletions)
}
