//! The durable outbox: for each listener destination, the indications not yet delivered, in
//! the order they were made, with the sequence numbers the listener sees.
//!
//! Everything lives in one redb database (ACID, crash-safe: a commit that returned survives
//! kill -9 and power loss). One writer thread applies every change; it takes all the
//! changes waiting when it starts a transaction, so a burst costs one commit (group commit)
//! and a lone indication one commit of about a fifth of a millisecond here.
//!
//! A destination's indications are numbered from 0 in its *sequence context*, a name made
//! when the destination first enters the outbox and kept with it: the numbers go on across
//! restarts, so a listener sees a gap or a duplicate for what it is (DSP1054's
//! SequenceContext and SequenceNumber). A destination holds at most `capacity`
//! indications; beyond it the oldest is dropped, counted and logged with its number.
//!
//! Besides the queues, the outbox keeps *marks*: small values written in the same
//! transaction as a batch of indications (a reader's cursor into its event source), so that
//! after a crash the source is read again exactly from where the outbox stopped.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::{oneshot, watch};

/// A destination's queued indications: (destination id, sequence number) -> message bytes.
const QUEUE: TableDefinition<(u64, i64), &[u8]> = TableDefinition::new("queue");
/// Destination key -> its state ([`Meta::encode`]).
const DESTINATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("destinations");
/// Mark name -> value ([`Batch::mark`]).
const MARKS: TableDefinition<&str, &[u8]> = TableDefinition::new("marks");
/// Counters that outlive destinations (`dropped`: indications dropped in all).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// How many indications a destination holds by default before the oldest is dropped.
pub const CAPACITY: u64 = 10_000;

/// How long delivered indications may stay in the outbox when nothing else is committed.
const ACK_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// The most changes one transaction takes: a bound on a commit's time and memory.
const CHANGES_PER_COMMIT: usize = 4096;

/// Builds an indication's message once its place is known: the sequence context and number.
pub type Build = Box<dyn FnOnce(&str, i64) -> Vec<u8> + Send>;

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database could not be opened, read or written.
    #[error("outbox database: {0}")]
    Database(Box<redb::Error>),
    /// A commit failed (the writer thread says why).
    #[error("outbox commit: {0}")]
    Commit(String),
    /// A destination's record is not one this version wrote.
    #[error("outbox database: destination {0:?} has an unreadable record")]
    Corrupt(String),
    /// The writer thread is gone (the outbox was closed), or it dropped the change (a
    /// message builder panicked).
    #[error("the outbox is closed, or dropped the change")]
    Closed,
}

fn database<E: Into<redb::Error>>(error: E) -> OutboxError {
    OutboxError::Database(Box::new(error.into()))
}

/// What the outbox knows of one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationInfo {
    /// The sequence context of its indications.
    pub context: String,
    /// The number the next indication gets.
    pub next: i64,
    /// The number of the oldest indication still queued (`next` when none is).
    pub head: i64,
    /// How many of its indications were dropped, the queue being full.
    pub dropped: u64,
}

impl DestinationInfo {
    /// How many indications wait for delivery.
    pub fn pending(&self) -> u64 {
        u64::try_from(self.next - self.head).unwrap_or(0)
    }
}

/// A destination's record: its id in [`QUEUE`] and its [`DestinationInfo`].
#[derive(Clone, Debug)]
struct Meta {
    id: u64,
    info: DestinationInfo,
}

impl Meta {
    /// id, next, head, dropped (little-endian 8 bytes each), then the context in UTF-8.
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(32 + self.info.context.len());
        bytes.extend_from_slice(&self.id.to_le_bytes());
        bytes.extend_from_slice(&self.info.next.to_le_bytes());
        bytes.extend_from_slice(&self.info.head.to_le_bytes());
        bytes.extend_from_slice(&self.info.dropped.to_le_bytes());
        bytes.extend_from_slice(self.info.context.as_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Meta> {
        let word = |k: usize| -> Option<[u8; 8]> { bytes.get(k * 8..k * 8 + 8)?.try_into().ok() };
        Some(Meta {
            id: u64::from_le_bytes(word(0)?),
            info: DestinationInfo {
                next: i64::from_le_bytes(word(1)?),
                head: i64::from_le_bytes(word(2)?),
                dropped: u64::from_le_bytes(word(3)?),
                context: String::from_utf8(bytes.get(32..)?.to_vec()).ok()?,
            },
        })
    }
}

/// A destination in memory: its record and who waits for its indications.
struct Destination {
    meta: Meta,
    /// The number the next indication gets, once committed: deliverers wait on it.
    committed: watch::Sender<i64>,
}

impl Meta {
    /// The record of a destination new to the outbox: id `id`, a new sequence context,
    /// nothing queued.
    fn new(id: u64) -> Meta {
        Meta {
            id,
            info: DestinationInfo {
                context: new_context(id),
                next: 0,
                head: 0,
                dropped: 0,
            },
        }
    }
}

/// Indications for several destinations, and a mark, committed together.
#[derive(Default)]
pub struct Batch {
    appends: Vec<(String, Build)>,
    mark: Option<(String, Vec<u8>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Queues the indication `build` makes for `destination` (created if new).
    pub fn append(&mut self, destination: &str, build: Build) {
        self.appends.push((destination.to_owned(), build));
    }

    /// Sets the mark `name` to `value` in the same transaction.
    pub fn mark(&mut self, name: &str, value: Vec<u8>) {
        self.mark = Some((name.to_owned(), value));
    }

    /// How many indications the batch holds.
    pub fn len(&self) -> usize {
        self.appends.len()
    }

    /// True when the batch holds no indication.
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty()
    }
}

/// What the writer thread is asked to do.
enum Command {
    Commit(Batch, oneshot::Sender<Result<(), String>>),
    /// Every indication of the destination up to this number was delivered.
    Delivered(String, i64),
    /// The destination is gone: its queue is dropped.
    Remove(String, oneshot::Sender<Result<(), String>>),
}

struct Shared {
    db: Database,
    destinations: Mutex<HashMap<String, Destination>>,
    /// Indications dropped in all (queues full, destinations removed with indications).
    dropped: Mutex<u64>,
    capacity: u64,
    /// The id the next new destination gets.
    next_id: AtomicU64,
}

/// The outbox; clones share it. The last clone dropped waits for the writer thread to
/// finish its commits and closes the database.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    _writer: Arc<Writer>,
}

/// The writer thread, joined when the last [`Outbox`] clone goes.
struct Writer {
    /// A sender kept only to be dropped first, so the thread sees the channel close.
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            // The Outbox clones' senders are gone (this runs when the last clone drops),
            // so the thread's receive ends.
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`; each destination holds at most `capacity`
    /// indications.
    pub fn open(path: &Path, capacity: u64) -> Result<Outbox, OutboxError> {
        // The queued indications are the cluster's state as the listeners see it: the file is
        // its owner's alone, whatever the umask (redb creates it with the default mode, and
        // takes an empty file as a new database).
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let io = |error: std::io::Error| database(redb::DatabaseError::Storage(error.into()));
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        let db = Database::create(path).map_err(database)?;
        // The tables exist from the start, so readers never meet a missing one.
        let txn = db.begin_write().map_err(database)?;
        let mut destinations = HashMap::new();
        let dropped;
        {
            txn.open_table(QUEUE).map_err(database)?;
            txn.open_table(MARKS).map_err(database)?;
            let counters = txn.open_table(COUNTERS).map_err(database)?;
            dropped = counters
                .get("dropped")
                .map_err(database)?
                .map_or(0, |v| v.value());
            let table = txn.open_table(DESTINATIONS).map_err(database)?;
            for entry in table.iter().map_err(database)? {
                let (key, value) = entry.map_err(database)?;
                let key = key.value().to_owned();
                let meta =
                    Meta::decode(value.value()).ok_or_else(|| OutboxError::Corrupt(key.clone()))?;
                let (committed, _) = watch::channel(meta.info.next);
                destinations.insert(key, Destination { meta, committed });
            }
        }
        txn.commit().map_err(database)?;
        let next_id = destinations
            .values()
            .map(|d: &Destination| d.meta.id + 1)
            .max()
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            next_id: AtomicU64::new(next_id),
            db,
            destinations: Mutex::new(destinations),
            dropped: Mutex::new(dropped),
            capacity: capacity.max(1),
        });
        let (commands, receiver) = mpsc::channel();
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("outbox-writer".into())
            .spawn(move || writer.run(&receiver))
            .map_err(|e| OutboxError::Database(Box::new(redb::Error::Io(e))))?;
        Ok(Outbox {
            shared,
            commands: commands.clone(),
            _writer: Arc::new(Writer {
                commands: Mutex::new(Some(commands)),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Commits `batch`: once this returns `Ok`, its indications and its mark survive any
    /// crash. Deliverers are woken when it is committed.
    pub async fn commit(&self, batch: Batch) -> Result<(), OutboxError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Commit(batch, done))
            .map_err(|_| OutboxError::Closed)?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(OutboxError::Commit(message)),
            Err(_) => Err(OutboxError::Closed),
        }
    }

    /// [`commit`](Self::commit) from a thread outside any runtime.
    pub fn commit_blocking(&self, batch: Batch) -> Result<(), OutboxError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Commit(batch, done))
            .map_err(|_| OutboxError::Closed)?;
        match answer.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(OutboxError::Commit(message)),
            Err(_) => Err(OutboxError::Closed),
        }
    }

    /// Records that every indication of `destination` up to `sequence` was delivered; they
    /// leave the outbox with the next commit (a crash before it sends them again, with the
    /// same numbers).
    pub fn delivered(&self, destination: &str, sequence: i64) {
        // A closed outbox has nothing left to forget.
        let _ = self
            .commands
            .send(Command::Delivered(destination.to_owned(), sequence));
    }

    /// Drops `destination` and its queued indications (counted as dropped).
    pub async fn remove(&self, destination: &str) -> Result<(), OutboxError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Remove(destination.to_owned(), done))
            .map_err(|_| OutboxError::Closed)?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(OutboxError::Commit(message)),
            Err(_) => Err(OutboxError::Closed),
        }
    }

    /// Up to `max` queued indications of `destination` numbered `from` or more, in order.
    pub fn read(
        &self,
        destination: &str,
        from: i64,
        max: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, OutboxError> {
        let Some(id) = self.id(destination) else {
            return Ok(Vec::new());
        };
        let txn = self.shared.db.begin_read().map_err(database)?;
        let table = txn.open_table(QUEUE).map_err(database)?;
        let mut found = Vec::new();
        for entry in table.range((id, from)..=(id, i64::MAX)).map_err(database)? {
            let (key, value) = entry.map_err(database)?;
            found.push((key.value().1, value.value().to_vec()));
            if found.len() >= max {
                break;
            }
        }
        Ok(found)
    }

    fn id(&self, destination: &str) -> Option<u64> {
        self.shared
            .destinations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(destination)
            .map(|d| d.meta.id)
    }

    /// What the outbox knows of `destination`, if it ever had an indication.
    pub fn info(&self, destination: &str) -> Option<DestinationInfo> {
        self.shared
            .destinations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(destination)
            .map(|d| d.meta.info.clone())
    }

    /// Every destination the outbox holds, with what it knows of each.
    pub fn destinations(&self) -> Vec<(String, DestinationInfo)> {
        let destinations = self
            .shared
            .destinations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = destinations
            .iter()
            .map(|(key, d)| (key.clone(), d.meta.info.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// A receiver of the number the next indication of `destination` gets, updated at each
    /// commit: a deliverer waits on it for work. The destination enters the outbox (with no
    /// indication and no record) if it is new.
    pub fn watch(&self, destination: &str) -> watch::Receiver<i64> {
        let mut destinations = self
            .shared
            .destinations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match destinations.get(destination) {
            Some(d) => d.committed.subscribe(),
            None => {
                // Not yet recorded: its first commit records it and sends on this channel.
                let (committed, receiver) = watch::channel(0);
                let meta = Meta::new(self.shared.new_id());
                destinations.insert(destination.to_owned(), Destination { meta, committed });
                receiver
            }
        }
    }

    /// Indications dropped in all since the outbox was created.
    pub fn dropped(&self) -> u64 {
        *self
            .shared
            .dropped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The mark `name`, as last committed.
    pub fn mark(&self, name: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        let txn = self.shared.db.begin_read().map_err(database)?;
        let table = txn.open_table(MARKS).map_err(database)?;
        let value = table.get(name).map_err(database)?;
        Ok(value.map(|v| v.value().to_vec()))
    }
}

/// The deliveries gathered, as commands.
fn flush(acks: &mut HashMap<String, i64>) -> Vec<Command> {
    acks.drain()
        .map(|(key, sequence)| Command::Delivered(key, sequence))
        .collect()
}

/// A sequence context no other destination and no earlier outbox has: the time it was made
/// (microseconds) and the destination's id.
fn new_context(id: u64) -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("cimguard:{micros:x}:{id}")
}

impl Shared {
    fn run(&self, commands: &mpsc::Receiver<Command>) {
        // Deliveries are written with the next commit that has to happen anyway, or after
        // ACK_DELAY: forgetting delivered indications need not cost a synced commit each (a
        // crash before it sends them again, with their numbers, so listeners see duplicates
        // for what they are).
        let mut acks: HashMap<String, i64> = HashMap::new();
        let mut acks_due: Option<std::time::Instant> = None;
        loop {
            let first = match acks_due {
                None => match commands.recv() {
                    Ok(command) => Some(command),
                    Err(_) => return,
                },
                Some(due) => match commands
                    .recv_timeout(due.saturating_duration_since(std::time::Instant::now()))
                {
                    Ok(command) => Some(command),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        self.apply_guarded(flush(&mut acks));
                        return;
                    }
                },
            };
            let mut taken = Vec::new();
            let mut pending = first;
            while let Some(command) = pending.take() {
                match command {
                    Command::Delivered(key, sequence) => {
                        let upto = acks.entry(key).or_insert(sequence);
                        *upto = (*upto).max(sequence);
                        acks_due.get_or_insert_with(|| std::time::Instant::now() + ACK_DELAY);
                    }
                    other => taken.push(other),
                }
                if taken.len() < CHANGES_PER_COMMIT {
                    pending = commands.try_recv().ok();
                }
            }
            let ack_time = acks_due.is_some_and(|due| std::time::Instant::now() >= due);
            if taken.is_empty() && !ack_time {
                continue;
            }
            // Deliveries first: a queue's capacity is then checked without the indications
            // already delivered, and a delivery told before a destination was removed and
            // made again applies to the old one only.
            let mut all = flush(&mut acks);
            all.extend(taken);
            acks_due = None;
            self.apply_guarded(all);
        }
    }

    /// [`apply`](Self::apply), surviving a panic (a message builder's): the transaction is
    /// dropped uncommitted, its senders hear that the outbox failed them, and the writer goes
    /// on with the next changes. Nothing in memory changes before a commit, so nothing is
    /// left half done.
    fn apply_guarded(&self, commands: Vec<Command>) {
        let applied =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply(commands)));
        if applied.is_err() {
            tracing::error!("an outbox commit panicked; its indications are not queued");
        }
    }

    /// Applies `commands` in one transaction and tells their senders how it went.
    ///
    /// The records the transaction changes are copied out first and put back once it is
    /// committed: the destinations lock is not held while messages are built and the commit
    /// is synced, so deliverers and readers never wait on the disk. Only this thread changes
    /// records, so nothing is lost between the copy and the put-back.
    fn apply(&self, commands: Vec<Command>) {
        let mut metas: HashMap<String, Meta> = HashMap::new();
        {
            let destinations = self
                .destinations
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut copy = |key: &String| {
                if !metas.contains_key(key) {
                    if let Some(destination) = destinations.get(key) {
                        metas.insert(key.clone(), destination.meta.clone());
                    }
                }
            };
            for command in &commands {
                match command {
                    Command::Commit(batch, _) => batch.appends.iter().for_each(|(k, _)| copy(k)),
                    Command::Delivered(key, _) | Command::Remove(key, _) => copy(key),
                }
            }
        }
        let dropped_before = *self.dropped.lock().unwrap_or_else(PoisonError::into_inner);
        let mut dropped = dropped_before;
        let mut waiting = Vec::new();
        let mut removed = Vec::new();
        let result = (|| -> Result<(), OutboxError> {
            let txn = self.db.begin_write().map_err(database)?;
            {
                let mut queue = txn.open_table(QUEUE).map_err(database)?;
                let mut records = txn.open_table(DESTINATIONS).map_err(database)?;
                let mut marks = txn.open_table(MARKS).map_err(database)?;
                let mut changed: Vec<String> = Vec::new();
                for command in commands {
                    match command {
                        Command::Commit(batch, done) => {
                            for (key, build) in batch.appends {
                                let meta = metas
                                    .entry(key.clone())
                                    .or_insert_with(|| Meta::new(self.new_id()));
                                let sequence = meta.info.next;
                                let bytes = build(&meta.info.context, sequence);
                                queue
                                    .insert((meta.id, sequence), bytes.as_slice())
                                    .map_err(database)?;
                                meta.info.next += 1;
                                while meta.info.pending() > self.capacity {
                                    queue.remove((meta.id, meta.info.head)).map_err(database)?;
                                    tracing::warn!(
                                        destination = %key,
                                        context = %meta.info.context,
                                        sequence = meta.info.head,
                                        "indication dropped: the destination's queue is full"
                                    );
                                    meta.info.head += 1;
                                    meta.info.dropped += 1;
                                    dropped += 1;
                                }
                                changed.push(key);
                            }
                            if let Some((name, value)) = batch.mark {
                                marks
                                    .insert(name.as_str(), value.as_slice())
                                    .map_err(database)?;
                            }
                            waiting.push(done);
                        }
                        Command::Delivered(key, sequence) => {
                            let Some(meta) = metas.get_mut(&key) else {
                                continue;
                            };
                            let upto = sequence.min(meta.info.next - 1);
                            while meta.info.head <= upto {
                                queue.remove((meta.id, meta.info.head)).map_err(database)?;
                                meta.info.head += 1;
                            }
                            changed.push(key);
                        }
                        Command::Remove(key, done) => {
                            if let Some(meta) = metas.remove(&key) {
                                for sequence in meta.info.head..meta.info.next {
                                    queue.remove((meta.id, sequence)).map_err(database)?;
                                }
                                if meta.info.pending() > 0 {
                                    tracing::warn!(
                                        destination = %key,
                                        context = %meta.info.context,
                                        first = meta.info.head,
                                        last = meta.info.next - 1,
                                        "indications dropped: their destination was removed"
                                    );
                                }
                                dropped += meta.info.pending();
                                records.remove(key.as_str()).map_err(database)?;
                                removed.push(key);
                            }
                            waiting.push(done);
                        }
                    }
                }
                changed.sort();
                changed.dedup();
                for key in &changed {
                    if let Some(meta) = metas.get(key) {
                        records
                            .insert(key.as_str(), meta.encode().as_slice())
                            .map_err(database)?;
                    }
                }
                if dropped != dropped_before {
                    let mut counters = txn.open_table(COUNTERS).map_err(database)?;
                    counters.insert("dropped", dropped).map_err(database)?;
                }
            }
            txn.commit().map_err(database)?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                let mut destinations = self
                    .destinations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                *self.dropped.lock().unwrap_or_else(PoisonError::into_inner) = dropped;
                // A removed destination's watchers see their channel close.
                for key in removed {
                    destinations.remove(&key);
                }
                for (key, meta) in metas {
                    let next = meta.info.next;
                    match destinations.get_mut(&key) {
                        Some(destination) => {
                            destination.meta = meta;
                            destination.committed.send_if_modified(|value| {
                                let changed = *value != next;
                                *value = next;
                                changed
                            });
                        }
                        None => {
                            let (committed, _) = watch::channel(next);
                            destinations.insert(key, Destination { meta, committed });
                        }
                    }
                }
                drop(destinations);
                for done in waiting {
                    let _ = done.send(Ok(()));
                }
            }
            Err(error) => {
                // Nothing in memory changed: the records are as the last commit left them.
                tracing::error!(%error, "outbox commit failed; its indications are not queued");
                for done in waiting {
                    let _ = done.send(Err(error.to_string()));
                }
            }
        }
    }

    /// An id no destination has had in this outbox's life.
    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> Build {
        let body = body.to_owned();
        Box::new(move |context, sequence| format!("{context}/{sequence}/{body}").into_bytes())
    }

    fn open(dir: &tempfile::TempDir, capacity: u64) -> Outbox {
        Outbox::open(&dir.path().join("outbox.redb"), capacity).expect("open")
    }

    #[test]
    fn the_file_is_its_owners_alone_even_when_it_was_made_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("outbox.redb");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        drop(open(&dir, 10));
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open(&dir, 10));
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn indications_are_numbered_per_destination_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let context;
        {
            let outbox = open(&dir, CAPACITY);
            let mut batch = Batch::new();
            batch.append("a", text("one"));
            batch.append("b", text("two"));
            batch.append("a", text("three"));
            batch.mark("cursor", b"7".to_vec());
            outbox.commit_blocking(batch).expect("commit");
            let read = outbox.read("a", 0, 10).expect("read");
            context = outbox.info("a").expect("a").context;
            assert_eq!(
                read,
                vec![
                    (0, format!("{context}/0/one").into_bytes()),
                    (1, format!("{context}/1/three").into_bytes()),
                ]
            );
            assert_eq!(outbox.read("b", 0, 10).expect("read").len(), 1);
            assert_ne!(outbox.info("b").expect("b").context, context);
            outbox.delivered("a", 0);
            // The delivery is forgotten with the next commit.
            outbox.commit_blocking(Batch::new()).expect("commit");
        }
        let outbox = open(&dir, CAPACITY);
        let info = outbox.info("a").expect("a after reopening");
        assert_eq!(info.context, context);
        assert_eq!((info.head, info.next, info.pending()), (1, 2, 1));
        assert_eq!(
            outbox.read("a", 0, 10).expect("read"),
            vec![(1, format!("{context}/1/three").into_bytes())]
        );
        assert_eq!(outbox.mark("cursor").expect("mark"), Some(b"7".to_vec()));
        let mut batch = Batch::new();
        batch.append("a", text("four"));
        outbox.commit_blocking(batch).expect("commit");
        assert_eq!(outbox.read("a", 2, 10).expect("read")[0].0, 2);
    }

    #[test]
    fn a_full_queue_drops_its_oldest_and_counts_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = open(&dir, 3);
        let mut batch = Batch::new();
        for k in 0..5 {
            batch.append("a", text(&k.to_string()));
        }
        outbox.commit_blocking(batch).expect("commit");
        let numbers: Vec<i64> = outbox
            .read("a", 0, 10)
            .expect("read")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(numbers, vec![2, 3, 4]);
        assert_eq!(outbox.info("a").expect("a").dropped, 2);
        assert_eq!(outbox.dropped(), 2);
        drop(outbox);
        let outbox = open(&dir, 3);
        assert_eq!(outbox.dropped(), 2);
    }

    #[test]
    fn removing_a_destination_drops_its_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = open(&dir, CAPACITY);
        let mut batch = Batch::new();
        batch.append("a", text("x"));
        batch.append("a", text("y"));
        outbox.commit_blocking(batch).expect("commit");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(outbox.remove("a")).expect("remove");
        assert_eq!(outbox.info("a"), None);
        assert_eq!(outbox.dropped(), 2);
        assert!(outbox.read("a", 0, 10).expect("read").is_empty());
    }

    #[test]
    fn a_panicking_builder_fails_its_commit_and_the_outbox_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = open(&dir, CAPACITY);
        let mut batch = Batch::new();
        batch.append("a", text("kept"));
        outbox.commit_blocking(batch).expect("commit");
        let mut batch = Batch::new();
        batch.append("a", text("lost"));
        batch.append("a", Box::new(|_, _| panic!("a builder's bug")));
        assert!(matches!(
            outbox.commit_blocking(batch),
            Err(OutboxError::Closed)
        ));
        // Nothing of the failed commit is queued; the next one is numbered on.
        let mut batch = Batch::new();
        batch.append("a", text("next"));
        outbox
            .commit_blocking(batch)
            .expect("commit after the panic");
        let read: Vec<(i64, String)> = outbox
            .read("a", 0, 10)
            .expect("read")
            .into_iter()
            .map(|(n, bytes)| (n, String::from_utf8(bytes).unwrap()))
            .collect();
        let context = outbox.info("a").expect("a").context;
        assert_eq!(
            read,
            vec![
                (0, format!("{context}/0/kept")),
                (1, format!("{context}/1/next")),
            ]
        );
    }

    #[test]
    fn deliveries_are_forgotten_before_a_full_queue_drops_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = open(&dir, 3);
        let mut batch = Batch::new();
        for k in 0..3 {
            batch.append("a", text(&k.to_string()));
        }
        outbox.commit_blocking(batch).expect("commit");
        // All three delivered; three more come before any commit forgot them.
        outbox.delivered("a", 2);
        let mut batch = Batch::new();
        for k in 3..6 {
            batch.append("a", text(&k.to_string()));
        }
        outbox.commit_blocking(batch).expect("commit");
        let numbers: Vec<i64> = outbox
            .read("a", 0, 10)
            .expect("read")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(numbers, vec![3, 4, 5]);
        assert_eq!(outbox.info("a").expect("a").dropped, 0);
        assert_eq!(outbox.dropped(), 0);
    }

    #[test]
    fn a_watcher_hears_of_each_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = open(&dir, CAPACITY);
        let mut watcher = outbox.watch("a");
        assert_eq!(*watcher.borrow_and_update(), 0);
        let mut batch = Batch::new();
        batch.append("a", text("x"));
        outbox.commit_blocking(batch).expect("commit");
        assert!(watcher.has_changed().expect("open"));
        assert_eq!(*watcher.borrow_and_update(), 1);
    }
}
