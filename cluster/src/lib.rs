//! The high-availability engine of cimguard: a sans-IO core (membership, quorum, package
//! decisions) that takes `now` as an argument, a tokio runtime that drives it with real sockets,
//! disks and processes, and a seeded simulator. It knows nothing of CIM.
//!
//! Built so far:
//! - [`config`]: Serviceguard's configuration files read and checked as `cmcheckconf` does.
//! - [`timing`]: the timing derived from MEMBER_TIMEOUT and the tie-breaker, and the
//!   survivors' wait that makes fencing safe.
//! - [`core`]: one node's membership state machine (heartbeats, re-formation, quorum,
//!   tie-break, safety timer, graceful leave, configuration distribution).
//! - [`disk_paxos`]: the cluster lock on a lock LUN.
//! - [`packages`]: the package manager (placement, scripts, services, commands), driven by
//!   the core.
//! - [`status`]: what `cmviewcl -v` shows, typed, and the notices of the event catalogue.
//! - [`runtime`]: the parts of the runtime that touch the machine: the lock LUN device.
//! - [`sim`]: the deterministic simulator that drives several cores through faults and checks
//!   the invariants of cluster.md after every event.
//!
//! A driver owns one [`core::Node`] and loops:
//!
//! ```text
//! node.handle_message(now, network, envelope)   // or handle_timeout, handle_disk,
//!                                               // handle_quorum_server, handle_script, ...
//! while let Some(action) = node.poll_action() { carry it out, in order }
//! sleep until node.poll_timeout()
//! ```
//!
//! Commands come in as `handle_*` calls too: package commands (`handle_command`: cmrunpkg,
//! cmhaltpkg, cmmodpkg), `handle_resource` (cmsetresource), `handle_halt_node` and
//! `handle_halt_cluster` (cmhaltnode, cmhaltcl), `handle_run_cluster` (cmruncl -n) and
//! `handle_apply` (cmapplyconf). Package numbers in actions and answers are those of the
//! catalog in effect: after an [`core::Action::Catalog`] they are the new catalog's.
//!
//! The rest of the runtime (sockets, quorum server, watchdog, processes, and the tokio shell
//! that drives a node) follows in issue 5.

pub mod config;
pub mod core;
pub mod disk_paxos;
pub mod package_wait;
pub mod packages;
pub mod runtime;
pub mod sim;
pub mod status;
pub mod timing;
pub mod view;
pub mod wire;
