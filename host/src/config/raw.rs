//! The shape of skippr.yaml, exactly as a user writes it. Unknown fields are refused, with
//! the nearest valid name suggested.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const DEFAULT_CONFIG_FILE: &str = "skippr.yaml";

/// A whole skippr.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where messages come from.
    pub source: Option<RawSource>,
    /// The shaper component; the embedded default when absent.
    pub transform: Option<RawTransform>,
    /// What the transform instance may use.
    #[serde(default)]
    pub limits: RawLimits,
    /// When batches close.
    #[serde(default)]
    pub batch: RawBatch,
    /// Where records go.
    pub destination: Option<RawSink>,
    /// Where rejected frames go, with their reason; stderr when absent.
    pub deadletter: Option<RawSink>,
    /// Where accepted frames wait for the destination: on disk (the default, crash-safe) or
    /// in memory.
    #[serde(default)]
    pub buffer: RawBuffer,
    /// When the transform traps or breaks a limit: `stop` the pipeline, or `restart` the
    /// transform (a fresh instance, the connection kept).
    #[serde(default = "default_on_transform_error")]
    pub on_transform_error: String,
}

/// The `source:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Always `websocket` for this connector.
    pub kind: String,
    /// WebSocket URL, ws:// or wss://.
    pub url: String,
    /// Additional request headers sent on the handshake.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `stream` (run until stopped) or `batch` (drain, then exit once idle).
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Batch mode: exit once no message arrived for this long.
    #[serde(default = "default_idle_timeout_seconds")]
    pub idle_timeout_seconds: f64,
    /// How text frames are read: json, text or raw.
    #[serde(default = "default_format")]
    pub format: String,
    /// Overrides the default namespace `websocket.{url_host}`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Text messages sent after every (re)connect, such as subscriptions.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// How often to send a WebSocket ping; 0 turns pings off.
    #[serde(default = "default_ping_interval_seconds")]
    pub ping_interval_seconds: f64,
    /// How long to wait for a pong (or any frame) after a ping before reconnecting.
    #[serde(default = "default_pong_timeout_seconds")]
    pub pong_timeout_seconds: f64,
    /// How long one connection attempt (TCP, proxy, TLS, handshake) may take.
    #[serde(default = "default_connect_timeout_seconds")]
    pub connect_timeout_seconds: f64,
    /// Backoff between reconnect attempts.
    #[serde(default)]
    pub reconnect: RawReconnect,
    /// A message larger than this is dead-lettered with its size.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// An application-level heartbeat message sent on a timer.
    #[serde(default)]
    pub heartbeat: Option<RawHeartbeat>,
    /// HTTP proxy for an HTTP CONNECT tunnel, e.g. `http://user:pass@proxy:3128`.
    #[serde(default)]
    pub proxy: Option<String>,
    /// TLS settings for wss://.
    #[serde(default)]
    pub tls: RawTls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReconnect {
    /// The first backoff delay.
    pub initial_ms: u64,
    /// The longest backoff delay.
    pub max_ms: u64,
}

impl Default for RawReconnect {
    fn default() -> Self {
        Self { initial_ms: 500, max_ms: 30_000 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    /// The text message to send.
    pub message: String,
    /// How often to send it.
    pub interval_seconds: f64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    /// Extra PEM root certificates to trust, beside the built-in web roots.
    pub ca_file: Option<String>,
    /// PEM client certificate chain, for servers that require one.
    pub client_cert_file: Option<String>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<String>,
    /// The name to verify the server's certificate against, instead of the URL host.
    pub server_name: Option<String>,
    /// Accept any server certificate. Insecure: for local testing only.
    pub insecure_skip_verify: bool,
}

/// The `transform:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransform {
    /// A WebAssembly component implementing skippr:connector@0.1.0.
    pub path: Option<String>,
    /// The transform's own options, passed to its `init` as JSON.
    #[serde(default)]
    pub options: Option<serde_yaml_ng::Value>,
}

/// The `limits:` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Memory cap of the transform instance.
    pub memory_mb: Option<u64>,
    /// CPU budget of one call into the transform.
    pub cpu_ms_per_call: Option<u64>,
}

/// The `batch:` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawBatch {
    pub max_records: Option<u32>,
    pub max_bytes: Option<u32>,
    pub max_age_ms: Option<u64>,
}

/// The `buffer:` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawBuffer {
    /// disk or memory.
    pub kind: Option<String>,
    /// For `disk`: the folder of the log, one per pipeline.
    pub path: Option<String>,
    /// Buffered bytes at which the source stops reading the socket.
    pub max_bytes: Option<u64>,
    /// The longest wait before frames are made durable (one fsync per interval).
    pub commit_interval_ms: Option<u64>,
}

/// A `destination:` or `deadletter:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// stdout, stderr, file, postgres or nats.
    pub kind: String,
    /// For `file`: the JSON Lines file to append to.
    #[serde(default)]
    pub path: Option<String>,
    /// For `postgres`: `postgres://user:password@host:port/database`; for `nats`:
    /// `nats://[user:password@]host:port`.
    #[serde(default)]
    pub url: Option<String>,
    /// For `postgres`: the table (default: one per namespace; `skippr_deadletters` for dead
    /// letters) and its schema (default: the search path's).
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    /// For `nats`: the subject (default: the namespace), the JetStream stream to create if
    /// missing, and a `.creds` file.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub credentials: Option<String>,
}

fn default_on_transform_error() -> String {
    "stop".into()
}
fn default_mode() -> String {
    "stream".into()
}
fn default_format() -> String {
    "json".into()
}
const fn default_idle_timeout_seconds() -> f64 {
    5.0
}
const fn default_ping_interval_seconds() -> f64 {
    30.0
}
const fn default_pong_timeout_seconds() -> f64 {
    10.0
}
const fn default_connect_timeout_seconds() -> f64 {
    10.0
}
const fn default_max_message_bytes() -> u64 {
    16 << 20
}

/// Parses skippr.yaml text; a shape error says where (line and column) and, for an
/// unknown field, which valid name was probably meant.
pub fn parse(text: &str) -> Result<RawConfig, String> {
    // An empty file is an empty mapping, so its missing sections are reported one by one.
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_yaml_ng::from_str(text).map_err(|err| {
        let message = err.to_string();
        match suggest_field(&message) {
            Some(name) => format!("{message} (did you mean `{name}`?)"),
            None => message,
        }
    })
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" picks the closest name.
fn suggest_field(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    rest.split('`')
        .skip(1)
        .step_by(2)
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= candidate.len().max(2) / 2)
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_example_parses() {
        let raw = parse(
            "source:\n  kind: websocket\n  url: \"ws://localhost:8080/stream\"\n  headers:\n    Authorization: ${WEBSOCKET_AUTH_HEADER}\n",
        )
        .unwrap();
        let source = raw.source.unwrap();
        assert_eq!(source.url, "ws://localhost:8080/stream");
        assert_eq!(source.headers["Authorization"], "${WEBSOCKET_AUTH_HEADER}");
        assert_eq!(source.mode, "stream");
        assert_eq!(source.ping_interval_seconds, 30.0);
    }

    #[test]
    fn unknown_fields_name_the_nearest_valid_one_and_the_place() {
        let err = parse("source:\n  kind: websocket\n  url: ws://h\n  ping_interval_secs: 5\n").unwrap_err();
        assert!(err.contains("unknown field `ping_interval_secs`"), "{err}");
        assert!(err.contains("line 4 column 3"), "{err}");
        assert!(err.ends_with("(did you mean `ping_interval_seconds`?)"), "{err}");
    }

    #[test]
    fn far_off_names_get_no_suggestion() {
        let err = parse("zebra: 1\n").unwrap_err();
        assert!(err.contains("unknown field `zebra`"), "{err}");
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn bad_yaml_says_where() {
        let err = parse("source:\n  kind: [websocket\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("url", "urll"), 1);
        assert_eq!(edit_distance("kind", "mode"), 4);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
