//! Property tests of the timer arithmetic: units (centiseconds vs seconds), skew never
//! rounded away, Master_Down_Interval monotonic in priority and interval.

use std::time::Duration;

use keeper_vrrp::timers::{master_down_interval, skew_time};
use keeper_vrrp::{AdvertInterval, Version};
use proptest::prelude::*;

fn cs(n: u16) -> AdvertInterval {
    AdvertInterval::from_centis(n).expect("non-zero")
}

fn v3_interval() -> impl Strategy<Value = AdvertInterval> {
    (1u16..=4095).prop_map(cs)
}

fn v2_interval() -> impl Strategy<Value = AdvertInterval> {
    (1u8..=255).prop_map(|s| AdvertInterval::from_secs(s).expect("non-zero"))
}

fn any_version() -> impl Strategy<Value = (Version, AdvertInterval)> {
    prop_oneof![
        v2_interval().prop_map(|i| (Version::V2, i)),
        v3_interval().prop_map(|i| (Version::V3, i)),
    ]
}

proptest! {
    #[test]
    fn seconds_and_centiseconds_agree(s in 1u8..=255) {
        let i = AdvertInterval::from_secs(s).expect("non-zero");
        prop_assert_eq!(i.centis(), u16::from(s) * 100);
        prop_assert_eq!(i.as_duration(), Duration::from_secs(u64::from(s)));
        prop_assert_eq!(i.whole_secs(), Some(s));
        prop_assert_eq!(AdvertInterval::from_centis(u16::from(s) * 100), Some(i));
        prop_assert_eq!(AdvertInterval::from_duration(i.as_duration()), Some(i));
        prop_assert!(i.fits(Version::V2));
    }

    #[test]
    fn centiseconds_are_ten_milliseconds(c in 1u16..=u16::MAX) {
        let i = cs(c);
        prop_assert_eq!(i.as_duration(), Duration::from_millis(u64::from(c) * 10));
        prop_assert_eq!(AdvertInterval::from_duration(i.as_duration()), Some(i));
        prop_assert_eq!(i.whole_secs().is_some(), c % 100 == 0 && c / 100 <= 255);
        prop_assert_eq!(i.fits(Version::V3), c <= 4095);
    }

    #[test]
    fn durations_between_centiseconds_are_refused(c in 0u64..10_000, ns in 1u64..10_000_000) {
        let d = Duration::from_nanos(c * 10_000_000 + ns);
        prop_assert_eq!(AdvertInterval::from_duration(d), None);
    }

    #[test]
    fn skew_is_never_zero_and_below_its_unit(p in 1u8..=255, (version, i) in any_version()) {
        let skew = skew_time(version, p, i);
        prop_assert!(skew > Duration::ZERO);
        let unit = match version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => i.as_duration(),
        };
        prop_assert!(skew < unit);
    }

    #[test]
    fn v3_skew_is_exact_to_the_nanosecond(p in 0u8..=255, i in v3_interval()) {
        // skew * 256 <= (256 - p) * interval < (skew + 1 ns) * 256
        let skew = skew_time(Version::V3, p, i).as_nanos();
        let exact = (256 - u128::from(p)) * i.as_duration().as_nanos();
        prop_assert!(skew * 256 <= exact && exact < (skew + 1) * 256);
    }

    #[test]
    fn v2_skew_is_whole_seconds_fraction_whatever_the_interval(p in 0u8..=255, i in v2_interval()) {
        // RFC 3768 6.1: (256 - Priority) / 256 seconds; 10^9 / 256 is exact.
        let skew = skew_time(Version::V2, p, i).as_nanos();
        prop_assert_eq!(skew * 256, (256 - u128::from(p)) * 1_000_000_000);
    }

    #[test]
    fn master_down_is_the_adverts_plus_skew(p in 1u8..=255, (version, i) in any_version(), n in 1u8..=100) {
        let down = master_down_interval(version, p, i, n);
        prop_assert_eq!(down, i.as_duration() * u32::from(n) + skew_time(version, p, i));
        prop_assert!(down > i.as_duration() * u32::from(n));
    }

    #[test]
    fn higher_priority_waits_strictly_less(p in 1u8..=254, (version, i) in any_version()) {
        let lower = master_down_interval(version, p, i, 3);
        let higher = master_down_interval(version, p + 1, i, 3);
        prop_assert!(higher < lower, "{version} {i}: prio {} waits {higher:?}, prio {p} {lower:?}", p + 1);
    }

    #[test]
    fn longer_interval_waits_longer(p in 1u8..=255, a in 1u16..=4094) {
        let short = master_down_interval(Version::V3, p, cs(a), 3);
        let long = master_down_interval(Version::V3, p, cs(a + 1), 3);
        prop_assert!(long > short);
    }
}

#[test]
fn fastest_backup_still_has_a_skew() {
    // 10 ms adverts, priority 254: 3 * 10 ms + 2/256 * 10 ms = 30.078125 ms.
    assert_eq!(
        master_down_interval(Version::V3, 254, cs(1), 3),
        Duration::from_nanos(30_078_125)
    );
}
