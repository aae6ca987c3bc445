//! Running `git` itself: one place that spawns it with a controlled
//! environment and turns a failure into an error that quotes what git said.

use std::path::Path;
use std::process::{Command, Output};

use super::IsolationError;

/// Git variables that would point a command at another repository than
/// the directory we give it (set when lev runs inside a git hook, say).
const REPO_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

/// A git command in `dir`, with an optional private index file.
pub(super) struct Git<'a> {
    dir: &'a Path,
    index: Option<&'a Path>,
}

impl<'a> Git<'a> {
    pub(super) fn new(dir: &'a Path) -> Git<'a> {
        Git { dir, index: None }
    }

    /// Uses `index` instead of the worktree's index (a scratch index for
    /// diffs that must not touch the real one).
    pub(super) fn with_index(dir: &'a Path, index: &'a Path) -> Git<'a> {
        Git {
            dir,
            index: Some(index),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.arg("-C").arg(self.dir);
        // Never wait on a pager, an editor or a credential prompt.
        c.args(["-c", "core.pager=cat", "-c", "core.quotePath=false"]);
        c.args(args);
        for k in REPO_ENV {
            c.env_remove(k);
        }
        // Hooks and helpers git runs need no provider key.
        crate::secrets::current().withhold(&mut c);
        if let Some(index) = self.index {
            c.env("GIT_INDEX_FILE", index);
        }
        c.env("GIT_TERMINAL_PROMPT", "0");
        c.env("GIT_EDITOR", "true");
        c.env("GIT_MERGE_AUTOEDIT", "no");
        c.stdin(std::process::Stdio::null());
        c
    }

    /// Runs git and returns its output whatever the exit status.
    pub(super) fn output(&self, args: &[&str]) -> Result<Output, IsolationError> {
        self.command(args).output().map_err(|e| {
            IsolationError::Spawn(format!("cannot run `git` in {}: {e}", self.dir.display()))
        })
    }

    /// Runs git; a non-zero exit is an error quoting git's own words.
    pub(super) fn run(&self, args: &[&str]) -> Result<String, IsolationError> {
        let out = self.output(args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(IsolationError::Git {
                command: format!("git {}", args.join(" ")),
                dir: self.dir.display().to_string(),
                said: said(&out),
            })
        }
    }

    /// Runs git and returns stdout trimmed.
    pub(super) fn line(&self, args: &[&str]) -> Result<String, IsolationError> {
        self.run(args).map(|s| s.trim().to_string())
    }

    /// True when git exits 0 (for questions such as "does this ref exist").
    pub(super) fn ok(&self, args: &[&str]) -> Result<bool, IsolationError> {
        Ok(self.output(args)?.status.success())
    }
}

/// What git printed on failure: stderr, else stdout, else the exit status.
pub(super) fn said(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !err.is_empty() {
        return err;
    }
    let std = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !std.is_empty() {
        return std;
    }
    format!("exited with {}", out.status)
}
