"""The load generator bench/wsbench.c (build/wsbench, or $WSBENCH_BIN) against
the real build/wshub: short runs of every workload (echo, broadcast, chat,
connect, idle) must exit 0 and print one RESULT line with every key, a count
above zero and nothing lost, reordered or wrong. Message sizes cover the 7,
16 and 64-bit frame lengths in both directions; a port where nothing listens
must fail fast with exit 1 and a reason; bad usage exits 2. Each run lasts
a second or two; the whole file stays well under 40 s."""
import base64
import hashlib
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import ROOT, free_port
from tlsutil import make_pki
from wsraw import GUID, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, mask_bytes

WSBENCH = os.environ.get("WSBENCH_BIN", os.path.join(ROOT, "build", "wsbench"))

KEYS = ["workload", "size", "duration", "count", "rate", "p50_us", "p99_us", "max_us",
        "lost", "reordered", "errors", "client_cpu_s", "server_cpu_s", "client_bound"]
SHORT = ["--duration", "1", "--warmup", "0.3"]

pytestmark = pytest.mark.skipif(not os.access(WSBENCH, os.X_OK),
                                reason="build/wsbench not built (make build/wsbench)")


def wsbench(*args, timeout=30):
    """Runs wsbench; returns (exit code, RESULT fields or None, stderr)."""
    proc = subprocess.run([WSBENCH] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
    assert len(lines) <= 1, proc.stdout
    fields = None
    if lines:
        fields = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
    return proc.returncode, fields, proc.stderr


def run_ok(server, workload, *args):
    """A run that must succeed: exit 0 and a clean RESULT; returns its fields."""
    code, res, err = wsbench(workload, "--port", server.port, *args)
    assert code == 0, "wsbench %s exited %s:\n%s" % (workload, code, err)
    assert res is not None, err
    for key in KEYS:
        assert key in res, "RESULT lacks %s: %r" % (key, res)
    assert "conns" in res or "members" in res, res
    assert res["workload"] == workload
    assert int(res["count"]) > 0, res
    assert float(res["rate"]) > 0, res
    assert (res["lost"], res["reordered"], res["errors"]) == ("0", "0", "0"), res
    assert res["client_bound"] in ("yes", "no"), res
    assert float(res["p50_us"]) <= float(res["p99_us"]) <= float(res["max_us"]), res
    assert server.alive(), server.log()
    return res


@pytest.fixture
def hub(start_server):
    return start_server("--rate-limit", "0", "--binary-rate-limit", "0", "--binary-byte-rate", "0",
                        "--max-binary", "1m")


def test_echo(hub):
    res = run_ok(hub, "echo", "--conns", 20, "--inflight", 4, "--size", 1024,
                 "--server-pid", hub.proc.pid, *SHORT)
    assert res["conns"] == "20" and res["size"] == "1024"
    assert float(res["server_cpu_s"]) > 0, res


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_echo_frame_lengths(hub, size):
    """Payloads at the 7/16/64-bit length boundaries, echoed byte for byte."""
    run_ok(hub, "echo", "--conns", 3, "--inflight", 2, "--size", size,
           "--duration", "0.5", "--warmup", "0")


def test_broadcast(hub):
    res = run_ok(hub, "broadcast", "--members", 50, "--publishers", 5, "--size", 64, *SHORT)
    assert res["members"] == "50" and res["publishers"] == "5"
    # every message reaches all 50 members: deliveries are a multiple-ish of 50
    assert int(res["count"]) >= 50


@pytest.mark.parametrize("size,members", [(200, 20), (70000, 4)])
def test_broadcast_long_frames(hub, size, members):
    """16-bit (200 B) and 64-bit (70000 B) lengths on the fan-out path."""
    run_ok(hub, "broadcast", "--members", members, "--publishers", 2, "--size", size, *SHORT)


def test_chat(hub):
    """TEXT chat lines; wshub answers with JSON message events."""
    res = run_ok(hub, "chat", "--members", 30, "--publishers", 3, "--size", 64, *SHORT)
    assert res["publishers"] == "3"


def test_chat_refused_lines_fail(start_server):
    """With wshub's default flood control lines get dropped: wsbench must say so."""
    srv = start_server()
    code, res, err = wsbench("chat", "--port", srv.port, "--members", 2, "--publishers", 1,
                             "--duration", "1", "--warmup", "0")
    assert code == 1, err
    assert "rate-limit" in err or "error event" in err, err


def test_connect(hub):
    res = run_ok(hub, "connect", "--total", 300, "--concurrency", 30)
    assert res["count"] == "300"


def test_idle_rss(hub):
    res = run_ok(hub, "idle", "--conns", 200, "--duration", "1",
                 "--server-pid", hub.proc.pid)
    assert int(res["rss_per_conn"]) > 0, res
    assert int(res["rss_after_kb"]) > int(res["rss_before_kb"]) > 0, res
    assert res["count"] == "200"


def test_sources(hub):
    """--sources binds 127.0.0.1, 127.0.0.2, ...: the server sees them all."""
    res = run_ok(hub, "echo", "--conns", 8, "--sources", 4, "--duration", "0.5", "--warmup", "0")
    assert res["sources"] == "4"


@pytest.fixture(scope="module")
def pki_tls():
    _, tls, cleanup = make_pki()
    yield tls
    cleanup()


@pytest.fixture
def wss_hub(start_server, pki_tls):
    """wshub speaking TLS, with permessage-deflate on."""
    return start_server("--rate-limit", "0", "--binary-rate-limit", "0", "--binary-byte-rate", "0",
                        "--max-binary", "1m", "--deflate", tls=pki_tls)


@pytest.mark.parametrize("deflate", [[], ["--deflate"]])
def test_wss_echo(wss_hub, deflate):
    res = run_ok(wss_hub, "echo", "--tls", *deflate, "--conns", 20, "--inflight", 2, "--size", 1024,
                 "--server-pid", wss_hub.proc.pid, *SHORT)
    assert res["tls"] == "yes", res
    assert res["deflate"] == ("20" if deflate else "0"), res
    wire, msg = float(res["rx_bytes_per_msg"]), float(res["msg_bytes_per_msg"])
    assert msg == 1024.0, res
    assert (wire < msg) if deflate else (wire == msg + 4), res   # 4: a 16-bit frame header


def test_wss_echo_procs(wss_hub):
    """Two worker processes, each with its own TLS context."""
    res = run_ok(wss_hub, "echo", "--tls", "--conns", 10, "--procs", 2, "--size", 200,
                 "--duration", "1", "--warmup", "0.2")
    assert res["tls"] == "yes" and res["procs"] == "2", res


def test_wss_broadcast_and_deflate_chat(wss_hub):
    res = run_ok(wss_hub, "broadcast", "--tls", "--members", 40, "--publishers", 4, "--size", 64, *SHORT)
    assert res["tls"] == "yes" and res["deflate"] == "0", res
    res = run_ok(wss_hub, "chat", "--tls", "--deflate", "--members", 40, "--publishers", 4, "--size", 1024,
                 *SHORT)
    assert res["deflate"] == "40", res
    # chat words compress about 2:1 even inside wshub's JSON event
    assert float(res["rx_bytes_per_msg"]) < 0.7 * float(res["msg_bytes_per_msg"]), res


def test_wss_idle(wss_hub):
    res = run_ok(wss_hub, "idle", "--tls", "--deflate", "--conns", 100, "--duration", "1",
                 "--server-pid", wss_hub.proc.pid)
    assert res["tls"] == "yes" and res["deflate"] == "100" and res["count"] == "100", res
    assert int(res["rss_per_conn"]) > 0, res


def test_deflate_offer_declined(hub):
    """A server without --deflate declines the offer: plain frames, counted as such."""
    res = run_ok(hub, "chat", "--deflate", "--members", 10, "--publishers", 2, "--size", 256, *SHORT)
    assert res["deflate"] == "0" and res["tls"] == "no", res
    assert float(res["rx_bytes_per_msg"]) > float(res["msg_bytes_per_msg"]), res


def test_tls_to_a_plain_port_fails(hub):
    """--tls against a port that speaks plain HTTP: a TLS error, exit 1, no hang."""
    code, res, err = wsbench("echo", "--tls", "--port", hub.port, "--conns", 2, "--duration", "0.5",
                             timeout=20)
    assert code == 1, err
    assert "TLS handshake" in err, err


def test_port2_spreads_members_over_two_nodes(start_server, redis_server):
    """Two wshub nodes of one cluster: every other member on the second; the
    deliveries from a publisher on the other node get their own latency."""
    args = ("--rate-limit", "0", "--binary-rate-limit", "0", "--binary-byte-rate", "0",
            "--redis", redis_server.url())
    a, b = start_server(*args), start_server(*args)
    res = run_ok(a, "broadcast", "--port2", b.port, "--members", 20, "--publishers", 4, "--size", 64,
                 "--welcome", *SHORT)
    assert int(res["cross"]) > 0 and int(res["cross"]) < int(res["count"]), res
    assert 0 < float(res["p50_cross_us"]) <= float(res["p99_cross_us"]), res
    assert b.alive(), b.log()


def test_nothing_listening():
    port = free_port()
    code, res, err = wsbench("echo", "--port", port, "--conns", 5, "--duration", "1", timeout=15)
    assert code == 1
    assert "refused" in err.lower(), err
    assert res is None or res["count"] == "0"


def test_silent_server_times_out():
    """A listener that accepts TCP but never answers the upgrade: every wait is
    bounded, so wsbench gives up after 10 s with the reason, never hangs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        t0 = time.monotonic()
        code, res, err = wsbench("echo", "--port", s.getsockname()[1], "--conns", 2,
                                 "--duration", "1", timeout=25)
        took = time.monotonic() - t0
    assert code == 1, err
    assert "no handshake answer within 10 s" in err, err
    assert 9 < took < 15, took


def test_wrong_endpoint_fails(hub):
    """A path with no endpoint gets 404: every connection must open, so exit 1."""
    code, res, err = wsbench("echo", "--port", hub.port, "--path", "/nowhere", "--conns", 3,
                             "--duration", "0.5")
    assert code == 1
    assert "404" in err, err


@pytest.mark.parametrize("args", [[], ["nosuch"], ["echo", "--bogus", "1"], ["echo", "--conns", "x"],
                                  ["broadcast", "--size", "8"], ["chat", "--size", "20"],
                                  ["broadcast", "--members", "2", "--publishers", "3"],
                                  ["echo", "--port2", "9", "--procs", "2"],
                                  ["echo", "--deflate-offer", ""]])
def test_bad_usage(args):
    code, res, err = wsbench(*args, timeout=10)
    assert code == 2, (args, err)
    assert res is None
    assert "usage" in err


# ------------------------------------------- a server that splits everything

def server_frame(op, payload, fin=True):
    """An unmasked server frame, with the shortest length form."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class SplittingEchoServer:
    """An echo server written here to stress wsbench's parser where wshub never
    goes: the 101 arrives together with a ping, every echo comes back in three
    fragments (1 byte, the bulk, 1 byte: so 7, 16 or 64-bit lengths) with a
    ping between them, and all bytes are written in random small pieces. It
    records protocol faults of the client: an unmasked frame, a pong whose
    payload does not match the ping, a message it did not expect."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.faults, self.pongs, self.echoes = [], 0, 0
        self.lock = threading.Lock()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def fault(self, what):
        with self.lock:
            self.faults.append(what)

    @staticmethod
    def send_pieces(conn, data, rng):
        i = 0
        while i < len(data):
            n = rng.randint(1, 300)
            conn.sendall(data[i:i + n])
            i += n

    def serve(self, conn):
        rng = random.Random(conn.fileno())
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf, pings = b"", []
        try:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            key = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head).group(1)
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            pings.append(b"hello")
            self.send_pieces(conn, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                             + server_frame(OP_PING, b"hello"), rng)
            while True:
                while True:                     # parse one client frame
                    if len(buf) >= 2:
                        n, off = buf[1] & 0x7f, 2
                        if n == 126 and len(buf) >= 4:
                            n, off = struct.unpack("!H", buf[2:4])[0], 4
                        elif n == 127 and len(buf) >= 10:
                            n, off = struct.unpack("!Q", buf[2:10])[0], 10
                        if n < 126 or off > 2:
                            masked = buf[1] & 0x80
                            need = off + (4 if masked else 0) + n
                            if len(buf) >= need:
                                break
                    chunk = conn.recv(262144)
                    if not chunk:
                        return
                    buf += chunk
                op = buf[0] & 0x0f
                if not masked:
                    self.fault("unmasked frame")
                    return
                mask = buf[off:off + 4]
                payload = mask_bytes(buf[off + 4:need], mask)
                buf = buf[need:]
                if op == OP_PONG:
                    if not pings or pings.pop(0) != payload:
                        self.fault("pong %r does not match a ping" % payload[:20])
                    with self.lock:
                        self.pongs += 1
                elif op == OP_CLOSE:
                    conn.sendall(server_frame(OP_CLOSE, payload[:2]))
                    return
                elif op == OP_BINARY:
                    k = len(payload)
                    ping = b"p%d" % rng.randint(0, 10 ** 6)
                    pings.append(ping)
                    if k >= 2:
                        out = (server_frame(op, payload[:1], fin=False) + server_frame(OP_PING, ping)
                               + server_frame(OP_CONT, payload[1:k - 1], fin=False)
                               + server_frame(OP_CONT, payload[k - 1:]))
                    else:
                        out = server_frame(OP_PING, ping) + server_frame(op, payload)
                    self.send_pieces(conn, out, rng)
                    with self.lock:
                        self.echoes += 1
                else:
                    self.fault("unexpected opcode %d" % op)
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("size", [100, 1000, 70000])
def test_fragments_pings_and_splits(size):
    """Fragmented echoes (7/16/64-bit fragment lengths) with pings between the
    fragments, every byte stream cut into small pieces: nothing lost or wrong,
    every ping answered with its own payload, every client frame masked."""
    srv = SplittingEchoServer()
    try:
        code, res, err = wsbench("echo", "--port", srv.port, "--conns", 3, "--inflight", 2,
                                 "--size", size, "--duration", "0.5", "--warmup", "0")
    finally:
        srv.close()
    assert code == 0, err
    assert int(res["count"]) > 0 and res["errors"] == "0", res
    assert srv.faults == [], srv.faults
    assert srv.echoes > 0 and srv.pongs >= 3, (srv.echoes, srv.pongs)
