"""Cluster through Redis (--redis): several real wshub nodes and a real
redis-server started by the tests. Every member of a room, on any node,
receives the room's messages in one order with `seq` consecutive across the
cluster; history lives in Redis and survives a restart of every node; resume
works across nodes; an unreachable Redis makes /healthz 503 and chat lines get
an `unavailable` error, and once Redis is back (with its AOF) nothing is lost
or repeated; a Redis that lost its data changes the room's epoch and members
get a `resync` event before any message of the new epoch, and one that lost
only its last writes has the room's counter moved forward (its TTL kept)."""
import asyncio
import json
import subprocess
import time
import urllib.request

import pytest

from test_chat import close_all, connect, recv_event, run

T = 5.0


def nodes(start_server, redis, n, *extra):
    """n nodes on one Redis, each once its /healthz says it reaches Redis."""
    srvs = [start_server("--redis", redis.url(), "--node-id", "node%d" % i, *extra) for i in range(n)]
    deadline = time.monotonic() + 10
    for srv in srvs:
        while http_status(srv, "/healthz")[0] != 200:
            assert time.monotonic() < deadline, "a node did not reach Redis: " + srv.log()
            time.sleep(0.02)
    return srvs


async def welcome_of(srv, room, nick, query=""):
    ws = await connect(srv, "/ws/%s?nick=%s%s" % (room, nick, query))
    w = await recv_event(ws)
    assert w["type"] == "welcome", w
    return ws, w


async def messages(ws, want, timeout=10):
    """The next `want` message events (other events skipped), as (seq, text)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        left = deadline - time.monotonic()
        assert left > 0, "only %d of %d messages: %r" % (len(got), want, got)
        e = await recv_event(ws, left)
        if e["type"] == "message":
            got.append((e["seq"], e["text"]))
    return got


async def until_event(ws, type_, timeout=10, **fields):
    """The next event of type_ whose fields match (others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no %s event with %r" % (type_, fields)
        e = await recv_event(ws, left)
        if e["type"] == type_ and all(e.get(k) == v for k, v in fields.items()):
            return e


def http_status(srv, path):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (srv.host, srv.port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stats(srv):
    return json.loads(http_status(srv, "/stats")[1])


def test_one_order_across_three_nodes(start_server, redis_server):
    srvs = nodes(start_server, redis_server, 3)

    async def go():
        clients = []
        for i, srv in enumerate(srvs):
            ws, w = await welcome_of(srv, "c1", "u%d" % i)
            clients.append(ws)
        per = 20

        async def send(i, ws):
            for k in range(per):
                await ws.send("n%d-%d" % (i, k))
                if k % 5 == 0:
                    await asyncio.sleep(0)
        await asyncio.gather(*(send(i, ws) for i, ws in enumerate(clients)))
        seen = [await messages(ws, per * len(clients)) for ws in clients]
        for s in seen:
            assert [q for q, _ in s] == list(range(1, per * len(clients) + 1)), s
            assert s == seen[0], "two members saw different orders"
        for i in range(len(clients)):   # each sender's own lines keep their order
            mine = [t for _, t in seen[0] if t.startswith("n%d-" % i)]
            assert mine == ["n%d-%d" % (i, k) for k in range(per)]
        await close_all(*clients)
    run(go())
    for srv in srvs:
        assert stats(srv)["redis_connected"] == 1


def test_history_across_nodes_and_restarts(start_server, redis_server):
    a, b = nodes(start_server, redis_server, 2)

    async def say():
        ws, w = await welcome_of(a, "c2", "alice")
        for t in ("one", "two", "three"):
            await ws.send(t)
        await messages(ws, 3)
        await close_all(ws)
        return w["epoch"]
    epoch = run(say())

    async def check(srv, nick):
        ws, w = await welcome_of(srv, "c2", nick)
        await close_all(ws)
        return w
    w = run(check(b, "bob"))
    assert [(e["seq"], e["text"]) for e in w["history"]] == [(1, "one"), (2, "two"), (3, "three")], w
    assert w["seq"] == 3 and w["epoch"] == epoch
    a.stop()
    b.stop()
    c, = nodes(start_server, redis_server, 1)
    w = run(check(c, "carol"))
    assert [e["text"] for e in w["history"]] == ["one", "two", "three"] and w["epoch"] == epoch, w


def test_resume_across_nodes(start_server, redis_server):
    a, b = nodes(start_server, redis_server, 2)

    async def go():
        x, wx = await welcome_of(a, "c3", "xavier")
        y, _ = await welcome_of(b, "c3", "yvonne")
        for t in ("m1", "m2", "m3", "m4"):
            await x.send(t)
        got = await messages(y, 4)
        last_seen = got[1][0]                     # yvonne "dropped" after m2
        await close_all(y)
        z, wz = await welcome_of(a, "c3", "yvonne", "&since=%d&epoch=%s" % (last_seen, wx["epoch"]))
        assert wz["resumed"] is True, wz
        assert [e["text"] for e in wz["history"]] == ["m3", "m4"], wz
        await close_all(x, z)
    run(go())


def test_redis_down_then_back_loses_nothing(start_server, redis_server):
    a, b = nodes(start_server, redis_server, 2, "--node-timeout", "2")

    async def go():
        x, _ = await welcome_of(a, "c4", "xavier")
        y, _ = await welcome_of(b, "c4", "yvonne")
        for t in ("before1", "before2"):
            await x.send(t)
        await messages(y, 2)
        await messages(x, 2)
        redis_server.kill()
        deadline = time.monotonic() + 10
        while http_status(a, "/healthz")[0] != 503:
            assert time.monotonic() < deadline, "/healthz stayed 200 with Redis down"
            await asyncio.sleep(0.1)
        status, body = http_status(a, "/healthz")
        assert "Redis" in body, body
        await x.send("during")
        while True:                               # skip the joins and messages before it
            e = await recv_event(x, 10)
            if e["type"] == "error":
                assert e["code"] == "unavailable", e
                break
            assert e["type"] != "message" or e["text"] != "during", "a line was sent with Redis down"
        redis_server.start()
        deadline = time.monotonic() + 15
        while http_status(a, "/healthz")[0] != 200 or http_status(b, "/healthz")[0] != 200:
            assert time.monotonic() < deadline, "/healthz did not come back after Redis did"
            await asyncio.sleep(0.1)
        await x.send("after")
        for ws in (x, y):
            got = await messages(ws, 1)
            assert got == [(3, "after")], got
        # Redis was away longer than --node-timeout: nobody was taken for dead
        await asyncio.sleep(2.5)
        for ws in (x, y):
            await ws.send("/who")
            e = await until_event(ws, "members")
            assert sorted(e["members"]) == ["xavier", "yvonne"], e
        await close_all(x, y)
    run(go(), timeout=60)
    assert stats(a)["redis_reconnects"] >= 1
    assert stats(a)["redis_members_expired"] == 0 and stats(b)["redis_members_expired"] == 0


def test_redis_restarted_empty_changes_the_epoch(start_server, redis_server):
    a, b = nodes(start_server, redis_server, 2)

    async def go():
        x, wx = await welcome_of(a, "c5", "xavier")
        y, _ = await welcome_of(b, "c5", "yvonne")
        await x.send("old")
        await messages(y, 1)
        redis_server.kill()
        redis_server.wipe()
        redis_server.start()
        deadline = time.monotonic() + 15
        while stats(a)["redis_connected"] != 1 or stats(b)["redis_connected"] != 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        resync = None
        while resync is None:
            e = await recv_event(y, 10)
            if e["type"] == "resync":
                resync = e
        assert resync["epoch"] != wx["epoch"] and resync["seq"] == 0, resync
        await x.send("new")
        got = await messages(y, 1)
        assert got == [(1, "new")], got
        # the roster Redis lost is built again by the nodes that hold the members
        z, w = await welcome_of(a, "c5", "zoe")
        assert sorted(w["members"]) == ["xavier", "yvonne", "zoe"] and w["count"] == 3, w
        e = await until_event(y, "join", nick="zoe")
        assert e["count"] == 3, e
        await y.send("/who")
        e = await until_event(y, "members")
        assert sorted(e["members"]) == ["xavier", "yvonne", "zoe"], e
        await close_all(x, y, z)
    run(go(), timeout=60)


def test_bad_redis_url_exits_2(tmp_path):
    import subprocess
    from conftest import BINARY
    for url in ("http://x", "redis://", "redis://host:99999", "unix://relative"):
        r = subprocess.run([BINARY, "--redis", url, "--port", "1"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "--redis" in r.stderr, (url, r.returncode, r.stderr)


def test_history_ttl_expires_an_idle_room(start_server, redis_server):
    a, = nodes(start_server, redis_server, 1, "--history-ttl", "1")

    async def go(say):
        ws, w = await welcome_of(a, "c6", "alice")
        if say:
            await ws.send("soon gone")
            await messages(ws, 1)
        await close_all(ws)
        return w
    first = run(go(True))
    time.sleep(2.5)                               # idle past the TTL: keys expire in Redis
    w = run(go(False))
    assert w["history"] == [] and w["seq"] == 0 and w["epoch"] != first["epoch"], (first, w)


def test_leave_reaches_other_nodes(start_server, redis_server):
    """A node's last member leaving is still announced to the members of the
    room on other nodes."""
    a, b = nodes(start_server, redis_server, 2)

    async def go():
        x, _ = await welcome_of(a, "c7", "xavier")
        y, _ = await welcome_of(b, "c7", "yvonne")
        await close_all(x)
        deadline = time.monotonic() + 10
        while True:
            e = await recv_event(y, max(0.1, deadline - time.monotonic()))
            if e["type"] == "leave":
                assert e["nick"] == "xavier", e
                break
        await close_all(y)
    run(go())


def test_presence_spans_nodes(start_server, redis_server):
    """welcome, count, /who, join and leave describe the whole cluster."""
    a, b, c = nodes(start_server, redis_server, 3)

    async def go():
        wa, w = await welcome_of(a, "p1", "alice")
        assert w["members"] == ["alice"] and w["count"] == 1, w
        wb, w = await welcome_of(b, "p1", "bob")
        assert sorted(w["members"]) == ["alice", "bob"] and w["count"] == 2, w
        e = await until_event(wa, "join", nick="bob")
        assert e["count"] == 2, e
        wc, w = await welcome_of(c, "p1", "carol")
        assert sorted(w["members"]) == ["alice", "bob", "carol"] and w["count"] == 3, w
        for ws in (wa, wb):
            e = await until_event(ws, "join", nick="carol")
            assert e["count"] == 3, e
        await wa.send("/who")
        e = await until_event(wa, "members")
        assert sorted(e["members"]) == ["alice", "bob", "carol"] and e["count"] == 3, e
        await close_all(wb)
        for ws in (wa, wc):
            e = await until_event(ws, "leave", nick="bob")
            assert e["count"] == 2, e
        await wc.send("/who")
        e = await until_event(wc, "members")
        assert sorted(e["members"]) == ["alice", "carol"] and e["count"] == 2, e
        await close_all(wa, wc)
    run(go())


def test_nick_unique_across_nodes_under_concurrent_joins(start_server, redis_server):
    srvs = nodes(start_server, redis_server, 3)

    async def go():
        per = 4
        joins = [welcome_of(srvs[i % 3], "p2", "same") for i in range(3 * per)]
        got = await asyncio.gather(*joins)
        nicks = [w["nick"] for _, w in got]
        assert len(set(nicks)) == len(nicks), nicks
        assert "same" in nicks and all(n == "same" or n.startswith("same") for n in nicks), nicks
        guests = await asyncio.gather(*(connect(srvs[i % 3], "/ws/p2") for i in range(6)))
        gw = [await recv_event(ws) for ws in guests]
        gnicks = [w["nick"] for w in gw]
        assert len(set(gnicks)) == 6 and all(n.startswith("guest-") for n in gnicks), gnicks
        # a nick held on another node cannot be taken with /nick
        ws0 = got[0][0]
        other = [n for n in nicks if n != got[0][1]["nick"]][0]
        await asyncio.sleep(0.3)   # every join has reached every node
        await ws0.send("/nick " + other)
        e = await until_event(ws0, "error")
        assert e["code"] == "nick_taken", e
        await ws0.send("/nick fresh")
        e = await until_event(ws0, "nick", nick="fresh")
        assert e["old"] == got[0][1]["nick"], e
        await close_all(*(ws for ws, _ in got), *guests)
    run(go())


def test_concurrent_renames_to_one_nick_across_nodes(start_server, redis_server):
    a, b = nodes(start_server, redis_server, 2)

    async def go():
        wa, _ = await welcome_of(a, "p3", "x1")
        wb, _ = await welcome_of(b, "p3", "x2")
        await until_event(wa, "join", nick="x2")
        await asyncio.gather(wa.send("/nick prize"), wb.send("/nick prize"))
        outcomes = []
        for ws, me in ((wa, "x1"), (wb, "x2")):   # each one's own rename, or its error
            e = await recv_event(ws, 10)
            while not (e["type"] == "error" or (e["type"] == "nick" and e["old"] == me)):
                e = await recv_event(ws, 10)
            outcomes.append(e)
        kinds = sorted(e["type"] for e in outcomes)
        assert kinds == ["error", "nick"], outcomes
        assert [e["code"] for e in outcomes if e["type"] == "error"] == ["nick_taken"], outcomes
        await close_all(wa, wb)
    run(go())


def test_members_of_a_killed_node_leave(start_server, redis_server):
    a, b = nodes(start_server, redis_server, 2, "--node-timeout", "2")

    async def go():
        wa, _ = await welcome_of(a, "p4", "stays")
        wb, _ = await welcome_of(b, "p4", "doomed")
        await until_event(wa, "join", nick="doomed")
        t0 = time.monotonic()
        b.kill()
        e = await until_event(wa, "leave", nick="doomed", timeout=15)
        took = time.monotonic() - t0
        assert e["count"] == 1 and e.get("reason") == "timeout", e
        assert took < 2 + 0.5, "the leave took %.1f s with --node-timeout 2" % took
        await wa.send("/who")
        e = await until_event(wa, "members")
        assert e["members"] == ["stays"], e
        # the dead node's nick is free again
        wc, w = await welcome_of(a, "p4", "doomed")
        assert w["nick"] == "doomed", w
        await close_all(wa, wc)
    run(go())
    assert stats(a)["redis_members_expired"] >= 1


def test_node_timeout_option_checked(start_server):
    import subprocess
    from conftest import BINARY
    r = subprocess.run([BINARY, "--node-timeout", "0"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "--node-timeout" in r.stderr, r


def test_lines_sent_before_the_welcome_are_kept(start_server, redis_server):
    """A client that sends at once (websocat piping a file) loses nothing:
    what it sent before its welcome is handled after it, in order, under the
    nick the cluster gave it."""
    a, b = nodes(start_server, redis_server, 2)

    async def go():
        wb, _ = await welcome_of(b, "p5", "early")
        ws = await connect(a, "/ws/p5?nick=early")
        for i in range(5):
            await ws.send("line%d" % i)
        w = await recv_event(ws)
        assert w["type"] == "welcome" and w["nick"] != "early", w
        got = await messages(ws, 5)
        assert [t for _, t in got] == ["line%d" % i for i in range(5)], got
        seen = await messages(wb, 5)
        assert seen == got, (seen, got)
        await close_all(ws, wb)
    run(go())


def test_a_joiner_gets_its_welcome_then_its_own_join(start_server, redis_server):
    """As on a single node: the first event is the welcome, the next its own
    join, whether the node already followed the room or not."""
    a, b = nodes(start_server, redis_server, 2)

    async def go():
        kept = []
        for srv, nick in ((a, "first"), (a, "second"), (b, "third"), (b, "fourth")):
            ws = await connect(srv, "/ws/p6?nick=" + nick)
            w = await recv_event(ws)
            assert w["type"] == "welcome" and w["nick"] == nick, w
            e = await recv_event(ws)
            assert e["type"] == "join" and e["nick"] == nick, e
            kept.append(ws)
        await close_all(*kept)
    run(go())


def test_a_big_room_is_counted_not_copied(start_server, redis_server):
    """Past --presence-limit a node keeps entries only up to the limit for
    the members elsewhere and counts the rest: counts stay right as members
    come and go, and the list a welcome or /who gives is the limit's."""
    a, b = nodes(start_server, redis_server, 2, "--presence-limit", "3")

    async def who(ws):
        await ws.send("/who")
        return await until_event(ws, "members")

    async def go():
        others = [(await welcome_of(b, "big", "b%d" % i))[0] for i in range(5)]
        x, w = await welcome_of(a, "big", "x")   # A follows the room from here: its sync samples the roster
        assert w["count"] == 6 and len(w["members"]) == 3 and "x" in w["members"], w
        deadline = time.monotonic() + 10
        while (e := await who(x))["count"] != 6:
            assert time.monotonic() < deadline, e
            await asyncio.sleep(0.05)
        assert len(e["members"]) == 3 and "x" in e["members"], e
        z, w = await welcome_of(a, "big", "z")
        assert w["count"] == 7 and len(w["members"]) == 3, w
        await close_all(*others)
        deadline = time.monotonic() + 10
        while (e := await who(x))["count"] != 2:
            assert time.monotonic() < deadline, e
            await asyncio.sleep(0.05)
        assert sorted(e["members"]) == ["x", "z"], e
        await close_all(x, z)
    run(go())


def test_a_counter_moved_forward_keeps_its_history_ttl(start_server, redis_server):
    """A Redis that lost its last writes (the room's counter behind what the
    node delivered, same epoch): the node's next sync moves the counter
    forward, so no number is given twice, and the key keeps --history-ttl."""
    a, = nodes(start_server, redis_server, 1, "--history-ttl", "60")

    def redis_cli(*args):
        p = subprocess.run(["redis-cli", "-p", str(redis_server.port)] + list(args), capture_output=True,
                           text=True, timeout=T)
        assert p.returncode == 0, p
        return p.stdout.strip()

    async def go():
        ws, _ = await welcome_of(a, "c9", "alice")
        for t in ("one", "two", "three"):
            await ws.send(t)
        assert await messages(ws, 3) == [(1, "one"), (2, "two"), (3, "three")]
        assert redis_cli("SET", "wshub:{c9}:seq", "1", "KEEPTTL") == "OK"
        redis_cli("CLIENT", "KILL", "TYPE", "pubsub")   # the node resyncs its rooms when its link is back
        deadline = time.monotonic() + 10
        while redis_cli("GET", "wshub:{c9}:seq") != "3":
            assert time.monotonic() < deadline, "the counter was not moved forward: " + a.log()
            await asyncio.sleep(0.05)
        assert 0 < int(redis_cli("TTL", "wshub:{c9}:seq")) <= 60
        await ws.send("four")
        assert await messages(ws, 1) == [(4, "four")]
        await close_all(ws)
    run(go(), timeout=30)
