//! `skippr transform check`: loads a component, checks it against the world, and runs a
//! few sample frames through it so its author sees exactly what the host will see.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::runtime::{FrameKind, FrameList, InstanceLimits, Output, Runtime, SourceInfo, WIT_PACKAGE};

/// Frames a real feed sends: JSON, JSON that is not, plain text and binary.
const SAMPLE_FRAMES: [(FrameKind, &[u8]); 4] = [
    (FrameKind::Text, br#"{"type":"trade","symbol":"BTC-USD","price":"64012.5","size":0.25}"#),
    (FrameKind::Text, br#"{"type":"trade","symbol":"ETH-USD","#),
    (FrameKind::Text, b"heartbeat"),
    (FrameKind::Binary, &[0x00, 0x9f, 0x92, 0x96, 0xff]),
];
const SAMPLE_URL: &str = "wss://stream.example.com/v1";
const SAMPLE_TIME_MS: u64 = 1_764_763_200_000;

/// Runs the check and returns the report to print; an error says why the component is refused.
pub fn check(runtime: &Runtime, path: Option<&Path>, options: &str) -> anyhow::Result<String> {
    let started = Instant::now();
    let transform = match path {
        Some(path) => runtime.load_file(path)?,
        None => runtime.default_transform()?,
    };
    let compile_ms = milliseconds(started);
    let mut report = String::new();
    let _ = writeln!(report, "component:   {}", transform.name());
    let _ = writeln!(
        report,
        "size:        {} bytes ({:.1} MiB)",
        transform.size_bytes(),
        mebibytes(transform.size_bytes())
    );
    let _ = writeln!(report, "world:       {WIT_PACKAGE} transform (exports skippr:connector/shaper)");
    let _ = writeln!(report, "imports:     {} (all granted)", list_or_none(transform.imports()));
    let _ = writeln!(report, "compile:     {compile_ms:.1} ms");

    let source =
        SourceInfo { url: SAMPLE_URL.to_owned(), host: "stream.example.com".to_owned(), ..SourceInfo::default() };
    let started = Instant::now();
    let mut instance = transform.instantiate("check", &source, options, InstanceLimits::default())?;
    let _ = writeln!(report, "instantiate: {:.2} ms, init included (options: {options})", milliseconds(started));
    let _ = writeln!(report, "memory:      {:.1} MiB of linear memory after init", mebibytes(instance.memory_bytes()));

    let outbound = instance.on_connect(1)?;
    let _ = writeln!(report, "on-connect:  {} message(s) to send", outbound.len());
    let mut frames = FrameList::default();
    for (sequence, (kind, payload)) in (0u64..).zip(SAMPLE_FRAMES) {
        frames.push(sequence, kind, payload, SAMPLE_TIME_MS);
    }
    let mut output = instance.push(&frames, SAMPLE_TIME_MS)?;
    let flushed = instance.flush()?;
    output.batches.extend(flushed.batches);
    output.rejections.extend(flushed.rejections);
    output.dropped.extend(flushed.dropped);
    describe(&mut report, frames.len(), &output);
    Ok(report)
}

fn describe(report: &mut String, pushed: usize, output: &Output) {
    let _ = writeln!(
        report,
        "push:        {pushed} sample frames -> {} record(s) in {} batch(es), {} rejected, {} dropped",
        output.record_count(),
        output.batches.len(),
        output.rejections.len(),
        output.dropped.len()
    );
    for record in output.batches.iter().flat_map(|batch| batch.records()) {
        let _ = write!(report, "  record   {}", String::from_utf8_lossy(record));
    }
    for rejection in &output.rejections {
        let _ = writeln!(report, "  rejected frame {}: {}", rejection.sequence, rejection.reason);
    }
}

fn milliseconds(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn mebibytes(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}
