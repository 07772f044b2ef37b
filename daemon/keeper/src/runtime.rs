//! The daemon's event loop: signals, reloads, and (as they land) the VRRP, IPVS and checker
//! drivers.

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};

use crate::config::{self, Loaded};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the event loop: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs until SIGTERM or SIGINT.
pub fn run(loaded: Loaded, config_path: PathBuf) -> Result<(), RuntimeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(event_loop(loaded, config_path))
}

async fn event_loop(mut loaded: Loaded, config_path: PathBuf) -> Result<(), RuntimeError> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tracing::info!(
        instances = loaded.config.vrrp_instance.len(),
        virtual_servers = loaded.config.virtual_server.len(),
        "keeperd started"
    );
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                // Parse and validate first; an invalid file keeps the running configuration.
                match config::load(&config_path, std::env::vars()) {
                    Ok(new) => {
                        for w in &new.warnings {
                            tracing::warn!("{w}");
                        }
                        loaded = new;
                        tracing::info!(instances = loaded.config.vrrp_instance.len(), "configuration reloaded");
                    }
                    Err(errors) => {
                        for e in &errors {
                            tracing::error!("{e}");
                        }
                        tracing::error!("reload refused ({} errors); the running configuration stays", errors.len());
                    }
                }
            }
        }
    }
    tracing::info!("keeperd stopping");
    Ok(())
}
