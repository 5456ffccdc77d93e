//! Per-pipeline counters: what was received, delivered and dead-lettered, so that
//! received = delivered + dead-lettered can be checked and reported.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    pub frames_received: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Frames made durable in the disk buffer (in memory: taken by the shaper).
    pub frames_accepted: AtomicU64,
    /// Accepted frames an earlier run left undelivered, delivered first by this one.
    pub frames_recovered: AtomicU64,
    /// Bytes in the disk buffer's log.
    pub buffer_bytes: AtomicU64,
    pub records_delivered: AtomicU64,
    pub frames_dead_lettered: AtomicU64,
    /// Frames the transform shaped into no record on purpose (a filter).
    pub frames_dropped: AtomicU64,
    pub connections: AtomicU64,
    /// Connections after the first: each one followed a drop.
    pub reconnects: AtomicU64,
    pub connect_failures: AtomicU64,
    /// 1 while a connection is open.
    pub connected: AtomicU64,
    pub transform_swaps: AtomicU64,
    pub transform_restarts: AtomicU64,
    /// Instances replaced near their memory cap.
    pub transform_recycles: AtomicU64,
    pub guest_busy_micros: AtomicU64,
    pub guest_memory_bytes: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> Summary {
        let get = Self::get;
        Summary {
            frames_received: get(&self.frames_received),
            bytes_received: get(&self.bytes_received),
            frames_accepted: get(&self.frames_accepted),
            frames_recovered: get(&self.frames_recovered),
            records_delivered: get(&self.records_delivered),
            frames_dead_lettered: get(&self.frames_dead_lettered),
            frames_dropped: get(&self.frames_dropped),
            connections: get(&self.connections),
            connect_failures: get(&self.connect_failures),
        }
    }
}

/// A snapshot of the counters, printed at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub frames_received: u64,
    pub bytes_received: u64,
    pub frames_accepted: u64,
    pub frames_recovered: u64,
    pub records_delivered: u64,
    pub frames_dead_lettered: u64,
    pub frames_dropped: u64,
    pub connections: u64,
    pub connect_failures: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {} frames ({} bytes) over {} connection(s); accepted {} frames; delivered {} records; dead-lettered {} frames",
            self.frames_received,
            self.bytes_received,
            self.connections,
            self.frames_accepted,
            self.records_delivered,
            self.frames_dead_lettered
        )?;
        if self.frames_recovered > 0 {
            write!(f, "; {} accepted frame(s) recovered from the last run", self.frames_recovered)?;
        }
        if self.frames_dropped > 0 {
            write!(f, "; the transform dropped {} frames", self.frames_dropped)?;
        }
        if self.connect_failures > 0 {
            write!(f, "; {} failed connection attempt(s)", self.connect_failures)?;
        }
        Ok(())
    }
}
