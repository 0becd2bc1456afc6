//! TLS material for cimguard: certificate generation (rcgen), loading, trust stores and the
//! identity carried by a client certificate.
//!
//! Not yet built: this crate is laid down by the workspace foundation and filled by the WBEM
//! server issue. It exports nothing today.
