//! The cluster lock on a lock LUN: Disk Paxos (Gafni and Lamport, 2000) on one shared disk, as a
//! sans-IO proposer. When a running cluster splits into two equal halves, the coordinator of each
//! half runs a [`Proposer`] for the membership epoch being left; the value decided is the digest
//! of the group that may form the next epoch. A proposer whose [`Outcome::Decided`] value is its
//! own digest has won the lock; any other outcome means it has lost (or must stop trying).
//!
//! # Why Disk Paxos
//!
//! The obvious lock-disk race (read, write your claim, wait Δ, read again, win if your claim
//! survived) is safe only if every I/O completes and every node runs within Δ. A node paused by
//! the hypervisor or a write stuck in a multipath queue for longer than Δ lets both halves win,
//! and both start the same packages. Disk Paxos needs no such bound: whatever the delays, pauses
//! and crashes, two proposers of one instance never decide different values (safety). Time only
//! matters for progress, and the caller owns it: it drops a proposer that takes too long and
//! treats the lock as lost, which is always safe.
//!
//! # Algorithm (single disk)
//!
//! Each of the `participants` nodes owns one block (block index = node index), writes only that
//! block and reads the others. With one disk, "a majority of disks" is that disk, so every read
//! and write must succeed; any I/O error or undecodable block fails the attempt
//! ([`Outcome::Failed`]). An unreadable block is never taken for an empty one: it might hold a
//! higher ballot.
//!
//! 1. Recovery: read our own block, and the others with it. A restarted node remembers nothing,
//!    so its next ballot must exceed the `mbal` it wrote before, and it must keep the
//!    `bal`/`value` it accepted before. The others' blocks only serve to start above every ballot
//!    already on the disk, so that a proposer arriving after the race was decided learns the
//!    result in one attempt instead of a conflict, a back-off and a retry.
//! 2. Phase 1: write `{mbal = b, bal, value}` (what we accepted before, else none), then read every
//!    other block. A block of this instance with `mbal >= b` means someone else is ahead:
//!    [`Outcome::Conflict`]. Otherwise choose the value of the block (ours included) with the
//!    highest `bal`, or our own input if no block has accepted anything.
//! 3. Phase 2: write `{mbal = b, bal = b, value = v}`, read every other block again; if none has
//!    `mbal > b`, `v` is decided.
//!
//! Ballots are unique per node: `round * PARTICIPANTS_MAX + node + 1`, so `0` means "none". One
//! consensus instance per lock race; the instance number is the membership epoch being left. A
//! block of a lower instance counts as empty; a block of a higher instance anywhere means our
//! membership view is stale ([`Outcome::Superseded`]).
//!
//! # Block layout
//!
//! One 512-byte sector per node, integers little-endian:
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CGLOCK01"
//!      8     4  format version (1)
//!     12     8  cluster id
//!     20     8  instance (membership epoch being left)
//!     28     8  mbal: the highest ballot this node has started
//!     36     8  bal: the ballot in which this node last accepted a value (0 = none)
//!     44     8  value: the value accepted in `bal` (0 = none)
//!     52   456  zero
//!    508     4  crc32 of bytes 0..508
//! ```
//!
//! An all-zero block has never been written.
//!
//! # Assumptions
//!
//! - A 512-byte sector write is atomic: a reader sees the old block or the new one. A torn write
//!   that breaks this is caught by the checksum and fails the attempt (it is never read as empty).
//! - A node that was reset has no I/O still in flight: its own block on disk is the last write it
//!   issued, or the one before. The driver must not start a new proposer for the same node while
//!   a write of an abandoned one may still land.
//! - Node indices are configured identically on every node. Two nodes sharing an index would
//!   write the same block, which no algorithm on this layout can detect.
//!
//! # Driving a proposer
//!
//! ```text
//! let mut proposer = Proposer::new(cluster_id, me, participants, epoch, group_digest)?;
//! loop {
//!     while let Some(request) = proposer.poll_request() { start the I/O, O_DIRECT|O_DSYNC }
//!     match proposer.outcome() {
//!         Some(Outcome::Conflict { .. }) => { back off (random delay), proposer.retry() }
//!         Some(outcome) => return outcome,   // Decided(our digest) = we hold the lock
//!         None => { wait for an I/O (or the deadline: drop the proposer, lock lost);
//!                   proposer.handle_reply(id, result) }
//!     }
//! }
//! ```

use std::collections::VecDeque;
use std::fmt;

/// Bytes in one lock block: one disk sector.
pub const BLOCK_BYTES: usize = 512;

/// The most nodes a proposer accepts. A lock LUN itself serves at most 4 nodes; the algorithm
/// and the ballot numbering allow more.
pub const PARTICIPANTS_MAX: usize = 16;

/// The first eight bytes of every written lock block.
pub const BLOCK_MAGIC: [u8; 8] = *b"CGLOCK01";

/// The block format version this module writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = 8;
const CLUSTER_ID_OFFSET: usize = 12;
const INSTANCE_OFFSET: usize = 20;
const MBAL_OFFSET: usize = 28;
const BAL_OFFSET: usize = 36;
const VALUE_OFFSET: usize = 44;
const FIELDS_END: usize = 52;
const CHECKSUM_OFFSET: usize = BLOCK_BYTES - 4;

/// Ballots of consecutive rounds of one node are this far apart.
const BALLOT_STRIDE: u64 = PARTICIPANTS_MAX as u64;

const _: () = assert!(FIELDS_END <= CHECKSUM_OFFSET);
const _: () = assert!(PARTICIPANTS_MAX <= u8::MAX as usize);

/// Names one disk request so that its reply can be matched to it; unique within a [`Proposer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoId(pub u64);

/// A Disk Paxos ballot number: `round * PARTICIPANTS_MAX + node + 1`, unique per node.
/// [`Ballot::NONE`] (zero) means no ballot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot(pub u64);

impl Ballot {
    /// No ballot: a node that has not started one, or has not accepted a value.
    pub const NONE: Ballot = Ballot(0);

    /// The ballot of `node` in `round`; `None` if `node` is not below [`PARTICIPANTS_MAX`] or
    /// the number does not fit in 64 bits.
    #[must_use]
    pub fn for_round(round: u64, node: u8) -> Option<Ballot> {
        if usize::from(node) >= PARTICIPANTS_MAX {
            return None;
        }
        let number = round
            .checked_mul(BALLOT_STRIDE)?
            .checked_add(u64::from(node) + 1)?;
        Some(Ballot(number))
    }

    /// The smallest ballot of `node` above `floor`; `None` if there is none in 64 bits.
    #[must_use]
    pub fn above(floor: Ballot, node: u8) -> Option<Ballot> {
        let round = floor.0 / BALLOT_STRIDE;
        let candidate = Ballot::for_round(round, node)?;
        if candidate > floor {
            Some(candidate)
        } else {
            Ballot::for_round(round.checked_add(1)?, node)
        }
    }

    /// The node this ballot belongs to; `None` for [`Ballot::NONE`].
    #[must_use]
    pub fn owner(self) -> Option<u8> {
        let offset = self.0.checked_sub(1)? % BALLOT_STRIDE;
        u8::try_from(offset).ok()
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The content of one node's lock block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockBlock {
    /// The consensus instance: the membership epoch being left.
    pub instance: u64,
    /// The highest ballot this node has started in `instance`.
    pub mbal: Ballot,
    /// The ballot in which this node last accepted `value`; [`Ballot::NONE`] if none.
    pub bal: Ballot,
    /// The value accepted in `bal` (a group digest); 0 if none.
    pub value: u64,
}

impl LockBlock {
    /// The 512-byte sector for this block, checksum included.
    #[must_use]
    pub fn encode(&self, cluster_id: u64) -> Box<[u8; BLOCK_BYTES]> {
        let mut bytes = Box::new([0u8; BLOCK_BYTES]);
        bytes[MAGIC_OFFSET..MAGIC_OFFSET + BLOCK_MAGIC.len()].copy_from_slice(&BLOCK_MAGIC);
        bytes[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        write_u64(&mut bytes, CLUSTER_ID_OFFSET, cluster_id);
        write_u64(&mut bytes, INSTANCE_OFFSET, self.instance);
        write_u64(&mut bytes, MBAL_OFFSET, self.mbal.0);
        write_u64(&mut bytes, BAL_OFFSET, self.bal.0);
        write_u64(&mut bytes, VALUE_OFFSET, self.value);
        let checksum = crc32fast::hash(&bytes[..CHECKSUM_OFFSET]);
        bytes[CHECKSUM_OFFSET..].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Reads a sector: `Ok(None)` if it is all zero (never written), the block if it is a valid
    /// block of `cluster_id`, an error otherwise.
    pub fn decode(
        bytes: &[u8; BLOCK_BYTES],
        cluster_id: u64,
    ) -> Result<Option<LockBlock>, BlockError> {
        if bytes.iter().all(|&byte| byte == 0) {
            return Ok(None);
        }
        if bytes[MAGIC_OFFSET..MAGIC_OFFSET + BLOCK_MAGIC.len()] != BLOCK_MAGIC {
            return Err(BlockError::BadMagic);
        }
        let stored = read_u32(bytes, CHECKSUM_OFFSET);
        let computed = crc32fast::hash(&bytes[..CHECKSUM_OFFSET]);
        if stored != computed {
            return Err(BlockError::ChecksumMismatch { stored, computed });
        }
        let version = read_u32(bytes, VERSION_OFFSET);
        if version != FORMAT_VERSION {
            return Err(BlockError::UnknownFormatVersion { found: version });
        }
        let found_cluster_id = read_u64(bytes, CLUSTER_ID_OFFSET);
        if found_cluster_id != cluster_id {
            return Err(BlockError::OtherCluster {
                found: found_cluster_id,
            });
        }
        Ok(Some(LockBlock {
            instance: read_u64(bytes, INSTANCE_OFFSET),
            mbal: Ballot(read_u64(bytes, MBAL_OFFSET)),
            bal: Ballot(read_u64(bytes, BAL_OFFSET)),
            value: read_u64(bytes, VALUE_OFFSET),
        }))
    }

    /// Whether this block, found in block `index`, is one its owner can have written: both
    /// ballots belong to `index`, `bal <= mbal`, and a value is present exactly when `bal` is.
    /// A block that fails this was written by a misconfigured or broken node.
    fn check_consistent(&self, index: u8) -> Result<(), String> {
        if self.mbal.owner() != Some(index) {
            return Err(format!(
                "block {index} holds mbal {} that is not a ballot of node {index} \
                 (node indices configured differently?)",
                self.mbal
            ));
        }
        if self.bal != Ballot::NONE && self.bal.owner() != Some(index) {
            return Err(format!(
                "block {index} holds bal {} that is not a ballot of node {index}",
                self.bal
            ));
        }
        if self.bal > self.mbal {
            return Err(format!(
                "block {index} holds bal {} above its mbal {}",
                self.bal, self.mbal
            ));
        }
        if (self.bal == Ballot::NONE) != (self.value == 0) {
            return Err(format!(
                "block {index} holds value {:#x} with bal {}",
                self.value, self.bal
            ));
        }
        Ok(())
    }
}

/// Why a non-zero sector is not a lock block this node can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The sector does not start with `CGLOCK01`: it holds something other than a lock block.
    BadMagic,
    /// The stored checksum does not match the content: a torn or corrupted write.
    ChecksumMismatch {
        /// The checksum in the last four bytes.
        stored: u32,
        /// The checksum of the content.
        computed: u32,
    },
    /// A format version this build does not know.
    UnknownFormatVersion {
        /// The version in the block.
        found: u32,
    },
    /// A lock block of another cluster: the LUN is shared between clusters by mistake.
    OtherCluster {
        /// The cluster id in the block.
        found: u64,
    },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::BadMagic => f.write_str("not a lock block (bad magic)"),
            BlockError::ChecksumMismatch { stored, computed } => write!(
                f,
                "lock block checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            BlockError::UnknownFormatVersion { found } => {
                write!(f, "unknown lock block format version {found}")
            }
            BlockError::OtherCluster { found } => {
                write!(f, "lock block of another cluster (cluster id {found:#x})")
            }
        }
    }
}

impl std::error::Error for BlockError {}

/// A disk operation the driver must perform for a [`Proposer`], then answer with
/// [`Proposer::handle_reply`] under the same id. Requests may complete in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskRequest {
    /// Read block `block` of the lock LUN.
    Read {
        /// Answer with this id.
        id: IoId,
        /// The block index (= node index).
        block: u8,
    },
    /// Write `data` to block `block` (always the proposer's own), durably (O_DSYNC or a flush)
    /// before answering.
    Write {
        /// Answer with this id.
        id: IoId,
        /// The block index (= node index).
        block: u8,
        /// The whole sector.
        data: Box<[u8; BLOCK_BYTES]>,
    },
}

impl DiskRequest {
    /// The id to answer with.
    #[must_use]
    pub fn id(&self) -> IoId {
        match self {
            DiskRequest::Read { id, .. } | DiskRequest::Write { id, .. } => *id,
        }
    }

    /// The block index the request is about.
    #[must_use]
    pub fn block(&self) -> u8 {
        match self {
            DiskRequest::Read { block, .. } | DiskRequest::Write { block, .. } => *block,
        }
    }
}

/// The successful result of a [`DiskRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskReply {
    /// The sector read.
    Read(Box<[u8; BLOCK_BYTES]>),
    /// The write is durable.
    Written,
}

/// A failed disk operation (EIO, a short read, a path down...), described for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFailure(pub String);

impl fmt::Display for DiskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DiskFailure {}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This value is decided for the instance; every proposer that decides decides it. The
    /// caller holds the lock if it is its own value.
    Decided(u64),
    /// A proposer with a higher ballot is active: back off, then [`Proposer::retry`] (or give
    /// up, which is safe).
    Conflict {
        /// The highest ballot seen in the attempt.
        seen: Ballot,
    },
    /// A block belongs to a later instance: our membership view is stale, we lose.
    Superseded {
        /// The later instance seen.
        instance: u64,
    },
    /// A disk error or an unusable block: this attempt cannot tell what the disk holds, so the
    /// lock is lost.
    Failed(String),
}

/// Why [`Proposer::new`] refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposerError {
    /// More participants than [`PARTICIPANTS_MAX`].
    TooManyParticipants {
        /// The number asked for.
        participants: u8,
    },
    /// The node index is not below the number of participants.
    NodeOutOfRange {
        /// The node index.
        me: u8,
        /// The number of participants.
        participants: u8,
    },
    /// The value to propose is 0, which means "no value" on disk.
    ZeroValue,
}

impl fmt::Display for ProposerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposerError::TooManyParticipants { participants } => write!(
                f,
                "{participants} lock participants, at most {PARTICIPANTS_MAX} allowed"
            ),
            ProposerError::NodeOutOfRange { me, participants } => write!(
                f,
                "node index {me} is not below the {participants} lock participants"
            ),
            ProposerError::ZeroValue => f.write_str("the proposed lock value must not be zero"),
        }
    }
}

impl std::error::Error for ProposerError {}

/// One node's Disk Paxos proposer for one instance (one lock race). Sans-IO: it issues
/// [`DiskRequest`]s through [`Proposer::poll_request`] and takes their results through
/// [`Proposer::handle_reply`], in any order; it reads no clock.
#[derive(Debug)]
pub struct Proposer {
    cluster_id: u64,
    me: u8,
    participants: u8,
    instance: u64,
    /// The value we propose if nobody has accepted one.
    input: u64,
    /// Our own block for this instance as we last wrote or recovered it.
    own: LockBlock,
    /// The ballot of the current attempt; [`Ballot::NONE`] while recovering.
    ballot: Ballot,
    /// The highest `mbal` seen in any block of this instance, ours included.
    ballot_seen_max: Ballot,
    phase: Phase,
    /// What the current reads have found.
    reads: ReadRound,
    /// Requests issued and not yet answered (at most one per participant).
    in_flight: Vec<InFlight>,
    /// Requests not yet polled by the driver.
    requests: VecDeque<DiskRequest>,
    io_next: u64,
    outcome: Option<Outcome>,
    /// Makes phase 2 decide without reading the other blocks: a broken protocol, for checking
    /// that the randomized tests can catch an agreement violation.
    #[cfg(test)]
    skip_phase2_check: bool,
}

/// Where a proposer is in its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading our own block and the others.
    Recovery,
    /// Phase 1: claiming ballot `b`, then reading the others.
    Prepare,
    /// Phase 2: accepting the chosen value in ballot `b`, then reading the others.
    Accept,
}

/// A request awaiting its reply.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: IoId,
    expected: Expected,
}

/// What a request was, hence which reply it expects.
#[derive(Debug, Clone, Copy)]
enum Expected {
    /// A read of this block.
    Read { block: u8 },
    /// A write of this content to our own block.
    Write { content: LockBlock },
}

/// The blocks of this instance found by one round of reads (of the others' blocks).
#[derive(Debug, Clone, Copy, Default)]
struct ReadRound {
    mbal_max: Ballot,
    bal_max: Ballot,
    /// The value accepted in `bal_max`.
    value: u64,
}

impl Proposer {
    /// A proposer of `value` for node `me` (of `participants`) in `instance`, for the lock LUN of
    /// cluster `cluster_id`. It starts by reading its own block, then the others.
    pub fn new(
        cluster_id: u64,
        me: u8,
        participants: u8,
        instance: u64,
        value: u64,
    ) -> Result<Proposer, ProposerError> {
        if usize::from(participants) > PARTICIPANTS_MAX {
            return Err(ProposerError::TooManyParticipants { participants });
        }
        if me >= participants {
            return Err(ProposerError::NodeOutOfRange { me, participants });
        }
        if value == 0 {
            return Err(ProposerError::ZeroValue);
        }
        let mut proposer = Proposer {
            cluster_id,
            me,
            participants,
            instance,
            input: value,
            own: LockBlock {
                instance,
                mbal: Ballot::NONE,
                bal: Ballot::NONE,
                value: 0,
            },
            ballot: Ballot::NONE,
            ballot_seen_max: Ballot::NONE,
            phase: Phase::Recovery,
            reads: ReadRound::default(),
            in_flight: Vec::with_capacity(PARTICIPANTS_MAX),
            requests: VecDeque::new(),
            io_next: 0,
            outcome: None,
            #[cfg(test)]
            skip_phase2_check: false,
        };
        proposer.issue_read(me);
        for block in (0..participants).filter(|&block| block != me) {
            proposer.issue_read(block);
        }
        Ok(proposer)
    }

    /// The next disk request to perform, if any. None once there is an outcome.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<DiskRequest> {
        self.requests.pop_front()
    }

    /// The result of the request `id`. Replies to unknown or stale ids, and every reply once
    /// there is an outcome, are ignored. An error, or a reply of the wrong kind, fails the attempt.
    pub fn handle_reply(&mut self, id: IoId, result: Result<DiskReply, DiskFailure>) {
        if self.outcome.is_some() {
            return;
        }
        let Some(position) = self.in_flight.iter().position(|entry| entry.id == id) else {
            return;
        };
        let expected = self.in_flight.swap_remove(position).expected;
        match (expected, result) {
            (Expected::Read { block }, Err(failure)) => {
                self.fail(format!("read of lock block {block}: {failure}"));
            }
            (Expected::Write { .. }, Err(failure)) => {
                self.fail(format!("write of lock block {}: {failure}", self.me));
            }
            (Expected::Read { block }, Ok(DiskReply::Read(bytes))) => self.on_read(block, &bytes),
            (Expected::Write { content }, Ok(DiskReply::Written)) => self.on_written(content),
            (Expected::Read { block }, Ok(DiskReply::Written)) => {
                self.fail(format!("read of lock block {block} answered as a write"));
            }
            (Expected::Write { .. }, Ok(DiskReply::Read(_))) => {
                self.fail(format!(
                    "write of lock block {} answered as a read",
                    self.me
                ));
            }
        }
    }

    /// How the attempt ended; `None` while it runs.
    #[must_use]
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// After [`Outcome::Conflict`], starts a new attempt with a ballot above every ballot seen.
    /// The caller backs off first. Does nothing in any other state.
    pub fn retry(&mut self) {
        if matches!(self.outcome, Some(Outcome::Conflict { .. })) {
            self.start_attempt();
        }
    }

    /// The ballot of the current (or last) attempt; [`Ballot::NONE`] while recovering.
    #[must_use]
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// The consensus instance (membership epoch being left) this proposer runs.
    #[must_use]
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// A block read at start. From our own, take over what a previous incarnation of this node
    /// wrote in this instance; from every block, the ballots to start above. Once all are read,
    /// start phase 1.
    fn on_recovery_read(&mut self, block: u8, decoded: Option<LockBlock>) {
        match self.this_instance(block, decoded) {
            Err(outcome) => self.finish(outcome),
            Ok(found) => {
                if let Some(found) = found {
                    self.ballot_seen_max = self.ballot_seen_max.max(found.mbal);
                    if block == self.me {
                        self.own = found;
                    }
                }
                if self.in_flight.is_empty() {
                    self.start_attempt();
                }
            }
        }
    }

    /// Phase 1 of a new attempt: claim the smallest of our ballots above everything seen.
    fn start_attempt(&mut self) {
        self.outcome = None;
        let floor = self.ballot_seen_max.max(self.ballot);
        let Some(ballot) = Ballot::above(floor, self.me) else {
            self.fail(format!("no ballot left above {floor}"));
            return;
        };
        assert!(ballot > floor, "ballots of one node only increase");
        self.ballot = ballot;
        self.phase = Phase::Prepare;
        self.issue_write(LockBlock {
            instance: self.instance,
            mbal: ballot,
            bal: self.own.bal,
            value: self.own.value,
        });
    }

    fn on_written(&mut self, content: LockBlock) {
        self.own = content;
        if self.phase == Phase::Accept && self.skips_phase2_check() {
            self.finish(Outcome::Decided(content.value));
            return;
        }
        self.reads = ReadRound::default();
        for block in 0..self.participants {
            if block != self.me {
                self.issue_read(block);
            }
        }
        self.conclude_reads();
    }

    fn on_read(&mut self, block: u8, bytes: &[u8; BLOCK_BYTES]) {
        let decoded = match LockBlock::decode(bytes, self.cluster_id) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.fail(format!("lock block {block}: {error}"));
                return;
            }
        };
        if self.phase == Phase::Recovery {
            self.on_recovery_read(block, decoded);
            return;
        }
        match self.this_instance(block, decoded) {
            Err(outcome) => self.finish(outcome),
            Ok(None) => self.conclude_reads(),
            Ok(Some(found)) => {
                self.ballot_seen_max = self.ballot_seen_max.max(found.mbal);
                self.reads.mbal_max = self.reads.mbal_max.max(found.mbal);
                if found.bal > self.reads.bal_max {
                    self.reads.bal_max = found.bal;
                    self.reads.value = found.value;
                }
                self.conclude_reads();
            }
        }
    }

    /// Once every block of the round is read: conflict, or on to the next phase.
    fn conclude_reads(&mut self) {
        if self.outcome.is_some() || !self.in_flight.is_empty() {
            return;
        }
        if self.reads.mbal_max >= self.ballot {
            self.finish(Outcome::Conflict {
                seen: self.reads.mbal_max,
            });
            return;
        }
        match self.phase {
            Phase::Prepare => {
                // The value of the highest ballot any node (us included) accepted, if any.
                let chosen = if self.reads.bal_max > self.own.bal {
                    self.reads.value
                } else if self.own.bal != Ballot::NONE {
                    self.own.value
                } else {
                    self.input
                };
                self.phase = Phase::Accept;
                self.issue_write(LockBlock {
                    instance: self.instance,
                    mbal: self.ballot,
                    bal: self.ballot,
                    value: chosen,
                });
            }
            Phase::Accept => {
                assert!(
                    self.own.bal == self.ballot && self.own.value != 0,
                    "a value is decided only after our block accepted it in this ballot"
                );
                self.finish(Outcome::Decided(self.own.value));
            }
            // Recovery reads concluded in on_recovery_read.
            Phase::Recovery => {}
        }
    }

    /// What a block means for this instance: `Ok(None)` if empty or of an older instance, the
    /// block if it is of this instance and consistent, the outcome it forces otherwise.
    fn this_instance(
        &self,
        index: u8,
        decoded: Option<LockBlock>,
    ) -> Result<Option<LockBlock>, Outcome> {
        let Some(block) = decoded else {
            return Ok(None);
        };
        if block.instance > self.instance {
            return Err(Outcome::Superseded {
                instance: block.instance,
            });
        }
        if block.instance < self.instance {
            return Ok(None);
        }
        block.check_consistent(index).map_err(Outcome::Failed)?;
        Ok(Some(block))
    }

    fn issue_read(&mut self, block: u8) {
        let id = self.next_id();
        self.in_flight.push(InFlight {
            id,
            expected: Expected::Read { block },
        });
        self.requests.push_back(DiskRequest::Read { id, block });
    }

    fn issue_write(&mut self, content: LockBlock) {
        let id = self.next_id();
        self.in_flight.push(InFlight {
            id,
            expected: Expected::Write { content },
        });
        self.requests.push_back(DiskRequest::Write {
            id,
            block: self.me,
            data: content.encode(self.cluster_id),
        });
    }

    fn next_id(&mut self) -> IoId {
        let id = IoId(self.io_next);
        // 2^64 requests cannot be issued by one proposer; wrapping keeps this panic-free.
        self.io_next = self.io_next.wrapping_add(1);
        id
    }

    fn fail(&mut self, reason: String) {
        self.finish(Outcome::Failed(reason));
    }

    /// Ends the attempt: no more requests, and replies still due are ignored.
    fn finish(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.requests.clear();
        self.in_flight.clear();
    }

    #[cfg(test)]
    fn skips_phase2_check(&self) -> bool {
        self.skip_phase2_check
    }

    #[cfg(not(test))]
    fn skips_phase2_check(&self) -> bool {
        false
    }
}

fn write_u64(bytes: &mut [u8; BLOCK_BYTES], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

fn read_u64(bytes: &[u8; BLOCK_BYTES], offset: usize) -> u64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(field)
}

fn read_u32(bytes: &[u8; BLOCK_BYTES], offset: usize) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(field)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    use super::*;

    const CLUSTER_ID: u64 = 0xC1u64 << 56 | 0x5eed;
    const INSTANCE: u64 = 41;
    /// Seeds run by the randomized tests.
    const SEEDS: u64 = 2_000;
    /// Steps after which a randomized run stops even if some proposer is still retrying.
    const STEPS_MAX: usize = 3_000;

    type Disk = Vec<[u8; BLOCK_BYTES]>;

    fn empty_disk(participants: u8) -> Disk {
        vec![[0; BLOCK_BYTES]; usize::from(participants)]
    }

    fn value_of(node: u8) -> u64 {
        0xD16E_0000 + u64::from(node)
    }

    fn proposer(me: u8, participants: u8, instance: u64) -> Proposer {
        Proposer::new(CLUSTER_ID, me, participants, instance, value_of(me)).expect("valid")
    }

    /// Performs one request on the disk, without errors.
    fn execute(disk: &mut Disk, request: DiskRequest) -> (IoId, Result<DiskReply, DiskFailure>) {
        match request {
            DiskRequest::Read { id, block } => {
                (id, Ok(DiskReply::Read(Box::new(disk[usize::from(block)]))))
            }
            DiskRequest::Write { id, block, data } => {
                disk[usize::from(block)] = *data;
                (id, Ok(DiskReply::Written))
            }
        }
    }

    /// Runs a proposer alone, requests in order, until it has an outcome.
    fn run_alone(proposer: &mut Proposer, disk: &mut Disk) -> Outcome {
        while let Some(request) = proposer.poll_request() {
            let (id, result) = execute(disk, request);
            proposer.handle_reply(id, result);
        }
        proposer
            .outcome()
            .cloned()
            .expect("a lone proposer reaches an outcome")
    }

    /// Performs the recovery reads (all queued at start), leaving the phase 1 write queued.
    fn recover(proposer: &mut Proposer, disk: &mut Disk) {
        let reads: Vec<DiskRequest> = std::iter::from_fn(|| proposer.poll_request()).collect();
        assert!(reads
            .iter()
            .all(|request| matches!(request, DiskRequest::Read { .. })));
        for request in reads {
            let (id, result) = execute(disk, request);
            proposer.handle_reply(id, result);
        }
    }

    /// Recomputes the checksum after a test edited a block.
    fn reseal(bytes: &mut [u8; BLOCK_BYTES]) {
        let checksum = crc32fast::hash(&bytes[..CHECKSUM_OFFSET]);
        bytes[CHECKSUM_OFFSET..].copy_from_slice(&checksum.to_le_bytes());
    }

    fn sample_block() -> LockBlock {
        LockBlock {
            instance: INSTANCE,
            mbal: Ballot(18),
            bal: Ballot(2),
            value: 0xABCD,
        }
    }

    // ---- codec ----

    proptest! {
        #[test]
        fn block_round_trips(
            cluster_id: u64, instance: u64, mbal: u64, bal: u64, value: u64,
        ) {
            let block = LockBlock { instance, mbal: Ballot(mbal), bal: Ballot(bal), value };
            let bytes = block.encode(cluster_id);
            prop_assert_eq!(LockBlock::decode(&bytes, cluster_id), Ok(Some(block)));
        }

        #[test]
        fn any_single_byte_corruption_is_an_error(index in 0..BLOCK_BYTES, flip in 1u8..) {
            let mut bytes = sample_block().encode(CLUSTER_ID);
            bytes[index] ^= flip;
            prop_assert!(LockBlock::decode(&bytes, CLUSTER_ID).is_err());
        }

        #[test]
        fn ballot_above_is_the_next_ballot_of_the_node(
            floor in 0..u64::MAX - 2 * BALLOT_STRIDE, node in 0..PARTICIPANTS_MAX as u8,
        ) {
            let ballot = Ballot::above(Ballot(floor), node).expect("room left");
            prop_assert!(ballot > Ballot(floor));
            prop_assert!(ballot.0 - floor <= BALLOT_STRIDE);
            prop_assert_eq!(ballot.owner(), Some(node));
        }
    }

    #[test]
    fn all_zero_block_was_never_written() {
        assert_eq!(LockBlock::decode(&[0; BLOCK_BYTES], CLUSTER_ID), Ok(None));
    }

    #[test]
    fn foreign_sector_has_bad_magic() {
        let mut bytes = [0u8; BLOCK_BYTES];
        bytes[100] = 1;
        assert_eq!(
            LockBlock::decode(&bytes, CLUSTER_ID),
            Err(BlockError::BadMagic)
        );
        let mut bytes = sample_block().encode(CLUSTER_ID);
        bytes[MAGIC_OFFSET + 7] = b'2';
        assert_eq!(
            LockBlock::decode(&bytes, CLUSTER_ID),
            Err(BlockError::BadMagic)
        );
    }

    #[test]
    fn flipped_byte_fails_the_checksum() {
        let mut bytes = sample_block().encode(CLUSTER_ID);
        bytes[VALUE_OFFSET] ^= 0x01;
        assert!(matches!(
            LockBlock::decode(&bytes, CLUSTER_ID),
            Err(BlockError::ChecksumMismatch { stored, computed }) if stored != computed
        ));
        let mut bytes = sample_block().encode(CLUSTER_ID);
        bytes[300] = 0xFF; // in the padding
        assert!(matches!(
            LockBlock::decode(&bytes, CLUSTER_ID),
            Err(BlockError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn unknown_format_version_is_refused() {
        let mut bytes = sample_block().encode(CLUSTER_ID);
        bytes[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&2u32.to_le_bytes());
        reseal(&mut bytes);
        assert_eq!(
            LockBlock::decode(&bytes, CLUSTER_ID),
            Err(BlockError::UnknownFormatVersion { found: 2 })
        );
    }

    #[test]
    fn block_of_another_cluster_is_refused() {
        let bytes = sample_block().encode(7);
        assert_eq!(
            LockBlock::decode(&bytes, CLUSTER_ID),
            Err(BlockError::OtherCluster { found: 7 })
        );
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = sample_block().encode(CLUSTER_ID);
        assert_eq!(&bytes[..8], b"CGLOCK01");
        assert_eq!(bytes[8..12], 1u32.to_le_bytes());
        assert_eq!(bytes[12..20], CLUSTER_ID.to_le_bytes());
        assert_eq!(bytes[20..28], INSTANCE.to_le_bytes());
        assert_eq!(bytes[28..36], 18u64.to_le_bytes());
        assert_eq!(bytes[36..44], 2u64.to_le_bytes());
        assert_eq!(bytes[44..52], 0xABCDu64.to_le_bytes());
        assert!(bytes[52..508].iter().all(|&byte| byte == 0));
        assert_eq!(bytes[508..], crc32fast::hash(&bytes[..508]).to_le_bytes());
    }

    #[test]
    fn errors_read_as_lowercase_sentences() {
        let errors: [&dyn std::error::Error; 6] = [
            &BlockError::BadMagic,
            &BlockError::ChecksumMismatch {
                stored: 1,
                computed: 2,
            },
            &BlockError::UnknownFormatVersion { found: 9 },
            &BlockError::OtherCluster { found: 3 },
            &ProposerError::ZeroValue,
            &ProposerError::NodeOutOfRange {
                me: 4,
                participants: 4,
            },
        ];
        for error in errors {
            let message = error.to_string();
            assert!(message.starts_with(char::is_lowercase), "{message}");
        }
        assert_eq!(DiskFailure("EIO".into()).to_string(), "EIO");
    }

    // ---- ballots and construction ----

    #[test]
    fn ballots_are_unique_per_node() {
        assert_eq!(Ballot::for_round(0, 0), Some(Ballot(1)));
        assert_eq!(Ballot::for_round(1, 3), Some(Ballot(20)));
        assert_eq!(Ballot::for_round(0, 16), None);
        assert_eq!(Ballot::for_round(u64::MAX, 0), None);
        assert_eq!(Ballot(20).owner(), Some(3));
        assert_eq!(Ballot::NONE.owner(), None);
        assert_eq!(Ballot::above(Ballot(20), 3), Some(Ballot(36)));
        assert_eq!(Ballot::above(Ballot(20), 4), Some(Ballot(21)));
        assert_eq!(Ballot::above(Ballot(u64::MAX), 0), None);
    }

    #[test]
    fn new_checks_its_arguments() {
        assert_eq!(
            Proposer::new(CLUSTER_ID, 0, 17, INSTANCE, 1).err(),
            Some(ProposerError::TooManyParticipants { participants: 17 })
        );
        assert_eq!(
            Proposer::new(CLUSTER_ID, 2, 2, INSTANCE, 1).err(),
            Some(ProposerError::NodeOutOfRange {
                me: 2,
                participants: 2
            })
        );
        assert_eq!(
            Proposer::new(CLUSTER_ID, 0, 0, INSTANCE, 1).err(),
            Some(ProposerError::NodeOutOfRange {
                me: 0,
                participants: 0
            })
        );
        assert_eq!(
            Proposer::new(CLUSTER_ID, 0, 2, INSTANCE, 0).err(),
            Some(ProposerError::ZeroValue)
        );
        assert!(Proposer::new(CLUSTER_ID, 15, 16, INSTANCE, 1).is_ok());
    }

    #[test]
    fn a_new_proposer_first_reads_its_own_block_then_the_others() {
        let mut proposer = proposer(2, 4, INSTANCE);
        assert_eq!(
            proposer.poll_request(),
            Some(DiskRequest::Read {
                id: IoId(0),
                block: 2
            })
        );
        let mut others = Vec::new();
        while let Some(request) = proposer.poll_request() {
            assert!(matches!(request, DiskRequest::Read { .. }));
            others.push(request.block());
        }
        assert_eq!(others, [0, 1, 3]);
        assert_eq!(proposer.outcome(), None);
        assert_eq!(proposer.ballot(), Ballot::NONE);
        assert_eq!(proposer.instance(), INSTANCE);
    }

    // ---- deterministic scenarios ----

    #[test]
    fn lone_proposer_on_empty_disk_decides_its_own_value() {
        for participants in 1..=4 {
            let mut disk = empty_disk(participants);
            let mut first = proposer(participants - 1, participants, INSTANCE);
            let outcome = run_alone(&mut first, &mut disk);
            assert_eq!(outcome, Outcome::Decided(value_of(participants - 1)));
        }
    }

    #[test]
    fn later_proposer_in_same_instance_decides_the_first_value() {
        let mut disk = empty_disk(3);
        assert_eq!(
            run_alone(&mut proposer(1, 3, INSTANCE), &mut disk),
            Outcome::Decided(value_of(1))
        );
        for me in [0, 2] {
            assert_eq!(
                run_alone(&mut proposer(me, 3, INSTANCE), &mut disk),
                Outcome::Decided(value_of(1))
            );
        }
    }

    #[test]
    fn newer_instance_treats_older_blocks_as_empty() {
        let mut disk = empty_disk(2);
        assert_eq!(
            run_alone(&mut proposer(0, 2, INSTANCE), &mut disk),
            Outcome::Decided(value_of(0))
        );
        // Node 1 overwrites nothing of node 0, yet decides its own value in the next instance.
        assert_eq!(
            run_alone(&mut proposer(1, 2, INSTANCE + 1), &mut disk),
            Outcome::Decided(value_of(1))
        );
        // Node 0 in the next instance finds its own block of the old instance, and node 1's.
        assert_eq!(
            run_alone(&mut proposer(0, 2, INSTANCE + 1), &mut disk),
            Outcome::Decided(value_of(1))
        );
    }

    #[test]
    fn older_instance_is_superseded() {
        let mut disk = empty_disk(2);
        run_alone(&mut proposer(0, 2, INSTANCE), &mut disk);
        // Node 1's own block is empty; node 0's block is of a later instance.
        assert_eq!(
            run_alone(&mut proposer(1, 2, INSTANCE - 1), &mut disk),
            Outcome::Superseded { instance: INSTANCE }
        );
        // Node 0's own block already says so at recovery.
        assert_eq!(
            run_alone(&mut proposer(0, 2, INSTANCE - 1), &mut disk),
            Outcome::Superseded { instance: INSTANCE }
        );
    }

    #[test]
    fn restarted_proposer_recovers_its_ballot_and_accepted_value() {
        let mut disk = empty_disk(2);
        let mut first = proposer(0, 2, INSTANCE);
        assert_eq!(
            run_alone(&mut first, &mut disk),
            Outcome::Decided(value_of(0))
        );
        // Same node, restarted with no memory and (wrongly) another digest: the accepted value
        // on its own block wins, and its ballot is above the one it used before.
        let mut restarted = Proposer::new(CLUSTER_ID, 0, 2, INSTANCE, 0x77).expect("valid");
        assert_eq!(
            run_alone(&mut restarted, &mut disk),
            Outcome::Decided(value_of(0))
        );
        assert!(restarted.ballot() > first.ballot());
        assert_eq!(restarted.ballot().owner(), Some(0));
    }

    #[test]
    fn conflict_then_retry_uses_a_ballot_above_the_one_seen() {
        let mut disk = empty_disk(2);
        let mut slow = proposer(0, 2, INSTANCE);
        // Recovery reads of both blocks, then the phase 1 write of ballot 1.
        for _ in 0..3 {
            let request = slow.poll_request().expect("request");
            let (id, result) = execute(&mut disk, request);
            slow.handle_reply(id, result);
        }
        assert_eq!(slow.ballot(), Ballot(1));
        // Meanwhile node 1 runs its whole protocol with ballot 2 and wins.
        assert_eq!(
            run_alone(&mut proposer(1, 2, INSTANCE), &mut disk),
            Outcome::Decided(value_of(1))
        );
        assert_eq!(
            run_alone(&mut slow, &mut disk),
            Outcome::Conflict { seen: Ballot(2) }
        );
        assert_eq!(slow.poll_request(), None);
        slow.retry();
        assert_eq!(slow.ballot(), Ballot(17));
        assert_eq!(
            run_alone(&mut slow, &mut disk),
            Outcome::Decided(value_of(1))
        );
    }

    #[test]
    fn retry_does_nothing_without_a_conflict() {
        let mut disk = empty_disk(1);
        let mut lone = proposer(0, 1, INSTANCE);
        lone.retry();
        assert_eq!(lone.ballot(), Ballot::NONE);
        run_alone(&mut lone, &mut disk);
        let ballot = lone.ballot();
        lone.retry();
        assert_eq!(lone.ballot(), ballot);
        assert_eq!(lone.outcome(), Some(&Outcome::Decided(value_of(0))));
        assert_eq!(lone.poll_request(), None);
    }

    #[test]
    fn unreadable_block_fails_instead_of_counting_as_empty() {
        let mut disk = empty_disk(2);
        disk[1] = *sample_block().encode(CLUSTER_ID);
        disk[1][VALUE_OFFSET] ^= 0x10; // torn or corrupted
        let outcome = run_alone(&mut proposer(0, 2, INSTANCE), &mut disk);
        assert!(
            matches!(&outcome, Outcome::Failed(reason) if reason.contains("checksum")),
            "{outcome:?}"
        );
        // The same on our own block at recovery.
        let outcome = run_alone(&mut proposer(1, 2, INSTANCE), &mut disk);
        assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    }

    #[test]
    fn block_with_another_nodes_ballot_fails() {
        let mut disk = empty_disk(2);
        // Block 1 holding a ballot of node 0: node indices configured differently.
        let misplaced = LockBlock {
            instance: INSTANCE,
            mbal: Ballot(1),
            bal: Ballot::NONE,
            value: 0,
        };
        disk[1] = *misplaced.encode(CLUSTER_ID);
        let outcome = run_alone(&mut proposer(0, 2, INSTANCE), &mut disk);
        assert!(
            matches!(&outcome, Outcome::Failed(reason) if reason.contains("not a ballot")),
            "{outcome:?}"
        );
    }

    #[test]
    fn io_error_fails_the_attempt() {
        let mut lone = proposer(0, 2, INSTANCE);
        let request = lone.poll_request().expect("recovery read");
        lone.handle_reply(request.id(), Err(DiskFailure("EIO".into())));
        assert!(
            matches!(lone.outcome(), Some(Outcome::Failed(reason)) if reason.contains("EIO")),
            "{:?}",
            lone.outcome()
        );
        assert_eq!(lone.poll_request(), None);
    }

    #[test]
    fn reply_of_the_wrong_kind_fails() {
        let mut lone = proposer(0, 2, INSTANCE);
        let request = lone.poll_request().expect("recovery read");
        lone.handle_reply(request.id(), Ok(DiskReply::Written));
        assert!(matches!(lone.outcome(), Some(Outcome::Failed(_))));

        let mut disk = empty_disk(2);
        let mut lone = proposer(0, 2, INSTANCE);
        recover(&mut lone, &mut disk);
        let write = lone.poll_request().expect("phase 1 write");
        assert!(matches!(write, DiskRequest::Write { block: 0, .. }));
        lone.handle_reply(write.id(), Ok(DiskReply::Read(Box::new([0; BLOCK_BYTES]))));
        assert!(matches!(lone.outcome(), Some(Outcome::Failed(_))));
    }

    #[test]
    fn unknown_stale_and_late_replies_are_ignored() {
        let mut disk = empty_disk(2);
        let mut lone = proposer(0, 2, INSTANCE);
        let request = lone.poll_request().expect("recovery read");
        lone.handle_reply(IoId(99), Err(DiskFailure("not ours".into())));
        assert_eq!(lone.outcome(), None);
        let (id, result) = execute(&mut disk, request);
        lone.handle_reply(id, result);
        // A duplicate of an answered request changes nothing.
        lone.handle_reply(id, Err(DiskFailure("duplicate".into())));
        assert_eq!(lone.outcome(), None);
        assert_eq!(
            run_alone(&mut lone, &mut disk),
            Outcome::Decided(value_of(0))
        );
        // Once decided, replies are ignored and nothing more is requested.
        lone.handle_reply(IoId(3), Err(DiskFailure("late".into())));
        assert_eq!(lone.outcome(), Some(&Outcome::Decided(value_of(0))));
        assert_eq!(lone.poll_request(), None);
    }

    #[test]
    fn reads_cover_exactly_the_other_participants() {
        let mut disk = empty_disk(4);
        let mut node = proposer(1, 4, INSTANCE);
        recover(&mut node, &mut disk);
        let (id, result) = execute(&mut disk, node.poll_request().expect("phase 1 write"));
        node.handle_reply(id, result);
        let mut blocks = Vec::new();
        while let Some(request) = node.poll_request() {
            assert!(matches!(request, DiskRequest::Read { .. }));
            blocks.push(request.block());
        }
        assert_eq!(blocks, [0, 2, 3]);
    }

    // ---- randomized interleavings ----

    /// A reply performed on the disk but not yet delivered.
    type Completed = (IoId, Result<DiskReply, DiskFailure>);

    struct SimulatedNode {
        proposer: Proposer,
        /// Requests polled, not yet performed.
        queued: Vec<DiskRequest>,
        /// Requests performed, replies not yet delivered.
        completed: Vec<Completed>,
        /// Whether this incarnation's decision was checked already.
        recorded: bool,
    }

    /// 2-4 proposers of one instance sharing a model disk; every step performs or answers one
    /// random request, or crashes and restarts a node.
    struct Simulation {
        rng: ChaCha8Rng,
        disk: Disk,
        nodes: Vec<SimulatedNode>,
        io_error_per_mille: u64,
        restarts_left: u32,
        skip_phase2_check: bool,
        decided: Vec<u64>,
    }

    impl Simulation {
        fn new(seed: u64, skip_phase2_check: bool) -> Simulation {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let participants = 2 + below(&mut rng, 3) as u8;
            let io_error_per_mille = [0, 5, 20, 60][below(&mut rng, 4)];
            let restarts_left = below(&mut rng, 4) as u32;
            let mut simulation = Simulation {
                rng,
                disk: empty_disk(participants),
                nodes: Vec::new(),
                io_error_per_mille,
                restarts_left,
                skip_phase2_check,
                decided: Vec::new(),
            };
            for me in 0..participants {
                let node = simulation.start_node(me);
                simulation.nodes.push(node);
            }
            simulation
        }

        fn participants(&self) -> u8 {
            self.disk.len() as u8
        }

        fn start_node(&self, me: u8) -> SimulatedNode {
            let mut proposer = proposer(me, self.participants(), INSTANCE);
            proposer.skip_phase2_check = self.skip_phase2_check;
            SimulatedNode {
                proposer,
                queued: Vec::new(),
                completed: Vec::new(),
                recorded: false,
            }
        }

        /// Runs to the end; the number of decisions, or the first violation found.
        fn run(mut self) -> Result<usize, String> {
            for _ in 0..STEPS_MAX {
                self.collect()?;
                let nodes_finished = self.nodes.iter().all(|node| {
                    matches!(
                        node.proposer.outcome(),
                        Some(Outcome::Decided(_) | Outcome::Failed(_))
                    )
                });
                if nodes_finished {
                    break;
                }
                self.step()?;
            }
            Ok(self.decided.len())
        }

        /// Drains every proposer's requests, retries conflicts, checks new decisions.
        fn collect(&mut self) -> Result<(), String> {
            for index in 0..self.nodes.len() {
                let node = &mut self.nodes[index];
                loop {
                    while let Some(request) = node.proposer.poll_request() {
                        node.queued.push(request);
                    }
                    match node.proposer.outcome().cloned() {
                        Some(Outcome::Conflict { .. }) => node.proposer.retry(),
                        Some(Outcome::Superseded { instance }) => {
                            return Err(format!("node {index} superseded by {instance}"));
                        }
                        Some(Outcome::Decided(value)) if !node.recorded => {
                            node.recorded = true;
                            self.check_decision(index, value)?;
                            break;
                        }
                        _ => break,
                    }
                }
            }
            Ok(())
        }

        fn check_decision(&mut self, index: usize, value: u64) -> Result<(), String> {
            if !(0..self.participants()).any(|node| value_of(node) == value) {
                return Err(format!("validity: node {index} decided {value:#x}"));
            }
            if let Some(&first) = self.decided.first() {
                if first != value {
                    return Err(format!(
                        "agreement: node {index} decided {value:#x}, earlier {first:#x}"
                    ));
                }
            }
            self.decided.push(value);
            Ok(())
        }

        /// One random event: a restart, performing a request, or delivering a reply.
        fn step(&mut self) -> Result<(), String> {
            if self.restarts_left > 0 && chance(&mut self.rng, 10) {
                self.restarts_left -= 1;
                let me = below(&mut self.rng, self.nodes.len());
                // A reset node has nothing in flight: its queued requests are dropped, and the
                // ones performed already are on the disk.
                self.nodes[me] = self.start_node(me as u8);
                return Ok(());
            }
            let pending: usize = self
                .nodes
                .iter()
                .map(|node| node.queued.len() + node.completed.len())
                .sum();
            if pending == 0 {
                return Err("stuck: a running proposer has nothing in flight".into());
            }
            let mut pick = below(&mut self.rng, pending);
            for index in 0..self.nodes.len() {
                let queued = self.nodes[index].queued.len();
                if pick < queued {
                    let request = self.nodes[index].queued.swap_remove(pick);
                    let completed = self.perform(index, request)?;
                    self.nodes[index].completed.push(completed);
                    return Ok(());
                }
                pick -= queued;
                let node = &mut self.nodes[index];
                if pick < node.completed.len() {
                    let (id, result) = node.completed.swap_remove(pick);
                    if chance(&mut self.rng, 30) {
                        node.completed.push((id, result.clone())); // delivered twice
                    }
                    node.proposer.handle_reply(id, result);
                    return Ok(());
                }
                pick -= node.completed.len();
            }
            unreachable!("pick is below the number of pending requests and replies")
        }

        /// Performs a request on the disk as it is now, failing it at random.
        fn perform(&mut self, index: usize, request: DiskRequest) -> Result<Completed, String> {
            let failed = chance(&mut self.rng, self.io_error_per_mille);
            let failure = || DiskFailure("injected EIO".into());
            match request {
                DiskRequest::Read { id, block } => {
                    let Some(sector) = self.disk.get(usize::from(block)) else {
                        return Err(format!("node {index} read block {block}, out of range"));
                    };
                    let reply = DiskReply::Read(Box::new(*sector));
                    Ok((id, if failed { Err(failure()) } else { Ok(reply) }))
                }
                DiskRequest::Write { id, block, data } => {
                    if usize::from(block) != index {
                        return Err(format!("node {index} wrote block {block}"));
                    }
                    // A failed write may or may not have reached the disk (never partly).
                    if !failed || chance(&mut self.rng, 500) {
                        self.disk[index] = *data;
                    }
                    Ok((
                        id,
                        if failed {
                            Err(failure())
                        } else {
                            Ok(DiskReply::Written)
                        },
                    ))
                }
            }
        }
    }

    fn below(rng: &mut ChaCha8Rng, bound: usize) -> usize {
        (rng.next_u64() % bound as u64) as usize
    }

    fn chance(rng: &mut ChaCha8Rng, per_mille: u64) -> bool {
        rng.next_u64() % 1000 < per_mille
    }

    /// The seeds to run: `SIM_SEED=n` replays one.
    fn seeds() -> Vec<u64> {
        match std::env::var("SIM_SEED") {
            Ok(seed) => vec![seed.parse().expect("SIM_SEED is a number")],
            Err(_) => (0..SEEDS).collect(),
        }
    }

    #[test]
    fn random_interleavings_keep_agreement_and_validity() {
        let mut runs_with_decision = 0;
        let seeds = seeds();
        for &seed in &seeds {
            match Simulation::new(seed, false).run() {
                Ok(decisions) => runs_with_decision += usize::from(decisions > 0),
                Err(violation) => panic!(
                    "seed {seed}: {violation} (replay: SIM_SEED={seed} cargo test -p \
                     cimguard-cluster --lib disk_paxos)"
                ),
            }
        }
        // Not vacuous: most runs decide despite errors, crashes and contention.
        assert!(
            runs_with_decision * 2 > seeds.len(),
            "only {runs_with_decision} of {} runs decided",
            seeds.len()
        );
    }

    #[test]
    fn random_interleavings_catch_a_broken_phase_2() {
        let violations: Vec<(u64, String)> = (0..SEEDS)
            .filter_map(|seed| {
                let violation = Simulation::new(seed, true).run().err()?;
                Some((seed, violation))
            })
            .collect();
        assert!(
            !violations.is_empty(),
            "deciding without the phase 2 reads went unnoticed in {SEEDS} seeds"
        );
        assert!(violations
            .iter()
            .all(|(_, violation)| violation.starts_with("agreement")));
    }

    #[test]
    fn sequential_proposers_without_errors_all_decide() {
        for participants in 1..=4u8 {
            for first in 0..participants {
                let mut disk = empty_disk(participants);
                let order = (first..participants).chain(0..first);
                for me in order {
                    assert_eq!(
                        run_alone(&mut proposer(me, participants, INSTANCE), &mut disk),
                        Outcome::Decided(value_of(first)),
                        "participants {participants}, first {first}, node {me}"
                    );
                }
            }
        }
    }
}
