//! Timer arithmetic of RFC 3768 section 6.1 and RFC 5798 section 6.1, exact to the
//! nanosecond.
//!
//! - VRRPv2: `Skew_Time = (256 - Priority) / 256` **seconds**, whatever the interval.
//! - VRRPv3: `Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256`.
//! - Both: `Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time` (the 3 is
//!   keepalived's `down_timer_adverts`, configurable there and here).
//!
//! Everything is integer nanoseconds: intervals are whole centiseconds (10^7 ns), so the
//! only division is by 256 and it loses less than a nanosecond. The skew is therefore
//! never zero for a priority below 256 and an interval above zero (at 1 cs and priority
//! 255 it is 39 062 ns), unlike implementations that compute it in whole centiseconds or
//! milliseconds.

use std::time::Duration;

use crate::packet::{AdvertInterval, Version};

/// RFC default number of missed adverts before the master is declared down.
pub const DEFAULT_DOWN_TIMER_ADVERTS: u8 = 3;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// `Skew_Time` for a router of `priority` whose master advertises every
/// `master_adver_int` (the interval only matters for v3).
pub fn skew_time(version: Version, priority: u8, master_adver_int: AdvertInterval) -> Duration {
    let weight = 256 - u64::from(priority);
    let nanos = match version {
        Version::V2 => weight * NANOS_PER_SEC / 256,
        Version::V3 => weight * master_adver_int.as_nanos() / 256,
    };
    Duration::from_nanos(nanos)
}

/// `Master_Down_Interval`: how long a backup waits without hearing the master.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_int: AdvertInterval,
    down_timer_adverts: u8,
) -> Duration {
    let adverts = u64::from(down_timer_adverts) * master_adver_int.as_nanos();
    Duration::from_nanos(adverts) + skew_time(version, priority, master_adver_int)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(n: u16) -> AdvertInterval {
        AdvertInterval::from_centis(n).unwrap_or(AdvertInterval::ONE_SECOND)
    }

    #[test]
    fn rfc5798_example_values() {
        // Priority 100 at 1 s: skew = 156/256 s = 609.375 ms.
        assert_eq!(
            skew_time(Version::V3, 100, cs(100)),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, cs(100), 3),
            Duration::from_micros(3_609_375)
        );
        // 0.1 s adverts, priority 50: 3 * 100 ms + 206/256 * 100 ms = 380.46875 ms.
        assert_eq!(
            master_down_interval(Version::V3, 50, cs(10), 3),
            Duration::from_nanos(380_468_750)
        );
    }

    #[test]
    fn v2_skew_is_in_seconds_whatever_the_interval() {
        let three = cs(300);
        assert_eq!(
            skew_time(Version::V2, 100, three),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, three, 3),
            Duration::from_micros(9_609_375)
        );
    }

    #[test]
    fn smallest_skew_is_not_zero() {
        assert_eq!(
            skew_time(Version::V3, 255, cs(1)),
            Duration::from_nanos(39_062)
        );
    }
}
