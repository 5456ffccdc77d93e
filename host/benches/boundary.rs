//! What the sandbox boundary costs: ~200-byte JSON frames shaped by the default shaper
//! inside the component, pushed in lists of 1, 64 and 1024, against the same shaping
//! linked natively, in the same process. Run with `cargo bench -p skippr --bench boundary`.

use std::time::{Duration, Instant};

use skippr::runtime::{FrameKind, FrameList, InstanceLimits, Runtime, SourceInfo};
use skippr_guest::DefaultShaper;
use skippr_sdk::{Frame, FrameKind as NativeKind, Shaper, Source};

const FRAMES: usize = 200_000;
const LIST_SIZES: [usize; 3] = [1, 64, 1024];
const RECEIVED_AT_MS: u64 = 1_764_763_200_000;

fn main() -> anyhow::Result<()> {
    let payloads: Vec<Vec<u8>> = (0..FRAMES).map(trade).collect();
    let mean = payloads.iter().map(Vec::len).sum::<usize>() / FRAMES;
    println!("{FRAMES} JSON frames of ~{mean} bytes each; best of 3 runs\n");
    println!("{:>9}  {:>16}  {:>16}  {:>14}", "list size", "native frames/s", "wasm frames/s", "wasm / native");
    let runtime = Runtime::new()?;
    let transform = runtime.default_transform()?;
    for list_size in LIST_SIZES {
        let native = best_of_3(|| shape_natively(&payloads, list_size));
        let lists = pack(&payloads, list_size);
        let wasm = best_of_3(|| {
            let mut instance = transform
                .instantiate("bench", &source_info(), "{}", InstanceLimits::default())
                .expect("the default shaper instantiates");
            let started = Instant::now();
            let mut records = 0;
            for list in &lists {
                records += instance.push(list, RECEIVED_AT_MS).expect("push").record_count();
            }
            records += instance.flush().expect("flush").record_count();
            assert_eq!(records, FRAMES);
            started.elapsed()
        });
        let rate = |elapsed: Duration| FRAMES as f64 / elapsed.as_secs_f64();
        println!(
            "{list_size:>9}  {:>16.0}  {:>16.0}  {:>13.2}x",
            rate(native),
            rate(wasm),
            native.as_secs_f64() / wasm.as_secs_f64()
        );
    }
    Ok(())
}

fn trade(n: usize) -> Vec<u8> {
    format!(
        r#"{{"type":"trade","exchange":"example","venue":"spot","symbol":"BTC-USD","quote":"USD","trade_id":{n},"sequence":{n},"price":"64012.{:02}","size":"0.{:04}","side":"{}","ts":"2026-12-03T12:00:00.{:03}Z"}}"#,
        n % 100,
        n % 10_000,
        if n.is_multiple_of(2) { "buy" } else { "sell" },
        n % 1000
    )
    .into_bytes()
}

fn source_info() -> SourceInfo {
    SourceInfo { url: "wss://stream.example.com/v1".into(), host: "stream.example.com".into(), ..SourceInfo::default() }
}

fn pack(payloads: &[Vec<u8>], list_size: usize) -> Vec<FrameList> {
    let mut sequence = 0;
    payloads
        .chunks(list_size)
        .map(|chunk| {
            let mut list = FrameList::default();
            for payload in chunk {
                list.push(sequence, FrameKind::Text, payload, RECEIVED_AT_MS);
                sequence += 1;
            }
            list
        })
        .collect()
}

fn shape_natively(payloads: &[Vec<u8>], list_size: usize) -> Duration {
    let source =
        Source { url: "wss://stream.example.com/v1".into(), host: "stream.example.com".into(), ..Source::default() };
    let mut shaper = Shaper::<DefaultShaper>::init(&source, "").expect("the default options are valid");
    let started = Instant::now();
    let mut records = 0;
    for (index, chunk) in payloads.chunks(list_size).enumerate() {
        let first = (index * list_size) as u64;
        let frames = chunk.iter().zip(first..).map(|(payload, sequence)| Frame {
            sequence,
            kind: NativeKind::Text,
            payload,
            received_at_ms: RECEIVED_AT_MS,
        });
        records += shaper.push(frames, RECEIVED_AT_MS).batches.iter().map(|b| b.len()).sum::<usize>();
    }
    records += shaper.flush().batches.iter().map(|b| b.len()).sum::<usize>();
    assert_eq!(records, FRAMES);
    started.elapsed()
}

fn best_of_3(mut run: impl FnMut() -> Duration) -> Duration {
    (0..3).map(|_| run()).min().expect("three runs")
}
