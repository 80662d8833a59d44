"""Limits that make "a peer can only hurt itself" hold for chat rooms, against
the real build/wshub. This file owns:

- --max-binary (default 64 KiB): a binary message over it closes only its
  sender with 1009, from the frame header, before anything is buffered or
  relayed (no more "room wipe", where one 5 MiB frame cut every member as a
  slow consumer);
- chat text bounded by --max-line at the frame header (max_line + 2 bytes for
  a trailing CRLF; longer closes with 1009; max_line+1..+2 that is still too
  long after one line ending is stripped gets too_long);
- --binary-rate-limit (frames/s, burst 2N) and --binary-byte-rate (bytes/s,
  burst 2x): dropped frames, rate_limited errors, 1008 after 10 s of flooding;
  ordinary real-time streams pass untouched;
- a flood of tiny frames cannot freeze the server (work budget per wake-up);
- --max-backlog counts what a queue really costs (per-item overhead too);
- joins with the same nick take linear time in a 10,000-member room;
- --history-bytes per room and --history-total-bytes for all rooms
  (/stats history_bytes, /metrics wshub_history_bytes);
- inconsistent limit options exit 2 naming both options;
- a welcome always fits --max-backlog.

Latencies and join times are only compared with a baseline measured in the
same run; the only absolute times are the contract's own (1008 after about
10 s of flooding, a 60 Hz stream) and the bound on each wait. Every loop is
bounded in count and in time; everything is on loopback. Clients: raw sockets (wsraw
and a non-blocking mass joiner written here); server memory is read from
/proc/<pid>/status (VmRSS)."""
import json
import os
import re
import resource
import select
import socket
import statistics
import struct
import subprocess
import threading
import time

import pytest

from conftest import BINARY, STATIC, free_port
from wsraw import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                   ConnectionClosed, WSClient, build_frame, close_payload)

KiB = 1024
MiB = 1024 * 1024
T = 5.0                 # bound on a single ordinary wait
ZERO_KEY = b"\0\0\0\0"  # masking key for bulk frames: payload bytes stay as they are
UPGRADE = ("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n")


# ---------------------------------------------------------------- helpers

def frame0(opcode, payload=b"", fin=True):
    """A masked client frame with the all-zero key (so the payload goes as is):
    cheap to build by the hundred thousand."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + ZERO_KEY + payload


EMPTY_BINARY = frame0(OP_BINARY)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def cpu_seconds(pid):
    """utime + stime of the process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Samples the server's RSS every 20 ms until stop() (at most 120 s)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_kib(pid)
        self._stop_ev = threading.Event()

    def run(self):
        deadline = time.monotonic() + 120
        while not self._stop_ev.is_set() and time.monotonic() < deadline:
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.02)

    def stop(self):
        self._stop_ev.set()
        self.join(5)
        try:
            self.peak = max(self.peak, rss_kib(self.pid))
        except (OSError, AssertionError):
            pass
        return self.peak


def raise_nofile(need):
    """Raises this process's descriptor limit to the hard limit; fails when
    even that is below `need`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft >= need, "this test needs %d descriptors, RLIMIT_NOFILE hard limit is %d" % (need, hard)


def http_get(srv, path, timeout=T):
    """(status, body) of GET path with Connection: close."""
    s = socket.create_connection((srv.host, srv.port), timeout=timeout)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        got = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            got += d
    finally:
        s.close()
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else None
    return status, body


def get_stats(srv):
    status, body = http_get(srv, "/stats")
    assert status == 200, (status, body[:200])
    return json.loads(body)


def get_metric(srv, name):
    """Value of the unlabelled sample `name` in /metrics (None if absent)."""
    status, body = http_get(srv, "/metrics")
    assert status == 200, (status, body[:200])
    for line in body.decode().split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    return None


def readable(sock, timeout):
    """Whether sock has input (or EOF) within timeout; poll(), since select()
    cannot watch the descriptors above 1024 that the big rooms here use."""
    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(max(0, int(timeout * 1000))))


class Client(WSClient):
    """wsraw's client, waiting with poll() instead of select()."""

    def _fill(self, deadline):
        if self.eof:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not readable(self.sock, remaining):
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.eof = self.reset = True
            return True
        except (BlockingIOError, socket.timeout):
            return False
        if not data:
            self.eof = True
        else:
            self.buf += data
        return True


def ws_connect(srv, path, rcvbuf=None):
    """A raw WebSocket (wsraw) with a valid upgrade; rcvbuf is set before connecting."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(T)
    s.connect((srv.host, srv.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(60)      # bounds blocking sends; reads wait with poll()
    c = Client(s)
    c.handshake(srv.host, srv.port, path, timeout=T)
    return c


def next_item(c, timeout=T):
    """The next thing the server sent: ('event', dict), ('bin', bytes) or
    ('close', code). Pings and pongs are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        m = c.recv_message(max(0.0, deadline - time.monotonic()))
        if m.opcode in (OP_PING, OP_PONG):
            continue
        if m.opcode == OP_TEXT:
            return ("event", json.loads(m.data))
        if m.opcode == OP_BINARY:
            return ("bin", m.data)
        assert m.opcode == OP_CLOSE, m
        return ("close", m.close_code)


def show(items, limit=12):
    """A short description of the last received items, for failure messages."""
    out = []
    for kind, v in items[-limit:]:
        if kind == "bin":
            out.append("binary[%d]" % len(v))
        elif kind == "close":
            out.append("close(%s)" % v)
        elif v.get("type") == "message":
            out.append("message(%r)" % v.get("text", "")[:20])
        elif v.get("type") in ("error", "join", "leave"):
            out.append("%s(%s)" % (v["type"], v.get("code") or v.get("nick")))
        else:
            out.append(str(v.get("type")))
    return ("... " if len(items) > limit else "") + ", ".join(out)


class NotReceived(AssertionError):
    """read_until did not see what it waited for; .got is what did arrive."""

    def __init__(self, msg, got):
        super().__init__(msg)
        self.got = got


def read_until(c, pred, timeout=T, what="client"):
    """Items from c up to and including the first that satisfies pred. A close
    that does not satisfy pred, a timeout or a closed TCP connection fails with
    what was received so far."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            it = next_item(c, max(0.0, deadline - time.monotonic()))
        except (TimeoutError, ConnectionClosed) as e:
            raise NotReceived("%s: %s; received: %s" % (what, e, show(got)), got) from None
        got.append(it)
        if pred(it):
            return got
        if it[0] == "close":
            raise NotReceived("%s: closed with %s; received: %s" % (what, it[1], show(got)), got)


def is_close(it):
    return it[0] == "close"


def is_message(text):
    return lambda it: it[0] == "event" and it[1].get("type") == "message" and it[1].get("text") == text


def is_event(type_, **fields):
    return lambda it: (it[0] == "event" and it[1].get("type") == type_
                       and all(it[1].get(k) == v for k, v in fields.items()))


def join(srv, room, nick, rcvbuf=None):
    """A chat member on a raw socket: returns (client, welcome)."""
    c = ws_connect(srv, "/ws/%s?nick=%s" % (room, nick), rcvbuf)
    kind, w = next_item(c)
    assert kind == "event" and w.get("type") == "welcome", "first frame is not a welcome: %r" % ((kind, w),)
    return c, w


def wait_for_bytes(c, token, timeout):
    """Reads c's raw byte stream, discarding it, until `token` shows up (it is
    searched across read boundaries). Returns the number of bytes read."""
    deadline = time.monotonic() + timeout
    tail = bytes(c.buf)
    c.buf.clear()
    total = len(tail)
    keep = max(1, len(token) - 1)
    while token not in tail:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no %r within %.0f s (%d bytes read)" % (token, timeout, total))
        if not readable(c.sock, remaining):
            continue
        try:
            d = c.sock.recv(1 << 20)
        except ConnectionResetError:
            d = b""
        if not d:
            raise AssertionError("connection closed before %r arrived (%d bytes read)" % (token, total))
        total += len(d)
        tail = tail[-keep:] + d
    return total


def json_size(ev):
    """Bytes of an event as the server writes it (compact, UTF-8, control
    characters as \\u00XX): Python's compact encoding gives the same bytes for
    the ASCII and control-character texts used here."""
    return len(json.dumps(ev, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def assert_serving(srv, room="limits-check"):
    """The server is alive and serves a normal client: an /echo round trip and
    a chat join with a message."""
    assert srv.alive(), "wshub died (exit %s)" % srv.proc.returncode
    c = ws_connect(srv, "/echo")
    try:
        c.send_raw(frame0(OP_BINARY, b"echo-check"))
        m = c.recv_message(T)
        while m.opcode in (OP_PING, OP_PONG):
            m = c.recv_message(T)
        assert m.opcode == OP_BINARY and m.data == b"echo-check", m
    finally:
        c.close()
    nick = "chk" + os.urandom(3).hex()
    j, w = join(srv, room, nick)
    try:
        assert w["nick"] == nick, w
        j.send_raw(frame0(OP_TEXT, "still here"))
        read_until(j, is_message("still here"), what="check client")
    finally:
        j.close()
    assert srv.alive(), "wshub died (exit %s)" % srv.proc.returncode


class Joined:
    """One WebSocket opened by open_many: its socket (non-blocking), the
    welcome event (when read), when it completed, and bytes read past it."""
    __slots__ = ("sock", "welcome", "t", "rest")

    def __init__(self, sock, welcome, t, rest):
        self.sock, self.welcome, self.t, self.rest = sock, welcome, t, rest


def parse_one_frame(buf):
    """(opcode, payload, bytes used) of the whole server frame at the start of
    buf, or None while incomplete."""
    if len(buf) < 2:
        return None
    n = buf[1] & 0x7F
    p = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n = struct.unpack_from("!H", buf, 2)[0]
        p = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n = struct.unpack_from("!Q", buf, 2)[0]
        p = 10
    if len(buf) < p + n:
        return None
    return buf[0] & 0x0F, bytes(buf[p:p + n]), p + n


def open_many(srv, paths, rcvbuf=None, read_welcome=False, inflight=200, timeout=60.0, watch=None):
    """Opens one WebSocket per path with non-blocking sockets, up to `inflight`
    upgrades at once, and returns them as Joined records in the order they
    completed (101 received, and the welcome frame when read_welcome, of which
    only nick and count are kept).
    watch(done, now), called at least every 0.1 s, may raise to abort. On any
    failure every socket opened so far is closed."""
    n = len(paths)
    done = []
    st = {}
    poller = select.poll()
    nxt = 0
    deadline = time.monotonic() + timeout
    try:
        while len(done) < n:
            while nxt < n and len(st) < inflight:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                if rcvbuf:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                s.setblocking(False)
                s.connect_ex((srv.host, srv.port))
                st[s.fileno()] = [s, 0, bytearray(), UPGRADE.format(path=paths[nxt]).encode()]
                poller.register(s, select.POLLOUT)
                nxt += 1
            now = time.monotonic()
            if watch:
                watch(done, now)
            if now > deadline:
                raise AssertionError("only %d of %d WebSockets opened within %.0f s" % (len(done), n, timeout))
            for fd, ev in poller.poll(100):
                rec = st[fd]
                s = rec[0]
                if rec[1] == 0:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    assert err == 0, "connect failed: %s" % os.strerror(err)
                    s.send(rec[3])
                    rec[1] = 1
                    poller.modify(fd, select.POLLIN)
                    continue
                try:
                    d = s.recv(1 << 18)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    d = b""
                buf = rec[2]
                assert d, "connection closed during the upgrade after %d opened: %r" % (len(done), bytes(buf[:300]))
                buf += d
                if rec[1] == 1:
                    i = buf.find(b"\r\n\r\n")
                    if i < 0:
                        continue
                    assert buf.startswith(b"HTTP/1.1 101"), \
                        "upgrade refused after %d opened: %r" % (len(done), bytes(buf[:300]))
                    del buf[:i + 4]
                    rec[1] = 2
                welcome = None
                if read_welcome:
                    f = parse_one_frame(buf)
                    if f is None:
                        continue
                    op, payload, used = f
                    assert op == OP_TEXT, "first frame is not text: opcode %d %r" % (op, payload[:100])
                    full = json.loads(payload)
                    assert full.get("type") == "welcome", full
                    welcome = {"nick": full["nick"], "count": full["count"]}
                    del buf[:used]
                poller.unregister(fd)
                del st[fd]
                done.append(Joined(s, welcome, time.monotonic(), bytes(buf)))
    except BaseException:
        for j in done:
            j.sock.close()
        for rec in st.values():
            rec[0].close()
        raise
    return done


def close_all(clients):
    for c in clients:
        try:
            (c.sock if hasattr(c, "sock") else c).close()
        except OSError:
            pass


# ---------------------------------------------------------------- 1. --max-binary

def test_oversized_binary_closes_only_the_sender(start_server):
    """Room wipe. With default options, one member of a room of 6 sends a
    5 MiB binary frame. The sender, and only the sender, is closed with 1009
    (--max-binary defaults to 64 KiB, checked at the frame header); the other
    5 stay open and then receive, in order, another member's text, binary and
    a binary of exactly 64 KiB; nobody is counted as a slow consumer.
    Today's main accepts the frame (it is under --max-message 16 MiB) and
    broadcasts it: 5 MiB is over --max-backlog 4 MiB for every member, so the
    whole room, sender included, is cut with 1008."""
    srv = start_server()
    members = []
    try:
        for i in range(6):
            members.append(join(srv, "wipe", "m%d" % i)[0])
        sender, speaker = members[0], members[1]
        others = members[1:]
        speaker.send_raw(frame0(OP_TEXT, "before"))
        for i, c in enumerate(members):
            read_until(c, is_message("before"), what="m%d" % i)

        big = frame0(OP_BINARY, b"\x5a" * (5 * MiB))
        t = sender.send_background(big)
        got = read_until(sender, is_close, timeout=10, what="sender of the 5 MiB frame")
        relayed = [len(v) for k, v in got if k == "bin"]
        assert got[-1][1] == 1009, \
            "the sender of a 5 MiB binary frame got close %s, expected 1009 (over --max-binary); " \
            "received first: %s" % (got[-1][1], show(got))
        assert relayed == [], "the sender got binary frames back: %r" % relayed

        exact = bytes(range(256)) * 256            # exactly --max-binary (64 KiB)
        speaker.send_raw(frame0(OP_TEXT, "after-1"))
        speaker.send_raw(frame0(OP_BINARY, b"after-2"))
        speaker.send_raw(frame0(OP_BINARY, exact))
        speaker.send_raw(frame0(OP_TEXT, "after-3"))
        want = [("msg", "after-1"), ("bin", b"after-2"), ("bin", exact), ("msg", "after-3")]
        for i, c in enumerate(others, start=1):
            items = read_until(c, is_message("after-3"), timeout=10, what="m%d (not the sender)" % i)
            data = []
            for kind, v in items:
                if kind == "bin":
                    data.append(("bin", v))
                elif v["type"] == "message":
                    data.append(("msg", v["text"]))
                else:
                    assert v["type"] in ("join", "leave"), v
            seen_5mib = [d for d in data if d[0] == "bin" and len(d[1]) > len(exact)]
            assert not seen_5mib, "m%d received the oversized frame" % i
            assert data[-4:] == want and len(data) == 4, \
                "m%d received %r, expected %r" % (i, [(k, v if k == "msg" else len(v)) for k, v in data],
                                                  [(k, v if k == "msg" else len(v)) for k, v in want])
        close_all(members)               # every close is counted once its connection has ended
        t.join(10)
        deadline = time.monotonic() + 2 * T
        while get_stats(srv)["connections"]["websocket"] and time.monotonic() < deadline:
            time.sleep(0.05)
        st = get_stats(srv)
        assert st["connections"]["websocket"] == 0, st
        assert st["closed"]["slow_consumer"] == 0, "slow consumers were cut: %r" % st["closed"]
    finally:
        close_all(members)
    assert_serving(srv)


def test_max_binary_boundary_and_fragments(start_server):
    """--max-binary is exact and covers fragmented messages (defaults, 64 KiB):
    a binary message of exactly 65536 bytes is relayed; 65537 bytes in one
    frame closes its sender with 1009 and reaches no one; a fragmented binary
    message of 40000 + 40000 bytes closes its sender with 1009 once it grows
    past the limit, and reaches no one. The bystander stays open throughout.
    Today's main relays all of them (the only bound is --max-message 16 MiB)."""
    srv = start_server()
    a, _ = join(srv, "mb", "a")
    b, _ = join(srv, "mb", "b")
    c = None
    try:
        exact = bytes(range(256)) * 256
        a.send_raw(frame0(OP_BINARY, exact))
        for who, cl in (("a", a), ("b", b)):
            items = read_until(cl, lambda it: it[0] == "bin", what=who)
            assert items[-1][1] == exact, "%s: the 64 KiB binary came back altered" % who

        a.send_raw(frame0(OP_BINARY, b"y" * 65537))
        items = read_until(a, lambda it: it[0] in ("bin", "close"), what="sender of 65537 bytes")
        assert items[-1][0] == "close", \
            "a 65537-byte binary (over --max-binary 64 KiB) was relayed back to its sender instead of a 1009"
        assert items[-1][1] == 1009, "65537-byte binary: sender closed with %s, expected 1009" % items[-1][1]
        items = read_until(b, is_event("leave", nick="a"), what="bystander b")
        assert not [v for k, v in items if k == "bin"], "bystander got %s" % show(items)

        c, _ = join(srv, "mb", "c")
        c.send_raw(frame0(OP_BINARY, b"z" * 40000, fin=False))
        c.send_raw(frame0(OP_CONT, b"z" * 40000))
        items = read_until(c, lambda it: it[0] in ("bin", "close"), what="sender of a fragmented 80000-byte binary")
        assert items[-1][0] == "close", \
            "a fragmented 80000-byte binary was relayed back to its sender instead of a 1009"
        assert items[-1][1] == 1009, "fragmented 80000 bytes: sender closed with %s, expected 1009; " \
            "received: %s" % (items[-1][1], show(items))
        items = read_until(b, is_event("leave", nick="c"), what="bystander b")
        assert not [v for k, v in items if k == "bin"], "bystander got %s" % show(items)

        b.send_raw(frame0(OP_BINARY, b"still"))
        items = read_until(b, lambda it: it[0] == "bin", what="bystander b")
        assert items[-1][1] == b"still"
    finally:
        close_all([x for x in (a, b, c) if x])
    assert_serving(srv)


# ---------------------------------------------------------------- 2. --max-line at the header

def test_chat_text_bounded_by_max_line(start_server):
    """--max-line 100: a line of up to 100 bytes plus one trailing line ending
    (so 101-102 bytes on the wire) is a message; 101-102 bytes that are still
    over 100 after stripping one line ending get too_long and the connection
    stays open; 103 bytes closes with 1009 (decided from the frame header),
    and so does a fragmented text message growing past 102 bytes. The other
    member sees only the accepted lines. Today's main checks the length
    before stripping the line ending (so "x"*100 + "\\n" is too_long), and
    buffers text of any length up to --max-message and answers too_long."""
    srv = start_server("--max-line", "100", "--rate-limit", "0")
    a, _ = join(srv, "ml", "alice")
    b, _ = join(srv, "ml", "bob")
    c = None
    try:
        read_until(a, is_event("join", nick="bob"), what="alice")
        cases = [("x" * 100 + "\n", "x" * 100),
                 ("y" * 100 + "\r\n", "y" * 100),
                 ("z" * 101, None),
                 ("w" * 101 + "\n", None),
                 ("v" * 102, None),
                 ("u" * 100 + "\n\n", None)]       # only one line ending is stripped
        for line, _ in cases:
            a.send_raw(frame0(OP_TEXT, line))
        a.send_raw(frame0(OP_TEXT, "end"))
        got = read_until(a, is_message("end"), what="alice")
        got = [(v["type"], v.get("text") if v["type"] == "message" else v.get("code"))
               for k, v in got if k == "event"]
        want = [("message", want_text) if want_text is not None else ("error", "too_long")
                for _, want_text in cases] + [("message", "end")]
        assert got == want, "alice's lines of 101-102 bytes:\n got  %r\n want %r" % (
            [(t, (x[:8] + "..%d" % len(x)) if x and len(x) > 10 else x) for t, x in got],
            [(t, (x[:8] + "..%d" % len(x)) if x and len(x) > 10 else x) for t, x in want])
        got_b = [v["text"] for k, v in read_until(b, is_message("end"), what="bob")
                 if k == "event" and v["type"] == "message"]
        assert got_b == ["x" * 100, "y" * 100, "end"], got_b

        a.send_raw(frame0(OP_TEXT, "t" * 103))
        items = read_until(a, is_close, what="alice after a 103-byte line")
        assert items[-1][1] == 1009, "103-byte line: closed with %s, expected 1009; received: %s" % (
            items[-1][1], show(items))
        items = read_until(b, is_event("leave", nick="alice"), what="bob")
        assert not [v for k, v in items if k == "event" and v["type"] == "message"], show(items)

        c, _ = join(srv, "ml", "carol")
        c.send_raw(frame0(OP_TEXT, "f" * 60, fin=False))
        c.send_raw(frame0(OP_CONT, "f" * 60))
        items = read_until(c, is_close, what="carol sending 60 + 60 bytes of text in fragments")
        assert items[-1][1] == 1009, "fragmented 120-byte line: closed with %s, expected 1009; received: %s" % (
            items[-1][1], show(items))
        items = read_until(b, is_event("leave", nick="carol"), what="bob")
        assert not [v for k, v in items if k == "event" and v["type"] in ("message", "error")], show(items)
    finally:
        close_all([x for x in (a, b, c) if x])
    assert_serving(srv)


def test_stalled_huge_text_messages_are_refused_at_the_header(start_server):
    """Mid-message stall: with --max-line 4096, 50 chat members each send the
    header of a 16 MiB text frame and 1 MiB of its payload, then stall. Each
    gets a 1009 close within the ordinary wait (decided from the header), and
    the server's RSS does not grow by the 50 MiB of payload sent (let alone
    the 800 MiB announced). Today's main accepts the header (16 MiB is within
    --max-message), buffers every byte that arrives, and waits for the rest:
    no close, and 50 MiB held for nothing."""
    srv = start_server("--max-line", "4096")
    pid = srv.proc.pid
    n, part, announced = 50, 1 * MiB, 16 * MiB
    conns = []
    senders = []
    try:
        for i in range(n):
            conns.append(join(srv, "stall", "s%d" % i)[0])
        time.sleep(0.2)
        rss0 = rss_kib(pid)
        sampler = RssSampler(pid)
        sampler.start()
        data = build_frame(OP_TEXT, b"x" * part, length=announced, len_form=64)
        for c in conns:
            senders.append(c.send_background(data))
        deadline = time.monotonic() + T
        codes = []
        for c in conns:
            try:
                items = read_until(c, is_close, timeout=max(0.0, deadline - time.monotonic()))
                codes.append(items[-1][1])
            except AssertionError:
                codes.append(None)
        time.sleep(0.5)
        peak = sampler.stop()
        ok = codes.count(1009)
        assert ok == n, "%d of %d stalled 16 MiB text messages got 1009 within %.0f s; codes: %r" % (
            ok, n, T, sorted(set(codes), key=str))
        grown = peak - rss0
        assert grown < 16 * 1024, "RSS grew by %d KiB for %d x %d KiB of payload sent (%d MiB announced)" % (
            grown, n, part // KiB, n * announced // MiB)
    finally:
        close_all(conns)
        for t in senders:
            t.join(5)
    assert_serving(srv)


# ---------------------------------------------------------------- 3. binary rate limits

def seq_frames(first, count, size=4):
    return b"".join(frame0(OP_BINARY, struct.pack("!I", i) + b"\xab" * (size - 4))
                    for i in range(first, first + count))


def seqs_of(items):
    return [struct.unpack("!I", v[:4])[0] for k, v in items if k == "bin"]


def test_binary_burst_is_rate_limited(start_server):
    """Default --binary-rate-limit 120 (burst 240): a burst of 2000 tiny binary
    frames relays the first 240 (plus what the bucket refills while the burst
    is read), in order, to every member; the rest are dropped and the sender
    gets rate_limited errors (at most about one a second), the bystander none.
    After a second's pause frames pass again. Today's main does not limit
    binary frames: all 2000 are relayed."""
    srv = start_server()
    rate = 120
    a, _ = join(srv, "burst", "a")
    b, _ = join(srv, "burst", "b")
    try:
        read_until(a, is_event("join", nick="b"), what="a")
        t0 = time.monotonic()
        a.send_raw(seq_frames(0, 2000) + frame0(OP_TEXT, "burst-done"))
        got_b = read_until(b, is_message("burst-done"), timeout=15, what="b")
        elapsed = time.monotonic() - t0
        got_a = read_until(a, is_message("burst-done"), timeout=15, what="a (the sender)")
        sb, sa = seqs_of(got_b), seqs_of(got_a)
        allowed = 2 * rate + rate * elapsed + 5
        assert len(sb) <= allowed, \
            "%d of 2000 burst frames relayed in %.2f s; --binary-rate-limit %d allows about %d" % (
                len(sb), elapsed, rate, allowed)
        assert sb[:2 * rate] == list(range(2 * rate)), "the first 2N frames did not all pass, in order: %r" % sb[:20]
        assert sb == sorted(set(sb)), "relayed frames out of order or duplicated"
        assert sa == sb, "the sender and the bystander saw different frames"
        errs = [v for k, v in got_a if k == "event" and v["type"] == "error"]
        assert errs, "the sender got no rate_limited error"
        assert all(e.get("code") == "rate_limited" for e in errs), errs
        assert len(errs) <= elapsed + 2, "%d rate_limited errors in %.1f s" % (len(errs), elapsed)
        assert not [v for k, v in got_b if k == "event" and v["type"] == "error"], "the bystander got an error"

        time.sleep(1.1)
        a.send_raw(seq_frames(10000, 10) + frame0(OP_TEXT, "later-done"))
        for who, c in (("b", b), ("a", a)):
            s = seqs_of(read_until(c, is_message("later-done"), what=who))
            assert s == list(range(10000, 10010)), "%s: after a pause, got %r" % (who, s)
    finally:
        close_all([a, b])
    assert_serving(srv)


def test_binary_byte_rate_limits_big_frames(start_server):
    """Default --binary-byte-rate 512 KiB/s (burst 1 MiB): a burst of 40 frames
    of 60000 bytes (2.4 MB, each under --max-binary and far under the frame
    rate limit) relays only about 1 MiB of them (17, plus refill while the
    burst is read), in order; the sender gets rate_limited. Today's main
    relays all 40."""
    srv = start_server()
    size, count, byte_rate = 60000, 40, 512 * KiB
    a, _ = join(srv, "bytes", "a")
    b, _ = join(srv, "bytes", "b")
    try:
        read_until(a, is_event("join", nick="b"), what="a")
        t0 = time.monotonic()
        a.send_raw(seq_frames(0, count, size) + frame0(OP_TEXT, "bytes-done"))
        got_b = read_until(b, is_message("bytes-done"), timeout=15, what="b")
        elapsed = time.monotonic() - t0
        got_a = read_until(a, is_message("bytes-done"), timeout=15, what="a (the sender)")
        sb = seqs_of(got_b)
        allowed = (2 * byte_rate + byte_rate * elapsed) / size + 2
        assert len(sb) <= allowed, \
            "%d of %d frames of %d bytes relayed in %.2f s; --binary-byte-rate %d allows about %d" % (
                len(sb), count, size, elapsed, byte_rate, allowed)
        assert len(sb) >= (2 * byte_rate) // size - 1, "only %d frames passed; the burst is 1 MiB" % len(sb)
        assert sb == list(range(len(sb))), "relayed frames are not the first ones in order: %r" % sb
        assert seqs_of(got_a) == sb
        errs = [v for k, v in got_a if k == "event" and v["type"] == "error"]
        assert errs and all(e.get("code") == "rate_limited" for e in errs), errs
    finally:
        close_all([a, b])
    assert_serving(srv)


def test_binary_60hz_stream_passes_with_defaults(start_server):
    """What the limits are for not to break: a game-state stream of 60 frames a
    second of 1 KiB each (60 KiB/s) for 2 s passes entirely, in order, with no
    error, under the default binary limits. (Passes on today's main too; it
    fails if the limits are too tight.)"""
    srv = start_server()
    a, _ = join(srv, "game", "a")
    b, _ = join(srv, "game", "b")
    try:
        read_until(a, is_event("join", nick="b"), what="a")
        t0 = time.monotonic()
        for i in range(120):
            delay = t0 + i / 60.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            a.send_raw(seq_frames(i, 1, 1024))
        a.send_raw(frame0(OP_TEXT, "game-done"))
        for who, c in (("b", b), ("a", a)):
            items = read_until(c, is_message("game-done"), timeout=10, what=who)
            assert seqs_of(items) == list(range(120)), "%s got %d of 120 frames: %r" % (
                who, len(seqs_of(items)), seqs_of(items)[:10])
            assert all(len(v) == 1024 for k, v in items if k == "bin")
            errs = [v for k, v in items if k == "event" and v["type"] == "error"]
            assert not errs, "%s: %r" % (who, errs)
    finally:
        close_all([a, b])
    assert_serving(srv)


def test_binary_flood_closed_after_10s(start_server):
    """A member that keeps sending about 1000 tiny binary frames a second
    (default limit 120/s) is closed with 1008 after about 10 s of flooding,
    having had rate_limited errors at most about once a second; the room gets
    its leave and /stats counts closed.rate_limit. Today's main never limits
    binary frames, so after 16 s of flooding there is still no close."""
    srv = start_server()
    a, _ = join(srv, "bflood", "a")
    b, _ = join(srv, "bflood", "b")
    stop = threading.Event()
    sent = [0]

    def flood():
        batch = EMPTY_BINARY * 20
        end = time.monotonic() + 16
        try:
            while not stop.is_set() and time.monotonic() < end:
                a.sock.sendall(batch)
                sent[0] += 20
                time.sleep(0.02)
        except OSError:
            pass

    try:
        read_until(a, is_event("join", nick="b"), what="a")
        t0 = time.monotonic()
        th = threading.Thread(target=flood, daemon=True)
        th.start()
        try:
            items = read_until(a, is_close, timeout=17, what="flooder")
        except NotReceived as e:
            items = e.got + [("close", None)]
        finally:
            closed_at = time.monotonic() - t0
            stop.set()
            th.join(5)
        assert items[-1][1] == 1008, \
            "flooder closed with %s after %.1f s of about 1000 binary frames a second, expected 1008 " \
            "after about 10 s (%d frames sent, %d relayed back, %d rate_limited errors)" % (
                items[-1][1], closed_at, sent[0], len([1 for k, v in items if k == "bin"]),
                len([1 for k, v in items if k == "event" and v["type"] == "error"]))
        assert 8 <= closed_at <= 14, "flooder closed after %.1f s of flooding, expected about 10" % closed_at
        errs = [v for k, v in items if k == "event" and v["type"] == "error"]
        assert errs and all(e.get("code") == "rate_limited" for e in errs), errs
        assert len(errs) <= closed_at + 2, "%d rate_limited errors in %.1f s" % (len(errs), closed_at)
        relayed = len([1 for k, v in items if k == "bin"])
        assert relayed <= 2 * 120 + 120 * closed_at + 10, \
            "%d of %d frames relayed in %.1f s" % (relayed, sent[0], closed_at)
        read_until(b, is_event("leave", nick="a"), timeout=10, what="bystander")
        a.send_raw(frame0(OP_CLOSE, close_payload(1008)), ignore_errors=True)
        a.close()                                 # a close is counted once the connection has ended
        deadline = time.monotonic() + 2 * T
        while get_stats(srv)["closed"]["rate_limit"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        st = get_stats(srv)
        assert st["closed"]["rate_limit"] == 1, st["closed"]
    finally:
        stop.set()
        close_all([a, b])
    assert_serving(srv)


# ---------------------------------------------------------------- 4. work budget

def test_tiny_frame_flood_does_not_freeze_others(start_server):
    """With the binary limits off (--binary-rate-limit 0 --binary-byte-rate 0)
    only the per-wake-up work budget protects the others: a room of 600
    passive members plus a sender that writes 20,000 empty binary frames in
    one burst (12 million deliveries). An /echo client measures round trips
    before (idle) and during the flood, in the same run; during the flood the
    95th percentile must stay within 100 x the idle median + 100 ms and the
    worst under a second (about 15 ms is typical with a work budget;
    sanitizer builds are slower). Today's
    main processes everything a read brought in (about 11,000 frames x 600
    members) before looking at any other socket, so an echo waits 1.5-4 s.
    (Today's main also refuses the two options: exit 2.)"""
    raise_nofile(1000)
    srv = start_server("--binary-rate-limit", "0", "--binary-byte-rate", "0")
    passive = open_many(srv, ["/ws/tiny?nick=p%d" % i for i in range(600)], rcvbuf=1 << 20)
    sender = echo = None
    stop = threading.Event()
    samples, errors = [], []
    th = None
    try:
        sender, w = join(srv, "tiny", "sender")
        assert w["count"] == 601, w["count"]
        echo = ws_connect(srv, "/echo")

        def rtt(i):
            payload = b"e%09d" % i
            t = time.perf_counter()
            echo.send_raw(frame0(OP_TEXT, payload))
            m = echo.recv_message(timeout=20)
            while m.opcode in (OP_PING, OP_PONG):
                m = echo.recv_message(timeout=20)
            assert m.opcode == OP_TEXT and m.data == payload, m
            return t, time.perf_counter()

        idle = [e - s for s, e in (rtt(i) for i in range(300))]
        p50 = statistics.median(idle)

        def measure():
            i = 0
            end = time.monotonic() + 60
            try:
                while not stop.is_set() and i < 1000000 and time.monotonic() < end:
                    samples.append(rtt(1000 + i))
                    i += 1
            except Exception as e:       # reported below
                errors.append(e)

        th = threading.Thread(target=measure, daemon=True)
        th.start()
        time.sleep(0.1)
        tf0 = time.perf_counter()
        sender.send_raw(EMPTY_BINARY * 20000 + frame0(OP_TEXT, "tiny-flood-done"))
        wait_for_bytes(sender, b'"text":"tiny-flood-done"', timeout=60)
        tf1 = time.perf_counter()
        time.sleep(0.1)
        stop.set()
        th.join(25)
        assert not errors, "echo client failed during the flood: %r" % errors
        during = [e - s for s, e in samples if e >= tf0 and s <= tf1]
        assert during, "no echo round trip overlapped the flood"
        # The 95th percentile against the idle median, and the worst against
        # a second's stall: one scheduling hiccup of a shared, loaded machine
        # must not decide, but a server that holds the loop for the whole
        # burst (1.5 to 4 s before the work budget) fails both.
        bound = 100 * p50 + 0.1
        during.sort()
        p95 = during[min(len(during) - 1, int(len(during) * 0.95))]
        worst = during[-1]
        print("echo idle median %.5f s; during the %.2f s flood: %d round trips, median %.4f s, p95 %.4f s, "
              "worst %.4f s (bound %.3f s)" % (p50, tf1 - tf0, len(during), statistics.median(during), p95, worst,
                                               bound))
        assert p95 <= bound and worst <= 1.0, \
            "echo round trips during the flood: p95 %.3f s, worst %.3f s (%d round trips, flood %.2f s); " \
            "idle median %.5f s, bound %.3f s for p95 and 1 s for the worst" % (
                p95, worst, len(during), tf1 - tf0, p50, bound)
    finally:
        stop.set()
        if th:
            th.join(5)
        close_all([j.sock for j in passive] + [x for x in (sender, echo) if x])
    assert_serving(srv)


# ---------------------------------------------------------------- 5. backlog cost per item

def test_backlog_counts_per_item_cost(start_server, monkeypatch):
    """--max-backlog must bound what a queue really costs, not only its payload
    bytes: 12 members that never read (4 KiB receive buffers), a sender that
    floods 4,000,000 empty binary frames (limits off, --max-backlog 1m; so
    many because the kernel's send buffer, up to tcp_wmem's 4 MB, takes the
    first few MB of each non-reader's 2-byte frames before anything queues in
    the server). The server's RSS must grow by less than 12 x 4 x 1 MiB
    (non-readers may be cut with 1008). Today's main counts 2 bytes per queued
    frame, so a non-reader is cut only once half a million frames are queued,
    at more than 10 times the limit in real memory (RSS +160 MB, measured
    without the two binary-limit options). (Today's main also refuses the binary
    limit options: exit 2.)"""
    monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0").lstrip(":"))
    raise_nofile(200)
    limit = 1 * MiB
    nsinks = 12
    srv = start_server("--max-backlog", "1m", "--binary-rate-limit", "0", "--binary-byte-rate", "0")
    pid = srv.proc.pid
    sinks = open_many(srv, ["/ws/cost?nick=sink%d" % i for i in range(nsinks)], rcvbuf=4096)
    sender = None
    result = {}
    try:
        sender, w = join(srv, "cost", "sender")
        assert w["count"] == nsinks + 1, w
        time.sleep(0.3)
        rss0 = rss_kib(pid)
        sampler = RssSampler(pid)
        sampler.start()

        def drain():
            try:
                result["bytes"] = wait_for_bytes(sender, b'"text":"per-item-done"', timeout=90)
            except AssertionError as e:
                result["error"] = str(e)

        th = threading.Thread(target=drain, daemon=True)
        th.start()
        sender.send_raw(EMPTY_BINARY * 4000000 + frame0(OP_TEXT, "per-item-done"))
        th.join(95)
        time.sleep(0.3)
        peak = sampler.stop()
        assert "error" not in result, "the flood was not processed: %s" % result.get("error")
        grown_kib = peak - rss0
        bound_kib = nsinks * 4 * limit // KiB
        print("RSS %d KiB -> peak %d KiB (+%d KiB, bound %d KiB)" % (rss0, peak, grown_kib, bound_kib))
        assert grown_kib <= bound_kib, \
            "RSS grew by %d KiB with %d non-reading members and --max-backlog 1m (bound %d KiB)" % (
                grown_kib, nsinks, bound_kib)
    finally:
        close_all([j.sock for j in sinks] + ([sender] if sender else []))
    assert_serving(srv)


# ---------------------------------------------------------------- 6. same-nick joins

def test_same_nick_joins_take_linear_time(start_server):
    """10,000 members join one room with the same ?nick=a (raw sockets, 200
    upgrades in flight; default --presence-limit, --max-room-members 0). Each
    stretch of 1,000 joins is compared with joins 1,001-2,000 (the first ones
    past the presence limit, so presence broadcasts do not inflate the
    baseline), in wall time and in the server's own CPU time: no stretch may
    take 5 times as long in both (CPU time keeps a stall of this process or a
    busy machine from passing for a slow server). Every member gets a distinct
    nick a, a<digits>; /nick to a taken name (a, or another member's suffixed
    nick) gets nick_taken, and a nick freed by /nick is given to the next
    joiner as asked. Today's main tries suffixes 2, 3, ... each with a scan of
    the whole room, so the k-th join costs k^2 string compares and the join
    rate collapses (the test stops as soon as a stretch passes 5x, after
    about 40 s)."""
    n, window, presence, step = 10000, 1000, 1000, 100
    ratio_max = 5.0
    raise_nofile(n + 200)
    srv = start_server("--max-room-members", "0")
    pid = srv.proc.pid
    cpu = {}          # completions (multiples of step) -> server CPU seconds when reached
    base = {}

    def watch(done, now):
        k = len(done)
        while (len(cpu) + 1) * step <= k:
            cpu[(len(cpu) + 1) * step] = cpu_seconds(pid)
        if k < presence + window:
            return
        if "wall" not in base:
            base["wall"] = done[presence + window - 1].t - done[presence - 1].t
            base["cpu"] = max(cpu[presence + window] - cpu[presence], 2.0 / os.sysconf("SC_CLK_TCK"))
        if k < n:
            j = (k - window) // step * step       # a stretch of window..window+step-1 joins, still running
            wall = now - done[j - 1].t
            used = cpu_seconds(pid) - cpu[j]
            assert wall <= ratio_max * base["wall"] or used <= ratio_max * base["cpu"], \
                "joins %d-%d took %.2f s and counting (%.1f x) and %.2f s of server CPU (%.1f x), " \
                "against %.2f s and %.2f s CPU for joins %d-%d" % (
                    j + 1, k + 1, wall, wall / base["wall"], used, used / base["cpu"],
                    base["wall"], base["cpu"], presence + 1, presence + window)

    t0 = time.monotonic()
    done = open_many(srv, ["/ws/same?nick=a"] * n, read_welcome=True, inflight=200, timeout=90, watch=watch)
    extra = []
    try:
        took = time.monotonic() - t0
        watch(done, time.monotonic())
        wall = done[n - 1].t - done[n - window - 1].t
        used = cpu[n] - cpu[n - window]
        windows = ["%.2f" % (done[i + window - 1].t - (done[i - 1].t if i else t0)) for i in range(0, n, window)]
        print("%d same-nick joins in %.1f s; joins %d-%d: %.2f s %.2f s CPU; last %d: %.2f s %.2f s CPU; "
              "wall per 1000: %s" % (n, took, presence + 1, presence + window, base["wall"], base["cpu"],
                                     window, wall, used, windows))
        assert wall <= ratio_max * base["wall"] or used <= ratio_max * base["cpu"], \
            "the last %d joins took %.2f s (%.1f x) and %.2f s of server CPU (%.1f x), against %.2f s and " \
            "%.2f s CPU for joins %d-%d" % (window, wall, wall / base["wall"], used, used / base["cpu"],
                                             base["wall"], base["cpu"], presence + 1, presence + window)
        nicks = [j.welcome["nick"] for j in done]
        assert len(set(nicks)) == n, "%d duplicate nicks" % (n - len(set(nicks)))
        bad = [x for x in nicks if not re.fullmatch(r"a[0-9]*", x) or len(x.encode()) > 32]
        assert not bad, "nicks not of the form a<digits>: %r" % bad[:10]
        assert "a" in nicks
        assert max(j.welcome["count"] for j in done) == n

        me = done[-1]
        me.sock.settimeout(60)
        c = Client(me.sock)
        c.buf += me.rest
        mine = me.welcome["nick"]
        other = done[n // 2].welcome["nick"]
        for taken in ("a", other):
            c.send_raw(frame0(OP_TEXT, "/nick " + taken))
            items = read_until(c, lambda it: it[0] == "event" and it[1]["type"] in ("error", "nick"),
                               what="/nick %s in a room of %d" % (taken, n))
            ev = items[-1][1]
            assert ev["type"] == "error" and ev.get("code") == "nick_taken", \
                "/nick %s (taken) in a room of %d: got %r" % (taken, n, ev)
        c.send_raw(frame0(OP_TEXT, "/nick zed"))
        items = read_until(c, is_event("nick", nick="zed"), what="/nick zed")
        assert items[-1][1]["old"] == mine, items[-1][1]
        j, w = join(srv, "same", mine)          # the freed nick is given as asked
        extra.append(j)
        assert w["nick"] == mine, "nick %s was freed by /nick but a joiner asking for it got %s" % (mine, w["nick"])
        j2, w2 = join(srv, "same", "zed")         # and the new one is taken
        extra.append(j2)
        assert w2["nick"] != "zed" and re.fullmatch(r"zed[0-9]+", w2["nick"]), w2["nick"]
    finally:
        close_all([j.sock for j in done] + extra)
    assert_serving(srv)


# ---------------------------------------------------------------- 7. history in bytes

def test_history_bytes_per_room(start_server):
    """--history-bytes 10000: after 40 lines of about 1 KiB, a joiner's welcome
    history is at most 10000 bytes of JSON events and holds the newest lines:
    seq ascending without gaps, ending with the last line sent (and at least
    5 of them: the budget is used, not wasted). Today's main has no such
    option (exit 2); it keeps --history events whatever their size."""
    srv = start_server("--history-bytes", "10000", "--rate-limit", "0")
    a, _ = join(srv, "hb", "alice")
    b = None
    try:
        texts = ["line %03d " % i + "x" * 1000 for i in range(1, 41)]
        for t in texts:
            a.send_raw(frame0(OP_TEXT, t))
            read_until(a, is_message(t), what="alice")
        b, w = join(srv, "hb", "bob")
        hist = w["history"]
        size = sum(json_size(e) for e in hist)
        assert size <= 10000, "welcome history is %d bytes of JSON (%d events), --history-bytes 10000" % (
            size, len(hist))
        assert hist, "empty history"
        seqs = [e["seq"] for e in hist]
        assert seqs == list(range(41 - len(seqs), 41)), "history seqs %r, expected the newest, ascending" % seqs
        assert [e["text"] for e in hist] == texts[-len(hist):]
        assert len(hist) >= 5, "only %d events of about 1 KiB kept in 10000 bytes" % len(hist)
    finally:
        close_all([x for x in (a, b) if x])
    assert_serving(srv)


def worst_case_lines(tag, count, max_line=4096):
    """count chat lines of exactly max_line bytes: a short ASCII tag, then
    control characters (\\x01), which the server escapes to 6 bytes each in
    JSON (\\u0001): the most history bytes a line can cost."""
    out = []
    for k in range(count):
        prefix = "%s-%03d " % (tag, k)
        out.append(prefix + "\x01" * (max_line - len(prefix)))
    return out


def test_history_total_bytes_bounds_memory(start_server, monkeypatch):
    """--history-total-bytes 8m: 1,000 rooms each filled with 100 worst-case
    lines (4096 bytes of control characters, about 24.6 KB of JSON each: 2.4 GB
    of history offered; --rate-limit 0). The server's RSS grows by less than
    8 MiB + 40 MiB, /stats history_bytes is at most 8 MiB (and /metrics
    wshub_history_bytes says the same), and the newest room still has its
    newest lines, within --history-bytes (default 256 KiB). Today's main has
    no such option (exit 2); it keeps 100 events per room for up to 10,000
    rooms: about 2.4 GB here."""
    monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0").lstrip(":"))
    total = 8 * MiB
    srv = start_server("--history-total-bytes", "8m", "--rate-limit", "0")
    pid = srv.proc.pid
    nrooms, nlines = 1000, 100
    time.sleep(0.2)
    rss0 = rss_kib(pid)
    sampler = RssSampler(pid)
    sampler.start()
    try:
        for r in range(nrooms):
            c = ws_connect(srv, "/ws/tot-%04d?nick=w" % r)
            try:
                c.send_raw(b"".join(frame0(OP_TEXT, line) for line in worst_case_lines("r%04d" % r, nlines))
                           + frame0(OP_TEXT, "/who"))
                wait_for_bytes(c, b'{"type":"members"', timeout=30)
            finally:
                c.close()
    finally:
        peak = sampler.stop()
    grown_kib = peak - rss0
    bound_kib = (total + 40 * MiB) // KiB
    print("RSS %d KiB -> peak %d KiB (+%d KiB, bound %d KiB)" % (rss0, peak, grown_kib, bound_kib))
    assert grown_kib <= bound_kib, "RSS grew by %d KiB for %d rooms of worst-case history (bound %d KiB)" % (
        grown_kib, nrooms, bound_kib)
    st = get_stats(srv)
    assert "history_bytes" in st, "/stats has no history_bytes: %r" % sorted(st)
    assert 0 < st["history_bytes"] <= total, "history_bytes %r, --history-total-bytes %d" % (
        st["history_bytes"], total)
    assert get_metric(srv, "wshub_history_bytes") == st["history_bytes"], \
        "/metrics wshub_history_bytes differs from /stats history_bytes %d" % st["history_bytes"]
    c, w = join(srv, "tot-%04d" % (nrooms - 1), "late")
    try:
        hist = w["history"]
        assert hist, "the newest room lost all its history"
        assert [e["seq"] for e in hist] == list(range(nlines - len(hist) + 1, nlines + 1)), \
            [e["seq"] for e in hist]
        assert sum(json_size(e) for e in hist) <= 256 * KiB
    finally:
        c.close()
    assert_serving(srv)


# ---------------------------------------------------------------- 8. inconsistent options

def run_until_exit_or_listening(args, timeout=10.0):
    """Starts wshub with args on a free port. Returns (exit code or None if it
    started listening, stderr)."""
    port = free_port()
    p = subprocess.Popen([BINARY, "--host", "127.0.0.1", "--port", str(port), "--static", STATIC] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    listening = False
    while p.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            listening = True
            break
        except OSError:
            time.sleep(0.02)
    if p.poll() is None:
        p.kill()
    out, err = p.communicate(timeout=10)
    if listening or p.returncode < 0:
        return None, err.decode(errors="replace")
    return p.returncode, err.decode(errors="replace")


INCONSISTENT = [
    (["--max-binary", "8m", "--max-backlog", "4m"], ("max-binary", "max-backlog")),
    (["--max-line", "8m", "--max-backlog", "4m"], ("max-line", "max-backlog")),
    (["--history-bytes", "8m", "--max-backlog", "4m"], ("history-bytes", "max-backlog")),
]


@pytest.mark.parametrize("args,names", INCONSISTENT, ids=[" ".join(a) for a, _ in INCONSISTENT])
def test_inconsistent_options_exit_2(args, names):
    """Limits that contradict each other are refused at start with exit 2 and
    a message naming both options: a binary message, a chat line's relay
    (up to 6 x --max-line of JSON) or a welcome's history bigger than
    --max-backlog would cut its receivers. Today's main does not know
    --max-binary and --history-bytes (exit 2 naming only that option) and
    starts with --max-line 8m --max-backlog 4m."""
    code, err = run_until_exit_or_listening(args)
    assert code is not None, "wshub started with %s" % " ".join(args)
    assert code == 2, "%s: exit %s, stderr %r" % (" ".join(args), code, err)
    for name in names:
        assert name in err, "%s: stderr does not name %s: %r" % (" ".join(args), name, err)


def test_consistent_limit_options_start(start_server):
    """The new options with consistent values are accepted (the check above
    is not over-eager). Today's main refuses them (exit 2)."""
    srv = start_server("--max-binary", "1m", "--max-line", "8k", "--history-bytes", "512k",
                       "--history-total-bytes", "64m", "--binary-rate-limit", "60",
                       "--binary-byte-rate", "1m", "--max-backlog", "4m")
    assert_serving(srv)


# ---------------------------------------------------------------- 9. welcome fits the backlog

def test_welcome_fits_max_backlog(start_server):
    """--max-backlog 1m with default history options: a room holds 100
    worst-case lines (4096 control characters, about 24.6 KB of JSON each); a
    new member still gets its 101, a welcome whose history is the newest lines
    within --history-bytes (256 KiB), its join, and can chat. Today's main
    builds a 2.4 MB welcome of all 100 events, which is over --max-backlog, so
    the joiner is cut with 1008 before it gets any welcome."""
    srv = start_server("--max-backlog", "1m", "--rate-limit", "0")
    a, _ = join(srv, "big-hist", "alice")
    b = None
    try:
        for line in worst_case_lines("wl", 100):
            a.send_raw(frame0(OP_TEXT, line))
            read_until(a, is_message(line), what="alice")
        try:
            b = ws_connect(srv, "/ws/big-hist?nick=bob")
            first = next_item(b)
        except (ConnectionClosed, TimeoutError) as e:
            raise AssertionError("the joiner of a room with 100 worst-case lines got no welcome: %s" % e) from None
        assert first[0] == "event" and first[1].get("type") == "welcome", \
            "the joiner got %s instead of a welcome" % show([first])
        hist = first[1]["history"]
        assert hist, "welcome without history"
        assert [e["seq"] for e in hist] == list(range(101 - len(hist), 101)), [e["seq"] for e in hist]
        size = sum(json_size(e) for e in hist)
        assert size <= 256 * KiB, "welcome history of %d bytes" % size
        read_until(b, is_event("join", nick="bob"), what="bob")
        b.send_raw(frame0(OP_TEXT, "hi"))
        items = read_until(b, is_message("hi"), what="bob")
        assert items[-1][1]["seq"] == 101, items[-1][1]
    finally:
        close_all([x for x in (a, b) if x])
    assert_serving(srv)
