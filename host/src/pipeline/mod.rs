//! One pipeline: source → shaper → sinks, over bounded channels, so a slow destination
//! slows the socket read instead of growing memory. Drain order on shutdown: stop reading,
//! flush the shaper, drain the sinks.

mod shaper;
mod writer;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use tokio::sync::{mpsc, watch};

use crate::config::{ConfigError, PipelineConfig};
use crate::metrics::{Counters, Summary};
use crate::runtime::{CallError, Runtime, ShaperInstance, SourceInfo};
use crate::sink::Sink;
use crate::source::{self, ConnectError, SourceLinks};

/// Events between the socket and the shaper; their bytes are bounded separately.
const EVENT_QUEUE: usize = 4096;
/// Closed batches waiting for the destination.
const SINK_QUEUE: usize = 16;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("pipeline `{pipeline}`: {source}")]
    Connect { pipeline: String, source: ConnectError },
    #[error("pipeline `{pipeline}`: {source}{}", lost_suffix(*.lost_frames))]
    Transform { pipeline: String, source: CallError, lost_frames: u64 },
    #[error("pipeline `{pipeline}`: writing to {sink} failed: {source}")]
    Sink { pipeline: String, sink: String, source: std::io::Error },
}

fn lost_suffix(lost: u64) -> String {
    match lost {
        0 => String::new(),
        n => format!("; {n} frame(s) held inside the transform were lost"),
    }
}

/// A pipeline with everything that can fail at setup already done.
pub struct Prepared {
    config: PipelineConfig,
    tls: Option<Arc<ClientConfig>>,
    instance: ShaperInstance,
    destination: Sink,
    deadletter: Sink,
}

/// Builds TLS, loads and initialises the transform, opens the sinks; every problem at once.
pub fn prepare(config: PipelineConfig, runtime: &Runtime, config_path: &Path) -> Result<Prepared, ConfigError> {
    let mut problems = Vec::new();
    let tls = match config.source.url.scheme() {
        "wss" => source::tls::client_config(&config.source.tls).map_err(|err| problems.push(err)).ok(),
        _ => None,
    };
    let instance = instantiate(&config, runtime).map_err(|err| problems.push(err)).ok();
    let destination =
        Sink::open(&config.destination.kind).map_err(|err| problems.push(format!("destination: {err}"))).ok();
    let deadletter =
        Sink::open(&config.deadletter.kind).map_err(|err| problems.push(format!("deadletter: {err}"))).ok();
    match (instance, destination, deadletter) {
        (Some(instance), Some(destination), Some(deadletter)) if problems.is_empty() => {
            Ok(Prepared { config, tls, instance, destination, deadletter })
        }
        _ => Err(ConfigError { path: config_path.display().to_string(), problems }),
    }
}

fn instantiate(config: &PipelineConfig, runtime: &Runtime) -> Result<ShaperInstance, String> {
    let transform = match &config.transform.path {
        Some(path) => runtime.load_file(path),
        None => runtime.default_transform(),
    }
    .map_err(|err| format!("transform: {err}"))?;
    let source = &config.source;
    let info = SourceInfo {
        url: source.redacted_url.clone(),
        host: source.host.clone(),
        namespace: source.namespace.clone(),
        mode: source.mode,
        connection_id: 0,
        format: source.format,
        limits: config.batch,
    };
    transform
        .instantiate(&config.name, &info, &config.transform.options_json, config.limits)
        .map_err(|err| format!("transform: {err}"))
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
    ) -> (Summary, Result<(), PipelineError>) {
        let Self { config, tls, instance, destination, deadletter } = self;
        let name = config.name.clone();
        let counters = Arc::new(Counters::default());
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (outbound_tx, outbound_rx) = mpsc::unbounded_channel();
        let (sink_tx, sink_rx) = mpsc::channel(SINK_QUEUE);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let stop = tokio::spawn(async move {
            shutdown.await;
            let _ = shutdown_tx.send(true);
        });

        let writer = writer::Writer::new(destination, deadletter, Arc::clone(&counters));
        let writing = tokio::task::spawn_blocking(move || writer.run(sink_rx));
        let shaping = shaper::ShaperLoop::new(instance, &config.source.redacted_url, sink_tx, outbound_tx);
        let handle = tokio::runtime::Handle::current();
        let shaped = tokio::task::spawn_blocking(move || shaping.run(events_rx, &handle));

        let links = SourceLinks { events: events_tx, outbound: outbound_rx, shutdown: shutdown_rx };
        let sourced = source::run(&config.source, tls.as_ref(), links, &counters).await;
        stop.abort();
        // The source dropped its sender: the shaper flushes, then the writer drains.
        let shaped = shaped.await.expect("the shaper task does not panic");
        let written = writing.await.expect("the writer task does not panic");
        let outcome = written
            .map_err(|(sink, source)| PipelineError::Sink { pipeline: name.clone(), sink, source })
            .and(shaped.map_err(|(source, lost_frames)| PipelineError::Transform {
                pipeline: name.clone(),
                source,
                lost_frames,
            }))
            .and(sourced.map_err(|source| PipelineError::Connect { pipeline: name, source }));
        (counters.summary(), outcome)
    }
}
