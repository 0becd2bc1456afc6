//! Networks, cmnetd's job: relocatable package addresses and the state of the subnets the
//! packages monitor, through rtnetlink, on the interfaces of the network namespace the daemon
//! runs in.
//!
//! - **Relocatable addresses** (`ip_subnet` / `ip_address`, serviceguard.md 5.1). When a
//!   package starts, each of its ip_addresses goes on the interface that has an address on
//!   its ip_subnet, with that address's prefix length ([`add_addresses`]); an address this
//!   node holds already stays as it is. Then neighbours are told that the address now lives
//!   at this interface's MAC address ([`announce`]): gratuitous ARP for IPv4 (an ARP
//!   announcement, RFC 5227), an unsolicited neighbour advertisement with the override flag
//!   for IPv6 (RFC 4861 7.2.6), [`ANNOUNCEMENTS`] of each [`ANNOUNCEMENT_INTERVAL`] apart.
//!   Without them a router or client would keep sending to the MAC address of the node the
//!   package left until its cache entry expired. When the package halts the addresses are
//!   removed from wherever they are on this node ([`remove_addresses`]).
//! - **Clean start.** A node that was fenced (kill -9 of cmcld, a lost quorum) took its
//!   packages' processes with it, but not their addresses: the kernel keeps them until the
//!   machine reboots, and a fence here is not always a reboot. Such an address answers ARP
//!   beside the node that runs the package now and would answer again on its own as soon as
//!   a neighbour's cache entry for it expired. So a daemon that starts removes the relocatable
//!   addresses of every package it does not run, except the packages it adopts (left running
//!   detached by cmhaltnode -d, re-attached without a restart).
//! - **Subnet monitor** ([`Monitor`]): a thread subscribed to netlink's link and address
//!   notifications keeps every interface's state (up when administratively up, running and
//!   with its operational state up or unknown) and addresses, and tells each change of a
//!   monitored subnet: up while at least one up interface of this node has an address on it,
//!   down when only interfaces that are down have one, absent when no interface has one at
//!   start (a PARTIAL monitored_subnet is not monitored on a node without it; a FULL one
//!   keeps the package off that node).
//!
//! A subnet is named by its network address, as Serviceguard's files do (`ip_subnet
//! 10.20.0.0`); an interface is on it when one of its addresses, masked with its prefix
//! length, is that address.
//!
//! Netlink is spoken synchronously with the rust-netlink crates (`netlink-sys` for the
//! socket, `netlink-packet-route` for the messages), the same ones `rtnetlink` builds on:
//! the runtime is threads. Frames go out through `pnet_datalink`'s AF_PACKET channel and are
//! built with `pnet_packet`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use netlink_packet_core::{
    DecodeError, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::TimeVal;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, NdpOption, NdpOptionTypes, NeighborAdvertFlags,
};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;

use crate::config::package::PackageConfig;
use crate::packages::SubnetState;

/// How many times each relocatable address is announced after it is added.
pub const ANNOUNCEMENTS: usize = 3;
/// The time between two announcements of an address: the run path waits
/// `(ANNOUNCEMENTS - 1) * ANNOUNCEMENT_INTERVAL` for them, whatever the number of addresses.
pub const ANNOUNCEMENT_INTERVAL: Duration = Duration::from_millis(100);
/// How long a netlink request may go unanswered (the kernel answers at once; this bounds a
/// package start against the unexpected).
const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);
/// The receive buffer for netlink messages: the kernel's dump chunks are at most 32 KiB.
const RECEIVE_BYTES: usize = 64 * 1024;
/// The monitor socket's kernel buffer, large enough that a burst of notifications (many
/// interfaces changing at once) does not overrun it; an overrun is repaired by a new dump.
const MONITOR_SOCKET_BYTES: usize = 1 << 20;
/// How often a dump interrupted by a change (NLM_F_DUMP_INTR) is tried again.
const DUMP_ATTEMPTS_MAX: usize = 5;
/// The pause of the monitor after an error it cannot repair, before it tries again.
const MONITOR_RETRY: Duration = Duration::from_secs(1);

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No interface of this node has an address on the package's ip_subnet.
    #[error("no interface of this node has an address on ip_subnet {subnet}")]
    NoInterface {
        /// The ip_subnet.
        subnet: IpAddr,
    },
    /// An ip_address is not on its ip_subnet (with the prefix length of the interface found
    /// for the subnet).
    #[error("ip_address {address} is not on ip_subnet {subnet}/{prefix} ({interface})")]
    OutsideSubnet {
        /// The ip_address.
        address: IpAddr,
        /// The ip_subnet.
        subnet: IpAddr,
        /// The prefix length of the interface's address on the subnet.
        prefix: u8,
        /// The interface.
        interface: String,
    },
    /// A netlink request failed or went unanswered.
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// What was asked.
        what: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// A netlink reply did not decode.
    #[error("netlink: {what}: a reply did not decode: {detail}")]
    Undecodable {
        /// What was asked.
        what: String,
        /// The decoder's words.
        detail: String,
    },
    /// An address announcement could not be sent.
    #[error("{interface}: cannot announce {address}: {source}")]
    Announce {
        /// The interface.
        interface: String,
        /// The address.
        address: IpAddr,
        /// Why.
        source: io::Error,
    },
}

/// One interface of this node, as netlink tells it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    /// The kernel's interface index.
    pub index: u32,
    /// Its name (`eth0`).
    pub name: String,
    /// Administratively up, running (carrier) and with its operational state up or unknown.
    pub up: bool,
    /// Its Ethernet address, where it has one and takes ARP (not a loopback or NOARP
    /// interface): where announcements go out.
    pub mac: Option<[u8; 6]>,
    /// Its addresses with their prefix lengths.
    pub addresses: BTreeSet<(IpAddr, u8)>,
}

/// The interfaces of this node, by index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interfaces(pub BTreeMap<u32, Interface>);

/// Where one relocatable address goes (or is) on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The ip_address.
    pub address: IpAddr,
    /// The prefix length it takes from the interface's address on the subnet.
    pub prefix: u8,
    /// The interface's index.
    pub index: u32,
    /// The interface's name.
    pub interface: String,
    /// The interface's Ethernet address (None: nothing to announce on it).
    pub mac: Option<[u8; 6]>,
    /// The node held the address already (a start after an adoption, say).
    pub already: bool,
}

/// A relocatable address taken off an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The interface it was on.
    pub interface: String,
}

/// Whether `address` with prefix length `prefix` is on `subnet` (a network address): the
/// address masked with the prefix is the subnet. Families differ: never.
pub fn on_subnet(address: IpAddr, prefix: u8, subnet: IpAddr) -> bool {
    match (address, subnet) {
        (IpAddr::V4(address), IpAddr::V4(subnet)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(address) & mask == u32::from(subnet)
        }
        (IpAddr::V6(address), IpAddr::V6(subnet)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(address) & mask == u128::from(subnet)
        }
        _ => false,
    }
}

impl Interfaces {
    /// The interface with an address on `subnet`, and that address's prefix length: an up
    /// interface if there is one.
    pub fn on_subnet(&self, subnet: IpAddr) -> Option<(&Interface, u8)> {
        let mut found = self.0.values().filter_map(|interface| {
            interface
                .addresses
                .iter()
                .find(|(address, prefix)| on_subnet(*address, *prefix, subnet))
                .map(|(_, prefix)| (interface, *prefix))
        });
        let first = found.next()?;
        if first.0.up {
            return Some(first);
        }
        Some(found.find(|(interface, _)| interface.up).unwrap_or(first))
    }

    /// Whether an up interface has an address on `subnet`.
    pub fn subnet_up(&self, subnet: IpAddr) -> bool {
        self.subnet_state(subnet) == SubnetState::Up
    }

    /// `subnet` here: up when an interface that is up has an address on it, down when only
    /// interfaces that are down do, absent when none has.
    pub fn subnet_state(&self, subnet: IpAddr) -> SubnetState {
        let mut holders = self.0.values().filter(|interface| {
            interface
                .addresses
                .iter()
                .any(|(address, prefix)| on_subnet(*address, *prefix, subnet))
        });
        match holders.next() {
            None => SubnetState::Absent,
            Some(first) if first.up || holders.any(|interface| interface.up) => SubnetState::Up,
            Some(_) => SubnetState::Down,
        }
    }

    /// Every interface holding `address`, with its prefix length there.
    pub fn holding(&self, address: IpAddr) -> impl Iterator<Item = (&Interface, u8)> {
        self.0.values().filter_map(move |interface| {
            interface
                .addresses
                .iter()
                .find(|(a, _)| *a == address)
                .map(|(_, prefix)| (interface, *prefix))
        })
    }

    /// Where each ip_address of `ip_subnets` goes: on the interface holding it already, or
    /// on the interface on its subnet with that interface's prefix length.
    pub fn plan(
        &self,
        ip_subnets: &[(IpAddr, Vec<IpAddr>)],
    ) -> Result<Vec<Placement>, NetworkError> {
        let mut placements = Vec::new();
        for (subnet, addresses) in ip_subnets {
            for address in addresses {
                let (interface, prefix, already) = match self.holding(*address).next() {
                    Some((interface, prefix)) => (interface, prefix, true),
                    None => {
                        let (interface, prefix) = self
                            .on_subnet(*subnet)
                            .ok_or(NetworkError::NoInterface { subnet: *subnet })?;
                        (interface, prefix, false)
                    }
                };
                if !on_subnet(*address, prefix, *subnet) {
                    return Err(NetworkError::OutsideSubnet {
                        address: *address,
                        subnet: *subnet,
                        prefix,
                        interface: interface.name.clone(),
                    });
                }
                placements.push(Placement {
                    address: *address,
                    prefix,
                    index: interface.index,
                    interface: interface.name.clone(),
                    mac: interface.mac,
                    already,
                });
            }
        }
        Ok(placements)
    }

    /// Applies a link or address message (a dump's or a notification); others are ignored.
    pub fn apply(&mut self, message: &RouteNetlinkMessage) {
        match message {
            // Only the interfaces' own messages: bridge port messages (AF_BRIDGE) arrive in
            // the same group, and a port leaving its bridge is a DelLink of the port.
            RouteNetlinkMessage::NewLink(link)
                if link.header.interface_family == AddressFamily::Unspec =>
            {
                let entry = self.entry(link.header.index);
                entry.up = link_up(link);
                entry.mac = link_mac(link);
                if let Some(name) = link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some(name),
                    _ => None,
                }) {
                    entry.name.clone_from(name);
                }
            }
            RouteNetlinkMessage::DelLink(link)
                if link.header.interface_family == AddressFamily::Unspec =>
            {
                self.0.remove(&link.header.index);
            }
            RouteNetlinkMessage::NewAddress(message) => {
                if let Some(address) = address_of(message) {
                    self.entry(message.header.index)
                        .addresses
                        .insert((address, message.header.prefix_len));
                }
            }
            RouteNetlinkMessage::DelAddress(message) => {
                if let (Some(address), Some(interface)) =
                    (address_of(message), self.0.get_mut(&message.header.index))
                {
                    interface
                        .addresses
                        .remove(&(address, message.header.prefix_len));
                }
            }
            _ => {}
        }
    }

    /// The interface `index`, made when an address arrives before its link.
    fn entry(&mut self, index: u32) -> &mut Interface {
        self.0.entry(index).or_insert_with(|| Interface {
            index,
            ..Interface::default()
        })
    }
}

/// Up: administratively up and running, and the operational state up or unknown (what
/// loopback and some virtual interfaces report); lower layer down, dormant or down is down.
fn link_up(link: &LinkMessage) -> bool {
    let flags = link.header.flags;
    let operational = link
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::OperState(state) => Some(*state),
            _ => None,
        })
        .unwrap_or(State::Unknown);
    flags.contains(LinkFlags::Up | LinkFlags::Running)
        && matches!(operational, State::Up | State::Unknown)
}

/// The interface's Ethernet address, when it takes ARP.
fn link_mac(link: &LinkMessage) -> Option<[u8; 6]> {
    let flags = link.header.flags;
    if flags.intersects(LinkFlags::Loopback | LinkFlags::Noarp) {
        return None;
    }
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice())
            .ok()
            .filter(|mac| *mac != [0; 6]),
        _ => None,
    })
}

/// The interface address of an address message: IFA_LOCAL where given (IPv4; IFA_ADDRESS
/// is then the peer of a point-to-point link), IFA_ADDRESS otherwise.
fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(address) => Some(*address),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(address) => Some(*address),
            _ => None,
        })
    })
}

/// A synchronous rtnetlink connection for requests (dumps, address changes).
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    /// A connection to the kernel of this network namespace.
    pub fn open() -> Result<Netlink, NetworkError> {
        let failed = |source| NetworkError::Netlink {
            what: "open a socket".into(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(failed)?;
        socket.bind_auto().map_err(failed)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(failed)?;
        let timeout = TimeVal::new(NETLINK_TIMEOUT.as_secs() as _, 0);
        setsockopt(&socket, ReceiveTimeout, &timeout)
            .map_err(|errno| failed(io::Error::from(errno)))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Every interface of this node with its state and addresses.
    pub fn interfaces(&mut self) -> Result<Interfaces, NetworkError> {
        for _ in 0..DUMP_ATTEMPTS_MAX {
            let mut interfaces = Interfaces::default();
            let (links, links_interrupted) = self.request(
                "list the interfaces",
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
            )?;
            let (addresses, addresses_interrupted) = self.request(
                "list the addresses",
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                NLM_F_DUMP,
            )?;
            if links_interrupted || addresses_interrupted {
                continue;
            }
            for message in links.iter().chain(&addresses) {
                interfaces.apply(message);
            }
            return Ok(interfaces);
        }
        Err(NetworkError::Netlink {
            what: "list the interfaces".into(),
            source: io::Error::other(format!(
                "every one of {DUMP_ATTEMPTS_MAX} dumps was interrupted by a change"
            )),
        })
    }

    /// Adds `address`/`prefix` on interface `index`; an address there already is fine.
    pub fn add_address(
        &mut self,
        index: u32,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), NetworkError> {
        let what = format!("add {address}/{prefix} on interface {index}");
        let message = address_message(index, address, prefix);
        match self.request(
            &what,
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(()),
            Err(NetworkError::Netlink { source, .. })
                if source.raw_os_error() == Some(Errno::EEXIST as i32) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Removes `address`/`prefix` from interface `index`; an address not there is fine.
    pub fn delete_address(
        &mut self,
        index: u32,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), NetworkError> {
        let what = format!("remove {address}/{prefix} from interface {index}");
        let message = address_message(index, address, prefix);
        match self.request(&what, RouteNetlinkMessage::DelAddress(message), NLM_F_ACK) {
            Ok(_) => Ok(()),
            Err(NetworkError::Netlink { source, .. })
                if source.raw_os_error() == Some(Errno::EADDRNOTAVAIL as i32) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sends one request and reads its replies up to the end of a dump or the
    /// acknowledgement; the replies, and whether a change interrupted the dump.
    fn request(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(Vec<RouteNetlinkMessage>, bool), NetworkError> {
        let failed = |source| NetworkError::Netlink {
            what: what.to_string(),
            source,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0).map_err(failed)?;
        let mut replies = Vec::new();
        let mut interrupted = false;
        let mut buffer = vec![0; RECEIVE_BYTES];
        loop {
            let length = self
                .socket
                .recv(&mut &mut buffer[..], 0)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => failed(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {NETLINK_TIMEOUT:?}"),
                    )),
                    _ => failed(e),
                })?;
            for parsed in messages(&buffer[..length.min(RECEIVE_BYTES)]) {
                let reply = parsed.map_err(|e| NetworkError::Undecodable {
                    what: what.to_string(),
                    detail: e.to_string(),
                })?;
                // Late replies to an earlier request that timed out are not this one's.
                if reply.header.sequence_number != sequence {
                    continue;
                }
                interrupted |= reply.header.flags & NLM_F_DUMP_INTR != 0;
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    NetlinkPayload::Done(_) => return Ok((replies, interrupted)),
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok((replies, interrupted)),
                            Some(_) => Err(failed(error.to_io())),
                        };
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The message that adds or removes `address`/`prefix` on interface `index`. IPv6 addresses
/// skip duplicate address detection: the cluster guarantees the address is nowhere else (its
/// previous holder is fenced or has halted the package), and a tentative address would not
/// answer for the first second or so after a failover.
fn address_message(index: u32, address: IpAddr, prefix: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.index = index;
    message.header.prefix_len = prefix;
    message.header.scope = AddressScope::Universe;
    match address {
        IpAddr::V4(_) => {
            message.header.family = AddressFamily::Inet;
        }
        IpAddr::V6(_) => {
            message.header.family = AddressFamily::Inet6;
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    message.attributes.push(AddressAttribute::Local(address));
    message.attributes.push(AddressAttribute::Address(address));
    message
}

/// The netlink messages in one datagram, each decoded.
fn messages(
    bytes: &[u8],
) -> impl Iterator<Item = Result<NetlinkMessage<RouteNetlinkMessage>, DecodeError>> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let rest = bytes.get(offset..).filter(|rest| rest.len() >= 16)?;
        let length = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if length < 16 || length > rest.len() {
            // A length that does not fit ends the datagram (it cannot be stepped over).
            offset = bytes.len();
            return Some(Err(DecodeError::from(format!(
                "a message of {length} bytes in {} remaining",
                rest.len()
            ))));
        }
        // Messages are aligned to 4 bytes.
        offset += (length + 3) & !3;
        Some(NetlinkMessage::deserialize(&rest[..length]))
    })
}

/// Every ip_address of `package`, in file order.
pub fn package_addresses(package: &PackageConfig) -> Vec<IpAddr> {
    package
        .ip_subnets
        .iter()
        .flat_map(|(_, addresses)| addresses.iter().copied())
        .collect()
}

/// Adds the relocatable addresses of `ip_subnets` (a package's ip_subnet and ip_address
/// lines) to this node; where each went.
pub fn add_addresses(ip_subnets: &[(IpAddr, Vec<IpAddr>)]) -> Result<Vec<Placement>, NetworkError> {
    let mut netlink = Netlink::open()?;
    let placements = netlink.interfaces()?.plan(ip_subnets)?;
    for placement in placements.iter().filter(|p| !p.already) {
        netlink.add_address(placement.index, placement.address, placement.prefix)?;
    }
    Ok(placements)
}

/// Removes each of `addresses` from every interface of this node that holds it; what was
/// removed.
pub fn remove_addresses(addresses: &[IpAddr]) -> Result<Vec<Removed>, NetworkError> {
    let mut netlink = Netlink::open()?;
    let interfaces = netlink.interfaces()?;
    let mut removed = Vec::new();
    for address in addresses {
        for (interface, prefix) in interfaces.holding(*address) {
            netlink.delete_address(interface.index, *address, prefix)?;
            removed.push(Removed {
                address: *address,
                prefix,
                interface: interface.name.clone(),
            });
        }
    }
    Ok(removed)
}

/// Tells the neighbours where `placements` now are: [`ANNOUNCEMENTS`] rounds,
/// [`ANNOUNCEMENT_INTERVAL`] apart, of a gratuitous ARP (IPv4) or an unsolicited neighbour
/// advertisement (IPv6) for each address on an interface with an Ethernet address. Every
/// failure is returned; the addresses work without the announcements (neighbours learn them
/// when their entries expire), so the caller logs them rather than failing the package.
pub fn announce(placements: &[Placement]) -> Vec<NetworkError> {
    let mut failures = Vec::new();
    let mut senders: Vec<(u32, Box<dyn pnet_datalink::DataLinkSender>)> = Vec::new();
    let mut frames: Vec<(u32, &Placement, Vec<u8>)> = Vec::new();
    let system = pnet_datalink::interfaces();
    for placement in placements {
        let Some(mac) = placement.mac else { continue };
        let frame = match placement.address {
            IpAddr::V4(address) => arp_announcement(mac, address),
            IpAddr::V6(address) => neighbour_advertisement(mac, address),
        };
        if !senders.iter().any(|(index, _)| *index == placement.index) {
            match sender(&system, placement) {
                Ok(sender) => senders.push((placement.index, sender)),
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            }
        }
        frames.push((placement.index, placement, frame));
    }
    for round in 0..ANNOUNCEMENTS {
        if round > 0 && !frames.is_empty() {
            thread::sleep(ANNOUNCEMENT_INTERVAL);
        }
        for (index, placement, frame) in &frames {
            let Some((_, sender)) = senders.iter_mut().find(|(i, _)| i == index) else {
                continue;
            };
            let sent = sender
                .send_to(frame, None)
                .unwrap_or_else(|| Err(io::Error::other("no room in the send buffer")));
            if let Err(source) = sent {
                failures.push(NetworkError::Announce {
                    interface: placement.interface.clone(),
                    address: placement.address,
                    source,
                });
            }
        }
    }
    failures
}

/// An AF_PACKET sender on the placement's interface (not promiscuous: it only sends).
fn sender(
    system: &[pnet_datalink::NetworkInterface],
    placement: &Placement,
) -> Result<Box<dyn pnet_datalink::DataLinkSender>, NetworkError> {
    let failed = |source| NetworkError::Announce {
        interface: placement.interface.clone(),
        address: placement.address,
        source,
    };
    let interface = system
        .iter()
        .find(|i| i.index == placement.index)
        .ok_or_else(|| failed(io::Error::other("the interface is gone")))?;
    let config = pnet_datalink::Config {
        promiscuous: false,
        read_timeout: Some(Duration::from_millis(1)),
        write_timeout: Some(NETLINK_TIMEOUT),
        ..pnet_datalink::Config::default()
    };
    match pnet_datalink::channel(interface, config) {
        Ok(pnet_datalink::Channel::Ethernet(sender, _receiver)) => Ok(sender),
        Ok(_) => Err(failed(io::Error::other("not an Ethernet channel"))),
        Err(e) => Err(failed(e)),
    }
}

/// The Ethernet frame of an ARP announcement (RFC 5227 2.3) of `address` at `mac`: a
/// broadcast ARP request whose sender and target protocol addresses are both `address`.
/// Linux and most other stacks update an existing cache entry from it (override included),
/// without creating new ones.
pub fn arp_announcement(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    const ETHERNET_HEADER: usize = 14;
    const ARP: usize = 28;
    let mac = pnet_datalink::MacAddr::from(mac);
    let mut frame = vec![0u8; ETHERNET_HEADER + ARP];
    // Invariant: the buffers are exactly the packets' sizes, so the views exist.
    let mut ethernet = MutableEthernetPacket::new(&mut frame).expect("an Ethernet header fits");
    ethernet.set_destination(pnet_datalink::MacAddr::broadcast());
    ethernet.set_source(mac);
    ethernet.set_ethertype(EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(&mut frame[ETHERNET_HEADER..]).expect("an ARP packet fits");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(mac);
    arp.set_sender_proto_addr(address);
    arp.set_target_hw_addr(pnet_datalink::MacAddr::zero());
    arp.set_target_proto_addr(address);
    frame
}

/// The Ethernet frame of an unsolicited neighbour advertisement (RFC 4861 4.4 and 7.2.6) of
/// `address` at `mac`: to all nodes (ff02::1), hop limit 255, the override flag set and the
/// target link-layer address option.
pub fn neighbour_advertisement(mac: [u8; 6], address: Ipv6Addr) -> Vec<u8> {
    const ETHERNET_HEADER: usize = 14;
    const IPV6_HEADER: usize = 40;
    // Type, code, checksum, flags and reserved, target; one option of 8 bytes.
    const ADVERTISEMENT: usize = 24 + 8;
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let source_mac = pnet_datalink::MacAddr::from(mac);
    let mut frame = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + ADVERTISEMENT];
    // Invariant: the buffers are exactly the packets' sizes, so the views exist.
    let mut ethernet = MutableEthernetPacket::new(&mut frame).expect("an Ethernet header fits");
    // The multicast MAC address of ff02::1 (RFC 2464 7).
    ethernet.set_destination(pnet_datalink::MacAddr::new(0x33, 0x33, 0, 0, 0, 1));
    ethernet.set_source(source_mac);
    ethernet.set_ethertype(EtherTypes::Ipv6);
    let mut ip =
        MutableIpv6Packet::new(&mut frame[ETHERNET_HEADER..]).expect("an IPv6 header fits");
    ip.set_version(6);
    ip.set_payload_length(ADVERTISEMENT as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(255);
    ip.set_source(address);
    ip.set_destination(all_nodes);
    let mut advertisement =
        MutableNeighborAdvertPacket::new(&mut frame[ETHERNET_HEADER + IPV6_HEADER..])
            .expect("an advertisement fits");
    advertisement.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
    advertisement.set_icmpv6_code(Icmpv6Code(0));
    advertisement.set_flags(NeighborAdvertFlags::Override);
    advertisement.set_target_addr(address);
    advertisement.set_options(&[NdpOption {
        option_type: NdpOptionTypes::TargetLLAddr,
        length: 1,
        data: mac.to_vec(),
    }]);
    let checksum = icmpv6::checksum(
        &Icmpv6Packet::new(&frame[ETHERNET_HEADER + IPV6_HEADER..]).expect("an ICMPv6 packet fits"),
        &address,
        &all_nodes,
    );
    let mut advertisement =
        MutableNeighborAdvertPacket::new(&mut frame[ETHERNET_HEADER + IPV6_HEADER..])
            .expect("an advertisement fits");
    advertisement.set_checksum(checksum);
    frame
}

/// A change of a monitored subnet on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetChange {
    /// The monitored_subnet.
    pub subnet: IpAddr,
    /// Its state now. Absent is told only as a subnet's first state: one seen here once
    /// stays at least down, since taking an interface down removes its IPv6 addresses.
    pub state: SubnetState,
}

/// What the monitor tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEvent {
    /// A monitored subnet changed (or its first state, once monitored).
    Subnet(SubnetChange),
    /// Something went wrong that the daemon's log should show; the monitor goes on.
    Trouble(String),
}

/// The subnet monitor: a thread that follows netlink's link and address notifications and
/// tells each change of a monitored subnet's state. It runs for the life of the process.
#[derive(Clone)]
pub struct Monitor {
    shared: Arc<Shared>,
}

struct Shared {
    watched: Mutex<Watched>,
    tell: Box<dyn Fn(MonitorEvent) + Send + Sync>,
}

#[derive(Default)]
struct Watched {
    interfaces: Interfaces,
    /// The monitored subnets with the state last told.
    subnets: BTreeMap<IpAddr, SubnetState>,
}

impl Monitor {
    /// Starts monitoring `subnets`; their first states are told at once (through `tell`,
    /// which must not block), then every change.
    pub fn start(
        subnets: impl IntoIterator<Item = IpAddr>,
        tell: impl Fn(MonitorEvent) + Send + Sync + 'static,
    ) -> Result<Monitor, NetworkError> {
        let failed = |what: &str, source| NetworkError::Netlink {
            what: what.to_string(),
            source,
        };
        // Subscribed before the dump, so that no change falls between them: a notification
        // of what the dump shows already applies again without harm.
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| failed("open a socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| failed("bind the monitor socket", e))?;
        let _ = socket.set_rx_buf_sz(MONITOR_SOCKET_BYTES);
        for group in [
            nix::libc::RTNLGRP_LINK,
            nix::libc::RTNLGRP_IPV4_IFADDR,
            nix::libc::RTNLGRP_IPV6_IFADDR,
        ] {
            socket
                .add_membership(group)
                .map_err(|e| failed("subscribe to link and address changes", e))?;
        }
        let interfaces = Netlink::open()?.interfaces()?;
        let monitor = Monitor {
            shared: Arc::new(Shared {
                watched: Mutex::new(Watched {
                    interfaces,
                    subnets: BTreeMap::new(),
                }),
                tell: Box::new(tell),
            }),
        };
        monitor.set_subnets(subnets);
        let shared = Arc::clone(&monitor.shared);
        thread::Builder::new()
            .name("cmcld-netmon".into())
            .spawn(move || watch(&socket, &shared))
            .map_err(|e| failed("start the monitor thread", e))?;
        Ok(monitor)
    }

    /// Monitors `subnets` from now on: the first state of each new one is told; those no
    /// longer given are forgotten.
    pub fn set_subnets(&self, subnets: impl IntoIterator<Item = IpAddr>) {
        let wanted: BTreeSet<IpAddr> = subnets.into_iter().collect();
        let mut watched = self.shared.watched();
        watched.subnets.retain(|subnet, _| wanted.contains(subnet));
        for subnet in wanted {
            if !watched.subnets.contains_key(&subnet) {
                let state = watched.interfaces.subnet_state(subnet);
                watched.subnets.insert(subnet, state);
                (self.shared.tell)(MonitorEvent::Subnet(SubnetChange { subnet, state }));
            }
        }
    }

    /// The monitored subnets' states as last told.
    pub fn states(&self) -> BTreeMap<IpAddr, SubnetState> {
        self.shared.watched().subnets.clone()
    }
}

impl Shared {
    fn watched(&self) -> MutexGuard<'_, Watched> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every subnet whose state differs from the one last told (under the lock, so
    /// that changes are told in the order they happened).
    fn tell_changes(&self, watched: &mut Watched) {
        let Watched {
            interfaces,
            subnets,
        } = watched;
        for (subnet, told) in subnets.iter_mut() {
            let state = match interfaces.subnet_state(*subnet) {
                SubnetState::Absent if *told != SubnetState::Absent => SubnetState::Down,
                state => state,
            };
            if state != *told {
                *told = state;
                (self.tell)(MonitorEvent::Subnet(SubnetChange {
                    subnet: *subnet,
                    state,
                }));
            }
        }
    }
}

/// The monitor thread: applies each notification and tells the changes. An overrun socket
/// (ENOBUFS: notifications were lost) is repaired by a new dump.
fn watch(socket: &Socket, shared: &Shared) {
    let mut buffer = vec![0; RECEIVE_BYTES];
    loop {
        match socket.recv(&mut &mut buffer[..], 0) {
            Ok(length) => {
                let mut watched = shared.watched();
                for parsed in messages(&buffer[..length.min(RECEIVE_BYTES)]) {
                    match parsed {
                        Ok(NetlinkMessage {
                            payload: NetlinkPayload::InnerMessage(message),
                            ..
                        }) => watched.interfaces.apply(&message),
                        Ok(_) => {}
                        Err(e) => (shared.tell)(MonitorEvent::Trouble(format!(
                            "network monitor: a notification did not decode: {e}"
                        ))),
                    }
                }
                shared.tell_changes(&mut watched);
            }
            Err(e) if e.raw_os_error() == Some(Errno::EINTR as i32) => {}
            Err(e) => {
                let overrun = e.raw_os_error() == Some(Errno::ENOBUFS as i32);
                if !overrun {
                    (shared.tell)(MonitorEvent::Trouble(format!("network monitor: {e}")));
                    thread::sleep(MONITOR_RETRY);
                }
                match Netlink::open().and_then(|mut n| n.interfaces()) {
                    Ok(interfaces) => {
                        let mut watched = shared.watched();
                        watched.interfaces = interfaces;
                        shared.tell_changes(&mut watched);
                    }
                    Err(e) => {
                        (shared.tell)(MonitorEvent::Trouble(format!("network monitor: {e}")));
                        thread::sleep(MONITOR_RETRY);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnet_packet::arp::ArpPacket;
    use pnet_packet::ethernet::EthernetPacket;
    use pnet_packet::icmpv6::ndp::NeighborAdvertPacket;
    use pnet_packet::ipv6::Ipv6Packet;
    use pnet_packet::Packet;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    fn interface(index: u32, name: &str, up: bool, addresses: &[(&str, u8)]) -> Interface {
        Interface {
            index,
            name: name.into(),
            up,
            mac: Some([2, 0, 0, 0, 0, index as u8]),
            addresses: addresses
                .iter()
                .map(|(a, p)| (a.parse().unwrap(), *p))
                .collect(),
        }
    }

    fn node() -> Interfaces {
        Interfaces(
            [
                interface(1, "lo", true, &[("127.0.0.1", 8), ("::1", 128)]),
                interface(2, "eth0", true, &[("10.90.0.1", 24), ("fd00:90::1", 64)]),
                interface(3, "eth1", false, &[("10.91.0.1", 24)]),
                interface(4, "eth2", true, &[("192.168.5.130", 25)]),
            ]
            .into_iter()
            .map(|i| (i.index, i))
            .collect(),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_is_on_a_subnet_when_masked_it_is_the_subnet() {
        assert!(on_subnet(ip("10.90.0.7"), 24, ip("10.90.0.0")));
        assert!(!on_subnet(ip("10.90.1.7"), 24, ip("10.90.0.0")));
        // A subnet address with host bits set names no subnet.
        assert!(!on_subnet(ip("10.90.0.7"), 24, ip("10.90.0.1")));
        assert!(on_subnet(ip("192.168.5.130"), 25, ip("192.168.5.128")));
        assert!(!on_subnet(ip("192.168.5.130"), 24, ip("192.168.5.128")));
        assert!(on_subnet(ip("10.1.2.3"), 0, ip("0.0.0.0")));
        assert!(on_subnet(ip("10.1.2.3"), 32, ip("10.1.2.3")));
        assert!(on_subnet(ip("fd00:90::1"), 64, ip("fd00:90::")));
        assert!(!on_subnet(ip("fd00:91::1"), 64, ip("fd00:90::")));
        assert!(!on_subnet(ip("10.90.0.1"), 24, ip("fd00:90::")));
    }

    #[test]
    fn a_subnet_is_found_on_its_interface_with_that_interface_prefix() {
        let node = node();
        let (found, prefix) = node.on_subnet(ip("10.90.0.0")).unwrap();
        assert_eq!((found.name.as_str(), prefix), ("eth0", 24));
        let (found, prefix) = node.on_subnet(ip("192.168.5.128")).unwrap();
        assert_eq!((found.name.as_str(), prefix), ("eth2", 25));
        let (found, prefix) = node.on_subnet(ip("fd00:90::")).unwrap();
        assert_eq!((found.name.as_str(), prefix), ("eth0", 64));
        assert!(node.on_subnet(ip("10.99.0.0")).is_none());
        // Down interfaces still carry their subnet (an up one is preferred).
        assert_eq!(node.on_subnet(ip("10.91.0.0")).unwrap().0.name, "eth1");
        assert!(node.subnet_up(ip("10.90.0.0")));
        assert!(!node.subnet_up(ip("10.91.0.0")));
        assert!(!node.subnet_up(ip("10.99.0.0")));
        // Down on a down interface; absent where no interface has an address.
        assert_eq!(node.subnet_state(ip("10.90.0.0")), SubnetState::Up);
        assert_eq!(node.subnet_state(ip("10.91.0.0")), SubnetState::Down);
        assert_eq!(node.subnet_state(ip("10.99.0.0")), SubnetState::Absent);
    }

    #[test]
    fn an_up_interface_is_preferred_for_a_subnet_on_two() {
        let mut node = node();
        let standby = interface(5, "eth3", true, &[("10.91.0.9", 24)]);
        node.0.insert(5, standby);
        assert_eq!(node.on_subnet(ip("10.91.0.0")).unwrap().0.name, "eth3");
        assert!(node.subnet_up(ip("10.91.0.0")));
    }

    #[test]
    fn a_plan_places_each_address_or_names_what_is_missing() {
        let node = node();
        let placements = node
            .plan(&[
                (ip("10.90.0.0"), vec![ip("10.90.0.200"), ip("10.90.0.1")]),
                (ip("fd00:90::"), vec![ip("fd00:90::200")]),
            ])
            .unwrap();
        let summary: Vec<(String, u8, &str, bool)> = placements
            .iter()
            .map(|p| {
                (
                    p.address.to_string(),
                    p.prefix,
                    p.interface.as_str(),
                    p.already,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("10.90.0.200".to_string(), 24, "eth0", false),
                ("10.90.0.1".to_string(), 24, "eth0", true),
                ("fd00:90::200".to_string(), 64, "eth0", false),
            ]
        );
        assert_eq!(placements[0].mac, Some([2, 0, 0, 0, 0, 2]));

        let missing = node
            .plan(&[(ip("10.99.0.0"), vec![ip("10.99.0.5")])])
            .unwrap_err();
        assert_eq!(
            missing.to_string(),
            "no interface of this node has an address on ip_subnet 10.99.0.0"
        );
        let outside = node
            .plan(&[(ip("10.90.0.0"), vec![ip("10.90.1.5")])])
            .unwrap_err();
        assert_eq!(
            outside.to_string(),
            "ip_address 10.90.1.5 is not on ip_subnet 10.90.0.0/24 (eth0)"
        );
        assert!(node.plan(&[(ip("10.99.0.0"), vec![])]).unwrap().is_empty());
    }

    #[test]
    fn notifications_change_the_interfaces() {
        let mut node = Interfaces::default();
        let mut link = LinkMessage::default();
        link.header.index = 7;
        link.header.flags = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
        link.attributes.push(LinkAttribute::IfName("eth9".into()));
        link.attributes.push(LinkAttribute::Address(MAC.to_vec()));
        link.attributes.push(LinkAttribute::OperState(State::Up));
        node.apply(&RouteNetlinkMessage::NewLink(link.clone()));
        let mut address = address_message(7, ip("10.95.0.3"), 24);
        node.apply(&RouteNetlinkMessage::NewAddress(address.clone()));
        assert!(node.subnet_up(ip("10.95.0.0")));
        assert_eq!(node.0[&7].mac, Some(MAC));

        // Down: the administrative flag, then the carrier (the veth peer went down).
        let mut down = link.clone();
        down.header.flags = LinkFlags::Running;
        node.apply(&RouteNetlinkMessage::NewLink(down));
        assert!(!node.subnet_up(ip("10.95.0.0")));
        let mut no_carrier = link.clone();
        no_carrier.header.flags = LinkFlags::Up;
        no_carrier
            .attributes
            .retain(|a| !matches!(a, LinkAttribute::OperState(_)));
        no_carrier
            .attributes
            .push(LinkAttribute::OperState(State::LowerLayerDown));
        node.apply(&RouteNetlinkMessage::NewLink(no_carrier));
        assert!(!node.subnet_up(ip("10.95.0.0")));
        node.apply(&RouteNetlinkMessage::NewLink(link.clone()));
        assert!(node.subnet_up(ip("10.95.0.0")));

        // A bridge port message is not the interface's own.
        let mut port = link.clone();
        port.header.interface_family = AddressFamily::Bridge;
        node.apply(&RouteNetlinkMessage::DelLink(port));
        assert!(node.subnet_up(ip("10.95.0.0")));

        address.header.prefix_len = 24;
        node.apply(&RouteNetlinkMessage::DelAddress(address));
        assert!(!node.subnet_up(ip("10.95.0.0")));
        node.apply(&RouteNetlinkMessage::DelLink(link));
        assert!(node.0.is_empty());
    }

    #[test]
    fn a_loopback_or_noarp_interface_has_nothing_to_announce() {
        let mut link = LinkMessage::default();
        link.header.flags = LinkFlags::Up | LinkFlags::Running | LinkFlags::Loopback;
        link.attributes.push(LinkAttribute::Address(vec![0; 6]));
        assert_eq!(link_mac(&link), None);
        link.header.flags = LinkFlags::Up | LinkFlags::Noarp;
        link.attributes = vec![LinkAttribute::Address(MAC.to_vec())];
        assert_eq!(link_mac(&link), None);
        link.header.flags = LinkFlags::Up;
        assert_eq!(link_mac(&link), Some(MAC));
    }

    #[test]
    fn the_arp_announcement_is_a_broadcast_request_for_the_address_itself() {
        let frame = arp_announcement(MAC, Ipv4Addr::new(10, 90, 0, 200));
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            // Ethernet: broadcast, from MAC, ARP.
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x06,
            // Ethernet, IPv4, 6, 4, request.
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
            // Sender: MAC, 10.90.0.200; target: zero, 10.90.0.200.
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 10, 90, 0, 200,
            0, 0, 0, 0, 0, 0, 10, 90, 0, 200,
        ];
        assert_eq!(frame, expected);
        let ethernet = EthernetPacket::new(&frame).unwrap();
        let arp = ArpPacket::new(ethernet.payload()).unwrap();
        assert_eq!(arp.get_operation(), ArpOperations::Request);
        assert_eq!(arp.get_sender_proto_addr(), arp.get_target_proto_addr());
    }

    #[test]
    fn the_neighbour_advertisement_overrides_and_carries_the_link_address() {
        let address: Ipv6Addr = "fd00:90::200".parse().unwrap();
        let frame = neighbour_advertisement(MAC, address);
        let ethernet = EthernetPacket::new(&frame).unwrap();
        assert_eq!(ethernet.get_ethertype(), EtherTypes::Ipv6);
        assert_eq!(
            ethernet.get_destination(),
            pnet_datalink::MacAddr::new(0x33, 0x33, 0, 0, 0, 1)
        );
        let ip = Ipv6Packet::new(ethernet.payload()).unwrap();
        assert_eq!(ip.get_hop_limit(), 255);
        assert_eq!(ip.get_source(), address);
        assert_eq!(ip.get_payload_length() as usize, ip.payload().len());
        let advertisement = NeighborAdvertPacket::new(ip.payload()).unwrap();
        assert_eq!(advertisement.get_icmpv6_type(), Icmpv6Types::NeighborAdvert);
        assert_eq!(advertisement.get_flags(), NeighborAdvertFlags::Override);
        assert_eq!(advertisement.get_target_addr(), address);
        let options = advertisement.get_options();
        assert_eq!(options.len(), 1);
        assert_eq!(options[0].option_type, NdpOptionTypes::TargetLLAddr);
        assert_eq!(options[0].data, MAC);
        // The checksum verifies: summed again over the packet as sent, it comes out the same.
        let icmp = Icmpv6Packet::new(ip.payload()).unwrap();
        assert_eq!(
            icmpv6::checksum(&icmp, &address, &ip.get_destination()),
            icmp.get_checksum()
        );
        assert_ne!(icmp.get_checksum(), 0);
    }

    #[test]
    fn a_datagram_of_several_messages_decodes_each_and_stops_at_a_bad_length() {
        let mut bytes = Vec::new();
        for index in [3, 4] {
            let mut header = NetlinkHeader::default();
            header.sequence_number = index;
            let message =
                RouteNetlinkMessage::NewAddress(address_message(index, ip("10.90.0.9"), 24));
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
            packet.finalize();
            let mut one = vec![0; packet.buffer_len()];
            packet.serialize(&mut one);
            bytes.extend_from_slice(&one);
        }
        let decoded: Vec<u32> = messages(&bytes)
            .map(|m| m.unwrap().header.sequence_number)
            .collect();
        assert_eq!(decoded, [3, 4]);
        bytes[0] = 0xff;
        let results: Vec<_> = messages(&bytes).collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].is_err());
    }
}
