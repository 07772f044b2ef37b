//! VRRP's raw IP sockets (protocol 112): one per interface and address family, shared by every
//! instance on that interface (the driver demultiplexes by VRID). Adverts leave with TTL / hop
//! limit 255 (RFC 5798 5.1.1.3) and DSCP CS6, multicast to 224.0.0.18 / ff02::12 or unicast to
//! each peer, from the source the instance chooses (IP_PKTINFO / IPV6_PKTINFO per message).
//! Received packets come back with what validation needs: source, destination, TTL.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    self, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

pub const VRRP_PROTO: i32 = 112;
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// DSCP CS6 (network control) in the TOS / traffic-class byte.
const TOS_CS6: u32 = 0xc0;

/// One received VRRP packet.
#[derive(Debug, Clone)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The VRRP message (IP header removed).
    pub payload: Vec<u8>,
}

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    v6: bool,
}

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl VrrpSocket {
    /// Opens the socket for `ifname` and joins the VRRP multicast group there.
    /// Needs CAP_NET_RAW; must run inside a tokio runtime.
    pub fn open(ifname: &str, ifindex: u32, v6: bool) -> io::Result<VrrpSocket> {
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(
            domain,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(VRRP_PROTO)),
        )?;
        // Only this interface's packets, and our multicast leaves through it.
        s.bind_device(Some(ifname.as_bytes()))?;
        if v6 {
            s.join_multicast_v6(&MCAST_V6, ifindex)?;
            s.set_multicast_if_v6(ifindex)?;
            s.set_multicast_hops_v6(255)?;
            s.set_unicast_hops_v6(255)?;
            s.set_multicast_loop_v6(false)?;
            s.set_tclass_v6(TOS_CS6)?;
            s.set_recv_hoplimit_v6(true)?;
            socket::setsockopt(&s, socket::sockopt::Ipv6RecvPacketInfo, &true).map_err(nix_err)?;
        } else {
            s.join_multicast_v4_n(&MCAST_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
            s.set_multicast_ttl_v4(255)?;
            s.set_ttl_v4(255)?;
            s.set_multicast_loop_v4(false)?;
            s.set_tos_v4(TOS_CS6)?;
        }
        // SAFETY: `Socket` owns its descriptor, which stays open and the same until it drops.
        let fd = unsafe { AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(VrrpSocket { fd, ifindex, v6 })
    }

    /// A socket that only sends, from `ifname` (a VMAC): it joins no group, so the IP layer
    /// delivers it nothing multicast, and the receive buffer is minimal. Adverts leave with the
    /// interface's MAC, which for a VMAC is the virtual router MAC.
    pub fn open_sender(ifname: &str, ifindex: u32) -> io::Result<VrrpSocket> {
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(VRRP_PROTO)),
        )?;
        s.bind_device(Some(ifname.as_bytes()))?;
        s.set_multicast_ttl_v4(255)?;
        s.set_ttl_v4(255)?;
        s.set_multicast_loop_v4(false)?;
        s.set_tos_v4(TOS_CS6)?;
        s.set_recv_buffer_size(1)?;
        // SAFETY: `Socket` owns its descriptor, which stays open and the same until it drops.
        let fd = unsafe { AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(VrrpSocket {
            fd,
            ifindex,
            v6: false,
        })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends `payload` (a VRRP message) from `src` to `dst`.
    pub fn send(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        let iov = [IoSlice::new(payload)];
        let fd = self.fd.get_ref().as_raw_fd();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(s).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(std::net::SocketAddrV4::new(d, 0));
                socket::sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(nix_err)?;
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                let scope = if d.is_unicast_link_local() || d.is_multicast() {
                    self.ifindex
                } else {
                    0
                };
                let to = SockaddrIn6::from(std::net::SocketAddrV6::new(d, 0, 0, scope));
                socket::sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(nix_err)?;
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "source and destination families differ",
                ));
            }
        }
        Ok(())
    }

    /// Waits for the next packet. Malformed IPv4 headers are reported as `InvalidData` errors
    /// (the caller counts and drops them).
    pub async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|inner| self.recv_now(inner.get_ref())) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads a packet already in the socket's buffer, without waiting: `Ok(None)` when there
    /// is none. Lets the driver read what arrived before acting on a deadline.
    pub fn try_recv(&self) -> io::Result<Option<Received>> {
        match self.recv_now(self.fd.get_ref()) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn recv_now(&self, s: &Socket) -> io::Result<Received> {
        let mut buf = vec![0u8; 2048];
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = socket::recvmsg::<SockaddrStorage>(
            s.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(nix_err)?;
        let len = msg.bytes;
        let from = msg.address.and_then(|a| {
            a.as_sockaddr_in6()
                .map(|x| SocketAddr::from(std::net::SocketAddrV6::from(*x)))
                .or_else(|| {
                    a.as_sockaddr_in()
                        .map(|x| SocketAddr::from(std::net::SocketAddrV4::from(*x)))
                })
        });
        if self.v6 {
            let mut hop = None;
            let mut dst = None;
            for c in msg.cmsgs().map_err(nix_err)? {
                match c {
                    ControlMessageOwned::Ipv6HopLimit(h) => hop = u8::try_from(h).ok(),
                    ControlMessageOwned::Ipv6PacketInfo(i) => {
                        dst = Some(Ipv6Addr::from(i.ipi6_addr.s6_addr))
                    }
                    _ => {}
                }
            }
            let (Some(SocketAddr::V6(src)), Some(ttl), Some(dst)) = (from, hop, dst) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "IPv6 packet without source, hop limit or destination",
                ));
            };
            buf.truncate(len);
            return Ok(Received {
                src: IpAddr::V6(*src.ip()),
                dst: IpAddr::V6(dst),
                ttl,
                payload: buf,
            });
        }
        // IPv4 raw sockets deliver the IP header: read TTL and addresses from it.
        let ip = &buf[..len];
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "short or non-IPv4 packet",
            ));
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ihl < 20 || ip.len() < ihl {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad IPv4 header length",
            ));
        }
        let ttl = ip[8];
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let payload = ip[ihl..].to_vec();
        Ok(Received {
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            ttl,
            payload,
        })
    }
}
