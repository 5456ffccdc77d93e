//! Drives a [`Transform`] for one source: each frame becomes records, a rejection or a
//! drop, and records are batched by the source's bounds.

use serde::de::DeserializeOwned;

use crate::Transform;
use crate::batch::{Batch, Batcher};
use crate::frame::{Frame, Outbound, Source};
use crate::record::{Envelope, Pending, Records};

/// A frame the transform refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub sequence: u64,
    pub reason: String,
}

/// What one call produced. Every frame pushed ends up in exactly one of: a batch (now or
/// in a later call), `rejections`, or `dropped`.
#[derive(Debug, Default)]
pub struct Output {
    pub batches: Vec<Batch>,
    pub rejections: Vec<Rejection>,
    /// Frames the transform shaped into no record, such as heartbeats a filter drops.
    pub dropped: Vec<u64>,
}

/// One source's shaping state: the transform, the open batch and the shared envelope.
#[derive(Debug)]
pub struct Shaper<T> {
    transform: T,
    namespace: String,
    envelope: Envelope,
    batcher: Batcher,
    pending: Pending,
}

impl<T: Transform> Shaper<T> {
    /// Reads the options (JSON; empty means `{}`) and makes the transform.
    pub fn init(source: &Source, options: &str) -> Result<Self, String> {
        let transform = T::new(source, parse_options(options)?)?;
        let namespace = source.namespace();
        let mut envelope = Envelope::new(&namespace, &source.url, transform.include_meta());
        envelope.set_connection(source.connection_id);
        Ok(Self { transform, namespace, envelope, batcher: Batcher::new(source.limits), pending: Pending::default() })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The frames that follow come from `connection_id`; returns what to send first.
    pub fn on_connect(&mut self, connection_id: u64) -> Vec<Outbound> {
        self.envelope.set_connection(connection_id);
        self.transform.on_connect(connection_id)
    }

    pub fn push<'a>(&mut self, frames: impl IntoIterator<Item = Frame<'a>>, now_ms: u64) -> Output {
        let mut output = Output::default();
        for frame in frames {
            self.pending.clear();
            self.envelope.start_frame(&frame);
            let shaped = self.transform.shape(&frame, &mut Records::new(&self.envelope, &mut self.pending));
            match shaped {
                Err(reason) => output.rejections.push(Rejection { sequence: frame.sequence, reason }),
                Ok(()) if self.pending.ends.is_empty() => output.dropped.push(frame.sequence),
                Ok(()) => {
                    self.batcher.add(frame.sequence, frame.received_at_ms, self.pending.records(), &mut output.batches)
                }
            }
        }
        self.batcher.close_expired(now_ms, &mut output.batches);
        output
    }

    pub fn tick(&mut self, now_ms: u64) -> Output {
        let mut output = Output::default();
        self.batcher.close_expired(now_ms, &mut output.batches);
        output
    }

    pub fn flush(&mut self) -> Output {
        let mut output = Output::default();
        self.batcher.flush(&mut output.batches);
        output
    }
}

/// Options come as a JSON object; an error names the option at fault.
fn parse_options<O: DeserializeOwned>(json: &str) -> Result<O, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json)).map_err(|err| {
        match err.path().to_string().as_str() {
            "." => format!("invalid transform options: {}", err.inner()),
            path => format!("invalid transform option `{path}`: {}", err.inner()),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::frame::{FrameKind, Limits};
    use crate::record::{Json, Text};

    /// Splits a text frame on `,` into one record per part; `drop` drops it, `bad` rejects it
    /// after a first record.
    #[derive(Debug)]
    struct Splitter {
        greeting: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SplitterOptions {
        #[serde(default)]
        greeting: Option<String>,
        #[serde(default)]
        include_meta: Option<bool>,
    }

    impl Transform for Splitter {
        type Options = SplitterOptions;

        fn new(_source: &Source, options: SplitterOptions) -> Result<Self, String> {
            if options.include_meta == Some(false) {
                return Err("include_meta cannot be false here".into());
            }
            Ok(Self { greeting: options.greeting })
        }

        fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String> {
            for part in frame.text()?.split(',').filter(|part| *part != "drop") {
                match part {
                    "bad" => return Err("bad part".into()),
                    part => records.push(Text(part))?,
                }
            }
            Ok(())
        }

        fn on_connect(&mut self, _connection_id: u64) -> Vec<Outbound> {
            self.greeting.iter().map(|greeting| Outbound::Text(greeting.clone())).collect()
        }
    }

    fn source() -> Source {
        Source {
            url: "ws://h/feed".into(),
            host: "h".into(),
            connection_id: 1,
            limits: Limits { max_records: 2, max_bytes: 1 << 20, max_age_ms: 100 },
            ..Source::default()
        }
    }

    fn text(sequence: u64, payload: &str) -> Frame<'_> {
        Frame { sequence, kind: FrameKind::Text, payload: payload.as_bytes(), received_at_ms: 10 }
    }

    #[test]
    fn every_frame_is_in_a_batch_a_rejection_or_dropped() {
        let mut shaper = Shaper::<Splitter>::init(&source(), "").unwrap();
        let out = shaper.push([text(0, "a,b,c"), text(1, "drop"), text(2, "x,bad"), text(3, "d")], 10);
        assert_eq!(out.rejections, [Rejection { sequence: 2, reason: "bad part".into() }]);
        assert_eq!(out.dropped, [1]);
        let sequences: Vec<&[u64]> = out.batches.iter().map(|batch| batch.record_sequences.as_slice()).collect();
        assert_eq!(sequences, [[0, 0, 0]], "a frame's records share its sequence and one batch");
        assert_eq!(shaper.flush().batches[0].record_sequences, [3], "the rejected frame left no record");
    }

    #[test]
    fn tick_closes_old_batches_only() {
        let mut shaper = Shaper::<Splitter>::init(&source(), "{}").unwrap();
        assert!(shaper.push([text(0, "1")], 10).batches.is_empty());
        assert!(shaper.tick(50).batches.is_empty());
        assert_eq!(shaper.tick(110).batches[0].record_sequences, [0]);
    }

    #[test]
    fn records_carry_the_current_connection_and_on_connect_answers() {
        let mut shaper = Shaper::<Splitter>::init(&source(), r#"{"greeting":"hi"}"#).unwrap();
        assert_eq!(shaper.on_connect(9), [Outbound::Text("hi".into())]);
        shaper.push([text(0, "1")], 10);
        let batch = &shaper.flush().batches[0];
        let record: serde_json::Value = serde_json::from_slice(&batch.lines).unwrap();
        assert_eq!(record["meta"]["connection_id"], 9);
        assert_eq!(record["namespace"], "websocket.h");
    }

    #[test]
    fn option_errors_name_the_option() {
        let err = Shaper::<Splitter>::init(&source(), r#"{"greeting": 5}"#).unwrap_err();
        assert!(err.starts_with("invalid transform option `greeting`: invalid type: integer `5`"), "{err}");
        let err = Shaper::<Splitter>::init(&source(), r#"{"greting": "x"}"#).unwrap_err();
        assert!(err.contains("unknown field `greting`, expected `greeting`"), "{err}");
        let err = Shaper::<Splitter>::init(&source(), "\"x\"").unwrap_err();
        assert!(err.starts_with("invalid transform options: invalid type: string"), "{err}");
        let err = Shaper::<Splitter>::init(&source(), r#"{"include_meta": false}"#).unwrap_err();
        assert_eq!(err, "include_meta cannot be false here", "the transform's own refusal");
    }

    #[test]
    fn json_values_are_validated() {
        struct Passthrough;
        impl Transform for Passthrough {
            type Options = serde::de::IgnoredAny;
            fn new(_source: &Source, _options: Self::Options) -> Result<Self, String> {
                Ok(Self)
            }
            fn shape(&mut self, frame: &Frame<'_>, records: &mut Records<'_>) -> Result<(), String> {
                records.push(Json(frame.text()?))
            }
        }
        let mut shaper = Shaper::<Passthrough>::init(&source(), "").unwrap();
        let out = shaper.push([text(0, "{\"a\":"), text(1, "[1]")], 10);
        assert!(out.rejections[0].reason.starts_with("invalid JSON: EOF"), "{:?}", out.rejections);
        assert_eq!(shaper.flush().batches[0].record_sequences, [1]);
    }
}
