//! The high-availability engine of cimguard: a sans-IO core (membership, quorum, package
//! decisions) that takes `now` as an argument, a tokio runtime that drives it with real sockets,
//! disks and processes, and a seeded simulator. It knows nothing of CIM.
//!
//! Not yet built: this crate is laid down by the workspace foundation and filled by the cluster
//! issues. It exports nothing today.
