//! One source's shaping state: encode each frame, batch the records, report rejections.

use crate::batch::{Batch, Batcher, Limits};
use crate::options::Options;
use crate::shape::{Encoder, Format, Frame};

/// Where the records come from, as the host describes the source.
#[derive(Debug, Clone)]
pub struct Source {
    pub url: String,
    pub host: String,
    pub namespace: Option<String>,
    pub connection_id: u64,
    pub format: Format,
    pub limits: Limits,
}

/// A frame the shaper refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub sequence: u64,
    pub reason: String,
}

/// What one call produced.
#[derive(Debug, Default)]
pub struct Output {
    pub batches: Vec<Batch>,
    pub rejections: Vec<Rejection>,
}

/// The namespace of a source's records: the configured one, else `websocket.{host}`.
pub fn namespace_of(source: &Source) -> String {
    match &source.namespace {
        Some(namespace) => namespace.clone(),
        None if source.host.is_empty() => "websocket.unknown".to_owned(),
        None => format!("websocket.{}", source.host),
    }
}

#[derive(Debug)]
pub struct Shaper {
    namespace: String,
    encoder: Encoder,
    batcher: Batcher,
}

impl Shaper {
    pub fn new(source: &Source, options: &Options) -> Self {
        let namespace = namespace_of(source);
        let mut encoder = Encoder::new(&namespace, &source.url, source.format, options.include_meta);
        encoder.set_connection(source.connection_id);
        Self { namespace, encoder, batcher: Batcher::new(source.limits) }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn on_connect(&mut self, connection_id: u64) {
        self.encoder.set_connection(connection_id);
    }

    pub fn push<'a>(&mut self, frames: impl IntoIterator<Item = Frame<'a>>, now_ms: u64) -> Output {
        let mut output = Output::default();
        for frame in frames {
            let encoder = &self.encoder;
            let added = self
                .batcher
                .add(frame.sequence, frame.received_at_ms, &mut output.batches, |out| encoder.encode(&frame, out));
            if let Err(reason) = added {
                output.rejections.push(Rejection { sequence: frame.sequence, reason });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::FrameKind;

    fn source(host: &str, namespace: Option<&str>) -> Source {
        Source {
            url: format!("ws://{host}/feed"),
            host: host.to_owned(),
            namespace: namespace.map(str::to_owned),
            connection_id: 1,
            format: Format::Json,
            limits: Limits { max_records: 2, max_bytes: 1 << 20, max_age_ms: 100 },
        }
    }

    fn text(sequence: u64, payload: &str) -> Frame<'_> {
        Frame { sequence, kind: FrameKind::Text, payload: payload.as_bytes(), received_at_ms: 10 }
    }

    #[test]
    fn namespace_is_websocket_dot_host() {
        assert_eq!(namespace_of(&source("stream.example.com", None)), "websocket.stream.example.com");
    }

    #[test]
    fn namespace_is_unknown_without_a_host() {
        assert_eq!(namespace_of(&source("", None)), "websocket.unknown");
    }

    #[test]
    fn configured_namespace_wins() {
        assert_eq!(namespace_of(&source("h", Some("trades"))), "trades");
    }

    #[test]
    fn every_frame_is_in_a_batch_or_a_rejection() {
        let mut shaper = Shaper::new(&source("h", None), &Options::default());
        let frames = [text(0, "1"), text(1, "{bad"), text(2, "2"), text(3, "3")];
        let out = shaper.push(frames, 10);
        assert_eq!(out.rejections, [Rejection { sequence: 1, reason: out.rejections[0].reason.clone() }]);
        assert!(out.rejections[0].reason.starts_with("invalid JSON"));
        assert_eq!(out.batches.len(), 1);
        assert_eq!(out.batches[0].record_sequences, [0, 2]);
        let flushed = shaper.flush();
        assert_eq!(flushed.batches[0].record_sequences, [3]);
        assert!(shaper.flush().batches.is_empty());
    }

    #[test]
    fn tick_closes_old_batches_only() {
        let mut shaper = Shaper::new(&source("h", None), &Options::default());
        assert!(shaper.push([text(0, "1")], 10).batches.is_empty());
        assert!(shaper.tick(50).batches.is_empty());
        assert_eq!(shaper.tick(110).batches[0].record_sequences, [0]);
    }

    #[test]
    fn records_carry_the_current_connection() {
        let mut shaper = Shaper::new(&source("h", None), &Options::default());
        shaper.on_connect(9);
        shaper.push([text(0, "1")], 10);
        let batch = &shaper.flush().batches[0];
        let record: serde_json::Value = serde_json::from_slice(&batch.lines).unwrap();
        assert_eq!(record["meta"]["connection_id"], 9);
        assert_eq!(record["namespace"], "websocket.h");
    }
}
