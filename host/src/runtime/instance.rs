//! One transform instance in its own store: every call runs under the instance's CPU
//! budget and memory cap, and any failure is reported for this instance alone.

use std::fmt;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};

use super::bindings::{self, Bindings, BindingsPre};
use super::engine::EPOCH_TICK;
use super::limits::InstanceLimits;
use super::store::StoreData;
use super::types::{FrameList, Outbound, Output, SourceInfo};

/// A call into one instance failed; the instance must not be called again.
#[derive(Debug, thiserror::Error)]
#[error("transform instance `{instance}` failed in `{call}`: {failure}")]
pub struct CallError {
    pub instance: String,
    pub call: &'static str,
    pub failure: Failure,
}

/// What went wrong inside the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("it refused its options: {0}")]
    OptionsRefused(String),
    #[error("it ran past its CPU budget of {limit_ms} ms per call (limits.cpu_ms_per_call)")]
    CpuBudget { limit_ms: u64 },
    #[error("it hit its memory cap of {limit_bytes} bytes asking for {requested_bytes} bytes (limits.memory_mb)")]
    MemoryCap { limit_bytes: usize, requested_bytes: usize },
    #[error("it trapped: {trap}{}", said(.last_words))]
    Trapped { trap: String, last_words: Option<String> },
    #[error("it returned an invalid output: {0}")]
    InvalidOutput(String),
    #[error("it failed earlier and cannot be called again")]
    Poisoned,
    #[error("it holds {frames} frames without returning them, over the host's {limit_bytes}-byte bound")]
    HoldsTooMuch { frames: usize, limit_bytes: usize },
}

fn said(last_words: &Option<String>) -> String {
    last_words.as_ref().map(|words| format!(" (the guest said: {words})")).unwrap_or_default()
}

pub struct ShaperInstance {
    store: Store<StoreData>,
    bindings: Bindings,
    shaper: ResourceAny,
    limits: InstanceLimits,
    poisoned: bool,
    /// Time spent inside the guest, all calls together.
    busy: Duration,
}

impl fmt::Debug for ShaperInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShaperInstance").field("instance", &self.store.data().instance).finish_non_exhaustive()
    }
}

impl ShaperInstance {
    pub(super) fn new(
        pre: &BindingsPre<StoreData>,
        instance: &str,
        source: &SourceInfo,
        options: &str,
        limits: InstanceLimits,
    ) -> Result<Self, CallError> {
        let mut store = Store::new(pre.engine(), StoreData::new(instance.to_owned(), limits.memory_bytes));
        store.limiter(|data| &mut data.limiter);
        store.epoch_deadline_trap();
        let fail = |failure| CallError { instance: instance.to_owned(), call: "init", failure };
        store.data_mut().start_call();
        set_budget(&mut store, limits);
        let instantiated = pre.instantiate(&mut store).and_then(|bindings| {
            set_budget(&mut store, limits);
            let shaper = bindings.skippr_connector_shaper().shaper();
            let init = shaper.call_init(&mut store, &bindings::source_info(source), options)?;
            Ok((bindings, init))
        });
        let last_words = store.data_mut().finish_call();
        let (bindings, init) = instantiated.map_err(|err| fail(classify(&store, limits, &err, last_words)))?;
        let shaper = init.map_err(|reason| fail(Failure::OptionsRefused(reason)))?;
        Ok(Self { store, bindings, shaper, limits, poisoned: false, busy: Duration::ZERO })
    }

    pub fn name(&self) -> &str {
        &self.store.data().instance
    }

    /// Time spent inside the guest so far.
    pub fn busy(&self) -> Duration {
        self.busy
    }

    /// The linear memory the guest has grown to.
    pub fn memory_bytes(&self) -> usize {
        self.store.data().limiter.granted_bytes
    }

    /// Shapes a list of frames.
    pub fn push(&mut self, frames: &FrameList, now_ms: u64) -> Result<Output, CallError> {
        let output = self.call("push", |store, bindings, shaper| {
            bindings.skippr_connector_shaper().shaper().call_push(store, shaper, &frames.0, now_ms)
        })?;
        self.checked(bindings::output(output), "push")
    }

    /// Lets time pass so old batches close.
    pub fn tick(&mut self, now_ms: u64) -> Result<Output, CallError> {
        let output = self.call("tick", |store, bindings, shaper| {
            bindings.skippr_connector_shaper().shaper().call_tick(store, shaper, now_ms)
        })?;
        self.checked(bindings::output(output), "tick")
    }

    /// Tells the shaper a connection opened; returns what to send on it first.
    pub fn on_connect(&mut self, connection_id: u64) -> Result<Vec<Outbound>, CallError> {
        let outbound = self.call("on-connect", |store, bindings, shaper| {
            bindings.skippr_connector_shaper().shaper().call_on_connect(store, shaper, connection_id)
        })?;
        Ok(bindings::outbound(outbound))
    }

    /// Closes every open batch.
    pub fn flush(&mut self) -> Result<Output, CallError> {
        let output = self.call("flush", |store, bindings, shaper| {
            bindings.skippr_connector_shaper().shaper().call_flush(store, shaper)
        })?;
        self.checked(bindings::output(output), "flush")
    }

    fn call<R>(
        &mut self,
        call: &'static str,
        run: impl FnOnce(&mut Store<StoreData>, &Bindings, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if self.poisoned {
            return Err(self.error(call, Failure::Poisoned));
        }
        self.store.data_mut().start_call();
        set_budget(&mut self.store, self.limits);
        let started = Instant::now();
        let result = run(&mut self.store, &self.bindings, self.shaper);
        self.busy += started.elapsed();
        let last_words = self.store.data_mut().finish_call();
        result.map_err(|err| {
            let failure = classify(&self.store, self.limits, &err, last_words);
            self.poisoned = true;
            self.error(call, failure)
        })
    }

    fn checked(&mut self, output: Output, call: &'static str) -> Result<Output, CallError> {
        check_output(&output, self.limits.max_output_bytes).map_err(|reason| {
            self.poisoned = true;
            self.error(call, Failure::InvalidOutput(reason))
        })?;
        Ok(output)
    }

    fn error(&self, call: &'static str, failure: Failure) -> CallError {
        CallError { instance: self.name().to_owned(), call, failure }
    }
}

fn set_budget(store: &mut Store<StoreData>, limits: InstanceLimits) {
    let tick_ms = EPOCH_TICK.as_millis() as u64;
    // One extra tick: the current one may be about to end.
    store.set_epoch_deadline(limits.cpu_ms_per_call.div_ceil(tick_ms) + 1);
}

fn classify(
    store: &Store<StoreData>,
    limits: InstanceLimits,
    err: &wasmtime::Error,
    last_words: Option<String>,
) -> Failure {
    if let Some(requested_bytes) = store.data().limiter.refused_growth_to {
        return Failure::MemoryCap { limit_bytes: limits.memory_bytes, requested_bytes };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::CpuBudget { limit_ms: limits.cpu_ms_per_call },
        Some(trap) => Failure::Trapped { trap: trap.to_string(), last_words },
        None => Failure::Trapped { trap: format!("{err:#}"), last_words },
    }
}

/// A guest is untrusted: its batches must be well-formed JSON Lines before anything
/// downstream relies on them.
fn check_output(output: &Output, max_output_bytes: usize) -> Result<(), String> {
    let total: usize = output.batches.iter().map(|batch| batch.lines.len()).sum();
    if total > max_output_bytes {
        return Err(format!(
            "{total} bytes of records in one call, over the limit of {max_output_bytes} (limits.max_output_bytes)"
        ));
    }
    for batch in &output.batches {
        if batch.record_ends.len() != batch.record_sequences.len() {
            return Err(format!(
                "a batch has {} record ends but {} record sequences",
                batch.record_ends.len(),
                batch.record_sequences.len()
            ));
        }
        // When the batch holds no more `\n` than records, each record that ends in one holds
        // no other: one count of the batch instead of a search per record.
        let only_final_line_breaks = line_breaks(&batch.lines) == batch.record_ends.len();
        let mut start = 0;
        for &end in &batch.record_ends {
            let line = batch.lines.get(start..end as usize).ok_or_else(|| {
                format!("a record ends at byte {end}, outside its batch of {} bytes", batch.lines.len())
            })?;
            let inner = &line[..line.len().saturating_sub(1)];
            if line.last() != Some(&b'\n') || (!only_final_line_breaks && inner.contains(&b'\n')) {
                return Err(format!("the record at bytes {start}..{end} is not exactly one line ending in \\n"));
            }
            start = end as usize;
        }
        if start != batch.lines.len() {
            return Err(format!("{} bytes after the last record of a batch", batch.lines.len() - start));
        }
    }
    Ok(())
}

/// How many `\n` bytes `bytes` holds, counted in byte-wide counters 255 bytes at a time,
/// a loop the compiler turns into vector instructions.
fn line_breaks(bytes: &[u8]) -> usize {
    let count_chunk = |chunk: &[u8]| chunk.iter().fold(0u8, |count, &byte| count + u8::from(byte == b'\n'));
    bytes.chunks(255).map(|chunk| usize::from(count_chunk(chunk))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Batch;

    fn output_of(lines: &[u8], ends: Vec<u32>, sequences: Vec<u64>) -> Output {
        Output {
            batches: vec![Batch {
                namespace: "n".into(),
                lines: lines.to_vec(),
                record_ends: ends,
                record_sequences: sequences,
            }],
            ..Output::default()
        }
    }

    #[test]
    fn well_formed_batches_pass() {
        assert_eq!(check_output(&output_of(b"{}\n[]\n", vec![3, 6], vec![1, 2]), 100), Ok(()));
    }

    #[test]
    fn malformed_batches_are_refused() {
        let cases = [
            (output_of(b"{}\n", vec![99], vec![0]), "outside its batch"),
            (output_of(b"{}\n", vec![3], vec![]), "record sequences"),
            (output_of(b"{}", vec![2], vec![0]), "exactly one line"),
            (output_of(b"{\n}\n", vec![4], vec![0]), "exactly one line"),
            (output_of(b"{}\n{}\n", vec![3], vec![0]), "after the last record"),
            (output_of(b"{}\n", vec![3], vec![0]), ""),
        ];
        for (output, expected) in cases {
            let result = check_output(&output, 100);
            match expected {
                "" => assert_eq!(result, Ok(())),
                _ => assert!(result.as_ref().unwrap_err().contains(expected), "{result:?}"),
            }
        }
    }

    #[test]
    fn output_over_the_byte_limit_is_refused() {
        let err = check_output(&output_of(b"{}\n", vec![3], vec![0]), 2).unwrap_err();
        assert!(err.contains("over the limit of 2"), "{err}");
    }
}
