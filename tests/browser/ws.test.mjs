// goTalk real-browser test of the web page over its WebSocket transport
// (issue 19, web/ws.js): after log in everything goes over GET /ws (no /send or
// /sync posts) and messages arrive live; the page survives a server restart
// (it reconnects with backoff and resumes with SYNC after the last id it saved:
// nothing lost, nothing shown twice, everything acknowledged); a burst of
// pushes is shown once each in order and acknowledged; and it falls
// back to the long-poll when /ws is refused (the server's --no-websocket flag
// answers GET /ws with 404).
// Run from the repository root: node --test tests/browser/
import { test as testCase, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  TEST_TIMEOUT, STEP_TIMEOUT, startServer, stopServer, eventually, tid, messageTexts, authAs, expectLoggedInAs,
  openContact, sendMessage, expectIncoming, expectNoCspViolation, form, guarded, launchBrowser, requireBinary,
} from './helpers.mjs';

const PASSWORD = 'websocket-secret';

describe('the web page over WebSocket, in a real browser', { timeout: 6 * TEST_TIMEOUT }, () => {
  let server;
  let browser;
  let data;
  const { test, setup, failed } = guarded(testCase);

  before(() => setup(async () => {
    requireBinary();
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'gotalk-ws-test-'));
    server = await startServer([], 0, data); // durable: a restart keeps accounts, tokens and messages
    browser = await launchBrowser();
  }));

  after(async () => {
    try { if (browser) await browser.close(); } finally { await stopServer(server); }
    if (server && failed()) console.error('server log (tail):\n' + server.log.slice(-40).join('\n'));
    if (data) fs.rmSync(data, { recursive: true, force: true });
  });

  /**
   * A page in a fresh context, logged in. It records the form posts it makes
   * (`posts`, by path) and the WebSocket requests it sends (`requests`, one
   * list per connection).
   */
  async function user(base, name, register = true) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    context.setDefaultTimeout(STEP_TIMEOUT);
    const page = await context.newPage();
    page.errors = [];
    page.posts = [];
    page.requests = [];
    page.on('pageerror', (e) => page.errors.push(`${name}: ${e.message}`));
    page.on('request', (r) => { if (r.method() === 'POST') page.posts.push(new URL(r.url()).pathname); });
    page.on('websocket', (ws) => {
      const sent = [];
      page.requests.push(sent);
      ws.on('framesent', (f) => { try { sent.push(JSON.parse(f.payload)); } catch (_) { sent.push(f.payload); } });
    });
    await context.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective));
    });
    await page.goto(base + '/');
    await authAs(page, name, PASSWORD, register);
    await expectLoggedInAs(page, name);
    return page;
  }
  const transportOf = (page) => page.getAttribute(tid('connection-status'), 'data-transport');
  const stateOf = (page) => page.getAttribute(tid('connection-status'), 'data-state');
  async function account(base, name) {
    await form(base, '/register', { username: name, password: PASSWORD });
    const s = await form(base, '/login', { username: name, password: PASSWORD });
    return { token: s.SessionID, id: String(s.Id), username: name };
  }
  const httpSend = (base, who, to, content) => form(base, '/send', { ...who, to, content });

  test('messages go both ways live over one WebSocket, with no form posts after log in', { timeout: TEST_TIMEOUT }, async () => {
    const alice = await user(server.base, 'alice');
    const bob = await user(server.base, 'bob');
    for (const p of [alice, bob]) await eventually(async () => assert.equal(await transportOf(p), 'ws'));
    await openContact(alice, 'bob');
    await openContact(bob, 'alice');
    await sendMessage(alice, 'hello over a WebSocket');
    await expectIncoming(bob, 'hello over a WebSocket');
    await sendMessage(bob, 'and back');
    await expectIncoming(alice, 'and back');
    assert.deepEqual(await messageTexts(alice), ['hello over a WebSocket', 'and back']);
    assert.deepEqual(await messageTexts(bob), ['hello over a WebSocket', 'and back']);

    for (const p of [alice, bob]) {
      assert.deepEqual(p.posts.filter((x) => !['/register', '/login', '/getuseridbyname'].includes(x)), [],
        'posts after log in');
      assert.equal(p.requests.length, 1, 'one WebSocket');
      const cmds = p.requests[0].map((r) => r.cmd);
      assert.equal(cmds[0], 'auth');
      for (const c of ['sync', 'send', 'history', 'conversations', 'read', 'ack']) assert.ok(cmds.includes(c), `${c} not over the WebSocket: ${cmds}`);
      await expectNoCspViolation(p);
      assert.deepEqual(p.errors, []);
    }
    await alice.context().close();
    await bob.context().close();
  });

  test('a server restart: the page reconnects and resumes, nothing lost, nothing twice', { timeout: 2 * TEST_TIMEOUT }, async () => {
    const carol = await account(server.base, 'carol');
    const dave = await user(server.base, 'dave');
    await eventually(async () => assert.equal(await transportOf(dave), 'ws'));
    const shown = [];
    const first = await httpSend(server.base, carol, 'dave', 'before the restart');
    shown.push('before the restart');
    await eventually(async () => assert.equal(await dave.locator(tid('unread-badge')).textContent(), '1'));
    await dave.click(`${tid('contact-item')}[data-contact="carol"]`);
    await expectIncoming(dave, 'before the restart');

    const port = new URL(server.base).port;
    await stopServer(server);
    await eventually(async () => assert.equal(await stateOf(dave), 'retrying'));
    server = await startServer([], Number(port), data);
    // Stored while the page is away (its next attempt is a second or more off): SYNC brings them.
    for (const text of ['while away 1', 'while away 2', 'while away 3']) {
      await httpSend(server.base, carol, 'dave', text);
      shown.push(text);
    }
    await eventually(async () => assert.deepEqual(await messageTexts(dave), shown), 4 * STEP_TIMEOUT);
    await eventually(async () => assert.equal(await stateOf(dave), 'live'));
    await httpSend(server.base, carol, 'dave', 'pushed after the reconnect');
    shown.push('pushed after the reconnect');
    await expectIncoming(dave, 'pushed after the reconnect');
    await sendMessage(dave, 'dave is back');
    shown.push('dave is back');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await messageTexts(dave), shown, 'a message lost or shown twice');

    // The second connection resumed after what the page had saved.
    assert.ok(dave.requests.length >= 2, `${dave.requests.length} WebSocket connections`);
    const resume = dave.requests.at(-1).find((r) => r.cmd === 'sync');
    assert.ok(resume && resume.after >= first.id, `resumed with ${JSON.stringify(resume)}, the first id was ${first.id}`);
    // Everything shown was acknowledged: the server holds nothing for dave.
    const session = JSON.parse(await dave.evaluate(() => localStorage.getItem('gotalk:session')));
    await eventually(async () => assert.deepEqual(
      await form(server.base, '/sync', { token: session.token, id: String(session.id) }), []));
    const got = await form(server.base, '/sync', { token: carol.token, id: carol.id });
    assert.deepEqual(got.map((m) => m.content), ['dave is back']);

    // And a reload shows it all once each.
    await dave.reload();
    await expectLoggedInAs(dave, 'dave');
    await eventually(async () => assert.deepEqual(await messageTexts(dave), shown));
    await expectNoCspViolation(dave);
    assert.deepEqual(dave.errors, []);
    await dave.context().close();
  });

  test('a burst of pushes is shown once each, in order, and acknowledged', { timeout: 2 * TEST_TIMEOUT }, async () => {
    const grace = await account(server.base, 'grace');
    const heidi = await user(server.base, 'heidi');
    await eventually(async () => assert.equal(await transportOf(heidi), 'ws'));
    await httpSend(server.base, grace, 'heidi', 'the first');
    await eventually(async () => assert.equal(await heidi.locator(tid('unread-badge')).textContent(), '1'));
    await heidi.click(`${tid('contact-item')}[data-contact="grace"]`);
    const sent = [];
    const sends = [];
    for (let i = 0; i < 120; i++) {
      const text = `burst ${i} ` + 'y'.repeat(20_000);
      sends.push(httpSend(server.base, grace, 'heidi', text).then((r) => sent.push({ id: r.id, text })));
      if (sends.length === 8) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    // Sent eight at a time, the ids may interleave; the page shows them in id order.
    const short = (list) => list.map((t) => t.split(' ').slice(0, 2).join(' ')); // keeps failures readable
    const inOrder = ['the first', ...short(sent.sort((x, y) => x.id - y.id).map((m) => m.text))];
    await eventually(async () => assert.equal(short(await messageTexts(heidi)).at(-1), inOrder.at(-1)), 4 * STEP_TIMEOUT);
    const shown = short(await messageTexts(heidi));
    // All of them: the cache writes the newest 1,000,000 characters, the page shows everything.
    assert.deepEqual(shown, inOrder, 'shown out of order, twice, or not at all');
    const session = JSON.parse(await heidi.evaluate(() => localStorage.getItem('gotalk:session')));
    await eventually(async () => assert.deepEqual(
      await form(server.base, '/sync', { token: session.token, id: String(session.id) }), []));
    assert.deepEqual(heidi.errors, []);
    await heidi.context().close();
  });

  test('when /ws is refused the page falls back to the long-poll', { timeout: TEST_TIMEOUT }, async () => {
    const refusing = await startServer(['--no-websocket']);
    try {
      const erin = await user(refusing.base, 'erin');
      await eventually(async () => assert.equal(await transportOf(erin), 'poll'));
      assert.equal(erin.requests.length, 1, 'the page tried the WebSocket first');
      const frank = await account(refusing.base, 'frank');
      await openContact(erin, 'frank');
      await sendMessage(erin, 'over the long-poll');
      const got = await form(refusing.base, '/sync', { token: frank.token, id: frank.id });
      assert.deepEqual(got.map((m) => m.content), ['over the long-poll']);
      await httpSend(refusing.base, frank, 'erin', 'received by long-poll');
      await expectIncoming(erin, 'received by long-poll');
      await eventually(async () => assert.equal(await stateOf(erin), 'live'));
      assert.ok(erin.posts.includes('/sync') && erin.posts.includes('/send'), JSON.stringify(erin.posts));
      assert.deepEqual(erin.errors, []);
      await erin.context().close();
    } finally {
      await stopServer(refusing);
    }
  });
});
