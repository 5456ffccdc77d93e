//! The WIT glue: converts between the generated types and the plain modules.

use std::cell::RefCell;

use crate::batch::{Batch, Limits};
use crate::shape::{Format, Frame, FrameKind};
use crate::{options, shaper};

wit_bindgen::generate!({ path: "../wit", world: "transform" });

use exports::skippr::connector::shaper::{Guest, GuestShaper, Shaper as ShaperHandle};
use skippr::connector::types as wit;

struct Component;

impl Guest for Component {
    type Shaper = ShaperResource;
}

/// wit-bindgen resources are used through `&self`, hence the cell.
struct ShaperResource(RefCell<shaper::Shaper>);

impl GuestShaper for ShaperResource {
    fn init(source: wit::SourceInfo, options: String) -> Result<ShaperHandle, String> {
        let options = options::Options::parse(&options)?;
        let shaper = shaper::Shaper::new(&source_of(source), &options);
        Ok(ShaperHandle::new(ShaperResource(RefCell::new(shaper))))
    }

    fn push(&self, frames: wit::Frames, now_ms: u64) -> wit::Output {
        let mut shaper = self.0.borrow_mut();
        let output = shaper.push(unpack(&frames), now_ms);
        output_of(shaper.namespace(), output)
    }

    fn tick(&self, now_ms: u64) -> wit::Output {
        let mut shaper = self.0.borrow_mut();
        let output = shaper.tick(now_ms);
        output_of(shaper.namespace(), output)
    }

    fn on_connect(&self, connection_id: u64) -> Vec<wit::Outbound> {
        self.0.borrow_mut().on_connect(connection_id);
        Vec::new()
    }

    fn flush(&self) -> wit::Output {
        let mut shaper = self.0.borrow_mut();
        let output = shaper.flush();
        output_of(shaper.namespace(), output)
    }
}

export!(Component);

/// Borrows each frame out of the packed list. Inconsistent lists are a host bug: trap.
fn unpack(frames: &wit::Frames) -> impl Iterator<Item = Frame<'_>> {
    let count = frames.ends.len();
    assert!(
        frames.kinds.len() == count && frames.sequences.len() == count && frames.received_at_ms.len() == count,
        "host sent frame lists of different lengths"
    );
    (0..count).map(move |i| {
        let start = if i == 0 { 0 } else { frames.ends[i - 1] as usize };
        let end = frames.ends[i] as usize;
        Frame {
            sequence: frames.sequences[i],
            kind: match frames.kinds[i] {
                wit::FrameKind::Text => FrameKind::Text,
                wit::FrameKind::Binary => FrameKind::Binary,
            },
            payload: frames.payloads.get(start..end).expect("host sent frame ends outside the payloads"),
            received_at_ms: frames.received_at_ms[i],
        }
    })
}

fn source_of(source: wit::SourceInfo) -> shaper::Source {
    shaper::Source {
        url: source.url,
        host: source.host,
        namespace: source.namespace,
        connection_id: source.connection_id,
        format: match source.format {
            wit::FrameFormat::Json => Format::Json,
            wit::FrameFormat::Text => Format::Text,
            wit::FrameFormat::Raw => Format::Raw,
        },
        limits: Limits {
            max_records: source.limits.max_records,
            max_bytes: source.limits.max_bytes,
            max_age_ms: source.limits.max_age_ms,
        },
    }
}

fn output_of(namespace: &str, output: shaper::Output) -> wit::Output {
    let batch_of = |batch: Batch| wit::Batch {
        namespace: namespace.to_owned(),
        lines: batch.lines,
        record_ends: batch.record_ends,
        record_sequences: batch.record_sequences,
    };
    wit::Output {
        batches: output.batches.into_iter().map(batch_of).collect(),
        rejections: output
            .rejections
            .into_iter()
            .map(|r| wit::Rejection { sequence: r.sequence, reason: r.reason })
            .collect(),
        outbound: Vec::new(),
    }
}
