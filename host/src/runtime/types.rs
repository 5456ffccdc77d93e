//! The host's own types for what crosses the boundary: frames in; batches, rejections and
//! outbound messages out. The generated bindings convert to and from these.

use super::bindings;

// The vocabulary both sides of the boundary share comes from the SDK, so host and guest
// cannot drift apart.
pub use skippr_sdk::{Format, FrameKind, Limits as BatchLimits, Mode, Source as SourceInfo};

/// Frames packed for one `push`: every payload in one buffer plus per-frame columns, so a
/// whole list crosses into the guest in a handful of copies. It holds the generated type
/// itself, so a push lowers it with no conversion.
#[derive(Debug, Clone)]
pub struct FrameList(pub(super) bindings::Frames);

impl Default for FrameList {
    fn default() -> Self {
        Self(bindings::Frames {
            payloads: Vec::new(),
            ends: Vec::new(),
            kinds: Vec::new(),
            sequences: Vec::new(),
            received_at_ms: Vec::new(),
        })
    }
}

impl FrameList {
    /// Appends a frame. The caller bounds the list's bytes (well under 4 GiB).
    pub fn push(&mut self, sequence: u64, kind: FrameKind, payload: &[u8], received_at_ms: u64) {
        let frames = &mut self.0;
        frames.payloads.extend_from_slice(payload);
        frames.ends.push(u32::try_from(frames.payloads.len()).expect("callers bound a push far below 4 GiB"));
        frames.kinds.push(kind.into());
        frames.sequences.push(sequence);
        frames.received_at_ms.push(received_at_ms);
    }

    pub fn len(&self) -> usize {
        self.0.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.ends.is_empty()
    }

    /// The total payload bytes in the list.
    pub fn payload_bytes(&self) -> usize {
        self.0.payloads.len()
    }

    pub fn sequences(&self) -> &[u64] {
        &self.0.sequences
    }

    /// Where the frame with this sequence number is in the list.
    pub fn index_of(&self, sequence: u64) -> Option<usize> {
        let sequences = &self.0.sequences;
        // Increasing, and nearly always consecutive: the offset from the first is the index.
        let offset = usize::try_from(sequence.checked_sub(*sequences.first()?)?).ok()?;
        if sequences.get(offset) == Some(&sequence) {
            return Some(offset);
        }
        sequences.binary_search(&sequence).ok()
    }

    /// Frame `index` (below `len()`): its kind, payload and receive time.
    pub fn get(&self, index: usize) -> (FrameKind, &[u8], u64) {
        let frames = &self.0;
        let start = if index == 0 { 0 } else { frames.ends[index - 1] as usize };
        let payload = &frames.payloads[start..frames.ends[index] as usize];
        (frames.kinds[index].into(), payload, frames.received_at_ms[index])
    }

    pub fn clear(&mut self) {
        let frames = &mut self.0;
        frames.payloads.clear();
        frames.ends.clear();
        frames.kinds.clear();
        frames.sequences.clear();
        frames.received_at_ms.clear();
    }
}

/// Records as JSON Lines, with where each record ends and which frame it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub namespace: String,
    pub lines: Vec<u8>,
    pub record_ends: Vec<u32>,
    pub record_sequences: Vec<u64>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.record_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.record_ends.is_empty()
    }

    /// Each record's line, `\n` included.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.record_ends.iter().copied());
        starts.zip(&self.record_ends).map(|(start, &end)| &self.lines[start as usize..end as usize])
    }
}

/// A frame the shaper refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub sequence: u64,
    pub reason: String,
}

/// A message to send on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
}

/// What one call produced.
#[derive(Debug, Default)]
pub struct Output {
    pub batches: Vec<Batch>,
    pub rejections: Vec<Rejection>,
    /// Frames shaped into no record on purpose.
    pub dropped: Vec<u64>,
    pub outbound: Vec<Outbound>,
}

impl Output {
    pub fn record_count(&self) -> usize {
        self.batches.iter().map(Batch::len).sum()
    }
}
