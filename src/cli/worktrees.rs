//! `lev worktrees RUN`: the run's git worktrees (one per step that asked
//! for one) with branch, path and diff size; `--diff STEP` prints a step's
//! diff, `--merge STEP` merges its branch into its base, `--discard STEP`
//! removes its worktree and branch. Merges and discards are journaled
//! (`worktree` events), so replay and the TUI see them.
#![allow(clippy::print_stdout)]

use super::access::Access;
use super::context::error;
use super::exit;
use crate::isolation::{self, Fate, StepWorktree};
use crate::paths::Paths;
use std::collections::BTreeMap;

use crate::protocol::{Event, Op, Recorded, RunId, Settle, StepKey};

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
            error(&format!("no run {run} in {}", paths.journal_name()));
            return exit::USAGE;
        }
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    // Each worktree with the run that made it: this one, or (a spread
    // run) the step run that executed its step.
    let mut owned: Vec<(RunId, StepWorktree)> = isolation::fold(&events)
        .into_iter()
        .map(|w| (run.clone(), w))
        .collect();
    match step_runs_worktrees(&mut access, &events).await {
        Ok(more) => owned.extend(more),
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    }
    let all: Vec<StepWorktree> = owned.iter().map(|(_, w)| w.clone()).collect();
    let step = match &action {
        Action::List => return list(&run, &all, json),
        Action::Diff(s) | Action::Merge(s) | Action::Discard(s) => s,
    };
    let Some((owner, found)) = owned.iter().find(|(_, w)| w.step.as_str() == step) else {
        error(&isolation::no_worktree(&run, step, &all));
        return exit::USAGE;
    };
    match action {
        Action::Diff(_) => match access.worktree_diff(owner, &found.step).await {
            Ok(text) => {
                print!("{text}");
                exit::OK
            }
            Err(e) => {
                error(&e);
                exit::FAILED
            }
        },
        Action::Merge(_) | Action::Discard(_) => {
            // Recording needs the journal itself; another lev process holds it.
            let how = match action {
                Action::Discard(_) => Settle::Discard,
                _ => Settle::Merge,
            };
            // Recorded by the engine that holds the journal: this process's,
            // or (it refuses while the run executes) the host's.
            let op = Op::SettleWorktree {
                run: owner.clone(),
                step: found.step.clone(),
                how,
            };
            match access.submit(op).await {
                Ok(done) => {
                    if how == Settle::Merge {
                        println!(
                            "{}; `lev worktrees {run} --discard {}` removes the worktree and branch",
                            done.describe(),
                            found.step
                        );
                    } else {
                        println!("{}", done.describe());
                    }
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

/// The worktrees of a spread run's step runs (its steps' latest), each
/// with its step run.
async fn step_runs_worktrees(
    access: &mut Access,
    events: &[Recorded],
) -> Result<Vec<(RunId, StepWorktree)>, String> {
    let mut latest: BTreeMap<&StepKey, &RunId> = BTreeMap::new();
    for r in events {
        if let Event::StepDelegated { step, run, .. } = &r.event {
            latest.insert(step, run);
        }
    }
    let mut out = Vec::new();
    for child in latest.into_values() {
        let events = access.events(child).await?;
        out.extend(
            isolation::fold(&events)
                .into_iter()
                .map(|w| (child.clone(), w)),
        );
    }
    Ok(out)
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
                "pushed_to": w.pushed.as_ref().map(|p| &p.remote),
                "files_changed": stat.map(|s| s.files_changed),
                "insertions": stat.map(|s| s.insertions),
                "deletions": stat.map(|s| s.deletions),
            });
            println!("{v}");
        } else {
            let size = stat.map_or_else(|| "-".to_string(), |s| isolation::stat_text(&s));
            let pushed = w
                .pushed
                .as_ref()
                .map(|p| format!("; pushed to {}", p.remote))
                .unwrap_or_default();
            println!("{}  {}  ({state}; {size}{pushed})", w.step, t.branch);
            let elsewhere = if t.repo.is_dir() {
                ""
            } else {
                "  (on the machine that ran it)"
            };
            println!("    {}{elsewhere}", t.path.display());
        }
    }
    exit::OK
}
