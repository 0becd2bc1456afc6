//! Authentication and authorization for the WBEM server: the users file, Serviceguard roles,
//! checking HTTP Basic credentials and client-certificate names, throttling of failed logins,
//! and the audit log. No HTTP here: the server passes in header values, peer addresses and the
//! time, and maps [`AuthError`] to its responses.
//!
//! Main types: [`Users`] (the file `name:ROLE:$argon2id$...`), [`Authenticator`] (shared by all
//! connections; [`Authenticator::cached`] on the hot path, [`Authenticator::verify_slow`] in
//! `spawn_blocking`), [`Role`] and [`Access`] (what a role may do), [`AuditLog`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Instant;
//! use cimguard_provider::auth::{Access, Authenticator, Role, Users};
//!
//! let mut users = Users::new();
//! users.add("operator", Role::PackageAdmin, "correct horse").unwrap();
//! let authenticator = Authenticator::new(users);
//! let header = "Basic b3BlcmF0b3I6Y29ycmVjdCBob3JzZQ=="; // operator:correct horse
//! let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
//! let principal = authenticator.verify_basic(header, peer, Instant::now()).unwrap();
//! assert!(principal.permits(Access::PackageControl));
//! assert!(!principal.permits(Access::Administer));
//! ```

mod audit;
mod authenticator;
#[cfg(feature = "pam")]
mod pam;
mod role;
mod users;

pub use audit::{AuditEntry, AuditLog, AuditOutcome};
pub use authenticator::{
    www_authenticate, AuthError, AuthMethod, Authenticator, PamCheck, PamCheckError, Principal,
    CACHE_ENTRIES_MAX, CACHE_ENTRY_LIFETIME, CONCURRENT_VERIFICATIONS_MAX, CREDENTIALS_BYTES_MAX,
    FAILURES_BEFORE_THROTTLE, FAILURE_MEMORY, THROTTLED_PEERS_MAX, THROTTLE_DELAY_INITIAL,
    THROTTLE_DELAY_MAX,
};
#[cfg(feature = "pam")]
pub use pam::{PamAuthenticator, PAM_SERVICE};
pub use role::{Access, Role, UnknownRole};
pub use users::{
    is_valid_name, LineProblem, UserEntry, Users, UsersError, UsersFileError, HASH_MEMORY_KIB,
    HASH_MEMORY_MAX_KIB, HASH_PARALLELISM, HASH_PARALLELISM_MAX, HASH_TIME_COST,
    HASH_TIME_COST_MAX, PAM_MARKER, PASSWORD_BYTES_MAX, USERS_FILE_BYTES_MAX, USER_NAME_LENGTH_MAX,
};
