"""The RFC 6455 conformance suite of test_conformance.py again, over wss://:
every test function of that file, collected a second time here with
start_server (and so the server fixture built on it) overridden to start
wshub with a test certificate. The raw client (wsraw) then speaks TLS, so
frames, chops, closes and the handshake timeout all go through the TLS
transport. To keep the run short, a parametrized test keeps a spread sample
of each parameter's values (at most SAMPLE of them: the first, the last and
some between): the UTF-8 vector table, for one, is the validator's business,
not the transport's. Owns only this selection and the override."""
import inspect
import math

import pytest

import test_conformance
from tlsutil import make_pki

SAMPLE = 3


def _spread(values, n):
    """At most n of values, evenly spread, the first and the last included."""
    if len(values) <= n:
        return list(range(len(values)))
    step = (len(values) - 1) / (n - 1)
    return sorted({math.floor(i * step + 0.5) for i in range(n)})


def _sampled(fn):
    """fn itself, with each parametrize mark cut to a spread sample of its values."""
    marks = []
    for m in getattr(fn, "pytestmark", []):
        if m.name == "parametrize":
            names, values = m.args[:2]
            keep = _spread(list(values), SAMPLE)
            kwargs = dict(m.kwargs)
            if isinstance(kwargs.get("ids"), (list, tuple)):
                kwargs["ids"] = [kwargs["ids"][i] for i in keep]
            m = pytest.mark.parametrize(names, [values[i] for i in keep], **kwargs).mark
        marks.append(m)
    copy = type(fn)(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.pytestmark = marks
    return copy


for _name, _fn in inspect.getmembers(test_conformance, inspect.isfunction):
    if _name.startswith("test_") and _fn.__module__ == test_conformance.__name__:
        globals()[_name] = _sampled(_fn)


@pytest.fixture(scope="module")
def server_tls():
    pki, tls, cleanup = make_pki()
    yield tls
    cleanup()


@pytest.fixture
def start_server(start_server, server_tls):
    """conftest's start_server, always with TLS."""
    def start(*args, **kw):
        kw.setdefault("tls", server_tls)
        return start_server(*args, **kw)
    return start
