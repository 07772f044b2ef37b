//! Reading the kernel's answers (and requests, for tests and tools): netlink framing, ACKs,
//! and the typed attributes. Every length is checked; a malformed answer is a [`DecodeError`]
//! naming the attribute, never a panic.
//!
//! Netlink headers are split here rather than by neli's `Nlmsghdr` parser, whose length
//! arithmetic is unchecked; neli parses the generic-netlink header and the attribute lists.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::{
    FromBytesWithInput,
    consts::genl::NlAttrType,
    genl::{Genlmsghdr, Nlattr},
    types::{Buffer, GenlBuffer},
};

use crate::codec::Request;
use crate::consts::{self, CmdAttr, DaemonAttr, DestAttr, InfoAttr, IpvsCmd, StatsAttr, SvcAttr};
use crate::error::DecodeError;
use crate::model::{
    AddressFamily, ConnCounts, DaemonState, DestKey, Destination, ForwardMethod, Info, Netmask,
    Protocol, Scheduler, Service, ServiceFlags, ServiceKey, Stats, SyncDaemon, Timeouts, Tunnel,
    TunnelType,
};

const NLMSG_HDRLEN: usize = 16;

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`: a family id, `NLMSG_ERROR`, `NLMSG_DONE`, ...
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// Everything after the 16-byte header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Split a received datagram into its netlink messages.
pub fn split(datagram: &[u8]) -> Result<Vec<NlMsg<'_>>, DecodeError> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < datagram.len() {
        let hdr = datagram
            .get(off..off + NLMSG_HDRLEN)
            .ok_or(DecodeError::Truncated {
                offset: off,
                what: "nlmsghdr",
            })?;
        let len = ne_u32(hdr, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > datagram.len() - off {
            return Err(DecodeError::Truncated {
                offset: off,
                what: "nlmsg_len beyond the datagram or below the header size",
            });
        }
        out.push(NlMsg {
            ty: ne_u16(hdr, 4).unwrap_or(0),
            flags: ne_u16(hdr, 6).unwrap_or(0),
            seq: ne_u32(hdr, 8).unwrap_or(0),
            pid: ne_u32(hdr, 12).unwrap_or(0),
            payload: &datagram[off + NLMSG_HDRLEN..off + len],
        });
        off = off.saturating_add(align4(len));
    }
    Ok(out)
}

/// An `NLMSG_ERROR` message: an ACK (`errno` 0) or the kernel's refusal of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Positive errno; 0 for success.
    pub errno: i32,
    /// Sequence number of the request it answers (from the echoed header).
    pub request_seq: u32,
    /// Extended-ACK message (`NLMSGERR_ATTR_MSG`), if any.
    pub message: Option<String>,
}

/// Read an `NLMSG_ERROR` message.
pub fn ack(msg: &NlMsg<'_>) -> Result<Ack, DecodeError> {
    let p = msg.payload;
    let err = ne_u32(p, 0).ok_or(DecodeError::Truncated {
        offset: NLMSG_HDRLEN,
        what: "nlmsgerr.error",
    })? as i32;
    let echoed = p.get(4..4 + NLMSG_HDRLEN).ok_or(DecodeError::Truncated {
        offset: NLMSG_HDRLEN + 4,
        what: "nlmsgerr.msg",
    })?;
    let echoed_len = ne_u32(echoed, 0).unwrap_or(0) as usize;
    let request_seq = ne_u32(echoed, 8).unwrap_or(0);
    let mut message = None;
    if msg.flags & consts::NLM_F_ACK_TLVS != 0 {
        // The whole request is echoed on errors unless the ACK is capped.
        let echo = if err != 0 && msg.flags & consts::NLM_F_CAPPED == 0 {
            align4(echoed_len.max(NLMSG_HDRLEN))
        } else {
            NLMSG_HDRLEN
        };
        if let Some(tlvs) = p.get(4 + echo..) {
            for (ty, val) in raw_attrs(tlvs) {
                if ty == consts::NLMSGERR_ATTR_MSG {
                    message = Some(cstr_lossy(val));
                }
            }
        }
    }
    Ok(Ack {
        errno: err.checked_neg().unwrap_or(i32::MAX),
        request_seq,
        message,
    })
}

/// Walk a TLV list leniently (for extended ACKs): stops at the first malformed entry.
fn raw_attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut v = Vec::new();
    while b.len() >= 4 {
        let len = ne_u16(b, 0).unwrap_or(0) as usize;
        let ty = ne_u16(b, 2).unwrap_or(0) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        v.push((ty, &b[4..len]));
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    v
}

fn cstr_lossy(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A generic-netlink message of the IPVS family: command and first-level attributes (typed
/// by number, since their meaning depends on the command).
#[derive(Debug, Clone)]
pub struct GenlMsg {
    /// Command.
    pub cmd: IpvsCmd,
    /// Family version.
    pub version: u8,
    /// First-level attributes.
    pub attrs: GenlBuffer<u16, Buffer>,
}

impl GenlMsg {
    /// The last attribute of a type (the kernel's rule for duplicates).
    pub fn attr(&self, ty: u16) -> Option<&Nlattr<u16, Buffer>> {
        self.attrs
            .iter()
            .rev()
            .find(|a| *a.nla_type().nla_type() == ty)
    }
}

/// Parse a generic-netlink payload (after the netlink header).
pub fn genl(payload: &[u8]) -> Result<GenlMsg, DecodeError> {
    let g = Genlmsghdr::<u8, u16>::from_bytes_with_input(&mut Cursor::new(payload), payload.len())
        .map_err(|e| DecodeError::Malformed {
            context: "generic netlink message",
            detail: e.to_string(),
        })?;
    Ok(GenlMsg {
        cmd: IpvsCmd::from(*g.cmd()),
        version: *g.version(),
        attrs: g.attrs().clone(),
    })
}

/// The family id in a `CTRL_CMD_NEWFAMILY` reply.
pub fn family_id(payload: &[u8]) -> Result<u16, DecodeError> {
    let g = genl(payload)?;
    let a = g
        .attr(consts::CTRL_ATTR_FAMILY_ID)
        .ok_or(DecodeError::Missing {
            attr: "CTRL_ATTR_FAMILY_ID",
        })?;
    u16_ne("CTRL_ATTR_FAMILY_ID", a.nla_payload().as_ref())
}

// --- attribute payloads -----------------------------------------------------------------------

fn exact<const N: usize>(
    attr: &'static str,
    b: &[u8],
    expected: &'static str,
) -> Result<[u8; N], DecodeError> {
    b.try_into().map_err(|_| DecodeError::Length {
        attr,
        expected,
        got: b.len(),
    })
}

fn u8_(attr: &'static str, b: &[u8]) -> Result<u8, DecodeError> {
    Ok(exact::<1>(attr, b, "1")?[0])
}

fn u16_ne(attr: &'static str, b: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_ne_bytes(exact(attr, b, "2")?))
}

fn u16_be(attr: &'static str, b: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(exact(attr, b, "2")?))
}

fn u32_ne(attr: &'static str, b: &[u8]) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(exact(attr, b, "4")?))
}

/// A counter: 32-bit in `*_STATS`, 64-bit in `*_STATS64` and for byte counts.
fn counter(attr: &'static str, b: &[u8]) -> Result<u64, DecodeError> {
    match b.len() {
        4 => Ok(u64::from(u32_ne(attr, b)?)),
        8 => Ok(u64::from_ne_bytes(exact(attr, b, "8")?)),
        got => Err(DecodeError::Length {
            attr,
            expected: "4 or 8",
            got,
        }),
    }
}

/// A NUL-terminated string of at most `max` bytes (NUL included).
fn cstr(attr: &'static str, b: &[u8], max: usize) -> Result<String, DecodeError> {
    let end = b.iter().position(|&c| c == 0).ok_or(DecodeError::Invalid {
        attr,
        value: "string without NUL terminator".to_string(),
    })?;
    if end + 1 > max {
        return Err(DecodeError::Length {
            attr,
            expected: "at most 16 (NUL included)",
            got: end + 1,
        });
    }
    String::from_utf8(b[..end].to_vec()).map_err(|_| DecodeError::Invalid {
        attr,
        value: format!("{:?} (not UTF-8)", String::from_utf8_lossy(&b[..end])),
    })
}

/// `union nf_inet_addr`: 16 bytes from the kernel, 4 or 16 from user space for IPv4.
fn inet_addr(attr: &'static str, af: AddressFamily, b: &[u8]) -> Result<IpAddr, DecodeError> {
    match (af, b.len()) {
        (AddressFamily::Inet, 4 | 16) => Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        (AddressFamily::Inet6, 16) => Ok(IpAddr::V6(Ipv6Addr::from(exact::<16>(attr, b, "16")?))),
        (AddressFamily::Inet, got) => Err(DecodeError::Length {
            attr,
            expected: "4 or 16",
            got,
        }),
        (AddressFamily::Inet6, got) => Err(DecodeError::Length {
            attr,
            expected: "16",
            got,
        }),
    }
}

fn family(attr: &'static str, raw: u16) -> Result<AddressFamily, DecodeError> {
    AddressFamily::from_raw(raw).ok_or(DecodeError::Invalid {
        attr,
        value: raw.to_string(),
    })
}

/// The attributes nested in `parent`, typed `R`.
fn nested<R: NlAttrType>(
    parent: &Nlattr<u16, Buffer>,
    context: &'static str,
) -> Result<GenlBuffer<R, Buffer>, DecodeError> {
    let p = parent.nla_payload().as_ref();
    GenlBuffer::<R, Buffer>::from_bytes_with_input(&mut Cursor::new(p), p.len()).map_err(|e| {
        DecodeError::Malformed {
            context,
            detail: e.to_string(),
        }
    })
}

/// Last-wins lookup of a nested attribute's payload.
fn find<R: NlAttrType>(attrs: &GenlBuffer<R, Buffer>, ty: R) -> Option<&[u8]> {
    attrs
        .iter()
        .filter(|a| *a.nla_type().nla_type() == ty)
        .last()
        .map(|a| a.nla_payload().as_ref())
}

fn need<'a, R: NlAttrType>(
    attrs: &'a GenlBuffer<R, Buffer>,
    ty: R,
    name: &'static str,
) -> Result<&'a [u8], DecodeError> {
    find(attrs, ty).ok_or(DecodeError::Missing { attr: name })
}

fn find_nested_stats(
    attrs: &GenlBuffer<impl NlAttrType, Buffer>,
    ty64: impl NlAttrType,
    ty32: impl NlAttrType,
    ctx64: &'static str,
    ctx32: &'static str,
) -> Result<Option<Box<Stats>>, DecodeError> {
    let (t64, t32): (u16, u16) = (ty64.into(), ty32.into());
    for (ty, ctx) in [(t64, ctx64), (t32, ctx32)] {
        if let Some(a) = attrs
            .iter()
            .filter(|a| Into::<u16>::into(*a.nla_type().nla_type()) == ty)
            .last()
        {
            let p = a.nla_payload().as_ref();
            let inner = GenlBuffer::<StatsAttr, Buffer>::from_bytes_with_input(
                &mut Cursor::new(p),
                p.len(),
            )
            .map_err(|e| DecodeError::Malformed {
                context: ctx,
                detail: e.to_string(),
            })?;
            return stats(&inner).map(|s| Some(Box::new(s)));
        }
    }
    Ok(None)
}

/// Counters from a `*_STATS` or `*_STATS64` nest.
fn stats(attrs: &GenlBuffer<StatsAttr, Buffer>) -> Result<Stats, DecodeError> {
    let mut s = Stats::default();
    for a in attrs.iter() {
        let p = a.nla_payload().as_ref();
        let (slot, name) = match a.nla_type().nla_type() {
            StatsAttr::Conns => (&mut s.conns, "IPVS_STATS_ATTR_CONNS"),
            StatsAttr::Inpkts => (&mut s.inpkts, "IPVS_STATS_ATTR_INPKTS"),
            StatsAttr::Outpkts => (&mut s.outpkts, "IPVS_STATS_ATTR_OUTPKTS"),
            StatsAttr::Inbytes => (&mut s.inbytes, "IPVS_STATS_ATTR_INBYTES"),
            StatsAttr::Outbytes => (&mut s.outbytes, "IPVS_STATS_ATTR_OUTBYTES"),
            StatsAttr::Cps => (&mut s.cps, "IPVS_STATS_ATTR_CPS"),
            StatsAttr::Inpps => (&mut s.inpps, "IPVS_STATS_ATTR_INPPS"),
            StatsAttr::Outpps => (&mut s.outpps, "IPVS_STATS_ATTR_OUTPPS"),
            StatsAttr::Inbps => (&mut s.inbps, "IPVS_STATS_ATTR_INBPS"),
            StatsAttr::Outbps => (&mut s.outbps, "IPVS_STATS_ATTR_OUTBPS"),
            // Padding and attributes of newer kernels carry nothing we read.
            _ => continue,
        };
        *slot = counter(name, p)?;
    }
    Ok(s)
}

// --- services -------------------------------------------------------------------------------

fn key_from(attrs: &GenlBuffer<SvcAttr, Buffer>) -> Result<ServiceKey, DecodeError> {
    let af = family(
        "IPVS_SVC_ATTR_AF",
        u16_ne(
            "IPVS_SVC_ATTR_AF",
            need(attrs, SvcAttr::Af, "IPVS_SVC_ATTR_AF")?,
        )?,
    )?;
    if let Some(fw) = find(attrs, SvcAttr::Fwmark) {
        return Ok(ServiceKey::Fwmark {
            af,
            mark: u32_ne("IPVS_SVC_ATTR_FWMARK", fw)?,
        });
    }
    let proto_raw = u16_ne(
        "IPVS_SVC_ATTR_PROTOCOL",
        need(attrs, SvcAttr::Protocol, "IPVS_SVC_ATTR_PROTOCOL")?,
    )?;
    let protocol = Protocol::from_raw(proto_raw).ok_or(DecodeError::Invalid {
        attr: "IPVS_SVC_ATTR_PROTOCOL",
        value: proto_raw.to_string(),
    })?;
    let addr = inet_addr(
        "IPVS_SVC_ATTR_ADDR",
        af,
        need(attrs, SvcAttr::Addr, "IPVS_SVC_ATTR_ADDR")?,
    )?;
    let port = u16_be(
        "IPVS_SVC_ATTR_PORT",
        need(attrs, SvcAttr::Port, "IPVS_SVC_ATTR_PORT")?,
    )?;
    Ok(ServiceKey::Addr {
        protocol,
        addr,
        port,
    })
}

/// The identity of the service in an `IPVS_CMD_ATTR_SERVICE` nest.
pub fn service_key(attr: &Nlattr<u16, Buffer>) -> Result<ServiceKey, DecodeError> {
    key_from(&nested::<SvcAttr>(attr, "IPVS_CMD_ATTR_SERVICE")?)
}

/// A complete service from an `IPVS_CMD_ATTR_SERVICE` nest (a dump entry or a NEW/SET request).
pub fn service(attr: &Nlattr<u16, Buffer>) -> Result<Service, DecodeError> {
    let attrs = nested::<SvcAttr>(attr, "IPVS_CMD_ATTR_SERVICE")?;
    let key = key_from(&attrs)?;
    let scheduler = Scheduler::from_name(&cstr(
        "IPVS_SVC_ATTR_SCHED_NAME",
        need(&attrs, SvcAttr::SchedName, "IPVS_SVC_ATTR_SCHED_NAME")?,
        consts::SCHEDNAME_MAXLEN,
    )?);
    let flags_raw = need(&attrs, SvcAttr::Flags, "IPVS_SVC_ATTR_FLAGS")?;
    let flags = exact::<8>("IPVS_SVC_ATTR_FLAGS", flags_raw, "8")?;
    let flags =
        ServiceFlags::from_raw(u32::from_ne_bytes([flags[0], flags[1], flags[2], flags[3]]));
    let timeout = u32_ne(
        "IPVS_SVC_ATTR_TIMEOUT",
        need(&attrs, SvcAttr::Timeout, "IPVS_SVC_ATTR_TIMEOUT")?,
    )?;
    let netmask = Netmask::from_wire(
        key.af(),
        exact(
            "IPVS_SVC_ATTR_NETMASK",
            need(&attrs, SvcAttr::Netmask, "IPVS_SVC_ATTR_NETMASK")?,
            "4",
        )?,
    );
    let pe_name = find(&attrs, SvcAttr::PeName)
        .map(|b| cstr("IPVS_SVC_ATTR_PE_NAME", b, consts::PENAME_MAXLEN + 1))
        .transpose()?;
    let stats = find_nested_stats(
        &attrs,
        SvcAttr::Stats64,
        SvcAttr::Stats,
        "IPVS_SVC_ATTR_STATS64",
        "IPVS_SVC_ATTR_STATS",
    )?;
    Ok(Service {
        key,
        scheduler,
        flags,
        timeout,
        netmask,
        pe_name,
        stats,
    })
}

// --- destinations ---------------------------------------------------------------------------

fn dest_key_from(
    attrs: &GenlBuffer<DestAttr, Buffer>,
    svc_af: AddressFamily,
) -> Result<DestKey, DecodeError> {
    // Kernels before 3.18 do not send the family: it is then the service's.
    let af = match find(attrs, DestAttr::AddrFamily) {
        Some(b) => family(
            "IPVS_DEST_ATTR_ADDR_FAMILY",
            u16_ne("IPVS_DEST_ATTR_ADDR_FAMILY", b)?,
        )?,
        None => svc_af,
    };
    Ok(DestKey {
        addr: inet_addr(
            "IPVS_DEST_ATTR_ADDR",
            af,
            need(attrs, DestAttr::Addr, "IPVS_DEST_ATTR_ADDR")?,
        )?,
        port: u16_be(
            "IPVS_DEST_ATTR_PORT",
            need(attrs, DestAttr::Port, "IPVS_DEST_ATTR_PORT")?,
        )?,
    })
}

/// The identity of the destination in an `IPVS_CMD_ATTR_DEST` nest.
pub fn dest_key(attr: &Nlattr<u16, Buffer>, svc_af: AddressFamily) -> Result<DestKey, DecodeError> {
    dest_key_from(&nested::<DestAttr>(attr, "IPVS_CMD_ATTR_DEST")?, svc_af)
}

/// A complete destination from an `IPVS_CMD_ATTR_DEST` nest. `svc_af` is the service's family,
/// used when the nest does not say its own.
pub fn destination(
    attr: &Nlattr<u16, Buffer>,
    svc_af: AddressFamily,
) -> Result<Destination, DecodeError> {
    let attrs = nested::<DestAttr>(attr, "IPVS_CMD_ATTR_DEST")?;
    let key = dest_key_from(&attrs, svc_af)?;
    let fwd_raw = u32_ne(
        "IPVS_DEST_ATTR_FWD_METHOD",
        need(&attrs, DestAttr::FwdMethod, "IPVS_DEST_ATTR_FWD_METHOD")?,
    )?;
    let forward = ForwardMethod::from_raw(fwd_raw).ok_or(DecodeError::Invalid {
        attr: "IPVS_DEST_ATTR_FWD_METHOD",
        value: fwd_raw.to_string(),
    })?;
    let opt_u32 = |ty: DestAttr, name: &'static str| -> Result<u32, DecodeError> {
        find(&attrs, ty).map(|b| u32_ne(name, b)).unwrap_or(Ok(0))
    };
    let tun_kind_raw = find(&attrs, DestAttr::TunType)
        .map(|b| u8_("IPVS_DEST_ATTR_TUN_TYPE", b))
        .unwrap_or(Ok(0))?;
    let tunnel = Tunnel {
        kind: TunnelType::from_raw(tun_kind_raw).ok_or(DecodeError::Invalid {
            attr: "IPVS_DEST_ATTR_TUN_TYPE",
            value: tun_kind_raw.to_string(),
        })?,
        port: find(&attrs, DestAttr::TunPort)
            .map(|b| u16_be("IPVS_DEST_ATTR_TUN_PORT", b))
            .unwrap_or(Ok(0))?,
        flags: find(&attrs, DestAttr::TunFlags)
            .map(|b| u16_ne("IPVS_DEST_ATTR_TUN_FLAGS", b))
            .unwrap_or(Ok(0))?,
    };
    Ok(Destination {
        addr: key.addr,
        port: key.port,
        forward,
        weight: u32_ne(
            "IPVS_DEST_ATTR_WEIGHT",
            need(&attrs, DestAttr::Weight, "IPVS_DEST_ATTR_WEIGHT")?,
        )?,
        upper_threshold: u32_ne(
            "IPVS_DEST_ATTR_U_THRESH",
            need(&attrs, DestAttr::UThresh, "IPVS_DEST_ATTR_U_THRESH")?,
        )?,
        lower_threshold: u32_ne(
            "IPVS_DEST_ATTR_L_THRESH",
            need(&attrs, DestAttr::LThresh, "IPVS_DEST_ATTR_L_THRESH")?,
        )?,
        tunnel,
        conns: ConnCounts {
            active: opt_u32(DestAttr::ActiveConns, "IPVS_DEST_ATTR_ACTIVE_CONNS")?,
            inactive: opt_u32(DestAttr::InactConns, "IPVS_DEST_ATTR_INACT_CONNS")?,
            persistent: opt_u32(DestAttr::PersistConns, "IPVS_DEST_ATTR_PERSIST_CONNS")?,
        },
        stats: find_nested_stats(
            &attrs,
            DestAttr::Stats64,
            DestAttr::Stats,
            "IPVS_DEST_ATTR_STATS64",
            "IPVS_DEST_ATTR_STATS",
        )?,
    })
}

// --- sync daemons, config, info ----------------------------------------------------------------

/// A sync daemon from an `IPVS_CMD_ATTR_DAEMON` nest.
pub fn daemon(attr: &Nlattr<u16, Buffer>) -> Result<SyncDaemon, DecodeError> {
    let attrs = nested::<DaemonAttr>(attr, "IPVS_CMD_ATTR_DAEMON")?;
    let state_raw = u32_ne(
        "IPVS_DAEMON_ATTR_STATE",
        need(&attrs, DaemonAttr::State, "IPVS_DAEMON_ATTR_STATE")?,
    )?;
    let state = DaemonState::from_raw(state_raw).ok_or(DecodeError::Invalid {
        attr: "IPVS_DAEMON_ATTR_STATE",
        value: state_raw.to_string(),
    })?;
    let mcast_group = match (
        find(&attrs, DaemonAttr::McastGroup),
        find(&attrs, DaemonAttr::McastGroup6),
    ) {
        (_, Some(b)) => Some(inet_addr(
            "IPVS_DAEMON_ATTR_MCAST_GROUP6",
            AddressFamily::Inet6,
            b,
        )?),
        (Some(b), None) => Some(IpAddr::V4(Ipv4Addr::from(exact::<4>(
            "IPVS_DAEMON_ATTR_MCAST_GROUP",
            b,
            "4",
        )?))),
        (None, None) => None,
    };
    Ok(SyncDaemon {
        state,
        mcast_ifn: cstr(
            "IPVS_DAEMON_ATTR_MCAST_IFN",
            need(&attrs, DaemonAttr::McastIfn, "IPVS_DAEMON_ATTR_MCAST_IFN")?,
            consts::IFNAME_MAXLEN,
        )?,
        sync_id: u32_ne(
            "IPVS_DAEMON_ATTR_SYNC_ID",
            need(&attrs, DaemonAttr::SyncId, "IPVS_DAEMON_ATTR_SYNC_ID")?,
        )?,
        sync_maxlen: find(&attrs, DaemonAttr::SyncMaxlen)
            .map(|b| u16_ne("IPVS_DAEMON_ATTR_SYNC_MAXLEN", b))
            .transpose()?,
        mcast_group,
        mcast_port: find(&attrs, DaemonAttr::McastPort)
            .map(|b| u16_ne("IPVS_DAEMON_ATTR_MCAST_PORT", b))
            .transpose()?,
        mcast_ttl: find(&attrs, DaemonAttr::McastTtl)
            .map(|b| u8_("IPVS_DAEMON_ATTR_MCAST_TTL", b))
            .transpose()?,
    })
}

fn top_u32(g: &GenlMsg, ty: u16, name: &'static str) -> Result<Option<u32>, DecodeError> {
    g.attr(ty)
        .map(|a| u32_ne(name, a.nla_payload().as_ref()))
        .transpose()
}

/// Timeouts from a `GET_CONFIG` reply (or a `SET_CONFIG` request).
pub fn timeouts(g: &GenlMsg) -> Result<Timeouts, DecodeError> {
    Ok(Timeouts {
        tcp: top_u32(g, CmdAttr::TimeoutTcp.into(), "IPVS_CMD_ATTR_TIMEOUT_TCP")?,
        tcp_fin: top_u32(
            g,
            CmdAttr::TimeoutTcpFin.into(),
            "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN",
        )?,
        udp: top_u32(g, CmdAttr::TimeoutUdp.into(), "IPVS_CMD_ATTR_TIMEOUT_UDP")?,
    })
}

/// Version and table size from a `GET_INFO` reply.
pub fn info(g: &GenlMsg) -> Result<Info, DecodeError> {
    Ok(Info {
        version: top_u32(g, InfoAttr::Version.into(), "IPVS_INFO_ATTR_VERSION")?.ok_or(
            DecodeError::Missing {
                attr: "IPVS_INFO_ATTR_VERSION",
            },
        )?,
        conn_tab_size: top_u32(
            g,
            InfoAttr::ConnTabSize.into(),
            "IPVS_INFO_ATTR_CONN_TAB_SIZE",
        )?
        .ok_or(DecodeError::Missing {
            attr: "IPVS_INFO_ATTR_CONN_TAB_SIZE",
        })?,
    })
}

fn cmd_attr<'a>(
    g: &'a GenlMsg,
    ty: CmdAttr,
    name: &'static str,
) -> Result<&'a Nlattr<u16, Buffer>, DecodeError> {
    g.attr(ty.into()).ok_or(DecodeError::Missing { attr: name })
}

/// The service of a `NEW_SERVICE` dump entry or `GET_SERVICE` reply.
pub fn service_reply(g: &GenlMsg) -> Result<Service, DecodeError> {
    service(cmd_attr(g, CmdAttr::Service, "IPVS_CMD_ATTR_SERVICE")?)
}

/// The destination of a `NEW_DEST` dump entry.
pub fn dest_reply(g: &GenlMsg, svc_af: AddressFamily) -> Result<Destination, DecodeError> {
    destination(cmd_attr(g, CmdAttr::Dest, "IPVS_CMD_ATTR_DEST")?, svc_af)
}

/// The sync daemon of a `NEW_DAEMON` dump entry.
pub fn daemon_reply(g: &GenlMsg) -> Result<SyncDaemon, DecodeError> {
    daemon(cmd_attr(g, CmdAttr::Daemon, "IPVS_CMD_ATTR_DAEMON")?)
}

/// Read a request back (the inverse of [`Request::encode`]; also reads ipvsadm's requests,
/// which carry a complete service where only its identity matters).
pub fn request(msg: &NlMsg<'_>) -> Result<Request, DecodeError> {
    let g = genl(msg.payload)?;
    let dump = msg.flags & consts::NLM_F_DUMP == consts::NLM_F_DUMP;
    let svc_key = || service_key(cmd_attr(&g, CmdAttr::Service, "IPVS_CMD_ATTR_SERVICE")?);
    Ok(match g.cmd {
        IpvsCmd::NewService => Request::NewService(service_reply(&g)?),
        IpvsCmd::SetService => Request::SetService(service_reply(&g)?),
        IpvsCmd::DelService => Request::DelService(svc_key()?),
        IpvsCmd::GetService if dump => Request::DumpServices,
        IpvsCmd::GetService => Request::GetService(svc_key()?),
        IpvsCmd::NewDest => {
            let k = svc_key()?;
            Request::NewDest(k, dest_reply(&g, k.af())?)
        }
        IpvsCmd::SetDest => {
            let k = svc_key()?;
            Request::SetDest(k, dest_reply(&g, k.af())?)
        }
        IpvsCmd::DelDest => {
            let k = svc_key()?;
            Request::DelDest(
                k,
                dest_key(cmd_attr(&g, CmdAttr::Dest, "IPVS_CMD_ATTR_DEST")?, k.af())?,
            )
        }
        IpvsCmd::GetDest => Request::DumpDests(svc_key()?),
        IpvsCmd::NewDaemon => Request::NewDaemon(daemon_reply(&g)?),
        IpvsCmd::DelDaemon => {
            let a = nested::<DaemonAttr>(
                cmd_attr(&g, CmdAttr::Daemon, "IPVS_CMD_ATTR_DAEMON")?,
                "IPVS_CMD_ATTR_DAEMON",
            )?;
            let raw = u32_ne(
                "IPVS_DAEMON_ATTR_STATE",
                need(&a, DaemonAttr::State, "IPVS_DAEMON_ATTR_STATE")?,
            )?;
            Request::DelDaemon(DaemonState::from_raw(raw).ok_or(DecodeError::Invalid {
                attr: "IPVS_DAEMON_ATTR_STATE",
                value: raw.to_string(),
            })?)
        }
        IpvsCmd::GetDaemon => Request::DumpDaemons,
        IpvsCmd::SetConfig => Request::SetConfig(timeouts(&g)?),
        IpvsCmd::GetConfig => Request::GetConfig,
        IpvsCmd::GetInfo => Request::GetInfo,
        IpvsCmd::Zero => match g.attr(CmdAttr::Service.into()) {
            Some(a) => Request::Zero(Some(service_key(a)?)),
            None => Request::Zero(None),
        },
        IpvsCmd::Flush => Request::Flush,
        other => {
            return Err(DecodeError::Unexpected(format!(
                "command {other:?} is not a request"
            )));
        }
    })
}
