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
    /// Internal: the script launcher keeperd starts itself (reads its instructions on fd 3).
    #[arg(long, hide = true, conflicts_with_all = ["check", "dump_config"])]
    script_launcher: bool,
}

fn print_all(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.script_launcher {
        keeper::logging::init(None);
        return match keeper::launcher::launcher_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("script launcher: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
        // What would stop keeperd from starting here with these privileges.
        if let Err(errors) = keeper::privilege::plan(&loaded.config) {
            for e in &errors {
                eprintln!("{}: error: {e}", args.config.display());
            }
            eprintln!(
                "{}: {} error(s); configuration refused",
                args.config.display(),
                errors.len()
            );
            return ExitCode::FAILURE;
        }
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
    // Still one thread here: the environment and scheduling change safely.
    let plan = match keeper::privilege::plan(&loaded.config) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: no thread has been started yet.
    let notifier = match unsafe { keeper::systemd::Notifier::from_env() } {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("starting as {}", keeper::privilege::describe_current());
    for w in keeper::privilege::apply_scheduling(
        loaded.config.global.vrrp_rt_priority,
        loaded.config.global.vrrp_no_swap,
    ) {
        tracing::warn!("{w}");
    }
    let startup = keeper::runtime::Startup { plan, notifier };
    match keeper::runtime::run(loaded, args.config, startup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
