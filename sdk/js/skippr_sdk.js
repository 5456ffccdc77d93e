// Write a Skippr transform in JavaScript.
//
// Extend `Transform`, implement `shape`, and export the `shaper` interface:
//
//     import { Transform, exportTransform } from "./skippr_sdk.js";
//     class Upper extends Transform {
//       shape(frame, records) { records.push({ text: frame.text().toUpperCase() }); }
//     }
//     export const shaper = exportTransform(Upper);
//
// Build with jco (its bundler inlines this module):
//
//     jco componentize transform.js --bundle --wit wit --world-name transform --disable all -o t.wasm
//
// `--disable all` keeps every WASI import out, as the host requires. Sequence numbers and
// times are BigInts (WIT u64) and stay exact.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Throw from `shape` to send the frame to the dead-letter output with this reason. */
export class Reject extends Error {}

/** One received frame. */
export class Frame {
  constructor(sequence, binary, payload, receivedAtMs) {
    this.sequence = sequence;
    this.binary = binary;
    this.payload = payload;
    this.receivedAtMs = receivedAtMs;
  }

  text() {
    try {
      return decoder.decode(this.payload);
    } catch (err) {
      throw new Reject(`text frame is not valid UTF-8: ${err.message}`);
    }
  }

  json() {
    try {
      return JSON.parse(this.text());
    } catch (err) {
      if (err instanceof Reject) throw err;
      throw new Reject(`invalid JSON: ${err.message}`);
    }
  }
}

/** Where `shape` puts a frame's records: none drops the frame. */
class Records {
  constructor(envelope, frame) {
    this.envelope = envelope;
    this.frame = frame;
    this.lines = [];
  }

  push(value, key) {
    const { envelope, frame } = this;
    // Built by hand so u64 fields print as exact integers; JSON.stringify escapes line breaks.
    let line = `{"namespace":${JSON.stringify(envelope.namespace)}`;
    if (key !== undefined) line += `,"key":${JSON.stringify(key)}`;
    line += `,"value":${JSON.stringify(value)}`;
    if (envelope.includeMeta) {
      line +=
        `,"meta":{"url":${JSON.stringify(envelope.url)},"connection_id":${envelope.connectionId}` +
        `,"sequence":${frame.sequence},"received_at_ms":${frame.receivedAtMs}` +
        `,"kind":"${frame.binary ? "binary" : "text"}"}`;
    }
    this.lines.push(encoder.encode(`${line}}\n`));
  }
}

/** Extend this. `options` is the object from `transform.options` in skippr.yaml. */
export class Transform {
  constructor(source, options) {
    this.source = source;
    this.options = options;
  }

  get includeMeta() {
    return true;
  }

  shape(_frame, _records) {
    throw new Error("a transform must implement shape(frame, records)");
  }

  /** Messages (strings or Uint8Arrays) to send after every (re)connect. */
  onConnect(_connectionId) {
    return [];
  }
}

const output = (batches = [], rejections = [], dropped = []) => ({ batches, rejections, dropped, outbound: [] });

/** The `shaper` interface object jco expects as the module's `shaper` export. */
export function exportTransform(TransformClass) {
  class Shaper {
    static init(source, options) {
      let transform;
      try {
        transform = new TransformClass(source, options.trim() ? JSON.parse(options) : {});
      } catch (err) {
        throw `invalid transform options: ${err.message}`;
      }
      const shaper = new Shaper();
      shaper.transform = transform;
      shaper.limits = source.limits;
      const host = source.host ? `websocket.${source.host}` : "websocket.unknown";
      shaper.envelope = {
        namespace: source.namespace ?? host,
        url: source.url,
        connectionId: source.connectionId,
        includeMeta: transform.includeMeta,
      };
      shaper.open = { lines: [], sequences: [], bytes: 0, openedAt: 0n };
      return shaper;
    }

    push(frames, nowMs) {
      const batches = [];
      const rejections = [];
      const dropped = [];
      let start = 0;
      for (let i = 0; i < frames.ends.length; i++) {
        const end = frames.ends[i];
        const binary = frames.kinds[i] === "binary";
        const frame = new Frame(frames.sequences[i], binary, frames.payloads.subarray(start, end), frames.receivedAtMs[i]);
        start = end;
        const records = new Records(this.envelope, frame);
        try {
          this.transform.shape(frame, records);
        } catch (err) {
          if (!(err instanceof Reject)) throw err;
          rejections.push({ sequence: frame.sequence, reason: err.message });
          continue;
        }
        if (records.lines.length === 0) dropped.push(frame.sequence);
        else this.add(records.lines, frame, batches);
      }
      this.closeExpired(nowMs, batches);
      return output(batches, rejections, dropped);
    }

    tick(nowMs) {
      const batches = [];
      this.closeExpired(nowMs, batches);
      return output(batches);
    }

    onConnect(connectionId) {
      this.envelope.connectionId = connectionId;
      return this.transform
        .onConnect(connectionId)
        .map((message) => (typeof message === "string" ? { tag: "text", val: message } : { tag: "binary", val: message }));
    }

    flush() {
      const batches = [];
      this.close(batches);
      return output(batches);
    }

    /**
     * Adds a frame's records to the open batch: they never straddle two batches, so a
     * delivered batch settles whole frames. It closes by count, size or age.
     */
    add(lines, frame, batches) {
      const open = this.open;
      const size = lines.reduce((total, line) => total + line.length, 0);
      if (open.lines.length > 0 && open.bytes + size > this.limits.maxBytes) this.close(batches);
      if (open.lines.length === 0) open.openedAt = frame.receivedAtMs;
      for (const line of lines) {
        open.lines.push(line);
        open.sequences.push(frame.sequence);
      }
      open.bytes += size;
      if (open.lines.length >= Math.max(this.limits.maxRecords, 1) || open.bytes >= this.limits.maxBytes) {
        this.close(batches);
      }
    }

    closeExpired(nowMs, batches) {
      if (this.open.lines.length > 0 && nowMs - this.open.openedAt >= this.limits.maxAgeMs) this.close(batches);
    }

    close(batches) {
      const { lines, sequences, bytes } = this.open;
      if (lines.length === 0) return;
      const joined = new Uint8Array(bytes);
      const recordEnds = [];
      let offset = 0;
      for (const line of lines) {
        joined.set(line, offset);
        offset += line.length;
        recordEnds.push(offset);
      }
      batches.push({ namespace: this.envelope.namespace, lines: joined, recordEnds, recordSequences: sequences });
      this.open = { lines: [], sequences: [], bytes: 0, openedAt: 0n };
    }
  }
  return { Shaper };
}
