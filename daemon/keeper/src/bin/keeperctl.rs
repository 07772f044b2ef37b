//! keeperctl: status and tools for keeperd.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "keeperctl", version, about = "Status and tools for keeperd")]
struct Args {
    /// keeperd's control socket.
    #[arg(long, default_value = "/run/keeper/keeper.sock")]
    socket: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Instances and virtual servers with their state.
    Status,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Status => {
            eprintln!(
                "keeperctl: the control socket ({}) is not implemented yet",
                args.socket.display()
            );
            ExitCode::FAILURE
        }
    }
}
