//! {{name}}: a Skippr transform. Each JSON frame becomes one record, except those whose
//! `type` is listed in the `drop_types` option; a frame that is not JSON is rejected and
//! lands in the dead-letter output with the reason.

use serde::Deserialize;
use skippr_sdk::{Frame, Json, Records, Source, Transform};

/// The options from `transform.options` in skippr.yaml. A wrong type or an unknown name is
/// an error at start-up that names the option.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Frames whose JSON `type` is one of these are dropped.
    pub drop_types: Vec<String>,
}

#[derive(Debug)]
pub struct {{type_name}} {
    options: Options,
}

/// Only `type` is read; the rest of each message is kept as it came.
#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl Transform for {{type_name}} {
    type Options = Options;

    fn new(_source: &Source, options: Options) -> Result<Self, String> {
        Ok(Self { options })
    }

    fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String> {
        let text = frame.text()?;
        let kind = serde_json::from_str::<Typed>(text).ok().and_then(|typed| typed.kind);
        if kind.is_some_and(|kind| self.options.drop_types.contains(&kind)) {
            return Ok(());
        }
        records.push(Json(text))
    }
}

skippr_sdk::export_transform!({{type_name}});

#[cfg(test)]
mod tests {
    use skippr_sdk::{FrameKind, Shaper};

    use super::*;

    fn text(sequence: u64, payload: &str) -> Frame<'_> {
        Frame { sequence, kind: FrameKind::Text, payload: payload.as_bytes(), received_at_ms: 0 }
    }

    #[test]
    fn keeps_json_drops_listed_types_and_rejects_the_rest() {
        let mut shaper = Shaper::<{{type_name}}>::init(&Source::default(), r#"{"drop_types":["heartbeat"]}"#).unwrap();
        let frames = [text(0, r#"{"type":"trade","price":"1.5"}"#), text(1, r#"{"type":"heartbeat"}"#), text(2, "{oops")];
        let out = shaper.push(frames, 0);
        assert_eq!(out.dropped, [1]);
        assert!(out.rejections[0].reason.starts_with("invalid JSON"));
        let batch = &shaper.flush().batches[0];
        assert_eq!(batch.record_sequences, [0]);
        let record: serde_json::Value = serde_json::from_slice(&batch.lines).unwrap();
        assert_eq!(record["value"]["price"], "1.5");
    }

    #[test]
    fn a_misspelt_option_is_named() {
        let err = Shaper::<{{type_name}}>::init(&Source::default(), r#"{"drop_type":[]}"#).unwrap_err();
        assert!(err.contains("unknown field `drop_type`"), "{err}");
    }
}
