//! The daemon's event loop: signals, reloads, and the drivers (VRRP now; IPVS and checkers as
//! they land).

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};

use crate::check::{self, Checkers};
use crate::config::{self, Loaded};
use crate::control::{self, InstanceView, Pending, Request, Response, Status};
use crate::vrrp::driver::{Driver, DriverError};
use crate::vrrp::plan;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the event loop: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Vrrp(#[from] DriverError),
}

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
    let (plans, _) = plan::plan(&loaded.config);
    let mut driver = Driver::start(plans, loaded.config.global.dynamic_interfaces).await?;
    let mut checkers = Checkers::start(check::plan::plan(&loaded.config));
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
                reload(&config_path, &mut running, &checkers);
                continue;
            }
            Some(verdict) = checkers.next_verdict() => {
                // A real server's health changed (logged by the checkers); the IPVS reconcile
                // takes it from here: RealServerHealth { up: verdict.up, weight: verdict.weight }.
                let _ = verdict;
                continue;
            }
            Some(Pending { request, reply }) = requests.recv() => {
                let response = match request {
                    Request::Status => Response::Status(Status {
                        instances: driver.status().iter().map(InstanceView::from).collect(),
                        vrrp_unmatched: driver.unmatched,
                        vrrp_malformed: driver.malformed,
                        real_servers: checkers.status().iter().map(Into::into).collect(),
                        checker: Some(checkers.stats().into()),
                    }),
                    Request::Reload => {
                        let (ok, message) = reload(&config_path, &mut running, &checkers);
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
    // omega notify_down scripts run while VRRP releases its addresses.
    tokio::join!(driver.shutdown(), checkers.shutdown());
    let _ = std::fs::remove_file(&socket_path);
    Ok(())
}

/// Parses and validates first; an invalid configuration keeps the running one. Applying
/// differences without disturbing running instances is not implemented yet: a changed VRRP
/// configuration is logged and needs a restart.
fn reload(
    config_path: &std::path::Path,
    running: &mut Loaded,
    checkers: &Checkers,
) -> (bool, String) {
    match config::load(config_path, std::env::vars()) {
        Ok(new) => {
            for w in &new.warnings {
                tracing::warn!("{w}");
            }
            // Health checks apply the difference: unchanged real servers keep their state.
            checkers.reload(check::plan::plan(&new.config));
            let message = if new.config.vrrp_instance != running.config.vrrp_instance
                || new.config.global != running.config.global
            {
                "reload: VRRP changes are not applied by reload yet (accepted, not implemented); restart keeperd to apply them"
            } else if new.config.virtual_server != running.config.virtual_server {
                "configuration reloaded; health checks updated"
            } else {
                "configuration reloaded; nothing to change"
            };
            tracing::warn!("{message}");
            *running = new;
            (true, message.to_string())
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
