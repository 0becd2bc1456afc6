//! The state every request shares: configuration, the object manager, the enumeration
//! contexts, the authenticator and the audit log; and the steps of a request that need them:
//! authentication, authorization by role, the audit of state changes, the per-operation time
//! limit.

use std::net::SocketAddr;
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
    /// The remote address.
    pub address: SocketAddr,
    /// The common name of a verified TLS client certificate.
    pub certificate_name: Option<Arc<str>>,
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

    /// The principal of a request: the user a verified client certificate names, else the
    /// user of the `Authorization: Basic` header; anonymous (FULL_ADMIN) only with
    /// `danger_allow_anonymous`, for requests without credentials (or any request when there
    /// is no users file).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Principal, ProtocolError> {
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or("\u{1}"));
        if let Some(authenticator) = &self.authenticator {
            if let Some(name) = &peer.certificate_name {
                if let Some(principal) = authenticator.principal_for_certificate(name) {
                    return Ok(self.with_policy(principal, peer));
                }
            }
            if let Some(authorization) = authorization {
                return authenticator
                    .verify_basic_async(authorization, peer.address.ip(), Instant::now())
                    .await
                    .map(|principal| self.with_policy(principal, peer))
                    .map_err(|error| auth_error(&error, peer));
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
            let target = describe_target(call);
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
        let permitted = if package_admin {
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
        tracing::info!(
            principal = %principal.name,
            peer = %peer.address,
            operation,
            target,
            ok = error.is_none(),
            "audit"
        );
        if let Some(audit) = &self.audit {
            let entry = AuditEntry {
                time: SystemTime::now(),
                principal: &principal.name,
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

/// The object a state-changing intrinsic call names, as text for the audit log.
fn describe_target(call: &IMethodCall) -> String {
    use cim_schema::xml::Data;
    let path = call
        .param("InstanceName")
        .or_else(|| call.param("ModifiedInstance"))
        .or_else(|| call.param("NewInstance"));
    match path {
        Some(Data::InstanceName(path) | Data::NamedInstance(path, _)) => {
            ObjectPath::Instance(path.clone())
                .to_wbem_uri()
                .unwrap_or_else(|_| path.class_name.to_string())
        }
        Some(Data::Instance(instance)) => instance.class_name.to_string(),
        _ => String::new(),
    }
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
