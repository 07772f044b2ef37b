//! A virtual LAN for scenario tests: routers holding [`Instance`]s (optionally in sync
//! groups), one or more segments (a router's interface k is on segment k), a wire that
//! delivers adverts after a fixed latency, a client whose neighbour cache follows the
//! GARPs, and faults (crash, link down, partition). Everything runs on virtual time, in a
//! total, deterministic order.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use keeper_vrrp::{
    Action, Event, Family, GroupTransition, Instance, InstanceConfig, ReconfigureError,
    Reconfigured, State, SyncGroup, Transition,
};

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// An instance key on the LAN: the driver's demultiplexing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vr {
    pub vrid: u8,
    pub ipv6: bool,
}

impl Vr {
    pub fn of(cfg: &InstanceConfig) -> Vr {
        Vr {
            vrid: cfg.vrid,
            ipv6: cfg.family == Family::Ipv6,
        }
    }
}

/// Something that happened, for assertions and for failure messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happened {
    Sent {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    Announce,
    Notify(Transition),
    Dropped(String),
    /// A sync group's transition (recorded under [`GROUP`]).
    Group(GroupTransition),
}

/// The `vr` of records about a sync group rather than an instance.
pub const GROUP: Vr = Vr {
    vrid: 0,
    ipv6: false,
};

#[derive(Clone, Debug)]
pub struct Record {
    pub at: Duration,
    pub node: usize,
    pub vr: Vr,
    pub what: Happened,
}

pub struct Router {
    pub name: String,
    configs: Vec<InstanceConfig>,
    pub instances: Vec<Instance>,
    /// The interface (segment) of each instance.
    pub ifaces: Vec<usize>,
    /// Sync groups: the coordinator and its members (instance indices).
    pub groups: Vec<(SyncGroup, Vec<usize>)>,
    /// The process runs (false after a crash).
    pub alive: bool,
    /// The link carries packets (all interfaces).
    pub link_up: bool,
    /// Interfaces whose link is down (on top of `link_up`).
    pub ifaces_down: BTreeSet<usize>,
    /// Addresses configured on the interface, per virtual router (they survive a crash).
    pub holds_vips: BTreeSet<Vr>,
    /// The virtual addresses configured, address by address.
    pub addrs: BTreeSet<IpAddr>,
}

impl Router {
    fn iface_up(&self, iface: usize) -> bool {
        self.link_up && !self.ifaces_down.contains(&iface)
    }

    fn group_of(&self, i: usize) -> Option<usize> {
        self.groups.iter().position(|(_, m)| m.contains(&i))
    }
}

struct Packet {
    deliver_at: Instant,
    seq: u64,
    from: usize,
    iface: usize,
    src: IpAddr,
    dst: IpAddr,
    payload: Vec<u8>,
}

pub struct Lan {
    pub t0: Instant,
    pub now: Instant,
    pub latency: Duration,
    pub routers: Vec<Router>,
    wire: Vec<Packet>,
    seq: u64,
    /// Pairs of routers that cannot hear each other.
    cut: BTreeSet<(usize, usize)>,
    /// The client's neighbour cache: which router answers for each virtual router's
    /// addresses (the last GARP heard), and since when.
    pub client_arp: BTreeMap<Vr, (usize, Duration)>,
    /// Routers the client cannot hear (partitioned from it).
    pub client_cut: BTreeSet<usize>,
    pub log: Vec<Record>,
}

impl Lan {
    pub fn new() -> Lan {
        let t0 = Instant::now();
        Lan {
            t0,
            now: t0,
            latency: Duration::from_micros(100),
            routers: Vec::new(),
            wire: Vec::new(),
            seq: 0,
            cut: BTreeSet::new(),
            client_arp: BTreeMap::new(),
            client_cut: BTreeSet::new(),
            log: Vec::new(),
        }
    }

    /// Adds a router (not started) with every instance on interface 0.
    pub fn router(&mut self, name: &str, configs: Vec<InstanceConfig>) -> usize {
        self.router_on(name, configs.into_iter().map(|c| (0, c)).collect())
    }

    /// Adds a router (not started) with instances on the given interfaces.
    pub fn router_on(&mut self, name: &str, configs: Vec<(usize, InstanceConfig)>) -> usize {
        let (ifaces, configs): (Vec<usize>, Vec<InstanceConfig>) = configs.into_iter().unzip();
        let instances = configs
            .iter()
            .map(|c| Instance::new(c.clone()).expect("valid test config"))
            .collect();
        self.routers.push(Router {
            name: name.to_string(),
            configs,
            instances,
            ifaces,
            groups: Vec::new(),
            alive: true,
            link_up: true,
            ifaces_down: BTreeSet::new(),
            holds_vips: BTreeSet::new(),
            addrs: BTreeSet::new(),
        });
        self.routers.len() - 1
    }

    /// Puts instances of router `r` in a sync group (before starting them).
    pub fn group(&mut self, r: usize, members: Vec<usize>) -> usize {
        self.routers[r].groups.push((SyncGroup::new(), members));
        let g = self.routers[r].groups.len() - 1;
        self.settle(r, g, None);
        g
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    // ----- events on routers

    pub fn start(&mut self, r: usize) {
        self.each_instance(r, Event::Startup);
    }

    /// SIGTERM: every instance shuts down (priority 0 from masters).
    pub fn stop(&mut self, r: usize) {
        self.each_instance(r, Event::Shutdown);
        self.routers[r].alive = false;
    }

    /// SIGKILL: the process vanishes, its addresses stay configured.
    pub fn crash(&mut self, r: usize) {
        self.routers[r].alive = false;
    }

    /// A new process with fresh instances (and sync groups), started now.
    pub fn restart(&mut self, r: usize) {
        let router = &mut self.routers[r];
        router.instances = router
            .configs
            .iter()
            .map(|c| Instance::new(c.clone()).expect("valid test config"))
            .collect();
        for (group, _) in &mut router.groups {
            *group = SyncGroup::new();
        }
        router.alive = true;
        for g in 0..self.routers[r].groups.len() {
            self.settle(r, g, None);
        }
        for i in 0..self.routers[r].instances.len() {
            if !self.routers[r].iface_up(self.routers[r].ifaces[i]) {
                self.event(r, i, Event::InterfaceDown);
            }
        }
        self.start(r);
    }

    pub fn link_down(&mut self, r: usize) {
        self.routers[r].link_up = false;
        self.each_instance(r, Event::InterfaceDown);
    }

    pub fn link_up(&mut self, r: usize) {
        self.routers[r].link_up = true;
        for i in 0..self.routers[r].instances.len() {
            if self.routers[r].iface_up(self.routers[r].ifaces[i]) {
                self.event(r, i, Event::InterfaceUp);
            }
        }
    }

    /// One interface of router `r` loses its link: its instances get `InterfaceDown`.
    pub fn iface_down(&mut self, r: usize, iface: usize) {
        self.routers[r].ifaces_down.insert(iface);
        for i in 0..self.routers[r].instances.len() {
            if self.routers[r].ifaces[i] == iface {
                self.event(r, i, Event::InterfaceDown);
            }
        }
    }

    pub fn iface_up(&mut self, r: usize, iface: usize) {
        self.routers[r].ifaces_down.remove(&iface);
        for i in 0..self.routers[r].instances.len() {
            if self.routers[r].ifaces[i] == iface && self.routers[r].iface_up(iface) {
                self.event(r, i, Event::InterfaceUp);
            }
        }
    }

    /// A reload of one instance's configuration, applied like the driver would: address
    /// changes of a master first, then the instance's actions.
    pub fn reconfigure(
        &mut self,
        r: usize,
        i: usize,
        cfg: InstanceConfig,
    ) -> Result<Reconfigured, ReconfigureError> {
        let now = self.now;
        let result = self.routers[r].instances[i].reconfigure(now, cfg.clone());
        if let Ok(done) = &result {
            self.routers[r].configs[i] = cfg;
            let router = &mut self.routers[r];
            for a in &done.remove_vips {
                router.addrs.remove(a);
            }
            router.addrs.extend(done.add_vips.iter().copied());
        }
        self.after(r, i);
        result
    }

    /// Cuts (or heals) the path between two routers without any router noticing.
    pub fn partition(&mut self, a: usize, b: usize, cut: bool) {
        let key = (a.min(b), a.max(b));
        if cut {
            self.cut.insert(key);
        } else {
            self.cut.remove(&key);
        }
    }

    pub fn event(&mut self, r: usize, i: usize, event: Event<'_>) {
        if !self.routers[r].alive {
            return;
        }
        let now = self.now;
        self.routers[r].instances[i].handle(now, event);
        self.after(r, i);
    }

    /// After anything happened to instance `i`: settle its sync group, then perform the
    /// actions of every member, then the group's notifications (the driver's order).
    fn after(&mut self, r: usize, i: usize) {
        match self.routers[r].group_of(i) {
            None => self.drain(r, i),
            Some(g) => self.settle(r, g, Some(i)),
        }
    }

    /// Settles group `g`; drains `first` (the member something happened to) before the
    /// others, so that the log keeps the order of the transitions.
    fn settle(&mut self, r: usize, g: usize, first: Option<usize>) {
        let now = self.now;
        let router = &mut self.routers[r];
        let members = router.groups[g].1.clone();
        {
            let (group, _) = &mut router.groups[g];
            let mut refs: Vec<&mut Instance> = router
                .instances
                .iter_mut()
                .enumerate()
                .filter(|(k, _)| members.contains(k))
                .map(|(_, inst)| inst)
                .collect();
            group.settle(now, &mut refs);
        }
        // The group's invariant after every settle: its running members agree with it.
        let router = &self.routers[r];
        let state = router.groups[g].0.state();
        for &m in &members {
            let inst = &router.instances[m];
            let agrees = match inst.state() {
                State::Initialize => true,
                s => s == state,
            };
            assert!(
                agrees,
                "{}: member {m} is {} in a {state} group at {:?}",
                router.name,
                inst.state(),
                self.elapsed()
            );
        }
        let others = members.iter().copied().filter(|&m| Some(m) != first);
        for m in first.into_iter().chain(others) {
            self.drain(r, m);
        }
        while let Some(t) = self.routers[r].groups[g].0.poll_transition() {
            self.log.push(Record {
                at: self.elapsed(),
                node: r,
                vr: GROUP,
                what: Happened::Group(t),
            });
        }
    }

    fn each_instance(&mut self, r: usize, event: Event<'_>) {
        for i in 0..self.routers[r].instances.len() {
            self.event(r, i, event);
        }
    }

    // ----- time

    /// Runs everything due up to `elapsed` (since t0), in time order.
    pub fn run_until(&mut self, elapsed: Duration) {
        let end = self.t0 + elapsed;
        loop {
            let next_packet = self.wire.iter().map(|p| (p.deliver_at, p.seq)).min();
            let next_timer = self
                .routers
                .iter()
                .enumerate()
                .filter(|(_, r)| r.alive)
                .flat_map(|(ri, r)| {
                    r.instances
                        .iter()
                        .enumerate()
                        .filter_map(move |(ii, inst)| inst.poll_timeout().map(|t| (t, ri, ii)))
                })
                .min();
            // Packets before timers at the same instant: what arrived is processed first.
            let take_packet = match (next_packet, next_timer) {
                (Some((p, _)), Some((t, _, _))) => p <= t,
                (Some(_), None) => true,
                _ => false,
            };
            if take_packet {
                let (at, seq) = next_packet.expect("checked");
                if at > end {
                    break;
                }
                self.now = at;
                let idx = self
                    .wire
                    .iter()
                    .position(|p| p.seq == seq)
                    .expect("present");
                let packet = self.wire.remove(idx);
                self.deliver(packet);
            } else if let Some((at, r, i)) = next_timer {
                if at > end {
                    break;
                }
                self.now = at;
                self.routers[r].instances[i].handle_timeout(at);
                self.after(r, i);
            } else {
                break;
            }
        }
        self.now = end;
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until);
    }

    fn deliver(&mut self, p: Packet) {
        for r in 0..self.routers.len() {
            if r == p.from
                || !self.routers[r].alive
                || !self.routers[r].iface_up(p.iface)
                || !self.routers[p.from].iface_up(p.iface)
                || self.cut.contains(&(r.min(p.from), r.max(p.from)))
            {
                continue;
            }
            for i in 0..self.routers[r].instances.len() {
                if self.routers[r].ifaces[i] != p.iface {
                    continue;
                }
                let inst = &self.routers[r].instances[i];
                let vr = Vr::of(inst.config());
                let for_us = if p.dst.is_multicast() {
                    // The driver demultiplexes by family and VRID (read from the header).
                    vr.ipv6 == p.src.is_ipv6() && p.payload.get(1) == Some(&vr.vrid)
                } else {
                    inst.config().primary_address == p.dst
                };
                if for_us {
                    let now = self.now;
                    self.routers[r].instances[i].handle(
                        now,
                        Event::AdvertReceived {
                            src: p.src,
                            dst: p.dst,
                            ttl: 255,
                            bytes: &p.payload,
                        },
                    );
                    self.after(r, i);
                }
            }
        }
    }

    fn drain(&mut self, r: usize, i: usize) {
        let vr = Vr::of(self.routers[r].instances[i].config());
        let iface = self.routers[r].ifaces[i];
        let vips = self.routers[r].instances[i]
            .config()
            .virtual_addresses
            .clone();
        while let Some(action) = self.routers[r].instances[i].poll_action() {
            let what = match action {
                Action::SendAdvert(out) => {
                    for d in out.datagrams {
                        self.seq += 1;
                        self.wire.push(Packet {
                            deliver_at: self.now + self.latency,
                            seq: self.seq,
                            from: r,
                            iface,
                            src: out.src,
                            dst: d.dst,
                            payload: d.payload,
                        });
                    }
                    Happened::Sent {
                        priority: out.advert.priority,
                    }
                }
                Action::AddVips { .. } => {
                    self.routers[r].holds_vips.insert(vr);
                    self.routers[r].addrs.extend(vips.iter().copied());
                    Happened::AddVips
                }
                Action::RemoveVips => {
                    self.routers[r].holds_vips.remove(&vr);
                    for a in &vips {
                        self.routers[r].addrs.remove(a);
                    }
                    Happened::RemoveVips
                }
                Action::Announce => {
                    if self.routers[r].iface_up(iface) && !self.client_cut.contains(&r) {
                        let since = self.elapsed();
                        self.client_arp.insert(vr, (r, since));
                    }
                    Happened::Announce
                }
                Action::Notify(t) => Happened::Notify(t),
                Action::Dropped { reason, .. } => Happened::Dropped(reason.to_string()),
            };
            self.log.push(Record {
                at: self.elapsed(),
                node: r,
                vr,
                what,
            });
        }
    }

    // ----- observations

    pub fn state(&self, r: usize, i: usize) -> State {
        self.routers[r].instances[i].state()
    }

    pub fn inst(&self, r: usize, i: usize) -> &Instance {
        &self.routers[r].instances[i]
    }

    /// Routers whose instance `i` is master.
    pub fn masters(&self, i: usize) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&r| self.routers[r].alive && self.state(r, i) == State::Master)
            .collect()
    }

    /// When router `r`'s instance for `vr` last became master (since t0).
    pub fn became_master_at(&self, r: usize, vr: Vr) -> Option<Duration> {
        self.log
            .iter()
            .rev()
            .find(|rec| {
                rec.node == r
                    && rec.vr == vr
                    && matches!(rec.what, Happened::Notify(t) if t.to == State::Master)
            })
            .map(|rec| rec.at)
    }

    /// Records of one router and virtual router, after `since`.
    pub fn records(&self, r: usize, vr: Vr, since: Duration) -> Vec<(Duration, Happened)> {
        self.log
            .iter()
            .filter(|rec| rec.node == r && rec.vr == vr && rec.at >= since)
            .map(|rec| (rec.at, rec.what.clone()))
            .collect()
    }

    /// Group transitions of router `r` after `since`.
    pub fn group_records(&self, r: usize, since: Duration) -> Vec<(Duration, GroupTransition)> {
        self.log
            .iter()
            .filter(|rec| rec.node == r && rec.at >= since)
            .filter_map(|rec| match rec.what {
                Happened::Group(t) => Some((rec.at, t)),
                _ => None,
            })
            .collect()
    }

    /// State changes (notifications) of router `r`'s instance for `vr` after `since`.
    pub fn transitions(&self, r: usize, vr: Vr, since: Duration) -> Vec<(Duration, Transition)> {
        self.records(r, vr, since)
            .into_iter()
            .filter_map(|(at, h)| match h {
                Happened::Notify(t) => Some((at, t)),
                _ => None,
            })
            .collect()
    }

    /// The log, readable, for failure messages.
    pub fn dump(&self) -> String {
        self.log
            .iter()
            .map(|rec| {
                format!(
                    "{:>12.6} {} vrid {}{} {:?}",
                    rec.at.as_secs_f64(),
                    self.routers[rec.node].name,
                    rec.vr.vrid,
                    if rec.vr.ipv6 { "/v6" } else { "" },
                    rec.what
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
