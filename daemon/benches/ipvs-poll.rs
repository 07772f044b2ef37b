//! Times how long the kernel's IPVS table takes to reach a state after an event: starts a
//! command (a daemon's cold start) or sends a signal (a reload), then reads /proc/net/ip_vs
//! until it has enough lines or contains a line, and prints the elapsed milliseconds.
//! Standalone (std only), built by daemon/benches/ipvs.sh with `rustc -O`; runs in the VM.
//!
//! `--dest` asks the kernel instead (generic netlink, IPVS_CMD_GET_DEST: a dump of one
//! service's destinations) until real server RIP has weight W: a read costs microseconds, where
//! reading an 11,000-line /proc/net/ip_vs costs ~50 ms in UML, which delayed seeing the change
//! by up to two reads and took half of the VM's one CPU from the daemon measured.
//!
//! usage: ipvs-poll (--lines N | --contains TEXT | --dest VIP PORT RIP W) [--timeout-ms T]
//!                  (--signal PID SIG | -- CMD...)      (--dest: IPv4, TCP)
//! The started command keeps running after ipvs-poll exits (its pid is printed on stderr).

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
    fn send(fd: i32, buf: *const u8, len: usize, flags: i32) -> isize;
    fn recv(fd: i32, buf: *mut u8, len: usize, flags: i32) -> isize;
}

enum Until {
    Lines(usize),
    Contains(String),
    /// Service (TCP, IPv4 address, port), real server address, weight.
    Dest(Nl, [u8; 4], u16, [u8; 4], u32),
}

fn reached(until: &Until, buf: &mut Vec<u8>) -> bool {
    if let Until::Dest(nl, vip, port, rip, weight) = until {
        return nl.dest_weight(*vip, *port, *rip) == Some(*weight);
    }
    let Some(text) = read_proc_ip_vs(buf) else {
        return false;
    };
    match until {
        Until::Lines(n) => text.lines().count() >= *n,
        Until::Contains(s) => text.contains(s.as_str()),
        Until::Dest(..) => false,
    }
}

/// The buffer /proc/net/ip_vs is read into: 4 MiB, filled before the clock starts. In a VM every
/// page touched for the first time costs a round trip to the host (~40 us in UML): touched at
/// the first poll, these 1,024 pages took ~40 ms of CPU from the daemon being measured, at its
/// start.
const PROC_BUF: usize = 4 << 20;

/// /proc/net/ip_vs in as few read(2) calls as possible: the kernel finds the position of each
/// read by walking the table from its start, so `read_to_string`'s growing reads (8 KiB, 16 KiB,
/// ...) walked an 11,000-line table a dozen times per poll. `buf` is reused: `main` sizes it to
/// [`PROC_BUF`] before the clock starts; it grows only for a larger table.
fn read_proc_ip_vs(buf: &mut Vec<u8>) -> Option<&str> {
    use std::io::Read;
    let mut f = std::fs::File::open("/proc/net/ip_vs").ok()?;
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((buf.len() * 2).max(PROC_BUF), 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// A generic netlink socket with the IPVS family resolved.
struct Nl {
    fd: i32,
    family: u16,
}

const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

fn attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The attributes in `buf`: (type without flags, payload).
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((ty, &buf[4..len]));
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    out
}

impl Nl {
    fn open() -> Option<Nl> {
        // SAFETY: socket(2) with plain integers (AF_NETLINK, SOCK_RAW, NETLINK_GENERIC).
        let fd = unsafe { socket(16, 3, 16) };
        if fd < 0 {
            return None;
        }
        let mut nl = Nl { fd, family: 0x10 };
        let mut a = Vec::new();
        attr(&mut a, 2, b"IPVS\0"); // CTRL_ATTR_FAMILY_NAME
        let replies = nl.request(3, 1, 0, &a)?; // CTRL_CMD_GETFAMILY
        let family = replies.iter().find_map(|m| {
            attrs(m).into_iter().find(|(t, _)| *t == 1).and_then(|(_, v)| {
                (v.len() >= 2).then(|| u16::from_ne_bytes([v[0], v[1]]))
            })
        })?;
        nl.family = family;
        Some(nl)
    }

    /// Sends one request and returns the attribute payloads of each reply (after the
    /// generic netlink header), up to the end of a dump or the ACK.
    fn request(&self, cmd: u8, version: u8, flags: u16, payload: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + 4 + payload.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&self.family.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&[cmd, version, 0, 0]);
        msg.extend_from_slice(payload);
        // SAFETY: the buffer is valid for its length.
        if unsafe { send(self.fd, msg.as_ptr(), msg.len(), 0) } < 0 {
            return None;
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: the buffer is valid for its length.
            let n = unsafe { recv(self.fd, buf.as_mut_ptr(), buf.len(), 0) };
            if n <= 0 {
                return None;
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let ty = u16::from_ne_bytes([rest[4], rest[5]]);
                if len < 16 || len > rest.len() {
                    return None;
                }
                match ty {
                    NLMSG_DONE => return Some(out),
                    NLMSG_ERROR => {
                        let code = rest.get(16..20).map(|e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]));
                        return (code == Some(0)).then_some(out);
                    }
                    _ if len >= 20 => out.push(rest[20..len].to_vec()),
                    _ => {}
                }
                if flags & NLM_F_DUMP == 0 {
                    return Some(out);
                }
                rest = &rest[((len + 3) & !3).min(rest.len())..];
            }
        }
    }

    /// The weight of destination `rip` in the TCP service `vip:port`, if it is there.
    fn dest_weight(&self, vip: [u8; 4], port: u16, rip: [u8; 4]) -> Option<u32> {
        let mut svc = Vec::new();
        attr(&mut svc, 1, &2u16.to_ne_bytes()); // AF_INET
        attr(&mut svc, 2, &6u16.to_ne_bytes()); // IPPROTO_TCP
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&vip);
        attr(&mut svc, 3, &addr);
        attr(&mut svc, 4, &port.to_be_bytes());
        let mut req = Vec::new();
        attr(&mut req, 1 | 0x8000, &svc); // IPVS_CMD_ATTR_SERVICE, nested
        let replies = self.request(8, 1, NLM_F_DUMP, &req)?; // IPVS_CMD_GET_DEST
        replies.iter().find_map(|m| {
            let dest = attrs(m).into_iter().find(|(t, _)| *t == 2)?.1; // IPVS_CMD_ATTR_DEST
            let d = attrs(dest);
            let a = d.iter().find(|(t, _)| *t == 1)?.1;
            let w = d.iter().find(|(t, _)| *t == 4)?.1;
            (a.get(..4) == Some(&rip[..]) && w.len() == 4)
                .then(|| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
        })
    }
}

fn ipv4(s: &str) -> Option<[u8; 4]> {
    s.parse::<std::net::Ipv4Addr>().ok().map(|a| a.octets())
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: ipvs-poll (--lines N | --contains TEXT | --dest VIP PORT RIP W) [--timeout-ms T] (--signal PID SIG | -- CMD...)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut until = None;
    let mut timeout = Duration::from_secs(300);
    let mut signal: Option<(i32, i32)> = None;
    let mut cmd: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let next = |k: usize| args.get(i + k).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--lines" => {
                until = next(1).parse().ok().map(Until::Lines);
                i += 2;
            }
            "--contains" => {
                until = Some(Until::Contains(next(1)));
                i += 2;
            }
            "--dest" => {
                let Some(nl) = Nl::open() else {
                    eprintln!("ipvs-poll: cannot open generic netlink with the IPVS family");
                    return ExitCode::FAILURE;
                };
                until = match (ipv4(&next(1)), next(2).parse(), ipv4(&next(3)), next(4).parse()) {
                    (Some(v), Ok(p), Some(r), Ok(w)) => Some(Until::Dest(nl, v, p, r, w)),
                    _ => return usage(),
                };
                i += 5;
            }
            "--timeout-ms" => {
                timeout = Duration::from_millis(next(1).parse().unwrap_or(300_000));
                i += 2;
            }
            "--signal" => {
                let sig = match next(2).as_str() {
                    "HUP" => 1,
                    "TERM" => 15,
                    other => other.parse().unwrap_or(0),
                };
                signal = next(1).parse().ok().map(|pid| (pid, sig));
                i += 3;
            }
            "--" => {
                cmd = args[i + 1..].to_vec();
                break;
            }
            _ => return usage(),
        }
    }
    let Some(until) = until else { return usage() };
    if signal.is_none() == cmd.is_empty() {
        return usage();
    }
    // Before the clock starts (see PROC_BUF): `resize` writes every byte (not zeros, which an
    // allocator may hand out as untouched pages), so every page is touched now.
    let mut buf = Vec::new();
    if !matches!(until, Until::Dest(..)) {
        buf.resize(PROC_BUF, 1);
    }
    let start = Instant::now();
    // Wall clock of the event, to place it among a daemon's log lines.
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        eprintln!("ipvs-poll: t0 {:.6}", t.as_secs_f64());
    }
    if let Some((pid, sig)) = signal {
        // SAFETY: kill(2) with plain integers.
        if unsafe { kill(pid, sig) } != 0 {
            eprintln!("ipvs-poll: kill {pid} {sig}: {}", std::io::Error::last_os_error());
            return ExitCode::FAILURE;
        }
    } else {
        match Command::new(&cmd[0]).args(&cmd[1..]).stdin(Stdio::null()).spawn() {
            Ok(child) => eprintln!("ipvs-poll: started pid {}", child.id()),
            Err(e) => {
                eprintln!("ipvs-poll: {}: {e}", cmd[0]);
                return ExitCode::FAILURE;
            }
        }
    }
    // Reading a large /proc/net/ip_vs costs the kernel real work: wait at least as long as the
    // last read took, so the poller takes at most half a CPU from the daemon being measured.
    let mut slowest = Duration::ZERO;
    loop {
        let read = Instant::now();
        let done = reached(&until, &mut buf);
        let took = read.elapsed();
        slowest = slowest.max(took);
        if done {
            break;
        }
        if start.elapsed() > timeout {
            eprintln!("ipvs-poll: not reached within {timeout:?}");
            return ExitCode::FAILURE;
        }
        std::thread::sleep(took.max(Duration::from_millis(1)));
    }
    println!("{:.1}", start.elapsed().as_secs_f64() * 1000.0);
    eprintln!("ipvs-poll: slowest read {:.1} ms", slowest.as_secs_f64() * 1000.0);
    ExitCode::SUCCESS
}
