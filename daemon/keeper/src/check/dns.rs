//! `dns_check`, with keepalived's semantics (`check_dns.c`): one query over UDP (class IN,
//! recursion desired, a random ID) for `name` and `type`, to the real server; the attempt
//! passes when a response with the query's ID arrives within `connect_timeout` with rcode
//! NOERROR. Datagrams that are not that response (another ID, a query, too short to be a DNS
//! message) are skipped and the wait goes on, as keepalived does.
//!
//! keeper's own addition: `answer`, records the answer section must hold (every one of them),
//! compared in the presentation form `dig` prints (`10.0.0.21`, `10 mail.example.org.`),
//! addresses as addresses and names without regard to case or a final dot.
//!
//! The messages are built and read by `hickory-proto` (a maintained DNS codec); building the
//! query and judging a response are pure ([`query`], [`evaluate`]).

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::plan::Dns;

/// keepalived reads responses into a buffer of `DNS_BUFFER_SIZE` (768) octets; a larger
/// buffer costs nothing here and lets `answer` see longer answers.
const BUFFER: usize = 4096;

/// A record type by its name, case-insensitive (keepalived knows A, NS, CNAME, SOA, MX, TXT,
/// AAAA, RRSIG and DNSKEY; every type `hickory-proto` knows is accepted).
pub fn parse_type(text: &str) -> Result<RecordType, String> {
    match RecordType::from_str(&text.to_ascii_uppercase()) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(format!("unknown DNS record type {text:?}")),
        Ok(t) => Ok(t),
    }
}

/// A query name; a name without a final dot is taken as absolute (keepalived sends it as
/// written). Empty labels (`a..b`, a leading dot) are errors, as in keepalived.
pub fn parse_name(text: &str) -> Result<Name, String> {
    if text.is_empty() || text == "." {
        return Ok(Name::root());
    }
    if text.starts_with('.') || text.contains("..") {
        return Err(format!("DNS name {text:?} has an empty label"));
    }
    let mut name = Name::from_utf8(text).map_err(|e| format!("DNS name {text:?}: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The query keepalived sends: `id`, RD set, one question of class IN, nothing else.
pub fn query(id: u16, name: &Name, query_type: RecordType) -> Result<Vec<u8>, String> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), query_type));
    m.to_vec()
        .map_err(|e| format!("cannot encode the query: {e}"))
}

/// What a received datagram is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Not the response to this query: keep waiting.
    Ignore(&'static str),
    /// The response; `Ok` when the check passes.
    Verdict(Result<(), String>),
}

fn normalized(text: &str) -> String {
    text.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a record's data is the expected one.
fn same_data(data: &RData, want: &str) -> bool {
    match (data, IpAddr::from_str(want.trim())) {
        (RData::A(a), Ok(IpAddr::V4(w))) => a.0 == w,
        (RData::AAAA(a), Ok(IpAddr::V6(w))) => a.0 == w,
        _ => {
            // Compare word by word, so that spacing does not matter.
            let got = data.to_string();
            let got: Vec<String> = got.split_whitespace().map(normalized).collect();
            let want: Vec<String> = want.split_whitespace().map(normalized).collect();
            got == want
        }
    }
}

/// Judges a received datagram against the query `id` and the expected `answer` records.
pub fn evaluate(datagram: &[u8], id: u16, query_type: RecordType, answer: &[String]) -> Reply {
    // A DNS header is 12 octets; keepalived skips anything shorter.
    if datagram.len() < 12 {
        return Reply::Ignore("too short");
    }
    if u16::from_be_bytes([datagram[0], datagram[1]]) != id {
        return Reply::Ignore("another ID");
    }
    // QR: a response.
    if datagram[2] & 0x80 == 0 {
        return Reply::Ignore("a query");
    }
    let rcode = datagram[3] & 0x0f;
    if rcode != 0 {
        return Reply::Verdict(Err(format!(
            "response code {} ({rcode})",
            ResponseCode::from_low(rcode)
        )));
    }
    if answer.is_empty() {
        // keepalived stops here: a NOERROR response is enough.
        return Reply::Verdict(Ok(()));
    }
    let msg = match Message::from_vec(datagram) {
        Ok(m) => m,
        Err(e) => return Reply::Verdict(Err(format!("malformed response: {e}"))),
    };
    let records: Vec<&RData> = msg
        .answers
        .iter()
        .filter(|r| r.record_type() == query_type)
        .map(|r| &r.data)
        .collect();
    for want in answer {
        if !records.iter().any(|d| same_data(d, want)) {
            let got: Vec<String> = records.iter().map(|d| d.to_string()).collect();
            return Reply::Verdict(Err(format!(
                "answer has no {query_type} {want:?} (got {})",
                if got.is_empty() {
                    "none".to_string()
                } else {
                    got.join(", ")
                }
            )));
        }
    }
    Reply::Verdict(Ok(()))
}

/// One attempt.
pub async fn check(d: &Dns) -> Result<(), String> {
    let target = d.connect.target;
    let timeout = d.connect.timeout;
    let id: u16 = rand_id();
    let q = query(id, &d.name, d.query_type)?;
    let sock = (|| {
        let domain = if target.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let s = Socket::new(
            domain,
            Type::DGRAM.nonblocking().cloexec(),
            Some(Protocol::UDP),
        )?;
        super::udp::set_recverr(&s, target.is_ipv6())?;
        if let Some(ip) = d.connect.bind {
            s.bind(&std::net::SocketAddr::new(ip, 0).into())?;
        }
        s.connect(&target.into())?;
        UdpSocket::from_std(s.into())
    })()
    .map_err(|e| format!("UDP socket to {target}: {e}"))?;
    let exchange = async {
        sock.send(&q)
            .await
            .map_err(|e| format!("send query to {target}: {e}"))?;
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| format!("DNS to {target}: {e}"))?;
            if let Reply::Verdict(v) = evaluate(&buf[..n], id, d.query_type, &d.answer) {
                return v.map_err(|e| format!("{target} {} {}: {e}", d.query_type, d.name));
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no response from {target} within connect_timeout {timeout:?}"
        )),
    }
}

/// A query ID nobody can predict (keepalived uses `random()`).
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let h = RandomState::new().hash_one(std::time::Instant::now());
    (h >> 48) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived's query for `www.example.org` A with ID 0x1234, byte for byte.
    const QUERY: &[u8] = &[
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 3, b'w', b'w',
        b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'o', b'r', b'g', 0, 0x00, 0x01,
        0x00, 0x01,
    ];

    /// A response to it: one answer, www.example.org A 10.0.0.21, name compressed.
    fn response(rcode: u8, addr: [u8; 4]) -> Vec<u8> {
        let mut r = QUERY.to_vec();
        r[2] = 0x81; // QR, RD
        r[3] = 0x80 | rcode; // RA
        r[7] = 1; // ANCOUNT
        r.extend_from_slice(&[0xc0, 12, 0x00, 0x01, 0x00, 0x01, 0, 0, 0x0e, 0x10, 0, 4]);
        r.extend_from_slice(&addr);
        r
    }

    #[test]
    fn the_query_is_byte_for_byte_keepalived_s() {
        let name = parse_name("www.example.org").expect("name");
        assert_eq!(query(0x1234, &name, RecordType::A).expect("query"), QUERY);
        // The root (keepalived's default name) is one zero octet; SOA is type 6.
        let root = query(
            1,
            &parse_name("").expect("root"),
            parse_type("soa").expect("soa"),
        )
        .expect("query");
        assert_eq!(&root[12..], &[0, 0x00, 0x06, 0x00, 0x01]);
    }

    #[test]
    fn names_and_types() {
        assert_eq!(parse_type("aaaa"), Ok(RecordType::AAAA));
        assert!(parse_type("BOGUS").is_err());
        assert!(parse_name("a..b").is_err());
        assert!(parse_name(".a").is_err());
        assert_eq!(
            parse_name("Example.ORG.").expect("name"),
            parse_name("example.org").expect("name")
        );
    }

    #[test]
    fn responses_are_judged_as_keepalived() {
        let ok = response(0, [10, 0, 0, 21]);
        assert_eq!(
            evaluate(&ok, 0x1234, RecordType::A, &[]),
            Reply::Verdict(Ok(()))
        );
        assert_eq!(
            evaluate(&ok, 0x9999, RecordType::A, &[]),
            Reply::Ignore("another ID")
        );
        assert_eq!(
            evaluate(QUERY, 0x1234, RecordType::A, &[]),
            Reply::Ignore("a query")
        );
        assert_eq!(
            evaluate(&ok[..11], 0x1234, RecordType::A, &[]),
            Reply::Ignore("too short")
        );
        let Reply::Verdict(Err(e)) = evaluate(&response(3, [0; 4]), 0x1234, RecordType::A, &[])
        else {
            panic!("NXDOMAIN fails")
        };
        assert_eq!(e, "response code Non-Existent Domain (3)");
    }

    #[test]
    fn expected_answers() {
        let ok = response(0, [10, 0, 0, 21]);
        let want = |w: &[&str]| -> Vec<String> { w.iter().map(|s| s.to_string()).collect() };
        assert_eq!(
            evaluate(&ok, 0x1234, RecordType::A, &want(&["10.0.0.21"])),
            Reply::Verdict(Ok(()))
        );
        assert_eq!(
            evaluate(&ok, 0x1234, RecordType::A, &want(&["10.0.0.22"])),
            Reply::Verdict(Err(
                "answer has no A \"10.0.0.22\" (got 10.0.0.21)".to_string()
            ))
        );
        assert_eq!(
            evaluate(
                &ok,
                0x1234,
                RecordType::A,
                &want(&["10.0.0.21", "10.0.0.22"])
            ),
            Reply::Verdict(Err(
                "answer has no A \"10.0.0.22\" (got 10.0.0.21)".to_string()
            )),
            "every expected record must be there"
        );
        // Truncated records: the header said NOERROR, the body is broken.
        let Reply::Verdict(Err(e)) = evaluate(
            &ok[..ok.len() - 2],
            0x1234,
            RecordType::A,
            &want(&["10.0.0.21"]),
        ) else {
            panic!("broken body")
        };
        assert!(e.starts_with("malformed response"), "{e}");
    }

    #[test]
    fn record_data_compares_in_presentation_form() {
        let mx = RData::MX(hickory_proto::rr::rdata::MX::new(
            10,
            Name::from_ascii("Mail.Example.org.").expect("name"),
        ));
        assert!(same_data(&mx, "10 mail.example.org."));
        assert!(same_data(&mx, "10   mail.example.org"));
        assert!(!same_data(&mx, "20 mail.example.org."));
        let a = RData::AAAA(hickory_proto::rr::rdata::AAAA(
            "fd00::21".parse().expect("v6"),
        ));
        assert!(same_data(&a, "fd00:0::21"));
    }
}
