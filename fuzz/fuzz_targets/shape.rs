//! The default shaper on arbitrary frames, formats and options: every frame ends up in
//! exactly one of a record, a rejection or a drop, and every record is one line of valid
//! JSON. The first byte picks the format and the frame kinds; the rest is split into frames
//! at 0xFF bytes; a leading `{…}\0` is taken as the options.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use skippr_guest::DefaultShaper;
use skippr_sdk::{Format, Frame, FrameKind, Limits, Shaper, Source};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (options, rest) = match rest.iter().position(|&b| b == 0) {
        Some(end) if rest.first() == Some(&b'{') => {
            (std::str::from_utf8(&rest[..end]).unwrap_or("{}"), &rest[end + 1..])
        }
        _ => ("", rest),
    };
    let format = [Format::Json, Format::Text, Format::Raw][usize::from(mode % 3)];
    let limits = Limits { max_records: u32::from(mode >> 4) + 1, max_bytes: 512, max_age_ms: 5 };
    let source = Source { url: "wss://h/\"x".into(), host: "h".into(), format, limits, ..Source::default() };
    let Ok(mut shaper) = Shaper::<DefaultShaper>::init(&source, options) else { return };
    let frames: Vec<Frame<'_>> = rest
        .split(|&b| b == 0xff)
        .zip(0u64..)
        .map(|(payload, sequence)| Frame {
            sequence,
            kind: if mode & 8 != 0 && sequence % 2 == 1 { FrameKind::Binary } else { FrameKind::Text },
            payload,
            received_at_ms: sequence,
        })
        .collect();
    let mut out = shaper.push(frames.iter().copied(), 3);
    let flushed = shaper.flush();
    out.batches.extend(flushed.batches);
    let mut accounted: Vec<u64> =
        out.rejections.iter().map(|r| r.sequence).chain(out.dropped.iter().copied()).collect();
    for batch in &out.batches {
        let mut start = 0;
        for (&end, &sequence) in batch.record_ends.iter().zip(&batch.record_sequences) {
            let line = &batch.lines[start..end as usize];
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line per record");
            assert_eq!(line.last(), Some(&b'\n'));
            serde_json::from_slice::<IgnoredAny>(line).expect("every record is valid JSON");
            accounted.push(sequence);
            start = end as usize;
        }
    }
    accounted.sort_unstable();
    assert_eq!(accounted, (0..frames.len() as u64).collect::<Vec<_>>(), "every frame exactly once");
});
