"""Resume on a single node: welcome carries the room's last `seq` and its
`epoch`; a client that reconnects with ?since=SEQ&epoch=E gets exactly the
message events after SEQ ("resumed":true) when history still holds all of
them, the epoch matches and the gap is within --max-resume; otherwise the
room's history and "resumed":false, so it knows it has a gap. Malformed
values are refused with 400. A new room, an evicted and recreated room, and
a restarted server each have a new epoch."""
import pytest

from test_chat import close_all, connect, expect_event, expect_refused, expect_silence, join, recv_event, run


async def say_all(ws, texts):
    for t in texts:
        await ws.send(t)
    seqs = []
    for t in texts:
        e = await expect_event(ws, "message", text=t)
        seqs.append(e["seq"])
    return seqs


async def rejoin(server, room, nick, query):
    ws = await connect(server, "/ws/%s?nick=%s&%s" % (room, nick, query))
    welcome = await recv_event(ws)
    assert welcome["type"] == "welcome", welcome
    await expect_event(ws, "join", nick=welcome["nick"])
    return ws, welcome


def texts_of(welcome):
    return [e["text"] for e in welcome["history"]]


def test_welcome_has_seq_and_epoch(server):
    async def go():
        a, wa = await join(server, "rs1", "alice")
        assert wa["seq"] == 0 and isinstance(wa["epoch"], str) and wa["epoch"], wa
        assert "resumed" not in wa, "resumed is only said to a client that asked: %r" % wa
        seqs = await say_all(a, ["one", "two", "three"])
        assert seqs == [1, 2, 3]
        b, wb = await join(server, "rs1", "bob")
        assert wb["seq"] == 3 and wb["epoch"] == wa["epoch"], (wa, wb)
        c, wc = await join(server, "rs1-other", "carol")
        assert wc["epoch"] != wa["epoch"], "two rooms with one epoch"
        await close_all(a, b, c)
    run(go())


def test_resume_gets_exactly_the_gap(server):
    async def go():
        a, wa = await join(server, "rs2", "alice")
        await say_all(a, ["m%d" % i for i in range(1, 8)])
        b, wb = await rejoin(server, "rs2", "bob", "since=4&epoch=" + wa["epoch"])
        assert wb["resumed"] is True, wb
        assert [e["seq"] for e in wb["history"]] == [5, 6, 7], wb["history"]
        assert texts_of(wb) == ["m5", "m6", "m7"]
        assert wb["seq"] == 7
        c, wc = await rejoin(server, "rs2", "carol", "since=7&epoch=" + wa["epoch"])
        assert wc["resumed"] is True and wc["history"] == [], wc
        d, wd = await rejoin(server, "rs2", "dave", "since=0&epoch=" + wa["epoch"])
        assert wd["resumed"] is True and [e["seq"] for e in wd["history"]] == list(range(1, 8)), wd
        await close_all(a, b, c, d)
    run(go())


@pytest.mark.parametrize("query", ["since=3&epoch=0000000000000000", "since=3", "since=99&epoch={epoch}",
                                   "since=3&epoch=x{epoch}"])
def test_resume_refused_gives_history_and_false(server, query):
    """Another epoch, no epoch, a seq from the future, a longer epoch: the
    whole history and resumed false."""
    async def go():
        room = "rs3-%d" % abs(hash(query))
        a, wa = await join(server, room, "alice")
        await say_all(a, ["x1", "x2", "x3", "x4", "x5"])
        b, wb = await rejoin(server, room, "bob", query.format(epoch=wa["epoch"]))
        assert wb["resumed"] is False, wb
        assert texts_of(wb) == ["x1", "x2", "x3", "x4", "x5"], wb["history"]
        await close_all(a, b)
    run(go())


def test_gap_no_longer_in_history(start_server):
    srv = start_server("--history", "3")

    async def go():
        a, wa = await join(srv, "rs4", "alice")
        await say_all(a, ["h%d" % i for i in range(1, 11)])
        b, wb = await rejoin(srv, "rs4", "bob", "since=2&epoch=" + wa["epoch"])
        assert wb["resumed"] is False and texts_of(wb) == ["h8", "h9", "h10"], wb
        c, wc = await rejoin(srv, "rs4", "carol", "since=7&epoch=" + wa["epoch"])
        assert wc["resumed"] is True and texts_of(wc) == ["h8", "h9", "h10"], wc
        await close_all(a, b, c)
    run(go())


def test_max_resume_caps_the_work(start_server):
    srv = start_server("--max-resume", "2")

    async def go():
        a, wa = await join(srv, "rs5", "alice")
        await say_all(a, ["r1", "r2", "r3", "r4"])
        b, wb = await rejoin(srv, "rs5", "bob", "since=1&epoch=" + wa["epoch"])
        assert wb["resumed"] is False and texts_of(wb) == ["r1", "r2", "r3", "r4"], wb
        c, wc = await rejoin(srv, "rs5", "carol", "since=2&epoch=" + wa["epoch"])
        assert wc["resumed"] is True and texts_of(wc) == ["r3", "r4"], wc
        await close_all(a, b, c)
    run(go())


def test_evicted_room_gets_a_new_epoch(start_server):
    srv = start_server("--max-rooms", "1")

    async def go():
        a, wa = await join(srv, "rs6", "alice")
        await say_all(a, ["before"])
        await close_all(a)
        b, _ = await join(srv, "rs6-b", "bob")      # evicts rs6 once alice has left
        await close_all(b)
        c, wc = await rejoin(srv, "rs6", "carol", "since=1&epoch=" + wa["epoch"])
        assert wc["epoch"] != wa["epoch"] and wc["seq"] == 0, (wa, wc)
        assert wc["resumed"] is False and wc["history"] == [], wc
        await close_all(c)
    run(go())


def test_restart_gets_a_new_epoch(start_server):
    async def go(srv, query=None):
        if query is None:
            a, wa = await join(srv, "rs7", "alice")
            await say_all(a, ["one"])
            await close_all(a)
            return wa
        b, wb = await rejoin(srv, "rs7", "bob", query)
        await close_all(b)
        return wb
    first = start_server()
    wa = run(go(first))
    first.stop()
    second = start_server()
    wb = run(go(second, "since=1&epoch=" + wa["epoch"]))
    assert wb["epoch"] != wa["epoch"] and wb["resumed"] is False, (wa, wb)


@pytest.mark.parametrize("query", ["since=", "since=-1", "since=1x", "since=99999999999999999999999",
                                   "since=%2B1", "epoch=a%20b", "epoch=", "since=1&epoch=" + "e" * 65])
def test_malformed_resume_is_refused(server, query):
    async def go():
        await expect_refused(server, "/ws/rs8?" + query, 400)
    run(go())


def test_live_messages_follow_the_resumed_history(server):
    """Nothing between the welcome's history and the live stream is lost or
    repeated: the resumed history ends at the welcome's seq and the next live
    message is seq + 1."""
    async def go():
        a, wa = await join(server, "rs9", "alice")
        await say_all(a, ["p1", "p2"])
        b, wb = await rejoin(server, "rs9", "bob", "since=1&epoch=" + wa["epoch"])
        assert [e["seq"] for e in wb["history"]] == [2] and wb["seq"] == 2, wb
        await expect_event(a, "join", nick="bob")
        await a.send("p3")
        e = await expect_event(b, "message", text="p3")
        assert e["seq"] == wb["seq"] + 1
        await expect_silence(b)
        await close_all(a, b)
    run(go())

