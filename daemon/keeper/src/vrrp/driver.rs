//! The VRRP driver: runs every configured instance of the protocol core against the kernel.
//! Thin by design: it turns packets, timer expiries and link changes into core events, and the
//! core's actions into packets (adverts, GARP/NA) and address changes. All decisions are in
//! `keeper-vrrp`.
//!
//! Besides the protocol it owns what keepalived calls "VRRP in operation": tracked objects
//! (their arithmetic is `keeper_vrrp::tracking`), sync groups (`keeper_vrrp::SyncGroup`, settled
//! after every call on a member), and reload without disturbance (`Instance::reconfigure`).
//!
//! Waiting ([`Driver::next_input`]) is cancel-safe and separate from processing
//! ([`Driver::process`]), which always runs to completion: an action drained from the core is
//! never lost to a signal arriving mid-way.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use keeper_vrrp::tracking::{ScriptCounter, TrackerKind};
use keeper_vrrp::{
    Action, Event, Family, Instance, ReconfigureError, State, SyncGroup, Transition,
    TransitionReason,
};
use tokio::sync::mpsc;

use super::plan::{GroupPlan, InstancePlan, ScriptPlan};
use super::running::{self, Running};
use crate::net::announce::Announcer;
use crate::net::rtnl::{LinkFacts, Rtnl, RtnlError, link_events};
use crate::net::timer::PreciseTimer;
use crate::net::vmac::SavedDevConf;
use crate::net::vrrp_socket::{Received, VrrpSocket};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Rtnl(#[from] RtnlError),
    #[error("vrrp_instance {instance}: {message}")]
    Instance { instance: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DriverError {
    let what = what.into();
    move |source| DriverError::Io { what, source }
}

/// A state change, broadcast to whoever follows VRRP (IPVS sync daemon, notify scripts,
/// metrics, systemd status).
#[derive(Clone, Debug)]
pub struct StateChange {
    pub instance: String,
    pub vrid: u8,
    pub priority: u8,
    pub transition: Transition,
    pub at: SystemTime,
}

/// What the control socket and logs show about an instance.
#[derive(Clone, Debug)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub family: Family,
    pub state: State,
    pub priority: u8,
    pub master: Option<IpAddr>,
    pub vips: Vec<IpAddr>,
    pub last_transition: Option<(SystemTime, Transition)>,
    pub stats: keeper_vrrp::Stats,
}

/// A sync group's state change (keepalived's `notify GROUP name STATE`).
#[derive(Clone, Debug)]
pub struct GroupChange {
    pub group: String,
    pub from: State,
    pub to: State,
    pub at: SystemTime,
}

struct GroupRun {
    name: String,
    members: Vec<String>,
    sync: SyncGroup,
}

/// One thing that happened.
pub enum Input {
    Packet {
        ifindex: u32,
        family: Family,
        result: io::Result<Received>,
    },
    Timer,
    Link(LinkFacts),
    /// The link-event socket closed: link changes are no longer seen.
    LinkEventsLost,
}

pub struct Driver {
    rtnl: Rtnl,
    announcer: Announcer,
    timer: PreciseTimer,
    instances: Vec<Running>,
    groups: Vec<GroupRun>,
    /// `vrrp_script` rise/fall counters, shared by the instances that track a script.
    scripts: HashMap<String, (ScriptPlan, ScriptCounter)>,
    /// Instances waiting for their interface to appear (`dynamic_interfaces`).
    pending: Vec<InstancePlan>,
    dynamic_interfaces: bool,
    sockets: HashMap<(u32, Family), Arc<VrrpSocket>>,
    packets: mpsc::Receiver<Input>,
    packets_tx: mpsc::Sender<Input>,
    links: mpsc::UnboundedReceiver<LinkFacts>,
    links_open: bool,
    /// Packets no instance could take: no instance with their VRID on that interface and
    /// family, or too short to carry a VRID.
    pub unmatched: u64,
    /// Packets the socket layer could not read (bad IP header).
    pub malformed: u64,
    changes: tokio::sync::broadcast::Sender<StateChange>,
    group_changes: tokio::sync::broadcast::Sender<GroupChange>,
    /// Base interfaces whose ARP parameters a VMAC changed, to restore at stop.
    protected: Vec<SavedDevConf>,
}

/// What the driver runs: instances, sync groups and scripts, from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    pub instances: Vec<InstancePlan>,
    pub groups: Vec<GroupPlan>,
    pub scripts: Vec<ScriptPlan>,
    pub dynamic_interfaces: bool,
}

impl Setup {
    pub fn from_config(cfg: &crate::config::Config) -> Setup {
        Setup {
            instances: super::plan::plan(cfg).0,
            groups: super::plan::groups(cfg),
            scripts: super::plan::scripts(cfg),
            dynamic_interfaces: cfg.global.dynamic_interfaces,
        }
    }
}

impl Driver {
    /// Resolves interfaces and addresses, opens the sockets, and starts every instance.
    /// With `dynamic_interfaces`, an instance whose interface does not exist yet waits for it
    /// (link and address events) instead of failing the start.
    pub async fn start(setup: Setup) -> Result<Driver, DriverError> {
        let rtnl = Rtnl::open()?;
        let announcer = Announcer::open().map_err(io_err("opening the GARP/NA packet socket"))?;
        let timer = PreciseTimer::new().map_err(io_err("creating the timer"))?;
        let links = link_events()?;
        let (packets_tx, packets) = mpsc::channel(1024);
        let mut driver = Driver {
            rtnl,
            announcer,
            timer,
            instances: Vec::new(),
            groups: Vec::new(),
            scripts: HashMap::new(),
            pending: Vec::new(),
            dynamic_interfaces: setup.dynamic_interfaces,
            sockets: HashMap::new(),
            packets,
            packets_tx,
            links,
            links_open: true,
            unmatched: 0,
            malformed: 0,
            changes: tokio::sync::broadcast::channel(256).0,
            group_changes: tokio::sync::broadcast::channel(64).0,
            protected: Vec::new(),
        };
        driver.set_scripts(&setup.scripts);
        driver.groups = setup
            .groups
            .iter()
            .map(|g| GroupRun {
                name: g.name.clone(),
                members: g.members.clone(),
                sync: SyncGroup::new(),
            })
            .collect();
        let mut added = Vec::new();
        for plan in setup.instances {
            if driver.dynamic_interfaces
                && matches!(
                    driver.rtnl.link(&plan.interface).await,
                    Err(RtnlError::NoInterface(_))
                )
            {
                tracing::warn!(instance = %plan.name, interface = %plan.interface, "interface does not exist yet: waiting for it (dynamic_interfaces)");
                driver.pending.push(plan);
                continue;
            }
            added.push(driver.add_instance(plan).await?);
        }
        driver.link_groups();
        // Each group settles once before its members start (they join it there).
        let now = Instant::now();
        for g in 0..driver.groups.len() {
            driver.settle_group(g, now);
        }
        for i in added {
            driver.begin(i).await;
        }
        driver.arm_timer();
        Ok(driver)
    }

    fn set_scripts(&mut self, scripts: &[ScriptPlan]) {
        let mut counters = HashMap::new();
        for s in scripts {
            // A script whose settings did not change keeps its counter: a reload must not
            // reset its rise/fall progress.
            match self.scripts.remove(&s.name) {
                Some((old, counter)) if old == *s => {
                    counters.insert(s.name.clone(), (old, counter));
                }
                _ => match ScriptCounter::new(s.rise, s.fall, s.init_fail) {
                    Ok(counter) => {
                        counters.insert(s.name.clone(), (s.clone(), counter));
                    }
                    Err(e) => tracing::error!(script = %s.name, "{e}"),
                },
            }
        }
        self.scripts = counters;
    }

    /// Resolves and opens what the instance needs; it does not start it ([`Driver::begin`]).
    async fn add_instance(&mut self, plan: InstancePlan) -> Result<usize, DriverError> {
        let fail = |message: String| DriverError::Instance {
            instance: plan.name.clone(),
            message,
        };
        let r = running::resolve(&self.rtnl, &plan).await.map_err(fail)?;
        let fail = |message: String| DriverError::Instance {
            instance: plan.name.clone(),
            message,
        };
        if !r.core.accept_mode {
            tracing::warn!(instance = %plan.name, "accept mode off is not enforced: keeper writes no firewall rules, so the VIPs accept traffic");
        }
        let (mut tracking, trackers) = running::tracking(&self.rtnl, r.core.priority, &plan).await;
        for (t, id) in &trackers {
            if t.kind == TrackerKind::Script
                && let Some(ok) = self.scripts.get(&t.object).and_then(|(_, c)| c.status())
            {
                tracking.set_up(*id, ok);
            }
        }
        let core = Instance::new(r.core).map_err(|e| fail(e.to_string()))?;
        let mut sender = None;
        if let Some((vmac_index, vmac_name)) = &r.vmac {
            if !self.protected.iter().any(|p| p.ifindex == r.link.index) {
                let saved = self.rtnl.protect_base(r.link.index).await.map_err(&fail)?;
                self.protected.push(saved);
            }
            if !plan.vmac_xmit_base {
                let sock = VrrpSocket::open_sender(vmac_name, *vmac_index)
                    .map_err(io_err(format!("opening the VRRP socket on {vmac_name}")))?;
                sender = Some(Arc::new(sock));
            }
        }
        let key = (r.link.index, plan.family());
        if let std::collections::hash_map::Entry::Vacant(slot) = self.sockets.entry(key) {
            let sock =
                VrrpSocket::open(&plan.interface, r.link.index, key.1 == Family::Ipv6).map_err(
                    io_err(format!("opening the VRRP socket on {}", plan.interface)),
                )?;
            let sock = Arc::new(sock);
            spawn_receiver(sock.clone(), key.1, self.packets_tx.clone());
            slot.insert(sock);
        }
        self.instances.push(Running {
            ifindex: r.link.index,
            link_up: r.link.up,
            source: r.source,
            vmac: r.vmac,
            sender,
            vips: r.vips,
            routes: r.routes,
            core,
            tracking,
            trackers,
            group: None,
            last_transition: None,
            plan,
        });
        Ok(self.instances.len() - 1)
    }

    /// Points each instance at its group (indices change when instances come and go).
    fn link_groups(&mut self) {
        for r in &mut self.instances {
            r.group = r
                .plan
                .group
                .as_ref()
                .and_then(|g| self.groups.iter().position(|x| &x.name == g));
        }
    }

    /// Starts instance `i`: link state, tracking, then the RFC's Startup.
    async fn begin(&mut self, i: usize) {
        let now = Instant::now();
        let r = &mut self.instances[i];
        if !r.link_up {
            r.core.handle(now, Event::InterfaceDown);
        }
        let status = r.tracking.status();
        r.core.handle(now, Event::Tracking(status));
        r.core.handle(now, Event::Startup);
        self.after_call(i, now).await;
    }

    fn settle_group(&mut self, g: usize, now: Instant) {
        let group = &mut self.groups[g];
        let mut members: Vec<(usize, &mut Instance)> = self
            .instances
            .iter_mut()
            .filter_map(|r| {
                group
                    .members
                    .iter()
                    .position(|m| *m == r.plan.name)
                    .map(|pos| (pos, &mut r.core))
            })
            .collect();
        members.sort_by_key(|(pos, _)| *pos);
        let mut refs: Vec<&mut Instance> = members.into_iter().map(|(_, c)| c).collect();
        group.sync.settle(now, &mut refs);
    }

    /// After any call on instance `i`'s core: settle its group, then perform the actions of
    /// `i` first and of the other members in group order, then report the group's changes.
    async fn after_call(&mut self, i: usize, now: Instant) {
        let Some(g) = self.instances[i].group else {
            self.drain(i).await;
            return;
        };
        self.settle_group(g, now);
        self.drain(i).await;
        let members = self.groups[g].members.clone();
        for m in members {
            if let Some(j) = self.instances.iter().position(|r| r.plan.name == m)
                && j != i
            {
                self.drain(j).await;
            }
        }
        while let Some(t) = self.groups[g].sync.poll_transition() {
            let name = self.groups[g].name.clone();
            tracing::info!(group = %name, state = %t.to, from = %t.from, "sync group {} -> {}", t.from, t.to);
            let _ = self.group_changes.send(GroupChange {
                group: name,
                from: t.from,
                to: t.to,
                at: SystemTime::now(),
            });
        }
    }

    /// A `vrrp_script` result (exit status 0 is success; a timeout or kill is a failure).
    /// Reaches the instances through the script's rise/fall counter.
    pub async fn script_result(&mut self, script: &str, success: bool) {
        let Some((_, counter)) = self.scripts.get_mut(script) else {
            return;
        };
        let Some(ok) = counter.record(success) else {
            return;
        };
        tracing::info!(script, ok, "tracked script changed");
        self.set_tracked(TrackerKind::Script, script, |t, id| t.set_up(id, ok))
            .await;
    }

    /// A `vrrp_track_file`'s value.
    pub async fn file_value(&mut self, file: &str, value: i64) {
        self.set_tracked(TrackerKind::File, file, |t, id| t.set_value(id, value))
            .await;
    }

    /// Whether a `vrrp_track_process`'s quorum is met.
    pub async fn process_up(&mut self, process: &str, up: bool) {
        self.set_tracked(TrackerKind::Process, process, |t, id| t.set_up(id, up))
            .await;
    }

    /// Records a tracked object's new state in every instance tracking it, and tells the
    /// cores whose effective priority or fault changed.
    async fn set_tracked(
        &mut self,
        kind: TrackerKind,
        object: &str,
        mut set: impl FnMut(
            &mut keeper_vrrp::tracking::Tracking,
            keeper_vrrp::tracking::TrackerId,
        ) -> bool,
    ) {
        let now = Instant::now();
        for i in 0..self.instances.len() {
            let r = &mut self.instances[i];
            let mut changed = false;
            for (t, id) in &r.trackers {
                if t.kind == kind && t.object == object {
                    changed |= set(&mut r.tracking, *id);
                }
            }
            if changed {
                let status = r.tracking.status();
                r.core.handle(now, Event::Tracking(status));
                self.after_call(i, now).await;
            }
        }
    }

    /// Applies a new configuration without disturbing what did not change: unchanged
    /// instances keep state, timers and VIPs; changed ones are reconfigured in place where the
    /// protocol allows (`Instance::reconfigure`), restarted where it does not (VRID, family,
    /// version, interface, VMAC); removed ones stop (priority 0, VIPs released); new ones start.
    pub async fn reload(&mut self, setup: Setup) {
        let now = Instant::now();
        self.set_scripts(&setup.scripts);
        self.dynamic_interfaces = setup.dynamic_interfaces;
        let mut restart: Vec<InstancePlan> = Vec::new();
        let mut new_plans: Vec<InstancePlan> = Vec::new();
        let wanted: Vec<String> = setup.instances.iter().map(|p| p.name.clone()).collect();
        self.pending.retain(|p| wanted.contains(&p.name));
        // Stop what is gone.
        let gone: Vec<usize> = (0..self.instances.len())
            .filter(|&i| !wanted.contains(&self.instances[i].plan.name))
            .collect();
        for &i in gone.iter().rev() {
            self.stop_instance(i, now).await;
        }
        for plan in setup.instances {
            let Some(i) = self.instances.iter().position(|r| r.plan.name == plan.name) else {
                if !self.pending.iter().any(|p| p.name == plan.name) {
                    new_plans.push(plan);
                }
                continue;
            };
            if self.instances[i].plan == plan {
                continue;
            }
            let old = &self.instances[i].plan;
            if old.interface != plan.interface
                || old.vmac != plan.vmac
                || old.vmac_xmit_base != plan.vmac_xmit_base
            {
                restart.push(plan);
                continue;
            }
            if let Err(e) = self.reconfigure(i, plan.clone(), now).await {
                tracing::info!(instance = %plan.name, "{e}: restarting the instance");
                restart.push(plan);
            }
        }
        for plan in restart {
            if let Some(i) = self.instances.iter().position(|r| r.plan.name == plan.name) {
                self.stop_instance(i, now).await;
            }
            new_plans.push(plan);
        }
        // Groups: members that left a group leave it; the rest settle with the new membership.
        for r in &mut self.instances {
            let still = setup.groups.iter().any(|g| {
                r.plan.group.as_ref() == Some(&g.name) && g.members.contains(&r.plan.name)
            });
            if r.group.is_some() && !still {
                r.core.leave_sync_group(now);
            }
        }
        let mut groups = Vec::new();
        for g in &setup.groups {
            let sync = match self.groups.iter().position(|x| x.name == g.name) {
                Some(p) => self.groups.swap_remove(p).sync,
                None => SyncGroup::new(),
            };
            groups.push(GroupRun {
                name: g.name.clone(),
                members: g.members.clone(),
                sync,
            });
        }
        self.groups = groups;
        self.link_groups();
        let mut added = Vec::new();
        for plan in new_plans {
            let name = plan.name.clone();
            match self.add_instance(plan.clone()).await {
                Ok(i) => added.push(i),
                Err(e) if self.dynamic_interfaces => {
                    tracing::warn!(instance = %name, "{e}: waiting for the interface");
                    self.pending.push(plan);
                }
                Err(e) => tracing::error!(instance = %name, "cannot start: {e}"),
            }
        }
        self.link_groups();
        for g in 0..self.groups.len() {
            self.settle_group(g, now);
        }
        for i in 0..self.instances.len() {
            if !added.contains(&i) {
                self.after_call(i, now).await;
            }
        }
        for i in added {
            self.begin(i).await;
        }
        self.arm_timer();
    }

    /// Reconfigures instance `i` in place; an error means it must be restarted.
    async fn reconfigure(
        &mut self,
        i: usize,
        plan: InstancePlan,
        now: Instant,
    ) -> Result<(), String> {
        let r = running::resolve(&self.rtnl, &plan).await?;
        let run = &mut self.instances[i];
        let done = match run.core.reconfigure(now, r.core.clone()) {
            Ok(done) => done,
            Err(ReconfigureError::RestartNeeded(why)) => {
                return Err(format!(
                    "{} changed",
                    why.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Err(e) => return Err(e.to_string()),
        };
        let holds = run.core.holds_vips();
        // Addresses: the core says which VIPs appeared or went while master; placement
        // changes of a kept address (prefix, label, device) and routes/rules are ours to diff.
        let old_vips = std::mem::replace(&mut run.vips, r.vips);
        let old_routes = std::mem::replace(&mut run.routes, r.routes);
        let old_rules = run.plan.rules.clone();
        run.plan = plan;
        run.source = r.source;
        if holds {
            for v in &old_vips {
                let kept = run
                    .vips
                    .iter()
                    .any(|n| n.spec == v.spec && n.ifindex == v.ifindex);
                if !kept && let Err(e) = self.rtnl.remove(v.ifindex, &v.spec).await {
                    tracing::error!(instance = %run.plan.name, "{e}");
                }
            }
            for v in &run.vips {
                let had = old_vips
                    .iter()
                    .any(|o| o.spec == v.spec && o.ifindex == v.ifindex);
                if !had && let Err(e) = self.rtnl.add(v.ifindex, &v.spec).await {
                    tracing::error!(instance = %run.plan.name, "{e}");
                }
            }
            for rule in old_rules.iter().filter(|x| !run.plan.rules.contains(x)) {
                if let Err(e) = self.rtnl.remove_rule(rule).await {
                    tracing::error!(instance = %run.plan.name, "{e}");
                }
            }
            for route in old_routes.iter().filter(|x| !run.routes.contains(x)) {
                if let Err(e) = self.rtnl.remove_route(route).await {
                    tracing::error!(instance = %run.plan.name, "{e}");
                }
            }
            for route in run.routes.iter().filter(|x| !old_routes.contains(x)) {
                if let Err(e) = self.rtnl.add_route(route).await {
                    tracing::error!(instance = %run.plan.name, "{e}");
                }
            }
            for rule in run.plan.rules.iter().filter(|x| !old_rules.contains(x)) {
                if let Err(e) = self.rtnl.add_rule(rule).await {
                    tracing::error!(instance = %run.plan.name, "{e}");
                }
            }
        }
        // Trackers: rebuilt when their list changed; the base priority follows the config.
        let base = run.core.config().priority;
        if run
            .trackers
            .iter()
            .map(|(t, _)| t)
            .ne(run.plan.trackers.iter())
        {
            let (mut tracking, trackers) = running::tracking(&self.rtnl, base, &run.plan).await;
            for (t, id) in &trackers {
                if t.kind == TrackerKind::Script
                    && let Some(ok) = self.scripts.get(&t.object).and_then(|(_, c)| c.status())
                {
                    tracking.set_up(*id, ok);
                }
            }
            run.tracking = tracking;
            run.trackers = trackers;
        } else {
            run.tracking.set_base(base);
        }
        let status = run.tracking.status();
        run.core.handle(now, Event::Tracking(status));
        if !done.is_noop() {
            tracing::info!(instance = %run.plan.name, changed = ?done.changed, "reconfigured in place");
        }
        Ok(())
    }

    /// Stops instance `i` (a master sends priority 0 and releases) and forgets it.
    async fn stop_instance(&mut self, i: usize, now: Instant) {
        if self.instances[i].group.is_some() {
            self.instances[i].core.leave_sync_group(now);
        }
        self.instances[i].core.handle(now, Event::Shutdown);
        self.drain(i).await;
        let r = self.instances.remove(i);
        if let Some((index, name)) = &r.vmac
            && let Err(e) = self.rtnl.delete_link(*index).await
        {
            tracing::warn!(instance = %r.plan.name, "removing VMAC {name}: {e}");
        }
        tracing::info!(instance = %r.plan.name, "instance removed");
        self.link_groups();
    }

    /// Waits for the next input. Cancel-safe: nothing is consumed unless it is returned.
    pub async fn next_input(&mut self) -> Input {
        tokio::select! {
            biased;
            p = self.packets.recv() => match p {
                Some(input) => input,
                // Every receiver task holds a sender, and so does nobody else: unreachable
                // while sockets exist; wait on the other inputs if it ever happens.
                None => std::future::pending().await,
            },
            r = self.timer.wait() => {
                if let Err(e) = r {
                    tracing::error!("timer: {e}");
                }
                Input::Timer
            }
            l = self.links.recv(), if self.links_open => match l {
                Some(facts) => Input::Link(facts),
                None => Input::LinkEventsLost,
            },
        }
    }

    /// One received packet (or a read error), for the instance of its VRID.
    async fn handle_packet(
        &mut self,
        now: Instant,
        ifindex: u32,
        family: Family,
        result: io::Result<Received>,
    ) {
        match result {
            Ok(pkt) => {
                let vrid = pkt.payload.get(1).copied();
                let target = self.instances.iter().position(|r| {
                    r.ifindex == ifindex && r.plan.family() == family && Some(r.core.vrid()) == vrid
                });
                match target {
                    Some(i) => {
                        let ev = Event::AdvertReceived {
                            src: pkt.src,
                            dst: pkt.dst,
                            ttl: pkt.ttl,
                            bytes: &pkt.payload,
                        };
                        self.instances[i].core.handle(now, ev);
                        self.after_call(i, now).await;
                    }
                    None => {
                        self.unmatched += 1;
                        tracing::debug!(src = %pkt.src, ?vrid, "VRRP packet for no configured instance");
                    }
                }
            }
            Err(e) => {
                self.malformed += 1;
                tracing::debug!(ifindex, "dropped a malformed VRRP packet: {e}");
            }
        }
    }

    /// Everything already received: the receiver tasks' queue, then the sockets' buffers.
    async fn read_buffered(&mut self, now: Instant) {
        while let Ok(input) = self.packets.try_recv() {
            if let Input::Packet {
                ifindex,
                family,
                result,
            } = input
            {
                self.handle_packet(now, ifindex, family, result).await;
            }
        }
        let sockets: Vec<((u32, Family), Arc<VrrpSocket>)> =
            self.sockets.iter().map(|(k, v)| (*k, v.clone())).collect();
        for ((ifindex, family), sock) in sockets {
            // Bounded: a flood cannot keep the timers from running.
            for _ in 0..64 {
                match sock.try_recv() {
                    Ok(Some(pkt)) => self.handle_packet(now, ifindex, family, Ok(pkt)).await,
                    Ok(None) => break,
                    Err(e) => {
                        self.handle_packet(now, ifindex, family, Err(e)).await;
                        break;
                    }
                }
            }
        }
    }

    /// Handles one input to completion.
    pub async fn process(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Timer => {
                // Adverts that arrived before a deadline count before it: a loop stalled by load
                // must not let a Master_Down expiry overtake an advert already in a buffer
                // (measured: false takeovers at 10 ms adverts under stress-ng without this).
                self.read_buffered(now).await;
                let now = Instant::now();
                for i in 0..self.instances.len() {
                    if self.instances[i]
                        .core
                        .poll_timeout()
                        .is_some_and(|t| t <= now)
                    {
                        self.instances[i].core.handle_timeout(now);
                        self.after_call(i, now).await;
                    }
                }
            }
            Input::Packet {
                ifindex,
                family,
                result,
            } => self.handle_packet(now, ifindex, family, result).await,
            Input::Link(facts) => {
                // Instances waiting for this interface: try again (it may still lack an address).
                let waiting: Vec<InstancePlan> = self
                    .pending
                    .extract_if(.., |p| p.interface == facts.name)
                    .collect();
                let mut started = Vec::new();
                for plan in waiting {
                    let name = plan.name.clone();
                    match self.add_instance(plan.clone()).await {
                        Ok(i) => {
                            tracing::info!(instance = %name, interface = %facts.name, "interface ready: instance started");
                            started.push(i);
                        }
                        Err(e) => {
                            tracing::info!(instance = %name, "interface {} is there but not ready: {e}", facts.name);
                            self.pending.push(plan);
                        }
                    }
                }
                if !started.is_empty() {
                    self.link_groups();
                    for i in started {
                        self.begin(i).await;
                    }
                }
                for i in 0..self.instances.len() {
                    let r = &mut self.instances[i];
                    if r.ifindex != facts.index || r.link_up == facts.up {
                        continue;
                    }
                    r.link_up = facts.up;
                    tracing::info!(instance = %r.plan.name, interface = %r.plan.interface, up = facts.up, "link changed");
                    r.core.handle(
                        now,
                        if facts.up {
                            Event::InterfaceUp
                        } else {
                            Event::InterfaceDown
                        },
                    );
                    self.after_call(i, now).await;
                }
                let up = facts.up;
                self.set_tracked(TrackerKind::Interface, &facts.name, |t, id| {
                    t.set_up(id, up)
                })
                .await;
            }
            Input::LinkEventsLost => {
                tracing::error!(
                    "the link-event netlink socket closed: link changes are no longer tracked"
                );
                self.links_open = false;
            }
        }
        self.arm_timer();
    }

    /// Stops every instance (a master sends priority 0 and releases its VIPs).
    pub async fn shutdown(&mut self) {
        let now = Instant::now();
        for i in 0..self.instances.len() {
            self.instances[i].core.handle(now, Event::Shutdown);
            self.after_call(i, now).await;
        }
        let _ = self.timer.set(None);
        // As keepalived: the VMACs go, and the base interfaces get their ARP settings back.
        for r in &self.instances {
            if let Some((index, name)) = &r.vmac
                && let Err(e) = self.rtnl.delete_link(*index).await
            {
                tracing::warn!(instance = %r.plan.name, "removing VMAC {name}: {e}");
            }
        }
        for saved in &self.protected {
            if let Err(e) = self.rtnl.restore_base(saved).await {
                tracing::warn!("restoring ARP settings: {e}");
            }
        }
    }

    /// State changes from now on, in order. A subscriber that falls 256 changes behind gets
    /// `Lagged` and should resynchronise from [`Driver::status`].
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StateChange> {
        self.changes.subscribe()
    }

    /// Sync-group state changes from now on, in order.
    pub fn subscribe_groups(&self) -> tokio::sync::broadcast::Receiver<GroupChange> {
        self.group_changes.subscribe()
    }

    /// A snapshot of every instance.
    pub fn status(&self) -> Vec<InstanceStatus> {
        self.instances
            .iter()
            .map(|r| InstanceStatus {
                name: r.plan.name.clone(),
                interface: r.plan.interface.clone(),
                vrid: r.core.vrid(),
                family: r.plan.family(),
                state: r.core.state(),
                priority: r.core.effective_priority(),
                master: r.core.master_address(),
                vips: r.plan.vips.iter().map(|v| v.addr).collect(),
                last_transition: r.last_transition,
                stats: *r.core.stats(),
            })
            .collect()
    }

    fn arm_timer(&mut self) {
        let next = self
            .instances
            .iter()
            .filter_map(|r| r.core.poll_timeout())
            .min();
        if let Err(e) = self.timer.set(next) {
            tracing::error!("arming the timer: {e}");
        }
    }

    /// Performs instance `i`'s actions in order.
    async fn drain(&mut self, i: usize) {
        while let Some(action) = self.instances[i].core.poll_action() {
            let r = &self.instances[i];
            match action {
                Action::SendAdvert(out) => {
                    let Some(sock) = r
                        .sender
                        .as_ref()
                        .or_else(|| self.sockets.get(&(r.ifindex, r.plan.family())))
                    else {
                        continue;
                    };
                    for d in &out.datagrams {
                        if let Err(e) = sock.send(out.src, d.dst, &d.payload) {
                            tracing::warn!(instance = %r.plan.name, dst = %d.dst, "sending advert: {e}");
                        }
                    }
                }
                Action::AddVips { .. } => {
                    for v in &r.vips {
                        if let Err(e) = self.rtnl.add(v.ifindex, &v.spec).await {
                            tracing::error!(instance = %r.plan.name, "{e}");
                        }
                    }
                    // Routes may use the VIPs (as source or on their subnet): after them.
                    for route in &r.routes {
                        if let Err(e) = self.rtnl.add_route(route).await {
                            tracing::error!(instance = %r.plan.name, "{e}");
                        }
                    }
                    for rule in &r.plan.rules {
                        if let Err(e) = self.rtnl.add_rule(rule).await {
                            tracing::error!(instance = %r.plan.name, "{e}");
                        }
                    }
                }
                Action::RemoveVips => {
                    for rule in &r.plan.rules {
                        if let Err(e) = self.rtnl.remove_rule(rule).await {
                            tracing::error!(instance = %r.plan.name, "{e}");
                        }
                    }
                    for route in &r.routes {
                        if let Err(e) = self.rtnl.remove_route(route).await {
                            tracing::error!(instance = %r.plan.name, "{e}");
                        }
                    }
                    for v in &r.vips {
                        if let Err(e) = self.rtnl.remove(v.ifindex, &v.spec).await {
                            tracing::error!(instance = %r.plan.name, "{e}");
                        }
                    }
                }
                Action::Announce => {
                    for v in &r.vips {
                        let sent = match (v.spec.addr, v.link_local) {
                            (IpAddr::V4(a), _) => self.announcer.garp(v.ifindex, v.mac, a),
                            (IpAddr::V6(a), Some(ll)) => {
                                self.announcer.unsolicited_na(v.ifindex, v.mac, ll, a)
                            }
                            (IpAddr::V6(_), None) => Err(io::Error::other(
                                "the interface has no link-local address to send from",
                            )),
                        };
                        if let Err(e) = sent {
                            tracing::warn!(instance = %r.plan.name, vip = %v.spec.addr, "announcing: {e}");
                        }
                    }
                }
                Action::Notify(t) => {
                    tracing::info!(
                        instance = %r.plan.name,
                        vrid = r.core.vrid(),
                        state = %t.to,
                        from = %t.from,
                        reason = %t.reason,
                        priority = r.core.effective_priority(),
                        "{} -> {} ({})", t.from, t.to, t.reason
                    );
                    if t.reason == TransitionReason::MasterDown
                        || t.reason == TransitionReason::Preempted
                    {
                        tracing::debug!(instance = %r.plan.name, master_down = ?r.core.master_down_interval(), "took over");
                    }
                    let at = SystemTime::now();
                    self.instances[i].last_transition = Some((at, t));
                    let r = &self.instances[i];
                    // No subscriber is fine: the send error only says nobody listens.
                    let _ = self.changes.send(StateChange {
                        instance: r.plan.name.clone(),
                        vrid: r.core.vrid(),
                        priority: r.core.effective_priority(),
                        transition: t,
                        at,
                    });
                }
                Action::Dropped { src, reason } => {
                    tracing::debug!(instance = %r.plan.name, %src, reason = reason.name(), "advert dropped");
                }
            }
        }
    }
}

fn spawn_receiver(sock: Arc<VrrpSocket>, family: Family, tx: mpsc::Sender<Input>) {
    tokio::spawn(async move {
        loop {
            let result = sock.recv().await;
            let fatal = matches!(&result, Err(e) if e.kind() != io::ErrorKind::InvalidData);
            if tx
                .send(Input::Packet {
                    ifindex: sock.ifindex(),
                    family,
                    result,
                })
                .await
                .is_err()
                || fatal
            {
                return;
            }
        }
    });
}
