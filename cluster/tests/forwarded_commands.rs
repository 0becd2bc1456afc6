//! Package commands and cmapplyconf given on a node that does not coordinate the packages:
//! the coordinator carries them out or refuses them, and the node that gave them hears which
//! (so cmrunpkg on any node can tell the operator, as Serviceguard does).

mod common;

use common::{seconds, set};

use cimguard_cluster::core::{Event, NodeId, NodeSet, Taken};
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::{Options, Simulation};

fn package(name: &str, nodes: &[u32], extra: &str) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str("service_name s\nservice_cmd /bin/s\n");
    text.push_str(extra);
    text
}

fn formed(packages: Vec<String>) -> Simulation {
    let mut options = Options::new(3, 7);
    options.packages = packages;
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3)))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim
}

/// The answers `node` heard so far: (serial, refusal).
fn answers(sim: &Simulation, node: u32) -> Vec<(u64, Option<String>)> {
    sim.trace()
        .iter()
        .filter(|r| r.node == NodeId(node))
        .filter_map(|r| match &r.event {
            Event::CommandAnswered { serial, refusal } => Some((*serial, refusal.clone())),
            _ => None,
        })
        .collect()
}

fn serial(taken: Taken) -> u64 {
    match taken {
        Taken::Forwarded(serial) => serial,
        Taken::Done => panic!("carried out on the node itself, not forwarded"),
    }
}

#[test]
fn the_coordinator_answers_what_it_carried_out_and_what_it_refused() {
    let mut sim = formed(vec![package("pkgA", &[1, 2, 3], "auto_run no\n")]);
    let a = sim.package("pkgA");
    // n1 coordinates: its own command is carried out at once.
    assert_eq!(
        sim.command(
            NodeId(0),
            Command::Disable {
                package: a,
                node: None
            }
        ),
        Ok(Taken::Done)
    );
    sim.run_for(seconds(2)).unwrap();
    // n2 and n3 both start the halted package, each on itself, before either hears of the
    // other: both pass their own checks, the coordinator carries out the first and refuses
    // the second.
    let on_n2 = serial(
        sim.command(
            NodeId(1),
            Command::Run {
                package: a,
                node: NodeId(1),
            },
        )
        .unwrap(),
    );
    let on_n3 = serial(
        sim.command(
            NodeId(2),
            Command::Run {
                package: a,
                node: NodeId(2),
            },
        )
        .unwrap(),
    );
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 1).is_empty()
            && !answers(s, 2).is_empty())
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let (n2, n3) = (answers(&sim, 1), answers(&sim, 2));
    assert_eq!(n2.len(), 1, "{n2:?}");
    assert_eq!(n3.len(), 1, "{n3:?}");
    assert_eq!(n2[0].0, on_n2);
    assert_eq!(n3[0].0, on_n3);
    let refused: Vec<&String> = [&n2[0].1, &n3[0].1].into_iter().flatten().collect();
    assert_eq!(
        refused.len(),
        1,
        "one carried out, one refused: {n2:?} {n3:?}"
    );
    assert!(
        refused[0].contains("running") || refused[0].contains("starting"),
        "{}",
        refused[0]
    );
    let winner = if n2[0].1.is_none() { 1 } else { 2 };
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA") == set(&[winner]))
        .unwrap());

    // A command refused for a node: refused at once where the refusal is plain to the node
    // itself, so nothing is forwarded.
    assert!(sim
        .command(
            NodeId(2),
            Command::Run {
                package: a,
                node: NodeId(2)
            }
        )
        .is_err());
    // A halt given on a non-coordinator is answered as carried out.
    let halt = serial(
        sim.command(
            NodeId(2),
            Command::Halt {
                package: a,
                node: None,
            },
        )
        .unwrap(),
    );
    assert!(sim
        .run_until(seconds(10), |s| answers(s, 2).len() == 2)
        .unwrap());
    assert_eq!(answers(&sim, 2)[1], (halt, None));
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA").is_empty())
        .unwrap());
}

#[test]
fn cmapplyconf_from_a_member_is_answered_by_the_coordinator() {
    let pkg_a = package("pkgA", &[1, 2, 3], "");
    let mut sim = formed(vec![pkg_a.clone()]);
    let files = [pkg_a, package("pkgB", &[2, 3], "auto_run no\n")];
    let before = sim.generation(NodeId(0)).unwrap();
    let taken = serial(sim.apply(NodeId(2), None, &files).unwrap());
    // The same files again before the first took effect: the coordinator has it pending
    // already, and says so as taken.
    let again = serial(sim.apply(NodeId(1), None, &files).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 2).is_empty()
            && !answers(s, 1).is_empty())
        .unwrap());
    assert_eq!(answers(&sim, 2), vec![(taken, None)]);
    assert_eq!(answers(&sim, 1), vec![(again, None)]);
    // One new generation everywhere (the two applies were one change).
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > Some(before)))
        .unwrap());
    let after = sim.generation(NodeId(0));
    sim.run_for(seconds(10)).unwrap();
    assert!((0..3).all(|n| sim.generation(NodeId(n)) == after));
    assert_eq!(sim.catalog().packages.len(), 2);
}

#[test]
fn two_different_cmapplyconf_at_once_one_is_refused_to_its_node() {
    let pkg_a = package("pkgA", &[1, 2, 3], "");
    let mut sim = formed(vec![pkg_a.clone()]);
    let with_b = [pkg_a.clone(), package("pkgB", &[2, 3], "auto_run no\n")];
    let with_c = [pkg_a, package("pkgC", &[3, 1], "auto_run no\n")];
    let on_n2 = serial(sim.apply(NodeId(1), None, &with_b).unwrap());
    let on_n3 = serial(sim.apply(NodeId(2), None, &with_c).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 1).is_empty()
            && !answers(s, 2).is_empty())
        .unwrap());
    let (n2, n3) = (answers(&sim, 1), answers(&sim, 2));
    assert_eq!((n2.len(), n3.len()), (1, 1), "{n2:?} {n3:?}");
    assert_eq!((n2[0].0, n3[0].0), (on_n2, on_n3));
    // The first to arrive is taken, the other refused to its node.
    let (taken, refused, refusal) = match (&n2[0].1, &n3[0].1) {
        (None, Some(why)) => ("pkgB", "pkgC", why),
        (Some(why), None) => ("pkgC", "pkgB", why),
        _ => panic!("one taken, one refused: {n2:?} {n3:?}"),
    };
    assert!(refusal.contains("configuration"), "{refusal}");
    assert!(sim
        .run_until(seconds(30), |s| s.catalog().packages.len() == 2)
        .unwrap());
    assert!(sim.catalog().find(taken).is_some());
    assert!(sim.catalog().find(refused).is_none());
}

#[test]
fn cmhaltnode_of_another_member_is_carried_out_there_and_answered() {
    let mut sim = formed(vec![package("pkgA", &[3, 1, 2], "")]);
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA") == set(&[2]))
        .unwrap());
    // Without -f: n3 refuses while pkgA runs there, and n1 hears why.
    let refused = serial(sim.halt_other(NodeId(0), NodeId(2), false, false).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 0).is_empty())
        .unwrap());
    let (answered, why) = answers(&sim, 0)[0].clone();
    assert_eq!(answered, refused);
    assert!(
        why.as_deref().unwrap_or_default().contains("pkgA"),
        "{why:?}"
    );
    assert_eq!(sim.members(NodeId(0)), NodeSet::first(3));
    // A node that is not a member is refused at once.
    assert!(sim.halt_other(NodeId(0), NodeId(5), false, false).is_err());
    // With -f: n3 halts its package and leaves; pkgA fails over to n1.
    let halted = serial(sim.halt_other(NodeId(1), NodeId(2), true, false).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 1).is_empty())
        .unwrap());
    assert_eq!(answers(&sim, 1), vec![(halted, None)]);
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1]))
            && s.running_on("pkgA") == set(&[0]))
        .unwrap());
}
