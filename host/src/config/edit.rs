//! The edits `skippr init` and `skippr connect` make to skippr.yaml: one top-level section
//! is rewritten, every other line of the file (comments included) is kept as it was.
//! Secret header values go to `.env.local` (mode 0600), skippr.yaml gets a `${VAR}`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::env::{parse_dotenv, quote};
use crate::redact::{looks_secret, redact_url};

const TEMPLATE: &str = r#"# skippr.yaml: a WebSocket source, shaped by the embedded transform, delivered as JSON Lines.
# Values like ${WEBSOCKET_AUTH_HEADER} are read from the environment, then .env, then .env.local.
source:
  kind: websocket
  url: "ws://localhost:8080/stream"
  # headers:
  #   Authorization: ${WEBSOCKET_AUTH_HEADER}
  mode: stream                  # stream: run until stopped; batch: drain, exit once idle
  # idle_timeout_seconds: 5     # batch mode: exit after this long without a message
  # format: json                # json | text | raw
  # subscribe: ['{"op":"subscribe","args":["trades"]}']
  # ping_interval_seconds: 30   # 0 turns pings off
  # pong_timeout_seconds: 10
  # reconnect: {initial_ms: 500, max_ms: 30000}
  # max_message_bytes: 16777216 # larger messages are dead-lettered with their size
  # proxy: "http://proxy.internal:3128"
  # tls: {ca_file: ca.pem, client_cert_file: c.pem, client_key_file: k.pem}

# transform: {path: my-shaper.wasm, options: {}}  # default: the embedded shaper
# limits: {memory_mb: 64, cpu_ms_per_call: 500}
# batch: {max_records: 1000, max_bytes: 1048576, max_age_ms: 1000}
# buffer: {kind: disk, path: .skippr/buffer/skippr, max_bytes: 268435456, commit_interval_ms: 50}
#                               # accepted frames survive a crash; kind: memory skips the log

destination:
  kind: stdout                  # or: kind: file, path: out/records.jsonl
                                # or: kind: postgres, url: ${DATABASE_URL}   (a table per namespace)
                                # or: kind: nats, url: nats://localhost:4222, subject: trades, stream: TRADES

deadletter:
  kind: stderr                  # rejected frames, each with its reason and payload
"#;

/// What an edit did, for the user to read.
#[derive(Debug, Default)]
pub struct EditReport {
    pub lines: Vec<String>,
}

/// Writes a commented skippr.yaml; refuses to overwrite one.
pub fn init(path: &Path) -> Result<EditReport, String> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} already exists; edit it, or change it with `skippr connect …`", path.display())
        } else {
            format!("cannot create {}: {err}", path.display())
        }
    })?;
    file.write_all(TEMPLATE.as_bytes()).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    Ok(EditReport { lines: vec![format!("Wrote {}: edit the url, then `skippr run`.", path.display())] })
}

/// Sets the `source:` section's kind, url, headers and mode, keeping its other fields.
pub fn connect_source(
    path: &Path,
    url: &str,
    headers: &[(String, String)],
    mode: Option<&str>,
) -> Result<EditReport, String> {
    if let Some(mode) = mode.filter(|mode| !matches!(*mode, "stream" | "batch")) {
        return Err(format!("--mode `{mode}` is not a mode; use `stream` or `batch`"));
    }
    let mut report = EditReport::default();
    let env_local = path.parent().unwrap_or(Path::new("")).join(".env.local");
    let mut secrets = Vec::new();
    let url_value = if carries_credentials(url)? {
        secrets.push(("WEBSOCKET_URL".to_owned(), url.to_owned()));
        report.lines.push(format!("The URL carries credentials: stored in {} as WEBSOCKET_URL.", env_local.display()));
        "${WEBSOCKET_URL}".to_owned()
    } else {
        url.to_owned()
    };
    let mut header_map = Mapping::new();
    for (name, value) in headers {
        let value = if value.starts_with("${") || !looks_secret(name) {
            value.clone()
        } else {
            let variable = env_name_for(name);
            report.lines.push(format!(
                "{name}: its value is stored in {} as {variable}; skippr.yaml references ${{{variable}}}.",
                env_local.display()
            ));
            secrets.push((variable.clone(), value.clone()));
            format!("${{{variable}}}")
        };
        header_map.insert(Value::String(name.clone()), Value::String(value));
    }
    let text = read_or_empty(path)?;
    let mut source = match section_value(&text, "source")? {
        Some(Value::Mapping(map)) => map,
        _ => Mapping::new(),
    };
    source.insert("kind".into(), "websocket".into());
    source.insert("url".into(), Value::String(url_value));
    if !header_map.is_empty() {
        source.insert("headers".into(), Value::Mapping(header_map));
    }
    source.insert("mode".into(), Value::String(mode.unwrap_or("stream").to_owned()));
    write_section(path, &text, "source", Value::Mapping(source))?;
    if !secrets.is_empty() {
        write_env_local(&env_local, &secrets)?;
    }
    report.lines.insert(0, format!("Wrote the source section to {}.", path.display()));
    Ok(report)
}

/// Where `connect destination` / `connect deadletter` sends output.
#[derive(Debug, Clone)]
pub enum ConnectDestination {
    Stdout,
    Stderr,
    File(PathBuf),
    Postgres { url: String, table: Option<String> },
}

/// Sets the `destination:` or `deadletter:` section.
pub fn connect_destination(path: &Path, section: &str, target: &ConnectDestination) -> Result<EditReport, String> {
    let mut map = Mapping::new();
    let mut report = EditReport { lines: vec![format!("Wrote the {section} section to {}.", path.display())] };
    match target {
        ConnectDestination::Stdout => map.insert("kind".into(), "stdout".into()),
        ConnectDestination::Stderr => map.insert("kind".into(), "stderr".into()),
        ConnectDestination::File(file) => {
            map.insert("kind".into(), "file".into());
            map.insert("path".into(), Value::String(file.display().to_string()))
        }
        ConnectDestination::Postgres { url, table } => {
            map.insert("kind".into(), "postgres".into());
            let url = database_url_value(path, url, &mut report)?;
            if let Some(table) = table {
                map.insert("table".into(), Value::String(table.clone()));
            }
            map.insert("url".into(), Value::String(url))
        }
    };
    let text = read_or_empty(path)?;
    write_section(path, &text, section, Value::Mapping(map))?;
    Ok(report)
}

/// A database URL with a password is kept in .env.local as DATABASE_URL; skippr.yaml gets
/// the reference.
fn database_url_value(path: &Path, url: &str, report: &mut EditReport) -> Result<String, String> {
    if url.starts_with("${") {
        return Ok(url.to_owned());
    }
    let parsed = url::Url::parse(url).map_err(|err| format!("--url `{url}` is not a valid URL: {err}"))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(format!("--url must be postgres://…, not {}://", parsed.scheme()));
    }
    if parsed.password().is_none() {
        return Ok(url.to_owned());
    }
    let env_local = path.parent().unwrap_or(Path::new("")).join(".env.local");
    write_env_local(&env_local, &[("DATABASE_URL".to_owned(), url.to_owned())])?;
    report.lines.push(format!("The URL carries a password: stored in {} as DATABASE_URL.", env_local.display()));
    Ok("${DATABASE_URL}".to_owned())
}

/// Whether a ws/wss URL carries credentials (a password or secret-looking parameters);
/// a `${VAR}` reference is taken as it is.
fn carries_credentials(url: &str) -> Result<bool, String> {
    if url.starts_with("${") {
        return Ok(false);
    }
    let parsed = url::Url::parse(url).map_err(|err| format!("--url `{url}` is not a valid URL: {err}"))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(format!("--url must be ws:// or wss://, not {}://", parsed.scheme()));
    }
    Ok(redact_url(&parsed) != parsed.as_str())
}

/// `Authorization` is the page's `WEBSOCKET_AUTH_HEADER`; others `WEBSOCKET_<NAME>`.
fn env_name_for(header: &str) -> String {
    if header.eq_ignore_ascii_case("authorization") {
        return "WEBSOCKET_AUTH_HEADER".to_owned();
    }
    let name: String =
        header.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("WEBSOCKET_{name}")
}

fn read_or_empty(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    }
}

/// The line range of a top-level section: its key line through its last indented line.
fn section_range(lines: &[&str], key: &str) -> Option<(usize, usize)> {
    let header = format!("{key}:");
    let start = lines.iter().position(|line| line.starts_with(&header))?;
    let next = lines[start + 1..]
        .iter()
        .position(|line| line.chars().next().is_some_and(|c| !c.is_whitespace() && c != '#'))
        .map_or(lines.len(), |offset| start + 1 + offset);
    // Comments and blank lines at column 0 just before the next section belong to it.
    let mut end = next;
    while end > start + 1 && (lines[end - 1].trim().is_empty() || lines[end - 1].starts_with('#')) {
        end -= 1;
    }
    Some((start, end))
}

fn section_value(text: &str, key: &str) -> Result<Option<Value>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some((start, end)) = section_range(&lines, key) else {
        return Ok(None);
    };
    let section = lines[start..end].join("\n");
    let parsed: Mapping = serde_yaml_ng::from_str(&section)
        .map_err(|err| format!("cannot edit the `{key}` section, it is not valid YAML: {err}"))?;
    Ok(parsed.get(key).cloned())
}

fn write_section(path: &Path, text: &str, key: &str, value: Value) -> Result<(), String> {
    let mut section = Mapping::new();
    section.insert(Value::String(key.to_owned()), value);
    let rendered = serde_yaml_ng::to_string(&section).map_err(|err| format!("cannot render YAML: {err}"))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<&str> = Vec::new();
    match section_range(&lines, key) {
        Some((start, end)) => {
            out.extend(&lines[..start]);
            out.extend(rendered.lines());
            out.extend(&lines[end..]);
        }
        None => {
            out.extend(&lines);
            if !out.is_empty() {
                out.push("");
            }
            out.extend(rendered.lines());
        }
    }
    let mut updated = out.join("\n");
    updated.push('\n');
    std::fs::write(path, updated).map_err(|err| format!("cannot write {}: {err}", path.display()))
}

/// Sets variables in `.env.local`, keeping its other lines, readable by the owner only.
fn write_env_local(path: &Path, vars: &[(String, String)]) -> Result<(), String> {
    let existing = read_or_empty(path)?;
    parse_dotenv(&existing).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut lines: Vec<String> = existing
        .lines()
        .filter(|line| {
            let key = line.trim().trim_start_matches("export ").split('=').next().unwrap_or_default().trim();
            !vars.iter().any(|(name, _)| name == key)
        })
        .map(str::to_owned)
        .collect();
    lines.extend(vars.iter().map(|(name, value)| format!("{name}={}", quote(value))));
    let mut text = lines.join("\n");
    text.push('\n');
    write_private(path, text.as_bytes()).map_err(|err| format!("cannot write {}: {err}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_ends_before_the_next_top_level_key_and_its_comments() {
        let lines =
            vec!["# head", "source:", "  url: x", "  # inner", "", "# about dest", "destination:", "  kind: stdout"];
        assert_eq!(section_range(&lines, "source"), Some((1, 4)));
        assert_eq!(section_range(&lines, "destination"), Some((6, 8)));
        assert_eq!(section_range(&lines, "batch"), None);
    }

    #[test]
    fn secret_header_names_map_to_env_names() {
        assert_eq!(env_name_for("Authorization"), "WEBSOCKET_AUTH_HEADER");
        assert_eq!(env_name_for("X-Api-Key"), "WEBSOCKET_X_API_KEY");
    }

    #[test]
    fn urls_with_credentials_are_not_plain() {
        assert!(!carries_credentials("wss://h/v1?symbol=x").unwrap());
        assert!(carries_credentials("wss://h/v1?token=x").unwrap());
        assert!(carries_credentials("wss://u:p@h/v1").unwrap());
        assert!(!carries_credentials("${WEBSOCKET_URL}").unwrap());
        assert!(carries_credentials("https://h").unwrap_err().contains("ws:// or wss://"));
    }
}
