//! The schema cimguard ships, compiled into the binary: the MOF under `cim-schema/mof/`, built
//! into a [`Repository`] with two namespaces.
//!
//! - `root/cimv2` ([`CIMV2`]): the DMTF CIM Schema 2.41 classes the cluster model builds on
//!   (`dmtf.mof`) and the HP Serviceguard classes (`hp.mof`).
//! - `root/interop` ([`INTEROP`]): the same DMTF classes and the interop classes (`interop.mof`):
//!   subscriptions, listener destinations, the indication service, the object manager,
//!   namespaces and registered profiles.
//!
//! Both get the standard DMTF qualifier declarations (`qualifiers.mof`) and the indication
//! hierarchy, since filters name indication classes in either namespace. The entry file
//! `cimguard.mof` switches namespace with `#pragma namespace` and includes one file per namespace,
//! `root-cimv2.mof` and `root-interop.mof`.
//!
//! The files are compiled into the binary with `include_str!` ([`FILES`]): nothing is read at run
//! time. [`repository_with`] compiles extra MOF on top, for sites that load their own classes.
//!
//! ```
//! use cim_schema::shipped::{self, CIMV2, INTEROP};
//!
//! let repository = shipped::repository().unwrap();
//! assert!(repository.is_a(CIMV2, "HP_SGPackage", "CIM_EnabledLogicalElement"));
//! assert!(repository.class(INTEROP, "CIM_IndicationSubscription").is_some());
//! // The HP classes live in root/cimv2 only.
//! assert!(repository.class(INTEROP, "HP_SGCluster").is_none());
//! ```

use crate::mof::{compile, IncludeResolver, MemoryResolver, MofErrors, SourceFile};
use crate::repository::Repository;

/// The namespace of the cluster model.
pub const CIMV2: &str = "root/cimv2";

/// The namespace of subscriptions, the object manager, namespaces and registered profiles.
pub const INTEROP: &str = "root/interop";

/// The entry file: it includes everything else, in dependency order.
pub const ENTRY: &str = "cimguard.mof";

/// The text of [`ENTRY`] (also in [`FILES`]).
const ENTRY_TEXT: &str = include_str!("../mof/cimguard.mof");

/// Every shipped MOF file: its path relative to `cim-schema/mof/` (the name includes use) and its
/// text. Sorted by path.
pub const FILES: &[(&str, &str)] = &[
    // The entry's text is included once, as ENTRY_TEXT.
    (ENTRY, ENTRY_TEXT),
    (
        "cimguard/CIMGuard_IndicationService.mof",
        include_str!("../mof/cimguard/CIMGuard_IndicationService.mof"),
    ),
    ("dmtf.mof", include_str!("../mof/dmtf.mof")),
    (
        "dmtf/CIM_AlertIndication.mof",
        include_str!("../mof/dmtf/CIM_AlertIndication.mof"),
    ),
    (
        "dmtf/CIM_Capabilities.mof",
        include_str!("../mof/dmtf/CIM_Capabilities.mof"),
    ),
    (
        "dmtf/CIM_Cluster.mof",
        include_str!("../mof/dmtf/CIM_Cluster.mof"),
    ),
    (
        "dmtf/CIM_ClusteringService.mof",
        include_str!("../mof/dmtf/CIM_ClusteringService.mof"),
    ),
    (
        "dmtf/CIM_Component.mof",
        include_str!("../mof/dmtf/CIM_Component.mof"),
    ),
    (
        "dmtf/CIM_ComputerSystem.mof",
        include_str!("../mof/dmtf/CIM_ComputerSystem.mof"),
    ),
    (
        "dmtf/CIM_ConcreteJob.mof",
        include_str!("../mof/dmtf/CIM_ConcreteJob.mof"),
    ),
    (
        "dmtf/CIM_Dependency.mof",
        include_str!("../mof/dmtf/CIM_Dependency.mof"),
    ),
    (
        "dmtf/CIM_ElementCapabilities.mof",
        include_str!("../mof/dmtf/CIM_ElementCapabilities.mof"),
    ),
    (
        "dmtf/CIM_EnabledLogicalElement.mof",
        include_str!("../mof/dmtf/CIM_EnabledLogicalElement.mof"),
    ),
    (
        "dmtf/CIM_Error.mof",
        include_str!("../mof/dmtf/CIM_Error.mof"),
    ),
    (
        "dmtf/CIM_HostedAccessPoint.mof",
        include_str!("../mof/dmtf/CIM_HostedAccessPoint.mof"),
    ),
    (
        "dmtf/CIM_HostedClusterService.mof",
        include_str!("../mof/dmtf/CIM_HostedClusterService.mof"),
    ),
    (
        "dmtf/CIM_HostedDependency.mof",
        include_str!("../mof/dmtf/CIM_HostedDependency.mof"),
    ),
    (
        "dmtf/CIM_HostedService.mof",
        include_str!("../mof/dmtf/CIM_HostedService.mof"),
    ),
    (
        "dmtf/CIM_IPProtocolEndpoint.mof",
        include_str!("../mof/dmtf/CIM_IPProtocolEndpoint.mof"),
    ),
    (
        "dmtf/CIM_Indication.mof",
        include_str!("../mof/dmtf/CIM_Indication.mof"),
    ),
    (
        "dmtf/CIM_InstCreation.mof",
        include_str!("../mof/dmtf/CIM_InstCreation.mof"),
    ),
    (
        "dmtf/CIM_InstDeletion.mof",
        include_str!("../mof/dmtf/CIM_InstDeletion.mof"),
    ),
    (
        "dmtf/CIM_InstIndication.mof",
        include_str!("../mof/dmtf/CIM_InstIndication.mof"),
    ),
    (
        "dmtf/CIM_InstModification.mof",
        include_str!("../mof/dmtf/CIM_InstModification.mof"),
    ),
    ("dmtf/CIM_Job.mof", include_str!("../mof/dmtf/CIM_Job.mof")),
    (
        "dmtf/CIM_LogicalElement.mof",
        include_str!("../mof/dmtf/CIM_LogicalElement.mof"),
    ),
    (
        "dmtf/CIM_LogicalIdentity.mof",
        include_str!("../mof/dmtf/CIM_LogicalIdentity.mof"),
    ),
    (
        "dmtf/CIM_ManagedElement.mof",
        include_str!("../mof/dmtf/CIM_ManagedElement.mof"),
    ),
    (
        "dmtf/CIM_ManagedSystemElement.mof",
        include_str!("../mof/dmtf/CIM_ManagedSystemElement.mof"),
    ),
    (
        "dmtf/CIM_ParticipatingCS.mof",
        include_str!("../mof/dmtf/CIM_ParticipatingCS.mof"),
    ),
    (
        "dmtf/CIM_ProcessIndication.mof",
        include_str!("../mof/dmtf/CIM_ProcessIndication.mof"),
    ),
    (
        "dmtf/CIM_ProtocolEndpoint.mof",
        include_str!("../mof/dmtf/CIM_ProtocolEndpoint.mof"),
    ),
    (
        "dmtf/CIM_ProvidesServiceToElement.mof",
        include_str!("../mof/dmtf/CIM_ProvidesServiceToElement.mof"),
    ),
    (
        "dmtf/CIM_Service.mof",
        include_str!("../mof/dmtf/CIM_Service.mof"),
    ),
    (
        "dmtf/CIM_ServiceAccessPoint.mof",
        include_str!("../mof/dmtf/CIM_ServiceAccessPoint.mof"),
    ),
    (
        "dmtf/CIM_ServiceComponent.mof",
        include_str!("../mof/dmtf/CIM_ServiceComponent.mof"),
    ),
    (
        "dmtf/CIM_ServiceServiceDependency.mof",
        include_str!("../mof/dmtf/CIM_ServiceServiceDependency.mof"),
    ),
    (
        "dmtf/CIM_SoftwareIdentity.mof",
        include_str!("../mof/dmtf/CIM_SoftwareIdentity.mof"),
    ),
    (
        "dmtf/CIM_System.mof",
        include_str!("../mof/dmtf/CIM_System.mof"),
    ),
    (
        "dmtf/CIM_SystemComponent.mof",
        include_str!("../mof/dmtf/CIM_SystemComponent.mof"),
    ),
    ("hp.mof", include_str!("../mof/hp.mof")),
    (
        "hp/HP_Cluster.mof",
        include_str!("../mof/hp/HP_Cluster.mof"),
    ),
    (
        "hp/HP_ClusterSoftware.mof",
        include_str!("../mof/hp/HP_ClusterSoftware.mof"),
    ),
    ("hp/HP_Node.mof", include_str!("../mof/hp/HP_Node.mof")),
    (
        "hp/HP_NodeIdentity.mof",
        include_str!("../mof/hp/HP_NodeIdentity.mof"),
    ),
    (
        "hp/HP_ParticipatingCS.mof",
        include_str!("../mof/hp/HP_ParticipatingCS.mof"),
    ),
    (
        "hp/HP_SGAlertIndication.mof",
        include_str!("../mof/hp/HP_SGAlertIndication.mof"),
    ),
    (
        "hp/HP_SGCluster.mof",
        include_str!("../mof/hp/HP_SGCluster.mof"),
    ),
    (
        "hp/HP_SGClusterIPProtocolEndpoint.mof",
        include_str!("../mof/hp/HP_SGClusterIPProtocolEndpoint.mof"),
    ),
    (
        "hp/HP_SGClusterPackage.mof",
        include_str!("../mof/hp/HP_SGClusterPackage.mof"),
    ),
    (
        "hp/HP_SGClusterSoftware.mof",
        include_str!("../mof/hp/HP_SGClusterSoftware.mof"),
    ),
    (
        "hp/HP_SGClusteringService.mof",
        include_str!("../mof/hp/HP_SGClusteringService.mof"),
    ),
    (
        "hp/HP_SGGenericResource.mof",
        include_str!("../mof/hp/HP_SGGenericResource.mof"),
    ),
    (
        "hp/HP_SGHostedClusterService.mof",
        include_str!("../mof/hp/HP_SGHostedClusterService.mof"),
    ),
    (
        "hp/HP_SGIPProtocolEndpoint.mof",
        include_str!("../mof/hp/HP_SGIPProtocolEndpoint.mof"),
    ),
    ("hp/HP_SGNode.mof", include_str!("../mof/hp/HP_SGNode.mof")),
    (
        "hp/HP_SGNodeIdentity.mof",
        include_str!("../mof/hp/HP_SGNodeIdentity.mof"),
    ),
    (
        "hp/HP_SGPackage.mof",
        include_str!("../mof/hp/HP_SGPackage.mof"),
    ),
    (
        "hp/HP_SGPackageDependency.mof",
        include_str!("../mof/hp/HP_SGPackageDependency.mof"),
    ),
    (
        "hp/HP_SGPackageJob.mof",
        include_str!("../mof/hp/HP_SGPackageJob.mof"),
    ),
    (
        "hp/HP_SGPackageNode.mof",
        include_str!("../mof/hp/HP_SGPackageNode.mof"),
    ),
    (
        "hp/HP_SGPackageService.mof",
        include_str!("../mof/hp/HP_SGPackageService.mof"),
    ),
    (
        "hp/HP_SGPackageServiceComponent.mof",
        include_str!("../mof/hp/HP_SGPackageServiceComponent.mof"),
    ),
    (
        "hp/HP_SGParticipatingCS.mof",
        include_str!("../mof/hp/HP_SGParticipatingCS.mof"),
    ),
    (
        "hp/HP_SGQuorumDevice.mof",
        include_str!("../mof/hp/HP_SGQuorumDevice.mof"),
    ),
    ("interop.mof", include_str!("../mof/interop.mof")),
    (
        "interop/CIM_AbstractIndicationSubscription.mof",
        include_str!("../mof/interop/CIM_AbstractIndicationSubscription.mof"),
    ),
    (
        "interop/CIM_CIMOMStatisticalData.mof",
        include_str!("../mof/interop/CIM_CIMOMStatisticalData.mof"),
    ),
    (
        "interop/CIM_ElementConformsToProfile.mof",
        include_str!("../mof/interop/CIM_ElementConformsToProfile.mof"),
    ),
    (
        "interop/CIM_IndicationFilter.mof",
        include_str!("../mof/interop/CIM_IndicationFilter.mof"),
    ),
    (
        "interop/CIM_IndicationService.mof",
        include_str!("../mof/interop/CIM_IndicationService.mof"),
    ),
    (
        "interop/CIM_IndicationServiceCapabilities.mof",
        include_str!("../mof/interop/CIM_IndicationServiceCapabilities.mof"),
    ),
    (
        "interop/CIM_IndicationSubscription.mof",
        include_str!("../mof/interop/CIM_IndicationSubscription.mof"),
    ),
    (
        "interop/CIM_ListenerDestination.mof",
        include_str!("../mof/interop/CIM_ListenerDestination.mof"),
    ),
    (
        "interop/CIM_ListenerDestinationCIMXML.mof",
        include_str!("../mof/interop/CIM_ListenerDestinationCIMXML.mof"),
    ),
    (
        "interop/CIM_Namespace.mof",
        include_str!("../mof/interop/CIM_Namespace.mof"),
    ),
    (
        "interop/CIM_ObjectManager.mof",
        include_str!("../mof/interop/CIM_ObjectManager.mof"),
    ),
    (
        "interop/CIM_ObjectManagerCommunicationMechanism.mof",
        include_str!("../mof/interop/CIM_ObjectManagerCommunicationMechanism.mof"),
    ),
    (
        "interop/CIM_ReferencedProfile.mof",
        include_str!("../mof/interop/CIM_ReferencedProfile.mof"),
    ),
    (
        "interop/CIM_ReferencedSpecification.mof",
        include_str!("../mof/interop/CIM_ReferencedSpecification.mof"),
    ),
    (
        "interop/CIM_RegisteredProfile.mof",
        include_str!("../mof/interop/CIM_RegisteredProfile.mof"),
    ),
    (
        "interop/CIM_RegisteredSpecification.mof",
        include_str!("../mof/interop/CIM_RegisteredSpecification.mof"),
    ),
    (
        "interop/CIM_StatisticalData.mof",
        include_str!("../mof/interop/CIM_StatisticalData.mof"),
    ),
    (
        "interop/CIM_WBEMService.mof",
        include_str!("../mof/interop/CIM_WBEMService.mof"),
    ),
    ("profiles.mof", include_str!("../mof/profiles.mof")),
    ("qualifiers.mof", include_str!("../mof/qualifiers.mof")),
    ("root-cimv2.mof", include_str!("../mof/root-cimv2.mof")),
    ("root-interop.mof", include_str!("../mof/root-interop.mof")),
];

/// Why the schema could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShippedError {
    /// The shipped MOF does not compile: a defect of the build, not of any input (the test suite
    /// compiles it).
    #[error("the shipped schema does not compile:\n{0}")]
    Shipped(MofErrors),
    /// The extra MOF handed to [`repository_with`] does not compile.
    #[error("the extra mof does not compile:\n{0}")]
    Extra(MofErrors),
}

/// The shipped files, served from memory to the MOF compiler by their paths in [`FILES`].
pub fn shipped_resolver() -> MemoryResolver {
    let mut resolver = MemoryResolver::new();
    for (path, text) in FILES {
        resolver.insert(*path, text.as_bytes());
    }
    resolver
}

/// A repository holding the shipped schema: `root/cimv2` and `root/interop`, classes and
/// qualifier declarations, no instances.
pub fn repository() -> Result<Repository, ShippedError> {
    repository_with(CIMV2, &[], &mut crate::mof::NoIncludes)
}

/// The shipped schema plus `extra` MOF files, compiled after it into `namespace` (a
/// `#pragma namespace` in them switches, as usual); their includes are read through
/// `resolver`. Extra classes may subclass the shipped ones.
///
/// ```
/// use cim_schema::mof::{NoIncludes, SourceFile};
/// use cim_schema::shipped::{self, CIMV2};
///
/// let site = SourceFile::new(
///     "site.mof",
///     b"class Site_Package : HP_SGPackage { string Owner; };".as_slice(),
/// );
/// let repository = shipped::repository_with(CIMV2, &[site], &mut NoIncludes).unwrap();
/// assert!(repository.is_a(CIMV2, "Site_Package", "CIM_Service"));
/// ```
pub fn repository_with(
    namespace: &str,
    extra: &[SourceFile],
    resolver: &mut dyn IncludeResolver,
) -> Result<Repository, ShippedError> {
    let mut repository = Repository::new();
    let entry = SourceFile::new(ENTRY, ENTRY_TEXT.as_bytes());
    compile(&mut repository, CIMV2, &[entry], &mut shipped_resolver())
        .map_err(ShippedError::Shipped)?;
    if !extra.is_empty() {
        compile(&mut repository, namespace, extra, resolver).map_err(ShippedError::Extra)?;
    }
    Ok(repository)
}
