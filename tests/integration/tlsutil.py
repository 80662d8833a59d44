"""tlsutil: a throw-away PKI for the TLS tests, made with the openssl command
line in a temporary directory: a root CA, an intermediate CA it signs, and
server certificates the intermediate signs for localhost and 127.0.0.1
(subjectAltName). A server's certificate file holds the leaf and then the
intermediate (the chain wshub must send); clients trust only the root, so a
server that sent no chain would fail verification. Owns nothing but that
directory; standard library and the openssl binary only."""
import os
import shutil
import ssl
import subprocess
import tempfile

DAYS = "2"


def _openssl(*args, cwd):
    done = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, "openssl %s failed:\n%s%s" % (" ".join(args), done.stdout, done.stderr)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class PKI:
    """A root and an intermediate CA in `directory`; server(name) makes a leaf."""

    def __init__(self, directory):
        self.dir = directory
        self.root = os.path.join(directory, "root.pem")
        d = directory
        _write(os.path.join(d, "ca.ext"),
               "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
               "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=wshub test root", "-days", DAYS,
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=d)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "inter.key", "-out", "inter.csr", "-subj", "/CN=wshub test intermediate", cwd=d)
        _openssl("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
                 "-out", "inter.pem", "-days", DAYS, "-extfile", "ca.ext", cwd=d)

    def server(self, name, cn=None):
        """Makes NAME.pem (leaf + intermediate) and NAME.key; returns (cert, key) paths."""
        d = self.dir
        _write(os.path.join(d, name + ".ext"),
               "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
               "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
               "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + (cn or name), cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "inter.pem", "-CAkey", "inter.key",
                 "-CAcreateserial", "-out", name + ".leaf", "-days", DAYS, "-extfile", name + ".ext", cwd=d)
        cert = os.path.join(d, name + ".pem")
        with open(os.path.join(d, name + ".leaf")) as leaf, open(os.path.join(d, "inter.pem")) as inter:
            _write(cert, leaf.read() + inter.read())
        return cert, os.path.join(d, name + ".key")

    def client_context(self, **kw):
        """An SSLContext that trusts the root (verifying hostnames); kw sets
        attributes such as maximum_version."""
        ctx = ssl.create_default_context(cafile=self.root)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx


class ServerTLS:
    """What a test server needs: its certificate and key files, and a client
    context that trusts them (given to conftest's start_server as tls=)."""

    def __init__(self, pki, cert, key):
        self.pki = pki
        self.cert = cert
        self.key = key

    def args(self):
        return ["--tls-cert", self.cert, "--tls-key", self.key]

    def client_context(self, **kw):
        return self.pki.client_context(**kw)


def make_pki():
    """(PKI, ServerTLS for a leaf named 'server', cleanup function)."""
    d = tempfile.mkdtemp(prefix="wshub-pki-")
    pki = PKI(d)
    cert, key = pki.server("server", cn="localhost")
    return pki, ServerTLS(pki, cert, key), lambda: shutil.rmtree(d, ignore_errors=True)
