//! A dead letter: a frame that could not be delivered, with its reason and its original
//! payload, as one JSON line.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use crate::runtime::FrameKind;

#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    pub reason: &'a str,
    pub url: &'a str,
    pub connection_id: u64,
    pub sequence: u64,
    pub received_at_ms: u64,
    pub kind: &'static str,
    pub size: usize,
    /// The payload as text, when it is valid UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a str>,
    /// The payload as base64, when it is binary or not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
}

impl<'a> DeadLetter<'a> {
    /// A frame with its payload; `payload` is `None` when it was never read (too large).
    pub fn new(reason: &'a str, url: &'a str, frame: FrameInfo, payload: Option<&'a [u8]>) -> Self {
        let text = match (frame.kind, payload) {
            (Some(FrameKind::Text), Some(bytes)) => std::str::from_utf8(bytes).ok(),
            _ => None,
        };
        let payload_base64 = match (text, payload) {
            (None, Some(bytes)) => Some(BASE64.encode(bytes)),
            _ => None,
        };
        Self {
            reason,
            url,
            connection_id: frame.connection_id,
            sequence: frame.sequence,
            received_at_ms: frame.received_at_ms,
            kind: frame.kind.map_or("unknown", FrameKind::as_str),
            size: frame.size,
            payload: text,
            payload_base64,
        }
    }

    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a dead letter is plain data");
        line.push(b'\n');
        line
    }
}

/// Where a dead frame came from.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    pub sequence: u64,
    pub connection_id: u64,
    pub received_at_ms: u64,
    /// `None` when the frame was never read.
    pub kind: Option<FrameKind>,
    pub size: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: FrameKind) -> FrameInfo {
        FrameInfo { sequence: 3, connection_id: 1, received_at_ms: 5, kind: Some(kind), size: 4 }
    }

    #[test]
    fn text_payloads_stay_readable() {
        let line = DeadLetter::new("invalid JSON", "ws://h", info(FrameKind::Text), Some(b"{bad")).to_line();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["payload"], "{bad");
        assert_eq!(value["reason"], "invalid JSON");
        assert!(value.get("payload_base64").is_none());
        assert!(line.ends_with(b"}\n"));
    }

    #[test]
    fn binary_payloads_are_base64_and_unread_ones_absent() {
        let line = DeadLetter::new("r", "ws://h", info(FrameKind::Binary), Some(&[0, 255])).to_line();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["payload_base64"], "AP8=");
        let line = DeadLetter::new("too large", "ws://h", info(FrameKind::Binary), None).to_line();
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert!(value.get("payload").is_none() && value.get("payload_base64").is_none());
        assert_eq!(value["size"], 4);
    }
}
