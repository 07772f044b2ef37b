//! Reloading an instance's configuration without disturbing it:
//! [`crate::Instance::reconfigure`] and what it reports.
//!
//! Which changes keep the instance running follows keepalived's reload, which keeps an
//! instance whose VRID, family, interface and unicast/multicast mode are unchanged
//! (`vrrp_exist`), and carries its state, VIPs and statistics over
//! (`restore_vrrp_state`), adding and removing only the addresses that changed
//! (`clear_diff_vrrp_vip`). Here the version must stay too: a v2 instance cannot
//! answer v3 adverts. The interface is the driver's business (the core does not know
//! it): a changed interface is a restart.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

use crate::config::{ConfigError, InstanceConfig};

/// A setting whose change needs the instance stopped and started again (the driver
/// sends `Shutdown` to the old instance, then builds and starts a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RestartReason {
    /// `virtual_router_id`: another virtual router.
    Vrid,
    /// `vrrp_version`: another packet format.
    Version,
    /// IPv4 ↔ IPv6: another virtual router (RFC 5798 section 6.1).
    Family,
    /// Multicast ↔ unicast (`unicast_peer` added or removed): other sockets.
    UnicastMode,
}

impl fmt::Display for RestartReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartReason::Vrid => "virtual_router_id",
            RestartReason::Version => "vrrp_version",
            RestartReason::Family => "address family",
            RestartReason::UnicastMode => "unicast/multicast mode",
        })
    }
}

/// A setting that [`crate::Instance::reconfigure`] applies in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigField {
    /// From the next advert; a Backup's Master_Down deadline moves by the change of
    /// Skew_Time. The effective priority restarts from the new base: feed the tracking
    /// status again right after.
    Priority,
    /// A master keeps its advert phase (the next advert is due one new interval after the
    /// last one); a v2 backup, or a v3 backup that has not heard a master, moves its
    /// Master_Down deadline. A v3 backup keeps the interval it learnt from the master.
    AdvertInterval,
    /// From the next advert received.
    Preempt,
    /// A running delay keeps its start and ends at start + new delay.
    PreemptDelay,
    /// Reported in [`Reconfigured::accept_mode`] while master.
    AcceptMode,
    /// The source of the next adverts and the tie-break.
    PrimaryAddress,
    /// The addresses carried by the next advert and checked in received ones; while
    /// master, [`Reconfigured::add_vips`] / [`Reconfigured::remove_vips`] say what to
    /// change and a GARP/NA burst (and its repeat) is due at once when any was added.
    VirtualAddresses,
    /// From the next advert sent and received.
    Auth,
    /// A running start-up delay ends at its start + the new delay.
    StartupDelay,
    SkipCheckAdvAddr,
    Strict,
    /// Peers of a unicast instance: the next advert goes to the new list, received ones
    /// are checked against it.
    UnicastPeers,
    HigherPrioSendAdvert,
    /// Future bursts use the new counts and spacing; a changed refresh period restarts the
    /// refresh from now while master.
    Garp,
    /// Only a start-up hint: no effect on a running instance.
    InitialState,
    /// A Backup's Master_Down deadline moves by the change.
    DownTimerAdverts,
}

/// How a new configuration differs from the running one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Applied in place, in declaration order of [`ConfigField`].
    pub changed: Vec<ConfigField>,
    /// Non-empty: the instance must be restarted.
    pub restart: Vec<RestartReason>,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.restart.is_empty()
    }
}

impl InstanceConfig {
    /// What changes from `self` to `new`; `keeperd --check` can tell an operator which
    /// instances a reload would restart.
    pub fn diff(&self, new: &InstanceConfig) -> ConfigDiff {
        let mut restart = Vec::new();
        if self.vrid != new.vrid {
            restart.push(RestartReason::Vrid);
        }
        if self.version != new.version {
            restart.push(RestartReason::Version);
        }
        if self.family != new.family {
            restart.push(RestartReason::Family);
        }
        if self.unicast_peers.is_some() != new.unicast_peers.is_some() {
            restart.push(RestartReason::UnicastMode);
        }
        let mut changed = Vec::new();
        let mut check = |differs: bool, field: ConfigField| {
            if differs {
                changed.push(field);
            }
        };
        check(self.priority != new.priority, ConfigField::Priority);
        check(
            self.advert_interval != new.advert_interval,
            ConfigField::AdvertInterval,
        );
        check(self.preempt != new.preempt, ConfigField::Preempt);
        check(
            self.preempt_delay != new.preempt_delay,
            ConfigField::PreemptDelay,
        );
        check(self.accept_mode != new.accept_mode, ConfigField::AcceptMode);
        check(
            self.primary_address != new.primary_address,
            ConfigField::PrimaryAddress,
        );
        check(
            self.virtual_addresses != new.virtual_addresses,
            ConfigField::VirtualAddresses,
        );
        check(self.auth != new.auth, ConfigField::Auth);
        check(
            self.startup_delay != new.startup_delay,
            ConfigField::StartupDelay,
        );
        check(
            self.skip_check_adv_addr != new.skip_check_adv_addr,
            ConfigField::SkipCheckAdvAddr,
        );
        check(self.strict != new.strict, ConfigField::Strict);
        check(
            self.unicast_peers.is_some() == new.unicast_peers.is_some()
                && self.unicast_peers != new.unicast_peers,
            ConfigField::UnicastPeers,
        );
        check(
            self.higher_prio_send_advert != new.higher_prio_send_advert,
            ConfigField::HigherPrioSendAdvert,
        );
        check(self.garp != new.garp, ConfigField::Garp);
        check(
            self.initial_state != new.initial_state,
            ConfigField::InitialState,
        );
        check(
            self.down_timer_adverts != new.down_timer_adverts,
            ConfigField::DownTimerAdverts,
        );
        ConfigDiff { changed, restart }
    }
}

/// What [`crate::Instance::reconfigure`] did. Empty (`changed` empty) for an unchanged
/// configuration: then nothing at all happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// The settings applied.
    pub changed: Vec<ConfigField>,
    /// The instance is master: configure these virtual addresses now (before performing
    /// the instance's next actions, whose GARP/NA rounds cover them).
    pub add_vips: Vec<IpAddr>,
    /// The instance is master: remove these virtual addresses now.
    pub remove_vips: Vec<IpAddr>,
    /// The instance is master and its Accept_Mode (`accept_mode` or owner) changed to
    /// this value.
    pub accept_mode: Option<bool>,
}

impl Reconfigured {
    /// Nothing changed.
    pub fn is_noop(&self) -> bool {
        self.changed.is_empty()
    }
}

/// Why [`crate::Instance::reconfigure`] left the instance as it was.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReconfigureError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] ConfigError),
    #[error("the instance must be restarted: {} changed", list(.0))]
    RestartNeeded(Vec<RestartReason>),
}

fn list(reasons: &[RestartReason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
