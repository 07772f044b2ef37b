//! From the configuration to the protocol core's [`InstanceConfig`]s: one place that turns
//! keepalived's keys into the core's parameters, used by `keeperd --check` (with a stand-in
//! source address) and by the driver (with the interface's real one), so both agree.
//!
//! keepalived compatibility: `vrrp_strict` ignores `authentication` (with a warning, as
//! keepalived 2.2.7 does) and a `state MASTER` hint that contradicts the configuration is ignored
//! with a warning (keepalived's `state MASTER` never changes how an instance starts anyway).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use keeper_vrrp::tracking::{TrackerKind, Weight, WeightRule, weight_rule};
use keeper_vrrp::{
    AdvertInterval, Auth, Family, GarpConfig, InitialState, InstanceConfig, Peer, Version,
};

use crate::config::node::KeyPath;
use crate::config::schema::{self, Config, VrrpInstance};
use crate::config::syntax::{PeerSpec, RouteSpec, RuleSpec, TrackSpec, VipSpec};
use crate::config::validate::instance_version;

/// One instance, ready to run once its source address is known.
#[derive(Clone, Debug, PartialEq)]
pub struct InstancePlan {
    pub name: String,
    pub interface: String,
    /// Virtual addresses as configured (device, label, scope), in advert order.
    pub vips: Vec<VipSpec>,
    /// Added and removed with the VIPs but not advertised.
    pub excluded: Vec<VipSpec>,
    /// `virtual_routes` and `virtual_rules`: added after the VIPs, removed before them.
    pub routes: Vec<RouteSpec>,
    pub rules: Vec<RuleSpec>,
    /// Tracked objects with the weights keepalived's rules leave them.
    pub trackers: Vec<TrackerPlan>,
    /// The sync group the instance belongs to.
    pub group: Option<String>,
    /// `use_vmac`: the VMAC interface that carries the VIPs (and sends the adverts unless
    /// `vmac_xmit_base`).
    pub vmac: Option<String>,
    pub vmac_xmit_base: bool,
    /// `unicast_src_ip` or `mcast_src_ip`; else the interface's address is used.
    pub source: Option<IpAddr>,
    /// The core's configuration; `primary_address` is a stand-in until [`Self::with_source`].
    pub core: InstanceConfig,
}

impl InstancePlan {
    pub fn family(&self) -> Family {
        self.core.family
    }

    /// The core configuration with the real source address.
    pub fn with_source(&self, primary: IpAddr) -> InstanceConfig {
        let mut c = self.core.clone();
        c.primary_address = primary;
        c
    }
}

/// One tracked object of an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerPlan {
    pub kind: TrackerKind,
    /// The interface, `vrrp_script`, `vrrp_track_file` or `vrrp_track_process` name.
    pub object: String,
    pub weight: Weight,
}

/// A `vrrp_script`'s rise/fall settings (the driver keeps its counter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptPlan {
    pub name: String,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// The `vrrp_script`s of the configuration.
pub fn scripts(cfg: &Config) -> Vec<ScriptPlan> {
    cfg.vrrp_script
        .iter()
        .map(|(name, s)| ScriptPlan {
            name: name.clone(),
            rise: clamp_u32(s.rise).max(1),
            fall: clamp_u32(s.fall).max(1),
            init_fail: s.init_fail,
        })
        .collect()
}

/// A `vrrp_sync_group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPlan {
    pub name: String,
    pub members: Vec<String>,
}

/// The sync groups of the configuration.
pub fn groups(cfg: &Config) -> Vec<GroupPlan> {
    cfg.vrrp_sync_group
        .iter()
        .map(|(name, g)| GroupPlan {
            name: name.clone(),
            members: g.group.clone(),
        })
        .collect()
}

/// A finding of the planning step, at a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanNote {
    pub path: KeyPath,
    pub message: String,
    pub error: bool,
}

fn key(name: &str, k: &[&str]) -> KeyPath {
    let mut v = vec!["vrrp_instance".to_string(), name.to_string()];
    v.extend(k.iter().map(|s| s.to_string()));
    v
}

/// A documentation address of the family, standing in for the source address at `--check`.
pub fn stand_in(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
    }
}

fn clamp_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// Plans every instance. Instances with errors are left out; every finding is returned.
pub fn plan(cfg: &Config) -> (Vec<InstancePlan>, Vec<PlanNote>) {
    let mut plans = Vec::new();
    let mut notes = Vec::new();
    for (name, inst) in &cfg.vrrp_instance {
        match plan_one(cfg, name, inst, &mut notes) {
            Some(p) => plans.push(p),
            None => continue,
        }
    }
    (plans, notes)
}

fn plan_one(
    cfg: &Config,
    name: &str,
    inst: &VrrpInstance,
    notes: &mut Vec<PlanNote>,
) -> Option<InstancePlan> {
    let g = &cfg.global;
    let mut warn = |k: &[&str], m: String| {
        notes.push(PlanNote {
            path: key(name, k),
            message: m,
            error: false,
        })
    };
    // Range and syntax errors were reported by config validation; here they just stop the plan.
    let interface = inst.interface.clone()?;
    let vrid = u8::try_from(inst.virtual_router_id?).ok()?;
    let priority = u8::try_from(inst.priority.unwrap_or(100)).ok()?;
    let version = match instance_version(cfg, inst) {
        2 => Version::V2,
        3 => Version::V3,
        _ => return None,
    };
    let vips: Vec<VipSpec> = inst
        .virtual_ipaddress
        .iter()
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let excluded: Vec<VipSpec> = inst
        .virtual_ipaddress_excluded
        .iter()
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let routes: Vec<RouteSpec> = inst
        .virtual_routes
        .iter()
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let rules: Vec<RuleSpec> = inst
        .virtual_rules
        .iter()
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    let family = match vips.first() {
        Some(v) => Family::of(v.addr),
        None => {
            notes.push(PlanNote {
                path: key(name, &["virtual_ipaddress"]),
                message: "an instance needs at least one virtual address".into(),
                error: true,
            });
            return None;
        }
    };
    let advert = inst.advert_int.map_or(Duration::from_secs(1), |d| d.get());
    let advert_interval = AdvertInterval::from_duration(advert)?;
    let strict = g.vrrp_strict;

    let mut core = InstanceConfig::new(
        vrid,
        version,
        stand_in(family),
        vips.iter().map(|v| v.addr).collect(),
    );
    core.priority = priority;
    core.advert_interval = advert_interval;
    core.preempt = !inst.nopreempt;
    core.preempt_delay = inst.preempt_delay.get();
    core.strict = strict;
    core.accept_mode = inst.accept.unwrap_or(!strict);
    core.skip_check_adv_addr = g.vrrp_skip_check_adv_addr;
    core.startup_delay = g.vrrp_startup_delay.get();
    core.higher_prio_send_advert = inst
        .higher_prio_send_advert
        .unwrap_or(g.vrrp_higher_prio_send_advert && !strict);
    let interval = if family == Family::Ipv6 {
        g.vrrp_gna_interval
    } else {
        g.vrrp_garp_interval
    };
    let refresh = inst
        .garp_master_refresh
        .unwrap_or(g.vrrp_garp_master_refresh)
        .get();
    core.garp = GarpConfig {
        master_delay: inst
            .garp_master_delay
            .unwrap_or(g.vrrp_garp_master_delay)
            .get(),
        master_repeat: clamp_u32(inst.garp_master_repeat.unwrap_or(g.vrrp_garp_master_repeat)),
        master_refresh: (!refresh.is_zero()).then_some(refresh),
        master_refresh_repeat: clamp_u32(
            inst.garp_master_refresh_repeat
                .unwrap_or(g.vrrp_garp_master_refresh_repeat),
        ),
        interval: interval.get(),
    };
    if let Some(auth) = &inst.authentication
        && auth.auth_type == schema::AuthType::Pass
    {
        if strict {
            warn(
                &["authentication"],
                "vrrp_strict: authentication is ignored, as keepalived does (RFC 5798 has none)"
                    .into(),
            );
        } else {
            core.auth =
                Auth::simple_text(auth.auth_pass.as_deref().unwrap_or_default().as_bytes())?;
        }
    }
    if let Some(peers) = &inst.unicast_peer {
        let parsed: Vec<PeerSpec> = peers
            .iter()
            .map(|s| s.parse().ok())
            .collect::<Option<_>>()?;
        core.unicast_peers = Some(
            parsed
                .iter()
                .map(|p| Peer {
                    addr: p.addr,
                    min_ttl: p.min_ttl,
                    max_ttl: p.max_ttl,
                })
                .collect(),
        );
    }
    core.initial_state = match inst.state {
        Some(schema::InitialState::Master) => InitialState::Master,
        _ => InitialState::Backup,
    };
    if core.initial_state == InitialState::Master && priority != 255 {
        let conflict = if inst.nopreempt {
            Some("nopreempt")
        } else if !core.preempt_delay.is_zero() {
            Some("preempt_delay")
        } else if strict {
            Some("vrrp_strict (a MASTER must be the address owner, priority 255)")
        } else {
            None
        };
        if let Some(what) = conflict {
            warn(
                &["state"],
                format!(
                    "state MASTER contradicts {what}: starting as BACKUP, which is what keepalived does too"
                ),
            );
            core.initial_state = InitialState::Backup;
        }
    }
    let source = inst.unicast_src_ip.or(inst.mcast_src_ip);
    let group = cfg
        .vrrp_sync_group
        .iter()
        .find(|(_, g)| g.group.iter().any(|m| m == name));
    let sync_without_weights = group.is_some_and(|(_, g)| !g.sync_group_tracking_weight);
    let mut trackers = Vec::new();
    let kinds: [(&str, TrackerKind, &Vec<String>); 2] = [
        (
            "track_interface",
            TrackerKind::Interface,
            &inst.track_interface,
        ),
        ("track_script", TrackerKind::Script, &inst.track_script),
    ];
    for (k, kind, list) in kinds {
        for (i, s) in list.iter().enumerate() {
            let t: TrackSpec = s.parse().ok()?;
            let default = match kind {
                TrackerKind::Script => cfg.vrrp_script.get(&t.name).map_or(0, |sc| sc.weight),
                _ => 0,
            };
            let index = i.to_string();
            let path = [k, index.as_str()];
            let weight = match Weight::new(kind, t.weight.map_or(default, i64::from), t.reverse) {
                Ok(w) => w,
                Err(e) => {
                    notes.push(PlanNote {
                        path: key(name, &path),
                        message: e.to_string(),
                        error: true,
                    });
                    return None;
                }
            };
            let weight = match weight_rule(kind, weight, priority == 255, sync_without_weights) {
                WeightRule::Keep => weight,
                rule => {
                    let why = if priority == 255 {
                        "the address owner (priority 255)"
                    } else {
                        "a sync group member (set sync_group_tracking_weight on the group to keep weights)"
                    };
                    let what = if rule == WeightRule::Ignore {
                        "the tracker is not used, as in keepalived"
                    } else {
                        "a failure means FAULT, as in keepalived"
                    };
                    notes.push(PlanNote {
                        path: key(name, &path),
                        message: format!("weight ignored for {why}: {what}"),
                        error: false,
                    });
                    if rule == WeightRule::Ignore {
                        continue;
                    }
                    Weight::new(kind, 0, t.reverse).ok()?
                }
            };
            trackers.push(TrackerPlan {
                kind,
                object: t.name,
                weight,
            });
        }
    }
    let vmac = inst.use_vmac.name(vrid);
    if vmac.is_some() && family == Family::Ipv6 {
        notes.push(PlanNote {
            path: key(name, &["use_vmac"]),
            message: "use_vmac with IPv6 virtual addresses is not supported yet".into(),
            error: true,
        });
        return None;
    }
    if let Err(e) = core.validate() {
        notes.push(PlanNote {
            path: key(name, &[]),
            message: e.to_string(),
            error: true,
        });
        return None;
    }
    Some(InstancePlan {
        name: name.to_string(),
        interface,
        vips,
        excluded,
        routes,
        rules,
        trackers,
        group: group.map(|(g, _)| g.clone()),
        vmac,
        vmac_xmit_base: inst.vmac_xmit_base,
        source,
        core,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        toml::from_str(text).expect("test config parses")
    }

    #[test]
    fn seed_002_strict_with_auth_plans_like_keepalived() {
        let c = cfg(r#"
            [global]
            vrrp_strict = true
            [vrrp_instance.VI_1]
            state = "MASTER"
            interface = "ens33"
            virtual_router_id = 51
            priority = 100
            authentication = { auth_type = "PASS", auth_pass = "1111" }
            virtual_ipaddress = ["192.168.235.100/24 dev ens33 label ens33:2"]
        "#);
        let (plans, notes) = plan(&c);
        assert_eq!(plans.len(), 1, "{notes:?}");
        let p = &plans[0];
        assert_eq!(p.core.auth, Auth::None);
        assert!(!p.core.higher_prio_send_advert);
        assert_eq!(p.core.initial_state, InitialState::Backup);
        assert_eq!(notes.iter().filter(|n| !n.error).count(), 2, "{notes:?}");
        assert_eq!(p.vips[0].label.as_deref(), Some("ens33:2"));
    }

    #[test]
    fn v3_centisecond_interval_and_unicast() {
        let c = cfg(r#"
            [global]
            vrrp_version = 3
            [vrrp_instance.VI_6]
            interface = "eth0"
            virtual_router_id = 7
            advert_int = "100ms"
            unicast_peer = ["fe80::2 min_ttl 255"]
            virtual_ipaddress = ["fd77::100/64"]
        "#);
        let (plans, notes) = plan(&c);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(plans[0].core.advert_interval.centis(), 10);
        assert_eq!(plans[0].family(), Family::Ipv6);
        assert_eq!(
            plans[0].core.unicast_peers.as_ref().map(|p| p[0].min_ttl),
            Some(255)
        );
    }
}
