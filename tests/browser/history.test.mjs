// goTalk real-browser test of the web page's conversations on every device
// (issue 18): the page loads the conversation list and history from the server,
// so a browser context created after the messages were sent shows them all
// ("Load older messages" scrolls back); two contexts of one user see each other's
// sent messages; unread badges come from the server and agree across devices;
// the user's own messages get a read tick when the partner has read them.
// Each runs twice: over the long-poll (?transport=poll), where sent copies and
// read markers arrive by refreshing the conversation list, and over the
// WebSocket, where they arrive as events. Against a server started with
// --no-history the page works from what the browser keeps, as before.
// Run from the repository root: node --test tests/browser/
import { test as testCase, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  TEST_TIMEOUT, startServer, stopServer, eventually, tid, messageTexts, contactItem, authAs,
  expectLoggedInAs, openContact, sendMessage, expectIncoming, expectNoCspViolation, form, guarded,
  launchBrowser, requireBinary, STEP_TIMEOUT,
} from './helpers.mjs';

const PASSWORD = 'history-secret';

for (const [transport, query] of [['poll', '?transport=poll'], ['ws', '']]) describe(
  `conversations on every device, in a real browser (${transport === 'ws' ? 'WebSocket' : 'long-poll'})`,
  { timeout: 8 * TEST_TIMEOUT }, () => {
  let server;
  let browser;
  const contexts = [];
  const { test, setup, failed } = guarded(testCase);

  before(() => setup(async () => {
    requireBinary();
    server = await startServer();
    browser = await launchBrowser();
  }));

  after(async () => {
    try { if (browser) await browser.close(); } finally { await stopServer(server); }
    if (server && failed()) console.error('server log (tail):\n' + server.log.slice(-40).join('\n'));
  });

  /** A fresh browser context (its own empty localStorage), like another device. */
  async function device(label) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    context.setDefaultTimeout(STEP_TIMEOUT);
    contexts.push(context);
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(`${label}: ${e.message}`));
    await context.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective));
    });
    await page.goto(server.base + '/' + query);
    return page;
  }
  async function loggedIn(label, user, register = false) {
    const page = await device(label);
    await authAs(page, user, PASSWORD, register);
    await expectLoggedInAs(page, user);
    await eventually(async () => assert.equal(await page.getAttribute(tid('connection-status'), 'data-transport'), transport));
    return page;
  }
  /** An account driven over HTTP: {session, send(to, text) -> id}. */
  async function account(name) {
    await form(server.base, '/register', { username: name, password: PASSWORD });
    const s = await form(server.base, '/login', { username: name, password: PASSWORD });
    const fields = { token: s.SessionID, id: String(s.Id) };
    return {
      id: s.Id,
      fields,
      send: async (to, content) => (await form(server.base, '/send', { ...fields, username: name, to, content })).id,
      post: (p, extra) => form(server.base, p, { ...fields, ...extra }),
    };
  }
  const outgoing = (page) => page.$$eval(`${tid('message-list')} ${tid('message')}[data-direction="out"]`,
    (els) => els.map((e) => ({ text: e.querySelector('[data-testid="message-text"]').textContent, read: e.dataset.read === 'true' })));
  const badge = (page, name) => contactItem(page, name).locator(tid('unread-badge'));

  test('a message sent on one device shows on the other as a sent copy', { timeout: TEST_TIMEOUT }, async () => {
    await account('bob');
    const one = await loggedIn('alice-1', 'alice', true);
    const two = await loggedIn('alice-2', 'alice');
    await openContact(one, 'bob');
    await openContact(two, 'bob');

    await sendMessage(one, 'sent from device one');
    await eventually(async () => assert.deepEqual(await outgoing(two), [{ text: 'sent from device one', read: false }]));
    await sendMessage(two, 'and from device two');
    await eventually(async () => assert.deepEqual(await messageTexts(one), ['sent from device one', 'and from device two']));
    assert.deepEqual(await messageTexts(two), ['sent from device one', 'and from device two']);
    for (const p of [one, two]) { await expectNoCspViolation(p); assert.deepEqual(p.errors, []); }
  });

  test('a browser opened after the messages were sent shows the whole conversation', { timeout: 2 * TEST_TIMEOUT }, async () => {
    const carol = await account('carol');
    const dave = await account('dave');
    const sent = [];
    for (let i = 0; i < 70; i++) {
      const [from, to] = i % 3 === 0 ? [dave, 'carol'] : [carol, 'dave'];
      const text = `message ${i} from ${to === 'carol' ? 'dave' : 'carol'}`;
      await from.send(to, text);
      sent.push(text);
    }
    // Everything is acknowledged: a new device gets nothing from /sync, only from history.
    for (const a of [carol, dave]) await a.post('/sync', { after: '1000000' });

    const page = await loggedIn('carol-new', 'carol');
    // The conversation list comes from the server: dave is listed without typing his name.
    await contactItem(page, 'dave').click();
    await eventually(async () => assert.deepEqual(await messageTexts(page), sent.slice(-50)));
    assert.equal(await page.locator(tid('load-older')).count(), 1, 'no "Load older messages" button');
    await page.click(tid('load-older'));
    await eventually(async () => assert.deepEqual(await messageTexts(page), sent));
    assert.equal(await page.locator(tid('load-older')).count(), 0, 'more to load after the first message');
    const dirs = await page.$$eval(`${tid('message-list')} ${tid('message')}`, (els) => els.map((e) => e.dataset.direction));
    assert.deepEqual(dirs, sent.map((t) => (t.endsWith('from carol') ? 'out' : 'in')));

    // A reload draws the same conversation once each, cache and server merged by id.
    await page.reload();
    await expectLoggedInAs(page, 'carol');
    await eventually(async () => assert.deepEqual(await messageTexts(page), sent.slice(-50)));
  });

  test('unread badges come from the server and clear on every device', { timeout: TEST_TIMEOUT }, async () => {
    const erin = await account('erin');
    const frank = await account('frank');
    const ids = [];
    for (const text of ['one', 'two', 'three']) ids.push(await erin.send('frank', text));
    // Another device of frank received (and acknowledged) them, but nobody read them.
    await frank.post('/sync', { after: String(Math.max(...ids)) });

    const phone = await loggedIn('frank-phone', 'frank');
    const laptop = await loggedIn('frank-laptop', 'frank');
    for (const p of [phone, laptop]) await eventually(async () => assert.equal(await badge(p, 'erin').textContent(), '3'));

    await contactItem(phone, 'erin').click();
    await eventually(async () => assert.deepEqual(await messageTexts(phone), ['one', 'two', 'three']));
    await eventually(async () => assert.equal(await badge(phone, 'erin').count(), 0));
    // Read on the phone: the laptop's badge goes too, and the server agrees.
    await eventually(async () => assert.equal(await badge(laptop, 'erin').count(), 0));
    const list = await frank.post('/conversations', {});
    const withErin = list.conversations.find((c) => c.with === 'erin');
    assert.equal(withErin.unread, 0, JSON.stringify(withErin));
    const theirs = (await erin.post('/conversations', {})).conversations.find((c) => c.with === 'frank');
    assert.equal(theirs.read_upto, Math.max(...ids), JSON.stringify(theirs));
  });

  test('own messages get a read tick when the partner has read them', { timeout: TEST_TIMEOUT }, async () => {
    await account('grace');
    const heidi = await loggedIn('heidi', 'heidi', true);
    await openContact(heidi, 'grace');
    await sendMessage(heidi, 'first, read soon');
    await sendMessage(heidi, 'second, read soon');
    assert.deepEqual(await outgoing(heidi), [
      { text: 'first, read soon', read: false }, { text: 'second, read soon', read: false }]);

    // Grace opens the conversation in her browser: the page marks it read.
    const grace = await loggedIn('grace', 'grace');
    await contactItem(grace, 'heidi').click();
    await expectIncoming(grace, 'second, read soon');
    await eventually(async () => assert.deepEqual(await outgoing(heidi), [
      { text: 'first, read soon', read: true }, { text: 'second, read soon', read: true }]));
    assert.equal(await heidi.locator(`${tid('read-tick')}`).count(), 2);

    // A new message is unread until grace's page shows it.
    await sendMessage(heidi, 'third');
    await expectIncoming(grace, 'third');
    await eventually(async () => assert.deepEqual((await outgoing(heidi)).map((m) => m.read), [true, true, true]));
    for (const p of [heidi, grace]) { await expectNoCspViolation(p); assert.deepEqual(p.errors, []); }
  });
});

describe('a server that keeps no history (--no-history)', { timeout: 3 * TEST_TIMEOUT }, () => {
  let server;
  let browser;
  const { test, setup, failed } = guarded(testCase);
  before(() => setup(async () => {
    requireBinary();
    server = await startServer(['--no-history']);
    browser = await launchBrowser();
  }));
  after(async () => {
    try { if (browser) await browser.close(); } finally { await stopServer(server); }
    if (server && failed()) console.error('server log (tail):\n' + server.log.slice(-40).join('\n'));
  });

  test('the page works from what this browser keeps, as before', { timeout: TEST_TIMEOUT }, async () => {
    await form(server.base, '/register', { username: 'ivan', password: PASSWORD });
    const ivan = await form(server.base, '/login', { username: 'ivan', password: PASSWORD });
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    context.setDefaultTimeout(STEP_TIMEOUT);
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    const asked = [];
    page.on('websocket', (ws) => ws.on('framesent', (f) => { try { asked.push(JSON.parse(f.payload).cmd); } catch (_) { /* text */ } }));
    await page.goto(server.base + '/');
    await authAs(page, 'judy', PASSWORD, true);
    await expectLoggedInAs(page, 'judy');
    await openContact(page, 'ivan');
    await sendMessage(page, 'kept in this browser');
    await form(server.base, '/send', { token: ivan.SessionID, id: String(ivan.Id), username: 'ivan', to: 'judy', content: 'and the reply' });
    await expectIncoming(page, 'and the reply');
    await page.reload();
    await expectLoggedInAs(page, 'judy');
    await eventually(async () => assert.deepEqual(await messageTexts(page), ['kept in this browser', 'and the reply']));
    assert.equal(await page.locator(tid('load-older')).count(), 0);
    // Refused once each (unavailable), the list and read markers are not asked again and again.
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(asked.filter((c) => c === 'conversations').length <= 3, JSON.stringify(asked));
    assert.deepEqual(page.errors, []);
    await context.close();
  });
});
