//! Process tracking through the kernel's process events connector, which sees every fork and
//! exec (a `/proc` scan misses short-lived ones). Root (CAP_NET_ADMIN before Linux 6.6) in
//! the initial namespaces: `--features netns-tests` (run by the netns layer, `netns_*`).

#![cfg(feature = "netns-tests")]

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use keeper::config::Config;
use keeper::track::{Observation, Tracker};
use tokio::sync::mpsc::Receiver;

const DEADLINE: Duration = Duration::from_secs(20);

/// A shell under a unique process name that forks children all the time: each child has the
/// shell's name until it execs `sleep`.
struct Forker(Child);

impl Forker {
    fn start(dir: &Path, name: &str) -> Forker {
        let link = dir.join(name);
        let sh = std::fs::canonicalize("/bin/sh").expect("sh");
        std::os::unix::fs::symlink(sh, &link).expect("symlink");
        match Command::new(&link)
            .args(["-c", "while :; do sleep 0.02; done"])
            .spawn()
        {
            Ok(c) => Forker(c),
            Err(e) => panic!("{e}"),
        }
    }
}

impl Drop for Forker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(name: &str, extra: &str) -> Config {
    let text = format!(
        "[vrrp_instance.VI_1]\ninterface = \"lo\"\nvirtual_router_id = 1\ntrack_process = [\"p\"]\n\
         [vrrp_track_process.p]\nprocess = \"{name}\"\nquorum_max = 1\n{extra}\n"
    );
    match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

async fn counts_for(rx: &mut Receiver<Observation>, span: Duration) -> Vec<u32> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(span, async {
        while let Some(o) = rx.recv().await {
            if let Observation::Process { running, .. } = o {
                seen.push(running);
            }
        }
    })
    .await;
    seen
}

async fn first_count(rx: &mut Receiver<Observation>) -> u32 {
    match tokio::time::timeout(DEADLINE, rx.recv()).await {
        Ok(Some(Observation::Process { running, .. })) => running,
        other => panic!("no count: {other:?}"),
    }
}

#[tokio::test]
async fn fork_delay_hides_children_that_exec_something_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("tc{}", std::process::id() % 100_000);
    let _forker = Forker::start(dir.path(), &name);

    // Without fork_delay, each child is counted from its fork until its exec.
    let (tracker, mut rx) = Tracker::start(&config(&name, ""));
    assert_eq!(first_count(&mut rx).await, 1);
    let st = tracker.status();
    assert_eq!(st.processes[0].watched_by, "proc connector", "{st:?}");
    let seen = counts_for(&mut rx, Duration::from_secs(2)).await;
    assert!(seen.contains(&2), "forked children are seen: {seen:?}");
    tracker.stop().await;

    // With it, the quorum_max crossing by a fork waits, and the exec ends the wait.
    let (tracker, mut rx) = Tracker::start(&config(&name, "fork_delay = 3"));
    assert_eq!(first_count(&mut rx).await, 1);
    let seen = counts_for(&mut rx, Duration::from_secs(2)).await;
    assert!(seen.is_empty(), "nothing to report: {seen:?}");
    tracker.stop().await;
}
