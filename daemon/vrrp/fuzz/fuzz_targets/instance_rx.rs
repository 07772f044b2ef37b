//! A backup and a master fed arbitrary packets (with arbitrary TTL and timing) never
//! panic, and a packet that fails a check changes nothing but the drop counters.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use keeper_vrrp::{Event, Instance, InstanceConfig, Version};
use libfuzzer_sys::fuzz_target;

fn instance(priority: u8) -> Instance {
    let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut cfg = InstanceConfig::new(
        51,
        Version::V3,
        me,
        vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
    );
    cfg.priority = priority;
    Instance::new(cfg).expect("valid")
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut backup = instance(100);
    let mut owner = instance(255);
    backup.handle(t0, Event::Startup);
    owner.handle(t0, Event::Startup);
    let mut at = t0;
    // Records: [delay ms, ttl, source host, len] then len octets.
    let mut rest = data;
    while let [delay, ttl, host, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        at += Duration::from_millis(u64::from(*delay) * 20);
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, *host));
        let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
        for vr in [&mut backup, &mut owner] {
            while let Some(deadline) = vr.poll_timeout().filter(|&d| d <= at) {
                vr.handle_timeout(deadline);
            }
            let before = (vr.state(), vr.poll_timeout(), vr.stats().adverts_received);
            let drops = vr.stats().drops.total();
            vr.handle(
                at,
                Event::AdvertReceived {
                    src,
                    dst,
                    ttl: *ttl,
                    bytes,
                },
            );
            if vr.stats().drops.total() > drops {
                assert_eq!(
                    (vr.state(), vr.poll_timeout(), vr.stats().adverts_received),
                    before
                );
            }
            while vr.poll_action().is_some() {}
        }
    }
});
