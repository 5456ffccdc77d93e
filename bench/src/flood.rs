//! The flood server: sends N messages of a chosen shape to one client, at full speed or
//! at a fixed rate, then closes, and reports what it sent and when.

use std::time::{Duration, Instant};

use futures_util::SinkExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What each message looks like.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// An exchange trade, ~200 bytes of JSON.
    Trade,
    /// A larger JSON document, ~2 KB.
    Json2k,
    /// 64 bytes of binary.
    Binary64,
    /// An exchange `market_trades` message: one trade nested in events, ~250 bytes.
    MarketTrade,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Self::Trade => "json-trade-200B",
            Self::Json2k => "json-2KB",
            Self::Binary64 => "binary-64B",
            Self::MarketTrade => "market-trades-250B",
        }
    }

    /// Message `n`, stamped with `t`: microseconds since the harness started.
    pub fn message(self, n: u64, t: u64) -> Message {
        match self {
            Self::Trade => Message::text(format!(
                r#"{{"type":"trade","exchange":"bench","symbol":"BTC-USD","trade_id":{n},"price":"64012.{:02}","size":"0.{:04}","side":"{}","t":{t},"ts":"2026-12-03T12:00:00.000Z"}}"#,
                n % 100,
                n % 10_000,
                if n.is_multiple_of(2) { "buy" } else { "sell" },
            )),
            Self::Json2k => {
                let levels: Vec<String> = (0..40).map(|i| format!(r#"["64{i:03}.5","0.{i:04}"]"#)).collect();
                Message::text(format!(r#"{{"type":"book","seq":{n},"t":{t},"bids":[{}]}}"#, levels.join(",")))
            }
            Self::MarketTrade => Message::text(format!(
                r#"{{"channel":"market_trades","t":{t},"events":[{{"type":"update","trades":[{{"trade_id":"{n}","product_id":"BTC-USD","price":"64012.{:02}","size":"0.{:04}","side":"BUY","time":"2026-12-03T12:00:00.000Z"}}]}}]}}"#,
                n % 100,
                n % 10_000 + 1,
            )),
            Self::Binary64 => {
                let mut bytes = vec![0u8; 64];
                bytes[..8].copy_from_slice(&n.to_le_bytes());
                bytes[8..16].copy_from_slice(&t.to_le_bytes());
                Message::binary(bytes)
            }
        }
    }
}

/// What the server did.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub bytes: u64,
    /// When the client's connection was accepted.
    pub accepted: Instant,
    /// When the last message was handed to the socket.
    pub finished: Instant,
}

pub struct Flood {
    pub shape: Shape,
    pub count: u64,
    /// Messages per second; `None` is full speed.
    pub rate: Option<u32>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Flood {
    /// Listens on 127.0.0.1 and serves one client; returns the URL and the report to come.
    pub async fn start(self, epoch: Instant) -> anyhow::Result<(String, JoinHandle<anyhow::Result<Sent>>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let url = match self.tls {
            Some(_) => format!("wss://localhost:{port}/flood"),
            None => format!("ws://127.0.0.1:{port}/flood"),
        };
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            match self.tls.clone() {
                Some(acceptor) => self.serve(acceptor.accept(tcp).await?, epoch).await,
                None => self.serve(tcp, epoch).await,
            }
        });
        Ok((url, task))
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(self, stream: S, epoch: Instant) -> anyhow::Result<Sent> {
        let mut socket = tokio_tungstenite::accept_async(stream).await?;
        let accepted = Instant::now();
        let mut ticker = self.rate.map(|rate| tokio::time::interval(Duration::from_secs(1) / rate.max(1)));
        let mut bytes = 0;
        for n in 0..self.count {
            if let Some(ticker) = &mut ticker {
                ticker.tick().await;
            }
            let message = self.shape.message(n, epoch.elapsed().as_micros() as u64);
            bytes += message.len() as u64;
            // Paced messages go out at once; a flood is written in large flushes.
            if ticker.is_some() || n % 256 == 255 { socket.send(message).await? } else { socket.feed(message).await? }
        }
        socket.flush().await?;
        let finished = Instant::now();
        let _ = socket.close(None).await;
        Ok(Sent { bytes, accepted, finished })
    }
}
