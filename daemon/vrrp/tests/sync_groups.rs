//! vrrp_sync_group scenarios on the simulated LAN: two routers, each with two instances
//! on two interfaces (segments) in one sync group. A fault on one interface moves both
//! virtual addresses; recovery moves both back; nothing flaps. The simulator checks after
//! every settle that the running members agree with their group.
//!
//! Times are exact: latency 100 µs, timers from `keeper_vrrp::timers`.

mod sim;

use std::time::Duration;

use keeper_vrrp::{
    Event, GroupTransition, InstanceConfig, State, TrackerKind, Tracking, Transition,
    TransitionReason, Version, Weight,
};
use sim::{Happened, Lan, Vr, ip, secs};

const VR51: Vr = Vr {
    vrid: 51,
    ipv6: false,
};
const VR52: Vr = Vr {
    vrid: 52,
    ipv6: false,
};
const LAT: Duration = Duration::from_micros(100);
const MDI_100: Duration = Duration::from_nanos(3_609_375_000);
const MDI_50: Duration = Duration::from_nanos(3_804_687_500);
const SKEW_50: Duration = Duration::from_nanos(804_687_500);
/// The director's last adverts before 10 s went out at 9.609375 s.
const LAST_ADVERT: Duration = Duration::from_nanos(9_609_375_000);

fn cfg(vrid: u8, priority: u8, me: &str, vip: &str) -> InstanceConfig {
    let mut c = InstanceConfig::new(vrid, Version::V3, ip(me), vec![ip(vip)]);
    c.priority = priority;
    c
}

/// A router with VI_1 (VRID 51) on eth0 and VI_2 (VRID 52) on eth1, in one group.
fn grouped(lan: &mut Lan, name: &str, host: u8, priority: u8) -> usize {
    let r = lan.router_on(
        name,
        vec![
            (
                0,
                cfg(51, priority, &format!("10.77.0.{host}"), "10.77.0.100"),
            ),
            (
                1,
                cfg(52, priority, &format!("10.78.0.{host}"), "10.78.0.100"),
            ),
        ],
    );
    lan.group(r, vec![0, 1]);
    r
}

/// Director (100) and backup (50), started together and settled at 10 s: the director
/// is master of both since Master_Down at priority 100.
fn pair() -> (Lan, usize, usize) {
    let mut lan = Lan::new();
    let a = grouped(&mut lan, "director", 11, 100);
    let b = grouped(&mut lan, "backup", 12, 50);
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(10));
    (lan, a, b)
}

fn group(from: State, to: State, cause: Option<usize>) -> GroupTransition {
    GroupTransition { from, to, cause }
}

fn t(from: State, to: State, reason: TransitionReason) -> Transition {
    Transition { from, to, reason }
}

fn assert_owner(lan: &Lan, r: usize) {
    for vr in [VR51, VR52] {
        assert_eq!(
            lan.client_arp.get(&vr).map(|x| x.0),
            Some(r),
            "{vr:?}\n{}",
            lan.dump()
        );
        assert!(lan.routers[r].holds_vips.contains(&vr), "{}", lan.dump());
    }
    for other in 0..lan.routers.len() {
        if other != r {
            assert!(lan.routers[other].holds_vips.is_empty(), "{}", lan.dump());
        }
    }
}

#[test]
fn the_group_is_elected_together() {
    let (lan, a, b) = pair();
    assert_eq!(lan.masters(0), vec![a], "{}", lan.dump());
    assert_eq!(lan.masters(1), vec![a]);
    assert_owner(&lan, a);
    // VI_1's Master_Down expires first and waits for VI_2 (same instant, next in order).
    for vr in [VR51, VR52] {
        assert_eq!(lan.became_master_at(a, vr), Some(MDI_100));
    }
    assert_eq!(
        lan.transitions(a, VR51, Duration::ZERO),
        vec![
            (
                Duration::ZERO,
                t(State::Initialize, State::Backup, TransitionReason::Startup)
            ),
            (
                MDI_100,
                t(State::Backup, State::Master, TransitionReason::MasterDown)
            ),
        ]
    );
    // VI_2 completed the set; both wanted master, so both report why.
    assert_eq!(
        lan.transitions(a, VR52, MDI_100),
        vec![(
            MDI_100,
            t(State::Backup, State::Master, TransitionReason::MasterDown)
        )]
    );
    assert_eq!(
        lan.group_records(a, Duration::ZERO),
        vec![
            (
                Duration::ZERO,
                group(State::Initialize, State::Backup, None)
            ),
            (MDI_100, group(State::Backup, State::Master, None)),
        ]
    );
    assert_eq!(
        lan.group_records(b, Duration::ZERO),
        vec![(
            Duration::ZERO,
            group(State::Initialize, State::Backup, None)
        )]
    );
}

#[test]
fn a_fault_on_one_interface_moves_both_addresses_and_recovery_moves_them_back() {
    let (mut lan, a, b) = pair();
    lan.iface_down(a, 0);
    // VI_1 faults on its own link; the group pulls VI_2 to Fault with a priority-0 advert
    // on eth1 (VI_1's own priority 0 cannot leave the dead link).
    assert_eq!(lan.state(a, 0), State::Fault);
    assert_eq!(lan.state(a, 1), State::Fault);
    assert_eq!(
        lan.records(a, VR52, secs(10)),
        vec![
            (secs(10), Happened::Sent { priority: 0 }),
            (secs(10), Happened::RemoveVips),
            (
                secs(10),
                Happened::Notify(t(State::Master, State::Fault, TransitionReason::SyncGroup))
            ),
        ]
    );
    assert_eq!(
        lan.group_records(a, secs(10)),
        vec![(secs(10), group(State::Master, State::Fault, Some(0)))]
    );
    lan.run_until(secs(20));
    // B's VI_2 heard priority 0 and wants master after Skew_Time, but waits for VI_1,
    // which wants it when its Master_Down expires: both move at that instant.
    let took = LAST_ADVERT + LAT + MDI_50;
    for vr in [VR51, VR52] {
        assert_eq!(lan.became_master_at(b, vr), Some(took), "{}", lan.dump());
    }
    assert!(lan.inst(b, 1).stats().priority_zero_received == 1);
    assert_owner(&lan, b);
    assert!(lan.routers[a].addrs.is_empty());

    // Recovery: the director comes back as backup, preempts after Master_Down (both at
    // once) and the backup group steps down together.
    lan.iface_up(a, 0);
    assert_eq!(lan.state(a, 0), State::Backup);
    assert_eq!(lan.state(a, 1), State::Backup);
    assert_eq!(
        lan.transitions(a, VR51, secs(20)),
        vec![(
            secs(20),
            t(State::Fault, State::Backup, TransitionReason::InterfaceUp)
        )]
    );
    assert_eq!(
        lan.transitions(a, VR52, secs(20)),
        vec![(
            secs(20),
            t(State::Fault, State::Backup, TransitionReason::SyncGroup)
        )]
    );
    lan.run_until(secs(40));
    let back = secs(20) + MDI_100;
    for vr in [VR51, VR52] {
        assert_eq!(lan.became_master_at(a, vr), Some(back), "{}", lan.dump());
    }
    assert_owner(&lan, a);
    // No flapping: exactly one step each way since the fault. The director's VI_2
    // completed its group's wish, so its advert went out first: B's VI_2 hears the higher
    // priority, and B's group takes VI_1 along.
    assert_eq!(
        lan.transitions(b, VR51, secs(10)),
        vec![
            (
                took,
                t(State::Backup, State::Master, TransitionReason::MasterDown)
            ),
            (
                back + LAT,
                t(State::Master, State::Backup, TransitionReason::SyncGroup)
            ),
        ]
    );
    assert_eq!(
        lan.transitions(b, VR52, secs(10)),
        vec![
            (
                took,
                t(
                    State::Backup,
                    State::Master,
                    TransitionReason::MasterReleased
                )
            ),
            (
                back + LAT,
                t(
                    State::Master,
                    State::Backup,
                    TransitionReason::HigherPriority
                )
            ),
        ]
    );
    assert_eq!(
        lan.group_records(b, secs(10)),
        vec![
            (took, group(State::Backup, State::Master, None)),
            (back + LAT, group(State::Master, State::Backup, Some(1))),
        ]
    );
    assert_eq!(
        lan.group_records(a, secs(20)),
        vec![
            (secs(20), group(State::Fault, State::Backup, Some(0))),
            (back, group(State::Backup, State::Master, None)),
        ]
    );
    for vr in [VR51, VR52] {
        assert_eq!(
            lan.transitions(a, vr, back),
            vec![(
                back,
                t(State::Backup, State::Master, TransitionReason::Preempted)
            )]
        );
    }
    // B's VI_2 released without priority 0 (the peer group is taking over).
    assert_eq!(lan.inst(b, 1).stats().priority_zero_sent, 0);
    let settled = lan.log.len();
    lan.run_until(secs(60));
    assert!(
        lan.log[settled..]
            .iter()
            .all(|r| !matches!(r.what, Happened::Notify(_) | Happened::Group(_))),
        "nothing moves once settled\n{}",
        lan.dump()
    );
}

#[test]
fn a_flapping_link_moves_the_group_as_a_unit() {
    let (mut lan, a, b) = pair();
    for k in 0..3u64 {
        lan.run_until(secs(10) + Duration::from_millis(1000 * k));
        lan.iface_down(a, 1);
        lan.run_until(secs(10) + Duration::from_millis(1000 * k + 500));
        lan.iface_up(a, 1);
    }
    lan.run_until(secs(40));
    assert_owner(&lan, a);
    // The backup group took over once (the director's VI_1 priority 0 at 10 s made its
    // VI_1 want master; VI_2 followed at its Master_Down) and gave back once.
    for vr in [VR51, VR52] {
        let masters = lan
            .transitions(b, vr, Duration::ZERO)
            .iter()
            .filter(|(_, t)| t.to == State::Master)
            .count();
        assert_eq!(masters, 1, "{vr:?}\n{}", lan.dump());
    }
    // Every director transition came with its group's: members never split.
    let group_changes = lan.group_records(a, secs(10)).len();
    assert_eq!(group_changes, 3 * 2 + 1, "{}", lan.dump());
}

#[test]
fn one_member_still_hearing_its_master_keeps_the_group_backup() {
    let (mut lan, a, b) = pair();
    // eth0 silently stops carrying packets (nobody gets a link event): B's VI_1 no longer
    // hears the director and wants master, but VI_2 still hears it on eth1, so B stays
    // backup (keepalived prefers backup to thrashing).
    let heard = lan.inst(b, 0).stats().adverts_received;
    lan.routers[a].ifaces_down.insert(0);
    lan.run_until(secs(30));
    assert_eq!(lan.inst(b, 0).stats().adverts_received, heard);
    assert!(lan.inst(b, 0).wants_master(), "{}", lan.dump());
    assert!(!lan.inst(b, 1).wants_master());
    assert_eq!(lan.state(b, 0), State::Backup);
    assert_eq!(lan.state(b, 1), State::Backup);
    assert_eq!(lan.masters(0), vec![a]);
    assert_eq!(lan.group_records(b, secs(10)), vec![]);
    // eth1 fails silently too: now every member wants master and the group takes over.
    lan.routers[a].ifaces_down.insert(1);
    lan.run_until(secs(40));
    assert_eq!(lan.state(b, 0), State::Master, "{}", lan.dump());
    assert_eq!(lan.state(b, 1), State::Master);
}

#[test]
fn a_tracker_fault_on_one_member_hands_the_group_over_after_skew() {
    let (mut lan, a, b) = pair();
    let mut tracking = Tracking::new(100);
    let script = tracking.add(TrackerKind::Script, Weight::UNWEIGHTED);
    tracking.set_up(script, false);
    lan.event(a, 1, Event::Tracking(tracking.status()));
    assert_eq!(lan.state(a, 0), State::Fault);
    assert_eq!(lan.state(a, 1), State::Fault);
    assert_eq!(
        lan.transitions(a, VR52, secs(10)),
        vec![(
            secs(10),
            t(State::Master, State::Fault, TransitionReason::TrackFault)
        )]
    );
    // Both links are up: both priority-0 adverts arrive; both backups want master after
    // Skew_Time, and the group goes at once.
    lan.run_until(secs(20));
    for vr in [VR51, VR52] {
        assert_eq!(
            lan.became_master_at(b, vr),
            Some(secs(10) + LAT + SKEW_50),
            "{}",
            lan.dump()
        );
    }
    assert_owner(&lan, b);
    tracking.set_up(script, true);
    lan.event(a, 1, Event::Tracking(tracking.status()));
    assert_eq!(
        lan.transitions(a, VR52, secs(20)),
        vec![(
            secs(20),
            t(
                State::Fault,
                State::Backup,
                TransitionReason::TrackRecovered
            )
        )]
    );
    lan.run_until(secs(30));
    assert_owner(&lan, a);
}

#[test]
fn a_higher_priority_group_preempts_both_members() {
    let (mut lan, a, b) = pair();
    let mut vi1 = cfg(51, 150, "10.77.0.12", "10.77.0.100");
    let mut vi2 = cfg(52, 150, "10.78.0.12", "10.78.0.100");
    vi1.garp.master_repeat = 1;
    vi2.garp.master_repeat = 1;
    lan.reconfigure(b, 0, vi1).expect("applies in place");
    lan.reconfigure(b, 1, vi2).expect("applies in place");
    lan.run_until(secs(20));
    assert_owner(&lan, b);
    // The director's VI_1 and VI_2 hear 150 at the same instant: the first to hear it
    // (VI_2: B's VI_2 completed B's group and sent first) steps down for the higher
    // priority, the group takes the other along.
    let director: Vec<_> = [VR51, VR52]
        .iter()
        .map(|&vr| lan.transitions(a, vr, secs(10)))
        .collect();
    assert_eq!(director[0].len(), 1, "{}", lan.dump());
    assert_eq!(director[1].len(), 1, "{}", lan.dump());
    assert_eq!(director[0][0].1.reason, TransitionReason::SyncGroup);
    assert_eq!(director[1][0].1.reason, TransitionReason::HigherPriority);
}

#[test]
fn a_group_of_owners_is_master_at_start_and_a_mixed_group_waits() {
    let mut lan = Lan::new();
    let o = lan.router_on(
        "owner",
        vec![
            (0, cfg(61, 255, "10.77.0.100", "10.77.0.100")),
            (1, cfg(62, 255, "10.78.0.100", "10.78.0.100")),
        ],
    );
    lan.group(o, vec![0, 1]);
    lan.start(o);
    assert_eq!(lan.state(o, 0), State::Master, "{}", lan.dump());
    assert_eq!(lan.state(o, 1), State::Master);
    // An owner grouped with a non-owner wants master at once but waits for its partner.
    let m = lan.router_on(
        "mixed",
        vec![
            (2, cfg(71, 255, "10.79.0.100", "10.79.0.100")),
            (3, cfg(72, 100, "10.80.0.1", "10.80.0.100")),
        ],
    );
    lan.group(m, vec![0, 1]);
    lan.start(m);
    assert_eq!(lan.state(m, 0), State::Backup);
    assert!(lan.inst(m, 0).wants_master());
    let start = lan.elapsed();
    lan.run_until(start + secs(5));
    assert_eq!(lan.state(m, 0), State::Master);
    assert_eq!(
        lan.became_master_at(
            m,
            Vr {
                vrid: 71,
                ipv6: false
            }
        ),
        Some(start + MDI_100)
    );
}

#[test]
fn stopping_every_member_returns_the_group_to_initialize() {
    let (mut lan, a, _b) = pair();
    lan.stop(a);
    assert_eq!(lan.routers[a].groups[0].0.state(), State::Initialize);
    assert_eq!(
        lan.group_records(a, secs(10)),
        vec![(secs(10), group(State::Master, State::Initialize, None))]
    );
}

#[test]
fn split_brain_heal_reannounces_every_member() {
    let (mut lan, a, b) = pair();
    lan.partition(a, b, true);
    lan.run_until(secs(20));
    assert_eq!(lan.masters(0), vec![a, b]);
    assert_eq!(lan.masters(1), vec![a, b]);
    assert_eq!(lan.client_arp[&VR52].0, b, "the backup announced last");
    // Healed between adverts. The director's VI_1 advert reaches B first: B's VI_1 sends
    // one advert at 50 and steps down, its group takes VI_2 along silently, so the
    // director's VI_2 never hears a lower priority itself. VI_1's answer re-announces
    // VI_2's address too, or the client would keep B's MAC for 10.78.0.100.
    // (B advertises at .414162, the director at .609375: heal after B's.)
    let healed = Duration::from_millis(20_500);
    lan.run_until(healed);
    lan.partition(a, b, false);
    let advert = Duration::from_nanos(20_609_375_000);
    lan.run_until(advert + LAT * 3);
    assert_owner(&lan, a);
    for vr in [VR51, VR52] {
        assert_eq!(
            lan.client_arp[&vr],
            (a, advert + LAT * 2),
            "{vr:?}\n{}",
            lan.dump()
        );
    }
    assert!(
        !lan.records(a, VR52, healed)
            .iter()
            .any(|(_, h)| matches!(h, Happened::Dropped(_))),
        "the director's VI_2 heard nothing lower: the group made it announce"
    );
}
