//! Counters of one instance (RFC 6527 / keepalived `vrrp_stats` in spirit).

use crate::events::DropReason;

/// Received packets dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    /// Drops for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[Self::index(reason)]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every reason with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }

    pub(crate) fn add(&mut self, reason: DropReason) {
        let slot = &mut self.0[Self::index(reason)];
        *slot = slot.saturating_add(1);
    }

    fn index(reason: DropReason) -> usize {
        // ALL lists every variant in declaration order, so the discriminant is the slot.
        reason as usize
    }
}

/// Counters of one instance. They only grow (saturating).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Adverts sent (one per advert, however many unicast peers it went to).
    pub adverts_sent: u64,
    /// Of those, with priority 0.
    pub priority_zero_sent: u64,
    /// Adverts that passed every check.
    pub adverts_received: u64,
    /// Of those, with priority 0.
    pub priority_zero_received: u64,
    /// Received packets dropped, by reason.
    pub drops: DropCounts,
    /// State changes of any kind.
    pub transitions: u64,
    /// Times this instance became master.
    pub became_master: u64,
    /// Times this instance stopped being master.
    pub released_master: u64,
    /// GARP/NA rounds requested.
    pub announce_rounds: u64,
}
