//! systemd integration for `Type=notify`: READY=1, STATUS=, RELOADING=1, STOPPING=1 and
//! WATCHDOG=1 (sd_notify(3)); messages are formatted by the `sd-notify` crate.
//!
//! The notification socket is taken from the environment once, at start, and connected before
//! the daemon drops privileges; the variables are then removed so that scripts and the launcher
//! never see them. A connected datagram socket keeps working whatever the socket file's
//! permissions, so a `NOTIFY_SOCKET` only root may write to still works after the switch.
//! Without `NOTIFY_SOCKET` every call is a no-op.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use sd_notify::NotifyState;

pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// The daemon's line to its service manager.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<UnixDatagram>,
    watchdog: Option<Duration>,
    last_status: String,
}

impl Notifier {
    /// Reads and removes `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    ///
    /// # Safety
    /// Changes the process environment: call while the process has a single thread.
    pub unsafe fn from_env() -> io::Result<Notifier> {
        let watchdog = sd_notify::watchdog_enabled().filter(|d| !d.is_zero());
        let path = std::env::var_os(NOTIFY_SOCKET);
        // SAFETY: the caller guarantees a single thread.
        unsafe {
            std::env::remove_var(NOTIFY_SOCKET);
            std::env::remove_var(WATCHDOG_USEC);
            std::env::remove_var(WATCHDOG_PID);
        }
        let socket = match path {
            None => None,
            Some(p) => Some(connect(&p).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("NOTIFY_SOCKET {}: {e}", p.to_string_lossy()),
                )
            })?),
        };
        Ok(Notifier {
            socket,
            watchdog,
            last_status: String::new(),
        })
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send WATCHDOG=1: half the manager's timeout, as sd_watchdog_enabled(3)
    /// recommends. None when the watchdog is off.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        self.watchdog.map(|d| d / 2)
    }

    fn send(&self, states: &[NotifyState]) {
        let Some(sock) = &self.socket else {
            return;
        };
        let mut msg = String::new();
        for s in states {
            msg.push_str(&s.to_string());
            msg.push('\n');
        }
        if let Err(e) = sock.send(msg.as_bytes()) {
            tracing::warn!("sd_notify: {e}");
        }
    }

    /// Configuration applied, instances running.
    pub fn ready(&mut self, status: &str) {
        self.last_status = status.to_string();
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A one-line summary; sent only when it changed.
    pub fn status(&mut self, status: &str) {
        if status != self.last_status {
            self.last_status = status.to_string();
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// Re-reading the configuration (SIGHUP); follow with [`Notifier::ready`].
    pub fn reloading(&mut self) {
        // MONOTONIC_USEC lets Type=notify-reload match this message to its SIGHUP.
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading the configuration"),
            ]),
            Err(_) => self.send(&[
                NotifyState::Reloading,
                NotifyState::Status("reloading the configuration"),
            ]),
        }
        self.last_status.clear();
    }

    pub fn stopping(&mut self, status: &str) {
        self.last_status = status.to_string();
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// The event loop is alive.
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

fn connect(path: &std::ffi::OsStr) -> io::Result<UnixDatagram> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_bytes();
    let sock = UnixDatagram::unbound()?;
    match bytes.first() {
        Some(b'@') => {
            let addr = SocketAddr::from_abstract_name(&bytes[1..])?;
            sock.connect_addr(&addr)?;
        }
        Some(b'/') => sock.connect(path)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither an absolute path nor an abstract (@) name",
            ));
        }
    }
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Notifier, UnixDatagram, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = Notifier {
            socket: Some(connect(path.as_os_str()).expect("connect")),
            watchdog: Some(Duration::from_secs(10)),
            last_status: String::new(),
        };
        (n, server, dir)
    }

    fn recv(s: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).expect("datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_a_real_socket() {
        let (mut n, server, _dir) = pair();
        n.ready("2 instances: 1 master, 1 backup");
        assert_eq!(
            recv(&server),
            "READY=1\nSTATUS=2 instances: 1 master, 1 backup\n"
        );
        n.status("2 instances: 1 master, 1 backup");
        n.status("2 instances: 2 backup");
        assert_eq!(recv(&server), "STATUS=2 instances: 2 backup\n");
        n.reloading();
        let m = recv(&server);
        assert!(m.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{m}");
        n.watchdog();
        assert_eq!(recv(&server), "WATCHDOG=1\n");
        n.stopping("stopping");
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=stopping\n");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn abstract_and_relative_names() {
        use std::os::linux::net::SocketAddrExt;
        assert!(connect(std::ffi::OsStr::new("relative/path")).is_err());
        let name = format!("keeper-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let server = UnixDatagram::bind_addr(&addr).expect("bind");
        let c = connect(std::ffi::OsStr::new(&format!("@{name}"))).expect("connect");
        c.send(b"READY=1\n").expect("send");
        assert_eq!(recv(&server), "READY=1\n");
    }

    #[test]
    fn without_a_manager_nothing_happens() {
        let mut n = Notifier::default();
        assert!(!n.enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.ready("x");
        n.watchdog();
    }
}
