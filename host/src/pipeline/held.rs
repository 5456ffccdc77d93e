//! Frames pushed into the transform that it has not returned yet (as records, a rejection
//! or a drop). The host keeps them, so when an instance fails they are dead-lettered with
//! the reason instead of vanishing with it, and the buffer can settle them.

use std::collections::VecDeque;

use crate::runtime::{FrameKind, FrameList};

/// A frame the host still holds: where it came from and what it was.
pub struct HeldFrame<'a> {
    pub sequence: u64,
    pub connection_id: u64,
    pub kind: FrameKind,
    pub payload: &'a [u8],
    pub received_at_ms: u64,
}

#[derive(Default)]
pub struct HeldFrames {
    /// In push order, so in sequence order.
    lists: VecDeque<HeldList>,
    unsettled: usize,
    bytes: usize,
}

struct HeldList {
    frames: FrameList,
    connection_id: u64,
    settled: Vec<bool>,
    unsettled: usize,
}

impl HeldFrames {
    /// Keeps a pushed list until each of its frames is returned.
    pub fn hold(&mut self, frames: FrameList, connection_id: u64) {
        if frames.is_empty() {
            return;
        }
        let count = frames.len();
        self.unsettled += count;
        self.bytes += frames.payload_bytes();
        self.lists.push_back(HeldList { settled: vec![false; count], unsettled: count, frames, connection_id });
    }

    /// Frames held and not returned yet.
    pub fn len(&self) -> usize {
        self.unsettled
    }

    pub fn is_empty(&self) -> bool {
        self.unsettled == 0
    }

    /// Payload bytes kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Marks a frame returned; false if it was not held (or already returned).
    pub fn settle(&mut self, sequence: u64) -> bool {
        let Some((list, index)) = self.position(sequence) else { return false };
        let held = &mut self.lists[list];
        if std::mem::replace(&mut held.settled[index], true) {
            return false;
        }
        held.unsettled -= 1;
        self.unsettled -= 1;
        while self.lists.front().is_some_and(|front| front.unsettled == 0) {
            let done = self.lists.pop_front().expect("checked above");
            self.bytes -= done.frames.payload_bytes();
        }
        true
    }

    /// A held frame that is not returned yet.
    pub fn find(&self, sequence: u64) -> Option<HeldFrame<'_>> {
        let (list, index) = self.position(sequence)?;
        let held = &self.lists[list];
        (!held.settled[index]).then(|| held.frame(index))
    }

    /// Hands out every frame not returned yet and forgets them all.
    pub fn drain(&mut self, mut each: impl FnMut(HeldFrame<'_>)) {
        for held in std::mem::take(&mut self.lists) {
            for index in (0..held.settled.len()).filter(|&index| !held.settled[index]) {
                each(held.frame(index));
            }
        }
        self.unsettled = 0;
        self.bytes = 0;
    }

    fn position(&self, sequence: u64) -> Option<(usize, usize)> {
        self.lists.iter().enumerate().find_map(|(list, held)| held.frames.index_of(sequence).map(|index| (list, index)))
    }
}

impl HeldList {
    fn frame(&self, index: usize) -> HeldFrame<'_> {
        let sequence = self.frames.sequences()[index];
        let (kind, payload, received_at_ms) = self.frames.get(index);
        HeldFrame { sequence, connection_id: self.connection_id, kind, payload, received_at_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(sequences: impl IntoIterator<Item = u64>) -> FrameList {
        let mut frames = FrameList::default();
        for sequence in sequences {
            frames.push(sequence, FrameKind::Text, b"ab", 7);
        }
        frames
    }

    #[test]
    fn frames_are_kept_until_returned_and_handed_out_on_failure() {
        let mut held = HeldFrames::default();
        held.hold(list(0..3), 1);
        held.hold(list(3..5), 2);
        assert_eq!((held.len(), held.bytes()), (5, 10));
        assert!(held.settle(0) && held.settle(2) && held.settle(1));
        assert!(!held.settle(1), "returned twice counts once");
        assert!(!held.settle(9), "never held");
        assert_eq!((held.len(), held.bytes()), (2, 4), "the first list is freed once all returned");
        assert_eq!(held.find(4).map(|frame| frame.connection_id), Some(2));
        held.settle(3);
        let mut drained = Vec::new();
        held.drain(|frame| drained.push((frame.sequence, frame.payload.to_vec())));
        assert_eq!(drained, [(4, b"ab".to_vec())]);
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn a_list_with_gaps_in_its_sequences_finds_every_frame() {
        // Sequences 2 and 5 went elsewhere (an unreadable frame, a dead letter).
        let mut held = HeldFrames::default();
        held.hold(list([0, 1, 3, 4, 6]), 1);
        assert!(!held.settle(2) && !held.settle(5) && !held.settle(7), "never held");
        assert_eq!(held.find(6).map(|frame| frame.sequence), Some(6));
        assert!([6, 0, 4, 3, 1].into_iter().all(|sequence| held.settle(sequence)));
        assert!(held.is_empty());
    }
}
