//! Nothing lost silently: every frame the server sends is a record or a dead letter,
//! counted exactly, across drops, idle exits, oversized messages and SIGTERM.

use std::time::Duration;

use crate::source::batch_config;
use crate::support::binary::{Workdir, command, eventually, finish, run, terminate};
use crate::support::python;
use crate::support::server::{self, Handshake, Script, Step};

const LIMIT: Duration = Duration::from_secs(60);

fn summary_line(stderr: &str) -> &str {
    stderr.lines().find(|line| line.starts_with("summary: ")).unwrap_or_else(|| panic!("no summary in:\n{stderr}"))
}

/// Mixed good, malformed and binary frames over three connections (two dropped): each
/// frame is in exactly one of the two files, and the summary adds up.
#[tokio::test(flavor = "multi_thread")]
async fn every_frame_is_delivered_or_dead_lettered_across_drops() {
    let frame = |c: usize, i: usize| match i % 5 {
        3 => Step::Text(format!("not json {c}-{i}")),
        4 => Step::Binary(vec![c as u8, i as u8]),
        _ => Step::Text(format!(r#"{{"c":{c},"i":{i}}}"#)),
    };
    let sent_bytes: usize = (0..3)
        .flat_map(|c| (0..40).map(move |i| (c, i)))
        .map(|(c, i)| match frame(c, i) {
            Step::Text(text) => text.len(),
            Step::Binary(bytes) => bytes.len(),
            _ => 0,
        })
        .sum();
    let scripts: Vec<Script> = (0..3)
        .map(|c| {
            let mut steps: Vec<Step> = (0..40).map(|i| frame(c, i)).collect();
            steps.push(if c < 2 { Step::Drop } else { Step::Close });
            Script::new(steps)
        })
        .collect();
    let server = server::start(scripts, Handshake::default()).await;
    let dir = Workdir::new("exact-counts");
    dir.write("skippr.yaml", &batch_config(&server.url, ""));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let records = dir.json_lines("out/records.jsonl");
    let dead = dir.json_lines("out/dead.jsonl");
    assert_eq!(records.len(), 3 * 32, "3 connections × (24 JSON + 8 binary):\n{}", done.stderr);
    assert_eq!(dead.len(), 3 * 8, "3 connections × 8 malformed");
    let mut sequences: Vec<u64> = records.iter().map(|r| r["meta"]["sequence"].as_u64().unwrap()).collect();
    sequences.extend(dead.iter().map(|d| d["sequence"].as_u64().unwrap()));
    sequences.sort_unstable();
    assert_eq!(sequences, (0..120).collect::<Vec<u64>>(), "no frame missing, none twice");
    assert!(dead.iter().all(|d| d["reason"].as_str().unwrap().starts_with("invalid JSON")));
    assert!(dead[0]["payload"].as_str().unwrap().starts_with("not json"));
    assert_eq!(
        summary_line(&done.stderr),
        format!(
            "summary: received 120 frames ({sent_bytes} bytes) over 3 connection(s); accepted 120 frames; delivered 96 records; dead-lettered 24 frames"
        )
    );
}

/// Batch mode drains what the server sends and exits 0 once idle, all flushed.
#[tokio::test(flavor = "multi_thread")]
async fn batch_mode_exits_after_the_idle_timeout_with_everything_flushed() {
    let steps = (0..5).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).collect();
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("idle");
    dir.write("skippr.yaml", &batch_config(&server.url, ""));
    let started = std::time::Instant::now();
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited for the idle timeout");
    assert!(done.stderr.contains("Batch drained: no message within the idle timeout."), "{}", done.stderr);
    assert_eq!(dir.json_lines("out/records.jsonl").len(), 5);
}

/// SIGTERM in stream mode stops reading, flushes the open batch, closes the socket and
/// exits 0 with the summary.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_everything_and_exits_cleanly() {
    let steps = (0..3).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).collect();
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("sigterm");
    let config = batch_config(&server.url, "")
        .replace("mode: batch", "mode: stream")
        .replace("max_age_ms: 100", "max_age_ms: 600000");
    dir.write("skippr.yaml", &config);
    let child = command(&dir.path, &["run"]).spawn().unwrap();
    assert!(eventually(Duration::from_secs(20), || server.log().connections == 1).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dir.read("out/records.jsonl"), "", "the open batch is not closed by age");
    terminate(&child);
    let done = finish(child, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(dir.json_lines("out/records.jsonl").len(), 3, "flushed on shutdown");
    assert!(summary_line(&done.stderr).contains("delivered 3 records"), "{}", done.stderr);
}

/// A message over max_message_bytes is dead-lettered with its size, then the source
/// reconnects and goes on.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_message_is_dead_lettered_with_its_size() {
    let first =
        Script::new(vec![Step::Text(r#"{"ok":1}"#.into()), Step::Text("x".repeat(5000)), Step::Text("{}".into())]);
    let second = Script::new(vec![Step::Text(r#"{"ok":2}"#.into()), Step::Close]);
    let server = server::start(vec![first, second], Handshake::default()).await;
    let dir = Workdir::new("oversized");
    dir.write(
        "skippr.yaml",
        &batch_config(&server.url, "  max_message_bytes: 1024\n")
            .replace("idle_timeout_seconds: 1", "idle_timeout_seconds: 5"),
    );
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let dead = dir.json_lines("out/dead.jsonl");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "message of 5000 bytes is over source.max_message_bytes (1024)");
    assert_eq!(dead[0]["size"], 5000);
    let values: Vec<_> = dir.json_lines("out/records.jsonl").iter().map(|r| r["value"].clone()).collect();
    assert_eq!(values, [serde_json::json!({"ok": 1}), serde_json::json!({"ok": 2})]);
}

/// Against the independent Python `websockets` peer: text, binary and malformed frames
/// all accounted for.
#[tokio::test(flavor = "multi_thread")]
async fn the_python_websockets_peer_is_ingested_exactly() {
    let peer = python::start(50).await;
    let dir = Workdir::new("python-peer");
    dir.write("skippr.yaml", &batch_config(&peer.url, ""));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let records = dir.json_lines("out/records.jsonl");
    let dead = dir.json_lines("out/dead.jsonl");
    assert_eq!(dead.len(), 5, "every 10th is not JSON");
    assert_eq!(records.len(), 45);
    let binary = records.iter().filter(|r| r["meta"]["kind"] == "binary").count();
    assert_eq!(binary, (0..50).filter(|n| n % 10 != 9 && n % 7 == 6).count());
    let first = records.iter().find(|r| r["meta"]["kind"] == "text").unwrap();
    assert_eq!(first["value"]["peer"], "python");
    assert!(done.stderr.contains("code=1000 reason=peer done"), "{}", done.stderr);
}

/// A destination that cannot be written (a full disk) stops the run with the reason, even
/// in stream mode, instead of dropping records.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_destination_stops_the_run_with_the_reason() {
    let steps = (0..5).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).collect();
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("disk-full");
    let config = batch_config(&server.url, "")
        .replace("mode: batch", "mode: stream")
        .replace("path: out/records.jsonl", "path: /dev/full");
    dir.write("skippr.yaml", &config);
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("writing to /dev/full failed: No space left on device"), "{}", done.stderr);
    assert!(summary_line(&done.stderr).contains("delivered 0 records"), "{}", done.stderr);
}
