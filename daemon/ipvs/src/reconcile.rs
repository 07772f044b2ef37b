//! Declarative reconcile, pure: from the kernel's table and the desired one to the minimal list
//! of operations, without touching the kernel.
//!
//! Rules:
//! - A desired service that exists with the same settings is adopted as is (a restart of the
//!   daemon never empties the table); one with other settings is edited in place, never
//!   deleted and re-added (connections and persistence templates survive).
//! - Destinations of a desired service are added, edited or (by default) deleted to match.
//! - A service in the kernel that is not desired is deleted only when the policy owns it
//!   (e.g. it was removed from the configuration) or when the policy removes everything not
//!   desired (keepalived's `lvs_flush`); otherwise it is left alone, destinations included.
//!
//! Operations come in an order the kernel accepts in one pipelined batch: service deletions,
//! then per service (by key): add or edit the service, delete, edit, then add destinations.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::Request;
use crate::model::{DestKey, Destination, Service, ServiceKey, Table, VirtualService};

/// One change to the kernel's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Create a service (its destinations follow as [`Op::AddDest`]).
    AddService(Service),
    /// Change a service's settings in place.
    EditService(Service),
    /// Delete a service with its destinations.
    DelService(ServiceKey),
    /// Add a destination to a service.
    AddDest(ServiceKey, Destination),
    /// Change a destination's settings (weight, thresholds, forwarding).
    EditDest(ServiceKey, Destination),
    /// Remove a destination.
    DelDest(ServiceKey, DestKey),
}

impl Op {
    /// The netlink request carrying this operation.
    pub fn to_request(&self) -> Request {
        match self {
            Op::AddService(s) => Request::NewService(without_stats(s)),
            Op::EditService(s) => Request::SetService(without_stats(s)),
            Op::DelService(k) => Request::DelService(*k),
            Op::AddDest(k, d) => Request::NewDest(*k, d.clone()),
            Op::EditDest(k, d) => Request::SetDest(*k, d.clone()),
            Op::DelDest(k, d) => Request::DelDest(*k, *d),
        }
    }
}

fn without_stats(s: &Service) -> Service {
    Service {
        stats: None,
        ..s.clone()
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_request().fmt(f)
    }
}

/// Which entries of the kernel's table the planner may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipPolicy {
    /// Services owned although not desired (e.g. removed from the configuration since the
    /// last apply): deleted.
    #[serde(default)]
    pub owned: BTreeSet<ServiceKey>,
    /// Delete every service that is not desired, whoever created it (`lvs_flush`).
    #[serde(default)]
    pub remove_unowned_services: bool,
    /// Delete destinations of desired services that are not desired (default). When false,
    /// destinations added by others to a desired service are left alone.
    #[serde(default = "yes")]
    pub remove_foreign_destinations: bool,
}

fn yes() -> bool {
    true
}

impl Default for OwnershipPolicy {
    fn default() -> Self {
        OwnershipPolicy {
            owned: BTreeSet::new(),
            remove_unowned_services: false,
            remove_foreign_destinations: true,
        }
    }
}

/// The minimal operations turning `actual` into `desired` under `policy`. Counters in either
/// table are ignored. Calling it again on the result of [`apply`] gives no operation.
pub fn plan(desired: &Table, actual: &Table, policy: &OwnershipPolicy) -> Vec<Op> {
    let mut ops = Vec::new();
    for key in actual.services.keys() {
        if !desired.services.contains_key(key)
            && (policy.remove_unowned_services || policy.owned.contains(key))
        {
            ops.push(Op::DelService(*key));
        }
    }
    for (key, want) in &desired.services {
        match actual.services.get(key) {
            None => {
                ops.push(Op::AddService(without_stats(&want.service)));
                ops.extend(
                    want.destinations
                        .values()
                        .map(|d| Op::AddDest(*key, d.clone())),
                );
            }
            Some(have) => {
                if !want.service.same_settings(&have.service) {
                    ops.push(Op::EditService(without_stats(&want.service)));
                }
                plan_destinations(key, want, have, policy, &mut ops);
            }
        }
    }
    ops
}

fn plan_destinations(
    key: &ServiceKey,
    want: &VirtualService,
    have: &VirtualService,
    policy: &OwnershipPolicy,
    ops: &mut Vec<Op>,
) {
    if policy.remove_foreign_destinations {
        for dk in have.destinations.keys() {
            if !want.destinations.contains_key(dk) {
                ops.push(Op::DelDest(*key, *dk));
            }
        }
    }
    for (dk, wd) in &want.destinations {
        if let Some(hd) = have.destinations.get(dk)
            && !wd.same_settings(hd)
        {
            ops.push(Op::EditDest(*key, wd.clone()));
        }
    }
    for (dk, wd) in &want.destinations {
        if !have.destinations.contains_key(dk) {
            ops.push(Op::AddDest(*key, wd.clone()));
        }
    }
}

/// What the kernel would refuse when [`apply`]ing an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyRefusal {
    /// The entry to add exists (`EEXIST`).
    Exists,
    /// The service does not exist (`ESRCH`).
    NoService,
    /// The destination does not exist (`ENOENT`).
    NoDestination,
}

/// Apply operations to a table the way the kernel does, including its refusals (returned with
/// the index of the operation; the table is then unchanged by that operation). A model of the
/// kernel for tests and dry runs.
pub fn apply(table: &mut Table, ops: &[Op]) -> Vec<(usize, ApplyRefusal)> {
    let mut refused = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            Op::AddService(s) => {
                if table.services.contains_key(&s.key) {
                    Err(ApplyRefusal::Exists)
                } else {
                    table.insert(VirtualService::new(without_stats(s)));
                    Ok(())
                }
            }
            Op::EditService(s) => match table.services.get_mut(&s.key) {
                Some(vs) => {
                    vs.service = without_stats(s);
                    Ok(())
                }
                None => Err(ApplyRefusal::NoService),
            },
            Op::DelService(k) => table
                .services
                .remove(k)
                .map(|_| ())
                .ok_or(ApplyRefusal::NoService),
            Op::AddDest(k, d) => match table.services.get_mut(k) {
                Some(vs) if vs.destinations.contains_key(&d.key()) => Err(ApplyRefusal::Exists),
                Some(vs) => {
                    vs.destinations.insert(d.key(), d.clone());
                    Ok(())
                }
                None => Err(ApplyRefusal::NoService),
            },
            Op::EditDest(k, d) => match table.services.get_mut(k) {
                Some(vs) => match vs.destinations.get_mut(&d.key()) {
                    Some(slot) => {
                        *slot = d.clone();
                        Ok(())
                    }
                    None => Err(ApplyRefusal::NoDestination),
                },
                None => Err(ApplyRefusal::NoService),
            },
            Op::DelDest(k, dk) => match table.services.get_mut(k) {
                Some(vs) => vs
                    .destinations
                    .remove(dk)
                    .map(|_| ())
                    .ok_or(ApplyRefusal::NoDestination),
                None => Err(ApplyRefusal::NoService),
            },
        };
        if let Err(e) = r {
            refused.push((i, e));
        }
    }
    refused
}
