//! The storage boundary: every call into redb goes through here, so that a
//! damaged file or a failing disk becomes a `JournalError` naming the
//! journal file, never a panic of the command and never a bare "writer
//! stopped".
//!
//! redb may panic on pages it cannot make sense of (a zeroed or flipped
//! page that passes its header checks). `shielded` catches that panic and
//! keeps the default hook from printing a backtrace for it; the panic text
//! goes to the log instead.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use super::JournalError;

thread_local! {
    /// Depth of `shielded` calls on this thread: a panic while it is
    /// non-zero is caught and reported as a damaged journal.
    static SHIELDED: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Installs (once) a panic hook that keeps panics caught at the storage
/// boundary off the terminal; every other panic goes to the previous hook.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if SHIELDED.with(Cell::get) > 0 {
                // The backtrace is captured only when RUST_BACKTRACE asks.
                let trace = std::backtrace::Backtrace::capture();
                tracing::error!(panic = %info, backtrace = %trace, "the journal's storage layer panicked");
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic inside it into `JournalError::Damaged` for the
/// journal at `path`.
pub(crate) fn shielded<T>(
    path: &str,
    f: impl FnOnce() -> Result<T, JournalError>,
) -> Result<T, JournalError> {
    install_hook();
    SHIELDED.with(|s| s.set(s.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    SHIELDED.with(|s| s.set(s.get().saturating_sub(1)));
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the storage layer panicked".to_owned());
        Err(JournalError::Damaged {
            path: path.to_owned(),
            message,
        })
    })
}

/// Drops `value` (a database, a transaction) at the boundary: closing a
/// damaged database may panic too.
pub(crate) fn drop_shielded<T>(path: &str, value: T) {
    if let Err(e) = shielded(path, move || {
        drop(value);
        Ok(())
    }) {
        tracing::error!(error = %e, "closing the journal failed");
    }
}

/// How a redb failure is reported: an I/O failure keeps its cause (ENOSPC,
/// EIO) and the file; anything else is a storage error with context.
pub(crate) fn classify<E: Into<redb::Error>>(path: &str, during: &str, e: E) -> JournalError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Io(io) => io_error(path, during, &io),
        redb::Error::PreviousIo => JournalError::Io {
            path: path.to_owned(),
            cause: "an earlier write to the file failed".to_owned(),
            during: during.to_owned(),
            disk_full: false,
        },
        redb::Error::Corrupted(why) => JournalError::Damaged {
            path: path.to_owned(),
            message: format!("{during}: {why}"),
        },
        other if path.is_empty() => JournalError::Storage(format!("{during}: {other}")),
        other => JournalError::Storage(format!("{path}: {during}: {other}")),
    }
}

/// `JournalError::Io` from an `std::io::Error`, with its OS text in lower
/// case as the rest of lev's messages ("no space left on device (os error 28)").
pub(crate) fn io_error(path: &str, during: &str, io: &std::io::Error) -> JournalError {
    let text = io.to_string();
    let mut chars = text.chars();
    let cause = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    };
    JournalError::Io {
        path: path.to_owned(),
        cause,
        during: during.to_owned(),
        disk_full: is_disk_full(io),
    }
}

/// ENOSPC (or a quota that is exhausted): the disk has no room for the write.
pub(crate) fn is_disk_full(io: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT))
        || io.kind() == std::io::ErrorKind::StorageFull
        || io.kind() == std::io::ErrorKind::QuotaExceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_file() {
        let r: Result<(), _> = shielded("/x/lev.redb", || panic!("index out of bounds"));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("/x/lev.redb"), "{e}");
        assert!(e.contains("index out of bounds"), "{e}");
        // The boundary is left: the counter is back to zero.
        assert_eq!(SHIELDED.with(Cell::get), 0);
    }

    #[test]
    fn enospc_reads_like_the_os_says_it() {
        let io = std::io::Error::from_raw_os_error(28);
        let e = io_error("/x/lev.redb", "commit", &io);
        assert!(matches!(
            e,
            JournalError::Io {
                disk_full: true,
                ..
            }
        ));
        assert!(
            e.to_string()
                .starts_with("journal /x/lev.redb: no space left on device (os error 28)"),
            "{e}"
        );
        let eio = io_error(
            "/x/lev.redb",
            "commit",
            &std::io::Error::from_raw_os_error(5),
        );
        assert!(matches!(
            eio,
            JournalError::Io {
                disk_full: false,
                ..
            }
        ));
    }
}
