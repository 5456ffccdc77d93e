"""Runs the transform natively in CPython, against bindings generated from wit/.

    python3 -m unittest test_shaper
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).parent
BINDINGS = tempfile.mkdtemp(prefix="skippr-bindings-")
subprocess.run(["componentize-py", "-d", str(HERE / "wit"), "-w", "transform", "bindings", BINDINGS], check=True)
sys.path[:0] = [BINDINGS, str(HERE)]

from componentize_py_types import Err  # noqa: E402
from wit_world.imports import types  # noqa: E402

import shaper  # noqa: E402

SOURCE = types.SourceInfo("ws://feed.test/v1", "feed.test", None, types.Mode.STREAM, 1, types.FrameFormat.JSON,
                          types.BatchLimits(100, 1 << 20, 1000))


def frames(*payloads):
    data, ends = b"", []
    for payload in payloads:
        data += payload.encode()
        ends.append(len(data))
    count = len(payloads)
    return types.Frames(data, ends, [types.FrameKind.TEXT] * count, list(range(count)), [0] * count)


class ShaperTest(unittest.TestCase):
    def test_keeps_json_drops_listed_types_and_rejects_the_rest(self):
        instance = shaper.Shaper.init(SOURCE, json.dumps({"drop_types": ["heartbeat"]}))
        out = instance.push(frames('{"type":"trade","price":"1.5"}', '{"type":"heartbeat"}', "{oops"), 0)
        self.assertEqual(out.dropped, [1])
        self.assertTrue(out.rejections[0].reason.startswith("invalid JSON"))
        batch = instance.flush().batches[0]
        self.assertEqual(batch.record_sequences, [0])
        self.assertEqual(json.loads(batch.lines)["value"]["price"], "1.5")

    def test_a_misspelt_option_is_named(self):
        with self.assertRaises(Err) as refused:
            shaper.Shaper.init(SOURCE, '{"drop_type": []}')
        self.assertIn("drop_type", str(refused.exception.value))


if __name__ == "__main__":
    unittest.main()
