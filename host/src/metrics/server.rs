//! A minimal HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /healthz`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::Registry;

/// A request line and headers never need more; longer requests are cut off.
const MAX_REQUEST_BYTES: usize = 8 << 10;

/// Serves until the listener fails; each connection is answered on its own task.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(answer(stream, Arc::clone(&registry)));
    }
}

async fn answer(mut stream: TcpStream, registry: Arc<Registry>) {
    let mut request = Vec::new();
    let mut buffer = [0; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST_BYTES {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let request = String::from_utf8_lossy(&request);
    let mut words = request.split_whitespace();
    let (status, content_type, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => ("200 OK", "text/plain; version=0.0.4", registry.render()),
        (Some("GET"), Some("/healthz")) => ("200 OK", "text/plain", "ok\n".to_owned()),
        (Some("GET"), _) => ("404 Not Found", "text/plain", "try /metrics or /healthz\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
