//! `lev worktrees RUN`: the run's git worktrees (one per step that asked
//! for one) with branch, path and diff size; `--diff STEP` prints a step's
//! diff, `--merge STEP` merges its branch into its base, `--discard STEP`
//! removes its worktree and branch. Merges and discards are journaled
//! (`worktree` events), so replay and the TUI see them.
#![allow(clippy::print_stdout)]

use super::access::Access;
use super::exit;
use super::setup::error;
use crate::isolation::{self, Fate, StepWorktree};
use crate::journal::Journal;
use crate::paths::Paths;
use crate::protocol::{Event, Millis, RunId, WorktreeFact};
use crate::workflow::Recorder;

/// What to do with the run's worktrees.
pub enum Action {
    List,
    Diff(String),
    Merge(String),
    Discard(String),
}

pub async fn run(paths: &Paths, run: &str, action: Action, json: bool) -> u8 {
    let run = RunId(run.to_string());
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let events = match access.run(&run).await {
        Ok(Some(_)) => match access.events(&run).await {
            Ok(e) => e,
            Err(e) => {
                error(&e);
                return exit::FAILED;
            }
        },
        Ok(None) => {
            error(&format!("no run {run} in {}", paths.journal().display()));
            return exit::USAGE;
        }
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    let all = isolation::fold(&events);
    let step = match &action {
        Action::List => return list(&run, &all, json),
        Action::Diff(s) | Action::Merge(s) | Action::Discard(s) => s,
    };
    let Some(found) = all.iter().find(|w| w.step.as_str() == step) else {
        let steps: Vec<&str> = all.iter().map(|w| w.step.as_str()).collect();
        error(&format!(
            "step `{step}` of run {run} has no worktree; {}",
            if steps.is_empty() {
                "the run has none".to_string()
            } else {
                format!("steps with one: {}", steps.join(", "))
            }
        ));
        return exit::USAGE;
    };
    match action {
        Action::Diff(_) => {
            let w = &found.worktree;
            match isolation::diff(&w.repo, &w.path, &w.base, &w.branch) {
                Ok(text) => {
                    print!("{text}");
                    exit::OK
                }
                Err(e) => {
                    error(&e.to_string());
                    exit::FAILED
                }
            }
        }
        Action::Merge(_) | Action::Discard(_) => {
            // Recording needs the journal itself; another lev process holds it.
            let Some(journal) = access.local() else {
                error(&format!(
                    "another lev process is executing runs and holds the journal; merge or discard run {run}'s worktrees when it ends (or from its workbench)"
                ));
                return exit::FAILED;
            };
            drop(access);
            let discard = matches!(action, Action::Discard(_));
            match change(&journal, &run, found, discard).await {
                Ok(text) => {
                    println!("{text}");
                    exit::OK
                }
                Err(e) => {
                    error(&e);
                    exit::FAILED
                }
            }
        }
        Action::List => exit::OK,
    }
}

fn list(run: &RunId, all: &[StepWorktree], json: bool) -> u8 {
    if all.is_empty() && !json {
        println!(
            "run {run} has no worktrees (no step asked for `workspace: {{ worktree: true }}`)"
        );
        return exit::OK;
    }
    for w in all {
        let t = &w.worktree;
        // An open branch as it is now, uncommitted work included.
        // A merged branch's merge-base is its own tip: its size is the
        // journaled one.
        let stat = match w.fate {
            Fate::Open => isolation::stat(&t.repo, &t.path, &t.base, &t.branch).ok(),
            _ => None,
        }
        .or_else(|| w.changed.as_ref().map(|(s, _)| *s));
        let state = match &w.fate {
            Fate::Open => "open".to_string(),
            Fate::Merged { into, .. } => format!("merged into {into}"),
            Fate::Discarded => "discarded".to_string(),
        };
        if json {
            let v = serde_json::json!({
                "step": w.step, "branch": t.branch, "path": t.path, "root": t.root,
                "repo": t.repo, "base": t.base, "base_commit": t.base_commit, "state": state,
                "commit": w.changed.as_ref().and_then(|(_, c)| c.clone()),
                "files_changed": stat.map(|s| s.files_changed),
                "insertions": stat.map(|s| s.insertions),
                "deletions": stat.map(|s| s.deletions),
            });
            println!("{v}");
        } else {
            let size = stat.map_or_else(|| "-".to_string(), |s| isolation::stat_text(&s));
            println!("{}  {}  ({state}; {size})", w.step, t.branch);
            println!("    {}", t.path.display());
        }
    }
    exit::OK
}

/// Merges or discards one step's worktree, then journals it. Both are
/// safe to repeat after a crash in between: git finds nothing left to do
/// and the fact is recorded then.
async fn change(
    journal: &Journal,
    run: &RunId,
    found: &StepWorktree,
    discard: bool,
) -> Result<String, String> {
    let w = &found.worktree;
    let meta = journal
        .run(run)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no run {run}"))?;
    let rec = Recorder::new(journal.clone(), run.clone(), meta.last_seq, Vec::new());
    let record = |fact: WorktreeFact| {
        let rec = rec.clone();
        let step = found.step.clone();
        async move {
            rec.record(Event::Worktree {
                step,
                fact,
                at: Millis::now(),
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("journal: {e}"))
        }
    };
    if discard {
        let removed = isolation::discard(&w.repo, &w.path, &w.branch).map_err(|e| e.to_string())?;
        if removed || found.fate != Fate::Discarded {
            record(WorktreeFact::Discarded {
                branch: w.branch.clone(),
            })
            .await?;
        }
        return Ok(format!(
            "step {}: worktree {} removed and branch {} deleted",
            found.step,
            w.path.display(),
            w.branch
        ));
    }
    if found.fate == Fate::Discarded {
        return Err(format!(
            "step `{}`'s worktree was discarded; there is nothing to merge",
            found.step
        ));
    }
    if w.path.exists() {
        // Work the step left uncommitted (it was stopped) goes in too.
        let message = format!("lev: run {run} step {} (uncommitted at merge)", found.step);
        let committed = isolation::commit_all(&w.path, &message).map_err(|e| e.to_string())?;
        if committed.is_some() {
            let s =
                isolation::stat(&w.repo, &w.path, &w.base, &w.branch).map_err(|e| e.to_string())?;
            record(WorktreeFact::Changed {
                branch: w.branch.clone(),
                commit: committed,
                files_changed: s.files_changed,
                insertions: s.insertions,
                deletions: s.deletions,
            })
            .await?;
        }
    }
    let stat = isolation::stat(&w.repo, &w.path, &w.base, &w.branch).map_err(|e| e.to_string())?;
    let message = format!("lev: merge step {} of run {run} ({})", found.step, w.branch);
    let merged =
        isolation::merge(&w.repo, &w.base, &w.branch, &message).map_err(|e| e.to_string())?;
    let already = matches!(found.fate, Fate::Merged { .. }) && !merged.changed;
    if !already {
        record(WorktreeFact::Merged {
            branch: w.branch.clone(),
            into: w.base.clone(),
            commit: merged.commit.clone(),
        })
        .await?;
    }
    let short = merged.commit.get(..10).unwrap_or(&merged.commit);
    Ok(format!(
        "step {}: {} merged into {} at {} ({}){}; `lev worktrees {run} --discard {}` removes the worktree and branch",
        found.step,
        w.branch,
        w.base,
        short,
        isolation::stat_text(&stat),
        if merged.changed {
            ""
        } else {
            ", already merged before"
        },
        found.step
    ))
}
