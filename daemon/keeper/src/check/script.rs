//! Scripts of the checkers (`misc_path`, `notify_up`, `notify_down`, quorum scripts):
//! keepalived's command-line syntax, and how a run ended, as the checkers word it.
//!
//! As in keepalived 2.x, a script is not given to a shell: the line is split into words
//! (double and single quotes, backslash escapes) and the first word is executed. keeperd's
//! script runner runs them (`crate::launcher`), as every other script: as their user, with no
//! capability, in a process group of their own that gets SIGTERM at the deadline and SIGKILL
//! 2 s later (keepalived's sequence), so a hung script and anything it started are gone.

use std::fmt;

/// A script ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The user it runs as (`misc_check.user`, `global.script_user`); `None`: keeperd's.
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
}
