//! The library behind cimguard's binaries: `cimguard` (src/main.rs), the node daemon `cmcld`,
//! the agent `cmwbemd` and the Serviceguard commands (src/bin/cm*.rs). Each binary is a thin
//! `main` over these modules, so they are compiled, and their unit tests run, once.

pub mod agent;
pub mod cimclient;
pub mod clcmds;
pub mod cluster_certs;
pub mod cmcld;
pub mod cmviewcl;
pub mod commands;
pub mod confcmds;
pub mod demo;
pub mod mof_check;
pub mod pkgcmds;
pub mod querycl;
pub mod user;
