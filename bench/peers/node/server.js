// Peer server for wshub's benchmarks (bench/run.sh), on Node's `ws` library.
// Listens on 127.0.0.1:PORT (argv[2]). /echo sends every message back to its
// sender with the same type; any other path is a room named by the path that
// relays every message (same type, same bytes) to all its members, the sender
// included. One thread, no compression, messages up to 16 MiB, no per-message
// logging. The same behaviour as bench/peers/lws and bench/peers/python.
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 9001);
const rooms = new Map(); // path -> Set of sockets

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: false,
  backlog: 4096,
});

wss.on('connection', (ws, req) => {
  const path = req.url.split('?')[0];
  ws.on('error', () => {});
  if (path === '/echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  let room = rooms.get(path);
  if (!room) {
    room = new Set();
    rooms.set(path, room);
  }
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    const opts = { binary: isBinary };
    for (const member of room) {
      if (member.readyState === 1) member.send(data, opts);
    }
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0 && rooms.get(path) === room) rooms.delete(path);
  });
});

wss.on('listening', () => process.stderr.write(`node ws peer listening on 127.0.0.1:${port}\n`));
wss.on('error', (err) => {
  process.stderr.write(`node ws peer: ${err.message}\n`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
