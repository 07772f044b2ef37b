//! Applying a changed configuration to a running instance ([`Instance::reconfigure`]):
//! state, timers, addresses and counters stay; each changed setting takes effect as
//! [`ConfigField`] documents.

use std::time::{Duration, Instant};

use super::Instance;
use crate::config::InstanceConfig;
use crate::events::State;
use crate::packet::{PRIORITY_OWNER, Version};
use crate::reconfig::{ConfigField, ReconfigureError, Reconfigured};

impl Instance {
    /// Applies `new` in place when it allows (see [`ConfigField`]); an unchanged
    /// configuration does nothing at all. Emits no action itself: address changes of a
    /// master are in the returned [`Reconfigured`] (perform them first), and what follows
    /// (GARP/NA rounds for new addresses, a moved advert or Master_Down timer) comes from
    /// [`Instance::poll_timeout`] as usual.
    ///
    /// Refused, with the instance untouched: an invalid configuration, or one that changes
    /// what identifies the virtual router ([`crate::RestartReason`]).
    pub fn reconfigure(
        &mut self,
        now: Instant,
        new: InstanceConfig,
    ) -> Result<Reconfigured, ReconfigureError> {
        new.validate()?;
        let diff = self.cfg.diff(&new);
        if !diff.restart.is_empty() {
            return Err(ReconfigureError::RestartNeeded(diff.restart));
        }
        if diff.changed.is_empty() {
            return Ok(Reconfigured::default());
        }
        let old = std::mem::replace(&mut self.cfg, new);
        let mut out = Reconfigured {
            changed: diff.changed,
            ..Reconfigured::default()
        };
        let master = self.state == State::Master;
        for &field in &out.changed {
            match field {
                ConfigField::Priority => {
                    self.priority = self.cfg.priority;
                    if master {
                        self.master_priority = Some(self.priority);
                    }
                }
                ConfigField::AdvertInterval => self.new_advert_interval(now, &old),
                ConfigField::Preempt | ConfigField::PreemptDelay => {
                    self.preempt_deadline = if self.cfg.preempt_delay.is_zero() {
                        None
                    } else {
                        self.preempt_deadline
                            .and_then(|end| shift(end, old.preempt_delay, self.cfg.preempt_delay))
                    };
                }
                ConfigField::PrimaryAddress => {
                    if master {
                        self.master_addr = Some(self.cfg.primary_address);
                    }
                }
                ConfigField::VirtualAddresses if master => {
                    let (new_vips, old_vips) =
                        (&self.cfg.virtual_addresses, &old.virtual_addresses);
                    out.add_vips = new_vips
                        .iter()
                        .filter(|a| !old_vips.contains(a))
                        .copied()
                        .collect();
                    out.remove_vips = old_vips
                        .iter()
                        .filter(|a| !new_vips.contains(a))
                        .copied()
                        .collect();
                    if !out.add_vips.is_empty() {
                        // keepalived sends a burst (and its repeat) for added addresses.
                        self.announce.answer(now);
                    }
                }
                ConfigField::StartupDelay => {
                    self.startup_at = self.startup_at.and_then(|at| {
                        shift(at, old.startup_delay, self.cfg.startup_delay).map(|t| t.max(now))
                    });
                }
                ConfigField::Garp => self.announce.reconfigure(self.cfg.garp, now, master),
                ConfigField::VirtualAddresses
                | ConfigField::AcceptMode
                | ConfigField::Auth
                | ConfigField::SkipCheckAdvAddr
                | ConfigField::Strict
                | ConfigField::UnicastPeers
                | ConfigField::HigherPrioSendAdvert
                | ConfigField::InitialState
                | ConfigField::DownTimerAdverts => {}
            }
        }
        // Master_Down depends on the priority, the interval and down_timer_adverts.
        let timing = [
            ConfigField::Priority,
            ConfigField::AdvertInterval,
            ConfigField::DownTimerAdverts,
        ];
        if out.changed.iter().any(|f| timing.contains(f)) {
            self.rearm_down_timer(now);
        }
        let accept = |c: &InstanceConfig| c.accept_mode || c.priority == PRIORITY_OWNER;
        if master && accept(&old) != accept(&self.cfg) {
            out.accept_mode = Some(accept(&self.cfg));
        }
        Ok(out)
    }

    fn new_advert_interval(&mut self, now: Instant, old: &InstanceConfig) {
        let (was, is) = (old.advert_interval, self.cfg.advert_interval);
        match self.state {
            State::Master => {
                self.master_adver_int = is;
                // Keep the phase: the next advert one new interval after the last one.
                self.timer = self
                    .timer
                    .and_then(|next| shift(next, was.as_duration(), is.as_duration()))
                    .map(|t| t.max(now));
            }
            State::Backup => {
                // v2 has one interval for everybody; a v3 backup keeps what it learnt from
                // a master, and only uses its own when it has heard none.
                if self.cfg.version == Version::V2 || self.master_addr.is_none() {
                    self.master_adver_int = is;
                }
            }
            State::Initialize | State::Fault => self.master_adver_int = is,
        }
    }
}

/// `at` armed as `start + was`, moved to `start + is`.
fn shift(at: Instant, was: Duration, is: Duration) -> Option<Instant> {
    at.checked_sub(was)?.checked_add(is)
}
