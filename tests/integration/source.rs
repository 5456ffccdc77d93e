//! The source against real servers: headers, refusals, TLS, proxies, reconnects,
//! keepalive, subscriptions and heartbeats, through the real binary.

use std::time::Duration;

use crate::support::binary::{Workdir, eventually, run};
use crate::support::server::{self, Handshake, Script, Step};
use crate::support::{proxy, tls};

const LIMIT: Duration = Duration::from_secs(60);

/// skippr.yaml for a batch run into files, with extra `source:` lines.
pub fn batch_config(url: &str, source_extra: &str) -> String {
    format!(
        "source:\n  kind: websocket\n  url: \"{url}\"\n  mode: batch\n  idle_timeout_seconds: 1\n  reconnect: {{initial_ms: 50, max_ms: 200}}\n{source_extra}\
         batch: {{max_records: 7, max_age_ms: 100}}\n\
         destination: {{kind: file, path: out/records.jsonl}}\n\
         deadletter: {{kind: file, path: out/dead.jsonl}}\n"
    )
}

fn texts(n: usize) -> Vec<Step> {
    (0..n).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).collect()
}

/// Configured headers reach the server on the handshake.
#[tokio::test(flavor = "multi_thread")]
async fn headers_reach_the_server() {
    let server = server::start(vec![Script::new([texts(2), vec![Step::Close]].concat())], Handshake::default()).await;
    let dir = Workdir::new("headers");
    let extra = "  headers:\n    X-Client: skippr-test\n    Authorization: Bearer t0ken\n";
    dir.write("skippr.yaml", &batch_config(&server.url, extra));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let log = server.log();
    assert_eq!(log.headers[0]["x-client"], "skippr-test");
    assert_eq!(log.headers[0]["authorization"], "Bearer t0ken");
    assert_eq!(dir.json_lines("out/records.jsonl").len(), 2);
}

/// A 401 is a clear error naming the status, the server's words and the page's hint; a
/// batch run that never connected fails, and the token never shows.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_handshake_fails_a_batch_run_with_the_servers_answer() {
    let handshake = Handshake { require_header: Some(("Authorization".into(), "Bearer right".into())) };
    let server = server::start(vec![Script::new(texts(1))], handshake).await;
    let dir = Workdir::new("refused");
    dir.write(".env.local", "WS_TOKEN=\"Bearer wrong-s3cr3t\"\n");
    dir.write("skippr.yaml", &batch_config(&server.url, "  headers:\n    Authorization: ${WS_TOKEN}\n"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains("handshake failed: the server answered 401 Unauthorized: missing token"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("verify the URL, any required headers"), "{}", done.stderr);
    assert!(!done.all_output().contains("s3cr3t"), "the secret leaked:\n{}", done.all_output());
    assert_eq!(server.log().refused, 1);
}

/// Stream mode keeps retrying a refused handshake and logs each failure.
#[tokio::test(flavor = "multi_thread")]
async fn stream_mode_retries_a_refused_handshake() {
    let handshake = Handshake { require_header: Some(("Authorization".into(), "Bearer right".into())) };
    let server = server::start(vec![Script::new(texts(1))], handshake).await;
    let dir = Workdir::new("retries");
    let config = batch_config(&server.url, "").replace("mode: batch", "mode: stream");
    dir.write("skippr.yaml", &config);
    let child = crate::support::binary::command(&dir.path, &["run"]).spawn().unwrap();
    let refused = eventually(Duration::from_secs(20), || server.log().refused >= 3).await;
    crate::support::binary::terminate(&child);
    let done = crate::support::binary::finish(child, LIMIT).await;
    assert!(refused, "three attempts were made");
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.matches("Connection attempt failed.").count() >= 3, "{}", done.stderr);
}

/// wss:// with a custom CA file verifies the server and reads from it.
#[tokio::test(flavor = "multi_thread")]
async fn wss_with_a_custom_ca_reads_the_stream() {
    let dir = Workdir::new("wss");
    let ca = tls::generate(&dir.path);
    let script = Script::new([texts(3), vec![Step::Close]].concat());
    let server = server::start_with(vec![script], Handshake::default(), Some(ca.acceptor)).await;
    dir.write("skippr.yaml", &batch_config(&server.url, "  tls: {ca_file: ca.pem}\n"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let records = dir.json_lines("out/records.jsonl");
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["namespace"], "websocket.localhost");
}

/// Without the CA, the same server is refused with a TLS error that suggests ca_file.
#[tokio::test(flavor = "multi_thread")]
async fn wss_without_the_ca_is_a_tls_error() {
    let dir = Workdir::new("wss-untrusted");
    let ca = tls::generate(&dir.path);
    let server = server::start_with(vec![Script::new(texts(1))], Handshake::default(), Some(ca.acceptor)).await;
    dir.write("skippr.yaml", &batch_config(&server.url, ""));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("TLS handshake with localhost failed"), "{}", done.stderr);
    assert!(done.stderr.contains("source.tls.ca_file"), "{}", done.stderr);
}

/// `insecure_skip_verify` accepts the untrusted server, with a loud warning.
#[tokio::test(flavor = "multi_thread")]
async fn insecure_skip_verify_accepts_any_certificate_and_says_so() {
    let dir = Workdir::new("wss-insecure");
    let ca = tls::generate(&dir.path);
    let script = Script::new([texts(1), vec![Step::Close]].concat());
    let server = server::start_with(vec![script], Handshake::default(), Some(ca.acceptor)).await;
    dir.write("skippr.yaml", &batch_config(&server.url, "  tls: {insecure_skip_verify: true}\n"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("the server's certificate is NOT verified"), "{}", done.stderr);
    assert_eq!(dir.json_lines("out/records.jsonl").len(), 1);
}

/// A batch run with nothing listening fails at once with the network error.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_run_with_nothing_listening_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = Workdir::new("nothing-listening");
    dir.write("skippr.yaml", &batch_config(&format!("ws://127.0.0.1:{port}/x"), ""));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains(&format!("cannot reach 127.0.0.1:{port}: Connection refused")), "{}", done.stderr);
    assert!(done.stderr.contains("failed connection attempt"), "the summary counts it: {}", done.stderr);
}

/// Through a real HTTP CONNECT proxy with basic auth; the proxy password never shows.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_tunnels_the_connection_with_basic_auth() {
    let server = server::start(vec![Script::new([texts(2), vec![Step::Close]].concat())], Handshake::default()).await;
    let proxy = proxy::start(Some("me:pr0xy-pass")).await;
    let dir = Workdir::new("proxy");
    let proxy_url = proxy.url.replace("http://", "http://me:pr0xy-pass@");
    dir.write("skippr.yaml", &batch_config(&server.url, &format!("  proxy: \"{proxy_url}\"\n")));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(dir.json_lines("out/records.jsonl").len(), 2);
    let requests = proxy.requests.lock().unwrap();
    let port = server.url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(requests[0].starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1")), "{requests:?}");
    assert!(!done.all_output().contains("pr0xy-pass"), "{}", done.all_output());
}

/// HTTP_PROXY from the environment is used too, and a wrong password is a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_from_the_environment_refusing_auth_is_reported() {
    let server = server::start(vec![Script::new(texts(1))], Handshake::default()).await;
    let proxy = proxy::start(Some("me:right")).await;
    let dir = Workdir::new("proxy-env");
    dir.write("skippr.yaml", &batch_config(&server.url, ""));
    let mut command = crate::support::binary::command(&dir.path, &["run"]);
    command.env("HTTP_PROXY", proxy.url.replace("http://", "http://me:wrong@"));
    let done = crate::support::binary::finish(command.spawn().unwrap(), LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("the proxy refused CONNECT"), "{}", done.stderr);
    assert!(done.stderr.contains("407 Proxy Authentication Required"), "{}", done.stderr);
    assert_eq!(proxy.requests.lock().unwrap().len(), 1);
}

/// After the server drops the link, the source reconnects and sends its subscriptions again.
#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_are_resent_after_a_server_side_drop() {
    let first = Script::new(vec![Step::AwaitClientMessages(2), Step::Text(r#"{"n":1}"#.into()), Step::Drop]);
    let second = Script::new(vec![Step::AwaitClientMessages(2), Step::Text(r#"{"n":2}"#.into()), Step::Close]);
    let server = server::start(vec![first, second], Handshake::default()).await;
    let dir = Workdir::new("resubscribe");
    let extra = "  subscribe:\n    - '{\"op\":\"subscribe\",\"args\":[\"trades\"]}'\n    - '{\"op\":\"subscribe\",\"args\":[\"book\"]}'\n";
    dir.write(
        "skippr.yaml",
        &batch_config(&server.url, extra).replace("idle_timeout_seconds: 1", "idle_timeout_seconds: 5"),
    );
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let log = server.log();
    assert_eq!(log.connections, 2);
    let per_connection =
        |c: usize| log.received.iter().filter(|(i, _)| *i == c).map(|(_, t)| t.clone()).collect::<Vec<_>>();
    assert_eq!(per_connection(0), per_connection(1));
    assert_eq!(per_connection(0)[0], r#"{"op":"subscribe","args":["trades"]}"#);
    let records = dir.json_lines("out/records.jsonl");
    let connections: Vec<_> = records.iter().map(|r| r["meta"]["connection_id"].as_u64().unwrap()).collect();
    assert_eq!(connections, [1, 2]);
    let sequences: Vec<_> = records.iter().map(|r| r["meta"]["sequence"].as_u64().unwrap()).collect();
    assert_eq!(sequences, [0, 1], "sequence numbers continue across connections");
}

/// A server that stops answering pings is detected within the pong timeout and replaced.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_stops_answering_pings_is_reconnected() {
    let silent = Script { steps: vec![Step::Text(r#"{"n":1}"#.into())], deaf: true };
    let healthy = Script::new(vec![Step::Text(r#"{"n":2}"#.into()), Step::Close]);
    let server = server::start(vec![silent, healthy], Handshake::default()).await;
    let dir = Workdir::new("pings");
    let extra = "  ping_interval_seconds: 0.2\n  pong_timeout_seconds: 0.5\n";
    dir.write(
        "skippr.yaml",
        &batch_config(&server.url, extra).replace("idle_timeout_seconds: 1", "idle_timeout_seconds: 10"),
    );
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("no pong or message for"), "{}", done.stderr);
    assert_eq!(server.log().connections, 2);
    assert_eq!(dir.json_lines("out/records.jsonl").len(), 2);
}

/// The application heartbeat goes out on its interval.
#[tokio::test(flavor = "multi_thread")]
async fn the_application_heartbeat_is_sent_on_its_interval() {
    let server =
        server::start(vec![Script::new(vec![Step::AwaitClientMessages(3), Step::Close])], Handshake::default()).await;
    let dir = Workdir::new("heartbeat");
    let extra = "  heartbeat: {message: '{\"op\":\"ping\"}', interval_seconds: 0.1}\n";
    dir.write(
        "skippr.yaml",
        &batch_config(&server.url, extra).replace("idle_timeout_seconds: 1", "idle_timeout_seconds: 10"),
    );
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let log = server.log();
    assert!(log.received.len() >= 3 && log.received.iter().all(|(_, t)| t == r#"{"op":"ping"}"#), "{:?}", log.received);
}
