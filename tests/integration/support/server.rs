//! A scriptable WebSocket test server on 127.0.0.1: each connection follows a script of
//! steps, and the server records what every client sent (headers, messages).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// One thing the server does on a connection.
#[derive(Debug, Clone)]
pub enum Step {
    Text(String),
    Binary(Vec<u8>),
    /// Wait until the client has sent this many text messages on this connection.
    AwaitClientMessages(usize),
    /// Wait this long before each later send, for a steady flow.
    Pace(Duration),
    /// Send a close frame (normal closure).
    Close,
    /// Drop the TCP connection without a close frame.
    Drop,
}

/// How one connection behaves.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub steps: Vec<Step>,
    /// Read nothing from the client: pings go unanswered, as with a half-open link.
    pub deaf: bool,
}

impl Script {
    pub fn new(steps: Vec<Step>) -> Self {
        Self { steps, deaf: false }
    }
}

/// How the server answers the handshake.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// Refuse with 401 and this body unless this header has this value.
    pub require_header: Option<(String, String)>,
}

/// What clients did, shared with the test.
#[derive(Debug, Default)]
pub struct Log {
    pub connections: usize,
    /// The request headers of each connection, names lowercased.
    pub headers: Vec<BTreeMap<String, String>>,
    /// Text messages from the client: (connection index, text).
    pub received: Vec<(usize, String)>,
    pub refused: usize,
    /// Connections the client has closed or dropped.
    pub closed: usize,
}

pub struct TestServer {
    pub url: String,
    pub log: Arc<Mutex<Log>>,
}

impl TestServer {
    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

/// Starts a plain ws:// server; connection `i` follows `scripts[i]` (the last repeats).
pub async fn start(scripts: Vec<Script>, handshake: Handshake) -> TestServer {
    start_with(scripts, handshake, None).await
}

/// Starts a server, over TLS when `tls` is given (wss://localhost).
pub async fn start_with(
    scripts: Vec<Script>,
    handshake: Handshake,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = match tls {
        Some(_) => format!("wss://localhost:{port}/feed"),
        None => format!("ws://127.0.0.1:{port}/feed"),
    };
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = Arc::clone(&log);
    tokio::spawn(async move {
        let mut index = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            let script = scripts[index.min(scripts.len() - 1)].clone();
            let (log, handshake) = (Arc::clone(&shared), handshake.clone());
            match tls.clone() {
                Some(acceptor) => {
                    tokio::spawn(async move {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            serve(stream, script, handshake, log).await;
                        }
                    });
                }
                None => {
                    tokio::spawn(serve(tcp, script, handshake, log));
                }
            }
            index += 1;
        }
    });
    TestServer { url, log }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    script: Script,
    handshake: Handshake,
    log: Arc<Mutex<Log>>,
) {
    let check_log = Arc::clone(&log);
    let callback = move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let headers: BTreeMap<String, String> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
            .collect();
        if let Some((name, expected)) = &handshake.require_header
            && headers.get(&name.to_ascii_lowercase()) != Some(expected)
        {
            check_log.lock().unwrap().refused += 1;
            let mut refusal = ErrorResponse::new(Some("missing token".into()));
            *refusal.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(refusal);
        }
        let mut log = check_log.lock().unwrap();
        log.connections += 1;
        log.headers.push(headers);
        Ok(response)
    };
    let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
    let connection = log.lock().unwrap().connections - 1;
    let (mut sink, mut stream) = socket.split();
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let reader = (!script.deaf).then(|| {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut count = 0;
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    log.lock().unwrap().received.push((connection, text.to_string()));
                    count += 1;
                    let _ = count_tx.send(count);
                }
            }
            log.lock().unwrap().closed += 1;
        })
    });
    let mut pace = Duration::ZERO;
    for step in script.steps {
        if matches!(step, Step::Text(_) | Step::Binary(_)) && !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
        let sent = match step {
            Step::Pace(every) => {
                pace = every;
                Ok(())
            }
            Step::Text(text) => sink.send(Message::Text(Utf8Bytes::from(text))).await,
            Step::Binary(bytes) => sink.send(Message::Binary(bytes.into())).await,
            Step::AwaitClientMessages(n) => {
                let _ = tokio::time::timeout(Duration::from_secs(10), count_rx.wait_for(|count| *count >= n)).await;
                Ok(())
            }
            Step::Close => {
                let frame = CloseFrame { code: CloseCode::Normal, reason: "script done".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
            Step::Drop => {
                // The reader holds the other half of the socket: end it so the TCP link closes.
                if let Some(reader) = &reader {
                    reader.abort();
                }
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
    // The script ran out: stay until the client leaves.
    match reader {
        Some(reader) => {
            let _ = reader.await;
        }
        None => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}
