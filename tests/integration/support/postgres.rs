//! The real PostgreSQL the tests write into, on 127.0.0.1:55432: started by `.ci/run` or
//! `just services`, or here by scripts/services when nothing answers.

use std::path::Path;
use std::sync::OnceLock;

/// Overrides where the tests find the database.
pub const URL_ENV: &str = "SKIPPR_TEST_DATABASE_URL";

pub fn url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| "postgres://skippr:skippr@127.0.0.1:55432/skippr".into())
}

/// Runs scripts/services with `action` (start, restart-postgres).
pub fn services(action: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services");
    let status = std::process::Command::new(script).arg(action).status().expect("scripts/services runs");
    assert!(status.success(), "scripts/services {action} failed: install PostgreSQL (apt-get install postgresql)");
}

/// A client of the test database, started first if need be.
pub async fn client() -> tokio_postgres::Client {
    static STARTED: OnceLock<()> = OnceLock::new();
    if let Ok(client) = connect().await {
        return client;
    }
    STARTED.get_or_init(|| services("start"));
    connect().await.expect("the test PostgreSQL answers after scripts/services start")
}

async fn connect() -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Drops the tables a test writes into, so a rerun starts empty. Query with a new
/// `client()` after the run: another test may restart the server meanwhile.
pub async fn fresh_tables(names: &[&str]) {
    let client = client().await;
    for name in names {
        client.batch_execute(&format!("DROP TABLE IF EXISTS {name}")).await.unwrap();
    }
}
