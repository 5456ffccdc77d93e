//! Many tenants in one process: isolation, live transform swap, tenant files coming and
//! going, restart policy, limit ceilings and /metrics, through the real binary.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::binary::{Workdir, command, eventually, finish, run, terminate};
use crate::support::fixture;
use crate::support::server::{self, Handshake, Script, Step};

const LIMIT: Duration = Duration::from_secs(120);

fn tenant_config(url: &str, mode: &str, output: &str, extra: &str) -> String {
    format!(
        "source: {{kind: websocket, url: '{url}', mode: {mode}, idle_timeout_seconds: 10, reconnect: {{initial_ms: 50, max_ms: 200}}}}\n\
         batch: {{max_records: 50, max_age_ms: 50}}\n\
         destination: {{kind: file, path: '{output}'}}\n\
         deadletter: {{kind: file, path: '{output}.dead'}}\n{extra}"
    )
}

fn texts(n: usize) -> Vec<Step> {
    (0..n).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).collect()
}

/// 50 tenants deliver everything while a looping transform and a refused handshake fail
/// beside them, each reported under its own name.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_tenants_deliver_while_a_hostile_one_and_a_refused_one_fail_alone() {
    let feed = server::start(vec![Script::new([texts(20), vec![Step::Close]].concat())], Handshake::default()).await;
    let locked = Handshake { require_header: Some(("Authorization".into(), "Bearer right".into())) };
    let refusing = server::start(vec![Script::new(texts(1))], locked).await;
    let dir = Workdir::new("fifty-tenants");
    let mut args: Vec<String> = vec!["run".into()];
    for i in 0..50 {
        let path =
            dir.write(&format!("t{i:02}.yaml"), &tenant_config(&feed.url, "batch", &format!("out/t{i:02}.jsonl"), ""));
        args.extend(["-c".into(), path.display().to_string()]);
    }
    let hostile = format!(
        "transform: {{path: '{}', options: loop}}\nlimits: {{cpu_ms_per_call: 100}}\n",
        fixture("skippr_fixture_hostile").display()
    );
    let hostile_path = dir.write("hostile.yaml", &tenant_config(&feed.url, "batch", "out/hostile.jsonl", &hostile));
    let refused_path = dir.write("refused.yaml", &tenant_config(&refusing.url, "batch", "out/refused.jsonl", ""));
    args.extend(["-c".into(), hostile_path.display().to_string(), "-c".into(), refused_path.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = run(&dir.path, &args, LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    for i in 0..50 {
        assert_eq!(dir.json_lines(&format!("out/t{i:02}.jsonl")).len(), 20, "tenant t{i:02}:\n{}", done.stderr);
    }
    assert!(done.stderr.contains("2 of 52 pipelines failed: hostile, refused"), "{}", done.stderr);
    assert_eq!(done.stderr.matches("pipeline `refused`: handshake failed").count(), 1, "said once: {}", done.stderr);
    assert!(done.stderr.contains("error `hostile`: pipeline `hostile`: transform instance `hostile` failed in `push`: it ran past its CPU budget of 100 ms"), "{}", done.stderr);
    assert!(
        done.stderr.contains("error `refused`: pipeline `refused`: handshake failed: the server answered 401"),
        "{}",
        done.stderr
    );
    let dead = dir.json_lines("out/hostile.jsonl.dead");
    assert!(
        !dead.is_empty() && dead.iter().all(|d| d["reason"].as_str().unwrap().starts_with("the transform failed")),
        "the frames of the failed call are dead-lettered: {dead:?}"
    );
}

/// A transform file replaced under a steady flow switches at a batch boundary: every frame
/// once, old records all before new ones, the connection kept; a broken file is refused
/// and the running transform stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_transform_swap_under_a_flood_loses_and_duplicates_nothing() {
    const FRAMES: usize = 600;
    let steps = [vec![Step::Pace(Duration::from_millis(5))], texts(FRAMES)].concat();
    let feed = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("swap");
    std::fs::copy(env!("SKIPPR_DEFAULT_TRANSFORM"), dir.path.join("t.wasm")).unwrap();
    dir.write("skippr.yaml", &tenant_config(&feed.url, "stream", "out/r.jsonl", "transform: {path: t.wasm}\n"));
    let child = command(&dir.path, &["run"]).spawn().unwrap();
    assert!(eventually(Duration::from_secs(30), || dir.read("out/r.jsonl").lines().count() > 100).await);
    let swapped = dir.path.join("t.wasm.new");
    std::fs::copy(fixture("skippr_fixture_hostile"), &swapped).unwrap();
    std::fs::rename(&swapped, dir.path.join("t.wasm")).unwrap();
    assert!(eventually(Duration::from_secs(30), || dir.read("out/r.jsonl").contains("\"echo\"")).await, "swapped");
    dir.write("t.wasm.new", "not a component");
    std::fs::rename(dir.path.join("t.wasm.new"), dir.path.join("t.wasm")).unwrap();
    assert!(eventually(Duration::from_secs(60), || dir.read("out/r.jsonl").lines().count() >= FRAMES).await);
    terminate(&child);
    let done = finish(child, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let records = dir.json_lines("out/r.jsonl");
    let sequence =
        |r: &serde_json::Value| r.get("echo").or(r["meta"].get("sequence")).and_then(|s| s.as_u64()).unwrap();
    let sequences: Vec<u64> = records.iter().map(sequence).collect();
    assert_eq!(sequences, (0..FRAMES as u64).collect::<Vec<_>>(), "every frame once, in order");
    let first_echo = records.iter().position(|r| r.get("echo").is_some()).unwrap();
    assert!(records[first_echo..].iter().all(|r| r.get("echo").is_some()), "no old record after the swap");
    assert!(done.stderr.contains("Transform swapped at a batch boundary."), "{}", done.stderr);
    assert!(done.stderr.contains("New transform refused; the running one stays."), "{}", done.stderr);
    assert_eq!(feed.log().connections, 1, "the connection stayed open");
}

/// `skippr reload` (SIGHUP) makes a running pipeline load its transform file again and
/// switch to it at a batch boundary, without dropping the connection.
#[tokio::test(flavor = "multi_thread")]
async fn skippr_reload_swaps_the_transform_in_a_running_process() {
    let feed = server::start(vec![Script::new(texts(2))], Handshake::default()).await;
    let dir = Workdir::new("reload");
    std::fs::copy(env!("SKIPPR_DEFAULT_TRANSFORM"), dir.path.join("t.wasm")).unwrap();
    dir.write("skippr.yaml", &tenant_config(&feed.url, "stream", "out/r.jsonl", "transform: {path: t.wasm}\n"));
    let child = command(&dir.path, &["run", "--pid-file", "skippr.pid"]).spawn().unwrap();
    assert!(eventually(Duration::from_secs(30), || dir.read("out/r.jsonl").lines().count() == 2).await);
    let reload = run(&dir.path, &["reload", "--pid-file", "skippr.pid"], LIMIT).await;
    assert_eq!(reload.code, Some(0), "{}", reload.stderr);
    tokio::time::sleep(Duration::from_secs(1)).await;
    terminate(&child);
    let done = finish(child, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("SIGHUP: every pipeline checks its transform file."), "{}", done.stderr);
    assert!(done.stderr.contains("Transform swapped at a batch boundary."), "{}", done.stderr);
    assert_eq!(feed.log().connections, 1);
}

/// With `--pipelines DIR`, a file added starts its tenant, a changed one restarts it and a
/// removed one stops it, leaving the other alone; /metrics and /healthz answer throughout.
#[tokio::test(flavor = "multi_thread")]
async fn tenant_files_added_and_removed_at_runtime_start_and_stop_alone() {
    let feed = server::start(vec![Script::new(texts(3))], Handshake::default()).await;
    let dir = Workdir::new("pipelines-dir");
    std::fs::create_dir_all(dir.path.join("tenants")).unwrap();
    dir.write("tenants/alpha.yaml", &tenant_config(&feed.url, "stream", "../out/alpha.jsonl", ""));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let child =
        command(&dir.path, &["run", "--pipelines", "tenants", "--metrics-addr", &metrics_addr]).spawn().unwrap();
    assert!(eventually(Duration::from_secs(30), || dir.read("out/alpha.jsonl").lines().count() == 3).await);
    dir.write("tenants/beta.yaml", &tenant_config(&feed.url, "stream", "../out/beta.jsonl", ""));
    assert!(
        eventually(Duration::from_secs(30), || dir.read("out/beta.jsonl").lines().count() == 3).await,
        "beta started"
    );
    assert_eq!(feed.log().closed, 0, "alpha was not touched");

    let metrics = scrape(&metrics_addr, "/metrics").await;
    assert_eq!(metrics[r#"skippr_records_delivered_total{tenant="alpha"}"#], 3.0);
    assert_eq!(metrics[r#"skippr_records_delivered_total{tenant="beta"}"#], 3.0);
    assert_eq!(metrics[r#"skippr_connected{tenant="alpha"}"#], 1.0);
    assert!(metrics[r#"skippr_guest_memory_bytes{tenant="beta"}"#] > 0.0);
    assert!(metrics.contains_key(r#"skippr_guest_busy_microseconds_total{tenant="alpha"}"#));

    let beta = dir.read("tenants/beta.yaml");
    dir.write("tenants/beta.yaml", &format!("# changed\n{beta}"));
    assert!(eventually(Duration::from_secs(30), || feed.log().connections == 3).await, "beta restarted");
    assert_eq!(feed.log().closed, 1, "only beta's old connection closed");

    std::fs::remove_file(dir.path.join("tenants/alpha.yaml")).unwrap();
    assert!(eventually(Duration::from_secs(30), || feed.log().closed == 2).await, "alpha's connection closed");
    let metrics = scrape(&metrics_addr, "/metrics").await;
    assert!(!metrics.contains_key(r#"skippr_connected{tenant="alpha"}"#), "a removed tenant leaves the metrics");
    assert_eq!(metrics[r#"skippr_connected{tenant="beta"}"#], 1.0, "beta goes on");
    let health = http_get(&metrics_addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"), "{health}");
    terminate(&child);
    let done = finish(child, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("Config file removed: stopping the pipeline. tenant=alpha"), "{}", done.stderr);
    assert!(done.stderr.contains("Config file changed: restarting the pipeline. tenant=beta"), "{}", done.stderr);
}

/// `on_transform_error: restart` replaces a failing instance a few times, then stops.
#[tokio::test(flavor = "multi_thread")]
async fn the_restart_policy_retries_a_failing_transform_then_gives_up() {
    // Paced, so the frames arrive over several pushes.
    let steps = [vec![Step::Pace(Duration::from_millis(20))], texts(40)].concat();
    let feed = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("restart");
    let extra = format!(
        "transform: {{path: '{}', options: panic}}\non_transform_error: restart\n",
        fixture("skippr_fixture_hostile").display()
    );
    dir.write("skippr.yaml", &tenant_config(&feed.url, "stream", "out/r.jsonl", &extra));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert_eq!(done.stderr.matches("restarted it (on_transform_error: restart)").count(), 3, "{}", done.stderr);
    assert!(done.stderr.contains("The transform failed; stopping this pipeline."), "{}", done.stderr);
    let dead = dir.json_lines("out/r.jsonl.dead");
    let summary = done.stderr.lines().find(|l| l.starts_with("summary: ")).unwrap();
    assert!(summary.contains(&format!("dead-lettered {} frames", dead.len())), "{summary}");
}

/// A tenant cannot raise its limits over the operator's ceiling.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_over_the_operators_ceiling_is_refused() {
    let dir = Workdir::new("ceiling");
    dir.write(
        "skippr.yaml",
        &tenant_config("ws://127.0.0.1:9/x", "batch", "out/r.jsonl", "limits: {memory_mb: 512}\n"),
    );
    let done = run(&dir.path, &["validate", "--max-memory-mb", "128"], LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("limits.memory_mb: 512 must be between 1 and the operator's ceiling of 128 (--max-memory-mb)"),
        "{}",
        done.stderr
    );
    let allowed = run(&dir.path, &["validate", "--max-memory-mb", "512"], LIMIT).await;
    assert_eq!(allowed.code, Some(0), "{}", allowed.stderr);
}

/// JSON logs are one JSON object per line.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line() {
    let feed = server::start(vec![Script::new([texts(2), vec![Step::Close]].concat())], Handshake::default()).await;
    let dir = Workdir::new("json-logs");
    dir.write("skippr.yaml", &tenant_config(&feed.url, "batch", "out/r.jsonl", ""));
    let done = run(&dir.path, &["run", "--log-format", "json"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let logs: Vec<serde_json::Value> =
        done.stderr.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(logs.iter().any(|l| l["fields"]["message"] == "Connected."), "{}", done.stderr);
}

async fn http_get(addr: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await.unwrap().unwrap();
    response
}

/// Parses the Prometheus text format into `series -> value`.
async fn scrape(addr: &str, path: &str) -> BTreeMap<String, f64> {
    let response = http_get(addr, path).await;
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("text/plain; version=0.0.4"), "{head}");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}
