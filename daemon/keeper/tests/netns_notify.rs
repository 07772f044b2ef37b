//! Notify scripts, notify_fifo and SMTP alerts of keeperd driven by real VRRP transitions in
//! network namespaces: two keeperd with 0.1 s VRRPv3 adverts, real link flaps and crashes, real
//! scripts, a real FIFO reader (`cat`), a real SMTP server (Debian's aiosmtpd). Root only
//! (`--features netns-tests`).
//!
//! Waits are on conditions with deadlines that are generous multiples of what the protocol and
//! the configured timeouts imply; they bound hangs, they do not measure speed.

#![cfg(feature = "netns-tests")]

mod lab;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::{Lab, wait_until};

const SECS: Duration = Duration::from_secs(1);

/// A VRRPv3 instance with 0.1 s adverts and `extra` keys, after a `[global]` with `global`.
fn config(global: &str, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "[global]\nvrrp_version = 3\n{global}\n[vrrp_instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = {prio}\nadvert_int = 0.1\nvirtual_ipaddress = [\"{vip}/24 dev eth0\"]\n{extra}\n"
    )
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write script");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_state(lab: &Lab, id: usize, state: &str, timeout: Duration) -> Duration {
    wait_until(&format!("daemon {id} {state}"), timeout, || {
        lab.state(id, "VI_1").as_deref() == Some(state)
    })
}

/// Whether process `pid` still runs (a zombie does not count).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(") ").next().and_then(|s| s.chars().next()) != Some('Z'),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

/// Real transitions, faster than the scripts: b's link and a's link flap in turn, each step
/// waiting only for the state change (a few hundred ms), while every transition's two scripts
/// take a second. The scripts' log must show every transition, in order, each script's start
/// and end before the next start; the FIFO reader sees the same transitions at once; SIGTERM
/// brings `notify_stop` and the generic STOP.
#[test]
fn notify_scripts_run_in_transition_order_one_at_a_time_under_rapid_flaps() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let d = lab.dir.path().to_path_buf();
    let log = d.join("notify.log");
    let script = write_script(
        &d,
        "notify.sh",
        &format!(
            "#!/bin/sh\necho \"start $*\" >> {log}\nsleep 0.5\necho \"end $*\" >> {log}\n",
            log = log.display()
        ),
    );
    let s = script.display();
    let fifo = d.join("b.fifo");
    let a = lab.start_keeperd("a", &config("", 100, &vip, ""));
    wait_state(&lab, a, "master", 10 * SECS);
    let b = lab.start_keeperd(
        "b",
        &config(
            &format!("notify_fifo = \"{}\"\nrouter_id = \"b\"", fifo.display()),
            50,
            &vip,
            &format!(
                "notify_master = \"{s} master\"\nnotify_backup = \"{s} backup\"\nnotify_fault = \"{s} fault\"\nnotify_stop = \"{s} stop\"\nnotify = \"{s} generic\""
            ),
        ),
    );
    wait_until("b's FIFO", 10 * SECS, || fifo.exists());
    let reader = lab.start_process("b", "fifo-reader", &["cat", &fifo.display().to_string()]);
    wait_state(&lab, b, "backup", 10 * SECS);
    let mut states = vec!["BACKUP"];
    for _ in 0..3 {
        lab.link_down("a");
        wait_state(&lab, b, "master", 10 * SECS);
        states.push("MASTER");
        lab.link_up("a");
        wait_state(&lab, b, "backup", 10 * SECS);
        states.push("BACKUP");
        lab.link_down("b");
        wait_state(&lab, b, "fault", 10 * SECS);
        states.push("FAULT");
        lab.link_up("b");
        wait_state(&lab, b, "backup", 10 * SECS);
        states.push("BACKUP");
    }
    // The transitions came faster than the scripts ran: some still wait their turn.
    let done_when_flapping_ended = lines(&log).len();
    let mut want = Vec::new();
    for st in &states {
        for args in [st.to_lowercase(), format!("generic INSTANCE VI_1 {st} 50")] {
            want.push(format!("start {args}"));
            want.push(format!("end {args}"));
        }
    }
    assert!(
        done_when_flapping_ended < want.len(),
        "expected a backlog: {done_when_flapping_ended} of {} lines were done",
        want.len()
    );
    // Each transition's two scripts take 1 s.
    wait_until(
        "every transition's scripts",
        states.len() as u32 * 3 * SECS,
        || lines(&log).len() >= want.len(),
    );
    assert_eq!(lines(&log), want, "keeperd log:\n{}", lab.log(b));

    lab.signal(b, libc::SIGTERM);
    let status = lab.wait_exit(b, 15 * SECS);
    assert!(status.success(), "{status:?}\n{}", lab.log(b));
    for args in [
        "stop".to_string(),
        "generic INSTANCE VI_1 STOP 50".to_string(),
    ] {
        want.push(format!("start {args}"));
        want.push(format!("end {args}"));
    }
    assert_eq!(lines(&log), want, "stop scripts ran before exit");

    // The reader got one line per transition, in order, then end of file when keeperd closed
    // the FIFO (keeperd removes the FIFO it created).
    lab.wait_exit(reader, 10 * SECS);
    let fifo_lines = lines(&d.join("fifo-reader.log"));
    let fifo_want: Vec<String> = states
        .iter()
        .chain(&["STOP"])
        .map(|st| format!("INSTANCE \"VI_1\" {st} 50"))
        .collect();
    assert_eq!(fifo_lines, fifo_want);
    assert!(!fifo.exists());
}

/// b's notify_backup hangs (and starts a child that hangs too). While it hangs, a crashes and b
/// takes the VIP within the usual Master_Down bound; at the script timeout the whole process
/// group is killed, and b's notify_master runs after it.
#[test]
fn a_hanging_notify_script_is_killed_at_its_timeout_while_vrrp_fails_over() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let d = lab.dir.path().to_path_buf();
    let log = d.join("notify.log");
    let hang = write_script(
        &d,
        "hang.sh",
        &format!(
            "#!/bin/sh\necho hang >> {log}\necho $$ > {d}/hang.pid\nsleep 600 &\necho $! > {d}/hang-child.pid\nwait\n",
            log = log.display(),
            d = d.display()
        ),
    );
    let master = write_script(
        &d,
        "master.sh",
        &format!("#!/bin/sh\necho master >> {}\n", log.display()),
    );
    let a = lab.start_keeperd("a", &config("", 100, &vip, ""));
    wait_state(&lab, a, "master", 10 * SECS);
    let b = lab.start_keeperd(
        "b",
        &config(
            "notify_script_timeout = 6",
            50,
            &vip,
            &format!(
                "notify_backup = \"{}\"\nnotify_master = \"{}\"",
                hang.display(),
                master.display()
            ),
        ),
    );
    wait_until("the hanging script and its child", 10 * SECS, || {
        d.join("hang-child.pid").exists()
    });
    let (script_pid, child_pid) = (
        read_pid(&d.join("hang.pid")),
        read_pid(&d.join("hang-child.pid")),
    );
    lab.signal(a, libc::SIGKILL);
    lab.wait_exit(a, 5 * SECS);
    let took = wait_state(&lab, b, "master", 3 * SECS);
    assert!(
        alive(script_pid) && alive(child_pid),
        "the script still hangs while b took over"
    );
    // (A SIGKILLed keeperd leaves its VIP behind, as a crashed keepalived does.)
    wait_until("VIP on b", 5 * SECS, || lab.has_addr("b", &vip));
    eprintln!("failover while a notify script hangs: b master {took:?} after the crash");
    wait_until("the hanging script's group killed", 15 * SECS, || {
        !alive(script_pid) && !alive(child_pid)
    });
    wait_until("notify_master after the killed script", 5 * SECS, || {
        lines(&log) == ["hang", "master"]
    });
    assert!(
        lab.log(b).contains("timed out"),
        "the kill is logged:\n{}",
        lab.log(b)
    );
    assert_eq!(lab.state(b, "VI_1").as_deref(), Some("master"));
}

/// The Maildir messages aiosmtpd received so far: (subject, whole text).
fn mails(maildir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut out: Vec<(String, String)> = files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string();
            (subject, text)
        })
        .collect();
    // Maildir names do not keep the arrival order: sort by the Date header's order of sending
    // is not precise enough either, so callers compare sets.
    out.sort();
    out
}

/// keeperd mails keepalived's alerts to a real SMTP server (aiosmtpd) in another namespace:
/// BACKUP at start, MASTER when it takes over, "Stopping" at SIGTERM.
#[test]
fn smtp_alerts_reach_a_real_smtp_server() {
    let mut lab = Lab::new(&["a", "mail"]);
    let vip = lab.vip4();
    let d = lab.dir.path().to_path_buf();
    let maildir = d.join("maildir");
    let listen = format!("{}:2525", lab.v4_of("mail"));
    let smtpd = lab.start_process(
        "mail",
        "aiosmtpd",
        &[
            "/usr/bin/python3",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &listen,
            "-c",
            "aiosmtpd.handlers.Mailbox",
            &maildir.display().to_string(),
        ],
    );
    wait_until("aiosmtpd listening", 20 * SECS, || {
        let out = lab.exec("mail", &["ss", "-Hltn", "sport", "= :2525"]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
    let a = lab.start_keeperd(
        "a",
        &config(
            &format!(
                "router_id = \"lbA\"\nsmtp_server = \"{listen}\"\nsmtp_connect_timeout = 5\nnotification_email = [\"ops@example.com\", \"oncall@example.com\"]\nnotification_email_from = \"keeper@example.com\"\nsmtp_helo_name = \"lbA.example.com\""
            ),
            100,
            &vip,
            "smtp_alert = true",
        ),
    );
    wait_state(&lab, a, "master", 10 * SECS);
    wait_until("2 mails", 20 * SECS, || mails(&maildir).len() == 2);
    lab.signal(a, libc::SIGTERM);
    let status = lab.wait_exit(a, 15 * SECS);
    assert!(status.success(), "{status:?}");
    wait_until("3 mails", 10 * SECS, || mails(&maildir).len() == 3);
    let got = mails(&maildir);
    let subjects: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "[lbA] VRRP Instance VI_1 - Entering BACKUP state",
            "[lbA] VRRP Instance VI_1 - Entering MASTER state",
            "[lbA] VRRP Instance VI_1 - Stopping",
        ],
        "smtpd log:\n{}",
        lab.log(smtpd)
    );
    let master = &got[1].1;
    for want in [
        "From: keeper@example.com",
        "To: ops@example.com, oncall@example.com",
        "X-Mailer: keeper",
        "=> VRRP Instance is now owning VRRP VIPs <=",
        "X-Peer:",
    ] {
        assert!(master.contains(want), "{want:?} missing in:\n{master}");
    }
    assert!(
        got[0]
            .1
            .contains("=> VRRP Instance is no longer owning VRRP VIPs <=")
    );
    assert!(got[2].1.contains("=> VRRP Instance stopping <="));
}

/// The SMTP server accepts connections and never answers. Mail for every transition is stuck
/// in keeperd's mail task, and failovers happen within the usual bounds all the same; the
/// failures are logged; SIGTERM still ends keeperd within its stop bound.
#[test]
fn an_unresponsive_smtp_server_does_not_delay_failover() {
    let mut lab = Lab::new(&["a", "b", "mail"]);
    let vip = lab.vip4();
    let listen_ip = lab.v4_of("mail");
    let silent = format!(
        "import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('{listen_ip}', 2525))\ns.listen(64)\nheld = []\nwhile True:\n    c, _ = s.accept()\n    held.append(c)\n"
    );
    lab.start_process("mail", "silent-smtp", &["/usr/bin/python3", "-c", &silent]);
    wait_until("silent server listening", 20 * SECS, || {
        let out = lab.exec("mail", &["ss", "-Hltn", "sport", "= :2525"]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
    let global = format!(
        "smtp_server = \"{listen_ip}:2525\"\nsmtp_connect_timeout = 2\nnotification_email = [\"ops@example.com\"]\nnotification_email_from = \"keeper@example.com\"\nsmtp_alert = true"
    );
    let a = lab.start_keeperd("a", &config(&global, 100, &vip, ""));
    wait_state(&lab, a, "master", 10 * SECS);
    let b = lab.start_keeperd("b", &config(&global, 50, &vip, ""));
    wait_state(&lab, b, "backup", 10 * SECS);
    // Master_Down at 0.1 s adverts and priority 50 is 0.5 s; 3 s bounds it with room.
    lab.signal(a, libc::SIGKILL);
    lab.wait_exit(a, 5 * SECS);
    let took = wait_state(&lab, b, "master", 3 * SECS);
    eprintln!("failover with mail stuck: {took:?}");
    let a2 = lab.start_keeperd("a", &config(&global, 100, &vip, ""));
    wait_state(&lab, a2, "master", 10 * SECS);
    wait_state(&lab, b, "backup", 3 * SECS);
    lab.link_down("a");
    let took = wait_state(&lab, b, "master", 3 * SECS);
    eprintln!("second failover with mail stuck: {took:?}");
    wait_until("VIP on b only", 5 * SECS, || lab.holders(&vip) == ["b"]);
    // Each stuck mail is given up after 3 x 2 s; b has queued BACKUP and MASTER twice.
    wait_until("an undelivered mail logged", 20 * SECS, || {
        lab.log(b).contains("not delivered")
    });
    lab.signal(b, libc::SIGTERM);
    let status = lab.wait_exit(b, 15 * SECS);
    assert!(status.success(), "{status:?}\n{}", lab.log(b));
}

/// A notify script runs as `script_user` with no capabilities and no_new_privs (so no `sudo`),
/// while keeperd runs as root.
#[test]
fn notify_scripts_run_as_the_script_user_without_capabilities() {
    let mut lab = Lab::new(&["a"]);
    let vip = lab.vip4();
    // A directory the script user can write to (the lab's own is root's, mode 0700).
    let out = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        out.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let report = out.path().join("who");
    let script = write_script(
        out.path(),
        "who.sh",
        &format!(
            "#!/bin/sh\n{{ id -u; grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs)' /proc/self/status; }} > {}\n",
            report.display()
        ),
    );
    let a = lab.start_keeperd(
        "a",
        &config(
            "script_user = \"nobody\"",
            100,
            &vip,
            &format!("notify_master = \"{}\"", script.display()),
        ),
    );
    wait_state(&lab, a, "master", 10 * SECS);
    wait_until("the script's report", 10 * SECS, || {
        lines(&report).len() == 6
    });
    let got = lines(&report);
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("user lookup")
        .expect("user nobody")
        .uid
        .as_raw();
    assert_eq!(got[0], nobody.to_string(), "{got:?}");
    for l in &got[1..] {
        let (k, v) = l.split_once(':').expect("status line");
        let want = if k == "NoNewPrivs" {
            "1"
        } else {
            "0000000000000000"
        };
        assert_eq!(v.trim(), want, "{got:?}");
    }
}
