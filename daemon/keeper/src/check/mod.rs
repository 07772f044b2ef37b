//! Health checks of the real servers, with keepalived's semantics: `tcp_check`, `http_get`,
//! `ssl_get`, `misc_check`, `udp_check`, `dns_check`, `ping_check`, `smtp_check` and
//! `file_check`, their timing (`delay_loop`, `connect_timeout`, `retry`,
//! `delay_before_retry`, `warmup`, `alpha`, `omega`), `notify_up` / `notify_down`, and each
//! virtual server's `quorum` with `quorum_up` / `quorum_down`.
//!
//! - [`plan`]: configuration → what runs (defaults and inheritance applied), pure.
//! - [`machine`]: the decisions (per checker and per real server), pure, on virtual time.
//! - [`quorum`]: a virtual server's quorum (shared with the IPVS desired table), pure.
//! - [`tcp`], [`http`], [`tls`], [`script`], [`udp`], [`dns`], [`ping`], [`smtp`]: one attempt
//!   of each kind (thin I/O around pure codecs: [`icmp`], the SMTP conversation, hex patterns,
//!   DNS messages); [`file`]: a file's value as a checker state.
//! - [`engine`]: the driver task: scheduling, bounded concurrency, verdicts, notify, quorum,
//!   status.
//!
//! Consumers hold a [`Checkers`]: a stream of [`Verdict`]s keyed by virtual server and real
//! server name (first the verdict each real server starts with: UP, or DOWN under `alpha`;
//! then every change), and [`Checkers::health`] for the current verdict of every real server.
//! The IPVS reconcile maps a verdict field by field ([`Health`] has the same shape):
//! `HealthUpdate { id: RealServerId::new(v.key.virtual_server, v.key.real_server),
//! health: RealServerHealth { up: v.up, weight: v.weight } }`.

pub mod dns;
pub mod engine;
pub mod file;
pub mod http;
pub mod icmp;
pub mod machine;
pub mod ping;
pub mod plan;
pub mod quorum;
pub mod script;
pub mod smtp;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::collections::BTreeMap;

use tokio::sync::{mpsc, oneshot};

pub use engine::{CheckStatus, EngineStats, Health, QuorumStatus, ServerStatus, Verdict};
pub use plan::{Plan, ServerKey};

/// The running checkers. Dropping it stops them (without `omega` notifies: use
/// [`Checkers::shutdown`]).
pub struct Checkers {
    commands: mpsc::UnboundedSender<engine::Command>,
    verdicts: mpsc::UnboundedReceiver<Verdict>,
    board: std::sync::Arc<std::sync::Mutex<engine::Board>>,
}

impl Checkers {
    /// Starts checking every real server of the plan `plan` resolves to, on the current tokio
    /// runtime (keeperd gives it after the first IPVS pass: see `lvs::FirstPass`); `None`
    /// starts with no real servers. Commands sent meanwhile wait. `scripts`: keeperd's script
    /// runner, which runs the checkers' scripts (`misc_path`, notify, quorum).
    pub fn start(
        plan: impl std::future::Future<Output = Option<Plan>> + Send + 'static,
        scripts: crate::launcher::ScriptRunner,
    ) -> Checkers {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (verdict_tx, verdicts) = mpsc::unbounded_channel();
        let board = engine::new_board();
        let e = engine::Engine::new(verdict_tx, board.clone(), command_rx, scripts);
        tokio::spawn(async move { e.run(plan.await.unwrap_or_default()).await });
        Checkers {
            commands,
            verdicts,
            board,
        }
    }

    /// The next verdict (initial or changed). Cancel-safe (for `tokio::select!`); pending forever once
    /// the checkers stopped.
    pub async fn next_verdict(&mut self) -> Option<Verdict> {
        self.verdicts.recv().await
    }

    /// The current verdict of every real server.
    pub fn health(&self) -> BTreeMap<ServerKey, Health> {
        engine::snapshot(&self.board)
            .0
            .into_iter()
            .map(|s| (s.key, s.health))
            .collect()
    }

    /// Every real server with its checkers, in configuration order.
    pub fn status(&self) -> Vec<ServerStatus> {
        engine::snapshot(&self.board).0
    }

    /// Every virtual server's quorum, in configuration order.
    pub fn quorums(&self) -> Vec<QuorumStatus> {
        engine::quorums(&self.board)
    }

    pub fn stats(&self) -> EngineStats {
        engine::snapshot(&self.board).1
    }

    /// Applies a new plan: unchanged real servers keep their state and schedule.
    pub fn reload(&self, plan: Plan) {
        let _ = self.commands.send(engine::Command::Reload(plan));
    }

    /// Stops every check and, under `omega`, runs `notify_down` for the real servers still UP
    /// (each bounded by [`engine::OMEGA_TIMEOUT`], as keepalived).
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(engine::Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
