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

/// The verdicts on one virtual server's real servers, by real server name (sorted: the map is
/// ordered by virtual server, then real server). One range read per virtual server instead of
/// a key built per real server: this runs for 10,000 real servers on every change.
fn verdicts<'a>(vs: &VirtualServerPlan, health: &'a HealthMap) -> Vec<(&'a str, RealServerHealth)> {
    if health.is_empty() {
        return Vec::new();
    }
    health
        .range(RealServerId::new(vs.name.clone(), String::new())..)
        .take_while(|(id, _)| id.virtual_server == vs.name)
        .map(|(id, h)| (id.real_server.as_str(), *h))
        .collect()
}

/// The health of a real server: its verdict, else up (down when a checker with `alpha` will
/// decide, as the checkers start it).
fn health_of(rs: &RealServerPlan, verdicts: &[(&str, RealServerHealth)]) -> RealServerHealth {
    match verdicts.binary_search_by(|(name, _)| (*name).cmp(rs.name.as_str())) {
        Ok(i) => verdicts[i].1,
        Err(_) if rs.starts_down => RealServerHealth::DOWN,
        Err(_) => RealServerHealth::UP,
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
    // (A set: searching the plan per entry was 1,000 x 1,000 comparisons per change.)
    let names: std::collections::HashSet<&str> = plan
        .virtual_servers
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    quorum.retain(|name, _| names.contains(name.as_str()));
    drop(names);
    for vs in &plan.virtual_servers {
        let verdicts = verdicts(vs, health);
        let live: Vec<(&RealServerPlan, Option<u32>)> = vs
            .real_servers
            .iter()
            .map(|rs| {
                let h = health_of(rs, &verdicts);
                (rs, h.up.then(|| h.weight.unwrap_or(rs.weight)))
            })
            .collect();
        let weight: u64 = live.iter().filter_map(|(_, w)| w.map(u64::from)).sum();
        let previous = quorum.get(&vs.name).copied();
        // The one quorum rule, shared with the checker's view (`keeperctl status`).
        let up = crate::check::quorum::has_quorum(
            previous,
            weight,
            u64::from(vs.quorum),
            u64::from(vs.hysteresis),
        );
        match quorum.get_mut(&vs.name) {
            Some(q) => *q = up,
            None => {
                quorum.insert(vs.name.clone(), up);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Config;
    use keeper_ipvs::reconcile::{self, Op, OwnershipPolicy};
    use keeper_ipvs::{DestKey, ForwardMethod};

    fn plan_of(text: &str) -> LvsPlan {
        let cfg: Config = toml::from_str(text).expect("test config parses");
        let (plan, notes) = super::super::plan::plan(&cfg);
        assert!(notes.iter().all(|n| !n.error), "{notes:?}");
        plan
    }

    const WEB: &str = r#"
        [virtual_server.web]
        ip = "10.77.0.100"
        port = 80
        lb_algo = "wrr"
        lb_kind = "DR"
        [virtual_server.web.real_server.rs1]
        ip = "10.77.0.21"
        weight = 3
        [virtual_server.web.real_server.rs2]
        ip = "10.77.0.22"
        weight = 2
    "#;

    fn set(h: &mut HealthMap, rs: &str, up: bool, weight: Option<u32>) {
        h.insert(
            RealServerId::new("web", rs),
            RealServerHealth { up, weight },
        );
    }

    /// `addr:port weight` of each destination of the only service of `vs`.
    fn dests(d: &Desired) -> Vec<String> {
        let vs = d.table.services.values().next().expect("one service");
        vs.destinations
            .values()
            .map(|d| format!("{}:{} {}", d.addr, d.port, d.weight))
            .collect()
    }

    fn build_once(plan: &LvsPlan, h: &HealthMap, q: &mut BTreeMap<String, bool>) -> Desired {
        build(plan, h, q).0
    }

    #[test]
    fn without_verdicts_every_real_server_is_up_at_its_weight() {
        let plan = plan_of(WEB);
        let (d, changes) = build(&plan, &HealthMap::new(), &mut BTreeMap::new());
        assert_eq!(dests(&d), ["10.77.0.21:80 3", "10.77.0.22:80 2"]);
        assert!(changes.is_empty(), "quorum up at start is no news");
        let vs = &d.table.services.values().next().expect("service");
        assert!(
            vs.destinations
                .values()
                .all(|d| d.forward == ForwardMethod::Route)
        );
        assert_eq!(d.origin.values().collect::<Vec<_>>(), ["web"]);
    }

    #[test]
    fn down_is_removed_inhibited_is_weight_0_dynamic_weight_replaces() {
        let plan = plan_of(&format!(
            "{WEB}\ninhibit_on_failure = true\n[virtual_server.web.real_server.rs3]\nip = \"10.77.0.23\"\n"
        ));
        let mut h = HealthMap::new();
        let mut q = BTreeMap::new();
        set(&mut h, "rs1", false, None);
        set(&mut h, "rs2", false, None);
        set(&mut h, "rs3", true, Some(7));
        // rs2 inherits nothing: inhibit_on_failure was set on rs2's table (the line after WEB).
        assert_eq!(
            dests(&build_once(&plan, &h, &mut q)),
            ["10.77.0.22:80 0", "10.77.0.23:80 7"]
        );
    }

    #[test]
    fn virtual_server_inhibit_is_the_default_of_its_real_servers() {
        let plan = plan_of(&WEB.replace(
            "lb_kind = \"DR\"",
            "lb_kind = \"DR\"\ninhibit_on_failure = true",
        ));
        let mut h = HealthMap::new();
        set(&mut h, "rs1", false, None);
        assert_eq!(
            dests(&build_once(&plan, &h, &mut BTreeMap::new())),
            ["10.77.0.21:80 0", "10.77.0.22:80 2"]
        );
    }

    #[test]
    fn the_sorry_server_replaces_the_real_servers_while_none_is_up() {
        let plan = plan_of(&WEB.replace(
            "lb_kind = \"DR\"",
            "lb_kind = \"DR\"\nsorry_server = \"10.77.0.9 8080\"",
        ));
        let mut h = HealthMap::new();
        let mut q = BTreeMap::new();
        assert_eq!(
            dests(&build_once(&plan, &h, &mut q)),
            ["10.77.0.21:80 3", "10.77.0.22:80 2"]
        );
        set(&mut h, "rs1", false, None);
        set(&mut h, "rs2", false, None);
        let (d, changes) = build(&plan, &h, &mut q);
        assert_eq!(dests(&d), ["10.77.0.9:8080 1"]);
        assert_eq!(
            changes,
            [QuorumChange {
                virtual_server: "web".into(),
                up: false,
                weight: 0,
                sorry_server: true
            }]
        );
        set(&mut h, "rs2", true, None);
        let (d, changes) = build(&plan, &h, &mut q);
        assert_eq!(dests(&d), ["10.77.0.22:80 2"]);
        assert!(changes[0].up);
    }

    #[test]
    fn sorry_server_inhibit_keeps_it_at_weight_0_and_inhibited_servers_stay_at_0() {
        let plan = plan_of(&WEB.replace(
            "lb_kind = \"DR\"",
            "lb_kind = \"DR\"\nsorry_server = \"10.77.0.9 80\"\nsorry_server_inhibit = true\ninhibit_on_failure = true",
        ));
        let mut h = HealthMap::new();
        let mut q = BTreeMap::new();
        assert_eq!(
            dests(&build_once(&plan, &h, &mut q)),
            ["10.77.0.9:80 0", "10.77.0.21:80 3", "10.77.0.22:80 2"]
        );
        set(&mut h, "rs1", false, None);
        set(&mut h, "rs2", false, None);
        assert_eq!(
            dests(&build_once(&plan, &h, &mut q)),
            ["10.77.0.9:80 1", "10.77.0.21:80 0", "10.77.0.22:80 0"]
        );
    }

    #[test]
    fn quorum_with_hysteresis_like_keepalived() {
        // Weights 3 and 2; quorum 4 +- 1: up at >= 5, down below 3 (or at 0).
        let plan = plan_of(&WEB.replace(
            "lb_kind = \"DR\"",
            "lb_kind = \"DR\"\nquorum = 4\nhysteresis = 1\nsorry_server = \"10.77.0.9 80\"",
        ));
        let mut h = HealthMap::new();
        let mut q = BTreeMap::new();
        let mut step = |rs1: bool, rs2: bool, q: &mut BTreeMap<String, bool>| {
            set(&mut h, "rs1", rs1, None);
            set(&mut h, "rs2", rs2, None);
            let d = build_once(&plan, &h, q);
            (q["web"], dests(&d))
        };
        assert_eq!(
            step(true, true, &mut q),
            (
                true,
                vec!["10.77.0.21:80 3".into(), "10.77.0.22:80 2".into()]
            )
        );
        // 3 >= 4 - 1: still up.
        assert_eq!(
            step(true, false, &mut q),
            (true, vec!["10.77.0.21:80 3".into()])
        );
        // 2 < 3: lost; the sorry server replaces the live rs2.
        assert_eq!(
            step(false, true, &mut q),
            (false, vec!["10.77.0.9:80 1".into()])
        );
        // 3 < 4 + 1: still down.
        assert_eq!(
            step(true, false, &mut q),
            (false, vec!["10.77.0.9:80 1".into()])
        );
        assert!(step(true, true, &mut q).0);
        // Starting with weight 3: below 4 + 1, down from the start.
        let mut fresh = BTreeMap::new();
        set(&mut h, "rs2", false, None);
        let (_, changes) = build(&plan, &h, &mut fresh);
        assert_eq!(changes.len(), 1);
        assert!(!fresh["web"]);
    }

    #[test]
    fn alpha_starts_checked_servers_down_with_the_checkers_inheritance() {
        let plan = plan_of(&format!(
            "{}\n[virtual_server.web.real_server.rs1.tcp_check]\nconnect_timeout = 1\n",
            WEB.replace("lb_kind = \"DR\"", "lb_kind = \"DR\"\nalpha = true")
        ));
        let mut h = HealthMap::new();
        assert_eq!(
            dests(&build_once(&plan, &h, &mut BTreeMap::new())),
            ["10.77.0.22:80 2"]
        );
        set(&mut h, "rs1", true, None);
        assert_eq!(
            dests(&build_once(&plan, &h, &mut BTreeMap::new())),
            ["10.77.0.21:80 3", "10.77.0.22:80 2"]
        );
        // The checker's own alpha wins over the virtual server's; the real server's over both
        // defaults of its checkers.
        let plan = plan_of(&format!(
            "{}
[virtual_server.web.real_server.rs1.tcp_check]
alpha = false
",
            WEB.replace("lb_kind = \"DR\"", "lb_kind = \"DR\"\nalpha = true")
        ));
        assert_eq!(
            dests(&build_once(&plan, &HealthMap::new(), &mut BTreeMap::new())).len(),
            2
        );
        let plan = plan_of(&format!(
            "{WEB}alpha = true\n[virtual_server.web.real_server.rs2.http_get.url.root]\npath = \"/\"\n"
        ));
        assert_eq!(
            dests(&build_once(&plan, &HealthMap::new(), &mut BTreeMap::new())),
            ["10.77.0.21:80 3"]
        );
    }

    #[test]
    fn every_group_member_gets_the_real_servers_on_its_port() {
        let plan = plan_of(
            r#"
            [virtual_server_group]
            g = ["10.0.0.1 80", "10.0.0.2 443"]
            [virtual_server.v]
            group = "g"
            [virtual_server.v.real_server.a]
            ip = "10.0.0.21"
            [virtual_server.v.real_server.b]
            ip = "10.0.0.22"
            port = 8000
        "#,
        );
        let (d, _) = build(&plan, &HealthMap::new(), &mut BTreeMap::new());
        let got: Vec<String> = d
            .table
            .services
            .values()
            .map(|vs| {
                let ds: Vec<String> = vs.destinations.keys().map(DestKey::to_string).collect();
                format!("{} -> {}", vs.service.key, ds.join(" "))
            })
            .collect();
        assert_eq!(
            got,
            [
                "TCP 10.0.0.1:80 -> 10.0.0.21:80 10.0.0.22:8000",
                "TCP 10.0.0.2:443 -> 10.0.0.21:443 10.0.0.22:8000",
            ]
        );
    }

    /// What the daemon sends the kernel: from an adopted table, a health change or a reload
    /// edit is exactly one operation.
    #[test]
    fn a_change_is_one_operation_against_an_adopted_table() {
        let plan = plan_of(WEB);
        let mut q = BTreeMap::new();
        let mut kernel = keeper_ipvs::Table::new();
        let first = build_once(&plan, &HealthMap::new(), &mut q);
        let ops = reconcile::plan(&first.table, &kernel, &OwnershipPolicy::default());
        assert_eq!(ops.len(), 3);
        assert!(reconcile::apply(&mut kernel, &ops).is_empty());
        // A restart: the same desired table against the kernel's: nothing to do.
        let again = build_once(&plan, &HealthMap::new(), &mut BTreeMap::new());
        assert!(reconcile::plan(&again.table, &kernel, &OwnershipPolicy::default()).is_empty());
        // rs2 fails: one deletion.
        let mut h = HealthMap::new();
        set(&mut h, "rs2", false, None);
        let ops = reconcile::plan(
            &build_once(&plan, &h, &mut q).table,
            &kernel,
            &OwnershipPolicy::default(),
        );
        assert!(
            matches!(ops.as_slice(), [Op::DelDest(_, k)] if k.port == 80 && k.addr.to_string() == "10.77.0.22"),
            "{ops:?}"
        );
        // A reload changing rs1's weight: one edit.
        let reloaded = plan_of(&WEB.replace("weight = 3", "weight = 5"));
        let ops = reconcile::plan(
            &build_once(&reloaded, &HealthMap::new(), &mut q).table,
            &kernel,
            &OwnershipPolicy::default(),
        );
        assert!(
            matches!(ops.as_slice(), [Op::EditDest(_, d)] if d.weight == 5),
            "{ops:?}"
        );
    }

    #[test]
    fn verdicts_for_unknown_names_are_ignored_and_quorum_states_of_removed_servers_dropped() {
        let plan = plan_of(WEB);
        let mut h = HealthMap::new();
        h.insert(RealServerId::new("other", "rs1"), RealServerHealth::DOWN);
        set(&mut h, "rs9", false, None);
        let mut q = BTreeMap::from([("gone".to_string(), true)]);
        let d = build_once(&plan, &h, &mut q);
        assert_eq!(dests(&d).len(), 2);
        assert_eq!(q.keys().collect::<Vec<_>>(), ["web"]);
    }
}
