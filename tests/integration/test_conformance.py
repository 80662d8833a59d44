"""RFC 6455 conformance tests for wshub's /echo endpoint, modelled on
Autobahn|Testsuite cases 1-7, 9 and 10 (framing, pings, reserved bits,
opcodes, fragmentation, UTF-8, close handling, limits, auto-fragmentation),
plus the handshake timeout and frame-splitting invariance. Owns this file;
the raw client lives in wsraw.py, fixtures in conftest.py (the lead's).
Every protocol-error case also checks that the server still serves a new
client afterwards. Run: /usr/bin/python3 -m pytest -q tests/integration/test_conformance.py
"""
import base64
import os
import random
import socket
import ssl
import struct
import threading
import time

import pytest

from wsraw import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                   WSClient, accept_key, build_frame, close_payload)

FAIL_TIMEOUT = 3.0     # a protocol error must be answered within this (fail fast)
BIG_TIMEOUT = 30.0     # bound on a big-message echo
MIB = 1 << 20
MAX_DEFAULT = 16 * MIB

KOSME = bytes.fromhex("cebae1bdb9cf83cebcceb5")   # "κόσμε"


# --------------------------------------------------------------------------
# helpers

def connect(server, path="/echo"):
    return WSClient.connect(server.host, server.port, path, tls=server.client_tls)


def same_bytes(got, want):
    """(ok, description) without handing pytest huge operands to diff."""
    if got == want:
        return True, ""
    n = min(len(got), len(want))
    i = next((k for k in range(n) if got[k] != want[k]), n)
    return False, "payload mismatch: got %d bytes, want %d; first difference at %d (got %r, want %r)" % (
        len(got), len(want), i, got[i:i + 16], want[i:i + 16])


def brief(msgs):
    return [(m.opcode, m.data if len(m.data) <= 64 else m.data[:64] + b"...(%d)" % len(m.data))
            for m in msgs]


def assert_echo(ws, opcode, payload, timeout=5.0):
    m = ws.recv_message(timeout)
    assert m.opcode == opcode, "expected opcode %d echo, got %r" % (opcode, m)
    ok, why = same_bytes(m.data, payload)
    assert ok, why
    return m


def assert_pong(ws, payload, timeout=5.0):
    m = ws.recv_message(timeout)
    assert m.opcode == OP_PONG and m.data == payload, "expected pong %r, got %r" % (payload, m)


def close_handshake(ws, code=1000):
    """Client-initiated close: the server echoes the code and closes TCP."""
    ws.send_close(code)
    before, c = ws.expect_close(5.0)
    assert before == [], "unexpected messages before close: %r" % brief(before)
    assert c.close_code == code, "close echo: sent %d, got %r" % (code, c)
    assert ws.wait_tcp_close(5.0) == []
    ws.close()


def assert_serving(server):
    """A crash is the worst failure: the server must still serve a new client."""
    assert server.alive(), "server process died:\n" + server.log()[-3000:]
    ws = connect(server)
    ws.send_text("still alive? " + KOSME.decode())
    assert_echo(ws, OP_TEXT, ("still alive? " + KOSME.decode()).encode())
    ws.send_binary(b"\x00\xffbin")
    assert_echo(ws, OP_BINARY, b"\x00\xffbin")
    ws.send_ping(b"alive")
    assert_pong(ws, b"alive")
    close_handshake(ws, 1000)


def assert_fails(ws, server, code, before=(), timeout=FAIL_TIMEOUT):
    """The server fails the connection: (after the expected messages `before`,
    given as (opcode, data) pairs) a close frame with `code`, then the TCP
    close with nothing after it. Then checks a new client is still served."""
    got_before, c = ws.expect_close(timeout)
    assert [(m.opcode, m.data) for m in got_before] == list(before), \
        "messages before the close: got %r, want %r" % (brief(got_before), list(before))
    assert c.close_code == code, "expected close %d, got %r (code %r)" % (code, c, c.close_code)
    try:
        c.close_reason.decode("utf-8")
    except UnicodeDecodeError:
        pytest.fail("server close reason is not valid UTF-8: %r" % c.data)
    after = ws.wait_tcp_close(timeout)
    assert after == [], "frames after the close frame: %r" % after
    ws.close()
    assert_serving(server)


def make_text(n):
    """n bytes of valid UTF-8 mixing 1-4 byte code points (ASCII at the end to fit)."""
    unit = ("Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!! \u03ba\u1f79\u03c3\u03bc\u03b5 "
            "\u20ac \U0001F600 ").encode("utf-8")
    data = (unit * (n // len(unit) + 1))[:n]
    for back in range(4):   # drop a cut code point at the end, pad with ASCII
        try:
            data[:n - back].decode("utf-8")
        except UnicodeDecodeError:
            continue
        data = data[:n - back] + b"x" * back
        break
    assert len(data) == n
    data.decode("utf-8")
    return data


def make_binary(n):
    pat = bytes(range(256)) + bytes(range(255, -1, -1))
    return (pat * (n // len(pat) + 1))[:n]


def fragments(opcode, payload, size, **kw):
    """Frames of a message split into fragments of `size` bytes."""
    if len(payload) == 0:
        return build_frame(opcode, b"", **kw)
    parts = [payload[i:i + size] for i in range(0, len(payload), size)]
    out = []
    for i, p in enumerate(parts):
        out.append(build_frame(opcode if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1), **kw))
    return b"".join(out)


def big_echo(ws, opcode, payload, data, chunk=None, timeout=BIG_TIMEOUT):
    """Sends `data` (the frames of one message) from a thread while reading the echo."""
    t0 = time.monotonic()
    sender = ws.send_background(data, chunk=chunk)
    try:
        m = ws.recv_message(timeout)
    finally:
        sender.join(timeout)
    assert not sender.is_alive(), "sending did not finish within %.0f s" % timeout
    assert sender.error is None, "send failed: %r" % sender.error
    assert m.opcode == opcode, "expected opcode %d, got %r" % (opcode, m)
    ok, why = same_bytes(m.data, payload)
    assert ok, why
    elapsed = time.monotonic() - t0
    assert elapsed < timeout, "echo of %d bytes took %.1f s" % (len(payload), elapsed)


# --------------------------------------------------------------------------
# 1.x  framing: text and binary echo at the length-encoding boundaries

LENGTHS = [0, 1, 125, 126, 127, 128, 65535, 65536, 65537]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_1_echo_lengths(server, opcode, length):
    payload = b"*" * length if opcode == OP_TEXT else b"\xfe" * length
    ws = connect(server)
    ws.send_frame(opcode, payload)
    assert_echo(ws, opcode, payload)
    close_handshake(ws)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_1_1_8_echo_65536_chopped_997(server, opcode):
    payload = b"*" * 65536 if opcode == OP_TEXT else b"\xfe" * 65536
    ws = connect(server)
    ws.send_frame(opcode, payload, chunk=997)
    assert_echo(ws, opcode, payload)
    close_handshake(ws)


def test_server_frames_unmasked_and_echo_many_sizes(server):
    # every server frame is checked by wsraw (unmasked, RSV 0, valid opcode)
    ws = connect(server)
    for n in (0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 1000, 4097):
        ws.send_binary(make_binary(n))
        assert_echo(ws, OP_BINARY, make_binary(n))
        ws.send_text(make_text(n))
        assert_echo(ws, OP_TEXT, make_text(n))
    close_handshake(ws)


# --------------------------------------------------------------------------
# 2.x  pings and pongs

@pytest.mark.parametrize("payload", [b"", b"Hello, world!", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff",
                                     b"\xfe" * 125],
                         ids=["2.1-empty", "2.2-text", "2.3-binary", "2.4-125"])
def test_2_ping_pong(server, payload):
    ws = connect(server)
    ws.send_ping(payload)
    assert_pong(ws, payload)
    close_handshake(ws)


def test_2_5_ping_126_is_protocol_error(server):
    ws = connect(server)
    ws.send_ping(b"\xfe" * 126)
    assert_fails(ws, server, 1002)


def test_2_6_ping_125_chopped_per_byte(server):
    ws = connect(server)
    ws.send_ping(b"\xfe" * 125, chunk=1, delay=0.001)
    assert_pong(ws, b"\xfe" * 125)
    close_handshake(ws)


@pytest.mark.parametrize("pong", [b"", b"unsolicited pong payload"], ids=["2.7-empty", "2.8-payload"])
def test_2_7_2_8_unsolicited_pong_ignored(server, pong):
    ws = connect(server)
    ws.send_frame(OP_PONG, pong)
    ws.send_ping(b"ping payload")   # the first thing back must be this pong
    assert_pong(ws, b"ping payload")
    ws.send_text("after")
    assert_echo(ws, OP_TEXT, b"after")
    close_handshake(ws)


def test_2_9_unsolicited_pong_then_ping(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_PONG, b"unsolicited pong payload") + build_frame(OP_PING, b"ping payload"))
    assert_pong(ws, b"ping payload")
    close_handshake(ws)


def test_2_10_ten_pings_ten_pongs_in_order(server):
    ws = connect(server)
    for i in range(10):
        ws.send_ping(b"payload-%d" % i)
    for i in range(10):
        assert_pong(ws, b"payload-%d" % i)
    close_handshake(ws)


def test_2_11_ten_pings_chopped_per_byte(server):
    ws = connect(server)
    data = b"".join(build_frame(OP_PING, b"payload-%d" % i) for i in range(10))
    ws.send_raw(data, chunk=1, delay=0.0005)
    for i in range(10):
        assert_pong(ws, b"payload-%d" % i)
    close_handshake(ws)


def test_ping_one_write_many_pings(server):
    ws = connect(server)
    ws.send_raw(b"".join(build_frame(OP_PING, b"%d" % i) for i in range(100)))
    for i in range(100):
        assert_pong(ws, b"%d" % i)
    close_handshake(ws)


# --------------------------------------------------------------------------
# 3.x  reserved bits

@pytest.mark.parametrize("rsv", [1, 2, 3, 4, 5, 6, 7])
def test_3_rsv_on_text_is_protocol_error(server, rsv):
    ws = connect(server)
    ws.send_frame(OP_TEXT, b"Hello, world!", rsv=rsv)
    assert_fails(ws, server, 1002)


def test_3_2_echo_then_rsv2(server):
    ws = connect(server)
    ws.send_text("Hello, world!")
    assert_echo(ws, OP_TEXT, b"Hello, world!")
    ws.send_frame(OP_TEXT, b"Hello, world!", rsv=2)
    assert_fails(ws, server, 1002)


def test_3_3_text_rsv3_ping_in_one_write(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"Hello, world!") +
                build_frame(OP_TEXT, b"Hello, world!", rsv=3) +
                build_frame(OP_PING, b""))
    assert_fails(ws, server, 1002, before=[(OP_TEXT, b"Hello, world!")])


def test_3_4_text_rsv4_ping_chopped(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"Hello, world!") +
                build_frame(OP_TEXT, b"Hello, world!", rsv=4) +
                build_frame(OP_PING, b""), chunk=1, delay=0.001, ignore_errors=True)
    assert_fails(ws, server, 1002, before=[(OP_TEXT, b"Hello, world!")])


@pytest.mark.parametrize("opcode,rsv", [(OP_BINARY, 5), (OP_PING, 6), (OP_CLOSE, 7), (OP_PONG, 1),
                                        (OP_CONT, 4)],
                         ids=["3.5-binary", "3.6-ping", "3.7-close", "pong", "cont"])
def test_3_rsv_on_other_opcodes(server, opcode, rsv):
    ws = connect(server)
    if opcode == OP_CONT:
        ws.send_frame(OP_TEXT, b"frag1", fin=False)
    payload = close_payload(1000) if opcode == OP_CLOSE else b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    ws.send_frame(opcode, payload, rsv=rsv)
    assert_fails(ws, server, 1002)


# --------------------------------------------------------------------------
# 4.x  reserved opcodes

RESERVED_OPCODES = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
def test_4_reserved_opcode_alone(server, opcode):
    ws = connect(server)
    ws.send_frame(opcode, b"" if opcode in (3, 11) else b"reserved opcode payload")
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
@pytest.mark.parametrize("chopped", [False, True], ids=["one-write", "chopped"])
def test_4_echo_then_reserved_opcode_then_ping(server, opcode, chopped):
    ws = connect(server)
    data = (build_frame(OP_TEXT, b"Hello, world!") + build_frame(opcode, b"reserved") +
            build_frame(OP_PING, b"no pong for this"))
    if chopped:
        ws.send_raw(data, chunk=1, delay=0.0005, ignore_errors=True)
    else:
        ws.send_raw(data)
    assert_fails(ws, server, 1002, before=[(OP_TEXT, b"Hello, world!")])


# --------------------------------------------------------------------------
# 5.x  fragmentation

@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE], ids=["5.1-ping", "5.2-pong", "close"])
def test_5_fragmented_control_frame(server, opcode):
    ws = connect(server)
    first = close_payload(1000)[:1] if opcode == OP_CLOSE else b"fragment1"
    second = close_payload(1000)[1:] if opcode == OP_CLOSE else b"fragment2"
    ws.send_raw(build_frame(opcode, first, fin=False) + build_frame(OP_CONT, second, fin=True),
                ignore_errors=True)
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("how", ["one-write", "frame-per-write", "byte-per-write"],
                         ids=["5.3", "5.4", "5.5"])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_5_3_to_5_5_two_fragments(server, opcode, how):
    ws = connect(server)
    frames = [build_frame(opcode, b"fragment1", fin=False), build_frame(OP_CONT, b"fragment2", fin=True)]
    if how == "one-write":
        ws.send_raw(b"".join(frames))
    elif how == "frame-per-write":
        for f in frames:
            ws.send_raw(f)
            time.sleep(0.01)
    else:
        ws.send_raw(b"".join(frames), chunk=1, delay=0.001)
    assert_echo(ws, opcode, b"fragment1fragment2")
    close_handshake(ws)


@pytest.mark.parametrize("how", ["one-write", "frame-per-write", "byte-per-write"],
                         ids=["5.6", "5.7", "5.8"])
def test_5_6_to_5_8_ping_between_fragments(server, how):
    ws = connect(server)
    frames = [build_frame(OP_TEXT, b"fragment1", fin=False), build_frame(OP_PING, b"ping payload"),
              build_frame(OP_CONT, b"fragment2", fin=True)]
    if how == "one-write":
        ws.send_raw(b"".join(frames))
    elif how == "frame-per-write":
        for f in frames:
            ws.send_raw(f)
            time.sleep(0.01)
    else:
        ws.send_raw(b"".join(frames), chunk=1, delay=0.001)
    assert_pong(ws, b"ping payload")
    assert_echo(ws, OP_TEXT, b"fragment1fragment2")
    close_handshake(ws)


@pytest.mark.parametrize("fin", [True, False], ids=["fin", "nofin"])
@pytest.mark.parametrize("how", ["one-write", "frame-per-write", "byte-per-write"])
def test_5_9_to_5_14_continuation_without_message(server, fin, how):
    ws = connect(server)
    frames = [build_frame(OP_CONT, b"non-continuation payload", fin=fin),
              build_frame(OP_TEXT, b"Hello, world!")]
    if how == "one-write":
        ws.send_raw(b"".join(frames), ignore_errors=True)
    elif how == "frame-per-write":
        for f in frames:
            ws.send_raw(f, ignore_errors=True)
            time.sleep(0.01)
    else:
        ws.send_raw(b"".join(frames), chunk=1, delay=0.0005, ignore_errors=True)
    assert_fails(ws, server, 1002)


def test_5_15_continuation_after_finished_message(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"fragment1", fin=False) +
                build_frame(OP_CONT, b"fragment2", fin=True) +
                build_frame(OP_CONT, b"fragment3", fin=False) +
                build_frame(OP_TEXT, b"fragment4", fin=True), ignore_errors=True)
    assert_fails(ws, server, 1002, before=[(OP_TEXT, b"fragment1fragment2")])


@pytest.mark.parametrize("first_fin", [False, True], ids=["5.16", "5.17"])
def test_5_16_5_17_leading_continuations(server, first_fin):
    ws = connect(server)
    seq = (build_frame(OP_CONT, b"fragment1", fin=first_fin) + build_frame(OP_CONT, b"fragment2", fin=True) +
           build_frame(OP_TEXT, b"fragment3", fin=False) + build_frame(OP_CONT, b"fragment4", fin=True))
    ws.send_raw(seq * 2, ignore_errors=True)
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("first,second", [(OP_TEXT, OP_TEXT), (OP_TEXT, OP_BINARY),
                                          (OP_BINARY, OP_BINARY), (OP_BINARY, OP_TEXT)],
                         ids=["5.18-text-text", "text-binary", "binary-binary", "binary-text"])
@pytest.mark.parametrize("second_fin", [True, False], ids=["fin", "nofin"])
def test_5_18_new_message_inside_fragmented_one(server, first, second, second_fin):
    ws = connect(server)
    ws.send_raw(build_frame(first, b"fragment1", fin=False) +
                build_frame(second, b"fragment2", fin=second_fin), ignore_errors=True)
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("chopped", [False, True], ids=["5.19", "5.20"])
def test_5_19_5_20_pings_between_five_fragments(server, chopped):
    ws = connect(server)
    frames = [build_frame(OP_TEXT, b"fragment1", fin=False),
              build_frame(OP_CONT, b"fragment2", fin=False),
              build_frame(OP_PING, b"pongme 1!"),
              build_frame(OP_CONT, b"fragment3", fin=False),
              build_frame(OP_CONT, b"fragment4", fin=False),
              build_frame(OP_PING, b"pongme 2!"),
              build_frame(OP_CONT, b"fragment5", fin=True)]
    for i, f in enumerate(frames):
        if chopped:
            ws.send_raw(f, chunk=1, delay=0.0005)
        else:
            ws.send_raw(f)
        if i in (2, 5):   # the pong must come while the message is still unfinished
            assert_pong(ws, b"pongme %d!" % (1 if i == 2 else 2))
        time.sleep(0.02)
    assert_echo(ws, OP_TEXT, b"fragment1fragment2fragment3fragment4fragment5")
    close_handshake(ws)


def test_fragmented_binary_many_empty_fragments(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_BINARY, b"", fin=False) + build_frame(OP_CONT, b"", fin=False) +
                build_frame(OP_CONT, b"\x00", fin=False) + build_frame(OP_CONT, b"", fin=False) +
                build_frame(OP_CONT, b"\xff", fin=True))
    assert_echo(ws, OP_BINARY, b"\x00\xff")
    close_handshake(ws)


# --------------------------------------------------------------------------
# other framing protocol errors

def test_unmasked_text_frame(server):
    ws = connect(server)
    ws.send_frame(OP_TEXT, b"Hello, world!", mask=False)
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("opcode", [OP_BINARY, OP_PING, OP_CLOSE], ids=["binary", "ping", "close"])
def test_unmasked_other_frames(server, opcode):
    ws = connect(server)
    ws.send_frame(opcode, close_payload(1000) if opcode == OP_CLOSE else b"payload", mask=False)
    assert_fails(ws, server, 1002)


def test_unmasked_frame_after_valid_echo(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"ok") + build_frame(OP_TEXT, b"bad", mask=False))
    assert_fails(ws, server, 1002, before=[(OP_TEXT, b"ok")])


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE], ids=["ping", "pong", "close"])
@pytest.mark.parametrize("length", [126, 127, 65535, 65536], ids=lambda n: "len%d" % n)
def test_control_payload_over_125(server, opcode, length):
    ws = connect(server)
    payload = (close_payload(1000) + b"*" * (length - 2)) if opcode == OP_CLOSE else b"\xfe" * length
    ws.send_frame(opcode, payload, ignore_errors=True)
    assert_fails(ws, server, 1002)


def test_control_payload_over_125_header_only(server):
    # the header alone proves the error: the server must not wait for the payload
    ws = connect(server)
    ws.send_raw(build_frame(OP_PING, b"\xfe" * 200)[:8])   # 2 + 2 (16-bit len) + 4 (mask)
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING], ids=["text", "binary", "ping"])
def test_64bit_length_top_bit_set(server, opcode):
    ws = connect(server)
    frame = build_frame(opcode, b"hello", length=(1 << 63) | 5, len_form=64)
    ws.send_raw(frame, ignore_errors=True)
    assert_fails(ws, server, 1002)


def test_64bit_length_top_bit_set_header_only(server):
    ws = connect(server)
    ws.send_raw(struct.pack("!BBQ", 0x82, 0xFF, 0xFFFFFFFFFFFFFFFF) + os.urandom(4))
    assert_fails(ws, server, 1002)


def test_protocol_error_after_fragment_and_ping(server):
    # valid parts (pong) are answered before the close
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"frag", fin=False) + build_frame(OP_PING, b"p1") +
                build_frame(OP_TEXT, b"illegal new message"), ignore_errors=True)
    assert_fails(ws, server, 1002, before=[(OP_PONG, b"p1")])


# --------------------------------------------------------------------------
# 6.x  UTF-8 handling

def utf8_check(data):
    """Unicode table 3-7 validator: ('valid'|'incomplete'|'invalid', index of
    the first byte proven invalid or None)."""
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            ranges = [(0x80, 0xBF)]
        elif b == 0xE0:
            ranges = [(0xA0, 0xBF), (0x80, 0xBF)]
        elif 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
            ranges = [(0x80, 0xBF)] * 2
        elif b == 0xED:
            ranges = [(0x80, 0x9F), (0x80, 0xBF)]
        elif b == 0xF0:
            ranges = [(0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)]
        elif 0xF1 <= b <= 0xF3:
            ranges = [(0x80, 0xBF)] * 3
        elif b == 0xF4:
            ranges = [(0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)]
        else:
            return "invalid", i
        for k, (lo, hi) in enumerate(ranges):
            j = i + 1 + k
            if j >= n:
                return "incomplete", None
            if not lo <= data[j] <= hi:
                return "invalid", j
        i += 1 + len(ranges)
    return "valid", None


def _h(s):
    return bytes.fromhex(s.replace(" ", ""))


# (id, bytes, valid) -- Autobahn 6.x vectors (from Markus Kuhn's UTF-8 stress test)
UTF8_VECTORS = [
    ("6.2-hello", "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode(), True),
    ("6.3-kosme-surrogate-edited", KOSME + _h("eda080") + b"edited", False),
    ("6.5.1-kosme", KOSME, True),
    ("6.5.2-ascii", b"Hello, world!", True),
    ("6.5.3-mixed", "\u03ba\u1f79\u03c3\u03bc\u03b5 \U0001F600 \u20ac".encode(), True),
]
# 6.6: growing prefixes of kosme; valid only at code point boundaries
for _n in range(1, len(KOSME) + 1):
    UTF8_VECTORS.append(("6.6.%d-kosme-prefix" % _n, KOSME[:_n], _n in (2, 5, 7, 9, 11)))
UTF8_VECTORS += [
    # 6.7 first possible sequence of each length (U+0000, U+0080, U+0800, U+10000)
    ("6.7.1-U+0000", _h("00"), True),
    ("6.7.2-U+0080", _h("c280"), True),
    ("6.7.3-U+0800", _h("e0a080"), True),
    ("6.7.4-U+10000", _h("f0908080"), True),
    # 6.8 first possible 5/6-byte sequences
    ("6.8.1-5byte", _h("f888808080"), False),
    ("6.8.2-6byte", _h("fc8480808080"), False),
    # 6.9 last possible sequence of each length (U+007F, U+07FF, U+FFFF, U+10FFFF)
    ("6.9.1-U+007F", _h("7f"), True),
    ("6.9.2-U+07FF", _h("dfbf"), True),
    ("6.9.3-U+FFFF", _h("efbfbf"), True),
    ("6.9.4-U+10FFFF", _h("f48fbfbf"), True),
    # 6.10 last possible 4/5/6-byte forms beyond Unicode
    ("6.10.1-U+1FFFFF", _h("f7bfbfbf"), False),
    ("6.10.2-5byte", _h("fbbfbfbfbf"), False),
    ("6.10.3-6byte", _h("fdbfbfbfbfbf"), False),
    # 6.11 other boundary conditions
    ("6.11.1-U+D7FF", _h("ed9fbf"), True),
    ("6.11.2-U+E000", _h("ee8080"), True),
    ("6.11.3-U+FFFD", _h("efbfbd"), True),
    ("6.11.4-U+10FFFF", _h("f48fbfbf"), True),
    ("6.11.5-U+110000", _h("f4908080"), False),
    # 6.12 unexpected continuation bytes
    ("6.12.1-80", _h("80"), False),
    ("6.12.2-bf", _h("bf"), False),
    ("6.12.3", _h("80bf"), False),
    ("6.12.4", _h("80bf80"), False),
    ("6.12.5", _h("80bf80bf"), False),
    ("6.12.6", _h("80bf80bf80"), False),
    ("6.12.7", _h("80bf80bf80bf"), False),
    ("6.12.8-all-continuations", bytes(range(0x80, 0xC0)), False),
    # 6.13 lonely start characters, each followed by a space
    ("6.13.1-c0-df", b"".join(bytes([c, 0x20]) for c in range(0xC0, 0xE0)), False),
    ("6.13.2-e0-ef", b"".join(bytes([c, 0x20]) for c in range(0xE0, 0xF0)), False),
    ("6.13.3-f0-f7", b"".join(bytes([c, 0x20]) for c in range(0xF0, 0xF8)), False),
    ("6.13.4-f8-fb", b"".join(bytes([c, 0x20]) for c in range(0xF8, 0xFC)), False),
    ("6.13.5-fc-fd", b"".join(bytes([c, 0x20]) for c in range(0xFC, 0xFE)), False),
]
# 6.14 sequences with the last continuation byte missing
_TRUNCATED = ["c0", "e080", "f08080", "f8808080", "fc80808080", "df", "efbf", "f7bfbf", "fbbfbfbf",
              "fdbfbfbfbf"]
for _k, _s in enumerate(_TRUNCATED):
    UTF8_VECTORS.append(("6.14.%d-truncated-%s" % (_k + 1, _s), _h(_s), False))
UTF8_VECTORS += [
    # 6.15 concatenation of incomplete sequences
    ("6.15.1-concat-truncated", b"".join(_h(s) for s in _TRUNCATED), False),
    # 6.16 impossible bytes
    ("6.16.1-fe", _h("fe"), False),
    ("6.16.2-ff", _h("ff"), False),
    ("6.16.3-fefeffff", _h("fefeffff"), False),
    # 6.17 overlong ASCII '/'
    ("6.17.1", _h("c0af"), False),
    ("6.17.2", _h("e080af"), False),
    ("6.17.3", _h("f08080af"), False),
    ("6.17.4", _h("f8808080af"), False),
    ("6.17.5", _h("fc80808080af"), False),
    # 6.18 maximum overlong sequences
    ("6.18.1", _h("c1bf"), False),
    ("6.18.2", _h("e09fbf"), False),
    ("6.18.3", _h("f08fbfbf"), False),
    ("6.18.4", _h("f887bfbfbf"), False),
    ("6.18.5", _h("fc83bfbfbfbf"), False),
    # 6.19 overlong NUL
    ("6.19.1", _h("c080"), False),
    ("6.19.2", _h("e08080"), False),
    ("6.19.3", _h("f0808080"), False),
    ("6.19.4", _h("f880808080"), False),
    ("6.19.5", _h("fc8080808080"), False),
    # 6.20 single UTF-16 surrogates
    ("6.20.1-U+D800", _h("eda080"), False),
    ("6.20.2-U+DB7F", _h("edadbf"), False),
    ("6.20.3-U+DB80", _h("edae80"), False),
    ("6.20.4-U+DBFF", _h("edafbf"), False),
    ("6.20.5-U+DC00", _h("edb080"), False),
    ("6.20.6-U+DF80", _h("edbe80"), False),
    ("6.20.7-U+DFFF", _h("edbfbf"), False),
    # 6.21 paired UTF-16 surrogates
    ("6.21.1", _h("eda080edb080"), False),
    ("6.21.2", _h("eda080edbfbf"), False),
    ("6.21.3", _h("edadbfedb080"), False),
    ("6.21.4", _h("edadbfedbfbf"), False),
    ("6.21.5", _h("edae80edb080"), False),
    ("6.21.6", _h("edae80edbfbf"), False),
    ("6.21.7", _h("edafbfedb080"), False),
    ("6.21.8", _h("edafbfedbfbf"), False),
    # 6.22 noncharacters are valid UTF-8
    ("6.22.1-U+FFFE", _h("efbfbe"), True),
    ("6.22.2-U+FFFF", _h("efbfbf"), True),
]
for _p in range(1, 17):
    UTF8_VECTORS.append(("6.22-plane%d-nonchars" % _p,
                         (chr(_p * 0x10000 + 0xFFFE) + chr(_p * 0x10000 + 0xFFFF)).encode(), True))
UTF8_VECTORS += [
    ("6.22-U+FDD0-FDEF", "".join(chr(c) for c in range(0xFDD0, 0xFDF0)).encode(), True),
    # 6.23 replacement character and friends
    ("6.23.1-U+FFFD", _h("efbfbd"), True),
    ("6.23.2-U+FFFD-x3", _h("efbfbd") * 3, True),
    ("6.23.3-valid-then-bad", b"abc" + _h("efbfbd") + _h("ed") + _h("a0") + b"xyz", False),
    ("6.23.4-invalid-late", b"a" * 100 + _h("c0af") + b"b" * 100, False),
    # extra: invalid start inside otherwise valid text, 4-byte lead with bad second byte
    ("x-f4-90-after-text", b"hello " + _h("f490"), False),
    ("x-ed-a0-after-text", b"hello " + _h("eda0"), False),
    ("x-e0-80-after-text", b"hello " + _h("e080"), False),
    ("x-f0-80-after-text", b"hello " + _h("f080"), False),
    ("x-c1-after-text", b"hello " + _h("c1"), False),
    ("x-f5", _h("f5808080"), False),
    ("x-f8", _h("f8"), False),
    ("x-max-4byte-ok", _h("f3bfbfbf"), True),
    ("x-U+0000-U+007F-run", bytes(range(0x80)), True),
]


def test_utf8_vector_table_is_consistent():
    """The expectations in the table agree with table 3-7 and with Python's decoder."""
    seen = set()
    for vid, data, valid in UTF8_VECTORS:
        assert vid not in seen
        seen.add(vid)
        status, _ = utf8_check(data)
        assert (status == "valid") == valid, vid
        try:
            data.decode("utf-8")
            py_valid = True
        except UnicodeDecodeError:
            py_valid = False
        assert py_valid == valid, vid


def _send_utf8(ws, data, mode):
    if mode == "whole":
        ws.send_frame(OP_TEXT, data, ignore_errors=True)
    elif mode == "frame-per-byte":
        if len(data) <= 1:
            ws.send_frame(OP_TEXT, data, ignore_errors=True)
        else:
            ws.send_raw(fragments(OP_TEXT, data, 1), ignore_errors=True)
    elif mode == "tcp-per-byte":
        frame = build_frame(OP_TEXT, data)
        hl = len(frame) - len(data)
        ws.send_raw(frame[:hl], ignore_errors=True)
        ws.send_raw(frame[hl:], chunk=1, delay=0.0005, ignore_errors=True)
    else:
        raise AssertionError(mode)


@pytest.mark.parametrize("vid,data,valid", UTF8_VECTORS, ids=[v[0] for v in UTF8_VECTORS])
def test_6_utf8_vector(server, vid, data, valid):
    """Each vector sent as one frame, as one frame per byte, and as one frame
    chopped into one TCP write per byte: valid -> echoed, invalid -> 1007."""
    for mode in ("whole", "frame-per-byte", "tcp-per-byte"):
        ws = connect(server)
        _send_utf8(ws, data, mode)
        if valid:
            m = ws.recv_message(5.0)
            assert (m.opcode, m.data) == (OP_TEXT, data), "%s (%s): expected echo, got %r" % (vid, mode, m)
            close_handshake(ws)
        else:
            before, c = ws.expect_close(FAIL_TIMEOUT)
            assert before == [] and c.close_code == 1007, \
                "%s (%s): sent %s, expected close 1007, got %r then %r" % (
                    vid, mode, data.hex(), brief(before), c)
            assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
            ws.close()
    assert_serving(server)


FAIL_FAST_VECTORS = [v for v in UTF8_VECTORS if utf8_check(v[1])[0] == "invalid"]


@pytest.mark.parametrize("vid,data,valid", FAIL_FAST_VECTORS, ids=[v[0] for v in FAIL_FAST_VECTORS])
def test_6_utf8_fail_fast(server, vid, data, valid):
    """The invalid byte is known before the frame / message ends: the server
    must answer 1007 without waiting for the rest (which is never sent)."""
    _, bad = utf8_check(data)
    prefix = data[:bad + 1]
    # (a) one text frame announcing 20 more bytes than sent
    ws = connect(server)
    frame = build_frame(OP_TEXT, prefix + b"x" * 20)
    ws.send_raw(frame[:len(frame) - 20])
    t0 = time.monotonic()
    before, c = ws.expect_close(FAIL_TIMEOUT)
    assert before == [] and c.close_code == 1007, "%s frame prefix %s: got %r, %r" % (
        vid, prefix.hex(), brief(before), c)
    assert time.monotonic() - t0 < FAIL_TIMEOUT
    assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
    ws.close()
    # (b) an unfinished fragmented message: text fin=0 with the prefix, nothing after
    ws = connect(server)
    ws.send_frame(OP_TEXT, prefix, fin=False)
    before, c = ws.expect_close(FAIL_TIMEOUT)
    assert before == [] and c.close_code == 1007, "%s fragment prefix %s: got %r, %r" % (
        vid, prefix.hex(), brief(before), c)
    assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
    ws.close()
    assert_serving(server)


# 6.4.x fail fast, Autobahn's own shapes: the rest is only sent after the close would be due
def test_6_4_1_fail_fast_fragments(server):
    ws = connect(server)
    ws.send_frame(OP_TEXT, KOSME, fin=False)
    ws.send_frame(OP_CONT, _h("f4908080"), fin=False)
    before, c = ws.expect_close(FAIL_TIMEOUT)          # before "edited" is sent
    assert before == [] and c.close_code == 1007, (brief(before), c)
    ws.send_frame(OP_CONT, b"edited", fin=True, ignore_errors=True)
    assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
    ws.close()
    assert_serving(server)


def test_6_4_2_fail_fast_split_code_point(server):
    ws = connect(server)
    ws.send_frame(OP_TEXT, KOSME + _h("f4"), fin=False)
    ws.send_frame(OP_CONT, _h("90"), fin=False)
    before, c = ws.expect_close(FAIL_TIMEOUT)
    assert before == [] and c.close_code == 1007, (brief(before), c)
    ws.send_frame(OP_CONT, _h("8080") + b"edited", fin=True, ignore_errors=True)
    assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
    ws.close()
    assert_serving(server)


def test_6_4_3_fail_fast_single_frame_chopped(server):
    ws = connect(server)
    payload = KOSME + _h("f4908080") + b"edited"
    frame = build_frame(OP_TEXT, payload)
    hl = len(frame) - len(payload)
    ws.send_raw(frame[:hl + len(KOSME)])
    time.sleep(0.05)
    ws.send_raw(frame[hl + len(KOSME):hl + len(KOSME) + 4])
    before, c = ws.expect_close(FAIL_TIMEOUT)
    assert before == [] and c.close_code == 1007, (brief(before), c)
    ws.send_raw(frame[hl + len(KOSME) + 4:], ignore_errors=True)
    assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
    ws.close()
    assert_serving(server)


def test_6_4_4_fail_fast_single_frame_split_code_point(server):
    ws = connect(server)
    payload = KOSME + _h("f4908080") + b"edited"
    frame = build_frame(OP_TEXT, payload)
    hl = len(frame) - len(payload)
    ws.send_raw(frame[:hl + len(KOSME) + 1])          # ... f4
    time.sleep(0.05)
    ws.send_raw(frame[hl + len(KOSME) + 1:hl + len(KOSME) + 2])   # 90
    before, c = ws.expect_close(FAIL_TIMEOUT)
    assert before == [] and c.close_code == 1007, (brief(before), c)
    ws.send_raw(frame[hl + len(KOSME) + 2:], ignore_errors=True)
    assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
    ws.close()
    assert_serving(server)


def test_6_fail_fast_big_frame_invalid_start(server):
    # a 1 MiB text frame whose first bytes are invalid: 1007 after 2 payload bytes
    ws = connect(server)
    frame = build_frame(OP_TEXT, b"\xc0\xaf" + b"a" * (MIB - 2))
    ws.send_raw(frame[:10 + 4 + 2])
    assert_fails(ws, server, 1007)


@pytest.mark.parametrize("how", ["whole", "fragmented"])
def test_6_1_empty_text(server, how):
    ws = connect(server)
    if how == "whole":
        ws.send_text(b"")
    else:
        ws.send_raw(build_frame(OP_TEXT, b"", fin=False) + build_frame(OP_CONT, b"", fin=False) +
                    build_frame(OP_CONT, b"", fin=True))
    assert_echo(ws, OP_TEXT, b"")
    close_handshake(ws)


def test_6_1_3_empty_first_and_last_fragment(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"", fin=False) +
                build_frame(OP_CONT, b"middle frame payload", fin=False) +
                build_frame(OP_CONT, b"", fin=True))
    assert_echo(ws, OP_TEXT, b"middle frame payload")
    close_handshake(ws)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_6_2_code_point_split_across_fragments(server, split):
    # U+1F600 (4 bytes) split after `split` bytes across two frames: valid
    ws = connect(server)
    data = b"a" + "\U0001F600".encode() + b"b"
    ws.send_raw(build_frame(OP_TEXT, data[:1 + split], fin=False) +
                build_frame(OP_CONT, data[1 + split:], fin=True))
    assert_echo(ws, OP_TEXT, data)
    close_handshake(ws)


def test_6_truncated_code_point_at_message_end(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"a\xce", fin=False) + build_frame(OP_CONT, b"", fin=True))
    assert_fails(ws, server, 1007)


def test_6_invalid_utf8_in_binary_is_echoed(server):
    ws = connect(server)
    data = _h("c0af eda080 f4908080 fe ff 80")
    ws.send_binary(data)
    assert_echo(ws, OP_BINARY, data)
    close_handshake(ws)


def test_6_valid_echo_then_invalid(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, KOSME) + build_frame(OP_TEXT, KOSME + _h("eda080")))
    assert_fails(ws, server, 1007, before=[(OP_TEXT, KOSME)])


# --------------------------------------------------------------------------
# 7.x  close handling

def test_7_1_1_echo_then_close(server):
    ws = connect(server)
    ws.send_text("Hello World!")
    assert_echo(ws, OP_TEXT, b"Hello World!")
    close_handshake(ws, 1000)


@pytest.mark.parametrize("after", ["close", "ping", "text", "binary"],
                         ids=["7.1.2-close", "7.1.3-ping", "7.1.4-text", "binary"])
def test_7_1_2_to_7_1_4_frames_after_close_ignored(server, after):
    ws = connect(server)
    follow = {"close": build_frame(OP_CLOSE, close_payload(1000)),
              "ping": build_frame(OP_PING, b"ping"),
              "text": build_frame(OP_TEXT, b"Hello World!"),
              "binary": build_frame(OP_BINARY, b"\x00\x01")}[after]
    ws.send_raw(build_frame(OP_CLOSE, close_payload(1000)) + follow, ignore_errors=True)
    before, c = ws.expect_close(5.0)
    assert before == [], "nothing but the close may come back: %r" % brief(before)
    assert c.close_code == 1000
    assert ws.wait_tcp_close(5.0) == [], "frames after the close"
    ws.close()
    assert_serving(server)


def test_7_1_5_close_inside_fragmented_message(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"fragment1", fin=False) + build_frame(OP_CLOSE, close_payload(1000)) +
                build_frame(OP_CONT, b"fragment2", fin=True), ignore_errors=True)
    before, c = ws.expect_close(5.0)
    assert before == [], brief(before)
    assert c.close_code == 1000
    assert ws.wait_tcp_close(5.0) == []
    ws.close()
    assert_serving(server)


def test_7_1_6_big_message_then_close_then_ping(server):
    ws = connect(server)
    payload = b"BAsd7&jh23" * 26214 + b"Hello"   # ~256 KiB
    sender = ws.send_background(build_frame(OP_TEXT, payload) + build_frame(OP_CLOSE, close_payload(1000)) +
                                build_frame(OP_PING, b"ping"))
    before, c = ws.expect_close(10.0)
    sender.join(10)
    # the message came before the close, so its echo precedes the close reply; no pong
    assert len(before) == 1 and before[0].opcode == OP_TEXT, brief(before)
    ok, why = same_bytes(before[0].data, payload)
    assert ok, why
    assert c.close_code == 1000
    assert ws.wait_tcp_close(5.0) == []
    ws.close()


def test_7_3_1_empty_close(server):
    ws = connect(server)
    ws.send_close(None)
    before, c = ws.expect_close(5.0)
    assert before == []
    assert c.data == b"" or c.close_code == 1000, "empty close answered with %r" % c
    assert ws.wait_tcp_close(5.0) == []
    ws.close()


def test_7_3_2_close_one_byte_payload(server):
    ws = connect(server)
    ws.send_frame(OP_CLOSE, b"\x03")
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("reason", [b"", b"Hello World!", b"*" * 123, KOSME],
                         ids=["7.3.3-no-reason", "7.3.4-reason", "7.3.5-123-byte-reason", "utf8-reason"])
def test_7_3_close_with_reason(server, reason):
    ws = connect(server)
    ws.send_close(1000, reason)
    before, c = ws.expect_close(5.0)
    assert before == []
    assert c.close_code == 1000, c
    assert ws.wait_tcp_close(5.0) == []
    ws.close()


def test_7_3_6_close_payload_126(server):
    ws = connect(server)
    ws.send_close(1000, b"*" * 124)   # 2 + 124 = 126 bytes: 16-bit length
    assert_fails(ws, server, 1002)


@pytest.mark.parametrize("reason", [KOSME + _h("eda080") + b"edited", _h("ff"), _h("c0af"), b"ab" + _h("ce")],
                         ids=["7.5.1-surrogate", "ff", "overlong", "truncated"])
def test_7_5_1_close_reason_invalid_utf8(server, reason):
    ws = connect(server)
    ws.send_close(1000, reason)
    assert_fails(ws, server, 1007)


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES)
def test_7_7_valid_close_code_echoed(server, code):
    ws = connect(server)
    ws.send_close(code, b"reason")
    before, c = ws.expect_close(5.0)
    assert before == []
    assert c.close_code == code, "sent close %d, got %r" % (code, c)
    assert ws.wait_tcp_close(5.0) == []
    ws.close()


@pytest.mark.parametrize("code", INVALID_CODES)
def test_7_9_invalid_close_code(server, code):
    ws = connect(server)
    ws.send_close(code)
    assert_fails(ws, server, 1002)


def test_7_close_chopped_per_byte(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_CLOSE, close_payload(4321, b"bye")), chunk=1, delay=0.001)
    before, c = ws.expect_close(5.0)
    assert before == [] and c.close_code == 4321, c
    assert ws.wait_tcp_close(5.0) == []
    ws.close()


# --------------------------------------------------------------------------
# 9.x  limits and performance (default --max-message is 16 MiB)

SIZES = [64 * 1024, 256 * 1024, MIB, 4 * MIB, 16 * MIB]


def _payload(opcode, n):
    return make_text(n) if opcode == OP_TEXT else make_binary(n)


@pytest.mark.parametrize("size", SIZES, ids=lambda n: "%dKiB" % (n // 1024))
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9.1-text", "9.2-binary"])
def test_9_1_9_2_single_frame(server, opcode, size):
    ws = connect(server)
    payload = _payload(opcode, size)
    big_echo(ws, opcode, payload, build_frame(opcode, payload))
    close_handshake(ws)


FRAG_SIZES = [64, 256, 1024, 4096, 16384, 65536, 256 * 1024, MIB]


@pytest.mark.parametrize("frag", FRAG_SIZES, ids=lambda n: "frag%d" % n)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9.3-text", "9.4-binary"])
def test_9_3_9_4_fragmented_4mib(server, opcode, frag):
    ws = connect(server)
    payload = _payload(opcode, 4 * MIB)
    big_echo(ws, opcode, payload, fragments(opcode, payload, frag))
    close_handshake(ws)


@pytest.mark.parametrize("frag", [64, 4096, 65536], ids=lambda n: "frag%d" % n)
@pytest.mark.parametrize("size", [64 * 1024, 256 * 1024, MIB], ids=lambda n: "%dKiB" % (n // 1024))
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_9_fragmented_other_sizes(server, opcode, size, frag):
    ws = connect(server)
    payload = _payload(opcode, size)
    big_echo(ws, opcode, payload, fragments(opcode, payload, frag))
    close_handshake(ws)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_9_exactly_16mib_fragmented(server, opcode):
    ws = connect(server)
    payload = _payload(opcode, MAX_DEFAULT)
    big_echo(ws, opcode, payload, fragments(opcode, payload, 65536))
    close_handshake(ws)


CHOPS = [64, 128, 256, 512, 1024, 2048]


@pytest.mark.parametrize("chop", CHOPS, ids=lambda n: "chop%d" % n)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9.5-text", "9.6-binary"])
def test_9_5_9_6_1mib_chopped(server, opcode, chop):
    ws = connect(server)
    payload = _payload(opcode, MIB)
    big_echo(ws, opcode, payload, build_frame(opcode, payload), chunk=chop)
    close_handshake(ws)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_9_16mib_chopped_64k_writes(server, opcode):
    ws = connect(server)
    payload = _payload(opcode, MAX_DEFAULT)
    big_echo(ws, opcode, payload, build_frame(opcode, payload), chunk=65536 - 7)
    close_handshake(ws)


@pytest.mark.parametrize("size", [0, 16, 64, 256, 1024, 4096])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9.7-text", "9.8-binary"])
def test_9_7_9_8_thousand_messages(server, opcode, size):
    ws = connect(server)
    msgs = [(_payload(opcode, size - 4) + b"%04d" % i) if size >= 4 else _payload(opcode, size)
            for i in range(1000)]
    t0 = time.monotonic()
    sender = ws.send_background(b"".join(build_frame(opcode, m) for m in msgs))
    for i, want in enumerate(msgs):
        m = ws.recv_message(BIG_TIMEOUT)
        assert m.opcode == opcode and m.data == want, "message %d: got %r" % (i, m)
    sender.join(BIG_TIMEOUT)
    assert sender.error is None
    assert time.monotonic() - t0 < BIG_TIMEOUT
    close_handshake(ws)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_9_over_16mib_single_frame_header_only(server, opcode):
    ws = connect(server)
    ws.send_raw(build_frame(opcode, b"", length=MAX_DEFAULT + 1, len_form=64))
    assert_fails(ws, server, 1009)


def test_9_huge_64bit_length_header_only(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_BINARY, b"", length=1 << 62, len_form=64))
    assert_fails(ws, server, 1009)


def test_9_over_16mib_fragmented(server):
    ws = connect(server)
    payload = make_binary(MAX_DEFAULT)
    sender = ws.send_background(build_frame(OP_BINARY, payload, fin=False) +
                                build_frame(OP_CONT, b"", length=1, fin=True))   # header of 1 more byte
    try:
        assert_fails(ws, server, 1009, timeout=BIG_TIMEOUT)
    finally:
        sender.join(BIG_TIMEOUT)


# --limits with --max-message 1000

@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_max_message_1000_exact_allowed(start_server, opcode):
    srv = start_server("--max-message", "1000")
    ws = connect(srv)
    payload = _payload(opcode, 1000)
    ws.send_frame(opcode, payload)
    assert_echo(ws, opcode, payload)
    ws.send_raw(fragments(opcode, payload, 300))
    assert_echo(ws, opcode, payload)
    close_handshake(ws)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_max_message_1001_single_frame_header_only(start_server, opcode):
    srv = start_server("--max-message", "1000")
    ws = connect(srv)
    ws.send_raw(build_frame(opcode, b"", length=1001))   # 16-bit length, mask key, no payload
    assert_fails(ws, srv, 1009)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_max_message_1001_single_frame_whole(start_server, opcode):
    srv = start_server("--max-message", "1000")
    ws = connect(srv)
    ws.send_frame(opcode, _payload(opcode, 1001), ignore_errors=True)
    assert_fails(ws, srv, 1009)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_max_message_1001_fragmented(start_server, opcode):
    srv = start_server("--max-message", "1000")
    ws = connect(srv)
    payload = _payload(opcode, 1001)
    ws.send_raw(fragments(opcode, payload, 100), ignore_errors=True)   # 11 fragments summing to 1001
    assert_fails(ws, srv, 1009)


def test_max_message_1001_fragmented_header_only(start_server):
    srv = start_server("--max-message", "1000")
    ws = connect(srv)
    ws.send_raw(build_frame(OP_TEXT, b"a" * 500, fin=False) +
                build_frame(OP_CONT, b"", length=501, fin=True))   # header only
    assert_fails(ws, srv, 1009)


def test_max_message_does_not_limit_control_or_sequence(start_server):
    srv = start_server("--max-message", "1000")
    ws = connect(srv)
    for i in range(5):   # the limit is per message, not per connection
        ws.send_binary(make_binary(1000))
        assert_echo(ws, OP_BINARY, make_binary(1000))
    ws.send_ping(b"p" * 125)
    assert_pong(ws, b"p" * 125)
    close_handshake(ws)


# --------------------------------------------------------------------------
# 10.1.1 auto-fragmentation

def test_10_1_1_65536_text_in_1300_byte_fragments(server):
    ws = connect(server)
    payload = make_text(65536)
    ws.send_raw(fragments(OP_TEXT, payload, 1300))
    assert_echo(ws, OP_TEXT, payload, timeout=10.0)
    close_handshake(ws)


# --------------------------------------------------------------------------
# splitting invariance: many frames in one write vs one byte per write

def _mixed_sequence():
    frames, expect = [], []
    for i in range(12):
        t = ("msg %d " % i).encode() + KOSME
        frames.append(build_frame(OP_TEXT, t))
        expect.append((OP_TEXT, t))
        b = bytes([i, 0xFF, 0x00, 0x80]) * (i + 1)
        frames.append(build_frame(OP_BINARY, b))
        expect.append((OP_BINARY, b))
        frames.append(build_frame(OP_PING, b"p%d" % i))
        expect.append((OP_PONG, b"p%d" % i))
        frames.append(build_frame(OP_TEXT, b"frag%d-" % i, fin=False) + build_frame(OP_PING, b"q%d" % i) +
                      build_frame(OP_CONT, KOSME[:3], fin=False) + build_frame(OP_CONT, KOSME[3:], fin=True))
        expect.append((OP_PONG, b"q%d" % i))
        expect.append((OP_TEXT, b"frag%d-" % i + KOSME))
    frames.append(build_frame(OP_TEXT, b"x" * 300))   # 16-bit length
    expect.append((OP_TEXT, b"x" * 300))
    return b"".join(frames), expect


@pytest.mark.parametrize("how", ["one-write", "byte-per-write", "7-byte-writes"])
def test_split_invariance(server, how):
    data, expect = _mixed_sequence()
    ws = connect(server)
    if how == "one-write":
        ws.send_raw(data)
    elif how == "byte-per-write":
        ws.send_raw(data, chunk=1, delay=0.0002)
    else:
        ws.send_raw(data, chunk=7, delay=0.0005)
    got = [ws.recv_message(10.0) for _ in expect]
    assert [(m.opcode, m.data) for m in got] == expect
    close_handshake(ws)


def test_handshake_and_frames_in_one_write(server):
    # the first frames arrive in the same TCP write as the request head
    s = server.connect()
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /echo HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (server.host, server.port, key)).encode()
    s.sendall(req + build_frame(OP_TEXT, b"early") + build_frame(OP_PING, b"early ping"))
    ws = WSClient(s)
    s.settimeout(60)
    # parse the 101 from the buffer
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in ws.buf:
        assert ws._fill(deadline) and not ws.eof, "no handshake response: %r" % bytes(ws.buf)
    head, _, rest = bytes(ws.buf).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    ws.buf = bytearray(rest)
    assert_echo(ws, OP_TEXT, b"early")
    assert_pong(ws, b"early ping")
    close_handshake(ws)


# --------------------------------------------------------------------------
# handshake timeout

def test_handshake_timeout_closes_partial_request(start_server):
    srv = start_server("--handshake-timeout", "1")
    established = connect(srv)           # an upgraded connection is not subject to it
    s = srv.connect(timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    t0 = time.monotonic()
    s.settimeout(6)
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail("partial request head not closed within 6 s")
    elapsed = time.monotonic() - t0
    s.close()
    assert 0.5 <= elapsed <= 3.5, "closed after %.2f s (want ~1-3 s)" % elapsed
    assert b"101" not in got.split(b"\r\n", 1)[0], got
    time.sleep(max(0.0, 2.2 - elapsed))   # well past the handshake timeout
    established.send_text("still here")
    assert_echo(established, OP_TEXT, b"still here")
    close_handshake(established)
    assert_serving(srv)


# --------------------------------------------------------------------------
# robustness: several clients, backpressure, abrupt disconnects

def test_concurrent_clients_get_only_their_own_echo(server):
    clients = [connect(server) for _ in range(50)]
    for rnd in range(5):
        for i, ws in enumerate(clients):
            ws.send_raw(build_frame(OP_TEXT, b"client %d round %d" % (i, rnd), fin=False))
        for i, ws in enumerate(clients):
            ws.send_raw(build_frame(OP_CONT, b" end", fin=True))
        for i, ws in enumerate(clients):
            assert_echo(ws, OP_TEXT, b"client %d round %d end" % (i, rnd))
    for ws in clients:
        close_handshake(ws)


def test_backpressure_client_not_reading(server):
    # 8 MiB of 64 KiB messages while the client reads nothing for a while:
    # the server must not drop, reorder or corrupt anything.
    ws = connect(server)
    msgs = [make_binary(65536 - 8) + b"%08d" % i for i in range(128)]
    sender = ws.send_background(b"".join(build_frame(OP_BINARY, m) for m in msgs))
    time.sleep(1.0)
    for i, want in enumerate(msgs):
        m = ws.recv_message(BIG_TIMEOUT)
        assert m.opcode == OP_BINARY, "message %d: %r" % (i, m)
        ok, why = same_bytes(m.data, want)
        assert ok, "message %d: %s" % (i, why)
    sender.join(BIG_TIMEOUT)
    assert sender.error is None
    ws.send_ping(b"after backpressure")
    assert_pong(ws, b"after backpressure")
    close_handshake(ws)


def test_pings_between_many_fragments_answered_in_order(server):
    ws = connect(server)
    payload = make_text(64 * 1024)
    parts = [payload[i:i + 4096] for i in range(0, len(payload), 4096)]
    data = []
    for i, p in enumerate(parts):
        data.append(build_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1)))
        if i < len(parts) - 1:
            data.append(build_frame(OP_PING, b"ping %d" % i))
    ws.send_raw(b"".join(data))
    for i in range(len(parts) - 1):
        assert_pong(ws, b"ping %d" % i)
    assert_echo(ws, OP_TEXT, payload)
    close_handshake(ws)


@pytest.mark.parametrize("cut", ["mid-header", "mid-payload", "mid-fragmented-message", "mid-handshake",
                                 "mid-big-echo"])
@pytest.mark.parametrize("how", ["fin", "rst"])
def test_abrupt_client_disconnect(server, cut, how):
    if cut == "mid-handshake":
        s = server.connect()
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        ws = WSClient(s)
    else:
        ws = connect(server)
        frame = build_frame(OP_TEXT, b"x" * 1000)
        if cut == "mid-header":
            ws.send_raw(frame[:3])
        elif cut == "mid-payload":
            ws.send_raw(frame[:500])
        elif cut == "mid-fragmented-message":
            ws.send_raw(build_frame(OP_BINARY, b"part", fin=False) + build_frame(OP_PING, b"p"))
            assert_pong(ws, b"p")
        else:   # the server is still writing a 4 MiB echo when the client vanishes
            ws.send_raw(build_frame(OP_BINARY, make_binary(4 * MIB)))
    time.sleep(0.05)
    if how == "rst":
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.close()
    time.sleep(0.1)
    assert_serving(server)


def test_handshake_timeout_closes_idle_connection(start_server):
    # "seconds allowed for an HTTP request or handshake to arrive": no bytes at all
    srv = start_server("--handshake-timeout", "1")
    s = srv.connect(timeout=10)
    t0 = time.monotonic()
    s.settimeout(6)
    try:
        got = s.recv(4096)
        while got:
            got = s.recv(4096)
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail("idle connection not closed within 6 s")
    elapsed = time.monotonic() - t0
    s.close()
    assert 0.5 <= elapsed <= 3.5, "closed after %.2f s (want ~1-3 s)" % elapsed
    assert_serving(srv)


@pytest.mark.parametrize("chop", [1, 3, 5, 7, 13, 997, 4099, "random"])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_odd_tcp_chops(server, opcode, chop):
    # write sizes not aligned to the 4-byte mask key or to code points
    size = 64 * 1024 if chop in (1, 3) else 256 * 1024
    payload = _payload(opcode, size)
    data = build_frame(opcode, payload) + fragments(opcode, payload, 1000 + 3)
    ws = connect(server)
    if chop == "random":
        rnd = random.Random(6455)
        cuts, i = [], 0
        while i < len(data):
            n = rnd.randint(1, 9000)
            cuts.append(data[i:i + n])
            i += n
        errors = []

        def send_pieces():
            try:
                for piece in cuts:
                    ws.sock.sendall(piece)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=send_pieces, daemon=True)
        t.start()
        m1 = ws.recv_message(BIG_TIMEOUT)
        t.join(BIG_TIMEOUT)
        assert not errors, errors
        assert m1.opcode == opcode and same_bytes(m1.data, payload)[0], same_bytes(m1.data, payload)[1]
        assert_echo(ws, opcode, payload, timeout=BIG_TIMEOUT)
        close_handshake(ws)
        return
    else:
        sender = ws.send_background(data, chunk=chop)
    assert_echo(ws, opcode, payload, timeout=BIG_TIMEOUT)
    assert_echo(ws, opcode, payload, timeout=BIG_TIMEOUT)
    sender.join(BIG_TIMEOUT)
    assert sender.error is None
    close_handshake(ws)


def test_max_message_counts_only_data_payload(start_server):
    # pings inside a fragmented message do not count toward --max-message, and
    # the count starts again with every message
    srv = start_server("--max-message", "1000")
    ws = connect(srv)
    for rnd in range(3):
        ws.send_raw(build_frame(OP_TEXT, b"a" * 999, fin=False) + build_frame(OP_PING, b"p" * 125) +
                    build_frame(OP_CONT, b"b", fin=True))
        assert_pong(ws, b"p" * 125)
        assert_echo(ws, OP_TEXT, b"a" * 999 + b"b")
        ws.send_raw(fragments(OP_BINARY, make_binary(1000), 250))
        assert_echo(ws, OP_BINARY, make_binary(1000))
    close_handshake(ws)


def test_handshake_one_byte_per_write_then_echo(server):
    s = server.connect()
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /echo HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (server.host, server.port, key)).encode()
    for i in range(len(req)):
        s.sendall(req[i:i + 1])
        time.sleep(0.0003)
    ws = WSClient(s)
    s.settimeout(60)
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in ws.buf:
        assert ws._fill(deadline) and not ws.eof, "no handshake response: %r" % bytes(ws.buf)
    head, _, rest = bytes(ws.buf).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    assert ("Sec-WebSocket-Accept: " + accept_key(key)).lower().encode() in head.lower(), head
    ws.buf = bytearray(rest)
    ws.send_text(KOSME)
    assert_echo(ws, OP_TEXT, KOSME)
    close_handshake(ws)


def test_ping_flood_not_reading_pongs(server):
    # 20000 pings sent while no pong is read yet: every pong arrives, in order
    ws = connect(server)
    pings = [b"%05d" % i + b"p" * 120 for i in range(20000)]
    sender = ws.send_background(b"".join(build_frame(OP_PING, p) for p in pings))
    time.sleep(0.5)
    for i, p in enumerate(pings):
        m = ws.recv_message(BIG_TIMEOUT)
        assert m.opcode == OP_PONG and m.data == p, "pong %d: %r" % (i, m)
    sender.join(BIG_TIMEOUT)
    assert sender.error is None
    close_handshake(ws)


def test_protocol_error_behind_blocked_output(server):
    # 128 x 64 KiB echoes are pending (client not reading) when a bad frame
    # follows: all echoes arrive, in order, before the 1002 close
    ws = connect(server)
    msgs = [make_binary(65536 - 4) + b"%04d" % i for i in range(128)]
    sender = ws.send_background(b"".join(build_frame(OP_BINARY, m) for m in msgs) +
                                build_frame(OP_TEXT, b"bad", rsv=4) + build_frame(OP_PING, b"no"))
    time.sleep(1.0)
    try:
        got, c = ws.expect_close(BIG_TIMEOUT)
    finally:
        sender.join(BIG_TIMEOUT)
    assert len(got) == len(msgs), "got %d messages before the close, want %d: %r" % (
        len(got), len(msgs), brief(got[-3:]))
    for i, (m, want) in enumerate(zip(got, msgs)):
        assert m.opcode == OP_BINARY and same_bytes(m.data, want)[0], "message %d" % i
    assert c.close_code == 1002, c
    assert ws.wait_tcp_close(FAIL_TIMEOUT) == []
    ws.close()
    assert_serving(server)


def test_utf8_state_survives_control_frame_mid_code_point(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"x\xf0\x9f", fin=False) + build_frame(OP_PING, b"mid") +
                build_frame(OP_CONT, b"\x98", fin=False) + build_frame(OP_PONG, b"ignored") +
                build_frame(OP_CONT, b"\x80y", fin=True))
    assert_pong(ws, b"mid")
    assert_echo(ws, OP_TEXT, "x\U0001F600y".encode())
    close_handshake(ws)


def test_invalid_utf8_fragment_then_ping_no_pong(server):
    ws = connect(server)
    ws.send_raw(build_frame(OP_TEXT, b"ok\xce", fin=False) + build_frame(OP_CONT, b"\x41", fin=False) +
                build_frame(OP_PING, b"no pong"), ignore_errors=True)
    assert_fails(ws, server, 1007)


def test_handshake_timeout_is_not_reset_by_trickling_bytes(start_server):
    # a request head trickling in (one header line every 0.2 s) still gets
    # closed ~1 s after the connection opened: the timeout bounds the whole head
    srv = start_server("--handshake-timeout", "1")
    s = srv.connect(timeout=10)
    t0 = time.monotonic()
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    s.setblocking(False)
    closed_at = None
    i = 0
    while time.monotonic() - t0 < 6:
        try:
            d = s.recv(4096)
            if not d:
                closed_at = time.monotonic() - t0
                break
        except (BlockingIOError, ssl.SSLWantReadError):   # the latter over TLS
            pass
        except ConnectionResetError:
            closed_at = time.monotonic() - t0
            break
        try:
            s.send(b"X-Trickle-%d: y\r\n" % i)
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - t0
            break
        i += 1
        time.sleep(0.2)
    s.close()
    assert closed_at is not None, "trickled request head still open after 6 s"
    assert 0.5 <= closed_at <= 3.5, "closed after %.2f s (want ~1-3 s)" % closed_at
    assert_serving(srv)
