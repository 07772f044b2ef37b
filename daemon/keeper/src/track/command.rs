//! keepalived's command lines (`vrrp_script`'s `script`, `vrrp_track_process`'s `process`):
//! how one string becomes a program and its arguments.
//!
//! The words are split as keepalived splits them (`alloc_strvec_quoted_escaped`, lib/parser.c),
//! with the rules of notify scripts: [`crate::notify::command`].
//!
//! Nothing is expanded: no variables, globs or redirections. keepalived's one exception is
//! kept: a command whose first word starts with `<` then `/` (`</dev/tcp/127.0.0.1/80`, a shell
//! idiom for "can this be opened") is run by `/bin/sh -c`, as keepalived's `system()` does;
//! see [`Command::argv`].

use std::fmt;

pub use crate::notify::command::CommandError;

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<String>,
}

/// Splits `line` into words as keepalived does (the rules are those of notify scripts,
/// [`crate::notify::command::split`]).
pub fn split(line: &str) -> Result<Command, CommandError> {
    crate::notify::command::split(line).map(|words| Command { words })
}

/// keepalived's `append_quoted_arg`: single quotes, an embedded `'` written `'\''`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl Command {
    /// Whether keepalived hands this command to the shell: its first word is a redirection
    /// of a path (`</dev/tcp/…`, `< /etc/x`), not a program.
    pub fn is_redirection(&self) -> bool {
        let first = self.words.first().map_or(&b""[..], |w| w.as_bytes());
        first.first() == Some(&b'<')
            && first[1..]
                .iter()
                .find(|&&b| b != b' ' && b != b'\t')
                .is_some_and(|&b| b == b'/')
    }

    /// The program and arguments to execute. A redirection (see [`Command::is_redirection`])
    /// becomes `/bin/sh -c LINE`, where LINE is the first word as written and the others
    /// single-quoted, as keepalived's `cmd_str` builds it. Whether `/dev/tcp` works then
    /// depends on what `/bin/sh` is (bash: yes; dash, Debian's: no).
    pub fn argv(&self) -> Vec<String> {
        if !self.is_redirection() {
            return self.words.clone();
        }
        let mut line = self.words.first().cloned().unwrap_or_default();
        for w in self.words.iter().skip(1) {
            line.push(' ');
            line.push_str(&shell_quote(w));
        }
        vec!["/bin/sh".into(), "-c".into(), line]
    }
}

/// Writes the command back in keepalived's syntax (`split` reads it back to the same words).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, w) in self.words.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            if !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"'\"\\".contains(&b))
            {
                f.write_str(w)?;
            } else {
                write!(f, "\"{}\"", w.replace('\\', r"\\").replace('"', r#"\""#))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirection_goes_to_the_shell_like_keepalived() {
        let c = split("</dev/tcp/127.0.0.1/80").expect("parses");
        assert!(c.is_redirection());
        assert_eq!(c.argv(), ["/bin/sh", "-c", "</dev/tcp/127.0.0.1/80"]);
        let c = split(r#"'< /etc/x' "it's""#).expect("parses");
        assert_eq!(c.argv(), ["/bin/sh", "-c", r"< /etc/x 'it'\''s'"]);
        let c = split("/bin/true <x").expect("parses");
        assert!(!c.is_redirection());
        assert_eq!(c.argv(), ["/bin/true", "<x"]);
    }

    #[test]
    fn display_round_trips() {
        for s in [r#"/bin/check "a b" c'd' "#, "x '' y", r#"q "it's" 'a\\b'"#] {
            let c = split(s).expect("parses");
            assert_eq!(split(&c.to_string()), Ok(c.clone()), "{s:?} -> {c}");
        }
    }
}
