//! Which IPVS services keeperd owns, remembered across its restarts.
//!
//! keeperd owns the services of its configuration, and the ones it created and has not deleted
//! yet. A service that leaves the configuration (on reload, or while keeperd was stopped) is
//! deleted because it is still owned; a service someone else created is never touched (unless
//! `lvs_flush`). The owned set is written, after every change, to a file next to the control
//! socket (`/run/keeper/keeper.ipvs-owned` by default): `/run` lives exactly as long as the
//! kernel's table (both go at reboot), so a restarted keeperd knows what it created.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keeper_ipvs::ServiceKey;

pub struct OwnedFile {
    path: PathBuf,
}

impl OwnedFile {
    /// The file of the keeperd whose control socket is `socket`.
    pub fn for_socket(socket: &Path) -> OwnedFile {
        OwnedFile {
            path: socket.with_extension("ipvs-owned"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The owned set; empty when there is no file (first start since boot). A damaged file is
    /// reported and read as empty: services are then only owned through the configuration.
    pub fn load(&self) -> BTreeSet<ServiceKey> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeSet::new(),
            Err(e) => {
                tracing::warn!(file = %self.path.display(), "cannot read the owned IPVS services: {e}");
                return BTreeSet::new();
            }
        };
        match serde_json::from_str(&text) {
            Ok(set) => set,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), "ignoring a damaged list of owned IPVS services: {e}");
                BTreeSet::new()
            }
        }
    }

    /// Replaces the file atomically (write, then rename).
    pub fn store(&self, owned: &BTreeSet<ServiceKey>) {
        let result = (|| -> std::io::Result<()> {
            let text = serde_json::to_string(owned).map_err(std::io::Error::other)?;
            let tmp = self.path.with_extension("ipvs-owned.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            tracing::warn!(file = %self.path.display(), "cannot record the owned IPVS services (a restart will own only the configured ones): {e}");
        }
    }
}
