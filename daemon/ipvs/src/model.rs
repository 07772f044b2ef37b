//! Typed model of the IPVS table: virtual services, their destinations (real servers), the
//! connection sync daemon, protocol timeouts and statistics.
//!
//! Values are what the kernel stores; conversions to and from the wire live in [`crate::codec`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::consts;

/// Address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    /// IPv4 (`AF_INET`).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
}

impl AddressFamily {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }

    /// `AF_INET` / `AF_INET6`.
    pub fn raw(self) -> u16 {
        match self {
            AddressFamily::Inet => consts::AF_INET,
            AddressFamily::Inet6 => consts::AF_INET6,
        }
    }

    /// The family for `AF_INET` / `AF_INET6`, `None` for anything else.
    pub fn from_raw(raw: u16) -> Option<Self> {
        match raw {
            consts::AF_INET => Some(AddressFamily::Inet),
            consts::AF_INET6 => Some(AddressFamily::Inet6),
            _ => None,
        }
    }
}

/// Transport protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// `IPPROTO_*` number.
    pub fn raw(self) -> u16 {
        match self {
            Protocol::Tcp => consts::IPPROTO_TCP,
            Protocol::Udp => consts::IPPROTO_UDP,
            Protocol::Sctp => consts::IPPROTO_SCTP,
        }
    }

    /// The protocol for an `IPPROTO_*` number IPVS supports.
    pub fn from_raw(raw: u16) -> Option<Self> {
        match raw {
            consts::IPPROTO_TCP => Some(Protocol::Tcp),
            consts::IPPROTO_UDP => Some(Protocol::Udp),
            consts::IPPROTO_SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// Upper-case name as `ipvsadm` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What identifies a virtual service in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKey {
    /// Protocol + virtual address + port (`-t` / `-u` / `--sctp-service`); the family is the
    /// address's.
    Addr {
        /// Transport protocol.
        protocol: Protocol,
        /// Virtual IP.
        addr: IpAddr,
        /// Virtual port (0 = every port).
        port: u16,
    },
    /// Firewall mark (`-f`), per family.
    Fwmark {
        /// Address family of the packets the mark selects.
        af: AddressFamily,
        /// The mark (non-zero).
        mark: u32,
    },
}

impl ServiceKey {
    /// TCP service on `addr:port`.
    pub fn tcp(addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr,
            port,
        }
    }

    /// UDP service on `addr:port`.
    pub fn udp(addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr,
            port,
        }
    }

    /// Firewall-mark service.
    pub fn fwmark(af: AddressFamily, mark: u32) -> Self {
        ServiceKey::Fwmark { af, mark }
    }

    /// Address family of the service.
    pub fn af(&self) -> AddressFamily {
        match self {
            ServiceKey::Addr { addr, .. } => AddressFamily::of(addr),
            ServiceKey::Fwmark { af, .. } => *af,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {}", protocol.name(), fmt_addr_port(addr, *port)),
            ServiceKey::Fwmark {
                af: AddressFamily::Inet,
                mark,
            } => write!(f, "FWM {mark}"),
            ServiceKey::Fwmark {
                af: AddressFamily::Inet6,
                mark,
            } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

/// `addr:port`, with IPv6 addresses in brackets.
pub fn fmt_addr_port(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Scheduling algorithm of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (the kernel's default).
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing (flags: sh-fallback, sh-port).
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Maglev hashing (flags: mh-fallback, mh-port).
    Mh,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Weighted random twos choice.
    Twos,
    /// No scheduler: only persistence templates or the sync daemon place connections.
    None,
    /// A scheduler this crate does not know (a newer kernel's); carried through unchanged.
    Other(String),
}

impl Scheduler {
    /// The kernel's name of the scheduler.
    pub fn name(&self) -> &str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Mh => "mh",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Twos => "twos",
            Scheduler::None => "none",
            Scheduler::Other(name) => name,
        }
    }

    /// The scheduler with a kernel name; unknown names become [`Scheduler::Other`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "rr" => Scheduler::Rr,
            "wrr" => Scheduler::Wrr,
            "lc" => Scheduler::Lc,
            "wlc" => Scheduler::Wlc,
            "lblc" => Scheduler::Lblc,
            "lblcr" => Scheduler::Lblcr,
            "dh" => Scheduler::Dh,
            "sh" => Scheduler::Sh,
            "sed" => Scheduler::Sed,
            "nq" => Scheduler::Nq,
            "mh" => Scheduler::Mh,
            "fo" => Scheduler::Fo,
            "ovf" => Scheduler::Ovf,
            "twos" => Scheduler::Twos,
            "none" => Scheduler::None,
            other => Scheduler::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Scheduler {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Scheduler {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(Scheduler::from_name(&name))
    }
}

/// Service flags the user controls (`IP_VS_SVC_F_*` without the kernel-internal `HASHED`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceFlags {
    /// Persistent service: a client sticks to one destination for the persistence timeout.
    #[serde(default)]
    pub persistent: bool,
    /// One-packet scheduling (UDP: schedule every datagram).
    #[serde(default)]
    pub one_packet: bool,
    /// Scheduler flag 1: `sh-fallback` with sh, `mh-fallback` with mh.
    #[serde(default)]
    pub sched1: bool,
    /// Scheduler flag 2: `sh-port` with sh, `mh-port` with mh.
    #[serde(default)]
    pub sched2: bool,
    /// Scheduler flag 3.
    #[serde(default)]
    pub sched3: bool,
    /// Bits this crate does not know, kept so a round trip does not lose them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl ServiceFlags {
    const KNOWN: u32 = consts::svc_flags::PERSISTENT
        | consts::svc_flags::ONEPACKET
        | consts::svc_flags::SCHED1
        | consts::svc_flags::SCHED2
        | consts::svc_flags::SCHED3;

    /// The flag word as the kernel takes it.
    pub fn raw(&self) -> u32 {
        use consts::svc_flags::*;
        let mut v = self.other & !(Self::KNOWN | HASHED);
        for (on, bit) in [
            (self.persistent, PERSISTENT),
            (self.one_packet, ONEPACKET),
            (self.sched1, SCHED1),
            (self.sched2, SCHED2),
            (self.sched3, SCHED3),
        ] {
            if on {
                v |= bit;
            }
        }
        v
    }

    /// Flags from the kernel's word; `HASHED` is dropped.
    pub fn from_raw(raw: u32) -> Self {
        use consts::svc_flags::*;
        ServiceFlags {
            persistent: raw & PERSISTENT != 0,
            one_packet: raw & ONEPACKET != 0,
            sched1: raw & SCHED1 != 0,
            sched2: raw & SCHED2 != 0,
            sched3: raw & SCHED3 != 0,
            other: raw & !(Self::KNOWN | HASHED),
        }
    }
}

/// Persistence granularity: clients in the same network share a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Netmask {
    /// IPv4 mask (default 255.255.255.255).
    V4(Ipv4Addr),
    /// IPv6 prefix length (default 128).
    V6(u32),
}

impl Netmask {
    /// The kernel's default for a family: one client address per persistence entry.
    pub fn host(af: AddressFamily) -> Self {
        match af {
            AddressFamily::Inet => Netmask::V4(Ipv4Addr::BROADCAST),
            AddressFamily::Inet6 => Netmask::V6(128),
        }
    }

    /// The 4 bytes of `IPVS_SVC_ATTR_NETMASK`: the IPv4 mask in network order, or the IPv6
    /// prefix length as a host-order integer (that is how ipvsadm and the kernel use it).
    pub fn to_wire(self) -> [u8; 4] {
        match self {
            Netmask::V4(m) => m.octets(),
            Netmask::V6(p) => p.to_ne_bytes(),
        }
    }

    /// Inverse of [`Netmask::to_wire`] for a service of family `af`.
    pub fn from_wire(af: AddressFamily, b: [u8; 4]) -> Self {
        match af {
            AddressFamily::Inet => Netmask::V4(Ipv4Addr::from(b)),
            AddressFamily::Inet6 => Netmask::V6(u32::from_ne_bytes(b)),
        }
    }
}

/// A virtual service and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// What identifies it.
    pub key: ServiceKey,
    /// Scheduling algorithm.
    pub scheduler: Scheduler,
    /// Flags.
    #[serde(default)]
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (used when `flags.persistent`).
    #[serde(default)]
    pub timeout: u32,
    /// Persistence netmask.
    pub netmask: Netmask,
    /// Persistence engine (e.g. `sip`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_name: Option<String>,
    /// Counters; only in kernel dumps, ignored when programming. Boxed: the desired table and
    /// every planned operation carry a service without them (80 bytes each, unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Box<Stats>>,
}

impl Service {
    /// A service with the kernel's defaults: no persistence, no flags.
    pub fn new(key: ServiceKey, scheduler: Scheduler) -> Self {
        Service {
            netmask: Netmask::host(key.af()),
            key,
            scheduler,
            flags: ServiceFlags::default(),
            timeout: 0,
            pe_name: None,
            stats: None,
        }
    }

    /// Make the service persistent for `timeout` seconds.
    pub fn persistent(mut self, timeout: u32) -> Self {
        self.flags.persistent = true;
        self.timeout = timeout;
        self
    }

    /// Whether two services have the same settings (statistics ignored).
    pub fn same_settings(&self, other: &Service) -> bool {
        self.key == other.key
            && self.scheduler == other.scheduler
            && self.flags == other.flags
            && self.timeout == other.timeout
            && self.netmask == other.netmask
            && self.pe_name == other.pe_name
    }
}

/// How packets reach a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMethod {
    /// NAT (`-m`).
    Masq,
    /// Local node.
    Local,
    /// Tunnel (`-i`): IPIP, GUE or GRE.
    Tunnel,
    /// Direct routing (`-g`, the default).
    Route,
    /// Cache bypass.
    Bypass,
}

impl ForwardMethod {
    /// The `IP_VS_CONN_F_*` forwarding value.
    pub fn raw(self) -> u32 {
        match self {
            ForwardMethod::Masq => consts::fwd::MASQ,
            ForwardMethod::Local => consts::fwd::LOCALNODE,
            ForwardMethod::Tunnel => consts::fwd::TUNNEL,
            ForwardMethod::Route => consts::fwd::DROUTE,
            ForwardMethod::Bypass => consts::fwd::BYPASS,
        }
    }

    /// The method for the forwarding bits of a connection-flags word.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw & consts::fwd::MASK {
            consts::fwd::MASQ => Some(ForwardMethod::Masq),
            consts::fwd::LOCALNODE => Some(ForwardMethod::Local),
            consts::fwd::TUNNEL => Some(ForwardMethod::Tunnel),
            consts::fwd::DROUTE => Some(ForwardMethod::Route),
            consts::fwd::BYPASS => Some(ForwardMethod::Bypass),
            _ => None,
        }
    }

    /// The name `ipvsadm -L` prints.
    pub fn name(self) -> &'static str {
        match self {
            ForwardMethod::Masq => "Masq",
            ForwardMethod::Local => "Local",
            ForwardMethod::Tunnel => "Tunnel",
            ForwardMethod::Route => "Route",
            ForwardMethod::Bypass => "Bypass",
        }
    }
}

/// Encapsulation of a tunnelled destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    /// IP-in-IP (the default).
    #[default]
    Ipip,
    /// Generic UDP encapsulation (needs a port).
    Gue,
    /// GRE.
    Gre,
}

impl TunnelType {
    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    pub fn raw(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }

    /// The type for an `IP_VS_CONN_F_TUNNEL_TYPE_*` value.
    pub fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            0 => Some(TunnelType::Ipip),
            1 => Some(TunnelType::Gue),
            2 => Some(TunnelType::Gre),
            _ => None,
        }
    }
}

/// Tunnel settings of a destination (meaningful with [`ForwardMethod::Tunnel`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    /// Encapsulation.
    #[serde(default)]
    pub kind: TunnelType,
    /// GUE destination port.
    #[serde(default)]
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` checksum flags (0 none, 1 csum, 2 remcsum).
    #[serde(default)]
    pub flags: u16,
}

/// Connection counters of a destination (from dumps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnCounts {
    /// Established connections.
    pub active: u32,
    /// Other connections.
    pub inactive: u32,
    /// Persistence templates pointing at it.
    pub persistent: u32,
}

/// Identity of a destination within a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DestKey {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt_addr_port(&self.addr, self.port))
    }
}

/// A destination (real server) of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Real server address (its family may differ from the service's only with tunnelling).
    pub addr: IpAddr,
    /// Real server port (ignored by DR and tunnel forwarding for fwmark services).
    pub port: u16,
    /// Forwarding method.
    pub forward: ForwardMethod,
    /// Weight; 0 stops new connections (quiescent).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = none).
    #[serde(default)]
    pub lower_threshold: u32,
    /// Tunnel settings.
    #[serde(default)]
    pub tunnel: Tunnel,
    /// Connection counters; only in kernel dumps.
    #[serde(default)]
    pub conns: ConnCounts,
    /// Counters; only in kernel dumps. Boxed, as [`Service::stats`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Box<Stats>>,
}

impl Destination {
    /// A destination with no thresholds and default tunnel settings.
    pub fn new(addr: IpAddr, port: u16, forward: ForwardMethod, weight: u32) -> Self {
        Destination {
            addr,
            port,
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: Tunnel::default(),
            conns: ConnCounts::default(),
            stats: None,
        }
    }

    /// Its identity within the service.
    pub fn key(&self) -> DestKey {
        DestKey {
            addr: self.addr,
            port: self.port,
        }
    }

    /// Whether two destinations have the same settings (counters ignored; tunnel settings
    /// compared only for tunnelled destinations, the only ones that use them).
    pub fn same_settings(&self, other: &Destination) -> bool {
        self.addr == other.addr
            && self.port == other.port
            && self.forward == other.forward
            && self.weight == other.weight
            && self.upper_threshold == other.upper_threshold
            && self.lower_threshold == other.lower_threshold
            && (self.forward != ForwardMethod::Tunnel || self.tunnel == other.tunnel)
    }
}

/// Traffic counters and rates of a service or destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Connection rate (per second).
    pub cps: u64,
    /// Incoming packet rate.
    pub inpps: u64,
    /// Outgoing packet rate.
    pub outpps: u64,
    /// Incoming byte rate.
    pub inbps: u64,
    /// Outgoing byte rate.
    pub outbps: u64,
}

/// Role of a connection sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    /// Sends connection state.
    Master,
    /// Receives it.
    Backup,
}

impl DaemonState {
    /// `IP_VS_STATE_*`.
    pub fn raw(self) -> u32 {
        match self {
            DaemonState::Master => consts::daemon_state::MASTER,
            DaemonState::Backup => consts::daemon_state::BACKUP,
        }
    }

    /// The state for `IP_VS_STATE_MASTER` / `IP_VS_STATE_BACKUP`.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            consts::daemon_state::MASTER => Some(DaemonState::Master),
            consts::daemon_state::BACKUP => Some(DaemonState::Backup),
            _ => None,
        }
    }
}

/// A connection sync daemon (`ipvsadm --start-daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: DaemonState,
    /// Interface the sync messages use.
    pub mcast_ifn: String,
    /// Sync ID (0-255) separating clusters on one segment.
    pub sync_id: u32,
    /// Maximum UDP payload of sync messages (Linux 4.3+; kernel default when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_maxlen: Option<u16>,
    /// Multicast group (Linux 4.3+; 224.0.0.81 when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcast_group: Option<IpAddr>,
    /// Multicast port (Linux 4.3+; 8848 when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcast_port: Option<u16>,
    /// Multicast TTL (Linux 4.3+; 1 when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcast_ttl: Option<u8>,
}

impl SyncDaemon {
    /// A daemon with the kernel's defaults for the optional settings.
    pub fn new(state: DaemonState, mcast_ifn: &str, sync_id: u32) -> Self {
        SyncDaemon {
            state,
            mcast_ifn: mcast_ifn.to_string(),
            sync_id,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }
}

/// Protocol timeouts in seconds (`ipvsadm --set tcp tcpfin udp`). When setting, `None` (or 0)
/// leaves a value unchanged; a dump gives every value the kernel has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Established TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<u32>,
    /// TCP after FIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_fin: Option<u32>,
    /// UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<u32>,
}

/// General IPVS information (`GET_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// `IP_VS_VERSION_CODE`, e.g. 0x010201.
    pub version: u32,
    /// Size of the connection hash table.
    pub conn_tab_size: u32,
}

impl Info {
    /// "1.2.1".
    pub fn version_string(&self) -> String {
        let v = self.version;
        format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
    }
}

/// A virtual service with its destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualService {
    /// The service.
    #[serde(flatten)]
    pub service: Service,
    /// Its destinations by identity.
    #[serde(with = "dest_list")]
    pub destinations: BTreeMap<DestKey, Destination>,
}

impl VirtualService {
    /// A service with no destinations.
    pub fn new(service: Service) -> Self {
        VirtualService {
            service,
            destinations: BTreeMap::new(),
        }
    }

    /// Add or replace a destination.
    pub fn with_destination(mut self, dest: Destination) -> Self {
        self.destinations.insert(dest.key(), dest);
        self
    }
}

/// An IPVS table: the kernel's (from a dump) or the desired one (from configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Virtual services by key.
    #[serde(with = "service_list")]
    pub services: BTreeMap<ServiceKey, VirtualService>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Table::default()
    }

    /// Add or replace a virtual service.
    pub fn insert(&mut self, vs: VirtualService) {
        self.services.insert(vs.service.key, vs);
    }

    /// Number of services and of destinations.
    pub fn counts(&self) -> (usize, usize) {
        let dests = self.services.values().map(|v| v.destinations.len()).sum();
        (self.services.len(), dests)
    }
}

// JSON has only string keys: maps keyed by structs are (de)serialized as lists of values.
mod dest_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<DestKey, Destination>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<DestKey, Destination>, D::Error> {
        let v = Vec::<Destination>::deserialize(d)?;
        Ok(v.into_iter().map(|x| (x.key(), x)).collect())
    }
}

mod service_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<ServiceKey, VirtualService>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ServiceKey, VirtualService>, D::Error> {
        let v = Vec::<VirtualService>::deserialize(d)?;
        Ok(v.into_iter().map(|x| (x.service.key, x)).collect())
    }
}
