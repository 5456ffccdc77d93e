//! The PostgreSQL the destination scenario writes into: `just services` starts it on
//! 127.0.0.1:55432, `SKIPPR_BENCH_DATABASE_URL` points elsewhere.

pub const TABLE: &str = "bench_trades";

fn url() -> String {
    std::env::var("SKIPPR_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://skippr:skippr@127.0.0.1:55432/skippr".into())
}

/// The sections that send records there (dead letters stay in a file).
pub fn sinks() -> String {
    format!(
        "destination: {{kind: postgres, url: '{}', table: {TABLE}}}\ndeadletter: {{kind: file, path: dead.jsonl}}\n",
        url()
    )
}

async fn client() -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

pub fn reachable(tokio: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    tokio.block_on(client()).map(drop)
}

pub async fn drop_table(table: &str) -> anyhow::Result<()> {
    client().await?.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await?;
    Ok(())
}

pub async fn count(table: &str) -> anyhow::Result<u64> {
    let row = client().await?.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?;
    Ok(row.get::<_, i64>(0) as u64)
}
