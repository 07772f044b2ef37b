//! VRRP advertisement codec: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), IPv4 and IPv6.
//!
//! Only the VRRP payload is handled here. The IP header (TTL / hop limit, DSCP, the
//! protocol number) belongs to the socket driver; the checks that need it (TTL 255,
//! unicast peer TTL ranges) live in the instance, which receives them as metadata.
//!
//! Wire layout (both versions share the first 8 octets):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2: | Auth Type | Adver Int (s) |          Checksum             |
//! v3: |(rsvd)| Max Adver Int (cs) |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  IPvX address(es), Count of them              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2 only: 8 octets of authentication data
//! ```
//!
//! Checksums: v2 is the plain Internet checksum over the VRRP message. v3 adds the
//! IPv4 or IPv6 pseudo-header (source, destination, protocol 112, VRRP length), with
//! the destination as it appears in the IP header: the multicast group, or the unicast
//! peer. That is what keepalived 2.x sends by default and what the lab fixture
//! `31 33 64 01 00 0a 74 ff 0a 62 00 64` (10.98.0.11 to 224.0.0.18) verifies against.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use thiserror::Error;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group of VRRP (RFC 3768, RFC 5798).
pub const VRRP_MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (RFC 5798).
pub const VRRP_MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL / hop limit every multicast advertisement is sent and received with.
pub const VRRP_TTL: u8 = 255;
/// Priority of the router that owns the virtual addresses.
pub const PRIORITY_OWNER: u8 = 255;
/// Priority that says "the master is stopping" (RFC 3768 5.3.4, RFC 5798 5.2.4).
pub const PRIORITY_STOP: u8 = 0;

const HEADER_LEN: usize = 8;
const V2_AUTH_LEN: usize = 8;
const TYPE_ADVERTISEMENT: u8 = 1;
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_SIMPLE_TEXT: u8 = 1;
/// The v3 interval field is 12 bits of centiseconds.
const V3_MAX_CENTIS: u16 = 0x0fff;

/// The VRRP multicast group of an address family.
pub fn multicast_group(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(VRRP_MCAST_V6)
    } else {
        IpAddr::V4(VRRP_MCAST_V4)
    }
}

/// Protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, intervals in whole seconds, optional simple-text password.
    V2,
    /// RFC 5798: IPv4 and IPv6, intervals in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The number in the high nibble of the first octet.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// An advertisement interval, held in centiseconds (the v3 unit; v2 seconds are 100 of
/// them), never zero.
///
/// The range is 1..=65535 cs; which values fit on the wire depends on the version:
/// v2 needs whole seconds 1..=255, v3 needs 1..=4095 cs (12 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvertInterval(u16);

impl AdvertInterval {
    /// One second, the RFC default.
    pub const ONE_SECOND: AdvertInterval = AdvertInterval(100);

    /// An interval of `cs` centiseconds; `None` for zero.
    pub const fn from_centis(cs: u16) -> Option<AdvertInterval> {
        if cs == 0 {
            None
        } else {
            Some(AdvertInterval(cs))
        }
    }

    /// An interval of whole seconds (the v2 unit); `None` for zero.
    pub const fn from_secs(secs: u8) -> Option<AdvertInterval> {
        if secs == 0 {
            None
        } else {
            Some(AdvertInterval(secs as u16 * 100))
        }
    }

    /// The interval a duration is exactly; `None` for zero, for durations that are not
    /// whole centiseconds, and for durations beyond 655.35 s.
    pub fn from_duration(d: Duration) -> Option<AdvertInterval> {
        let nanos = d.as_nanos();
        if !nanos.is_multiple_of(10_000_000) {
            return None;
        }
        let cs = u16::try_from(nanos / 10_000_000).ok()?;
        AdvertInterval::from_centis(cs)
    }

    /// The interval in centiseconds.
    pub const fn centis(self) -> u16 {
        self.0
    }

    /// The interval in whole seconds, if it is a whole number of seconds that fits the v2
    /// field.
    pub const fn whole_secs(self) -> Option<u8> {
        if !self.0.is_multiple_of(100) || self.0 / 100 > u8::MAX as u16 {
            None
        } else {
            Some((self.0 / 100) as u8)
        }
    }

    /// Whether the interval can be carried by an advertisement of `version`.
    pub const fn fits(self, version: Version) -> bool {
        match version {
            Version::V2 => self.whole_secs().is_some(),
            Version::V3 => self.0 <= V3_MAX_CENTIS,
        }
    }

    /// The interval as a duration.
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }

    /// The interval in nanoseconds (exact).
    pub const fn as_nanos(self) -> u64 {
        self.0 as u64 * 10_000_000
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(100) {
            write!(f, "{}s", self.0 / 100)
        } else {
            write!(f, "{}ms", u32::from(self.0) * 10)
        }
    }
}

/// VRRPv2 authentication (RFC 2338 simple text, kept by keepalived as `auth_type PASS`).
/// VRRPv3 has none.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Auth type 0; the 8 authentication octets are sent as zeros and ignored.
    None,
    /// Auth type 1: an up-to-8-octet password, zero padded.
    SimpleText([u8; 8]),
}

impl Auth {
    /// A simple-text password, as keepalived's `auth_pass`: at most 8 octets (keepalived
    /// truncates longer ones; here they are refused), zero padded.
    pub fn simple_text(password: &[u8]) -> Option<Auth> {
        if password.is_empty() || password.len() > 8 {
            return None;
        }
        let mut data = [0u8; 8];
        data[..password.len()].copy_from_slice(password);
        Some(Auth::SimpleText(data))
    }

    const fn type_number(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::SimpleText(_) => AUTH_TYPE_SIMPLE_TEXT,
        }
    }
}

// The password never appears in logs or debug output.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::SimpleText(_) => f.write_str("SimpleText(..)"),
        }
    }
}

/// One VRRP advertisement, decoded or to be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    /// Virtual router ID, 1..=255.
    pub vrid: u8,
    /// 0 = the master stops, 255 = the address owner.
    pub priority: u8,
    /// v2 "Adver Int" (whole seconds) or v3 "Max Adver Int" (centiseconds).
    pub max_adver_int: AdvertInterval,
    /// v2 only; always [`Auth::None`] for v3.
    pub auth: Auth,
    /// The virtual addresses, all of the family of the IP header.
    pub addresses: Vec<IpAddr>,
}

/// Why an advertisement could not be encoded. The state machine only builds adverts from
/// a validated configuration, so it never meets these; they guard direct callers.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("VRID 0 is not a valid virtual router ID")]
    ZeroVrid,
    #[error("source {src} and destination {dst} are of different address families")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
    #[error("virtual address {0} is not of the family of the IP header")]
    AddressFamily(IpAddr),
    #[error("{0} virtual addresses do not fit the 8-bit count")]
    TooManyAddresses(usize),
    #[error("interval {interval} cannot be carried by VRRP{version}")]
    Interval {
        interval: AdvertInterval,
        version: Version,
    },
    #[error("VRRPv2 runs over IPv4 only")]
    V2OverIpv6,
    #[error("VRRPv3 has no authentication")]
    V3Auth,
}

/// Why received octets are not a valid VRRP advertisement. Each names the place it failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("source {src} and destination {dst} are of different address families")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
    #[error("packet of {len} octets is shorter than the 8-octet VRRP header")]
    TooShort { len: usize },
    #[error("unsupported VRRP version {0} in the first octet")]
    UnsupportedVersion(u8),
    #[error("VRRPv2 over IPv6")]
    V2OverIpv6,
    #[error("packet type {0} is not an advertisement (1)")]
    NotAdvertisement(u8),
    #[error("virtual router ID 0 is invalid")]
    ZeroVrid,
    #[error("advertisement interval 0")]
    ZeroInterval,
    #[error("length {actual} does not match {expected} for {count} addresses")]
    LengthMismatch {
        count: u8,
        expected: usize,
        actual: usize,
    },
    #[error("checksum 0x{received:04x} is wrong (computed 0x{computed:04x})")]
    BadChecksum { received: u16, computed: u16 },
    #[error("unsupported VRRPv2 authentication type {0}")]
    UnsupportedAuthType(u8),
}

impl Advert {
    /// The VRRP payload for an IP packet from `src` to `dst`, checksum filled.
    ///
    /// v2: the password (or zeros) follows the addresses; plain Internet checksum.
    /// v3: checksum over the IPv4/IPv6 pseudo-header with protocol 112, so a unicast
    /// advert must be encoded once per destination.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        if self.vrid == 0 {
            return Err(EncodeError::ZeroVrid);
        }
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(EncodeError::MixedFamilies { src, dst });
        }
        let ipv6 = src.is_ipv6();
        if let Some(a) = self.addresses.iter().find(|a| a.is_ipv6() != ipv6) {
            return Err(EncodeError::AddressFamily(*a));
        }
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| EncodeError::TooManyAddresses(self.addresses.len()))?;
        let interval_error = EncodeError::Interval {
            interval: self.max_adver_int,
            version: self.version,
        };
        let addr_len = if ipv6 { 16 } else { 4 };
        let mut out = Vec::with_capacity(HEADER_LEN + addr_len * self.addresses.len() + 8);
        out.push(self.version.number() << 4 | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count);
        match self.version {
            Version::V2 => {
                if ipv6 {
                    return Err(EncodeError::V2OverIpv6);
                }
                let secs = self.max_adver_int.whole_secs().ok_or(interval_error)?;
                out.push(self.auth.type_number());
                out.push(secs);
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::V3Auth);
                }
                if !self.max_adver_int.fits(Version::V3) {
                    return Err(interval_error);
                }
                out.extend_from_slice(&self.max_adver_int.centis().to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
        for a in &self.addresses {
            match a {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::None => out.extend_from_slice(&[0; V2_AUTH_LEN]),
                Auth::SimpleText(pw) => out.extend_from_slice(pw),
            }
        }
        let sum = match self.version {
            Version::V2 => checksum(0, &out),
            Version::V3 => checksum(pseudo_header_sum(src, dst, out.len()), &out),
        };
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }

    /// Parses and verifies the VRRP payload of an IP packet from `src` to `dst`.
    ///
    /// Checks everything the octets alone can prove: version, type, VRID and interval
    /// non-zero, the exact length for the address count, the checksum (v3 with the
    /// pseudo-header), and the v2 authentication type. Whether the advert is for *us*
    /// (VRID, version, password, interval, addresses, TTL) is the instance's business.
    pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, DecodeError> {
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(DecodeError::MixedFamilies { src, dst });
        }
        let ipv6 = src.is_ipv6();
        let header: &[u8; HEADER_LEN] = bytes
            .first_chunk()
            .ok_or(DecodeError::TooShort { len: bytes.len() })?;
        let version = match header[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            other => return Err(DecodeError::UnsupportedVersion(other)),
        };
        if version == Version::V2 && ipv6 {
            return Err(DecodeError::V2OverIpv6);
        }
        let kind = header[0] & 0x0f;
        if kind != TYPE_ADVERTISEMENT {
            return Err(DecodeError::NotAdvertisement(kind));
        }
        let vrid = header[1];
        if vrid == 0 {
            return Err(DecodeError::ZeroVrid);
        }
        let priority = header[2];
        let count = header[3];
        let addr_len = if ipv6 { 16 } else { 4 };
        let trailer = if version == Version::V2 {
            V2_AUTH_LEN
        } else {
            0
        };
        let expected = HEADER_LEN + addr_len * usize::from(count) + trailer;
        if bytes.len() != expected {
            return Err(DecodeError::LengthMismatch {
                count,
                expected,
                actual: bytes.len(),
            });
        }
        let initial = match version {
            Version::V2 => 0,
            Version::V3 => pseudo_header_sum(src, dst, bytes.len()),
        };
        // The sum over a message that carries a right checksum folds to zero.
        if checksum(initial, bytes) != 0 {
            let received = u16::from_be_bytes([header[6], header[7]]);
            let mut zeroed = bytes.to_vec();
            zeroed[6] = 0;
            zeroed[7] = 0;
            return Err(DecodeError::BadChecksum {
                received,
                computed: checksum(initial, &zeroed),
            });
        }
        let (max_adver_int, auth_type) = match version {
            Version::V2 => (AdvertInterval::from_secs(header[5]), Some(header[4])),
            Version::V3 => {
                // The top 4 bits are reserved: sent as zero, ignored on receipt.
                let cs = u16::from_be_bytes([header[4], header[5]]) & V3_MAX_CENTIS;
                (AdvertInterval::from_centis(cs), None)
            }
        };
        let max_adver_int = max_adver_int.ok_or(DecodeError::ZeroInterval)?;
        let body = &bytes[HEADER_LEN..];
        let addresses = body[..addr_len * usize::from(count)]
            .chunks_exact(addr_len)
            .map(|c| {
                if ipv6 {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(o))
                } else {
                    IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                }
            })
            .collect();
        let auth = match auth_type {
            None | Some(AUTH_TYPE_NONE) => Auth::None,
            Some(AUTH_TYPE_SIMPLE_TEXT) => {
                let mut pw = [0u8; V2_AUTH_LEN];
                pw.copy_from_slice(&body[addr_len * usize::from(count)..]);
                Auth::SimpleText(pw)
            }
            Some(other) => return Err(DecodeError::UnsupportedAuthType(other)),
        };
        Ok(Advert {
            version,
            vrid,
            priority,
            max_adver_int,
            auth,
            addresses,
        })
    }
}

/// One's-complement sum of the IPv4 or IPv6 pseudo-header for protocol 112, unfolded.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    let mut sum = 0u32;
    let mut add = |octets: &[u8]| {
        for pair in octets.chunks_exact(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
    };
    for a in [src, dst] {
        match a {
            IpAddr::V4(a) => add(&a.octets()),
            IpAddr::V6(a) => add(&a.octets()),
        }
    }
    // IPv4: zero, protocol, 16-bit length. IPv6: 32-bit length, 3 zeros, next header.
    // Both reduce to the same two words for a length below 65536, which a VRRP
    // message always is (at most 8 + 255 * 16 octets).
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    sum + u32::from(IPPROTO_VRRP) + (len >> 16) + (len & 0xffff)
}

/// The Internet checksum (RFC 1071) of `data`, starting from the unfolded sum `initial`.
fn checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, so the
        // checksum is its complement.
        assert_eq!(
            checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn odd_length_is_padded_with_zero() {
        assert_eq!(checksum(0, &[0x01]), !0x0100);
    }

    #[test]
    fn interval_units() {
        assert_eq!(
            AdvertInterval::from_secs(1),
            Some(AdvertInterval::ONE_SECOND)
        );
        assert_eq!(AdvertInterval::from_secs(0), None);
        assert_eq!(AdvertInterval::from_centis(0), None);
        let i = AdvertInterval::from_centis(10).unwrap_or(AdvertInterval::ONE_SECOND);
        assert_eq!(i.as_duration(), Duration::from_millis(100));
        assert_eq!(i.whole_secs(), None);
        assert!(i.fits(Version::V3));
        assert!(!i.fits(Version::V2));
        assert_eq!(
            AdvertInterval::from_duration(Duration::from_millis(15)),
            None
        );
        assert_eq!(
            AdvertInterval::from_duration(Duration::from_secs(3)),
            AdvertInterval::from_secs(3)
        );
        let big = AdvertInterval::from_secs(255).unwrap_or(AdvertInterval::ONE_SECOND);
        assert!(big.fits(Version::V2));
        assert!(!big.fits(Version::V3));
        assert_eq!(i.to_string(), "100ms");
        assert_eq!(big.to_string(), "255s");
    }
}
