//! The VRRP driver: runs every configured instance of the protocol core against the kernel.
//! Thin by design: it turns packets, timer expiries and link changes into core events, and the
//! core's actions into packets (adverts, GARP/NA) and address changes. All decisions are in
//! `keeper-vrrp`.
//!
//! Waiting ([`Driver::next_input`]) is cancel-safe and separate from processing
//! ([`Driver::process`]), which always runs to completion: an action drained from the core is
//! never lost to a signal arriving mid-way.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use keeper_vrrp::{Action, Event, Family, Instance, State, Transition, TransitionReason};
use tokio::sync::mpsc;

use super::plan::InstancePlan;
use crate::config::syntax::VipSpec;
use crate::net::announce::Announcer;
use crate::net::rtnl::{LinkFacts, PlacedRoute, Rtnl, RtnlError, link_events};
use crate::net::timer::PreciseTimer;
use crate::net::vmac::{self, SavedDevConf};
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

/// A VIP and where it lives.
#[derive(Clone, Debug)]
struct PlacedVip {
    spec: VipSpec,
    ifindex: u32,
    mac: [u8; 6],
    /// Source of unsolicited NAs: the link-local address of the VIP's interface.
    link_local: Option<Ipv6Addr>,
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

struct Running {
    plan: InstancePlan,
    ifindex: u32,
    link_up: bool,
    /// The VMAC carrying the VIPs (`use_vmac`): its index and name.
    vmac: Option<(u32, String)>,
    /// Where adverts leave when not the shared socket of the interface (the VMAC).
    sender: Option<Arc<VrrpSocket>>,
    /// Advertised VIPs followed by the excluded ones.
    vips: Vec<PlacedVip>,
    routes: Vec<PlacedRoute>,
    core: Instance,
    last_transition: Option<(SystemTime, Transition)>,
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
    /// Instances waiting for their interface to appear (`dynamic_interfaces`).
    pending: Vec<InstancePlan>,
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
    /// Base interfaces whose ARP parameters a VMAC changed, to restore at stop.
    protected: Vec<SavedDevConf>,
}

impl Driver {
    /// Resolves interfaces and addresses, opens the sockets, and starts every instance.
    /// With `dynamic_interfaces`, an instance whose interface does not exist yet waits for it
    /// (link events) instead of failing the start.
    pub async fn start(
        plans: Vec<InstancePlan>,
        dynamic_interfaces: bool,
    ) -> Result<Driver, DriverError> {
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
            pending: Vec::new(),
            sockets: HashMap::new(),
            packets,
            packets_tx,
            links,
            links_open: true,
            unmatched: 0,
            malformed: 0,
            changes: tokio::sync::broadcast::channel(256).0,
            protected: Vec::new(),
        };
        for plan in plans {
            if dynamic_interfaces
                && matches!(
                    driver.rtnl.link(&plan.interface).await,
                    Err(RtnlError::NoInterface(_))
                )
            {
                tracing::warn!(instance = %plan.name, interface = %plan.interface, "interface does not exist yet: waiting for it (dynamic_interfaces)");
                driver.pending.push(plan);
                continue;
            }
            driver.add_instance(plan).await?;
        }
        driver.arm_timer();
        Ok(driver)
    }

    /// Resolves, opens what the instance needs, and starts it.
    async fn add_instance(&mut self, plan: InstancePlan) -> Result<(), DriverError> {
        let mut running = Self::resolve(&self.rtnl, plan).await?;
        if let Some((vmac_index, vmac_name)) = &running.vmac {
            if !self.protected.iter().any(|p| p.ifindex == running.ifindex) {
                let saved = self
                    .rtnl
                    .protect_base(running.ifindex)
                    .await
                    .map_err(|message| DriverError::Instance {
                        instance: running.plan.name.clone(),
                        message,
                    })?;
                self.protected.push(saved);
            }
            if !running.plan.vmac_xmit_base {
                let sock = VrrpSocket::open_sender(vmac_name, *vmac_index)
                    .map_err(io_err(format!("opening the VRRP socket on {vmac_name}")))?;
                running.sender = Some(Arc::new(sock));
            }
        }
        let key = (running.ifindex, running.plan.family());
        if let std::collections::hash_map::Entry::Vacant(slot) = self.sockets.entry(key) {
            let sock = VrrpSocket::open(
                &running.plan.interface,
                running.ifindex,
                key.1 == Family::Ipv6,
            )
            .map_err(io_err(format!(
                "opening the VRRP socket on {}",
                running.plan.interface
            )))?;
            let sock = Arc::new(sock);
            spawn_receiver(sock.clone(), key.1, self.packets_tx.clone());
            slot.insert(sock);
        }
        let now = Instant::now();
        if !running.link_up {
            running.core.handle(now, Event::InterfaceDown);
        }
        running.core.handle(now, Event::Startup);
        self.instances.push(running);
        self.drain(self.instances.len() - 1).await;
        Ok(())
    }

    async fn resolve(rtnl: &Rtnl, plan: InstancePlan) -> Result<Running, DriverError> {
        let fail = |message: String| DriverError::Instance {
            instance: plan.name.clone(),
            message,
        };
        let link = rtnl
            .link(&plan.interface)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mac = link.mac.ok_or_else(|| {
            fail(format!(
                "interface {} has no Ethernet address",
                plan.interface
            ))
        })?;
        let addrs = rtnl.addresses(link.index).await?;
        let family = plan.family();
        let vip_addrs: Vec<IpAddr> = plan.vips.iter().map(|v| v.addr).collect();
        let source = match plan.source {
            Some(s) => s,
            None => addrs
                .iter()
                .map(|a| a.addr)
                .find(|a| match (family, a) {
                    (Family::Ipv4, IpAddr::V4(_)) => !vip_addrs.contains(a),
                    (Family::Ipv6, IpAddr::V6(v6)) => v6.is_unicast_link_local(),
                    _ => false,
                })
                .ok_or_else(|| {
                    fail(format!(
                        "interface {} has no {} to send adverts from (set mcast_src_ip or unicast_src_ip)",
                        plan.interface,
                        if family == Family::Ipv6 { "IPv6 link-local address" } else { "IPv4 address" }
                    ))
                })?,
        };
        let mut core = plan.with_source(source);
        if core.priority == keeper_vrrp::PRIORITY_OWNER {
            let owned = vip_addrs.iter().all(|v| addrs.iter().any(|a| a.addr == *v));
            if !owned {
                tracing::warn!(
                    instance = %plan.name,
                    "priority 255 is for the owner of the virtual addresses, which are not configured on {}: running at 254",
                    plan.interface
                );
                core.priority = 254;
            }
        }
        // use_vmac: the VIPs live on a macvlan with the virtual router MAC.
        let vmac = match &plan.vmac {
            Some(name) => {
                let index = rtnl
                    .ensure_vmac(name, link.index, vmac::virtual_mac(plan.core.vrid, false))
                    .await
                    .map_err(&fail)?;
                Some((index, name.clone()))
            }
            None => None,
        };
        let mut vips = Vec::new();
        let mut iface_cache: HashMap<String, (u32, [u8; 6], Option<Ipv6Addr>)> = HashMap::new();
        let ll_of = |addrs: &[crate::net::rtnl::IfAddr]| {
            addrs.iter().find_map(|a| match a.addr {
                IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
                _ => None,
            })
        };
        iface_cache.insert(plan.interface.clone(), (link.index, mac, ll_of(&addrs)));
        if let Some((index, name)) = &vmac {
            iface_cache.insert(
                name.clone(),
                (*index, vmac::virtual_mac(plan.core.vrid, false), None),
            );
        }
        for spec in plan.vips.iter().chain(plan.excluded.iter()) {
            // With a VMAC, addresses "on the interface" go on the VMAC, as in keepalived.
            let default_dev = vmac.as_ref().map_or(&plan.interface, |(_, name)| name);
            let dev = match &spec.dev {
                Some(d) if *d != plan.interface => d.clone(),
                _ => default_dev.clone(),
            };
            let (ifindex, vmac, ll) = match iface_cache.get(&dev) {
                Some(v) => *v,
                None => {
                    let l = rtnl
                        .link(&dev)
                        .await
                        .map_err(|e| fail(format!("virtual address {}: {e}", spec.addr)))?;
                    let m = l
                        .mac
                        .ok_or_else(|| fail(format!("interface {dev} has no Ethernet address")))?;
                    let ll = ll_of(&rtnl.addresses(l.index).await?);
                    iface_cache.insert(dev.clone(), (l.index, m, ll));
                    (l.index, m, ll)
                }
            };
            vips.push(PlacedVip {
                spec: spec.clone(),
                ifindex,
                mac: vmac,
                link_local: ll,
            });
        }
        if !core.accept_mode {
            tracing::warn!(instance = %plan.name, "accept mode off is not enforced: keeper writes no firewall rules, so the VIPs accept traffic");
        }
        let core = Instance::new(core).map_err(|e| fail(e.to_string()))?;
        let mut routes = Vec::new();
        for spec in &plan.routes {
            let oif = match &spec.dev {
                Some(dev) => Some(match iface_cache.get(dev) {
                    Some(v) => v.0,
                    None => {
                        rtnl.link(dev)
                            .await
                            .map_err(|e| fail(format!("virtual route via {dev}: {e}")))?
                            .index
                    }
                }),
                None => None,
            };
            routes.push(PlacedRoute {
                spec: spec.clone(),
                oif,
            });
        }
        Ok(Running {
            ifindex: link.index,
            link_up: link.up,
            vmac,
            sender: None,
            vips,
            routes,
            core,
            last_transition: None,
            plan,
        })
    }
}

impl Driver {
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

    /// Handles one input to completion.
    pub async fn process(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Timer => {
                for i in 0..self.instances.len() {
                    if self.instances[i]
                        .core
                        .poll_timeout()
                        .is_some_and(|t| t <= now)
                    {
                        self.instances[i].core.handle_timeout(now);
                        self.drain(i).await;
                    }
                }
            }
            Input::Packet {
                ifindex,
                family,
                result,
            } => match result {
                Ok(pkt) => {
                    let vrid = pkt.payload.get(1).copied();
                    let target = self.instances.iter().position(|r| {
                        r.ifindex == ifindex
                            && r.plan.family() == family
                            && Some(r.core.vrid()) == vrid
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
                            self.drain(i).await;
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
            },
            Input::Link(facts) => {
                // Instances waiting for this interface: try again (it may still lack an address).
                let waiting: Vec<InstancePlan> = self
                    .pending
                    .extract_if(.., |p| p.interface == facts.name)
                    .collect();
                for plan in waiting {
                    let name = plan.name.clone();
                    if let Err(e) = self.add_instance(plan.clone()).await {
                        tracing::info!(instance = %name, "interface {} is there but not ready: {e}", facts.name);
                        self.pending.push(plan);
                    } else {
                        tracing::info!(instance = %name, interface = %facts.name, "interface ready: instance started");
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
                    self.drain(i).await;
                }
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
            self.drain(i).await;
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
