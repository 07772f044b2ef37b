//! VRRP protocol core: codec and state machine, with no sockets and no clock.
//!
//! Everything here is pure: time is an argument, I/O is the caller's job. VRRPv2
//! (RFC 3768, IPv4, optional simple-text password) and VRRPv3 (RFC 5798, IPv4 and
//! IPv6, centisecond intervals), with keepalived's behaviour where the RFCs leave room.
//!
//! # Modules
//! - [`packet`]: [`Advert::encode`] / [`Advert::decode`], byte exact, typed
//!   [`DecodeError`]s. IP-header matters (TTL, DSCP) are not in the codec.
//! - [`timers`]: Skew_Time and Master_Down_Interval, exact to the nanosecond.
//! - [`config`]: [`InstanceConfig`] and its validation ([`ConfigError`]).
//! - [`events`]: the [`Event`]s in and the [`Action`]s out.
//! - [`instance`]: the [`Instance`] state machine.
//! - [`tracking`]: [`Tracking`], keepalived's priority arithmetic of tracked interfaces,
//!   scripts ([`ScriptCounter`] for rise/fall), files and processes.
//! - [`sync`]: [`SyncGroup`], keepalived's `vrrp_sync_group` coordinator.
//! - [`reconfig`]: what [`Instance::reconfigure`] applies in place ([`ConfigField`]) and
//!   what needs a restart ([`RestartReason`]).
//! - [`stats`]: [`Stats`] counters.
//!
//! # Driving an instance
//! ```
//! use std::net::IpAddr;
//! use std::time::Instant;
//! use keeper_vrrp::{Action, Event, Instance, InstanceConfig, State, Version};
//!
//! let me: IpAddr = "10.77.0.11".parse().unwrap();
//! let vip: IpAddr = "10.77.0.100".parse().unwrap();
//! let mut vr = Instance::new(InstanceConfig::new(51, Version::V3, me, vec![vip])).unwrap();
//! let t0 = Instant::now(); // a driver reads the monotonic clock; tests use virtual time
//! vr.handle(t0, Event::Startup);
//! while let Some(action) = vr.poll_action() {
//!     // RemoveVips (stale addresses), then Notify(Initialize -> Backup)
//!     let _ = action;
//! }
//! // No master heard: at Master_Down_Interval (3 s + 609.375 ms at priority 100) ...
//! let deadline = vr.poll_timeout().unwrap();
//! vr.handle_timeout(deadline);
//! assert_eq!(vr.state(), State::Master);
//! assert!(matches!(vr.poll_action(), Some(Action::SendAdvert(_))));
//! assert!(matches!(vr.poll_action(), Some(Action::AddVips { .. })));
//! assert!(matches!(vr.poll_action(), Some(Action::Announce))); // 5 rounds, then Notify
//! ```
//!
//! A driver loop: wait for a packet or for [`Instance::poll_timeout`]; pass packets as
//! [`Event::AdvertReceived`] (with the TTL / hop limit and the destination address of
//! the IP header) and deadlines to [`Instance::handle_timeout`]; after each call drain
//! [`Instance::poll_action`] and perform the actions in order:
//! - [`Action::SendAdvert`]: each [`Datagram`] from [`OutgoingAdvert::src`] to its
//!   `dst`, IP protocol 112, TTL / hop limit 255, DSCP CS6. The payloads are complete
//!   (checksum filled, per destination for v3 unicast).
//! - [`Action::AddVips`] / [`Action::RemoveVips`]: the instance's virtual addresses as the
//!   driver configured them (prefix, device, label); removal is idempotent.
//! - [`Action::Announce`]: one GARP / unsolicited NA per virtual address. The instance
//!   schedules bursts, spacing, the repeat after `garp.master_delay` and the refresh.
//! - [`Action::Notify`]: state change for scripts and logs.
//! - [`Action::Dropped`]: a received packet failed a check (also counted in [`Stats`]).
//!
//! # Tracking
//! Keep a [`Tracking`] per instance (base = the configured priority; the trackers of the
//! instance and of its sync group, after [`tracking::weight_rule`] for owners and sync
//! groups without `sync_group_tracking_weight`). Record observations (link events of
//! tracked interfaces, a missing interface being down; script exits through a
//! [`ScriptCounter`]; file contents through [`tracking::parse_track_file`]; process
//! counts through [`ProcessQuorum`]) and after each change, and once before `Startup`,
//! feed [`Event::Tracking`] with [`Tracking::status`]. The instance's own interface stays
//! on [`Event::InterfaceUp`] / [`Event::InterfaceDown`]; [`Instance::fault_causes`] says
//! what holds an instance in Fault.
//!
//! # Sync groups
//! One [`SyncGroup`] per `vrrp_sync_group`. Call [`SyncGroup::settle`] with its members
//! once before starting them and after every call on any member (`handle`,
//! `handle_timeout`, `reconfigure`); then drain the member that was called, the other
//! members in order, and [`SyncGroup::poll_transition`] for the group's notification.
//! Transitions a group forces report [`TransitionReason::SyncGroup`].
//!
//! # Reload
//! [`Instance::reconfigure`] applies a changed configuration keeping state, timers,
//! addresses and counters, and does nothing at all for an unchanged one. A master's
//! address changes come back in [`Reconfigured`] (perform them before draining); a
//! change of identity is refused with [`ReconfigureError::RestartNeeded`] (then
//! `Shutdown` the old instance and start a new one). [`InstanceConfig::diff`] tells the
//! same without an instance.
//!
//! # Behaviour, in brief
//! - Start: priority 255 becomes master at once; everybody else is backup for
//!   Master_Down_Interval (keepalived's `state MASTER` is only a hint:
//!   [`InitialState`]). Start-up emits `RemoveVips` first unless master at once.
//! - Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time; v3 backups learn the
//!   master's interval; v2 skew is in seconds as RFC 3768 says ([`timers`]).
//! - Backup: priority 0 → take over after Skew_Time; lower priority with preempt →
//!   discarded (Master_Down expires: preemption) unless `preempt_delay` is running;
//!   anything else restarts Master_Down.
//! - Master: priority 0 → answer with an advert; higher priority, or equal from a higher
//!   primary address → (one advert at our priority if `higher_prio_send_advert`) back to
//!   backup; lower priority → answer with an advert and a GARP/NA burst (not in strict
//!   mode). Together these heal a split brain within one advert.
//! - Shutdown / fault: a master sends priority 0 and releases.
//! - Priority changes (tracking, reload) go out in the next advert; a backup's running
//!   Master_Down deadline moves by the change of Skew_Time, as keepalived moves it.
//! - Receive checks and their counters: [`DropReason`].

pub mod config;
pub mod events;
pub mod instance;
pub mod packet;
pub mod reconfig;
pub mod stats;
pub mod sync;
pub mod timers;
pub mod tracking;

mod announce;

pub use config::{ConfigError, Family, GarpConfig, InitialState, InstanceConfig, Peer};
pub use events::{
    Action, Datagram, DropReason, Event, OutgoingAdvert, State, Transition, TransitionReason,
};
pub use instance::{FaultCauses, Instance};
pub use packet::{
    Advert, AdvertInterval, Auth, DecodeError, EncodeError, IPPROTO_VRRP, PRIORITY_OWNER,
    PRIORITY_STOP, VRRP_MCAST_V4, VRRP_MCAST_V6, VRRP_TTL, Version,
};
pub use reconfig::{ConfigDiff, ConfigField, ReconfigureError, Reconfigured, RestartReason};
pub use stats::{DropCounts, Stats};
pub use sync::{GroupTransition, SyncGroup};
pub use tracking::{
    Effect, ProcessQuorum, ScriptCounter, TrackerId, TrackerKind, Tracking, TrackingError,
    TrackingStatus, Weight, WeightRule,
};
