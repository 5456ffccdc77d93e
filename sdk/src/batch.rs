//! Groups encoded records into batches closed by count, size or age.

use crate::frame::Limits;

/// A closed batch: records as JSON Lines plus where each record ends and came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
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
}

/// The batch being filled and the bounds that close it.
#[derive(Debug)]
pub struct Batcher {
    limits: Limits,
    open: Batch,
    opened_at_ms: u64,
}

impl Batcher {
    pub fn new(limits: Limits) -> Self {
        // A zero bound would close every batch empty or never: treat it as "one".
        let limits = Limits {
            max_records: limits.max_records.max(1),
            max_bytes: limits.max_bytes.max(1),
            max_age_ms: limits.max_age_ms,
        };
        Self { limits, open: Batch::default(), opened_at_ms: 0 }
    }

    /// Appends one frame's record lines (`\n` included) to the open batch. A frame's records
    /// never straddle two batches, so a delivered batch settles whole frames (what the host's
    /// durable buffer counts on); a batch can pass `max_records` by its last frame's records.
    /// Batches that close are pushed to `closed`.
    pub fn add<'a>(
        &mut self,
        sequence: u64,
        received_at_ms: u64,
        lines: impl Iterator<Item = &'a [u8]> + Clone,
        closed: &mut Vec<Batch>,
    ) {
        let bytes: usize = lines.clone().map(<[u8]>::len).sum();
        if !self.open.is_empty() && self.open.lines.len() + bytes > self.limits.max_bytes as usize {
            // The frame does not fit: close the batch without it.
            closed.push(std::mem::take(&mut self.open));
        }
        if self.open.is_empty() {
            self.opened_at_ms = received_at_ms;
        }
        for line in lines {
            self.open.lines.extend_from_slice(line);
            self.open.record_ends.push(end_offset(&self.open.lines));
            self.open.record_sequences.push(sequence);
        }
        if self.open.len() >= self.limits.max_records as usize
            || self.open.lines.len() >= self.limits.max_bytes as usize
        {
            closed.push(std::mem::take(&mut self.open));
        }
    }

    /// Closes the open batch if its first record is at least `max_age_ms` old.
    pub fn close_expired(&mut self, now_ms: u64, closed: &mut Vec<Batch>) {
        if !self.open.is_empty() && now_ms.saturating_sub(self.opened_at_ms) >= self.limits.max_age_ms {
            closed.push(std::mem::take(&mut self.open));
        }
    }

    /// Closes the open batch, whatever its age.
    pub fn flush(&mut self, closed: &mut Vec<Batch>) {
        if !self.open.is_empty() {
            closed.push(std::mem::take(&mut self.open));
        }
    }
}

fn end_offset(lines: &[u8]) -> u32 {
    u32::try_from(lines.len()).expect("a batch is bounded by max_bytes, a u32")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_records: u32, max_bytes: u32, max_age_ms: u64) -> Limits {
        Limits { max_records, max_bytes, max_age_ms }
    }

    fn add(batcher: &mut Batcher, seq: u64, at: u64, line: &str, closed: &mut Vec<Batch>) {
        batcher.add(seq, at, std::iter::once(line.as_bytes()), closed);
    }

    #[test]
    fn closes_at_max_records() {
        let mut batcher = Batcher::new(limits(2, 1000, 1000));
        let mut closed = Vec::new();
        for seq in 0..5 {
            add(&mut batcher, seq, 0, "a\n", &mut closed);
        }
        assert_eq!(closed.len(), 2);
        assert_eq!(closed[0].record_sequences, [0, 1]);
        assert_eq!(closed[1].record_sequences, [2, 3]);
        assert_eq!(closed[0].lines, b"a\na\n");
        assert_eq!(closed[0].record_ends, [2, 4]);
        batcher.flush(&mut closed);
        assert_eq!(closed[2].record_sequences, [4]);
    }

    #[test]
    fn a_frames_records_never_straddle_two_batches() {
        let mut batcher = Batcher::new(limits(2, 10, 1000));
        let mut closed = Vec::new();
        add(&mut batcher, 0, 0, "a\n", &mut closed);
        batcher.add(1, 0, [&b"b\n"[..], b"c\n", b"d\n"].into_iter(), &mut closed);
        assert_eq!(closed[0].record_sequences, [0, 1, 1, 1], "over max_records by frame 1's records");
        batcher.add(2, 0, [&b"1234\n"[..], b"5678\n"].into_iter(), &mut closed);
        batcher.add(3, 0, [&b"xyz\n"[..]].into_iter(), &mut closed);
        batcher.flush(&mut closed);
        assert_eq!(closed[1].record_sequences, [2, 2], "frame 3 would overflow max_bytes: next batch");
        assert_eq!(closed[2].record_sequences, [3]);
    }

    #[test]
    fn a_record_that_would_overflow_max_bytes_starts_the_next_batch() {
        let mut batcher = Batcher::new(limits(100, 10, 1000));
        let mut closed = Vec::new();
        add(&mut batcher, 0, 0, "1234\n", &mut closed);
        add(&mut batcher, 1, 0, "123456\n", &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].lines, b"1234\n");
        batcher.flush(&mut closed);
        assert_eq!(closed[1].lines, b"123456\n");
        assert_eq!(closed[1].record_ends, [7]);
    }

    #[test]
    fn a_record_larger_than_max_bytes_is_a_batch_of_its_own() {
        let mut batcher = Batcher::new(limits(100, 4, 1000));
        let mut closed = Vec::new();
        add(&mut batcher, 7, 0, "0123456789\n", &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].record_sequences, [7]);
    }

    #[test]
    fn closes_by_age_of_the_first_record() {
        let mut batcher = Batcher::new(limits(100, 1000, 50));
        let mut closed = Vec::new();
        add(&mut batcher, 0, 1_000, "a\n", &mut closed);
        add(&mut batcher, 1, 1_040, "b\n", &mut closed);
        batcher.close_expired(1_049, &mut closed);
        assert!(closed.is_empty());
        batcher.close_expired(1_050, &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].len(), 2);
        batcher.close_expired(9_999, &mut closed);
        assert_eq!(closed.len(), 1, "an empty batch never closes");
    }

    #[test]
    fn zero_bounds_are_treated_as_one() {
        let mut batcher = Batcher::new(limits(0, 0, 0));
        let mut closed = Vec::new();
        add(&mut batcher, 0, 0, "a\n", &mut closed);
        assert_eq!(closed.len(), 1);
    }
}
