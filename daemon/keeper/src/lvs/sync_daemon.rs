//! The IPVS connection sync daemon follows VRRP: a master daemon (sending the connection table)
//! while the instance is MASTER, a backup daemon (receiving it) otherwise, so that established
//! connections survive a failover. Without an instance, both run all the time (keepalived).
//! Pure: what should run, and the requests that get there from what runs.

use keeper_ipvs::{DaemonState, Request, SyncDaemon};
use keeper_vrrp::State;

use super::plan::SyncPlan;

fn daemon(plan: &SyncPlan, state: DaemonState) -> SyncDaemon {
    let mut d = SyncDaemon::new(state, &plan.interface, plan.sync_id);
    d.sync_maxlen = plan.maxlen;
    d.mcast_group = plan.group;
    d.mcast_port = plan.port;
    d.mcast_ttl = plan.ttl;
    d
}

/// The daemons that should run while the driving instance is in `state` (`None`: unknown, as
/// before the instance started: a backup daemon, which sends nothing).
pub fn wanted(plan: &SyncPlan, state: Option<State>) -> Vec<SyncDaemon> {
    match (&plan.instance, state) {
        (None, _) => vec![
            daemon(plan, DaemonState::Master),
            daemon(plan, DaemonState::Backup),
        ],
        (Some(_), Some(State::Master)) => vec![daemon(plan, DaemonState::Master)],
        (Some(_), _) => vec![daemon(plan, DaemonState::Backup)],
    }
}

/// Whether a running daemon is the wanted one: the settings keeper chose must match; those it
/// left to the kernel may have any value (a dump reports the kernel's defaults).
fn matches(want: &SyncDaemon, have: &SyncDaemon) -> bool {
    fn same<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
        want.is_none() || want == have
    }
    want.state == have.state
        && want.mcast_ifn == have.mcast_ifn
        && want.sync_id == have.sync_id
        && same(&want.sync_maxlen, &have.sync_maxlen)
        && same(&want.mcast_group, &have.mcast_group)
        && same(&want.mcast_port, &have.mcast_port)
        && same(&want.mcast_ttl, &have.mcast_ttl)
}

/// Requests turning `running` into `wanted`: stops first (keepalived stops the backup daemon
/// before it starts the master one), then starts. Daemons that match are left running.
pub fn requests(wanted: &[SyncDaemon], running: &[SyncDaemon]) -> Vec<Request> {
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    for state in [DaemonState::Master, DaemonState::Backup] {
        let want = wanted.iter().find(|d| d.state == state);
        let have = running.iter().find(|d| d.state == state);
        match (want, have) {
            (Some(w), Some(h)) if matches(w, h) => {}
            (Some(w), Some(_)) => {
                stops.push(Request::DelDaemon(state));
                starts.push(Request::NewDaemon(w.clone()));
            }
            (Some(w), None) => starts.push(Request::NewDaemon(w.clone())),
            (None, Some(_)) => stops.push(Request::DelDaemon(state)),
            (None, None) => {}
        }
    }
    stops.extend(starts);
    stops
}

/// The running daemons after `requests` succeeded.
pub fn after(running: &[SyncDaemon], requests: &[Request]) -> Vec<SyncDaemon> {
    let mut now = running.to_vec();
    for r in requests {
        match r {
            Request::DelDaemon(state) => now.retain(|d| d.state != *state),
            Request::NewDaemon(d) => now.push(d.clone()),
            _ => {}
        }
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(instance: Option<&str>) -> SyncPlan {
        SyncPlan {
            interface: "eth0".into(),
            instance: instance.map(String::from),
            sync_id: 51,
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
        }
    }

    fn states(ds: &[SyncDaemon]) -> Vec<DaemonState> {
        ds.iter().map(|d| d.state).collect()
    }

    #[test]
    fn master_daemon_only_while_master() {
        let p = plan(Some("VI_1"));
        assert_eq!(
            states(&wanted(&p, Some(State::Master))),
            [DaemonState::Master]
        );
        for s in [
            None,
            Some(State::Initialize),
            Some(State::Backup),
            Some(State::Fault),
        ] {
            assert_eq!(states(&wanted(&p, s)), [DaemonState::Backup], "{s:?}");
        }
        assert_eq!(
            states(&wanted(&plan(None), Some(State::Backup))),
            [DaemonState::Master, DaemonState::Backup]
        );
    }

    #[test]
    fn becoming_master_stops_the_backup_daemon_then_starts_the_master() {
        let p = plan(Some("VI_1"));
        let running = wanted(&p, Some(State::Backup));
        let want = wanted(&p, Some(State::Master));
        let reqs = requests(&want, &running);
        assert_eq!(
            reqs,
            [
                Request::DelDaemon(DaemonState::Backup),
                Request::NewDaemon(want[0].clone())
            ]
        );
        assert_eq!(after(&running, &reqs), want);
        assert!(requests(&want, &after(&running, &reqs)).is_empty());
    }

    #[test]
    fn kernel_defaults_in_a_dump_do_not_restart_a_daemon() {
        let p = plan(Some("VI_1"));
        let want = wanted(&p, Some(State::Backup));
        let mut dumped = want[0].clone();
        dumped.sync_maxlen = Some(1472);
        dumped.mcast_group = Some("224.0.0.81".parse().expect("addr"));
        dumped.mcast_port = Some(8848);
        dumped.mcast_ttl = Some(1);
        assert!(requests(&want, &[dumped.clone()]).is_empty());
        // A changed sync id or interface does.
        let mut other = dumped;
        other.sync_id = 7;
        assert_eq!(
            requests(&want, &[other]),
            [
                Request::DelDaemon(DaemonState::Backup),
                Request::NewDaemon(want[0].clone())
            ]
        );
    }

    #[test]
    fn nothing_wanted_stops_everything() {
        let running = wanted(&plan(None), None);
        assert_eq!(
            requests(&[], &running),
            [
                Request::DelDaemon(DaemonState::Master),
                Request::DelDaemon(DaemonState::Backup)
            ]
        );
    }
}
