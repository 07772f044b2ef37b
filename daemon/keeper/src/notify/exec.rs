//! Running one notify script: its own process group, a clean environment, no capabilities, the
//! configured script user, and a timeout after which the whole process group is killed.
//!
//! [`Runner`] is the one place scripts start. Today it starts them itself with
//! `tokio::process` ([`Runner::Direct`]). The hardened runtime (issue 10) brings a script
//! launcher that runs scripts as other users after keeperd has dropped its privileges: it plugs
//! in as another variant of [`Runner`] (see `HOOK(launcher)` below); nothing else in the notify
//! module changes, since [`Script`] carries what the launcher's request carries (argv, timeout,
//! user).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Output kept per stream for logs; the rest is read and discarded.
const OUTPUT_LIMIT: usize = 1024;
/// After a script exits, how long a background child may hold its pipes before the output
/// read is abandoned.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);
/// `PATH` for scripts when keeperd itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A script to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Program and arguments, already split (see [`super::command`]).
    pub argv: Vec<String>,
    /// The process group is killed (SIGKILL) when the script runs longer.
    pub timeout: Duration,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    /// Killed by a signal that did not come from keeperd.
    Signaled(i32),
    /// Ran past its timeout: its process group was killed.
    TimedOut,
    /// Could not be started (not found, not executable, user switch refused).
    NotStarted(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(c) => write!(f, "exit code {c}"),
            Outcome::Signaled(s) => write!(f, "killed by signal {s}"),
            Outcome::TimedOut => f.write_str("timed out; its process group was killed"),
            Outcome::NotStarted(e) => write!(f, "cannot start: {e}"),
        }
    }
}

/// What a run produced, for logs.
#[derive(Clone, Debug)]
pub struct Run {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

/// An account scripts switch to (uid, gid, supplementary groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Account {
    /// Resolves keepalived's `script_user` syntax: `user`, `user:group` or `user group`.
    pub fn resolve(spec: &str) -> Result<Account, String> {
        let mut parts = spec.splitn(2, [':', ' ']);
        let user_name = parts.next().unwrap_or("").trim();
        let group_name = parts.next().map(str::trim).filter(|g| !g.is_empty());
        let user = nix::unistd::User::from_name(user_name)
            .map_err(|e| format!("looking up user {user_name:?}: {e}"))?
            .ok_or_else(|| format!("no user {user_name:?}"))?;
        let gid = match group_name {
            Some(g) => {
                nix::unistd::Group::from_name(g)
                    .map_err(|e| format!("looking up group {g:?}: {e}"))?
                    .ok_or_else(|| format!("no group {g:?}"))?
                    .gid
            }
            None => user.gid,
        };
        let c_name = std::ffi::CString::new(user_name).map_err(|e| e.to_string())?;
        let groups = nix::unistd::getgrouplist(&c_name, gid)
            .map_err(|e| format!("supplementary groups of {user_name:?}: {e}"))?;
        Ok(Account {
            name: user_name.to_string(),
            uid: user.uid.as_raw(),
            gid: gid.as_raw(),
            groups: groups.into_iter().map(|g| g.as_raw()).collect(),
        })
    }
}

/// Where scripts start.
#[derive(Clone, Debug)]
pub enum Runner {
    /// keeperd forks them itself. `switch_to` is the script user when it differs from
    /// keeperd's own identity (possible only while keeperd runs as root).
    Direct { switch_to: Option<Account> },
    /// The hardened runtime's script launcher: it owns the user switch and the capability
    /// drop, and works after keeperd has dropped its privileges (the daemon's own runner).
    Launcher(crate::launcher::ScriptRunner),
}

impl Runner {
    /// Starts scripts as keeperd's own user, or as `script_user` when that is a different
    /// identity and keeperd may switch to it (root). A script user that cannot be resolved or
    /// switched to is an error: scripts never run as someone else than configured.
    pub fn direct(script_user: Option<&str>) -> Result<Runner, String> {
        let Some(spec) = script_user else {
            return Ok(Runner::Direct { switch_to: None });
        };
        let account = Account::resolve(spec)?;
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        if account.uid == uid && account.gid == gid {
            return Ok(Runner::Direct { switch_to: None });
        }
        if uid != 0 {
            return Err(format!(
                "script_user {spec:?} differs from keeperd's user (uid {uid}) and keeperd is not root: it cannot switch"
            ));
        }
        Ok(Runner::Direct {
            switch_to: Some(account),
        })
    }

    /// Runs `script` to its end or its timeout. Never panics on what the script does.
    pub async fn run(&self, script: &Script) -> Run {
        match self {
            Runner::Direct { switch_to } => exec(script, switch_to.as_ref()).await,
            Runner::Launcher(launcher) => {
                let started = Instant::now();
                let request = crate::launcher::Script {
                    argv: script.argv.clone(),
                    env: Vec::new(),
                    timeout: script.timeout,
                    user: None,
                };
                match launcher.run(request).await {
                    Ok(r) => Run {
                        outcome: match r.outcome {
                            crate::launcher::Outcome::Exited(c) => Outcome::Exited(c),
                            crate::launcher::Outcome::Signaled(s) => Outcome::Signaled(s),
                            crate::launcher::Outcome::TimedOut => Outcome::TimedOut,
                        },
                        stdout: r.stdout,
                        stderr: r.stderr,
                        duration: r.duration,
                    },
                    Err(e) => Run {
                        outcome: Outcome::NotStarted(e.to_string()),
                        stdout: String::new(),
                        stderr: String::new(),
                        duration: started.elapsed(),
                    },
                }
            }
        }
    }
}

/// Kills the script's process group when dropped before the script was reaped (the task
/// running it was aborted, e.g. at the stop deadline).
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(p) = self.pgid.take()
            && p > 1
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn exec(script: &Script, switch_to: Option<&Account>) -> Run {
    let started = Instant::now();
    let not_started = |e: String| Run {
        outcome: Outcome::NotStarted(e),
        stdout: String::new(),
        stderr: String::new(),
        duration: started.elapsed(),
    };
    let Some(program) = script.argv.first() else {
        return not_started("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&script.argv[1..])
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: the timeout reaches everything the script started.
        .process_group(0)
        .kill_on_drop(true);
    let switch = switch_to.map(|a| (a.uid, a.gid, a.groups.clone()));
    // SAFETY: the closure makes raw syscalls only, on data allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid, groups)) = &switch {
                switch_user(*uid, *gid, groups)?;
            }
            // No privilege from exec either: no setuid (`sudo`), no file capabilities, and a
            // script running as root does not regain capabilities. The bounding set first:
            // dropping from it needs CAP_SETPCAP, which the next call clears.
            drop_bounding_set();
            crate::privilege::clear_all_caps_raw()?;
            // keepalived's choice: a script outlives neither keeperd nor its timeout.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // A file without `#!` runs under /bin/sh: std execs with execvp(3), which falls back to
    // the shell on ENOEXEC, as keepalived's system() fallback does.
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return not_started(format!("{program}: {e}")),
    };
    let mut guard = GroupGuard {
        pgid: child.id().and_then(|p| i32::try_from(p).ok()),
    };
    let out = child.stdout.take().map(|s| tokio::spawn(read_capped(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_capped(s)));
    let outcome = match tokio::time::timeout(script.timeout, child.wait()).await {
        Ok(Ok(st)) => {
            // Reaped: the group id may be reused from now on; do not kill it any more.
            guard.pgid = None;
            match (st.code(), st.signal()) {
                (Some(c), _) => Outcome::Exited(c),
                (None, Some(s)) => Outcome::Signaled(s),
                (None, None) => Outcome::Signaled(0),
            }
        }
        Ok(Err(e)) => {
            guard.kill();
            Outcome::NotStarted(format!("waiting for {program}: {e}"))
        }
        Err(_) => {
            guard.kill();
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    };
    let duration = started.elapsed();
    let stdout = collect(out).await;
    let stderr = collect(err).await;
    Run {
        outcome,
        stdout,
        stderr,
        duration,
    }
}

async fn collect(h: Option<tokio::task::JoinHandle<String>>) -> String {
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
    String::from_utf8_lossy(&kept).trim_end().to_string()
}

/// In the forked child: supplementary groups, then gid, then uid (the order that keeps the
/// right to change the next one).
fn switch_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let check = |r: libc::c_long| {
        if r != 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: raw setgroups/setresgid/setresuid in the single-threaded forked child; the groups
    // pointer and length describe a live slice.
    unsafe {
        check(libc::syscall(
            libc::SYS_setgroups,
            groups.len() as libc::size_t,
            groups.as_ptr(),
        ))?;
        check(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
        check(libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
    }
    Ok(())
}

/// In the forked child: empties the capability bounding set, as far as keeperd may (it needs
/// CAP_SETPCAP; without it the set stays, and no_new_privs plus empty permitted sets still keep
/// the script from gaining any).
fn drop_bounding_set() {
    for cap in 0..64 {
        // SAFETY: prctl(2) with integer arguments only; EINVAL past the last capability and
        // EPERM without CAP_SETPCAP are expected and ignored.
        unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                cap as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(argv: &[&str], timeout: Duration) -> Script {
        Script {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout,
        }
    }

    #[tokio::test]
    async fn exit_codes_output_and_arguments_pass_through() {
        let r = Runner::Direct { switch_to: None };
        let run = r
            .run(&script(
                &[
                    "/bin/sh",
                    "-c",
                    "echo \"$1|$2\"; echo oops >&2; exit 3",
                    "sh",
                    "a b",
                    "$X",
                ],
                Duration::from_secs(10),
            ))
            .await;
        assert_eq!(run.outcome, Outcome::Exited(3));
        assert_eq!(run.stdout, "a b|$X");
        assert_eq!(run.stderr, "oops");
    }

    #[tokio::test]
    async fn missing_program_is_not_started() {
        let r = Runner::Direct { switch_to: None };
        let run = r
            .run(&script(&["/nonexistent/notify"], Duration::from_secs(1)))
            .await;
        assert!(matches!(run.outcome, Outcome::NotStarted(_)), "{run:?}");
    }

    /// A script file without a `#!` line runs under /bin/sh (execvp's rule; keepalived gets
    /// the same through system()).
    #[tokio::test]
    async fn script_without_shebang_runs_under_sh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("noshebang");
        std::fs::write(&path, "echo \"sh got $1\"\n").expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let r = Runner::Direct { switch_to: None };
        let run = r
            .run(&Script {
                argv: vec![path.display().to_string(), "MASTER".into()],
                timeout: Duration::from_secs(5),
            })
            .await;
        assert_eq!(run.outcome, Outcome::Exited(0), "{run:?}");
        assert_eq!(run.stdout, "sh got MASTER");
    }

    /// A script that hangs, with a child of its own that hangs too: at the timeout both are
    /// gone (the whole process group is killed), and the run returns promptly.
    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("grandchild.pid");
        let r = Runner::Direct { switch_to: None };
        let line = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let run = r
            .run(&script(
                &["/bin/sh", "-c", &line],
                Duration::from_millis(300),
            ))
            .await;
        assert_eq!(run.outcome, Outcome::TimedOut);
        assert!(run.duration < Duration::from_secs(5), "{:?}", run.duration);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        // The grandchild was in the script's group: it is dead (reaped by init or a zombie
        // until then; a zombie has state Z).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
            if stat.is_empty() || state == Some('Z') {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "grandchild {pid} still alive: {stat}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn environment_is_clean_and_capabilities_are_empty() {
        let r = Runner::Direct { switch_to: None };
        let run = r
            .run(&script(
                &[
                    "/bin/sh",
                    "-c",
                    "env | grep -v -e '^PATH=' -e '^PWD=' -e '^SHLVL=' -e '^_=' | wc -l; grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status",
                ],
                Duration::from_secs(10),
            ))
            .await;
        assert_eq!(run.outcome, Outcome::Exited(0), "{run:?}");
        let mut lines = run.stdout.lines();
        assert_eq!(lines.next().map(str::trim), Some("0"), "{}", run.stdout);
        // Also when the tests run as root: no_new_privs keeps a root script from regaining them.
        let caps: Vec<&str> = lines.collect();
        assert_eq!(caps.len(), 3, "{}", run.stdout);
        for l in caps {
            assert!(l.ends_with("0000000000000000"), "{l}");
        }
    }
}
