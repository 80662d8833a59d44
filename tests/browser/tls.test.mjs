// Headless Chromium loads the chat page over https and chats over wss with a
// build/wshub started with --tls-cert/--tls-key: no proxy in front. The test
// makes its own self-signed certificate with the openssl command (the browser
// context ignores certificate errors for it) and checks that the page and its
// WebSocket are really https: and wss:, that two people see each other's
// lines, and that the server logged TLS 1.3 handshakes with ALPN http/1.1.
// Run from the repo root: node --test tests/browser/tls.test.mjs
// (tests/browser/run.sh runs it after chat.test.mjs).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(ROOT, process.env.WSHUB_BIN || 'build/wshub');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10_000;

const cleanup = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { c.destroy(); resolve(ok); };
    c.setTimeout(500, () => done(false));
    c.on('connect', () => done(true));
    c.on('error', () => done(false));
  });
}

/** wshub with a fresh self-signed certificate for 127.0.0.1; resolves once it listens. */
async function startTlsServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wshub-browser-tls-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-days', '1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const port = await freePort();
  const srv = { port, log: '', exit: null };
  srv.proc = spawn(BIN, ['--host', '127.0.0.1', '--port', String(port), '--static', path.join(ROOT, 'static'),
    '--tls-cert', cert, '--tls-key', key, '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
  srv.proc.stdout.on('data', (d) => { srv.log += d; });
  srv.proc.stderr.on('data', (d) => { srv.log += d; });
  srv.exited = new Promise((resolve) => srv.proc.on('exit', (code, signal) => { srv.exit = { code, signal }; resolve(srv.exit); }));
  cleanup.push(async () => {
    if (!srv.exit) srv.proc.kill('SIGTERM');
    const exit = await srv.exited;
    assert.ok(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(srv.log), srv.log);
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `wshub exit ${JSON.stringify(exit)}:\n${srv.log}`);
  });
  const deadline = Date.now() + WAIT;
  while (!(await canConnect(port))) {
    if (srv.exit || Date.now() > deadline) throw new Error(`wshub did not start:\n${srv.log}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return srv;
}

test('the page over https chats over wss', { timeout: 60_000 }, async () => {
  const srv = await startTlsServer();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  cleanup.push(() => browser.close().catch(() => {}));
  const errors = [];
  const open = async (nick) => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    ctx.setDefaultTimeout(WAIT);
    await ctx.addInitScript((n) => {
      try { localStorage.setItem('wshub.nick', n); } catch { /* about:blank */ }
      window.__wsUrls = [];
      const Orig = WebSocket;
      window.WebSocket = function (url, ...rest) { window.__wsUrls.push(String(url)); return new Orig(url, ...rest); };
      window.WebSocket.prototype = Orig.prototype;
      Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    }, nick);
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(`${nick}: ${e.message}`));
    await page.goto(`https://127.0.0.1:${srv.port}/#tls-room`, { timeout: WAIT });
    await page.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
    return page;
  };
  const ann = await open('ann');
  const bob = await open('bob');
  for (const page of [ann, bob]) {
    assert.equal(await page.evaluate(() => location.protocol), 'https:');
    const urls = await page.evaluate(() => window.__wsUrls);
    assert.ok(urls.length >= 1 && urls.every((u) => u.startsWith(`wss://127.0.0.1:${srv.port}/ws/tls-room`)), urls.join(' '));
  }
  await ann.fill('#input', 'hello over wss');
  await ann.press('#input', 'Enter');
  for (const page of [ann, bob]) {
    await page.waitForFunction(() => [...document.querySelectorAll('#messages .msg')].some(
      (r) => r.querySelector('.text')?.textContent === 'hello over wss' && r.querySelector('.nick')?.textContent === 'ann'),
    null, { timeout: WAIT });
  }
  assert.deepEqual(errors, []);
  assert.match(srv.log, /tls handshake .*version=TLSv1\.3 .*alpn=http\/1\.1/);
});
