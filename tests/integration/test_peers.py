"""The load generator checked against a server nobody here wrote: build/wsbench
runs its echo and broadcast workloads (small counts, about 2 s each) against
the Node `ws` peer of the benchmarks (bench/peers/node/server.js) and must exit
0 with lost=0, reordered=0 and errors=0. A wsbench that miscounted, lost track
of frames or mis-framed its own messages would fail here rather than flatter
or slander wshub in bench/run.sh.

The same with TLS and permessage-deflate (the peer with --cert/--key and
--deflate): ws keeps its compression context per connection, so wsbench's
per-connection inflater is what reads it, where wshub's answers are read by
the shared one.

Needs node; `npm ci` in bench/peers/node installs the `ws` package when it is
missing. Skipped only when node is not installed."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT, free_port
from tlsutil import make_pki

WSBENCH = os.environ.get("WSBENCH_BIN", os.path.join(ROOT, "build", "wsbench"))
NODE_DIR = os.path.join(ROOT, "bench", "peers", "node")
HOST = "127.0.0.1"


def run_node_peer(*extra):
    """The Node ws peer on a free loopback port with extra arguments; yields the port."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed (CI installs Debian's nodejs and npm)")
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "ws", "package.json")):
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: cannot install the ws package"
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, "npm ci failed in bench/peers/node:\n" + done.stdout + done.stderr
    port = free_port()
    proc = subprocess.Popen([node, os.path.join(NODE_DIR, "server.js"), str(port)] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError("node peer exited at start:\n" + proc.stdout.read().decode(errors="replace"))
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("node peer did not listen within 10 s")
                time.sleep(0.05)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def node_peer():
    """The Node ws peer on a free loopback port; yields the port."""
    yield from run_node_peer()


@pytest.fixture(scope="module")
def node_peer_tls_deflate():
    """The Node ws peer speaking TLS (a test certificate) with perMessageDeflate."""
    _, tls, cleanup = make_pki()
    try:
        yield from run_node_peer("--cert", tls.cert, "--key", tls.key, "--deflate")
    finally:
        cleanup()


def wsbench(port, *args):
    """Runs wsbench against the peer; returns the RESULT line's fields."""
    assert os.access(WSBENCH, os.X_OK), "no %s: `make build/wsbench` builds it" % WSBENCH
    cmd = [WSBENCH] + list(args) + ["--host", HOST, "--port", str(port)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    report = "%s\nexit %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), done.returncode,
                                                        done.stdout, done.stderr[-3000:])
    assert done.returncode == 0, report
    assert len(lines) == 1, "want exactly one RESULT line\n" + report
    fields = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
    for key in ("lost", "reordered", "errors"):
        assert fields.get(key) == "0", "%s=%s\n%s" % (key, fields.get(key), report)
    assert int(fields["count"]) > 0, "no message was counted\n" + report
    assert float(fields["rate"]) > 0, report
    return fields


def test_echo_against_node_ws(node_peer):
    f = wsbench(node_peer, "echo", "--conns", "50", "--inflight", "4", "--size", "1024",
                "--path", "/echo", "--duration", "2", "--warmup", "0.5")
    assert f["workload"] == "echo"


def test_broadcast_against_node_ws(node_peer):
    f = wsbench(node_peer, "broadcast", "--members", "50", "--publishers", "5", "--size", "64",
                "--path", "/ws/bench", "--duration", "2", "--warmup", "0.5")
    assert f["workload"] == "broadcast"


def test_wss_deflate_echo_against_node_ws(node_peer_tls_deflate):
    f = wsbench(node_peer_tls_deflate, "echo", "--conns", "20", "--inflight", "2", "--size", "1024",
                "--path", "/echo", "--tls", "--deflate", "--duration", "1.5", "--warmup", "0.3")
    assert f["tls"] == "yes" and f["deflate"] == "20", f
    # the echo pattern compresses: fewer bytes on the wire than in the messages
    assert float(f["rx_bytes_per_msg"]) < float(f["msg_bytes_per_msg"]) == 1024.0, f


def test_wss_deflate_chat_against_node_ws(node_peer_tls_deflate):
    """Chat lines through a server that keeps its deflate context per connection."""
    f = wsbench(node_peer_tls_deflate, "chat", "--members", "30", "--publishers", "3", "--size", "1024",
                "--path", "/ws/bench", "--tls", "--deflate", "--duration", "1.5", "--warmup", "0.3")
    assert f["deflate"] == "30", f
    assert float(f["rx_bytes_per_msg"]) < 0.8 * float(f["msg_bytes_per_msg"]), f
