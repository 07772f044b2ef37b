//! Logging: to journald when started by systemd with its journal (`JOURNAL_STREAM` set), plain
//! text to stderr otherwise. The level comes from `RUST_LOG` if set, else `global.log_level`,
//! else `info`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. Safe to call once per process.
pub fn init(config_level: Option<&str>) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| config_level.and_then(|l| EnvFilter::try_new(l).ok()))
        .unwrap_or_else(|| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => {
                registry
                    .with(journald.with_syslog_identifier("keeperd".into()))
                    .init();
                return;
            }
            Err(e) => eprintln!("keeperd: journald unavailable ({e}); logging to stderr"),
        }
    }
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .init();
}
