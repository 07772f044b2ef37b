//! `vrrp_sync_group`: instances that move between MASTER, BACKUP and FAULT together,
//! with keepalived's semantics (`vrrp_sync.c`, `vrrp_scheduler.c`).
//!
//! A [`SyncGroup`] does not own its members: the driver keeps its [`Instance`]s where it
//! likes and, after **every** call on a member (`handle`, `handle_timeout`,
//! `reconfigure`, `leave_sync_group`), calls [`SyncGroup::settle`] with all members of
//! the group, in configuration order. `settle` forces the members' transitions into their
//! own action queues; then the driver drains every member's actions and finally
//! [`SyncGroup::poll_transition`] for the group's own notification. Call `settle` once
//! before starting the members: it marks them as members, so that none becomes master on
//! its own.
//!
//! # The rules
//! - **Fault**: a member with a fault of its own (link down, tracker) pulls the group to
//!   FAULT: every other member enters Fault (a master sends priority 0 and releases, so
//!   the peer's backups take over after Skew_Time). When the last own fault clears, every
//!   member leaves Fault to Backup at once.
//! - **Master**: a member never becomes master on its own. Where it would (Master_Down
//!   expired, or an owner starting) it only *wants* master and stays Backup, looking
//!   again after another Master_Down_Interval. When every member wants master, all become
//!   master together. keepalived prefers backup to avoid thrashing: one member still
//!   hearing its master keeps the whole group backup. An accepted advert (from a higher
//!   or equal priority) withdraws the wish.
//! - **Backup**: a master member that hears a higher priority steps down; the group
//!   follows: the other masters release at once, without priority 0 (the peer group is
//!   taking over).
//! - A master member that answers a lower-priority master (split brain) makes every
//!   master member re-announce its addresses: the lower router's other members step
//!   down silently and their neighbours must learn the MACs again.
//! - While the group is master, a member that (re)starts, or leaves Fault alone, is
//!   brought to master at once.
//!
//! Members not started (Initialize after `Shutdown`, or before `Startup`) block the group
//! from becoming master but do not pull it down. A group whose members are all stopped is
//! Initialize.
//!
//! keepalived notifies the group once per group transition, after the members'
//! notifications: [`GroupTransition`].

use std::collections::VecDeque;
use std::time::Instant;

use crate::events::State;
use crate::instance::Instance;

/// A state change of the group as a whole (keepalived's `notify ... GROUP name STATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupTransition {
    pub from: State,
    pub to: State,
    /// The index (in the slice given to [`SyncGroup::settle`]) of the member that caused
    /// the change, when one did: the first with a fault of its own (to Fault), one whose
    /// own fault cleared while the group held it (out of Fault), the one that heard a
    /// higher priority (Master to Backup).
    pub cause: Option<usize>,
}

/// The coordinator of one sync group. Its only state is the group's state; membership is
/// whatever slice of instances [`SyncGroup::settle`] is given, so a reload that changes
/// the members just passes the new ones (and calls [`Instance::leave_sync_group`] on the
/// ones removed).
#[derive(Clone, Debug)]
pub struct SyncGroup {
    state: State,
    transitions: VecDeque<GroupTransition>,
}

impl Default for SyncGroup {
    fn default() -> SyncGroup {
        SyncGroup::new()
    }
}

impl SyncGroup {
    /// A group in Initialize.
    pub fn new() -> SyncGroup {
        SyncGroup {
            state: State::Initialize,
            transitions: VecDeque::new(),
        }
    }

    /// The group's state: Initialize (no member running), Backup, Master or Fault.
    pub fn state(&self) -> State {
        self.state
    }

    /// The next group transition to notify, in order.
    pub fn poll_transition(&mut self) -> Option<GroupTransition> {
        self.transitions.pop_front()
    }

    /// Brings the members in line with each other after something happened to one of
    /// them (see the module documentation). Idempotent: a second call changes nothing.
    pub fn settle(&mut self, now: Instant, members: &mut [&mut Instance]) {
        for m in members.iter_mut() {
            m.join_sync_group();
        }
        let marks: Vec<(bool, bool)> = members.iter_mut().map(|m| m.take_group_marks()).collect();
        let (to, cause) = self.decide(now, members, &marks);
        if to != self.state {
            self.transitions.push_back(GroupTransition {
                from: self.state,
                to,
                cause,
            });
            self.state = to;
        }
    }

    fn decide(
        &mut self,
        now: Instant,
        members: &mut [&mut Instance],
        marks: &[(bool, bool)],
    ) -> (State, Option<usize>) {
        if !members.iter().any(|m| m.is_started()) {
            for m in members.iter_mut() {
                m.sync_release_fault(now);
            }
            return (State::Initialize, None);
        }
        if let Some(i) = members.iter().position(|m| m.own_fault()) {
            for m in members.iter_mut() {
                m.sync_hold_fault();
            }
            return (State::Fault, Some(i));
        }
        let mut was_master = self.state == State::Master;
        let mut cause = None;
        if members.iter().any(|m| m.group_fault()) {
            // The last own fault cleared: everybody comes up (as Backup) together.
            cause = members
                .iter()
                .position(|m| m.group_fault() && m.pending_up().is_some());
            for m in members.iter_mut() {
                m.sync_release_fault(now);
            }
            was_master = false;
        }
        if was_master {
            if let Some(i) = marks.iter().position(|&(went_backup, _)| went_backup) {
                for m in members.iter_mut() {
                    m.sync_to_backup(now);
                }
                return (State::Backup, Some(i));
            }
            // Members that answered have sent their burst; the others send one each.
            if marks.iter().any(|&(_, answered)| answered) {
                for (m, &(_, answered)) in members.iter_mut().zip(marks) {
                    if !answered {
                        m.sync_answer_lower(now);
                    }
                }
            }
            for m in members.iter_mut() {
                m.sync_to_master(now);
            }
            return (State::Master, None);
        }
        if members.iter().all(|m| m.ready_for_master()) {
            for m in members.iter_mut() {
                m.sync_to_master(now);
            }
            return (State::Master, cause);
        }
        // Not everybody wants master: nobody is (a member that was master before it
        // joined the group steps down).
        for m in members.iter_mut() {
            m.sync_to_backup(now);
        }
        (State::Backup, cause)
    }
}
