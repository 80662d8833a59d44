// Headless-browser tests of the chat page (static/index.html) against the real
// build/wshub: Debian's Chromium driven by playwright-core, node's own test
// runner. Run from the repo root: node --test tests/browser/chat.test.mjs
// (tests/browser/run.sh installs what is missing first).
//
// Every wait is bounded, so a failure reports instead of hanging. A failed test
// leaves a screenshot of each page it used in build/browser-fail-*.png.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { canConnect, freePort } from './util.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(ROOT, process.env.WSHUB_BIN || 'build/wshub');
const STATIC = path.join(ROOT, 'static');
const OUT = path.join(ROOT, 'build');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10_000;            // bound on every single wait
const TEST_TIMEOUT = 90_000;    // bound on a whole test

// ------------------------------------------------------------------ server

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Server {
  constructor(port, extraArgs = []) {
    this.port = port;
    this.args = ['--host', '127.0.0.1', '--port', String(port), '--static', STATIC, ...extraArgs];
    this.log = '';
    this.proc = null;
    this.exit = null;
  }
  async start() {
    assert.ok(fs.existsSync(BIN), `server binary ${BIN} is missing: run make first (or set WSHUB_BIN)`);
    this.log = '';
    this.exit = null;
    const proc = spawn(BIN, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout.on('data', (d) => { this.log += d; });
    proc.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); }));
    const deadline = Date.now() + WAIT;
    for (;;) {
      if (this.exit) throw new Error(`wshub exited at start (${JSON.stringify(this.exit)}):\n${this.log}`);
      if (await canConnect(this.port)) return this;
      if (Date.now() > deadline) throw new Error(`wshub did not listen on ${this.port} within ${WAIT} ms:\n${this.log}`);
      await sleep(25);
    }
  }
  async stop() {
    const proc = this.proc;
    if (!proc || this.exit) return this.exit;
    proc.kill('SIGTERM');
    const t = setTimeout(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } }, 5000);
    const res = await this.exited;
    clearTimeout(t);
    return res;
  }
  killNow() { if (this.proc && !this.exit) { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } } }
  get base() { return `http://127.0.0.1:${this.port}`; }
}

// ------------------------------------------------------------------ browser

let browser;
let server;
const servers = new Set();
let pagesThisTest = [];
let pageErrors = [];

function newServer(port, args) { const s = new Server(port, args); servers.add(s); return s; }

process.on('exit', () => { for (const s of servers) s.killNow(); });

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  server = await newServer(await freePort()).start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  const reports = [];
  for (const s of servers) {
    const exit = await s.stop();
    // a server built with SANITIZE=1 that found something fails the run
    if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(s.log)) reports.push(s.log);
    else if (exit && exit.signal !== 'SIGTERM' && exit.code !== 0) reports.push(`wshub exit ${JSON.stringify(exit)}:\n${s.log}`);
  }
  assert.deepEqual(reports, [], 'wshub reported errors');
});

afterEach(async (t) => {
  // t.passed is not there on every node 20; a failure shows as pageErrors or as the test's own error
  const pages = pagesThisTest;
  pagesThisTest = [];
  const errs = pageErrors;
  pageErrors = [];
  if (process.env.WSHUB_BROWSER_SHOTS || errs.length || t?.passed === false) {
    const slug = String(t?.name || 'test').replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
    let i = 0;
    for (const { page } of pages) {
      await page.screenshot({ path: path.join(OUT, `browser-fail-${slug}-${i++}.png`) }).catch(() => {});
    }
  }
  for (const { ctx } of pages) await ctx.close().catch(() => {});
  assert.deepEqual(errs, [], 'JavaScript errors on the page');
});

/** A new person: own browser context (own localStorage), nick stored before the page loads. */
async function openUser(nick, room, opts = {}) {
  const ctx = await browser.newContext({
    viewport: opts.viewport || { width: 900, height: 640 },
    colorScheme: opts.colorScheme || 'light',
  });
  ctx.setDefaultTimeout(WAIT);
  if (nick) {
    await ctx.addInitScript((n) => {
      try { if (!sessionStorage.getItem('nick-set')) { localStorage.setItem('wshub.nick', n); sessionStorage.setItem('nick-set', '1'); } } catch { /* about:blank */ }
    }, nick);
  }
  if (opts.recordSockets) {
    await ctx.addInitScript(() => {
      window.__sockets = [];
      const Orig = WebSocket;
      window.WebSocket = class extends Orig {
        constructor(...args) { super(...args); window.__sockets.push(this); }
      };
    });
  }
  if (opts.recordSends) {
    await ctx.addInitScript(() => {
      window.__sent = [];
      const orig = WebSocket.prototype.send;
      WebSocket.prototype.send = function (d) { window.__sent.push(d); return orig.call(this, d); };
    });
  }
  const page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${nick}: ${e.message}`));
  pagesThisTest.push({ ctx, page });
  const srv = opts.server || server;
  await page.goto(`${srv.base}/${room === undefined ? '' : '#' + room}`, { timeout: WAIT });
  if (opts.waitOpen !== false) await waitOpen(page);
  return page;
}

async function waitOpen(page, timeout = WAIT) {
  await page.waitForSelector('#status[data-state="open"]', { timeout });
  const text = await page.textContent('#status');
  assert.match(text, /connected/, `status text when open: ${text}`);
}

async function send(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

/** Waits for a .msg row whose text part equals `text`; returns {nick, text, seq, action, all}. */
async function waitMsg(page, text, timeout = WAIT) {
  const h = await page.waitForFunction((t) => {
    for (const r of document.querySelectorAll('#messages .msg')) {
      const tx = r.querySelector('.text');
      if (tx && tx.textContent === t) {
        return { nick: r.querySelector('.nick')?.textContent, text: tx.textContent, seq: r.dataset.seq,
          action: r.classList.contains('action'), all: r.textContent };
      }
    }
    return null;
  }, text, { timeout });
  return h.jsonValue();
}

const messageTexts = (page) => page.$$eval('#messages .msg .text', (els) => els.map((e) => e.textContent));
const memberList = (page) => page.$$eval('#members li', (els) => els.map((e) => e.textContent));

async function waitMembers(page, { has = [], lacks = [] }, timeout = WAIT) {
  try {
    await page.waitForFunction(([has, lacks]) => {
      const m = [...document.querySelectorAll('#members li')].map((e) => e.textContent);
      return has.every((n) => m.includes(n)) && lacks.every((n) => !m.includes(n));
    }, [has, lacks], { timeout });
  } catch (e) {
    throw new Error(`member list ${JSON.stringify(await memberList(page))} should have ${JSON.stringify(has)} and lack ${JSON.stringify(lacks)}: ${e.message}`);
  }
}

async function waitEvent(page, re, timeout = WAIT) {
  await page.waitForFunction((src) => {
    const rx = new RegExp(src);
    return [...document.querySelectorAll('#messages .event')].some((e) => rx.test(e.textContent));
  }, re.source, { timeout });
}

// ------------------------------------------------------------------ tests

test('two people in one room see each other and a message sent with Enter', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('alice', 't1');
  const b = await openUser('bob', 't1');
  assert.equal(await a.textContent('#room-title'), 't1');
  assert.equal(await a.inputValue('#room'), 't1');
  assert.equal(await a.inputValue('#nick'), 'alice');
  assert.equal(await b.inputValue('#nick'), 'bob');
  await waitMembers(a, { has: ['alice', 'bob'] });
  await waitMembers(b, { has: ['alice', 'bob'] });
  await waitEvent(a, /bob joined/);

  await send(a, 'hello from alice');
  for (const p of [a, b]) {
    const m = await waitMsg(p, 'hello from alice');
    assert.equal(m.nick, 'alice');
    assert.match(m.seq, /^[1-9][0-9]*$/);
    assert.match(m.all, /^\d\d:\d\d/, 'the row starts with the time HH:MM');
  }
  assert.equal(await a.inputValue('#input'), '', 'the send box is cleared after sending');

  // the send button works too
  await b.fill('#input', 'and bob answers');
  await b.click('#send');
  assert.equal((await waitMsg(a, 'and bob answers')).nick, 'bob');
  // seq counts up by one, as shown in data-seq
  const seqs = await a.$$eval('#messages .msg', (r) => r.map((x) => Number(x.dataset.seq)));
  assert.deepEqual(seqs, [seqs[0], seqs[0] + 1]);
});

test('markup from users is shown as text, never as HTML', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('mallory', 'xss');
  const b = await openUser('victim', 'xss');
  const img = '<img src=x onerror="window.__xss=1">';
  const bold = '<b>bold</b>';
  await send(a, img);
  await send(a, bold);
  await send(a, '/me <i>sneaks</i> <script>window.__xss=2</script>');
  for (const p of [a, b]) {
    const m1 = await waitMsg(p, img);
    assert.ok(m1.all.includes(img), m1.all);
    const m2 = await waitMsg(p, bold);
    assert.ok(m2.all.includes(bold), m2.all);
    const m3 = await waitMsg(p, '<i>sneaks</i> <script>window.__xss=2</script>');
    assert.equal(m3.action, true);
  }
  await b.waitForTimeout(300);   // room for an onerror handler to have fired
  for (const p of [a, b]) {
    const found = await p.evaluate(() => ({
      elements: document.querySelectorAll('#messages img, #messages b, #messages i, #messages script').length,
      xss: typeof window.__xss,
    }));
    assert.deepEqual(found, { elements: 0, xss: 'undefined' });
  }
});

test('a late joiner sees the earlier messages from history', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('early', 'hist');
  const lines = ['first line', 'second line', '/me third, as an action'];
  for (const l of lines) await send(a, l);
  await waitMsg(a, 'third, as an action');
  await a.context().close();          // the room stays, empty, with its history
  pagesThisTest = pagesThisTest.filter((x) => x.page !== a);

  const c = await openUser('late', 'hist');
  const m = await waitMsg(c, 'third, as an action');
  assert.equal(m.action, true);
  assert.equal(m.nick, 'early');
  assert.deepEqual(await messageTexts(c), ['first line', 'second line', 'third, as an action']);
  const seqs = await c.$$eval('#messages .msg', (r) => r.map((x) => x.dataset.seq));
  assert.deepEqual(seqs, ['1', '2', '3']);
  await waitMembers(c, { has: ['late'], lacks: ['early'] });
});

test('the page reconnects after the server restarts', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('phoenix', 'restart');
  await send(a, 'before the restart');
  await waitMsg(a, 'before the restart');

  const port = server.port;
  const exit = await server.stop();
  assert.ok(exit.signal === 'SIGTERM' || exit.code === 0, `wshub exit ${JSON.stringify(exit)}:\n${server.log}`);
  await a.waitForSelector('#status[data-state="reconnecting"]', { timeout: WAIT });
  assert.match(await a.textContent('#status'), /reconnecting/);
  // it keeps trying with a countdown while the server is away
  await a.waitForFunction(() => /reconnecting in \d+s/.test(document.querySelector('#status').textContent), null, { timeout: WAIT });
  await a.waitForTimeout(1500);
  assert.notEqual(await a.getAttribute('#status', 'data-state'), 'open');

  server = newServer(port);
  await server.start();
  await waitOpen(a, 15_000);    // the longest backoff step is 10 s
  assert.equal(await a.inputValue('#nick'), 'phoenix');
  await send(a, 'after the restart');
  const m = await waitMsg(a, 'after the restart');
  assert.equal(m.nick, 'phoenix');
  assert.ok((await messageTexts(a)).includes('before the restart'), 'what was shown before stays');
  // an in-memory server lost the room: the page says a gap is possible
  assert.match(await a.textContent('#messages'), /Some messages may be missing/);
  // and a second person sees it is really back
  const b = await openUser('witness', 'restart');
  await waitMembers(b, { has: ['phoenix', 'witness'] });
  await send(b, 'welcome back');
  await waitMsg(a, 'welcome back');
});

/** A TCP proxy in front of the server, so a test can cut a page's network
 * (every connection dropped, new ones refused) while the server runs on. */
class Proxy {
  constructor(target) { this.target = target; this.socks = new Set(); this.down = false; }
  async start() {
    this.port = await freePort();
    this.srv = net.createServer((c) => {
      if (this.down) { c.destroy(); return; }
      const u = net.connect({ host: '127.0.0.1', port: this.target.port });
      for (const s of [c, u]) { this.socks.add(s); s.on('close', () => this.socks.delete(s)); s.on('error', () => {}); }
      c.pipe(u); u.pipe(c);
      c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
    });
    await new Promise((r) => this.srv.listen(this.port, '127.0.0.1', r));
    return this;
  }
  cut() { this.down = true; for (const s of this.socks) s.destroy(); }
  restore() { this.down = false; }
  close() { this.cut(); this.srv.close(); }
  get base() { return `http://127.0.0.1:${this.port}`; }
}

test('after a network drop the page resumes: no gap, no duplicate', { timeout: TEST_TIMEOUT }, async () => {
  const proxy = await new Proxy(server).start();
  try {
    const a = await openUser('roamer', 'resume', { server: proxy });
    const b = await openUser('steady', 'resume');
    await waitMembers(a, { has: ['roamer', 'steady'] });
    await send(b, 'm1');
    await waitMsg(a, 'm1');

    proxy.cut();                                   // the page's network goes away
    await a.waitForSelector('#status[data-state="reconnecting"]', { timeout: WAIT });
    for (const t of ['m2', 'm3', 'm4']) await send(b, t);
    await waitMsg(b, 'm4');
    proxy.restore();
    await waitOpen(a, 15_000);
    await send(b, 'm5');
    await waitMsg(a, 'm5');

    assert.deepEqual(await messageTexts(a), ['m1', 'm2', 'm3', 'm4', 'm5'], 'each message once, in order');
    const seqs = await a.$$eval('#messages .msg', (r) => r.map((x) => Number(x.dataset.seq)));
    assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
    const text = await a.textContent('#messages');
    assert.ok(!/may be missing/.test(text), 'a resumed reconnect must not claim a gap');
  } finally {
    proxy.close();
  }
});

/** A real redis-server on a free port in a temporary directory (AOF on). */
async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wshub-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: 'ignore' });
  const deadline = Date.now() + WAIT;
  while (!(await canConnect(port))) {
    assert.ok(Date.now() < deadline, 'redis-server did not listen');
    await sleep(25);
  }
  return { port, stop: () => { proc.kill('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); } };
}

test('with --redis the page resumes across a server restart: no gap, no duplicate', { timeout: TEST_TIMEOUT }, async () => {
  const redis = await startRedis();
  try {
    const port = await freePort();
    const args = ['--redis', `redis://127.0.0.1:${redis.port}`];
    let srv = await newServer(port, args).start();
    const a = await openUser('keeper', 'cluster', { server: srv });
    await send(a, 'c1');
    await send(a, 'c2');
    await waitMsg(a, 'c2');
    await srv.stop();
    await a.waitForSelector('#status[data-state="reconnecting"]', { timeout: WAIT });
    srv = await newServer(port, args).start();
    await waitOpen(a, 15_000);
    await send(a, 'c3');
    await waitMsg(a, 'c3');
    assert.deepEqual(await messageTexts(a), ['c1', 'c2', 'c3'], 'each message once, in order');
    const seqs = await a.$$eval('#messages .msg', (r) => r.map((x) => Number(x.dataset.seq)));
    assert.deepEqual(seqs, [1, 2, 3], 'the numbering went on in Redis across the restart');
    assert.ok(!/may be missing/.test(await a.textContent('#messages')), 'history in Redis: nothing missing');
  } finally {
    redis.stop();
  }
});

test('/nick and the nick field rename a member for the others', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('alice', 'nicks', { recordSends: true });
  const b = await openUser('bob', 'nicks');
  await waitMembers(b, { has: ['alice', 'bob'] });

  await send(a, '/nick alicia');
  await waitMembers(b, { has: ['alicia', 'bob'], lacks: ['alice'] });
  await waitMembers(a, { has: ['alicia', 'bob'], lacks: ['alice'] });
  await waitEvent(b, /alice is now known as alicia/);
  await a.waitForFunction(() => document.querySelector('#nick').value === 'alicia', null, { timeout: WAIT });
  assert.equal(await a.evaluate(() => localStorage.getItem('wshub.nick')), 'alicia');

  // the nick field sends /nick NAME when connected
  await a.fill('#nick', 'ally');
  await a.press('#nick', 'Enter');
  await waitMembers(b, { has: ['ally', 'bob'], lacks: ['alicia'] });
  await send(a, 'renamed');
  assert.equal((await waitMsg(b, 'renamed')).nick, 'ally');
  assert.deepEqual(await a.evaluate(() => window.__sent), ['/nick alicia', '/nick ally', 'renamed'],
    'the page sends each line once, commands as typed');
  assert.equal(await a.$$eval('#messages .event.error', (e) => e.length), 0);

  // a taken nick is an error shown inline, and the field goes back
  await b.fill('#nick', 'ally');
  await b.press('#nick', 'Enter');
  await b.waitForSelector('#messages .event.error[data-code="nick_taken"]', { timeout: WAIT });
  await b.waitForFunction(() => document.querySelector('#nick').value === 'bob', null, { timeout: WAIT });
  await waitMembers(a, { has: ['ally', 'bob'] });

  // a nick with a space is refused in the page, nothing is sent
  await b.fill('#nick', 'two words');
  await b.press('#nick', 'Enter');
  assert.equal(await b.getAttribute('#nick-field', 'class'), 'field invalid');
  await b.waitForTimeout(200);
  await waitMembers(a, { has: ['ally', 'bob'] });

  // unknown commands come back as inline errors
  await send(b, '/frobnicate');
  await b.waitForSelector('#messages .event.error[data-code="unknown_command"]', { timeout: WAIT });

  // the stored nick is used on the next visit
  await a.reload();
  await waitOpen(a);
  assert.equal(await a.inputValue('#nick'), 'ally');
  await waitMembers(b, { has: ['ally', 'bob'] });
});

test('switching the room moves the page to the new room', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('mover', 'r1');
  const b = await openUser('stayer', 'r1');
  await waitMembers(a, { has: ['mover', 'stayer'] });

  await a.fill('#room', 'r2');
  await a.press('#room', 'Enter');
  await a.waitForFunction(() => location.hash === '#r2', null, { timeout: WAIT });
  await waitOpen(a);
  await a.waitForFunction(() => document.querySelector('#room-title').textContent === 'r2', null, { timeout: WAIT });
  await waitMembers(a, { has: ['mover'], lacks: ['stayer'] });
  await waitMembers(b, { has: ['stayer'], lacks: ['mover'] });
  await waitEvent(b, /mover left/);

  // a message in r2 is not seen in r1
  await send(a, 'only in r2');
  await waitMsg(a, 'only in r2');
  await send(b, 'only in r1');
  await waitMsg(b, 'only in r1');
  assert.ok(!(await messageTexts(b)).includes('only in r2'));
  assert.ok(!(await messageTexts(a)).includes('only in r1'));

  // the URL fragment works the other way too
  await a.evaluate(() => { location.hash = '#r1'; });
  await waitOpen(a);
  await waitMembers(a, { has: ['mover', 'stayer'] });
  assert.equal(await a.inputValue('#room'), 'r1');
  assert.ok((await messageTexts(a)).includes('only in r1'), 'history of r1 is shown on joining it');

  // an invalid name stays in the page: no switch, an inline error
  await a.fill('#room', 'no spaces!');
  await a.press('#room', 'Enter');
  assert.equal(await a.getAttribute('#room-field', 'class'), 'field invalid');
  await a.waitForSelector('#messages .event.error', { timeout: WAIT });
  assert.equal(await a.evaluate(() => location.hash), '#r1');
  assert.equal(await a.getAttribute('#status', 'data-state'), 'open');

  // no fragment: the lobby
  const l = await openUser('lobbyist');
  assert.equal(await l.textContent('#room-title'), 'lobby');
  assert.equal(await l.inputValue('#room'), 'lobby');
  await waitMembers(l, { has: ['lobbyist'], lacks: ['mover', 'stayer'] });
});

test('a refused join shows why and stops retrying', { timeout: TEST_TIMEOUT }, async () => {
  const small = await newServer(await freePort(), ['--max-room-members', '1']).start();
  try {
    const a = await openUser('first', 'tiny', { server: small });
    const b = await openUser('second', 'tiny', { server: small, waitOpen: false });
    await b.waitForSelector('#status[data-state="closed"]', { timeout: 15_000 });
    await b.waitForSelector('#messages .event.error', { timeout: WAIT });
    assert.match(await b.textContent('#messages'), /refused/);
    assert.match(await b.textContent('#status'), /offline/);
    await waitMembers(a, { has: ['first'], lacks: ['second'] });
    // another room is fine
    await b.fill('#room', 'roomy');
    await b.press('#room', 'Enter');
    await waitOpen(b);
  } finally {
    await small.stop();
  }
});

test('the list follows the newest message unless the reader scrolled up', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('reader', 'scroll', { viewport: { width: 800, height: 420 } });
  const w = await openUser('writer', 'scroll');
  const pos = () => a.evaluate(() => {
    const m = document.querySelector('#messages');
    return { gap: m.scrollHeight - m.clientHeight - m.scrollTop, top: m.scrollTop, scrollable: m.scrollHeight > m.clientHeight + 50 };
  });
  for (let i = 1; i <= 25; i++) await send(w, `line ${i}`);
  await waitMsg(a, 'line 25');
  let p = await pos();
  assert.ok(p.scrollable, 'enough messages to scroll');
  assert.ok(p.gap < 5, `at the bottom: ${JSON.stringify(p)}`);
  await a.evaluate(() => { document.querySelector('#messages').scrollTop = 0; });
  await a.waitForTimeout(100);
  for (let i = 26; i <= 28; i++) await send(w, `line ${i}`);
  await waitMsg(a, 'line 28');
  p = await pos();
  assert.equal(p.top, 0, 'stays where the reader scrolled to');
  assert.equal(await a.isVisible('#jump'), true, 'offers a way down');
  await a.click('#jump');
  await a.waitForFunction(() => { const m = document.querySelector('#messages'); return m.scrollHeight - m.clientHeight - m.scrollTop < 5; }, null, { timeout: WAIT });
  await send(w, 'line 29');
  await waitMsg(a, 'line 29');
  p = await pos();
  assert.ok(p.gap < 5, `follows again: ${JSON.stringify(p)}`);
});

test('with --deflate the page negotiates permessage-deflate and chats compressed', { timeout: TEST_TIMEOUT }, async () => {
  const srv = await newServer(await freePort(), ['--deflate']).start();
  const a = await openUser('zara', 'zipped', { server: srv, recordSockets: true });
  const b = await openUser('zeno', 'zipped', { server: srv, recordSockets: true });
  for (const p of [a, b]) {
    const ext = await p.evaluate(() => window.__sockets[window.__sockets.length - 1].extensions);
    assert.equal(ext, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  }
  await waitMembers(a, { has: ['zara', 'zeno'] });
  await waitMembers(b, { has: ['zara', 'zeno'] });
  const stats = async () => (await fetch(`${srv.base}/stats`)).json();
  const before = await stats();
  const long = 'a line long enough to be worth compressing, '.repeat(8).trim();
  await send(a, long);
  for (const p of [a, b]) assert.equal((await waitMsg(p, long)).nick, 'zara');
  await send(b, 'short one');
  for (const p of [a, b]) assert.equal((await waitMsg(p, 'short one')).nick, 'zeno');
  const after = await stats();
  // Chromium compresses what it sends; the server compressed the long line's
  // event once for both pages, and sent the short one's as it is
  assert.equal(after.messages_in_compressed - before.messages_in_compressed, 2, JSON.stringify(after));
  assert.equal(after.deflate_compressions - before.deflate_compressions, 1, JSON.stringify(after));
  assert.equal(after.messages_out_compressed - before.messages_out_compressed, 2, JSON.stringify(after));
  assert.equal(after.messages_out - before.messages_out, 4, JSON.stringify(after));
});

test('screenshot for people: build/browser-chat.png', { timeout: TEST_TIMEOUT }, async () => {
  const a = await openUser('alice', 'games', { viewport: { width: 820, height: 600 } });
  const c = await openUser('carol', 'games', { viewport: { width: 820, height: 600 } });
  await send(c, 'anyone up for a game tonight?');
  await waitMsg(a, 'anyone up for a game tonight?');
  const b = await openUser('bob', 'games', { viewport: { width: 820, height: 600 }, colorScheme: 'dark' });
  await send(a, 'count me in! rules are at https://example.com/rules');
  await send(b, '/me waves from the train');
  await send(b, 'I can join at 9. Should we play <b>chess</b> or go?');
  await send(a, '/dance');
  await send(c, 'chess, definitely');
  await send(b, '/nick bobby');
  await waitMembers(a, { has: ['alice', 'bobby', 'carol'] });
  await waitMsg(b, 'chess, definitely');
  await c.context().close();
  pagesThisTest = pagesThisTest.filter((x) => x.page !== c);
  await waitEvent(a, /carol left/);
  await waitEvent(b, /carol left/);
  await a.waitForSelector('#messages .event.error', { timeout: WAIT });

  const left = await a.screenshot();
  const right = await b.screenshot();
  const sheet = await browser.newPage({ viewport: { width: 1680, height: 620 } });
  try {
    await sheet.setContent(`<body style="margin:0;background:#888;display:flex;gap:20px;padding:10px">
      <img src="data:image/png;base64,${left.toString('base64')}">
      <img src="data:image/png;base64,${right.toString('base64')}"></body>`);
    await sheet.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: WAIT });
    await sheet.screenshot({ path: path.join(OUT, 'browser-chat.png') });
  } finally {
    await sheet.close();
  }
  // and the phone width
  const phone = await openUser('pat', 'games', { viewport: { width: 390, height: 720 } });
  await waitMsg(phone, 'chess, definitely');
  await phone.screenshot({ path: path.join(OUT, 'browser-chat-phone.png') });
  const sz = fs.statSync(path.join(OUT, 'browser-chat.png')).size;
  assert.ok(sz > 10_000, `screenshot size ${sz}`);
});
