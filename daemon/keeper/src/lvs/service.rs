//! The IPVS side of keeperd: a task that owns the netlink connection and keeps the kernel's
//! table equal to the desired one (configuration + health), and the sync daemon in step with
//! VRRP.
//!
//! It runs beside the VRRP event loop, never inside it: the loop only sends it messages, so
//! programming thousands of entries never delays an advert. Messages that arrive while it
//! works are coalesced: one reconcile covers a reload and every verdict received meanwhile.
//!
//! The kernel's table is dumped once at start (and again every [`RESYNC`], or after a refusal
//! or error), then modelled: each change is planned against the model, so a reload that
//! changes one entry sends one request, whatever the table's size.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use keeper_ipvs::reconcile::{self, Op, OwnershipPolicy};
use keeper_ipvs::{
    Error as IpvsError, Info, IpvsClient, Request, ServiceKey, SyncDaemon, Table, Timeouts,
};
use keeper_vrrp::State;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::desired::{self, QuorumChange};
use super::health::{HealthMap, HealthUpdate, RealServerHealth, RealServerId};
use super::owned::OwnedFile;
use super::plan::{self, LvsPlan, SharedPlanCache};
use super::sync_daemon;
use crate::config::schema::{Config, FlushOnStop, LvsTimeouts};

/// How often the kernel's table is dumped again to correct changes made behind keeperd's back
/// (an entry of a keeperd service deleted by hand comes back within this time).
pub const RESYNC: Duration = Duration::from_secs(60);
/// Operations per call to the client (each call pipelines 256 per `sendmsg`); the task yields
/// between calls.
const CHUNK: usize = 1024;
/// Operations listed one by one in the log at info level; larger changes are summarised.
const LOG_EACH: usize = 16;

enum Msg {
    Config(Box<Config>, SharedPlanCache),
    Health(HealthUpdate),
    Vrrp(BTreeMap<String, State>),
    Shutdown(oneshot::Sender<()>),
}

/// The handle of the IPVS task (cloneable: the event loop and the stop hook both hold one).
#[derive(Clone)]
pub struct Lvs {
    tx: mpsc::UnboundedSender<Msg>,
}

/// Resolves once the IPVS task has made its first pass over the kernel's table (programmed it,
/// or found IPVS unusable), or when the task is gone.
pub struct FirstPass(oneshot::Receiver<()>);

impl FirstPass {
    pub async fn done(self) {
        let _ = self.0.await;
    }
}

/// Where health verdicts go (cloneable; for the health checkers).
#[derive(Clone)]
pub struct HealthSender(mpsc::UnboundedSender<Msg>);

impl HealthSender {
    /// Reports a verdict; false once keeperd is stopping.
    pub fn send(&self, id: RealServerId, health: RealServerHealth) -> bool {
        self.0
            .send(Msg::Health(HealthUpdate { id, health }))
            .is_ok()
    }
}

impl Lvs {
    /// Starts the task with the configuration and the VRRP instances' states. Never fails:
    /// IPVS problems are logged and VRRP goes on.
    ///
    /// Call it before dropping privileges: the `expire_quiescent_template` sysctl needs root,
    /// and is written here when IPVS is already loaded (else the task tries later).
    ///
    /// The [`FirstPass`] tells when the table is first programmed: the health checkers wait for
    /// it (keepalived's checker also programs IPVS before it checks), so that installing
    /// thousands of checkers on the same thread does not delay the table at start.
    pub fn start(
        config: &Config,
        plans: SharedPlanCache,
        vrrp: BTreeMap<String, State>,
    ) -> (Lvs, FirstPass) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (first_pass, first_pass_rx) = oneshot::channel();
        let owned_file = OwnedFile::for_socket(&config.global.control_socket);
        if config.global.expire_quiescent_template
            && plan::plan_shared(config, &plans).0.uses_ipvs(config)
            && std::path::Path::new(EXPIRE_QUIESCENT_TEMPLATE).exists()
        {
            expire_quiescent_template();
        }
        let actor = Actor::new(rx, owned_file, vrrp);
        let first = Box::new(config.clone());
        tokio::spawn(actor.run(first, plans, first_pass));
        (Lvs { tx }, FirstPass(first_pass_rx))
    }

    /// A new configuration (SIGHUP): only the differences reach the kernel.
    /// `plans`: the cache the configuration was checked with (see [`plan::plan_shared`]).
    pub fn reload(&self, config: &Config, plans: SharedPlanCache) {
        let _ = self.tx.send(Msg::Config(Box::new(config.clone()), plans));
    }

    /// The states of the VRRP instances (sent after every transition).
    pub fn vrrp_states(&self, states: BTreeMap<String, State>) {
        let _ = self.tx.send(Msg::Vrrp(states));
    }

    pub fn health_sender(&self) -> HealthSender {
        HealthSender(self.tx.clone())
    }

    /// A checker's verdict on one real server.
    pub fn health(&self, id: RealServerId, health: RealServerHealth) {
        let _ = self.tx.send(Msg::Health(HealthUpdate { id, health }));
    }

    /// Stops the sync daemons keeperd runs and applies `lvs_flush_on_stop`; returns when done
    /// (the caller bounds the wait: the stop deadline).
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

const EXPIRE_QUIESCENT_TEMPLATE: &str = "/proc/sys/net/ipv4/vs/expire_quiescent_template";

/// Sets the sysctl to 1 unless it is already; logs the outcome.
fn expire_quiescent_template() {
    match std::fs::read_to_string(EXPIRE_QUIESCENT_TEMPLATE) {
        Ok(v) if v.trim() == "1" => {}
        _ => match std::fs::write(EXPIRE_QUIESCENT_TEMPLATE, "1\n") {
            Ok(()) => tracing::info!(
                "ipvs: set {EXPIRE_QUIESCENT_TEMPLATE} = 1 (expire_quiescent_template)"
            ),
            Err(e) => tracing::warn!(
                "ipvs: cannot set {EXPIRE_QUIESCENT_TEMPLATE} (expire_quiescent_template): {e}; persistent clients may stay on a real server with weight 0"
            ),
        },
    }
}

/// What `keeperctl ipvs` shows: the kernel's table with counters, and the sync daemons.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IpvsView {
    pub info: Info,
    pub table: Table,
    #[serde(default)]
    pub daemons: Vec<SyncDaemon>,
}

/// Reads the kernel's table on a connection of its own (a listing never waits for, or
/// delays, a reconcile).
pub async fn read_kernel() -> Result<IpvsView, String> {
    async {
        let mut c = IpvsClient::connect().await?;
        Ok::<_, IpvsError>(IpvsView {
            info: c.info().await?,
            table: c.table().await?,
            daemons: c.daemons().await?,
        })
    }
    .await
    .map_err(|e| e.to_string())
}

/// What a batch of messages asks for.
#[derive(Default)]
struct Work {
    table: bool,
    daemons: bool,
    reconnect: bool,
    shutdown: Option<oneshot::Sender<()>>,
}

struct Actor {
    rx: mpsc::UnboundedReceiver<Msg>,
    global: crate::config::schema::Global,
    plan: LvsPlan,
    uses_ipvs: bool,
    client: Option<IpvsClient>,
    /// The kernel's table as keeperd believes it is; `None`: dump it first.
    kernel: Option<Table>,
    /// Running sync daemons as believed; `None`: dump first.
    daemons: Option<Vec<SyncDaemon>>,
    /// Whether keeperd manages the sync daemons (it had a sync configuration).
    manages_daemons: bool,
    owned: BTreeSet<ServiceKey>,
    owned_file: OwnedFile,
    health: HealthMap,
    quorum: BTreeMap<String, bool>,
    vrrp: BTreeMap<String, State>,
    /// `lvs_flush`: the first reconcile deletes services keeperd does not own.
    flush_foreign: bool,
    timeouts_set: Option<LvsTimeouts>,
    /// Refusals logged by the previous attempt, so a refusal repeated on every retry is logged
    /// at error level once.
    last_refusals: BTreeSet<String>,
}

impl Actor {
    fn new(
        rx: mpsc::UnboundedReceiver<Msg>,
        owned_file: OwnedFile,
        vrrp: BTreeMap<String, State>,
    ) -> Actor {
        let owned = owned_file.load();
        Actor {
            rx,
            global: Default::default(),
            plan: LvsPlan::default(),
            uses_ipvs: false,
            client: None,
            kernel: None,
            daemons: None,
            manages_daemons: false,
            owned,
            owned_file,
            health: HealthMap::new(),
            quorum: BTreeMap::new(),
            vrrp,
            flush_foreign: false,
            timeouts_set: None,
            last_refusals: BTreeSet::new(),
        }
    }

    async fn run(
        mut self,
        first: Box<Config>,
        plans: SharedPlanCache,
        first_pass: oneshot::Sender<()>,
    ) {
        self.flush_foreign = first.global.lvs_flush;
        let mut work = Work::default();
        self.take(Msg::Config(first, plans), &mut work);
        let mut first_pass = Some(first_pass);
        let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(done) = work.shutdown.take() {
                self.shutdown().await;
                let _ = done.send(());
                return;
            }
            self.perform(&mut work).await;
            if let Some(done) = first_pass.take() {
                let _ = done.send(());
            }
            work = Work::default();
            tokio::select! {
                m = self.rx.recv() => match m {
                    Some(m) => self.take(m, &mut work),
                    None => return,
                },
                _ = resync.tick() => {
                    if self.client.is_some() {
                        self.kernel = None;
                        self.daemons = None;
                        work.table = true;
                        work.daemons = true;
                    }
                }
            }
            while let Ok(m) = self.rx.try_recv() {
                self.take(m, &mut work);
            }
        }
    }

    fn take(&mut self, msg: Msg, work: &mut Work) {
        match msg {
            Msg::Config(cfg, plans) => {
                let (plan, notes) = plan::plan_shared(&cfg, &plans);
                // Validation refused errors before; a note here is a bug, but never fatal.
                for n in notes.iter().filter(|n| n.error) {
                    tracing::error!("{}: {}", crate::config::display_path(&n.path), n.message);
                }
                self.uses_ipvs = plan.uses_ipvs(&cfg);
                // Verdicts of real servers that left the configuration are forgotten: one
                // added back later under the same name starts afresh.
                // (A set, not a search of the plan per verdict: 10,000 verdicts x 1,000
                // virtual servers took 30 ms of each reload. None to forget at start.)
                if !self.health.is_empty() {
                    let configured: std::collections::HashSet<(&str, &str)> = plan
                        .virtual_servers
                        .iter()
                        .flat_map(|v| {
                            v.real_servers
                                .iter()
                                .map(|r| (v.name.as_str(), r.name.as_str()))
                        })
                        .collect();
                    self.health.retain(|id, _| {
                        configured.contains(&(id.virtual_server.as_str(), id.real_server.as_str()))
                    });
                }
                self.plan = plan;
                self.global = cfg.global;
                work.table = true;
                work.daemons = true;
                work.reconnect = true;
            }
            Msg::Health(u) => {
                if self.health.get(&u.id) != Some(&u.health) {
                    tracing::debug!(real_server = %u.id, up = u.health.up, weight = ?u.health.weight, "health verdict");
                    self.health.insert(u.id, u.health);
                    work.table = true;
                }
            }
            Msg::Vrrp(states) => {
                if states != self.vrrp {
                    self.vrrp = states;
                    work.daemons = true;
                }
            }
            Msg::Shutdown(done) => work.shutdown = Some(done),
        }
    }

    async fn perform(&mut self, work: &mut Work) {
        if !work.table && !work.daemons {
            return;
        }
        if self.client.is_none() {
            if !(work.reconnect && (self.uses_ipvs || self.manages_daemons)) {
                return;
            }
            self.connect().await;
        }
        if work.reconnect {
            self.kernel_settings().await;
        }
        if work.table {
            self.reconcile_table().await;
        }
        if work.daemons {
            self.reconcile_daemons().await;
        }
    }

    async fn connect(&mut self) {
        match IpvsClient::connect().await {
            Ok(c) => {
                self.client = Some(c);
                self.kernel = None;
                self.daemons = None;
            }
            Err(e) => self.unavailable(&e),
        }
    }

    /// IPVS cannot be used at all: one clear error; VRRP goes on. Retried on reload.
    fn unavailable(&mut self, e: &IpvsError) {
        self.client = None;
        tracing::error!(
            "{e}. Virtual servers not programmed: {}; VRRP keeps running. keeperd tries again on reload (SIGHUP).",
            self.plan.virtual_servers.len()
        );
    }

    /// Errors that leave the table state unknown drop the model (dumped again next time);
    /// permission and availability problems drop the connection.
    fn failed(&mut self, during: &str, e: IpvsError) {
        match e {
            IpvsError::PermissionDenied { .. } | IpvsError::Unavailable => self.unavailable(&e),
            IpvsError::Io(_) => {
                tracing::error!("ipvs: {during}: {e}; reconnecting on the next change");
                self.client = None;
            }
            e => tracing::error!("ipvs: {during}: {e}"),
        }
        self.kernel = None;
        self.daemons = None;
    }

    /// Protocol timeouts and the quiescent-template sysctl, on start and reload.
    async fn kernel_settings(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let wanted = self.global.lvs_timeouts.clone();
        if let Some(t) = &wanted
            && self.timeouts_set.as_ref() != Some(t)
        {
            let secs = |d: Option<crate::config::Secs>| {
                d.map(|d| u32::try_from(d.get().as_secs()).unwrap_or(u32::MAX))
                    .filter(|s| *s > 0)
            };
            let req = Request::SetConfig(Timeouts {
                tcp: secs(t.tcp),
                tcp_fin: secs(t.tcpfin),
                udp: secs(t.udp),
            });
            match client.execute(&req).await {
                Ok(()) => {
                    tracing::info!("ipvs: {req}");
                    self.timeouts_set = wanted;
                }
                Err(e) => return self.failed("setting lvs_timeouts", e),
            }
        }
        if self.global.expire_quiescent_template && self.uses_ipvs {
            expire_quiescent_template();
        }
    }

    async fn reconcile_table(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        if self.kernel.is_none() {
            match client.table().await {
                Ok(t) => {
                    let (s, d) = t.counts();
                    tracing::debug!(services = s, destinations = d, "ipvs: kernel table read");
                    self.kernel = Some(t);
                }
                Err(e) => return self.failed("reading the kernel's table", e),
            }
        }
        let (want, changes) = desired::build(&self.plan, &self.health, &mut self.quorum);
        for c in &changes {
            log_quorum(c);
        }
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let policy = OwnershipPolicy {
            owned: self.owned.clone(),
            remove_unowned_services: self.flush_foreign,
            ..OwnershipPolicy::default()
        };
        let ops = reconcile::plan(&want.table, kernel, &policy);
        self.flush_foreign = false;
        let mut refused = false;
        if !ops.is_empty() {
            let started = Instant::now();
            let (outcome, refusals) = apply(client, &ops).await;
            let elapsed = started.elapsed();
            log_ops(
                &ops,
                &refusals,
                &want.origin,
                elapsed,
                &mut self.last_refusals,
            );
            refused = !refusals.is_empty();
            match outcome {
                Ok(()) => {
                    reconcile::apply(kernel, &ops);
                }
                Err(e) => {
                    // Some of the operations may have been applied: the model is unknown.
                    let owned: BTreeSet<ServiceKey> = self
                        .owned
                        .iter()
                        .chain(want.origin.keys())
                        .copied()
                        .collect();
                    self.record_owned(owned);
                    return self.failed("applying changes", e);
                }
            }
        } else {
            self.last_refusals.clear();
        }
        // Owned: the configured services, and those owned before that are still there.
        let owned: BTreeSet<ServiceKey> = self
            .owned
            .iter()
            .filter(|k| kernel.services.contains_key(k))
            .chain(want.origin.keys())
            .copied()
            .collect();
        if refused {
            // The model assumed every operation succeeded: read the truth next time.
            self.kernel = None;
        }
        self.record_owned(owned);
    }

    fn record_owned(&mut self, owned: BTreeSet<ServiceKey>) {
        if owned != self.owned {
            self.owned_file.store(&owned);
            self.owned = owned;
        }
    }

    async fn reconcile_daemons(&mut self) {
        let wanted = match &self.plan.sync {
            Some(p) => {
                let state = p.instance.as_ref().and_then(|i| self.vrrp.get(i)).copied();
                sync_daemon::wanted(p, state)
            }
            // A sync configuration removed by reload: stop what keeperd started.
            None if self.manages_daemons => Vec::new(),
            None => return,
        };
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let running = match self.daemons.take() {
            Some(d) => d,
            None => match client.daemons().await {
                Ok(d) => d,
                Err(e) => return self.failed("reading the sync daemons", e),
            },
        };
        let requests = sync_daemon::requests(&wanted, &running);
        let mut ok = true;
        for r in &requests {
            match client.execute(r).await {
                Ok(()) => tracing::info!("ipvs: {r}"),
                Err(e) => {
                    tracing::error!("ipvs: sync daemon: {e}");
                    ok = false;
                }
            }
        }
        self.daemons = ok.then(|| sync_daemon::after(&running, &requests));
        self.manages_daemons = self.plan.sync.is_some();
    }

    async fn shutdown(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        if self.manages_daemons {
            let running: Vec<SyncDaemon> = client.daemons().await.unwrap_or_default();
            for r in sync_daemon::requests(&[], &running) {
                match client.execute(&r).await {
                    Ok(()) => tracing::info!("ipvs: {r}"),
                    Err(e) => tracing::warn!("ipvs: stopping the sync daemon: {e}"),
                }
            }
        }
        match self.global.lvs_flush_on_stop {
            FlushOnStop::No => {
                tracing::info!(
                    "ipvs: the table stays as it is (lvs_flush_on_stop is off): a restarted keeperd adopts it"
                );
            }
            FlushOnStop::All => match client.execute(&Request::Flush).await {
                Ok(()) => {
                    tracing::info!("ipvs: table flushed (lvs_flush_on_stop)");
                    self.record_owned(BTreeSet::new());
                }
                Err(e) => tracing::error!("ipvs: flushing the table: {e}"),
            },
            FlushOnStop::Vs => {
                let ops: Vec<Op> = self.owned.iter().map(|k| Op::DelService(*k)).collect();
                let (outcome, refusals) = apply(client, &ops).await;
                // A service already gone is fine.
                let real: Vec<_> = refusals
                    .iter()
                    .filter(|r| r.errno != keeper_ipvs::error::libc_errno::ESRCH)
                    .collect();
                for r in &real {
                    tracing::error!("ipvs: {r}");
                }
                if outcome.is_ok() && real.is_empty() {
                    tracing::info!(
                        services = ops.len(),
                        "ipvs: keeperd's services deleted (lvs_flush_on_stop VS)"
                    );
                    self.record_owned(BTreeSet::new());
                }
            }
        }
    }
}

/// Applies operations in chunks, yielding between them. Returns the first error that is not a
/// refusal (the rest is then not attempted) and every refusal.
async fn apply(
    client: &mut IpvsClient,
    ops: &[Op],
) -> (Result<(), IpvsError>, Vec<keeper_ipvs::Rejection>) {
    let mut refusals = Vec::new();
    for (n, chunk) in ops.chunks(CHUNK).enumerate() {
        if n > 0 {
            tokio::task::yield_now().await;
        }
        match client.apply_ops(chunk).await {
            Ok(()) => {}
            Err(IpvsError::Rejected { rejections, .. }) => {
                refusals.extend(rejections.into_iter().map(|mut r| {
                    r.index += n * CHUNK;
                    r
                }));
            }
            Err(e) => return (Err(e), refusals),
        }
    }
    (Ok(()), refusals)
}

/// The service a request is about.
fn service_of(r: &Request) -> Option<ServiceKey> {
    match r {
        Request::NewService(s) | Request::SetService(s) => Some(s.key),
        Request::DelService(k)
        | Request::GetService(k)
        | Request::NewDest(k, _)
        | Request::SetDest(k, _)
        | Request::DelDest(k, _)
        | Request::DumpDests(k) => Some(*k),
        _ => None,
    }
}

fn log_ops(
    ops: &[Op],
    refusals: &[keeper_ipvs::Rejection],
    origin: &BTreeMap<ServiceKey, String>,
    elapsed: Duration,
    last: &mut BTreeSet<String>,
) {
    let refused: BTreeSet<usize> = refusals.iter().map(|r| r.index).collect();
    let mut counts = [0usize; 6];
    for (i, op) in ops.iter().enumerate() {
        counts[match op {
            Op::AddService(_) => 0,
            Op::EditService(_) => 1,
            Op::DelService(_) => 2,
            Op::AddDest(..) => 3,
            Op::EditDest(..) => 4,
            Op::DelDest(..) => 5,
        }] += 1;
        if ops.len() <= LOG_EACH && !refused.contains(&i) {
            tracing::info!("ipvs: {op}");
        } else {
            tracing::debug!("ipvs: {op}");
        }
    }
    let mut now = BTreeSet::new();
    for r in refusals {
        let whose = service_of(&r.request)
            .and_then(|k| origin.get(&k))
            .map(|n| format!(" (virtual_server.{n})"))
            .unwrap_or_default();
        let text = format!("the kernel refused {r}{whose}");
        if last.contains(&text) {
            tracing::debug!("ipvs: {text} (again)");
        } else {
            tracing::error!("ipvs: {text}");
        }
        now.insert(text);
    }
    *last = now;
    tracing::info!(
        ms = elapsed.as_secs_f64() * 1000.0,
        refused = refusals.len(),
        "ipvs: {} operations: services +{} ~{} -{}, real servers +{} ~{} -{}",
        ops.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5]
    );
}

fn log_quorum(c: &QuorumChange) {
    let vs = &c.virtual_server;
    match (c.up, c.sorry_server) {
        (true, _) => tracing::info!(
            virtual_server = %vs,
            weight = c.weight,
            "virtual_server.{vs}: quorum up{}",
            if c.sorry_server { ": sorry server out" } else { "" }
        ),
        (false, true) => tracing::warn!(
            virtual_server = %vs,
            weight = c.weight,
            "virtual_server.{vs}: quorum lost: the sorry server takes the traffic"
        ),
        (false, false) => tracing::warn!(
            virtual_server = %vs,
            weight = c.weight,
            "virtual_server.{vs}: quorum lost (no sorry server configured)"
        ),
    }
}
