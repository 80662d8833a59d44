"""scripts/loadtest.sh, the websocat chat-room load test, against the real
build/wshub. websocat is not packaged in Debian, so tests/standins is put first
in PATH: its `websocat` is a Python stand-in that speaks exactly the websocat
options the script uses and refuses any other (so a drift between the two
fails here). Covers: a clean run (every client gets every line once, totals
and per-client rows), lines dropped by the server's flood control reported as
missing (exit 1), a room the server refuses (exit 1 and why), websocat missing
from PATH (exit 3), --help (exit 0) and bad usage (exit 2)."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "loadtest.sh")
STANDINS = os.path.join(ROOT, "tests", "standins")


def env_with_standins():
    env = dict(os.environ)
    env["PATH"] = STANDINS + os.pathsep + env.get("PATH", "")
    return env


def run_script(args, env=None, timeout=35):
    p = subprocess.run([SCRIPT] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env if env is not None else env_with_standins(), timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


ROW = re.compile(r"^(lt\d+|total)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+\.\d\d)$")


def table(out):
    """{name: (sent, received, expected, missing, duplicates)} from the report."""
    rows = {}
    for line in out.splitlines():
        m = ROW.match(line.strip())
        if m:
            rows[m.group(1)] = tuple(int(x) for x in m.group(2, 3, 4, 5, 6))
    return rows


def test_clean_run_delivers_every_line_once(start_server):
    srv = start_server()
    code, out, err = run_script(["-u", "ws://%s:%d" % (srv.host, srv.port),
                                 "-r", "lt-room", "-c", "5", "-m", "10", "-i", "0.05"])
    assert code == 0, (code, out, err, srv.log())
    header = out.splitlines()[0]
    assert "lt-room" in header and "5 clients x 10 messages" in header, out
    assert "all 5 clients joined" in out, out
    assert re.search(r"^client\s+sent\s+received\s+expected\s+missing\s+duplicates\s+elapsed_s$",
                     out, re.M), out
    rows = table(out)
    assert sorted(rows) == ["lt1", "lt2", "lt3", "lt4", "lt5", "total"], out
    for k in range(1, 6):
        assert rows["lt%d" % k] == (10, 50, 50, 0, 0), out
    assert rows["total"] == (50, 250, 250, 0, 0), out
    assert "OK:" in out, out
    assert srv.alive()


def test_lines_dropped_by_flood_control_are_missing(start_server):
    # --rate-limit 1: a burst of 2 lines per client, the rest dropped with a
    # rate_limited error; the script waits its 10 s and reports them missing.
    srv = start_server("--rate-limit", "1")
    code, out, err = run_script(["-u", "ws://%s:%d" % (srv.host, srv.port),
                                 "-c", "2", "-m", "6", "-i", "0"])
    assert code == 1, (code, out, err)
    rows = table(out)
    sent, received, expected, missing, dups = rows["total"]
    assert sent == 12 and expected == 24 and dups == 0, out
    assert missing > 0 and received == expected - missing, out
    assert "rate_limited" in out and "--rate-limit 0" in out, out
    assert "FAILED" in out, out


def test_room_refused_by_server_fails_with_reason(start_server):
    srv = start_server()
    code, out, err = run_script(["-u", "ws://%s:%d" % (srv.host, srv.port),
                                 "-r", "bad*room", "-c", "3", "-m", "2"])
    assert code == 1, (code, out, err)
    assert "could not join room bad*room" in err, err
    assert "400" in err, err
    assert "room name" in err, err
    assert not table(out), out


def test_websocat_missing_from_path_exits_3(tmp_path):
    # PATH with bash and coreutils but no websocat anywhere in it.
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and os.path.abspath(d) != STANDINS and not os.path.exists(os.path.join(d, "websocat"))]
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(dirs) or str(tmp_path)
    if not shutil.which("bash", path=env["PATH"]):
        pytest.skip("a websocat is installed beside bash: no PATH has bash without websocat")
    code, out, err = run_script(["-c", "2"], env=env)
    assert code == 3, (code, out, err)
    assert "websocat not found in PATH" in err, err
    assert "github.com/vi/websocat/releases" in err and "cargo install websocat" in err, err


def test_help_exits_0_and_lists_options():
    for flag in ("-h", "--help"):
        code, out, err = run_script([flag])
        assert code == 0, (code, out, err)
        for opt in ("-u ", "-r ", "-c ", "-m ", "-i ", "--help", "--rate-limit 0", "websocat"):
            assert opt in out, "%s output lacks %r:\n%s" % (flag, opt, out)
        for default in ("ws://127.0.0.1:8080", "loadtest", "(default 10)", "(default 20)", "(default 0.1)"):
            assert default in out, "%s output lacks %r:\n%s" % (flag, default, out)


def test_bad_usage_exits_2():
    for args in (["-c", "0"], ["-c", "x"], ["-m", "-3"], ["-i", "fast"], ["-i", "1e3"],
                 ["-u", "http://127.0.0.1:8080"], ["-r"], ["--bogus"], ["extra"]):
        code, out, err = run_script(args)
        assert code == 2, (args, code, out, err)
        assert err.strip() and "--help" in err, (args, err)


def test_standin_refuses_options_it_does_not_implement():
    for args in (["-b", "ws://127.0.0.1:1/"], ["-t", "--ping-interval", "5", "ws://127.0.0.1:1/"],
                 ["ws://127.0.0.1:1/"], ["-t", "ws://127.0.0.1:1/", "extra"]):
        p = subprocess.run([os.path.join(STANDINS, "websocat")] + args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        assert p.returncode != 0, (args, p)
        assert b"stand-in" in p.stderr, (args, p.stderr)
