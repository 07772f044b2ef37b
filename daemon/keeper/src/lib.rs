//! keeperd: configuration, drivers (VRRP on the wire, VIPs, IPVS), health checks and runtime.

pub mod config;
pub mod logging;
pub mod net;
pub mod runtime;
