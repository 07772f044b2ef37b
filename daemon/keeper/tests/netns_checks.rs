//! Health checks against real servers in network namespaces: keeperd in `director`, servers
//! from Debian in `rs1` (busybox httpd, a Python http.server, `openssl s_server` with a
//! certificate the test makes), scripts run by keeperd itself. Root only
//! (`--features netns-tests`).
//!
//! Every transition is asserted twice: the verdict (state, weight, error text) and its time,
//! taken from keeperd's own record of the change (`since` in `keeperctl status`), inside the
//! window the configuration implies: a lower bound (retries and timeouts must have been
//! waited) and an upper bound (delay_loop + retries + timeouts), with a margin for process
//! start and scheduling. Waits are on conditions with deadlines, never bare sleeps.

#![cfg(feature = "netns-tests")]

mod lab;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keeper::control::RealServerView;
use lab::{Lab, wait_until};

/// Slack for process start, scheduling and polling, added to every upper bound.
const MARGIN: f64 = 1.5;
/// Slack below a lower bound (clock reads on two sides).
const EARLY: f64 = 0.05;
/// `printf 'hello\n' | md5sum`, as keepalived's genhash prints the digest of that body.
const HELLO_MD5: &str = "b1946ac92492d2347c6235b4d2611184";

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).expect("clock").as_secs_f64()
}

fn view(lab: &Lab, id: usize, vs: &str) -> Option<RealServerView> {
    lab.status(id)?
        .real_servers
        .into_iter()
        .find(|r| r.virtual_server == vs && r.real_server == "rs1")
}

/// Waits until real server `rs1` of `vs` is in `state`; returns its view.
fn wait_state(lab: &Lab, id: usize, vs: &str, state: &str, within: f64) -> RealServerView {
    let mut last = None;
    wait_until(
        &format!("{vs}/rs1 {state}"),
        Duration::from_secs_f64(within),
        || {
            last = view(lab, id, vs);
            last.as_ref().is_some_and(|v| v.state == state)
        },
    );
    last.expect("view")
}

/// Asserts that the last change of `v` came `lo..=hi` seconds (plus slack) after `event`.
fn assert_window(v: &RealServerView, event: SystemTime, lo: f64, hi: f64) {
    let since = v.since.unwrap_or_else(|| {
        panic!(
            "{}/{}: no transition recorded",
            v.virtual_server, v.real_server
        )
    });
    let after = since - epoch(event);
    assert!(
        after >= lo - EARLY && after <= hi + MARGIN,
        "{}/{}: {} came {after:.3} s after the event, outside [{lo}, {hi}] (+{MARGIN} s margin)",
        v.virtual_server,
        v.real_server,
        v.state
    );
}

fn error_of(v: &RealServerView) -> &str {
    v.last_error.as_deref().unwrap_or("")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A virtual server with one real server `rs1` at `ip:port` and a checker table.
fn vs(name: &str, vs_port: u16, ip: &str, port: u16, rs_extra: &str, checker: &str) -> String {
    format!(
        "[virtual_server.{name}]\nip = \"10.0.0.100\"\nport = {vs_port}\ndelay_loop = 1\nwarmup = 0\n\
         [virtual_server.{name}.real_server.rs1]\nip = \"{ip}\"\nport = {port}\n{rs_extra}\n{checker}\n"
    )
}

fn notify(dir: &Path, file: &str) -> String {
    let f = dir.join(file);
    format!(
        "notify_up = \"/bin/sh -c 'echo up >> {0}'\"\nnotify_down = \"/bin/sh -c 'echo down >> {0}'\"",
        f.display()
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Python http.server: `/ok` 200, `/slow` 200 after the number of seconds in `delay`,
/// `/host` 200 for `Host: www.keeper.test` (else 421), `/from/IP` 200 for a client at IP
/// (else 403), anything else 404.
const PY_SERVER: &str = r#"
import http.server, sys, time
delay_file = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            try:
                time.sleep(float(open(delay_file).read().strip() or 0))
            except (OSError, ValueError):
                pass
        if self.path in ("/ok", "/slow"):
            code = 200
        elif self.path == "/host":
            code = 200 if self.headers.get("Host") == "www.keeper.test" else 421
        elif self.path.startswith("/from/"):
            code = 200 if self.client_address[0] == self.path[len("/from/"):] else 403
        else:
            code = 404
        body = b"ok\n" if code == 200 else b"no\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    # The checks of this test all start together (warmup 0): more than the default backlog 5.
    request_queue_size = 128
Server((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"#;

fn start_busybox(lab: &mut Lab, www: &Path, ip: &str) -> usize {
    let listen = format!("{ip}:80");
    let www = www.display().to_string();
    let id = lab.start_daemon(
        "rs1",
        "httpd",
        None,
        &["busybox", "httpd", "-f", "-p", &listen, "-h", &www],
    );
    wait_until("busybox httpd listens", Duration::from_secs(10), || {
        lab.listens("rs1", 80)
    });
    id
}

#[test]
fn tcp_and_http_checks_follow_real_servers() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let dir = lab.dir.path().to_path_buf();
    let rs1 = lab.v4_of("rs1");
    // A second address on the director, for bindto.
    let bound = format!("10.{}.0.50", lab.net);
    let out = lab.exec(
        "director",
        &["ip", "addr", "add", &format!("{bound}/24"), "dev", "eth0"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    write(&www.join("index.html"), "hello\n");
    let httpd = start_busybox(&mut lab, &www, &rs1);
    write(&dir.join("server.py"), PY_SERVER);
    write(&dir.join("delay"), "0");
    let py = dir.join("server.py").display().to_string();
    let delay = dir.join("delay").display().to_string();
    lab.start_daemon(
        "rs1",
        "python",
        None,
        &["python3", &py, &rs1, "8080", &delay],
    );
    wait_until("python listens", Duration::from_secs(10), || {
        lab.listens("rs1", 8080)
    });

    let http = |path: &str, extra: &str, retry: u32| {
        format!(
            "[virtual_server.X.real_server.rs1.http_get]\nurl.u = {{ path = \"{path}\" {extra} }}\nconnect_timeout = 1\nretry = {retry}\ndelay_before_retry = \"500ms\"\n"
        )
    };
    let with_name = |name: &str, s: String| s.replace(".X.", &format!(".{name}."));
    let mut config = String::new();
    // busybox, HTTP with the right digest: retry 2, 0.5 s apart.
    config += &vs(
        "busy",
        80,
        &rs1,
        80,
        &notify(&dir, "busy.notify"),
        &with_name(
            "busy",
            http(
                "/",
                &format!(", digest = \"{HELLO_MD5}\", status_code = 200"),
                2,
            ),
        ),
    );
    // busybox, TCP, no retry.
    config += &vs(
        "busy_tcp",
        81,
        &rs1,
        80,
        "",
        "tcp_check = { connect_timeout = 1, retry = 0 }",
    );
    // A closed port: retry 3, yet the first failure is enough at start (keepalived).
    config += &vs(
        "closed",
        82,
        &rs1,
        9,
        "",
        "tcp_check = { connect_timeout = 1, retry = 3 }",
    );
    // busybox with a wrong digest.
    config += &vs(
        "digest",
        83,
        &rs1,
        80,
        "",
        &with_name(
            "digest",
            http("/", ", digest = \"00000000000000000000000000000000\"", 0),
        ),
    );
    // Python: a page that does not exist.
    config += &vs(
        "status",
        84,
        &rs1,
        8080,
        "",
        &with_name("status", http("/missing", ", status_code = \"200-299\"", 0)),
    );
    // Python: a page that becomes slower than connect_timeout (retry 1).
    config += &vs(
        "slow",
        85,
        &rs1,
        8080,
        "",
        &with_name("slow", http("/slow", "", 1)),
    );
    // virtualhost sets the Host header; a regex over the body.
    config += &vs(
        "vhost",
        86,
        &rs1,
        8080,
        "virtualhost = \"www.keeper.test\"",
        &with_name("vhost", http("/host", "", 0)),
    );
    config += &vs(
        "no_vhost",
        87,
        &rs1,
        8080,
        "",
        &with_name("no_vhost", http("/host", "", 0)),
    );
    config += &vs(
        "regex",
        88,
        &rs1,
        8080,
        "",
        &with_name("regex", http("/ok", ", regex = \"^ok$\"", 0)),
    );
    config += &vs(
        "regex_bad",
        89,
        &rs1,
        8080,
        "",
        &with_name("regex_bad", http("/ok", ", regex = \"^nope\"", 0)),
    );
    // bindto sets the source address (the server answers 200 only to that one); connect_ip
    // and connect_port send the check elsewhere than the real server's address.
    let from = format!("/from/{bound}");
    config += &vs(
        "bound",
        90,
        &rs1,
        8080,
        "",
        &format!(
            "{}bindto = \"{bound}\"\n",
            with_name("bound", http(&from, "", 0))
        ),
    );
    config += &vs(
        "unbound",
        91,
        &rs1,
        8080,
        "",
        &with_name("unbound", http(&from, "", 0)),
    );
    config += &vs(
        "redirected",
        92,
        "10.0.0.99",
        1234,
        "",
        &format!(
            "{}connect_ip = \"{rs1}\"\nconnect_port = 8080\n",
            with_name("redirected", http("/ok", "", 0))
        ),
    );

    let start = SystemTime::now();
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);

    // At start: the broken ones go DOWN at their first attempt (1 s bootstrap, warmup 0).
    for (name, error) in [
        ("closed", "Connection refused"),
        (
            "digest",
            "differs from digest 00000000000000000000000000000000",
        ),
        ("status", "HTTP status 404 not in 200-299"),
        ("no_vhost", "HTTP status 421 not in 200-299"),
        ("regex_bad", "body does not match regex \"^nope\""),
        ("unbound", "HTTP status 403 not in 200-299"),
    ] {
        let v = wait_state(&lab, kd, name, "down", 1.0 + MARGIN + 3.0);
        assert_window(&v, start, 1.0, 1.0 + 1.0);
        assert!(error_of(&v).contains(error), "{name}: {:?}", v.last_error);
    }
    // The good ones stay UP (no transition) once checked.
    for name in [
        "busy",
        "busy_tcp",
        "slow",
        "vhost",
        "regex",
        "bound",
        "redirected",
    ] {
        wait_until(&format!("{name} checked"), Duration::from_secs(5), || {
            view(&lab, kd, name).is_some_and(|v| v.checks[0].attempts >= 2)
        });
        let v = view(&lab, kd, name).expect("view");
        assert_eq!(
            (v.state.as_str(), v.since, v.last_error.as_deref()),
            ("up", None, None),
            "{name}"
        );
    }
    assert_eq!(view(&lab, kd, "busy").expect("view").weight, 1);

    // Slower than connect_timeout: each attempt waits 1 s; DOWN after 1 + retry(1) of them,
    // 0.5 s apart: at least 2.5 s, at most delay_loop + 2.5 s.
    let event = SystemTime::now();
    write(&dir.join("delay"), "3");
    let v = wait_state(&lab, kd, "slow", "down", 3.5 + MARGIN + 2.0);
    assert_window(&v, event, 2.5, 1.0 + 2.5);
    assert!(
        error_of(&v).contains("nothing received for connect_timeout 1s"),
        "{:?}",
        v.last_error
    );
    write(&dir.join("delay"), "0");

    // busybox killed: TCP (retry 0) within delay_loop; HTTP (retry 2, 0.5 s) after the
    // retries: at least 1 s, at most delay_loop + 1 s.
    let event = SystemTime::now();
    lab.signal(httpd, libc::SIGKILL);
    lab.wait_exit(httpd, Duration::from_secs(5));
    let v = wait_state(&lab, kd, "busy_tcp", "down", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    assert!(
        error_of(&v).contains("Connection refused"),
        "{:?}",
        v.last_error
    );
    let v = wait_state(&lab, kd, "busy", "down", 2.0 + MARGIN + 2.0);
    assert_window(&v, event, 1.0, 2.0);
    wait_until("notify_down ran", Duration::from_secs(5), || {
        read(&dir.join("busy.notify")) == "down\n"
    });

    // Back: one success brings them UP within the interval while DOWN.
    let event = SystemTime::now();
    start_busybox(&mut lab, &www, &rs1);
    let v = wait_state(&lab, kd, "busy_tcp", "up", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    let v = wait_state(&lab, kd, "busy", "up", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    let v = wait_state(&lab, kd, "slow", "up", 1.0 + MARGIN + 2.0);
    assert!(v.since.is_some());
    wait_until(
        "notify_up ran after notify_down",
        Duration::from_secs(5),
        || read(&dir.join("busy.notify")) == "down\nup\n",
    );

    // Reload with one more virtual server and a changed checker (closed: retry 3 -> 2): the
    // others keep their state, and the changed one continues from its state (no flap, same
    // transition times); the new one is checked.
    let before = lab.status(kd).expect("status").real_servers;
    let path = dir.join("director.toml");
    let mut text = read(&path).replace("retry = 3 }", "retry = 2 }");
    assert!(text.contains("retry = 2 }"), "the closed checker changes");
    text += &vs(
        "added",
        99,
        &rs1,
        9,
        "",
        "tcp_check = { connect_timeout = 1 }",
    );
    write(&path, &text);
    let socket = lab.daemon(kd).socket.clone().expect("socket");
    match keeper::control::request(&socket, &keeper::control::Request::Reload) {
        Ok(keeper::control::Response::Reloaded { ok: true, .. }) => {}
        other => panic!("reload: {other:?}"),
    }
    let v = wait_state(&lab, kd, "added", "down", 1.0 + MARGIN + 2.0);
    assert!(error_of(&v).contains("Connection refused"));
    let after = lab.status(kd).expect("status").real_servers;
    for b in &before {
        let a = after
            .iter()
            .find(|a| a.virtual_server == b.virtual_server)
            .expect("kept across reload");
        assert_eq!(
            (&a.state, a.since),
            (&b.state, b.since),
            "{} across reload",
            b.virtual_server
        );
    }
}

#[test]
fn ssl_get_with_a_self_signed_certificate() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let dir = lab.dir.path().to_path_buf();
    let rs1 = lab.v4_of("rs1");
    write(&dir.join("index.html"), "hello\n");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = lab::run(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=rs1.keeper.test",
                "-addext",
                "subjectAltName=DNS:rs1.keeper.test",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accept = format!("{rs1}:443");
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    lab.start_daemon(
        "rs1",
        "s_server",
        Some(&dir),
        &[
            "openssl", "s_server", "-accept", &accept, "-cert", &c, "-key", &k, "-WWW", "-quiet",
        ],
    );
    wait_until("s_server listens", Duration::from_secs(10), || {
        lab.listens("rs1", 443)
    });
    // busybox httpd on the IPv6 address, for checks over IPv6.
    let rs1_v6 = lab.v6(1);
    let listen6 = format!("[{rs1_v6}]:8080");
    let www = dir.display().to_string();
    let httpd6 = lab.start_daemon(
        "rs1",
        "httpd6",
        None,
        &["busybox", "httpd", "-f", "-p", &listen6, "-h", &www],
    );
    wait_until(
        "busybox httpd listens on IPv6",
        Duration::from_secs(10),
        || lab.listens("rs1", 8080),
    );

    let ssl = |name: &str, extra: &str| {
        format!(
            "[virtual_server.{name}.real_server.rs1.ssl_get]\nurl.index = {{ path = \"/index.html\", digest = \"{HELLO_MD5}\" }}\nconnect_timeout = 2\nretry = 0\n{extra}\n"
        )
    };
    let mut config = String::new();
    // keepalived's default: the certificate is not verified. alpha: DOWN until the first success.
    config += &vs(
        "plain",
        443,
        &rs1,
        443,
        &format!("alpha = true\n{}", notify(&dir, "plain.notify")),
        &ssl("plain", ""),
    );
    let ca = format!(
        "verify_cert = true\nca_file = {:?}",
        cert.display().to_string()
    );
    config += &vs(
        "trusted",
        444,
        &rs1,
        443,
        "",
        &ssl("trusted", &format!("{ca}\nsni = \"rs1.keeper.test\"")),
    );
    config += &vs(
        "unknown",
        445,
        &rs1,
        443,
        "",
        &ssl("unknown", "verify_cert = true\nsni = \"rs1.keeper.test\""),
    );
    config += &vs(
        "misnamed",
        446,
        &rs1,
        443,
        "",
        &ssl("misnamed", &format!("{ca}\nsni = \"other.keeper.test\"")),
    );

    // IPv6, two checkers on one real server: both pass.
    let v6 = |name: &str, path: &str| {
        vs(name, 80, &rs1_v6, 8080, "", "")
            .replace("10.0.0.100", "fd00::100")
            .replace(
                "port = 80\n",
                &format!("port = {}\n", if name == "v6" { 80 } else { 81 }),
            )
            + &format!(
                "tcp_check = {{ connect_timeout = 1 }}\n[virtual_server.{name}.real_server.rs1.http_get]\nurl.index = {{ path = \"{path}\", digest = \"{HELLO_MD5}\" }}\nconnect_timeout = 1\nretry = 0\n"
            )
    };
    config += &v6("v6", "/index.html");
    // The TCP check passes, the HTTP one does not: all must pass.
    config += &v6("v6_mixed", "/missing.html");

    let start = SystemTime::now();
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);

    let v = wait_state(&lab, kd, "v6_mixed", "down", 1.0 + MARGIN + 3.0);
    assert_window(&v, start, 1.0, 1.0 + 1.0);
    assert!(
        error_of(&v).starts_with("http_get: HTTP status 404"),
        "{:?}",
        v.last_error
    );
    assert_eq!(
        (v.checks[0].state.as_str(), v.checks[1].state.as_str()),
        ("up", "down")
    );
    wait_until("v6 checked", Duration::from_secs(6), || {
        view(&lab, kd, "v6").is_some_and(|v| v.checks.iter().all(|c| c.attempts >= 2))
    });
    let v = view(&lab, kd, "v6").expect("view");
    assert_eq!(
        (v.state.as_str(), v.since, v.last_error.as_deref()),
        ("up", None, None)
    );
    assert_eq!(v.address, format!("[{rs1_v6}]:8080"));
    let event = SystemTime::now();
    lab.signal(httpd6, libc::SIGKILL);
    lab.wait_exit(httpd6, Duration::from_secs(5));
    // Both checkers (retry 1 for the TCP one, 1 s apart by default; retry 0 for HTTP): the
    // HTTP one decides within delay_loop.
    let v = wait_state(&lab, kd, "v6", "down", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    assert!(
        error_of(&v).contains("Connection refused"),
        "{:?}",
        v.last_error
    );

    // alpha: a transition to UP at the first attempt (1 s bootstrap), so it was DOWN before.
    let v = wait_state(&lab, kd, "plain", "up", 1.0 + MARGIN + 3.0);
    assert_window(&v, start, 1.0, 1.0 + 2.0);
    assert_eq!(v.last_error, None);
    wait_until("notify_up ran", Duration::from_secs(5), || {
        read(&dir.join("plain.notify")) == "up\n"
    });

    wait_until("trusted checked", Duration::from_secs(6), || {
        view(&lab, kd, "trusted").is_some_and(|v| v.checks[0].attempts >= 2)
    });
    let v = view(&lab, kd, "trusted").expect("view");
    assert_eq!(
        (v.state.as_str(), v.since, v.last_error.as_deref()),
        ("up", None, None)
    );

    for (name, error) in [
        ("unknown", "UnknownIssuer"),
        ("misnamed", "not valid for name \"other.keeper.test\""),
    ] {
        let v = wait_state(&lab, kd, name, "down", 1.0 + MARGIN + 3.0);
        assert_window(&v, start, 1.0, 1.0 + 2.0);
        assert!(error_of(&v).contains(error), "{name}: {:?}", v.last_error);
    }
}

/// The processes in `node` whose command line contains `needle`.
fn processes_with(lab: &Lab, node: &str, needle: &str) -> Vec<String> {
    let out = lab::run(std::process::Command::new("ip").args(["netns", "pids", &lab.ns(node)]));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(needle).then(|| format!("{pid}: {cmd}"))
        })
        .collect()
}

#[test]
fn misc_check_scripts_exit_codes_timeouts_and_omega() {
    let mut lab = Lab::new(&["director", "rs1"]);
    let dir = lab.dir.path().to_path_buf();
    let rs1 = lab.v4_of("rs1");
    write_script(&dir.join("hang.sh"), "exec sleep 987");
    write_script(
        &dir.join("code.sh"),
        &format!("exit $(cat {})", dir.join("code").display()),
    );
    write_script(&dir.join("two.sh"), "exit 2");
    write(&dir.join("code"), "0");
    let misc = |name: &str, script: &str, extra: &str| {
        format!(
            "[virtual_server.{name}.real_server.rs1.misc_check]\nmisc_path = \"{}\"\n{extra}\n",
            dir.join(script).display()
        )
    };
    let mut config = String::new();
    // A script that hangs: killed at misc_timeout (1 s after the first attempt at 1 s); the
    // next attempt comes 10 s after the first, so nothing of it may be left in between.
    config += &vs(
        "hang",
        80,
        &rs1,
        80,
        "",
        &misc("hang", "hang.sh", "misc_timeout = 1\ndelay_loop = 10"),
    );
    // Exit 2 without misc_dynamic is a failure.
    config += &vs(
        "two",
        81,
        &rs1,
        81,
        "",
        &misc("two", "two.sh", "misc_timeout = 5"),
    );
    // Exit code from a file, misc_dynamic; omega runs notify_down at stop.
    config += &vs(
        "dyn",
        82,
        &rs1,
        82,
        &format!("weight = 3\n{}", notify(&dir, "dyn.notify")),
        &misc("dyn", "code.sh", "misc_timeout = 5\nmisc_dynamic = true"),
    );
    config = config.replace(
        "[virtual_server.dyn]\n",
        "[virtual_server.dyn]\nomega = true\n",
    );

    let start = SystemTime::now();
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);

    let v = wait_state(&lab, kd, "hang", "down", 2.0 + MARGIN + 3.0);
    assert_window(&v, start, 2.0, 2.0 + 0.5);
    assert!(
        error_of(&v).contains("timed out after misc_timeout 1s"),
        "{:?}",
        v.last_error
    );
    wait_until("the hung script is gone", Duration::from_secs(3), || {
        processes_with(&lab, "director", "sleep 987").is_empty()
    });
    let v = wait_state(&lab, kd, "two", "down", 1.0 + MARGIN + 3.0);
    assert_window(&v, start, 1.0, 1.0 + 0.5);
    assert!(
        error_of(&v).contains("exited with status 2"),
        "{:?}",
        v.last_error
    );

    // Exit 0: UP at the configured weight; 7: UP at weight 5; 1: DOWN; 0: UP again.
    wait_until("dyn checked", Duration::from_secs(5), || {
        view(&lab, kd, "dyn").is_some_and(|v| v.checks[0].attempts >= 1)
    });
    let v = view(&lab, kd, "dyn").expect("view");
    assert_eq!(
        (v.state.as_str(), v.weight, v.dynamic_weight),
        ("up", 3, false)
    );
    let event = SystemTime::now();
    write(&dir.join("code"), "7");
    let mut v = None;
    wait_until("dynamic weight 5", Duration::from_secs(5), || {
        v = view(&lab, kd, "dyn");
        v.as_ref()
            .is_some_and(|v| v.weight == 5 && v.dynamic_weight)
    });
    assert_window(&v.expect("view"), event, 0.0, 1.0);
    let event = SystemTime::now();
    write(&dir.join("code"), "1");
    let v = wait_state(&lab, kd, "dyn", "down", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    assert!(
        error_of(&v).contains("exited with status 1"),
        "{:?}",
        v.last_error
    );
    let event = SystemTime::now();
    write(&dir.join("code"), "0");
    let v = wait_state(&lab, kd, "dyn", "up", 1.0 + MARGIN + 2.0);
    assert_window(&v, event, 0.0, 1.0);
    assert_eq!((v.weight, v.dynamic_weight), (3, false));
    wait_until("notify order", Duration::from_secs(5), || {
        read(&dir.join("dyn.notify")) == "down\nup\n"
    });

    // omega: notify_down for the UP real server at stop.
    lab.signal(kd, libc::SIGTERM);
    lab.wait_exit(kd, Duration::from_secs(10));
    assert_eq!(read(&dir.join("dyn.notify")), "down\nup\ndown\n");
}

/// `misc_check.user`: the script runs as that user (through keeperd's script launcher) with no
/// capability, and its exit code decides as usual; the checkers' other scripts (here
/// `notify_up`) run as `global.script_user`. Both users differ from keeperd's.
#[test]
fn misc_check_scripts_run_as_their_user() {
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new(&["director", "rs1"]);
    let dir = lab.dir.path().to_path_buf();
    let rs1 = lab.v4_of("rs1");
    // Where `nobody` may write.
    let out = dir.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let id = |args: &[&str]| {
        let o = std::process::Command::new("id")
            .args(args)
            .output()
            .expect("id");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let (nobody, daemon, keeper) = (
        id(&["-u", "nobody"]),
        id(&["-u", "daemon"]),
        id(&["-u", "keeper"]),
    );
    assert!(!nobody.is_empty() && !daemon.is_empty() && !keeper.is_empty());
    assert!(nobody != daemon && nobody != keeper && daemon != keeper);
    // Written to a temporary name first: the test never reads half a file.
    let record = |name: &str| {
        format!(
            "{{ id -u; grep ^CapEff: /proc/self/status; }} > {0}/{name}.$$ && mv {0}/{name}.$$ {0}/{name}",
            out.display()
        )
    };
    write_script(&dir.join("who.sh"), &record("misc"));
    write_script(&dir.join("notify.sh"), &record("notify"));
    let config = format!(
        "[global]\nscript_user = \"nobody\"\n{}",
        vs(
            "who",
            80,
            &rs1,
            80,
            &format!("notify_up = \"{}\"", dir.join("notify.sh").display()),
            &format!(
                "[virtual_server.who.real_server.rs1.misc_check]\nmisc_path = \"{}\"\nuser = \"daemon\"\nalpha = true\n",
                dir.join("who.sh").display()
            ),
        )
    );
    let kd = lab.start_keeperd("director", &config);
    lab.wait_ready(kd);
    // alpha: DOWN until the first attempt passes (1 s bootstrap).
    wait_state(&lab, kd, "who", "up", 1.0 + MARGIN + 3.0);
    let no_caps = "CapEff:\t0000000000000000";
    wait_until("the misc script's record", Duration::from_secs(5), || {
        out.join("misc").exists()
    });
    assert_eq!(read(&out.join("misc")), format!("{daemon}\n{no_caps}\n"));
    wait_until("the notify script's record", Duration::from_secs(5), || {
        out.join("notify").exists()
    });
    assert_eq!(read(&out.join("notify")), format!("{nobody}\n{no_caps}\n"));
}
