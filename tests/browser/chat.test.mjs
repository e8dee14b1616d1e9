// goTalk real-browser test of the web chat page (web/index.html, served at GET /).
// It starts the real server binary (GOTALK_BIN, or <repo>/target/debug/gotalk) with
// `--memory --listen 127.0.0.1:0`, drives Debian's Chromium (/usr/bin/chromium) through
// playwright-core with two users in two separate browser contexts, and checks:
// register/log in with visible errors, live delivery both ways, unread flags for other
// contacts, hostile text shown literally, reloads without lost or doubled messages, no
// Content-Security-Policy violation, a flood of large messages that does not jam the page,
// usernames like hasOwnProperty, and that other sites (a foreign page, a DNS-rebinding name)
// cannot post to the server.
// Run from the repository root: node --test tests/browser/
import { test as testCase, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  REPO, BIN, CHROMIUM, SHOTS, CHROMIUM_ARGS, STEP_TIMEOUT, TEST_TIMEOUT, startServer, stopServer, eventually,
  tid, messageTexts, contactItem, newUserPage, authAs, expectLoggedInAs, openContact, sendMessage,
  expectIncoming, expectNoCspViolation, form,
} from './helpers.mjs';

// The page over its long-poll (/send, /sync), which these tests watch and
// interrupt; ws.test.mjs drives the WebSocket, history.test.mjs both.
const POLL = '?transport=poll';

// ---------- the test ----------

describe('goTalk web chat page in a real browser', { timeout: 5 * TEST_TIMEOUT }, () => {
  let server;
  let browser;
  let alice; // { context, page }
  let bob;
  const hostsSeen = new Set();
  const XSS = '<img src=x onerror=alert(1)>';
  const history = [];

  let setupError = null; // a missing binary or browser fails every test (a failed hook would only cancel them)
  let anyFailed = false;
  const test = (name, opts, fn) => testCase(name, opts, async (t) => {
    if (setupError) throw setupError;
    try { return await fn(t); } catch (e) { anyFailed = true; throw e; }
  });

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
      fs.mkdirSync(SHOTS, { recursive: true });
    } catch (e) {
      setupError = e;
    }
  });

  after(async () => {
    try { if (browser) await browser.close(); } finally { await stopServer(server); }
    if (server && anyFailed) console.error('server log (tail):\n' + server.log.slice(-40).join('\n'));
  });

  test('GET / serves the page as HTML', { timeout: TEST_TIMEOUT }, async () => {
    const res = await fetch(server.base + '/', { signal: AbortSignal.timeout(5_000) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /text\/html/);
    const served = await res.text();
    assert.match(served, /data-testid="auth-form"/);
    // The server embeds web/index.html when it is built: a difference means a stale binary.
    assert.ok(served === fs.readFileSync(path.join(REPO, 'web', 'index.html'), 'utf8'),
      'GET / differs from web/index.html: rebuild the server (cargo build) so it embeds the current page');
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    for (const file of ['app.js', 'cache.js', 'transport.js', 'convs.js', 'ws.js', 'app.css']) {
      const r = await fetch(server.base + '/' + file, { signal: AbortSignal.timeout(5_000) });
      assert.equal(r.status, 200);
      assert.ok((await r.text()) === fs.readFileSync(path.join(REPO, 'web', file), 'utf8'),
        `GET /${file} differs from web/${file}: rebuild the server`);
    }
  });

  test('two users register and log in, with errors shown clearly', { timeout: TEST_TIMEOUT }, async () => {
    bob = await newUserPage(browser, server.base, 'bob', hostsSeen, POLL);
    await authAs(bob.page, 'bob', 'bob-secret', true);
    await expectLoggedInAs(bob.page, 'bob');

    alice = await newUserPage(browser, server.base, 'alice', hostsSeen, POLL);
    await alice.page.evaluate(() => { window.__noReloadMarker = 'still here'; });
    await authAs(alice.page, 'alice', 'alice-secret', true);
    await expectLoggedInAs(alice.page, 'alice');

    // Log out, then exercise the error paths and a plain log in.
    await alice.page.click(tid('logout-button'));
    await alice.page.locator(tid('auth-view')).waitFor({ state: 'visible' });
    assert.equal(await alice.page.evaluate(() => localStorage.getItem('gotalk:session')), null);

    await authAs(alice.page, 'bob', 'whatever', true);
    await eventually(async () => assert.match(await alice.page.textContent(tid('auth-error')), /already taken/i));

    await authAs(alice.page, 'alice', 'wrong-password', false);
    await eventually(async () => assert.match(await alice.page.textContent(tid('auth-error')), /wrong username or password/i));

    await alice.page.screenshot({ path: path.join(SHOTS, 'auth-error.png') });
    await authAs(alice.page, 'bad name!', 'x', false);
    await eventually(async () => assert.match(await alice.page.textContent(tid('auth-error')), /usernames are/i));

    await authAs(alice.page, 'alice', 'alice-secret', false);
    await expectLoggedInAs(alice.page, 'alice');
    assert.equal(await alice.page.textContent(tid('auth-error')), '');
  });

  test('messages go both ways live, without reloading', { timeout: TEST_TIMEOUT }, async () => {
    const a = alice.page;
    const b = bob.page;
    await a.fill(tid('contact-input'), 'nobody-here');
    await a.click(tid('contact-submit'));
    await eventually(async () => assert.match(await a.textContent(tid('contact-error')), /no user named/i));

    await openContact(a, 'bob');
    const hello = "Hello Bob \u2014 it's Alice. Gr\u00fc\u00dfe!";
    await sendMessage(a, hello);
    history.push(hello);

    // Bob has no conversation open: alice shows up flagged with one unread message.
    await eventually(async () =>
      assert.equal(await contactItem(b, 'alice').locator(tid('unread-badge')).textContent(), '1'));
    await contactItem(b, 'alice').click();
    await expectIncoming(b, hello);
    await eventually(async () => assert.equal(await contactItem(b, 'alice').locator(tid('unread-badge')).count(), 0));

    // Bob answers with the Enter key; Alice sees it arrive in the open conversation.
    const reply = 'Hi Alice!\nTwo lines, & <b>no</b> markup.';
    await b.fill(tid('composer-input'), reply);
    await b.press(tid('composer-input'), 'Enter');
    await expectIncoming(a, reply);
    history.push(reply);

    assert.equal(await a.evaluate(() => window.__noReloadMarker), 'still here', 'alice page reloaded');
    assert.deepEqual(await messageTexts(a), history);
    assert.deepEqual(await messageTexts(b), history);
  });

  test('a message from another contact is kept and flagged, not mixed in', { timeout: TEST_TIMEOUT }, async () => {
    await form(server.base, '/register', { username: 'carol', password: 'carol-secret' });
    const carol = await form(server.base, '/login', { username: 'carol', password: 'carol-secret' });
    const target = await form(server.base, '/getuseridbyname', { username: 'alice' });
    const sent = await form(server.base, '/send', {
      token: carol.SessionID, id: String(carol.Id), username: 'carol', sendToId: String(target.Id), content: 'psst, Alice',
    });
    assert.equal(sent.ok, true);

    const a = alice.page;
    await eventually(async () =>
      assert.equal(await contactItem(a, 'carol').locator(tid('unread-badge')).textContent(), '1'));
    assert.equal(await a.textContent(tid('conversation-title')), 'bob');
    assert.deepEqual(await messageTexts(a), history);

    await contactItem(a, 'carol').click();
    await expectIncoming(a, 'psst, Alice');
    await contactItem(a, 'bob').click();
    await eventually(async () => assert.deepEqual(await messageTexts(a), history));
  });

  test('hostile text is shown literally, never run as HTML', { timeout: TEST_TIMEOUT }, async () => {
    const a = alice.page;
    const b = bob.page;
    await sendMessage(a, XSS);
    history.push(XSS);
    await expectIncoming(b, XSS);
    await new Promise((r) => setTimeout(r, 500)); // give a (wrongly) injected onerror a chance to fire
    for (const p of [a, b]) {
      assert.deepEqual(p.dialogs, [], 'a dialog fired');
      assert.equal(await p.locator(`${tid('message-list')} img`).count(), 0, 'an <img> was injected');
      const last = p.locator(`${tid('message-list')} ${tid('message-text')}`).last();
      assert.equal(await last.textContent(), XSS);
      assert.match(await last.innerHTML(), /&lt;img src=x onerror=alert\(1\)&gt;/);
    }
  });

  test('a send whose reply is lost is retried without doubling the message', { timeout: TEST_TIMEOUT }, async () => {
    const a = alice.page;
    const text = 'stored once, though the first reply was lost';
    let lost = 0;
    // The first /send reaches the server, which stores the message, but the page never hears back.
    await a.route('**/send', async (route) => {
      if (lost === 0) {
        lost += 1;
        await route.fetch().catch(() => {});
        await route.abort('connectionreset').catch(() => {});
      } else {
        await route.continue().catch(() => {});
      }
    });
    await sendMessage(a, text);
    await a.unrouteAll({ behavior: 'ignoreErrors' });
    assert.equal(lost, 1, 'the first reply was not dropped');
    history.push(text);
    await expectIncoming(bob.page, text);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await messageTexts(bob.page), history);
    assert.deepEqual(await messageTexts(a), history);
  });

  test('reload shows unacknowledged history without duplicates', { timeout: TEST_TIMEOUT }, async () => {
    // Bob goes away; Alice writes while he is gone.
    await bob.page.close();
    const offline = ['offline 1', 'offline 2', 'offline 3'];
    for (const text of offline) { await sendMessage(alice.page, text); history.push(text); }

    // Bob comes back in a new tab (same browser profile, so same stored session).
    // The first /sync goes through; later ones (which would acknowledge) are held
    // unanswered, so the server still has the offline messages unacknowledged.
    const b = await bob.context.newPage();
    let phase = 'block';
    let syncs = 0;
    const held = [];
    await b.route('**/sync', (route) => {
      syncs += 1;
      if (phase === 'block' && syncs > 1) held.push(route); else route.continue().catch(() => {});
    });
    const syncAfters = [];
    b.on('request', (r) => {
      if (r.url().endsWith('/sync')) syncAfters.push(Number(new URLSearchParams(r.postData() || '').get('after')));
    });
    await b.goto(server.base + '/' + POLL);
    await expectLoggedInAs(b, 'bob');
    await eventually(async () => assert.deepEqual(await messageTexts(b), history));
    await eventually(async () => assert.ok(held.length >= 1, 'the page never asked to acknowledge'));

    // Reload: the page draws its stored history, and the server sends the
    // unacknowledged messages again; each must still be shown exactly once.
    phase = 'open';
    const redelivered = b.waitForResponse(async (r) =>
      r.url().endsWith('/sync') && r.status() === 200 && (await r.text()).includes('offline 3'), { timeout: STEP_TIMEOUT });
    await b.reload();
    const resp = await redelivered;
    const again = (await resp.json()).map((m) => m.content);
    assert.deepEqual(again, offline, 'the server should re-deliver exactly the unacknowledged messages');
    // Once the page asks with an `after` at or above them, it has processed that reply.
    const lastId = Math.max(...(await resp.json()).map((m) => m.id));
    await eventually(async () => assert.ok(syncAfters.some((n) => n >= lastId), `no /sync with after >= ${lastId}: ${syncAfters}`));
    assert.deepEqual(await messageTexts(b), history);

    // A second reload, now that all is acknowledged: same history, once each.
    await b.reload();
    await expectLoggedInAs(b, 'bob');
    await eventually(async () => assert.deepEqual(await messageTexts(b), history));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await messageTexts(b), history);
    for (const r of held) await r.abort().catch(() => {});
    await b.unrouteAll({ behavior: 'ignoreErrors' });
    bob.page = b;

    // Alice's own reload keeps what she sent and received, once each.
    await alice.page.reload();
    await expectLoggedInAs(alice.page, 'alice');
    await eventually(async () => assert.deepEqual(await messageTexts(alice.page), history));
  });

  test('a contact known only by name is written to with the "to" field', { timeout: TEST_TIMEOUT }, async () => {
    // sendTo and sendToId carry a user id (as the original goTalk's clients sent
    // it); a receiver the page knows by name alone goes in "to".
    await form(server.base, '/register', { username: 'dave', password: 'dave-secret' });
    const dave = await form(server.base, '/login', { username: 'dave', password: 'dave-secret' });
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    context.setDefaultTimeout(STEP_TIMEOUT);
    try {
      const session = { token: dave.SessionID, id: dave.Id, name: 'dave' };
      const saved = { v: 1, messages: {}, contacts: { carol: {} }, lastRead: {}, lastContact: 'carol' };
      await context.addInitScript(([s, store]) => {
        localStorage.setItem('gotalk:session', JSON.stringify(s));
        localStorage.setItem('gotalk:user:' + s.id, JSON.stringify(store));
      }, [session, saved]);
      const page = await context.newPage();
      const posted = [];
      page.on('request', (r) => { if (r.url().endsWith('/send')) posted.push(new URLSearchParams(r.postData() || '')); });
      await page.goto(server.base + '/' + POLL);
      await expectLoggedInAs(page, 'dave');
      await eventually(async () => assert.equal(await page.textContent(tid('conversation-title')), 'carol'));
      await sendMessage(page, 'to carol, by name');
      assert.equal(posted.length, 1);
      assert.equal(posted[0].get('to'), 'carol');
      assert.equal(posted[0].get('sendTo'), null);
      assert.equal(posted[0].get('sendToId'), null);
    } finally {
      await context.close();
    }
    const carol = await form(server.base, '/login', { username: 'carol', password: 'carol-secret' });
    const got = await form(server.base, '/sync', { token: carol.SessionID, id: String(carol.Id) });
    assert.ok(got.some((m) => m.from === 'dave' && m.content === 'to carol, by name'), JSON.stringify(got));
  });

  test('usernames such as hasOwnProperty and constructor are plain names', { timeout: TEST_TIMEOUT }, async () => {
    await form(server.base, '/register', { username: 'constructor', password: 'constructor-pw' });
    const proto = await newUserPage(browser, server.base, 'hasOwnProperty', hostsSeen, POLL);
    try {
      await authAs(proto.page, 'hasOwnProperty', 'hasown-secret', true);
      await expectLoggedInAs(proto.page, 'hasOwnProperty');
      const a = alice.page;
      await openContact(a, 'hasOwnProperty');
      await sendMessage(a, 'hello, hasOwnProperty');
      await eventually(async () =>
        assert.equal(await contactItem(proto.page, 'alice').locator(tid('unread-badge')).textContent(), '1'));
      await contactItem(proto.page, 'alice').click();
      await expectIncoming(proto.page, 'hello, hasOwnProperty');
      await proto.page.fill(tid('composer-input'), 'hi from hasOwnProperty');
      await proto.page.press(tid('composer-input'), 'Enter');
      await expectIncoming(a, 'hi from hasOwnProperty');
      await openContact(a, 'constructor');
      await sendMessage(a, 'hello, constructor');

      // Both conversations survive a reload, each with its own messages.
      await proto.page.reload();
      await expectLoggedInAs(proto.page, 'hasOwnProperty');
      await eventually(async () =>
        assert.deepEqual(await messageTexts(proto.page), ['hello, hasOwnProperty', 'hi from hasOwnProperty']));
      await a.reload();
      await expectLoggedInAs(a, 'alice');
      await contactItem(a, 'hasOwnProperty').click();
      await eventually(async () => assert.deepEqual(await messageTexts(a), ['hello, hasOwnProperty', 'hi from hasOwnProperty']));
      await contactItem(a, 'constructor').click();
      await eventually(async () => assert.deepEqual(await messageTexts(a), ['hello, constructor']));
      await contactItem(a, 'bob').click();
      await eventually(async () => assert.deepEqual(await messageTexts(a), history));
      await expectNoCspViolation(proto.page);
      assert.deepEqual(proto.page.errors, [], 'page errors');
    } finally {
      await proto.context.close();
    }
  });

  test('a flood of large messages does not stop new ones from showing', { timeout: 3 * TEST_TIMEOUT }, async () => {
    await form(server.base, '/register', { username: 'frank', password: 'frank-secret' });
    const frank = await form(server.base, '/login', { username: 'frank', password: 'frank-secret' });
    await form(server.base, '/register', { username: 'erin', password: 'erin-secret' });
    const erin = await newUserPage(browser, server.base, 'erin', hostsSeen, POLL);
    try {
      const e = erin.page;
      await authAs(e, 'erin', 'erin-secret', false);
      await expectLoggedInAs(e, 'erin');
      // Another account's history already fills most of this browser's storage.
      const filler = 'gotalk:user:999999';
      await e.evaluate((k) => localStorage.setItem(k, 'f'.repeat(4_500_000)), filler);
      await openContact(e, 'frank');

      const big = (i) => `big ${i} ` + 'x'.repeat(65_000);
      for (let i = 0; i < 200; i++) {
        await form(server.base, '/send', {
          token: frank.SessionID, id: String(frank.Id), username: 'frank', to: 'erin', content: big(i),
        });
      }
      const last = 'a short one after the flood';
      await form(server.base, '/send', { token: frank.SessionID, id: String(frank.Id), username: 'frank', to: 'erin', content: last });
      await eventually(async () => {
        const texts = await messageTexts(e);
        assert.equal(texts.at(-1), last, `last shown: ${String(texts.at(-1)).slice(0, 40)}`);
      }, 4 * STEP_TIMEOUT);
      const shown = await messageTexts(e);
      assert.ok(shown.length > 1 && shown.length <= 201, `${shown.length} messages shown`);
      assert.equal(shown.at(-2), big(199), 'the newest large message is shown before the short one');

      // The history was saved: capped, with the newest messages, after making room.
      const saved = await e.evaluate(() => {
        const s = JSON.parse(localStorage.getItem('gotalk:user:' + JSON.parse(localStorage.getItem('gotalk:session')).id));
        return { count: s.messages.length, chars: s.messages.reduce((n, m) => n + m.content.length, 0),
          last: s.messages.map((m) => m.content).includes('a short one after the flood') };
      });
      assert.ok(saved.last, 'the short message was not saved');
      assert.ok(saved.count <= 200 && saved.chars <= 1_000_000 + 65_000, JSON.stringify(saved));
      assert.equal(await e.evaluate((k) => localStorage.getItem(k), filler), null, 'nothing made room');

      // After a reload the saved history is shown again and new messages still arrive.
      await e.reload();
      await expectLoggedInAs(e, 'erin');
      await eventually(async () => assert.equal((await messageTexts(e)).at(-1), last));
      await form(server.base, '/send', { token: frank.SessionID, id: String(frank.Id), username: 'frank', to: 'erin', content: 'and one more' });
      await expectIncoming(e, 'and one more');
      await expectNoCspViolation(e);
      assert.deepEqual(e.errors, [], 'page errors');
    } finally {
      await erin.context.close();
    }
  });

  test('another site cannot post to the server through the browser', { timeout: TEST_TIMEOUT }, async () => {
    // A page on another origin posts a registration the way a hostile site would.
    const evil = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<!doctype html><form id="f" method="POST" action="${server.base}/register">
        <input name="username" value="csrf-form"><input name="password" value="csrf-password"></form>`);
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${evil.address().port}/`);
      const status = await page.evaluate(async (base) => {
        await fetch(base + '/register', {
          method: 'POST', mode: 'no-cors',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: 'username=csrf-fetch&password=csrf-password',
        });
        return 'sent';
      }, server.base);
      assert.equal(status, 'sent');
      const [response] = await Promise.all([
        page.waitForNavigation(),
        page.evaluate(() => document.getElementById('f').submit()),
      ]);
      assert.equal(response.status(), 403);
      assert.match(await page.textContent('body'), /may not post/);
    } finally {
      await context.close();
      evil.close();
    }
    for (const name of ['csrf-fetch', 'csrf-form']) {
      const res = await fetch(server.base + '/getuseridbyname', {
        method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: `username=${name}`, signal: AbortSignal.timeout(5_000),
      });
      assert.equal(res.status, 404, `${name} was registered by another site`);
    }
  });

  test('a DNS-rebinding name is refused, the page is served by its own names', { timeout: TEST_TIMEOUT }, async () => {
    const port = new URL(server.base).port;
    // This browser resolves rebind.test to the server, as a rebinding attacker's DNS would.
    const rebound = await chromium.launch({
      executablePath: CHROMIUM, headless: true, timeout: 30_000,
      args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP rebind.test 127.0.0.1'],
    });
    try {
      const page = await rebound.newPage();
      const refused = await page.goto(`http://rebind.test:${port}/`);
      assert.equal(refused.status(), 421);
      assert.match(await page.textContent('body'), /does not answer to Host/);
      const ok = await page.goto(`http://localhost:${port}/`);
      assert.equal(ok.status(), 200);
      await page.locator(tid('auth-form')).waitFor({ state: 'visible' });
    } finally {
      await rebound.close();
    }
  });

  test('the page works on a narrow window, fetches nothing from elsewhere, and logs out', { timeout: TEST_TIMEOUT }, async () => {
    const a = alice.page;
    await a.screenshot({ path: path.join(SHOTS, 'chat.png') });
    await bob.page.screenshot({ path: path.join(SHOTS, 'chat-bob.png') });

    await a.setViewportSize({ width: 380, height: 720 });
    for (const id of ['composer-input', 'send-button', 'contact-input']) {
      const box = await a.locator(tid(id)).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 381 && box.y + box.height <= 721,
        `${id} is off screen on a narrow window: ${JSON.stringify(box)}`);
    }
    const fits = await a.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(fits, 'the page scrolls sideways on a narrow window');
    await a.screenshot({ path: path.join(SHOTS, 'chat-narrow.png') });

    assert.deepEqual([...hostsSeen], [server.base], 'the page fetched something from another origin');
    await expectNoCspViolation(alice.page);
    await expectNoCspViolation(bob.page);
    assert.deepEqual([...alice.page.errors, ...bob.page.errors], [], 'page errors');
    assert.deepEqual([...alice.page.dialogs, ...bob.page.dialogs], [], 'dialogs fired');

    await a.click(tid('logout-button'));
    await a.locator(tid('auth-view')).waitFor({ state: 'visible' });
    assert.equal(await a.evaluate(() => localStorage.getItem('gotalk:session')), null);
  });
});
