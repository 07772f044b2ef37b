//! The decisions of health checking, pure: attempt results in, verdict changes and the time of
//! the next attempt out. No sockets, no clock (time is an argument), so every rule below is
//! tested on virtual time.
//!
//! The rules are keepalived's (`check_tcp.c` `tcp_epilog`, `check_http.c` `epilog`,
//! `check_misc.c`, `ipwrapper.c` `update_svr_checker_state`, `check_data.c` defaults):
//! - A checker starts UP, or DOWN with `alpha`. Its first attempt runs at
//!   [`BOOTSTRAP_DELAY`] plus a random part of `warmup` after start.
//! - Before the first result one failure is enough to go DOWN (keepalived starts the retry
//!   counter at `retry`); afterwards an UP checker goes DOWN after `1 + retry` consecutive failed
//!   attempts, spaced by `delay_before_retry`. Any success resets the count and brings a DOWN
//!   checker UP.
//! - Otherwise the next attempt comes `delay_loop` later; while DOWN, `interval_while_down`
//!   later (keepalived's HTTP checker waits the longer of `delay_loop` and
//!   `delay_before_retry` there).
//! - Network checks count the interval from the end of an attempt, script checks from its start
//!   ([`Anchor`]).
//! - Not in keepalived: an attempt that started late (the daemon was starved of CPU, or the
//!   concurrency bound was reached) is counted from when it was due, and a next attempt that
//!   would already be past skips whole intervals. So checks keep the phases they were spread
//!   over and never bunch up after a stall. On time, this is keepalived's timing exactly.
//! - `smtp_check` counts its retries per round instead (`check_smtp.c`, [`RetryRule::EachRound`]):
//!   every round starts with no failure counted, each failure but the last of `1 + retry` is
//!   retried after `delay_before_retry`, also while DOWN and before the first result; the last
//!   decides DOWN, and the next round comes `delay_loop` later.
//! - `file_check` has no attempts: the value in its file sets its state and weight at once
//!   ([`CheckerMachine::observe`], `track_file.c`).
//! - A real server is UP when every one of its checkers is UP; its weight is the dynamic weight a
//!   `misc_dynamic` script last reported, else the configured one, plus the weights the
//!   `file_check`s add (keepalived's effective weight), bounded to 0..=2^31-1 as IPVS takes it.
//! - `notify_up` / `notify_down` run when the real server changes state, and `notify_down` also
//!   when under `alpha` a first failed result confirms the DOWN it started in.

use std::time::{Duration, Instant};

/// The largest weight IPVS takes (keepalived's `IPVS_WEIGHT_LIMIT`).
pub const MAX_WEIGHT: i64 = i32::MAX as i64;

/// keepalived's `BOOTSTRAP_DELAY`: the first attempt never runs before this much after start.
pub const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);

/// What the interval until the next attempt is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// From the end of the attempt (TCP and HTTP checks: keepalived arms the timer when the
    /// attempt completes).
    AttemptEnd,
    /// From the start of the attempt (script checks), never before its end.
    AttemptStart,
}

/// How failed attempts are counted towards DOWN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryRule {
    /// keepalived's common rule (TCP, HTTP, UDP, DNS, ping, misc): an UP checker goes DOWN
    /// after `1 + retry` consecutive failures; before the first result one failure is enough;
    /// a DOWN checker is not retried, only tried again every `interval_while_down`.
    #[default]
    WhileUp,
    /// `smtp_check`: rounds of up to `1 + retry` attempts, whatever the state.
    EachRound,
}

/// A checker's timing, every default already applied (see `plan.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub delay_loop: Duration,
    /// Retries after a failed attempt before an UP checker goes DOWN.
    pub retry: u32,
    pub delay_before_retry: Duration,
    /// The first attempt is spread uniformly over this window (after the bootstrap delay).
    pub warmup: Duration,
    /// Interval between attempts while DOWN.
    pub interval_while_down: Duration,
    pub anchor: Anchor,
    pub retries: RetryRule,
}

impl Timing {
    /// The simplest timing: retries every `delay_before_retry`, everything else `delay_loop`.
    pub fn new(delay_loop: Duration, retry: u32, delay_before_retry: Duration) -> Timing {
        Timing {
            delay_loop,
            retry,
            delay_before_retry,
            warmup: delay_loop,
            interval_while_down: delay_loop,
            anchor: Anchor::AttemptEnd,
            retries: RetryRule::WhileUp,
        }
    }
}

/// When an attempt was due, started and finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub due: Instant,
    pub started: Instant,
    pub finished: Instant,
}

impl Attempt {
    /// An attempt that started when it was due.
    pub fn on_time(started: Instant, finished: Instant) -> Attempt {
        Attempt {
            due: started,
            started,
            finished,
        }
    }
}

/// `next`, or if that is before `not_before`, the first instant after it that is a whole
/// number of `period`s later (the phase is kept).
fn keep_phase(next: Instant, period: Duration, not_before: Instant) -> Instant {
    if next >= not_before {
        return next;
    }
    if period.is_zero() {
        return not_before;
    }
    let periods = (not_before - next).as_nanos().div_ceil(period.as_nanos());
    u32::try_from(periods)
        .ok()
        .and_then(|n| period.checked_mul(n))
        .and_then(|d| next.checked_add(d))
        .unwrap_or(not_before)
}

/// The result of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed; `weight` is a dynamic weight (`misc_dynamic` exit code 2-255), else `None`.
    Pass {
        weight: Option<u32>,
    },
    Fail {
        error: String,
    },
}

impl Outcome {
    pub fn pass() -> Outcome {
        Outcome::Pass { weight: None }
    }

    pub fn fail(error: impl Into<String>) -> Outcome {
        Outcome::Fail {
            error: error.into(),
        }
    }

    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass { .. })
    }
}

/// What one result did to a checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckerStep {
    /// `Some(up)` when the checker changed state.
    pub became: Option<bool>,
    /// The first result of an `alpha` checker confirmed the DOWN it started in.
    pub confirmed_down: bool,
    /// The dynamic weight changed (only reported while the checker is UP).
    pub weight_changed: bool,
    pub next_attempt: Instant,
}

/// One checker of one real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerMachine {
    timing: Timing,
    up: bool,
    has_run: bool,
    /// Failed attempts since the last success, beyond which the next failure is final.
    retry_it: u32,
    weight: Option<u32>,
    /// What this checker adds to the real server's weight while UP (`file_check`).
    delta: i64,
}

impl CheckerMachine {
    pub fn new(timing: Timing, alpha: bool) -> CheckerMachine {
        CheckerMachine {
            timing,
            up: !alpha,
            has_run: false,
            // keepalived: "For non alpha mode, one failure is enough initially." (Its SMTP
            // checker starts every round at 0, the first one included.)
            retry_it: match timing.retries {
                RetryRule::WhileUp => timing.retry,
                RetryRule::EachRound => 0,
            },
            weight: None,
            delta: 0,
        }
    }

    /// A checker that continues another one's state under new timing (a reload that changed
    /// it): it has run, UP or DOWN as before, with no failures counted.
    pub fn resume(timing: Timing, up: bool) -> CheckerMachine {
        CheckerMachine {
            timing,
            up,
            has_run: true,
            retry_it: 0,
            weight: None,
            delta: 0,
        }
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// Failed attempts counted towards DOWN since the last success (0 while DOWN).
    pub fn failures(&self) -> u32 {
        if self.has_run { self.retry_it } else { 0 }
    }

    /// The dynamic weight while UP.
    pub fn weight(&self) -> Option<u32> {
        if self.up { self.weight } else { None }
    }

    /// What this checker adds to the weight while UP (`file_check`).
    pub fn delta(&self) -> i64 {
        if self.up { self.delta } else { 0 }
    }

    /// Sets the state of a checker that has no attempts (`file_check`: the file's value
    /// decides at once, as keepalived's track files). `now` is the step's `next_attempt`.
    pub fn observe(&mut self, now: Instant, up: bool, delta: i64) -> CheckerStep {
        let step = CheckerStep {
            became: (up != self.up).then_some(up),
            confirmed_down: false,
            weight_changed: self.has_run && self.up && up && delta != self.delta,
            next_attempt: now,
        };
        self.up = up;
        self.delta = if up { delta } else { 0 };
        self.has_run = true;
        self.retry_it = 0;
        step
    }

    /// When the first attempt runs: `spread` in [0, 1] picks the point in the warmup window
    /// (the driver draws it at random so that checks do not start together).
    pub fn first_attempt(&self, start: Instant, spread: f64) -> Instant {
        let spread = if spread.is_finite() {
            spread.clamp(0.0, 1.0)
        } else {
            0.0
        };
        start + BOOTSTRAP_DELAY + self.timing.warmup.mul_f64(spread)
    }

    /// Takes the result of an attempt.
    pub fn on_result(&mut self, a: Attempt, outcome: &Outcome) -> CheckerStep {
        let t = self.timing;
        let mut step = CheckerStep {
            became: None,
            confirmed_down: false,
            weight_changed: false,
            next_attempt: a.finished,
        };
        let mut decided = true;
        let delay = match outcome {
            Outcome::Pass { weight } => {
                self.retry_it = 0;
                if self.up {
                    step.weight_changed = self.has_run && *weight != self.weight;
                } else {
                    self.up = true;
                    step.became = Some(true);
                }
                self.weight = *weight;
                t.delay_loop
            }
            Outcome::Fail { .. } if t.retries == RetryRule::EachRound => {
                if self.retry_it < t.retry {
                    // A retry inside the round decides nothing (the first result is still to
                    // come for an alpha checker).
                    self.retry_it += 1;
                    decided = false;
                    t.delay_before_retry
                } else {
                    // The round is over: the next one starts with nothing counted.
                    self.retry_it = 0;
                    self.weight = None;
                    if self.up {
                        self.up = false;
                        step.became = Some(false);
                    } else if !self.has_run {
                        step.confirmed_down = true;
                    }
                    t.delay_loop
                }
            }
            Outcome::Fail { .. } => {
                if (self.up || !self.has_run) && self.retry_it >= t.retry {
                    self.retry_it = 0;
                    self.weight = None;
                    if self.up {
                        self.up = false;
                        step.became = Some(false);
                        t.interval_while_down
                    } else {
                        step.confirmed_down = true;
                        t.delay_loop
                    }
                } else if self.up {
                    self.retry_it += 1;
                    t.delay_before_retry
                } else {
                    t.interval_while_down
                }
            }
        };
        self.has_run |= decided;
        // Counted from when the attempt was due, as if it had started then.
        let anchor = match t.anchor {
            Anchor::AttemptEnd => a.due + a.finished.saturating_duration_since(a.started),
            Anchor::AttemptStart => a.due,
        };
        step.next_attempt = keep_phase(anchor + delay, delay, a.finished);
        step
    }
}

/// Which notify script a step calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    Up,
    Down,
}

/// What one result did to a real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerStep {
    pub checker: CheckerStep,
    /// The real server's verdict (up or weight) changed.
    pub verdict_changed: bool,
    pub notify: Option<Notify>,
}

/// A real server: its checkers, all of which must pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMachine {
    checkers: Vec<CheckerMachine>,
    /// The configured weight, which `file_check` weights add to.
    configured: u32,
    up: bool,
    weight: Option<u32>,
    /// A notify has run since start (the alpha confirmation runs at most once, before any).
    notified: bool,
}

impl ServerMachine {
    pub fn new(checkers: Vec<CheckerMachine>, configured: u32) -> ServerMachine {
        let mut m = ServerMachine {
            checkers,
            configured,
            up: false,
            weight: None,
            notified: false,
        };
        (m.up, m.weight) = m.aggregate();
        m
    }

    fn aggregate(&self) -> (bool, Option<u32>) {
        let up = self.checkers.iter().all(CheckerMachine::is_up);
        if !up {
            return (false, None);
        }
        let dynamic = self.checkers.iter().find_map(CheckerMachine::weight);
        let delta: i64 = self.checkers.iter().map(CheckerMachine::delta).sum();
        if delta == 0 {
            return (true, dynamic);
        }
        let base = i64::from(dynamic.unwrap_or(self.configured));
        let w = base.saturating_add(delta).clamp(0, MAX_WEIGHT);
        (true, Some(u32::try_from(w).unwrap_or(0)))
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The dynamic weight while UP; `None` means the configured weight.
    pub fn weight(&self) -> Option<u32> {
        self.weight
    }

    pub fn checkers(&self) -> &[CheckerMachine] {
        &self.checkers
    }

    /// Takes the result of checker `index`; `None` if there is no such checker.
    pub fn on_result(
        &mut self,
        index: usize,
        attempt: Attempt,
        outcome: &Outcome,
    ) -> Option<ServerStep> {
        let checker = self.checkers.get_mut(index)?.on_result(attempt, outcome);
        Some(self.step(checker))
    }

    /// Sets the state of checker `index` that has no attempts (`file_check`); `None` if there
    /// is no such checker.
    pub fn observe(
        &mut self,
        index: usize,
        now: Instant,
        up: bool,
        delta: i64,
    ) -> Option<ServerStep> {
        let checker = self.checkers.get_mut(index)?.observe(now, up, delta);
        Some(self.step(checker))
    }

    fn step(&mut self, checker: CheckerStep) -> ServerStep {
        let (up, weight) = self.aggregate();
        let notify = if up != self.up {
            Some(if up { Notify::Up } else { Notify::Down })
        } else if checker.confirmed_down && !up && !self.notified {
            Some(Notify::Down)
        } else {
            None
        };
        let verdict_changed = up != self.up || weight != self.weight;
        self.up = up;
        self.weight = weight;
        self.notified |= notify.is_some();
        ServerStep {
            checker,
            verdict_changed,
            notify,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    fn timing(retry: u32) -> Timing {
        Timing {
            delay_loop: 6 * S,
            retry,
            delay_before_retry: 3 * S,
            warmup: 6 * S,
            interval_while_down: 6 * S,
            anchor: Anchor::AttemptEnd,
            retries: RetryRule::WhileUp,
        }
    }

    /// Runs `outcomes` back to back, each attempt taking `took`, starting at the next attempt
    /// time; returns the steps.
    fn run(
        m: &mut CheckerMachine,
        t0: Instant,
        took: Duration,
        outcomes: &[bool],
    ) -> Vec<CheckerStep> {
        let mut at = m.first_attempt(t0, 0.0);
        outcomes
            .iter()
            .map(|&ok| {
                let o = if ok {
                    Outcome::pass()
                } else {
                    Outcome::fail("x")
                };
                let step = m.on_result(Attempt::on_time(at, at + took), &o);
                at = step.next_attempt;
                step
            })
            .collect()
    }

    #[test]
    fn first_failure_is_enough_without_alpha() {
        let t0 = Instant::now();
        let mut m = CheckerMachine::new(timing(3), false);
        assert!(m.is_up());
        let steps = run(&mut m, t0, Duration::ZERO, &[false]);
        assert_eq!(steps[0].became, Some(false));
        assert!(!m.is_up());
        assert_eq!(steps[0].next_attempt, t0 + BOOTSTRAP_DELAY + 6 * S);
    }

    #[test]
    fn up_checker_goes_down_after_one_plus_retry_failures() {
        let t0 = Instant::now();
        let mut m = CheckerMachine::new(timing(3), false);
        let steps = run(
            &mut m,
            t0,
            Duration::ZERO,
            &[true, false, false, false, false, true],
        );
        let became: Vec<_> = steps.iter().map(|s| s.became).collect();
        assert_eq!(became, [None, None, None, None, Some(false), Some(true)]);
        // first attempt at 1 s; success -> +6; three retries at +3 each; down at the 4th failure.
        let at: Vec<_> = steps.iter().map(|s| s.next_attempt - t0).collect();
        assert_eq!(at, [7 * S, 10 * S, 13 * S, 16 * S, 22 * S, 28 * S]);
    }

    #[test]
    fn alpha_starts_down_and_confirms() {
        let t0 = Instant::now();
        let mut m = CheckerMachine::new(timing(2), true);
        assert!(!m.is_up());
        let steps = run(&mut m, t0, Duration::ZERO, &[false, false, true]);
        assert!(steps[0].confirmed_down);
        assert_eq!(steps[0].became, None);
        assert!(!steps[1].confirmed_down);
        assert_eq!(steps[2].became, Some(true));
    }

    #[test]
    fn script_checks_count_from_the_start() {
        let t0 = Instant::now();
        let mut t = timing(0);
        t.anchor = Anchor::AttemptStart;
        let mut m = CheckerMachine::new(t, false);
        let s = m.on_result(Attempt::on_time(t0, t0 + 2 * S), &Outcome::pass());
        assert_eq!(s.next_attempt, t0 + 6 * S);
        // An attempt longer than the interval: the next one keeps the phase.
        let s = m.on_result(Attempt::on_time(t0, t0 + 9 * S), &Outcome::pass());
        assert_eq!(s.next_attempt, t0 + 12 * S);
    }

    #[test]
    fn dynamic_weight_follows_while_up() {
        let t0 = Instant::now();
        let mut m = ServerMachine::new(vec![CheckerMachine::new(timing(0), false)], 1);
        let w = |w| Outcome::Pass { weight: Some(w) };
        let s = m
            .on_result(0, Attempt::on_time(t0, t0), &w(5))
            .expect("checker 0");
        // The first result's weight is a change of the verdict (configured -> 5).
        assert!(s.verdict_changed);
        assert_eq!(m.weight(), Some(5));
        let s = m
            .on_result(0, Attempt::on_time(t0, t0), &w(5))
            .expect("checker 0");
        assert!(!s.verdict_changed);
        let s = m
            .on_result(0, Attempt::on_time(t0, t0), &w(7))
            .expect("checker 0");
        assert!(s.verdict_changed && s.checker.weight_changed);
        let s = m
            .on_result(0, Attempt::on_time(t0, t0), &Outcome::fail("exit 1"))
            .expect("checker 0");
        assert_eq!((s.notify, m.weight()), (Some(Notify::Down), None));
        let s = m
            .on_result(0, Attempt::on_time(t0, t0), &Outcome::pass())
            .expect("checker 0");
        assert_eq!((s.notify, m.weight()), (Some(Notify::Up), None));
    }

    #[test]
    fn all_checkers_must_pass() {
        let t0 = Instant::now();
        let mk = || CheckerMachine::new(timing(0), false);
        let mut m = ServerMachine::new(vec![mk(), mk()], 1);
        let fail = Outcome::fail("refused");
        let s = m.on_result(0, Attempt::on_time(t0, t0), &fail).expect("0");
        assert_eq!(s.notify, Some(Notify::Down));
        let s = m.on_result(1, Attempt::on_time(t0, t0), &fail).expect("1");
        assert_eq!((s.notify, s.verdict_changed), (None, false));
        let s = m
            .on_result(0, Attempt::on_time(t0, t0), &Outcome::pass())
            .expect("0");
        assert_eq!((s.notify, m.is_up()), (None, false));
        let s = m
            .on_result(1, Attempt::on_time(t0, t0), &Outcome::pass())
            .expect("1");
        assert_eq!((s.notify, m.is_up()), (Some(Notify::Up), true));
        assert!(m.on_result(2, Attempt::on_time(t0, t0), &fail).is_none());
    }

    #[test]
    fn alpha_server_notifies_down_once_on_confirmation() {
        let t0 = Instant::now();
        let mk = || CheckerMachine::new(timing(0), true);
        let mut m = ServerMachine::new(vec![mk(), mk()], 1);
        assert!(!m.is_up());
        let fail = Outcome::fail("refused");
        let s = m.on_result(0, Attempt::on_time(t0, t0), &fail).expect("0");
        assert_eq!((s.notify, s.verdict_changed), (Some(Notify::Down), false));
        let s = m.on_result(1, Attempt::on_time(t0, t0), &fail).expect("1");
        assert_eq!(s.notify, None);
    }

    #[test]
    fn resumed_checkers_keep_their_state() {
        let t0 = Instant::now();
        let mut m = CheckerMachine::resume(timing(1), false);
        // DOWN stays DOWN without a new notify (no alpha confirmation), and one success is UP.
        let s = m.on_result(Attempt::on_time(t0, t0), &Outcome::fail("x"));
        assert_eq!((s.became, s.confirmed_down), (None, false));
        let s = m.on_result(Attempt::on_time(t0, t0), &Outcome::pass());
        assert_eq!(s.became, Some(true));
        // UP needs 1 + retry failures, not one.
        let mut m = CheckerMachine::resume(timing(1), true);
        let s = m.on_result(Attempt::on_time(t0, t0), &Outcome::fail("x"));
        assert_eq!(s.became, None);
        let s = m.on_result(Attempt::on_time(t0, t0), &Outcome::fail("x"));
        assert_eq!(s.became, Some(false));
    }

    #[test]
    fn smtp_retries_every_round_whatever_the_state() {
        let t0 = Instant::now();
        let mut t = timing(2);
        t.retries = RetryRule::EachRound;
        let mut m = CheckerMachine::new(t, false);
        // At start 1 + retry failures are needed (not one), dbr (3 s) apart.
        let steps = run(&mut m, t0, Duration::ZERO, &[false, false, false]);
        let became: Vec<_> = steps.iter().map(|s| s.became).collect();
        assert_eq!(became, [None, None, Some(false)]);
        let at: Vec<_> = steps.iter().map(|s| s.next_attempt - t0).collect();
        assert_eq!(at, [4 * S, 7 * S, 13 * S]);
        // DOWN: a new round, retried again before delay_loop; a success in it is UP.
        let mut at = t0 + 13 * S;
        for (ok, next, became) in [
            (false, 16, None),
            (false, 19, None),
            (false, 25, None),
            (false, 28, None),
            (true, 34, Some(true)),
        ] {
            let o = if ok {
                Outcome::pass()
            } else {
                Outcome::fail("x")
            };
            let s = m.on_result(Attempt::on_time(at, at), &o);
            assert_eq!((s.next_attempt - t0, s.became), (next * S, became));
            at = s.next_attempt;
        }
        // alpha: the first exhausted round confirms DOWN once.
        let mut m = CheckerMachine::new(t, true);
        let steps = run(
            &mut m,
            t0,
            Duration::ZERO,
            &[false, false, false, false, false, false],
        );
        let confirmed: Vec<_> = steps.iter().map(|s| s.confirmed_down).collect();
        assert_eq!(confirmed, [false, false, true, false, false, false]);
    }

    #[test]
    fn file_checks_set_state_and_add_weight() {
        let t0 = Instant::now();
        let file = || CheckerMachine::new(timing(0), false);
        let mut m = ServerMachine::new(vec![file(), CheckerMachine::new(timing(0), false)], 3);
        let s = m.observe(0, t0, true, 2).expect("file");
        assert!(s.verdict_changed && s.notify.is_none());
        assert_eq!(m.weight(), Some(5));
        // A dynamic weight replaces the configured one; the file still adds to it, and the sum
        // is bounded at 0 (still UP, as keepalived's real_weight).
        m.on_result(
            1,
            Attempt::on_time(t0, t0),
            &Outcome::Pass { weight: Some(7) },
        )
        .expect("misc");
        assert_eq!(m.weight(), Some(9));
        let s = m.observe(0, t0, true, -20).expect("file");
        assert!(s.verdict_changed && s.checker.weight_changed);
        assert_eq!((m.is_up(), m.weight()), (true, Some(0)));
        let s = m.observe(0, t0, false, 0).expect("file");
        assert_eq!((s.notify, m.weight()), (Some(Notify::Down), None));
        let s = m.observe(0, t0, true, 0).expect("file");
        assert_eq!((s.notify, m.weight()), (Some(Notify::Up), Some(7)));
        let s = m.observe(0, t0, true, 0).expect("file");
        assert!(!s.verdict_changed && s.checker.became.is_none());
        assert_eq!(
            ServerMachine::new(vec![file()], 3)
                .observe(0, t0, true, i64::MAX)
                .map(|_| ()),
            Some(())
        );
        let mut big = ServerMachine::new(vec![file()], 3);
        big.observe(0, t0, true, i64::MAX);
        assert_eq!(big.weight(), Some(i32::MAX as u32));
    }

    #[test]
    fn no_checkers_is_up() {
        assert!(ServerMachine::new(Vec::new(), 1).is_up());
    }

    /// A reference model of keepalived's rule, written the other way round: count the
    /// consecutive failures since the last success (or since start) and decide from the count.
    fn model_up(alpha: bool, retry: u32, outcomes: &[bool]) -> Vec<bool> {
        let mut up = !alpha;
        let mut fails = 0u32;
        let mut ran = false;
        outcomes
            .iter()
            .map(|&ok| {
                if ok {
                    fails = 0;
                    up = true;
                } else {
                    fails += 1;
                    // Before any result one failure is final; after, 1 + retry of them.
                    if !ran || fails > retry {
                        up = false;
                    }
                }
                ran = true;
                up
            })
            .collect()
    }

    fn arb_timing() -> impl Strategy<Value = Timing> {
        (
            1u64..100,
            0u32..6,
            0u64..100,
            0u64..100,
            0u64..100,
            any::<bool>(),
        )
            .prop_map(|(dl, retry, dbr, warm, down, start)| Timing {
                delay_loop: Duration::from_millis(dl * 100),
                retry,
                delay_before_retry: Duration::from_millis(dbr * 100),
                warmup: Duration::from_millis(warm * 100),
                interval_while_down: Duration::from_millis(dl.max(down) * 100),
                anchor: if start {
                    Anchor::AttemptStart
                } else {
                    Anchor::AttemptEnd
                },
                retries: RetryRule::WhileUp,
            })
    }

    proptest! {
        #[test]
        fn state_matches_the_retry_model(
            alpha in any::<bool>(),
            retry in 0u32..6,
            outcomes in proptest::collection::vec(any::<bool>(), 0..60),
        ) {
            let t0 = Instant::now();
            let mut m = CheckerMachine::new(timing(retry), alpha);
            let steps = run(&mut m, t0, Duration::from_millis(10), &outcomes);
            let expected = model_up(alpha, retry, &outcomes);
            let mut prev = !alpha;
            for (i, (step, want)) in steps.iter().zip(&expected).enumerate() {
                let up = step.became.unwrap_or(prev);
                prop_assert_eq!(up, *want, "after result {}", i);
                prop_assert_eq!(step.became.is_some(), up != prev);
                prev = up;
            }
            prop_assert_eq!(m.is_up(), *expected.last().unwrap_or(&!alpha));
        }

        #[test]
        fn smtp_rounds_match_their_model(
            alpha in any::<bool>(),
            retry in 0u32..5,
            outcomes in proptest::collection::vec(any::<bool>(), 0..60),
        ) {
            // keepalived's check_smtp.c read the other way round: count failures in the round;
            // the round ends at a success or at failure number 1 + retry.
            let t0 = Instant::now();
            let mut t = timing(retry);
            t.retries = RetryRule::EachRound;
            let mut m = CheckerMachine::new(t, alpha);
            let mut up = !alpha;
            let mut in_round = 0u32;
            let mut at = m.first_attempt(t0, 0.0);
            for ok in outcomes {
                let o = if ok { Outcome::pass() } else { Outcome::fail("x") };
                let s = m.on_result(Attempt::on_time(at, at), &o);
                let delay = if ok {
                    in_round = 0;
                    up = true;
                    t.delay_loop
                } else if in_round < retry {
                    in_round += 1;
                    t.delay_before_retry
                } else {
                    in_round = 0;
                    up = false;
                    t.delay_loop
                };
                prop_assert_eq!(m.is_up(), up);
                prop_assert_eq!(s.next_attempt, at + delay);
                at = s.next_attempt;
            }
        }

        #[test]
        fn next_attempt_follows_the_delays(
            t in arb_timing(),
            alpha in any::<bool>(),
            outcomes in proptest::collection::vec((any::<bool>(), 0u64..5000), 1..60),
        ) {
            let t0 = Instant::now();
            let mut m = CheckerMachine::new(t, alpha);
            let mut at = m.first_attempt(t0, 0.5);
            for (ok, took_ms) in outcomes {
                let took = Duration::from_millis(took_ms);
                let was_up = m.is_up();
                let had_run = m.has_run();
                let retry_it = if had_run { m.failures() } else { t.retry };
                let o = if ok { Outcome::pass() } else { Outcome::fail("x") };
                let step = m.on_result(Attempt::on_time(at, at + took), &o);
                let anchor = match t.anchor {
                    Anchor::AttemptEnd => at + took,
                    Anchor::AttemptStart => at,
                };
                // Which delay keepalived picks.
                let delay = if ok {
                    t.delay_loop
                } else if (was_up || !had_run) && retry_it >= t.retry {
                    if was_up { t.interval_while_down } else { t.delay_loop }
                } else if was_up {
                    t.delay_before_retry
                } else {
                    t.interval_while_down
                };
                prop_assert_eq!(step.next_attempt, keep_phase(anchor + delay, delay, at + took));
                prop_assert!(step.next_attempt >= at + took);
                at = step.next_attempt;
            }
        }

        #[test]
        fn late_starts_keep_their_phase(
            t in arb_timing(),
            outcomes in proptest::collection::vec((any::<bool>(), 0u64..3000, 0u64..20_000), 1..40),
        ) {
            // Each attempt starts `late_ms` after it was due and takes `took_ms`. The next one
            // is a whole number of intervals after (due + duration + interval), never before
            // the end of the attempt, and less than one interval after it when it had to skip.
            let t0 = Instant::now();
            let mut m = CheckerMachine::new(t, false);
            let mut due = m.first_attempt(t0, 0.25);
            for (ok, took_ms, late_ms) in outcomes {
                let started = due + Duration::from_millis(late_ms);
                let finished = started + Duration::from_millis(took_ms);
                let o = if ok { Outcome::pass() } else { Outcome::fail("x") };
                let step = m.on_result(Attempt { due, started, finished }, &o);
                let next = step.next_attempt;
                prop_assert!(next >= finished);
                let anchor = match t.anchor {
                    Anchor::AttemptEnd => due + (finished - started),
                    Anchor::AttemptStart => due,
                };
                let base = next.checked_duration_since(anchor).expect("after the anchor");
                let delays = [t.delay_loop, t.delay_before_retry, t.interval_while_down];
                prop_assert!(
                    delays.iter().any(|&d| {
                        d.is_zero() && next == finished.max(anchor)
                            || !d.is_zero() && base >= d && (base - d).as_nanos().is_multiple_of(d.as_nanos())
                                && (next == anchor + d || next < finished + d)
                    }),
                    "next {:?} after anchor, delays {:?}", base, delays
                );
                due = next;
            }
        }

        #[test]
        fn warmup_spreads_the_first_attempt(t in arb_timing(), spread in -1.0f64..2.0) {
            let t0 = Instant::now();
            let m = CheckerMachine::new(t, false);
            let first = m.first_attempt(t0, spread);
            prop_assert!(first >= t0 + BOOTSTRAP_DELAY);
            prop_assert!(first <= t0 + BOOTSTRAP_DELAY + t.warmup);
            if spread <= 0.0 {
                prop_assert_eq!(first, t0 + BOOTSTRAP_DELAY);
            }
        }

        #[test]
        fn server_is_up_iff_every_checker_is(
            alphas in proptest::collection::vec(any::<bool>(), 1..4),
            results in proptest::collection::vec((0usize..4, any::<bool>(), 0u32..10), 0..80),
        ) {
            let t0 = Instant::now();
            let mut m = ServerMachine::new(
                alphas.iter().map(|&a| CheckerMachine::new(timing(1), a)).collect(),
                1,
            );
            let mut up = m.is_up();
            let mut last_notify = None;
            for (i, ok, w) in results {
                let i = i % alphas.len();
                let o = if ok { Outcome::Pass { weight: Some(w) } } else { Outcome::fail("x") };
                let Some(s) = m.on_result(i, Attempt::on_time(t0, t0), &o) else { continue };
                let all = m.checkers().iter().all(CheckerMachine::is_up);
                prop_assert_eq!(m.is_up(), all);
                match s.notify {
                    Some(Notify::Up) => prop_assert!(!up && m.is_up()),
                    Some(Notify::Down) => {
                        prop_assert!(!m.is_up());
                        // Never two notify_down without a notify_up between them.
                        prop_assert_ne!(last_notify, Some(Notify::Down));
                    }
                    None => prop_assert_eq!(up, m.is_up()),
                }
                if !m.is_up() {
                    prop_assert_eq!(m.weight(), None);
                }
                last_notify = s.notify.or(last_notify);
                up = m.is_up();
            }
        }
    }
}
