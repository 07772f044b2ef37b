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

/// A route type (`virtual_routes` may start with one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// One `virtual_routes` entry, keepalived's syntax:
/// `[TYPE] [src ADDR] [to] DEST[/PFX]|default [via|gw ADDR] [dev IF] [scope S] [table N]
/// [metric|priority|preference N] [proto N] [onlink]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub kind: RouteKind,
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub scope: Option<Scope>,
    pub table: Option<u32>,
    pub metric: Option<u32>,
    pub proto: Option<u8>,
    pub onlink: bool,
}

fn parse_table(v: &str) -> Result<u32, String> {
    match v {
        "main" => Ok(254),
        "local" => Ok(255),
        "default" => Ok(253),
        n => n
            .parse()
            .map_err(|_| format!("invalid table {n:?} (a number, main, local or default)")),
    }
}

fn parse_scope(v: &str) -> Result<Scope, String> {
    Ok(match v {
        "global" | "universe" => Scope::Global,
        "site" => Scope::Site,
        "link" => Scope::Link,
        "host" => Scope::Host,
        "nowhere" => Scope::Nowhere,
        n => Scope::Other(n.parse().map_err(|_| format!("unknown scope {n:?}"))?),
    })
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("invalid {key} {v:?}"))
}

impl std::str::FromStr for RouteSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace().peekable();
        let kind = match words.peek().copied() {
            Some("blackhole") => RouteKind::Blackhole,
            Some("unreachable") => RouteKind::Unreachable,
            Some("prohibit") => RouteKind::Prohibit,
            Some("throw") => RouteKind::Throw,
            Some("unicast") => RouteKind::Unicast,
            _ => RouteKind::Unicast,
        };
        if words.peek().is_some_and(|w| {
            ["blackhole", "unreachable", "prohibit", "throw", "unicast"].contains(w)
        }) {
            words.next();
        }
        let mut dest: Option<(IpAddr, Option<u8>)> = None;
        let mut r = RouteSpec {
            kind,
            dest: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            prefix_len: 0,
            src: None,
            via: None,
            dev: None,
            scope: None,
            table: None,
            metric: None,
            proto: None,
            onlink: false,
        };
        let mut default = false;
        while let Some(word) = words.next() {
            match word {
                "src" => r.src = Some(parse_addr(next_value(&mut words, word)?)?),
                "via" | "gw" => r.via = Some(parse_addr(next_value(&mut words, word)?)?),
                "dev" | "oif" => r.dev = Some(next_value(&mut words, word)?.to_string()),
                "scope" => r.scope = Some(parse_scope(next_value(&mut words, word)?)?),
                "table" => r.table = Some(parse_table(next_value(&mut words, word)?)?),
                "metric" | "priority" | "preference" => {
                    r.metric = Some(parse_num(word, next_value(&mut words, word)?)?)
                }
                "proto" | "protocol" => {
                    r.proto = Some(parse_num(word, next_value(&mut words, word)?)?)
                }
                "onlink" => r.onlink = true,
                "to" => dest = Some(parse_prefixed(next_value(&mut words, word)?)?),
                "default" if dest.is_none() => default = true,
                "or" => return Err("multipath routes (`or`) are not supported yet".into()),
                other if dest.is_none() && !default => dest = Some(parse_prefixed(other)?),
                other => return Err(format!("unknown word {other:?} in virtual route")),
            }
        }
        let (addr, prefix) = match (dest, default) {
            (Some(d), _) => d,
            // `default` takes the family of the gateway or source, IPv4 without either.
            (None, true) => match r.via.or(r.src) {
                Some(IpAddr::V6(_)) => (IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), Some(0)),
                _ => (IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), Some(0)),
            },
            (None, false) => return Err("a virtual route needs a destination".into()),
        };
        r.dest = addr;
        r.prefix_len = prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        for (what, a) in [("src", r.src), ("via", r.via)] {
            if a.is_some_and(|a| a.is_ipv4() != addr.is_ipv4()) {
                return Err(format!(
                    "`{what}` is not of the destination's address family"
                ));
            }
        }
        if r.kind != RouteKind::Unicast && (r.via.is_some() || r.dev.is_some()) {
            return Err(
                "a blackhole/unreachable/prohibit/throw route takes no `via` or `dev`".into(),
            );
        }
        Ok(r)
    }
}

/// One `virtual_rules` entry: `[from PFX] [to PFX] table N [iif IF] [oif IF] [fwmark N[/M]]
/// [preference|priority|pref N] [tos N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub v6: bool,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub table: u32,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<(u32, Option<u32>)>,
    pub priority: Option<u32>,
    pub tos: Option<u8>,
}

impl std::str::FromStr for RuleSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let mut r = RuleSpec {
            v6: false,
            from: None,
            to: None,
            table: 0,
            iif: None,
            oif: None,
            fwmark: None,
            priority: None,
            tos: None,
        };
        let mut family: Option<bool> = None;
        let mut prefixed = |v: &str| -> Result<(IpAddr, u8), String> {
            let (a, p) = parse_prefixed(v)?;
            if family.is_some_and(|f| f != a.is_ipv6()) {
                return Err("`from` and `to` are of different address families".into());
            }
            family = Some(a.is_ipv6());
            Ok((a, p.unwrap_or(if a.is_ipv4() { 32 } else { 128 })))
        };
        while let Some(word) = words.next() {
            let v = next_value(&mut words, word)?;
            match word {
                "from" => r.from = Some(prefixed(v)?),
                "to" => r.to = Some(prefixed(v)?),
                "table" | "lookup" => r.table = parse_table(v)?,
                "iif" => r.iif = Some(v.to_string()),
                "oif" => r.oif = Some(v.to_string()),
                "preference" | "priority" | "pref" => r.priority = Some(parse_num(word, v)?),
                "tos" => r.tos = Some(parse_num(word, v)?),
                "fwmark" => {
                    let (m, mask) = match v.split_once('/') {
                        Some((m, k)) => (m, Some(k)),
                        None => (v, None),
                    };
                    let num = |x: &str| -> Result<u32, String> {
                        match x.strip_prefix("0x") {
                            Some(h) => u32::from_str_radix(h, 16)
                                .map_err(|_| format!("invalid fwmark {x:?}")),
                            None => parse_num("fwmark", x),
                        }
                    };
                    r.fwmark = Some((num(m)?, mask.map(num).transpose()?));
                }
                other => return Err(format!("unsupported word {other:?} in virtual rule")),
            }
        }
        if r.table == 0 {
            return Err("a virtual rule needs `table`".into());
        }
        r.v6 = family.unwrap_or(false);
        Ok(r)
    }
}

#[cfg(test)]
mod route_tests {
    use super::*;

    #[test]
    fn keepalived_route_examples() {
        let r: RouteSpec = "src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1"
            .parse()
            .expect("parses");
        assert_eq!((r.prefix_len, r.dev.as_deref()), (24, Some("eth1")));
        assert_eq!(
            r.src.map(|a| a.to_string()).as_deref(),
            Some("192.168.100.1")
        );
        let r: RouteSpec = "blackhole 192.168.114.0/24".parse().expect("parses");
        assert_eq!(r.kind, RouteKind::Blackhole);
        let r: RouteSpec = "0.0.0.0/0 gw 192.168.0.1 table 100"
            .parse()
            .expect("parses");
        assert_eq!((r.prefix_len, r.table), (0, Some(100)));
        let r: RouteSpec = "default via fd00::1".parse().expect("parses");
        assert!(r.dest.is_ipv6() && r.prefix_len == 0);
        assert!(
            "192.168.113.0/24 via 192.168.200.254 or 192.168.100.254"
                .parse::<RouteSpec>()
                .is_err()
        );
        assert!("10.0.0.0/8 via fd00::1".parse::<RouteSpec>().is_err());
        assert!(
            "blackhole 10.0.0.0/8 dev eth0"
                .parse::<RouteSpec>()
                .is_err()
        );
    }

    #[test]
    fn keepalived_rule_examples() {
        let r: RuleSpec = "from 192.168.2.0/24 table 1".parse().expect("parses");
        assert_eq!((r.table, r.from.map(|f| f.1)), (1, Some(24)));
        let r: RuleSpec = "to 192.168.2.0/24 table main fwmark 0x18/0xff pref 39"
            .parse()
            .expect("parses");
        assert_eq!(
            (r.table, r.fwmark, r.priority),
            (254, Some((24, Some(255))), Some(39))
        );
        assert!("from 10.0.0.0/8".parse::<RuleSpec>().is_err());
        assert!(
            "from 10.0.0.0/8 to fd00::/8 table 1"
                .parse::<RuleSpec>()
                .is_err()
        );
        assert!(
            "from 10.0.0.0/8 table 1 realms 3"
                .parse::<RuleSpec>()
                .is_err()
        );
    }
}
