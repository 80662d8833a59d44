"""Shared fixtures: start the real build/wshub on a free loopback port.

Every test talks to the real binary over real sockets. A server that wrote a
sanitizer report or exited with a non-zero code (other than through SIGTERM)
fails the test that used it.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("WSHUB_BIN", os.path.join(ROOT, "build", "wshub"))
STATIC = os.path.join(ROOT, "static")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running wshub process: host, port, url(), and its log so far. With
    tls (a tlsutil.ServerTLS) it speaks TLS: url() is wss://, connect() and
    client_tls (an ssl.SSLContext trusting it) are for clients."""

    def __init__(self, args, static_dir, tls=None):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.static_dir = static_dir
        self.client_tls = tls.client_context() if tls else None
        self.log_file = tempfile.NamedTemporaryFile(prefix="wshub-log-", delete=False)
        cmd = [BINARY, "--host", self.host, "--port", str(self.port),
               "--static", static_dir] + (tls.args() if tls else []) + list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("wshub exited at start (%s):\n%s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("wshub did not listen within 10 s:\n" + self.log())
                time.sleep(0.02)

    def url(self, path="/"):
        return "%s://%s:%d%s" % ("wss" if self.client_tls else "ws", self.host, self.port, path)

    def connect(self, timeout=5):
        """A TCP socket to the server (TLS, handshake done, when it speaks TLS)."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.client_tls:
            s = self.client_tls.wrap_socket(s, server_hostname=self.host)
        return s

    def log(self):
        with open(self.log_file.name, "r", errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """kill -9, as a crash or a power loss would stop it."""
        self.killed = True
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM, wait, and return the exit code; kill if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def check_clean(self):
        """Fails when the server crashed or a sanitizer reported anything."""
        log = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "SUMMARY: UndefinedBehaviorSanitizer"):
            assert marker not in log, "sanitizer report in server log:\n" + log
        ok = (0, -signal.SIGTERM, -signal.SIGKILL) if getattr(self, "killed", False) else (0, -signal.SIGTERM)
        assert self.proc.returncode in ok, \
            "wshub exited with %s:\n%s" % (self.proc.returncode, log)


@pytest.fixture
def start_server():
    """Factory: start_server(*args, static_dir=None, tls=None) -> Server. All
    are stopped and checked for crashes and sanitizer reports at the end of
    the test."""
    servers = []

    def start(*args, static_dir=None, tls=None):
        srv = Server(args, static_dir or STATIC, tls)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()
        srv.check_clean()
        os.unlink(srv.log_file.name)


@pytest.fixture
def server(start_server):
    """One wshub with default options, serving static/."""
    return start_server()


@pytest.fixture
def static_tree():
    """A temporary static directory with a few files, a subdirectory, and a
    symlink that points outside it; removed afterwards."""
    top = tempfile.mkdtemp(prefix="wshub-static-")
    root = os.path.join(top, "www")
    os.mkdir(root)
    with open(os.path.join(top, "secret.txt"), "w") as f:
        f.write("outside the static root\n")
    yield top, root
    shutil.rmtree(top)


class Redis:
    """A real redis-server on a free loopback port with its own directory and
    AOF on (fsync always, so a kill -9 loses nothing acknowledged)."""

    def __init__(self, directory):
        self.dir = directory
        self.port = free_port()
        self.proc = None

    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed (make test installs it as root)"
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", self.dir, "--protected-mode", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer on port %d" % self.port)

    def kill(self):
        """kill -9: no chance to save anything beyond what AOF already has."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wipe(self):
        """Forget everything: the next start is an empty Redis."""
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


@pytest.fixture
def redis_server():
    """A started Redis (see Redis); killed and its directory removed afterwards."""
    directory = tempfile.mkdtemp(prefix="wshub-redis-")
    r = Redis(directory).start()
    yield r
    r.kill()
    shutil.rmtree(directory, ignore_errors=True)
