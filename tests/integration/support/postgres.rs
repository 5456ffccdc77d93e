//! The real PostgreSQL the tests write into, on 127.0.0.1:55432: started by `.ci/run` or
//! `just services`, or here by scripts/services when nothing answers.

/// Tests share the server (read) except one that restarts it (write).
pub static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Overrides where the tests find the database.
pub const URL_ENV: &str = "SKIPPR_TEST_DATABASE_URL";

pub fn url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| "postgres://skippr:skippr@127.0.0.1:55432/skippr".into())
}

/// A client of the test database, started first if need be.
pub async fn client() -> tokio_postgres::Client {
    super::connect_or_start("PostgreSQL", connect).await
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
