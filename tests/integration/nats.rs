//! The NATS JetStream destination against a real nats-server: one message per record with
//! its message id, each once through `kill -9` and a server restart, and a subject no
//! stream captures refused with what to fix.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::durability::{assert_each_sequence_once, kill_9_rounds};
use crate::support::binary::{Workdir, command, finish, run};
use crate::support::flood::start_numbering_server;
use crate::support::nats;
use crate::support::server::{self, Handshake, Script, Step};

const LIMIT: Duration = Duration::from_secs(120);

/// Records to `{name}.records` in the stream `name`, which skippr creates.
fn config(url: &str, mode: &str, name: &str) -> String {
    format!(
        "source: {{kind: websocket, url: '{url}', mode: {mode}, idle_timeout_seconds: 2, reconnect: {{initial_ms: 50, max_ms: 200}}}}\n\
         batch: {{max_records: 100, max_age_ms: 20}}\n\
         destination: {{kind: nats, url: '{}', subject: {name}.records, stream: {name}}}\n\
         deadletter: {{kind: file, path: out/dead.jsonl}}\n",
        nats::url()
    )
}

/// Asserts each message once: distinct message ids, sequences 0..n, distinct flood ids.
fn assert_each_message_once(messages: &[(String, serde_json::Value)]) -> usize {
    let ids: BTreeSet<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), messages.len(), "a message id was stored twice");
    let sequences: Vec<u64> = messages.iter().map(|(_, record)| record["meta"]["sequence"].as_u64().unwrap()).collect();
    assert_each_sequence_once(&sequences);
    let values: BTreeSet<u64> = messages.iter().map(|(_, record)| record["value"]["id"].as_u64().unwrap()).collect();
    assert_eq!(values.len(), messages.len(), "a flood message was stored twice");
    messages.len()
}

/// Each record is one message, its id made of the pipeline, sequence and record index.
#[tokio::test(flavor = "multi_thread")]
async fn records_are_messages_with_their_ids_on_a_stream_skippr_creates() {
    let _server = nats::SERVER.read().await; // beside the others, not during a restart
    nats::fresh_stream("NATS_ROWS").await;
    let steps = (0..40).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).chain([Step::Close]).collect();
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("nats-rows");
    dir.write("skippr.yaml", &config(&server.url, "batch", "NATS_ROWS"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let messages = nats::messages("NATS_ROWS").await;
    assert_eq!(messages.len(), 40);
    assert_eq!(messages[3].0, "skippr:3:0");
    assert_eq!(messages[3].1["value"]["i"], 3);
}

/// `kill -9` at random moments of a flood into JetStream, then a drain: each accepted
/// record is one message; the duplicate window took the replays.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_flood_leaves_each_record_once_on_the_stream() {
    let _server = nats::SERVER.read().await; // beside the others, not during a restart
    nats::fresh_stream("NATS_KILL").await;
    let (url, sent) = start_numbering_server(30_000, 100, 40, Duration::from_millis(2)).await;
    let dir = Workdir::new("nats-kill-9");
    kill_9_rounds(&dir, 3, 300, [&config(&url, "stream", "NATS_KILL"), &config(&url, "batch", "NATS_KILL")]).await;
    let stored = assert_each_message_once(&nats::messages("NATS_KILL").await);
    assert!(stored > 1000 && stored as u64 <= sent.load(Ordering::SeqCst), "{stored} stored");
    println!("nats kill -9: {stored} messages, each once");
}

/// nats-server restarted in the middle of a flood: unacknowledged messages are sent again,
/// and every record is one message.
#[tokio::test(flavor = "multi_thread")]
async fn a_nats_server_restarted_mid_run_loses_and_doubles_nothing() {
    let _server = nats::SERVER.write().await; // alone: it restarts the server
    const MESSAGES: u64 = 10_000;
    nats::fresh_stream("NATS_RESTART").await;
    let (url, sent) = start_numbering_server(MESSAGES, 100, 20, Duration::from_millis(4)).await;
    let dir = Workdir::new("nats-restart");
    dir.write("skippr.yaml", &config(&url, "batch", "NATS_RESTART"));
    let child = command(&dir.path, &["run"]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let sent_before = sent.load(Ordering::SeqCst);
    tokio::task::spawn_blocking(|| crate::support::services("restart-nats")).await.unwrap();
    assert!(sent_before < MESSAGES, "restarted mid-flood: {sent_before} of {MESSAGES} sent");
    let done = finish(child, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(sent.load(Ordering::SeqCst), MESSAGES);
    assert_eq!(assert_each_message_once(&nats::messages("NATS_RESTART").await) as u64, MESSAGES, "{}", done.stderr);
    let retried = done.stderr.matches("NATS is unavailable; holding the records and retrying").count();
    println!("nats restart: {MESSAGES} messages, each once; {retried} retries logged");
}

/// A subject no stream captures stops the run with what to fix.
#[tokio::test(flavor = "multi_thread")]
async fn a_subject_no_stream_captures_is_refused_with_what_to_fix() {
    let _server = nats::SERVER.read().await; // beside the others, not during a restart
    nats::jetstream().await;
    let steps = (0..3).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).chain([Step::Close]).collect();
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("nats-no-stream");
    let yaml = config(&server.url, "batch", "NATS_NONE").replace(", stream: NATS_NONE", "");
    dir.write("skippr.yaml", &yaml);
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("no JetStream stream captures `NATS_NONE.records`"), "{}", done.stderr);
}
