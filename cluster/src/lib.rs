//! The high-availability engine of cimguard: a sans-IO core (membership, quorum, package
//! decisions) that takes `now` as an argument, a tokio runtime that drives it with real sockets,
//! disks and processes, and a seeded simulator. It knows nothing of CIM.
//!
//! Built so far: [`config`], Serviceguard's configuration files read and checked as
//! `cmcheckconf` does. The core, the runtime and the simulator follow in the cluster issues.

pub mod config;
