//! The embedded default shaper through the real wasmtime runtime.

use skippr::runtime::{DiskCache, FrameKind, FrameList, InstanceLimits, Runtime, SourceInfo};

use crate::support::binary::Workdir;
use crate::support::{default_instance, json_frames, round_trip, runtime, source};

/// Frames pushed in a list come back as JSON Lines records, in order, with metadata.
#[test]
fn embedded_shaper_round_trips_frames_to_batches() {
    let runtime = runtime();
    let mut instance = default_instance(&runtime, "round-trip");
    instance.on_connect(4).unwrap();
    let frames = json_frames(10, 5);
    let mut output = instance.push(&frames, 0).unwrap();
    assert!(output.batches.is_empty(), "1000 records / 1 MiB / 1 s bounds keep a small push open");
    output = instance.flush().unwrap();
    assert_eq!(output.batches.len(), 1);
    let batch = &output.batches[0];
    assert_eq!(batch.namespace, "websocket.feed.test");
    assert_eq!(batch.record_sequences, [10, 11, 12, 13, 14]);
    let records: Vec<serde_json::Value> = batch.records().map(|line| serde_json::from_slice(line).unwrap()).collect();
    assert_eq!(records[2]["value"], serde_json::json!({"n": 12}));
    assert_eq!(records[2]["meta"]["connection_id"], 4);
    assert_eq!(records[2]["meta"]["sequence"], 12);
    assert_eq!(records[2]["meta"]["received_at_ms"], 1012);
    assert_eq!(records[2]["meta"]["url"], "ws://feed.test/v1");
}

/// Invalid JSON comes back as a rejection with the parse error, the rest as records.
#[test]
fn embedded_shaper_rejects_invalid_json_with_the_reason() {
    let runtime = runtime();
    let mut instance = default_instance(&runtime, "rejects");
    let mut frames = FrameList::default();
    frames.push(0, FrameKind::Text, b"{\"ok\":true}", 1);
    frames.push(1, FrameKind::Text, b"{\"ok\":", 1);
    frames.push(2, FrameKind::Binary, b"\x00\x01", 1);
    let output = instance.push(&frames, 0).unwrap();
    assert_eq!(output.rejections.len(), 1);
    assert_eq!(output.rejections[0].sequence, 1);
    assert!(output.rejections[0].reason.starts_with("invalid JSON: EOF while parsing"), "{:?}", output.rejections);
    assert_eq!(round_trip(&mut instance, &FrameList::default()), [0, 2]);
}

/// Batches close at max_records inside one push, and by age on tick.
#[test]
fn embedded_shaper_batches_by_count_and_by_age() {
    let runtime = runtime();
    let mut source = source();
    source.limits.max_records = 3;
    source.limits.max_age_ms = 100;
    let transform = runtime.default_transform().unwrap();
    let mut instance = transform.instantiate("batching", &source, "{}", InstanceLimits::default()).unwrap();
    let output = instance.push(&json_frames(0, 7), 1_000).unwrap();
    let sizes: Vec<usize> = output.batches.iter().map(|batch| batch.len()).collect();
    assert_eq!(sizes, [3, 3]);
    assert!(instance.tick(1_050).unwrap().batches.is_empty(), "the open batch is 44 ms old");
    assert_eq!(instance.tick(1_106).unwrap().batches[0].record_sequences, [6]);
}

/// The transform's options reach init; bad ones are refused with the option named.
#[test]
fn bad_transform_options_are_refused_at_init() {
    let runtime = runtime();
    let transform = runtime.default_transform().unwrap();
    let err = transform
        .instantiate("options", &source(), r#"{"include_metadata":1}"#, InstanceLimits::default())
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("refused its options"), "{message}");
    assert!(message.contains("unknown field `include_metadata`"), "{message}");
    let quiet = transform.instantiate("options", &source(), r#"{"include_meta":false}"#, InstanceLimits::default());
    let mut quiet = quiet.unwrap();
    quiet.push(&json_frames(0, 1), 0).unwrap();
    let lines = quiet.flush().unwrap().batches.remove(0).lines;
    assert_eq!(String::from_utf8(lines).unwrap(), "{\"namespace\":\"websocket.feed.test\",\"value\":{\"n\":0}}\n");
}

/// A large list crosses in one call and every frame comes back.
#[test]
fn a_thousand_frames_cross_in_one_push() {
    let runtime = runtime();
    let mut instance = default_instance(&runtime, "bulk");
    let sequences = round_trip(&mut instance, &json_frames(0, 1024));
    assert_eq!(sequences, (0..1024).collect::<Vec<u64>>());
}

/// Many instances of one compiled transform are independent.
#[test]
fn instances_of_one_transform_do_not_share_state() {
    let runtime = runtime();
    let transform = runtime.default_transform().unwrap();
    let mut first = transform.instantiate("a", &source(), "{}", InstanceLimits::default()).unwrap();
    let other = SourceInfo { host: String::new(), url: "ws:///x".into(), ..source() };
    let mut second = transform.instantiate("b", &other, "{}", InstanceLimits::default()).unwrap();
    first.push(&json_frames(0, 2), 0).unwrap();
    second.push(&json_frames(100, 1), 0).unwrap();
    let first_batch = first.flush().unwrap().batches.remove(0);
    let second_batch = second.flush().unwrap().batches.remove(0);
    assert_eq!(first_batch.record_sequences, [0, 1]);
    assert_eq!(second_batch.record_sequences, [100]);
    assert_eq!(second_batch.namespace, "websocket.unknown");
}

/// Identical component bytes are compiled once however often they are loaded; other bytes
/// are compiled on their own.
#[test]
fn identical_components_are_compiled_once() {
    let runtime = runtime();
    for _ in 0..5 {
        runtime.default_transform().unwrap();
    }
    assert_eq!(runtime.compilations(), 1);
    let hostile = crate::support::fixture("skippr_fixture_hostile");
    runtime.load_file(&hostile).unwrap();
    runtime.load_file(&hostile).unwrap();
    assert_eq!(runtime.compilations(), 2);
}

/// A second process (here: a second runtime) loads the compiled component from the disk
/// cache instead of compiling it; a corrupt cache file only costs a compile.
#[test]
fn the_disk_cache_saves_the_compile_and_survives_corruption() {
    let workdir = Workdir::new("disk-cache");
    let dir = workdir.path.join("components");
    let with_cache = || Runtime::with_disk_cache(Some(DiskCache::at(dir.clone()))).unwrap();
    let first = with_cache();
    first.default_transform().unwrap();
    assert_eq!(first.compilations(), 1);
    let cached: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");

    let second = with_cache();
    let transform = second.default_transform().unwrap();
    assert_eq!(second.compilations(), 0, "loaded from disk");
    let mut instance = transform.instantiate("cached", &source(), "{}", InstanceLimits::default()).unwrap();
    assert_eq!(round_trip(&mut instance, &json_frames(0, 3)), [0, 1, 2]);

    std::fs::write(&cached[0], b"not a compiled component").unwrap();
    let third = with_cache();
    third.default_transform().unwrap();
    assert_eq!(third.compilations(), 1, "the corrupt file was ignored and replaced");
    assert!(std::fs::read(&cached[0]).unwrap().len() > 1000);
}
