//! The journal an in-process test's engine works on: the redb file
//! `lev.redb` in the test's directory, or, with `LEV_TEST_BACKEND=postgres`,
//! a PostgreSQL database of the test's own (dropped when the test ends):
//! the same tests, the other backend, as `Lev` has it for the binary.

use std::path::Path;

use lev::journal::Journal;

use super::pg::PgDb;

pub struct TestJournal {
    pub journal: Journal,
    /// Dropped after the journal: the database outlives its connections.
    _db: Option<PgDb>,
}

impl std::ops::Deref for TestJournal {
    type Target = Journal;
    fn deref(&self) -> &Journal {
        &self.journal
    }
}

/// True when the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    match std::env::var("LEV_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("redb") | Ok("") | Err(_) => false,
        Ok(other) => panic!("LEV_TEST_BACKEND={other}: redb or postgres"),
    }
}

/// The test's journal: `dir/lev.redb`, or a database of its own.
pub async fn open(dir: &Path) -> TestJournal {
    if !on_postgres() {
        let journal = Journal::open(&dir.join("lev.redb")).unwrap();
        return TestJournal { journal, _db: None };
    }
    let db = PgDb::new().expect("LEV_TEST_BACKEND=postgres needs LEV_TEST_POSTGRES");
    let journal = Journal::open_url(&db.url).await.unwrap();
    TestJournal {
        journal,
        _db: Some(db),
    }
}
