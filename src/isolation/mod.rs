//! Git worktree isolation: a step that asks for it (`workspace: {
//! worktree: true }`, or a swarm task under `lev workflow --worktrees`)
//! works in its own git worktree on its own branch, and the user later
//! reads its diff against the merge-base and merges or discards it.
//!
//! Runs the real `git` (no libgit2): what lev does is what the user would
//! type, and an error quotes what git said. Worktrees live at
//! `<repo>/.lev/worktrees/<run>/<step>` on branch `lev/<run>/<step>`; that
//! folder is added to the repository's `info/exclude`, so the main
//! worktree's status never shows it. Every call is blocking (run it on the
//! blocking pool) and idempotent where a crash can repeat it: creating an
//! existing worktree reuses it, committing a clean worktree commits
//! nothing, merging a merged branch merges nothing, discarding a discarded
//! one removes nothing.
//!
//! Depends only on `protocol` (the facts it folds); must not depend on
//! `journal`, `workflow` or any participant.

mod git;
mod journaled;
mod ops;
mod remote;
#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;

pub use journaled::{
    Fate, Pushed, StepWorktree, check_owned, fold, from_ready, no_worktree, ready_fact, stat_text,
};
pub use ops::{commit_all, diff, discard, ensure, ensure_on, merge, stat};
pub use remote::{check_remote, fetch, fetch_earlier, push, relocated, unpush};

/// Where the worktrees live, relative to the repository's top level.
pub const WORKTREES_DIR: &str = ".lev/worktrees";

/// A step's worktree as created (or found again) by [`ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worktree {
    /// Top level of the main worktree (where merges go).
    pub repo: PathBuf,
    /// Top level of the step's worktree.
    pub path: PathBuf,
    /// The step's root inside it: `path` plus the workspace's folder
    /// inside the repository (the same place the run's workspace is).
    pub root: PathBuf,
    /// `lev/<run>/<step>`.
    pub branch: String,
    /// The branch (or commit, for a detached HEAD) it was made from.
    pub base: String,
    /// Where the branch left `base`: the merge-base its diff is read against.
    pub base_commit: String,
    /// The branches of the steps it needs whose work it started with
    /// (merged in when the branch was made; empty when found again).
    pub started_from: Vec<String>,
}

/// Size of a diff, as `git diff --numstat` counts it (binary files count
/// as changed with no lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStat {
    pub files_changed: u32,
    pub insertions: u32,
    pub deletions: u32,
}

/// How a merge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// HEAD of the base branch afterwards.
    pub commit: String,
    /// False when the branch was already merged (nothing changed).
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error(
        "{workspace} is not inside a git repository, so a step cannot get its own worktree \
         (git said: {said}); run lev in a git repository or drop `workspace: {{ worktree: true }}`"
    )]
    NotARepo { workspace: String, said: String },
    #[error("`{command}` failed in {dir}: {said}")]
    Git {
        command: String,
        dir: String,
        said: String,
    },
    #[error("{0}")]
    Spawn(String),
    /// Git would do it, but not safely; the text says what to do instead.
    #[error("{0}")]
    Refused(String),
    #[error(
        "merging `{branch}` into `{into}` conflicts in {}; the merge was aborted and {repo} is as it was. \
         Merge it by hand (git merge {branch}) or discard it. git said: {said}",
        files.join(", ")
    )]
    Conflict {
        branch: String,
        into: String,
        repo: String,
        files: Vec<String>,
        said: String,
    },
    #[error("{what} {path}: {message}")]
    Io {
        what: &'static str,
        path: String,
        message: String,
    },
}

/// A name git accepts as one ref component and a folder accepts as one
/// folder: letters, digits, `-` and `_` kept, anything else (`/` of a
/// child step's key, dots, spaces) becomes `-`.
pub fn slug(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() { "step".into() } else { out }
}

/// The branch a step of a run works on.
pub fn branch_name(run: &str, step: &str) -> String {
    format!("lev/{}/{}", slug(run), slug(step))
}
