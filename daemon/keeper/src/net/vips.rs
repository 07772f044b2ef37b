//! Virtual addresses on interfaces, through rtnetlink: added when an instance becomes MASTER,
//! removed when it leaves, with keepalived's `dev` / `label` / `scope` / `brd` options. IPv6
//! addresses are added with `IFA_F_NODAD` so they are usable at once (no duplicate-address
//! detection delay after a takeover).

use std::net::IpAddr;

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};

use crate::config::syntax::VipSpec;

#[derive(Debug, thiserror::Error)]
pub enum VipError {
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

/// Adds and removes virtual addresses. Cheap to clone (a handle to one netlink connection).
#[derive(Clone)]
pub struct Vips {
    handle: rtnetlink::Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Vips {
    /// Opens the netlink connection; its task runs on the current tokio runtime.
    pub fn open() -> Result<Vips, VipError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Vips { handle })
    }

    /// The index of interface `name`.
    pub async fn ifindex(&self, name: &str) -> Result<u32, VipError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(VipError::NoInterface(name.to_string())),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                Err(VipError::NoInterface(name.to_string()))
            }
            Err(e) => Err(VipError::Lookup {
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
    pub async fn add(&self, ifindex: u32, vip: &VipSpec) -> Result<(), VipError> {
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix_len);
        *req.message_mut() = Self::message(ifindex, vip);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(VipError::Netlink {
                op: "adding",
                addr: vip.addr,
                ifindex,
                source: e,
            }),
        }
    }

    /// Removes `vip` from `ifindex`; an address already gone is success.
    pub async fn remove(&self, ifindex: u32, vip: &VipSpec) -> Result<(), VipError> {
        let req = self.handle.address().del(Self::message(ifindex, vip));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV)) => Ok(()),
            Err(e) => Err(VipError::Netlink {
                op: "removing",
                addr: vip.addr,
                ifindex,
                source: e,
            }),
        }
    }

    /// Whether `addr` is configured on `ifindex`.
    pub async fn present(&self, ifindex: u32, addr: IpAddr) -> Result<bool, VipError> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .set_address_filter(addr)
            .execute();
        match stream.try_next().await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(VipError::Netlink {
                op: "listing",
                addr,
                ifindex,
                source: e,
            }),
        }
    }
}
