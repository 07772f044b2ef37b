//! The notifier with real scripts (real processes, files, a real FIFO); no root needed.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

fn config(toml_text: &str) -> Config {
    match toml::from_str(toml_text) {
        Ok(c) => c,
        Err(e) => panic!("config: {e}\n{toml_text}"),
    }
}

/// A script that logs `start ARGS`, sleeps, then logs `end ARGS` to `log`.
fn logging_script(dir: &Path, sleep: &str) -> String {
    let path = dir.join("notify.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"start $*\" >> {log}\nsleep {sleep}\necho \"end $*\" >> {log}\n",
            log = dir.join("log").display()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path.display().to_string()
}

fn log_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn direct() -> Runner {
    Runner::Direct { switch_to: None }
}

/// Transitions that come while a script runs wait for it: the log shows each script's start
/// and end before the next start, in the order of the transitions; specific script first, then
/// the generic one with keepalived's four arguments.
#[tokio::test]
async fn scripts_run_one_at_a_time_in_transition_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = logging_script(dir.path(), "0.05");
    let cfg = config(&format!(
        r#"
[vrrp_instance.VI_1]
notify_master = "{s} master"
notify_backup = "{s} backup"
notify_fault = "{s} fault"
notify = "{s} generic"
"#
    ));
    let n = Notifier::start(&cfg, direct());
    let states = [
        NotifyState::Backup,
        NotifyState::Master,
        NotifyState::Fault,
        NotifyState::Backup,
        NotifyState::Master,
    ];
    // Queued at once, on this test's only thread: nothing here waits for a script.
    for (i, st) in states.iter().enumerate() {
        n.instance("VI_1", *st, 100 + i as u8);
    }
    wait_for("10 scripts", Duration::from_secs(20), || {
        log_lines(dir.path()).len() == 20
    })
    .await;
    let mut want = Vec::new();
    for (i, st) in states.iter().enumerate() {
        let specific = st.as_str().to_lowercase();
        for args in [
            specific,
            format!("generic INSTANCE VI_1 {} {}", st.as_str(), 100 + i),
        ] {
            want.push(format!("start {args}"));
            want.push(format!("end {args}"));
        }
    }
    assert_eq!(log_lines(dir.path()), want);
    wait_for("10 runs counted", Duration::from_secs(10), || {
        n.stats().scripts_run == 10
    })
    .await;
    assert_eq!(n.stats().scripts_failed, 0);
}

/// Each instance has its own queue: a slow script of one does not hold back another's.
#[tokio::test]
async fn instances_do_not_wait_for_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = dir.path().join("slow.sh");
    std::fs::write(&slow, "#!/bin/sh\nsleep 30\n").expect("write");
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mark = dir.path().join("fast-ran");
    let cfg = config(&format!(
        r#"
[vrrp_instance.SLOW]
notify_master = "{}"
[vrrp_instance.FAST]
notify_master = "/bin/sh -c 'touch {}'"
"#,
        slow.display(),
        mark.display()
    ));
    let n = Notifier::start(&cfg, direct());
    n.instance("SLOW", NotifyState::Master, 100);
    n.instance("FAST", NotifyState::Master, 100);
    wait_for("FAST's script ran", Duration::from_secs(10), || {
        mark.exists()
    })
    .await;
    assert!(!n.stop(&[], Duration::from_millis(100)).await);
}

/// A hanging script is killed at the timeout and the queue moves on to the next transition.
#[tokio::test]
async fn a_hanging_script_is_killed_at_its_timeout_and_the_queue_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log");
    let cfg = config(&format!(
        r#"
[global]
notify_script_timeout = "300ms"
[vrrp_instance.VI_1]
notify_master = "/bin/sh -c 'echo hang >> {log}; sleep 60'"
notify_backup = "/bin/sh -c 'echo backup >> {log}'"
"#,
        log = log.display()
    ));
    let n = Notifier::start(&cfg, direct());
    let t0 = Instant::now();
    n.instance("VI_1", NotifyState::Master, 100);
    n.instance("VI_1", NotifyState::Backup, 100);
    wait_for(
        "backup script after the killed one",
        Duration::from_secs(10),
        || log_lines(dir.path()) == ["hang", "backup"],
    )
    .await;
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    wait_for("2 runs counted", Duration::from_secs(10), || {
        n.stats().scripts_run == 2
    })
    .await;
    let st = n.stats();
    assert_eq!(st.scripts_timed_out, 1);
    assert_eq!(st.scripts_failed, 1);
}

/// keepalived: a sync group's member gets no notification of a state its group is already in
/// (after its first one); the group gets `GROUP NAME STATE 0`.
#[tokio::test]
async fn group_notifications_stand_for_their_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = logging_script(dir.path(), "0");
    let cfg = config(&format!(
        r#"
[vrrp_instance.A]
notify = "{s}"
[vrrp_instance.B]
notify = "{s}"
[vrrp_sync_group.G]
group = ["A", "B"]
notify = "{s}"
"#
    ));
    let n = Notifier::start(&cfg, direct());
    // Start: both members report BACKUP before the group has a state.
    n.instance("A", NotifyState::Backup, 100);
    n.instance("B", NotifyState::Backup, 100);
    // A takes over; the group forces B (drained before the group's transition is polled, as
    // keeper-vrrp's driver contract says), then the group's own notification.
    let change = |name: &str, from, to, reason| StateChange {
        instance: name.into(),
        vrid: 51,
        priority: 100,
        transition: Transition { from, to, reason },
        at: std::time::SystemTime::now(),
    };
    n.vrrp_change(&change(
        "A",
        State::Backup,
        State::Master,
        TransitionReason::MasterDown,
    ));
    n.vrrp_change(&change(
        "B",
        State::Backup,
        State::Master,
        TransitionReason::SyncGroup,
    ));
    n.group_transition(
        "G",
        &keeper_vrrp::GroupTransition {
            from: State::Backup,
            to: State::Master,
            cause: Some(0),
        },
    );
    // A member's own transition into the state its group already has is folded too.
    n.instance("A", NotifyState::Master, 100);
    wait_for("4 notifications", Duration::from_secs(10), || {
        log_lines(dir.path()).len() == 8
    })
    .await;
    // Give a wrongly queued 5th one the time to show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Queues of different subjects run side by side: compare as a set.
    let mut starts: Vec<String> = log_lines(dir.path())
        .into_iter()
        .filter(|l| l.starts_with("start"))
        .collect();
    starts.sort();
    assert_eq!(
        starts,
        [
            "start GROUP G MASTER 0",
            "start INSTANCE A BACKUP 100",
            "start INSTANCE A MASTER 100",
            "start INSTANCE B BACKUP 100",
        ]
    );
}

/// At stop: `notify_stop` and `notify … STOP` for every instance and group, waited for.
#[tokio::test]
async fn stop_runs_stop_scripts_and_waits_for_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = logging_script(dir.path(), "0.1");
    let cfg = config(&format!(
        r#"
[vrrp_instance.VI_1]
notify_stop = "{s} stop"
notify = "{s} generic"
[vrrp_sync_group.G]
group = ["VI_1"]
notify_stop = "{s} gstop"
"#
    ));
    let n = Notifier::start(&cfg, direct());
    assert!(
        n.stop(&[("VI_1".into(), 90)], Duration::from_secs(10))
            .await
    );
    let mut lines = log_lines(dir.path());
    // The instance's two run in order; the group's queue runs beside them.
    let group: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("gstop"))
        .cloned()
        .collect();
    lines.retain(|l| !l.contains("gstop"));
    assert_eq!(
        lines,
        [
            "start stop",
            "end stop",
            "start generic INSTANCE VI_1 STOP 90",
            "end generic INSTANCE VI_1 STOP 90"
        ]
    );
    assert_eq!(group, ["start gstop", "end gstop"]);
}

/// The stop bound holds even when a stop script hangs (it is killed).
#[tokio::test]
async fn stop_is_bounded() {
    let cfg = config(
        r#"
[vrrp_instance.VI_1]
notify_stop = "/bin/sleep 60"
"#,
    );
    let n = Notifier::start(&cfg, direct());
    let t0 = Instant::now();
    assert!(
        !n.stop(&[("VI_1".into(), 100)], Duration::from_millis(300))
            .await
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

/// The driver's shutdown transitions are not notified twice (`stop` does it).
#[tokio::test]
async fn driver_transitions_map_to_notifications() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = logging_script(dir.path(), "0");
    let cfg = config(&format!("[vrrp_instance.VI_1]\nnotify = \"{s}\"\n"));
    let n = Notifier::start(&cfg, direct());
    let change = |from, to, reason| StateChange {
        instance: "VI_1".into(),
        vrid: 51,
        priority: 100,
        transition: Transition { from, to, reason },
        at: std::time::SystemTime::now(),
    };
    n.vrrp_change(&change(
        State::Initialize,
        State::Backup,
        TransitionReason::Startup,
    ));
    n.vrrp_change(&change(
        State::Backup,
        State::Master,
        TransitionReason::MasterDown,
    ));
    n.vrrp_change(&change(
        State::Master,
        State::Initialize,
        TransitionReason::Shutdown,
    ));
    n.vrrp_change(&change(
        State::Master,
        State::Fault,
        TransitionReason::InterfaceDown,
    ));
    wait_for("3 notifications", Duration::from_secs(10), || {
        log_lines(dir.path()).len() == 6
    })
    .await;
    let starts: Vec<String> = log_lines(dir.path())
        .into_iter()
        .filter(|l| l.starts_with("start"))
        .collect();
    assert_eq!(
        starts,
        [
            "start INSTANCE VI_1 BACKUP 100",
            "start INSTANCE VI_1 MASTER 100",
            "start INSTANCE VI_1 FAULT 100"
        ]
    );
}

#[tokio::test]
async fn fifo_gets_instance_and_group_lines_in_order() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo_path = dir.path().join("notify.fifo");
    let cfg = config(&format!(
        "[global]\nnotify_fifo = \"{}\"\n[vrrp_instance.VI_1]\n[vrrp_sync_group.G]\ngroup = [\"VI_1\"]\n",
        fifo_path.display()
    ));
    let n = Notifier::start(&cfg, direct());
    let p = fifo_path.clone();
    let reader = std::thread::spawn(move || {
        let f = std::fs::File::open(p).expect("open FIFO");
        BufReader::new(f)
            .lines()
            .take(4)
            .map(|l| l.expect("line"))
            .collect::<Vec<_>>()
    });
    n.instance("VI_1", NotifyState::Backup, 100);
    n.instance("VI_1", NotifyState::Master, 100);
    n.group("G", NotifyState::Master);
    n.instance("VI_1", NotifyState::Fault, 0);
    let got = tokio::task::spawn_blocking(move || reader.join().expect("reader"))
        .await
        .expect("join");
    assert_eq!(
        got,
        [
            "INSTANCE \"VI_1\" BACKUP 100",
            "INSTANCE \"VI_1\" MASTER 100",
            "GROUP \"G\" MASTER 0",
            "INSTANCE \"VI_1\" FAULT 0"
        ]
    );
    assert!(n.stop(&[], Duration::from_secs(5)).await);
    assert!(!fifo_path.exists(), "keeperd removes the FIFO it created");
}

#[tokio::test]
async fn real_server_scripts_run_as_written_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = logging_script(dir.path(), "0.05");
    let n = Notifier::start(&Config::default(), direct());
    for (up, word) in [(false, "down"), (true, "up"), (false, "down")] {
        n.real_server(RealServerChange {
            virtual_server: "10.0.0.100:80".into(),
            real_server: "10.0.0.21:80".into(),
            up,
            script: Some(vec![s.clone(), word.into()]),
            smtp_alert: false,
            detail: String::new(),
        });
    }
    wait_for("3 scripts", Duration::from_secs(10), || {
        log_lines(dir.path()).len() == 6
    })
    .await;
    assert_eq!(
        log_lines(dir.path()),
        [
            "start down",
            "end down",
            "start up",
            "end up",
            "start down",
            "end down"
        ]
    );
}

#[test]
fn check_reports_bad_lines_and_missing_programs() {
    let cfg = config(
        r#"
[global]
notify_script_timeout = 0
[vrrp_instance.VI_1]
notify_master = "/bin/true 'unterminated"
notify_backup = "/nonexistent/script"
notify = "true"
[vrrp_sync_group.G]
notify_fault = ""
"#,
    );
    let found: Vec<(Severity, String)> = check(&cfg)
        .into_iter()
        .map(|f| (f.severity, f.path.join(".")))
        .collect();
    assert_eq!(
        found,
        [
            (Severity::Error, "vrrp_instance.VI_1.notify_master".into()),
            (Severity::Warning, "vrrp_instance.VI_1.notify_backup".into()),
            (Severity::Error, "vrrp_sync_group.G.notify_fault".into()),
            (Severity::Error, "global.notify_script_timeout".into()),
        ]
    );
}

#[test]
fn smtp_alert_defaults_follow_keepalived() {
    let base = "[global]\nsmtp_server = \"127.0.0.1\"\nnotification_email = [\"a@b.c\"]\n";
    let plan = |extra: &str| {
        Plan::from_config(&config(&format!(
            "{base}{extra}\n[vrrp_instance.A]\n[vrrp_instance.B]\nsmtp_alert = false\n[vrrp_sync_group.G]\ngroup = [\"A\"]\n"
        )))
    };
    let p = plan("");
    assert!(!p.instances["A"].smtp_alert && !p.groups["G"].smtp_alert);
    let p = plan("smtp_alert = true");
    assert!(p.instances["A"].smtp_alert && p.groups["G"].smtp_alert);
    assert!(!p.instances["B"].smtp_alert, "an instance's own false wins");
    let p = plan("smtp_alert = true\nsmtp_alert_vrrp = false");
    assert!(
        !p.instances["A"].smtp_alert,
        "smtp_alert_vrrp wins for VRRP"
    );
    let mail = p.mail.expect("mail settings");
    assert_eq!((mail.server.as_str(), mail.port), ("127.0.0.1", 25));
    assert_eq!(mail.timeout, Duration::from_secs(30));
    assert!(mail.from.contains('@'));
}

/// After a reload, later transitions use the new scripts; what was queued keeps its own.
#[tokio::test]
async fn reconfigure_applies_to_later_transitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = logging_script(dir.path(), "0.2");
    let n = Notifier::start(
        &config(&format!(
            "[vrrp_instance.VI_1]\nnotify_master = \"{s} old\"\n"
        )),
        direct(),
    );
    n.instance("VI_1", NotifyState::Master, 100);
    n.reconfigure(&config(&format!(
        "[vrrp_instance.VI_1]\nnotify_master = \"{s} new\"\n"
    )));
    n.instance("VI_1", NotifyState::Backup, 100);
    n.instance("VI_1", NotifyState::Master, 100);
    wait_for("2 scripts", Duration::from_secs(10), || {
        log_lines(dir.path()).len() == 4
    })
    .await;
    assert!(n.stop(&[], Duration::from_secs(5)).await);
    assert_eq!(
        log_lines(dir.path()),
        ["start old", "end old", "start new", "end new"]
    );
}
