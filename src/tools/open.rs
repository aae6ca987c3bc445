//! Opening workspace files for the file tools without ever blocking.
//!
//! A FIFO, a device or a socket in the workspace would stall a plain
//! `open`/`read` forever (a FIFO's `open` waits for a writer), and a thread
//! stuck in a syscall cannot be cancelled. So tools read only regular
//! files: the path's type is checked first, the open itself never waits
//! (`O_NONBLOCK`, no controlling terminal, no final symlink), and the
//! opened file's type is checked again, which closes the race with a file
//! swapped between the two.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::libc;

/// What a non-regular file is, for the error the model reads.
fn kind(t: &FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

fn refuse(shown: &str, t: &FileType) -> String {
    format!(
        "`{shown}` is {}; file tools read only regular files",
        kind(t)
    )
}

/// Opens `path` for reading if, and only if, it is a regular file.
pub(crate) fn open_regular(path: &Path, shown: &str) -> Result<(File, Metadata), String> {
    let before =
        std::fs::symlink_metadata(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if !before.file_type().is_file() {
        return Err(refuse(shown, &before.file_type()));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(refuse(shown, &meta.file_type()));
    }
    Ok((file, meta))
}

/// The whole of a regular file, refused when it is larger than `cap` bytes
/// (checked on the bytes read, not only the size the file claims).
pub(crate) fn read_regular_capped(path: &Path, shown: &str, cap: u64) -> Result<Vec<u8>, String> {
    let (file, meta) = open_regular(path, shown)?;
    let too_big =
        || format!("`{shown}` is larger than {cap} bytes; this tool handles files up to that size");
    if meta.len() > cap {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(too_big());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn only_regular_files_open_and_nothing_waits() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let sock = dir.path().join("sock");
        let _listener = UnixListener::bind(&sock).unwrap();
        let file = dir.path().join("f.txt");
        std::fs::write(&file, "hello").unwrap();

        let e = open_regular(&fifo, "pipe").unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
        let e = open_regular(&sock, "sock").unwrap_err();
        assert!(e.contains("socket"), "{e}");
        let e = open_regular(Path::new("/dev/zero"), "zero").unwrap_err();
        assert!(e.contains("character device"), "{e}");
        let e = open_regular(dir.path(), "dir").unwrap_err();
        assert!(e.contains("directory"), "{e}");
        assert_eq!(read_regular_capped(&file, "f.txt", 5).unwrap(), b"hello");
        let e = read_regular_capped(&file, "f.txt", 4).unwrap_err();
        assert!(e.contains("larger than 4 bytes"), "{e}");
    }
}
