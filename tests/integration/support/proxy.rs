//! A small HTTP CONNECT proxy on 127.0.0.1 that records each request and can demand
//! basic auth, for testing the source's proxy support against a real tunnel.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

pub struct TestProxy {
    pub url: String,
    /// The request head of every CONNECT seen.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// Starts the proxy; with `credentials` ("user:pass"), a request without them gets 407.
pub async fn start(credentials: Option<&str>) -> TestProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let expected = credentials.map(|c| {
        use base64::Engine as _;
        format!("proxy-authorization: basic {}", base64::engine::general_purpose::STANDARD.encode(c)).to_lowercase()
    });
    let shared = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(tunnel(client, Arc::clone(&shared), expected.clone()));
        }
    });
    TestProxy { url, requests }
}

async fn tunnel(mut client: TcpStream, requests: Arc<Mutex<Vec<String>>>, expected: Option<String>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let Ok(byte) = client.read_u8().await else { return };
        head.push(byte);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    requests.lock().unwrap().push(head.clone());
    if let Some(expected) = expected
        && !head.to_lowercase().contains(&expected)
    {
        let _ = client.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await;
        return;
    }
    let target = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
