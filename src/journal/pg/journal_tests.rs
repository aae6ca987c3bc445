//! `Journal` on PostgreSQL (`Journal::open_url`) against the real server
//! the store's tests use: what `journal::tests` checks of redb — appends
//! and reads, gaps, the order of submitted appends, blobs, export and
//! import — and what a PostgreSQL journal leaves to its server. What it
//! answers as redb does to the memory bank, whisper scores, deletions and
//! doctor is `parity_tests`.

use super::tests::TestDb;
use crate::journal::codec::INLINE_PAYLOAD_MAX;
// The redb journal's tests' run and entry, so both backends see the same.
use crate::journal::tests::{entry, meta};
use crate::journal::{Append, Journal, JournalError, blob_hash};
use crate::protocol::{RunId, RunStatus, Seq};

async fn journal(db: &TestDb) -> Journal {
    Journal::open_url(&db.url).await.unwrap()
}

#[tokio::test]
async fn appends_read_back_and_the_run_follows_them() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let seqs = j
        .append(&run, vec![entry("a", "1"), entry("b", "2")], None)
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(1), Seq(2)]);
    let mut late = entry("c", "3");
    late.at_ms = 99;
    let seqs = j
        .append(&run, vec![late], Some(RunStatus::Paused))
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(3)]);
    // A status-only append writes no entry but updates the run.
    let seqs = j
        .append(&run, vec![], Some(RunStatus::Succeeded))
        .await
        .unwrap();
    assert!(seqs.is_empty());
    // Unsynced appends are written (durably, on PostgreSQL) all the same.
    let seqs = j
        .append_unsynced(&run, vec![entry("d", "4")])
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(4)]);

    let got = j.run(&run).await.unwrap().unwrap();
    assert_eq!(got.last_seq, 4);
    assert_eq!(got.updated_ms, 99);
    assert_eq!(got.status, RunStatus::Succeeded);
    let entries = j.read(&run, Seq(2)).await.unwrap();
    let kinds: Vec<(u64, &str)> = entries
        .iter()
        .map(|(s, e)| (s.0, e.kind.as_str()))
        .collect();
    assert_eq!(kinds, vec![(2, "b"), (3, "c"), (4, "d")]);
    let mapped = j
        .read_as(&run, Seq(1), |seq, e| Ok(format!("{}:{}", seq.0, e.kind)))
        .await
        .unwrap();
    assert_eq!(mapped, vec!["1:a", "2:b", "3:c", "4:d"]);
    let folded = j
        .fold_run(&run, Seq(3), 0u64, |n, seq, _| {
            *n += seq.0;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(folded, 7);
    assert_eq!(j.runs().await.unwrap(), vec![got]);
    // No password, no URL: the server as errors name it.
    assert!(
        j.path().starts_with("PostgreSQL database lev_test_"),
        "{}",
        j.path()
    );
    assert!(j.commit_count() >= 5);
}

#[tokio::test]
async fn unknown_and_duplicate_runs_fail_alone() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let err = j.create_run(meta(&run)).await.unwrap_err();
    assert!(matches!(err, JournalError::RunExists(_)), "{err}");
    let ghost = RunId::new();
    let err = j.append(&ghost, vec![entry("a", "1")], None).await;
    assert!(matches!(err, Err(JournalError::RunNotFound(_))), "{err:?}");
    assert_eq!(
        j.append(&run, vec![entry("a", "1")], None).await.unwrap(),
        vec![Seq(1)]
    );
}

#[tokio::test]
async fn a_run_is_created_with_its_first_entries() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    let seqs = j
        .create_run_with(
            meta(&run),
            vec![entry("run_started", "{}"), entry("b", "2")],
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(1), Seq(2)]);
    assert_eq!(j.run(&run).await.unwrap().unwrap().last_seq, 2);
}

/// Many appends submitted without waiting, each counting on its seq, as
/// the recorder submits a run's facts: written in submission order, with
/// the seqs counted on, sharing commits where they were queued together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_appends_are_written_in_submission_order() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let (a, b) = (RunId::new(), RunId::new());
    j.create_run(meta(&a)).await.unwrap();
    j.create_run(meta(&b)).await.unwrap();
    let before = j.commit_count();
    let mut pending = Vec::new();
    for i in 1..=200u64 {
        // Two runs interleaved, one or two entries an append.
        for run in [&a, &b] {
            let at = 2 * i - 1;
            let entries = vec![entry("x", format!("{i}-1")), entry("x", format!("{i}-2"))];
            let append = Append {
                at_seq: Some(Seq(at)),
                ..Append::durable(entries)
            };
            pending.push((at, j.submit(run, append).await.unwrap()));
        }
    }
    for (at, submitted) in pending {
        assert_eq!(
            submitted.committed().await.unwrap(),
            vec![Seq(at), Seq(at + 1)]
        );
    }
    for run in [&a, &b] {
        let entries = j.read(run, Seq(1)).await.unwrap();
        assert_eq!(entries.len(), 400);
        for (n, (seq, e)) in entries.iter().enumerate() {
            let n = n as u64;
            assert_eq!(seq.0, n + 1);
            assert_eq!(
                e.payload,
                format!("{}-{}", n / 2 + 1, n % 2 + 1).into_bytes()
            );
        }
    }
    assert!(j.commit_count() - before <= 400);
}

/// An append counting on a seq the run is not at is refused, and so is
/// every later one that counted on it: the run keeps a prefix.
#[tokio::test]
async fn a_gap_fails_the_append_and_everything_after_it() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let at = |seq: u64, kind: &str| Append {
        at_seq: Some(Seq(seq)),
        ..Append::durable(vec![entry(kind, "{}")])
    };
    let first = j.submit(&run, at(1, "a")).await.unwrap();
    // Counted on seq 3: seq 2 was never submitted.
    let skipped = j.submit(&run, at(3, "c")).await.unwrap();
    let after = j.submit(&run, at(4, "d")).await.unwrap();
    assert_eq!(first.committed().await.unwrap(), vec![Seq(1)]);
    let err = skipped.committed().await.unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Gap {
                expected: 3,
                last: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        after.committed().await,
        Err(JournalError::Gap { .. })
    ));
    assert_eq!(j.read(&run, Seq(1)).await.unwrap().len(), 1);
    // An append that counts on no seq follows the run as it is.
    let seqs = j.append(&run, vec![entry("e", "{}")], None).await.unwrap();
    assert_eq!(seqs, vec![Seq(2)]);
}

#[tokio::test]
async fn blobs_travel_with_their_append_and_large_payloads_round_trip() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let text = b"what the agent's request held".to_vec();
    let hash = blob_hash(&text);
    let payload = format!("{{\"texts\":\"{hash}\"}}");
    j.append_with_blobs(
        &run,
        vec![entry("context_assembled", payload)],
        vec![text.clone()],
    )
    .await
    .unwrap();
    assert_eq!(j.blob(&hash).await.unwrap(), Some(text));
    let stored = j.put_blob(b"alone".to_vec()).await.unwrap();
    assert_eq!(stored, blob_hash(b"alone"));
    assert_eq!(
        j.put_blob_unsynced(b"alone".to_vec()).await.unwrap(),
        stored
    );
    assert_eq!(j.blob(&stored).await.unwrap(), Some(b"alone".to_vec()));
    assert_eq!(j.blob(&"0".repeat(64)).await.unwrap(), None);
    let big = vec![b'x'; INLINE_PAYLOAD_MAX + 10];
    j.append(&run, vec![entry("big", big.clone())], None)
        .await
        .unwrap();
    let back = j.read(&run, Seq(2)).await.unwrap();
    assert_eq!(back[0].1.payload, big);
}

/// A run exported from PostgreSQL imports into redb (and back into
/// another PostgreSQL database) with the same entries and blobs.
#[tokio::test]
async fn export_from_postgres_imports_anywhere() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    let definition = b"version: 1\nkind: workflow\n".to_vec();
    let mut m = meta(&run);
    m.definition_blob = j.put_blob(definition.clone()).await.unwrap();
    j.create_run(m).await.unwrap();
    let out = b"a shell step's whole output".to_vec();
    let out_hash = j.put_blob(out.clone()).await.unwrap();
    j.append(
        &run,
        vec![
            entry("step_started", "{}"),
            entry(
                "shell_finished",
                format!("{{\"stdout_blob\":\"{out_hash}\"}}"),
            ),
        ],
        Some(RunStatus::Succeeded),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.jsonl");
    let mut bytes = Vec::new();
    j.export(&run, &mut bytes).await.unwrap();
    std::fs::write(&file, &bytes).unwrap();

    let redb = Journal::open(&dir.path().join("lev.redb")).unwrap();
    assert_eq!(redb.import(&file).await.unwrap(), run);
    assert_eq!(
        redb.read(&run, Seq(1)).await.unwrap(),
        j.read(&run, Seq(1)).await.unwrap()
    );
    assert_eq!(redb.run(&run).await.unwrap(), j.run(&run).await.unwrap());
    assert_eq!(redb.blob(&out_hash).await.unwrap(), Some(out));

    let Some(other) = TestDb::new().await else {
        return;
    };
    let k = journal(&other).await;
    assert_eq!(k.import(&file).await.unwrap(), run);
    assert_eq!(k.run(&run).await.unwrap(), j.run(&run).await.unwrap());
    assert_eq!(
        k.read(&run, Seq(1)).await.unwrap(),
        j.read(&run, Seq(1)).await.unwrap()
    );
    assert_eq!(
        k.blob(&blob_hash(&definition)).await.unwrap(),
        Some(definition)
    );
    let mut again = Vec::new();
    k.export(&run, &mut again).await.unwrap();
    assert_eq!(again, bytes);
    assert!(matches!(
        k.import(&file).await,
        Err(JournalError::RunExists(_))
    ));
}

/// Compacting is the server's: nothing to do, never an error; the
/// disk-full machinery has nothing to say there either.
#[tokio::test]
async fn compacting_and_the_disk_full_state_are_the_servers() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    assert!(!j.compact().await.unwrap());
    assert!(j.run(&run).await.unwrap().is_some(), "nothing was deleted");
    assert_eq!(j.disk_full(), None);
    assert!(j.check_space().await);
}

/// Appends of one run queued together share a transaction (group
/// commit), and each caller still learns its own seqs.
#[tokio::test]
async fn appends_of_a_run_queued_together_share_a_commit() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let before = j.commit_count();
    let mut pending = Vec::new();
    for i in 1..=100u64 {
        let append = Append {
            // Every other one counts on its seq; the others follow.
            at_seq: (i % 2 == 0).then_some(Seq(i)),
            ..Append::durable(vec![entry("x", i.to_string())])
        };
        // On this single-threaded runtime the writer task runs only once
        // the test waits: all 100 are queued first.
        pending.push(j.submit(&run, append).await.unwrap());
    }
    for (i, submitted) in (1..=100u64).zip(pending) {
        assert_eq!(submitted.committed().await.unwrap(), vec![Seq(i)]);
    }
    let commits = j.commit_count() - before;
    assert!(commits < 10, "{commits} commits for 100 appends");
    let entries = j.read(&run, Seq(1)).await.unwrap();
    let payloads: Vec<Vec<u8>> = entries.into_iter().map(|(_, e)| e.payload).collect();
    let expected: Vec<Vec<u8>> = (1..=100u64).map(|i| i.to_string().into_bytes()).collect();
    assert_eq!(payloads, expected);
}

#[tokio::test]
async fn appends_of_several_runs_queued_together_share_a_commit_and_a_refusal_is_alone() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let runs: Vec<RunId> = (0..4).map(|_| RunId::new()).collect();
    for run in &runs {
        j.create_run(meta(run)).await.unwrap();
    }
    let before = j.commit_count();
    // Interleaved, as a worker's slots write: 4 runs × 25 appends, each
    // counting on its seq; the last run's 10th counts on a seq it skips.
    let mut pending = Vec::new();
    for i in 1..=25u64 {
        for (r, run) in runs.iter().enumerate() {
            let at = if r == 3 && i >= 10 { i + 1 } else { i };
            let append = Append {
                at_seq: Some(Seq(at)),
                ..Append::durable(vec![entry("x", format!("{r}-{i}"))])
            };
            // Single-threaded runtime: all are queued before the writer runs.
            pending.push((r, i, j.submit(run, append).await.unwrap()));
        }
    }
    for (r, i, submitted) in pending {
        let done = submitted.committed().await;
        if r == 3 && i >= 10 {
            assert!(matches!(done, Err(JournalError::Gap { .. })), "{done:?}");
        } else {
            assert_eq!(done.unwrap(), vec![Seq(i)], "run {r}, append {i}");
        }
    }
    let commits = j.commit_count() - before;
    assert!(commits < 10, "{commits} commits for 100 appends of 4 runs");
    for (r, run) in runs.iter().enumerate() {
        let payloads: Vec<String> = j
            .read(run, Seq(1))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| String::from_utf8(e.payload).unwrap())
            .collect();
        let written = if r == 3 { 9 } else { 25 };
        let expected: Vec<String> = (1..=written).map(|i| format!("{r}-{i}")).collect();
        assert_eq!(payloads, expected, "run {r}");
    }
}

#[tokio::test]
async fn a_batch_the_server_fails_to_break_a_deadlock_is_written_again() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = journal(&db).await;
    let mut runs = [RunId::new(), RunId::new()];
    runs.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    let [first, second] = runs.clone();
    for run in &runs {
        j.create_run(meta(run)).await.unwrap();
    }
    // Another session holds the second run's row, and waits longer than
    // the writer's session before it looks for a deadlock: the server
    // fails the writer's transaction, not this one.
    let other = db.sql().await;
    other
        .batch_execute("SET deadlock_timeout = '10s'; BEGIN")
        .await
        .unwrap();
    let lock = "SELECT id FROM lev_runs WHERE id = $1 FOR UPDATE";
    other.query(lock, &[&second.as_str()]).await.unwrap();
    // One batch (single-threaded runtime: both are queued before the
    // writer runs): it locks the first run's row, then waits for the
    // second's.
    let a = j
        .submit(&first, Append::durable(vec![entry("a", "1")]))
        .await
        .unwrap();
    let b = j
        .submit(&second, Append::durable(vec![entry("b", "1")]))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Now the other session wants the first run's row: a circle.
    other.query(lock, &[&first.as_str()]).await.unwrap();
    other.batch_execute("COMMIT").await.unwrap();
    assert_eq!(a.committed().await.unwrap(), vec![Seq(1)]);
    assert_eq!(b.committed().await.unwrap(), vec![Seq(1)]);
    for run in &runs {
        assert_eq!(j.read(run, Seq(1)).await.unwrap().len(), 1);
    }
}
