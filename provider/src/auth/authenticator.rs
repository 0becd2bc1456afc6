//! Checking HTTP Basic credentials and client certificates against the users file, with a cache
//! of successful checks and per-peer throttling of failures. No HTTP server here: the server
//! hands over the `Authorization` header value, the peer address and the time.
//!
//! A password check runs argon2 (tens of milliseconds and 19 MiB), so the server splits it:
//!
//! ```text
//! match authenticator.cached(header, peer, now) {
//!     Some(result) => result,                                    // cheap: hit, malformed, throttled
//!     None => spawn_blocking(move || authenticator.verify_slow(&header, peer, now)).await?,
//! }
//! ```
//!
//! [`Authenticator::verify_basic_async`] does exactly that and also bounds how many checks run
//! at once ([`CONCURRENT_VERIFICATIONS_MAX`]); [`Authenticator::verify_basic`] does both halves
//! on the calling thread.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHashString;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::role::{Access, Role};
use super::users::{self, Credential, Users};

/// The longest `Authorization` header value looked at, in bytes; longer ones are malformed.
pub const CREDENTIALS_BYTES_MAX: usize = 1024;
/// How many successful checks the cache holds; when full, the one closest to expiry goes.
pub const CACHE_ENTRIES_MAX: usize = 1024;
/// How long a successful check is remembered.
pub const CACHE_ENTRY_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Failed checks from one peer after which its further attempts are refused for a while.
pub const FAILURES_BEFORE_THROTTLE: u32 = 5;
/// How long a refusal lasts after the [`FAILURES_BEFORE_THROTTLE`]th failure; it doubles with
/// each further failure.
pub const THROTTLE_DELAY_INITIAL: Duration = Duration::from_secs(1);
/// The longest refusal.
pub const THROTTLE_DELAY_MAX: Duration = Duration::from_secs(5 * 60);
/// A peer with no failure for this long starts again from zero failures. Longer than
/// [`THROTTLE_DELAY_MAX`], so that the backoff of a persistent guesser keeps growing.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// How many peers the failure table holds; when full, the one whose last failure is oldest goes.
pub const THROTTLED_PEERS_MAX: usize = 4096;
/// How many user names one peer's failures are told apart by; failures for further names are
/// counted together, and no success clears them.
pub const THROTTLED_NAMES_MAX: usize = 16;
/// How many password checks [`Authenticator::verify_basic_async`] runs at once (each takes
/// [`HASH_MEMORY_KIB`](super::HASH_MEMORY_KIB) of memory and a core for tens of milliseconds).
pub const CONCURRENT_VERIFICATIONS_MAX: usize = 4;

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's name in the users file.
    pub name: String,
    /// The user's role in the users file.
    pub role: Role,
    /// How the user proved who they are.
    pub method: AuthMethod,
}

/// How a principal was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic: name and password (checked against the hash or by PAM).
    Basic,
    /// A client certificate whose common name is the user's name.
    Certificate,
    /// The kernel's credentials of a peer on the agent's local socket (`SO_PEERCRED`): no
    /// password, the connecting process's user decides.
    PeerCredentials {
        /// The peer's user id.
        uid: u32,
    },
}

/// A request could not be authenticated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// There is no `Authorization` header (the caller passes an empty value).
    #[error("authentication required")]
    Missing,
    /// The header is not `Basic` with base64 of UTF-8 `name:password`, or is too long.
    #[error("malformed authorization header: {reason}")]
    Malformed {
        /// What is wrong, for the log.
        reason: &'static str,
    },
    /// No such user, or the wrong password: one variant so that a client cannot tell which.
    #[error("unknown user or bad password")]
    UnknownUserOrBadPassword,
    /// Too many recent failures from this peer; no check was made.
    #[error("too many failed logins; retry after {retry_after:?}")]
    Throttled {
        /// When the peer may try again.
        retry_after: Duration,
    },
    /// The password could not be checked (PAM failed, or the checking task died).
    #[error("authentication is unavailable")]
    Unavailable,
}

/// A check of a PAM user's password failed for another reason than a wrong password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pam: {0}")]
pub struct PamCheckError(pub String);

/// Checks the passwords of users marked `pam` in the users file.
/// [`PamAuthenticator`](super::PamAuthenticator) (cargo feature `pam`) is the real one.
pub trait PamCheck: Send + Sync {
    /// `Ok(true)` when `password` is `name`'s password and the account may log in now.
    fn check(&self, name: &str, password: &str) -> Result<bool, PamCheckError>;
}

/// Authenticates requests; shared by all connections (`Send + Sync`, behind an `Arc`).
pub struct Authenticator {
    users: RwLock<Arc<Users>>,
    cache: Mutex<CredentialCache>,
    throttle: Mutex<Throttle>,
    /// Checked for unknown users so that they take as long as a wrong password (`None` only if
    /// the random number generator failed at start-up).
    dummy_hash: Option<PasswordHashString>,
    pam: Option<Box<dyn PamCheck>>,
    verifications: Arc<tokio::sync::Semaphore>,
}

struct CredentialCache {
    /// Keyed by a randomly keyed hash of the header value; the value holds the full bytes,
    /// compared in constant time.
    entries: HashMap<u64, CacheEntry>,
    hasher: std::collections::hash_map::RandomState,
    /// Bumped by every reload: a check that started before a reload may not fill the cache.
    generation: u64,
}

struct CacheEntry {
    credentials: Box<[u8]>,
    name: String,
    role: Role,
    expires: Instant,
}

#[derive(Default)]
struct Throttle {
    peers: HashMap<IpAddr, PeerFailures>,
    /// Hashes the user names failures are counted by (randomly keyed: a name is not kept).
    hasher: std::collections::hash_map::RandomState,
}

struct PeerFailures {
    failures: u32,
    /// Of `failures`, how many were for each user name (by hash), up to
    /// [`THROTTLED_NAMES_MAX`] names: a success clears its own name's failures and no others,
    /// so that a client holding one good password cannot reset the count while it guesses
    /// another user's.
    by_name: Vec<(u64, u32)>,
    last_failure: Instant,
    refused_until: Option<Instant>,
}

impl Authenticator {
    /// An authenticator for `users`. Computes one argon2 hash (for unknown users).
    #[must_use]
    pub fn new(users: Users) -> Self {
        let mut dummy_password = [0_u8; 16];
        // Any password works for the dummy hash; randomness only makes it unguessable, and on
        // the (theoretical) failure of the generator the zeroes are as good.
        let _ = argon2::password_hash::rand_core::RngCore::try_fill_bytes(
            &mut argon2::password_hash::rand_core::OsRng,
            &mut dummy_password,
        );
        let dummy_hash = users::hash_password(&dummy_password)
            .inspect_err(|error| tracing::error!(%error, "cannot make the dummy password hash"))
            .ok();
        Authenticator {
            users: RwLock::new(Arc::new(users)),
            cache: Mutex::new(CredentialCache {
                entries: HashMap::new(),
                hasher: std::collections::hash_map::RandomState::new(),
                generation: 0,
            }),
            throttle: Mutex::new(Throttle::default()),
            dummy_hash,
            pam: None,
            verifications: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_VERIFICATIONS_MAX)),
        }
    }

    /// Checks the passwords of users marked `pam` with `pam`. Without it, such users cannot log
    /// in with a password (certificates still map to them).
    #[must_use]
    pub fn with_pam(mut self, pam: Box<dyn PamCheck>) -> Self {
        self.pam = Some(pam);
        self
    }

    /// The fast half of a Basic check, cheap enough for the async hot path: `Some(Ok)` when
    /// these exact credentials succeeded within [`CACHE_ENTRY_LIFETIME`] (whatever the peer's
    /// throttling), `Some(Err)` when the header is missing or malformed or the peer is
    /// throttled, `None` when a password check is needed: run [`Self::verify_slow`] in
    /// `tokio::task::spawn_blocking`.
    pub fn cached(
        &self,
        authorization: &str,
        peer: IpAddr,
        now: Instant,
    ) -> Option<Result<Principal, AuthError>> {
        if let Some(principal) =
            cache_key(authorization).and_then(|key| self.lock_cache().lookup(key, now))
        {
            return Some(Ok(principal));
        }
        if let Err(error) = parse_basic(authorization) {
            return Some(Err(error));
        }
        if let Err(retry_after) = self.lock_throttle().check(peer, now) {
            return Some(Err(AuthError::Throttled { retry_after }));
        }
        None
    }

    /// The slow half of a Basic check: runs argon2 (or PAM), so call it off the async runtime.
    /// Checks the header and the throttle again, so it is correct alone too. Unknown users are
    /// checked against a dummy hash, taking as long as a wrong password.
    pub fn verify_slow(
        &self,
        authorization: &str,
        peer: IpAddr,
        now: Instant,
    ) -> Result<Principal, AuthError> {
        let (name, password) = parse_basic(authorization)?;
        if let Err(retry_after) = self.lock_throttle().check(peer, now) {
            return Err(AuthError::Throttled { retry_after });
        }
        let (users, generation) = self.snapshot();
        let checked = match users.get(&name).map(|entry| entry.credential()) {
            Some(Credential::Password(hash)) => {
                Ok(users::verify_password(hash, password.as_bytes()))
            }
            Some(Credential::Pam) => self.check_pam(&name, &password),
            None => {
                self.waste_time(&password);
                Ok(false)
            }
        };
        match checked {
            Ok(true) => {}
            Ok(false) => {
                self.lock_throttle().record_failure(peer, &name, now);
                return Err(AuthError::UnknownUserOrBadPassword);
            }
            Err(error) => {
                tracing::warn!(user = %name, %error, "password check failed");
                return Err(AuthError::Unavailable);
            }
        }
        // The entry exists: it was just checked against this snapshot.
        let role = users.get(&name).map_or(Role::Monitor, |entry| entry.role());
        self.lock_throttle().record_success(peer, &name);
        // parse_basic took the header, so it has a key.
        if let Some(key) = cache_key(authorization) {
            self.lock_cache().insert(key, &name, role, now, generation);
        }
        Ok(Principal {
            name,
            role,
            method: AuthMethod::Basic,
        })
    }

    /// Both halves on the calling thread (blocks for tens of milliseconds on a cache miss).
    pub fn verify_basic(
        &self,
        authorization: &str,
        peer: IpAddr,
        now: Instant,
    ) -> Result<Principal, AuthError> {
        match self.cached(authorization, peer, now) {
            Some(result) => result,
            None => self.verify_slow(authorization, peer, now),
        }
    }

    /// Both halves for async callers: a cache miss waits for one of
    /// [`CONCURRENT_VERIFICATIONS_MAX`] slots, looks in the cache again (another connection may
    /// have just checked the same credentials) and runs the check in `spawn_blocking`.
    pub async fn verify_basic_async(
        self: &Arc<Self>,
        authorization: &str,
        peer: IpAddr,
        now: Instant,
    ) -> Result<Principal, AuthError> {
        if let Some(result) = self.cached(authorization, peer, now) {
            return result;
        }
        let permit = Arc::clone(&self.verifications)
            .acquire_owned()
            .await
            .map_err(|_closed| AuthError::Unavailable)?;
        if let Some(result) = self.cached(authorization, peer, now) {
            return result;
        }
        let this = Arc::clone(self);
        let authorization = authorization.to_owned();
        tokio::task::spawn_blocking(move || {
            // Held until the check ends, even if the waiting request is dropped.
            let _permit = permit;
            this.verify_slow(&authorization, peer, now)
        })
        .await
        .map_err(|_join_error| AuthError::Unavailable)?
    }

    /// The principal for a client certificate whose subject common name is `common_name`: the
    /// user of that name, whatever their password credential. The TLS layer has already
    /// checked the certificate against the trust store.
    #[must_use]
    pub fn principal_for_certificate(&self, common_name: &str) -> Option<Principal> {
        let (users, _) = self.snapshot();
        users.get(common_name).map(|entry| Principal {
            name: entry.name().to_owned(),
            role: entry.role(),
            method: AuthMethod::Certificate,
        })
    }

    /// Replaces the users (on SIGHUP) and forgets every cached check. Throttling is kept.
    pub fn reload(&self, users: Users) {
        let mut cache = self.lock_cache();
        *self.users.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(users);
        cache.entries.clear();
        cache.generation += 1;
    }

    /// How many successful checks are cached (for metrics and tests).
    #[must_use]
    pub fn cached_entries(&self) -> usize {
        self.lock_cache().entries.len()
    }

    fn snapshot(&self) -> (Arc<Users>, u64) {
        // Taken under the cache lock so that the generation matches the users.
        let cache = self.lock_cache();
        let users = Arc::clone(&self.users.read().unwrap_or_else(PoisonError::into_inner));
        (users, cache.generation)
    }

    fn check_pam(&self, name: &str, password: &str) -> Result<bool, PamCheckError> {
        match &self.pam {
            Some(pam) => pam.check(name, password),
            None => {
                self.waste_time(password);
                Ok(false)
            }
        }
    }

    /// Takes as long as checking a password of the users file, and fails.
    fn waste_time(&self, password: &str) {
        if let Some(hash) = &self.dummy_hash {
            users::verify_password(hash, password.as_bytes());
        }
    }

    fn lock_cache(&self) -> MutexGuard<'_, CredentialCache> {
        // The cache stays consistent whatever panicked while holding it.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_throttle(&self) -> MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Authenticator")
            .field("pam", &self.pam.is_some())
            .finish_non_exhaustive()
    }
}

impl AuthError {
    /// For `Throttled`, the delay in whole seconds rounded up (for a `Retry-After` header).
    #[must_use]
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            AuthError::Throttled { retry_after } => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            AuthError::Missing
            | AuthError::Malformed { .. }
            | AuthError::UnknownUserOrBadPassword
            | AuthError::Unavailable => None,
        }
    }
}

impl Principal {
    /// Whether the principal's role grants `access`.
    #[must_use]
    pub fn permits(&self, access: Access) -> bool {
        self.role.permits(access)
    }
}

impl CredentialCache {
    fn lookup(&mut self, credentials: &[u8], now: Instant) -> Option<Principal> {
        let key = self.hasher.hash_one(credentials);
        let entry = self.entries.get(&key)?;
        if now >= entry.expires {
            self.entries.remove(&key);
            return None;
        }
        if !bool::from(entry.credentials.ct_eq(credentials)) {
            return None;
        }
        Some(Principal {
            name: entry.name.clone(),
            role: entry.role,
            method: AuthMethod::Basic,
        })
    }

    fn insert(
        &mut self,
        credentials: &[u8],
        name: &str,
        role: Role,
        now: Instant,
        generation: u64,
    ) {
        if generation != self.generation {
            return;
        }
        if self.entries.len() >= CACHE_ENTRIES_MAX {
            self.entries.retain(|_, entry| entry.expires > now);
        }
        if self.entries.len() >= CACHE_ENTRIES_MAX {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.expires)
                .map(|(&key, _)| key);
            if let Some(key) = soonest {
                self.entries.remove(&key);
            }
        }
        let key = self.hasher.hash_one(credentials);
        self.entries.insert(
            key,
            CacheEntry {
                credentials: credentials.into(),
                name: name.to_owned(),
                role,
                expires: now + CACHE_ENTRY_LIFETIME,
            },
        );
    }
}

impl Throttle {
    /// `Err(retry_after)` while `peer` is refused.
    fn check(&mut self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = throttle_key(peer);
        let Some(record) = self.peers.get(&key) else {
            return Ok(());
        };
        match record.refused_until {
            Some(until) if until > now => Err(until - now),
            _ => {
                if now.saturating_duration_since(record.last_failure) >= FAILURE_MEMORY {
                    self.peers.remove(&key);
                }
                Ok(())
            }
        }
    }

    fn record_failure(&mut self, peer: IpAddr, name: &str, now: Instant) {
        let key = throttle_key(peer);
        let name = self.hasher.hash_one(name);
        if !self.peers.contains_key(&key) && self.peers.len() >= THROTTLED_PEERS_MAX {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, record)| record.last_failure)
                .map(|(&address, _)| address);
            if let Some(address) = oldest {
                self.peers.remove(&address);
            }
        }
        let record = self.peers.entry(key).or_insert(PeerFailures {
            failures: 0,
            by_name: Vec::new(),
            last_failure: now,
            refused_until: None,
        });
        if now.saturating_duration_since(record.last_failure) >= FAILURE_MEMORY {
            record.failures = 0;
            record.by_name.clear();
        }
        record.failures = record.failures.saturating_add(1);
        if let Some((_, count)) = record.by_name.iter_mut().find(|(hash, _)| *hash == name) {
            *count = count.saturating_add(1);
        } else if record.by_name.len() < THROTTLED_NAMES_MAX {
            record.by_name.push((name, 1));
        }
        record.last_failure = now;
        if record.failures >= FAILURES_BEFORE_THROTTLE {
            let doublings = (record.failures - FAILURES_BEFORE_THROTTLE).min(20);
            let delay = THROTTLE_DELAY_INITIAL
                .saturating_mul(1 << doublings)
                .min(THROTTLE_DELAY_MAX);
            record.refused_until = Some(now + delay);
        }
    }

    /// Clears the failures for `name` from `peer`, and the refusal once those left are fewer
    /// than [`FAILURES_BEFORE_THROTTLE`].
    fn record_success(&mut self, peer: IpAddr, name: &str) {
        let key = throttle_key(peer);
        let name = self.hasher.hash_one(name);
        let Some(record) = self.peers.get_mut(&key) else {
            return;
        };
        if let Some(index) = record.by_name.iter().position(|(hash, _)| *hash == name) {
            let (_, count) = record.by_name.swap_remove(index);
            record.failures = record.failures.saturating_sub(count);
        }
        if record.failures == 0 {
            self.peers.remove(&key);
        } else if record.failures < FAILURES_BEFORE_THROTTLE {
            record.refused_until = None;
        }
    }
}

/// The throttling key: an IPv4 address, or the /64 prefix of an IPv6 address (one host
/// usually owns a whole /64). IPv4-mapped IPv6 addresses count as their IPv4 address.
fn throttle_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(address) => match address.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(address) & !((1_u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// Base64 as RFC 7617 clients send it; padding is optional because some clients omit it.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The credentials token of `Basic <token>`: without the scheme, however it is spelt, and
/// the spaces around it.
fn basic_token(authorization: &str) -> Result<&str, AuthError> {
    let authorization = authorization.trim_matches(|c| c == ' ' || c == '\t');
    if authorization.is_empty() {
        return Err(AuthError::Missing);
    }
    if authorization.len() > CREDENTIALS_BYTES_MAX {
        return Err(AuthError::Malformed { reason: "too long" });
    }
    let (scheme, token) = authorization.split_once(' ').ok_or(AuthError::Malformed {
        reason: "no credentials",
    })?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Malformed {
            reason: "not Basic",
        });
    }
    Ok(token.trim_start_matches(' '))
}

/// What the cache knows a header by: its [`basic_token`] (`Basic`, `basic` and `Basic   `
/// with the same token are one entry, not a password check each); `None` for a header that
/// is not Basic.
fn cache_key(authorization: &str) -> Option<&[u8]> {
    basic_token(authorization).ok().map(str::as_bytes)
}

/// Splits `Basic base64(name:password)` (RFC 7617, UTF-8).
fn parse_basic(authorization: &str) -> Result<(String, String), AuthError> {
    let decoded = BASIC_BASE64
        .decode(basic_token(authorization)?)
        .map_err(|_| AuthError::Malformed {
            reason: "bad base64",
        })?;
    let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed {
        reason: "not UTF-8",
    })?;
    let (name, password) = text
        .split_once(':')
        .ok_or(AuthError::Malformed { reason: "no colon" })?;
    Ok((name.to_owned(), password.to_owned()))
}

/// The `WWW-Authenticate` header value of a 401 response:
/// `Basic realm="<realm>", charset="UTF-8"` (quotes and backslashes in the realm escaped).
#[must_use]
pub fn www_authenticate(realm: &str) -> String {
    let mut value = String::from("Basic realm=\"");
    for character in realm.chars() {
        if character == '"' || character == '\\' {
            value.push('\\');
        }
        if !character.is_control() {
            value.push(character);
        }
    }
    value.push_str("\", charset=\"UTF-8\"");
    value
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const OTHER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    fn basic(name: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
        )
    }

    /// alice (FULL_ADMIN, password "right"), mon (MONITOR, password "m"), pammy (pam).
    fn users() -> Users {
        let text = format!(
            "alice:FULL_ADMIN:{}\nmon:MONITOR:{}\npammy:PACKAGE_ADMIN:pam\n",
            cheap_hash("right"),
            cheap_hash("m"),
        );
        Users::parse(&text).unwrap()
    }

    fn cheap_hash(password: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    struct FakePam {
        calls: AtomicUsize,
    }

    impl PamCheck for FakePam {
        fn check(&self, name: &str, password: &str) -> Result<bool, PamCheckError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match password {
                "broken" => Err(PamCheckError("module failed".into())),
                _ => Ok(name == "pammy" && password == "pam-secret"),
            }
        }
    }

    #[test]
    fn parses_basic_headers() {
        assert_eq!(
            parse_basic(&basic("alice", "a:b é")).unwrap(),
            ("alice".into(), "a:b é".into())
        );
        assert_eq!(
            parse_basic("bAsIc   YTpi").unwrap(),
            ("a".into(), "b".into())
        );
        assert_eq!(
            parse_basic("Basic YTpiYw").unwrap(),
            ("a".into(), "bc".into())
        );
        assert_eq!(parse_basic(""), Err(AuthError::Missing));
        assert_eq!(parse_basic("  "), Err(AuthError::Missing));
        let malformed = [
            "Basic",
            "Bearer abc",
            "Basic !!!",
            "Basic YWJj", // "abc": no colon
            "Basic /w==", // 0xff: not UTF-8
        ];
        for header in malformed {
            assert!(
                matches!(parse_basic(header), Err(AuthError::Malformed { .. })),
                "{header}"
            );
        }
        let long = basic("alice", &"x".repeat(CREDENTIALS_BYTES_MAX));
        assert_eq!(
            parse_basic(&long),
            Err(AuthError::Malformed { reason: "too long" })
        );
    }

    #[test]
    fn verifies_passwords_and_reports_one_error_for_unknown_user_and_bad_password() {
        let authenticator = Authenticator::new(users());
        let now = Instant::now();
        let principal = authenticator
            .verify_basic(&basic("alice", "right"), PEER, now)
            .unwrap();
        assert_eq!(
            principal,
            Principal {
                name: "alice".into(),
                role: Role::FullAdmin,
                method: AuthMethod::Basic
            }
        );
        assert!(principal.permits(Access::Administer));
        for header in [
            basic("alice", "wrong"),
            basic("nobody", "right"),
            basic("", ""),
        ] {
            assert_eq!(
                authenticator.verify_basic(&header, OTHER_PEER, now),
                Err(AuthError::UnknownUserOrBadPassword)
            );
        }
        assert_eq!(
            authenticator.verify_basic("", PEER, now),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn caches_successes_until_they_expire_or_the_users_are_reloaded() {
        let authenticator = Authenticator::new(users());
        let start = Instant::now();
        let header = basic("alice", "right");
        assert_eq!(authenticator.cached(&header, PEER, start), None);
        assert!(authenticator.verify_slow(&header, PEER, start).is_ok());
        assert_eq!(authenticator.cached_entries(), 1);
        let hit = authenticator.cached(&header, OTHER_PEER, start + Duration::from_secs(60));
        assert_eq!(hit.unwrap().unwrap().name, "alice");
        // Failures are not cached; the scheme's spelling and spaces do not make another entry,
        // but another header does.
        assert!(authenticator
            .verify_slow(&basic("alice", "wrong"), PEER, start)
            .is_err());
        assert_eq!(
            authenticator.cached(&basic("alice", "wrong"), PEER, start),
            None
        );
        for respelt in [
            header.replace("Basic ", "basic "),
            header.replace("Basic ", "BASIC    "),
        ] {
            let hit = authenticator.cached(&respelt, PEER, start);
            assert_eq!(hit.unwrap().unwrap().name, "alice", "{respelt}");
        }
        let token = header.trim_start_matches("Basic ").to_owned();
        assert_eq!(
            authenticator.cached(&token, PEER, start),
            Some(Err(AuthError::Malformed {
                reason: "no credentials"
            }))
        );
        assert_eq!(authenticator.cached_entries(), 1);
        // Expiry.
        assert_eq!(
            authenticator.cached(&header, PEER, start + CACHE_ENTRY_LIFETIME),
            None
        );
        assert_eq!(authenticator.cached_entries(), 0);
        // Reload drops entries, and the new users apply.
        assert!(authenticator.verify_slow(&header, PEER, start).is_ok());
        let mut without_alice = users();
        without_alice.remove("alice").unwrap();
        authenticator.reload(without_alice);
        assert_eq!(authenticator.cached_entries(), 0);
        assert_eq!(authenticator.cached(&header, PEER, start), None);
        assert_eq!(
            authenticator.verify_slow(&header, PEER, start),
            Err(AuthError::UnknownUserOrBadPassword)
        );
    }

    #[test]
    fn a_check_that_started_before_a_reload_does_not_fill_the_cache() {
        let authenticator = Authenticator::new(users());
        let (users, generation) = authenticator.snapshot();
        assert_eq!(users.len(), 3);
        authenticator.reload(Users::new());
        authenticator.lock_cache().insert(
            b"Basic x",
            "alice",
            Role::FullAdmin,
            Instant::now(),
            generation,
        );
        assert_eq!(authenticator.cached_entries(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = CredentialCache {
            entries: HashMap::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            generation: 0,
        };
        let start = Instant::now();
        for index in 0..CACHE_ENTRIES_MAX + 10 {
            let credentials = format!("Basic {index}");
            let now = start + Duration::from_millis(index as u64);
            cache.insert(credentials.as_bytes(), "alice", Role::Monitor, now, 0);
        }
        assert_eq!(cache.entries.len(), CACHE_ENTRIES_MAX);
        // The ones closest to expiry (the first inserted) went.
        assert!(cache.lookup(b"Basic 0", start).is_none());
        let last = format!("Basic {}", CACHE_ENTRIES_MAX + 9);
        assert!(cache.lookup(last.as_bytes(), start).is_some());
    }

    #[test]
    fn throttles_a_peer_with_exponential_backoff_and_resets_on_success() {
        let authenticator = Authenticator::new(users());
        let wrong = basic("alice", "wrong");
        let right = basic("alice", "right");
        let mut now = Instant::now();
        for _ in 0..FAILURES_BEFORE_THROTTLE {
            assert_eq!(
                authenticator.verify_basic(&wrong, PEER, now),
                Err(AuthError::UnknownUserOrBadPassword)
            );
        }
        let refused = Err(AuthError::Throttled {
            retry_after: THROTTLE_DELAY_INITIAL,
        });
        // Refused without a check, even with the right password; other peers are not affected.
        assert_eq!(
            authenticator.cached(&right, PEER, now),
            Some(refused.clone())
        );
        assert_eq!(authenticator.verify_slow(&right, PEER, now), refused);
        assert_eq!(
            authenticator.cached(&right, PEER, now + Duration::from_millis(400)),
            Some(Err(AuthError::Throttled {
                retry_after: Duration::from_millis(600)
            }))
        );
        assert!(authenticator.verify_basic(&right, OTHER_PEER, now).is_ok());
        // The delay doubles with each further failure, up to the cap.
        let mut expected = THROTTLE_DELAY_INITIAL;
        for _ in 0..12 {
            now += expected;
            assert_eq!(
                authenticator.verify_basic(&wrong, PEER, now),
                Err(AuthError::UnknownUserOrBadPassword)
            );
            expected = (expected * 2).min(THROTTLE_DELAY_MAX);
            assert_eq!(
                authenticator.verify_basic(&wrong, PEER, now),
                Err(AuthError::Throttled {
                    retry_after: expected
                })
            );
        }
        assert_eq!(expected, THROTTLE_DELAY_MAX);
        // Success resets.
        now += expected;
        assert!(authenticator.verify_basic(&right, PEER, now).is_ok());
        assert!(authenticator.verify_slow(&wrong, PEER, now).is_err());
        assert_eq!(authenticator.cached(&wrong, PEER, now), None);
    }

    #[test]
    fn a_success_clears_its_own_users_failures_only() {
        // A client holding one good password cannot reset the count while it guesses another
        // user's: its successes clear none of the other name's failures.
        let authenticator = Authenticator::new(users());
        let guess = basic("pammy", "guess");
        let good = basic("alice", "right");
        let now = Instant::now();
        for attempt in 0..FAILURES_BEFORE_THROTTLE {
            assert_eq!(
                authenticator.verify_basic(&guess, PEER, now),
                Err(AuthError::UnknownUserOrBadPassword),
                "attempt {attempt}"
            );
            // A fresh check each time (not served from the cache), as a respelt header was,
            // until the peer is refused.
            if attempt + 1 < FAILURES_BEFORE_THROTTLE {
                assert!(authenticator.verify_slow(&good, PEER, now).is_ok());
            }
        }
        assert!(matches!(
            authenticator.verify_basic(&guess, PEER, now),
            Err(AuthError::Throttled { .. })
        ));
        // A user's own mistakes are cleared by their success.
        let mine = basic("alice", "typo");
        for _ in 0..FAILURES_BEFORE_THROTTLE - 1 {
            assert!(authenticator.verify_basic(&mine, OTHER_PEER, now).is_err());
        }
        assert!(authenticator.verify_slow(&good, OTHER_PEER, now).is_ok());
        for _ in 0..FAILURES_BEFORE_THROTTLE - 1 {
            assert_eq!(
                authenticator.verify_basic(&mine, OTHER_PEER, now),
                Err(AuthError::UnknownUserOrBadPassword)
            );
        }
    }

    #[test]
    fn forgets_old_failures() {
        let authenticator = Authenticator::new(users());
        let wrong = basic("mon", "wrong");
        let start = Instant::now();
        for _ in 0..FAILURES_BEFORE_THROTTLE - 1 {
            assert!(authenticator.verify_basic(&wrong, PEER, start).is_err());
        }
        let later = start + FAILURE_MEMORY;
        assert_eq!(
            authenticator.verify_basic(&wrong, PEER, later),
            Err(AuthError::UnknownUserOrBadPassword)
        );
        // One failure since the memory lapsed: not throttled.
        assert_eq!(authenticator.cached(&wrong, PEER, later), None);
    }

    #[test]
    fn the_throttle_table_is_bounded_and_groups_ipv6_by_prefix() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        for index in 0..THROTTLED_PEERS_MAX as u32 + 5 {
            let peer = IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + index));
            throttle.record_failure(
                peer,
                "alice",
                start + Duration::from_millis(u64::from(index)),
            );
        }
        assert_eq!(throttle.peers.len(), THROTTLED_PEERS_MAX);
        assert!(!throttle
            .peers
            .contains_key(&IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0))));

        let mut throttle = Throttle::default();
        for last in 1..=u16::try_from(FAILURES_BEFORE_THROTTLE).unwrap() {
            let peer = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, last));
            throttle.record_failure(peer, "alice", start);
        }
        let sibling = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 9, 9, 9, 9));
        let elsewhere = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 1));
        assert!(throttle.check(sibling, start).is_err());
        assert!(throttle.check(elsewhere, start).is_ok());
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(throttle_key(mapped), PEER);
    }

    #[test]
    fn maps_certificates_to_users() {
        let authenticator = Authenticator::new(users());
        assert_eq!(
            authenticator.principal_for_certificate("pammy"),
            Some(Principal {
                name: "pammy".into(),
                role: Role::PackageAdmin,
                method: AuthMethod::Certificate
            })
        );
        assert_eq!(authenticator.principal_for_certificate("nobody"), None);
        authenticator.reload(Users::new());
        assert_eq!(authenticator.principal_for_certificate("pammy"), None);
    }

    #[test]
    fn pam_users_are_checked_by_pam_when_configured() {
        let right = basic("pammy", "pam-secret");
        let without = Authenticator::new(users());
        assert_eq!(
            without.verify_basic(&right, PEER, Instant::now()),
            Err(AuthError::UnknownUserOrBadPassword)
        );
        let pam = Box::new(FakePam {
            calls: AtomicUsize::new(0),
        });
        let with = Authenticator::new(users()).with_pam(pam);
        let principal = with.verify_basic(&right, PEER, Instant::now()).unwrap();
        assert_eq!(principal.role, Role::PackageAdmin);
        assert_eq!(
            with.verify_basic(&basic("pammy", "nope"), PEER, Instant::now()),
            Err(AuthError::UnknownUserOrBadPassword)
        );
        assert_eq!(
            with.verify_basic(&basic("pammy", "broken"), PEER, Instant::now()),
            Err(AuthError::Unavailable)
        );
        // Users with a hash never reach PAM.
        assert!(with
            .verify_basic(&basic("alice", "right"), PEER, Instant::now())
            .is_ok());
    }

    #[tokio::test]
    async fn verifies_off_the_runtime() {
        let authenticator = Arc::new(Authenticator::new(users()));
        let now = Instant::now();
        let header = basic("mon", "m");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let authenticator = Arc::clone(&authenticator);
                let header = header.clone();
                tokio::spawn(
                    async move { authenticator.verify_basic_async(&header, PEER, now).await },
                )
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().role, Role::Monitor);
        }
        assert_eq!(
            authenticator
                .verify_basic_async(&basic("mon", "x"), PEER, now)
                .await,
            Err(AuthError::UnknownUserOrBadPassword)
        );
    }

    #[test]
    fn formats_www_authenticate_and_retry_after() {
        assert_eq!(
            www_authenticate("cimguard"),
            "Basic realm=\"cimguard\", charset=\"UTF-8\""
        );
        assert_eq!(
            www_authenticate("a\"b\\c\n"),
            "Basic realm=\"a\\\"b\\\\c\", charset=\"UTF-8\""
        );
        let throttled = AuthError::Throttled {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(throttled.retry_after_seconds(), Some(2));
        assert_eq!(AuthError::Missing.retry_after_seconds(), None);
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Authenticator>();
    }
}
