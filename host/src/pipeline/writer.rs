//! The writer: takes closed batches and dead letters off the bounded queue and writes
//! them, counting only what was flushed to the destination. With a disk buffer it also
//! syncs the sinks once per commit interval and reports which frames are then settled.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::buffer::{Progress, Settlement};
use crate::metrics::Counters;
use crate::runtime::Batch;
use crate::sink::Sink;

/// A remote sink holds what it is given until its flush (one transaction, or one wait
/// for acks): against a shaper that keeps the queue full, this bounds what it holds.
const MAX_ITEMS_PER_FLUSH: usize = 16;

/// What the shaper hands the writer; each item settles the frames it names.
#[derive(Debug)]
pub enum SinkItem {
    Records(Batch),
    /// One dead letter, already a JSON line.
    DeadLetter {
        sequence: u64,
        line: Vec<u8>,
    },
    /// Frames the transform shaped into no record.
    Dropped(Vec<u64>),
}

/// The disk buffer's bookkeeping.
pub struct Durable {
    pub settlement: Settlement,
    pub progress: Progress,
}

pub struct Writer {
    destination: Sink,
    deadletter: Sink,
    counters: Arc<Counters>,
    durable: Option<Durable>,
    /// Written into the buffers but not yet flushed: counted only once flushed.
    unflushed_records: u64,
    unflushed_dead_letters: u64,
    /// Settled since the last report.
    unreported: bool,
}

type WriteError = (String, std::io::Error);

impl Writer {
    pub fn new(destination: Sink, deadletter: Sink, counters: Arc<Counters>, durable: Option<Durable>) -> Self {
        Self {
            destination,
            deadletter,
            counters,
            durable,
            unflushed_records: 0,
            unflushed_dead_letters: 0,
            unreported: false,
        }
    }

    /// Writes until the shaper is done; flushes whenever the queue runs empty or
    /// `MAX_ITEMS_PER_FLUSH` items are in, so lines reach the destination promptly without
    /// a syscall per dead letter.
    pub fn run(mut self, mut items: mpsc::Receiver<SinkItem>, handle: &Handle) -> Result<(), WriteError> {
        // Timers made on this thread need the runtime's context.
        let _runtime = handle.enter();
        let wait = self.durable.as_ref().map_or(Duration::MAX, |durable| durable.progress.interval());
        loop {
            let item = match handle.block_on(tokio::time::timeout(wait, items.recv())) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_idle) => {
                    self.report_if_due()?;
                    continue;
                }
            };
            self.write(item)?;
            for _ in 1..MAX_ITEMS_PER_FLUSH {
                let Ok(item) = items.try_recv() else { break };
                self.write(item)?;
            }
            self.flush()?;
            self.report_if_due()?;
        }
        self.flush()?;
        self.report()
    }

    fn write(&mut self, item: SinkItem) -> Result<(), WriteError> {
        match item {
            SinkItem::Records(batch) => {
                let sink = &mut self.destination;
                sink.write_batch(&batch).map_err(|err| (sink.name().to_owned(), err))?;
                self.unflushed_records += batch.len() as u64;
                self.settle(&batch.record_sequences);
            }
            SinkItem::DeadLetter { sequence, line } => {
                let sink = &mut self.deadletter;
                sink.write_dead_letter(sequence, &line).map_err(|err| (sink.name().to_owned(), err))?;
                self.unflushed_dead_letters += 1;
                self.settle(&[sequence]);
            }
            SinkItem::Dropped(sequences) => self.settle(&sequences),
        }
        Ok(())
    }

    fn settle(&mut self, sequences: &[u64]) {
        if let Some(durable) = &mut self.durable {
            for &sequence in sequences {
                durable.settlement.settle(sequence);
            }
            self.unreported = true;
        }
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        for sink in [&mut self.destination, &mut self.deadletter] {
            sink.flush().map_err(|err| (sink.name().to_owned(), err))?;
        }
        Counters::add(&self.counters.records_delivered, std::mem::take(&mut self.unflushed_records));
        Counters::add(&self.counters.frames_dead_lettered, std::mem::take(&mut self.unflushed_dead_letters));
        Ok(())
    }

    fn report_if_due(&mut self) -> Result<(), WriteError> {
        match &self.durable {
            Some(durable) if durable.progress.due() => self.report(),
            _ => Ok(()),
        }
    }

    /// Makes the sinks durable, then tells the buffer what that settles.
    fn report(&mut self) -> Result<(), WriteError> {
        let Some(durable) = &mut self.durable else { return Ok(()) };
        if !std::mem::take(&mut self.unreported) {
            return Ok(());
        }
        let destination = sync(&mut self.destination)?;
        let deadletter = sync(&mut self.deadletter)?;
        durable.progress.report(&durable.settlement, destination, deadletter);
        Ok(())
    }
}

fn sync(sink: &mut Sink) -> Result<Option<crate::buffer::SinkMark>, WriteError> {
    sink.sync().map_err(|err| (sink.name().to_owned(), err))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sink::LineSink;

    /// A destination that keeps the size of each write it gets: one per flush.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<usize>>>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").push(bytes.len());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_is_flushed_every_max_items_not_held_until_it_runs_empty() {
        let writes = Writes::default();
        let destination = Sink::Lines(LineSink::stream("recorded", Box::new(writes.clone())));
        let deadletter = Sink::Lines(LineSink::stream("unused", Box::new(std::io::sink())));
        let counters = Arc::new(Counters::default());
        let writer = Writer::new(destination, deadletter, Arc::clone(&counters), None);
        let items = 2 * MAX_ITEMS_PER_FLUSH + 3;
        let (sender, receiver) = mpsc::channel(items);
        for sequence in 0..items as u64 {
            let batch = Batch {
                namespace: "n".into(),
                lines: b"{}\n".to_vec(),
                record_ends: vec![3],
                record_sequences: vec![sequence],
            };
            sender.try_send(SinkItem::Records(batch)).expect("room for every item");
        }
        drop(sender);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        writer.run(receiver, runtime.handle()).expect("the writes succeed");
        let per_flush = 3 * MAX_ITEMS_PER_FLUSH;
        assert_eq!(*writes.0.lock().expect("not poisoned"), [per_flush, per_flush, 9]);
        assert_eq!(counters.records_delivered.load(std::sync::atomic::Ordering::Relaxed), items as u64);
    }
}
