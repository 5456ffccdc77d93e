//! What a tenant costs: RSS per idle tenant (connection, queues, threads and transform
//! instance included) and the time to start one from the compiled cache, for 10, 100 and
//! 1,000 tenants in one process against a local server. Run with
//! `cargo bench -p skippr --bench tenants`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use skippr::metrics::{Counters, Registry};
use skippr::runtime::Runtime;
use skippr::tenants::{RunOptions, Supervisor};
use tokio::net::TcpListener;

const COUNTS: [usize; 3] = [10, 100, 1000];

fn main() -> anyhow::Result<()> {
    let tokio = tokio::runtime::Runtime::new()?;
    let url = tokio.block_on(start_idle_server())?;
    let dir = std::env::temp_dir().join(format!("skippr-bench-tenants-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let runtime = Runtime::new()?;
    // Compile the default shaper once, as a long-running process would have.
    runtime.default_transform()?;
    println!("{:>8}  {:>16}  {:>18}  {:>16}", "tenants", "start ms/tenant", "idle RSS KiB/tenant", "all connected s");
    for count in COUNTS {
        let registry = Arc::new(Registry::default());
        let mut supervisor = Supervisor::new(runtime.clone(), RunOptions::default(), Arc::clone(&registry));
        let paths: Vec<_> = (0..count)
            .map(|i| {
                let path = dir.join(format!("t{count}-{i}.yaml"));
                let yaml = format!("source: {{kind: websocket, url: '{url}', ping_interval_seconds: 0}}\n");
                std::fs::write(&path, yaml).map(|()| path)
            })
            .collect::<Result<_, _>>()?;
        let rss_before = rss_kib()?;
        let started = Instant::now();
        {
            let _runtime = tokio.enter();
            for path in &paths {
                let prepared = supervisor.prepare(path)?;
                supervisor.launch(prepared, Vec::new());
            }
        }
        let start_ms = started.elapsed().as_secs_f64() * 1e3 / count as f64;
        let connected = tokio.block_on(all_connected(&registry, count));
        let connected_s = started.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(500));
        let rss_kib_per_tenant = (rss_kib()? - rss_before) as f64 / count as f64;
        println!("{count:>8}  {start_ms:>16.3}  {rss_kib_per_tenant:>18.0}  {connected_s:>16.2}");
        anyhow::ensure!(connected, "not every tenant connected");
        tokio.block_on(supervisor.stop_all());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A server that accepts WebSocket connections and keeps them open, sending nothing.
async fn start_idle_server() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/idle", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut socket) = tokio_tungstenite::accept_async(tcp).await {
                    use futures_util::StreamExt as _;
                    while let Some(Ok(_)) = socket.next().await {}
                }
            });
        }
    });
    Ok(url)
}

async fn all_connected(registry: &Registry, count: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let connected = registry.snapshot().iter().filter(|(_, c)| Counters::get(&c.connected) == 1).count();
        if connected == count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn rss_kib() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).unwrap_or("0").parse()?;
    Ok(pages * 4)
}
