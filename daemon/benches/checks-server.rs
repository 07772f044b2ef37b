//! The real servers of the checker benchmark (daemon/benches/checks.sh): one TCP listener on
//! 0.0.0.0:PORT that answers every connection as a minimal HTTP/1.0 server. With a local route
//! for the real servers' prefix (`ip route add local 10.100.0.0/16 dev lo`), every address of
//! the 10,000 real servers is a real endpoint of this one socket. A TCP check connects and closes
//! (the read returns 0, nothing is written); an HTTP check gets `200 OK` with a short body.
//! Standalone (std only), built with `rustc -O`; runs in the VM. A few threads share the
//! listener: each connection costs microseconds, and a read timeout bounds a silent client.
//!
//! usage: checks-server PORT [THREADS]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

unsafe extern "C" {
    fn listen(fd: i32, backlog: i32) -> i32;
}

const RESPONSE: &[u8] =
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

fn serve(mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 2048];
    let mut have = 0;
    loop {
        match c.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        if buf[..have].windows(4).any(|w| w == b"\r\n\r\n") || have == buf.len() {
            let _ = c.write_all(RESPONSE);
            return;
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(port) = args.first().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: checks-server PORT [THREADS]");
        return ExitCode::from(2);
    };
    let threads = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(8usize);
    let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("checks-server: bind :{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // std listens with a backlog of 128: a burst of checks would overflow it and wait for a
    // SYN retransmit. Listening again raises it (to net.core.somaxconn at most).
    // SAFETY: a plain syscall on a descriptor this function owns.
    unsafe { listen(listener.as_raw_fd(), 65535) };
    let mut workers = Vec::new();
    for _ in 0..threads {
        let Ok(l) = listener.try_clone() else {
            return ExitCode::FAILURE;
        };
        workers.push(std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                serve(c);
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    ExitCode::SUCCESS
}
