//! The baseline: a raw tokio-tungstenite client that reads the same stream and writes each
//! payload as a line to a file, with no shaping and no sandbox.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::latency::stamp_of;

/// What the baseline saw.
pub struct Read {
    pub messages: u64,
    pub finished: Instant,
    pub cpu: Duration,
    /// Receive time minus send stamp, per message, when measuring latency.
    pub latencies_us: Vec<u64>,
}

/// Reads until the server closes, on a thread of its own so its CPU time is its own.
pub fn run(url: &str, output: &Path, epoch: Instant, measure_latency: bool) -> anyhow::Result<Read> {
    let url = url.to_owned();
    let output = output.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let cpu_before = crate::usage::thread_cpu();
        let read = runtime.block_on(read_all(&url, &output, epoch, measure_latency))?;
        Ok(Read { cpu: crate::usage::thread_cpu().saturating_sub(cpu_before), ..read })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the baseline thread panicked"))?
}

async fn read_all(url: &str, output: &Path, epoch: Instant, measure_latency: bool) -> anyhow::Result<Read> {
    let address = url.trim_start_matches("ws://").split('/').next().unwrap_or_default();
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    let (mut socket, _) = tokio_tungstenite::client_async(url, tcp).await?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(output)?);
    let mut messages = 0;
    let mut latencies_us = Vec::new();
    while let Some(message) = socket.next().await {
        let payload = match message? {
            Message::Text(text) => text.as_bytes().to_vec(),
            Message::Binary(bytes) => bytes.to_vec(),
            Message::Close(_) => break,
            _ => continue,
        };
        if measure_latency && let Some(sent) = stamp_of(&payload) {
            latencies_us.push((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
        }
        file.write_all(&payload)?;
        file.write_all(b"\n")?;
        messages += 1;
    }
    file.flush()?;
    Ok(Read { messages, finished: Instant::now(), cpu: Duration::ZERO, latencies_us })
}
