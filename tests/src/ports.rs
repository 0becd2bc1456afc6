//! Ports for test daemons that bind them later. Std only: `cli-tests/` includes this file too
//! (`#[path]`), as the root package's tests do not depend on this crate.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out.
const LOWEST: u16 = 20_000;

/// A port free now for TCP and UDP on every IPv4 address, for a test's daemons to bind later,
/// and different from every port this process was handed before (until some 12,000 were).
///
/// A test chooses its daemons' ports before it starts them, so a port found free can be taken
/// before a daemon binds it. What takes it is the kernel's choice for someone else: the source
/// port of an outgoing connection (a node's control channel, a client) or another test's bind
/// to port 0, both drawn from the ephemeral range (`net.ipv4.ip_local_port_range`, from 32768
/// by default). So the ports come from below that range, where the kernel hands out none, and
/// each process starts at its own place, so that test binaries running at the same time seldom
/// try the same ones.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = ephemeral_start();
    if ephemeral < LOWEST + 1_000 {
        // A machine whose ephemeral range starts low: the kernel's choice, as good as any.
        return kernel_choice();
    }
    let span = u32::from(ephemeral - LOWEST);
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    for _ in 0..span {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = LOWEST + u16::try_from(offset).expect("below the ephemeral range");
        if UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
            && TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port from {LOWEST} to {ephemeral}");
}

/// The first port of the kernel's ephemeral range (32768 where it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

fn kernel_choice() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("a free UDP port");
        let port = udp.local_addr().expect("its address").port();
        if TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok() {
            return port;
        }
    }
}
