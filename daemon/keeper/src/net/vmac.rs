//! VRRP virtual MAC interfaces (`use_vmac`): a macvlan in private mode on the instance's
//! interface, with the RFC's virtual router MAC 00:00:5e:00:01:VRID, that carries the VIPs so the
//! LAN's ARP caches never change on failover. Like keepalived, the kernel parameters that make it
//! work are set through rtnetlink (IFLA_AF_SPEC / IFLA_INET_CONF, which needs only
//! CAP_NET_ADMIN, unlike /proc/sys) and the base interface's are restored when keeperd stops:
//! - on the VMAC: arp_ignore=1 (answer only for its own addresses), accept_local=1 (hear the
//!   adverts of a peer), rp_filter=0 (receive while it has no address), promote_secondaries=1;
//! - on the base: arp_ignore=1, arp_filter=1 (never answer for the VIPs with the base's MAC),
//!   and, unlike keepalived, arp_announce=2: traffic from a VIP in the base's subnet leaves
//!   through the base (its prefix route comes first), and without it the base would ask ARP
//!   questions with the VIP as sender, teaching the LAN the base's MAC for the VIP (measured in
//!   the namespace test).

use std::net::IpAddr;

use futures_util::TryStreamExt;
use netlink_packet_route::link::{
    AfSpecInet, AfSpecUnspec, InetDevConf, LinkAttribute, MacVlanMode,
};
use rtnetlink::{LinkMacVlan, LinkUnspec};

use super::rtnl::Rtnl;

// linux/ip.h IPV4_DEVCONF_* (1-based indices of the devconf array).
const DEVCONF_RP_FILTER: u16 = 8;
const DEVCONF_ARPFILTER: u16 = 13;
const DEVCONF_ARP_ANNOUNCE: u16 = 18;
const DEVCONF_ARP_IGNORE: u16 = 19;
const DEVCONF_PROMOTE_SECONDARIES: u16 = 20;
const DEVCONF_ACCEPT_LOCAL: u16 = 23;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_INET_CONF: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

/// The RFC 5798 virtual router MAC.
pub fn virtual_mac(vrid: u8, v6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if v6 { 0x02 } else { 0x01 }, vrid]
}

/// keepalived's default VMAC name.
pub fn default_name(vrid: u8, v6: bool) -> String {
    if v6 {
        format!("vrrp6.{vrid}")
    } else {
        format!("vrrp.{vrid}")
    }
}

fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut out = Vec::with_capacity((len + 3) & !3);
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize((len + 3) & !3, 0);
    out
}

/// IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { (index, value)... } } }, values set one by one
/// (netlink-packet-route's request form skips zero values, and rp_filter=0 is one we need).
fn devconf_attribute(values: &[(u16, u32)]) -> LinkAttribute {
    let conf: Vec<u8> = values
        .iter()
        .flat_map(|&(k, v)| nla(k, &v.to_ne_bytes()))
        .collect();
    let inet = nla(IFLA_INET_CONF | NLA_F_NESTED, &conf);
    let af = nla(libc::AF_INET as u16 | NLA_F_NESTED, &inet);
    LinkAttribute::Other(netlink_packet_core::DefaultNla::new(
        IFLA_AF_SPEC | NLA_F_NESTED,
        af,
    ))
}

/// The base interface's settings before keeperd changed them, to restore at stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedDevConf {
    pub ifindex: u32,
    pub arp_ignore: u32,
    pub arp_filter: u32,
    pub arp_announce: u32,
}

impl Rtnl {
    async fn devconf(&self, ifindex: u32) -> Result<Option<InetDevConf>, String> {
        let mut links = self.handle().link().get().match_index(ifindex).execute();
        let link = links
            .try_next()
            .await
            .map_err(|e| format!("reading interface {ifindex}: {e}"))?;
        Ok(link.and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::AfSpecUnspec(specs) => specs.into_iter().find_map(|s| match s {
                    AfSpecUnspec::Inet(inet) => inet.into_iter().find_map(|i| match i {
                        AfSpecInet::DevConf(c) => Some(c),
                        _ => None,
                    }),
                    _ => None,
                }),
                _ => None,
            })
        }))
    }

    async fn set_devconf(&self, ifindex: u32, values: &[(u16, u32)]) -> Result<(), String> {
        let msg = LinkUnspec::new_with_index(ifindex)
            .append_extra_attribute(devconf_attribute(values))
            .build();
        self.handle()
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| format!("setting IPv4 parameters of interface {ifindex}: {e}"))
    }

    /// Creates (or adopts, if one with that name, MAC and base exists) the VMAC `name` on
    /// `base`, sets its parameters and brings it up. Returns its index.
    pub async fn ensure_vmac(&self, name: &str, base: u32, mac: [u8; 6]) -> Result<u32, String> {
        if let Ok(existing) = self.link(name).await {
            if existing.mac == Some(mac) {
                self.configure_vmac(existing.index).await?;
                return Ok(existing.index);
            }
            return Err(format!(
                "interface {name} exists with another MAC; remove it or set use_vmac to another name"
            ));
        }
        let msg = LinkMacVlan::new(name, base, MacVlanMode::Private)
            .address(mac.to_vec())
            .build();
        self.handle()
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| format!("creating VMAC {name}: {e}"))?;
        let index = self.link(name).await.map_err(|e| e.to_string())?.index;
        self.configure_vmac(index).await?;
        Ok(index)
    }

    async fn configure_vmac(&self, index: u32) -> Result<(), String> {
        self.set_devconf(
            index,
            &[
                (DEVCONF_ARP_IGNORE, 1),
                (DEVCONF_ACCEPT_LOCAL, 1),
                (DEVCONF_RP_FILTER, 0),
                (DEVCONF_PROMOTE_SECONDARIES, 1),
            ],
        )
        .await?;
        let up = LinkUnspec::new_with_index(index).up().build();
        self.handle()
            .link()
            .set(up)
            .execute()
            .await
            .map_err(|e| format!("bringing VMAC up: {e}"))
    }

    /// Sets arp_ignore=1 and arp_filter=1 on the base interface; returns what to restore.
    pub async fn protect_base(&self, base: u32) -> Result<SavedDevConf, String> {
        let old = self
            .devconf(base)
            .await?
            .ok_or_else(|| format!("interface {base} has no IPv4 parameters"))?;
        let saved = SavedDevConf {
            ifindex: base,
            arp_ignore: u32::try_from(old.arp_ignore).unwrap_or(0),
            arp_filter: u32::try_from(old.arpfilter).unwrap_or(0),
            arp_announce: u32::try_from(old.arp_announce).unwrap_or(0),
        };
        let announce = saved.arp_announce.max(2);
        let values = [
            (DEVCONF_ARP_IGNORE, 1),
            (DEVCONF_ARPFILTER, 1),
            (DEVCONF_ARP_ANNOUNCE, announce),
        ];
        self.set_devconf(base, &values).await?;
        Ok(saved)
    }

    pub async fn restore_base(&self, saved: &SavedDevConf) -> Result<(), String> {
        let values = [
            (DEVCONF_ARP_IGNORE, saved.arp_ignore),
            (DEVCONF_ARPFILTER, saved.arp_filter),
            (DEVCONF_ARP_ANNOUNCE, saved.arp_announce),
        ];
        self.set_devconf(saved.ifindex, &values).await
    }

    pub async fn delete_link(&self, index: u32) -> Result<(), String> {
        self.handle()
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| format!("deleting interface {index}: {e}"))
    }

    /// The IPv4 settings that matter for a VMAC, for tests and status.
    pub async fn arp_settings(&self, ifindex: u32) -> Result<(i32, i32, i32), String> {
        let c = self.devconf(ifindex).await?.ok_or("no IPv4 parameters")?;
        Ok((c.arp_ignore, c.arpfilter, c.rp_filter))
    }
}

/// Whether `addr` is usable as an IPv4 VMAC instance (IPv6 VMACs are not implemented).
pub fn supported(addr: IpAddr) -> bool {
    addr.is_ipv4()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_names() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(5, true), [0, 0, 0x5e, 0, 2, 5]);
        assert_eq!(default_name(51, false), "vrrp.51");
    }

    #[test]
    fn devconf_attribute_bytes() {
        use netlink_packet_core::Emitable;
        let attr = devconf_attribute(&[(DEVCONF_ARP_IGNORE, 1), (DEVCONF_RP_FILTER, 0)]);
        let mut buf = vec![0u8; attr.buffer_len()];
        attr.emit(&mut buf);
        // AF_SPEC(4) { AF_INET(4) { INET_CONF(4) { 19: 1, 8: 0 } } }
        let expected: Vec<u8> = [
            &28u16.to_ne_bytes()[..],
            &(26u16 | 0x8000).to_ne_bytes(),
            &24u16.to_ne_bytes(),
            &(2u16 | 0x8000).to_ne_bytes(),
            &20u16.to_ne_bytes(),
            &(1u16 | 0x8000).to_ne_bytes(),
            &8u16.to_ne_bytes(),
            &19u16.to_ne_bytes(),
            &1u32.to_ne_bytes(),
            &8u16.to_ne_bytes(),
            &8u16.to_ne_bytes(),
            &0u32.to_ne_bytes(),
        ]
        .concat();
        assert_eq!(buf, expected);
    }
}
