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

/// How ssh runs under a git that talks to a remote, unless the user chose
/// an ssh command: never a prompt (lev may own the terminal, or have
/// none), and a server that stops answering ends the command instead of
/// hanging the step.
const BATCH_SSH: &str =
    "ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4";

/// A git command in `dir`, with an optional private index file.
pub(super) struct Git<'a> {
    dir: &'a Path,
    index: Option<&'a Path>,
    /// It talks to a remote (push, fetch, ls-remote).
    remote: bool,
}

impl<'a> Git<'a> {
    pub(super) fn new(dir: &'a Path) -> Git<'a> {
        Git {
            dir,
            index: None,
            remote: false,
        }
    }

    /// Uses `index` instead of the worktree's index (a scratch index for
    /// diffs that must not touch the real one).
    pub(super) fn with_index(dir: &'a Path, index: &'a Path) -> Git<'a> {
        Git {
            dir,
            index: Some(index),
            remote: false,
        }
    }

    /// For commands that talk to a remote: ssh never prompts and gives up
    /// on a silent server; HTTP gives up after two minutes without data.
    pub(super) fn to_remote(dir: &'a Path) -> Git<'a> {
        Git {
            dir,
            index: None,
            remote: true,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.arg("-C").arg(self.dir);
        // Never wait on a pager, an editor or a credential prompt.
        c.args(["-c", "core.pager=cat", "-c", "core.quotePath=false"]);
        if self.remote {
            c.args(["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=120"]);
            let chosen = ["GIT_SSH_COMMAND", "GIT_SSH"]
                .iter()
                .any(|k| std::env::var_os(k).is_some());
            if !chosen && !self.configured("core.sshCommand") {
                c.env("GIT_SSH_COMMAND", BATCH_SSH);
            }
        }
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

    /// Whether the repository's (or the user's) git config sets `key`.
    fn configured(&self, key: &str) -> bool {
        Git::new(self.dir)
            .output(&["config", "--get", key])
            .is_ok_and(|out| out.status.success())
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
