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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let request = match args.command {
        Command::Status { .. } => Request::Status,
        Command::Reload => Request::Reload,
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
