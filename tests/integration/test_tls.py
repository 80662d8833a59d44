"""TLS on the listener (--tls-cert, --tls-key, --tls-min) of the real
build/wshub, with a test PKI made by the tests (tlsutil: root CA,
intermediate, leaf for localhost and 127.0.0.1; the server sends the chain,
clients trust only the root). Clients nobody here wrote: python's ssl and
http.client for https, python3-websockets and Node's ws for wss, the
websocat stand-in through scripts/loadtest.sh. Covers: start-up refusals
(exit 2 with OpenSSL's reason), https static files (sendfile over TLS),
built-ins and keep-alive, wss echo and chat, wss with permessage-deflate, TLS 1.2 and 1.3 and
--tls-min 1.3, ALPN, session resumption, SIGHUP certificate reload (and a
broken file kept out), plain HTTP on the TLS port, a stalled handshake, a
client that stops reading (writes that stop inside a record), refusal at
--max-conns, graceful shutdown, idle memory per wss connection, and kernel
TLS where the kernel offers it (off with --no-ktls), and build/tlsfloor
(what OpenSSL keeps per connection).
The RFC 6455 suite over wss is test_conformance_wss.py."""
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import BINARY, ROOT, STATIC, free_port
from tlsutil import ServerTLS, make_pki

websockets = pytest.importorskip("websockets")

T = 5.0
NODE_DIR = os.path.join(ROOT, "bench", "peers", "node")
LOADTEST = os.path.join(ROOT, "scripts", "loadtest.sh")
STANDINS = os.path.join(ROOT, "tests", "standins")


@pytest.fixture(scope="module")
def pki():
    pki, tls, cleanup = make_pki()
    pki.default = tls
    yield pki
    cleanup()


@pytest.fixture
def tls_server(start_server, pki):
    """Factory: a wshub speaking TLS with the default test certificate."""
    def start(*args, **kw):
        kw.setdefault("tls", pki.default)
        return start_server(*args, **kw)
    return start


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def tls_connect(srv, ctx=None, session=None, hostname="localhost"):
    """A TLS socket to srv, handshake done."""
    ctx = ctx or srv.client_tls
    s = socket.create_connection((srv.host, srv.port), timeout=T)
    return ctx.wrap_socket(s, server_hostname=hostname, session=session)


def https_get(srv, path, ctx=None, method="GET"):
    conn = http.client.HTTPSConnection(srv.host, srv.port, timeout=T, context=ctx or srv.client_tls)
    conn.request(method, path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r, body


def read_all(s, limit=1 << 20):
    out = b""
    while len(out) < limit:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        out += d
    return out


def peer_cn(s):
    return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]


def wait_log(srv, text, timeout=T):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.log():
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------- start-up

def run_cli(*args, timeout=10):
    p = subprocess.run([BINARY, "--host", "127.0.0.1", "--port", str(free_port()), "--static", STATIC] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


@pytest.mark.parametrize("args,why", [
    (["--tls-cert", "C"], "--tls-cert needs --tls-key"),
    (["--tls-key", "K"], "--tls-key needs --tls-cert"),
    (["--tls-min", "1.3"], "--tls-min needs --tls-cert and --tls-key"),
    (["--no-ktls"], "--no-ktls needs --tls-cert and --tls-key"),
    (["--tls-cert", "C", "--tls-key", "K", "--tls-min", "1.1"], "--tls-min '1.1' must be 1.2 or 1.3"),
])
def test_option_refusals(pki, args, why):
    args = [pki.default.cert if a == "C" else pki.default.key if a == "K" else a for a in args]
    code, err = run_cli(*args)
    assert code == 2 and why in err, (code, err)


def test_unloadable_files_exit_2_with_the_reason(pki, tmp_path):
    other_cert, other_key = pki.server("other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", pki.default.key, "-aes128", "-passout", "pass:secret",
                    "-out", str(encrypted)], check=True)
    cases = [
        ("/nonexistent/cert.pem", pki.default.key, "cannot load --tls-cert /nonexistent/cert.pem: No such file"),
        (str(garbage), pki.default.key, "cannot load --tls-cert %s: " % garbage),
        (pki.default.cert, "/etc/hostname", "cannot load --tls-key /etc/hostname: "),
        (pki.default.cert, other_key, "key values mismatch"),
        (pki.default.cert, str(encrypted), "cannot load --tls-key %s: " % encrypted),   # no password prompt
    ]
    for cert, key, why in cases:
        code, err = run_cli("--tls-cert", cert, "--tls-key", key)
        assert code == 2 and why in err, (cert, key, code, err)


def test_help_lists_tls_options():
    p = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=5)
    for opt in ("--tls-cert FILE", "--tls-key FILE", "--tls-min VERSION"):
        assert opt in p.stdout, p.stdout


# ---------------------------------------------------------------- https

def test_https_static_builtins_and_keepalive(tls_server, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    big = os.urandom(3 * 1024 * 1024 + 12345)   # more than one flush budget, not a multiple of a record
    (www / "big.bin").write_bytes(big)
    (www / "index.html").write_text("<h1>hi</h1>\n")
    srv = tls_server("--log-level", "debug", static_dir=str(www))
    conn = http.client.HTTPSConnection(srv.host, srv.port, timeout=T, context=srv.client_tls)
    for path, want in [("/", b"<h1>hi</h1>\n"), ("/big.bin", big), ("/healthz", b"ok\n")]:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200 and body == want, (path, r.status, len(body))
    conn.request("HEAD", "/big.bin")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == str(len(big)) and r.read() == b""
    conn.request("GET", "/missing")
    r = conn.getresponse()
    assert r.status == 404
    r.read()
    conn.close()
    r, body = https_get(srv, "/stats")
    assert r.status == 200 and json.loads(body)["connections"]["http"] >= 1
    assert "tls handshake fd=" in srv.log() and "version=TLSv1.3" in srv.log()


def test_connection_close_ends_with_close_notify(tls_server):
    srv = tls_server()
    s = tls_connect(srv)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = b""
    while True:
        d = s.recv(4096)   # an EOF without close_notify would raise SSLEOFError here
        if not d:
            break
        got += d
    assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"ok\n"), got
    s.close()


# ---------------------------------------------------------------- wss

SIZES = [0, 125, 126, 16383, 16384, 16385, 65536, 1 << 20]


def test_wss_echo_python_websockets(tls_server):
    srv = tls_server()

    async def go():
        async with websockets.connect(srv.url("/echo"), ssl=srv.client_tls, max_size=None) as ws:
            for n in SIZES:
                text = ("é" * (n // 2)) + ("x" * (n % 2))
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), T) == text
                data = os.urandom(n)
                await ws.send(data)
                assert await asyncio.wait_for(ws.recv(), T) == data
            await ws.ping(b"p")
        assert ws.close_code == 1000

    run(go())


def kernel_tls_available():
    """Whether this kernel takes TLS keys: the "tls" upper-layer protocol on a
    connected TCP socket (TCP_ULP, 31), as OpenSSL will try it."""
    with socket.socket() as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        with socket.create_connection(lst.getsockname()) as c:
            peer, _ = lst.accept()
            peer.close()
            try:
                c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")
                return True
            except OSError:
                return False


@pytest.mark.parametrize("ktls", ["default", "--no-ktls"])
def test_kernel_tls_where_offered_and_off_when_told(tls_server, tmp_path, ktls):
    """Static files (sendfile, or reads and SSL_write) and wss over TLS, with
    kernel TLS where this kernel offers it and never with --no-ktls: the
    handshake log says which path each connection took."""
    www = tmp_path / "www"
    www.mkdir()
    big = os.urandom(2 * 1024 * 1024 + 777)
    (www / "big.bin").write_bytes(big)
    srv = tls_server("--log-level", "debug", *([ktls] if ktls != "default" else []), static_dir=str(www))
    r, body = https_get(srv, "/big.bin")
    assert r.status == 200 and body == big

    async def go():
        async with websockets.connect(srv.url("/echo"), ssl=srv.client_tls, max_size=None) as ws:
            data = os.urandom(300000)
            await ws.send(data)
            assert await asyncio.wait_for(ws.recv(), T) == data

    run(go())
    assert wait_log(srv, "ktls_send="), srv.log()
    log = srv.log()
    if ktls == "--no-ktls":
        assert "ktls=off" in log and "ktls_send=1" not in log, log
    elif kernel_tls_available():
        assert "ktls=where-offered" in log and "ktls_send=0" not in log, log
    else:   # the fallback: OpenSSL asked, the kernel declined, user space it is
        assert "ktls=where-offered" in log and "ktls_send=1" not in log, log


def node_ws():
    """(node binary, path of the ws package) as test_peers.py finds them."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed (CI installs Debian's nodejs and npm)")
    module = os.path.join(NODE_DIR, "node_modules", "ws")
    if not os.path.exists(os.path.join(module, "package.json")):
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: cannot install the ws package"
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, "npm ci failed in bench/peers/node:\n" + done.stdout + done.stderr
    return node, module


# argv: ws module, url, CA file. Echoes texts and binaries of every size in
# SIZES over wss (the CA trusted, the hostname verified), then closes 1000.
NODE_ECHO = r"""
const WebSocket = require(process.argv[1]);
const fs = require('fs');
const sizes = JSON.parse(process.argv[4]);
const ws = new WebSocket(process.argv[2], { ca: fs.readFileSync(process.argv[3]) });
const want = [];
for (const n of sizes) { want.push('é'.repeat(n >> 1) + 'x'.repeat(n & 1)); want.push(Buffer.alloc(n, n & 255)); }
let i = 0;
const fail = (e) => { console.error('FAIL', e); process.exit(1); };
ws.on('error', fail);
ws.on('open', () => ws.send(want[0]));
ws.on('message', (data, isBinary) => {
  const w = want[i];
  const ok = typeof w === 'string' ? (!isBinary && data.toString() === w) : (isBinary && Buffer.compare(data, w) === 0);
  if (!ok) fail('echo ' + i + ' differs');
  if (++i < want.length) ws.send(want[i]); else ws.close(1000, 'done');
});
ws.on('close', (code) => { console.log(JSON.stringify({ code, echoed: i })); process.exit(code === 1000 ? 0 : 1); });
setTimeout(() => fail('timeout'), 20000);
"""


def test_wss_echo_node_ws(tls_server, pki):
    node, module = node_ws()
    srv = tls_server()
    url = "wss://localhost:%d/echo" % srv.port
    p = subprocess.run([node, "-e", NODE_ECHO, module, url, pki.root, json.dumps(SIZES)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout) == {"code": 1000, "echoed": 2 * len(SIZES)}, p.stdout


# argv: ws module, url, CA file. Joins a room, waits for a message from
# "py", says "node-hello", prints every message event it saw once it has
# its own back, and exits.
NODE_CHAT = r"""
const WebSocket = require(process.argv[1]);
const fs = require('fs');
const ws = new WebSocket(process.argv[2], { ca: fs.readFileSync(process.argv[3]) });
const seen = [];
ws.on('error', (e) => { console.error(e); process.exit(1); });
ws.on('message', (data) => {
  const ev = JSON.parse(data.toString());
  if (ev.type !== 'message') return;
  seen.push(ev.nick + ':' + ev.text);
  if (ev.nick === 'py') ws.send('node-hello');
  if (ev.nick === 'node') { console.log(JSON.stringify(seen)); ws.close(1000); }
});
ws.on('close', () => process.exit(0));
setTimeout(() => { console.error('timeout', seen); process.exit(1); }, 15000);
"""


def test_chat_room_python_and_node_over_wss(tls_server, pki):
    node, module = node_ws()
    srv = tls_server()

    async def go():
        async with websockets.connect(srv.url("/ws/mixed?nick=py"), ssl=srv.client_tls) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), T))["type"] == "welcome"
            proc = await asyncio.create_subprocess_exec(
                node, "-e", NODE_CHAT, module, "wss://localhost:%d/ws/mixed?nick=node" % srv.port, pki.root,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            while True:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if ev["type"] == "join" and ev["nick"] == "node":
                    break
            await ws.send("py-hello")
            texts = []
            while "node:node-hello" not in texts:
                ev = json.loads(await asyncio.wait_for(ws.recv(), T))
                if ev["type"] == "message":
                    texts.append("%s:%s" % (ev["nick"], ev["text"]))
            out, err = await asyncio.wait_for(proc.communicate(), 15)
            assert proc.returncode == 0, (out, err)
            assert texts == ["py:py-hello", "node:node-hello"]
            assert json.loads(out) == ["py:py-hello", "node:node-hello"]

    run(go())


DEFLATE_ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

# argv: ws module, url, CA file, sizes. As NODE_ECHO, with permessage-deflate
# offered (every message compressed: threshold 0); prints the answer first.
NODE_DEFLATE_ECHO = NODE_ECHO.replace(
    "{ ca: fs.readFileSync(process.argv[3]) }",
    "{ ca: fs.readFileSync(process.argv[3]), perMessageDeflate: { threshold: 0 }, maxPayload: 0 }").replace(
    "ws.on('open', () => ws.send(want[0]));",
    "ws.on('upgrade', (res) => console.error('EXT ' + res.headers['sec-websocket-extensions']));\n"
    "ws.on('open', () => ws.send(want[0]));")


def test_wss_with_permessage_deflate_python_and_node(tls_server, pki):
    """TLS and --deflate together: python3-websockets (which offers deflate by
    default) and Node's ws (offering it) negotiate permessage-deflate over
    wss, and messages of every size round-trip compressed both ways."""
    node, module = node_ws()
    srv = tls_server("--deflate")

    async def go():
        async with websockets.connect(srv.url("/echo"), ssl=srv.client_tls, max_size=None) as ws:
            assert ws.response_headers["Sec-WebSocket-Extensions"] == DEFLATE_ANSWER
            for n in SIZES:
                text = ("chat line %d " % n) * (n // 12 + 1)
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), T) == text
        assert ws.close_code == 1000

    run(go())
    r, body = https_get(srv, "/stats")
    after_python = json.loads(body)
    # the empty message goes out as it is; the others (all from 125 B) compressed both ways
    assert after_python["messages_in_compressed"] == len(SIZES), after_python
    assert after_python["messages_out_compressed"] == len(SIZES) - 1, after_python
    p = subprocess.run([node, "-e", NODE_DEFLATE_ECHO, module, "wss://localhost:%d/echo" % srv.port, pki.root,
                        json.dumps(SIZES)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "EXT " + DEFLATE_ANSWER in p.stderr, p.stderr
    assert json.loads(p.stdout) == {"code": 1000, "echoed": 2 * len(SIZES)}, p.stdout
    r, body = https_get(srv, "/stats")
    s = json.loads(body)
    assert s["messages_in_compressed"] - after_python["messages_in_compressed"] == 2 * len(SIZES), s
    assert s["messages_out_compressed"] > after_python["messages_out_compressed"] + len(SIZES), s


def test_client_that_stops_reading_gets_every_byte(tls_server):
    """An echo bigger than the socket buffers while the client does not read:
    the server's TLS writes stop inside records and are finished later."""
    srv = tls_server()
    s = tls_connect(srv, hostname="127.0.0.1")
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = os.urandom(6 * 1024 * 1024)
    key = os.urandom(4)
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key * (len(payload) // 4), "big")).to_bytes(
        len(payload), "big")
    frame = bytes([0x82, 0xFF]) + len(payload).to_bytes(8, "big") + key + masked
    s.sendall(frame)          # the echo piles up in the server while we do not read
    time.sleep(1.0)
    want = 10 + len(payload)
    got = bytearray()
    while len(got) < want:
        d = s.recv(1 << 20)
        assert d, "connection closed after %d of %d bytes" % (len(got), want)
        got += d
    assert bytes(got[:10]) == bytes([0x82, 0x7F]) + len(payload).to_bytes(8, "big")
    assert bytes(got[10:]) == payload
    s.close()


# ---------------------------------------------------------------- versions, ALPN, resumption

def test_tls13_by_default_and_tls12_negotiated(tls_server, pki):
    srv = tls_server()
    s = tls_connect(srv)
    assert s.version() == "TLSv1.3"
    s.close()
    s = tls_connect(srv, pki.client_context(maximum_version=ssl.TLSVersion.TLSv1_2))
    assert s.version() == "TLSv1.2"
    assert s.cipher()[0].startswith("ECDHE-") and ("GCM" in s.cipher()[0] or "CHACHA20" in s.cipher()[0])
    s.close()


def test_tls_min_13_refuses_tls12(tls_server, pki):
    srv = tls_server("--tls-min", "1.3")
    with pytest.raises(ssl.SSLError, match="(?i)protocol version|unsupported protocol"):
        tls_connect(srv, pki.client_context(maximum_version=ssl.TLSVersion.TLSv1_2))
    s = tls_connect(srv)
    assert s.version() == "TLSv1.3"
    s.close()


def test_alpn_http11(tls_server, pki):
    srv = tls_server()
    ctx = pki.client_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    s = tls_connect(srv, ctx)
    assert s.selected_alpn_protocol() == "http/1.1"
    s.close()
    ctx = pki.client_context()
    ctx.set_alpn_protocols(["h2"])
    with pytest.raises(ssl.SSLError, match="(?i)no application protocol"):
        tls_connect(srv, ctx)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["1.3", "1.2"])
def test_session_resumption(tls_server, version, pki):
    srv = tls_server()
    ctx = pki.client_context(maximum_version=version)
    s = tls_connect(srv, ctx)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_all(s).endswith(b"ok\n")    # TLS 1.3 tickets arrive after the handshake
    session = s.session
    assert not s.session_reused
    s.close()
    s = tls_connect(srv, ctx, session=session)
    assert s.session_reused, "a second connection with the first one's session did not resume"
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_all(s).endswith(b"ok\n")
    s.close()


# ---------------------------------------------------------------- reload

def test_sighup_reloads_the_certificate_and_keeps_it_when_broken(start_server, pki, tmp_path):
    cert_a, key_a = pki.server("cert-a")
    cert_b, key_b = pki.server("cert-b")
    live_cert, live_key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(cert_a, live_cert)
    shutil.copy(key_a, live_key)
    srv = start_server(tls=ServerTLS(pki, live_cert, live_key))
    s = tls_connect(srv)
    assert peer_cn(s) == "cert-a"
    s.close()

    async def open_ws():
        ws = await websockets.connect(srv.url("/echo"), ssl=srv.client_tls)
        await ws.send("before")
        assert await ws.recv() == "before"
        return ws

    async def scenario():
        ws = await open_ws()
        shutil.copy(cert_b, live_cert)
        shutil.copy(key_b, live_key)
        srv.proc.send_signal(signal.SIGHUP)
        assert await asyncio.to_thread(wait_log, srv, "tls reloaded"), srv.log()
        assert "subject=\"/CN=cert-b\"" in srv.log()
        s = tls_connect(srv)
        assert peer_cn(s) == "cert-b"
        s.close()
        await ws.send("after")          # a connection from before the reload goes on
        assert await ws.recv() == "after"
        with open(live_cert, "w") as f:
            f.write("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert await asyncio.to_thread(wait_log, srv, "tls reload failed"), srv.log()
        s = tls_connect(srv)
        assert peer_cn(s) == "cert-b"
        s.close()
        await ws.close()

    run(scenario())
    line = next(l for l in srv.log().splitlines() if "tls reload failed" in l)
    assert " error " in line and "no start line" in line, line
    assert srv.alive()


# ---------------------------------------------------------------- hostile or confused peers

def test_plain_http_gets_400_with_the_reason(tls_server):
    srv = tls_server()
    s = socket.create_connection((srv.host, srv.port), timeout=T)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = read_all(s)
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got
    assert b"Connection: close" in head and b"Content-Length: %d" % len(body) in head, got
    assert body == b"this port speaks TLS: use https:// or wss://\n"
    r, stats = https_get(srv, "/stats")
    assert json.loads(stats)["closed"]["protocol_error"] >= 1


def test_stalled_handshake_closed_at_handshake_timeout(tls_server):
    srv = tls_server("--handshake-timeout", "1")
    s = socket.create_connection((srv.host, srv.port), timeout=6)
    # the start of a ClientHello record that announces 512 bytes and sends 9
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC]))
    t0 = time.monotonic()
    try:
        d = s.recv(100)
    except ConnectionResetError:
        d = b""
    elapsed = time.monotonic() - t0
    s.close()
    assert d == b"" and 0.8 <= elapsed <= 3.0, (d, elapsed)
    r, stats = https_get(srv, "/stats")
    assert json.loads(stats)["closed"]["idle"] >= 1


def test_refused_at_max_conns_with_an_alert(tls_server):
    srv = tls_server("--max-conns", "1")
    deadline = time.monotonic() + T
    while True:   # the start-up probe may still hold the one place for a moment
        try:
            first = tls_connect(srv)
            break
        except ssl.SSLError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    t0 = time.monotonic()
    with pytest.raises((ssl.SSLError, ConnectionResetError), match="(?i)internal error|reset"):
        tls_connect(srv)
    assert time.monotonic() - t0 < 2
    first.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_all(first).endswith(b"ok\n")
    first.close()


def test_graceful_shutdown_closes_wss_with_1001(tls_server):
    srv = tls_server()

    async def go():
        ws = await websockets.connect(srv.url("/echo"), ssl=srv.client_tls)
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(ws.wait_closed(), T)
        assert ws.close_code == 1001

    run(go())
    assert srv.proc.wait(timeout=T) == 0


# ---------------------------------------------------------------- idle memory

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_idle_wss_connection_memory(tls_server):
    """An idle wss connection on /echo holds no record buffers (OpenSSL's
    SSL_MODE_RELEASE_BUFFERS): measured over 400 connections it costs about
    16 KiB, nearly all of it OpenSSL 3.0's own state (the SSL object alone is
    7.6 KiB); one kept 16 KiB record buffer would take it past 30 KiB."""
    n = 400
    srv = tls_server("--max-conns", "1000")

    async def go():
        time.sleep(1.2)   # past the first housekeeping trim
        before = rss_kib(srv.proc.pid)
        conns = []
        for _ in range(n // 50):
            conns += await asyncio.gather(*[websockets.connect(srv.url("/echo"), ssl=srv.client_tls,
                                                               ping_interval=None) for _ in range(50)])
        for ws in conns[:50]:
            await ws.send("x" * 1000)
            assert await ws.recv() == "x" * 1000
        await asyncio.sleep(1.5)
        per = (rss_kib(srv.proc.pid) - before) * 1024 / n
        for ws in conns:
            await ws.close()
        return per

    per = run(go())
    print("idle wss connection: %.0f bytes of server RSS" % per)
    with open("/proc/%d/maps" % srv.proc.pid) as f:
        if "libasan" in f.read():
            return   # redzones, shadow memory and quarantine: the figure means nothing here
    assert per < 24 * 1024, "an idle wss connection costs %.0f bytes" % per


def test_tlsfloor_counts_what_openssl_keeps_per_connection():
    """make tlsfloor (bench/tlsfloor.c, wshub's TLS transport linked in as it
    is): the per-connection figure docs/performance.md quotes, counted for
    200 connections; OpenSSL's SSL object alone is over 7 KB, so a count
    below that means the hooks missed allocations."""
    tool = os.path.join(os.path.dirname(BINARY), "tlsfloor")
    if not os.path.exists(tool):
        pytest.skip("build/tlsfloor is not built (make integration builds it)")
    figures = {}
    for version in ("1.3", "1.2"):
        p = subprocess.run([tool, "--conns", "200"] + (["--tls12"] if version == "1.2" else []),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        result = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
        assert len(result) == 1, p.stdout
        fields = dict(kv.split("=", 1) for kv in result[0].split()[1:])
        assert fields["tls"] == version and fields["conns"] == "200", fields
        figures[version] = int(fields["openssl_bytes_per_conn"])
        assert 7000 < figures[version] < 40000, p.stdout
        assert int(fields["glibc_chunk_bytes_per_conn"]) > figures[version], p.stdout
        assert "ssl/ssl_lib.c" in p.stdout and ("TLSv%s" % version) in p.stdout, p.stdout
    assert figures["1.3"] > figures["1.2"], figures   # TLS 1.3 keeps its key shares and handshake hash
    p = subprocess.run([tool, "--conns", "0"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "--conns: 1 to 8000" in p.stderr, p.stderr


# ---------------------------------------------------------------- load test script

@pytest.mark.parametrize("trust", ["-k", "SSL_CERT_FILE"])
def test_loadtest_over_wss(tls_server, trust, pki):
    srv = tls_server()
    env = dict(os.environ)
    env["PATH"] = STANDINS + os.pathsep + env.get("PATH", "")
    args = [LOADTEST, "-u", "wss://localhost:%d" % srv.port, "-r", "tls-room", "-c", "3", "-m", "5", "-i", "0.02"]
    if trust == "-k":
        args.append("-k")
    else:
        env["SSL_CERT_FILE"] = pki.root
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "OK: 15 lines sent, every client got all 15 once" in p.stdout, p.stdout


def test_loadtest_wss_untrusted_certificate_fails(tls_server):
    srv = tls_server()
    env = dict(os.environ)
    env["PATH"] = STANDINS + os.pathsep + env.get("PATH", "")
    env.pop("SSL_CERT_FILE", None)
    p = subprocess.run([LOADTEST, "-u", "wss://localhost:%d" % srv.port, "-c", "1", "-m", "1"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1 and "certificate" in p.stderr.lower(), p.stdout + p.stderr
