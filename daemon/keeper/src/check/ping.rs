//! `ping_check`: an ICMP (IPv4) or ICMPv6 echo request; the attempt passes when the matching
//! echo reply arrives within `connect_timeout`, and fails at once on a destination-unreachable
//! quoting it (keepalived's `check_ping.c`: a reply of another type, or none, fails).
//!
//! How the echoes travel. keepalived opens one unprivileged "ping socket" (`SOCK_DGRAM`,
//! `IPPROTO_ICMP`) per checker and, to be allowed to, rewrites the host's
//! `net.ipv4.ping_group_range` to admit every group. keeperd does not change that system-wide
//! policy: it keeps `CAP_NET_RAW` anyway (VRRP needs it), so it uses **one raw ICMP socket per
//! address family** (and per `bindto` address) for every ping check:
//! - the kernel filters what reaches it (`ICMP_FILTER` / `ICMP6_FILTER`: echo replies and
//!   destination-unreachables only), and a reader task hands each reply to the attempt waiting
//!   for it, by source address, identifier (random per socket) and sequence number;
//! - 10,000 ping checks cost two file descriptors and one reader, not 10,000 sockets.
//!
//! Without `CAP_NET_RAW` (keeperd run unprivileged) it falls back to a ping socket per attempt,
//! which works when keeperd's group is inside `ping_group_range`; the error says which.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use super::icmp::{self, Echo};
use super::plan::Ping;

/// Receive buffer of a shared raw socket: a second of replies of 10,000 checks fits.
const RCVBUF: usize = 4 << 20;
/// Largest message read (an unreachable quotes a header and 8 octets; replies are 136).
const READ_BUF: usize = 2048;

type Waiters = Mutex<HashMap<(IpAddr, u16), oneshot::Sender<Result<(), String>>>>;
/// A shared socket per address family (`true`: IPv6) and `bindto` address.
type Channels = Mutex<HashMap<(bool, Option<IpAddr>), Arc<Channel>>>;

/// One raw socket and the attempts waiting for its replies.
struct Channel {
    fd: Arc<AsyncFd<Socket>>,
    v6: bool,
    ident: u16,
    seq: AtomicU16,
    waiters: Arc<Waiters>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Every ping check's sockets. Cheap to share; dropping it stops the readers.
#[derive(Default)]
pub struct Pinger {
    channels: Channels,
    /// Raw sockets were refused (no `CAP_NET_RAW`): ping sockets from now on.
    raw_denied: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn setsockopt_bytes(
    s: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    // SAFETY: setsockopt on a socket we own; the value is a plain byte buffer of its length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `ICMP_FILTER` (SOL_RAW): set bits are the ICMP types the socket does not receive.
const SOL_RAW: libc::c_int = 255;
const ICMP_FILTER: libc::c_int = 1;
/// `ICMP6_FILTER` (IPPROTO_ICMPV6): a 256-bit map, set bits blocked.
const ICMP6_FILTER: libc::c_int = 1;

fn install_filter(s: &Socket, v6: bool) -> io::Result<()> {
    if v6 {
        let mut blocked = [u32::MAX; 8];
        for t in [icmp::ICMP6_ECHO_REPLY, icmp::ICMP6_DEST_UNREACH] {
            blocked[usize::from(t >> 5)] &= !(1u32 << (t & 31));
        }
        let bytes: Vec<u8> = blocked.iter().flat_map(|w| w.to_ne_bytes()).collect();
        setsockopt_bytes(s, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &bytes)
    } else {
        let pass = (1u32 << icmp::ICMP_ECHO_REPLY) | (1u32 << icmp::ICMP_DEST_UNREACH);
        setsockopt_bytes(s, SOL_RAW, ICMP_FILTER, &(!pass).to_ne_bytes())
    }
}

fn set_rcvbuf(s: &Socket) {
    let size = libc::c_int::try_from(RCVBUF).unwrap_or(libc::c_int::MAX);
    // SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN (keeperd has it); else the
    // ordinary option, capped by the sysctl.
    if setsockopt_bytes(
        s,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &size.to_ne_bytes(),
    )
    .is_err()
    {
        let _ = s.set_recv_buffer_size(RCVBUF);
    }
}

fn family(v6: bool) -> (Domain, Protocol) {
    if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    }
}

fn random_u16() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::Instant::now()) >> 32) as u16
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

/// Reads the shared socket and hands replies to their attempts until aborted.
async fn reader(fd: Arc<AsyncFd<Socket>>, v6: bool, ident: u16, waiters: Arc<Waiters>) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let got = fd
            .async_io(Interest::READABLE, |s| {
                // SAFETY of the cast: recv_from only writes initialised bytes into the slice.
                let uninit = unsafe {
                    std::slice::from_raw_parts_mut(
                        buf.as_mut_ptr().cast::<std::mem::MaybeUninit<u8>>(),
                        buf.len(),
                    )
                };
                s.recv_from(uninit)
            })
            .await;
        let (n, from) = match got {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("ping_check: reading the ICMP socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(from) = from.as_socket().map(|a| a.ip()) else {
            continue;
        };
        let packet = &buf[..n];
        let echo = if v6 {
            icmp::parse_v6(packet, from)
        } else {
            icmp::parse_v4(packet, from, true)
        };
        let (key, result) = match echo {
            Some(Echo::Reply {
                from,
                ident: i,
                seq,
            }) if i == ident => ((from, seq), Ok(())),
            Some(Echo::Unreachable {
                to,
                ident: i,
                seq,
                code,
            }) if i == ident => (
                (to, seq),
                Err(format!(
                    "{} from {from} ({})",
                    icmp::unreachable_text(v6, code),
                    if v6 { "ICMPv6" } else { "ICMP" }
                )),
            ),
            _ => continue,
        };
        if let Some(tx) = lock(&waiters).remove(&key) {
            let _ = tx.send(result);
        }
    }
}

/// Removes an attempt's waiter when the attempt ends any way (timeout, cancellation).
struct Waiting<'a> {
    waiters: &'a Waiters,
    key: (IpAddr, u16),
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.waiters).remove(&self.key);
    }
}

impl Pinger {
    fn channel(&self, v6: bool, bind: Option<IpAddr>) -> io::Result<Arc<Channel>> {
        let mut map = lock(&self.channels);
        if let Some(c) = map.get(&(v6, bind)) {
            return Ok(c.clone());
        }
        let (domain, proto) = family(v6);
        let s = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(proto))?;
        install_filter(&s, v6)?;
        set_rcvbuf(&s);
        if let Some(ip) = bind {
            s.bind(&SocketAddr::new(ip, 0).into())?;
        }
        // SAFETY: `Socket` owns its descriptor, which stays open and the same until it drops.
        let fd = Arc::new(unsafe { AsyncFd::register(s) }.map_err(io::Error::from)?);
        let waiters = Arc::new(Waiters::default());
        let ident = random_u16();
        let reader = tokio::spawn(reader(fd.clone(), v6, ident, waiters.clone()));
        let c = Arc::new(Channel {
            fd,
            v6,
            ident,
            seq: AtomicU16::new(random_u16()),
            waiters,
            reader,
        });
        map.insert((v6, bind), c.clone());
        Ok(c)
    }

    /// One attempt.
    pub async fn check(&self, p: &Ping) -> Result<(), String> {
        let v6 = p.target.is_ipv6();
        if !self.raw_denied.load(Ordering::Relaxed) {
            match self.channel(v6, p.bind) {
                Ok(c) => return raw_attempt(&c, p).await,
                Err(e) if is_permission(&e) => {
                    if !self.raw_denied.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "ping_check: no raw ICMP socket ({e}: keeperd lacks CAP_NET_RAW); using ping sockets, which need keeperd's group in net.ipv4.ping_group_range"
                        );
                    }
                }
                Err(e) => return Err(with_bind(format!("raw ICMP socket: {e}"), p.bind)),
            }
        }
        ping_socket_attempt(p).await
    }
}

fn with_bind(e: String, bind: Option<IpAddr>) -> String {
    match bind {
        Some(b) => format!("{e} (bindto {b})"),
        None => e,
    }
}

fn no_reply(p: &Ping) -> String {
    format!(
        "no echo reply from {} within connect_timeout {:?}",
        p.target, p.timeout
    )
}

async fn raw_attempt(c: &Channel, p: &Ping) -> Result<(), String> {
    let seq = c.seq.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    let key = (p.target, seq);
    lock(&c.waiters).insert(key, tx);
    let _waiting = Waiting {
        waiters: &c.waiters,
        key,
    };
    let msg = icmp::echo_request(c.v6, c.ident, seq);
    let to: SockAddr = SocketAddr::new(p.target, 0).into();
    let exchange = async {
        c.fd.async_io(Interest::WRITABLE, |s| s.send_to(&msg, &to))
            .await
            .map_err(|e| with_bind(format!("send echo to {}: {e}", p.target), p.bind))?;
        match rx.await {
            Ok(r) => r.map_err(|e| format!("echo to {}: {e}", p.target)),
            Err(_) => Err("ping_check: the ICMP reader stopped".to_string()),
        }
    };
    match tokio::time::timeout(p.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(no_reply(p)),
    }
}

/// keepalived's way: an unprivileged ping socket; the kernel picks the identifier and hands it
/// only the replies to it.
async fn ping_socket_attempt(p: &Ping) -> Result<(), String> {
    let v6 = p.target.is_ipv6();
    let (domain, proto) = family(v6);
    let target = SocketAddr::new(p.target, 0);
    let open = || -> io::Result<AsyncFd<Socket>> {
        let s = Socket::new(domain, Type::DGRAM.nonblocking().cloexec(), Some(proto))?;
        super::udp::set_recverr(&s, v6)?;
        if let Some(ip) = p.bind {
            s.bind(&SocketAddr::new(ip, 0).into())?;
        }
        s.connect(&target.into())?;
        // SAFETY: `Socket` owns its descriptor, which stays open and the same until it drops.
        unsafe { AsyncFd::register(s) }.map_err(io::Error::from)
    };
    let fd = open().map_err(|e| {
        if is_permission(&e) {
            format!(
                "ping socket: {e} (keeperd needs CAP_NET_RAW, or its group in net.ipv4.ping_group_range)"
            )
        } else {
            with_bind(format!("ping socket to {}: {e}", p.target), p.bind)
        }
    })?;
    let seq = random_u16();
    let msg = icmp::echo_request(v6, 0, seq);
    let exchange = async {
        fd.async_io(Interest::WRITABLE, |s| s.send(&msg))
            .await
            .map_err(|e| format!("send echo to {}: {e}", p.target))?;
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let n = fd
                .async_io(Interest::READABLE, |s| {
                    // SAFETY of the cast: recv only writes initialised bytes into the slice.
                    let uninit = unsafe {
                        std::slice::from_raw_parts_mut(
                            buf.as_mut_ptr().cast::<std::mem::MaybeUninit<u8>>(),
                            buf.len(),
                        )
                    };
                    s.recv(uninit)
                })
                .await
                .map_err(|e| format!("echo to {}: {e}", p.target))?;
            let echo = if v6 {
                icmp::parse_v6(&buf[..n], p.target)
            } else {
                icmp::parse_v4(&buf[..n], p.target, false)
            };
            if let Some(Echo::Reply { seq: s, .. }) = echo
                && s == seq
            {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(p.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(no_reply(p)),
    }
}
