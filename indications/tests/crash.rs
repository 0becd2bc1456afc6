//! Crash safety of the outbox: a writer process is killed with SIGKILL at a different moment
//! again and again while it commits batches of indications with their mark, and after each
//! kill the outbox must open and hold exactly the batches whose commits began, whole or not
//! at all: every commit the writer saw return is there, no batch is there in part, the
//! sequence numbers have no gap, and the mark names the last batch present.
//!
//! The writer is this test binary run again (`WRITER_VARIABLE` names its outbox), so the kill
//! hits real commits of the real code; it prints each batch number once its commit returned.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cimguard_indications::{Batch, Outbox};

const WRITER_VARIABLE: &str = "CIMGUARD_OUTBOX_CRASH_WRITER";
const DESTINATIONS: [&str; 2] = ["listener-a", "listener-b"];
const MARK: &str = "cursor";
const CAPACITY: u64 = 10_000_000;

/// How many indications batch `batch` gives each destination.
fn indications_in(batch: u64) -> u64 {
    1 + batch % 4
}

/// The writer: from the batch after the mark on, commits batches until it is killed.
#[test]
fn writer() {
    let Ok(path) = std::env::var(WRITER_VARIABLE) else {
        return;
    };
    let outbox = Outbox::open(path.as_ref(), CAPACITY).expect("the outbox opens");
    let mut batch = match outbox.mark(MARK).expect("the mark reads") {
        Some(bytes) => u64::from_le_bytes(bytes.try_into().expect("an 8-byte mark")) + 1,
        None => 0,
    };
    loop {
        let mut commit = Batch::new();
        for destination in DESTINATIONS {
            for index in 0..indications_in(batch) {
                commit.append(
                    destination,
                    Box::new(move |context, sequence| {
                        format!("{batch} {index} {context} {sequence} {}", "x".repeat(200))
                            .into_bytes()
                    }),
                );
            }
        }
        commit.mark(MARK, batch.to_le_bytes().to_vec());
        outbox.commit_blocking(commit).expect("the commit");
        println!("committed {batch}");
        batch += 1;
    }
}

/// Kills the writer after `delay`; the last batch it said was committed, if any.
fn run_writer_for(path: &std::path::Path, delay: Duration) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().expect("this test's binary"))
        .args(["--exact", "writer", "--nocapture", "--test-threads", "1"])
        .env(WRITER_VARIABLE, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the writer starts");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("committed ")?.trim().parse::<u64>().ok())
            .last()
    });
    std::thread::sleep(delay);
    // SIGKILL: no destructor, no flush, mid-commit as likely as not.
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    reader.join().expect("the reader")
}

#[test]
fn a_writer_killed_at_any_moment_leaves_whole_batches_and_every_returned_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outbox.redb");
    let mut last_seen: Option<u64> = None;
    let mut kills = 0;
    let started = Instant::now();
    // Delays from 5 ms (while it opens) to 400 ms (hundreds of commits in).
    for round in 0..24u64 {
        let delay = Duration::from_millis(5 + (round * 37) % 400);
        let said = run_writer_for(&path, delay);
        kills += 1;
        if said.is_some() {
            last_seen = said;
        }
        let outbox = Outbox::open(&path, CAPACITY)
            .unwrap_or_else(|e| panic!("round {round}: the outbox does not open: {e}"));
        let mark = outbox
            .mark(MARK)
            .expect("the mark reads")
            .map(|bytes| u64::from_le_bytes(bytes.try_into().expect("an 8-byte mark")));
        // Every commit that returned is there.
        assert!(
            mark >= last_seen,
            "round {round}: the mark is {mark:?} but batch {last_seen:?} was committed"
        );
        let Some(mark) = mark else {
            continue;
        };
        for destination in DESTINATIONS {
            let info = outbox.info(destination).expect("the destination");
            let queued = outbox
                .read(destination, info.head, usize::MAX)
                .expect("the queue reads");
            // Numbered without a gap from 0 (nothing was delivered or dropped).
            assert_eq!(info.head, 0, "round {round}");
            assert_eq!(
                queued.len() as i64,
                info.next,
                "round {round}: {destination}"
            );
            let mut expected = (0..=mark)
                .flat_map(|batch| (0..indications_in(batch)).map(move |index| (batch, index)));
            for (position, (sequence, body)) in queued.iter().enumerate() {
                assert_eq!(*sequence, position as i64, "round {round}: {destination}");
                let text = String::from_utf8_lossy(body);
                let mut words = text.split(' ');
                let batch: u64 = words.next().and_then(|w| w.parse().ok()).expect("a batch");
                let index: u64 = words.next().and_then(|w| w.parse().ok()).expect("an index");
                let _context = words.next();
                let numbered: i64 = words
                    .next()
                    .and_then(|w| w.parse().ok())
                    .expect("a sequence");
                assert_eq!(
                    numbered, *sequence,
                    "round {round}: built with its own number"
                );
                assert_eq!(
                    Some((batch, index)),
                    expected.next(),
                    "round {round}: {destination} at {sequence}"
                );
            }
            // Nothing of a batch after the mark, nothing of the mark's batch missing.
            assert_eq!(
                expected.next(),
                None,
                "round {round}: {destination} ends early"
            );
        }
        drop(outbox);
    }
    assert_eq!(kills, 24);
    assert!(
        last_seen.is_some_and(|batch| batch > 24),
        "the writer committed too little to test anything: {last_seen:?} in {:?}",
        started.elapsed()
    );
}
