"""--workers N (README "Running on every core"): one supervisor process forks
N single-threaded workers that share the port (SO_REUSEPORT) and join one chat
space through a real redis-server. The tests count the processes, see
connections land on several workers through /stats' per-worker figures, run a
room across them (one order, consecutive seq), kill -9 a worker and see it
started again (new pid, counted, logged), stop everything with SIGTERM (1001
to every client, exit 0), pass SIGHUP to every worker (log reopened, TLS
certificate reloaded), check that /metrics' sums are the sums of the per-worker
figures, that /healthz needs every worker (a stopped one turns it 503), that
no worker outlives the supervisor, --daemon/--pidfile and sd_notify, and the
refusals (--workers 2 without --redis exits 2). Every wait is bounded."""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import BINARY, STATIC, free_port
from test_chat import close_all, connect, recv_event, run
from test_ops import pid_alive as alive
from test_tls import peer_cn, tls_connect
from tlsutil import ServerTLS, make_pki
from wsraw import OP_CLOSE, OP_PING, OP_PONG, WSClient

websockets = pytest.importorskip("websockets")

T = 10.0


def wait_until(pred, timeout=T, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def http_get(srv, path, timeout=5):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (srv.host, srv.port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stats(srv):
    status, body = http_get(srv, "/stats")
    assert status == 200, body
    return json.loads(body)


def children(pid):
    """Live, non-zombie child processes of pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(name))
    return sorted(out)


def workers_server(start_server, redis, n, *extra, **kw):
    """A supervisor with n workers, once every worker is healthy."""
    srv = start_server("--workers", str(n), "--redis", redis.url(), *extra, **kw)
    if srv.client_tls is None:
        wait_until(lambda: http_get(srv, "/healthz")[0] == 200, what="/healthz 200:\n" + srv.log())
    return srv


def per_worker(st, key, sub=None):
    return [w[key][sub] if sub else w[key] for w in st["workers"]]


def test_workers_need_redis():
    for n in ("2", "auto"):
        if n == "auto" and len(os.sched_getaffinity(0)) < 2:
            continue
        p = subprocess.run([BINARY, "--port", str(free_port()), "--static", STATIC, "--workers", n],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, p
        assert "--workers" in p.stderr and "--redis" in p.stderr, p.stderr


@pytest.mark.parametrize("bad", ["0", "-1", "x", "129", "2k"])
def test_bad_workers_value_exits_2(bad):
    p = subprocess.run([BINARY, "--workers", bad], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--workers" in p.stderr, p


def test_supervisor_starts_n_workers(start_server, redis_server):
    srv = workers_server(start_server, redis_server, 3)
    kids = wait_until(lambda: len(children(srv.proc.pid)) == 3 and children(srv.proc.pid), what="3 workers")
    st = stats(srv)
    assert st["worker_processes"] == 3
    assert sorted(per_worker(st, "pid")) == kids
    assert [w["worker"] for w in st["workers"]] == [0, 1, 2]
    assert st["workers_healthy"] == 3
    log = srv.log()
    for i in range(3):
        assert re.search(r" w%d listening .* node=[^ ]+/w%d\n" % (i, i), log), log
    assert "all workers listening workers=3" in log


def test_workers_auto_is_the_cpus_we_may_use(start_server, redis_server):
    n = len(os.sched_getaffinity(0))
    srv = start_server("--workers", "auto", "--redis", redis_server.url())
    wait_until(lambda: len(children(srv.proc.pid)) == n, what="%d workers" % n)
    wait_until(lambda: http_get(srv, "/healthz")[0] == 200, what="healthy")
    assert stats(srv)["worker_processes"] == n


def test_connections_land_on_several_workers_and_a_room_spans_them(start_server, redis_server):
    srv = workers_server(start_server, redis_server, 2)
    clients, senders, per_sender = 12, 4, 5

    async def scenario():
        wss = []
        for i in range(clients):
            ws = await connect(srv, "/ws/span?nick=c%d" % i)
            assert (await recv_event(ws))["type"] == "welcome"
            wss.append(ws)
        st = await asyncio.to_thread(wait_until, lambda: (lambda s: sum(per_worker(s, "connections", "websocket"))
                                                          == clients and s)(stats(srv)), T, "12 websockets")
        ws_per_worker = per_worker(st, "connections", "websocket")
        assert st["connections"]["websocket"] == clients
        assert all(n > 0 for n in ws_per_worker), "all %d connections on one worker: %r" % (clients, ws_per_worker)
        for k in range(per_sender):
            for i in range(senders):
                await wss[i].send("m%d-%d" % (i, k))
        seen = []
        for ws in wss:
            got = []
            deadline = time.monotonic() + T
            while len(got) < senders * per_sender:
                e = await recv_event(ws, max(0.1, deadline - time.monotonic()))
                if e["type"] == "message":
                    got.append((e["seq"], e["text"]))
            seen.append(got)
        await close_all(*wss)
        return seen

    seen = run(scenario())
    first = seen[0]
    assert all(s == first for s in seen), "members saw different orders"
    seqs = [s for s, _ in first]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    for i in range(senders):    # each sender's lines in the order it sent them
        mine = [t for _, t in first if t.startswith("m%d-" % i)]
        assert mine == ["m%d-%d" % (i, k) for k in range(per_sender)]


def test_kill9_worker_is_restarted_and_counted(start_server, redis_server):
    srv = workers_server(start_server, redis_server, 2)
    st = stats(srv)
    old = per_worker(st, "pid")
    os.kill(old[1], signal.SIGKILL)

    def restarted():
        try:    # a connection queued on the dying worker's listener is reset: ask again
            s = stats(srv)
        except OSError:
            return False
        return s["workers"][1]["pid"] not in (0, old[1]) and s["workers_healthy"] == 2 and s
    st = wait_until(restarted, what="worker 1 restarted:\n" + srv.log())
    assert st["workers"][1]["worker_restarts"] == 1 and st["workers"][0]["worker_restarts"] == 0
    assert st["worker_restarts"] == 1
    assert st["workers"][0]["pid"] == old[0]
    assert sorted(children(srv.proc.pid)) == sorted(per_worker(st, "pid"))
    assert re.search(r"worker died worker=1 signal=KILL restart_in_ms=\d+", srv.log()), srv.log()
    assert re.search(r" w1 listening .* node=[^ ]+/w1\.1\n", srv.log()), srv.log()
    status, body = http_get(srv, "/metrics")
    assert 'wshub_worker_restarts_total{worker="1"} 1\n' in body
    assert "\nwshub_worker_restarts_total 1\n" in body


def test_members_of_a_killed_worker_leave_on_the_others(start_server, redis_server):
    """kill -9 of a worker: its clients lose their connection, and the members
    on the other worker get a `leave` for each of them within --node-timeout,
    and a lost client that comes back gets its nick again."""
    srv = workers_server(start_server, redis_server, 2, "--node-timeout", "2")
    nicks = ["k%d" % i for i in range(10)]

    async def scenario():
        wss = {}
        for nick in nicks:
            ws = await connect(srv, "/ws/doom?nick=" + nick)
            assert (await recv_event(ws))["type"] == "welcome"
            wss[nick] = ws
        st = await asyncio.to_thread(wait_until, lambda: (lambda s: all(
            n > 0 for n in per_worker(s, "connections", "websocket")) and s)(stats(srv)), T, "members on both")
        await wss[nicks[0]].send("before")
        seq = None
        for ws in wss.values():
            while True:
                e = await recv_event(ws)
                if e["type"] == "message":
                    seq = e["seq"]
                    break
        os.kill(st["workers"][1]["pid"], signal.SIGKILL)
        t0 = time.monotonic()
        async def closed(ws):
            try:
                await asyncio.wait_for(ws.wait_closed(), 1)
                return True
            except asyncio.TimeoutError:
                return False
        gone = await asyncio.gather(*[closed(ws) for ws in wss.values()])
        dead = [n for n, g in zip(wss, gone) if g]
        living = [n for n, g in zip(wss, gone) if not g]
        assert dead and living, (dead, living)
        for nick in living:      # every living member hears of every dead one, once
            left = set()
            while left != set(dead):
                e = await recv_event(wss[nick], 15)
                if e["type"] == "leave":
                    assert e["nick"] in dead and e["nick"] not in left, e
                    left.add(e["nick"])
        took = time.monotonic() - t0
        assert took < 2 + 3, "leave after %.1f s with --node-timeout 2" % took
        back = await connect(srv, "/ws/doom?nick=%s&since=%d&epoch=%s" % (dead[0], seq, "x"))
        w = await recv_event(back)
        assert w["type"] == "welcome" and w["nick"] == dead[0], w
        await close_all(back, *[wss[n] for n in living])

    run(scenario())


def test_sigterm_stops_every_worker_with_1001(start_server, redis_server):
    srv = workers_server(start_server, redis_server, 2, "--shutdown-timeout", "5")
    kids = children(srv.proc.pid)
    assert len(kids) == 2
    clients = [WSClient.connect(srv.host, srv.port, "/ws/bye?nick=b%d" % i) for i in range(8)]
    wait_until(lambda: all(n > 0 for n in per_worker(stats(srv), "connections", "websocket")),
               what="clients on both workers")
    srv.proc.send_signal(signal.SIGTERM)
    for c in clients:
        deadline = time.monotonic() + T
        while True:
            m = c.recv_message(max(0.1, deadline - time.monotonic()))
            if m.opcode == OP_PING:
                c.send_frame(OP_PONG, m.data)
            elif m.opcode == OP_CLOSE:
                break
        assert m.close_code == 1001, m
        c.send_close(1001)
        c.wait_tcp_close(T)
        c.close()
    assert srv.proc.wait(timeout=T) == 0, srv.log()
    assert not any(alive(k) for k in kids)
    assert srv.log().count("worker stopped worker=") == 2


def test_sighup_reaches_every_worker(start_server, redis_server, tmp_path):
    log = str(tmp_path / "wshub.log")
    srv = workers_server(start_server, redis_server, 2, "--log", log)
    os.rename(log, log + ".1")
    srv.proc.send_signal(signal.SIGHUP)

    def reopened():
        try:
            with open(log) as f:
                text = f.read()
        except OSError:
            return False
        return " w0 log reopened" in text and " w1 log reopened" in text
    wait_until(reopened, what="both workers reopened the log")
    assert srv.alive()


def test_sighup_reloads_the_certificate_in_every_worker(start_server, redis_server, tmp_path):
    pki, tls, cleanup = make_pki()
    try:
        cert_a, key_a = pki.server("cert-a")
        cert_b, key_b = pki.server("cert-b")
        live_cert, live_key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
        for src, dst in ((cert_a, live_cert), (key_a, live_key)):
            with open(src) as f, open(dst, "w") as g:
                g.write(f.read())
        srv = workers_server(start_server, redis_server, 2, tls=ServerTLS(pki, live_cert, live_key))
        wait_until(lambda: len(children(srv.proc.pid)) == 2, what="2 workers")
        assert peer_cn(tls_connect(srv)) == "cert-a"
        for src, dst in ((cert_b, live_cert), (key_b, live_key)):
            with open(src) as f, open(dst, "w") as g:
                g.write(f.read())
        srv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: " w0 tls reloaded" in srv.log() and " w1 tls reloaded" in srv.log(),
                   what="both workers reloaded:\n" + srv.log())
        # 24 new connections: the chance that one worker got none is 2^-23.
        names = set()
        for _ in range(24):
            s = tls_connect(srv)
            names.add(peer_cn(s))
            s.close()
        assert names == {"cert-b"}, names
    finally:
        cleanup()


def metric_lines(body):
    """{(name, labels without worker): (summed value, {worker: value})}."""
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\d+)$', line)
        assert m, line
        name, labels, value = m.group(1), m.group(2) or "", int(m.group(3))
        parts = [p for p in labels.split(",") if p]
        worker = [p for p in parts if p.startswith("worker=")]
        key = (name, ",".join(p for p in parts if not p.startswith("worker=")))
        summed, each = out.setdefault(key, [None, {}])
        if worker:
            each[worker[0][8:-1]] = value
        else:
            out[key][0] = value
    return out


def test_metrics_sums_are_the_sums_of_the_workers(start_server, redis_server):
    srv = workers_server(start_server, redis_server, 2)

    def check():
        wait_until(lambda: all(n > 0 for n in per_worker(stats(srv), "connections", "websocket")),
                   what="echo clients on both workers")
        status, body = http_get(srv, "/metrics")
        assert status == 200
        figures = metric_lines(body)
        checked = 0
        for (name, labels), (summed, each) in figures.items():
            if name == "wshub_worker_pid":
                assert summed is None and sorted(each) == ["0", "1"]
            elif name == "wshub_workers":
                assert summed == 2 and not each
            elif name in ("wshub_uptime_seconds", "wshub_redis_rtt_microseconds"):   # levels: the highest
                assert sorted(each) == ["0", "1"] and summed == max(each.values())
            else:
                assert sorted(each) == ["0", "1"], (name, labels, each)
                assert summed == sum(each.values()), (name, labels, summed, each)
                checked += 1
        assert checked > 20
        assert figures[("wshub_connections", 'type="websocket"')][0] == 10
        assert figures[("wshub_messages_received_total", "")][0] >= 10
        st = stats(srv)    # JSON: the same sums
        assert st["connections"]["websocket"] == sum(per_worker(st, "connections", "websocket")) == 10
        assert st["messages_in"] == sum(per_worker(st, "messages_in"))

    async def scenario():
        wss = [await connect(srv, "/echo") for _ in range(10)]
        for ws in wss:
            await ws.send("x" * 100)
            assert await ws.recv() == "x" * 100
        await asyncio.to_thread(check)
        await close_all(*wss)
    run(scenario())


def test_healthz_needs_every_worker(start_server, redis_server):
    srv = workers_server(start_server, redis_server, 2)
    pids = per_worker(stats(srv), "pid")
    os.kill(pids[1], signal.SIGSTOP)
    try:
        def unhealthy():
            try:   # a request may land on the stopped worker: short timeout, try again
                status, body = http_get(srv, "/healthz", timeout=0.5)
            except OSError:
                return False
            return status == 503 and body
        body = wait_until(unhealthy, what="/healthz 503 with a stopped worker")
        assert "worker 1 has not answered" in body, body
    finally:
        os.kill(pids[1], signal.SIGCONT)
    wait_until(lambda: http_get(srv, "/healthz")[0] == 200, what="/healthz 200 again")


def test_workers_die_with_the_supervisor(redis_server):
    sup = subprocess.Popen([BINARY, "--host", "127.0.0.1", "--port", str(free_port()), "--static", STATIC,
                            "--workers", "2", "--redis", redis_server.url()],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kids = wait_until(lambda: len(children(sup.pid)) == 2 and children(sup.pid), what="2 workers")
    finally:
        sup.kill()
        sup.wait()
    wait_until(lambda: not any(alive(k) for k in kids), what="workers gone after the supervisor died")


def test_a_taken_port_stops_the_start(start_server, redis_server):
    """Another listener, or another group of workers (SO_REUSEPORT would let
    the new workers join it), on the port: exit 1 before any worker starts."""
    port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    first = start_server("--workers", "2", "--redis", redis_server.url())
    try:
        for taken in (port, first.port):
            p = subprocess.run([BINARY, "--host", "127.0.0.1", "--port", str(taken), "--static", STATIC,
                                "--workers", "2", "--redis", redis_server.url()],
                               capture_output=True, text=True, timeout=20)
            assert p.returncode == 1, p
            assert "Address already in use" in p.stderr and "worker started" not in p.stderr, p.stderr
    finally:
        blocker.close()


def test_daemon_pidfile_and_notify(redis_server, tmp_path):
    port = free_port()
    pidfile, log = str(tmp_path / "wshub.pid"), str(tmp_path / "wshub.log")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(T)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"))
    try:
        p = subprocess.run([BINARY, "--host", "127.0.0.1", "--port", str(port), "--static", STATIC,
                            "--workers", "2", "--redis", redis_server.url(), "--daemon", "--pidfile", pidfile,
                            "--log", log], env=env, capture_output=True, text=True, timeout=20)
        assert p.returncode == 0, p
        msg = notify.recv(4096).decode()
        assert "READY=1" in msg.split("\n"), msg
        with open(pidfile) as f:
            sup = int(f.read())
        kids = children(sup)
        assert len(kids) == 2, kids
        with open("/proc/net/tcp") as f:    # both workers listen (one socket each) when READY=1 comes
            listeners = [l for l in f if (":%04X " % port) in l.split()[1] + " " and l.split()[3] == "0A"]
        assert len(listeners) == 2, listeners
        os.kill(sup, signal.SIGTERM)
        assert "STOPPING=1" in notify.recv(4096).decode().split("\n")
        wait_until(lambda: not alive(sup) and not any(alive(k) for k in kids), what="all stopped")
        wait_until(lambda: not os.path.exists(pidfile), what="pid file removed")
        with open(log) as f:
            text = f.read()
        assert " w0 " in text and " w1 " in text and "all workers listening" in text
    finally:
        notify.close()
