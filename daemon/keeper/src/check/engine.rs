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
use super::plan::{Kind, Plan, Probe, ServerKey, ServerPlan, Tls};
use super::script::{self, Script, ScriptEnd};
use super::{http, tcp, tls};

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

/// Compiled regexes and TLS configurations, built once per distinct value.
#[derive(Default)]
struct Resources {
    regexes: Mutex<HashMap<String, Result<Arc<regex::bytes::Regex>, String>>>,
    tls: Mutex<HashMap<Tls, Result<Arc<rustls::ClientConfig>, String>>>,
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
async fn attempt(plan: Arc<ServerPlan>, check: usize, res: Arc<Resources>) -> Outcome {
    let Some(c) = plan.checks.get(check) else {
        return Outcome::fail("no such checker");
    };
    match &c.probe {
        Probe::Tcp(connect) => match tcp::check(connect).await {
            Ok(()) => Outcome::pass(),
            Err(e) => Outcome::fail(e),
        },
        Probe::Http(h) => match http::check(h, &*res).await {
            Ok(()) => Outcome::pass(),
            Err(e) => Outcome::fail(e),
        },
        Probe::Misc(m) => match script::run(&m.script, m.timeout).await {
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
    ) -> Engine {
        Engine {
            servers: HashMap::new(),
            next_id: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            in_flight: JoinSet::new(),
            in_flight_ids: HashMap::new(),
            limit: in_flight_limit(),
            res: Arc::new(Resources::default()),
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
        let mut old: HashMap<ServerKey, (u64, Server)> = self
            .servers
            .drain()
            .map(|(id, s)| (s.plan.key.clone(), (id, s)))
            .collect();
        let mut statuses = Vec::with_capacity(plan.servers.len());
        let old_board = std::mem::take(&mut lock(&self.board).servers);
        let mut changed: Vec<u64> = Vec::new();
        let mut fresh: Vec<u64> = Vec::new();
        for (pos, sp) in plan.servers.into_iter().enumerate() {
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
                    let machine = match &previous {
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
                        ),
                        None => ServerMachine::new(
                            sp.checks
                                .iter()
                                .map(|c| CheckerMachine::new(c.timing, c.alpha))
                                .collect(),
                        ),
                    };
                    let mut status = initial_status(&sp, &machine);
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
                    let dues: Vec<Instant> = machine
                        .checkers()
                        .iter()
                        .enumerate()
                        .map(|(check, m)| match next_due.get(check).copied().flatten() {
                            Some(at) => at,
                            None => m.first_attempt(now, self.spread_of(&sp.key, check)),
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
                        self.push(id, check, at, now);
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
            s.notify_tail = Some(tokio::spawn(run_notify(prev, script, NOTIFY_TIMEOUT, key)));
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
                omega.spawn(run_notify(prev, script, OMEGA_TIMEOUT, s.plan.key.clone()));
            }
        }
        // Each waits for the notify before it (bounded by its own timeout), then runs its own.
        let bound = NOTIFY_TIMEOUT + OMEGA_TIMEOUT + script::TERM_GRACE * 2;
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
                _ = &mut sleep, if wake.is_some() => {}
            }
        }
    }
}

async fn run_notify(
    prev: Option<tokio::task::JoinHandle<()>>,
    script: Script,
    timeout: Duration,
    key: ServerKey,
) {
    if let Some(p) = prev {
        let _ = p.await;
    }
    match script::run(&script, timeout).await {
        ScriptEnd::Exited(0) => {
            tracing::debug!(real_server = %key, script = %script, "notify script done")
        }
        end => tracing::warn!(real_server = %key, script = %script, "notify script {end}"),
    }
}

/// The board's snapshot.
pub(super) fn snapshot(board: &SharedBoard) -> (Vec<ServerStatus>, EngineStats) {
    let b = lock(board);
    (b.servers.clone(), b.stats)
}

pub(super) fn new_board() -> SharedBoard {
    Arc::new(Mutex::new(Board::default()))
}
