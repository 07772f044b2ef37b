//! Receive checks: every malformed or foreign advert is dropped, counted by reason, and
//! changes nothing (state, timers, master). Configuration validation.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use keeper_vrrp::{
    Action, Advert, AdvertInterval, Auth, ConfigError, DropReason, Event, Family, InitialState,
    Instance, InstanceConfig, Peer, State, Version,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const MCAST: &str = "224.0.0.18";
const MASTER: &str = "10.77.0.11";

fn backup_cfg() -> InstanceConfig {
    let mut c = InstanceConfig::new(51, Version::V3, ip("10.77.0.12"), vec![ip("10.77.0.100")]);
    c.priority = 50;
    c
}

fn advert(version: Version, priority: u8) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority,
        max_adver_int: AdvertInterval::ONE_SECOND,
        auth: Auth::None,
        addresses: vec![ip("10.77.0.100")],
    }
}

fn bytes(a: &Advert, src: &str, dst: &str) -> Vec<u8> {
    a.encode(ip(src), ip(dst)).expect("encodes")
}

struct Rig {
    t0: Instant,
    vr: Instance,
}

impl Rig {
    /// A backup that has heard the master (priority 100) once, at 1 s.
    fn backup(cfg: InstanceConfig) -> Rig {
        let t0 = Instant::now();
        let mut vr = Instance::new(cfg).expect("valid");
        vr.handle(t0, Event::Startup);
        let mut rig = Rig { t0, vr };
        let good = advert(rig.vr.version(), 100);
        let good = Advert {
            auth: rig.vr.config().auth,
            max_adver_int: rig.vr.config().advert_interval,
            ..good
        };
        let dst = rig.dst();
        rig.rx(
            Duration::from_secs(1),
            MASTER,
            &dst,
            255,
            &bytes(&good, MASTER, &dst),
        );
        rig.drain();
        assert_eq!(rig.vr.state(), State::Backup);
        assert_eq!(rig.vr.stats().adverts_received, 1);
        rig
    }

    fn dst(&self) -> String {
        if self.vr.config().unicast_peers.is_some() {
            self.vr.config().primary_address.to_string()
        } else {
            MCAST.to_string()
        }
    }

    fn rx(&mut self, at: Duration, src: &str, dst: &str, ttl: u8, b: &[u8]) {
        self.vr.handle(
            self.t0 + at,
            Event::AdvertReceived {
                src: ip(src),
                dst: ip(dst),
                ttl,
                bytes: b,
            },
        );
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.vr.poll_action()).collect()
    }

    fn snapshot(&self) -> (State, Option<Instant>, Option<IpAddr>, u64) {
        (
            self.vr.state(),
            self.vr.poll_timeout(),
            self.vr.master_address(),
            self.vr.stats().adverts_received,
        )
    }

    /// Feeds a packet at 2 s and checks it is dropped for `reason` with no other effect.
    fn expect_drop(&mut self, src: &str, dst: &str, ttl: u8, b: &[u8], reason: DropReason) {
        let before = self.snapshot();
        let drops_before = self.vr.stats().drops.get(reason);
        self.rx(Duration::from_secs(2), src, dst, ttl, b);
        assert_eq!(
            self.drain(),
            vec![Action::Dropped {
                src: ip(src),
                reason
            }],
            "expected a drop for {reason}"
        );
        assert_eq!(self.vr.stats().drops.get(reason), drops_before + 1);
        assert_eq!(
            self.snapshot(),
            before,
            "a dropped {reason} packet changed state"
        );
    }
}

#[test]
fn malformed_and_foreign_adverts_change_nothing() {
    let mut rig = Rig::backup(backup_cfg());
    // Every bad packet claims priority 200, which would otherwise be accepted.
    let tempting = advert(Version::V3, 200);
    let good = bytes(&tempting, MASTER, MCAST);

    rig.expect_drop(MASTER, MCAST, 254, &good, DropReason::BadTtl);
    rig.expect_drop(MASTER, MCAST, 1, &good, DropReason::BadTtl);
    let mut bad_sum = good.clone();
    bad_sum[7] ^= 1;
    rig.expect_drop(MASTER, MCAST, 255, &bad_sum, DropReason::BadChecksum);
    rig.expect_drop(MASTER, MCAST, 255, &good[..10], DropReason::BadLength);
    rig.expect_drop(MASTER, MCAST, 255, &[], DropReason::BadLength);
    let mut v4 = good.clone();
    v4[0] = 0x41;
    rig.expect_drop(MASTER, MCAST, 255, &v4, DropReason::BadVersion);
    let v2 = bytes(&advert(Version::V2, 200), MASTER, MCAST);
    rig.expect_drop(MASTER, MCAST, 255, &v2, DropReason::WrongVersion);
    let other_vrid = bytes(
        &Advert {
            vrid: 52,
            ..tempting.clone()
        },
        MASTER,
        MCAST,
    );
    rig.expect_drop(MASTER, MCAST, 255, &other_vrid, DropReason::WrongVrid);
    let to_me = bytes(&tempting, MASTER, "10.77.0.12");
    rig.expect_drop(
        MASTER,
        "10.77.0.12",
        255,
        &to_me,
        DropReason::WrongDestination,
    );
    let from_me = bytes(&tempting, "10.77.0.12", MCAST);
    rig.expect_drop("10.77.0.12", MCAST, 255, &from_me, DropReason::OwnAddress);
    rig.expect_drop("fe80::11", "ff02::12", 255, &good, DropReason::WrongFamily);
    let other_list = Advert {
        addresses: vec![ip("10.77.0.101")],
        ..tempting.clone()
    };
    rig.expect_drop(
        MASTER,
        MCAST,
        255,
        &bytes(&other_list, MASTER, MCAST),
        DropReason::AddressListMismatch,
    );
    let longer_list = Advert {
        addresses: vec![ip("10.77.0.100"), ip("10.77.0.101")],
        ..tempting.clone()
    };
    rig.expect_drop(
        MASTER,
        MCAST,
        255,
        &bytes(&longer_list, MASTER, MCAST),
        DropReason::AddressListMismatch,
    );
    let mut not_advert = good.clone();
    not_advert[0] = 0x32;
    // Type 2 with a right checksum.
    let sum = u16::from_be_bytes([not_advert[6], not_advert[7]]);
    not_advert[6..8].copy_from_slice(&(sum.wrapping_sub(1)).to_be_bytes());
    rig.expect_drop(MASTER, MCAST, 255, &not_advert, DropReason::BadType);

    assert_eq!(rig.vr.stats().drops.total(), 14);
    assert_eq!(rig.vr.stats().drops.iter().count(), 11, "distinct reasons");

    // The same advert, correct: accepted, the timer restarts from it.
    rig.rx(Duration::from_secs(3), MASTER, MCAST, 255, &good);
    rig.drain();
    assert_eq!(rig.vr.stats().adverts_received, 2);
    assert_eq!(rig.vr.master_priority(), Some(200));
    assert_eq!(
        rig.vr.poll_timeout(),
        Some(rig.t0 + Duration::from_secs(3) + rig.vr.master_down_interval())
    );
}

#[test]
fn owner_adverts_are_accepted_with_another_address_list() {
    // RFC 5798 7.1: a list mismatch is dropped unless the sender is the owner.
    let mut rig = Rig::backup(backup_cfg());
    let owner = Advert {
        priority: 255,
        addresses: vec![ip("10.77.0.100"), ip("10.77.0.11")],
        ..advert(Version::V3, 255)
    };
    rig.rx(
        Duration::from_secs(2),
        MASTER,
        MCAST,
        255,
        &bytes(&owner, MASTER, MCAST),
    );
    assert_eq!(rig.drain(), vec![]);
    assert_eq!(rig.vr.stats().adverts_received, 2);
}

#[test]
fn skip_check_adv_addr_trusts_only_the_known_master() {
    let mut cfg = backup_cfg();
    cfg.skip_check_adv_addr = true;
    let mut rig = Rig::backup(cfg);
    let other_list = Advert {
        addresses: vec![ip("10.77.0.101")],
        ..advert(Version::V3, 100)
    };
    // From the master already checked: accepted.
    rig.rx(
        Duration::from_secs(2),
        MASTER,
        MCAST,
        255,
        &bytes(&other_list, MASTER, MCAST),
    );
    assert_eq!(rig.drain(), vec![]);
    assert_eq!(rig.vr.stats().adverts_received, 2);
    // From a new sender: checked, dropped.
    rig.expect_drop(
        "10.77.0.13",
        MCAST,
        255,
        &bytes(&other_list, "10.77.0.13", MCAST),
        DropReason::AddressListMismatch,
    );
}

#[test]
fn v2_authentication_and_interval_checks() {
    let mut cfg = backup_cfg();
    cfg.version = Version::V2;
    cfg.auth = Auth::simple_text(b"s3cret").expect("password");
    let mut rig = Rig::backup(cfg);
    let right = Advert {
        auth: Auth::simple_text(b"s3cret").expect("password"),
        ..advert(Version::V2, 200)
    };
    let wrong_pw = Advert {
        auth: Auth::simple_text(b"s3cres").expect("password"),
        ..right.clone()
    };
    rig.expect_drop(
        MASTER,
        MCAST,
        255,
        &bytes(&wrong_pw, MASTER, MCAST),
        DropReason::AuthFailure,
    );
    let no_auth = Advert {
        auth: Auth::None,
        ..right.clone()
    };
    rig.expect_drop(
        MASTER,
        MCAST,
        255,
        &bytes(&no_auth, MASTER, MCAST),
        DropReason::AuthTypeMismatch,
    );
    let slow = Advert {
        max_adver_int: AdvertInterval::from_secs(2).expect("non-zero"),
        ..right.clone()
    };
    rig.expect_drop(
        MASTER,
        MCAST,
        255,
        &bytes(&slow, MASTER, MCAST),
        DropReason::IntervalMismatch,
    );
    let mut ah = bytes(&right, MASTER, MCAST);
    ah[4] = 2; // IPsec AH (RFC 2338), unsupported; the checksum drops by 0x0100
    let sum = u16::from_be_bytes([ah[6], ah[7]]);
    ah[6..8].copy_from_slice(&sum.wrapping_sub(0x100).to_be_bytes());
    rig.expect_drop(MASTER, MCAST, 255, &ah, DropReason::BadAuthType);
    rig.rx(
        Duration::from_secs(3),
        MASTER,
        MCAST,
        255,
        &bytes(&right, MASTER, MCAST),
    );
    assert_eq!(rig.drain(), vec![]);
    assert_eq!(rig.vr.master_priority(), Some(200));
}

#[test]
fn v3_interval_is_learnt_not_checked() {
    let mut rig = Rig::backup(backup_cfg());
    let fast = Advert {
        max_adver_int: AdvertInterval::from_centis(10).expect("non-zero"),
        ..advert(Version::V3, 100)
    };
    rig.rx(
        Duration::from_secs(2),
        MASTER,
        MCAST,
        255,
        &bytes(&fast, MASTER, MCAST),
    );
    assert_eq!(rig.drain(), vec![]);
    assert_eq!(rig.vr.master_adver_interval(), fast.max_adver_int);
}

#[test]
fn unicast_checks_source_and_per_peer_ttl() {
    let mut cfg = backup_cfg();
    cfg.unicast_peers = Some(vec![
        Peer {
            addr: ip(MASTER),
            min_ttl: 250,
            max_ttl: 255,
        },
        Peer::new(ip("10.77.0.13")),
    ]);
    let mut rig = Rig::backup(cfg);
    let me = "10.77.0.12";
    let tempting = advert(Version::V3, 200);
    rig.expect_drop(
        MASTER,
        me,
        249,
        &bytes(&tempting, MASTER, me),
        DropReason::BadTtl,
    );
    rig.expect_drop(
        "10.77.0.99",
        me,
        255,
        &bytes(&tempting, "10.77.0.99", me),
        DropReason::UnknownSource,
    );
    rig.expect_drop(
        MASTER,
        MCAST,
        255,
        &bytes(&tempting, MASTER, MCAST),
        DropReason::WrongDestination,
    );
    // A routed peer (TTL 250) is fine; a peer without limits at TTL 1 too.
    rig.rx(
        Duration::from_secs(3),
        MASTER,
        me,
        250,
        &bytes(&tempting, MASTER, me),
    );
    assert_eq!(rig.drain(), vec![]);
    let low = advert(Version::V3, 10);
    rig.rx(
        Duration::from_secs(3),
        "10.77.0.13",
        me,
        1,
        &bytes(&low, "10.77.0.13", me),
    );
    assert_eq!(rig.drain(), vec![]);
    assert_eq!(rig.vr.stats().adverts_received, 3);
}

#[test]
fn unicast_adverts_go_to_every_peer_with_their_own_checksum() {
    let mut cfg = backup_cfg();
    cfg.priority = 255;
    cfg.unicast_peers = Some(vec![
        Peer::new(ip("10.77.0.11")),
        Peer::new(ip("10.77.0.13")),
    ]);
    let t0 = Instant::now();
    let mut vr = Instance::new(cfg).expect("valid");
    vr.handle(t0, Event::Startup);
    let Some(Action::SendAdvert(out)) = vr.poll_action() else {
        panic!("owner sends an advert first");
    };
    assert_eq!(out.src, ip("10.77.0.12"));
    let dsts: Vec<IpAddr> = out.datagrams.iter().map(|d| d.dst).collect();
    assert_eq!(dsts, vec![ip("10.77.0.11"), ip("10.77.0.13")]);
    assert_ne!(out.datagrams[0].payload, out.datagrams[1].payload);
    for d in &out.datagrams {
        assert_eq!(
            Advert::decode(&d.payload, out.src, d.dst),
            Ok(out.advert.clone())
        );
    }
}

#[test]
fn a_master_ignores_bad_higher_priority_adverts() {
    let t0 = Instant::now();
    let mut cfg = backup_cfg();
    cfg.priority = 255;
    let mut vr = Instance::new(cfg).expect("valid");
    vr.handle(t0, Event::Startup);
    while vr.poll_action().is_some() {}
    assert_eq!(vr.state(), State::Master);
    // Priority 255 from a higher address, but TTL 254: must not make us yield.
    let higher = advert(Version::V3, 255);
    let b = bytes(&higher, "10.77.0.200", MCAST);
    vr.handle(
        t0 + Duration::from_secs(1),
        Event::AdvertReceived {
            src: ip("10.77.0.200"),
            dst: ip(MCAST),
            ttl: 254,
            bytes: &b,
        },
    );
    assert_eq!(vr.state(), State::Master);
    assert_eq!(vr.stats().drops.get(DropReason::BadTtl), 1);
    // With TTL 255 it is a real owner with a higher address: we yield (tie-break).
    vr.handle(
        t0 + Duration::from_secs(1),
        Event::AdvertReceived {
            src: ip("10.77.0.200"),
            dst: ip(MCAST),
            ttl: 255,
            bytes: &b,
        },
    );
    assert_eq!(vr.state(), State::Backup);
}

#[test]
fn adverts_before_start_and_in_fault_are_not_processed() {
    let t0 = Instant::now();
    let mut vr = Instance::new(backup_cfg()).expect("valid");
    let b = bytes(&advert(Version::V3, 100), MASTER, MCAST);
    let rx = |vr: &mut Instance| {
        vr.handle(
            t0,
            Event::AdvertReceived {
                src: ip(MASTER),
                dst: ip(MCAST),
                ttl: 255,
                bytes: &b,
            },
        )
    };
    rx(&mut vr);
    vr.handle(t0, Event::InterfaceDown);
    vr.handle(t0, Event::Startup);
    assert_eq!(vr.state(), State::Fault);
    rx(&mut vr);
    assert_eq!(vr.stats().drops.get(DropReason::NotActive), 2);
    assert_eq!(vr.stats().adverts_received, 0);
}

#[test]
fn drop_reason_counters_are_distinct() {
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r} out of order in DropReason::ALL");
    }
    let names: std::collections::BTreeSet<&str> =
        DropReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), DropReason::ALL.len());
}

// ---- configuration

fn check(f: impl FnOnce(&mut InstanceConfig)) -> Result<Instance, ConfigError> {
    let mut c = backup_cfg();
    f(&mut c);
    Instance::new(c)
}

fn refused(f: impl FnOnce(&mut InstanceConfig)) -> ConfigError {
    match check(f) {
        Ok(_) => panic!("configuration accepted"),
        Err(e) => e,
    }
}

#[test]
fn configuration_is_validated() {
    assert!(check(|_| {}).is_ok());
    assert_eq!(refused(|c| c.vrid = 0), ConfigError::ZeroVrid);
    assert_eq!(refused(|c| c.priority = 0), ConfigError::ZeroPriority);
    let v6 = |c: &mut InstanceConfig| {
        c.family = Family::Ipv6;
        c.primary_address = ip("fe80::12");
        c.virtual_addresses = vec![ip("fd77::100")];
    };
    assert!(check(v6).is_ok());
    assert_eq!(
        refused(|c| {
            v6(c);
            c.version = Version::V2;
        }),
        ConfigError::V2OverIpv6
    );
    let cs = |n| AdvertInterval::from_centis(n).expect("non-zero");
    assert_eq!(
        refused(|c| c.advert_interval = cs(4096)),
        ConfigError::Interval {
            interval: cs(4096),
            version: Version::V3
        }
    );
    assert_eq!(
        refused(|c| {
            c.version = Version::V2;
            c.advert_interval = cs(50);
        }),
        ConfigError::Interval {
            interval: cs(50),
            version: Version::V2
        }
    );
    assert_eq!(
        refused(|c| c.down_timer_adverts = 0),
        ConfigError::DownTimerAdverts(0)
    );
    assert!(matches!(
        refused(|c| c.virtual_addresses = vec![ip("fd77::100")]),
        ConfigError::FamilyMismatch { .. }
    ));
    assert!(matches!(
        refused(|c| c.primary_address = ip("224.0.0.18")),
        ConfigError::UnusableAddress { .. }
    ));
    assert!(matches!(
        refused(|c| c.virtual_addresses = vec![ip("0.0.0.0")]),
        ConfigError::UnusableAddress { .. }
    ));
    assert_eq!(
        refused(|c| c.virtual_addresses = vec![]),
        ConfigError::NoVirtualAddresses
    );
    assert_eq!(
        refused(|c| c.virtual_addresses = vec![ip("10.0.0.1"), ip("10.0.0.1")]),
        ConfigError::DuplicateVirtualAddress(ip("10.0.0.1"))
    );
    assert_eq!(
        refused(|c| {
            c.virtual_addresses = (0..256u32)
                .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a01_0000 + i)))
                .collect()
        }),
        ConfigError::TooManyVirtualAddresses(256)
    );
    assert_eq!(
        refused(|c| c.unicast_peers = Some(vec![])),
        ConfigError::EmptyUnicastPeers
    );
    assert_eq!(
        refused(|c| c.unicast_peers = Some(vec![Peer::new(ip("10.77.0.12"))])),
        ConfigError::PeerIsSelf(ip("10.77.0.12"))
    );
    assert_eq!(
        refused(|c| { c.unicast_peers = Some(vec![Peer::new(ip(MASTER)), Peer::new(ip(MASTER))]) }),
        ConfigError::DuplicatePeer(ip(MASTER))
    );
    assert_eq!(
        refused(|c| {
            c.unicast_peers = Some(vec![Peer {
                addr: ip(MASTER),
                min_ttl: 10,
                max_ttl: 9,
            }])
        }),
        ConfigError::PeerTtlRange {
            addr: ip(MASTER),
            min: 10,
            max: 9
        }
    );
    assert_eq!(
        refused(|c| c.auth = Auth::simple_text(b"pw").expect("password")),
        ConfigError::V3Auth
    );
    assert_eq!(
        refused(|c| {
            c.preempt = false;
            c.preempt_delay = Duration::from_secs(1);
        }),
        ConfigError::PreemptDelayWithNopreempt
    );
    assert_eq!(
        refused(|c| {
            c.initial_state = InitialState::Master;
            c.preempt = false;
        }),
        ConfigError::InitialMasterWithNopreempt
    );
    assert_eq!(
        refused(|c| {
            c.initial_state = InitialState::Master;
            c.preempt_delay = Duration::from_secs(1);
        }),
        ConfigError::InitialMasterWithPreemptDelay
    );
    assert_eq!(
        refused(|c| c.garp.master_refresh = Some(Duration::ZERO)),
        ConfigError::ZeroGarpRefresh
    );
    // Strict mode: RFC behaviour only.
    let strict = |c: &mut InstanceConfig| {
        c.strict = true;
        c.higher_prio_send_advert = false;
    };
    assert!(check(strict).is_ok());
    assert_eq!(
        refused(|c| c.strict = true),
        ConfigError::Strict("higher_prio_send_advert")
    );
    assert_eq!(
        refused(|c| {
            strict(c);
            c.unicast_peers = Some(vec![Peer::new(ip(MASTER))]);
        }),
        ConfigError::Strict("unicast_peer")
    );
    assert!(matches!(
        refused(|c| {
            strict(c);
            c.initial_state = InitialState::Master;
        }),
        ConfigError::Strict(_)
    ));
    assert!(matches!(
        refused(|c| {
            strict(c);
            c.priority = 255;
        }),
        ConfigError::Strict(_)
    ));
    // Errors name the setting.
    assert_eq!(
        ConfigError::EmptyUnicastPeers.to_string(),
        "unicast_peer is empty (omit it for multicast)"
    );
}

#[test]
fn initial_state_master_is_only_a_hint() {
    // keepalived's `state MASTER` still starts as BACKUP and waits Master_Down.
    let mut cfg = backup_cfg();
    cfg.initial_state = InitialState::Master;
    let t0 = Instant::now();
    let mut vr = Instance::new(cfg).expect("valid");
    vr.handle(t0, Event::Startup);
    assert_eq!(vr.state(), State::Backup);
    assert_eq!(vr.poll_timeout(), Some(t0 + vr.master_down_interval()));
}

#[test]
fn strict_master_discards_lower_priority_silently() {
    let mut cfg = backup_cfg();
    cfg.strict = true;
    cfg.higher_prio_send_advert = false;
    let t0 = Instant::now();
    let mut vr = Instance::new(cfg).expect("valid");
    vr.handle(t0, Event::Startup);
    let down = vr.poll_timeout().expect("master-down timer");
    vr.handle_timeout(down);
    while vr.poll_action().is_some() {}
    assert_eq!(vr.state(), State::Master);
    let low = bytes(&advert(Version::V3, 10), MASTER, MCAST);
    vr.handle(
        down,
        Event::AdvertReceived {
            src: ip(MASTER),
            dst: ip(MCAST),
            ttl: 255,
            bytes: &low,
        },
    );
    assert_eq!(vr.poll_action(), None);
    assert_eq!(vr.stats().adverts_received, 1);
}
