//! The buffer's on-disk format: numbered segment files, each `MAGIC` then records of
//! `[body length u32][crc32 u32 of kind and body][kind u8][body]`, little-endian. The
//! checksum tells a torn tail (a crash mid-write) or a damaged block from a record.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::runtime::FrameKind;

/// Names the format at the start of every segment, so another format is refused.
pub const MAGIC: &[u8; 8] = b"SKPRLOG1";
const HEADER_BYTES: usize = 9;
const FRAME: u8 = 1;
const UNREADABLE: u8 = 2;
const CHECKPOINT: u8 = 3;
/// Larger than any message the source may accept (its ceiling is 1 GiB).
const MAX_BODY_BYTES: u32 = (1 << 30) + 64;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Frame {
        sequence: u64,
        connection_id: u64,
        received_at_ms: u64,
        kind: FrameKind,
        payload: Bytes,
    },
    /// A message that could not be read: it goes to the dead letters with the reason.
    Unreadable {
        sequence: u64,
        connection_id: u64,
        received_at_ms: u64,
        size: u64,
        reason: String,
    },
    Checkpoint(Checkpoint),
}

impl Record {
    /// The sequence of a received frame; `None` for checkpoints.
    pub fn sequence(&self) -> Option<u64> {
        match self {
            Self::Frame { sequence, .. } | Self::Unreadable { sequence, .. } => Some(*sequence),
            Self::Checkpoint(_) => None,
        }
    }

    pub fn connection_id(&self) -> Option<u64> {
        match self {
            Self::Frame { connection_id, .. } | Self::Unreadable { connection_id, .. } => Some(*connection_id),
            Self::Checkpoint(_) => None,
        }
    }

    /// Appends the encoded record to `out`; returns its length.
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_BYTES]);
        let kind = match self {
            Self::Frame { sequence, connection_id, received_at_ms, kind, payload } => {
                put_u64s(out, &[*sequence, *connection_id, *received_at_ms]);
                out.push(u8::from(*kind == FrameKind::Binary));
                out.extend_from_slice(payload);
                FRAME
            }
            Self::Unreadable { sequence, connection_id, received_at_ms, size, reason } => {
                put_u64s(out, &[*sequence, *connection_id, *received_at_ms, *size]);
                out.extend_from_slice(reason.as_bytes());
                UNREADABLE
            }
            Self::Checkpoint(checkpoint) => {
                serde_json::to_writer(&mut *out, checkpoint).expect("a checkpoint is plain data");
                CHECKPOINT
            }
        };
        out[start + 8] = kind;
        let body_len = u32::try_from(out.len() - start - HEADER_BYTES).expect("bodies are bounded by the source");
        let crc = crc32fast::hash(&out[start + 8..]);
        out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        out.len() - start
    }

    fn decode(kind: u8, body: Vec<u8>) -> Result<Self, String> {
        let short = || format!("a record of kind {kind} is too short ({} bytes)", body.len());
        match kind {
            FRAME => {
                let [sequence, connection_id, received_at_ms] = take_u64s(&body).ok_or_else(short)?;
                let kind = match body.get(24) {
                    Some(0) => FrameKind::Text,
                    Some(1) => FrameKind::Binary,
                    _ => return Err(short()),
                };
                let payload = Bytes::from(body).slice(25..);
                Ok(Self::Frame { sequence, connection_id, received_at_ms, kind, payload })
            }
            UNREADABLE => {
                let [sequence, connection_id, received_at_ms, size] = take_u64s(&body).ok_or_else(short)?;
                let reason = String::from_utf8_lossy(&body[32..]).into_owned();
                Ok(Self::Unreadable { sequence, connection_id, received_at_ms, size, reason })
            }
            CHECKPOINT => serde_json::from_slice(&body)
                .map(Self::Checkpoint)
                .map_err(|err| format!("a checkpoint does not parse: {err}")),
            other => Err(format!("unknown record kind {other}")),
        }
    }
}

fn put_u64s(out: &mut Vec<u8>, values: &[u64]) {
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn take_u64s<const N: usize>(body: &[u8]) -> Option<[u64; N]> {
    let mut values = [0; N];
    for (index, value) in values.iter_mut().enumerate() {
        let bytes = body.get(index * 8..index * 8 + 8)?;
        *value = u64::from_le_bytes(bytes.try_into().ok()?);
    }
    Some(values)
}

/// What was settled when it was written, and where the source goes on from. Written by
/// the appender with every progress report and at the head of every segment, so deleting
/// old segments never loses the latest one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every frame below this sequence is settled: delivered, dead-lettered or dropped.
    pub next_unsettled: u64,
    /// Frames at or above `next_unsettled` that are settled too, in order.
    pub settled_above: Vec<u64>,
    /// The sequence the source hands out next.
    pub next_sequence: u64,
    /// The last connection id the source used.
    pub last_connection: u64,
    /// How long each file sink was when this was written: what follows is cut at recovery
    /// and written again from the log.
    pub destination: Option<SinkMark>,
    pub deadletter: Option<SinkMark>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkMark {
    pub path: PathBuf,
    pub len: u64,
}

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}.seg"))
}

/// The ids of the segments in `dir`, oldest first.
pub fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".seg").and_then(|stem| stem.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Why a record could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// A short or damaged record at `offset`: a torn tail when it is the last one.
    Damaged {
        offset: u64,
        reason: String,
    },
}

/// Reads one segment's records in order.
pub struct SegmentReader {
    file: BufReader<File>,
    /// The offset of the next record.
    offset: u64,
}

impl SegmentReader {
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let mut file = BufReader::with_capacity(256 << 10, File::open(path).map_err(ReadError::Io)?);
        let mut magic = [0; MAGIC.len()];
        match read_full(&mut file, &mut magic).map_err(ReadError::Io)? {
            n if n == MAGIC.len() && &magic == MAGIC => Ok(Self { file, offset: MAGIC.len() as u64 }),
            _ => Err(ReadError::Damaged { offset: 0, reason: "it does not start like a skippr buffer segment".into() }),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, or `None` at the end of the file.
    pub fn next(&mut self) -> Result<Option<Record>, ReadError> {
        let damaged = |offset, reason: String| ReadError::Damaged { offset, reason };
        let mut header = [0; HEADER_BYTES];
        match read_full(&mut self.file, &mut header).map_err(ReadError::Io)? {
            0 => return Ok(None),
            HEADER_BYTES => {}
            n => return Err(damaged(self.offset, format!("the file ends {n} bytes into a record header"))),
        }
        let body_len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if body_len > MAX_BODY_BYTES {
            return Err(damaged(self.offset, format!("a record claims {body_len} bytes")));
        }
        let mut body = vec![0; body_len as usize];
        let read = read_full(&mut self.file, &mut body).map_err(ReadError::Io)?;
        if read < body.len() {
            return Err(damaged(self.offset, format!("the file ends {read} bytes into a {body_len}-byte record")));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header[8..]);
        hasher.update(&body);
        if hasher.finalize() != crc {
            return Err(damaged(self.offset, "a record's checksum does not match".into()));
        }
        let record = Record::decode(header[8], body).map_err(|reason| damaged(self.offset, reason))?;
        self.offset += (HEADER_BYTES + body_len as usize) as u64;
        Ok(Some(record))
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sequence: u64, payload: &'static [u8]) -> Record {
        Record::Frame {
            sequence,
            connection_id: 2,
            received_at_ms: 99,
            kind: FrameKind::Text,
            payload: Bytes::from_static(payload),
        }
    }

    fn segment(records: &[Record]) -> (PathBuf, PathBuf, Vec<u8>) {
        let dir = crate::buffer::scratch_dir(&format!("log-{}", records.len()));
        let mut bytes = MAGIC.to_vec();
        for record in records {
            record.encode(&mut bytes);
        }
        let path = segment_path(&dir, 1);
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    fn read_all(path: &Path) -> (Vec<Record>, Option<ReadError>) {
        let mut reader = SegmentReader::open(path).unwrap();
        let mut records = Vec::new();
        loop {
            match reader.next() {
                Ok(Some(record)) => records.push(record),
                Ok(None) => return (records, None),
                Err(err) => return (records, Some(err)),
            }
        }
    }

    #[test]
    fn records_read_back_as_written() {
        let checkpoint = Checkpoint {
            next_unsettled: 4,
            settled_above: vec![6],
            destination: Some(SinkMark { path: "out.jsonl".into(), len: 10 }),
            ..Checkpoint::default()
        };
        let records = vec![
            frame(4, b"{\"a\":1}"),
            Record::Unreadable {
                sequence: 5,
                connection_id: 2,
                received_at_ms: 3,
                size: 1 << 30,
                reason: "too large".into(),
            },
            Record::Checkpoint(checkpoint),
            Record::Frame {
                sequence: 6,
                connection_id: 3,
                received_at_ms: 7,
                kind: FrameKind::Binary,
                payload: Bytes::from_static(b"\x00\xff"),
            },
        ];
        let (_dir, path, _) = segment(&records);
        let (read, error) = read_all(&path);
        assert!(error.is_none());
        assert_eq!(read, records);
    }

    #[test]
    fn a_torn_tail_and_a_flipped_bit_are_caught() {
        let (_dir, path, bytes) = segment(&[frame(0, b"first"), frame(1, b"second")]);
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (read, error) = read_all(&path);
        assert_eq!(read, [frame(0, b"first")]);
        assert!(matches!(error, Some(ReadError::Damaged { offset, .. }) if offset > 8), "{error:?}");

        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let (read, error) = read_all(&path);
        assert_eq!(read.len(), 1);
        assert!(matches!(error, Some(ReadError::Damaged { reason, .. }) if reason.contains("checksum")));
    }

    #[test]
    fn a_file_of_another_format_is_refused() {
        let path = crate::buffer::scratch_dir("log-other").join("x.seg");
        std::fs::write(&path, b"not a segment").unwrap();
        assert!(matches!(SegmentReader::open(&path), Err(ReadError::Damaged { offset: 0, .. })));
    }
}
