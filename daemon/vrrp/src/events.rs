//! What goes into an [`crate::Instance`] ([`Event`]) and what comes out ([`Action`]).

use std::fmt;
use std::net::IpAddr;

use crate::packet::{Advert, DecodeError};
use crate::tracking::TrackingStatus;

/// RFC 5798 section 6.4 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, stopped, or waiting out `startup_delay`.
    Initialize,
    Backup,
    Master,
    /// Held down: the interface is down ([`Event::InterfaceDown`]), a tracked object
    /// failed ([`Event::Tracking`]), or another member of the sync group is in fault.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        })
    }
}

/// An input to the state machine; the time comes with it as a separate argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Start the instance (RFC "Startup"). Emits `RemoveVips` at once unless the
    /// instance becomes master immediately, so that addresses left by a crashed
    /// predecessor go away (the driver treats removing an absent address as success).
    Startup,
    /// Stop the instance (RFC "Shutdown"): a master sends a priority-0 advert and
    /// releases the addresses. The instance returns to Initialize and may be started
    /// again.
    Shutdown,
    /// A packet of IP protocol 112 arrived. `src`/`dst` are the IP header's addresses,
    /// `ttl` its TTL (IPv4) or hop limit (IPv6, from `IPV6_RECVHOPLIMIT`), `bytes` the
    /// VRRP payload after the IP header. The instance decodes, validates and counts.
    AdvertReceived {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &'a [u8],
    },
    /// The instance's interface came up. Leaves Fault like a Startup unless something
    /// else (tracking, the sync group) still holds it there. Before Startup it only
    /// records the link state.
    InterfaceUp,
    /// The instance's interface went down: enter Fault. A master sends a priority-0
    /// advert (it may not get out) and releases.
    InterfaceDown,
    /// The effective priority changed (tracking weights). 0 is raised to 1 (0 is only
    /// for stopping), a non-owner is capped at 254. Takes effect in the next advert; a
    /// Backup's running Master_Down timer moves by the change of Skew_Time (keepalived).
    SetPriority(u8),
    /// What the trackers make of the instance now ([`crate::Tracking::status`]): the
    /// priority as [`Event::SetPriority`], then `fault` enters Fault (a master sends
    /// priority 0 and releases) or, cleared, leaves it like a Startup unless the link or
    /// the sync group still holds it. Feed it after every tracker change; an unchanged
    /// status does nothing. Other trackers than the instance's own interface
    /// (`track_interface`, scripts, files, processes) go here, not to `InterfaceDown`.
    Tracking(TrackingStatus),
}

/// Why the state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransitionReason {
    /// Startup (or the end of the startup delay) into Backup.
    Startup,
    /// Priority 255: master at once at startup or when leaving Fault.
    Owner,
    /// Master_Down timer expired: the master went silent.
    MasterDown,
    /// Master_Down after the master sent priority 0 (it stopped).
    MasterReleased,
    /// Master_Down after discarding a lower-priority master's adverts (preemption).
    Preempted,
    /// A master heard a higher priority (or an equal one from a higher address).
    HigherPriority,
    InterfaceDown,
    InterfaceUp,
    Shutdown,
    /// A tracked object put the instance in Fault.
    TrackFault,
    /// The last tracker fault cleared.
    TrackRecovered,
    /// Forced by the sync group: another member went master, backup or into fault, or
    /// came out of it.
    SyncGroup,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransitionReason::Startup => "startup",
            TransitionReason::Owner => "owner",
            TransitionReason::MasterDown => "master-down",
            TransitionReason::MasterReleased => "master-released",
            TransitionReason::Preempted => "preempted",
            TransitionReason::HigherPriority => "higher-priority",
            TransitionReason::InterfaceDown => "interface-down",
            TransitionReason::InterfaceUp => "interface-up",
            TransitionReason::Shutdown => "shutdown",
            TransitionReason::TrackFault => "track-fault",
            TransitionReason::TrackRecovered => "track-recovered",
            TransitionReason::SyncGroup => "sync-group",
        })
    }
}

/// A state change, for notify scripts, logs and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: TransitionReason,
}

/// One IP packet to send: the VRRP payload for one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The multicast group (224.0.0.18 / ff02::12) or one unicast peer.
    pub dst: IpAddr,
    /// The VRRP payload, checksum filled for `src` → `dst`.
    pub payload: Vec<u8>,
}

/// An advert to put on the wire: one datagram for multicast, one per unicast peer.
/// The driver sends each from `src` with protocol 112, TTL / hop limit 255 and DSCP CS6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingAdvert {
    /// What the payloads carry (priority 0 when stopping).
    pub advert: Advert,
    /// The source address every payload's checksum was computed with.
    pub src: IpAddr,
    pub datagrams: Vec<Datagram>,
}

/// An output of the state machine, drained with [`crate::Instance::poll_action`] in
/// order. The order within one call is the order to perform them in: an advert goes out
/// before the addresses are added so the old master releases before our GARPs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert(OutgoingAdvert),
    /// Configure the virtual addresses. `accept_mode` false asks the driver to drop
    /// traffic addressed to them (RFC 5798 Accept_Mode; always true for the owner).
    AddVips {
        accept_mode: bool,
    },
    /// Remove the virtual addresses (idempotent: absent ones are fine).
    RemoveVips,
    /// One round of gratuitous ARP (IPv4) / unsolicited NA (IPv6): one packet for each
    /// virtual address. The instance schedules the rounds itself.
    Announce,
    /// The state changed.
    Notify(Transition),
    /// A received packet was dropped; counted in [`crate::Stats`] too. For rate-limited
    /// logging.
    Dropped {
        src: IpAddr,
        reason: DropReason,
    },
}

/// Why a received packet was not processed. Decode failures first, then the checks the
/// instance makes with its configuration and the IP metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    // ---- the octets (from [`DecodeError`])
    /// Shorter than the header, or longer/shorter than the address count says.
    BadLength,
    /// Version other than 2 or 3, or v2 over IPv6.
    BadVersion,
    /// Type other than advertisement.
    BadType,
    /// VRID 0.
    BadVrid,
    /// Interval 0.
    BadInterval,
    BadChecksum,
    /// v2 authentication type other than 0 or 1.
    BadAuthType,
    /// IP source and destination of different families.
    BadFamily,
    // ---- the instance's checks
    /// Instance in Initialize (or startup delay) or Fault.
    NotActive,
    /// IP family differs from the instance's.
    WrongFamily,
    /// Version differs from the instance's.
    WrongVersion,
    /// VRID differs from the instance's (the driver demultiplexes; this is the guard).
    WrongVrid,
    /// Multicast instance: destination is not the VRRP group. Unicast instance:
    /// destination is multicast.
    WrongDestination,
    /// Source is our own primary address (a looped-back or spoofed advert).
    OwnAddress,
    /// Unicast: the source is not a configured peer.
    UnknownSource,
    /// Multicast: TTL / hop limit not 255. Unicast: outside the peer's min/max TTL.
    BadTtl,
    /// v2: authentication type differs from ours.
    AuthTypeMismatch,
    /// v2: wrong password.
    AuthFailure,
    /// v2: advert interval differs from ours (RFC 3768 7.1: MUST discard).
    IntervalMismatch,
    /// Address list differs from ours and the sender is not the owner (RFC 5798 7.1).
    AddressListMismatch,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 20] = [
        DropReason::BadLength,
        DropReason::BadVersion,
        DropReason::BadType,
        DropReason::BadVrid,
        DropReason::BadInterval,
        DropReason::BadChecksum,
        DropReason::BadAuthType,
        DropReason::BadFamily,
        DropReason::NotActive,
        DropReason::WrongFamily,
        DropReason::WrongVersion,
        DropReason::WrongVrid,
        DropReason::WrongDestination,
        DropReason::OwnAddress,
        DropReason::UnknownSource,
        DropReason::BadTtl,
        DropReason::AuthTypeMismatch,
        DropReason::AuthFailure,
        DropReason::IntervalMismatch,
        DropReason::AddressListMismatch,
    ];

    /// A stable kebab-case name (logs, metrics, conformance fixtures).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::BadLength => "bad-length",
            DropReason::BadVersion => "bad-version",
            DropReason::BadType => "bad-type",
            DropReason::BadVrid => "bad-vrid",
            DropReason::BadInterval => "bad-interval",
            DropReason::BadChecksum => "bad-checksum",
            DropReason::BadAuthType => "bad-auth-type",
            DropReason::BadFamily => "bad-family",
            DropReason::NotActive => "not-active",
            DropReason::WrongFamily => "wrong-family",
            DropReason::WrongVersion => "wrong-version",
            DropReason::WrongVrid => "wrong-vrid",
            DropReason::WrongDestination => "wrong-destination",
            DropReason::OwnAddress => "own-address",
            DropReason::UnknownSource => "unknown-source",
            DropReason::BadTtl => "bad-ttl",
            DropReason::AuthTypeMismatch => "auth-type-mismatch",
            DropReason::AuthFailure => "auth-failure",
            DropReason::IntervalMismatch => "interval-mismatch",
            DropReason::AddressListMismatch => "address-list-mismatch",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<&DecodeError> for DropReason {
    fn from(e: &DecodeError) -> DropReason {
        match e {
            DecodeError::MixedFamilies { .. } => DropReason::BadFamily,
            DecodeError::TooShort { .. } | DecodeError::LengthMismatch { .. } => {
                DropReason::BadLength
            }
            DecodeError::UnsupportedVersion(_) | DecodeError::V2OverIpv6 => DropReason::BadVersion,
            DecodeError::NotAdvertisement(_) => DropReason::BadType,
            DecodeError::ZeroVrid => DropReason::BadVrid,
            DecodeError::ZeroInterval => DropReason::BadInterval,
            DecodeError::BadChecksum { .. } => DropReason::BadChecksum,
            DecodeError::UnsupportedAuthType(_) => DropReason::BadAuthType,
        }
    }
}
