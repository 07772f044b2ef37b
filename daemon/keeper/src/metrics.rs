//! Prometheus metrics (opt-in: `global.metrics_listen`), served as OpenMetrics text on
//! `GET /metrics` by a small HTTP/1.1 server.
//!
//! Every family is named `keeper_<subsystem>_<name>[_<unit>][_total]` (Prometheus naming
//! conventions; the `_total` suffix of counters and the unit suffix are added by the encoder).
//! Labels never use `instance` or `job`, which Prometheus sets itself: a VRRP instance is
//! `vrrp_instance`, a virtual server `virtual_server`, a real server `real_server`.
//!
//! VRRP families are read from the event loop's own counters at scrape time (the loop answers
//! a refresh request between two inputs, like a status request). Other subsystems own their
//! metrics and register them once through [`Metrics::register`], then update them directly:
//!
//! ```
//! use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};
//! use prometheus_client::registry::Unit;
//! # let metrics = keeper::metrics::Metrics::new();
//! type CheckLabels = Vec<(&'static str, String)>; // or a #[derive(EncodeLabelSet)] struct
//! let results = Family::<CheckLabels, Counter>::default();
//! metrics.register("check_results", "Health check results by outcome", results.clone());
//! let latency = Family::<CheckLabels, Histogram>::new_with_constructor(|| {
//!     Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 14))
//! });
//! metrics.register_with_unit("check_duration", "Health check duration", Unit::Seconds, latency.clone());
//! let labels = vec![("virtual_server", "web".to_string()), ("real_server", "rs1".to_string()), ("result", "up".to_string())];
//! results.get_or_create(&labels).inc();
//! // exposed as keeper_check_results_total{...} and keeper_check_duration_seconds_bucket{...}
//! ```

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keeper_vrrp::{DropReason, State};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::vrrp::driver::InstanceStatus;

/// The metric name prefix.
pub const PREFIX: &str = "keeper";
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// A scrape waits this long for the event loop's counters; longer is a 503 (a stalled loop
/// should show as a failed scrape, not as frozen numbers).
const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_CONNECTIONS: usize = 16;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST: usize = 8192;

/// What the event loop hands over at each scrape.
#[derive(Clone, Debug, Default)]
pub struct VrrpSnapshot {
    pub instances: Vec<InstanceStatus>,
    pub unmatched: u64,
    pub malformed: u64,
}

/// The registry every subsystem registers into. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    vrrp: Arc<Mutex<VrrpSnapshot>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register(
            "build",
            "keeperd version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let vrrp: Arc<Mutex<VrrpSnapshot>> = Arc::default();
        registry.register_collector(Box::new(VrrpCollector(vrrp.clone())));
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            vrrp,
        }
    }

    /// Registers `metric` as `keeper_<name>`: name it `<subsystem>_<what>` (`check_results`,
    /// `ipvs_services`), without `_total` (counters get it) and without a unit suffix (use
    /// [`Metrics::register_with_unit`]).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, metric);
        }
    }

    /// As [`Metrics::register`], with a unit suffix (`Unit::Seconds` -> `_seconds`).
    pub fn register_with_unit(&self, name: &str, help: &str, unit: Unit, metric: impl Metric) {
        if let Ok(mut r) = self.registry.lock() {
            r.register_with_unit(name, help, unit, metric);
        }
    }

    /// A collector encodes its families at each scrape (for values read from elsewhere, e.g.
    /// IPVS entries counted from a table another task owns).
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        if let Ok(mut r) = self.registry.lock() {
            r.register_collector(collector);
        }
    }

    /// Replaces the VRRP numbers (called by the event loop).
    pub fn set_vrrp(&self, snapshot: VrrpSnapshot) {
        if let Ok(mut v) = self.vrrp.lock() {
            *v = snapshot;
        }
    }

    /// The OpenMetrics text of every registered family.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        let r = self.registry.lock().map_err(|_| std::fmt::Error)?;
        prometheus_client::encoding::text::encode(&mut out, &r)?;
        Ok(out)
    }
}

#[derive(Debug)]
struct VrrpCollector(Arc<Mutex<VrrpSnapshot>>);

const STATES: [State; 4] = [
    State::Initialize,
    State::Backup,
    State::Master,
    State::Fault,
];

type Labels = Vec<(&'static str, String)>;

fn instance_labels(i: &InstanceStatus) -> Labels {
    vec![
        ("vrrp_instance", i.name.clone()),
        ("interface", i.interface.clone()),
        ("vrid", i.vrid.to_string()),
        (
            "family",
            match i.family {
                keeper_vrrp::Family::Ipv4 => "ipv4",
                keeper_vrrp::Family::Ipv6 => "ipv6",
            }
            .to_string(),
        ),
    ]
}

fn with(mut l: Labels, k: &'static str, v: String) -> Labels {
    l.push((k, v));
    l
}

impl Collector for VrrpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.lock().map(|s| s.clone()).unwrap_or_default();
        // State as an enum: one series per state, 1 for the current one.
        {
            let mut fam = encoder.encode_descriptor(
                "vrrp_state",
                "VRRP state of an instance: 1 for the current state, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for i in &snap.instances {
                for s in STATES {
                    let labels = with(instance_labels(i), "state", s.to_string());
                    ConstGauge::new(i64::from(i.state == s)).encode(fam.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut fam = encoder.encode_descriptor(
                "vrrp_priority",
                "Effective VRRP priority (configured priority adjusted by tracking)",
                None,
                MetricType::Gauge,
            )?;
            for i in &snap.instances {
                ConstGauge::new(i64::from(i.priority))
                    .encode(fam.encode_family(&instance_labels(i))?)?;
            }
        }
        type Pick = fn(&keeper_vrrp::Stats) -> u64;
        let counters: [(&str, &str, Pick); 6] = [
            ("vrrp_transitions", "VRRP state changes", |s| s.transitions),
            (
                "vrrp_became_master",
                "Times the instance became master",
                |s| s.became_master,
            ),
            ("vrrp_adverts_sent", "VRRP advertisements sent", |s| {
                s.adverts_sent
            }),
            (
                "vrrp_adverts_received",
                "VRRP advertisements received that passed every check",
                |s| s.adverts_received,
            ),
            (
                "vrrp_priority_zero_sent",
                "Priority 0 advertisements sent (this master stopped)",
                |s| s.priority_zero_sent,
            ),
            (
                "vrrp_priority_zero_received",
                "Priority 0 advertisements received (the master stopped)",
                |s| s.priority_zero_received,
            ),
        ];
        for (name, help, pick) in counters {
            let mut fam = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for i in &snap.instances {
                ConstCounter::new(pick(&i.stats))
                    .encode(fam.encode_family(&instance_labels(i))?)?;
            }
        }
        {
            let mut fam = encoder.encode_descriptor(
                "vrrp_drops",
                "VRRP packets for an instance dropped, by reason",
                None,
                MetricType::Counter,
            )?;
            for i in &snap.instances {
                for r in DropReason::ALL {
                    let labels = with(instance_labels(i), "reason", r.name().to_string());
                    ConstCounter::new(i.stats.drops.get(r)).encode(fam.encode_family(&labels)?)?;
                }
            }
        }
        for (name, help, v) in [
            (
                "vrrp_unmatched_packets",
                "VRRP packets for no configured instance (unknown VRID on the interface)",
                snap.unmatched,
            ),
            (
                "vrrp_malformed_packets",
                "VRRP packets with an unreadable IP header",
                snap.malformed,
            ),
        ] {
            let fam = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(v).encode(fam)?;
        }
        Ok(())
    }
}

/// A scrape's request for fresh VRRP numbers; the event loop calls [`Metrics::set_vrrp`] and
/// answers.
pub type Refresh = oneshot::Sender<()>;

/// Binds the listen address (before privileges are dropped, so a port below 1024 works).
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` on `listener` until the runtime ends.
pub fn serve(listener: TcpListener, metrics: Metrics, refresh: mpsc::Sender<Refresh>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("metrics: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                // Too many scrapers at once: close, rather than queue without bound.
                continue;
            };
            let metrics = metrics.clone();
            let refresh = refresh.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(REQUEST_TIMEOUT, handle(stream, &metrics, &refresh)).await;
                drop(permit);
            });
        }
    });
}

/// The request line of an HTTP request, or what is wrong with it.
fn parse_request(head: &[u8]) -> Result<(&str, &str), u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let line = text.lines().next().ok_or(400u16)?;
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || words.next().is_some() {
        return Err(400);
    }
    Ok((method, target))
}

async fn handle(mut stream: TcpStream, metrics: &Metrics, refresh: &mpsc::Sender<Refresh>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_REQUEST {
            let _ = respond(&mut stream, 431, "text/plain", "request too large\n").await;
            return;
        }
    }
    let (method, target) = match parse_request(&head) {
        Ok(r) => r,
        Err(code) => {
            let _ = respond(&mut stream, code, "text/plain", "bad request\n").await;
            return;
        }
    };
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let (tx, rx) = oneshot::channel();
            let fresh = refresh.send(tx).await.is_ok()
                && tokio::time::timeout(REFRESH_TIMEOUT, rx)
                    .await
                    .is_ok_and(|r| r.is_ok());
            if !fresh {
                let _ = respond(
                    &mut stream,
                    503,
                    "text/plain",
                    "keeperd's event loop did not answer\n",
                )
                .await;
                return;
            }
            match metrics.encode() {
                Ok(body) => {
                    let body = if method == "HEAD" {
                        String::new()
                    } else {
                        body
                    };
                    let _ = respond(&mut stream, 200, CONTENT_TYPE, &body).await;
                }
                Err(_) => {
                    let _ = respond(&mut stream, 500, "text/plain", "encoding failed\n").await;
                }
            }
        }
        ("GET" | "HEAD", "/") => {
            let _ = respond(
                &mut stream,
                200,
                "text/plain",
                "keeperd: metrics at /metrics\n",
            )
            .await;
        }
        ("GET" | "HEAD", _) => {
            let _ = respond(&mut stream, 404, "text/plain", "not found\n").await;
        }
        _ => {
            let _ = respond(&mut stream, 405, "text/plain", "method not allowed\n").await;
        }
    }
}

async fn respond(stream: &mut TcpStream, code: u16, ctype: &str, body: &str) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let mut head = String::new();
    let _ = write!(
        head,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if code == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use keeper_vrrp::{Family, Stats};

    fn status(name: &str, state: State) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 51,
            family: Family::Ipv4,
            state,
            priority: 100,
            master: None,
            vips: Vec::new(),
            last_transition: None,
            stats: Stats {
                adverts_sent: 7,
                transitions: 2,
                ..Stats::default()
            },
        }
    }

    #[test]
    fn vrrp_families_follow_the_conventions() {
        let m = Metrics::new();
        m.set_vrrp(VrrpSnapshot {
            instances: vec![status("VI_1", State::Master)],
            unmatched: 3,
            malformed: 0,
        });
        let text = m.encode().expect("encode");
        for line in [
            "# TYPE keeper_vrrp_state gauge",
            "keeper_vrrp_state{vrrp_instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\",state=\"master\"} 1",
            "keeper_vrrp_state{vrrp_instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\",state=\"backup\"} 0",
            "# TYPE keeper_vrrp_transitions counter",
            "keeper_vrrp_transitions_total{vrrp_instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 2",
            "keeper_vrrp_adverts_sent_total{vrrp_instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 7",
            "keeper_vrrp_drops_total{vrrp_instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\",reason=\"auth-failure\"} 0",
            "keeper_vrrp_unmatched_packets_total 3",
            "keeper_build_info{version=\"",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(!text.contains("instance=\"VI_1\"") || text.contains("vrrp_instance=\"VI_1\""));
        assert!(
            !text.contains(",instance="),
            "`instance` is Prometheus' own label"
        );
    }

    #[test]
    fn other_subsystems_register_their_own() {
        use prometheus_client::metrics::counter::Counter;
        use prometheus_client::metrics::family::Family;
        use prometheus_client::metrics::histogram::Histogram;
        let m = Metrics::new();
        let results = Family::<Labels, Counter>::default();
        m.register("check_results", "Health check results", results.clone());
        let h = Histogram::new([0.01, 0.1, 1.0]);
        m.register_with_unit("check_duration", "Check duration", Unit::Seconds, h.clone());
        results
            .get_or_create(&vec![("real_server", "rs1".to_string())])
            .inc();
        h.observe(0.05);
        let text = m.encode().expect("encode");
        assert!(
            text.contains("keeper_check_results_total{real_server=\"rs1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("keeper_check_duration_seconds_bucket{le=\"0.1\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(("GET", "/metrics"))
        );
        assert_eq!(parse_request(b"GET /metrics\r\n\r\n"), Err(400));
        assert_eq!(parse_request(b"\xff\xfe\r\n\r\n"), Err(400));
        assert_eq!(parse_request(b"GET / HTTP/1.1 extra\r\n\r\n"), Err(400));
        assert_eq!(parse_request(b"GET / SPDY/3\r\n\r\n"), Err(400));
    }

    async fn http(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn server_answers_scrapes_and_refuses_the_rest() {
        let listener = bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let m = Metrics::new();
        let (tx, mut rx) = mpsc::channel::<Refresh>(4);
        let loop_metrics = m.clone();
        // Stands in for the event loop: answers refreshes with a snapshot.
        tokio::spawn(async move {
            while let Some(done) = rx.recv().await {
                loop_metrics.set_vrrp(VrrpSnapshot {
                    instances: vec![status("VI_9", State::Backup)],
                    ..VrrpSnapshot::default()
                });
                let _ = done.send(());
            }
        });
        serve(listener, m, tx);
        let ok = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: application/openmetrics-text"),
            "{ok}"
        );
        assert!(ok.contains("state=\"backup\"} 1"), "{ok}");
        assert!(
            http(addr, b"POST /metrics HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 405")
        );
        assert!(
            http(addr, b"GET /nope HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            http(addr, b"garbage\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 400")
        );
        let huge = vec![b'a'; MAX_REQUEST + 10];
        assert!(http(addr, &huge).await.starts_with("HTTP/1.1 431"));
    }

    #[tokio::test]
    async fn a_stalled_event_loop_is_a_503() {
        let listener = bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Nobody answers refreshes.
        let (tx, _rx) = mpsc::channel::<Refresh>(4);
        serve(listener, Metrics::new(), tx);
        let r = http(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    }
}
