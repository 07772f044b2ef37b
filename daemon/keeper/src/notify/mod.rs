//! Notifications of state changes: notify scripts, `notify_fifo` and SMTP alerts, with
//! keepalived's arguments, lines and messages, and an order keepalived does not give.
//!
//! - **Scripts** run in the order of the transitions, one at a time per subject (a VRRP
//!   instance, a sync group, a real server): each subject has a queue and a task that runs its
//!   jobs one after the other, so a transition that comes while a script runs waits for it.
//!   For one transition the specific script (`notify_master`, …) runs first, then the generic
//!   `notify` (keepalived's order; keepalived starts both at once and never waits). Every script
//!   has a timeout (`global.notify_script_timeout`, 30 s) after which its process group is
//!   killed and the queue moves on. Nothing here ever makes the caller wait: VRRP hands a change
//!   over and goes on.
//! - **`notify_fifo`** gets its line at once, in transition order (see [`fifo`]).
//! - **Mail** goes through a bounded queue to a mail task (see [`mail`]); like keepalived, a
//!   subject mails only when its state differs from the one it last mailed.
//!
//! Scripts get keepalived's arguments: the specific scripts are run exactly as written; the
//! generic `notify` gets four more: `INSTANCE|GROUP NAME MASTER|BACKUP|FAULT|STOP PRIORITY`
//! (priority 0 for a group). As in keepalived, once a sync group's member has had its first
//! notification, it gets none for a transition its group forced on it
//! (`TransitionReason::SyncGroup`) nor for a state its group is already in: the group's
//! notification stands for its members. The member whose own transition moved the group is
//! notified, and so is the group.
//!
//! The API the rest of keeperd calls:
//! - [`Notifier::vrrp_change`] with each [`StateChange`] the VRRP driver broadcasts (the
//!   runtime does this);
//! - [`Notifier::group_transition`] with each `keeper_vrrp::GroupTransition` the sync-group
//!   coordinator reports (`SyncGroup::poll_transition`), like the members' changes (the order
//!   between the two does not matter: members the group forced are known by their reason);
//! - [`Notifier::real_server`] when a checker moves a real server UP or DOWN (`notify_up` /
//!   `notify_down`, and keepalived's real-server mail);
//! - [`Notifier::stop`] at shutdown (`notify_stop` and the STOP notifications, bounded);
//! - [`Notifier::reconfigure`] after a reload; [`Notifier::stats`] for status and metrics.

pub mod command;
pub mod exec;
pub mod fifo;
pub mod mail;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keeper_vrrp::{State, Transition, TransitionReason};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::config::validate::{Finding, Severity, parse_host_port};
use crate::vrrp::driver::StateChange;
use exec::{Runner, Script};
use fifo::FifoWriter;
use mail::{MailSettings, Mailer};

/// Jobs waiting per subject; more are dropped (counted and logged). Reached only when scripts
/// hang for many timeouts in a row while the state keeps flapping.
pub const QUEUE_LIMIT: usize = 256;

/// A state as notifications name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    Stop,
}

impl NotifyState {
    /// keepalived's word: `MASTER`, `BACKUP`, `FAULT`, `STOP`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
        }
    }

    /// The notification a transition makes; `None` for one into Initialize other than a stop.
    pub fn of(t: &Transition) -> Option<NotifyState> {
        match t.to {
            State::Master => Some(NotifyState::Master),
            State::Backup => Some(NotifyState::Backup),
            State::Fault => Some(NotifyState::Fault),
            State::Initialize if t.reason == TransitionReason::Shutdown => Some(NotifyState::Stop),
            State::Initialize => None,
        }
    }
}

impl std::fmt::Display for NotifyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whom a notification is about; each has its own queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Instance(String),
    Group(String),
    RealServer {
        virtual_server: String,
        real_server: String,
    },
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Instance(n) => write!(f, "vrrp_instance {n}"),
            Subject::Group(n) => write!(f, "vrrp_sync_group {n}"),
            Subject::RealServer {
                virtual_server,
                real_server,
            } => write!(f, "real server {real_server} of {virtual_server}"),
        }
    }
}

/// A real server's change, as a checker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServerChange {
    /// As keepalived prints it in mail: `10.0.0.100:80` (or the configured name).
    pub virtual_server: String,
    /// `10.0.0.21:80`.
    pub real_server: String,
    pub up: bool,
    /// `notify_up` / `notify_down` split into argv ([`command::split`]); run as written.
    pub script: Option<Vec<String>>,
    /// Send keepalived's real-server mail.
    pub smtp_alert: bool,
    /// The mail body: keepalived's checker text, e.g. `=> TCP CHECK failed on service <=`.
    pub detail: String,
}

/// Counters, for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NotifyStats {
    /// Scripts that ran (any outcome).
    pub scripts_run: u64,
    /// Scripts that exited non-zero, were killed by a signal, or could not start.
    pub scripts_failed: u64,
    /// Scripts killed at their timeout.
    pub scripts_timed_out: u64,
    /// Jobs dropped because a subject's queue was full.
    pub queue_dropped: u64,
    /// State changes missed because the broadcast ran ahead (see [`Notifier::lagged`]).
    pub changes_lost: u64,
    pub fifo_written: u64,
    pub fifo_dropped: u64,
    pub mail_sent: u64,
    pub mail_failed: u64,
    pub mail_dropped: u64,
}

/// Scripts of one instance or group, split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Scripts {
    master: Option<Vec<String>>,
    backup: Option<Vec<String>>,
    fault: Option<Vec<String>>,
    stop: Option<Vec<String>>,
    generic: Option<Vec<String>>,
    smtp_alert: bool,
}

impl Scripts {
    fn specific(&self, s: NotifyState) -> Option<&Vec<String>> {
        match s {
            NotifyState::Master => self.master.as_ref(),
            NotifyState::Backup => self.backup.as_ref(),
            NotifyState::Fault => self.fault.as_ref(),
            NotifyState::Stop => self.stop.as_ref(),
        }
    }
}

/// What the configuration asks of notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    instances: BTreeMap<String, Scripts>,
    groups: BTreeMap<String, Scripts>,
    /// Instance -> its sync group.
    group_of: BTreeMap<String, String>,
    timeout: Duration,
    router_id: String,
    fifo: Option<PathBuf>,
    mail: Option<MailSettings>,
    script_user: Option<String>,
}

/// The host name (keepalived's default `router_id`, HELO name and sender domain).
fn local_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn split_opt(line: &Option<String>) -> Option<Vec<String>> {
    line.as_deref().and_then(|l| command::split(l).ok())
}

impl Plan {
    /// Reads the configuration; lines that do not split are left out (`check` reports them).
    pub fn from_config(cfg: &Config) -> Plan {
        let g = &cfg.global;
        let smtp_default = g.smtp_alert_vrrp.or(g.smtp_alert).unwrap_or(false);
        let instances = cfg
            .vrrp_instance
            .iter()
            .map(|(name, i)| {
                (
                    name.clone(),
                    Scripts {
                        master: split_opt(&i.notify_master),
                        backup: split_opt(&i.notify_backup),
                        fault: split_opt(&i.notify_fault),
                        stop: split_opt(&i.notify_stop),
                        generic: split_opt(&i.notify),
                        smtp_alert: i.smtp_alert.unwrap_or(smtp_default),
                    },
                )
            })
            .collect();
        let groups = cfg
            .vrrp_sync_group
            .iter()
            .map(|(name, sg)| {
                (
                    name.clone(),
                    Scripts {
                        master: split_opt(&sg.notify_master),
                        backup: split_opt(&sg.notify_backup),
                        fault: split_opt(&sg.notify_fault),
                        stop: split_opt(&sg.notify_stop),
                        generic: split_opt(&sg.notify),
                        smtp_alert: sg.smtp_alert.unwrap_or(smtp_default),
                    },
                )
            })
            .collect();
        let group_of = cfg
            .vrrp_sync_group
            .iter()
            .flat_map(|(name, sg)| sg.group.iter().map(move |m| (m.clone(), name.clone())))
            .collect();
        let local = local_name();
        let router_id = g.router_id.clone().unwrap_or_else(|| local.clone());
        let mail = match (&g.smtp_server, g.notification_email.is_empty()) {
            (Some(server), false) => match parse_host_port(server, 25) {
                Ok((host, port)) => Some(MailSettings {
                    server: host,
                    port,
                    helo: g.smtp_helo_name.clone().unwrap_or_else(|| local.clone()),
                    from: g.notification_email_from.clone().unwrap_or_else(|| {
                        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
                            .ok()
                            .flatten()
                            .map(|u| u.name)
                            .unwrap_or_else(|| "keeper".to_string());
                        format!("{user}@{local}")
                    }),
                    to: g.notification_email.clone(),
                    timeout: g.smtp_connect_timeout.get(),
                    router_id: router_id.clone(),
                }),
                Err(_) => None,
            },
            _ => None,
        };
        Plan {
            instances,
            groups,
            group_of,
            timeout: g.notify_script_timeout.get(),
            router_id,
            fifo: g.notify_fifo.clone(),
            mail,
            script_user: g.script_user.clone(),
        }
    }
}

fn key(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Whether `program` names an executable file (searched in `PATH` without a `/`, as exec does).
fn findable(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
        .to_string_lossy()
        .split(':')
        .any(|d| executable(&Path::new(d).join(program)))
}

/// `--check` findings about notify keys: a line that does not split is an error; a program
/// that is not there (yet) or not executable is a warning (keepalived disables such a script;
/// keeperd runs it each time and logs the failure, so that a script installed later works).
pub fn check(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut line = |path: Vec<String>, value: &Option<String>| {
        let Some(v) = value else { return };
        match command::split(v) {
            Err(e) => out.push(Finding {
                severity: Severity::Error,
                path,
                message: format!("{v:?}: {e}"),
            }),
            Ok(argv) => {
                if !findable(&argv[0]) {
                    out.push(Finding {
                        severity: Severity::Warning,
                        path,
                        message: format!(
                            "{:?} is not an executable file here (each run will fail until it is)",
                            argv[0]
                        ),
                    });
                }
            }
        }
    };
    for (name, i) in &cfg.vrrp_instance {
        for (k, v) in [
            ("notify_master", &i.notify_master),
            ("notify_backup", &i.notify_backup),
            ("notify_fault", &i.notify_fault),
            ("notify_stop", &i.notify_stop),
            ("notify", &i.notify),
        ] {
            line(key(&["vrrp_instance", name, k]), v);
        }
    }
    for (name, g) in &cfg.vrrp_sync_group {
        for (k, v) in [
            ("notify_master", &g.notify_master),
            ("notify_backup", &g.notify_backup),
            ("notify_fault", &g.notify_fault),
            ("notify_stop", &g.notify_stop),
            ("notify", &g.notify),
        ] {
            line(key(&["vrrp_sync_group", name, k]), v);
        }
    }
    if cfg.global.notify_script_timeout.get().is_zero() {
        out.push(Finding {
            severity: Severity::Error,
            path: key(&["global", "notify_script_timeout"]),
            message: "must be more than 0".into(),
        });
    }
    out
}

/// One transition's scripts, run in order.
struct Job {
    subject: Subject,
    state: &'static str,
    scripts: Vec<(&'static str, Script)>,
    runner: Runner,
}

struct Queue {
    tx: mpsc::Sender<Job>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Counters {
    scripts_run: AtomicU64,
    scripts_failed: AtomicU64,
    scripts_timed_out: AtomicU64,
    queue_dropped: AtomicU64,
    changes_lost: AtomicU64,
}

struct Shared {
    plan: Plan,
    runner: Runner,
    queues: HashMap<Subject, Queue>,
    fifo: Option<(FifoWriter, JoinHandle<()>)>,
    mailer: Option<(Mailer, JoinHandle<()>)>,
    /// Counters of every FIFO writer and mailer so far (a reload may replace them).
    fifo_stats: Vec<Arc<fifo::FifoStats>>,
    mail_stats: Vec<Arc<mail::MailStats>>,
    last_mailed: HashMap<Subject, NotifyState>,
    group_state: HashMap<String, NotifyState>,
    /// Instances that have had a notification (keepalived's `notifies_sent`).
    notified: HashSet<String>,
}

/// The notifications of one keeperd. Cheap to clone; every method returns at once except
/// [`Notifier::stop`].
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Mutex<Shared>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

fn open_fifo(path: &Path) -> Option<(FifoWriter, JoinHandle<()>)> {
    match FifoWriter::open(path) {
        Ok(w) => {
            tracing::info!(fifo = %path.display(), "notify_fifo open");
            Some(w)
        }
        Err(e) => {
            tracing::error!(fifo = %path.display(), "notify_fifo not used: {e}");
            None
        }
    }
}

fn start_mailer(settings: Option<&MailSettings>) -> Option<(Mailer, JoinHandle<()>)> {
    let s = settings?;
    match Mailer::start(s.clone()) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!("SMTP alerts off: {e}");
            None
        }
    }
}

impl Notifier {
    /// Starts notifications for `cfg` with scripts run by `runner`. Needs a tokio runtime.
    pub fn start(cfg: &Config, runner: Runner) -> Notifier {
        let plan = Plan::from_config(cfg);
        let fifo = plan.fifo.as_deref().and_then(open_fifo);
        let mailer = start_mailer(plan.mail.as_ref());
        let fifo_stats = fifo.iter().map(|(f, _)| f.stats()).collect();
        let mail_stats = mailer.iter().map(|(m, _)| m.stats()).collect();
        Notifier {
            shared: Arc::new(Mutex::new(Shared {
                plan,
                runner,
                queues: HashMap::new(),
                fifo,
                mailer,
                fifo_stats,
                mail_stats,
                last_mailed: HashMap::new(),
                group_state: HashMap::new(),
                notified: HashSet::new(),
            })),
            counters: Arc::default(),
        }
    }

    /// The runner for `cfg`'s `script_user` in this process (see [`Runner::direct`]).
    pub fn runner_for(cfg: &Config) -> Result<Runner, String> {
        Runner::direct(cfg.global.script_user.as_deref())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A state change from the VRRP driver.
    pub fn vrrp_change(&self, change: &StateChange) {
        // Stops are notified by `stop`, for every instance, as keepalived does.
        if change.transition.reason == TransitionReason::Shutdown {
            return;
        }
        if let Some(state) = NotifyState::of(&change.transition) {
            let forced = change.transition.reason == TransitionReason::SyncGroup;
            self.member(&change.instance, state, change.priority, forced);
        }
    }

    /// `n` state changes were missed (the broadcast receiver lagged): logged and counted;
    /// their scripts do not run.
    pub fn lagged(&self, n: u64) {
        self.counters.changes_lost.fetch_add(n, Ordering::Relaxed);
        tracing::error!(
            missed = n,
            "notify: {n} VRRP state changes were missed; their notifications are lost"
        );
    }

    /// Instance `name` entered `state` with `priority`.
    pub fn instance(&self, name: &str, state: NotifyState, priority: u8) {
        self.member(name, state, priority, false);
    }

    /// `forced`: its sync group moved it (`TransitionReason::SyncGroup`).
    fn member(&self, name: &str, state: NotifyState, priority: u8, forced: bool) {
        let mut sh = self.lock();
        if let Some(group) = sh.plan.group_of.get(name)
            && sh.notified.contains(name)
            && (forced || sh.group_state.get(group) == Some(&state))
        {
            tracing::debug!(instance = name, %state, group = %group, "notify: the group's notification stands for this member");
            return;
        }
        sh.notified.insert(name.to_string());
        let scripts = sh.plan.instances.get(name).cloned().unwrap_or_default();
        self.notify(
            &mut sh,
            Subject::Instance(name.to_string()),
            "INSTANCE",
            name,
            state,
            priority,
            &scripts,
        );
    }

    /// A transition the sync-group coordinator of `name` reported
    /// (`keeper_vrrp::SyncGroup::poll_transition`). A move into Initialize is not notified:
    /// the group's STOP comes from [`Notifier::stop`].
    pub fn group_transition(&self, name: &str, t: &keeper_vrrp::GroupTransition) {
        let state = match t.to {
            State::Master => NotifyState::Master,
            State::Backup => NotifyState::Backup,
            State::Fault => NotifyState::Fault,
            State::Initialize => return,
        };
        self.group(name, state);
    }

    /// Sync group `name` entered `state`.
    pub fn group(&self, name: &str, state: NotifyState) {
        let mut sh = self.lock();
        sh.group_state.insert(name.to_string(), state);
        let scripts = sh.plan.groups.get(name).cloned().unwrap_or_default();
        self.notify(
            &mut sh,
            Subject::Group(name.to_string()),
            "GROUP",
            name,
            state,
            0,
            &scripts,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        sh: &mut Shared,
        subject: Subject,
        kind: &'static str,
        name: &str,
        state: NotifyState,
        priority: u8,
        scripts: &Scripts,
    ) {
        if let Some((fifo, _)) = &sh.fifo {
            fifo.send(fifo::line(kind, name, state.as_str(), priority));
        }
        let timeout = sh.plan.timeout;
        let mut job = Vec::new();
        if let Some(argv) = scripts.specific(state) {
            job.push((
                "specific",
                Script {
                    argv: argv.clone(),
                    timeout,
                },
            ));
        }
        if let Some(argv) = &scripts.generic {
            let mut argv = argv.clone();
            argv.extend([
                kind.to_string(),
                name.to_string(),
                state.as_str().to_string(),
                priority.to_string(),
            ]);
            job.push(("notify", Script { argv, timeout }));
        }
        if !job.is_empty() {
            self.enqueue(sh, subject.clone(), state.as_str(), job);
        }
        if scripts.smtp_alert && sh.last_mailed.get(&subject) != Some(&state) {
            if let Some((mailer, _)) = &sh.mailer
                && let Some(alert) =
                    mail::vrrp_alert(&sh.plan.router_id, kind == "GROUP", name, state.as_str())
            {
                mailer.send(alert);
            }
            sh.last_mailed.insert(subject, state);
        }
    }

    /// A checker moved a real server UP or DOWN.
    pub fn real_server(&self, change: RealServerChange) {
        let mut sh = self.lock();
        let subject = Subject::RealServer {
            virtual_server: change.virtual_server.clone(),
            real_server: change.real_server.clone(),
        };
        let state = if change.up { "UP" } else { "DOWN" };
        if let Some(argv) = change.script {
            let timeout = sh.plan.timeout;
            let which = if change.up {
                "notify_up"
            } else {
                "notify_down"
            };
            self.enqueue(
                &mut sh,
                subject,
                state,
                vec![(which, Script { argv, timeout })],
            );
        }
        if change.smtp_alert
            && let Some((mailer, _)) = &sh.mailer
        {
            mailer.send(mail::real_server_alert(
                &sh.plan.router_id,
                &change.virtual_server,
                &change.real_server,
                change.up,
                &change.detail,
            ));
        }
    }

    fn enqueue(
        &self,
        sh: &mut Shared,
        subject: Subject,
        state: &'static str,
        scripts: Vec<(&'static str, Script)>,
    ) {
        let job = Job {
            subject: subject.clone(),
            state,
            scripts,
            runner: sh.runner.clone(),
        };
        let queue = sh.queues.entry(subject.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
            let task = tokio::spawn(run_queue(rx, self.counters.clone()));
            Queue { tx, task }
        });
        if queue.tx.try_send(job).is_err() {
            let n = self.counters.queue_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(%subject, state, dropped = n, "notify: {QUEUE_LIMIT} notifications already wait for this subject's scripts; this one is dropped");
        }
    }

    /// Applies a reloaded configuration to the notifications that follow (the ones queued
    /// keep the scripts they were queued with). A changed FIFO path or mail settings reopen
    /// them; a `script_user` that cannot be used keeps the previous one (logged).
    pub fn reconfigure(&self, cfg: &Config) {
        let plan = Plan::from_config(cfg);
        let mut sh = self.lock();
        // Only a runner keeperd forks itself follows a new script_user (a launcher's users are
        // fixed when it starts, and reload refuses a change there).
        if plan.script_user != sh.plan.script_user && matches!(sh.runner, Runner::Direct { .. }) {
            match Runner::direct(plan.script_user.as_deref()) {
                Ok(r) => sh.runner = r,
                Err(e) => tracing::error!(
                    "notify: global.script_user: {e}; scripts keep running as before"
                ),
            }
        }
        if plan.fifo != sh.plan.fifo {
            // The old writer's task ends once its queue is written.
            sh.fifo = plan.fifo.as_deref().and_then(open_fifo);
            if let Some((f, _)) = &sh.fifo {
                let s = f.stats();
                sh.fifo_stats.push(s);
            }
        }
        if plan.mail != sh.plan.mail {
            // The old mail task ends once its queue is sent.
            sh.mailer = start_mailer(plan.mail.as_ref());
            if let Some((m, _)) = &sh.mailer {
                let s = m.stats();
                sh.mail_stats.push(s);
            }
        }
        // Membership may have changed: keep only states of groups that still exist.
        sh.group_state.retain(|g, _| plan.groups.contains_key(g));
        sh.plan = plan;
    }

    /// The counters so far.
    pub fn stats(&self) -> NotifyStats {
        let sh = self.lock();
        let c = &self.counters;
        let fifo = |f: fn(&fifo::FifoStats) -> &AtomicU64| {
            sh.fifo_stats
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        let mail = |f: fn(&mail::MailStats) -> &AtomicU64| {
            sh.mail_stats
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        NotifyStats {
            scripts_run: c.scripts_run.load(Ordering::Relaxed),
            scripts_failed: c.scripts_failed.load(Ordering::Relaxed),
            scripts_timed_out: c.scripts_timed_out.load(Ordering::Relaxed),
            queue_dropped: c.queue_dropped.load(Ordering::Relaxed),
            changes_lost: c.changes_lost.load(Ordering::Relaxed),
            fifo_written: fifo(|s| &s.written),
            fifo_dropped: fifo(|s| &s.dropped),
            mail_sent: mail(|s| &s.sent),
            mail_failed: mail(|s| &s.failed),
            mail_dropped: mail(|s| &s.dropped),
        }
    }

    /// Shutdown: STOP for every instance given (name, priority) and every configured group
    /// (`notify_stop`, generic `notify … STOP`, the FIFO line, the "Stopping" mail), as
    /// keepalived does; then waits until every queue, the FIFO and the mail are done, at most
    /// `within`. Scripts still running then are killed with their process groups, and mail not
    /// sent by then is not sent. Returns whether everything finished in time.
    pub async fn stop(&self, instances: &[(String, u8)], within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let groups: Vec<String> = self.lock().plan.groups.keys().cloned().collect();
        for (name, prio) in instances {
            let mut sh = self.lock();
            sh.notified.insert(name.clone());
            let scripts = sh.plan.instances.get(name).cloned().unwrap_or_default();
            self.notify(
                &mut sh,
                Subject::Instance(name.clone()),
                "INSTANCE",
                name,
                NotifyState::Stop,
                *prio,
                &scripts,
            );
        }
        for g in &groups {
            self.group(g, NotifyState::Stop);
        }
        // Closing the senders lets each task finish what it has and end.
        let tasks: Vec<JoinHandle<()>> = {
            let mut sh = self.lock();
            let mut tasks: Vec<JoinHandle<()>> = sh.queues.drain().map(|(_, q)| q.task).collect();
            if let Some((_, t)) = sh.fifo.take() {
                tasks.push(t);
            }
            if let Some((_, t)) = sh.mailer.take() {
                tasks.push(t);
            }
            tasks
        };
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let all = futures_util::future::join_all(tasks);
        match tokio::time::timeout_at(deadline, all).await {
            Ok(_) => true,
            Err(_) => {
                tracing::warn!(
                    "notify: stop notifications not finished within {within:?}: running scripts killed"
                );
                for a in aborts {
                    a.abort();
                }
                false
            }
        }
    }
}

async fn run_queue(mut rx: mpsc::Receiver<Job>, counters: Arc<Counters>) {
    while let Some(job) = rx.recv().await {
        for (which, script) in &job.scripts {
            let run = job.runner.run(script).await;
            counters.scripts_run.fetch_add(1, Ordering::Relaxed);
            let program = script.argv.first().map(String::as_str).unwrap_or("");
            match &run.outcome {
                exec::Outcome::Exited(0) => {
                    tracing::info!(subject = %job.subject, state = job.state, script = program, took = ?run.duration, "notify script ({which}) done");
                    if !run.stderr.is_empty() {
                        tracing::debug!(subject = %job.subject, script = program, "stderr: {}", run.stderr);
                    }
                }
                outcome => {
                    counters.scripts_failed.fetch_add(1, Ordering::Relaxed);
                    if *outcome == exec::Outcome::TimedOut {
                        counters.scripts_timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::warn!(subject = %job.subject, state = job.state, script = program, took = ?run.duration, stdout = %run.stdout, stderr = %run.stderr, "notify script ({which}): {outcome}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
