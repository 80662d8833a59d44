// Peer server for wshub's benchmarks (bench/run.sh), on Node's `ws` library.
// Usage: node server.js PORT [--cert FILE --key FILE] [--deflate]
// Listens on 127.0.0.1:PORT. /echo sends every message back to its
// sender with the same type; any other path is a room named by the path that
// relays every message (same type, same bytes) to all its members, the sender
// included. One thread, messages up to 16 MiB, no per-message logging. The
// same behaviour as bench/peers/lws and bench/peers/python.
// --cert/--key: TLS (https.createServer; wss). --deflate: ws's
// perMessageDeflate with its defaults (the server keeps its context unless
// the client offers server_no_context_takeover; ws compresses per send, so a
// room message is compressed once per member), except the threshold, 128 B
// as wshub's --deflate-min-size. Without it, no compression.
'use strict';

const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const port = Number(args[0] || 9001);
const opt = (name) => { const i = args.indexOf(name); return i > 0 ? args[i + 1] : undefined; };
const cert = opt('--cert'), key = opt('--key');
const deflate = args.includes('--deflate');
const rooms = new Map(); // path -> Set of sockets

const common = {
  perMessageDeflate: deflate ? { threshold: 128 } : false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: false,
};
let wss;
if (cert && key) {
  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
  wss = new WebSocketServer({ server, ...common });
  server.on('error', (err) => { process.stderr.write(`node ws peer: ${err.message}\n`); process.exit(1); });
  server.listen({ host: '127.0.0.1', port, backlog: 4096 },
    () => process.stderr.write(`node ws peer listening on 127.0.0.1:${port} (TLS)\n`));
} else {
  wss = new WebSocketServer({ host: '127.0.0.1', port, backlog: 4096, ...common });
  wss.on('listening', () => process.stderr.write(`node ws peer listening on 127.0.0.1:${port}\n`));
}

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

wss.on('error', (err) => {
  process.stderr.write(`node ws peer: ${err.message}\n`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
