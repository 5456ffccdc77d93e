//! Helpers shared by the integration tests.

pub mod binary;
pub mod flood;
pub mod nats;
pub mod postgres;
pub mod proxy;
pub mod python;
pub mod server;
pub mod tls;
pub mod toolchains;

use std::path::{Path, PathBuf};

use skippr::runtime::{FrameKind, FrameList, InstanceLimits, Runtime, ShaperInstance, SourceInfo};

/// Runs scripts/services with `action` (start, restart-postgres, restart-nats): the real
/// PostgreSQL and nats-server the destination tests use.
pub fn services(action: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services");
    let status = std::process::Command::new(script).arg(action).status().expect("scripts/services runs");
    assert!(status.success(), "scripts/services {action} failed: install postgresql and nats-server (apt-get)");
}

/// Connects with `connect`; when nothing answers, starts the services (once per test
/// run) and connects again.
pub async fn connect_or_start<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    connect: impl Fn() -> F,
) -> T {
    static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if let Ok(connected) = connect().await {
        return connected;
    }
    STARTED.get_or_init(|| services("start"));
    connect().await.unwrap_or_else(|err| panic!("the test {what} answers after scripts/services start: {err:?}"))
}

/// A runtime without the disk cache: what it compiles, it compiled itself.
pub fn runtime() -> Runtime {
    Runtime::with_disk_cache(None).unwrap()
}

/// A test fixture component built by the host's build script.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("SKIPPR_FIXTURES_DIR")).join(format!("{name}.wasm"))
}

pub fn source() -> SourceInfo {
    SourceInfo { url: "ws://feed.test/v1".into(), host: "feed.test".into(), ..SourceInfo::default() }
}

/// A default-shaper instance with default limits.
pub fn default_instance(runtime: &Runtime, name: &str) -> ShaperInstance {
    runtime.default_transform().unwrap().instantiate(name, &source(), "{}", InstanceLimits::default()).unwrap()
}

/// `count` JSON text frames numbered from `first`.
pub fn json_frames(first: u64, count: u64) -> FrameList {
    let mut frames = FrameList::default();
    for sequence in first..first + count {
        frames.push(sequence, FrameKind::Text, format!(r#"{{"n":{sequence}}}"#).as_bytes(), 1_000 + sequence);
    }
    frames
}

/// Pushes frames and flushes, returning the sequences of every record that came out.
pub fn round_trip(instance: &mut ShaperInstance, frames: &FrameList) -> Vec<u64> {
    let mut output = instance.push(frames, 0).unwrap();
    output.batches.extend(instance.flush().unwrap().batches);
    output.batches.iter().flat_map(|batch| batch.record_sequences.clone()).collect()
}
