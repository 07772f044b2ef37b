//! `http_get` and `ssl_get`: for each `url`, a new connection, one HTTP/1.0 GET as keepalived
//! sends it, and the answer checked for its status code, the MD5 of its body (keepalived's
//! `genhash` digest) and a regex over the body.
//!
//! Every step (connect, TLS handshake, write, each read) is bounded by `connect_timeout`, as in
//! keepalived. The response is read until the server closes or `Content-Length` bytes arrived.
//! The parser is incremental and pure ([`ResponseReader`]), tested on byte fixtures.

use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::plan::{Http, Url};
use super::tcp;

/// The response header must fit in this.
pub const MAX_HEAD: usize = 64 * 1024;
/// Bodies longer than this fail the check (the digest needs the whole body).
pub const MAX_BODY: u64 = 16 * 1024 * 1024;
/// The regex sees the first this-many bytes of the body.
pub const REGEX_WINDOW: usize = 1024 * 1024;
/// The first read of a response gets this much room: a status line and a few headers, all
/// that most health-check answers hold. Each attempt in flight holds its buffer, and
/// thousands may be in flight.
const FIRST_READ: usize = 1024;
/// Reads that fill their buffer double it up to this.
const MAX_READ: usize = 16 * 1024;

/// keepalived's request for HTTP/1.0 (same `User-Agent`, so that servers which recognise
/// keepalived's checks keep doing so).
pub fn request(url: &Url) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: {}\r\n\r\n",
        url.path, url.host
    )
    .into_bytes()
}

/// What was received, once the response is complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body_len: u64,
    pub md5: [u8; 16],
    /// The first [`REGEX_WINDOW`] bytes of the body; empty unless the reader was asked to keep
    /// them ([`ResponseReader::new`]).
    pub body_start: Vec<u8>,
}

/// Reads a response incrementally.
#[derive(Clone, Debug)]
pub struct ResponseReader {
    head: Vec<u8>,
    status: Option<u16>,
    content_length: Option<u64>,
    body_len: u64,
    md5: Md5,
    /// Only a regex reads the body itself; the digest is computed as it streams by.
    keep_body: bool,
    body_start: Vec<u8>,
}

impl Default for ResponseReader {
    /// A reader that keeps the start of the body.
    fn default() -> Self {
        ResponseReader::new(true)
    }
}

fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn printable(bytes: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!("{s:?}")
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let text = std::str::from_utf8(line)
        .map_err(|_| format!("not an HTTP response: {}", printable(line)))?;
    let mut words = text.split_ascii_whitespace();
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!("not an HTTP response: {}", printable(line)));
    }
    code.parse::<u16>()
        .map_err(|_| format!("not an HTTP response: {}", printable(line)))
}

impl ResponseReader {
    /// `keep_body`: keep the first [`REGEX_WINDOW`] bytes of the body (for a regex).
    pub fn new(keep_body: bool) -> Self {
        ResponseReader {
            head: Vec::new(),
            status: None,
            content_length: None,
            body_len: 0,
            md5: Md5::new(),
            keep_body,
            body_start: Vec::new(),
        }
    }

    /// Takes received bytes; returns true once the response is complete (by `Content-Length`).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<bool, String> {
        if self.status.is_none() {
            let before = self.head.len();
            self.head.extend_from_slice(bytes);
            // Look again a little before the new bytes: the separator may straddle two reads.
            let from = before.saturating_sub(3);
            match find_head_end(&self.head[from..]) {
                Some((end, body_at)) => {
                    let (end, body_at) = (from + end, from + body_at);
                    self.parse_head(end)?;
                    let consumed_new = body_at.saturating_sub(before);
                    // Only kept for an error message now: give the room back.
                    self.head.truncate(end);
                    self.head.shrink_to_fit();
                    bytes = &bytes[consumed_new..];
                }
                None => {
                    if self.head.len() > MAX_HEAD {
                        return Err(format!("response header longer than {MAX_HEAD} bytes"));
                    }
                    return Ok(false);
                }
            }
        }
        self.body(bytes)?;
        Ok(self.content_length.is_some_and(|n| self.body_len >= n))
    }

    fn parse_head(&mut self, end: usize) -> Result<(), String> {
        let head = &self.head[..end];
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status = parse_status_line(lines.next().unwrap_or(b""))?;
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            if line[..colon].eq_ignore_ascii_case(b"content-length") {
                self.content_length = std::str::from_utf8(&line[colon + 1..])
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
            }
        }
        self.status = Some(status);
        Ok(())
    }

    fn body(&mut self, bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.body_len += bytes.len() as u64;
        if self.body_len > MAX_BODY {
            return Err(format!("response body longer than {MAX_BODY} bytes"));
        }
        self.md5.update(bytes);
        if !self.keep_body {
            return Ok(());
        }
        let room = REGEX_WINDOW.saturating_sub(self.body_start.len());
        self.body_start
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        Ok(())
    }

    /// The response at the end of the stream.
    pub fn finish(self) -> Result<Response, String> {
        let Some(status) = self.status else {
            return Err(if self.head.is_empty() {
                "no data received".to_string()
            } else {
                format!(
                    "connection closed inside the response header: {}",
                    printable(&self.head)
                )
            });
        };
        Ok(Response {
            status,
            body_len: self.body_len,
            md5: self.md5.finalize().into(),
            body_start: self.body_start,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// keepalived matches with PCRE, where `$` also matches before a final newline; the `regex`
/// crate's does not, so a body ending in a newline is also tried without it.
fn regex_matches(re: &regex::bytes::Regex, body: &[u8]) -> bool {
    re.is_match(body) || body.strip_suffix(b"\n").is_some_and(|b| re.is_match(b))
}

/// Checks a complete response against the url's expectations.
pub fn evaluate(
    url: &Url,
    regex: Option<&regex::bytes::Regex>,
    r: &Response,
) -> Result<(), String> {
    if !url.status.contains(r.status) {
        return Err(format!(
            "HTTP status {} not in {} (url {} {})",
            r.status, url.status, url.name, url.path
        ));
    }
    if let Some(want) = url.digest
        && want != r.md5
    {
        return Err(format!(
            "body MD5 {} differs from digest {} (url {} {})",
            hex(&r.md5),
            hex(&want),
            url.name,
            url.path
        ));
    }
    if let Some(re) = regex
        && !regex_matches(re, &r.body_start)
    {
        return Err(format!(
            "body does not match regex {:?} (url {} {})",
            re.as_str(),
            url.name,
            url.path
        ));
    }
    Ok(())
}

/// Sends the request and reads the response, each step bounded by `timeout`; `keep_body`: the
/// response keeps the start of the body (for a regex).
pub async fn exchange<S>(
    stream: &mut S,
    url: &Url,
    timeout: Duration,
    keep_body: bool,
) -> Result<Response, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sent = {
        let req = request(url);
        let send = async {
            stream.write_all(&req).await?;
            stream.flush().await
        };
        tokio::time::timeout(timeout, send).await
    };
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("send request: {e}")),
        Err(_) => return Err(format!("send request: timed out after {timeout:?}")),
    }
    let mut reader = ResponseReader::new(keep_body);
    // Small first, grown only by reads that fill it: a larger answer costs a few more reads, a
    // small one (the usual) no more memory than it needs.
    let mut buf = vec![0u8; FIRST_READ];
    loop {
        let n = match tokio::time::timeout(timeout, stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            // A TLS server closing without close_notify: the end of an HTTP/1.0 response.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(Err(e)) => return Err(format!("read response: {e}")),
            Err(_) => {
                return Err(format!(
                    "read response: nothing received for connect_timeout {timeout:?}"
                ));
            }
        };
        if n == 0 {
            break;
        }
        if reader.feed(&buf[..n])? {
            break;
        }
        if n == buf.len() && buf.len() < MAX_READ {
            buf.resize(buf.len() * 2, 0);
        }
    }
    reader.finish()
}

/// Compiled regexes and TLS configurations, shared by the checks that use the same ones.
pub trait Resources: Send + Sync {
    fn regex(&self, pattern: &str) -> Result<Arc<regex::bytes::Regex>, String>;
    fn tls(&self, tls: &super::plan::Tls) -> Result<Arc<rustls::ClientConfig>, String>;
}

/// One attempt: every url in order, on its own connection; the first failure is the result.
pub async fn check(h: &Http, res: &dyn Resources) -> Result<(), String> {
    for url in &h.urls {
        let regex = url.regex.as_deref().map(|p| res.regex(p)).transpose()?;
        let mut stream = tcp::connect(&h.connect).await?;
        let timeout = h.connect.timeout;
        let response = match &h.tls {
            None => exchange(&mut stream, url, timeout, regex.is_some()).await,
            Some(tls) => {
                let config = res.tls(tls)?;
                let name = super::tls::server_name(tls, h.connect.target);
                let connector = tokio_rustls::TlsConnector::from(config);
                let mut s = match tokio::time::timeout(timeout, connector.connect(name, stream))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        return Err(format!("TLS handshake with {}: {e}", h.connect.target));
                    }
                    Err(_) => {
                        return Err(format!(
                            "TLS handshake with {}: timed out after connect_timeout {timeout:?}",
                            h.connect.target
                        ));
                    }
                };
                exchange(&mut s, url, timeout, regex.is_some()).await
            }
        };
        let response = response.map_err(|e| format!("{e} (url {} {})", url.name, url.path))?;
        evaluate(url, regex.as_deref(), &response)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::StatusCodes;

    fn url() -> Url {
        Url {
            name: "root".into(),
            path: "/".into(),
            host: "10.0.0.1:80".into(),
            status: StatusCodes(vec![(200, 299)]),
            digest: None,
            regex: None,
        }
    }

    fn read_all(chunks: &[&[u8]]) -> Result<Response, String> {
        let mut r = ResponseReader::default();
        for c in chunks {
            if r.feed(c)? {
                break;
            }
        }
        r.finish()
    }

    #[test]
    fn request_is_keepalived_s() {
        assert_eq!(
            request(&url()),
            b"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1:80\r\n\r\n"
        );
    }

    #[test]
    fn digest_is_md5_of_the_body_as_genhash_prints_it() {
        // `printf 'hello\n' | md5sum` = b1946ac92492d2347c6235b4d2611184
        let r = read_all(&[b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello\n"]).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(hex(&r.md5), "b1946ac92492d2347c6235b4d2611184");
        // Empty body: the MD5 of nothing.
        let r = read_all(&[b"HTTP/1.1 204 No Content\r\n\r\n"]).expect("response");
        assert_eq!(hex(&r.md5), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn separator_split_across_reads_and_bare_newlines() {
        let r = read_all(&[
            b"HTTP/1.0 200 OK\r\nA: b\r",
            b"\n",
            b"\r",
            b"\nhel",
            b"lo\n",
        ])
        .expect("response");
        assert_eq!((r.status, r.body_start.as_slice()), (200, &b"hello\n"[..]));
        let r = read_all(&[b"HTTP/1.0 404 Not Found\n\nx"]).expect("response");
        assert_eq!((r.status, r.body_len), (404, 1));
    }

    #[test]
    fn content_length_completes_without_close() {
        let mut r = ResponseReader::default();
        assert!(
            !r.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab")
                .expect("feed")
        );
        assert!(r.feed(b"cde").expect("feed"));
        assert_eq!(r.finish().expect("response").body_len, 5);
    }

    #[test]
    fn without_a_regex_the_body_is_digested_not_kept() {
        let mut r = ResponseReader::new(false);
        assert!(!r.feed(b"HTTP/1.0 200 OK\r\n\r\nhel").expect("feed"));
        assert!(!r.feed(b"lo\n").expect("feed"));
        let r = r.finish().expect("response");
        assert_eq!(hex(&r.md5), "b1946ac92492d2347c6235b4d2611184");
        assert_eq!((r.body_len, r.body_start.len()), (6, 0));
    }

    /// A body larger than every read buffer arrives whole: the buffer grows from its first
    /// size and the digest covers every byte.
    #[tokio::test]
    async fn exchange_reads_a_large_body_through_a_growing_buffer() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut answer = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        answer.extend_from_slice(&body);
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let serve = async move {
            let mut req = [0u8; 512];
            let n = server.read(&mut req).await.expect("request");
            assert!(req[..n].starts_with(b"GET / HTTP/1.0\r\n"));
            server.write_all(&answer).await.expect("answer");
        };
        let timeout = Duration::from_secs(3600);
        let u = url();
        let (r, ()) = tokio::join!(exchange(&mut client, &u, timeout, true), serve);
        let r = r.expect("response");
        assert_eq!(r.body_len, 100_000);
        assert_eq!(r.body_start, body);
        assert_eq!(r.md5, <[u8; 16]>::from(Md5::digest(&body)));
    }

    #[test]
    fn broken_responses_are_named() {
        assert_eq!(read_all(&[]), Err("no data received".into()));
        assert!(
            read_all(&[b"SSH-2.0-OpenSSH\r\n\r\n"])
                .expect_err("not http")
                .contains("not an HTTP response")
        );
        assert!(
            read_all(&[b"HTTP/1.0 200"])
                .expect_err("cut")
                .contains("inside the response header")
        );
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert!(
            read_all(&[&huge])
                .expect_err("huge")
                .contains("header longer")
        );
    }

    #[test]
    fn evaluation_names_what_failed() {
        let r = read_all(&[b"HTTP/1.0 500 Oops\r\n\r\nhello\n"]).expect("response");
        let e = evaluate(&url(), None, &r).expect_err("status");
        assert_eq!(e, "HTTP status 500 not in 200-299 (url root /)");
        let r = read_all(&[b"HTTP/1.0 200 OK\r\n\r\nhello\n"]).expect("response");
        let mut u = url();
        u.digest = super::super::plan::parse_digest("b1946ac92492d2347c6235b4d2611184");
        assert_eq!(evaluate(&u, None, &r), Ok(()));
        u.digest = super::super::plan::parse_digest("00000000000000000000000000000000");
        assert!(
            evaluate(&u, None, &r)
                .expect_err("digest")
                .contains("differs from digest")
        );
        // PCRE's `$` before the final newline, as keepalived's regexes expect.
        let re = regex::bytes::Regex::new("^hel+o$").expect("regex");
        assert_eq!(evaluate(&url(), Some(&re), &r), Ok(()));
        let re = regex::bytes::Regex::new("^hello..$").expect("regex");
        assert!(
            evaluate(&url(), Some(&re), &r)
                .expect_err("regex")
                .contains("does not match")
        );
    }
}
