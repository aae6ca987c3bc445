//! The worktree operations: create or find, commit, diff, merge, discard.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::git::{Git, said};
use super::{DiffStat, IsolationError, Merged, WORKTREES_DIR, Worktree, branch_name, slug};

/// Git operations that write refs, the repository's config files or
/// `info/exclude` run one at a time in this process: parallel steps
/// creating worktrees at once would otherwise race on git's lock files.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

pub(super) fn write_lock() -> std::sync::MutexGuard<'static, ()> {
    // A panic while holding it left no half-done state of ours behind.
    WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn io(what: &'static str, path: &Path, e: std::io::Error) -> IsolationError {
    IsolationError::Io {
        what,
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Creates the worktree of `step` of `run` from `base` (default: the
/// branch checked out in `workspace`'s repository, or its commit when
/// HEAD is detached), or finds the one made before: same folder, same
/// branch, however often it is called.
pub fn ensure(
    workspace: &Path,
    run: &str,
    step: &str,
    base: Option<&str>,
) -> Result<Worktree, IsolationError> {
    ensure_on(workspace, run, step, base, &[])
}

/// [`ensure`], and a branch made new starts with the work of the branches
/// in `on` that exist (the steps it needs), merged in that order, so the
/// step sees the files the steps before it wrote. The branch appears only
/// once they are all merged: a crash in between leaves a detached checkout
/// that the next call removes and makes again. A conflict removes it too
/// and names the files.
pub fn ensure_on(
    workspace: &Path,
    run: &str,
    step: &str,
    base: Option<&str>,
    on: &[String],
) -> Result<Worktree, IsolationError> {
    let here = Git::new(workspace);
    let top = here
        .output(&["rev-parse", "--show-toplevel"])
        .and_then(|out| {
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            } else {
                Err(IsolationError::NotARepo {
                    workspace: workspace.display().to_string(),
                    said: said(&out),
                })
            }
        })?;
    let prefix = here.line(&["rev-parse", "--show-prefix"])?;
    let repo = PathBuf::from(&top)
        .canonicalize()
        .map_err(|e| io("cannot resolve the repository", Path::new(&top), e))?;
    let git = Git::new(&repo);
    let path = repo.join(WORKTREES_DIR).join(slug(run)).join(slug(step));
    let branch = branch_name(run, step);
    let base = match base {
        Some(b) => b.to_string(),
        None => current_base(&git)?,
    };
    let mut started_from = Vec::new();

    let _guard = write_lock();
    exclude_worktrees(&git, &repo)?;
    let mut known = registered(&git, &path)?;
    if known.is_some() && !path.join(".git").exists() {
        // Git still lists a worktree whose folder was deleted: forget it.
        git.run(&["worktree", "prune"])?;
        known = registered(&git, &path)?;
    }
    if known == Some(None) && !branch_exists(&git, &branch)? {
        // Ours, cut short while its needs' work was merged in: again.
        git.run(&["worktree", "remove", "--force", &path.display().to_string()])?;
        known = None;
    }
    match known {
        Some(Some(b)) if b == branch => {}
        Some(other) => {
            return Err(IsolationError::Refused(format!(
                "{} is already a git worktree on {}, not on `{branch}`; remove it (git worktree remove {}) and run the step again",
                path.display(),
                other.map_or_else(|| "a detached HEAD".to_string(), |b| format!("`{b}`")),
                path.display()
            )));
        }
        None => {
            if path.exists() {
                // Our own folder, but git does not know it: a `worktree add`
                // cut short by a crash. Nothing in it is reachable; start over.
                std::fs::remove_dir_all(&path)
                    .map_err(|e| io("cannot remove the unfinished worktree", &path, e))?;
            }
            git.run(&["worktree", "prune"])?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| io("cannot create the worktree folder", parent, e))?;
            }
            let target = path.display().to_string();
            if branch_exists(&git, &branch)? {
                git.run(&["worktree", "add", "--quiet", &target, &branch])?;
            } else {
                let commit = resolve(&git, &base)?;
                for b in on {
                    if branch_exists(&git, b)? {
                        started_from.push(b.clone());
                    }
                }
                if started_from.is_empty() {
                    git.run(&[
                        "worktree", "add", "--quiet", "-b", &branch, &target, &commit,
                    ])?;
                } else {
                    git.run(&["worktree", "add", "--quiet", "--detach", &target, &commit])?;
                    if let Err(e) = start_from(&path, step, &started_from) {
                        let _ = git.run(&["worktree", "remove", "--force", &target]);
                        return Err(e);
                    }
                    Git::new(&path).run(&["switch", "--quiet", "-c", &branch])?;
                }
            }
        }
    }
    let base_commit = git
        .line(&["merge-base", &base, &branch])
        .or_else(|_| resolve(&git, &base))?;
    let root = path.join(prefix.trim_end_matches('/'));
    std::fs::create_dir_all(&root)
        .map_err(|e| io("cannot create the step's folder in its worktree", &root, e))?;
    Ok(Worktree {
        repo,
        path,
        root,
        branch,
        base,
        base_commit,
        started_from,
    })
}

/// Merges `branches` (the steps a step needs) into the detached checkout
/// at `path`, one by one; a conflict aborts and names the files.
fn start_from(path: &Path, step: &str, branches: &[String]) -> Result<(), IsolationError> {
    let git = Git::new(path);
    for b in branches {
        let message = format!("lev: step {step} starts from {b}");
        let mut args = identity(&git)?;
        args.extend(["merge", "--no-ff", "--no-edit", "-m", &message, b].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = git.output(&args)?;
        if !out.status.success() {
            let files = conflicted(&git);
            let _ = git.output(&["merge", "--abort"]);
            return Err(IsolationError::Refused(format!(
                "step `{step}` starts from the work of the steps it needs, and {b} does not merge with what came before it{}: {}",
                if files.is_empty() {
                    String::new()
                } else {
                    format!(" (conflicts in {})", files.join(", "))
                },
                said(&out)
            )));
        }
    }
    Ok(())
}

/// The files a merge that stopped left in conflict.
fn conflicted(git: &Git<'_>) -> Vec<String> {
    git.run(&["diff", "--name-only", "--diff-filter=U"])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `-c user.name=… -c user.email=…` for a machine without a git identity,
/// so the agents' work is committed anyway; a configured one is used as is.
fn identity(git: &Git<'_>) -> Result<Vec<String>, IsolationError> {
    let mut args = Vec::new();
    for (key, fallback) in [("user.name", "lev"), ("user.email", "lev@localhost")] {
        if !git.ok(&["config", "--get", key])? {
            args.push("-c".into());
            args.push(format!("{key}={fallback}"));
        }
    }
    Ok(args)
}

/// The branch checked out in the repository, or its commit when detached.
fn current_base(git: &Git<'_>) -> Result<String, IsolationError> {
    let out = git.output(&["symbolic-ref", "--quiet", "--short", "HEAD"])?;
    if out.status.success() {
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // An unborn branch (no commit yet) has nothing to branch from.
        resolve(git, &name)?;
        return Ok(name);
    }
    resolve(git, "HEAD")
}

/// The commit `rev` names, or an error saying it names none.
fn resolve(git: &Git<'_>, rev: &str) -> Result<String, IsolationError> {
    let spec = format!("{rev}^{{commit}}");
    let out = git.output(&["rev-parse", "--verify", "--quiet", &spec])?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    Err(IsolationError::Refused(format!(
        "`{rev}` names no commit in the repository (a new repository needs a first commit before a step can branch from it)"
    )))
}

fn branch_exists(git: &Git<'_>, branch: &str) -> Result<bool, IsolationError> {
    git.ok(&[
        "show-ref",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}"),
    ])
}

/// `Some(branch)` when git has a worktree at `path` (`Some(None)`: detached).
fn registered(git: &Git<'_>, path: &Path) -> Result<Option<Option<String>>, IsolationError> {
    let list = git.run(&["worktree", "list", "--porcelain"])?;
    let want = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut found: Option<Option<String>> = None;
    let mut current: Option<PathBuf> = None;
    for line in list.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            let p = PathBuf::from(p);
            current = Some(p.canonicalize().unwrap_or(p));
            if current.as_deref() == Some(want.as_path()) {
                found = Some(None);
            }
        } else if let Some(b) = line.strip_prefix("branch ")
            && current.as_deref() == Some(want.as_path())
        {
            found = Some(Some(b.trim_start_matches("refs/heads/").to_string()));
        }
    }
    Ok(found)
}

/// Adds `/.lev/worktrees/` to the repository's `info/exclude` once, so the
/// main worktree never lists the agents' checkouts as untracked files.
fn exclude_worktrees(git: &Git<'_>, repo: &Path) -> Result<(), IsolationError> {
    let common = PathBuf::from(git.line(&["rev-parse", "--git-common-dir"])?);
    let common = if common.is_absolute() {
        common
    } else {
        repo.join(common)
    };
    let info = common.join("info");
    let file = info.join("exclude");
    let line = format!("/{WORKTREES_DIR}/");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    if text.lines().any(|l| l.trim() == line) {
        return Ok(());
    }
    std::fs::create_dir_all(&info).map_err(|e| io("cannot create", &info, e))?;
    let mut next = text;
    if !next.is_empty() && !next.ends_with('\n') {
        next.push('\n');
    }
    next.push_str(&format!("# lev: agents' worktrees\n{line}\n"));
    std::fs::write(&file, next).map_err(|e| io("cannot write", &file, e))
}

/// Commits everything changed in the worktree at `path` (new, changed and
/// deleted files) with `message`. `None` when there was nothing to commit.
pub fn commit_all(path: &Path, message: &str) -> Result<Option<String>, IsolationError> {
    let git = Git::new(path);
    let _guard = write_lock();
    if git.run(&["status", "--porcelain"])?.trim().is_empty() {
        return Ok(None);
    }
    git.run(&["add", "--all"])?;
    let mut args = identity(&git)?;
    args.extend(["commit", "--quiet", "-m", message].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    git.run(&args)?;
    git.line(&["rev-parse", "HEAD"]).map(Some)
}

/// The step's whole diff against where its branch left `base`: what is
/// committed on `branch`, plus what is still uncommitted in the worktree
/// at `path` when it exists. The worktree's own index is left untouched.
pub fn diff(repo: &Path, path: &Path, base: &str, branch: &str) -> Result<String, IsolationError> {
    diff_with(repo, path, base, branch, &[])
}

/// The size of [`diff`].
pub fn stat(
    repo: &Path,
    path: &Path,
    base: &str,
    branch: &str,
) -> Result<DiffStat, IsolationError> {
    let numstat = diff_with(repo, path, base, branch, &["--numstat"])?;
    let mut s = DiffStat::default();
    for line in numstat.lines() {
        let mut parts = line.split('\t');
        let (Some(add), Some(del)) = (parts.next(), parts.next()) else {
            continue;
        };
        s.files_changed += 1;
        s.insertions += add.parse::<u32>().unwrap_or(0);
        s.deletions += del.parse::<u32>().unwrap_or(0);
    }
    Ok(s)
}

fn diff_with(
    repo: &Path,
    path: &Path,
    base: &str,
    branch: &str,
    extra: &[&str],
) -> Result<String, IsolationError> {
    let git = Git::new(repo);
    if !branch_exists(&git, branch)? {
        return Err(IsolationError::Refused(format!(
            "branch `{branch}` does not exist in {} (discarded?)",
            repo.display()
        )));
    }
    let mb = git
        .line(&["merge-base", base, branch])
        .or_else(|_| resolve(&git, base))?;
    if registered(&git, path)? != Some(Some(branch.to_string())) {
        let mut args = vec!["diff", "--no-color"];
        args.extend(extra);
        args.extend([mb.as_str(), branch]);
        return git.run(&args);
    }
    // Uncommitted work counts too: stage it all into a scratch copy of the
    // worktree's index and diff that, so its real index stays as it was.
    let wt = Git::new(path);
    let git_dir = PathBuf::from(wt.line(&["rev-parse", "--absolute-git-dir"])?);
    let scratch = git_dir.join("lev-diff-index");
    let real = git_dir.join("index");
    let _guard = write_lock();
    if real.exists() {
        std::fs::copy(&real, &scratch).map_err(|e| io("cannot copy the index", &real, e))?;
    } else {
        let _ = std::fs::remove_file(&scratch);
    }
    let scratch_git = Git::with_index(path, &scratch);
    let result = (|| {
        if !real.exists() {
            scratch_git.run(&["read-tree", "HEAD"])?;
        }
        scratch_git.run(&["add", "--all"])?;
        let mut args = vec!["diff", "--no-color", "--cached"];
        args.extend(extra);
        args.push(mb.as_str());
        scratch_git.run(&args)
    })();
    let _ = std::fs::remove_file(&scratch);
    result
}

/// Merges `branch` into `base` in the main worktree at `repo` with
/// `git merge --no-ff`. Refuses unless `base` is the branch checked out
/// there and its tracked files are clean; on a conflict the merge is
/// aborted, the repository left as it was, and the files named.
pub fn merge(
    repo: &Path,
    base: &str,
    branch: &str,
    message: &str,
) -> Result<Merged, IsolationError> {
    let git = Git::new(repo);
    let _guard = write_lock();
    if !branch_exists(&git, branch)? {
        return Err(IsolationError::Refused(format!(
            "branch `{branch}` does not exist in {} (discarded?); nothing to merge",
            repo.display()
        )));
    }
    if !branch_exists(&git, base)? {
        return Err(IsolationError::Refused(format!(
            "the worktree was made from `{base}`, which is not a branch (a detached HEAD); merge `{branch}` yourself with git merge"
        )));
    }
    let out = git.output(&["symbolic-ref", "--quiet", "--short", "HEAD"])?;
    let current = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || current != base {
        let on = if out.status.success() {
            format!("`{current}` checked out")
        } else {
            "a detached HEAD".to_string()
        };
        return Err(IsolationError::Refused(format!(
            "{} has {on}, not `{base}`: check out `{base}` there (git switch {base}) and merge again",
            repo.display()
        )));
    }
    let dirty = git.run(&["status", "--porcelain", "--untracked-files=no"])?;
    if !dirty.trim().is_empty() {
        return Err(IsolationError::Refused(format!(
            "{} has uncommitted changes to tracked files; commit or stash them first, so a conflicting merge can be undone cleanly:\n{}",
            repo.display(),
            dirty.trim_end()
        )));
    }
    let before = git.line(&["rev-parse", "HEAD"])?;
    let out = git.output(&["merge", "--no-ff", "--no-edit", "-m", message, branch])?;
    if !out.status.success() {
        let files = conflicted(&git);
        let aborted = git.output(&["merge", "--abort"])?;
        if !aborted.status.success() {
            return Err(IsolationError::Git {
                command: "git merge --abort".into(),
                dir: repo.display().to_string(),
                said: format!(
                    "{} (after the merge of `{branch}` failed: {})",
                    said(&aborted),
                    said(&out)
                ),
            });
        }
        if files.is_empty() {
            return Err(IsolationError::Git {
                command: format!("git merge --no-ff {branch}"),
                dir: repo.display().to_string(),
                said: said(&out),
            });
        }
        return Err(IsolationError::Conflict {
            branch: branch.to_string(),
            into: base.to_string(),
            repo: repo.display().to_string(),
            files,
            said: said(&out),
        });
    }
    let after = git.line(&["rev-parse", "HEAD"])?;
    Ok(Merged {
        changed: after != before,
        commit: after,
    })
}

/// Removes the worktree at `path` (whatever is in it) and deletes
/// `branch`. False when neither existed any more.
pub fn discard(repo: &Path, path: &Path, branch: &str) -> Result<bool, IsolationError> {
    let git = Git::new(repo);
    let _guard = write_lock();
    let mut removed = false;
    if registered(&git, path)?.is_some() {
        git.run(&["worktree", "remove", "--force", &path.display().to_string()])?;
        removed = true;
    } else if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| io("cannot remove", path, e))?;
        removed = true;
    }
    git.run(&["worktree", "prune"])?;
    if branch_exists(&git, branch)? {
        git.run(&["branch", "--quiet", "-D", branch])?;
        removed = true;
    }
    // The run's folder goes with its last worktree (fails while not empty).
    if let Some(parent) = path.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(removed)
}
