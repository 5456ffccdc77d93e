//! Opening a buffer folder: one process at a time, a torn tail cut, the latest checkpoint
//! found, and the file sinks cut back to the lengths it recorded.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::path::Path;

use super::log::{self, Checkpoint, ReadError, Record, SegmentReader, SinkMark};
use crate::config::SinkKind;

/// What a buffer folder held.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The latest checkpoint, its numbering raised past every frame in the log.
    pub checkpoint: Checkpoint,
    /// Oldest first.
    pub segments: Vec<SegmentInfo>,
    /// Accepted frames not settled when the last run stopped.
    pub pending_frames: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: u64,
    pub bytes: u64,
    /// The highest frame sequence in it; `None` if it holds only checkpoints.
    pub max_sequence: Option<u64>,
}

/// Creates the folder and takes its lock.
pub fn lock(dir: &Path) -> Result<File, String> {
    let shown = dir.display();
    std::fs::create_dir_all(dir).map_err(|err| {
        format!("buffer.path: cannot create {shown}: {err}; set buffer.path to a folder this user can write")
    })?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|err| format!("buffer.path: cannot write in {shown}: {err}"))?;
    lock.try_lock().map_err(|_| {
        format!("buffer.path: {shown} is in use by another skippr process; give each pipeline its own buffer.path")
    })?;
    Ok(lock)
}

/// Reads every segment, cuts a torn tail from the last one, and cuts the file sinks back to
/// the latest checkpoint.
pub fn recover(dir: &Path, sinks: [&SinkKind; 2]) -> Result<Recovered, String> {
    let ids = log::segment_ids(dir).map_err(|err| format!("buffer: cannot list {}: {err}", dir.display()))?;
    let mut recovered = Recovered::default();
    let mut sequences = Vec::new();
    let mut max_connection = 0;
    for (index, &id) in ids.iter().enumerate() {
        let path = log::segment_path(dir, id);
        let last = index + 1 == ids.len();
        let mut info = SegmentInfo { id, bytes: 0, max_sequence: None };
        let damage = match SegmentReader::open(&path) {
            Err(err) => Some((0, err)),
            Ok(mut reader) => loop {
                match reader.next() {
                    Ok(Some(record)) => {
                        if let Some(sequence) = record.sequence() {
                            sequences.push(sequence);
                            info.max_sequence = Some(sequence);
                            max_connection = max_connection.max(record.connection_id().unwrap_or(0));
                        }
                        if let Record::Checkpoint(checkpoint) = record {
                            recovered.checkpoint = checkpoint;
                        }
                        info.bytes = reader.offset();
                    }
                    Ok(None) => break None,
                    Err(err) => break Some((reader.offset(), err)),
                }
            },
        };
        if let Some((offset, err)) = damage {
            let reason = match err {
                ReadError::Io(err) => return Err(format!("buffer: cannot read {}: {err}", path.display())),
                ReadError::Damaged { reason, .. } => reason,
            };
            if !last {
                return Err(format!(
                    "buffer: {} is damaged at byte {offset} ({reason}); move {} away to start with an empty buffer (the frames in it are then lost)",
                    path.display(),
                    dir.display()
                ));
            }
            cut_torn_tail(&path, offset, &reason)?;
            if offset == 0 {
                continue;
            }
        }
        recovered.segments.push(info);
    }
    let checkpoint = &mut recovered.checkpoint;
    let max_sequence = sequences.iter().max().copied();
    checkpoint.next_sequence = checkpoint.next_sequence.max(max_sequence.map_or(0, |max| max + 1));
    checkpoint.last_connection = checkpoint.last_connection.max(max_connection);
    let settled: BTreeSet<u64> = checkpoint.settled_above.iter().copied().collect();
    recovered.pending_frames = sequences
        .iter()
        .filter(|&&sequence| sequence >= checkpoint.next_unsettled && !settled.contains(&sequence))
        .count() as u64;
    for (kind, mark) in sinks.into_iter().zip([&checkpoint.destination, &checkpoint.deadletter]) {
        if let (SinkKind::File(path), Some(mark)) = (kind, mark)
            && *path == mark.path
        {
            cut_sink(mark)?;
        }
    }
    Ok(recovered)
}

/// What follows the last whole record was being written when the process died: it was
/// never committed, so it was never accepted.
fn cut_torn_tail(path: &Path, offset: u64, reason: &str) -> Result<(), String> {
    let fail = |err: std::io::Error| format!("buffer: cannot repair {}: {err}", path.display());
    if offset == 0 {
        std::fs::remove_file(path).map_err(fail)?;
    } else {
        let file = OpenOptions::new().write(true).open(path).map_err(fail)?;
        file.set_len(offset).map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    tracing::warn!(segment = %path.display(), offset, reason, "Cut a torn tail from the buffer (written, never committed).");
    Ok(())
}

/// Cuts what a file sink got after the checkpoint: the log delivers it again.
fn cut_sink(mark: &SinkMark) -> Result<(), String> {
    let shown = mark.path.display();
    let fail = |err: std::io::Error| format!("cannot cut {shown} back to its last checkpoint: {err}");
    let file = match OpenOptions::new().write(true).open(&mark.path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(fail(err)),
    };
    let len = file.metadata().map_err(fail)?.len();
    if len < mark.len {
        tracing::warn!(
            path = %shown,
            "The file is shorter than at the buffer's last checkpoint (rotated or truncated?); nothing is cut."
        );
    } else if len > mark.len {
        file.set_len(mark.len).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        tracing::info!(path = %shown, bytes = len - mark.len, "Cut output written after the last checkpoint; it is written again from the buffer.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::runtime::FrameKind;

    fn frame(sequence: u64) -> Record {
        let payload = Bytes::from(format!("{{\"n\":{sequence}}}"));
        Record::Frame { sequence, connection_id: 3, received_at_ms: 1, kind: FrameKind::Text, payload }
    }

    #[test]
    fn a_crash_is_recovered_from_the_last_checkpoint() {
        let dir = crate::buffer::scratch_dir("recovery");
        let sink = dir.join("out.jsonl");
        std::fs::write(&sink, "line 0\nline 1\nline 2, written after the checkpoint\n").unwrap();
        let checkpoint = Checkpoint {
            next_unsettled: 2,
            settled_above: vec![3],
            next_sequence: 4,
            last_connection: 3,
            destination: Some(SinkMark { path: sink.clone(), len: 14 }),
            deadletter: None,
        };
        let mut bytes = log::MAGIC.to_vec();
        for record in [frame(0), frame(1), frame(2), frame(3), Record::Checkpoint(checkpoint), frame(4), frame(5)] {
            record.encode(&mut bytes);
        }
        let torn = bytes.len() - 4;
        std::fs::write(log::segment_path(&dir, 7), &bytes[..torn]).unwrap();

        let recovered = recover(&dir, [&SinkKind::File(sink.clone()), &SinkKind::Stderr]).unwrap();
        assert_eq!(recovered.pending_frames, 2, "frames 2 and 4; 3 was settled, 5 torn");
        assert_eq!(recovered.checkpoint.next_sequence, 5, "numbering goes on after frame 4");
        assert_eq!(recovered.checkpoint.last_connection, 3);
        assert_eq!(recovered.segments.len(), 1);
        assert_eq!(std::fs::read_to_string(&sink).unwrap(), "line 0\nline 1\n", "cut back to the checkpoint");
        let segment = std::fs::metadata(log::segment_path(&dir, 7)).unwrap().len();
        assert_eq!(segment, recovered.segments[0].bytes, "the torn tail is cut");
        assert!(segment < torn as u64);
    }

    #[test]
    fn a_damaged_segment_before_the_last_is_refused_and_a_second_process_is_locked_out() {
        let dir = crate::buffer::scratch_dir("recovery-damaged");
        let mut bytes = log::MAGIC.to_vec();
        frame(0).encode(&mut bytes);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(log::segment_path(&dir, 1), &bytes).unwrap();
        std::fs::write(log::segment_path(&dir, 2), log::MAGIC).unwrap();
        let err = recover(&dir, [&SinkKind::Stdout, &SinkKind::Stderr]).unwrap_err();
        assert!(err.contains("is damaged at byte 8") && err.contains("move"), "{err}");

        let _held = lock(&dir).unwrap();
        assert!(lock(&dir).unwrap_err().contains("in use by another skippr process"));
    }
}
