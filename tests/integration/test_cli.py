"""The command line of the real build/wshub: --help, refusals of unknown options,
missing and bad values and a missing --static directory (exit 2 with a message
on stderr), and that options that are accepted take effect (--host, --port,
--static, --max-message)."""
import asyncio
import os
import subprocess
import tempfile

import pytest

from conftest import BINARY, STATIC, free_port

OPTIONS = ["--host", "--port", "--static", "--handshake-timeout", "--max-message", "--help"]


def run_cli(*args, timeout=5):
    """Runs wshub with args; a process still running after timeout is killed and
    reported as None (it did not exit)."""
    p = subprocess.Popen([BINARY] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def base_args():
    """Valid options so that only the one under test can be wrong."""
    return ["--host", "127.0.0.1", "--port", str(free_port()), "--static", STATIC]


def test_help_lists_every_option():
    code, out, err = run_cli("--help")
    assert code == 0, (code, out, err)
    text = out + err
    assert out.strip(), "--help printed nothing on stdout"
    for opt in OPTIONS:
        assert opt in text, "--help does not mention %s:\n%s" % (opt, text)


def test_help_wins_over_other_options():
    code, out, err = run_cli(*base_args(), "--help")
    assert code == 0, (code, out, err)
    assert "--max-message" in out + err


@pytest.mark.parametrize("opt", ["--bogus", "--ports", "-x", "extra-positional"])
def test_unknown_option_exit_2(opt):
    code, out, err = run_cli(*base_args(), opt)
    assert code == 2, (code, out, err)
    assert opt.lstrip("-") in err, "stderr does not name %s: %r" % (opt, err)


@pytest.mark.parametrize("opt", ["--port", "--host", "--static", "--handshake-timeout", "--max-message"])
def test_missing_value_exit_2(opt):
    code, out, err = run_cli(*base_args(), opt)
    assert code == 2, (code, out, err)
    assert opt.lstrip("-") in err, "stderr does not name %s: %r" % (opt, err)


@pytest.mark.parametrize("opt,value", [
    ("--port", "0"),
    ("--port", "70000"),
    ("--port", "65536"),
    ("--port", "abc"),
    ("--port", "-1"),
    ("--port", "80x"),
    ("--port", ""),
    ("--handshake-timeout", "-1"),
    ("--handshake-timeout", "abc"),
    ("--max-message", "abc"),
    ("--max-message", "-5"),
])
def test_bad_value_exit_2(opt, value):
    args = base_args()
    if opt == "--port":
        args = ["--host", "127.0.0.1", "--static", STATIC]
    code, out, err = run_cli(*args, opt, value)
    assert code == 2, (code, out, err)
    low = err.lower()
    assert opt.lstrip("-") in low or (value and value in err), \
        "stderr does not name the problem for %s %r: %r" % (opt, value, err)


def test_static_dir_missing_exit_2():
    missing = os.path.join(tempfile.gettempdir(), "wshub-no-such-dir-%d" % os.getpid())
    assert not os.path.exists(missing)
    args = ["--host", "127.0.0.1", "--port", str(free_port()), "--static", missing]
    code, out, err = run_cli(*args)
    assert code == 2, (code, out, err)
    assert missing in err or "static" in err.lower(), err


def test_static_is_a_file_exit_2():
    with tempfile.NamedTemporaryFile() as f:
        args = ["--host", "127.0.0.1", "--port", str(free_port()), "--static", f.name]
        code, out, err = run_cli(*args)
    assert code == 2, (code, out, err)
    assert f.name in err or "static" in err.lower(), err


def test_options_take_effect(start_server, static_tree):
    """--host/--port/--static from the fixture: the server answers on that
    address from that directory."""
    top, root = static_tree
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("from the temp root\n")
    srv = start_server("--handshake-timeout", "5", "--max-message", "65536", static_dir=root)
    s = srv.connect()
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert data.endswith(b"\r\n\r\nfrom the temp root\n"), data


def test_max_message_enforced(start_server):
    """A message over --max-message is refused with close code 1009 (RFC 6455
    7.4.1); one at the limit is echoed."""
    websockets = pytest.importorskip("websockets")
    srv = start_server("--max-message", "1000")

    async def go():
        async with websockets.connect(srv.url("/echo"), max_size=None) as ws:
            await ws.send(b"a" * 1000)
            assert await ws.recv() == b"a" * 1000
        ws = await websockets.connect(srv.url("/echo"), max_size=None)
        await ws.send(b"b" * 1001)
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        await ws.wait_closed()
        return ws.close_code

    code = asyncio.run(asyncio.wait_for(go(), 20))
    assert code == 1009
    assert srv.alive()


def test_port_in_use_fails(start_server):
    srv = start_server()
    code, out, err = run_cli("--host", "127.0.0.1", "--port", str(srv.port), "--static", STATIC)
    assert code is not None and code != 0, (code, out, err)
    assert err.strip(), "no message on stderr"
