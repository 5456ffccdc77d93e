//! Where records and dead letters go: JSON Lines (stdout, stderr, a file), PostgreSQL or
//! NATS JetStream.

mod lines;
mod nats;
mod postgres;
mod retry;

use std::io;

use crate::buffer::SinkMark;
use crate::config::SinkKind;
use crate::runtime::Batch;
pub(crate) use lines::LineSink;
use nats::NatsSink;
use postgres::PostgresSink;
use retry::Remote as _;

/// What a sink takes: a remote dead-letter sink makes its table or stream at the first
/// connection, before the first dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Records,
    DeadLetters,
}

pub enum Sink {
    Lines(LineSink),
    Postgres(Box<PostgresSink>),
    Nats(Box<NatsSink>),
}

impl Sink {
    /// Opens the sink now, so a bad path fails before the run starts (a database is reached
    /// at the first write, and retried while it is down).
    pub fn open(kind: &SinkKind, pipeline: &str, role: Role) -> Result<Self, String> {
        match kind {
            SinkKind::Stdout => Ok(Self::Lines(LineSink::stream("stdout", Box::new(io::stdout())))),
            SinkKind::Stderr => Ok(Self::Lines(LineSink::stream("stderr", Box::new(io::stderr())))),
            SinkKind::File(path) => LineSink::file(path).map(Self::Lines),
            SinkKind::Postgres(config) => {
                let sink = PostgresSink::new(config, pipeline, role)?;
                Ok(Self::Postgres(Box::new(sink)))
            }
            SinkKind::Nats(config) => Ok(Self::Nats(Box::new(NatsSink::new(config, pipeline, role)))),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Lines(sink) => sink.name(),
            Self::Postgres(sink) => sink.shown(),
            Self::Nats(sink) => sink.shown(),
        }
    }

    pub fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        match self {
            Self::Lines(sink) => return sink.write(&batch.lines),
            Self::Postgres(sink) => sink.write_batch(batch),
            Self::Nats(sink) => sink.write_batch(batch),
        }
        Ok(())
    }

    /// One dead letter, a JSON line, for the frame `sequence`.
    pub fn write_dead_letter(&mut self, sequence: u64, line: &[u8]) -> io::Result<()> {
        match self {
            Self::Lines(sink) => return sink.write(line),
            Self::Postgres(sink) => sink.write_dead_letter(line),
            Self::Nats(sink) => sink.write_dead_letter(sequence, line),
        }
        Ok(())
    }

    /// Hands what was written to the destination (a database commits it).
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Lines(sink) => sink.flush(),
            Self::Postgres(sink) => sink.flush(),
            Self::Nats(sink) => sink.flush(),
        }
    }

    /// Makes what was written durable; a file's length then is what a checkpoint records
    /// (a database's rows are durable once committed, and keyed against replays).
    pub fn sync(&mut self) -> io::Result<Option<SinkMark>> {
        match self {
            Self::Lines(sink) => sink.sync(),
            Self::Postgres(_) | Self::Nats(_) => self.flush().map(|()| None),
        }
    }
}

/// A batch's records as (frame sequence, index among the frame's records, line without
/// its `\n`): what keys a record in a database or a stream, the same after a replay.
fn records(batch: &Batch) -> impl Iterator<Item = (u64, u32, &[u8])> {
    let starts = std::iter::once(0).chain(batch.record_ends.iter().map(|&end| end as usize));
    let mut previous = None;
    let mut index = 0;
    starts.zip(&batch.record_ends).zip(&batch.record_sequences).map(move |((start, &end), &sequence)| {
        index = if previous == Some(sequence) { index + 1 } else { 0 };
        previous = Some(sequence);
        (sequence, index, batch.lines[start..end as usize].trim_ascii_end())
    })
}
