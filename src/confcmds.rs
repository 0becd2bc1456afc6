//! The configuration commands that work on files, with no cluster needed
//! (serviceguard.md 5.2):
//!
//! - `cmmakepkg [-m MODULE]... [-i EXISTING] [-v] [OUTPUT]`: a modular package template, each
//!   parameter under a comment that says what it is and its legal values, with its default.
//!   Only parameters that the daemon's parser ([`package::parse`]) takes are written, with its
//!   names and value syntax; what the operator must give is left to edit (an empty
//!   `package_name`, commented-out examples for services, addresses, ...).
//! - `cmcheckconf [-v] [-C CLUSTER] [-P PACKAGE]... [-p LIST]`: the cluster and package files
//!   checked as the daemon checks a cmapplyconf ([`cluster::parse`], [`package::parse`], then
//!   [`package::check_set`] when every file is right, or only [`package::check_names`]
//!   without a cluster file), every finding printed as
//!   `file:line: severity: PARAMETER: reason`.
//!
//! cmmakepkg talks to no daemon. cmcheckconf, where a cluster agent answers (the local
//! socket, or `CIMGUARD_URL`), also checks the files against the configuration in effect and
//! the cluster as it runs (the cluster halted, on every node), as a cmapplyconf of them
//! would be checked ([`crate::clcmds::check_against_cluster`]); with none, the files alone.
//! [`read_generation_files`] reads the files of a configuration generation for cmcheckconf
//! here and for cmapplyconf, which sends them to the daemon.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cimguard_cluster::config::package::{self, PackageType};
use cimguard_cluster::config::{cluster, Diagnostic, Severity};
use cimguard_cluster::runtime::daemon::FileText;
use clap::Parser;

use crate::cimclient::Client;
use crate::clcmds;

/// The largest configuration file read (a template with every module is about 15 KiB).
pub const FILE_BYTES_MAX: u64 = 1 << 20;

/// The environment variable that names the cluster file when cmcheckconf has no -C.
pub const CLUSTER_FILE_VARIABLE: &str = "CIMGUARD_CLUSTER_FILE";

/// Make a modular package configuration template, or add modules to a package file.
#[derive(Parser, Debug)]
#[command(name = "cmmakepkg", version)]
pub struct MakePackage {
    /// A module to include (repeatable): sg/failover, sg/multi_node, sg/system_multi_node,
    /// sg/dependency, sg/weight, sg/monitor_subnet, sg/package_ip, sg/service,
    /// sg/generic_resource, sg/external_pre, sg/external, sg/acp, or sg/all (sg/basic is
    /// always in). Without a base module (sg/failover, sg/multi_node, sg/system_multi_node):
    /// the -i file's, else sg/all, Serviceguard's default.
    #[arg(short = 'm', value_name = "MODULE")]
    pub modules: Vec<String>,
    /// An existing package file: written out again, its values kept, with the parameters of
    /// the modules it lacks added at the end.
    #[arg(short = 'i', value_name = "FILE")]
    pub include: Option<PathBuf>,
    /// Verbose: tell which modules are included (on standard error).
    #[arg(short = 'v')]
    pub verbose: bool,
    /// The file to write (it must not exist yet); standard output without it.
    pub output: Option<PathBuf>,
}

/// Check cluster and package configuration files as cmapplyconf would, without applying them:
/// against the cluster in effect and its state when a cluster agent answers (the local socket,
/// or CIMGUARD_URL), else the files alone. With the cluster halted, or for the cluster a -C
/// file would create, every node checks them (its addresses, its timing) as it would check
/// the cmapplyconf. A cluster file naming a quorum server checks only while that server
/// answers this node. The agent lets only a FULL_ADMIN check, as it lets only one apply.
#[derive(Parser, Debug)]
#[command(name = "cmcheckconf", version)]
// The files are the arguments: without any, a usage error (status 2), as for any flag.
#[command(group = clap::ArgGroup::new("files")
    .args(["cluster", "packages", "list"])
    .multiple(true)
    .required(true))]
pub struct CheckConfiguration {
    /// Verbose: tell which files are checked and which checks are left out.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// The cluster ASCII file [default with -P or -p: $CIMGUARD_CLUSTER_FILE].
    #[arg(short = 'C', value_name = "CLUSTER_FILE")]
    pub cluster: Option<PathBuf>,
    /// A package configuration file (repeatable).
    #[arg(short = 'P', value_name = "PACKAGE_FILE")]
    pub packages: Vec<PathBuf>,
    /// A file that lists package files, one path a line (blank lines and # comments ignored).
    #[arg(short = 'p', value_name = "LIST_FILE")]
    pub list: Option<PathBuf>,
}

/// One package module, as cmmakepkg writes it.
struct Module {
    /// The name given to -m and written as module_name.
    name: &'static str,
    /// What it adds, for the heading of its part of the template.
    summary: &'static str,
    /// Its place among the modules.
    role: Role,
    /// Its parameters, in the order written.
    parameters: &'static [Parameter],
}

/// What a module is to a package.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// sg/basic: the parameters of every package, with any base module.
    Basic,
    /// A base module: one per package, it makes the package_type.
    Base(PackageType),
    /// An optional module.
    Optional,
}

/// One parameter of a template: the comment above it, then its line.
struct Parameter {
    /// The name, as modular package files spell it (lower case).
    name: &'static str,
    /// What it is and its legal values, one comment line each.
    about: &'static [&'static str],
    /// How its line is written.
    line: Line,
}

/// How a parameter's line is written.
#[derive(Clone, Copy)]
enum Line {
    /// `name value`: the default, in effect as written.
    Value(&'static str),
    /// `name` alone: the operator must give the value (cmcheckconf refuses an empty one).
    Required,
    /// `#name example`: optional, or repeated per item (a service, an address): remove the
    /// `#` and edit the value to set it.
    Example(&'static str),
    /// `package_type`, from the base module.
    PackageType,
    /// `node_fail_fast_enabled`: no, except yes for system_multi_node (which needs it).
    NodeFailFast,
}

/// The version written as module_version (our modules have had one version).
const MODULE_VERSION: &str = "1";

/// The module names that mean every module: sg/all, and sg/default, Serviceguard's link to
/// it, which cmmakepkg uses when no base module is given.
const ALL_MODULES: [&str; 2] = ["sg/all", "sg/default"];

/// The base module of sg/all when none is given.
const DEFAULT_BASE: &str = "sg/failover";

/// The width of the name column of a parameter line (the longest name plus `#` and a blank).
const NAME_COLUMN: usize = 34;

/// Every module, in the order a template has them. operation_sequence (sg/basic in
/// Serviceguard) and the modules of storage, EMS resources and legacy scripts are not here:
/// the daemon's parser does not take their parameters.
const MODULES: &[Module] = &[
    Module {
        name: "sg/basic",
        summary: "the parameters of every package",
        role: Role::Basic,
        parameters: BASIC,
    },
    Module {
        name: "sg/failover",
        summary: "a failover package: runs on one node at a time",
        role: Role::Base(PackageType::Failover),
        parameters: FAILOVER,
    },
    Module {
        name: "sg/multi_node",
        summary: "a multi-node package: runs on several nodes at once",
        role: Role::Base(PackageType::MultiNode),
        parameters: &[],
    },
    Module {
        name: "sg/system_multi_node",
        summary: "a system multi-node package: runs on every node",
        role: Role::Base(PackageType::SystemMultiNode),
        parameters: &[],
    },
    Module {
        name: "sg/dependency",
        summary: "dependencies on other packages",
        role: Role::Optional,
        parameters: DEPENDENCY,
    },
    Module {
        name: "sg/weight",
        summary: "weights against the cluster's capacities",
        role: Role::Optional,
        parameters: WEIGHT,
    },
    Module {
        name: "sg/monitor_subnet",
        summary: "subnets the package needs",
        role: Role::Optional,
        parameters: MONITOR_SUBNET,
    },
    Module {
        name: "sg/package_ip",
        summary: "relocatable IP addresses",
        role: Role::Optional,
        parameters: PACKAGE_IP,
    },
    Module {
        name: "sg/service",
        summary: "the processes the package runs and monitors",
        role: Role::Optional,
        parameters: SERVICE,
    },
    Module {
        name: "sg/generic_resource",
        summary: "generic resources the package needs (cmsetresource)",
        role: Role::Optional,
        parameters: GENERIC_RESOURCE,
    },
    Module {
        name: "sg/external_pre",
        summary: "scripts run before the addresses and services",
        role: Role::Optional,
        parameters: EXTERNAL_PRE,
    },
    Module {
        name: "sg/external",
        summary: "scripts run with the addresses up, before the services",
        role: Role::Optional,
        parameters: EXTERNAL,
    },
    Module {
        name: "sg/acp",
        summary: "access control: who may administer this package",
        role: Role::Optional,
        parameters: ACP,
    },
];

const BASIC: &[Parameter] = &[
    Parameter {
        name: "package_name",
        about: &[
            "The package's name, unique in the cluster. Required: give it before cmcheckconf.",
            "Up to 39 letters, digits, '.', '-' and '_', the first and last a letter or digit.",
        ],
        line: Line::Required,
    },
    Parameter {
        name: "package_description",
        about: &[
            "What the package is for, as cmviewcl shows it: free text, up to 80 bytes, in",
            "double quotes when it has blanks. Default: \"Serviceguard Package\".",
        ],
        line: Line::Value("\"Serviceguard Package\""),
    },
    Parameter {
        name: "package_type",
        about: &[
            "failover: runs on one node at a time, and moves to another node when it fails;",
            "multi_node: runs on several nodes at once; system_multi_node: on every node.",
            "It goes with the base module (sg/failover, sg/multi_node, sg/system_multi_node):",
            "to change it, make a new template with cmmakepkg -m.",
        ],
        line: Line::PackageType,
    },
    Parameter {
        name: "node_name",
        about: &[
            "The nodes the package may run on, one node_name line each, in order of",
            "preference: the primary node first, then the adoptive nodes. * (the default):",
            "every node of the cluster, in the cluster file's order; it cannot be mixed with",
            "node names. A system_multi_node package must use *.",
        ],
        line: Line::Value("*"),
    },
    Parameter {
        name: "auto_run",
        about: &[
            "yes (the default) or no: whether the package starts when the cluster starts and",
            "fails over when it fails (global switching; cmmodpkg -e and -d change it while",
            "the cluster runs, cmhaltpkg turns it off).",
        ],
        line: Line::Value("yes"),
    },
    Parameter {
        name: "node_fail_fast_enabled",
        about: &[
            "no (the default) or yes. yes: the node reboots (fences itself) when the package",
            "fails on it. A system_multi_node package must use yes.",
        ],
        line: Line::NodeFailFast,
    },
    Parameter {
        name: "run_script_timeout",
        about: &[
            "How long the package's start may take: 1 to 4294 seconds, or no_timeout (the",
            "default). A start that takes longer fails; the node is then disabled for the",
            "package, and rebooted with node_fail_fast_enabled yes.",
        ],
        line: Line::Value("no_timeout"),
    },
    Parameter {
        name: "halt_script_timeout",
        about: &[
            "How long the package's halt may take: 1 to 4294 seconds, or no_timeout (the",
            "default). Make it more than the services' service_halt_timeout together.",
        ],
        line: Line::Value("no_timeout"),
    },
    Parameter {
        name: "successor_halt_timeout",
        about: &[
            "How long to wait for the packages that depend on this one to halt before it",
            "halts: 0 to 4294 seconds (0: do not wait), or no_timeout (the default).",
        ],
        line: Line::Value("no_timeout"),
    },
    Parameter {
        name: "script_log_file",
        about: &[
            "Where the package's scripts and services write their output. Default:",
            "$SGRUN/log/<package_name>.log ($SGRUN is the node daemon's state directory).",
        ],
        line: Line::Example("$SGRUN/log/<package_name>.log"),
    },
    Parameter {
        name: "log_level",
        about: &[
            "How much the start and halt write to script_log_file: 0 (the default) the start,",
            "the halt and what went wrong; 1 each script, service and signal as it goes;",
            "2 to 5 also what each ran and how long it took.",
        ],
        line: Line::Value("0"),
    },
    Parameter {
        name: "priority",
        about: &[
            "no_priority (the default), or 1 to 3000: lower numbers are higher priorities,",
            "and no two packages of the cluster may have the same one.",
        ],
        line: Line::Value("no_priority"),
    },
];

const FAILOVER: &[Parameter] = &[
    Parameter {
        name: "failover_policy",
        about: &[
            "Where the package goes when it fails or its node halts. configured_node (the",
            "default): the next node of node_name that can run it; min_package_node: the",
            "node that can run it with the fewest packages. Failover packages only.",
        ],
        line: Line::Value("configured_node"),
    },
    Parameter {
        name: "failback_policy",
        about: &[
            "manual (the default): the package stays where it failed over to; automatic: it",
            "moves back to its primary node (the first node_name) when that node rejoins.",
            "Failover packages only.",
        ],
        line: Line::Value("manual"),
    },
];

const DEPENDENCY: &[Parameter] = &[
    Parameter {
        name: "dependency_name",
        about: &[
            "A name for the dependency, unique in the package. It starts a dependency: the",
            "dependency_condition and dependency_location lines after it belong to it.",
            "Repeat the three lines for each dependency.",
        ],
        line: Line::Example("pkg2_up"),
    },
    Parameter {
        name: "dependency_condition",
        about: &[
            "<package> = up: this package runs only while that package is up; <package> =",
            "down: only while it is down. That package must be configured in the cluster.",
        ],
        line: Line::Example("pkg2 = up"),
    },
    Parameter {
        name: "dependency_location",
        about: &[
            "Where the condition must hold. For up: same_node (the default), any_node or",
            "different_node; for down: same_node or all_nodes.",
        ],
        line: Line::Example("same_node"),
    },
];

const WEIGHT: &[Parameter] = &[
    Parameter {
        name: "weight_name",
        about: &[
            "A capacity of the cluster file (a CAPACITY_NAME or WEIGHT_NAME, such as",
            "package_limit) that the package uses; the weight_value line after it says how",
            "much. Repeat the two lines for each capacity.",
        ],
        line: Line::Example("package_limit"),
    },
    Parameter {
        name: "weight_value",
        about: &["How much of that capacity the package uses: a number of 0 or more."],
        line: Line::Example("1"),
    },
];

const MONITOR_SUBNET: &[Parameter] = &[
    Parameter {
        name: "local_lan_failover_allowed",
        about: &[
            "yes (the default) or no: whether the package's addresses may move to a standby",
            "interface of the same node when their interface fails.",
        ],
        line: Line::Value("yes"),
    },
    Parameter {
        name: "monitored_subnet",
        about: &[
            "A subnet the package needs: when it fails on the package's node, the package",
            "fails there. One line per subnet.",
        ],
        line: Line::Example("192.168.10.0"),
    },
    Parameter {
        name: "monitored_subnet_access",
        about: &[
            "After its monitored_subnet: FULL (the default) when every node of the package",
            "is on the subnet, PARTIAL when only some are.",
        ],
        line: Line::Example("FULL"),
    },
];

const PACKAGE_IP: &[Parameter] = &[
    Parameter {
        name: "ip_subnet",
        about: &[
            "The subnet of the relocatable addresses on the ip_address lines after it. One",
            "ip_subnet line per subnet.",
        ],
        line: Line::Example("192.168.10.0"),
    },
    Parameter {
        name: "ip_address",
        about: &[
            "A relocatable address, added on the node where the package runs and moved with",
            "it. One line per address, after its ip_subnet.",
        ],
        line: Line::Example("192.168.10.50"),
    },
];

const SERVICE: &[Parameter] = &[
    Parameter {
        name: "service_name",
        about: &[
            "A name for the service, unique in the package: up to 39 letters, digits, '.',",
            "'-' and '_'. It starts a service: the service_* lines after it belong to it.",
            "Repeat the lines for each service.",
        ],
        line: Line::Example("service1"),
    },
    Parameter {
        name: "service_cmd",
        about: &[
            "The command the service runs (with /bin/sh -c), in double quotes when it has",
            "blanks. Required for each service. It stays in the foreground: when it exits,",
            "the service has failed.",
        ],
        line: Line::Example("\"$SGCONF/pkg1/service1.sh\""),
    },
    Parameter {
        name: "service_restart",
        about: &[
            "none (the default): a failure of the service fails the package; unlimited; or",
            "how many times to restart it before that.",
        ],
        line: Line::Example("none"),
    },
    Parameter {
        name: "service_fail_fast_enabled",
        about: &[
            "no (the default) or yes: yes reboots the node when the service fails (no use",
            "with service_restart unlimited).",
        ],
        line: Line::Example("no"),
    },
    Parameter {
        name: "service_halt_timeout",
        about: &[
            "How long the service may take to stop after SIGTERM, before SIGKILL: 0 (the",
            "default) to 4294 seconds.",
        ],
        line: Line::Example("0"),
    },
];

const GENERIC_RESOURCE: &[Parameter] = &[
    Parameter {
        name: "generic_resource_name",
        about: &[
            "A resource the package needs, set on each node with cmsetresource: up to 39",
            "letters, digits, '.', '-' and '_'. It starts a resource: the generic_resource_*",
            "lines after it belong to it. At most 100 resources in a cluster.",
        ],
        line: Line::Example("sfm_disk"),
    },
    Parameter {
        name: "generic_resource_evaluation_type",
        about: &[
            "during_package_start (the default): checked as the package starts and while",
            "it runs; before_package_start: it must be up on a node before the package may",
            "start there.",
        ],
        line: Line::Example("during_package_start"),
    },
    Parameter {
        name: "generic_resource_up_criteria",
        about: &[
            "Only for an extended resource (one with a value): an operator (== != > < >= <=)",
            "and a whole number from 1 to 2147483647; the resource is up while its value",
            "meets it. Leave it out for a simple resource (up or down).",
        ],
        line: Line::Example("< 80"),
    },
];

const EXTERNAL_PRE: &[Parameter] = &[Parameter {
    name: "external_pre_script",
    about: &[
        "A script run with the argument start before the package's addresses and services",
        "start, and with stop after they halt. One line per script; they start in file",
        "order and stop in reverse.",
    ],
    line: Line::Example("$SGCONF/pkg1/pre_script.sh"),
}];

const EXTERNAL: &[Parameter] = &[Parameter {
    name: "external_script",
    about: &[
        "A script run with the argument start once the package's addresses are up, before",
        "its services, and with stop after the services halt. One line per script; they",
        "start in file order and stop in reverse.",
    ],
    line: Line::Example("$SGCONF/pkg1/control.sh"),
}];

const ACP: &[Parameter] = &[
    Parameter {
        name: "user_name",
        about: &[
            "A user who may run, halt and change this package (cmrunpkg, cmhaltpkg,",
            "cmmodpkg), or ANY_USER; with the user_host and user_role lines after it.",
        ],
        line: Line::Example("operator1"),
    },
    Parameter {
        name: "user_host",
        about: &[
            "Where that user works from: a host name, CLUSTER_MEMBER_NODE (any node of the",
            "cluster) or ANY_SERVICEGUARD_NODE.",
        ],
        line: Line::Example("CLUSTER_MEMBER_NODE"),
    },
    Parameter {
        name: "user_role",
        about: &["PACKAGE_ADMIN: the one role a package file grants."],
        line: Line::Example("PACKAGE_ADMIN"),
    },
];

/// What cmmakepkg -i needs of an existing package file: its text, and which parameters and
/// modules it has. Read line by line as the parser reads (comments and blank lines skipped),
/// without checking the values: an unfinished file can be added to.
struct Existing {
    /// The file's name, as given.
    name: String,
    /// Its text.
    text: String,
    /// The parameters it sets, in upper case.
    parameters: HashSet<String>,
    /// Its module_name values, in lower case.
    modules: Vec<String>,
    /// Its package_type value, in lower case.
    package_type: Option<String>,
}

impl Existing {
    fn scan(file: FileText) -> Existing {
        let mut existing = Existing {
            name: file.name,
            text: String::new(),
            parameters: HashSet::new(),
            modules: Vec::new(),
            package_type: None,
        };
        for line in file.text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (name, value) = trimmed
                .split_once(|c: char| c.is_ascii_whitespace())
                .unwrap_or((trimmed, ""));
            let value = value.trim().trim_matches('"').to_ascii_lowercase();
            let parameter = name.to_ascii_uppercase();
            match parameter.as_str() {
                "MODULE_NAME" => existing.modules.push(value),
                "PACKAGE_TYPE" => existing.package_type = Some(value),
                _ => {}
            }
            existing.parameters.insert(parameter);
        }
        existing.text = file.text;
        existing
    }

    fn has_module(&self, name: &str) -> bool {
        self.modules.iter().any(|m| m.eq_ignore_ascii_case(name))
    }

    /// The file's base module: from its module_name lines, else from its package_type, else
    /// sg/failover (the parser's default package_type).
    fn base(&self) -> Result<&'static Module, String> {
        if let Some(module) = MODULES
            .iter()
            .find(|m| matches!(m.role, Role::Base(_)) && self.has_module(m.name))
        {
            return Ok(module);
        }
        let Some(package_type) = &self.package_type else {
            return Ok(module(DEFAULT_BASE));
        };
        MODULES
            .iter()
            .find(|m| matches!(m.role, Role::Base(t) if t.keyword() == package_type))
            .ok_or_else(|| {
                format!(
                    "{}: package_type {package_type} is not failover, multi_node or \
                     system_multi_node",
                    self.name
                )
            })
    }
}

/// Runs cmmakepkg.
pub fn make_package(args: &MakePackage) -> ExitCode {
    match make(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cmmakepkg: {error}");
            ExitCode::FAILURE
        }
    }
}

fn make(args: &MakePackage) -> Result<(), String> {
    let existing = match &args.include {
        Some(path) => Some(Existing::scan(read_file_text(path)?)),
        None => None,
    };
    let modules = select(&args.modules, existing.as_ref())?;
    let base = modules
        .iter()
        .find_map(|m| match m.role {
            Role::Base(package_type) => Some(package_type),
            _ => None,
        })
        .unwrap_or(PackageType::Failover);
    let added: Vec<&Module> = modules
        .iter()
        .copied()
        .filter(|m| existing.as_ref().is_none_or(|e| !e.has_module(m.name)))
        .collect();
    if args.verbose {
        let names = |list: &[&Module]| -> String {
            list.iter().map(|m| m.name).collect::<Vec<_>>().join(" ")
        };
        eprintln!("cmmakepkg: modules: {}", names(&modules));
        if let Some(existing) = &existing {
            eprintln!(
                "cmmakepkg: adding to {}: {}",
                existing.name,
                if added.is_empty() {
                    "nothing".to_owned()
                } else {
                    names(&added)
                }
            );
        }
    }
    let text = template(&added, base, existing.as_ref());
    match &args.output {
        None => io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the template: {e}")),
        Some(path) => write_new(path, &text),
    }
}

/// The modules of a template, in the order written: sg/basic, the base module, then the
/// optional modules in [`MODULES`] order. The base module is the one given; else, with -i,
/// the file's; else every module with sg/failover, as Serviceguard's cmmakepkg uses its
/// sg/default module (a link to sg/all) when it has no base module.
fn select(
    requested: &[String],
    existing: Option<&Existing>,
) -> Result<Vec<&'static Module>, String> {
    let (wanted, mut all) = named_modules(requested)?;
    let base = match (requested_base(&wanted)?, existing) {
        (Some(base), Some(existing)) => {
            let theirs = existing.base()?;
            if theirs.name != base.name {
                return Err(format!(
                    "{} is a {} package ({}); it cannot take base module {}",
                    existing.name,
                    role_type(theirs),
                    theirs.name,
                    base.name
                ));
            }
            base
        }
        (Some(base), None) => base,
        (None, Some(existing)) => existing.base()?,
        (None, None) => {
            all = true;
            module(DEFAULT_BASE)
        }
    };
    Ok(MODULES
        .iter()
        .filter(|m| match m.role {
            Role::Basic => true,
            Role::Base(_) => m.name == base.name,
            Role::Optional => all || wanted.iter().any(|w| w.name == m.name),
        })
        .collect())
}

/// The modules named with -m, and whether sg/all (or sg/default) is among them. Names
/// compare without regard to case.
fn named_modules(requested: &[String]) -> Result<(Vec<&'static Module>, bool), String> {
    let mut all = false;
    let mut wanted = Vec::new();
    for name in requested {
        if ALL_MODULES.iter().any(|all| all.eq_ignore_ascii_case(name)) {
            all = true;
            continue;
        }
        let found = MODULES
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let known: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
                format!(
                    "unknown module {name} (the modules: {}, sg/all)",
                    known.join(", ")
                )
            })?;
        wanted.push(found);
    }
    Ok((wanted, all))
}

/// The base module among `wanted`, if any; two different ones are refused.
fn requested_base(wanted: &[&'static Module]) -> Result<Option<&'static Module>, String> {
    let mut bases = wanted.iter().filter(|m| matches!(m.role, Role::Base(_)));
    let Some(first) = bases.next() else {
        return Ok(None);
    };
    match bases.find(|m| m.name != first.name) {
        Some(other) => Err(format!(
            "{} and {} are both base modules; a package has one",
            first.name, other.name
        )),
        None => Ok(Some(first)),
    }
}

/// The package_type keyword of a base module.
fn role_type(module: &Module) -> &'static str {
    match module.role {
        Role::Base(package_type) => package_type.keyword(),
        Role::Basic | Role::Optional => "?",
    }
}

/// The module called `name`, one of [`MODULES`].
fn module(name: &str) -> &'static Module {
    MODULES
        .iter()
        .find(|m| m.name == name)
        // DEFAULT_BASE is the name of a module of MODULES.
        .expect("a module of MODULES")
}

/// The template of `modules`; with -i, the existing file's text first, and only the
/// parameters it does not set. The module_name lines come after package_description, as
/// Serviceguard writes them, or first in the added part when the file has its package_name
/// and description already.
fn template(modules: &[&Module], base: PackageType, existing: Option<&Existing>) -> String {
    let mut text = String::new();
    match existing {
        None => banner(&mut text, modules),
        Some(existing) => {
            text.push_str(&existing.text);
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            let names: Vec<&str> = modules.iter().map(|m| m.name).collect();
            text.push_str(&format!(
                "\n# Added by cmmakepkg -i: {}.\n",
                if names.is_empty() {
                    "no module".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    // A parameter the file sets keeps its value and its place: it is not written again.
    let unset = |parameter: &&Parameter| {
        existing.is_none_or(|e| !e.parameters.contains(&parameter.name.to_ascii_uppercase()))
    };
    let mut module_lines_written = modules.is_empty();
    for module in modules {
        let parameters: Vec<&Parameter> = module.parameters.iter().filter(unset).collect();
        if parameters.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "\n# ---- {}: {} ----\n",
            module.name, module.summary
        ));
        for parameter in parameters {
            let identity = matches!(parameter.name, "package_name" | "package_description");
            if !identity && !module_lines_written {
                module_lines(&mut text, modules);
                module_lines_written = true;
            }
            write_parameter(&mut text, parameter, base);
        }
    }
    if !module_lines_written {
        module_lines(&mut text, modules);
    }
    text
}

fn banner(text: &mut String, modules: &[&Module]) {
    let names: Vec<&str> = modules.iter().map(|m| m.name).collect();
    text.push_str(&format!(
        "# Modular package configuration file, made by cmmakepkg from the modules\n\
         # {}.\n\
         #\n\
         # Edit it before use: give package_name, and whatever else the package needs, then\n\
         # check it with cmcheckconf -P FILE and apply it with cmapplyconf -P FILE.\n\
         # Each parameter is written with its default. A line \"#name value\" is optional or\n\
         # repeated (a service, an address): remove the # and edit the value to use it.\n\
         # Names are case-insensitive; values with blanks go in double quotes.\n",
        names.join(", ")
    ));
}

fn module_lines(text: &mut String, modules: &[&Module]) {
    text.push_str(
        "\n# module_name and module_version: the modules this file was made from. Do not edit\n\
         # them; cmmakepkg -i FILE -m MODULE adds a module.\n",
    );
    for module in modules {
        text.push_str(&format!(
            "{:<NAME_COLUMN$}{}\n{:<NAME_COLUMN$}{MODULE_VERSION}\n",
            "module_name", module.name, "module_version"
        ));
    }
}

fn write_parameter(text: &mut String, parameter: &Parameter, base: PackageType) {
    text.push('\n');
    for line in parameter.about {
        text.push_str(&format!("# {line}\n"));
    }
    let name = parameter.name;
    let line = match parameter.line {
        Line::Value(value) => format!("{name:<NAME_COLUMN$}{value}"),
        Line::Required => name.to_owned(),
        Line::Example(value) => format!("{:<NAME_COLUMN$}{value}", format!("#{name}")),
        Line::PackageType => format!("{name:<NAME_COLUMN$}{}", base.keyword()),
        Line::NodeFailFast => {
            let value = if base == PackageType::SystemMultiNode {
                "yes"
            } else {
                "no"
            };
            format!("{name:<NAME_COLUMN$}{value}")
        }
    };
    text.push_str(&line);
    text.push('\n');
}

/// Writes `text` to `path`, which must not exist: Serviceguard's own deployment scripts
/// remove the file before cmmakepkg writes it, and refusing cannot lose an edited file.
pub fn write_new(path: &Path, text: &str) -> Result<(), String> {
    let name = path.display();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                format!("{name} already exists; remove it or name another file")
            }
            _ => format!("cannot create {name}: {e}"),
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {name}: {e}"))
}

/// Runs cmcheckconf.
pub fn check_configuration(args: &CheckConfiguration) -> ExitCode {
    match check(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("cmcheckconf: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Checks and reports; true when no finding is an error.
///
/// With a cluster agent on this host (or at `CIMGUARD_URL`), the files are checked as a
/// cmapplyconf of them would be, against the configuration in effect and the cluster as it
/// runs ([`clcmds::check_against_cluster`]); without one, the files alone.
fn check(args: &CheckConfiguration) -> Result<bool, String> {
    if args.cluster.is_none() && args.packages.is_empty() && args.list.is_none() {
        return Err(
            "nothing to check: give -C CLUSTER_FILE, -P PACKAGE_FILE or -p LIST_FILE".into(),
        );
    }
    let mut report = Vec::new();
    let from_environment = std::env::var_os(CLUSTER_FILE_VARIABLE)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from);
    let cluster = match (&args.cluster, from_environment) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(path)) => {
            if args.verbose {
                report.push(format!(
                    "Using cluster file {} (${CLUSTER_FILE_VARIABLE})",
                    path.display()
                ));
            }
            Some(path)
        }
        (None, None) => None,
    };
    let (cluster, packages) =
        read_generation_files(cluster.as_deref(), &args.packages, args.list.as_deref())?;
    // Against the cluster in effect, the cluster file is what cmapplyconf would apply: -C,
    // else the one in effect; $CIMGUARD_CLUSTER_FILE stands in only for the files alone.
    let given_cluster = if args.cluster.is_some() {
        cluster.as_ref()
    } else {
        None
    };
    if args.verbose {
        report.extend(
            cluster
                .iter()
                .map(|f| format!("Checking cluster file {}", f.name)),
        );
        report.extend(
            packages
                .iter()
                .map(|f| format!("Checking package file {}", f.name)),
        );
    }
    let errors = match against_cluster(args.verbose, &mut report, given_cluster, &packages)? {
        Some(checked) => {
            if args.verbose && args.cluster.is_none() && cluster.is_some() {
                report.push(format!(
                    "The cluster file in effect is checked, not ${CLUSTER_FILE_VARIABLE}'s \
                     (cmapplyconf applies -C only)"
                ));
            }
            report.extend(checked.findings.iter().map(ToString::to_string));
            let refusals: Vec<&str> = checked
                .refusal
                .as_deref()
                .map(|r| r.lines().filter(|l| !l.trim().is_empty()).collect())
                .unwrap_or_default();
            report.extend(refusals.iter().map(|line| format!("cmcheckconf: {line}")));
            errors(&checked.findings) + refusals.len()
        }
        None => {
            if cluster.is_none() && args.verbose {
                report.push(format!(
                    "No cluster file (-C or ${CLUSTER_FILE_VARIABLE}): the packages are not \
                     checked against a cluster, and against each other only for their names"
                ));
            }
            let findings = generation_findings(cluster.as_ref(), &packages);
            report.extend(findings.iter().map(ToString::to_string));
            errors(&findings)
        }
    };
    report.push(match errors {
        0 => "cmcheckconf: Verification completed with no errors found.".to_owned(),
        1 => "cmcheckconf: Verification failed with 1 error.".to_owned(),
        n => format!("cmcheckconf: Verification failed with {n} errors."),
    });
    let mut stdout = io::stdout().lock();
    for line in &report {
        writeln!(stdout, "{line}").map_err(|e| format!("cannot write the report: {e}"))?;
    }
    Ok(errors == 0)
}

/// The findings that are errors.
fn errors(findings: &[Diagnostic]) -> usize {
    findings
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}

/// The check against the cluster in effect, when there is a cluster agent to ask: on this
/// host's local socket, or at `CIMGUARD_URL`. None, and the files are checked alone, when
/// there is none (said with -v), or when it cannot tell (said always, with why). An error
/// when the agent refuses the user: only a FULL_ADMIN may check.
fn against_cluster(
    verbose: bool,
    report: &mut Vec<String>,
    cluster: Option<&FileText>,
    packages: &[FileText],
) -> Result<Option<clcmds::ClusterCheck>, String> {
    let alone = |why: String| {
        format!("cmcheckconf: {why}: the files are checked alone, not against the cluster")
    };
    let client = match Client::from_env() {
        Ok(client) => client,
        Err(e) => {
            report.push(alone(e));
            return Ok(None);
        }
    };
    if client.absent() {
        if verbose {
            report.push("No cluster agent on this host: the files are checked alone".into());
        }
        return Ok(None);
    }
    // Only a FULL_ADMIN checks (Serviceguard lets only root run cmcheckconf): the command is
    // refused, with no check of the files alone in its place.
    let denied = |e: &str| {
        e.contains("CIM_ERR_ACCESS_DENIED").then(|| {
            format!("{e} (checking a configuration needs FULL_ADMIN, as applying one does)")
        })
    };
    match clcmds::check_against_cluster(&client, cluster, packages) {
        Ok(checked) => {
            if verbose {
                report.push(match checked.generation {
                    Some(generation) => format!(
                        "Checked against the cluster in effect (configuration generation \
                         {generation})"
                    ),
                    None => "Checked against the cluster in effect".to_owned(),
                });
            }
            Ok(Some(checked))
        }
        // A node configured in no cluster: the files would create one (cmapplyconf -C), and
        // each node of the cluster file checks them as it would check the creation.
        Err(e) if e.contains(cimguard_cluster::runtime::daemon::NOT_CONFIGURED) => {
            if let Some(cluster) = cluster {
                return match clcmds::check_new_cluster(&client, cluster, packages) {
                    Ok(checked) => {
                        if verbose {
                            report.push(
                                "This node is not configured in a cluster: checked on every \
                                 node of the cluster the files would create"
                                    .to_owned(),
                            );
                        }
                        Ok(Some(checked))
                    }
                    Err(e) => match denied(&e) {
                        Some(refused) => Err(refused),
                        None => {
                            report.push(format!(
                                "cmcheckconf: the nodes of the new cluster could not check \
                                 the files ({e}): the files are checked alone, not on its \
                                 nodes"
                            ));
                            Ok(None)
                        }
                    },
                };
            }
            report.push(
                "cmcheckconf: this node is not configured in a cluster: the files are checked \
                 alone (cmapplyconf -C given here creates the cluster, each of its nodes \
                 running cmcld unconfigured)"
                    .to_owned(),
            );
            Ok(None)
        }
        Err(e) => match denied(&e) {
            Some(refused) => Err(refused),
            None => {
                report.push(alone(format!(
                    "the configuration in effect could not be checked ({e})"
                )));
                Ok(None)
            }
        },
    }
}

/// Every finding about a configuration generation, checked as the daemon checks a
/// cmapplyconf (`checked_generation` in the daemon): each file with its parser, then, when
/// no file has an error, the packages against the cluster and each other
/// ([`package::check_set`]), or, without a cluster file, against each other's names
/// ([`package::check_names`]). Unlike the daemon, which keeps only the errors, the
/// warnings and notes are kept too, in file order.
pub fn generation_findings(cluster: Option<&FileText>, packages: &[FileText]) -> Vec<Diagnostic> {
    let mut findings = Vec::new();
    let mut errors = false;
    let mut keep = |result: Result<Vec<Diagnostic>, Vec<Diagnostic>>| match result {
        Ok(list) => findings.extend(list),
        Err(list) => {
            errors = true;
            findings.extend(list);
        }
    };
    let cluster = cluster.and_then(|file| match cluster::parse(&file.text, &file.name) {
        Ok(checked) => {
            keep(Ok(checked.findings));
            Some(checked.config)
        }
        Err(list) => {
            keep(Err(list));
            None
        }
    });
    let mut parsed = Vec::new();
    for file in packages {
        match package::parse(&file.text, &file.name) {
            Ok(checked) => {
                keep(Ok(checked.findings));
                parsed.push(checked.config);
            }
            Err(list) => keep(Err(list)),
        }
    }
    if !errors {
        let names: Vec<&str> = packages.iter().map(|f| f.name.as_str()).collect();
        match &cluster {
            Some(cluster) => findings.extend(package::check_set(cluster, &parsed, &names)),
            // Without the cluster, the packages are still checked against each other for
            // what needs no cluster: one file per package name.
            None => findings.extend(package::check_names(&parsed, &names)),
        }
    }
    findings
}

/// Reads the files of a configuration generation: the cluster file, the package files, then
/// the package files a list file names (one path a line, relative to the working directory;
/// blank lines and `#` comments skipped). Each file is named as given. The error is one line
/// naming the file that cannot be read (and, for a listed file, the list's line).
pub fn read_generation_files(
    cluster: Option<&Path>,
    packages: &[PathBuf],
    list: Option<&Path>,
) -> Result<(Option<FileText>, Vec<FileText>), String> {
    let cluster = cluster.map(read_file_text).transpose()?;
    let mut files = packages
        .iter()
        .map(|path| read_file_text(path))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(list) = list {
        let listed = read_file_text(list)?;
        for (index, line) in listed.text.lines().enumerate() {
            let path = line.trim();
            if path.is_empty() || path.starts_with('#') {
                continue;
            }
            let file = read_file_text(Path::new(path))
                .map_err(|e| format!("{e} (listed on line {} of {})", index + 1, listed.name))?;
            files.push(file);
        }
    }
    Ok((cluster, files))
}

/// A configuration file's text, at most [`FILE_BYTES_MAX`] bytes of UTF-8.
fn read_file_text(path: &Path) -> Result<FileText, String> {
    let name = path.display().to_string();
    let cannot = |why: String| format!("cannot read {name}: {why}");
    let file = File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(e.to_string()))?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(cannot(format!("larger than {FILE_BYTES_MAX} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| cannot("not UTF-8 text".into()))?;
    Ok(FileText { name, text })
}
