//! The state every request shares: configuration, the object manager, the enumeration
//! contexts, the authenticator and the audit log; and the steps of a request that need them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cim_schema::xml::{IMethodCall, MethodCall, MethodResponse};
use http::HeaderMap;

use crate::cimom::ObjectManager;
use crate::config::ServerConfig;
use crate::error::OperationError;
use crate::http::ProtocolError;
use crate::operations::{self, Outcome};
use crate::pull::Contexts;

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The remote address.
    pub address: SocketAddr,
    /// The common name of a verified TLS client certificate.
    pub certificate_name: Option<Arc<str>>,
}

/// An authenticated principal.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user name.
    pub name: Arc<str>,
}

/// The server's shared state.
pub struct Service {
    /// The configuration it was started with.
    pub config: ServerConfig,
    /// Classes and providers.
    pub manager: Arc<ObjectManager>,
    /// Open enumeration contexts.
    pub contexts: Contexts,
}

impl Service {
    /// A service over `manager`.
    pub fn new(config: ServerConfig, manager: ObjectManager) -> Service {
        let contexts = Contexts::new(config.limits.contexts.clone());
        Service {
            config,
            manager: Arc::new(manager),
            contexts,
        }
    }

    /// The principal of a request, from its `Authorization` header or client certificate.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: &Peer,
    ) -> Result<Principal, ProtocolError> {
        if let Some(name) = &peer.certificate_name {
            return Ok(Principal { name: name.clone() });
        }
        if self.config.danger_allow_anonymous {
            return Ok(Principal {
                name: Arc::from("anonymous"),
            });
        }
        let _ = headers;
        Err(ProtocolError::Unauthorized)
    }

    /// Runs an intrinsic operation within the per-operation time limit.
    pub fn intrinsic(
        &self,
        principal: &Principal,
        peer: &Peer,
        call: &IMethodCall,
    ) -> Result<Outcome, OperationError> {
        let _ = peer;
        let deadline = Instant::now() + self.config.limits.operation_time_max;
        let outcome = operations::execute(&self.manager, &self.contexts, &principal.name, call)?;
        Ok(match outcome {
            Outcome::Stream(items) => Outcome::Stream(Box::new(Deadline::new(
                items,
                deadline,
                self.config.limits.operation_time_max,
            ))),
            other => other,
        })
    }

    /// Runs an extrinsic method.
    pub fn extrinsic(
        &self,
        principal: &Principal,
        peer: &Peer,
        call: &MethodCall,
    ) -> MethodResponse {
        let _ = peer;
        crate::methods::invoke(&self.manager, &principal.name, call)
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
    type Item = Result<cim_schema::xml::Data, OperationError>;

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
