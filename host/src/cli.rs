//! The command line: what each command and flag means, and dispatch to the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::sync::watch;

use crate::config::{self, ConfigError, ConnectDestination, LimitPolicy};
use crate::metrics::{Counters, Registry};
use crate::pipeline::{self, Prepared, RunHandles};
use crate::runtime::Runtime;
use crate::scaffold::{self, Lang};
use crate::tenants::{self, RunOptions, Supervisor, TenantEnd};
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
    /// Log lines as text for people or as JSON objects for log collectors.
    #[arg(long, global = true, value_enum, default_value = "text", env = "SKIPPR_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
        /// Shape the feed with this component instead of the embedded default shaper.
        #[arg(long, value_name = "FILE.wasm")]
        transform: Option<PathBuf>,
        /// The transform's own options, as a JSON object.
        #[arg(long, value_name = "JSON", requires = "transform")]
        options: Option<String>,
    },
    /// Write a commented skippr.yaml in the current folder (never overwrites one).
    Init(ConfigArg),
    /// Set a section of skippr.yaml: the source, the destination or the dead letters.
    #[command(subcommand)]
    Connect(ConnectCommand),
    /// Run the pipelines until stopped (stream mode) or drained (batch mode): skippr.yaml,
    /// each `-c FILE`, or one per file in `--pipelines DIR`.
    Run(RunArgs),
    /// Check everything a run would check, without connecting; lists every problem.
    Validate(RunArgs),
    /// Make a running `skippr run --pid-file FILE` reload its transform files (SIGHUP).
    Reload {
        /// The pid file the running process wrote.
        #[arg(long, value_name = "FILE")]
        pid_file: PathBuf,
    },
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
    /// A pipeline's config file; repeat for several pipelines in one process.
    #[arg(short, long = "config", env = "SKIPPR_CONFIG", default_value = config::DEFAULT_CONFIG_FILE)]
    pub configs: Vec<PathBuf>,
    /// A folder with one config file per tenant (the file name is the tenant's name);
    /// adding, changing or removing a file starts, restarts or stops that tenant alone.
    #[arg(long, value_name = "DIR", conflicts_with = "configs")]
    pub pipelines: Option<PathBuf>,
    /// A transform component to use instead of the one in skippr.yaml (or the default).
    #[arg(long, value_name = "FILE.wasm", env = "SKIPPR_TRANSFORM")]
    pub transform: Option<PathBuf>,
    /// Serve Prometheus metrics at /metrics and a health check at /healthz.
    #[arg(long, value_name = "ADDR", env = "SKIPPR_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Write this process's id here, for `skippr reload`.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Limits an operator sets for every tenant: defaults and ceilings.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Memory cap of a transform instance when its config sets none.
    #[arg(long, value_name = "MB", default_value_t = 64)]
    pub default_memory_mb: usize,
    /// CPU budget per transform call when its config sets none.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub default_cpu_ms_per_call: u64,
    /// The most memory any tenant's config may ask for.
    #[arg(long, value_name = "MB", default_value_t = 1024)]
    pub max_memory_mb: usize,
    /// The most CPU per call any tenant's config may ask for.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub max_cpu_ms_per_call: u64,
    /// The largest source.max_message_bytes any tenant's config may set.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub max_message_bytes: u64,
}

impl LimitArgs {
    fn policy(&self) -> Result<LimitPolicy, UsageError> {
        if self.default_memory_mb > self.max_memory_mb || self.default_cpu_ms_per_call > self.max_cpu_ms_per_call {
            return Err(UsageError("the --default-* limits must not be over the --max-* ceilings".into()));
        }
        if self.default_memory_mb == 0 || self.default_cpu_ms_per_call == 0 {
            return Err(UsageError("--default-memory-mb and --default-cpu-ms-per-call must be more than 0".into()));
        }
        let mut policy = LimitPolicy::default();
        policy.defaults.memory_bytes = self.default_memory_mb << 20;
        policy.defaults.cpu_ms_per_call = self.default_cpu_ms_per_call;
        policy.ceilings.memory_bytes = self.max_memory_mb << 20;
        policy.ceilings.cpu_ms_per_call = self.max_cpu_ms_per_call;
        policy.max_message_bytes = self.max_message_bytes;
        Ok(policy)
    }
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
    /// stdout, stderr, file (JSON Lines, appended) or postgres.
    #[arg(value_enum)]
    pub kind: SinkKindArg,
    /// The file to append to, for `file`.
    #[arg(long, required_if_eq("kind", "file"))]
    pub path: Option<PathBuf>,
    /// The database, for `postgres`: postgres://user:password@host:5432/database. A
    /// password goes to .env.local as DATABASE_URL, never into skippr.yaml.
    #[arg(long, required_if_eq("kind", "postgres"))]
    pub url: Option<String>,
    /// For `postgres`: the table (default: one per namespace, or skippr_deadletters).
    #[arg(long)]
    pub table: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKindArg {
    Stdout,
    Stderr,
    File,
    Postgres,
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
    /// Create a transform project that builds with one command: the transform, a test, a
    /// README, the SDK and the WIT of this skippr.
    New {
        /// The project's name and folder: lowercase letters, digits and dashes.
        name: String,
        /// The language to write the transform in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Where to create the project folder.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
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
        Command::Demo { messages, rate, transform, options } => {
            run_demo(messages, rate, transform.as_deref(), options.as_deref())
        }
        Command::Init(ConfigArg { config }) => report(config::init(&config)),
        Command::Connect(command) => connect(command),
        Command::Run(args) => run_tenants(&args),
        Command::Validate(args) => {
            let supervisor = supervisor(&args, Arc::default())?;
            for (path, prepared) in args.configs.iter().zip(prepare_all(&supervisor, &args.configs)?) {
                println!("{} is valid: pipeline `{}` is ready to run.", path.display(), prepared.name());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { pid_file } => reload(&pid_file),
        Command::Transform(TransformCommand::Check { file, options }) => {
            let runtime = Runtime::new()?;
            print!("{}", transform_check::check(&runtime, file.as_deref(), &options)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Transform(TransformCommand::New { name, lang, dir }) => {
            let next = scaffold::create(&dir, &name, lang).map_err(|err| UsageError(err.to_string()))?;
            print!("{next}");
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
        (SinkKindArg::Postgres, _) => {
            ConnectDestination::Postgres { url: args.url.unwrap_or_default(), table: args.table }
        }
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

fn supervisor(args: &RunArgs, registry: Arc<Registry>) -> anyhow::Result<Supervisor> {
    let options = RunOptions { transform: args.transform.clone(), policy: args.limits.policy()? };
    Ok(Supervisor::new(Runtime::new()?, options, registry))
}

/// Prepares every config file; all their problems are reported together.
fn prepare_all(supervisor: &Supervisor, paths: &[PathBuf]) -> anyhow::Result<Vec<Prepared>> {
    let mut prepared = Vec::new();
    let mut errors: Vec<ConfigError> = Vec::new();
    for path in paths {
        match supervisor.prepare(path) {
            Ok(pipeline) => prepared.push(pipeline),
            Err(err) => errors.push(err),
        }
    }
    match errors.len() {
        0 => Ok(prepared),
        1 => Err(errors.remove(0).into()),
        n => Err(ConfigError {
            path: format!("{n} config files"),
            problems: errors.iter().flat_map(|e| e.problems.iter().map(move |p| format!("{}: {p}", e.path))).collect(),
        }
        .into()),
    }
}

fn run_tenants(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let tokio = tokio::runtime::Runtime::new()?;
    let registry = Arc::new(Registry::default());
    let mut supervisor = supervisor(args, Arc::clone(&registry))?;
    if let Some(addr) = args.metrics_addr {
        let listener = tokio
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|err| UsageError(format!("--metrics-addr {addr}: {err}")))?;
        tokio.spawn(crate::metrics::serve(listener, Arc::clone(&registry)));
        tracing::info!(%addr, "Serving /metrics and /healthz.");
    }
    if let Some(pid_file) = &args.pid_file {
        std::fs::write(pid_file, format!("{}\n", std::process::id()))
            .map_err(|err| UsageError(format!("--pid-file {}: {err}", pid_file.display())))?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let reloads = supervisor.reloader();
    let _enter = tokio.enter();
    tokio.spawn(async move {
        shutdown_signal(&reloads).await;
        let _ = stop_tx.send(true);
    });
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        tokio.spawn(crate::metrics::print_progress(Arc::clone(&registry)));
    }
    let ends = match &args.pipelines {
        Some(dir) => tokio.block_on(tenants::run_dir(&mut supervisor, dir, stop_rx)),
        None => {
            for prepared in prepare_all(&supervisor, &args.configs)? {
                supervisor.launch(prepared, Vec::new());
            }
            tokio.block_on(tenants::run_all(&mut supervisor, stop_rx))
        }
    };
    finish(ends)
}

/// Prints each tenant's summary; the run failed if any tenant did.
fn finish(mut ends: Vec<(String, TenantEnd)>) -> anyhow::Result<ExitCode> {
    if let [(_, (summary, _))] = ends.as_slice() {
        eprintln!("summary: {summary}");
        let (_, (_, outcome)) = ends.remove(0);
        outcome?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = Vec::new();
    for (name, (summary, outcome)) in &ends {
        eprintln!("summary `{name}`: {summary}");
        if let Err(err) = outcome {
            eprintln!("error `{name}`: {err:#}");
            failed.push(name.as_str());
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    failed.sort_unstable();
    anyhow::bail!("{} of {} pipelines failed: {}", failed.len(), ends.len(), failed.join(", "))
}

fn reload(pid_file: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|err| UsageError(format!("cannot read {}: {err}", pid_file.display())))?;
    let pid: i32 =
        text.trim().parse().map_err(|_| UsageError(format!("{} holds no process id", pid_file.display())))?;
    let sent = std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status()?;
    anyhow::ensure!(sent.success(), "no skippr process {pid} to signal (is it still running?)");
    eprintln!("Asked process {pid} to reload its transforms.");
    Ok(ExitCode::SUCCESS)
}

fn run_demo(messages: u64, rate: u32, transform: Option<&Path>, options: Option<&str>) -> anyhow::Result<ExitCode> {
    let tokio = tokio::runtime::Runtime::new()?;
    let url = tokio.block_on(demo::start_feed(messages, rate))?;
    eprintln!("demo: a trade feed is running at {url}; records follow on stdout, dead letters on stderr.");
    let config = demo::pipeline_config(&url, transform, options)?;
    let prepared = pipeline::prepare(config, &Runtime::new()?, Path::new("the demo"))?;
    // The demo has no transform file to reload.
    let (_reloads, reload_rx) = watch::channel(0);
    let handles = RunHandles { counters: Arc::new(Counters::default()), reloads: reload_rx };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let (summary, outcome) = tokio.block_on(prepared.run(shutdown, handles));
    eprintln!("summary: {summary}");
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM; SIGHUP asks for a reload and waits on.
async fn shutdown_signal(reloads: &watch::Sender<u64>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: every pipeline checks its transform file.");
                reloads.send_modify(|generation| *generation += 1);
            }
        }
    }
    tracing::info!("Shutdown requested: stopping reads, flushing the transform and destinations.");
}
