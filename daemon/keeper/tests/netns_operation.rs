//! VRRP in operation, in network namespaces: sync groups, tracked interfaces, scripts, files
//! and processes moving real VIPs between real keeperd. Root only (`--features netns-tests`).

#![cfg(feature = "netns-tests")]

mod lab;

use std::time::Duration;

use lab::{Lab, wait_until};

const SECS: Duration = Duration::from_secs(1);

fn instance(name: &str, iface: &str, vrid: u8, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "[vrrp_instance.{name}]\ninterface = \"{iface}\"\nvirtual_router_id = {vrid}\npriority = {prio}\nadvert_int = 1\nvirtual_ipaddress = [\"{vip}/24 dev {iface}\"]\n{extra}\n"
    )
}

fn state(lab: &Lab, id: usize, inst: &str) -> Option<String> {
    lab.state(id, inst)
}

#[test]
fn a_sync_group_on_two_interfaces_moves_together_on_a_fault() {
    let mut lab = Lab::new(&["a", "b"]);
    lab.add_second_lan();
    let (vip1, vip2) = (lab.vip4(), format!("172.31.{}.100", lab.net));
    let conf = |prio| {
        format!(
            "[vrrp_sync_group.G]\ngroup = [\"VI_1\", \"VI_2\"]\n{}{}",
            instance("VI_1", "eth0", 51, prio, &vip1, ""),
            instance("VI_2", "eth1", 52, prio, &vip2, "")
        )
    };
    let a = lab.start_keeperd("a", &conf(100));
    let b = lab.start_keeperd("b", &conf(50));
    wait_until("a master of both", 10 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("master")
            && state(&lab, a, "VI_2").as_deref() == Some("master")
    });
    assert!(lab.has_addr_anywhere("a", &vip1) && lab.has_addr_anywhere("a", &vip2));
    // eth1 fails on a: VI_2 faults, and the group pulls VI_1 (whose link is fine) with it.
    lab.set_link("a", "eth1", false);
    wait_until("b master of both", 10 * SECS, || {
        state(&lab, b, "VI_1").as_deref() == Some("master")
            && state(&lab, b, "VI_2").as_deref() == Some("master")
    });
    assert!(
        !lab.has_addr_anywhere("a", &vip1),
        "VI_1 left with its group"
    );
    assert_eq!(state(&lab, a, "VI_1").as_deref(), Some("fault"));
    assert!(lab.has_addr_anywhere("b", &vip1) && lab.has_addr_anywhere("b", &vip2));
    // eth1 returns: both come back to a together.
    lab.set_link("a", "eth1", true);
    wait_until("a master of both again", 15 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("master")
            && state(&lab, a, "VI_2").as_deref() == Some("master")
    });
    wait_until("b released both", 5 * SECS, || {
        !lab.has_addr_anywhere("b", &vip1) && !lab.has_addr_anywhere("b", &vip2)
    });
}

#[test]
fn a_flapping_tracked_interface_moves_the_vip_by_weight() {
    let mut lab = Lab::new(&["a", "b"]);
    lab.add_second_lan();
    let vip = lab.vip4();
    let a = lab.start_keeperd(
        "a",
        &instance(
            "VI_1",
            "eth0",
            51,
            100,
            &vip,
            "track_interface = [\"eth1 weight -60\"]",
        ),
    );
    let b = lab.start_keeperd("b", &instance("VI_1", "eth0", 51, 50, &vip, ""));
    wait_until("a master", 10 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("master")
    });
    for round in 0..3 {
        lab.set_link("a", "eth1", false);
        wait_until(
            &format!("round {round}: b preempts a at 40"),
            10 * SECS,
            || state(&lab, b, "VI_1").as_deref() == Some("master"),
        );
        assert_eq!(lab.status(a).map(|s| s.instances[0].priority), Some(40));
        lab.set_link("a", "eth1", true);
        wait_until(&format!("round {round}: a back at 100"), 10 * SECS, || {
            state(&lab, a, "VI_1").as_deref() == Some("master")
        });
        assert_eq!(lab.status(a).map(|s| s.instances[0].priority), Some(100));
    }
    wait_until("one holder", 5 * SECS, || lab.holders(&vip) == ["a"]);
}

#[test]
fn a_hanging_track_script_is_killed_and_counts_as_failure() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let d = lab.dir.path().to_path_buf();
    let flag = d.join("healthy");
    let script = d.join("check.sh");
    let pids = d.join("pids");
    // Healthy while the flag exists; otherwise hangs (and records its pid to prove the kill).
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ -e {f} ] && exit 0\necho $$ >> {p}\nexec sleep 3600\n",
            f = flag.display(),
            p = pids.display()
        ),
    )
    .expect("script");
    lab::ok(
        std::process::Command::new("chmod")
            .args(["755"])
            .arg(&script),
    );
    std::fs::write(&flag, "").expect("flag");
    let chk = format!(
        "[vrrp_script.chk]\nscript = \"{}\"\ninterval = 0.5\ntimeout = 1\nfall = 1\nrise = 1\n",
        script.display()
    );
    let a = lab.start_keeperd(
        "a",
        &format!(
            "{chk}{}",
            instance("VI_1", "eth0", 51, 100, &vip, "track_script = [\"chk\"]")
        ),
    );
    let b = lab.start_keeperd("b", &instance("VI_1", "eth0", 51, 50, &vip, ""));
    wait_until("a master while the script passes", 10 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("master")
    });
    // The script starts hanging: killed at its timeout, counted as a failure (weight 0: FAULT).
    std::fs::remove_file(&flag).expect("rm flag");
    wait_until("a faults on the hung script", 10 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("fault")
    });
    wait_until("b takes over", 10 * SECS, || {
        state(&lab, b, "VI_1").as_deref() == Some("master")
    });
    let first: i32 = std::fs::read_to_string(&pids)
        .expect("pids")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid");
    let gone = |pid: i32| {
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0;
        !exists
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    };
    wait_until("the hung script was killed", 5 * SECS, || gone(first));
    // Healthy again: a recovers and preempts.
    std::fs::write(&flag, "").expect("flag");
    wait_until("a master again", 15 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("master")
    });
}

#[test]
fn track_file_and_track_process_weights_move_the_vip() {
    let mut lab = Lab::new(&["a", "b"]);
    let vip = lab.vip4();
    let d = lab.dir.path().to_path_buf();
    let file = d.join("weight");
    std::fs::write(&file, "0\n").expect("file");
    let comm = format!("kt{}sleep", std::process::id() % 100_000);
    let tracked = format!(
        "[vrrp_track_file.load]\nfile = \"{}\"\nweight = 1\n[vrrp_track_process.daemon]\nprocess = \"{comm}\"\nweight = -60\n",
        file.display()
    );
    let a = lab.start_keeperd(
        "a",
        &format!(
            "{tracked}{}",
            instance(
                "VI_1",
                "eth0",
                51,
                100,
                &vip,
                "track_file = [\"load\"]\ntrack_process = [\"daemon\"]"
            )
        ),
    );
    let b = lab.start_keeperd("b", &instance("VI_1", "eth0", 51, 50, &vip, ""));
    // The tracked process does not run yet: a is at 40 and b wins.
    wait_until("b master while the process is missing", 10 * SECS, || {
        state(&lab, b, "VI_1").as_deref() == Some("master")
    });
    assert_eq!(lab.status(a).map(|s| s.instances[0].priority), Some(40));
    // Start a process with that name (a copy of sleep named so; comm is the file name).
    let bin = d.join(&comm);
    std::fs::copy("/bin/sleep", &bin).expect("copy sleep");
    let mut proc_ = std::process::Command::new(&bin)
        .arg("600")
        .spawn()
        .expect("spawn");
    wait_until("a preempts at 100", 10 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("master")
    });
    // The file says -70: 100 - 70 = 30 < 50, b takes over; back to 0 and a returns.
    std::fs::write(&file, "-70\n").expect("file");
    wait_until("b master at file -70", 10 * SECS, || {
        state(&lab, b, "VI_1").as_deref() == Some("master")
    });
    assert_eq!(lab.status(a).map(|s| s.instances[0].priority), Some(30));
    std::fs::write(&file, "0\n").expect("file");
    wait_until("a master at file 0", 10 * SECS, || {
        state(&lab, a, "VI_1").as_deref() == Some("master")
    });
    let _ = proc_.kill();
    let _ = proc_.wait();
    wait_until("b master when the process dies", 10 * SECS, || {
        state(&lab, b, "VI_1").as_deref() == Some("master")
    });
}
