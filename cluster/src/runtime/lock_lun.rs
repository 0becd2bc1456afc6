//! The lock LUN on a block device or a regular file: the disk behind the core's
//! [`DiskRequest`]s (Disk Paxos blocks, and the periodic health check that reads this node's
//! own block).
//!
//! # Layout
//!
//! Node `i`'s block starts at `i x 4096` bytes: the 512-byte Disk Paxos block (see
//! [`crate::disk_paxos`]) followed by zeros up to the next 4 KiB. The stride and the alignment
//! of every transfer are 4 KiB so that direct I/O works the same on 512-byte and 4 KiB sector
//! devices, and the nodes of a cluster agree on the layout whatever their devices report.
//! A lock LUN holds at least `nodes x 4096` bytes.
//!
//! # I/O
//!
//! The device is opened with `O_DIRECT | O_DSYNC`: reads come from the disk, not a cache that
//! another node's write would not reach, and a write is durable when it returns. Where the
//! file system refuses `O_DIRECT` (tmpfs, some overlay mounts) the device is opened with
//! `O_DSYNC` only and [`LockLun::direct`] says so: good enough for a file shared by nodes on
//! one machine (the demo), never for a LUN shared between machines.
//!
//! Requests run on a thread of their own, one at a time, in order: the core's timing path
//! never waits on the disk. A request that hangs (a dead path) hangs only that thread; the
//! core gives up on it after its own timeout, and later requests queue behind it, as they
//! would behind the device. Errors come back as [`DiskFailure`] with the operation, block and
//! OS error.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use crate::disk_paxos::{DiskFailure, DiskReply, DiskRequest, IoId, BLOCK_BYTES};

/// The distance between two nodes' blocks, and the size and alignment of every transfer.
pub const STRIDE: usize = 4096;

/// One transfer, aligned for direct I/O.
#[repr(C, align(4096))]
struct Sector([u8; STRIDE]);

/// An open lock LUN.
#[derive(Debug)]
pub struct LockLun {
    file: File,
    path: PathBuf,
    direct: bool,
    blocks: usize,
}

/// Why a lock LUN cannot be used.
#[derive(Debug)]
pub enum OpenError {
    /// It cannot be opened for reading and writing.
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// It is smaller than one 4 KiB block per node.
    TooSmall {
        /// The path.
        path: PathBuf,
        /// Its size in bytes.
        bytes: u64,
        /// The size needed.
        needed: u64,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Open { path, error } => {
                write!(f, "cannot open the lock LUN {}: {error}", path.display())
            }
            OpenError::TooSmall {
                path,
                bytes,
                needed,
            } => write!(
                f,
                "the lock LUN {} holds {bytes} bytes; {needed} are needed (4096 per node)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for OpenError {}

impl LockLun {
    /// Opens the lock LUN at `path` for a cluster of `nodes` nodes.
    pub fn open(path: &Path, nodes: usize) -> Result<LockLun, OpenError> {
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
        };
        let dsync = nix::fcntl::OFlag::O_DSYNC.bits();
        let direct = nix::fcntl::OFlag::O_DIRECT.bits();
        let (file, is_direct) = match open(dsync | direct) {
            Ok(file) => (file, true),
            // The file system does not do direct I/O.
            Err(error) if error.raw_os_error() == Some(nix::libc::EINVAL) => {
                let file = open(dsync).map_err(|error| OpenError::Open {
                    path: path.to_path_buf(),
                    error,
                })?;
                (file, false)
            }
            Err(error) => {
                return Err(OpenError::Open {
                    path: path.to_path_buf(),
                    error,
                })
            }
        };
        let bytes = size(&file).map_err(|error| OpenError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        let needed = (nodes * STRIDE) as u64;
        if bytes < needed {
            return Err(OpenError::TooSmall {
                path: path.to_path_buf(),
                bytes,
                needed,
            });
        }
        Ok(LockLun {
            file,
            path: path.to_path_buf(),
            direct: is_direct,
            blocks: nodes,
        })
    }

    /// Whether transfers bypass the page cache (`O_DIRECT`). False on file systems that
    /// refuse it: then the file must not be shared between machines.
    pub fn direct(&self) -> bool {
        self.direct
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Carries out one request, blocking.
    pub fn perform(&self, request: &DiskRequest) -> Result<DiskReply, DiskFailure> {
        let block = usize::from(request.block());
        if block >= self.blocks {
            return Err(DiskFailure(format!(
                "block {block} is beyond the {} blocks of the lock LUN",
                self.blocks
            )));
        }
        let offset = (block * STRIDE) as u64;
        let mut sector = Box::new(Sector([0; STRIDE]));
        match request {
            DiskRequest::Read { .. } => {
                self.file
                    .read_exact_at(&mut sector.0, offset)
                    .map_err(|e| self.failure("read", block, &e))?;
                let mut data = Box::new([0u8; BLOCK_BYTES]);
                data.copy_from_slice(&sector.0[..BLOCK_BYTES]);
                Ok(DiskReply::Read(data))
            }
            DiskRequest::Write { data, .. } => {
                sector.0[..BLOCK_BYTES].copy_from_slice(&data[..]);
                self.file
                    .write_all_at(&sector.0, offset)
                    .map_err(|e| self.failure("write", block, &e))?;
                if !self.direct {
                    // O_DSYNC covers the data; without O_DIRECT a flush makes sure nothing
                    // waits in a cache.
                    self.file
                        .sync_data()
                        .map_err(|e| self.failure("flush", block, &e))?;
                }
                Ok(DiskReply::Written)
            }
        }
    }

    fn failure(&self, operation: &str, block: usize, error: &io::Error) -> DiskFailure {
        DiskFailure(format!(
            "{operation} of block {block} of the lock LUN {} failed: {error}",
            self.path.display()
        ))
    }

    /// Runs the requests sent to the returned sender on a thread of its own, in order, and
    /// hands each result to `answer` (on that thread). The thread ends when the sender is
    /// dropped.
    pub fn spawn(
        self,
        mut answer: impl FnMut(IoId, Result<DiskReply, DiskFailure>) + Send + 'static,
    ) -> io::Result<mpsc::Sender<DiskRequest>> {
        let (sender, requests) = mpsc::channel::<DiskRequest>();
        thread::Builder::new()
            .name("cimguard-lock-lun".into())
            .spawn(move || {
                for request in requests {
                    let result = self.perform(&request);
                    answer(request.id(), result);
                }
            })?;
        Ok(sender)
    }
}

/// The size of a regular file or a block device.
fn size(file: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    // A block device reports 0 as its length in its metadata; seeking to its end gives its
    // size, for files and devices alike.
    let mut handle = file;
    let end = handle.seek(SeekFrom::End(0))?;
    handle.seek(SeekFrom::Start(0))?;
    Ok(end)
}
