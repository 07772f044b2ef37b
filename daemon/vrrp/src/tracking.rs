//! Tracked objects and the priority they make, with keepalived's arithmetic
//! (`track_interface`, `track_script`, `track_file`, `track_process`).
//!
//! Pure: the driver observes the objects (link events, script exits, file contents,
//! process counts), records what it saw here, and feeds [`Tracking::status`] to the
//! instance as [`crate::Event::Tracking`].
//!
//! # The rules (keepalived 2.x, `vrrp_track.c`)
//! Every tracker has a weight `w` and a `reverse` flag (multiplier `m` = -1 if reversed,
//! else 1). An interface, script or process is *up* (link up, script OK after `rise`,
//! process quorum met) or *down*:
//!
//! | weight | up         | down       |
//! | ------ | ---------- | ---------- |
//! | `w > 0`| `+ w × m`  | 0          |
//! | `w < 0`| 0          | `+ w × m`  |
//! | `0`    | fine       | **FAULT**  |
//!
//! so `w = +10` adds 10 while up, `w = -10` subtracts 10 while down, `reverse` flips the
//! sign, and `weight 0 reverse` faults while the object is *up*. A file holds an integer
//! `v`: with weight 0, `v ≠ 0` is FAULT (`v = 0` with `reverse`); otherwise
//! `v × w × m`, limited to -254..=253, is added, and -254 (anything at or below it) is
//! FAULT.
//!
//! The effective priority is `base + Σ adjustments`, limited to 1..=254. The address
//! owner (base 255) stays 255 whatever the weights (keepalived drops weighted trackers
//! of an owner at load time; [`weight_rule`] says which); its weight-0 trackers still
//! fault it. A tracker not observed yet adjusts nothing; a weight-0 tracker not observed
//! yet holds the instance in FAULT (keepalived keeps an instance down until every
//! unweighted script has reported once).

use std::fmt;

use thiserror::Error;

use crate::packet::PRIORITY_OWNER;

/// What kind of object a tracker watches: it decides the allowed weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackerKind {
    /// `track_interface`: up = link up (`IFF_UP` and running). An interface that does not
    /// exist is down.
    Interface,
    /// `track_script`: up = OK according to [`ScriptCounter`].
    Script,
    /// `track_file`: an integer read from a file ([`parse_track_file`]).
    File,
    /// `track_process`: up = the number of matching processes is within the quorum
    /// ([`ProcessQuorum`]).
    Process,
}

impl TrackerKind {
    /// keepalived's accepted weights: interfaces and scripts -253..=253 (keepalived turns
    /// ±254 into ±253 with a complaint; here it is refused), processes -254..=254, files
    /// any 32-bit value (the product is limited, and -254 means FAULT).
    pub const fn weight_range(self) -> (i32, i32) {
        match self {
            TrackerKind::Interface | TrackerKind::Script => (-253, 253),
            TrackerKind::Process => (-254, 254),
            TrackerKind::File => (-i32::MAX, i32::MAX),
        }
    }

    fn name(self) -> &'static str {
        match self {
            TrackerKind::Interface => "track_interface",
            TrackerKind::Script => "track_script",
            TrackerKind::File => "track_file",
            TrackerKind::Process => "track_process",
        }
    }
}

impl fmt::Display for TrackerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tracker's `weight N [reverse]`, checked against its kind's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Weight {
    value: i32,
    reverse: bool,
}

impl Weight {
    /// Weight 0: a failure (or, reversed, success) means FAULT.
    pub const UNWEIGHTED: Weight = Weight {
        value: 0,
        reverse: false,
    };

    pub fn new(kind: TrackerKind, value: i64, reverse: bool) -> Result<Weight, TrackingError> {
        let (min, max) = kind.weight_range();
        match i32::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => Ok(Weight { value: v, reverse }),
            _ => Err(TrackingError::WeightRange {
                kind,
                value,
                min,
                max,
            }),
        }
    }

    pub const fn value(self) -> i32 {
        self.value
    }

    pub const fn reverse(self) -> bool {
        self.reverse
    }

    const fn multiplier(self) -> i64 {
        if self.reverse { -1 } else { 1 }
    }

    /// The effect of an interface, script or process being up (`Some(true)`), down, or
    /// not observed yet (`None`).
    pub fn effect_of_state(self, up: Option<bool>) -> Effect {
        let Some(up) = up else {
            return if self.value == 0 {
                Effect::Fault
            } else {
                Effect::Adjust(0)
            };
        };
        if self.value == 0 {
            // Non-reversed: down is FAULT; reversed: up is FAULT.
            return if up != self.reverse {
                Effect::Adjust(0)
            } else {
                Effect::Fault
            };
        }
        let counts = if up { self.value > 0 } else { self.value < 0 };
        if counts {
            // |value| <= 254: the product fits an i32.
            Effect::Adjust((i64::from(self.value) * self.multiplier()) as i32)
        } else {
            Effect::Adjust(0)
        }
    }

    /// The effect of a tracked file holding `value` (`None`: not read yet).
    pub fn effect_of_value(self, value: Option<i64>) -> Effect {
        let Some(value) = value else {
            return self.effect_of_state(None);
        };
        if self.value == 0 {
            return if (value != 0) != self.reverse {
                Effect::Fault
            } else {
                Effect::Adjust(0)
            };
        }
        let product = i128::from(value) * i128::from(self.value) * i128::from(self.multiplier());
        if product <= -254 {
            Effect::Fault
        } else {
            Effect::Adjust(product.min(253) as i32)
        }
    }
}

/// What one tracker does to its instance right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Added to the base priority (may be 0 or negative).
    Adjust(i32),
    /// Holds the instance in FAULT.
    Fault,
}

/// Identifies a tracker within its [`Tracking`] (the order of [`Tracking::add`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerId(pub usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Observation {
    Unknown,
    Up(bool),
    Value(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tracker {
    kind: TrackerKind,
    weight: Weight,
    seen: Observation,
}

impl Tracker {
    fn effect(&self) -> Effect {
        match self.seen {
            Observation::Unknown => match self.kind {
                TrackerKind::File => self.weight.effect_of_value(None),
                _ => self.weight.effect_of_state(None),
            },
            Observation::Up(up) => self.weight.effect_of_state(Some(up)),
            Observation::Value(v) => self.weight.effect_of_value(Some(v)),
        }
    }
}

/// What the trackers make of an instance: feed it as [`crate::Event::Tracking`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrackingStatus {
    /// The effective priority: 1..=254, or 255 for the owner.
    pub priority: u8,
    /// Some tracker holds the instance in FAULT.
    pub fault: bool,
}

/// The trackers of one instance (its own and its sync group's) and what they observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracking {
    base: u8,
    trackers: Vec<Tracker>,
}

impl Tracking {
    /// No trackers yet; `base` is the configured `priority` (1..=255).
    pub fn new(base: u8) -> Tracking {
        Tracking {
            base,
            trackers: Vec::new(),
        }
    }

    /// The configured priority the adjustments apply to.
    pub fn base(&self) -> u8 {
        self.base
    }

    /// A reload changed `priority`: observations are kept.
    pub fn set_base(&mut self, base: u8) {
        self.base = base;
    }

    /// Adds a tracker, not observed yet.
    pub fn add(&mut self, kind: TrackerKind, weight: Weight) -> TrackerId {
        self.trackers.push(Tracker {
            kind,
            weight,
            seen: Observation::Unknown,
        });
        TrackerId(self.trackers.len() - 1)
    }

    pub fn len(&self) -> usize {
        self.trackers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }

    /// Records that an interface, script or process is up or down. Returns whether the
    /// observation changed; a file tracker or an unknown id is left alone (false).
    pub fn set_up(&mut self, id: TrackerId, up: bool) -> bool {
        self.observe(id, |kind| kind != TrackerKind::File, Observation::Up(up))
    }

    /// Records the value of a tracked file. Returns whether it changed; other kinds and
    /// unknown ids are left alone (false).
    pub fn set_value(&mut self, id: TrackerId, value: i64) -> bool {
        self.observe(
            id,
            |kind| kind == TrackerKind::File,
            Observation::Value(value),
        )
    }

    /// Forgets what a tracker observed (e.g. its script was reconfigured).
    pub fn set_unknown(&mut self, id: TrackerId) -> bool {
        self.observe(id, |_| true, Observation::Unknown)
    }

    fn observe(
        &mut self,
        id: TrackerId,
        fits: impl Fn(TrackerKind) -> bool,
        seen: Observation,
    ) -> bool {
        match self.trackers.get_mut(id.0) {
            Some(t) if fits(t.kind) && t.seen != seen => {
                t.seen = seen;
                true
            }
            _ => false,
        }
    }

    /// What one tracker does now (`None` for an unknown id).
    pub fn effect(&self, id: TrackerId) -> Option<Effect> {
        self.trackers.get(id.0).map(Tracker::effect)
    }

    /// The trackers holding the instance in FAULT, for logs.
    pub fn faults(&self) -> impl Iterator<Item = TrackerId> + '_ {
        self.trackers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.effect() == Effect::Fault)
            .map(|(i, _)| TrackerId(i))
    }

    /// The effective priority and whether the instance must be in FAULT.
    pub fn status(&self) -> TrackingStatus {
        let mut total = i64::from(self.base);
        let mut fault = false;
        for t in &self.trackers {
            match t.effect() {
                Effect::Fault => fault = true,
                Effect::Adjust(a) => total += i64::from(a),
            }
        }
        TrackingStatus {
            priority: effective_priority(self.base, total),
            fault,
        }
    }
}

/// keepalived's `vrrp_set_effective_priority`: the owner keeps 255; everybody else is
/// limited to 1..=254.
pub fn effective_priority(base: u8, total: i64) -> u8 {
    if base == PRIORITY_OWNER {
        PRIORITY_OWNER
    } else {
        total.clamp(1, i64::from(PRIORITY_OWNER - 1)) as u8
    }
}

/// How keepalived treats a configured tracker weight where weights are not allowed: for
/// the address owner, and in a sync group without `sync_group_tracking_weight`
/// (`vrrp.c`, instance checks at load time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightRule {
    /// The weight applies.
    Keep,
    /// The weight is replaced by 0: a failure means FAULT.
    Unweighted,
    /// The tracker is not used at all.
    Ignore,
}

/// keepalived's rule for a weighted tracker of an instance that is the address `owner`
/// or a member of a sync group without `sync_group_tracking_weight`
/// (`sync_without_weights`): interfaces become unweighted in a sync group and are
/// dropped for an owner; weighted scripts and processes are dropped; a file with the
/// default weight 1 becomes unweighted, other weighted files are dropped. Weight 0 is
/// always kept. Callers should warn about anything but [`WeightRule::Keep`].
pub fn weight_rule(
    kind: TrackerKind,
    weight: Weight,
    owner: bool,
    sync_without_weights: bool,
) -> WeightRule {
    if weight.value == 0 || !(owner || sync_without_weights) {
        return WeightRule::Keep;
    }
    match kind {
        TrackerKind::Interface if !owner => WeightRule::Unweighted,
        TrackerKind::File if weight.value == 1 => WeightRule::Unweighted,
        _ => WeightRule::Ignore,
    }
}

/// A script's `rise` / `fall` counter (keepalived's `vrrp_script` result), fed with raw
/// results: exit status 0 is a success; any other status, a signal, or being killed at
/// the timeout is a failure.
///
/// The first result decides at once (one success is OK, one failure is not); after that
/// it takes `fall` consecutive failures to go from OK to failed and `rise` consecutive
/// successes to come back. With `init_fail` the script starts failed instead of unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScriptCounter {
    rise: u32,
    fall: u32,
    /// keepalived's `result`: 0..rise is failed, rise..rise+fall is OK; the distance from
    /// the boundary counts the consecutive results still needed to cross it.
    result: u32,
    known: bool,
}

impl ScriptCounter {
    /// `rise` and `fall` are at least 1 (keepalived's default is 1 for both).
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Result<ScriptCounter, TrackingError> {
        if rise == 0 {
            return Err(TrackingError::ZeroCount("rise"));
        }
        if fall == 0 {
            return Err(TrackingError::ZeroCount("fall"));
        }
        if rise.checked_add(fall).is_none() {
            return Err(TrackingError::CountTooLarge);
        }
        Ok(ScriptCounter {
            rise,
            fall,
            result: if init_fail { 0 } else { rise - 1 },
            known: init_fail,
        })
    }

    /// `Some(true)` while OK, `Some(false)` while failed, `None` before the first result.
    pub fn status(&self) -> Option<bool> {
        self.known.then_some(self.result >= self.rise)
    }

    /// Records one run. Returns the new status when it changed (the first result always
    /// counts as a change), else `None`.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        let before = self.status();
        let top = self.rise + self.fall - 1;
        if success {
            if self.result + 1 < self.rise {
                self.result += 1;
            } else {
                // The rise-th success, or any success while OK: fully OK again.
                self.result = top;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            // The fall-th failure, or any failure while failed: fully failed again.
            self.result = 0;
        }
        self.known = true;
        let after = self.status();
        (after != before).then_some(after == Some(true))
    }
}

/// `vrrp_track_process`'s `quorum` / `quorum_max`: the process is up when the number of
/// matching processes is within `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessQuorum {
    pub min: u32,
    pub max: u32,
}

impl Default for ProcessQuorum {
    /// keepalived's defaults: at least one, no maximum.
    fn default() -> ProcessQuorum {
        ProcessQuorum {
            min: 1,
            max: u32::MAX,
        }
    }
}

impl ProcessQuorum {
    pub fn is_met(self, running: u32) -> bool {
        (self.min..=self.max).contains(&running)
    }
}

/// Reads a tracked file's value as keepalived does: C's `strtol(buf, NULL, 0)` over the
/// first 127 octets (leading white space, a sign, `0x` for hexadecimal, a leading `0`
/// for octal; text that is not a number reads as 0, and so does an empty file). `None`
/// when the number is out of range (keepalived then ignores the read and keeps the
/// previous value). A missing file reads as 0: that is the caller's business.
pub fn parse_track_file(contents: &[u8]) -> Option<i64> {
    let buf = &contents[..contents.len().min(127)];
    // strtol stops at the first NUL, like the C string keepalived builds.
    let buf = buf.split(|&b| b == 0).next().unwrap_or_default();
    let mut i = 0;
    while buf
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
    {
        i += 1;
    }
    let negative = match buf.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let hex_digit_after_prefix = buf.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let radix = if buf.get(i) == Some(&b'0')
        && matches!(buf.get(i + 1), Some(b'x' | b'X'))
        && hex_digit_after_prefix
    {
        i += 2;
        16
    } else if buf.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let mut value: i128 = 0;
    for &b in &buf[i..] {
        let Some(d) = (b as char).to_digit(radix) else {
            break;
        };
        value = value * i128::from(radix) + i128::from(d);
        if value > i128::from(u64::MAX) {
            // strtol's ERANGE: keepalived ignores the read.
            return None;
        }
    }
    let value = if negative { -value } else { value };
    let value = i64::try_from(value).ok()?;
    // keepalived accepts INT32_MIN ..= INT32_MAX + 1.
    (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1)
        .contains(&value)
        .then_some(value)
}

/// A tracker setting keepalived would refuse or silently change.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TrackingError {
    #[error("{kind} weight {value} is outside {min}..={max}")]
    WeightRange {
        kind: TrackerKind,
        value: i64,
        min: i32,
        max: i32,
    },
    #[error("vrrp_script {0} must be at least 1")]
    ZeroCount(&'static str),
    #[error("vrrp_script rise + fall is too large")]
    CountTooLarge,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: TrackerKind, v: i64, reverse: bool) -> Weight {
        Weight::new(kind, v, reverse).unwrap_or(Weight::UNWEIGHTED)
    }

    #[test]
    fn keepalived_weight_table() {
        use Effect::*;
        let i = TrackerKind::Interface;
        // Weight  Reverse  up     down   (keepalived.conf(5), track_bfd)
        assert_eq!(w(i, 10, false).effect_of_state(Some(true)), Adjust(10));
        assert_eq!(w(i, 10, false).effect_of_state(Some(false)), Adjust(0));
        assert_eq!(w(i, -10, false).effect_of_state(Some(true)), Adjust(0));
        assert_eq!(w(i, -10, false).effect_of_state(Some(false)), Adjust(-10));
        assert_eq!(w(i, 10, true).effect_of_state(Some(true)), Adjust(-10));
        assert_eq!(w(i, 10, true).effect_of_state(Some(false)), Adjust(0));
        assert_eq!(w(i, -10, true).effect_of_state(Some(true)), Adjust(0));
        assert_eq!(w(i, -10, true).effect_of_state(Some(false)), Adjust(10));
        assert_eq!(w(i, 0, false).effect_of_state(Some(false)), Fault);
        assert_eq!(w(i, 0, false).effect_of_state(Some(true)), Adjust(0));
        assert_eq!(w(i, 0, true).effect_of_state(Some(true)), Fault);
        assert_eq!(w(i, 0, true).effect_of_state(Some(false)), Adjust(0));
        assert_eq!(w(i, 0, true).effect_of_state(None), Fault);
        assert_eq!(w(i, 5, false).effect_of_state(None), Adjust(0));
    }

    #[test]
    fn weight_ranges_follow_keepalived() {
        assert!(Weight::new(TrackerKind::Interface, 253, false).is_ok());
        assert!(Weight::new(TrackerKind::Interface, 254, false).is_err());
        assert!(Weight::new(TrackerKind::Script, -254, false).is_err());
        assert!(Weight::new(TrackerKind::Process, -254, false).is_ok());
        assert!(Weight::new(TrackerKind::Process, 255, false).is_err());
        assert!(Weight::new(TrackerKind::File, 100_000, true).is_ok());
        assert!(Weight::new(TrackerKind::File, i64::from(i32::MIN), false).is_err());
    }

    #[test]
    fn file_values() {
        use Effect::*;
        let f = TrackerKind::File;
        assert_eq!(w(f, 1, false).effect_of_value(Some(-20)), Adjust(-20));
        assert_eq!(w(f, 1, false).effect_of_value(Some(-253)), Adjust(-253));
        assert_eq!(w(f, 1, false).effect_of_value(Some(-254)), Fault);
        assert_eq!(w(f, 2, false).effect_of_value(Some(-127)), Fault);
        assert_eq!(w(f, 1, false).effect_of_value(Some(1000)), Adjust(253));
        assert_eq!(w(f, 3, true).effect_of_value(Some(10)), Adjust(-30));
        assert_eq!(w(f, 0, false).effect_of_value(Some(7)), Fault);
        assert_eq!(w(f, 0, false).effect_of_value(Some(0)), Adjust(0));
        assert_eq!(w(f, 0, true).effect_of_value(Some(0)), Fault);
        assert_eq!(w(f, 0, true).effect_of_value(Some(-1)), Adjust(0));
        assert_eq!(
            w(f, i64::from(i32::MAX), false).effect_of_value(Some(i64::MIN)),
            Fault
        );
    }

    #[test]
    fn owner_and_clamping() {
        let mut t = Tracking::new(255);
        let a = t.add(
            TrackerKind::Interface,
            w(TrackerKind::Interface, -100, false),
        );
        t.set_up(a, false);
        assert_eq!(
            t.status(),
            TrackingStatus {
                priority: 255,
                fault: false
            }
        );
        let mut t = Tracking::new(100);
        let a = t.add(
            TrackerKind::Interface,
            w(TrackerKind::Interface, -100, false),
        );
        let b = t.add(TrackerKind::Script, w(TrackerKind::Script, 200, false));
        t.set_up(a, false);
        assert_eq!(t.status().priority, 1);
        t.set_up(b, true);
        assert_eq!(t.status().priority, 200);
        t.set_up(a, true);
        assert_eq!(t.status().priority, 254);
        assert!(!t.set_value(a, 3), "an interface has no value");
        assert!(!t.set_up(TrackerId(9), true));
    }

    #[test]
    fn script_counter_rise_and_fall() {
        let mut s = ScriptCounter::new(2, 3, false).expect("valid");
        assert_eq!(s.status(), None);
        assert_eq!(s.record(true), Some(true), "the first success decides");
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), None, "a success resets the fall count");
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), Some(false), "three failures in a row");
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(false), None, "a failure resets the rise count");
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(true), Some(true), "two successes in a row");
        let mut s = ScriptCounter::new(2, 3, false).expect("valid");
        assert_eq!(s.record(false), Some(false), "the first failure decides");
        let mut s = ScriptCounter::new(1, 1, true).expect("valid");
        assert_eq!(s.status(), Some(false));
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), Some(true));
        assert!(ScriptCounter::new(0, 1, false).is_err());
    }

    #[test]
    fn track_file_parsing_is_strtol() {
        let p = |s: &str| parse_track_file(s.as_bytes());
        assert_eq!(p(""), Some(0));
        assert_eq!(p("42\n"), Some(42));
        assert_eq!(p("  -17 apples"), Some(-17));
        assert_eq!(p("+5"), Some(5));
        assert_eq!(p("0x1F"), Some(31));
        assert_eq!(p("-0x10"), Some(-16));
        assert_eq!(p("010"), Some(8));
        assert_eq!(p("08"), Some(0));
        assert_eq!(p("0x"), Some(0));
        assert_eq!(p("0xg"), Some(0));
        assert_eq!(p("abc"), Some(0));
        assert_eq!(p("2147483648"), Some(2_147_483_648));
        assert_eq!(p("2147483649"), None);
        assert_eq!(p("-2147483648"), Some(-2_147_483_648));
        assert_eq!(p("-2147483649"), None);
        assert_eq!(p("99999999999999999999999"), None);
        assert_eq!(parse_track_file(b"12\x0034"), Some(12));
        let long = format!("{}7", " ".repeat(126));
        assert_eq!(p(&long), Some(7));
        let too_far = format!("{}7", " ".repeat(127));
        assert_eq!(p(&too_far), Some(0));
    }

    #[test]
    fn weight_rules_of_owner_and_sync_groups() {
        let i = TrackerKind::Interface;
        assert_eq!(
            weight_rule(i, w(i, 10, false), false, true),
            WeightRule::Unweighted
        );
        assert_eq!(
            weight_rule(i, w(i, 10, false), true, false),
            WeightRule::Ignore
        );
        assert_eq!(
            weight_rule(i, w(i, 10, false), false, false),
            WeightRule::Keep
        );
        let f = TrackerKind::File;
        assert_eq!(
            weight_rule(f, w(f, 1, false), true, false),
            WeightRule::Unweighted
        );
        assert_eq!(
            weight_rule(f, w(f, 2, false), true, false),
            WeightRule::Ignore
        );
        let s = TrackerKind::Script;
        assert_eq!(
            weight_rule(s, w(s, -5, false), false, true),
            WeightRule::Ignore
        );
        assert_eq!(
            weight_rule(s, Weight::UNWEIGHTED, true, true),
            WeightRule::Keep
        );
    }
}
