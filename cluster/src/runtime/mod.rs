//! The runtime's parts that touch the machine, each usable on its own: so far the lock LUN
//! device ([`lock_lun`]), the state file replaced atomically ([`state_file`]) and heartbeat
//! authentication ([`auth`]), the process fence that serves as the safety timer where
//! there is no watchdog device ([`fence`]), and the networks: relocatable addresses and
//! monitored subnets through netlink ([`network`]). The tokio shell that drives a [`crate::core::Node`] with them
//! follows (issue 5).

pub mod admin;
pub mod allocator;
pub mod auth;
pub mod control;
pub mod daemon;
pub mod exchange;
pub mod fence;
pub mod lock_lun;
pub mod network;
pub mod quorum_server;
pub mod state_file;
pub mod supervisor;
mod unconfigured;
pub mod watchdog;
pub mod write_gate;
