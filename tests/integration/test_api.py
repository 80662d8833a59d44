"""The HTTP API (--api-key-file) against the real binary: every endpoint and
every error status, the key and its brute-force throttle, --api-allow, body
framing and limits (413, 411, a slow body cut at the timeout), an API post
reaching WebSocket members in the room's one order with its seq, disconnect
with close code 4003, a post on one cluster node reaching members on
another (a real redis-server), and GET /api/rooms listing the cluster's
rooms from any node or worker (by prefix, in pages, rooms gone with their
history dropped from Redis's registry a bounded number at a time, 503/504
without Redis)."""
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BINARY
from test_chat import close_all, connect, expect_event, join, recv_event, run

websockets = pytest.importorskip("websockets")

KEY = "k3y-for-the-tests-0123456789"
T = 5.0


@pytest.fixture
def key_file():
    with tempfile.NamedTemporaryFile("w", prefix="wshub-apikey-", delete=False) as f:
        f.write(KEY + "\n")
    yield f.name
    os.unlink(f.name)


@pytest.fixture
def api_server(start_server, key_file):
    """start(*extra) -> a server with the API on."""
    return lambda *extra: start_server("--api-key-file", key_file, *extra)


def call(srv, method, path, body=None, key=KEY, headers=None, ctype="application/json"):
    """One request on a fresh connection: (status, headers dict (lower-case), JSON or None)."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=T)
    hdrs = dict(headers or {})
    if key is not None:
        hdrs.setdefault("Authorization", "Bearer " + key)
    if body is not None:
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if ctype:
            hdrs.setdefault("Content-Type", ctype)
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    out = {k.lower(): v for k, v in r.getheaders()}
    parsed = json.loads(data) if data and out.get("content-type") == "application/json" else None
    return r.status, out, parsed


def expect_error(result, status, code=None):
    st, hdrs, body = result
    assert st == status, (st, body)
    assert hdrs["content-type"] == "application/json", hdrs
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body
    if code:
        assert body["error"]["code"] == code, body
    return hdrs


def raw_exchange(srv, data, timeout=T):
    """Sends raw bytes and reads until the server closes (or timeout): the bytes read."""
    s = srv.connect(timeout)
    s.sendall(data)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    s.close()
    return got


def post_head(path, length, extra=""):
    return ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (path, KEY, length, extra)).encode()


# ---------------------------------------------------------------- options

def test_api_off_is_404(server):
    st, _, _ = call(server, "GET", "/api/rooms")
    assert st == 404
    st, hdrs, _ = call(server, "POST", "/api/rooms/lobby/messages", body={"text": "x"})
    assert st == 405 and hdrs["allow"] == "GET, HEAD"  # the server's answer to any POST


@pytest.mark.parametrize("content,why", [(None, "cannot read"), ("", "empty"), ("\n", "empty")])
def test_bad_key_file_exits_2(content, why):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "key")
        if content is not None:
            with open(path, "w") as f:
                f.write(content)
        p = subprocess.run([BINARY, "--port", "1", "--api-key-file", path], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2, p
        assert "--api-key-file" in p.stderr and why in p.stderr, p.stderr


@pytest.mark.parametrize("args", [["--api-allow", "127.0.0.1"], ["--max-api-body", "1k"], ["--api-timeout", "3"]])
def test_api_options_need_key(args):
    p = subprocess.run([BINARY, "--port", "1"] + args, capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--api-key-file" in p.stderr, p


def test_help_lists_api_options():
    out = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=10).stdout
    for name in ("--api-key-file", "--api-allow", "--max-api-body", "--api-timeout"):
        assert name in out


# ---------------------------------------------------------------- the key

def test_key_required(api_server):
    srv = api_server()
    h = expect_error(call(srv, "GET", "/api/rooms", key=None), 401, "unauthorized")
    assert h["www-authenticate"].startswith("Bearer"), h
    expect_error(call(srv, "GET", "/api/rooms", key=KEY + "x"), 401)
    expect_error(call(srv, "GET", "/api/rooms", key=KEY[:-1]), 401)
    expect_error(call(srv, "GET", "/api/rooms", key=None, headers={"Authorization": "Basic " + KEY}), 401)
    st, _, body = call(srv, "GET", "/api/rooms", key=None, headers={"Authorization": "bearer " + KEY})
    assert st == 200 and body == {"rooms": [], "next": None}
    assert KEY not in srv.log()


def test_key_brute_force_throttled(api_server):
    """Wrong keys from one address: a burst of 401s, then 429 (the key is not
    even checked, so the right one gets 429 too) until a token comes back;
    the right key then passes and forgives the address."""
    srv = api_server()
    start = time.monotonic()
    statuses = [call(srv, "GET", "/api/rooms", key="guess%d" % i)[0] for i in range(40)]
    elapsed = time.monotonic() - start
    unauthorized = statuses.count(401)
    assert set(statuses) <= {401, 429}, statuses
    assert unauthorized <= 10 + elapsed * 1 + 1, (unauthorized, elapsed, statuses)
    assert statuses[-1] == 429 and statuses.count(429) >= 40 - 10 - elapsed - 1, statuses
    h = expect_error(call(srv, "GET", "/api/rooms", key=KEY), 429, "throttled")
    assert h["retry-after"] == "1"
    time.sleep(1.2)
    assert call(srv, "GET", "/api/rooms")[0] == 200
    assert [call(srv, "GET", "/api/rooms", key="again")[0] for _ in range(3)] == [401, 401, 401]


def test_api_allow(api_server):
    srv = api_server("--api-allow", "10.0.0.0/8", "--api-allow", "2001:db8::/32")
    expect_error(call(srv, "GET", "/api/rooms"), 403, "forbidden")
    srv = api_server("--api-allow", "10.0.0.0/8", "--api-allow", "127.0.0.1/32")
    assert call(srv, "GET", "/api/rooms")[0] == 200


def test_api_options_in_config_file(start_server, key_file, tmp_path):
    conf = tmp_path / "wshub.conf"
    conf.write_text("api-key-file = %s\napi-allow = 10.0.0.0/8\nmax-api-body = 1k\n" % key_file)
    srv = start_server("--config", str(conf))
    expect_error(call(srv, "GET", "/api/rooms"), 403, "forbidden")
    srv = start_server("--config", str(conf), "--api-allow", "127.0.0.1")
    assert call(srv, "GET", "/api/rooms")[0] == 200
    assert call(srv, "POST", "/api/disconnect", body={"user": "u" * 1100})[0] == 413


def test_api_allow_ipv6(start_server, key_file):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")

    def v6(srv):
        conn = http.client.HTTPConnection("::1", srv.port, timeout=T)
        conn.request("GET", "/api/rooms", headers={"Authorization": "Bearer " + KEY})
        st = conn.getresponse().status
        conn.close()
        return st

    srv = start_server("--host", "::", "--api-key-file", key_file, "--api-allow", "::1/128")
    assert v6(srv) == 200
    srv = start_server("--host", "::", "--api-key-file", key_file, "--api-allow", "127.0.0.0/8")
    assert v6(srv) == 403


# ---------------------------------------------------------------- paths and methods

@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nope", "/api/rooms/", "/api/rooms/lobby/x",
                                  "/api/rooms/lobby/messages/x", "/api/rooms/bad%20name", "/api/disconnect/x"])
def test_unknown_paths_404(api_server, path):
    expect_error(call(api_server(), "GET", path), 404)


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/api/rooms", "GET, HEAD"),
    ("DELETE", "/api/rooms/lobby", "GET, HEAD"),
    ("PUT", "/api/rooms/lobby/messages", "GET, HEAD, POST"),
    ("GET", "/api/disconnect", "POST"),
])
def test_wrong_method_405(api_server, method, path, allow):
    h = expect_error(call(api_server(), method, path, body={} if method != "GET" else None), 405,
                     "method_not_allowed")
    assert h["allow"] == allow


def test_unknown_room_404(api_server):
    srv = api_server()
    expect_error(call(srv, "GET", "/api/rooms/ghost"), 404, "room_not_found")
    expect_error(call(srv, "GET", "/api/rooms/ghost/messages"), 404, "room_not_found")
    expect_error(call(srv, "POST", "/api/rooms/ghost/messages", body={"text": "x"}), 404, "room_not_found")


# ---------------------------------------------------------------- bodies

def test_post_body_errors(api_server):
    srv = api_server("--max-line", "10")

    async def go():
        ws, _ = await join(srv, "r", "alice")
        p = "/api/rooms/r/messages"
        expect_error(call(srv, "POST", p, body={"text": "x"}, ctype=None), 415, "unsupported_media_type")
        expect_error(call(srv, "POST", p, body={"text": "x"}, ctype="text/plain"), 415)
        expect_error(call(srv, "POST", p, body='{"text": "x"', ctype="application/json"), 400, "malformed_json")
        expect_error(call(srv, "POST", p, body='{"text":"a","text":"b"}'), 400)
        expect_error(call(srv, "POST", p, body=b"", ctype="application/json"), 400)
        for bad in ([1], "\"text\"", "5", "null", {"text": 5}, {}, {"text": ""}, {"text": "x" * 11}, {"text": "x", "nick": "a b"},
                    {"text": "x", "nick": 3}, {"text": "x", "extra": 1}):
            expect_error(call(srv, "POST", p, body=bad), 422, "invalid_body")
        st, _, body = call(srv, "POST", p, body={"text": "x" * 10}, ctype="application/json; charset=utf-8")
        assert st == 200, body
        ev = await recv_event(ws)
        assert ev["type"] == "message" and ev["nick"] == "api" and ev["api"] is True and ev["seq"] == body["seq"]
        await close_all(ws)
    run(go())


def test_disconnect_body_errors(api_server):
    srv = api_server()
    for bad in ({}, {"user": "u", "room": "r", "nick": "n"}, {"room": "r"}, {"nick": "n"}, {"user": 1},
                {"room": "bad room", "nick": "n"}, {"room": "r", "nick": "n", "reason": "x" * 200},
                {"user": "u", "why": "x"}):
        expect_error(call(srv, "POST", "/api/disconnect", body=bad), 422, "invalid_body")
    expect_error(call(srv, "POST", "/api/disconnect", body="nope"), 400, "malformed_json")
    expect_error(call(srv, "POST", "/api/disconnect", body={"user": "u"}, ctype="application/xml"), 415)


def test_body_too_large_413_without_reading_it(api_server):
    srv = api_server("--max-api-body", "1k")
    # only the head is sent: the answer comes at once, and the connection closes
    got = raw_exchange(srv, post_head("/api/rooms/r/messages", 5000))
    assert got.startswith(b"HTTP/1.1 413 "), got
    assert b"Connection: close" in got and b'"code":"too_large"' in got, got
    st, _, _ = call(srv, "POST", "/api/disconnect", body={"user": "u" * 1000, "x": "y" * 100})
    assert st == 413


def test_chunked_body_411(api_server):
    srv = api_server()
    got = raw_exchange(srv, b"POST /api/disconnect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                       b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 411 "), got
    assert b"Content-Length" in got.split(b"\r\n\r\n", 1)[1], got
    got = raw_exchange(srv, post_head("/api/disconnect", 2, "Content-Length: 3\r\n") + b"{}")
    assert got.startswith(b"HTTP/1.1 400 "), got


def test_slow_body_cut_at_timeout(api_server):
    srv = api_server("--handshake-timeout", "1")
    s = srv.connect()
    s.sendall(post_head("/api/disconnect", 100) + b'{"user":')
    start = time.monotonic()
    s.settimeout(T)
    deadline = start + T
    got = b""
    while time.monotonic() < deadline:
        s.sendall(b" ")   # a byte now and then never completes the body
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
        time.sleep(0.1)
    waited = time.monotonic() - start
    s.close()
    assert got == b"" and 0.8 < waited < 3.5, (got, waited)


def test_body_in_pieces_and_pipelined(api_server):
    """A body written a few bytes at a time, then two requests with bodies in
    one write: each is answered, in order, on one connection."""
    srv = api_server()

    async def go():
        ws, _ = await join(srv, "p", "alice")
        body = json.dumps({"text": "piece by piece", "nick": "bot"}).encode()
        s = srv.connect()
        data = post_head("/api/rooms/p/messages", len(body)) + body
        for i in range(0, len(data), 7):
            s.sendall(data[i:i + 7])
            time.sleep(0.002)
        two = b"".join(post_head("/api/rooms/p/messages", len(b)) + b
                       for b in (b'{"text":"one"}', b'{"text":"two"}'))
        s.sendall(two)
        got = b""
        deadline = time.monotonic() + T
        while got.count(b"HTTP/1.1 200") < 3 and time.monotonic() < deadline:
            got += s.recv(65536)
        s.close()
        seqs = [json.loads(line)["seq"] for line in got.split(b"\r\n\r\n")[1:] if line.startswith(b"{")
                for line in [line.split(b"\n")[0]]]
        assert len(seqs) == 3 and seqs == sorted(seqs) and seqs[1:] == [seqs[0] + 1, seqs[0] + 2], got
        texts = [(await recv_event(ws))["text"] for _ in range(3)]
        assert texts == ["piece by piece", "one", "two"]
        await close_all(ws)
    run(go())


# ---------------------------------------------------------------- endpoints

def test_post_reaches_members_in_order(api_server):
    """Members' lines and API posts interleaved: every member sees one order,
    consecutive seqs, and each post's answer names its event's seq."""
    srv = api_server()

    async def go():
        a, welcome = await join(srv, "order", "alice")
        b, _ = await join(srv, "order", "bob")
        await expect_event(a, "join", nick="bob")
        answers = {}
        for i in range(20):
            if i % 2:
                await a.send("from alice %d" % i)
            else:
                st, _, body = call(srv, "POST", "/api/rooms/order/messages",
                                   body={"text": "from api %d" % i, "nick": "bot"})
                assert st == 200 and body["epoch"] == welcome["epoch"], body
                answers["from api %d" % i] = body["seq"]
        seen = []
        for ws in (a, b):
            evs = []
            while len(evs) < 20:
                ev = await recv_event(ws)
                if ev["type"] == "message":
                    evs.append(ev)
            seen.append([(e["seq"], e["text"]) for e in evs])
            for e in evs:
                if e["text"] in answers:
                    assert e["seq"] == answers[e["text"]] and e["api"] is True and e["nick"] == "bot", e
                else:
                    assert "api" not in e, e
        assert seen[0] == seen[1]
        assert [s for s, _ in seen[0]] == list(range(seen[0][0][0], seen[0][0][0] + 20))
        # kept in history, as members got it
        st, _, hist = call(srv, "GET", "/api/rooms/order/messages?since=0&limit=1000")
        assert st == 200 and [(e["seq"], e["text"]) for e in hist["messages"]] == seen[0]
        await close_all(a, b)
    run(go())


def test_room_info(api_server):
    srv = api_server()

    async def go():
        a, welcome = await join(srv, "info", "alice")
        b, _ = await join(srv, "info", "bob")
        st, _, r = call(srv, "GET", "/api/rooms/info")
        assert st == 200 and r["room"] == "info" and r["count"] == 2 and r["epoch"] == welcome["epoch"]
        assert sorted(m["nick"] for m in r["members"]) == ["alice", "bob"]
        assert all("user" in m for m in r["members"]) and r["seq"] == 0
        await a.send("hello")
        await expect_event(b, "message", text="hello")
        assert call(srv, "GET", "/api/rooms/info")[2]["seq"] == 1
        st, h, body = call(srv, "HEAD", "/api/rooms/info")
        assert st == 200 and body is None and int(h["content-length"]) > 0
        await close_all(a, b)
    run(go())


def test_history_since_and_limit(api_server):
    srv = api_server("--history", "5")

    async def go():
        a, _ = await join(srv, "h", "alice")
        for i in range(8):
            await a.send("m%d" % i)
        sent = []
        while len(sent) < 8:
            ev = await recv_event(a)
            if ev["type"] == "message":
                sent.append(ev)
        _, _, r = call(srv, "GET", "/api/rooms/h/messages")
        assert [e["text"] for e in r["messages"]] == ["m3", "m4", "m5", "m6", "m7"]
        assert r["messages"] == sent[3:] and r["more"] is False and r["gap"] is True and r["seq"] == 8
        _, _, r = call(srv, "GET", "/api/rooms/h/messages?since=1")
        assert [e["seq"] for e in r["messages"]] == [4, 5, 6, 7, 8] and r["gap"] is True
        _, _, r = call(srv, "GET", "/api/rooms/h/messages?since=4&limit=2")
        assert [e["seq"] for e in r["messages"]] == [5, 6] and r["more"] is True
        _, _, r = call(srv, "GET", "/api/rooms/h/messages?since=8")
        assert r["messages"] == [] and r["more"] is False and r["gap"] is False
        for q in ("since=x", "limit=0", "limit=1001", "since=-1", "limit="):
            expect_error(call(srv, "GET", "/api/rooms/h/messages?" + q), 400, "invalid_query")
        await close_all(a)
    run(go())


def test_list_rooms_prefix_and_pages(api_server):
    srv = api_server()
    names = ["game-%02d" % i for i in range(12)] + ["shop-1", "shop-2"]

    async def go():
        wss = [(await join(srv, n, "u"))[0] for n in names]
        await wss[0].send("hi")
        got, cursor, pages = [], "", 0
        while True:
            st, _, r = call(srv, "GET", "/api/rooms?prefix=game-&limit=5" + ("&cursor=" + cursor if cursor else ""))
            assert st == 200 and len(r["rooms"]) <= 5
            got += r["rooms"]
            pages += 1
            if r["next"] is None:
                break
            cursor = r["next"]
            assert pages < 10
        assert [x["room"] for x in got] == names[:12] and pages == 3
        assert all(x["count"] == 1 for x in got) and got[0]["seq"] == 1 and got[1]["seq"] == 0
        _, _, r = call(srv, "GET", "/api/rooms")
        assert [x["room"] for x in r["rooms"]] == sorted(names) and r["next"] is None
        for q in ("limit=0", "prefix=a%20b", "cursor=%00", "limit=99999"):
            expect_error(call(srv, "GET", "/api/rooms?" + q), 400, "invalid_query")
        await close_all(*wss)
    run(go())


def test_disconnect_by_nick_closes_4003(api_server):
    srv = api_server()

    async def go():
        a, _ = await join(srv, "d", "alice")
        b, _ = await join(srv, "d", "bob")
        await expect_event(a, "join", nick="bob")
        st, _, r = call(srv, "POST", "/api/disconnect", body={"room": "d", "nick": "bob", "reason": "spam"})
        assert st == 200 and r == {"closed": 1}
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            while True:
                await asyncio.wait_for(b.recv(), T)
        assert ei.value.rcvd.code == 4003 and ei.value.rcvd.reason == "spam"
        ev = await recv_event(a)
        assert ev["type"] == "leave" and ev["nick"] == "bob", ev
        st, _, r = call(srv, "POST", "/api/disconnect", body={"room": "d", "nick": "bob"})
        assert st == 200 and r == {"closed": 0}
        st, _, r = call(srv, "POST", "/api/disconnect", body={"user": "nobody"})
        assert st == 200 and r == {"closed": 0}
        await close_all(a)
    run(go())


def test_disconnect_by_user_and_user_ids(start_server, key_file, tmp_path):
    """Members signed in with tokens carry their user in GET /api/rooms/ROOM;
    disconnecting a user closes each of its connections (4003), in every
    room, and no one else's."""
    from test_auth import SECRET, claims, hs256
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    srv = start_server("--api-key-file", key_file, "--auth-secret-file", str(secret), "--allow-anonymous")

    async def signed_in(room, sub, name):
        ws = await connect(srv, "/ws/%s?token=%s" % (room, hs256(claims(sub, name=name))))
        ev = await recv_event(ws)
        assert ev["type"] == "welcome", ev
        return ws

    async def go():
        a1 = await signed_in("r1", "u-1", "ann")
        a2 = await signed_in("r2", "u-1", "ann")
        b = await signed_in("r1", "u-2", "bea")
        g, welcome = await join(srv, "r1", None)
        st, _, r = call(srv, "GET", "/api/rooms/r1")
        assert st == 200 and sorted((m["nick"], m["user"]) for m in r["members"]) == \
            sorted([("ann", "u-1"), ("bea", "u-2"), (welcome["nick"], None)]), r
        st, _, r = call(srv, "POST", "/api/disconnect", body={"user": "u-1", "reason": "banned"})
        assert st == 200 and r == {"closed": 2}, r
        for ws in (a1, a2):
            with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
                while True:
                    await asyncio.wait_for(ws.recv(), T)
            assert ei.value.rcvd.code == 4003 and ei.value.rcvd.reason == "banned"
        await b.send("still here")
        while True:
            ev = await recv_event(b)
            if ev["type"] == "message":
                break
        assert ev["text"] == "still here" and ev["user"] == "u-2"
        assert sorted(m["user"] or "" for m in call(srv, "GET", "/api/rooms/r1")[2]["members"]) == ["", "u-2"]
        await close_all(b, g)
    run(go())


def test_stats_count_api(api_server):
    srv = api_server()
    call(srv, "GET", "/api/rooms", key="wrong")
    call(srv, "GET", "/api/rooms")
    st, _, _ = call(srv, "GET", "/stats", key=None)
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=T)
    conn.request("GET", "/stats")
    s = json.loads(conn.getresponse().read())
    assert s["api_requests"] == 2 and s["api_refused"] == 1, s


# ---------------------------------------------------------------- cluster

def cluster(start_server, redis, key_file, n, *extra):
    from test_cluster import nodes
    return nodes(start_server, redis, n, "--api-key-file", key_file, *extra)


def test_cluster_post_on_one_node_reaches_another(start_server, redis_server, key_file):
    """Node A has no member in the room: its post is numbered by Redis (the
    answer comes once the broker has the seq) and reaches the members on B."""
    a, b = cluster(start_server, redis_server, key_file, 2)

    from test_cluster import welcome_of

    async def go():
        ws, welcome = await welcome_of(b, "c", "bob")
        await expect_event(ws, "join", nick="bob")   # its own join follows its welcome, as on one node
        await ws.send("first")
        await expect_event(ws, "message", text="first", seq=1)
        st, _, r = call(a, "POST", "/api/rooms/c/messages", body={"text": "from A", "nick": "bot"})
        assert st == 200 and r["seq"] == 2 and r["epoch"] == welcome["epoch"], r
        await expect_event(ws, "message", text="from A", seq=2, api=True, nick="bot")
        # two posts and a read pipelined on one connection: each waits for the one before
        s = a.connect()
        s.sendall(b"".join(post_head("/api/rooms/c/messages", len(b)) + b for b in (b'{"text":"p1"}', b'{"text":"p2"}'))
                  + ("GET /api/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % KEY).encode())
        got = b""
        deadline = time.monotonic() + T
        while got.count(b"HTTP/1.1 200") < 3 and time.monotonic() < deadline:
            got += s.recv(65536)
        s.close()
        bodies = [part.split(b"\n")[0] for part in got.split(b"\r\n\r\n")[1:]]
        assert [json.loads(x).get("seq") for x in bodies] == [3, 4, None], got
        await expect_event(ws, "message", text="p1", seq=3)
        await expect_event(ws, "message", text="p2", seq=4)
        # once A follows the room (a member there), its member list is the cluster's
        wa, _ = await welcome_of(a, "c", "ann")
        deadline = time.monotonic() + T
        while True:
            st, _, r = call(a, "GET", "/api/rooms/c")
            if st == 200 and r["count"] == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert sorted(m["nick"] for m in r["members"]) == ["ann", "bob"] and r["seq"] == 4, r
        await close_all(ws, wa)
    run(go())


def test_cluster_post_waits_times_out_and_survives_a_gone_client(start_server, redis_server, key_file):
    """Redis stopped: a post waits; its client leaving meanwhile or the wait
    running out (504, --api-timeout) leaves the server sound, and a later
    post is answered normally."""
    a, = cluster(start_server, redis_server, key_file, 1, "--api-timeout", "1")
    body = json.dumps({"text": "late"}).encode()
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        s = a.connect()
        s.sendall(post_head("/api/rooms/z/messages", len(body)) + body)
        time.sleep(0.2)
        s.close()   # gone while waiting
        start = time.monotonic()
        st, _, r = call(a, "POST", "/api/rooms/z/messages", body={"text": "slow"})
        assert st == 504 and r["error"]["code"] == "timeout" and 0.8 < time.monotonic() - start < 3, r
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while True:
        st, _, r = call(a, "POST", "/api/rooms/z/messages", body={"text": "after"})
        if st == 200 or time.monotonic() > deadline:
            break
        assert st == 503, r
        time.sleep(0.2)
    assert st == 200 and r["seq"] >= 1, r
    assert a.alive()


def test_cluster_reads_a_room_this_node_does_not_follow(start_server, redis_server, key_file):
    """Node A has no member in the room: its reads come from the cluster (the
    roster and the stream in Redis), as node B's do."""
    a, b = cluster(start_server, redis_server, key_file, 2)

    from test_cluster import messages, welcome_of

    async def go():
        ws, welcome = await welcome_of(b, "far", "bob")
        wz, _ = await welcome_of(b, "far", "zed")
        for t in ("one", "two", "three"):
            await ws.send(t)
        assert [t for _, t in await messages(ws, 3)] == ["one", "two", "three"]
        st, _, r = call(a, "GET", "/api/rooms/far")
        assert st == 200, r
        assert sorted((m["nick"], m["user"]) for m in r["members"]) == [("bob", None), ("zed", None)], r
        assert r["count"] == 2 and r["seq"] == 3 and r["epoch"] == welcome["epoch"], r
        st, _, r = call(a, "GET", "/api/rooms/far/messages?since=1&limit=1")
        assert st == 200 and [(m["seq"], m["text"], m["nick"]) for m in r["messages"]] == [(2, "two", "bob")], r
        assert r["more"] is True and r["gap"] is False and r["seq"] == 3, r
        st, _, r2 = call(b, "GET", "/api/rooms/far/messages?since=1&limit=1")
        assert r2["messages"] == r["messages"], (r, r2)      # the same events as the node that follows it
        st, _, r = call(a, "GET", "/api/rooms/nowhere")
        assert st == 404 and r["error"]["code"] == "room_not_found", r
        await close_all(ws, wz)
    run(go())


def room_pages(srv, query, limit):
    """Every page of GET /api/rooms?QUERY&limit=LIMIT, following next (at most 20 pages)."""
    pages, cursor = [], None
    while len(pages) < 20:
        st, _, r = call(srv, "GET", "/api/rooms?%slimit=%d%s" % (query, limit, "&cursor=" + cursor if cursor else ""))
        assert st == 200, r
        pages.append(r)
        cursor = r["next"]
        if cursor is None:
            return pages
    raise AssertionError("no last page in 20: %r" % pages)


async def until_listed(srv, room, want, timeout=T):
    """GET /api/rooms?prefix=ROOM until its entry for room is want (None: not listed), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        st, _, r = call(srv, "GET", "/api/rooms?prefix=" + room)
        got = next((x for x in r["rooms"] if x["room"] == room), None) if st == 200 else "status %d" % st
        if got == want or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)


def test_cluster_lists_the_rooms_of_every_node(start_server, redis_server, key_file):
    """Every member is on node A; node B, with none, lists the cluster's
    rooms: counts, seq and epoch as Redis has them, by prefix, in pages."""
    a, b = cluster(start_server, redis_server, key_file, 2)

    from test_cluster import messages, welcome_of

    async def go():
        w1, e1 = await welcome_of(a, "a1", "ann")
        w2, _ = await welcome_of(a, "a1", "bob")
        w3, e2 = await welcome_of(a, "a2", "cat")
        w4, e3 = await welcome_of(a, "b1", "dan")
        for t in ("one", "two"):
            await w1.send(t)
        await w4.send("three")
        assert await messages(w1, 2) == [(1, "one"), (2, "two")]
        assert await messages(w4, 1) == [(1, "three")]
        want = [{"room": "a1", "count": 2, "seq": 2, "epoch": e1["epoch"]},
                {"room": "a2", "count": 1, "seq": 0, "epoch": e2["epoch"]},
                {"room": "b1", "count": 1, "seq": 1, "epoch": e3["epoch"]}]
        st, _, r = call(b, "GET", "/api/rooms")
        assert st == 200 and r == {"rooms": want, "next": None}, r
        assert call(a, "GET", "/api/rooms")[2] == r                     # the node with the members agrees
        st, _, r = call(b, "GET", "/api/rooms?prefix=a")
        assert st == 200 and r == {"rooms": want[:2], "next": None}, r
        assert room_pages(b, "", 1) == [{"rooms": [want[0]], "next": "a1"}, {"rooms": [want[1]], "next": "a2"},
                                        {"rooms": [want[2]], "next": None}]
        assert room_pages(b, "prefix=a&", 1) == [{"rooms": [want[0]], "next": "a1"}, {"rooms": [want[1]], "next": None}]
        st, _, r = call(b, "GET", "/api/rooms?cursor=a2&limit=2")
        assert st == 200 and r == {"rooms": [want[2]], "next": None}, r
        st, _, r = call(b, "GET", "/api/rooms?prefix=b&cursor=a1")    # a cursor before the prefix: from the prefix
        assert st == 200 and r == {"rooms": [want[2]], "next": None}, r
        st, _, r = call(b, "GET", "/api/rooms?prefix=a&cursor=b")     # and after it: nothing
        assert st == 200 and r == {"rooms": [], "next": None}, r
        st, h, body = call(b, "HEAD", "/api/rooms")
        assert st == 200 and body is None and int(h["content-length"]) > 0
        for q in ("limit=0", "prefix=a%20b", "cursor=%00", "limit=99999"):
            expect_error(call(b, "GET", "/api/rooms?" + q), 400, "invalid_query")
        await close_all(w1, w2, w3, w4)
    run(go())


def test_cluster_list_prefix_takes_every_room_name_character(start_server, redis_server, key_file):
    """Names of A-Z a-z 0-9 _ - . order as bytes, as on one node; a prefix
    or cursor with any of them bounds the list exactly."""
    a, b = cluster(start_server, redis_server, key_file, 2)
    names = ["X1", "x", "x-1", "x.1", "x1", "x_1", "y"]     # byte order: '-' < '.' < '1' < 'X' < '_' < 'x'

    from test_cluster import welcome_of

    async def go():
        wss = [(await welcome_of(a, n, "m"))[0] for n in names]

        def listed(query):
            st, _, r = call(b, "GET", "/api/rooms?" + query)
            assert st == 200 and r["next"] is None, r
            return [x["room"] for x in r["rooms"]]
        assert listed("") == names
        assert listed("prefix=x") == ["x", "x-1", "x.1", "x1", "x_1"]
        assert listed("prefix=x.") == ["x.1"]
        assert listed("prefix=x_") == ["x_1"]
        assert listed("prefix=x-") == ["x-1"]
        assert listed("prefix=X") == ["X1"]
        assert listed("prefix=x&cursor=x-1") == ["x.1", "x1", "x_1"]
        assert listed("cursor=x_1") == ["y"]
        await close_all(*wss)
    run(go())


def test_cluster_list_keeps_a_room_with_history_until_it_expires(start_server, redis_server, key_file):
    """A room whose last member left is listed while its history lives in
    Redis (--history-ttl); one that never had a message is gone with its
    last member, and so is the other once its history expired."""
    a, b = cluster(start_server, redis_server, key_file, 2, "--history-ttl", "2")

    from test_cluster import messages, welcome_of

    async def go():
        wh, eh = await welcome_of(a, "kept", "ann")
        we, _ = await welcome_of(a, "quiet", "bob")
        await wh.send("remember me")
        assert await messages(wh, 1) == [(1, "remember me")]
        await close_all(wh, we)
        left = time.monotonic()
        assert await until_listed(b, "quiet", None) is None
        assert await until_listed(b, "kept", {"room": "kept", "count": 0, "seq": 1, "epoch": eh["epoch"]}) == \
            {"room": "kept", "count": 0, "seq": 1, "epoch": eh["epoch"]}
        assert time.monotonic() - left < 1.5, "too slow to see the room before its history expired"
        assert await until_listed(b, "kept", None, timeout=10) is None
        assert time.monotonic() - left > 1.0
        st, _, r = call(b, "GET", "/api/rooms")
        assert st == 200 and r == {"rooms": [], "next": None}, r
    run(go())


def test_cluster_reads_a_room_whose_history_expired_while_members_stayed(start_server, redis_server, key_file):
    """--history-ttl 1 and no message: the room's epoch expires while its
    member stays; a node without members there still finds the room (its
    member, seq 0, no epoch), as the list does, never 404."""
    a, b = cluster(start_server, redis_server, key_file, 2, "--history-ttl", "1")

    from test_cluster import welcome_of

    async def go():
        ws, _ = await welcome_of(b, "still", "bob")
        await asyncio.sleep(1.6)
        st, _, r = call(a, "GET", "/api/rooms/still")
        assert st == 200, r
        assert r == {"room": "still", "count": 1, "seq": 0, "epoch": "",
                     "members": [{"nick": "bob", "user": None}]}, r
        st, _, r = call(a, "GET", "/api/rooms")
        assert st == 200 and r == {"rooms": [{"room": "still", "count": 1, "seq": 0, "epoch": ""}], "next": None}, r
        await close_all(ws)
    run(go())


def test_cluster_list_removes_gone_rooms_a_bounded_number_at_a_time(start_server, redis_server, key_file):
    """Registry entries of rooms that are gone (no members, no seq: their
    history expired) are removed as a list passes them, at most 256 a
    request: that page may be empty, with a next to go on from."""
    a, = cluster(start_server, redis_server, key_file, 1)

    from test_cluster import welcome_of

    def redis_cli(*args):
        p = subprocess.run(["redis-cli", "-p", str(redis_server.port)] + list(args), capture_output=True, text=True,
                           timeout=T)
        assert p.returncode == 0, p
        return p.stdout.split()

    async def go():
        ws, e = await welcome_of(a, "live", "ann")
        assert redis_cli("ZADD", "wshub:rooms", *[x for i in range(300) for x in ("0", "gone%03d" % i)]) == ["300"]
        live = {"room": "live", "count": 1, "seq": 0, "epoch": e["epoch"]}
        assert room_pages(a, "", 100) == [{"rooms": [], "next": "gone255"}, {"rooms": [live], "next": None}]
        assert redis_cli("ZRANGE", "wshub:rooms", "0", "-1") == ["live"]
        await close_all(ws)
    run(go())


def test_workers_list_the_same_rooms_whichever_answers(start_server, redis_server, key_file):
    """--workers 2: each request on a new connection, so both workers
    answer; every answer is the whole list."""
    from test_workers import per_worker, stats, wait_until, workers_server
    srv = workers_server(start_server, redis_server, 2, "--api-key-file", key_file)

    from test_cluster import welcome_of

    async def go():
        wss, want = [], []
        for i, room in enumerate(("w1", "w2", "w3")):
            ws, e = await welcome_of(srv, room, "m%d" % i)
            wss.append(ws)
            want.append({"room": room, "count": 1, "seq": 0, "epoch": e["epoch"]})
        before = per_worker(stats(srv), "api_requests")
        answers = [call(srv, "GET", "/api/rooms") for _ in range(24)]
        after = wait_until(lambda: (lambda n: sum(n) - sum(before) == 24 and n)(per_worker(stats(srv), "api_requests")),
                           what="24 requests in the workers' figures")
        assert all(x > y for x, y in zip(after, before)), "one worker answered every request: %r" % (after,)
        assert [(st, r) for st, _, r in answers] == [(200, {"rooms": want, "next": None})] * 24, answers
        await close_all(*wss)
    run(go())


def test_cluster_list_without_redis_is_503_or_504(start_server, redis_server, key_file):
    """Redis not answering: the list waits up to --api-timeout (504); Redis
    gone: 503 with Retry-After."""
    a, = cluster(start_server, redis_server, key_file, 1, "--api-timeout", "1")
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        st, _, r = call(a, "GET", "/api/rooms")
        assert st == 504 and r["error"]["code"] == "timeout" and 0.8 < time.monotonic() - start < 3, r
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while call(a, "GET", "/api/rooms")[0] != 200:
        assert time.monotonic() < deadline, "no 200 once Redis answers again"
        time.sleep(0.1)
    redis_server.kill()
    hdrs = expect_error(call(a, "GET", "/api/rooms"), 503, "unavailable")
    assert hdrs["retry-after"] == "1", hdrs
    assert a.alive()
