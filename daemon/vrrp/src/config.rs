//! Configuration of one virtual router instance, and its validation.
//!
//! Field names follow keepalived's keywords where one exists. Validation refuses what
//! keepalived would only warn about and silently "correct" (anchors: weak config
//! validation is a top user complaint): the caller learns at load time, with a typed
//! error, instead of finding a changed behaviour in production.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use crate::packet::{AdvertInterval, Auth, PRIORITY_OWNER, Version, multicast_group};
use crate::timers::DEFAULT_DOWN_TIMER_ADVERTS;

/// Address family of an instance. An instance is single-family: IPv4 and IPv6 virtual
/// routers with the same VRID are independent (RFC 5798 section 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub const fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// 224.0.0.18 or ff02::12.
    pub fn multicast_group(self) -> IpAddr {
        multicast_group(self == Family::Ipv6)
    }
}

/// keepalived's `state MASTER|BACKUP`: a hint, not a command.
///
/// As in keepalived 2.x (measured: `state MASTER` still starts as BACKUP and waits
/// Master_Down) and RFC 5798 section 6.4.1, the start state follows the priority alone:
/// priority 255 (the address owner) becomes master at once, everything else starts as
/// backup and waits `Master_Down_Interval`. The hint only matters for validation: it
/// contradicts `nopreempt` and `preempt_delay` (keepalived clears those with a warning;
/// here it is an error), and in strict mode it must agree with owning the addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InitialState {
    #[default]
    Backup,
    Master,
}

/// A unicast peer (`unicast_peer` with keepalived's `min_ttl` / `max_ttl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: IpAddr,
    /// Lowest TTL / hop limit accepted from this peer.
    pub min_ttl: u8,
    /// Highest TTL / hop limit accepted from this peer.
    pub max_ttl: u8,
}

impl Peer {
    /// A peer accepted at any TTL (keepalived's default).
    pub const fn new(addr: IpAddr) -> Peer {
        Peer {
            addr,
            min_ttl: 0,
            max_ttl: 255,
        }
    }
}

/// Gratuitous ARP / unsolicited NA schedule of a new master (keepalived's
/// `garp_master_*`, `vrrp_garp_interval` / `vrrp_gna_interval`).
///
/// A *round* is one GARP (IPv4) or NA (IPv6) per virtual address; a *burst* is
/// `master_repeat` rounds `interval` apart. On becoming master: a burst at once, another
/// after `master_delay`, then (if set) `master_refresh_repeat` rounds every
/// `master_refresh`, the first refresh `master_delay + master_refresh` after the
/// takeover. keepalived spaces single packets by `vrrp_garp_interval`; here `interval`
/// spaces rounds, which is the same thing for one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpConfig {
    /// Delay of the second burst; zero = no second burst. keepalived default 5 s.
    pub master_delay: Duration,
    /// Rounds per burst. keepalived default 5.
    pub master_repeat: u32,
    /// Period of the refresh; `None` = off (keepalived default).
    pub master_refresh: Option<Duration>,
    /// Rounds per refresh. keepalived default 1.
    pub master_refresh_repeat: u32,
    /// Spacing of the rounds of a burst. keepalived default 0.
    pub interval: Duration,
}

impl Default for GarpConfig {
    fn default() -> GarpConfig {
        GarpConfig {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
        }
    }
}

/// Configuration of one virtual router. Build it with [`InstanceConfig::new`] and change
/// the public fields; [`crate::Instance::new`] validates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// `virtual_router_id`, 1..=255.
    pub vrid: u8,
    /// `vrrp_version`.
    pub version: Version,
    /// The family of every address below.
    pub family: Family,
    /// `priority`, 1..=255; 255 = address owner. Default 100.
    pub priority: u8,
    /// `advert_int`. v2: whole seconds 1..=255; v3: 10 ms ..= 40.95 s. Default 1 s.
    pub advert_interval: AdvertInterval,
    /// `false` = keepalived's `nopreempt`. Default true.
    pub preempt: bool,
    /// `preempt_delay`: how long a preempting backup keeps accepting a lower-priority
    /// master after first hearing it. Zero = preempt at once. Needs `preempt`.
    pub preempt_delay: Duration,
    /// RFC 5798 Accept_Mode (keepalived `accept` / `no_accept`): whether the master
    /// accepts packets addressed to the virtual addresses. The owner always does.
    /// Default true (keepalived's non-strict default; an IPVS director needs it).
    pub accept_mode: bool,
    /// Our own address on the interface (`mcast_src_ip` / `unicast_src_ip`, else the
    /// interface's primary address; RFC 5798 wants the link-local address for IPv6):
    /// the source of our adverts, the tie-break between equal priorities, and part of
    /// the v3 checksum.
    pub primary_address: IpAddr,
    /// `virtual_ipaddress`: the addresses carried in adverts (at least one, at most 255,
    /// no duplicates).
    pub virtual_addresses: Vec<IpAddr>,
    /// v2 `authentication { auth_type PASS }`; must be [`Auth::None`] for v3.
    pub auth: Auth,
    /// keepalived's global `vrrp_startup_delay`: after `Startup`, stay in Initialize
    /// (ignoring adverts) this long before the RFC start-up.
    pub startup_delay: Duration,
    /// keepalived's `vrrp_skip_check_adv_addr`: check the address list of an advert only
    /// when it comes from a different master than the last accepted one.
    pub skip_check_adv_addr: bool,
    /// keepalived's `vrrp_strict`: RFC behaviour only. Refuses unicast, authentication,
    /// `preempt_delay`, `higher_prio_send_advert`, a `down_timer_adverts` other than 3
    /// and an initial state that contradicts the priority; a master then discards
    /// lower-priority adverts silently instead of answering them.
    pub strict: bool,
    /// `unicast_peer`: `None` = multicast; `Some` must name at least one peer
    /// (an empty list is an error, never a silent fallback to multicast).
    /// Adverts from sources outside the list are dropped (keepalived's
    /// `check_unicast_src`, always on here).
    pub unicast_peers: Option<Vec<Peer>>,
    /// keepalived's `higher_prio_send_advert`: a master hearing a higher priority first
    /// sends one advert at its own priority, so that the winner, hearing a lower
    /// priority, re-announces the addresses at once (split-brain heal). Default true.
    pub higher_prio_send_advert: bool,
    /// Gratuitous ARP / unsolicited NA schedule.
    pub garp: GarpConfig,
    /// `state MASTER|BACKUP`; see [`InitialState`].
    pub initial_state: InitialState,
    /// keepalived's `down_timer_adverts`: adverts missed before the master is down,
    /// 1..=100. Default 3 (the RFC).
    pub down_timer_adverts: u8,
}

impl InstanceConfig {
    /// A configuration with keepalived's defaults: priority 100, 1 s adverts, preempt,
    /// accept, multicast, no authentication, no startup delay, GARP 5 + 5 after 5 s.
    pub fn new(
        vrid: u8,
        version: Version,
        primary_address: IpAddr,
        virtual_addresses: Vec<IpAddr>,
    ) -> InstanceConfig {
        InstanceConfig {
            vrid,
            version,
            family: Family::of(primary_address),
            priority: 100,
            advert_interval: AdvertInterval::ONE_SECOND,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: true,
            primary_address,
            virtual_addresses,
            auth: Auth::None,
            startup_delay: Duration::ZERO,
            skip_check_adv_addr: false,
            strict: false,
            unicast_peers: None,
            higher_prio_send_advert: true,
            garp: GarpConfig::default(),
            initial_state: InitialState::Backup,
            down_timer_adverts: DEFAULT_DOWN_TIMER_ADVERTS,
        }
    }

    /// Whether the instance owns the virtual addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == PRIORITY_OWNER
    }

    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::ZeroVrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::ZeroPriority);
        }
        if self.version == Version::V2 && self.family == Family::Ipv6 {
            return Err(ConfigError::V2OverIpv6);
        }
        if !self.advert_interval.fits(self.version) {
            return Err(ConfigError::Interval {
                interval: self.advert_interval,
                version: self.version,
            });
        }
        if !(1..=100).contains(&self.down_timer_adverts) {
            return Err(ConfigError::DownTimerAdverts(self.down_timer_adverts));
        }
        self.check_address("primary_address", self.primary_address)?;
        if self.virtual_addresses.is_empty() {
            return Err(ConfigError::NoVirtualAddresses);
        }
        if self.virtual_addresses.len() > 255 {
            return Err(ConfigError::TooManyVirtualAddresses(
                self.virtual_addresses.len(),
            ));
        }
        let mut seen = HashSet::new();
        for &vip in &self.virtual_addresses {
            self.check_address("virtual_ipaddress", vip)?;
            if !seen.insert(vip) {
                return Err(ConfigError::DuplicateVirtualAddress(vip));
            }
        }
        if let Some(peers) = &self.unicast_peers {
            if peers.is_empty() {
                return Err(ConfigError::EmptyUnicastPeers);
            }
            let mut seen = HashSet::new();
            for peer in peers {
                self.check_address("unicast_peer", peer.addr)?;
                if peer.addr == self.primary_address {
                    return Err(ConfigError::PeerIsSelf(peer.addr));
                }
                if !seen.insert(peer.addr) {
                    return Err(ConfigError::DuplicatePeer(peer.addr));
                }
                if peer.min_ttl > peer.max_ttl {
                    return Err(ConfigError::PeerTtlRange {
                        addr: peer.addr,
                        min: peer.min_ttl,
                        max: peer.max_ttl,
                    });
                }
            }
        }
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(ConfigError::V3Auth);
        }
        if !self.preempt && !self.preempt_delay.is_zero() {
            return Err(ConfigError::PreemptDelayWithNopreempt);
        }
        if self.initial_state == InitialState::Master && !self.is_owner() {
            if !self.preempt {
                return Err(ConfigError::InitialMasterWithNopreempt);
            }
            if !self.preempt_delay.is_zero() {
                return Err(ConfigError::InitialMasterWithPreemptDelay);
            }
        }
        if self.garp.master_refresh == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroGarpRefresh);
        }
        if self.strict {
            self.validate_strict()?;
        }
        Ok(())
    }

    fn validate_strict(&self) -> Result<(), ConfigError> {
        let broken = if self.unicast_peers.is_some() {
            Some("unicast_peer")
        } else if self.auth != Auth::None {
            Some("authentication")
        } else if !self.preempt_delay.is_zero() {
            Some("preempt_delay")
        } else if self.higher_prio_send_advert {
            Some("higher_prio_send_advert")
        } else if self.down_timer_adverts != DEFAULT_DOWN_TIMER_ADVERTS {
            Some("down_timer_adverts")
        } else if (self.initial_state == InitialState::Master) != self.is_owner() {
            Some("state MASTER without priority 255 (or priority 255 without state MASTER)")
        } else {
            None
        };
        match broken {
            Some(what) => Err(ConfigError::Strict(what)),
            None => Ok(()),
        }
    }

    fn check_address(&self, what: &'static str, addr: IpAddr) -> Result<(), ConfigError> {
        if Family::of(addr) != self.family {
            return Err(ConfigError::FamilyMismatch {
                what,
                addr,
                family: self.family,
            });
        }
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(ConfigError::UnusableAddress { what, addr });
        }
        Ok(())
    }
}

/// Why a configuration was refused. Each names the offending setting.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("virtual_router_id must be 1..=255, not 0")]
    ZeroVrid,
    #[error("priority must be 1..=255, not 0 (0 is reserved for a stopping master)")]
    ZeroPriority,
    #[error("VRRPv2 runs over IPv4 only; use vrrp_version 3 for IPv6")]
    V2OverIpv6,
    #[error(
        "advert_int {interval} cannot be sent by VRRP{version} (v2: whole seconds 1..=255; v3: 0.01..=40.95 s)"
    )]
    Interval {
        interval: AdvertInterval,
        version: Version,
    },
    #[error("down_timer_adverts must be 1..=100, not {0}")]
    DownTimerAdverts(u8),
    #[error("{what} {addr} is not of the instance's family {family:?}")]
    FamilyMismatch {
        what: &'static str,
        addr: IpAddr,
        family: Family,
    },
    #[error("{what} {addr} is unspecified or multicast")]
    UnusableAddress { what: &'static str, addr: IpAddr },
    #[error("virtual_ipaddress is empty")]
    NoVirtualAddresses,
    #[error("{0} virtual addresses; an advert carries at most 255")]
    TooManyVirtualAddresses(usize),
    #[error("virtual_ipaddress {0} is listed twice")]
    DuplicateVirtualAddress(IpAddr),
    #[error("unicast_peer is empty (omit it for multicast)")]
    EmptyUnicastPeers,
    #[error("unicast_peer {0} is listed twice")]
    DuplicatePeer(IpAddr),
    #[error("unicast_peer {0} is our own primary address")]
    PeerIsSelf(IpAddr),
    #[error("unicast_peer {addr}: min_ttl {min} is above max_ttl {max}")]
    PeerTtlRange { addr: IpAddr, min: u8, max: u8 },
    #[error("VRRPv3 has no authentication")]
    V3Auth,
    #[error("preempt_delay needs preemption (remove nopreempt or preempt_delay)")]
    PreemptDelayWithNopreempt,
    #[error("state MASTER contradicts nopreempt")]
    InitialMasterWithNopreempt,
    #[error("state MASTER contradicts preempt_delay")]
    InitialMasterWithPreemptDelay,
    #[error("garp_master_refresh must be positive (omit it to turn the refresh off)")]
    ZeroGarpRefresh,
    #[error("vrrp_strict forbids {0}")]
    Strict(&'static str),
}
