//! What one transform instance may use, and the store limiter that enforces memory.

/// A shaper holds a few open batches; 64 MiB leaves room for 16 MiB messages.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;
/// The default shaper needs well under 1 ms for 1024 frames; slower languages ~40 ms.
pub const DEFAULT_CPU_MS_PER_CALL: u64 = 500;
/// Bounds what one call may hand downstream: a 16 MiB binary message is ~22 MiB as base64.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 32 << 20;
/// Guest log messages are for people: longer ones are cut.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4 << 10;
/// A chatty guest must not flood the host's log: what is over this per call is dropped.
pub const MAX_LOG_BYTES_PER_CALL: usize = 64 << 10;

/// The limits of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// The most linear memory (all memories together) the instance may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget for one call into the guest, measured in epoch ticks.
    pub cpu_ms_per_call: u64,
    /// The most record bytes one call may return.
    pub max_output_bytes: usize,
}

impl Default for InstanceLimits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            cpu_ms_per_call: DEFAULT_CPU_MS_PER_CALL,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// Caps linear memory and remembers a refused growth, so the resulting trap can be
/// reported as "memory cap hit" rather than as an opaque trap.
#[derive(Debug)]
pub(super) struct MemoryLimiter {
    pub cap_bytes: usize,
    /// The size the guest asked for when it was refused, if it was.
    pub refused_growth_to: Option<usize>,
    /// The linear memory granted so far, for the memory gauge.
    pub granted_bytes: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap_bytes {
            self.refused_growth_to = Some(desired);
            wasmtime::bail!("memory cap of {} bytes hit growing from {current} to {desired} bytes", self.cap_bytes);
        }
        self.granted_bytes = self.granted_bytes + desired - current;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a shaper needs a few thousand at most.
        Ok(desired <= 100_000)
    }
}
