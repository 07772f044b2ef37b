//! Test helpers: fixture loading and an independent netlink TLV writer (not the crate's code,
//! so expected bytes are derived from the UAPI layout, not from the encoder under test).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kernel")
        .join(name)
}

pub fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Datagrams of a `.hex` fixture: one per line; `# ...` lines start a named section.
pub fn datagrams(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in fixture_text(name).lines() {
        if let Some(s) = line.strip_prefix("# ") {
            section = s.to_string();
        } else if !line.trim().is_empty() {
            out.push((section.clone(), unhex(line)));
        }
    }
    out
}

/// The generic-netlink payloads (after nlmsghdr) of the IPVS-family messages ipvsadm sent, from
/// an `strace -xx` log, with their nlmsg_flags text. ipvsadm first asks GET_INFO; callers take
/// the last message, the command itself.
pub fn ipvsadm_requests(name: &str) -> Vec<(String, Vec<u8>)> {
    let text = fixture_text(name);
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(i) = line.find("nlmsg_type=0x20") else {
            continue;
        };
        let flags = line[i..]
            .split("nlmsg_flags=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("")
            .to_string();
        let Some(q) = line[i..].find('"') else {
            continue;
        };
        let rest = &line[i + q + 1..];
        let Some(end) = rest.find('"') else { continue };
        let bytes: Vec<u8> = rest[..end]
            .split("\\x")
            .filter(|s| !s.is_empty())
            .map(|h| u8::from_str_radix(h, 16).expect("strace hex"))
            .collect();
        out.push((flags, bytes));
    }
    out
}

/// The last IPVS request of an ipvsadm strace log.
pub fn ipvsadm_command(name: &str) -> Vec<u8> {
    ipvsadm_requests(name)
        .pop()
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("{name}: no IPVS request"))
}

// --- independent writer: netlink attribute rules (RFC 3549 / linux/netlink.h) ---------------------

pub fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

pub const NLA_F_NESTED: u16 = 0x8000;

pub fn nest(ty: u16, children: &[Vec<u8>]) -> Vec<u8> {
    nla(ty | NLA_F_NESTED, &children.concat())
}

pub fn genl(cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![cmd, 1, 0, 0];
    v.extend_from_slice(&attrs.concat());
    v
}

pub fn nlmsg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn u16n(v: u16) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
pub fn u32n(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
pub fn be16(v: u16) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}
/// `union nf_inet_addr` holding an IPv4 address.
pub fn addr4(a: [u8; 4]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.resize(16, 0);
    v
}

/// Find the first attribute of type `ty` (flags ignored) in a TLV list; returns the whole TLV.
pub fn find_tlv(mut b: &[u8], ty: u16) -> Option<Vec<u8>> {
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let t = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        if t == ty {
            return Some(b[..len].to_vec());
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    None
}
