//! The command line: what each command and flag means, and dispatch to the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, ConnectDestination, PipelineConfig};
use crate::pipeline::{self, Prepared};
use crate::runtime::Runtime;
use crate::{demo, transform_check};

/// Skippr's WebSocket source: connects to a WebSocket server, shapes every message in a
/// sandboxed WebAssembly transform, and delivers the records in batches.
///
/// Start with `skippr demo`, then `skippr init`, `skippr connect source websocket --url …`
/// and `skippr run`.
#[derive(Debug, Parser)]
#[command(name = "skippr", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a built-in trade feed on loopback through the real pipeline: records on stdout,
    /// dead letters and a summary on stderr. Needs nothing installed and no network.
    Demo {
        /// How many messages the feed sends before it closes.
        #[arg(long, default_value_t = 60)]
        messages: u64,
        /// Messages per second.
        #[arg(long, default_value_t = 40)]
        rate: u32,
    },
    /// Write a commented skippr.yaml in the current folder (never overwrites one).
    Init(ConfigArg),
    /// Set a section of skippr.yaml: the source, the destination or the dead letters.
    #[command(subcommand)]
    Connect(ConnectCommand),
    /// Run the pipeline in skippr.yaml until stopped (stream mode) or drained (batch mode).
    Run(RunArgs),
    /// Check everything a run would check, without connecting; lists every problem.
    Validate(RunArgs),
    /// Work with transform components (the WebAssembly shapers).
    #[command(subcommand)]
    Transform(TransformCommand),
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(short, long, env = "SKIPPR_CONFIG", default_value = config::DEFAULT_CONFIG_FILE)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// A transform component to use instead of the one in skippr.yaml (or the default).
    #[arg(long, value_name = "FILE.wasm", env = "SKIPPR_TRANSFORM")]
    pub transform: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConnectCommand {
    /// Set the source section.
    #[command(subcommand)]
    Source(SourceKind),
    /// Set where records go.
    Destination(SinkArgs),
    /// Set where rejected frames go, each with its reason and payload.
    Deadletter(SinkArgs),
}

#[derive(Debug, Subcommand)]
pub enum SourceKind {
    /// A WebSocket server. Secret header values go to .env.local, never into skippr.yaml.
    Websocket {
        /// WebSocket URL (ws:// or wss://).
        #[arg(long)]
        url: String,
        /// Additional request header, KEY=VALUE; repeat for multiple values.
        #[arg(long = "headers", value_name = "KEY=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// Consumption mode: `stream` runs until stopped, `batch` drains and exits once idle.
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Stream,
    Batch,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// stdout, stderr, or file (JSON Lines, appended).
    #[arg(value_enum)]
    pub kind: SinkKindArg,
    /// The file to append to, for `file`.
    #[arg(long, required_if_eq("kind", "file"))]
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKindArg {
    Stdout,
    Stderr,
    File,
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

/// A mistake in what the user asked or wrote: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or("expected KEY=VALUE, e.g. Authorization='Bearer your-token'")?;
    if key.trim().is_empty() {
        return Err("the header name before `=` is empty".into());
    }
    Ok((key.trim().to_owned(), value.to_owned()))
}

/// Runs a parsed command; `main` prints the error, if any, once.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo { messages, rate } => run_demo(messages, rate),
        Command::Init(ConfigArg { config }) => report(config::init(&config)),
        Command::Connect(command) => connect(command),
        Command::Run(args) => {
            let prepared = prepare(&args)?;
            run_pipeline(prepared)
        }
        Command::Validate(args) => {
            let prepared = prepare(&args)?;
            println!("{} is valid: pipeline `{}` is ready to run.", args.config.config.display(), prepared.name());
            Ok(ExitCode::SUCCESS)
        }
        Command::Transform(TransformCommand::Check { file, options }) => {
            let runtime = Runtime::new()?;
            print!("{}", transform_check::check(&runtime, file.as_deref(), &options)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn connect(command: ConnectCommand) -> anyhow::Result<ExitCode> {
    let (path, result) = match command {
        ConnectCommand::Source(SourceKind::Websocket { url, headers, mode, config }) => {
            let mode = mode.map(|mode| match mode {
                ModeArg::Stream => "stream",
                ModeArg::Batch => "batch",
            });
            let result = config::connect_source(&config.config, &url, &headers, mode);
            (config.config, result)
        }
        ConnectCommand::Destination(args) => sink(args, "destination"),
        ConnectCommand::Deadletter(args) => sink(args, "deadletter"),
    };
    let code = report(result)?;
    eprintln!("Check it with `skippr validate -c {}`.", path.display());
    Ok(code)
}

fn sink(args: SinkArgs, section: &str) -> (PathBuf, Result<config::EditReport, String>) {
    let target = match (args.kind, args.path) {
        (SinkKindArg::Stdout, _) => ConnectDestination::Stdout,
        (SinkKindArg::Stderr, _) => ConnectDestination::Stderr,
        (SinkKindArg::File, path) => ConnectDestination::File(path.unwrap_or_default()),
    };
    let result = config::connect_destination(&args.config.config, section, &target);
    (args.config.config, result)
}

fn report(result: Result<config::EditReport, String>) -> anyhow::Result<ExitCode> {
    let report = result.map_err(UsageError)?;
    for line in report.lines {
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn prepare(args: &RunArgs) -> anyhow::Result<Prepared> {
    let path = &args.config.config;
    let mut config = config::load(path)?;
    if let Some(transform) = &args.transform {
        config.transform.path = Some(transform.clone());
    }
    prepare_config(config, path)
}

fn prepare_config(config: PipelineConfig, path: &Path) -> anyhow::Result<Prepared> {
    let runtime = Runtime::new()?;
    Ok(pipeline::prepare(config, &runtime, path)?)
}

fn run_pipeline(prepared: Prepared) -> anyhow::Result<ExitCode> {
    let tokio = tokio::runtime::Runtime::new()?;
    run_to_end(&tokio, prepared)
}

/// Runs a prepared pipeline; the summary is printed whether or not the run succeeded.
fn run_to_end(tokio: &tokio::runtime::Runtime, prepared: Prepared) -> anyhow::Result<ExitCode> {
    let (summary, outcome) = tokio.block_on(prepared.run(shutdown_signal()));
    eprintln!("summary: {summary}");
    outcome?;
    Ok(ExitCode::SUCCESS)
}

fn run_demo(messages: u64, rate: u32) -> anyhow::Result<ExitCode> {
    let tokio = tokio::runtime::Runtime::new()?;
    let url = tokio.block_on(demo::start_feed(messages, rate))?;
    eprintln!("demo: a trade feed is running at {url}; records follow on stdout, dead letters on stderr.");
    let prepared = prepare_config(demo::pipeline_config(&url), Path::new("the demo"))?;
    run_to_end(&tokio, prepared)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match &mut terminate {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    tracing::info!("Shutdown requested: stopping reads, flushing the transform and destinations.");
}
