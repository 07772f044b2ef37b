//! SMTP alerts: keepalived's messages (`[router_id] VRRP Instance VI_1 - Entering MASTER
//! state`), sent by a task of its own over plain SMTP with `lettre`.
//!
//! Nothing waits for mail: alerts go into a bounded queue (a full queue drops the alert, logged
//! and counted), and the mail task sends them one after the other, each bounded by
//! `smtp_connect_timeout` per SMTP exchange and by [`SEND_BOUND_FACTOR`] times it in all. Mail
//! that cannot be delivered is logged and counted, never retried (keepalived does not either).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::mpsc;

/// Alerts waiting for the mail task; more are dropped and counted.
const QUEUE: usize = 64;
/// A whole send (connect, HELO, MAIL, RCPT, DATA, QUIT) is bounded by this many connect
/// timeouts.
pub const SEND_BOUND_FACTOR: u32 = 3;

/// Where and how mail goes (global settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailSettings {
    pub server: String,
    pub port: u16,
    pub helo: String,
    pub from: String,
    pub to: Vec<String>,
    pub timeout: Duration,
    /// `[router_id]` in subjects.
    pub router_id: String,
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub subject: String,
    pub body: String,
}

/// keepalived's VRRP subjects and bodies (`vrrp_smtp_notifier`, `vrrp_sync_smtp_notifier`).
/// `None` for a state that sends no mail.
pub fn vrrp_alert(router_id: &str, group: bool, name: &str, state: &str) -> Option<Alert> {
    let (what, body) = match (group, state) {
        (false, "MASTER") => (
            "Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
        ),
        (false, "BACKUP") => (
            "Entering BACKUP state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (false, "FAULT") => (
            "Entering FAULT state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (false, "STOP") => ("Stopping", "=> VRRP Instance stopping <="),
        (true, "MASTER") => (
            "Entering MASTER state",
            "=> All VRRP group instances are now in MASTER state <=",
        ),
        (true, "BACKUP") => (
            "Entering BACKUP state",
            "=> All VRRP group instances are now in BACKUP state <=",
        ),
        (true, "FAULT") => (
            "Entering FAULT state",
            "=> All VRRP group instances are now in FAULT state <=",
        ),
        (true, "STOP") => (
            "Stopping",
            "=> All VRRP group instances are now stopping <=",
        ),
        _ => return None,
    };
    let kind = if group { "Group" } else { "Instance" };
    Some(Alert {
        subject: format!("[{router_id}] VRRP {kind} {name} - {what}"),
        body: body.to_string(),
    })
}

/// keepalived's real-server subject (`SMTP_MSG_RS`): `[router_id] Realserver RS of virtual
/// server VS - UP|DOWN`, with the body the checker gives (e.g. `=> TCP CHECK failed on
/// service <=`).
pub fn real_server_alert(
    router_id: &str,
    virtual_server: &str,
    real_server: &str,
    up: bool,
    body: &str,
) -> Alert {
    Alert {
        subject: format!(
            "[{router_id}] Realserver {real_server} of virtual server {virtual_server} - {}",
            if up { "UP" } else { "DOWN" }
        ),
        body: body.to_string(),
    }
}

/// Mail counters.
#[derive(Debug, Default)]
pub struct MailStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// Queues alerts for the mail task. Dropping every clone ends the task after the queue is
/// sent (or its time is up).
#[derive(Clone, Debug)]
pub struct Mailer {
    tx: mpsc::Sender<Alert>,
    stats: Arc<MailStats>,
    settings: Arc<MailSettings>,
}

impl Mailer {
    /// Starts the mail task; needs a tokio runtime. Recipient addresses that do not parse
    /// are logged and skipped; with none left, or a sender that does not parse, there is no
    /// mailer (`Err` says why).
    pub fn start(settings: MailSettings) -> Result<(Mailer, tokio::task::JoinHandle<()>), String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("notification_email_from {:?}: {e}", settings.from))?;
        let mut to = Vec::new();
        for addr in &settings.to {
            match addr.parse::<Mailbox>() {
                Ok(m) => to.push(m),
                Err(e) => tracing::error!("notification_email {addr:?}: {e}; skipped"),
            }
        }
        if to.is_empty() {
            return Err("no usable notification_email address".into());
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.server)
            .port(settings.port)
            .hello_name(ClientId::Domain(settings.helo.clone()))
            .timeout(Some(settings.timeout))
            .build();
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(MailStats::default());
        let bound = settings.timeout.saturating_mul(SEND_BOUND_FACTOR);
        let task = tokio::spawn(send_all(
            rx,
            transport,
            from,
            to,
            bound,
            stats.clone(),
            format!("{}:{}", settings.server, settings.port),
        ));
        Ok((
            Mailer {
                tx,
                stats,
                settings: Arc::new(settings),
            },
            task,
        ))
    }

    /// Queues `alert` without waiting.
    pub fn send(&self, alert: Alert) {
        if let Err(e) = self.tx.try_send(alert) {
            let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let subject = match e {
                mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => {
                    a.subject
                }
            };
            tracing::error!(
                dropped = n,
                "SMTP alert queue full: not sending {subject:?}"
            );
        }
    }

    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    /// The counters, shared with the mail task.
    pub fn stats(&self) -> Arc<MailStats> {
        self.stats.clone()
    }
}

async fn send_all(
    mut rx: mpsc::Receiver<Alert>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    bound: Duration,
    stats: Arc<MailStats>,
    server: String,
) {
    while let Some(alert) = rx.recv().await {
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(alert.subject.clone())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Mailer"),
                "keeper".to_string(),
            ));
        for m in &to {
            builder = builder.to(m.clone());
        }
        let message = match builder.body(format!("{}\r\n", alert.body)) {
            Ok(m) => m,
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "SMTP alert {:?}: cannot build the message: {e}",
                    alert.subject
                );
                continue;
            }
        };
        match tokio::time::timeout(bound, transport.send(message)).await {
            Ok(Ok(_)) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(server = %server, "SMTP alert sent: {}", alert.subject);
            }
            Ok(Err(e)) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(server = %server, "SMTP alert {:?} not delivered: {e}", alert.subject);
            }
            Err(_) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(server = %server, "SMTP alert {:?} not delivered: no answer within {bound:?}", alert.subject);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_subjects_and_bodies() {
        assert_eq!(
            vrrp_alert("lb1", false, "VI_1", "MASTER"),
            Some(Alert {
                subject: "[lb1] VRRP Instance VI_1 - Entering MASTER state".into(),
                body: "=> VRRP Instance is now owning VRRP VIPs <=".into(),
            })
        );
        assert_eq!(
            vrrp_alert("lb1", true, "G1", "FAULT").map(|a| a.subject),
            Some("[lb1] VRRP Group G1 - Entering FAULT state".into())
        );
        assert_eq!(
            vrrp_alert("lb1", false, "VI_1", "STOP").map(|a| a.subject),
            Some("[lb1] VRRP Instance VI_1 - Stopping".into())
        );
        assert_eq!(vrrp_alert("lb1", false, "VI_1", "INIT"), None);
        assert_eq!(
            real_server_alert(
                "lb1",
                "10.0.0.100:80",
                "10.0.0.21:80",
                false,
                "=> TCP CHECK failed on service <="
            )
            .subject,
            "[lb1] Realserver 10.0.0.21:80 of virtual server 10.0.0.100:80 - DOWN"
        );
    }

    fn settings(port: u16, timeout: Duration) -> MailSettings {
        MailSettings {
            server: "127.0.0.1".into(),
            port,
            helo: "test".into(),
            from: "keeper@example.invalid".into(),
            to: vec!["ops@example.invalid".into()],
            timeout,
            router_id: "lb1".into(),
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A server that accepts the connection and never says a word: the send is given up at
    /// the bound, and `send` itself never waits.
    #[tokio::test]
    async fn a_silent_server_costs_the_mail_task_its_bound_and_nobody_else_anything() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                conns.push(c);
            }
        });
        let (mailer, _task) =
            Mailer::start(settings(port, Duration::from_millis(200))).expect("mailer");
        // The test runs on one thread: `send` returning at all shows it does not wait for
        // the server.
        for _ in 0..3 {
            mailer.send(Alert {
                subject: "s".into(),
                body: "b".into(),
            });
        }
        wait_for("three failures", || {
            mailer.stats().failed.load(Ordering::Relaxed) == 3
        })
        .await;
        assert_eq!(mailer.stats().sent.load(Ordering::Relaxed), 0);
        held.abort();
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (mailer, _task) =
            Mailer::start(settings(port, Duration::from_secs(30))).expect("mailer");
        for _ in 0..(QUEUE + 10) {
            mailer.send(Alert {
                subject: "s".into(),
                body: "b".into(),
            });
        }
        // The task holds at most one alert out of the queue.
        assert!(mailer.stats().dropped.load(Ordering::Relaxed) >= 9);
        drop(listener);
    }
}
