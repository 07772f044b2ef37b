//! Reloading without disturbance: `Instance::reconfigure` for each class of setting, the
//! restarts it refuses, and properties: an unchanged configuration does nothing at all,
//! and arbitrary reloads keep the state machine's invariants. Exact times on virtual
//! time, and a pair of routers on the simulated LAN reloaded twenty times.

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use keeper_vrrp::{
    Action, Advert, AdvertInterval, Auth, ConfigError, ConfigField, Event, GarpConfig, Instance,
    InstanceConfig, Peer, ReconfigureError, Reconfigured, RestartReason, State, Version,
};
use proptest::prelude::*;
use sim::{Happened, Lan, Vr, ip, ms, secs};

const MCAST: &str = "224.0.0.18";
const MDI_100: Duration = Duration::from_nanos(3_609_375_000);
const VR51: Vr = Vr {
    vrid: 51,
    ipv6: false,
};

fn base() -> InstanceConfig {
    InstanceConfig::new(51, Version::V3, ip("10.77.0.11"), vec![ip("10.77.0.100")])
}

struct Rig {
    t0: Instant,
    vr: Instance,
}

impl Rig {
    fn new(cfg: InstanceConfig) -> Rig {
        let t0 = Instant::now();
        let mut vr = Instance::new(cfg).expect("valid");
        vr.handle(t0, Event::Startup);
        let mut rig = Rig { t0, vr };
        rig.actions();
        rig
    }

    /// Started alone: master at Master_Down (3.609375 s at priority 100).
    fn master(cfg: InstanceConfig) -> Rig {
        let mut rig = Rig::new(cfg);
        rig.run_to(secs(4));
        assert_eq!(rig.vr.state(), State::Master);
        rig.actions();
        rig
    }

    fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.vr.poll_action()).collect()
    }

    /// Runs the timers up to `d`; returns (time, action) for each action.
    fn run_to(&mut self, d: Duration) -> Vec<(Duration, Action)> {
        let mut out = Vec::new();
        while let Some(t) = self.vr.poll_timeout().filter(|&t| t <= self.t0 + d) {
            self.vr.handle_timeout(t);
            out.extend(self.actions().into_iter().map(|a| (t - self.t0, a)));
        }
        out
    }

    fn rx(&mut self, d: Duration, src: &str, priority: u8) -> Vec<Action> {
        let advert = Advert {
            version: self.vr.version(),
            vrid: 51,
            priority,
            max_adver_int: self.vr.config().advert_interval,
            auth: self.vr.config().auth,
            addresses: self.vr.config().virtual_addresses.clone(),
        };
        let bytes = advert.encode(ip(src), ip(MCAST)).expect("encodes");
        self.vr.handle(
            self.t0 + d,
            Event::AdvertReceived {
                src: ip(src),
                dst: ip(MCAST),
                ttl: 255,
                bytes: &bytes,
            },
        );
        self.actions()
    }

    fn reconfigure(&mut self, d: Duration, cfg: InstanceConfig) -> Reconfigured {
        let done = self
            .vr
            .reconfigure(self.t0 + d, cfg)
            .expect("applies in place");
        assert!(self.vr.poll_action().is_none(), "reconfigure emits nothing");
        done
    }
}

fn adverts(actions: &[(Duration, Action)]) -> Vec<(Duration, u8)> {
    actions
        .iter()
        .filter_map(|(t, a)| match a {
            Action::SendAdvert(o) => Some((*t, o.advert.priority)),
            _ => None,
        })
        .collect()
}

/// Everything a driver or operator can observe of an instance.
fn observable(vr: &Instance) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        vr.state(),
        vr.effective_priority(),
        vr.master_address(),
        vr.master_priority(),
        vr.master_adver_interval(),
        vr.poll_timeout(),
        *vr.stats(),
        vr.config().clone(),
        vr.fault_causes(),
        vr.wants_master(),
    )
}

#[test]
fn an_unchanged_configuration_is_a_no_op() {
    let mut rig = Rig::master(base());
    let before = observable(&rig.vr);
    let done = rig.reconfigure(secs(4), base());
    assert!(done.is_noop());
    assert_eq!(done, Reconfigured::default());
    assert_eq!(observable(&rig.vr), before);
}

#[test]
fn identity_changes_need_a_restart_and_leave_the_instance_alone() {
    let mut rig = Rig::master(base());
    let before = observable(&rig.vr);
    let mut c = base();
    c.vrid = 52;
    c.version = Version::V2;
    assert_eq!(
        rig.vr.reconfigure(rig.at(secs(4)), c),
        Err(ReconfigureError::RestartNeeded(vec![
            RestartReason::Vrid,
            RestartReason::Version
        ]))
    );
    let mut c = InstanceConfig::new(51, Version::V3, ip("fe80::1"), vec![ip("fd77::100")]);
    c.priority = 100;
    assert_eq!(
        rig.vr.reconfigure(rig.at(secs(4)), c),
        Err(ReconfigureError::RestartNeeded(vec![RestartReason::Family]))
    );
    let mut c = base();
    c.unicast_peers = Some(vec![Peer::new(ip("10.77.0.12"))]);
    assert_eq!(
        rig.vr.reconfigure(rig.at(secs(4)), c),
        Err(ReconfigureError::RestartNeeded(vec![
            RestartReason::UnicastMode
        ]))
    );
    let mut c = base();
    c.virtual_addresses.clear();
    assert_eq!(
        rig.vr.reconfigure(rig.at(secs(4)), c),
        Err(ReconfigureError::Invalid(ConfigError::NoVirtualAddresses))
    );
    assert!(rig.vr.poll_action().is_none());
    assert_eq!(observable(&rig.vr), before);
}

#[test]
fn priority_of_a_master_goes_out_in_the_next_advert() {
    let mut rig = Rig::master(base());
    let timer = rig.vr.poll_timeout();
    let mut c = base();
    c.priority = 120;
    let done = rig.reconfigure(secs(4), c);
    assert_eq!(done.changed, vec![ConfigField::Priority]);
    assert_eq!(rig.vr.effective_priority(), 120);
    assert_eq!(rig.vr.master_priority(), Some(120));
    assert_eq!(rig.vr.poll_timeout(), timer, "the advert phase stays");
    let sent = adverts(&rig.run_to(secs(5)));
    assert_eq!(sent, vec![(MDI_100 + secs(1), 120)]);
}

#[test]
fn priority_of_a_backup_moves_master_down_by_the_skew() {
    let mut c = base();
    c.priority = 50;
    let mut rig = Rig::new(c.clone());
    rig.rx(secs(1), "10.77.0.12", 100);
    // 50 → skew 206/256 s; 200 → 56/256 s: the deadline moves 0.78125 s earlier.
    assert_eq!(
        rig.vr.poll_timeout(),
        Some(rig.at(secs(1) + Duration::from_nanos(3_804_687_500)))
    );
    c.priority = 200;
    rig.reconfigure(secs(2), c);
    assert_eq!(
        rig.vr.poll_timeout(),
        Some(rig.at(secs(1) + Duration::from_nanos(3_218_750_000)))
    );
    assert_eq!(rig.vr.state(), State::Backup);
}

#[test]
fn advert_interval_of_a_master_keeps_the_phase() {
    let mut rig = Rig::master(base());
    let mut c = base();
    c.advert_interval = AdvertInterval::from_centis(50).expect("valid");
    rig.reconfigure(secs(4), c.clone());
    assert_eq!(rig.vr.master_adver_interval(), c.advert_interval);
    let sent = adverts(&rig.run_to(secs(6)));
    let last = MDI_100; // the takeover advert
    assert_eq!(
        sent,
        vec![
            (last + ms(500), 100),
            (last + ms(1000), 100),
            (last + ms(1500), 100),
            (last + ms(2000), 100),
        ]
    );
    // Lengthening it: one new interval after the last advert, never in the past.
    c.advert_interval = AdvertInterval::from_centis(300).expect("valid");
    rig.reconfigure(secs(6), c.clone());
    assert_eq!(
        rig.vr.poll_timeout(),
        Some(rig.at(last + ms(2000) + secs(3)))
    );
    // Shortening it past the due time: the advert goes out at once.
    c.advert_interval = AdvertInterval::from_centis(10).expect("valid");
    rig.reconfigure(secs(7), c);
    assert_eq!(rig.vr.poll_timeout(), Some(rig.at(secs(7))));
}

#[test]
fn advert_interval_of_a_v3_backup_keeps_what_it_learnt() {
    let mut c = base();
    c.priority = 50;
    let mut rig = Rig::new(c.clone());
    rig.rx(secs(1), "10.77.0.12", 100);
    let deadline = rig.vr.poll_timeout();
    c.advert_interval = AdvertInterval::from_centis(10).expect("valid");
    let done = rig.reconfigure(secs(2), c.clone());
    assert_eq!(done.changed, vec![ConfigField::AdvertInterval]);
    assert_eq!(rig.vr.master_adver_interval(), AdvertInterval::ONE_SECOND);
    assert_eq!(rig.vr.poll_timeout(), deadline);
    // A backup that has heard nobody waits with its own interval: 3 × 0.1 s + skew.
    let mut rig = Rig::new(base());
    rig.reconfigure(ms(100), c);
    assert_eq!(
        rig.vr.poll_timeout(),
        Some(rig.at(Duration::from_nanos(300_000_000 + 80_468_750)))
    );
}

#[test]
fn preemption_settings_apply_to_the_next_advert() {
    let mut c = base();
    c.priority = 150;
    c.preempt = false;
    let mut rig = Rig::new(c.clone());
    rig.rx(secs(1), "10.77.0.12", 100);
    rig.rx(secs(2), "10.77.0.12", 100);
    assert_eq!(
        rig.vr.poll_timeout(),
        Some(rig.at(secs(2) + Duration::from_nanos(3_414_062_500)))
    );
    // preempt_delay 5 s: the delay starts with the next lower advert.
    c.preempt = true;
    c.preempt_delay = secs(5);
    rig.reconfigure(ms(2500), c.clone());
    rig.rx(secs(3), "10.77.0.12", 100);
    assert_eq!(rig.vr.state(), State::Backup);
    // Shortening the running delay to 1 s: it ends at 3 s + 1 s; the advert at 5 s is
    // discarded and Master_Down (from the last accepted one, at 3 s) makes us master.
    c.preempt_delay = secs(1);
    rig.reconfigure(secs(4), c);
    rig.rx(secs(5), "10.77.0.12", 100);
    let actions = rig.run_to(secs(7));
    assert_eq!(rig.vr.state(), State::Master, "{actions:?}");
    assert_eq!(
        adverts(&actions)[0].0,
        secs(3) + Duration::from_nanos(3_414_062_500)
    );
}

#[test]
fn virtual_addresses_of_a_master_change_exactly_and_are_announced() {
    let mut rig = Rig::master(base());
    let mut c = base();
    c.virtual_addresses = vec![ip("10.77.0.101"), ip("10.77.0.100"), ip("10.77.0.102")];
    let done = rig.reconfigure(ms(4500), c.clone());
    assert_eq!(done.changed, vec![ConfigField::VirtualAddresses]);
    assert_eq!(done.add_vips, vec![ip("10.77.0.101"), ip("10.77.0.102")]);
    assert!(done.remove_vips.is_empty());
    // A burst is due at once, its repeat after garp_master_delay; the next advert
    // carries the new list.
    assert_eq!(rig.vr.poll_timeout(), Some(rig.at(ms(4500))));
    let actions = rig.run_to(ms(4500));
    assert_eq!(actions.len(), 5);
    assert!(actions.iter().all(|(_, a)| *a == Action::Announce));
    let next = rig.run_to(MDI_100 + secs(1));
    let Some((_, Action::SendAdvert(out))) = next.first() else {
        panic!("an advert: {next:?}");
    };
    assert_eq!(out.advert.addresses, c.virtual_addresses);
    // Removing one: no announcement.
    c.virtual_addresses = vec![ip("10.77.0.102")];
    let done = rig.reconfigure(secs(5), c.clone());
    assert_eq!(done.remove_vips, vec![ip("10.77.0.101"), ip("10.77.0.100")]);
    assert!(done.add_vips.is_empty());
    // A backup holds nothing: nothing to change.
    let mut backup = Rig::new(base());
    let done = backup.reconfigure(secs(1), c);
    assert_eq!(done.changed, vec![ConfigField::VirtualAddresses]);
    assert!(done.add_vips.is_empty() && done.remove_vips.is_empty());
}

#[test]
fn accept_mode_and_owner_changes_of_a_master_are_reported() {
    let mut rig = Rig::master(base());
    let mut c = base();
    c.accept_mode = false;
    assert_eq!(rig.reconfigure(secs(4), c.clone()).accept_mode, Some(false));
    c.priority = 255;
    let done = rig.reconfigure(secs(4), c);
    assert_eq!(done.accept_mode, Some(true), "the owner always accepts");
    assert_eq!(rig.vr.effective_priority(), 255);
}

#[test]
fn garp_refresh_starts_from_the_reload() {
    let mut rig = Rig::master(base());
    let mut c = base();
    c.garp = GarpConfig {
        master_refresh: Some(secs(2)),
        master_refresh_repeat: 2,
        ..GarpConfig::default()
    };
    rig.reconfigure(ms(4300), c.clone());
    let announced: Vec<Duration> = rig
        .run_to(ms(8400))
        .into_iter()
        .filter(|(_, a)| *a == Action::Announce)
        .map(|(t, _)| t)
        .collect();
    // Refresh at 6.3 s and 8.3 s (2 rounds each); the takeover's second burst at
    // 8.609375 s is still to come.
    assert_eq!(announced, vec![ms(6300), ms(6300), ms(8300), ms(8300)]);
    c.garp.master_refresh = None;
    rig.reconfigure(ms(8400), c);
    let announced = rig
        .run_to(secs(20))
        .into_iter()
        .filter(|(_, a)| *a == Action::Announce)
        .count();
    assert_eq!(announced, 5, "only the second burst of the takeover");
}

#[test]
fn startup_delay_and_down_timer_adverts_move_running_timers() {
    let mut c = base();
    c.startup_delay = secs(10);
    let t0 = Instant::now();
    let mut vr = Instance::new(c.clone()).expect("valid");
    vr.handle(t0, Event::Startup);
    c.startup_delay = secs(2);
    vr.reconfigure(t0 + secs(1), c.clone()).expect("applies");
    assert_eq!(vr.poll_timeout(), Some(t0 + secs(2)));
    c.startup_delay = Duration::ZERO;
    vr.reconfigure(t0 + ms(1500), c.clone()).expect("applies");
    assert_eq!(vr.poll_timeout(), Some(t0 + ms(1500)), "never in the past");

    let mut c = base();
    c.priority = 50;
    let mut rig = Rig::new(c.clone());
    rig.rx(secs(1), "10.77.0.12", 100);
    c.down_timer_adverts = 5;
    rig.reconfigure(secs(2), c);
    assert_eq!(
        rig.vr.poll_timeout(),
        Some(rig.at(secs(1) + Duration::from_nanos(5_804_687_500)))
    );
}

#[test]
fn unicast_peers_source_and_auth_apply_to_the_next_advert() {
    let mut c = InstanceConfig::new(51, Version::V2, ip("10.77.0.11"), vec![ip("10.77.0.100")]);
    c.unicast_peers = Some(vec![Peer::new(ip("10.77.0.12"))]);
    c.auth = Auth::simple_text(b"old").expect("valid");
    let mut rig = Rig::master(c.clone());
    c.unicast_peers = Some(vec![
        Peer::new(ip("10.77.0.13")),
        Peer::new(ip("10.77.0.14")),
    ]);
    c.primary_address = ip("10.77.0.15");
    c.auth = Auth::simple_text(b"new").expect("valid");
    let done = rig.reconfigure(secs(4), c.clone());
    assert_eq!(
        done.changed,
        vec![
            ConfigField::PrimaryAddress,
            ConfigField::Auth,
            ConfigField::UnicastPeers
        ]
    );
    assert_eq!(rig.vr.master_address(), Some(ip("10.77.0.15")));
    let sent = rig.run_to(secs(5));
    let Some((_, Action::SendAdvert(out))) = sent.first() else {
        panic!("an advert: {sent:?}");
    };
    assert_eq!(out.src, ip("10.77.0.15"));
    assert_eq!(out.advert.auth, c.auth);
    let dsts: Vec<IpAddr> = out.datagrams.iter().map(|d| d.dst).collect();
    assert_eq!(dsts, vec![ip("10.77.0.13"), ip("10.77.0.14")]);
}

#[test]
fn twenty_reloads_of_a_running_pair_move_nothing() {
    let mut lan = Lan::new();
    let mut d = base();
    let mut b = InstanceConfig::new(51, Version::V3, ip("10.77.0.12"), vec![ip("10.77.0.100")]);
    b.priority = 50;
    let a = lan.router("director", vec![d.clone()]);
    let r = lan.router("backup", vec![b.clone()]);
    lan.start(a);
    lan.start(r);
    lan.run_until(secs(10));
    let before = lan.log.len();
    for k in 0..20u64 {
        lan.run_for(ms(437));
        // Every other reload changes what can change without a transition.
        if k % 2 == 1 {
            d.priority = if d.priority == 100 { 110 } else { 100 };
            d.garp.master_repeat = 3 + (k % 3) as u32;
            b.preempt_delay = secs(k % 4);
            b.higher_prio_send_advert = !b.higher_prio_send_advert;
        }
        lan.reconfigure(a, 0, d.clone()).expect("in place");
        lan.reconfigure(r, 0, b.clone()).expect("in place");
        assert!(lan.routers[a].holds_vips.contains(&VR51));
    }
    lan.run_for(secs(10));
    let moved: Vec<_> = lan.log[before..]
        .iter()
        .filter(|rec| !matches!(rec.what, Happened::Sent { .. }))
        .collect();
    assert!(moved.is_empty(), "{moved:?}");
    assert_eq!(lan.client_arp[&VR51].0, a);
    assert_eq!(lan.inst(r, 0).stats().drops.total(), 0);
}

#[test]
fn adding_an_address_on_a_running_pair_keeps_the_master() {
    let mut lan = Lan::new();
    let d = base();
    let mut b = InstanceConfig::new(51, Version::V3, ip("10.77.0.12"), vec![ip("10.77.0.100")]);
    b.priority = 50;
    let a = lan.router("director", vec![d.clone()]);
    let r = lan.router("backup", vec![b.clone()]);
    lan.start(a);
    lan.start(r);
    lan.run_until(secs(10));
    // The operator reloads the backup first, then the master, 200 ms apart: in between
    // the backup drops the master's adverts (address list differs) but Master_Down is
    // far away.
    let vips = vec![ip("10.77.0.100"), ip("10.77.0.101")];
    b.virtual_addresses = vips.clone();
    lan.reconfigure(r, 0, b).expect("in place");
    lan.run_for(ms(700));
    let mut d2 = d;
    d2.virtual_addresses = vips;
    let done = lan.reconfigure(a, 0, d2).expect("in place");
    assert_eq!(done.add_vips, vec![ip("10.77.0.101")]);
    assert!(lan.routers[a].addrs.contains(&ip("10.77.0.101")));
    lan.run_for(secs(10));
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.inst(r, 0).stats().drops.total(), 1);
    assert!(lan.transitions(a, VR51, secs(10)).is_empty());
}

// ----- properties

#[derive(Clone, Debug)]
enum Op {
    Advance(u16),
    Startup,
    Shutdown,
    InterfaceUp,
    InterfaceDown,
    SetPriority(u8),
    Rx { host: u8, priority: u8 },
    ReloadSame,
    Reload(Change),
}

#[derive(Clone, Debug)]
enum Change {
    Priority(u8),
    Interval(u16),
    Preempt(bool, u16),
    Vips(u8),
    Garp(u32, Option<u16>),
    DownAdverts(u8),
    Startup(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..3000).prop_map(Op::Advance),
        1 => Just(Op::Startup),
        1 => Just(Op::Shutdown),
        1 => Just(Op::InterfaceUp),
        1 => Just(Op::InterfaceDown),
        1 => any::<u8>().prop_map(Op::SetPriority),
        5 => (1u8..5, any::<u8>()).prop_map(|(host, priority)| Op::Rx { host, priority }),
        3 => Just(Op::ReloadSame),
        3 => change().prop_map(Op::Reload),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (1u8..=255).prop_map(Change::Priority),
        prop_oneof![Just(100u16), Just(50), Just(300)].prop_map(Change::Interval),
        (any::<bool>(), prop_oneof![Just(0u16), Just(1500)])
            .prop_map(|(p, d)| Change::Preempt(p, d)),
        (1u8..4).prop_map(Change::Vips),
        (0u32..4, prop::option::of(500u16..3000)).prop_map(|(r, f)| Change::Garp(r, f)),
        (1u8..6).prop_map(Change::DownAdverts),
        prop_oneof![Just(0u16), Just(800)].prop_map(Change::Startup),
    ]
}

fn apply(cfg: &InstanceConfig, change: &Change) -> InstanceConfig {
    let mut c = cfg.clone();
    match *change {
        Change::Priority(p) => c.priority = p,
        Change::Interval(cs) => {
            c.advert_interval = AdvertInterval::from_centis(cs).expect("non-zero");
        }
        Change::Preempt(p, d) => {
            c.preempt = p;
            c.preempt_delay = if p { ms(u64::from(d)) } else { Duration::ZERO };
        }
        Change::Vips(n) => {
            c.virtual_addresses = (0..n)
                .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100 + i)))
                .collect();
        }
        Change::Garp(repeat, refresh) => {
            c.garp.master_repeat = repeat;
            c.garp.master_refresh = refresh.map(|r| ms(u64::from(r)));
        }
        Change::DownAdverts(n) => c.down_timer_adverts = n,
        Change::Startup(d) => c.startup_delay = ms(u64::from(d)),
    }
    c
}

/// The driver's view: which addresses are configured, and the notification chain.
struct Driver {
    addrs: Vec<IpAddr>,
    state: State,
}

impl Driver {
    fn drain(&mut self, vr: &mut Instance) -> Result<(), TestCaseError> {
        while let Some(a) = vr.poll_action() {
            match a {
                Action::AddVips { .. } => {
                    prop_assert!(self.addrs.is_empty(), "addresses added twice");
                    self.addrs = vr.config().virtual_addresses.clone();
                }
                Action::RemoveVips => self.addrs.clear(),
                Action::Notify(t) => {
                    prop_assert_eq!(t.from, self.state, "notification chain broken");
                    self.state = t.to;
                }
                Action::SendAdvert(out) => {
                    prop_assert_eq!(&out.advert.addresses, &vr.config().virtual_addresses);
                }
                Action::Announce | Action::Dropped { .. } => {}
            }
        }
        prop_assert_eq!(self.state, vr.state());
        if vr.state() == State::Master {
            let mut held = self.addrs.clone();
            let mut want = vr.config().virtual_addresses.clone();
            held.sort();
            want.sort();
            prop_assert_eq!(held, want, "a master holds exactly its addresses");
        } else {
            prop_assert!(self.addrs.is_empty(), "only a master holds addresses");
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reloads_keep_the_invariants_and_the_same_config_does_nothing(
        priority in 1u8..=255,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut cfg = InstanceConfig::new(
            51,
            Version::V3,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
        );
        cfg.priority = priority;
        let mut vr = Instance::new(cfg.clone()).expect("valid");
        let mut driver = Driver { addrs: Vec::new(), state: State::Initialize };
        for op in ops {
            if let Op::Advance(d) = op {
                now += ms(u64::from(d));
            }
            while let Some(d) = vr.poll_timeout().filter(|&d| d <= now) {
                vr.handle_timeout(d);
                driver.drain(&mut vr)?;
            }
            prop_assert!(vr.poll_timeout().is_none_or(|d| d > now), "timer left in the past");
            match op {
                Op::Advance(_) => {}
                Op::Startup => vr.handle(now, Event::Startup),
                Op::Shutdown => vr.handle(now, Event::Shutdown),
                Op::InterfaceUp => vr.handle(now, Event::InterfaceUp),
                Op::InterfaceDown => vr.handle(now, Event::InterfaceDown),
                Op::SetPriority(p) => vr.handle(now, Event::SetPriority(p)),
                Op::Rx { host, priority } => {
                    let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, host));
                    let dst = ip(MCAST);
                    let advert = Advert {
                        version: Version::V3,
                        vrid: 51,
                        priority,
                        max_adver_int: AdvertInterval::ONE_SECOND,
                        auth: Auth::None,
                        addresses: vr.config().virtual_addresses.clone(),
                    };
                    let bytes = advert.encode(src, dst).expect("encodes");
                    vr.handle(now, Event::AdvertReceived { src, dst, ttl: 255, bytes: &bytes });
                }
                Op::ReloadSame => {
                    let before = observable(&vr);
                    let done = vr.reconfigure(now, cfg.clone());
                    prop_assert_eq!(done, Ok(Reconfigured::default()));
                    prop_assert!(vr.poll_action().is_none(), "an unchanged reload emits nothing");
                    prop_assert_eq!(observable(&vr), before);
                }
                Op::Reload(change) => {
                    let new = apply(&cfg, &change);
                    let Ok(done) = vr.reconfigure(now, new.clone()) else {
                        // Only invalid combinations are refused (none change identity here).
                        prop_assert!(new.validate().is_err());
                        continue;
                    };
                    // The driver applies the address changes first.
                    driver.addrs.retain(|a| !done.remove_vips.contains(a));
                    driver.addrs.extend(done.add_vips.iter().copied());
                    prop_assert!(vr.poll_action().is_none());
                    cfg = new;
                }
            }
            driver.drain(&mut vr)?;
        }
    }
}
