//! A virtual server's quorum, pure: keepalived's rule (`ipwrapper.c`,
//! `update_quorum_state`, `weigh_live_realservers`): the checkers run `quorum_up` /
//! `quorum_down` on its transitions. The IPVS desired table (`lvs::desired`) calls the same
//! [`has_quorum`] on the same verdicts to withdraw the real servers of a virtual server without
//! quorum in favour of its sorry server.
//!
//! - The weight of a virtual server is the sum of the weights of its live real servers (a
//!   dynamic or file weight replaces the configured one; 0 at least).
//! - Without quorum, it gains quorum when that sum reaches `quorum + hysteresis`; with quorum,
//!   it loses it when the sum falls below `quorum - hysteresis`, or to 0.
//! - At start (and for a virtual server a reload adds) keepalived begins without quorum and
//!   evaluates once: reaching quorum runs `quorum_up`; missing it runs `quorum_down` only when a
//!   sorry server is configured ("starting with quorum down"). A reload keeps the state of the
//!   virtual servers it keeps, and judges them by their new `quorum` and `hysteresis`.
//! - What keepalived then does to IPVS: without quorum, a sorry server replaces the live real
//!   servers (they come back when quorum does); without a sorry server the live ones stay.
//! - Under `omega`, `quorum_down` runs at shutdown for every virtual server (keepalived's
//!   `update_vs_notifies` when stopping), bounded as the other omega scripts.

/// Whether a virtual server has quorum at live weight `weight`, given whether it had quorum
/// before (`None`: not evaluated yet, which counts as without).
pub fn has_quorum(previous: Option<bool>, weight: u64, quorum: u64, hysteresis: u64) -> bool {
    let w = i128::from(weight);
    let (q, h) = (i128::from(quorum), i128::from(hysteresis));
    match previous {
        Some(true) => w > 0 && w >= q - h,
        Some(false) | None => w >= q + h,
    }
}

/// The weight one live real server adds: its dynamic weight, else its configured one.
pub fn live_weight<I>(servers: I) -> u64
where
    I: IntoIterator<Item = (bool, Option<u32>, u32)>,
{
    servers
        .into_iter()
        .filter(|(up, _, _)| *up)
        .map(|(_, dynamic, configured)| u64::from(dynamic.unwrap_or(configured)))
        .sum()
}

/// Which quorum script a transition calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumNotify {
    Up,
    Down,
}

/// One virtual server's quorum state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumMachine {
    pub quorum: u64,
    pub hysteresis: u64,
    pub sorry_server: bool,
    up: Option<bool>,
}

impl QuorumMachine {
    pub fn new(quorum: u64, hysteresis: u64, sorry_server: bool) -> QuorumMachine {
        QuorumMachine {
            quorum,
            hysteresis,
            sorry_server,
            up: None,
        }
    }

    /// `None` before the first evaluation.
    pub fn is_up(&self) -> Option<bool> {
        self.up
    }

    /// The first evaluation (keepalived's `update_quorum_state(vs, init = true)`).
    pub fn start(&mut self, weight: u64) -> Option<QuorumNotify> {
        let up = has_quorum(None, weight, self.quorum, self.hysteresis);
        self.up = Some(up);
        if up {
            Some(QuorumNotify::Up)
        } else if self.sorry_server {
            Some(QuorumNotify::Down)
        } else {
            None
        }
    }

    /// A later evaluation: the script of a transition, if any.
    pub fn update(&mut self, weight: u64) -> Option<QuorumNotify> {
        let Some(was) = self.up else {
            return self.start(weight);
        };
        let up = has_quorum(Some(was), weight, self.quorum, self.hysteresis);
        self.up = Some(up);
        match (was, up) {
            (false, true) => Some(QuorumNotify::Up),
            (true, false) => Some(QuorumNotify::Down),
            _ => None,
        }
    }

    /// New settings from a reload; the state stays (judge it again with [`Self::update`]).
    pub fn reconfigure(&mut self, quorum: u64, hysteresis: u64, sorry_server: bool) {
        self.quorum = quorum;
        self.hysteresis = hysteresis;
        self.sorry_server = sorry_server;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hysteresis_around_the_quorum() {
        let mut m = QuorumMachine::new(5, 2, false);
        // Starts without quorum: 6 is not enough (5 + 2), and no sorry server: no script.
        assert_eq!(m.start(6), None);
        assert_eq!(m.is_up(), Some(false));
        assert_eq!(m.update(7), Some(QuorumNotify::Up));
        assert_eq!(m.update(3), None, "3 >= 5 - 2 keeps it");
        assert_eq!(m.update(2), Some(QuorumNotify::Down));
        assert_eq!(m.update(6), None);
        assert_eq!(m.update(9), Some(QuorumNotify::Up));
    }

    #[test]
    fn zero_always_loses_quorum() {
        // quorum 1 hysteresis 5: the lower threshold is negative, yet 0 loses it.
        let mut m = QuorumMachine::new(1, 5, false);
        assert_eq!(m.start(6), Some(QuorumNotify::Up));
        assert_eq!(m.update(1), None);
        assert_eq!(m.update(0), Some(QuorumNotify::Down));
    }

    #[test]
    fn start_runs_quorum_down_only_with_a_sorry_server() {
        assert_eq!(
            QuorumMachine::new(1, 0, true).start(0),
            Some(QuorumNotify::Down)
        );
        assert_eq!(QuorumMachine::new(1, 0, false).start(0), None);
        assert_eq!(
            QuorumMachine::new(1, 0, false).start(1),
            Some(QuorumNotify::Up)
        );
        // An update before any start is a start.
        assert_eq!(
            QuorumMachine::new(1, 0, true).update(0),
            Some(QuorumNotify::Down)
        );
    }

    #[test]
    fn reload_keeps_the_state_and_applies_new_thresholds() {
        let mut m = QuorumMachine::new(2, 0, false);
        assert_eq!(m.start(3), Some(QuorumNotify::Up));
        m.reconfigure(5, 0, false);
        assert_eq!(m.update(3), Some(QuorumNotify::Down));
        m.reconfigure(2, 0, false);
        assert_eq!(m.update(3), Some(QuorumNotify::Up));
    }

    #[test]
    fn weights_of_live_servers() {
        let w = live_weight([(true, None, 3), (true, Some(7), 1), (false, None, 100)]);
        assert_eq!(w, 10);
        assert_eq!(live_weight(Vec::new()), 0);
    }

    proptest! {
        /// Against the thresholds written the other way round: the state changes only when the
        /// weight crosses the far threshold, and each change is reported once.
        #[test]
        fn transitions_follow_the_thresholds(
            quorum in 1u64..20,
            hysteresis in 0u64..10,
            weights in proptest::collection::vec(0u64..40, 1..50),
        ) {
            let mut m = QuorumMachine::new(quorum, hysteresis, false);
            let mut up = false;
            for (i, &w) in weights.iter().enumerate() {
                let n = if i == 0 { m.start(w) } else { m.update(w) };
                let lower = quorum as i64 - hysteresis as i64;
                let want = if up { w > 0 && w as i64 >= lower } else { w >= quorum + hysteresis };
                match n {
                    Some(QuorumNotify::Up) => prop_assert!(want && (!up || i == 0)),
                    Some(QuorumNotify::Down) => prop_assert!(!want && up && i > 0),
                    None => {
                        let unchanged = if i == 0 { !want } else { want == up };
                        prop_assert!(unchanged);
                    }
                }
                up = want;
                prop_assert_eq!(m.is_up(), Some(up));
            }
        }
    }
}
