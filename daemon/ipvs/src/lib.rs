//! Linux IPVS (the kernel's layer-4 load balancer) over generic netlink, without `ipvsadm`.
//!
//! - [`model`]: typed services, destinations, sync daemons, timeouts, statistics, tables.
//! - [`codec`]: byte-exact encoding of every request of the `IPVS` family and decoding of the
//!   kernel's answers (errors name the attribute; malformed input never panics).
//! - [`client::IpvsClient`]: async (tokio) client: family resolution, dumps, and pipelined
//!   batches (many requests per `sendmsg`, one ACK each, errors tied to their request).
//! - [`reconcile`]: pure planning of the minimal operations from an actual to a desired table,
//!   with ownership rules so entries managed by others are left alone.
//! - [`format`]: `ipvsadm -Ln` style listings (`--stats`, `--rate`) and JSON.
//!
//! The kernel UAPI header `linux/ip_vs.h` and `net/netfilter/ipvs/ip_vs_ctl.c` define the
//! protocol; see [`consts`].

pub mod client;
pub mod codec;
pub mod consts;
pub mod error;
pub mod format;
pub mod model;
pub mod reconcile;

pub use client::{ClientConfig, IpvsClient};
pub use codec::Request;
pub use error::{DecodeError, EncodeError, Error, Rejection};
pub use model::{
    AddressFamily, ConnCounts, DaemonState, DestKey, Destination, ForwardMethod, Info, Netmask,
    Protocol, Scheduler, Service, ServiceFlags, ServiceKey, Stats, SyncDaemon, Table, Timeouts,
    Tunnel, TunnelType, VirtualService,
};
pub use reconcile::{Op, OwnershipPolicy, plan};
