//! Turns one frame into one JSON Lines record: namespace, value and metadata.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::IgnoredAny;

/// How a WebSocket data frame was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Text,
    Binary,
}

/// How text frames are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Text,
    Raw,
}

/// One received frame, borrowed from the packed list the host sent.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub sequence: u64,
    pub kind: FrameKind,
    pub payload: &'a [u8],
    pub received_at_ms: u64,
}

/// What every record of one source shares, escaped once.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    /// `{"namespace":"…","value":`
    prefix: Vec<u8>,
    /// `,"meta":{"url":"…","connection_id":` or empty when metadata is off.
    meta_prefix: Vec<u8>,
    connection_id: u64,
}

impl Encoder {
    pub fn new(namespace: &str, url: &str, format: Format, include_meta: bool) -> Self {
        let mut prefix = br#"{"namespace":"#.to_vec();
        write_json_string(&mut prefix, namespace);
        prefix.extend_from_slice(br#","value":"#);
        let mut meta_prefix = Vec::new();
        if include_meta {
            meta_prefix.extend_from_slice(br#","meta":{"url":"#);
            write_json_string(&mut meta_prefix, url);
            meta_prefix.extend_from_slice(br#","connection_id":"#);
        }
        Self { format, prefix, meta_prefix, connection_id: 0 }
    }

    pub fn set_connection(&mut self, connection_id: u64) {
        self.connection_id = connection_id;
    }

    /// Appends the record for `frame` to `out`, ending in `\n`; on error `out` may hold
    /// a partial record, which the caller discards.
    pub fn encode(&self, frame: &Frame<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&self.prefix);
        match (frame.kind, self.format) {
            (FrameKind::Text, Format::Json) => write_json_value(out, text_of(frame)?)?,
            (FrameKind::Text, Format::Text) => write_json_string(out, text_of(frame)?),
            (FrameKind::Binary, _) | (FrameKind::Text, Format::Raw) => write_base64(out, frame.payload),
        }
        if self.meta_prefix.is_empty() {
            out.extend_from_slice(b"}\n");
            return Ok(());
        }
        out.extend_from_slice(&self.meta_prefix);
        // itoa: core::fmt costs more per record than the rest of the metadata together.
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(number.format(self.connection_id).as_bytes());
        out.extend_from_slice(br#","sequence":"#);
        out.extend_from_slice(number.format(frame.sequence).as_bytes());
        out.extend_from_slice(br#","received_at_ms":"#);
        out.extend_from_slice(number.format(frame.received_at_ms).as_bytes());
        out.extend_from_slice(match frame.kind {
            FrameKind::Text => br#","kind":"text"}}"#.as_slice(),
            FrameKind::Binary => br#","kind":"binary"}}"#.as_slice(),
        });
        out.push(b'\n');
        Ok(())
    }
}

fn text_of<'a>(frame: &Frame<'a>) -> Result<&'a str, String> {
    std::str::from_utf8(frame.payload).map_err(|err| format!("text frame is not valid UTF-8: {err}"))
}

/// Validates `text` as exactly one JSON value and copies it as is, without building a
/// tree. Line breaks can only be whitespace between tokens in valid JSON (inside strings
/// they must be escaped), so turning them into spaces keeps the value and the line intact.
fn write_json_value(out: &mut Vec<u8>, text: &str) -> Result<(), String> {
    serde_json::from_str::<IgnoredAny>(text).map_err(|err| format!("invalid JSON: {err}"))?;
    let start = out.len();
    out.extend_from_slice(text.as_bytes());
    for byte in &mut out[start..] {
        if *byte == b'\n' || *byte == b'\r' {
            *byte = b' ';
        }
    }
    Ok(())
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("a str always serializes into a Vec");
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).expect("frames are far below usize::MAX / 4"), 0);
    let written = BASE64.encode_slice(bytes, &mut out[start..]).expect("the buffer was sized by encoded_len");
    out.truncate(start + written);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: FrameKind, payload: &[u8]) -> Frame<'_> {
        Frame { sequence: 7, kind, payload, received_at_ms: 1_700_000_000_123 }
    }

    fn encode(format: Format, include_meta: bool, frame: &Frame<'_>) -> Result<String, String> {
        let mut encoder = Encoder::new("websocket.example.com", "wss://example.com/v1", format, include_meta);
        encoder.set_connection(3);
        let mut out = Vec::new();
        encoder.encode(frame, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn parse(line: &str) -> serde_json::Value {
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "one line: {line:?}");
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn json_frame_keeps_its_value_and_carries_metadata() {
        let line = encode(Format::Json, true, &frame(FrameKind::Text, br#"{"price": 1.5, "sym":"BTC"}"#)).unwrap();
        let record = parse(&line);
        assert_eq!(record["namespace"], "websocket.example.com");
        assert_eq!(record["value"], serde_json::json!({"price": 1.5, "sym": "BTC"}));
        assert_eq!(
            record["meta"],
            serde_json::json!({"url": "wss://example.com/v1", "connection_id": 3, "sequence": 7,
                "received_at_ms": 1_700_000_000_123u64, "kind": "text"})
        );
    }

    #[test]
    fn pretty_printed_json_stays_on_one_line() {
        let line = encode(Format::Json, true, &frame(FrameKind::Text, b"{\r\n  \"a\": \"x\\ny\"\n}")).unwrap();
        assert_eq!(parse(&line)["value"], serde_json::json!({"a": "x\ny"}));
    }

    #[test]
    fn json_scalars_and_arrays_are_values_too() {
        for text in ["42", "\"hi\"", "[1,2]", "null", "true"] {
            let line = encode(Format::Json, false, &frame(FrameKind::Text, text.as_bytes())).unwrap();
            assert_eq!(parse(&line)["value"], serde_json::from_str::<serde_json::Value>(text).unwrap());
        }
    }

    #[test]
    fn numbers_are_copied_exactly_even_beyond_f64() {
        let payload = b"[1e400, 123456789012345678901234567890, 0.10000000000000000001]";
        let line = encode(Format::Json, false, &frame(FrameKind::Text, payload)).unwrap();
        assert_eq!(
            line,
            format!(
                "{{\"namespace\":\"websocket.example.com\",\"value\":{}}}\n",
                std::str::from_utf8(payload).unwrap()
            )
        );
    }

    #[test]
    fn invalid_json_is_rejected_with_the_parse_error() {
        let err = encode(Format::Json, true, &frame(FrameKind::Text, b"{\"a\":")).unwrap_err();
        assert!(err.starts_with("invalid JSON: EOF while parsing"), "{err}");
        let err = encode(Format::Json, true, &frame(FrameKind::Text, b"{} {}")).unwrap_err();
        assert!(err.contains("trailing characters"), "{err}");
        let err = encode(Format::Json, true, &frame(FrameKind::Text, b"")).unwrap_err();
        assert!(err.starts_with("invalid JSON"), "{err}");
    }

    #[test]
    fn text_format_keeps_the_frame_as_a_string() {
        let line = encode(Format::Text, true, &frame(FrameKind::Text, "not json \"quoted\"\n∑".as_bytes())).unwrap();
        assert_eq!(parse(&line)["value"], "not json \"quoted\"\n∑");
    }

    #[test]
    fn text_frame_that_is_not_utf8_is_rejected() {
        let err = encode(Format::Text, true, &frame(FrameKind::Text, b"\xff\xfe")).unwrap_err();
        assert!(err.starts_with("text frame is not valid UTF-8"), "{err}");
    }

    #[test]
    fn binary_frames_are_base64_and_marked_binary_in_every_format() {
        for format in [Format::Json, Format::Text, Format::Raw] {
            let line = encode(format, true, &frame(FrameKind::Binary, &[0, 159, 146, 150, 255])).unwrap();
            let record = parse(&line);
            assert_eq!(record["value"], "AJ+Slv8=");
            assert_eq!(record["meta"]["kind"], "binary");
        }
    }

    #[test]
    fn raw_format_keeps_text_bytes_unparsed() {
        let line = encode(Format::Raw, true, &frame(FrameKind::Text, b"{not json")).unwrap();
        let record = parse(&line);
        assert_eq!(record["value"], BASE64.encode(b"{not json"));
        assert_eq!(record["meta"]["kind"], "text");
    }

    #[test]
    fn metadata_can_be_left_out() {
        let line = encode(Format::Json, false, &frame(FrameKind::Text, b"1")).unwrap();
        assert_eq!(line, "{\"namespace\":\"websocket.example.com\",\"value\":1}\n");
    }

    /// For many generated payloads, the record is exactly one JSON line whose value is what
    /// serde_json reads from the payload, or the frame is rejected exactly when serde_json
    /// refuses it: validating and copying agrees with parsing. (Numbers beyond f64 are valid
    /// JSON and kept verbatim, where a parse into `Value` would refuse them.)
    #[test]
    fn copying_validated_json_agrees_with_parsing_it() {
        const PIECES: [&str; 24] = [
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"a\"",
            "\"\\n\"",
            "\"\\u00e9\"",
            "\"\u{e9}\"",
            "1",
            "-0.5e3",
            "true",
            "null",
            " ",
            "\n",
            "\r\n",
            "\t",
            "\"x\\\"y\"",
            "01",
            "\"\\q\"",
            "1e",
            "\u{2028}",
            "\"",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let encoder = Encoder::new("n", "u", Format::Json, false);
        let mut valid = 0;
        for _ in 0..100_000 {
            let length = (next() % 12) as usize;
            let payload: String = (0..length).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            let mut out = Vec::new();
            let shaped = encoder.encode(&frame(FrameKind::Text, payload.as_bytes()), &mut out);
            match serde_json::from_str::<serde_json::Value>(&payload) {
                Ok(expected) => {
                    valid += 1;
                    assert!(shaped.is_ok(), "{payload:?} is JSON but was rejected");
                    let line = std::str::from_utf8(&out).unwrap();
                    assert_eq!(parse(line)["value"], expected, "{payload:?}");
                }
                // A number beyond f64 (`1e400`) stops serde's `Value` first, whatever follows:
                // this oracle cannot judge such a payload.
                Err(err) if err.to_string().starts_with("number out of range") => {}
                Err(_) => assert!(shaped.is_err(), "{payload:?} is not JSON but was accepted"),
            }
        }
        assert!(valid > 2_000, "the generator makes enough valid JSON to mean something: {valid}");
    }

    #[test]
    fn namespace_and_url_are_escaped() {
        let encoder = Encoder::new("ns\"x", "ws://h/\"q", Format::Json, true);
        let mut out = Vec::new();
        encoder.encode(&frame(FrameKind::Text, b"1"), &mut out).unwrap();
        let record = parse(std::str::from_utf8(&out).unwrap());
        assert_eq!(record["namespace"], "ns\"x");
        assert_eq!(record["meta"]["url"], "ws://h/\"q");
    }
}
