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
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Status(Status),
    Reloaded { ok: bool, message: String },
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

/// Binds the socket (replacing a stale one) with mode 0660 and serves it; requests arrive on
/// the returned channel.
pub fn serve(path: &Path) -> std::io::Result<mpsc::Receiver<Pending>> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(handle_client(stream, tx.clone()));
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

async fn handle_client(stream: UnixStream, tx: mpsc::Sender<Pending>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(64 * 1024)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = match serde_json::from_str::<Request>(&line) {
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
        };
        let mut text = serde_json::to_string(&response)
            .unwrap_or_else(|e| format!("{{\"error\":{{\"message\":\"{e}\"}}}}"));
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
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
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    std::io::BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
