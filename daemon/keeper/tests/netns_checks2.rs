//! Health checks II against real servers in network namespaces: keeperd in `director`, real
//! servers in `rs1` (a Python UDP service, Debian's dnsmasq, the kernel's own ICMP echo with an
//! nftables rule that drops it, Debian's aiosmtpd), `file_check` on files the test writes, and
//! quorum transitions with their scripts. Root only (`--features netns-tests`).
//!
//! Every transition is asserted on its verdict and on its time, taken from keeperd's own record
//! of the change (`since` in `keeperctl status`), inside the window the configuration implies:
//! a lower bound (the retries and timeouts must have been waited) and an upper bound, with a
//! margin for process start and scheduling. Waits are on conditions with deadlines.

#![cfg(feature = "netns-tests")]

mod lab;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keeper::control::{QuorumView, RealServerView};
use lab::{Lab, wait_until};

/// Slack for process start, scheduling and polling, added to every upper bound.
const MARGIN: f64 = 1.5;
/// Slack below a lower bound (clock reads on two sides).
const EARLY: f64 = 0.05;

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).expect("clock").as_secs_f64()
}

fn view(lab: &Lab, id: usize, vs: &str, rs: &str) -> Option<RealServerView> {
    lab.status(id)?
        .real_servers
        .into_iter()
        .find(|r| r.virtual_server == vs && r.real_server == rs)
}

fn quorum(lab: &Lab, id: usize, vs: &str) -> Option<QuorumView> {
    lab.status(id)?
        .virtual_servers
        .into_iter()
        .find(|q| q.virtual_server == vs)
}

/// Waits until real server `rs` of `vs` is in `state`; returns its view.
fn wait_rs(lab: &Lab, id: usize, vs: &str, rs: &str, state: &str, within: f64) -> RealServerView {
    let mut last = None;
    wait_until(
        &format!("{vs}/{rs} {state}"),
        Duration::from_secs_f64(within),
        || {
            last = view(lab, id, vs, rs);
            last.as_ref().is_some_and(|v| v.state == state)
        },
    );
    last.expect("view")
}

fn wait_state(lab: &Lab, id: usize, vs: &str, state: &str, within: f64) -> RealServerView {
    wait_rs(lab, id, vs, "rs1", state, within)
}

/// Asserts that `since` came `lo..=hi` seconds (plus slack) after `event`.
fn assert_since(what: &str, since: Option<f64>, event: SystemTime, lo: f64, hi: f64) {
    let since = since.unwrap_or_else(|| panic!("{what}: no transition recorded"));
    let after = since - epoch(event);
    assert!(
        after >= lo - EARLY && after <= hi + MARGIN,
        "{what}: came {after:.3} s after the event, outside [{lo}, {hi}] (+{MARGIN} s margin)"
    );
}

fn assert_window(v: &RealServerView, event: SystemTime, lo: f64, hi: f64) {
    let what = format!("{}/{} {}", v.virtual_server, v.real_server, v.state);
    assert_since(&what, v.since, event, lo, hi);
}

fn error_of(v: &RealServerView) -> &str {
    v.last_error.as_deref().unwrap_or("")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A virtual server `name` with one real server `rs1` at `ip:port` and checker text.
fn vs(name: &str, vs_port: u16, ip: &str, port: u16, rs_extra: &str, checker: &str) -> String {
    format!(
        "[virtual_server.{name}]\nip = \"10.0.0.100\"\nport = {vs_port}\ndelay_loop = 1\nwarmup = 0\n\
         [virtual_server.{name}.real_server.rs1]\nip = \"{ip}\"\nport = {port}\n{rs_extra}\n{checker}\n"
    )
}

/// Whether something in `node` listens on UDP `port`.
fn listens_udp(lab: &Lab, node: &str, port: u16) -> bool {
    let out = lab.exec(node, &["ss", "-Hlun", &format!("sport = :{port}")]);
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// A UDP service: echoes each datagram, or (by the word in `mode`) stays silent or answers
/// "nope".
const UDP_SERVER: &str = r#"
import socket, sys
ip, port, mode_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
while True:
    data, addr = s.recvfrom(65536)
    try:
        mode = open(mode_file).read().strip()
    except OSError:
        mode = "echo"
    if mode == "echo":
        s.sendto(data, addr)
    elif mode == "wrong":
        s.sendto(b"nope", addr)
"#;

fn start_udp_server(lab: &mut Lab, ip: &str, port: u16, mode: &Path) -> usize {
    let script = lab.dir.path().join("udp_server.py");
    write(&script, UDP_SERVER);
    let (s, m, p) = (
        script.display().to_string(),
        mode.display().to_string(),
        port.to_string(),
    );
    let id = lab.start_daemon("rs1", "udp", None, &["python3", &s, ip, &p, &m]);
    wait_until("UDP service listens", Duration::from_secs(10), || {
        listens_udp(lab, "rs1", port)
    });
    id
}

#[test]
fn udp_checks_follow_a_real_udp_service() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let dir = lab.dir.path().to_path_buf();
    let rs1 = lab.v4_of("rs1");
    let mode = dir.join("mode");
    write(&mode, "echo");
    let server = start_udp_server(&mut lab, &rs1, 7000, &mode);
    // Four checks ask rs1 every second: without this its kernel sends one port unreachable per
    // second to the director and a check without require_reply would pass on the silence
    // (keepalived's documentation gives the same advice).
    let out = lab.exec("rs1", &["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut config = String::new();
    // keepalived's default: no reply needed, only no ICMP error. retry 0.
    config += &vs(
        "any",
        53,
        &rs1,
        7000,
        "",
        "udp_check = { connect_timeout = 1, retry = 0 }",
    );
    // A reply must come and start with "keep" ("k e x p": a wildcard nibble), 4-64 octets.
    // retry 1, 0.5 s apart.
    config += &vs(
        "reply",
        54,
        &rs1,
        7000,
        "",
        "udp_check = { payload = \"6b 65 65 70 61 6c 69 76 65\", require_reply = \"6b 65 x5 70\", \
         min_reply_length = 4, max_reply_length = 64, connect_timeout = 1, retry = 1, \
         delay_before_retry = \"500ms\" }",
    );
    // Nothing listens: ICMP port unreachable at the first attempt.
    config += &vs(
        "closed",
        55,
        &rs1,
        7001,
        "",
        "udp_check = { connect_timeout = 1, retry = 3 }",
    );
    // require_reply = true: any reply, keepalived's default payload.
    config += &vs(
        "flag",
        56,
        &rs1,
        7000,
        "",
        "udp_check = { require_reply = true, connect_timeout = 1, retry = 0 }",
    );

    let start = SystemTime::now();
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);

    let v = wait_state(&lab, kd, "closed", "down", 1.0 + MARGIN + 3.0);
    assert_window(&v, start, 1.0, 1.0 + 0.5);
    assert!(
        error_of(&v).contains("Connection refused"),
        "{:?}",
        v.last_error
    );
    for name in ["any", "reply", "flag"] {
        wait_until(&format!("{name} checked"), Duration::from_secs(5), || {
            view(&lab, kd, name, "rs1").is_some_and(|v| v.checks[0].attempts >= 2)
        });
        let v = view(&lab, kd, name, "rs1").expect("view");
        assert_eq!(
            (v.state.as_str(), v.since, v.last_error.as_deref()),
            ("up", None, None),
            "{name}"
        );
    }

    // Silent: `reply` and `flag` fail (no reply within connect_timeout); `any` stays UP.
    // reply: 1 s timeout, 0.5 s, 1 s timeout: at least 2.5 s, at most delay_loop + 2.5 s.
    let event = SystemTime::now();
    write(&mode, "silent");
    let v = wait_state(&lab, kd, "reply", "down", 3.5 + MARGIN + 2.0);
    assert_window(&v, event, 2.5, 1.0 + 2.5);
    assert!(
        error_of(&v).contains("no reply from") && error_of(&v).contains("require_reply"),
        "{:?}",
        v.last_error
    );
    let v = wait_state(&lab, kd, "flag", "down", 2.0 + MARGIN + 2.0);
    assert_window(&v, event, 1.0, 1.0 + 1.0);
    let v = view(&lab, kd, "any", "rs1").expect("view");
    assert_eq!((v.state.as_str(), v.since), ("up", None), "silence passes");

    // The wrong reply: UP again at the first echo, then DOWN on "nope".
    let event = SystemTime::now();
    write(&mode, "echo");
    let v = wait_state(&lab, kd, "reply", "up", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0 + 1.0);
    let event = SystemTime::now();
    write(&mode, "wrong");
    let v = wait_state(&lab, kd, "reply", "down", 1.5 + MARGIN + 2.0);
    assert_window(&v, event, 0.5, 1.0 + 0.5);
    assert!(
        error_of(&v).contains("reply 6e 6f 70 65 does not match require_reply"),
        "{:?}",
        v.last_error
    );

    // The service gone: ICMP port unreachable fails even the check without require_reply.
    let event = SystemTime::now();
    lab.signal(server, libc::SIGKILL);
    lab.wait_exit(server, Duration::from_secs(5));
    let v = wait_state(&lab, kd, "any", "down", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    assert!(
        error_of(&v).contains("Connection refused"),
        "{:?}",
        v.last_error
    );
    write(&mode, "echo");
    start_udp_server(&mut lab, &rs1, 7000, &mode);
    let event = SystemTime::now();
    let v = wait_state(&lab, kd, "any", "up", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
}

#[test]
fn dns_check_against_dnsmasq() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let rs1 = lab.v4_of("rs1");
    let rs1_v6 = lab.v6(1);
    let dnsmasq = |lab: &mut Lab| {
        let id = lab.start_daemon(
            "rs1",
            "dnsmasq",
            None,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                &format!("--listen-address={rs1}"),
                &format!("--listen-address={rs1_v6}"),
                "--port=53",
                "--user=root",
                "--pid-file=",
                "--log-facility=-",
                "--local=/keeper.test/",
                &format!("--address=/www.keeper.test/{rs1}"),
                &format!("--address=/www.keeper.test/{rs1_v6}"),
                "--mx-host=keeper.test,mail.keeper.test,10",
            ],
        );
        wait_until("dnsmasq listens", Duration::from_secs(10), || {
            listens_udp(lab, "rs1", 53)
        });
        id
    };
    let server = dnsmasq(&mut lab);
    let dns = |name: &str, extra: &str| {
        format!("[virtual_server.{name}.real_server.rs1.dns_check]\nconnect_timeout = 1\n{extra}\n")
    };
    let mut config = String::new();
    // keepalived's defaults: retry 3, delay_before_retry = delay_loop (1 s).
    config += &vs(
        "a",
        53,
        &rs1,
        53,
        "",
        &dns(
            "a",
            &format!("type = \"A\"\nname = \"www.keeper.test\"\nanswer = [\"{rs1}\"]"),
        ),
    );
    config += &vs(
        "aaaa",
        54,
        &rs1,
        53,
        "",
        &dns(
            "aaaa",
            &format!("type = \"aaaa\"\nname = \"www.keeper.test.\"\nanswer = [\"{rs1_v6}\"]"),
        ),
    );
    config += &vs(
        "mx",
        55,
        &rs1,
        53,
        "",
        &dns(
            "mx",
            "type = \"MX\"\nname = \"keeper.test\"\nanswer = [\"10 mail.keeper.test\"]",
        ),
    );
    config += &vs(
        "wrong",
        56,
        &rs1,
        53,
        "",
        &dns(
            "wrong",
            "type = \"A\"\nname = \"www.keeper.test\"\nanswer = [\"192.0.2.1\"]",
        ),
    );
    config += &vs(
        "nx",
        57,
        &rs1,
        53,
        "",
        &dns("nx", "type = \"A\"\nname = \"nothing.keeper.test\""),
    );
    // Over IPv6 to the same dnsmasq, keepalived's default query (SOA of the root): dnsmasq
    // has no upstream, it answers REFUSED.
    config += &vs("v6", 58, &rs1_v6, 53, "", &dns("v6", "retry = 0"))
        .replace("ip = \"10.0.0.100\"", "ip = \"fd00::100\"");

    let start = SystemTime::now();
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);

    // One failure is enough at start, whatever retry says (keepalived).
    for (name, error) in [
        ("wrong", "answer has no A \"192.0.2.1\""),
        ("nx", "Non-Existent Domain"),
        ("v6", "response code Query Refused (5)"),
    ] {
        let v = wait_state(&lab, kd, name, "down", 1.0 + MARGIN + 3.0);
        assert_window(&v, start, 1.0, 1.0 + 0.5);
        assert!(error_of(&v).contains(error), "{name}: {:?}", v.last_error);
    }
    for name in ["a", "aaaa", "mx"] {
        wait_until(&format!("{name} checked"), Duration::from_secs(5), || {
            view(&lab, kd, name, "rs1").is_some_and(|v| v.checks[0].attempts >= 2)
        });
        let v = view(&lab, kd, name, "rs1").expect("view");
        assert_eq!(
            (v.state.as_str(), v.since, v.last_error.as_deref()),
            ("up", None, None),
            "{name}"
        );
    }

    // dnsmasq killed: each attempt fails at the ICMP port unreachable, or at connect_timeout
    // when the kernel rate-limits those (1 per second per peer, and five checks ask); DOWN at
    // the 4th failure, 1 s apart: at least 3 s, at most delay_loop + 4 x 1 s + 3 x 1 s.
    let event = SystemTime::now();
    lab.signal(server, libc::SIGKILL);
    lab.wait_exit(server, Duration::from_secs(5));
    let v = wait_state(&lab, kd, "a", "down", 8.0 + MARGIN + 2.0);
    assert_window(&v, event, 3.0, 1.0 + 4.0 + 3.0);
    assert!(
        error_of(&v).contains("Connection refused") || error_of(&v).contains("no response from"),
        "{:?}",
        v.last_error
    );
    dnsmasq(&mut lab);
    let event = SystemTime::now();
    let v = wait_state(&lab, kd, "a", "up", 1.0 + MARGIN + 3.0);
    assert_window(&v, event, 0.0, 1.0);
}

#[test]
fn ping_check_with_icmp_dropped_by_nftables() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let rs1 = lab.v4_of("rs1");
    let rs1_v6 = lab.v6(1);
    let ping = "ping_check = { connect_timeout = 1, retry = 1, delay_before_retry = \"500ms\" }";
    let mut config = String::new();
    config += &vs("v4", 80, &rs1, 80, "", ping);
    config += &vs("v6", 80, &rs1_v6, 80, "", ping).replace("10.0.0.100", "fd00::100");
    // connect_ip: the check goes elsewhere than the real server's address.
    config += &vs(
        "elsewhere",
        81,
        "10.0.0.99",
        80,
        "",
        &format!("ping_check = {{ connect_ip = \"{rs1}\", connect_timeout = 1, retry = 0 }}"),
    );
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);
    for name in ["v4", "v6", "elsewhere"] {
        wait_until(&format!("{name} checked"), Duration::from_secs(6), || {
            view(&lab, kd, name, "rs1").is_some_and(|v| v.checks[0].attempts >= 2)
        });
        let v = view(&lab, kd, name, "rs1").expect("view");
        assert_eq!(
            (v.state.as_str(), v.since, v.last_error.as_deref()),
            ("up", None, None),
            "{name}"
        );
    }
    assert!(
        !lab.log(kd).contains("using ping sockets"),
        "keeperd (root, CAP_NET_RAW kept) uses raw sockets"
    );

    // rs1 drops echo requests: DOWN after 1 s timeout, 0.5 s, 1 s timeout: at least 2.5 s, at
    // most delay_loop + 2.5 s.
    let nft = |args: &str| {
        let out = lab.exec("rs1", &["nft", args]);
        assert!(
            out.status.success(),
            "nft {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let event = SystemTime::now();
    nft("add table inet drop_echo; \
         add chain inet drop_echo input { type filter hook input priority 0; }; \
         add rule inet drop_echo input icmp type echo-request drop; \
         add rule inet drop_echo input icmpv6 type echo-request drop");
    for name in ["v4", "v6"] {
        let v = wait_state(&lab, kd, name, "down", 3.5 + MARGIN + 2.0);
        assert_window(&v, event, 2.5, 1.0 + 2.5);
        assert!(
            error_of(&v).contains("no echo reply from")
                && error_of(&v).contains("connect_timeout 1s"),
            "{name}: {:?}",
            v.last_error
        );
    }
    let v = wait_state(&lab, kd, "elsewhere", "down", 2.0 + MARGIN + 2.0);
    assert_window(&v, event, 1.0, 1.0 + 1.0);

    let event = SystemTime::now();
    nft("delete table inet drop_echo");
    for name in ["v4", "v6", "elsewhere"] {
        let v = wait_state(&lab, kd, name, "up", 1.0 + MARGIN + 2.0);
        assert_window(&v, event, 0.0, 1.0);
    }
}

/// A TCP server that greets with 554 (service not available) and closes.
const BAD_SMTP: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.sendall(b"554 mx.keeper.test no service here\r\n")
    c.close()
"#;

#[test]
fn smtp_check_against_aiosmtpd() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let dir = lab.dir.path().to_path_buf();
    let rs1 = lab.v4_of("rs1");
    let aiosmtpd = |lab: &mut Lab| {
        let listen = format!("{rs1}:2525");
        let id = lab.start_daemon(
            "rs1",
            "aiosmtpd",
            None,
            &[
                "/usr/bin/python3",
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &listen,
                "-c",
                "aiosmtpd.handlers.Sink",
            ],
        );
        wait_until("aiosmtpd listens", Duration::from_secs(20), || {
            lab.listens("rs1", 2525)
        });
        id
    };
    let smtpd = aiosmtpd(&mut lab);
    write(&dir.join("bad_smtp.py"), BAD_SMTP);
    let bad = dir.join("bad_smtp.py").display().to_string();
    lab.start_daemon("rs1", "bad_smtp", None, &["python3", &bad, &rs1, "2526"]);
    wait_until("bad SMTP listens", Duration::from_secs(10), || {
        lab.listens("rs1", 2526)
    });
    let smtp = |extra: &str| {
        format!(
            "smtp_check = {{ connect_timeout = 1, retry = 1, delay_before_retry = \"500ms\" {extra} }}"
        )
    };
    let mut config = String::new();
    config += &vs(
        "mail",
        25,
        &rs1,
        2525,
        "",
        &smtp(", helo_name = \"lb.keeper.test\""),
    );
    config += &vs("bad", 26, &rs1, 2526, "", &smtp(""));
    let start = SystemTime::now();
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);

    // keepalived's SMTP checker retries even at start: 1 + retry failures, 0.5 s apart.
    let v = wait_state(&lab, kd, "bad", "down", 1.5 + MARGIN + 3.0);
    assert_window(&v, start, 1.5, 1.5 + 0.5);
    assert!(
        error_of(&v).contains("greeting 554, not 220"),
        "{:?}",
        v.last_error
    );
    wait_until("mail checked", Duration::from_secs(5), || {
        view(&lab, kd, "mail", "rs1").is_some_and(|v| v.checks[0].attempts >= 2)
    });
    let v = view(&lab, kd, "mail", "rs1").expect("view");
    assert_eq!(
        (v.state.as_str(), v.since, v.last_error.as_deref()),
        ("up", None, None)
    );

    let event = SystemTime::now();
    lab.signal(smtpd, libc::SIGKILL);
    lab.wait_exit(smtpd, Duration::from_secs(5));
    // Refused at once, retried 0.5 s later: at least 0.5 s, at most delay_loop + 0.5 s.
    let v = wait_state(&lab, kd, "mail", "down", 1.5 + MARGIN + 2.0);
    assert_window(&v, event, 0.5, 1.0 + 0.5);
    assert!(
        error_of(&v).contains("Connection refused"),
        "{:?}",
        v.last_error
    );
    aiosmtpd(&mut lab);
    let event = SystemTime::now();
    // DOWN, each round still tries 1 + retry times (0.5 s apart) before delay_loop.
    let v = wait_state(&lab, kd, "mail", "up", 1.5 + MARGIN + 3.0);
    assert_window(&v, event, 0.0, 1.0 + 0.5);
}

#[test]
fn file_check_sets_state_and_weight_from_a_file() {
    let mut lab = Lab::new(&["director"]);
    let dir = lab.dir.path().to_path_buf();
    let (state_f, weight_f, init_f) = (dir.join("state"), dir.join("weight"), dir.join("init"));
    write(&state_f, "0\n");
    write(&weight_f, "0\n");
    let config = format!(
        "[vrrp_track_file.state]\nfile = {:?}\n\
         [vrrp_track_file.weight]\nfile = {:?}\nweight = 5\n\
         [vrrp_track_file.init]\nfile = {:?}\ninit_file = 1\nweight = 0\n\
         [virtual_server.web]\nip = \"10.0.0.100\"\nport = 80\ndelay_loop = 1\n\
         [virtual_server.web.real_server.updown]\nip = \"10.0.0.21\"\nweight = 2\n\
         file_check = {{ track_file = \"state\", weight = 0 }}\n\
         [virtual_server.web.real_server.weighted]\nip = \"10.0.0.22\"\nweight = 2\n\
         file_check = {{ track_file = \"weight\" }}\n\
         [virtual_server.web.real_server.reversed]\nip = \"10.0.0.23\"\nweight = 2\n\
         file_check = {{ track_file = \"state\", weight = 0, reverse = true }}\n\
         [virtual_server.web.real_server.init]\nip = \"10.0.0.24\"\n\
         file_check = {{ track_file = \"init\" }}\n",
        state_f.display().to_string(),
        weight_f.display().to_string(),
        init_f.display().to_string()
    );
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);
    // The checker publishes its servers moments after the control socket answers.
    wait_until("the checker's servers", Duration::from_secs(5), || {
        lab.status(kd).is_some_and(|s| s.real_servers.len() == 4)
    });
    let rs = |name: &str| {
        view(&lab, kd, "web", name)
            .unwrap_or_else(|| panic!("no status of web/{name}; keeperd log:\n{}", lab.log(kd)))
    };
    // Known at start, without waiting for a first attempt: no transition recorded.
    let at_start = |name: &str, state: &str, weight: u32| {
        let v = rs(name);
        assert_eq!(
            (v.state.as_str(), v.weight, v.since),
            (state, weight, None),
            "{name} at start"
        );
    };
    at_start("updown", "up", 2);
    at_start("weighted", "up", 2);
    at_start("reversed", "down", 2);
    // init_file wrote 1 before the first read: weight 0 makes that DOWN.
    at_start("init", "down", 1);
    assert_eq!(read(&init_f), "1\n");

    // A write is seen when the writer closes the file: within moments, not a delay_loop.
    let event = SystemTime::now();
    write(&state_f, "1\n");
    let v = wait_rs(&lab, kd, "web", "updown", "down", MARGIN + 1.0);
    assert_window(&v, event, 0.0, 0.2);
    assert!(
        error_of(&v).contains("file_check: state") && error_of(&v).contains("holds 1"),
        "{:?}",
        v.last_error
    );
    let v = wait_rs(&lab, kd, "web", "reversed", "up", MARGIN + 1.0);
    assert_window(&v, event, 0.0, 0.2);

    // value x weight is added to the configured weight; 0 or below is weight 0, still UP.
    let event = SystemTime::now();
    write(&weight_f, "3\n");
    let mut v = None;
    wait_until(
        "weight 2 + 3 x 5",
        Duration::from_secs_f64(MARGIN + 1.0),
        || {
            v = view(&lab, kd, "web", "weighted");
            v.as_ref().is_some_and(|v| v.weight == 17)
        },
    );
    let v = v.expect("view");
    assert!(v.dynamic_weight && v.state == "up");
    assert_window(&v, event, 0.0, 0.2);
    write(&weight_f, "-1\n");
    wait_until("weight 0", Duration::from_secs_f64(MARGIN + 1.0), || {
        view(&lab, kd, "web", "weighted").is_some_and(|v| v.weight == 0 && v.state == "up")
    });
    // Deleted: reads 0.
    std::fs::remove_file(&state_f).expect("rm");
    wait_rs(&lab, kd, "web", "updown", "up", MARGIN + 1.0);
    wait_rs(&lab, kd, "web", "reversed", "down", MARGIN + 1.0);
}

/// busybox httpd on `port` of rs1 (a TCP listener the checks connect to).
fn httpd(lab: &mut Lab, ip: &str, port: u16) -> usize {
    let www = lab.dir.path().display().to_string();
    let listen = format!("{ip}:{port}");
    let id = lab.start_daemon(
        "rs1",
        &format!("httpd{port}"),
        None,
        &["busybox", "httpd", "-f", "-p", &listen, "-h", &www],
    );
    wait_until("httpd listens", Duration::from_secs(10), || {
        lab.listens("rs1", port)
    });
    id
}

#[test]
fn quorum_transitions_run_their_scripts() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let dir = lab.dir.path().to_path_buf();
    let rs1 = lab.v4_of("rs1");
    let mut servers = std::collections::BTreeMap::new();
    for port in [81, 82, 83] {
        servers.insert(port, httpd(&mut lab, &rs1, port));
    }
    let log = dir.join("quorum.log");
    let script = |word: &str| format!("\"/bin/sh -c 'echo {word} >> {}'\"", log.display());
    let sorry_log = dir.join("sorry.log");
    // Weights 1, 2, 3 (6 in all); quorum 4, hysteresis 1: gained at 5 or more, lost under 3.
    let mut config = format!(
        "[virtual_server.web]\nip = \"10.0.0.100\"\nport = 80\ndelay_loop = 1\nwarmup = 0\n\
         quorum = 4\nhysteresis = 1\nomega = true\nquorum_up = {}\nquorum_down = {}\n",
        script("up"),
        script("down")
    );
    for (port, weight) in [(81, 1), (82, 2), (83, 3)] {
        config += &format!(
            "[virtual_server.web.real_server.w{weight}]\nip = \"{rs1}\"\nport = {port}\nweight = {weight}\n\
             tcp_check = {{ connect_timeout = 1, retry = 0 }}\n"
        );
    }
    // alpha and a sorry server: keepalived starts it without quorum and says so.
    config += &format!(
        "[virtual_server.sorry]\nip = \"10.0.0.100\"\nport = 443\ndelay_loop = 1\nwarmup = 0\nalpha = true\n\
         sorry_server = \"{rs1} 81\"\nquorum_up = \"/bin/sh -c 'echo up >> {0}'\"\nquorum_down = \"/bin/sh -c 'echo down >> {0}'\"\n\
         [virtual_server.sorry.real_server.rs1]\nip = \"{rs1}\"\nport = 9\n\
         tcp_check = {{ connect_timeout = 1, retry = 0 }}\n",
        sorry_log.display()
    );
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);

    // At start: `web` reaches quorum (6 >= 5): quorum_up runs, as keepalived's start does.
    // `sorry` starts without quorum with a sorry server: quorum_down.
    wait_until("quorum_up at start", Duration::from_secs(5), || {
        read(&log) == "up\n"
    });
    wait_until(
        "quorum_down of sorry at start",
        Duration::from_secs(5),
        || read(&sorry_log) == "down\n",
    );
    let q = quorum(&lab, kd, "web").expect("quorum");
    assert_eq!(
        (q.state.as_str(), q.weight, q.quorum, q.hysteresis),
        ("up", 6, 4, 1)
    );
    let q = quorum(&lab, kd, "sorry").expect("quorum");
    assert_eq!((q.state.as_str(), q.weight), ("down", 0));

    // w3 down: 3 >= 4 - 1, quorum kept.
    let kill = |lab: &mut Lab, port: u16, servers: &std::collections::BTreeMap<u16, usize>| {
        let id = servers[&port];
        lab.signal(id, libc::SIGKILL);
        lab.wait_exit(id, Duration::from_secs(5));
    };
    kill(&mut lab, 83, &servers);
    wait_rs(&lab, kd, "web", "w3", "down", 1.0 + MARGIN + 2.0);
    let q = quorum(&lab, kd, "web").expect("quorum");
    assert_eq!((q.state.as_str(), q.weight, q.since), ("up", 3, None));
    // w1 down too: 2 < 3, quorum lost within delay_loop of the kill.
    let event = SystemTime::now();
    kill(&mut lab, 81, &servers);
    let v = wait_rs(&lab, kd, "web", "w1", "down", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    wait_until("quorum_down", Duration::from_secs(5), || {
        read(&log) == "up\ndown\n"
    });
    let q = quorum(&lab, kd, "web").expect("quorum");
    assert_eq!((q.state.as_str(), q.weight), ("down", 2));
    assert_since("web quorum down", q.since, event, 0.0, 1.0);
    // Its time is the verdict's that caused it.
    assert!((q.since.unwrap_or(0.0) - v.since.unwrap_or(0.0)).abs() < 0.1);

    // w1 back: 3 < 4 + 1, still without quorum; w3 back: 6, quorum regained.
    servers.insert(81, httpd(&mut lab, &rs1, 81));
    wait_rs(&lab, kd, "web", "w1", "up", 1.0 + MARGIN + 2.0);
    let q = quorum(&lab, kd, "web").expect("quorum");
    assert_eq!((q.state.as_str(), q.weight), ("down", 3));
    let event = SystemTime::now();
    servers.insert(83, httpd(&mut lab, &rs1, 83));
    wait_until("quorum_up again", Duration::from_secs(5), || {
        read(&log) == "up\ndown\nup\n"
    });
    let q = quorum(&lab, kd, "web").expect("quorum");
    assert_eq!((q.state.as_str(), q.weight), ("up", 6));
    assert_since("web quorum up", q.since, event, 0.0, 1.0);

    // omega: quorum_down at stop (keepalived runs it for every virtual server under omega).
    lab.signal(kd, libc::SIGTERM);
    lab.wait_exit(kd, Duration::from_secs(10));
    assert_eq!(read(&log), "up\ndown\nup\ndown\n");
    assert_eq!(read(&sorry_log), "down\n", "no omega: nothing at stop");
}
