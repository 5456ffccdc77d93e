//! The shaper loop: owns the transform instance on a blocking thread (a busy guest never
//! stalls the socket), packs frames into lists, and routes what comes out.

use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::writer::SinkItem;
use crate::deadletter::{DeadLetter, FrameInfo};
use crate::runtime::{CallError, FrameList, Outbound, Output, ShaperInstance};
use crate::source::{SourceEvent, now_ms};

/// A push holds at most this many frames...
const MAX_PUSH_FRAMES: usize = 1024;
/// ...and this many payload bytes (a larger single frame goes alone): the guest's memory
/// cap also covers the copy of its arguments.
const MAX_PUSH_BYTES: usize = 1 << 20;
/// How often time-based batching gets a `tick` when no frames arrive.
const TICK_EVERY: Duration = Duration::from_millis(50);

/// A failed transform, and how many frames it held that are now lost.
pub type ShaperFailure = (CallError, u64);

pub struct ShaperLoop {
    instance: ShaperInstance,
    url: String,
    sink: mpsc::Sender<SinkItem>,
    outbound: mpsc::UnboundedSender<Outbound>,
    frames: FrameList,
    /// The connection the frames in `frames` came from.
    connection_id: u64,
    /// An event read while filling a list that must wait for the list's push.
    held: Option<SourceEvent>,
    /// Frames pushed into the guest minus frames it has returned as records or rejections.
    in_guest: u64,
}

impl ShaperLoop {
    pub fn new(
        instance: ShaperInstance,
        url: &str,
        sink: mpsc::Sender<SinkItem>,
        outbound: mpsc::UnboundedSender<Outbound>,
    ) -> Self {
        let url = url.to_owned();
        Self { instance, url, sink, outbound, frames: FrameList::default(), connection_id: 0, held: None, in_guest: 0 }
    }

    /// Runs until the source is done, then flushes the transform.
    pub fn run(mut self, mut events: mpsc::Receiver<SourceEvent>, handle: &Handle) -> Result<(), ShaperFailure> {
        loop {
            let event = match self.held.take() {
                Some(event) => Some(event),
                None => match handle.block_on(tokio::time::timeout(TICK_EVERY, events.recv())) {
                    Ok(event) => event,
                    Err(_elapsed) => {
                        let output = self.instance.tick(now_ms()).map_err(|err| self.failed(err))?;
                        self.deliver(output);
                        continue;
                    }
                },
            };
            match event {
                None => break,
                Some(SourceEvent::Frame(frame)) => {
                    self.connection_id = frame.connection_id;
                    self.frames.push(frame.sequence, frame.kind, &frame.payload, frame.received_at_ms);
                    self.fill(&mut events);
                    self.push()?;
                }
                Some(SourceEvent::Connected { connection_id, reply }) => {
                    let outbound = self.instance.on_connect(connection_id).map_err(|err| self.failed(err))?;
                    let _ = reply.send(outbound);
                }
                Some(SourceEvent::Oversized { sequence, connection_id, size, limit, received_at_ms }) => {
                    let reason = format!("message of {size} bytes is over source.max_message_bytes ({limit})");
                    let info = FrameInfo { sequence, connection_id, received_at_ms, kind: None, size };
                    self.dead_letter(&DeadLetter::new(&reason, &self.url, info, None));
                }
            }
        }
        let output = self.instance.flush().map_err(|err| self.failed(err))?;
        self.deliver(output);
        if self.in_guest > 0 {
            tracing::warn!(
                frames = self.in_guest,
                "The transform kept frames without returning a record or a rejection for them."
            );
        }
        Ok(())
    }

    /// Takes whatever frames are already waiting, up to the push bounds.
    fn fill(&mut self, events: &mut mpsc::Receiver<SourceEvent>) {
        while self.frames.len() < MAX_PUSH_FRAMES && self.frames.payload_bytes() < MAX_PUSH_BYTES {
            match events.try_recv() {
                Ok(SourceEvent::Frame(frame)) if frame.connection_id == self.connection_id => {
                    self.frames.push(frame.sequence, frame.kind, &frame.payload, frame.received_at_ms);
                }
                Ok(other) => {
                    self.held = Some(other);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    fn push(&mut self) -> Result<(), ShaperFailure> {
        self.in_guest += self.frames.len() as u64;
        let output = match self.instance.push(&self.frames, now_ms()) {
            Ok(output) => output,
            Err(err) => {
                // These frames are still ours: dead-letter them rather than lose them.
                let reason = format!("the transform failed: {err}");
                self.in_guest -= self.frames.len() as u64;
                for &sequence in self.frames.sequences() {
                    self.reject(sequence, &reason);
                }
                self.frames.clear();
                return Err(self.failed(err));
            }
        };
        for rejection in &output.rejections {
            self.reject(rejection.sequence, &rejection.reason);
        }
        self.in_guest = self.in_guest.saturating_sub(output.rejections.len() as u64);
        self.deliver(Output { rejections: Vec::new(), ..output });
        self.frames.clear();
        Ok(())
    }

    /// Sends batches to the writer and outbound messages to the socket.
    fn deliver(&mut self, output: Output) {
        for message in output.outbound {
            let _ = self.outbound.send(message);
        }
        for batch in output.batches {
            self.in_guest = self.in_guest.saturating_sub(distinct_sequences(&batch.record_sequences));
            if self.sink.blocking_send(SinkItem::Records(batch)).is_err() {
                return;
            }
        }
    }

    fn reject(&self, sequence: u64, reason: &str) {
        let Some((kind, payload, received_at_ms)) = self.frames.find(sequence) else {
            tracing::warn!(sequence, "The transform rejected a frame it was not given; ignored.");
            return;
        };
        let info = FrameInfo {
            sequence,
            connection_id: self.connection_id,
            received_at_ms,
            kind: Some(kind),
            size: payload.len(),
        };
        let line = DeadLetter::new(reason, &self.url, info, Some(payload)).to_line();
        let _ = self.sink.blocking_send(SinkItem::DeadLetter(line));
    }

    fn dead_letter(&self, letter: &DeadLetter<'_>) {
        let _ = self.sink.blocking_send(SinkItem::DeadLetter(letter.to_line()));
    }

    fn failed(&self, err: CallError) -> ShaperFailure {
        tracing::error!(error = %err, frames_lost = self.in_guest, "The transform failed; stopping this pipeline.");
        (err, self.in_guest)
    }
}

/// Records from one frame share its sequence; count frames, not records.
fn distinct_sequences(sequences: &[u64]) -> u64 {
    let mut count = 0;
    let mut last = None;
    for &sequence in sequences {
        if last != Some(sequence) {
            count += 1;
            last = Some(sequence);
        }
    }
    count
}
