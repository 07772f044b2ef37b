//! keeperd's hardened runtime, checked on running daemons in namespaces: capability sets, uids
//! and no_new_privs read from /proc/PID/status (started as root, and started unprivileged with
//! ambient capabilities as systemd does it, via setpriv), the control socket's access rules,
//! status output, sd_notify messages on a real datagram socket, journald fields on a real
//! socket, and the SIGTERM handover.
//!
//! Needs root. Creates these users when missing (and says so on stderr): `keeper`,
//! `keepert-daemon`, `keepert-script`, `keepert-member` (in group `keepert-ctl`),
//! `keepert-other`.

#![cfg(feature = "netns-tests")]

mod lab;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use keeper::control::{self, Request, Response};
use lab::{Lab, ensure_user, ok, run, wait_until};

const DAEMON_USER: &str = "keepert-daemon";
const SCRIPT_USER: &str = "keepert-script";
const MEMBER_USER: &str = "keepert-member";
const OTHER_USER: &str = "keepert-other";
const CTL_GROUP: &str = "keepert-ctl";

/// CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
const NET_CAPS: &str = "0000000000003000";
/// CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7).
const LAUNCHER_CAPS: &str = "00000000000000e0";
const NO_CAPS: &str = "0000000000000000";

struct Started {
    id: usize,
    config: PathBuf,
    socket: PathBuf,
}

fn keeperd() -> &'static str {
    env!("CARGO_BIN_EXE_keeperd")
}

fn keeperctl() -> &'static str {
    env!("CARGO_BIN_EXE_keeperctl")
}

/// Writes `NODE.toml` (`[global]` with a control socket under `run-NODE/`, then `global`, then
/// `body`) and starts keeperd in `node` behind `wrap` (setpriv, unshare...) with `env`.
fn start(
    lab: &mut Lab,
    node: &str,
    global: &str,
    body: &str,
    wrap: &[String],
    env: &[(&str, &str)],
) -> Started {
    let dir = lab.dir.path().to_path_buf();
    let config = dir.join(format!("{node}.toml"));
    let socket = dir.join(format!("run-{node}")).join("keeper.sock");
    let text = format!(
        "[global]\ncontrol_socket = {:?}\n{global}\n\n{body}",
        socket.display().to_string()
    );
    std::fs::write(&config, text).expect("write config");
    let log = dir.join(format!("{node}-keeperd.log"));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.ns(node)])
        .args(wrap)
        .arg(keeperd())
        .arg("--config")
        .arg(&config);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEEPER_")) {
        cmd.env_remove(k);
    }
    cmd.env("RUST_LOG", "debug").envs(env.iter().copied());
    let id = lab.spawn(node, cmd, log, Some(socket.clone()));
    Started { id, config, socket }
}

fn instance(lab: &Lab, vrid: u8, priority: u8) -> String {
    format!(
        "[vrrp_instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = {vrid}\npriority = {priority}\nadvert_int = 1\nvirtual_ipaddress = [\"{}/24\"]\n",
        lab.vip4()
    )
}

fn id_of(flag: &str, name: &str) -> u32 {
    ok(Command::new("id").args([flag, name]))
        .trim()
        .parse()
        .expect("numeric id")
}

fn gid_of_group(name: &str) -> u32 {
    let line = ok(Command::new("getent").args(["group", name]));
    line.split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .expect("gid")
}

fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn proc_status(pid: u32) -> BTreeMap<String, String> {
    fields(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
}

fn ids(id: u32) -> String {
    format!("{id}\t{id}\t{id}\t{id}")
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if proc_status(child)
            .get("PPid")
            .and_then(|p| p.parse::<u32>().ok())
            == Some(pid)
        {
            out.push(child);
        }
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `setpriv` arguments that start a program as `user` with `caps` in the inheritable, ambient
/// and bounding sets and no_new_privs: what systemd does for `User=`, `AmbientCapabilities=`,
/// `CapabilityBoundingSet=` and `NoNewPrivileges=yes`.
fn like_systemd(user: &str, caps: &str) -> Vec<String> {
    let plus: Vec<String> = caps.split(',').map(|c| format!("+{c}")).collect();
    let plus = plus.join(",");
    vec![
        "setpriv".into(),
        format!("--reuid={user}"),
        format!("--regid={user}"),
        "--init-groups".into(),
        format!("--inh-caps=-all,{plus}"),
        format!("--ambient-caps=-all,{plus}"),
        format!("--bounding-set=-all,{plus}"),
        "--nnp".into(),
    ]
}

fn assert_daemon_creds(pid: u32, uid: u32, gid: u32, bounding: &str) {
    let st = proc_status(pid);
    assert_eq!(st["Uid"], ids(uid), "{st:?}");
    assert_eq!(st["Gid"], ids(gid), "{st:?}");
    assert_eq!(st["CapEff"], NET_CAPS, "effective: {st:?}");
    assert_eq!(st["CapPrm"], NET_CAPS, "permitted: {st:?}");
    assert_eq!(st["CapBnd"], bounding, "bounding: {st:?}");
    assert_eq!(st["CapInh"], NO_CAPS, "inheritable: {st:?}");
    assert_eq!(st["CapAmb"], NO_CAPS, "ambient: {st:?}");
    assert_eq!(st["NoNewPrivs"], "1", "{st:?}");
}

/// Waits for the launcher child of `pid` to have dropped to `uid`; returns its pid.
fn launcher_of(pid: u32, uid: u32) -> u32 {
    let mut found = 0;
    wait_until(
        "the script launcher runs as the daemon's user",
        Duration::from_secs(10),
        || {
            found = children_of(pid)
                .into_iter()
                .find(|c| comm(*c) == "keeperd-launch")
                .unwrap_or(0);
            found != 0 && proc_status(found).get("Uid") == Some(&ids(uid))
        },
    );
    found
}

fn reload(socket: &PathBuf) -> (bool, String) {
    match control::request(socket, &Request::Reload) {
        Ok(Response::Reloaded { ok, message }) => (ok, message),
        other => panic!("unexpected answer to reload: {other:?}"),
    }
}

#[test]
fn started_as_root_it_keeps_two_capabilities_as_its_own_user() {
    ensure_user(DAEMON_USER, None);
    ensure_user(SCRIPT_USER, None);
    let (uid, gid) = (id_of("-u", DAEMON_USER), id_of("-g", DAEMON_USER));
    let mut lab = Lab::new(&["d"]);
    let global = format!("user = {DAEMON_USER:?}\nscript_user = {SCRIPT_USER:?}");
    let body = instance(&lab, 51, 100);
    let s = start(&mut lab, "d", &global, &body, &[], &[]);
    lab.wait_ready(s.id);
    let pid = lab.daemon(s.id).pid();
    assert_eq!(comm(pid), "keeperd");
    assert_daemon_creds(pid, uid, gid, NET_CAPS);

    // The launcher: forked before the drop, keeps only what switching users and killing needs.
    let launcher = launcher_of(pid, uid);
    let st = proc_status(launcher);
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(st[set], LAUNCHER_CAPS, "launcher {set}: {st:?}");
    }
    assert_eq!(st["CapInh"], NO_CAPS);
    assert_eq!(st["CapAmb"], NO_CAPS);
    assert_eq!(st["NoNewPrivs"], "1");

    // SIGHUP-style reloads read the files as the daemon's user: root:group 0640 is enough...
    std::os::unix::fs::chown(&s.config, Some(0), Some(gid)).expect("chown");
    std::fs::set_permissions(&s.config, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let (okay, message) = reload(&s.socket);
    assert!(okay, "{message}");
    // ...and an unreadable file is an error that keeps the running configuration.
    std::fs::set_permissions(&s.config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (okay, message) = reload(&s.socket);
    assert!(!okay, "{message}");
    assert!(message.contains("running configuration stays"), "{message}");
    assert!(
        lab.log(s.id).contains("Permission denied"),
        "{}",
        lab.log(s.id)
    );
    let state = lab.state(s.id, "VI_1");
    assert!(
        matches!(state.as_deref(), Some("backup" | "master")),
        "{state:?}"
    );
    // SIGHUP takes the same path.
    lab.signal(s.id, libc::SIGHUP);
    wait_until(
        "second refused reload logged",
        Duration::from_secs(5),
        || lab.log(s.id).matches("reload refused").count() >= 2,
    );
    assert!(
        lab.status(s.id).is_some(),
        "still answering after a refused reload"
    );
    assert_daemon_creds(pid, uid, gid, NET_CAPS);
}

#[test]
fn started_unprivileged_with_ambient_capabilities_like_systemd() {
    ensure_user(DAEMON_USER, None);
    ensure_user(SCRIPT_USER, None);
    let (uid, gid) = (id_of("-u", DAEMON_USER), id_of("-g", DAEMON_USER));
    let mut lab = Lab::new(&["a", "b"]);
    for node in ["a", "b"] {
        // systemd's RuntimeDirectory=: the socket's directory belongs to the daemon's user.
        let run_dir = lab.dir.path().join(format!("run-{node}"));
        std::fs::create_dir(&run_dir).expect("mkdir");
        std::os::unix::fs::chown(&run_dir, Some(uid), Some(gid)).expect("chown");
    }
    // The plain unit: CAP_NET_ADMIN CAP_NET_RAW only.
    let body = instance(&lab, 51, 100);
    let a = start(
        &mut lab,
        "a",
        "",
        &body,
        &like_systemd(DAEMON_USER, "net_admin,net_raw"),
        &[],
    );
    // With a script user: the unit adds what the launcher needs. Without CAP_SETPCAP keeperd
    // cannot trim the bounding set (no_new_privs makes the extra entries unusable).
    let body = instance(&lab, 52, 100);
    let global = format!("script_user = {SCRIPT_USER:?}");
    let b = start(
        &mut lab,
        "b",
        &global,
        &body,
        &like_systemd(DAEMON_USER, "net_admin,net_raw,setuid,setgid,kill"),
        &[],
    );
    lab.wait_ready(a.id);
    lab.wait_ready(b.id);
    assert_daemon_creds(lab.daemon(a.id).pid(), uid, gid, NET_CAPS);
    let b_pid = lab.daemon(b.id).pid();
    assert_daemon_creds(b_pid, uid, gid, "00000000000030e0");
    let launcher = launcher_of(b_pid, uid);
    let st = proc_status(launcher);
    assert_eq!(st["CapEff"], LAUNCHER_CAPS, "{st:?}");
    assert_eq!(st["CapPrm"], LAUNCHER_CAPS, "{st:?}");
    assert_eq!(st["CapAmb"], NO_CAPS, "{st:?}");
    assert!(
        lab.log(b.id).contains("bounding set still lists"),
        "{}",
        lab.log(b.id)
    );
    // It works unprivileged: it becomes master alone on its LAN and adds its VIP.
    wait_until(
        "unprivileged keeperd takes the VIP",
        Duration::from_secs(10),
        || lab.state(a.id, "VI_1").as_deref() == Some("master"),
    );
    assert!(lab.has_addr("a", &lab.vip4()));
}

fn check_as(wrap: &[String], config: &Path) -> Output {
    let mut cmd = Command::new(&wrap[0]);
    cmd.args(&wrap[1..])
        .arg(keeperd())
        .arg("--check")
        .arg("--config")
        .arg(config);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEEPER_")) {
        cmd.env_remove(k);
    }
    run(&mut cmd)
}

#[test]
fn check_refuses_what_would_not_start() {
    ensure_user(DAEMON_USER, None);
    ensure_user(SCRIPT_USER, None);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = dir.path().join("k.toml");
    std::fs::write(
        &config,
        format!("[global]\nscript_user = {SCRIPT_USER:?}\n"),
    )
    .expect("write");
    // A script user other than the daemon's, and no CAP_SETUID to become it.
    let out = check_as(&like_systemd(DAEMON_USER, "net_admin,net_raw"), &config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("CAP_SETUID") && err.contains(SCRIPT_USER),
        "{err}"
    );
    // With the launcher's capabilities it is fine.
    let out = check_as(
        &like_systemd(DAEMON_USER, "net_admin,net_raw,setuid,setgid,kill"),
        &config,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // As root, the user to switch to must exist.
    std::fs::write(&config, "[global]\nuser = \"keepert-no-such-user\"\n").expect("write");
    let out = check_as(&["env".to_string()], &config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("keepert-no-such-user") && err.contains("does not exist"),
        "{err}"
    );
}

fn keeperctl_as(
    user: Option<&str>,
    extra_caps: Option<&str>,
    socket: &Path,
    args: &[&str],
) -> Output {
    let mut cmd = match user {
        None => Command::new(keeperctl()),
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={u}"),
                format!("--regid={u}"),
                "--init-groups".into(),
            ]);
            if let Some(caps) = extra_caps {
                c.args([
                    format!("--inh-caps=+{caps}"),
                    format!("--ambient-caps=+{caps}"),
                ]);
            }
            c.arg(keeperctl());
            c
        }
    };
    cmd.arg("--socket").arg(socket).args(args);
    run(&mut cmd)
}

#[test]
fn control_socket_admits_root_its_user_and_group_members_only() {
    ensure_user(DAEMON_USER, None);
    ensure_user(MEMBER_USER, Some(CTL_GROUP));
    ensure_user(OTHER_USER, None);
    let uid = id_of("-u", DAEMON_USER);
    let ctl_gid = gid_of_group(CTL_GROUP);
    let mut lab = Lab::new(&["d"]);
    let global = format!("user = {DAEMON_USER:?}\ncontrol_socket_group = {CTL_GROUP:?}");
    let body = instance(&lab, 51, 100);
    let s = start(&mut lab, "d", &global, &body, &[], &[]);
    lab.wait_ready(s.id);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&s.socket).expect("socket");
    assert_eq!(meta.mode() & 0o777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (uid, ctl_gid));

    for (who, user) in [
        ("root", None),
        ("keeperd's user", Some(DAEMON_USER)),
        ("a group member", Some(MEMBER_USER)),
    ] {
        let out = keeperctl_as(user, None, &s.socket, &["status"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{who}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("VI_1"), "{who}: {text}");
    }
    // Anyone else: the file mode stops them...
    let out = keeperctl_as(Some(OTHER_USER), None, &s.socket, &["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Permission denied"), "{err}");
    // ...and one that gets past the mode (CAP_DAC_OVERRIDE) is refused by its credentials.
    let out = keeperctl_as(
        Some(OTHER_USER),
        Some("dac_override"),
        &s.socket,
        &["status"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("keeperd: permission denied: uid"), "{err}");
    assert!(
        lab.log(s.id).contains("refused a client"),
        "{}",
        lab.log(s.id)
    );
    assert!(lab.status(s.id).is_some(), "still serving root");
}

/// Datagrams received on `sock` until one satisfies `want` (all of them returned).
fn notify_until(
    sock: &UnixDatagram,
    what: &str,
    timeout: Duration,
    want: impl Fn(&str) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "timed out waiting for {what}; got {seen:?}"
        );
        sock.set_read_timeout(Some(left)).expect("timeout");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = want(&msg);
            seen.push(msg);
            if hit {
                return seen;
            }
        }
    }
}

#[test]
fn systemd_notifications_reach_a_real_notify_socket() {
    let mut lab = Lab::new(&["d"]);
    // Root-only directory: keeperd connects before it drops privileges, so it keeps working.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).expect("bind");
    let path = path.display().to_string();
    let body = instance(&lab, 51, 100);
    let s = start(
        &mut lab,
        "d",
        "",
        &body,
        &[],
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "400000")],
    );
    let got = notify_until(&sock, "READY=1", Duration::from_secs(10), |m| {
        m.contains("READY=1")
    });
    let ready = got.last().cloned().unwrap_or_default();
    assert!(ready.contains("STATUS=VRRP instances: 1 backup"), "{ready}");
    // Watchdog pings keep coming from the event loop.
    for n in 0..3 {
        notify_until(
            &sock,
            &format!("WATCHDOG=1 #{n}"),
            Duration::from_secs(5),
            |m| m == "WATCHDOG=1\n",
        );
    }
    // A state change updates STATUS=.
    notify_until(&sock, "STATUS with master", Duration::from_secs(10), |m| {
        m.contains("STATUS=VRRP instances: 1 master")
    });
    // SIGHUP and `keeperctl reload`: RELOADING=1, then READY=1.
    lab.signal(s.id, libc::SIGHUP);
    notify_until(&sock, "RELOADING=1 (SIGHUP)", Duration::from_secs(5), |m| {
        m.starts_with("RELOADING=1\nMONOTONIC_USEC=")
    });
    notify_until(&sock, "READY=1 after SIGHUP", Duration::from_secs(5), |m| {
        m.starts_with("READY=1\n")
    });
    let (okay, message) = reload(&s.socket);
    assert!(okay, "{message}");
    notify_until(
        &sock,
        "RELOADING=1 (keeperctl)",
        Duration::from_secs(5),
        |m| m.starts_with("RELOADING=1\n"),
    );
    notify_until(
        &sock,
        "READY=1 after keeperctl",
        Duration::from_secs(5),
        |m| m.starts_with("READY=1\n"),
    );
    lab.signal(s.id, libc::SIGTERM);
    notify_until(&sock, "STOPPING=1", Duration::from_secs(5), |m| {
        m.starts_with("STOPPING=1\n")
    });
    let st = lab.wait_exit(s.id, Duration::from_secs(15));
    assert!(st.success(), "{st:?}\n{}", lab.log(s.id));
}

/// The fields of one journald native-protocol datagram.
fn journal_fields(d: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = d;
    while !rest.is_empty() {
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            out.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
        } else {
            // NAME\n, 64-bit little-endian length, value, \n
            let Some(len) = rest.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
                break;
            };
            let len = u64::from_le_bytes(len) as usize;
            let Some(value) = rest.get(8..8 + len) else {
                break;
            };
            out.insert(
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            );
            rest = rest.get(8 + len + 1..).unwrap_or_default();
        }
    }
    out
}

#[test]
fn journald_gets_structured_fields() {
    let mut lab = Lab::new(&["d"]);
    // A private /run holding a real datagram socket where journald's would be.
    let run_dir = tempfile::tempdir().expect("tempdir");
    let journal = run_dir.path().join("systemd/journal");
    std::fs::create_dir_all(&journal).expect("mkdir");
    for d in [run_dir.path(), &run_dir.path().join("systemd"), &journal] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let sock = UnixDatagram::bind(journal.join("socket")).expect("bind");
    // keeperd runs as `keeper` and sends each entry anew, as to journald's world-writable socket.
    std::fs::set_permissions(
        journal.join("socket"),
        std::fs::Permissions::from_mode(0o666),
    )
    .expect("chmod");
    // JOURNAL_STREAM names stderr, as systemd sets it for a unit logging to the journal.
    let script = "mount --bind \"$0\" /run && JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) && export JOURNAL_STREAM && exec \"$@\"";
    let wrap: Vec<String> = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([run_dir.path().display().to_string()])
    .collect();
    let body = instance(&lab, 51, 100);
    let s = start(&mut lab, "d", "", &body, &wrap, &[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = vec![0u8; 65536];
    let entry = loop {
        assert!(
            Instant::now() < deadline,
            "no transition entry in the journal; stderr:\n{}",
            lab.log(s.id)
        );
        sock.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let Ok(n) = sock.recv(&mut buf) else { continue };
        let f = journal_fields(&buf[..n]);
        if f.get("KEEPER_STATE").map(String::as_str) == Some("master") {
            break f;
        }
    };
    assert_eq!(entry["KEEPER_INSTANCE"], "VI_1", "{entry:?}");
    assert_eq!(entry["KEEPER_VRID"], "51", "{entry:?}");
    assert_eq!(entry["KEEPER_FROM"], "backup", "{entry:?}");
    assert_eq!(entry["KEEPER_REASON"], "master-down", "{entry:?}");
    assert_eq!(entry["KEEPER_PRIORITY"], "100", "{entry:?}");
    assert_eq!(
        entry["PRIORITY"], "5",
        "the log level stays the journal's own field: {entry:?}"
    );
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "keeperd", "{entry:?}");
    assert!(entry["MESSAGE"].contains("backup -> master"), "{entry:?}");
    // Nothing went to stderr as text.
    assert!(
        !lab.log(s.id).contains("backup -> master"),
        "{}",
        lab.log(s.id)
    );
}

#[test]
fn sigterm_hands_over_at_once_with_a_priority_zero_advert() {
    let mut lab = Lab::new(&["a", "b"]);
    let body = instance(&lab, 51, 100);
    let a = start(&mut lab, "a", "", &body, &[], &[]);
    wait_until("a becomes master", Duration::from_secs(15), || {
        lab.state(a.id, "VI_1").as_deref() == Some("master")
    });
    let body = instance(&lab, 51, 50);
    let b = start(&mut lab, "b", "", &body, &[], &[]);
    let master = lab.v4_of("a");
    wait_until("b follows a", Duration::from_secs(15), || {
        lab.status(b.id)
            .and_then(|s| s.instances.into_iter().next())
            .is_some_and(|i| i.state == "backup" && i.master.as_deref() == Some(master.as_str()))
    });

    // Status as an operator reads it.
    let out = keeperctl_as(None, None, &a.socket, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success());
    for want in [
        "INSTANCE",
        "LAST CHANGE",
        "VI_1",
        "master",
        "backup->master (master-down)",
        &lab.vip4(),
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    let out = keeperctl_as(None, None, &b.socket, &["status", "--json"]);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    let i = &json["instances"][0];
    assert_eq!(i["state"], "backup", "{json}");
    assert_eq!(i["master"], master.as_str(), "{json}");
    assert_eq!(i["priority"], 50, "{json}");
    assert_eq!(i["last_transition"]["reason"], "startup", "{json}");

    let start = Instant::now();
    lab.signal(a.id, libc::SIGTERM);
    let vip = lab.vip4();
    let took = wait_until("b takes the VIP", Duration::from_secs(10), || {
        lab.has_addr("b", &vip)
    });
    let st = lab.wait_exit(a.id, Duration::from_secs(12));
    assert!(st.success(), "{st:?}\n{}", lab.log(a.id));
    assert!(!lab.has_addr("a", &vip), "a released its VIP");
    let bi = lab
        .status(b.id)
        .and_then(|s| s.instances.into_iter().next())
        .expect("b status");
    assert_eq!(bi.state, "master");
    let t = bi.last_transition.expect("transition");
    assert_eq!(
        t.reason, "master-released",
        "b took over because of a's priority 0 advert"
    );
    // Master_Down would be 3 x 1 s + skew (0.8 s): the takeover came before any silence-based
    // one could, after the skew time only.
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} ({:?} since SIGTERM)",
        start.elapsed()
    );
    eprintln!("SIGTERM handover: backup holds the VIP {took:?} after the signal");
}

/// CAP_SYS_RESOURCE's bit.
const CAP_SYS_RESOURCE: u64 = 1 << 24;

fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn realtime_locked_memory_and_metrics_set_up_before_the_drop() {
    ensure_user(DAEMON_USER, None);
    ensure_user(SCRIPT_USER, None);
    let uid = id_of("-u", DAEMON_USER);
    let mut lab = Lab::new(&["d"]);
    // Port 965: below 1024, bound before the drop (keeperd keeps no CAP_NET_BIND_SERVICE).
    let global = format!(
        "user = {DAEMON_USER:?}\nscript_user = {SCRIPT_USER:?}\nvrrp_rt_priority = 10\nvrrp_no_swap = true\nmetrics_listen = \"127.0.0.1:965\""
    );
    let body = instance(&lab, 51, 100);
    let s = start(&mut lab, "d", &global, &body, &[], &[]);
    lab.wait_ready(s.id);
    let pid = lab.daemon(s.id).pid();
    // SAFETY: sched_getscheduler(2) on a pid.
    let policy = unsafe { libc::sched_getscheduler(pid as i32) };
    assert_eq!(
        policy,
        libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
        "keeperd's policy"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_comm: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // Field 40 (rt_priority), counted from field 3 (state) after the command name.
    assert_eq!(after_comm.get(40 - 3).copied(), Some("10"), "{stat}");
    let launcher = launcher_of(pid, uid);
    // SAFETY: as above.
    let policy = unsafe { libc::sched_getscheduler(launcher as i32) };
    assert_eq!(
        policy,
        libc::SCHED_OTHER,
        "the launcher (and so scripts) runs at normal priority"
    );
    let st = proc_status(pid);
    let locked: u64 = st["VmLck"]
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .expect("VmLck");
    // mlockall(MCL_FUTURE) outlives CAP_IPC_LOCK: only safe with RLIMIT_MEMLOCK unlimited, which
    // root raises when it has CAP_SYS_RESOURCE (some containers withhold it).
    let can_raise = u64::from_str_radix(&proc_status(std::process::id())["CapEff"], 16)
        .is_ok_and(|caps| caps & CAP_SYS_RESOURCE != 0);
    if can_raise {
        assert!(locked > 0, "{st:?}");
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
        assert!(
            limits
                .lines()
                .any(|l| l.starts_with("Max locked memory") && l.contains("unlimited")),
            "MCL_FUTURE with a finite limit would fail allocations after the drop:\n{limits}"
        );
    } else {
        eprintln!("no CAP_SYS_RESOURCE here: checking that keeperd skips locking with a warning");
        assert_eq!(locked, 0, "{st:?}");
        assert!(
            lab.log(s.id).contains("memory not locked"),
            "{}",
            lab.log(s.id)
        );
    }
    assert_daemon_creds(pid, uid, id_of("-g", DAEMON_USER), NET_CAPS);

    wait_until("master", Duration::from_secs(10), || {
        lab.state(s.id, "VI_1").as_deref() == Some("master")
    });
    let labels = "vrrp_instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"";
    let mut text = String::new();
    wait_until("metrics show adverts sent", Duration::from_secs(10), || {
        let out = lab.exec(
            "d",
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://127.0.0.1:965/metrics",
            ],
        );
        text = String::from_utf8_lossy(&out.stdout).into_owned();
        metric(
            &text,
            &format!("keeper_vrrp_adverts_sent_total{{{labels}}}"),
        )
        .is_some_and(|n| n >= 1.0)
    });
    assert_eq!(
        metric(
            &text,
            &format!("keeper_vrrp_state{{{labels},state=\"master\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!("keeper_vrrp_state{{{labels},state=\"backup\"}}")
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!("keeper_vrrp_became_master_total{{{labels}}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, &format!("keeper_vrrp_priority{{{labels}}}")),
        Some(100.0),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}
