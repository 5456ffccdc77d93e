//! PostgreSQL: each flush writes what it holds in one transaction, records into one table
//! per namespace (or the configured one), dead letters into their own. Rows are keyed by
//! (pipeline, sequence, record index), and inserted with `ON CONFLICT DO NOTHING`, so the
//! buffer's replay after a crash inserts nothing twice. The database down or restarted is
//! retried with backoff, holding the writer (and so the buffer, then the socket) back; a
//! permanent error (login, missing database, permission, bad data) says what to fix.

use std::collections::{BTreeMap, HashSet};
use std::io;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::retry::{self, Failure, Remote};
use super::{Role, records};
use crate::config::PostgresConfig;
use crate::runtime::Batch;

/// Where dead letters go when the section names no table.
const DEADLETTER_TABLE: &str = "skippr_deadletters";

pub struct PostgresSink {
    config: Target,
    role: Role,
    pipeline: String,
    client: Option<Client>,
    /// Tables known to exist.
    ready: HashSet<String>,
    /// Records waiting for the next flush, by table.
    records: BTreeMap<String, Rows>,
    dead_letters: Vec<String>,
}

/// Where the rows go.
struct Target {
    connect: tokio_postgres::Config,
    /// The URL as logs and errors show it.
    shown: String,
    table: Option<String>,
    schema: Option<String>,
}

#[derive(Default)]
struct Rows {
    sequences: Vec<i64>,
    indexes: Vec<i32>,
    lines: Vec<String>,
}

impl PostgresSink {
    pub fn new(config: &PostgresConfig, pipeline: &str, role: Role) -> Result<Self, String> {
        let connect = config.url.parse().map_err(|err| format!("{}: {err}", config.shown))?;
        let config =
            Target { connect, shown: config.shown.clone(), table: config.table.clone(), schema: config.schema.clone() };
        Ok(Self {
            config,
            role,
            pipeline: pipeline.to_owned(),
            client: None,
            ready: HashSet::new(),
            records: BTreeMap::new(),
            dead_letters: Vec::new(),
        })
    }

    pub fn write_batch(&mut self, batch: &Batch) {
        let table = self.config.table.clone().unwrap_or_else(|| table_for_namespace(&batch.namespace));
        let rows = self.records.entry(table).or_default();
        for (sequence, index, line) in records(batch) {
            rows.sequences.push(sequence as i64);
            rows.indexes.push(index as i32);
            rows.lines.push(String::from_utf8_lossy(line).into_owned());
        }
    }

    pub fn write_dead_letter(&mut self, line: &[u8]) {
        self.dead_letters.push(String::from_utf8_lossy(line.trim_ascii_end()).into_owned());
    }

    /// Commits what is held in one transaction, retrying transient failures.
    pub fn flush(&mut self) -> io::Result<()> {
        retry::flush(self)
    }
}

impl Remote for PostgresSink {
    const KIND: &'static str = "PostgreSQL";

    fn shown(&self) -> &str {
        &self.config.shown
    }

    fn disconnect(&mut self) {
        self.client = None;
    }

    fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.dead_letters.is_empty()
    }

    fn clear(&mut self) {
        self.records.clear();
        self.dead_letters.clear();
    }

    /// Everything held, in one transaction. A dead-letter sink makes its table at the first
    /// connection, so it can be queried before the first dead letter.
    async fn deliver(&mut self) -> Result<(), Failure> {
        if self.client.is_none() {
            self.client = Some(connect(&self.config).await?);
        }
        let Self { config, role, pipeline, client, ready, records, dead_letters } = self;
        let fail = |err: tokio_postgres::Error| classify(&config.shown, &err);
        let client = client.as_mut().expect("connected above");
        let deadletter_table = config.table.clone().unwrap_or_else(|| DEADLETTER_TABLE.to_owned());
        let tables = records.keys().map(|table| (table, false));
        let dead = *role == Role::DeadLetters;
        for (table, dead) in tables.chain(dead.then_some((&deadletter_table, true))) {
            if !ready.contains(table) {
                let table_sql = qualified(&config.schema, table);
                let ddl = if dead { deadletter_ddl(&table_sql) } else { records_ddl(&table_sql) };
                client.batch_execute(&ddl).await.map_err(fail)?;
                ready.insert(table.clone());
            }
        }
        let transaction = client.transaction().await.map_err(fail)?;
        for (table, rows) in records.iter() {
            let insert = records_insert(&qualified(&config.schema, table));
            transaction
                .execute(&insert, &[&*pipeline, &rows.sequences, &rows.indexes, &rows.lines])
                .await
                .map_err(fail)?;
        }
        if !dead_letters.is_empty() {
            let insert = deadletter_insert(&qualified(&config.schema, &deadletter_table));
            transaction.execute(&insert, &[&*pipeline, &*dead_letters]).await.map_err(fail)?;
        }
        transaction.commit().await.map_err(fail)
    }
}

async fn connect(config: &Target) -> Result<Client, Failure> {
    let fail = |err: tokio_postgres::Error| classify(&config.shown, &err);
    let (client, connection) = config.connect.connect(NoTls).await.map_err(fail)?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the next query says why.
        let _ = connection.await;
    });
    if let Some(schema) = &config.schema {
        client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema))).await.map_err(fail)?;
    }
    Ok(client)
}

/// A namespace as a table name: lower case, `_` for anything but letters and digits, at
/// most 63 bytes (PostgreSQL's limit), never starting with a digit.
pub fn table_for_namespace(namespace: &str) -> String {
    let mut name: String =
        namespace.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "t_");
    }
    name.truncate(63);
    name
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn qualified(schema: &Option<String>, table: &str) -> String {
    match schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(table)),
        None => quote(table),
    }
}

fn records_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            pipeline text NOT NULL,
            sequence bigint NOT NULL,
            record_index integer NOT NULL,
            key text,
            value jsonb NOT NULL,
            url text,
            connection_id bigint,
            received_at timestamptz,
            kind text,
            PRIMARY KEY (pipeline, sequence, record_index))"
    )
}

/// The record lines go as one text array and are taken apart by the server: one statement
/// per table and flush, whatever the number of records. Casting the array to `jsonb[]`
/// parses each line once (a `line::jsonb` per column would parse it once per column).
fn records_insert(table: &str) -> String {
    format!(
        "INSERT INTO {table} (pipeline, sequence, record_index, key, value, url, connection_id, received_at, kind)
         SELECT $1, s, i, r->>'key', COALESCE(r->'value', r), r->'meta'->>'url',
                (r->'meta'->>'connection_id')::bigint,
                to_timestamp((r->'meta'->>'received_at_ms')::double precision / 1000), r->'meta'->>'kind'
         FROM unnest($2::bigint[], $3::integer[], $4::text[]::jsonb[]) AS u(s, i, r)
         ON CONFLICT DO NOTHING"
    )
}

fn deadletter_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            pipeline text NOT NULL,
            sequence bigint NOT NULL,
            reason text NOT NULL,
            url text,
            connection_id bigint,
            received_at timestamptz,
            kind text,
            size bigint,
            payload text,
            payload_base64 text,
            PRIMARY KEY (pipeline, sequence))"
    )
}

fn deadletter_insert(table: &str) -> String {
    format!(
        "INSERT INTO {table} (pipeline, sequence, reason, url, connection_id, received_at, kind, size, payload, payload_base64)
         SELECT $1, (d->>'sequence')::bigint, d->>'reason', d->>'url', (d->>'connection_id')::bigint,
                to_timestamp((d->>'received_at_ms')::double precision / 1000), d->>'kind', (d->>'size')::bigint,
                d->>'payload', d->>'payload_base64'
         FROM unnest($2::text[]::jsonb[]) AS u(d)
         ON CONFLICT DO NOTHING"
    )
}

/// Connection trouble is worth retrying; a refused login or a bad statement is not.
fn classify(shown: &str, err: &tokio_postgres::Error) -> Failure {
    let Some(code) = err.code() else {
        return Failure::Transient(format!("{shown}: {err}"));
    };
    let detail = err.as_db_error().map_or_else(|| err.to_string(), |db| db.message().to_owned());
    let transient = code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ]
        .contains(code);
    if transient {
        return Failure::Transient(format!("{shown}: {detail}"));
    }
    let hint = match *code {
        SqlState::INVALID_PASSWORD | SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            "check the user and password in the destination url"
        }
        SqlState::INVALID_CATALOG_NAME => "create the database, or fix its name in the destination url",
        SqlState::INSUFFICIENT_PRIVILEGE => {
            "grant the user CREATE and INSERT on the schema, or name a table it may write"
        }
        _ => "the records could not be stored as they are",
    };
    Failure::Permanent(format!("PostgreSQL refused: {detail} (SQLSTATE {}); {hint}", code.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_become_safe_table_names() {
        assert_eq!(table_for_namespace("websocket.stream.Example.com"), "websocket_stream_example_com");
        assert_eq!(table_for_namespace("9lives"), "t_9lives");
        assert_eq!(table_for_namespace(""), "t_");
        assert_eq!(table_for_namespace(&"x".repeat(100)).len(), 63);
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
    }
}
