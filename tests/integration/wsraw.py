"""wsraw: a small raw RFC 6455 client on plain sockets, used by the conformance
tests (test_conformance.py). It owns the client side of the opening handshake,
building frames with any FIN/RSV/opcode/mask/length encoding (valid or not),
sending raw bytes in chunks with optional delays (also from a background thread,
so big messages can be sent while the echo is read), receiving server frames
with a timeout (checking that they are well-formed: unmasked, RSV 0, known
opcodes, no fragmented or oversized control frames), reassembling fragmented
server messages, and detecting the TCP close. Over TLS too (connect with an
ssl.SSLContext): each write is then one or more TLS records. With `extensions=`
it sends a Sec-WebSocket-Extensions offer; when the server accepts
permessage-deflate, RSV1 is allowed on the first frame of a server message and
the message is marked `compressed` (inflating it is the caller's business).
Standard library only.
"""
import base64
import hashlib
import os
import select
import socket
import struct
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

DATA_OPCODES = (OP_TEXT, OP_BINARY)
CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

OPNAMES = {OP_CONT: "cont", OP_TEXT: "text", OP_BINARY: "binary",
           OP_CLOSE: "close", OP_PING: "ping", OP_PONG: "pong"}


class ConnectionClosed(Exception):
    """The server closed the TCP connection (EOF or reset) before what we waited for."""


class ServerProtocolError(AssertionError):
    """The server sent something that is not a valid RFC 6455 server frame."""


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (str)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def mask_bytes(data, key):
    """XOR data with the 4-byte key repeated (fast for large payloads)."""
    n = len(data)
    if n == 0:
        return b""
    k = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None,
                length=None, len_form=None):
    """Bytes of one frame.

    opcode: 0..15 (any value, reserved ones included); rsv: 3-bit value
    (4 = RSV1, 2 = RSV2, 1 = RSV3); mask: set the MASK bit and mask the payload
    (key: 4 bytes, random if None); length: the payload length written in the
    header (defaults to len(payload); may lie); len_form: None for the minimal
    encoding, or 7, 16, 64 to force that length field size.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if length is None:
        length = len(payload)
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if len_form is None:
        len_form = 7 if length <= 125 else (16 if length <= 0xFFFF else 64)
    if len_form == 7:
        head = struct.pack("!BB", b0, mbit | length)
    elif len_form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, length)
    elif len_form == 64:
        head = struct.pack("!BBQ", b0, mbit | 127, length)
    else:
        raise ValueError("len_form must be None, 7, 16 or 64")
    if mask:
        if key is None:
            key = os.urandom(4)
        return head + bytes(key) + mask_bytes(payload, key)
    return head + bytes(payload)


def close_payload(code=None, reason=b""):
    """Payload of a close frame: empty when code is None."""
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    """One frame as received from the server."""

    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.masked = masked
        self.payload = payload

    def __repr__(self):
        return "Frame(fin=%d rsv=%d op=%s len=%d %r)" % (
            self.fin, self.rsv, OPNAMES.get(self.opcode, self.opcode),
            len(self.payload), self.payload[:40])


class Message:
    """A whole data message (reassembled) or a control frame from the server."""

    def __init__(self, opcode, data, frames=1, compressed=False):
        self.opcode = opcode
        self.data = data
        self.frames = frames
        self.compressed = compressed

    @property
    def is_close(self):
        return self.opcode == OP_CLOSE

    @property
    def close_code(self):
        """Status code of a close frame, None if its payload is empty."""
        assert self.opcode == OP_CLOSE
        if len(self.data) == 0:
            return None
        if len(self.data) == 1:
            raise ServerProtocolError("server close frame with a 1-byte payload: %r" % self.data)
        return struct.unpack("!H", self.data[:2])[0]

    @property
    def close_reason(self):
        assert self.opcode == OP_CLOSE
        return self.data[2:]

    def __repr__(self):
        if self.opcode == OP_CLOSE:
            return "Message(close %r)" % (self.data,)
        return "Message(%s len=%d %r)" % (OPNAMES.get(self.opcode, self.opcode),
                                           len(self.data), self.data[:40])


class Sender(threading.Thread):
    """Sends bytes in the background (so the caller can read the echo at the
    same time); .error holds the exception, if any, after join()."""

    def __init__(self, sock, data, chunk=None, delay=0.0):
        super().__init__(daemon=True)
        self.sock = sock
        self.data = data
        self.chunk = chunk
        self.delay = delay
        self.error = None

    def run(self):
        try:
            send_chunks(self.sock, self.data, self.chunk, self.delay)
        except OSError as e:
            self.error = e


def send_chunks(sock, data, chunk=None, delay=0.0):
    """sendall data, in pieces of `chunk` bytes with `delay` s between them."""
    if not chunk:
        sock.sendall(data)
        return
    mv = memoryview(data)
    for i in range(0, len(data), chunk):
        if delay and i:
            time.sleep(delay)
        sock.sendall(mv[i:i + chunk])


class WSClient:
    """A raw WebSocket client connection."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.partial_op = None      # opcode of an unfinished server message
        self.partial = []           # its payload chunks
        self.partial_frames = 0
        self.partial_compressed = False
        self.response_head = None
        self.deflate = False        # the server accepted permessage-deflate

    # ---- connection set-up -------------------------------------------------

    @classmethod
    def connect(cls, host, port, path="/echo", timeout=5.0, handshake=True, tls=None, extensions=None):
        """tls: an ssl.SSLContext to speak TLS with (wss), or None; extensions: the
        Sec-WebSocket-Extensions offer (see handshake), or None."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=host)
        sock.settimeout(60)   # bounds blocking sends; reads use select()
        c = cls(sock)
        if handshake:
            c.handshake(host, port, path, timeout=timeout, extensions=extensions)
        return c

    def handshake(self, host, port, path="/echo", timeout=5.0, extensions=None):
        """Sends a valid upgrade request (with a Sec-WebSocket-Extensions
        header per item of `extensions`, a str or a list); checks the 101 and
        the accept key. Returns the response headers (lower-case names)."""
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        if isinstance(extensions, str):
            extensions = [extensions]
        ext = "".join("Sec-WebSocket-Extensions: %s\r\n" % e for e in extensions or ())
        req = ("GET %s HTTP/1.1\r\n"
               "Host: %s:%d\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "%s"
               "\r\n") % (path, host, port, key, ext)
        self.sock.sendall(req.encode("ascii"))
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise ConnectionClosed("closed during handshake; got %r" % bytes(self.buf))
            if not self._fill(deadline):
                raise TimeoutError("no complete handshake response; got %r" % bytes(self.buf))
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end]
        self.response_head = head
        lines = head.split("\r\n")
        status = lines[0].split(" ", 2)
        assert len(status) >= 2 and status[0] == "HTTP/1.1" and status[1] == "101", \
            "handshake not accepted: %r" % head
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers.get("upgrade", "").lower() == "websocket", head
        assert "upgrade" in [t.strip().lower() for t in headers.get("connection", "").split(",")], head
        assert headers.get("sec-websocket-accept") == accept_key(key), \
            "bad Sec-WebSocket-Accept in %r" % head
        accepted = headers.get("sec-websocket-extensions", "")
        self.deflate = accepted.split(";")[0].strip() == "permessage-deflate"
        return headers

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- sending -----------------------------------------------------------

    def send_raw(self, data, chunk=None, delay=0.0, ignore_errors=False):
        """Writes raw bytes, optionally in chunks of `chunk` with `delay` between."""
        try:
            send_chunks(self.sock, data, chunk, delay)
        except OSError:
            if not ignore_errors:
                raise

    def send_frame(self, opcode, payload=b"", chunk=None, delay=0.0, ignore_errors=False, **kw):
        """Builds a frame (see build_frame) and writes it."""
        self.send_raw(build_frame(opcode, payload, **kw), chunk, delay, ignore_errors)

    def send_text(self, data, **kw):
        self.send_frame(OP_TEXT, data, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_ping(self, data=b"", **kw):
        self.send_frame(OP_PING, data, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def send_background(self, data, chunk=None, delay=0.0):
        """Starts a Sender thread writing data; join() it and check .error."""
        t = Sender(self.sock, data, chunk, delay)
        t.start()
        return t

    # ---- receiving ---------------------------------------------------------

    def _fill(self, deadline):
        """Reads what is available before deadline into buf. Returns False on
        timeout; sets eof on EOF or reset."""
        if self.eof:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        pending = getattr(self.sock, "pending", None)   # TLS: decrypted bytes select() cannot see
        r, _, _ = select.select([self.sock], [], [], 0 if pending and pending() else remaining)
        if not r and not (pending and pending()):
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.eof = True
            self.reset = True
            return True
        except socket.timeout:
            return False
        if not data:
            self.eof = True
        else:
            self.buf += data
        return True

    def _parse(self):
        """A whole frame from the start of buf, or None."""
        b = self.buf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack_from("!H", b, 2)[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack_from("!Q", b, 2)[0]
            pos = 10
        masked = bool(b1 & 0x80)
        if masked:
            pos += 4
        if len(b) < pos + n:
            return None
        fin = bool(b0 & 0x80)
        rsv = (b0 >> 4) & 7
        opcode = b0 & 0xF
        payload = bytes(b[pos:pos + n])
        if masked:
            payload = mask_bytes(payload, b[pos - 4:pos])
        del b[:pos + n]
        f = Frame(fin, rsv, opcode, masked, payload)
        if masked:
            raise ServerProtocolError("server sent a masked frame: %r" % f)
        if rsv and not (self.deflate and rsv == 4 and opcode in DATA_OPCODES):
            raise ServerProtocolError("server sent RSV bits %s: %r" % (
                "where permessage-deflate allows none" if self.deflate else "without an extension", f))
        if opcode not in DATA_OPCODES + CONTROL_OPCODES + (OP_CONT,):
            raise ServerProtocolError("server sent a reserved opcode: %r" % f)
        if opcode in CONTROL_OPCODES and (not fin or n > 125):
            raise ServerProtocolError("server sent a fragmented or oversized control frame: %r" % f)
        return f

    def recv_frame(self, timeout=5.0):
        """The next frame. Raises TimeoutError when nothing whole arrives in
        time, ConnectionClosed when the TCP connection ends first."""
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                return f
            if self.eof:
                raise ConnectionClosed("TCP closed%s with %d unparsed bytes %r" % (
                    " (reset)" if self.reset else "", len(self.buf), bytes(self.buf[:40])))
            if not self._fill(deadline):
                raise TimeoutError("no frame within %.1f s (%d bytes pending)" % (timeout, len(self.buf)))

    def recv_message(self, timeout=5.0):
        """The next whole data message (fragments reassembled) or control frame.
        A control frame between fragments is returned on its own and the
        unfinished message is kept."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if f.opcode in CONTROL_OPCODES:
                return Message(f.opcode, f.payload)
            if f.opcode in DATA_OPCODES:
                if self.partial_op is not None:
                    raise ServerProtocolError("server started a new message inside a fragmented one: %r" % f)
                if f.fin:
                    return Message(f.opcode, f.payload, compressed=bool(f.rsv))
                self.partial_op = f.opcode
                self.partial = [f.payload]
                self.partial_frames = 1
                self.partial_compressed = bool(f.rsv)
                continue
            # continuation
            if self.partial_op is None:
                raise ServerProtocolError("server sent a continuation frame without a message: %r" % f)
            self.partial.append(f.payload)
            self.partial_frames += 1
            if f.fin:
                m = Message(self.partial_op, b"".join(self.partial), self.partial_frames,
                            self.partial_compressed)
                self.partial_op = None
                self.partial = []
                self.partial_frames = 0
                return m

    def expect_close(self, timeout=5.0):
        """Reads until a close frame. Returns (messages before it, close Message).
        Raises ConnectionClosed if TCP closes with no close frame, TimeoutError
        if nothing closes in time."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            m = self.recv_message(max(0.0, deadline - time.monotonic()))
            if m.is_close:
                return before, m
            before.append(m)

    def wait_tcp_close(self, timeout=5.0):
        """Waits for the server to close TCP. Returns the list of frames that
        arrived first (should normally be empty). Raises TimeoutError when the
        connection is still open after timeout."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            try:
                frames.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
            except ConnectionClosed:
                return frames
            except TimeoutError:
                raise TimeoutError("server did not close the TCP connection within %.1f s" % timeout)
