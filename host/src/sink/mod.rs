//! Where records and dead letters go: JSON Lines (stdout, stderr, a file) or PostgreSQL.

mod lines;
mod postgres;

use std::io;

pub use postgres::Role;

use crate::buffer::SinkMark;
use crate::config::SinkKind;
use crate::runtime::Batch;
use lines::LineSink;
use postgres::PostgresSink;

pub enum Sink {
    Lines(LineSink),
    Postgres(Box<PostgresSink>, String),
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
                Ok(Self::Postgres(Box::new(sink), config.shown.clone()))
            }
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Lines(sink) => sink.name(),
            Self::Postgres(_, name) => name,
        }
    }

    pub fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        match self {
            Self::Lines(sink) => sink.write(&batch.lines),
            Self::Postgres(sink, _) => {
                sink.write_batch(batch);
                Ok(())
            }
        }
    }

    /// One dead letter, a JSON line.
    pub fn write_dead_letter(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Self::Lines(sink) => sink.write(line),
            Self::Postgres(sink, _) => {
                sink.write_dead_letter(line);
                Ok(())
            }
        }
    }

    /// Hands what was written to the destination (a database commits it).
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Lines(sink) => sink.flush(),
            Self::Postgres(sink, _) => sink.flush(),
        }
    }

    /// Makes what was written durable; a file's length then is what a checkpoint records
    /// (a database's rows are durable once committed, and keyed against replays).
    pub fn sync(&mut self) -> io::Result<Option<SinkMark>> {
        match self {
            Self::Lines(sink) => sink.sync(),
            Self::Postgres(sink, _) => sink.flush().map(|()| None),
        }
    }
}
