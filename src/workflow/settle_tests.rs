//! The shared merge/discard on a real repository in a temp dir (real
//! `git`) with a real journal.

use std::path::Path;

use super::*;
use crate::isolation::tests::{git, init_repo};
use crate::journal::RunMeta;
use crate::journal::testing::{self, TestJournal};
use crate::protocol::RunStatus;

/// A repository on `main` with one commit, a journal, and run `run` whose
/// step `coder` got a worktree (journaled `ready`) and left work in it,
/// one file committed and one not.
async fn setup(dir: &Path, run: &RunId) -> (TestJournal, std::path::PathBuf) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    init_repo(&repo);
    let journal = testing::open(dir).await;
    journal
        .create_run(RunMeta {
            id: run.clone(),
            workflow_id: "w".into(),
            name: "W".into(),
            source: "w.yaml".into(),
            definition_blob: String::new(),
            status: RunStatus::Succeeded,
            created_ms: 1,
            updated_ms: 1,
            last_seq: 0,
            parent: None,
            step_run: false,
        })
        .await
        .unwrap();
    let wt = isolation::ensure(&repo, run.as_str(), "coder", None).unwrap();
    std::fs::write(wt.path.join("lib.rs"), "pub fn f() {}\n").unwrap();
    isolation::commit_all(&wt.path, "step work").unwrap();
    std::fs::write(wt.path.join("late.txt"), "left uncommitted\n").unwrap();
    let rec = Recorder::new(journal.clone(), run.clone(), 0, Vec::new());
    rec.record(Event::Worktree {
        step: crate::protocol::StepKey::new("coder"),
        fact: isolation::ready_fact(&wt),
        at: Millis(2),
    })
    .await
    .unwrap();
    (journal, repo)
}

async fn folded(journal: &Journal, run: &RunId) -> StepWorktree {
    let events = crate::workflow::read_run(journal, run).await.unwrap();
    isolation::fold(&events).remove(0)
}

#[tokio::test]
async fn merge_commits_leftovers_merges_and_journals_then_discard_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunId("R1".into());
    let (journal, repo) = setup(dir.path(), &run).await;
    let found = folded(&journal, &run).await;
    assert_eq!(found.fate, Fate::Open);

    let done = settle_worktree(&journal, &run, &found, Settle::Merge)
        .await
        .unwrap();
    // The uncommitted file was committed first (`changed`), then merged.
    assert_eq!(done.recorded.len(), 2, "{:?}", done.recorded);
    assert!(done.text.contains("merged into main"), "{}", done.text);
    assert!(done.text.contains("in 2 files"), "{}", done.text);
    assert_eq!(git(&repo, &["branch", "--show-current"]), "main");
    assert!(repo.join("lib.rs").exists());
    assert!(repo.join("late.txt").exists());
    let after = folded(&journal, &run).await;
    let head = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(
        after.fate,
        Fate::Merged {
            into: "main".into(),
            commit: head
        }
    );
    assert_eq!(
        after.changed.as_ref().map(|(s, _)| s.files_changed),
        Some(2)
    );
    // What was returned is what the journal holds, seqs included.
    let events = crate::workflow::read_run(&journal, &run).await.unwrap();
    assert_eq!(events[1..], done.recorded[..]);

    // Merging again changes nothing and records nothing.
    let again = settle_worktree(&journal, &run, &after, Settle::Merge)
        .await
        .unwrap();
    assert!(again.recorded.is_empty());
    assert!(
        again.text.contains("already merged before"),
        "{}",
        again.text
    );

    let gone = settle_worktree(&journal, &run, &after, Settle::Discard)
        .await
        .unwrap();
    assert_eq!(gone.recorded.len(), 1);
    assert!(!found.worktree.path.exists());
    assert_eq!(
        git(&repo, &["branch", "--list", &found.worktree.branch]),
        ""
    );
    assert_eq!(folded(&journal, &run).await.fate, Fate::Discarded);
    let err = settle_worktree(&journal, &run, &folded(&journal, &run).await, Settle::Merge)
        .await
        .unwrap_err();
    assert!(err.contains("discarded"), "{err}");
}
