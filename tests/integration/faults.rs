//! Faults from the outside: broken servers, huge messages, a transform trying to break out
//! of its sandbox, and secrets under debug logging.

use std::time::Duration;

use futures_util::SinkExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::source::batch_config;
use crate::support::binary::{Workdir, command, finish, run};
use crate::support::fixture;
use crate::support::server::{self, Handshake, Script, Step};

const LIMIT: Duration = Duration::from_secs(120);

/// What a broken server writes after one good message, before it hangs up.
#[derive(Clone, Copy)]
enum Breakage {
    /// Bytes that are not WebSocket frames at all.
    Junk,
    /// A frame header announcing 4 KiB, then 100 bytes, then the TCP link is dropped.
    CutMidFrame,
    /// A text frame whose payload is not UTF-8.
    InvalidUtf8,
}

/// Connection 1 sends one good message then breaks; connection 2 sends one and closes.
async fn start_broken_server(breakage: Breakage) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/broken", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for connection in 0.. {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let Ok(mut socket) = tokio_tungstenite::accept_async(tcp).await else { continue };
            let _ = socket.send(Message::text(format!(r#"{{"connection":{connection}}}"#))).await;
            if connection > 0 {
                let _ = socket.close(None).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let raw = socket.get_mut();
            let bytes: Vec<u8> = match breakage {
                Breakage::Junk => b"\xff\xfe garbage that is not a websocket frame \x00\x01".to_vec(),
                Breakage::CutMidFrame => [&[0x81, 0x7e, 0x10, 0x00][..], &[b'x'; 100]].concat(),
                Breakage::InvalidUtf8 => vec![0x81, 0x03, b'a', 0xff, 0xfe],
            };
            let _ = raw.write_all(&bytes).await;
            let _ = raw.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    url
}

/// Runs against the broken server; returns the dead letters.
async fn survives(breakage: Breakage, test: &str) -> Vec<serde_json::Value> {
    let url = start_broken_server(breakage).await;
    let dir = Workdir::new(test);
    dir.write("skippr.yaml", &batch_config(&url, "").replace("idle_timeout_seconds: 1", "idle_timeout_seconds: 5"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let records = dir.json_lines("out/records.jsonl");
    let values: Vec<_> = records.iter().map(|r| r["value"]["connection"].as_u64().unwrap()).collect();
    assert_eq!(values, [0, 1], "the good messages on both sides of the fault, nothing else");
    assert!(done.stderr.contains("Connection lost; reconnecting."), "{}", done.stderr);
    dir.json_lines("out/dead.jsonl")
}

/// Junk bytes instead of frames: the link is dropped with a protocol error and re-made.
#[tokio::test(flavor = "multi_thread")]
async fn junk_bytes_instead_of_frames_are_a_dropped_link_not_a_crash() {
    assert_eq!(survives(Breakage::Junk, "junk").await, Vec::<serde_json::Value>::new());
}

/// A TCP link cut in the middle of a frame delivers no partial message.
#[tokio::test(flavor = "multi_thread")]
async fn a_link_cut_mid_frame_delivers_no_partial_message() {
    assert_eq!(survives(Breakage::CutMidFrame, "cut-mid-frame").await, Vec::<serde_json::Value>::new());
}

/// A text frame that is not UTF-8 cannot be read, but it is not lost silently: it is
/// dead-lettered with the reason (and its sequence), then the link is re-made.
#[tokio::test(flavor = "multi_thread")]
async fn a_text_frame_that_is_not_utf8_is_dead_lettered_with_the_reason() {
    let dead = survives(Breakage::InvalidUtf8, "invalid-utf8").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0]["reason"].as_str().unwrap().starts_with("a text message is not valid UTF-8"), "{dead:?}");
    assert_eq!(dead[0]["sequence"], 1, "between the two good messages");
}

/// A 4 MiB message is delivered whole; a 64 MiB one is dead-lettered with its size.
#[tokio::test(flavor = "multi_thread")]
async fn a_4_mib_message_is_delivered_and_a_64_mib_one_dead_lettered() {
    let four = format!("\"{}\"", "a".repeat(4 << 20));
    let first = Script::new(vec![Step::Text(four.clone()), Step::Text("x".repeat(64 << 20))]);
    let second = Script::new(vec![Step::Text(r#"{"after":true}"#.into()), Step::Close]);
    let feed = server::start(vec![first, second], Handshake::default()).await;
    let dir = Workdir::new("huge-messages");
    let config = batch_config(&feed.url, "").replace("idle_timeout_seconds: 1", "idle_timeout_seconds: 10");
    dir.write("skippr.yaml", &format!("{config}limits: {{memory_mb: 128}}\n"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let records = dir.json_lines("out/records.jsonl");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["value"].as_str().unwrap().len(), 4 << 20);
    assert_eq!(records[1]["value"]["after"], true);
    let dead = dir.json_lines("out/dead.jsonl");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["size"], 64 << 20);
    assert!(dead[0]["reason"].as_str().unwrap().contains("over source.max_message_bytes (16777216)"), "{dead:?}");
}

/// A transform reading the environment sees none of the host's variables.
#[tokio::test(flavor = "multi_thread")]
async fn a_transform_reading_the_environment_sees_nothing() {
    let feed = server::start(vec![Script::new(vec![Step::Text("{}".into()), Step::Close])], Handshake::default()).await;
    let dir = Workdir::new("env");
    let extra = format!("transform: {{path: '{}', options: env}}\n", fixture("skippr_fixture_hostile").display());
    dir.write("skippr.yaml", &format!("{}{extra}", batch_config(&feed.url, "")));
    let mut command = command(&dir.path, &["run"]);
    command.env("SKIPPR_SECRET_IN_ENV", "do-not-leak");
    let done = finish(command.spawn().unwrap(), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(dir.json_lines("out/records.jsonl")[0]["env"], 0);
}

/// A transform that would list files and open a socket is refused before it runs, with
/// the imports at fault named.
#[tokio::test(flavor = "multi_thread")]
async fn a_transform_importing_files_and_sockets_is_refused() {
    let dir = Workdir::new("escape");
    let extra = format!("transform: {{path: '{}'}}\n", fixture("skippr_fixture_escape").display());
    dir.write("skippr.yaml", &format!("{}{extra}", batch_config("ws://127.0.0.1:9/never", "")));
    let done = finish(command(&dir.path, &["run"]).spawn().unwrap(), LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    for expected in ["does not grant", "wasi:filesystem/preopens", "wasi:sockets/tcp", "--stub-wasi"] {
        assert!(done.stderr.contains(expected), "{expected}: {}", done.stderr);
    }
}

/// With trace logging on, a token from the environment and a proxy password never show,
/// on stdout, stderr or in dead letters, even when the handshake fails.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_show_even_with_trace_logging() {
    let locked = Handshake { require_header: Some(("Authorization".into(), "Bearer right".into())) };
    let feed = server::start(vec![Script::new(vec![Step::Text("{}".into())])], locked).await;
    let proxy = crate::support::proxy::start(Some("user:Pr0xyS3cret")).await;
    let dir = Workdir::new("trace-secrets");
    let proxy_url = proxy.url.replace("http://", "http://user:Pr0xyS3cret@");
    let extra = format!("  headers: {{Authorization: '${{TOKEN}}', X-Api-Key: K3ySecret}}\n  proxy: '{proxy_url}'\n");
    dir.write("skippr.yaml", &batch_config(&feed.url, &extra));
    let mut command = command(&dir.path, &["run"]);
    // Everything at trace, but the compiler's own (huge, secret-free) traces.
    command.env("TOKEN", "Bearer T0kenSecret").env("SKIPPR_LOG", "trace,wasmtime=info,cranelift=info,regalloc2=info");
    let done = finish(command.spawn().unwrap(), LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("401 Unauthorized"), "{}", done.stderr);
    let everything = format!("{}{}", done.all_output(), dir.read("out/dead.jsonl"));
    for secret in ["T0kenSecret", "K3ySecret", "Pr0xyS3cret"] {
        assert!(!everything.contains(secret), "{secret} leaked:\n{everything}");
    }
}

/// A guest that keeps more memory at every call (as JavaScript guests do, collecting no
/// garbage between calls) is replaced by a fresh instance at a batch boundary before it
/// reaches its cap: every frame is delivered exactly once, in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_transform_that_never_frees_memory_is_recycled_without_losing_a_frame() {
    let mut steps = vec![Step::Pace(Duration::from_millis(10))];
    steps.extend((0..150).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))));
    steps.push(Step::Close);
    let feed = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("recycle");
    let hostile = fixture("skippr_fixture_hostile");
    let extra = format!("transform: {{path: '{}', options: leak}}\nlimits: {{memory_mb: 12}}\n", hostile.display());
    dir.write("skippr.yaml", &format!("{}{extra}", batch_config(&feed.url, "")));
    let done = finish(command(&dir.path, &["run"]).spawn().unwrap(), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let echoed: Vec<u64> =
        dir.json_lines("out/records.jsonl").iter().map(|record| record["echo"].as_u64().unwrap()).collect();
    assert_eq!(echoed, (0..150).collect::<Vec<_>>());
    assert!(done.stderr.matches("recycled near its memory cap").count() >= 2, "{}", done.stderr);
    assert!(!done.stderr.contains("lost"), "{}", done.stderr);
}
