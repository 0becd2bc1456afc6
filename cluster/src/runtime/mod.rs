//! The runtime's parts that touch the machine, each usable on its own: so far the lock LUN
//! device ([`lock_lun`]), the state file replaced atomically ([`state_file`]) and heartbeat
//! authentication ([`auth`]). The tokio shell that drives a [`crate::core::Node`] with them
//! follows (issue 5).

pub mod auth;
pub mod lock_lun;
pub mod state_file;
