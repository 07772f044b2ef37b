//! The checker driver: one tokio task that owns every real server's [`ServerMachine`], starts
//! attempts when they are due, feeds their outcomes to the machines, and publishes verdicts,
//! notify scripts and status. Thin by design: timing and state are decided in `machine.rs`.
//!
//! Cheap at scale: one timer (the earliest due attempt of a heap), one short task per attempt,
//! at most `limit` attempts in flight (the rest wait, in due order), first attempts spread over
//! the warmup window, and a yield after each batch of starts so that VRRP on the same runtime
//! never waits behind a burst of checks. Nothing here blocks: sockets and child processes are
//! tokio's, and reading certificate files happens on the blocking pool.

use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::machine::{Attempt, CheckerMachine, Notify, Outcome, ServerMachine};
use super::plan::{Kind, Plan, Probe, ServerKey, ServerPlan, Tls, VirtualServerPlan};
use super::quorum::{QuorumMachine, QuorumNotify};
use super::script::{Script, ScriptEnd};
use super::{dns, file, http, ping, smtp, tcp, tls, udp};
use crate::launcher::ScriptRunner;

/// A notify script gets this long before it is killed (keepalived sets none; a hung notify
/// must not hold back the ones after it forever).
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// `notify_down` under `omega` at shutdown: keepalived's bound.
pub const OMEGA_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts started in one go before yielding to the other tasks of the runtime.
const START_BATCH: usize = 256;

/// A real server's health, as the IPVS reconcile needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    pub up: bool,
    /// A dynamic weight (`misc_dynamic`); `None` means the configured weight.
    pub weight: Option<u32>,
}

/// A real server's verdict: the one it starts with (when it is first configured, at start
/// or reload), then every change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub key: ServerKey,
    pub address: SocketAddr,
    pub up: bool,
    pub weight: Option<u32>,
    /// Why it is DOWN: the failure that decided it. `None` when UP.
    pub error: Option<String>,
    pub at: SystemTime,
}

impl Verdict {
    pub fn health(&self) -> Health {
        Health {
            up: self.up,
            weight: self.weight,
        }
    }
}

/// One checker as `keeperctl status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckStatus {
    pub kind: Kind,
    pub up: bool,
    /// Failed attempts since the last success, toward `1 + retry`.
    pub failures: u32,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<SystemTime>,
    pub last_duration: Option<Duration>,
}

/// One real server as `keeperctl status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    pub key: ServerKey,
    pub address: SocketAddr,
    pub weight: u32,
    pub health: Health,
    /// The last change of the verdict (none since start: `None`).
    pub since: Option<SystemTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<SystemTime>,
    pub checks: Vec<CheckStatus>,
}

/// A virtual server's quorum as `keeperctl status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuorumStatus {
    pub virtual_server: String,
    pub up: bool,
    /// The sum of the weights of its live real servers.
    pub weight: u64,
    pub quorum: u64,
    pub hysteresis: u64,
    /// The last change (none since start: `None`).
    pub since: Option<SystemTime>,
}

/// Counters of the driver, for status and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    pub attempts: u64,
    pub in_flight: usize,
    pub limit: usize,
    /// Attempts that started later than 10 % of their interval after they were due.
    pub late_starts: u64,
    pub max_lateness_us: u64,
    /// Start lateness: attempts under 1 ms, 4 ms, 16 ms, 64 ms, 256 ms, 1 s, and longer.
    pub lateness_histogram: [u64; 7],
}

#[derive(Default)]
pub(super) struct Board {
    servers: Vec<ServerStatus>,
    quorums: Vec<QuorumStatus>,
    stats: EngineStats,
}

/// Shared between the driver (writes) and the control socket (reads snapshots).
pub(super) type SharedBoard = Arc<Mutex<Board>>;

fn lock(board: &SharedBoard) -> std::sync::MutexGuard<'_, Board> {
    // A panic while holding the lock leaves consistent plain data: keep serving it.
    board.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) enum Command {
    Reload(Plan),
    Shutdown(oneshot::Sender<()>),
}

/// Compiled regexes and TLS configurations, built once per distinct value; the ICMP sockets;
/// keeperd's script runner.
struct Resources {
    regexes: Mutex<HashMap<String, Result<Arc<regex::bytes::Regex>, String>>>,
    tls: Mutex<HashMap<Tls, Result<Arc<rustls::ClientConfig>, String>>>,
    pinger: ping::Pinger,
    scripts: ScriptRunner,
}

impl http::Resources for Resources {
    fn regex(&self, pattern: &str) -> Result<Arc<regex::bytes::Regex>, String> {
        let mut map = self.regexes.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(pattern.to_string())
            .or_insert_with(|| {
                regex::bytes::Regex::new(pattern)
                    .map(Arc::new)
                    .map_err(|e| format!("regex {pattern:?}: {e}"))
            })
            .clone()
    }

    fn tls(&self, tls: &Tls) -> Result<Arc<rustls::ClientConfig>, String> {
        let map = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        map.get(tls)
            .cloned()
            .unwrap_or_else(|| Err("TLS configuration not prepared".to_string()))
    }
}

impl Resources {
    /// Builds the TLS configurations (reading certificate files) and compiles the regexes
    /// `plan` needs and does not have yet, on the blocking pool: never on the runtime's thread.
    async fn prepare(&self, plan: &Plan) {
        let mut tls_wanted: Vec<Tls> = Vec::new();
        let mut regex_wanted: Vec<String> = Vec::new();
        for s in &plan.servers {
            for c in &s.checks {
                let Probe::Http(h) = &c.probe else { continue };
                if let Some(t) = &h.tls
                    && !tls_wanted.contains(t)
                {
                    tls_wanted.push(t.clone());
                }
                for re in h.urls.iter().filter_map(|u| u.regex.as_ref()) {
                    if !regex_wanted.contains(re) {
                        regex_wanted.push(re.clone());
                    }
                }
            }
        }
        {
            let map = self.tls.lock().unwrap_or_else(|p| p.into_inner());
            tls_wanted.retain(|t| !map.contains_key(t));
        }
        {
            let map = self.regexes.lock().unwrap_or_else(|p| p.into_inner());
            regex_wanted.retain(|r| !map.contains_key(r));
        }
        if tls_wanted.is_empty() && regex_wanted.is_empty() {
            return;
        }
        let (tls_built, regex_built) = tokio::task::spawn_blocking(move || {
            let tls: Vec<_> = tls_wanted
                .into_iter()
                .map(|t| {
                    let c = tls::client_config(&t);
                    (t, c)
                })
                .collect();
            let regexes: Vec<_> = regex_wanted
                .into_iter()
                .map(|p| {
                    let r = regex::bytes::Regex::new(&p)
                        .map(Arc::new)
                        .map_err(|e| format!("regex {p:?}: {e}"));
                    (p, r)
                })
                .collect();
            (tls, regexes)
        })
        .await
        .unwrap_or_default();
        let mut map = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        for (t, c) in tls_built {
            if let Err(e) = &c {
                tracing::error!("ssl_get: {e}");
            }
            map.insert(t, c);
        }
        drop(map);
        let mut map = self.regexes.lock().unwrap_or_else(|p| p.into_inner());
        map.extend(regex_built);
    }
}

/// Runs one attempt.
///
/// Every probe but TCP runs boxed: a task holds its future inline, so without the boxes every
/// attempt (10,000 TCP connects a second) would carry the largest probe's state (the HTTP
/// exchange with its TLS handshake: kilobytes), times the attempts in flight.
async fn attempt(plan: Arc<ServerPlan>, check: usize, res: Arc<Resources>) -> Outcome {
    let Some(c) = plan.checks.get(check) else {
        return Outcome::fail("no such checker");
    };
    match &c.probe {
        Probe::Tcp(connect) => match tcp::check(connect).await {
            Ok(()) => Outcome::pass(),
            Err(e) => Outcome::fail(e),
        },
        Probe::Http(h) => match Box::pin(http::check(h, &*res)).await {
            Ok(()) => Outcome::pass(),
            Err(e) => Outcome::fail(e),
        },
        Probe::Udp(u) => to_outcome(Box::pin(udp::check(u)).await),
        Probe::Dns(d) => to_outcome(Box::pin(dns::check(d)).await),
        Probe::Ping(p) => to_outcome(Box::pin(res.pinger.check(p)).await),
        Probe::Smtp(m) => to_outcome(Box::pin(smtp::check(m)).await),
        // Never scheduled: the file's value decides (`Engine::file_value`).
        Probe::File(_) => Outcome::fail("file_check has no attempts"),
        Probe::Misc(m) => match Box::pin(run_script(&m.script, m.timeout, &res)).await {
            ScriptEnd::Exited(0) => Outcome::pass(),
            ScriptEnd::Exited(code) if m.dynamic && (2..=255).contains(&code) => Outcome::Pass {
                weight: u32::try_from(code - 2).ok(),
            },
            ScriptEnd::TimedOut => Outcome::fail(format!(
                "misc_path {}: timed out after misc_timeout {:?} (killed)",
                m.script.argv[0], m.timeout
            )),
            end => Outcome::fail(format!("misc_path {}: {end}", m.script.argv[0])),
        },
    }
}

/// A script of the checkers (`misc_path`, notify and quorum scripts) run by keeperd's script
/// runner, as every other script: as its user (`misc_check.user`, else `global.script_user`,
/// else keeperd's), with no capability and a clean environment; at `timeout` its process group
/// gets SIGTERM, then SIGKILL.
async fn run_script(s: &Script, timeout: Duration, res: &Resources) -> ScriptEnd {
    let run = res.scripts.run(crate::launcher::Script {
        argv: s.argv.clone(),
        env: Vec::new(),
        timeout,
        user: s.user.clone(),
    });
    match run.await {
        Ok(r) => match r.outcome {
            crate::launcher::Outcome::Exited(code) => ScriptEnd::Exited(code),
            crate::launcher::Outcome::Signaled(sig) => ScriptEnd::Signaled(sig),
            crate::launcher::Outcome::TimedOut => ScriptEnd::TimedOut,
        },
        Err(e) => ScriptEnd::NotStarted(e.to_string()),
    }
}

fn to_outcome(r: Result<(), String>) -> Outcome {
    match r {
        Ok(()) => Outcome::pass(),
        Err(e) => Outcome::fail(e),
    }
}

/// What [`Engine::publish`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Publish {
    /// Only the notify script, if any.
    Nothing,
    /// The verdict a real server starts with (UP, or DOWN under alpha).
    Initial,
    /// A change of the verdict.
    Change,
}

/// A due attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: Instant,
    seq: u64,
    server: u64,
    check: usize,
    /// When it was scheduled (for lateness relative to the interval).
    scheduled: Instant,
}

struct Done {
    server: u64,
    check: usize,
    due: Instant,
    started: Instant,
    finished: Instant,
    outcome: Outcome,
}

struct Server {
    plan: Arc<ServerPlan>,
    machine: ServerMachine,
    /// Position in the board.
    pos: usize,
    /// Per checker: when its next attempt is due (`None` while one is in flight).
    next_due: Vec<Option<Instant>>,
    notify_tail: Option<tokio::task::JoinHandle<()>>,
}

/// A virtual server's quorum and the real servers that make it.
struct VirtualServer {
    plan: VirtualServerPlan,
    machine: QuorumMachine,
    members: Vec<u64>,
    pos: usize,
    notify_tail: Option<tokio::task::JoinHandle<()>>,
}

/// The `file_check` files being watched (by `track::file`), and where their values go.
struct FileWatch {
    specs: Vec<crate::track::FileSpec>,
    commands: mpsc::Sender<Vec<crate::track::FileSpec>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) struct Engine {
    servers: HashMap<u64, Server>,
    next_id: u64,
    seq: u64,
    queue: BinaryHeap<std::cmp::Reverse<Due>>,
    in_flight: JoinSet<Done>,
    /// server, checker, due, started: to account for an attempt whose task failed.
    in_flight_ids: HashMap<tokio::task::Id, (u64, usize, Instant, Instant)>,
    limit: usize,
    res: Arc<Resources>,
    spread: RandomState,
    verdicts: mpsc::UnboundedSender<Verdict>,
    board: SharedBoard,
    commands: mpsc::UnboundedReceiver<Command>,
    virtual_servers: HashMap<String, VirtualServer>,
    files: Option<FileWatch>,
    observations_tx: mpsc::Sender<crate::track::Observation>,
    observations: mpsc::Receiver<crate::track::Observation>,
}

fn initial_status(plan: &ServerPlan, machine: &ServerMachine) -> ServerStatus {
    ServerStatus {
        key: plan.key.clone(),
        address: plan.address,
        weight: plan.weight,
        health: Health {
            up: machine.is_up(),
            weight: machine.weight(),
        },
        since: None,
        last_error: None,
        last_error_at: None,
        checks: plan
            .checks
            .iter()
            .zip(machine.checkers())
            .map(|(c, m)| CheckStatus {
                kind: c.kind,
                up: m.is_up(),
                failures: m.failures(),
                attempts: 0,
                last_error: None,
                last_error_at: None,
                last_duration: None,
            })
            .collect(),
    }
}

/// Hands the heap's free pages back to the kernel. Loading a large configuration peaks far above
/// what keeperd keeps (10,000 checked real servers: 78 MB at the peak, half of it freed at
/// once), and glibc keeps freed memory mapped; the checkers are installed right after a load
/// or reload, so this is where that peak ends.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; no pointer is passed.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many attempts may be in flight: each holds a socket or a child's pipes, so stay well
/// inside the file descriptor limit (raised to its hard limit first).
fn in_flight_limit() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 256;
    };
    let want = hard.min(1 << 20);
    let soft = if want > soft && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() {
        want
    } else {
        soft
    };
    let usable = soft.saturating_sub(256) / 2;
    usize::try_from(usable).unwrap_or(4096).clamp(16, 4096)
}

impl Engine {
    pub(super) fn new(
        verdicts: mpsc::UnboundedSender<Verdict>,
        board: SharedBoard,
        commands: mpsc::UnboundedReceiver<Command>,
        scripts: ScriptRunner,
    ) -> Engine {
        let (observations_tx, observations) = mpsc::channel(256);
        Engine {
            virtual_servers: HashMap::new(),
            files: None,
            observations_tx,
            observations,
            servers: HashMap::new(),
            next_id: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            in_flight: JoinSet::new(),
            in_flight_ids: HashMap::new(),
            limit: in_flight_limit(),
            res: Arc::new(Resources {
                regexes: Mutex::default(),
                tls: Mutex::default(),
                pinger: ping::Pinger::default(),
                scripts,
            }),
            spread: RandomState::new(),
            verdicts,
            board,
            commands,
        }
    }

    fn push(&mut self, server: u64, check: usize, at: Instant, scheduled: Instant) {
        self.seq += 1;
        self.queue.push(std::cmp::Reverse(Due {
            at,
            seq: self.seq,
            server,
            check,
            scheduled,
        }));
        if let Some(s) = self.servers.get_mut(&server)
            && let Some(d) = s.next_due.get_mut(check)
        {
            *d = Some(at);
        }
    }

    /// A uniform draw in [0, 1] per checker, random per process.
    fn spread_of(&self, key: &ServerKey, check: usize) -> f64 {
        let h = self.spread.hash_one((key, check));
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Installs `plan`, keeping the state of real servers (and checkers) whose plan did not
    /// change.
    async fn install(&mut self, plan: Plan, now: Instant) {
        self.res.prepare(&plan).await;
        let first = self.files.is_none() && self.servers.is_empty();
        let file_specs = file_specs(&plan);
        let file_values = read_files(&file_specs, first).await;
        let Plan {
            servers: server_plans,
            virtual_servers,
        } = plan;
        let mut old: HashMap<ServerKey, (u64, Server)> = self
            .servers
            .drain()
            .map(|(id, s)| (s.plan.key.clone(), (id, s)))
            .collect();
        let mut statuses = Vec::with_capacity(server_plans.len());
        let old_board = std::mem::take(&mut lock(&self.board).servers);
        let mut changed: Vec<u64> = Vec::new();
        let mut fresh: Vec<u64> = Vec::new();
        for (pos, sp) in server_plans.into_iter().enumerate() {
            match old.remove(&sp.key) {
                Some((id, mut s)) if *s.plan == sp => {
                    let status = old_board
                        .get(s.pos)
                        .cloned()
                        .unwrap_or_else(|| initial_status(&s.plan, &s.machine));
                    statuses.push(status);
                    s.pos = pos;
                    self.servers.insert(id, s);
                }
                previous => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let mut next_due = vec![None; sp.checks.len()];
                    let mut machine = match &previous {
                        // Changed: identical checkers keep their state and schedule; a changed
                        // one of the same kind starts from the old one's state (no flap).
                        Some((_, o)) => ServerMachine::new(
                            sp.checks
                                .iter()
                                .enumerate()
                                .map(|(i, c)| {
                                    let same = o.plan.checks.iter().position(|oc| oc == c);
                                    let kind =
                                        o.plan.checks.iter().position(|oc| oc.kind == c.kind);
                                    let old = |j: usize| o.machine.checkers().get(j);
                                    match (same.and_then(old), kind.and_then(old)) {
                                        (Some(m), _) => {
                                            next_due[i] = same
                                                .and_then(|j| o.next_due.get(j).copied())
                                                .flatten();
                                            m.clone()
                                        }
                                        (None, Some(m)) => {
                                            CheckerMachine::resume(c.timing, m.is_up())
                                        }
                                        (None, None) => CheckerMachine::new(c.timing, c.alpha),
                                    }
                                })
                                .collect(),
                            sp.weight,
                        ),
                        None => ServerMachine::new(
                            sp.checks
                                .iter()
                                .map(|c| CheckerMachine::new(c.timing, c.alpha))
                                .collect(),
                            sp.weight,
                        ),
                    };
                    // File checks take their file's value now: known before the first verdict.
                    let mut file_errors = Vec::new();
                    for (i, c) in sp.checks.iter().enumerate() {
                        if let Probe::File(f) = &c.probe
                            && let Some(&value) = file_values.get(&f.name)
                        {
                            let (up, delta) = file::state(value, f.weight, f.reverse);
                            machine.observe(i, now, up, delta);
                            if !up {
                                file_errors.push((i, file_error(f, value)));
                            }
                        }
                    }
                    let mut status = initial_status(&sp, &machine);
                    for (i, e) in file_errors {
                        status.last_error = Some(e.clone());
                        if let Some(c) = status.checks.get_mut(i) {
                            c.last_error = Some(e);
                        }
                    }
                    if let Some((_, o)) = &previous {
                        let was = Health {
                            up: o.machine.is_up(),
                            weight: o.machine.weight(),
                        };
                        if let Some(prev) = old_board.get(o.pos) {
                            status.since = prev.since;
                            status.last_error = prev.last_error.clone();
                            status.last_error_at = prev.last_error_at;
                        }
                        if was != status.health {
                            changed.push(id);
                        }
                    } else {
                        fresh.push(id);
                    }
                    statuses.push(status);
                    let dues: Vec<Option<Instant>> = machine
                        .checkers()
                        .iter()
                        .zip(&sp.checks)
                        .enumerate()
                        .map(|(check, (m, c))| {
                            if matches!(c.probe, Probe::File(_)) {
                                return None;
                            }
                            Some(match next_due.get(check).copied().flatten() {
                                Some(at) => at,
                                None => m.first_attempt(now, self.spread_of(&sp.key, check)),
                            })
                        })
                        .collect();
                    let notify_tail = previous.and_then(|(_, mut o)| o.notify_tail.take());
                    self.servers.insert(
                        id,
                        Server {
                            plan: Arc::new(sp),
                            machine,
                            pos,
                            next_due,
                            notify_tail,
                        },
                    );
                    for (check, at) in dues.into_iter().enumerate() {
                        if let Some(at) = at {
                            self.push(id, check, at, now);
                        }
                    }
                }
            }
        }
        lock(&self.board).servers = statuses;
        for id in fresh {
            self.publish(id, None, Publish::Initial);
        }
        for id in changed {
            self.publish(id, None, Publish::Change);
        }
        if !old.is_empty() {
            tracing::info!(
                removed = old.len(),
                "health checks of removed real servers stopped"
            );
        }
        self.install_quorums(virtual_servers);
        self.watch_files(file_specs, first).await;
        release_freed_memory();
    }

    /// Installs the virtual servers' quorums: kept ones keep their state and are judged again
    /// (new thresholds), new ones are evaluated as at start.
    fn install_quorums(&mut self, plans: Vec<VirtualServerPlan>) {
        let mut members: HashMap<&str, Vec<u64>> = HashMap::new();
        let mut ids: Vec<(&u64, &Server)> = self.servers.iter().collect();
        ids.sort_by_key(|(_, s)| s.pos);
        for (id, s) in ids {
            members
                .entry(s.plan.key.virtual_server.as_str())
                .or_default()
                .push(*id);
        }
        let mut members: HashMap<String, Vec<u64>> = members
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut old = std::mem::take(&mut self.virtual_servers);
        let mut board = Vec::with_capacity(plans.len());
        let mut notes = Vec::new();
        for (pos, p) in plans.into_iter().enumerate() {
            let m = members.remove(&p.name).unwrap_or_default();
            let weight = self.live_weight(&m);
            let (machine, tail, since, note) = match old.remove(&p.name) {
                Some(mut v) => {
                    v.machine
                        .reconfigure(p.quorum, p.hysteresis, p.sorry_server);
                    let before = v.machine.is_up();
                    let note = v.machine.update(weight);
                    let since = lock(&self.board).quorums.get(v.pos).and_then(|q| q.since);
                    let since = if v.machine.is_up() != before {
                        Some(SystemTime::now())
                    } else {
                        since
                    };
                    (v.machine, v.notify_tail.take(), since, note)
                }
                None => {
                    let mut machine = QuorumMachine::new(p.quorum, p.hysteresis, p.sorry_server);
                    let note = machine.start(weight);
                    (machine, None, None, note)
                }
            };
            board.push(QuorumStatus {
                virtual_server: p.name.clone(),
                up: machine.is_up().unwrap_or(false),
                weight,
                quorum: p.quorum,
                hysteresis: p.hysteresis,
                since,
            });
            notes.push((p.name.clone(), note, weight));
            self.virtual_servers.insert(
                p.name.clone(),
                VirtualServer {
                    plan: p,
                    machine,
                    members: m,
                    pos,
                    notify_tail: tail,
                },
            );
        }
        lock(&self.board).quorums = board;
        for (name, note, weight) in notes {
            if let Some(n) = note {
                self.quorum_notify(&name, n, weight);
            }
        }
    }

    /// The live weight of real servers `members`.
    fn live_weight(&self, members: &[u64]) -> u64 {
        super::quorum::live_weight(
            members
                .iter()
                .filter_map(|id| self.servers.get(id))
                .map(|s| (s.machine.is_up(), s.machine.weight(), s.plan.weight)),
        )
    }

    /// Judges the quorum of virtual server `name` again (a verdict of one of its real servers
    /// changed).
    fn update_quorum(&mut self, name: &str) {
        let Some(v) = self.virtual_servers.get(name) else {
            return;
        };
        let weight = self.live_weight(&v.members);
        let Some(v) = self.virtual_servers.get_mut(name) else {
            return;
        };
        let note = v.machine.update(weight);
        {
            let mut board = lock(&self.board);
            if let Some(q) = board.quorums.get_mut(v.pos) {
                q.weight = weight;
                q.up = v.machine.is_up().unwrap_or(false);
                if note.is_some() {
                    q.since = Some(SystemTime::now());
                }
            }
        }
        if let Some(n) = note {
            self.quorum_notify(name, n, weight);
        }
    }

    /// Logs a quorum transition and runs its script (after the virtual server's previous one).
    fn quorum_notify(&mut self, name: &str, note: QuorumNotify, weight: u64) {
        let Some(v) = self.virtual_servers.get_mut(name) else {
            return;
        };
        let (q, h) = (v.plan.quorum, v.plan.hysteresis);
        let script = match note {
            QuorumNotify::Up => {
                tracing::info!(
                    virtual_server = name,
                    weight,
                    quorum = q,
                    hysteresis = h,
                    "virtual server gained quorum"
                );
                v.plan.quorum_up.clone()
            }
            QuorumNotify::Down => {
                tracing::warn!(
                    virtual_server = name,
                    weight,
                    quorum = q,
                    hysteresis = h,
                    sorry_server = v.plan.sorry_server,
                    "virtual server lost quorum"
                );
                v.plan.quorum_down.clone()
            }
        };
        if let Some(script) = script {
            let prev = v.notify_tail.take();
            let label = format!("virtual_server {name}");
            v.notify_tail = Some(tokio::spawn(run_notify(
                prev,
                script,
                NOTIFY_TIMEOUT,
                label,
                self.res.clone(),
            )));
        }
    }

    /// Starts, updates or stops the watch of the `file_check` files.
    async fn watch_files(&mut self, specs: Vec<crate::track::FileSpec>, first: bool) {
        if specs.is_empty() {
            self.files = None;
            return;
        }
        match &mut self.files {
            Some(w) if w.specs == specs => {}
            Some(w) => {
                w.specs = specs.clone();
                let _ = w.commands.send(specs).await;
            }
            None => {
                let (commands, rx) = mpsc::channel(4);
                let status = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
                let task = tokio::spawn(crate::track::file::file_task(
                    specs.clone(),
                    first,
                    rx,
                    self.observations_tx.clone(),
                    status,
                ));
                self.files = Some(FileWatch {
                    specs,
                    commands,
                    task,
                });
            }
        }
    }

    /// A tracked file's value changed: every `file_check` on it follows.
    fn file_value(&mut self, name: &str, value: i64) {
        let now = Instant::now();
        let mut hits: Vec<(u64, usize, bool, i64, String)> = Vec::new();
        for (&id, s) in &self.servers {
            for (i, c) in s.plan.checks.iter().enumerate() {
                if let Probe::File(f) = &c.probe
                    && f.name == name
                {
                    let (up, delta) = file::state(value, f.weight, f.reverse);
                    hits.push((id, i, up, delta, file_error(f, value)));
                }
            }
        }
        for (id, i, up, delta, error) in hits {
            let Some(s) = self.servers.get_mut(&id) else {
                continue;
            };
            let Some(step) = s.machine.observe(i, now, up, delta) else {
                continue;
            };
            let pos = s.pos;
            let vs = s.plan.key.virtual_server.clone();
            {
                let mut board = lock(&self.board);
                if let Some(st) = board.servers.get_mut(pos) {
                    if !up {
                        st.last_error = Some(error.clone());
                        st.last_error_at = Some(SystemTime::now());
                    }
                    if let Some(c) = st.checks.get_mut(i) {
                        c.up = up;
                        c.attempts += 1;
                        if !up {
                            c.last_error = Some(error);
                            c.last_error_at = st.last_error_at;
                        }
                    }
                }
            }
            if step.verdict_changed || step.notify.is_some() {
                let publish = if step.verdict_changed {
                    Publish::Change
                } else {
                    Publish::Nothing
                };
                self.publish(id, step.notify, publish);
                if step.verdict_changed {
                    self.update_quorum(&vs);
                }
            }
        }
    }

    /// Sends the verdict of server `id` and runs its notify script, if any.
    fn publish(&mut self, id: u64, notify: Option<Notify>, publish: Publish) {
        let verdict = publish != Publish::Nothing;
        let Some(s) = self.servers.get_mut(&id) else {
            return;
        };
        let at = SystemTime::now();
        let health = Health {
            up: s.machine.is_up(),
            weight: s.machine.weight(),
        };
        let error = {
            let mut board = lock(&self.board);
            let Some(st) = board.servers.get_mut(s.pos) else {
                return;
            };
            st.health = health;
            if publish == Publish::Change {
                st.since = Some(at);
            }
            if health.up {
                None
            } else {
                st.last_error.clone()
            }
        };
        if verdict {
            let v = Verdict {
                key: s.plan.key.clone(),
                address: s.plan.address,
                up: health.up,
                weight: health.weight,
                error,
                at,
            };
            if publish == Publish::Initial {
                tracing::debug!(virtual_server = %v.key.virtual_server, real_server = %v.key.real_server, up = v.up, "real server checked from now on");
            } else if v.up {
                tracing::info!(virtual_server = %v.key.virtual_server, real_server = %v.key.real_server, address = %v.address, weight = ?v.weight, "real server UP");
            } else {
                tracing::warn!(virtual_server = %v.key.virtual_server, real_server = %v.key.real_server, address = %v.address, error = v.error.as_deref().unwrap_or(""), "real server DOWN");
            }
            let _ = self.verdicts.send(v);
        }
        let script = match notify {
            Some(Notify::Up) => s.plan.notify_up.clone(),
            Some(Notify::Down) => s.plan.notify_down.clone(),
            None => None,
        };
        if let Some(script) = script {
            let prev = s.notify_tail.take();
            let key = s.plan.key.clone();
            s.notify_tail = Some(tokio::spawn(run_notify(
                prev,
                script,
                NOTIFY_TIMEOUT,
                key.to_string(),
                self.res.clone(),
            )));
        }
    }

    /// Starts due attempts, up to the limit and one batch; true if more are due now.
    fn start_due(&mut self, now: Instant) -> bool {
        let mut started = 0;
        while self.in_flight.len() < self.limit {
            let Some(std::cmp::Reverse(top)) = self.queue.peek().copied() else {
                return false;
            };
            if top.at > now {
                return false;
            }
            if started == START_BATCH {
                return true;
            }
            self.queue.pop();
            let Some(s) = self.servers.get_mut(&top.server) else {
                continue;
            };
            // A stale entry (rescheduled at reload) is not the checker's current due time.
            if s.next_due.get(top.check).copied().flatten() != Some(top.at) {
                continue;
            }
            s.next_due[top.check] = None;
            let lateness = now.saturating_duration_since(top.at);
            let interval = top.at.saturating_duration_since(top.scheduled);
            {
                let mut board = lock(&self.board);
                board.stats.attempts += 1;
                if lateness * 10 > interval && lateness > Duration::from_millis(1) {
                    board.stats.late_starts += 1;
                }
                let us = u64::try_from(lateness.as_micros()).unwrap_or(u64::MAX);
                board.stats.max_lateness_us = board.stats.max_lateness_us.max(us);
                let bucket = [1, 4, 16, 64, 256, 1024]
                    .iter()
                    .position(|&ms| lateness < Duration::from_millis(ms))
                    .unwrap_or(6);
                board.stats.lateness_histogram[bucket] += 1;
                if let Some(c) = board
                    .servers
                    .get_mut(s.pos)
                    .and_then(|st| st.checks.get_mut(top.check))
                {
                    c.attempts += 1;
                }
            }
            let plan = s.plan.clone();
            let res = self.res.clone();
            let (server, check, due) = (top.server, top.check, top.at);
            let handle = self.in_flight.spawn(async move {
                let started = Instant::now();
                let outcome = attempt(plan, check, res).await;
                Done {
                    server,
                    check,
                    due,
                    started,
                    finished: Instant::now(),
                    outcome,
                }
            });
            self.in_flight_ids
                .insert(handle.id(), (server, check, due, now));
            started += 1;
        }
        false
    }

    fn finish(&mut self, done: Done) {
        let Done {
            server,
            check,
            due,
            started,
            finished,
            outcome,
        } = done;
        let Some(s) = self.servers.get_mut(&server) else {
            return;
        };
        let Some(step) = s.machine.on_result(
            check,
            Attempt {
                due,
                started,
                finished,
            },
            &outcome,
        ) else {
            return;
        };
        let pos = s.pos;
        let vs = s.plan.key.virtual_server.clone();
        let kind = s.plan.checks.get(check).map(|c| c.kind);
        let checker = s.machine.checkers().get(check).cloned();
        {
            let mut board = lock(&self.board);
            if let Some(st) = board.servers.get_mut(pos) {
                if let Outcome::Fail { error } = &outcome {
                    let error = match kind {
                        Some(k) => format!("{k}: {error}"),
                        None => error.clone(),
                    };
                    st.last_error = Some(error.clone());
                    st.last_error_at = Some(SystemTime::now());
                    if let Some(c) = st.checks.get_mut(check) {
                        c.last_error = Some(error);
                        c.last_error_at = st.last_error_at;
                    }
                }
                if let (Some(c), Some(m)) = (st.checks.get_mut(check), &checker) {
                    c.up = m.is_up();
                    c.failures = m.failures();
                    c.last_duration = Some(finished.saturating_duration_since(started));
                }
            }
        }
        if step.checker.became.is_some() || step.checker.confirmed_down {
            tracing::debug!(
                real_server = %s.plan.key,
                checker = kind.map(Kind::name).unwrap_or(""),
                up = checker.as_ref().is_some_and(CheckerMachine::is_up),
                "checker changed"
            );
        }
        let next = step.checker.next_attempt;
        self.push(server, check, next, finished);
        if step.verdict_changed || step.notify.is_some() {
            let publish = if step.verdict_changed {
                Publish::Change
            } else {
                Publish::Nothing
            };
            self.publish(server, step.notify, publish);
            if step.verdict_changed {
                self.update_quorum(&vs);
            }
        }
    }

    /// Stops every check; with `omega`, runs `notify_down` for the servers still UP.
    async fn shutdown(&mut self) {
        self.in_flight.shutdown().await;
        let mut omega = JoinSet::new();
        for s in self.servers.values_mut() {
            if s.plan.omega
                && s.machine.is_up()
                && let Some(script) = s.plan.notify_down.clone()
            {
                let prev = s.notify_tail.take();
                omega.spawn(run_notify(
                    prev,
                    script,
                    OMEGA_TIMEOUT,
                    s.plan.key.to_string(),
                    self.res.clone(),
                ));
            }
        }
        // keepalived runs every virtual server's quorum_down at a stop under omega.
        for (name, v) in &mut self.virtual_servers {
            if v.plan.omega
                && let Some(script) = v.plan.quorum_down.clone()
            {
                let prev = v.notify_tail.take();
                let label = format!("virtual_server {name}");
                omega.spawn(run_notify(
                    prev,
                    script,
                    OMEGA_TIMEOUT,
                    label,
                    self.res.clone(),
                ));
            }
        }
        // Each waits for the notify before it (bounded by its own timeout), then runs its own.
        let bound = NOTIFY_TIMEOUT + OMEGA_TIMEOUT + crate::launcher::TERM_GRACE * 2;
        let _ =
            tokio::time::timeout(bound, async { while omega.join_next().await.is_some() {} }).await;
    }

    pub(super) async fn run(mut self, plan: Plan) {
        self.install(plan, Instant::now()).await;
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        loop {
            let now = Instant::now();
            let more = self.start_due(now);
            {
                let mut board = lock(&self.board);
                board.stats.in_flight = self.in_flight.len();
                board.stats.limit = self.limit;
            }
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            let wake = if self.in_flight.len() < self.limit {
                self.queue.peek().map(|d| d.0.at)
            } else {
                None
            };
            if let Some(at) = wake {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
            }
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Reload(plan)) => self.install(plan, Instant::now()).await,
                    Some(Command::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    // The handle was dropped: stop, without omega.
                    None => {
                        self.in_flight.shutdown().await;
                        return;
                    }
                },
                Some(joined) = self.in_flight.join_next_with_id(), if !self.in_flight.is_empty() => {
                    match joined {
                        Ok((id, done)) => {
                            self.in_flight_ids.remove(&id);
                            self.finish(done);
                        }
                        Err(e) => {
                            // The attempt's task failed (a bug): count it as a failed attempt
                            // so that the checker keeps its schedule.
                            if let Some((server, check, due, started)) = self.in_flight_ids.remove(&e.id()) {
                                self.finish(Done {
                                    server,
                                    check,
                                    due,
                                    started,
                                    finished: Instant::now(),
                                    outcome: Outcome::fail(format!("check task failed: {e}")),
                                });
                            }
                        }
                    }
                }
                Some(seen) = self.observations.recv() => {
                    if let crate::track::Observation::File { name, value, .. } = seen {
                        self.file_value(&name, value);
                    }
                }
                _ = &mut sleep, if wake.is_some() => {}
            }
        }
    }
}

async fn run_notify(
    prev: Option<tokio::task::JoinHandle<()>>,
    script: Script,
    timeout: Duration,
    of: String,
    res: Arc<Resources>,
) {
    if let Some(p) = prev {
        let _ = p.await;
    }
    match run_script(&script, timeout, &res).await {
        ScriptEnd::Exited(0) => {
            tracing::debug!(of = %of, script = %script, "notify script done")
        }
        end => tracing::warn!(of = %of, script = %script, "notify script {end}"),
    }
}

/// The distinct tracked files the `file_check`s of `plan` read, by name.
fn file_specs(plan: &Plan) -> Vec<crate::track::FileSpec> {
    let mut specs: Vec<crate::track::FileSpec> = Vec::new();
    for s in &plan.servers {
        for c in &s.checks {
            if let Probe::File(f) = &c.probe
                && !specs.iter().any(|x| x.name == f.name)
            {
                specs.push(crate::track::FileSpec {
                    name: f.name.clone(),
                    path: f.path.clone(),
                    init: f.init,
                });
            }
        }
    }
    specs
}

/// Reads the files of `specs` (off the runtime's threads). At the first start a file that
/// `init_file` is about to write reads as what it will hold.
async fn read_files(specs: &[crate::track::FileSpec], first: bool) -> HashMap<String, i64> {
    if specs.is_empty() {
        return HashMap::new();
    }
    let specs = specs.to_vec();
    tokio::task::spawn_blocking(move || {
        specs
            .into_iter()
            .filter_map(|s| {
                let value = match s.init {
                    Some(init) if first && (init.overwrite || !s.path.exists()) => Some(init.value),
                    _ => file::read_value(&s.path),
                };
                value.map(|v| (s.name, v))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

fn file_error(f: &super::plan::File, value: i64) -> String {
    format!(
        "file_check: {} ({}) holds {value}",
        f.name,
        f.path.display()
    )
}

/// The board's snapshot.
pub(super) fn snapshot(board: &SharedBoard) -> (Vec<ServerStatus>, EngineStats) {
    let b = lock(board);
    (b.servers.clone(), b.stats)
}

/// The virtual servers' quorums.
pub(super) fn quorums(board: &SharedBoard) -> Vec<QuorumStatus> {
    lock(board).quorums.clone()
}

pub(super) fn new_board() -> SharedBoard {
    Arc::new(Mutex::new(Board::default()))
}
