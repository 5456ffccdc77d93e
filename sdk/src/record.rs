//! Records as JSON Lines: the envelope every record of a source shares (namespace, key,
//! metadata) and the values a transform can put in it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::de::IgnoredAny;

use crate::frame::{self, Frame, FrameKind};
use crate::json;

/// A record's value, written as JSON.
pub trait Value {
    /// Appends the value to `out`; on error `out` may hold part of it, which the caller drops.
    fn write(self, out: &mut Vec<u8>) -> Result<(), String>;
}

/// JSON text, validated and then copied as it is: no tree is built, and numbers keep every
/// digit. Invalid JSON is an error whose reason says where.
#[derive(Debug, Clone, Copy)]
pub struct Json<'a>(pub &'a str);

/// A text frame's payload as JSON, checked as UTF-8 and as JSON in one pass, where
/// `Json(frame.text()?)` takes two; made by [`Frame::json`].
#[derive(Debug, Clone, Copy)]
pub struct FrameJson<'a>(pub(crate) &'a [u8]);

/// Text, as a JSON string.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a>(pub &'a str);

/// Bytes, as a base64 JSON string.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

/// Any serde value, serialized as JSON.
#[derive(Debug, Clone, Copy)]
pub struct Serialized<'a, T: ?Sized>(pub &'a T);

impl Value for Json<'_> {
    fn write(self, out: &mut Vec<u8>) -> Result<(), String> {
        let line_breaks = match json::scan(self.0.as_bytes()) {
            Some(valid) => valid.line_breaks,
            // The fast scan accepts what serde_json accepts; serde_json says why not.
            None => {
                serde_json::from_str::<IgnoredAny>(self.0).map_err(|err| format!("invalid JSON: {err}"))?;
                true
            }
        };
        copy_json(self.0.as_bytes(), line_breaks, out);
        Ok(())
    }
}

impl Value for FrameJson<'_> {
    fn write(self, out: &mut Vec<u8>) -> Result<(), String> {
        match json::scan(self.0) {
            Some(valid) => {
                copy_json(self.0, valid.line_breaks, out);
                Ok(())
            }
            // What `Json(frame.text()?)` says.
            None => Json(frame::utf8(self.0)?).write(out),
        }
    }
}

/// Appends valid JSON. Line breaks can only be whitespace between tokens in valid JSON
/// (inside strings they must be escaped), so turning them into spaces keeps the value and
/// the line intact.
fn copy_json(json: &[u8], line_breaks: bool, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(json);
    if line_breaks {
        for byte in &mut out[start..] {
            if *byte == b'\n' || *byte == b'\r' {
                *byte = b' ';
            }
        }
    }
}

impl Value for Text<'_> {
    fn write(self, out: &mut Vec<u8>) -> Result<(), String> {
        write_json_string(out, self.0);
        Ok(())
    }
}

impl Value for Bytes<'_> {
    fn write(self, out: &mut Vec<u8>) -> Result<(), String> {
        out.push(b'"');
        let start = out.len();
        let encoded_len = base64::encoded_len(self.0.len(), true).ok_or("the bytes are too long for base64")?;
        out.resize(start + encoded_len, 0);
        let written = BASE64.encode_slice(self.0, &mut out[start..]).map_err(|err| err.to_string())?;
        out.truncate(start + written);
        out.push(b'"');
        Ok(())
    }
}

impl<T: Serialize + ?Sized> Value for Serialized<'_, T> {
    fn write(self, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, self.0).map_err(|err| format!("cannot encode the record: {err}"))
    }
}

/// What every record of one source shares, escaped once, and what every record of one
/// frame shares, formatted once per frame.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// `{"namespace":"…"`
    prefix: Vec<u8>,
    /// `,"meta":{"url":"…","connection_id":`, or empty when metadata is off.
    meta_url: Vec<u8>,
    /// What ends each record of the current frame: `,"meta":{…}}` and `\n`, or `}\n` when
    /// metadata is off.
    frame_end: Vec<u8>,
    /// Where the sequence starts in `frame_end`: the bytes before it (url, connection)
    /// are the same for every frame of the connection.
    sequence_at: usize,
    /// `,"received_at_ms":…,"kind":…}}\n` for `receipt_of`: frames received in the same
    /// millisecond share it.
    receipt: Vec<u8>,
    receipt_of: Option<(u64, FrameKind)>,
}

impl Envelope {
    pub(crate) fn new(namespace: &str, url: &str, include_meta: bool) -> Self {
        let mut prefix = br#"{"namespace":"#.to_vec();
        write_json_string(&mut prefix, namespace);
        let mut meta_url = Vec::new();
        if include_meta {
            meta_url.extend_from_slice(br#","meta":{"url":"#);
            write_json_string(&mut meta_url, url);
            meta_url.extend_from_slice(br#","connection_id":"#);
        }
        let mut envelope =
            Self { prefix, meta_url, frame_end: Vec::new(), sequence_at: 0, receipt: Vec::new(), receipt_of: None };
        envelope.set_connection(0);
        envelope
    }

    pub(crate) fn set_connection(&mut self, connection_id: u64) {
        self.frame_end.clear();
        if self.meta_url.is_empty() {
            self.frame_end.extend_from_slice(b"}\n");
        } else {
            self.frame_end.extend_from_slice(&self.meta_url);
            self.frame_end.extend_from_slice(itoa::Buffer::new().format(connection_id).as_bytes());
            self.frame_end.extend_from_slice(br#","sequence":"#);
        }
        self.sequence_at = self.frame_end.len();
    }

    /// Formats the metadata of `frame`, which the records written next belong to (itoa:
    /// core::fmt costs more than the rest of the metadata together).
    pub(crate) fn start_frame(&mut self, frame: &Frame<'_>) {
        if self.meta_url.is_empty() {
            return;
        }
        self.frame_end.truncate(self.sequence_at);
        self.frame_end.extend_from_slice(itoa::Buffer::new().format(frame.sequence).as_bytes());
        if self.receipt_of != Some((frame.received_at_ms, frame.kind)) {
            self.receipt.clear();
            self.receipt.extend_from_slice(br#","received_at_ms":"#);
            self.receipt.extend_from_slice(itoa::Buffer::new().format(frame.received_at_ms).as_bytes());
            self.receipt.extend_from_slice(match frame.kind {
                FrameKind::Text => b",\"kind\":\"text\"}}\n".as_slice(),
                FrameKind::Binary => b",\"kind\":\"binary\"}}\n".as_slice(),
            });
            self.receipt_of = Some((frame.received_at_ms, frame.kind));
        }
        self.frame_end.extend_from_slice(&self.receipt);
    }

    /// Appends one record line for the frame last given to [`Self::start_frame`], ending in
    /// `\n`; on error `out` may hold part of it, which the caller drops.
    fn write(&self, key: Option<&str>, value: impl Value, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&self.prefix);
        if let Some(key) = key {
            out.extend_from_slice(br#","key":"#);
            write_json_string(out, key);
        }
        out.extend_from_slice(br#","value":"#);
        value.write(out)?;
        out.extend_from_slice(&self.frame_end);
        Ok(())
    }
}

/// Record lines written while shaping one frame, kept apart until the frame is done so a
/// frame rejected halfway leaves no record behind.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) lines: Vec<u8>,
    pub(crate) ends: Vec<usize>,
}

impl Pending {
    /// Each record line, `\n` included.
    pub(crate) fn records(&self) -> impl Iterator<Item = &[u8]> + Clone {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, &end)| &self.lines[start..end])
    }

    pub(crate) fn clear(&mut self) {
        self.lines.clear();
        self.ends.clear();
    }
}

/// Where a transform puts the records it shapes from one frame: none (the frame is
/// dropped), one, or several. Each gets the source's namespace and the frame's metadata.
#[derive(Debug)]
pub struct Records<'a> {
    /// Started on the frame being shaped.
    envelope: &'a Envelope,
    pending: &'a mut Pending,
}

impl<'a> Records<'a> {
    pub(crate) fn new(envelope: &'a Envelope, pending: &'a mut Pending) -> Self {
        Self { envelope, pending }
    }

    /// Adds a record holding `value`. An error (invalid JSON, say) adds nothing and says
    /// why; return it from `shape` to reject the frame with that reason.
    pub fn push(&mut self, value: impl Value) -> Result<(), String> {
        self.add(None, value)
    }

    /// Adds a record holding `value` under `key`, such as a symbol that destinations can
    /// partition or upsert by.
    pub fn push_keyed(&mut self, key: &str, value: impl Value) -> Result<(), String> {
        self.add(Some(key), value)
    }

    /// How many records this frame has so far.
    pub fn len(&self) -> usize {
        self.pending.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.ends.is_empty()
    }

    fn add(&mut self, key: Option<&str>, value: impl Value) -> Result<(), String> {
        let start = self.pending.lines.len();
        match self.envelope.write(key, value, &mut self.pending.lines) {
            Ok(()) => {
                self.pending.ends.push(self.pending.lines.len());
                Ok(())
            }
            Err(reason) => {
                self.pending.lines.truncate(start);
                Err(reason)
            }
        }
    }
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("a str always serializes into a Vec");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: FrameKind, payload: &[u8]) -> Frame<'_> {
        Frame { sequence: 7, kind, payload, received_at_ms: 1_700_000_000_123 }
    }

    fn envelope(include_meta: bool) -> Envelope {
        let mut envelope = Envelope::new("websocket.example.com", "wss://example.com/v1", include_meta);
        envelope.set_connection(3);
        envelope
    }

    fn encode(include_meta: bool, frame: &Frame<'_>) -> Result<String, String> {
        let mut out = Vec::new();
        let mut envelope = envelope(include_meta);
        envelope.start_frame(frame);
        envelope.write(None, Json(frame.text()?), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn parse(line: &str) -> serde_json::Value {
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "one line: {line:?}");
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn json_frame_keeps_its_value_and_carries_metadata() {
        let line = encode(true, &frame(FrameKind::Text, br#"{"price": 1.5, "sym":"BTC"}"#)).unwrap();
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
        let line = encode(true, &frame(FrameKind::Text, b"{\r\n  \"a\": \"x\\ny\"\n}")).unwrap();
        assert_eq!(parse(&line)["value"], serde_json::json!({"a": "x\ny"}));
    }

    #[test]
    fn json_scalars_and_arrays_are_values_too() {
        for text in ["42", "\"hi\"", "[1,2]", "null", "true"] {
            let line = encode(false, &frame(FrameKind::Text, text.as_bytes())).unwrap();
            assert_eq!(parse(&line)["value"], serde_json::from_str::<serde_json::Value>(text).unwrap());
        }
    }

    #[test]
    fn numbers_are_copied_exactly_even_beyond_f64() {
        let payload = b"[1e400, 123456789012345678901234567890, 0.10000000000000000001]";
        let line = encode(false, &frame(FrameKind::Text, payload)).unwrap();
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
        let err = encode(true, &frame(FrameKind::Text, b"{\"a\":")).unwrap_err();
        assert!(err.starts_with("invalid JSON: EOF while parsing"), "{err}");
        let err = encode(true, &frame(FrameKind::Text, b"{} {}")).unwrap_err();
        assert!(err.contains("trailing characters"), "{err}");
        let err = encode(true, &frame(FrameKind::Text, b"")).unwrap_err();
        assert!(err.starts_with("invalid JSON"), "{err}");
    }

    #[test]
    fn metadata_can_be_left_out() {
        let line = encode(false, &frame(FrameKind::Text, b"1")).unwrap();
        assert_eq!(line, "{\"namespace\":\"websocket.example.com\",\"value\":1}\n");
    }

    /// For many generated payloads, the record is exactly one JSON line whose value is what
    /// serde_json reads from the payload, or the frame is rejected exactly when serde_json
    /// refuses it: validating and copying agrees with parsing. (Numbers beyond f64 are valid
    /// JSON and kept verbatim, where a parse into `Value` would refuse them.)
    #[test]
    fn copying_validated_json_agrees_with_parsing_it() {
        let envelope = Envelope::new("n", "u", false);
        let mut valid = 0;
        for payload in json::generated::inputs(100_000, 12) {
            let mut out = Vec::new();
            let shaped = envelope.write(None, Json(&payload), &mut out);
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

    /// The metadata is formatted once per frame and the receive time and kind reused while
    /// they repeat: every record still carries its own frame's.
    #[test]
    fn each_record_carries_its_own_frames_metadata() {
        let mut envelope = envelope(true);
        let frames = [
            (7, FrameKind::Text, 1_000, 3),
            (8, FrameKind::Text, 1_000, 3),
            (9, FrameKind::Binary, 1_000, 3),
            (10, FrameKind::Binary, 1_001, 3),
            (11, FrameKind::Text, 1_001, 4),
            (12, FrameKind::Text, 999, 4),
        ];
        for (sequence, kind, received_at_ms, connection_id) in frames {
            envelope.set_connection(connection_id);
            envelope.start_frame(&Frame { sequence, kind, payload: b"", received_at_ms });
            for _record in 0..2 {
                let mut out = Vec::new();
                envelope.write(None, Json("1"), &mut out).unwrap();
                let meta = &parse(std::str::from_utf8(&out).unwrap())["meta"];
                let kind = if kind == FrameKind::Text { "text" } else { "binary" };
                assert_eq!(
                    (&meta["sequence"], &meta["received_at_ms"], &meta["kind"], &meta["connection_id"]),
                    (&sequence.into(), &received_at_ms.into(), &kind.into(), &connection_id.into()),
                );
            }
        }
    }

    #[test]
    fn namespace_and_url_are_escaped() {
        let mut out = Vec::new();
        let mut envelope = Envelope::new("ns\"x", "ws://h/\"q", true);
        envelope.start_frame(&frame(FrameKind::Text, b"1"));
        envelope.write(None, Json("1"), &mut out).unwrap();
        let record = parse(std::str::from_utf8(&out).unwrap());
        assert_eq!(record["namespace"], "ns\"x");
        assert_eq!(record["meta"]["url"], "ws://h/\"q");
    }

    #[test]
    fn text_bytes_and_serialized_values() {
        let frame = frame(FrameKind::Binary, b"");
        let write = |value: &dyn Fn(&mut Vec<u8>) -> Result<(), String>| {
            let mut out = Vec::new();
            value(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(write(&|out| Text("a\n\"b\"").write(out)), r#""a\n\"b\"""#);
        assert_eq!(write(&|out| Bytes(&[0, 159, 146, 150, 255]).write(out)), r#""AJ+Slv8=""#);
        assert_eq!(write(&|out| Serialized(&serde_json::json!({"p": 1.5})).write(out)), r#"{"p":1.5}"#);
        let mut out = Vec::new();
        let mut envelope = envelope(true);
        envelope.start_frame(&frame);
        envelope.write(Some("BTC"), Bytes(b"x"), &mut out).unwrap();
        let record = parse(std::str::from_utf8(&out).unwrap());
        assert_eq!(record["key"], "BTC");
        assert_eq!(record["meta"]["kind"], "binary");
    }

    #[test]
    fn a_failed_record_leaves_nothing_and_others_stay() {
        let envelope = envelope(false);
        let mut pending = Pending::default();
        let mut records = Records::new(&envelope, &mut pending);
        records.push(Json("1")).unwrap();
        assert!(records.push_keyed("k", Json("{oops")).unwrap_err().starts_with("invalid JSON"));
        records.push_keyed("k", Json("2")).unwrap();
        assert_eq!(records.len(), 2);
        let lines: Vec<&[u8]> = pending.records().collect();
        assert_eq!(
            lines,
            [
                br#"{"namespace":"websocket.example.com","value":1}
"#
                .as_slice(),
                br#"{"namespace":"websocket.example.com","key":"k","value":2}
"#
                .as_slice()
            ]
        );
    }
}
