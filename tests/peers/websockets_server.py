"""An independent WebSocket peer for skippr's tests, built on Python's `websockets`.

Serves one client on 127.0.0.1 (port chosen by the OS, printed on stdout): sends N
messages, every 10th of them not JSON and every 7th binary, then closes normally.
"""

import asyncio
import json
import sys

from websockets.asyncio.server import serve


def message(n):
    if n % 10 == 9:
        return "this is not json #%d" % n
    if n % 7 == 6:
        return bytes([n % 256, 0, 255])
    return json.dumps({"peer": "python", "n": n, "symbol": "ETH-USD", "price": str(3400 + n)})


async def main(count):
    done = asyncio.Event()

    async def handler(websocket):
        for n in range(count):
            await websocket.send(message(n))
        await websocket.close(1000, "peer done")
        done.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print("ws://127.0.0.1:%d/python" % port, flush=True)
        await asyncio.wait_for(done.wait(), timeout=60)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
