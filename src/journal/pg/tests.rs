//! `PgStore` against a real PostgreSQL server (`LEV_TEST_POSTGRES`, a URL
//! or key-value string): each test in a database of its own, dropped at
//! the end even when the test fails, so tests run in parallel.

use std::time::Duration;

use tokio_postgres::NoTls;

use super::*;
use crate::journal::codec::INLINE_PAYLOAD_MAX;
use crate::journal::{Journal, blob_hash};

const REQUIRED: &str =
    "PostgreSQL is required in CI (scripts/test starts one and sets LEV_TEST_POSTGRES)";

/// Longest a test waits for something that should come at once: only
/// there so a broken build fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

/// The server the tests use; `None` (the test skips) on a developer's
/// machine without one, a failure in CI.
pub(super) fn server() -> Option<String> {
    match std::env::var("LEV_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("{REQUIRED}"),
        _ => None,
    }
}

/// A database of the test's own, dropped when this is.
pub(crate) struct TestDb {
    admin: String,
    pub(super) name: String,
    pub(crate) url: String,
}

impl TestDb {
    pub(crate) async fn new() -> Option<TestDb> {
        let admin = server()?;
        let name = format!("lev_test_{:016x}", rand::random::<u64>());
        raw(&admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_dbname(&admin, &name);
        Some(TestDb { admin, name, url })
    }

    pub(super) async fn store(&self) -> PgStore {
        PgStore::connect(&self.url).await.unwrap()
    }

    /// A plain connection to the test's database, for SQL behind the
    /// store's back.
    pub(super) async fn sql(&self) -> tokio_postgres::Client {
        raw(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // On a thread with a runtime of its own: the test's runtime may be
        // single-threaded, or gone with a panic. FORCE ends the sessions
        // the test's stores left open.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin, NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("test database {} was not dropped: {dropped:?}", self.name);
        }
    }
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// `base` pointed at database `name`, whether a URL or key-value string.
fn with_dbname(base: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = base.strip_prefix(scheme) {
            let (main, query) = match rest.split_once('?') {
                Some((main, query)) => (main, Some(query)),
                None => (rest, None),
            };
            let authority = main.split('/').next().unwrap_or_default();
            let mut url = format!("{scheme}{authority}/{name}");
            if let Some(query) = query {
                url.push('?');
                url.push_str(query);
            }
            return url;
        }
    }
    // A later key wins.
    format!("{base} dbname={name}")
}

fn meta(id: &RunId) -> RunMeta {
    RunMeta {
        id: id.clone(),
        workflow_id: "implement-auth".into(),
        name: "Implement auth".into(),
        source: "workflows/implement-auth.yaml".into(),
        definition_blob: "ab".repeat(32),
        status: RunStatus::Running,
        created_ms: 1,
        updated_ms: 1,
        last_seq: 0,
        parent: None,
        step_run: false,
    }
}

fn entry(kind: &str, at_ms: u64, payload: impl Into<Vec<u8>>) -> Entry {
    Entry {
        kind: kind.into(),
        step: Some("build".into()),
        fingerprint: Some(blob_hash(kind.as_bytes())),
        attempt: 1,
        at_ms,
        payload: payload.into(),
    }
}

/// The next notification, or a failure after `PATIENCE`.
async fn next(rx: &mut mpsc::UnboundedReceiver<(RunId, u64)>) -> (RunId, u64) {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a notification in time")
        .expect("the listener is open")
}

async fn count(sql: &tokio_postgres::Client, query: &str, run: &RunId) -> i64 {
    sql.query_one(query, &[&run.as_str()]).await.unwrap().get(0)
}

#[test]
fn a_store_is_shared_by_tasks() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<PgStore>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_even_when_two_processes_start_at_once() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b) = tokio::join!(PgStore::connect(&db.url), PgStore::connect(&db.url));
    a.unwrap();
    b.unwrap();
    // Once more on a database already up to date: a no-op.
    let c = db.store().await;
    assert!(c.runs().await.unwrap().is_empty());
    let versions: Vec<i64> = db
        .sql()
        .await
        .query("SELECT version FROM lev_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i64> = (1..=PG_SCHEMA_VERSION as i64).collect();
    assert_eq!(versions, expected);
}

#[tokio::test]
async fn a_database_of_a_newer_lev_is_refused() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    db.store().await;
    let newer = PG_SCHEMA_VERSION as i64 + 1;
    db.sql()
        .await
        .execute(
            "INSERT INTO lev_schema (version, applied_ms) VALUES ($1, 0)",
            &[&newer],
        )
        .await
        .unwrap();
    let refused = PgStore::connect(&db.url).await.err();
    assert!(
        matches!(
            refused,
            Some(JournalError::Schema { found, supported })
                if found == newer as u64 && supported == PG_SCHEMA_VERSION
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_failed_connection_names_the_server_and_not_the_password() {
    let Some(admin) = server() else {
        return;
    };
    let missing = format!("lev_test_missing_{:016x}", rand::random::<u64>());
    let mut url = with_dbname(&admin, &missing);
    if !url.contains("://") {
        url.push_str(" password=not-to-be-shown");
    }
    let err = PgStore::connect(&url).await.err().unwrap();
    let JournalError::Open { path, message } = &err else {
        panic!("{err:?}");
    };
    assert!(path.contains(&missing), "{path}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(!err.to_string().contains("not-to-be-shown"), "{err}");
    let bad = PgStore::connect("host=/tmp port=not-a-port").await.err();
    assert!(matches!(bad, Some(JournalError::Open { .. })), "{bad:?}");
}

#[tokio::test]
async fn entries_round_trip_and_the_run_follows_them_as_redb_has_it() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let run = RunId::new();
    let created = RunMeta {
        last_seq: 7,
        parent: Some(RunId::new()),
        step_run: false,
        ..meta(&run)
    };
    store.create_run(&created).await.unwrap();
    // A new run has no entries, whatever its meta said.
    let mut expected = RunMeta {
        last_seq: 0,
        ..created.clone()
    };
    assert_eq!(store.run(&run).await.unwrap(), Some(expected.clone()));

    let big = (0..=INLINE_PAYLOAD_MAX)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>();
    let first = vec![entry("a", 10, "1"), entry("b", 5, big.clone())];
    assert_eq!(store.append(&run, 1, first, None).await.unwrap(), [1, 2]);
    let late = entry("c", 99, "3");
    let seqs = store
        .append(&run, 3, vec![late], Some(RunStatus::Paused))
        .await
        .unwrap();
    assert_eq!(seqs, [3]);
    // A status-only append writes no entry but updates the run.
    let none = store
        .append(&run, 4, vec![], Some(RunStatus::Succeeded))
        .await
        .unwrap();
    assert!(none.is_empty());
    // An older time never moves `updated_ms` back.
    assert_eq!(
        store
            .append(&run, 4, vec![entry("d", 50, "4")], None)
            .await
            .unwrap(),
        [4]
    );
    expected.last_seq = 4;
    expected.status = RunStatus::Succeeded;
    expected.updated_ms = 99;
    assert_eq!(store.run(&run).await.unwrap(), Some(expected));

    let all = store.read(&run, 1).await.unwrap();
    let want = vec![
        (1, entry("a", 10, "1")),
        (2, entry("b", 5, big.clone())),
        (3, entry("c", 99, "3")),
        (4, entry("d", 50, "4")),
    ];
    assert_eq!(all, want);
    assert_eq!(store.read(&run, 3).await.unwrap(), want[2..]);
    assert!(store.read(&run, 5).await.unwrap().is_empty());
    assert!(store.read(&RunId::new(), 1).await.unwrap().is_empty());
    // The big payload went to a blob, served whole on its own too.
    assert_eq!(store.blob(&blob_hash(&big)).await.unwrap(), Some(big));

    // The columns lev queries by say what the record says.
    let sql = db.sql().await;
    let row = sql
        .query_one(
            "SELECT status, last_seq, updated_ms, parent FROM lev_runs WHERE id = $1",
            &[&run.as_str()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "succeeded");
    assert_eq!(row.get::<_, i64>(1), 4);
    assert_eq!(row.get::<_, i64>(2), 99);
    assert_eq!(
        row.get::<_, Option<&str>>(3),
        created.parent.as_ref().map(RunId::as_str)
    );
}

#[tokio::test]
async fn a_run_created_with_entries_starts_at_seq_one_and_shares_blobs() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let run = RunId::new();
    // Two entries spilling the same payload share one blob.
    let (big, other) = (
        vec![b'b'; INLINE_PAYLOAD_MAX + 1],
        vec![b'o'; INLINE_PAYLOAD_MAX + 9],
    );
    let first = vec![
        entry("a", 20, "1"),
        entry("b", 30, big.clone()),
        entry("c", 25, other),
        entry("d", 21, big),
    ];
    let seqs = store
        .create_run_with(&meta(&run), first.clone())
        .await
        .unwrap();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let m = store.run(&run).await.unwrap().unwrap();
    assert_eq!((m.last_seq, m.updated_ms), (4, 30));
    let read: Vec<Entry> = store
        .read(&run, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(read, first);
    let blobs: i64 = db
        .sql()
        .await
        .query_one("SELECT count(*) FROM lev_blobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(blobs, 2);
}

#[tokio::test]
async fn runs_are_listed_in_the_order_redb_lists_them() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let redb = Journal::open(&dir.path().join("lev.redb")).unwrap();
    // ULIDs, and ids whose byte order is not the order of a
    // natural-language collation ("B" before "a" before "A", descending).
    let mut ids: Vec<RunId> = (0..3).map(|_| RunId::new()).collect();
    ids.extend(["A", "a", "B", "_x"].map(|id| RunId(id.to_owned())));
    for id in &ids {
        store.create_run(&meta(id)).await.unwrap();
        redb.create_run(meta(id)).await.unwrap();
    }
    let listed: Vec<RunId> = store
        .runs()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    let by_redb: Vec<RunId> = redb
        .runs()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, by_redb);
    // Newest (greatest id) first, ids compared byte by byte.
    ids.sort_by(|a, b| b.as_str().as_bytes().cmp(a.as_str().as_bytes()));
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn an_append_off_the_runs_next_seq_is_a_gap() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let run = RunId::new();
    store.create_run(&meta(&run)).await.unwrap();
    let two = vec![entry("a", 10, "1"), entry("b", 10, "2")];
    assert_eq!(store.append(&run, 1, two, None).await.unwrap(), [1, 2]);
    for at in [4, 2, 0] {
        let refused = store
            .append(&run, at, vec![entry("x", 90, "x")], Some(RunStatus::Failed))
            .await;
        assert!(
            matches!(
                refused,
                Err(JournalError::Gap { run: ref of, expected, last: 2 })
                    if *of == run && expected == at
            ),
            "at {at}: {refused:?}"
        );
    }
    // Nothing of the refused appends landed.
    let m = store.run(&run).await.unwrap().unwrap();
    assert_eq!(
        (m.last_seq, m.status, m.updated_ms),
        (2, RunStatus::Running, 10)
    );
    assert_eq!(store.read(&run, 1).await.unwrap().len(), 2);
    assert_eq!(
        store
            .append(&run, 3, vec![entry("c", 10, "3")], None)
            .await
            .unwrap(),
        [3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_appending_one_seq_have_one_winner() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let run = RunId::new();
    a.create_run(&meta(&run)).await.unwrap();
    const ROUNDS: u64 = 8;
    for seq in 1..=ROUNDS {
        // On tasks of their own, as an engine's would be.
        let append = |store: &PgStore, who: &'static str| {
            let (store, run) = (store.clone(), run.clone());
            tokio::spawn(async move {
                store
                    .append(&run, seq, vec![entry(who, seq, who)], None)
                    .await
            })
        };
        let (x, y) = tokio::join!(append(&a, "a"), append(&b, "b"));
        let (won, lost) = match (x.unwrap(), y.unwrap()) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            other => panic!("round {seq}: {other:?}"),
        };
        assert_eq!(won, [seq]);
        assert!(
            matches!(lost, JournalError::Gap { expected, last, .. } if expected == seq && last == seq),
            "round {seq}: {lost:?}"
        );
    }
    let seqs: Vec<u64> = b
        .read(&run, 1)
        .await
        .unwrap()
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(seqs, (1..=ROUNDS).collect::<Vec<_>>());
    assert_eq!(a.run(&run).await.unwrap().unwrap().last_seq, ROUNDS);
}

#[tokio::test]
async fn unknown_and_duplicate_runs_are_refused_alone() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let run = RunId::new();
    store.create_run(&meta(&run)).await.unwrap();
    let again = store.create_run(&meta(&run)).await;
    assert!(matches!(again, Err(JournalError::RunExists(ref id)) if *id == run));
    let missing = RunId("01NOSUCHRUN".into());
    let err = store
        .append(&missing, 1, vec![entry("a", 1, "1")], None)
        .await;
    assert!(matches!(err, Err(JournalError::RunNotFound(ref id)) if *id == missing));
    assert!(store.run(&missing).await.unwrap().is_none());
    // The store goes on after refusals (no transaction left open).
    assert_eq!(
        store
            .append(&run, 1, vec![entry("a", 1, "1")], None)
            .await
            .unwrap(),
        [1]
    );
}

#[tokio::test]
async fn an_altered_blob_is_an_error_naming_it_never_data() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let bytes = b"the definition".to_vec();
    let hash = store.put_blob(bytes.clone()).await.unwrap();
    assert_eq!(hash, blob_hash(&bytes));
    assert_eq!(store.put_blob(bytes.clone()).await.unwrap(), hash);
    assert_eq!(store.blob(&hash).await.unwrap(), Some(bytes));
    assert_eq!(store.blob(&blob_hash(b"never stored")).await.unwrap(), None);

    let run = RunId::new();
    store.create_run(&meta(&run)).await.unwrap();
    let big = vec![b'x'; INLINE_PAYLOAD_MAX + 1];
    let spilled = blob_hash(&big);
    store
        .append(&run, 1, vec![entry("big", 1, big)], None)
        .await
        .unwrap();

    let sql = db.sql().await;
    sql.execute(
        "UPDATE lev_blobs SET bytes = overlay(bytes placing '\\x00'::bytea from 3)",
        &[],
    )
    .await
    .unwrap();
    match store.blob(&hash).await {
        Err(JournalError::Storage(why)) => assert!(why.contains(&hash), "{why}"),
        other => panic!("{other:?}"),
    }
    match store.read(&run, 1).await {
        Err(JournalError::Storage(why)) => {
            assert!(why.contains("entry 1") && why.contains(&spilled), "{why}")
        }
        other => panic!("{other:?}"),
    }
    sql.execute("DELETE FROM lev_blobs", &[]).await.unwrap();
    match store.read(&run, 1).await {
        Err(JournalError::Storage(why)) => assert!(why.contains("missing"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_listener_sees_another_stores_appends_in_order() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (watcher, writer) = (db.store().await, db.store().await);
    let mut rx = watcher.listen().await.unwrap();
    let run = RunId::new();
    writer.create_run(&meta(&run)).await.unwrap();
    let two = vec![entry("a", 1, "1"), entry("b", 2, "2")];
    writer.append(&run, 1, two, None).await.unwrap();
    // No entries, no notification: the next one is the append after it.
    writer
        .append(&run, 3, vec![], Some(RunStatus::Paused))
        .await
        .unwrap();
    writer
        .append(&run, 3, vec![entry("c", 3, "3")], None)
        .await
        .unwrap();
    let other = RunId::new();
    writer
        .create_run_with(&meta(&other), vec![entry("a", 1, "1")])
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, (run.clone(), 2));
    assert_eq!(next(&mut rx).await, (run, 3));
    assert_eq!(next(&mut rx).await, (other, 1));
}

#[tokio::test]
async fn an_append_that_fails_notifies_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (watcher, writer) = (db.store().await, db.store().await);
    let mut rx = watcher.listen().await.unwrap();
    let (broken, fine) = (RunId::new(), RunId::new());
    writer.create_run(&meta(&broken)).await.unwrap();
    writer.create_run(&meta(&fine)).await.unwrap();
    let refused = writer
        .append(&broken, 2, vec![entry("a", 1, "1")], None)
        .await;
    assert!(
        matches!(refused, Err(JournalError::Gap { .. })),
        "{refused:?}"
    );
    // A row already where the append writes: its transaction fails after
    // the run was locked and checked.
    let sql = db.sql().await;
    sql.execute(
        "INSERT INTO lev_entries (run, seq, record) VALUES ($1, 1, '\\x00')",
        &[&broken.as_str()],
    )
    .await
    .unwrap();
    let failed = writer
        .append(&broken, 1, vec![entry("a", 1, "1")], None)
        .await;
    assert!(
        matches!(failed, Err(JournalError::Storage(ref why)) if why.contains(broken.as_str())),
        "{failed:?}"
    );
    assert_eq!(writer.run(&broken).await.unwrap().unwrap().last_seq, 0);
    // Notifications are delivered in commit order: had a failed append
    // sent one, it would come before this one.
    writer
        .append(&fine, 1, vec![entry("a", 1, "1")], None)
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, (fine, 1));
}

#[tokio::test]
async fn dropping_the_listener_closes_its_connection() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let sql = db.sql().await;
    let listeners = || async {
        sql.query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'lev-listen'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };
    let rx = store.listen().await.unwrap();
    assert_eq!(listeners().await, 1);
    drop(rx);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while listeners().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listening session is still open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_lost_connection_is_made_again() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let run = RunId::new();
    store.create_run(&meta(&run)).await.unwrap();
    db.sql()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'lev'",
            &[],
        )
        .await
        .unwrap();
    // The call that was on the connection when it went may fail; the
    // ones after it find a new one.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match store.run(&run).await {
            Ok(found) => {
                assert!(found.is_some());
                break;
            }
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deleting_runs_removes_their_entries() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let (gone, kept) = (RunId::new(), RunId::new());
    for run in [&gone, &kept] {
        store
            .create_run_with(&meta(run), vec![entry("a", 1, "1"), entry("b", 2, "2")])
            .await
            .unwrap();
    }
    let removed = store
        .delete_runs(&[gone.clone(), RunId::new()])
        .await
        .unwrap();
    assert_eq!((removed.runs, removed.entries), (1, 2));
    assert!(store.run(&gone).await.unwrap().is_none());
    assert!(store.read(&gone, 1).await.unwrap().is_empty());
    let sql = db.sql().await;
    let entries = "SELECT count(*) FROM lev_entries WHERE run = $1";
    assert_eq!(count(&sql, entries, &gone).await, 0);
    assert_eq!(count(&sql, entries, &kept).await, 2);
    let left: Vec<RunId> = store
        .runs()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&kept));
    assert_eq!(store.read(&kept, 1).await.unwrap().len(), 2);
}
