//! The writer's side of the buffer: which frames are settled (written to their sink,
//! dead-lettered or dropped), reported as checkpoints at most once per commit interval.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::log::{Checkpoint, SinkMark};

/// Settled frames by sequence: a prefix, and the few settled out of order beyond it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settlement {
    next_unsettled: u64,
    above: BTreeSet<u64>,
}

impl Settlement {
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Self {
        let mut settlement = Self { next_unsettled: checkpoint.next_unsettled, above: BTreeSet::new() };
        for &sequence in &checkpoint.settled_above {
            settlement.settle(sequence);
        }
        settlement
    }

    /// Marks one frame settled; a frame settled twice (records of one frame) counts once.
    pub fn settle(&mut self, sequence: u64) {
        if sequence < self.next_unsettled {
            return;
        }
        if sequence > self.next_unsettled {
            self.above.insert(sequence);
            return;
        }
        self.next_unsettled += 1;
        while self.above.remove(&self.next_unsettled) {
            self.next_unsettled += 1;
        }
    }

    fn checkpoint(&self, destination: Option<SinkMark>, deadletter: Option<SinkMark>) -> Checkpoint {
        Checkpoint {
            next_unsettled: self.next_unsettled,
            settled_above: self.above.iter().copied().collect(),
            destination,
            deadletter,
            // The appender fills in the numbering it owns.
            ..Checkpoint::default()
        }
    }
}

/// Where the writer sends checkpoints, and how often.
#[derive(Debug)]
pub struct Progress {
    checkpoints: mpsc::UnboundedSender<Checkpoint>,
    interval: Duration,
    reported_at: Instant,
}

impl Progress {
    pub(super) fn new(checkpoints: mpsc::UnboundedSender<Checkpoint>, interval: Duration) -> Self {
        Self { checkpoints, interval, reported_at: Instant::now() }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// True once a commit interval has passed since the last report.
    pub fn due(&self) -> bool {
        self.reported_at.elapsed() >= self.interval
    }

    /// Reports what is settled once the sinks are synced to the given lengths.
    pub fn report(&mut self, settlement: &Settlement, destination: Option<SinkMark>, deadletter: Option<SinkMark>) {
        self.reported_at = Instant::now();
        let _ = self.checkpoints.send(settlement.checkpoint(destination, deadletter));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_moves_over_frames_settled_out_of_order() {
        let mut settlement = Settlement::default();
        for sequence in [0, 2, 3, 2, 5] {
            settlement.settle(sequence);
        }
        let checkpoint = settlement.checkpoint(None, None);
        assert_eq!((checkpoint.next_unsettled, checkpoint.settled_above.as_slice()), (1, &[2, 3, 5][..]));
        settlement.settle(1);
        settlement.settle(0);
        let checkpoint = settlement.checkpoint(None, None);
        assert_eq!((checkpoint.next_unsettled, checkpoint.settled_above.as_slice()), (4, &[5][..]));
        assert_eq!(Settlement::from_checkpoint(&checkpoint), settlement);
    }
}
