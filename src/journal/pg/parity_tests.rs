//! The same calls on a redb journal and on a PostgreSQL one give the same
//! answers: the memory bank, whisper scores, deleting runs with their
//! blobs, doctor's checks. Each test runs one script against both and
//! compares everything it returned, then checks a few answers by name so
//! two equally wrong backends do not pass. Then what only PostgreSQL
//! needs: counts from two connections at once, damage done behind lev's
//! back with SQL.

use super::tests::TestDb;
use super::*;
use crate::journal::codec::INLINE_PAYLOAD_MAX;
use crate::journal::tests::{entry, meta};
use crate::journal::{Journal, MemoryAuthor, MemoryPostings, MemoryRecord, RunCheck, blob_hash};
use crate::protocol::{RunId, Seq, WhisperOutcome};

/// A redb journal in a temp dir (kept while the dir is) and a PostgreSQL
/// one in the test's database; `None` without a server.
async fn both(db: &TestDb) -> (tempfile::TempDir, Journal, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let redb = Journal::open(&dir.path().join("lev.redb")).unwrap();
    let pg = Journal::open_url(&db.url).await.unwrap();
    (dir, redb, pg)
}

fn note(ns: &str, key: &str, text: &str, at: u64) -> MemoryRecord {
    MemoryRecord {
        namespace: ns.into(),
        key: key.into(),
        text: text.into(),
        tags: vec!["zeta".into(), "alpha".into()],
        author: MemoryAuthor {
            run: Some("01RUN".into()),
            step: Some("learn".into()),
            mode: Some("architect".into()),
        },
        created_ms: at,
        updated_ms: at,
    }
}

fn terms(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// What the memory bank answers to a sequence of puts, upserts, reads,
/// searches and deletes, each answer as text.
async fn memory_script(j: &Journal) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |what: &str, answer: String| out.push(format!("{what}: {answer}"));
    say(
        "empty before",
        format!("{:?}", j.memory_is_empty("global").await),
    );
    let puts = [
        (
            "global",
            "b",
            "rust async",
            5,
            terms(&[("rust", 2), ("async", 1)]),
        ),
        ("global", "a", "rust", 6, terms(&[("rust", 1)])),
        // Byte order, not the locale's: "B" sorts before "a".
        ("global", "B", "upper", 7, terms(&[("upper", 1)])),
        (
            "project:/w",
            "a",
            "tokio rust",
            8,
            terms(&[("tokio", 3), ("rust", 1)]),
        ),
        ("run:01X", "z", "nothing indexed", 9, terms(&[])),
    ];
    for (ns, key, text, at, t) in puts {
        say(
            &format!("put {ns}/{key}"),
            format!("{:?}", j.memory_put(note(ns, key, text, at), t).await),
        );
    }
    // An upsert keeps `created_ms`; a term given twice keeps its last count.
    say(
        "upsert global/b",
        format!(
            "{:?}",
            j.memory_put(
                note("global", "b", "async twice", 99),
                terms(&[("async", 4), ("tokio", 1), ("async", 2)])
            )
            .await
        ),
    );
    for ns in ["global", "run:01X", "nowhere"] {
        say(
            &format!("empty {ns}"),
            format!("{:?}", j.memory_is_empty(ns).await),
        );
    }
    say("get", format!("{:?}", j.memory_get("global", "b").await));
    say(
        "get absent",
        format!("{:?}", j.memory_get("global", "x").await),
    );
    let keys = [
        ("project:/w", "a"),
        ("global", "x"),
        ("global", "b"),
        ("project:/w", "a"),
    ];
    let keys: Vec<(String, String)> = keys
        .iter()
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .collect();
    say("get many", format!("{:?}", j.memory_get_many(keys).await));
    say("get none", format!("{:?}", j.memory_get_many(vec![]).await));
    say("list all", format!("{:?}", j.memory_list(None).await));
    let some = strings(&["project:/w", "global", "global", "nowhere"]);
    say(
        "list some",
        format!("{:?}", j.memory_list(Some(some)).await),
    );
    say(
        "list none",
        format!("{:?}", j.memory_list(Some(vec![])).await),
    );
    say("namespaces", format!("{:?}", j.memory_namespaces().await));
    let asked = strings(&["rust", "async", "missing", "rust", "tokio"]);
    say(
        "postings all",
        format!("{:?}", j.memory_postings(asked.clone(), None).await),
    );
    say(
        "postings global",
        format!(
            "{:?}",
            j.memory_postings(asked.clone(), Some(strings(&["global", "nowhere"])))
                .await
        ),
    );
    say(
        "delete",
        format!("{:?}", j.memory_delete("global", "a").await),
    );
    say(
        "delete again",
        format!("{:?}", j.memory_delete("global", "a").await),
    );
    say(
        "delete last",
        format!("{:?}", j.memory_delete("run:01X", "z").await),
    );
    say(
        "namespaces after",
        format!("{:?}", j.memory_namespaces().await),
    );
    say(
        "postings after",
        format!("{:?}", j.memory_postings(asked, None).await),
    );
    say("list after", format!("{:?}", j.memory_list(None).await));
    say(
        "empty after",
        format!("{:?}", j.memory_is_empty("run:01X").await),
    );
    out
}

#[tokio::test]
async fn the_memory_bank_answers_as_on_redb() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (_dir, redb, pg) = both(&db).await;
    let expected = memory_script(&redb).await;
    let got = memory_script(&pg).await;
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g);
    }
    assert_eq!(expected.len(), got.len());
    assert!(
        expected.iter().all(|line| !line.contains("Err(")),
        "{expected:#?}"
    );

    // And what those answers are.
    let b = pg.memory_get("global", "b").await.unwrap().unwrap();
    assert_eq!((b.created_ms, b.updated_ms), (5, 99));
    assert_eq!(b.text, "async twice");
    assert_eq!(b.tags, strings(&["zeta", "alpha"]));
    let (_, new) = pg
        .memory_put(note("global", "b", "again", 100), terms(&[]))
        .await
        .unwrap();
    assert!(!new);
    let listed: Vec<(String, String)> = pg
        .memory_list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.namespace, r.key))
        .collect();
    let pairs = [("global", "B"), ("global", "b"), ("project:/w", "a")];
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .collect();
    assert_eq!(listed, pairs);
    assert_eq!(
        pg.memory_namespaces().await.unwrap(),
        vec![("global".to_string(), 2), ("project:/w".to_string(), 1)]
    );
    let MemoryPostings {
        entries,
        total_len,
        postings,
    } = pg
        .memory_postings(strings(&["rust", "upper"]), None)
        .await
        .unwrap();
    // global/b now has no terms, global/B one, project:/w/a four.
    assert_eq!((entries, total_len), (3, 5));
    let rust: Vec<(&str, &str, u32, u32)> = postings[0]
        .1
        .iter()
        .map(|p| (p.namespace.as_str(), p.key.as_str(), p.count, p.len))
        .collect();
    assert_eq!(rust, vec![("project:/w", "a", 1, 4)]);
    assert_eq!(postings[1].1.len(), 1);
}

/// A key stored from two processes at once is stored once (one of them
/// finds it new), with every term index row of the last writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_storing_one_key_store_it_once() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (one, two) = (db.store().await, db.store().await);
    let put = |store: PgStore, i: u64| async move {
        store
            .memory_put(
                note("global", "k", &format!("v{i}"), i),
                terms(&[("same", 1)]),
            )
            .await
            .unwrap()
            .1
    };
    let mut new = 0;
    for round in 0..20u64 {
        let (a, b) = tokio::join!(put(one.clone(), round), put(two.clone(), round));
        new += u32::from(a) + u32::from(b);
        assert!(one.memory_delete("global", "k").await.unwrap().is_some());
    }
    assert_eq!(new, 20, "each round's key is new to exactly one of them");
    assert!(one.memory_is_empty("global").await.unwrap());
}

async fn whisper_script(j: &Journal) -> Vec<String> {
    let mut out = Vec::new();
    let counts = [
        ("tests", WhisperOutcome::Accepted),
        ("tests", WhisperOutcome::Accepted),
        ("style", WhisperOutcome::Dismissed),
        ("tests", WhisperOutcome::Edited),
        ("Docs", WhisperOutcome::Edited),
    ];
    for (category, outcome) in counts {
        out.push(format!("{:?}", j.whisper_record(category, outcome).await));
    }
    out.push(format!("{:?}", j.whisper_scores().await));
    out.push(format!("{:?}", j.whisper_reset(Some("nope".into())).await));
    out.push(format!("{:?}", j.whisper_reset(Some("style".into())).await));
    out.push(format!("{:?}", j.whisper_scores().await));
    out.push(format!("{:?}", j.whisper_reset(None).await));
    out.push(format!("{:?}", j.whisper_scores().await));
    out.push(format!(
        "{:?}",
        j.whisper_record("tests", WhisperOutcome::Dismissed).await
    ));
    out
}

#[tokio::test]
async fn whisper_scores_answer_as_on_redb() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (_dir, redb, pg) = both(&db).await;
    let expected = whisper_script(&redb).await;
    assert_eq!(whisper_script(&pg).await, expected);
    assert!(
        expected.iter().all(|line| !line.contains("Err(")),
        "{expected:#?}"
    );
    // Counted from nothing after the reset; two went at once.
    assert_eq!(expected[9], "Ok(2)");
    let score = pg.whisper_scores().await.unwrap();
    assert_eq!(
        (score.len(), score[0].accepted, score[0].dismissed),
        (1, 0, 1)
    );
}

/// Two processes counting one category at once count every outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_counts_from_two_processes_at_once_all_count() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (one, two) = (db.store().await, db.store().await);
    let count = |store: PgStore| async move {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let score = store
                .whisper_record("tests", WhisperOutcome::Accepted)
                .await
                .unwrap();
            seen.push(score.accepted);
        }
        seen
    };
    let (a, b) = tokio::join!(tokio::spawn(count(one.clone())), tokio::spawn(count(two)));
    let mut seen: Vec<u64> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    seen.sort_unstable();
    // Every count saw a score of its own: none was lost or doubled.
    assert_eq!(seen, (1..=200).collect::<Vec<u64>>());
    assert_eq!(one.whisper_scores().await.unwrap()[0].accepted, 200);
}

/// The blobs of the deletion script, by what refers to them.
struct Blobs {
    shared: String,
    only_gone: String,
    gone_definition: String,
    kept_definition: String,
    in_gone_spill: String,
    in_kept_spill: String,
    loose: String,
}

/// Two runs sharing a blob, each with blobs of its own (pinned
/// definitions, blobs named in payloads, inline and spilled), and a blob
/// nothing names; returns (the run to delete, the run to keep).
async fn deletion_fixture(j: &Journal) -> (RunId, RunId, Blobs) {
    let put = |text: &str| {
        let j = j.clone();
        let bytes = text.as_bytes().to_vec();
        async move { j.put_blob(bytes).await.unwrap() }
    };
    let blobs = Blobs {
        shared: put("output both runs made").await,
        only_gone: put("output of the deleted run").await,
        gone_definition: put("definition of the deleted run").await,
        kept_definition: put("definition of the kept run").await,
        in_gone_spill: put("named in the deleted run's big payload").await,
        in_kept_spill: put("named in the kept run's big payload").await,
        loose: put("named by nothing").await,
    };
    let pad = "x".repeat(INLINE_PAYLOAD_MAX);
    let (gone, kept) = (RunId::new(), RunId::new());
    let mut m = meta(&gone);
    m.definition_blob = blobs.gone_definition.clone();
    let first = vec![
        entry("shell", format!("{{\"stdout_blob\":\"{}\"}}", blobs.shared)),
        entry(
            "shell",
            format!(
                "{{\"stdout_blob\":\"{}\",\"stderr\":\"{}\"}}",
                blobs.only_gone, "ab"
            ),
        ),
        entry(
            "big",
            format!(
                "{{\"texts\":[\"{}\"],\"pad\":\"{pad}\"}}",
                blobs.in_gone_spill
            ),
        ),
    ];
    j.create_run_with(m, first).await.unwrap();
    let mut m = meta(&kept);
    m.definition_blob = blobs.kept_definition.clone();
    let first = vec![
        entry("shell", format!("[\"{}\"]", blobs.shared)),
        entry(
            "big",
            format!(
                "{{\"pad\":\"{pad}\",\"texts\":\"{}\"}}",
                blobs.in_kept_spill
            ),
        ),
    ];
    j.create_run_with(m, first).await.unwrap();
    (gone, kept, blobs)
}

#[tokio::test]
async fn deleting_runs_removes_what_redb_removes() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (_dir, redb, pg) = both(&db).await;
    let mut answers = Vec::new();
    for j in [&redb, &pg] {
        let (gone, kept, blobs) = deletion_fixture(j).await;
        let removed = j
            .delete_runs(vec![gone.clone(), RunId::new(), gone.clone()])
            .await
            .unwrap();
        let mut present = Vec::new();
        for hash in [
            &blobs.shared,
            &blobs.only_gone,
            &blobs.gone_definition,
            &blobs.kept_definition,
            &blobs.in_gone_spill,
            &blobs.in_kept_spill,
            &blobs.loose,
        ] {
            present.push(j.blob(hash).await.unwrap().is_some());
        }
        // The spilled payloads are blobs too: the deleted run's went.
        let kept_entries = j.read(&kept, Seq(1)).await.unwrap();
        assert_eq!(kept_entries.len(), 2);
        assert!(j.run(&gone).await.unwrap().is_none());
        assert!(j.read(&gone, Seq(1)).await.unwrap().is_empty());
        let again = j.delete_runs(vec![gone.clone()]).await.unwrap();
        let none = j.delete_runs(vec![]).await.unwrap();
        answers.push((
            removed,
            present,
            kept_entries,
            again,
            none,
            j.run(&kept).await.unwrap(),
        ));
    }
    let (redb_answer, pg_answer) = (&answers[0], &answers[1]);
    assert_eq!(redb_answer.0, pg_answer.0);
    assert_eq!(redb_answer.1, pg_answer.1);
    assert_eq!(redb_answer.2, pg_answer.2);
    assert_eq!(redb_answer.3, pg_answer.3);
    assert_eq!(redb_answer.4, pg_answer.4);
    let (removed, present, ..) = pg_answer;
    assert_eq!(
        *present,
        vec![true, false, false, true, false, true, false],
        "shared, only-gone, gone definition, kept definition, in gone spill, in kept spill, loose"
    );
    // The run, its 3 entries, and 5 blobs: its own output, definition,
    // the blob its big payload named, the big payload itself, the loose one.
    assert_eq!((removed.runs, removed.entries, removed.blobs), (1, 3, 5));
    assert!(removed.blob_bytes > INLINE_PAYLOAD_MAX as u64);
    assert_eq!(pg_answer.3.runs, 0);
    assert_eq!(pg_answer.4.blobs, 0);
}

/// A remaining run whose record does not decode could name any blob:
/// nothing is deleted, as on redb.
#[tokio::test]
async fn a_run_record_that_does_not_decode_deletes_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = Journal::open_url(&db.url).await.unwrap();
    let (gone, kept, blobs) = deletion_fixture(&j).await;
    db.sql()
        .await
        .execute(
            "UPDATE lev_runs SET record = '\\x00'::bytea WHERE id = $1",
            &[&kept.as_str()],
        )
        .await
        .unwrap();
    let e = j.delete_runs(vec![gone.clone()]).await.unwrap_err();
    assert!(e.to_string().contains("no blob was removed"), "{e}");
    assert!(j.run(&gone).await.unwrap().is_some());
    assert!(j.blob(&blobs.only_gone).await.unwrap().is_some());
}

/// A deletion in one process while another appends entries with blobs
/// of their own: neither fails, and every blob an entry names is kept
/// (the deletion locks out writes while it finds what is referenced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_runs_while_another_process_appends_loses_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let deleter = Journal::open_url(&db.url).await.unwrap();
    let writer = Journal::open_url(&db.url).await.unwrap();
    let busy = RunId::new();
    writer.create_run(meta(&busy)).await.unwrap();
    let mut doomed = Vec::new();
    for i in 0..10 {
        let run = RunId::new();
        let hash = deleter
            .put_blob(format!("doomed {i}").into_bytes())
            .await
            .unwrap();
        deleter
            .create_run_with(meta(&run), vec![entry("shell", format!("[\"{hash}\"]"))])
            .await
            .unwrap();
        doomed.push(run);
    }
    let run = busy.clone();
    let appends = tokio::spawn(async move {
        let mut hashes = Vec::new();
        for i in 0..200 {
            let bytes = format!("kept {i}").into_bytes();
            let hash = blob_hash(&bytes);
            let payload = format!("{{\"texts\":\"{hash}\"}}");
            writer
                .append_with_blobs(&run, vec![entry("context_assembled", payload)], vec![bytes])
                .await
                .unwrap();
            hashes.push(hash);
        }
        (writer, hashes)
    });
    let mut removed = 0;
    for run in doomed {
        removed += deleter.delete_runs(vec![run]).await.unwrap().blobs;
        tokio::task::yield_now().await;
    }
    let (writer, hashes) = appends.await.unwrap();
    assert_eq!(removed, 10, "each deleted run's own blob");
    assert_eq!(writer.read(&busy, Seq(1)).await.unwrap().len(), 200);
    for hash in hashes {
        assert!(
            writer.blob(&hash).await.unwrap().is_some(),
            "{hash} was lost"
        );
    }
}

/// A check as text, the run's id (one of each backend's) as `RUN`.
fn check_text(c: &RunCheck, run: &RunId) -> String {
    format!("{:?} {:?} {:?}", c.meta, c.entries, c.problems).replace(run.as_str(), "RUN")
}

#[tokio::test]
async fn doctor_checks_an_intact_journal_as_on_redb() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (_dir, redb, pg) = both(&db).await;
    let mut answers = Vec::new();
    for j in [&redb, &pg] {
        let (gone, kept, _) = deletion_fixture(j).await;
        let empty = RunId::new();
        j.create_run(meta(&empty)).await.unwrap();
        // Oldest first: in id order (ids made in one millisecond are in
        // no order of their own).
        let mut made = vec![gone.clone(), kept.clone(), empty.clone()];
        made.sort();
        assert_eq!(j.run_ids().await.unwrap(), made);
        let mut checks = Vec::new();
        for id in [&gone, &kept, &empty, &RunId::new()] {
            checks.push(check_text(&j.check_run(id).await, id));
        }
        answers.push((
            checks,
            j.damaged_runs().await.unwrap(),
            j.orphaned_runs().await.unwrap(),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    let (checks, damaged, orphans) = &answers[1];
    assert!(damaged.is_empty() && orphans.is_empty());
    for check in &checks[..3] {
        assert!(check.ends_with(" []"), "{check}");
    }
    assert!(checks[3].ends_with("[\"no run record\"]"), "{}", checks[3]);
}

/// Damage done behind lev's back (an altered or lost blob, an entry or run
/// record that no longer decodes) is what doctor reports, run by run.
#[tokio::test]
async fn doctor_finds_what_was_changed_behind_its_back() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let j = Journal::open_url(&db.url).await.unwrap();
    let (gone, kept, blobs) = deletion_fixture(&j).await;
    let sql = db.sql().await;
    let spilled = |run: &RunId| {
        let run = run.as_str().to_owned();
        let sql = &sql;
        async move {
            let row = sql
                .query_one(
                    "SELECT blob FROM lev_entries WHERE run = $1 AND blob IS NOT NULL",
                    &[&run],
                )
                .await
                .unwrap();
            row.get::<_, String>(0)
        }
    };
    let (gone_spill, kept_spill) = (spilled(&gone).await, spilled(&kept).await);
    let alter = "UPDATE lev_blobs SET bytes = bytes || '\\x00'::bytea WHERE hash = $1";
    sql.execute(alter, &[&gone_spill]).await.unwrap();
    sql.execute(alter, &[&blobs.gone_definition]).await.unwrap();
    sql.execute("DELETE FROM lev_blobs WHERE hash = $1", &[&kept_spill])
        .await
        .unwrap();
    let check = j.check_run(&gone).await;
    assert_eq!(check.entries.len(), 2, "the intact entries are kept");
    assert_eq!(check.problems.len(), 3, "{:?}", check.problems);
    assert!(
        check.problems[0].starts_with(&format!("entry 3: payload blob {gone_spill} is corrupt")),
        "{:?}",
        check.problems
    );
    assert_eq!(
        check.problems[1],
        "the run record says 3 entries, the journal holds entries up to seq 2"
    );
    assert!(
        check.problems[2].starts_with(&format!(
            "pinned definition: journal storage: blob {} is corrupt",
            blobs.gone_definition
        )),
        "{:?}",
        check.problems
    );
    let check = j.check_run(&kept).await;
    assert_eq!(
        check.problems,
        vec![
            format!("entry 2: payload blob {kept_spill} is missing"),
            "the run record says 2 entries, the journal holds entries up to seq 1".to_string(),
        ]
    );

    sql.execute(
        "UPDATE lev_entries SET record = '\\x07'::bytea WHERE run = $1 AND seq = 1",
        &[&kept.as_str()],
    )
    .await
    .unwrap();
    sql.execute(
        "UPDATE lev_runs SET record = '\\x00'::bytea WHERE id = $1",
        &[&gone.as_str()],
    )
    .await
    .unwrap();
    let check = j.check_run(&kept).await;
    assert!(
        check.problems[0].starts_with("entry 1 is corrupt: "),
        "{:?}",
        check.problems
    );
    let check = j.check_run(&gone).await;
    assert!(check.meta.is_none());
    assert!(
        check.problems[0].starts_with(&format!("journal storage: run {gone} record is corrupt")),
        "{:?}",
        check.problems
    );
    let damaged = j.damaged_runs().await.unwrap();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].0, gone);
    // Listed though its record does not decode: doctor checks it.
    let mut both = vec![gone, kept];
    both.sort();
    assert_eq!(j.run_ids().await.unwrap(), both);
    assert_eq!(j.runs().await.unwrap().len(), 1);
}
