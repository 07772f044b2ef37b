//! IPVS in keeperd: the desired table from the configuration and the health verdicts, kept in
//! the kernel by a reconcile task, and the connection sync daemon driven by VRRP.
//!
//! - [`plan`]: configuration → virtual server plans (services, real servers, sorry server,
//!   quorum) and the sync daemon; its notes are part of `keeperd --check`.
//! - [`health`]: the checkers' verdicts ([`RealServerHealth`] by [`RealServerId`]).
//! - [`desired`]: plans + health → the desired table (keepalived's semantics).
//! - [`sync_daemon`]: which sync daemons run in which VRRP state.
//! - [`owned`]: which services keeperd owns, across restarts.
//! - [`service`]: the task that talks to the kernel ([`Lvs`]), and `keeperctl ipvs`'s reading.

pub mod desired;
pub mod health;
pub mod owned;
pub mod plan;
pub mod service;
pub mod sync_daemon;

pub use health::{HealthMap, HealthUpdate, RealServerHealth, RealServerId};
pub use service::{FirstPass, HealthSender, IpvsView, Lvs, read_kernel};
