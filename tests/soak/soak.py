#!/usr/bin/python3
"""Soak client for wshub (run by scripts/soak.sh against a server it started).

For --seconds, keeps about --clients chat clients connected to --rooms rooms:
each joins, chats (text lines with unique ids) at random intervals, and after
a random lifetime either leaves with a close handshake or is killed with a RST
(SO_LINGER 0); a replacement joins in its place. Two extra rooms carry a
binary fire-hose (16 KiB frames with sequence numbers) to a few watchers, and
now and then a slow consumer (4 KiB receive buffer, never reads) joins one of
them; it must be cut by --max-backlog.

Alongside them, attackers (each bounded in count and rate; --no-attacks turns
them off), who may only hurt themselves:
- oversized binary: joins a busy chat room and sends the header of a 5 MiB
  binary message and 4 KiB of it; must be closed with 1009, alone;
- mid-message stallers: announce a 16 MiB text message in a busy chat room
  (one frame, a first fragment, or a continuation after a first fragment of
  2000 bytes), send 1 KiB and stall; must be closed with 1009 at once;
- tiny-frame flooders: join a busy chat room, send a marker line, thousands of
  empty binary frames in bursts, and a second marker line; every member that
  got both markers must have got exactly that many empty frames between them,
  and the flooder its own back; a second flooder that never reads floods a
  room of two watchers (it may be cut as a slow consumer, or not; the
  watchers must all count the same frames before its end or its leave);
- same-nick joiners: --same-nick connections join one room with ?nick=x at
  once; every one is admitted with a distinct nick x, x<digits>; two
  observers see every join and leave; then half leave politely, half with a
  RST;
- history stuffers: lines of --max-line control characters (\x01, six bytes
  each once escaped in JSON) into a stream of fresh rooms, about
  --stuff-factor x --history-total-bytes of history offered; /stats
  history_bytes must stay within --history-total-bytes, and a revisited room's
  history must be the newest part of what was said there.

Every client checks what it receives as it arrives (nothing is stored per
delivery, so hours of soak cost no client memory):
- message events: seq counts up by one from the last seq of the welcome's
  history (no loss, no duplicate, no reordering); the text of a seq is the same
  for every client of the room (one order for all); a text appears under one
  seq only; a client gets back every line it sent, in order;
- join/leave events: every observer sees them at the same place in the room's
  message sequence; a joiner's welcome history ends there; a client that left
  with a close handshake got exactly the messages before its leave;
- the welcome's history agrees with what members saw;
- binary fire-hose: sequence numbers count up by one;
- at the end (sending stopped, deliveries quiet) every remaining client has
  the room's last seq, and nothing it sent is missing;
- the attackers' outcomes above; /stats counts exactly the slow consumers and
  1009 closes seen, and no protocol_error or rate_limit closes.

Then everything closes and the server's descriptors must return to their
baseline and its RSS to within --rss-slack-mib of the start, plus
--history-total-bytes when the stuffers ran (the history they leave in empty
rooms is kept, by design, up to that bound).
Exit status: 0 when no violation, 1 otherwise. Standard library only.
"""
import argparse
import asyncio
import base64
import json
import os
import random
import re
import socket
import struct
import sys
import time

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
FILLERS = ["hello", "caf\u00e9 \u2615", "quote \" and \\ back", "tab\there", "\U0001F600 emoji",
           "//slash", "<b>html</b>", "a" * 60]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User plus system CPU time of a process, in seconds."""
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(op, payload):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | op, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | op, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | op, 0x80 | 127, n)
    key = os.urandom(4)
    return head + key + mask(payload, key)


def frame_head(b0, length):
    """A masked client frame header (first byte b0) announcing length bytes, and its key."""
    key = os.urandom(4)
    if length < 126:
        head = struct.pack("!BB", b0, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, length)
    return head + key, key


def empty_binaries(n):
    """n masked empty binary frames (6 bytes each)."""
    keys = os.urandom(4 * n)
    return b"".join(b"\x82\x80" + keys[i:i + 4] for i in range(0, 4 * n, 4))


# A run of empty binary frames from the server (unmasked, so 2 bytes each):
# counted in one step instead of frame by frame (a flood brings thousands).
EMPTY_RUN = re.compile(rb"(?:\x82\x00)+")


def tkey(text):
    """What a room's log keeps of a text: the text, or for a long one (a
    history stuffer's 4 KiB) its length, hash and start."""
    return text if len(text) <= 200 else (len(text), hash(text), text[:24])


class Room:
    def __init__(self, name):
        self.name = name
        self.log = {}          # seq -> tkey(text)
        self.text_seq = {}     # tkey(text) -> seq
        self.maxseq = 0
        self.join_pos = {}     # nick -> last seq before its join event (as observed)
        self.leave_pos = {}
        self.join_claim = {}   # nick -> last seq of its welcome history
        self.leave_claim = {}  # nick -> last seq it received before its close handshake
        self.bin_sent = 0      # fire-hose frames sent


class Soak:
    def __init__(self, args):
        self.a = args
        self.violations = []
        self.nviol = 0
        self.kinds = {}                # violation, digits as N -> count
        self.rooms = {}
        self.stats = dict(connects=0, graceful=0, killed=0, msgs_sent=0, deliveries=0,
                          own_checked=0, events_checked=0, history_checked=0, bin_deliveries=0,
                          positions_checked=0, final_checked=0, peak_clients=0, handshake_fail=0,
                          rtt_max=0.0, rtt_max_at=0.0, rtt_over_1s=0, lag_max=0.0, lag_max_at=0.0)
        # attackers: what they did and what came of it
        self.att = dict(bigbin=0, bigbin_1009=0, bigbin_slowest=0.0,
                        stall=0, stall_1009=0, stall_slowest=0.0, stall_kinds=[0, 0, 0],
                        flood=0, flood_frames=0, flood_deliveries=0, flood_checked=0, flood_agreed=0,
                        selfflood=0, selfflood_frames=0, selfflood_cut_1008=0, selfflood_cut_eof=0,
                        selfflood_not_cut=0,
                        samenick_rounds=0, samenick_joins=0, samenick_slowest=0.0, samenick_events=0,
                        stuff_rooms=0, stuff_lines=0, stuff_revisits=0, stuff_revisit_entries=0,
                        hist_samples=0, hist_peak=0)
        self.flood_sent = {}   # flood id -> empty frames sent between its markers
        self.flood_nick = {}   # flooder nick -> flood id (for a cut flooder's leave)
        self.flood_at_leave = {}  # flood id -> empty frames members saw before the flooder's leave
        self.cut_flooders = []    # self-flooders the server cut
        self.next_flood = 0
        self.live = set()
        self.stopping = False
        self.last_delivery = time.monotonic()
        self.next_id = 0
        self.t0 = time.monotonic()

    def violation(self, msg):
        self.nviol += 1
        kind = re.sub(r"[0-9]+", "N", msg)[:100]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if self.kinds[kind] <= 5 and len(self.violations) < 30:   # a few of each kind
            self.violations.append(msg)

    def room(self, name):
        r = self.rooms.get(name)
        if r is None:
            r = self.rooms[name] = Room(name)
        return r

    def agree(self, table, nick, pos, what, room):
        old = table.get(nick)
        if old is None:
            table[nick] = pos
        elif old != pos:
            self.violation("room %s: %s of %s seen at seq %d and at seq %d" % (room.name, what, nick, old, pos))
        else:
            self.stats["positions_checked"] += 1


class Client(asyncio.Protocol):
    """One chat client on a raw socket. kind: 'chat', 'watcher', 'blaster', 'sink', or an attacker's."""

    def __init__(self, soak, room, kind, nick=None):
        self.s = soak
        self.room = soak.room(room)
        self.kind = kind
        soak.next_id += 1
        self.cid = soak.next_id
        self.nick = nick or "c%d" % self.cid
        self.asked_nick = nick      # a nick the server may suffix (same-nick joiners)
        self.buf = bytearray()
        self.transport = None
        self.opened = False
        self.welcome = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.last = None           # last message seq received
        self.own = []              # texts sent and not yet seen back (FIFO)
        self.own_t = []            # when each was sent
        self.nsent = 0
        self.bin_last = None
        self.bin_empty = 0         # empty binary frames received (floods)
        self.flood_from = {}       # flood id -> bin_empty at its start marker
        self.presence = None       # {"join": n, "leave": n} when counted (observers)
        self.leaving = False       # our close frame is out
        self.close_code = None     # the server's close frame
        self.close_at = None
        self.expect = None         # close codes expected from the server (attackers)
        self.pause_at_open = kind in ("sink", "selfflood")   # stops reading after the 101
        self.light = kind == "samenick"  # stops reading after its welcome
        self.discard = False       # drops whatever arrives (a light client leaving)
        self.frag = None

    # ---- asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws/%s?nick=%s HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (self.room.name, self.nick, key))
        transport.write(req.encode())

    def data_received(self, data):
        if self.discard:
            return
        self.buf += data
        if not self.opened:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.s.violation("%s: handshake refused: %r" % (self.nick, bytes(self.buf[:80])))
                self.s.stats["handshake_fail"] += 1
                self.transport.abort()
                return
            del self.buf[:end + 4]
            self.opened = True
            if self.pause_at_open and not self.leaving:
                # never reads again (until the end of the soak, to see how it ended)
                self.transport.pause_reading()
                if not self.welcome.done():
                    self.welcome.set_result(True)
                return
        self._frames()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if not self.leaving and not self.s.stopping and not self.pause_at_open and not self.done.done():
            self.s.violation("%s (%s in %s): connection lost unexpectedly (close code %s, %s)"
                             % (self.nick, self.kind, self.room.name, self.close_code, exc))
        if not self.welcome.done():
            self.welcome.set_result(False)
        if not self.done.done():
            self.done.set_result(True)

    # ---- frames
    def _frames(self):
        b = self.buf
        pos = 0
        n = len(b)
        while n - pos >= 2:
            b0, b1 = b[pos], b[pos + 1]
            if b0 == 0x82 and b1 == 0:
                m = EMPTY_RUN.match(b, pos)
                self._empty_binaries((m.end() - pos) // 2)
                pos = m.end()
                continue
            ln = b1 & 0x7F
            h = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (b[pos + 2] << 8) | b[pos + 3]
                h = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(b[pos + 2:pos + 10], "big")
                h = 10
            if b1 & 0x80:
                self.s.violation("%s: masked frame from the server" % self.nick)
                h += 4
            if n - pos < h + ln:
                break
            payload = bytes(b[pos + h:pos + h + ln])
            pos += h + ln
            op = b0 & 0x0F
            fin = b0 & 0x80
            if op == OP_CONT or not fin and op in (OP_TEXT, OP_BINARY):
                if op != OP_CONT:
                    self.frag = [op, payload]
                    continue
                if self.frag is None:
                    self.s.violation("%s: continuation without a message" % self.nick)
                    continue
                self.frag[1] += payload
                if not fin:
                    continue
                op, payload = self.frag
                self.frag = None
            self._message(op, payload)
            if self.discard:
                pos = n
                break
        del b[:pos]

    def _empty_binaries(self, k):
        s = self.s
        s.last_delivery = time.monotonic()
        self.bin_empty += k
        s.att["flood_deliveries"] += k
        if self.kind in ("watcher", "blaster"):
            s.violation("%s in %s: %d empty binary frames in a fire-hose room" % (self.nick, self.room.name, k))

    def _message(self, op, payload):
        s = self.s
        if op == OP_TEXT:
            s.last_delivery = time.monotonic()
            self._event(json.loads(payload))
        elif op == OP_BINARY:
            s.last_delivery = time.monotonic()
            if len(payload) < 8:
                s.violation("%s in %s: binary message of %d bytes" % (self.nick, self.room.name, len(payload)))
                return
            seq = struct.unpack_from("!Q", payload)[0]
            if self.bin_last is not None and seq != self.bin_last + 1:
                s.violation("%s in %s: binary seq %d after %d" % (self.nick, self.room.name, seq, self.bin_last))
            self.bin_last = seq
            s.stats["bin_deliveries"] += 1
        elif op == OP_PING:
            if not self.leaving:
                self.transport.write(frame(OP_PONG, payload))
        elif op == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self.close_at = time.monotonic()
            if self.expect is not None and self.close_code in self.expect:
                # an attacker closed as expected: answer, and drop the connection
                self.transport.write(frame(OP_CLOSE, payload[:2]))
            elif not self.leaving:
                s.violation("%s (%s in %s): server closed it with %s %r"
                            % (self.nick, self.kind, self.room.name, self.close_code, payload[2:]))
            else:
                self.room.leave_claim[self.nick] = self.last
            self.transport.close()
            if not self.done.done():
                self.done.set_result(True)

    def _flood_marker(self, text):
        s = self.s
        fid, what = text.split()[1:3]
        fid = int(fid)
        if what == "start":
            self.flood_from[fid] = self.bin_empty
            return
        start = self.flood_from.pop(fid, None)
        if start is None:
            return                     # joined after the start: saw part of it
        got, sent = self.bin_empty - start, s.flood_sent.get(fid)
        if got != sent:
            s.violation("%s in %s: %d empty binary frames between the markers of flood %d, %s sent"
                        % (self.nick, self.room.name, got, fid, sent))
        else:
            s.att["flood_checked"] += 1

    def _event(self, ev):
        s, room = self.s, self.room
        t = ev.get("type")
        if ev.get("room") != room.name:
            s.violation("%s: event for room %r in %s" % (self.nick, ev.get("room"), room.name))
        if t == "message":
            seq, text = ev["seq"], ev["text"]
            if self.last is None:
                s.violation("%s: message before welcome" % self.nick)
                return
            if seq != self.last + 1:
                s.violation("%s in %s: seq %d after %d (%s)" % (self.nick, room.name, seq, self.last,
                                                                 "duplicate/reordered" if seq <= self.last else "lost"))
            self.last = seq
            s.stats["deliveries"] += 1
            key = tkey(text)
            known = room.log.get(seq)
            if known is None:
                room.log[seq] = key
                other = room.text_seq.get(key)
                if other is not None and other != seq:
                    s.violation("room %s: text %r at seq %d and %d (duplicate)" % (room.name, key, other, seq))
                room.text_seq[key] = seq
                if seq > room.maxseq:
                    room.maxseq = seq
            elif known != key:
                s.violation("room %s seq %d: %r for %s, %r for others (different order)"
                            % (room.name, seq, key, self.nick, known))
            if text.startswith("FLOOD "):
                self._flood_marker(text)
            if ev.get("nick") == self.nick:
                if not self.own:
                    s.violation("%s: got back a line it did not send: %r" % (self.nick, key))
                elif self.own[0] != text:
                    s.violation("%s: sent %r next, got back %r" % (self.nick, tkey(self.own[0]), key))
                else:
                    self.own.pop(0)
                    rtt = time.monotonic() - self.own_t.pop(0)
                    if self.kind == "chat":    # (an attacker may read late on purpose)
                        if rtt > s.stats["rtt_max"]:
                            s.stats["rtt_max"] = rtt
                            s.stats["rtt_max_at"] = time.monotonic() - s.t0
                        if rtt > 1.0:
                            s.stats["rtt_over_1s"] += 1
                    s.stats["own_checked"] += 1
        elif t == "welcome":
            hist = ev.get("history", [])
            last = 0
            for h in hist:
                seq = h["seq"]
                if last and seq != last + 1:
                    s.violation("%s: welcome history seq %d after %d" % (self.nick, seq, last))
                last = seq
                known = room.log.get(seq)
                if known is not None and known != tkey(h["text"]):
                    s.violation("room %s: history seq %d is %r, members saw %r"
                                % (room.name, seq, tkey(h["text"]), known))
                s.stats["history_checked"] += 1
            if len(hist) > s.a.history:
                s.violation("%s: welcome history of %d entries, --history is %d" % (self.nick, len(hist), s.a.history))
            wseq = ev.get("seq")     # the room's last message (a server with resume says it)
            if wseq is not None:
                if hist and last != wseq:
                    s.violation("%s: welcome history ends at seq %d, its seq is %d" % (self.nick, last, wseq))
                last = wseq
            if self.asked_nick is not None:
                self.nick = ev.get("nick")     # the server's choice; checked by the same-nick round
            elif ev.get("nick") != self.nick:
                s.violation("%s: welcomed as %r" % (self.nick, ev.get("nick")))
            self.last = last
            self.hist_len = len(hist)
            self.last_hist = hist[-1]["seq"] if hist else None
            room.join_claim[self.nick] = last
            if self.light:
                self.discard = True
                self.transport.pause_reading()
            if not self.welcome.done():
                self.welcome.set_result(True)
        elif t in ("join", "leave"):
            if self.last is None:
                s.violation("%s: %s before welcome" % (self.nick, t))
                return
            s.agree(room.join_pos if t == "join" else room.leave_pos, ev["nick"], self.last, t, room)
            s.stats["events_checked"] += 1
            if self.presence is not None:
                self.presence[t] += 1
            if t == "leave" and self.flood_from:
                fid = s.flood_nick.get(ev["nick"])
                if fid is not None and fid in self.flood_from:
                    # a flooder gone before its end marker: all members saw the same frames
                    got = self.bin_empty - self.flood_from.pop(fid)
                    old = s.flood_at_leave.setdefault(fid, got)
                    if old != got:
                        s.violation("%s in %s: %d empty frames of flood %d before the flooder left, others %d"
                                    % (self.nick, room.name, got, fid, old))
                    else:
                        s.att["flood_agreed"] += 1
        elif t == "error":
            s.violation("%s: error event %r" % (self.nick, ev))

    # ---- actions
    def send_line(self, text=None):
        self.nsent += 1
        if text is None:
            text = "%s:%d %s" % (self.nick, self.nsent, random.choice(FILLERS))
        self.own.append(text)
        self.own_t.append(time.monotonic())
        self.transport.write(frame(OP_TEXT, text.encode()))
        self.s.stats["msgs_sent"] += 1

    def leave(self):
        self.leaving = True
        self.transport.write(frame(OP_CLOSE, struct.pack("!H", 1000)))

    def kill(self):
        self.leaving = True
        sock = self.transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.transport.abort()


async def open_client(soak, room, kind, rcvbuf=None, nick=None):
    loop = asyncio.get_running_loop()
    c = Client(soak, room, kind, nick)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (soak.a.host, soak.a.port)), 10)
        await loop.create_connection(lambda: c, sock=sock)
        ok = await asyncio.wait_for(c.welcome, 15)
    except (OSError, asyncio.TimeoutError) as e:
        soak.violation("%s (%s): could not join %s: %r" % (c.nick, kind, room, e))
        sock.close()
        return None
    if not ok:
        soak.violation("%s (%s): closed before its welcome" % (c.nick, kind))
        return None
    soak.stats["connects"] += 1
    return c


async def chat_client(soak, room, stop):
    """Joins, chats, and leaves gracefully or is killed; at the end stays."""
    a = soak.a
    c = await open_client(soak, room, "chat")
    if c is None:
        return
    soak.live.add(c)
    soak.stats["peak_clients"] = max(soak.stats["peak_clients"], len(soak.live))
    end = time.monotonic() + random.uniform(a.min_life, a.max_life)
    while not stop.is_set() and not c.done.done():
        wait = min(random.expovariate(1.0 / a.msg_interval), end - time.monotonic())
        if wait > 0:
            try:
                await asyncio.wait_for(stop.wait(), wait)
                break
            except asyncio.TimeoutError:
                pass
        if time.monotonic() >= end:
            break
        c.send_line()
    if stop.is_set() or c.done.done():
        return                       # stays for the final check (or already failed)
    soak.live.discard(c)
    if random.random() < a.kill_ratio:
        c.kill()
        soak.stats["killed"] += 1
    else:
        c.leave()
        try:
            await asyncio.wait_for(c.done, 10)
        except asyncio.TimeoutError:
            soak.violation("%s: no close frame within 10 s of its close" % c.nick)
            c.transport.abort()
            return
        soak.stats["graceful"] += 1
        if c.own:
            soak.violation("%s: %d lines it sent never came back: %r" % (c.nick, len(c.own), c.own[:3]))


async def population(soak, stop, started):
    """Keeps about --clients chat clients, ramping up at --ramp per second."""
    a = soak.a
    tasks = set()
    names = ["room%d" % i for i in range(a.rooms)]
    while not stop.is_set():
        tasks = {t for t in tasks if not t.done()}
        want = a.clients - len(tasks)
        n = min(want, max(1, a.ramp // 10))
        for _ in range(n):
            tasks.add(asyncio.ensure_future(chat_client(soak, random.choice(names), stop)))
        if len(tasks) >= a.clients and not started.is_set():
            started.set()
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except asyncio.TimeoutError:
            pass
    return tasks


async def firehose(soak, stop, room, sinks, n_sinks, t0):
    """A room with watchers, a blaster of binary frames, and slow consumers."""
    a = soak.a
    watchers = []
    for _ in range(3):
        w = await open_client(soak, room, "watcher")
        if w:
            watchers.append(w)
    blaster = await open_client(soak, room, "blaster")
    if blaster is None:
        return watchers
    watchers.append(blaster)
    r = soak.room(room)
    payload = os.urandom(a.blast_size - 8)
    next_sink = time.monotonic() + 3
    spacing = max(3.0, (a.seconds - 20) / max(1, n_sinks))
    period = 1.0 / a.blast_rate
    while not stop.is_set():
        blaster.transport.write(frame(OP_BINARY, struct.pack("!Q", r.bin_sent) + payload))
        r.bin_sent += 1
        now = time.monotonic()
        if len(sinks[room]) < n_sinks and now >= next_sink and now - t0 < a.seconds - 15:
            sk = await open_client(soak, room, "sink", rcvbuf=4096)
            if sk:
                sinks[room].append(sk)
            next_sink = now + spacing
        try:
            await asyncio.wait_for(stop.wait(), period)
        except asyncio.TimeoutError:
            pass
    return watchers


async def fetch_stats(a):
    r, w = await asyncio.wait_for(asyncio.open_connection(a.host, a.port), 5)
    w.write(b"GET /stats HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


# ---------------------------------------------------------------- attackers

async def pause(stop, seconds):
    """Sleeps, or returns True at once when the soak stops."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        return True
    except asyncio.TimeoutError:
        return False


async def closed_with(soak, c, what, codes, started, slowest_key):
    """Waits for an attacker's close; returns True if it came with one of codes
    (a violation if more than 5 s after started)."""
    try:
        await asyncio.wait_for(c.done, 15)
    except asyncio.TimeoutError:
        soak.violation("%s (%s in %s): not closed within 15 s" % (c.nick, what, c.room.name))
        c.kill()
        return False
    if c.close_code not in codes:
        soak.violation("%s (%s in %s): closed with %s, not %s"
                       % (c.nick, what, c.room.name, c.close_code, "/".join(map(str, codes))))
        return False
    took = c.close_at - started
    if took > soak.att[slowest_key]:
        soak.att[slowest_key] = took
    if took > 5.0:    # the frame header alone says it is too big: no waiting for the rest
        soak.violation("%s (%s in %s): closed %.1f s after its frame header" % (c.nick, what, c.room.name, took))
    return True


async def oversized_binary(soak, room):
    """Joins a busy room, announces a binary message over --max-binary, sends 4 KiB of it."""
    a = soak.a
    c = await open_client(soak, room, "bigbin")
    if c is None:
        return
    c.expect = (1009,)
    soak.att["bigbin"] += 1
    head, key = frame_head(0x82, max(5 << 20, a.max_binary + 1))
    t = time.monotonic()
    c.transport.write(head + mask(os.urandom(4096), key))
    if await closed_with(soak, c, "oversized binary", (1009,), t, "bigbin_slowest"):
        soak.att["bigbin_1009"] += 1


async def staller(soak, room, variant):
    """Announces a 16 MiB text message (one frame, a first fragment, or a
    continuation after a 2000-byte first fragment), sends 1 KiB, stalls."""
    c = await open_client(soak, room, "staller")
    if c is None:
        return
    c.expect = (1009,)
    soak.att["stall"] += 1
    soak.att["stall_kinds"][variant] += 1
    data = b""
    if variant == 2:
        head, key = frame_head(0x01, 2000)          # text, not final: fits --max-line
        data = head + mask(b"s" * 2000, key)
    head, key = frame_head((0x81, 0x01, 0x00)[variant], 16 << 20)
    data += head + mask(b"s" * 1024, key)
    t = time.monotonic()
    c.transport.write(data)
    if await closed_with(soak, c, "staller", (1009,), t, "stall_slowest"):
        soak.att["stall_1009"] += 1


async def flooder(soak, room, nframes, burst):
    """Joins a busy room, floods it with empty binary frames between two marker
    lines, gets everything back, leaves."""
    c = await open_client(soak, room, "flooder")
    if c is None:
        return
    soak.next_flood += 1
    fid = soak.next_flood
    soak.flood_sent[fid] = nframes
    soak.flood_nick[c.nick] = fid
    soak.att["flood"] += 1
    c.send_line("FLOOD %d start %s" % (fid, c.nick))
    left = nframes
    while left > 0:
        k = min(burst, left)
        c.transport.write(empty_binaries(k))
        soak.att["flood_frames"] += k
        left -= k
        await asyncio.sleep(0.05)
    c.send_line("FLOOD %d end %s" % (fid, c.nick))
    deadline = time.monotonic() + 30
    while c.own and not c.done.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if c.done.done():
        return                          # lost: reported by the client
    if c.own:
        soak.violation("%s (flooder in %s): its lines did not come back within 30 s" % (c.nick, room))
        c.kill()
        return
    c.leave()
    try:
        await asyncio.wait_for(c.done, 10)
    except asyncio.TimeoutError:
        soak.violation("%s (flooder): no close frame within 10 s of its close" % c.nick)
        c.kill()


async def self_flooder(soak, room, nframes):
    """Joins a room of two watchers and never reads (4 KiB receive buffer),
    floods it with empty binary frames between two marker lines, then reads:
    either it was cut as a slow consumer (1008, or dropped after
    --close-timeout) or everything comes back."""
    c = await open_client(soak, room, "selfflood", rcvbuf=4096)
    if c is None:
        return
    soak.next_flood += 1
    fid = soak.next_flood
    soak.flood_sent[fid] = nframes
    soak.flood_nick[c.nick] = fid
    soak.att["selfflood"] += 1
    c.send_line("FLOOD %d start %s" % (fid, c.nick))
    left = nframes
    while left > 0:
        k = min(10000, left)
        c.transport.write(empty_binaries(k))
        soak.att["selfflood_frames"] += k
        left -= k
        await asyncio.sleep(0.05)
    c.send_line("FLOOD %d end %s" % (fid, c.nick))
    await asyncio.sleep(1.0)
    c.leaving = True                    # from now on a close is no surprise
    c.expect = (1008,)
    c.transport.resume_reading()
    c.data_received(b"")
    deadline = time.monotonic() + 20
    while c.own and not c.done.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if c.done.done():
        if c.close_code == 1008:
            soak.att["selfflood_cut_1008"] += 1
        elif c.close_code is None:
            soak.att["selfflood_cut_eof"] += 1     # given up on after --close-timeout
        else:
            soak.violation("%s (self-flooder): closed with %s" % (c.nick, c.close_code))
        soak.cut_flooders.append(c)
        return
    if c.own:
        soak.violation("%s (self-flooder): neither cut nor its lines back within 20 s" % c.nick)
        c.kill()
        return
    soak.att["selfflood_not_cut"] += 1
    if c.bin_empty != nframes:
        soak.violation("%s (self-flooder): not cut, got %d of its %d empty frames back"
                       % (c.nick, c.bin_empty, nframes))
    c.expect = None
    c.leave()
    try:
        await asyncio.wait_for(c.done, 10)
    except asyncio.TimeoutError:
        soak.violation("%s (self-flooder): no close frame within 10 s of its close" % c.nick)
        c.kill()


async def wait_until(cond, timeout):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return cond()


async def same_nick(soak, room, observers, n):
    """n joins with ?nick=x at once, all admitted with distinct nicks; they leave."""
    base = [dict(o.presence) for o in observers]
    t = time.monotonic()
    got = await asyncio.gather(*[open_client(soak, room, "samenick", nick="x") for _ in range(n)])
    took = time.monotonic() - t
    cs = [c for c in got if c is not None]
    soak.att["samenick_rounds"] += 1
    soak.att["samenick_joins"] += len(cs)
    soak.att["samenick_slowest"] = max(soak.att["samenick_slowest"], took)
    nicks = [c.nick for c in cs]
    if len(set(nicks)) != len(nicks):
        soak.violation("same-nick round: %d duplicate nicks among %d" % (len(nicks) - len(set(nicks)), len(nicks)))
    bad = [x for x in nicks if not re.fullmatch(r"x[0-9]*", x or "")]
    if bad:
        soak.violation("same-nick round: nicks not of the form x<digits>: %r" % bad[:5])
    ok = await wait_until(lambda: all(o.presence["join"] - b["join"] >= len(cs)
                                      for o, b in zip(observers, base)), 20)
    if not ok:
        soak.violation("same-nick round: observers saw %s joins of %d"
                       % ([o.presence["join"] - b["join"] for o, b in zip(observers, base)], len(cs)))
    for i, c in enumerate(cs):
        if c.done.done():
            continue
        if i % 2:
            c.kill()
        else:
            c.leave()
            c.transport.resume_reading()   # drops what it gets, until the server's EOF
    closing = [c.done for i, c in enumerate(cs) if i % 2 == 0]
    if closing:
        _, pending = await asyncio.wait(closing, timeout=15)
        if pending:
            soak.violation("same-nick round: %d polite leavers not closed within 15 s" % len(pending))
            for i, c in enumerate(cs):
                if c.done in pending:
                    c.kill()
    ok = await wait_until(lambda: all(o.presence["leave"] - b["leave"] >= len(cs)
                                      for o, b in zip(observers, base)), 20)
    if not ok:
        soak.violation("same-nick round: observers saw %s leaves of %d"
                       % ([o.presence["leave"] - b["leave"] for o, b in zip(observers, base)], len(cs)))
    for o, b in zip(observers, base):
        for k in ("join", "leave"):
            if o.presence[k] - b[k] != len(cs):
                soak.violation("same-nick round: observer %s saw %d %s events, %d joiners"
                               % (o.nick, o.presence[k] - b[k], k, len(cs)))
            soak.att["samenick_events"] += o.presence[k] - b[k]


def stuff_text(room_no, i, size):
    prefix = "h%d.%d " % (room_no, i)
    return prefix + "\x01" * (size - len(prefix))


async def check_history_bound(soak):
    try:
        st = await fetch_stats(soak.a)
    except (OSError, asyncio.TimeoutError, ValueError) as e:
        soak.violation("GET /stats failed: %r" % e)
        return
    hb = st.get("history_bytes")
    soak.att["hist_samples"] += 1
    if hb is None:
        soak.violation("/stats has no history_bytes")
        return
    soak.att["hist_peak"] = max(soak.att["hist_peak"], hb)
    if hb > soak.a.history_total_bytes:
        soak.violation("/stats history_bytes %d over --history-total-bytes %d" % (hb, soak.a.history_total_bytes))


async def stuffer(soak, stop, until):
    """Fills fresh rooms with lines of control characters, about --stuff-factor
    x --history-total-bytes of history in all, paced over the attack window;
    now and then revisits an earlier room and checks its history."""
    a = soak.a
    per_room = a.stuff_lines
    cost = 6 * a.max_line + 200              # an escaped event and its fixed cost, about
    rooms = max(1, int(a.stuff_factor * a.history_total_bytes / (cost * per_room)))
    period = max(0.0, (until - time.monotonic()) / rooms)
    k = 0
    while not stop.is_set() and time.monotonic() < until and k < rooms:
        t = time.monotonic()
        name = "stuff%d" % k
        c = await open_client(soak, name, "stuffer")
        if c is not None:
            for i in range(per_room):
                c.send_line(stuff_text(k, i, a.max_line))
            soak.att["stuff_rooms"] += 1
            soak.att["stuff_lines"] += per_room
            await wait_until(lambda: not c.own or c.done.done(), 20)
            if c.own and not c.done.done():
                soak.violation("%s (stuffer in %s): %d lines not back within 20 s" % (c.nick, name, len(c.own)))
            if not c.done.done():
                c.leave()
                try:
                    await asyncio.wait_for(c.done, 10)
                except asyncio.TimeoutError:
                    soak.violation("%s (stuffer): no close frame within 10 s of its close" % c.nick)
                    c.kill()
        await check_history_bound(soak)
        if k >= 10 and k % 10 == 0:
            old = "stuff%d" % random.randrange(k - 9)   # one at least 10 rooms back
            v = await open_client(soak, old, "revisit")
            if v is not None:
                r = soak.room(old)
                soak.att["stuff_revisits"] += 1
                soak.att["stuff_revisit_entries"] += v.hist_len
                if v.last_hist is not None and v.last_hist != r.maxseq:
                    soak.violation("%s: history ends at seq %d, the room said %d (not the newest kept)"
                                   % (old, v.last_hist, r.maxseq))
                v.leave()
                try:
                    await asyncio.wait_for(v.done, 10)
                except asyncio.TimeoutError:
                    soak.violation("%s (revisit): no close frame within 10 s of its close" % v.nick)
                    v.kill()
        k += 1
        if await pause(stop, period - (time.monotonic() - t)):
            break


async def attacks(soak, stop, t0, extras):
    """Runs the attackers from --attack-start until 12 s before the end."""
    a = soak.a
    start = t0 + a.attack_start
    until = t0 + a.seconds - 12
    if await pause(stop, start - time.monotonic()):
        return
    names = ["room%d" % i for i in range(a.rooms)]
    # the rooms of the same-nick joiners and the self-flooder, with well-behaved members
    observers = []
    for _ in range(2):
        o = await open_client(soak, "samenick", "chat")
        if o:
            o.presence = {"join": 0, "leave": 0}
            observers.append(o)
            extras.append(o)
    for _ in range(2):
        w = await open_client(soak, "flood-self", "chat")
        if w:
            extras.append(w)

    async def every(interval, first, make):
        if await pause(stop, start + first - time.monotonic()):
            return
        while not stop.is_set() and time.monotonic() < until:
            t = time.monotonic()
            await make()
            if await pause(stop, interval - (time.monotonic() - t)):
                return

    stall_no = [0]

    async def one_stall():
        stall_no[0] += 1
        await staller(soak, random.choice(names), stall_no[0] % 3)

    async def guarded(what, job):
        try:
            await job
        except Exception as e:      # a bug in the soak itself: reported, the rest goes on
            soak.violation("attacker %s failed: %r" % (what, e))

    jobs = [
        ("oversized binary", every(a.bigbin_interval, 0.0, lambda: oversized_binary(soak, random.choice(names)))),
        ("staller", every(a.stall_interval, 0.5, one_stall)),
        ("flooder", every(a.flood_interval, 1.0,
                          lambda: flooder(soak, random.choice(names), a.flood_frames, a.flood_burst))),
        ("stuffer", stuffer(soak, stop, until)),
    ]
    if a.selfflood_frames:
        jobs.append(("self-flooder", every(a.selfflood_interval, 3.0,
                                           lambda: self_flooder(soak, "flood-self", a.selfflood_frames))))
    if a.same_nick and len(observers) == 2:
        jobs.append(("same-nick", every(a.same_nick_interval, 2.0,
                                        lambda: same_nick(soak, "samenick", observers, a.same_nick))))
    await asyncio.gather(*[guarded(name, job) for name, job in jobs])


async def lag_monitor(soak, stop):
    """How late this process's event loop wakes up (so a slow round trip can be
    told apart from a busy client)."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.05)
        lag = time.monotonic() - t - 0.05
        if lag > soak.stats["lag_max"]:
            soak.stats["lag_max"] = lag
            soak.stats["lag_max_at"] = time.monotonic() - soak.t0


async def main(a):
    soak = Soak(a)
    pid = a.pid
    fd0 = fd_count(pid)
    for _ in range(20):            # let soak.sh's readiness probe connection close
        await asyncio.sleep(0.3)
        if fd_count(pid) == fd0:
            break
        fd0 = fd_count(pid)
    rss0 = rss_kib(pid)
    peak_rss, peak_fd = rss0, fd0
    cpu0 = cpu_seconds(pid), cpu_seconds("self")
    stop = asyncio.Event()
    started = asyncio.Event()
    t0 = soak.t0 = time.monotonic()
    print("soak: %d s, %d clients in %d rooms, %d slow consumers; server pid %d: %d fds, RSS %d KiB"
          % (a.seconds, a.clients, a.rooms, a.slow, pid, fd0, rss0), flush=True)
    sinks = {"hose0": [], "hose1": []}
    per_hose = [(a.slow + 1) // 2, a.slow // 2]
    hoses = [asyncio.ensure_future(firehose(soak, stop, name, sinks, n, t0))
             for name, n in zip(sinks, per_hose)]
    pop = asyncio.ensure_future(population(soak, stop, started))
    lag = asyncio.ensure_future(lag_monitor(soak, stop))
    extras = []                    # well-behaved members of the attackers' own rooms
    att = asyncio.ensure_future(attacks(soak, stop, t0, extras)) if a.attacks else None
    next_report = t0 + 10
    next_hist = t0 + 2
    while time.monotonic() - t0 < a.seconds:
        await asyncio.sleep(0.5)
        peak_rss = max(peak_rss, rss_kib(pid))
        peak_fd = max(peak_fd, fd_count(pid))
        if att and time.monotonic() >= next_hist:
            next_hist += 2
            await check_history_bound(soak)
        if time.monotonic() >= next_report:
            next_report += 10
            print("  t=%3ds clients=%d sent=%d deliveries=%d binary=%d violations=%d RSS=%d KiB fds=%d"
                  % (time.monotonic() - t0, len(soak.live), soak.stats["msgs_sent"], soak.stats["deliveries"],
                     soak.stats["bin_deliveries"], soak.nviol, rss_kib(pid), fd_count(pid)), flush=True)
    # stop sending, let everything in flight arrive
    stop.set()
    soak.stopping = True
    tasks = await pop
    watchers = []
    for h in hoses:
        watchers += await h
    if att:
        done, _ = await asyncio.wait([att], timeout=30)
        if not done:
            soak.violation("the attackers did not finish within 30 s of the end")
            att.cancel()
        elif att.exception():
            soak.violation("the attackers failed: %r" % att.exception())
    await asyncio.wait(tasks, timeout=20) if tasks else None
    quiet_deadline = time.monotonic() + 30
    while time.monotonic() < quiet_deadline and time.monotonic() - soak.last_delivery < 2.0:
        await asyncio.sleep(0.2)
    # final check: everyone still here has the room's last seq, and all it sent
    remaining = [c for c in list(soak.live) + watchers + extras if not c.done.done()]
    for c in remaining:
        r = c.room
        if c.kind == "chat" and c.last != r.maxseq:
            soak.violation("%s in %s: ends at seq %s, the room at %d" % (c.nick, r.name, c.last, r.maxseq))
        if c.own:
            soak.violation("%s: %d lines it sent never came back" % (c.nick, len(c.own)))
        if c.kind in ("watcher", "blaster") and (c.bin_last is None or c.bin_last != r.bin_sent - 1):
            soak.violation("%s in %s: last binary %s, %d sent" % (c.nick, r.name, c.bin_last, r.bin_sent))
        soak.stats["final_checked"] += 1
    # join/leave positions against the subjects' own view
    for r in soak.rooms.values():
        for nick, pos in r.join_claim.items():
            if nick in r.join_pos:
                if r.join_pos[nick] != pos:
                    soak.violation("room %s: %s's welcome history ends at %d, others saw its join at %d"
                                   % (r.name, nick, pos, r.join_pos[nick]))
                else:
                    soak.stats["positions_checked"] += 1
        for nick, pos in r.leave_claim.items():
            if nick in r.leave_pos:
                if r.leave_pos[nick] != pos:
                    soak.violation("room %s: %s got messages up to %s before leaving, others saw it leave at %d"
                                   % (r.name, nick, pos, r.leave_pos[nick]))
                else:
                    soak.stats["positions_checked"] += 1
    # slow consumers: cut (the room saw them leave) and closed by the server
    all_sinks = sinks["hose0"] + sinks["hose1"]
    for sk in all_sinks:
        sk.leaving = True          # from now on its close frame is expected
        sk.transport.resume_reading()
        sk.data_received(b"")      # what it got before it stopped reading
    cut = cut_1008 = mid_frame = 0
    for sk in all_sinks:
        try:
            await asyncio.wait_for(sk.done, 15)
        except asyncio.TimeoutError:
            soak.violation("slow consumer %s: connection still open at the end" % sk.nick)
            sk.transport.abort()
            continue
        if sk.buf:   # the server gave up on it (--close-timeout) with a frame half sent
            mid_frame += 1
        if sk.nick not in sk.room.leave_pos:
            soak.violation("slow consumer %s: its room never saw it leave" % sk.nick)
            continue
        if sk.close_code not in (None, 1008):
            soak.violation("slow consumer %s: closed with %s, not 1008" % (sk.nick, sk.close_code))
            continue
        cut += 1
        if sk.close_code == 1008:
            cut_1008 += 1
    # a self-flooder that was cut: its room saw it leave
    for c in soak.cut_flooders:
        if c.nick not in c.room.leave_pos:
            soak.violation("self-flooder %s: cut, but its room never saw it leave" % c.nick)
    stats = await fetch_stats(a)
    await check_history_bound(soak)
    at = soak.att
    if stats["closed"].get("slow_consumer") != len(all_sinks) + len(soak.cut_flooders):
        soak.violation("server counted %s slow consumers, %d were started and %d self-flooders were cut"
                       % (stats["closed"].get("slow_consumer"), len(all_sinks), len(soak.cut_flooders)))
    if stats["closed"].get("limit_reached") != at["bigbin_1009"] + at["stall_1009"]:
        soak.violation("server counted %s limit_reached closes, the attackers saw %d closes with 1009"
                       % (stats["closed"].get("limit_reached"), at["bigbin_1009"] + at["stall_1009"]))
    for k in ("protocol_error", "rate_limit"):
        if stats["closed"].get(k):
            soak.violation("server closed %d connections as %s" % (stats["closed"][k], k))
    # close everything: half politely, half with a RST
    closers = []
    for i, c in enumerate(remaining):
        if i % 2:
            c.kill()
        else:
            c.leave()
            closers.append(c.done)
    if closers:
        await asyncio.wait(closers, timeout=15)
    for c in remaining:
        if c.transport and not c.transport.is_closing():
            c.transport.abort()
    await asyncio.sleep(0.5)
    deadline = time.monotonic() + 20
    while fd_count(pid) != fd0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    time.sleep(0.5)
    fd1, rss1 = fd_count(pid), rss_kib(pid)
    cpu1 = cpu_seconds(pid), cpu_seconds("self")
    if fd1 != fd0:
        soak.violation("server has %d fds after all clients closed, %d at the start" % (fd1, fd0))
    # history the stuffers left in empty rooms is kept, by design: allow for its bound
    bound_mib = a.rss_slack_mib + (-(-int(a.history_rss_factor * a.history_total_bytes) // (1 << 20)) if att else 0)
    if rss1 - rss0 > bound_mib * 1024:
        soak.violation("server RSS %d KiB after, %d KiB at the start (bound +%d MiB)" % (rss1, rss0, bound_mib))
    st = soak.stats
    elapsed = time.monotonic() - t0
    print("soak summary (%.0f s):" % elapsed)
    print("  clients: %d connections (peak %d chat clients), %d left gracefully, %d killed with RST, "
          "%d remained to the end" % (st["connects"], st["peak_clients"], st["graceful"], st["killed"],
                                      len(remaining)))
    print("  messages sent: %d; deliveries checked: %d (own lines back: %d); history entries checked: %d"
          % (st["msgs_sent"], st["deliveries"], st["own_checked"], st["history_checked"]))
    print("  join/leave events checked: %d; positions agreed: %d; final states checked: %d"
          % (st["events_checked"], st["positions_checked"], st["final_checked"]))
    print("  binary fire-hose: %d frames sent, %d deliveries checked"
          % (sum(r.bin_sent for r in soak.rooms.values()), st["bin_deliveries"]))
    print("  slow consumers: %d started, %d cut (%d read a 1008 close, %d were dropped mid-frame after "
          "--close-timeout; server counted %s)"
          % (len(all_sinks), cut, cut_1008, mid_frame, stats["closed"].get("slow_consumer")))
    if att:
        print("  oversized binary: %d sent, %d closed with 1009 (slowest %.2f s after the header)"
              % (at["bigbin"], at["bigbin_1009"], at["bigbin_slowest"]))
        print("  mid-message stallers: %d (%d one frame, %d first fragment, %d continuation), %d closed with 1009 "
              "(slowest %.2f s)" % (at["stall"], at["stall_kinds"][0], at["stall_kinds"][1], at["stall_kinds"][2],
                                    at["stall_1009"], at["stall_slowest"]))
        print("  tiny-frame floods: %d into chat rooms (%d empty frames), %d by a non-reader (%d frames; cut: %d "
              "with 1008, %d dropped; not cut: %d); %d empty-frame deliveries, %d members counted exactly, "
              "%d agreed on a cut flood" % (at["flood"], at["flood_frames"], at["selfflood"], at["selfflood_frames"],
                                           at["selfflood_cut_1008"], at["selfflood_cut_eof"], at["selfflood_not_cut"],
                                           at["flood_deliveries"], at["flood_checked"], at["flood_agreed"]))
        print("  same-nick joins: %d rounds, %d joins as x (distinct nicks; slowest round %.2f s), %d join/leave "
              "events seen by observers" % (at["samenick_rounds"], at["samenick_joins"], at["samenick_slowest"],
                                           at["samenick_events"]))
        print("  history stuffers: %d rooms, %d lines of %d bytes, %d revisits (%d entries); history_bytes peak %d "
              "of --history-total-bytes %d (%d samples)"
              % (at["stuff_rooms"], at["stuff_lines"], a.max_line, at["stuff_revisits"], at["stuff_revisit_entries"],
                 at["hist_peak"], a.history_total_bytes, at["hist_samples"]))
    print("  chat lines' round trip: max %.2f s (at t=%.0f s), %d over 1 s; this client's event loop lag: max %.2f s "
          "(at t=%.0f s)" % (st["rtt_max"], st["rtt_max_at"], st["rtt_over_1s"], st["lag_max"], st["lag_max_at"]))
    print("  server: fds %d before, %d peak, %d after; RSS %d KiB before, %d KiB peak, %d KiB after (bound +%d MiB)"
          % (fd0, peak_fd, fd1, rss0, peak_rss, rss1, bound_mib))
    print("  server closed: %s" % json.dumps(stats["closed"], sort_keys=True))
    print("  CPU: server %.1f s, this client %.1f s" % (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]))
    print("  violations: %d" % soak.nviol)
    for v in soak.violations:
        print("    - " + v)
    if soak.nviol > len(soak.violations):
        print("  violations by kind:")
        for kind, n in sorted(soak.kinds.items(), key=lambda kv: -kv[1])[:15]:
            print("    %6d  %s" % (n, kind))
    return 0 if soak.nviol == 0 else 1


def size(text):
    """A byte count with an optional k, m or g suffix, as the server takes it."""
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:].lower(), 1)
    return int(text[:-1] if mult > 1 else text) * mult


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the server's pid (for /proc)")
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--clients", type=int, default=2000)
    p.add_argument("--rooms", type=int, default=20)
    p.add_argument("--slow", type=int, default=6, help="slow consumers over the run")
    p.add_argument("--msg-interval", type=float, default=20.0, help="mean seconds between a client's lines")
    p.add_argument("--min-life", type=float, default=10.0)
    p.add_argument("--max-life", type=float, default=90.0)
    p.add_argument("--kill-ratio", type=float, default=0.3, help="share of leavers killed with a RST")
    p.add_argument("--ramp", type=int, default=400, help="new connections per second at most")
    p.add_argument("--blast-size", type=int, default=16384)
    p.add_argument("--blast-rate", type=float, default=20.0, help="fire-hose frames per second per room")
    p.add_argument("--history", type=int, default=100, help="the server's --history")
    p.add_argument("--rss-slack-mib", type=int, default=32,
                   help="RSS growth allowed (plus --history-total-bytes when the attackers run)")
    g = p.add_argument_group("attackers")
    g.add_argument("--no-attacks", dest="attacks", action="store_false", help="run no attackers")
    g.add_argument("--attack-start", type=float, default=5.0, help="seconds after the start")
    g.add_argument("--max-binary", type=size, default=64 << 10, help="the server's --max-binary")
    g.add_argument("--max-line", type=size, default=4096, help="the server's --max-line")
    g.add_argument("--history-total-bytes", type=size, default=256 << 20,
                   help="the server's --history-total-bytes (k, m, g suffixes)")
    g.add_argument("--history-rss-factor", type=float, default=1.0,
                   help="RSS allowed per byte of --history-total-bytes (the stuffers leave history in empty rooms)")
    g.add_argument("--bigbin-interval", type=float, default=4.0, help="seconds between oversized binary senders")
    g.add_argument("--stall-interval", type=float, default=4.0, help="seconds between mid-message stallers")
    g.add_argument("--flood-interval", type=float, default=8.0, help="seconds between tiny-frame floods")
    g.add_argument("--flood-frames", type=int, default=5000, help="empty binary frames per flood")
    g.add_argument("--flood-burst", type=int, default=2500, help="frames per write of a flood")
    g.add_argument("--selfflood-interval", type=float, default=20.0)
    g.add_argument("--selfflood-frames", type=int, default=50000,
                   help="empty frames of a flooder that never reads (0: none)")
    g.add_argument("--same-nick", type=int, default=500, help="joins with the same nick per round (0: none)")
    g.add_argument("--same-nick-interval", type=float, default=20.0)
    g.add_argument("--stuff-lines", type=int, default=12, help="lines per stuffed room")
    g.add_argument("--stuff-factor", type=float, default=3.0,
                   help="history offered by the stuffers, in multiples of --history-total-bytes")
    p.add_argument("--seed", type=int, default=None)
    return p.parse_args()


if __name__ == "__main__":
    args = parse()
    random.seed(args.seed)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sys.exit(asyncio.run(main(args)))
