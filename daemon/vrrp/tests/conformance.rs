//! Conformance fixtures in the style of holo: one directory per case under
//! `tests/conformance/`, with a `config`, the input `events` on virtual time, and the
//! `expected` actions. The format is described in `tests/conformance/README.md`.
//!
//! `KEEPER_BLESS=1 cargo test -p keeper-vrrp --test conformance` rewrites the `expected`
//! files from the current behaviour (review the diff before committing it).

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keeper_vrrp::{
    Action, Advert, AdvertInterval, Auth, Event, InitialState, Instance, InstanceConfig, Peer,
    Version,
};

type Res<T> = Result<T, String>;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

#[test]
fn conformance_cases() {
    let mut dirs: Vec<PathBuf> = fs::read_dir(cases_dir())
        .expect("tests/conformance exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 15, "only {} conformance cases", dirs.len());
    let bless = std::env::var_os("KEEPER_BLESS").is_some();
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let got = match run_case(dir) {
            Ok(out) => out,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let expected_path = dir.join("expected");
        if bless {
            fs::write(&expected_path, &got).expect("write expected");
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        let want: Vec<&str> = significant_lines(&expected).collect();
        let have: Vec<&str> = significant_lines(&got).collect();
        if want != have {
            failures.push(format!(
                "{name}: output differs\n--- expected\n{}\n--- got\n{}",
                want.join("\n"),
                have.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn significant_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

// ----- running a case

fn run_case(dir: &Path) -> Res<String> {
    let config = fs::read_to_string(dir.join("config")).map_err(|e| format!("config: {e}"))?;
    let events = fs::read_to_string(dir.join("events")).map_err(|e| format!("events: {e}"))?;
    let cfg = parse_config(&config)?;
    let mut vr = Instance::new(cfg.clone()).map_err(|e| format!("config refused: {e}"))?;
    let t0 = Instant::now();
    let mut out = String::new();
    for (n, line) in events.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ctx = |e: String| format!("events line {}: {e}", n + 1);
        let (time, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let at = parse_duration(time).map_err(ctx)?;
        // Timers due up to this instant run first, each at its own deadline.
        while let Some(deadline) = vr.poll_timeout().filter(|&d| d <= t0 + at) {
            vr.handle_timeout(deadline);
            drain(&mut vr, deadline - t0, &mut out);
        }
        let mut words = rest.split_whitespace();
        let verb = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        let now = t0 + at;
        match verb {
            "startup" => vr.handle(now, Event::Startup),
            "shutdown" => vr.handle(now, Event::Shutdown),
            "interface-up" => vr.handle(now, Event::InterfaceUp),
            "interface-down" => vr.handle(now, Event::InterfaceDown),
            "set-priority" => {
                let p = args.first().ok_or("set-priority needs a value")?;
                let p = p.parse().map_err(|e| ctx(format!("priority {p}: {e}")))?;
                vr.handle(now, Event::SetPriority(p));
            }
            "advert" | "packet" => {
                let (src, dst, ttl, bytes) = build_packet(verb, &args, &cfg).map_err(ctx)?;
                vr.handle(
                    now,
                    Event::AdvertReceived {
                        src,
                        dst,
                        ttl,
                        bytes: &bytes,
                    },
                );
            }
            "check" => {
                let _ = writeln!(out, "{} {}", fmt_duration(at), snapshot(&vr, t0));
            }
            "end" => {}
            other => return Err(ctx(format!("unknown event {other:?}"))),
        }
        drain(&mut vr, at, &mut out);
    }
    Ok(out)
}

fn drain(vr: &mut Instance, at: Duration, out: &mut String) {
    while let Some(action) = vr.poll_action() {
        let _ = writeln!(out, "{} {}", fmt_duration(at), fmt_action(&action));
    }
}

fn fmt_action(a: &Action) -> String {
    match a {
        Action::SendAdvert(o) => {
            let to: Vec<String> = o.datagrams.iter().map(|d| d.dst.to_string()).collect();
            format!(
                "send-advert prio={} int={} to={}",
                o.advert.priority,
                o.advert.max_adver_int,
                to.join(",")
            )
        }
        Action::AddVips { accept_mode } => format!("add-vips accept={accept_mode}"),
        Action::RemoveVips => "remove-vips".to_string(),
        Action::Announce => "announce".to_string(),
        Action::Notify(t) => format!("notify {}->{} reason={}", t.from, t.to, t.reason),
        Action::Dropped { src, reason } => format!("drop src={src} reason={reason}"),
    }
}

fn snapshot(vr: &Instance, t0: Instant) -> String {
    let master = vr
        .master_address()
        .map_or("none".to_string(), |a| a.to_string());
    let master_prio = vr
        .master_priority()
        .map_or("none".to_string(), |p| p.to_string());
    let timeout = vr
        .poll_timeout()
        .map_or("none".to_string(), |t| fmt_duration(t - t0));
    let s = vr.stats();
    format!(
        "state {} prio={} master={} master-prio={} master-int={} timeout={} sent={} received={} dropped={}",
        vr.state(),
        vr.effective_priority(),
        master,
        master_prio,
        vr.master_adver_interval(),
        timeout,
        s.adverts_sent,
        s.adverts_received,
        s.drops.total()
    )
}

// ----- parsing

fn parse_config(text: &str) -> Res<InstanceConfig> {
    let mut kv: Vec<(usize, &str, &str)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        kv.push((n + 1, k, v.trim()));
    }
    let get = |key: &str| kv.iter().find(|(_, k, _)| *k == key).map(|(_, _, v)| *v);
    let vrid = get("vrid").ok_or("config: vrid missing")?;
    let vrid = vrid.parse().map_err(|e| format!("vrid: {e}"))?;
    let version = match get("version").unwrap_or("3") {
        "2" => Version::V2,
        "3" => Version::V3,
        v => return Err(format!("version {v}")),
    };
    let primary = parse_ip(get("primary").ok_or("config: primary missing")?)?;
    let vips = kv
        .iter()
        .filter(|(_, k, _)| *k == "vip")
        .map(|(_, _, v)| parse_ip(v))
        .collect::<Res<Vec<_>>>()?;
    let mut c = InstanceConfig::new(vrid, version, primary, vips);
    for &(n, k, v) in &kv {
        let ctx = |e: String| format!("config line {n} ({k}): {e}");
        match k {
            "vrid" | "version" | "primary" | "vip" => {}
            "priority" => c.priority = v.parse().map_err(|e| ctx(format!("{e}")))?,
            "advert_int" => c.advert_interval = parse_interval(v).map_err(ctx)?,
            "preempt" => c.preempt = parse_bool(v).map_err(ctx)?,
            "preempt_delay" => c.preempt_delay = parse_duration(v).map_err(ctx)?,
            "accept_mode" => c.accept_mode = parse_bool(v).map_err(ctx)?,
            "auth_pass" => {
                c.auth =
                    Auth::simple_text(v.as_bytes()).ok_or_else(|| ctx("bad password".into()))?
            }
            "startup_delay" => c.startup_delay = parse_duration(v).map_err(ctx)?,
            "skip_check_adv_addr" => c.skip_check_adv_addr = parse_bool(v).map_err(ctx)?,
            "strict" => c.strict = parse_bool(v).map_err(ctx)?,
            "higher_prio_send_advert" => c.higher_prio_send_advert = parse_bool(v).map_err(ctx)?,
            "unicast_peer" => {
                let mut f = v.split_whitespace();
                let mut peer = Peer::new(parse_ip(f.next().unwrap_or("")).map_err(ctx)?);
                while let (Some(key), Some(val)) = (f.next(), f.next()) {
                    let ttl = val.parse().map_err(|e| ctx(format!("{e}")))?;
                    match key {
                        "min_ttl" => peer.min_ttl = ttl,
                        "max_ttl" => peer.max_ttl = ttl,
                        _ => return Err(ctx(format!("unknown peer option {key}"))),
                    }
                }
                c.unicast_peers.get_or_insert_with(Vec::new).push(peer);
            }
            "state" => {
                c.initial_state = match v {
                    "MASTER" => InitialState::Master,
                    "BACKUP" => InitialState::Backup,
                    _ => return Err(ctx(format!("state {v}"))),
                }
            }
            "down_timer_adverts" => {
                c.down_timer_adverts = v.parse().map_err(|e| ctx(format!("{e}")))?
            }
            "garp_master_delay" => c.garp.master_delay = parse_duration(v).map_err(ctx)?,
            "garp_master_repeat" => {
                c.garp.master_repeat = v.parse().map_err(|e| ctx(format!("{e}")))?
            }
            "garp_master_refresh" => c.garp.master_refresh = Some(parse_duration(v).map_err(ctx)?),
            "garp_master_refresh_repeat" => {
                c.garp.master_refresh_repeat = v.parse().map_err(|e| ctx(format!("{e}")))?
            }
            "garp_interval" => c.garp.interval = parse_duration(v).map_err(ctx)?,
            _ => return Err(ctx("unknown key".into())),
        }
    }
    Ok(c)
}

/// `advert src=.. dst=.. [ttl=] [version=] [vrid=] prio=.. [int=] [auth=] [addrs=a,b]`
/// (missing fields from the config; the checksum is right) or
/// `packet src=.. dst=.. [ttl=] hex=..` (raw octets).
fn build_packet(
    verb: &str,
    args: &[&str],
    cfg: &InstanceConfig,
) -> Res<(IpAddr, IpAddr, u8, Vec<u8>)> {
    let mut src = None;
    let mut dst = None;
    let mut ttl = 255u8;
    let mut advert = Advert {
        version: cfg.version,
        vrid: cfg.vrid,
        priority: 100,
        max_adver_int: cfg.advert_interval,
        auth: cfg.auth,
        addresses: cfg.virtual_addresses.clone(),
    };
    let mut hex = None;
    for arg in args {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| format!("argument {arg:?} is not key=value"))?;
        match k {
            "src" => src = Some(parse_ip(v)?),
            "dst" => dst = Some(parse_ip(v)?),
            "ttl" => ttl = v.parse().map_err(|e| format!("ttl: {e}"))?,
            "version" => {
                advert.version = match v {
                    "2" => Version::V2,
                    "3" => Version::V3,
                    _ => return Err(format!("version {v}")),
                }
            }
            "vrid" => advert.vrid = v.parse().map_err(|e| format!("vrid: {e}"))?,
            "prio" => advert.priority = v.parse().map_err(|e| format!("prio: {e}"))?,
            "int" => advert.max_adver_int = parse_interval(v)?,
            "auth" => {
                advert.auth = if v == "none" {
                    Auth::None
                } else {
                    Auth::simple_text(v.as_bytes()).ok_or("bad password")?
                }
            }
            "addrs" => {
                advert.addresses = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(parse_ip)
                    .collect::<Res<_>>()?
            }
            "hex" => hex = Some(parse_hex(v)?),
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    let src = src.ok_or("src= missing")?;
    let dst = dst.ok_or("dst= missing")?;
    let bytes = match (verb, hex) {
        ("packet", Some(b)) => b,
        ("packet", None) => return Err("packet needs hex=".into()),
        _ => advert
            .encode(src, dst)
            .map_err(|e| format!("advert does not encode: {e}"))?,
    };
    Ok((src, dst, ttl, bytes))
}

fn parse_ip(s: &str) -> Res<IpAddr> {
    s.parse().map_err(|e| format!("address {s:?}: {e}"))
}

fn parse_bool(s: &str) -> Res<bool> {
    match s {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not true/false")),
    }
}

fn parse_hex(s: &str) -> Res<Vec<u8>> {
    if !s.is_ascii() || !s.len().is_multiple_of(2) {
        return Err(format!("{s:?} is not an even number of hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("hex {s:?}: {e}")))
        .collect()
}

fn parse_interval(s: &str) -> Res<AdvertInterval> {
    AdvertInterval::from_duration(parse_duration(s)?)
        .ok_or_else(|| format!("interval {s:?} is not a positive number of centiseconds"))
}

/// `0`, `3s`, `1.5s`, `100ms`, `250us`, `7ns`: decimal with a unit, exact.
fn parse_duration(s: &str) -> Res<Duration> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let (num, scale) = [
        ("ns", 1u128),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
    ]
    .iter()
    .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n, *scale)))
    .ok_or_else(|| format!("duration {s:?} needs a unit (s, ms, us, ns)"))?;
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let bad = || format!("duration {s:?}");
    let int: u128 = int.parse().map_err(|_| bad())?;
    let mut nanos = int * scale;
    let mut place = scale;
    for d in frac.chars() {
        place /= 10;
        let d = u128::from(d.to_digit(10).ok_or_else(bad)?);
        if place == 0 && d != 0 {
            return Err(format!("duration {s:?} is finer than a nanosecond"));
        }
        nanos += d * place;
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| bad())
}

/// Seconds with as many decimals as needed: `0s`, `3.609375s`, `10.0001s`.
fn fmt_duration(d: Duration) -> String {
    let frac = format!("{:09}", d.subsec_nanos());
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{}s", d.as_secs())
    } else {
        format!("{}.{}s", d.as_secs(), frac)
    }
}

#[test]
fn duration_format_round_trips() {
    for s in ["0s", "3.609375s", "10.0001s", "0.000000001s", "42s"] {
        let d = parse_duration(s).expect("parses");
        assert_eq!(fmt_duration(d), s);
    }
    assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
    assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
    assert!(parse_duration("1.5ns").is_err());
    assert!(parse_duration("5").is_err());
}
