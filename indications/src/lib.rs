//! CIM indications for cimguard: the durable outbox of each listener destination and the
//! delivery that empties it, with retries and DSP1054 sequence numbers. It knows CIM
//! instances and CIM-XML, not clusters.
//!
//! - [`outbox`]: per destination, an ordered, bounded queue in an embedded ACID store
//!   (redb) that survives restarts and kill -9, with sequence contexts and numbers that go on
//!   across them, and marks committed with the indications (the event reader's cursor).
//! - [`delivery`]: one task per destination POSTs the queue in order over HTTP/1.1
//!   keep-alive, HTTPS verified against the system's and the configured authorities.

pub mod delivery;
pub mod outbox;

pub use delivery::{Delivery, Outage, Outcome, Policy, Stats, Target, TargetError};
pub use outbox::{Batch, Build, DestinationInfo, Outbox, OutboxError, CAPACITY};
