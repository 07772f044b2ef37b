//! A host without IPVS (this machine's kernel has none): keeperd with virtual servers says once
//! and clearly how to fix it, and VRRP runs anyway (keepalived exits entirely here).
//! Needs root and network namespaces: `cargo test --features netns-tests`.

#![cfg(feature = "netns-tests")]

mod lab;

use std::time::Duration;

use keeper::control::{self, Request, Response};
use lab::{Lab, wait_until};

fn config(lab: &Lab) -> String {
    format!(
        r#"
[global]
vrrp_version = 3

[vrrp_instance.VI_1]
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_int = "100ms"
virtual_ipaddress = ["{vip}/24"]
lvs_sync_daemon_interface = "eth0"

[virtual_server.web]
ip = "{vip}"
port = 80
lb_algo = "rr"
lb_kind = "DR"

[virtual_server.web.real_server.rs1]
ip = "{rs}"
"#,
        vip = lab.vip4(),
        rs = lab.v4(1),
    )
}

#[test]
fn without_ipvs_vrrp_runs_and_the_error_says_modprobe_ip_vs() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("skipped: this kernel has IPVS");
        return;
    }
    let mut lab = Lab::new(&["director"]);
    let id = lab.start_keeperd("director", &config(&lab));
    lab.wait_ready(id);
    let vip = lab.vip4();
    wait_until("keeperd takes the VIP", Duration::from_secs(10), || {
        lab.holders(&vip) == ["director"]
    });
    let log = lab.log(id);
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("IPVS not available"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear error:\n{log}");
    assert!(
        errors[0].contains("modprobe ip_vs") && errors[0].contains("VRRP keeps running"),
        "{}",
        errors[0]
    );
    eprintln!("{}", errors[0]);
    assert_eq!(lab.state(id, "VI_1").as_deref(), Some("master"));

    // keeperctl ipvs answers with the same advice instead of hanging or crashing.
    let socket = lab.daemon(id).socket.clone().expect("socket");
    match control::request(&socket, &Request::Ipvs) {
        Ok(Response::Error { message }) => assert!(message.contains("modprobe ip_vs"), "{message}"),
        other => panic!("unexpected answer {other:?}"),
    }

    // A reload tries again (the module may have been loaded since), once; VRRP is undisturbed.
    let transitions = lab.status(id).expect("status").instances[0].transitions;
    lab.signal(id, libc::SIGHUP);
    wait_until("the reload retried IPVS", Duration::from_secs(10), || {
        lab.log(id)
            .lines()
            .filter(|l| l.contains("IPVS not available"))
            .count()
            == 2
    });
    let s = lab.status(id).expect("status");
    assert_eq!(s.instances[0].state, "master");
    assert_eq!(s.instances[0].transitions, transitions);

    lab.signal(id, libc::SIGTERM);
    assert!(
        lab.wait_exit(id, Duration::from_secs(10)).success(),
        "{}",
        lab.log(id)
    );
}
