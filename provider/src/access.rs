//! The cluster's access policy applied to the agent's users (serviceguard.md 0.4 and 3.1).
//!
//! The users file authenticates a user and gives the role the node's administrator granted.
//! The cluster's policy can grant more: every USER_NAME / USER_HOST / USER_ROLE triple of the
//! cluster file that names the user (or ANY_USER) from the host the request comes from, and,
//! for one package, the user_name / user_host lines of its package file (PACKAGE_ADMIN of that
//! package). A user's role is the highest of these. The policy never takes away what the
//! users file grants: the users file is the node's own grant, as root's rights on a
//! Serviceguard node are.
//!
//! USER_HOST: CLUSTER_MEMBER_NODE matches a request from an address of a node of the cluster
//! (or from this node's loopback); ANY_SERVICEGUARD_NODE matches any host (the agent cannot
//! tell which hosts run a cluster); a host name matches its addresses (an IP address written
//! as the host, or the name's resolution by the system resolver, kept for a minute).
//!
//! A request from outside the cluster (not from a node's address, not from loopback) gets
//! MONITOR at most from the policy, whatever its triples grant, and no package's
//! PACKAGE_ADMIN. Serviceguard says so twice: "If you set USER_HOST to ANY_SERVICEGUARD_NODE,
//! set USER_ROLE to MONITOR; users connecting from outside the cluster cannot have any higher
//! privileges" (Managing HP Serviceguard A.11.20.10 for Linux, p. 155), and "A remote user
//! (one who is not logged in to a node in the cluster ...) can have only Monitor access to
//! the cluster. ... configuring Full Admin or Package Admin for remote users gives them
//! Monitor capabilities" (Managing Serviceguard, 15th edition, p. 242), which holds for a
//! named USER_HOST outside the cluster too. CLUSTER_MEMBER_NODE only ever matches the
//! cluster's nodes. The users file's own grant is not capped: the node's administrator gave
//! it.
//!
//! The manuals say nothing against ANY_USER given FULL_ADMIN: it stands, and reaches only
//! requests from the cluster's nodes (anyone else gets MONITOR, as above).

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cimguard_cluster::config::cluster::{Role as ClusterRole, UserHost};
use cimguard_cluster::runtime::daemon::AccessView;

use crate::auth::Role;

/// Where the agent learns the policy in effect.
pub trait AccessPolicySource: Send + Sync {
    /// The highest role the cluster's policy gives `user` connecting from `peer`.
    fn cluster_role(&self, user: &str, peer: IpAddr) -> Option<Role>;
    /// Whether package `package`'s policy makes `user`, connecting from `peer`, its
    /// PACKAGE_ADMIN.
    fn package_admin(&self, user: &str, peer: IpAddr, package: &str) -> bool;
}

/// How long a fetched policy answers authentications. A cmapplyconf carried out through this
/// agent takes effect here once it returns (the Serviceguard provider forgets the policy after
/// every command, and offers the policy of every status it fetches, the one cmapplyconf waits
/// for included); one carried out through another node, within this.
pub const POLICY_FRESH_FOR: Duration = Duration::from_secs(1);

/// How long, after the policy could not be fetched (the daemon does not answer),
/// authentications go on without it, the users file's roles alone, before it is fetched again:
/// a stopped daemon does not cost every request a failed connection.
pub const POLICY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The policy last fetched, or that none could be, and when: authentications cost the
/// daemon at most one fetch in [`POLICY_FRESH_FOR`]. A status fetched for another reason is
/// offered too ([`PolicyCache::offer`]), so that whoever saw a configuration generation in
/// effect (cmapplyconf waits for its own) sees its policy from then on.
#[derive(Debug, Default)]
pub struct PolicyCache {
    last: Mutex<Option<Fetched>>,
    /// Held over a fetch, so that a burst of authentications costs one fetch; `last` is held
    /// only briefly, so that an offer or a forget never waits on a daemon slow to answer
    /// (a status fetch may take its whole timeout).
    fetching: Mutex<()>,
    /// Counts forgets: a fetch that began before one does not keep its answer.
    forgets: AtomicU64,
}

/// What the last fetch brought.
#[derive(Debug)]
struct Fetched {
    at: Instant,
    /// The policy and the configuration generation it is of; `None` when the fetch failed.
    policy: Option<(u64, Arc<AccessView>)>,
}

impl PolicyCache {
    /// The policy at `now`: the one fetched within [`POLICY_FRESH_FOR`]; none when the last
    /// fetch, within [`POLICY_RETRY_AFTER`], failed; else the one `fetch` brings (with its
    /// configuration generation), or none when it fails.
    pub fn view(
        &self,
        now: Instant,
        fetch: impl FnOnce() -> Result<(u64, AccessView), String>,
    ) -> Option<Arc<AccessView>> {
        if let Some(answer) = self.held(now) {
            return answer;
        }
        let _fetching = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        // Another fetch may have answered while this one waited for its turn.
        if let Some(answer) = self.held(now) {
            return answer;
        }
        let forgets = self.forgets.load(Ordering::SeqCst);
        let policy = match fetch() {
            Ok((generation, view)) => Some((generation, Arc::new(view))),
            Err(reason) => {
                tracing::debug!(
                    %reason,
                    "no cluster access policy: the users file's roles stand alone"
                );
                None
            }
        };
        let view = policy.as_ref().map(|(_, view)| view.clone());
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        // Kept unless forgotten, or overtaken by a status offered, while it was fetched.
        let overtaken = last.as_ref().is_some_and(|fetched| fetched.at > now);
        if !overtaken && self.forgets.load(Ordering::SeqCst) == forgets {
            *last = Some(Fetched { at: now, policy });
        }
        view
    }

    /// The answer held at `now`, if it is fresh, without fetching: the policy, or none after
    /// a failed fetch. `None` when a [`PolicyCache::view`] would have to fetch.
    pub fn held(&self, now: Instant) -> Option<Option<Arc<AccessView>>> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let fetched = last.as_ref()?;
        let fresh_for = if fetched.policy.is_some() {
            POLICY_FRESH_FOR
        } else {
            POLICY_RETRY_AFTER
        };
        (now.saturating_duration_since(fetched.at) < fresh_for)
            .then(|| fetched.policy.as_ref().map(|(_, view)| view.clone()))
    }

    /// `view`, of configuration generation `generation`, fetched at `now` with the rest of
    /// a status: kept unless the policy held is of a later generation, or of the same one
    /// fetched later.
    pub fn offer(&self, now: Instant, generation: u64, view: AccessView) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let newer = match last.as_ref() {
            Some(Fetched {
                at,
                policy: Some((held, _)),
            }) => (generation, now) >= (*held, *at),
            _ => true,
        };
        if newer {
            *last = Some(Fetched {
                at: now,
                policy: Some((generation, Arc::new(view))),
            });
        }
    }

    /// Forgets the policy: the next [`PolicyCache::view`] fetches it, and a fetch under way
    /// does not keep its answer.
    pub fn forget(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// How long a host name's resolution is kept.
const RESOLVED_FOR: Duration = Duration::from_secs(60);

/// The most host names kept resolved.
const RESOLVED_MAX: usize = 256;

/// Resolves USER_HOST names, keeping each answer for [`RESOLVED_FOR`].
#[derive(Debug, Default)]
pub struct Resolver {
    cache: Mutex<HashMap<String, (Instant, Vec<IpAddr>)>>,
}

impl Resolver {
    /// Whether [`Resolver::addresses`] of `host` answers without resolving: an address, or a
    /// name resolved less than [`RESOLVED_FOR`] ago.
    pub fn is_known(&self, host: &str) -> bool {
        self.known(host, Instant::now()).is_some()
    }

    /// The addresses of `host` if they need no resolving at `now`.
    fn known(&self, host: &str, now: Instant) -> Option<Vec<IpAddr>> {
        if let Ok(address) = host.parse::<IpAddr>() {
            return Some(vec![address]);
        }
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, addresses) = cache.get(host)?;
        (now.duration_since(*at) < RESOLVED_FOR).then(|| addresses.clone())
    }

    /// The addresses of `host` (an address itself, or a name).
    pub fn addresses(&self, host: &str) -> Vec<IpAddr> {
        let now = Instant::now();
        if let Some(addresses) = self.known(host, now) {
            return addresses;
        }
        let cache = || self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // Resolved without the lock: a slow name must not hold up the others' requests.
        let addresses: Vec<IpAddr> = (host, 0)
            .to_socket_addrs()
            .map(|found| found.map(|a| a.ip()).collect())
            .unwrap_or_default();
        let mut cache = cache();
        if cache.len() >= RESOLVED_MAX {
            cache.retain(|_, (at, _)| now.duration_since(*at) < RESOLVED_FOR);
            if cache.len() >= RESOLVED_MAX {
                cache.clear();
            }
        }
        cache.insert(host.to_owned(), (now, addresses.clone()));
        addresses
    }
}

fn role(role: ClusterRole) -> Role {
    match role {
        ClusterRole::Monitor => Role::Monitor,
        ClusterRole::PackageAdmin => Role::PackageAdmin,
        ClusterRole::FullAdmin => Role::FullAdmin,
    }
}

/// Whether `peer` is a node of the cluster: one of the nodes' addresses, or this node's
/// loopback.
fn from_cluster_node(view: &AccessView, peer: IpAddr) -> bool {
    let peer = canonical(peer);
    peer.is_loopback() || view.node_addresses.iter().any(|a| canonical(*a) == peer)
}

/// Whether `host` (a USER_HOST) matches a request from `peer`.
fn host_matches(view: &AccessView, host: &UserHost, peer: IpAddr, resolver: &Resolver) -> bool {
    let peer = canonical(peer);
    match host {
        UserHost::AnyServiceguardNode => true,
        UserHost::ClusterMemberNode => from_cluster_node(view, peer),
        UserHost::Host(name) => resolver
            .addresses(name)
            .into_iter()
            .any(|a| canonical(a) == peer),
    }
}

/// Whether [`cluster_role`] of `view` answers without resolving a host name.
pub fn resolves_from_memory(view: &AccessView, resolver: &Resolver) -> bool {
    view.cluster.iter().all(|p| match &p.host {
        UserHost::Host(name) => resolver.is_known(name),
        UserHost::AnyServiceguardNode | UserHost::ClusterMemberNode => true,
    })
}

/// The highest role the cluster file's triples give `user` from `peer`: MONITOR at most when
/// `peer` is not a node of the cluster.
pub fn cluster_role(
    view: &AccessView,
    user: &str,
    peer: IpAddr,
    resolver: &Resolver,
) -> Option<Role> {
    let granted = view
        .cluster
        .iter()
        .filter(|p| p.user.as_deref().is_none_or(|u| u == user))
        .filter(|p| host_matches(view, &p.host, peer, resolver))
        .map(|p| role(p.role))
        .max()?;
    if from_cluster_node(view, peer) {
        Some(granted)
    } else {
        Some(granted.min(Role::Monitor))
    }
}

/// Whether package `package`'s lines make `user` from `peer` its PACKAGE_ADMIN: never when
/// `peer` is not a node of the cluster.
pub fn package_admin(
    view: &AccessView,
    user: &str,
    peer: IpAddr,
    package: &str,
    resolver: &Resolver,
) -> bool {
    if !from_cluster_node(view, peer) {
        return false;
    }
    view.packages.get(package).is_some_and(|lines| {
        lines.iter().any(|(name, host)| {
            name.as_deref().is_none_or(|u| u == user)
                && host_matches(view, &user_host(host), peer, resolver)
        })
    })
}

/// A package file's user_host as the cluster file's USER_HOST.
fn user_host(text: &str) -> UserHost {
    if text.eq_ignore_ascii_case("CLUSTER_MEMBER_NODE") {
        UserHost::ClusterMemberNode
    } else if text.eq_ignore_ascii_case("ANY_SERVICEGUARD_NODE") {
        UserHost::AnyServiceguardNode
    } else {
        UserHost::Host(text.to_owned())
    }
}

/// An IPv4-mapped IPv6 address as IPv4 (a dual-stack listener reports those).
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cimguard_cluster::config::cluster::AccessPolicy;

    use super::*;

    fn policy(user: Option<&str>, host: UserHost, role: ClusterRole) -> AccessPolicy {
        AccessPolicy {
            user: user.map(str::to_owned),
            host,
            role,
        }
    }

    fn table() -> AccessView {
        AccessView {
            cluster: vec![
                policy(None, UserHost::AnyServiceguardNode, ClusterRole::Monitor),
                policy(
                    Some("ops"),
                    UserHost::ClusterMemberNode,
                    ClusterRole::FullAdmin,
                ),
                policy(
                    Some("dba"),
                    UserHost::Host("192.0.2.7".into()),
                    ClusterRole::PackageAdmin,
                ),
            ],
            packages: BTreeMap::from([(
                "dbpkg".to_owned(),
                vec![(Some("web".to_owned()), "CLUSTER_MEMBER_NODE".to_owned())],
            )]),
            node_addresses: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
        }
    }

    #[test]
    fn the_highest_matching_role_wins() {
        let (table, resolver) = (table(), Resolver::default());
        let member: IpAddr = "10.0.0.2".parse().unwrap();
        let outside: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            cluster_role(&table, "ops", member, &resolver),
            Some(Role::FullAdmin)
        );
        assert_eq!(
            cluster_role(&table, "ops", "::ffff:10.0.0.1".parse().unwrap(), &resolver),
            Some(Role::FullAdmin)
        );
        assert_eq!(
            cluster_role(&table, "ops", "127.0.0.1".parse().unwrap(), &resolver),
            Some(Role::FullAdmin)
        );
        // Not from a member node: ANY_USER's MONITOR only.
        assert_eq!(
            cluster_role(&table, "ops", outside, &resolver),
            Some(Role::Monitor)
        );
        assert_eq!(
            cluster_role(&table, "dba", member, &resolver),
            Some(Role::Monitor)
        );
        assert_eq!(
            cluster_role(&table, "anyone", outside, &resolver),
            Some(Role::Monitor)
        );
        assert_eq!(
            cluster_role(&AccessView::default(), "ops", member, &resolver),
            None
        );
    }

    #[test]
    fn any_serviceguard_node_grants_monitor_at_most_from_outside_the_cluster() {
        let resolver = Resolver::default();
        let mut table = table();
        table.cluster.push(policy(
            Some("remote"),
            UserHost::AnyServiceguardNode,
            ClusterRole::FullAdmin,
        ));
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            cluster_role(&table, "remote", outside, &resolver),
            Some(Role::Monitor)
        );
        assert_eq!(
            cluster_role(
                &table,
                "remote",
                "::ffff:192.0.2.1".parse().unwrap(),
                &resolver
            ),
            Some(Role::Monitor)
        );
        for node in [
            "10.0.0.1",
            "::ffff:10.0.0.2",
            "127.0.0.1",
            "127.0.0.2",
            "::1",
        ] {
            assert_eq!(
                cluster_role(&table, "remote", node.parse().unwrap(), &resolver),
                Some(Role::FullAdmin),
                "from {node}"
            );
        }
    }

    #[test]
    fn a_named_host_grants_monitor_at_most_unless_it_is_a_node() {
        let resolver = Resolver::default();
        let mut table = table();
        table.cluster.push(policy(
            Some("dba"),
            UserHost::Host("10.0.0.1".into()),
            ClusterRole::FullAdmin,
        ));
        // 192.0.2.7 is named, but is not a node of the cluster.
        assert_eq!(
            cluster_role(&table, "dba", "192.0.2.7".parse().unwrap(), &resolver),
            Some(Role::Monitor)
        );
        assert_eq!(
            cluster_role(&table, "dba", "10.0.0.1".parse().unwrap(), &resolver),
            Some(Role::FullAdmin)
        );
        // A name that resolves to loopback: this node.
        table.cluster.push(policy(
            Some("local"),
            UserHost::Host("localhost".into()),
            ClusterRole::PackageAdmin,
        ));
        assert_eq!(
            cluster_role(&table, "local", "127.0.0.1".parse().unwrap(), &resolver),
            Some(Role::PackageAdmin)
        );
    }

    #[test]
    fn package_lines_grant_nothing_from_outside_the_cluster() {
        let resolver = Resolver::default();
        let mut table = table();
        table.packages.insert(
            "webpkg".to_owned(),
            vec![(None, "ANY_SERVICEGUARD_NODE".to_owned())],
        );
        assert!(!package_admin(
            &table,
            "anyone",
            "192.0.2.1".parse().unwrap(),
            "webpkg",
            &resolver
        ));
        assert!(package_admin(
            &table,
            "anyone",
            "10.0.0.2".parse().unwrap(),
            "webpkg",
            &resolver
        ));
        assert!(package_admin(
            &table,
            "anyone",
            "127.0.0.1".parse().unwrap(),
            "webpkg",
            &resolver
        ));
    }

    #[test]
    fn package_lines_grant_that_package_only() {
        let (table, resolver) = (table(), Resolver::default());
        let member: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(package_admin(&table, "web", member, "dbpkg", &resolver));
        assert!(!package_admin(&table, "web", member, "webpkg", &resolver));
        assert!(!package_admin(
            &table,
            "web",
            "198.51.100.1".parse().unwrap(),
            "dbpkg",
            &resolver
        ));
        assert!(!package_admin(&table, "ops", member, "dbpkg", &resolver));
    }

    #[test]
    fn the_policy_is_fetched_once_a_second_and_a_failure_too() {
        let cache = PolicyCache::default();
        let fetches = std::cell::Cell::new(0);
        let answer = |view: Result<AccessView, String>| {
            let fetches = &fetches;
            move || {
                fetches.set(fetches.get() + 1);
                view.map(|view| (1, view))
            }
        };
        let start = Instant::now();
        let first = cache.view(start, answer(Ok(table()))).unwrap();
        assert_eq!(first.cluster.len(), 3);
        // Within the second: the same policy, no fetch, even were the daemon gone.
        let later = start + POLICY_FRESH_FOR - Duration::from_millis(1);
        let again = cache.view(later, answer(Err("down".into()))).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(fetches.get(), 1);
        // After it: fetched again; a daemon that does not answer leaves no policy, and is
        // not asked again for a second.
        let expired = start + POLICY_FRESH_FOR;
        assert!(cache.view(expired, answer(Err("down".into()))).is_none());
        assert_eq!(fetches.get(), 2);
        let retry = expired + POLICY_RETRY_AFTER - Duration::from_millis(1);
        assert!(cache.view(retry, answer(Ok(table()))).is_none());
        assert_eq!(fetches.get(), 2);
        let back = expired + POLICY_RETRY_AFTER;
        let empty = cache.view(back, answer(Ok(AccessView::default()))).unwrap();
        assert!(empty.cluster.is_empty());
        assert_eq!(fetches.get(), 3);
        // Forgotten (a command changed the cluster): fetched at once.
        cache.forget();
        let fresh = cache.view(back, answer(Ok(table()))).unwrap();
        assert_eq!(fresh.cluster.len(), 3);
        assert_eq!(fetches.get(), 4);
    }

    #[test]
    fn a_status_fetched_for_the_model_brings_a_later_generation_at_once() {
        let cache = PolicyCache::default();
        let start = Instant::now();
        let unused = || -> Result<(u64, AccessView), String> { panic!("fetched") };
        let _ = cache.view(start, || Ok((4, table())));
        // The generation cmapplyconf waited for: its policy, though the last is fresh.
        cache.offer(start + Duration::from_millis(5), 5, AccessView::default());
        let now = start + Duration::from_millis(10);
        assert!(cache.view(now, unused).unwrap().cluster.is_empty());
        // A status of an earlier generation, or of the same one fetched before, does not
        // take its place.
        cache.offer(start + Duration::from_millis(6), 4, table());
        cache.offer(start + Duration::from_millis(4), 5, table());
        assert!(cache.view(now, unused).unwrap().cluster.is_empty());
        // After a failed fetch, any status is news.
        let cache = PolicyCache::default();
        assert!(cache.view(start, || Err("down".into())).is_none());
        cache.offer(start, 1, table());
        assert_eq!(cache.view(now, unused).unwrap().cluster.len(), 3);
    }

    #[test]
    fn offers_and_forgets_do_not_wait_for_a_slow_fetch() {
        let cache = Arc::new(PolicyCache::default());
        let (inside, fetch_started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let start = Instant::now();
        let fetcher = {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                let mut waited_out = false;
                let view = cache.view(start, || {
                    inside.send(()).unwrap();
                    // A daemon slow to answer; the test releases it once the offer is in.
                    waited_out = released.recv_timeout(Duration::from_secs(20)).is_err();
                    Ok((4, table()))
                });
                (view, waited_out)
            })
        };
        fetch_started
            .recv_timeout(Duration::from_secs(20))
            .expect("the fetch starts");
        // Neither waits for the fetch: had they, the fetch would have waited out its 20 s.
        cache.forget();
        cache.offer(start + Duration::from_millis(1), 5, AccessView::default());
        release.send(()).unwrap();
        let (view, waited_out) = fetcher.join().unwrap();
        assert!(!waited_out, "an offer or a forget waited for the fetch");
        // The fetch's caller has its answer; the cache keeps the newer offer.
        assert_eq!(view.unwrap().cluster.len(), 3);
        let unused = || -> Result<(u64, AccessView), String> { panic!("fetched") };
        let now = start + Duration::from_millis(2);
        assert!(cache.view(now, unused).unwrap().cluster.is_empty());
    }

    #[test]
    fn host_names_resolve() {
        let resolver = Resolver::default();
        assert!(resolver
            .addresses("localhost")
            .iter()
            .any(IpAddr::is_loopback));
        assert_eq!(
            resolver.addresses("192.0.2.1"),
            vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        assert!(resolver.addresses("no-such-host.invalid").is_empty());
    }
}
