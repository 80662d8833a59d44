"""Interoperability with a WebSocket client nobody here wrote: Debian's
python3-websockets (10.x asyncio client) against ws://host:port/echo of the real
build/wshub: text and binary echo at the frame-length boundaries, fragmented
messages, ping/pong, clean close with 1000, and 100 concurrent clients."""
import asyncio

import pytest

websockets = pytest.importorskip("websockets")

SIZES = [0, 125, 126, 65535, 65536, 65537, 1 << 20]


def text_of(nbytes, seed=0):
    """A str whose UTF-8 encoding is exactly nbytes long, with multi-byte characters."""
    unit = "aé€😀"  # 1 + 2 + 3 + 4 bytes
    out = []
    size = 0
    i = seed
    while size + 4 <= nbytes:
        ch = unit[i % 4]
        out.append(ch)
        size += len(ch.encode())
        i += 1
    out.append("x" * (nbytes - size))
    s = "".join(out)
    assert len(s.encode()) == nbytes
    return s


def binary_of(nbytes, seed=0):
    return bytes((i * 31 + seed) & 0xFF for i in range(nbytes))


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(server, **kw):
    return websockets.connect(server.url("/echo"), max_size=None, **kw)


@pytest.mark.parametrize("size", SIZES)
def test_text_echo(server, size):
    msg = text_of(size, seed=size)

    async def go():
        async with connect(server) as ws:
            await ws.send(msg)
            got = await ws.recv()
            assert isinstance(got, str), "text came back as %r" % type(got)
            assert got == msg
        assert ws.close_code == 1000

    run(go())
    assert server.alive()


@pytest.mark.parametrize("size", SIZES)
def test_binary_echo(server, size):
    msg = binary_of(size, seed=size)

    async def go():
        async with connect(server) as ws:
            await ws.send(msg)
            got = await ws.recv()
            assert isinstance(got, bytes), "binary came back as %r" % type(got)
            assert got == msg
        assert ws.close_code == 1000

    run(go())
    assert server.alive()


def test_mixed_sequence_in_order(server):
    msgs = [text_of(n, seed=n) if i % 2 == 0 else binary_of(n, seed=n)
            for i, n in enumerate([5, 0, 126, 300, 70000, 1, 125, 65536])]

    async def go():
        async with connect(server) as ws:
            for m in msgs:
                await ws.send(m)
            for m in msgs:
                got = await ws.recv()
                assert type(got) is type(m)
                assert got == m

    run(go())


def test_fragmented_messages(server):
    text_parts = [text_of(10, 1), text_of(0), text_of(200, 2), text_of(70000, 3)]
    bin_parts = [binary_of(1000, 1), binary_of(70000, 2), binary_of(3, 3)]

    async def go():
        async with connect(server) as ws:
            await ws.send(text_parts)           # a list is sent as one fragmented message
            got = await ws.recv()
            assert got == "".join(text_parts)
            await ws.send(bin_parts)
            got = await ws.recv()
            assert got == b"".join(bin_parts)

    run(go())


def test_ping_pong(server):
    async def go():
        async with connect(server, ping_interval=None) as ws:
            for payload in (b"", b"ping-1", b"x" * 125):
                waiter = await ws.ping(payload)
                await asyncio.wait_for(waiter, 5)
            # Still echoing after the pings.
            await ws.send("after ping")
            assert await ws.recv() == "after ping"

    run(go())


def test_ping_between_fragments(server):
    """A ping in the middle of a fragmented message is answered, and the message
    still arrives whole."""
    async def parts():
        yield b"first-"
        waiter = await ws_holder[0].ping(b"mid")
        pongs.append(waiter)
        yield b"second"

    ws_holder, pongs = [], []

    async def go():
        async with connect(server, ping_interval=None) as ws:
            ws_holder.append(ws)
            await ws.send(parts())
            assert await ws.recv() == b"first-second"
            await asyncio.wait_for(pongs[0], 5)

    run(go())


def test_clean_close_1000(server):
    async def go():
        ws = await connect(server)
        await ws.send("bye")
        assert await ws.recv() == "bye"
        await ws.close()
        assert ws.close_code == 1000
        return ws

    run(go())
    assert server.alive()

    async def again():
        async with connect(server) as ws:
            await ws.send(b"still up")
            assert await ws.recv() == b"still up"

    run(again())


def test_close_with_reason(server):
    async def go():
        ws = await connect(server)
        await ws.close(code=1000, reason="done here")
        assert ws.close_code == 1000

    run(go())
    assert server.alive()


def test_100_concurrent_clients(server):
    n = 100

    async def client(i):
        async with connect(server, open_timeout=20) as ws:
            for j in range(3):
                t = "client %d message %d %s" % (i, j, "é" * (i % 7))
                await ws.send(t)
                b = binary_of(100 + i * 13 + j, seed=i)
                await ws.send(b)
                assert await ws.recv() == t
                assert await ws.recv() == b
        return ws.close_code

    async def go():
        codes = await asyncio.gather(*(client(i) for i in range(n)))
        assert codes == [1000] * n

    run(go(), timeout=90)
    assert server.alive()
