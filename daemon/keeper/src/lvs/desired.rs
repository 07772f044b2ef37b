//! The desired IPVS table: the plans of the configuration combined with the health of each
//! real server, with keepalived's semantics:
//! - a real server that is up is in its services with its weight (or the checker's dynamic
//!   weight); one that is down is removed, or kept with weight 0 under `inhibit_on_failure`;
//! - a virtual server has quorum while the weights of its live real servers add up to
//!   `quorum` (default 1: "some real server is up"), with `hysteresis` around it; while the
//!   quorum is lost and a sorry server is configured, the sorry server (weight 1) replaces the
//!   live real servers; otherwise it is absent, or at weight 0 with `sorry_server_inhibit`.
//!
//! Pure: the quorum states are carried by the caller from one call to the next.

use std::collections::BTreeMap;

use keeper_ipvs::{ServiceKey, Table, VirtualService};

use super::health::{HealthMap, RealServerHealth, RealServerId};
use super::plan::{LvsPlan, RealServerPlan, VirtualServerPlan};

/// The table to program, and where each of its services comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub table: Table,
    /// The `virtual_server` each service belongs to (for messages).
    pub origin: BTreeMap<ServiceKey, String>,
}

/// A virtual server gained or lost its quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumChange {
    pub virtual_server: String,
    pub up: bool,
    /// The sum of the weights of its live real servers.
    pub weight: u64,
    pub sorry_server: bool,
}

/// The health of a real server: its verdict, else up (down with `alpha` when a checker will
/// decide).
pub fn health_of(
    vs: &VirtualServerPlan,
    rs: &RealServerPlan,
    health: &HealthMap,
) -> RealServerHealth {
    let id = RealServerId::new(vs.name.clone(), rs.name.clone());
    match health.get(&id) {
        Some(h) => *h,
        None if vs.alpha && rs.has_checker => RealServerHealth::DOWN,
        None => RealServerHealth::UP,
    }
}

/// Builds the desired table. `quorum` holds each virtual server's quorum state from the
/// previous call (absent at start) and is updated; the changes are returned for the log.
pub fn build(
    plan: &LvsPlan,
    health: &HealthMap,
    quorum: &mut BTreeMap<String, bool>,
) -> (Desired, Vec<QuorumChange>) {
    let mut desired = Desired::default();
    let mut changes = Vec::new();
    quorum.retain(|name, _| plan.virtual_servers.iter().any(|v| &v.name == name));
    for vs in &plan.virtual_servers {
        let live: Vec<(&RealServerPlan, Option<u32>)> = vs
            .real_servers
            .iter()
            .map(|rs| {
                let h = health_of(vs, rs, health);
                (rs, h.up.then(|| h.weight.unwrap_or(rs.weight)))
            })
            .collect();
        let weight: u64 = live.iter().filter_map(|(_, w)| w.map(u64::from)).sum();
        let (q, hy) = (i64::from(vs.quorum), i64::from(vs.hysteresis));
        let w = weight as i64;
        let previous = quorum.get(&vs.name).copied();
        let up = match previous {
            Some(true) => w > 0 && w >= q - hy,
            Some(false) | None => w >= q + hy,
        };
        quorum.insert(vs.name.clone(), up);
        // At start only a lost quorum is news.
        if previous.map_or(!up, |p| p != up) {
            changes.push(QuorumChange {
                virtual_server: vs.name.clone(),
                up,
                weight,
                sorry_server: vs.sorry_server.is_some(),
            });
        }
        let sorry_in_use = !up && vs.sorry_server.is_some();
        for template in &vs.services {
            let port = match template.key {
                ServiceKey::Addr { port, .. } => port,
                ServiceKey::Fwmark { .. } => 0,
            };
            let mut service = VirtualService::new(template.clone());
            for (rs, live_weight) in &live {
                let weight = match live_weight {
                    Some(w) if !sorry_in_use => Some(*w),
                    _ if rs.inhibit_on_failure => Some(0),
                    _ => None,
                };
                if let Some(w) = weight {
                    let d = rs.destination(port, w);
                    service.destinations.insert(d.key(), d);
                }
            }
            if let Some(sorry) = &vs.sorry_server {
                let key = sorry.key();
                if sorry_in_use {
                    service.destinations.insert(key, sorry.clone());
                } else if vs.sorry_server_inhibit && !service.destinations.contains_key(&key) {
                    let mut idle = sorry.clone();
                    idle.weight = 0;
                    service.destinations.insert(key, idle);
                }
            }
            desired.origin.insert(service.service.key, vs.name.clone());
            desired.table.insert(service);
        }
    }
    (desired, changes)
}
