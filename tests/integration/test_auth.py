"""Connection tokens, private rooms, expiry and moderation of the real
build/wshub (README "Sign-in with tokens"). Tokens are minted here: HS256 with
Python's hmac, RS256 and ES256 with the openssl command; `build/wshub token`
is checked to make tokens this server accepts. This file owns: the options'
cross-checks, each way of passing a token, every 401 reason with its
WWW-Authenticate, 403 for rooms, private rooms with and without
--allow-anonymous, user ids in every event, nicks guests cannot take, expiry
(4001) and /token refresh, /kick (4003), the check a page makes with a plain
GET, and that no token ever reaches the log."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import BINARY
from test_chat import expect_event, expect_silence, recv_event, run

websockets = pytest.importorskip("websockets")

T = 5.0          # bound on every single wait
SECRET = b"test-secret-for-wshub-auth"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims, secret=SECRET, header=None):
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def claims(sub="u1", **more):
    c = {"sub": sub, "exp": int(time.time()) + 600}
    c.update(more)
    return {k: v for k, v in c.items() if v is not None}


def der_to_raw(der):
    """An ECDSA signature in DER (SEQUENCE of two INTEGERs) as r || s, 32 bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\x00").rjust(32, b"\x00")
        i += 2 + n
    return out


def openssl_token(keyfile, alg, claims_):
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims_).encode())
    signed = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile], input=(head + "." + body).encode(),
                            capture_output=True, check=True, timeout=10).stdout
    sig = der_to_raw(signed) if alg == "ES256" else signed
    return head + "." + body + "." + b64url(sig)


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "secret"
    p.write_bytes(SECRET + b"\n")
    return str(p)


@pytest.fixture
def auth_server(start_server, secret_file):
    """Factory: a server checking HS256 tokens, leeway 0, with more options."""
    def start(*args):
        return start_server("--auth-secret-file", secret_file, "--auth-leeway", "0", "--log-level", "debug", *args)
    return start


# ---------------------------------------------------------------- raw HTTP

def raw_request(server, path, headers=(), upgrade=True):
    """Sends one GET (an upgrade unless upgrade is False); returns (status,
    headers dict with lower-case names, body) of the answer."""
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % server.port]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                  "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode()]
    else:
        lines += ["Connection: close"]
    lines += list(headers)
    s = server.connect()
    try:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        deadline = time.monotonic() + T
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for h in header_lines:
            k, _, v = h.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        status = int(status_line.split()[1])
        if status != 101:
            want = int(hdrs.get("content-length", "0"))
            while len(body) < want and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        return status, hdrs, body.decode("utf-8", "replace").strip()
    finally:
        s.close()


# ---------------------------------------------------------------- websocket helpers

async def connect(server, path, token=None, how="header"):
    kw = {}
    if token and how == "header":
        kw["extra_headers"] = {"Authorization": "Bearer " + token}
    elif token and how == "protocol":
        kw["subprotocols"] = ["wshub", "bearer." + token]
    elif token and how == "query":
        path += ("&" if "?" in path else "?") + "token=" + token
    return await asyncio.wait_for(websockets.connect(server.url(path), max_size=None, **kw), T)


async def join(server, room, token=None, how="header", nick=None):
    """Connects, reads welcome and its own join; returns (ws, welcome)."""
    path = "/ws/" + room + ("?nick=" + nick if nick else "")
    ws = await connect(server, path, token, how)
    welcome = await expect_event(ws, "welcome", room=room)
    await expect_event(ws, "join", nick=welcome["nick"])
    return ws, welcome


async def expect_closed(ws, code, timeout=T):
    """Reads until the server's close; asserts its code. Returns the reason."""
    deadline = time.monotonic() + timeout
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), max(0.05, deadline - time.monotonic()))
        pytest.fail("not closed within %.1f s" % timeout)
    assert ws.close_code == code, (ws.close_code, ws.close_reason)
    return ws.close_reason


# ---------------------------------------------------------------- options

def wshub(*args):
    return subprocess.run([BINARY] + list(args), capture_output=True, text=True, timeout=10)


def test_option_cross_checks_and_bad_keys(tmp_path, secret_file):
    pem = tmp_path / "pub.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    cases = [
        (["--auth-secret-file", secret_file, "--auth-public-key", str(pem)], ["--auth-secret-file", "--auth-public-key"]),
        (["--private-room", "staff*"], ["--private-room", "--auth-secret-file"]),
        (["--allow-anonymous"], ["--allow-anonymous", "--auth-"]),
        (["--auth-issuer", "x"], ["--auth-issuer"]),
        (["--auth-secret-file", str(tmp_path / "missing")], ["--auth-secret-file", "missing"]),
        (["--auth-secret-file", str(empty)], ["--auth-secret-file", "empty"]),
        (["--auth-public-key", str(pem)], ["--auth-public-key", "pub.pem"]),
        (["--auth-secret-file", secret_file, "--private-room", "bad room"], ["--private-room", "bad room"]),
        (["--auth-secret-file", secret_file, "--private-room", "a*b"], ["--private-room"]),
    ]
    for args, words in cases:
        r = wshub("--port", "1", *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        for w in words:
            assert w in r.stderr, (args, w, r.stderr)
    conf = tmp_path / "off.conf"
    conf.write_text("allow-anonymous = false\n")
    r = wshub("--config", str(conf), "--idle-timeout", "5", "--ping-interval", "10")   # a later cross-check
    assert r.returncode == 2 and "--idle-timeout" in r.stderr and "anonymous" not in r.stderr, r.stderr
    r = wshub("--help")
    for opt in ("--auth-secret-file", "--auth-public-key", "--auth-issuer", "--auth-audience", "--auth-leeway",
                "--allow-anonymous", "--private-room"):
        assert opt in r.stdout, opt


def test_config_file_keys(start_server, tmp_path, secret_file):
    conf = tmp_path / "wshub.conf"
    conf.write_text("auth-secret-file = %s\nallow-anonymous = true\nprivate-room = staff*\nauth-leeway = 0\n"
                    % secret_file)
    srv = start_server("--config", str(conf))
    assert raw_request(srv, "/ws/lobby")[0] == 101
    assert raw_request(srv, "/ws/staff-1")[0] == 403
    assert raw_request(srv, "/ws/staff-1", ["Authorization: Bearer " + hs256(claims())])[0] == 101


# ---------------------------------------------------------------- where the token comes from

@pytest.mark.parametrize("how", ["header", "protocol", "query"])
def test_each_way_of_passing_a_token(auth_server, how):
    srv = auth_server()
    tok = hs256(claims("alice-id", name="alice"))

    async def go():
        ws, welcome = await join(srv, "room1", tok, how)
        assert welcome["nick"] == "alice" and welcome["user"] == "alice-id", welcome
        if how == "protocol":
            assert ws.subprotocol == "wshub"
        await ws.close()
    run(go())


def test_subprotocol_selected_never_the_token(auth_server):
    srv = auth_server()
    tok = hs256(claims())
    status, hdrs, _ = raw_request(srv, "/ws/r", ["Sec-WebSocket-Protocol: wshub, bearer." + tok])
    assert status == 101 and hdrs.get("sec-websocket-protocol") == "wshub", hdrs
    # bearer.TOKEN alone (no wshub offered): let in, nothing selected, the token never echoed
    status, hdrs, _ = raw_request(srv, "/ws/r", ["Sec-WebSocket-Protocol: bearer." + tok])
    assert status == 101 and "sec-websocket-protocol" not in hdrs, hdrs
    # the header wins over the query when both are given
    status, _, body = raw_request(srv, "/ws/r?token=garbage", ["Authorization: Bearer " + tok])
    assert status == 101, body


# ---------------------------------------------------------------- 401 and 403

def test_every_401_reason(start_server, secret_file):
    srv = start_server("--auth-secret-file", secret_file, "--auth-leeway", "0", "--auth-issuer", "https://app",
                       "--auth-audience", "chat")
    now = int(time.time())
    good = dict(iss="https://app", aud="chat")
    cases = [
        (None, "missing token", None),
        ("not-a-jwt", "malformed token", "invalid_token"),
        (hs256(claims(**good), secret=b"another secret"), "bad token signature", "invalid_token"),
        (hs256(claims(exp=now - 5, **good)), "token expired", "invalid_token"),
        (hs256(claims(nbf=now + 300, **good)), "token not yet valid", "invalid_token"),
        (hs256(claims(iss="https://evil", aud="chat")), "wrong token issuer", "invalid_token"),
        (hs256(claims(iss="https://app", aud="other")), "wrong token audience", "invalid_token"),
        (hs256(claims(**good), header={"alg": "none", "typ": "JWT"}), "another algorithm", "invalid_token"),
    ]
    for tok, reason, error in cases:
        status, hdrs, body = raw_request(srv, "/ws/r", ["Authorization: Bearer " + tok] if tok else [])
        assert status == 401, (reason, status, body)
        assert reason in body, (reason, body)
        auth = hdrs.get("www-authenticate", "")
        assert auth.startswith("Bearer realm="), auth
        if error:
            assert 'error="%s"' % error in auth and "error_description=" in auth, auth
        else:
            assert "error=" not in auth, auth
    status, hdrs, body = raw_request(srv, "/ws/r", ["Authorization: Basic dXNlcjpwYXNz"])
    assert status == 401 and "Bearer" in body and 'error="invalid_request"' in hdrs["www-authenticate"], body
    assert raw_request(srv, "/ws/r", ["Authorization: Bearer " + hs256(claims(**good))])[0] == 101


def test_rs256_and_es256_keys(start_server, tmp_path):
    for alg, genargs in (("RS256", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                         ("ES256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        key, pub = str(tmp_path / (alg + ".key")), str(tmp_path / (alg + ".pub"))
        subprocess.run(["openssl", "genpkey"] + genargs + ["-out", key], check=True, capture_output=True, timeout=60)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True,
                       timeout=10)
        srv = start_server("--auth-public-key", pub)
        assert "auth on alg=" + alg in srv.log(), srv.log()
        tok = openssl_token(key, alg, claims("k-" + alg))
        assert raw_request(srv, "/ws/r", ["Authorization: Bearer " + tok])[0] == 101, alg
        # the public key used as an HS256 secret is refused (algorithm pinned by the key)
        confused = hs256(claims(), secret=open(pub, "rb").read())
        status, _, body = raw_request(srv, "/ws/r", ["Authorization: Bearer " + confused])
        assert status == 401 and "algorithm" in body, body
        srv.stop()


def test_403_for_a_room_the_token_does_not_allow(auth_server):
    srv = auth_server()
    tok = hs256(claims(rooms=["lobby", "team-*"]))
    for room in ("lobby", "team-a", "team-"):
        assert raw_request(srv, "/ws/" + room, ["Authorization: Bearer " + tok])[0] == 101, room
    for room in ("lobby2", "team", "other"):
        status, hdrs, body = raw_request(srv, "/ws/" + room, ["Authorization: Bearer " + tok])
        assert status == 403 and "does not allow this room" in body, (room, status, body)
        assert 'error="insufficient_scope"' in hdrs.get("www-authenticate", ""), hdrs


def test_private_rooms_with_and_without_anonymous(auth_server):
    srv = auth_server("--allow-anonymous", "--private-room", "staff*", "--private-room", "board")
    tok = hs256(claims())
    for room in ("lobby", "staff", "boards"):
        assert raw_request(srv, "/ws/" + room)[0] == (403 if room == "staff" else 101), room
    for room in ("staff", "staff-1", "board"):
        status, _, body = raw_request(srv, "/ws/" + room)
        assert status == 403 and "private" in body, (room, body)
        assert raw_request(srv, "/ws/" + room, ["Authorization: Bearer " + tok])[0] == 101, room
    # a bad token is refused even where guests may go: credentials given are checked
    assert raw_request(srv, "/ws/lobby", ["Authorization: Bearer x.y.z"])[0] == 401

    closed = auth_server("--private-room", "staff*")
    for room in ("lobby", "staff-1"):
        status, _, body = raw_request(closed, "/ws/" + room)
        assert status == 401 and "missing token" in body, (room, body)


def test_plain_get_says_what_an_upgrade_would_get(auth_server):
    srv = auth_server("--allow-anonymous", "--private-room", "staff*")
    tok = hs256(claims(rooms=["staff-1"]))
    expired = hs256(claims(exp=int(time.time()) - 10))
    cases = [("/ws/lobby", None, 200, "ok"), ("/ws/staff-1", None, 403, "private"),
             ("/ws/staff-1", tok, 200, "ok"), ("/ws/staff-2", tok, 403, "does not allow"),
             ("/ws/staff-1", expired, 401, "token expired"), ("/ws/bad%20room", None, 400, "invalid room")]
    for path, t, want, words in cases:
        status, hdrs, body = raw_request(srv, path, ["Authorization: Bearer " + t] if t else [], upgrade=False)
        assert status == want and words in body, (path, status, body)
        assert hdrs.get("cache-control") == "no-store", hdrs
    run(expect_no_members(srv, "staff-1"))


async def expect_no_members(srv, room):
    ws, welcome = await join(srv, room, hs256(claims("viewer", rooms=[room])))
    assert welcome["members"] == [welcome["nick"]], welcome     # the checks joined nobody
    await ws.close()


def test_wshub_token_command_makes_accepted_tokens(auth_server, secret_file):
    srv = auth_server()
    r = subprocess.run([BINARY, "token", "--secret-file", secret_file, "--sub", "cli-user", "--name", "cli",
                        "--rooms", "x*"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()

    async def go():
        ws, welcome = await join(srv, "xy", tok)
        assert welcome["nick"] == "cli" and welcome["user"] == "cli-user", welcome
        await ws.close()
    run(go())
    assert raw_request(srv, "/ws/y", ["Authorization: Bearer " + tok])[0] == 403


# ---------------------------------------------------------------- identity in events

def test_user_ids_in_every_event(auth_server):
    srv = auth_server("--allow-anonymous")

    async def go():
        a, wa = await join(srv, "ev", hs256(claims("id-a", name="ann")))
        assert wa["user"] == "id-a" and wa["users"] == {"ann": "id-a"}, wa
        g, wg = await join(srv, "ev", nick="guesty")
        assert wg["nick"] == "~guesty" and "user" not in wg and wg["users"] == {"ann": "id-a"}, wg
        await expect_event(a, "join", nick="~guesty", count=2)
        b, wb = await join(srv, "ev", hs256(claims("id-b", name="bo")), how="protocol")
        for ws in (a, g):
            await expect_event(ws, "join", nick="bo", user="id-b", count=3)
        await b.send("hello")
        for ws in (a, g, b):
            await expect_event(ws, "message", nick="bo", user="id-b", text="hello")
        await g.send("from a guest")
        for ws in (a, g, b):
            m = await expect_event(ws, "message", nick="~guesty", text="from a guest")
            assert "user" not in m, m
        await a.send("/who")
        w = await expect_event(a, "members", count=3)
        assert w["users"] == {"ann": "id-a", "bo": "id-b"}, w
        await g.send("/nick gus")
        for ws in (a, g, b):
            n = await expect_event(ws, "nick", old="~guesty", nick="~gus")
            assert "user" not in n, n
        await b.close()
        for ws in (a, g):
            await expect_event(ws, "leave", nick="bo", user="id-b", count=2)
        await g.close()
        lv = await expect_event(a, "leave", nick="~gus", count=1)
        assert "user" not in lv, lv
        await a.close()
    run(go())


def test_guest_cannot_take_an_authenticated_nick(auth_server):
    srv = auth_server("--allow-anonymous")

    async def go():
        alice, _ = await join(srv, "nk", hs256(claims("id-alice", name="alice")))
        g, wg = await join(srv, "nk", nick="alice")
        assert wg["nick"] == "~alice", wg             # a guest's nick is marked: never a signed-in one
        await expect_event(alice, "join", nick="~alice")
        await g.send("/nick alice")                    # still marked
        await g.send("/nick bob")
        for ws in (alice, g):
            await expect_event(ws, "nick", old="~alice", nick="~bob")
        # a guest already there keeps its marked nick; the owner of the name comes in under it
        bob, wb = await join(srv, "nk", hs256(claims("id-bob", name="bob")))
        assert wb["nick"] == "bob" and wb["user"] == "id-bob", wb
        assert sorted(wb["members"]) == ["alice", "bob", "~bob"] and "~bob" not in wb["users"], wb
        for ws in (alice, g):
            await expect_event(ws, "join", nick="bob", user="id-bob")
        # an authenticated member keeps the token's nick: no /nick
        await bob.send("/nick robert")
        await expect_event(bob, "error", code="forbidden")
        # a guest without ?nick= is marked too, and a token cannot claim the mark
        n, wn = await join(srv, "nk")
        assert wn["nick"].startswith("~guest"), wn
        t, wt = await join(srv, "nk", hs256(claims("~tilde-id", name="~bob")))
        assert wt["nick"] == "tilde-id", wt
        for ws in (alice, g, bob, n, t):
            await ws.close()
    run(go())


def test_name_falls_back_to_sub_and_query_nick_is_ignored(auth_server):
    srv = auth_server()

    async def go():
        ws, w = await join(srv, "nm", hs256(claims("sub-only")), nick="other")
        assert w["nick"] == "sub-only", w
        ws2, w2 = await join(srv, "nm", hs256(claims("x" * 40, name="has space")))
        assert w2["nick"] == "x" * 32 and w2["user"] == "x" * 40, w2
        await ws.close()
        await ws2.close()
    run(go())


# ---------------------------------------------------------------- expiry and refresh

def test_expiry_closes_4001(auth_server):
    srv = auth_server()

    async def go():
        ws, _ = await join(srv, "exp", hs256(claims(exp=int(time.time()) + 3)))
        t0 = time.monotonic()
        reason = await expect_closed(ws, 4001, timeout=7)
        assert "expired" in reason and time.monotonic() - t0 < 6, reason
    run(go())


def test_token_refresh_prevents_expiry(auth_server):
    srv = auth_server()

    async def go():
        ws, _ = await join(srv, "ref", hs256(claims("r1", exp=int(time.time()) + 3)))
        later = int(time.time()) + 600
        await ws.send("/token " + hs256(claims("r1", exp=later)))
        await expect_event(ws, "token", user="r1", exp=later)
        await ws.send("/token " + hs256(claims("someone-else")))
        await expect_event(ws, "error", code="forbidden")
        await ws.send("/token " + hs256(claims("r1"), secret=b"wrong"))
        ev = await expect_event(ws, "error", code="bad_token")
        assert "signature" in ev["text"], ev
        await ws.send("/token " + hs256(claims("r1", rooms=["elsewhere"])))
        await expect_event(ws, "error", code="forbidden")
        await expect_silence(ws, 4.5)             # past the first token's exp: still open
        await ws.send("still here")
        await expect_event(ws, "message", text="still here", user="r1")
        # a refresh to a token that expires soon re-arms the timer
        await ws.send("/token " + hs256(claims("r1", exp=int(time.time()) + 1)))
        await expect_event(ws, "token", user="r1")
        await expect_closed(ws, 4001, timeout=5)
    run(go())


def test_guest_token_command_refused(auth_server):
    srv = auth_server("--allow-anonymous")

    async def go():
        ws, _ = await join(srv, "gt")
        await ws.send("/token " + hs256(claims()))
        await expect_event(ws, "error", code="forbidden")
        await ws.close()
    run(go())


# ---------------------------------------------------------------- moderation

def test_kick_by_a_moderator_and_by_others(auth_server):
    srv = auth_server("--allow-anonymous")

    async def go():
        mod, wm = await join(srv, "mod", hs256(claims("m1", name="boss", mod=True)))
        assert wm.get("mod") is True, wm
        u, _ = await join(srv, "mod", hs256(claims("u1", name="user1")))
        await expect_event(mod, "join", nick="user1")
        g, _ = await join(srv, "mod", nick="troll")
        for ws in (mod, u):
            await expect_event(ws, "join", nick="~troll")
        await u.send("/kick ~troll")
        await expect_event(u, "error", code="forbidden")
        await g.send("/kick user1")
        await expect_event(g, "error", code="forbidden")
        await mod.send("/kick nobody")
        await expect_event(mod, "error", code="no_such_nick")
        await mod.send("/kick ~troll spamming links")
        for ws in (mod, u):
            await expect_event(ws, "leave", nick="~troll", count=2, kicked=True, kicked_by="boss",
                                    kicked_by_user="m1", reason="spamming links")
        reason = await expect_closed(g, 4003)
        assert "spamming links" in reason and "boss" in reason, reason
        await expect_silence(mod)                 # one leave only
        await mod.send("/kick user1")
        await expect_event(mod, "leave", nick="user1", user="u1", kicked=True, reason="")
        await expect_closed(u, 4003)
        await mod.close()
    run(go())


# ---------------------------------------------------------------- the log

def test_no_token_in_the_log(auth_server, tmp_path):
    srv = auth_server("--allow-anonymous", "--private-room", "p*")
    good = hs256(claims("logged", name="logged", exp=int(time.time()) + 1))
    bad = hs256(claims("logged"), secret=b"nope")
    for tok in (good, bad):
        for headers, path in ((["Authorization: Bearer " + tok], "/ws/p1"),
                              (["Sec-WebSocket-Protocol: wshub, bearer." + tok], "/ws/p1"),
                              ([], "/ws/p1?token=" + tok), ([], "/ws/bad%20room?token=" + tok)):
            raw_request(srv, path, headers)
            raw_request(srv, path, headers, upgrade=False)

    async def go():
        ws, _ = await join(srv, "p2", good)
        await ws.send("/token " + bad)
        await expect_event(ws, "error", code="bad_token")
        await expect_closed(ws, 4001, timeout=5)
    run(go())
    srv.stop()
    log = srv.log()
    assert "conn close" in log, "the debug log is not on: " + log[-500:]
    for tok in (good, bad):
        for part in [tok] + tok.split("."):
            assert part not in log, "a token (or part of one) is in the log"


# ---------------------------------------------------------------- cluster

def test_signed_in_members_across_two_nodes(start_server, secret_file, redis_server):
    """With --redis: tokens are checked on each node, a member's messages carry
    its user id to the other node, and a guest's nick stays marked there."""
    a, b = [start_server("--redis", redis_server.url(), "--node-id", "n%d" % i, "--auth-secret-file", secret_file,
                         "--allow-anonymous") for i in range(2)]

    async def welcome(srv, path, token=None):
        ws = await connect(srv, path, token)      # the first event is the welcome
        while True:
            ev = await recv_event(ws)
            if ev["type"] == "welcome":
                return ws, ev

    async def go():
        ann, _ = await welcome(a, "/ws/cl", hs256(claims("id-ann", name="ann")))
        g, wg = await welcome(b, "/ws/cl?nick=ann")
        assert wg["nick"] == "~ann" and sorted(wg["members"]) == ["ann", "~ann"], wg
        assert wg["users"] == {"ann": "id-ann"}, wg     # the user of a member on the other node
        ev = await recv_event(ann)
        while ev["type"] == "join" and ev["nick"] == "ann":
            ev = await recv_event(ann)
        assert ev["type"] == "join" and ev["nick"] == "~ann", ev
        await ann.send("hello across")
        for ws in (ann, g):
            ev = await recv_event(ws)
            while ev["type"] == "join":          # joins may come in either order around a welcome
                ev = await recv_event(ws)
            assert ev["type"] == "message" and ev["user"] == "id-ann" and ev["text"] == "hello across", ev
        assert raw_request(b, "/ws/cl", ["Authorization: Bearer " + hs256(claims(), secret=b"x")])[0] == 401
        await g.close()
        await expect_event(ann, "leave", nick="~ann")
        await ann.close()
    run(go())


def test_kick_and_disconnect_reach_other_nodes(start_server, secret_file, redis_server, tmp_path):
    """With --redis: a moderator on node A kicks a member on node B (4003, a
    leave marked as a kick on both nodes, the users of members on the other
    node in join and leave), and the API's disconnect of a user on A closes
    that user's connections on B too."""
    key = tmp_path / "api.key"
    key.write_text("k" * 32 + "\n")
    a, b = [start_server("--redis", redis_server.url(), "--node-id", "k%d" % i, "--auth-secret-file", secret_file,
                         "--api-key-file", str(key)) for i in range(2)]

    async def welcome(srv, token):
        ws = await connect(srv, "/ws/kr", token)
        while True:
            ev = await recv_event(ws)
            if ev["type"] == "welcome":
                return ws, ev

    async def until(ws, type_, **fields):
        while True:
            ev = await recv_event(ws)
            if ev["type"] == type_ and all(ev.get(k) == v for k, v in fields.items()):
                return ev

    async def go():
        mod, _ = await welcome(a, hs256(claims("id-mod", name="mod", mod=True)))
        bad, _ = await welcome(b, hs256(claims("id-bad", name="bad")))
        ev = await until(mod, "join", nick="bad")
        assert ev["user"] == "id-bad", ev                  # a member of the other node, with its user
        await mod.send("/kick bad spam")
        with pytest.raises(Exception) as closed:
            while True:
                await recv_event(bad)
        assert getattr(closed.value, "code", None) == 4003, closed.value
        assert "spam" in getattr(closed.value, "reason", ""), closed.value
        ev = await until(mod, "leave", nick="bad")
        assert ev["kicked"] is True and ev["kicked_by"] == "mod" and ev["kicked_by_user"] == "id-mod", ev
        assert ev["user"] == "id-bad" and ev["reason"] == "spam", ev
        # the API on node A closes every connection of a user, on node B too
        v1, _ = await welcome(b, hs256(claims("id-v", name="v")))
        await until(mod, "join", nick="v")
        body = json.dumps({"user": "id-v", "reason": "bye"}).encode()
        req = ("POST /api/disconnect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
               % ("k" * 32, len(body))).encode() + body
        with socket.create_connection((a.host, a.port), timeout=5) as s:
            s.sendall(req)
            answer = s.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 200"), answer
        with pytest.raises(Exception) as closed:
            while True:
                await recv_event(v1)
        assert getattr(closed.value, "code", None) == 4003, closed.value
        ev = await until(mod, "leave", nick="v")
        assert ev["kicked"] is True and ev["reason"] == "bye", ev
        await mod.close()
    run(go())
