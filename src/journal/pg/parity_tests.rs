//! The same calls on a redb journal and on a PostgreSQL one give the same
//! answers: the memory bank, whisper scores. Each test runs one script
//! against both and compares everything it returned, then checks a few
//! answers by name so two equally wrong backends do not pass. Then what
//! only PostgreSQL needs: writes from two connections at once.

use super::tests::TestDb;
use super::*;
use crate::journal::{Journal, MemoryAuthor, MemoryPostings, MemoryRecord};
use crate::protocol::WhisperOutcome;

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
