//! The sans-IO membership core: heartbeats, re-formation, quorum and tie-break, and the
//! safety timer logic of one node. It reads no clock, opens nothing and draws randomness only
//! from its seed: the driver (the tokio runtime, or the simulator) passes `now` to every
//! `handle_*` call, carries out the [`Action`]s it returns in order, and calls
//! [`Node::handle_timeout`] at [`Node::poll_timeout`].
//!
//! The protocol, in short (see `timing` for the lease arithmetic):
//!
//! 1. Every node heartbeats every peer on every network. A heartbeat carries the sender's
//!    phase, membership epoch and members, the peers it hears (`reach`), and an echo of the
//!    receiver's own send time that renews the receiver's quorum lease.
//! 2. From the reach sets every node knows who hears whom. The membership candidate is the
//!    best clique of mutually connected eligible nodes (`clique`); its lowest node is the
//!    coordinator. When the candidate differs from the installed membership and has been
//!    stable for `settle`, the coordinator proposes it under a new epoch.
//! 3. Members accept (promising to accept no lower epoch, persisted first) and report how
//!    long ago they last echoed each node that is left out.
//! 4. With every acceptance in, the coordinator applies Serviceguard's quorum rule to the
//!    previous membership P and the survivors S: 2S > P commits; 2S = P races for the cluster
//!    lock (Disk Paxos on the lock LUN, or the quorum server) for the instance of the old
//!    epoch; less halts the group, which fences.
//! 5. The commit carries, for each node left out, how long the survivors must wait before
//!    taking over: until the node is certainly reset by its safety timer.
//! 6. A node halting gracefully (cmhaltnode) first halts its packages; then the coordinator
//!    proposes the membership without it, and the leaver accepts as a voter: it counts for the
//!    quorum rule (it joins no other group), gets no fence wait, and stops on the commit.
//!    cmhaltcl spreads with the heartbeats; every node halts its packages, then all stop.
//! 7. A configuration generation (cmapplyconf) rides on a proposal: members persist it with
//!    their promise, and it takes effect with the commit. A generation a member accepted may
//!    have been committed, so the next coordinator carries it on before anything newer.
//!
//! What a node shows and tells is in [`crate::status`]: [`Node::status`] gives what
//! `cmviewcl -v` shows, and [`Action::Notice`] the entries of the event catalogue.

pub mod action;
pub mod clique;
pub mod message;
pub mod shared;
pub mod types;

mod node;
mod unconfigured;

pub use action::{
    Action, Base, Event, FenceReason, LockLoss, PackageChanges, Persisted, QuorumServerAnswer,
    QuorumServerAsk, QuorumServerRefusal, QuorumServerRequest, Taken,
};
pub use message::{Echo, Envelope, Heartbeat, Leaving, Message, Phase, Silence, Term, View};
pub(crate) use node::same_packages;
pub use node::{
    cluster_id, AddressCheck, EnrolmentOutcome, Node, Sabotage, Settings, Tiebreaker,
    ENROL_ANSWER_WAIT, HALTED_APPLY_ANSWER_WAIT, RUN_OTHER_WAIT,
};
pub use types::{Epoch, Incarnation, Instant, NodeId, NodeSet};
pub(crate) use unconfigured::listed;
pub use unconfigured::Unconfigured;
pub use unconfigured::RUNS_CONFIGURED;
