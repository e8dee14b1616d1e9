// Shared by the browser tests (chat.test.mjs, axe.test.mjs): where the server binary
// and Chromium are, starting and stopping the real server (`--memory --listen
// 127.0.0.1:0`, throttles opened wide), and small waiting and locating helpers.
// Not a test file itself: node --test runs only *.test.mjs.
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const BIN = process.env.GOTALK_BIN || path.join(REPO, 'target', 'debug', 'gotalk');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const STEP_TIMEOUT = 10_000;   // one UI expectation

/** Starts the server; resolves once its stderr names the address it listens on. */
export function startServer() {
  return new Promise((resolve, reject) => {
    // The throttles opened wide: the tests register many users from one address.
    const unthrottled = ['--registers-per-address-hour', '1000000', '--login-failures-per-minute', '1000000',
      '--login-failure-burst', '1000000', '--login-failures-per-address-minute', '1000000',
      '--lookups-per-address-minute', '1000000', '--logins-per-account-minute', '1000000',
      // The fair shares too: the flood test sends faster than a person types.
      '--sends-per-second', '0', '--new-recipients-per-hour', '0', '--read-bytes-per-second', '0',
      '--connections-per-address-per-second', '0'];
    // The flood test holds up to 13 MB from one sender unread for a moment:
    // under the mailbox cap (16 MiB), past the default
    // --pending-bytes-per-sender (8 MiB).
    unthrottled.push('--pending-bytes-per-sender', '33554432');
    const proc = spawn(BIN, ['--memory', '--listen', '127.0.0.1:0', ...unthrottled], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = [];
    let settled = false;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) { proc.kill('SIGKILL'); reject(err); } else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(
      `server did not log "listening on 127.0.0.1:PORT" within 20s; its output:\n${log.join('\n')}`)), 20_000);
    // Keep draining both pipes for the whole run so the server never blocks on a full pipe.
    proc.stdout.on('data', (d) => { log.push(...String(d).split('\n').filter(Boolean)); if (log.length > 400) log.splice(0, log.length - 400); });
    readline.createInterface({ input: proc.stderr }).on('line', (line) => {
      log.push(line);
      if (log.length > 400) log.splice(0, log.length - 400);
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(line);
      if (m) finish(null, { proc, log, base: `http://${m[1]}` });
    });
    proc.on('error', (e) => finish(new Error(`cannot start server ${BIN}: ${e.message}`)));
    proc.on('exit', (code, sig) => finish(new Error(
      `server exited early (code ${code}, signal ${sig}); its output:\n${log.join('\n')}`)));
  });
}

export async function stopServer(server) {
  if (!server || server.proc.exitCode !== null || server.proc.signalCode !== null) return;
  const exited = new Promise((r) => server.proc.once('exit', r));
  server.proc.kill('SIGTERM');
  const t = setTimeout(() => server.proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

/** Retries an assertion until it passes or the time is up (then throws its last error). */
export async function eventually(fn, timeout = STEP_TIMEOUT, interval = 100) {
  const end = Date.now() + timeout;
  for (;;) {
    try { return await fn(); } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}

export const tid = (id) => `[data-testid="${id}"]`;
