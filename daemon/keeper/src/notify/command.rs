//! keepalived's script command-line syntax, for notify scripts.
//!
//! keepalived splits a script string into words itself (`alloc_strvec_quoted_escaped` in its
//! `lib/parser.c`) and `execve`s the first word with the rest as arguments: no shell is involved,
//! so `$VAR`, `;`, `|`, `>` and globs are passed through literally. A line that needs a shell
//! says so: `"/bin/sh -c 'ip addr > /tmp/x'"`. The rules, mirrored exactly:
//! - unquoted whitespace (space, tab) separates words;
//! - `'…'` and `"…"` group, and may sit inside a word (`a'b c'd` is one word `ab cd`);
//! - a backslash escapes, inside or outside quotes, with C-like sequences: `\a \b \E \f \n \r
//!   \t \v`, `\xHH` (1-2 hex digits), `\cX` (control character), `\NNN` (1-3 octal digits); any
//!   other character after a backslash stands for itself (`\"`, `\'`, `\\`, `\ `);
//! - an unterminated quote or a trailing backslash is an error.

/// Why a command line cannot be split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("empty command")]
    Empty,
    #[error("missing terminating {0} quote")]
    UnterminatedQuote(char),
    #[error("backslash at the end of the command")]
    TrailingBackslash,
}

/// Splits `line` into argv as keepalived does.
pub fn split(line: &str) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut word: Vec<u8> = Vec::new();
    let mut in_word = false;
    let mut quote: Option<u8> = None;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        match (quote, c) {
            (_, b'\\') => {
                in_word = true;
                let Some(&e) = bytes.get(i) else {
                    return Err(CommandError::TrailingBackslash);
                };
                i += 1;
                let out = match e {
                    b'x' if bytes.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                        let mut v: u8 = 0;
                        let mut n = 0;
                        while n < 2 && bytes.get(i).is_some_and(u8::is_ascii_hexdigit) {
                            v = (v << 4) | hex_value(bytes[i]);
                            i += 1;
                            n += 1;
                        }
                        v
                    }
                    b'c' if i < bytes.len() => {
                        let v = bytes[i] & 0x1f;
                        i += 1;
                        v
                    }
                    b'0'..=b'7' => {
                        let mut v: u8 = e - b'0';
                        let mut n = 1;
                        while n < 3 && bytes.get(i).is_some_and(|b| (b'0'..=b'7').contains(b)) {
                            v = v.wrapping_shl(3).wrapping_add(bytes[i] - b'0');
                            i += 1;
                            n += 1;
                        }
                        v
                    }
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b'E' => 0x1b,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 0x0b,
                    other => other,
                };
                word.push(out);
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, b'\'' | b'"') => {
                in_word = true;
                quote = Some(c);
            }
            (None, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c') => {
                if in_word {
                    words.push(String::from_utf8_lossy(&word).into_owned());
                    word.clear();
                    in_word = false;
                }
            }
            (None, c) => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if let Some(q) = quote {
        return Err(CommandError::UnterminatedQuote(q as char));
    }
    if in_word {
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
    if words.is_empty() {
        return Err(CommandError::Empty);
    }
    Ok(words)
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        match split(line) {
            Ok(w) => w,
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    #[test]
    fn plain_words_and_whitespace() {
        assert_eq!(words("/bin/true"), ["/bin/true"]);
        assert_eq!(
            words("  /usr/local/bin/n.sh\tmaster   VI_1 "),
            ["/usr/local/bin/n.sh", "master", "VI_1"]
        );
    }

    #[test]
    fn quotes_group_and_join_within_a_word() {
        assert_eq!(words("/x 'a b' \"c d\""), ["/x", "a b", "c d"]);
        assert_eq!(words("/x a'b c'd"), ["/x", "ab cd"]);
        assert_eq!(words("/x '' \"\""), ["/x", "", ""]);
        // The other quote is literal inside a quoted part.
        assert_eq!(
            words("/x \"it's\" 'say \"hi\"'"),
            ["/x", "it's", "say \"hi\""]
        );
    }

    #[test]
    fn nothing_is_expanded_no_shell_syntax() {
        assert_eq!(
            words("/x $HOME ; | > * `id`"),
            ["/x", "$HOME", ";", "|", ">", "*", "`id`"]
        );
    }

    /// The example of keepalived.conf(5), "SCRIPTS": `' spaces\\\\x20f\\x69le '` in the
    /// man page source is `' spaces\\x20f\x69le '` in a config file.
    #[test]
    fn keepalived_man_page_example() {
        assert_eq!(
            words(r#"/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' x"#),
            [
                "/etc/keepalived/notify_event.sh",
                r" spaces\x20file ",
                "\"s p a c e \"",
                "x"
            ]
        );
    }

    #[test]
    fn escape_sequences() {
        assert_eq!(
            words(r"/x a\ b \t\n \x41\x4a \101 \cA \q \\"),
            ["/x", "a b", "\t\n", "AJ", "A", "\u{1}", "q", "\\"]
        );
        // Escapes work inside double and single quotes alike (keepalived, unlike a shell).
        assert_eq!(words(r#"/x "a\"b" 'c\'d'"#), ["/x", "a\"b", "c'd"]);
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(split(""), Err(CommandError::Empty));
        assert_eq!(split("   "), Err(CommandError::Empty));
        assert_eq!(split("/x 'a"), Err(CommandError::UnterminatedQuote('\'')));
        assert_eq!(split("/x \"a"), Err(CommandError::UnterminatedQuote('"')));
        assert_eq!(split("/x a\\"), Err(CommandError::TrailingBackslash));
    }
}
