//! Per-real-server health: the input the health checkers give the IPVS reconcile.
//!
//! The checkers (issue 8) send a [`HealthUpdate`] whenever a verdict changes, through the
//! sender from [`super::Lvs::health_sender`]. A real server without a verdict is up, unless
//! its virtual server has `alpha` and the server has a checker (then it starts down, as in
//! keepalived). Verdicts for names that are not configured are ignored; verdicts survive a
//! reload for the names that stay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which real server: the names of the `virtual_server` and `real_server` tables
/// (`[virtual_server.web.real_server.rs1]` is `("web", "rs1")`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RealServerId {
    pub virtual_server: String,
    pub real_server: String,
}

impl RealServerId {
    pub fn new(virtual_server: impl Into<String>, real_server: impl Into<String>) -> Self {
        RealServerId {
            virtual_server: virtual_server.into(),
            real_server: real_server.into(),
        }
    }
}

impl std::fmt::Display for RealServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "virtual_server.{}.real_server.{}",
            self.virtual_server, self.real_server
        )
    }
}

/// A checker's verdict on one real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerHealth {
    /// Up: in the table with its weight. Down: removed, or weight 0 with `inhibit_on_failure`.
    pub up: bool,
    /// A weight that replaces the configured one while up (`misc_dynamic`); `None`: the
    /// configured `weight`.
    pub weight: Option<u32>,
}

impl RealServerHealth {
    pub const UP: RealServerHealth = RealServerHealth {
        up: true,
        weight: None,
    };
    pub const DOWN: RealServerHealth = RealServerHealth {
        up: false,
        weight: None,
    };
}

/// The verdicts received so far.
pub type HealthMap = BTreeMap<RealServerId, RealServerHealth>;

/// One verdict change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthUpdate {
    pub id: RealServerId,
    pub health: RealServerHealth,
}
