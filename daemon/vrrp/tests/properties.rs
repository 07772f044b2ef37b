//! Property tests of the state machine under arbitrary event sequences: it never panics,
//! the addresses are held exactly while master, notifications chain, no timer is left in
//! the past, and every valid configuration produces adverts that decode.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use keeper_vrrp::{
    Action, Advert, AdvertInterval, Auth, Event, Family, Instance, InstanceConfig, Peer, State,
    Version,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Advance(u16),
    Startup,
    Shutdown,
    InterfaceUp,
    InterfaceDown,
    SetPriority(u8),
    Rx {
        host: u8,
        priority: u8,
        ttl: u8,
        centis: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..3000).prop_map(Op::Advance),
        1 => Just(Op::Startup),
        1 => Just(Op::Shutdown),
        1 => Just(Op::InterfaceUp),
        1 => Just(Op::InterfaceDown),
        1 => any::<u8>().prop_map(Op::SetPriority),
        6 => (1u8..5, any::<u8>(), prop_oneof![Just(255u8), Just(254u8)], prop_oneof![Just(100u16), Just(50u16)])
            .prop_map(|(host, priority, ttl, centis)| Op::Rx { host, priority, ttl, centis }),
    ]
}

fn config() -> impl Strategy<Value = InstanceConfig> {
    (
        1u8..=255,
        any::<bool>(),
        prop_oneof![Just(0u64), Just(2000)],
        prop_oneof![Just(0u64), Just(1000)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(priority, preempt, delay_ms, startup_ms, v2, send_on_higher)| {
                let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
                let version = if v2 { Version::V2 } else { Version::V3 };
                let mut c = InstanceConfig::new(
                    51,
                    version,
                    me,
                    vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
                );
                c.priority = priority;
                c.preempt = preempt;
                if preempt {
                    c.preempt_delay = Duration::from_millis(delay_ms);
                }
                c.startup_delay = Duration::from_millis(startup_ms);
                c.higher_prio_send_advert = send_on_higher;
                c
            },
        )
}

struct Checker {
    holds_vips: bool,
    state: State,
}

impl Checker {
    fn drain(&mut self, vr: &mut Instance) -> Result<(), TestCaseError> {
        while let Some(a) = vr.poll_action() {
            match a {
                Action::AddVips { .. } => {
                    prop_assert!(!self.holds_vips, "addresses added twice");
                    self.holds_vips = true;
                }
                Action::RemoveVips => self.holds_vips = false,
                Action::Notify(t) => {
                    prop_assert_eq!(t.from, self.state, "notification chain broken");
                    prop_assert_ne!(t.from, t.to);
                    self.state = t.to;
                }
                Action::SendAdvert(out) => {
                    prop_assert_eq!(out.datagrams.len(), 1);
                    for d in &out.datagrams {
                        prop_assert_eq!(
                            Advert::decode(&d.payload, out.src, d.dst),
                            Ok(out.advert.clone())
                        );
                    }
                }
                Action::Announce | Action::Dropped { .. } => {}
            }
        }
        prop_assert_eq!(self.state, vr.state());
        prop_assert_eq!(self.holds_vips, vr.state() == State::Master);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_event_sequences_keep_the_invariants(cfg in config(), ops in prop::collection::vec(op(), 1..80)) {
        let t0 = Instant::now();
        let mut now = t0;
        let version = cfg.version;
        let interval = cfg.advert_interval;
        let mut vr = Instance::new(cfg).expect("valid");
        let mut check = Checker { holds_vips: false, state: State::Initialize };
        for op in ops {
            if let Op::Advance(ms) = op {
                now += Duration::from_millis(u64::from(ms));
            }
            while let Some(d) = vr.poll_timeout().filter(|&d| d <= now) {
                prop_assert!(d >= t0);
                vr.handle_timeout(d);
                check.drain(&mut vr)?;
            }
            prop_assert!(vr.poll_timeout().is_none_or(|d| d > now), "timer left in the past");
            let event = match op {
                Op::Advance(_) => continue,
                Op::Startup => Event::Startup,
                Op::Shutdown => Event::Shutdown,
                Op::InterfaceUp => Event::InterfaceUp,
                Op::InterfaceDown => Event::InterfaceDown,
                Op::SetPriority(p) => Event::SetPriority(p),
                Op::Rx { host, priority, ttl, centis } => {
                    let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, host));
                    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
                    let advert = Advert {
                        version,
                        vrid: 51,
                        priority,
                        max_adver_int: if version == Version::V2 {
                            interval
                        } else {
                            AdvertInterval::from_centis(centis).expect("non-zero")
                        },
                        auth: Auth::None,
                        addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
                    };
                    let bytes = advert.encode(src, dst).expect("encodes");
                    vr.handle(now, Event::AdvertReceived { src, dst, ttl, bytes: &bytes });
                    check.drain(&mut vr)?;
                    continue;
                }
            };
            vr.handle(now, event);
            check.drain(&mut vr)?;
            match vr.state() {
                State::Backup | State::Master => prop_assert!(vr.poll_timeout().is_some()),
                State::Fault => prop_assert!(vr.poll_timeout().is_none()),
                State::Initialize => {}
            }
        }
    }

    #[test]
    fn every_valid_configuration_sends_decodable_adverts(
        v6 in any::<bool>(),
        v2 in any::<bool>(),
        centis in 1u16..=4095,
        n_vips in 1usize..=255,
        n_peers in 0usize..4,
        password in prop::option::of(prop::collection::vec(any::<u8>(), 1..=8)),
    ) {
        let addr = |i: u32| -> IpAddr {
            if v6 {
                IpAddr::V6(Ipv6Addr::from(0xfd77_u128 << 112 | u128::from(i)))
            } else {
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
            }
        };
        let version = if v2 && !v6 { Version::V2 } else { Version::V3 };
        let interval = match version {
            Version::V2 => AdvertInterval::from_secs(u8::try_from(centis % 255 + 1).unwrap_or(1)),
            Version::V3 => AdvertInterval::from_centis(centis),
        }.expect("non-zero");
        let vips = (0..n_vips).map(|i| addr(1000 + i as u32)).collect();
        let mut cfg = InstanceConfig::new(7, version, addr(1), vips);
        prop_assert_eq!(cfg.family, if v6 { Family::Ipv6 } else { Family::Ipv4 });
        cfg.advert_interval = interval;
        cfg.priority = 255;
        if n_peers > 0 {
            cfg.unicast_peers = Some((0..n_peers).map(|i| Peer::new(addr(2 + i as u32))).collect());
        }
        if let (Version::V2, Some(pw)) = (version, &password) {
            cfg.auth = Auth::simple_text(pw).expect("1..=8 octets");
        }
        let mut vr = Instance::new(cfg).expect("valid");
        vr.handle(Instant::now(), Event::Startup);
        let Some(Action::SendAdvert(out)) = vr.poll_action() else {
            return Err(TestCaseError::fail("an owner sends an advert first"));
        };
        prop_assert_eq!(out.datagrams.len(), n_peers.max(1));
        for d in &out.datagrams {
            prop_assert_eq!(Advert::decode(&d.payload, out.src, d.dst), Ok(out.advert.clone()));
        }
    }
}
