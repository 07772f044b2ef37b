//! Counting matching processes, and when to report a count (pure: time is passed in).
//!
//! A count is reported when it changes, except that a change that moves it across the
//! quorum boundary (in or out of `quorum..=quorum_max`) waits, as keepalived's delays:
//! - `fork_delay` when a tracked process forked (the child is a copy, so it matches too);
//! - `terminate_delay` when a tracked process exited;
//! - no delay for other causes (a process started by `exec`, or renamed).
//!
//! While such a change waits, further changes on the same side of the boundary are held
//! too; when the count comes back to the side last reported, the wait ends at once and the
//! count is reported (so a daemon restarted within `terminate_delay` never looks down).
//! When the wait ends the count of that moment is reported. The first count of a rule is
//! reported at once.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::procfs::ProcInfo;
use super::spec::ProcessSpec;

/// Why a count changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Fork,
    Exit,
    Other,
}

/// A count to report for rule `spec` (an index into [`Table::specs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub spec: usize,
    pub count: u32,
}

#[derive(Clone, Debug)]
struct Rule {
    spec: ProcessSpec,
    members: HashSet<u32>,
    reported: Option<u32>,
    /// A boundary crossing waiting to be reported.
    pending: Option<Instant>,
}

impl Rule {
    fn count(&self) -> u32 {
        u32::try_from(self.members.len()).unwrap_or(u32::MAX)
    }

    /// Records the current count after a change with `cause`.
    fn changed(&mut self, cause: Cause, now: Instant, index: usize, out: &mut Vec<Report>) {
        let count = self.count();
        let Some(reported) = self.reported else {
            self.reported = Some(count);
            out.push(Report { spec: index, count });
            return;
        };
        if self.spec.quorum_met(count) == self.spec.quorum_met(reported) {
            self.pending = None;
            if count != reported {
                self.reported = Some(count);
                out.push(Report { spec: index, count });
            }
            return;
        }
        if self.pending.is_some() {
            return;
        }
        let delay = match cause {
            Cause::Fork => self.spec.fork_delay,
            Cause::Exit => self.spec.terminate_delay,
            Cause::Other => std::time::Duration::ZERO,
        };
        if delay.is_zero() {
            self.reported = Some(count);
            out.push(Report { spec: index, count });
        } else {
            self.pending = Some(now + delay);
        }
    }
}

/// Every rule's matching processes.
#[derive(Clone, Debug, Default)]
pub struct Table {
    rules: Vec<Rule>,
}

impl Table {
    pub fn new(specs: Vec<ProcessSpec>) -> Table {
        let mut t = Table::default();
        t.reconfigure(specs);
        t
    }

    pub fn specs(&self) -> impl Iterator<Item = &ProcessSpec> {
        self.rules.iter().map(|r| &r.spec)
    }

    pub fn spec(&self, index: usize) -> Option<&ProcessSpec> {
        self.rules.get(index).map(|r| &r.spec)
    }

    /// The current (not necessarily reported) count and the reported one of rule `index`.
    pub fn counts(&self, index: usize) -> Option<(u32, Option<u32>, bool)> {
        self.rules
            .get(index)
            .map(|r| (r.count(), r.reported, r.pending.is_some()))
    }

    /// Replaces the rules. A rule whose spec did not change keeps its processes, reported
    /// count and wait; new rules start empty and unreported (a [`Table::rescan`] fills them).
    pub fn reconfigure(&mut self, specs: Vec<ProcessSpec>) {
        let mut old: HashMap<ProcessSpecKey, Rule> = self
            .rules
            .drain(..)
            .map(|r| (ProcessSpecKey(r.spec.clone()), r))
            .collect();
        self.rules = specs
            .into_iter()
            .map(|spec| {
                old.remove(&ProcessSpecKey(spec.clone())).unwrap_or(Rule {
                    spec,
                    members: HashSet::new(),
                    reported: None,
                    pending: None,
                })
            })
            .collect();
    }

    /// How many bytes of command lines to read (0: none).
    pub fn cmdline_bytes(&self) -> usize {
        self.rules
            .iter()
            .map(|r| r.spec.cmdline_needed())
            .max()
            .map_or(0, |n| if n == 0 { 0 } else { n + 2 })
    }

    fn matching(&self, info: &ProcInfo) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| {
                self.rules[i]
                    .spec
                    .matches(&info.comm, info.cmdline.as_deref())
            })
            .collect()
    }

    /// Takes a complete list of processes (at start, in scan mode, after lost events).
    /// A rule that gained only children of its own processes counts that as a fork; one that
    /// lost only processes that are gone counts that as an exit.
    pub fn rescan(&mut self, procs: &[ProcInfo], now: Instant) -> Vec<Report> {
        let alive: HashSet<u32> = procs.iter().map(|p| p.pid).collect();
        let mut fresh: Vec<HashSet<u32>> = vec![HashSet::new(); self.rules.len()];
        let mut parents: HashMap<u32, u32> = HashMap::new();
        for p in procs {
            for i in self.matching(p) {
                fresh[i].insert(p.pid);
                parents.insert(p.pid, p.ppid);
            }
        }
        let mut out = Vec::new();
        for (i, (rule, members)) in self.rules.iter_mut().zip(fresh).enumerate() {
            if members == rule.members && rule.reported.is_some() {
                continue;
            }
            let old = std::mem::replace(&mut rule.members, members);
            let now_count = rule.members.len();
            let cause = if now_count > old.len() {
                let by_fork = rule
                    .members
                    .difference(&old)
                    .all(|pid| parents.get(pid).is_some_and(|parent| old.contains(parent)));
                if by_fork { Cause::Fork } else { Cause::Other }
            } else if now_count < old.len() {
                let exited = old
                    .difference(&rule.members)
                    .all(|pid| !alive.contains(pid));
                if exited { Cause::Exit } else { Cause::Other }
            } else {
                Cause::Other
            };
            rule.changed(cause, now, i, &mut out);
        }
        out
    }

    /// A process forked: a child of a tracked process is tracked by the same rules
    /// (keepalived: a child of an untracked process is not looked at until it execs).
    pub fn fork(&mut self, parent: u32, child: u32, now: Instant) -> Vec<Report> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            if rule.members.contains(&parent) && rule.members.insert(child) {
                rule.changed(Cause::Fork, now, i, &mut out);
            }
        }
        out
    }

    /// A process exited.
    pub fn exit(&mut self, pid: u32, now: Instant) -> Vec<Report> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            if rule.members.remove(&pid) {
                rule.changed(Cause::Exit, now, i, &mut out);
            }
        }
        out
    }

    /// A process started a new program (`info` read after it). `None` (gone by then) changes
    /// nothing: its exit is reported separately.
    pub fn exec(&mut self, info: Option<&ProcInfo>, now: Instant) -> Vec<Report> {
        let Some(info) = info else {
            return Vec::new();
        };
        let matching = self.matching(info);
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let changed = if matching.contains(&i) {
                rule.members.insert(info.pid)
            } else {
                rule.members.remove(&info.pid)
            };
            if changed {
                rule.changed(Cause::Other, now, i, &mut out);
            }
        }
        out
    }

    /// A process renamed itself (`prctl(PR_SET_NAME)`): rules on the name follow it; rules on
    /// the command line do not (keepalived).
    pub fn rename(&mut self, pid: u32, comm: &[u8], now: Instant) -> Vec<Report> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            if rule.spec.full_command {
                continue;
            }
            let changed = if rule.spec.matches(comm, None) {
                rule.members.insert(pid)
            } else {
                rule.members.remove(&pid)
            };
            if changed {
                rule.changed(Cause::Other, now, i, &mut out);
            }
        }
        out
    }

    /// Ends the waits that are due.
    pub fn tick(&mut self, now: Instant) -> Vec<Report> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            if rule.pending.is_some_and(|t| t <= now) {
                rule.pending = None;
                let count = rule.count();
                if rule.reported != Some(count) {
                    rule.reported = Some(count);
                    out.push(Report { spec: i, count });
                }
            }
        }
        out
    }

    /// When the next wait ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.rules.iter().filter_map(|r| r.pending).min()
    }
}

/// Specs compared whole (name, rule, quorum, delays) to decide what a reload keeps.
#[derive(PartialEq, Eq)]
struct ProcessSpecKey(ProcessSpec);

impl std::hash::Hash for ProcessSpecKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::VrrpTrackProcess;

    fn spec(name: &str, extra: &str) -> ProcessSpec {
        let text = format!("process = \"{name}\"\n{extra}");
        let cfg: VrrpTrackProcess = toml::from_str(&text).expect("toml");
        ProcessSpec::from_config(name, &cfg).expect("valid")
    }

    fn proc(pid: u32, ppid: u32, comm: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            comm: comm.as_bytes().to_vec(),
            cmdline: None,
        }
    }

    fn counts(r: Vec<Report>) -> Vec<u32> {
        r.into_iter().map(|r| r.count).collect()
    }

    #[test]
    fn first_count_at_once_then_changes() {
        let t0 = Instant::now();
        let mut t = Table::new(vec![spec("web", "")]);
        assert_eq!(counts(t.rescan(&[proc(1, 0, "init")], t0)), [0]);
        assert_eq!(counts(t.rescan(&[proc(1, 0, "init")], t0)), [0; 0]);
        assert_eq!(counts(t.exec(Some(&proc(10, 1, "web")), t0)), [1]);
        assert_eq!(counts(t.fork(10, 11, t0)), [2]);
        assert_eq!(counts(t.fork(99, 12, t0)), [0; 0], "untracked parent");
        assert_eq!(counts(t.exit(11, t0)), [1]);
        assert_eq!(counts(t.exit(11, t0)), [0; 0], "already gone");
        assert_eq!(
            counts(t.exec(Some(&proc(10, 1, "other")), t0)),
            [0],
            "exec of another program leaves"
        );
        assert_eq!(counts(t.exec(None, t0)), [0; 0]);
    }

    #[test]
    fn terminate_delay_hides_a_quick_restart() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Table::new(vec![spec("web", "terminate_delay = 5")]);
        t.rescan(&[proc(10, 1, "web")], t0);
        assert_eq!(counts(t.exit(10, t0 + s)), [0; 0], "held");
        assert_eq!(t.next_deadline(), Some(t0 + 6 * s));
        assert_eq!(counts(t.tick(t0 + 5 * s)), [0; 0]);
        assert_eq!(
            counts(t.exec(Some(&proc(20, 1, "web")), t0 + 2 * s)),
            [0; 0],
            "back to one: nothing to report"
        );
        assert_eq!(t.next_deadline(), None, "the wait ended");
        assert_eq!(counts(t.exit(20, t0 + 3 * s)), [0; 0]);
        assert_eq!(
            counts(t.tick(t0 + 8 * s - Duration::from_millis(1))),
            [0; 0]
        );
        assert_eq!(counts(t.tick(t0 + 8 * s)), [0], "reported after the delay");
    }

    #[test]
    fn fork_delay_only_for_forks() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Table::new(vec![spec("web", "quorum_max = 1\nfork_delay = 2")]);
        t.rescan(&[proc(10, 1, "web")], t0);
        assert_eq!(counts(t.fork(10, 11, t0)), [0; 0], "2 > quorum_max, held");
        assert_eq!(
            counts(t.exec(Some(&proc(11, 10, "sh")), t0 + s)),
            [0; 0],
            "the child ran another program: back to 1"
        );
        assert_eq!(t.next_deadline(), None);
        assert_eq!(
            counts(t.exec(Some(&proc(12, 1, "web")), t0 + s)),
            [2],
            "exec: at once"
        );
        let mut t = Table::new(vec![spec("web", "fork_delay = 2")]);
        t.rescan(&[], t0);
        t.rescan(&[proc(10, 1, "web")], t0);
        assert_eq!(
            t.counts(0),
            Some((1, Some(1), false)),
            "a new process, not a fork"
        );
        assert_eq!(counts(t.exit(10, t0)), [0]);
    }

    #[test]
    fn changes_on_the_held_side_are_held_too() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Table::new(vec![spec("web", "quorum = 2\nterminate_delay = 3")]);
        t.rescan(
            &[proc(10, 1, "web"), proc(11, 1, "web"), proc(12, 1, "web")],
            t0,
        );
        assert_eq!(counts(t.exit(12, t0)), [2], "still within quorum: at once");
        assert_eq!(counts(t.exit(11, t0)), [0; 0]);
        assert_eq!(counts(t.exit(10, t0 + s)), [0; 0]);
        assert_eq!(counts(t.tick(t0 + 3 * s)), [0]);
    }

    #[test]
    fn rescan_tells_forks_and_exits_apart() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Table::new(vec![spec("web", "quorum_max = 1\ndelay = 2")]);
        t.rescan(&[proc(10, 1, "web")], t0);
        assert_eq!(
            counts(t.rescan(&[proc(10, 1, "web"), proc(11, 10, "web")], t0)),
            [0; 0],
            "a child of a member: fork_delay"
        );
        assert_eq!(counts(t.tick(t0 + 2 * s)), [2]);
        assert_eq!(
            counts(t.rescan(&[proc(10, 1, "web"), proc(11, 10, "sh")], t0 + 3 * s)),
            [1],
            "still alive but no longer matching: at once"
        );
        assert_eq!(
            counts(t.rescan(&[], t0 + 3 * s)),
            [0; 0],
            "gone: terminate_delay"
        );
        assert_eq!(counts(t.tick(t0 + 5 * s)), [0]);
    }

    #[test]
    fn rename_moves_name_rules_only() {
        let t0 = Instant::now();
        let full = {
            let cfg: VrrpTrackProcess =
                toml::from_str("process = \"/bin/web\"\nfull_command = true").expect("toml");
            ProcessSpec::from_config("full", &cfg).expect("valid")
        };
        let mut t = Table::new(vec![spec("web", ""), full]);
        let mut p = proc(10, 1, "web");
        p.cmdline = Some(b"/bin/web\0".to_vec());
        t.rescan(&[p], t0);
        assert_eq!(t.counts(0).map(|c| c.0), Some(1));
        assert_eq!(t.counts(1).map(|c| c.0), Some(1));
        let r = t.rename(10, b"worker", t0);
        assert_eq!(r, [Report { spec: 0, count: 0 }]);
        assert_eq!(t.counts(1).map(|c| c.0), Some(1));
        assert_eq!(t.cmdline_bytes(), "/bin/web".len() + 2 + 2);
    }

    #[test]
    fn reconfigure_keeps_unchanged_rules() {
        let t0 = Instant::now();
        let mut t = Table::new(vec![spec("web", ""), spec("db", "")]);
        t.rescan(&[proc(10, 1, "web")], t0);
        t.reconfigure(vec![
            spec("web", ""),
            spec("db", "quorum = 2"),
            spec("new", ""),
        ]);
        let r = t.rescan(&[proc(10, 1, "web")], t0);
        assert_eq!(
            r,
            [Report { spec: 1, count: 0 }, Report { spec: 2, count: 0 }],
            "web is kept as it was; db changed and new are reported afresh"
        );
    }
}
