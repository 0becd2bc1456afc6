//! The high-availability engine of cimguard: a sans-IO core (membership, quorum, package
//! decisions) that takes `now` as an argument, a tokio runtime that drives it with real sockets,
//! disks and processes, and a seeded simulator. It knows nothing of CIM.
//!
//! Built so far:
//! - [`config`]: Serviceguard's configuration files read and checked as `cmcheckconf` does.
//! - [`timing`]: the timing derived from MEMBER_TIMEOUT and the tie-breaker, and the
//!   survivors' wait that makes fencing safe.
//! - [`core`]: one node's membership state machine (heartbeats, re-formation, quorum,
//!   tie-break, safety timer).
//! - [`disk_paxos`]: the cluster lock on a lock LUN.
//! - [`sim`]: the deterministic simulator that drives several cores through faults and checks
//!   the invariants of cluster.md after every event.
//!
//! The package manager and the runtime follow in the cluster issues.

pub mod config;
pub mod core;
pub mod disk_paxos;
pub mod packages;
pub mod sim;
pub mod timing;
