//! Byte-exact encoding of every request: expected bytes are written out from the UAPI layout
//! (`linux/ip_vs.h`: command and attribute numbers, `struct ip_vs_flags`, network-order ports)
//! with an independent TLV writer, and compared with what ipvsadm 1.31 sent to a real kernel.

mod common;
use common::*;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keeper_ipvs::codec::{self, decode};
use keeper_ipvs::*;

const FAM: u16 = 0x20;
const REQ_ACK: u16 = 0x1 | 0x4;
const REQ_DUMP: u16 = 0x1 | 0x300;

fn vip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 77, 0, 100))
}
fn rs1() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 77, 0, 21))
}
fn tcp80() -> ServiceKey {
    ServiceKey::tcp(vip(), 80)
}

/// IPVS_CMD_ATTR_SERVICE with AF, PROTOCOL, ADDR, PORT for TCP 10.77.0.100:80.
fn svc_key_attrs() -> Vec<Vec<u8>> {
    vec![
        nla(1, &u16n(2)),                 // IPVS_SVC_ATTR_AF = AF_INET
        nla(2, &u16n(6)),                 // IPVS_SVC_ATTR_PROTOCOL = IPPROTO_TCP
        nla(3, &addr4([10, 77, 0, 100])), // IPVS_SVC_ATTR_ADDR (union nf_inet_addr)
        nla(4, &be16(80)),                // IPVS_SVC_ATTR_PORT, network order
    ]
}

fn check(req: &Request, seq: u32, expected: Vec<u8>) {
    let got = req.encode(FAM, seq).expect("encode");
    assert_eq!(hex(&got), hex(&expected), "{req}");
    // And back: the decoder reads the request it wrote.
    let msgs = decode::split(&got).expect("split");
    assert_eq!(msgs.len(), 1);
    assert_eq!(decode::request(&msgs[0]).expect("decode"), *req);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn new_service_is_byte_exact() {
    let s = Service::new(tcp80(), Scheduler::Wrr);
    let mut attrs = svc_key_attrs();
    attrs.push(nla(6, b"wrr\0")); // SCHED_NAME
    attrs.push(nla(7, &[u32n(0), u32n(u32::MAX)].concat())); // FLAGS {flags, mask}
    attrs.push(nla(8, &u32n(0))); // TIMEOUT
    attrs.push(nla(9, &[255, 255, 255, 255])); // NETMASK
    let expected = nlmsg(FAM, REQ_ACK, 7, &genl(1, &[nest(1, &attrs)]));
    // Spelled out once in full, so the helper itself is checked too.
    assert_eq!(
        hex(&expected),
        "68000000 2000 0500 07000000 00000000 \
         01 01 0000 \
         5400 0180 \
         0600 0100 0200 0000 \
         0600 0200 0600 0000 \
         1400 0300 0a4d0064 000000000000000000000000 \
         0600 0400 0050 0000 \
         0800 0600 77727200 \
         0c00 0700 00000000 ffffffff \
         0800 0800 00000000 \
         0800 0900 ffffffff"
            .replace(char::is_whitespace, "")
    );
    check(&Request::NewService(s), 7, expected);
}

#[test]
fn set_service_with_persistence_flags_pe_and_mask() {
    let mut s = Service::new(ServiceKey::udp(vip(), 5060), Scheduler::Sh).persistent(360);
    s.flags.sched1 = true;
    s.flags.sched2 = true;
    s.flags.one_packet = true;
    s.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
    s.pe_name = Some("sip".into());
    let attrs = vec![
        nla(1, &u16n(2)),
        nla(2, &u16n(17)),
        nla(3, &addr4([10, 77, 0, 100])),
        nla(4, &be16(5060)),
        nla(6, b"sh\0"),
        nla(11, b"sip\0"),                                                // PE_NAME
        nla(7, &[u32n(0x1 | 0x4 | 0x8 | 0x10), u32n(u32::MAX)].concat()), // persistent|ops|sched1|sched2
        nla(8, &u32n(360)),
        nla(9, &[255, 255, 255, 0]),
    ];
    check(
        &Request::SetService(s),
        8,
        nlmsg(FAM, REQ_ACK, 8, &genl(2, &[nest(1, &attrs)])),
    );
}

#[test]
fn unacked_requests_differ_only_in_the_ack_flag() {
    // A pipelined batch asks for one ACK, on its last request; the others carry REQUEST alone
    // (the kernel still answers a refusal). Same payload, byte for byte.
    const REQ: u16 = 0x1;
    let d = Destination::new(rs1(), 80, ForwardMethod::Route, 2);
    for req in [
        Request::NewService(Service::new(tcp80(), Scheduler::Wrr)),
        Request::NewDest(tcp80(), d.clone()),
        Request::SetDest(tcp80(), d.clone()),
        Request::DelDest(tcp80(), d.key()),
        Request::DelService(tcp80()),
    ] {
        let acked = req.encode(FAM, 9).expect("encode");
        let unacked = req.encode_unacked(FAM, 9).expect("encode");
        assert_eq!(u16::from_ne_bytes([acked[6], acked[7]]), REQ_ACK, "{req}");
        assert_eq!(u16::from_ne_bytes([unacked[6], unacked[7]]), REQ, "{req}");
        assert_eq!(acked[..6], unacked[..6], "{req}");
        assert_eq!(acked[8..], unacked[8..], "{req}");
        let msgs = decode::split(&unacked).expect("split");
        assert_eq!(decode::request(&msgs[0]).expect("decode"), req);
    }
    // A dump keeps its DUMP flags: it is answered by NLMSG_DONE, never batched.
    let dump = Request::DumpServices
        .encode_unacked(FAM, 3)
        .expect("encode");
    assert_eq!(u16::from_ne_bytes([dump[6], dump[7]]), REQ_DUMP);
}

#[test]
fn ipv6_and_fwmark_services() {
    let k6 = ServiceKey::tcp(
        IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100)),
        443,
    );
    let mut s6 = Service::new(k6, Scheduler::Wlc).persistent(300);
    s6.netmask = Netmask::V6(64);
    let mut a6 = vec![0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
    let attrs = vec![
        nla(1, &u16n(10)),
        nla(2, &u16n(6)),
        nla(3, &a6),
        nla(4, &be16(443)),
        nla(6, b"wlc\0"),
        nla(7, &[u32n(1), u32n(u32::MAX)].concat()),
        nla(8, &u32n(300)),
        nla(9, &u32n(64)), // IPv6: prefix length, host order
    ];
    check(
        &Request::NewService(s6),
        1,
        nlmsg(FAM, REQ_ACK, 1, &genl(1, &[nest(1, &attrs)])),
    );
    a6.clear();
    let fw = ServiceKey::fwmark(AddressFamily::Inet, 7);
    check(
        &Request::DelService(fw),
        2,
        nlmsg(
            FAM,
            REQ_ACK,
            2,
            &genl(3, &[nest(1, &[nla(1, &u16n(2)), nla(5, &u32n(7))])]),
        ),
    );
}

#[test]
fn key_only_service_requests() {
    check(
        &Request::DelService(tcp80()),
        3,
        nlmsg(FAM, REQ_ACK, 3, &genl(3, &[nest(1, &svc_key_attrs())])),
    );
    check(
        &Request::GetService(tcp80()),
        4,
        nlmsg(FAM, REQ_ACK, 4, &genl(4, &[nest(1, &svc_key_attrs())])),
    );
    check(
        &Request::DumpDests(tcp80()),
        5,
        nlmsg(FAM, REQ_DUMP, 5, &genl(8, &[nest(1, &svc_key_attrs())])),
    );
    check(
        &Request::Zero(Some(tcp80())),
        6,
        nlmsg(FAM, REQ_ACK, 6, &genl(16, &[nest(1, &svc_key_attrs())])),
    );
}

#[test]
fn attribute_less_requests() {
    check(
        &Request::DumpServices,
        1,
        nlmsg(FAM, REQ_DUMP, 1, &genl(4, &[])),
    );
    check(
        &Request::DumpDaemons,
        2,
        nlmsg(FAM, REQ_DUMP, 2, &genl(11, &[])),
    );
    check(
        &Request::GetConfig,
        3,
        nlmsg(FAM, REQ_ACK, 3, &genl(13, &[])),
    );
    check(&Request::GetInfo, 4, nlmsg(FAM, REQ_ACK, 4, &genl(15, &[])));
    check(
        &Request::Zero(None),
        5,
        nlmsg(FAM, REQ_ACK, 5, &genl(16, &[])),
    );
    check(&Request::Flush, 6, nlmsg(FAM, REQ_ACK, 6, &genl(17, &[])));
}

fn dest_attrs(fwd: u32, weight: u32, tun: (u8, u16, u16), u: u32, l: u32) -> Vec<Vec<u8>> {
    vec![
        nla(11, &u16n(2)),               // ADDR_FAMILY
        nla(1, &addr4([10, 77, 0, 21])), // ADDR
        nla(2, &be16(80)),               // PORT
        nla(3, &u32n(fwd)),              // FWD_METHOD
        nla(4, &u32n(weight)),           // WEIGHT
        nla(13, &[tun.0]),               // TUN_TYPE (u8)
        nla(14, &be16(tun.1)),           // TUN_PORT (network order)
        nla(15, &u16n(tun.2)),           // TUN_FLAGS
        nla(5, &u32n(u)),                // U_THRESH
        nla(6, &u32n(l)),                // L_THRESH
    ]
}

#[test]
fn destination_requests() {
    let d = Destination::new(rs1(), 80, ForwardMethod::Route, 3);
    check(
        &Request::NewDest(tcp80(), d.clone()),
        10,
        nlmsg(
            FAM,
            REQ_ACK,
            10,
            &genl(
                5,
                &[
                    nest(1, &svc_key_attrs()),
                    nest(2, &dest_attrs(3, 3, (0, 0, 0), 0, 0)),
                ],
            ),
        ),
    );
    let t = Destination {
        tunnel: Tunnel {
            kind: TunnelType::Gue,
            port: 6080,
            flags: 1,
        },
        upper_threshold: 100,
        lower_threshold: 50,
        ..Destination::new(rs1(), 80, ForwardMethod::Tunnel, 0)
    };
    check(
        &Request::SetDest(tcp80(), t),
        11,
        nlmsg(
            FAM,
            REQ_ACK,
            11,
            &genl(
                6,
                &[
                    nest(1, &svc_key_attrs()),
                    nest(2, &dest_attrs(2, 0, (1, 6080, 1), 100, 50)),
                ],
            ),
        ),
    );
    let m = Destination::new(rs1(), 80, ForwardMethod::Masq, 65535);
    check(
        &Request::NewDest(tcp80(), m),
        12,
        nlmsg(
            FAM,
            REQ_ACK,
            12,
            &genl(
                5,
                &[
                    nest(1, &svc_key_attrs()),
                    nest(2, &dest_attrs(0, 65535, (0, 0, 0), 0, 0)),
                ],
            ),
        ),
    );
    check(
        &Request::DelDest(tcp80(), d.key()),
        13,
        nlmsg(
            FAM,
            REQ_ACK,
            13,
            &genl(
                7,
                &[
                    nest(1, &svc_key_attrs()),
                    nest(
                        2,
                        &[
                            nla(11, &u16n(2)),
                            nla(1, &addr4([10, 77, 0, 21])),
                            nla(2, &be16(80)),
                        ],
                    ),
                ],
            ),
        ),
    );
}

#[test]
fn daemon_and_config_requests() {
    let d = SyncDaemon::new(DaemonState::Master, "eth0", 51);
    check(
        &Request::NewDaemon(d),
        20,
        nlmsg(
            FAM,
            REQ_ACK,
            20,
            &genl(
                9,
                &[nest(
                    3,
                    &[nla(1, &u32n(1)), nla(2, b"eth0\0"), nla(3, &u32n(51))],
                )],
            ),
        ),
    );
    let full = SyncDaemon {
        sync_maxlen: Some(1400),
        mcast_group: Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 82))),
        mcast_port: Some(8849),
        mcast_ttl: Some(2),
        ..SyncDaemon::new(DaemonState::Backup, "dummy0", 7)
    };
    check(
        &Request::NewDaemon(full),
        21,
        nlmsg(
            FAM,
            REQ_ACK,
            21,
            &genl(
                9,
                &[nest(
                    3,
                    &[
                        nla(1, &u32n(2)),
                        nla(2, b"dummy0\0"),
                        nla(3, &u32n(7)),
                        nla(4, &u16n(1400)),      // SYNC_MAXLEN
                        nla(7, &u16n(8849)),      // MCAST_PORT (host order)
                        nla(8, &[2]),             // MCAST_TTL
                        nla(5, &[224, 0, 0, 82]), // MCAST_GROUP (in_addr)
                    ],
                )],
            ),
        ),
    );
    check(
        &Request::DelDaemon(DaemonState::Backup),
        22,
        nlmsg(FAM, REQ_ACK, 22, &genl(10, &[nest(3, &[nla(1, &u32n(2))])])),
    );
    check(
        &Request::SetConfig(Timeouts {
            tcp: Some(900),
            tcp_fin: Some(120),
            udp: Some(300),
        }),
        23,
        nlmsg(
            FAM,
            REQ_ACK,
            23,
            &genl(
                12,
                &[nla(4, &u32n(900)), nla(5, &u32n(120)), nla(6, &u32n(300))],
            ),
        ),
    );
    check(
        &Request::SetConfig(Timeouts {
            tcp: None,
            tcp_fin: None,
            udp: Some(30),
        }),
        24,
        nlmsg(FAM, REQ_ACK, 24, &genl(12, &[nla(6, &u32n(30))])),
    );
}

#[test]
fn family_resolution_request_matches_ipvsadm() {
    // libnl's CTRL_CMD_GETFAMILY as ipvsadm sent it (strace), after the 16-byte header.
    let ours = codec::encode_get_family("IPVS", 9).expect("encode");
    assert_eq!(hex(&ours[..4]), "20000000");
    assert_eq!(u16::from_ne_bytes([ours[4], ours[5]]), 0x10);
    // cmd GETFAMILY (3), version 1; CTRL_ATTR_FAMILY_NAME (2) = "IPVS\0", padded to 4.
    assert_eq!(hex(&ours[16..]), "03010000090002004950565300000000");
    let theirs = ipvsadm_requests_ctrl("req-add-service.strace");
    assert_eq!(hex(&ours[16..]), hex(&theirs));
}

#[test]
fn names_longer_than_the_kernel_buffers_are_refused() {
    let s = Service::new(tcp80(), Scheduler::Other("sixteen-chars-xx".into()));
    match Request::NewService(s).encode(FAM, 1) {
        Err(EncodeError::TooLong { attr, max, .. }) => {
            assert_eq!(attr, "IPVS_SVC_ATTR_SCHED_NAME");
            assert_eq!(max, 15);
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    let d = SyncDaemon::new(DaemonState::Master, "a-very-long-ifname", 1);
    assert!(matches!(
        Request::NewDaemon(d).encode(FAM, 1),
        Err(EncodeError::TooLong {
            attr: "IPVS_DAEMON_ATTR_MCAST_IFN",
            ..
        })
    ));
    let bad = SyncDaemon {
        mcast_group: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
        ..SyncDaemon::new(DaemonState::Master, "eth0", 1)
    };
    assert!(matches!(
        Request::NewDaemon(bad).encode(FAM, 1),
        Err(EncodeError::Invalid {
            attr: "IPVS_DAEMON_ATTR_MCAST_GROUP",
            ..
        })
    ));
}

// --- ipvsadm 1.31 on a real kernel: same bytes -------------------------------------------------

/// Our encoding of the request ipvsadm made (decoded from its bytes), genl part only.
fn reencode(ipvsadm: &[u8]) -> (Request, Vec<u8>) {
    let msg = nlmsg(FAM, REQ_ACK, 1, ipvsadm);
    let msgs = decode::split(&msg).expect("split");
    let req = decode::request(&msgs[0]).expect("decode ipvsadm request");
    let ours = req.encode(FAM, 1).expect("encode");
    (req, ours[16..].to_vec())
}

#[test]
fn service_requests_are_identical_to_ipvsadm() {
    for f in [
        "req-add-service.strace",
        "req-add-fwm6.strace",
        "req-add-udp6.strace",
        "req-add-sctp.strace",
        "req-add-pe.strace",
        "req-edit-service.strace",
    ] {
        let theirs = ipvsadm_command(f);
        let (req, ours) = reencode(&theirs);
        assert_eq!(hex(&ours), hex(&theirs), "{f}: {req}");
    }
    let (req, _) = reencode(&ipvsadm_command("req-edit-service.strace"));
    let Request::SetService(s) = req else {
        panic!("not SET_SERVICE: {req:?}")
    };
    assert_eq!(s.scheduler, Scheduler::Sh);
    assert!(s.flags.persistent && s.flags.sched1 && s.flags.sched2 && !s.flags.one_packet);
    assert_eq!(
        (s.timeout, s.netmask),
        (120, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)))
    );
    let (req, _) = reencode(&ipvsadm_command("req-add-udp6.strace"));
    let Request::NewService(s) = req else {
        panic!("not NEW_SERVICE: {req:?}")
    };
    assert_eq!(
        (s.netmask, s.flags.one_packet, s.timeout),
        (Netmask::V6(64), true, 60)
    );
}

#[test]
fn destination_nests_are_identical_to_ipvsadm() {
    // ipvsadm repeats the whole service in destination requests; the kernel reads only its
    // identity, which is all we send. The destination nest itself must match byte for byte.
    for (f, cmd) in [
        ("req-add-dest.strace", 5u8),
        ("req-edit-dest.strace", 6),
        ("req-add-dest6-tun.strace", 5),
    ] {
        let theirs = ipvsadm_command(f);
        assert_eq!(theirs[0], cmd, "{f}");
        let (req, ours) = reencode(&theirs);
        let their_dest = find_tlv(&theirs[4..], 2).expect("ipvsadm dest nest");
        let our_dest = find_tlv(&ours[4..], 2).expect("our dest nest");
        assert_eq!(hex(&our_dest), hex(&their_dest), "{f}: {req}");
        let their_key = decode_key(&theirs);
        let our_key = decode_key(&ours);
        assert_eq!(our_key, their_key, "{f}");
    }
    let (req, _) = reencode(&ipvsadm_command("req-add-dest6-tun.strace"));
    let Request::NewDest(k, d) = req else {
        panic!("{req:?}")
    };
    assert_eq!(k, ServiceKey::fwmark(AddressFamily::Inet6, 9));
    assert_eq!(d.forward, ForwardMethod::Tunnel);
    assert_eq!(
        d.tunnel,
        Tunnel {
            kind: TunnelType::Gue,
            port: 6080,
            flags: 1
        }
    );
    let (req, _) = reencode(&ipvsadm_command("req-edit-dest.strace"));
    let Request::SetDest(_, d) = req else {
        panic!("{req:?}")
    };
    assert_eq!(
        (d.weight, d.upper_threshold, d.lower_threshold),
        (0, 100, 50)
    );
}

/// The first controller (GENL_ID_CTRL = 0x10) request of an ipvsadm strace log.
fn ipvsadm_requests_ctrl(name: &str) -> Vec<u8> {
    let text = fixture_text(name);
    let line = text
        .lines()
        .find(|l| l.contains("nlmsg_type=0x10"))
        .expect("ctrl request");
    let q = line.find("}, \"").expect("payload") + 4;
    let end = line[q..].find('"').expect("end") + q;
    line[q..end]
        .split("\\x")
        .filter(|s| !s.is_empty())
        .map(|h| u8::from_str_radix(h, 16).expect("hex"))
        .collect()
}

fn decode_key(genl_payload: &[u8]) -> ServiceKey {
    let msg = nlmsg(FAM, REQ_ACK, 1, genl_payload);
    let msgs = decode::split(&msg).expect("split");
    let g = decode::genl(msgs[0].payload).expect("genl");
    decode::service_key(g.attr(1).expect("service nest")).expect("key")
}

#[test]
fn key_only_requests_read_ipvsadm_requests() {
    let (req, _) = reencode(&ipvsadm_command("req-del-dest.strace"));
    assert_eq!(
        req,
        Request::DelDest(
            tcp80(),
            DestKey {
                addr: rs1(),
                port: 80
            }
        )
    );
    let (req, _) = reencode(&ipvsadm_command("req-del-service.strace"));
    assert_eq!(req, Request::DelService(tcp80()));
    let (req, _) = reencode(&ipvsadm_command("req-zero-service.strace"));
    assert_eq!(req, Request::Zero(Some(tcp80())));
}

#[test]
fn global_requests_are_identical_to_ipvsadm() {
    for (f, want) in [
        (
            "req-set-timeout.strace",
            Request::SetConfig(Timeouts {
                tcp: Some(900),
                tcp_fin: Some(120),
                udp: Some(300),
            }),
        ),
        ("req-zero.strace", Request::Zero(None)),
        ("req-flush.strace", Request::Flush),
        (
            "req-start-master.strace",
            Request::NewDaemon(SyncDaemon::new(DaemonState::Master, "dummy0", 7)),
        ),
        (
            "req-start-backup.strace",
            Request::NewDaemon(SyncDaemon {
                sync_maxlen: Some(1400),
                mcast_group: Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 82))),
                mcast_port: Some(8849),
                mcast_ttl: Some(2),
                ..SyncDaemon::new(DaemonState::Backup, "dummy0", 7)
            }),
        ),
    ] {
        let theirs = ipvsadm_command(f);
        let (req, ours) = reencode(&theirs);
        assert_eq!(req, want, "{f}");
        assert_eq!(hex(&ours), hex(&theirs), "{f}");
    }
    for (f, state) in [
        ("req-stop-master.strace", DaemonState::Master),
        ("req-stop-backup.strace", DaemonState::Backup),
    ] {
        let (req, _) = reencode(&ipvsadm_command(f));
        assert_eq!(req, Request::DelDaemon(state), "{f}");
    }
}
