//! `smtp_check`, with keepalived's semantics (`check_smtp.c`): connect, read the greeting
//! (code 220), send `HELO <helo_name>`, read its answer (code 250), send `QUIT`, read one
//! more reply (any), close. Each read and write is bounded by `connect_timeout`. Its retries
//! count per round (`machine::RetryRule::EachRound`).
//!
//! A reply may span several lines (`250-…` then `250 …`, RFC 5321 4.2.1); keepalived reads
//! only the first line and so fails a multi-line greeting, which real servers send: here the
//! reply is read to its last line and its code judged. The conversation is a pure state
//! machine over the bytes received ([`Conversation`]).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::plan::Smtp;
use super::tcp;

/// A reply longer than this is refused (keepalived's buffer is 512 octets and wraps).
pub const MAX_REPLY: usize = 16 * 1024;

/// What the conversation does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read more.
    Read,
    /// Send these bytes, then read.
    Send(Vec<u8>),
    /// The server passed.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Helo,
    Quit,
    Done,
}

/// The client side of the check, fed with what the server sends.
#[derive(Clone, Debug)]
pub struct Conversation {
    helo: String,
    state: State,
    buf: Vec<u8>,
}

/// A complete reply in `buf`: its code and the number of bytes it took.
fn complete_reply(buf: &[u8]) -> Result<Option<(u16, usize)>, String> {
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        let line = &buf[start..start + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let end = start + nl + 1;
        let code = line
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else {
            return Err(format!("not an SMTP reply: {}", shown(line)));
        };
        match line.get(3) {
            // "250-": more lines of this reply follow.
            Some(b'-') => start = end,
            None | Some(b' ') => return Ok(Some((code, end))),
            Some(_) => return Err(format!("not an SMTP reply: {}", shown(line))),
        }
    }
    Ok(None)
}

fn shown(line: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&line[..line.len().min(60)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!("{s:?}")
}

impl Conversation {
    pub fn new(helo: &str) -> Conversation {
        Conversation {
            helo: helo.to_string(),
            state: State::Greeting,
            buf: Vec::new(),
        }
    }

    /// Takes received bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Step, String> {
        self.buf.extend_from_slice(bytes);
        let Some((code, used)) = complete_reply(&self.buf)? else {
            if self.buf.len() > MAX_REPLY {
                return Err(format!("reply longer than {MAX_REPLY} octets"));
            }
            return Ok(Step::Read);
        };
        self.buf.drain(..used);
        match self.state {
            State::Greeting if code == 220 => {
                self.state = State::Helo;
                Ok(Step::Send(format!("HELO {}\r\n", self.helo).into_bytes()))
            }
            State::Greeting => Err(format!("greeting {code}, not 220")),
            State::Helo if code == 250 => {
                self.state = State::Quit;
                Ok(Step::Send(b"QUIT\r\n".to_vec()))
            }
            State::Helo => Err(format!("HELO answered {code}, not 250")),
            // keepalived accepts any answer to QUIT.
            State::Quit | State::Done => {
                self.state = State::Done;
                Ok(Step::Done)
            }
        }
    }

    /// What the conversation waits for, for the error at end of stream or timeout.
    pub fn waiting_for(&self) -> &'static str {
        match self.state {
            State::Greeting => "the greeting",
            State::Helo => "the answer to HELO",
            State::Quit | State::Done => "the answer to QUIT",
        }
    }
}

/// One attempt.
pub async fn check(s: &Smtp) -> Result<(), String> {
    let target = s.connect.target;
    let timeout = s.connect.timeout;
    let mut stream = tcp::connect(&s.connect).await?;
    let mut talk = Conversation::new(&s.helo);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout(timeout, stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("{target}: reading {}: {e}", talk.waiting_for())),
            Err(_) => {
                return Err(format!(
                    "{target}: no {} within connect_timeout {timeout:?}",
                    talk.waiting_for()
                ));
            }
        };
        if n == 0 {
            return Err(format!(
                "{target}: connection closed before {}",
                talk.waiting_for()
            ));
        }
        match talk.feed(&buf[..n]).map_err(|e| format!("{target}: {e}"))? {
            Step::Read => {}
            Step::Send(line) => {
                match tokio::time::timeout(timeout, stream.write_all(&line)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(format!("{target}: send: {e}")),
                    Err(_) => return Err(format!("{target}: send: timed out after {timeout:?}")),
                }
            }
            Step::Done => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` and answers as the check would; returns what was sent and the end.
    fn talk(chunks: &[&[u8]]) -> (Vec<String>, Result<Step, String>) {
        let mut c = Conversation::new("smtpchecker.keepalived.org");
        let mut sent = Vec::new();
        let mut last = Ok(Step::Read);
        for chunk in chunks {
            last = c.feed(chunk);
            match &last {
                Ok(Step::Send(b)) => sent.push(String::from_utf8_lossy(b).into_owned()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (sent, last)
    }

    #[test]
    fn keepalived_s_conversation() {
        let (sent, end) = talk(&[
            b"220 mx.example.org ESMTP\r\n",
            b"250 mx.example.org\r\n",
            b"221 Bye\r\n",
        ]);
        assert_eq!(sent, ["HELO smtpchecker.keepalived.org\r\n", "QUIT\r\n"]);
        assert_eq!(end, Ok(Step::Done));
    }

    #[test]
    fn replies_split_multi_line_and_bare() {
        // Split anywhere, multi-line greeting, bare "250" with LF only.
        let (sent, end) = talk(&[
            b"220-mx.example",
            b".org welcome\r\n220 ESMTP\r",
            b"\n",
            b"250\n",
            b"2",
            b"21 bye\r\n",
        ]);
        assert_eq!(sent.len(), 2);
        assert_eq!(end, Ok(Step::Done));
    }

    #[test]
    fn failures_name_the_step() {
        assert_eq!(
            talk(&[b"554 no service\r\n"]).1,
            Err("greeting 554, not 220".into())
        );
        assert_eq!(
            talk(&[b"220 hi\r\n", b"501 bad HELO\r\n"]).1,
            Err("HELO answered 501, not 250".into())
        );
        let e = talk(&[b"SSH-2.0-OpenSSH_9.2\r\n"]).1.expect_err("not smtp");
        assert!(e.starts_with("not an SMTP reply"), "{e}");
        let e = talk(&[b"220x\r\n"]).1.expect_err("bad separator");
        assert!(e.starts_with("not an SMTP reply"), "{e}");
        let huge = vec![b'2'; MAX_REPLY + 1];
        assert!(talk(&[&huge]).1.is_err());
        let c = Conversation::new("x");
        assert_eq!(c.waiting_for(), "the greeting");
    }
}
