//! The state every request shares: configuration, the object manager, the enumeration
//! contexts, the authenticator and the audit log; and the steps of a request that need them:
//! authentication, authorization by role, the audit of state changes, the per-operation time
//! limit.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cim_schema::model::ObjectPath;
use cim_schema::xml::{IMethodCall, MethodCall, MethodResponse};
use http::HeaderMap;

use crate::auth::{
    Access, AuditEntry, AuditLog, AuditOutcome, AuthError, AuthMethod, Authenticator, Principal,
    Role,
};
use crate::cimom::ObjectManager;
use crate::config::ServerConfig;
use crate::error::OperationError;
use crate::http::ProtocolError;
use crate::operations::{self, Outcome};
use crate::pull::Contexts;

/// The classes whose methods need PACKAGE_ADMIN (not FULL_ADMIN): packages, and the generic
/// resources packages depend on (cmsetresource).
const PACKAGE_CLASSES: &[&str] = &["HP_SGPackage", "HP_SGGenericResource"];

/// Methods that only read: any user may call them (class, method).
const READ_METHODS: &[(&str, &str)] = &[
    ("HP_SGClusteringService", "GetView"),
    ("HP_SGClusteringService", "GetConfiguration"),
    // cmrunpkg -t, cmhaltpkg -t, cmmodpkg -t: nothing is done.
    ("HP_SGClusteringService", "PreviewPackageCommands"),
    // cmruncl -t: nothing is done.
    ("HP_SGClusteringService", "PreviewRunCluster"),
    // DSP1033's queries of a registered profile's conformant instances.
    ("CIM_RegisteredProfile", "OpenConformantInstances"),
    ("CIM_RegisteredProfile", "PullConformantInstances"),
    ("CIM_RegisteredProfile", "CloseConformantInstances"),
    ("CIM_RegisteredProfile", "GetCentralInstances"),
];

/// The interop classes a MONITOR may create, modify and delete (their own instances).
const SUBSCRIPTION_CLASSES: &[&str] = &[
    "CIM_IndicationFilter",
    "CIM_ListenerDestination",
    "CIM_AbstractIndicationSubscription",
];

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The remote address ([`Peer::LOCAL_ADDRESS`] on the local socket, which has none).
    pub address: SocketAddr,
    /// The common name of a verified TLS client certificate.
    pub certificate_name: Option<Arc<str>>,
    /// The kernel's credentials of a process on the local socket
    /// ([`crate::config::ServerConfig::local_socket`]); `None` over TCP.
    pub local_user: Option<LocalUser>,
    /// True over HTTPS; false over plain HTTP (TCP or the local socket).
    pub tls: bool,
}

impl Peer {
    /// The address a local socket's peer is given where one is needed (the audit log): this
    /// host's loopback, port 0.
    pub const LOCAL_ADDRESS: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

    /// A process on the local socket.
    pub fn local(user: LocalUser) -> Peer {
        Peer {
            address: Peer::LOCAL_ADDRESS,
            certificate_name: None,
            local_user: Some(user),
            tls: false,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.local_user {
            Some(LocalUser {
                uid,
                pid: Some(pid),
            }) => {
                write!(f, "local socket (uid {uid}, pid {pid})")
            }
            Some(LocalUser { uid, pid: None }) => write!(f, "local socket (uid {uid})"),
            None => write!(f, "{}", self.address),
        }
    }
}

/// The kernel's credentials (`SO_PEERCRED`) of a process connected to the local socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalUser {
    /// Its effective user id when it connected.
    pub uid: u32,
    /// Its process id, when the kernel tells it.
    pub pid: Option<i32>,
}

/// The server's shared state.
pub struct Service {
    /// The configuration it was started with.
    pub config: ServerConfig,
    /// Classes and providers.
    pub manager: Arc<ObjectManager>,
    /// Open enumeration contexts.
    pub contexts: Arc<Contexts>,
    /// Spool files that may be in use at once ([`crate::config::Limits::spooled_responses_max`]).
    pub spools: Arc<tokio::sync::Semaphore>,
    /// Checks credentials; `None` only with `danger_allow_anonymous`.
    pub authenticator: Option<Arc<Authenticator>>,
    /// Where state changes are recorded, if anywhere.
    pub audit: Option<AuditLog>,
    /// What `GET /metrics` answers, if anything.
    pub metrics: Option<Arc<dyn crate::metrics::Metrics>>,
    /// The cluster's access policy, which can raise a user's role (see [`crate::access`]).
    pub access_policy: Option<Arc<dyn crate::access::AccessPolicySource>>,
}

impl Service {
    /// A service over `manager`.
    pub fn new(
        config: ServerConfig,
        manager: ObjectManager,
        authenticator: Option<Arc<Authenticator>>,
        audit: Option<AuditLog>,
    ) -> Service {
        let contexts = Arc::new(Contexts::new(config.limits.contexts.clone()));
        let spools = Arc::new(tokio::sync::Semaphore::new(
            config.limits.spooled_responses_max,
        ));
        Service {
            config,
            manager: Arc::new(manager),
            contexts,
            spools,
            authenticator,
            audit,
            metrics: None,
            access_policy: None,
        }
    }

    /// The principal of a request: on the local socket, the peer's kernel credentials
    /// ([`local_principal`]; an `Authorization` header there is ignored); else the user a
    /// verified client certificate names, else the user of the `Authorization: Basic`
    /// header; anonymous (FULL_ADMIN) only with `danger_allow_anonymous`, for requests
    /// without credentials (or any request when there is no users file). Credentials sent
    /// with a certificate that names a user must hold too, and name that user: a wrong
    /// password never gets in, and a request never has two identities.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Principal, ProtocolError> {
        if let Some(user) = peer.local_user {
            return local_principal(user, nix::unistd::geteuid().as_raw());
        }
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or("\u{1}"));
        if let Some(authenticator) = &self.authenticator {
            let by_certificate = peer
                .certificate_name
                .as_ref()
                .and_then(|name| authenticator.principal_for_certificate(name));
            if let Some(authorization) = authorization {
                // A password sent in clear beyond this host is refused, not checked: a
                // plain-HTTP listener beyond loopback exists only by the danger flag, and
                // taking the password there would make it the way in.
                if !peer.tls && !peer.address.ip().is_loopback() {
                    tracing::warn!(
                        peer = %peer,
                        "basic credentials over plain http from beyond loopback refused"
                    );
                    return Err(ProtocolError::CleartextCredentials);
                }
                let principal = authenticator
                    .verify_basic_async(authorization, peer.address.ip(), Instant::now())
                    .await
                    .map_err(|error| auth_error(&error, peer))?;
                let principal = match by_certificate {
                    Some(certified) if certified.name != principal.name => {
                        tracing::info!(
                            peer = %peer.address,
                            certificate = %certified.name,
                            basic = %principal.name,
                            "authentication failed: the credentials name another user than \
                             the client certificate"
                        );
                        return Err(ProtocolError::Unauthorized);
                    }
                    Some(certified) => certified,
                    None => principal,
                };
                return Ok(self.with_policy(principal, peer));
            }
            if let Some(certified) = by_certificate {
                return Ok(self.with_policy(certified, peer));
            }
        }
        // Without a users file, credentials cannot be checked: in anonymous mode they are
        // ignored rather than refused, so that clients configured with some still work.
        if self.config.danger_allow_anonymous
            && (authorization.is_none() || self.authenticator.is_none())
        {
            return Ok(Principal {
                name: "anonymous".into(),
                role: Role::FullAdmin,
                method: AuthMethod::Basic,
            });
        }
        Err(ProtocolError::Unauthorized)
    }

    /// `principal` with the role the cluster's access policy gives it from `peer`, when that
    /// is higher than the users file's.
    fn with_policy(&self, mut principal: Principal, peer: &Peer) -> Principal {
        if let Some(policy) = &self.access_policy {
            // The policy may need the daemon's status: read off the runtime's workers.
            let role = crate::serviceguard::blocking(|| {
                policy.cluster_role(&principal.name, peer.address.ip())
            });
            if let Some(role) = role.filter(|r| *r > principal.role) {
                principal.role = role;
            }
        }
        principal
    }

    /// Whether package `package`'s own policy makes `principal` its PACKAGE_ADMIN.
    fn package_admin(&self, principal: &Principal, peer: &Peer, package: &str) -> bool {
        self.access_policy
            .as_ref()
            .is_some_and(|policy| policy.package_admin(&principal.name, peer.address.ip(), package))
    }

    /// Runs an intrinsic operation for `principal`: authorized, audited when it changes state,
    /// within the per-operation time limit.
    pub fn intrinsic(
        &self,
        principal: &Principal,
        peer: &Peer,
        call: &IMethodCall,
    ) -> Result<Outcome, OperationError> {
        let effect = operations::effect(call.name.as_str());
        let result = self
            .authorize_intrinsic(principal, call)
            .and_then(|()| operations::execute(&self.manager, &self.contexts, principal, call));
        if effect == operations::Effect::Write {
            // SetProperty's value is written when the property is a boolean or a number.
            let plain = |class: &str, property: &str| {
                self.manager
                    .namespace(&call.namespace)
                    .ok()
                    .and_then(|namespace| self.manager.class(&namespace, class).ok())
                    .and_then(|class| class.property(property))
                    .is_some_and(|declared| {
                        !declared.is_array
                            && (declared.cim_type.is_integer()
                                || declared.cim_type == cim_schema::model::CimType::Boolean)
                    })
            };
            // A created instance is named by the path the server gave it.
            let created = match &result {
                Ok(Outcome::Items(items)) if call.name.matches("CreateInstance") => {
                    match items.as_slice() {
                        [cim_schema::xml::Data::InstanceName(path)] => Some(path),
                        _ => None,
                    }
                }
                _ => None,
            };
            let target = describe_target(call, created, plain);
            let description = result.as_ref().err().map(ToString::to_string);
            let error = result
                .as_ref()
                .err()
                .map(OperationError::code)
                .zip(description.as_deref());
            self.record(principal, peer, call.name.as_str(), &target, error);
        }
        let deadline = Instant::now() + self.config.limits.operation_time_max;
        Ok(match result? {
            Outcome::Stream(items) => Outcome::Stream(Box::new(Deadline::new(
                items,
                deadline,
                self.config.limits.operation_time_max,
            ))),
            other => other,
        })
    }

    fn authorize_intrinsic(
        &self,
        principal: &Principal,
        call: &IMethodCall,
    ) -> Result<(), OperationError> {
        let access = match operations::effect(call.name.as_str()) {
            operations::Effect::Read => Access::Read,
            operations::Effect::Write => {
                let class = operations::target_class(call);
                let namespace = self.manager.namespace(&call.namespace)?;
                let subscription = class.as_ref().is_some_and(|class| {
                    SUBSCRIPTION_CLASSES.iter().any(|s| {
                        self.manager
                            .repository()
                            .is_a(&namespace, class.as_str(), s)
                    })
                });
                if subscription {
                    Access::OwnSubscription
                } else {
                    Access::Administer
                }
            }
        };
        permit(principal, access, call.name.as_str())
    }

    /// Runs an extrinsic method for `principal`, authorized and audited.
    pub fn extrinsic(
        &self,
        principal: &Principal,
        peer: &Peer,
        call: &MethodCall,
    ) -> MethodResponse {
        let read_only = READ_METHODS.iter().any(|(class, method)| {
            call.target
                .class_name()
                .as_str()
                .eq_ignore_ascii_case(class)
                && call.name.as_str().eq_ignore_ascii_case(method)
        });
        let access = match call.target.namespace().map(|n| self.manager.namespace(n)) {
            _ if read_only => Access::Read,
            Some(Ok(namespace))
                if PACKAGE_CLASSES.iter().any(|class| {
                    self.manager.repository().is_a(
                        &namespace,
                        call.target.class_name().as_str(),
                        class,
                    )
                }) =>
            {
                Access::PackageControl
            }
            _ => Access::Administer,
        };
        // A package's own user_name lines make a user the PACKAGE_ADMIN of that package.
        let package_admin = access == Access::PackageControl
            && !principal.permits(access)
            && call
                .target
                .class_name()
                .as_str()
                .eq_ignore_ascii_case("HP_SGPackage")
            && match &call.target {
                ObjectPath::Instance(path) => match path.key("Name") {
                    Some(cim_schema::model::Value::String(package)) => {
                        self.package_admin(principal, peer, package)
                    }
                    _ => false,
                },
                ObjectPath::Class(_) => false,
            };
        // A method that does not exist is CIM_ERR_METHOD_NOT_FOUND (or the namespace's or
        // class's error) for every user (DSP0200 InvokeMethod): the schema is anyone's to
        // read, and "access denied" would send a MONITOR looking for a role it needs not.
        let exists = crate::methods::target_method(&self.manager, call);
        let permitted = if let Err(error) = exists {
            Err(error)
        } else if package_admin {
            Ok(())
        } else {
            permit(principal, access, call.name.as_str())
        };
        let response = match permitted {
            Ok(()) => crate::methods::invoke(&self.manager, principal, call),
            Err(error) => MethodResponse {
                name: call.name.clone(),
                result: Err(error.to_cim_error()),
            },
        };
        let target = call
            .target
            .to_wbem_uri()
            .unwrap_or_else(|_| call.target.class_name().to_string());
        let error = response
            .result
            .as_ref()
            .err()
            .map(|e| (e.code, e.description.as_deref().unwrap_or_default()));
        self.record(principal, peer, call.name.as_str(), &target, error);
        response
    }

    /// Writes one state change to the log and the audit log; `error` is its CIM status code
    /// and description when it failed.
    fn record(
        &self,
        principal: &Principal,
        peer: &Peer,
        operation: &str,
        target: &str,
        error: Option<(u32, &str)>,
    ) {
        let outcome = match error {
            None => AuditOutcome::Ok,
            Some((code, description)) => AuditOutcome::Error { code, description },
        };
        let principal_name = audit_name(principal);
        tracing::info!(
            principal = %principal_name,
            peer = %peer,
            operation,
            target,
            ok = error.is_none(),
            "audit"
        );
        if let Some(audit) = &self.audit {
            let entry = AuditEntry {
                time: SystemTime::now(),
                principal: &principal_name,
                peer: peer.address.ip(),
                operation,
                target,
                outcome,
            };
            if let Err(error) = audit.record(&entry) {
                tracing::error!(%error, "the audit log could not be written");
            }
        }
    }
}

/// The principal of a process on the local socket whose effective user id is `user.uid`,
/// in a server whose own is `server_uid`: root, and the server's own user, are FULL_ADMIN
/// (on a cluster node its root administers the cluster, as in Serviceguard); anyone else is
/// refused. Credentials in the request are not looked at: the kernel's word is stronger
/// than a password, and a user who has one of the users file reaches the agent over HTTPS.
fn local_principal(user: LocalUser, server_uid: u32) -> Result<Principal, ProtocolError> {
    let name = if user.uid == 0 {
        "root".to_owned()
    } else if user.uid == server_uid {
        // Looked up once: the user database may be remote (LDAP, sssd), and this runs on
        // the runtime's workers.
        static SERVER_USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SERVER_USER.get_or_init(|| user_name(server_uid)).clone()
    } else {
        tracing::info!(uid = user.uid, pid = ?user.pid, "local socket: user refused");
        return Err(ProtocolError::LocalUserRefused(user.uid));
    };
    Ok(Principal {
        name,
        role: Role::FullAdmin,
        method: AuthMethod::PeerCredentials { uid: user.uid },
    })
}

/// The login name of `uid` from the system's user database, else `uid N`.
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        Ok(None) | Err(_) => format!("uid {uid}"),
    }
}

/// How the audit log and the log name `principal`: its name, and for a local socket's peer
/// its user id and where it came from (`root (uid 0, local socket)`).
fn audit_name(principal: &Principal) -> Cow<'_, str> {
    match principal.method {
        AuthMethod::PeerCredentials { uid } => {
            Cow::Owned(format!("{} (uid {uid}, local socket)", principal.name))
        }
        AuthMethod::Basic | AuthMethod::Certificate => Cow::Borrowed(&principal.name),
    }
}

fn permit(principal: &Principal, access: Access, operation: &str) -> Result<(), OperationError> {
    if principal.permits(access) {
        Ok(())
    } else {
        Err(OperationError::AccessDenied(format!(
            "user {} ({}) may not do {operation}",
            principal.name,
            principal.role.as_str()
        )))
    }
}

/// The object a state-changing intrinsic call names, as text for the audit log: `created`,
/// the path of the instance a CreateInstance made, else the path or class it names.
/// `plain(class, property)`: whether the property is a boolean or a number, whose value
/// SetProperty's entry may show.
fn describe_target(
    call: &IMethodCall,
    created: Option<&cim_schema::model::InstancePath>,
    plain: impl Fn(&str, &str) -> bool,
) -> String {
    use cim_schema::xml::Data;
    let path = call
        .param("InstanceName")
        .or_else(|| call.param("ModifiedInstance"))
        .or_else(|| call.param("NewInstance"));
    // The path in the request's namespace (an INSTANCENAME names none), as the client named it.
    let uri = |path: &cim_schema::model::InstancePath| {
        let mut path = path.clone();
        if path.namespace.is_none() {
            path.namespace = Some(call.namespace.trim_matches('/').to_owned());
        }
        let class = path.class_name.to_string();
        ObjectPath::Instance(path).to_wbem_uri().unwrap_or(class)
    };
    if let Some(path) = created {
        return uri(path);
    }
    match path {
        Some(Data::NamedInstance(path, instance)) => {
            let uri = uri(path);
            format!("{uri} [{}]", modified_properties(call, instance))
        }
        Some(Data::InstanceName(path)) => {
            let uri = uri(path);
            match call.param("PropertyName") {
                // SetProperty: the property, with its value when a boolean or a number.
                Some(Data::Untyped(cim_schema::xml::Untyped::Scalar(name))) => {
                    let value = match call.param("NewValue") {
                        Some(Data::Untyped(cim_schema::xml::Untyped::Scalar(text)))
                            if plain(path.class_name.as_str(), name)
                                && (text.trim().eq_ignore_ascii_case("true")
                                    || text.trim().eq_ignore_ascii_case("false")
                                    || text.trim().parse::<i128>().is_ok()) =>
                        {
                            format!("={}", text.trim())
                        }
                        _ => String::new(),
                    };
                    format!("{uri} [set {name}{value}]")
                }
                _ => uri,
            }
        }
        Some(Data::Instance(instance)) => instance.class_name.to_string(),
        _ => String::new(),
    }
}

/// What a ModifyInstance sets, for the audit: the properties of its PropertyList (all of the
/// instance's without one), with the value of a boolean or a number (other values, which may
/// be long or private, are left out).
fn modified_properties(call: &IMethodCall, instance: &cim_schema::model::Instance) -> String {
    use cim_schema::model::Value;
    use cim_schema::xml::{Data, Untyped};
    let listed: Option<Vec<String>> = match call.param("PropertyList") {
        Some(Data::Untyped(Untyped::Array(names))) => {
            Some(names.iter().flatten().cloned().collect())
        }
        _ => None,
    };
    let names: Vec<String> = listed.unwrap_or_else(|| {
        instance
            .properties
            .values()
            .map(|p| p.name.to_string())
            .collect()
    });
    let described: Vec<String> = names
        .iter()
        .map(|name| {
            let value = match instance.value(name) {
                Some(Value::Boolean(v)) => v.to_string(),
                Some(Value::Uint8(v)) => v.to_string(),
                Some(Value::Uint16(v)) => v.to_string(),
                Some(Value::Uint32(v)) => v.to_string(),
                Some(Value::Uint64(v)) => v.to_string(),
                Some(Value::Sint8(v)) => v.to_string(),
                Some(Value::Sint16(v)) => v.to_string(),
                Some(Value::Sint32(v)) => v.to_string(),
                Some(Value::Sint64(v)) => v.to_string(),
                _ => return name.clone(),
            };
            format!("{name}={value}")
        })
        .collect();
    format!("set {}", described.join(", "))
}

fn auth_error(error: &AuthError, peer: &Peer) -> ProtocolError {
    match error {
        AuthError::Missing | AuthError::Malformed { .. } | AuthError::UnknownUserOrBadPassword => {
            tracing::info!(peer = %peer.address, %error, "authentication failed");
            ProtocolError::Unauthorized
        }
        AuthError::Throttled { .. } => {
            tracing::warn!(peer = %peer.address, "authentication throttled");
            ProtocolError::Throttled(error.retry_after_seconds().unwrap_or(1))
        }
        AuthError::Unavailable => ProtocolError::AuthenticationUnavailable,
    }
}

/// Ends a sequence with CIM_ERR_SERVER_LIMITS_EXCEEDED once its deadline has passed.
struct Deadline {
    items: operations::Items,
    deadline: Instant,
    limit: Duration,
    expired: bool,
}

impl Deadline {
    fn new(items: operations::Items, deadline: Instant, limit: Duration) -> Deadline {
        Deadline {
            items,
            deadline,
            limit,
            expired: false,
        }
    }
}

impl Iterator for Deadline {
    type Item = Result<operations::Item, OperationError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.expired {
            return None;
        }
        if Instant::now() > self.deadline {
            self.expired = true;
            return Some(Err(OperationError::ServerLimitsExceeded(format!(
                "the operation ran longer than {} seconds",
                self.limit.as_secs()
            ))));
        }
        self.items.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SetProperty's audit entry names the property, and its value only when the property
    /// is a boolean or a number (a string may be long or private).
    #[test]
    fn set_property_is_audited_with_the_value_of_a_number_only() {
        use cim_schema::xml::{Data, IParamValue, Untyped};
        let call = |property: &str, value: &str| IMethodCall {
            name: cim_schema::model::Name::new("SetProperty"),
            namespace: "root/interop".into(),
            params: vec![
                IParamValue::new(
                    "InstanceName",
                    Data::InstanceName(
                        cim_schema::model::InstancePath::new(cim_schema::model::Name::new(
                            "CIM_ListenerDestinationCIMXML",
                        ))
                        .with_key("Name", cim_schema::model::Value::String("d".into())),
                    ),
                ),
                IParamValue::new(
                    "PropertyName",
                    Data::Untyped(Untyped::Scalar(property.into())),
                ),
                IParamValue::new("NewValue", Data::Untyped(Untyped::Scalar(value.into()))),
            ],
        };
        let numbers = |_: &str, property: &str| property == "PersistenceType";
        let number = describe_target(&call("PersistenceType", "3"), None, numbers);
        assert!(number.ends_with("[set PersistenceType=3]"), "{number}");
        // Named in the request's namespace.
        assert!(
            number.starts_with("/root/interop:CIM_ListenerDestinationCIMXML."),
            "{number}"
        );
        let text = describe_target(&call("ElementName", "1234"), None, numbers);
        assert!(text.ends_with("[set ElementName]"), "{text}");
        let garbage = describe_target(&call("PersistenceType", "three"), None, numbers);
        assert!(garbage.ends_with("[set PersistenceType]"), "{garbage}");
    }

    #[test]
    fn root_on_the_local_socket_is_a_full_admin_named_for_the_audit() {
        let root = local_principal(
            LocalUser {
                uid: 0,
                pid: Some(42),
            },
            1000,
        )
        .unwrap();
        assert_eq!(root.name, "root");
        assert_eq!(root.role, Role::FullAdmin);
        assert_eq!(root.method, AuthMethod::PeerCredentials { uid: 0 });
        assert_eq!(audit_name(&root), "root (uid 0, local socket)");
    }

    #[test]
    fn the_servers_own_user_is_a_full_admin_and_anyone_else_is_refused() {
        let own = local_principal(
            LocalUser {
                uid: 4242,
                pid: None,
            },
            4242,
        )
        .unwrap();
        assert_eq!(own.role, Role::FullAdmin);
        assert_eq!(own.method, AuthMethod::PeerCredentials { uid: 4242 });
        // No such user in the test machine's database: named by its number.
        assert_eq!(
            audit_name(&own),
            format!("{} (uid 4242, local socket)", own.name)
        );
        let refused = local_principal(
            LocalUser {
                uid: 65534,
                pid: None,
            },
            4242,
        );
        assert_eq!(refused, Err(ProtocolError::LocalUserRefused(65534)));
    }

    #[test]
    fn a_local_peer_shows_its_credentials_and_a_tcp_peer_its_address() {
        let local = Peer::local(LocalUser {
            uid: 0,
            pid: Some(7),
        });
        assert_eq!(local.to_string(), "local socket (uid 0, pid 7)");
        assert_eq!(local.address, Peer::LOCAL_ADDRESS);
        let tcp = Peer {
            address: SocketAddr::from(([127, 0, 0, 2], 5989)),
            certificate_name: None,
            local_user: None,
            tls: false,
        };
        assert_eq!(tcp.to_string(), "127.0.0.2:5989");
    }

    #[tokio::test]
    async fn basic_credentials_on_the_local_socket_change_nothing() {
        let manager = ObjectManager::new(cim_schema::repository::Repository::new(), "node1");
        let service = Service::new(ServerConfig::default(), manager, None, None);
        let mut headers = HeaderMap::new();
        // Wrong credentials: ignored, root stays root.
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic bm9ib2R5Ondyb25n"),
        );
        let root = Peer::local(LocalUser { uid: 0, pid: None });
        let principal = service.authenticate(&headers, &root).await.unwrap();
        assert_eq!(principal.name, "root");
        // Any credentials: a refused user stays refused.
        let nobody = Peer::local(LocalUser {
            uid: 65534,
            pid: None,
        });
        if nix::unistd::geteuid().as_raw() != 65534 {
            assert_eq!(
                service.authenticate(&headers, &nobody).await,
                Err(ProtocolError::LocalUserRefused(65534))
            );
        }
    }

    #[tokio::test]
    async fn basic_credentials_over_plain_http_are_checked_on_loopback_only() {
        let manager = ObjectManager::new(cim_schema::repository::Repository::new(), "node1");
        let mut users = crate::auth::Users::new();
        users.add("ops", Role::Monitor, "s3cret-pass").unwrap();
        let authenticator = Arc::new(Authenticator::new(users));
        let service = Service::new(ServerConfig::default(), manager, Some(authenticator), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic b3BzOnMzY3JldC1wYXNz"),
        );
        let peer = |address: [u8; 4], tls: bool| Peer {
            address: SocketAddr::from((address, 40000)),
            certificate_name: None,
            local_user: None,
            tls,
        };
        // Loopback, plain: checked and taken.
        let principal = service
            .authenticate(&headers, &peer([127, 0, 0, 1], false))
            .await;
        assert_eq!(principal.map(|p| p.name), Ok("ops".to_string()));
        // Beyond loopback over TLS: taken.
        let principal = service
            .authenticate(&headers, &peer([192, 0, 2, 7], true))
            .await;
        assert_eq!(principal.map(|p| p.name), Ok("ops".to_string()));
        // Beyond loopback in clear: refused, right or wrong.
        assert_eq!(
            service
                .authenticate(&headers, &peer([192, 0, 2, 7], false))
                .await,
            Err(ProtocolError::CleartextCredentials)
        );
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic b3BzOndyb25n"),
        );
        assert_eq!(
            service
                .authenticate(&headers, &peer([192, 0, 2, 7], false))
                .await,
            Err(ProtocolError::CleartextCredentials)
        );
    }
}
