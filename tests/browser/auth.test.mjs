// Headless Chromium and the chat page against a build/wshub that requires
// sign-in tokens (--auth-secret-file, --allow-anonymous, --private-room
// 'staff*'). Tokens are HS256, made here with node's crypto. Checks that the
// page takes a token from its fragment (#room&token=...), removes it from the
// address bar, sends it as the bearer.TOKEN subprotocol, joins the private
// room and says who the user is; that a guest is told in words that the room
// is private (403, found by the page's plain GET); and that an expired sign-in
// (close 4001) is reported as such.
// Run from the repo root: node --test tests/browser/auth.test.mjs
// (tests/browser/run.sh runs it with the others).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WAIT, launchBrowser, startServer } from './util.mjs';

const cleanup = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

const SECRET = 'browser-test-secret';
const b64url = (buf) => Buffer.from(buf).toString('base64url');

function token(claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

test('the page signs in with a token from its fragment and reports refusals in words', { timeout: 90_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wshub-browser-auth-'));
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const secret = path.join(dir, 'secret');
  fs.writeFileSync(secret, SECRET + '\n');
  const srv = await startServer(['--auth-secret-file', secret, '--auth-leeway', '0', '--allow-anonymous',
    '--private-room', 'staff*', '--log-level', 'debug'], cleanup);
  const browser = await launchBrowser(cleanup);
  const errors = [];
  const open = async (hash) => {
    const ctx = await browser.newContext();
    ctx.setDefaultTimeout(WAIT);
    await ctx.addInitScript(() => {
      window.__protocols = [];
      const Orig = WebSocket;
      window.WebSocket = function (url, protocols) {
        window.__protocols.push(protocols === undefined ? null : protocols);
        return protocols === undefined ? new Orig(url) : new Orig(url, protocols);
      };
      window.WebSocket.prototype = Orig.prototype;
      Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${srv.port}/#${hash}`, { timeout: WAIT });
    return page;
  };
  const refusal = (page, rx, timeout = WAIT) => page.waitForFunction((src) => [...document.querySelectorAll('#messages .event.error')]
    .some((e) => new RegExp(src).test(e.textContent)), rx.source, { timeout });

  // signed in from the fragment, into a private room
  const tok = token({ sub: 'user-42', name: 'ann', rooms: ['staff*'], exp: Math.floor(Date.now() / 1000) + 600 });
  const ann = await open(`staff-1&token=${tok}`);
  await ann.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
  assert.equal(await ann.evaluate(() => location.hash), '#staff-1', 'the token is removed from the address bar');
  assert.ok(!(await ann.evaluate(() => location.href)).includes(tok));
  const protocols = await ann.evaluate(() => window.__protocols);
  assert.deepEqual(protocols[0], ['wshub', 'bearer.' + tok]);
  assert.match(await ann.textContent('#whoami'), /signed in as ann \(user-42\)/);
  assert.equal(await ann.inputValue('#nick'), 'ann');
  assert.ok(await ann.isDisabled('#nick'), 'a signed-in nick is the token\'s');
  await ann.fill('#input', 'hello staff');
  await ann.press('#input', 'Enter');
  await ann.waitForFunction(() => [...document.querySelectorAll('#messages .msg')].some((r) =>
    r.querySelector('.text')?.textContent === 'hello staff' && r.querySelector('.verified')?.title === 'signed in as user-42'),
  null, { timeout: WAIT });

  // a guest is told the room is private (403), with no token sent
  const guest = await open('staff-1');
  await refusal(guest, /may not enter #staff-1 \(403: this room is private/);
  assert.equal(await guest.getAttribute('#status', 'data-state'), 'closed');
  assert.deepEqual((await guest.evaluate(() => window.__protocols))[0], null);
  assert.ok(await guest.isVisible('#token-field'), 'the token field is offered');

  // a bad token: 401 in words
  const bad = await open(`staff-1&token=${tok.slice(0, -4)}AAAA`);
  await refusal(bad, /Sign-in needed \(401: bad token signature\)/);

  // expiry: close 4001, reported as such
  // (8 s: time enough to connect on a loaded machine, where the page may take seconds to open)
  const soon = token({ sub: 'user-7', name: 'bo', exp: Math.floor(Date.now() / 1000) + 8 });
  const bo = await open(`lobby&token=${soon}`);
  await bo.waitForSelector('#status[data-state="open"]', { timeout: WAIT });
  await refusal(bo, /sign-in expired \(4001/, 2 * WAIT);

  assert.deepEqual(errors, []);
  assert.ok(!srv.log.includes(tok.split('.')[2]), 'the token is not in the server log');
});
