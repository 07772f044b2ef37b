//! The script launcher for real: keeperd's binary started as the launcher by a root process,
//! dropping to a daemon user with CAP_SETUID/CAP_SETGID/CAP_KILL, running scripts as another
//! user with no capability, killing the ones that overrun. Needs root (creates the test users
//! `keepert-daemon` and `keepert-script` when missing).

#![cfg(feature = "netns-tests")]

mod lab;

use std::collections::BTreeMap;

use std::path::Path;
use std::time::Duration;

use keeper::launcher::{OUTPUT_LIMIT, Outcome, Script, ScriptError, ScriptRunner};
use keeper::privilege::{self, Plan};

const DAEMON_USER: &str = "keepert-daemon";
const SCRIPT_USER: &str = "keepert-script";

fn keeperd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keeperd"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The plan keeperd makes when started as root with `user = DAEMON_USER` and
/// `script_user = SCRIPT_USER`.
fn launcher_plan() -> Plan {
    lab::ensure_user(DAEMON_USER, None);
    lab::ensure_user(SCRIPT_USER, None);
    let mut cfg = keeper::config::Config::default();
    cfg.global.user = Some(DAEMON_USER.into());
    cfg.global.script_user = Some(SCRIPT_USER.into());
    let plan = privilege::plan(&cfg).expect("plan");
    assert!(plan.launcher && plan.started_as_root);
    plan
}

fn sh(cmd: &str, timeout: Duration) -> Script {
    Script {
        argv: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
        env: vec![("KEEPER_TEST".into(), "1".into())],
        timeout,
        user: None,
    }
}

/// `Name:\tvalue` lines of a /proc/PID/status text.
fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn proc_status(pid: u32) -> BTreeMap<String, String> {
    fields(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: it only waits to be reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

#[test]
fn launcher_keeps_three_capabilities_and_scripts_get_none() {
    let plan = launcher_plan();
    let script_uid = plan.script_users[SCRIPT_USER].uid;
    rt().block_on(async {
        let runner = ScriptRunner::start(&plan, keeperd()).expect("launcher starts");
        let pid = runner.launcher_pid().expect("a launcher runs");
        // The launcher drops privileges itself right after its start.
        lab::wait_until(
            "launcher dropped privileges",
            Duration::from_secs(10),
            || {
                proc_status(pid).get("Uid").map(String::as_str)
                    == Some(&format!("{0}\t{0}\t{0}\t{0}", plan.daemon.uid))
            },
        );
        let st = proc_status(pid);
        assert_eq!(
            st["CapEff"], "00000000000000e0",
            "CAP_KILL, CAP_SETGID, CAP_SETUID: {st:?}"
        );
        assert_eq!(st["CapPrm"], "00000000000000e0");
        assert_eq!(st["CapBnd"], "00000000000000e0");
        assert_eq!(st["CapInh"], "0000000000000000");
        assert_eq!(st["CapAmb"], "0000000000000000");
        assert_eq!(st["NoNewPrivs"], "1");

        let r = runner
            .run(sh(
                "cat /proc/self/status; echo ENV=$(env | sort | tr '\\n' ' ')",
                Duration::from_secs(10),
            ))
            .await
            .expect("script runs");
        assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
        let st = fields(&r.stdout);
        assert_eq!(
            st["Uid"],
            format!("{0}\t{0}\t{0}\t{0}", script_uid),
            "{}",
            r.stdout
        );
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(st[set], "0000000000000000", "{set}: {}", r.stdout);
        }
        assert_eq!(st["NoNewPrivs"], "1");
        // Default signal dispositions: nothing ignored, nothing blocked.
        assert_eq!(st["SigIgn"], "0000000000000000", "{}", r.stdout);
        assert_eq!(st["SigBlk"], "0000000000000000", "{}", r.stdout);
        // A clean environment: PATH and what the caller gave, nothing of the daemon's.
        let env = r
            .stdout
            .lines()
            .find(|l| l.starts_with("ENV="))
            .unwrap_or_default();
        assert!(env.contains("KEEPER_TEST=1"), "{env}");
        assert!(env.contains("PATH="), "{env}");
        assert!(!env.contains("CARGO"), "{env}");

        // Exit codes and signals come back as they are.
        let r = runner
            .run(sh("exit 3", Duration::from_secs(10)))
            .await
            .expect("runs");
        assert_eq!(r.outcome, Outcome::Exited(3));
        let r = runner
            .run(sh("kill -TERM $$", Duration::from_secs(10)))
            .await
            .expect("runs");
        assert_eq!(r.outcome, Outcome::Signaled(libc::SIGTERM));
        // Output is capped, never unbounded.
        let r = runner
            .run(sh(
                "head -c 100000 /dev/zero | tr '\\0' x",
                Duration::from_secs(10),
            ))
            .await
            .expect("runs");
        assert_eq!(r.stdout.len(), OUTPUT_LIMIT);
        // A user the launcher was not started for is refused.
        let mut s = sh("true", Duration::from_secs(10));
        s.user = Some("root".into());
        assert_eq!(
            runner.run(s).await,
            Err(ScriptError::UnknownUser("root".into()))
        );
        // A missing program is an error naming it.
        let s = Script {
            argv: vec!["/nonexistent/keeper-script".into()],
            env: Vec::new(),
            timeout: Duration::from_secs(5),
            user: None,
        };
        match runner.run(s).await {
            Err(ScriptError::Spawn { program, .. }) => {
                assert_eq!(program, "/nonexistent/keeper-script")
            }
            other => panic!("expected a spawn error, got {other:?}"),
        }
        // systemd signals the whole unit at stop: the launcher stays for keeperd's stop-time
        // scripts and ends only with keeperd.
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
        let r = runner
            .run(sh("exit 0", Duration::from_secs(10)))
            .await
            .expect("the launcher survives SIGTERM");
        assert!(r.outcome.success());
        assert!(alive(pid));
    });
}

#[test]
fn an_overrunning_script_and_its_children_are_killed() {
    let plan = launcher_plan();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let pids = dir.path().join("pids");
    rt().block_on(async {
        let runner = ScriptRunner::start(&plan, keeperd()).expect("launcher starts");
        let cmd = format!("sleep 60 & echo $$ $! > {}; wait", pids.display());
        let r = runner
            .run(sh(&cmd, Duration::from_millis(500)))
            .await
            .expect("runs");
        assert_eq!(r.outcome, Outcome::TimedOut);
        assert!(r.duration >= Duration::from_millis(500), "{:?}", r.duration);
        let text = std::fs::read_to_string(&pids).expect("the script wrote its pids");
        for pid in text
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            // Killed by the launcher (another uid: it needs CAP_KILL), whole process group.
            lab::wait_until("script process gone", Duration::from_secs(5), || {
                !alive(pid)
            });
        }
    });
}

#[test]
fn a_dead_launcher_fails_runs_cleanly_and_a_dropped_runner_stops_it() {
    let plan = launcher_plan();
    let launcher_pid = rt().block_on(async {
        let runner = ScriptRunner::start(&plan, keeperd()).expect("launcher starts");
        let r = runner
            .run(sh("true", Duration::from_secs(10)))
            .await
            .expect("runs");
        assert!(r.outcome.success());
        runner.launcher_pid().expect("pid")
    });
    // The runtime (and with it the daemon's end of the socket) is gone: the launcher exits.
    lab::wait_until(
        "launcher exits after the daemon",
        Duration::from_secs(10),
        || !alive(launcher_pid),
    );

    rt().block_on(async {
        let runner = ScriptRunner::start(&plan, keeperd()).expect("launcher starts");
        let pid = runner.launcher_pid().expect("pid");
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        match runner.run(sh("true", Duration::from_secs(10))).await {
            Err(ScriptError::LauncherGone(_)) => {}
            other => panic!("expected LauncherGone, got {other:?}"),
        }
    });
}

#[test]
fn scripts_run_by_the_daemon_itself_have_no_capabilities() {
    // Script user = the daemon's identity: no launcher; here the daemon is this (root) process.
    let me = privilege::current_account();
    let mut users = BTreeMap::new();
    users.insert(String::new(), me.clone());
    let plan = Plan {
        started_as_root: true,
        daemon: me,
        script_users: users,
        default_script_user: String::new(),
        launcher: false,
    };
    rt().block_on(async {
        let runner = ScriptRunner::start(&plan, keeperd()).expect("runner");
        assert_eq!(runner.launcher_pid(), None);
        let r = runner
            .run(sh("cat /proc/self/status", Duration::from_secs(10)))
            .await
            .expect("runs");
        let st = fields(&r.stdout);
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(st[set], "0000000000000000", "{set}: {}", r.stdout);
        }
        assert_eq!(st["NoNewPrivs"], "1");
    });
}
