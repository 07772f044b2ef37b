//! keeperctl: status and tools for keeperd, through its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keeper::control::{self, Request, Response};

#[derive(Parser, Debug)]
#[command(name = "keeperctl", version, about = "Status and tools for keeperd")]
struct Args {
    /// keeperd's control socket (`global.control_socket`).
    #[arg(long, default_value = "/run/keeper/keeper.sock")]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Instances with their state, priority, master and counters.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-read the configuration (like SIGHUP) and report the outcome.
    Reload,
    /// The kernel's IPVS table, as `ipvsadm -Ln` prints it (read by keeperd).
    Ipvs {
        /// Cumulative counters (`ipvsadm -Ln --stats`).
        #[arg(long, conflicts_with_all = ["rate", "json", "daemon"])]
        stats: bool,
        /// Rates (`ipvsadm -Ln --rate`).
        #[arg(long, conflicts_with_all = ["json", "daemon"])]
        rate: bool,
        /// The table with its counters as JSON.
        #[arg(long, conflicts_with = "daemon")]
        json: bool,
        /// The connection sync daemons (`ipvsadm -L --daemon`).
        #[arg(long)]
        daemon: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let request = match args.command {
        Command::Status { .. } => Request::Status,
        Command::Reload => Request::Reload,
        Command::Ipvs { .. } => Request::Ipvs,
    };
    let response = match control::request(&args.socket, &request) {
        Ok(r) => r,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (only root, keeperd's user and members of the socket's group may use it)"
            } else {
                ""
            };
            eprintln!("keeperctl: {}: {e}{hint}", args.socket.display());
            return ExitCode::FAILURE;
        }
    };
    match (args.command, response) {
        (Command::Status { json: true }, Response::Status(s)) => {
            match serde_json::to_string_pretty(&s) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("keeperctl: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        (Command::Status { json: false }, Response::Status(s)) => {
            println!(
                "{:<16} {:<10} {:>4} {:<5} {:<8} {:>4} {:<26} {:<40} VIPS",
                "INSTANCE", "INTERFACE", "VRID", "AF", "STATE", "PRIO", "MASTER", "LAST CHANGE"
            );
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            for i in s.instances {
                let last = i
                    .last_transition
                    .map(|t| {
                        format!(
                            "{}->{} ({}) {}s ago",
                            t.from,
                            t.to,
                            t.reason,
                            (now - t.at).max(0.0).round()
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<16} {:<10} {:>4} {:<5} {:<8} {:>4} {:<26} {:<40} {}",
                    i.name,
                    i.interface,
                    i.vrid,
                    i.family,
                    i.state,
                    i.priority,
                    i.master.unwrap_or_else(|| "-".into()),
                    last,
                    i.vips.join(",")
                );
            }
            print_real_servers(&s.real_servers);
            print_quorums(&s.virtual_servers);
            print_checker(s.checker.as_ref(), s.real_servers.len());
        }
        (
            Command::Ipvs {
                stats,
                rate,
                json,
                daemon,
            },
            Response::Ipvs(view),
        ) => {
            use keeper_ipvs::format::{self, ListFormat};
            if json {
                println!("{}", format::json(Some(&view.info), &view.table));
            } else if daemon {
                for d in &view.daemons {
                    println!(
                        "{} sync daemon (mcast={}, syncid={})",
                        match d.state {
                            keeper_ipvs::DaemonState::Master => "master",
                            keeper_ipvs::DaemonState::Backup => "backup",
                        },
                        d.mcast_ifn,
                        d.sync_id
                    );
                }
            } else {
                let f = if stats {
                    ListFormat::Stats
                } else if rate {
                    ListFormat::Rate
                } else {
                    ListFormat::Plain
                };
                print!("{}", format::list(Some(&view.info), &view.table, f));
            }
        }
        (_, Response::Reloaded { ok, message }) => {
            println!("{message}");
            if !ok {
                return ExitCode::FAILURE;
            }
        }
        (_, Response::Error { message }) => {
            eprintln!("keeperd: {message}");
            return ExitCode::FAILURE;
        }
        (_, other) => {
            eprintln!("keeperctl: unexpected answer {other:?}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

// --- health checks: one line per real server --------------------------------------------------

/// `35s`, `4m`, `2h`: how long ago `at` (seconds since the epoch) was.
fn ago(at: Option<f64>) -> String {
    let Some(at) = at else {
        return "-".to_string();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(at);
    let s = (now - at).max(0.0) as u64;
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// The checker's own counters: how much it does and whether it starts attempts on time.
fn print_checker(stats: Option<&control::CheckerStatsView>, servers: usize) {
    let Some(c) = stats else { return };
    if servers == 0 {
        return;
    }
    println!();
    println!(
        "checker: {} attempts, {} in flight (limit {}), {} started late by more than 10 % of \
         their interval, latest start {:.1} ms after due",
        c.attempts, c.in_flight, c.limit, c.late_starts, c.max_lateness_ms
    );
    let buckets = ["<1ms", "<4ms", "<16ms", "<64ms", "<256ms", "<1s", ">=1s"];
    let by_lateness: Vec<String> = buckets
        .iter()
        .zip(&c.lateness_histogram)
        .map(|(b, n)| format!("{b} {n}"))
        .collect();
    if !by_lateness.is_empty() {
        println!("checker starts by lateness: {}", by_lateness.join(", "));
    }
}

/// Virtual servers whose quorum is not the default (1, no hysteresis) or is lost.
fn print_quorums(vs: &[control::QuorumView]) {
    let shown: Vec<_> = vs
        .iter()
        .filter(|q| q.state != "up" || q.quorum != 1 || q.hysteresis != 0)
        .collect();
    if shown.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<24} {:<6} {:>8} {:>8} {:>6}",
        "VIRTUAL SERVER", "QUORUM", "WEIGHT", "NEEDS", "SINCE"
    );
    for q in shown {
        println!(
            "{:<24} {:<6} {:>8} {:>8} {:>6}",
            q.virtual_server,
            q.state,
            q.weight,
            format!("{}±{}", q.quorum, q.hysteresis),
            ago(q.since)
        );
    }
}

fn print_real_servers(servers: &[control::RealServerView]) {
    if servers.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<32} {:<24} {:<5} {:>6} {:>6}  LAST ERROR",
        "VIRTUAL/REAL SERVER", "ADDRESS", "STATE", "WEIGHT", "SINCE"
    );
    for r in servers {
        let weight = if r.dynamic_weight {
            format!("{}*", r.weight)
        } else {
            r.weight.to_string()
        };
        println!(
            "{:<32} {:<24} {:<5} {:>6} {:>6}  {}",
            format!("{}/{}", r.virtual_server, r.real_server),
            r.address,
            r.state,
            weight,
            ago(r.since),
            r.last_error
                .as_deref()
                .map(|e| format!("{e} ({} ago)", ago(r.last_error_at)))
                .unwrap_or_else(|| "-".into())
        );
    }
}
