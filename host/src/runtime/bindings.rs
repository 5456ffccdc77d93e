//! The generated bindings of the `transform` world, kept private to the runtime, and their
//! conversions to the host's own types.

use super::types::{self, FrameKind};

mod generated {
    wasmtime::component::bindgen!({ path: "../wit", world: "transform" });
}

pub(super) use generated::skippr::connector::logging::{Host as LoggingHost, Level};
pub(super) use generated::skippr::connector::types::{Frames, Host as TypesHost};
pub(super) use generated::{Transform as Bindings, TransformPre as BindingsPre};

use generated::skippr::connector::types as wit;

impl From<FrameKind> for wit::FrameKind {
    fn from(kind: FrameKind) -> Self {
        match kind {
            FrameKind::Text => Self::Text,
            FrameKind::Binary => Self::Binary,
        }
    }
}

impl From<wit::FrameKind> for FrameKind {
    fn from(kind: wit::FrameKind) -> Self {
        match kind {
            wit::FrameKind::Text => Self::Text,
            wit::FrameKind::Binary => Self::Binary,
        }
    }
}

pub(super) fn source_info(source: &types::SourceInfo) -> wit::SourceInfo {
    wit::SourceInfo {
        url: source.url.clone(),
        host: source.host.clone(),
        namespace: source.namespace.clone(),
        mode: match source.mode {
            types::Mode::Stream => wit::Mode::Stream,
            types::Mode::Batch => wit::Mode::Batch,
        },
        connection_id: source.connection_id,
        format: match source.format {
            types::Format::Json => wit::FrameFormat::Json,
            types::Format::Text => wit::FrameFormat::Text,
            types::Format::Raw => wit::FrameFormat::Raw,
        },
        limits: wit::BatchLimits {
            max_records: source.limits.max_records,
            max_bytes: source.limits.max_bytes,
            max_age_ms: source.limits.max_age_ms,
        },
    }
}

pub(super) fn output(output: wit::Output) -> types::Output {
    types::Output {
        batches: output
            .batches
            .into_iter()
            .map(|batch| types::Batch {
                namespace: batch.namespace,
                lines: batch.lines,
                record_ends: batch.record_ends,
                record_sequences: batch.record_sequences,
            })
            .collect(),
        rejections: output
            .rejections
            .into_iter()
            .map(|rejection| types::Rejection { sequence: rejection.sequence, reason: rejection.reason })
            .collect(),
        dropped: output.dropped,
        outbound: outbound(output.outbound),
    }
}

pub(super) fn outbound(messages: Vec<wit::Outbound>) -> Vec<types::Outbound> {
    messages
        .into_iter()
        .map(|message| match message {
            wit::Outbound::Text(text) => types::Outbound::Text(text),
            wit::Outbound::Binary(bytes) => types::Outbound::Binary(bytes),
        })
        .collect()
}
