//! Real repositories in temp dirs, real `git`. `git` and `init_repo` serve
//! the library's other tests of worktrees too (`workflow/settle_tests.rs`).

use std::path::Path;
use std::process::Command;

use super::*;

/// `git -C dir args…`, its trimmed output; panics when git fails.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
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
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes `p` a repository on `main` with one commit of `README.md`.
pub(crate) fn init_repo(p: &Path) {
    git(p, &["init", "--quiet", "--initial-branch=main"]);
    git(p, &["config", "user.name", "Test"]);
    git(p, &["config", "user.email", "test@example.com"]);
    git(p, &["config", "commit.gpgsign", "false"]);
    std::fs::write(p.join("README.md"), "hello\n").unwrap();
    git(p, &["add", "README.md"]);
    git(p, &["commit", "--quiet", "-m", "first"]);
}

/// A repository in a temp dir (`init_repo`).
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    dir
}

#[test]
fn ensure_creates_a_worktree_on_its_own_branch_and_reuses_it() {
    let r = repo();
    let wt = ensure(r.path(), "RUN1", "coder", None).unwrap();
    let repo_path = r.path().canonicalize().unwrap();
    assert_eq!(wt.repo, repo_path);
    assert_eq!(wt.path, repo_path.join(".lev/worktrees/RUN1/coder"));
    assert_eq!(wt.root, wt.path);
    assert_eq!(wt.branch, "lev/RUN1/coder");
    assert_eq!(wt.base, "main");
    assert_eq!(wt.base_commit, git(r.path(), &["rev-parse", "main"]));
    assert!(wt.path.join("README.md").is_file());
    assert_eq!(
        git(&wt.path, &["branch", "--show-current"]),
        "lev/RUN1/coder"
    );
    // The main worktree does not see the checkout.
    assert_eq!(git(r.path(), &["status", "--porcelain"]), "");

    std::fs::write(wt.path.join("work.txt"), "in progress\n").unwrap();
    let again = ensure(r.path(), "RUN1", "coder", None).unwrap();
    assert_eq!(again, wt);
    assert!(
        again.path.join("work.txt").is_file(),
        "reuse keeps the work"
    );
    let listed = git(r.path(), &["worktree", "list", "--porcelain"]);
    assert_eq!(listed.matches("worktree ").count(), 2, "{listed}");
    // The exclude line is written once.
    let exclude = std::fs::read_to_string(r.path().join(".git/info/exclude")).unwrap();
    assert_eq!(exclude.matches("/.lev/worktrees/").count(), 1);
}

#[test]
fn ensure_finds_the_branch_again_when_the_folder_was_lost() {
    let r = repo();
    let wt = ensure(r.path(), "R", "a/b c", None).unwrap();
    assert_eq!(wt.branch, "lev/R/a-b-c");
    std::fs::write(wt.path.join("x.txt"), "x\n").unwrap();
    commit_all(&wt.path, "work").unwrap().unwrap();
    // A crash mid-way: the folder is gone, git still lists it.
    std::fs::remove_dir_all(&wt.path).unwrap();
    let again = ensure(r.path(), "R", "a/b c", None).unwrap();
    assert_eq!(again.path, wt.path);
    assert!(
        again.path.join("x.txt").is_file(),
        "checked out from the branch"
    );
}

#[test]
fn ensure_from_a_subfolder_roots_the_step_there() {
    let r = repo();
    let sub = r.path().join("crates/core");
    std::fs::create_dir_all(&sub).unwrap();
    let wt = ensure(&sub, "R", "s", None).unwrap();
    assert_eq!(wt.root, wt.path.join("crates/core"));
    assert!(wt.root.is_dir());
}

#[test]
fn ensure_takes_a_base_branch() {
    let r = repo();
    git(r.path(), &["switch", "--quiet", "-c", "feature"]);
    std::fs::write(r.path().join("f.txt"), "f\n").unwrap();
    git(r.path(), &["add", "f.txt"]);
    git(r.path(), &["commit", "--quiet", "-m", "feature"]);
    git(r.path(), &["switch", "--quiet", "main"]);
    let wt = ensure(r.path(), "R", "s", Some("feature")).unwrap();
    assert_eq!(wt.base, "feature");
    assert!(wt.path.join("f.txt").is_file());
    let err = ensure(r.path(), "R", "t", Some("nope")).unwrap_err();
    assert!(err.to_string().contains("`nope` names no commit"), "{err}");
}

#[test]
fn not_a_repository_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = ensure(dir.path(), "R", "s", None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, IsolationError::NotARepo { .. }), "{text}");
    assert!(text.contains("is not inside a git repository"), "{text}");
    assert!(text.contains("not a git repository"), "git's words: {text}");
}

#[test]
fn a_repository_without_commits_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
    let err = ensure(dir.path(), "R", "s", None).unwrap_err();
    assert!(err.to_string().contains("first commit"), "{err}");
}

#[test]
fn commit_diff_and_stat_cover_committed_and_uncommitted_work() {
    let r = repo();
    let wt = ensure(r.path(), "R", "s", None).unwrap();
    assert_eq!(commit_all(&wt.path, "nothing").unwrap(), None);
    std::fs::write(wt.path.join("a.txt"), "one\ntwo\n").unwrap();
    std::fs::write(wt.path.join("README.md"), "hello\nworld\n").unwrap();
    // Uncommitted: the diff already shows it, without touching the index.
    let s = stat(&wt.repo, &wt.path, &wt.base, &wt.branch).unwrap();
    assert_eq!(
        s,
        DiffStat {
            files_changed: 2,
            insertions: 3,
            deletions: 0
        }
    );
    assert_eq!(git(&wt.path, &["diff", "--cached", "--name-only"]), "");
    let d = diff(&wt.repo, &wt.path, &wt.base, &wt.branch).unwrap();
    assert!(d.contains("+++ b/a.txt") && d.contains("+world"), "{d}");

    let commit = commit_all(&wt.path, "lev: run R step s").unwrap().unwrap();
    assert_eq!(git(&wt.path, &["rev-parse", "HEAD"]), commit);
    assert_eq!(
        git(&wt.path, &["log", "-1", "--format=%s"]),
        "lev: run R step s"
    );
    assert_eq!(git(&wt.path, &["status", "--porcelain"]), "");
    assert_eq!(stat(&wt.repo, &wt.path, &wt.base, &wt.branch).unwrap(), s);
    // The main branch moving on does not enter the step's diff (merge-base).
    std::fs::write(r.path().join("other.txt"), "other\n").unwrap();
    git(r.path(), &["add", "other.txt"]);
    git(r.path(), &["commit", "--quiet", "-m", "other"]);
    let d = diff(&wt.repo, &wt.path, &wt.base, &wt.branch).unwrap();
    assert!(!d.contains("other.txt"), "{d}");
}

#[test]
fn merge_brings_the_branch_into_base_and_is_idempotent() {
    let r = repo();
    let wt = ensure(r.path(), "R", "s", None).unwrap();
    std::fs::write(wt.path.join("new.txt"), "new\n").unwrap();
    commit_all(&wt.path, "lev: run R step s").unwrap();
    assert!(!r.path().join("new.txt").exists());
    let m = merge(&wt.repo, &wt.base, &wt.branch, "lev: merge s").unwrap();
    assert!(m.changed);
    assert_eq!(
        std::fs::read_to_string(r.path().join("new.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(git(r.path(), &["rev-parse", "HEAD"]), m.commit);
    // --no-ff: a merge commit with two parents.
    let parents = git(r.path(), &["log", "-1", "--format=%P"]);
    assert_eq!(parents.split(' ').count(), 2, "{parents}");
    let again = merge(&wt.repo, &wt.base, &wt.branch, "lev: merge s").unwrap();
    assert!(!again.changed);
    assert_eq!(again.commit, m.commit);
}

#[test]
fn a_conflicting_merge_is_aborted_and_named() {
    let r = repo();
    let wt = ensure(r.path(), "R", "s", None).unwrap();
    std::fs::write(wt.path.join("README.md"), "agent\n").unwrap();
    commit_all(&wt.path, "agent").unwrap();
    std::fs::write(r.path().join("README.md"), "user\n").unwrap();
    git(r.path(), &["commit", "--quiet", "-am", "user"]);
    let head = git(r.path(), &["rev-parse", "HEAD"]);
    let err = merge(&wt.repo, &wt.base, &wt.branch, "m").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, IsolationError::Conflict { .. }), "{text}");
    assert!(
        text.contains("README.md") && text.contains("aborted"),
        "{text}"
    );
    assert!(text.contains("CONFLICT"), "git's words: {text}");
    assert_eq!(git(r.path(), &["status", "--porcelain"]), "");
    assert_eq!(git(r.path(), &["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(r.path().join("README.md")).unwrap(),
        "user\n"
    );
}

#[test]
fn merge_refuses_another_checked_out_branch_and_dirty_files() {
    let r = repo();
    let wt = ensure(r.path(), "R", "s", None).unwrap();
    std::fs::write(wt.path.join("n.txt"), "n\n").unwrap();
    commit_all(&wt.path, "n").unwrap();
    std::fs::write(r.path().join("README.md"), "edited\n").unwrap();
    let err = merge(&wt.repo, &wt.base, &wt.branch, "m").unwrap_err();
    assert!(err.to_string().contains("uncommitted changes"), "{err}");
    git(r.path(), &["checkout", "--quiet", "README.md"]);
    git(r.path(), &["switch", "--quiet", "-c", "elsewhere"]);
    let err = merge(&wt.repo, &wt.base, &wt.branch, "m").unwrap_err();
    assert!(
        err.to_string()
            .contains("`elsewhere` checked out, not `main`"),
        "{err}"
    );
}

#[test]
fn discard_removes_the_worktree_and_the_branch() {
    let r = repo();
    let wt = ensure(r.path(), "R", "s", None).unwrap();
    std::fs::write(wt.path.join("junk.txt"), "junk\n").unwrap();
    commit_all(&wt.path, "junk").unwrap();
    std::fs::write(wt.path.join("more.txt"), "uncommitted\n").unwrap();
    assert!(discard(&wt.repo, &wt.path, &wt.branch).unwrap());
    assert!(!wt.path.exists());
    assert!(!r.path().join(".lev/worktrees/R").exists());
    assert_eq!(git(r.path(), &["branch", "--list", "lev/*"]), "");
    assert!(
        !discard(&wt.repo, &wt.path, &wt.branch).unwrap(),
        "second time: nothing"
    );
    let err = diff(&wt.repo, &wt.path, &wt.base, &wt.branch).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn parallel_steps_get_their_worktrees_at_once() {
    let r = repo();
    let path = r.path().to_path_buf();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || ensure(&path, "R", &format!("t{i}"), None))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(
        git(r.path(), &["branch", "--list", "lev/R/*"])
            .lines()
            .count(),
        6
    );
}

#[test]
fn the_journal_folds_into_each_steps_worktree() {
    use crate::protocol::{Event, Millis, Recorded, RunId, Seq, StepKey, WorktreeFact};
    let w = Worktree {
        repo: "/r".into(),
        path: "/r/.lev/worktrees/R/s".into(),
        root: "/r/.lev/worktrees/R/s".into(),
        branch: "lev/R/s".into(),
        base: "main".into(),
        base_commit: "abc".into(),
        started_from: vec!["lev/R/before".into()],
    };
    let fact = |fact: WorktreeFact| Event::Worktree {
        step: StepKey::new("s"),
        fact,
        at: Millis(1),
    };
    let changed = |commit: Option<&str>, n: u32| {
        fact(WorktreeFact::Changed {
            branch: "lev/R/s".into(),
            commit: commit.map(str::to_string),
            files_changed: n,
            insertions: n,
            deletions: 0,
        })
    };
    let events: Vec<Recorded> = [
        fact(ready_fact(&w)),
        changed(Some("c1"), 1),
        fact(WorktreeFact::Pushed {
            branch: "lev/R/s".into(),
            remote: "origin".into(),
            commit: "c1".into(),
        }),
        // Found again (a resume): what the branch holds is kept.
        fact(ready_fact(&w)),
        // A later attempt that changed nothing keeps the commit.
        changed(None, 1),
        fact(WorktreeFact::Merged {
            branch: "lev/R/s".into(),
            into: "main".into(),
            commit: "m1".into(),
        }),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, event)| Recorded {
        run: RunId("R".into()),
        seq: Seq(i as u64 + 1),
        event,
    })
    .collect();
    let folded = fold(&events);
    assert_eq!(folded.len(), 1);
    assert_eq!(folded[0].worktree, w);
    let stat = DiffStat {
        files_changed: 1,
        insertions: 1,
        deletions: 0,
    };
    assert_eq!(folded[0].changed, Some((stat, Some("c1".into()))));
    assert_eq!(
        folded[0].pushed,
        Some(Pushed {
            remote: "origin".into(),
            commit: "c1".into()
        })
    );
    assert_eq!(
        folded[0].fate,
        Fate::Merged {
            into: "main".into(),
            commit: "m1".into()
        }
    );
    assert_eq!(
        crate::protocol::describe::worktree(&changed(Some("0123456789abcdef"), 2).into_fact()),
        "changes committed on lev/R/s as 0123456789: +2 -0 in 2 files"
    );
}

trait IntoFact {
    fn into_fact(self) -> crate::protocol::WorktreeFact;
}

impl IntoFact for crate::protocol::Event {
    fn into_fact(self) -> crate::protocol::WorktreeFact {
        match self {
            crate::protocol::Event::Worktree { fact, .. } => fact,
            other => panic!("not a worktree event: {other:?}"),
        }
    }
}

/// A bare repository standing for the remote every machine shares, and
/// two clones of it (two machines), each with `origin` pointing there.
fn shared() -> (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir) {
    let first = repo();
    let remote = tempfile::tempdir().unwrap();
    git(
        remote.path(),
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
    let url = remote.path().display().to_string();
    git(first.path(), &["remote", "add", "origin", &url]);
    git(first.path(), &["push", "--quiet", "origin", "main"]);
    let second = tempfile::tempdir().unwrap();
    git(second.path(), &["clone", "--quiet", &url, "."]);
    git(second.path(), &["config", "user.name", "Test"]);
    git(second.path(), &["config", "user.email", "test@example.com"]);
    (remote, first, second)
}

/// Step `build` of run `RUN9` in `repo`, with `built.txt` committed on its
/// branch: the worktree and the commit.
fn built(repo: &Path) -> (Worktree, String) {
    let wt = ensure(repo, "RUN9", "build", None).unwrap();
    std::fs::write(wt.path.join("built.txt"), "built\n").unwrap();
    let commit = commit_all(&wt.path, "build").unwrap().unwrap();
    (wt, commit)
}

#[test]
fn a_pushed_branch_is_fetched_merged_and_deleted_on_another_clone() {
    let (remote, here, there) = shared();
    let (wt, commit) = built(here.path());
    assert_eq!(push(&wt.repo, &wt.branch, "origin").unwrap(), commit);
    assert_eq!(git(remote.path(), &["rev-parse", "lev/RUN9/build"]), commit);
    // Pushing again (a retry that changed nothing) is harmless.
    assert_eq!(push(&wt.repo, &wt.branch, "origin").unwrap(), commit);

    // The other clone has no such branch until it fetches it, once.
    let there_repo = there.path().canonicalize().unwrap();
    assert!(fetch(&there_repo, &wt.branch, "origin", &commit).unwrap());
    assert!(!fetch(&there_repo, &wt.branch, "origin", &commit).unwrap());
    // The clone that made it never fetches.
    assert!(!fetch(&wt.repo, &wt.branch, "origin", &commit).unwrap());
    let gone = there_repo.join(".lev/worktrees/RUN9/build");
    let s = stat(&there_repo, &gone, "main", &wt.branch).unwrap();
    assert_eq!((s.files_changed, s.insertions), (1, 1));
    let merged = merge(&there_repo, "main", &wt.branch, "merge build").unwrap();
    assert!(merged.changed);
    assert_eq!(
        std::fs::read_to_string(there_repo.join("built.txt")).unwrap(),
        "built\n"
    );

    assert!(unpush(&there_repo, &wt.branch, "origin").unwrap());
    assert!(!unpush(&there_repo, &wt.branch, "origin").unwrap());
    assert_eq!(git(remote.path(), &["branch", "--list", "lev/*"]), "");
}

#[test]
fn a_branch_the_remote_lacks_or_changed_is_a_clear_error() {
    let (remote, here, there) = shared();
    let (wt, commit) = built(here.path());
    let there_repo = there.path().canonicalize().unwrap();
    // Never pushed.
    let e = fetch(&there_repo, &wt.branch, "origin", &commit).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("lev/RUN9/build") && text.contains("`origin`"),
        "{text}"
    );
    // Pushed, then replaced there by something without that commit.
    push(&wt.repo, &wt.branch, "origin").unwrap();
    git(
        remote.path(),
        &["branch", "--force", "lev/RUN9/build", "main"],
    );
    let e = fetch(&there_repo, &wt.branch, "origin", &commit).unwrap_err();
    assert!(e.to_string().contains("without commit"), "{e}");
}

#[test]
fn check_remote_knows_names_urls_and_what_is_not_a_repository() {
    let (remote, here, _there) = shared();
    check_remote(here.path(), "origin").unwrap();
    check_remote(here.path(), &remote.path().display().to_string()).unwrap();
    check_remote(here.path(), "git@example.com:team/app.git").unwrap();
    let e = check_remote(here.path(), "upstream")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no remote `upstream`") && e.contains("origin"),
        "{e}"
    );
    assert!(check_remote(here.path(), "--mirror").is_err());
    // What a journal from elsewhere says is never taken as an option.
    let wt = ensure(here.path(), "RUN9", "build", None).unwrap();
    assert!(push(&wt.repo, &wt.branch, "--receive-pack=touch /tmp/x").is_err());
    assert!(fetch(&wt.repo, &wt.branch, "origin", "--output=/tmp/x").is_err());
    assert!(unpush(&wt.repo, &wt.branch, "-o").is_err());
    let plain = tempfile::tempdir().unwrap();
    let e = check_remote(plain.path(), "origin")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not inside a git repository"), "{e}");
}

#[test]
fn a_new_branch_starts_from_the_work_of_the_steps_it_needs() {
    let r = repo();
    let code = ensure(r.path(), "RUN2", "code", None).unwrap();
    std::fs::write(code.path.join("lib.txt"), "lib\n").unwrap();
    commit_all(&code.path, "code").unwrap().unwrap();
    let docs = ensure(r.path(), "RUN2", "docs", None).unwrap();
    std::fs::write(docs.path.join("docs.txt"), "docs\n").unwrap();
    commit_all(&docs.path, "docs").unwrap().unwrap();
    let on = [
        branch_name("RUN2", "code"),
        branch_name("RUN2", "docs"),
        // A need that made no worktree has no branch: nothing to take.
        branch_name("RUN2", "plan"),
    ];
    let test = ensure_on(r.path(), "RUN2", "test", None, &on).unwrap();
    assert_eq!(test.branch, "lev/RUN2/test");
    assert_eq!(test.started_from, on[..2]);
    assert_eq!(
        git(&test.path, &["branch", "--show-current"]),
        "lev/RUN2/test"
    );
    assert!(test.path.join("lib.txt").is_file() && test.path.join("docs.txt").is_file());
    assert_eq!(test.base_commit, git(r.path(), &["rev-parse", "main"]));
    // Found again, it is not merged again.
    let head = git(&test.path, &["rev-parse", "HEAD"]);
    let again = ensure_on(r.path(), "RUN2", "test", None, &on).unwrap();
    assert_eq!(git(&test.path, &["rev-parse", "HEAD"]), head);
    assert!(again.started_from.is_empty());
}

#[test]
fn needs_that_conflict_leave_no_branch_and_a_cut_short_start_is_made_again() {
    let r = repo();
    for (step, text) in [("left", "left\n"), ("right", "right\n")] {
        let w = ensure(r.path(), "RUN3", step, None).unwrap();
        std::fs::write(w.path.join("README.md"), text).unwrap();
        commit_all(&w.path, step).unwrap().unwrap();
    }
    let on = [branch_name("RUN3", "left"), branch_name("RUN3", "right")];
    let e = ensure_on(r.path(), "RUN3", "both", None, &on)
        .unwrap_err()
        .to_string();
    assert!(e.contains("conflicts in README.md"), "{e}");
    assert!(!r.path().join(".lev/worktrees/RUN3/both").exists());
    assert_eq!(git(r.path(), &["branch", "--list", "lev/RUN3/both"]), "");

    // A detached checkout left by a crash before the branch was made.
    let path = r.path().join(".lev/worktrees/RUN3/after");
    git(
        r.path(),
        &[
            "worktree",
            "add",
            "--quiet",
            "--detach",
            &path.display().to_string(),
            "main",
        ],
    );
    let w = ensure_on(r.path(), "RUN3", "after", None, &on[..1]).unwrap();
    assert_eq!(
        git(&w.path, &["branch", "--show-current"]),
        "lev/RUN3/after"
    );
    assert_eq!(
        std::fs::read_to_string(w.path.join("README.md")).unwrap(),
        "left\n"
    );
}

#[test]
fn only_what_lev_makes_is_acted_on() {
    let made = Worktree {
        repo: "/r".into(),
        path: "/r/.lev/worktrees/R/s".into(),
        root: "/r/.lev/worktrees/R/s".into(),
        branch: "lev/R/s".into(),
        base: "main".into(),
        base_commit: "abc".into(),
        started_from: Vec::new(),
    };
    check_owned(&made).unwrap();
    for (path, branch) in [
        ("/home/you", "lev/R/s"),
        ("/r/.lev/worktrees", "lev/R/s"),
        ("/r/.lev/worktrees/../../etc", "lev/R/s"),
        ("/r/.lev/worktrees/R/s", "main"),
        ("/r/.lev/worktrees/R/s", "lev/../main"),
    ] {
        let w = Worktree {
            path: path.into(),
            branch: branch.into(),
            ..made.clone()
        };
        let e = check_owned(&w).unwrap_err().to_string();
        assert!(e.contains("nothing was done"), "{path} {branch}: {e}");
    }
}

#[test]
fn fetch_earlier_takes_the_branches_this_clone_lacks_in_one_go() {
    let (_remote, here, there) = shared();
    for step in ["code", "docs"] {
        let wt = ensure(here.path(), "RUN7", step, None).unwrap();
        std::fs::write(wt.path.join(format!("{step}.txt")), "x\n").unwrap();
        commit_all(&wt.path, step).unwrap().unwrap();
        push(&wt.repo, &wt.branch, "origin").unwrap();
    }
    // `test` never ran anywhere: nothing to take for it.
    let steps = ["code", "docs", "test"].map(String::from);
    assert_eq!(
        fetch_earlier(there.path(), "RUN7", &steps, "origin").unwrap(),
        2
    );
    assert_eq!(
        fetch_earlier(there.path(), "RUN7", &steps, "origin").unwrap(),
        0
    );
    assert_eq!(
        fetch_earlier(here.path(), "RUN7", &steps, "origin").unwrap(),
        0
    );
    assert_eq!(
        git(there.path(), &["branch", "--list", "lev/RUN7/*"]),
        "lev/RUN7/code\n  lev/RUN7/docs"
    );
    let gone = here.path().join("gone.git").display().to_string();
    let e = fetch_earlier(there.path(), "RUN8", &steps, &gone).unwrap_err();
    assert!(e.to_string().contains("cannot reach"), "{e}");
}
