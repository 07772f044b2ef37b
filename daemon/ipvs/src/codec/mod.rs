//! Wire format of the `IPVS` generic-netlink family: requests ([`Request::encode`]) and the
//! kernel's answers ([`decode`]).
//!
//! Attribute layout follows the kernel (`net/netfilter/ipvs/ip_vs_ctl.c`) and matches what
//! ipvsadm (libipvs) sends: addresses are 16 bytes (`union nf_inet_addr`, IPv4 zero-padded),
//! ports and the IPv4 netmask are in network order, everything else in host order, nested
//! attributes carry `NLA_F_NESTED`.

pub mod decode;

use std::fmt;
use std::io::Cursor;
use std::net::IpAddr;

use neli::{
    ToBytes,
    consts::{genl::NlAttrType, nl::NlmF},
    genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, Nlattr, NlattrBuilder},
    nl::{NlPayload, NlmsghdrBuilder},
    types::{Buffer, GenlBuffer},
};

use crate::consts::{self, CmdAttr, DaemonAttr, DestAttr, IpvsCmd, SvcAttr};
use crate::error::EncodeError;
use crate::model::{DaemonState, DestKey, Destination, Service, ServiceKey, SyncDaemon, Timeouts};

/// One request to the `IPVS` family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Add a virtual service (`IPVS_CMD_NEW_SERVICE`).
    NewService(Service),
    /// Change a virtual service's settings (`IPVS_CMD_SET_SERVICE`).
    SetService(Service),
    /// Delete a virtual service and its destinations (`IPVS_CMD_DEL_SERVICE`).
    DelService(ServiceKey),
    /// Read one service (`IPVS_CMD_GET_SERVICE`).
    GetService(ServiceKey),
    /// Dump every service (`IPVS_CMD_GET_SERVICE` with `NLM_F_DUMP`).
    DumpServices,
    /// Add a destination (`IPVS_CMD_NEW_DEST`).
    NewDest(ServiceKey, Destination),
    /// Change a destination (`IPVS_CMD_SET_DEST`).
    SetDest(ServiceKey, Destination),
    /// Delete a destination (`IPVS_CMD_DEL_DEST`).
    DelDest(ServiceKey, DestKey),
    /// Dump a service's destinations (`IPVS_CMD_GET_DEST` with `NLM_F_DUMP`).
    DumpDests(ServiceKey),
    /// Start a sync daemon (`IPVS_CMD_NEW_DAEMON`).
    NewDaemon(SyncDaemon),
    /// Stop a sync daemon (`IPVS_CMD_DEL_DAEMON`).
    DelDaemon(DaemonState),
    /// Dump the running sync daemons (`IPVS_CMD_GET_DAEMON` with `NLM_F_DUMP`).
    DumpDaemons,
    /// Set protocol timeouts (`IPVS_CMD_SET_CONFIG`).
    SetConfig(Timeouts),
    /// Read protocol timeouts (`IPVS_CMD_GET_CONFIG`).
    GetConfig,
    /// Read version and connection table size (`IPVS_CMD_GET_INFO`).
    GetInfo,
    /// Zero the counters of one service, or of everything (`IPVS_CMD_ZERO`).
    Zero(Option<ServiceKey>),
    /// Delete every service (`IPVS_CMD_FLUSH`).
    Flush,
}

impl Request {
    /// The generic-netlink command.
    pub fn cmd(&self) -> IpvsCmd {
        match self {
            Request::NewService(_) => IpvsCmd::NewService,
            Request::SetService(_) => IpvsCmd::SetService,
            Request::DelService(_) => IpvsCmd::DelService,
            Request::GetService(_) | Request::DumpServices => IpvsCmd::GetService,
            Request::NewDest(..) => IpvsCmd::NewDest,
            Request::SetDest(..) => IpvsCmd::SetDest,
            Request::DelDest(..) => IpvsCmd::DelDest,
            Request::DumpDests(_) => IpvsCmd::GetDest,
            Request::NewDaemon(_) => IpvsCmd::NewDaemon,
            Request::DelDaemon(_) => IpvsCmd::DelDaemon,
            Request::DumpDaemons => IpvsCmd::GetDaemon,
            Request::SetConfig(_) => IpvsCmd::SetConfig,
            Request::GetConfig => IpvsCmd::GetConfig,
            Request::GetInfo => IpvsCmd::GetInfo,
            Request::Zero(_) => IpvsCmd::Zero,
            Request::Flush => IpvsCmd::Flush,
        }
    }

    /// Whether the kernel answers with a multipart dump (ended by `NLMSG_DONE`, no ACK).
    pub fn is_dump(&self) -> bool {
        matches!(
            self,
            Request::DumpServices | Request::DumpDests(_) | Request::DumpDaemons
        )
    }

    /// Netlink header flags: `REQUEST|DUMP` for dumps, `REQUEST|ACK` otherwise (a request sent
    /// alone, or the last of a pipelined batch: see [`Request::encode_unacked`]).
    pub fn nl_flags(&self) -> u16 {
        if self.is_dump() {
            consts::NLM_F_REQUEST | consts::NLM_F_DUMP
        } else {
            consts::NLM_F_REQUEST | consts::NLM_F_ACK
        }
    }

    /// The first-level attributes of the request.
    pub fn attrs(&self) -> Result<Vec<Nlattr<CmdAttr, Buffer>>, EncodeError> {
        Ok(match self {
            Request::NewService(s) | Request::SetService(s) => vec![service_attr(s)?],
            Request::DelService(k) | Request::GetService(k) | Request::DumpDests(k) => {
                vec![service_key_attr(k)?]
            }
            Request::Zero(Some(k)) => vec![service_key_attr(k)?],
            Request::NewDest(k, d) | Request::SetDest(k, d) => {
                vec![service_key_attr(k)?, dest_attr(d)?]
            }
            Request::DelDest(k, d) => vec![service_key_attr(k)?, dest_key_attr(d)?],
            Request::NewDaemon(d) => vec![daemon_attr(d)?],
            Request::DelDaemon(state) => vec![nest(
                CmdAttr::Daemon,
                &[leaf(DaemonAttr::State, &state.raw().to_ne_bytes())?],
            )?],
            Request::SetConfig(t) => {
                let mut v = Vec::new();
                for (a, val) in [
                    (CmdAttr::TimeoutTcp, t.tcp),
                    (CmdAttr::TimeoutTcpFin, t.tcp_fin),
                    (CmdAttr::TimeoutUdp, t.udp),
                ] {
                    if let Some(val) = val {
                        v.push(leaf(a, &val.to_ne_bytes())?);
                    }
                }
                v
            }
            Request::DumpServices
            | Request::DumpDaemons
            | Request::GetConfig
            | Request::GetInfo
            | Request::Zero(None)
            | Request::Flush => Vec::new(),
        })
    }

    /// One complete netlink message: `nlmsghdr` (type `family`, sequence `seq`, port id 0),
    /// `genlmsghdr` (version 1), attributes.
    pub fn encode(&self, family: u16, seq: u32) -> Result<Vec<u8>, EncodeError> {
        self.encode_with_flags(family, seq, self.nl_flags())
    }

    /// [`Request::encode`] without `NLM_F_ACK`: the kernel answers only if it refuses the
    /// request (netlink acknowledges an error whether or not an ACK was asked for). A pipelined
    /// batch asks for one ACK, on its last request: the kernel handles a batch in order, so that
    /// ACK comes after every refusal in the batch, and 255 of 256 answers are never built, sent
    /// or read. Dumps keep their flags.
    pub fn encode_unacked(&self, family: u16, seq: u32) -> Result<Vec<u8>, EncodeError> {
        let flags = if self.is_dump() {
            self.nl_flags()
        } else {
            consts::NLM_F_REQUEST
        };
        self.encode_with_flags(family, seq, flags)
    }

    fn encode_with_flags(&self, family: u16, seq: u32, flags: u16) -> Result<Vec<u8>, EncodeError> {
        let genl = GenlmsghdrBuilder::<IpvsCmd, CmdAttr>::default()
            .cmd(self.cmd())
            .version(consts::IPVS_GENL_VERSION)
            .attrs(self.attrs()?.into_iter().collect::<GenlBuffer<_, _>>())
            .build()
            .map_err(neli_err)?;
        encode_nlmsg(family, flags, seq, genl)
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::NewService(s) => write!(f, "add service {} ({})", s.key, s.scheduler),
            Request::SetService(s) => write!(f, "edit service {} ({})", s.key, s.scheduler),
            Request::DelService(k) => write!(f, "delete service {k}"),
            Request::GetService(k) => write!(f, "read service {k}"),
            Request::DumpServices => write!(f, "list services"),
            Request::NewDest(k, d) => write!(f, "add destination {} to {k}", d.key()),
            Request::SetDest(k, d) => write!(f, "edit destination {} of {k}", d.key()),
            Request::DelDest(k, d) => write!(f, "delete destination {d} of {k}"),
            Request::DumpDests(k) => write!(f, "list destinations of {k}"),
            Request::NewDaemon(d) => write!(
                f,
                "start {:?} sync daemon on {} (syncid {})",
                d.state, d.mcast_ifn, d.sync_id
            ),
            Request::DelDaemon(s) => write!(f, "stop {s:?} sync daemon"),
            Request::DumpDaemons => write!(f, "list sync daemons"),
            Request::SetConfig(_) => write!(f, "set timeouts"),
            Request::GetConfig => write!(f, "read timeouts"),
            Request::GetInfo => write!(f, "read IPVS info"),
            Request::Zero(Some(k)) => write!(f, "zero counters of {k}"),
            Request::Zero(None) => write!(f, "zero all counters"),
            Request::Flush => write!(f, "flush all services"),
        }
    }
}

/// The controller request resolving a generic-netlink family's id (`CTRL_CMD_GETFAMILY` with
/// `CTRL_ATTR_FAMILY_NAME`), with `NLM_F_ACK`.
pub fn encode_get_family(name: &str, seq: u32) -> Result<Vec<u8>, EncodeError> {
    let genl = GenlmsghdrBuilder::<u8, u16>::default()
        .cmd(consts::CTRL_CMD_GETFAMILY)
        .version(1)
        .attrs(
            [leaf(
                consts::CTRL_ATTR_FAMILY_NAME,
                &cstring("CTRL_ATTR_FAMILY_NAME", name, usize::MAX)?,
            )?]
            .into_iter()
            .collect::<GenlBuffer<_, _>>(),
        )
        .build()
        .map_err(neli_err)?;
    encode_nlmsg(
        consts::GENL_ID_CTRL,
        consts::NLM_F_REQUEST | consts::NLM_F_ACK,
        seq,
        genl,
    )
}

fn encode_nlmsg<C, T>(
    ty: u16,
    flags: u16,
    seq: u32,
    genl: Genlmsghdr<C, T>,
) -> Result<Vec<u8>, EncodeError>
where
    C: neli::consts::genl::Cmd,
    T: NlAttrType,
{
    let msg = NlmsghdrBuilder::default()
        .nl_type(ty)
        .nl_flags(NlmF::from_bits_retain(flags))
        .nl_seq(seq)
        .nl_pid(0)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(neli_err)?;
    let mut buf = Cursor::new(Vec::new());
    msg.to_bytes(&mut buf).map_err(neli_err)?;
    Ok(buf.into_inner())
}

fn neli_err(e: impl fmt::Display) -> EncodeError {
    EncodeError::Netlink(e.to_string())
}

/// An attribute with a raw payload.
pub(crate) fn leaf<T: NlAttrType>(ty: T, payload: &[u8]) -> Result<Nlattr<T, Buffer>, EncodeError> {
    NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(ty)
                .build()
                .map_err(neli_err)?,
        )
        .nla_payload(payload)
        .build()
        .map_err(neli_err)
}

/// A nested attribute (`NLA_F_NESTED` set) holding `children`.
pub(crate) fn nest<T: NlAttrType, C: NlAttrType>(
    ty: T,
    children: &[Nlattr<C, Buffer>],
) -> Result<Nlattr<T, Buffer>, EncodeError> {
    let mut parent = leaf(ty, &[])?;
    for c in children {
        parent = parent.nest(c).map_err(neli_err)?;
    }
    Ok(parent)
}

/// A NUL-terminated string of at most `max` bytes before the NUL.
fn cstring(attr: &'static str, s: &str, max: usize) -> Result<Vec<u8>, EncodeError> {
    if s.as_bytes().contains(&0) {
        return Err(EncodeError::Nul {
            attr,
            value: s.to_string(),
        });
    }
    if s.len() > max {
        return Err(EncodeError::TooLong {
            attr,
            value: s.to_string(),
            max,
        });
    }
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    Ok(v)
}

/// `union nf_inet_addr`: 16 bytes, IPv4 in the first 4.
pub(crate) fn inet_addr(addr: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b = a.octets(),
    }
    b
}

/// The identifying attributes of a service.
fn service_key_attrs(k: &ServiceKey) -> Result<Vec<Nlattr<SvcAttr, Buffer>>, EncodeError> {
    let mut v = vec![leaf(SvcAttr::Af, &k.af().raw().to_ne_bytes())?];
    match k {
        ServiceKey::Fwmark { mark, .. } => v.push(leaf(SvcAttr::Fwmark, &mark.to_ne_bytes())?),
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            v.push(leaf(SvcAttr::Protocol, &protocol.raw().to_ne_bytes())?);
            v.push(leaf(SvcAttr::Addr, &inet_addr(addr))?);
            v.push(leaf(SvcAttr::Port, &port.to_be_bytes())?);
        }
    }
    Ok(v)
}

fn service_key_attr(k: &ServiceKey) -> Result<Nlattr<CmdAttr, Buffer>, EncodeError> {
    nest(CmdAttr::Service, &service_key_attrs(k)?)
}

/// A full service (what NEW/SET_SERVICE need), in ipvsadm's attribute order.
fn service_attr(s: &Service) -> Result<Nlattr<CmdAttr, Buffer>, EncodeError> {
    let mut v = service_key_attrs(&s.key)?;
    v.push(leaf(
        SvcAttr::SchedName,
        &cstring(
            "IPVS_SVC_ATTR_SCHED_NAME",
            s.scheduler.name(),
            consts::SCHEDNAME_MAXLEN - 1,
        )?,
    )?);
    if let Some(pe) = &s.pe_name {
        v.push(leaf(
            SvcAttr::PeName,
            &cstring("IPVS_SVC_ATTR_PE_NAME", pe, consts::PENAME_MAXLEN - 1)?,
        )?);
    }
    // struct ip_vs_flags { flags, mask }: the mask covers every bit, so the kernel takes the
    // flags as given instead of merging them with the old ones.
    let mut flags = [0u8; 8];
    flags[..4].copy_from_slice(&s.flags.raw().to_ne_bytes());
    flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    v.push(leaf(SvcAttr::Flags, &flags)?);
    v.push(leaf(SvcAttr::Timeout, &s.timeout.to_ne_bytes())?);
    v.push(leaf(SvcAttr::Netmask, &s.netmask.to_wire())?);
    nest(CmdAttr::Service, &v)
}

/// The identifying attributes of a destination.
fn dest_key_attrs(k: &DestKey) -> Result<Vec<Nlattr<DestAttr, Buffer>>, EncodeError> {
    let af = crate::model::AddressFamily::of(&k.addr);
    Ok(vec![
        leaf(DestAttr::AddrFamily, &af.raw().to_ne_bytes())?,
        leaf(DestAttr::Addr, &inet_addr(&k.addr))?,
        leaf(DestAttr::Port, &k.port.to_be_bytes())?,
    ])
}

fn dest_key_attr(k: &DestKey) -> Result<Nlattr<CmdAttr, Buffer>, EncodeError> {
    nest(CmdAttr::Dest, &dest_key_attrs(k)?)
}

/// A full destination (what NEW/SET_DEST need), in ipvsadm's attribute order.
fn dest_attr(d: &Destination) -> Result<Nlattr<CmdAttr, Buffer>, EncodeError> {
    let mut v = dest_key_attrs(&d.key())?;
    v.push(leaf(DestAttr::FwdMethod, &d.forward.raw().to_ne_bytes())?);
    v.push(leaf(DestAttr::Weight, &d.weight.to_ne_bytes())?);
    v.push(leaf(DestAttr::TunType, &[d.tunnel.kind.raw()])?);
    v.push(leaf(DestAttr::TunPort, &d.tunnel.port.to_be_bytes())?);
    v.push(leaf(DestAttr::TunFlags, &d.tunnel.flags.to_ne_bytes())?);
    v.push(leaf(DestAttr::UThresh, &d.upper_threshold.to_ne_bytes())?);
    v.push(leaf(DestAttr::LThresh, &d.lower_threshold.to_ne_bytes())?);
    nest(CmdAttr::Dest, &v)
}

/// A sync daemon (NEW_DAEMON), in ipvsadm's attribute order; optional settings only when set.
fn daemon_attr(d: &SyncDaemon) -> Result<Nlattr<CmdAttr, Buffer>, EncodeError> {
    let mut v = vec![
        leaf(DaemonAttr::State, &d.state.raw().to_ne_bytes())?,
        leaf(
            DaemonAttr::McastIfn,
            &cstring(
                "IPVS_DAEMON_ATTR_MCAST_IFN",
                &d.mcast_ifn,
                consts::IFNAME_MAXLEN - 1,
            )?,
        )?,
        leaf(DaemonAttr::SyncId, &d.sync_id.to_ne_bytes())?,
    ];
    if let Some(len) = d.sync_maxlen {
        v.push(leaf(DaemonAttr::SyncMaxlen, &len.to_ne_bytes())?);
    }
    if let Some(port) = d.mcast_port {
        v.push(leaf(DaemonAttr::McastPort, &port.to_ne_bytes())?);
    }
    if let Some(ttl) = d.mcast_ttl {
        v.push(leaf(DaemonAttr::McastTtl, &[ttl])?);
    }
    match d.mcast_group {
        Some(IpAddr::V4(g)) => {
            if !g.is_multicast() {
                return Err(EncodeError::Invalid {
                    attr: "IPVS_DAEMON_ATTR_MCAST_GROUP",
                    detail: format!("{g} is not a multicast address"),
                });
            }
            v.push(leaf(DaemonAttr::McastGroup, &g.octets())?);
        }
        Some(IpAddr::V6(g)) => {
            if !g.is_multicast() {
                return Err(EncodeError::Invalid {
                    attr: "IPVS_DAEMON_ATTR_MCAST_GROUP6",
                    detail: format!("{g} is not a multicast address"),
                });
            }
            v.push(leaf(DaemonAttr::McastGroup6, &g.octets())?);
        }
        None => {}
    }
    nest(CmdAttr::Daemon, &v)
}
