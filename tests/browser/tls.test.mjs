// Headless Chromium loads the chat page over https and chats over wss with a
// build/wshub started with --tls-cert/--tls-key and --deflate: no proxy in
// front. The test makes its own self-signed certificate with the openssl
// command (the browser context ignores certificate errors for it) and checks
// that the page and its WebSocket are really https: and wss:, that each
// WebSocket negotiated permessage-deflate, that two people see each other's
// lines and that the long one travelled compressed both ways (the server's
// /stats, read by the page over https), and that the server logged TLS 1.3
// handshakes with ALPN http/1.1.
// Run from the repo root: node --test tests/browser/tls.test.mjs
// (tests/browser/run.sh runs it after chat.test.mjs).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WAIT, launchBrowser, startServer } from './util.mjs';

const cleanup = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

/** wshub with a fresh self-signed certificate for 127.0.0.1; resolves once it listens. */
async function startTlsServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wshub-browser-tls-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-days', '1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return startServer(['--tls-cert', cert, '--tls-key', key, '--deflate', '--log-level', 'debug'], cleanup);
}

test('the page over https chats over wss with permessage-deflate', { timeout: 60_000 }, async () => {
  const srv = await startTlsServer();
  const browser = await launchBrowser(cleanup);
  const errors = [];
  const open = async (nick) => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    ctx.setDefaultTimeout(WAIT);
    await ctx.addInitScript((n) => {
      try { localStorage.setItem('wshub.nick', n); } catch { /* about:blank */ }
      window.__wsUrls = [];
      window.__sockets = [];
      const Orig = WebSocket;
      window.WebSocket = function (url, ...rest) {
        window.__wsUrls.push(String(url));
        const ws = new Orig(url, ...rest);
        window.__sockets.push(ws);
        return ws;
      };
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
    assert.equal(await page.evaluate(() => window.__sockets[window.__sockets.length - 1].extensions),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  }
  const stats = () => ann.evaluate(async () => (await fetch('/stats')).json());
  const before = await stats();
  // long enough to pass --deflate-min-size (128 B): compressed by Chromium and, once for both, by wshub
  const line = 'hello over wss, compressed on the way in and on the way out; '.repeat(4).trim();
  await ann.fill('#input', line);
  await ann.press('#input', 'Enter');
  for (const page of [ann, bob]) {
    await page.waitForFunction((l) => [...document.querySelectorAll('#messages .msg')].some(
      (r) => r.querySelector('.text')?.textContent === l && r.querySelector('.nick')?.textContent === 'ann'),
    line, { timeout: WAIT });
  }
  const now = await stats();
  assert.equal(now.messages_in_compressed - before.messages_in_compressed, 1, JSON.stringify(now));
  assert.equal(now.deflate_compressions - before.deflate_compressions, 1, JSON.stringify(now));
  assert.equal(now.messages_out_compressed - before.messages_out_compressed, 2, JSON.stringify(now));
  assert.deepEqual(errors, []);
  assert.match(srv.log, /tls handshake .*version=TLSv1\.3 .*alpn=http\/1\.1/);
});
