//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) that tell the LAN a
//! VIP's MAC after a takeover. Frames are built with `pnet::packet` and sent on one AF_PACKET
//! socket opened with protocol 0: such a socket receives nothing. (pnet's datalink channel would
//! also open a receiver that copies every frame on the LAN into the daemon.)

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use pnet::packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet::packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet::packet::icmpv6::ndp::{MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags};
use pnet::packet::icmpv6::{Icmpv6Types, checksum as icmpv6_checksum};
use pnet::packet::ip::IpNextHeaderProtocols;
use pnet::packet::ipv6::MutableIpv6Packet;
use pnet::util::MacAddr;

pub const BROADCAST: [u8; 6] = [0xff; 6];
/// 33:33:00:00:00:01, the Ethernet address of ff02::1 (all nodes).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_LEN: usize = 40;
/// Neighbour advertisement (24) + target link-layer address option (8).
const NA_LEN: usize = 32;

/// An ARP request announcing `addr` at `mac`: sender = target = `addr`, to broadcast, as
/// keepalived sends it (some hosts ignore gratuitous ARP replies).
pub fn build_garp(mac: [u8; 6], addr: Ipv4Addr) -> [u8; ETH_LEN + ARP_LEN] {
    let mut buf = [0u8; ETH_LEN + ARP_LEN];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut buf) {
        eth.set_destination(MacAddr::from(BROADCAST));
        eth.set_source(MacAddr::from(mac));
        eth.set_ethertype(EtherTypes::Arp);
    }
    if let Some(mut arp) = MutableArpPacket::new(&mut buf[ETH_LEN..]) {
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(MacAddr::from(mac));
        arp.set_sender_proto_addr(addr);
        arp.set_target_hw_addr(MacAddr::from(BROADCAST));
        arp.set_target_proto_addr(addr);
    }
    buf
}

/// An unsolicited neighbour advertisement for `target` at `mac` (RFC 4861 7.2.6): from `src`
/// (the interface's link-local address), to all nodes, hop limit 255, Override set.
pub fn build_unsolicited_na(
    mac: [u8; 6],
    src: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; ETH_LEN + IPV6_LEN + NA_LEN] {
    let mut buf = [0u8; ETH_LEN + IPV6_LEN + NA_LEN];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut buf) {
        eth.set_destination(MacAddr::from(ALL_NODES_MAC));
        eth.set_source(MacAddr::from(mac));
        eth.set_ethertype(EtherTypes::Ipv6);
    }
    if let Some(mut ip) = MutableIpv6Packet::new(&mut buf[ETH_LEN..]) {
        ip.set_version(6);
        ip.set_payload_length(NA_LEN as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(src);
        ip.set_destination(ALL_NODES);
    }
    let icmp = &mut buf[ETH_LEN + IPV6_LEN..];
    if let Some(mut na) = MutableNeighborAdvertPacket::new(icmp) {
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_flags(NeighborAdvertFlags::Override);
        na.set_target_addr(target);
    }
    // Option: type 2 (target link-layer address), length 1 (8 bytes), the MAC.
    icmp[24] = NdpOptionTypes::TargetLLAddr.0;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    if let Some(pkt) = pnet::packet::icmpv6::Icmpv6Packet::new(icmp) {
        let sum = icmpv6_checksum(&pkt, &src, &ALL_NODES);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    buf
}

/// The sending socket.
pub struct Announcer {
    fd: OwnedFd,
}

impl Announcer {
    /// Opens the AF_PACKET socket (needs CAP_NET_RAW; open it before dropping privileges).
    pub fn open() -> io::Result<Announcer> {
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Announcer {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn send(&self, ifindex: u32, dst: [u8; 6], frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; zero is a valid value for every field.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst);
        // SAFETY: buffer and address are valid for the given lengths for the call's duration.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn garp(&self, ifindex: u32, mac: [u8; 6], addr: Ipv4Addr) -> io::Result<()> {
        self.send(ifindex, BROADCAST, &build_garp(mac, addr))
    }

    pub fn unsolicited_na(
        &self,
        ifindex: u32,
        mac: [u8; 6],
        src: Ipv6Addr,
        target: Ipv6Addr,
    ) -> io::Result<()> {
        self.send(
            ifindex,
            ALL_NODES_MAC,
            &build_unsolicited_na(mac, src, target),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_bytes() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let f = build_garp(mac, Ipv4Addr::new(10, 98, 0, 100));
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x11, 0x08,
            0x06, // Ethernet
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, request
            0x02, 0, 0, 0, 0, 0x11, 10, 98, 0, 100, // sender
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 10, 98, 0, 100, // target
        ];
        assert_eq!(f, expected);
    }

    #[test]
    fn unsolicited_na_bytes_and_checksum() {
        let mac = [0x02, 0, 0, 0, 0, 0x11];
        let src: Ipv6Addr = "fe80::11".parse().expect("addr");
        let target: Ipv6Addr = "fd77::100".parse().expect("addr");
        let f = build_unsolicited_na(mac, src, target);
        assert_eq!(
            &f[..14],
            &[0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 0x11, 0x86, 0xdd]
        );
        assert_eq!(f[14] >> 4, 6);
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 32, "payload length");
        assert_eq!((f[20], f[21]), (58, 255), "ICMPv6, hop limit 255");
        let icmp = &f[54..];
        assert_eq!((icmp[0], icmp[1]), (136, 0), "neighbour advertisement");
        assert_eq!(icmp[4], 0x20, "Override only");
        assert_eq!(&icmp[8..24], &target.octets());
        assert_eq!(&icmp[24..32], &[2, 1, 0x02, 0, 0, 0, 0, 0x11]);
        // The Internet checksum over pseudo-header + message, checksum included, folds to 0xffff.
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&src.octets());
        add(&ALL_NODES.octets());
        add(&(32u32).to_be_bytes());
        add(&[0, 0, 0, 58]);
        add(icmp);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }
}
