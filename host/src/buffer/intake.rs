//! What the shaper reads: the source's events straight from memory, or the committed part
//! of the log (after a restart, first what the last run left unsettled).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::appender::Committed;
use super::log::{self, ReadError, Record, SegmentReader};
use super::recovery::Recovered;
use crate::metrics::Counters;
use crate::source::{Frame, Frames, SourceEvent};

/// Frames read together from the log are handed over as one event, up to these bounds.
const MAX_FRAMES_PER_EVENT: usize = 256;
const MAX_BYTES_PER_EVENT: usize = 256 << 10;

pub enum Intake {
    Memory { events: mpsc::Receiver<SourceEvent>, counters: Arc<Counters> },
    Disk(Box<LogReader>),
}

impl Intake {
    pub(super) fn memory(events: mpsc::Receiver<SourceEvent>, counters: Arc<Counters>) -> Self {
        Self::Memory { events, counters }
    }

    pub(super) fn disk(
        dir: &Path,
        committed: watch::Receiver<Committed>,
        control: mpsc::UnboundedReceiver<SourceEvent>,
        recovered: &Recovered,
    ) -> Self {
        let start = committed.borrow().segment;
        let checkpoint = &recovered.checkpoint;
        Self::Disk(Box::new(LogReader {
            dir: dir.to_path_buf(),
            segment: recovered.segments.first().map_or(start, |oldest| oldest.id),
            reader: None,
            committed,
            control,
            skip_below: checkpoint.next_unsettled,
            skip: checkpoint.settled_above.iter().copied().collect(),
            held: None,
            failed: false,
        }))
    }

    /// The next event; `None` once the source has ended and everything is read.
    pub async fn next(&mut self) -> Option<SourceEvent> {
        match self {
            Self::Memory { events, counters } => accepted(events.recv().await, counters),
            Self::Disk(reader) => reader.next().await,
        }
    }

    /// The next event if one is ready now.
    pub fn try_next(&mut self) -> Option<SourceEvent> {
        match self {
            Self::Memory { events, counters } => accepted(events.try_recv().ok(), counters),
            Self::Disk(reader) => reader.try_next(),
        }
    }
}

/// In memory a frame counts as accepted when the shaper takes it.
fn accepted(event: Option<SourceEvent>, counters: &Counters) -> Option<SourceEvent> {
    let frames = match &event {
        Some(SourceEvent::Frames(ready)) => ready.frames.len() as u64,
        Some(SourceEvent::Unreadable { .. }) => 1,
        _ => 0,
    };
    Counters::add(&counters.frames_accepted, frames);
    event
}

/// Reads committed records in order, skipping those an earlier run settled.
pub struct LogReader {
    dir: PathBuf,
    segment: u64,
    reader: Option<SegmentReader>,
    committed: watch::Receiver<Committed>,
    control: mpsc::UnboundedReceiver<SourceEvent>,
    skip_below: u64,
    skip: BTreeSet<u64>,
    /// A record read past the end of the event being gathered.
    held: Option<Record>,
    /// The log could not be read; the shaper stops taking frames and the error is logged.
    failed: bool,
}

impl LogReader {
    async fn next(&mut self) -> Option<SourceEvent> {
        loop {
            if let Some(event) = self.try_next() {
                return Some(event);
            }
            if self.failed {
                return None;
            }
            let committed = *self.committed.borrow_and_update();
            if !self.caught_up(committed) {
                // Committed more since `try_next` looked.
                continue;
            }
            if committed.closed {
                return self.control.try_recv().ok();
            }
            tokio::select! {
                changed = self.committed.changed() => if changed.is_err() {
                    // The appender stopped (its error is logged): read what it committed.
                    return self.try_next();
                },
                Some(event) = self.control.recv() => return Some(event),
            }
        }
    }

    fn try_next(&mut self) -> Option<SourceEvent> {
        if let Ok(event) = self.control.try_recv() {
            return Some(event);
        }
        let first = self.held.take().or_else(|| self.read())?;
        match first {
            Record::Unreadable { sequence, connection_id, received_at_ms, size, reason } => {
                Some(SourceEvent::Unreadable { sequence, connection_id, received_at_ms, size: size as usize, reason })
            }
            Record::Frame { connection_id, .. } => {
                let mut frames = Vec::new();
                let mut bytes = 0;
                let mut next = Some(first);
                while let Some(record) = next.take() {
                    match record {
                        Record::Frame { sequence, connection_id: from, received_at_ms, kind, payload }
                            if from == connection_id =>
                        {
                            bytes += payload.len();
                            frames.push(Frame { sequence, kind, payload, received_at_ms });
                        }
                        other => {
                            self.held = Some(other);
                            break;
                        }
                    }
                    if frames.len() < MAX_FRAMES_PER_EVENT && bytes < MAX_BYTES_PER_EVENT {
                        next = self.read();
                    }
                }
                Some(SourceEvent::Frames(Frames { connection_id, frames, _queued: None }))
            }
            Record::Checkpoint(_) => unreachable!("read() skips checkpoints"),
        }
    }

    fn caught_up(&self, committed: Committed) -> bool {
        self.held.is_none()
            && self.segment == committed.segment
            && self.reader.as_ref().is_some_and(|reader| reader.offset() >= committed.offset)
    }

    /// The next committed frame record that is not settled yet.
    fn read(&mut self) -> Option<Record> {
        loop {
            let committed = *self.committed.borrow();
            if self.segment > committed.segment {
                return None;
            }
            let reader = match &mut self.reader {
                Some(reader) => reader,
                None => match SegmentReader::open(&log::segment_path(&self.dir, self.segment)) {
                    Ok(reader) => self.reader.insert(reader),
                    // Deleted once settled: nothing in it is needed.
                    Err(ReadError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
                        self.segment += 1;
                        continue;
                    }
                    Err(err) => return self.fail(&err),
                },
            };
            if self.segment == committed.segment && reader.offset() >= committed.offset {
                return None;
            }
            match reader.next() {
                Ok(Some(Record::Checkpoint(_))) => {}
                Ok(Some(record)) => {
                    let sequence = record.sequence().expect("frame records have a sequence");
                    if sequence >= self.skip_below && !self.skip.remove(&sequence) {
                        return Some(record);
                    }
                }
                // A sealed segment read to its end: on to the next.
                Ok(None) if self.segment < committed.segment => {
                    self.reader = None;
                    self.segment += 1;
                }
                Ok(None) => return None,
                Err(err) => return self.fail(&err),
            }
        }
    }

    fn fail(&mut self, err: &ReadError) -> Option<Record> {
        let segment = log::segment_path(&self.dir, self.segment);
        let reason = match err {
            ReadError::Io(err) => err.to_string(),
            ReadError::Damaged { offset, reason } => format!("damaged at byte {offset}: {reason}"),
        };
        tracing::error!(segment = %segment.display(), reason, "Cannot read the buffer; no more frames are shaped.");
        self.failed = true;
        None
    }
}
