//! The benchmark harness (`just bench`): a flood server, a raw tokio-tungstenite baseline
//! and skippr end to end, in one run, as a table on stdout and JSON in
//! bench/results/latest.json. The boundary and tenant figures come from
//! `cargo bench -p skippr`.

mod baseline;
mod flood;
mod latency;
mod remote;
mod skippr;
mod usage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use flood::{Flood, Sent, Shape};
use remote::Remote;

/// Messages per throughput scenario: enough for a few seconds at full speed.
const MESSAGES: u64 = 400_000;
/// Runs of each scenario that reads at full speed into files; the fastest run is kept, the
/// one least disturbed on a shared 2-core machine, where one run's ratio varies by ±20%.
const RUNS: usize = 3;
/// Messages into PostgreSQL and NATS, which take ~13-18 µs each.
const REMOTE_MESSAGES: u64 = MESSAGES / 4;
/// Messages through the Python and JavaScript examples, which take ~40 µs each.
const SLOW_MESSAGES: u64 = 40_000;
/// Seconds of traffic per latency scenario.
const LATENCY_SECONDS: u64 = 3;

struct Row {
    scenario: String,
    messages: u64,
    seconds: f64,
    mb: f64,
    cpu_seconds: f64,
    peak_rss_mib: Option<f64>,
    ratio: Option<f64>,
    latency_us: Option<[u64; 3]>,
}

fn main() -> anyhow::Result<()> {
    let epoch = Instant::now();
    let tokio = tokio::runtime::Runtime::new()?;
    let dir = std::env::temp_dir().join(format!("skippr-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    for shape in [Shape::Trade, Shape::Json2k, Shape::Binary64] {
        let count = if matches!(shape, Shape::Json2k) { MESSAGES / 4 } else { MESSAGES };
        let base = best_of(RUNS, || throughput(&tokio, &dir, shape, count, epoch, Target::Baseline))?;
        let base_rate = base.messages as f64 / base.seconds;
        rows.push(base);
        // TLS and the disk buffer are measured on the trades.
        let plain = Target::Skippr { wss: false, buffer: "memory" };
        let targets: &[Target] = match shape {
            Shape::Trade => {
                &[plain, Target::Skippr { wss: true, buffer: "memory" }, Target::Skippr { wss: false, buffer: "disk" }]
            }
            _ => &[plain],
        };
        for &target in targets {
            let mut row = best_of(RUNS, || throughput(&tokio, &dir, shape, count, epoch, target))?;
            row.ratio = Some(row.messages as f64 / row.seconds / base_rate);
            rows.push(row);
        }
        let remotes: &[Remote] = if matches!(shape, Shape::Trade) { &[Remote::Postgres, Remote::Nats] } else { &[] };
        for &remote in remotes {
            if let Err(err) = tokio.block_on(remote.reset()) {
                eprintln!("skipping the {} scenario: {err:#} (run `just services`)", remote.name());
                continue;
            }
            let mut row = throughput(&tokio, &dir, shape, REMOTE_MESSAGES, epoch, Target::Remote(remote))?;
            row.ratio = Some(row.messages as f64 / row.seconds / base_rate);
            rows.push(row);
        }
    }
    rows.extend(example_transforms(&tokio, &dir, epoch)?);
    for rate in [1_000, 10_000] {
        rows.extend(latency_pair(&tokio, &dir, rate, epoch)?);
    }
    print_table(&rows);
    write_json(&rows)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Baseline,
    /// `buffer` is the kind of buffer: `memory` or `disk`.
    Skippr {
        wss: bool,
        buffer: &'a str,
    },
    Example {
        name: &'a str,
        transform: &'a skippr::Transform<'a>,
    },
    /// Into PostgreSQL or NATS JetStream, through the memory buffer.
    Remote(Remote),
}

/// The transforms of examples/transforms, each on the feed it is written for, against the
/// baseline reading that same feed. The Python and JavaScript ones need `just examples`.
fn example_transforms(tokio: &tokio::runtime::Runtime, dir: &Path, epoch: Instant) -> anyhow::Result<Vec<Row>> {
    let components = skippr::binary()?.with_file_name("../wasm-components/wasm32-wasip2/release");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/transforms");
    // Memory caps as in each example's skippr.yaml: CPython needs more than the default.
    let cases = [
        ("filter (Rust)", components.join("skippr_example_filter.wasm"), "{}", 64, Shape::Trade, MESSAGES),
        (
            "normalize-trades (Rust)",
            components.join("skippr_example_normalize_trades.wasm"),
            "{}",
            64,
            Shape::MarketTrade,
            MESSAGES,
        ),
        ("python-enrich", examples.join("python-enrich/enrich.wasm"), "{}", 128, Shape::Trade, SLOW_MESSAGES),
        (
            "js-symbols",
            examples.join("js-symbols/symbols.wasm"),
            r#"{"symbols": ["BTC-USD"]}"#,
            64,
            Shape::Trade,
            SLOW_MESSAGES,
        ),
    ];
    let mut rows = Vec::new();
    for (name, path, options, memory_mb, shape, count) in cases {
        if !path.exists() {
            eprintln!("skipping the {name} example: {} is missing (run `just examples`)", path.display());
            continue;
        }
        skippr::compile_into_disk_cache(&path, options)?;
        let runs = if count == MESSAGES { RUNS } else { 1 };
        let base = best_of(runs, || throughput(tokio, dir, shape, count, epoch, Target::Baseline))?;
        let transform = skippr::Transform { path: &path, options, memory_mb };
        let example = Target::Example { name, transform: &transform };
        let mut row = best_of(runs, || throughput(tokio, dir, shape, count, epoch, example))?;
        row.ratio = Some(base.seconds / row.seconds);
        rows.extend([base, row]);
    }
    Ok(rows)
}

fn throughput(
    tokio: &tokio::runtime::Runtime,
    dir: &Path,
    shape: Shape,
    count: u64,
    epoch: Instant,
    target: Target<'_>,
) -> anyhow::Result<Row> {
    let tls = matches!(target, Target::Skippr { wss: true, .. }).then(|| tls_acceptor(dir)).transpose()?;
    let (url, sent) = tokio.block_on(Flood { shape, count, rate: None, tls }.start(epoch))?;
    let (scenario, finished, cpu, peak_rss_mib) = match target {
        Target::Baseline => {
            let read = baseline::run(&url, &dir.join("baseline.jsonl"), epoch, false)?;
            anyhow::ensure!(read.messages == count, "the baseline read {} of {count}", read.messages);
            (format!("baseline raw client, {}", shape.name()), read.finished, read.cpu, None)
        }
        Target::Skippr { wss, buffer } => {
            let tls = if wss { "  tls: {ca_file: ca.pem}\n" } else { "" };
            let run = skippr::run_batch(dir, &url, tls, skippr::FILE_SINKS, buffer, None)?;
            let lines = count_lines(&dir.join("out.jsonl"))? + count_lines(&dir.join("dead.jsonl")).unwrap_or(0);
            anyhow::ensure!(lines == count, "skippr wrote {lines} of {count}");
            let name =
                format!("skippr run batch, {}, {buffer} buffer, {}", if wss { "wss" } else { "ws" }, shape.name());
            (name, run.finished, run.cpu, Some(run.peak_rss_kib as f64 / 1024.0))
        }
        Target::Example { name, transform } => {
            let run = skippr::run_batch(dir, &url, "", skippr::FILE_SINKS, "memory", Some(transform))?;
            // Every example keeps every message of its feed: one record each, no dead letter.
            let records = count_lines(&dir.join("out.jsonl"))?;
            anyhow::ensure!(records == count, "the {name} example wrote {records} records of {count}");
            let scenario = format!("skippr + {name}, {}", shape.name());
            (scenario, run.finished, run.cpu, Some(run.peak_rss_kib as f64 / 1024.0))
        }
        Target::Remote(remote) => {
            let run = skippr::run_batch(dir, &url, "", &remote.sinks(), "memory", None)?;
            let stored = tokio.block_on(remote.count())?;
            anyhow::ensure!(stored == count, "skippr stored {stored} records of {count} in {}", remote.name());
            let scenario = format!("skippr run batch, ws → {}, {}", remote.name(), shape.name());
            (scenario, run.finished, run.cpu, Some(run.peak_rss_kib as f64 / 1024.0))
        }
    };
    let sent: Sent = tokio.block_on(sent)??;
    let seconds = finished.duration_since(sent.accepted).as_secs_f64();
    Ok(Row {
        scenario,
        messages: count,
        seconds,
        mb: sent.bytes as f64 / 1e6,
        cpu_seconds: cpu.as_secs_f64(),
        peak_rss_mib,
        ratio: None,
        latency_us: None,
    })
}

/// The fastest of `runs` runs of a scenario.
fn best_of(runs: usize, mut run: impl FnMut() -> anyhow::Result<Row>) -> anyhow::Result<Row> {
    let mut best = run()?;
    for _ in 1..runs {
        let row = run()?;
        if row.seconds < best.seconds {
            best = row;
        }
    }
    Ok(best)
}

/// The baseline's and skippr's latency at the same fixed rate.
fn latency_pair(tokio: &tokio::runtime::Runtime, dir: &Path, rate: u32, epoch: Instant) -> anyhow::Result<[Row; 2]> {
    let count = u64::from(rate) * LATENCY_SECONDS;
    let row = |scenario: String, sent: Sent, cpu: f64, rss: Option<f64>, latencies: Vec<u64>| Row {
        scenario,
        messages: count,
        seconds: sent.finished.duration_since(sent.accepted).as_secs_f64(),
        mb: sent.bytes as f64 / 1e6,
        cpu_seconds: cpu,
        peak_rss_mib: rss,
        ratio: None,
        latency_us: latency::percentiles(latencies),
    };
    let flood = || Flood { shape: Shape::Trade, count, rate: Some(rate), tls: None };
    let (url, sent) = tokio.block_on(flood().start(epoch))?;
    let read = baseline::run(&url, &dir.join("baseline.jsonl"), epoch, true)?;
    let base = row(
        format!("baseline latency at {rate}/s"),
        tokio.block_on(sent)??,
        read.cpu.as_secs_f64(),
        None,
        read.latencies_us,
    );
    let (url, sent) = tokio.block_on(flood().start(epoch))?;
    let run = skippr::run_stream_latency(dir, &url, count, epoch)?;
    let rss = Some(run.peak_rss_kib as f64 / 1024.0);
    let ours = row(
        format!("skippr stream latency at {rate}/s"),
        tokio.block_on(sent)??,
        run.cpu.as_secs_f64(),
        rss,
        run.latencies_us,
    );
    Ok([base, ours])
}

fn tls_acceptor(dir: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    use rustls::pki_types::pem::PemObject as _;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.iter().filter(|&&b| b == b'\n').count() as u64)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>9} {:>10} {:>8} {:>7} {:>8} {:>9} {:>7}  latency p50/p99/p99.9 µs",
        "scenario", "messages", "msg/s", "MB/s", "CPU s", "RSS MiB", "vs base", ""
    );
    for row in rows {
        let rss = row.peak_rss_mib.map_or("-".to_owned(), |rss| format!("{rss:.0}"));
        let ratio = row.ratio.map_or("-".to_owned(), |ratio| format!("{ratio:.2}x"));
        let latency = row.latency_us.map_or(String::new(), |[p50, p99, p999]| format!("{p50}/{p99}/{p999}"));
        println!(
            "{:<44} {:>9} {:>10.0} {:>8.1} {:>7.2} {:>8} {:>9} {:>7}  {latency}",
            row.scenario,
            row.messages,
            row.messages as f64 / row.seconds,
            row.mb / row.seconds,
            row.cpu_seconds,
            rss,
            ratio,
            ""
        );
    }
}

fn write_json(rows: &[Row]) -> anyhow::Result<()> {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")?
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let results: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "scenario": row.scenario,
                "messages": row.messages,
                "messages_per_second": row.messages as f64 / row.seconds,
                "mb_per_second": row.mb / row.seconds,
                "cpu_seconds": row.cpu_seconds,
                "peak_rss_mib": row.peak_rss_mib,
                "ratio_to_baseline": row.ratio,
                "latency_us_p50_p99_p999": row.latency_us,
            })
        })
        .collect();
    let report = serde_json::json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "cpu": cpu_model },
        "versions": { "skippr": env!("CARGO_PKG_VERSION"), "wasmtime": "48.0.8", "tokio-tungstenite": "0.30" },
        "results": results,
    });
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/latest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
