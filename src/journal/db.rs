//! The open database, shared by the writer thread and the readers, and
//! what it takes to open it again.
//!
//! redb latches the first failed write: every later operation on that
//! `Database` fails with "previous I/O error". After a failed commit (a full
//! disk, EIO) the writer therefore closes the database and opens the file
//! again, which rolls back to the last durable commit; readers pick up the
//! new handle on their next read.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

use super::JournalError;
use super::guard;
use super::reserve;

/// Opens the database (again); for a file, `store::open_database`.
pub(crate) type Opener = Box<dyn Fn() -> Result<Database, JournalError> + Send + Sync>;

/// Space held back for the commit that finds the disk full.
pub(crate) enum Reserve {
    /// A file beside the journal (`reserve.rs`).
    File(PathBuf),
    /// Tests: releasing calls this (it frees space on the faulty disk);
    /// it returns whether there was anything to free.
    #[cfg(test)]
    Hook(Box<dyn Fn() -> bool + Send + Sync>),
    /// Tests: a disk with no room for the reserve at all.
    #[cfg(test)]
    NoRoom,
}

impl Reserve {
    fn release(&self) -> bool {
        match self {
            Reserve::File(path) => reserve::release(path),
            #[cfg(test)]
            Reserve::Hook(free) => free(),
            #[cfg(test)]
            Reserve::NoRoom => false,
        }
    }

    fn ensure(&self) -> std::io::Result<()> {
        match self {
            Reserve::File(path) => reserve::ensure(path),
            #[cfg(test)]
            Reserve::Hook(_) => Ok(()),
            #[cfg(test)]
            Reserve::NoRoom => Err(std::io::Error::from_raw_os_error(28)),
        }
    }

    fn path(&self) -> String {
        match self {
            Reserve::File(path) => path.display().to_string(),
            #[cfg(test)]
            _ => "the test reserve".into(),
        }
    }
}

/// Everything the writer and the readers share.
pub(crate) struct Shared {
    /// The journal's file as users know it, for every error message.
    pub(crate) path: String,
    /// `None` while the writer reopens it, or after reopening failed.
    db: RwLock<Option<Arc<Database>>>,
    opener: Opener,
    /// The space reserve (none: a commit that finds the disk full fails).
    reserve: Option<Reserve>,
    /// Why the disk is full, once a commit hit ENOSPC; the engine pauses
    /// runs instead of starting new work while it is set.
    disk_full: Mutex<Option<String>>,
    /// Counts reopens: each one rolls the file back to its last durable
    /// commit (the writer then applies its unsynced appends again).
    generation: std::sync::atomic::AtomicU64,
}

/// How long the writer waits for reads in progress before it closes the
/// database to reopen it (a read holds a clone of the handle).
const READERS_PATIENCE: Duration = Duration::from_secs(10);

impl Shared {
    pub(crate) fn open(
        path: String,
        opener: Opener,
        reserve: Option<Reserve>,
    ) -> Result<Shared, JournalError> {
        let db = guard::shielded(&path, &opener).map_err(|e| e.at(&path))?;
        let shared = Shared {
            path,
            db: RwLock::new(Some(Arc::new(db))),
            opener,
            reserve,
            disk_full: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        };
        shared.make_reserve();
        Ok(shared)
    }

    /// How many times the file was reopened (see `generation`).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The current database handle.
    pub(crate) fn database(&self) -> Result<Arc<Database>, JournalError> {
        let held = self
            .db
            .read()
            .map_err(|_| JournalError::Storage(format!("{}: handle lock poisoned", self.path)))?;
        held.clone().ok_or_else(|| JournalError::Io {
            path: self.path.clone(),
            cause: "the file could not be opened again after a failed write".into(),
            during: "reopening".into(),
            disk_full: self.disk_full().is_some(),
        })
    }

    /// The current handle; when an earlier reopen failed (the disk was
    /// still failing), tries to open the file once more first. For the
    /// writer: readers just report that the journal is not open.
    pub(crate) fn database_or_reopen(&self) -> Result<Arc<Database>, JournalError> {
        match self.database() {
            Ok(db) => Ok(db),
            Err(_) => {
                self.reopen(false)?;
                self.database()
            }
        }
    }

    /// Closes the database and opens the file again (the last durable commit
    /// is what it holds then). With `free_space`, the reserve is deleted
    /// first; returns whether it was.
    pub(crate) fn reopen(&self, free_space: bool) -> Result<bool, JournalError> {
        let Ok(mut slot) = self.db.write() else {
            return Err(JournalError::Storage(format!(
                "{}: handle lock poisoned",
                self.path
            )));
        };
        if let Some(db) = slot.take() {
            let db = self.sole_owner(db, &mut slot, "reopen")?;
            guard::drop_shielded(&self.path, db);
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let freed = free_space && self.reserve.as_ref().is_some_and(Reserve::release);
        let db = guard::shielded(&self.path, &self.opener).map_err(|e| e.at(&self.path))?;
        *slot = Some(Arc::new(db));
        Ok(freed)
    }

    /// The database itself, once reads in progress let go of their handles
    /// (redb allows one `Database` per file). After `READERS_PATIENCE` the
    /// handle goes back into `slot` and the caller cannot `what` it.
    fn sole_owner(
        &self,
        mut db: Arc<Database>,
        slot: &mut Option<Arc<Database>>,
        what: &str,
    ) -> Result<Database, JournalError> {
        let deadline = Instant::now() + READERS_PATIENCE;
        loop {
            match Arc::try_unwrap(db) {
                Ok(owned) => return Ok(owned),
                Err(still) if Instant::now() < deadline => {
                    db = still;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(still) => {
                    *slot = Some(still);
                    return Err(JournalError::Storage(format!(
                        "{}: reads in progress kept the journal open; cannot {what} it",
                        self.path
                    )));
                }
            }
        }
    }

    /// Compacts the file (redb gives freed pages back to the disk). Waits
    /// for reads in progress, as a reopen does. True when it compacted.
    pub(crate) fn compact(&self) -> Result<bool, JournalError> {
        let Ok(mut slot) = self.db.write() else {
            return Err(JournalError::Storage(format!(
                "{}: handle lock poisoned",
                self.path
            )));
        };
        let Some(db) = slot.take() else {
            return Err(JournalError::Storage(format!(
                "{}: journal is closed",
                self.path
            )));
        };
        let mut owned = self.sole_owner(db, &mut slot, "compact")?;
        let result = guard::shielded(&self.path, || {
            owned
                .compact()
                .map_err(|e| JournalError::Storage(format!("compact: {e}")))
        });
        *slot = Some(Arc::new(owned));
        result.map_err(|e| e.at(&self.path))
    }

    /// Records that the disk is full (the first cause is kept).
    pub(crate) fn set_disk_full(&self, why: &JournalError) {
        tracing::error!(journal = %self.path, error = %why, "journal: disk full");
        if let Ok(mut d) = self.disk_full.lock()
            && d.is_none()
        {
            *d = Some(why.to_string());
        }
    }

    /// Why the disk is full, if a commit found it so and no space came back.
    pub(crate) fn disk_full(&self) -> Option<String> {
        self.disk_full.lock().ok().and_then(|d| d.clone())
    }

    /// Recreates the reserve when the disk has room again; clears the
    /// disk-full state when it could. A disk with no room for the reserve
    /// is full: without it the next step's outcome might not fit, so runs
    /// pause before they start one. True when lev has its reserve.
    pub(crate) fn make_reserve(&self) -> bool {
        let Some(reserve) = &self.reserve else {
            return false;
        };
        match reserve.ensure() {
            Ok(()) => {
                if let Ok(mut d) = self.disk_full.lock() {
                    *d = None;
                }
                true
            }
            Err(e) if guard::is_disk_full(&e) => {
                let mut why = guard::io_error(&self.path, "making its space reserve", &e);
                if let JournalError::Io { during, .. } = &mut why {
                    *during = format!(
                        "making its {} MiB space reserve {}",
                        reserve::RESERVE_BYTES >> 20,
                        reserve.path()
                    );
                }
                self.set_disk_full(&why);
                false
            }
            Err(_) => false,
        }
    }

    /// Closes the database (at the boundary: closing a damaged one may panic).
    pub(crate) fn close(&self) {
        if let Ok(mut slot) = self.db.write()
            && let Some(db) = slot.take()
        {
            guard::drop_shielded(&self.path, db);
        }
    }
}
