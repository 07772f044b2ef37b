//! The graceful stop: on SIGTERM (or SIGINT) the VRRP instances stop first (a master sends
//! priority 0 so its backup takes over at once, and releases its VIPs), then every registered
//! hook runs in registration order (the IPVS helper's: stop the sync daemon, flush owned entries
//! when `lvs_flush_on_stop`). The whole sequence is bounded by [`STOP_DEADLINE`]; a second
//! SIGTERM/SIGINT or the deadline cuts it short and keeperd exits at once with status 1.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

/// The bound on a graceful stop. Below systemd's default TimeoutStopSec (90 s) and the unit's
/// 15 s, so keeperd, not the service manager, decides what a late stop skips.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>>>;

/// Work to do at stop, after VRRP released its addresses.
#[derive(Default)]
pub struct ShutdownHooks {
    hooks: Vec<(String, Hook)>,
}

impl std::fmt::Debug for ShutdownHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hooks.iter().map(|(n, _)| n))
            .finish()
    }
}

impl ShutdownHooks {
    /// Adds a hook: `run` is called once at stop, on the event loop's thread; the future it
    /// returns gets whatever is left of the deadline.
    pub fn add<F, Fut>(&mut self, name: impl Into<String>, run: F)
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.hooks
            .push((name.into(), Box::new(move || Box::pin(run()))));
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Runs every hook in order; a hook still running at `deadline` is abandoned, and so are
    /// the ones after it. Returns the names of the hooks that did not complete.
    pub async fn run(self, deadline: Instant) -> Vec<String> {
        let mut skipped = Vec::new();
        for (name, hook) in self.hooks {
            if !skipped.is_empty() {
                skipped.push(name);
                continue;
            }
            tracing::info!(hook = %name, "stopping");
            if tokio::time::timeout_at(deadline, hook()).await.is_err() {
                tracing::error!(hook = %name, "did not finish before the stop deadline");
                skipped.push(name);
            }
        }
        skipped
    }
}

/// Runs `graceful` (VRRP release, then the hooks; it returns the hooks it had to skip) until
/// `deadline`, unless `interrupt` (a second SIGTERM/SIGINT) comes first. `Err` says why the stop
/// was cut short.
pub async fn bounded(
    graceful: impl Future<Output = Vec<String>>,
    deadline: Instant,
    interrupt: impl Future<Output = &'static str>,
) -> Result<(), String> {
    tokio::select! {
        r = tokio::time::timeout_at(deadline, graceful) => match r {
            Ok(skipped) if skipped.is_empty() => Ok(()),
            Ok(skipped) => Err(format!("stop deadline reached in {}", skipped.join(", "))),
            Err(_) => Err("stop deadline reached releasing VRRP".to_string()),
        },
        why = interrupt => Err(why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[tokio::test(start_paused = true)]
    async fn hooks_run_in_order_within_the_deadline() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut hooks = ShutdownHooks::default();
        for n in ["sync daemon", "ipvs flush"] {
            let log = log.clone();
            hooks.add(n, move || async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                log.borrow_mut().push(n);
            });
        }
        let skipped = hooks.run(Instant::now() + Duration::from_secs(1)).await;
        assert!(skipped.is_empty());
        assert_eq!(*log.borrow(), vec!["sync daemon", "ipvs flush"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_signal_or_the_deadline_cuts_the_stop_short() {
        let start = Instant::now();
        let deadline = start + STOP_DEADLINE;
        // Finishes in time.
        let quick = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Vec::new()
        };
        assert_eq!(
            bounded(quick, deadline, std::future::pending()).await,
            Ok(())
        );
        // Hangs; a second SIGTERM after 1 s forces the exit then.
        let second = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "second SIGTERM"
        };
        let hung = std::future::pending::<Vec<String>>();
        assert_eq!(
            bounded(hung, deadline, second).await,
            Err("second SIGTERM".into())
        );
        assert!(start.elapsed() < Duration::from_millis(1100));
        // Hangs and nobody insists: the deadline forces it.
        let hung = std::future::pending::<Vec<String>>();
        let r = bounded(hung, deadline, std::future::pending()).await;
        assert_eq!(r, Err("stop deadline reached releasing VRRP".into()));
        assert_eq!(Instant::now(), deadline);
        // A hook was skipped: reported by name.
        let partial = async { vec!["ipvs flush".to_string()] };
        let r = bounded(
            partial,
            Instant::now() + STOP_DEADLINE,
            std::future::pending(),
        )
        .await;
        assert_eq!(r, Err("stop deadline reached in ipvs flush".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_hook_is_cut_at_the_deadline() {
        let mut hooks = ShutdownHooks::default();
        hooks.add("hangs", std::future::pending::<()>);
        hooks.add("after", || async {});
        let start = Instant::now();
        let skipped = hooks.run(start + Duration::from_secs(3)).await;
        assert_eq!(skipped, vec!["hangs".to_string(), "after".to_string()]);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
