// Runs the transform natively in Node: `npm test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { shaper } from "./transform.js";

const source = {
  url: "ws://feed.test/v1",
  host: "feed.test",
  namespace: undefined,
  mode: "stream",
  connectionId: 1n,
  format: "json",
  limits: { maxRecords: 100, maxBytes: 1 << 20, maxAgeMs: 1000n },
};

function frames(...payloads) {
  const encoded = payloads.map((payload) => new TextEncoder().encode(payload));
  const data = new Uint8Array(encoded.reduce((sum, bytes) => sum + bytes.length, 0));
  const ends = [];
  let offset = 0;
  for (const bytes of encoded) {
    data.set(bytes, offset);
    offset += bytes.length;
    ends.push(offset);
  }
  const sequences = payloads.map((_, i) => BigInt(i));
  return { payloads: data, ends, kinds: payloads.map(() => "text"), sequences, receivedAtMs: payloads.map(() => 0n) };
}

test("keeps JSON, drops listed types, rejects the rest", () => {
  const instance = shaper.Shaper.init(source, JSON.stringify({ drop_types: ["heartbeat"] }));
  const out = instance.push(frames('{"type":"trade","price":"1.5"}', '{"type":"heartbeat"}', "{oops"), 0n);
  assert.deepEqual(out.dropped, [1n]);
  assert.match(out.rejections[0].reason, /^invalid JSON/);
  const batch = instance.flush().batches[0];
  assert.deepEqual(batch.recordSequences, [0n]);
  assert.equal(JSON.parse(new TextDecoder().decode(batch.lines)).value.price, "1.5");
});

test("a misspelt option is named", () => {
  assert.throws(() => shaper.Shaper.init(source, '{"drop_type": []}'), /drop_type/);
});
