//! The buffer between the socket and the shaper. On disk, received frames are appended to
//! a log and made durable in group commits before they count as accepted; the shaper reads
//! them back from the log, and the writer's progress is committed into the same log. After
//! a crash, what was accepted and not settled is replayed, and what the file sinks got after
//! the last checkpoint is cut, so each record reaches them exactly once. In memory, frames
//! go straight from the socket to the shaper.
//!
//! The log format is our own (see `log`) rather than an embedded database: the buffer is a
//! queue (append, read in order, drop the oldest), which a segmented log does with one write
//! per frame and one fsync per commit, where a B-tree store writes each frame twice.

mod appender;
mod intake;
mod log;
mod recovery;
mod settlement;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use intake::Intake;
pub use log::SinkMark;
pub use settlement::{Progress, Settlement};

use crate::config::{BufferConfig, BufferKind, SinkKind};
use crate::metrics::Counters;
use crate::source::SourceEvent;
use recovery::Recovered;

/// Where the source's numbering goes on from, so sequences and connection ids never repeat
/// across restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStart {
    pub next_sequence: u64,
    pub last_connection: u64,
}

/// An opened buffer: recovered, with the file sinks cut back to the last checkpoint.
pub struct Buffer {
    config: BufferConfig,
    pub start: SourceStart,
    /// Accepted frames from an earlier run that are delivered again first.
    pub recovered_frames: u64,
    disk: Option<DiskLog>,
}

struct DiskLog {
    dir: PathBuf,
    /// Held for the whole run: one process per buffer folder.
    lock: File,
    recovered: Recovered,
}

/// What a running buffer hands the pipeline.
pub struct Started {
    /// What the shaper reads.
    pub intake: Intake,
    /// What the writer reports its progress to; `None` in memory.
    pub progress: Option<Progress>,
    /// The appender thread's end: the error that stopped it, if any.
    pub appender: Option<tokio::sync::oneshot::Receiver<Result<(), String>>>,
}

impl Buffer {
    /// Opens (and on disk, recovers) the buffer; `sinks` are the destination and the dead
    /// letters, cut back to what the last checkpoint saw.
    pub fn open(config: &BufferConfig, sinks: [&SinkKind; 2]) -> Result<Self, String> {
        let dir = match &config.kind {
            BufferKind::Memory => {
                return Ok(Self {
                    config: config.clone(),
                    start: SourceStart::default(),
                    recovered_frames: 0,
                    disk: None,
                });
            }
            BufferKind::Disk(dir) => dir,
        };
        let lock = recovery::lock(dir)?;
        let recovered = recovery::recover(dir, sinks)?;
        let start = SourceStart {
            next_sequence: recovered.checkpoint.next_sequence,
            last_connection: recovered.checkpoint.last_connection,
        };
        let recovered_frames = recovered.pending_frames;
        if recovered_frames > 0 {
            tracing::warn!(
                frames = recovered_frames,
                buffer = %dir.display(),
                "Recovered accepted frames that the last run had not delivered; they are delivered first."
            );
        }
        let disk = DiskLog { dir: dir.clone(), lock, recovered };
        Ok(Self { config: config.clone(), start, recovered_frames, disk: Some(disk) })
    }

    /// Where the writer starts counting settled frames from.
    pub fn settlement(&self) -> Settlement {
        match &self.disk {
            Some(disk) => Settlement::from_checkpoint(&disk.recovered.checkpoint),
            None => Settlement::default(),
        }
    }

    /// Starts the buffer between `events` (from the source) and the shaper.
    pub fn start(
        self,
        name: &str,
        events: mpsc::Receiver<SourceEvent>,
        counters: &Arc<Counters>,
        handle: tokio::runtime::Handle,
    ) -> Result<Started, String> {
        let Some(disk) = self.disk else {
            return Ok(Started {
                intake: Intake::memory(events, Arc::clone(counters)),
                progress: None,
                appender: None,
            });
        };
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let appender = appender::Appender::start(&disk.dir, &self.config, &disk.recovered, Arc::clone(counters))?;
        let intake = Intake::disk(&disk.dir, appender.committed(), control_rx, &disk.recovered);
        let links = appender::Links { events, progress: progress_rx, control: control_tx };
        let lock = disk.lock;
        let finished = crate::pipeline::on_own_thread(&format!("{name}-buffer"), move || {
            let result = appender.run(links, &handle);
            drop(lock);
            result
        });
        let progress = Progress::new(progress_tx, self.config.commit_interval);
        Ok(Started { intake, progress: Some(progress), appender: Some(finished) })
    }
}

#[cfg(test)]
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skippr-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
