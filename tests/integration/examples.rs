//! Every example under examples/transforms, built from source and run through the real
//! binary with its own skippr.yaml, against a feed of our test server; output is checked
//! record by record.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::binary::{Workdir, command, eventually, finish, terminate};
use crate::support::fixture;
use crate::support::server::{self, Handshake, Script, Step};
use crate::support::toolchains::{self, REPO};

/// Python and JavaScript components are large: compiling one takes seconds.
const LIMIT: Duration = Duration::from_secs(180);

struct Outcome {
    records: Vec<Value>,
    dead: Vec<Value>,
    stderr: String,
}

impl Outcome {
    fn values(&self) -> Vec<&Value> {
        self.records.iter().map(|record| &record["value"]).collect()
    }

    fn keys(&self) -> Vec<&str> {
        self.records.iter().map(|record| record["key"].as_str().unwrap()).collect()
    }

    fn reasons(&self) -> Vec<&str> {
        self.dead.iter().map(|dead| dead["reason"].as_str().unwrap()).collect()
    }
}

/// Runs `skippr run` on a copy of the example's skippr.yaml with `component`, against a feed
/// that plays `steps` once and stays open; stops it once `records` records and `dead` dead letters
/// are written.
async fn run_example(example: &str, component: &Path, steps: Vec<Step>, records: usize, dead: usize) -> Outcome {
    let feed = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new(&format!("example-{example}"));
    let yaml = std::fs::read_to_string(format!("{REPO}/examples/transforms/{example}/skippr.yaml")).unwrap();
    dir.write("skippr.yaml", &yaml);
    let mut command = command(&dir.path, &["run", "--transform", component.to_str().unwrap()]);
    command.env("FEED_URL", &feed.url);
    let child = command.spawn().unwrap();
    let lines = |name: &str| std::fs::read_to_string(dir.path.join(name)).unwrap_or_default().lines().count();
    let written = eventually(LIMIT, || lines("out/records.jsonl") >= records && lines("out/dead.jsonl") >= dead).await;
    terminate(&child);
    let done = finish(child, LIMIT).await;
    assert!(written, "{example}: expected {records} records and {dead} dead letters:\n{}", done.stderr);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let read = |name: &str| if dir.path.join(name).exists() { dir.json_lines(name) } else { Vec::new() };
    Outcome { records: read("out/records.jsonl"), dead: read("out/dead.jsonl"), stderr: done.stderr }
}

fn texts(messages: &[&str]) -> Vec<Step> {
    messages.iter().map(|message| Step::Text((*message).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn filter_drops_heartbeats_and_keepalives() {
    let feed = texts(&[
        r#"{"type":"trade","id":1}"#,
        r#"{"type":"heartbeat"}"#,
        r#"{"type":"keepalive","at":5}"#,
        "{not json",
        r#"{"type":"trade","id":2}"#,
        r#"[{"type":"heartbeat"}]"#,
    ]);
    let out = run_example("filter", &fixture("skippr_example_filter"), feed, 3, 1).await;
    assert_eq!(
        out.values(),
        [&json!({"type":"trade","id":1}), &json!({"type":"trade","id":2}), &json!([{"type":"heartbeat"}])]
    );
    assert!(out.reasons()[0].starts_with("invalid JSON"), "{:?}", out.dead);
    assert!(out.stderr.contains("the transform dropped 2 frames"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn normalize_trades_flattens_each_trade_into_a_keyed_record() {
    let trade = |id: u32, symbol: &str, price: &str, size: &str, side: &str| {
        format!(
            r#"{{"trade_id":"{id}","product_id":"{symbol}","price":"{price}","size":"{size}","side":"{side}","time":"t{id}"}}"#
        )
    };
    let message = |trades: &[String]| {
        format!(r#"{{"channel":"market_trades","events":[{{"type":"update","trades":[{}]}}]}}"#, trades.join(","))
    };
    let mut steps = vec![Step::AwaitClientMessages(1)];
    steps.extend(texts(&[
        r#"{"channel":"subscriptions","events":[{"subscriptions":{"market_trades":["BTC-USD","ETH-USD"]}}]}"#,
        &message(&[trade(1, "BTC-USD", "64012.50", "0.25", "BUY"), trade(2, "ETH-USD", "3412.25", "2", "SELL")]),
        &message(&[trade(3, "SOL-USD", "187.40", "10", "BUY")]),
        &message(&[trade(4, "BTC-USD", "64013", "oops", "BUY")]),
    ]));
    let out = run_example("normalize-trades", &fixture("skippr_example_normalize_trades"), steps, 2, 1).await;
    assert_eq!(out.keys(), ["BTC-USD", "ETH-USD"]);
    assert_eq!(
        out.values(),
        [
            &json!({"symbol":"BTC-USD","price":64012.5,"size":0.25,"side":"buy","trade_id":"1","time":"t1"}),
            &json!({"symbol":"ETH-USD","price":3412.25,"size":2.0,"side":"sell","trade_id":"2","time":"t2"}),
        ]
    );
    assert_eq!(out.records[0]["meta"]["sequence"], out.records[1]["meta"]["sequence"], "one frame, two records");
    assert_eq!(out.reasons(), [r#"trade 0 of the message: size "oops" is not a number"#]);
    assert!(out.stderr.contains("the transform dropped 2 frames"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_enrich_adds_the_notional_and_keys_by_symbol() {
    let dir = Workdir::new("build-python-enrich");
    let component = dir.path.join("enrich.wasm");
    let sdk = PathBuf::from(format!("{REPO}/sdk/python"));
    let project = PathBuf::from(format!("{REPO}/examples/transforms/python-enrich"));
    toolchains::build_python(&project, &[&project, &sdk], &component);
    let feed = texts(&[
        r#"{"type":"trade","symbol":"BTC-USD","price":"64000","size":"0.5"}"#,
        r#"{"type":"trade","symbol":"ADA-USD","price":"0.61","size":"10"}"#,
        r#"{"type":"heartbeat"}"#,
        "nope",
        r#"{"type":"trade","symbol":"ETH-USD","price":"n/a","size":"1"}"#,
        r#"{"type":"trade","symbol":"ETH-USD","price":"3400.5","size":"2"}"#,
    ]);
    let out = run_example("python-enrich", &component, feed, 2, 2).await;
    assert_eq!(out.keys(), ["BTC-USD", "ETH-USD"]);
    assert_eq!(
        out.values(),
        [
            &json!({"type":"trade","symbol":"BTC-USD","price":"64000","size":"0.5","notional":32000.0}),
            &json!({"type":"trade","symbol":"ETH-USD","price":"3400.5","size":"2","notional":6801.0}),
        ]
    );
    let reasons = out.reasons();
    assert!(reasons[0].starts_with("invalid JSON: Expecting value"), "{reasons:?}");
    assert!(reasons[1].starts_with("trade without a numeric price and size"), "{reasons:?}");
    assert!(out.stderr.contains("the transform dropped 2 frames"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn js_symbols_keeps_the_chosen_symbols_with_numeric_prices() {
    let project = PathBuf::from(format!("{REPO}/examples/transforms/js-symbols"));
    toolchains::npm(&project, "build");
    let feed = texts(&[
        r#"{"type":"trade","symbol":"BTC-USD","price":"64000.5","size":"0.5","id":9007199254740993}"#,
        r#"{"type":"trade","symbol":"SOL-USD","price":"187.4","size":"1"}"#,
        r#"{"type":"ticker","symbol":"BTC-USD"}"#,
        r#"{"type":"trade","symbol":"ETH-USD","price":"3400","size":"2"}"#,
        "\u{1f4a5} not json",
    ]);
    let out = run_example("js-symbols", &project.join("symbols.wasm"), feed, 2, 1).await;
    assert_eq!(out.keys(), ["BTC-USD", "ETH-USD"]);
    assert_eq!(out.values()[1], &json!({"type":"trade","symbol":"ETH-USD","price":3400,"size":2}));
    assert_eq!(out.values()[0]["price"], 64000.5);
    assert!(out.reasons()[0].starts_with("invalid JSON"), "{:?}", out.dead);
    assert!(out.stderr.contains("the transform dropped 2 frames"), "{}", out.stderr);
}
