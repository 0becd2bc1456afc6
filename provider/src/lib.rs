//! The WBEM server of cimguard: the HTTPS listener (hyper + rustls), authentication, dispatch of
//! CIM-XML operations (DSP0200) to namespaces and providers, and the mapping of the cluster model
//! onto CIM classes. It is the only crate where CIM meets the cluster.
//!
//! ```text
//!  client --HTTPS--> server (listener, limits, TLS)
//!                      -> http (DSP0200 headers, body, CIMError, chunking, gzip)
//!                      -> auth (Basic, client certificates, roles, audit)
//!                      -> operations (intrinsic operations, typed parameters)
//!                      -> cimom::ObjectManager (classes, providers by class, shaping)
//!                      -> provider::InstanceProvider (interop, cluster, ...)
//! ```
//!
//! Main types: [`server::Server`] and its [`config::ServerConfig`], [`cimom::ObjectManager`],
//! the [`provider::InstanceProvider`] trait, [`error::OperationError`].

pub mod access;
pub mod alerts;
pub mod auth;
pub mod cimom;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod interop;
pub mod methods;
pub mod metrics;
pub mod operations;
pub mod package_jobs;
pub mod provider;
pub mod pull;
pub(crate) mod query;
mod repoll;
pub mod server;
pub mod service;
pub mod serviceguard;
pub mod statistics;
pub mod subscriptions;
