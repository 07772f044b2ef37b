//! Logging: to journald when stderr is systemd's journal stream (`JOURNAL_STREAM` names
//! stderr's device and inode), plain text to stderr otherwise (coloured on a terminal only).
//! The level comes from `RUST_LOG` if set, else `global.log_level`, else `info`.
//!
//! In the journal every event field becomes a field named `KEEPER_<FIELD>`: `instance`,
//! `vrid`, `state`, `real_server`, ... are `KEEPER_INSTANCE`, `KEEPER_VRID`, `KEEPER_STATE`,
//! `KEEPER_REAL_SERVER` (`journalctl KEEPER_INSTANCE=VI_1`). The prefix keeps them apart from
//! the journal's own fields (a `priority` field must not become the log level `PRIORITY`).

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
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(journald) => {
                registry
                    .with(
                        journald
                            .with_syslog_identifier("keeperd".into())
                            .with_field_prefix(Some(JOURNAL_FIELD_PREFIX.into())),
                    )
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
                // Colours only on a terminal: a log file or a pipe gets `refused=2`, not escape
                // sequences between a field's name and its value.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .init();
}

/// Prefix of keeperd's own journal fields.
pub const JOURNAL_FIELD_PREFIX: &str = "KEEPER";

/// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` is
/// `DEVICE:INODE` of that stream (systemd.exec(5)); a redirected stderr keeps plain text.
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr()) {
        Ok(st) => st.st_dev == dev && st.st_ino == ino,
        Err(_) => false,
    }
}
