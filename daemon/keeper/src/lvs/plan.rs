//! From the configuration to IPVS plans: every `virtual_server` resolved into the kernel
//! services it stands for (one, or one per `virtual_server_group` member) and its real
//! servers with their configured settings, plus the connection sync daemon. Pure; used by
//! `keeperd --check` (its notes are configuration errors and warnings) and by the running
//! daemon, so both agree.
//!
//! Health does not enter here: [`super::desired`] combines these plans with the verdicts.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use keeper_ipvs::{
    AddressFamily, Destination, ForwardMethod, Netmask, Protocol, Scheduler, Service, ServiceKey,
};

use crate::config::node::KeyPath;
use crate::config::schema::{
    Config, IpFamily, LbAlgo, LbKind, Protocol as CfgProtocol, RealServer, VirtualServer,
};
use crate::config::syntax;

/// Kernel limits (`linux/ip_vs.h`).
const IP_VS_IFNAME_MAXLEN: usize = 16;
const IP_VS_PENAME_MAXLEN: usize = 16;
/// keepalived's persistence timeout when only a granularity is given.
const DEFAULT_PERSISTENCE: u32 = 360;
/// The most IPVS services one group member (a range or prefix) may expand to.
pub const MAX_MEMBER_ADDRESSES: u128 = 65_536;

/// A finding of the planning step, at a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvsNote {
    pub path: KeyPath,
    pub message: String,
    pub error: bool,
}

/// A real server as configured (health not applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServerPlan {
    pub name: String,
    pub addr: IpAddr,
    /// `None`: the port of each service (the virtual server's port, or a group member's).
    pub port: Option<u16>,
    pub forward: ForwardMethod,
    /// Configured weight.
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    /// Weight 0 instead of removal while down.
    pub inhibit_on_failure: bool,
    /// Whether a checker decides its health (else it is always up).
    pub has_checker: bool,
    /// Down until the checkers' first verdict: some checker has `alpha` (its own, else the
    /// real server's, else the virtual server's), as the health checkers start it.
    pub starts_down: bool,
}

impl RealServerPlan {
    /// The destination in a service listening on `service_port`, with `weight`.
    pub fn destination(&self, service_port: u16, weight: u32) -> Destination {
        let mut d = Destination::new(
            self.addr,
            self.port.unwrap_or(service_port),
            self.forward,
            weight,
        );
        d.upper_threshold = self.upper_threshold;
        d.lower_threshold = self.lower_threshold;
        d
    }
}

/// A `virtual_server`, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServerPlan {
    pub name: String,
    /// The kernel services it stands for, with their settings (no destinations).
    pub services: Vec<Service>,
    pub real_servers: Vec<RealServerPlan>,
    /// Used while the quorum is lost (by default: while no real server is up).
    pub sorry_server: Option<Destination>,
    /// Keep the sorry server at weight 0 while it is not used.
    pub sorry_server_inhibit: bool,
    /// The sum of the weights of the live real servers needed to be "up".
    pub quorum: u32,
    pub hysteresis: u32,
}

/// The connection sync daemon, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncPlan {
    pub interface: String,
    /// The VRRP instance whose state drives the daemon; `None`: master and backup always run.
    pub instance: Option<String>,
    pub sync_id: u32,
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
}

/// Everything IPVS needs from a configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LvsPlan {
    /// Shared with the [`PlanCache`] that made them: a reload re-plans only what changed.
    pub virtual_servers: Vec<Arc<VirtualServerPlan>>,
    pub sync: Option<SyncPlan>,
}

impl LvsPlan {
    /// Whether keeperd has anything to do with IPVS (else it never opens it).
    pub fn uses_ipvs(&self, cfg: &Config) -> bool {
        !self.virtual_servers.is_empty()
            || self.sync.is_some()
            || cfg.global.lvs_flush
            || cfg.global.lvs_timeouts.is_some()
    }
}

fn path(parts: &[&str]) -> KeyPath {
    parts.iter().map(|s| s.to_string()).collect()
}

struct Notes(Vec<LvsNote>);

impl Notes {
    fn error(&mut self, path: KeyPath, message: impl Into<String>) {
        self.0.push(LvsNote {
            path,
            message: message.into(),
            error: true,
        });
    }
    fn warn(&mut self, path: KeyPath, message: impl Into<String>) {
        self.0.push(LvsNote {
            path,
            message: message.into(),
            error: false,
        });
    }
}

/// Plans every virtual server and the sync daemon. A virtual server with an error is left out;
/// every finding is returned.
pub fn plan(cfg: &Config) -> (LvsPlan, Vec<LvsNote>) {
    plan_cached(cfg, &mut PlanCache::default())
}

/// The plans of the virtual servers last planned, with their notes. A virtual server whose
/// configuration is the same `Arc` as then (a reload that re-read another one, see
/// `config::reload`) and whose groups are unchanged is not planned again: its plan depends on
/// nothing else.
#[derive(Debug, Default)]
pub struct PlanCache {
    groups: BTreeMap<String, Option<Vec<Member>>>,
    entries: HashMap<String, CachedPlan>,
}

#[derive(Debug)]
struct CachedPlan {
    config: Arc<VirtualServer>,
    plan: Option<Arc<VirtualServerPlan>>,
    notes: Vec<LvsNote>,
}

/// One [`PlanCache`] shared by the configuration's checks and the IPVS task: both plan the
/// same configuration, and a reload then plans one virtual server once.
pub type SharedPlanCache = Arc<std::sync::Mutex<PlanCache>>;

/// [`plan_cached`] on a shared cache.
pub fn plan_shared(cfg: &Config, cache: &SharedPlanCache) -> (LvsPlan, Vec<LvsNote>) {
    // A panic while planning leaves at worst a cache of older plans, each still keyed by the
    // configuration it was made from: usable.
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    plan_cached(cfg, &mut cache)
}

/// [`plan`], reusing and then updating `cache`.
pub fn plan_cached(cfg: &Config, cache: &mut PlanCache) -> (LvsPlan, Vec<LvsNote>) {
    let mut notes = Notes(Vec::new());
    let groups = expand_groups(cfg, &mut notes);
    if groups != cache.groups {
        cache.entries.clear();
        cache.groups = groups;
    }
    // Virtual servers no longer configured leave the cache.
    cache
        .entries
        .retain(|k, _| cfg.virtual_server.contains_key(k));
    let groups = &cache.groups;
    let mut virtual_servers = Vec::new();
    // Which virtual server each kernel service came from, to refuse two claiming one.
    let mut claimed: BTreeMap<ServiceKey, &str> = BTreeMap::new();
    for (name, vs) in &cfg.virtual_server {
        let fresh = match cache.entries.get(name) {
            Some(c) => !Arc::ptr_eq(&c.config, vs),
            None => true,
        };
        if fresh {
            let mut own = Notes(Vec::new());
            let plan = plan_virtual_server(name, vs, groups, &mut own).map(Arc::new);
            cache.entries.insert(
                name.clone(),
                CachedPlan {
                    config: vs.clone(),
                    plan,
                    notes: own.0,
                },
            );
        }
        let Some(cached) = cache.entries.get(name) else {
            continue;
        };
        notes.0.extend(cached.notes.iter().cloned());
        let Some(p) = cached.plan.clone() else {
            continue;
        };
        let mut clash = false;
        for s in &p.services {
            if let Some(other) = claimed.get(&s.key) {
                notes.error(
                    path(&["virtual_server", name]),
                    format!("virtual server {other:?} already serves {}", s.key),
                );
                clash = true;
            }
        }
        if clash {
            continue;
        }
        for s in &p.services {
            claimed.insert(s.key, name);
        }
        virtual_servers.push(p);
    }
    let sync = plan_sync(cfg, &mut notes);
    (
        LvsPlan {
            virtual_servers,
            sync,
        },
        notes.0,
    )
}

/// One member of a `virtual_server_group`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Member {
    Addr(IpAddr, u16),
    Fwmark(u32, Option<AddressFamily>),
}

fn expand_groups(cfg: &Config, notes: &mut Notes) -> BTreeMap<String, Option<Vec<Member>>> {
    let mut out = BTreeMap::new();
    for (name, members) in &cfg.virtual_server_group {
        let mut all = Vec::new();
        let mut ok = true;
        if members.is_empty() {
            notes.error(
                path(&["virtual_server_group", name]),
                "a virtual server group needs at least one member",
            );
            ok = false;
        }
        for (i, m) in members.iter().enumerate() {
            match parse_member(m) {
                Ok(mut v) => all.append(&mut v),
                Err(e) => {
                    notes.error(path(&["virtual_server_group", name, &i.to_string()]), e);
                    ok = false;
                }
            }
        }
        out.insert(name.clone(), ok.then_some(all));
    }
    out
}

/// Parses one group member in keepalived's syntax (see the schema).
fn parse_member(text: &str) -> Result<Vec<Member>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["fwmark", mark, rest @ ..] => {
            let mark = mark
                .parse::<u32>()
                .ok()
                .filter(|m| *m > 0)
                .ok_or_else(|| format!("invalid fwmark {mark:?} (1-4294967295)"))?;
            let af = match rest {
                [] => None,
                ["inet"] => Some(AddressFamily::Inet),
                ["inet6"] => Some(AddressFamily::Inet6),
                _ => return Err(format!("{text:?} is not `fwmark N [inet|inet6]`")),
            };
            Ok(vec![Member::Fwmark(mark, af)])
        }
        [range] | [range, _] => {
            let port = match words.get(1) {
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| format!("invalid port {p:?} in {text:?}"))?,
                None => 0,
            };
            Ok(expand_range(range)?
                .into_iter()
                .map(|a| Member::Addr(a, port))
                .collect())
        }
        _ => Err(format!(
            "{text:?} is not `IP [PORT]`, `IP-LAST [PORT]`, `IP/PREFIX [PORT]` or `fwmark N [inet|inet6]`"
        )),
    }
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

fn addr(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| format!("{s:?} is not an IP address"))
}

/// `IP`, `IP-LAST`, `IP-IP` or `IP/PREFIX` as the addresses it covers.
fn expand_range(s: &str) -> Result<Vec<IpAddr>, String> {
    let (first, last) = if let Some((a, p)) = s.split_once('/') {
        let base = addr(a)?;
        let bits: u32 = if base.is_ipv6() { 128 } else { 32 };
        let prefix: u32 = p
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("invalid prefix length {p:?} in {s:?}"))?;
        let host_bits = bits - prefix;
        let size: u128 = if host_bits >= 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        };
        let start = to_u128(base) & !(size.wrapping_sub(1));
        (
            from_u128(base.is_ipv6(), start),
            from_u128(base.is_ipv6(), start.wrapping_add(size.wrapping_sub(1))),
        )
    } else if let Some((a, b)) = s.split_once('-') {
        let first = addr(a)?;
        let last = if b.contains('.') || b.contains(':') {
            addr(b)?
        } else {
            // The last byte (IPv4, decimal) or the last group (IPv6, hex), as keepalived.
            match first {
                IpAddr::V4(v4) => {
                    let end: u8 = b
                        .parse()
                        .map_err(|_| format!("invalid range end {b:?} in {s:?} (0-255)"))?;
                    let o = v4.octets();
                    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], end))
                }
                IpAddr::V6(v6) => {
                    let end = u16::from_str_radix(b, 16)
                        .map_err(|_| format!("invalid range end {b:?} in {s:?} (hex, 0-ffff)"))?;
                    let mut seg = v6.segments();
                    seg[7] = end;
                    IpAddr::V6(Ipv6Addr::from(seg))
                }
            }
        };
        (first, last)
    } else {
        let a = addr(s)?;
        (a, a)
    };
    if first.is_ipv6() != last.is_ipv6() {
        return Err(format!("{s:?} mixes IPv4 and IPv6"));
    }
    let (lo, hi) = (to_u128(first), to_u128(last));
    if hi < lo {
        return Err(format!("{s:?}: the range ends before it starts"));
    }
    if hi - lo >= MAX_MEMBER_ADDRESSES {
        return Err(format!(
            "{s:?} covers {} addresses; at most {MAX_MEMBER_ADDRESSES} per member",
            (hi - lo).saturating_add(1)
        ));
    }
    Ok((lo..=hi).map(|n| from_u128(first.is_ipv6(), n)).collect())
}

fn scheduler(a: LbAlgo) -> Scheduler {
    match a {
        LbAlgo::Rr => Scheduler::Rr,
        LbAlgo::Wrr => Scheduler::Wrr,
        LbAlgo::Lc => Scheduler::Lc,
        LbAlgo::Wlc => Scheduler::Wlc,
        LbAlgo::Lblc => Scheduler::Lblc,
        LbAlgo::Lblcr => Scheduler::Lblcr,
        LbAlgo::Dh => Scheduler::Dh,
        LbAlgo::Sh => Scheduler::Sh,
        LbAlgo::Sed => Scheduler::Sed,
        LbAlgo::Nq => Scheduler::Nq,
        LbAlgo::Mh => Scheduler::Mh,
        LbAlgo::Fo => Scheduler::Fo,
        LbAlgo::Ovf => Scheduler::Ovf,
    }
}

/// The kernel's forwarding method for `lb_kind`.
pub fn forward(k: LbKind) -> ForwardMethod {
    match k {
        LbKind::Nat => ForwardMethod::Masq,
        LbKind::Dr => ForwardMethod::Route,
        LbKind::Tun => ForwardMethod::Tunnel,
    }
}

fn protocol(p: CfgProtocol) -> Protocol {
    match p {
        CfgProtocol::Tcp => Protocol::Tcp,
        CfgProtocol::Udp => Protocol::Udp,
        CfgProtocol::Sctp => Protocol::Sctp,
    }
}

fn clamp_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// The `alpha` of each checker of a real server, inherited as the checkers inherit it.
fn checker_alphas(vs: &VirtualServer, rs: &RealServer) -> Vec<bool> {
    [
        rs.tcp_check.as_ref().map(|c| c.alpha),
        rs.http_get.as_ref().map(|c| c.alpha),
        rs.ssl_get.as_ref().map(|c| c.alpha),
        rs.misc_check.as_ref().map(|c| c.alpha),
    ]
    .into_iter()
    .flatten()
    .map(|a| a.or(rs.alpha).unwrap_or(vs.alpha))
    .collect()
}

fn has_checker(rs: &RealServer) -> bool {
    rs.tcp_check.is_some()
        || rs.http_get.is_some()
        || rs.ssl_get.is_some()
        || rs.misc_check.is_some()
}

/// The netmask of `persistence_granularity` for a service of family `af`.
fn granularity(text: &str, af: AddressFamily) -> Result<Netmask, String> {
    let t = text.trim().trim_start_matches('/');
    match af {
        AddressFamily::Inet6 => t
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=128).contains(p))
            .map(Netmask::V6)
            .ok_or_else(|| format!("{text:?}: an IPv6 granularity is a prefix length 1-128")),
        AddressFamily::Inet => {
            let mask = match t.parse::<u32>() {
                Ok(p) if (1..=32).contains(&p) => Ipv4Addr::from(u32::MAX << (32 - p)),
                _ => t.parse::<Ipv4Addr>().map_err(|_| {
                    format!("{text:?}: an IPv4 granularity is a netmask such as 255.255.255.0")
                })?,
            };
            let bits = u32::from(mask);
            if bits.leading_ones() + bits.trailing_zeros() != 32 || bits == 0 {
                return Err(format!("{text:?} is not a contiguous netmask"));
            }
            Ok(Netmask::V4(mask))
        }
    }
}

fn plan_virtual_server(
    name: &str,
    vs: &VirtualServer,
    groups: &BTreeMap<String, Option<Vec<Member>>>,
    notes: &mut Notes,
) -> Option<VirtualServerPlan> {
    let base = path(&["virtual_server", name]);
    let at = |k: &str| {
        let mut p = base.clone();
        p.push(k.to_string());
        p
    };
    let proto = protocol(vs.protocol);
    let lb_kind = forward(vs.lb_kind);

    // Real servers first: a firewall mark's family may come from them.
    let mut real_servers: Vec<RealServerPlan> = Vec::new();
    for (rname, rs) in &vs.real_server {
        // Missing or out-of-range values were reported by validation; skip the server.
        let Some(addr) = rs.ip else { continue };
        let fwd = rs.lb_kind.map_or(lb_kind, forward);
        let mut port = match rs.port.or(vs.port) {
            Some(p) => Some(u16::try_from(p).ok()?),
            None => None,
        };
        // DR and TUN deliver packets unchanged, to the virtual server's port: keepalived resets
        // another port (with a warning), so does keeper.
        if let (Some(p), Some(vp), true) = (port, vs.port, fwd != ForwardMethod::Masq)
            && i64::from(p) != vp
            && vs.fwmark.is_none()
        {
            notes.warn(
                {
                    let mut k = at("real_server");
                    k.extend([rname.clone(), "port".to_string()]);
                    k
                },
                format!(
                    "{} forwarding reaches the real server on the virtual server's port {vp}: port {p} ignored (as keepalived)",
                    if fwd == ForwardMethod::Route { "DR" } else { "TUN" }
                ),
            );
            port = u16::try_from(vp).ok();
        }
        if let Some(other) = real_servers
            .iter()
            .find(|r| r.addr == addr && r.port == port)
        {
            notes.error(
                {
                    let mut k = at("real_server");
                    k.push(rname.clone());
                    k
                },
                format!(
                    "real server {:?} is already {addr} on that port",
                    other.name
                ),
            );
            return None;
        }
        real_servers.push(RealServerPlan {
            name: rname.clone(),
            addr,
            port,
            forward: fwd,
            weight: clamp_u32(rs.weight),
            upper_threshold: clamp_u32(rs.uthreshold.unwrap_or(0)),
            lower_threshold: clamp_u32(rs.lthreshold.unwrap_or(0)),
            inhibit_on_failure: rs.inhibit_on_failure.unwrap_or(vs.inhibit_on_failure),
            has_checker: has_checker(rs),
            starts_down: checker_alphas(vs, rs).into_iter().any(|a| a),
        });
    }
    let sorry_server = match &vs.sorry_server {
        Some(text) => match syntax::parse_ip_port(text) {
            Ok(sa) => Some(Destination::new(
                sa.ip(),
                sa.port(),
                vs.sorry_server_lvs_method.map_or(lb_kind, forward),
                1,
            )),
            Err(_) => return None, // reported by validation
        },
        None => None,
    };
    let declared_family = vs.ip_family.map(|f| match f {
        IpFamily::Inet => AddressFamily::Inet,
        IpFamily::Inet6 => AddressFamily::Inet6,
    });
    // keepalived: the family of the non-tunnelled real and sorry servers, else of all of them
    // when they agree, else IPv4.
    let fwmark_family = || -> AddressFamily {
        if let Some(f) = declared_family {
            return f;
        }
        let servers: Vec<(IpAddr, ForwardMethod)> = real_servers
            .iter()
            .map(|r| (r.addr, r.forward))
            .chain(sorry_server.iter().map(|d| (d.addr, d.forward)))
            .collect();
        let pick = |list: Vec<AddressFamily>| -> Option<AddressFamily> {
            let first = *list.first()?;
            list.iter().all(|f| *f == first).then_some(first)
        };
        let direct: Vec<AddressFamily> = servers
            .iter()
            .filter(|(_, f)| *f != ForwardMethod::Tunnel)
            .map(|(a, _)| AddressFamily::of(a))
            .collect();
        if !direct.is_empty() {
            return pick(direct).unwrap_or(AddressFamily::Inet);
        }
        pick(servers.iter().map(|(a, _)| AddressFamily::of(a)).collect())
            .unwrap_or(AddressFamily::Inet)
    };

    let keys: Vec<ServiceKey> = match (vs.ip, vs.port, vs.fwmark, &vs.group) {
        (Some(ip), Some(port), None, None) => vec![ServiceKey::Addr {
            protocol: proto,
            addr: ip,
            port: u16::try_from(port).ok()?,
        }],
        (None, _, Some(mark), None) => vec![ServiceKey::Fwmark {
            af: fwmark_family(),
            mark: u32::try_from(mark).ok()?,
        }],
        (None, _, None, Some(g)) => match groups.get(g) {
            Some(Some(members)) => members
                .iter()
                .map(|m| match *m {
                    Member::Addr(addr, port) => ServiceKey::Addr {
                        protocol: proto,
                        addr,
                        port,
                    },
                    Member::Fwmark(mark, af) => ServiceKey::Fwmark {
                        af: af.unwrap_or_else(fwmark_family),
                        mark,
                    },
                })
                .collect(),
            Some(None) => return None, // the group's own errors are reported
            None => {
                notes.error(at("group"), format!("no virtual_server_group named {g:?}"));
                return None;
            }
        },
        _ => return None, // reported by validation
    };

    let mut flags = keeper_ipvs::ServiceFlags::default();
    let algo = vs.lb_algo;
    for (on, key, wanted, bit) in [
        (vs.sh_fallback, "sh-fallback", LbAlgo::Sh, 1),
        (vs.sh_port, "sh-port", LbAlgo::Sh, 2),
        (vs.mh_fallback, "mh-fallback", LbAlgo::Mh, 1),
        (vs.mh_port, "mh-port", LbAlgo::Mh, 2),
    ] {
        if !on {
            continue;
        }
        if algo != wanted {
            notes.warn(
                at(key),
                format!(
                    "has an effect only with lb_algo = \"{}\"; ignored",
                    scheduler(wanted)
                ),
            );
            continue;
        }
        match bit {
            1 => flags.sched1 = true,
            _ => flags.sched2 = true,
        }
    }
    flags.one_packet = vs.ops;
    if vs.ops && vs.protocol != CfgProtocol::Udp {
        notes.warn(at("ops"), "one-packet scheduling is meant for UDP services");
    }
    let mut timeout = vs
        .persistence_timeout
        .map_or(0, |t| u32::try_from(t.get().as_secs()).unwrap_or(u32::MAX));
    if timeout == 0 && vs.persistence_granularity.is_some() {
        timeout = DEFAULT_PERSISTENCE;
        notes.warn(
            at("persistence_granularity"),
            format!("without persistence_timeout: persistent for {DEFAULT_PERSISTENCE} s (keepalived's default)"),
        );
    }
    if let Some(pe) = &vs.persistence_engine
        && (pe.is_empty() || pe.len() >= IP_VS_PENAME_MAXLEN)
    {
        notes.error(
            at("persistence_engine"),
            format!("must be 1 to {} bytes", IP_VS_PENAME_MAXLEN - 1),
        );
        return None;
    }

    let mut services = Vec::new();
    let mut bad = false;
    for key in keys {
        let af = key.af();
        let mut s = Service::new(key, scheduler(algo));
        s.flags = flags;
        if timeout > 0 {
            s.flags.persistent = true;
            s.timeout = timeout;
        }
        if let Some(g) = &vs.persistence_granularity {
            match granularity(g, af) {
                Ok(m) => s.netmask = m,
                Err(e) => {
                    notes.error(at("persistence_granularity"), e);
                    bad = true;
                }
            }
        }
        s.pe_name = vs.persistence_engine.clone();
        if let ServiceKey::Addr { port: 0, .. } = key
            && timeout == 0
        {
            notes.error(
                base.clone(),
                format!("{key}: a service on every port (port 0) must be persistent (set persistence_timeout)"),
            );
            bad = true;
        }
        for r in &real_servers {
            if AddressFamily::of(&r.addr) != af && r.forward != ForwardMethod::Tunnel {
                notes.error(
                    {
                        let mut p = at("real_server");
                        p.push(r.name.clone());
                        p
                    },
                    format!(
                        "{} is not of the family of {key}; only TUN forwards across families",
                        r.addr
                    ),
                );
                bad = true;
            }
        }
        if let Some(d) = &sorry_server
            && AddressFamily::of(&d.addr) != af
            && d.forward != ForwardMethod::Tunnel
        {
            notes.error(
                at("sorry_server"),
                format!(
                    "{} is not of the family of {key}; only TUN forwards across families",
                    d.addr
                ),
            );
            bad = true;
        }
        services.push(s);
        if bad {
            // One message per problem is enough, not one per group member.
            break;
        }
    }
    if bad {
        return None;
    }
    if real_servers.is_empty() && sorry_server.is_none() {
        notes.warn(
            base.clone(),
            "no real servers: the service is created empty",
        );
    }
    Some(VirtualServerPlan {
        name: name.to_string(),
        services,
        real_servers,
        sorry_server,
        sorry_server_inhibit: vs.sorry_server_inhibit,
        quorum: clamp_u32(vs.quorum),
        hysteresis: clamp_u32(vs.hysteresis),
    })
}

fn plan_sync(cfg: &Config, notes: &mut Notes) -> Option<SyncPlan> {
    // The per-instance form (seed 000), then the global one; one daemon configuration at most,
    // because the kernel runs at most one master and one backup daemon.
    let per_instance: Vec<(&String, &String)> = cfg
        .vrrp_instance
        .iter()
        .filter_map(|(n, i)| i.lvs_sync_daemon_interface.as_ref().map(|f| (n, f)))
        .collect();
    let mut found: Option<(KeyPath, SyncPlan)> = None;
    for (inst, ifname) in per_instance {
        let p = path(&["vrrp_instance", inst, "lvs_sync_daemon_interface"]);
        let vrid = cfg.vrrp_instance[inst].virtual_router_id.unwrap_or(0);
        let plan = SyncPlan {
            interface: ifname.clone(),
            instance: Some(inst.clone()),
            sync_id: clamp_u32(vrid),
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
        };
        if let Some((first, _)) = &found {
            notes.error(
                p,
                format!(
                    "the sync daemon is already configured at {}: one per node",
                    crate::config::display_path(first)
                ),
            );
            continue;
        }
        found = Some((p, plan));
    }
    if let Some(g) = &cfg.global.lvs_sync_daemon {
        let p = path(&["global", "lvs_sync_daemon"]);
        let at = |k: &str| {
            let mut v = p.clone();
            v.push(k.to_string());
            v
        };
        let mut ok = true;
        let mut range = |k: &str, v: Option<i64>, lo: i64, hi: i64| -> Option<i64> {
            let v = v?;
            if (lo..=hi).contains(&v) {
                Some(v)
            } else {
                notes.error(at(k), format!("must be between {lo} and {hi}, got {v}"));
                ok = false;
                None
            }
        };
        let id = range("id", g.id, 0, 255);
        let maxlen = range("maxlen", g.maxlen, 1, 65535 - 20 - 8);
        let port = range("port", g.port, 1, 65535);
        let ttl = range("ttl", g.ttl, 1, 255);
        let vrid = match &g.inst {
            Some(i) => match cfg.vrrp_instance.get(i) {
                Some(inst) => inst.virtual_router_id.unwrap_or(0),
                None => {
                    notes.error(at("inst"), format!("no vrrp_instance named {i:?}"));
                    ok = false;
                    0
                }
            },
            None => 0,
        };
        if let Some(group) = g.group
            && !group.is_multicast()
        {
            notes.error(at("group"), format!("{group} is not a multicast address"));
            ok = false;
        }
        let interface = match &g.interface {
            Some(i) => i.clone(),
            None => {
                notes.error(p.clone(), "missing key `interface`");
                ok = false;
                String::new()
            }
        };
        if let Some((first, _)) = &found {
            notes.error(
                p.clone(),
                format!(
                    "the sync daemon is already configured at {}: one per node",
                    crate::config::display_path(first)
                ),
            );
            ok = false;
        }
        if ok {
            found = Some((
                p,
                SyncPlan {
                    interface,
                    instance: g.inst.clone(),
                    sync_id: id.map_or(clamp_u32(vrid), clamp_u32),
                    maxlen: maxlen.and_then(|v| u16::try_from(v).ok()),
                    port: port.and_then(|v| u16::try_from(v).ok()),
                    ttl: ttl.and_then(|v| u8::try_from(v).ok()),
                    group: g.group,
                },
            ));
        }
    }
    let (p, plan) = found?;
    if plan.interface.is_empty() || plan.interface.len() >= IP_VS_IFNAME_MAXLEN {
        notes.error(
            p,
            format!(
                "interface name {:?} must be 1 to {} bytes",
                plan.interface,
                IP_VS_IFNAME_MAXLEN - 1
            ),
        );
        return None;
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keeper_ipvs::Netmask;

    fn plan_of(c: &Config) -> (LvsPlan, Vec<LvsNote>) {
        super::plan(c)
    }

    #[test]
    fn the_cache_replans_only_changed_virtual_servers_and_gives_the_same_plan() {
        let text = r#"
[virtual_server.a]
ip = "10.0.0.100"
port = 80
[virtual_server.a.real_server.r]
ip = "10.0.0.21"
port = 8080
[virtual_server.b]
ip = "10.0.0.101"
port = 80
[virtual_server.b.real_server.r]
ip = "10.0.0.22"
"#;
        let mut c = cfg(text);
        let mut cache = PlanCache::default();
        let first = plan_cached(&c, &mut cache);
        assert_eq!(first, plan_of(&c));
        // Unchanged: the same plans, not planned again.
        let again = plan_cached(&c, &mut cache);
        assert_eq!(again, first);
        assert!(Arc::ptr_eq(
            &again.0.virtual_servers[0],
            &first.0.virtual_servers[0]
        ));
        // `b` changed (a new Arc, as a reload makes): re-planned; `a` reused.
        let mut b = (*c.virtual_server["b"]).clone();
        b.real_server.values_mut().for_each(|r| r.weight = 7);
        c.virtual_server.insert("b".into(), Arc::new(b));
        let third = plan_cached(&c, &mut cache);
        assert_eq!(third, plan_of(&c));
        assert!(Arc::ptr_eq(
            &third.0.virtual_servers[0],
            &first.0.virtual_servers[0]
        ));
        assert_eq!(third.0.virtual_servers[1].real_servers[0].weight, 7);
        // The groups changed: everything is planned again, and still equal.
        c.virtual_server_group
            .insert("g".into(), vec!["10.0.0.1 80".to_string()]);
        let fourth = plan_cached(&c, &mut cache);
        assert_eq!(fourth, plan_of(&c));
        assert!(!Arc::ptr_eq(
            &fourth.0.virtual_servers[0],
            &first.0.virtual_servers[0]
        ));
    }

    fn cfg(text: &str) -> Config {
        toml::from_str(text).expect("test config parses")
    }

    fn errors(notes: &[LvsNote]) -> Vec<String> {
        notes
            .iter()
            .filter(|n| n.error)
            .map(|n| format!("{}: {}", crate::config::display_path(&n.path), n.message))
            .collect()
    }

    fn keys(p: &VirtualServerPlan) -> Vec<String> {
        p.services.iter().map(|s| s.key.to_string()).collect()
    }

    #[test]
    fn seed_000_dr_service_with_every_setting() {
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server.web]
            ip = "192.168.1.100"
            port = 80
            lb_algo = "sh"
            lb_kind = "DR"
            protocol = "TCP"
            "sh-port" = true
            "sh-fallback" = true
            persistence_timeout = 50
            persistence_granularity = "255.255.255.0"
            persistence_engine = "sip"
            [virtual_server.web.real_server.a]
            ip = "192.168.1.106"
            weight = 100
            uthreshold = 1000
            lthreshold = 500
            [virtual_server.web.real_server.b]
            ip = "192.168.1.107"
            port = 8080
            lb_kind = "NAT"
            inhibit_on_failure = true
            tcp_check = { connect_timeout = 3 }
        "#));
        assert!(notes.is_empty(), "{notes:?}");
        let vs = &plan.virtual_servers[0];
        assert_eq!(keys(vs), ["TCP 192.168.1.100:80"]);
        let s = &vs.services[0];
        assert_eq!(s.scheduler, Scheduler::Sh);
        assert!(s.flags.persistent && s.flags.sched1 && s.flags.sched2 && !s.flags.one_packet);
        assert_eq!(s.timeout, 50);
        assert_eq!(s.netmask, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(s.pe_name.as_deref(), Some("sip"));
        let a = &vs.real_servers[0];
        assert_eq!(
            (a.port, a.forward, a.weight),
            (Some(80), ForwardMethod::Route, 100)
        );
        assert_eq!((a.upper_threshold, a.lower_threshold), (1000, 500));
        assert!(!a.inhibit_on_failure && !a.has_checker);
        let b = &vs.real_servers[1];
        assert_eq!(
            (b.port, b.forward, b.weight),
            (Some(8080), ForwardMethod::Masq, 1)
        );
        assert!(b.inhibit_on_failure && b.has_checker);
        assert_eq!((vs.quorum, vs.hysteresis), (1, 0));
    }

    #[test]
    fn dr_and_tun_real_servers_use_the_virtual_servers_port_like_keepalived() {
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server.web]
            ip = "10.0.0.1"
            port = 80
            lb_kind = "DR"
            [virtual_server.web.real_server.a]
            ip = "10.0.0.21"
            port = 8080
            [virtual_server.web.real_server.nat]
            ip = "10.0.0.22"
            port = 8080
            lb_kind = "NAT"
        "#));
        let rs = &plan.virtual_servers[0].real_servers;
        assert_eq!((rs[0].port, rs[1].port), (Some(80), Some(8080)));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(
            notes[0].path.join("."),
            "virtual_server.web.real_server.a.port"
        );
        // Two servers that become the same destination are refused.
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server.web]
            ip = "10.0.0.1"
            port = 80
            lb_kind = "DR"
            [virtual_server.web.real_server.a]
            ip = "10.0.0.21"
            port = 8000
            [virtual_server.web.real_server.b]
            ip = "10.0.0.21"
            port = 8001
        "#));
        assert!(plan.virtual_servers.is_empty());
        assert_eq!(errors(&notes).len(), 1, "{notes:?}");
    }

    #[test]
    fn scheduler_flags_of_another_scheduler_are_ignored_with_a_warning() {
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server.web]
            ip = "10.0.0.1"
            port = 80
            lb_algo = "rr"
            "mh-port" = true
            ops = true
        "#));
        let s = &plan.virtual_servers[0].services[0];
        assert!(!s.flags.sched2, "mh-port dropped with rr");
        assert!(s.flags.one_packet);
        let warnings: Vec<_> = notes
            .iter()
            .filter(|n| !n.error)
            .map(|n| n.path.join("."))
            .collect();
        assert!(
            warnings.contains(&"virtual_server.web.mh-port".to_string()),
            "{notes:?}"
        );
        assert!(
            warnings.contains(&"virtual_server.web.ops".to_string()),
            "TCP with ops: {notes:?}"
        );
    }

    #[test]
    fn granularity_alone_means_keepalived_default_persistence() {
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server.v6]
            ip = "fd77::100"
            port = 443
            persistence_granularity = "64"
            [virtual_server.v6.real_server.a]
            ip = "fd77::21"
        "#));
        let s = &plan.virtual_servers[0].services[0];
        assert!(s.flags.persistent);
        assert_eq!(s.timeout, 360);
        assert_eq!(s.netmask, Netmask::V6(64));
        assert_eq!(notes.len(), 1, "one warning: {notes:?}");
    }

    #[test]
    fn bad_granularities_are_errors() {
        for (vip, g) in [
            ("10.0.0.1", "255.0.255.0"),
            ("10.0.0.1", "0.0.0.0"),
            ("10.0.0.1", "banana"),
            ("fd00::1", "129"),
            ("fd00::1", "255.255.255.0"),
        ] {
            let (plan, notes) = plan_of(&cfg(&format!(
                "[virtual_server.x]\nip = \"{vip}\"\nport = 1\npersistence_timeout = 5\npersistence_granularity = \"{g}\"\n"
            )));
            assert!(plan.virtual_servers.is_empty(), "{vip} {g}");
            assert_eq!(errors(&notes).len(), 1, "{vip} {g}: {notes:?}");
        }
        assert_eq!(
            granularity("/24", AddressFamily::Inet),
            Ok(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)))
        );
    }

    #[test]
    fn fwmark_family_comes_from_the_real_servers_unless_declared() {
        let (plan, _) = plan_of(&cfg(r#"
            [virtual_server.m6]
            fwmark = 6
            [virtual_server.m6.real_server.a]
            ip = "fd77::21"
            [virtual_server.m4]
            fwmark = 4
            [virtual_server.m4.real_server.a]
            ip = "10.0.0.21"
            [virtual_server.declared]
            fwmark = 9
            ip_family = "inet6"
            lb_kind = "TUN"
            [virtual_server.declared.real_server.a]
            ip = "10.0.0.21"
            [virtual_server.empty]
            fwmark = 10
        "#));
        let all: Vec<String> = plan.virtual_servers.iter().flat_map(|p| keys(p)).collect();
        assert_eq!(all, ["FWM 9 IPv6", "FWM 10", "FWM 4", "FWM 6 IPv6"]);
        // Real servers of a fwmark service listen on the packet's port: 0.
        let m4 = plan
            .virtual_servers
            .iter()
            .find(|v| v.name == "m4")
            .expect("m4");
        assert_eq!(m4.real_servers[0].destination(0, 1).port, 0);
    }

    #[test]
    fn group_members_expand_like_keepalived() {
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server_group]
            web = ["10.0.0.1 80", "10.0.0.5-7 443", "10.0.0.254-10.0.1.1 8", "10.1.0.0/30 25", "fd00::a-c 80", "fwmark 7", "fwmark 8 inet6"]
            [virtual_server.web]
            group = "web"
            [virtual_server.web.real_server.a]
            ip = "10.0.0.21"
            lb_kind = "TUN"
        "#));
        assert!(errors(&notes).is_empty(), "{notes:?}");
        let vs = &plan.virtual_servers[0];
        assert_eq!(
            keys(vs),
            [
                "TCP 10.0.0.1:80",
                "TCP 10.0.0.5:443",
                "TCP 10.0.0.6:443",
                "TCP 10.0.0.7:443",
                "TCP 10.0.0.254:8",
                "TCP 10.0.0.255:8",
                "TCP 10.0.1.0:8",
                "TCP 10.0.1.1:8",
                "TCP 10.1.0.0:25",
                "TCP 10.1.0.1:25",
                "TCP 10.1.0.2:25",
                "TCP 10.1.0.3:25",
                "TCP [fd00::a]:80",
                "TCP [fd00::b]:80",
                "TCP [fd00::c]:80",
                "FWM 7",
                "FWM 8 IPv6",
            ]
        );
        // No port on the real server: each member's own.
        assert_eq!(vs.real_servers[0].port, None);
        assert_eq!(vs.real_servers[0].destination(443, 1).port, 443);
    }

    #[test]
    fn group_errors_name_the_member() {
        for (member, expect) in [
            ("10.0.0.9-3 80", "ends before it starts"),
            ("10.0.0.1-300 80", "invalid range end"),
            ("10.0.0.0/8 80", "at most 65536"),
            ("fd00::1-zz 80", "hex"),
            ("10.0.0.1-fd00::1 80", "mixes"),
            ("fwmark 0", "invalid fwmark"),
            ("fwmark 7 inet5", "not `fwmark N"),
            ("10.0.0.1 http", "invalid port"),
            ("10.0.0.1 80 tcp", "is not `IP [PORT]`"),
        ] {
            let (plan, notes) = plan_of(&cfg(&format!(
                "[virtual_server_group]\ng = [\"10.0.0.1 81\", {member:?}]\n[virtual_server.v]\ngroup = \"g\"\n"
            )));
            assert!(plan.virtual_servers.is_empty(), "{member}");
            let e = errors(&notes);
            assert_eq!(e.len(), 1, "{member}: {e:?}");
            assert!(
                e[0].starts_with("virtual_server_group.g[1]: ") && e[0].contains(expect),
                "{member}: {e:?}"
            );
        }
        let (_, notes) = plan_of(&cfg("[virtual_server.v]\ngroup = \"nope\"\n"));
        assert_eq!(
            errors(&notes),
            ["virtual_server.v.group: no virtual_server_group named \"nope\""]
        );
    }

    #[test]
    fn a_service_claimed_twice_through_groups_is_refused() {
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server_group]
            g = ["10.0.0.1-3 80"]
            [virtual_server.a]
            group = "g"
            [virtual_server.b]
            ip = "10.0.0.2"
            port = 80
        "#));
        assert_eq!(plan.virtual_servers.len(), 1);
        assert_eq!(
            errors(&notes),
            ["virtual_server.b: virtual server \"a\" already serves TCP 10.0.0.2:80"]
        );
    }

    #[test]
    fn families_must_match_unless_tunnelled() {
        let (plan, notes) = plan_of(&cfg(r#"
            [virtual_server_group]
            g = ["10.0.0.1 80", "fd00::1 80"]
            [virtual_server.v]
            group = "g"
            sorry_server = "10.0.0.9 80"
            [virtual_server.v.real_server.a]
            ip = "10.0.0.21"
        "#));
        assert!(plan.virtual_servers.is_empty());
        let e = errors(&notes);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("10.0.0.21 is not of the family of TCP [fd00::1]:80"),
            "{e:?}"
        );
        assert!(e[1].starts_with("virtual_server.v.sorry_server"), "{e:?}");
    }

    #[test]
    fn every_port_needs_persistence() {
        let (_, notes) = plan_of(&cfg("[virtual_server.v]\nip = \"10.0.0.1\"\nport = 0\n"));
        assert_eq!(errors(&notes).len(), 1, "{notes:?}");
        let (plan, notes) = plan_of(&cfg(
            "[virtual_server.v]\nip = \"10.0.0.1\"\nport = 0\npersistence_timeout = 60\n",
        ));
        assert!(errors(&notes).is_empty());
        assert_eq!(plan.virtual_servers.len(), 1);
    }

    #[test]
    fn sorry_server_and_quorum() {
        let (plan, _) = plan_of(&cfg(r#"
            [virtual_server.v]
            ip = "10.0.0.1"
            port = 80
            lb_kind = "DR"
            sorry_server = "10.0.0.9 8080"
            sorry_server_lvs_method = "NAT"
            sorry_server_inhibit = true
            quorum = 3
            hysteresis = 1
        "#));
        let vs = &plan.virtual_servers[0];
        let sorry = vs.sorry_server.as_ref().expect("sorry server");
        assert_eq!(
            (sorry.port, sorry.forward, sorry.weight),
            (8080, ForwardMethod::Masq, 1)
        );
        assert!(vs.sorry_server_inhibit);
        assert_eq!((vs.quorum, vs.hysteresis), (3, 1));
    }

    #[test]
    fn lvs_flush_on_stop_takes_keepalived_forms() {
        use crate::config::schema::FlushOnStop;
        for (text, want) in [
            ("false", FlushOnStop::No),
            ("true", FlushOnStop::All),
            ("\"ALL\"", FlushOnStop::All),
            ("\"VS\"", FlushOnStop::Vs),
        ] {
            let c = cfg(&format!("[global]\nlvs_flush_on_stop = {text}\n"));
            assert_eq!(c.global.lvs_flush_on_stop, want, "{text}");
        }
        assert!(toml::from_str::<Config>("[global]\nlvs_flush_on_stop = \"maybe\"\n").is_err());
        assert_eq!(cfg("").global.lvs_flush_on_stop, FlushOnStop::No);
    }

    const INSTANCE: &str = r#"
        [vrrp_instance.VI_1]
        interface = "eth0"
        virtual_router_id = 51
        virtual_ipaddress = ["10.0.0.100"]
    "#;

    #[test]
    fn seed_000_sync_daemon_interface_uses_the_vrid_as_sync_id() {
        let (plan, notes) = plan_of(&cfg(&format!(
            "{INSTANCE}lvs_sync_daemon_interface = \"eth1\"\n"
        )));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            plan.sync,
            Some(SyncPlan {
                interface: "eth1".into(),
                instance: Some("VI_1".into()),
                sync_id: 51,
                maxlen: None,
                port: None,
                ttl: None,
                group: None,
            })
        );
    }

    #[test]
    fn global_sync_daemon_with_every_option() {
        let (plan, notes) = plan_of(&cfg(&format!(
            "[global]\nlvs_sync_daemon = {{ interface = \"eth0\", inst = \"VI_1\", id = 7, maxlen = 1400, port = 8849, ttl = 2, group = \"224.0.0.82\" }}\n{INSTANCE}"
        )));
        assert!(notes.is_empty(), "{notes:?}");
        let s = plan.sync.expect("sync plan");
        assert_eq!(
            (s.sync_id, s.maxlen, s.port, s.ttl),
            (7, Some(1400), Some(8849), Some(2))
        );
        assert_eq!(s.group, Some("224.0.0.82".parse().expect("addr")));
        // Without an instance: sync id 0, both daemons (see sync_daemon).
        let (plan, _) = plan_of(&cfg(
            "[global]\nlvs_sync_daemon = { interface = \"eth0\" }\n",
        ));
        let s = plan.sync.expect("sync plan");
        assert_eq!((s.instance, s.sync_id), (None, 0));
    }

    #[test]
    fn sync_daemon_errors() {
        let (plan, notes) = plan_of(&cfg(&format!(
            "[global]\nlvs_sync_daemon = {{ interface = \"eth0\", inst = \"VI_9\", id = 300, group = \"10.0.0.1\" }}\n{INSTANCE}"
        )));
        assert!(plan.sync.is_none());
        let e = errors(&notes);
        assert_eq!(e.len(), 3, "{e:?}");
        let (plan, notes) = plan_of(&cfg(&format!(
            "[global]\nlvs_sync_daemon = {{ interface = \"eth0\" }}\n{INSTANCE}lvs_sync_daemon_interface = \"eth0\"\n"
        )));
        assert_eq!(
            plan.sync.map(|s| s.instance),
            Some(Some("VI_1".to_string()))
        );
        assert_eq!(errors(&notes).len(), 1, "set twice: {notes:?}");
        let (plan, notes) = plan_of(&cfg(&format!(
            "{INSTANCE}lvs_sync_daemon_interface = \"an-interface-name-too-long\"\n"
        )));
        assert!(plan.sync.is_none());
        assert_eq!(errors(&notes).len(), 1, "{notes:?}");
    }
}
