//! Properties of the pure planner, on random tables over a small key space (so desired and
//! actual overlap a lot), plus a codec round trip of random entries.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keeper_ipvs::codec::decode;
use keeper_ipvs::reconcile::{apply, plan};
use keeper_ipvs::*;
use proptest::prelude::*;

fn key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (0u8..3, 0u16..3)
            .prop_map(|(h, p)| ServiceKey::tcp(IpAddr::V4(Ipv4Addr::new(10, 0, 0, h)), 80 + p)),
        (0u16..2).prop_map(|h| ServiceKey::udp(
            IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, h)),
            53
        )),
        (1u32..3).prop_map(|m| ServiceKey::fwmark(AddressFamily::Inet, m)),
    ]
}

fn scheduler() -> impl Strategy<Value = Scheduler> {
    prop_oneof![
        Just(Scheduler::Rr),
        Just(Scheduler::Wrr),
        Just(Scheduler::Sh),
        Just(Scheduler::Mh),
        Just(Scheduler::Wlc)
    ]
}

fn service(k: ServiceKey) -> impl Strategy<Value = Service> {
    (scheduler(), any::<bool>(), 0u32..2, any::<bool>()).prop_map(move |(s, persistent, t, f1)| {
        let mut svc = Service::new(k, s);
        if persistent {
            svc = svc.persistent(300 * (t + 1));
        }
        svc.flags.sched1 = f1;
        svc
    })
}

fn dest(af: AddressFamily) -> impl Strategy<Value = Destination> {
    (
        0u8..4,
        prop_oneof![
            Just(ForwardMethod::Route),
            Just(ForwardMethod::Masq),
            Just(ForwardMethod::Tunnel)
        ],
        0u32..3,
        0u32..2,
        0u16..2,
    )
        .prop_map(move |(h, fwd, w, thr, tport)| {
            let addr = match af {
                AddressFamily::Inet => IpAddr::V4(Ipv4Addr::new(10, 1, 0, h)),
                AddressFamily::Inet6 => {
                    IpAddr::V6(Ipv6Addr::new(0xfd77, 1, 0, 0, 0, 0, 0, u16::from(h)))
                }
            };
            Destination {
                upper_threshold: thr * 100,
                tunnel: Tunnel {
                    kind: TunnelType::Ipip,
                    port: tport,
                    flags: 0,
                },
                ..Destination::new(addr, 80, fwd, w)
            }
        })
}

fn vservice() -> impl Strategy<Value = VirtualService> {
    key().prop_flat_map(|k| {
        (service(k), proptest::collection::vec(dest(k.af()), 0..4)).prop_map(|(s, ds)| {
            ds.into_iter()
                .fold(VirtualService::new(s), VirtualService::with_destination)
        })
    })
}

fn table() -> impl Strategy<Value = Table> {
    proptest::collection::vec(vservice(), 0..6).prop_map(|v| {
        let mut t = Table::new();
        for vs in v {
            t.insert(vs);
        }
        t
    })
}

fn policy() -> impl Strategy<Value = OwnershipPolicy> {
    (
        proptest::collection::btree_set(key(), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(owned, all, foreign)| OwnershipPolicy {
            owned,
            remove_unowned_services: all,
            remove_foreign_destinations: foreign,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Applying the plan is accepted by (a model of) the kernel, and planning again finds
    /// nothing to do.
    #[test]
    fn plan_is_idempotent(desired in table(), actual in table(), policy in policy()) {
        let ops = plan(&desired, &actual, &policy);
        let mut after = actual.clone();
        let refused = apply(&mut after, &ops);
        prop_assert!(refused.is_empty(), "refused {:?} of {:?}", refused, ops);
        prop_assert!(plan(&desired, &after, &policy).is_empty());
    }

    /// Desired services end up exactly as configured; services neither desired nor owned are
    /// untouched, destinations included.
    #[test]
    fn plan_reaches_desired_and_respects_ownership(desired in table(), actual in table(), policy in policy()) {
        let ops = plan(&desired, &actual, &policy);
        let mut after = actual.clone();
        apply(&mut after, &ops);
        for (k, want) in &desired.services {
            let have = &after.services[k];
            prop_assert!(want.service.same_settings(&have.service));
            for (dk, d) in &want.destinations {
                prop_assert!(d.same_settings(&have.destinations[dk]));
            }
            if policy.remove_foreign_destinations {
                prop_assert_eq!(
                    want.destinations.keys().collect::<BTreeSet<_>>(),
                    have.destinations.keys().collect::<BTreeSet<_>>()
                );
            } else {
                for (dk, d) in &actual.services.get(k).map(|v| v.destinations.clone()).unwrap_or_default() {
                    if !want.destinations.contains_key(dk) {
                        prop_assert_eq!(&have.destinations[dk], d);
                    }
                }
            }
        }
        for (k, vs) in &actual.services {
            if desired.services.contains_key(k) {
                continue;
            }
            if policy.remove_unowned_services || policy.owned.contains(k) {
                prop_assert!(!after.services.contains_key(k));
            } else {
                prop_assert_eq!(&after.services[k], vs);
            }
        }
    }

    /// Minimal: nothing to do for an identical table; every operation changes something that
    /// differs, once.
    #[test]
    fn plan_is_minimal(desired in table(), actual in table(), policy in policy()) {
        prop_assert!(plan(&desired, &desired, &policy).is_empty());
        let ops = plan(&desired, &actual, &policy);
        let mut seen = BTreeSet::new();
        for op in &ops {
            prop_assert!(seen.insert(format!("{op}")), "duplicate {}", op);
            match op {
                Op::AddService(s) => prop_assert!(!actual.services.contains_key(&s.key)),
                Op::EditService(s) => prop_assert!(!s.same_settings(&actual.services[&s.key].service)),
                Op::DelService(k) => prop_assert!(!desired.services.contains_key(k)),
                Op::AddDest(k, d) => prop_assert!(actual.services.get(k).is_none_or(|v| !v.destinations.contains_key(&d.key()))),
                Op::EditDest(k, d) => prop_assert!(!d.same_settings(&actual.services[k].destinations[&d.key()])),
                Op::DelDest(k, dk) => prop_assert!(!desired.services[k].destinations.contains_key(dk)),
            }
        }
    }

    /// Every request round-trips through the codec.
    #[test]
    fn requests_round_trip(vs in vservice(), seq in any::<u32>()) {
        let k = vs.service.key;
        let mut reqs = vec![Request::NewService(vs.service.clone()), Request::SetService(vs.service.clone()), Request::DelService(k)];
        for d in vs.destinations.values() {
            reqs.push(Request::NewDest(k, d.clone()));
            reqs.push(Request::DelDest(k, d.key()));
        }
        for r in reqs {
            let bytes = r.encode(0x20, seq).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let msgs = decode::split(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decode::request(&msgs[0]).map_err(|e| TestCaseError::fail(e.to_string()))?, r);
        }
    }
}

#[test]
fn adopting_a_matching_table_after_a_restart_changes_nothing() {
    let vip = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 100));
    let mut want = Table::new();
    want.insert(
        VirtualService::new(Service::new(ServiceKey::tcp(vip, 80), Scheduler::Wrr))
            .with_destination(Destination::new(
                IpAddr::V4(Ipv4Addr::new(10, 77, 0, 21)),
                80,
                ForwardMethod::Route,
                1,
            )),
    );
    // The kernel's copy carries counters and a hand-made service keeperd does not own.
    let mut have = want.clone();
    for vs in have.services.values_mut() {
        vs.service.stats = Some(Box::new(Stats {
            conns: 9,
            ..Stats::default()
        }));
        for d in vs.destinations.values_mut() {
            d.conns.active = 3;
        }
    }
    have.insert(VirtualService::new(Service::new(
        ServiceKey::tcp(vip, 22),
        Scheduler::Rr,
    )));
    assert!(plan(&want, &have, &OwnershipPolicy::default()).is_empty());
    // lvs_flush semantics remove the foreign service.
    let flush = OwnershipPolicy {
        remove_unowned_services: true,
        ..OwnershipPolicy::default()
    };
    assert_eq!(
        plan(&want, &have, &flush),
        vec![Op::DelService(ServiceKey::tcp(vip, 22))]
    );
    // A weight change is one edit.
    let mut changed = want.clone();
    for vs in changed.services.values_mut() {
        for d in vs.destinations.values_mut() {
            d.weight = 0;
        }
    }
    let ops = plan(&changed, &have, &OwnershipPolicy::default());
    assert_eq!(ops.len(), 1);
    assert!(matches!(&ops[0], Op::EditDest(_, d) if d.weight == 0));
}
