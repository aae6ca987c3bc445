//! The memory bank on a real journal file: upsert, delete, namespaces,
//! tags, ranking through the index, persistence across a reopen.

use super::*;
use crate::journal::testing::{self, TestJournal};

fn new_entry(ns: Namespace, key: Option<&str>, text: &str, tags: &[&str], at: u64) -> NewEntry {
    NewEntry {
        namespace: ns,
        key: key.map(str::to_string),
        text: text.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        author: MemoryAuthor {
            run: Some("R1".into()),
            step: Some("plan".into()),
            mode: Some("architect".into()),
        },
        at_ms: at,
    }
}

fn query(text: &str) -> Query {
    Query {
        text: text.into(),
        tags: Vec::new(),
        namespaces: None,
        limit: 10,
    }
}

fn keys(hits: &[Hit]) -> Vec<String> {
    hits.iter().map(|h| h.entry.key.clone()).collect()
}

/// A journal of the test's own, on the backend the suite runs on.
async fn open() -> (tempfile::TempDir, TestJournal) {
    let dir = tempfile::tempdir().unwrap();
    let j = testing::open(dir.path()).await;
    (dir, j)
}

#[tokio::test]
async fn upsert_replaces_text_and_index_and_keeps_created() {
    let (_d, j) = open().await;
    let (first, created) = store(
        &j,
        new_entry(
            Namespace::Global,
            Some("db"),
            "tokens live in redis",
            &[],
            100,
        ),
    )
    .await
    .unwrap();
    assert!(created);
    assert_eq!((first.created_ms, first.updated_ms), (100, 100));
    let (second, created) = store(
        &j,
        new_entry(
            Namespace::Global,
            Some("db"),
            "tokens live in sqlite",
            &["Auth"],
            200,
        ),
    )
    .await
    .unwrap();
    assert!(!created);
    assert_eq!((second.created_ms, second.updated_ms), (100, 200));
    assert_eq!(second.tags, vec!["auth"]);
    assert_eq!(list(&j, None).await.unwrap().len(), 1);
    // The old text's words no longer find it; the new ones do.
    assert!(search(&j, &query("redis")).await.unwrap().is_empty());
    assert_eq!(
        keys(&search(&j, &query("sqlite")).await.unwrap()),
        vec!["db"]
    );
    // The namespace counts stayed at one entry.
    assert_eq!(
        j.memory_namespaces().await.unwrap(),
        vec![("global".to_string(), 1)]
    );
}

#[tokio::test]
async fn same_text_without_a_key_is_one_entry() {
    let (_d, j) = open().await;
    let a = store(&j, new_entry(Namespace::Global, None, "use tabs", &[], 1))
        .await
        .unwrap();
    let b = store(&j, new_entry(Namespace::Global, None, " use tabs ", &[], 2))
        .await
        .unwrap();
    assert!(a.1 && !b.1);
    assert_eq!(a.0.key, b.0.key);
    assert!(a.0.key.starts_with("m-"));
}

#[tokio::test]
async fn delete_removes_the_entry_and_its_postings() {
    let (_d, j) = open().await;
    store(
        &j,
        new_entry(Namespace::Global, Some("k"), "alpha beta", &[], 1),
    )
    .await
    .unwrap();
    store(
        &j,
        new_entry(Namespace::Global, Some("other"), "beta gamma", &[], 1),
    )
    .await
    .unwrap();
    let gone = remove(&j, "global", "k").await.unwrap().unwrap();
    assert_eq!(gone.text, "alpha beta");
    assert!(remove(&j, "global", "k").await.unwrap().is_none());
    assert!(search(&j, &query("alpha")).await.unwrap().is_empty());
    assert_eq!(
        keys(&search(&j, &query("beta")).await.unwrap()),
        vec!["other"]
    );
    remove(&j, "global", "other").await.unwrap();
    assert!(j.memory_namespaces().await.unwrap().is_empty());
    let p = j.memory_postings(vec!["beta".into()], None).await.unwrap();
    assert_eq!((p.entries, p.total_len), (0, 0));
    assert!(p.postings[0].1.is_empty());
}

#[tokio::test]
async fn namespaces_separate_entries_with_the_same_key() {
    let (_d, j) = open().await;
    let run = Namespace::Run("R1".into());
    let project = Namespace::Project("/repo".into());
    store(
        &j,
        new_entry(run.clone(), Some("k"), "run scratch note", &[], 1),
    )
    .await
    .unwrap();
    store(
        &j,
        new_entry(project.clone(), Some("k"), "project note", &[], 1),
    )
    .await
    .unwrap();
    store(
        &j,
        new_entry(Namespace::Global, Some("k"), "global note", &[], 1),
    )
    .await
    .unwrap();
    store(
        &j,
        new_entry(
            Namespace::Run("R2".into()),
            Some("k"),
            "other run note",
            &[],
            1,
        ),
    )
    .await
    .unwrap();
    assert_eq!(list(&j, None).await.unwrap().len(), 4);
    let only_project = list(&j, Some(vec![project.key()])).await.unwrap();
    assert_eq!(only_project.len(), 1);
    assert_eq!(only_project[0].text, "project note");
    // A search over run R1 + project + global sees three, not R2's.
    let q = Query {
        namespaces: Some(vec![run.key(), project.key(), Namespace::Global.key()]),
        ..query("note")
    };
    let hits = search(&j, &q).await.unwrap();
    let mut from: Vec<String> = hits.iter().map(|h| h.entry.namespace.clone()).collect();
    from.sort();
    assert_eq!(from, vec!["global", "project:/repo", "run:R1"]);
}

#[tokio::test]
async fn tags_filter_and_rank() {
    let (_d, j) = open().await;
    store(
        &j,
        new_entry(
            Namespace::Global,
            Some("a"),
            "login uses jwt",
            &["auth", "api"],
            1,
        ),
    )
    .await
    .unwrap();
    store(
        &j,
        new_entry(
            Namespace::Global,
            Some("b"),
            "jwt secrets rotate",
            &["ops"],
            2,
        ),
    )
    .await
    .unwrap();
    store(
        &j,
        new_entry(Namespace::Global, Some("c"), "cache is redis", &["auth"], 3),
    )
    .await
    .unwrap();
    let tagged = Query {
        tags: vec!["AUTH".into()],
        ..query("jwt")
    };
    assert_eq!(keys(&search(&j, &tagged).await.unwrap()), vec!["a"]);
    // Tags are indexed: the word "ops" finds the entry tagged ops.
    assert_eq!(keys(&search(&j, &query("ops")).await.unwrap()), vec!["b"]);
    // No words: the newest entries with the tag.
    let listing = Query {
        tags: vec!["auth".into()],
        ..query("")
    };
    assert_eq!(keys(&search(&j, &listing).await.unwrap()), vec!["c", "a"]);
    // Limit is respected.
    let one = Query {
        limit: 1,
        ..query("jwt redis")
    };
    assert_eq!(search(&j, &one).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_best_match_ranks_first() {
    let (_d, j) = open().await;
    // Filler so that "token" is common and "sqlite" rare.
    for i in 0..20 {
        store(
            &j,
            new_entry(
                Namespace::Global,
                Some(&format!("f{i}")),
                &format!("token note {i}"),
                &[],
                1,
            ),
        )
        .await
        .unwrap();
    }
    store(
        &j,
        new_entry(
            Namespace::Global,
            Some("answer"),
            "the token store is sqlite",
            &[],
            1,
        ),
    )
    .await
    .unwrap();
    let hits = search(&j, &query("token store sqlite")).await.unwrap();
    assert_eq!(hits[0].entry.key, "answer");
    assert!(hits[0].score > hits[1].score);
}

#[tokio::test]
async fn entries_survive_a_reopen() {
    let (_dir, first) = open().await;
    store(
        &first,
        new_entry(Namespace::Global, Some("k"), "durable fact", &["x"], 5),
    )
    .await
    .unwrap();
    let j = first.reopen().await;
    let hits = search(&j, &query("durable")).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].entry.tags, vec!["x"]);
    assert_eq!(hits[0].entry.author.mode.as_deref(), Some("architect"));
}

#[tokio::test]
async fn invalid_entries_are_refused_with_reasons() {
    let (_d, j) = open().await;
    let empty = store(&j, new_entry(Namespace::Global, None, "   ", &[], 1)).await;
    assert!(empty.unwrap_err().to_string().contains("empty"));
    let huge = "x ".repeat(MAX_TEXT_BYTES);
    let big = store(&j, new_entry(Namespace::Global, None, &huge, &[], 1)).await;
    assert!(big.unwrap_err().to_string().contains("at most"));
    let tags: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    let many = store(&j, new_entry(Namespace::Global, None, "t", &tag_refs, 1)).await;
    assert!(many.unwrap_err().to_string().contains("tags"));
    assert!(list(&j, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_tools_store_and_find_across_callers() {
    let (dir, j) = open().await;
    let ws = dir.path().canonicalize().unwrap();
    let a = tool::Caller {
        run: "R1".into(),
        step: "plan".into(),
        mode: "architect".into(),
        workspace: ws.clone(),
        now: crate::protocol::Millis(10),
    };
    let out = tool::store(
        &j,
        &a,
        r#"{"key":"auth-store","text":"Tokens are kept in SQLite.","tags":["auth"]}"#,
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("project namespace"), "{}", out.content);
    let scratch = tool::store(&j, &a, r#"{"text":"half-done idea","namespace":"run"}"#).await;
    assert!(!scratch.is_error);

    // Another agent in a later run, same workspace.
    let b = tool::Caller {
        run: "R2".into(),
        step: "code".into(),
        ..a.clone()
    };
    let found = tool::search(&j, &b, r#"{"query":"where are tokens kept"}"#).await;
    assert!(!found.is_error, "{}", found.content);
    assert!(
        found.content.contains("[project] key `auth-store`")
            && found.content.contains("Tokens are kept in SQLite.")
            && found.content.contains("mode architect"),
        "{}",
        found.content
    );
    // R1's run namespace is not visible from R2.
    let none = tool::search(&j, &b, r#"{"query":"idea"}"#).await;
    assert!(none.content.starts_with("No memories"), "{}", none.content);
    // But it is from R1.
    let mine = tool::search(&j, &a, r#"{"query":"idea","namespace":"run"}"#).await;
    assert!(mine.content.contains("[run]"), "{}", mine.content);

    let bad = tool::search(&j, &b, r#"{"query":"x","namespace":"team"}"#).await;
    assert!(bad.is_error && bad.content.contains("unknown namespace"));
    let missing = tool::store(&j, &b, r#"{"tags":["x"]}"#).await;
    assert!(missing.is_error && missing.content.contains("text"));
}

/// A namespace found empty is known empty until something is stored (the
/// answer an agent's memory include asks at every request).
#[tokio::test]
async fn a_namespace_is_empty_until_something_is_stored_in_it() {
    let (_d, j) = open().await;
    let run = Namespace::Run("R1".into());
    assert!(j.memory_is_empty(&run.key()).await.unwrap());
    assert!(j.memory_is_empty(&run.key()).await.unwrap());
    store(
        &j,
        new_entry(Namespace::Global, Some("g"), "elsewhere", &[], 1),
    )
    .await
    .unwrap();
    assert!(j.memory_is_empty(&run.key()).await.unwrap());
    store(&j, new_entry(run.clone(), Some("k"), "alpha", &[], 2))
        .await
        .unwrap();
    assert!(!j.memory_is_empty(&run.key()).await.unwrap());
    remove(&j, &run.key(), "k").await.unwrap();
    assert!(j.memory_is_empty(&run.key()).await.unwrap());
}
