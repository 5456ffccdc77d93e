//! The real nats-server (JetStream on) the tests publish into, on 127.0.0.1:54222: started
//! by `.ci/run` or `just services`, or here by scripts/services when nothing answers.

use async_nats::jetstream;
use futures_util::StreamExt as _;

/// Tests share the server (read) except one that restarts it (write).
pub static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Overrides where the tests find the server.
pub const URL_ENV: &str = "SKIPPR_TEST_NATS_URL";

pub fn url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| "nats://127.0.0.1:54222".into())
}

/// A JetStream context on the test server, started first if need be.
pub async fn jetstream() -> jetstream::Context {
    jetstream::new(super::connect_or_start("nats-server", || async_nats::connect(url())).await)
}

/// Deletes a stream a test writes into, so a rerun starts empty.
pub async fn fresh_stream(name: &str) {
    let _ = jetstream().await.delete_stream(name).await;
}

/// Every message of a stream: (its Nats-Msg-Id, its payload as JSON).
pub async fn messages(name: &str) -> Vec<(String, serde_json::Value)> {
    let jetstream = jetstream().await;
    let mut stream = jetstream.get_stream(name).await.unwrap();
    let count = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream.create_consumer(jetstream::consumer::pull::OrderedConfig::default()).await.unwrap();
    let mut messages = consumer.messages().await.unwrap().take(count);
    let mut all = Vec::with_capacity(count);
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.to_string()).unwrap_or_default();
        all.push((id, serde_json::from_slice(&message.payload).unwrap()));
    }
    all
}
