//! keeperd: configuration, drivers (VRRP on the wire, VIPs, IPVS), health checks and runtime.

pub mod check;
pub mod config;
pub mod control;
pub mod logging;
pub mod lvs;
pub mod net;
pub mod runtime;
pub mod track;
pub mod vrrp;
// Notify scripts, notify_fifo and SMTP alerts (issue 5).
pub mod notify;
// Hardened runtime (issue 10): privileges, scripts, systemd, metrics, stop.
pub mod launcher;
pub mod metrics;
pub mod privilege;
pub mod shutdown;
pub mod systemd;
