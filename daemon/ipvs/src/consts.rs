//! Numbers of the `IPVS` generic-netlink family, from the kernel UAPI header `linux/ip_vs.h`.
//!
//! Commands and attribute types are `neli` enums: a value this crate does not know decodes to
//! `UnrecognizedConst(n)` instead of failing, so a newer kernel's extra attributes are skipped.

use neli::neli_enum;

/// Generic-netlink family name registered by the `ip_vs` module.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// Version of the family's protocol (`IPVS_GENL_VERSION`).
pub const IPVS_GENL_VERSION: u8 = 1;

/// `AF_INET` as the kernel puts it in `IPVS_SVC_ATTR_AF` / `IPVS_DEST_ATTR_ADDR_FAMILY`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u16 = 17;
/// `IPPROTO_SCTP`.
pub const IPPROTO_SCTP: u16 = 132;

/// Longest scheduler name including its NUL (`IP_VS_SCHEDNAME_MAXLEN`).
pub const SCHEDNAME_MAXLEN: usize = 16;
/// Longest persistence-engine name including its NUL (`IP_VS_PENAME_MAXLEN`).
pub const PENAME_MAXLEN: usize = 16;
/// Longest interface name including its NUL (`IP_VS_IFNAME_MAXLEN`).
pub const IFNAME_MAXLEN: usize = 16;

/// Service flag bits (`IP_VS_SVC_F_*`).
pub mod svc_flags {
    /// Persistent service (`-p`).
    pub const PERSISTENT: u32 = 0x0001;
    /// Set by the kernel on every hashed service; never meaningful to user space.
    pub const HASHED: u32 = 0x0002;
    /// One-packet scheduling (`-o`).
    pub const ONEPACKET: u32 = 0x0004;
    /// Scheduler flag 1: `sh-fallback` for sh, `mh-fallback` for mh.
    pub const SCHED1: u32 = 0x0008;
    /// Scheduler flag 2: `sh-port` for sh, `mh-port` for mh.
    pub const SCHED2: u32 = 0x0010;
    /// Scheduler flag 3 (unused by the in-tree schedulers).
    pub const SCHED3: u32 = 0x0020;
}

/// Forwarding methods (`IP_VS_CONN_F_FWD_MASK` part of the connection flags).
pub mod fwd {
    /// Mask of the forwarding-method bits.
    pub const MASK: u32 = 0x0007;
    /// NAT.
    pub const MASQ: u32 = 0x0000;
    /// Local node.
    pub const LOCALNODE: u32 = 0x0001;
    /// IP-in-IP / GUE / GRE tunnel.
    pub const TUNNEL: u32 = 0x0002;
    /// Direct routing.
    pub const DROUTE: u32 = 0x0003;
    /// Cache bypass.
    pub const BYPASS: u32 = 0x0004;
}

/// Sync daemon states (`IP_VS_STATE_*`).
pub mod daemon_state {
    /// Master: sends connection updates.
    pub const MASTER: u32 = 0x0001;
    /// Backup: receives them.
    pub const BACKUP: u32 = 0x0002;
}

/// Commands (`IPVS_CMD_*`).
#[neli_enum(serialized_type = "u8")]
pub enum IpvsCmd {
    Unspec = 0,
    NewService = 1,
    SetService = 2,
    DelService = 3,
    GetService = 4,
    NewDest = 5,
    SetDest = 6,
    DelDest = 7,
    GetDest = 8,
    NewDaemon = 9,
    DelDaemon = 10,
    GetDaemon = 11,
    SetConfig = 12,
    GetConfig = 13,
    SetInfo = 14,
    GetInfo = 15,
    Zero = 16,
    Flush = 17,
}
impl neli::consts::genl::Cmd for IpvsCmd {}

/// First-level attributes (`IPVS_CMD_ATTR_*`).
#[neli_enum(serialized_type = "u16")]
pub enum CmdAttr {
    Unspec = 0,
    Service = 1,
    Dest = 2,
    Daemon = 3,
    TimeoutTcp = 4,
    TimeoutTcpFin = 5,
    TimeoutUdp = 6,
}
impl neli::consts::genl::NlAttrType for CmdAttr {}

/// Service attributes, nested in [`CmdAttr::Service`] (`IPVS_SVC_ATTR_*`).
#[neli_enum(serialized_type = "u16")]
pub enum SvcAttr {
    Unspec = 0,
    Af = 1,
    Protocol = 2,
    Addr = 3,
    Port = 4,
    Fwmark = 5,
    SchedName = 6,
    Flags = 7,
    Timeout = 8,
    Netmask = 9,
    Stats = 10,
    PeName = 11,
    Stats64 = 12,
}
impl neli::consts::genl::NlAttrType for SvcAttr {}

/// Destination attributes, nested in [`CmdAttr::Dest`] (`IPVS_DEST_ATTR_*`).
#[neli_enum(serialized_type = "u16")]
pub enum DestAttr {
    Unspec = 0,
    Addr = 1,
    Port = 2,
    FwdMethod = 3,
    Weight = 4,
    UThresh = 5,
    LThresh = 6,
    ActiveConns = 7,
    InactConns = 8,
    PersistConns = 9,
    Stats = 10,
    AddrFamily = 11,
    Stats64 = 12,
    TunType = 13,
    TunPort = 14,
    TunFlags = 15,
}
impl neli::consts::genl::NlAttrType for DestAttr {}

/// Sync daemon attributes, nested in [`CmdAttr::Daemon`] (`IPVS_DAEMON_ATTR_*`).
#[neli_enum(serialized_type = "u16")]
pub enum DaemonAttr {
    Unspec = 0,
    State = 1,
    McastIfn = 2,
    SyncId = 3,
    SyncMaxlen = 4,
    McastGroup = 5,
    McastGroup6 = 6,
    McastPort = 7,
    McastTtl = 8,
}
impl neli::consts::genl::NlAttrType for DaemonAttr {}

/// Statistics attributes, nested in the `*_STATS` / `*_STATS64` attributes.
#[neli_enum(serialized_type = "u16")]
pub enum StatsAttr {
    Unspec = 0,
    Conns = 1,
    Inpkts = 2,
    Outpkts = 3,
    Inbytes = 4,
    Outbytes = 5,
    Cps = 6,
    Inpps = 7,
    Outpps = 8,
    Inbps = 9,
    Outbps = 10,
    /// Alignment padding before 64-bit values; carries nothing.
    Pad = 11,
}
impl neli::consts::genl::NlAttrType for StatsAttr {}

/// Attributes of the `GET_INFO` reply (top level, `IPVS_INFO_ATTR_*`).
#[neli_enum(serialized_type = "u16")]
pub enum InfoAttr {
    Unspec = 0,
    Version = 1,
    ConnTabSize = 2,
}
impl neli::consts::genl::NlAttrType for InfoAttr {}

/// Generic-netlink controller command `CTRL_CMD_GETFAMILY` (family resolution).
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// Controller attribute `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// Controller attribute `CTRL_ATTR_FAMILY_NAME` (NUL-terminated string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// Netlink message type of the generic-netlink controller (`GENL_ID_CTRL`).
pub const GENL_ID_CTRL: u16 = 16;

/// `NLMSG_ERROR`: an ACK (error 0) or an error.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`: part of a multipart reply.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`: ask for an ACK.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_DUMP_INTR`: the dump was interrupted by a change; its content may be inconsistent.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_ACK_TLVS` on an error: extended-ACK attributes follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLM_F_CAPPED` on an error: the echoed request is only its header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// `NLMSGERR_ATTR_MSG`: extended-ACK text.
pub const NLMSGERR_ATTR_MSG: u16 = 1;
