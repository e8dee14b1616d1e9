// Helpers the goTalk browser tests share (tests/browser/*.test.mjs): starting
// the real server binary and Chromium, logging in through the page, sending
// and waiting for what the page shows. Not a test file itself (node --test
// runs only *.test.mjs here).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const BIN = process.env.GOTALK_BIN || path.join(REPO, 'target', 'debug', 'gotalk');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SHOTS = path.join(HERE, 'screenshots');
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const STEP_TIMEOUT = 10_000;   // one UI expectation
export const TEST_TIMEOUT = 60_000;   // one test

// ---------- helpers ----------

/**
 * Starts the server; resolves once its stderr names the address it listens on.
 * `extra` is appended to its arguments; `port` 0 picks a free one (give the old
 * one to start it again where it was); `data` a directory to keep its data in
 * (else --memory).
 */
export function startServer(extra = [], port = 0, data = null) {
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
    const store = data ? ['--data', data] : ['--memory'];
    const proc = spawn(BIN, [...store, '--listen', `127.0.0.1:${port}`, ...unthrottled, ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] });
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
export const messageTexts = (page) =>
  page.$$eval(`${tid('message-list')} ${tid('message-text')}`, (els) => els.map((e) => e.textContent));
export const contactItem = (page, name) => page.locator(`${tid('contact-item')}[data-contact="${name}"]`);

/**
 * A new browser context (its own storage) with one page of the chat at `query`
 * ('?transport=poll': the long-poll instead of the WebSocket).
 */
export async function newUserPage(browser, base, label, hostsSeen, query = '') {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  // Every tab of this user records the dialogs it saw and the script errors it hit.
  const watch = (p) => {
    p.dialogs = [];
    p.errors = [];
    p.on('dialog', (d) => { p.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    p.on('pageerror', (e) => { p.errors.push(`${label}: ${e.message}`); });
    p.on('console', (m) => {
      if (/content security policy|refused to (load|execute|apply|connect)/i.test(m.text())) {
        p.errors.push(`${label}: CSP: ${m.text()}`);
      }
    });
  };
  // The page reports what its policy blocked, too (added by the browser driver, not subject to it).
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  watch(page);
  context.on('page', watch);
  context.on('request', (r) => hostsSeen.add(new URL(r.url()).origin));
  await page.goto(base + '/' + query);
  return { context, page };
}

export async function authAs(page, username, password, register) {
  await page.fill(tid('auth-username'), username);
  await page.fill(tid('auth-password'), password);
  await page.click(tid(register ? 'register-button' : 'login-button'));
}

export async function expectLoggedInAs(page, username) {
  await page.locator(tid('chat-view')).waitFor({ state: 'visible' });
  await eventually(async () => assert.equal(await page.textContent(tid('current-user')), username));
}

export async function openContact(page, name) {
  await page.fill(tid('contact-input'), name);
  await page.click(tid('contact-submit'));
  await eventually(async () => assert.equal(await page.textContent(tid('conversation-title')), name));
}

/** Sends through the UI and waits until the server confirmed it (the bubble got its id). */
export async function sendMessage(page, text) {
  await page.fill(tid('composer-input'), text);
  await page.click(tid('send-button'));
  await eventually(async () => {
    const confirmed = await page.$$eval(`${tid('message-list')} ${tid('message')}[data-direction="out"][data-id]`,
      (els) => els.map((e) => e.querySelector('[data-testid="message-text"]').textContent));
    assert.ok(confirmed.includes(text), `sent message ${JSON.stringify(text)} not confirmed; shown: ${JSON.stringify(confirmed)}`);
  });
}

export async function expectIncoming(page, text) {
  await eventually(async () => {
    const incoming = await page.$$eval(`${tid('message-list')} ${tid('message')}[data-direction="in"]`,
      (els) => els.map((e) => e.querySelector('[data-testid="message-text"]').textContent));
    assert.ok(incoming.includes(text), `incoming ${JSON.stringify(text)} not shown; shown: ${JSON.stringify(incoming)}`);
  });
}

/** Asserts that the page broke no rule of its Content-Security-Policy, by its own report and in the console. */
export async function expectNoCspViolation(page) {
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'CSP violations');
  assert.deepEqual(page.errors.filter((e) => e.includes('CSP')), [], 'CSP messages in the console');
}

export async function form(base, p, fields) {
  const res = await fetch(base + p, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${p} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/**
 * Wraps node:test's `test` for a suite whose `before` hook may fail: a missing
 * binary or browser then fails every test (a failed hook would only cancel
 * them). Returns {test, setup(fn), failed()}.
 */
export function guarded(testCase) {
  const state = { error: null, anyFailed: false };
  const test = (name, opts, fn) => testCase(name, opts, async (t) => {
    if (state.error) throw state.error;
    try { return await fn(t); } catch (e) { state.anyFailed = true; throw e; }
  });
  const setup = async (fn) => { try { await fn(); } catch (e) { state.error = e; } };
  return { test, setup, failed: () => state.anyFailed };
}

/** Launches Chromium as the tests use it. */
export function launchBrowser(extraArgs = []) {
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium"`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], timeout: 30_000 });
}

/** Fails with a clear message when the server binary is missing. */
export function requireBinary() {
  assert.ok(fs.existsSync(BIN), `goTalk server binary not found at ${BIN}: build it with "cargo build" or set GOTALK_BIN`);
}
