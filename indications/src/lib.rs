//! CIM indications for cimguard: filters (WQL/CQL), listener destinations, subscriptions, and
//! durable delivery with retries and DSP1054 sequence numbers. It knows CIM instances, not
//! clusters.
//!
//! Not yet built: this crate is laid down by the workspace foundation and filled by the
//! indications issue. It exports nothing today.
