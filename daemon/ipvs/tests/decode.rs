//! Decoding real kernel answers (Debian 6.1 kernel in QEMU, captured by tests/vm/capture.sh),
//! the listings against ipvsadm's own output of the same table, and robustness on bad input.

mod common;
use common::*;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keeper_ipvs::codec::decode;
use keeper_ipvs::format::{self, ListFormat};
use keeper_ipvs::*;
use proptest::prelude::*;

const FAM: u16 = 0x20;

/// Every IPVS-family message of a fixture, with the datagram section names.
fn genl_msgs(name: &str) -> Vec<(String, decode::GenlMsg)> {
    let mut out = Vec::new();
    for (section, d) in datagrams(name) {
        for m in decode::split(&d).expect("split") {
            if m.ty == FAM {
                out.push((section.clone(), decode::genl(m.payload).expect("genl")));
            }
        }
    }
    out
}

fn info(prefix: &str) -> Info {
    let (_, g) = &genl_msgs(&format!("{prefix}-info.hex"))[0];
    decode::info(g).expect("info")
}

/// Rebuild the table the way the client does from the captured dumps.
fn table(prefix: &str) -> Table {
    let mut t = Table::new();
    for (_, g) in genl_msgs(&format!("{prefix}-services.hex")) {
        t.insert(VirtualService::new(
            decode::service_reply(&g).expect("service"),
        ));
    }
    for (section, g) in genl_msgs(&format!("{prefix}-dests.hex")) {
        let key = *t
            .services
            .keys()
            .find(|k| k.to_string() == section)
            .unwrap_or_else(|| panic!("no service {section}"));
        let d = decode::dest_reply(&g, key.af()).expect("dest");
        if let Some(vs) = t.services.get_mut(&key) {
            vs.destinations.insert(d.key(), d);
        }
    }
    t
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn info_and_config_replies() {
    let i = info("t1");
    assert_eq!((i.version, i.conn_tab_size), (0x010201, 4096));
    assert_eq!(i.version_string(), "1.2.1");
    let (_, g) = &genl_msgs("t1-config.hex")[0];
    assert_eq!(g.cmd, consts::IpvsCmd::SetConfig);
    let t = decode::timeouts(g).expect("timeouts");
    assert_eq!((t.tcp, t.tcp_fin, t.udp), (Some(900), Some(120), Some(300)));
}

#[test]
fn service_dump_of_a_real_kernel() {
    let t = table("t1");
    assert_eq!(t.counts(), (14, 10));
    let vip = v4(10, 77, 0, 100);
    let web = &t.services[&ServiceKey::tcp(vip, 80)];
    assert_eq!(web.service.scheduler, Scheduler::Wrr);
    assert_eq!(
        web.service.flags,
        ServiceFlags::default(),
        "HASHED is dropped"
    );
    let st = web.service.stats.as_deref().copied().expect("stats");
    assert_eq!(
        (st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes),
        (5, 34, 26, 2178, 2457)
    );
    let local = &web.destinations[&DestKey {
        addr: v4(10, 77, 0, 11),
        port: 8080,
    }];
    assert_eq!(
        (local.forward, local.weight, local.conns.inactive),
        (ForwardMethod::Masq, 100, 5)
    );
    let rs2 = &web.destinations[&DestKey {
        addr: v4(10, 77, 0, 22),
        port: 80,
    }];
    assert_eq!((rs2.upper_threshold, rs2.lower_threshold), (1000, 500));

    let sh = &t.services[&ServiceKey::udp(vip, 53)].service;
    assert!(sh.flags.sched1 && sh.flags.sched2 && !sh.flags.persistent);
    let tun = &t.services[&ServiceKey::udp(vip, 53)].destinations[&DestKey {
        addr: v4(10, 77, 0, 22),
        port: 53,
    }];
    assert_eq!(tun.forward, ForwardMethod::Tunnel);
    assert_eq!(
        tun.tunnel,
        Tunnel {
            kind: TunnelType::Gue,
            port: 6080,
            flags: 1
        }
    );

    let sctp = &t.services[&ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: vip,
        port: 3868,
    }]
        .service;
    assert!(sctp.flags.persistent);
    assert_eq!(
        (sctp.timeout, sctp.netmask),
        (600, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)))
    );
    let sip = &t.services[&ServiceKey::udp(vip, 5060)].service;
    assert_eq!(sip.pe_name.as_deref(), Some("sip"));
    assert!(sip.flags.one_packet);
    let v6 = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100));
    let s6 = &t.services[&ServiceKey::tcp(v6, 443)];
    assert_eq!(s6.service.netmask, Netmask::V6(64));
    assert_eq!(s6.destinations.len(), 2);
    let mh = &t.services[&ServiceKey::fwmark(AddressFamily::Inet, 7)].service;
    assert!(mh.scheduler == Scheduler::Mh && mh.flags.sched1 && !mh.flags.sched2);
    assert_eq!(
        t.services[&ServiceKey::fwmark(AddressFamily::Inet6, 9)]
            .service
            .scheduler,
        Scheduler::Fo
    );
    for (port, s) in [
        (1002, Scheduler::Lblc),
        (1003, Scheduler::Lblcr),
        (1004, Scheduler::Dh),
        (1005, Scheduler::Sed),
        (1006, Scheduler::Nq),
        (1007, Scheduler::Ovf),
    ] {
        assert_eq!(
            t.services[&ServiceKey::tcp(v4(10, 77, 0, 101), port)]
                .service
                .scheduler,
            s
        );
    }
}

#[test]
fn daemon_dump() {
    let d: Vec<SyncDaemon> = genl_msgs("t1-daemons.hex")
        .iter()
        .map(|(_, g)| decode::daemon_reply(g).expect("daemon"))
        .collect();
    assert_eq!(
        d,
        vec![SyncDaemon {
            sync_maxlen: Some(1472),
            mcast_group: Some(v4(224, 0, 0, 82)),
            mcast_port: Some(8849),
            mcast_ttl: Some(2),
            ..SyncDaemon::new(DaemonState::Backup, "dummy0", 7)
        }]
    );
}

#[test]
fn master_and_backup_daemons() {
    // From a later capture run, with the master daemon running too (its multicast route set).
    let d: Vec<SyncDaemon> = genl_msgs("daemons-master-backup.hex")
        .iter()
        .map(|(_, g)| decode::daemon_reply(g).expect("daemon"))
        .collect();
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0],
        SyncDaemon {
            sync_maxlen: Some(1472),
            mcast_group: Some(v4(224, 0, 0, 81)),
            mcast_port: Some(8848),
            mcast_ttl: Some(1),
            ..SyncDaemon::new(DaemonState::Master, "dummy0", 7)
        }
    );
    assert_eq!(d[1].state, DaemonState::Backup);
}

#[test]
fn refusals_in_a_batch_are_tied_to_their_requests() {
    // Four requests in one sendmsg: EEXIST, ESRCH, ENOENT, then an ACK.
    let acks: Vec<decode::Ack> = datagrams("errors.hex")
        .iter()
        .flat_map(|(_, d)| {
            decode::split(d)
                .expect("split")
                .into_iter()
                .map(|m| decode::ack(&m).expect("ack"))
                .collect::<Vec<_>>()
        })
        .collect();
    let errnos: Vec<i32> = acks.iter().map(|a| a.errno).collect();
    assert_eq!(errnos, vec![17, 3, 2, 0]);
    let seqs: Vec<u32> = acks.iter().map(|a| a.request_seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[test]
fn plain_listing_matches_ipvsadm() {
    let got = format::list(Some(&info("t1")), &table("t1"), ListFormat::Plain);
    assert_eq!(got, fixture_text("t1-ipvsadm-Ln.txt"));
}

#[test]
fn stats_listing_matches_ipvsadm() {
    for p in ["t1", "t2"] {
        let got = format::list(Some(&info(p)), &table(p), ListFormat::Stats);
        assert_eq!(got, fixture_text(&format!("{p}-ipvsadm-stats.txt")), "{p}");
    }
}

#[test]
fn rate_listing_matches_ipvsadm() {
    let got = format::list(Some(&info("t2")), &table("t2"), ListFormat::Rate);
    assert_eq!(got, fixture_text("t2-ipvsadm-rate.txt"));
}

#[test]
fn json_listing_round_trips() {
    let t = table("t1");
    let text = format::json(Some(&info("t1")), &t);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["version"], "1.2.1");
    assert_eq!(v["services"].as_array().map(Vec::len), Some(14));
    let back: Table = serde_json::from_value(v).expect("table from json");
    assert_eq!(back, t);
}

#[test]
fn errors_name_the_attribute() {
    let bad_port = genl(
        4,
        &[nest(
            1,
            &[
                nla(1, &u16n(2)),
                nla(2, &u16n(6)),
                nla(3, &addr4([1, 2, 3, 4])),
                nla(4, &[0, 80, 0]),
            ],
        )],
    );
    let g = decode::genl(&bad_port).expect("genl");
    assert_eq!(
        decode::service_reply(&g),
        Err(DecodeError::Length {
            attr: "IPVS_SVC_ATTR_PORT",
            expected: "2",
            got: 3
        })
    );
    let no_af = genl(4, &[nest(1, &[nla(5, &u32n(7))])]);
    let g = decode::genl(&no_af).expect("genl");
    assert_eq!(
        decode::service_reply(&g),
        Err(DecodeError::Missing {
            attr: "IPVS_SVC_ATTR_AF"
        })
    );
    let bad_af = genl(4, &[nest(1, &[nla(1, &u16n(99)), nla(5, &u32n(7))])]);
    let g = decode::genl(&bad_af).expect("genl");
    assert!(matches!(
        decode::service_reply(&g),
        Err(DecodeError::Invalid {
            attr: "IPVS_SVC_ATTR_AF",
            ..
        })
    ));
    let bad_fwd = genl(
        5,
        &[nest(
            2,
            &[
                nla(1, &addr4([1, 2, 3, 4])),
                nla(2, &be16(80)),
                nla(3, &u32n(7)),
                nla(4, &u32n(1)),
                nla(5, &u32n(0)),
                nla(6, &u32n(0)),
            ],
        )],
    );
    let g = decode::genl(&bad_fwd).expect("genl");
    assert!(matches!(
        decode::dest_reply(&g, AddressFamily::Inet),
        Err(DecodeError::Invalid {
            attr: "IPVS_DEST_ATTR_FWD_METHOD",
            ..
        })
    ));
    let no_nul = genl(
        11,
        &[nest(
            3,
            &[nla(1, &u32n(1)), nla(2, b"eth0"), nla(3, &u32n(1))],
        )],
    );
    let g = decode::genl(&no_nul).expect("genl");
    assert!(matches!(
        decode::daemon_reply(&g),
        Err(DecodeError::Invalid {
            attr: "IPVS_DAEMON_ATTR_MCAST_IFN",
            ..
        })
    ));
    assert!(matches!(
        decode::split(&[0x10, 0, 0]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        decode::split(&nlmsg(FAM, 0, 1, &[])[..15]),
        Err(DecodeError::Truncated { .. })
    ));
}

/// Decode everything a datagram could be; the result does not matter, only that it returns.
fn decode_all(d: &[u8]) {
    let Ok(msgs) = decode::split(d) else { return };
    for m in msgs {
        let _ = decode::ack(&m);
        let _ = decode::request(&m);
        let _ = decode::family_id(m.payload);
        if let Ok(g) = decode::genl(m.payload) {
            let _ = decode::service_reply(&g);
            let _ = decode::dest_reply(&g, AddressFamily::Inet);
            let _ = decode::dest_reply(&g, AddressFamily::Inet6);
            let _ = decode::daemon_reply(&g);
            let _ = decode::info(&g);
            let _ = decode::timeouts(&g);
        }
    }
}

fn all_fixture_datagrams() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for p in ["t1", "t2"] {
        for part in ["info", "config", "services", "dests", "daemons"] {
            v.extend(
                datagrams(&format!("{p}-{part}.hex"))
                    .into_iter()
                    .map(|(_, d)| d),
            );
        }
    }
    v.extend(datagrams("errors.hex").into_iter().map(|(_, d)| d));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_bytes_never_panic(d in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&d);
    }

    #[test]
    fn damaged_kernel_answers_never_panic(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let all = all_fixture_datagrams();
        let mut d = pick.get(&all).clone();
        for (at, v) in flips {
            let i = at.index(d.len());
            d[i] = v;
        }
        let keep = cut.index(d.len() + 1);
        d.truncate(keep);
        decode_all(&d);
    }
}
