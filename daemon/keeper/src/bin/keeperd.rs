//! keeperd: the director daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use keeper::config::{self, Diagnostic};

#[derive(Parser, Debug)]
#[command(
    name = "keeperd",
    version,
    about = "VRRP + IPVS director daemon (a keepalived replacement)"
)]
struct Args {
    /// Configuration file; `conf.d/*.toml` beside it and `KEEPER_…` variables are layered on top.
    #[arg(long, short = 'f', value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Validate every layer and exit: 0 if valid, 1 listing every error.
    #[arg(long, conflicts_with = "dump_config")]
    check: bool,
    /// Print the merged effective configuration as TOML (secrets redacted) and exit.
    #[arg(long)]
    dump_config: bool,
}

fn print_all(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let loaded = match config::load(&args.config, std::env::vars()) {
        Ok(l) => l,
        Err(errors) => {
            print_all(&errors);
            eprintln!(
                "{}: {} error(s); configuration refused",
                args.config.display(),
                errors.len()
            );
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        print_all(&loaded.warnings);
        let files: Vec<String> = loaded
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        println!("configuration valid ({})", files.join(", "));
        return ExitCode::SUCCESS;
    }
    if args.dump_config {
        return match config::dump(&loaded.config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    keeper::logging::init(loaded.config.global.log_level.as_deref());
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match keeper::runtime::run(loaded, args.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
