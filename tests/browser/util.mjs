// Shared helpers of the browser tests that start their own build/wshub:
// free ports, waiting for a listener, starting a server with options and
// checking at the end that it exited cleanly (no sanitizer report), and
// launching Debian's Chromium. No tests here.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.resolve(ROOT, process.env.WSHUB_BIN || 'build/wshub');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const WAIT = 10_000;   // bound on every single wait

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { c.destroy(); resolve(ok); };
    c.setTimeout(500, () => done(false));
    c.on('connect', () => done(true));
    c.on('error', () => done(false));
  });
}

/** wshub on a free port with args (after --host, --port and --static); resolves once
 * it listens. cleanup gets a function that stops it and asserts a clean exit. */
export async function startServer(args, cleanup) {
  const port = await freePort();
  const srv = { port, log: '', exit: null };
  srv.proc = spawn(BIN, ['--host', '127.0.0.1', '--port', String(port), '--static', path.join(ROOT, 'static'),
    ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Headless Chromium; cleanup gets its close. */
export async function launchBrowser(cleanup) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  cleanup.push(() => browser.close().catch(() => {}));
  return browser;
}
