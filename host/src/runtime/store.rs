//! The data each instance's store holds: a WASI context that grants nothing, the memory
//! limiter, and the capped log the guest may write to.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Level, LoggingHost, TypesHost};
use super::limits::{MAX_LOG_BYTES_PER_CALL, MAX_LOG_MESSAGE_BYTES, MemoryLimiter};
use super::stderr::CapturedStderr;

pub(super) struct StoreData {
    /// Names the instance in logs and errors.
    pub instance: String,
    pub limiter: MemoryLimiter,
    pub log: GuestLog,
    pub stderr: CapturedStderr,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl StoreData {
    pub fn new(instance: String, memory_cap_bytes: usize) -> Self {
        let stderr = CapturedStderr::default();
        // No preopened dirs, env, args or network: the builder's defaults grant none.
        // stdin is empty, stdout discarded, stderr captured for the host's log.
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        Self {
            instance,
            limiter: MemoryLimiter { cap_bytes: memory_cap_bytes, refused_growth_to: None, granted_bytes: 0 },
            log: GuestLog::default(),
            stderr,
            wasi,
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
    /// The last error-level message: it explains a trap better than the trap does.
    last_error: Option<String>,
}

/// How much of the guest's stderr explains a failure; panics print a few short lines.
const LAST_WORDS_BYTES: usize = 1024;

impl StoreData {
    /// Starts a call with a fresh log budget.
    pub fn start_call(&mut self) {
        self.log = GuestLog::default();
        self.stderr.take();
    }

    /// Ends a call: sends what the guest printed to the host's log and returns its last
    /// words (its last error message, else its stderr), which explain a trap.
    pub fn finish_call(&mut self) -> Option<String> {
        let (stderr, dropped_stderr_bytes) = self.stderr.take();
        let instance = self.instance.as_str();
        for line in stderr.lines().filter(|line| !line.trim().is_empty()) {
            tracing::info!(instance, "guest stderr: {line}");
        }
        let dropped_messages = self.log.dropped_this_call;
        if dropped_messages > 0 || dropped_stderr_bytes > 0 {
            tracing::warn!(
                instance,
                dropped_messages,
                dropped_stderr_bytes,
                "Guest output over the per-call cap was dropped."
            );
        }
        let stderr = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut last_words = self.log.last_error.take().or_else(|| (!stderr.is_empty()).then_some(stderr))?;
        truncate_at_char(&mut last_words, LAST_WORDS_BYTES);
        Some(last_words)
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
    fn the_last_error_message_explains_a_failure_better_than_stderr() {
        let mut data = StoreData::new("t".into(), 1 << 20);
        data.start_call();
        data.log(Level::Error, "bad options".into());
        assert_eq!(data.finish_call().as_deref(), Some("bad options"));
        assert_eq!(data.finish_call(), None, "each call starts with no last words");
    }

    #[test]
    fn a_call_logs_at_most_its_budget_and_counts_the_rest() {
        let mut data = StoreData::new("t".into(), 1 << 20);
        let message = "x".repeat(MAX_LOG_MESSAGE_BYTES);
        for _ in 0..(MAX_LOG_BYTES_PER_CALL / MAX_LOG_MESSAGE_BYTES + 3) {
            data.log(Level::Debug, message.clone());
        }
        assert_eq!(data.log.dropped_this_call, 3);
        data.start_call();
        assert_eq!(data.log.dropped_this_call, 0);
    }
}
