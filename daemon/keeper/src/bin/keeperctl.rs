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
            eprintln!("keeperctl: {}: {e}", args.socket.display());
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
                "{:<16} {:<10} {:>4} {:<5} {:<8} {:>4} {:<26} VIPS",
                "INSTANCE", "INTERFACE", "VRID", "AF", "STATE", "PRIO", "MASTER"
            );
            for i in s.instances {
                println!(
                    "{:<16} {:<10} {:>4} {:<5} {:<8} {:>4} {:<26} {}",
                    i.name,
                    i.interface,
                    i.vrid,
                    i.family,
                    i.state,
                    i.priority,
                    i.master.unwrap_or_else(|| "-".into()),
                    i.vips.join(",")
                );
            }
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
