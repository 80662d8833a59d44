#!/usr/bin/python3
"""Peer server for wshub's benchmarks (bench/run.sh), on Debian's
python3-websockets (10.x, asyncio). Run with /usr/bin/python3 server.py PORT.

Listens on 127.0.0.1:PORT. /echo sends every message back to its sender with
the same type; any other path is a room named by the path that relays every
message (same type, same bytes) to all its members, the sender included. One
thread, no compression, messages up to 16 MiB, no keepalive pings of its own
(it answers the client's), no per-message logging. The same behaviour as
bench/peers/node and bench/peers/lws.
"""
import asyncio
import signal
import sys

import websockets

ROOMS = {}  # path -> set of connections


async def handler(ws, path):
    path = path.split("?", 1)[0]
    if path == "/echo":
        async for message in ws:
            await ws.send(message)
        return
    room = ROOMS.setdefault(path, set())
    room.add(ws)
    try:
        async for message in ws:
            # broadcast() writes to every open member without waiting for it
            # to drain (like the C and Node peers, which queue per member).
            websockets.broadcast(room, message)
    finally:
        room.discard(ws)
        if not room and ROOMS.get(path) is room:
            del ROOMS[path]


async def main(port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    # max_queue=None: incoming messages are never held back for want of
    # queue room (the handlers never block for long: broadcast() does not wait).
    async with websockets.serve(handler, "127.0.0.1", port, compression=None,
                                max_size=16 * 1024 * 1024, max_queue=None,
                                ping_interval=None, backlog=4096):
        print("python websockets peer listening on 127.0.0.1:%d" % port, file=sys.stderr)
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9003))
