//! Semantic checks of a deserialized configuration. Every problem is collected (never only the
//! first), each naming its key; the caller attaches the place (file:line:col or variable).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use super::node::KeyPath;
use super::schema::{
    AuthType, Config, HttpCheck, InitialState, LbKind, MiscCheck, TcpCheck, VrrpInstance,
};
use super::syntax::{self, PeerSpec, TrackSpec, VipSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// A finding about one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub path: KeyPath,
    pub message: String,
}

struct Checker {
    findings: Vec<Finding>,
}

fn p(parts: &[&str]) -> KeyPath {
    parts.iter().map(|s| s.to_string()).collect()
}

fn with(base: &KeyPath, more: &[&str]) -> KeyPath {
    let mut v = base.clone();
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

impl Checker {
    fn error(&mut self, path: KeyPath, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Error,
            path,
            message: message.into(),
        });
    }

    fn warn(&mut self, path: KeyPath, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            path,
            message: message.into(),
        });
    }

    /// `path` is built only for a finding: a large configuration has tens of thousands of
    /// values in range, and building each one's path was most of validating it.
    fn range(&mut self, path: impl FnOnce() -> KeyPath, value: i64, lo: i64, hi: i64) -> bool {
        if (lo..=hi).contains(&value) {
            return true;
        }
        self.error(
            path(),
            format!("must be between {lo} and {hi}, got {value}"),
        );
        false
    }
}

/// The effective VRRP version of an instance.
pub fn instance_version(cfg: &Config, inst: &VrrpInstance) -> i64 {
    inst.version.unwrap_or(cfg.global.vrrp_version)
}

/// Checks everything that can be checked without the running system.
pub fn validate(cfg: &Config) -> Vec<Finding> {
    validate_some(cfg, None)
}

/// [`validate`] after a change to virtual server `name` alone: the findings of everything but
/// the other virtual servers' own keys (which cannot have changed; see `config::reload`).
pub fn validate_changed_virtual_server(cfg: &Config, name: &str) -> Vec<Finding> {
    validate_some(cfg, Some(name))
}

fn validate_some(cfg: &Config, only_virtual_server: Option<&str>) -> Vec<Finding> {
    let mut c = Checker {
        findings: Vec::new(),
    };
    check_global(&mut c, cfg);
    let families = check_instances(&mut c, cfg);
    check_sync_groups(&mut c, cfg, &families);
    check_scripts(&mut c, cfg);
    check_track_files(&mut c, cfg);
    check_track_processes(&mut c, cfg);
    check_virtual_servers(&mut c, cfg, only_virtual_server);
    // Notify script lines and timeout (notify/mod.rs).
    c.findings.extend(crate::notify::check(cfg));
    c.findings
}

fn check_global(c: &mut Checker, cfg: &Config) {
    let g = &cfg.global;
    c.range(|| p(&["global", "vrrp_version"]), g.vrrp_version, 2, 3);
    c.range(
        || p(&["global", "vrrp_garp_master_repeat"]),
        g.vrrp_garp_master_repeat,
        0,
        255,
    );
    c.range(
        || p(&["global", "vrrp_garp_master_refresh_repeat"]),
        g.vrrp_garp_master_refresh_repeat,
        1,
        255,
    );
    if let Some(rt) = g.vrrp_rt_priority {
        c.range(|| p(&["global", "vrrp_rt_priority"]), rt, 1, 99);
    }
    if let Some(s) = &g.smtp_server
        && let Err(e) = parse_host_port(s, 25)
    {
        c.error(p(&["global", "smtp_server"]), e);
    }
    if let Some(m) = &g.metrics_listen
        && m.parse::<std::net::SocketAddr>().is_err()
    {
        c.error(
            p(&["global", "metrics_listen"]),
            format!("{m:?} is not an address:port"),
        );
    }
    if let Some(l) = &g.log_level
        && tracing_subscriber::EnvFilter::try_new(l).is_err()
    {
        c.error(
            p(&["global", "log_level"]),
            format!("{l:?} is not a log level or filter"),
        );
    }
    if g.notification_email.is_empty() != g.notification_email_from.is_none()
        && g.smtp_server.is_some()
    {
        c.warn(
            p(&["global", "notification_email"]),
            "SMTP alerts need both notification_email and notification_email_from",
        );
    }
}

/// `host`, `host:port`, `[v6]:port` or keepalived's `host port`.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let port = |x: &str| x.parse::<u16>().map_err(|_| format!("invalid port {x:?}"));
    match words.as_slice() {
        [host, p] => Ok((host.to_string(), port(p)?)),
        [one] => {
            if let Ok(ip) = one.parse::<IpAddr>() {
                return Ok((ip.to_string(), default_port));
            }
            if let Ok(sa) = one.parse::<std::net::SocketAddr>() {
                return Ok((sa.ip().to_string(), sa.port()));
            }
            match one.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => Ok((h.to_string(), port(p)?)),
                _ => Ok((one.to_string(), default_port)),
            }
        }
        _ => Err(format!("{s:?} is not `host[:port]`")),
    }
}

/// Checks instances; returns each instance's address family (true = IPv6) when known.
fn check_instances(c: &mut Checker, cfg: &Config) -> HashMap<String, bool> {
    let mut families = HashMap::new();
    let mut seen: BTreeMap<(String, i64, bool), String> = BTreeMap::new();
    for (name, inst) in &cfg.vrrp_instance {
        let base = p(&["vrrp_instance", name]);
        let version = instance_version(cfg, inst);
        if let Some(v) = inst.version {
            c.range(|| with(&base, &["version"]), v, 2, 3);
        }
        match &inst.interface {
            Some(i) if !i.trim().is_empty() => {}
            Some(_) => c.error(with(&base, &["interface"]), "must not be empty"),
            None => c.error(base.clone(), "missing key `interface`"),
        }
        let vrid = match inst.virtual_router_id {
            Some(v) => c
                .range(|| with(&base, &["virtual_router_id"]), v, 1, 255)
                .then_some(v),
            None => {
                c.error(base.clone(), "missing key `virtual_router_id`");
                None
            }
        };
        if let Some(pr) = inst.priority {
            c.range(|| with(&base, &["priority"]), pr, 1, 255);
        }
        if let Some(adv) = inst.advert_int {
            check_advert_int(c, with(&base, &["advert_int"]), adv.get(), version);
        }
        if let Some(auth) = &inst.authentication {
            let ap = with(&base, &["authentication"]);
            if version != 2 {
                c.error(ap.clone(), "authentication exists only in VRRPv2 (RFC 5798 removed it); remove it or use version 2");
            }
            match auth.auth_type {
                AuthType::Ah => c.error(with(&ap, &["auth_type"]), "AH authentication is not supported (deprecated by RFC 3768); use PASS or none"),
                AuthType::Pass => match &auth.auth_pass {
                    None => c.error(ap.clone(), "missing key `auth_pass` for auth_type PASS"),
                    Some(pw) if pw.is_empty() || pw.len() > 8 => c.error(
                        with(&ap, &["auth_pass"]),
                        format!("must be 1 to 8 bytes, got {} (keepalived truncates silently; keeper refuses)", pw.len()),
                    ),
                    Some(_) => {}
                },
            }
        }
        let mut family: Option<bool> = None;
        for (i, v) in inst.virtual_ipaddress.iter().enumerate() {
            let vp = with(&base, &["virtual_ipaddress", &i.to_string()]);
            match v.parse::<VipSpec>() {
                Ok(vip) => {
                    let v6 = vip.addr.is_ipv6();
                    match family {
                        None => family = Some(v6),
                        Some(f) if f != v6 => c.error(
                            vp,
                            format!(
                                "{} is {} but this instance's first address is {}: one instance serves one address family (use virtual_ipaddress_excluded or a second instance)",
                                vip.addr,
                                fam(v6),
                                fam(f)
                            ),
                        ),
                        Some(_) => {}
                    }
                }
                Err(e) => c.error(vp, e),
            }
        }
        for (i, v) in inst.virtual_routes.iter().enumerate() {
            if let Err(e) = v.parse::<syntax::RouteSpec>() {
                c.error(with(&base, &["virtual_routes", &i.to_string()]), e);
            }
        }
        for (i, v) in inst.virtual_rules.iter().enumerate() {
            if let Err(e) = v.parse::<syntax::RuleSpec>() {
                c.error(with(&base, &["virtual_rules", &i.to_string()]), e);
            }
        }
        for (i, v) in inst.virtual_ipaddress_excluded.iter().enumerate() {
            if let Err(e) = v.parse::<VipSpec>() {
                c.error(
                    with(&base, &["virtual_ipaddress_excluded", &i.to_string()]),
                    e,
                );
            }
        }
        for (key, addr) in [
            ("mcast_src_ip", inst.mcast_src_ip),
            ("unicast_src_ip", inst.unicast_src_ip),
        ] {
            if let (Some(a), Some(f)) = (addr, family)
                && a.is_ipv6() != f
            {
                c.error(
                    with(&base, &[key]),
                    format!("{a} is {} but the instance is {}", fam(a.is_ipv6()), fam(f)),
                );
            }
        }
        if let Some(peers) = &inst.unicast_peer {
            if peers.is_empty() {
                c.error(
                    with(&base, &["unicast_peer"]),
                    "is empty: list the peers, or remove the key for multicast (keeper never falls back to multicast silently)",
                );
            }
            for (i, s) in peers.iter().enumerate() {
                let pp = with(&base, &["unicast_peer", &i.to_string()]);
                match s.parse::<PeerSpec>() {
                    Ok(peer) => {
                        if let Some(f) = family
                            && peer.addr.is_ipv6() != f
                        {
                            c.error(
                                pp,
                                format!(
                                    "{} is {} but the instance is {}",
                                    peer.addr,
                                    fam(peer.addr.is_ipv6()),
                                    fam(f)
                                ),
                            );
                        }
                    }
                    Err(e) => c.error(pp, e),
                }
            }
        }
        for (key, list) in [
            ("track_interface", &inst.track_interface),
            ("track_script", &inst.track_script),
            ("track_file", &inst.track_file),
            ("track_process", &inst.track_process),
        ] {
            for (i, s) in list.iter().enumerate() {
                let tp = with(&base, &[key, &i.to_string()]);
                match s.parse::<TrackSpec>() {
                    Ok(t) => {
                        if key == "track_script" && !cfg.vrrp_script.contains_key(&t.name) {
                            c.error(tp, format!("no vrrp_script named {:?}", t.name));
                        } else if key == "track_file" && !cfg.vrrp_track_file.contains_key(&t.name)
                        {
                            c.error(tp, format!("no vrrp_track_file named {:?}", t.name));
                        } else if key == "track_process"
                            && !cfg.vrrp_track_process.contains_key(&t.name)
                        {
                            c.error(tp, format!("no vrrp_track_process named {:?}", t.name));
                        }
                    }
                    Err(e) => c.error(tp, e),
                }
            }
        }
        if let Some(r) = inst.garp_master_repeat {
            c.range(|| with(&base, &["garp_master_repeat"]), r, 0, 255);
        }
        if let Some(r) = inst.garp_master_refresh_repeat {
            c.range(|| with(&base, &["garp_master_refresh_repeat"]), r, 1, 255);
        }
        if inst.preempt_delay.get() > Duration::from_secs(1000) {
            c.error(with(&base, &["preempt_delay"]), "must be at most 1000 s");
        }
        if inst.nopreempt && inst.state == Some(InitialState::Master) {
            c.warn(with(&base, &["nopreempt"]), "nopreempt with state MASTER: the instance still starts as BACKUP and will not preempt");
        }
        if let Some(f) = family {
            families.insert(name.clone(), f);
            if let (Some(ifname), Some(vrid)) = (&inst.interface, vrid)
                && let Some(other) = seen.insert((ifname.clone(), vrid, f), name.clone())
            {
                c.error(
                    with(&base, &["virtual_router_id"]),
                    format!(
                        "instance {other:?} already uses VRID {vrid} for {} on {ifname}",
                        fam(f)
                    ),
                );
            }
        }
    }
    families
}

fn fam(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

fn check_advert_int(c: &mut Checker, path: KeyPath, adv: Duration, version: i64) {
    if version == 2 {
        let s = adv.as_secs();
        if adv.subsec_nanos() != 0 || !(1..=255).contains(&s) {
            c.error(path, format!("VRRPv2 adverts are whole seconds 1-255, got {adv:?} (sub-second adverts need version 3)"));
        }
    } else {
        let cs = adv.as_millis() / 10;
        if !adv.as_nanos().is_multiple_of(10_000_000) || !(1..=4095).contains(&cs) {
            c.error(
                path,
                format!("VRRPv3 adverts are 10 ms steps from 10 ms to 40.95 s, got {adv:?}"),
            );
        }
    }
}

fn check_sync_groups(c: &mut Checker, cfg: &Config, _families: &HashMap<String, bool>) {
    let mut member_of: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, g) in &cfg.vrrp_sync_group {
        let base = p(&["vrrp_sync_group", name]);
        if g.group.is_empty() {
            c.error(
                with(&base, &["group"]),
                "a sync group needs at least one member",
            );
        }
        for (i, m) in g.group.iter().enumerate() {
            let mp = with(&base, &["group", &i.to_string()]);
            if !cfg.vrrp_instance.contains_key(m) {
                c.error(mp, format!("no vrrp_instance named {m:?}"));
            } else if let Some(other) = member_of.insert(m, name) {
                c.error(
                    mp,
                    format!("{m:?} is already a member of sync group {other:?}"),
                );
            }
        }
    }
}

fn check_scripts(c: &mut Checker, cfg: &Config) {
    for (name, s) in &cfg.vrrp_script {
        let base = p(&["vrrp_script", name]);
        match &s.script {
            Some(x) if !x.trim().is_empty() => {
                if let Err(e) = crate::track::command::split(x) {
                    c.error(with(&base, &["script"]), e.to_string());
                }
            }
            _ => c.error(base.clone(), "missing key `script`"),
        }
        if s.interval.get().is_zero() {
            c.error(with(&base, &["interval"]), "must be above 0");
        }
        if s.timeout.is_some_and(|t| t.get().is_zero()) {
            c.error(with(&base, &["timeout"]), "must be above 0");
        }
        c.range(|| with(&base, &["weight"]), s.weight, -253, 253);
        c.range(|| with(&base, &["rise"]), s.rise, 1, 1_000_000);
        c.range(|| with(&base, &["fall"]), s.fall, 1, 1_000_000);
    }
}

// --- tracked files and processes ------------------------------------------------------------

fn check_track_files(c: &mut Checker, cfg: &Config) {
    for (name, f) in &cfg.vrrp_track_file {
        let base = p(&["vrrp_track_file", name]);
        match &f.file {
            None => c.error(base.clone(), "missing key `file`"),
            Some(path) if !path.is_absolute() => c.error(
                with(&base, &["file"]),
                format!("{} is not an absolute path", path.display()),
            ),
            Some(path) if path.file_name().is_none() => c.error(
                with(&base, &["file"]),
                format!("{} names no file", path.display()),
            ),
            Some(_) => {}
        }
        c.range(|| with(&base, &["weight"]), f.weight, -254, 254);
        if let Some(init) = f.init_file
            && !(-254..=254).contains(&init.value)
        {
            c.warn(
                with(&base, &["init_file"]),
                format!(
                    "init value {} is outside the sensible range -254..254",
                    init.value
                ),
            );
        }
    }
}

fn check_track_processes(c: &mut Checker, cfg: &Config) {
    for (name, pr) in &cfg.vrrp_track_process {
        let base = p(&["vrrp_track_process", name]);
        if let Err(errors) = crate::track::ProcessSpec::from_config(name, pr) {
            for (key, message) in errors {
                let path = if key.is_empty() {
                    base.clone()
                } else {
                    with(&base, &[key])
                };
                c.error(path, message);
            }
        }
        c.range(|| with(&base, &["weight"]), pr.weight, -254, 254);
    }
}

// --- end of tracked files and processes --------------------------------------------------------

/// `only`: check that virtual server's own keys and skip the others' (a reload that changed
/// only it: each virtual server's checks read nothing of the others); the checks across
/// virtual servers always run.
fn check_virtual_servers(c: &mut Checker, cfg: &Config, only: Option<&str>) {
    // (protocol, address, port) or (-, -, fwmark): keys without allocation, since every
    // virtual server is checked here on every reload.
    let mut seen: BTreeMap<(Option<u8>, Option<IpAddr>, i64), &str> = BTreeMap::new();
    for (name, vs) in &cfg.virtual_server {
        // Groups, service clashes across groups and families: `lvs::plan` (notes in `load`).
        let key = match (vs.ip, vs.port, vs.fwmark) {
            (Some(ip), Some(port), _) => Some((Some(vs.protocol as u8), Some(ip), port)),
            (_, _, Some(m)) => Some((None, None, m)),
            _ => None,
        };
        if let Some(k) = key
            && let Some(other) = seen.insert(k, name)
        {
            let k = match k {
                (Some(_), Some(ip), port) => format!("{:?} {ip} {port}", vs.protocol),
                (_, _, m) => format!("fwmark {m}"),
            };
            c.error(
                p(&["virtual_server", name]),
                format!("virtual server {other:?} already serves {k}"),
            );
        }
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let base = p(&["virtual_server", name]);
        let kinds = [vs.ip.is_some(), vs.fwmark.is_some(), vs.group.is_some()];
        if kinds.iter().filter(|&&k| k).count() != 1 {
            c.error(
                base.clone(),
                "set exactly one of `ip` (with `port`), `fwmark`, or `group`",
            );
        }
        if vs.ip.is_some() {
            match vs.port {
                Some(port) => {
                    c.range(|| with(&base, &["port"]), port, 0, 65535);
                }
                None => c.error(base.clone(), "missing key `port` (with `ip`)"),
            }
        } else if vs.port.is_some() && vs.group.is_none() {
            c.error(with(&base, &["port"]), "`port` goes with `ip`");
        }
        if let Some(m) = vs.fwmark {
            c.range(|| with(&base, &["fwmark"]), m, 1, u32::MAX as i64);
        }
        if vs.delay_loop.get().is_zero() {
            c.error(with(&base, &["delay_loop"]), "must be above 0");
        }
        if let Some(t) = vs.persistence_timeout
            && t.get().as_secs() > u32::MAX as u64
        {
            c.error(with(&base, &["persistence_timeout"]), "too large");
        }
        if let Some(s) = &vs.sorry_server
            && let Err(e) = syntax::parse_ip_port(s)
        {
            c.error(with(&base, &["sorry_server"]), e);
        }
        c.range(|| with(&base, &["quorum"]), vs.quorum, 1, i32::MAX as i64);
        c.range(
            || with(&base, &["hysteresis"]),
            vs.hysteresis,
            0,
            i32::MAX as i64,
        );

        let mut rs_seen: BTreeMap<(IpAddr, i64), String> = BTreeMap::new();
        for (rname, rs) in &vs.real_server {
            let rb = with(&base, &["real_server", rname]);
            let Some(ip) = rs.ip else {
                c.error(rb.clone(), "missing key `ip`");
                continue;
            };
            let port = rs.port.or(vs.port).unwrap_or(0);
            if let Some(p) = rs.port {
                c.range(|| with(&rb, &["port"]), p, 0, 65535);
            }
            c.range(|| with(&rb, &["weight"]), rs.weight, 0, 65535);
            if let Some(u) = rs.uthreshold {
                c.range(|| with(&rb, &["uthreshold"]), u, 0, u32::MAX as i64);
            }
            if let Some(l) = rs.lthreshold
                && c.range(|| with(&rb, &["lthreshold"]), l, 0, u32::MAX as i64)
            {
                // ip_vs_add_dest and ip_vs_edit_dest refuse `l_threshold > u_threshold` with
                // ERANGE, and an absent uthreshold is 0 there, not "no limit".
                let u = rs.uthreshold.unwrap_or(0);
                if l > u {
                    c.error(
                        with(&rb, &["lthreshold"]),
                        format!("lthreshold {l} is above uthreshold {u} (absent is 0): the kernel refuses such a real server; set uthreshold to at least {l} or drop lthreshold"),
                    );
                }
            }
            let kind = rs.lb_kind.unwrap_or(vs.lb_kind);
            if let Some(vip) = vs.ip
                && vip.is_ipv6() != ip.is_ipv6()
                && kind != LbKind::Tun
            {
                c.error(with(&rb, &["ip"]), format!("{ip} is not of the virtual server's family ({vip}); only TUN forwards across families"));
            }
            if let Some(other) = rs_seen.insert((ip, port), rname.clone()) {
                c.error(
                    rb.clone(),
                    format!("real server {other:?} is already {ip} port {port}"),
                );
            }
            if let Some(t) = &rs.tcp_check {
                check_tcp(c, with(&rb, &["tcp_check"]), t);
            }
            if let Some(h) = &rs.http_get {
                check_http(c, with(&rb, &["http_get"]), h);
            }
            if let Some(h) = &rs.ssl_get {
                check_http(c, with(&rb, &["ssl_get"]), h);
            }
            if let Some(m) = &rs.misc_check {
                check_misc(c, with(&rb, &["misc_check"]), m);
            }
            check_health_checks(c, &base, vs, &rb, rs);
            check_health_checks_ii(c, cfg, vs, &rb, rs);
        }
        script_line(c, with(&base, &["quorum_up"]), &vs.quorum_up);
        script_line(c, with(&base, &["quorum_down"]), &vs.quorum_down);
    }
}

fn check_retry(c: &mut Checker, base: &KeyPath, retry: Option<i64>, nb_get_retry: Option<i64>) {
    if retry.is_some() && nb_get_retry.is_some() {
        c.error(
            with(base, &["nb_get_retry"]),
            "set `retry` or its old name `nb_get_retry`, not both",
        );
    }
    for (key, v) in [("retry", retry), ("nb_get_retry", nb_get_retry)] {
        if let Some(v) = v {
            c.range(|| with(base, &[key]), v, 0, 1_000_000);
        }
    }
}

fn check_port(c: &mut Checker, base: &KeyPath, port: Option<i64>) {
    if let Some(port) = port {
        c.range(|| with(base, &["connect_port"]), port, 1, 65535);
    }
}

fn check_tcp(c: &mut Checker, base: KeyPath, t: &TcpCheck) {
    check_retry(c, &base, t.retry, t.nb_get_retry);
    check_port(c, &base, t.connect_port);
    if t.connect_timeout.is_some_and(|d| d.get().is_zero()) {
        c.error(with(&base, &["connect_timeout"]), "must be above 0");
    }
}

fn check_http(c: &mut Checker, base: KeyPath, h: &HttpCheck) {
    check_retry(c, &base, h.retry, h.nb_get_retry);
    check_port(c, &base, h.connect_port);
    if h.connect_timeout.is_some_and(|d| d.get().is_zero()) {
        c.error(with(&base, &["connect_timeout"]), "must be above 0");
    }
    if h.url.is_empty() {
        c.error(
            base.clone(),
            "needs at least one `url` sub-table, e.g. [...http_get.url.root] path = \"/\"",
        );
    }
    for (name, u) in &h.url {
        let ub = with(&base, &["url", name]);
        match &u.path {
            Some(path) if path.starts_with('/') => {}
            Some(path) => c.error(
                with(&ub, &["path"]),
                format!("{path:?} must start with '/'"),
            ),
            None => c.error(ub.clone(), "missing key `path`"),
        }
        if let Some(d) = &u.digest
            && (d.len() != 32 || !d.chars().all(|ch| ch.is_ascii_hexdigit()))
        {
            c.error(
                with(&ub, &["digest"]),
                "must be 32 hex digits (an MD5, as genhash prints it)",
            );
        }
    }
}

fn check_misc(c: &mut Checker, base: KeyPath, m: &MiscCheck) {
    match &m.misc_path {
        Some(x) if !x.trim().is_empty() => {}
        _ => c.error(base.clone(), "missing key `misc_path`"),
    }
    if m.misc_timeout.is_some_and(|d| d.get().is_zero()) {
        c.error(with(&base, &["misc_timeout"]), "must be above 0");
    }
    if let Some(r) = m.retry {
        c.range(|| with(&base, &["retry"]), r, 0, 1_000_000);
    }
}

// --- health checks (check/): what the checkers need beyond each table's own keys -------------

fn positive(c: &mut Checker, path: KeyPath, d: Option<crate::config::Secs>) {
    if d.is_some_and(|d| d.get().is_zero()) {
        c.error(path, "must be above 0");
    }
}

fn script_line(c: &mut Checker, path: KeyPath, line: &Option<String>) {
    if let Some(l) = line
        && let Err(e) = crate::check::script::split_words(l)
    {
        c.error(path, e);
    }
}

/// Checks targets, addresses, scripts and regexes of a real server's checkers.
fn check_health_checks(
    c: &mut Checker,
    vs_base: &KeyPath,
    vs: &crate::config::schema::VirtualServer,
    rb: &KeyPath,
    rs: &crate::config::schema::RealServer,
) {
    positive(c, with(vs_base, &["connect_timeout"]), vs.connect_timeout);
    if let Some(r) = vs.retry {
        c.range(|| with(vs_base, &["retry"]), r, 0, 1_000_000);
    }
    positive(c, with(rb, &["connect_timeout"]), rs.connect_timeout);
    positive(c, with(rb, &["delay_loop"]), rs.delay_loop);
    if let Some(r) = rs.retry {
        c.range(|| with(rb, &["retry"]), r, 0, 1_000_000);
    }
    script_line(c, with(rb, &["notify_up"]), &rs.notify_up);
    script_line(c, with(rb, &["notify_down"]), &rs.notify_down);
    let Some(rs_ip) = rs.ip else { return };
    let port = rs.port.or(vs.port).filter(|&p| p > 0);
    let connected = |c: &mut Checker,
                     kb: KeyPath,
                     connect_ip: Option<IpAddr>,
                     connect_port: Option<i64>,
                     bindto: Option<IpAddr>| {
        if connect_port.or(port).is_none() {
            c.error(
                kb.clone(),
                "needs a port: set `port` on the real server or the virtual server, or `connect_port`",
            );
        }
        let target = connect_ip.unwrap_or(rs_ip);
        if let Some(b) = bindto
            && b.is_ipv6() != target.is_ipv6()
        {
            c.error(
                with(&kb, &["bindto"]),
                format!("{b} cannot reach {target}: the address families differ"),
            );
        }
    };
    if let Some(t) = &rs.tcp_check {
        let kb = with(rb, &["tcp_check"]);
        positive(c, with(&kb, &["delay_loop"]), t.delay_loop);
        connected(c, kb, t.connect_ip, t.connect_port, t.bindto);
    }
    for (key, h, tls) in [
        ("http_get", &rs.http_get, false),
        ("ssl_get", &rs.ssl_get, true),
    ] {
        let Some(h) = h else { continue };
        let kb = with(rb, &[key]);
        positive(c, with(&kb, &["delay_loop"]), h.delay_loop);
        connected(c, kb.clone(), h.connect_ip, h.connect_port, h.bindto);
        if !tls {
            for (k, set) in [
                ("sni", h.sni.is_some()),
                ("verify_cert", h.verify_cert),
                ("ca_file", h.ca_file.is_some()),
            ] {
                if set {
                    c.warn(
                        with(&kb, &[k]),
                        "only ssl_get uses TLS; ignored for http_get",
                    );
                }
            }
        } else if h.ca_file.is_some() && !h.verify_cert {
            c.warn(
                with(&kb, &["ca_file"]),
                "used only with verify_cert = true; certificates are not verified",
            );
        }
        for (name, u) in &h.url {
            if let Some(re) = &u.regex
                && let Err(e) = regex::bytes::Regex::new(re)
            {
                c.error(
                    with(&kb, &["url", name, "regex"]),
                    format!("invalid regex: {e}"),
                );
            }
        }
    }
    if let Some(m) = &rs.misc_check {
        let kb = with(rb, &["misc_check"]);
        positive(c, with(&kb, &["delay_loop"]), m.delay_loop);
        script_line(c, with(&kb, &["misc_path"]), &m.misc_path);
    }
}

// --- health checks II (check/): udp_check, dns_check, ping_check, smtp_check, file_check -----

/// What the UDP, DNS, ping, SMTP and file checkers of a real server need.
fn check_health_checks_ii(
    c: &mut Checker,
    cfg: &Config,
    vs: &crate::config::schema::VirtualServer,
    rb: &KeyPath,
    rs: &crate::config::schema::RealServer,
) {
    let Some(rs_ip) = rs.ip else { return };
    let port = rs.port.or(vs.port).filter(|&p| p > 0);
    // The keys every network checker shares.
    let common = |c: &mut Checker,
                  kb: &KeyPath,
                  retry: Option<i64>,
                  timeout: Option<crate::config::Secs>,
                  delay_loop: Option<crate::config::Secs>,
                  target: IpAddr,
                  bindto: Option<IpAddr>| {
        if let Some(r) = retry {
            c.range(|| with(kb, &["retry"]), r, 0, 1_000_000);
        }
        positive(c, with(kb, &["connect_timeout"]), timeout);
        positive(c, with(kb, &["delay_loop"]), delay_loop);
        if let Some(b) = bindto
            && b.is_ipv6() != target.is_ipv6()
        {
            c.error(
                with(kb, &["bindto"]),
                format!("{b} cannot reach {target}: the address families differ"),
            );
        }
    };
    let needs_port = |c: &mut Checker, kb: &KeyPath, connect_port: Option<i64>| match connect_port {
        Some(p) => {
            c.range(|| with(kb, &["connect_port"]), p, 1, 65535);
        }
        None if port.is_none() => c.error(
            kb.clone(),
            "needs a port: set `port` on the real server or the virtual server, or `connect_port`",
        ),
        None => {}
    };
    if let Some(u) = &rs.udp_check {
        let kb = with(rb, &["udp_check"]);
        let target = u.connect_ip.unwrap_or(rs_ip);
        common(
            c,
            &kb,
            u.retry,
            u.connect_timeout,
            u.delay_loop,
            target,
            u.bindto,
        );
        needs_port(c, &kb, u.connect_port);
        if let Some(p) = &u.payload
            && let Err(e) = crate::check::udp::HexPattern::parse(p, false)
        {
            c.error(with(&kb, &["payload"]), e);
        }
        if let Some(crate::config::schema::RequireReply::Data(p)) = &u.require_reply
            && let Err(e) = crate::check::udp::HexPattern::parse(p, true)
        {
            c.error(with(&kb, &["require_reply"]), e);
        }
        let lens = [
            ("min_reply_length", u.min_reply_length),
            ("max_reply_length", u.max_reply_length),
        ];
        for (key, v) in lens {
            if let Some(v) = v {
                c.range(|| with(&kb, &[key]), v, 0, 65535);
            }
        }
        if let (Some(lo), Some(hi)) = (u.min_reply_length, u.max_reply_length)
            && lo > hi
        {
            c.error(
                with(&kb, &["min_reply_length"]),
                format!("{lo} is above max_reply_length {hi}: the check could never pass"),
            );
        }
        let requires = !matches!(
            u.require_reply,
            None | Some(crate::config::schema::RequireReply::Flag(false))
        );
        if !requires && (u.min_reply_length.is_some() || u.max_reply_length.is_some()) {
            c.warn(
                kb.clone(),
                "min_reply_length / max_reply_length apply only with require_reply",
            );
        }
    }
    if let Some(d) = &rs.dns_check {
        let kb = with(rb, &["dns_check"]);
        let target = d.connect_ip.unwrap_or(rs_ip);
        common(
            c,
            &kb,
            d.retry,
            d.connect_timeout,
            d.delay_loop,
            target,
            d.bindto,
        );
        needs_port(c, &kb, d.connect_port);
        if let Some(t) = &d.query_type
            && let Err(e) = crate::check::dns::parse_type(t)
        {
            c.error(with(&kb, &["type"]), e);
        }
        if let Some(n) = &d.name
            && let Err(e) = crate::check::dns::parse_name(n)
        {
            c.error(with(&kb, &["name"]), e);
        }
        if d.answer.iter().any(|a| a.trim().is_empty()) {
            c.error(with(&kb, &["answer"]), "an expected record is empty");
        }
    }
    if let Some(p) = &rs.ping_check {
        let kb = with(rb, &["ping_check"]);
        let target = p.connect_ip.unwrap_or(rs_ip);
        common(
            c,
            &kb,
            p.retry,
            p.connect_timeout,
            p.delay_loop,
            target,
            p.bindto,
        );
    }
    if let Some(m) = &rs.smtp_check {
        let kb = with(rb, &["smtp_check"]);
        let target = m.connect_ip.unwrap_or(rs_ip);
        common(
            c,
            &kb,
            m.retry,
            m.connect_timeout,
            m.delay_loop,
            target,
            m.bindto,
        );
        needs_port(c, &kb, m.connect_port);
        if let Some(h) = &m.helo_name
            && (h.trim().is_empty() || h.chars().any(|ch| ch.is_control() || ch == ' '))
        {
            c.error(
                with(&kb, &["helo_name"]),
                "must be one word without spaces or control characters",
            );
        }
    }
    if let Some(f) = &rs.file_check {
        let kb = with(rb, &["file_check"]);
        match &f.track_file {
            None => c.error(
                kb.clone(),
                "missing key `track_file` (a vrrp_track_file table)",
            ),
            Some(name) => match cfg.vrrp_track_file.get(name) {
                None => c.error(
                    with(&kb, &["track_file"]),
                    format!("no vrrp_track_file {name:?}"),
                ),
                Some(t) if t.file.is_none() => c.error(
                    with(&kb, &["track_file"]),
                    format!("vrrp_track_file {name:?} has no `file`"),
                ),
                Some(_) => {}
            },
        }
        if let Some(w) = f.weight {
            c.range(
                || with(&kb, &["weight"]),
                w,
                -i64::from(i32::MAX),
                i64::from(i32::MAX),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("127.0.0.1", 25),
            Ok(("127.0.0.1".into(), 25))
        );
        assert_eq!(parse_host_port("mail:2525", 25), Ok(("mail".into(), 2525)));
        assert_eq!(
            parse_host_port("192.168.200.1 587", 25),
            Ok(("192.168.200.1".into(), 587))
        );
        assert_eq!(parse_host_port("[::1]:26", 25), Ok(("::1".into(), 26)));
        assert!(parse_host_port("a b c", 25).is_err());
    }

    #[test]
    fn tracked_files_and_processes() {
        let cfg: Config = match toml::from_str(
            r#"
            [vrrp_instance.VI_1]
            interface = "eth0"
            virtual_router_id = 1
            track_file = ["f", "nofile weight 2"]
            track_process = ["p", "bad", "noproc"]
            [vrrp_script.s]
            script = "/bin/check 'unterminated"
            [vrrp_track_file.f]
            file = "relative/path"
            weight = 300
            init_file = "7 overwrite"
            [vrrp_track_process.p]
            process = "haproxy"
            quorum = 2
            [vrrp_track_process.bad]
            process = "a-name-longer-than-15"
            quorum = 3
            quorum_max = 2
            weight = -255
            "#,
        ) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let got: Vec<(String, Severity)> = validate(&cfg)
            .into_iter()
            .map(|f| (f.path.join("."), f.severity))
            .collect();
        let errors = |want: &[&str]| {
            for w in want {
                assert!(
                    got.contains(&(w.to_string(), Severity::Error)),
                    "{w} missing in {got:?}"
                );
            }
        };
        errors(&[
            "vrrp_instance.VI_1.track_file.1",
            "vrrp_instance.VI_1.track_process.2",
            "vrrp_script.s.script",
            "vrrp_track_file.f.file",
            "vrrp_track_file.f.weight",
            "vrrp_track_process.bad.process",
            "vrrp_track_process.bad.quorum_max",
            "vrrp_track_process.bad.weight",
        ]);
        assert_eq!(got.len(), 8, "{got:?}");
    }

    #[test]
    fn lower_threshold_needs_an_upper_threshold_at_least_as_high() {
        let cfg: Config = toml::from_str(
            r#"
            [virtual_server.web]
            ip = "10.0.0.1"
            port = 80
            [virtual_server.web.real_server.ok]
            ip = "10.0.0.11"
            uthreshold = 100
            lthreshold = 100
            [virtual_server.web.real_server.above]
            ip = "10.0.0.12"
            uthreshold = 50
            lthreshold = 80
            [virtual_server.web.real_server.no_upper]
            ip = "10.0.0.13"
            lthreshold = 10
            "#,
        )
        .expect("valid TOML");
        let got: Vec<String> = validate(&cfg)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{}: {}", f.path.join("."), f.message))
            .collect();
        assert_eq!(
            got,
            [
                "virtual_server.web.real_server.above.lthreshold: lthreshold 80 is above uthreshold 50 (absent is 0): the kernel refuses such a real server; set uthreshold to at least 80 or drop lthreshold",
                "virtual_server.web.real_server.no_upper.lthreshold: lthreshold 10 is above uthreshold 0 (absent is 0): the kernel refuses such a real server; set uthreshold to at least 10 or drop lthreshold",
            ]
        );
    }

    #[test]
    fn advert_interval_limits() {
        let mut c = Checker {
            findings: Vec::new(),
        };
        let path = p(&["x"]);
        check_advert_int(&mut c, path.clone(), Duration::from_secs(1), 2);
        check_advert_int(&mut c, path.clone(), Duration::from_millis(10), 3);
        check_advert_int(&mut c, path.clone(), Duration::from_millis(40_950), 3);
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        check_advert_int(&mut c, path.clone(), Duration::from_millis(100), 2);
        check_advert_int(&mut c, path.clone(), Duration::from_secs(256), 2);
        check_advert_int(&mut c, path.clone(), Duration::from_millis(15), 3);
        check_advert_int(&mut c, path.clone(), Duration::from_secs(41), 3);
        check_advert_int(&mut c, path, Duration::ZERO, 3);
        assert_eq!(c.findings.len(), 5);
    }
}
