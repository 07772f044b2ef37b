//! When a master sends gratuitous ARP / unsolicited NA rounds, on virtual time.

use std::time::Instant;

use crate::config::GarpConfig;

/// The pending rounds of a master. Empty (all `None`) when not master.
#[derive(Clone, Debug)]
pub(crate) struct AnnounceSchedule {
    garp: GarpConfig,
    /// Rounds left in the current burst, the next one at `next_round`.
    burst_left: u32,
    next_round: Option<Instant>,
    /// Second bursts, `master_delay` after the takeover burst and after the latest
    /// answer to a lower priority (at most these two, like keepalived's two timers).
    repeats: Vec<Instant>,
    /// The next periodic refresh.
    refresh_at: Option<Instant>,
}

impl AnnounceSchedule {
    pub(crate) fn new(garp: GarpConfig) -> AnnounceSchedule {
        AnnounceSchedule {
            garp,
            burst_left: 0,
            next_round: None,
            repeats: Vec::with_capacity(2),
            refresh_at: None,
        }
    }

    /// Becoming master: a burst now, the second after `master_delay`, then the refresh.
    pub(crate) fn start_master(&mut self, now: Instant) {
        self.stop();
        self.burst(now, self.garp.master_repeat);
        self.repeats.extend(self.repeat_time(now));
        // A period too large for the clock means "never" (checked_add), not a panic.
        self.refresh_at = self
            .garp
            .master_refresh
            .and_then(|period| now.checked_add(self.garp.master_delay)?.checked_add(period));
    }

    /// Answering a lower-priority master (split brain): a burst now and the second after
    /// `master_delay` (keepalived's `garp_lower_prio_repeat` / `_delay` defaults). The
    /// refresh keeps its phase.
    pub(crate) fn answer(&mut self, now: Instant) {
        self.burst(now, self.garp.master_repeat);
        if let Some(at) = self.repeat_time(now) {
            // Bounded under a flood of lower-priority adverts: the newest answer's
            // repeat replaces the previous answer's.
            if self.repeats.len() >= 2 {
                self.repeats.pop();
            }
            self.repeats.push(at);
        }
    }

    /// A reload changed the schedule: future bursts use the new counts and spacing; a
    /// changed refresh period restarts the refresh from now (only while master).
    pub(crate) fn reconfigure(&mut self, garp: GarpConfig, now: Instant, master: bool) {
        let old = std::mem::replace(&mut self.garp, garp);
        if garp.master_delay.is_zero() {
            self.repeats.clear();
        }
        if old.master_refresh != garp.master_refresh {
            self.refresh_at = if master {
                garp.master_refresh
                    .and_then(|period| now.checked_add(period))
            } else {
                None
            };
        }
    }

    fn repeat_time(&self, now: Instant) -> Option<Instant> {
        if self.garp.master_delay.is_zero() {
            None
        } else {
            now.checked_add(self.garp.master_delay)
        }
    }

    /// No longer master: nothing pending.
    pub(crate) fn stop(&mut self) {
        self.burst_left = 0;
        self.next_round = None;
        self.repeats.clear();
        self.refresh_at = None;
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.next_round, self.refresh_at]
            .into_iter()
            .flatten()
            .chain(self.repeats.iter().copied())
            .min()
    }

    /// The number of rounds due by `now`, consuming them. A late caller gets the missed
    /// rounds of the current burst (bounded by its size), and one refresh.
    pub(crate) fn take_due(&mut self, now: Instant) -> u32 {
        while let Some(i) = self.repeats.iter().position(|&at| at <= now) {
            let at = self.repeats.remove(i);
            self.burst(at, self.garp.master_repeat);
        }
        if let Some(at) = self.refresh_at.filter(|&at| at <= now) {
            self.refresh_at = self.garp.master_refresh.and_then(|period| {
                let next = at.checked_add(period)?;
                if next <= now {
                    now.checked_add(period)
                } else {
                    Some(next)
                }
            });
            self.burst(at, self.garp.master_refresh_repeat);
        }
        let mut due = 0;
        while let Some(at) = self.next_round.filter(|&at| at <= now) {
            due += 1;
            self.burst_left -= 1;
            self.next_round = if self.burst_left == 0 {
                None
            } else {
                at.checked_add(self.garp.interval)
            };
            if self.next_round.is_none() {
                self.burst_left = 0;
            }
        }
        due
    }

    /// Merges a burst of `rounds` starting `at` with the one in progress, if any.
    fn burst(&mut self, at: Instant, rounds: u32) {
        if rounds == 0 {
            return;
        }
        self.burst_left = self.burst_left.max(rounds);
        self.next_round = Some(self.next_round.map_or(at, |n| n.min(at)));
    }
}
