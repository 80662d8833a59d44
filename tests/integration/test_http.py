"""HTTP request parsing and refusals, and WebSocket handshake refusals (RFC 6455
4.2, RFC 9110/9112), against the real build/wshub over raw sockets: error
response format, incremental parsing (byte-at-a-time, arbitrary splits), the
101 response and Sec-WebSocket-Accept, a frame sent with the handshake, and
--handshake-timeout."""
import base64
import hashlib
import os
import select
import socket
import struct
import time

import pytest

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ---------------------------------------------------------------- helpers

class Response:
    def __init__(self, status_line, headers, body, raw_head):
        self.status_line = status_line
        parts = status_line.split(" ", 2)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.header_list = headers           # [(name, value)] as sent
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        """The value of the only header with this name (case-insensitive), or None."""
        vals = [v for n, v in self.header_list if n.lower() == name.lower()]
        assert len(vals) <= 1, "header %s repeated: %r" % (name, self.raw_head)
        return vals[0] if vals else None

    def __repr__(self):
        return "<Response %r body=%r>" % (self.raw_head, self.body[:200])


def recv_more(sock):
    data = sock.recv(65536)
    if not data:
        raise EOFError("connection closed")
    return data


def read_response(sock, buf=b"", head_only=False):
    """Reads one response; returns (Response, leftover bytes). The body is read by
    Content-Length unless head_only (HEAD request) or status 1xx/204/304."""
    while b"\r\n\r\n" not in buf:
        buf += recv_more(sock)
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        assert ":" in line, "bad response header line %r" % line
        n, v = line.split(":", 1)
        headers.append((n, v.strip()))
    resp = Response(lines[0], headers, b"", head)
    if head_only or resp.status < 200 or resp.status in (204, 304):
        return resp, buf
    cl = resp.header("Content-Length")
    assert cl is not None, "response without Content-Length: %r" % head
    n = int(cl)
    while len(buf) < n:
        buf += recv_more(sock)
    resp.body, buf = buf[:n], buf[n:]
    return resp, buf


def wait_closed(sock, timeout=3.0):
    """True when the peer closes (EOF or reset) within timeout, with no more data."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    assert data == b"", "unexpected bytes after the response: %r" % data[:200]
    return True


def exchange(server, data, head_only=False):
    """Sends data on a new connection; returns (Response, socket, leftover)."""
    s = server.connect()
    s.sendall(data)
    resp, rest = read_response(s, head_only=head_only)
    return resp, s, rest


def assert_error_response(resp, status, sock, rest=b""):
    """The common shape of every error response, and the close after it."""
    assert resp.status == status, resp
    assert resp.version == "HTTP/1.1", resp
    assert resp.reason.strip(), "status line without reason phrase: %r" % resp.status_line
    ctype = resp.header("Content-Type")
    assert ctype is not None and ctype.lower().startswith("text/plain"), resp
    assert int(resp.header("Content-Length")) == len(resp.body), resp
    text = resp.body.decode("utf-8")
    assert text.strip(), "empty error body: %r" % resp
    assert "\n" not in text.rstrip("\r\n"), "body is not one line: %r" % text
    conn = resp.header("Connection")
    assert conn is not None and conn.lower() == "close", resp
    assert rest == b"", "bytes after the error response: %r" % rest
    assert wait_closed(sock), "server did not close after %d" % status


def refused(server, data, status):
    resp, s, rest = exchange(server, data)
    try:
        assert_error_response(resp, status, s, rest)
    finally:
        s.close()
    return resp


def make_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(path="/echo", key=None, version="13", method="GET",
                    http="HTTP/1.1", upgrade="websocket", connection="Upgrade",
                    host="127.0.0.1", extra=()):
    lines = ["%s %s %s" % (method, path, http)]
    if host is not None:
        lines.append("Host: %s" % host)
    if upgrade is not None:
        lines.append("Upgrade: %s" % upgrade)
    if connection is not None:
        lines.append("Connection: %s" % connection)
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def client_frame(opcode, payload, fin=True):
    mask = os.urandom(4)
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def read_frame(sock, buf=b""):
    """Reads one server frame; returns (fin, opcode, payload, leftover)."""
    while len(buf) < 2:
        buf += recv_more(sock)
    b0, b1 = buf[0], buf[1]
    assert b1 & 0x80 == 0, "server frame is masked"
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        while len(buf) < 4:
            buf += recv_more(sock)
        n = struct.unpack("!H", buf[2:4])[0]
        pos = 4
    elif n == 127:
        while len(buf) < 10:
            buf += recv_more(sock)
        n = struct.unpack("!Q", buf[2:10])[0]
        pos = 10
    while len(buf) < pos + n:
        buf += recv_more(sock)
    return bool(b0 & 0x80), b0 & 0x0F, buf[pos:pos + n], buf[pos + n:]


def simple_get(path="/", version="HTTP/1.1", extra=""):
    return ("GET %s %s\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, version, extra)).encode("latin-1")


@pytest.fixture
def tree_server(start_server, static_tree):
    top, root = static_tree
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!doctype html><title>t</title>hello\n")
    return start_server(static_dir=root)


# ---------------------------------------------------------------- request line and head

@pytest.mark.parametrize("data", [
    b"GET\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http//x/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
], ids=["method-only", "extra-token", "no-slash", "no-slash-2", "bad-protocol"])
def test_malformed_request_line_400(server, data):
    refused(server, data, 400)


def test_header_without_colon_400(server):
    refused(server, b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400)


def test_nul_in_path_400(server):
    refused(server, b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400)


def test_percent_encoded_nul_in_path_400(server):
    refused(server, b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400)


def test_head_over_8k_431(server):
    big = b"X-Filler: " + b"a" * 9000 + b"\r\n"
    refused(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n", 431)


def test_head_over_8k_without_end_431(server):
    """An endless head is refused once it passes the limit, without waiting for its end."""
    s = server.connect()
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for i in range(200):
            # Stop feeding once the server has answered.
            if select.select([s], [], [], 0.002)[0]:
                break
            s.sendall(b"X-H%d: %s\r\n" % (i, b"b" * 60))
        resp, rest = read_response(s)
        assert_error_response(resp, 431, s, rest)
    finally:
        s.close()


def test_head_just_under_8k_is_accepted(tree_server):
    head = b"GET / HTTP/1.1\r\nHost: x\r\n"
    pad = 8000 - len(head) - len(b"X-Pad: \r\n\r\n")
    data = head + b"X-Pad: " + b"p" * pad + b"\r\n\r\n"
    assert len(data) <= 8192
    resp, s, rest = exchange(tree_server, data)
    s.close()
    assert resp.status == 200, resp


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_405(server, method):
    resp = refused(server, ("%s / HTTP/1.1\r\nHost: x\r\n\r\n" % method).encode(), 405)
    allow = resp.header("Allow")
    assert allow is not None, resp
    assert [m.strip() for m in allow.split(",")] == ["GET", "HEAD"], resp


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/1.2", "HTTP/3.0"])
def test_unsupported_version_505(server, version):
    refused(server, ("GET / %s\r\nHost: x\r\n\r\n" % version).encode(), 505)


def test_http11_without_host_400(server):
    refused(server, b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400)


def test_http10_without_host_is_fine(tree_server):
    resp, s, rest = exchange(tree_server, b"GET / HTTP/1.0\r\n\r\n")
    s.close()
    assert resp.status == 200, resp
    assert b"hello" in resp.body


@pytest.mark.parametrize("value", ["abc", "99999999999999999999999", "-1", "12abc", "1 2"])
def test_bad_content_length_400(server, value):
    refused(server, ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n" % value).encode(), 400)


def test_large_content_length_413(server):
    refused(server, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", 413)


@pytest.mark.parametrize("value", ["chunked", "gzip, chunked", "identity"])
def test_transfer_encoding_501(server, value):
    refused(server, ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n" % value).encode(), 501)


def test_error_then_server_alive(server):
    """A refused request does not hurt the next client."""
    refused(server, b"GET\r\n\r\n", 400)
    resp, s, rest = exchange(server, b"GET /no-such-file-here HTTP/1.1\r\nHost: x\r\n\r\n")
    s.close()
    assert resp.status == 404, resp
    assert server.alive()


# ---------------------------------------------------------------- incremental parsing

def send_bytewise(sock, data):
    for i in range(len(data)):
        sock.send(data[i:i + 1])
        time.sleep(0.001)


def responses_equal(a, b):
    assert a.status_line == b.status_line
    assert a.body == b.body
    assert [(n.lower(), v) for n, v in a.header_list if n.lower() != "date"] == \
           [(n.lower(), v) for n, v in b.header_list if n.lower() != "date"]


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nUser-Agent: bytewise\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
], ids=["ok", "405", "400", "505"])
def test_one_byte_per_send_same_answer(tree_server, data):
    whole, s1, rest1 = exchange(tree_server, data)
    s1.close()
    s = tree_server.connect()
    try:
        send_bytewise(s, data)
        resp, rest = read_response(s)
    finally:
        s.close()
    responses_equal(whole, resp)


def test_handshake_one_byte_per_send(tree_server):
    key = make_key()
    s = tree_server.connect()
    try:
        send_bytewise(s, upgrade_request(key=key))
        resp, rest = read_response(s)
        assert resp.status == 101, resp
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key)
        send_bytewise(s, client_frame(0x1, b"bytewise frame"))
        fin, op, payload, rest = read_frame(s, rest)
        assert (fin, op, payload) == (True, 0x1, b"bytewise frame")
    finally:
        s.close()


@pytest.mark.parametrize("cuts", [(1,), (3, 17), (15, 16, 17, 18), (30,), (40, 41)])
def test_arbitrary_splits(tree_server, cuts):
    data = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n\r\n"
    s = tree_server.connect()
    try:
        prev = 0
        for c in list(cuts) + [len(data)]:
            s.sendall(data[prev:c])
            time.sleep(0.02)
            prev = c
        resp, rest = read_response(s)
    finally:
        s.close()
    assert resp.status == 200, resp
    assert resp.body == b"<!doctype html><title>t</title>hello\n"


def test_split_inside_crlfcrlf(tree_server):
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    s = tree_server.connect()
    try:
        s.sendall(data[:-3])
        time.sleep(0.05)
        s.sendall(data[-3:-1])
        time.sleep(0.05)
        s.sendall(data[-1:])
        resp, rest = read_response(s)
        assert resp.status == 200, resp
    finally:
        s.close()


# ---------------------------------------------------------------- WebSocket upgrade

def test_upgrade_101(server):
    key = make_key()
    resp, s, rest = exchange(server, upgrade_request(key=key))
    try:
        assert resp.status_line == "HTTP/1.1 101 Switching Protocols", resp
        assert resp.header("Upgrade").lower() == "websocket", resp
        assert resp.header("Connection").lower() == "upgrade", resp
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp
        assert rest == b""
        s.sendall(client_frame(0x2, b"\x00\x01\x02binary"))
        fin, op, payload, rest = read_frame(s, rest)
        assert (fin, op, payload) == (True, 0x2, b"\x00\x01\x02binary")
    finally:
        s.close()


def test_upgrade_rfc_sample_key(server):
    """RFC 6455 section 1.3 example: dGhlIHNhbXBsZSBub25jZQ== -> s3pPLMBiTxaQ9kYGzzhZRbK+xOo=."""
    resp, s, rest = exchange(server, upgrade_request(key="dGhlIHNhbXBsZSBub25jZQ=="))
    s.close()
    assert resp.status == 101, resp
    assert resp.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_upgrade_case_insensitive(server):
    key = make_key()
    data = ("GET /echo HTTP/1.1\r\n"
            "hOST: 127.0.0.1\r\n"
            "upgrade: WebSocket\r\n"
            "CONNECTION: keep-alive, Upgrade\r\n"
            "sec-websocket-key: %s\r\n"
            "SEC-WEBSOCKET-VERSION: 13\r\n"
            "Origin: http://127.0.0.1\r\n\r\n" % key).encode()
    resp, s, rest = exchange(server, data)
    try:
        assert resp.status == 101, resp
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key)
        s.sendall(client_frame(0x1, "héllo".encode()))
        fin, op, payload, rest = read_frame(s, rest)
        assert (op, payload) == (0x1, "héllo".encode())
    finally:
        s.close()


def test_upgrade_connection_token_lowercase_and_spaces(server):
    key = make_key()
    resp, s, rest = exchange(server, upgrade_request(key=key, upgrade="websocket",
                                                    connection="keep-alive ,  upgrade"))
    s.close()
    assert resp.status == 101, resp


def test_first_frame_in_same_write_as_handshake(server):
    key = make_key()
    data = upgrade_request(key=key) + client_frame(0x1, b"early bird") + client_frame(0x2, b"\xff\xfe")
    s = server.connect()
    try:
        s.sendall(data)
        resp, rest = read_response(s)
        assert resp.status == 101, resp
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key)
        fin, op, payload, rest = read_frame(s, rest)
        assert (fin, op, payload) == (True, 0x1, b"early bird")
        fin, op, payload, rest = read_frame(s, rest)
        assert (fin, op, payload) == (True, 0x2, b"\xff\xfe")
    finally:
        s.close()


@pytest.mark.parametrize("kwargs", [
    dict(upgrade=None),
    dict(connection=None),
    dict(connection="keep-alive"),
    dict(upgrade="h2c"),
], ids=["no-upgrade", "no-connection", "connection-without-upgrade", "upgrade-not-websocket"])
def test_upgrade_missing_upgrade_or_connection_400(server, kwargs):
    refused(server, upgrade_request(key=make_key(), **kwargs), 400)


@pytest.mark.parametrize("version", [None, "8", "12", "14", "abc", "13, 8"])
def test_upgrade_bad_version_426(server, version):
    resp = refused(server, upgrade_request(key=make_key(), version=version), 426)
    assert resp.header("Sec-WebSocket-Version") == "13", resp


@pytest.mark.parametrize("key", [
    None,
    "",
    "dGhlIHNhbXBsZSBub25jZQ",            # 22 chars, no padding
    "dGhlIHNhbXBsZSBub25jZQ==x",         # 25 chars
    "dGhlIHNhbXBsZSBub25j!Q==",          # bad character
    base64.b64encode(b"x" * 15).decode() + "AAAA",  # 24 chars but 18 bytes
    base64.b64encode(b"x" * 17).decode(),          # 24 chars, 17 bytes ('=' once)
], ids=["missing", "empty", "22-chars", "25-chars", "bad-char",
        "18-bytes", "17-bytes"])
def test_upgrade_bad_key_400(server, key):
    refused(server, upgrade_request(key=key), 400)


def test_upgrade_http10_400(server):
    refused(server, upgrade_request(key=make_key(), http="HTTP/1.0"), 400)


def test_upgrade_post_405(server):
    resp = refused(server, upgrade_request(key=make_key(), method="POST"), 405)
    assert [m.strip() for m in resp.header("Allow").split(",")] == ["GET", "HEAD"]


def test_plain_get_echo_400(server):
    refused(server, simple_get("/echo"), 400)


def test_upgrade_unknown_path_404(server):
    refused(server, upgrade_request(path="/nope", key=make_key()), 404)


def test_upgrade_without_host_400(server):
    refused(server, upgrade_request(key=make_key(), host=None), 400)


# ---------------------------------------------------------------- handshake timeout

def test_handshake_timeout_half_request(start_server):
    srv = start_server("--handshake-timeout", "1")
    s = srv.connect(timeout=10)
    try:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
        t0 = time.monotonic()
        s.settimeout(6)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - t0
        assert 0.5 <= elapsed <= 3.5, "closed after %.2f s" % elapsed
        # A 408 before the close is allowed; a success is not.
        assert got == b"" or got.startswith(b"HTTP/1.1 408 "), got
    finally:
        s.close()
    assert srv.alive()


def test_handshake_timeout_idle_keepalive(start_server, static_tree):
    top, root = static_tree
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("idle\n")
    srv = start_server("--handshake-timeout", "1", static_dir=root)
    s = srv.connect(timeout=10)
    try:
        s.sendall(simple_get("/"))
        resp, rest = read_response(s)
        assert resp.status == 200 and resp.body == b"idle\n", resp
        t0 = time.monotonic()
        assert wait_closed(s, timeout=6), "idle keep-alive connection never closed"
        elapsed = time.monotonic() - t0
        assert elapsed <= 3.5, "closed after %.2f s" % elapsed
    finally:
        s.close()


def test_handshake_timeout_other_clients_unaffected(start_server, static_tree):
    top, root = static_tree
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("busy\n")
    srv = start_server("--handshake-timeout", "1", static_dir=root)
    slow = [srv.connect(timeout=10) for _ in range(5)]
    for s in slow:
        s.sendall(b"GET / HTTP/1.1\r\nHo")
    key = make_key()
    ws = srv.connect(timeout=5)
    try:
        # An HTTP client is answered promptly while the slow ones hang.
        t0 = time.monotonic()
        resp, s2, rest = exchange(srv, simple_get("/"))
        s2.close()
        assert resp.status == 200 and resp.body == b"busy\n"
        assert time.monotonic() - t0 < 0.5
        # A WebSocket that finished its handshake is not subject to the timeout.
        ws.sendall(upgrade_request(key=key))
        resp, rest = read_response(ws)
        assert resp.status == 101, resp
        deadline = time.monotonic() + 2.5
        for s in slow:
            assert wait_closed(s, timeout=max(0.1, deadline + 1 - time.monotonic()))
        while time.monotonic() < deadline:
            time.sleep(0.1)
        ws.sendall(client_frame(0x1, b"still here"))
        fin, op, payload, rest = read_frame(ws, rest)
        assert (op, payload) == (0x1, b"still here")
    finally:
        ws.close()
        for s in slow:
            s.close()
