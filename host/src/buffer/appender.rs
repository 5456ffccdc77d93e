//! The appender: on a thread of its own, writes what the source receives to the log and
//! makes it durable in group commits (one fsync per `commit_interval_ms` at most), writes
//! the writer's checkpoints, rolls and deletes segments, and stops taking frames while the
//! log holds `max_bytes` (the source then stops reading the socket).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::log::{self, Checkpoint, Record};
use super::recovery::{Recovered, SegmentInfo};
use crate::config::BufferConfig;
use crate::metrics::Counters;
use crate::source::SourceEvent;

/// Encoded records are written out once this many are staged (and at every commit).
const STAGED_BYTES: usize = 1 << 20;
/// A segment rolls at this share of `max_bytes`, within these bounds: whole segments are
/// deleted once settled, so the log can come back under its bound.
const SEGMENTS_PER_BUFFER: u64 = 8;
const SEGMENT_BYTES: std::ops::RangeInclusive<u64> = (64 << 10)..=(64 << 20);

/// How far the log is durable; the shaper reads up to here and no further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub segment: u64,
    pub offset: u64,
    /// The source has ended and everything it sent is committed.
    pub closed: bool,
}

/// The appender's channels.
pub struct Links {
    pub events: mpsc::Receiver<SourceEvent>,
    pub progress: mpsc::UnboundedReceiver<Checkpoint>,
    /// Connection events go to the shaper at once: the session waits for their reply.
    pub control: mpsc::UnboundedSender<SourceEvent>,
}

pub struct Appender {
    dir: PathBuf,
    active: File,
    active_info: SegmentInfo,
    /// Older segments, oldest first.
    sealed: VecDeque<SegmentInfo>,
    total_bytes: u64,
    max_bytes: u64,
    segment_bytes: u64,
    commit_interval: Duration,
    staged: Vec<u8>,
    /// Records written or staged since the last fsync.
    dirty: bool,
    last_commit: Instant,
    uncommitted_frames: u64,
    /// The latest checkpoint, numbering included.
    latest: Checkpoint,
    /// `next_unsettled` of the latest checkpoint that is durable: older segments wholly
    /// below it can go.
    durable_unsettled: u64,
    committed: watch::Sender<Committed>,
    counters: Arc<Counters>,
}

impl Appender {
    /// Starts a fresh segment after the recovered ones, headed by the latest checkpoint.
    pub fn start(
        dir: &Path,
        config: &BufferConfig,
        recovered: &Recovered,
        counters: Arc<Counters>,
    ) -> Result<Self, String> {
        let id = recovered.segments.last().map_or(1, |last| last.id + 1);
        let latest = recovered.checkpoint.clone();
        let (active, active_info) = create_segment(dir, id, &latest)?;
        let sealed: VecDeque<SegmentInfo> = recovered.segments.iter().copied().collect();
        let total_bytes = sealed.iter().map(|segment| segment.bytes).sum::<u64>() + active_info.bytes;
        let committed = Committed { segment: id, offset: active_info.bytes, closed: false };
        let appender = Self {
            dir: dir.to_path_buf(),
            active,
            active_info,
            sealed,
            total_bytes,
            max_bytes: config.max_bytes,
            segment_bytes: (config.max_bytes / SEGMENTS_PER_BUFFER).clamp(*SEGMENT_BYTES.start(), *SEGMENT_BYTES.end()),
            commit_interval: config.commit_interval,
            staged: Vec::new(),
            dirty: false,
            last_commit: Instant::now(),
            uncommitted_frames: 0,
            durable_unsettled: latest.next_unsettled,
            latest,
            committed: watch::Sender::new(committed),
            counters,
        };
        appender.report_size();
        Ok(appender)
    }

    pub fn committed(&self) -> watch::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// Runs until the writer is done, then writes its last checkpoint.
    pub fn run(mut self, links: Links, handle: &tokio::runtime::Handle) -> Result<(), String> {
        let _runtime = handle.enter();
        let result = handle.block_on(self.serve(links));
        if let Err(err) = &result {
            tracing::error!(
                error = %err,
                frames_not_accepted = self.uncommitted_frames,
                "The buffer cannot be written; the source stops. Frames received since the last commit were not accepted."
            );
        }
        result
    }

    async fn serve(&mut self, mut links: Links) -> Result<(), String> {
        let mut events = Some(links.events);
        loop {
            let room = self.total_bytes < self.max_bytes;
            let deadline = self.last_commit + self.commit_interval;
            tokio::select! {
                biased;
                checkpoint = links.progress.recv() => match checkpoint {
                    Some(checkpoint) => self.write_checkpoint(checkpoint)?,
                    // The writer is done: everything it will settle is in.
                    None => break,
                },
                // Before new frames: a steady flood must not starve the commit.
                () = tokio::time::sleep_until(deadline), if self.dirty => self.commit()?,
                event = recv(&mut events), if room && events.is_some() => match event {
                    Some(event) => {
                        self.take(event, &links.control)?;
                        while self.total_bytes < self.max_bytes && Instant::now() < deadline {
                            let Some(event) = events.as_mut().and_then(|events| events.try_recv().ok()) else { break };
                            self.take(event, &links.control)?;
                        }
                    }
                    None => {
                        events = None;
                        self.close()?;
                    }
                },
                // The shaper stopped: stop taking frames, so the source stops too.
                () = links.control.closed(), if events.is_some() => {
                    events = None;
                    self.close()?;
                }
            }
        }
        drop(events);
        self.commit()
    }

    fn take(&mut self, event: SourceEvent, control: &mpsc::UnboundedSender<SourceEvent>) -> Result<(), String> {
        match event {
            SourceEvent::Connected { .. } => {
                let _ = control.send(event);
            }
            SourceEvent::Frames(ready) => {
                for frame in ready.frames {
                    self.stage(&Record::Frame {
                        sequence: frame.sequence,
                        connection_id: ready.connection_id,
                        received_at_ms: frame.received_at_ms,
                        kind: frame.kind,
                        payload: frame.payload,
                    })?;
                }
            }
            SourceEvent::Unreadable { sequence, connection_id, received_at_ms, size, reason } => {
                let size = size as u64;
                self.stage(&Record::Unreadable { sequence, connection_id, received_at_ms, size, reason })?;
            }
        }
        Ok(())
    }

    fn stage(&mut self, record: &Record) -> Result<(), String> {
        let bytes = record.encode(&mut self.staged) as u64;
        self.active_info.bytes += bytes;
        self.total_bytes += bytes;
        self.dirty = true;
        if let (Some(sequence), Some(connection_id)) = (record.sequence(), record.connection_id()) {
            self.active_info.max_sequence = Some(sequence);
            self.latest.next_sequence = sequence + 1;
            self.latest.last_connection = self.latest.last_connection.max(connection_id);
            self.uncommitted_frames += 1;
        }
        if self.staged.len() >= STAGED_BYTES {
            self.write_staged()?;
        }
        Ok(())
    }

    /// Takes the writer's progress, with the numbering this side owns.
    fn write_checkpoint(&mut self, settled: Checkpoint) -> Result<(), String> {
        self.latest = Checkpoint {
            next_sequence: self.latest.next_sequence,
            last_connection: self.latest.last_connection,
            ..settled
        };
        self.stage(&Record::Checkpoint(self.latest.clone()))
    }

    fn write_staged(&mut self) -> Result<(), String> {
        self.active.write_all(&self.staged).map_err(|err| self.failed("writing", &err))?;
        self.staged.clear();
        Ok(())
    }

    /// Makes everything written durable, then lets the shaper read it and drops what is
    /// settled.
    fn commit(&mut self) -> Result<(), String> {
        self.write_staged()?;
        if self.dirty {
            self.active.sync_data().map_err(|err| self.failed("syncing", &err))?;
        }
        self.dirty = false;
        self.last_commit = Instant::now();
        Counters::add(&self.counters.frames_accepted, std::mem::take(&mut self.uncommitted_frames));
        self.committed.send_modify(|committed| committed.offset = self.active_info.bytes);
        self.durable_unsettled = self.latest.next_unsettled;
        self.delete_settled_segments();
        if self.active_info.bytes >= self.segment_bytes {
            self.roll()?;
        }
        self.report_size();
        Ok(())
    }

    /// Commits what the source sent last and tells the shaper nothing follows.
    fn close(&mut self) -> Result<(), String> {
        self.commit()?;
        self.committed.send_modify(|committed| committed.closed = true);
        Ok(())
    }

    fn delete_settled_segments(&mut self) {
        while let Some(oldest) = self.sealed.front() {
            if oldest.max_sequence.is_some_and(|max| max >= self.durable_unsettled) {
                return;
            }
            let path = log::segment_path(&self.dir, oldest.id);
            if let Err(err) = std::fs::remove_file(&path) {
                tracing::warn!(segment = %path.display(), error = %err, "Cannot delete a settled buffer segment.");
                return;
            }
            self.total_bytes -= oldest.bytes;
            self.sealed.pop_front();
        }
    }

    /// Seals the active segment (already committed) and starts the next one.
    fn roll(&mut self) -> Result<(), String> {
        let (active, info) = create_segment(&self.dir, self.active_info.id + 1, &self.latest)?;
        self.sealed.push_back(std::mem::replace(&mut self.active_info, info));
        self.active = active;
        self.total_bytes += info.bytes;
        self.committed.send_modify(|committed| {
            committed.segment = info.id;
            committed.offset = info.bytes;
        });
        Ok(())
    }

    fn report_size(&self) {
        Counters::set(&self.counters.buffer_bytes, self.total_bytes);
    }

    fn failed(&self, doing: &str, err: &std::io::Error) -> String {
        format!(
            "buffer: {doing} {} failed: {err}; free space in {} or set buffer.path elsewhere",
            log::segment_path(&self.dir, self.active_info.id).display(),
            self.dir.display()
        )
    }
}

async fn recv(events: &mut Option<mpsc::Receiver<SourceEvent>>) -> Option<SourceEvent> {
    events.as_mut()?.recv().await
}

/// A new segment holding the magic and `checkpoint`, durable, folder entry included.
fn create_segment(dir: &Path, id: u64, checkpoint: &Checkpoint) -> Result<(File, SegmentInfo), String> {
    let path = log::segment_path(dir, id);
    let fail = |err: std::io::Error| format!("buffer: cannot create {}: {err}", path.display());
    let mut bytes = log::MAGIC.to_vec();
    Record::Checkpoint(checkpoint.clone()).encode(&mut bytes);
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(fail)?;
    file.write_all(&bytes).map_err(fail)?;
    file.sync_data().map_err(fail)?;
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(fail)?;
    Ok((file, SegmentInfo { id, bytes: bytes.len() as u64, max_sequence: None }))
}
