//! The WIT glue: generated bindings, and conversions between their types and the SDK's.

use std::cell::RefCell;

use crate::{Format, Frame, FrameKind, Limits, Mode, Outbound, Output, Shaper, Source, Transform};

wit_bindgen::generate!({ path: "../wit", world: "transform", pub_export_macro: true });

use exports::skippr::connector::shaper::{GuestShaper, Shaper as ShaperHandle};
use skippr::connector::types as wit;

/// The exported resource: one per source. wit-bindgen resources are used through `&self`,
/// hence the cell.
pub struct Resource<T>(RefCell<Shaper<T>>);

impl<T: Transform> GuestShaper for Resource<T> {
    fn init(source: wit::SourceInfo, options: String) -> Result<ShaperHandle, String> {
        let shaper = Shaper::<T>::init(&source_of(source), &options)?;
        Ok(ShaperHandle::new(Self(RefCell::new(shaper))))
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
        self.0.borrow_mut().on_connect(connection_id).into_iter().map(outbound_of).collect()
    }

    fn flush(&self) -> wit::Output {
        let mut shaper = self.0.borrow_mut();
        let output = shaper.flush();
        output_of(shaper.namespace(), output)
    }
}

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

fn source_of(source: wit::SourceInfo) -> Source {
    Source {
        url: source.url,
        host: source.host,
        namespace: source.namespace,
        mode: match source.mode {
            wit::Mode::Stream => Mode::Stream,
            wit::Mode::Batch => Mode::Batch,
        },
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

fn outbound_of(message: Outbound) -> wit::Outbound {
    match message {
        Outbound::Text(text) => wit::Outbound::Text(text),
        Outbound::Binary(bytes) => wit::Outbound::Binary(bytes),
    }
}

fn output_of(namespace: &str, output: Output) -> wit::Output {
    wit::Output {
        batches: output
            .batches
            .into_iter()
            .map(|batch| wit::Batch {
                namespace: namespace.to_owned(),
                lines: batch.lines,
                record_ends: batch.record_ends,
                record_sequences: batch.record_sequences,
            })
            .collect(),
        rejections: output
            .rejections
            .into_iter()
            .map(|rejection| wit::Rejection { sequence: rejection.sequence, reason: rejection.reason })
            .collect(),
        dropped: output.dropped,
        outbound: Vec::new(),
    }
}
