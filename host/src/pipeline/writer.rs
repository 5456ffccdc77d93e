//! The writer: takes closed batches and dead letters off the bounded queue and writes
//! them, counting only what was flushed to the destination.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::metrics::Counters;
use crate::runtime::Batch;
use crate::sink::Sink;

/// What the shaper hands the writer.
#[derive(Debug)]
pub enum SinkItem {
    Records(Batch),
    /// One dead letter, already a JSON line.
    DeadLetter(Vec<u8>),
}

pub struct Writer {
    destination: Sink,
    deadletter: Sink,
    counters: Arc<Counters>,
    /// Written into the buffers but not yet flushed: counted only once flushed.
    unflushed_records: u64,
    unflushed_dead_letters: u64,
}

impl Writer {
    pub fn new(destination: Sink, deadletter: Sink, counters: Arc<Counters>) -> Self {
        Self { destination, deadletter, counters, unflushed_records: 0, unflushed_dead_letters: 0 }
    }

    /// Writes until the shaper is done; flushes whenever the queue runs empty, so lines
    /// reach the destination promptly without a syscall per dead letter.
    pub fn run(mut self, mut items: mpsc::Receiver<SinkItem>) -> Result<(), (String, std::io::Error)> {
        while let Some(item) = items.blocking_recv() {
            self.write(item)?;
            while let Ok(item) = items.try_recv() {
                self.write(item)?;
            }
            self.flush()?;
        }
        self.flush()
    }

    fn write(&mut self, item: SinkItem) -> Result<(), (String, std::io::Error)> {
        match item {
            SinkItem::Records(batch) => {
                write_to(&mut self.destination, &batch.lines)?;
                self.unflushed_records += batch.len() as u64;
            }
            SinkItem::DeadLetter(line) => {
                write_to(&mut self.deadletter, &line)?;
                self.unflushed_dead_letters += 1;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), (String, std::io::Error)> {
        for sink in [&mut self.destination, &mut self.deadletter] {
            sink.flush().map_err(|err| (sink.name().to_owned(), err))?;
        }
        Counters::add(&self.counters.records_delivered, std::mem::take(&mut self.unflushed_records));
        Counters::add(&self.counters.frames_dead_lettered, std::mem::take(&mut self.unflushed_dead_letters));
        Ok(())
    }
}

fn write_to(sink: &mut Sink, bytes: &[u8]) -> Result<(), (String, std::io::Error)> {
    sink.write(bytes).map_err(|err| (sink.name().to_owned(), err))
}
