//! redb tables, opening with the schema check, and the read paths.
//!
//! Reads run on their own read transactions against the shared database
//! (redb allows concurrent readers beside the one writer), so they never wait
//! for a commit in progress and always see every commit that returned.

use std::path::Path;

use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};

use crate::protocol::{RunId, Seq};

use super::codec;
use super::{Entry, JournalError, RunMeta};

/// `meta`: key → u64 (only `schema_version` for now).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `runs`: run id → run record.
pub(crate) const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
/// `entries`: (run id, seq) → entry record; one run is one contiguous range.
pub(crate) const ENTRIES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("entries");
/// `blobs`: blake3 hex → bytes.
pub(crate) const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");

pub(crate) const SCHEMA_KEY: &str = "schema_version";
/// Schema version this build writes and understands.
pub const SCHEMA_VERSION: u64 = 1;

/// Turns a redb error into a `JournalError` with context: an I/O failure
/// keeps its cause (the file is filled in by `JournalError::at`), anything
/// else is `JournalError::Storage`.
pub(crate) fn storage<E: Into<redb::Error>>(context: &str) -> impl FnOnce(E) -> JournalError + '_ {
    move |e| super::guard::classify("", context, e)
}

/// Opens or creates the database file, creates the tables and checks the
/// schema version.
pub(crate) fn open_database(path: &Path) -> Result<Database, JournalError> {
    let shown = path.display().to_string();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::paths::private_dir(parent).map_err(|e| JournalError::Open {
            path: shown.clone(),
            message: format!("cannot create directory {}: {e}", parent.display()),
        })?;
    }
    if !path.exists() {
        create_atomically(path)?;
    }
    // A journal made by an older lev (or copied in) may be world-readable.
    crate::paths::private_file(path).map_err(|e| JournalError::Open {
        path: shown.clone(),
        message: format!("cannot make it private (mode 0600): {e}"),
    })?;
    init_database(path)
}

/// A new database is built beside its final name and linked into place
/// whole: a kill during creation must never leave a half-written file
/// where the journal belongs (redb would then refuse it forever).
fn create_atomically(path: &Path) -> Result<(), JournalError> {
    let shown = path.display().to_string();
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".creating-{}", std::process::id()));
    let temp = path.with_file_name(name);
    let _ = std::fs::remove_file(&temp);
    // Created private before redb writes a byte into it: the journal holds
    // prompts, outputs and tool results (redb itself would create it 0644).
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::paths::PRIVATE_FILE_MODE)
            .open(&temp)
            .map_err(|e| JournalError::Open {
                path: shown.clone(),
                message: format!("cannot create {}: {e}", temp.display()),
            })?;
    }
    drop(init_database(&temp)?);
    // `hard_link` never replaces: if another process created the journal
    // meanwhile, theirs stays and ours is discarded.
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(JournalError::Open {
                path: shown,
                message: format!("cannot create the journal: {e}"),
            });
        }
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Memory redb may use to cache pages (reads, and up to half of it for a
/// transaction's dirty pages before they are written). Its default is
/// 1 GiB: a resume that reads a long run then kept every page it touched
/// (≈ 50 MB for a 10,000-step run). Pages lev reads are mostly read once,
/// and its commits are small; 1 MiB instead of 4 took 3–5 MB off the
/// peak of a 10,000-step resume and nothing measurable off its time.
const CACHE_BYTES: usize = 1024 * 1024;

fn init_database(path: &Path) -> Result<Database, JournalError> {
    let shown = path.display().to_string();
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| open_error(&shown, e))?;
    init_schema(db).map_err(|e| e.at(&shown))
}

/// Why a database did not open: held by another process, a disk fault
/// (kept as such: "no space left on device"), a damaged file, or else.
fn open_error(shown: &str, e: DatabaseError) -> JournalError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => JournalError::Locked {
            path: shown.to_owned(),
        },
        // redb says a file that is not (or no longer) one of its
        // databases, e.g. a destroyed header, with InvalidData.
        DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            JournalError::Damaged {
                path: shown.to_owned(),
                message: io.to_string(),
            }
        }
        DatabaseError::Storage(redb::StorageError::Io(io)) => {
            super::guard::io_error(shown, "opening", &io)
        }
        DatabaseError::Storage(redb::StorageError::Corrupted(why)) => JournalError::Damaged {
            path: shown.to_owned(),
            message: why,
        },
        other => JournalError::Open {
            path: shown.to_owned(),
            message: other.to_string(),
        },
    }
}

/// Opens a database on another storage backend (tests inject faults so).
#[cfg(test)]
pub(crate) fn open_backend(backend: impl redb::StorageBackend) -> Result<Database, JournalError> {
    let db = redb::Builder::new()
        .create_with_backend(backend)
        .map_err(|e| open_error("", e))?;
    init_schema(db)
}

/// Creates the tables and checks (or writes) the schema version.
fn init_schema(db: Database) -> Result<Database, JournalError> {
    // Most opens find everything in place: checked in a read transaction,
    // they write nothing, and a journal damaged elsewhere still opens (its
    // intact runs stay readable; `lev doctor` says which).
    if schema_ready(&db)? {
        return Ok(db);
    }
    let txn = db
        .begin_write()
        .map_err(storage("begin schema transaction"))?;
    {
        let mut meta = txn.open_table(META).map_err(storage("open meta table"))?;
        let found = meta
            .get(SCHEMA_KEY)
            .map_err(storage("read schema version"))?
            .map(|v| v.value());
        match found {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(JournalError::Schema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
            None => {
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                    .map_err(storage("write schema version"))?;
            }
        }
        // Creating every table up front lets read transactions open them
        // without a "table does not exist" case.
        txn.open_table(RUNS).map_err(storage("create runs table"))?;
        txn.open_table(ENTRIES)
            .map_err(storage("create entries table"))?;
        txn.open_table(BLOBS)
            .map_err(storage("create blobs table"))?;
        txn.open_table(super::memory::MEMORY)
            .map_err(storage("create memory table"))?;
        txn.open_table(super::memory::MEMORY_TERMS)
            .map_err(storage("create memory terms table"))?;
        txn.open_table(super::memory::MEMORY_STATS)
            .map_err(storage("create memory stats table"))?;
        txn.open_table(super::whispers::WHISPER_SCORES)
            .map_err(storage("create whisper scores table"))?;
    }
    txn.commit().map_err(storage("commit schema"))?;
    Ok(db)
}

/// True when the schema version is known and every table exists.
fn schema_ready(db: &Database) -> Result<bool, JournalError> {
    use redb::TableHandle;
    let txn = begin_read(db)?;
    let found = match txn.open_table(META) {
        Ok(meta) => meta
            .get(SCHEMA_KEY)
            .map_err(storage("read schema version"))?
            .map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(storage("open meta table")(e)),
    };
    match found {
        Some(found) if found > SCHEMA_VERSION => Err(JournalError::Schema {
            found,
            supported: SCHEMA_VERSION,
        }),
        None => Ok(false),
        Some(_) => {
            let names: Vec<String> = txn
                .list_tables()
                .map_err(storage("list tables"))?
                .map(|t| t.name().to_owned())
                .collect();
            Ok([
                RUNS.name(),
                ENTRIES.name(),
                BLOBS.name(),
                super::memory::MEMORY.name(),
                super::memory::MEMORY_TERMS.name(),
                super::memory::MEMORY_STATS.name(),
                super::whispers::WHISPER_SCORES.name(),
            ]
            .iter()
            .all(|t| names.iter().any(|n| n == t)))
        }
    }
}

pub(crate) fn begin_read(db: &Database) -> Result<ReadTransaction, JournalError> {
    db.begin_read().map_err(storage("begin read transaction"))
}

/// Entries of `run` with seq ≥ `from`, blobs resolved.
pub(crate) fn read_entries(
    txn: &ReadTransaction,
    run: &RunId,
    from: Seq,
) -> Result<Vec<(Seq, Entry)>, JournalError> {
    read_entries_as(txn, run, from, |seq, entry| Ok((seq, entry)))
}

/// Entries of `run` with seq ≥ `from`, blobs resolved, each turned into
/// what `each` makes of it as it is read (so a long run's raw entries are
/// never all in memory at once).
pub(crate) fn read_entries_as<T>(
    txn: &ReadTransaction,
    run: &RunId,
    from: Seq,
    mut each: impl FnMut(Seq, Entry) -> Result<T, JournalError>,
) -> Result<Vec<T>, JournalError> {
    // The run's last_seq sizes the result up front: replay of a long run
    // should not pay for repeated reallocation.
    let expected =
        read_run(txn, run)?.map_or(0, |m| m.last_seq.saturating_sub(from.0.saturating_sub(1)));
    // Capped: a damaged run record may claim any last_seq, and a huge
    // up-front allocation would abort the process instead of erroring.
    let mut out = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(1 << 16));
    visit_entries(txn, run, from, |seq, entry| {
        out.push(each(seq, entry)?);
        Ok(())
    })?;
    Ok(out)
}

/// Hands `each` the entries of `run` with seq ≥ `from` one at a time, in
/// seq order, blobs resolved; nothing is kept here.
pub(crate) fn visit_entries(
    txn: &ReadTransaction,
    run: &RunId,
    from: Seq,
    mut each: impl FnMut(Seq, Entry) -> Result<(), JournalError>,
) -> Result<(), JournalError> {
    let entries = txn.open_table(ENTRIES).map_err(storage("open entries"))?;
    let mut blobs = None;
    let id = run.as_str();
    let range = entries
        .range((id, from.0)..=(id, u64::MAX))
        .map_err(storage("range entries"))?;
    for item in range {
        let (key, value) = item.map_err(storage("read entry"))?;
        let seq = key.value().1;
        let (mut entry, blob) = codec::decode_entry(value.value()).map_err(|e| {
            JournalError::Storage(format!("run {run} entry {seq} is corrupt: {}", e.0))
        })?;
        if let Some(hash) = blob {
            let hex = blake3::Hash::from_bytes(hash).to_hex();
            if blobs.is_none() {
                blobs = Some(txn.open_table(BLOBS).map_err(storage("open blobs"))?);
            }
            let Some(table) = &blobs else { continue };
            let bytes = table
                .get(hex.as_str())
                .map_err(storage("read payload blob"))?
                .ok_or_else(|| {
                    JournalError::Storage(format!(
                        "run {run} entry {seq}: payload blob {hex} is missing"
                    ))
                })?;
            entry.payload = verified(bytes.value(), hex.as_str())
                .map_err(|why| {
                    JournalError::Storage(format!("run {run} entry {seq}: payload {why}"))
                })?
                .to_vec();
        }
        each(Seq(seq), entry)?;
    }
    Ok(())
}

pub(crate) fn read_run(
    txn: &ReadTransaction,
    run: &RunId,
) -> Result<Option<RunMeta>, JournalError> {
    let runs = txn.open_table(RUNS).map_err(storage("open runs"))?;
    let Some(value) = runs.get(run.as_str()).map_err(storage("read run"))? else {
        return Ok(None);
    };
    codec::decode_run(value.value())
        .map(Some)
        .map_err(|e| JournalError::Storage(format!("run {run} record is corrupt: {}", e.0)))
}

/// Every run, newest first (ULID keys sort by creation time).
/// Every run whose record decodes, newest first. A damaged record is left
/// out (and logged) rather than hiding every other run;
/// `Journal::damaged_runs` names them.
pub(crate) fn read_runs(txn: &ReadTransaction) -> Result<Vec<RunMeta>, JournalError> {
    let runs = txn.open_table(RUNS).map_err(storage("open runs"))?;
    let mut out = Vec::new();
    for item in runs.iter().map_err(storage("iterate runs"))?.rev() {
        let (key, value) = item.map_err(storage("read run"))?;
        match codec::decode_run(value.value()) {
            Ok(meta) => out.push(meta),
            Err(e) => tracing::warn!(run = key.value(), error = %e.0, "run record is damaged"),
        }
    }
    Ok(out)
}

pub(crate) fn read_blob(
    txn: &ReadTransaction,
    hash: &str,
) -> Result<Option<Vec<u8>>, JournalError> {
    let blobs = txn.open_table(BLOBS).map_err(storage("open blobs"))?;
    let Some(value) = blobs.get(hash).map_err(storage("read blob"))? else {
        return Ok(None);
    };
    verified(value.value(), hash)
        .map(|b| Some(b.to_vec()))
        .map_err(JournalError::Storage)
}

/// `bytes` when they hash to `hash`: a blob is never served altered (a
/// flipped byte in a page that redb does not checksum would otherwise
/// reach a resumed run as if it had been recorded).
pub(crate) fn verified<'a>(bytes: &'a [u8], hash: &str) -> Result<&'a [u8], String> {
    let actual = blake3::hash(bytes).to_hex();
    if actual.as_str() == hash {
        Ok(bytes)
    } else {
        Err(format!(
            "blob {hash} is corrupt: its {} bytes hash to {actual}",
            bytes.len()
        ))
    }
}
