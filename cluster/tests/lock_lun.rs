//! The lock LUN device: blocks at 4 KiB strides with direct, synchronous I/O on regular files
//! and loop devices (and tmpfs, with or without direct I/O), clear errors, and a Disk Paxos
//! race between two nodes through two handles on one file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cimguard_cluster::disk_paxos::{
    DiskFailure, DiskReply, DiskRequest, IoId, Outcome, Proposer, BLOCK_BYTES,
};
use cimguard_cluster::runtime::lock_lun::{LockLun, OpenError, STRIDE};

/// A file of `bytes` zero bytes in `dir`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(dir: &Path, name: &str, bytes: usize) -> Scratch {
        let path = dir.join(format!("cimguard-lock-lun-{}-{name}", std::process::id()));
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn pattern(seed: u8) -> Box<[u8; BLOCK_BYTES]> {
    let mut data = Box::new([0u8; BLOCK_BYTES]);
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = seed.wrapping_add(i as u8) | 1;
    }
    data
}

fn write(lun: &LockLun, block: u8, data: Box<[u8; BLOCK_BYTES]>) -> Result<DiskReply, DiskFailure> {
    lun.perform(&DiskRequest::Write {
        id: IoId(1),
        block,
        data,
    })
}

fn read(lun: &LockLun, block: u8) -> Box<[u8; BLOCK_BYTES]> {
    match lun.perform(&DiskRequest::Read { id: IoId(2), block }) {
        Ok(DiskReply::Read(data)) => data,
        other => panic!("read of block {block}: {other:?}"),
    }
}

/// Writes block 2 and checks it reads back, its neighbours stay zero, and it sits at
/// 2 x 4096 in the file or device.
fn round_trip(lun: &LockLun, backing: &Path) {
    assert_eq!(write(lun, 2, pattern(7)), Ok(DiskReply::Written));
    assert_eq!(read(lun, 2), pattern(7));
    assert!(read(lun, 1).iter().all(|b| *b == 0));
    assert!(read(lun, 3).iter().all(|b| *b == 0));
    let raw = std::fs::read(backing).unwrap();
    assert_eq!(&raw[2 * STRIDE..2 * STRIDE + BLOCK_BYTES], &pattern(7)[..]);
    assert!(raw[2 * STRIDE + BLOCK_BYTES..3 * STRIDE]
        .iter()
        .all(|b| *b == 0));
}

#[test]
fn a_regular_file_takes_direct_synchronous_io_at_4k_strides() {
    // The build directory's file system (ext4 here) does direct I/O.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = Scratch::new(dir, "file", 4 * STRIDE);
    let lun = LockLun::open(&file.0, 4).unwrap();
    assert!(lun.direct(), "{} refused O_DIRECT", dir.display());
    round_trip(&lun, &file.0);
    // Another handle (another node) sees the write at once.
    let other = LockLun::open(&file.0, 4).unwrap();
    assert_eq!(read(&other, 2), pattern(7));
}

#[test]
fn a_file_on_tmpfs_works_with_or_without_direct_io() {
    // Kernels before 6.6 refuse O_DIRECT on tmpfs: the device then opens with O_DSYNC only
    // and says so; newer ones take it.
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm here: nothing to check");
        return;
    }
    let file = Scratch::new(shm, "tmpfs", 4 * STRIDE);
    let lun = LockLun::open(&file.0, 4).unwrap();
    eprintln!("direct I/O on tmpfs: {}", lun.direct());
    round_trip(&lun, &file.0);
}

#[test]
fn a_device_too_small_or_missing_and_a_block_out_of_range_are_clear_errors() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let small = Scratch::new(dir, "small", 3 * STRIDE);
    let error = LockLun::open(&small.0, 4).unwrap_err();
    assert!(matches!(
        error,
        OpenError::TooSmall {
            bytes: 12288,
            needed: 16384,
            ..
        }
    ));
    assert!(error.to_string().contains("4096 per node"), "{error}");
    let missing = dir.join("cimguard-no-such-lock-lun");
    let error = LockLun::open(&missing, 2).unwrap_err();
    assert!(matches!(error, OpenError::Open { .. }));
    assert!(
        error.to_string().contains("cimguard-no-such-lock-lun"),
        "{error}"
    );
    let lun = LockLun::open(&small.0, 3).unwrap();
    let failure = write(&lun, 3, pattern(1)).unwrap_err();
    assert!(failure.0.contains("block 3"), "{failure}");
}

/// A loop device over a file, detached on drop.
struct Loop {
    device: PathBuf,
    _file: Scratch,
}

impl Loop {
    fn new(dir: &Path) -> Option<Loop> {
        let file = Scratch::new(dir, "loop", 1 << 20);
        let output = Command::new("losetup")
            .args(["--find", "--show", "--direct-io=on"])
            .arg(&file.0)
            .output()
            .ok()?;
        if !output.status.success() {
            eprintln!(
                "losetup failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        let device = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        Some(Loop {
            device,
            _file: file,
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

#[test]
fn a_loop_device_takes_direct_io() {
    // Loop devices need root (CI runs as root).
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&uid).trim() != "0" {
        eprintln!("not root: no loop device to check");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let device = Loop::new(dir).expect("a loop device (losetup)");
    let lun = LockLun::open(&device.device, 4).unwrap();
    assert!(lun.direct());
    round_trip(&lun, &device.device);
}

/// Drives a proposer through a device thread until it has an outcome (retrying after a
/// conflict with a short back-off).
fn race(mut proposer: Proposer, lun: LockLun, me: u64) -> Outcome {
    let (answers, results) = mpsc::channel::<(IoId, Result<DiskReply, DiskFailure>)>();
    let device = lun
        .spawn(move |id, result| {
            let _ = answers.send((id, result));
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while let Some(request) = proposer.poll_request() {
            device.send(request).unwrap();
        }
        match proposer.outcome() {
            Some(Outcome::Conflict { .. }) => {
                std::thread::sleep(Duration::from_millis(1 + me * 3));
                proposer.retry();
                continue;
            }
            Some(outcome) => return outcome.clone(),
            None => {}
        }
        assert!(Instant::now() < deadline, "no outcome in 30 s");
        let (id, result) = results.recv_timeout(Duration::from_secs(30)).unwrap();
        proposer.handle_reply(id, result);
    }
}

#[test]
fn two_nodes_racing_through_one_file_decide_one_value() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for round in 0..20u64 {
        let file = Scratch::new(dir, &format!("race{round}"), 2 * STRIDE);
        let racers: Vec<_> = (0..2u8)
            .map(|me| {
                let lun = LockLun::open(&file.0, 2).unwrap();
                let proposer = Proposer::new(42, me, 2, 7, 100 + u64::from(me)).unwrap();
                std::thread::spawn(move || race(proposer, lun, u64::from(me)))
            })
            .collect();
        let outcomes: Vec<Outcome> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let decided: Vec<u64> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Decided(value) => *value,
                other => panic!("round {round}: {other:?}"),
            })
            .collect();
        assert_eq!(decided[0], decided[1], "round {round}: {outcomes:?}");
        assert!(decided[0] == 100 || decided[0] == 101);
    }
}
