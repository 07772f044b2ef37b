//! rtnetlink: interface facts (index, MAC, up/down, addresses), link events, and the virtual
//! addresses themselves, added when an instance becomes MASTER and removed when it leaves, with
//! keepalived's `dev` / `label` / `scope` / `brd` options. IPv6 VIPs are added with
//! `IFA_F_NODAD` so they are usable at once (no duplicate-address detection after a takeover).

use std::net::IpAddr;

use futures_util::{StreamExt, TryStreamExt};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use tokio::sync::mpsc;

use crate::config::syntax::VipSpec;

#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("no interface named {0:?}")]
    NoInterface(String),
    #[error("{op} {addr} on interface index {ifindex}: {source}")]
    Netlink {
        op: &'static str,
        addr: IpAddr,
        ifindex: u32,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("interface lookup {name:?}: {source}")]
    Lookup {
        name: String,
        #[source]
        source: rtnetlink::Error,
    },
}

/// What the drivers need to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub index: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    /// Administratively up and with carrier.
    pub up: bool,
}

fn link_facts(msg: &LinkMessage) -> LinkFacts {
    let mut facts = LinkFacts {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up)
            && msg.header.flags.contains(LinkFlags::Running),
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => facts.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(a);
                facts.mac = Some(mac);
            }
            _ => {}
        }
    }
    facts
}

/// One configured address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub label: Option<String>,
}

/// A handle to one rtnetlink connection. Cheap to clone.
#[derive(Clone)]
pub struct Rtnl {
    handle: rtnetlink::Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Rtnl {
    /// The rtnetlink handle, for requests this module does not wrap.
    pub(crate) fn handle(&self) -> &rtnetlink::Handle {
        &self.handle
    }

    /// Opens the netlink connection; its task runs on the current tokio runtime.
    pub fn open() -> Result<Rtnl, RtnlError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Rtnl { handle })
    }

    /// Facts about interface `name`.
    pub async fn link(&self, name: &str) -> Result<LinkFacts, RtnlError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link_facts(&link)),
            Ok(None) => Err(RtnlError::NoInterface(name.to_string())),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                Err(RtnlError::NoInterface(name.to_string()))
            }
            Err(e) => Err(RtnlError::Lookup {
                name: name.to_string(),
                source: e,
            }),
        }
    }

    fn message(ifindex: u32, vip: &VipSpec) -> AddressMessage {
        let mut req = AddressMessage::default();
        req.header.index = ifindex;
        req.header.prefix_len = vip.prefix_len;
        req.header.family = match vip.addr {
            IpAddr::V4(_) => netlink_packet_route::AddressFamily::Inet,
            IpAddr::V6(_) => netlink_packet_route::AddressFamily::Inet6,
        };
        req.header.scope = AddressScope::from(vip.scope.map_or(0, |s| s.value()));
        req.attributes.push(AddressAttribute::Local(vip.addr));
        req.attributes.push(AddressAttribute::Address(vip.addr));
        if let IpAddr::V4(a) = vip.addr {
            let brd = match vip.brd {
                Some(IpAddr::V4(b)) => Some(b),
                _ if vip.prefix_len < 31 => {
                    Some((u32::from(a) | (u32::MAX >> vip.prefix_len)).into())
                }
                _ => None,
            };
            if let Some(b) = brd {
                req.attributes.push(AddressAttribute::Broadcast(b));
            }
            if let Some(label) = &vip.label {
                req.attributes.push(AddressAttribute::Label(label.clone()));
            }
        }
        let mut flags = AddressFlags::empty();
        if vip.addr.is_ipv6() {
            flags |= AddressFlags::Nodad;
        }
        if vip.no_prefix_route {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            req.attributes.push(AddressAttribute::Flags(flags));
        }
        req
    }

    /// Adds `vip` to `ifindex`; an address already there is success.
    pub async fn add(&self, ifindex: u32, vip: &VipSpec) -> Result<(), RtnlError> {
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix_len);
        *req.message_mut() = Self::message(ifindex, vip);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(RtnlError::Netlink {
                op: "adding",
                addr: vip.addr,
                ifindex,
                source: e,
            }),
        }
    }

    /// Removes `vip` from `ifindex`; an address already gone is success.
    pub async fn remove(&self, ifindex: u32, vip: &VipSpec) -> Result<(), RtnlError> {
        let req = self.handle.address().del(Self::message(ifindex, vip));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV)) => Ok(()),
            Err(e) => Err(RtnlError::Netlink {
                op: "removing",
                addr: vip.addr,
                ifindex,
                source: e,
            }),
        }
    }

    /// The addresses configured on `ifindex`.
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IfAddr>, RtnlError> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
        let mut out = Vec::new();
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => {
                    let mut addr = None;
                    let mut label = None;
                    for a in &msg.attributes {
                        match a {
                            // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on p2p links.
                            AddressAttribute::Local(ip) => addr = Some(ip),
                            AddressAttribute::Address(ip) if addr.is_none() => addr = Some(ip),
                            AddressAttribute::Label(l) => label = Some(l.clone()),
                            _ => {}
                        }
                    }
                    if let Some(addr) = addr {
                        out.push(IfAddr {
                            addr: *addr,
                            prefix_len: msg.header.prefix_len,
                            label,
                        });
                    }
                }
                Ok(None) => return Ok(out),
                Err(e) => {
                    return Err(RtnlError::Lookup {
                        name: format!("addresses of interface {ifindex}"),
                        source: e,
                    });
                }
            }
        }
    }

    /// Whether `addr` is configured on `ifindex`.
    pub async fn present(&self, ifindex: u32, addr: IpAddr) -> Result<bool, RtnlError> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .set_address_filter(addr)
            .execute();
        match stream.try_next().await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(RtnlError::Netlink {
                op: "listing",
                addr,
                ifindex,
                source: e,
            }),
        }
    }
}

/// Link up/down events: `(ifindex, facts)` for every change the kernel reports. The returned
/// receiver ends if the netlink socket fails.
pub fn link_events() -> Result<mpsc::UnboundedReceiver<LinkFacts>, RtnlError> {
    use rtnetlink::MulticastGroup;
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ];
    let (conn, handle, mut messages) = rtnetlink::new_multicast_connection(&groups)?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let facts = match msg.payload {
                netlink_packet_core::NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewLink(link),
                ) => Some(link_facts(&link)),
                // An address change is reported as the facts of its interface: an instance
                // waiting for its interface may be waiting for its address.
                netlink_packet_core::NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewAddress(addr),
                ) => {
                    let mut links = handle.link().get().match_index(addr.header.index).execute();
                    match links.try_next().await {
                        Ok(Some(link)) => Some(link_facts(&link)),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(f) = facts
                && tx.send(f).is_err()
            {
                return;
            }
        }
    });
    Ok(rx)
}

/// A route as the driver adds it: the configuration's [`RouteSpec`] with `dev` resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedRoute {
    pub spec: crate::config::syntax::RouteSpec,
    pub oif: Option<u32>,
}

fn route_message(r: &PlacedRoute) -> Result<netlink_packet_route::route::RouteMessage, String> {
    use crate::config::syntax::RouteKind;
    use netlink_packet_route::route::{RouteProtocol, RouteScope, RouteType};
    use rtnetlink::RouteMessageBuilder;
    let s = &r.spec;
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(s.dest, s.prefix_len)
        .map_err(|e| format!("{e:?}"))?;
    if let Some(via) = s.via {
        b = b.gateway(via).map_err(|e| format!("{e:?}"))?;
    }
    if let Some(src) = s.src {
        b = b.pref_source(src).map_err(|e| format!("{e:?}"))?;
    }
    let mut b = b.kind(match s.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
        RouteKind::Throw => RouteType::Throw,
    });
    if let Some(oif) = r.oif {
        b = b.output_interface(oif);
    }
    if let Some(t) = s.table {
        b = b.table_id(t);
    }
    if let Some(m) = s.metric {
        b = b.priority(m);
    }
    if let Some(p) = s.proto {
        b = b.protocol(RouteProtocol::from(p));
    }
    // Without a gateway a unicast route is on-link: link scope, as `ip route` chooses.
    let scope = match (s.scope, s.kind, s.via) {
        (Some(sc), _, _) => RouteScope::from(sc.value()),
        (None, RouteKind::Unicast, None) => RouteScope::Link,
        _ => RouteScope::Universe,
    };
    b = b.scope(scope);
    if s.onlink {
        b = b.onlink();
    }
    Ok(b.build())
}

fn rule_message(r: &crate::config::syntax::RuleSpec) -> netlink_packet_route::rule::RuleMessage {
    use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
    let mut m = RuleMessage::default();
    m.header.family = if r.v6 {
        netlink_packet_route::AddressFamily::Inet6
    } else {
        netlink_packet_route::AddressFamily::Inet
    };
    m.header.action = RuleAction::ToTable;
    m.header.table = u8::try_from(r.table).unwrap_or(252); // RT_TABLE_COMPAT: see the attribute
    m.attributes.push(RuleAttribute::Table(r.table));
    if let Some((a, p)) = r.from {
        m.header.src_len = p;
        m.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, p)) = r.to {
        m.header.dst_len = p;
        m.attributes.push(RuleAttribute::Destination(a));
    }
    if let Some(t) = r.tos {
        m.header.tos = t;
    }
    if let Some(i) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some((mark, mask)) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark));
        if let Some(mask) = mask {
            m.attributes.push(RuleAttribute::FwMask(mask));
        }
    }
    if let Some(p) = r.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    m
}

impl Rtnl {
    /// Adds a virtual route; one already there is success.
    pub async fn add_route(&self, r: &PlacedRoute) -> Result<(), String> {
        let msg = route_message(r)?;
        match self.handle.route().add(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(format!(
                "adding route {}/{}: {e}",
                r.spec.dest, r.spec.prefix_len
            )),
        }
    }

    /// Removes a virtual route; one already gone is success.
    pub async fn remove_route(&self, r: &PlacedRoute) -> Result<(), String> {
        let msg = route_message(r)?;
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ESRCH) | Some(libc::ENODEV)) => Ok(()),
            Err(e) => Err(format!(
                "removing route {}/{}: {e}",
                r.spec.dest, r.spec.prefix_len
            )),
        }
    }

    /// Adds a virtual rule; one already there is success.
    pub async fn add_rule(&self, r: &crate::config::syntax::RuleSpec) -> Result<(), String> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = rule_message(r);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(format!("adding rule to table {}: {e}", r.table)),
        }
    }

    /// Removes a virtual rule; one already gone is success.
    pub async fn remove_rule(&self, r: &crate::config::syntax::RuleSpec) -> Result<(), String> {
        match self.handle.rule().del(rule_message(r)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ENOENT) | Some(libc::ESRCH)) => Ok(()),
            Err(e) => Err(format!("removing rule to table {}: {e}", r.table)),
        }
    }
}
