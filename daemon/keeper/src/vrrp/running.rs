//! One running instance and how it is resolved against the system: the interface, the source
//! address, the owner check, the VMAC, and where each VIP and route lives.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::SystemTime;

use keeper_vrrp::tracking::{TrackerId, TrackerKind, Tracking};
use keeper_vrrp::{Family, Instance, InstanceConfig, Transition};

use super::plan::{InstancePlan, TrackerPlan};
use crate::config::syntax::VipSpec;
use crate::net::rtnl::{IfAddr, LinkFacts, PlacedRoute, Rtnl};
use crate::net::vmac;
use crate::net::vrrp_socket::VrrpSocket;

/// A VIP and where it lives.
#[derive(Clone, Debug)]
pub(super) struct PlacedVip {
    pub spec: VipSpec,
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// Source of unsolicited NAs: the link-local address of the VIP's interface.
    pub link_local: Option<Ipv6Addr>,
}

pub(super) struct Running {
    pub plan: InstancePlan,
    pub ifindex: u32,
    pub link_up: bool,
    /// The source address adverts carry.
    pub source: IpAddr,
    /// The VMAC carrying the VIPs (`use_vmac`): its index and name.
    pub vmac: Option<(u32, String)>,
    /// Where adverts leave when not the shared socket of the interface (the VMAC).
    pub sender: Option<Arc<VrrpSocket>>,
    /// Advertised VIPs followed by the excluded ones.
    pub vips: Vec<PlacedVip>,
    pub routes: Vec<PlacedRoute>,
    pub core: Instance,
    /// Tracked objects and their trackers in `tracking`.
    pub tracking: Tracking,
    pub trackers: Vec<(TrackerPlan, TrackerId)>,
    /// Index of the instance's sync group in the driver.
    pub group: Option<usize>,
    pub last_transition: Option<(SystemTime, Transition)>,
}

fn ll_of(addrs: &[IfAddr]) -> Option<Ipv6Addr> {
    addrs.iter().find_map(|a| match a.addr {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
        _ => None,
    })
}

/// What resolving an instance needs to know about its interface.
pub(super) struct Resolved {
    pub link: LinkFacts,
    pub source: IpAddr,
    pub core: InstanceConfig,
    pub vmac: Option<(u32, String)>,
    pub vips: Vec<PlacedVip>,
    pub routes: Vec<PlacedRoute>,
}

/// Resolves `plan` against the system: everything but the running state.
pub(super) async fn resolve(rtnl: &Rtnl, plan: &InstancePlan) -> Result<Resolved, String> {
    let link = rtnl
        .link(&plan.interface)
        .await
        .map_err(|e| e.to_string())?;
    let mac = link
        .mac
        .ok_or_else(|| format!("interface {} has no Ethernet address", plan.interface))?;
    let addrs = rtnl
        .addresses(link.index)
        .await
        .map_err(|e| e.to_string())?;
    let family = plan.family();
    let vip_addrs: Vec<IpAddr> = plan.vips.iter().map(|v| v.addr).collect();
    let source = match plan.source {
        Some(s) => s,
        None => addrs
            .iter()
            .map(|a| a.addr)
            .find(|a| match (family, a) {
                (Family::Ipv4, IpAddr::V4(_)) => !vip_addrs.contains(a),
                (Family::Ipv6, IpAddr::V6(v6)) => v6.is_unicast_link_local(),
                _ => false,
            })
            .ok_or_else(|| {
                format!(
                    "interface {} has no {} to send adverts from (set mcast_src_ip or unicast_src_ip)",
                    plan.interface,
                    if family == Family::Ipv6 { "IPv6 link-local address" } else { "IPv4 address" }
                )
            })?,
    };
    let mut core = plan.with_source(source);
    if core.priority == keeper_vrrp::PRIORITY_OWNER {
        let owned = vip_addrs.iter().all(|v| addrs.iter().any(|a| a.addr == *v));
        if !owned {
            tracing::warn!(
                instance = %plan.name,
                "priority 255 is for the owner of the virtual addresses, which are not configured on {}: running at 254",
                plan.interface
            );
            core.priority = 254;
        }
    }
    // use_vmac: the VIPs live on a macvlan with the virtual router MAC.
    let vmac = match &plan.vmac {
        Some(name) => {
            let index = rtnl
                .ensure_vmac(name, link.index, vmac::virtual_mac(plan.core.vrid, false))
                .await?;
            Some((index, name.clone()))
        }
        None => None,
    };
    let mut cache: HashMap<String, (u32, [u8; 6], Option<Ipv6Addr>)> = HashMap::new();
    cache.insert(plan.interface.clone(), (link.index, mac, ll_of(&addrs)));
    if let Some((index, name)) = &vmac {
        cache.insert(
            name.clone(),
            (*index, vmac::virtual_mac(plan.core.vrid, false), None),
        );
    }
    let mut vips = Vec::new();
    for spec in plan.vips.iter().chain(plan.excluded.iter()) {
        // With a VMAC, addresses "on the interface" go on the VMAC, as in keepalived.
        let default_dev = vmac.as_ref().map_or(&plan.interface, |(_, name)| name);
        let dev = match &spec.dev {
            Some(d) if *d != plan.interface => d.clone(),
            _ => default_dev.clone(),
        };
        let (ifindex, mac, link_local) = match cache.get(&dev) {
            Some(v) => *v,
            None => {
                let l = rtnl
                    .link(&dev)
                    .await
                    .map_err(|e| format!("virtual address {}: {e}", spec.addr))?;
                let m = l
                    .mac
                    .ok_or_else(|| format!("interface {dev} has no Ethernet address"))?;
                let ll = ll_of(&rtnl.addresses(l.index).await.map_err(|e| e.to_string())?);
                cache.insert(dev.clone(), (l.index, m, ll));
                (l.index, m, ll)
            }
        };
        vips.push(PlacedVip {
            spec: spec.clone(),
            ifindex,
            mac,
            link_local,
        });
    }
    let mut routes = Vec::new();
    for spec in &plan.routes {
        let oif = match &spec.dev {
            Some(dev) => Some(match cache.get(dev) {
                Some(v) => v.0,
                None => {
                    rtnl.link(dev)
                        .await
                        .map_err(|e| format!("virtual route via {dev}: {e}"))?
                        .index
                }
            }),
            None => None,
        };
        routes.push(PlacedRoute {
            spec: spec.clone(),
            oif,
        });
    }
    Ok(Resolved {
        link,
        source,
        core,
        vmac,
        vips,
        routes,
    })
}

/// The instance's trackers, with the current state of its tracked interfaces.
pub(super) async fn tracking(
    rtnl: &Rtnl,
    base: u8,
    plan: &InstancePlan,
) -> (Tracking, Vec<(TrackerPlan, TrackerId)>) {
    let mut tracking = Tracking::new(base);
    let mut trackers = Vec::new();
    for t in &plan.trackers {
        let id = tracking.add(t.kind, t.weight);
        if t.kind == TrackerKind::Interface {
            // An interface that does not exist is down.
            let up = rtnl.link(&t.object).await.is_ok_and(|l| l.up);
            tracking.set_up(id, up);
        }
        trackers.push((t.clone(), id));
    }
    (tracking, trackers)
}
