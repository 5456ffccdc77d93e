//! One pipeline: source → shaper → sinks, over bounded channels, so a slow destination
//! slows the socket read instead of growing memory. Drain order on shutdown: stop reading,
//! flush the shaper, drain the sinks.

mod held;
mod recipe;
mod shaper;
mod swap;
mod writer;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use tokio::sync::{mpsc, watch};

use crate::buffer::Buffer;
use crate::config::{ConfigError, PipelineConfig};
use crate::metrics::{Counters, Summary};
use crate::runtime::{CallError, Runtime, ShaperInstance, Transform};
use crate::sink::{Role, Sink};
use crate::source::{self, ConnectError, SourceLinks};
use recipe::Recipe;

/// Events between the socket and the shaper (each up to 256 frames); their payload bytes
/// are bounded separately, and payloads can pin larger read buffers, so keep both small.
const EVENT_QUEUE: usize = 64;
/// Closed batches waiting for the destination.
const SINK_QUEUE: usize = 16;
/// Swapped-in transforms waiting for a batch boundary.
const SWAP_QUEUE: usize = 1;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("pipeline `{pipeline}`: {error}")]
    Connect { pipeline: String, error: ConnectError },
    #[error("pipeline `{pipeline}`: {error}")]
    Transform { pipeline: String, error: CallError },
    #[error("pipeline `{pipeline}`: writing to {sink} failed: {error}")]
    Sink { pipeline: String, sink: String, error: std::io::Error },
    #[error("pipeline `{pipeline}`: {error}")]
    Buffer { pipeline: String, error: String },
}

/// A pipeline with everything that can fail at setup already done.
pub struct Prepared {
    config: PipelineConfig,
    runtime: Runtime,
    tls: Option<Arc<ClientConfig>>,
    recipe: Recipe,
    transform: Transform,
    instance: ShaperInstance,
    destination: Sink,
    deadletter: Sink,
    buffer: Buffer,
}

/// Builds TLS, loads and initialises the transform, opens the sinks; every problem at once.
pub fn prepare(config: PipelineConfig, runtime: &Runtime, config_path: &Path) -> Result<Prepared, ConfigError> {
    let mut problems = Vec::new();
    let tls = match config.source.url.scheme() {
        "wss" => source::tls::client_config(&config.source.tls).map_err(|err| problems.push(err)).ok(),
        _ => None,
    };
    let recipe = Recipe::new(&config);
    let transform = match &config.transform.path {
        Some(path) => runtime.load_file(path),
        None => runtime.default_transform(),
    }
    .map_err(|err| problems.push(format!("transform: {err}")))
    .ok();
    let instance = transform.as_ref().and_then(|transform| {
        recipe.instantiate(transform, 0).map_err(|err| problems.push(format!("transform: {err}"))).ok()
    });
    // Recovery cuts the file sinks back to the last checkpoint: before they are opened.
    let buffer = Buffer::open(&config.buffer, [&config.destination.kind, &config.deadletter.kind])
        .map_err(|err| problems.push(err))
        .ok();
    let open = |kind, role, section: &str, problems: &mut Vec<String>| {
        Sink::open(kind, &config.name, role).map_err(|err| problems.push(format!("{section}: {err}"))).ok()
    };
    let destination = open(&config.destination.kind, Role::Records, "destination", &mut problems);
    let deadletter = open(&config.deadletter.kind, Role::DeadLetters, "deadletter", &mut problems);
    match (transform, instance, destination, deadletter, buffer) {
        (Some(transform), Some(instance), Some(destination), Some(deadletter), Some(buffer)) if problems.is_empty() => {
            let runtime = runtime.clone();
            Ok(Prepared { config, runtime, tls, recipe, transform, instance, destination, deadletter, buffer })
        }
        _ => Err(ConfigError { path: config_path.display().to_string(), problems }),
    }
}

/// What a running pipeline shares with whoever runs it.
#[derive(Clone)]
pub struct RunHandles {
    pub counters: Arc<Counters>,
    /// Bumped to make the pipeline reload its transform file.
    pub reloads: watch::Receiver<u64>,
}

impl Prepared {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Runs until the source ends (batch mode) or `shutdown` resolves, then drains. The
    /// summary counts what happened even when the run failed.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        handles: RunHandles,
    ) -> (Summary, Result<(), PipelineError>) {
        let Self { config, runtime, tls, recipe, transform, instance, destination, deadletter, buffer } = self;
        let name = config.name.clone();
        let counters = handles.counters;
        let handle = tokio::runtime::Handle::current();
        let start = buffer.start;
        let settlement = buffer.settlement();
        Counters::add(&counters.frames_recovered, buffer.recovered_frames);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let started = match buffer.start(&name, events_rx, &counters, handle.clone()) {
            Ok(started) => started,
            Err(error) => return (counters.summary(), Err(PipelineError::Buffer { pipeline: name, error })),
        };
        let (outbound_tx, outbound_rx) = mpsc::unbounded_channel();
        let (sink_tx, sink_rx) = mpsc::channel(SINK_QUEUE);
        let (swaps_tx, swaps_rx) = std::sync::mpsc::sync_channel(SWAP_QUEUE);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let stop = tokio::spawn(async move {
            shutdown.await;
            let _ = shutdown_tx.send(true);
        });
        let watcher = config.transform.path.clone().map(|path| {
            let watch = swap::TransformWatch {
                path,
                runtime,
                recipe: recipe.clone(),
                swaps: swaps_tx,
                reloads: handles.reloads,
            };
            tokio::spawn(watch.run())
        });

        let durable = started.progress.map(|progress| writer::Durable { settlement, progress });
        let writer = writer::Writer::new(destination, deadletter, Arc::clone(&counters), durable);
        let writer_handle = handle.clone();
        let writing = on_own_thread(&format!("{name}-writer"), move || writer.run(sink_rx, &writer_handle));
        let shaping = shaper::ShaperLoop {
            instance,
            transform,
            recipe,
            policy: config.on_transform_error,
            url: config.source.redacted_url.clone(),
            sink: sink_tx,
            outbound: outbound_tx,
            swaps: swaps_rx,
            counters: Arc::clone(&counters),
        };
        let intake = started.intake;
        let shaped = on_own_thread(&format!("{name}-shaper"), move || shaping.run(intake, &handle));

        let links = SourceLinks { events: events_tx, outbound: outbound_rx, shutdown: shutdown_rx };
        let sourced = source::run(&config.source, tls.as_ref(), links, &counters, start).await;
        stop.abort();
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        // The source dropped its sender: the shaper flushes, then the writer drains.
        let shaped = shaped.await.expect("the shaper thread does not panic");
        let written = writing.await.expect("the writer thread does not panic");
        let buffered = match started.appender {
            Some(appender) => appender.await.expect("the buffer thread does not panic"),
            None => Ok(()),
        };
        let outcome = buffered
            .map_err(|error| PipelineError::Buffer { pipeline: name.clone(), error })
            .and(written.map_err(|(sink, source)| PipelineError::Sink { pipeline: name.clone(), sink, error: source }))
            .and(shaped.map_err(|error| PipelineError::Transform { pipeline: name.clone(), error }))
            .and(sourced.map_err(|error| PipelineError::Connect { pipeline: name, error }));
        (counters.summary(), outcome)
    }
}

/// Runs blocking work on a thread of its own (the blocking pool is capped at 512 threads,
/// too few for a thousand tenants) and hands back its result.
pub(crate) fn on_own_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(move || {
            let _ = done.send(work());
        })
        .expect("the OS can start a pipeline thread");
    result
}
