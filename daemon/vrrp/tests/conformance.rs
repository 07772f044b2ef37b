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
    Action, Advert, AdvertInterval, Auth, Event, GroupTransition, InitialState, Instance,
    InstanceConfig, Peer, ProcessQuorum, ReconfigureError, ScriptCounter, SyncGroup, TrackerId,
    TrackerKind, Tracking, TrackingStatus, Version, Weight,
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

/// One instance of a case, with its trackers.
struct Member {
    /// Empty for a single-instance case (output lines carry no name).
    name: String,
    cfg: InstanceConfig,
    vr: Instance,
    tracking: Option<Trackers>,
}

/// The trackers of an instance, by name, and their script counters / process quorums.
struct Trackers {
    tracking: Tracking,
    by_name: Vec<(String, TrackerId, TrackerKind)>,
    scripts: Vec<(TrackerId, ScriptCounter)>,
    quorums: Vec<(TrackerId, ProcessQuorum)>,
    last: TrackingStatus,
}

struct Case {
    t0: Instant,
    members: Vec<Member>,
    group: Option<SyncGroup>,
    out: String,
}

impl Case {
    fn emit(&mut self, at: Duration, who: &str, line: &str) {
        let _ = if who.is_empty() {
            writeln!(self.out, "{} {line}", fmt_duration(at))
        } else {
            writeln!(self.out, "{} {who} {line}", fmt_duration(at))
        };
    }

    /// After anything happened to member `i`: settle the group, then `i`'s actions, the
    /// other members' (in order), and the group's transitions: the order they happened
    /// in, which a driver keeps.
    fn after(&mut self, at: Duration, i: usize) {
        let now = self.t0 + at;
        let members: Vec<usize> = match &mut self.group {
            Some(group) => {
                let mut refs: Vec<&mut Instance> =
                    self.members.iter_mut().map(|m| &mut m.vr).collect();
                group.settle(now, &mut refs);
                let others = (0..self.members.len()).filter(|&m| m != i);
                std::iter::once(i).chain(others).collect()
            }
            None => vec![i],
        };
        for m in members {
            while let Some(action) = self.members[m].vr.poll_action() {
                let name = self.members[m].name.clone();
                self.emit(at, &name, &fmt_action(&action));
            }
        }
        let transitions: Vec<GroupTransition> = match &mut self.group {
            Some(g) => std::iter::from_fn(|| g.poll_transition()).collect(),
            None => Vec::new(),
        };
        for t in transitions {
            let cause = t
                .cause
                .map_or("none".to_string(), |c| self.members[c].name.clone());
            self.emit(at, "group", &format!("{}->{} cause={cause}", t.from, t.to));
        }
    }

    /// Fires every timer due up to `at`, each at its own deadline, earliest first.
    fn run_timers(&mut self, at: Duration) {
        loop {
            let due = self
                .members
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.vr.poll_timeout().map(|t| (t, i)))
                .filter(|&(t, _)| t <= self.t0 + at)
                .min();
            let Some((deadline, i)) = due else { break };
            self.members[i].vr.handle_timeout(deadline);
            self.after(deadline - self.t0, i);
        }
    }
}

fn run_case(dir: &Path) -> Res<String> {
    let config = fs::read_to_string(dir.join("config")).map_err(|e| format!("config: {e}"))?;
    let events = fs::read_to_string(dir.join("events")).map_err(|e| format!("events: {e}"))?;
    let (sections, group_names) = split_sections(&config)?;
    let multi = !sections[0].0.is_empty();
    let mut members = Vec::new();
    for (name, text) in &sections {
        let (cfg, trackers) = parse_config(text).map_err(|e| format!("[{name}] {e}"))?;
        let vr = Instance::new(cfg.clone()).map_err(|e| format!("config refused: {e}"))?;
        members.push(Member {
            name: name.clone(),
            cfg,
            vr,
            tracking: trackers,
        });
    }
    let group = match &group_names {
        None => None,
        Some(names) => {
            let order: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
            if *names != order {
                return Err("sync_group must list every instance, in order".into());
            }
            Some(SyncGroup::new())
        }
    };
    let mut case = Case {
        t0: Instant::now(),
        members,
        group,
        out: String::new(),
    };
    // The group marks its members before anything starts.
    case.after(Duration::ZERO, 0);
    for m in &mut case.members {
        if let Some(t) = &m.tracking {
            // The trackers' state at start-up goes in before Startup.
            m.vr.handle(case.t0, Event::Tracking(t.last));
        }
    }
    for (n, line) in events.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ctx = |e: String| format!("events line {}: {e}", n + 1);
        let (time, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let at = parse_duration(time).map_err(ctx)?;
        case.run_timers(at);
        let mut words = rest.split_whitespace().peekable();
        let i = if multi && words.peek() != Some(&"end") {
            let name = words.next().unwrap_or("");
            case.members
                .iter()
                .position(|m| m.name == name)
                .ok_or_else(|| ctx(format!("no instance {name:?}")))?
        } else {
            0
        };
        let verb = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        let now = case.t0 + at;
        let member = &mut case.members[i];
        let who = member.name.clone();
        match verb {
            "startup" => member.vr.handle(now, Event::Startup),
            "shutdown" => member.vr.handle(now, Event::Shutdown),
            "interface-up" => member.vr.handle(now, Event::InterfaceUp),
            "interface-down" => member.vr.handle(now, Event::InterfaceDown),
            "set-priority" => {
                let p = args.first().ok_or("set-priority needs a value")?;
                let p = p.parse().map_err(|e| ctx(format!("priority {p}: {e}")))?;
                member.vr.handle(now, Event::SetPriority(p));
            }
            "track" => {
                let (status, changed) = observe(member, &args).map_err(ctx)?;
                if changed {
                    let line = format!("tracking prio={} fault={}", status.priority, status.fault);
                    case.emit(at, &who, &line);
                }
                case.members[i].vr.handle(now, Event::Tracking(status));
            }
            "reconfigure" => {
                let line = reconfigure(member, now, &args).map_err(ctx)?;
                case.emit(at, &who, &line);
            }
            "advert" | "packet" => {
                let (src, dst, ttl, bytes) = build_packet(verb, &args, &member.cfg).map_err(ctx)?;
                member.vr.handle(
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
                let line = snapshot(&member.vr, case.t0);
                case.emit(at, &who, &line);
            }
            "end" => {}
            other => return Err(ctx(format!("unknown event {other:?}"))),
        }
        case.after(at, i);
    }
    Ok(case.out)
}

/// `track NAME up|down|ok|fail|VALUE`: an interface link, a script's raw result, a
/// file's value, a process count. Returns the new status and whether it changed (the
/// runner writes a `tracking` line then); the status is fed to the instance either way.
fn observe(member: &mut Member, args: &[&str]) -> Res<(TrackingStatus, bool)> {
    let trackers = member
        .tracking
        .as_mut()
        .ok_or("the instance tracks nothing")?;
    let (name, value) = match args {
        [name, value] => (*name, *value),
        _ => return Err("track NAME VALUE".into()),
    };
    let &(_, id, kind) = trackers
        .by_name
        .iter()
        .find(|(n, _, _)| n == name)
        .ok_or_else(|| format!("no tracker {name:?}"))?;
    match kind {
        TrackerKind::Interface => {
            trackers.tracking.set_up(id, parse_up(value)?);
        }
        TrackerKind::Script => {
            let success = match value {
                "ok" => true,
                "fail" => false,
                _ => return Err(format!("script result {value:?} is not ok/fail")),
            };
            let counter = trackers
                .scripts
                .iter_mut()
                .find(|(i, _)| *i == id)
                .map(|(_, c)| c)
                .ok_or("script counter missing")?;
            if let Some(ok) = counter.record(success) {
                trackers.tracking.set_up(id, ok);
            }
        }
        TrackerKind::File => {
            let v = value.parse().map_err(|e| format!("file value: {e}"))?;
            trackers.tracking.set_value(id, v);
        }
        TrackerKind::Process => {
            let running = value.parse().map_err(|e| format!("process count: {e}"))?;
            let quorum = trackers
                .quorums
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, q)| *q)
                .unwrap_or_default();
            trackers.tracking.set_up(id, quorum.is_met(running));
        }
    }
    let status = trackers.tracking.status();
    let changed = status != trackers.last;
    trackers.last = status;
    Ok((status, changed))
}

fn parse_up(s: &str) -> Res<bool> {
    match s {
        "up" => Ok(true),
        "down" => Ok(false),
        _ => Err(format!("{s:?} is not up/down")),
    }
}

/// `reconfigure same` or `reconfigure KEY VALUE` (a config line; `vips A,B` replaces the
/// address list, `unicast_peers A,B` the peers). Writes what happened.
fn reconfigure(member: &mut Member, now: Instant, args: &[&str]) -> Res<String> {
    let mut new = member.cfg.clone();
    match args {
        ["same"] => {}
        ["vips", list] => {
            new.virtual_addresses = list.split(',').map(parse_ip).collect::<Res<_>>()?;
        }
        ["unicast_peers", list] => {
            new.unicast_peers = Some(
                list.split(',')
                    .map(|a| parse_ip(a).map(Peer::new))
                    .collect::<Res<_>>()?,
            );
        }
        [key, value @ ..] => {
            let line = format!("{key} {}", value.join(" "));
            let mut trackers = None;
            apply_key(&mut new, &mut trackers, 0, key, &value.join(" "))
                .map_err(|e| format!("{line}: {e}"))?;
        }
        [] => return Err("reconfigure needs a change".into()),
    }
    Ok(match member.vr.reconfigure(now, new.clone()) {
        Ok(done) => {
            member.cfg = new;
            if let Some(t) = &mut member.tracking {
                t.tracking.set_base(member.cfg.priority);
            }
            let changed: Vec<String> = done.changed.iter().map(|f| format!("{f:?}")).collect();
            let list = |v: &[IpAddr]| {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let mut line = format!(
                "reconfigured changed={}",
                if changed.is_empty() {
                    "none".to_string()
                } else {
                    changed.join(",")
                }
            );
            if !done.add_vips.is_empty() {
                let _ = write!(line, " add={}", list(&done.add_vips));
            }
            if !done.remove_vips.is_empty() {
                let _ = write!(line, " remove={}", list(&done.remove_vips));
            }
            if let Some(a) = done.accept_mode {
                let _ = write!(line, " accept={a}");
            }
            line
        }
        Err(ReconfigureError::RestartNeeded(reasons)) => {
            let r: Vec<String> = reasons.iter().map(|r| format!("{r:?}")).collect();
            format!("restart-needed {}", r.join(","))
        }
        Err(ReconfigureError::Invalid(e)) => format!("invalid {e}"),
    })
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

/// Splits a config into instance sections (`[NAME]` headers; one unnamed section when
/// there are none) and the optional `sync_group A B ...` line before them.
/// Instance sections (name, text) and the sync group's member names.
type Sections = (Vec<(String, String)>, Option<Vec<String>>);

fn split_sections(text: &str) -> Res<Sections> {
    let mut sections: Vec<(String, String)> = vec![(String::new(), String::new())];
    let mut group = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_string(), String::new()));
            continue;
        }
        if sections.len() > 1 || !trimmed.starts_with("sync_group") {
            if let Some(last) = sections.last_mut() {
                last.1.push_str(line);
                last.1.push('\n');
            }
            continue;
        }
        group = Some(
            trimmed
                .split_whitespace()
                .skip(1)
                .map(String::from)
                .collect(),
        );
    }
    if sections.len() > 1 {
        let head = &sections[0].1;
        if significant_lines(head).next().is_some() {
            return Err("only comments and sync_group may precede the first [NAME]".into());
        }
        sections.remove(0);
    } else if group.is_some() {
        return Err("sync_group needs [NAME] sections".into());
    }
    Ok((sections, group))
}

fn parse_config(text: &str) -> Res<(InstanceConfig, Option<Trackers>)> {
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
    let mut trackers: Option<Trackers> = None;
    for &(n, k, v) in &kv {
        apply_key(&mut c, &mut trackers, n, k, v)?;
    }
    if let Some(t) = &mut trackers {
        t.tracking.set_base(c.priority);
        t.last = t.tracking.status();
    }
    Ok((c, trackers))
}

/// One `key value` line of a config (or of `reconfigure`).
fn apply_key(
    c: &mut InstanceConfig,
    trackers: &mut Option<Trackers>,
    n: usize,
    k: &str,
    v: &str,
) -> Res<()> {
    let ctx = |e: String| format!("config line {n} ({k}): {e}");
    match k {
        "vrid" | "version" | "primary" | "vip" if n > 0 => {}
        "vrid" => c.vrid = v.parse().map_err(|e| ctx(format!("{e}")))?,
        "version" => {
            c.version = match v {
                "2" => Version::V2,
                "3" => Version::V3,
                _ => return Err(ctx(format!("version {v}"))),
            }
        }
        "primary" => c.primary_address = parse_ip(v).map_err(ctx)?,
        "priority" => c.priority = v.parse().map_err(|e| ctx(format!("{e}")))?,
        "advert_int" => c.advert_interval = parse_interval(v).map_err(ctx)?,
        "preempt" => c.preempt = parse_bool(v).map_err(ctx)?,
        "preempt_delay" => c.preempt_delay = parse_duration(v).map_err(ctx)?,
        "accept_mode" => c.accept_mode = parse_bool(v).map_err(ctx)?,
        "auth_pass" => {
            c.auth = Auth::simple_text(v.as_bytes()).ok_or_else(|| ctx("bad password".into()))?
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
        "track_interface" | "track_script" | "track_file" | "track_process" => {
            add_tracker(trackers, k, v).map_err(ctx)?
        }
        _ => return Err(ctx("unknown key".into())),
    }
    Ok(())
}

/// `track_KIND NAME weight W [reverse] [rise R] [fall F] [init_fail] [quorum N]
/// [quorum_max N]`.
fn add_tracker(trackers: &mut Option<Trackers>, key: &str, v: &str) -> Res<()> {
    let kind = match key {
        "track_interface" => TrackerKind::Interface,
        "track_script" => TrackerKind::Script,
        "track_file" => TrackerKind::File,
        _ => TrackerKind::Process,
    };
    let mut words = v.split_whitespace();
    let name = words.next().ok_or("a tracker needs a name")?.to_string();
    let (mut weight, mut reverse, mut rise, mut fall, mut init_fail) = (0i64, false, 1, 1, false);
    let mut quorum = ProcessQuorum::default();
    while let Some(w) = words.next() {
        let mut num = || -> Res<i64> {
            let v = words.next().ok_or(format!("{w} needs a value"))?;
            v.parse().map_err(|e| format!("{w} {v}: {e}"))
        };
        match w {
            "weight" => weight = num()?,
            "rise" => rise = u32::try_from(num()?).map_err(|e| e.to_string())?,
            "fall" => fall = u32::try_from(num()?).map_err(|e| e.to_string())?,
            "quorum" => quorum.min = u32::try_from(num()?).map_err(|e| e.to_string())?,
            "quorum_max" => quorum.max = u32::try_from(num()?).map_err(|e| e.to_string())?,
            "reverse" => reverse = true,
            "init_fail" => init_fail = true,
            _ => return Err(format!("unknown tracker option {w}")),
        }
    }
    let t = trackers.get_or_insert_with(|| Trackers {
        tracking: Tracking::new(100),
        by_name: Vec::new(),
        scripts: Vec::new(),
        quorums: Vec::new(),
        last: TrackingStatus {
            priority: 100,
            fault: false,
        },
    });
    let weight = Weight::new(kind, weight, reverse).map_err(|e| e.to_string())?;
    let id = t.tracking.add(kind, weight);
    match kind {
        TrackerKind::Script => {
            let counter = ScriptCounter::new(rise, fall, init_fail).map_err(|e| e.to_string())?;
            if let Some(ok) = counter.status() {
                t.tracking.set_up(id, ok);
            }
            t.scripts.push((id, counter));
        }
        // Interfaces and processes are observed at start-up: up and running unless the
        // events say otherwise; files read 0.
        TrackerKind::Interface => {
            t.tracking.set_up(id, true);
        }
        TrackerKind::Process => {
            t.tracking.set_up(id, quorum.is_met(1));
            t.quorums.push((id, quorum));
        }
        TrackerKind::File => {
            t.tracking.set_value(id, 0);
        }
    }
    t.by_name.push((name, id, kind));
    Ok(())
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
