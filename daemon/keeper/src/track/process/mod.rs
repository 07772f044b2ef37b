//! `vrrp_track_process`: how many processes match each rule, reported on change.
//!
//! How processes are watched ([`ProcessWatch::Auto`]): through the kernel's process events
//! connector (see [`connector`]) when it is available, as keepalived does: one `/proc` scan at
//! start, then one message per fork, exec, rename and exit on the machine, and a `/proc` read
//! only for a process that starts a new program. A change is seen within milliseconds, and an
//! idle machine costs nothing. Where the connector is not available (another network or PID
//! namespace, an old kernel without CAP_NET_ADMIN), `/proc` is scanned every
//! [`SCAN_INTERVAL`] instead: a scan reads `/proc/PID/stat` of every process (and the
//! command line only when a rule needs it); `cargo bench -p keeper --bench track_proc_scan`
//! measures both.
//!
//! All `/proc` reading runs on tokio's blocking threads, never on the thread that runs VRRP.

pub mod connector;
pub mod procfs;
pub mod spec;
pub mod table;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use self::connector::{Connector, ProcEvent};
use self::procfs::ProcInfo;
pub use self::spec::ProcessSpec;
use self::table::{Report, Table};
use super::{Observation, lock};

/// How often `/proc` is scanned when the process events connector is not available.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest time between two reads of process events.
const COALESCE: Duration = Duration::from_millis(25);
/// How long the kernel has to acknowledge the connector subscription.
const ACK_WAIT: Duration = Duration::from_secs(1);

/// How processes are watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessWatch {
    /// The process events connector, else scans every [`SCAN_INTERVAL`].
    Auto,
    /// Scans of `/proc` at this interval only.
    Scan(Duration),
}

/// A tracked process rule's status for `keeperctl status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    pub name: String,
    /// The rule in keepalived's words.
    pub process: String,
    /// Matching processes now.
    pub running: u32,
    /// The count last reported (differs from `running` while a delay holds a change).
    pub reported: Option<u32>,
    /// A quorum change waits for `fork_delay` / `terminate_delay`.
    pub delayed: bool,
    /// `"proc connector"` or `"/proc scan every …"`.
    pub watched_by: String,
}

enum Source {
    /// With the time the last batch of events was read.
    Connector(Connector, Option<tokio::time::Instant>),
    Scan(tokio::time::Interval),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Connector(..) => "proc connector".to_string(),
            Source::Scan(i) => format!("/proc scan every {:?}", i.period()),
        }
    }
}

/// What one `/proc` reading produced for the table.
enum Input {
    Events(Vec<ProcEvent>, bool),
    Tick,
}

struct Watcher {
    table: Table,
    /// Each rule in keepalived's words, for the status.
    described: Vec<String>,
    out: mpsc::Sender<Observation>,
    status: Arc<Mutex<BTreeMap<String, ProcessStatus>>>,
    watched_by: String,
}

impl Watcher {
    /// Sends the reports and refreshes the status. False when nobody listens any more.
    async fn publish(&mut self, reports: Vec<Report>) -> bool {
        {
            let mut st = lock(&self.status);
            st.clear();
            for (i, spec) in self.table.specs().enumerate() {
                let (running, reported, delayed) = self.table.counts(i).unwrap_or_default();
                st.insert(
                    spec.name.clone(),
                    ProcessStatus {
                        name: spec.name.clone(),
                        process: self.described.get(i).cloned().unwrap_or_default(),
                        running,
                        reported,
                        delayed,
                        watched_by: self.watched_by.clone(),
                    },
                );
            }
        }
        for r in reports {
            let Some((name, quorum)) = self
                .table
                .spec(r.spec)
                .map(|s| (s.name.clone(), s.quorum()))
            else {
                continue;
            };
            if self
                .out
                .send(Observation::Process {
                    name,
                    running: r.count,
                    quorum,
                })
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }

    /// A full `/proc` scan, on a blocking thread.
    async fn rescan(&mut self) -> bool {
        let bytes = self.table.cmdline_bytes();
        let procs = tokio::task::spawn_blocking(move || procfs::scan(Path::new("/proc"), bytes))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        match procs {
            Ok(procs) => {
                let reports = self.table.rescan(&procs, std::time::Instant::now());
                self.publish(reports).await
            }
            Err(e) => {
                tracing::error!("vrrp_track_process: cannot read /proc: {e}");
                true
            }
        }
    }

    /// Applies connector events in order; programs started by `exec` are read from `/proc`
    /// (all of one batch on one blocking thread).
    async fn apply(&mut self, events: Vec<ProcEvent>) -> bool {
        let bytes = self.table.cmdline_bytes();
        let execs: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                ProcEvent::Exec { pid, tgid } if pid == tgid => Some(*pid),
                _ => None,
            })
            .collect();
        let infos: Vec<(u32, Option<ProcInfo>)> = if execs.is_empty() {
            Vec::new()
        } else {
            tokio::task::spawn_blocking(move || {
                execs
                    .into_iter()
                    .map(|pid| (pid, procfs::read_process(Path::new("/proc"), pid, bytes)))
                    .collect()
            })
            .await
            .unwrap_or_default()
        };
        let now = std::time::Instant::now();
        let mut reports = Vec::new();
        for ev in events {
            reports.extend(match ev {
                // A new thread is not a new process; a thread's exec, rename or exit is not
                // its process's.
                ProcEvent::Fork {
                    parent_tgid,
                    child_pid,
                    child_tgid,
                } if child_pid == child_tgid => self.table.fork(parent_tgid, child_pid, now),
                ProcEvent::Exec { pid, tgid } if pid == tgid => {
                    let info = infos
                        .iter()
                        .find(|(p, _)| *p == pid)
                        .and_then(|(_, i)| i.as_ref());
                    self.table.exec(info, now)
                }
                ProcEvent::Comm { pid, tgid, comm } if pid == tgid => {
                    self.table.rename(pid, &comm, now)
                }
                ProcEvent::Exit { pid, tgid } if pid == tgid => self.table.exit(pid, now),
                _ => Vec::new(),
            });
        }
        self.publish(reports).await
    }
}

async fn open_source(mode: ProcessWatch) -> (Source, Vec<ProcEvent>) {
    let scan = |every: Duration| {
        // The first scan is the one at start.
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Source::Scan(i)
    };
    match mode {
        ProcessWatch::Scan(every) => (scan(every), Vec::new()),
        ProcessWatch::Auto if !procfs::in_initial_pid_namespace() => {
            tracing::info!(
                "vrrp_track_process: in a PID namespace, the process connector's ids do not match /proc: scanning /proc every {SCAN_INTERVAL:?}"
            );
            (scan(SCAN_INTERVAL), Vec::new())
        }
        ProcessWatch::Auto => match Connector::open(ACK_WAIT).await {
            Ok((c, early)) => (Source::Connector(c, None), early),
            Err(e) => {
                tracing::info!(
                    "vrrp_track_process: the process events connector is not available ({e}): scanning /proc every {SCAN_INTERVAL:?}"
                );
                (scan(SCAN_INTERVAL), Vec::new())
            }
        },
    }
}

/// Watches the rules in `specs` until `commands` closes; each command replaces the rules.
pub(super) async fn process_task(
    specs: Vec<ProcessSpec>,
    mode: ProcessWatch,
    mut commands: mpsc::Receiver<Vec<ProcessSpec>>,
    out: mpsc::Sender<Observation>,
    status: Arc<Mutex<BTreeMap<String, ProcessStatus>>>,
) {
    let (mut source, early) = open_source(mode).await;
    let mut w = Watcher {
        described: specs.iter().map(ProcessSpec::describe).collect(),
        table: Table::new(specs),
        out,
        status,
        watched_by: source.describe(),
    };
    // Subscribed before the scan and applied after it: nothing falls between the two.
    if !w.rescan().await || !w.apply(early).await {
        return;
    }
    loop {
        let deadline = w.table.next_deadline().map(tokio::time::Instant::from_std);
        let input = tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(specs) => {
                    w.described = specs.iter().map(ProcessSpec::describe).collect();
                    w.table.reconfigure(specs);
                    if !w.rescan().await {
                        return;
                    }
                    continue;
                }
                None => return,
            },
            _ = sleep_until(deadline) => {
                let reports = w.table.tick(std::time::Instant::now());
                if !w.publish(reports).await {
                    return;
                }
                continue;
            }
            input = next_input(&mut source) => input,
        };
        let ok = match input {
            Ok(Input::Tick) => w.rescan().await,
            Ok(Input::Events(events, lost)) => {
                let ok = w.apply(events).await;
                if lost {
                    tracing::warn!(
                        "vrrp_track_process: the kernel dropped process events; reading /proc again"
                    );
                }
                ok && (!lost || w.rescan().await)
            }
            Err(e) => {
                tracing::error!(
                    "vrrp_track_process: the process events connector failed ({e}): scanning /proc every {SCAN_INTERVAL:?}"
                );
                let (s, _) = open_source(ProcessWatch::Scan(SCAN_INTERVAL)).await;
                source = s;
                w.watched_by = source.describe();
                w.rescan().await
            }
        };
        if !ok {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn next_input(source: &mut Source) -> std::io::Result<Input> {
    match source {
        Source::Scan(i) => {
            i.tick().await;
            Ok(Input::Tick)
        }
        Source::Connector(c, last) => {
            // Events are read at most every COALESCE: a busy machine forks hundreds of times
            // a second, and one wakeup per event costs more than the events themselves.
            if let Some(last) = *last {
                tokio::time::sleep_until(last + COALESCE).await;
            }
            let mut events = Vec::new();
            let lost = c.recv(&mut events).await?;
            *last = Some(tokio::time::Instant::now());
            Ok(Input::Events(events, lost))
        }
    }
}
