//! The state machine of one virtual router (RFC 3768 section 6.4, RFC 5798 section 6.4),
//! with keepalived's extensions where the RFCs are silent.
//!
//! Sans-IO in the style of quinn-proto: feed [`Event`]s with [`Instance::handle`], call
//! [`Instance::handle_timeout`] when [`Instance::poll_timeout`] says, and drain
//! [`Instance::poll_action`] after each call. The instance never reads a clock: every
//! `now` comes from the caller, so tests run on virtual time.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::announce::AnnounceSchedule;
use crate::config::{ConfigError, Family, InstanceConfig};
use crate::events::{
    Action, Datagram, DropReason, Event, OutgoingAdvert, State, Transition, TransitionReason,
};
use crate::packet::{
    Advert, AdvertInterval, Auth, PRIORITY_OWNER, PRIORITY_STOP, VRRP_TTL, Version,
};
use crate::stats::Stats;
use crate::timers;
use crate::tracking::TrackingStatus;

mod reconfigure;

/// What ties an instance to its sync group ([`crate::SyncGroup`]), which reads and sets
/// it in `settle`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GroupLink {
    /// In a group: the instance never becomes master by itself; where it would, it only
    /// *wants* master and the group decides (keepalived's `vrrp_sync_can_goto_master`).
    pub(crate) member: bool,
    /// The group holds the instance in Fault (some member has a fault of its own).
    pub(crate) fault: bool,
    /// Backup whose Master_Down expired while in a group (keepalived's
    /// `wantstate == MASTER`). Cleared by an accepted advert and by leaving Backup.
    pub(crate) wants_master: bool,
    /// Why the instance would have left Fault when only the group still held it there.
    pub(crate) pending_up: Option<TransitionReason>,
    /// Left Master on its own because it heard a higher priority.
    pub(crate) went_backup: bool,
    /// Answered a lower-priority master with an advert and a GARP/NA burst.
    pub(crate) answered_lower: bool,
}

/// Why an instance is held in Fault (several causes may hold at once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultCauses {
    /// The instance's own interface is down (`Event::InterfaceDown`).
    pub link_down: bool,
    /// A tracked object (`Event::Tracking` with `fault`).
    pub tracking: bool,
    /// Another member of its sync group is in fault.
    pub sync_group: bool,
}

impl FaultCauses {
    pub fn any(self) -> bool {
        self.link_down || self.tracking || self.sync_group
    }
}

/// One virtual router: one VRID, one family, one interface. Instances are independent
/// values; the driver owns as many as it likes and demultiplexes received packets by
/// (interface, family, VRID).
#[derive(Clone, Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    /// Between `Startup` and `Shutdown`.
    started: bool,
    /// As last reported; assumed up until `InterfaceDown`.
    link_up: bool,
    /// A tracked object holds the instance in Fault (`Event::Tracking`).
    track_fault: bool,
    /// Sync-group membership and what the group coordinator reads and forces.
    group: GroupLink,
    /// End of `startup_delay`, while waiting in Initialize.
    startup_at: Option<Instant>,
    /// Effective priority (configured, then moved by `SetPriority`).
    priority: u8,
    /// v3: learnt from the master while backup; ours while master. v2: always ours.
    master_adver_int: AdvertInterval,
    /// The router believed to be master (ourselves when master).
    master_addr: Option<IpAddr>,
    master_priority: Option<u8>,
    /// Master_Down_Timer in Backup, Adver_Timer in Master.
    timer: Option<Instant>,
    /// Backup: when the Master_Down timer was armed and whether it waits Skew_Time only
    /// (after a priority-0 advert) rather than Master_Down_Interval. Lets a priority or
    /// configuration change move the deadline as keepalived does.
    down_from: Option<Instant>,
    down_skew_only: bool,
    /// What to report when the Master_Down timer fires.
    down_reason: TransitionReason,
    /// `preempt_delay`: until when a lower-priority master is still accepted.
    preempt_deadline: Option<Instant>,
    announce: AnnounceSchedule,
    actions: VecDeque<Action>,
    stats: Stats,
}

impl Instance {
    /// A stopped instance (Initialize); it starts with [`Event::Startup`].
    pub fn new(cfg: InstanceConfig) -> Result<Instance, ConfigError> {
        cfg.validate()?;
        Ok(Instance {
            state: State::Initialize,
            started: false,
            link_up: true,
            track_fault: false,
            group: GroupLink::default(),
            startup_at: None,
            priority: cfg.priority,
            master_adver_int: cfg.advert_interval,
            master_addr: None,
            master_priority: None,
            timer: None,
            down_from: None,
            down_skew_only: false,
            down_reason: TransitionReason::MasterDown,
            preempt_deadline: None,
            announce: AnnounceSchedule::new(cfg.garp),
            actions: VecDeque::new(),
            stats: Stats::default(),
            cfg,
        })
    }

    // ----- accessors

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    pub fn vrid(&self) -> u8 {
        self.cfg.vrid
    }

    pub fn version(&self) -> Version {
        self.cfg.version
    }

    pub fn family(&self) -> Family {
        self.cfg.family
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority we advertise and compute the skew with.
    pub fn effective_priority(&self) -> u8 {
        self.priority
    }

    /// What holds the instance in Fault (or would, once it starts).
    pub fn fault_causes(&self) -> FaultCauses {
        FaultCauses {
            link_down: !self.link_up,
            tracking: self.track_fault,
            sync_group: self.group.fault,
        }
    }

    /// In a sync group: a Backup whose Master_Down expired and that waits for the group
    /// to agree (keepalived's `wantstate MASTER`).
    pub fn wants_master(&self) -> bool {
        self.group.wants_master
    }

    /// Whether a [`crate::SyncGroup`] coordinates this instance.
    pub fn in_sync_group(&self) -> bool {
        self.group.member
    }

    /// Whether the instance holds its virtual addresses (it is master).
    pub fn holds_vips(&self) -> bool {
        self.state == State::Master
    }

    /// The router believed to be master: ourselves when master, the sender of the last
    /// advert heard when backup, `None` when unknown.
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master_addr
    }

    /// The priority the master advertised (ours when master).
    pub fn master_priority(&self) -> Option<u8> {
        self.master_priority
    }

    /// Master_Adver_Interval: v3 backups learn it from the master.
    pub fn master_adver_interval(&self) -> AdvertInterval {
        self.master_adver_int
    }

    /// Master_Down_Interval with the current priority and master interval.
    pub fn master_down_interval(&self) -> Duration {
        timers::master_down_interval(
            self.cfg.version,
            self.skew_priority(),
            self.master_adver_int,
            self.cfg.down_timer_adverts,
        )
    }

    /// Skew_Time with the current priority and master interval.
    pub fn skew_time(&self) -> Duration {
        timers::skew_time(
            self.cfg.version,
            self.skew_priority(),
            self.master_adver_int,
        )
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ----- the sans-IO interface

    /// Feeds one event at time `now`.
    pub fn handle(&mut self, now: Instant, event: Event<'_>) {
        match event {
            Event::Startup => self.on_startup(now),
            Event::Shutdown => self.on_shutdown(),
            Event::AdvertReceived {
                src,
                dst,
                ttl,
                bytes,
            } => self.on_packet(now, src, dst, ttl, bytes),
            Event::InterfaceUp => self.on_interface_up(now),
            Event::InterfaceDown => self.on_interface_down(),
            Event::SetPriority(p) => self.on_set_priority(now, p),
            Event::Tracking(status) => self.on_tracking(now, status),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.startup_at.is_some_and(|at| at <= now) {
            self.startup_at = None;
            self.start(now, TransitionReason::Startup);
        }
        if let Some(at) = self.timer.filter(|&at| at <= now) {
            match self.state {
                State::Backup if self.group.member => {
                    // The group decides (keepalived's vrrp_sync_can_goto_master): say we
                    // want master and look again after another Master_Down_Interval.
                    self.group.wants_master = true;
                    self.arm_down_timer(now, false);
                }
                State::Backup => self.become_master(now, self.down_reason),
                State::Master => {
                    self.send_advert(self.priority);
                    let interval = self.cfg.advert_interval.as_duration();
                    // Keep the advert phase (no drift) unless the caller came very late.
                    self.timer = at
                        .checked_add(interval)
                        .filter(|&next| next > now)
                        .or_else(|| now.checked_add(interval));
                }
                State::Initialize | State::Fault => self.timer = None,
            }
        }
        self.emit_announce(now);
    }

    /// When [`Instance::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.startup_at, self.timer, self.announce.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ----- events

    fn on_startup(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        let master_at_once = self.priority == PRIORITY_OWNER
            && !self.faulted()
            && !self.group.member
            && self.cfg.startup_delay.is_zero();
        if !master_at_once {
            // Clear addresses a crashed predecessor may have left (keepalived does the
            // same at start-up); a no-op when there are none.
            self.actions.push_back(Action::RemoveVips);
        }
        if self.cfg.startup_delay.is_zero() {
            self.start(now, TransitionReason::Startup);
        } else {
            // An unrepresentable deadline would mean "never start"; start at once instead.
            match now.checked_add(self.cfg.startup_delay) {
                Some(at) => self.startup_at = Some(at),
                None => self.start(now, TransitionReason::Startup),
            }
        }
    }

    fn on_shutdown(&mut self) {
        if !self.started {
            return;
        }
        self.started = false;
        self.startup_at = None;
        match self.state {
            State::Master => {
                self.release(State::Initialize, TransitionReason::Shutdown, true);
            }
            State::Backup | State::Fault => {
                self.set_state(State::Initialize, TransitionReason::Shutdown);
            }
            State::Initialize => {}
        }
        self.group.pending_up = None;
        self.forget_master();
    }

    fn on_interface_up(&mut self, now: Instant) {
        self.link_up = true;
        self.leave_fault(now, TransitionReason::InterfaceUp);
    }

    fn on_interface_down(&mut self) {
        self.link_up = false;
        self.group.pending_up = None;
        self.enter_fault(TransitionReason::InterfaceDown);
    }

    fn on_set_priority(&mut self, now: Instant, p: u8) {
        // As keepalived: tracking never makes a non-owner the owner, nor anyone 0.
        let max = if self.cfg.is_owner() {
            PRIORITY_OWNER
        } else {
            PRIORITY_OWNER - 1
        };
        let p = p.clamp(1, max);
        if p == self.priority {
            return;
        }
        self.priority = p;
        match self.state {
            State::Master => self.master_priority = Some(self.priority),
            // keepalived moves the running Master_Down timer by the change of Skew_Time.
            State::Backup => self.rearm_down_timer(now),
            State::Initialize | State::Fault => {}
        }
    }

    fn on_tracking(&mut self, now: Instant, status: TrackingStatus) {
        // The priority first: leaving Fault computes Master_Down with it.
        self.on_set_priority(now, status.priority);
        if status.fault == self.track_fault {
            return;
        }
        self.track_fault = status.fault;
        if status.fault {
            self.group.pending_up = None;
            self.enter_fault(TransitionReason::TrackFault);
        } else {
            self.leave_fault(now, TransitionReason::TrackRecovered);
        }
    }

    /// Some fault condition set in: Backup and Master go to Fault. A master sends
    /// priority 0 on the way (keepalived does; when the fault is not this link, the
    /// backup takes over after Skew_Time).
    fn enter_fault(&mut self, reason: TransitionReason) {
        match self.state {
            State::Master => self.release(State::Fault, reason, true),
            State::Backup => self.set_state(State::Fault, reason),
            State::Initialize | State::Fault => {}
        }
        if self.state == State::Fault {
            self.forget_master();
        }
    }

    /// A fault condition cleared: leave Fault like a Startup if nothing else holds the
    /// instance there. When only the sync group does, remember why for when it lets go.
    fn leave_fault(&mut self, now: Instant, reason: TransitionReason) {
        if self.state != State::Fault {
            return;
        }
        let causes = self.fault_causes();
        if !causes.any() {
            self.start(now, reason);
        } else if !causes.link_down && !causes.tracking {
            self.group.pending_up = Some(reason);
        }
    }

    fn faulted(&self) -> bool {
        self.fault_causes().any()
    }

    /// The reason to report for entering Fault from Initialize at start-up.
    fn fault_reason(&self) -> TransitionReason {
        if !self.link_up {
            TransitionReason::InterfaceDown
        } else if self.track_fault {
            TransitionReason::TrackFault
        } else {
            TransitionReason::SyncGroup
        }
    }

    fn on_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, ttl: u8, bytes: &[u8]) {
        let advert = match self.validate(src, dst, ttl, bytes) {
            Ok(a) => a,
            Err(reason) => {
                self.stats.drops.add(reason);
                self.actions.push_back(Action::Dropped { src, reason });
                return;
            }
        };
        self.stats.adverts_received = self.stats.adverts_received.saturating_add(1);
        if advert.priority == PRIORITY_STOP {
            self.stats.priority_zero_received = self.stats.priority_zero_received.saturating_add(1);
        }
        match self.state {
            State::Backup => self.backup_received(now, src, &advert),
            State::Master => self.master_received(now, src, &advert),
            State::Initialize | State::Fault => {}
        }
    }

    // ----- receipt

    /// RFC 3768 / 5798 section 7.1 receive checks, plus the IP metadata (TTL, source,
    /// destination) the driver passes along. The first failing check names the drop.
    fn validate(
        &self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<Advert, DropReason> {
        if !matches!(self.state, State::Backup | State::Master) {
            return Err(DropReason::NotActive);
        }
        if Family::of(src) != self.cfg.family || Family::of(dst) != self.cfg.family {
            return Err(DropReason::WrongFamily);
        }
        if src == self.cfg.primary_address {
            return Err(DropReason::OwnAddress);
        }
        match &self.cfg.unicast_peers {
            None => {
                if dst != self.cfg.family.multicast_group() {
                    return Err(DropReason::WrongDestination);
                }
                if ttl != VRRP_TTL {
                    return Err(DropReason::BadTtl);
                }
            }
            Some(peers) => {
                if dst.is_multicast() {
                    return Err(DropReason::WrongDestination);
                }
                let peer = peers
                    .iter()
                    .find(|p| p.addr == src)
                    .ok_or(DropReason::UnknownSource)?;
                if !(peer.min_ttl..=peer.max_ttl).contains(&ttl) {
                    return Err(DropReason::BadTtl);
                }
            }
        }
        let advert = Advert::decode(bytes, src, dst).map_err(|e| DropReason::from(&e))?;
        if advert.version != self.cfg.version {
            return Err(DropReason::WrongVersion);
        }
        if advert.vrid != self.cfg.vrid {
            return Err(DropReason::WrongVrid);
        }
        if self.cfg.version == Version::V2 {
            match (&self.cfg.auth, &advert.auth) {
                (Auth::None, Auth::None) => {}
                (Auth::SimpleText(ours), Auth::SimpleText(theirs)) => {
                    if !same_secret(ours, theirs) {
                        return Err(DropReason::AuthFailure);
                    }
                }
                _ => return Err(DropReason::AuthTypeMismatch),
            }
            if advert.max_adver_int != self.cfg.advert_interval {
                return Err(DropReason::IntervalMismatch);
            }
        }
        // keepalived's vrrp_skip_check_adv_addr: a backup trusts the list of the master
        // it already checked. RFC 5798 7.1: a mismatch from the owner is still accepted.
        let trusted = self.cfg.skip_check_adv_addr
            && self.state == State::Backup
            && self.master_addr == Some(src);
        if !trusted
            && advert.priority != PRIORITY_OWNER
            && !same_addresses(&self.cfg.virtual_addresses, &advert.addresses)
        {
            return Err(DropReason::AddressListMismatch);
        }
        Ok(advert)
    }

    fn backup_received(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        self.master_addr = Some(src);
        self.master_priority = Some(advert.priority);
        if advert.priority == PRIORITY_STOP {
            // The master is stopping: take over after Skew_Time, so that the backup with
            // the highest priority wins.
            self.arm_down_timer(now, true);
            self.down_reason = TransitionReason::MasterReleased;
            return;
        }
        let delaying = self.preempt_delay_running(now);
        if !self.cfg.preempt || advert.priority >= self.priority || delaying {
            if self.cfg.version == Version::V3 {
                self.master_adver_int = advert.max_adver_int;
            }
            self.arm_down_timer(now, false);
            self.down_reason = TransitionReason::MasterDown;
            // A master we accept: whatever the group was waiting for, we no longer want
            // master (keepalived resets wantstate here).
            self.group.wants_master = false;
            if !self.cfg.preempt_delay.is_zero() {
                if advert.priority >= self.priority {
                    self.preempt_deadline = None;
                } else if self.preempt_deadline.is_none() {
                    self.preempt_deadline = now.checked_add(self.cfg.preempt_delay);
                }
            }
        } else {
            // Preempt: discard the lower-priority advert and let Master_Down expire.
            self.down_reason = TransitionReason::Preempted;
        }
    }

    /// Whether `preempt_delay` still holds a lower-priority master in place: it runs from
    /// the first lower-priority advert heard (keepalived's semantics).
    fn preempt_delay_running(&self, now: Instant) -> bool {
        !self.cfg.preempt_delay.is_zero() && self.preempt_deadline.is_none_or(|d| d > now)
    }

    fn master_received(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        if advert.priority == PRIORITY_STOP {
            // RFC: answer at once so the backups see a live master.
            self.send_advert(self.priority);
            self.timer = now.checked_add(self.cfg.advert_interval.as_duration());
            return;
        }
        let higher = advert.priority > self.priority
            || (advert.priority == self.priority && src > self.cfg.primary_address);
        if higher {
            if self.cfg.higher_prio_send_advert {
                // Split-brain heal: tell the winner we were master, so it hears a lower
                // priority and re-announces the addresses now, not at its next refresh.
                self.send_advert(self.priority);
            }
            self.release(State::Backup, TransitionReason::HigherPriority, false);
            self.group.went_backup = true;
            self.master_addr = Some(src);
            self.master_priority = Some(advert.priority);
            self.master_adver_int = match self.cfg.version {
                Version::V3 => advert.max_adver_int,
                Version::V2 => self.cfg.advert_interval,
            };
            self.arm_down_timer(now, false);
            self.down_reason = TransitionReason::MasterDown;
        } else if !self.cfg.strict {
            // A lower priority claims to be master (split brain, or a router that came
            // up): assert ourselves now and re-announce the addresses, whose neighbour
            // caches may point at the other router.
            self.send_advert(self.priority);
            self.timer = now.checked_add(self.cfg.advert_interval.as_duration());
            self.announce.answer(now);
            self.emit_announce(now);
            self.group.answered_lower = true;
        }
    }

    // ----- transitions

    /// The RFC Startup (also when leaving Fault): owner to Master, else Backup. Fault
    /// instead while a fault condition holds.
    fn start(&mut self, now: Instant, reason: TransitionReason) {
        self.master_adver_int = self.cfg.advert_interval;
        self.forget_master();
        if self.faulted() {
            if self.state != State::Fault {
                self.set_state(State::Fault, self.fault_reason());
            }
        } else if self.priority == PRIORITY_OWNER && !self.group.member {
            self.become_master(now, TransitionReason::Owner);
        } else {
            self.arm_down_timer(now, false);
            self.down_reason = TransitionReason::MasterDown;
            self.set_state(State::Backup, reason);
            // An owner in a sync group wants master at once; the group decides.
            if self.priority == PRIORITY_OWNER {
                self.group.wants_master = true;
                self.down_reason = TransitionReason::Owner;
            }
        }
    }

    /// Arms the Backup's Master_Down timer from `from`: Master_Down_Interval, or only
    /// Skew_Time after a priority-0 advert.
    fn arm_down_timer(&mut self, from: Instant, skew_only: bool) {
        self.down_from = Some(from);
        self.down_skew_only = skew_only;
        self.timer = from.checked_add(self.down_wait());
    }

    fn down_wait(&self) -> Duration {
        if self.down_skew_only {
            self.skew_time()
        } else {
            self.master_down_interval()
        }
    }

    /// A parameter of Master_Down changed while Backup: the deadline moves by the
    /// change, as keepalived moves `sands`, but never into the past.
    fn rearm_down_timer(&mut self, now: Instant) {
        if self.state != State::Backup {
            return;
        }
        if let Some(from) = self.down_from {
            self.timer = from
                .checked_add(self.down_wait())
                .map(|at| at.max(now))
                .or(self.timer);
        }
    }

    fn become_master(&mut self, now: Instant, reason: TransitionReason) {
        self.master_adver_int = self.cfg.advert_interval;
        // The advert first: the old master releases before our GARPs go out.
        self.send_advert(self.priority);
        self.actions.push_back(Action::AddVips {
            accept_mode: self.cfg.accept_mode || self.priority == PRIORITY_OWNER,
        });
        self.master_addr = Some(self.cfg.primary_address);
        self.master_priority = Some(self.priority);
        self.preempt_deadline = None;
        self.timer = now.checked_add(self.cfg.advert_interval.as_duration());
        self.stats.became_master = self.stats.became_master.saturating_add(1);
        self.announce.start_master(now);
        self.emit_announce(now);
        self.set_state(State::Master, reason);
    }

    /// Leaves Master: optionally a priority-0 advert, then release the addresses.
    fn release(&mut self, to: State, reason: TransitionReason, send_stop: bool) {
        if send_stop {
            self.send_advert(PRIORITY_STOP);
        }
        self.actions.push_back(Action::RemoveVips);
        self.announce.stop();
        self.timer = None;
        self.preempt_deadline = None;
        self.stats.released_master = self.stats.released_master.saturating_add(1);
        self.set_state(to, reason);
    }

    fn set_state(&mut self, to: State, reason: TransitionReason) {
        let from = self.state;
        self.state = to;
        if matches!(to, State::Initialize | State::Fault) {
            self.timer = None;
            self.preempt_deadline = None;
        }
        if to != State::Backup {
            self.down_from = None;
        }
        self.group.wants_master = false;
        self.stats.transitions = self.stats.transitions.saturating_add(1);
        self.actions
            .push_back(Action::Notify(Transition { from, to, reason }));
    }

    fn forget_master(&mut self) {
        self.master_addr = None;
        self.master_priority = None;
    }

    // ----- output

    fn send_advert(&mut self, priority: u8) {
        let advert = Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            max_adver_int: self.cfg.advert_interval,
            auth: self.cfg.auth,
            addresses: self.cfg.virtual_addresses.clone(),
        };
        let src = self.cfg.primary_address;
        let destinations: Vec<IpAddr> = match &self.cfg.unicast_peers {
            None => vec![self.cfg.family.multicast_group()],
            Some(peers) => peers.iter().map(|p| p.addr).collect(),
        };
        // A validated configuration always encodes (tests prove it for every valid
        // version/family/interval); a failure would drop that datagram, never panic.
        let datagrams = destinations
            .into_iter()
            .filter_map(|dst| {
                let payload = advert.encode(src, dst).ok()?;
                Some(Datagram { dst, payload })
            })
            .collect();
        self.stats.adverts_sent = self.stats.adverts_sent.saturating_add(1);
        if priority == PRIORITY_STOP {
            self.stats.priority_zero_sent = self.stats.priority_zero_sent.saturating_add(1);
        }
        self.actions.push_back(Action::SendAdvert(OutgoingAdvert {
            advert,
            src,
            datagrams,
        }));
    }

    fn emit_announce(&mut self, now: Instant) {
        if self.state != State::Master && self.announce.next_deadline().is_none() {
            return;
        }
        for _ in 0..self.announce.take_due(now) {
            self.stats.announce_rounds = self.stats.announce_rounds.saturating_add(1);
            self.actions.push_back(Action::Announce);
        }
    }

    /// The owner keeps 255 in the skew even if tracking moved it (as keepalived).
    fn skew_priority(&self) -> u8 {
        if self.cfg.is_owner() {
            PRIORITY_OWNER
        } else {
            self.priority
        }
    }
}

/// What [`crate::SyncGroup`] reads and forces. Forced transitions report
/// [`TransitionReason::SyncGroup`] and emit the usual actions into the instance's queue.
impl Instance {
    /// Stops being coordinated by a sync group (it was removed from the group's
    /// configuration). An instance held in Fault only by the group leaves it now.
    pub fn leave_sync_group(&mut self, now: Instant) {
        let pending = self.group.pending_up;
        self.group = GroupLink::default();
        if self.started {
            self.leave_fault(now, pending.unwrap_or(TransitionReason::SyncGroup));
        }
    }

    pub(crate) fn join_sync_group(&mut self) {
        self.group.member = true;
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started
    }

    /// A fault of the instance's own (link or tracker), while running.
    pub(crate) fn own_fault(&self) -> bool {
        self.started && (!self.link_up || self.track_fault)
    }

    /// Master, or a Backup whose Master_Down expired (keepalived's wantstate MASTER).
    pub(crate) fn ready_for_master(&self) -> bool {
        match self.state {
            State::Master => true,
            State::Backup => self.group.wants_master,
            State::Initialize | State::Fault => false,
        }
    }

    pub(crate) fn group_fault(&self) -> bool {
        self.group.fault
    }

    pub(crate) fn pending_up(&self) -> Option<TransitionReason> {
        self.group.pending_up
    }

    /// Takes the "left master for a higher priority" and "answered a lower priority"
    /// marks set since the last call.
    pub(crate) fn take_group_marks(&mut self) -> (bool, bool) {
        let marks = (self.group.went_backup, self.group.answered_lower);
        self.group.went_backup = false;
        self.group.answered_lower = false;
        marks
    }

    /// Another member is in fault: hold this one in Fault too (a master sends
    /// priority 0 first, as keepalived's `vrrp_sync_fault`).
    pub(crate) fn sync_hold_fault(&mut self) {
        self.group.fault = true;
        self.enter_fault(TransitionReason::SyncGroup);
    }

    /// No member has a fault of its own any more: leave Fault unless this instance has
    /// one. Reports the member's own reason when its own fault cleared while the group
    /// held it.
    pub(crate) fn sync_release_fault(&mut self, now: Instant) {
        if !self.group.fault {
            return;
        }
        self.group.fault = false;
        let reason = self
            .group
            .pending_up
            .take()
            .unwrap_or(TransitionReason::SyncGroup);
        if self.started {
            self.leave_fault(now, reason);
        }
    }

    /// The group goes master: a Backup becomes master now (keepalived's
    /// `vrrp_sync_master`).
    /// A member that wanted master reports why it did (master down, preempted, owner);
    /// one taken along reports the group.
    pub(crate) fn sync_to_master(&mut self, now: Instant) {
        if self.state == State::Backup {
            let reason = if self.group.wants_master {
                self.down_reason
            } else {
                TransitionReason::SyncGroup
            };
            self.become_master(now, reason);
        }
    }

    /// The group goes backup: a master releases without priority 0 and waits
    /// Master_Down (keepalived's `vrrp_sync_backup`).
    pub(crate) fn sync_to_backup(&mut self, now: Instant) {
        if self.state == State::Master {
            self.release(State::Backup, TransitionReason::SyncGroup, false);
            self.forget_master();
            self.master_adver_int = self.cfg.advert_interval;
            self.arm_down_timer(now, false);
            self.down_reason = TransitionReason::MasterDown;
        }
    }

    /// Another member answered a lower-priority master: its peer router's other
    /// members will step down silently, so re-announce ours too (keepalived sends the
    /// `garp_lower_prio` burst for every member of the group).
    pub(crate) fn sync_answer_lower(&mut self, now: Instant) {
        if self.state == State::Master && !self.cfg.strict {
            self.announce.answer(now);
            self.emit_announce(now);
        }
    }
}

/// Compares two passwords without an early exit on the first differing octet.
fn same_secret(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Same set of addresses, in any order (ours has no duplicates).
fn same_addresses(ours: &[IpAddr], theirs: &[IpAddr]) -> bool {
    ours.len() == theirs.len() && ours.iter().all(|a| theirs.contains(a))
}
