//! Durations as operators write them: a bare number is seconds, as in keepalived
//! (`delay_loop = 6`, `advert_int = 0.1`); a string is human-readable (`"100ms"`, `"3.5s"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Secs(pub Duration);

impl Secs {
    pub const fn from_secs(s: u64) -> Self {
        Secs(Duration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Secs(Duration::from_millis(ms))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Secs> for Duration {
    fn from(s: Secs) -> Duration {
        s.0
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Parses a duration: seconds as a decimal number, or humantime (`100ms`, `1m 30s`).
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return from_secs_f64(secs);
    }
    // humantime has no fractions; "3.5s" and "0.25ms" are common enough to read here.
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.contains('.') {
        let scale = match unit.trim() {
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "ms" | "msec" | "millis" => 1e-3,
            "us" | "usec" | "µs" => 1e-6,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        return from_secs_f64(n * scale);
    }
    humantime::parse_duration(t).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn from_secs_f64(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "invalid duration {secs}: must be a non-negative number of seconds"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {secs}: {e}"))
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds as a number, or a string such as \"100ms\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secs, E> {
                u64::try_from(v)
                    .map(Secs::from_secs)
                    .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secs, E> {
                Ok(Secs::from_secs(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Secs, E> {
                from_secs_f64(v).map(Secs).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secs, E> {
                parse(v).map(Secs).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_are_seconds_strings_are_human() {
        assert_eq!(parse("6"), Ok(Duration::from_secs(6)));
        assert_eq!(parse("0.1"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("3.5s"), Ok(Duration::from_millis(3500)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse("-1").is_err());
        assert!(parse("soon").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(ms in 0u64..10_000_000) {
            let s = Secs::from_millis(ms);
            prop_assert_eq!(parse(&s.to_string()), Ok(s.0));
        }
    }
}
