// Accessibility of the web chat page (web/index.html): axe-core, the rules of WCAG 2.0,
// 2.1 and 2.2 at levels A and AA plus axe's best practices, run in Debian's Chromium on
// each screen a person meets: the login screen (also with an error shown), the chat
// before a conversation is picked, with an unread message, and a conversation with
// messages both ways. Any violation fails, named with its rule, impact and the
// elements it found.
// Run from the repository root: node --test tests/browser/
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import {
  BIN, CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT, startServer, stopServer, eventually, tid,
} from './helpers.mjs';

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa', 'best-practice'];
const TEST_TIMEOUT = 60_000;

/** Runs axe-core on the page as it is now; fails with every violation it finds. */
async function expectNoViolation(page, screen) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.addScriptTag({ content: axeSource });
  }
  const result = await page.evaluate((tags) => window.axe.run(document, {
    runOnly: { type: 'tag', values: tags },
    resultTypes: ['violations'],
  }), TAGS);
  const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ` +
    v.nodes.map((n) => `${n.html}: ${n.failureSummary.replace(/\s+/g, ' ')}`).join('\n    '));
  assert.deepEqual(found, [], `axe-core found violations on ${screen}:\n  ${found.join('\n  ')}`);
}

async function signUp(page, base, username) {
  await page.goto(base + '/');
  await page.fill(tid('auth-username'), username);
  await page.fill(tid('auth-password'), `${username}-secret-pw`);
  await page.click(tid('register-button'));
  await page.locator(tid('chat-view')).waitFor({ state: 'visible' });
}

async function openContact(page, name) {
  await page.fill(tid('contact-input'), name);
  await page.click(tid('contact-submit'));
  await eventually(async () => assert.equal(await page.textContent(tid('conversation-title')), name));
}

async function send(page, text) {
  await page.fill(tid('composer-input'), text);
  await page.click(tid('send-button'));
  await page.locator(`${tid('message')}[data-direction="out"][data-id]`, { hasText: text }).waitFor();
}

describe('accessibility of the web chat page (axe-core)', { timeout: 4 * TEST_TIMEOUT }, () => {
  let server;
  let browser;
  const pages = [];
  let setupError = null;

  before(async () => {
    try {
      assert.ok(fs.existsSync(BIN),
        `goTalk server binary not found at ${BIN}: build it with "cargo build" or set GOTALK_BIN`);
      assert.ok(fs.existsSync(CHROMIUM),
        `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium"`);
      server = await startServer();
      browser = await chromium.launch({
        executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000,
      });
    } catch (e) {
      setupError = e;
    }
  });

  after(async () => {
    try { if (browser) await browser.close(); } finally { await stopServer(server); }
  });

  /** A page of its own; its Content-Security-Policy is bypassed so axe's script can be injected. */
  async function newPage() {
    if (setupError) throw setupError;
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 }, bypassCSP: true });
    context.setDefaultTimeout(STEP_TIMEOUT);
    const page = await context.newPage();
    pages.push(page);
    return page;
  }

  test('the login screen, and with an error shown', { timeout: TEST_TIMEOUT }, async () => {
    const page = await newPage();
    await page.goto(server.base + '/');
    await page.locator(tid('auth-form')).waitFor({ state: 'visible' });
    await expectNoViolation(page, 'the login screen');

    await page.fill(tid('auth-username'), 'nobody');
    await page.fill(tid('auth-password'), 'not-the-password');
    await page.click(tid('login-button'));
    await eventually(async () => assert.match(await page.textContent(tid('auth-error')), /wrong username or password/i));
    await expectNoViolation(page, 'the login screen with an error');
  });

  test('the chat before a conversation is picked, and a conversation', { timeout: TEST_TIMEOUT }, async () => {
    const ada = await newPage();
    await signUp(ada, server.base, 'ada');
    await expectNoViolation(ada, 'the chat with no conversation picked');

    const grace = await newPage();
    await signUp(grace, server.base, 'grace');
    await openContact(grace, 'ada');
    await send(grace, 'hello ada, a message for the accessibility check');
    // Unread: the contact's button is named with the count, as a screen reader says it.
    await ada.getByRole('button', { name: 'grace 1 unread', exact: true }).waitFor();
    await expectNoViolation(ada, 'the chat with an unread message');
    await openContact(ada, 'grace');
    await ada.getByRole('button', { name: 'grace', exact: true }).waitFor();
    await eventually(async () => assert.ok(
      (await ada.textContent(tid('message-list'))).includes('hello ada, a message for the accessibility check')));
    await send(ada, 'hello grace');
    await expectNoViolation(ada, 'a conversation with messages both ways');
  });
});
