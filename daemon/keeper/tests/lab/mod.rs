//! A namespace lab for tests that need root: one namespace holding a bridge, one namespace per
//! node joined to it by a veth pair (`eth0` inside), fixed MACs, addresses 10.<net>.0.<11+i>/24
//! and fd00:<net>::<11+i>/64, no default route, nothing linked to the host's interfaces. Every
//! process started through the lab runs in its own process group and is killed, and every
//! namespace deleted, when the lab drops (also when a test fails).

#![allow(dead_code)]

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Lab {
    pub prefix: String,
    pub net: u8,
    pub nodes: Vec<String>,
    pub dir: tempfile::TempDir,
    daemons: Vec<Daemon>,
}

/// A process running in a node, killed (whole process group) on drop.
pub struct Daemon {
    pub node: String,
    pub child: Child,
    pub log: PathBuf,
    pub socket: Option<PathBuf>,
    /// keepalived forks children that may leave the process group.
    pub keepalived: bool,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill_group(&mut self, sig: i32) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe {
            libc::kill(-(self.child.id() as i32), sig);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_group(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    ok(Command::new("ip").args(args))
}

static USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Creates a system user (and its group) if missing, optionally in `group` (created too).
/// Tests that need users say so: this changes the machine's user database.
pub fn ensure_user(name: &str, group: Option<&str>) {
    let _held = USERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(g) = group
        && !run(Command::new("getent").args(["group", g]))
            .status
            .success()
    {
        eprintln!("creating test group {g}");
        ok(Command::new("groupadd").args(["--system", g]));
    }
    if !run(Command::new("id").arg(name)).status.success() {
        eprintln!("creating test user {name}");
        let mut cmd = Command::new("useradd");
        cmd.args([
            "--system",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
        ]);
        if let Some(g) = group {
            cmd.args(["--groups", g]);
        }
        ok(cmd.arg(name));
    } else if let Some(g) = group {
        ok(Command::new("usermod").args(["--append", "--groups", g, name]));
    }
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes; returns the time it took.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Lab {
    /// Creates the lab with the given node names.
    pub fn new(nodes: &[&str]) -> Lab {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("kt{}x{n}", std::process::id());
        let net = 100 + (n % 100) as u8;
        // keeperd started as root switches to its user (default `keeper`), which must exist
        // and read the lab's files (configurations are re-read at reload); scripts run as that
        // user too and write their traces here: the directory is writable like /tmp (sticky).
        ensure_user("keeper", None);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .expect("chmod lab dir");
        let lab = Lab {
            prefix: prefix.clone(),
            net,
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            dir,
            daemons: Vec::new(),
        };
        let lan = lab.lan();
        ip(&["netns", "add", &lan]);
        ip(&[
            "-n",
            &lan,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        ip(&["-n", &lan, "link", "set", "br0", "up"]);
        for (i, node) in nodes.iter().enumerate() {
            let ns = lab.ns(node);
            ip(&["netns", "add", &ns]);
            let port = format!("p-{node}");
            ip(&[
                "-n", &lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &lan, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "address", &lab.mac(i)]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", lab.v4(i)),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/64", lab.v6(i)),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        // Link-local addresses come up with DAD; wait until usable (IPv6 adverts need them).
        for node in nodes {
            let ns = lab.ns(node);
            wait_until(
                "IPv6 link-local address ready",
                Duration::from_secs(10),
                || {
                    let out = run(Command::new("ip").args([
                        "-n", &ns, "-6", "addr", "show", "dev", "eth0", "scope", "link",
                    ]));
                    let text = String::from_utf8_lossy(&out.stdout);
                    text.contains("inet6") && !text.contains("tentative")
                },
            );
        }
        lab
    }

    pub fn lan(&self) -> String {
        format!("{}-lan", self.prefix)
    }

    pub fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    fn index(&self, node: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n == node)
            .unwrap_or_else(|| panic!("no node {node}"))
    }

    pub fn mac(&self, i: usize) -> String {
        format!("02:00:00:00:{:02x}:{:02x}", self.net, 0x11 + i)
    }

    pub fn mac_of(&self, node: &str) -> String {
        self.mac(self.index(node))
    }

    pub fn v4(&self, i: usize) -> String {
        format!("10.{}.0.{}", self.net, 11 + i)
    }

    pub fn v4_of(&self, node: &str) -> String {
        self.v4(self.index(node))
    }

    pub fn v6(&self, i: usize) -> String {
        format!("fd00:{}::{}", self.net, 11 + i)
    }

    /// The VIP of this lab (`.100`), IPv4 or IPv6.
    pub fn vip4(&self) -> String {
        format!("10.{}.0.100", self.net)
    }

    pub fn vip6(&self) -> String {
        format!("fd00:{}::100", self.net)
    }

    /// Runs a command inside `node`.
    pub fn exec(&self, node: &str, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .args(args))
    }

    /// Whether `addr` is configured on `node`'s eth0.
    pub fn has_addr(&self, node: &str, addr: &str) -> bool {
        let out =
            run(Command::new("ip").args(["-n", &self.ns(node), "addr", "show", "dev", "eth0"]));
        let ip: IpAddr = addr.parse().expect("address");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(&ip.to_string()))
    }

    /// Which nodes hold `addr`.
    pub fn holders(&self, addr: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| self.has_addr(n, addr))
            .cloned()
            .collect()
    }

    /// Starts keeperd in `node` with `config`; its control socket is set from the environment
    /// (`KEEPER_GLOBAL__CONTROL_SOCKET`), so `config` may have its own `[global]`.
    pub fn start_keeperd(&mut self, node: &str, config: &str) -> usize {
        let path = self.dir.path().join(format!("{node}.toml"));
        let socket = self.dir.path().join(format!("{node}.sock"));
        std::fs::write(&path, config).expect("write config");
        let log = self.dir.path().join(format!("{node}-keeperd.log"));
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns(node),
            env!("CARGO_BIN_EXE_keeperd"),
            "--config",
        ])
        .arg(&path)
        .env("KEEPER_GLOBAL__CONTROL_SOCKET", &socket)
        .env("RUST_LOG", "debug");
        self.spawn(node, cmd, log, Some(socket))
    }

    /// Starts any program in `node` (its own process group, killed with the lab); stdout and
    /// stderr go to `<name>.log` in the lab directory.
    pub fn start_process(&mut self, node: &str, name: &str, args: &[&str]) -> usize {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(node)]).args(args);
        self.spawn(node, cmd, log, None)
    }

    /// Starts keepalived (VRRP only) in `node` with a keepalived.conf text.
    pub fn start_keepalived(&mut self, node: &str, config: &str) -> usize {
        let d = self.dir.path();
        // Files per start: a restarted keepalived must not meet its predecessor's pid files.
        let tag = format!("{node}-{}", self.daemons.len());
        let conf = d.join(format!("{tag}-keepalived.conf"));
        std::fs::write(&conf, config).expect("write config");
        let log = d.join(format!("{tag}-keepalived.log"));
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns(node),
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-P",
            "-f",
        ])
        .arg(&conf);
        for (flag, name) in [
            ("-p", "pid"),
            ("-r", "vrrp.pid"),
            ("-c", "checkers.pid"),
            ("-b", "bfd.pid"),
        ] {
            cmd.arg(flag)
                .arg(d.join(format!("{tag}-keepalived-{name}")));
        }
        self.spawn(node, cmd, log, None)
    }

    /// Starts any program in `node` as a daemon (own process group, output in
    /// `<node>-<name>.log` in the lab directory), in directory `cwd` if given.
    pub fn start_daemon(
        &mut self,
        node: &str,
        name: &str,
        cwd: Option<&std::path::Path>,
        args: &[&str],
    ) -> usize {
        let log = self.dir.path().join(format!("{node}-{name}.log"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(node)]).args(args);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        self.spawn(node, cmd, log, None)
    }

    /// Whether something in `node` listens on TCP `port`.
    pub fn listens(&self, node: &str, port: u16) -> bool {
        let out = self.exec(node, &["ss", "-Hltn", &format!("sport = :{port}")]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }

    /// Starts `cmd` (already wrapped in `ip netns exec` as needed) as a lab daemon.
    pub fn spawn(
        &mut self,
        node: &str,
        mut cmd: Command,
        log: PathBuf,
        socket: Option<PathBuf>,
    ) -> usize {
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        cmd.stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null())
            .process_group(0);
        let keepalived = format!("{cmd:?}").contains("keepalived");
        let child = cmd.spawn().expect("spawn");
        self.daemons.push(Daemon {
            node: node.to_string(),
            child,
            log,
            socket,
            keepalived,
        });
        self.daemons.len() - 1
    }

    pub fn daemon(&self, id: usize) -> &Daemon {
        &self.daemons[id]
    }

    /// Sends `sig` to the daemon's whole process group (SIGKILL = a crash). keepalived's VRRP
    /// child is not always in that group: on SIGKILL, every keepalived process in the node's
    /// namespace dies too, so a crashed keepalived cannot keep advertising.
    pub fn signal(&mut self, id: usize, sig: i32) {
        self.daemons[id].kill_group(sig);
        if sig == libc::SIGKILL && self.daemons[id].keepalived {
            let ns = self.ns(&self.daemons[id].node);
            let out = run(Command::new("ip").args(["netns", "pids", &ns]));
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains("keepalived")
                    && let Ok(pid) = pid.parse::<i32>()
                {
                    // SAFETY: kill(2) on a keepalived process inside this lab's namespace.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
    }

    /// Waits for the daemon to exit after a signal; returns its exit status.
    pub fn wait_exit(&mut self, id: usize, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.daemons[id].child.try_wait().expect("wait") {
                return st;
            }
            assert!(
                start.elapsed() < timeout,
                "daemon did not exit within {timeout:?}:\n{}",
                self.log(id)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn log(&self, id: usize) -> String {
        std::fs::read_to_string(&self.daemons[id].log).unwrap_or_default()
    }

    /// keeperd's status, through its control socket.
    pub fn status(&self, id: usize) -> Option<keeper::control::Status> {
        let socket = self.daemons[id].socket.as_ref()?;
        match keeper::control::request(socket, &keeper::control::Request::Status) {
            Ok(keeper::control::Response::Status(s)) => Some(s),
            _ => None,
        }
    }

    /// Waits until keeperd answers on its control socket.
    pub fn wait_ready(&self, id: usize) {
        wait_until(
            "keeperd control socket answers",
            Duration::from_secs(10),
            || self.status(id).is_some(),
        );
    }

    /// The state of `instance` in keeperd `id` ("backup", "master", ...).
    pub fn state(&self, id: usize, instance: &str) -> Option<String> {
        self.status(id)?
            .instances
            .into_iter()
            .find(|i| i.name == instance)
            .map(|i| i.state)
    }

    pub fn link_down(&self, node: &str) {
        ip(&["-n", &self.ns(node), "link", "set", "eth0", "down"]);
    }

    pub fn link_up(&self, node: &str) {
        ip(&["-n", &self.ns(node), "link", "set", "eth0", "up"]);
    }

    /// Cuts `node` off the LAN at the bridge (its own link stays up).
    pub fn partition(&self, node: &str) {
        ip(&[
            "-n",
            &self.lan(),
            "link",
            "set",
            &format!("p-{node}"),
            "nomaster",
        ]);
    }

    pub fn heal(&self, node: &str) {
        ip(&[
            "-n",
            &self.lan(),
            "link",
            "set",
            &format!("p-{node}"),
            "master",
            "br0",
        ]);
    }

    /// The MAC `node`'s neighbour table has for `addr`, if any (any state but FAILED).
    pub fn neighbour_mac(&self, node: &str, addr: &str) -> Option<String> {
        let out = run(Command::new("ip").args(["-n", &self.ns(node), "neigh", "show", addr]));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == "lladdr")
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.daemons.clear();
        let mut all: Vec<String> = self.nodes.iter().map(|n| self.ns(n)).collect();
        all.push(self.lan());
        for ns in all {
            // Stray processes (started with `exec` and left running) die with their namespace's pids.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: kill(2) on a process inside a namespace this lab created.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        if std::thread::panicking() {
            // Keep the logs of a failed test for the developer.
            let kept = self.dir.path().to_path_buf();
            eprintln!("lab {}: logs in {}", self.prefix, kept.display());
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir")).keep();
        }
    }
}

impl Lab {
    /// Sends one hand-made IPv4 packet of protocol 112 from inside `node` (raw socket with our
    /// own IP header, so the TTL can be wrong on purpose). The kernel fills the IP checksum.
    pub fn inject_v4(&self, node: &str, src: &str, dst: &str, ttl: u8, payload: &[u8]) {
        let ns_path = format!("/run/netns/{}", self.ns(node));
        let (src, dst): (std::net::Ipv4Addr, std::net::Ipv4Addr) =
            (src.parse().expect("src"), dst.parse().expect("dst"));
        let mut pkt = vec![0u8; 20];
        pkt[0] = 0x45;
        pkt[1] = 0xc0;
        let total = (20 + payload.len()) as u16;
        pkt[2..4].copy_from_slice(&total.to_be_bytes());
        pkt[8] = ttl;
        pkt[9] = 112;
        pkt[12..16].copy_from_slice(&src.octets());
        pkt[16..20].copy_from_slice(&dst.octets());
        pkt.extend_from_slice(payload);
        // setns affects only the calling thread: do it in a thread of its own.
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&ns_path).expect("netns file");
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(libc::IPPROTO_RAW)),
            )
            .expect("raw socket");
            sock.bind_device(Some(b"eth0")).expect("bind to eth0");
            let to = socket2::SockAddr::from(std::net::SocketAddrV4::new(dst, 0));
            sock.send_to(&pkt, &to).expect("send");
        })
        .join()
        .expect("injector thread");
    }
}

impl Lab {
    /// Prepares FRR in `node` for a VRRPv3 router `vrid` serving `vip` (IPv4): the macvlan with
    /// the virtual MAC 00:00:5e:00:01:VRID carrying the VIP (FRR protodowns it while backup;
    /// keeperd needs none), and zebra. Returns zebra's daemon id.
    pub fn start_frr_zebra(&mut self, node: &str, vrid: u8, vip: &str) -> usize {
        let ns = self.ns(node);
        let mvl = format!("vrrp4-2-{vrid}");
        ip(&[
            "-n", &ns, "link", "add", &mvl, "link", "eth0", "type", "macvlan", "mode", "bridge",
        ]);
        ip(&[
            "-n",
            &ns,
            "link",
            "set",
            &mvl,
            "address",
            &format!("00:00:5e:00:01:{vrid:02x}"),
        ]);
        ip(&["-n", &ns, "addr", "add", &format!("{vip}/24"), "dev", &mvl]);
        ip(&["-n", &ns, "link", "set", &mvl, "up"]);
        // FRR's documentation asks for these on the base interface: without them the base
        // answers ARP for the VIP (on the macvlan) with its own MAC, even while FRR is backup.
        for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            ok(Command::new("ip").args([
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.eth0.{key}={value}"),
            ]));
        }
        let d = self.frr_dir(node);
        std::fs::write(d.join("zebra.conf"), format!("hostname {node}\n")).expect("zebra.conf");
        // FRR drops to user frr: its files must be the frr user's.
        ok(Command::new("chown").args(["-R", "frr:frr"]).arg(&d));
        let p = |f: &str| d.join(f).display().to_string();
        let mut zebra = Command::new("ip");
        zebra
            .args([
                "netns",
                "exec",
                &ns,
                "/usr/lib/frr/zebra",
                "-f",
                &p("zebra.conf"),
                "-i",
                &p("zebra.pid"),
            ])
            .args([
                "-z",
                &p("zserv.api"),
                "--vty_socket",
                &p(""),
                "--log",
                &format!("file:{}", p("zebra.log")),
            ]);
        let z = self.spawn(node, zebra, d.join("zebra.out"), None);
        let zserv = d.join("zserv.api");
        wait_until("zebra's API socket", Duration::from_secs(10), || {
            zserv.exists()
        });
        z
    }

    /// Starts FRR's vrrpd in `node` (after [`Lab::start_frr_zebra`]). Returns its daemon id.
    pub fn start_frr_vrrpd(
        &mut self,
        node: &str,
        vrid: u8,
        prio: u8,
        vip: &str,
        advert_ms: u32,
    ) -> usize {
        let ns = self.ns(node);
        let d = self.frr_dir(node);
        let conf = d.join(format!("vrrpd-{}.conf", self.daemons.len()));
        std::fs::write(
            &conf,
            format!(
                "hostname {node}\ninterface eth0\n vrrp {vrid} version 3\n vrrp {vrid} priority {prio}\n vrrp {vrid} advertisement-interval {advert_ms}\n vrrp {vrid} ip {vip}\n"
            ),
        )
        .expect("vrrpd.conf");
        ok(Command::new("chown").args(["-R", "frr:frr"]).arg(&d));
        let p = |f: &str| d.join(f).display().to_string();
        let mut vrrpd = Command::new("ip");
        vrrpd
            .args(["netns", "exec", &ns, "/usr/lib/frr/vrrpd", "-f"])
            .arg(&conf)
            .args([
                "-i",
                &p("vrrpd.pid"),
                "-z",
                &p("zserv.api"),
                "--vty_socket",
                &p(""),
            ])
            .args(["--log", &format!("file:{}", p("vrrpd.log"))]);
        let log = d.join(format!("vrrpd-{}.out", self.daemons.len()));
        self.spawn(node, vrrpd, log, None)
    }

    fn frr_dir(&self, node: &str) -> PathBuf {
        let d = self.dir.path().join(format!("frr-{node}"));
        std::fs::create_dir_all(&d).expect("frr dir");
        // The frr user must reach its files inside our private temporary directory.
        ok(Command::new("chmod").args(["1777"]).arg(self.dir.path()));
        d
    }

    /// Whether FRR's macvlan for `vrid` is in protodown (FRR's BACKUP) on `node`.
    pub fn frr_is_backup(&self, node: &str, vrid: u8) -> bool {
        let out = run(Command::new("ip").args([
            "-n",
            &self.ns(node),
            "-d",
            "link",
            "show",
            &format!("vrrp4-2-{vrid}"),
        ]));
        String::from_utf8_lossy(&out.stdout).contains("protodown on")
    }
}
