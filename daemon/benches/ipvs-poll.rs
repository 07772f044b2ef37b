//! Times how long the kernel's IPVS table takes to reach a state after an event: starts a
//! command (a daemon's cold start) or sends a signal (a reload), then reads /proc/net/ip_vs
//! until it has enough lines or contains a line, and prints the elapsed milliseconds.
//! Standalone (std only), built by daemon/benches/ipvs.sh with `rustc -O`; runs in the VM.
//!
//! usage: ipvs-poll (--lines N | --contains TEXT) [--timeout-ms T] (--signal PID SIG | -- CMD...)
//! The started command keeps running after ipvs-poll exits (its pid is printed on stderr).

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

enum Until {
    Lines(usize),
    Contains(String),
}

fn reached(until: &Until) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/net/ip_vs") else {
        return false;
    };
    match until {
        Until::Lines(n) => text.lines().count() >= *n,
        Until::Contains(s) => text.contains(s.as_str()),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: ipvs-poll (--lines N | --contains TEXT) [--timeout-ms T] (--signal PID SIG | -- CMD...)"
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
        let done = reached(&until);
        let took = read.elapsed();
        slowest = slowest.max(took);
        if done {
            break;
        }
        if start.elapsed() > timeout {
            eprintln!("ipvs-poll: not reached within {timeout:?}");
            return ExitCode::FAILURE;
        }
        std::thread::sleep(took.max(Duration::from_millis(2)));
    }
    println!("{:.1}", start.elapsed().as_secs_f64() * 1000.0);
    eprintln!("ipvs-poll: slowest read {:.1} ms", slowest.as_secs_f64() * 1000.0);
    ExitCode::SUCCESS
}
