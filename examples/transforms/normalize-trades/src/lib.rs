//! Turns exchange-style trade messages into flat records. A `market_trades` message
//! carries its trades nested in `events[].trades[]`, prices and sizes as strings:
//!
//! `{"channel":"market_trades","events":[{"trades":[{"product_id":"BTC-USD","price":"64012.5",
//! "size":"0.25","side":"BUY","trade_id":"1","time":"…"}]}]}`
//!
//! Each trade becomes one record keyed by its symbol, with numeric fields:
//! `{"symbol":"BTC-USD","price":64012.5,"size":0.25,"side":"buy","trade_id":"1","time":"…"}`.
//! Other channels (subscriptions, heartbeats) are dropped; a trade whose price or size is not
//! a number rejects its whole message, with the reason.

use serde::{Deserialize, Serialize};
use skippr_sdk::{Frame, Records, Serialized, Source, Transform};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Keep only trades of these symbols; all when absent.
    pub symbols: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct NormalizeTrades {
    options: Options,
}

#[derive(Deserialize)]
struct Message<'a> {
    channel: &'a str,
    #[serde(default)]
    events: Vec<Event<'a>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow)]
    trades: Vec<ExchangeTrade<'a>>,
}

#[derive(Deserialize)]
struct ExchangeTrade<'a> {
    product_id: &'a str,
    price: &'a str,
    size: &'a str,
    side: &'a str,
    trade_id: &'a str,
    time: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Trade<'a> {
    pub symbol: &'a str,
    pub price: f64,
    pub size: f64,
    pub side: String,
    pub trade_id: &'a str,
    pub time: &'a str,
}

impl Transform for NormalizeTrades {
    type Options = Options;

    fn new(_source: &Source, options: Options) -> Result<Self, String> {
        Ok(Self { options })
    }

    fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String> {
        let message: Message<'_> =
            serde_json::from_str(frame.text()?).map_err(|err| format!("not an exchange message: {err}"))?;
        if message.channel != "market_trades" {
            return Ok(());
        }
        let trades = message.events.iter().flat_map(|event| &event.trades);
        for (index, trade) in trades.enumerate() {
            let trade = normalize(trade).map_err(|reason| format!("trade {index} of the message: {reason}"))?;
            if self.options.symbols.as_ref().is_none_or(|symbols| symbols.iter().any(|s| s == trade.symbol)) {
                records.push_keyed(trade.symbol, Serialized(&trade))?;
            }
        }
        Ok(())
    }
}

fn normalize<'a>(trade: &ExchangeTrade<'a>) -> Result<Trade<'a>, String> {
    let number = |field: &str, text: &str| match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!("{field} {text:?} is not a number")),
    };
    Ok(Trade {
        symbol: trade.product_id,
        price: number("price", trade.price)?,
        size: number("size", trade.size)?,
        side: trade.side.to_ascii_lowercase(),
        trade_id: trade.trade_id,
        time: trade.time,
    })
}

skippr_sdk::export_transform!(NormalizeTrades);

#[cfg(test)]
mod tests {
    use skippr_sdk::{FrameKind, Shaper};

    use super::*;

    const TRADES: &str = r#"{"channel":"market_trades","events":[{"type":"update","trades":[
        {"trade_id":"1","product_id":"BTC-USD","price":"64012.50","size":"0.25","side":"BUY","time":"t1"},
        {"trade_id":"2","product_id":"ETH-USD","price":"3412.25","size":"2","side":"SELL","time":"t2"}]}]}"#;

    fn shape(options: &str, payload: &str) -> (Vec<serde_json::Value>, skippr_sdk::Output) {
        let source = Source { host: "exchange.example".into(), ..Source::default() };
        let mut shaper = Shaper::<NormalizeTrades>::init(&source, options).unwrap();
        let frame = Frame { sequence: 5, kind: FrameKind::Text, payload: payload.as_bytes(), received_at_ms: 0 };
        let out = shaper.push([frame], 0);
        let flushed = shaper.flush();
        let records = flushed.batches.iter().flat_map(|batch| batch.lines.split(|&b| b == b'\n'));
        (records.filter(|line| !line.is_empty()).map(|line| serde_json::from_slice(line).unwrap()).collect(), out)
    }

    #[test]
    fn each_nested_trade_is_a_flat_keyed_record() {
        let (records, _) = shape("", TRADES);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["key"], "BTC-USD");
        assert_eq!(
            records[0]["value"],
            serde_json::json!({"symbol":"BTC-USD","price":64012.5,"size":0.25,"side":"buy","trade_id":"1","time":"t1"})
        );
        assert_eq!(records[1]["value"]["side"], "sell");
        assert_eq!(records[1]["meta"]["sequence"], 5);
    }

    #[test]
    fn other_channels_are_dropped_and_symbols_filtered() {
        let (records, out) = shape("", r#"{"channel":"heartbeats","events":[]}"#);
        assert!(records.is_empty());
        assert_eq!(out.dropped, [5]);
        let (records, _) = shape(r#"{"symbols":["ETH-USD"]}"#, TRADES);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["key"], "ETH-USD");
    }

    #[test]
    fn a_bad_price_rejects_the_message_with_the_reason() {
        let (records, out) = shape("", &TRADES.replace("3412.25", "n/a"));
        assert!(records.is_empty(), "no record of a rejected message is kept");
        assert_eq!(out.rejections[0].reason, r#"trade 1 of the message: price "n/a" is not a number"#);
    }
}
