//! Listings of a table the way `ipvsadm -Ln` prints them (also `--stats` and `--rate`), and JSON.
//! Library functions for `keeperctl ipvs`; the layout matches ipvsadm 1.31 byte for byte
//! (checked against its output on a real kernel in the tests).

use std::cmp::Ordering;
use std::fmt::Write;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::{
    AddressFamily, Destination, Info, Netmask, Scheduler, Service, ServiceKey, Table,
    VirtualService, fmt_addr_port,
};

/// Which listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// `ipvsadm -Ln`: scheduler, flags, forwarding, weight, connection counts.
    Plain,
    /// `ipvsadm -Ln --stats`: cumulative counters.
    Stats,
    /// `ipvsadm -Ln --rate`: rates.
    Rate,
}

/// The whole listing: header line with the version (when `info` is given), column titles, then
/// services sorted as ipvsadm sorts them, each with its destinations.
pub fn list(info: Option<&Info>, table: &Table, format: ListFormat) -> String {
    let mut out = String::new();
    if let Some(i) = info {
        let _ = writeln!(
            out,
            "IP Virtual Server version {} (size={})",
            i.version_string(),
            i.conn_tab_size
        );
    }
    out.push_str(match format {
        ListFormat::Plain => {
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        }
        ListFormat::Stats => {
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
        }
        ListFormat::Rate => {
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n"
        }
    });
    let mut services: Vec<&VirtualService> = table.services.values().collect();
    services.sort_by(|a, b| ipvsadm_service_order(&a.service.key, &b.service.key));
    for vs in services {
        service_lines(&mut out, vs, format);
    }
    out
}

/// ipvsadm's order: address services before firewall marks (by mark), then family,
/// protocol number, address, port.
fn ipvsadm_service_order(a: &ServiceKey, b: &ServiceKey) -> Ordering {
    fn rank(k: &ServiceKey) -> (u32, u16, u16, IpAddr, u16) {
        match k {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (0, k.af().raw(), protocol.raw(), *addr, *port),
            ServiceKey::Fwmark { af, mark } => {
                (*mark, af.raw(), 0, IpAddr::from([0u8, 0, 0, 0]), 0)
            }
        }
    }
    rank(a).cmp(&rank(b))
}

fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark,
        } => format!("FWM  {mark}"),
        ServiceKey::Fwmark {
            af: AddressFamily::Inet6,
            mark,
        } => format!("FWM  {mark} IPv6"),
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => format!("{:<4} {}", protocol.name(), fmt_addr_port(addr, *port)),
    }
}

fn sched_flags(s: &Service) -> Vec<&'static str> {
    let names: [&'static str; 3] = match s.scheduler {
        Scheduler::Sh => ["sh-fallback", "sh-port", "flag-3"],
        Scheduler::Mh => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    [s.flags.sched1, s.flags.sched2, s.flags.sched3]
        .iter()
        .zip(names)
        .filter(|(on, _)| **on)
        .map(|(_, n)| n)
        .collect()
}

fn service_lines(out: &mut String, vs: &VirtualService, format: ListFormat) {
    let s = &vs.service;
    let name = service_name(&s.key);
    let st = s.stats.as_deref().copied().unwrap_or_default();
    match format {
        ListFormat::Plain => {
            let _ = write!(out, "{name} {}", s.scheduler);
            let flags = sched_flags(s);
            if !flags.is_empty() {
                let _ = write!(out, " ({})", flags.join(","));
            }
            if s.flags.persistent {
                let _ = write!(out, " persistent {}", s.timeout);
                match s.netmask {
                    Netmask::V4(m) if m.octets() != [255; 4] => {
                        let _ = write!(out, " mask {m}");
                    }
                    Netmask::V6(p) if p != 128 => {
                        let _ = write!(out, " mask {p}");
                    }
                    _ => {}
                }
            }
            if let Some(pe) = &s.pe_name {
                let _ = write!(out, " pe {pe}");
            }
            if s.flags.one_packet {
                out.push_str(" ops");
            }
        }
        ListFormat::Stats => {
            let _ = write!(out, "{name:<33}");
            for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                out.push_str(&largenum(v));
            }
        }
        ListFormat::Rate => {
            let _ = write!(out, "{name:<33}");
            for v in [st.cps, st.inpps, st.outpps, st.inbps, st.outbps] {
                out.push_str(&largenum(v));
            }
        }
    }
    out.push('\n');
    let mut dests: Vec<&Destination> = vs.destinations.values().collect();
    dests.sort_by_key(|d| (AddressFamily::of(&d.addr).raw(), d.addr, d.port));
    for d in dests {
        dest_line(out, d, format);
    }
}

fn dest_line(out: &mut String, d: &Destination, format: ListFormat) {
    let name = fmt_addr_port(&d.addr, d.port);
    let st = d.stats.as_deref().copied().unwrap_or_default();
    match format {
        ListFormat::Plain => {
            let _ = writeln!(
                out,
                "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
                d.forward.name(),
                d.weight as i32,
                d.conns.active,
                d.conns.inactive
            );
        }
        ListFormat::Stats => {
            let _ = write!(out, "  -> {name:<28}");
            for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                out.push_str(&largenum(v));
            }
            out.push('\n');
        }
        ListFormat::Rate => {
            let _ = write!(
                out,
                "  -> {name:<28} {:>8} {:>8} {:>8}",
                st.cps as u32, st.inpps as u32, st.outpps as u32
            );
            for v in [st.inbps, st.outbps] {
                out.push_str(&largenum(v));
            }
            out.push('\n');
        }
    }
}

/// ipvsadm's 9-column number: exact below 100 million, then K, M, G, T.
fn largenum(i: u64) -> String {
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1_000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// The JSON document of `keeperctl ipvs --json`.
#[derive(Debug, Serialize)]
struct JsonListing<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn_tab_size: Option<u32>,
    #[serde(flatten)]
    table: &'a Table,
}

/// The table as pretty-printed JSON: `{"version", "conn_tab_size", "services": [...]}`, every
/// service with its settings, `destinations`, and counters when the table came from a dump.
pub fn json(info: Option<&Info>, table: &Table) -> String {
    let doc = JsonListing {
        version: info.map(Info::version_string),
        conn_tab_size: info.map(|i| i.conn_tab_size),
        table,
    };
    // Serializing these types cannot fail: no maps with non-string keys, no foreign types.
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
