//! The real servers the destination scenarios write into (`just services` starts them on
//! loopback): PostgreSQL, one table, and NATS JetStream, one stream. Records only; dead
//! letters stay in a file.

use async_nats::jetstream;

#[derive(Debug, Clone, Copy)]
pub enum Remote {
    Postgres,
    Nats,
}

const TABLE: &str = "bench_trades";
const STREAM: &str = "BENCH_TRADES";

fn postgres_url() -> String {
    std::env::var("SKIPPR_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://skippr:skippr@127.0.0.1:55432/skippr".into())
}

fn nats_url() -> String {
    std::env::var("SKIPPR_BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:54222".into())
}

impl Remote {
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Nats => "NATS JetStream",
        }
    }

    /// The skippr.yaml sections that send records there.
    pub fn sinks(self) -> String {
        let destination = match self {
            Self::Postgres => format!("{{kind: postgres, url: '{}', table: {TABLE}}}", postgres_url()),
            Self::Nats => format!("{{kind: nats, url: '{}', subject: bench.trades, stream: {STREAM}}}", nats_url()),
        };
        format!("destination: {destination}\ndeadletter: {{kind: file, path: dead.jsonl}}\n")
    }

    /// Empties the table or stream; fails if the server does not answer.
    pub async fn reset(self) -> anyhow::Result<()> {
        match self {
            Self::Postgres => postgres().await?.batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}")).await?,
            Self::Nats => {
                let _ = nats().await?.delete_stream(STREAM).await;
            }
        }
        Ok(())
    }

    /// How many records it holds.
    pub async fn count(self) -> anyhow::Result<u64> {
        Ok(match self {
            Self::Postgres => {
                let row = postgres().await?.query_one(&format!("SELECT count(*) FROM {TABLE}"), &[]).await?;
                row.get::<_, i64>(0) as u64
            }
            Self::Nats => nats().await?.get_stream(STREAM).await?.info().await?.state.messages,
        })
    }
}

async fn postgres() -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn nats() -> anyhow::Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(nats_url()).await?))
}
