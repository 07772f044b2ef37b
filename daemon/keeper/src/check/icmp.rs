//! ICMP and ICMPv6 echo messages for `ping_check`, pure: the echo request keepalived sends and
//! the reading of what comes back (an echo reply, or a destination-unreachable quoting one of
//! our requests), on byte fixtures.

use std::net::IpAddr;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO: u8 = 8;
pub const ICMP6_DEST_UNREACH: u8 = 1;
pub const ICMP6_ECHO: u8 = 128;
pub const ICMP6_ECHO_REPLY: u8 = 129;

/// Payload after the 8-octet header: keepalived's `ICMP_BUFSIZE` octets of its pattern.
pub const PAYLOAD_LEN: usize = 128;

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request. ICMPv4 carries its checksum; for ICMPv6 the kernel computes it (it covers
/// a pseudo-header with addresses only the kernel knows), so the field is left 0.
pub fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(8 + PAYLOAD_LEN);
    m.push(if v6 { ICMP6_ECHO } else { ICMP_ECHO });
    m.push(0);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend(b"keepalived check - ".iter().cycle().take(PAYLOAD_LEN));
    if !v6 {
        let c = checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
    }
    m
}

/// What an ICMP message says about one of our echo requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// An echo reply (`from` is its source).
    Reply { from: IpAddr, ident: u16, seq: u16 },
    /// A destination-unreachable (code `code`) quoting our request to `to`.
    Unreachable {
        to: IpAddr,
        ident: u16,
        seq: u16,
        code: u8,
    },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The IPv4 header's length, if `packet` starts with one.
fn ipv4_header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let len = usize::from(first & 0x0f) * 4;
    (len >= 20 && packet.len() >= len).then_some(len)
}

/// Reads an ICMPv4 message as a raw socket receives it (with its IPv4 header) when
/// `with_ip_header`, else as a ping socket does (the ICMP message alone; `from` is then the
/// sender's address from `recvfrom`).
pub fn parse_v4(packet: &[u8], from: IpAddr, with_ip_header: bool) -> Option<Echo> {
    let icmp = if with_ip_header {
        &packet[ipv4_header_len(packet)?..]
    } else {
        packet
    };
    match *icmp.first()? {
        ICMP_ECHO_REPLY => Some(Echo::Reply {
            from,
            ident: u16_at(icmp, 4)?,
            seq: u16_at(icmp, 6)?,
        }),
        ICMP_DEST_UNREACH => {
            // The unreachable quotes the original IPv4 header and 8 octets of its payload.
            let quoted = icmp.get(8..)?;
            let hl = ipv4_header_len(quoted)?;
            if quoted.get(9) != Some(&1) {
                return None; // not ICMP
            }
            let to = IpAddr::from(<[u8; 4]>::try_from(quoted.get(16..20)?).ok()?);
            let echo = quoted.get(hl..)?;
            (*echo.first()? == ICMP_ECHO).then_some(())?;
            Some(Echo::Unreachable {
                to,
                ident: u16_at(echo, 4)?,
                seq: u16_at(echo, 6)?,
                code: icmp[1],
            })
        }
        _ => None,
    }
}

/// Reads an ICMPv6 message (raw and ping sockets both receive it without the IPv6 header).
pub fn parse_v6(icmp: &[u8], from: IpAddr) -> Option<Echo> {
    match *icmp.first()? {
        ICMP6_ECHO_REPLY => Some(Echo::Reply {
            from,
            ident: u16_at(icmp, 4)?,
            seq: u16_at(icmp, 6)?,
        }),
        ICMP6_DEST_UNREACH => {
            // The original IPv6 header (40 octets) follows the 8-octet ICMPv6 header.
            let quoted = icmp.get(8..)?;
            if quoted.first()? >> 4 != 6 || *quoted.get(6)? != 58 {
                return None; // not IPv6 carrying ICMPv6 (extension headers: not ours)
            }
            let to = IpAddr::from(<[u8; 16]>::try_from(quoted.get(24..40)?).ok()?);
            let echo = quoted.get(40..)?;
            (*echo.first()? == ICMP6_ECHO).then_some(())?;
            Some(Echo::Unreachable {
                to,
                ident: u16_at(echo, 4)?,
                seq: u16_at(echo, 6)?,
                code: icmp[1],
            })
        }
        _ => None,
    }
}

/// What an unreachable code means, for the error text.
pub fn unreachable_text(v6: bool, code: u8) -> &'static str {
    match (v6, code) {
        (false, 0) => "network unreachable",
        (false, 1) => "host unreachable",
        (false, 2) => "protocol unreachable",
        (false, 3) => "port unreachable",
        (false, 9 | 10 | 13) => "administratively prohibited",
        (true, 0) => "no route to destination",
        (true, 1) => "administratively prohibited",
        (true, 3) => "address unreachable",
        (true, 4) => "port unreachable",
        _ => "destination unreachable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc_1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2; the checksum is its
        // complement.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn echo_request_bytes() {
        let m = echo_request(false, 0x1234, 7);
        assert_eq!(m.len(), 8 + PAYLOAD_LEN);
        assert_eq!(&m[..2], &[8, 0]);
        assert_eq!(&m[4..8], &[0x12, 0x34, 0x00, 0x07]);
        assert_eq!(&m[8..27], b"keepalived check - ");
        // A correct checksum makes the whole message sum to zero.
        assert_eq!(checksum(&m), 0);
        let m6 = echo_request(true, 1, 2);
        assert_eq!(&m6[..4], &[128, 0, 0, 0]);
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn replies_and_unreachables_v4() {
        let from: IpAddr = "10.0.0.21".parse().expect("ip");
        let mut reply = echo_request(false, 0x1234, 7);
        reply[0] = ICMP_ECHO_REPLY;
        let raw = ipv4(1, [10, 0, 0, 21], [10, 0, 0, 11], &reply);
        let want = Echo::Reply {
            from,
            ident: 0x1234,
            seq: 7,
        };
        assert_eq!(parse_v4(&raw, from, true), Some(want));
        assert_eq!(parse_v4(&reply, from, false), Some(want));
        // Our own request (seen on loopback) is not a reply.
        assert_eq!(parse_v4(&echo_request(false, 1, 1), from, false), None);
        // Host unreachable from a router, quoting our request.
        let req = echo_request(false, 0x1234, 9);
        let quoted = ipv4(1, [10, 0, 0, 11], [10, 0, 0, 21], &req[..8]);
        let mut unreach = vec![ICMP_DEST_UNREACH, 1, 0, 0, 0, 0, 0, 0];
        unreach.extend_from_slice(&quoted);
        let raw = ipv4(1, [10, 0, 0, 1], [10, 0, 0, 11], &unreach);
        assert_eq!(
            parse_v4(&raw, "10.0.0.1".parse().expect("ip"), true),
            Some(Echo::Unreachable {
                to: from,
                ident: 0x1234,
                seq: 9,
                code: 1
            })
        );
        // Truncated or foreign messages are nothing.
        assert_eq!(parse_v4(&raw[..30], from, true), None);
        assert_eq!(parse_v4(&[0x45, 0, 0], from, true), None);
        let udp_quoted = ipv4(17, [10, 0, 0, 11], [10, 0, 0, 21], &[0; 8]);
        let mut u = vec![ICMP_DEST_UNREACH, 3, 0, 0, 0, 0, 0, 0];
        u.extend_from_slice(&udp_quoted);
        assert_eq!(parse_v4(&u, from, false), None);
    }

    #[test]
    fn replies_and_unreachables_v6() {
        let from: IpAddr = "fd00::21".parse().expect("ip");
        let mut reply = echo_request(true, 0x1234, 7);
        reply[0] = ICMP6_ECHO_REPLY;
        assert_eq!(
            parse_v6(&reply, from),
            Some(Echo::Reply {
                from,
                ident: 0x1234,
                seq: 7
            })
        );
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 8, 58, 64];
        ip6.extend_from_slice(
            &"fd00::11"
                .parse::<std::net::Ipv6Addr>()
                .expect("ip")
                .octets(),
        );
        ip6.extend_from_slice(
            &"fd00::21"
                .parse::<std::net::Ipv6Addr>()
                .expect("ip")
                .octets(),
        );
        ip6.extend_from_slice(&echo_request(true, 0x1234, 8)[..8]);
        let mut unreach = vec![ICMP6_DEST_UNREACH, 3, 0, 0, 0, 0, 0, 0];
        unreach.extend_from_slice(&ip6);
        assert_eq!(
            parse_v6(&unreach, "fd00::1".parse().expect("ip")),
            Some(Echo::Unreachable {
                to: from,
                ident: 0x1234,
                seq: 8,
                code: 3
            })
        );
        assert_eq!(unreachable_text(true, 3), "address unreachable");
    }
}
