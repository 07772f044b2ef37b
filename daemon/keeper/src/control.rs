//! The control socket: a Unix stream socket speaking one JSON object per line, request then
//! response. `keeperctl` is its client. Requests are answered by the event loop between two
//! inputs, so a status is always a consistent snapshot.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::vrrp::driver::InstanceStatus;

/// A request from keeperctl.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    Reload,
    /// The kernel's IPVS table with counters, and the sync daemons.
    Ipvs,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Status(Status),
    Reloaded { ok: bool, message: String },
    Ipvs(Box<crate::lvs::IpvsView>),
    Error { message: String },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub instances: Vec<InstanceView>,
    /// VRRP packets for no configured instance (unknown VRID on that interface).
    #[serde(default)]
    pub vrrp_unmatched: u64,
    /// VRRP packets with an unreadable IP header.
    #[serde(default)]
    pub vrrp_malformed: u64,
    /// Real servers with their health checks, in configuration order.
    #[serde(default)]
    pub real_servers: Vec<RealServerView>,
    #[serde(default)]
    pub checker: Option<CheckerStatsView>,
    /// Each virtual server's quorum (health checks), in configuration order.
    #[serde(default)]
    pub virtual_servers: Vec<QuorumView>,
}

/// A virtual server's quorum: the live weight of its real servers against `quorum` and
/// `hysteresis`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QuorumView {
    pub virtual_server: String,
    /// `up` (quorum) or `down`.
    pub state: String,
    pub weight: u64,
    pub quorum: u64,
    pub hysteresis: u64,
    /// Seconds since the Unix epoch of the last change (none since start: null).
    pub since: Option<f64>,
}

impl From<&crate::check::QuorumStatus> for QuorumView {
    fn from(q: &crate::check::QuorumStatus) -> Self {
        QuorumView {
            virtual_server: q.virtual_server.clone(),
            state: up_down(q.up),
            weight: q.weight,
            quorum: q.quorum,
            hysteresis: q.hysteresis,
            since: q.since.map(epoch_secs),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TransitionView {
    /// Seconds since the Unix epoch.
    pub at: f64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InstanceView {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub family: String,
    pub state: String,
    pub priority: u8,
    pub master: Option<String>,
    pub vips: Vec<String>,
    pub last_transition: Option<TransitionView>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub transitions: u64,
    /// Dropped packets by reason (only reasons seen).
    pub drops: std::collections::BTreeMap<String, u64>,
}

impl From<&InstanceStatus> for InstanceView {
    fn from(s: &InstanceStatus) -> Self {
        InstanceView {
            name: s.name.clone(),
            interface: s.interface.clone(),
            vrid: s.vrid,
            family: match s.family {
                keeper_vrrp::Family::Ipv4 => "ipv4".into(),
                keeper_vrrp::Family::Ipv6 => "ipv6".into(),
            },
            state: s.state.to_string(),
            priority: s.priority,
            master: s.master.map(|m| m.to_string()),
            vips: s.vips.iter().map(|v| v.to_string()).collect(),
            last_transition: s.last_transition.map(|(at, t)| TransitionView {
                at: at
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
                from: t.from.to_string(),
                to: t.to.to_string(),
                reason: t.reason.to_string(),
            }),
            adverts_sent: s.stats.adverts_sent,
            adverts_received: s.stats.adverts_received,
            transitions: s.stats.transitions,
            drops: s
                .stats
                .drops
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (r.name().to_string(), n))
                .collect(),
        }
    }
}

// --- health checks (check/) -----------------------------------------------------------------

fn epoch_secs(t: std::time::SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckView {
    /// `tcp_check`, `http_get`, `ssl_get`, `misc_check`.
    pub kind: String,
    /// `up` or `down`.
    pub state: String,
    /// Failed attempts since the last success (DOWN after `1 + retry`).
    pub failures: u32,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RealServerView {
    pub virtual_server: String,
    pub real_server: String,
    pub address: String,
    /// `up` or `down`.
    pub state: String,
    /// The weight in effect: a `misc_dynamic` weight, else the configured one.
    pub weight: u32,
    pub dynamic_weight: bool,
    /// Seconds since the Unix epoch of the last change of state (none since start: null).
    pub since: Option<f64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<f64>,
    pub checks: Vec<CheckView>,
}

fn up_down(up: bool) -> String {
    if up { "up" } else { "down" }.to_string()
}

impl From<&crate::check::ServerStatus> for RealServerView {
    fn from(s: &crate::check::ServerStatus) -> Self {
        RealServerView {
            virtual_server: s.key.virtual_server.clone(),
            real_server: s.key.real_server.clone(),
            address: s.address.to_string(),
            state: up_down(s.health.up),
            weight: s.health.weight.unwrap_or(s.weight),
            dynamic_weight: s.health.weight.is_some(),
            since: s.since.map(epoch_secs),
            last_error: s.last_error.clone(),
            last_error_at: s.last_error_at.map(epoch_secs),
            checks: s
                .checks
                .iter()
                .map(|c| CheckView {
                    kind: c.kind.name().to_string(),
                    state: up_down(c.up),
                    failures: c.failures,
                    attempts: c.attempts,
                    last_error: c.last_error.clone(),
                    last_duration_ms: c.last_duration.map(|d| d.as_secs_f64() * 1000.0),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckerStatsView {
    pub attempts: u64,
    pub in_flight: usize,
    pub limit: usize,
    /// Attempts started later than 10 % of their interval after they were due.
    pub late_starts: u64,
    pub max_lateness_ms: f64,
    /// Attempts by start lateness: under 1 ms, 4 ms, 16 ms, 64 ms, 256 ms, 1 s, and longer.
    #[serde(default)]
    pub lateness_histogram: Vec<u64>,
}

impl From<crate::check::EngineStats> for CheckerStatsView {
    fn from(s: crate::check::EngineStats) -> Self {
        CheckerStatsView {
            attempts: s.attempts,
            in_flight: s.in_flight,
            limit: s.limit,
            late_starts: s.late_starts,
            max_lateness_ms: s.max_lateness_us as f64 / 1000.0,
            lateness_histogram: s.lateness_histogram.to_vec(),
        }
    }
}

// --- end of health checks

/// A request waiting for the event loop's answer.
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

/// Who may use the control socket: root, keeperd's own user, and members of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// keeperd's uid after start (the socket's owner).
    pub daemon_uid: u32,
    /// The socket's group (`global.control_socket_group`, else keeperd's primary group).
    pub gid: u32,
    /// For messages.
    pub group_name: String,
}

impl Access {
    /// This process's own identity: its uid and primary group.
    pub fn current() -> Access {
        let gid = nix::unistd::Gid::effective().as_raw();
        Access {
            daemon_uid: nix::unistd::Uid::effective().as_raw(),
            gid,
            group_name: group_name(gid),
        }
    }

    /// Whether a peer with these credentials may send requests.
    pub fn allows(&self, uid: u32, gid: u32, groups: &[u32]) -> bool {
        uid == 0 || uid == self.daemon_uid || gid == self.gid || groups.contains(&self.gid)
    }
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| format!("gid {gid}"))
}

/// The supplementary groups of a connected peer (SO_PEERGROUPS, Linux 4.13+).
fn peer_groups(stream: &UnixStream) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<u32>()) as libc::socklen_t;
        // SAFETY: getsockopt(2) into a buffer of `len` bytes that lives across the call.
        let r = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<u32>();
        if r == 0 {
            groups.truncate(n);
            return groups;
        }
        // ERANGE tells the size needed.
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE)
            && n > groups.len()
            && n <= 65536
        {
            groups.resize(n, 0);
            continue;
        }
        return Vec::new();
    }
}

/// Binds the socket (replacing a stale one) with mode 0660, owned by keeperd's user and the
/// access group, and serves it; requests arrive on the returned channel.
pub fn serve(path: &Path) -> std::io::Result<mpsc::Receiver<Pending>> {
    serve_with(path, Access::current())
}

/// As [`serve`] with explicit access. Started as root, keeperd binds before it drops
/// privileges and hands the socket to its own user here.
pub fn serve_with(path: &Path, access: Access) -> std::io::Result<mpsc::Receiver<Pending>> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
        // A directory made here (not by systemd's RuntimeDirectory=) belongs to keeperd's user,
        // so that it can remove its socket at exit.
        let _ = std::os::unix::fs::chown(dir, Some(access.daemon_uid), Some(access.gid));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let owner =
        (nix::unistd::Uid::effective().as_raw() != access.daemon_uid).then_some(access.daemon_uid);
    std::os::unix::fs::chown(path, owner, Some(access.gid)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("giving the socket to group {}: {e}", access.group_name),
        )
    })?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let refused = match stream.peer_cred() {
                        Ok(c) => (!access.allows(c.uid(), c.gid(), &peer_groups(&stream)))
                            .then(|| (c.uid(), c.pid())),
                        Err(_) => Some((u32::MAX, None)),
                    };
                    match refused {
                        None => {
                            tokio::spawn(handle_client(stream, tx.clone()));
                        }
                        Some((uid, pid)) => {
                            tracing::warn!(
                                uid,
                                pid = pid.unwrap_or(0),
                                "control socket: refused a client that is neither root, keeperd's user, nor in group {}",
                                access.group_name
                            );
                            tokio::spawn(refuse(stream, uid, access.group_name.clone()));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("control socket: {e}");
                    return;
                }
            }
        }
    });
    Ok(rx)
}

async fn refuse(mut stream: UnixStream, uid: u32, group: String) {
    // Read the request first (bounded), so that the client gets the answer rather than a
    // broken pipe on its write.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        BufReader::new((&mut stream).take(MAX_REQUEST as u64)).read_until(b'\n', &mut sink),
    )
    .await;
    let response = Response::Error {
        message: format!(
            "permission denied: uid {uid} is neither root, keeperd's user, nor in group {group}"
        ),
    };
    if let Ok(mut text) = serde_json::to_string(&response) {
        text.push('\n');
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            stream.write_all(text.as_bytes()),
        )
        .await;
    }
}

/// The longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;
/// A client that sends nothing for this long is disconnected.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Answers one client's requests in order. Anything that is not a request (not JSON, not
/// UTF-8, unknown command, too long) gets an error response; blank lines are ignored.
async fn handle_client(stream: UnixStream, tx: mpsc::Sender<Pending>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut limit = (&mut reader).take(MAX_REQUEST as u64 + 1);
        match tokio::time::timeout(IDLE_TIMEOUT, limit.read_until(b'\n', &mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
        let too_long = buf.len() > MAX_REQUEST;
        let response = if too_long {
            Response::Error {
                message: format!("request not understood: longer than {MAX_REQUEST} bytes"),
            }
        } else {
            match std::str::from_utf8(&buf) {
                Err(e) => Response::Error {
                    message: format!("request not understood: not UTF-8 ({e})"),
                },
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => match serde_json::from_str::<Request>(line) {
                    Ok(request) => {
                        let (reply, answer) = oneshot::channel();
                        if tx.send(Pending { request, reply }).await.is_err() {
                            return;
                        }
                        match answer.await {
                            Ok(r) => r,
                            Err(_) => return,
                        }
                    }
                    Err(e) => Response::Error {
                        message: format!("request not understood: {e}"),
                    },
                },
            }
        };
        let mut text = serde_json::to_string(&response)
            .unwrap_or_else(|e| format!("{{\"error\":{{\"message\":\"{e}\"}}}}"));
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() || too_long {
            // The rest of an overlong line cannot be told from the next request: hang up.
            return;
        }
    }
}

/// Client side: sends one request and reads the answer (blocking; for keeperctl and tests).
pub fn request(path: &PathBuf, request: &Request) -> std::io::Result<Response> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
    line.push('\n');
    // A refused client may find the socket closed under its write: the answer is still there.
    if let Err(e) = stream.write_all(line.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e);
    }
    let mut answer = String::new();
    std::io::BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
