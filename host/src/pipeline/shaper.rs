//! The shaper loop: owns the transform instance on a blocking thread (a busy guest never
//! stalls the socket), packs frames into lists, and routes what comes out.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::held::{HeldFrame, HeldFrames};
use super::recipe::Recipe;
use super::writer::SinkItem;
use crate::buffer::Intake;
use crate::config::OnTransformError;
use crate::deadletter::{DeadLetter, FrameInfo};
use crate::metrics::Counters;
use crate::runtime::{CallError, Failure, FrameList, Outbound, Output, ShaperInstance, Transform};
use crate::source::{Frames, SourceEvent, now_ms};

/// A push holds at most this many frames...
const MAX_PUSH_FRAMES: usize = 1024;
/// ...and this many payload bytes (a larger single frame goes alone): the guest's memory
/// cap also covers the copy of its arguments.
const MAX_PUSH_BYTES: usize = 1 << 20;
/// How often time-based batching gets a `tick` when no frames arrive.
const TICK_EVERY: Duration = Duration::from_millis(50);

/// The host keeps frames the transform has not returned; past this many payload bytes
/// the transform counts as failed (it would otherwise grow the host without bound).
const MAX_HELD_BYTES: usize = 32 << 20;

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
    /// The connection the instance was last told of: frames replayed from the buffer can
    /// come from an earlier one than the open connection.
    instance_connection: u64,
    /// An event read while filling a list that must wait for the list's push.
    held: Option<SourceEvent>,
    /// Frames pushed into the guest that it has not returned as records, rejections or
    /// drops.
    in_guest: HeldFrames,
    restarts_in_a_row: u32,
    /// The instance's busy time already added to the counters.
    busy_reported: Duration,
}

impl Pending {
    /// Packs frames into the list for the next push.
    fn take(&mut self, ready: &Frames) {
        for frame in &ready.frames {
            self.frames.push(frame.sequence, frame.kind, &frame.payload, frame.received_at_ms);
        }
    }
}

impl ShaperLoop {
    /// Runs until the source is done, then flushes the transform.
    pub fn run(self, events: Intake, handle: &Handle) -> Result<(), CallError> {
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
    fn run(mut self, mut events: Intake, handle: &Handle) -> Result<(), CallError> {
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
                None => match handle.block_on(tokio::time::timeout(TICK_EVERY, events.next())) {
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
                    let _ = reply.send(self.connect(connection_id)?);
                }
                Some(SourceEvent::Unreadable { sequence, connection_id, received_at_ms, size, reason }) => {
                    let info = FrameInfo { sequence, connection_id, received_at_ms, kind: None, size };
                    let line = DeadLetter::new(&reason, &self.shaper.url, info, None).to_line();
                    self.send(SinkItem::DeadLetter { sequence, line });
                }
            }
        }
        self.call(ShaperInstance::flush)?;
        if !self.pending.in_guest.is_empty() {
            tracing::warn!(
                frames = self.pending.in_guest.len(),
                "The transform kept frames past its flush; they are dead-lettered."
            );
            self.dead_letter_held("the transform kept this frame past its flush");
        }
        Ok(())
    }

    /// Takes whatever frames are already waiting, up to the push bounds (which one event
    /// may overshoot by its own bounds).
    fn fill(&mut self, events: &mut Intake) {
        let pending = &mut self.pending;
        while pending.frames.len() < MAX_PUSH_FRAMES && pending.frames.payload_bytes() < MAX_PUSH_BYTES {
            match events.try_next() {
                Some(SourceEvent::Frames(ready)) if ready.connection_id == pending.connection_id => {
                    pending.take(&ready)
                }
                Some(other) => {
                    pending.held = Some(other);
                    return;
                }
                None => return,
            }
        }
    }

    /// Tells the instance of a connection; returns what to send on it first.
    fn connect(&mut self, connection_id: u64) -> Result<Vec<Outbound>, CallError> {
        let outbound = match self.shaper.instance.on_connect(connection_id) {
            Ok(outbound) => outbound,
            Err(err) => {
                self.recover(err)?;
                self.shaper.instance.on_connect(connection_id).map_err(|err| self.failed(err))?
            }
        };
        self.pending.instance_connection = connection_id;
        Ok(outbound)
    }

    fn push(&mut self) -> Result<(), CallError> {
        if self.pending.instance_connection != self.pending.connection_id {
            // Frames of an earlier connection, read back from the buffer: their records
            // carry that connection's id; its greeting was sent long ago.
            self.connect(self.pending.connection_id)?;
        }
        let pushed = self.shaper.instance.push(&self.pending.frames, now_ms());
        self.report_guest_use();
        self.pending.in_guest.hold(std::mem::take(&mut self.pending.frames), self.pending.connection_id);
        let output = match pushed {
            Ok(output) => output,
            Err(err) => return self.recover(err),
        };
        self.pending.restarts_in_a_row = 0;
        self.route(output);
        if self.pending.in_guest.bytes() > MAX_HELD_BYTES {
            let failure = Failure::HoldsTooMuch { frames: self.pending.in_guest.len(), limit_bytes: MAX_HELD_BYTES };
            return self.recover(CallError { instance: self.shaper.instance.name().to_owned(), call: "push", failure });
        }
        self.recycle_if_swollen()
    }

    /// Replaces an instance close to its memory cap with a fresh one of the same transform.
    fn recycle_if_swollen(&mut self) -> Result<(), CallError> {
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

    fn tick(&mut self) -> Result<(), CallError> {
        self.ticked_at = Instant::now();
        self.call(|instance| instance.tick(now_ms()))
    }

    /// Runs a call that takes no frames (tick, flush) and delivers what it returns.
    fn call(&mut self, run: impl Fn(&mut ShaperInstance) -> Result<Output, CallError>) -> Result<(), CallError> {
        let result = run(&mut self.shaper.instance);
        self.report_guest_use();
        match result {
            Ok(output) => {
                self.route(output);
                Ok(())
            }
            Err(err) => self.recover(err),
        }
    }

    /// Switches to a new component at a batch boundary: the old instance is flushed and its
    /// records delivered before the new one takes the next frame.
    fn swap(&mut self, transform: Transform) -> Result<(), CallError> {
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
    fn switch_at_batch_boundary(&mut self, instance: ShaperInstance) -> Result<(), CallError> {
        self.call(ShaperInstance::flush)?;
        self.replace_instance(instance);
        Ok(())
    }

    /// After a failed call: dead-letter the frames the instance held, then restart the
    /// transform if the policy says so, else stop.
    fn recover(&mut self, err: CallError) -> Result<(), CallError> {
        let held = self.pending.in_guest.len();
        self.dead_letter_held(&format!("the transform failed while holding this frame: {err}"));
        let restartable =
            self.shaper.policy == OnTransformError::Restart && self.pending.restarts_in_a_row < MAX_RESTARTS_IN_A_ROW;
        if !restartable {
            tracing::error!(error = %err, frames_dead_lettered = held, "The transform failed; stopping this pipeline.");
            return Err(err);
        }
        match self.shaper.recipe.instantiate(&self.shaper.transform, self.pending.connection_id) {
            Ok(instance) => {
                self.pending.restarts_in_a_row += 1;
                Counters::add(&self.shaper.counters.transform_restarts, 1);
                tracing::error!(error = %err, frames_dead_lettered = held, "The transform failed; restarted it (on_transform_error: restart).");
                self.replace_instance(instance);
                Ok(())
            }
            Err(again) => {
                tracing::error!(error = %again, "The transform cannot be restarted; stopping this pipeline.");
                Err(err)
            }
        }
    }

    fn failed(&self, err: CallError) -> CallError {
        tracing::error!(error = %err, "The restarted transform failed at once; stopping this pipeline.");
        err
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
        // Instantiated for `connection_id` (see `Recipe::instantiate`).
        self.pending.instance_connection = self.pending.connection_id;
    }

    /// Routes what a call returned: rejections to the dead letters, batches to the writer,
    /// outbound messages to the socket; each frame it names is no longer held.
    fn route(&mut self, output: Output) {
        for rejection in &output.rejections {
            self.reject(rejection.sequence, &rejection.reason);
        }
        if !output.dropped.is_empty() {
            self.settle(&output.dropped);
            Counters::add(&self.shaper.counters.frames_dropped, output.dropped.len() as u64);
            self.send(SinkItem::Dropped(output.dropped));
        }
        for message in output.outbound {
            let _ = self.shaper.outbound.send(message);
        }
        for batch in output.batches {
            self.settle(&batch.record_sequences);
            self.send(SinkItem::Records(batch));
        }
    }

    fn settle(&mut self, sequences: &[u64]) {
        // A frame's records are adjacent and share its sequence: settle it once.
        for (index, &sequence) in sequences.iter().enumerate() {
            if index == 0 || sequences[index - 1] != sequence {
                self.pending.in_guest.settle(sequence);
            }
        }
    }

    fn reject(&mut self, sequence: u64, reason: &str) {
        let Some(frame) = self.pending.in_guest.find(sequence) else {
            tracing::warn!(sequence, "The transform rejected a frame it was not given; ignored.");
            return;
        };
        let line = dead_letter_line(&self.shaper.url, &frame, reason);
        self.pending.in_guest.settle(sequence);
        self.send(SinkItem::DeadLetter { sequence, line });
    }

    /// Dead-letters every frame the instance still holds, with `reason`.
    fn dead_letter_held(&mut self, reason: &str) {
        let mut lines = Vec::new();
        let url = &self.shaper.url;
        self.pending.in_guest.drain(|frame| lines.push((frame.sequence, dead_letter_line(url, &frame, reason))));
        for (sequence, line) in lines {
            self.send(SinkItem::DeadLetter { sequence, line });
        }
    }

    /// Hands an item to the writer; if the writer is gone, its own error ends the run.
    fn send(&self, item: SinkItem) {
        let _ = self.shaper.sink.blocking_send(item);
    }
}

fn dead_letter_line(url: &str, frame: &HeldFrame<'_>, reason: &str) -> Vec<u8> {
    let info = FrameInfo {
        sequence: frame.sequence,
        connection_id: frame.connection_id,
        received_at_ms: frame.received_at_ms,
        kind: Some(frame.kind),
        size: frame.payload.len(),
    };
    DeadLetter::new(reason, url, info, Some(frame.payload)).to_line()
}
