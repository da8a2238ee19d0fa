//! Bounded file reading: the one way the CLI reads a file it was given
//! (policies, shard and `--expect` JSON, corpus entries). A path that is not
//! a regular file (a FIFO, a device such as /dev/zero, a directory) is
//! refused before it is opened for reading, and at most `limit + 1` bytes are
//! read, so a file that grows while it is read cannot exhaust memory either.

use std::io::{self, Read as _};
use std::path::Path;

/// Policy and scenario files (the language's own `FILE_BYTES_MAX`).
pub(super) const POLICY_BYTES_MAX: usize = freezefuzz::ir::limits::FILE_BYTES_MAX;
/// A matrix JSON (`merge`, `--expect`): generous for the largest matrix the
/// limits allow (64 policies × 64 scenarios of witnesses).
pub(super) const REPORT_BYTES_MAX: usize = 64 << 20;
/// One corpus entry.
pub(super) const CORPUS_ENTRY_BYTES_MAX: usize = 1 << 20;

/// Reads `path` whole if it is a regular file of at most `limit` bytes.
/// The error says which of those it is not.
pub(super) fn read_bounded(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    let bytes = read_prefix(path, limit)?;
    if bytes.len() > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// The first `limit + 1` bytes of `path` (all of it when it is no longer
/// than `limit`), if it is a regular file: for a caller that reports a too
/// long file itself, as the policy loader does.
pub(super) fn read_prefix(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    // `metadata` follows symlinks: a `*.toml` link to /dev/zero is a device.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, kind));
    }
    // Opening without blocking: a regular file never blocks, and if the path
    // was swapped for a FIFO since `metadata`, O_NONBLOCK keeps the open from
    // waiting for a writer; the check below then refuses it.
    let file = open_nonblocking(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device)",
        ));
    }
    let mut bytes = Vec::with_capacity((meta.len() as usize).min(limit) + 1);
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub(super) fn read_text(path: &Path, limit: usize) -> io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({})", e.utf8_error()),
        )
    })
}

fn too_large(len: u64, limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("too large: more than {limit} bytes (read {len})"),
    )
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_file_and_refuses_a_large_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap(), b"12345");
        let error = read_bounded(&path, 4).unwrap_err();
        assert!(error.to_string().contains("more than 4 bytes"), "{error}");
        assert_eq!(read_prefix(&path, 2).unwrap(), b"123");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_devices_fifos_directories_and_links_to_them() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_bounded(Path::new("/dev/zero"), 100).is_err());
        assert!(read_bounded(dir.path(), 100).is_err());
        let link = dir.path().join("zero.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_bounded(&link, 100).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever if it were opened for reading.
        assert!(read_bounded(&fifo, 100).is_err());
    }
}
