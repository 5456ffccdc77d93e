//! What a transform is given: the source it is attached to and the frames it receives.

use serde::Serialize;

use crate::record::FrameJson;

/// How a WebSocket data frame was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Text,
    Binary,
}

impl FrameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Binary => "binary",
        }
    }
}

/// How the user asked text frames to be read (`source.format`); a transform may ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Text,
    Raw,
}

/// How the source consumes the server (`source.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Stream,
    Batch,
}

/// When a batch closes: whichever bound is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_records: u32,
    pub max_bytes: u32,
    pub max_age_ms: u64,
}

impl Default for Limits {
    /// Bounds that suit a destination writing in bulk.
    fn default() -> Self {
        Self { max_records: 1000, max_bytes: 1 << 20, max_age_ms: 1000 }
    }
}

/// Where the frames come from, as the host describes the source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// The WebSocket URL, credentials redacted.
    pub url: String,
    /// The URL's host, empty when it has none.
    pub host: String,
    /// The configured namespace; `None` means `websocket.{host}`.
    pub namespace: Option<String>,
    pub mode: Mode,
    pub connection_id: u64,
    pub format: Format,
    pub limits: Limits,
}

impl Source {
    /// The namespace of this source's records: the configured one, else `websocket.{host}`.
    pub fn namespace(&self) -> String {
        match &self.namespace {
            Some(namespace) => namespace.clone(),
            None if self.host.is_empty() => "websocket.unknown".to_owned(),
            None => format!("websocket.{}", self.host),
        }
    }
}

/// One received frame, borrowed from the list the host sent.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The per-source sequence number, increasing.
    pub sequence: u64,
    pub kind: FrameKind,
    pub payload: &'a [u8],
    /// When the host received the frame, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
}

impl<'a> Frame<'a> {
    /// The payload as UTF-8 text, or a reason to reject the frame.
    pub fn text(&self) -> Result<&'a str, String> {
        utf8(self.payload)
    }

    /// The payload as a JSON value for [`Records::push`](crate::Records::push): it fails
    /// as `Json(frame.text()?)` would, but checks the payload in one pass instead of two.
    pub fn json(&self) -> FrameJson<'a> {
        FrameJson(self.payload)
    }
}

pub(crate) fn utf8(payload: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(payload).map_err(|err| format!("text frame is not valid UTF-8: {err}"))
}

/// A message for the host to send on the socket, such as a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
}

impl Outbound {
    /// A text message holding `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, String> {
        serde_json::to_string(value).map(Self::Text).map_err(|err| format!("cannot encode the message: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(host: &str, namespace: Option<&str>) -> Source {
        Source { host: host.to_owned(), namespace: namespace.map(str::to_owned), ..Source::default() }
    }

    #[test]
    fn namespace_is_websocket_dot_host() {
        assert_eq!(source("stream.example.com", None).namespace(), "websocket.stream.example.com");
    }

    #[test]
    fn namespace_is_unknown_without_a_host() {
        assert_eq!(source("", None).namespace(), "websocket.unknown");
    }

    #[test]
    fn configured_namespace_wins() {
        assert_eq!(source("h", Some("trades")).namespace(), "trades");
    }

    #[test]
    fn text_of_a_frame_that_is_not_utf8_is_a_reason() {
        let frame = Frame { sequence: 0, kind: FrameKind::Text, payload: b"\xff", received_at_ms: 0 };
        assert!(frame.text().unwrap_err().starts_with("text frame is not valid UTF-8"));
    }
}
