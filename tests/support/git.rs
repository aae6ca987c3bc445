//! Git for tests whose workspace is a repository: a command that must
//! succeed, and a fresh repository on `main` with one commit.

use std::path::Path;
use std::process::Command;

/// `git -C dir args…`, its trimmed output; panics when git fails. The
/// variables a hook or an outer git may have set are not passed on.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes `ws` a repository on `main` with one commit (`README.md`).
pub fn init_repo(ws: &Path) {
    git(ws, &["init", "--quiet", "--initial-branch=main"]);
    git(ws, &["config", "user.name", "Test"]);
    git(ws, &["config", "user.email", "test@example.com"]);
    git(ws, &["config", "commit.gpgsign", "false"]);
    std::fs::write(ws.join("README.md"), "project\n").unwrap();
    git(ws, &["add", "README.md"]);
    git(ws, &["commit", "--quiet", "-m", "first"]);
}

/// A bare repository `dir/name` as `ws`'s `origin`, with `main` pushed to
/// it: the remote every machine shares. Returns its path.
pub fn origin_for(ws: &Path, dir: &Path, name: &str) -> std::path::PathBuf {
    git(
        dir,
        &["init", "--quiet", "--bare", "--initial-branch=main", name],
    );
    let remote = dir.join(name);
    git(
        ws,
        &["remote", "add", "origin", &remote.display().to_string()],
    );
    git(ws, &["push", "--quiet", "origin", "main"]);
    remote
}
