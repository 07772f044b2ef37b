//! From the configuration to what the checkers run: one place that applies keepalived's
//! defaults and inheritance (a checker's key, else its real server's, else its virtual
//! server's, else keepalived's default), so that the driver only executes.
//!
//! The plan is plain data and comparable, so a reload keeps the state of every checker whose
//! plan did not change. It assumes a configuration that passed `validate` (entries that could
//! not run are left out rather than guessed).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::machine::{Anchor, RetryRule, Timing};
use super::script::Script;
use crate::config::schema::{
    Config, DnsCheck, HttpCheck, MiscCheck, PingCheck, RealServer, SmtpCheck, StatusCodes,
    TcpCheck, UdpCheck, VirtualServer,
};

/// keepalived's defaults (`check_data.c`, `check_api.c`, `check_http.c`, `check_misc.c`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
pub const DEFAULT_HTTP_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(3);
pub const DEFAULT_RETRY: u32 = 1;
pub const DEFAULT_MISC_RETRY: u32 = 0;
/// keepalived's `DNS_DEFAULT_RETRY`; its DNS checker retries after `delay_loop` by default.
pub const DEFAULT_DNS_RETRY: u32 = 3;
/// keepalived's `SMTP_DEFAULT_HELO`.
pub const DEFAULT_HELO: &str = "smtpchecker.keepalived.org";
/// keepalived's UDP payload when none is configured: `UDP_BUFSIZE` bytes of "keepalived check - ".
pub const DEFAULT_UDP_PAYLOAD_LEN: usize = 32;
/// keepalived's default largest UDP reply (`UINT8_MAX`).
pub const DEFAULT_MAX_REPLY_LEN: usize = 255;

/// Identifies a real server: its virtual server's and its own name in the configuration.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServerKey {
    pub virtual_server: String,
    pub real_server: String,
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.virtual_server, self.real_server)
    }
}

/// Where and how to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    pub target: SocketAddr,
    /// Source address (`bindto`).
    pub bind: Option<IpAddr>,
    /// Bounds the connect and every later step (TLS handshake, write, each read).
    pub timeout: Duration,
}

/// TLS parameters of an `ssl_get`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tls {
    /// Sent as SNI and checked against the certificate when verifying.
    pub server_name: Option<String>,
    pub verify: bool,
    pub ca_file: Option<PathBuf>,
}

/// One `url` of an HTTP check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub name: String,
    pub path: String,
    /// The `Host:` header value.
    pub host: String,
    pub status: StatusCodes,
    /// MD5 of the body (genhash).
    pub digest: Option<[u8; 16]>,
    pub regex: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http {
    pub connect: Connect,
    pub tls: Option<Tls>,
    /// Checked in order, each on its own connection; all must pass.
    pub urls: Vec<Url>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misc {
    pub script: Script,
    pub timeout: Duration,
    pub dynamic: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp {
    pub connect: Connect,
    pub payload: Vec<u8>,
    /// `require_reply`: a reply must come, within these bounds and matching the pattern.
    pub reply: Option<UdpReply>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpReply {
    pub pattern: Option<super::udp::HexPattern>,
    pub min_len: usize,
    pub max_len: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dns {
    pub connect: Connect,
    pub query_type: hickory_proto::rr::RecordType,
    /// Absolute (fully qualified) name.
    pub name: hickory_proto::rr::Name,
    pub answer: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ping {
    pub target: IpAddr,
    pub bind: Option<IpAddr>,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smtp {
    pub connect: Connect,
    pub helo: String,
}

/// A `file_check`: decided by the value of a tracked file, never by attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// The `vrrp_track_file` table.
    pub name: String,
    pub path: PathBuf,
    pub init: Option<crate::config::InitFile>,
    pub weight: i64,
    pub reverse: bool,
}

/// What one attempt does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Tcp(Connect),
    Http(Http),
    Misc(Misc),
    Udp(Udp),
    Dns(Dns),
    Ping(Ping),
    Smtp(Smtp),
    File(File),
}

/// The checker kinds, named as their configuration tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    TcpCheck,
    HttpGet,
    SslGet,
    MiscCheck,
    UdpCheck,
    DnsCheck,
    PingCheck,
    SmtpCheck,
    FileCheck,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::TcpCheck => "tcp_check",
            Kind::HttpGet => "http_get",
            Kind::SslGet => "ssl_get",
            Kind::MiscCheck => "misc_check",
            Kind::UdpCheck => "udp_check",
            Kind::DnsCheck => "dns_check",
            Kind::PingCheck => "ping_check",
            Kind::SmtpCheck => "smtp_check",
            Kind::FileCheck => "file_check",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPlan {
    pub kind: Kind,
    pub timing: Timing,
    pub alpha: bool,
    pub probe: Probe,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPlan {
    pub key: ServerKey,
    pub address: SocketAddr,
    /// The configured weight (a `misc_dynamic` verdict overrides it while UP).
    pub weight: u32,
    /// Run `notify_down` for this server, if UP, at shutdown.
    pub omega: bool,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    pub checks: Vec<CheckPlan>,
}

/// A virtual server's quorum and its scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServerPlan {
    pub name: String,
    pub quorum: u64,
    pub hysteresis: u64,
    /// A sorry server is configured (keepalived then runs `quorum_down` at a start without
    /// quorum).
    pub sorry_server: bool,
    /// Run `quorum_down` at shutdown.
    pub omega: bool,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
}

/// Every real server of every virtual server, in configuration order, and every virtual
/// server's quorum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub servers: Vec<ServerPlan>,
    pub virtual_servers: Vec<VirtualServerPlan>,
}

fn secs(v: Option<crate::config::Secs>) -> Option<Duration> {
    v.map(|s| s.get())
}

fn count(v: Option<i64>) -> Option<u32> {
    v.map(|r| u32::try_from(r.max(0)).unwrap_or(u32::MAX))
}

/// The keys every checker table shares, as `Option`s before inheritance.
struct Common {
    delay_loop: Option<Duration>,
    alpha: Option<bool>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
    connect_timeout: Option<Duration>,
}

impl Common {
    fn tcp(t: &TcpCheck) -> Common {
        Common {
            delay_loop: secs(t.delay_loop),
            alpha: t.alpha,
            retry: count(t.retry.or(t.nb_get_retry)),
            delay_before_retry: secs(t.delay_before_retry),
            warmup: secs(t.warmup),
            connect_timeout: secs(t.connect_timeout),
        }
    }

    fn http(h: &HttpCheck) -> Common {
        Common {
            delay_loop: secs(h.delay_loop),
            alpha: h.alpha,
            retry: count(h.retry.or(h.nb_get_retry)),
            delay_before_retry: secs(h.delay_before_retry),
            warmup: secs(h.warmup),
            connect_timeout: secs(h.connect_timeout),
        }
    }

    fn udp(u: &UdpCheck) -> Common {
        Common {
            delay_loop: secs(u.delay_loop),
            alpha: u.alpha,
            retry: count(u.retry),
            delay_before_retry: secs(u.delay_before_retry),
            warmup: secs(u.warmup),
            connect_timeout: secs(u.connect_timeout),
        }
    }

    fn dns(d: &DnsCheck) -> Common {
        Common {
            delay_loop: secs(d.delay_loop),
            alpha: d.alpha,
            retry: count(d.retry),
            delay_before_retry: secs(d.delay_before_retry),
            warmup: secs(d.warmup),
            connect_timeout: secs(d.connect_timeout),
        }
    }

    fn ping(p: &PingCheck) -> Common {
        Common {
            delay_loop: secs(p.delay_loop),
            alpha: p.alpha,
            retry: count(p.retry),
            delay_before_retry: secs(p.delay_before_retry),
            warmup: secs(p.warmup),
            connect_timeout: secs(p.connect_timeout),
        }
    }

    fn smtp(m: &SmtpCheck) -> Common {
        Common {
            delay_loop: secs(m.delay_loop),
            alpha: m.alpha,
            retry: count(m.retry),
            delay_before_retry: secs(m.delay_before_retry),
            warmup: secs(m.warmup),
            connect_timeout: secs(m.connect_timeout),
        }
    }

    fn misc(m: &MiscCheck) -> Common {
        Common {
            delay_loop: secs(m.delay_loop),
            alpha: m.alpha,
            retry: count(m.retry),
            delay_before_retry: secs(m.delay_before_retry),
            warmup: secs(m.warmup),
            connect_timeout: None,
        }
    }
}

struct Resolved {
    timing: Timing,
    alpha: bool,
    connect_timeout: Duration,
}

/// keepalived's inheritance: checker, else real server, else virtual server, else default
/// (`default_dbr` `None`: the delay_loop, as keepalived's DNS checker).
fn resolve(
    vs: &VirtualServer,
    rs: &RealServer,
    c: &Common,
    default_retry: u32,
    default_dbr: Option<Duration>,
    anchor: Anchor,
) -> Resolved {
    let delay_loop = c
        .delay_loop
        .or(secs(rs.delay_loop))
        .unwrap_or(vs.delay_loop.get());
    let retry = c
        .retry
        .or(count(rs.retry))
        .or(count(vs.retry))
        .unwrap_or(default_retry);
    let delay_before_retry = c
        .delay_before_retry
        .or(secs(rs.delay_before_retry))
        .or(secs(vs.delay_before_retry))
        .or(default_dbr)
        .unwrap_or(delay_loop);
    let warmup = c
        .warmup
        .or(secs(rs.warmup))
        .or(secs(vs.warmup))
        .unwrap_or(delay_loop);
    Resolved {
        timing: Timing {
            delay_loop,
            retry,
            delay_before_retry,
            warmup,
            interval_while_down: delay_loop,
            anchor,
            retries: RetryRule::WhileUp,
        },
        alpha: c.alpha.or(rs.alpha).unwrap_or(vs.alpha),
        connect_timeout: c
            .connect_timeout
            .or(secs(rs.connect_timeout))
            .or(secs(vs.connect_timeout))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
    }
}

fn connect(
    rs_ip: IpAddr,
    port: Option<u16>,
    connect_ip: Option<IpAddr>,
    connect_port: Option<i64>,
    bind: Option<IpAddr>,
    timeout: Duration,
) -> Option<Connect> {
    let port = connect_port
        .and_then(|p| u16::try_from(p).ok())
        .or(port)
        .filter(|&p| p != 0)?;
    Some(Connect {
        target: SocketAddr::new(connect_ip.unwrap_or(rs_ip), port),
        bind,
        timeout,
    })
}

/// The `Host:` header keepalived sends without a virtualhost: the address and port.
fn host_of(target: SocketAddr) -> String {
    match target.ip() {
        IpAddr::V4(a) => format!("{a}:{}", target.port()),
        IpAddr::V6(a) => format!("[{a}]:{}", target.port()),
    }
}

/// Parses 32 hex digits.
pub fn parse_digest(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn http_plan(
    vs: &VirtualServer,
    rs: &RealServer,
    rs_ip: IpAddr,
    port: Option<u16>,
    h: &HttpCheck,
    tls: bool,
) -> Option<CheckPlan> {
    let mut r = resolve(
        vs,
        rs,
        &Common::http(h),
        DEFAULT_RETRY,
        Some(DEFAULT_HTTP_DELAY_BEFORE_RETRY),
        Anchor::AttemptEnd,
    );
    // keepalived's HTTP checker retries a failed URL no faster than delay_loop.
    r.timing.interval_while_down = r.timing.delay_loop.max(r.timing.delay_before_retry);
    let connect = connect(
        rs_ip,
        port,
        h.connect_ip,
        h.connect_port,
        h.bindto,
        r.connect_timeout,
    )?;
    let vhost = h
        .virtualhost
        .clone()
        .or_else(|| rs.virtualhost.clone())
        .or_else(|| vs.virtualhost.clone());
    let urls = h
        .url
        .iter()
        .map(|(name, u)| {
            Some(Url {
                name: name.clone(),
                path: u.path.clone()?,
                host: u
                    .virtualhost
                    .clone()
                    .or_else(|| vhost.clone())
                    .unwrap_or_else(|| host_of(connect.target)),
                status: u
                    .status_code
                    .clone()
                    .unwrap_or(StatusCodes(vec![(200, 299)])),
                digest: match &u.digest {
                    Some(d) => Some(parse_digest(d)?),
                    None => None,
                },
                regex: u.regex.clone(),
            })
        })
        .collect::<Option<Vec<Url>>>()?;
    if urls.is_empty() {
        return None;
    }
    Some(CheckPlan {
        kind: if tls { Kind::SslGet } else { Kind::HttpGet },
        timing: r.timing,
        alpha: r.alpha,
        probe: Probe::Http(Http {
            connect,
            tls: tls.then(|| Tls {
                server_name: h.sni.clone().or(vhost),
                verify: h.verify_cert,
                ca_file: h.ca_file.clone(),
            }),
            urls,
        }),
    })
}

fn server_plan(
    cfg: &Config,
    vs_name: &str,
    vs: &VirtualServer,
    name: &str,
    rs: &RealServer,
) -> Option<ServerPlan> {
    let ip = rs.ip?;
    let port = rs.port.or(vs.port).and_then(|p| u16::try_from(p).ok());
    let script_user = cfg.global.script_user.clone();
    let mut checks = Vec::new();
    if let Some(t) = &rs.tcp_check {
        let r = resolve(
            vs,
            rs,
            &Common::tcp(t),
            DEFAULT_RETRY,
            Some(DEFAULT_DELAY_BEFORE_RETRY),
            Anchor::AttemptEnd,
        );
        let c = connect(
            ip,
            port,
            t.connect_ip,
            t.connect_port,
            t.bindto,
            r.connect_timeout,
        )?;
        checks.push(CheckPlan {
            kind: Kind::TcpCheck,
            timing: r.timing,
            alpha: r.alpha,
            probe: Probe::Tcp(c),
        });
    }
    if let Some(h) = &rs.http_get {
        checks.push(http_plan(vs, rs, ip, port, h, false)?);
    }
    if let Some(h) = &rs.ssl_get {
        checks.push(http_plan(vs, rs, ip, port, h, true)?);
    }
    if let Some(m) = &rs.misc_check {
        let r = resolve(
            vs,
            rs,
            &Common::misc(m),
            DEFAULT_MISC_RETRY,
            Some(DEFAULT_DELAY_BEFORE_RETRY),
            Anchor::AttemptStart,
        );
        let user = m.user.clone().or_else(|| script_user.clone());
        let script = Script::parse(m.misc_path.as_deref()?, user).ok()?;
        checks.push(CheckPlan {
            kind: Kind::MiscCheck,
            timing: r.timing,
            alpha: r.alpha,
            probe: Probe::Misc(Misc {
                script,
                // keepalived: misc_timeout, else the virtual server's delay_loop.
                timeout: secs(m.misc_timeout).unwrap_or(vs.delay_loop.get()),
                dynamic: m.misc_dynamic,
            }),
        });
    }
    checks.extend(checks_ii(cfg, vs, rs, ip, port)?);
    // A pushed-to Vec keeps room for 4 plans (a kilobyte); most real servers have one checker,
    // and there may be tens of thousands of them.
    checks.shrink_to_fit();
    let notify = |s: &Option<String>| -> Option<Option<Script>> {
        match s {
            Some(line) => Script::parse(line, script_user.clone()).ok().map(Some),
            None => Some(None),
        }
    };
    Some(ServerPlan {
        key: ServerKey {
            virtual_server: vs_name.to_string(),
            real_server: name.to_string(),
        },
        address: SocketAddr::new(ip, port.unwrap_or(0)),
        weight: u32::try_from(rs.weight.max(0)).unwrap_or(u32::MAX),
        omega: vs.omega,
        notify_up: notify(&rs.notify_up)?,
        notify_down: notify(&rs.notify_down)?,
        checks,
    })
}

/// keepalived's UDP payload without one configured (`set_buf`: no stack bytes leak).
pub fn default_udp_payload() -> Vec<u8> {
    b"keepalived check - "
        .iter()
        .copied()
        .cycle()
        .take(DEFAULT_UDP_PAYLOAD_LEN)
        .collect()
}

/// The UDP, DNS, ping, SMTP and file checkers of a real server, in that order; `None` when
/// one cannot run (`validate` refused it).
fn checks_ii(
    cfg: &Config,
    vs: &VirtualServer,
    rs: &RealServer,
    ip: IpAddr,
    port: Option<u16>,
) -> Option<Vec<CheckPlan>> {
    let mut checks = Vec::new();
    let end = Anchor::AttemptEnd;
    let common =
        |c: &Common, retry: u32, dbr: Option<Duration>| resolve(vs, rs, c, retry, dbr, end);
    if let Some(u) = &rs.udp_check {
        let r = common(
            &Common::udp(u),
            DEFAULT_RETRY,
            Some(DEFAULT_DELAY_BEFORE_RETRY),
        );
        let connect = connect(
            ip,
            port,
            u.connect_ip,
            u.connect_port,
            u.bindto,
            r.connect_timeout,
        )?;
        let payload = match &u.payload {
            Some(hex) => super::udp::HexPattern::parse(hex, false).ok()?.data,
            None => default_udp_payload(),
        };
        let len = |v: Option<i64>, d: usize| v.map_or(Some(d), |v| usize::try_from(v).ok());
        let reply = match &u.require_reply {
            None | Some(crate::config::schema::RequireReply::Flag(false)) => None,
            Some(rr) => Some(UdpReply {
                pattern: match rr {
                    crate::config::schema::RequireReply::Data(hex) => {
                        Some(super::udp::HexPattern::parse(hex, true).ok()?)
                    }
                    crate::config::schema::RequireReply::Flag(_) => None,
                },
                min_len: len(u.min_reply_length, 0)?,
                max_len: len(u.max_reply_length, DEFAULT_MAX_REPLY_LEN)?,
            }),
        };
        checks.push(CheckPlan {
            kind: Kind::UdpCheck,
            timing: r.timing,
            alpha: r.alpha,
            probe: Probe::Udp(Udp {
                connect,
                payload,
                reply,
            }),
        });
    }
    if let Some(d) = &rs.dns_check {
        let r = common(&Common::dns(d), DEFAULT_DNS_RETRY, None);
        let connect = connect(
            ip,
            port,
            d.connect_ip,
            d.connect_port,
            d.bindto,
            r.connect_timeout,
        )?;
        let query_type = super::dns::parse_type(d.query_type.as_deref().unwrap_or("SOA")).ok()?;
        let name = super::dns::parse_name(d.name.as_deref().unwrap_or(".")).ok()?;
        checks.push(CheckPlan {
            kind: Kind::DnsCheck,
            timing: r.timing,
            alpha: r.alpha,
            probe: Probe::Dns(Dns {
                connect,
                query_type,
                name,
                answer: d.answer.clone(),
            }),
        });
    }
    if let Some(p) = &rs.ping_check {
        let r = common(
            &Common::ping(p),
            DEFAULT_RETRY,
            Some(DEFAULT_DELAY_BEFORE_RETRY),
        );
        checks.push(CheckPlan {
            kind: Kind::PingCheck,
            timing: r.timing,
            alpha: r.alpha,
            probe: Probe::Ping(Ping {
                target: p.connect_ip.unwrap_or(ip),
                bind: p.bindto,
                timeout: r.connect_timeout,
            }),
        });
    }
    if let Some(m) = &rs.smtp_check {
        let mut r = common(
            &Common::smtp(m),
            DEFAULT_RETRY,
            Some(DEFAULT_DELAY_BEFORE_RETRY),
        );
        r.timing.retries = RetryRule::EachRound;
        let connect = connect(
            ip,
            port,
            m.connect_ip,
            m.connect_port,
            m.bindto,
            r.connect_timeout,
        )?;
        checks.push(CheckPlan {
            kind: Kind::SmtpCheck,
            timing: r.timing,
            alpha: r.alpha,
            probe: Probe::Smtp(Smtp {
                connect,
                helo: m
                    .helo_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_HELO.to_string()),
            }),
        });
    }
    if let Some(f) = &rs.file_check {
        let name = f.track_file.clone()?;
        let tf = cfg.vrrp_track_file.get(&name)?;
        // keepalived: the checker's `weight N [reverse]`, else the track file's.
        let (weight, reverse) = match f.weight {
            Some(w) => (w, f.reverse.unwrap_or(false)),
            None => (tf.weight, f.reverse.unwrap_or(tf.reverse)),
        };
        checks.push(CheckPlan {
            kind: Kind::FileCheck,
            // Never scheduled: the file decides. No alpha: its state is known at once.
            timing: Timing::new(vs.delay_loop.get(), 0, Duration::ZERO),
            alpha: false,
            probe: Probe::File(File {
                name,
                path: tf.file.clone()?,
                init: tf.init_file,
                weight,
                reverse,
            }),
        });
    }
    Some(checks)
}

/// Plans every real server of a validated configuration.
pub fn plan(cfg: &Config) -> Plan {
    let mut servers = Vec::new();
    let mut virtual_servers = Vec::new();
    let user = cfg.global.script_user.clone();
    let script = |s: &Option<String>| {
        s.as_deref()
            .and_then(|line| Script::parse(line, user.clone()).ok())
    };
    for (vs_name, vs) in &cfg.virtual_server {
        for (name, rs) in &vs.real_server {
            if let Some(p) = server_plan(cfg, vs_name, vs, name, rs) {
                servers.push(p);
            }
        }
        virtual_servers.push(VirtualServerPlan {
            name: vs_name.clone(),
            quorum: u64::try_from(vs.quorum.max(1)).unwrap_or(1),
            hysteresis: u64::try_from(vs.hysteresis.max(0)).unwrap_or(0),
            sorry_server: vs.sorry_server.is_some(),
            omega: vs.omega,
            quorum_up: script(&vs.quorum_up),
            quorum_down: script(&vs.quorum_down),
        });
    }
    Plan {
        servers,
        virtual_servers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keeper.toml");
        std::fs::write(&path, text).expect("write");
        match crate::config::load(&path, Vec::new()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn defaults_and_inheritance_follow_keepalived() {
        let cfg = parse(
            r#"
[virtual_server.web]
ip = "10.0.0.100"
port = 80
delay_loop = 6
retry = 2
[virtual_server.web.real_server.a]
ip = "10.0.0.21"
warmup = 0
[virtual_server.web.real_server.a.tcp_check]
connect_timeout = 3
[virtual_server.web.real_server.a.http_get]
url.root = { path = "/", digest = "9b3a0c85a887a256d6939da88aabd8cd" }
delay_before_retry = 1
[virtual_server.web.real_server.a.misc_check]
misc_path = "/bin/check 'a b'"
misc_dynamic = true
"#,
        );
        let p = plan(&cfg);
        let s = &p.servers[0];
        assert_eq!(s.address, "10.0.0.21:80".parse().expect("addr"));
        let [tcp, http, misc] = &s.checks[..] else {
            panic!("{:?}", s.checks)
        };
        assert_eq!(tcp.timing.delay_loop, Duration::from_secs(6));
        assert_eq!(tcp.timing.retry, 2, "virtual server's retry");
        assert_eq!(tcp.timing.warmup, Duration::ZERO, "real server's warmup");
        assert_eq!(tcp.timing.delay_before_retry, DEFAULT_DELAY_BEFORE_RETRY);
        let Probe::Tcp(c) = &tcp.probe else { panic!() };
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(http.timing.delay_before_retry, Duration::from_secs(1));
        assert_eq!(http.timing.interval_while_down, Duration::from_secs(6));
        let Probe::Http(h) = &http.probe else {
            panic!()
        };
        assert_eq!(h.connect.timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(h.urls[0].host, "10.0.0.21:80");
        assert_eq!(h.urls[0].status, StatusCodes(vec![(200, 299)]));
        assert_eq!(h.urls[0].digest.map(|d| d[0]), Some(0x9b));
        assert_eq!(misc.timing.anchor, Anchor::AttemptStart);
        assert_eq!(
            misc.timing.retry, 2,
            "virtual server's retry beats the misc default 0"
        );
        let Probe::Misc(m) = &misc.probe else {
            panic!()
        };
        assert_eq!(m.script.argv, ["/bin/check", "a b"]);
        assert_eq!(
            m.timeout,
            Duration::from_secs(6),
            "misc_timeout defaults to delay_loop"
        );
        assert!(m.dynamic);
    }

    #[test]
    fn misc_default_retry_is_zero_and_http_dbr_three() {
        let cfg = parse(
            r#"
[virtual_server.web]
ip = "fd00::100"
port = 443
[virtual_server.web.real_server.a]
ip = "fd00::21"
alpha = true
virtualhost = "www.example.org"
[virtual_server.web.real_server.a.ssl_get]
url.health = { path = "/health", status_code = "200 401-403" }
connect_port = 8443
[virtual_server.web.real_server.a.misc_check]
misc_path = "/bin/true"
"#,
        );
        let s = &plan(&cfg).servers[0];
        let [ssl, misc] = &s.checks[..] else { panic!() };
        assert!(ssl.alpha && misc.alpha);
        assert_eq!(ssl.timing.delay_loop, Duration::from_secs(60));
        assert_eq!(
            ssl.timing.delay_before_retry,
            DEFAULT_HTTP_DELAY_BEFORE_RETRY
        );
        assert_eq!(misc.timing.retry, 0);
        let Probe::Http(h) = &ssl.probe else { panic!() };
        assert_eq!(h.connect.target, "[fd00::21]:8443".parse().expect("addr"));
        assert_eq!(h.urls[0].host, "www.example.org");
        assert_eq!(
            h.tls,
            Some(Tls {
                server_name: Some("www.example.org".into()),
                verify: false,
                ca_file: None
            })
        );
        assert!(h.urls[0].status.contains(402) && !h.urls[0].status.contains(404));
    }

    fn errors(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keeper.toml");
        std::fs::write(&path, text).expect("write");
        match crate::config::load(&path, Vec::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn checker_settings_that_cannot_run_are_refused() {
        let e = errors(
            r#"
[virtual_server.fw]
fwmark = 1
[virtual_server.fw.real_server.a]
ip = "10.0.0.21"
tcp_check = { bindto = "fd00::1" }
notify_up = "/bin/echo 'unclosed"
[virtual_server.fw.real_server.a.http_get]
url.x = { path = "/", regex = "(" }
connect_port = 80
[virtual_server.fw.real_server.a.misc_check]
misc_path = "/bin/check \"x"
"#,
        );
        let has = |needle: &str| e.iter().any(|d| d.contains(needle));
        assert!(has("tcp_check: needs a port"), "{e:#?}");
        assert!(
            has("tcp_check.bindto: fd00::1 cannot reach 10.0.0.21"),
            "{e:#?}"
        );
        assert!(has("url.x.regex: invalid regex"), "{e:#?}");
        assert!(
            has("notify_up: unterminated ' in \"/bin/echo 'unclosed\""),
            "{e:#?}"
        );
        assert!(has("misc_path"), "{e:#?}");
        assert!(
            !has("http_get: needs a port"),
            "connect_port is enough: {e:#?}"
        );
        assert_eq!(e.len(), 5, "{e:#?}");
    }

    #[test]
    fn ipv6_host_header_is_bracketed() {
        assert_eq!(
            host_of("[fd00::1]:80".parse().expect("addr")),
            "[fd00::1]:80"
        );
        assert_eq!(parse_digest("zz3a0c85a887a256d6939da88aabd8cd"), None);
        assert_eq!(parse_digest("00"), None);
    }
}
