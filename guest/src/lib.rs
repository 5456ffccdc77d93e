//! The default shaper, written on the SDK like any other transform: each frame becomes one
//! record whose value is the frame read as `source.format` says (JSON, text or base64).

mod options;

pub use options::Options;
use skippr_sdk::{Bytes, Format, Frame, FrameKind, Records, Source, Text, Transform};

#[derive(Debug)]
pub struct DefaultShaper {
    format: Format,
    include_meta: bool,
}

impl Transform for DefaultShaper {
    type Options = Options;

    fn new(source: &Source, options: Options) -> Result<Self, String> {
        Ok(Self { format: source.format, include_meta: options.include_meta })
    }

    fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String> {
        match (frame.kind, self.format) {
            (FrameKind::Text, Format::Json) => records.push(frame.json()),
            (FrameKind::Text, Format::Text) => records.push(Text(frame.text()?)),
            (FrameKind::Binary, _) | (FrameKind::Text, Format::Raw) => records.push(Bytes(frame.payload)),
        }
    }

    fn include_meta(&self) -> bool {
        self.include_meta
    }
}

skippr_sdk::export_transform!(DefaultShaper);

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use skippr_sdk::{Limits, Shaper};

    use super::*;

    fn shape(format: Format, kind: FrameKind, payload: &[u8]) -> Result<serde_json::Value, String> {
        let source = Source {
            url: "wss://example.com/v1".into(),
            host: "example.com".into(),
            connection_id: 3,
            format,
            limits: Limits::default(),
            ..Source::default()
        };
        let mut shaper = Shaper::<DefaultShaper>::init(&source, "")?;
        let frame = Frame { sequence: 7, kind, payload, received_at_ms: 1_700_000_000_123 };
        let out = shaper.push([frame], 0);
        if let Some(rejection) = out.rejections.into_iter().next() {
            return Err(rejection.reason);
        }
        let batch = shaper.flush().batches.remove(0);
        Ok(serde_json::from_slice(&batch.lines).unwrap())
    }

    #[test]
    fn json_frames_keep_their_value() {
        let record = shape(Format::Json, FrameKind::Text, br#"{"price": 1.5}"#).unwrap();
        assert_eq!((&record["value"]["price"], &record["meta"]["kind"]), (&serde_json::json!(1.5), &"text".into()));
    }

    #[test]
    fn invalid_json_is_rejected() {
        let err = shape(Format::Json, FrameKind::Text, b"{\"a\":").unwrap_err();
        assert!(err.starts_with("invalid JSON: EOF while parsing"), "{err}");
    }

    #[test]
    fn text_format_keeps_the_frame_as_a_string() {
        let record = shape(Format::Text, FrameKind::Text, "not json \"quoted\"\n∑".as_bytes()).unwrap();
        assert_eq!(record["value"], "not json \"quoted\"\n∑");
    }

    #[test]
    fn text_frame_that_is_not_utf8_is_rejected() {
        for format in [Format::Json, Format::Text] {
            let err = shape(format, FrameKind::Text, b"\xff\xfe").unwrap_err();
            assert!(err.starts_with("text frame is not valid UTF-8"), "{err}");
        }
    }

    #[test]
    fn binary_frames_are_base64_and_marked_binary_in_every_format() {
        for format in [Format::Json, Format::Text, Format::Raw] {
            let record = shape(format, FrameKind::Binary, &[0, 159, 146, 150, 255]).unwrap();
            assert_eq!(record["value"], "AJ+Slv8=");
            assert_eq!(record["meta"]["kind"], "binary");
        }
    }

    #[test]
    fn raw_format_keeps_text_bytes_unparsed() {
        let record = shape(Format::Raw, FrameKind::Text, b"{not json").unwrap();
        let base64 = base64::engine::general_purpose::STANDARD.encode(b"{not json");
        assert_eq!(record["value"], base64);
        assert_eq!(record["meta"]["kind"], "text");
    }

    #[test]
    fn metadata_can_be_left_out() {
        let source = Source { host: "h".into(), ..Source::default() };
        let mut shaper = Shaper::<DefaultShaper>::init(&source, r#"{"include_meta": false}"#).unwrap();
        shaper.push([Frame { sequence: 0, kind: FrameKind::Text, payload: b"1", received_at_ms: 0 }], 0);
        assert_eq!(shaper.flush().batches[0].lines, b"{\"namespace\":\"websocket.h\",\"value\":1}\n");
    }
}
