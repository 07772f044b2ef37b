//! `vrrp_script`: each script runs in its own task on a fixed schedule and reports every run.
//!
//! Schedule (keepalived's `vrrp_script_thread`): runs start every `interval`, measured from the
//! first run. A run still going when its next start comes makes that start skipped (counted in
//! the status), never overlapped: a script has at most one run at a time. The first runs of
//! the scripts of one configuration are spread over `min(interval, 1 s)` so that a host with
//! many scripts does not fork them all at once (keepalived starts them all at once).
//!
//! Timeout (`timeout`, default `interval`): the script's whole process group is killed
//! (SIGKILL) and the run is reported as [`ScriptOutcome::TimedOut`], a failure. keepalived
//! sends SIGTERM first and SIGKILL 2 s later; keeper kills at once so that a hung script
//! never outlives its timeout. A script whose task is stopped (reload, shutdown) has its
//! process group killed the same way.
//!
//! Starting scripts goes through [`ScriptExec`]: in keeperd, the script launcher of the
//! hardened runtime ([`crate::launcher::ScriptRunner`], scripts as their user without
//! capabilities); [`DirectExec`], the default, forks them with the runner of notify scripts.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::command::Command;
use super::{Observation, lock, unix_secs};
use crate::notify::exec::{self, Runner};

/// One run to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRequest {
    /// Program and arguments (see [`Command::argv`]).
    pub argv: Vec<String>,
    /// The process group is killed when the run lasts longer.
    pub timeout: Duration,
    /// `vrrp_script.*.user`, else `global.script_user`; `None` = the daemon's user.
    pub user: Option<String>,
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptOutcome {
    /// Exit status; 0 is success.
    Exited(i32),
    /// Killed by this signal, not by keeper.
    Signaled(i32),
    /// Ran past its timeout; its process group was killed.
    TimedOut,
    /// Could not be started (program not found, not executable, user not allowed, …).
    NotStarted(String),
}

impl ScriptOutcome {
    /// keepalived's rule: exit status 0 is success; anything else is a failure.
    pub fn success(&self) -> bool {
        *self == ScriptOutcome::Exited(0)
    }
}

impl std::fmt::Display for ScriptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptOutcome::Exited(c) => write!(f, "exit status {c}"),
            ScriptOutcome::Signaled(s) => write!(f, "killed by signal {s}"),
            ScriptOutcome::TimedOut => f.write_str("timed out (process group killed)"),
            ScriptOutcome::NotStarted(why) => write!(f, "not started: {why}"),
        }
    }
}

/// A boxed future, as trait objects need.
pub type RunFuture = Pin<Box<dyn Future<Output = ScriptOutcome> + Send>>;

/// Starts one run of a script and reports how it ended. Dropping the future before it ends
/// must kill the run's process group.
///
/// Implemented by [`DirectExec`] (keeperd forks scripts itself) and by the hardened runtime's
/// [`crate::launcher::ScriptRunner`], which keeperd uses once it has dropped its privileges:
/// pass it in [`super::TrackerOptions::exec`].
pub trait ScriptExec: Send + Sync + 'static {
    fn run(&self, request: ScriptRequest) -> RunFuture;
}

/// Starts scripts with keeperd's script runner ([`crate::notify::exec::Runner`], shared with
/// notify scripts): their own process group, a clean environment (`PATH` only), `/` as working
/// directory, no capabilities, no new privileges, and the script user (switched to while
/// keeperd runs as root). A user keeperd cannot run scripts as is reported as
/// [`ScriptOutcome::NotStarted`], never silently replaced.
#[derive(Debug, Default)]
pub struct DirectExec {
    /// Runners by script user, resolved once.
    runners: Mutex<HashMap<Option<String>, Runner>>,
}

impl DirectExec {
    fn runner(&self, user: Option<&str>) -> Result<Runner, String> {
        let key = user.map(str::to_string);
        if let Some(r) = lock(&self.runners).get(&key) {
            return Ok(r.clone());
        }
        // Not cached when it fails: the user may be created later.
        let r = Runner::direct(user)?;
        lock(&self.runners).insert(key, r.clone());
        Ok(r)
    }
}

impl ScriptExec for DirectExec {
    fn run(&self, request: ScriptRequest) -> RunFuture {
        let runner = self.runner(request.user.as_deref());
        Box::pin(async move {
            let runner = match runner {
                Ok(r) => r,
                Err(e) => return ScriptOutcome::NotStarted(e),
            };
            let script = exec::Script {
                argv: request.argv,
                timeout: request.timeout,
            };
            let run = runner.run(&script).await;
            if !run.stderr.is_empty() {
                let program = script.argv.first().map_or("", String::as_str);
                tracing::debug!("script {program}: stderr: {}", run.stderr);
            }
            match run.outcome {
                exec::Outcome::Exited(c) => ScriptOutcome::Exited(c),
                exec::Outcome::Signaled(s) => ScriptOutcome::Signaled(s),
                exec::Outcome::TimedOut => ScriptOutcome::TimedOut,
                exec::Outcome::NotStarted(why) => ScriptOutcome::NotStarted(why),
            }
        })
    }
}

/// The hardened runtime's script launcher (`runtime.rs` starts it before dropping
/// privileges): scripts run as their `user` without capabilities. A run whose future is dropped
/// (its script stopped by a reload) is not killed at once: it ends, or is killed at its timeout;
/// the launcher kills every running script when keeperd stops.
impl ScriptExec for crate::launcher::ScriptRunner {
    fn run(&self, request: ScriptRequest) -> RunFuture {
        let runner = self.clone();
        Box::pin(async move {
            let script = crate::launcher::Script {
                argv: request.argv,
                env: Vec::new(),
                timeout: request.timeout,
                user: request.user,
            };
            match runner.run(script).await {
                Ok(r) => {
                    if !r.stderr.is_empty() {
                        tracing::debug!("script stderr: {}", r.stderr);
                    }
                    match r.outcome {
                        crate::launcher::Outcome::Exited(c) => ScriptOutcome::Exited(c),
                        crate::launcher::Outcome::Signaled(s) => ScriptOutcome::Signaled(s),
                        crate::launcher::Outcome::TimedOut => ScriptOutcome::TimedOut,
                    }
                }
                Err(e) => ScriptOutcome::NotStarted(e.to_string()),
            }
        })
    }
}

/// What a script task needs to know; equal specs keep their task across a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSpec {
    pub name: String,
    pub command: Command,
    pub interval: Duration,
    pub timeout: Duration,
    pub user: Option<String>,
}

impl ScriptSpec {
    fn request(&self) -> ScriptRequest {
        ScriptRequest {
            argv: self.command.argv(),
            timeout: self.timeout,
            user: self.user.clone(),
        }
    }
}

/// One finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptRun {
    pub outcome: ScriptOutcome,
    /// Start, seconds since the Unix epoch.
    pub started_unix: f64,
    pub duration_ms: u64,
}

/// A script's status for `keeperctl status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptStatus {
    pub name: String,
    pub command: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub running: bool,
    pub runs: u64,
    /// Starts skipped because the previous run was still going.
    pub skipped: u64,
    pub last: Option<ScriptRun>,
}

impl ScriptStatus {
    pub(super) fn new(spec: &ScriptSpec) -> ScriptStatus {
        ScriptStatus {
            name: spec.name.clone(),
            command: spec.command.to_string(),
            interval_ms: millis(spec.interval),
            timeout_ms: millis(spec.timeout),
            running: false,
            runs: 0,
            skipped: 0,
            last: None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The next start of a fixed-rate schedule after a run that ended at `now`: `next` if it has
/// not passed, else the first start after `now`; returns it with the number of starts skipped.
pub(super) fn next_start(next: Instant, interval: Duration, now: Instant) -> (Instant, u64) {
    if next >= now || interval.is_zero() {
        return (next, 0);
    }
    let behind = (now - next).as_nanos();
    let step = interval.as_nanos();
    let skipped = behind.div_ceil(step);
    let advance = u32::try_from(skipped).map_or(Duration::MAX, |k| interval.saturating_mul(k));
    (next + advance, u64::try_from(skipped).unwrap_or(u64::MAX))
}

/// Runs `spec` forever: first at `first`, then every interval. Ends when nobody listens.
pub(super) async fn script_task(
    spec: ScriptSpec,
    first: Instant,
    exec: Arc<dyn ScriptExec>,
    out: mpsc::Sender<Observation>,
    status: Arc<Mutex<ScriptStatus>>,
) {
    let request = spec.request();
    let mut next = first;
    loop {
        tokio::time::sleep_until(next).await;
        let started = SystemTime::now();
        let t0 = Instant::now();
        lock(&status).running = true;
        let outcome = exec.run(request.clone()).await;
        let duration = t0.elapsed();
        if !outcome.success() {
            tracing::debug!(script = %spec.name, "vrrp_script {}: {outcome}", spec.name);
        }
        let run = ScriptRun {
            outcome: outcome.clone(),
            started_unix: unix_secs(started),
            duration_ms: millis(duration),
        };
        let (after, skipped) = next_start(next + spec.interval, spec.interval, Instant::now());
        {
            let mut st = lock(&status);
            st.running = false;
            st.runs += 1;
            st.skipped += skipped;
            st.last = Some(run);
        }
        if skipped > 0 {
            tracing::info!(
                "vrrp_script {}: the run took {duration:?}, longer than its interval; {skipped} start(s) skipped",
                spec.name
            );
        }
        let observation = Observation::Script {
            name: spec.name.clone(),
            outcome,
            started,
            duration,
        };
        if out.send(observation).await.is_err() {
            return;
        }
        next = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_skips_starts_that_passed() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(next_start(t + s, s, t), (t + s, 0));
        assert_eq!(next_start(t + s, s, t + s), (t + s, 0));
        assert_eq!(
            next_start(t + s, s, t + Duration::from_millis(1500)),
            (t + 2 * s, 1)
        );
        assert_eq!(
            next_start(t + s, s, t + Duration::from_millis(3000)),
            (t + 3 * s, 2)
        );
    }

    #[test]
    fn only_exit_zero_is_success() {
        assert!(ScriptOutcome::Exited(0).success());
        assert!(!ScriptOutcome::Exited(1).success());
        assert!(!ScriptOutcome::Signaled(9).success());
        assert!(!ScriptOutcome::TimedOut.success());
        assert!(!ScriptOutcome::NotStarted("x".into()).success());
    }
}
