//! The package manager: failover, multi_node and system_multi_node packages placed and moved
//! by Serviceguard's rules.
//!
//! - [`catalog`]: the package files resolved to node and package numbers.
//! - [`table`]: the cluster-wide package state the coordinator keeps.
//! - [`placement`]: the coordinator's decisions (start where, fail back), a pure function.
//! - [`admin`]: cmrunpkg, cmhaltpkg and cmmodpkg, with their refusal rules.
//! - [`manager`]: one node's package manager: its instances, and the coordinator's orders.

pub mod admin;
pub mod catalog;
pub mod manager;
pub mod placement;
pub mod table;

pub use admin::{unconfirmed_text, Command, Refusal};
pub use catalog::{
    Catalog, PackageDef, PackageId, ResourceInfo, ResourceValue, SubnetDef, SubnetState,
};
pub use manager::{
    FailureCause, HaltReason, Manager, Order, Output, PackageAction, PackageEvent, Planned,
    PreviewBasis, Previewed, ResourceError, Script, ScriptOutcome, Switching, RESOURCE_VALUE_MAX,
};
pub use placement::{decide, Decision, Inputs};
pub use table::{InstanceState, PackageState, Table};
