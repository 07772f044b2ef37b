//! keepalived's one-line syntaxes, kept verbatim inside TOML strings so that lines can be copied
//! from a keepalived.conf: virtual addresses, unicast peers, tracked objects, `IP PORT` pairs.

use std::net::{IpAddr, SocketAddr};

/// Address scope of a virtual address (`scope` keyword).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

impl Scope {
    /// The kernel's `RT_SCOPE_*` value.
    pub fn value(self) -> u8 {
        match self {
            Scope::Global => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(v) => v,
        }
    }
}

/// One `virtual_ipaddress` entry:
/// `<ADDR>[/<PREFIX>] [brd <ADDR>] [dev <IFNAME>] [scope <SCOPE>] [label <LABEL>] [-nodad]
/// [noprefixroute] [home]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipSpec {
    pub addr: IpAddr,
    /// Default /32 (IPv4) or /128 (IPv6), as keepalived.
    pub prefix_len: u8,
    pub dev: Option<String>,
    pub brd: Option<IpAddr>,
    pub scope: Option<Scope>,
    pub label: Option<String>,
    pub no_prefix_route: bool,
}

fn next_value<'a>(words: &mut impl Iterator<Item = &'a str>, key: &str) -> Result<&'a str, String> {
    words.next().ok_or_else(|| format!("`{key}` needs a value"))
}

fn parse_addr(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| format!("{s:?} is not an IP address"))
}

/// Parses `ADDR[/PREFIX]`, checking the prefix against the family.
pub fn parse_prefixed(s: &str) -> Result<(IpAddr, Option<u8>), String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = parse_addr(a)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => None,
        Some(p) => Some(
            p.parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("invalid prefix length {p:?} (0-{max})"))?,
        ),
    };
    Ok((addr, prefix))
}

impl std::str::FromStr for VipSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let first = words.next().ok_or("empty address")?;
        let (addr, prefix) = parse_prefixed(first)?;
        let mut vip = VipSpec {
            addr,
            prefix_len: prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 }),
            dev: None,
            brd: None,
            scope: None,
            label: None,
            no_prefix_route: false,
        };
        while let Some(word) = words.next() {
            match word {
                "dev" => vip.dev = Some(next_value(&mut words, word)?.to_string()),
                "label" => vip.label = Some(next_value(&mut words, word)?.to_string()),
                "brd" | "broadcast" => vip.brd = Some(parse_addr(next_value(&mut words, word)?)?),
                "scope" => {
                    let v = next_value(&mut words, word)?;
                    vip.scope = Some(match v {
                        "global" => Scope::Global,
                        "site" => Scope::Site,
                        "link" => Scope::Link,
                        "host" => Scope::Host,
                        "nowhere" => Scope::Nowhere,
                        n => Scope::Other(n.parse().map_err(|_| format!("unknown scope {n:?}"))?),
                    });
                }
                "noprefixroute" => vip.no_prefix_route = true,
                // IPv6 VIPs are always added without DAD so they are usable at once.
                "-nodad" | "nodad" | "home" => {}
                other => return Err(format!("unknown word {other:?} in virtual address")),
            }
        }
        if let Some(brd) = vip.brd
            && brd.is_ipv4() != addr.is_ipv4()
        {
            return Err("`brd` is not of the address family of the address".into());
        }
        Ok(vip)
    }
}

/// One `unicast_peer` entry: `ADDR [min_ttl N] [max_ttl N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub addr: IpAddr,
    pub min_ttl: u8,
    pub max_ttl: u8,
}

impl std::str::FromStr for PeerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let addr = parse_addr(words.next().ok_or("empty peer")?)?;
        let mut peer = PeerSpec {
            addr,
            min_ttl: 0,
            max_ttl: 255,
        };
        while let Some(word) = words.next() {
            let v = next_value(&mut words, word)?;
            let n: u8 = v
                .parse()
                .map_err(|_| format!("invalid TTL {v:?} (0-255)"))?;
            match word {
                "min_ttl" => peer.min_ttl = n,
                "max_ttl" => peer.max_ttl = n,
                other => return Err(format!("unknown word {other:?} in unicast peer")),
            }
        }
        if peer.min_ttl > peer.max_ttl {
            return Err("min_ttl is above max_ttl".into());
        }
        Ok(peer)
    }
}

/// A tracked object: `NAME [weight N] [reverse]` (`track_interface`, `track_script`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackSpec {
    pub name: String,
    /// -253..=253; `None` means "down is FAULT".
    pub weight: Option<i32>,
    pub reverse: bool,
}

impl std::str::FromStr for TrackSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let name = words.next().ok_or("empty name")?.to_string();
        let mut spec = TrackSpec {
            name,
            weight: None,
            reverse: false,
        };
        while let Some(word) = words.next() {
            match word {
                "weight" => {
                    let v = next_value(&mut words, word)?;
                    spec.weight = Some(
                        v.parse::<i32>()
                            .ok()
                            .filter(|w| (-253..=253).contains(w))
                            .ok_or_else(|| format!("invalid weight {v:?} (-253..253)"))?,
                    );
                }
                "reverse" => spec.reverse = true,
                other => return Err(format!("unknown word {other:?}")),
            }
        }
        Ok(spec)
    }
}

/// `IP PORT` (keepalived) or `IP:PORT` / `[IPv6]:PORT`.
pub fn parse_ip_port(s: &str) -> Result<SocketAddr, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        [ip, port] => {
            let ip = parse_addr(ip)?;
            let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
            Ok(SocketAddr::new(ip, port))
        }
        [one] => one
            .parse::<SocketAddr>()
            .map_err(|_| format!("{one:?} is not `IP PORT`")),
        _ => Err(format!("{s:?} is not `IP PORT`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_vip_syntax() {
        let v: VipSpec = "192.168.235.100/24 dev ens33 label ens33:2"
            .parse()
            .expect("parses");
        assert_eq!(v.addr.to_string(), "192.168.235.100");
        assert_eq!(v.prefix_len, 24);
        assert_eq!(v.dev.as_deref(), Some("ens33"));
        assert_eq!(v.label.as_deref(), Some("ens33:2"));
        let v: VipSpec = "192.168.200.100".parse().expect("parses");
        assert_eq!(v.prefix_len, 32);
        let v: VipSpec = "fd00::1/64 dev eth0 scope link".parse().expect("parses");
        assert_eq!((v.prefix_len, v.scope), (64, Some(Scope::Link)));
        assert!("10.0.0.1/33".parse::<VipSpec>().is_err());
        assert!("10.0.0.1 dev".parse::<VipSpec>().is_err());
        assert!("10.0.0.1 bogus x".parse::<VipSpec>().is_err());
    }

    #[test]
    fn peers_and_tracks() {
        let p: PeerSpec = "10.0.0.2 min_ttl 254".parse().expect("parses");
        assert_eq!((p.min_ttl, p.max_ttl), (254, 255));
        assert!("10.0.0.2 min_ttl 9 max_ttl 3".parse::<PeerSpec>().is_err());
        let t: TrackSpec = "chk weight -20".parse().expect("parses");
        assert_eq!(t.weight, Some(-20));
        assert!("chk weight 300".parse::<TrackSpec>().is_err());
    }

    #[test]
    fn ip_port_forms() {
        assert_eq!(parse_ip_port("127.0.0.1 80").map(|a| a.port()), Ok(80));
        assert_eq!(parse_ip_port("[::1]:8080").map(|a| a.port()), Ok(8080));
        assert!(parse_ip_port("127.0.0.1").is_err());
    }
}
