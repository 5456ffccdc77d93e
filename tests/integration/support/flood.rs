//! A flood server for crash and load tests: numbered messages across connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::SinkExt as _;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A server that numbers its messages `{"id":n,"pad":…}` across all connections from one
/// counter, `burst` at a time every `every`, until `total` are sent; then it stays silent.
/// Returns its URL and how many it has sent.
pub async fn start_numbering_server(total: u64, pad: usize, burst: u64, every: Duration) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/numbers", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let pad = "x".repeat(pad);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (counter, pad) = (Arc::clone(&counter), pad.clone());
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(tcp).await else { return };
                let mut tick = tokio::time::interval(every);
                while counter.load(Ordering::SeqCst) < total {
                    tick.tick().await;
                    for _ in 0..burst {
                        let id = counter.load(Ordering::SeqCst);
                        if id >= total
                            || socket.feed(Message::text(format!(r#"{{"id":{id},"pad":"{pad}"}}"#))).await.is_err()
                        {
                            return;
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    if socket.flush().await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
        }
    });
    (url, sent)
}
