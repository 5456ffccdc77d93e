//! The data each instance's store holds: a WASI context that grants nothing, the memory
//! limiter, and the capped log the guest may write to.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Level, LoggingHost, TypesHost};
use super::limits::{MAX_LOG_BYTES_PER_CALL, MAX_LOG_MESSAGE_BYTES, MemoryLimiter};

pub(super) struct StoreData {
    /// Names the instance in logs and errors.
    pub instance: String,
    pub limiter: MemoryLimiter,
    pub log: GuestLog,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl StoreData {
    pub fn new(instance: String, memory_cap_bytes: usize) -> Self {
        Self {
            instance,
            limiter: MemoryLimiter { cap_bytes: memory_cap_bytes, refused_growth_to: None },
            log: GuestLog::default(),
            // No preopened dirs, env, args, network or stdio: the builder's defaults grant none.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// What the guest logged during the current call.
#[derive(Debug, Default)]
pub(super) struct GuestLog {
    bytes_this_call: usize,
    dropped_this_call: usize,
    /// The last error-level message: a panic's text, reported with the trap it causes.
    pub last_error: Option<String>,
}

impl GuestLog {
    /// Starts a new call's budget; returns how many messages the last call dropped.
    pub fn start_call(&mut self) -> usize {
        self.bytes_this_call = 0;
        self.last_error = None;
        std::mem::take(&mut self.dropped_this_call)
    }
}

impl TypesHost for StoreData {}

impl LoggingHost for StoreData {
    fn log(&mut self, level: Level, mut message: String) {
        let log = &mut self.log;
        if log.bytes_this_call >= MAX_LOG_BYTES_PER_CALL {
            log.dropped_this_call += 1;
            return;
        }
        truncate_at_char(&mut message, MAX_LOG_MESSAGE_BYTES);
        log.bytes_this_call += message.len();
        let instance = self.instance.as_str();
        match level {
            Level::Debug => tracing::debug!(instance, "{message}"),
            Level::Info => tracing::info!(instance, "{message}"),
            Level::Warn => tracing::warn!(instance, "{message}"),
            Level::Error => {
                tracing::error!(instance, "{message}");
                log.last_error = Some(message);
            }
        }
    }
}

fn truncate_at_char(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let mut text = "é".repeat(10);
        truncate_at_char(&mut text, 5);
        assert_eq!(text, "éé…");
    }

    #[test]
    fn a_call_logs_at_most_its_budget_and_counts_the_rest() {
        let mut data = StoreData::new("t".into(), 1 << 20);
        let message = "x".repeat(MAX_LOG_MESSAGE_BYTES);
        for _ in 0..(MAX_LOG_BYTES_PER_CALL / MAX_LOG_MESSAGE_BYTES + 3) {
            data.log(Level::Debug, message.clone());
        }
        assert_eq!(data.log.start_call(), 3);
        assert_eq!(data.log.start_call(), 0);
    }
}
