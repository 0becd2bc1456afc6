//! The WBEM server of cimguard: the HTTPS listener (hyper + rustls), authentication, dispatch of
//! CIM-XML operations (DSP0200) to namespaces and providers, and the mapping of the cluster model
//! onto CIM classes. It is the only crate where CIM meets the cluster.
//!
//! Not yet built: this crate is laid down by the workspace foundation and filled by the issues
//! that follow (the WBEM server, the Serviceguard provider). It exports nothing today.

pub mod auth;
