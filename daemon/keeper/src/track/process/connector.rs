//! The kernel's process events connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`): one message
//! per fork, exec, rename and exit on the machine, as keepalived's `track_process` uses.
//!
//! Listening needs CAP_NET_ADMIN, the initial network namespace (the connector exists only
//! there) and, for the process ids to mean anything in `/proc`, the initial PID namespace.
//! The kernel answers the subscription with an acknowledgement carrying an error number;
//! [`Connector::open`] waits for it, so a refused or silent connector is known at once and the
//! caller falls back to scanning `/proc`.
//!
//! Messages come one per datagram: a `nlmsghdr` (16 bytes), a `cn_msg` (20 bytes), then a
//! `proc_event` (what, cpu, timestamp, then the event's data at byte 52), in host byte order.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{self, MsgFlags, NetlinkAddr, sockopt};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

const NETLINK_CONNECTOR: i32 = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_COMM: u32 = 0x200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// Byte offset of the event data in a message.
const DATA: usize = 16 + 20 + 16;
/// Receive buffer asked for: a burst of process creation overflows the default one, and an
/// overflow costs a full `/proc` scan.
const RCVBUF: usize = 1 << 20;
/// Datagrams read per wakeup at most, so that a flood of events does not hold the thread.
const BATCH: usize = 1024;

/// One process event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// The answer to a subscription: `err` 0 = listening.
    Ack {
        seq: u32,
        ack: u32,
        err: u32,
    },
    /// `child_pid != child_tgid` is a new thread, not a process.
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        pid: u32,
        tgid: u32,
    },
    Comm {
        pid: u32,
        tgid: u32,
        comm: Vec<u8>,
    },
    Exit {
        pid: u32,
        tgid: u32,
    },
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

/// Decodes one datagram; `None` for anything that is not a process event this module uses.
pub fn parse(buf: &[u8]) -> Option<ProcEvent> {
    let len = usize::try_from(u32_at(buf, 0)?).ok()?;
    if len > buf.len() {
        return None;
    }
    let buf = &buf[..len];
    let kind = u16_at(buf, 4)?;
    if kind == NLMSG_ERROR || kind == NLMSG_NOOP {
        return None;
    }
    if u32_at(buf, 16)? != CN_IDX_PROC || u32_at(buf, 20)? != CN_VAL_PROC {
        return None;
    }
    let (seq, ack) = (u32_at(buf, 24)?, u32_at(buf, 28)?);
    let what = u32_at(buf, 36)?;
    let d = |i: usize| u32_at(buf, DATA + 4 * i);
    Some(match what {
        PROC_EVENT_NONE => ProcEvent::Ack {
            seq,
            ack,
            err: d(0)?,
        },
        PROC_EVENT_FORK => ProcEvent::Fork {
            parent_tgid: d(1)?,
            child_pid: d(2)?,
            child_tgid: d(3)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec {
            pid: d(0)?,
            tgid: d(1)?,
        },
        PROC_EVENT_COMM => {
            let raw = buf.get(DATA + 8..DATA + 24)?;
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            ProcEvent::Comm {
                pid: d(0)?,
                tgid: d(1)?,
                comm: raw[..end].to_vec(),
            }
        }
        PROC_EVENT_EXIT => ProcEvent::Exit {
            pid: d(0)?,
            tgid: d(1)?,
        },
        _ => return None,
    })
}

/// A subscription message (`op` = listen or ignore) tagged `tag`.
fn control(op: u32, tag: u32) -> [u8; 40] {
    let mut m = [0u8; 40];
    m[0..4].copy_from_slice(&40u32.to_ne_bytes());
    m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
    m[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m[24..28].copy_from_slice(&tag.to_ne_bytes());
    m[28..32].copy_from_slice(&tag.to_ne_bytes());
    m[32..34].copy_from_slice(&4u16.to_ne_bytes());
    m[36..40].copy_from_slice(&op.to_ne_bytes());
    m
}

/// A listening connector socket. Dropping it unsubscribes.
pub struct Connector {
    fd: AsyncFd<OwnedFd>,
    tag: u32,
}

impl Connector {
    /// Subscribes and waits up to `wait` for the kernel's acknowledgement. Events that arrive
    /// before it are returned, to be applied after the first `/proc` scan.
    pub async fn open(wait: Duration) -> io::Result<(Connector, Vec<ProcEvent>)> {
        // SAFETY: socket(2) with constant arguments; the result is checked before use and
        // owned by the OwnedFd from here on.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, CN_IDX_PROC))?;
        if socket::setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
        }
        // Distinguishes our acknowledgement from other listeners' (the kernel multicasts it).
        let tag = std::process::id() ^ 0x6b65_6570;
        socket::send(
            fd.as_raw_fd(),
            &control(PROC_CN_MCAST_LISTEN, tag),
            MsgFlags::empty(),
        )?;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it (open, the same file
        // description) until it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        let conn = Connector { fd, tag };
        let mut early = Vec::new();
        let acked = tokio::time::timeout(wait, async {
            loop {
                let mut batch = Vec::new();
                conn.recv(&mut batch).await?;
                for ev in batch {
                    match ev {
                        // Newer kernels renumber `seq`; `ack` comes back as ours + 1.
                        ProcEvent::Ack { ack, err, .. } if ack == tag.wrapping_add(1) => {
                            return if err == 0 {
                                Ok(())
                            } else {
                                Err(io::Error::from_raw_os_error(err as i32))
                            };
                        }
                        ProcEvent::Ack { .. } => {}
                        other => early.push(other),
                    }
                }
            }
        })
        .await;
        match acked {
            Ok(Ok(())) => Ok((conn, early)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the kernel did not acknowledge the subscription (no CONFIG_PROC_EVENTS?)",
            )),
        }
    }

    /// Waits for events and appends them. Returns true when the kernel dropped events
    /// (receive buffer overflow): the caller must scan `/proc` again.
    pub async fn recv(&self, out: &mut Vec<ProcEvent>) -> io::Result<bool> {
        let mut buf = [0u8; 512];
        loop {
            let mut guard = self.fd.readable().await?;
            let mut lost = false;
            let mut got = 0;
            while got < BATCH {
                match socket::recvfrom::<NetlinkAddr>(self.fd.get_ref().as_raw_fd(), &mut buf) {
                    Ok((n, from)) => {
                        got += 1;
                        // Only the kernel (port 0) speaks for the connector.
                        if from.is_some_and(|a| a.pid() == 0)
                            && let Some(ev) = parse(&buf[..n])
                        {
                            out.push(ev);
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(nix::errno::Errno::ENOBUFS) => lost = true,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if got > 0 || lost {
                return Ok(lost);
            }
        }
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        // The kernel counts listeners and keeps producing events while the count is above
        // zero: give our subscription back.
        let _ = socket::send(
            self.fd.get_ref().as_raw_fd(),
            &control(PROC_CN_MCAST_IGNORE, self.tag),
            MsgFlags::empty(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, data: &[u32], comm: Option<&[u8]>) -> Vec<u8> {
        let mut m = vec![0u8; DATA];
        m[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
        m[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
        m[24..28].copy_from_slice(&7u32.to_ne_bytes());
        m[28..32].copy_from_slice(&8u32.to_ne_bytes());
        m[36..40].copy_from_slice(&what.to_ne_bytes());
        for v in data {
            m.extend_from_slice(&v.to_ne_bytes());
        }
        if let Some(c) = comm {
            let mut raw = [0u8; 16];
            raw[..c.len()].copy_from_slice(c);
            m.extend_from_slice(&raw);
        }
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn decodes_the_events_used() {
        assert_eq!(
            parse(&message(PROC_EVENT_FORK, &[10, 10, 11, 11], None)),
            Some(ProcEvent::Fork {
                parent_tgid: 10,
                child_pid: 11,
                child_tgid: 11
            })
        );
        assert_eq!(
            parse(&message(PROC_EVENT_EXEC, &[5, 5], None)),
            Some(ProcEvent::Exec { pid: 5, tgid: 5 })
        );
        assert_eq!(
            parse(&message(PROC_EVENT_COMM, &[6, 6], Some(b"worker"))),
            Some(ProcEvent::Comm {
                pid: 6,
                tgid: 6,
                comm: b"worker".to_vec()
            })
        );
        assert_eq!(
            parse(&message(PROC_EVENT_EXIT, &[9, 9, 0, 17, 1, 1], None)),
            Some(ProcEvent::Exit { pid: 9, tgid: 9 })
        );
        assert_eq!(
            parse(&message(PROC_EVENT_NONE, &[1], None)),
            Some(ProcEvent::Ack {
                seq: 7,
                ack: 8,
                err: 1
            })
        );
        assert_eq!(
            parse(&message(0x4, &[1, 1, 0, 0], None)),
            None,
            "uid change"
        );
        let mut short = message(PROC_EVENT_FORK, &[10, 10], None);
        assert_eq!(parse(&short), None, "truncated");
        short[0..4].copy_from_slice(&999u32.to_ne_bytes());
        assert_eq!(parse(&short), None, "length beyond the datagram");
        let mut other = message(PROC_EVENT_EXEC, &[5, 5], None);
        other[16..20].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(parse(&other), None, "another connector");
    }

    #[test]
    fn control_message_layout() {
        let m = control(PROC_CN_MCAST_LISTEN, 0x1234);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u16_at(&m, 4), Some(NLMSG_DONE));
        assert_eq!(u32_at(&m, 24), Some(0x1234));
        assert_eq!(u16_at(&m, 32), Some(4));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
    }
}
