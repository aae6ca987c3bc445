//! Steps' branches through a git remote (`--push-to`): the machine that ran
//! a step pushes its branch when an attempt ends; a machine that diffs,
//! merges or discards it later fetches it first when it lacks that commit,
//! and a discard deletes it there too. The remote is whatever git calls
//! it (a remote's name or a URL): its transport and credentials are git's.

use std::path::{Path, PathBuf};

use super::git::Git;
use super::ops::write_lock;
use super::{IsolationError, Worktree};

/// Checks, before a run is made, that `remote` is something git can push
/// to from `workspace`: a remote of its repository, or a URL or path.
pub fn check_remote(workspace: &Path, remote: &str) -> Result<(), IsolationError> {
    let git = Git::new(workspace);
    if !git.ok(&["rev-parse", "--show-toplevel"])? {
        return Err(IsolationError::Refused(format!(
            "--push-to {remote}: {} is not inside a git repository, so no branch can be pushed from it",
            workspace.display()
        )));
    }
    plain(remote)?;
    if looks_like_url(remote) || git.ok(&["remote", "get-url", "--push", remote])? {
        return Ok(());
    }
    let known = git.run(&["remote"]).unwrap_or_default();
    let known: Vec<&str> = known
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Err(IsolationError::Refused(format!(
        "--push-to {remote}: the repository at {} has no remote `{remote}` ({}); add it with git remote add {remote} URL, or give a URL",
        workspace.display(),
        if known.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", known.join(", "))
        }
    )))
}

/// `remote` as git may take it on a command line: not empty, and not an
/// option (a journal from elsewhere says which remote its runs push to).
fn plain(remote: &str) -> Result<&str, IsolationError> {
    if remote.trim().is_empty() || remote.starts_with('-') {
        return Err(IsolationError::Refused(format!(
            "--push-to `{remote}` names no git remote"
        )));
    }
    Ok(remote)
}

/// A URL (`scheme://…`, scp-like `host:path`) or a path, not a remote's name.
fn looks_like_url(remote: &str) -> bool {
    remote.contains("://") || remote.contains(':') || remote.contains('/')
}

/// Pushes `branch` of the repository at `repo` to `remote`, replacing what
/// is there (the branch is the step's own: a step made again after a
/// discard starts a new history). Returns the commit pushed.
pub fn push(repo: &Path, branch: &str, remote: &str) -> Result<String, IsolationError> {
    let remote = plain(remote)?;
    let git = Git::to_remote(repo);
    let commit = git.line(&["rev-parse", "--verify", &format!("refs/heads/{branch}")])?;
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    // No lock: a push writes only the remote-tracking ref of its own branch,
    // and a slow remote must not hold up the other steps' git.
    git.run(&["push", "--quiet", "--no-verify", remote, &refspec])?;
    Ok(commit)
}

/// Makes sure the repository at `repo` has `commit` on `branch`, fetching
/// the branch from `remote` when it does not (a machine that never ran the
/// step, or holds an older attempt of it). True when it fetched.
pub fn fetch(
    repo: &Path,
    branch: &str,
    remote: &str,
    commit: &str,
) -> Result<bool, IsolationError> {
    let remote = plain(remote)?;
    if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IsolationError::Refused(format!(
            "the journal says branch `{branch}` was pushed as `{commit}`, which is not a commit id"
        )));
    }
    let git = Git::to_remote(repo);
    let local = format!("refs/heads/{branch}");
    let _guard = write_lock();
    let has = |git: &Git<'_>| -> Result<bool, IsolationError> {
        git.ok(&["merge-base", "--is-ancestor", commit, &local])
    };
    if has(&git)? {
        return Ok(false);
    }
    let refspec = format!("+{local}:{local}");
    git.run(&["fetch", "--quiet", "--no-tags", remote, &refspec])
        .map_err(|e| {
            reworded(e, |said| format!(
                "branch `{branch}` is not in {} and fetching it from `{remote}` (where the step's machine pushed it) failed: {said}",
                repo.display()
            ))
        })?;
    if has(&git)? {
        Ok(true)
    } else {
        Err(IsolationError::Refused(format!(
            "`{remote}` has branch `{branch}` without commit {commit} (pushed there when the step ended); was it changed since?"
        )))
    }
}

/// Before a step's worktree is made: the branches of `steps` (the step
/// itself and the steps it needs) that this clone (the repository of
/// `workspace`) lacks and `remote` has (they ran on another machine) are
/// fetched, so the step goes on from there as it would on one machine.
/// One `ls-remote` and at most one `fetch` for all of them. Returns how
/// many it fetched.
pub fn fetch_earlier(
    workspace: &Path,
    run: &str,
    steps: &[String],
    remote: &str,
) -> Result<usize, IsolationError> {
    let remote = plain(remote)?;
    let Ok(top) = Git::new(workspace).line(&["rev-parse", "--show-toplevel"]) else {
        // Not a repository: `ensure` says so.
        return Ok(0);
    };
    let git = Git::to_remote(Path::new(&top));
    let mut missing = Vec::new();
    for step in steps {
        let local = format!("refs/heads/{}", super::branch_name(run, step));
        if !git.ok(&["show-ref", "--verify", "--quiet", &local])? {
            missing.push(local);
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    // Unreachable, the step's work could not travel either: say so now,
    // before the work is done.
    let mut ask = vec!["ls-remote", "--heads", remote];
    ask.extend(missing.iter().map(String::as_str));
    let there = git.run(&ask).map_err(|e| {
        reworded(e, |said| {
            format!("cannot reach `{remote}` (--push-to), where the step's branch goes: {said}")
        })
    })?;
    let refspecs: Vec<String> = missing
        .iter()
        .filter(|local| {
            there
                .lines()
                .any(|l| l.split('\t').nth(1) == Some(local.as_str()))
        })
        .map(|local| format!("+{local}:{local}"))
        .collect();
    if refspecs.is_empty() {
        return Ok(0);
    }
    let mut fetch = vec!["fetch", "--quiet", "--no-tags", remote];
    fetch.extend(refspecs.iter().map(String::as_str));
    let _guard = write_lock();
    git.run(&fetch)?;
    Ok(refspecs.len())
}

/// A git failure told in lev's words around what git said; other errors
/// as they are.
fn reworded(e: IsolationError, words: impl FnOnce(&str) -> String) -> IsolationError {
    match e {
        IsolationError::Git { said, .. } => IsolationError::Refused(words(&said)),
        other => other,
    }
}

/// Deletes `branch` on `remote`. False when it was not there.
pub fn unpush(repo: &Path, branch: &str, remote: &str) -> Result<bool, IsolationError> {
    let remote = plain(remote)?;
    let git = Git::to_remote(repo);
    let there = git.run(&[
        "ls-remote",
        "--heads",
        remote,
        &format!("refs/heads/{branch}"),
    ])?;
    if there.trim().is_empty() {
        return Ok(false);
    }
    git.run(&["push", "--quiet", "--no-verify", remote, "--delete", branch])?;
    Ok(true)
}

/// `w` as seen from a machine that does not have the repository the step
/// ran in: the same branch and places in the repository of `workspace`
/// (this machine's clone), where its pushed branch is fetched to.
pub fn relocated(w: &Worktree, workspace: &Path) -> Result<Worktree, IsolationError> {
    let here = Git::new(workspace);
    let top = here.line(&["rev-parse", "--show-toplevel"]).map_err(|_| {
        IsolationError::Refused(format!(
            "the step's branch {} was made in {}, which is not on this machine, and {} is not in a git repository to fetch it to; run lev in a clone of the repository (or give --workspace)",
            w.branch,
            w.repo.display(),
            workspace.display()
        ))
    })?;
    let repo = PathBuf::from(top);
    let repo = repo.canonicalize().unwrap_or(repo);
    let moved = |p: &Path| match p.strip_prefix(&w.repo) {
        Ok(rest) => repo.join(rest),
        Err(_) => p.to_path_buf(),
    };
    Ok(Worktree {
        path: moved(&w.path),
        root: moved(&w.root),
        repo,
        ..w.clone()
    })
}
