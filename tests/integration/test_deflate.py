"""permessage-deflate (RFC 7692) against the real build/wshub started with
--deflate, modelled on Autobahn|Testsuite groups 12 (compressed messages of
every size, text and binary, whole and fragmented) and 13 (every parameter
combination of the offer), plus hostile input (zip bombs, RSV1 where it may
not be, corrupt streams, compressed control frames), interoperability with
python3-websockets and Node's ws (both compress by default), and chat rooms
where members with and without deflate get every broadcast, compressed once
per broadcast (counted in /stats). Also the idle memory of a connection with
deflate negotiated against one without.

The raw client is wsraw.py (it allows RSV1 once permessage-deflate is
accepted); compression on the test side is Python's zlib. Owns this file."""
import asyncio
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request
import zlib

import pytest

from conftest import ROOT
from wsraw import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                   WSClient, build_frame, close_payload)

websockets = pytest.importorskip("websockets")
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory, PerMessageDeflate)

TAIL = b"\x00\x00\xff\xff"
FAIL_TIMEOUT = 3.0
MIB = 1 << 20
ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
NODE_DIR = os.path.join(ROOT, "bench", "peers", "node")


# --------------------------------------------------------------------------
# helpers

def deflate(data, wbits=15, level=6):
    """data compressed on its own as a permessage-deflate sender does: raw
    deflate, a sync flush, its 0x00 0x00 0xff 0xff tail dropped. zlib has no
    8-bit raw window; 9 reaches back at most 250 bytes, within 256."""
    c = zlib.compressobj(level, zlib.DEFLATED, -max(wbits, 9))
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def inflate(data, wbits=15):
    """A compressed message's payload inflated in a window of wbits (8..15).
    zlib also reaches back into the output of the call at hand, so below 15
    bits the output is taken 16 bytes at a time: then a reference further
    back than the window fails ("invalid distance too far back")."""
    d = zlib.decompressobj(-wbits)
    if wbits == 15:
        return d.decompress(data + TAIL)
    out, rest = bytearray(), data + TAIL
    while rest:
        out += d.decompress(rest, 16)
        rest = d.unconsumed_tail
    return bytes(out + d.flush())


def make_text(n, seed=0):
    """n bytes of chat-like UTF-8 that compresses well."""
    words = ["hello", "w\u00f6rld", "\u03ba\u1f79\u03c3\u03bc\u03b5", "chat", "room", "\U0001F600", "message",
             "{\"type\":\"message\"}"]
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        out += (rnd.choice(words) + " ").encode()
    data = bytes(out[:n])
    while True:
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError as e:
            data = data[:e.start] + b"x" * (n - e.start)


def make_binary(n, seed=0):
    """n bytes that compress: a random 64-byte block, repeated."""
    block = random.Random(seed).randbytes(64)
    return (block * (n // 64 + 1))[:n]


def make_noise(n, seed=0):
    return random.Random(seed).randbytes(n)


def connect(server, offer="permessage-deflate", path="/echo"):
    return WSClient.connect(server.host, server.port, path, extensions=offer)


def message_frames(opcode, payload, compressed=True, frag=None):
    """The frames of one message: RSV1 on the first when compressed; the
    payload split into fragments of `frag` bytes when given."""
    rsv = 4 if compressed else 0
    if not frag or len(payload) <= frag:
        return build_frame(opcode, payload, rsv=rsv)
    parts = [payload[i:i + frag] for i in range(0, len(payload), frag)]
    return b"".join(build_frame(opcode if i == 0 else OP_CONT, p, fin=i == len(parts) - 1,
                                rsv=rsv if i == 0 else 0)
                    for i, p in enumerate(parts))


def recv_data(ws, wbits=15, timeout=10.0):
    """The next message, inflated when the server compressed it: (message, bytes)."""
    m = ws.recv_message(timeout)
    return m, inflate(m.data, wbits) if m.compressed else m.data


def echo(ws, opcode, payload, compressed=True, frag=None, wbits=15, timeout=30.0):
    """Sends a message (compressed or not) while reading its echo; checks the
    echo's bytes and returns the message as received."""
    data = message_frames(opcode, deflate(payload) if compressed else payload, compressed, frag)
    sender = ws.send_background(data)
    try:
        m, got = recv_data(ws, wbits, timeout)
    finally:
        sender.join(timeout)
    assert sender.error is None, sender.error
    assert m.opcode == opcode, "expected opcode %d, got %r" % (opcode, m)
    assert got == payload, "echo of %d bytes came back as %d bytes (first difference at %s)" % (
        len(payload), len(got), next((i for i in range(min(len(got), len(payload))) if got[i] != payload[i]),
                                     min(len(got), len(payload))))
    return m


def close_handshake(ws, code=1000):
    ws.send_close(code)
    before, c = ws.expect_close(5.0)
    assert before == [] and c.close_code == code, (before, c)
    ws.wait_tcp_close(5.0)
    ws.close()


def assert_fails(ws, server, code, timeout=FAIL_TIMEOUT):
    """The server closes with `code`, then TCP; a new client is still served."""
    before, c = ws.expect_close(timeout)
    assert c.close_code == code, "expected close %d, got %r (%r)" % (code, c.close_code, c.close_reason)
    assert before == [], "messages before the close: %r" % before
    assert ws.wait_tcp_close(timeout) == []
    ws.close()
    assert server.alive(), server.log()[-2000:]
    fresh = connect(server)
    echo(fresh, OP_TEXT, make_text(500))
    close_handshake(fresh)


def stats(server):
    with urllib.request.urlopen("http://%s:%d/stats" % (server.host, server.port), timeout=5) as r:
        return json.loads(r.read())


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def dserver(start_server):
    """wshub with --deflate and its defaults (--deflate-min-size 128)."""
    return start_server("--deflate")


# --------------------------------------------------------------------------
# 13.x  negotiation: every parameter combination of the offer

SERVER_BITS = [None] + list(range(8, 16))
CLIENT_BITS = [None, True] + list(range(8, 16))


def offer_of(snct, cnct, sbits, cbits):
    params = ["permessage-deflate"]
    if snct:
        params.append("server_no_context_takeover")
    if cnct:
        params.append("client_no_context_takeover")
    if sbits:
        params.append("server_max_window_bits=%d" % sbits)
    if cbits is True:
        params.append("client_max_window_bits")
    elif cbits:
        params.append("client_max_window_bits=%d" % cbits)
    return "; ".join(params)


# Repeats close by (any window compresses them), and for each window size
# from 10 bits up one that only a window that big can use (zlib reaches back
# at most 2^bits - 262 bytes): a frame made with a bigger window than the
# client allowed does not inflate in the client's window.
FAR_REPEATS = b"abc" * 300 + b"".join(make_noise(d, d) * 2 for d in (300, 600, 1500, 3000, 6000, 12000, 25000))


@pytest.mark.parametrize("snct,cnct", [(0, 0), (0, 1), (1, 0), (1, 1)],
                         ids=["plain", "client_nct", "server_nct", "both_nct"])
def test_13_every_offer(dserver, snct, cnct):
    """Autobahn 13: each combination is accepted and answered with both
    no_context_takeover parameters and server_max_window_bits as offered; the
    client compresses within its window, and the server's frames inflate in
    the window the client allowed (8 included)."""
    n = 0
    for sbits in SERVER_BITS:
        for cbits in CLIENT_BITS:
            offer = offer_of(snct, cnct, sbits, cbits)
            ws = connect(dserver, offer)
            want = ANSWER + ("; server_max_window_bits=%d" % sbits if sbits else "")
            got = ws.response_head.lower()
            assert "sec-websocket-extensions: %s\r\n" % want.lower() in got, "offer %r: %r" % (offer, got)
            cw = 15 if cbits in (None, True) else cbits
            for payload, op in ((FAR_REPEATS, OP_BINARY), (make_text(2000, n), OP_TEXT)):
                data = message_frames(op, deflate(payload, cw))
                ws.send_raw(data)
                m, got = recv_data(ws, sbits or 15)
                assert m.compressed and got == payload, "offer %r: echo differs" % offer
            echo(ws, OP_TEXT, b"short", compressed=False)
            close_handshake(ws)
            n += 1
    assert n == len(SERVER_BITS) * len(CLIENT_BITS)


@pytest.mark.parametrize("header,answer", [
    ("permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover", ANSWER),
    ("permessage-deflate; mux, permessage-deflate; server_max_window_bits=10",
     ANSWER + "; server_max_window_bits=10"),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate", ANSWER),
    ("permessage-deflate; client_max_window_bits=16, x-webkit-deflate-frame, permessage-deflate; "
     "client_max_window_bits=\"12\"", ANSWER),
    ("permessage-deflate; server_max_window_bits = \"1\\2\" , permessage-deflate", ANSWER + "; server_max_window_bits=12"),
    (["x-foo", "permessage-deflate; server_no_context_takeover=1", "permessage-deflate; server_max_window_bits=9"],
     ANSWER + "; server_max_window_bits=9"),
], ids=["bad-bits-then-next", "unknown-param-then-next", "duplicate-then-next", "bad-values-quoted",
        "whitespace-quoted", "three-headers"])
def test_13_declines_and_accepts_next(dserver, header, answer):
    ws = connect(dserver, header)
    assert ws.deflate
    assert "sec-websocket-extensions: %s\r\n" % answer.lower() in ws.response_head.lower(), ws.response_head
    echo(ws, OP_TEXT, make_text(3000))
    close_handshake(ws)


@pytest.mark.parametrize("header", [
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; foo",
    "permessage-deflate; client_no_context_takeover=yes",
    "x-webkit-deflate-frame",
    "",
])
def test_13_nothing_acceptable_then_rsv1_is_error(dserver, header):
    """No acceptable offer: the 101 names no extension, messages are not
    compressed, and RSV1 is a protocol error."""
    ws = connect(dserver, header if header else None)
    assert not ws.deflate and "sec-websocket-extensions" not in ws.response_head.lower()
    m = echo(ws, OP_TEXT, make_text(3000), compressed=False)
    assert not m.compressed
    ws.send_raw(message_frames(OP_TEXT, deflate(b"compressed anyway " * 10)))
    assert_fails(ws, dserver, 1002)


@pytest.mark.parametrize("header", [
    "permessage-deflate;",
    "permessage-deflate; server_max_window_bits=\"10",
    "permessage-deflate server_no_context_takeover",
    "permessage-deflate, ;",
    "permessage-deflate; server_max_window_bits=\"1 0\"",
])
def test_13_malformed_header_is_400(dserver, header):
    s = dserver.connect()
    s.sendall(("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: %s\r\n\r\n" % header).encode())
    data = b""
    while True:   # the server closes after a refusal
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"Sec-WebSocket-Extensions" in data, data


def test_off_by_default(server):
    """Without --deflate the offer is ignored, nothing is compressed, RSV1 is 1002."""
    ws = connect(server, "permessage-deflate; client_max_window_bits")
    assert not ws.deflate and "sec-websocket-extensions" not in ws.response_head.lower()
    assert not echo(ws, OP_TEXT, make_text(5000), compressed=False).compressed
    ws.send_raw(message_frames(OP_TEXT, deflate(make_text(500))))
    before, c = ws.expect_close(FAIL_TIMEOUT)
    assert c.close_code == 1002
    ws.close()
    assert "deflate_compressions" not in stats(server)


# --------------------------------------------------------------------------
# 12.x  compressed messages of every size, text and binary

SIZES = [0, 1, 16, 64, 125, 126, 127, 128, 129, 256, 1000, 1024, 4096, 8192, 16384, 32768, 65535, 65536,
         65537, 131072, 262144, MIB]
KINDS = {"text": (OP_TEXT, make_text), "binary": (OP_BINARY, make_binary), "noise": (OP_BINARY, make_noise)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_12_echo_sizes(dserver, kind, size):
    """Compressed in, compressed out when at least 128 bytes and compressing
    helps; uncompressed in works too."""
    op, make = KINDS[kind]
    payload = make(size, size)
    ws = connect(dserver)
    m = echo(ws, op, payload)
    assert m.compressed == (size >= 128 and kind != "noise"), "%s %d: compressed=%s" % (kind, size, m.compressed)
    if kind != "noise" and size >= 1024:
        assert len(m.data) < size * 0.7, "%d bytes went out as %d" % (size, len(m.data))
    m = echo(ws, op, payload, compressed=False)
    assert m.compressed == (size >= 128 and kind != "noise")
    close_handshake(ws)


@pytest.mark.parametrize("size,frag", [(1000, 1), (4096, 7), (65536, 100), (65536, 4096), (MIB, 1000),
                                       (MIB, 65536), (MIB, 300000)])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_12_fragmented(dserver, kind, size, frag):
    """A compressed message in fragments (RSV1 on the first only) is inflated
    as it arrives and echoed whole."""
    op, make = KINDS[kind]
    payload = make(size, frag)
    ws = connect(dserver)
    echo(ws, op, payload, frag=frag)
    close_handshake(ws)


def test_12_fragmented_with_pings_and_chopped(dserver):
    payload = make_text(200000, 5)
    wire = deflate(payload)
    parts = [wire[i:i + 997] for i in range(0, len(wire), 997)]
    data = b""
    for i, p in enumerate(parts):
        data += build_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(parts) - 1, rsv=4 if i == 0 else 0)
        if i % 10 == 5:
            data += build_frame(OP_PING, b"p%d" % i)
    ws = connect(dserver)
    ws.send_raw(data, chunk=1461)
    pongs = 0
    while True:
        m, got = recv_data(ws)
        if m.opcode == OP_PONG:
            pongs += 1
            continue
        assert m.opcode == OP_TEXT and got == payload
        break
    assert pongs == sum(1 for i in range(len(parts)) if i % 10 == 5)
    close_handshake(ws)


def test_12_many_messages_one_connection(dserver):
    """Autobahn 12's rhythm: many messages back to back on one connection,
    each compressed on its own, sizes mixed."""
    ws = connect(dserver)
    msgs = [(OP_TEXT if i % 3 else OP_BINARY, (make_text if i % 3 else make_binary)(s, i))
            for i, s in enumerate([16, 300, 5000, 0, 128, 127, 70000, 2000] * 25)]
    sender = ws.send_background(b"".join(message_frames(op, deflate(p)) for op, p in msgs))
    for op, p in msgs:
        m, got = recv_data(ws)
        assert m.opcode == op and got == p
    sender.join(10)
    assert sender.error is None
    close_handshake(ws)


@pytest.mark.parametrize("level", [0, 1, 9])
def test_12_client_compression_levels(dserver, level):
    """Stored blocks (level 0), fast and best compression all inflate."""
    ws = connect(dserver)
    for n in (200, 70000):
        payload = make_text(n, level)
        ws.send_raw(message_frames(OP_TEXT, deflate(payload, level=level)))
        m, got = recv_data(ws)
        assert got == payload
    close_handshake(ws)


def test_min_size_option(start_server):
    srv = start_server("--deflate", "--deflate-min-size", "1000")
    ws = connect(srv)
    assert not echo(ws, OP_TEXT, make_text(999)).compressed
    assert echo(ws, OP_TEXT, make_text(1000)).compressed
    close_handshake(ws)
    srv0 = start_server("--deflate", "--deflate-min-size", "0")
    ws = connect(srv0)
    assert echo(ws, OP_TEXT, b"a" * 40).compressed
    assert not echo(ws, OP_TEXT, b"ab").compressed       # compressing does not make it smaller
    assert not echo(ws, OP_TEXT, b"").compressed
    close_handshake(ws)


# --------------------------------------------------------------------------
# hostile input

def test_zip_bomb_refused_at_limit(start_server):
    """10 MB of zeros in about 10 KB: refused with 1009 once 1 MiB is passed,
    whole or fragmented, without the server growing by the bomb's size."""
    srv = start_server("--deflate", "--max-message", "1m")
    bomb = deflate(bytes(10 * 1000 * 1000), level=9)
    assert len(bomb) < 12000
    ws = connect(srv)
    echo(ws, OP_BINARY, make_binary(1000))
    rss0 = rss_kib(srv.proc.pid)
    for frag in (None, 100):
        ws = connect(srv)
        t0 = time.monotonic()
        ws.send_raw(message_frames(OP_BINARY, bomb, frag=frag))
        assert_fails(ws, srv, 1009)
        assert time.monotonic() - t0 < FAIL_TIMEOUT
    assert rss_kib(srv.proc.pid) - rss0 < 8 * 1024, "RSS grew by %d KiB" % (rss_kib(srv.proc.pid) - rss0)
    assert stats(srv)["closed"]["limit_reached"] >= 2


def test_zip_bomb_in_chat(start_server):
    """A chat line limit (--max-line + 2) holds for inflated text too."""
    srv = start_server("--deflate", "--max-line", "1000")
    ws = connect(srv, path="/ws/bombed?nick=b")
    ws.recv_message()   # welcome
    ws.send_raw(message_frames(OP_TEXT, deflate(b"a" * 100000)))
    before, c = ws.expect_close(FAIL_TIMEOUT)
    assert c.close_code == 1009
    ws.close()


def test_inflated_limit_exact(start_server):
    srv = start_server("--deflate", "--max-message", "100000")
    ws = connect(srv)
    echo(ws, OP_TEXT, make_text(100000))
    ws.send_raw(message_frames(OP_TEXT, deflate(make_text(100001))))
    assert_fails(ws, srv, 1009)


def test_wire_slack_for_incompressible(start_server):
    """A compressed message may be a little bigger on the wire than the
    limit (stored blocks of noise), as long as it inflates within it."""
    srv = start_server("--deflate", "--max-message", "100000")
    ws = connect(srv)
    payload = make_noise(100000, 3)
    wire = deflate(payload)
    assert len(wire) > 100000
    ws.send_raw(message_frames(OP_BINARY, wire))
    m, got = recv_data(ws)
    assert got == payload
    ws.send_raw(build_frame(OP_BINARY, b"", rsv=4, length=100000 + 97 + 64 + 1)[:14])
    assert_fails(ws, srv, 1009)


@pytest.mark.parametrize("case", ["continuation", "nonfinal-continuation", "ping", "pong", "close", "rsv2", "rsv3",
                                  "rsv1+rsv2"])
def test_rsv1_misuse(dserver, case):
    ws = connect(dserver)
    echo(ws, OP_TEXT, make_text(300))
    if case in ("continuation", "nonfinal-continuation"):
        ws.send_raw(build_frame(OP_TEXT, deflate(make_text(300))[:10], fin=False, rsv=4) +
                    build_frame(OP_CONT, b"xx", fin=case == "continuation", rsv=4))
    elif case in ("ping", "pong"):
        ws.send_frame(OP_PING if case == "ping" else OP_PONG, deflate(b"compressed control"), rsv=4)
    elif case == "close":
        ws.send_frame(OP_CLOSE, close_payload(1000, "bye"), rsv=4)
    else:
        ws.send_frame(OP_TEXT, deflate(make_text(300)), rsv={"rsv2": 2, "rsv3": 1, "rsv1+rsv2": 6}[case])
    assert_fails(ws, dserver, 1002)


def test_rsv1_without_offer(dserver):
    """Deflate is on, but this client offered nothing: RSV1 is a protocol error."""
    ws = connect(dserver, None)
    ws.send_raw(message_frames(OP_TEXT, deflate(make_text(300))))
    assert_fails(ws, dserver, 1002)


@pytest.mark.parametrize("case", ["reserved-block-type", "bad-stored-length", "distance-too-far", "garbage-after-output",
                                  "corrupt-second-fragment"])
def test_corrupt_stream_is_1007(dserver, case):
    ws = connect(dserver)
    good = deflate(make_text(5000))
    if case == "reserved-block-type":
        ws.send_frame(OP_BINARY, b"\x07\x00", rsv=4)
    elif case == "bad-stored-length":
        ws.send_frame(OP_BINARY, b"\x00\x05\x00\x00\x00a", rsv=4)
    elif case == "distance-too-far":
        c = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=b"hello world, hello world")
        ws.send_frame(OP_TEXT, (c.compress(b"hello world") + c.flush(zlib.Z_SYNC_FLUSH))[:-4], rsv=4)
    elif case == "garbage-after-output":   # whole blocks, then a reserved block type
        ws.send_frame(OP_BINARY, good + TAIL + b"\x07\x00", rsv=4)
    else:
        ws.send_raw(build_frame(OP_BINARY, good + TAIL, fin=False, rsv=4) +
                    build_frame(OP_CONT, b"\x07\x00", fin=False))
    assert_fails(ws, dserver, 1007)


@pytest.mark.parametrize("case", ["invalid-byte", "ends-mid-code-point", "fragmented-invalid"])
def test_compressed_text_utf8(dserver, case):
    """Inflated text must be UTF-8 (1007); the same bytes as binary are fine."""
    bad = make_text(3000)
    bad = bad[:1500] + b"\xc0\xaf" + bad[1502:] if case != "ends-mid-code-point" else bad[:-1] + b"\xe2"
    ws = connect(dserver)
    echo(ws, OP_BINARY, bad)
    frag = 50 if case == "fragmented-invalid" else None
    ws.send_raw(message_frames(OP_TEXT, deflate(bad), frag=frag))
    assert_fails(ws, dserver, 1007)


# --------------------------------------------------------------------------
# interoperability

def test_python_websockets_interop(dserver):
    """python3-websockets offers permessage-deflate by default: it accepts
    the answer, and messages of every size round-trip compressed."""
    async def go():
        async with websockets.connect(dserver.url("/echo"), max_size=None) as ws:
            assert ws.response_headers["Sec-WebSocket-Extensions"] == ANSWER
            assert len(ws.extensions) == 1 and isinstance(ws.extensions[0], PerMessageDeflate)
            ext = ws.extensions[0]
            assert ext.remote_no_context_takeover and ext.local_no_context_takeover
            for n in [0, 1, 127, 128, 1000, 65536, MIB]:
                for msg in (make_text(n, n).decode(), make_binary(n, n)):
                    await ws.send(msg)
                    assert await ws.recv() == msg
            await ws.send([make_text(1000, 1).decode(), make_text(70000, 2).decode()])
            assert await ws.recv() == make_text(1000, 1).decode() + make_text(70000, 2).decode()
        assert ws.close_code == 1000
    run(go())
    s = stats(dserver)
    assert s["messages_in_compressed"] >= 15 and s["messages_out_compressed"] >= 9, s


@pytest.mark.parametrize("sbits,cbits", [(10, True), (8, 9), (15, 15), (None, 9), (8, True)])
def test_python_websockets_window_bits(dserver, sbits, cbits):
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=sbits, client_max_window_bits=cbits)

    async def go():
        async with websockets.connect(dserver.url("/echo"), max_size=None, extensions=[factory]) as ws:
            want = ANSWER + ("; server_max_window_bits=%d" % sbits if sbits else "")
            assert ws.response_headers["Sec-WebSocket-Extensions"] == want
            for n in [200, 5000, 300000]:
                await ws.send(FAR_REPEATS * (n // len(FAR_REPEATS) + 1))
                assert await ws.recv() == FAR_REPEATS * (n // len(FAR_REPEATS) + 1)
    run(go())


NODE_CLIENT = r"""
const WebSocket = require('ws');
const url = process.argv[2];
const ws = new WebSocket(url, {perMessageDeflate: {threshold: 0}, maxPayload: 0});
const sizes = [0, 1, 127, 128, 1000, 65536, 1048576];
const msgs = [];
for (const n of sizes) {
  msgs.push('é€x'.repeat(Math.ceil(n / 6)).slice(0, n));
  msgs.push(Buffer.alloc(n, 'chat json ').fill(n % 251, 0, Math.min(n, 10)));
}
let i = 0;
ws.on('upgrade', (res) => console.log('EXT ' + res.headers['sec-websocket-extensions']));
ws.on('open', () => { console.log('NEGOTIATED ' + ws.extensions); ws.send(msgs[0]); });
ws.on('message', (data, isBinary) => {
  const want = msgs[i];
  const ok = typeof want === 'string' ? (!isBinary && data.toString() === want)
                                      : (isBinary && Buffer.compare(data, want) === 0);
  if (!ok) { console.log('MISMATCH ' + i); process.exit(1); }
  if (++i === msgs.length) { console.log('OK ' + i); ws.close(1000); return; }
  ws.send(msgs[i]);
});
ws.on('close', (code) => { console.log('CLOSE ' + code); process.exit(i === msgs.length ? 0 : 1); });
ws.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(1); });
"""


def node_ws():
    """(node, NODE_PATH) for Node's ws from the benchmark peer, installed with
    npm ci when missing (as test_peers.py does); skips without node."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed (CI installs Debian's nodejs and npm)")
    modules = os.path.join(NODE_DIR, "node_modules")
    if not os.path.exists(os.path.join(modules, "ws", "package.json")):
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: cannot install the ws package"
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, "npm ci failed in bench/peers/node:\n" + done.stdout + done.stderr
    return node, modules


def test_node_ws_interop(dserver):
    node, modules = node_ws()
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(NODE_CLIENT)
    try:
        done = subprocess.run([node, f.name, dserver.url("/echo")], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, NODE_PATH=modules))
    finally:
        os.unlink(f.name)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "EXT " + ANSWER in out, out
    assert "NEGOTIATED permessage-deflate" in out and "OK 14" in out and "CLOSE 1000" in out, out
    s = stats(dserver)
    assert s["messages_in_compressed"] >= 12 and s["messages_out_compressed"] >= 8, s


# --------------------------------------------------------------------------
# chat: members with and without deflate; a broadcast is compressed once

def test_chat_mixed_members_compress_once(dserver):
    """Three members with deflate (python3-websockets, and a raw client that
    checks RSV1), two without, and one raw client asking for a 10-bit window:
    every member gets every message with the same JSON; each broadcast is
    compressed once per window size (2 here), however many members take it."""
    text = "a line long enough to be worth compressing, " * 8

    async def go():
        plain = [await websockets.connect(dserver.url("/ws/mixed?nick=p%d" % i), compression=None) for i in range(2)]
        packed = [await websockets.connect(dserver.url("/ws/mixed?nick=d%d" % i)) for i in range(2)]
        raw = connect(dserver, path="/ws/mixed?nick=r0")
        raw10 = connect(dserver, "permessage-deflate; server_max_window_bits=10", path="/ws/mixed?nick=r1")
        members = plain + packed
        for ws in plain:
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
        for ws in packed:
            assert ws.response_headers["Sec-WebSocket-Extensions"] == ANSWER
        assert raw.deflate and raw10.deflate

        async def drain_until(ws, pred):
            while True:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if pred(ev):
                    return ev

        def raw_until(c, bits, pred):
            while True:
                m, got = recv_data(c, bits)
                ev = json.loads(got)
                if pred(ev):
                    return m, ev

        # everyone has joined once the last joiner's join reached the first member
        for ws in members:
            await drain_until(ws, lambda ev: ev["type"] == "join" and ev["nick"] == "r1")
        raw_until(raw, 15, lambda ev: ev["type"] == "join" and ev["nick"] == "r1")
        raw_until(raw10, 10, lambda ev: ev["type"] == "welcome")
        before = stats(dserver)
        for k in range(5):
            await members[k % 4].send("%d %s" % (k, text))
            evs = [await drain_until(ws, lambda ev: ev["type"] == "message") for ws in members]
            m, rev = raw_until(raw, 15, lambda ev: ev["type"] == "message")
            m10, rev10 = raw_until(raw10, 10, lambda ev: ev["type"] == "message")
            assert m.compressed and m10.compressed
            assert len(m.data) < len(json.dumps(rev)) / 2
            for ev in evs + [rev, rev10]:
                assert ev == evs[0] and ev["text"] == "%d %s" % (k, text)
        after = stats(dserver)
        for ws in members:
            await ws.close()
        raw.close()
        raw10.close()
        return before, after

    before, after = run(go())
    delta = {k: after[k] - before[k] for k in ("deflate_compressions", "messages_out_compressed", "messages_out",
                                                "frames_broadcast", "messages_in")}
    assert delta["frames_broadcast"] == 5 and delta["messages_in"] == 5, delta
    assert delta["messages_out"] == 5 * 6, delta                # six members each got five
    assert delta["messages_out_compressed"] == 5 * 4, delta     # four of them compressed
    assert delta["deflate_compressions"] == 5 * 2, delta        # once per window size, not per member


def test_chat_binary_relay_compressed_once(dserver):
    async def go():
        members = [await websockets.connect(dserver.url("/ws/bin?nick=m%d" % i)) for i in range(20)]
        for ws in members[1:]:
            while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "welcome":
                pass
        await asyncio.sleep(0.3)
        before = stats(dserver)
        payload = make_binary(20000, 9)
        await members[0].send(payload)
        for ws in members:
            while True:
                got = await asyncio.wait_for(ws.recv(), 5)
                if isinstance(got, bytes):
                    assert got == payload
                    break
        after = stats(dserver)
        for ws in members:
            await ws.close()
        return before, after

    before, after = run(go())
    assert after["deflate_compressions"] - before["deflate_compressions"] == 1
    assert after["messages_out_compressed"] - before["messages_out_compressed"] == 20


# --------------------------------------------------------------------------
# idle memory: a connection with deflate negotiated against one without

def idle_cost(srv, offer, n=1000):
    """Bytes of server RSS per idle /echo connection that has sent and
    received compressed (or plain) messages, whole and fragmented."""
    def exchange(ws):
        echo(ws, OP_TEXT, make_text(3000), compressed=ws.deflate)
        echo(ws, OP_BINARY, make_binary(20000), compressed=ws.deflate, frag=5000)

    warm = connect(srv, offer)
    exchange(warm)
    time.sleep(0.2)
    rss0 = rss_kib(srv.proc.pid)
    conns = []
    for _ in range(n):
        ws = connect(srv, offer)
        assert ws.deflate == (offer is not None)
        exchange(ws)
        conns.append(ws)
    time.sleep(1.5)   # the server hands freed memory back after bursts
    cost = (rss_kib(srv.proc.pid) - rss0) * 1024 / n
    for ws in conns + [warm]:
        ws.close()
    return cost


def test_idle_memory_with_deflate(start_server):
    plain = idle_cost(start_server("--deflate"), None)
    packed = idle_cost(start_server("--deflate"), "permessage-deflate; client_max_window_bits")
    print("idle /echo connection: %.0f B without deflate, %.0f B with deflate negotiated" % (plain, packed))
    assert packed - plain < 1024, "deflate costs %.0f B more per idle connection (%.0f vs %.0f)" % (
        packed - plain, packed, plain)
