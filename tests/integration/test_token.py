"""`wshub token`: prints an HS256 connection token that an independent
implementation (Python's hmac and base64) verifies, with the claims asked for;
bad usage exits 2, an unreadable secret exits 1."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

from conftest import BINARY


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def token(*args):
    return subprocess.run([BINARY, "token"] + list(args), capture_output=True, text=True, timeout=10)


def test_token_verifies_and_carries_the_claims(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"s3cret-value\n")        # one trailing newline is not part of it
    r = token("--secret-file", str(secret), "--sub", "user-7", "--name", "Ann", "--rooms", "lobby,team-*",
              "--mod", "--ttl", "120")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    head, body, sig = tok.split(".")
    want = hmac.new(b"s3cret-value", (head + "." + body).encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(b64url_decode(sig), want), "the signature does not verify"
    assert json.loads(b64url_decode(head)) == {"alg": "HS256", "typ": "JWT"}
    claims = json.loads(b64url_decode(body))
    assert claims["sub"] == "user-7" and claims["name"] == "Ann" and claims["mod"] is True, claims
    assert claims["rooms"] == ["lobby", "team-*"], claims
    assert abs(claims["exp"] - (time.time() + 120)) < 5, claims


def test_token_defaults(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"k")
    r = token("--secret-file", str(secret), "--sub", "u", "--ttl", "0")
    assert r.returncode == 0, r.stderr
    claims = json.loads(b64url_decode(r.stdout.strip().split(".")[1]))
    assert set(claims) == {"sub", "iat"}, claims     # no expiry, every room, not a moderator


def test_token_usage_errors(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"k")
    for args in ([], ["--sub", "u"], ["--secret-file", str(secret)], ["--secret-file", str(secret), "--sub", ""],
                 ["--secret-file", str(secret), "--sub", "u", "--ttl", "-1"],
                 ["--secret-file", str(secret), "--sub", "u", "--bogus"]):
        r = token(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    for path in (str(empty), os.path.join(str(tmp_path), "missing")):
        r = token("--secret-file", path, "--sub", "u")
        assert r.returncode == 1 and "wshub token:" in r.stderr, r
