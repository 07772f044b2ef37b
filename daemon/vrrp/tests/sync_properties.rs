//! Property tests of sync groups under arbitrary event sequences on three members: after
//! every settle the running members agree with the group, a group in Master or Backup
//! has no member with a fault, only masters hold addresses, notifications chain (members
//! and group), no timer is left in the past, and settling twice changes nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use keeper_vrrp::{
    Action, Advert, AdvertInterval, Auth, Event, Instance, InstanceConfig, State, SyncGroup,
    TrackingStatus, Version,
};
use proptest::prelude::*;

const MEMBERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Advance(u16),
    Startup(usize),
    Shutdown(usize),
    InterfaceUp(usize),
    InterfaceDown(usize),
    Tracking(usize, u8, bool),
    Rx { member: usize, priority: u8 },
    Leave(usize),
    Join(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0..MEMBERS;
    prop_oneof![
        8 => (0u16..3000).prop_map(Op::Advance),
        2 => m.clone().prop_map(Op::Startup),
        1 => m.clone().prop_map(Op::Shutdown),
        1 => m.clone().prop_map(Op::InterfaceUp),
        1 => m.clone().prop_map(Op::InterfaceDown),
        2 => (m.clone(), 1u8..=255, prop::bool::weighted(0.3)).prop_map(|(i, p, f)| Op::Tracking(i, p, f)),
        8 => (m.clone(), any::<u8>()).prop_map(|(member, priority)| Op::Rx { member, priority }),
        1 => m.clone().prop_map(Op::Leave),
        1 => m.prop_map(Op::Join),
    ]
}

fn config(i: usize, priority: u8, startup_ms: u64) -> InstanceConfig {
    let me = IpAddr::V4(Ipv4Addr::new(10, i as u8, 0, 2));
    let vip = IpAddr::V4(Ipv4Addr::new(10, i as u8, 0, 100));
    let mut c = InstanceConfig::new(51 + i as u8, Version::V3, me, vec![vip]);
    c.priority = priority;
    c.startup_delay = Duration::from_millis(startup_ms);
    c
}

struct Watch {
    state: [State; MEMBERS],
    holds: [bool; MEMBERS],
    group: State,
}

impl Watch {
    fn drain(
        &mut self,
        members: &mut [Instance],
        group: &mut SyncGroup,
    ) -> Result<(), TestCaseError> {
        for (i, m) in members.iter_mut().enumerate() {
            while let Some(a) = m.poll_action() {
                match a {
                    Action::AddVips { .. } => {
                        prop_assert!(!self.holds[i], "addresses added twice");
                        self.holds[i] = true;
                    }
                    Action::RemoveVips => self.holds[i] = false,
                    Action::Notify(t) => {
                        prop_assert_eq!(t.from, self.state[i], "member {} chain", i);
                        prop_assert_ne!(t.from, t.to);
                        self.state[i] = t.to;
                    }
                    Action::SendAdvert(_) | Action::Announce | Action::Dropped { .. } => {}
                }
            }
            prop_assert_eq!(self.state[i], m.state());
            prop_assert_eq!(self.holds[i], m.state() == State::Master);
        }
        while let Some(t) = group.poll_transition() {
            prop_assert_eq!(t.from, self.group, "group chain");
            prop_assert_ne!(t.from, t.to);
            self.group = t.to;
        }
        prop_assert_eq!(self.group, group.state());
        Ok(())
    }
}

fn settle(now: Instant, group: &mut SyncGroup, members: &mut [Instance], in_group: &[bool]) {
    let mut refs: Vec<&mut Instance> = members
        .iter_mut()
        .zip(in_group)
        .filter(|(_, g)| **g)
        .map(|(m, _)| m)
        .collect();
    group.settle(now, &mut refs);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn members_move_together(
        priorities in prop::array::uniform3(prop_oneof![1u8..=254, Just(255u8), Just(100u8)]),
        startup_ms in prop_oneof![Just(0u64), Just(500)],
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut members: Vec<Instance> = (0..MEMBERS)
            .map(|i| Instance::new(config(i, priorities[i], startup_ms)).expect("valid"))
            .collect();
        let mut in_group = [true; MEMBERS];
        let mut group = SyncGroup::new();
        let mut watch = Watch {
            state: [State::Initialize; MEMBERS],
            holds: [false; MEMBERS],
            group: State::Initialize,
        };
        settle(now, &mut group, &mut members, &in_group);
        watch.drain(&mut members, &mut group)?;
        for op in ops {
            if let Op::Advance(ms) = op {
                now += Duration::from_millis(u64::from(ms));
            }
            loop {
                let due = members
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| m.poll_timeout().map(|t| (t, i)))
                    .filter(|&(t, _)| t <= now)
                    .min();
                let Some((t, i)) = due else { break };
                prop_assert!(t >= t0);
                members[i].handle_timeout(t);
                settle(t, &mut group, &mut members, &in_group);
                watch.drain(&mut members, &mut group)?;
            }
            for m in &members {
                prop_assert!(m.poll_timeout().is_none_or(|t| t > now), "timer left in the past");
            }
            match op {
                Op::Advance(_) => {}
                Op::Startup(i) => members[i].handle(now, Event::Startup),
                Op::Shutdown(i) => members[i].handle(now, Event::Shutdown),
                Op::InterfaceUp(i) => members[i].handle(now, Event::InterfaceUp),
                Op::InterfaceDown(i) => members[i].handle(now, Event::InterfaceDown),
                Op::Tracking(i, priority, fault) => {
                    members[i].handle(now, Event::Tracking(TrackingStatus { priority, fault }));
                }
                Op::Rx { member, priority } => {
                    let src = IpAddr::V4(Ipv4Addr::new(10, member as u8, 0, 9));
                    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
                    let advert = Advert {
                        version: Version::V3,
                        vrid: 51 + member as u8,
                        priority,
                        max_adver_int: AdvertInterval::ONE_SECOND,
                        auth: Auth::None,
                        addresses: members[member].config().virtual_addresses.clone(),
                    };
                    let bytes = advert.encode(src, dst).expect("encodes");
                    members[member].handle(now, Event::AdvertReceived { src, dst, ttl: 255, bytes: &bytes });
                }
                Op::Leave(i) => {
                    if in_group[i] && in_group.iter().filter(|g| **g).count() > 1 {
                        in_group[i] = false;
                        members[i].leave_sync_group(now);
                        prop_assert!(!members[i].in_sync_group());
                        prop_assert!(!members[i].fault_causes().sync_group);
                    }
                }
                // A reload puts it back (whatever it became meanwhile, master included).
                Op::Join(i) => in_group[i] = true,
            }
            settle(now, &mut group, &mut members, &in_group);
            watch.drain(&mut members, &mut group)?;
            // Settling again changes nothing.
            settle(now, &mut group, &mut members, &in_group);
            for m in &mut members {
                prop_assert!(m.poll_action().is_none(), "a second settle acted");
            }
            prop_assert!(group.poll_transition().is_none());
            // The group's invariant.
            let state = group.state();
            for (m, _) in members.iter().zip(in_group).filter(|(_, g)| *g) {
                if m.state() == State::Initialize {
                    continue;
                }
                prop_assert_eq!(m.state(), state);
                if matches!(state, State::Master | State::Backup) {
                    prop_assert!(!m.fault_causes().any(), "a running group member in fault");
                }
                if state == State::Master {
                    prop_assert!(!m.wants_master() || m.state() == State::Master);
                }
            }
        }
    }
}
