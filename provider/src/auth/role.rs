//! Serviceguard's access roles and the kinds of access a WBEM request needs. Pure data: which
//! operation needs which [`Access`] is decided by the dispatcher, not here.

use std::fmt;
use std::str::FromStr;

/// A Serviceguard access role, as written in the users file (`MONITOR`, `PACKAGE_ADMIN`,
/// `FULL_ADMIN`; parsed case-insensitively, printed in capitals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads the cluster and manages its own indication subscriptions.
    Monitor,
    /// A monitor that may also run, halt and move packages.
    PackageAdmin,
    /// May do anything.
    FullAdmin,
}

/// The kind of access a request needs; [`Role::permits`] says which roles have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Reading classes, instances, associations and qualifiers.
    Read,
    /// Creating, modifying and deleting indication filters, handlers and subscriptions that the
    /// principal owns.
    OwnSubscription,
    /// Invoking methods on package classes (run, halt, move a package).
    PackageControl,
    /// Any other change of state (the cluster, nodes, other principals' subscriptions, classes).
    Administer,
}

/// The text is not one of `MONITOR`, `PACKAGE_ADMIN`, `FULL_ADMIN` (in any case).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {text:?} (expected MONITOR, PACKAGE_ADMIN or FULL_ADMIN)")]
pub struct UnknownRole {
    /// The text that was given.
    pub text: String,
}

impl Role {
    /// Every role, from least to most privileged.
    pub const ALL: [Role; 3] = [Role::Monitor, Role::PackageAdmin, Role::FullAdmin];

    /// Whether this role grants `access`: MONITOR reads and manages its own subscriptions,
    /// PACKAGE_ADMIN also controls packages, FULL_ADMIN may do anything.
    #[must_use]
    pub fn permits(self, access: Access) -> bool {
        match access {
            Access::Read | Access::OwnSubscription => true,
            Access::PackageControl => matches!(self, Role::PackageAdmin | Role::FullAdmin),
            Access::Administer => self == Role::FullAdmin,
        }
    }

    /// The role's name as Serviceguard spells it (`MONITOR`, `PACKAGE_ADMIN`, `FULL_ADMIN`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Monitor => "MONITOR",
            Role::PackageAdmin => "PACKAGE_ADMIN",
            Role::FullAdmin => "FULL_ADMIN",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownRole {
                text: text.to_owned(),
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_prints_in_capitals() {
        assert_eq!("monitor".parse(), Ok(Role::Monitor));
        assert_eq!("Package_Admin".parse(), Ok(Role::PackageAdmin));
        assert_eq!("FULL_ADMIN".parse(), Ok(Role::FullAdmin));
        for role in Role::ALL {
            assert_eq!(role.to_string().parse(), Ok(role));
        }
        assert_eq!(Role::PackageAdmin.to_string(), "PACKAGE_ADMIN");
    }

    #[test]
    fn rejects_unknown_roles() {
        for text in ["", "ADMIN", "FULL ADMIN", "MONITOR ", "PACKAGEADMIN"] {
            assert_eq!(
                text.parse::<Role>(),
                Err(UnknownRole {
                    text: text.to_owned()
                })
            );
        }
    }

    #[test]
    fn grants_access_by_role() {
        use Access::*;
        let table = [
            (Role::Monitor, [true, true, false, false]),
            (Role::PackageAdmin, [true, true, true, false]),
            (Role::FullAdmin, [true, true, true, true]),
        ];
        for (role, expected) in table {
            let granted =
                [Read, OwnSubscription, PackageControl, Administer].map(|a| role.permits(a));
            assert_eq!(granted, expected, "{role}");
        }
    }
}
