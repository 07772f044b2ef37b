//! Running scripts (notify, track, `misc_check`): as the configured script user, with no
//! capability, in their own process group, with a clean environment and a timeout.
//!
//! [`ScriptRunner::run`] is the one entry point for every caller. A script whose user is the
//! daemon's own identity is started by the daemon itself. Any other user goes through the
//! launcher: a second process, started from keeperd's own binary (`keeperd --script-launcher`)
//! before the daemon drops privileges, that keeps only CAP_SETUID, CAP_SETGID and CAP_KILL and
//! starts scripts on request. The daemon never holds those three after start.
//!
//! Launcher protocol, over a Unix stream socketpair (the launcher's end is its fd 3), one JSON
//! object per line:
//! - daemon -> launcher, once: [`Hello`] (the launcher's own account and the accounts scripts may
//!   run as, resolved by the daemon at start; the launcher refuses any other user);
//! - daemon -> launcher: [`WireRequest`] `{id, argv, env, timeout_ms, user}`;
//! - launcher -> daemon: [`WireReply`] `{id, result | error}`, in completion order.
//!
//! When the daemon goes away (end of file on the socket) the launcher kills the process groups of
//! the scripts still running and exits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::privilege::{self, Account, Plan};

/// Output kept per stream (stdout, stderr) for logs; the rest is read and discarded.
pub const OUTPUT_LIMIT: usize = 2048;
/// After a script exits, how long its pipes may stay open (a background child holding them)
/// before the output read is abandoned.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);
/// `PATH` for scripts when keeperd itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The launcher's fd for its end of the socketpair.
const LAUNCHER_FD: i32 = 3;
/// How long a script has to exit after SIGTERM at its timeout before its process group gets
/// SIGKILL (keepalived's sequence).
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long past a script's timeout the daemon waits for the launcher's answer (more than
/// [`TERM_GRACE`]).
const ANSWER_GRACE: Duration = Duration::from_secs(5);
/// Bound on the launcher's instructions.
const MAX_HELLO: usize = 1 << 20;

/// A script to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Program and arguments; the program is a path or found in `PATH`.
    pub argv: Vec<String>,
    /// Variables on top of a clean environment holding only `PATH`.
    pub env: Vec<(String, String)>,
    /// When it runs longer, its process group gets SIGTERM, then SIGKILL [`TERM_GRACE`] later.
    pub timeout: Duration,
    /// A user spec configured for this script (`vrrp_script.*.user`, `misc_check.user`);
    /// `None` = `global.script_user`, or the daemon's user when that is unset.
    pub user: Option<String>,
}

/// How a script ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit code.
    Exited(i32),
    /// Killed by this signal (not by us).
    Signaled(i32),
    /// Ran past its timeout; its process group was killed.
    TimedOut,
}

impl Outcome {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        *self == Outcome::Exited(0)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(c) => write!(f, "exit code {c}"),
            Outcome::Signaled(s) => write!(f, "killed by signal {s}"),
            Outcome::TimedOut => f.write_str("timed out (killed)"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptResult {
    pub outcome: Outcome,
    /// The first [`OUTPUT_LIMIT`] bytes of stdout, then of stderr (lossy UTF-8), for logs.
    pub stdout: String,
    pub stderr: String,
    /// Wall time from start to exit (or kill).
    pub duration: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ScriptError {
    #[error("empty command")]
    Empty,
    #[error(
        "script user `{0}` was not configured when keeperd started (the launcher only runs scripts as users it was started for); restart keeperd"
    )]
    UnknownUser(String),
    #[error("cannot start {program}: {message}")]
    Spawn { program: String, message: String },
    #[error("waiting for the script: {0}")]
    Wait(String),
    #[error("the script launcher is gone: {0}")]
    LauncherGone(String),
}

/// Splits a keepalived command line (`"/usr/bin/check --arg 'a b'"`) into argv: whitespace
/// separates words; single quotes, double quotes and backslash escape as in a shell; nothing is
/// expanded.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => word.push(x),
                        None => return Err(format!("unterminated ' in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => word.push(x),
                            Some(x) => {
                                word.push('\\');
                                word.push(x);
                            }
                            None => return Err(format!("unterminated \" in {line:?}")),
                        },
                        Some(x) => word.push(x),
                        None => return Err(format!("unterminated \" in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => word.push(x),
                    None => return Err(format!("trailing backslash in {line:?}")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}

/// Runs scripts for every subsystem. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct ScriptRunner {
    inner: Arc<Inner>,
}

struct Inner {
    /// The identity scripts started by the daemon itself run as (the daemon's own).
    daemon: Account,
    users: BTreeMap<String, Account>,
    default_user: String,
    launcher: Option<LauncherClient>,
}

impl std::fmt::Debug for ScriptRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptRunner")
            .field("daemon", &self.inner.daemon.name)
            .field("launcher", &self.inner.launcher.is_some())
            .finish()
    }
}

impl ScriptRunner {
    /// Builds the runner for `plan`. When the plan needs a launcher, starts it from `exe`
    /// (keeperd's binary; `/proc/self/exe` in the daemon). Call before dropping privileges:
    /// the launcher starts with the daemon's starting privileges and drops to
    /// [`privilege::LAUNCHER_CAPS`] itself. Needs a tokio runtime.
    pub fn start(plan: &Plan, exe: &Path) -> io::Result<ScriptRunner> {
        let launcher = if plan.launcher {
            Some(LauncherClient::spawn(exe, plan)?)
        } else {
            None
        };
        Ok(ScriptRunner {
            inner: Arc::new(Inner {
                daemon: plan.daemon.clone(),
                users: plan.script_users.clone(),
                default_user: plan.default_script_user.clone(),
                launcher,
            }),
        })
    }

    /// The launcher's process id, if one runs.
    pub fn launcher_pid(&self) -> Option<u32> {
        self.inner.launcher.as_ref().map(|l| l.pid)
    }

    /// Whether scripts may run as `user` (None = the default script user) in this process's
    /// lifetime: reload checks this for newly configured users.
    pub fn can_run_as(&self, user: Option<&str>) -> Result<(), ScriptError> {
        let spec = user.unwrap_or(&self.inner.default_user);
        match self.inner.users.get(spec) {
            Some(a) if a.same_identity(&self.inner.daemon) || self.inner.launcher.is_some() => {
                Ok(())
            }
            _ => Err(ScriptError::UnknownUser(spec.to_string())),
        }
    }

    /// Runs `script` to completion (or its timeout). Never panics on what the script does.
    pub async fn run(&self, script: Script) -> Result<ScriptResult, ScriptError> {
        if script.argv.is_empty() {
            return Err(ScriptError::Empty);
        }
        let spec = script
            .user
            .clone()
            .unwrap_or_else(|| self.inner.default_user.clone());
        let account = self
            .inner
            .users
            .get(&spec)
            .ok_or_else(|| ScriptError::UnknownUser(spec.clone()))?;
        if account.same_identity(&self.inner.daemon) {
            return exec(&script, None, None).await;
        }
        match &self.inner.launcher {
            Some(l) => l.run(&script, spec).await,
            None => Err(ScriptError::UnknownUser(spec)),
        }
    }
}

/// Process groups of running scripts (the launcher kills them when the daemon goes away).
type Running = Mutex<HashSet<u32>>;

/// Starts `script` in this process's identity, or as `switch_to`, with no capabilities, and
/// waits for it.
async fn exec(
    script: &Script,
    switch_to: Option<&Account>,
    running: Option<&Running>,
) -> Result<ScriptResult, ScriptError> {
    let Some(program) = script.argv.first() else {
        return Err(ScriptError::Empty);
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&script.argv[1..])
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .envs(script.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let switch = switch_to.map(|a| (a.uid, a.gid, a.groups.clone()));
    // SAFETY: the closure only makes raw syscalls on data allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid, groups)) = &switch {
                privilege::switch_user_raw(*uid, *gid, groups)?;
            }
            reset_signals_raw();
            privilege::clear_all_caps_raw()
        });
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| ScriptError::Spawn {
        program: program.clone(),
        message: e.to_string(),
    })?;
    let pgid = child.id();
    // A run abandoned by its caller (a health check dropped at reload or stop) takes its
    // process group with it.
    let mut abandoned = GroupGuard(pgid);
    let track = |add: bool| {
        if let (Some(r), Some(p)) = (running, pgid)
            && let Ok(mut set) = r.lock()
        {
            if add {
                set.insert(p);
            } else {
                set.remove(&p);
            }
        }
    };
    track(true);
    let out = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));
    let outcome = match tokio::time::timeout(script.timeout, child.wait()).await {
        Ok(Ok(st)) => match (st.code(), st.signal()) {
            (Some(c), _) => Outcome::Exited(c),
            (None, Some(s)) => Outcome::Signaled(s),
            (None, None) => Outcome::Signaled(0),
        },
        Ok(Err(e)) => {
            track(false);
            return Err(ScriptError::Wait(e.to_string()));
        }
        Err(_) => {
            signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
            let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
            // Whatever obeyed, what it started may not have (keepalived does the same).
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    };
    abandoned.0 = None;
    track(false);
    let duration = started.elapsed();
    let collect = |h: Option<tokio::task::JoinHandle<String>>| async move {
        let Some(h) = h else {
            return String::new();
        };
        let abort = h.abort_handle();
        match tokio::time::timeout(OUTPUT_GRACE, h).await {
            Ok(Ok(s)) => s,
            _ => {
                abort.abort();
                String::new()
            }
        }
    };
    let stdout = collect(out).await;
    let stderr = collect(err).await;
    Ok(ScriptResult {
        outcome,
        stdout,
        stderr,
        duration,
    })
}

/// Default disposition for every signal: an ignored signal survives exec, and scripts must not
/// depend on how keeperd was started. The raw rt_sigaction(2) (glibc's wrapper refuses its
/// internal signals 32 and 33): safe between fork and exec.
fn reset_signals_raw() {
    // The kernel's struct sigaction on x86_64 and aarch64 (both define SA_RESTORER).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid action, no old action, and the kernel's sigset size.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
}

fn kill_group(pgid: Option<u32>) {
    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
}

fn signal_group(pgid: Option<u32>, signal: nix::sys::signal::Signal) {
    if let Some(p) = pgid.and_then(|p| i32::try_from(p).ok())
        && p > 1
    {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), signal);
    }
}

/// Kills a script's process group when dropped armed (see [`exec`]).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Reads up to [`OUTPUT_LIMIT`] bytes and discards the rest until end of file.
async fn read_capped(mut r: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

// --- the wire ------------------------------------------------------------------------------

/// The launcher's instructions, sent once.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    /// The launcher's own account after its privilege drop (the daemon's).
    pub account: Account,
    /// Script user specs and their accounts.
    pub users: BTreeMap<String, Account>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireRequest {
    pub id: u64,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
    pub user: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireReply {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ScriptResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ScriptError>,
}

type Waiter = oneshot::Sender<Result<ScriptResult, ScriptError>>;

/// The daemon's side of the launcher.
struct LauncherClient {
    pid: u32,
    requests: mpsc::Sender<(WireRequest, Waiter)>,
}

impl LauncherClient {
    fn spawn(exe: &Path, plan: &Plan) -> io::Result<LauncherClient> {
        use std::os::fd::AsRawFd;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let fd = theirs.as_raw_fd();
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("--script-launcher")
            .stdin(Stdio::null())
            .kill_on_drop(false);
        // SAFETY: dup2 only; the new fd 3 has no close-on-exec flag, every other fd keeps its.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, LAUNCHER_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        drop(theirs);
        let pid = child.id().unwrap_or(0);
        let hello = Hello {
            account: plan.daemon.clone(),
            users: plan
                .script_users
                .iter()
                .filter(|(_, a)| !a.same_identity(&plan.daemon))
                .map(|(s, a)| (s.clone(), a.clone()))
                .collect(),
        };
        let mut line = serde_json::to_string(&hello).map_err(io::Error::other)?;
        line.push('\n');
        {
            use std::io::Write;
            (&ours).write_all(line.as_bytes())?;
        }
        ours.set_nonblocking(true)?;
        let stream = UnixStream::from_std(ours)?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let why = client_loop(stream, rx).await;
            let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(Ok(st)) => st.to_string(),
                _ => "still running".to_string(),
            };
            tracing::error!(
                "script launcher gone ({why}; {status}): scripts for other users fail from now on"
            );
        });
        Ok(LauncherClient { pid, requests: tx })
    }

    async fn run(&self, script: &Script, user: String) -> Result<ScriptResult, ScriptError> {
        let (tx, rx) = oneshot::channel();
        let req = WireRequest {
            id: 0,
            argv: script.argv.clone(),
            env: script.env.clone(),
            timeout_ms: u64::try_from(script.timeout.as_millis()).unwrap_or(u64::MAX),
            user,
        };
        self.requests
            .send((req, tx))
            .await
            .map_err(|_| ScriptError::LauncherGone("not running".into()))?;
        // The launcher enforces the timeout; this only guards against a launcher that hangs.
        match tokio::time::timeout(script.timeout + ANSWER_GRACE, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ScriptError::LauncherGone("no answer".into())),
            Err(_) => Err(ScriptError::LauncherGone(format!(
                "no answer {ANSWER_GRACE:?} after the script's timeout"
            ))),
        }
    }
}

/// Sends requests and routes answers until the launcher closes its end; returns why it ended.
async fn client_loop(stream: UnixStream, mut rx: mpsc::Receiver<(WireRequest, Waiter)>) -> String {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut pending: HashMap<u64, Waiter> = HashMap::new();
    let mut next_id: u64 = 1;
    let why = loop {
        tokio::select! {
            req = rx.recv() => {
                let Some((mut req, waiter)) = req else {
                    break "the daemon stopped".to_string();
                };
                req.id = next_id;
                next_id += 1;
                let mut line = match serde_json::to_string(&req) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = waiter.send(Err(ScriptError::Spawn { program: req.argv.first().cloned().unwrap_or_default(), message: e.to_string() }));
                        continue;
                    }
                };
                line.push('\n');
                if let Err(e) = write.write_all(line.as_bytes()).await {
                    let _ = waiter.send(Err(ScriptError::LauncherGone(e.to_string())));
                    break format!("writing to it: {e}");
                }
                pending.insert(req.id, waiter);
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => match serde_json::from_str::<WireReply>(&line) {
                    Ok(reply) => {
                        if let Some(w) = pending.remove(&reply.id) {
                            let answer = match (reply.result, reply.error) {
                                (Some(r), _) => Ok(r),
                                (None, Some(e)) => Err(e),
                                (None, None) => Err(ScriptError::LauncherGone("empty answer".into())),
                            };
                            let _ = w.send(answer);
                        }
                    }
                    Err(e) => tracing::error!("script launcher: unreadable answer: {e}"),
                },
                Ok(None) => break "end of file".to_string(),
                Err(e) => break e.to_string(),
            }
        }
    };
    for (_, w) in pending.drain() {
        let _ = w.send(Err(ScriptError::LauncherGone(why.clone())));
    }
    why
}

// --- the launcher process ------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    #[error("fd {LAUNCHER_FD} is not a socket: keeperd starts the launcher itself")]
    NoSocket,
    #[error("reading the launcher's instructions: {0}")]
    Hello(String),
    #[error("{0}")]
    Privilege(#[from] privilege::PrivilegeError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// `keeperd --script-launcher`: reads its instructions from fd 3, drops to the daemon's user
/// with CAP_SETUID, CAP_SETGID and CAP_KILL, and serves until the daemon closes the socket.
pub fn launcher_main() -> Result<(), LauncherError> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat(2) on a raw fd number (EBADF if closed) into a properly sized buffer.
    if unsafe { libc::fstat(LAUNCHER_FD, st.as_mut_ptr()) } != 0 {
        return Err(LauncherError::NoSocket);
    }
    // SAFETY: fstat succeeded, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(LauncherError::NoSocket);
    }
    // SAFETY: fd 3 was checked to be an open socket, which this process owns from here on.
    let sock = unsafe { std::os::unix::net::UnixStream::from_raw_fd(LAUNCHER_FD) };
    // Byte by byte: a buffered reader could swallow the first request behind the hello.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match (&sock).read(&mut byte) {
            Ok(0) => return Err(LauncherError::Hello("end of file".into())),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LauncherError::Hello(e.to_string())),
        }
        if line.len() > MAX_HELLO {
            return Err(LauncherError::Hello("longer than 1 MiB".into()));
        }
    }
    let hello: Hello =
        serde_json::from_slice(&line).map_err(|e| LauncherError::Hello(e.to_string()))?;
    let parent = nix::unistd::getppid();
    let dropped = privilege::drop_privileges(&hello.account, privilege::LAUNCHER_CAPS)?;
    // Set after the uid change, which clears it. A daemon killed outright takes the launcher.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        return Ok(());
    }
    let _ = nix::sys::prctl::set_name(c"keeperd-launch");
    privilege::log_dropped("the script launcher", &dropped, privilege::LAUNCHER_CAPS);
    sock.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        serve(UnixStream::from_std(sock)?, hello).await;
        Ok::<(), io::Error>(())
    })?;
    Ok(())
}

async fn serve(stream: UnixStream, hello: Hello) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let (tx, mut replies) = mpsc::channel::<WireReply>(64);
    let running: Arc<Running> = Arc::default();
    let me = hello.account.clone();
    // systemd signals the whole unit at stop: the launcher outlives the signal so that keeperd's
    // stop-time scripts still run, and ends when keeperd closes the socket. Handlers (not
    // SIG_IGN) so that scripts start with default dispositions.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    loop {
        tokio::select! {
            _ = next(&mut term) => continue,
            _ = next(&mut int) => continue,
            _ = next(&mut hup) => continue,
            line = lines.next_line() => {
                let line = match line {
                    Ok(Some(l)) => l,
                    Ok(None) | Err(_) => break,
                };
                let req: WireRequest = match serde_json::from_str(&line) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("script launcher: request not understood: {e}");
                        continue;
                    }
                };
                let tx = tx.clone();
                let account = hello.users.get(&req.user).cloned();
                let me = me.clone();
                let running = running.clone();
                tokio::spawn(async move {
                    let id = req.id;
                    let answer = match account {
                        None => Err(ScriptError::UnknownUser(req.user.clone())),
                        Some(a) => {
                            let script = Script {
                                argv: req.argv,
                                env: req.env,
                                timeout: Duration::from_millis(req.timeout_ms),
                                user: Some(req.user),
                            };
                            let switch = (!a.same_identity(&me)).then_some(&a);
                            exec(&script, switch, Some(&running)).await
                        }
                    };
                    let (result, error) = match answer {
                        Ok(r) => (Some(r), None),
                        Err(e) => (None, Some(e)),
                    };
                    let _ = tx.send(WireReply { id, result, error }).await;
                });
            }
            Some(reply) = replies.recv() => {
                let Ok(mut text) = serde_json::to_string(&reply) else { continue };
                text.push('\n');
                if write.write_all(text.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    }
    // The daemon is gone: nobody waits for these scripts any more.
    let groups: Vec<u32> = running
        .lock()
        .map(|g| g.iter().copied().collect())
        .unwrap_or_default();
    for g in groups {
        kill_group(Some(g));
    }
}

/// The path of keeperd's binary for starting the launcher.
pub fn own_exe() -> PathBuf {
    PathBuf::from("/proc/self/exe")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runner whose scripts run as this process's own identity (no launcher).
    fn own_runner() -> ScriptRunner {
        let me = privilege::current_account();
        let plan = Plan {
            started_as_root: false,
            daemon: me.clone(),
            script_users: BTreeMap::from([(String::new(), me)]),
            default_script_user: String::new(),
            launcher: false,
        };
        ScriptRunner::start(&plan, &own_exe()).expect("runner")
    }

    fn sh(body: &str, timeout: Duration) -> Script {
        Script {
            argv: vec!["/bin/sh".into(), "-c".into(), body.into()],
            env: Vec::new(),
            timeout,
            user: None,
        }
    }

    fn alive(pid: i32) -> bool {
        // A zombie is gone for our purpose: its state is Z.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    async fn wait_gone(pid: i32) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            assert!(Instant::now() < deadline, "process {pid} still alive");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn exit_codes_and_the_deadline_term_then_kill() {
        let runner = own_runner();
        let long = Duration::from_secs(20);
        let outcome = |r: Result<ScriptResult, ScriptError>| r.expect("runs").outcome;
        assert_eq!(
            outcome(runner.run(sh("exit 0", long)).await),
            Outcome::Exited(0)
        );
        assert_eq!(
            outcome(runner.run(sh("exit 7", long)).await),
            Outcome::Exited(7)
        );
        assert_eq!(
            outcome(runner.run(sh("kill -9 $$", long)).await),
            Outcome::Signaled(9)
        );
        let mut missing = sh("", long);
        missing.argv = vec!["/nonexistent/keeper-check".into()];
        assert!(matches!(
            runner.run(missing).await,
            Err(ScriptError::Spawn { .. })
        ));
        // Obeys SIGTERM: gone at the deadline, without the grace period.
        let r = runner
            .run(sh("sleep 30", Duration::from_millis(200)))
            .await
            .expect("runs");
        assert_eq!(r.outcome, Outcome::TimedOut);
        assert!(r.duration < TERM_GRACE, "{:?}", r.duration);
        // Ignores SIGTERM: SIGKILL after the grace period.
        let r = runner
            .run(sh("trap '' TERM; sleep 30", Duration::from_millis(200)))
            .await
            .expect("runs");
        assert_eq!(r.outcome, Outcome::TimedOut);
        assert!(
            r.duration >= Duration::from_millis(200) + TERM_GRACE,
            "{:?}",
            r.duration
        );
        assert!(r.duration < Duration::from_secs(15), "{:?}", r.duration);
    }

    #[tokio::test]
    async fn an_abandoned_run_takes_its_process_group_with_it() {
        let runner = own_runner();
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let body = format!(
            "sleep 60 & echo $$ $! > {0}.t && mv {0}.t {0}; wait",
            pids.display()
        );
        let mut run = Box::pin(runner.run(sh(&body, Duration::from_secs(60))));
        let deadline = Instant::now() + Duration::from_secs(5);
        // Drive the run until the script has written its pids, then drop it.
        while !pids.exists() {
            assert!(Instant::now() < deadline, "the script never wrote its pids");
            let _ = tokio::time::timeout(Duration::from_millis(20), &mut run).await;
        }
        drop(run);
        let text = std::fs::read_to_string(&pids).expect("pids");
        let found: Vec<i32> = text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert_eq!(found.len(), 2, "{text}");
        for pid in found {
            wait_gone(pid).await;
        }
    }
}
