//! The runtime's parts that touch the machine, each usable on its own: so far the lock LUN
//! device ([`lock_lun`]) and the state file replaced atomically ([`state_file`]). The tokio shell that drives a [`crate::core::Node`] with them
//! follows (issue 5).

pub mod lock_lun;
pub mod state_file;
