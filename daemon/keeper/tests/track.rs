//! The tracker with real processes and files: scripts that succeed, fail, hang and fork;
//! files changed, removed and recreated; processes started and stopped. Every wait is on a
//! condition with a deadline; deadlines bound hangs, they do not measure speed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keeper::config::Config;
use keeper::track::{
    DirectExec, FileReading, Observation, ProcessWatch, ScriptOutcome, TrackStatus, Tracker,
    TrackerOptions,
};
use tokio::sync::mpsc::Receiver;

const DEADLINE: Duration = Duration::from_secs(20);

/// A configuration whose one instance tracks everything named in `tracks`
/// (`("track_script", "chk")`), plus `extra` TOML.
fn config(tracks: &[(&str, &str)], extra: &str) -> Config {
    let mut text =
        String::from("[vrrp_instance.VI_1]\ninterface = \"lo\"\nvirtual_router_id = 1\n");
    for key in ["track_script", "track_file", "track_process"] {
        let names: Vec<String> = tracks
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, n)| format!("\"{n}\""))
            .collect();
        if !names.is_empty() {
            text.push_str(&format!("{key} = [{}]\n", names.join(", ")));
        }
    }
    text.push_str(extra);
    match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => panic!("test configuration: {e}\n{text}"),
    }
}

fn script(name: &str, line: &str, interval: &str, timeout: &str) -> String {
    format!(
        "[vrrp_script.{name}]\nscript = '{line}'\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n"
    )
}

/// The next observation that `want` accepts (others are skipped), within [`DEADLINE`].
async fn next(
    rx: &mut Receiver<Observation>,
    what: &str,
    mut want: impl FnMut(&Observation) -> bool,
) -> Observation {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(o)) if want(&o) => return o,
            Ok(Some(_)) => {}
            Ok(None) => panic!("{what}: the tracker stopped"),
            Err(_) => panic!("{what}: nothing within {DEADLINE:?}"),
        }
    }
}

/// Everything observed until `quiet` passes without an observation.
async fn drain(rx: &mut Receiver<Observation>, quiet: Duration) -> Vec<Observation> {
    let mut all = Vec::new();
    while let Ok(Some(o)) = tokio::time::timeout(quiet, rx.recv()).await {
        all.push(o);
    }
    all
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` is gone (or dead and waiting to be reaped by someone else).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn script_outcome(o: &Observation) -> Option<&ScriptOutcome> {
    match o {
        Observation::Script { outcome, .. } => Some(outcome),
        _ => None,
    }
}

#[tokio::test]
async fn scripts_that_succeed_fail_or_cannot_start_are_reported_every_interval() {
    let cfg = config(
        &[
            ("track_script", "ok"),
            ("track_script", "bad"),
            ("track_script", "missing"),
            ("track_script", "nobody"),
        ],
        &(script("ok", "/bin/true", "100ms", "1s")
            + &script("bad", "/bin/sh -c \"exit 3\"", "100ms", "1s")
            + &script("missing", "/nonexistent/check", "100ms", "1s")
            + &script("nobody", "/bin/true", "100ms", "1s")
            + "user = \"no-such-user-kt\"\n"),
    );
    let (tracker, mut rx) = Tracker::start(&cfg);
    for _ in 0..2 {
        let o = next(&mut rx, "ok", |o| o.name() == "ok").await;
        assert_eq!(script_outcome(&o), Some(&ScriptOutcome::Exited(0)));
        let o = next(&mut rx, "bad", |o| o.name() == "bad").await;
        assert_eq!(script_outcome(&o), Some(&ScriptOutcome::Exited(3)));
        let o = next(&mut rx, "missing", |o| o.name() == "missing").await;
        assert!(
            matches!(script_outcome(&o), Some(ScriptOutcome::NotStarted(why)) if why.contains("/nonexistent/check")),
            "{o:?}"
        );
        let o = next(&mut rx, "nobody", |o| o.name() == "nobody").await;
        assert!(
            matches!(script_outcome(&o), Some(ScriptOutcome::NotStarted(why)) if why.contains("no-such-user-kt")),
            "never run as another user than configured: {o:?}"
        );
    }
    let status = tracker.status();
    let ok = status.scripts.iter().find(|s| s.name == "ok");
    assert!(
        ok.is_some_and(|s| s.runs >= 2 && s.last.as_ref().is_some_and(|r| r.outcome.success()))
    );
    tracker.stop().await;
}

#[tokio::test]
async fn a_hung_script_is_killed_at_its_timeout_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = dir.path().join("me");
    let child = dir.path().join("child");
    // The script forks a child that hangs, then hangs itself waiting for it.
    let line = format!(
        "/bin/sh -c \"echo $$ > {}; sleep 1000 & echo $! > {}; wait\"",
        me.display(),
        child.display()
    );
    let cfg = config(
        &[("track_script", "hang")],
        &script("hang", &line, "30s", "400ms"),
    );
    let (tracker, mut rx) = Tracker::start(&cfg);
    let o = next(&mut rx, "hang", |o| o.name() == "hang").await;
    let Observation::Script {
        outcome, duration, ..
    } = &o
    else {
        panic!("{o:?}")
    };
    assert_eq!(outcome, &ScriptOutcome::TimedOut);
    assert!(*duration >= Duration::from_millis(400), "{duration:?}");
    assert!(!outcome.success(), "a timeout is a failure");
    let (me, child) = (read_pid(&me), read_pid(&child));
    let (Some(me), Some(child)) = (me, child) else {
        panic!("the script did not start its child: {me:?} {child:?}")
    };
    wait_for("the script is killed", || dead(me)).await;
    wait_for("the script's child is killed", || dead(child)).await;
    tracker.stop().await;
}

#[tokio::test]
async fn a_run_never_overlaps_the_previous_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = dir.path().join("lock");
    let overlaps = dir.path().join("overlaps");
    let line = format!(
        "/bin/sh -c \"mkdir {lock} || echo overlap >> {ov}; sleep 0.35; rmdir {lock}\"",
        lock = lock.display(),
        ov = overlaps.display()
    );
    let cfg = config(
        &[("track_script", "slow")],
        &script("slow", &line, "100ms", "5s"),
    );
    let (tracker, mut rx) = Tracker::start(&cfg);
    let mut starts = Vec::new();
    for _ in 0..3 {
        let o = next(&mut rx, "slow", |o| o.name() == "slow").await;
        let Observation::Script {
            outcome,
            started,
            duration,
            ..
        } = o
        else {
            unreachable!()
        };
        assert_eq!(outcome, ScriptOutcome::Exited(0));
        assert!(duration >= Duration::from_millis(350));
        starts.push(started);
    }
    for pair in starts.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(350),
            "runs overlap: {gap:?} apart"
        );
    }
    assert!(!overlaps.exists(), "two runs held the lock at once");
    let st = tracker.status();
    let slow = st
        .scripts
        .iter()
        .find(|s| s.name == "slow")
        .expect("status");
    assert!(
        slow.skipped >= 4,
        "starts due while running are skipped: {slow:?}"
    );
    tracker.stop().await;
}

#[tokio::test]
async fn stopping_kills_a_running_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = dir.path().join("me");
    let line = format!("/bin/sh -c \"echo $$ > {}; sleep 1000\"", me.display());
    let cfg = config(
        &[("track_script", "long")],
        &script("long", &line, "30s", "60s"),
    );
    let (tracker, _rx) = Tracker::start(&cfg);
    wait_for("the script runs", || read_pid(&me).is_some()).await;
    let pid = read_pid(&me).unwrap_or_default();
    assert!(tracker.status().scripts.iter().any(|s| s.running));
    tracker.stop().await;
    wait_for("the script is killed", || dead(pid)).await;
}

#[tokio::test]
async fn reload_keeps_unchanged_scripts_and_restarts_changed_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = |n: &str| dir.path().join(n);
    let line = |n: &str| format!("/bin/sh -c \"echo x >> {}\"", log(n).display());
    let both = |b_interval: &str| {
        config(
            &[("track_script", "a"), ("track_script", "b")],
            &(script("a", &line("a"), "100ms", "1s") + &script("b", &line("b"), b_interval, "1s")),
        )
    };
    let (mut tracker, mut rx) = Tracker::start(&both("100ms"));
    let runs = |t: &Tracker, n: &str| {
        t.status()
            .scripts
            .iter()
            .find(|s| s.name == n)
            .map_or(0, |s| s.runs)
    };
    for _ in 0..3 {
        next(&mut rx, "a", |o| o.name() == "a").await;
    }
    next(&mut rx, "b", |o| o.name() == "b").await;
    let before = runs(&tracker, "a");
    assert!(before >= 3);
    tracker.reload(&both("150ms"));
    assert!(
        runs(&tracker, "a") >= before,
        "a keeps its task and its count"
    );
    assert_eq!(runs(&tracker, "b"), 0, "b changed: a new task");
    next(&mut rx, "b after reload", |o| o.name() == "b").await;
    next(&mut rx, "a after reload", |o| o.name() == "a").await;
    // Untracking a script stops it.
    tracker.reload(&config(
        &[("track_script", "a")],
        &(script("a", &line("a"), "100ms", "1s") + &script("b", &line("b"), "100ms", "1s")),
    ));
    let names: Vec<String> = tracker
        .status()
        .scripts
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a"]);
    tracker.stop().await;
}

fn file_config(name: &str, path: &Path, extra: &str) -> Config {
    config(
        &[("track_file", name)],
        &format!(
            "[vrrp_track_file.{name}]\nfile = \"{}\"\n{extra}\n",
            path.display()
        ),
    )
}

fn file_value(o: &Observation) -> Option<(i64, FileReading)> {
    match o {
        Observation::File { value, reading, .. } => Some((*value, reading.clone())),
        _ => None,
    }
}

/// Writes as operators do: `echo N > file` (truncate, write, close).
fn write(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("writing {}: {e}", path.display());
    }
}

#[tokio::test]
async fn a_file_changed_removed_and_recreated_is_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("prio");
    let (tracker, mut rx) = Tracker::start(&file_config("f", &f, ""));
    let o = next(&mut rx, "initial", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((0, FileReading::Missing)));
    write(&f, "15\n");
    let o = next(&mut rx, "created", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((15, FileReading::Read)));
    write(&f, "-20\n");
    let o = next(&mut rx, "changed", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((-20, FileReading::Read)));
    write(&f, "-20\n");
    write(&f, "0x10 hex\n");
    let o = next(&mut rx, "same value is not reported", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((16, FileReading::Read)));
    std::fs::remove_file(&f).expect("remove");
    let o = next(&mut rx, "removed", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((0, FileReading::Missing)));
    // Written elsewhere and moved in, as careful writers do.
    let tmp = dir.path().join(".prio.tmp");
    write(&tmp, "7");
    std::fs::rename(&tmp, &f).expect("rename");
    let o = next(&mut rx, "moved in", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((7, FileReading::Read)));
    write(&f, "not a number");
    let o = next(&mut rx, "text", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((0, FileReading::Read)));
    write(&f, "99999999999");
    write(&f, "3");
    let o = next(&mut rx, "out of range ignored", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((3, FileReading::Read)));
    let st: TrackStatus = tracker.status();
    assert_eq!(st.files.len(), 1);
    assert!(
        st.files[0].watched && st.files[0].value == Some(3),
        "{st:?}"
    );
    tracker.stop().await;
}

#[tokio::test]
async fn init_file_creates_the_file_at_start_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("v");
    let (mut tracker, mut rx) = Tracker::start(&file_config("f", &f, "init_file = 5"));
    let o = next(&mut rx, "initial", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((5, FileReading::Read)));
    assert_eq!(std::fs::read_to_string(&f).ok().as_deref(), Some("5\n"));
    std::fs::remove_file(&f).expect("remove");
    next(&mut rx, "removed", |o| o.name() == "f").await;
    // A reload that changes the file's table does not write it again.
    tracker.reload(&file_config("f", &f, "init_file = \"6 overwrite\""));
    let o = next(&mut rx, "after reload", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((0, FileReading::Missing)));
    assert!(!f.exists());
    tracker.stop().await;
    write(&f, "1");
    let (tracker, mut rx) = Tracker::start(&file_config("f", &f, "init_file = \"6 overwrite\""));
    let o = next(&mut rx, "overwritten at start", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((6, FileReading::Read)));
    tracker.stop().await;
}

#[tokio::test]
async fn files_sharing_a_directory_keep_their_watch_across_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let both = config(
        &[("track_file", "a"), ("track_file", "b")],
        &format!(
            "[vrrp_track_file.a]\nfile = \"{}\"\n[vrrp_track_file.b]\nfile = \"{}\"\n",
            a.display(),
            b.display()
        ),
    );
    let (mut tracker, mut rx) = Tracker::start(&both);
    next(&mut rx, "a", |o| o.name() == "a").await;
    next(&mut rx, "b", |o| o.name() == "b").await;
    write(&b, "2");
    let o = next(&mut rx, "b written", |o| o.name() == "b").await;
    assert_eq!(file_value(&o), Some((2, FileReading::Read)));
    // b is no longer tracked: the directory's watch stays for a.
    tracker.reload(&file_config("a", &a, ""));
    let quiet = drain(&mut rx, Duration::from_millis(200)).await;
    assert!(
        quiet.is_empty(),
        "an unchanged file is not reported again: {quiet:?}"
    );
    write(&b, "3");
    write(&a, "1");
    let o = next(&mut rx, "a still followed", |_| true).await;
    assert_eq!(
        (o.name(), file_value(&o)),
        ("a", Some((1, FileReading::Read)))
    );
    assert_eq!(tracker.status().files.len(), 1);
    tracker.stop().await;
}

#[tokio::test]
async fn a_directory_that_appears_later_is_watched_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("later");
    let f = sub.join("v");
    let (tracker, mut rx) = Tracker::start(&file_config("f", &f, ""));
    let o = next(&mut rx, "initial", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((0, FileReading::Missing)));
    assert!(!tracker.status().files[0].watched);
    std::fs::create_dir(&sub).expect("mkdir");
    write(&f, "4");
    // Seen at the next retry of the watch (every 5 s).
    let o = next(&mut rx, "watched after the retry", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((4, FileReading::Read)));
    assert!(tracker.status().files[0].watched);
    write(&f, "5");
    let o = next(&mut rx, "then followed", |o| o.name() == "f").await;
    assert_eq!(file_value(&o), Some((5, FileReading::Read)));
    tracker.stop().await;
}

/// `sleep` started under a unique name (a symbolic link: the process name is the link's).
struct Sleeper(Child);

impl Sleeper {
    fn start(link: &Path) -> Sleeper {
        match Command::new(link).arg("1000").spawn() {
            Ok(c) => Sleeper(c),
            Err(e) => panic!("starting {}: {e}", link.display()),
        }
    }

    fn stop(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A link to `sleep` with a process name unique to this test process and `tag`.
fn sleeper_link(dir: &Path, tag: &str) -> (PathBuf, String) {
    let name = format!("tk{}{tag}", std::process::id() % 100_000);
    assert!(name.len() <= 15);
    let link = dir.join(&name);
    let sleep = std::fs::canonicalize("/bin/sleep").expect("sleep");
    std::os::unix::fs::symlink(sleep, &link).expect("symlink");
    (link, name)
}

fn process_config(name: &str, process: &str, extra: &str) -> Config {
    config(
        &[("track_process", name)],
        &format!("[vrrp_track_process.{name}]\nprocess = '{process}'\n{extra}\n"),
    )
}

fn running(o: &Observation) -> Option<u32> {
    match o {
        Observation::Process { running, .. } => Some(*running),
        _ => None,
    }
}

async fn processes_started_and_stopped_are_counted(watch: ProcessWatch, tag: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (link, name) = sleeper_link(dir.path(), tag);
    let options = TrackerOptions {
        process_watch: watch,
        ..TrackerOptions::default()
    };
    let (tracker, mut rx) = Tracker::start_with(&process_config("p", &name, ""), options);
    let o = next(&mut rx, "initial", |o| o.name() == "p").await;
    assert_eq!(running(&o), Some(0));
    assert!(
        matches!(&o, Observation::Process { quorum, .. } if !quorum.is_met(0) && quorum.is_met(1)),
        "{o:?}"
    );
    let one = Sleeper::start(&link);
    next(&mut rx, "one", |o| running(o) == Some(1)).await;
    let two = Sleeper::start(&link);
    next(&mut rx, "two", |o| running(o) == Some(2)).await;
    one.stop();
    next(&mut rx, "one left", |o| running(o) == Some(1)).await;
    two.stop();
    next(&mut rx, "none left", |o| running(o) == Some(0)).await;
    let st = tracker.status();
    assert_eq!(st.processes.len(), 1);
    eprintln!("watched by {}", st.processes[0].watched_by);
    tracker.stop().await;
}

#[tokio::test]
async fn processes_are_counted_by_the_best_available_means() {
    processes_started_and_stopped_are_counted(ProcessWatch::Auto, "a").await;
}

#[tokio::test]
async fn processes_are_counted_by_scanning_proc() {
    processes_started_and_stopped_are_counted(ProcessWatch::Scan(Duration::from_millis(50)), "s")
        .await;
}

#[tokio::test]
async fn full_command_and_parameters_select_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (link, _) = sleeper_link(dir.path(), "f");
    let path = link.display().to_string();
    let cfg = config(
        &[("track_process", "exact"), ("track_process", "initial")],
        &format!(
            "[vrrp_track_process.exact]\nprocess = '{path} 1000'\n\
             [vrrp_track_process.initial]\nprocess = '{path} 10'\nparam_match = \"initial\"\n"
        ),
    );
    let options = TrackerOptions {
        process_watch: ProcessWatch::Scan(Duration::from_millis(50)),
        ..TrackerOptions::default()
    };
    let (tracker, mut rx) = Tracker::start_with(&cfg, options);
    let _a = Sleeper::start(&link); // `PATH 1000`: both rules
    let b = match Command::new(&link).arg("100").spawn() {
        Ok(c) => Sleeper(c),
        Err(e) => panic!("{e}"),
    }; // `PATH 100`: only `initial`
    next(&mut rx, "initial counts both", |o| {
        o.name() == "initial" && running(o) == Some(2)
    })
    .await;
    wait_for("exact counts one", || {
        tracker
            .status()
            .processes
            .iter()
            .any(|p| p.name == "exact" && p.running == 1)
    })
    .await;
    b.stop();
    next(&mut rx, "initial counts one", |o| {
        o.name() == "initial" && running(o) == Some(1)
    })
    .await;
    tracker.stop().await;
}

#[tokio::test]
async fn terminate_delay_hides_a_restart_within_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (link, name) = sleeper_link(dir.path(), "d");
    let options = TrackerOptions {
        process_watch: ProcessWatch::Scan(Duration::from_millis(50)),
        ..TrackerOptions::default()
    };
    let first = Sleeper::start(&link);
    let (tracker, mut rx) =
        Tracker::start_with(&process_config("p", &name, "terminate_delay = 3"), options);
    let o = next(&mut rx, "initial", |o| o.name() == "p").await;
    assert_eq!(running(&o), Some(1));
    let held = |t: &Tracker, want: u32| {
        t.status()
            .processes
            .first()
            .is_some_and(|p| p.running == want && p.reported == Some(1))
    };
    first.stop();
    wait_for("the exit is seen and held", || {
        held(&tracker, 0) && tracker.status().processes[0].delayed
    })
    .await;
    let second = Sleeper::start(&link);
    wait_for("the restart is seen", || held(&tracker, 1)).await;
    assert!(!tracker.status().processes[0].delayed, "the wait ended");
    let seen = drain(&mut rx, Duration::from_millis(200)).await;
    assert!(
        seen.is_empty(),
        "a restart within terminate_delay shows nothing: {seen:?}"
    );
    let stopped = Instant::now();
    second.stop();
    let o = next(&mut rx, "down after the delay", |o| o.name() == "p").await;
    assert_eq!(running(&o), Some(0));
    assert!(
        stopped.elapsed() >= Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
    tracker.stop().await;
}

#[tokio::test]
async fn only_tracked_objects_run_and_each_kind_reports_under_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = dir.path().join("ran");
    let cfg = config(
        &[("track_script", "used")],
        &(script("used", "/bin/true", "100ms", "1s")
            + &script(
                "unused",
                &format!("/bin/sh -c \"touch {}\"", ran.display()),
                "100ms",
                "1s",
            )),
    );
    let options = TrackerOptions {
        exec: Arc::new(DirectExec::default()),
        ..TrackerOptions::default()
    };
    let (tracker, mut rx) = Tracker::start_with(&cfg, options);
    let mut names = HashSet::new();
    for _ in 0..3 {
        names.insert(next(&mut rx, "used", |_| true).await.name().to_string());
    }
    assert_eq!(names, HashSet::from(["used".to_string()]));
    assert!(!ran.exists(), "a script no instance tracks is not run");
    tracker.stop().await;
}

/// The hardened runtime's script runner, without a launcher process: every configured script
/// user is this process's identity.
fn own_runner() -> keeper::launcher::ScriptRunner {
    let me = keeper::privilege::current_account();
    let mut users = std::collections::BTreeMap::new();
    users.insert(String::new(), me.clone());
    let plan = keeper::privilege::Plan {
        started_as_root: false,
        daemon: me,
        script_users: users,
        default_script_user: String::new(),
        launcher: false,
    };
    match keeper::launcher::ScriptRunner::start(&plan, Path::new(env!("CARGO_BIN_EXE_keeperd"))) {
        Ok(r) => r,
        Err(e) => panic!("script runner: {e}"),
    }
}

#[tokio::test]
async fn scripts_run_through_the_launchers_script_runner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = dir.path().join("child");
    let line = format!(
        "/bin/sh -c \"sleep 1000 & echo $! > {}; wait\"",
        child.display()
    );
    let cfg = config(
        &[
            ("track_script", "ok"),
            ("track_script", "hang"),
            ("track_script", "stranger"),
        ],
        &(script("ok", "/bin/true", "100ms", "1s")
            + &script("hang", &line, "30s", "300ms")
            + &script("stranger", "/bin/true", "100ms", "1s")
            + "user = \"someone-else\"\n"),
    );
    let options = TrackerOptions {
        exec: Arc::new(own_runner()),
        ..TrackerOptions::default()
    };
    let (tracker, mut rx) = Tracker::start_with(&cfg, options);
    let o = next(&mut rx, "ok", |o| o.name() == "ok").await;
    assert_eq!(script_outcome(&o), Some(&ScriptOutcome::Exited(0)));
    let o = next(&mut rx, "stranger", |o| o.name() == "stranger").await;
    assert!(
        matches!(script_outcome(&o), Some(ScriptOutcome::NotStarted(why)) if why.contains("someone-else")),
        "a user the runner was not started for: {o:?}"
    );
    let o = next(&mut rx, "hang", |o| o.name() == "hang").await;
    assert_eq!(script_outcome(&o), Some(&ScriptOutcome::TimedOut));
    let pid = read_pid(&child).unwrap_or_default();
    assert!(pid > 0);
    wait_for("the hung script's child is killed", || dead(pid)).await;
    tracker.stop().await;
}
