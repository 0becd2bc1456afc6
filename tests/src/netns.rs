//! Network namespaces for cluster tests: one namespace per node and a hub namespace holding
//! one Linux bridge per heartbeat network, joined to each node by a veth pair. Node K has
//! address 10.9N.0.K on network N (interface ethN). Faults are nftables rules in a node's
//! namespace: dropped sources, one-way drops, random loss. Everything lives in the test's own
//! namespaces, which [`Drop`] removes; no traffic reaches the host's networks.
//!
//! Needs root (CI runs as root) and the `ip` and `nft` commands (scripts/test installs them).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The namespaces of one test cluster.
pub struct Namespaces {
    prefix: String,
    nodes: usize,
    networks: usize,
}

fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Namespaces {
    /// Creates the namespaces of `nodes` nodes on `networks` heartbeat networks.
    pub fn create(nodes: usize, networks: usize) -> Result<Namespaces, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("the network-namespace tests need root (CI runs as root)".into());
        }
        let prefix = format!(
            "cgt{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let namespaces = Namespaces {
            prefix,
            nodes,
            networks,
        };
        namespaces.build()?;
        Ok(namespaces)
    }

    fn build(&self) -> Result<(), String> {
        let hub = self.hub();
        run(&["ip", "netns", "add", &hub])?;
        for n in 0..self.networks {
            let bridge = format!("br{n}");
            run(&["ip", "-n", &hub, "link", "add", &bridge, "type", "bridge"])?;
            run(&["ip", "-n", &hub, "link", "set", &bridge, "up"])?;
        }
        // The hub has an address on the first network, for a quorum server.
        run(&[
            "ip",
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{}/24", self.hub_address()),
            "dev",
            "br0",
        ])?;
        run(&["ip", "-n", &hub, "link", "set", "lo", "up"])?;
        for k in 1..=self.nodes {
            let ns = self.node(k);
            run(&["ip", "netns", "add", &ns])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            for n in 0..self.networks {
                let outer = format!("h{k}n{n}");
                let inner = format!("eth{n}");
                run(&[
                    "ip", "-n", &hub, "link", "add", &outer, "type", "veth", "peer", "name",
                    &inner, "netns", &ns,
                ])?;
                run(&[
                    "ip",
                    "-n",
                    &hub,
                    "link",
                    "set",
                    &outer,
                    "master",
                    &format!("br{n}"),
                ])?;
                run(&["ip", "-n", &hub, "link", "set", &outer, "up"])?;
                let address = format!("{}/24", self.address(k, n));
                run(&["ip", "-n", &ns, "addr", "add", &address, "dev", &inner])?;
                run(&["ip", "-n", &ns, "link", "set", &inner, "up"])?;
            }
        }
        Ok(())
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    /// The namespace of node `k` (1-based).
    pub fn node(&self, k: usize) -> String {
        format!("{}-n{k}", self.prefix)
    }

    /// Node `k`'s address on network `n`.
    pub fn address(&self, k: usize, n: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 90 + n as u8, 0, k as u8))
    }

    /// The hub's address on the first network (10.90.0.100), where a test's quorum server
    /// listens.
    pub fn hub_address(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 90, 0, 100))
    }

    /// A command run inside the hub's namespace.
    pub fn hub_command(&self, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command
            .arg("netns")
            .arg("exec")
            .arg(self.hub())
            .arg(program);
        command
    }

    /// A command run inside node `k`'s namespace.
    pub fn command(&self, k: usize, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command
            .arg("netns")
            .arg("exec")
            .arg(self.node(k))
            .arg(program);
        command
    }

    /// Replaces node `k`'s nftables rules with an input chain holding `rules` (nft syntax,
    /// one per line; empty: accept everything).
    pub fn set_input_rules(&self, k: usize, rules: &[String]) -> Result<(), String> {
        let mut script = String::from("flush ruleset\n");
        if !rules.is_empty() {
            script.push_str(
                "table inet cgtest {\n chain input {\n  type filter hook input priority 0; policy accept;\n",
            );
            for rule in rules {
                script.push_str("  ");
                script.push_str(rule);
                script.push('\n');
            }
            script.push_str(" }\n}\n");
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.node(k), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("nft has no stdin")?
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
        let output = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft in {}: {}\n{script}",
                self.node(k),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// The name of the hub's namespace (the bridges, and the test's vantage point on the
    /// networks).
    pub fn hub_namespace(&self) -> String {
        self.hub()
    }

    /// Runs `ip -n namespace args...`; its standard output.
    pub fn ip(&self, namespace: &str, args: &[&str]) -> Result<String, String> {
        let output = Command::new("ip")
            .arg("-n")
            .arg(namespace)
            .args(args)
            .output()
            .map_err(|e| format!("ip -n {namespace} {}: {e}", args.join(" ")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "ip -n {namespace} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// The addresses (with prefix lengths, `10.90.0.1/24`) on node `k`'s interface for
    /// network `n`, as `ip -o addr` lists them.
    pub fn addresses(&self, k: usize, n: usize) -> Vec<String> {
        let listing = self
            .ip(
                &self.node(k),
                &["-o", "addr", "show", "dev", &format!("eth{n}")],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        listing
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|w| *w == "inet" || *w == "inet6")?;
                words.next().map(ToString::to_string)
            })
            .collect()
    }

    /// The MAC address of node `k`'s interface for network `n`.
    pub fn mac(&self, k: usize, n: usize) -> String {
        let listing = self
            .ip(
                &self.node(k),
                &["-o", "link", "show", "dev", &format!("eth{n}")],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let mut words = listing.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .map(ToString::to_string)
            .unwrap_or_else(|| panic!("no MAC address in {listing:?}"))
    }

    /// The MAC address the hub's neighbour table has for `address` (None: no entry, or
    /// one without an address, as while it is being resolved).
    pub fn hub_neighbour(&self, address: IpAddr) -> Option<String> {
        let listing = self
            .ip(&self.hub(), &["neigh", "show", &address.to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut words = listing.split_whitespace();
        words
            .find(|w| *w == "lladdr")
            .and_then(|_| words.next())
            .map(ToString::to_string)
    }

    /// Sets node `k`'s interface for network `n` up or down (`ip link set`).
    pub fn set_link(&self, k: usize, n: usize, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        self.ip(&self.node(k), &["link", "set", &format!("eth{n}"), state])
            .map(drop)
    }

    /// The rule dropping what node `k` receives from `from` on `networks`.
    pub fn drop_from(&self, from: &[usize], networks: &[usize]) -> String {
        let sources: Vec<String> = from
            .iter()
            .flat_map(|j| networks.iter().map(move |n| (j, n)))
            .map(|(j, n)| self.address(*j, *n).to_string())
            .collect();
        format!("ip saddr {{ {} }} drop", sources.join(", "))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for k in 1..=self.nodes {
            let _ = run(&["ip", "netns", "delete", &self.node(k)]);
        }
        let _ = run(&["ip", "netns", "delete", &self.hub()]);
    }
}
