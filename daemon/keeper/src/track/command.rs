//! keepalived's command lines (`vrrp_script`'s `script`, `vrrp_track_process`'s `process`):
//! how one string becomes a program and its arguments.
//!
//! Mirrors keepalived's `alloc_strvec_quoted_escaped` (lib/parser.c), which splits the string
//! that was inside the config file's quotes:
//! - words are separated by white space (space, tab, CR, LF, FF, VT) outside quotes;
//! - `"…"` and `'…'` group text into a word, anywhere in it (`a"b c"d` is one word `ab cd`);
//!   the two kinds of quote behave the same: the other kind is literal inside;
//! - a backslash escapes, inside quotes too (unlike a shell, also inside single quotes):
//!   `\a \b \E \f \n \r \t \v`, `\xH` / `\xHH` (hex), `\N` to `\NNN` (octal), `\cX` (control
//!   character X & 0x1f); any other character after a backslash stands for itself (`\\`,
//!   `\"`, `\'`, `\ `);
//! - a byte 0 produced by an escape ends its word (C strings);
//! - an unterminated quote or a trailing backslash is an error.
//!
//! Nothing is expanded: no variables, globs or redirections. keepalived's one exception is
//! kept: a command whose first word starts with `<` then `/` (`</dev/tcp/127.0.0.1/80`, a shell
//! idiom for "can this be opened") is run by `/bin/sh -c`, as keepalived's `system()` does;
//! see [`Command::argv`].

use std::fmt;

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<String>,
}

/// Why a command line was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("empty command")]
    Empty,
    #[error("missing terminating {0}")]
    UnterminatedQuote(char),
    #[error("a backslash at the end escapes nothing")]
    TrailingBackslash,
    #[error("word {0} is not valid UTF-8 after its escapes")]
    NotUtf8(usize),
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b')
}

/// Reads the escape after a backslash at `s[i]` (the character after the backslash); returns
/// the byte it stands for and the index after it.
fn escape(s: &[u8], i: usize) -> (u8, usize) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    match s[i] {
        b'x' if s.get(i + 1).and_then(|&b| hex(b)).is_some() => {
            let mut v: u8 = 0;
            let mut j = i + 1;
            while j < s.len() && j < i + 3 {
                match hex(s[j]) {
                    Some(d) => v = (v << 4) | d,
                    None => break,
                }
                j += 1;
            }
            (v, j)
        }
        b'c' if i + 1 < s.len() => (s[i + 1] & 0x1f, i + 2),
        b'0'..=b'7' => {
            // keepalived accumulates in a C char: three octal digits wrap at 8 bits.
            let mut v: u16 = 0;
            let mut j = i;
            while j < s.len() && j < i + 3 && (b'0'..=b'7').contains(&s[j]) {
                v = (v << 3) + u16::from(s[j] - b'0');
                j += 1;
            }
            (v as u8, j)
        }
        b'a' => (0x07, i + 1),
        b'b' => (0x08, i + 1),
        b'E' => (0x1b, i + 1),
        b'f' => (0x0c, i + 1),
        b'n' => (b'\n', i + 1),
        b'r' => (b'\r', i + 1),
        b't' => (b'\t', i + 1),
        b'v' => (0x0b, i + 1),
        other => (other, i + 1),
    }
}

/// Splits `line` into words as keepalived does (see the module documentation).
pub fn split(line: &str) -> Result<Command, CommandError> {
    let s = line.as_bytes();
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < s.len() {
            let b = s[i];
            match (quote, b) {
                (_, b'\\') => {
                    if i + 1 >= s.len() {
                        return Err(CommandError::TrailingBackslash);
                    }
                    let (c, next) = escape(s, i + 1);
                    word.push(c);
                    i = next;
                }
                (Some(q), b) if b == q => {
                    quote = None;
                    i += 1;
                }
                (Some(_), b) => {
                    word.push(b);
                    i += 1;
                }
                (None, b'"' | b'\'') => {
                    quote = Some(b);
                    i += 1;
                }
                (None, b) if is_space(b) => break,
                (None, b) => {
                    word.push(b);
                    i += 1;
                }
            }
        }
        if let Some(q) = quote {
            return Err(CommandError::UnterminatedQuote(q as char));
        }
        if let Some(nul) = word.iter().position(|&b| b == 0) {
            word.truncate(nul);
        }
        words.push(word);
    }
    if words.is_empty() {
        return Err(CommandError::Empty);
    }
    let words = words
        .into_iter()
        .enumerate()
        .map(|(n, w)| String::from_utf8(w).map_err(|_| CommandError::NotUtf8(n + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Command { words })
}

/// keepalived's `append_quoted_arg`: single quotes, an embedded `'` written `'\''`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl Command {
    /// Whether keepalived hands this command to the shell: its first word is a redirection
    /// of a path (`</dev/tcp/…`, `< /etc/x`), not a program.
    pub fn is_redirection(&self) -> bool {
        let first = self.words[0].as_bytes();
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
        let mut line = self.words[0].clone();
        for w in &self.words[1..] {
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

    fn words(s: &str) -> Vec<String> {
        match split(s) {
            Ok(c) => c.words,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn plain_words_and_white_space() {
        assert_eq!(
            words("/usr/bin/killall -0 haproxy"),
            ["/usr/bin/killall", "-0", "haproxy"]
        );
        assert_eq!(words("  a\t\tb \n c  "), ["a", "b", "c"]);
    }

    #[test]
    fn quotes_group_anywhere_and_nest_the_other_kind() {
        assert_eq!(words(r#"check "a b" 'c d'"#), ["check", "a b", "c d"]);
        assert_eq!(words(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(words(r#"say "it's" 'a "b"'"#), ["say", "it's", r#"a "b""#]);
        assert_eq!(words(r#"x "" ''"#), ["x", "", ""]);
    }

    #[test]
    fn escapes_as_keepalived_including_inside_single_quotes() {
        assert_eq!(words(r"a\ b"), ["a b"]);
        assert_eq!(words(r"'a\tb'"), ["a\tb"]);
        assert_eq!(words(r#""a\"b""#), ["a\"b"]);
        assert_eq!(words(r"\x41\x4a\x4"), ["AJ\x04"]);
        assert_eq!(words(r"\xg"), ["xg"]);
        assert_eq!(words(r"\101\1012"), ["AA2"]);
        assert_eq!(words(r"\cA\E\n"), ["\x01\x1b\n"]);
        assert_eq!(words(r"a\\b"), [r"a\b"]);
        assert_eq!(words(r"ab\0cd ef"), ["ab", "ef"], "NUL ends the C string");
    }

    #[test]
    fn refusals() {
        assert_eq!(split(""), Err(CommandError::Empty));
        assert_eq!(split("  \t"), Err(CommandError::Empty));
        assert_eq!(split("a 'b"), Err(CommandError::UnterminatedQuote('\'')));
        assert_eq!(split("a \"b"), Err(CommandError::UnterminatedQuote('"')));
        assert_eq!(split(r"a\"), Err(CommandError::TrailingBackslash));
        assert_eq!(split(r"\xff"), Err(CommandError::NotUtf8(1)));
    }

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
