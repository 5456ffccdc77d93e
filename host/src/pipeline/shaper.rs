//! The shaper loop: owns the transform instance on a blocking thread (a busy guest never
//! stalls the socket), packs frames into lists, and routes what comes out.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::recipe::Recipe;
use super::writer::SinkItem;
use crate::config::OnTransformError;
use crate::deadletter::{DeadLetter, FrameInfo};
use crate::metrics::Counters;
use crate::runtime::{CallError, FrameList, Outbound, Output, ShaperInstance, Transform};
use crate::source::{Frames, SourceEvent, now_ms};

/// A push holds at most this many frames...
const MAX_PUSH_FRAMES: usize = 1024;
/// ...and this many payload bytes (a larger single frame goes alone): the guest's memory
/// cap also covers the copy of its arguments.
const MAX_PUSH_BYTES: usize = 1 << 20;
/// How often time-based batching gets a `tick` when no frames arrive.
const TICK_EVERY: Duration = Duration::from_millis(50);

/// A failed transform, and how many frames it held that are now lost.
pub type ShaperFailure = (CallError, u64);

/// After this many failures in a row (no successful push between), restarting stops.
const MAX_RESTARTS_IN_A_ROW: u32 = 3;
/// An instance whose linear memory reached this share of its cap (in percent) is replaced
/// by a fresh one at the next batch boundary: linear memory never shrinks, and some guests
/// (JavaScript under componentize-js) collect no garbage between calls, so they would
/// otherwise hit the cap mid-call and lose frames.
const RECYCLE_AT_PERCENT: usize = 75;

pub struct ShaperLoop {
    pub instance: ShaperInstance,
    /// The component `instance` was made from.
    pub transform: Transform,
    pub recipe: Recipe,
    pub policy: OnTransformError,
    pub url: String,
    pub sink: mpsc::Sender<SinkItem>,
    pub outbound: mpsc::UnboundedSender<Outbound>,
    /// New components to switch to at the next batch boundary.
    pub swaps: Receiver<Transform>,
    pub counters: Arc<Counters>,
}

/// The loop's working state beside the instance.
#[derive(Default)]
struct Pending {
    frames: FrameList,
    /// The connection the frames in `frames` came from.
    connection_id: u64,
    /// An event read while filling a list that must wait for the list's push.
    held: Option<SourceEvent>,
    /// Frames pushed into the guest minus frames it has returned as records, rejections or
    /// drops.
    in_guest: u64,
    restarts_in_a_row: u32,
    /// The instance's busy time already added to the counters.
    busy_reported: Duration,
}

impl Pending {
    /// Packs frames into the list for the next push.
    fn take(&mut self, ready: &Frames) {
        for frame in &ready.frames {
            self.frames.push(frame.sequence, frame.kind, &frame.payload, ready.received_at_ms);
        }
    }
}

impl ShaperLoop {
    /// Runs until the source is done, then flushes the transform.
    pub fn run(self, events: mpsc::Receiver<SourceEvent>, handle: &Handle) -> Result<(), ShaperFailure> {
        Running { shaper: self, pending: Pending::default(), ticked_at: Instant::now() }.run(events, handle)
    }
}

struct Running {
    shaper: ShaperLoop,
    pending: Pending,
    /// A steady flow must not keep time-based batching from its ticks.
    ticked_at: Instant,
}

impl Running {
    fn run(mut self, mut events: mpsc::Receiver<SourceEvent>, handle: &Handle) -> Result<(), ShaperFailure> {
        // Timers made on this thread need the runtime's context.
        let _runtime = handle.enter();
        loop {
            if self.shaper.sink.is_closed() {
                // The writer failed: stop taking frames so the source ends too; the writer's
                // error says why.
                return Ok(());
            }
            if let Ok(transform) = self.shaper.swaps.try_recv() {
                self.swap(transform)?;
            }
            let event = match self.pending.held.take() {
                Some(event) => Some(event),
                None => match handle.block_on(tokio::time::timeout(TICK_EVERY, events.recv())) {
                    Ok(event) => event,
                    Err(_elapsed) => {
                        self.tick()?;
                        continue;
                    }
                },
            };
            match event {
                None => break,
                Some(SourceEvent::Frames(ready)) => {
                    self.pending.connection_id = ready.connection_id;
                    self.pending.take(&ready);
                    self.fill(&mut events);
                    self.push()?;
                    if self.ticked_at.elapsed() >= TICK_EVERY {
                        self.tick()?;
                    }
                }
                Some(SourceEvent::Connected { connection_id, reply }) => {
                    self.pending.connection_id = connection_id;
                    let outbound = match self.shaper.instance.on_connect(connection_id) {
                        Ok(outbound) => outbound,
                        Err(err) => {
                            self.recover(err)?;
                            self.shaper.instance.on_connect(connection_id).map_err(|err| self.failed(err))?
                        }
                    };
                    let _ = reply.send(outbound);
                }
                Some(SourceEvent::Oversized { sequence, connection_id, size, limit, received_at_ms }) => {
                    let reason = format!("message of {size} bytes is over source.max_message_bytes ({limit})");
                    let info = FrameInfo { sequence, connection_id, received_at_ms, kind: None, size };
                    self.send(SinkItem::DeadLetter(DeadLetter::new(&reason, &self.shaper.url, info, None).to_line()));
                }
            }
        }
        self.call(ShaperInstance::flush)?;
        if self.pending.in_guest > 0 {
            tracing::warn!(
                frames = self.pending.in_guest,
                "The transform kept frames without returning a record or a rejection for them."
            );
        }
        Ok(())
    }

    /// Takes whatever frames are already waiting, up to the push bounds (which one event
    /// may overshoot by its own bounds).
    fn fill(&mut self, events: &mut mpsc::Receiver<SourceEvent>) {
        let pending = &mut self.pending;
        while pending.frames.len() < MAX_PUSH_FRAMES && pending.frames.payload_bytes() < MAX_PUSH_BYTES {
            match events.try_recv() {
                Ok(SourceEvent::Frames(ready)) if ready.connection_id == pending.connection_id => pending.take(&ready),
                Ok(other) => {
                    pending.held = Some(other);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    fn push(&mut self) -> Result<(), ShaperFailure> {
        let count = self.pending.frames.len() as u64;
        self.pending.in_guest += count;
        let pushed = self.shaper.instance.push(&self.pending.frames, now_ms());
        self.report_guest_use();
        let output = match pushed {
            Ok(output) => output,
            Err(err) => {
                // These frames are still ours: dead-letter them rather than lose them.
                let reason = format!("the transform failed: {err}");
                self.pending.in_guest -= count;
                for &sequence in self.pending.frames.sequences() {
                    self.reject(sequence, &reason);
                }
                self.pending.frames.clear();
                return self.recover(err);
            }
        };
        self.pending.restarts_in_a_row = 0;
        for rejection in &output.rejections {
            self.reject(rejection.sequence, &rejection.reason);
        }
        let settled = output.rejections.len() + output.dropped.len();
        self.pending.in_guest = self.pending.in_guest.saturating_sub(settled as u64);
        Counters::add(&self.shaper.counters.frames_dropped, output.dropped.len() as u64);
        self.deliver(Output { rejections: Vec::new(), dropped: Vec::new(), ..output });
        self.pending.frames.clear();
        self.recycle_if_swollen()
    }

    /// Replaces an instance close to its memory cap with a fresh one of the same transform.
    fn recycle_if_swollen(&mut self) -> Result<(), ShaperFailure> {
        let (used, cap) = (self.shaper.instance.memory_bytes(), self.shaper.recipe.memory_bytes());
        if used * 100 < cap * RECYCLE_AT_PERCENT {
            return Ok(());
        }
        match self.shaper.recipe.instantiate(&self.shaper.transform, self.pending.connection_id) {
            Ok(instance) => {
                self.switch_at_batch_boundary(instance)?;
                tracing::info!(
                    memory_bytes = used,
                    cap_bytes = cap,
                    "Transform instance recycled near its memory cap."
                );
                Counters::add(&self.shaper.counters.transform_recycles, 1);
            }
            Err(err) => tracing::warn!(error = %err, "Cannot recycle the transform instance; the running one stays."),
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), ShaperFailure> {
        self.ticked_at = Instant::now();
        self.call(|instance| instance.tick(now_ms()))
    }

    /// Runs a call that takes no frames (tick, flush) and delivers what it returns.
    fn call(&mut self, run: impl Fn(&mut ShaperInstance) -> Result<Output, CallError>) -> Result<(), ShaperFailure> {
        let result = run(&mut self.shaper.instance);
        self.report_guest_use();
        match result {
            Ok(output) => {
                self.deliver(output);
                Ok(())
            }
            Err(err) => self.recover(err),
        }
    }

    /// Switches to a new component at a batch boundary: the old instance is flushed and its
    /// records delivered before the new one takes the next frame.
    fn swap(&mut self, transform: Transform) -> Result<(), ShaperFailure> {
        let instance = match self.shaper.recipe.instantiate(&transform, self.pending.connection_id) {
            Ok(instance) => instance,
            Err(err) => {
                tracing::error!(error = %err, "New transform refused at the swap; the running one stays.");
                return Ok(());
            }
        };
        self.switch_at_batch_boundary(instance)?;
        tracing::info!(transform = transform.name(), "Transform swapped at a batch boundary.");
        self.shaper.transform = transform;
        Counters::add(&self.shaper.counters.transform_swaps, 1);
        Ok(())
    }

    /// Flushes the running instance, delivering its records, then puts `instance` in its place.
    fn switch_at_batch_boundary(&mut self, instance: ShaperInstance) -> Result<(), ShaperFailure> {
        self.call(ShaperInstance::flush)?;
        self.replace_instance(instance);
        Ok(())
    }

    /// After a failed call: restart the transform if the policy says so, else stop.
    fn recover(&mut self, err: CallError) -> Result<(), ShaperFailure> {
        let lost = std::mem::take(&mut self.pending.in_guest);
        Counters::add(&self.shaper.counters.frames_lost, lost);
        let restartable =
            self.shaper.policy == OnTransformError::Restart && self.pending.restarts_in_a_row < MAX_RESTARTS_IN_A_ROW;
        if !restartable {
            tracing::error!(error = %err, frames_lost = lost, "The transform failed; stopping this pipeline.");
            return Err((err, lost));
        }
        match self.shaper.recipe.instantiate(&self.shaper.transform, self.pending.connection_id) {
            Ok(instance) => {
                self.pending.restarts_in_a_row += 1;
                Counters::add(&self.shaper.counters.transform_restarts, 1);
                tracing::error!(error = %err, frames_lost = lost, "The transform failed; restarted it (on_transform_error: restart).");
                self.replace_instance(instance);
                Ok(())
            }
            Err(again) => {
                tracing::error!(error = %again, "The transform cannot be restarted; stopping this pipeline.");
                Err((err, lost))
            }
        }
    }

    fn failed(&self, err: CallError) -> ShaperFailure {
        tracing::error!(error = %err, "The restarted transform failed at once; stopping this pipeline.");
        (err, 0)
    }

    fn report_guest_use(&mut self) {
        let counters = &self.shaper.counters;
        let busy = self.shaper.instance.busy();
        let new_busy = busy.saturating_sub(std::mem::replace(&mut self.pending.busy_reported, busy));
        Counters::add(&counters.guest_busy_micros, new_busy.as_micros() as u64);
        Counters::set(&counters.guest_memory_bytes, self.shaper.instance.memory_bytes() as u64);
    }

    /// Puts a fresh instance in place of the current one.
    fn replace_instance(&mut self, instance: ShaperInstance) {
        self.shaper.instance = instance;
        self.pending.busy_reported = Duration::ZERO;
    }

    /// Sends batches to the writer and outbound messages to the socket.
    fn deliver(&mut self, output: Output) {
        for message in output.outbound {
            let _ = self.shaper.outbound.send(message);
        }
        for batch in output.batches {
            self.pending.in_guest = self.pending.in_guest.saturating_sub(distinct_sequences(&batch.record_sequences));
            self.send(SinkItem::Records(batch));
        }
    }

    fn reject(&self, sequence: u64, reason: &str) {
        let Some((kind, payload, received_at_ms)) = self.pending.frames.find(sequence) else {
            tracing::warn!(sequence, "The transform rejected a frame it was not given; ignored.");
            return;
        };
        let connection_id = self.pending.connection_id;
        let info = FrameInfo { sequence, connection_id, received_at_ms, kind: Some(kind), size: payload.len() };
        self.send(SinkItem::DeadLetter(DeadLetter::new(reason, &self.shaper.url, info, Some(payload)).to_line()));
    }

    /// Hands an item to the writer; if the writer is gone, its own error ends the run.
    fn send(&self, item: SinkItem) {
        let _ = self.shaper.sink.blocking_send(item);
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
