//! VRRP on the wire, in network namespaces: keeperd against itself and against keepalived, with
//! real kernels, real sockets and real address changes. Root only (`--features netns-tests`).
//!
//! Waits are on conditions with deadlines; deadlines are generous multiples of the protocol's
//! own timers, so they bound hangs without asserting performance (that is the benchmark's job).

#![cfg(feature = "netns-tests")]

mod lab;

use std::time::Duration;

use lab::{Lab, wait_until};

/// A keeperd instance section.
fn instance(name: &str, vrid: u8, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "[vrrp_instance.{name}]\ninterface = \"eth0\"\nvirtual_router_id = {vrid}\npriority = {prio}\nvirtual_ipaddress = [\"{vip}\"]\n{extra}\n"
    )
}

fn v2(name: &str, vrid: u8, prio: u8, vip: &str) -> String {
    instance(
        name,
        vrid,
        prio,
        &format!("{vip}/24 dev eth0"),
        "advert_int = 1\nauthentication = { auth_type = \"PASS\", auth_pass = \"s3cret\" }",
    )
}

const SECS: Duration = Duration::from_secs(1);

fn master_within(lab: &Lab, id: usize, inst: &str, timeout: Duration) -> Duration {
    wait_until(&format!("{inst} MASTER in daemon {id}"), timeout, || {
        lab.state(id, inst).as_deref() == Some("master")
    })
}

#[test]
fn election_crash_failover_and_preemption_without_duplicate_vip() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let a = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    let b = lab.start_keeperd("b", &v2("VI_1", 51, 50, &vip));
    lab.wait_ready(a);
    lab.wait_ready(b);
    // Election: both start as backup; a wins after Master_Down (3 s + skew at 1 s adverts).
    master_within(&lab, a, "VI_1", 10 * SECS);
    wait_until("VIP on a only", 5 * SECS, || lab.holders(&vip) == ["a"]);
    assert_eq!(lab.state(b, "VI_1").as_deref(), Some("backup"));

    // Crash: SIGKILL leaves a's VIP configured (as a crashed keepalived does); b takes over.
    lab.signal(a, libc::SIGKILL);
    lab.wait_exit(a, 5 * SECS);
    let took = master_within(&lab, b, "VI_1", 10 * SECS);
    assert!(lab.has_addr("b", &vip));
    eprintln!("SIGKILL failover: b master after {took:?}");

    // Restart: a removes the stale VIP at once (it is not master), then preempts.
    let a2 = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    wait_until("stale VIP removed from restarted a", 5 * SECS, || {
        !lab.has_addr("a", &vip)
    });
    master_within(&lab, a2, "VI_1", 10 * SECS);
    wait_until("b releases after preemption", 5 * SECS, || {
        lab.state(b, "VI_1").as_deref() == Some("backup")
    });
    wait_until("exactly one VIP holder", 5 * SECS, || {
        lab.holders(&vip) == ["a"]
    });
}

#[test]
fn link_down_moves_the_vip_and_link_up_brings_it_back() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let a = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    let b = lab.start_keeperd("b", &v2("VI_1", 51, 50, &vip));
    master_within(&lab, a, "VI_1", 10 * SECS);
    lab.link_down("a");
    wait_until("a in FAULT", 5 * SECS, || {
        lab.state(a, "VI_1").as_deref() == Some("fault")
    });
    assert!(!lab.has_addr("a", &vip), "a FAULT must release the VIP");
    master_within(&lab, b, "VI_1", 10 * SECS);
    lab.link_up("a");
    master_within(&lab, a, "VI_1", 10 * SECS);
    wait_until("VIP back on a only", 5 * SECS, || {
        lab.holders(&vip) == ["a"]
    });
}

#[test]
fn sigterm_sends_priority_zero_and_backup_takes_over_after_skew() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let a = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    let b = lab.start_keeperd("b", &v2("VI_1", 51, 50, &vip));
    master_within(&lab, a, "VI_1", 10 * SECS);
    lab.wait_ready(b);
    lab.signal(a, libc::SIGTERM);
    let status = lab.wait_exit(a, 5 * SECS);
    assert!(
        status.success(),
        "keeperd exits cleanly on SIGTERM: {status:?}\n{}",
        lab.log(a)
    );
    assert!(!lab.has_addr("a", &vip), "VIP removed on SIGTERM");
    // Priority 0 means "take over after Skew_Time" (0.8 s at priority 50, v2), not Master_Down.
    let took = master_within(&lab, b, "VI_1", 3 * SECS);
    let reason = lab
        .status(b)
        .and_then(|s| s.instances[0].last_transition.clone())
        .map(|t| t.reason);
    assert_eq!(reason.as_deref(), Some("master-released"));
    eprintln!("SIGTERM handover: b master {took:?} after a exited");
}

#[test]
fn nopreempt_keeps_the_current_master() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let b = lab.start_keeperd("b", &v2("VI_1", 51, 50, &vip));
    master_within(&lab, b, "VI_1", 10 * SECS);
    let a = lab.start_keeperd(
        "a",
        &format!("{}nopreempt = true\n", v2("VI_1", 51, 100, &vip)),
    );
    lab.wait_ready(a);
    // a must stay backup while b advertises; wait until a has heard several adverts.
    wait_until("a heard b's adverts", 10 * SECS, || {
        lab.status(a)
            .is_some_and(|s| s.instances[0].adverts_received >= 5)
    });
    assert_eq!(lab.state(a, "VI_1").as_deref(), Some("backup"));
    assert_eq!(lab.holders(&vip), ["b"]);
}

#[test]
fn preempt_delay_defers_preemption() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let b = lab.start_keeperd("b", &v2("VI_1", 51, 50, &vip));
    master_within(&lab, b, "VI_1", 10 * SECS);
    let a = lab.start_keeperd(
        "a",
        &format!("{}preempt_delay = 6\n", v2("VI_1", 51, 100, &vip)),
    );
    lab.wait_ready(a);
    let start = std::time::Instant::now();
    master_within(&lab, a, "VI_1", 20 * SECS);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(6),
        "preempted after {waited:?}, before preempt_delay (6 s)"
    );
    wait_until("b released", 5 * SECS, || lab.holders(&vip) == ["a"]);
}

#[test]
fn vrrp_v3_ipv6_with_centisecond_adverts() {
    let mut lab = Lab::new(&["a", "b", "c"]);
    let vip = lab.vip6();
    let inst = |p| {
        format!(
            "[global]\nvrrp_version = 3\n{}",
            instance(
                "VI_6",
                61,
                p,
                &format!("{vip}/64 dev eth0"),
                "advert_int = 0.1"
            )
        )
    };
    let a = lab.start_keeperd("a", &inst(100));
    let b = lab.start_keeperd("b", &inst(50));
    master_within(&lab, a, "VI_6", 5 * SECS);
    wait_until("IPv6 VIP on a only", 2 * SECS, || {
        lab.holders(&vip) == ["a"]
    });
    // The client resolves the VIP to a (the VIP was added without DAD: usable at once).
    let ping = lab.exec("c", &["ping", "-6", "-c", "1", "-W", "2", &vip]);
    assert!(ping.status.success(), "client reaches the IPv6 VIP");
    assert_eq!(lab.neighbour_mac("c", &vip), Some(lab.mac_of("a")));
    lab.wait_ready(b);
    lab.signal(a, libc::SIGKILL);
    let took = master_within(&lab, b, "VI_6", 3 * SECS);
    eprintln!("v3 IPv6 0.1 s SIGKILL failover: {took:?}");
    assert!(lab.has_addr("b", &vip));
    // b's unsolicited neighbour advertisement (Override set) moves the client's entry to b.
    wait_until("client's neighbour entry follows b's NA", 3 * SECS, || {
        lab.neighbour_mac("c", &vip) == Some(lab.mac_of("b"))
    });
}

#[test]
fn unicast_peers_work_when_multicast_is_dropped() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let (ia, ib) = (lab.v4_of("a"), lab.v4_of("b"));
    // Drop all VRRP multicast on both nodes: only unicast can elect.
    for n in ["a", "b"] {
        let rules = "table inet kt { chain out { type filter hook output priority 0; ip daddr 224.0.0.18 counter drop; }; chain in { type filter hook input priority 0; ip daddr 224.0.0.18 drop; }; }";
        let st = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.ns(n), "nft", rules])
            .status()
            .expect("nft runs");
        assert!(st.success(), "nft rules in {n}");
    }
    let extra = |peer: &str| format!("version = 3\nadvert_int = 0.5\nunicast_peer = [\"{peer}\"]");
    let a = lab.start_keeperd(
        "a",
        &instance("VI_U", 71, 100, &format!("{vip}/24"), &extra(&ib)),
    );
    let b = lab.start_keeperd(
        "b",
        &instance("VI_U", 71, 50, &format!("{vip}/24"), &extra(&ia)),
    );
    master_within(&lab, a, "VI_U", 10 * SECS);
    wait_until("b hears a over unicast", 10 * SECS, || {
        lab.status(b).is_some_and(|s| {
            s.instances[0].adverts_received >= 3 && s.instances[0].state == "backup"
        })
    });
    assert_eq!(lab.holders(&vip), ["a"]);
    // And no advert went to the multicast group: unicast never falls back to multicast.
    for n in ["a", "b"] {
        let out = lab.exec(n, &["nft", "list", "chain", "inet", "kt", "out"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("counter packets 0 bytes 0"),
            "{n} sent multicast:\n{text}"
        );
    }
}

#[test]
fn two_instances_active_active_on_one_pair() {
    // Seed 004: each node is MASTER of one VIP and BACKUP of the other.
    let mut lab = Lab::new(&["a", "b"]);
    let vip1 = lab.vip4();
    let vip2 = format!("10.{}.0.200", lab.net);
    let a = lab.start_keeperd(
        "a",
        &(v2("VI_1", 51, 100, &vip1) + &v2("VI_2", 52, 10, &vip2)),
    );
    let b = lab.start_keeperd(
        "b",
        &(v2("VI_1", 51, 10, &vip1) + &v2("VI_2", 52, 100, &vip2)),
    );
    master_within(&lab, a, "VI_1", 10 * SECS);
    master_within(&lab, b, "VI_2", 10 * SECS);
    assert_eq!(lab.holders(&vip1), ["a"]);
    assert_eq!(lab.holders(&vip2), ["b"]);
    // b fails: a serves both.
    lab.signal(b, libc::SIGTERM);
    lab.wait_exit(b, 5 * SECS);
    master_within(&lab, a, "VI_2", 5 * SECS);
    assert!(lab.has_addr("a", &vip1) && lab.has_addr("a", &vip2));
}

#[test]
fn split_brain_heals_and_the_client_follows_the_winner() {
    let mut lab = Lab::new(&["a", "b", "c"]);
    let vip = lab.vip4();
    let a = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    let b = lab.start_keeperd("b", &v2("VI_1", 51, 50, &vip));
    master_within(&lab, a, "VI_1", 10 * SECS);
    // The client learns the VIP at a's MAC.
    let _ = lab.exec("c", &["ping", "-c", "1", "-W", "1", &vip]);
    assert_eq!(lab.neighbour_mac("c", &vip), Some(lab.mac_of("a")));

    // Partition a: b takes over and the client follows b.
    lab.partition("a");
    master_within(&lab, b, "VI_1", 10 * SECS);
    wait_until("client has b's MAC", 5 * SECS, || {
        lab.neighbour_mac("c", &vip) == Some(lab.mac_of("b"))
    });
    assert_eq!(
        lab.state(a, "VI_1").as_deref(),
        Some("master"),
        "both are master while partitioned"
    );

    // Heal: b hears a's higher priority, sends one advert and steps down; a answers b's advert
    // with an advert and GARPs, so the client moves back without waiting for ARP to expire.
    lab.heal("a");
    let healed = wait_until("client back on a's MAC", 5 * SECS, || {
        lab.neighbour_mac("c", &vip) == Some(lab.mac_of("a"))
    });
    wait_until("b backup", 5 * SECS, || {
        lab.state(b, "VI_1").as_deref() == Some("backup")
    });
    wait_until("exactly one holder", 5 * SECS, || {
        lab.holders(&vip) == ["a"]
    });
    eprintln!("split brain healed: client on the winner {healed:?} after the link returned");
}

#[test]
fn malformed_adverts_are_dropped_counted_and_change_nothing() {
    use keeper_vrrp::{Advert, AdvertInterval, Auth, Version};
    let mut lab = Lab::new(&["a", "b", "c"]);
    let vip = lab.vip4();
    let a = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    let b = lab.start_keeperd("b", &v2("VI_1", 51, 50, &vip));
    master_within(&lab, a, "VI_1", 10 * SECS);
    lab.wait_ready(b);
    let attacker = lab.v4_of("c");
    let group = "224.0.0.18";
    let advert = |version, vrid, prio, auth| Advert {
        version,
        vrid,
        priority: prio,
        max_adver_int: AdvertInterval::ONE_SECOND,
        auth,
        addresses: vec![vip.parse().expect("vip")],
    };
    let pass = |p: &[u8]| Auth::simple_text(p).expect("password");
    let enc = |adv: &Advert| {
        adv.encode(attacker.parse().expect("ip"), group.parse().expect("ip"))
            .expect("encodes")
    };
    let good = enc(&advert(Version::V2, 51, 200, pass(b"s3cret")));
    let mut bad_sum = good.clone();
    bad_sum[6] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[0] = (4 << 4) | 1;
    let cases: Vec<(&str, u8, Vec<u8>)> = vec![
        ("bad-ttl", 254, good.clone()),
        ("bad-checksum", 255, bad_sum),
        (
            "auth-failure",
            255,
            enc(&advert(Version::V2, 51, 200, pass(b"wrong"))),
        ),
        ("bad-length", 255, good[..12].to_vec()),
        ("bad-version", 255, bad_version),
        (
            "wrong-version",
            255,
            enc(&advert(Version::V3, 51, 200, Auth::None)),
        ),
    ];
    for (reason, ttl, payload) in &cases {
        let before = lab
            .status(a)
            .map(|s| s.instances[0].drops.get(*reason).copied().unwrap_or(0))
            .unwrap_or(0);
        lab.inject_v4("c", &attacker, group, *ttl, payload);
        wait_until(&format!("a counts a {reason} drop"), 5 * SECS, || {
            lab.status(a)
                .is_some_and(|s| s.instances[0].drops.get(*reason).copied().unwrap_or(0) > before)
        });
        assert_eq!(
            lab.state(a, "VI_1").as_deref(),
            Some("master"),
            "after {reason}"
        );
    }
    // An unknown VRID is counted by the daemon, not by an instance.
    let before = lab.status(a).map(|s| s.vrrp_unmatched).unwrap_or(0);
    lab.inject_v4(
        "c",
        &attacker,
        group,
        255,
        &enc(&advert(Version::V2, 52, 200, pass(b"s3cret"))),
    );
    wait_until("a counts the unknown VRID", 5 * SECS, || {
        lab.status(a).is_some_and(|s| s.vrrp_unmatched > before)
    });
    assert_eq!(lab.state(a, "VI_1").as_deref(), Some("master"));
    assert_eq!(lab.state(b, "VI_1").as_deref(), Some("backup"));
    assert_eq!(lab.holders(&vip), ["a"]);

    // Control: the same advert, well formed, does move a (so the drops above were real drops).
    lab.inject_v4("c", &attacker, group, 255, &good);
    wait_until("a steps down for a valid higher priority", 5 * SECS, || {
        lab.state(a, "VI_1").as_deref() == Some("backup")
    });
}

/// keepalived.conf for one instance (VRRP only, run with -P).
fn keepalived_conf(vrid: u8, prio: u8, vip: &str, v3: bool, advert: &str) -> String {
    let (global, auth) = if v3 {
        ("global_defs {\n  vrrp_version 3\n}\n", String::new())
    } else {
        (
            "",
            "  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n".to_string(),
        )
    };
    format!(
        "{global}vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int {advert}\n{auth}  virtual_ipaddress {{\n    {vip}/24 dev eth0\n  }}\n}}\n"
    )
}

#[test]
fn interop_keepalived_v2_pass_as_backup_and_as_master() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    // keeperd master, keepalived backup.
    let a = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    let k = lab.start_keepalived("b", &keepalived_conf(51, 50, &vip, false, "1"));
    master_within(&lab, a, "VI_1", 10 * SECS);
    wait_until(
        "keepalived hears keeperd (stays backup, no VIP)",
        10 * SECS,
        || {
            lab.status(a)
                .is_some_and(|s| s.instances[0].adverts_sent >= 3)
        },
    );
    assert_eq!(lab.holders(&vip), ["a"], "keepalived log:\n{}", lab.log(k));
    lab.signal(a, libc::SIGKILL);
    lab.wait_exit(a, 5 * SECS);
    wait_until("keepalived takes over", 10 * SECS, || {
        lab.has_addr("b", &vip)
    });
    let a2 = lab.start_keeperd("a", &v2("VI_1", 51, 100, &vip));
    master_within(&lab, a2, "VI_1", 10 * SECS);
    wait_until(
        "keepalived releases after keeperd preempts",
        10 * SECS,
        || lab.holders(&vip) == ["a"],
    );

    // Roles swapped: keepalived master (150), keeperd backup (100).
    lab.signal(k, libc::SIGKILL);
    lab.wait_exit(k, 5 * SECS);
    let k2 = lab.start_keepalived("b", &keepalived_conf(51, 150, &vip, false, "1"));
    wait_until("keepalived preempts keeperd", 15 * SECS, || {
        lab.state(a2, "VI_1").as_deref() == Some("backup")
    });
    wait_until("VIP only on keepalived", 5 * SECS, || {
        lab.holders(&vip) == ["b"]
    });
    // keepalived's SIGTERM sends priority 0: keeperd takes over after its skew.
    lab.signal(k2, libc::SIGTERM);
    master_within(&lab, a2, "VI_1", 5 * SECS);
    wait_until("VIP only on keeperd", 5 * SECS, || {
        lab.holders(&vip) == ["a"]
    });
}

#[test]
fn interop_keepalived_v3_centisecond() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let cfg = format!(
        "[global]\nvrrp_version = 3\n{}",
        instance(
            "VI_1",
            52,
            100,
            &format!("{vip}/24 dev eth0"),
            "advert_int = 0.1"
        )
    );
    let k = lab.start_keepalived("b", &keepalived_conf(52, 50, &vip, true, "0.1"));
    let a = lab.start_keeperd("a", &cfg);
    master_within(&lab, a, "VI_1", 5 * SECS);
    wait_until("keepalived backup (VIP only on keeperd)", 5 * SECS, || {
        lab.holders(&vip) == ["a"]
    });
    // Both directions of the v3 checksum are right: keeperd hears keepalived's adverts once
    // keepalived is master, and keepalived hears keeperd's (it released above).
    lab.signal(a, libc::SIGKILL);
    lab.wait_exit(a, 5 * SECS);
    wait_until("keepalived takes over", 5 * SECS, || {
        lab.has_addr("b", &vip)
    });
    let a2 = lab.start_keeperd("a", &cfg);
    wait_until("keeperd hears keepalived as master", 5 * SECS, || {
        lab.status(a2)
            .is_some_and(|s| s.instances[0].adverts_received >= 3)
    });
    master_within(&lab, a2, "VI_1", 5 * SECS);
    wait_until("keepalived releases", 5 * SECS, || {
        lab.holders(&vip) == ["a"]
    });
    let _ = k;
}

#[test]
fn interop_frr_vrrpd_v3() {
    let mut lab = Lab::new(&["a", "f"]);
    let vip = lab.vip4();
    let cfg = format!(
        "[global]\nvrrp_version = 3\n{}",
        instance(
            "VI_1",
            5,
            100,
            &format!("{vip}/24 dev eth0"),
            "advert_int = 1"
        )
    );
    // FRR (150) against keeperd (100): FRR is master, keeperd backup.
    lab.start_frr_zebra("f", 5, &vip);
    let v = lab.start_frr_vrrpd("f", 5, 150, &vip, 1000);
    let a = lab.start_keeperd("a", &cfg);
    wait_until("keeperd hears FRR", 15 * SECS, || {
        lab.status(a)
            .is_some_and(|s| s.instances[0].adverts_received >= 3)
    });
    assert_eq!(
        lab.state(a, "VI_1").as_deref(),
        Some("backup"),
        "FRR log:\n{}",
        lab.log(v)
    );
    assert!(!lab.has_addr("a", &vip));
    // FRR's vrrpd dies: keeperd takes over.
    lab.signal(v, libc::SIGKILL);
    lab.wait_exit(v, 5 * SECS);
    master_within(&lab, a, "VI_1", 10 * SECS);
    // FRR returns at 50 (below keeperd): it hears keeperd and stays backup (macvlan protodown).
    let heard = lab
        .status(a)
        .map(|s| s.instances[0].adverts_received)
        .unwrap_or(0);
    let started = std::time::Instant::now();
    let v2 = lab.start_frr_vrrpd("f", 5, 50, &vip, 1000);
    wait_until("FRR backup under keeperd (protodown)", 15 * SECS, || {
        lab.frr_is_backup("f", 5)
    });
    // A backup that did not hear keeperd would take over after Master_Down (3 s + 0.8 s): observe
    // past that point, then check FRR never advertised (keeperd heard nothing new) and is backup.
    wait_until("FRR's Master_Down has passed", 10 * SECS, || {
        started.elapsed() > 5 * SECS
    });
    assert!(lab.frr_is_backup("f", 5), "FRR log:\n{}", lab.log(v2));
    assert_eq!(
        lab.status(a).map(|s| s.instances[0].adverts_received),
        Some(heard),
        "FRR advertised"
    );
    assert_eq!(lab.state(a, "VI_1").as_deref(), Some("master"));
}

#[test]
fn virtual_routes_and_rules_follow_the_master() {
    fn routes(lab: &Lab, n: &str) -> String {
        String::from_utf8_lossy(&lab.exec(n, &["ip", "route", "show", "table", "all"]).stdout)
            .into_owned()
    }
    fn rules(lab: &Lab, n: &str) -> String {
        String::from_utf8_lossy(&lab.exec(n, &["ip", "rule", "show"]).stdout).into_owned()
    }
    fn installed(lab: &Lab, n: &str) -> bool {
        let (r, u) = (routes(lab, n), rules(lab, n));
        r.contains("198.51.100.0/24 dev eth0")
            && r.contains("blackhole 203.0.113.0/24")
            && r.contains("default via")
            && r.contains("table 100")
            && u.contains(&format!("1000:\tfrom {} lookup 100", lab.vip4()))
    }
    fn none(lab: &Lab, n: &str) -> bool {
        let (r, u) = (routes(lab, n), rules(lab, n));
        !r.contains("198.51.100.0/24")
            && !r.contains("203.0.113.0/24")
            && !r.contains("table 100")
            && !u.contains("lookup 100")
    }
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let extra = format!(
        "virtual_routes = [\"198.51.100.0/24 dev eth0\", \"blackhole 203.0.113.0/24\", \"default via 10.{net}.0.1 table 100\"]\nvirtual_rules = [\"from {vip}/32 table 100 pref 1000\"]\n",
        net = lab.net
    );
    let a = lab.start_keeperd("a", &format!("{}{extra}", v2("VI_1", 51, 100, &vip)));
    let b = lab.start_keeperd("b", &format!("{}{extra}", v2("VI_1", 51, 50, &vip)));
    master_within(&lab, a, "VI_1", 10 * SECS);
    wait_until("routes and rule on the master", 5 * SECS, || {
        installed(&lab, "a")
    });
    assert!(
        none(&lab, "b"),
        "backup has none:\n{}\n{}",
        routes(&lab, "b"),
        rules(&lab, "b")
    );
    lab.signal(a, libc::SIGTERM);
    lab.wait_exit(a, 5 * SECS);
    assert!(
        none(&lab, "a"),
        "released on stop:\n{}\n{}",
        routes(&lab, "a"),
        rules(&lab, "a")
    );
    master_within(&lab, b, "VI_1", 5 * SECS);
    wait_until("routes and rule moved to b", 5 * SECS, || {
        installed(&lab, "b")
    });
}

#[test]
fn use_vmac_keeps_the_clients_arp_entry_across_failover() {
    let mut lab = Lab::new(&["a", "b", "c"]);
    let vip = lab.vip4();
    let vmac = "00:00:5e:00:01:33";
    let sysctl = |lab: &Lab, n: &str, key: &str| {
        let out = lab.exec(n, &["sysctl", "-n", &format!("net.ipv4.conf.{key}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let a = lab.start_keeperd(
        "a",
        &format!("{}use_vmac = true\n", v2("VI_1", 51, 100, &vip)),
    );
    let b = lab.start_keeperd(
        "b",
        &format!("{}use_vmac = true\n", v2("VI_1", 51, 50, &vip)),
    );
    master_within(&lab, a, "VI_1", 10 * SECS);
    // The VMAC exists on both, the VIP is on a's VMAC, the base's ARP settings are protected.
    for n in ["a", "b"] {
        let link = lab.exec(n, &["ip", "-d", "link", "show", "vrrp.51"]);
        let text = String::from_utf8_lossy(&link.stdout).into_owned();
        assert!(
            text.contains(vmac) && text.contains("macvlan mode private"),
            "{n}:\n{text}"
        );
        assert_eq!(sysctl(&lab, n, "eth0.arp_ignore"), "1");
        assert_eq!(sysctl(&lab, n, "eth0.arp_filter"), "1");
        assert_eq!(sysctl(&lab, n, "eth0.arp_announce"), "2");
        assert_eq!(sysctl(&lab, n, "vrrp/51.arp_ignore"), "1");
        assert_eq!(sysctl(&lab, n, "vrrp/51.rp_filter"), "0");
    }
    let on_vmac = |lab: &Lab, n: &str| {
        String::from_utf8_lossy(
            &lab.exec(n, &["ip", "-4", "addr", "show", "dev", "vrrp.51"])
                .stdout,
        )
        .contains(&format!(" {vip}/"))
    };
    assert!(on_vmac(&lab, "a") && !on_vmac(&lab, "b"));
    // The client sees the VIP at the virtual MAC, whoever is master.
    assert!(
        lab.exec("c", &["ping", "-c", "1", "-W", "2", &vip])
            .status
            .success()
    );
    assert_eq!(lab.neighbour_mac("c", &vip).as_deref(), Some(vmac));
    lab.signal(a, libc::SIGTERM);
    lab.wait_exit(a, 5 * SECS);
    master_within(&lab, b, "VI_1", 5 * SECS);
    assert!(on_vmac(&lab, "b"));
    wait_until("client reaches the VIP on b", 5 * SECS, || {
        lab.exec("c", &["ping", "-c", "1", "-W", "1", &vip])
            .status
            .success()
    });
    assert_eq!(
        lab.neighbour_mac("c", &vip).as_deref(),
        Some(vmac),
        "the client's entry never changed"
    );
    // a stopped: its VMAC is gone and its base interface has its settings back.
    assert!(
        !lab.exec("a", &["ip", "link", "show", "vrrp.51"])
            .status
            .success(),
        "a's VMAC removed"
    );
    assert_eq!(sysctl(&lab, "a", "eth0.arp_ignore"), "0");
    assert_eq!(sysctl(&lab, "a", "eth0.arp_filter"), "0");
    assert_eq!(sysctl(&lab, "a", "eth0.arp_announce"), "0");
}

#[test]
fn use_vmac_interop_with_keepalived_and_frr() {
    let mut lab = Lab::new(&["a", "k", "f", "c"]);
    let vip = lab.vip4();
    let vmac = "00:00:5e:00:01:05";
    let conf = format!(
        "[global]\nvrrp_version = 3\n{}use_vmac = true\n",
        instance("VI_1", 5, 200, &format!("{vip}/24"), "advert_int = 1")
    );
    // keepalived with its own VMAC, and FRR (which always uses one), both below keeperd.
    let kconf = keepalived_conf(5, 100, &vip, true, "1")
        .replace("  virtual_ipaddress", "  use_vmac\n  virtual_ipaddress");
    // keepalived sets arp_ignore/arp_filter on the base but not arp_announce (keeperd does):
    // without it the base asks ARP with the VIP as sender and the client learns the base MAC.
    assert!(
        lab.exec("k", &["sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2"])
            .status
            .success()
    );
    let k = lab.start_keepalived("k", &kconf);
    lab.start_frr_zebra("f", 5, &vip);
    let _v = lab.start_frr_vrrpd("f", 5, 50, &vip, 1000);
    let a = lab.start_keeperd("a", &conf);
    master_within(&lab, a, "VI_1", 10 * SECS);
    wait_until("FRR backup", 10 * SECS, || lab.frr_is_backup("f", 5));
    assert!(
        lab.exec("c", &["ping", "-c", "1", "-W", "2", &vip])
            .status
            .success()
    );
    assert_eq!(lab.neighbour_mac("c", &vip).as_deref(), Some(vmac));
    // keeperd stops: keepalived (100) takes over with the same virtual MAC; the client's entry
    // never changes and it reaches the VIP on keepalived.
    lab.signal(a, libc::SIGTERM);
    lab.wait_exit(a, 5 * SECS);
    wait_until("keepalived holds the VIP on its VMAC", 10 * SECS, || {
        String::from_utf8_lossy(&lab.exec("k", &["ip", "-4", "addr", "show"]).stdout)
            .contains(&format!(" {vip}/"))
    });
    wait_until("client reaches the VIP on keepalived", 5 * SECS, || {
        lab.exec("c", &["ping", "-c", "1", "-W", "1", &vip])
            .status
            .success()
    });
    assert_eq!(
        lab.neighbour_mac("c", &vip).as_deref(),
        Some(vmac),
        "keepalived log:\n{}",
        lab.log(k)
    );
    assert!(lab.frr_is_backup("f", 5));
}

#[test]
fn a_missing_interface_is_an_error_or_waited_for_with_dynamic_interfaces() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let inst = instance("VI_1", 51, 100, &format!("{vip}/24"), "")
        .replace("interface = \"eth0\"", "interface = \"eth1\"");
    // Without dynamic_interfaces: a clear error naming the interface, exit 1.
    let plain = lab.start_keeperd("a", &inst);
    let status = lab.wait_exit(plain, 10 * SECS);
    assert_eq!(status.code(), Some(1));
    assert!(lab.log(plain).contains("eth1"), "{}", lab.log(plain));
    // With it: keeperd waits, and starts the instance when eth1 appears.
    let a = lab.start_keeperd("a", &format!("[global]\ndynamic_interfaces = true\n{inst}"));
    lab.wait_ready(a);
    assert!(
        lab.status(a).is_some_and(|s| s.instances.is_empty()),
        "no instance until eth1 exists"
    );
    let ns = lab.ns("a");
    let lan = lab.lan();
    for args in [
        vec![
            "-n",
            lan.as_str(),
            "link",
            "add",
            "p-a1",
            "type",
            "veth",
            "peer",
            "name",
            "eth1",
            "netns",
            ns.as_str(),
        ],
        vec![
            "-n",
            lan.as_str(),
            "link",
            "set",
            "p-a1",
            "master",
            "br0",
            "up",
        ],
        vec![
            "-n",
            ns.as_str(),
            "addr",
            "add",
            "192.0.2.11/24",
            "dev",
            "eth1",
        ],
        vec!["-n", ns.as_str(), "link", "set", "eth1", "up"],
    ] {
        assert!(
            std::process::Command::new("ip")
                .args(&args)
                .status()
                .expect("ip")
                .success(),
            "{args:?}"
        );
    }
    master_within(&lab, a, "VI_1", 10 * SECS);
    let on_eth1 =
        String::from_utf8_lossy(&lab.exec("a", &["ip", "addr", "show", "dev", "eth1"]).stdout)
            .into_owned();
    assert!(on_eth1.contains(&format!(" {vip}/")), "{on_eth1}");
}

#[test]
fn twenty_reloads_and_an_invalid_one_lose_no_probe() {
    let mut lab = Lab::new(&["a", "b", "c"]);
    let vip = lab.vip4();
    let extra_vip = format!("10.{}.0.101", lab.net);
    let conf = |prio: u8, comment: usize, with_extra: bool| {
        let vips = if with_extra {
            format!("\"{vip}/24 dev eth0\", \"{extra_vip}/24 dev eth0\"")
        } else {
            format!("\"{vip}/24 dev eth0\"")
        };
        format!(
            "# reload {comment}\n[vrrp_instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = {prio}\nadvert_int = 1\nvirtual_ipaddress = [{vips}]\n"
        )
    };
    let a = lab.start_keeperd("a", &conf(100, 0, false));
    let b = lab.start_keeperd("b", &conf(50, 0, false));
    master_within(&lab, a, "VI_1", 10 * SECS);
    lab.wait_ready(b);
    let transitions = |lab: &Lab, id| lab.status(id).map(|s| s.instances[0].transitions);
    let (ta, tb) = (transitions(&lab, a), transitions(&lab, b));
    // The client probes the VIP every 20 ms for the whole exercise.
    let pinger = lab.start_daemon(
        "c",
        "ping",
        None,
        &["ping", "-n", "-i", "0.02", "-W", "1", &vip],
    );
    wait_until("the client reaches the VIP", 5 * SECS, || {
        lab.log(pinger).contains("bytes from")
    });
    let path_a = lab.dir.path().join("a.toml");
    let socket_a = lab.dir.path().join("a.sock");
    for i in 1..=20 {
        // Unchanged, comment-only, an added and removed VIP, the same priority: on both nodes.
        let with_extra = i % 4 == 1;
        std::fs::write(&path_a, conf(100, i, with_extra)).expect("write");
        if i % 2 == 0 {
            lab.signal(a, libc::SIGHUP);
        } else {
            let r = keeper::control::request(&socket_a, &keeper::control::Request::Reload)
                .expect("reload request");
            assert!(
                matches!(r, keeper::control::Response::Reloaded { ok: true, .. }),
                "{r:?}"
            );
        }
        if with_extra {
            wait_until("the added VIP is on the master", 5 * SECS, || {
                lab.has_addr("a", &extra_vip)
            });
        }
        // A reload is done when keeperd answers again (requests are served between inputs);
        // then let the client get five more answers before the next one.
        lab.wait_ready(a);
        let seen = lab.log(pinger).matches("bytes from").count();
        wait_until("five more answers", 5 * SECS, || {
            lab.log(pinger).matches("bytes from").count() >= seen + 5
        });
    }
    // One invalid reload: refused, nothing changes.
    std::fs::write(
        &path_a,
        conf(100, 99, false).replace("virtual_router_id = 51", "virtual_router_id = 0"),
    )
    .expect("write");
    let r = keeper::control::request(&socket_a, &keeper::control::Request::Reload)
        .expect("reload request");
    assert!(
        matches!(r, keeper::control::Response::Reloaded { ok: false, .. }),
        "{r:?}"
    );
    lab.signal(pinger, libc::SIGINT);
    lab.wait_exit(pinger, 5 * SECS);
    let log = lab.log(pinger);
    let summary = log
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .to_string();
    assert!(
        log.matches("bytes from").count() >= 100,
        "the probes span the reloads: {summary}"
    );
    assert!(
        summary.contains(" 0% packet loss"),
        "probes lost across reloads: {summary}\n{}",
        lab.log(a)
    );
    assert_eq!(transitions(&lab, a), ta, "no flap on a");
    assert_eq!(transitions(&lab, b), tb, "no flap on b");
    assert_eq!(lab.state(a, "VI_1").as_deref(), Some("master"));
    assert_eq!(
        lab.status(a).map(|s| s.instances[0].priority),
        Some(100),
        "no priority drift"
    );
    assert!(
        !lab.has_addr("a", &extra_vip),
        "the last reload removed the extra VIP"
    );
    eprintln!("reloads: {summary}");
}
