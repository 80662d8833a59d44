"""Static file serving (--static DIR) against the real build/wshub over raw
sockets: index.html, Content-Type per extension, exact Content-Length and body,
HEAD, 404, directory redirect, no escape from the root (dot segments, encoded
traversal, symlinks), keep-alive and pipelining, closing rules, and a 50 MiB file
streamed completely without being read whole into memory."""
import hashlib
import os
import socket
import time

import pytest

SECRET = b"outside the static root\n"

FILES = {
    "index.html": (b"<!doctype html>\n<title>wshub test</title>\n<p>index</p>\n", "text/html", True),
    "app.js": (b"console.log('hi');\n", "text/javascript", True),
    "style.css": (b"body { color: red; }\n", "text/css", True),
    "data.json": (b'{"a": [1, 2, 3]}\n', "application/json", False),
    "img.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "image/png", False),
    "pic.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n', "image/svg+xml", False),
    "favicon.ico": (b"\x00\x00\x01\x00\x01\x00" + b"\x10" * 100, "image/x-icon", False),
    "notes.txt": ("plain text, ünïcödé\n".encode("utf-8"), "text/plain", True),
}
SUB_INDEX = b"<p>sub index</p>\n"
SUB_PAGE = b"<p>sub page</p>\n"
SPACE_FILE = b"a file with a space in its name\n"


# ---------------------------------------------------------------- helpers

class Response:
    def __init__(self, status_line, headers, body, raw_head):
        self.status_line = status_line
        parts = status_line.split(" ", 2)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.header_list = headers
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
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
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    assert data == b"", "unexpected bytes after the response: %r" % data[:200]
    return True


def req(path, method="GET", version="HTTP/1.1", extra=""):
    return ("%s %s %s\r\nHost: 127.0.0.1\r\n%s\r\n" % (method, path, version, extra)).encode("latin-1")


def fetch(server, path, method="GET", version="HTTP/1.1", extra=""):
    s = server.connect()
    try:
        s.sendall(req(path, method, version, extra))
        resp, rest = read_response(s, head_only=(method == "HEAD"))
        assert rest == b"", "extra bytes after response: %r" % rest[:200]
        return resp
    finally:
        s.close()


def media_type(resp):
    ctype = resp.header("Content-Type")
    assert ctype is not None, resp
    return ctype.split(";")[0].strip().lower(), ctype.lower()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def site(start_server, static_tree):
    """A server on a populated temp static root; returns (server, top, root)."""
    top, root = static_tree
    for name, (body, _, _) in FILES.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(body)
    os.mkdir(os.path.join(root, "sub"))
    with open(os.path.join(root, "sub", "index.html"), "wb") as f:
        f.write(SUB_INDEX)
    with open(os.path.join(root, "sub", "page.html"), "wb") as f:
        f.write(SUB_PAGE)
    with open(os.path.join(root, "with space.txt"), "wb") as f:
        f.write(SPACE_FILE)
    os.symlink("notes.txt", os.path.join(root, "alias.txt"))          # inside -> inside
    os.symlink("../secret.txt", os.path.join(root, "evil.txt"))       # inside -> outside
    os.symlink(os.path.join(top, "secret.txt"), os.path.join(root, "evil-abs.txt"))
    os.symlink("..", os.path.join(root, "updir"))                     # directory outside
    return start_server(static_dir=root), top, root


# ---------------------------------------------------------------- content

def test_root_serves_index(site):
    srv, top, root = site
    resp = fetch(srv, "/")
    assert resp.status == 200, resp
    mt, full = media_type(resp)
    assert mt == "text/html" and "charset=utf-8" in full.replace(" ", ""), resp
    assert int(resp.header("Content-Length")) == len(FILES["index.html"][0])
    assert resp.body == FILES["index.html"][0]


@pytest.mark.parametrize("name", sorted(FILES))
def test_content_type_length_body(site, name):
    srv, top, root = site
    body, mtype, text = FILES[name]
    resp = fetch(srv, "/" + name)
    assert resp.status == 200, resp
    mt, full = media_type(resp)
    assert mt == mtype, resp
    if text:
        assert "charset=utf-8" in full.replace(" ", ""), resp
    assert int(resp.header("Content-Length")) == len(body)
    assert resp.body == body


@pytest.mark.parametrize("name", ["index.html", "img.png", "notes.txt"])
def test_head_same_headers_no_body(site, name):
    srv, top, root = site
    s = srv.connect()
    try:
        s.sendall(req("/" + name))
        get, rest = read_response(s)
        assert rest == b""
        s.sendall(req("/" + name, method="HEAD"))
        head, rest = read_response(s, head_only=True)
        assert head.status == 200, head
        assert head.header("Content-Type") == get.header("Content-Type")
        assert head.header("Content-Length") == get.header("Content-Length") == str(len(FILES[name][0]))
        # No body follows: the next thing on the connection is the next response.
        s.sendall(req("/app.js"))
        nxt, rest2 = read_response(s, rest)
        assert nxt.status_line.startswith("HTTP/1.1 200"), nxt
        assert nxt.body == FILES["app.js"][0]
        assert rest2 == b""
    finally:
        s.close()


def test_missing_file_404(site):
    srv, top, root = site
    for path in ("/nope.html", "/sub/nope", "/nope/deeper.txt", "/index.html/x"):
        resp = fetch(srv, path)
        assert resp.status == 404, (path, resp)
        assert FILES["index.html"][0] not in resp.body
        assert int(resp.header("Content-Length")) == len(resp.body)


def test_head_missing_404(site):
    srv, top, root = site
    resp = fetch(srv, "/nope.html", method="HEAD")
    assert resp.status == 404, resp


def test_subdirectory_index(site):
    srv, top, root = site
    resp = fetch(srv, "/sub/")
    assert resp.status == 200, resp
    assert resp.body == SUB_INDEX
    assert media_type(resp)[0] == "text/html"
    resp = fetch(srv, "/sub/page.html")
    assert resp.status == 200 and resp.body == SUB_PAGE, resp


def test_directory_without_slash_301(site):
    srv, top, root = site
    resp = fetch(srv, "/sub")
    assert resp.status == 301, resp
    assert resp.header("Location") == "/sub/", resp
    assert int(resp.header("Content-Length")) == len(resp.body)


def test_percent_encoded_name(site):
    srv, top, root = site
    resp = fetch(srv, "/with%20space.txt")
    assert resp.status == 200, resp
    assert resp.body == SPACE_FILE


def test_symlink_inside_root_works(site):
    srv, top, root = site
    resp = fetch(srv, "/alias.txt")
    assert resp.status == 200, resp
    assert resp.body == FILES["notes.txt"][0]


# ---------------------------------------------------------------- no escape

@pytest.mark.parametrize("path", [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/sub/../../secret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/.%2e/secret.txt",
    "/./index.html",
    "//../secret.txt",
    "/sub//../../secret.txt",
    "///..//secret.txt",
])
def test_dot_segments_400(site, path):
    srv, top, root = site
    resp = fetch(srv, path)
    assert resp.status == 400, (path, resp)
    assert SECRET not in resp.body


@pytest.mark.parametrize("path", [
    "//etc/passwd",
    "//secret.txt",
    "/%2fetc/passwd",
    "/%2F..%2Fsecret.txt",
    "//../secret.txt",
    "/sub//../../secret.txt",
    "/%2f%2f..%2f..%2fsecret.txt",
    "/..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/evil.txt",
    "/evil-abs.txt",
    "/updir/secret.txt",
])
def test_no_escape(site, path):
    srv, top, root = site
    resp = fetch(srv, path)
    assert resp.status != 200, (path, resp)
    assert resp.status in (400, 403, 404), (path, resp)
    assert SECRET not in resp.body
    assert b"root:" not in resp.body


@pytest.mark.parametrize("path", ["/evil.txt", "/evil-abs.txt"])
def test_symlink_outside_404_or_403(site, path):
    srv, top, root = site
    resp = fetch(srv, path)
    assert resp.status in (403, 404), resp
    assert SECRET not in resp.body


# ---------------------------------------------------------------- connections

def test_keepalive_sequential(site):
    srv, top, root = site
    s = srv.connect()
    try:
        for name in ("index.html", "app.js", "notes.txt", "img.png", "index.html"):
            s.sendall(req("/" + name))
            resp, rest = read_response(s)
            assert resp.status == 200, resp
            assert resp.body == FILES[name][0]
            assert rest == b""
            conn = resp.header("Connection")
            assert conn is None or conn.lower() != "close", resp
    finally:
        s.close()


def test_pipelined_in_one_write(site):
    srv, top, root = site
    names = ["index.html", "style.css", "data.json", "pic.svg", "notes.txt"]
    data = b"".join(req("/" + n) for n in names) + req("/sub/", method="HEAD") + req("/app.js")
    s = srv.connect()
    try:
        s.sendall(data)
        rest = b""
        for n in names:
            resp, rest = read_response(s, rest)
            assert resp.status == 200, resp
            assert resp.body == FILES[n][0], n
        resp, rest = read_response(s, rest, head_only=True)
        assert resp.status == 200 and int(resp.header("Content-Length")) == len(SUB_INDEX)
        resp, rest = read_response(s, rest)
        assert resp.body == FILES["app.js"][0]
        assert rest == b""
    finally:
        s.close()


def test_connection_close_request(site):
    srv, top, root = site
    s = srv.connect()
    try:
        s.sendall(req("/notes.txt", extra="Connection: close\r\n"))
        resp, rest = read_response(s)
        assert resp.status == 200 and resp.body == FILES["notes.txt"][0], resp
        assert rest == b""
        assert wait_closed(s), "server kept the connection open after Connection: close"
    finally:
        s.close()


def test_http10_closed_after_response(site):
    srv, top, root = site
    s = srv.connect()
    try:
        s.sendall(b"GET /app.js HTTP/1.0\r\n\r\n")
        resp, rest = read_response(s)
        assert resp.status == 200 and resp.body == FILES["app.js"][0], resp
        assert rest == b""
        assert wait_closed(s), "HTTP/1.0 connection left open"
    finally:
        s.close()


def test_default_static_dir_serves_index(server):
    """Without a temp tree: the repository's static/ has an index.html at /."""
    resp = fetch(server, "/")
    assert resp.status == 200, resp
    assert media_type(resp)[0] == "text/html"
    with open(os.path.join(server.static_dir, "index.html"), "rb") as f:
        assert resp.body == f.read()


# ---------------------------------------------------------------- large file

BIG_MIB = 50


@pytest.fixture
def big_site(start_server, static_tree):
    top, root = static_tree
    h = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        for i in range(BIG_MIB):
            chunk = i.to_bytes(4, "big") + block[4:]
            h.update(chunk)
            f.write(chunk)
    return start_server(static_dir=root), h.hexdigest()


def test_large_file_streamed_low_memory(big_site):
    srv, digest = big_site
    total = BIG_MIB << 20
    # Warm up so that lazily allocated buffers are counted in the baseline.
    resp = fetch(srv, "/big.bin", method="HEAD")
    assert resp.status == 200 and int(resp.header("Content-Length")) == total, resp
    base = rss_kib(srv.proc.pid)
    peak = base

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.settimeout(10)
    s.connect((srv.host, srv.port))
    try:
        s.sendall(req("/big.bin"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += recv_more(s)
        head, buf = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert b"\r\ncontent-length: %d" % total in head.lower(), head
        h = hashlib.sha256(buf)
        got = len(buf)
        # Slow reader: about 2 MiB over 1.5 s, watching the server's memory.
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            data = s.recv(16384)
            assert data, "closed early"
            h.update(data)
            got += len(data)
            peak = max(peak, rss_kib(srv.proc.pid))
            time.sleep(0.01)
        next_sample = got
        while got < total:
            data = s.recv(min(1 << 20, total - got))
            assert data, "closed after %d of %d bytes" % (got, total)
            h.update(data)
            got += len(data)
            if got >= next_sample:
                peak = max(peak, rss_kib(srv.proc.pid))
                next_sample = got + (2 << 20)
        assert got == total
        assert h.hexdigest() == digest, "large file content differs"
        # Still usable afterwards (keep-alive).
        s.sendall(req("/big.bin", method="HEAD"))
        resp, rest = read_response(s, head_only=True)
        assert resp.status == 200
    finally:
        s.close()
    growth_mib = (peak - base) / 1024.0
    assert growth_mib < 30, "server VmRSS grew by %.1f MiB while serving a %d MiB file" % (growth_mib, BIG_MIB)
