//! One live connection: reads frames into the pipeline, keeps the link alive with pings,
//! sends subscriptions, heartbeats and the transform's outbound messages, and says why
//! it ended.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::connect::Socket;
use super::keepalive::{Keepalive, KeepaliveAction};
use super::{Frame, Frames, SourceEvent};
use crate::config::SourceConfig;
use crate::metrics::Counters;
use crate::runtime::{FrameKind, Outbound};

/// Bytes of frames between the socket and the shaper; when full, reading pauses.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;
/// Frames already waiting on the socket are handed over together, up to these bounds.
const MAX_FRAMES_PER_EVENT: usize = 256;
const MAX_BYTES_PER_EVENT: usize = 256 << 10;

/// Why a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Shutdown was requested; a close frame was sent.
    Shutdown,
    /// Batch mode: no message for `idle_timeout_seconds`.
    Idle,
    /// The server sent a close frame.
    ClosedByServer { code: u16, reason: String },
    /// The link broke, went silent, or sent something unusable.
    Dropped { reason: String },
    /// The pipeline behind the source stopped.
    PipelineGone,
}

/// What the session shares with the source across reconnects.
pub struct SessionContext<'a> {
    pub config: &'a SourceConfig,
    pub events: &'a mpsc::Sender<SourceEvent>,
    pub outbound: &'a mut mpsc::UnboundedReceiver<Outbound>,
    pub queue: &'a Arc<Semaphore>,
    pub counters: &'a Counters,
    pub next_sequence: &'a mut u64,
    pub last_message: &'a mut Instant,
    pub shutdown: &'a mut watch::Receiver<bool>,
}

pub struct Session<'a> {
    ctx: SessionContext<'a>,
    socket: Socket,
    connection_id: u64,
    keepalive: Option<Keepalive>,
    heartbeat_at: Option<Instant>,
    /// A control message or error read while gathering data frames, handled next.
    held: Option<Option<Result<Message, WsError>>>,
}

impl<'a> Session<'a> {
    pub fn new(ctx: SessionContext<'a>, socket: Socket, connection_id: u64) -> Self {
        let now = Instant::now();
        let keepalive = ctx.config.ping_interval.map(|interval| Keepalive::new(interval, ctx.config.pong_timeout, now));
        let heartbeat_at = ctx.config.heartbeat.as_ref().map(|(_, every)| now + *every);
        Self { ctx, socket, connection_id, keepalive, heartbeat_at, held: None }
    }

    pub async fn run(mut self) -> SessionEnd {
        if let Err(end) = self.send_initial_messages().await {
            return end;
        }
        loop {
            if let Some(message) = self.held.take() {
                if let Err(end) = self.handle_message(message).await {
                    return end;
                }
                continue;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let keepalive_at = self.keepalive.as_ref().map_or(far, Keepalive::deadline);
            let heartbeat_at = self.heartbeat_at.unwrap_or(far);
            let idle_at = match self.ctx.config.mode {
                crate::runtime::Mode::Batch => *self.ctx.last_message + self.ctx.config.idle_timeout,
                crate::runtime::Mode::Stream => far,
            };
            let step = tokio::select! {
                biased;
                _ = self.ctx.shutdown.changed() => Err(self.close().await),
                _ = self.ctx.events.closed() => Err(SessionEnd::PipelineGone),
                message = self.socket.next() => self.handle_message(message).await,
                _ = sleep_until(keepalive_at) => self.keepalive_due().await,
                _ = sleep_until(heartbeat_at) => self.send_heartbeat().await,
                Some(outbound) = self.ctx.outbound.recv() => self.send(outbound_message(outbound)).await,
                _ = sleep_until(idle_at) => Err(SessionEnd::Idle),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// The transform's on-connect messages, then the configured subscriptions.
    async fn send_initial_messages(&mut self) -> Result<(), SessionEnd> {
        let (reply, answer) = oneshot::channel();
        let connected = SourceEvent::Connected { connection_id: self.connection_id, reply };
        self.ctx.events.send(connected).await.map_err(|_| SessionEnd::PipelineGone)?;
        let from_transform = answer.await.map_err(|_| SessionEnd::PipelineGone)?;
        for outbound in from_transform {
            self.send(outbound_message(outbound)).await?;
        }
        for subscription in self.ctx.config.subscribe.clone() {
            self.send(Message::text(subscription)).await?;
        }
        Ok(())
    }

    async fn handle_message(&mut self, message: Option<Result<Message, WsError>>) -> Result<(), SessionEnd> {
        if let Some(keepalive) = &mut self.keepalive {
            keepalive.record_activity();
        }
        let message = match message {
            None => return Err(SessionEnd::Dropped { reason: "the connection ended without a close frame".into() }),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                let reason = format!("message of {size} bytes is over source.max_message_bytes ({max_size})");
                self.unreadable(size, reason).await?;
                return Err(SessionEnd::Dropped { reason: format!("a message of {size} bytes was over the limit") });
            }
            Some(Err(WsError::Utf8(detail))) => {
                let reason = format!(
                    "a text message is not valid UTF-8 ({detail}), against RFC 6455; its size and payload are unknown"
                );
                self.unreadable(0, reason).await?;
                return Err(SessionEnd::Dropped { reason: format!("a text message was not valid UTF-8: {detail}") });
            }
            Some(Err(err)) => return Err(SessionEnd::Dropped { reason: err.to_string() }),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Text(text) => self.forward(FrameKind::Text, text.into()).await,
            Message::Binary(bytes) => self.forward(FrameKind::Binary, bytes).await,
            // tungstenite queues the pong itself; it goes out on the next write or flush.
            Message::Ping(_) => self.socket.flush().await.map_err(dropped),
            Message::Pong(_) | Message::Frame(_) => Ok(()),
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                tracing::info!(code, reason = %reason, "Connection closed by the server.");
                Err(SessionEnd::ClosedByServer { code, reason })
            }
        }
    }

    /// Hands the pipeline this frame and every data frame already waiting behind it, as one
    /// event, after waiting for room in the queue: this wait is the backpressure that slows
    /// the socket when the destination is slow.
    async fn forward(&mut self, kind: FrameKind, payload: bytes::Bytes) -> Result<(), SessionEnd> {
        let received_at_ms = now_ms();
        *self.ctx.last_message = Instant::now();
        let mut bytes = payload.len();
        let mut frames = vec![Frame { sequence: self.take_sequence(), kind, payload, received_at_ms }];
        while frames.len() < MAX_FRAMES_PER_EVENT && bytes < MAX_BYTES_PER_EVENT {
            // Polled with this task's own waker: `now_or_never` would swap a no-op waker in
            // and out of the stream at every message.
            let ready = std::future::poll_fn(|cx| Poll::Ready(self.socket.poll_next_unpin(cx))).await;
            let (kind, payload) = match ready {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(Message::Text(text)))) => (FrameKind::Text, text.into()),
                Poll::Ready(Some(Ok(Message::Binary(binary)))) => (FrameKind::Binary, binary),
                Poll::Ready(other) => {
                    self.held = Some(other);
                    break;
                }
            };
            bytes += payload.len();
            frames.push(Frame { sequence: self.take_sequence(), kind, payload, received_at_ms });
        }
        Counters::add(&self.ctx.counters.frames_received, frames.len() as u64);
        Counters::add(&self.ctx.counters.bytes_received, bytes as u64);
        let permits = u32::try_from(bytes.clamp(1, MAX_QUEUED_BYTES)).expect("MAX_QUEUED_BYTES fits u32");
        let queued =
            Arc::clone(self.ctx.queue).acquire_many_owned(permits).await.map_err(|_| SessionEnd::PipelineGone)?;
        let event = Frames { connection_id: self.connection_id, frames, _queued: Some(queued) };
        self.ctx.events.send(SourceEvent::Frames(event)).await.map_err(|_| SessionEnd::PipelineGone)
    }

    async fn unreadable(&mut self, size: usize, reason: String) -> Result<(), SessionEnd> {
        Counters::add(&self.ctx.counters.frames_received, 1);
        Counters::add(&self.ctx.counters.bytes_received, size as u64);
        let sequence = self.take_sequence();
        let event = SourceEvent::Unreadable {
            sequence,
            connection_id: self.connection_id,
            received_at_ms: now_ms(),
            size,
            reason,
        };
        self.ctx.events.send(event).await.map_err(|_| SessionEnd::PipelineGone)
    }

    fn take_sequence(&mut self) -> u64 {
        let sequence = *self.ctx.next_sequence;
        *self.ctx.next_sequence += 1;
        sequence
    }

    async fn keepalive_due(&mut self) -> Result<(), SessionEnd> {
        let Some(keepalive) = &mut self.keepalive else { return Ok(()) };
        match keepalive.on_deadline(Instant::now()) {
            Some(KeepaliveAction::SendPing) => self.send(Message::Ping(bytes::Bytes::new())).await,
            Some(KeepaliveAction::Dead { silent_for }) => Err(SessionEnd::Dropped {
                reason: format!(
                    "no pong or message for {:.1} s after a ping (source.pong_timeout_seconds)",
                    silent_for.as_secs_f64()
                ),
            }),
            None => Ok(()),
        }
    }

    async fn send_heartbeat(&mut self) -> Result<(), SessionEnd> {
        let Some((message, every)) = self.ctx.config.heartbeat.clone() else { return Ok(()) };
        self.heartbeat_at = Some(Instant::now() + every);
        self.send(Message::text(message)).await
    }

    async fn send(&mut self, message: Message) -> Result<(), SessionEnd> {
        self.socket.send(message).await.map_err(dropped)
    }

    /// Says goodbye properly: a close frame, then a short wait for the server's answer.
    async fn close(&mut self) -> SessionEnd {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "skippr is shutting down".into() };
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close(Some(frame))).await;
        SessionEnd::Shutdown
    }
}

fn dropped(err: WsError) -> SessionEnd {
    SessionEnd::Dropped { reason: err.to_string() }
}

fn outbound_message(outbound: Outbound) -> Message {
    match outbound {
        Outbound::Text(text) => Message::text(text),
        Outbound::Binary(bytes) => Message::binary(bytes),
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}
