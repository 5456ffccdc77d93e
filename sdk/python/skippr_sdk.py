"""Write a Skippr transform in Python.

Subclass `Transform`, implement `shape`, and export it from a module named `shaper.py`:

    from skippr_sdk import Transform, export

    class Upper(Transform):
        def shape(self, frame, records):
            records.push({"text": frame.text().upper()})

    Shaper = export(Upper)

Build with componentize-py, naming this module as the app (it holds the interface class):

    componentize-py -d wit -w transform componentize --stub-wasi -p . -p <sdk> skippr_sdk -o t.wasm

`--stub-wasi` keeps every WASI import out, as the host requires. It also means no file
system at run time: import every module you need at the top of a file, never lazily.
"""

import json

from componentize_py_types import Err
from wit_world.imports import types


class Shaper:
    """The exported `shaper` interface; the resource itself comes from `export`."""


class Reject(Exception):
    """Raise from `shape` to send the frame to the dead-letter output with this reason."""


class Frame:
    """One received frame."""

    __slots__ = ("sequence", "binary", "payload", "received_at_ms")

    def __init__(self, sequence, binary, payload, received_at_ms):
        self.sequence = sequence
        self.binary = binary
        self.payload = payload
        self.received_at_ms = received_at_ms

    def text(self):
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError as err:
            raise Reject(f"text frame is not valid UTF-8: {err}") from None

    def json(self):
        try:
            return json.loads(self.text())
        except ValueError as err:
            raise Reject(f"invalid JSON: {err}") from None


class Records:
    """Where `shape` puts a frame's records: none drops the frame."""

    def __init__(self, envelope, frame):
        self._envelope = envelope
        self._frame = frame
        self.lines = []

    def push(self, value, key=None):
        record = {"namespace": self._envelope.namespace}
        if key is not None:
            record["key"] = key
        record["value"] = value
        if self._envelope.include_meta:
            frame = self._frame
            record["meta"] = {
                "url": self._envelope.url,
                "connection_id": self._envelope.connection_id,
                "sequence": frame.sequence,
                "received_at_ms": frame.received_at_ms,
                "kind": "binary" if frame.binary else "text",
            }
        # json.dumps escapes line breaks inside strings: one record, one line.
        self.lines.append((json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8"))


class Transform:
    """Subclass this. `options` is the dict from `transform.options` in skippr.yaml."""

    include_meta = True

    def __init__(self, source, options):
        self.source = source
        self.options = options

    def shape(self, frame, records):
        raise NotImplementedError

    def on_connect(self, connection_id):
        """Messages (str or bytes) to send after every (re)connect."""
        return []


class _Envelope:
    def __init__(self, source, include_meta):
        self.namespace = source.namespace or (f"websocket.{source.host}" if source.host else "websocket.unknown")
        self.url = source.url
        self.connection_id = source.connection_id
        self.include_meta = include_meta


def _output(batches=(), rejections=(), dropped=()):
    return types.Output(list(batches), list(rejections), list(dropped), [])


def export(transform_class):
    """The resource class componentize-py expects in `shaper.py` as `Shaper`."""

    class Resource:
        @classmethod
        def init(cls, source, options):
            try:
                parsed = json.loads(options) if options.strip() else {}
                transform = transform_class(source, parsed)
            except (ValueError, TypeError, KeyError) as err:
                raise Err(f"invalid transform options: {err}") from None
            resource = cls()
            resource._transform = transform
            resource._envelope = _Envelope(source, transform.include_meta)
            resource._limits = source.limits
            resource._lines, resource._sequences, resource._bytes, resource._opened_at = [], [], 0, 0
            return resource

        def push(self, frames, now_ms):
            batches, rejections, dropped = [], [], []
            start = 0
            for i, end in enumerate(frames.ends):
                frame = Frame(frames.sequences[i], frames.kinds[i] == types.FrameKind.BINARY,
                              frames.payloads[start:end], frames.received_at_ms[i])
                start = end
                records = Records(self._envelope, frame)
                try:
                    self._transform.shape(frame, records)
                except Reject as reason:
                    rejections.append(types.Rejection(frame.sequence, str(reason)))
                    continue
                if records.lines:
                    self._add(records.lines, frame, batches)
                else:
                    dropped.append(frame.sequence)
            self._close_expired(now_ms, batches)
            return _output(batches, rejections, dropped)

        def tick(self, now_ms):
            batches = []
            self._close_expired(now_ms, batches)
            return _output(batches)

        def on_connect(self, connection_id):
            self._envelope.connection_id = connection_id
            messages = self._transform.on_connect(connection_id)
            return [types.Outbound_Binary(m) if isinstance(m, bytes) else types.Outbound_Text(m) for m in messages]

        def flush(self):
            batches = []
            self._close(batches)
            return _output(batches)

        def _add(self, lines, frame, batches):
            """Adds a frame's records to the open batch: they never straddle two batches,
            so a delivered batch settles whole frames. It closes by count, size or age."""
            size = sum(len(line) for line in lines)
            if self._lines and self._bytes + size > self._limits.max_bytes:
                self._close(batches)
            if not self._lines:
                self._opened_at = frame.received_at_ms
            self._lines.extend(lines)
            self._sequences.extend([frame.sequence] * len(lines))
            self._bytes += size
            if len(self._lines) >= max(self._limits.max_records, 1) or self._bytes >= self._limits.max_bytes:
                self._close(batches)

        def _close_expired(self, now_ms, batches):
            if self._lines and now_ms - self._opened_at >= self._limits.max_age_ms:
                self._close(batches)

        def _close(self, batches):
            if not self._lines:
                return
            ends, total = [], 0
            for line in self._lines:
                total += len(line)
                ends.append(total)
            batches.append(types.Batch(self._envelope.namespace, b"".join(self._lines), ends, self._sequences))
            self._lines, self._sequences, self._bytes = [], [], 0

    Resource.__name__ = "Shaper"
    return Resource
