//! The PostgreSQL destination against a real server: records and dead letters in their
//! tables, each exactly once through `kill -9` and a database restart, and a wrong
//! password refused with what to fix, never shown.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::durability::{assert_each_sequence_once, kill_9_rounds};
use crate::support::binary::{Workdir, command, finish, run};
use crate::support::flood::start_numbering_server;
use crate::support::postgres;
use crate::support::server::{self, Handshake, Script, Step};

const LIMIT: Duration = Duration::from_secs(120);

/// A pipeline into PostgreSQL: records into `table`, dead letters into `{table}_dead`.
fn config(url: &str, mode: &str, table: &str) -> String {
    format!(
        "source: {{kind: websocket, url: '{url}', mode: {mode}, idle_timeout_seconds: 2, namespace: {table}, reconnect: {{initial_ms: 50, max_ms: 200}}}}\n\
         batch: {{max_records: 100, max_age_ms: 20}}\n\
         destination: {{kind: postgres, url: '${{DATABASE_URL}}'}}\n\
         deadletter: {{kind: postgres, url: '${{DATABASE_URL}}', table: {table}_dead}}\n"
    )
}

fn workdir(test: &str, yaml: &str, database_url: &str) -> Workdir {
    let dir = Workdir::new(test);
    dir.write("skippr.yaml", yaml);
    dir.write(".env", &format!("DATABASE_URL={database_url}\n"));
    dir
}

async fn sequences(client: &tokio_postgres::Client, table: &str) -> Vec<u64> {
    let records = format!("SELECT sequence FROM {table} UNION ALL SELECT sequence FROM {table}_dead");
    client.query(&records, &[]).await.unwrap().iter().map(|row| row.get::<_, i64>(0) as u64).collect()
}

async fn ids(client: &tokio_postgres::Client, table: &str) -> (i64, i64) {
    let query = format!("SELECT count(*), count(DISTINCT value->>'id') FROM {table}");
    let row = client.query_one(&query, &[]).await.unwrap();
    (row.get(0), row.get(1))
}

/// Records become rows (value as jsonb, metadata in columns), malformed frames rows of the
/// dead-letter table with their reason.
#[tokio::test(flavor = "multi_thread")]
async fn records_and_dead_letters_land_in_their_own_tables() {
    let _server = postgres::SERVER.read().await; // beside the others, not during a restart
    postgres::fresh_tables(&["pg_rows", "pg_rows_dead"]).await;
    let mut steps: Vec<Step> = (0..30).map(|i| Step::Text(format!(r#"{{"i":{i},"tags":["a"]}}"#))).collect();
    steps.extend((0..3).map(|i| Step::Text(format!("not json {i}"))));
    steps.push(Step::Close);
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = workdir("pg-rows", &config(&server.url, "batch", "pg_rows"), &postgres::url());
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stderr.contains("delivered 30 records; dead-lettered 3 frames"), "{}", done.stderr);
    let client = postgres::client().await;

    let query = "SELECT value::text, kind, connection_id, url, received_at IS NOT NULL FROM pg_rows WHERE sequence = 7";
    let row = client.query_one(query, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), r#"{"i": 7, "tags": ["a"]}"#);
    assert_eq!(row.get::<_, String>(1), "text");
    assert_eq!(row.get::<_, i64>(2), 1);
    assert_eq!(row.get::<_, String>(3), server.url);
    assert!(row.get::<_, bool>(4));
    let reasons = client.query("SELECT reason, payload FROM pg_rows_dead ORDER BY sequence", &[]).await.unwrap();
    assert_eq!(reasons.len(), 3);
    assert!(reasons[0].get::<_, String>(0).starts_with("invalid JSON"), "{}", reasons[0].get::<_, String>(0));
    assert_eq!(reasons[0].get::<_, String>(1), "not json 0");
    let mut all = sequences(&client, "pg_rows").await;
    all.sort_unstable();
    assert_each_sequence_once(&all);
}

/// `kill -9` at random moments of a flood into PostgreSQL, then a run that drains the
/// rest: every accepted frame is one row, no message twice.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_flood_leaves_each_record_once_in_the_table() {
    let _server = postgres::SERVER.read().await; // beside the others, not during a restart
    postgres::fresh_tables(&["pg_kill", "pg_kill_dead"]).await;
    let (url, sent) = start_numbering_server(40_000, 100, 40, Duration::from_millis(2)).await;
    let dir = workdir("pg-kill-9", &config(&url, "stream", "pg_kill"), &postgres::url());
    let recovered =
        kill_9_rounds(&dir, 3, 300, [&config(&url, "stream", "pg_kill"), &config(&url, "batch", "pg_kill")]).await;

    let client = postgres::client().await;
    assert_each_sequence_once(&sequences(&client, "pg_kill").await);
    let (rows, distinct) = ids(&client, "pg_kill").await;
    assert_eq!(rows, distinct, "a message was stored twice");
    assert!(rows > 1000 && rows as u64 <= sent.load(Ordering::SeqCst), "{rows} rows");
    println!("postgres kill -9: {rows} rows, each once; recovered per restart {recovered:?}");
}

/// The database restarted in the middle of a flood: the writer holds the records and
/// retries, the buffer takes the flood meanwhile, and every message is one row.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_restarted_mid_run_loses_and_doubles_nothing() {
    let _server = postgres::SERVER.write().await; // alone: it restarts the server
    const MESSAGES: u64 = 20_000;
    postgres::fresh_tables(&["pg_restart", "pg_restart_dead"]).await;
    let (url, sent) = start_numbering_server(MESSAGES, 100, 20, Duration::from_millis(4)).await;
    let dir = workdir("pg-restart", &config(&url, "batch", "pg_restart"), &postgres::url());
    let child = command(&dir.path, &["run"]).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent_before = sent.load(Ordering::SeqCst);
    tokio::task::spawn_blocking(|| crate::support::services("restart-postgres")).await.unwrap();
    assert!(sent_before < MESSAGES, "restarted mid-flood: {sent_before} of {MESSAGES} sent");
    let done = finish(child, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(sent.load(Ordering::SeqCst), MESSAGES);
    let client = postgres::client().await;
    assert_eq!(ids(&client, "pg_restart").await, (MESSAGES as i64, MESSAGES as i64), "{}", done.stderr);
    let retried = done.stderr.matches("PostgreSQL is unavailable; holding the records and retrying").count();
    println!("postgres restart: {MESSAGES} rows, each once; {retried} retries logged");
}

/// A wrong password stops the pipeline with what to fix; the password is never printed.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_with_what_to_fix_and_never_shown() {
    let _server = postgres::SERVER.read().await; // beside the others, not during a restart
    postgres::client().await;
    let steps = (0..5).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).chain([Step::Close]).collect();
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let wrong = postgres::url().replacen(":skippr@", ":Wr0ngS3cret@", 1);
    assert_ne!(wrong, postgres::url(), "the test URL has the password `skippr`");
    let dir = workdir("pg-wrong-password", &config(&server.url, "batch", "pg_wrong"), &wrong);
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("password authentication failed"), "{}", done.stderr);
    assert!(done.stderr.contains("check the user and password in the destination url"), "{}", done.stderr);
    assert!(!done.all_output().contains("Wr0ngS3cret"), "{}", done.all_output());
    assert!(done.stderr.contains("skippr:***@"), "{}", done.stderr);
}

/// `connect destination postgres` keeps the password in .env.local, and the run writes
/// into the table named after the namespace.
#[tokio::test(flavor = "multi_thread")]
async fn connect_destination_postgres_keeps_the_password_out_of_skippr_yaml() {
    let _server = postgres::SERVER.read().await; // beside the others, not during a restart
    postgres::fresh_tables(&["websocket_127_0_0_1"]).await;
    let steps = (0..12).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#))).chain([Step::Close]).collect();
    let server = server::start(vec![Script::new(steps)], Handshake::default()).await;
    let dir = Workdir::new("pg-connect");
    for args in [
        &["init"][..],
        &["connect", "source", "websocket", "--url", &server.url, "--mode", "batch"],
        &["connect", "destination", "postgres", "--url", &postgres::url()],
    ] {
        let done = run(&dir.path, args, LIMIT).await;
        assert_eq!(done.code, Some(0), "{args:?}: {}", done.stderr);
    }
    let yaml = dir.read("skippr.yaml");
    assert!(yaml.contains("kind: postgres") && yaml.contains("url: ${DATABASE_URL}"), "{yaml}");
    assert!(!yaml.contains(":skippr@"), "no password in skippr.yaml:\n{yaml}");
    assert!(dir.read(".env.local").contains("DATABASE_URL="), "{}", dir.read(".env.local"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let client = postgres::client().await;
    let rows: i64 = client.query_one("SELECT count(*) FROM websocket_127_0_0_1", &[]).await.unwrap().get(0);
    assert_eq!(rows, 12);
}
