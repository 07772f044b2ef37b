//! The daemon's event loop: signals, reloads, and the drivers (VRRP now; IPVS and checkers as
//! they land).

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};

use crate::config::{self, Loaded};
use crate::control::{self, InstanceView, Pending, Request, Response, Status};
use crate::notify::{Notifier, NotifyState};
use crate::vrrp::driver::{Driver, DriverError, Setup};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the event loop: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Vrrp(#[from] DriverError),
    #[error("notify scripts: {0}")]
    Notify(String),
}

/// How long stop notifications (`notify_stop`, STOP mail) may take at shutdown.
const NOTIFY_STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs until SIGTERM or SIGINT.
pub fn run(loaded: Loaded, config_path: PathBuf) -> Result<(), RuntimeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(event_loop(loaded, config_path))
}

async fn event_loop(loaded: Loaded, config_path: PathBuf) -> Result<(), RuntimeError> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // --- notify (notify/): scripts, notify_fifo, SMTP alerts on state changes.
    let notifier = Notifier::start(
        &loaded.config,
        Notifier::runner_for(&loaded.config).map_err(RuntimeError::Notify)?,
    );
    // --- end notify
    let mut driver = Driver::start(Setup::from_config(&loaded.config)).await?;
    // --- notify: the transitions `Driver::start` made before anyone could subscribe, then
    // every later one through the broadcast (nothing runs between the two).
    for s in driver.status() {
        if let Some((at, transition)) = s.last_transition {
            notifier.vrrp_change(&crate::vrrp::driver::StateChange {
                instance: s.name.clone(),
                vrid: s.vrid,
                priority: s.priority,
                transition,
                at,
            });
        }
    }
    let mut changes = driver.subscribe();
    let mut group_changes = driver.subscribe_groups();
    // --- end notify
    let socket_path = loaded.config.global.control_socket.clone();
    let mut requests = control::serve(&socket_path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("control socket {}: {e}", socket_path.display()),
        )
    })?;
    let mut running = loaded;
    tracing::info!(
        instances = running.config.vrrp_instance.len(),
        virtual_servers = running.config.virtual_server.len(),
        "keeperd started"
    );
    loop {
        let input = tokio::select! {
            input = driver.next_input() => input,
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if reload(&config_path, &mut running, &mut driver).await.0 {
                    notifier.reconfigure(&running.config);
                }
                continue;
            }
            // notify: hand each state change over; this never waits for scripts or mail.
            change = changes.recv() => {
                match change {
                    Ok(c) => notifier.vrrp_change(&c),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => notifier.lagged(n),
                    // The driver owns the sender and outlives this loop.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => changes = driver.subscribe(),
                }
                continue;
            }
            change = group_changes.recv() => {
                match change {
                    Ok(g) => {
                        if let Some(state) = match g.to {
                            keeper_vrrp::State::Master => Some(NotifyState::Master),
                            keeper_vrrp::State::Backup => Some(NotifyState::Backup),
                            keeper_vrrp::State::Fault => Some(NotifyState::Fault),
                            keeper_vrrp::State::Initialize => None,
                        } {
                            notifier.group(&g.group, state);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => notifier.lagged(n),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => group_changes = driver.subscribe_groups(),
                }
                continue;
            }
            Some(Pending { request, reply }) = requests.recv() => {
                let response = match request {
                    Request::Status => Response::Status(Status {
                        instances: driver.status().iter().map(InstanceView::from).collect(),
                        vrrp_unmatched: driver.unmatched,
                        vrrp_malformed: driver.malformed,
                    }),
                    Request::Reload => {
                        let (ok, message) = reload(&config_path, &mut running, &mut driver).await;
                        if ok {
                            notifier.reconfigure(&running.config);
                        }
                        Response::Reloaded { ok, message }
                    }
                };
                let _ = reply.send(response);
                continue;
            }
        };
        driver.process(input).await;
    }
    tracing::info!("keeperd stopping: releasing virtual addresses");
    let stopping: Vec<(String, u8)> = driver
        .status()
        .into_iter()
        .map(|s| (s.name, s.priority))
        .collect();
    driver.shutdown().await;
    // notify: STOP notifications after the VIPs are released (failover first), bounded.
    notifier.stop(&stopping, NOTIFY_STOP_BOUND).await;
    let _ = std::fs::remove_file(&socket_path);
    Ok(())
}

/// Parses and validates first; an invalid configuration keeps the running one. Applying
/// differences without disturbing running instances is not implemented yet: a changed VRRP
/// configuration is logged and needs a restart.
async fn reload(
    config_path: &std::path::Path,
    running: &mut Loaded,
    driver: &mut Driver,
) -> (bool, String) {
    match config::load(config_path, std::env::vars()) {
        Ok(new) => {
            for w in &new.warnings {
                tracing::warn!("{w}");
            }
            // Only the differences are applied: unchanged instances are not touched.
            driver.reload(Setup::from_config(&new.config)).await;
            *running = new;
            let message = "configuration reloaded".to_string();
            tracing::info!("{message}");
            (true, message)
        }
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            let message = format!(
                "reload refused ({} errors); the running configuration stays",
                errors.len()
            );
            tracing::error!("{message}");
            (false, message)
        }
    }
}
