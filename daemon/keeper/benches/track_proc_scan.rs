//! What watching processes costs: one `/proc` scan (the fallback when the process events
//! connector is not available), with this machine's processes and with 1000 more, and the CPU
//! a tracker with one `vrrp_track_process` uses in 10 s with each way of watching.
//!
//! `cargo bench -p keeper --bench track_proc_scan` (no root needed; the connector is used
//! where the kernel allows it). Starts 1000 `sleep` processes of its own and kills them.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use keeper::config::Config;
use keeper::track::process::{connector, procfs};
use keeper::track::{ProcessWatch, Tracker, TrackerOptions};

/// CPU time (user + system) of this process, all threads.
fn cpu_time() -> Duration {
    let (user, system) = cpu_times();
    user + system
}

/// User and system CPU time of this process, all threads.
fn cpu_times() -> (Duration, Duration) {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage(2) fills the zeroed struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    // SAFETY: zero-initialised, then filled by a successful getrusage.
    let u = unsafe { u.assume_init() };
    let t = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
    };
    (t(u.ru_utime), t(u.ru_stime))
}

/// Median wall time of `runs` scans, and the number of processes seen.
fn scan_cost(cmdline_bytes: usize, runs: usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut seen = 0;
    for _ in 0..runs {
        let t = Instant::now();
        seen = procfs::scan(Path::new("/proc"), cmdline_bytes)
            .map(|v| v.len())
            .unwrap_or(0);
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], seen)
}

fn report_scans(label: &str) {
    for (what, bytes) in [("name only", 0), ("name + command line", 64)] {
        let (median, n) = scan_cost(bytes, 51);
        println!(
            "{label}: scan of {n} processes, {what}: median {median:?} ({:.1} µs per process)",
            median.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
}

fn tracker_cpu(watch: ProcessWatch, label: &str) {
    let text = "[vrrp_instance.VI_1]\ninterface = \"lo\"\nvirtual_router_id = 1\ntrack_process = [\"p\"]\n[vrrp_track_process.p]\nprocess = \"haproxy\"\n";
    let cfg: Config = match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("{e}"),
    };
    rt.block_on(async {
        let options = TrackerOptions {
            process_watch: watch,
            ..TrackerOptions::default()
        };
        let (tracker, mut rx) = Tracker::start_with(&cfg, options);
        let _ = rx.recv().await;
        let how = tracker
            .status()
            .processes
            .first()
            .map(|p| p.watched_by.clone())
            .unwrap_or_default();
        let before = cpu_time();
        let span = Duration::from_secs(10);
        let _ = tokio::time::timeout(span, async { while rx.recv().await.is_some() {} }).await;
        let used = cpu_time().saturating_sub(before);
        println!(
            "{label} ({how}): {:?} CPU in {span:?} = {:.3} % of one core",
            used,
            used.as_secs_f64() * 100.0 / span.as_secs_f64()
        );
        tracker.stop().await;
    });
}

/// The connector alone: events and reads in 10 s, and the CPU they cost.
fn connector_alone(coalesce: Duration) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("{e}"),
    };
    rt.block_on(async {
        let Ok((c, _)) = connector::Connector::open(Duration::from_secs(1)).await else {
            println!("connector: not available here");
            return;
        };
        let (mut events, mut reads) = (0usize, 0usize);
        let before = cpu_times();
        let span = Duration::from_secs(10);
        let _ = tokio::time::timeout(span, async {
            loop {
                let mut batch = Vec::new();
                if c.recv(&mut batch).await.is_err() {
                    break;
                }
                events += batch.len();
                reads += 1;
                tokio::time::sleep(coalesce).await;
            }
        })
        .await;
        let after = cpu_times();
        let (user, system) = (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1));
        println!(
            "connector alone, reads at most every {coalesce:?}: {events} events in {reads} reads in {span:?}, {user:?} user + {system:?} system CPU ({:.1} µs per event)",
            (user + system).as_secs_f64() * 1e6 / events.max(1) as f64
        );
    });
}

fn main() {
    connector_alone(Duration::ZERO);
    connector_alone(Duration::from_millis(25));
    report_scans("this machine");
    tracker_cpu(ProcessWatch::Auto, "tracker, auto");
    tracker_cpu(ProcessWatch::Scan(Duration::from_secs(1)), "tracker, scan");
    let mut extra: Vec<Child> = (0..1000)
        .filter_map(|_| Command::new("sleep").arg("600").spawn().ok())
        .collect();
    report_scans("with 1000 more processes");
    tracker_cpu(
        ProcessWatch::Scan(Duration::from_secs(1)),
        "tracker, scan, +1000",
    );
    for c in &mut extra {
        let _ = c.kill();
    }
    for c in &mut extra {
        let _ = c.wait();
    }
}
