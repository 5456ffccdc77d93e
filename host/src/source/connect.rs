//! One connection attempt: TCP (through a proxy if set), TLS for wss://, then the
//! WebSocket handshake with the configured headers. Failures say which step failed and
//! what the server answered.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Error as WsError};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use super::proxy;
use super::stream::MaybeTls;
use crate::config::SourceConfig;

pub type Socket = WebSocketStream<MaybeTls>;

/// How much of an error response body is worth showing.
const BODY_PREVIEW_BYTES: usize = 200;
const HANDSHAKE_HINT: &str =
    "hint: verify the URL, any required headers, and whether the endpoint expects ws:// or wss://";

/// Why a connection attempt failed, by step.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach {target}: {reason}")]
    Network { target: String, reason: String },
    #[error("proxy {proxy}: {reason}")]
    Proxy { proxy: String, reason: String },
    #[error("TLS handshake with {host} failed: {reason} ({HANDSHAKE_HINT})")]
    Tls { host: String, reason: String },
    #[error("handshake failed: the server answered {status}{} ({HANDSHAKE_HINT})", body_suffix(.body))]
    Refused { status: String, body: String },
    #[error("handshake failed: {reason} ({HANDSHAKE_HINT})")]
    Handshake { reason: String },
    #[error("no connection within {seconds} s (source.connect_timeout_seconds)")]
    Timeout { seconds: f64 },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(": {body}") }
}

/// Connects once, within the configured timeout.
pub async fn connect(config: &SourceConfig, tls: Option<&Arc<ClientConfig>>) -> Result<Socket, ConnectError> {
    tokio::time::timeout(config.connect_timeout, connect_unbounded(config, tls))
        .await
        .unwrap_or(Err(ConnectError::Timeout { seconds: config.connect_timeout.as_secs_f64() }))
}

async fn connect_unbounded(config: &SourceConfig, tls: Option<&Arc<ClientConfig>>) -> Result<Socket, ConnectError> {
    let url = &config.url;
    let host = url.host_str().unwrap_or_default().trim_matches(|c| c == '[' || c == ']');
    let port = url.port_or_known_default().unwrap_or(80);
    let tcp = match &config.proxy {
        None => tcp_connect(host, port).await?,
        Some(proxy_config) => {
            let shown = format!("{proxy_config:?}");
            let tcp = tcp_connect(&proxy_config.host, proxy_config.port)
                .await
                .map_err(|err| ConnectError::Proxy { proxy: shown.clone(), reason: err.to_string() })?;
            proxy::tunnel(tcp, proxy_config, host, port)
                .await
                .map_err(|reason| ConnectError::Proxy { proxy: shown, reason })?
        }
    };
    let stream = match (url.scheme(), tls) {
        ("wss", Some(tls)) => {
            let name = config.tls.server_name.as_deref().unwrap_or(host);
            let server_name = ServerName::try_from(name.to_owned())
                .map_err(|err| ConnectError::Tls { host: name.to_owned(), reason: err.to_string() })?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
            let stream = connector
                .connect(server_name, tcp)
                .await
                .map_err(|err| ConnectError::Tls { host: name.to_owned(), reason: tls_reason(&err) })?;
            MaybeTls::Tls(Box::new(stream))
        }
        _ => MaybeTls::Plain(tcp),
    };
    let request = request(config)?;
    let websocket = WebSocketConfig::default()
        .max_message_size(Some(config.max_message_bytes))
        .max_frame_size(Some(config.max_message_bytes));
    let (socket, _response) =
        client_async_with_config(request, stream, Some(websocket)).await.map_err(handshake_error)?;
    Ok(socket)
}

async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|err| ConnectError::Network { target: format!("{host}:{port}"), reason: err.to_string() })?;
    // Frames are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn request(config: &SourceConfig) -> Result<tungstenite::handshake::client::Request, ConnectError> {
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|err| ConnectError::Handshake { reason: format!("cannot build the request: {err}") })?;
    for header in &config.headers {
        // Validated when the config was loaded.
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(header.name.as_bytes()), HeaderValue::from_str(&header.value))
        else {
            return Err(ConnectError::Handshake { reason: format!("header {} is not valid HTTP", header.name) });
        };
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}

fn handshake_error(err: WsError) -> ConnectError {
    match err {
        WsError::Http(response) => {
            let status = response.status();
            let status = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
            let body = response.body().as_deref().map(preview).unwrap_or_default();
            ConnectError::Refused { status: status.trim().to_owned(), body }
        }
        WsError::Io(err) => {
            ConnectError::Handshake { reason: format!("the connection broke during the handshake: {err}") }
        }
        other => ConnectError::Handshake { reason: other.to_string() },
    }
}

/// The start of a response body, on one line, as text.
fn preview(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_PREVIEW_BYTES)];
    let text: String = String::from_utf8_lossy(cut).split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > BODY_PREVIEW_BYTES { format!("{text}…") } else { text }
}

fn tls_reason(err: &std::io::Error) -> String {
    let reason = err.get_ref().map_or_else(|| err.to_string(), ToString::to_string);
    if reason.contains("UnknownIssuer") {
        format!("{reason}: the server's certificate is not signed by a trusted root (set source.tls.ca_file?)")
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_previews_are_one_short_line() {
        assert_eq!(preview(b"missing\n  token "), "missing token");
        let long = vec![b'a'; 500];
        assert_eq!(preview(&long).chars().count(), BODY_PREVIEW_BYTES + 1);
    }

    #[test]
    fn refusals_show_status_body_and_the_hint() {
        let err = ConnectError::Refused { status: "401 Unauthorized".into(), body: "missing token".into() };
        assert_eq!(
            err.to_string(),
            format!("handshake failed: the server answered 401 Unauthorized: missing token ({HANDSHAKE_HINT})")
        );
    }
}
