//! Journal tests on real database files in temp dirs.

use std::collections::BTreeMap;

use redb::Database;

use super::*;
use crate::protocol::{RunId, RunStatus, Seq};

pub(super) fn meta(id: &RunId) -> RunMeta {
    RunMeta {
        id: id.clone(),
        workflow_id: "implement-auth".into(),
        name: "Implement auth".into(),
        source: "workflows/implement-auth.yaml".into(),
        definition_blob: String::new(),
        status: RunStatus::Running,
        created_ms: 1,
        updated_ms: 1,
        last_seq: 0,
        parent: None,
        step_run: false,
    }
}

pub(super) fn entry(kind: &str, payload: impl Into<Vec<u8>>) -> Entry {
    Entry {
        kind: kind.into(),
        step: Some("build".into()),
        fingerprint: Some("fp1".into()),
        attempt: 1,
        at_ms: 10,
        payload: payload.into(),
    }
}

fn temp_journal() -> (tempfile::TempDir, std::path::PathBuf, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("lev.redb");
    let journal = Journal::open(&path).unwrap();
    (dir, path, journal)
}

#[tokio::test]
async fn append_assigns_gap_free_seqs_and_updates_meta() {
    let (_dir, _path, j) = temp_journal();
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
    let none = j
        .append(&run, vec![], Some(RunStatus::Succeeded))
        .await
        .unwrap();
    assert!(none.is_empty());

    let m = j.run(&run).await.unwrap().unwrap();
    assert_eq!(m.last_seq, 3);
    assert_eq!(m.status, RunStatus::Succeeded);
    assert_eq!(m.updated_ms, 99);

    let all = j.read(&run, Seq(1)).await.unwrap();
    let kinds: Vec<_> = all.iter().map(|(s, e)| (s.0, e.kind.as_str())).collect();
    assert_eq!(kinds, vec![(1, "a"), (2, "b"), (3, "c")]);
    let tail = j.read(&run, Seq(3)).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].1.payload, b"3");
}

#[tokio::test]
async fn unknown_and_duplicate_runs_fail_alone() {
    let (_dir, _path, j) = temp_journal();
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let missing = RunId("01NOSUCHRUN".into());
    let err = j.append(&missing, vec![entry("a", "1")], None).await;
    assert!(matches!(err, Err(JournalError::RunNotFound(ref id)) if *id == missing));
    let err = j.create_run(meta(&run)).await;
    assert!(matches!(err, Err(JournalError::RunExists(ref id)) if *id == run));
    assert!(j.run(&missing).await.unwrap().is_none());
    assert!(j.read(&missing, Seq(1)).await.unwrap().is_empty());
    // The journal keeps working after refused requests.
    assert_eq!(
        j.append(&run, vec![entry("a", "1")], None).await.unwrap(),
        vec![Seq(1)]
    );
}

#[test]
fn concurrent_appenders_are_group_committed_in_order() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_dir, _path, j) = temp_journal();
        let runs = [RunId::new(), RunId::new()];
        for r in &runs {
            j.create_run(meta(r)).await.unwrap();
        }
        const TASKS: usize = 16;
        const CALLS: usize = 20;
        let commits_before = j.commit_count();
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let j = j.clone();
            let run = runs[task % 2].clone();
            handles.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for call in 0..CALLS {
                    // 1..=3 entries per call, tagged with (task, call, index).
                    let n = 1 + (task + call) % 3;
                    let entries = (0..n)
                        .map(|i| entry("x", format!("{task}/{call}/{i}")))
                        .collect();
                    let seqs = j.append(&run, entries, None).await.unwrap();
                    assert_eq!(seqs.len(), n);
                    // A caller's entries are contiguous, in its order.
                    for w in seqs.windows(2) {
                        assert_eq!(w[1].0, w[0].0 + 1);
                    }
                    got.push((call, seqs));
                }
                (task, run, got)
            }));
        }
        let mut by_seq: BTreeMap<(RunId, u64), String> = BTreeMap::new();
        for h in handles {
            let (task, run, got) = h.await.unwrap();
            let mut last = 0;
            for (call, seqs) in got {
                // Each caller's successive appends land in increasing order.
                assert!(seqs[0].0 > last);
                last = seqs[seqs.len() - 1].0;
                for (i, s) in seqs.iter().enumerate() {
                    by_seq.insert((run.clone(), s.0), format!("{task}/{call}/{i}"));
                }
            }
        }
        let appends = (TASKS * CALLS) as u64;
        let commits = j.commit_count() - commits_before;
        assert!(
            commits < appends,
            "expected batching: {commits} commits for {appends} appends"
        );
        for r in &runs {
            let entries = j.read(r, Seq(1)).await.unwrap();
            let m = j.run(r).await.unwrap().unwrap();
            assert_eq!(m.last_seq, entries.len() as u64);
            for (i, (seq, e)) in entries.iter().enumerate() {
                assert_eq!(seq.0, i as u64 + 1, "gap in run {r}");
                let want = &by_seq[&(r.clone(), seq.0)];
                assert_eq!(e.payload, want.as_bytes());
            }
        }
    });
}

#[test]
fn a_bad_request_fails_alone_inside_a_shared_batch() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_dir, _path, j) = temp_journal();
        let run = RunId::new();
        let mut m = meta(&run);
        m.last_seq = 41; // ignored: a new run starts at seq 1
        j.create_run(m).await.unwrap();
        let missing = RunId("01MISSING".into());
        let before = j.commit_count();
        let mut handles = Vec::new();
        for i in 0..40u32 {
            let j = j.clone();
            let target = if i % 4 == 0 {
                missing.clone()
            } else {
                run.clone()
            };
            handles.push(tokio::spawn(async move {
                (i, j.append(&target, vec![entry("x", "{}")], None).await)
            }));
        }
        let mut ok = 0;
        for h in handles {
            match h.await.unwrap() {
                (i, Ok(seqs)) => {
                    assert_ne!(i % 4, 0);
                    assert_eq!(seqs.len(), 1);
                    ok += 1;
                }
                (i, Err(JournalError::RunNotFound(id))) => {
                    assert_eq!(i % 4, 0);
                    assert_eq!(id, missing);
                }
                (_, Err(e)) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(ok, 30);
        assert!(j.commit_count() - before < 40, "requests were not batched");
        let entries = j.read(&run, Seq(1)).await.unwrap();
        let seqs: Vec<u64> = entries.iter().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
    });
}

#[tokio::test]
async fn acknowledged_entries_survive_reopen() {
    let (_dir, path, j) = temp_journal();
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let big = vec![42u8; 100_000];
    j.append(
        &run,
        vec![entry("a", "1"), entry("big", big.clone())],
        Some(RunStatus::Failed),
    )
    .await
    .unwrap();
    let before = j.read(&run, Seq(1)).await.unwrap();
    drop(j);

    let j = Journal::open(&path).unwrap();
    let after = j.read(&run, Seq(1)).await.unwrap();
    assert_eq!(before, after);
    assert_eq!(after[1].1.payload, big);
    let m = j.run(&run).await.unwrap().unwrap();
    assert_eq!((m.last_seq, m.status), (2, RunStatus::Failed));
    // Seqs continue after reopen.
    assert_eq!(
        j.append(&run, vec![entry("c", "3")], None).await.unwrap(),
        vec![Seq(3)]
    );
}

#[tokio::test]
async fn blobs_dedup_and_large_payloads_round_trip() {
    let (_dir, path, j) = temp_journal();
    let h1 = j.put_blob(b"definition text".to_vec()).await.unwrap();
    let h2 = j.put_blob(b"definition text".to_vec()).await.unwrap();
    assert_eq!(h1, h2);
    assert_eq!(h1, blake3::hash(b"definition text").to_hex().as_str());
    assert_eq!(
        j.blob(&h1).await.unwrap().as_deref(),
        Some(&b"definition text"[..])
    );
    assert!(j.blob(&"0".repeat(64)).await.unwrap().is_none());

    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    let edge = vec![1u8; codec::INLINE_PAYLOAD_MAX];
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    j.append(
        &run,
        vec![
            entry("edge", edge.clone()),
            entry("big", big.clone()),
            entry("again", big.clone()),
        ],
        None,
    )
    .await
    .unwrap();
    let got = j.read(&run, Seq(1)).await.unwrap();
    assert_eq!(got[0].1.payload, edge);
    assert_eq!(got[1].1.payload, big);
    assert_eq!(got[2].1.payload, big);
    // The large payload went to `blobs` under its hash, once.
    let hash = blake3::hash(&big).to_hex().to_string();
    assert_eq!(j.blob(&hash).await.unwrap(), Some(big));
    drop(j);
    let db = Database::open(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let blobs = txn.open_table(store::BLOBS).unwrap();
    assert_eq!(redb::ReadableTableMetadata::len(&blobs).unwrap(), 2);
}

#[tokio::test]
async fn runs_are_listed_newest_first() {
    let (_dir, _path, j) = temp_journal();
    let ids: Vec<RunId> = (0..3).map(|_| RunId::new()).collect();
    // Create out of order: the listing follows id (creation time) order.
    for i in [1, 0, 2] {
        j.create_run(meta(&ids[i])).await.unwrap();
    }
    let listed: Vec<RunId> = j.runs().await.unwrap().into_iter().map(|m| m.id).collect();
    let mut want = ids.clone();
    want.sort();
    want.reverse();
    assert_eq!(listed, want);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lev.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(store::META)
            .unwrap()
            .insert(store::SCHEMA_KEY, SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    match Journal::open(&path) {
        Err(JournalError::Schema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected a schema error, got {:?}", other.err()),
    }
}

#[test]
fn second_open_in_process_is_locked() {
    let (_dir, path, _j) = temp_journal();
    assert!(matches!(
        Journal::open(&path),
        Err(JournalError::Locked { .. })
    ));
}

#[tokio::test]
async fn export_import_round_trip() {
    let (_dir, _path, a) = temp_journal();
    let definition = a.put_blob(b"id: implement-auth\n".to_vec()).await.unwrap();
    let stdout = a.put_blob(vec![0xff, 0, 1, 2]).await.unwrap();
    let unrelated = a.put_blob(b"not referenced".to_vec()).await.unwrap();
    let run = RunId::new();
    let mut m = meta(&run);
    m.definition_blob = definition.clone();
    m.parent = Some(RunId::new());
    a.create_run(m).await.unwrap();
    let mut plain = entry(
        "step_started",
        r#"{"z":1,"a":[true,null],"s":"x\"payload\":y"}"#,
    );
    plain.step = None;
    plain.fingerprint = None;
    let entries = vec![
        plain,
        entry(
            "shell_exit",
            format!(r#"{{"code":0,"stdout_blob":"{stdout}"}}"#),
        ),
        entry("binary", vec![0u8, 159, 146, 150]),
        entry("pretty", "{\n  \"a\": 1\n}"),
        entry("null", "null"),
        entry("empty", ""),
        entry("big", format!(r#"{{"text":"{}"}}"#, "y".repeat(40_000))),
    ];
    a.append(&run, entries, Some(RunStatus::Succeeded))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.jsonl");
    let mut out = std::fs::File::create(&file).unwrap();
    a.export(&run, &mut out).await.unwrap();
    drop(out);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(r#"{"lev_export":1,"#));
    // Valid single-line JSON payloads are embedded readably.
    assert!(text.contains(r#""payload":{"z":1,"a":[true,null],"s":"x\"payload\":y"}}"#));
    assert!(!text.contains(&unrelated));

    let (_dir2, _path2, b) = temp_journal();
    assert_eq!(b.import(&file).await.unwrap(), run);
    assert_eq!(
        a.read(&run, Seq(1)).await.unwrap(),
        b.read(&run, Seq(1)).await.unwrap()
    );
    assert_eq!(a.run(&run).await.unwrap(), b.run(&run).await.unwrap());
    for h in [&definition, &stdout] {
        assert_eq!(a.blob(h).await.unwrap(), b.blob(h).await.unwrap());
        assert!(b.blob(h).await.unwrap().is_some());
    }
    assert!(b.blob(&unrelated).await.unwrap().is_none());

    // Importing the same run again is refused.
    assert!(matches!(
        b.import(&file).await,
        Err(JournalError::RunExists(ref id)) if *id == run
    ));
    // Seqs continue after an imported run.
    assert_eq!(
        b.append(&run, vec![entry("next", "{}")], None)
            .await
            .unwrap(),
        vec![Seq(8)]
    );
}

#[tokio::test]
async fn import_errors_name_file_and_line() {
    let (_dir, _path, a) = temp_journal();
    let run = RunId::new();
    let mut m = meta(&run);
    m.definition_blob = a.put_blob(b"def".to_vec()).await.unwrap();
    a.create_run(m).await.unwrap();
    a.append(&run, vec![entry("a", "{}"), entry("b", "{}")], None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    let mut out = std::fs::File::create(&good).unwrap();
    a.export(&run, &mut out).await.unwrap();
    let text = std::fs::read_to_string(&good).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let (_dir2, _path2, b) = temp_journal();
    let check = |name: &str, body: String, want_line: usize, want_msg: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, body).unwrap();
        let b = b.clone();
        let want_msg = want_msg.to_owned();
        async move {
            match b.import(&file).await {
                Err(JournalError::Import {
                    file: f,
                    line,
                    message,
                }) => {
                    assert!(f.ends_with(&name_of(&file)), "{f}");
                    assert_eq!(line, want_line, "{message}");
                    assert!(message.contains(&want_msg), "{message}");
                }
                other => panic!("expected import error, got {other:?}"),
            }
        }
    };
    check("nohdr.jsonl", lines[1..].join("\n"), 1, "not a lev export").await;
    let mut broken = lines.clone();
    broken[3] = "{not json";
    check("broken.jsonl", broken.join("\n"), 4, "bad line").await;
    let mut skipped = lines.clone();
    skipped.remove(2);
    check("gap.jsonl", skipped.join("\n"), 3, "expected seq 1").await;
    let future = text.replacen(r#""lev_export":1"#, r#""lev_export":9"#, 1);
    check("future.jsonl", future, 1, "not supported").await;
    // Lines: header, run, entry 1, entry 2, the definition blob.
    assert!(lines[4].contains(r#""b64":"ZGVm""#), "{}", lines[4]);
    let mut tampered = lines.clone();
    let forged = lines[4].replace("ZGVm", "ZGVn");
    tampered[4] = &forged;
    check(
        "tampered.jsonl",
        tampered.join("\n"),
        5,
        "content hashes to",
    )
    .await;
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    check(
        "order.jsonl",
        swapped.join("\n"),
        2,
        "entry before the run line",
    )
    .await;
    // Nothing was imported by the failed attempts.
    assert!(b.run(&run).await.unwrap().is_none());
}

fn name_of(p: &std::path::Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[tokio::test]
async fn a_run_is_created_with_its_first_entries_in_one_commit() {
    let (_dir, path, j) = temp_journal();
    let run = RunId::new();
    let before = j.commit_count();
    let mut m = meta(&run);
    m.last_seq = 41; // ignored: a new run starts at seq 1
    let seqs = j
        .create_run_with(m, vec![entry("run_started", "{}")])
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(1)]);
    assert_eq!(j.commit_count(), before + 1);
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.run(&run).await.unwrap().unwrap().last_seq, 1);
    assert_eq!(j.read(&run, Seq(1)).await.unwrap()[0].1.kind, "run_started");
    assert!(matches!(
        j.create_run_with(meta(&run), vec![]).await,
        Err(JournalError::RunExists(_))
    ));
}
