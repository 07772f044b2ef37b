//! A virtual LAN for scenario tests: routers holding [`Instance`]s, a wire that delivers
//! adverts after a fixed latency, a client whose neighbour cache follows the GARPs, and
//! faults (crash, link down, partition). Everything runs on virtual time, in a total,
//! deterministic order.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use keeper_vrrp::{Action, Event, Family, Instance, InstanceConfig, State, Transition};

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
    Sent { priority: u8 },
    AddVips,
    RemoveVips,
    Announce,
    Notify(Transition),
    Dropped(String),
}

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
    /// The process runs (false after a crash).
    pub alive: bool,
    /// The link carries packets.
    pub link_up: bool,
    /// Addresses configured on the interface, per virtual router (they survive a crash).
    pub holds_vips: BTreeSet<Vr>,
}

struct Packet {
    deliver_at: Instant,
    seq: u64,
    from: usize,
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

    /// Adds a router (not started) and returns its index.
    pub fn router(&mut self, name: &str, configs: Vec<InstanceConfig>) -> usize {
        let instances = configs
            .iter()
            .map(|c| Instance::new(c.clone()).expect("valid test config"))
            .collect();
        self.routers.push(Router {
            name: name.to_string(),
            configs,
            instances,
            alive: true,
            link_up: true,
            holds_vips: BTreeSet::new(),
        });
        self.routers.len() - 1
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

    /// A new process with fresh instances, started now.
    pub fn restart(&mut self, r: usize) {
        let router = &mut self.routers[r];
        router.instances = router
            .configs
            .iter()
            .map(|c| Instance::new(c.clone()).expect("valid test config"))
            .collect();
        router.alive = true;
        if !router.link_up {
            self.each_instance(r, Event::InterfaceDown);
        }
        self.start(r);
    }

    pub fn link_down(&mut self, r: usize) {
        self.routers[r].link_up = false;
        self.each_instance(r, Event::InterfaceDown);
    }

    pub fn link_up(&mut self, r: usize) {
        self.routers[r].link_up = true;
        self.each_instance(r, Event::InterfaceUp);
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
        self.drain(r, i);
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
                self.drain(r, i);
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
                || !self.routers[r].link_up
                || !self.routers[p.from].link_up
                || self.cut.contains(&(r.min(p.from), r.max(p.from)))
            {
                continue;
            }
            for i in 0..self.routers[r].instances.len() {
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
                    self.drain(r, i);
                }
            }
        }
    }

    fn drain(&mut self, r: usize, i: usize) {
        let vr = Vr::of(self.routers[r].instances[i].config());
        while let Some(action) = self.routers[r].instances[i].poll_action() {
            let what = match action {
                Action::SendAdvert(out) => {
                    for d in out.datagrams {
                        self.seq += 1;
                        self.wire.push(Packet {
                            deliver_at: self.now + self.latency,
                            seq: self.seq,
                            from: r,
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
                    Happened::AddVips
                }
                Action::RemoveVips => {
                    self.routers[r].holds_vips.remove(&vr);
                    Happened::RemoveVips
                }
                Action::Announce => {
                    if self.routers[r].link_up && !self.client_cut.contains(&r) {
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
