//! `skippr demo`: a built-in trade feed on loopback, consumed by the real pipeline with
//! the embedded shaper. Needs nothing installed and no network.

use std::path::Path;
use std::time::Duration;

use futures_util::SinkExt as _;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::config::{self, ConfigError, EnvFiles, PipelineConfig, RawConfig, RawTransform};

const SYMBOLS: [(&str, f64); 4] = [("BTC-USD", 64_012.5), ("ETH-USD", 3_412.25), ("SOL-USD", 187.4), ("ADA-USD", 0.61)];
/// Every this many messages the feed sends one that is not JSON, as real feeds sometimes do.
const MALFORMED_EVERY: u64 = 17;

/// A feed on 127.0.0.1 that sends `messages` trades at `per_second`, then closes.
pub async fn start_feed(messages: u64, per_second: u32) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/trades", listener.local_addr()?);
    tokio::spawn(async move {
        // One client: the demo's own pipeline.
        let Ok((tcp, _)) = listener.accept().await else { return };
        let Ok(mut socket) = tokio_tungstenite::accept_async(tcp).await else { return };
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
        for n in 0..messages {
            ticker.tick().await;
            if socket.send(Message::text(trade(n))).await.is_err() {
                return;
            }
        }
        let close = CloseFrame { code: CloseCode::Normal, reason: "demo feed finished".into() };
        let _ = socket.close(Some(close)).await;
    });
    Ok(url)
}

/// The demo pipeline: batch mode against the feed, records to stdout, dead letters to
/// stderr, shaped by `transform` (with its JSON `options`) or the default shaper.
pub fn pipeline_config(
    url: &str,
    transform: Option<&Path>,
    options: Option<&str>,
) -> Result<PipelineConfig, ConfigError> {
    let refused = |problems| ConfigError { path: "the demo".into(), problems };
    let yaml = format!(
        "source: {{kind: websocket, url: '{url}', mode: batch, idle_timeout_seconds: 2}}\n\
         batch: {{max_records: 20, max_age_ms: 200}}\n\
         destination: {{kind: stdout}}\n\
         deadletter: {{kind: stderr}}\n\
         buffer: {{kind: memory}}\n"
    );
    let mut raw: RawConfig = config::parse(&yaml).expect("the demo config is valid YAML");
    if let Some(path) = transform {
        let options = options
            .map(serde_yaml_ng::from_str)
            .transpose()
            .map_err(|err| refused(vec![format!("--options is not a JSON object: {err}")]))?;
        raw.transform = Some(RawTransform { path: Some(path.display().to_string()), options });
    }
    config::validate_raw(&raw, "demo", &EnvFiles::default()).map_err(refused)
}

fn trade(n: u64) -> String {
    if n % MALFORMED_EVERY == MALFORMED_EVERY - 1 {
        return format!(r#"{{"type":"trade","symbol":"BTC-USD","trade_id":{n},"price":"#);
    }
    let (symbol, base) = SYMBOLS[(n % SYMBOLS.len() as u64) as usize];
    // Deterministic wiggle: the demo prints the same prices every run.
    let price = base * (1.0 + ((n * 7919 % 200) as f64 - 100.0) / 10_000.0);
    let size = ((n * 104_729) % 5_000) as f64 / 1_000.0 + 0.001;
    let side = if n.is_multiple_of(3) { "sell" } else { "buy" };
    format!(
        r#"{{"type":"trade","symbol":"{symbol}","trade_id":{},"price":"{price:.2}","size":"{size:.3}","side":"{side}"}}"#,
        1_000_000 + n
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trades_are_json_but_for_the_odd_malformed_one() {
        let malformed = (0..100).filter(|n| serde_json::from_str::<serde_json::Value>(&trade(*n)).is_err()).count();
        assert_eq!(malformed, 100 / MALFORMED_EVERY as usize);
        let first: serde_json::Value = serde_json::from_str(&trade(0)).unwrap();
        assert_eq!(first["symbol"], "BTC-USD");
    }
}
