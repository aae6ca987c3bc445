//! The journal a library test works on: `lev.redb` in the test's folder,
//! or, with `LEV_TEST_BACKEND=postgres`, a PostgreSQL database of the
//! test's own (dropped when the test ends) — one suite, two backends, as
//! the integration tests have it (`tests/support/journal.rs`).

use std::path::Path;

use super::Journal;
use super::pg::tests::TestDb;

pub(crate) struct TestJournal {
    pub(crate) journal: Journal,
    /// Dropped after the journal: the database outlives its connections.
    db: Option<TestDb>,
    /// The redb file (none on PostgreSQL).
    file: Option<std::path::PathBuf>,
}

impl std::ops::Deref for TestJournal {
    type Target = Journal;
    fn deref(&self) -> &Journal {
        &self.journal
    }
}

impl TestJournal {
    /// The same journal closed and opened again, as a new process would.
    pub(crate) async fn reopen(self) -> TestJournal {
        let TestJournal { journal, db, file } = self;
        drop(journal);
        let journal = match (&db, &file) {
            (Some(db), _) => Journal::open_url(&db.url).await.unwrap(),
            (None, Some(file)) => Journal::open(file).unwrap(),
            (None, None) => unreachable!("a test journal is a file or a database"),
        };
        TestJournal { journal, db, file }
    }
}

/// True when the tests run on PostgreSQL.
pub(crate) fn on_postgres() -> bool {
    match std::env::var("LEV_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("redb") | Ok("") | Err(_) => false,
        Ok(other) => panic!("LEV_TEST_BACKEND={other}: redb or postgres"),
    }
}

/// The test's journal: `dir/lev.redb`, or a database of its own.
pub(crate) async fn open(dir: &Path) -> TestJournal {
    if !on_postgres() {
        let file = dir.join("lev.redb");
        let journal = Journal::open(&file).unwrap();
        return TestJournal {
            journal,
            db: None,
            file: Some(file),
        };
    }
    let db = TestDb::new()
        .await
        .expect("LEV_TEST_BACKEND=postgres needs LEV_TEST_POSTGRES");
    let journal = Journal::open_url(&db.url).await.unwrap();
    TestJournal {
        journal,
        db: Some(db),
        file: None,
    }
}
