#!/usr/bin/python3
"""Soak client for wshub (run by scripts/soak.sh against a server it started).

For --seconds, keeps about --clients chat clients connected to --rooms rooms:
each joins, chats (text lines with unique ids) at random intervals, and after
a random lifetime either leaves with a close handshake or is killed with a RST
(SO_LINGER 0); a replacement joins in its place. Two extra rooms carry a
binary fire-hose (16 KiB frames with sequence numbers) to a few watchers, and
now and then a slow consumer (4 KiB receive buffer, never reads) joins one of
them; it must be cut by --max-backlog.

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
  the room's last seq, and nothing it sent is missing.
Then everything closes and the server's descriptors must return to their
baseline and its RSS to within --rss-slack-mib of the start.
Exit status: 0 when no violation, 1 otherwise. Standard library only.
"""
import argparse
import asyncio
import base64
import json
import os
import random
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


class Room:
    def __init__(self, name):
        self.name = name
        self.log = {}          # seq -> text
        self.text_seq = {}     # text -> seq
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
        self.rooms = {}
        self.stats = dict(connects=0, graceful=0, killed=0, msgs_sent=0, deliveries=0,
                          own_checked=0, events_checked=0, history_checked=0, bin_deliveries=0,
                          positions_checked=0, final_checked=0, peak_clients=0, handshake_fail=0)
        self.live = set()
        self.stopping = False
        self.last_delivery = time.monotonic()
        self.next_id = 0

    def violation(self, msg):
        self.nviol += 1
        if len(self.violations) < 30:
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
    """One chat client on a raw socket. kind: 'chat', 'watcher', 'blaster', 'sink'."""

    def __init__(self, soak, room, kind):
        self.s = soak
        self.room = soak.room(room)
        self.kind = kind
        soak.next_id += 1
        self.cid = soak.next_id
        self.nick = "c%d" % self.cid
        self.buf = bytearray()
        self.transport = None
        self.opened = False
        self.welcome = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.last = None           # last message seq received
        self.own = []              # texts sent and not yet seen back (FIFO)
        self.nsent = 0
        self.bin_last = None
        self.leaving = False       # our close frame is out
        self.close_code = None     # the server's close frame
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
            if self.kind == "sink" and not self.leaving:
                # never reads again (until the end of the soak, to see how it ended)
                self.transport.pause_reading()
                if not self.welcome.done():
                    self.welcome.set_result(True)
                return
        self._frames()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if not self.leaving and not self.s.stopping and self.kind != "sink" and not self.done.done():
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
        del b[:pos]

    def _message(self, op, payload):
        s = self.s
        if op == OP_TEXT:
            s.last_delivery = time.monotonic()
            self._event(json.loads(payload))
        elif op == OP_BINARY:
            s.last_delivery = time.monotonic()
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
            if not self.leaving:
                s.violation("%s (%s in %s): server closed it with %s %r"
                            % (self.nick, self.kind, self.room.name, self.close_code, payload[2:]))
            else:
                self.room.leave_claim[self.nick] = self.last
            self.transport.close()
            if not self.done.done():
                self.done.set_result(True)

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
            known = room.log.get(seq)
            if known is None:
                room.log[seq] = text
                other = room.text_seq.get(text)
                if other is not None and other != seq:
                    s.violation("room %s: text %r at seq %d and %d (duplicate)" % (room.name, text, other, seq))
                room.text_seq[text] = seq
                if seq > room.maxseq:
                    room.maxseq = seq
            elif known != text:
                s.violation("room %s seq %d: %r for %s, %r for others (different order)"
                            % (room.name, seq, text, self.nick, known))
            if ev.get("nick") == self.nick:
                if not self.own:
                    s.violation("%s: got back a line it did not send: %r" % (self.nick, text))
                elif self.own[0] != text:
                    s.violation("%s: sent %r next, got back %r" % (self.nick, self.own[0], text))
                else:
                    self.own.pop(0)
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
                if known is not None and known != h["text"]:
                    s.violation("room %s: history seq %d is %r, members saw %r" % (room.name, seq, h["text"], known))
                s.stats["history_checked"] += 1
            if len(hist) > s.a.history:
                s.violation("%s: welcome history of %d entries, --history is %d" % (self.nick, len(hist), s.a.history))
            if ev.get("nick") != self.nick:
                s.violation("%s: welcomed as %r" % (self.nick, ev.get("nick")))
            self.last = last
            room.join_claim[self.nick] = last
            if not self.welcome.done():
                self.welcome.set_result(True)
        elif t in ("join", "leave"):
            if self.last is None:
                s.violation("%s: %s before welcome" % (self.nick, t))
                return
            s.agree(room.join_pos if t == "join" else room.leave_pos, ev["nick"], self.last, t, room)
            s.stats["events_checked"] += 1
        elif t == "error":
            s.violation("%s: error event %r" % (self.nick, ev))

    # ---- actions
    def send_line(self):
        self.nsent += 1
        text = "%s:%d %s" % (self.nick, self.nsent, random.choice(FILLERS))
        self.own.append(text)
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


async def open_client(soak, room, kind, rcvbuf=None):
    loop = asyncio.get_running_loop()
    c = Client(soak, room, kind)
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
    stop = asyncio.Event()
    started = asyncio.Event()
    t0 = time.monotonic()
    print("soak: %d s, %d clients in %d rooms, %d slow consumers; server pid %d: %d fds, RSS %d KiB"
          % (a.seconds, a.clients, a.rooms, a.slow, pid, fd0, rss0), flush=True)
    sinks = {"hose0": [], "hose1": []}
    per_hose = [(a.slow + 1) // 2, a.slow // 2]
    hoses = [asyncio.ensure_future(firehose(soak, stop, name, sinks, n, t0))
             for name, n in zip(sinks, per_hose)]
    pop = asyncio.ensure_future(population(soak, stop, started))
    next_report = t0 + 10
    while time.monotonic() - t0 < a.seconds:
        await asyncio.sleep(0.5)
        peak_rss = max(peak_rss, rss_kib(pid))
        peak_fd = max(peak_fd, fd_count(pid))
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
    await asyncio.wait(tasks, timeout=20) if tasks else None
    quiet_deadline = time.monotonic() + 30
    while time.monotonic() < quiet_deadline and time.monotonic() - soak.last_delivery < 2.0:
        await asyncio.sleep(0.2)
    # final check: everyone still here has the room's last seq, and all it sent
    remaining = [c for c in soak.live if not c.done.done()] + [w for w in watchers if not w.done.done()]
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
    stats = await fetch_stats(a)
    if stats["closed"].get("slow_consumer") != len(all_sinks):
        soak.violation("server counted %s slow consumers, %d were started"
                       % (stats["closed"].get("slow_consumer"), len(all_sinks)))
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
    if fd1 != fd0:
        soak.violation("server has %d fds after all clients closed, %d at the start" % (fd1, fd0))
    if rss1 - rss0 > a.rss_slack_mib * 1024:
        soak.violation("server RSS %d KiB after, %d KiB at the start (bound +%d MiB)"
                       % (rss1, rss0, a.rss_slack_mib))
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
    print("  server: fds %d before, %d peak, %d after; RSS %d KiB before, %d KiB peak, %d KiB after (bound +%d MiB)"
          % (fd0, peak_fd, fd1, rss0, peak_rss, rss1, a.rss_slack_mib))
    print("  server closed: %s" % json.dumps(stats["closed"], sort_keys=True))
    print("  violations: %d" % soak.nviol)
    for v in soak.violations:
        print("    - " + v)
    return 0 if soak.nviol == 0 else 1


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
    p.add_argument("--rss-slack-mib", type=int, default=32)
    p.add_argument("--seed", type=int, default=None)
    return p.parse_args()


if __name__ == "__main__":
    args = parse()
    random.seed(args.seed)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sys.exit(asyncio.run(main(args)))
