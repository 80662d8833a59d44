"""Operator features of the real build/wshub, against the README ("Options",
"Config file", "Endpoints"): keepalive pings and the idle timeout, --max-conns
(503), --allow-origin (403), graceful SIGTERM/SIGINT shutdown (close 1001, exit
0 within --shutdown-timeout), --daemon/--pidfile, --log FILE reopened on SIGHUP,
/healthz, /stats (JSON), /metrics (Prometheus) and --stats-allow, --config FILE
(errors as FILE:LINE: with exit 2), the sd_notify READY/STOPPING datagrams,
the open-file limit (raised, 503 when descriptors run out),
scripts/wshub.service (systemd-analyze verify) and make install/uninstall with
DESTDIR. Each test starts its own server with short intervals; every wait is
bounded; raw sockets come from wsraw.py, the rest is stdlib plus
python3-websockets 10.x."""
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BINARY, ROOT, STATIC, free_port
from wsraw import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ConnectionClosed,
                   WSClient, build_frame)

websockets = pytest.importorskip("websockets")

HOST = "127.0.0.1"
CLOSE_REASONS = ["normal", "idle", "protocol_error", "slow_consumer", "rate_limit",
                 "limit_reached", "shutdown", "error"]


# ---------------------------------------------------------------- helpers

def run_async(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wait_until(pred, timeout, interval=0.05):
    """Calls pred until it returns something truthy or timeout passes; returns
    the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def read_response(sock, timeout=5.0):
    """Reads one HTTP response (head, then Content-Length bytes or to EOF).
    Returns (status, headers, body, closed) where closed says the server
    closed the connection after it. status is None if nothing came."""
    deadline = time.monotonic() + timeout
    buf = b""
    closed = False
    head = None
    clen = None
    while True:
        if head is not None and clen is not None and len(buf) >= clen:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        buf += chunk
        if head is None and b"\r\n\r\n" in buf:
            head, _, buf = buf.partition(b"\r\n\r\n")
            if head.split(b" ", 2)[1:2] == [b"101"]:
                break       # the rest belongs to the WebSocket
            for line in head.decode("latin-1").split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    clen = int(v.strip())
    if head is None:
        return None, {}, buf, closed
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), "bad status line %r" % lines[0]
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, buf, closed


def http_get(port, path, timeout=5.0, host=HOST):
    """GET path with Connection: close. Returns (status, headers, body)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n"
                   % (path, port)).encode())
        status, headers, body, _ = read_response(s, timeout)
    assert status is not None, "no HTTP response to GET %s (got %r)" % (path, body)
    return status, headers, body


def upgrade_request(port, path="/echo", origin=None):
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "Origin: %s\r\n" % origin if origin is not None else ""
    return ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
            % (path, HOST, port, key, extra)).encode()


def upgrade_status(port, path="/echo", origin=None, timeout=5.0):
    """Sends an upgrade request; returns (status, closed_after) and closes the socket."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(upgrade_request(port, path, origin))
        status, headers, body, closed = read_response(s, timeout)
        if status != 101 and not closed:
            # a refusal must close; give it a moment
            s.settimeout(2)
            try:
                closed = s.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except (socket.timeout, OSError):
                closed = False
    return status, closed


def get_stats(port):
    status, headers, body = http_get(port, "/stats")
    assert status == 200, "GET /stats -> %s %r" % (status, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    return json.loads(body)


def poll_stats(port, cond, timeout=2.0):
    """Fetches /stats until cond(stats) holds (up to timeout); returns the last."""
    last = [None]

    def probe():
        last[0] = get_stats(port)
        return cond(last[0])
    wait_until(probe, timeout, 0.05)
    return last[0]


def ws_connect(port, path="/echo", timeout=5.0):
    return WSClient.connect(HOST, port, path, timeout=timeout)


def echo_ok(c, text):
    """Sends text on an /echo raw client and checks the echo (pings are answered)."""
    c.send_text(text)
    deadline = time.monotonic() + 5
    while True:
        m = c.recv_message(max(0.01, deadline - time.monotonic()))
        if m.opcode == OP_PING:
            c.send_frame(OP_PONG, m.data)
            continue
        assert m.opcode == OP_TEXT and m.data == text.encode(), "echo of %r was %r" % (text, m)
        return


def next_event(c, timeout=5.0):
    """The next JSON event on a raw chat client (pings answered)."""
    deadline = time.monotonic() + timeout
    while True:
        m = c.recv_message(max(0.01, deadline - time.monotonic()))
        if m.opcode == OP_PING:
            c.send_frame(OP_PONG, m.data)
            continue
        assert m.opcode == OP_TEXT, "expected a text event, got %r" % (m,)
        return json.loads(m.data)


def events_until(c, pred, timeout=5.0):
    """Reads events until pred(event) holds; returns all read."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        ev = next_event(c, max(0.01, deadline - time.monotonic()))
        out.append(ev)
        if pred(ev):
            return out


def join_room(port, room, nick):
    c = ws_connect(port, "/ws/%s?nick=%s" % (room, nick))
    welcome = next_event(c)
    assert welcome.get("type") == "welcome", welcome
    events_until(c, lambda e: e.get("type") == "join" and e.get("nick") == welcome["nick"])
    return c, welcome


def clean_close(c, code=1000):
    """Close handshake from the client side, then wait for the TCP close."""
    c.send_close(code)
    _, m = c.expect_close(5)
    assert m.close_code == code, m
    c.wait_tcp_close(5)
    c.close()


def listening(port):
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def ppid_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[1])


class Proc:
    """A wshub started with subprocess, stdout+stderr to a temp file."""

    def __init__(self, args, cwd=None, binary=BINARY, env=None, preexec_fn=None):
        self.out = tempfile.NamedTemporaryFile(prefix="wshub-ops-", delete=False)
        self.p = subprocess.Popen([binary] + list(args), stdout=self.out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=cwd, env=env, preexec_fn=preexec_fn)

    def output(self):
        with open(self.out.name, errors="replace") as f:
            return f.read()

    def wait_listening(self, port, timeout=10):
        deadline = time.monotonic() + timeout
        while not listening(port):
            assert self.p.poll() is None, "wshub exited (%s) at start:\n%s" % (self.p.returncode, self.output())
            assert time.monotonic() < deadline, "wshub not listening on %d:\n%s" % (port, self.output())
            time.sleep(0.02)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        try:
            os.unlink(self.out.name)
        except OSError:
            pass


@pytest.fixture
def procs():
    started = []

    def start(args, **kw):
        pr = Proc(args, **kw)
        started.append(pr)
        return pr
    yield start
    reports = []
    for pr in started:
        out = pr.output()
        pr.kill()
        if any(m in out for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                                  "SUMMARY: UndefinedBehaviorSanitizer")):
            reports.append(out)
    assert not reports, "sanitizer report in server output:\n" + "\n".join(reports)


def run_cli(args, timeout=5):
    """Runs wshub to completion; returns (code, stdout, stderr); code None = still running (killed)."""
    p = subprocess.Popen([BINARY] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# ---------------------------------------------------------------- keepalive

def test_keepalive_silent_client_pinged_then_closed(start_server):
    srv = start_server("--ping-interval", "1", "--idle-timeout", "3")
    c = ws_connect(srv.port)
    t0 = time.monotonic()
    pings = 0
    close_code = "none"
    t_end = None
    try:
        while time.monotonic() - t0 < 9:
            f = c.recv_frame(max(0.01, t0 + 9 - time.monotonic()))
            if f.opcode == OP_PING:
                pings += 1          # never answered
            elif f.opcode == OP_CLOSE:
                t_end = time.monotonic() - t0
                close_code = int.from_bytes(f.payload[:2], "big") if len(f.payload) >= 2 else None
                break
            else:
                raise AssertionError("unexpected frame %r" % f)
    except ConnectionClosed:
        t_end = time.monotonic() - t0
    except TimeoutError:
        pass
    c.close()
    assert pings >= 1, "no ping (opcode 9) within %.1f s with --ping-interval 1" % (t_end or 9)
    assert t_end is not None, "a client that never answered pings was still open after 9 s (--idle-timeout 3)"
    assert 2.0 <= t_end <= 6.0, "idle client closed after %.2f s, expected about 3 s" % t_end
    assert close_code in (1001, "none"), "idle close frame carried code %r, expected 1001" % close_code
    assert srv.alive()


def test_keepalive_answering_client_stays_open(start_server):
    srv = start_server("--ping-interval", "1", "--idle-timeout", "3")
    raw = ws_connect(srv.port)
    result = {}

    def pong_loop():
        pings = 0
        deadline = time.monotonic() + 6.5
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    f = raw.recv_frame(remaining)
                except TimeoutError:
                    break
                if f.opcode == OP_PING:
                    pings += 1
                    raw.send_frame(OP_PONG, f.payload)
                else:
                    result["unexpected"] = repr(f)
                    break
        except Exception as e:   # reported by the main thread
            result["error"] = repr(e)
        result["pings"] = pings

    t = threading.Thread(target=pong_loop, daemon=True)
    t.start()

    async def lib_client():
        # the library answers pings by itself; its own pings are off
        async with websockets.connect(srv.url("/echo"), ping_interval=None, close_timeout=2) as ws:
            await asyncio.sleep(6.5)
            assert not ws.closed, "websockets client closed by the server: %s %s" % (ws.close_code, ws.close_reason)
            await ws.send("still here")
            got = await asyncio.wait_for(ws.recv(), 3)
            assert got == "still here"

    run_async(lib_client(), timeout=15)
    t.join(10)
    assert not t.is_alive()
    assert "error" not in result, "raw client answering pings was closed: %s" % result.get("error")
    assert "unexpected" not in result, "raw client got %s" % result.get("unexpected")
    assert result["pings"] >= 3, "only %d pings in 6.5 s with --ping-interval 1" % result["pings"]
    echo_ok(raw, "after 6.5 s")
    clean_close(raw)


def test_keepalive_data_frames_count_as_life(start_server):
    srv = start_server("--ping-interval", "1", "--idle-timeout", "3")
    c = ws_connect(srv.port)
    t0 = time.monotonic()
    n = 0
    pings = 0
    while time.monotonic() - t0 < 6.5:
        text = "tick %d" % n
        c.send_text(text)
        deadline = time.monotonic() + 3
        while True:   # pings are read and ignored, never answered
            try:
                m = c.recv_message(max(0.01, deadline - time.monotonic()))
            except ConnectionClosed:
                raise AssertionError("server closed a client sending a text frame every 0.4 s after %.1f s"
                                     % (time.monotonic() - t0))
            if m.opcode == OP_PING:
                pings += 1
                continue
            assert m.opcode == OP_TEXT and m.data == text.encode(), \
                "after %.1f s expected the echo %r, got %r" % (time.monotonic() - t0, text, m)
            break
        n += 1
        time.sleep(0.4)
    assert n >= 10
    # pings go only to a WebSocket that has been quiet --ping-interval seconds
    assert pings == 0, "%d pings to a client that sent a frame every 0.4 s (--ping-interval 1)" % pings
    clean_close(c)


def test_keepalive_off(start_server):
    srv = start_server("--ping-interval", "0", "--idle-timeout", "0")
    c = ws_connect(srv.port)
    try:
        f = c.recv_frame(3.5)
        raise AssertionError("--ping-interval 0 --idle-timeout 0: silent client got %r" % f)
    except TimeoutError:
        pass
    echo_ok(c, "still open")
    clean_close(c)


def test_keepalive_idle_room_member_leaves(start_server):
    srv = start_server("--ping-interval", "1", "--idle-timeout", "3")
    live, _ = join_room(srv.port, "idle", "live")       # next_event answers pings
    silent, _ = join_room(srv.port, "idle", "silent")   # never read until the end
    t0 = time.monotonic()
    events = events_until(live, lambda e: e.get("type") == "leave", timeout=8)
    elapsed = time.monotonic() - t0
    leave = events[-1]
    assert leave.get("nick") == "silent" and leave.get("count") == 1, events
    assert 2.0 <= elapsed <= 6.0, "idle member left after %.1f s" % elapsed
    try:
        before, m = silent.expect_close(2)
        assert m.close_code == 1001, m
    except ConnectionClosed:
        pass
    silent.close()
    # the member that answered pings is still in the room
    live.send_text("/who")
    ev = events_until(live, lambda e: e.get("type") == "members")[-1]
    assert ev["members"] == ["live"], ev
    clean_close(live)


def test_stats_count_pings_and_idle_closes(start_server):
    srv = start_server("--ping-interval", "1", "--idle-timeout", "2", "--handshake-timeout", "1")
    s0 = get_stats(srv.port)
    silent_tcp = socket.create_connection((HOST, srv.port), timeout=5)   # never sends a request
    c = ws_connect(srv.port)
    try:
        c.expect_close(6)
    except ConnectionClosed:
        pass
    c.close()
    status, _, body, closed = read_response(silent_tcp, 3)
    assert closed, "a connection that sent nothing was not closed after --handshake-timeout 1"
    silent_tcp.close()
    s = poll_stats(srv.port, lambda s: s["closed"]["idle"] >= s0["closed"]["idle"] + 2
                   and s["connections"]["websocket"] == 0, 2)
    assert s["pings_sent"] >= s0["pings_sent"] + 1, (s0, s)
    assert s["closed"]["idle"] == s0["closed"]["idle"] + 2, ("idle + handshake timeout", s0, s)
    assert s["connections"]["websocket"] == 0, s
    assert s["uptime_seconds"] >= s0["uptime_seconds"] + 1, (s0, s)


def test_stats_http_connections_and_other_close_reasons(start_server):
    srv = start_server("--max-message", "1000")
    port = srv.port
    s0 = get_stats(port)
    keep = []
    for _ in range(3):
        k = socket.create_connection((HOST, port), timeout=5)
        k.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(k, 5)[0] == 200
        keep.append(k)
    s1 = get_stats(port)
    assert s1["connections"]["http"] == 4, "3 idle keep-alive connections + this request: %r" % s1["connections"]
    assert s1["connections"]["websocket"] == 0
    for k in keep:
        k.close()
    # a malformed request is a protocol error
    with socket.create_connection((HOST, port), timeout=5) as bad:
        bad.sendall(b"GARBAGE\r\n\r\n")
        status, _, body, closed = read_response(bad, 5)
        assert status == 400, (status, body)
    # a message over --max-message: 1009, limit_reached
    c = ws_connect(port)
    c.send_binary(b"x" * 2000)
    _, m = c.expect_close(5)
    assert m.close_code == 1009, m
    c.send_close(1009, ignore_errors=True)
    c.wait_tcp_close(5)
    c.close()
    # a peer that resets without a close: error
    c = ws_connect(port)
    echo_ok(c, "about to vanish")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.sock.close()
    want = lambda s: (s["closed"]["protocol_error"] >= s0["closed"]["protocol_error"] + 1
                      and s["closed"]["limit_reached"] >= s0["closed"]["limit_reached"] + 1
                      and s["closed"]["error"] >= s0["closed"]["error"] + 1
                      and s["closed"]["normal"] >= s0["closed"]["normal"] + 3
                      and s["connections"]["websocket"] == 0)
    s2 = poll_stats(port, want, 2)
    assert s2["closed"]["protocol_error"] == s0["closed"]["protocol_error"] + 1, ("400 request", s0, s2)
    assert s2["closed"]["limit_reached"] == s0["closed"]["limit_reached"] + 1, ("1009", s0, s2)
    assert s2["closed"]["error"] == s0["closed"]["error"] + 1, ("reset without close", s0, s2)
    assert s2["closed"]["normal"] >= s0["closed"]["normal"] + 3, ("3 keep-alive closes", s0, s2)
    assert s2["connections"]["http"] == 1 and s2["connections"]["websocket"] == 0, s2["connections"]
    assert s2["connections_accepted"] >= s0["connections_accepted"] + 8, (s0, s2)
    assert s2["messages_in"] == s0["messages_in"] + 1, ("only the echoed text counts; the 1009 one was "
                                                         "refused before it was read", s0, s2)


# ---------------------------------------------------------------- --max-conns

def refused_503(port, upgrade):
    """Opens a connection that should be over --max-conns: 503, then closed."""
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        req = upgrade_request(port) if upgrade else \
            ("GET /healthz HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (HOST, port)).encode()
        try:
            s.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body, closed = read_response(s, 5)
        assert status == 503, "connection over --max-conns (%s) got status %r, body %r" % (
            "upgrade" if upgrade else "GET /healthz", status, body)
        assert headers.get("content-type", "").startswith("text/plain") and body.strip(), (headers, body)
        if not closed:
            s.settimeout(3)
            try:
                closed = s.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                closed = False
        assert closed, "503 over --max-conns did not close the connection"
    finally:
        s.close()


def test_max_conns(start_server):
    srv = start_server("--max-conns", "5")
    clients = [ws_connect(srv.port) for _ in range(5)]
    refused_503(srv.port, upgrade=False)
    refused_503(srv.port, upgrade=True)
    for i, c in enumerate(clients):
        echo_ok(c, "client %d" % i)
    clean_close(clients.pop())
    clean_close(clients.pop())
    # the freed slots can be used again (the close may take a moment to be processed)
    new = []
    deadline = time.monotonic() + 3
    while len(new) < 2:
        try:
            new.append(ws_connect(srv.port))
        except (AssertionError, ConnectionClosed, OSError):
            assert time.monotonic() < deadline, "closing 2 of 5 connections did not free slots"
            time.sleep(0.1)
    clients += new
    refused_503(srv.port, upgrade=True)
    for i, c in enumerate(clients):
        echo_ok(c, "again %d" % i)
    for c in clients:
        clean_close(c)
    assert srv.alive()
    log = srv.log()
    for bad in ("Segmentation", "Aborted", "AddressSanitizer", "assert"):
        assert bad not in log, log


def test_stats_limit_reached_counts_refusals(start_server):
    srv = start_server("--max-conns", "2")
    s0 = get_stats(srv.port)
    clients = [ws_connect(srv.port) for _ in range(2)]
    refused_503(srv.port, upgrade=True)
    for c in clients:
        clean_close(c)
    s = poll_stats(srv.port, lambda s: s["closed"]["limit_reached"] >= s0["closed"]["limit_reached"] + 1, 2)
    assert s["closed"]["limit_reached"] == s0["closed"]["limit_reached"] + 1, (s0, s)


# ---------------------------------------------------------------- --allow-origin

def test_allow_origin_listed(start_server):
    srv = start_server("--allow-origin", "https://good.example",
                       "--allow-origin", "https://also.example")
    assert upgrade_status(srv.port, "/echo", "https://good.example")[0] == 101
    assert upgrade_status(srv.port, "/echo", "https://also.example")[0] == 101
    assert upgrade_status(srv.port, "/ws/room1", "https://also.example")[0] == 101
    for bad in ("https://evil.example", "https://good.example.evil", "http://good.example", "null"):
        status, closed = upgrade_status(srv.port, "/echo", bad)
        assert status == 403, "Origin: %s -> %r, expected 403" % (bad, status)
        assert closed, "403 for Origin %s did not close the connection" % bad
    assert upgrade_status(srv.port, "/ws/room1", "https://evil.example")[0] == 403
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        s.sendall(upgrade_request(srv.port, "/echo", "https://evil.example"))
        status, headers, body, _ = read_response(s, 5)
        assert status == 403 and headers.get("content-type", "").startswith("text/plain") and body.strip(), \
            "403 should carry a one-line text/plain reason: %r %r" % (headers, body)
    # the allow-list is about WebSocket upgrades only: plain GETs are served
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n")
        assert read_response(s, 5)[0] == 200
    # non-browser clients send no Origin (documented): accepted
    assert upgrade_status(srv.port, "/echo", None)[0] == 101


def test_allow_origin_default_all(start_server):
    srv = start_server()
    assert upgrade_status(srv.port, "/echo", "https://evil.example")[0] == 101
    assert upgrade_status(srv.port, "/echo", None)[0] == 101
    assert wait_until(lambda: "origin" in srv.log().lower(), 2), \
        "the start-up log does not say that every origin is allowed:\n" + srv.log()


# ---------------------------------------------------------------- shutdown

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_all_clients_answer(start_server, sig):
    srv = start_server("--shutdown-timeout", "8")
    echo = ws_connect(srv.port)
    a, _ = join_room(srv.port, "shut", "alice")
    b, _ = join_room(srv.port, "shut", "bob")
    clients = [echo, a, b]
    t0 = time.monotonic()
    srv.proc.send_signal(sig)
    for c in clients:
        _, m = c.expect_close(5)
        assert m.close_code == 1001, "on %s a client got close %r, expected 1001" % (sig.name, m.data)
        c.send_close(1001)
    for c in clients:
        c.wait_tcp_close(5)
        c.close()
    try:
        code = srv.proc.wait(timeout=max(0.1, t0 + 8 + 2 - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise AssertionError("still running 10 s after %s (--shutdown-timeout 8)" % sig.name)
    elapsed = time.monotonic() - t0
    assert code == 0, "exit status %r after %s:\n%s" % (code, sig.name, srv.log())
    assert elapsed < 3.0, ("every client answered the 1001 close at once, yet the server took %.1f s "
                           "to exit (--shutdown-timeout 8)" % elapsed)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_client_ignores_close(start_server, sig):
    srv = start_server("--shutdown-timeout", "2")
    good = ws_connect(srv.port)
    deaf = ws_connect(srv.port)
    t0 = time.monotonic()
    srv.proc.send_signal(sig)
    _, m = good.expect_close(3)
    assert m.close_code == 1001, m
    good.send_close(1001)
    _, m = deaf.expect_close(3)          # read, never answered
    assert m.close_code == 1001, m
    # once shutdown has started, new connections are refused
    try:
        s = socket.create_connection((HOST, srv.port), timeout=2)
    except (ConnectionRefusedError, ConnectionResetError):
        pass
    else:
        with s:
            try:
                s.sendall(("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").encode())
            except OSError:
                pass
            status, _, body, closed = read_response(s, 1.5)
            assert status not in (101, 200) and (closed or status == 503), \
                "a new connection during shutdown got %r %r (closed=%s)" % (status, body, closed)
    try:
        code = srv.proc.wait(timeout=max(0.1, t0 + 2 + 2 - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise AssertionError("still running 4 s after %s with --shutdown-timeout 2 and a client "
                             "that never answers the close" % sig.name)
    assert code == 0, "exit status %r:\n%s" % (code, srv.log())
    deaf.wait_tcp_close(2)
    good.close()
    deaf.close()


def test_shutdown_does_not_wait_for_http_connections(start_server):
    srv = start_server("--shutdown-timeout", "8")
    idle_keepalive = socket.create_connection((HOST, srv.port), timeout=5)
    idle_keepalive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body, closed = read_response(idle_keepalive, 5)
    assert status == 200 and not closed
    half_request = socket.create_connection((HOST, srv.port), timeout=5)
    half_request.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.2)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    # both are closed by the server at once (no 1001 to wait for) ...
    for name, s in (("idle keep-alive", idle_keepalive), ("half-sent request", half_request)):
        status, _, body, closed = read_response(s, 1.5)
        assert closed, "%s connection not closed within 1.5 s of SIGTERM (got %r %r)" % (name, status, body)
        s.close()
    # ... and once the clients have closed too, the process exits without using --shutdown-timeout
    try:
        code = srv.proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        raise AssertionError("with only HTTP connections open (closed by both sides), SIGTERM did "
                             "not exit within 3 s (--shutdown-timeout 8)")
    assert code == 0, srv.log()
    assert time.monotonic() - t0 < 2.5


def test_shutdown_with_a_client_that_does_not_read(start_server):
    """A peer whose receive window is full (the 1001 close cannot even be
    written) does not hold the process past --shutdown-timeout."""
    srv = start_server("--shutdown-timeout", "2")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((HOST, srv.port))
    c = WSClient(s)
    c.handshake(HOST, srv.port, "/echo")
    sender = c.send_background(build_frame(OP_BINARY, b"x" * (8 << 20)))
    time.sleep(1.0)       # the echo fills the socket buffers; this client never reads
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=4)
    except subprocess.TimeoutExpired:
        raise AssertionError("a client that does not read kept the server running 4 s after SIGTERM "
                             "(--shutdown-timeout 2)")
    assert code == 0, srv.log()
    assert time.monotonic() - t0 < 4
    s.close()
    sender.join(5)


@pytest.mark.parametrize("first,second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT),
                                          (signal.SIGTERM, signal.SIGINT)],
                         ids=["TERM-TERM", "INT-INT", "TERM-INT"])
def test_second_signal_exits_at_once(start_server, first, second):
    srv = start_server("--shutdown-timeout", "20")
    deaf = ws_connect(srv.port)
    srv.proc.send_signal(first)
    _, m = deaf.expect_close(3)
    assert m.close_code == 1001, m
    time.sleep(0.2)
    assert srv.proc.poll() is None, "exited before the deaf client answered or the timeout passed"
    t1 = time.monotonic()
    srv.proc.send_signal(second)
    try:
        srv.proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        raise AssertionError("a second signal (%s) during the shutdown wait did not end the process "
                             "within 2 s" % second.name)
    assert time.monotonic() - t1 < 1.5
    deaf.close()


# ---------------------------------------------------------------- daemon / pidfile

def test_daemon_and_pidfile():
    tmp = tempfile.mkdtemp(prefix="wshub-daemon-")
    pidfile = os.path.join(tmp, "wshub.pid")
    port = free_port()
    pid = None
    try:
        launcher = subprocess.Popen([BINARY, "--host", HOST, "--port", str(port), "--static", STATIC,
                                     "--daemon", "--pidfile", pidfile],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        t0 = time.monotonic()
        try:
            out, err = launcher.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.communicate()
            raise AssertionError("--daemon: the command did not return within 5 s "
                                 "(or the daemon kept stdout/stderr open)")
        assert launcher.returncode == 0, (launcher.returncode, out, err)
        assert time.monotonic() - t0 < 3

        def read_pid():
            try:
                with open(pidfile) as f:
                    txt = f.read().strip()
                return int(txt) if txt.isdigit() else None
            except OSError:
                return None
        pid = wait_until(read_pid, 5)
        assert pid, "no pid in %s after --daemon" % pidfile
        assert pid != launcher.pid, "pid file holds the launcher's pid"
        assert pid_alive(pid), "pid %d from the pid file is not running" % pid
        assert ppid_of(pid) != os.getpid(), "the daemon is still our child"
        assert os.getsid(pid) != os.getsid(0), "the daemon did not start a new session"
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            assert os.path.basename(f.read().split(b"\0")[0]) == b"wshub"
        assert os.readlink("/proc/%d/cwd" % pid) == "/", "daemon did not chdir /"
        for fd in (0, 1, 2):
            assert os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "/dev/null", "daemon fd %d not /dev/null" % fd
        assert wait_until(lambda: listening(port), 5), "daemon not listening"
        status, _, body = http_get(port, "/healthz")
        assert status == 200 and body.strip() == b"ok", (status, body)

        # a second start with the same pid file refuses, naming the running pid
        port2 = free_port()
        code, out2, err2 = run_cli(["--host", HOST, "--port", str(port2), "--static", STATIC,
                                    "--pidfile", pidfile])
        assert code is not None, "second start with a live pid file kept running"
        assert code != 0, "second start with a live pid file exited 0"
        assert str(pid) in out2 + err2, "refusal does not name pid %d: %r" % (pid, out2 + err2)
        assert not listening(port2)
        assert read_pid() == pid, "the refused second start changed or removed the pid file"
        assert pid_alive(pid)
        assert http_get(port, "/healthz")[0] == 200

        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not pid_alive(pid), 8), "daemon still alive 8 s after SIGTERM"
        assert wait_until(lambda: not os.path.exists(pidfile), 2), "pid file not removed at exit"
        pid = None
    finally:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


def test_daemon_that_cannot_start_returns_1(tmpdir_ops):
    pidfile = os.path.join(tmpdir_ops, "wshub.pid")
    # the port is taken: the starter waits for the daemon and reports failure
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = run_cli(["--host", HOST, "--port", str(port), "--static", STATIC,
                                  "--daemon", "--pidfile", pidfile])
    assert code == 1, "--daemon on a port in use: exit %r (expected 1), stderr %r" % (code, err)
    assert not os.path.exists(pidfile), "pid file left behind by a daemon that could not start"
    # a pid file naming a live process (this test runner) refuses the start
    with open(pidfile, "w") as f:
        f.write("%d\n" % os.getpid())
    port = free_port()
    code, out, err = run_cli(["--host", HOST, "--port", str(port), "--static", STATIC,
                              "--daemon", "--pidfile", pidfile])
    assert code is not None and code != 0, "--daemon with a live pid file: exit %r" % code
    assert str(os.getpid()) in out + err, "refusal does not name pid %d: %r" % (os.getpid(), out + err)
    assert not listening(port)
    with open(pidfile) as f:
        assert f.read().strip() == str(os.getpid()), "the refused start changed the pid file"


def test_daemon_relative_paths(tmpdir_ops):
    """Relative --pidfile, --log and --static are relative to where it was started
    (the daemon does chdir /)."""
    www = os.path.join(tmpdir_ops, "www")
    os.mkdir(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<p>relative</p>\n")
    port = free_port()
    p = subprocess.run([BINARY, "--host", HOST, "--port", str(port), "--static", "www", "--daemon",
                        "--pidfile", "rel.pid", "--log", "rel.log"], cwd=tmpdir_ops,
                       capture_output=True, timeout=10)
    assert p.returncode == 0, p
    pidfile = os.path.join(tmpdir_ops, "rel.pid")
    pid = None
    try:
        assert wait_until(lambda: os.path.exists(pidfile), 3), "relative --pidfile not written in the start directory"
        with open(pidfile) as f:
            pid = int(f.read().strip())
        status, _, body = http_get(port, "/")
        assert status == 200 and body == b"<p>relative</p>\n", (status, body)
        logf = os.path.join(tmpdir_ops, "rel.log")
        assert wait_until(lambda: os.path.exists(logf) and os.path.getsize(logf) > 0, 3), \
            "relative --log not written in the start directory"
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not pid_alive(pid), 8)
        assert wait_until(lambda: not os.path.exists(pidfile), 2), "relative pid file not removed at exit"
        pid = None
    finally:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("opt", ["--log", "--pidfile"])
def test_unwritable_log_or_pidfile_fails_at_start(opt):
    path = "/nonexistent-wshub-dir/x"
    code, out, err = run_cli(["--host", HOST, "--port", str(free_port()), "--static", STATIC, opt, path])
    assert code is not None and code != 0, "%s %s: exit %r" % (opt, path, code)
    assert path in out + err, "%s %s: the message does not name the file: %r" % (opt, path, out + err)


def test_stale_pidfile_does_not_block(procs):
    tmp = tempfile.mkdtemp(prefix="wshub-pid-")
    try:
        pidfile = os.path.join(tmp, "wshub.pid")
        stale = 999999
        assert not pid_alive(stale)
        with open(pidfile, "w") as f:
            f.write("%d\n" % stale)
        port = free_port()
        pr = procs(["--host", HOST, "--port", str(port), "--static", STATIC, "--pidfile", pidfile])
        pr.wait_listening(port)

        def content():
            with open(pidfile) as f:
                return f.read().strip()
        assert wait_until(lambda: content() == str(pr.p.pid), 2), "pid file holds %r, not %d" % (content(), pr.p.pid)
        pr.p.send_signal(signal.SIGTERM)
        assert pr.p.wait(timeout=8) == 0, pr.output()
        assert not os.path.exists(pidfile), "pid file not removed at exit"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- --log and SIGHUP

LOG_LINE = re.compile(r"\d{2}:\d{2}:\d{2}.*\b(error|warn|warning|info|debug)\b.*\S", re.I)


def test_log_file_reopened_on_sighup(procs):
    tmp = tempfile.mkdtemp(prefix="wshub-logf-")
    try:
        logf = os.path.join(tmp, "wshub.log")
        port = free_port()
        pr = procs(["--host", HOST, "--port", str(port), "--static", STATIC,
                    "--log", logf, "--log-level", "debug"])
        pr.wait_listening(port)
        assert wait_until(lambda: os.path.exists(logf) and os.path.getsize(logf) > 0, 3), \
            "nothing logged to --log file; process output:\n" + pr.output()
        with open(logf) as f:
            old = f.read()
        lines = [l for l in old.splitlines() if l.strip()]
        for l in lines:
            assert LOG_LINE.search(l), "log line without time/level/text: %r" % l
        os.rename(logf, logf + ".1")
        pr.p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert pr.p.poll() is None, "SIGHUP killed the server:\n" + pr.output()
        # cause some logging (debug level)
        assert http_get(port, "/healthz")[0] == 200
        c = ws_connect(port)
        echo_ok(c, "log me")
        clean_close(c)
        assert wait_until(lambda: os.path.exists(logf) and os.path.getsize(logf) > 0, 3), \
            "no new %s with lines after rename + SIGHUP" % logf
        time.sleep(0.2)
        with open(logf) as f:
            new = f.read()
        for l in [l for l in new.splitlines() if l.strip()]:
            assert LOG_LINE.search(l), "log line without time/level/text: %r" % l
        with open(logf + ".1") as f:
            rotated = f.read()
        assert rotated.startswith(old), "rotated file lost its old lines"
        pr.p.send_signal(signal.SIGTERM)
        assert pr.p.wait(timeout=8) == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sighup_without_log_file_keeps_running(start_server):
    srv = start_server()
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert srv.alive(), "SIGHUP without --log killed the server"
    assert http_get(srv.port, "/healthz")[0] == 200


# ---------------------------------------------------------------- /healthz /stats /metrics

def test_healthz(start_server):
    srv = start_server()
    status, headers, body = http_get(srv.port, "/healthz")
    assert status == 200, (status, body)
    assert body.strip() == b"ok", body


def check_stats_shape(s):
    ints = ["uptime_seconds", "connections_accepted", "rooms", "messages_in", "messages_out",
            "bytes_in", "bytes_out", "frames_broadcast", "pings_sent"]
    for k in ints:
        assert k in s, "/stats has no %s: %r" % (k, s)
        assert isinstance(s[k], (int, float)) and not isinstance(s[k], bool) and s[k] >= 0, (k, s[k])
    assert set(["http", "websocket"]) <= set(s["connections"]), s
    for k in ("http", "websocket"):
        assert isinstance(s["connections"][k], int) and s["connections"][k] >= 0
    for r in CLOSE_REASONS:
        assert r in s["closed"], "/stats closed has no %s: %r" % (r, s["closed"])
        assert isinstance(s["closed"][r], int) and s["closed"][r] >= 0


def test_stats_counts(start_server):
    srv = start_server("--rate-limit", "0")
    port = srv.port
    s0 = get_stats(port)
    check_stats_shape(s0)
    assert s0["connections"]["websocket"] == 0 and s0["rooms"] == 0, s0
    assert s0["connections"]["http"] >= 1, "our own /stats request is not counted: %r" % s0

    a, _ = join_room(port, "statsroom", "alice")
    b, _ = join_room(port, "statsroom", "bob")
    events_until(a, lambda e: e.get("type") == "join" and e.get("nick") == "bob")
    s1 = poll_stats(port, lambda s: s["connections"]["websocket"] == 2, 2)
    assert s1["connections"]["websocket"] == 2, s1
    assert s1["connections"]["http"] == 1, ("upgraded connections are no longer http", s1)
    assert s1["rooms"] == 1, s1
    assert s1["connections_accepted"] >= s0["connections_accepted"] + 3, (s0, s1)

    texts = {"alice": ["a1", "a2", "a3"], "bob": ["b1", "b2"]}
    for t in texts["alice"]:
        a.send_text(t)
    for t in texts["bob"]:
        b.send_text(t)
    for c in (a, b):
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 5:
            e = next_event(c, max(0.01, deadline - time.monotonic()))
            if e.get("type") == "message":
                got.append(e)
        assert sorted(e["text"] for e in got) == ["a1", "a2", "a3", "b1", "b2"], got
    s2 = get_stats(port)
    check_stats_shape(s2)
    assert s2["messages_in"] - s1["messages_in"] == 5, ("messages_in", s1, s2)
    assert s2["messages_out"] - s1["messages_out"] == 10, ("messages_out: 5 messages x 2 members", s1, s2)
    assert s2["frames_broadcast"] - s1["frames_broadcast"] == 5, ("frames_broadcast", s1, s2)
    assert s2["bytes_in"] > s1["bytes_in"] and s2["bytes_out"] > s1["bytes_out"], (s1, s2)
    assert s2["uptime_seconds"] >= s0["uptime_seconds"]

    clean_close(a)
    clean_close(b)
    s3 = poll_stats(port, lambda s: s["connections"]["websocket"] == 0
                    and s["closed"]["normal"] >= s2["closed"]["normal"] + 2, 2)
    assert s3["connections"]["websocket"] == 0, s3
    assert s3["closed"]["normal"] >= s2["closed"]["normal"] + 2, (s2, s3)
    assert s3["rooms"] == 1, "an empty room is kept (with its history): %r" % s3

    c, _ = join_room(port, "otherroom", "carol")
    s4 = poll_stats(port, lambda s: s["rooms"] == 2 and s["connections"]["websocket"] == 1, 2)
    assert s4["rooms"] == 2 and s4["connections"]["websocket"] == 1, s4
    c.send_text("unmasked", mask=False)
    _, m = c.expect_close(5)
    assert m.close_code == 1002, m
    c.send_close(1002, ignore_errors=True)
    c.wait_tcp_close(5)
    c.close()
    s5 = poll_stats(port, lambda s: s["closed"]["protocol_error"] >= s4["closed"]["protocol_error"] + 1
                    and s["connections"]["websocket"] == 0, 2)
    assert s5["closed"]["protocol_error"] == s4["closed"]["protocol_error"] + 1, (s4, s5)
    assert s5["connections"]["websocket"] == 0, s5

    # /metrics has the same figures
    s6 = get_stats(port)
    metrics = get_metrics(port)
    compare_metrics(s6, metrics)


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get_metrics(port):
    status, headers, body = http_get(port, "/metrics")
    assert status == 200, (status, body)
    assert headers.get("content-type", "").startswith("text/plain"), headers
    text = body.decode()
    assert text.endswith("\n"), "exposition text must end with a newline"
    samples, types = {}, {}
    for line in text.split("\n")[:-1]:
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] == "TYPE":
                assert len(parts) == 4 and parts[3] in ("counter", "gauge", "untyped", "summary", "histogram"), line
                assert parts[2] not in types, "two TYPE lines for %s" % parts[2]
                types[parts[2]] = parts[3]
            continue
        m = METRIC_LINE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = ()
        if m.group(3):
            pairs = LABEL.findall(m.group(3))
            assert ",".join('%s="%s"' % p for p in pairs) == m.group(3).rstrip(","), line
            labels = tuple(sorted(pairs))
        key = (m.group(1), labels)
        assert key not in samples, "duplicate sample %r" % line
        samples[key] = float(m.group(4))
    return samples, types


def compare_metrics(s, metrics):
    samples, types = metrics

    def val(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        assert key in samples, "/metrics has no %s%s" % (name, labels or "")
        return samples[key]
    counters = ["wshub_connections_accepted_total", "wshub_messages_received_total",
                "wshub_messages_sent_total", "wshub_bytes_received_total", "wshub_bytes_sent_total",
                "wshub_frames_broadcast_total", "wshub_pings_sent_total", "wshub_connections_closed_total"]
    for name in counters:
        assert types.get(name) == "counter", "expected '# TYPE %s counter', got %r" % (name, types.get(name))
    for name in ("wshub_connections", "wshub_rooms"):
        assert types.get(name) == "gauge", "expected '# TYPE %s gauge', got %r" % (name, types.get(name))
    assert types.get("wshub_uptime_seconds") in ("gauge", "counter"), types
    assert val("wshub_uptime_seconds") >= s["uptime_seconds"] - 1
    assert val("wshub_connections", type="websocket") == s["connections"]["websocket"]
    assert val("wshub_connections", type="http") >= 1
    assert val("wshub_rooms") == s["rooms"]
    assert val("wshub_messages_received_total") == s["messages_in"]
    assert val("wshub_messages_sent_total") == s["messages_out"]
    assert val("wshub_frames_broadcast_total") == s["frames_broadcast"]
    assert val("wshub_pings_sent_total") == s["pings_sent"]
    # our own /stats request happened in between: these may have moved a little
    assert s["connections_accepted"] + 1 <= val("wshub_connections_accepted_total") <= s["connections_accepted"] + 2
    assert val("wshub_bytes_received_total") >= s["bytes_in"]
    assert val("wshub_bytes_sent_total") >= s["bytes_out"]
    for r in CLOSE_REASONS:
        v = val("wshub_connections_closed_total", reason=r)
        if r == "normal":
            assert s["closed"][r] <= v <= s["closed"][r] + 2, (r, v, s["closed"])
        else:
            assert v == s["closed"][r], (r, v, s["closed"])


def test_metrics_format_fresh_server(start_server):
    srv = start_server()
    s = get_stats(srv.port)
    check_stats_shape(s)
    metrics = get_metrics(srv.port)
    compare_metrics(s, metrics)
    samples, types = metrics
    assert types.get("wshub_messages_received_total") == "counter"
    assert samples[("wshub_connections", (("type", "websocket"),))] == 0


def test_stats_allow_excludes_loopback(start_server):
    srv = start_server("--stats-allow", "10.0.0.0/8")
    for path in ("/stats", "/metrics"):
        status, _, body = http_get(srv.port, path)
        assert status == 403, "GET %s from 127.0.0.1 with --stats-allow 10.0.0.0/8 -> %s %r" % (path, status, body)
        assert b"wshub_" not in body and b"messages_in" not in body, body
    status, _, body = http_get(srv.port, "/healthz")
    assert status == 200 and body.strip() == b"ok", (status, body)


def test_stats_allow_ipv6_and_mapped(start_server):
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6")
    # dual-stack: 127.0.0.1 arrives as ::ffff:127.0.0.1 and matches the default 127.0.0.0/8
    srv = start_server("--host", "::")
    assert http_get(srv.port, "/stats", host="127.0.0.1")[0] == 200
    assert http_get(srv.port, "/stats", host="::1")[0] == 200
    srv6 = start_server("--host", "::", "--stats-allow", "::1/128")
    assert http_get(srv6.port, "/stats", host="::1")[0] == 200
    assert http_get(srv6.port, "/stats", host="127.0.0.1")[0] == 403
    assert http_get(srv6.port, "/metrics", host="127.0.0.1")[0] == 403
    assert http_get(srv6.port, "/healthz", host="127.0.0.1")[0] == 200
    srv4 = start_server("--host", "::", "--stats-allow", "127.0.0.0/8")
    assert http_get(srv4.port, "/stats", host="127.0.0.1")[0] == 200
    assert http_get(srv4.port, "/stats", host="::1")[0] == 403


@pytest.mark.parametrize("args", [
    ["--ping-interval", "abc"], ["--ping-interval", "-1"], ["--idle-timeout", "x"],
    ["--max-conns", "abc"], ["--max-conns", "-5"], ["--shutdown-timeout", "soon"],
    ["--stats-allow", "banana"], ["--stats-allow", "10.0.0.0/33"], ["--stats-allow", "300.1.1.1/8"],
    ["--stats-allow", "::1/129"], ["--log-level", "loud"], ["--pidfile"], ["--config"],
    ["--allow-origin"], ["--log"], ["--daemon", "yes"],
], ids=lambda a: " ".join(a))
def test_bad_option_values_exit_2(args):
    code, out, err = run_cli(["--host", HOST, "--port", str(free_port()), "--static", STATIC] + args)
    assert code == 2, "%s: exit %r, stderr %r" % (args, code, err)
    assert args[0].lstrip("-") in err or (len(args) > 1 and args[1] in err), \
        "%s: stderr does not say what is wrong: %r" % (args, err)


def test_stats_allow_loopback_host(start_server):
    srv = start_server("--stats-allow", "127.0.0.1/32", "--stats-allow", "10.0.0.0/8")
    assert http_get(srv.port, "/stats")[0] == 200
    assert http_get(srv.port, "/metrics")[0] == 200


# ---------------------------------------------------------------- --config

def write_conf(tmp, lines, name="wshub.conf"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tmpdir_ops():
    d = tempfile.mkdtemp(prefix="wshub-conf-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_config_file(procs, tmpdir_ops):
    port = free_port()
    conf = write_conf(tmpdir_ops, [
        "# wshub test config",
        "",
        "host = 127.0.0.1",
        "port = %d" % port,
        "   # an indented comment",
        "static = %s" % STATIC,
        "history = 3",
        "",
        "allow-origin = https://one.example",
        "allow-origin = https://two.example",
        "daemon = false",
        "log-level = info",
        "max-message = 1k",
    ])
    pr = procs(["--config", conf])
    pr.wait_listening(port)
    a, _ = join_room(port, "confroom", "alice")
    for i in range(1, 6):
        a.send_text("m%d" % i)
    events_until(a, lambda e: e.get("type") == "message" and e.get("text") == "m5")
    b, welcome = join_room(port, "confroom", "bob")
    hist = [e.get("text") for e in welcome["history"]]
    assert hist == ["m3", "m4", "m5"], "history = 3 from the config file; welcome history %r" % hist
    clean_close(a)
    clean_close(b)
    assert upgrade_status(port, "/echo", "https://one.example")[0] == 101
    assert upgrade_status(port, "/echo", "https://two.example")[0] == 101
    assert upgrade_status(port, "/echo", "https://three.example")[0] == 403
    c = ws_connect(port)
    echo_ok(c, "x" * 1024)
    c.send_text("x" * 1025)
    _, m = c.expect_close(5)
    assert m.close_code == 1009, "max-message = 1k from the config file: %r" % m
    c.close()
    pr.p.send_signal(signal.SIGTERM)
    assert pr.p.wait(timeout=8) == 0


def test_config_command_line_wins(procs, tmpdir_ops):
    file_port, cli_port = free_port(), free_port()
    while cli_port == file_port:
        cli_port = free_port()
    conf = write_conf(tmpdir_ops, [
        "host = 127.0.0.1",
        "port = %d" % file_port,
        "static = %s" % STATIC,
        "allow-origin = https://file.example",
        "stats-allow = 10.0.0.0/8",
        "history = 7",
    ])
    pr = procs(["--config", conf, "--port", str(cli_port), "--allow-origin", "https://cli.example",
                "--stats-allow", "127.0.0.1/32", "--history", "1"])
    pr.wait_listening(cli_port)
    assert not listening(file_port), "listening on the config file's port although --port was given"
    assert upgrade_status(cli_port, "/echo", "https://cli.example")[0] == 101
    assert upgrade_status(cli_port, "/echo", "https://file.example")[0] == 403, \
        "--allow-origin on the command line must replace the file's allow-origin lines"
    assert http_get(cli_port, "/stats")[0] == 200, "--stats-allow on the command line must replace the file's"
    a, _ = join_room(cli_port, "wins", "a")
    for t in ("one", "two"):
        a.send_text(t)
    events_until(a, lambda e: e.get("text") == "two")
    b, welcome = join_room(cli_port, "wins", "b")
    assert [e.get("text") for e in welcome["history"]] == ["two"], "--history 1 must beat history = 7"
    clean_close(a)
    clean_close(b)
    pr.p.send_signal(signal.SIGTERM)
    assert pr.p.wait(timeout=8) == 0


@pytest.mark.parametrize("bad", ["history 3", "colour = blue", "port = abc", "daemon = maybe", "port =",
                                 "= 5", "stats-allow = 10.0.0.0/40"],
                         ids=["no-equals", "unknown-key", "bad-port", "bad-flag", "empty-value",
                              "empty-key", "bad-cidr"])
def test_config_errors(tmpdir_ops, bad):
    conf = write_conf(tmpdir_ops, [
        "# config with an error on line 5",
        "",
        "host = 127.0.0.1",
        "static = %s" % STATIC,
        bad,
        "log-level = info",
    ])
    code, out, err = run_cli(["--config", conf])
    assert code == 2, "config line %r: exit %r, stderr %r" % (bad, code, err)
    assert "%s:5:" % conf in err, \
        "config line %r: stderr should be FILE:5: ..., got %r" % (bad, err)


def test_config_trailing_comment(procs, tmpdir_ops):
    """README: "`#` starts a comment" -- also after a value."""
    port = free_port()
    conf = write_conf(tmpdir_ops, [
        "host = 127.0.0.1   # loopback only",
        "port = %d" % port,
        "static = %s" % STATIC,
        "history = 2  # keep two",
    ])
    pr = procs(["--config", conf])
    pr.wait_listening(port, timeout=5)
    a, _ = join_room(port, "tc", "a")
    for t in ("1", "2", "3"):
        a.send_text(t)
    events_until(a, lambda e: e.get("text") == "3")
    b, welcome = join_room(port, "tc", "b")
    assert [e.get("text") for e in welcome["history"]] == ["2", "3"], welcome
    clean_close(a)
    clean_close(b)


def test_config_daemon_true(tmpdir_ops):
    port = free_port()
    pidfile = os.path.join(tmpdir_ops, "c.pid")
    conf = write_conf(tmpdir_ops, [
        "host = 127.0.0.1",
        "port = %d" % port,
        "static = %s" % STATIC,
        "daemon = true",
        "pidfile = %s" % pidfile,
    ])
    code, out, err = run_cli(["--config", conf])
    assert code == 0, "daemon = true: the command should return 0 once listening (%r, %r)" % (code, err)
    pid = None
    try:
        assert os.path.exists(pidfile), "pid file missing after the command returned"
        with open(pidfile) as f:
            pid = int(f.read().strip())
        assert pid_alive(pid) and ppid_of(pid) != os.getpid()
        assert http_get(port, "/healthz")[0] == 200
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not pid_alive(pid), 8)
        assert wait_until(lambda: not os.path.exists(pidfile), 2)
        pid = None
    finally:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_config_missing_file(tmpdir_ops):
    missing = os.path.join(tmpdir_ops, "nope.conf")
    code, out, err = run_cli(["--host", HOST, "--port", str(free_port()), "--config", missing])
    assert code == 2, (code, out, err)
    assert "nope.conf" in err, err


# ---------------------------------------------------------------- sd_notify, descriptor limits

@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_ready_and_stopping(procs, tmpdir_ops, abstract):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "wshub-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
        sock.bind("\0" + name)
        env_value = "@" + name
    else:
        env_value = os.path.join(tmpdir_ops, "notify")
        sock.bind(env_value)
    sock.settimeout(5)
    try:
        port = free_port()
        env = dict(os.environ, NOTIFY_SOCKET=env_value)
        pr = procs(["--host", HOST, "--port", str(port), "--static", STATIC], env=env)
        try:
            msg = sock.recv(4096)
        except socket.timeout:
            raise AssertionError("no sd_notify datagram within 5 s (NOTIFY_SOCKET=%s):\n%s" % (env_value, pr.output()))
        assert "READY=1" in msg.decode().split("\n"), msg
        assert listening(port), "READY=1 sent before the server listens"
        pr.p.send_signal(signal.SIGTERM)
        try:
            msg = sock.recv(4096)
        except socket.timeout:
            raise AssertionError("no STOPPING=1 datagram within 5 s of SIGTERM")
        assert "STOPPING=1" in msg.decode().split("\n"), msg
        assert pr.p.wait(timeout=8) == 0
    finally:
        sock.close()


def nofile_limiter(soft, hard):
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return apply


def open_files_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                parts = line.split()
                return int(parts[3]), int(parts[4])
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def test_nofile_soft_limit_raised_with_warning(procs):
    port = free_port()
    pr = procs(["--host", HOST, "--port", str(port), "--static", STATIC, "--max-conns", "100000"],
               preexec_fn=nofile_limiter(256, 1024))
    pr.wait_listening(port)
    soft, hard = open_files_limit(pr.p.pid)
    assert (soft, hard) == (1024, 1024), "soft limit not raised to the hard limit: %r" % ((soft, hard),)
    assert wait_until(lambda: re.search(r"\bwarn", pr.output(), re.I), 2), \
        "no warning that the hard limit (1024) is below --max-conns 100000:\n" + pr.output()
    pr.p.send_signal(signal.SIGTERM)
    assert pr.p.wait(timeout=8) == 0


def try_ws(port):
    """Upgrade to /echo: (101, WSClient) or (status, None) with the socket closed
    (status None when the connection ended without a response)."""
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        s.sendall(upgrade_request(port))
    except OSError:
        pass
    status, headers, body, closed = read_response(s, 5)
    if status == 101:
        s.settimeout(60)
        c = WSClient(s)
        c.buf += body
        return 101, c
    if status is not None and not closed:
        s.settimeout(3)
        try:
            closed = s.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
        assert closed, "refusal %s did not close the connection" % status
    s.close()
    return status, None


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_gets_503(procs):
    port = free_port()
    pr = procs(["--host", HOST, "--port", str(port), "--static", STATIC, "--max-conns", "100000"],
               preexec_fn=nofile_limiter(64, 64))
    pr.wait_listening(port)
    ok, refused = [], []
    try:
        for i in range(90):
            status, c = try_ws(port)
            if c:
                ok.append(c)
            else:
                refused.append(status)
        assert len(ok) >= 30, "only %d WebSockets with 64 descriptors" % len(ok)
        assert refused, "90 connections with a 64-descriptor limit and none refused"
        assert all(st == 503 for st in refused), "beyond the descriptor limit: %r (expected 503s)" % refused
        # at the limit the server does not spin
        cpu0 = cpu_seconds(pr.p.pid)
        time.sleep(1.0)
        assert cpu_seconds(pr.p.pid) - cpu0 < 0.3, "server busy while out of descriptors"
        for i, c in enumerate(ok):
            echo_ok(c, "fd %d" % i)
        for _ in range(3):
            clean_close(ok.pop())
        c = None
        deadline = time.monotonic() + 3
        while c is None:
            status, c = try_ws(port)
            assert c or time.monotonic() < deadline, "no new connection after closing 3 (last %r)" % status
        ok.append(c)
        echo_ok(c, "after freeing")
        assert pr.p.poll() is None, pr.output()
        s = get_stats(port)
        assert s["closed"]["limit_reached"] >= len(refused), \
            "%d refusals for lack of descriptors, closed.limit_reached = %d" % (len(refused), s["closed"]["limit_reached"])
    finally:
        for c in ok:
            c.close()


def test_info_log_quiet_per_message(start_server):
    srv = start_server()
    time.sleep(0.2)
    before = len(srv.log().splitlines())
    c = ws_connect(srv.port)
    for i in range(30):
        echo_ok(c, "m%d" % i)
    clean_close(c)
    time.sleep(0.2)
    after = len(srv.log().splitlines())
    assert after - before <= 2, "at info, one connection with 30 messages logged %d lines:\n%s" % (
        after - before, "\n".join(srv.log().splitlines()[before:]))


# ---------------------------------------------------------------- systemd unit, make install

UNIT = os.path.join(ROOT, "scripts", "wshub.service")


def exec_start_binary(unit_text):
    m = re.search(r"^ExecStart=([-@:+!]*)(\S+)", unit_text, re.M)
    assert m, "no ExecStart= in the unit"
    return m


def test_systemd_unit_verifies(tmpdir_ops):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    assert os.path.exists(UNIT), "scripts/wshub.service missing"
    with open(UNIT) as f:
        text = f.read()
    m = exec_start_binary(text)
    assert m.group(2) == "/usr/local/bin/wshub", "ExecStart runs %s" % m.group(2)
    copy = text[:m.start(2)] + os.path.abspath(BINARY) + text[m.end(2):]
    path = os.path.join(tmpdir_ops, "wshub.service")
    with open(path, "w") as f:
        f.write(copy)
    p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "systemd-analyze verify: %d\n%s%s" % (p.returncode, p.stdout, p.stderr)
    # verify exits 0 on unknown keys and unparsable values; it only warns about them
    diag = [l for l in (p.stdout + p.stderr).splitlines()
            if re.search(r"wshub\.service:\d+:", l) or "ignoring" in l.lower()]
    assert not diag, "systemd-analyze verify warnings:\n" + "\n".join(diag)


def test_make_install_uninstall(tmpdir_ops, procs):
    dest = os.path.join(tmpdir_ops, "root")
    p = subprocess.run(["make", "install", "PREFIX=/usr/local", "DESTDIR=" + dest], cwd=ROOT,
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, "make install: %s\n%s" % (p.stdout, p.stderr)
    binary = os.path.join(dest, "usr/local/bin/wshub")
    index = os.path.join(dest, "usr/local/share/wshub/static/index.html")
    assert os.path.isfile(binary) and os.access(binary, os.X_OK), "no executable " + binary
    assert os.path.isfile(index), "no " + index
    with open(index, "rb") as f, open(os.path.join(ROOT, "static", "index.html"), "rb") as g:
        index_body = f.read()
        assert index_body == g.read(), "installed index.html differs from static/index.html"
    units = [os.path.join(dest, "lib/systemd/system/wshub.service"),
             os.path.join(dest, "usr/local/lib/systemd/system/wshub.service")]
    present = [u for u in units if os.path.isfile(u)]
    assert present, "unit installed at neither %s" % units
    for u in present:
        with open(u) as f:
            assert exec_start_binary(f.read()).group(2) == "/usr/local/bin/wshub", u

    # the installed binary finds its static files relative to its own path
    port = free_port()
    pr = procs(["--host", HOST, "--port", str(port)], cwd="/", binary=binary)
    pr.wait_listening(port)
    status, _, body = http_get(port, "/")
    assert status == 200 and body == index_body, \
        "installed wshub started from / without --static: GET / -> %s (%d bytes)" % (status, len(body))
    pr.p.send_signal(signal.SIGTERM)
    assert pr.p.wait(timeout=8) == 0

    p = subprocess.run(["make", "uninstall", "PREFIX=/usr/local", "DESTDIR=" + dest], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "make uninstall: %s\n%s" % (p.stdout, p.stderr)
    for path in [binary, index] + present:
        assert not os.path.exists(path), "make uninstall left " + path
