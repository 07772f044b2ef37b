//! VRRP in the daemon: planning instances from the configuration, and the driver that runs the
//! protocol core (`keeper-vrrp`) against sockets, addresses and links.

pub mod driver;
pub mod plan;
pub mod running;
