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
//! Starting scripts goes through [`ScriptExec`], the one place where the script launcher
//! (running scripts as another user without capabilities) plugs in. [`DirectExec`] starts them
//! as the daemon's own user.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::command::Command;
use super::{Observation, lock, unix_secs};

/// How long a killed script's leader may take to be reaped before the run is reported anyway
/// (a process stuck in the kernel, e.g. on a dead NFS server, cannot die at once).
const REAP_GRACE: Duration = Duration::from_secs(5);
/// `PATH` for scripts when keeperd itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
/// PLUG-IN POINT for the script launcher (branch `runtime-hardening`, `launcher::ScriptRunner`):
/// implement this trait for it, mapping `ScriptRequest` to its `Script` and its `Outcome`
/// (`Exited`, `Signaled`, `TimedOut`) and `ScriptError` (as `NotStarted`) back, and pass it in
/// [`super::TrackerOptions::exec`].
pub trait ScriptExec: Send + Sync + 'static {
    fn run(&self, request: ScriptRequest) -> RunFuture;
}

/// Starts scripts as the daemon's own user, in their own process group, with a clean
/// environment (`PATH` only), `/` as working directory, and no standard input or output.
/// A script that asks for another user is not started.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectExec;

impl ScriptExec for DirectExec {
    fn run(&self, request: ScriptRequest) -> RunFuture {
        Box::pin(async move {
            if let Some(spec) = &request.user
                && let Err(why) = is_own_user(spec)
            {
                return ScriptOutcome::NotStarted(why);
            }
            run_direct(&request).await
        })
    }
}

/// Whether `spec` (`user` or `user:group`) is the identity the daemon runs as.
fn is_own_user(spec: &str) -> Result<(), String> {
    let (name, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| format!("looking up user {name}: {e}"))?
        .ok_or_else(|| format!("no user {name}"))?;
    let gid = match group {
        Some(g) => {
            nix::unistd::Group::from_name(g)
                .map_err(|e| format!("looking up group {g}: {e}"))?
                .ok_or_else(|| format!("no group {g}"))?
                .gid
        }
        None => user.gid,
    };
    if user.uid == nix::unistd::geteuid() && gid == nix::unistd::getegid() {
        Ok(())
    } else {
        Err(format!(
            "running scripts as {spec} needs the script launcher; this keeperd starts scripts only as its own user"
        ))
    }
}

/// Kills a process group when dropped, unless disarmed: a run whose future is dropped (its
/// task stopped) leaves nothing running.
struct GroupKiller(Option<i32>);

impl GroupKiller {
    fn kill(&self) {
        if let Some(pgid) = self.0.filter(|&p| p > 1) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn run_direct(request: &ScriptRequest) -> ScriptOutcome {
    let Some(program) = request.argv.first() else {
        return ScriptOutcome::NotStarted("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&request.argv[1..])
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl(2) only, async-signal-safe, on no shared data.
    unsafe {
        cmd.pre_exec(|| {
            // A daemon killed outright takes its scripts' leaders with it.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ScriptOutcome::NotStarted(format!("cannot start {program}: {e}")),
    };
    // The leader is not reaped before the group is killed, so its id still names the group.
    let mut group = GroupKiller(child.id().and_then(|p| i32::try_from(p).ok()));
    let outcome = match tokio::time::timeout(request.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            group.0 = None;
            match (status.code(), status.signal()) {
                (Some(c), _) => ScriptOutcome::Exited(c),
                (None, Some(s)) => ScriptOutcome::Signaled(s),
                (None, None) => ScriptOutcome::Signaled(0),
            }
        }
        Ok(Err(e)) => ScriptOutcome::NotStarted(format!("waiting for {program}: {e}")),
        Err(_) => {
            group.kill();
            if tokio::time::timeout(REAP_GRACE, child.wait())
                .await
                .is_err()
            {
                tracing::error!(
                    "script {program}: killed at its timeout but still not gone after {REAP_GRACE:?}"
                );
            }
            group.0 = None;
            ScriptOutcome::TimedOut
        }
    };
    drop(group);
    outcome
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
