//! `udp_check`, with keepalived's semantics (`check_udp.c`, `layer4.c`): a connected UDP socket
//! sends the payload and waits `connect_timeout`.
//! - An ICMP destination-unreachable for it fails the attempt (the socket is opened with
//!   `IP_RECVERR` / `IPV6_RECVERR`, so every unreachable code is reported, as keepalived).
//! - Without `require_reply`, silence until the deadline passes, and so does any reply.
//! - With `require_reply`, a reply must arrive; its length must be within
//!   `min_reply_length..=max_reply_length` and, with a pattern, its first octets must match
//!   (the shorter of the reply and the pattern is compared, as keepalived does).
//!
//! Payload and pattern are keepalived's hex strings ([`HexPattern`]), parsed and matched here,
//! pure.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::plan::{Udp, UdpReply};

/// Octets and, for a reply pattern, a mask of wildcard nibbles (`x`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexPattern {
    pub data: Vec<u8>,
    /// Set bits are not compared; `None` when the pattern has no wildcard.
    pub mask: Option<Vec<u8>>,
}

fn nibble(c: u8, wildcard: bool) -> Option<(u8, u8)> {
    match c {
        b'0'..=b'9' => Some((c - b'0', 0)),
        b'a'..=b'f' => Some((c - b'a' + 10, 0)),
        b'A'..=b'F' => Some((c - b'A' + 10, 0)),
        b'x' | b'X' if wildcard => Some((0, 0x0f)),
        _ => None,
    }
}

impl HexPattern {
    /// keepalived's `read_hex_str`: hex digits in pairs, spaces and tabs between octets; a
    /// lone digit before a space (or the end) is one octet (`"1 2"` is 01 02); `x` is a
    /// wildcard nibble when `wildcard` (reply patterns only). Empty is an error.
    pub fn parse(text: &str, wildcard: bool) -> Result<HexPattern, String> {
        let bytes = text.as_bytes();
        let mut data = Vec::new();
        let mut mask = Vec::new();
        let mut i = 0;
        loop {
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            let Some(&c) = bytes.get(i) else { break };
            let (mut v, mut m) = nibble(c, wildcard)
                .ok_or_else(|| format!("{text:?}: {:?} is not a hex digit", c as char))?;
            i += 1;
            if let Some(&c2) = bytes.get(i)
                && c2 != b' '
                && c2 != b'\t'
            {
                let (v2, m2) = nibble(c2, wildcard)
                    .ok_or_else(|| format!("{text:?}: {:?} is not a hex digit", c2 as char))?;
                v = v << 4 | v2;
                m = m << 4 | m2;
                i += 1;
            }
            data.push(v);
            mask.push(m);
        }
        if data.is_empty() {
            return Err(format!("{text:?}: no octets"));
        }
        if data.len() > usize::from(u16::MAX) {
            return Err(format!("{text:?}: longer than 65535 octets"));
        }
        let mask = mask.iter().any(|&m| m != 0).then_some(mask);
        Ok(HexPattern { data, mask })
    }

    /// Whether `reply` matches on the shorter of the two lengths (keepalived compares no
    /// further: length bounds are [`UdpReply::min_len`] / [`UdpReply::max_len`]).
    pub fn matches(&self, reply: &[u8]) -> bool {
        self.data
            .iter()
            .zip(reply)
            .enumerate()
            .all(|(i, (&want, &got))| {
                let ignore = self
                    .mask
                    .as_ref()
                    .and_then(|m| m.get(i))
                    .copied()
                    .unwrap_or(0);
                (want ^ got) & !ignore == 0
            })
    }
}

/// Checks a reply against `require_reply`; the error names what differs.
pub fn evaluate(reply: &[u8], want: &UdpReply) -> Result<(), String> {
    if reply.len() < want.min_len || reply.len() > want.max_len {
        return Err(format!(
            "reply of {} octets outside min_reply_length {} .. max_reply_length {}",
            reply.len(),
            want.min_len,
            want.max_len
        ));
    }
    if let Some(p) = &want.pattern
        && !p.matches(reply)
    {
        let shown: String = reply
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(format!("reply {shown} does not match require_reply"));
    }
    Ok(())
}

/// A connected UDP socket that reports ICMP errors.
fn socket(target: SocketAddr, bind: Option<std::net::IpAddr>) -> std::io::Result<UdpSocket> {
    let domain = match target {
        SocketAddr::V4(_) => Domain::IPV4,
        SocketAddr::V6(_) => Domain::IPV6,
    };
    let s = Socket::new(
        domain,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )?;
    set_recverr(&s, target.is_ipv6())?;
    if let Some(ip) = bind {
        s.bind(&SocketAddr::new(ip, 0).into())?;
    }
    s.connect(&target.into())?;
    UdpSocket::from_std(s.into())
}

/// `IP_RECVERR` / `IPV6_RECVERR`: every ICMP error becomes a socket error (without it Linux
/// reports only the "hard" ones, such as port unreachable, to a connected socket).
pub(super) fn set_recverr(s: &Socket, v6: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let (level, name) = if v6 {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::SOL_IP, libc::IP_RECVERR)
    };
    // SAFETY: setsockopt on a socket we own, with a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One attempt.
pub async fn check(u: &Udp) -> Result<(), String> {
    let target = u.connect.target;
    let timeout = u.connect.timeout;
    let sock = socket(target, u.connect.bind).map_err(|e| match u.connect.bind {
        Some(b) => format!("UDP socket to {target} from {b} (bindto): {e}"),
        None => format!("UDP socket to {target}: {e}"),
    })?;
    sock.send(&u.payload)
        .await
        .map_err(|e| format!("send to {target}: {e}"))?;
    // keepalived reads one octet more than the longest reply allowed.
    let cap = u.reply.as_ref().map_or(1, |r| r.max_len.saturating_add(1));
    let mut buf = vec![0u8; cap.min(65536)];
    match tokio::time::timeout(timeout, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => match &u.reply {
            Some(want) => evaluate(&buf[..n], want).map_err(|e| format!("{target}: {e}")),
            None => Ok(()),
        },
        Ok(Err(e)) => Err(format!("UDP to {target}: {e}")),
        Err(_) => match &u.reply {
            Some(_) => Err(format!(
                "no reply from {target} within connect_timeout {timeout:?} (require_reply)"
            )),
            // No error within the timeout: keepalived counts that as a success.
            None => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, w: bool) -> HexPattern {
        HexPattern::parse(s, w).expect("parses")
    }

    #[test]
    fn hex_strings_read_as_keepalived() {
        assert_eq!(p("deadBEEF", false).data, [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(p(" de ad\tbe ef ", false).data, [0xde, 0xad, 0xbe, 0xef]);
        // A lone digit before a space is a whole octet.
        assert_eq!(p("1 2 345", false).data, [0x01, 0x02, 0x34, 0x05]);
        assert_eq!(p("abc", false).data, [0xab, 0x0c]);
        assert_eq!(p("ab", false).mask, None);
        let w = p("0x x1 ab", true);
        assert_eq!(w.data, [0x00, 0x01, 0xab]);
        assert_eq!(w.mask, Some(vec![0x0f, 0xf0, 0x00]));
        assert!(
            HexPattern::parse("0x", false).is_err(),
            "no wildcard in a payload"
        );
        assert!(HexPattern::parse("zz", true).is_err());
        assert!(HexPattern::parse("   ", true).is_err());
        assert!(HexPattern::parse("", true).is_err());
    }

    #[test]
    fn replies_match_on_the_shorter_length_with_wildcards() {
        let pat = p("de ad xx ef", true);
        assert!(pat.matches(&[0xde, 0xad, 0x00, 0xef]));
        assert!(pat.matches(&[0xde, 0xad, 0x77, 0xef, 0x99]), "longer reply");
        assert!(
            pat.matches(&[0xde]),
            "shorter reply: compared on its length"
        );
        assert!(!pat.matches(&[0xde, 0xac]));
        assert!(!pat.matches(&[0xde, 0xad, 0x00, 0xee]));
        let half = p("dx", true);
        assert!(half.matches(&[0xd7]) && !half.matches(&[0xc7]));
    }

    #[test]
    fn lengths_then_pattern() {
        let want = UdpReply {
            pattern: Some(p("6f6b", true)),
            min_len: 2,
            max_len: 4,
        };
        assert_eq!(evaluate(b"ok", &want), Ok(()));
        assert_eq!(evaluate(b"ok!!", &want), Ok(()));
        assert!(
            evaluate(b"o", &want)
                .expect_err("short")
                .contains("outside")
        );
        assert!(
            evaluate(b"ok!!!", &want)
                .expect_err("long")
                .contains("outside")
        );
        assert_eq!(
            evaluate(b"no", &want),
            Err("reply 6e 6f does not match require_reply".into())
        );
        let any = UdpReply {
            pattern: None,
            min_len: 0,
            max_len: 255,
        };
        assert_eq!(evaluate(b"", &any), Ok(()));
    }

    #[test]
    fn default_payload_is_keepalived_s() {
        let d = super::super::plan::default_udp_payload();
        assert_eq!(d.len(), 32);
        assert_eq!(&d[..], b"keepalived check - keepalived ch");
    }
}
