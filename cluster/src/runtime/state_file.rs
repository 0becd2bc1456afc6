//! A node's state on disk, replaced whole or not at all: what the core persists
//! ([`crate::core::Action::Persist`]) must survive kill -9 and power loss at any point.
//!
//! [`write`] writes a temporary file beside the target, flushes it to the disk, renames it
//! over the target and flushes the directory, so that after a crash the target holds either
//! the old content or the new one. The content is framed with a magic number, its length and
//! a CRC-32, so that a damaged file (a disk or file system that broke that promise) reads as
//! an error, never as other state. Files are created 0600: state may hold keys.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CGSTATE1";
const HEADER: usize = 8 + 8 + 4;

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces the content of `path` with `bytes`, atomically and durably.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let staged = temporary(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staged)?;
    let mut framed = Vec::with_capacity(HEADER + bytes.len());
    framed.extend_from_slice(MAGIC);
    framed.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    framed.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    framed.extend_from_slice(bytes);
    file.write_all(&framed)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&staged, path)?;
    // The rename itself is durable once the directory is.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

/// The content of `path` as [`write`] left it: None if it was never written. A temporary file
/// left by a crash is removed; a damaged file is an `InvalidData` error naming it.
pub fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::remove_file(temporary(path)) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let framed = match fs::read(path) {
        Ok(framed) => framed,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let damaged = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the state file {} is damaged: {what}", path.display()),
        )
    };
    if framed.len() < HEADER || &framed[..8] != MAGIC {
        return Err(damaged("it does not start with a cimguard state header"));
    }
    let mut length = [0u8; 8];
    length.copy_from_slice(&framed[8..16]);
    let mut checksum = [0u8; 4];
    checksum.copy_from_slice(&framed[16..20]);
    let content = &framed[HEADER..];
    if u64::try_from(content.len()).ok() != Some(u64::from_le_bytes(length)) {
        return Err(damaged("its length does not match its header"));
    }
    if crc32fast::hash(content) != u32::from_le_bytes(checksum) {
        return Err(damaged("its checksum does not match"));
    }
    Ok(Some(content.to_vec()))
}
