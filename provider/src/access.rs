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

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Mutex;
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
    /// The addresses of `host` (an address itself, or a name).
    pub fn addresses(&self, host: &str) -> Vec<IpAddr> {
        if let Ok(address) = host.parse::<IpAddr>() {
            return vec![address];
        }
        let now = Instant::now();
        let cache = || {
            self.cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((at, addresses)) = cache().get(host) {
            if now.duration_since(*at) < RESOLVED_FOR {
                return addresses.clone();
            }
        }
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

/// Whether `host` (a USER_HOST) matches a request from `peer`.
fn host_matches(view: &AccessView, host: &UserHost, peer: IpAddr, resolver: &Resolver) -> bool {
    let peer = canonical(peer);
    match host {
        UserHost::AnyServiceguardNode => true,
        UserHost::ClusterMemberNode => {
            peer.is_loopback() || view.node_addresses.iter().any(|a| canonical(*a) == peer)
        }
        UserHost::Host(name) => resolver
            .addresses(name)
            .into_iter()
            .any(|a| canonical(a) == peer),
    }
}

/// The highest role the cluster file's triples give `user` from `peer`.
pub fn cluster_role(
    view: &AccessView,
    user: &str,
    peer: IpAddr,
    resolver: &Resolver,
) -> Option<Role> {
    view.cluster
        .iter()
        .filter(|p| p.user.as_deref().is_none_or(|u| u == user))
        .filter(|p| host_matches(view, &p.host, peer, resolver))
        .map(|p| role(p.role))
        .max()
}

/// Whether package `package`'s lines make `user` from `peer` its PACKAGE_ADMIN.
pub fn package_admin(
    view: &AccessView,
    user: &str,
    peer: IpAddr,
    package: &str,
    resolver: &Resolver,
) -> bool {
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
            cluster_role(&table, "dba", "192.0.2.7".parse().unwrap(), &resolver),
            Some(Role::PackageAdmin)
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
