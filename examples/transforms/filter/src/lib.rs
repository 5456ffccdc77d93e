//! Drops heartbeat and keepalive frames: a JSON object whose `field` (default `type`) is one
//! of `drop` (default `heartbeat`, `keepalive`) becomes no record; everything else is kept
//! as it is, and a frame that is not JSON is rejected with the parse error.

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use skippr_sdk::{Frame, Json, Records, Source, Transform};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The top-level field that says what a message is.
    pub field: String,
    /// The values of `field` to drop.
    pub drop: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self { field: "type".into(), drop: vec!["heartbeat".into(), "keepalive".into()] }
    }
}

#[derive(Debug)]
pub struct Filter {
    options: Options,
}

impl Transform for Filter {
    type Options = Options;

    fn new(_source: &Source, options: Options) -> Result<Self, String> {
        if options.field.is_empty() {
            return Err("invalid transform option `field`: it must name a field".into());
        }
        Ok(Self { options })
    }

    fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String> {
        let text = frame.text()?;
        if self.kind_of(text).is_some_and(|kind| self.options.drop.contains(&kind)) {
            return Ok(());
        }
        records.push(Json(text))
    }
}

impl Filter {
    /// The value of the configured field, when the frame is a JSON object that has it as a
    /// string. One pass that builds nothing: other fields are skipped as they are read.
    fn kind_of(&self, text: &str) -> Option<String> {
        let mut json = serde_json::Deserializer::from_str(text);
        TopLevelString(&self.options.field).deserialize(&mut json).ok().flatten()
    }
}

/// Reads one top-level string field of a JSON object.
struct TopLevelString<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for TopLevelString<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevelString<'_> {
    type Value = Option<String>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'_, str>>()? {
            if found.is_none() && key == self.0 {
                found = match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::String(kind) => Some(kind),
                    _ => None,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

skippr_sdk::export_transform!(Filter);

#[cfg(test)]
mod tests {
    use skippr_sdk::{FrameKind, Shaper};

    use super::*;

    fn shape(options: &str, payloads: &[&str]) -> (Vec<u64>, skippr_sdk::Output) {
        let mut shaper = Shaper::<Filter>::init(&Source::default(), options).unwrap();
        let frames = payloads.iter().zip(0..).map(|(payload, sequence)| Frame {
            sequence,
            kind: FrameKind::Text,
            payload: payload.as_bytes(),
            received_at_ms: 0,
        });
        let out = shaper.push(frames, 0);
        let kept = shaper.flush().batches.iter().flat_map(|batch| batch.record_sequences.clone()).collect();
        (kept, out)
    }

    #[test]
    fn heartbeats_and_keepalives_are_dropped_the_rest_kept() {
        let payloads = [r#"{"type":"trade"}"#, r#"{"type":"heartbeat"}"#, "[1]", r#"{"type":"keepalive"}"#, "{bad"];
        let (kept, out) = shape("", &payloads);
        assert_eq!(kept, [0, 2]);
        assert_eq!(out.dropped, [1, 3]);
        assert_eq!(out.rejections[0].sequence, 4);
    }

    #[test]
    fn the_field_and_values_are_options() {
        let (kept, out) =
            shape(r#"{"field":"channel","drop":["status"]}"#, &[r#"{"channel":"status"}"#, r#"{"type":"heartbeat"}"#]);
        assert_eq!((kept, out.dropped), (vec![1], vec![0]));
        let err = Shaper::<Filter>::init(&Source::default(), r#"{"drop":"heartbeat"}"#).unwrap_err();
        assert!(err.starts_with("invalid transform option `drop`"), "{err}");
    }
}
