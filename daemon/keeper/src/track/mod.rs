//! Tracked objects, the I/O side: runs `vrrp_script`s, reads `vrrp_track_file`s and counts
//! `vrrp_track_process`es, and reports what it saw as an ordered stream of raw
//! [`Observation`]s keyed by the object's name. What an observation means for an instance
//! (rise/fall, weights, FAULT) is decided elsewhere, by the pure tracking arithmetic of
//! `keeper-vrrp`; `track_interface` needs no I/O here (the VRRP driver follows link events).
//!
//! Only objects that some `vrrp_instance` tracks are run or watched, as in keepalived.
//! Every object is observed once soon after start (scripts: their first run, spread over up
//! to a second; files and processes: at once), then:
//! - scripts every `interval` ([`script`]);
//! - files when their value changes ([`file`]);
//! - processes when their count changes ([`process`]).
//!
//! Observations of one object come in the order they were made. Nothing here blocks the
//! caller: scripts run in their own tasks, `/proc` and file reads on blocking threads.
//!
//! Use: [`Tracker::start`] in a tokio runtime, read the receiver, [`Tracker::reload`] with a
//! new configuration, [`Tracker::status`] for `keeperctl status`, [`Tracker::stop`] at the end.

pub mod command;
pub mod file;
pub mod process;
pub mod script;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::config::syntax::TrackSpec;
pub use file::{FileReading, FileSpec, FileStatus};
pub use process::{ProcessSpec, ProcessStatus, ProcessWatch};
pub use script::{
    DirectExec, ScriptExec, ScriptOutcome, ScriptRequest, ScriptRun, ScriptSpec, ScriptStatus,
};

/// One raw observation of a tracked object.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// A `vrrp_script` run ended.
    Script {
        name: String,
        outcome: ScriptOutcome,
        started: SystemTime,
        duration: Duration,
    },
    /// A `vrrp_track_file`'s value changed (or was read the first time).
    File {
        name: String,
        value: i64,
        reading: FileReading,
    },
    /// The number of processes matching a `vrrp_track_process` changed (or was counted the
    /// first time), after its delays. `quorum` is the configured range (up when
    /// `quorum.is_met(running)`), carried along for the tracking arithmetic.
    Process {
        name: String,
        running: u32,
        quorum: keeper_vrrp::tracking::ProcessQuorum,
    },
}

impl Observation {
    /// The tracked object's name (unique per kind).
    pub fn name(&self) -> &str {
        match self {
            Observation::Script { name, .. }
            | Observation::File { name, .. }
            | Observation::Process { name, .. } => name,
        }
    }
}

/// Every tracked object's status, for `keeperctl status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackStatus {
    pub scripts: Vec<ScriptStatus>,
    pub files: Vec<FileStatus>,
    pub processes: Vec<ProcessStatus>,
}

/// How a [`Tracker`] does its I/O.
#[derive(Clone)]
pub struct TrackerOptions {
    /// Starts scripts: the script launcher plugs in here. Default: [`DirectExec`].
    pub exec: Arc<dyn ScriptExec>,
    pub process_watch: ProcessWatch,
    /// Observations buffered before the producers wait for the reader.
    pub capacity: usize,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions {
            exec: Arc::new(DirectExec::default()),
            process_watch: ProcessWatch::Auto,
            capacity: 256,
        }
    }
}

/// What a configuration asks the tracker to run and watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub scripts: Vec<ScriptSpec>,
    pub files: Vec<FileSpec>,
    pub processes: Vec<ProcessSpec>,
}

/// The objects of `cfg` that some instance tracks. Objects that do not pass validation are
/// left out (a validated configuration has none).
pub fn plan(cfg: &Config) -> Plan {
    let tracked = |list: fn(&crate::config::VrrpInstance) -> &Vec<String>| {
        let mut names: Vec<String> = cfg
            .vrrp_instance
            .values()
            .flat_map(|i| list(i).iter())
            .filter_map(|s| s.parse::<TrackSpec>().ok().map(|t| t.name))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let mut plan = Plan::default();
    for name in tracked(|i| &i.track_script) {
        let Some(s) = cfg.vrrp_script.get(&name) else {
            continue;
        };
        let Some(Ok(command)) = s.script.as_deref().map(command::split) else {
            tracing::error!("vrrp_script {name}: no valid `script`: not run");
            continue;
        };
        plan.scripts.push(ScriptSpec {
            name,
            command,
            interval: s.interval.get(),
            timeout: s.timeout.unwrap_or(s.interval).get(),
            user: s.user.clone().or_else(|| cfg.global.script_user.clone()),
        });
    }
    for name in tracked(|i| &i.track_file) {
        let Some(f) = cfg.vrrp_track_file.get(&name) else {
            continue;
        };
        let Some(path) = f.file.clone() else {
            tracing::error!("vrrp_track_file {name}: no `file`: not watched");
            continue;
        };
        plan.files.push(FileSpec {
            name,
            path,
            init: f.init_file,
        });
    }
    for name in tracked(|i| &i.track_process) {
        let Some(p) = cfg.vrrp_track_process.get(&name) else {
            continue;
        };
        match ProcessSpec::from_config(&name, p) {
            Ok(spec) => plan.processes.push(spec),
            Err(e) => tracing::error!("vrrp_track_process {name}: {e:?}: not watched"),
        }
    }
    for (kind, all, used) in [
        (
            "vrrp_script",
            cfg.vrrp_script.keys().collect::<Vec<_>>(),
            plan.scripts.iter().map(|s| &s.name).collect::<Vec<_>>(),
        ),
        (
            "vrrp_track_file",
            cfg.vrrp_track_file.keys().collect(),
            plan.files.iter().map(|s| &s.name).collect(),
        ),
        (
            "vrrp_track_process",
            cfg.vrrp_track_process.keys().collect(),
            plan.processes.iter().map(|s| &s.name).collect(),
        ),
    ] {
        for name in all.into_iter().filter(|n| !used.contains(n)) {
            tracing::info!("{kind} {name} is tracked by no instance: not run");
        }
    }
    plan
}

struct ScriptTask {
    spec: ScriptSpec,
    handle: JoinHandle<()>,
    status: Arc<Mutex<ScriptStatus>>,
}

struct Worker<T> {
    commands: mpsc::Sender<T>,
    handle: JoinHandle<()>,
}

/// Runs and watches the tracked objects of a configuration. Dropping it stops everything
/// (running scripts' process groups are killed); [`Tracker::stop`] also waits for that.
pub struct Tracker {
    out: mpsc::Sender<Observation>,
    options: TrackerOptions,
    scripts: BTreeMap<String, ScriptTask>,
    files: Option<Worker<Vec<FileSpec>>>,
    file_status: Arc<Mutex<BTreeMap<String, FileStatus>>>,
    processes: Option<Worker<Vec<ProcessSpec>>>,
    process_status: Arc<Mutex<BTreeMap<String, ProcessStatus>>>,
}

/// The first starts of scripts started together are spread over this much at most.
const SPREAD: Duration = Duration::from_secs(1);

impl Tracker {
    /// Starts tracking what `cfg` asks for, with [`TrackerOptions::default`]. Needs a tokio
    /// runtime.
    pub fn start(cfg: &Config) -> (Tracker, mpsc::Receiver<Observation>) {
        Tracker::start_with(cfg, TrackerOptions::default())
    }

    pub fn start_with(
        cfg: &Config,
        options: TrackerOptions,
    ) -> (Tracker, mpsc::Receiver<Observation>) {
        let (out, rx) = mpsc::channel(options.capacity.max(1));
        let mut t = Tracker {
            out,
            options,
            scripts: BTreeMap::new(),
            files: None,
            file_status: Arc::default(),
            processes: None,
            process_status: Arc::default(),
        };
        t.apply(plan(cfg), true);
        (t, rx)
    }

    /// Applies a new configuration: unchanged scripts keep running on their schedule (a run
    /// in progress goes on), unchanged files and processes keep their last value; new or
    /// changed objects start (and report) afresh; objects no longer tracked stop, their
    /// running scripts killed. `init_file` is not written again (keepalived).
    pub fn reload(&mut self, cfg: &Config) {
        self.apply(plan(cfg), false);
    }

    fn apply(&mut self, plan: Plan, first: bool) {
        let mut old = std::mem::take(&mut self.scripts);
        let mut fresh = Vec::new();
        for spec in plan.scripts {
            match old.remove(&spec.name) {
                Some(task) if task.spec == spec => {
                    self.scripts.insert(spec.name.clone(), task);
                }
                Some(task) => {
                    task.handle.abort();
                    fresh.push(spec);
                }
                None => fresh.push(spec),
            }
        }
        for task in old.into_values() {
            tracing::info!("vrrp_script {}: stopped", task.spec.name);
            task.handle.abort();
        }
        let n = u32::try_from(fresh.len()).unwrap_or(u32::MAX).max(1);
        let now = tokio::time::Instant::now();
        for (k, spec) in fresh.into_iter().enumerate() {
            let k = u32::try_from(k).unwrap_or(u32::MAX);
            let first_run = now + spec.interval.min(SPREAD) * k / n;
            let status = Arc::new(Mutex::new(ScriptStatus::new(&spec)));
            let handle = tokio::spawn(script::script_task(
                spec.clone(),
                first_run,
                self.options.exec.clone(),
                self.out.clone(),
                status.clone(),
            ));
            self.scripts.insert(
                spec.name.clone(),
                ScriptTask {
                    spec,
                    handle,
                    status,
                },
            );
        }

        self.files = Self::update_worker(self.files.take(), plan.files, |specs, rx| {
            let (out, status) = (self.out.clone(), self.file_status.clone());
            // init_file is written at start only, never by a reload (keepalived).
            tokio::spawn(file::file_task(specs, first, rx, out, status))
        });
        if self.files.is_none() {
            lock(&self.file_status).clear();
        }
        let mode = self.options.process_watch;
        self.processes = Self::update_worker(self.processes.take(), plan.processes, |specs, rx| {
            let (out, status) = (self.out.clone(), self.process_status.clone());
            tokio::spawn(process::process_task(specs, mode, rx, out, status))
        });
        if self.processes.is_none() {
            lock(&self.process_status).clear();
        }
    }

    /// Hands `specs` to a running worker, starts one, or stops it when there is nothing to do.
    fn update_worker<T: Send + 'static>(
        worker: Option<Worker<Vec<T>>>,
        specs: Vec<T>,
        spawn: impl FnOnce(Vec<T>, mpsc::Receiver<Vec<T>>) -> JoinHandle<()>,
    ) -> Option<Worker<Vec<T>>> {
        if specs.is_empty() {
            if let Some(w) = worker {
                w.handle.abort();
            }
            return None;
        }
        let specs = match worker {
            Some(w) if !w.handle.is_finished() => match w.commands.try_send(specs) {
                Ok(()) => return Some(w),
                Err(mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s)) => {
                    // A worker that cannot take the change is replaced.
                    w.handle.abort();
                    s
                }
            },
            _ => specs,
        };
        let (tx, rx) = mpsc::channel(4);
        Some(Worker {
            commands: tx,
            handle: spawn(specs, rx),
        })
    }

    /// Every tracked object's status.
    pub fn status(&self) -> TrackStatus {
        TrackStatus {
            scripts: self
                .scripts
                .values()
                .map(|t| lock(&t.status).clone())
                .collect(),
            files: lock(&self.file_status).values().cloned().collect(),
            processes: lock(&self.process_status).values().cloned().collect(),
        }
    }

    /// Stops everything and waits until running scripts are killed and reaped.
    pub async fn stop(mut self) {
        let mut handles: Vec<JoinHandle<()>> = std::mem::take(&mut self.scripts)
            .into_values()
            .map(|t| t.handle)
            .collect();
        handles.extend(self.files.take().map(|w| w.handle));
        handles.extend(self.processes.take().map(|w| w.handle));
        for h in &handles {
            h.abort();
        }
        for h in handles {
            let _ = h.await;
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for t in self.scripts.values() {
            t.handle.abort();
        }
        if let Some(w) = &self.files {
            w.handle.abort();
        }
        if let Some(w) = &self.processes {
            w.handle.abort();
        }
    }
}

/// Locks a status; a panic elsewhere while holding it does not make it unreadable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Seconds since the Unix epoch, as the control socket shows times.
pub(crate) fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
