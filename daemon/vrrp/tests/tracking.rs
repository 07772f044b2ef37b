//! Tracking arithmetic against a model of keepalived's own bookkeeping: keepalived keeps
//! a running `total_priority` and a fault count and moves them on every transition
//! (`vrrp_track.c`: `initialise_*_tracking_priorities`, `process_script_update_priority`,
//! `process_update_track_process_status`; `track_file.c`:
//! `process_update_vrrp_track_file_status`; `vrrp_scheduler.c`: the script `result`
//! counter). `Tracking` recomputes the sum from the observations instead; both must agree
//! after every step of arbitrary sequences.

use keeper_vrrp::{
    Event, Instance, InstanceConfig, ScriptCounter, State, TrackerId, TrackerKind, Tracking,
    TrackingStatus, Version, Weight,
};
use proptest::prelude::*;

// ----- keepalived's model

/// keepalived's vrrp_script result counter, literally (init_state INIT / DONE / FAILED).
#[derive(Clone, Debug)]
struct KaScript {
    rise: i64,
    fall: i64,
    result: i64,
    init: bool,
}

impl KaScript {
    fn new(rise: i64, fall: i64, init_fail: bool) -> KaScript {
        KaScript {
            rise,
            fall,
            result: if init_fail { 0 } else { rise - 1 },
            init: !init_fail,
        }
    }

    /// Returns `Some(ok)` when keepalived calls update_script_priorities.
    fn record(&mut self, success: bool) -> Option<bool> {
        let mut reported = None;
        if success {
            if self.result < self.rise - 1 {
                self.result += 1;
            } else if self.result != self.rise + self.fall - 1 {
                if self.result < self.rise {
                    reported = Some(true);
                }
                self.result = self.rise + self.fall - 1;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            if self.result == self.rise || self.init {
                reported = Some(false);
            }
            self.result = 0;
        }
        self.init = false;
        reported
    }
}

#[derive(Clone, Debug)]
enum KaObject {
    /// Interface or process: observed at start-up, then transitions.
    Flag(bool),
    Script {
        counter: KaScript,
        /// SCRIPT_INIT_STATE_INIT until the first reported result.
        init: bool,
    },
    File(i64),
}

#[derive(Clone, Debug)]
struct KaTracker {
    weight: i64,
    mult: i64,
    object: KaObject,
    faulting: bool,
}

struct Keepalived {
    base: i64,
    total: i64,
    trackers: Vec<KaTracker>,
}

fn file_status(weight: i64, mult: i64, value: i64) -> i64 {
    let s = if weight == 0 {
        if (value != 0) == (mult == 1) { -254 } else { 0 }
    } else {
        value * weight * mult
    };
    s.clamp(-254, 253)
}

impl Keepalived {
    fn new(base: i64, trackers: Vec<KaTracker>) -> Keepalived {
        let mut k = Keepalived {
            base,
            total: base,
            trackers,
        };
        for t in &mut k.trackers {
            let (w, m) = (t.weight, t.mult);
            match &t.object {
                KaObject::Flag(up) => {
                    if w == 0 {
                        t.faulting = *up != (m == 1);
                    } else if (*up && w > 0) || (!*up && w < 0) {
                        k.total += w * m;
                    }
                }
                // Unweighted scripts in INIT keep the instance down (num_script_init).
                KaObject::Script { .. } => t.faulting = w == 0,
                KaObject::File(v) => {
                    let s = file_status(w, m, *v);
                    if s == -254 {
                        t.faulting = true;
                    } else {
                        k.total += s;
                    }
                }
            }
        }
        k
    }

    fn set_flag(&mut self, i: usize, now_up: bool) {
        let t = &mut self.trackers[i];
        let KaObject::Flag(up) = &mut t.object else {
            return;
        };
        if *up == now_up {
            return;
        }
        *up = now_up;
        if t.weight == 0 {
            t.faulting = now_up != (t.mult == 1);
        } else if (t.weight > 0) == now_up {
            self.total += t.weight * t.mult;
        } else {
            self.total -= t.weight * t.mult;
        }
    }

    fn script_result(&mut self, i: usize, success: bool) {
        let t = &mut self.trackers[i];
        let KaObject::Script { counter, init } = &mut t.object else {
            return;
        };
        let Some(ok) = counter.record(success) else {
            return;
        };
        let (w, m) = (t.weight, t.mult);
        if w == 0 {
            t.faulting = ok != (m == 1);
        } else if *init {
            if (ok && w > 0) || (!ok && w < 0) {
                self.total += w * m;
            }
        } else if ok {
            self.total += w.abs() * m;
        } else {
            self.total -= w.abs() * m;
        }
        *init = false;
    }

    fn set_file(&mut self, i: usize, value: i64) {
        let t = &mut self.trackers[i];
        let KaObject::File(last) = &mut t.object else {
            return;
        };
        if *last == value {
            return;
        }
        let previous = file_status(t.weight, t.mult, *last);
        let new = file_status(t.weight, t.mult, value);
        *last = value;
        if previous == new {
            return;
        }
        if new == -254 {
            if t.weight != 0 {
                self.total -= previous;
            }
            t.faulting = true;
        } else if previous == -254 {
            if t.weight != 0 {
                self.total += new;
            }
            t.faulting = false;
        } else {
            self.total += new - previous;
        }
    }

    fn status(&self) -> TrackingStatus {
        let priority = if self.base == 255 {
            255
        } else {
            self.total.clamp(1, 254) as u8
        };
        TrackingStatus {
            priority,
            fault: self.trackers.iter().any(|t| t.faulting),
        }
    }
}

// ----- the generated cases

#[derive(Clone, Debug)]
struct Spec {
    kind: TrackerKind,
    weight: i64,
    reverse: bool,
    /// Interfaces and processes: up at start. Files: the value at start.
    initial: i64,
    rise: u32,
    fall: u32,
    init_fail: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![
            Just(TrackerKind::Interface),
            Just(TrackerKind::Script),
            Just(TrackerKind::File),
            Just(TrackerKind::Process),
        ],
        prop_oneof![
            2 => Just(0i64),
            5 => -253i64..=253,
            1 => Just(253i64),
            1 => Just(-253i64),
            2 => prop_oneof![Just(1i64), Just(-1), Just(2), Just(-2)],
        ],
        any::<bool>(),
        file_value(),
        1u32..4,
        1u32..4,
        any::<bool>(),
    )
        .prop_map(
            |(kind, weight, reverse, initial, rise, fall, init_fail)| Spec {
                kind,
                weight,
                reverse,
                initial,
                rise,
                fall,
                init_fail,
            },
        )
}

/// Values around the FAULT boundary (-254 after the weight) and the limits.
fn file_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => -300i64..300,
        1 => -2i64..3,
        2 => prop_oneof![Just(-254i64), Just(-253), Just(-127), Just(127), Just(254), Just(253)],
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Flag(usize, bool),
    Script(usize, bool),
    File(usize, i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..8, any::<bool>()).prop_map(|(i, b)| Step::Flag(i, b)),
        (0usize..8, any::<bool>()).prop_map(|(i, b)| Step::Script(i, b)),
        (0usize..8, file_value()).prop_map(|(i, v)| Step::File(i, v)),
    ]
}

fn build(
    base: u8,
    specs: &[Spec],
) -> (
    Tracking,
    Vec<TrackerId>,
    Vec<Option<ScriptCounter>>,
    Keepalived,
) {
    let mut ours = Tracking::new(base);
    let mut ids = Vec::new();
    let mut scripts = Vec::new();
    let mut ka = Vec::new();
    for s in specs {
        let weight = Weight::new(s.kind, s.weight, s.reverse).expect("generated in range");
        let id = ours.add(s.kind, weight);
        ids.push(id);
        let object = match s.kind {
            TrackerKind::Interface | TrackerKind::Process => {
                ours.set_up(id, s.initial > 0);
                KaObject::Flag(s.initial > 0)
            }
            TrackerKind::File => {
                ours.set_value(id, s.initial);
                KaObject::File(s.initial)
            }
            TrackerKind::Script => {
                let counter = ScriptCounter::new(s.rise, s.fall, s.init_fail).expect("valid");
                if let Some(ok) = counter.status() {
                    ours.set_up(id, ok);
                }
                KaObject::Script {
                    counter: KaScript::new(i64::from(s.rise), i64::from(s.fall), s.init_fail),
                    init: !s.init_fail,
                }
            }
        };
        scripts.push(
            (s.kind == TrackerKind::Script)
                .then(|| ScriptCounter::new(s.rise, s.fall, s.init_fail).expect("valid")),
        );
        ka.push(KaTracker {
            weight: s.weight,
            mult: if s.reverse { -1 } else { 1 },
            object,
            faulting: false,
        });
    }
    let mut model = Keepalived::new(i64::from(base), ka);
    // An init_fail script is failed from the start (keepalived's FAILED init state),
    // counted like an object observed down. (keepalived's initialise_track_script_state
    // forgets `reverse` here; the transitions after it do not, and neither does keeper.)
    for (i, s) in specs.iter().enumerate() {
        if s.kind == TrackerKind::Script && s.init_fail {
            let t = &mut model.trackers[i];
            t.faulting = s.weight == 0 && !s.reverse;
            if s.weight < 0 {
                model.total += s.weight * t.mult;
            }
        }
    }
    (ours, ids, scripts, model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn tracking_agrees_with_keepalived_bookkeeping(
        base in prop_oneof![1u8..=255, Just(255u8), Just(1u8), Just(254u8)],
        specs in prop::collection::vec(spec(), 0..8),
        steps in prop::collection::vec(step(), 0..60),
    ) {
        let (mut ours, ids, mut scripts, mut model) = build(base, &specs);
        prop_assert_eq!(ours.status(), model.status(), "at start");
        for s in steps {
            match s {
                Step::Flag(i, up) => {
                    let Some(spec) = specs.get(i) else { continue };
                    if !matches!(spec.kind, TrackerKind::Interface | TrackerKind::Process) {
                        continue;
                    }
                    ours.set_up(ids[i], up);
                    model.set_flag(i, up);
                }
                Step::Script(i, success) => {
                    let Some(Some(counter)) = scripts.get_mut(i) else { continue };
                    if let Some(ok) = counter.record(success) {
                        ours.set_up(ids[i], ok);
                    }
                    model.script_result(i, success);
                }
                Step::File(i, v) => {
                    if specs.get(i).map(|s| s.kind) != Some(TrackerKind::File) {
                        continue;
                    }
                    ours.set_value(ids[i], v);
                    model.set_file(i, v);
                }
            }
            let status = ours.status();
            prop_assert_eq!(status, model.status());
            if base == 255 {
                prop_assert_eq!(status.priority, 255);
            } else {
                prop_assert!((1..=254).contains(&status.priority));
            }
            prop_assert_eq!(status.fault, ours.faults().next().is_some());
        }
    }

    #[test]
    fn script_counter_is_keepalived_result_counter(
        rise in 1u32..6,
        fall in 1u32..6,
        init_fail in any::<bool>(),
        results in prop::collection::vec(any::<bool>(), 0..80),
    ) {
        let mut ours = ScriptCounter::new(rise, fall, init_fail).expect("valid");
        let mut ka = KaScript::new(i64::from(rise), i64::from(fall), init_fail);
        let mut ok: Option<bool> = init_fail.then_some(false);
        let mut run = 0u32; // consecutive equal results
        let mut last = None;
        for r in results {
            run = if last == Some(r) { run + 1 } else { 1 };
            last = Some(r);
            let changed = ours.record(r);
            prop_assert_eq!(changed, ka.record(r));
            if let Some(now_ok) = changed {
                // Once known, a change needs `rise` successes or `fall` failures in a row.
                if ok.is_some() {
                    prop_assert_eq!(run, if now_ok { rise } else { fall });
                }
                ok = Some(now_ok);
            }
            prop_assert_eq!(ours.status(), ok);
        }
    }

    #[test]
    fn parse_track_file_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = keeper_vrrp::tracking::parse_track_file(&bytes);
    }

    #[test]
    fn parse_track_file_reads_what_display_writes(v in i32::MIN..=i32::MAX, pad in 0usize..5) {
        let text = format!("{}{v}\n", " ".repeat(pad));
        prop_assert_eq!(keeper_vrrp::tracking::parse_track_file(text.as_bytes()), Some(i64::from(v)));
    }
}

/// The instance follows the status: priority in the next advert, fault from a tracker,
/// and a tracker fault does not clear while the link is down.
#[test]
fn instance_follows_tracking_status() {
    use std::time::{Duration, Instant};
    let me = "10.77.0.11".parse().expect("address");
    let vip = "10.77.0.100".parse().expect("address");
    let mut vr = Instance::new(InstanceConfig::new(51, Version::V3, me, vec![vip])).expect("valid");
    let t0 = Instant::now();
    let mut tracking = Tracking::new(100);
    let script = tracking.add(
        TrackerKind::Script,
        Weight::new(TrackerKind::Script, 0, false).expect("valid"),
    );
    let nic = tracking.add(
        TrackerKind::Interface,
        Weight::new(TrackerKind::Interface, -30, false).expect("valid"),
    );
    tracking.set_up(nic, true);
    // An unweighted script that has not reported holds the instance in Fault.
    vr.handle(t0, Event::Tracking(tracking.status()));
    vr.handle(t0, Event::Startup);
    assert_eq!(vr.state(), State::Fault);
    assert!(vr.fault_causes().tracking);
    tracking.set_up(script, true);
    vr.handle(t0, Event::Tracking(tracking.status()));
    assert_eq!(vr.state(), State::Backup);
    let t1 = t0 + Duration::from_secs(5);
    while let Some(d) = vr.poll_timeout().filter(|&d| d <= t1) {
        vr.handle_timeout(d);
    }
    assert_eq!(vr.state(), State::Master);
    tracking.set_up(nic, false);
    vr.handle(t1, Event::Tracking(tracking.status()));
    assert_eq!(vr.effective_priority(), 70);
    // Link down, then the script fails and recovers: still Fault until the link is up.
    vr.handle(t1, Event::InterfaceDown);
    tracking.set_up(script, false);
    vr.handle(t1, Event::Tracking(tracking.status()));
    tracking.set_up(script, true);
    vr.handle(t1, Event::Tracking(tracking.status()));
    assert_eq!(vr.state(), State::Fault);
    vr.handle(t1, Event::InterfaceUp);
    assert_eq!(vr.state(), State::Backup);
}
