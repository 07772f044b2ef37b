//! Scripts of the checkers (`misc_path`, `notify_up`, `notify_down`): keepalived's command-line
//! syntax, and running one with a deadline on tokio without blocking the runtime.
//!
//! As in keepalived 2.x, a script is not given to a shell: the line is split into words
//! (double and single quotes, backslash escapes) and the first word is executed. Each run gets
//! its own process group; at the deadline the group gets SIGTERM and, 2 s later, SIGKILL
//! (keepalived's sequence), so a hung script and anything it started are gone.

use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Time a script gets to exit after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);

/// A script ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The user it should run as (`misc_check.user`, `global.script_user`); see [`command`].
    pub user: Option<String>,
}

impl Script {
    /// Parses a keepalived script line.
    pub fn parse(line: &str, user: Option<String>) -> Result<Script, String> {
        let argv = split_words(line)?;
        if argv.is_empty() {
            return Err("empty script line".to_string());
        }
        Ok(Script { argv, user })
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.argv.join(" "))
    }
}

/// Splits a script line into words, as every other script of keeperd is split (notify and
/// track scripts: [`crate::launcher::split_command`]): whitespace separates, quotes group, a
/// backslash escapes, nothing is expanded.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    crate::launcher::split_command(line)
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptEnd {
    Exited(i32),
    /// Killed by a signal it was not sent by us.
    Signaled(i32),
    /// Still running at the deadline: terminated (its whole process group).
    TimedOut,
    /// Could not be started (not found, not executable, ...).
    NotStarted(String),
}

impl fmt::Display for ScriptEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptEnd::Exited(code) => write!(f, "exited with status {code}"),
            ScriptEnd::Signaled(sig) => write!(f, "killed by signal {sig}"),
            ScriptEnd::TimedOut => f.write_str("timed out (killed)"),
            ScriptEnd::NotStarted(e) => write!(f, "cannot start: {e}"),
        }
    }
}

/// The command for `script`, run as the daemon's own user. A script with a `user` runs through
/// keeperd's script runner instead (the launcher switches to that user, with no capabilities):
/// see `engine::run_script`; this path serves when the checkers have no runner.
pub fn command(script: &Script) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&script.argv[0]);
    cmd.args(&script.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group, so that the deadline reaches everything it started.
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

fn end_of(status: ExitStatus) -> ScriptEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ScriptEnd::Exited(code),
        (None, Some(sig)) => ScriptEnd::Signaled(sig),
        (None, None) => ScriptEnd::Exited(-1),
    }
}

/// Kills a run's process group if the run is abandoned (the future dropped at shutdown or
/// reload): a script never outlives the check that started it.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

/// Runs `script` to its end or to `timeout`, never blocking the runtime.
pub async fn run(script: &Script, timeout: Duration) -> ScriptEnd {
    let mut child = match command(script).spawn() {
        Ok(c) => c,
        Err(e) => return ScriptEnd::NotStarted(format!("{}: {e}", script.argv[0])),
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut guard = GroupGuard(pgid);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            guard.0 = None;
            end_of(status)
        }
        Ok(Err(e)) => ScriptEnd::NotStarted(format!("wait: {e}")),
        Err(_) => {
            if let Some(pg) = pgid {
                let _ = killpg(pg, Signal::SIGTERM);
                if tokio::time::timeout(TERM_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    let _ = killpg(pg, Signal::SIGKILL);
                    let _ = child.wait().await;
                }
                // Whatever obeyed, what it started may not have (keepalived does the same):
                // the guard's SIGKILL to the group follows.
            } else {
                let _ = child.kill().await;
            }
            ScriptEnd::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_keepalived() {
        let w = |s: &str| split_words(s).expect("splits");
        assert_eq!(w("/bin/check 1 2"), ["/bin/check", "1", "2"]);
        assert_eq!(
            w("  a   'b c'  \"d \\\" e\" f\\ g "),
            ["a", "b c", "d \" e", "f g"]
        );
        assert_eq!(w("''"), [""]);
        assert!(split_words("").is_err());
        assert!(split_words("a 'b").is_err());
        assert!(split_words("a \"b").is_err());
        assert!(split_words("a\\").is_err());
        assert!(Script::parse("   ", None).is_err());
    }

    #[tokio::test]
    async fn exit_codes_and_deadline() {
        let sh = |s: &str| Script {
            argv: vec!["/bin/sh".into(), "-c".into(), s.into()],
            user: None,
        };
        let long = Duration::from_secs(20);
        assert_eq!(run(&sh("exit 0"), long).await, ScriptEnd::Exited(0));
        assert_eq!(run(&sh("exit 7"), long).await, ScriptEnd::Exited(7));
        assert_eq!(run(&sh("kill -9 $$"), long).await, ScriptEnd::Signaled(9));
        let missing = Script {
            argv: vec!["/nonexistent/keeper-check".into()],
            user: None,
        };
        assert!(matches!(
            run(&missing, long).await,
            ScriptEnd::NotStarted(_)
        ));
        let t = std::time::Instant::now();
        // A script that ignores SIGTERM: killed after the grace period.
        let end = run(&sh("trap '' TERM; sleep 30"), Duration::from_millis(200)).await;
        assert_eq!(end, ScriptEnd::TimedOut);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(200) + TERM_GRACE, "{took:?}");
        assert!(took < Duration::from_secs(15), "{took:?}");
    }
}
