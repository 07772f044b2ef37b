//! Thin I/O drivers for the kernel: addresses (rtnetlink), gratuitous ARP / unsolicited NA
//! (packet sockets), and VRRP's raw IP sockets.

pub mod announce;
pub mod rtnl;
pub mod timer;
pub mod vmac;
pub mod vrrp_socket;
