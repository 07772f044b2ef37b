//! RFC 3768 / RFC 5798 scenarios on virtual time, between instances on a simulated LAN
//! (tests/sim): election, failover (crash, link down, shutdown), preemption,
//! nopreempt, preempt_delay, the address owner, priority 0, interval learning, split
//! brain and its heal, active/active instances (seed 004), independent IPv4 and IPv6
//! routers, unicast, tie-break, tracking.
//!
//! Times are exact: latency 100 µs, timers from `keeper_vrrp::timers`.

mod sim;

use std::time::Duration;

use keeper_vrrp::{
    AdvertInterval, Event, GarpConfig, InstanceConfig, Peer, State, Transition, TransitionReason,
    Version,
};
use sim::{Happened, Lan, Vr, ip, ms, secs};

const VR51: Vr = Vr {
    vrid: 51,
    ipv6: false,
};
const LAT: Duration = Duration::from_micros(100);
/// Master_Down_Interval at 1 s: priority 100 and 50.
const MDI_100: Duration = Duration::from_nanos(3_609_375_000);
const MDI_50: Duration = Duration::from_nanos(3_804_687_500);
const SKEW_50: Duration = Duration::from_nanos(804_687_500);

fn cfg(vrid: u8, priority: u8, me: &str, vip: &str) -> InstanceConfig {
    let mut c = InstanceConfig::new(vrid, Version::V3, ip(me), vec![ip(vip)]);
    c.priority = priority;
    c
}

fn director() -> InstanceConfig {
    cfg(51, 100, "10.77.0.11", "10.77.0.100")
}

fn backup() -> InstanceConfig {
    cfg(51, 50, "10.77.0.12", "10.77.0.100")
}

/// Director (100) and backup (50), started together; the director is master from
/// 3.609375 s, advertising at 3.609375 + k s.
fn pair(d: InstanceConfig, b: InstanceConfig) -> (Lan, usize, usize) {
    let mut lan = Lan::new();
    let a = lan.router("director", vec![d]);
    let b = lan.router("backup", vec![b]);
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(10));
    (lan, a, b)
}

fn notify(from: State, to: State, reason: TransitionReason) -> Happened {
    Happened::Notify(Transition { from, to, reason })
}

#[test]
fn election_highest_priority_wins_after_master_down() {
    let (lan, a, b) = pair(director(), backup());
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    assert_eq!(lan.became_master_at(a, VR51), Some(MDI_100));
    assert_eq!(lan.became_master_at(b, VR51), None, "{}", lan.dump());
    assert_eq!(lan.inst(b, 0).master_address(), Some(ip("10.77.0.11")));
    assert_eq!(lan.inst(b, 0).master_priority(), Some(100));
    assert_eq!(lan.client_arp.get(&VR51).map(|x| x.0), Some(a));
    assert!(lan.routers[a].holds_vips.contains(&VR51));
    assert!(!lan.routers[b].holds_vips.contains(&VR51));

    // Startup clears stale addresses, then Backup; the takeover goes advert first, then
    // addresses, then the GARP burst (5 rounds), then the notification.
    let mut expected = vec![
        (Duration::ZERO, Happened::RemoveVips),
        (
            Duration::ZERO,
            notify(State::Initialize, State::Backup, TransitionReason::Startup),
        ),
        (MDI_100, Happened::Sent { priority: 100 }),
        (MDI_100, Happened::AddVips),
    ];
    expected.extend((0..5).map(|_| (MDI_100, Happened::Announce)));
    expected.push((
        MDI_100,
        notify(State::Backup, State::Master, TransitionReason::MasterDown),
    ));
    let got = lan.records(a, VR51, Duration::ZERO);
    assert_eq!(&got[..expected.len()], &expected[..]);
    // Then one advert per second and the second burst 5 s after the takeover.
    let later: Vec<_> = got[expected.len()..].to_vec();
    let mut want = Vec::new();
    for k in 1..=6u32 {
        let t = MDI_100 + secs(1) * k;
        if t > secs(10) {
            break;
        }
        want.push((t, Happened::Sent { priority: 100 }));
        if k == 5 {
            want.extend((0..5).map(|_| (t, Happened::Announce)));
        }
    }
    assert_eq!(later, want);
    assert_eq!(lan.inst(a, 0).stats().announce_rounds, 10);
    assert_eq!(lan.inst(b, 0).stats().adverts_received, 7);
    assert_eq!(lan.inst(b, 0).stats().drops.total(), 0);
}

/// The director's last advert before 10 s went out at 9.609375 s.
const LAST_ADVERT: Duration = Duration::from_nanos(9_609_375_000);

#[test]
fn failover_on_crash_after_master_down() {
    let (mut lan, a, b) = pair(director(), backup());
    lan.crash(a);
    lan.run_until(secs(20));
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(LAST_ADVERT + LAT + MDI_50),
        "{}",
        lan.dump()
    );
    assert_eq!(lan.client_arp.get(&VR51).map(|x| x.0), Some(b));
    // A SIGKILLed master leaves its addresses configured (measured with keepalived).
    assert!(lan.routers[a].holds_vips.contains(&VR51));
}

#[test]
fn failover_on_link_down() {
    let (mut lan, a, b) = pair(director(), backup());
    lan.link_down(a);
    assert_eq!(lan.state(a, 0), State::Fault);
    // The priority-0 advert is attempted (it helps when the fault is a tracked object)
    // but this link is down, so the backup waits Master_Down.
    assert_eq!(
        lan.records(a, VR51, secs(10)),
        vec![
            (secs(10), Happened::Sent { priority: 0 }),
            (secs(10), Happened::RemoveVips),
            (
                secs(10),
                notify(State::Master, State::Fault, TransitionReason::InterfaceDown)
            ),
        ]
    );
    lan.run_until(secs(20));
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(LAST_ADVERT + LAT + MDI_50)
    );
    assert!(!lan.routers[a].holds_vips.contains(&VR51));
    // Link back: the director (priority 100, preempt) waits Master_Down, then preempts.
    lan.link_up(a);
    assert_eq!(lan.state(a, 0), State::Backup);
    lan.run_until(secs(40));
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    assert_eq!(lan.became_master_at(a, VR51), Some(secs(20) + MDI_100));
}

#[test]
fn graceful_shutdown_sends_priority_zero_and_backup_takes_over_after_skew() {
    let (mut lan, a, b) = pair(director(), backup());
    lan.stop(a);
    assert_eq!(
        lan.records(a, VR51, secs(10)),
        vec![
            (secs(10), Happened::Sent { priority: 0 }),
            (secs(10), Happened::RemoveVips),
            (
                secs(10),
                notify(State::Master, State::Initialize, TransitionReason::Shutdown)
            ),
        ]
    );
    lan.run_until(secs(20));
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(secs(10) + LAT + SKEW_50)
    );
    let last = lan.records(b, VR51, Duration::ZERO);
    assert!(last.contains(&(
        secs(10) + LAT + SKEW_50,
        notify(
            State::Backup,
            State::Master,
            TransitionReason::MasterReleased
        )
    )));
    assert_eq!(lan.inst(b, 0).stats().priority_zero_received, 1);
}

#[test]
fn after_priority_zero_the_highest_backup_wins() {
    let mut lan = Lan::new();
    let a = lan.router("director", vec![director()]);
    let b = lan.router("backup", vec![backup()]);
    let c = lan.router("third", vec![cfg(51, 30, "10.77.0.13", "10.77.0.100")]);
    for r in [a, b, c] {
        lan.start(r);
    }
    lan.run_until(secs(10));
    lan.stop(a);
    lan.run_until(secs(20));
    // Priority 50 waits 0.8047 s, priority 30 0.8828 s: 50 wins, 30 hears it in time.
    assert_eq!(lan.masters(0), vec![b], "{}", lan.dump());
    assert_eq!(lan.became_master_at(c, VR51), None);
}

#[test]
fn master_answers_priority_zero_from_another_router() {
    let (mut lan, a, b) = pair(director(), backup());
    // A confused backup sends priority 0 (as if it were a stopping master).
    let zero = keeper_vrrp::Advert {
        version: Version::V3,
        vrid: 51,
        priority: 0,
        max_adver_int: AdvertInterval::ONE_SECOND,
        auth: keeper_vrrp::Auth::None,
        addresses: vec![ip("10.77.0.100")],
    };
    let bytes = zero
        .encode(ip("10.77.0.12"), ip("224.0.0.18"))
        .expect("encodes");
    lan.event(
        a,
        0,
        Event::AdvertReceived {
            src: ip("10.77.0.12"),
            dst: ip("224.0.0.18"),
            ttl: 255,
            bytes: &bytes,
        },
    );
    assert_eq!(
        lan.records(a, VR51, secs(10)),
        vec![(secs(10), Happened::Sent { priority: 100 })]
    );
    assert_eq!(lan.state(a, 0), State::Master);
    // The advert timer restarted from the answer.
    assert_eq!(lan.inst(a, 0).poll_timeout(), Some(lan.at(secs(11))));
    let _ = b;
}

#[test]
fn preemption_back_after_restart_reannounces_at_once() {
    let (mut lan, a, b) = pair(director(), backup());
    lan.crash(a);
    lan.run_until(secs(20));
    assert_eq!(lan.masters(0), vec![b]);
    lan.restart(a);
    // Start-up removed the addresses the crashed process left behind.
    assert!(!lan.routers[a].holds_vips.contains(&VR51));
    lan.run_until(secs(20) + MDI_100 + ms(1));
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    let t = secs(20) + MDI_100;
    assert_eq!(lan.became_master_at(a, VR51), Some(t));
    // The backup heard the higher priority, sent one advert at its own priority, then
    // released; the director heard that lower priority and re-announced.
    assert_eq!(
        lan.records(b, VR51, t),
        vec![
            (t + LAT, Happened::Sent { priority: 50 }),
            (t + LAT, Happened::RemoveVips),
            (
                t + LAT,
                notify(
                    State::Master,
                    State::Backup,
                    TransitionReason::HigherPriority
                )
            ),
        ]
    );
    let a_after: Vec<_> = lan
        .records(a, VR51, t + LAT)
        .into_iter()
        .take_while(|(at, _)| *at <= t + LAT * 2)
        .collect();
    let mut want = vec![(t + LAT * 2, Happened::Sent { priority: 100 })];
    want.extend((0..5).map(|_| (t + LAT * 2, Happened::Announce)));
    assert_eq!(a_after, want);
    assert_eq!(lan.client_arp.get(&VR51), Some(&(a, t + LAT * 2)));
    assert!(!lan.routers[b].holds_vips.contains(&VR51));
}

#[test]
fn nopreempt_keeps_the_current_master() {
    let mut d = director();
    d.preempt = false;
    let (mut lan, a, b) = pair(d, backup());
    // Initial election is not preemption: the director still wins it.
    assert_eq!(lan.masters(0), vec![a]);
    lan.crash(a);
    lan.run_until(secs(20));
    lan.restart(a);
    lan.run_until(secs(80));
    assert_eq!(lan.masters(0), vec![b], "{}", lan.dump());
    assert_eq!(lan.state(a, 0), State::Backup);
    assert_eq!(lan.inst(a, 0).master_address(), Some(ip("10.77.0.12")));
}

#[test]
fn preempt_delay_holds_the_lower_master_for_the_delay() {
    let mut d = director();
    d.preempt_delay = secs(10);
    let (mut lan, a, b) = pair(d, backup());
    lan.crash(a);
    lan.run_until(secs(20));
    // The backup advertises at 13.4141625 + k s.
    let backup_phase = LAST_ADVERT + LAT + MDI_50;
    lan.restart(a);
    lan.run_until(secs(60));
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    // The first lower-priority advert arrives at 20.4142625 s and starts the 10 s delay;
    // adverts are accepted until the deadline (exclusive), so the last one accepted
    // arrives at 29.4142625 s and Master_Down runs from there.
    let first_heard = backup_phase + secs(7) + LAT;
    assert_eq!(first_heard, Duration::from_nanos(20_414_262_500));
    let last_accepted = first_heard + secs(9);
    assert_eq!(lan.became_master_at(a, VR51), Some(last_accepted + MDI_100));
    let _ = b;
}

#[test]
fn owner_becomes_master_at_once_and_the_lower_master_yields() {
    let mut lan = Lan::new();
    let b = lan.router("backup", vec![backup()]);
    lan.start(b);
    lan.run_until(secs(10));
    assert_eq!(lan.masters(0), vec![b]);
    let mut owner = director();
    owner.priority = 255;
    let a = lan.router("owner", vec![owner]);
    lan.start(a);
    // No RemoveVips, no Backup: master at once.
    let start = lan.records(a, VR51, secs(10));
    assert_eq!(start[0], (secs(10), Happened::Sent { priority: 255 }));
    assert_eq!(start[1], (secs(10), Happened::AddVips));
    assert_eq!(
        start.last(),
        Some(&(
            secs(10),
            notify(State::Initialize, State::Master, TransitionReason::Owner)
        ))
    );
    lan.run_until(secs(20));
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
}

#[test]
fn owner_with_startup_delay_waits_the_delay() {
    let mut lan = Lan::new();
    let mut owner = director();
    owner.priority = 255;
    owner.startup_delay = secs(5);
    let a = lan.router("owner", vec![owner]);
    lan.start(a);
    assert_eq!(lan.state(a, 0), State::Initialize);
    assert_eq!(
        lan.records(a, VR51, Duration::ZERO),
        vec![(Duration::ZERO, Happened::RemoveVips)]
    );
    lan.run_until(secs(10));
    assert_eq!(lan.became_master_at(a, VR51), Some(secs(5)));
}

#[test]
fn startup_delay_ignores_adverts_and_counts_master_down_from_its_end() {
    let mut lan = Lan::new();
    let a = lan.router("director", vec![director()]);
    let mut late = backup();
    late.startup_delay = secs(2);
    let b = lan.router("backup", vec![late]);
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(5));
    // The director's first advert (3.609375 s) arrived after the delay: accepted.
    assert_eq!(lan.inst(b, 0).stats().drops.total(), 0);
    assert_eq!(lan.state(b, 0), State::Backup);
    let b_log = lan.records(b, VR51, Duration::ZERO);
    assert_eq!(
        b_log[..2],
        [
            (Duration::ZERO, Happened::RemoveVips),
            (
                secs(2),
                notify(State::Initialize, State::Backup, TransitionReason::Startup)
            )
        ]
    );

    // Now a backup that starts while the director is master, with a 3 s delay: the two
    // adverts inside the delay are dropped as not-active.
    let mut late = cfg(51, 20, "10.77.0.13", "10.77.0.100");
    late.startup_delay = secs(3);
    let c = lan.router("late", vec![late]);
    lan.start(c);
    lan.run_until(secs(9));
    assert_eq!(
        lan.inst(c, 0)
            .stats()
            .drops
            .get(keeper_vrrp::DropReason::NotActive),
        3,
        "{}",
        lan.dump()
    );
    assert_eq!(lan.state(c, 0), State::Backup);
}

#[test]
fn v3_backup_learns_the_master_interval() {
    let mut d = director();
    d.advert_interval = AdvertInterval::from_centis(50).expect("non-zero");
    let (mut lan, a, b) = pair(d, backup());
    assert_eq!(lan.masters(0), vec![a]);
    let half = AdvertInterval::from_centis(50).expect("non-zero");
    assert_eq!(lan.inst(b, 0).master_adver_interval(), half);
    // 3 x 0.5 s + 206/256 x 0.5 s
    assert_eq!(
        lan.inst(b, 0).master_down_interval(),
        Duration::from_nanos(1_902_343_750)
    );
    // The director took over at its own Master_Down: 3 x 0.5 + 156/256 x 0.5 s.
    let took = Duration::from_nanos(1_804_687_500);
    assert_eq!(lan.became_master_at(a, VR51), Some(took));
    lan.crash(a);
    lan.run_until(secs(20));
    // Last advert before 10 s: 1.8046875 + 16 x 0.5 = 9.8046875.
    let last = took + ms(500) * 16;
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(last + LAT + Duration::from_nanos(1_902_343_750))
    );
    // As master it advertises at its own interval again.
    assert_eq!(
        lan.inst(b, 0).master_adver_interval(),
        AdvertInterval::ONE_SECOND
    );
}

#[test]
fn v2_pair_with_password() {
    let mut d = InstanceConfig::new(51, Version::V2, ip("10.77.0.11"), vec![ip("10.77.0.100")]);
    d.auth = keeper_vrrp::Auth::simple_text(b"s3cret").expect("password");
    let mut b = d.clone();
    b.primary_address = ip("10.77.0.12");
    b.priority = 50;
    let (mut lan, a, b) = pair(d, b);
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.inst(b, 0).stats().drops.total(), 0);
    lan.crash(a);
    lan.run_until(secs(20));
    // v2 skew is (256 - 50) / 256 s.
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(LAST_ADVERT + LAT + MDI_50)
    );
}

#[test]
fn equal_priority_tie_break_on_the_primary_address() {
    let mut hi = backup();
    hi.priority = 100;
    let (mut lan, a, b) = pair(director(), hi);
    // Both time out at the same instant and both claim master; the higher address keeps it.
    lan.run_until(secs(20));
    assert_eq!(lan.masters(0), vec![b], "{}", lan.dump());
    assert_eq!(lan.client_arp.get(&VR51).map(|x| x.0), Some(b));
    assert_eq!(lan.state(a, 0), State::Backup);
}

/// Split brain between the director (100) and the backup (50) from 10 s to `heal`.
fn split_brain(heal: Duration, backup_sends_on_higher: bool) -> (Lan, usize, usize) {
    let mut b_cfg = backup();
    b_cfg.higher_prio_send_advert = backup_sends_on_higher;
    let (mut lan, a, b) = pair(director(), b_cfg);
    lan.partition(a, b, true);
    lan.run_until(secs(18));
    assert_eq!(lan.masters(0), vec![a, b], "{}", lan.dump());
    // The backup announced last, so the client follows it.
    assert_eq!(lan.client_arp.get(&VR51).map(|x| x.0), Some(b));
    lan.run_until(heal);
    assert_eq!(lan.client_arp.get(&VR51).map(|x| x.0), Some(b));
    lan.partition(a, b, false);
    (lan, a, b)
}

#[test]
fn split_brain_heals_when_the_winner_speaks_first() {
    // The director advertises at x.609375; the backup (master since 13.4141625) at
    // x.4141625. Healing at 20.5 s: the director's advert crosses first.
    let heal = ms(20_500);
    let (mut lan, a, b) = split_brain(heal, true);
    lan.run_until(heal + secs(1));
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    let crossed = ms(20_609) + Duration::from_micros(375) + LAT;
    // The loser sent one advert at its own priority, then released...
    assert_eq!(
        lan.records(b, VR51, heal)[..3],
        [
            (crossed, Happened::Sent { priority: 50 }),
            (crossed, Happened::RemoveVips),
            (
                crossed,
                notify(
                    State::Master,
                    State::Backup,
                    TransitionReason::HigherPriority
                )
            ),
        ]
    );
    // ...so the winner heard a lower priority and re-announced 200 µs after its advert.
    let (who, since) = lan.client_arp[&VR51];
    assert_eq!((who, since), (a, crossed + LAT));
    assert!(since - heal < secs(1));
    assert!(!lan.routers[b].holds_vips.contains(&VR51));
}

#[test]
fn split_brain_heals_when_the_loser_speaks_first() {
    // Healing at 21.0 s: the backup's advert at 21.4141625 crosses first.
    let heal = secs(21);
    let (mut lan, a, b) = split_brain(heal, true);
    lan.run_until(heal + secs(1));
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    let crossed = Duration::from_nanos(21_414_162_500) + LAT;
    // The winner answers the lower priority at once: advert and GARP burst.
    let first_announce = lan
        .records(a, VR51, heal)
        .into_iter()
        .find(|(_, h)| *h == Happened::Announce)
        .map(|(at, _)| at);
    assert_eq!(first_announce, Some(crossed));
    // The loser then sends its one advert before yielding, which the winner answers
    // again (a second burst 200 µs later; harmless).
    assert_eq!(lan.client_arp[&VR51], (a, crossed + LAT * 2));
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(MDI_50 + LAST_ADVERT + LAT)
    );
    assert!(!lan.routers[b].holds_vips.contains(&VR51));
}

#[test]
fn without_higher_prio_send_advert_the_client_keeps_the_losers_mac() {
    // keepalived's default, and the weakness measured in the lab: the loser steps down
    // silently, the winner never hears a lower priority and sends no GARP.
    let heal = ms(20_500);
    let (mut lan, a, b) = split_brain(heal, false);
    lan.run_until(heal + secs(30));
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.client_arp.get(&VR51).map(|x| x.0), Some(b));
}

#[test]
fn active_active_two_instances_on_one_pair() {
    // Seed 004: VI_1 (VRID 51) prefers server A, VI_2 (VRID 52) prefers server B.
    let vr52 = Vr {
        vrid: 52,
        ipv6: false,
    };
    let mut lan = Lan::new();
    let a = lan.router(
        "server-a",
        vec![
            cfg(51, 100, "192.168.200.128", "192.168.200.100"),
            cfg(52, 10, "192.168.200.128", "192.168.200.200"),
        ],
    );
    let b = lan.router(
        "server-b",
        vec![
            cfg(51, 10, "192.168.200.129", "192.168.200.100"),
            cfg(52, 100, "192.168.200.129", "192.168.200.200"),
        ],
    );
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(10));
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.masters(1), vec![b]);
    assert_eq!(lan.client_arp[&VR51].0, a);
    assert_eq!(lan.client_arp[&vr52].0, b);
    lan.crash(b);
    lan.run_until(secs(20));
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.masters(1), vec![a]);
    assert_eq!(lan.client_arp[&vr52].0, a);
    lan.restart(b);
    lan.run_until(secs(30));
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    assert_eq!(lan.masters(1), vec![b]);
    assert_eq!(lan.client_arp[&vr52].0, b);
    assert_eq!(lan.client_arp[&VR51].0, a);
}

#[test]
fn ipv4_and_ipv6_routers_with_one_vrid_are_independent() {
    let v6 = Vr {
        vrid: 51,
        ipv6: true,
    };
    let mut lan = Lan::new();
    let a = lan.router(
        "director",
        vec![director(), cfg(51, 50, "fe80::11", "fd77::100")],
    );
    let b = lan.router(
        "backup",
        vec![backup(), cfg(51, 100, "fe80::12", "fd77::100")],
    );
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(10));
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.masters(1), vec![b]);
    assert_eq!(lan.client_arp[&VR51].0, a);
    assert_eq!(lan.client_arp[&v6].0, b);
    assert_eq!(lan.inst(a, 1).master_address(), Some(ip("fe80::12")));
    for r in [a, b] {
        for i in 0..2 {
            assert_eq!(lan.inst(r, i).stats().drops.total(), 0, "{}", lan.dump());
        }
    }
}

#[test]
fn unicast_pair() {
    let mut d = director();
    d.unicast_peers = Some(vec![Peer::new(ip("10.77.0.12"))]);
    let mut b_cfg = backup();
    b_cfg.unicast_peers = Some(vec![Peer {
        addr: ip("10.77.0.11"),
        min_ttl: 250,
        max_ttl: 255,
    }]);
    let (mut lan, a, b) = pair(d, b_cfg);
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.inst(b, 0).stats().adverts_received, 7);
    lan.stop(a);
    lan.run_until(secs(20));
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(secs(10) + LAT + SKEW_50)
    );
}

#[test]
fn tracking_lowers_the_master_below_the_backup() {
    let (mut lan, a, b) = pair(director(), backup());
    lan.event(a, 0, Event::SetPriority(40));
    assert_eq!(lan.inst(a, 0).effective_priority(), 40);
    lan.run_until(secs(20));
    // The backup discards the 40-priority adverts (preempt) and takes over at
    // Master_Down after the last 100-priority advert.
    assert_eq!(
        lan.became_master_at(b, VR51),
        Some(LAST_ADVERT + LAT + MDI_50),
        "{}",
        lan.dump()
    );
    let took = LAST_ADVERT + LAT + MDI_50;
    assert!(lan.records(b, VR51, took).contains(&(
        took,
        notify(State::Backup, State::Master, TransitionReason::Preempted)
    )));
    assert_eq!(lan.masters(0), vec![b]);
    assert_eq!(lan.client_arp[&VR51].0, b);
    // Tracking recovers: the director preempts back.
    lan.event(a, 0, Event::SetPriority(100));
    lan.run_until(secs(30));
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.client_arp[&VR51].0, a);
}

#[test]
fn set_priority_is_clamped() {
    let mut lan = Lan::new();
    let a = lan.router("director", vec![director()]);
    lan.event(a, 0, Event::SetPriority(0));
    assert_eq!(lan.inst(a, 0).effective_priority(), 1);
    lan.event(a, 0, Event::SetPriority(255));
    assert_eq!(lan.inst(a, 0).effective_priority(), 254);
}

#[test]
fn garp_schedule_bursts_repeat_and_refresh() {
    let mut d = director();
    d.garp = GarpConfig {
        master_delay: secs(2),
        master_repeat: 3,
        master_refresh: Some(secs(10)),
        master_refresh_repeat: 2,
        interval: ms(100),
    };
    let mut lan = Lan::new();
    let a = lan.router("director", vec![d]);
    lan.start(a);
    lan.run_until(secs(30));
    let t = MDI_100;
    let announces: Vec<Duration> = lan
        .records(a, VR51, Duration::ZERO)
        .into_iter()
        .filter(|(_, h)| *h == Happened::Announce)
        .map(|(at, _)| at)
        .collect();
    let offsets = [
        0, 100, 200, 2000, 2100, 2200, 12_000, 12_100, 22_000, 22_100,
    ];
    let want: Vec<Duration> = offsets.iter().map(|&o| t + ms(o)).collect();
    assert_eq!(announces, want);
    // Leaving master stops the schedule.
    lan.stop(a);
    assert_eq!(lan.inst(a, 0).poll_timeout(), None);
}

#[test]
fn shutdown_and_start_again() {
    let (mut lan, a, b) = pair(director(), backup());
    lan.event(b, 0, Event::Shutdown);
    assert_eq!(lan.state(b, 0), State::Initialize);
    assert_eq!(lan.inst(b, 0).poll_timeout(), None);
    lan.run_until(secs(12));
    lan.event(b, 0, Event::Startup);
    assert_eq!(lan.state(b, 0), State::Backup);
    assert_eq!(
        lan.inst(b, 0).poll_timeout(),
        Some(lan.at(secs(12) + MDI_50))
    );
    lan.run_until(secs(20));
    assert_eq!(lan.masters(0), vec![a]);
}

#[test]
fn fault_on_interface_down_and_back() {
    let (mut lan, a, b) = pair(director(), backup());
    lan.link_down(b);
    assert_eq!(lan.state(b, 0), State::Fault);
    assert_eq!(lan.inst(b, 0).poll_timeout(), None);
    lan.link_up(b);
    assert_eq!(lan.state(b, 0), State::Backup);
    lan.run_until(secs(20));
    assert_eq!(lan.masters(0), vec![a]);
    // An owner leaves Fault straight to Master.
    let mut owner = cfg(52, 255, "10.77.0.11", "10.77.0.200");
    owner.garp.master_repeat = 1;
    let o = lan.router("owner", vec![owner]);
    lan.event(o, 0, Event::InterfaceDown);
    lan.start(o);
    assert_eq!(lan.state(o, 0), State::Fault);
    lan.event(o, 0, Event::InterfaceUp);
    assert_eq!(lan.state(o, 0), State::Master);
}
