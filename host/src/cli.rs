//! The command line: what each command and flag means, and dispatch to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::runtime::Runtime;
use crate::transform_check;

/// Skippr's WebSocket source: connects to a WebSocket server, shapes every message in a
/// sandboxed WebAssembly transform, and delivers the records in batches.
#[derive(Debug, Parser)]
#[command(name = "skippr", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with transform components (the WebAssembly shapers).
    #[command(subcommand)]
    Transform(TransformCommand),
}

#[derive(Debug, Subcommand)]
pub enum TransformCommand {
    /// Load a component, check it against the host's WIT world, and run sample frames
    /// through it. Without FILE, checks the embedded default shaper.
    Check {
        /// The component (.wasm) to check.
        file: Option<PathBuf>,
        /// The transform's own options, as a JSON object.
        #[arg(long, default_value = "{}")]
        options: String,
    },
}

/// Runs a parsed command; `main` prints the error, if any, once.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Transform(TransformCommand::Check { file, options }) => {
            let runtime = Runtime::new()?;
            print!(
                "{}",
                transform_check::check(&runtime, file.as_deref(), &options)?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
