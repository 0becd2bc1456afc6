//! The access policies of the cluster file (USER_NAME / USER_HOST / USER_ROLE) and of package
//! files (user_name / user_host / user_role), as Serviceguard states them: a USER_NAME lists
//! up to eight login names or is ANY_USER alone, and one user has one role from a host.

use cimguard_cluster::config::cluster::{
    self, AccessPolicy, Role, UserHost, ACCESS_POLICIES_MAX, USER_NAMES_MAX,
};
use cimguard_cluster::config::{package, write};

/// A valid two-node cluster file followed by `access`.
fn cluster_file(access: &str) -> String {
    format!(
        "CLUSTER_NAME    acl\n\
         NODE_NAME       alpha\n\
         \x20 NETWORK_INTERFACE  eth0\n\
         \x20   HEARTBEAT_IP     10.1.1.1\n\
         \x20 CLUSTER_LOCK_LUN   /dev/sdc1\n\
         NODE_NAME       beta\n\
         \x20 NETWORK_INTERFACE  eth0\n\
         \x20   HEARTBEAT_IP     10.1.1.2\n\
         \x20 CLUSTER_LOCK_LUN   /dev/sdc1\n\
         {access}"
    )
}

/// The line of the cluster file's first access line (after the 9 lines of [`cluster_file`]).
const FIRST: usize = 10;

/// A valid package file followed by `access`.
fn package_file(access: &str) -> String {
    format!("package_name  dbpkg\nnode_name     alpha\nnode_name     beta\n{access}")
}

fn policy(user: Option<&str>, host: UserHost, role: Role) -> AccessPolicy {
    AccessPolicy {
        user: user.map(str::to_owned),
        host,
        role,
    }
}

/// The findings of a cluster file that must not read.
fn cluster_findings(text: &str) -> Vec<String> {
    cluster::parse(text, "acl.ascii")
        .map(|checked| panic!("accepted: {:?}", checked.config.access))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_user_name_lists_login_names_each_with_the_host_and_role() {
    let text = cluster_file(
        "USER_NAME john fred\tpatrick\nUSER_HOST bit\nUSER_ROLE PACKAGE_ADMIN\n\
         USER_NAME ANY_USER\nUSER_HOST ANY_SERVICEGUARD_NODE\nUSER_ROLE MONITOR\n",
    );
    let checked = cluster::parse(&text, "acl.ascii").unwrap();
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
    let bit = || UserHost::Host("bit".into());
    assert_eq!(
        checked.config.access,
        [
            policy(Some("john"), bit(), Role::PackageAdmin),
            policy(Some("fred"), bit(), Role::PackageAdmin),
            policy(Some("patrick"), bit(), Role::PackageAdmin),
            policy(None, UserHost::AnyServiceguardNode, Role::Monitor),
        ]
    );
}

#[test]
fn eight_names_read_and_nine_do_not() {
    let names = |count: usize| {
        (1..=count)
            .map(|k| format!("user{k}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let eight = cluster_file(&format!(
        "USER_NAME {}\nUSER_HOST CLUSTER_MEMBER_NODE\nUSER_ROLE MONITOR\n",
        names(USER_NAMES_MAX)
    ));
    let config = cluster::parse(&eight, "acl.ascii").unwrap().config;
    assert_eq!(config.access.len(), USER_NAMES_MAX);
    let nine = cluster_file(&format!(
        "USER_NAME {}\nUSER_HOST CLUSTER_MEMBER_NODE\nUSER_ROLE MONITOR\n",
        names(USER_NAMES_MAX + 1)
    ));
    // One finding, at the USER_NAME line: the triple's other lines are read without more.
    assert_eq!(
        cluster_findings(&nine),
        [format!(
            "acl.ascii:{FIRST}: error: USER_NAME: 9 login names; one line lists at most 8 \
             (give the others a line of their own)"
        )]
    );
}

#[test]
fn any_user_stands_alone() {
    let text = cluster_file("USER_NAME john ANY_USER\nUSER_HOST bit\nUSER_ROLE MONITOR\n");
    assert_eq!(
        cluster_findings(&text),
        [format!(
            "acl.ascii:{FIRST}: error: USER_NAME: \"john ANY_USER\": ANY_USER stands alone, \
             not in a list of login names"
        )]
    );
}

#[test]
fn one_user_given_two_roles_from_one_host_is_a_conflict() {
    // The manual's example: policies 1 and 2 conflict; policy 3, the wildcard, does not.
    let text = cluster_file(
        "USER_NAME john\nUSER_HOST bit\nUSER_ROLE PACKAGE_ADMIN\n\
         USER_NAME fred john\nUSER_HOST BIT\nUSER_ROLE MONITOR\n\
         USER_NAME ANY_USER\nUSER_HOST ANY_SERVICEGUARD_NODE\nUSER_ROLE MONITOR\n",
    );
    let (first, second) = (FIRST + 2, FIRST + 5);
    assert_eq!(
        cluster_findings(&text),
        [format!(
            "acl.ascii:{second}: error: USER_ROLE: john is given MONITOR and PACKAGE_ADMIN (on \
             line {first}) from the same USER_HOST: one user has one role from a host"
        )]
    );
}

#[test]
fn wildcards_other_hosts_and_repeats_are_no_conflict() {
    let text = cluster_file(
        "USER_NAME john\nUSER_HOST bit\nUSER_ROLE PACKAGE_ADMIN\n\
         USER_NAME ANY_USER\nUSER_HOST bit\nUSER_ROLE FULL_ADMIN\n\
         USER_NAME john\nUSER_HOST gryf\nUSER_ROLE MONITOR\n\
         USER_NAME john\nUSER_HOST CLUSTER_MEMBER_NODE\nUSER_ROLE FULL_ADMIN\n\
         USER_NAME john\nUSER_HOST ANY_SERVICEGUARD_NODE\nUSER_ROLE MONITOR\n\
         USER_NAME john john\nUSER_HOST bit\nUSER_ROLE PACKAGE_ADMIN\n",
    );
    let checked = cluster::parse(&text, "acl.ascii").unwrap();
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
    assert_eq!(checked.config.access.len(), 7);
}

#[test]
fn a_conflict_is_found_without_nodes_too() {
    let text = "CLUSTER_NAME acl\nUSER_NAME ANY_USER\nUSER_HOST CLUSTER_MEMBER_NODE\n\
                USER_ROLE MONITOR\nUSER_NAME any_user\nUSER_HOST cluster_member_node\n\
                USER_ROLE FULL_ADMIN\n";
    let findings = cluster_findings(text);
    assert!(
        findings.contains(
            &"acl.ascii:7: error: USER_ROLE: ANY_USER is given FULL_ADMIN and MONITOR (on line \
              4) from the same USER_HOST: one user has one role from a host"
                .to_owned()
        ),
        "{findings:#?}"
    );
}

#[test]
fn a_cluster_has_at_most_200_policies() {
    let triple = |k: usize| format!("USER_NAME u{k}\nUSER_HOST bit\nUSER_ROLE MONITOR\n");
    let most: String = (0..ACCESS_POLICIES_MAX).map(triple).collect();
    let config = cluster::parse(&cluster_file(&most), "acl.ascii")
        .unwrap()
        .config;
    assert_eq!(config.access.len(), ACCESS_POLICIES_MAX);
    let more: String = (0..=ACCESS_POLICIES_MAX).map(triple).collect();
    let line = FIRST + 3 * ACCESS_POLICIES_MAX;
    assert_eq!(
        cluster_findings(&cluster_file(&more)),
        [format!(
            "acl.ascii:{line}: error: USER_NAME: a cluster has at most 200 access policies"
        )]
    );
}

#[test]
fn a_listed_user_name_is_written_back_one_triple_per_name() {
    let text = cluster_file("USER_NAME john fred\nUSER_HOST bit\nUSER_ROLE FULL_ADMIN\n");
    let config = cluster::parse(&text, "acl.ascii").unwrap().config;
    let written = write::cluster_ascii(&config);
    assert!(
        written.contains(
            "USER_NAME                 john\nUSER_HOST                 bit\n\
             USER_ROLE                 FULL_ADMIN\n\
             USER_NAME                 fred\nUSER_HOST                 bit\n\
             USER_ROLE                 FULL_ADMIN\n"
        ),
        "{written}"
    );
    let again = cluster::parse(&written, "written.ascii").unwrap().config;
    assert_eq!(again.access, config.access);
}

#[test]
fn a_package_user_name_lists_login_names_too() {
    let text = package_file(
        "user_name   op1 op2 op3\nuser_host   CLUSTER_MEMBER_NODE\nuser_role   package_admin\n\
         user_name   any_user\nuser_host   alpha\nuser_role   package_admin\n",
    );
    let checked = package::parse(&text, "dbpkg.conf").unwrap();
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
    let member = || "CLUSTER_MEMBER_NODE".to_owned();
    assert_eq!(
        checked.config.access,
        [
            (Some("op1".to_owned()), member()),
            (Some("op2".to_owned()), member()),
            (Some("op3".to_owned()), member()),
            (None, "alpha".to_owned()),
        ]
    );
}

#[test]
fn a_package_user_name_has_the_same_limits() {
    let findings = |access: &str| -> Vec<String> {
        package::parse(&package_file(access), "dbpkg.conf")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        findings("user_name a b c d e f g h i\nuser_host alpha\nuser_role package_admin\n"),
        [
            "dbpkg.conf:4: error: USER_NAME: 9 login names; one line lists at most 8 (give the \
          others a line of their own)"
        ]
    );
    assert_eq!(
        findings("user_name ANY_USER root\nuser_host alpha\nuser_role package_admin\n"),
        [
            "dbpkg.conf:4: error: USER_NAME: \"ANY_USER root\": ANY_USER stands alone, not in a \
          list of login names"
        ]
    );
}

/// The set check's findings for the cluster file with `cluster_access` and the package file
/// with `package_access`.
fn set_findings(cluster_access: &str, package_access: &str) -> Vec<String> {
    let cluster = cluster::parse(&cluster_file(cluster_access), "acl.ascii")
        .unwrap()
        .config;
    let dbpkg = package::parse(&package_file(package_access), "dbpkg.conf")
        .unwrap()
        .config;
    package::check_set(&cluster, &[dbpkg], &["dbpkg.conf"])
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A user with a role from a host in the cluster file is given none from that host in a
/// package file (Managing Serviceguard, 11th ed., p. 255): the package's user_name line is
/// an error. ANY_USER on either side, another host or another user is no conflict.
#[test]
fn a_package_role_for_a_user_the_cluster_file_gives_one_from_that_host_is_a_conflict() {
    let cluster_access = "USER_NAME john fred\nUSER_HOST bit\nUSER_ROLE MONITOR\n\
                          USER_NAME ANY_USER\nUSER_HOST ANY_SERVICEGUARD_NODE\nUSER_ROLE MONITOR\n";
    assert_eq!(
        set_findings(
            cluster_access,
            "user_name   lee fred\nuser_host   BIT\nuser_role   package_admin\n"
        ),
        [
            "dbpkg.conf:4: error: USER_NAME: fred has the role MONITOR in the cluster file from \
             the same host: give a user a role from a host in the cluster file or in a package \
             file, not in both"
        ]
    );
    for fine in [
        // The wildcard's exception, both ways.
        "user_name   any_user\nuser_host   bit\nuser_role   package_admin\n",
        "user_name   lee\nuser_host   any_serviceguard_node\nuser_role   package_admin\n",
        // Another host.
        "user_name   john\nuser_host   cluster_member_node\nuser_role   package_admin\n",
    ] {
        assert_eq!(
            set_findings(cluster_access, fine),
            Vec::<String>::new(),
            "{fine}"
        );
    }
}
