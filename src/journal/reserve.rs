//! The space reserve: a file of zeros beside the journal
//! (`lev.redb.reserve`), made when the journal opens and the disk has room.
//!
//! When a commit fails because the disk is full, the writer deletes the
//! reserve and commits the same batch again into the space it freed. So
//! the outcome of the step that was running when the disk filled is still
//! recorded, and the run can pause with a reason instead of leaving a step
//! in flight that `lev resume` would have to ask about.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Size of the reserve: room for a step outcome (up to an LLM reply at
/// its default 4 MiB cap), the pause and a few commits of redb's
/// bookkeeping (it copies pages on write).
pub(crate) const RESERVE_BYTES: usize = 8 * 1024 * 1024;

/// `lev.redb` → `lev.redb.reserve`.
pub(crate) fn reserve_path(journal: &Path) -> PathBuf {
    let mut name = journal
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".reserve");
    journal.with_file_name(name)
}

/// Makes sure the reserve exists and is whole. A disk with no room for it
/// is full for lev's purposes (the caller pauses runs); another failure
/// (a read-only directory) leaves lev without the reserve.
pub(crate) fn ensure(reserve: &Path) -> std::io::Result<()> {
    if std::fs::metadata(reserve).is_ok_and(|m| m.len() == RESERVE_BYTES as u64) {
        let _ = crate::paths::private_file(reserve);
        return Ok(());
    }
    write(reserve).inspect_err(|e| {
        // A partial reserve would hold space without being one.
        let _ = std::fs::remove_file(reserve);
        tracing::warn!(reserve = %reserve.display(), error = %e, "no space reserve for the journal");
    })
}

fn write(reserve: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::paths::PRIVATE_FILE_MODE)
        .open(reserve)?;
    // Real zeros, not `set_len`: a sparse file would hold no space at all.
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..RESERVE_BYTES / chunk.len() {
        file.write_all(&chunk)?;
    }
    file.sync_all()
}

/// Deletes the reserve to free its space; true when there was one.
pub(crate) fn release(reserve: &Path) -> bool {
    match std::fs::remove_file(reserve) {
        Ok(()) => {
            tracing::warn!(reserve = %reserve.display(), "disk full: released the journal's space reserve");
            true
        }
        Err(_) => false,
    }
}
