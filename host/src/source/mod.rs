//! The WebSocket source: connects (URL, proxy, TLS, headers), runs sessions, and
//! reconnects with backoff until stopped, idle (batch mode) or unable to connect at all.

mod connect;
mod keepalive;
mod proxy;
mod session;
mod stream;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

pub use connect::ConnectError;
pub use session::{MAX_QUEUED_BYTES, now_ms};

use crate::backoff::Backoff;
use session::{Session, SessionContext, SessionEnd};

use crate::buffer::SourceStart;
use crate::config::SourceConfig;
use crate::metrics::Counters;
use crate::runtime::{FrameKind, Mode, Outbound};

/// A connection that lasted this long was healthy: the next failure starts the backoff over.
const HEALTHY_SESSION: Duration = Duration::from_secs(10);
/// This many short sessions in a row earn the page's "connection drops repeatedly" hint.
const DROPS_BEFORE_HINT: u32 = 3;

/// What the source hands the pipeline, in order.
#[derive(Debug)]
pub enum SourceEvent {
    /// A connection opened; the reply carries what the transform wants sent on it first.
    Connected { connection_id: u64, reply: oneshot::Sender<Vec<Outbound>> },
    /// Data frames read together: one event (and one wake-up of the shaper) for all of them.
    Frames(Frames),
    /// A message that could not be read (over `max_message_bytes`, or text that is not
    /// UTF-8): it goes to the dead letters with `reason`, its payload unknown.
    Unreadable { sequence: u64, connection_id: u64, received_at_ms: u64, size: usize, reason: String },
}

/// Data frames that were ready on the socket at the same moment.
#[derive(Debug)]
pub struct Frames {
    pub connection_id: u64,
    pub frames: Vec<Frame>,
    /// Their place in the socket's bounded queue, given back once they are taken (`None`
    /// when read back from the buffer's log).
    pub _queued: Option<OwnedSemaphorePermit>,
}

/// One received data frame.
#[derive(Debug)]
pub struct Frame {
    pub sequence: u64,
    pub kind: FrameKind,
    pub payload: bytes::Bytes,
    pub received_at_ms: u64,
}

/// The channels between the source and the rest of the pipeline.
pub struct SourceLinks {
    pub events: mpsc::Sender<SourceEvent>,
    pub outbound: mpsc::UnboundedReceiver<Outbound>,
    pub shutdown: watch::Receiver<bool>,
}

/// Runs the source to its end, numbering frames and connections on from `start`. Only a
/// batch run that never connected is an error.
pub async fn run(
    config: &SourceConfig,
    tls: Option<&Arc<ClientConfig>>,
    mut links: SourceLinks,
    counters: &Counters,
    start: SourceStart,
) -> Result<(), ConnectError> {
    let queue = Arc::new(Semaphore::new(MAX_QUEUED_BYTES));
    let mut backoff = Backoff::new(config.reconnect);
    let mut next_sequence = start.next_sequence;
    let mut last_message = Instant::now();
    let mut connection_id = start.last_connection;
    let mut connected_once = false;
    let mut short_sessions = 0;
    loop {
        if *links.shutdown.borrow() {
            return Ok(());
        }
        let attempt = tokio::select! {
            attempt = connect::connect(config, tls) => attempt,
            _ = links.shutdown.changed() => return Ok(()),
        };
        let socket = match attempt {
            Ok(socket) => socket,
            Err(err) => {
                Counters::add(&counters.connect_failures, 1);
                if config.mode == Mode::Batch && !connected_once {
                    return Err(err);
                }
                if config.mode == Mode::Batch && last_message.elapsed() >= config.idle_timeout {
                    tracing::info!(error = %err, "Batch drained: the server is gone and the idle timeout passed.");
                    return Ok(());
                }
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "Connection attempt failed.");
                if wait_or_shutdown(delay, &mut links.shutdown).await {
                    return Ok(());
                }
                continue;
            }
        };
        connection_id += 1;
        Counters::add(&counters.connections, 1);
        if connected_once {
            Counters::add(&counters.reconnects, 1);
        }
        connected_once = true;
        tracing::info!(url = %config.redacted_url, connection_id, "Connected.");
        let started = Instant::now();
        let ctx = SessionContext {
            config,
            events: &links.events,
            outbound: &mut links.outbound,
            queue: &queue,
            counters,
            next_sequence: &mut next_sequence,
            last_message: &mut last_message,
            shutdown: &mut links.shutdown,
        };
        Counters::set(&counters.connected, 1);
        let end = Session::new(ctx, socket, connection_id).run().await;
        Counters::set(&counters.connected, 0);
        let reason = match end {
            SessionEnd::Shutdown | SessionEnd::PipelineGone => return Ok(()),
            SessionEnd::Idle => {
                tracing::info!(
                    idle_seconds = config.idle_timeout.as_secs_f64(),
                    "Batch drained: no message within the idle timeout."
                );
                return Ok(());
            }
            SessionEnd::ClosedByServer { code, reason } if config.mode == Mode::Batch => {
                tracing::info!(code, reason = %reason, "Batch drained: the server closed the stream.");
                return Ok(());
            }
            SessionEnd::ClosedByServer { code, reason } => format!("closed by the server (code {code}, {reason:?})"),
            SessionEnd::Dropped { reason } => reason,
        };
        if started.elapsed() >= HEALTHY_SESSION {
            backoff.reset();
            short_sessions = 0;
        } else {
            short_sessions += 1;
        }
        let delay = backoff.next_delay();
        if short_sessions >= DROPS_BEFORE_HINT {
            tracing::warn!(
                reason = %reason, retry_in_ms = delay.as_millis() as u64, short_sessions,
                "Connection drops repeatedly; check idle timeouts, keepalive settings, and proxy or firewall behavior between the runner and server."
            );
        } else {
            tracing::warn!(reason = %reason, retry_in_ms = delay.as_millis() as u64, "Connection lost; reconnecting.");
        }
        if wait_or_shutdown(delay, &mut links.shutdown).await {
            return Ok(());
        }
    }
}

/// Sleeps for `delay`; true if shutdown came first.
async fn wait_or_shutdown(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = shutdown.changed() => true,
    }
}
