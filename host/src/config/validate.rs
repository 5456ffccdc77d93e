//! Turns a raw skippr.yaml into a typed pipeline config, resolving `${VAR}`s, and
//! reports every problem at once rather than one per run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use url::Url;

use super::env::EnvFiles;
use super::raw::{self, RawConfig, RawSink, RawSource};
use crate::redact::{looks_secret, redact_url};
use crate::runtime::{BatchLimits, Format, InstanceLimits, Mode};

/// Headers the handshake sets itself; a user value would break it.
const HANDSHAKE_HEADERS: [&str; 5] = ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"];

/// Everything wrong with a config file, each problem on its own line.
#[derive(Debug, thiserror::Error)]
#[error("{path} is not valid:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub path: String,
    pub problems: Vec<String>,
}

/// What the operator allows every tenant: defaults for limits a config leaves out, and
/// ceilings no config may go over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    pub defaults: InstanceLimits,
    pub ceilings: InstanceLimits,
    pub max_message_bytes: u64,
}

impl Default for LimitPolicy {
    fn default() -> Self {
        let defaults = InstanceLimits::default();
        let ceilings = InstanceLimits { memory_bytes: 4096 << 20, cpu_ms_per_call: 60_000, ..defaults };
        Self { defaults, ceilings, max_message_bytes: 1 << 30 }
    }
}

/// What happens when a transform traps, runs out of budget or breaks its output rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTransformError {
    /// Stop the pipeline and report it.
    Stop,
    /// Start a fresh instance and go on; the connection stays open.
    Restart,
}

/// A validated pipeline: one source, its transform, and where its output goes.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Names the pipeline in logs and errors (the config file's stem).
    pub name: String,
    pub source: SourceConfig,
    pub transform: TransformConfig,
    pub on_transform_error: OnTransformError,
    pub limits: InstanceLimits,
    pub batch: BatchLimits,
    pub destination: DestinationConfig,
    pub deadletter: DestinationConfig,
    pub buffer: BufferConfig,
}

/// Where accepted frames wait for the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferConfig {
    pub kind: BufferKind,
    /// Buffered bytes at which the source stops reading.
    pub max_bytes: u64,
    /// The longest wait before frames are durable.
    pub commit_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BufferKind {
    /// A log in this folder: accepted frames survive a crash.
    Disk(PathBuf),
    /// Best effort: frames in flight are lost with the process.
    Memory,
}

impl BufferConfig {
    pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
    pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(50);

    /// The in-memory buffer `skippr demo` uses.
    pub fn memory() -> Self {
        Self {
            kind: BufferKind::Memory,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            commit_interval: Self::DEFAULT_COMMIT_INTERVAL,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub url: Url,
    /// The URL as logs, errors and records show it.
    pub redacted_url: String,
    /// The URL's host, empty when it has none.
    pub host: String,
    pub headers: Vec<Header>,
    pub mode: Mode,
    pub idle_timeout: Duration,
    pub format: Format,
    pub namespace: Option<String>,
    pub subscribe: Vec<String>,
    /// `None` when pings are off.
    pub ping_interval: Option<Duration>,
    pub pong_timeout: Duration,
    pub connect_timeout: Duration,
    pub reconnect: ReconnectConfig,
    pub max_message_bytes: usize,
    pub heartbeat: Option<(String, Duration)>,
    pub proxy: Option<ProxyConfig>,
    pub tls: TlsConfig,
}

/// A handshake header; `secret` values are never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret { crate::redact::redact_value(&self.value) } else { self.value.clone() };
        write!(f, "{}: {value}", self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectConfig {
    pub initial: Duration,
    pub max: Duration,
}

/// An HTTP proxy reached with CONNECT.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub host: String,
    pub port: u16,
    /// `Basic …` credentials from the proxy URL.
    pub authorization: Option<String>,
    /// The proxy URL as logs show it.
    pub redacted: String,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransformConfig {
    /// `None` means the embedded default shaper.
    pub path: Option<PathBuf>,
    /// The transform's options as a JSON object.
    pub options_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
    Stderr,
    File(PathBuf),
    Postgres(PostgresConfig),
    Nats(NatsConfig),
}

/// A NATS JetStream destination; the URL may hold a password, so only `shown` is printed.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub url: String,
    pub shown: String,
    pub subject: Option<String>,
    pub stream: Option<String>,
    pub credentials: Option<PathBuf>,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} subject={:?} stream={:?}", self.shown, self.subject, self.stream)
    }
}

/// A PostgreSQL destination; the URL may hold a password, so only `shown` is ever printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    pub url: String,
    pub shown: String,
    pub table: Option<String>,
    pub schema: Option<String>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} table={:?} schema={:?}", self.shown, self.table, self.schema)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationConfig {
    pub kind: SinkKind,
}

/// Reads, resolves and validates a config file under the operator's limit policy.
pub fn load(path: &Path, policy: &LimitPolicy) -> Result<PipelineConfig, ConfigError> {
    let shown = path.display().to_string();
    let fail = |problem: String| ConfigError { path: shown.clone(), problems: vec![problem] };
    let text = std::fs::read_to_string(path).map_err(|err| {
        let hint = if err.kind() == std::io::ErrorKind::NotFound { " (create one with `skippr init`)" } else { "" };
        fail(format!("cannot read it: {err}{hint}"))
    })?;
    let raw = raw::parse(&text).map_err(fail)?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let env = EnvFiles::load(&dir).map_err(fail)?;
    let name = path.file_stem().map_or_else(|| "pipeline".to_owned(), |stem| stem.to_string_lossy().into_owned());
    validate(&raw, &name, &dir, &env, policy).map_err(|problems| ConfigError { path: shown, problems })
}

/// Checks a parsed config that has no file of its own (relative paths are relative to the
/// current folder).
pub fn validate_raw(raw: &RawConfig, name: &str, env: &EnvFiles) -> Result<PipelineConfig, Vec<String>> {
    validate(raw, name, Path::new(""), env, &LimitPolicy::default())
}

/// Checks a parsed config; returns every problem found.
fn validate(
    raw: &RawConfig,
    name: &str,
    dir: &Path,
    env: &EnvFiles,
    policy: &LimitPolicy,
) -> Result<PipelineConfig, Vec<String>> {
    let mut problems = Problems { dir, env, policy, list: Vec::new() };
    let source = match &raw.source {
        Some(source) => problems.source(source),
        None => {
            problems.push("source: missing; add one with `skippr connect source websocket --url …`".into());
            None
        }
    };
    let transform = problems.transform(raw);
    let on_transform_error = match raw.on_transform_error.as_str() {
        "stop" => OnTransformError::Stop,
        "restart" => OnTransformError::Restart,
        other => {
            problems.push(format!("on_transform_error: `{other}` is not a policy; use `stop` or `restart`"));
            OnTransformError::Stop
        }
    };
    let limits = problems.limits(raw);
    let batch = problems.batch(raw);
    let destination = match &raw.destination {
        Some(sink) => problems.sink("destination", sink),
        None => Some(DestinationConfig { kind: SinkKind::Stdout }),
    };
    let deadletter = match &raw.deadletter {
        Some(sink) => problems.sink("deadletter", sink),
        None => Some(DestinationConfig { kind: SinkKind::Stderr }),
    };
    let buffer = problems.buffer(raw, name);
    if let (Some(source), Some(buffer)) = (&source, &buffer)
        && source.max_message_bytes as u64 > buffer.max_bytes
    {
        problems.push(format!(
            "source.max_message_bytes ({}) is over buffer.max_bytes ({}): a message that large could never be buffered",
            source.max_message_bytes, buffer.max_bytes
        ));
    }
    match (source, transform, destination, deadletter, buffer) {
        (Some(source), Some(transform), Some(destination), Some(deadletter), Some(buffer))
            if problems.list.is_empty() =>
        {
            Ok(PipelineConfig {
                name: name.to_owned(),
                source,
                transform,
                on_transform_error,
                limits,
                batch,
                destination,
                deadletter,
                buffer,
            })
        }
        _ => Err(problems.list),
    }
}

struct Problems<'a> {
    dir: &'a Path,
    env: &'a EnvFiles,
    policy: &'a LimitPolicy,
    list: Vec<String>,
}

impl Problems<'_> {
    fn push(&mut self, problem: String) {
        self.list.push(problem);
    }

    /// Resolves `${VAR}`s in a field; records a problem naming the field if it cannot.
    fn resolve(&mut self, field: &str, text: &str) -> Option<(String, bool)> {
        match self.env.resolve(text) {
            Ok(resolved) => Some((resolved.value, resolved.from_env)),
            Err(err) => {
                self.push(format!("{field}: {err}"));
                None
            }
        }
    }

    fn path(&mut self, field: &str, text: &str) -> Option<PathBuf> {
        let (value, _) = self.resolve(field, text)?;
        Some(self.dir.join(value))
    }

    fn seconds(&mut self, field: &str, seconds: f64, allow_zero: bool) -> Option<Duration> {
        match Duration::try_from_secs_f64(seconds) {
            Ok(duration) if allow_zero || !duration.is_zero() => Some(duration),
            _ => {
                let bound = if allow_zero { "0 or more" } else { "more than 0" };
                self.push(format!("{field}: {seconds} is not a number of seconds {bound}"));
                None
            }
        }
    }

    fn source(&mut self, raw: &RawSource) -> Option<SourceConfig> {
        if raw.kind != "websocket" {
            self.push(format!("source.kind: `{}` is not supported here; this connector is `websocket`", raw.kind));
        }
        let url = self.url(&raw.url);
        let headers = self.headers(raw);
        let mode = match raw.mode.as_str() {
            "stream" => Some(Mode::Stream),
            "batch" => Some(Mode::Batch),
            other => {
                self.push(format!("source.mode: `{other}` is not a mode; use `stream` or `batch`"));
                None
            }
        };
        let format = match raw.format.as_str() {
            "json" => Some(Format::Json),
            "text" => Some(Format::Text),
            "raw" => Some(Format::Raw),
            other => {
                self.push(format!("source.format: `{other}` is not a format; use `json`, `text` or `raw`"));
                None
            }
        };
        let subscribe: Option<Vec<String>> = raw
            .subscribe
            .iter()
            .enumerate()
            .map(|(i, message)| self.resolve(&format!("source.subscribe[{i}]"), message).map(|(value, _)| value))
            .collect();
        let idle_timeout = self.seconds("source.idle_timeout_seconds", raw.idle_timeout_seconds, false);
        let ping = self.seconds("source.ping_interval_seconds", raw.ping_interval_seconds, true);
        let pong_timeout = self.seconds("source.pong_timeout_seconds", raw.pong_timeout_seconds, false);
        let connect_timeout = self.seconds("source.connect_timeout_seconds", raw.connect_timeout_seconds, false);
        let heartbeat = match &raw.heartbeat {
            None => Some(None),
            Some(beat) => {
                let message = self.resolve("source.heartbeat.message", &beat.message).map(|(value, _)| value);
                let every = self.seconds("source.heartbeat.interval_seconds", beat.interval_seconds, false);
                message.zip(every).map(Some)
            }
        };
        let reconnect = self.reconnect(raw);
        let max_message_bytes = self.max_message_bytes(raw.max_message_bytes);
        let tls = self.tls(raw);
        let url = url?;
        let proxy = self.proxy(raw.proxy.as_deref(), &url)?;
        Some(SourceConfig {
            redacted_url: redact_url(&url),
            host: url.host_str().unwrap_or_default().to_owned(),
            url,
            headers: headers?,
            mode: mode?,
            idle_timeout: idle_timeout?,
            format: format?,
            namespace: raw.namespace.clone(),
            subscribe: subscribe?,
            ping_interval: ping.filter(|interval| !interval.is_zero()),
            pong_timeout: pong_timeout?,
            connect_timeout: connect_timeout?,
            reconnect: reconnect?,
            max_message_bytes: max_message_bytes?,
            heartbeat: heartbeat?,
            proxy,
            tls: tls?,
        })
    }

    fn url(&mut self, text: &str) -> Option<Url> {
        let (value, _) = self.resolve("source.url", text)?;
        match Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host_str().is_some_and(|h| !h.is_empty()) => {
                Some(url)
            }
            Ok(url) if matches!(url.scheme(), "ws" | "wss") => {
                self.push(format!("source.url: `{}` has no host", redact_url(&url)));
                None
            }
            Ok(url) => {
                let hint = match url.scheme() {
                    "http" => " (did you mean ws://?)",
                    "https" => " (did you mean wss://?)",
                    _ => "",
                };
                self.push(format!("source.url: scheme `{}` is not ws:// or wss://{hint}", url.scheme()));
                None
            }
            Err(err) => {
                self.push(format!("source.url: not a valid URL ({err}); expected e.g. wss://stream.example.com/v1"));
                None
            }
        }
    }

    fn headers(&mut self, raw: &RawSource) -> Option<Vec<Header>> {
        let mut headers = Vec::new();
        let mut ok = true;
        for (name, value) in &raw.headers {
            let field = format!("source.headers.{name}");
            let Some((value, from_env)) = self.resolve(&field, value) else {
                ok = false;
                continue;
            };
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.push(format!("{field}: `{name}` is not a valid HTTP header name"));
                ok = false;
            } else if HANDSHAKE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                self.push(format!("{field}: `{name}` is set by the WebSocket handshake itself; remove it"));
                ok = false;
            }
            if HeaderValue::from_str(&value).is_err() {
                // Never echo the value: it may be a secret.
                self.push(format!(
                    "{field}: the value is not a valid HTTP header value (control characters or line breaks)"
                ));
                ok = false;
            }
            headers.push(Header { secret: from_env || looks_secret(name), name: name.clone(), value });
        }
        ok.then_some(headers)
    }

    fn reconnect(&mut self, raw: &RawSource) -> Option<ReconnectConfig> {
        let reconnect = &raw.reconnect;
        if reconnect.initial_ms == 0 || reconnect.max_ms < reconnect.initial_ms {
            self.push(format!(
                "source.reconnect: initial_ms ({}) must be more than 0 and at most max_ms ({})",
                reconnect.initial_ms, reconnect.max_ms
            ));
            return None;
        }
        Some(ReconnectConfig {
            initial: Duration::from_millis(reconnect.initial_ms),
            max: Duration::from_millis(reconnect.max_ms),
        })
    }

    fn max_message_bytes(&mut self, bytes: u64) -> Option<usize> {
        // The packed frame list addresses payloads with u32 offsets: 1 GiB at most.
        let ceiling = self.policy.max_message_bytes.min(1 << 30);
        if bytes == 0 || bytes > ceiling {
            self.push(format!(
                "source.max_message_bytes: {bytes} must be between 1 and the operator's ceiling of {ceiling} (--max-message-bytes)"
            ));
            return None;
        }
        usize::try_from(bytes).ok()
    }

    fn tls(&mut self, raw: &RawSource) -> Option<TlsConfig> {
        let tls = &raw.tls;
        let problems_before = self.list.len();
        let ca_file = tls.ca_file.as_ref().and_then(|text| self.path("source.tls.ca_file", text));
        let client_cert_file =
            tls.client_cert_file.as_ref().and_then(|text| self.path("source.tls.client_cert_file", text));
        let client_key_file =
            tls.client_key_file.as_ref().and_then(|text| self.path("source.tls.client_key_file", text));
        if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
            self.push("source.tls: client_cert_file and client_key_file go together; set both or neither".into());
        }
        (self.list.len() == problems_before).then(|| TlsConfig {
            ca_file,
            client_cert_file,
            client_key_file,
            server_name: tls.server_name.clone(),
            insecure_skip_verify: tls.insecure_skip_verify,
        })
    }

    /// The configured proxy, else `HTTPS_PROXY` / `HTTP_PROXY` unless `NO_PROXY` covers
    /// the host. `Some(None)` is "no proxy".
    fn proxy(&mut self, configured: Option<&str>, url: &Url) -> Option<Option<ProxyConfig>> {
        let (field, text) = match configured {
            Some(text) => ("source.proxy".to_owned(), self.resolve("source.proxy", text)?.0),
            None => match proxy_from_env(url) {
                Some((name, text)) => (format!("the {name} environment variable"), text),
                None => return Some(None),
            },
        };
        if text.is_empty() {
            return Some(None);
        }
        let parsed = Url::parse(&text).ok().filter(|proxy| proxy.scheme() == "http" && proxy.host_str().is_some());
        let Some(proxy) = parsed else {
            self.push(format!("{field}: expected an http://host:port proxy URL"));
            return None;
        };
        let authorization = (!proxy.username().is_empty()).then(|| {
            use base64::Engine as _;
            let user = percent_decode(proxy.username());
            let password = percent_decode(proxy.password().unwrap_or_default());
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });
        Some(Some(ProxyConfig {
            host: proxy.host_str().unwrap_or_default().to_owned(),
            port: proxy.port_or_known_default().unwrap_or(80),
            authorization,
            redacted: redact_url(&proxy),
        }))
    }

    fn transform(&mut self, raw: &RawConfig) -> Option<TransformConfig> {
        let Some(transform) = &raw.transform else {
            return Some(TransformConfig { path: None, options_json: "{}".into() });
        };
        let path = match &transform.path {
            Some(text) => Some(self.path("transform.path", text)?),
            None => None,
        };
        let options_json = match &transform.options {
            None => "{}".to_owned(),
            Some(options) => match serde_json::to_string(options) {
                Ok(json) => json,
                Err(err) => {
                    self.push(format!("transform.options: cannot be passed as JSON: {err}"));
                    return None;
                }
            },
        };
        Some(TransformConfig { path, options_json })
    }

    fn limits(&mut self, raw: &RawConfig) -> InstanceLimits {
        let (defaults, ceilings) = (self.policy.defaults, self.policy.ceilings);
        let mut limits = defaults;
        if let Some(memory_mb) = raw.limits.memory_mb {
            let ceiling_mb = ceilings.memory_bytes >> 20;
            match usize::try_from(memory_mb).ok().filter(|mb| (1..=ceiling_mb).contains(mb)) {
                Some(mb) => limits.memory_bytes = mb << 20,
                None => self.push(format!(
                    "limits.memory_mb: {memory_mb} must be between 1 and the operator's ceiling of {ceiling_mb} (--max-memory-mb)"
                )),
            }
        }
        if let Some(cpu_ms) = raw.limits.cpu_ms_per_call {
            if cpu_ms == 0 || cpu_ms > ceilings.cpu_ms_per_call {
                self.push(format!(
                    "limits.cpu_ms_per_call: {cpu_ms} must be between 1 and the operator's ceiling of {} (--max-cpu-ms-per-call)",
                    ceilings.cpu_ms_per_call
                ));
            }
            limits.cpu_ms_per_call = cpu_ms;
        }
        limits
    }

    fn batch(&mut self, raw: &RawConfig) -> BatchLimits {
        let defaults = BatchLimits::default();
        let batch = BatchLimits {
            max_records: raw.batch.max_records.unwrap_or(defaults.max_records),
            max_bytes: raw.batch.max_bytes.unwrap_or(defaults.max_bytes),
            max_age_ms: raw.batch.max_age_ms.unwrap_or(defaults.max_age_ms),
        };
        if batch.max_records == 0 || batch.max_bytes == 0 {
            self.push("batch: max_records and max_bytes must be more than 0".into());
        }
        batch
    }

    /// Disk by default, in `.skippr/buffer/<pipeline>` beside the config file.
    fn buffer(&mut self, raw: &RawConfig, name: &str) -> Option<BufferConfig> {
        let raw = &raw.buffer;
        let max_bytes = raw.max_bytes.unwrap_or(BufferConfig::DEFAULT_MAX_BYTES);
        if max_bytes < 1 << 20 {
            self.push(format!("buffer.max_bytes: {max_bytes} is too small; use at least 1048576 (1 MiB)"));
        }
        let commit_interval = match raw.commit_interval_ms {
            None => BufferConfig::DEFAULT_COMMIT_INTERVAL,
            Some(ms @ 1..=10_000) => Duration::from_millis(ms),
            Some(ms) => {
                self.push(format!("buffer.commit_interval_ms: {ms} must be between 1 and 10000"));
                BufferConfig::DEFAULT_COMMIT_INTERVAL
            }
        };
        let kind = match (raw.kind.as_deref().unwrap_or("disk"), &raw.path) {
            ("disk", Some(path)) => BufferKind::Disk(self.path("buffer.path", path)?),
            ("disk", None) => BufferKind::Disk(self.dir.join(".skippr").join("buffer").join(name)),
            ("memory", None) => BufferKind::Memory,
            ("memory", Some(_)) => {
                self.push("buffer: kind `memory` takes no `path`".into());
                return None;
            }
            (other, _) => {
                self.push(format!("buffer.kind: `{other}` is not supported; use `disk` or `memory`"));
                return None;
            }
        };
        Some(BufferConfig { kind, max_bytes, commit_interval })
    }

    fn sink(&mut self, section: &str, raw: &RawSink) -> Option<DestinationConfig> {
        if raw.kind == "postgres" {
            return self.postgres(section, raw).map(|config| DestinationConfig { kind: SinkKind::Postgres(config) });
        }
        if raw.kind == "nats" {
            return self.nats(section, raw).map(|config| DestinationConfig { kind: SinkKind::Nats(config) });
        }
        if raw.url.is_some()
            || raw.table.is_some()
            || raw.schema.is_some()
            || raw.subject.is_some()
            || raw.stream.is_some()
        {
            self.push(format!(
                "{section}: `url`, `table`, `schema`, `subject` and `stream` are for kinds `postgres` and `nats`, not `{}`",
                raw.kind
            ));
            return None;
        }
        let kind = match (raw.kind.as_str(), &raw.path) {
            ("stdout", None) => SinkKind::Stdout,
            ("stderr", None) => SinkKind::Stderr,
            ("file", Some(path)) => SinkKind::File(self.path(&format!("{section}.path"), path)?),
            ("file", None) => {
                self.push(format!("{section}: kind `file` needs a `path`"));
                return None;
            }
            ("stdout" | "stderr", Some(_)) => {
                self.push(format!("{section}: kind `{}` takes no `path`", raw.kind));
                return None;
            }
            (other, _) => {
                self.push(format!(
                    "{section}.kind: `{other}` is not supported; use `stdout`, `stderr`, `file`, `postgres` or `nats`"
                ));
                return None;
            }
        };
        Some(DestinationConfig { kind })
    }

    fn postgres(&mut self, section: &str, raw: &RawSink) -> Option<PostgresConfig> {
        let Some(text) = &raw.url else {
            self.push(format!(
                "{section}: kind `postgres` needs a `url`, such as url: ${{DATABASE_URL}} (postgres://user:password@host:5432/database)"
            ));
            return None;
        };
        let schemes = ["postgres", "postgresql"];
        let (url, parsed) =
            self.service_url(section, text, &schemes, "postgres://…", "postgres://user:password@host:5432/database")?;
        for (field, name) in [("table", &raw.table), ("schema", &raw.schema)] {
            if let Some(name) = name.as_deref().filter(|name| !is_identifier(name)) {
                self.push(format!(
                    "{section}.{field}: `{name}` is not a plain SQL name (letters, digits and `_`, at most 63, not starting with a digit)"
                ));
            }
        }
        Some(PostgresConfig { shown: redact_url(&parsed), url, table: raw.table.clone(), schema: raw.schema.clone() })
    }

    /// A destination's `url`, `${VAR}`s resolved, with one of `schemes`: the resolved text
    /// (it may hold a password) and its parse (to show it redacted).
    fn service_url(
        &mut self,
        section: &str,
        text: &str,
        schemes: &[&str],
        expected: &str,
        example: &str,
    ) -> Option<(String, Url)> {
        let (url, _) = self.resolve(&format!("{section}.url"), text)?;
        match Url::parse(&url) {
            Ok(parsed) if schemes.contains(&parsed.scheme()) => Some((url, parsed)),
            Ok(parsed) => {
                self.push(format!("{section}.url must be {expected}, not {}://", parsed.scheme()));
                None
            }
            Err(err) => {
                self.push(format!("{section}.url is not a URL ({err}); use {example}"));
                None
            }
        }
    }

    fn nats(&mut self, section: &str, raw: &RawSink) -> Option<NatsConfig> {
        let text = raw.url.as_deref().unwrap_or("nats://127.0.0.1:4222");
        let (url, parsed) =
            self.service_url(section, text, &["nats", "tls"], "nats://… (or tls://…)", "nats://host:4222")?;
        if let Some(subject) = raw
            .subject
            .as_deref()
            .filter(|s| s.is_empty() || s.contains(['*', '>', ' ']) || s.split('.').any(str::is_empty))
        {
            self.push(format!("{section}.subject: `{subject}` is not a subject to publish to (dot-separated tokens, no `*`, `>` or spaces)"));
        }
        if let Some(stream) =
            raw.stream.as_deref().filter(|s| s.is_empty() || s.contains(['.', '*', '>', ' ', '/', '\\']))
        {
            self.push(format!("{section}.stream: `{stream}` is not a stream name (no `.`, `*`, `>`, `/` or spaces)"));
        }
        let credentials = match &raw.credentials {
            Some(path) => Some(self.path(&format!("{section}.credentials"), path)?),
            None => None,
        };
        if raw.table.is_some() || raw.schema.is_some() || raw.path.is_some() {
            self.push(format!("{section}: kind `nats` takes `url`, `subject`, `stream` and `credentials`"));
        }
        Some(NatsConfig {
            shown: redact_url(&parsed),
            url,
            subject: raw.subject.clone(),
            stream: raw.stream.clone(),
            credentials,
        })
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

fn proxy_from_env(url: &Url) -> Option<(&'static str, String)> {
    let names: &[&'static str] =
        if url.scheme() == "wss" { &["HTTPS_PROXY", "https_proxy"] } else { &["HTTP_PROXY", "http_proxy"] };
    let (name, value) = names.iter().find_map(|name| std::env::var(name).ok().map(|value| (*name, value)))?;
    let no_proxy = std::env::var("NO_PROXY").or_else(|_| std::env::var("no_proxy")).unwrap_or_default();
    let host = url.host_str().unwrap_or_default();
    (!no_proxy_covers(&no_proxy, host)).then_some((name, value))
}

/// `NO_PROXY` is a comma list of hosts, `.suffix`es, or `*`.
fn no_proxy_covers(no_proxy: &str, host: &str) -> bool {
    no_proxy.split(',').map(str::trim).filter(|entry| !entry.is_empty()).any(|entry| {
        let entry = entry.split(':').next().unwrap_or(entry);
        entry == "*"
            || host == entry.trim_start_matches('.')
            || host.ends_with(&format!(".{}", entry.trim_start_matches('.')))
    })
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<PipelineConfig, Vec<String>> {
        let raw = raw::parse(yaml).unwrap();
        validate(&raw, "test", Path::new("/cfg"), &EnvFiles::default(), &LimitPolicy::default())
    }

    #[test]
    fn a_minimal_config_gets_sane_defaults() {
        let config = check("source:\n  kind: websocket\n  url: wss://stream.example.com/v1\n").unwrap();
        let source = &config.source;
        assert_eq!(source.host, "stream.example.com");
        assert_eq!(source.mode, Mode::Stream);
        assert_eq!(source.ping_interval, Some(Duration::from_secs(30)));
        assert_eq!(source.max_message_bytes, 16 << 20);
        assert_eq!(config.destination.kind, SinkKind::Stdout);
        assert_eq!(config.deadletter.kind, SinkKind::Stderr);
        assert_eq!(config.transform, TransformConfig { path: None, options_json: "{}".into() });
    }

    #[test]
    fn the_buffer_is_on_disk_beside_the_config_unless_told_otherwise() {
        let config = check("source: {kind: websocket, url: 'ws://h'}\n").unwrap();
        assert_eq!(config.buffer.kind, BufferKind::Disk("/cfg/.skippr/buffer/test".into()));
        assert_eq!(config.buffer.commit_interval, Duration::from_millis(50));
        let config = check("source: {kind: websocket, url: 'ws://h'}\nbuffer: {kind: memory}\n").unwrap();
        assert_eq!(config.buffer.kind, BufferKind::Memory);
        let problems = check(
            "source: {kind: websocket, url: 'ws://h', max_message_bytes: 5000000}\nbuffer: {kind: tape, max_bytes: 4000000, commit_interval_ms: 0}\n",
        )
        .unwrap_err()
        .join("\n");
        for expected in [
            "buffer.kind: `tape` is not supported; use `disk` or `memory`",
            "buffer.commit_interval_ms: 0 must be between 1 and 10000",
        ] {
            assert!(problems.contains(expected), "{expected}\n{problems}");
        }
        let problems = check("source: {kind: websocket, url: 'ws://h'}\nbuffer: {max_bytes: 4000000}\n").unwrap_err();
        assert!(
            problems[0].contains("source.max_message_bytes (16777216) is over buffer.max_bytes (4000000)"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_postgres_destination_hides_its_password_and_checks_its_names() {
        let yaml = "source: {kind: websocket, url: 'ws://h'}\ndestination: {kind: postgres, url: 'postgres://u:s3cret@db:5432/x', table: trades}\n";
        let SinkKind::Postgres(postgres) = check(yaml).unwrap().destination.kind else { panic!("postgres") };
        assert_eq!(postgres.shown, "postgres://u:***@db:5432/x");
        assert!(!format!("{postgres:?}").contains("s3cret"));
        assert_eq!(postgres.table.as_deref(), Some("trades"));
        let problems = check(
            "source: {kind: websocket, url: 'ws://h'}\ndestination: {kind: postgres, url: 'mysql://h/x', table: 'a b'}\ndeadletter: {kind: postgres}\n",
        )
        .unwrap_err()
        .join("\n");
        for expected in
            ["destination.url must be postgres://…, not mysql://", "deadletter: kind `postgres` needs a `url`"]
        {
            assert!(problems.contains(expected), "{expected}\n{problems}");
        }
        let problems = check(
            "source: {kind: websocket, url: 'ws://h'}\ndestination: {kind: postgres, url: 'postgres://h/x', schema: '1x'}\n",
        )
        .unwrap_err();
        assert!(problems[0].contains("destination.schema: `1x` is not a plain SQL name"), "{problems:?}");
    }

    #[test]
    fn a_nats_destination_checks_its_subject_and_stream() {
        let yaml = "source: {kind: websocket, url: 'ws://h'}\ndestination: {kind: nats, url: 'nats://u:pw@n:4222', subject: a.b, stream: S}\n";
        let SinkKind::Nats(nats) = check(yaml).unwrap().destination.kind else { panic!("nats") };
        assert_eq!((nats.shown.as_str(), nats.subject.as_deref()), ("nats://u:***@n:4222", Some("a.b")));
        let problems = check(
            "source: {kind: websocket, url: 'ws://h'}\ndestination: {kind: nats, subject: 'a.*', stream: 'x.y', table: t}\n",
        )
        .unwrap_err()
        .join("\n");
        for expected in [
            "destination.subject: `a.*` is not a subject to publish to",
            "destination.stream: `x.y` is not a stream name",
            "kind `nats` takes `url`, `subject`, `stream` and `credentials`",
        ] {
            assert!(problems.contains(expected), "{expected}\n{problems}");
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let problems = check(
            "source:\n  kind: kafka\n  url: https://x.example\n  mode: forever\n  headers: {Upgrade: x}\n  ping_interval_seconds: -1\ndestination: {kind: file}\n",
        )
        .unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "source.kind: `kafka` is not supported",
            "source.url: scheme `https` is not ws:// or wss:// (did you mean wss://?)",
            "source.mode: `forever` is not a mode",
            "source.headers.Upgrade: `Upgrade` is set by the WebSocket handshake itself",
            "source.ping_interval_seconds: -1 is not a number of seconds",
            "destination: kind `file` needs a `path`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 6, "{all}");
    }

    #[test]
    fn secret_headers_are_marked_and_never_echoed() {
        let config =
            check("source:\n  kind: websocket\n  url: ws://h\n  headers: {Authorization: Bearer abc, Accept: x}\n")
                .unwrap();
        let headers = &config.source.headers;
        assert!(headers.iter().any(|h| h.name == "Authorization" && h.secret));
        assert!(headers.iter().any(|h| h.name == "Accept" && !h.secret));
        assert_eq!(format!("{headers:?}"), "[Accept: x, Authorization: Bearer ***]");
        let problems =
            check("source:\n  kind: websocket\n  url: ws://h\n  headers: {X-Key: \"bad\\nvalue\"}\n").unwrap_err();
        assert!(problems[0].contains("not a valid HTTP header value") && !problems[0].contains("bad"), "{problems:?}");
    }

    #[test]
    fn an_unset_variable_names_the_field() {
        let problems = check(
            "source:\n  kind: websocket\n  url: ws://h\n  headers: {Authorization: \"${SKIPPR_TEST_UNSET_TOKEN}\"}\n",
        )
        .unwrap_err();
        assert!(
            problems[0].starts_with("source.headers.Authorization: ${SKIPPR_TEST_UNSET_TOKEN} is not set"),
            "{problems:?}"
        );
    }

    #[test]
    fn proxy_credentials_become_basic_auth_and_are_redacted() {
        let config =
            check("source:\n  kind: websocket\n  url: ws://h\n  proxy: http://me:p%40ss@proxy.local:3128\n").unwrap();
        let proxy = config.source.proxy.unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.local", 3128));
        assert_eq!(proxy.authorization.as_deref(), Some("Basic bWU6cEBzcw=="));
        assert_eq!(format!("{proxy:?}"), "http://me:***@proxy.local:3128/");
    }

    #[test]
    fn no_proxy_matches_hosts_and_suffixes() {
        assert!(no_proxy_covers("localhost,.internal", "localhost"));
        assert!(no_proxy_covers("localhost,.internal", "feed.internal"));
        assert!(no_proxy_covers("*", "anything"));
        assert!(!no_proxy_covers("localhost", "example.com"));
        assert!(!no_proxy_covers("", "example.com"));
    }

    #[test]
    fn a_tenant_cannot_raise_its_limits_over_the_ceiling() {
        let raw =
            raw::parse("source: {kind: websocket, url: 'ws://h'}\nlimits: {memory_mb: 512, cpu_ms_per_call: 100}\n")
                .unwrap();
        let mut policy = LimitPolicy::default();
        policy.ceilings.memory_bytes = 256 << 20;
        let problems = validate(&raw, "t", Path::new(""), &EnvFiles::default(), &policy).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("the operator's ceiling of 256 (--max-memory-mb)"), "{problems:?}");
        policy.ceilings.memory_bytes = 512 << 20;
        let config = validate(&raw, "t", Path::new(""), &EnvFiles::default(), &policy).unwrap();
        assert_eq!((config.limits.memory_bytes, config.limits.cpu_ms_per_call), (512 << 20, 100));
    }

    #[test]
    fn the_operators_defaults_fill_in_missing_limits() {
        let raw = raw::parse("source: {kind: websocket, url: 'ws://h'}\non_transform_error: restart\n").unwrap();
        let mut policy = LimitPolicy::default();
        policy.defaults.cpu_ms_per_call = 42;
        let config = validate(&raw, "t", Path::new(""), &EnvFiles::default(), &policy).unwrap();
        assert_eq!(config.limits.cpu_ms_per_call, 42);
        assert_eq!(config.on_transform_error, OnTransformError::Restart);
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let config = check(
            "source: {kind: websocket, url: 'ws://h'}\ntransform: {path: t.wasm, options: {a: 1}}\ndestination: {kind: file, path: out/r.jsonl}\n",
        )
        .unwrap();
        assert_eq!(config.transform.path, Some(PathBuf::from("/cfg/t.wasm")));
        assert_eq!(config.transform.options_json, r#"{"a":1}"#);
        assert_eq!(config.destination.kind, SinkKind::File(PathBuf::from("/cfg/out/r.jsonl")));
    }
}
