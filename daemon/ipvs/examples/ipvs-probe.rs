//! Small tool that drives a real kernel's IPVS through `keeper-ipvs`; run inside a VM (the
//! host has no IPVS). Used to capture the test fixtures (tests/vm/capture.sh) and as a smoke
//! test of the client on real kernels.
//!
//! usage: ipvs-probe apply-scenario          program the scenario table (pipelined), re-plan
//!        ipvs-probe dump PREFIX             dump info/config/table/daemons; raw answers to
//!                                           PREFIX-*.hex, listings to PREFIX-*.txt/.json
//!        ipvs-probe errors PREFIX           a batch with refused entries; raw ACKs to PREFIX.hex
//!        ipvs-probe daemon start|stop IFACE SYNCID
//!        ipvs-probe load SERVICES DESTS     program SERVICES x DESTS and time it
//!        ipvs-probe flush

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use keeper_ipvs::format::{self, ListFormat};
use keeper_ipvs::{
    AddressFamily, DaemonState, Destination, Error, ForwardMethod, IpvsClient, Netmask,
    OwnershipPolicy, Protocol, Request, Scheduler, Service, ServiceKey, SyncDaemon, Table, Tunnel,
    TunnelType, VirtualService, plan,
};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, last))
}

/// A table that uses every kind of service, scheduler flag and forwarding method.
fn scenario() -> Table {
    let mut t = Table::new();
    let vip = v4(10, 77, 0, 100);
    let rs1 = v4(10, 77, 0, 21);
    let rs2 = v4(10, 77, 0, 22);
    t.insert(
        VirtualService::new(Service::new(ServiceKey::tcp(vip, 80), Scheduler::Wrr))
            .with_destination(Destination::new(rs1, 80, ForwardMethod::Route, 3))
            .with_destination(Destination {
                upper_threshold: 1000,
                lower_threshold: 500,
                ..Destination::new(rs2, 80, ForwardMethod::Route, 1)
            })
            // Local real server: lets the VM itself send traffic through IPVS.
            .with_destination(Destination::new(
                v4(10, 77, 0, 11),
                8080,
                ForwardMethod::Masq,
                0,
            )),
    );
    let mut sh = Service::new(ServiceKey::udp(vip, 53), Scheduler::Sh);
    sh.flags.sched1 = true;
    sh.flags.sched2 = true;
    t.insert(
        VirtualService::new(sh)
            .with_destination(Destination::new(rs1, 5353, ForwardMethod::Masq, 1))
            .with_destination(Destination {
                tunnel: Tunnel {
                    kind: TunnelType::Gue,
                    port: 6080,
                    flags: 1,
                },
                ..Destination::new(rs2, 53, ForwardMethod::Tunnel, 2)
            }),
    );
    let mut persist = Service::new(
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: vip,
            port: 3868,
        },
        Scheduler::Lc,
    )
    .persistent(600);
    persist.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
    t.insert(
        VirtualService::new(persist).with_destination(Destination::new(
            rs1,
            3868,
            ForwardMethod::Route,
            1,
        )),
    );
    let mut sip = Service::new(ServiceKey::udp(vip, 5060), Scheduler::Rr).persistent(360);
    sip.pe_name = Some("sip".to_string());
    sip.flags.one_packet = true;
    t.insert(VirtualService::new(sip));
    let mut mh = Service::new(ServiceKey::fwmark(AddressFamily::Inet, 7), Scheduler::Mh);
    mh.flags.sched1 = true;
    t.insert(
        VirtualService::new(mh)
            .with_destination(Destination::new(rs1, 0, ForwardMethod::Route, 1))
            .with_destination(Destination::new(rs2, 0, ForwardMethod::Route, 1)),
    );
    let mut s6 = Service::new(ServiceKey::tcp(v6(0x100), 443), Scheduler::Wlc).persistent(300);
    s6.netmask = Netmask::V6(64);
    t.insert(
        VirtualService::new(s6)
            .with_destination(Destination::new(v6(0x21), 443, ForwardMethod::Route, 5))
            .with_destination(Destination::new(v6(0x22), 8443, ForwardMethod::Masq, 0)),
    );
    t.insert(VirtualService::new(Service::new(
        ServiceKey::fwmark(AddressFamily::Inet6, 9),
        Scheduler::Fo,
    )));
    for (port, sched) in [
        (1001, Scheduler::Rr),
        (1002, Scheduler::Lblc),
        (1003, Scheduler::Lblcr),
        (1004, Scheduler::Dh),
        (1005, Scheduler::Sed),
        (1006, Scheduler::Nq),
        (1007, Scheduler::Ovf),
    ] {
        t.insert(VirtualService::new(Service::new(
            ServiceKey::tcp(v4(10, 77, 0, 101), port),
            sched,
        )));
    }
    t
}

fn hex_lines(datagrams: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for d in datagrams {
        for b in d {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\n');
    }
    s
}

fn write(path: &str, content: &str) -> Result<(), Error> {
    std::fs::write(path, content).map_err(Error::Io)
}

async fn dump(c: &mut IpvsClient, prefix: &str) -> Result<(), Error> {
    c.set_capture(true);
    let info = c.info().await?;
    write(
        &format!("{prefix}-info.hex"),
        &hex_lines(&c.take_captured()),
    )?;
    let t = c.timeouts().await?;
    write(
        &format!("{prefix}-config.hex"),
        &hex_lines(&c.take_captured()),
    )?;
    println!(
        "timeouts tcp {:?} tcpfin {:?} udp {:?}",
        t.tcp, t.tcp_fin, t.udp
    );
    let services = c.services().await?;
    write(
        &format!("{prefix}-services.hex"),
        &hex_lines(&c.take_captured()),
    )?;
    let mut table = Table::new();
    let mut dests_hex = String::new();
    for s in services {
        let key = s.key;
        let mut vs = VirtualService::new(s);
        for d in c.destinations(&key).await? {
            vs.destinations.insert(d.key(), d);
        }
        dests_hex.push_str(&format!("# {key}\n"));
        dests_hex.push_str(&hex_lines(&c.take_captured()));
        table.insert(vs);
    }
    write(&format!("{prefix}-dests.hex"), &dests_hex)?;
    let daemons = c.daemons().await?;
    write(
        &format!("{prefix}-daemons.hex"),
        &hex_lines(&c.take_captured()),
    )?;
    for d in &daemons {
        println!("daemon {d:?}");
    }
    c.set_capture(false);
    for (name, f) in [
        ("Ln", ListFormat::Plain),
        ("stats", ListFormat::Stats),
        ("rate", ListFormat::Rate),
    ] {
        write(
            &format!("{prefix}-{name}.txt"),
            &format::list(Some(&info), &table, f),
        )?;
    }
    write(
        &format!("{prefix}.json"),
        &format::json(Some(&info), &table),
    )?;
    let (s, d) = table.counts();
    println!("dumped {s} services, {d} destinations");
    Ok(())
}

async fn run(args: &[String]) -> Result<(), Error> {
    let mut c = IpvsClient::connect().await?;
    println!("IPVS family id {}", c.family_id());
    match args.first().map(String::as_str) {
        Some("apply-scenario") => {
            let want = scenario();
            let have = c.table().await?;
            let ops = plan(&want, &have, &OwnershipPolicy::default());
            let start = Instant::now();
            c.apply_ops(&ops).await?;
            println!("applied {} ops in {:?}", ops.len(), start.elapsed());
            let again = plan(&want, &c.table().await?, &OwnershipPolicy::default());
            println!("replan: {} ops", again.len());
            for op in &again {
                println!("  leftover: {op}");
            }
        }
        Some("dump") => dump(&mut c, args.get(1).map_or("dump", String::as_str)).await?,
        Some("errors") => {
            let prefix = args.get(1).map_or("errors", String::as_str);
            let vip = v4(10, 77, 0, 100);
            let reqs = vec![
                Request::NewService(Service::new(ServiceKey::tcp(vip, 80), Scheduler::Wrr)),
                Request::NewDest(
                    ServiceKey::tcp(vip, 9999),
                    Destination::new(v4(10, 77, 0, 21), 80, ForwardMethod::Route, 1),
                ),
                Request::SetService(Service::new(
                    ServiceKey::tcp(vip, 80),
                    Scheduler::Other("nosuch".into()),
                )),
                Request::Zero(None),
            ];
            c.set_capture(true);
            let r = c.apply(&reqs).await;
            write(&format!("{prefix}.hex"), &hex_lines(&c.take_captured()))?;
            match r {
                Err(Error::Rejected { rejections, total }) => {
                    println!("{} of {total} rejected:", rejections.len());
                    for rej in rejections {
                        println!("  #{} {rej}", rej.index);
                    }
                }
                other => println!("unexpected: {other:?}"),
            }
        }
        Some("daemon") => {
            let state = match args.get(1).map(String::as_str) {
                Some("start-master") => Some(DaemonState::Master),
                Some("start-backup") => Some(DaemonState::Backup),
                _ => None,
            };
            let ifn = args.get(2).map_or("dummy0", String::as_str);
            let id = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(7);
            match state {
                Some(s) => {
                    c.execute(&Request::NewDaemon(SyncDaemon::new(s, ifn, id)))
                        .await?
                }
                None => {
                    c.execute(&Request::DelDaemon(DaemonState::Master)).await?;
                    c.execute(&Request::DelDaemon(DaemonState::Backup)).await?;
                }
            }
        }
        Some("load") => {
            let n: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
            let m: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
            let mut want = Table::new();
            for i in 0..n {
                let vip = v4(10, 78, (i / 250) as u8, (i % 250) as u8 + 1);
                let mut vs =
                    VirtualService::new(Service::new(ServiceKey::tcp(vip, 80), Scheduler::Wrr));
                for j in 0..m {
                    vs = vs.with_destination(Destination::new(
                        v4(10, 79, (j / 250) as u8, (j % 250) as u8 + 1),
                        80,
                        ForwardMethod::Route,
                        1,
                    ));
                }
                want.insert(vs);
            }
            let start = Instant::now();
            let have = c.table().await?;
            let ops = plan(&want, &have, &OwnershipPolicy::default());
            let planned = start.elapsed();
            c.apply_ops(&ops).await?;
            println!(
                "load {n}x{m}: {} ops, dump+plan {planned:?}, total {:?}",
                ops.len(),
                start.elapsed()
            );
            let start = Instant::now();
            let (s, d) = c.table().await?.counts();
            println!(
                "dump of {s} services / {d} destinations: {:?}",
                start.elapsed()
            );
        }
        Some("flush") => c.execute(&Request::Flush).await?,
        _ => {
            eprintln!(
                "usage: ipvs-probe apply-scenario | dump PREFIX | errors PREFIX | daemon start-master|start-backup|stop IFACE ID | load N M | flush"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(&args)) {
        eprintln!("ipvs-probe: {e}");
        std::process::exit(1);
    }
}
