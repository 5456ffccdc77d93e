//! The `skippr` binary: parse the command line, set up logging, run, map to an exit code:
//! 2 for bad usage or config, 1 for a failed run, 0 for a clean finish.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use skippr::cli::{Cli, LogFormat, UsageError};
use skippr::config::ConfigError;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("SKIPPR_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // tungstenite traces the whole handshake request, headers and their secrets included.
        .add_directive("tungstenite::handshake=info".parse().expect("a valid static directive"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    match skippr::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.is::<ConfigError>() || err.is::<UsageError>() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}
